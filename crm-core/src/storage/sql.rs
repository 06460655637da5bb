//! A SQL statement under construction: text with `$n` placeholders plus the values to bind.
//!
//! Both sqlx drivers accept `$1`-style placeholders (SQLite reads them as `?NNN`), so one text
//! serves both backends; the values are bound per backend in `postgres.rs` / `sqlite.rs`.
//! Text reaches a statement only four ways, and the types hold it: [`Sql::new`] and
//! [`Sql::push`] take `&'static str` (SQL written in the source, and identifiers from the entity
//! registry, which are static too), [`Sql::push_key`] takes a [`FieldKey`] (a custom-field key
//! checked against `[a-z][a-z0-9_]{0,62}`), [`Sql::limit`] takes a number, and every value goes
//! through [`Sql::bind`]. No `format!`ed text can be pushed.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::id::Id;

/// A value to bind, typed so that a SQL `NULL` still carries its type (PostgreSQL needs it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
    Date(Option<NaiveDate>),
    Json(Option<Value>),
    /// One column of many rows (PostgreSQL only: see `rows.rs`).
    Array(super::rows::Array),
}

macro_rules! arg_from {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Arg {
            fn from(v: $t) -> Self { Arg::$variant(Some(v.into())) }
        }
        impl From<Option<$t>> for Arg {
            fn from(v: Option<$t>) -> Self { Arg::$variant(v.map(Into::into)) }
        }
    )*};
}

arg_from! {
    Uuid => Uuid,
    String => Text,
    &str => Text,
    i64 => Int,
    f64 => Float,
    bool => Bool,
    DateTime<Utc> => Time,
    NaiveDate => Date,
    Value => Json,
}

impl<E> From<Id<E>> for Arg {
    fn from(id: Id<E>) -> Self {
        Arg::Uuid(Some(id.uuid()))
    }
}

impl<E> From<Option<Id<E>>> for Arg {
    fn from(id: Option<Id<E>>) -> Self {
        Arg::Uuid(id.map(Id::uuid))
    }
}

/// A custom-field key that passed `[a-z][a-z0-9_]{0,62}`: safe as an identifier and inside a
/// SQL string literal, the only text besides static SQL that [`Sql`] takes unbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldKey<'a>(&'a str);

impl<'a> FieldKey<'a> {
    /// `key`, if it is a valid custom-field key.
    pub(crate) fn new(key: &'a str) -> Option<Self> {
        let mut bytes = key.bytes();
        let valid = matches!(bytes.next(), Some(b'a'..=b'z'))
            && key.len() <= 63
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        valid.then_some(Self(key))
    }

    /// The key.
    pub(crate) fn as_str(&self) -> &'a str {
        self.0
    }
}

/// `text` with LIKE's wildcards (`%`, `_`) and the escape character `\` escaped, for a pattern
/// used with `escape '\'`.
pub(crate) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// SQL text plus its bind values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    /// Starts a statement with `text`.
    pub(crate) fn new(text: &'static str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text written in the source, or an identifier of the registry.
    pub(crate) fn push(&mut self, text: &'static str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a custom-field key.
    pub(crate) fn push_key(&mut self, key: FieldKey<'_>) -> &mut Self {
        self.text.push_str(key.0);
        self
    }

    /// Appends ` limit <rows>`, the count written into the text rather than bound.
    ///
    /// PostgreSQL costs a bound `limit $n` of a generic plan as a tenth of the rows, so the
    /// plan cache never prefers its generic plan to a plan made for the values and plans a
    /// paged statement afresh on every execution (40 % of the database's time for an admin's
    /// list page: docs/benchmarks.md, "Page sizes in the text"). Written out, one statement per
    /// page size keeps a generic plan; page sizes are few and bounded.
    pub(crate) fn limit(&mut self, rows: u32) -> &mut Self {
        // Writing to a String cannot fail.
        let _ = write!(self.text, " limit {rows}");
        self
    }

    /// Appends a placeholder and records its value.
    pub(crate) fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        // Writing to a String cannot fail.
        let _ = write!(self.text, "${}", self.args.len());
        self
    }

    /// Appends `a, b, c` with one placeholder per value.
    pub(crate) fn bind_list(&mut self, values: impl IntoIterator<Item = Arg>) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self
    }

    /// Appends "`needle` occurs in the text `haystack` appends, letter case aside":
    /// `lower(haystack) like lower('%needle%')`, wildcards escaped. The database lower-cases both
    /// sides, so that a value is found however it was written, by each backend's own notion of
    /// case (SQLite's covers ASCII letters only).
    pub(crate) fn push_contains(
        &mut self,
        haystack: impl FnOnce(&mut Sql),
        needle: &str,
    ) -> &mut Self {
        self.push("lower(");
        haystack(self);
        self.push(") like lower(")
            .bind(format!("%{}%", escape_like(needle)))
            .push(") escape '\\'")
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn args(&self) -> &[Arg] {
        &self.args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_text_and_binds_nothing() {
        let mut sql = Sql::new("select id from contacts where organization_id = ");
        sql.bind(Uuid::nil()).push(" order by id").limit(51);
        assert_eq!(
            sql.text(),
            "select id from contacts where organization_id = $1 order by id limit 51"
        );
        assert_eq!(sql.args().len(), 1);
    }

    #[test]
    fn only_plain_keys_are_field_keys() {
        for ok in ["tier", "a", "renewal_2026"] {
            assert!(FieldKey::new(ok).is_some(), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "Tier",
            "2fa",
            "a'b",
            "a-b",
            "a b",
            "a.b",
            "é",
            long.as_str(),
        ] {
            assert!(FieldKey::new(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn contains_lower_cases_both_sides_and_escapes_wildcards() {
        let mut q = Sql::new("select 1 where ");
        q.push_contains(|q| _ = q.push("t.name"), "50%_\\Off");
        assert_eq!(
            q.text(),
            "select 1 where lower(t.name) like lower($1) escape '\\'"
        );
        assert_eq!(q.args(), [Arg::Text(Some("%50\\%\\_\\\\Off%".into()))]);
    }

    #[test]
    fn placeholders_are_numbered_in_bind_order() {
        let mut q = Sql::new("select * from accounts where organization_id = ");
        q.bind(Uuid::nil()).push(" and name in (");
        q.bind_list(["a".into(), "b".into()]).push(")");
        assert_eq!(
            q.text(),
            "select * from accounts where organization_id = $1 and name in ($2, $3)"
        );
        assert_eq!(q.args().len(), 3);
        assert_eq!(q.args()[2], Arg::Text(Some("b".into())));
    }
}
