//! [`WriteJson`]: records and pages of them written as JSON straight into a buffer, byte for
//! byte what their `Serialize` gives, without serde's map machinery.
//!
//! A record serializes flat (its entity's fields `flatten`ed beside the common columns), so
//! serde writes it as a map: every key of every record goes through `serialize_key` and the
//! string escaper at run time, and uuids and timestamps through the escaper too. On a list page
//! of 50 contacts that was about a sixth of the server's CPU (docs/benchmarks.md, "Writing
//! records as JSON"). Here the keys are constants, escaped at compile time, and uuids and
//! timestamps, which never need escaping, are written as they are; every other value still goes
//! through `serde_json`, so text is escaped exactly as before. A test holds the output of every
//! entity to its `Serialize`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::page::Page;
use super::row::Record;

/// JSON written into a buffer: what `serde_json::to_writer` gives for the value's `Serialize`.
///
/// ```
/// use crm_core::record::WriteJson;
/// use crm_core::Page;
///
/// let page: Page<crm_core::Record<crm_core::Contact>> = Page { data: vec![], next_cursor: None };
/// let mut out = Vec::new();
/// page.write_json(&mut out)?;
/// assert_eq!(out, serde_json::to_vec(&page)?);
/// # Ok::<_, serde_json::Error>(())
/// ```
pub trait WriteJson {
    /// Appends the value's JSON to `out`.
    ///
    /// # Errors
    /// `serde_json`'s, for a value it cannot write (a map with non-string keys).
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;

    /// About how many bytes [`write_json`](Self::write_json) writes: where the buffer starts.
    fn json_size_hint(&self) -> usize {
        1024
    }
}

/// An entity's own fields written as `,"name":value` pairs in declaration order;
/// [`record_type!`](crate::record_type) implements it.
#[doc(hidden)]
pub trait WriteFields {
    /// Appends `,"field":value` for each field.
    ///
    /// # Errors
    /// `serde_json`'s.
    fn write_fields(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

/// Appends `key` (a constant `,"name":`) and `value` as serde writes it.
#[doc(hidden)]
#[inline]
pub fn write_entry<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    key: &str,
    value: &T,
) -> serde_json::Result<()> {
    out.extend_from_slice(key.as_bytes());
    serde_json::to_writer(&mut *out, value)
}

/// A uuid as serde writes it: quoted, hyphenated, lower case. Nothing in it needs escaping.
fn write_uuid(out: &mut Vec<u8>, id: &Uuid) {
    let mut buf = Uuid::encode_buffer();
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
    out.push(b'"');
}

fn write_optional_uuid(out: &mut Vec<u8>, id: Option<&Uuid>) {
    match id {
        Some(id) => write_uuid(out, id),
        None => out.extend_from_slice(b"null"),
    }
}

/// A timestamp as [`crate::time::serialize_rfc3339`] writes it: its RFC 3339 text (digits,
/// `-`, `:`, `T`, `.`, `Z`: nothing to escape) quoted, or chrono's way where that text is not
/// ours to write (leap seconds, years past 9999).
fn write_time(out: &mut Vec<u8>, t: &DateTime<Utc>) -> serde_json::Result<()> {
    let mut buf = [0u8; 30];
    match crate::time::rfc3339(t, &mut buf) {
        Some(text) => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
            Ok(())
        }
        None => serde_json::to_writer(&mut *out, t),
    }
}

impl<E: WriteFields> WriteJson for Record<E> {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        // Record's fields in declaration order, as its derive writes them (COMMON_FIELDS).
        out.extend_from_slice(b"{\"id\":");
        write_uuid(out, &self.id.uuid());
        out.extend_from_slice(b",\"organization_id\":");
        write_uuid(out, &self.organization_id.uuid());
        out.extend_from_slice(b",\"created_at\":");
        write_time(out, &self.created_at)?;
        out.extend_from_slice(b",\"updated_at\":");
        write_time(out, &self.updated_at)?;
        out.extend_from_slice(b",\"created_by\":");
        write_optional_uuid(out, self.created_by.as_ref());
        out.extend_from_slice(b",\"updated_by\":");
        write_optional_uuid(out, self.updated_by.as_ref());
        write_entry(out, ",\"version\":", &self.version)?;
        out.extend_from_slice(if self.is_deleted {
            b",\"is_deleted\":true"
        } else {
            b",\"is_deleted\":false"
        });
        // chrono's own `Serialize`, as the derive uses for this one.
        write_entry(out, ",\"deleted_at\":", &self.deleted_at)?;
        out.extend_from_slice(b",\"deleted_by\":");
        write_optional_uuid(out, self.deleted_by.as_ref());
        write_entry(out, ",\"custom_fields\":", &self.custom_fields)?;
        self.fields.write_fields(out)?;
        out.push(b'}');
        Ok(())
    }

    /// A contact is about 520 bytes, with a few custom fields.
    fn json_size_hint(&self) -> usize {
        640
    }
}

impl<T: WriteJson> WriteJson for Page<T> {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"data\":[");
        for (i, row) in self.data.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            row.write_json(out)?;
        }
        write_entry(out, "],\"next_cursor\":", &self.next_cursor)?;
        out.push(b'}');
        Ok(())
    }

    fn json_size_hint(&self) -> usize {
        let row = self.data.first().map_or(0, WriteJson::json_size_hint);
        64 + row * self.data.len()
    }
}

impl<T: WriteJson + ?Sized> WriteJson for &T {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        (**self).write_json(out)
    }

    fn json_size_hint(&self) -> usize {
        (**self).json_size_hint()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::record::{Entity, Kind};
    use crate::{EntityKind, EntityVisitor};

    /// Text that needs every kind of escaping serde does: quotes, backslashes, control
    /// characters, and non-ASCII it leaves as it is.
    const AWKWARD: &str = "Ada \"the\" \\ Lovelace\n\t\u{1}é😀</script>";

    /// A record of `E` as JSON, every field set (`filled`) or every nullable field null.
    fn record_json<E: Entity>(filled: bool) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!("0190f2a3-1c2d-7e8f-9a0b-1c2d3e4f5a6b"));
        o.insert(
            "organization_id".into(),
            json!("0190f2a3-0000-7000-8000-000000000001"),
        );
        o.insert("created_at".into(), json!("2026-11-30T17:11:57.019570Z"));
        o.insert("updated_at".into(), json!("2026-11-30T17:11:57Z"));
        let who = json!("0190f2a3-0000-7000-8000-0000000000ff");
        let maybe = |v: Value| if filled { v } else { Value::Null };
        o.insert("created_by".into(), maybe(who.clone()));
        o.insert("updated_by".into(), maybe(who.clone()));
        o.insert("version".into(), json!(12_345_678_901_i64));
        o.insert("is_deleted".into(), json!(filled));
        o.insert(
            "deleted_at".into(),
            maybe(json!("2026-11-30T17:11:57.123456789Z")),
        );
        o.insert("deleted_by".into(), maybe(who));
        o.insert(
            "custom_fields".into(),
            json!({ "score": 26, "note": AWKWARD, "ratio": 0.1, "tags": ["a", "b"], "none": null }),
        );
        for c in E::COLUMNS {
            let value = match c.kind {
                Kind::Text if !c.choices.is_empty() => json!(c.choices[c.choices.len() - 1]),
                Kind::Text => json!(AWKWARD),
                Kind::Integer => json!(-9_007_199_254_740_993_i64),
                Kind::Bool => json!(true),
                Kind::Uuid | Kind::Ref { .. } => json!("0190f2a3-0000-7000-8000-00000000abcd"),
                Kind::Timestamp => json!("1999-12-31T23:59:59.5Z"),
                Kind::Date => json!("2026-02-28"),
                Kind::Json => json!([]),
            };
            let value = if c.nullable && !filled {
                Value::Null
            } else {
                value
            };
            o.insert(c.name.into(), value);
        }
        Value::Object(o)
    }

    /// `write_json` gives exactly what `Serialize` gives, for every entity of the registry, a
    /// page of its records, and a record with its nullable fields null.
    #[test]
    fn every_entity_writes_what_it_serializes() {
        struct Check;
        impl EntityVisitor for Check {
            type Output = ();
            fn visit<E: Entity>(self) {
                for filled in [true, false] {
                    let record: Record<E> = serde_json::from_value(record_json::<E>(filled))
                        .unwrap_or_else(|e| panic!("{}: {e}", E::NAME));
                    let mut out = Vec::new();
                    record.write_json(&mut out).unwrap();
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        serde_json::to_string(&record).unwrap(),
                        "{} (filled: {filled})",
                        E::NAME
                    );
                    for next_cursor in [None, Some(format!("c\"{AWKWARD}"))] {
                        let page = Page {
                            data: vec![record.clone(), record.clone()],
                            next_cursor,
                        };
                        let mut out = Vec::new();
                        page.write_json(&mut out).unwrap();
                        assert_eq!(out, serde_json::to_vec(&page).unwrap(), "{}", E::NAME);
                    }
                }
                let empty: Page<Record<E>> = Page {
                    data: vec![],
                    next_cursor: None,
                };
                let mut out = Vec::new();
                empty.write_json(&mut out).unwrap();
                assert_eq!(out, serde_json::to_vec(&empty).unwrap());
            }
        }
        for kind in EntityKind::ALL {
            kind.visit(Check);
        }
    }
}
