//! Custom field values: stored as one JSON object per record (`jsonb` on PostgreSQL).
//!
//! Keys are identifiers (`[a-z][a-z0-9_]{0,62}`), so a key can be written into a JSON path in
//! SQL; values are scalars or arrays of scalars. Typed definitions per organization (and the
//! checks they bring) belong to the custom-field-definition service; this layer keeps the
//! storage rules that hold for every value.

use serde_json::{Map, Value};

use crate::error::{Error, FieldError, Result};

/// Most keys a record may carry.
const MAX_KEYS: usize = 100;
/// Largest serialized size of one record's custom fields.
const MAX_BYTES: usize = 64 * 1024;

/// Storage rules and merging of custom field maps (typed checks: `crate::field_definitions`).
pub(crate) struct CustomValues;

impl CustomValues {
    /// Whether `key` is a valid custom field key.
    pub(crate) fn is_valid_key(key: &str) -> bool {
        let mut bytes = key.bytes();
        matches!(bytes.next(), Some(b'a'..=b'z'))
            && key.len() <= 63
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    /// Removes `custom_fields` from a create input, checks it, and drops `null` values.
    pub(crate) fn take_new(input: &mut Map<String, Value>) -> Result<Map<String, Value>> {
        let mut map = match input.remove("custom_fields") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(Error::invalid(
                    "custom_fields",
                    "invalid_type",
                    "must be an object",
                ));
            }
        };
        map.retain(|_, v| !v.is_null());
        Self::check(&map, false)?;
        Ok(map)
    }

    /// Removes `custom_fields` from a patch input; `null` values mean "remove this key".
    pub(crate) fn take_patch(input: &mut Map<String, Value>) -> Result<Option<Map<String, Value>>> {
        match input.remove("custom_fields") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => {
                Self::check(&m, true)?;
                Ok(Some(m))
            }
            Some(_) => Err(Error::invalid(
                "custom_fields",
                "invalid_type",
                "must be an object",
            )),
        }
    }

    /// `current` with `patch` merged in: `null` removes a key, any other value sets it.
    pub(crate) fn merge(
        current: &Map<String, Value>,
        patch: Option<Map<String, Value>>,
    ) -> Result<Map<String, Value>> {
        let mut out = current.clone();
        for (k, v) in patch.into_iter().flatten() {
            if v.is_null() {
                out.remove(&k);
            } else {
                out.insert(k, v);
            }
        }
        Self::check_size(&out)?;
        Ok(out)
    }

    /// Checks keys and values; `null` is allowed in patches, where it removes a key.
    fn check(map: &Map<String, Value>, nulls: bool) -> Result<()> {
        let mut errors = Vec::new();
        for (k, v) in map {
            let field = format!("custom_fields.{k}");
            if !Self::is_valid_key(k) {
                errors.push(FieldError::new(
                    field,
                    "invalid_key",
                    "custom field keys are 1-63 characters of a-z, 0-9 and '_', starting with a letter",
                ));
            } else if crate::validation::holds_nul(v) {
                errors.push(FieldError::new(
                    field,
                    "invalid_format",
                    "must not contain NUL characters",
                ));
            } else if v.is_object() && v.get("amount_minor").is_none() || !nulls && v.is_null() {
                errors.push(FieldError::new(
                    field,
                    "invalid_type",
                    "custom field values are scalars, lists or money",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        if nulls { Ok(()) } else { Self::check_size(map) }
    }

    fn check_size(map: &Map<String, Value>) -> Result<()> {
        if map.len() > MAX_KEYS {
            return Err(Error::invalid(
                "custom_fields",
                "too_many",
                format!("at most {MAX_KEYS} custom fields per record"),
            ));
        }
        let size = serde_json::to_vec(map)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_BYTES {
            return Err(Error::invalid(
                "custom_fields",
                "too_long",
                format!("custom fields may take at most {MAX_BYTES} bytes"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn keys() {
        for ok in ["tier", "a1", "lead_score_2"] {
            assert!(CustomValues::is_valid_key(ok), "{ok}");
        }
        for bad in ["", "1a", "Tier", "a-b", "a b", "a'b", &"a".repeat(64)] {
            assert!(!CustomValues::is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn new_values_drop_nulls_and_reject_objects() {
        let mut input = obj(json!({"name": "x", "custom_fields": {"tier": "gold", "gone": null}}));
        let cf = CustomValues::take_new(&mut input).unwrap();
        assert_eq!(Value::Object(cf), json!({"tier": "gold"}));
        assert!(!input.contains_key("custom_fields"));

        let mut input = obj(json!({"custom_fields": {"nested": {"a": 1}, "Bad": 1}}));
        // (Typed checks of values are the definitions' business; objects other than money
        // never are values.)
        let Err(Error::Validation(errors)) = CustomValues::take_new(&mut input) else {
            panic!("expected a validation error")
        };
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn patch_merges_and_null_removes() {
        let current = obj(json!({"tier": "gold", "score": 3}));
        let patch = obj(json!({"tier": null, "region": "emea"}));
        let merged = CustomValues::merge(&current, Some(patch)).unwrap();
        assert_eq!(Value::Object(merged), json!({"score": 3, "region": "emea"}));
    }
}
