//! The entities the data commands take (any of the registry), and how their fields map to CSV
//! columns.

use std::future::Future;
use std::pin::Pin;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use crm_core::EntityKind;
use crm_core::record::{Column, Kind};
use crm_core::{CustomFieldDefinition, CustomFieldType};
use serde_json::Value;

/// The parser of an entity argument: the plural of any entity of the registry (`contacts`),
/// with the choices listed in `--help`.
pub(crate) fn entity_parser() -> impl TypedValueParser<Value = EntityKind> {
    PossibleValuesParser::new(EntityKind::ALL.iter().map(|k| k.table()))
        .try_map(|s| EntityKind::from_table(&s).ok_or("not an entity of the registry"))
}

/// A future of a command's work, boxed so that an [`EntityVisitor`](crm_core::EntityVisitor) can return it for any
/// entity type.
pub(crate) type Work<'a, T> = Pin<Box<dyn Future<Output = anyhow::Result<T>> + 'a>>;

/// The columns every record has, exported first and ignored on import (the server owns them).
pub(crate) use crm_core::record::COMMON_FIELDS as COMMON;

/// A CSV cell as the JSON value of a column of `kind`; `Err` names what was expected.
pub(crate) fn cell_for_column(kind: Kind, cell: &str) -> Result<Value, String> {
    Ok(match kind {
        Kind::Integer => Value::from(cell.parse::<i64>().map_err(|_| "an integer".to_owned())?),
        Kind::Bool => Value::Bool(parse_bool(cell)?),
        Kind::Json => serde_json::from_str(cell).map_err(|_| "JSON".to_owned())?,
        Kind::Text | Kind::Uuid | Kind::Ref { .. } | Kind::Timestamp | Kind::Date => {
            Value::String(cell.to_owned())
        }
    })
}

/// A CSV cell as the JSON value of a custom field.
pub(crate) fn cell_for_custom(def: &CustomFieldDefinition, cell: &str) -> Result<Value, String> {
    Ok(match def.field_type {
        CustomFieldType::Number => serde_json::from_str::<serde_json::Number>(cell)
            .map(Value::Number)
            .map_err(|_| "a number".to_owned())?,
        CustomFieldType::Boolean => Value::Bool(parse_bool(cell)?),
        CustomFieldType::MultiSelect if cell.starts_with('[') => {
            serde_json::from_str(cell).map_err(|_| "a JSON list".to_owned())?
        }
        CustomFieldType::MultiSelect => {
            Value::from(cell.split(';').map(str::trim).collect::<Vec<_>>())
        }
        CustomFieldType::Currency => {
            serde_json::from_str(cell).map_err(|_| "money as JSON".to_owned())?
        }
        _ => Value::String(cell.to_owned()),
    })
}

fn parse_bool(cell: &str) -> Result<bool, String> {
    match cell.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err("true or false".to_owned()),
    }
}

/// A JSON value as a CSV cell: strings as they are, null as empty, anything else as JSON.
pub(crate) fn cell_of(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The editable columns of an entity (what an import may set).
pub(crate) fn editable(columns: &'static [Column]) -> impl Iterator<Item = &'static Column> {
    columns.iter().filter(|c| !c.readonly)
}
