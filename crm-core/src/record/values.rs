//! A record as column values: the JSON object a record serializes to, read column by column
//! and bound as SQL values.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::fields::Column;
use crate::error::{Error, Result};
use crate::storage::Arg;

pub(super) fn field<'a>(values: &'a Map<String, Value>, c: &Column) -> &'a Value {
    values.get(c.name).unwrap_or(&Value::Null)
}

pub(super) fn column_arg(c: &Column, values: &Map<String, Value>) -> Result<Arg> {
    c.kind.to_arg(field(values, c)).ok_or_else(|| {
        Error::Internal(format!(
            "field `{}` does not serialize as {}",
            c.name,
            c.kind.expected()
        ))
    })
}

pub(crate) fn to_object<T: Serialize>(value: &T) -> Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::Internal(
            "a record did not serialize as an object".into(),
        )),
        Err(e) => Err(Error::Internal(format!("a record did not serialize: {e}"))),
    }
}

pub(super) fn from_object<T: DeserializeOwned>(m: Map<String, Value>) -> Result<T> {
    serde_json::from_value(Value::Object(m))
        .map_err(|e| Error::Internal(format!("a record did not deserialize: {e}")))
}
