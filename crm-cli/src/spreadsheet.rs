//! Text cells a spreadsheet would run as formulas (CSV injection, as OWASP describes it): a lead
//! from the public web form named `=HYPERLINK(…)` must open as text, not as a live link.
//!
//! Export writes such a cell with a leading `'`, which spreadsheets take as "this is text" and
//! do not show; import takes that `'` off again, so an export imports back unchanged. Only text
//! is concerned: numbers are written as numbers (`-1200` in a number column is data), and JSON
//! cells (lists, money) begin with `[` or `{`.

/// The first characters that make a spreadsheet read a cell as a formula (OWASP's list).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `text` starts like a formula once any leading `'` are skipped. Skipping them keeps
/// the escape reversible: a value that already begins with `'=` gains one more `'` on export
/// and loses exactly that one on import.
fn escapes_as_formula(text: &str) -> bool {
    text.trim_start_matches('\'').starts_with(FORMULA_STARTS)
}

/// `text` as a cell no spreadsheet runs: with a leading `'` when it would start a formula.
pub(crate) fn neutralize(text: &str) -> String {
    if escapes_as_formula(text) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The text a [`neutralize`]d cell stands for: without the leading `'` it was given.
pub(crate) fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if escapes_as_formula(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_get_a_quote_and_lose_it_again() {
        for (stored, cell) in [
            (
                "=HYPERLINK(\"http://evil.test\",\"x\")",
                "'=HYPERLINK(\"http://evil.test\",\"x\")",
            ),
            ("+1+1", "'+1+1"),
            ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
            ("@SUM(1,1)", "'@SUM(1,1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("'=1", "''=1"),
            ("''+1", "'''+1"),
        ] {
            assert_eq!(neutralize(stored), cell);
            assert_eq!(restore(cell), stored);
        }
    }

    #[test]
    fn other_text_is_left_as_it_is() {
        for text in ["", "Ada", "a=b", " =1", "'quoted'", "'", "1-2", "ümlaut"] {
            assert_eq!(neutralize(text), text);
            assert_eq!(restore(text), text);
        }
    }
}
