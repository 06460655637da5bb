//! Input checks that collect every field error before answering.

use crate::error::{Error, FieldError, Result};

/// Checks a page size: `limit` must be 1 to `max`, else a `limit` / `out_of_range` error.
pub(crate) fn page_limit(limit: u32, max: u32) -> Result<()> {
    if (1..=max).contains(&limit) {
        Ok(())
    } else {
        Err(Error::invalid(
            "limit",
            "out_of_range",
            format!("must be between 1 and {max}"),
        ))
    }
}

/// Collects field errors and turns them into one [`Error::Validation`].
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a field error.
    pub fn push(
        &mut self,
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// Records an error unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, code: &'static str, message: &str) {
        if !ok {
            self.push(field, code, message);
        }
    }

    /// Checks that a text field is not blank (when `required`) and not longer than `max`
    /// characters.
    /// Text never holds a NUL character (PostgreSQL cannot store one).
    pub fn text(&mut self, field: &str, value: &str, required: bool, max: usize) {
        if value.contains('\0') {
            self.push(field, "invalid_format", "must not contain NUL characters");
        } else if required && value.trim().is_empty() {
            self.push(field, "required", "must not be blank");
        } else if value.chars().count() > max {
            self.push(
                field,
                "too_long",
                format!("must be at most {max} characters"),
            );
        }
    }

    /// Checks an optional text field's length.
    pub fn opt_text(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            self.text(field, v, false, max);
        }
    }

    /// Checks an email address: one `@`, a non-empty local part, a dotted domain, no spaces,
    /// at most 254 characters. (Deliverability is the mail server's business.)
    pub fn email(&mut self, field: &str, value: &str) {
        if !is_email(value) {
            self.push(
                field,
                "invalid_format",
                "must be an email address like name@example.com",
            );
        }
    }

    /// Checks an optional email address.
    pub fn opt_email(&mut self, field: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.email(field, v);
        }
    }

    /// Checks an ISO 4217 currency code (three upper-case letters).
    pub fn currency(&mut self, field: &str, value: &str) {
        if let Err(Error::Validation(mut errors)) = value.parse::<crate::money::Currency>() {
            for e in &mut errors {
                e.field = field.to_owned();
            }
            self.errors.extend(errors);
        }
    }

    /// Checks that an optional number is not negative.
    pub fn non_negative(&mut self, field: &str, value: Option<i64>) {
        if value.is_some_and(|n| n < 0) {
            self.push(field, "out_of_range", "must not be negative");
        }
    }

    /// `Ok(())` when nothing was recorded, else [`Error::Validation`].
    pub fn finish(self) -> Result<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.errors))
        }
    }
}

/// Whether `value` looks like an email address (see [`Validator::email`]).
pub(crate) fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    value.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
}

/// Whether a JSON value holds a string with a NUL character anywhere (no stored text does,
/// and PostgreSQL refuses one as a parameter).
pub(crate) fn holds_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_error_lists_fields() {
        let mut v = Validator::new();
        v.text("name", " ", true, 10);
        v.text("title", "abcdefghijk", false, 10);
        let err = v.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "validation failed: name: must not be blank; title: must be at most 10 characters"
        );
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.org"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@@b.co", "a b@c.de", "a@.co", "a@b.co.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
