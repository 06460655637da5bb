//! The column constraints an entity declares in [`record_type!`](crate::record_type), checked on
//! every write before the entity's own [`Entity::validate`].

use chrono::Datelike;

use super::entity::Entity;
use super::fields::{Column, FieldValue, Format};
use crate::error::{Error, Result};
use crate::time::{OUT_OF_YEARS, YEARS};
use crate::validation::Validator;

/// Checks `entity` against its declared constraints, then its own rules.
pub(crate) fn validate<E: Entity>(entity: &E) -> Result<()> {
    let mut v = Validator::new();
    entity.for_each_value(|c, value| check(c, value, &mut v));
    entity.validate(&mut v);
    v.finish()
}

/// The checks of one column's value.
fn check(c: &Column, value: FieldValue<'_>, v: &mut Validator) {
    match value {
        FieldValue::Text(s) => text(c, s, v),
        FieldValue::Integer(n) => {
            if let Some((min, max)) = c.range
                && !(min..=max).contains(&n)
            {
                let message = if max == i64::MAX {
                    format!("must be at least {min}")
                } else {
                    format!("must be between {min} and {max}")
                };
                v.push(c.name, "out_of_range", message);
            }
        }
        FieldValue::Date(d) if !YEARS.contains(&d.year()) => out_of_years(c, v),
        FieldValue::Timestamp(t) if !YEARS.contains(&t.year()) => out_of_years(c, v),
        _ => {}
    }
}

fn out_of_years(c: &Column, v: &mut Validator) {
    v.push(c.name, "out_of_range", OUT_OF_YEARS);
}

fn text(c: &Column, s: &str, v: &mut Validator) {
    let required = !c.readonly && !c.nullable && c.choices.is_empty();
    v.text(c.name, s, required, c.max_length.unwrap_or(usize::MAX));
    if c.narrowed && !c.choices.contains(&s) {
        v.push(
            c.name,
            "invalid_choice",
            format!("`{s}` is not one of: {}", c.choices.join(", ")),
        );
    }
    match c.format {
        Some(Format::Email) => v.email(c.name, s),
        Some(Format::Currency) => v.currency(c.name, s),
        None => {}
    }
}

/// Both checks' outcome, with every field error of both in one [`Error::Validation`].
pub(super) fn checked<T>(first: Result<T>, second: Result<()>) -> Result<T> {
    match (first, second) {
        (Ok(v), Ok(())) => Ok(v),
        (Err(Error::Validation(mut a)), Err(Error::Validation(b))) => {
            a.extend(b);
            Err(Error::Validation(a))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}
