//! Opaque keyset cursors: where the previous page ended, under which sort.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::query::Direction;
use crate::error::{Error, Result};

/// The last row of a page: its sort value and id, with the sort they belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// Sort field.
    #[serde(rename = "f")]
    pub(crate) field: String,
    /// Sort direction.
    #[serde(rename = "d")]
    pub(crate) direction: Direction,
    /// The sort field's value on the last row (`null` for a NULL).
    #[serde(rename = "v")]
    pub(crate) value: Value,
    /// The last row's id.
    #[serde(rename = "i")]
    pub(crate) id: Uuid,
}

impl Cursor {
    /// The opaque string handed to callers (URL-safe base64 of compact JSON).
    pub(crate) fn encode(&self) -> String {
        // Serializing this struct cannot fail: it has only strings, a UUID and a JSON value.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a cursor string; any tampering answers a validation error, never a panic.
    pub(crate) fn decode(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "cursor",
                "invalid_cursor",
                "is not a cursor this list returned",
            )
        };
        if s.len() > 4096 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let c = Cursor {
            field: "name".into(),
            direction: Direction::Desc,
            value: Value::String("Acme".into()),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "not base64!", "e30", &"A".repeat(5000)] {
            assert!(
                matches!(Cursor::decode(bad), Err(Error::Validation(_))),
                "{bad}"
            );
        }
    }
}
