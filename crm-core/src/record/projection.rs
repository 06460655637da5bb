//! What a caller is shown of a record, and may write to it: the field rules of their
//! [`Grants`] applied in one place for every exit (records, JSON objects of the feed, webhook
//! payloads, history) and every write.

use serde_json::{Map, Value};

use super::entity::Entity;
use super::row::Record;
use super::values::{from_object, to_object};
use crate::access::grants::Grants;
use crate::access::rules::FieldRule;
use crate::error::{Error, FieldError, Result};

/// `record` without the fields hidden from the caller: hidden custom fields are removed, hidden
/// columns (always ones that may be empty: see the permission sets' checks) are emptied.
///
/// # Errors
/// [`Error::Internal`] if the record does not round-trip through JSON (it always does).
pub(crate) fn redact<E: Entity>(grants: &Grants, record: &mut Record<E>) -> Result<()> {
    if !grants.hides_fields_of(E::TABLE) {
        return Ok(());
    }
    let mut own: Option<Map<String, Value>> = None;
    for (field, rule) in grants.field_rules(E::TABLE) {
        if rule != FieldRule::Hidden {
            continue;
        }
        if E::COLUMNS.iter().any(|c| c.name == field) {
            let object = match &mut own {
                Some(o) => o,
                None => own.insert(to_object(&record.fields)?),
            };
            object.insert(field.to_owned(), Value::Null);
        } else {
            record.custom_fields.remove(field);
        }
    }
    if let Some(object) = own {
        record.fields = from_object(object)?;
    }
    Ok(())
}

/// `object` (a record's JSON, or a change set keyed by field with custom fields under
/// `custom_fields`) without the fields of `table` hidden from the caller.
#[allow(
    dead_code,
    reason = "for the feed, history and webhook projections of issue 27, not yet written"
)]
pub(crate) fn redact_object(grants: &Grants, table: &str, object: &mut Map<String, Value>) {
    for (field, rule) in grants.field_rules(table) {
        if rule != FieldRule::Hidden {
            continue;
        }
        object.remove(field);
        if let Some(Value::Object(custom)) = object.get_mut("custom_fields") {
            custom.remove(field);
        }
        object.remove(&format!("custom_fields.{field}"));
    }
}

/// An error naming every field of `written` (the fields a write sets, custom fields by key) the
/// caller may not write: 422 `read_only` (or `hidden_field`).
///
/// # Errors
/// [`Error::Validation`].
pub(crate) fn check_writable<'a>(
    grants: &Grants,
    table: &str,
    written: impl IntoIterator<Item = (&'a str, bool)>,
) -> Result<()> {
    let mut errors = Vec::new();
    for (field, custom) in written {
        let (code, what) = match grants.field_rule(table, field) {
            None => continue,
            Some(FieldRule::ReadOnly) => ("read_only", "is read-only for this caller"),
            Some(FieldRule::Hidden) => ("hidden_field", "is hidden from this caller"),
        };
        let path = if custom {
            format!("custom_fields.{field}")
        } else {
            field.to_owned()
        };
        errors.push(FieldError::new(&path, code, format!("`{path}` {what}")));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(errors))
    }
}
