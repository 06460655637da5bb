//! The keys a record is looked up by besides its id, kept in side tables by the one write path:
//! the values of its unique custom fields (`custom_field_unique_values`, whose primary key is the
//! constraint) and the keys duplicate detection matches on (`record_match_keys`: normalized
//! email, domain and name, as the entity declares with [`Entity::MATCH_ON`]).
//!
//! Both are computed here, once, from a record's columns and custom fields, and written in the
//! transaction of the write that changes them: create and import (batched), every change through
//! `write_in` (only when a key changed), purge and erasure (rows removed), merge (the absorbed
//! records' rows removed). A soft-deleted record keeps its rows, so restoring it never collides;
//! duplicate lookups skip it. Absent values have no row, so they never collide.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::entity::Entity;
use crate::custom_fields::{CustomFieldDefinition, CustomFieldType, Definitions};
use crate::entities::EntityKind;
use crate::error::{Error, Result, ResultExt as _};
use crate::organizations::OrganizationId;
use crate::storage::{Arg, Conn, Rows, Sql};

crate::text_enum! {
    /// A rule by which duplicate detection matches records.
    pub enum MatchRule {
        /// The same email address, case-insensitively.
        Email = "email",
        /// The same web domain: lower-case, without scheme, `www.` or path.
        Domain = "domain",
        /// The same name: lower-case, punctuation dropped, whitespace collapsed (for companies,
        /// common legal suffixes such as `inc`, `llc`, `ltd`, `gmbh` dropped too).
        Name = "name",
    }
}

/// One match rule of an entity: which of its columns the rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchOn {
    /// The rule.
    pub rule: MatchRule,
    /// The columns whose values, joined by a space, make the key (`first_name`, `last_name`).
    pub columns: &'static [&'static str],
    /// Whether the name is a company's (legal suffixes are dropped).
    pub company: bool,
}

impl MatchOn {
    /// Rule `rule` over `columns`.
    pub const fn new(rule: MatchRule, columns: &'static [&'static str]) -> Self {
        Self {
            rule,
            columns,
            company: false,
        }
    }

    /// A company's name over `columns`: legal suffixes are dropped.
    pub const fn company_name(columns: &'static [&'static str]) -> Self {
        Self {
            rule: MatchRule::Name,
            columns,
            company: true,
        }
    }
}

/// A record that may be the same as the one being written: its id and the rule that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Duplicate {
    /// The position of the new record in its batch (0 for a single create).
    pub index: usize,
    /// The existing record (or, within a batch, the new id of the earlier item).
    pub id: Uuid,
    /// The rule that matched.
    pub rule: MatchRule,
}

/// What the caller wants done about likely duplicates when creating or importing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Do not look (no extra query).
    #[default]
    Ignore,
    /// Write anyway and answer the matches.
    Warn,
    /// Refuse the write with [`Error::Duplicates`] when anything matches.
    Reject,
}

/// The keys of one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    /// `(custom field key, canonical value)` of its unique custom fields with a value.
    pub(crate) unique: Vec<(String, String)>,
    /// `(rule, normalized value)`.
    pub(crate) matches: Vec<(MatchRule, String)>,
}

/// The keys of a record of `E` with `values` (its columns as JSON) and `custom` fields.
pub(crate) fn keys_of<E: Entity>(
    defs: &Definitions,
    values: &Map<String, Value>,
    custom: &Map<String, Value>,
) -> Keys {
    let mut keys = Keys {
        unique: Vec::new(),
        matches: matches_of::<E>(values),
    };
    for def in defs.unique() {
        if let Some(v) = custom
            .get(&def.key)
            .and_then(|v| canonical(def.field_type, v))
        {
            keys.unique.push((def.key.clone(), v));
        }
    }
    keys
}

/// The duplicate-match keys of a record of `E` with `values` (its columns as JSON).
pub(crate) fn matches_of<E: Entity>(values: &Map<String, Value>) -> Vec<(MatchRule, String)> {
    let mut matches = Vec::new();
    for m in E::MATCH_ON {
        let text: Vec<&str> = m
            .columns
            .iter()
            .filter_map(|c| values.get(*c).and_then(Value::as_str))
            .collect();
        let text = text.join(" ");
        let key = match m.rule {
            MatchRule::Email => normalize_email(&text),
            MatchRule::Domain => normalize_domain(&text),
            MatchRule::Name => normalize_name(&text, m.company),
        };
        if let Some(key) = key
            && !matches.contains(&(m.rule, key.clone()))
        {
            matches.push((m.rule, key));
        }
    }
    matches
}

/// Whether a custom field of `field_type` may be unique.
pub(crate) fn may_be_unique(field_type: CustomFieldType) -> bool {
    !matches!(
        field_type,
        CustomFieldType::Boolean | CustomFieldType::MultiSelect | CustomFieldType::Currency
    )
}

/// The canonical text of a (normalized) custom field value: what two values that mean the same
/// share. `None` for null. Long values are kept as their SHA-256, which an index can hold.
pub(crate) fn canonical(field_type: CustomFieldType, v: &Value) -> Option<String> {
    let text = match (field_type, v) {
        (_, Value::Null) => return None,
        (CustomFieldType::Email, Value::String(s)) => s.trim().to_lowercase(),
        (CustomFieldType::Number, Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
            (None, Some(f)) => format!("{f}"),
            (None, None) => n.to_string(),
        },
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    };
    Some(if text.len() > 200 {
        format!("sha256:{}", crate::auth::sha256_hex(&text))
    } else {
        text
    })
}

fn normalize_email(text: &str) -> Option<String> {
    let e = text.trim().to_lowercase();
    e.contains('@').then_some(e)
}

fn normalize_domain(text: &str) -> Option<String> {
    let d = text.trim().to_lowercase();
    let d = d
        .strip_prefix("https://")
        .or_else(|| d.strip_prefix("http://"))
        .unwrap_or(&d);
    let d = d.split(['/', '?', '#']).next().unwrap_or_default();
    let d = d.strip_prefix("www.").unwrap_or(d).trim_end_matches('.');
    (!d.is_empty()).then(|| d.to_owned())
}

/// Legal forms dropped from the end of a company's name.
const LEGAL_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "gmbh",
    "corp",
    "corporation",
    "co",
    "company",
    "plc",
    "ag",
    "sa",
    "sas",
    "sarl",
    "bv",
    "nv",
    "srl",
    "spa",
    "oy",
    "ab",
    "as",
    "kg",
    "pty",
    "llp",
    "lp",
];

/// Lower-case words of `text`, punctuation dropped; a company's trailing legal forms dropped.
pub(crate) fn normalize_name(text: &str, company: bool) -> Option<String> {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() {
                Some(c)
            } else if c.is_whitespace() || c == '-' || c == '/' || c == '&' {
                Some(' ')
            } else {
                None
            }
        })
        .collect();
    let mut words: Vec<&str> = cleaned.split_whitespace().collect();
    if company {
        while words.len() > 1 && words.last().is_some_and(|w| LEGAL_SUFFIXES.contains(w)) {
            words.pop();
        }
    }
    let name = words.join(" ");
    (!name.is_empty()).then_some(name)
}

/// Records the keys of new records (`(id, keys)`), in a few statements.
///
/// # Errors
/// [`Error::Conflict`] (`duplicate`) naming `custom_fields.<key>` when a unique value is taken
/// (by another record, or by another record of the batch).
pub(crate) async fn insert(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    records: &[(Uuid, &Keys)],
) -> Result<()> {
    insert_unique(conn, org, entity, records).await?;
    insert_matches(conn, org, entity, records).await
}

async fn insert_unique(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    records: &[(Uuid, &Keys)],
) -> Result<()> {
    // One statement per field, so that a collision names it.
    let mut fields: Vec<&str> = records
        .iter()
        .flat_map(|(_, k)| k.unique.iter().map(|(key, _)| key.as_str()))
        .collect();
    fields.sort_unstable();
    fields.dedup();
    let backend = conn.backend();
    for field in fields {
        let columns = vec!["organization_id", "entity", "key", "value", "record_id"];
        let mut rows = Rows::new("custom_field_unique_values", columns, records.len());
        for (id, keys) in records {
            for (key, value) in keys.unique.iter().filter(|(k, _)| k == field) {
                rows.push(org).push(entity).push(key.as_str());
                rows.push(value.as_str()).push(*id);
            }
        }
        for q in rows.statements(backend, "")? {
            conn.execute(&q).await.on_unique(|| {
                format!("custom_fields.{field}: the value is already used by another {entity}")
            })?;
        }
    }
    Ok(())
}

async fn insert_matches(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    records: &[(Uuid, &Keys)],
) -> Result<()> {
    let columns = vec!["organization_id", "entity", "rule", "value", "record_id"];
    let mut rows = Rows::new("record_match_keys", columns, records.len());
    for (id, keys) in records {
        for (rule, value) in &keys.matches {
            rows.push(org).push(entity).push(rule.as_str());
            rows.push(value.as_str()).push(*id);
        }
    }
    let backend = conn.backend();
    for q in rows.statements(backend, "")? {
        conn.execute(&q).await?;
    }
    Ok(())
}

/// Replaces the keys of record `id` from `before` to `after`, each table only when its part
/// changed.
pub(crate) async fn replace(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    id: Uuid,
    before: &Keys,
    after: &Keys,
) -> Result<()> {
    let record = [(id, after)];
    if before.unique != after.unique {
        delete(conn, "custom_field_unique_values", org, entity, &[id]).await?;
        insert_unique(conn, org, entity, &record).await?;
    }
    if before.matches != after.matches {
        delete(conn, "record_match_keys", org, entity, &[id]).await?;
        insert_matches(conn, org, entity, &record).await?;
    }
    Ok(())
}

/// Forgets the match keys of records `ids` (a rebuild).
pub(crate) async fn forget_matches(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    ids: &[Uuid],
) -> Result<()> {
    delete(conn, "record_match_keys", org, entity, ids).await
}

/// Forgets every key of records `ids` (purge, erasure, merge).
pub(crate) async fn forget(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    entity: &'static str,
    ids: &[Uuid],
) -> Result<()> {
    delete(conn, "custom_field_unique_values", org, entity, ids).await?;
    delete(conn, "record_match_keys", org, entity, ids).await
}

async fn delete(
    conn: &mut Conn<'_>,
    table: &'static str,
    org: OrganizationId,
    entity: &'static str,
    ids: &[Uuid],
) -> Result<()> {
    for chunk in ids.chunks(1000) {
        let mut q = Sql::new("delete from ");
        q.push(table).push(" where organization_id = ").bind(org);
        q.push(" and entity = ").bind(entity);
        q.push(" and record_id in (")
            .bind_list(chunk.iter().map(|id| Arg::Uuid(Some(*id))))
            .push(")");
        conn.execute(&q).await?;
    }
    Ok(())
}

/// The live records of `E` matching any of `wanted`, as `(rule, value, id)`: one indexed lookup
/// per 200 keys (`record_match_keys` by organization, entity, rule and value).
pub(crate) async fn lookup<E: Entity>(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    wanted: &[(MatchRule, String)],
) -> Result<Vec<(MatchRule, String, Uuid)>> {
    let mut found = Vec::new();
    for chunk in wanted.chunks(200) {
        let q = lookup_sql::<E>(org, chunk);
        let rows: Vec<(String, String, Uuid)> = conn.fetch_all(&q).await?;
        for (rule, value, id) in rows {
            let rule = rule
                .parse()
                .map_err(|_| Error::Internal(format!("unknown match rule {rule:?}")))?;
            found.push((rule, value, id));
        }
    }
    Ok(found)
}

/// The duplicate lookup's statement (its plan is proved in the index proof).
fn lookup_sql<E: Entity>(org: OrganizationId, wanted: &[(MatchRule, String)]) -> Sql {
    let mut q = Sql::new("select k.rule, k.value, k.record_id from record_match_keys k join ");
    q.push(E::TABLE)
        .push(" r on r.organization_id = k.organization_id and r.id = k.record_id");
    q.push(" where k.organization_id = ").bind(org);
    q.push(" and k.entity = ").bind(E::NAME);
    q.push(" and not r.is_deleted and (");
    for (i, (rule, value)) in wanted.iter().enumerate() {
        q.push(if i == 0 { "(" } else { " or (" });
        q.push("k.rule = ").bind(rule.as_str());
        q.push(" and k.value = ").bind(value.as_str()).push(")");
    }
    q.push(") order by k.record_id");
    q
}

/// Records the unique values of field `def` from every record of its entity (trash included),
/// for a field that just became unique.
///
/// # Errors
/// [`Error::Conflict`] (`duplicate`) when two records hold the same value.
pub(crate) async fn backfill_unique(
    conn: &mut Conn<'_>,
    def: &CustomFieldDefinition,
) -> Result<()> {
    let kind: EntityKind = def.entity.parse()?;
    let entity = kind.name();
    let org = def.organization_id;
    let mut after: Option<Uuid> = None;
    loop {
        let mut q = Sql::new("select id, custom_fields from ");
        q.push(kind.table())
            .push(" where organization_id = ")
            .bind(org);
        if let Some(after) = after {
            q.push(" and id > ").bind(after);
        }
        q.push(" order by id limit 1000");
        let rows: Vec<(Uuid, sqlx::types::Json<Map<String, Value>>)> = conn.fetch_all(&q).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = Some(last.0);
        let keys: Vec<(Uuid, Keys)> = rows
            .iter()
            .filter_map(|(id, custom)| {
                let v = canonical(def.field_type, custom.0.get(&def.key)?)?;
                Some((
                    *id,
                    Keys {
                        unique: vec![(def.key.clone(), v)],
                        matches: Vec::new(),
                    },
                ))
            })
            .collect();
        let refs: Vec<(Uuid, &Keys)> = keys.iter().map(|(id, k)| (*id, k)).collect();
        insert_unique(conn, org, entity, &refs).await?;
    }
}

/// Drops the unique values of field `def` (no longer unique).
pub(crate) async fn drop_unique(conn: &mut Conn<'_>, def: &CustomFieldDefinition) -> Result<()> {
    let kind: EntityKind = def.entity.parse()?;
    let mut q = Sql::new("delete from custom_field_unique_values where organization_id = ");
    q.bind(def.organization_id)
        .push(" and entity = ")
        .bind(kind.name());
    q.push(" and key = ").bind(def.key.as_str());
    conn.execute(&q).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize() {
        assert_eq!(
            normalize_name("  Acme,   Inc. ", true).as_deref(),
            Some("acme")
        );
        assert_eq!(
            normalize_name("ACME GmbH & Co. KG", true).as_deref(),
            Some("acme")
        );
        assert_eq!(
            normalize_name("O'Brien  John", false).as_deref(),
            Some("obrien john")
        );
        assert_eq!(normalize_name("Inc", true).as_deref(), Some("inc"));
        assert_eq!(normalize_name(" .. ", false), None);
    }

    #[test]
    fn domains_normalize() {
        assert_eq!(
            normalize_domain("https://WWW.Acme.com/about").as_deref(),
            Some("acme.com")
        );
        assert_eq!(normalize_domain("acme.com").as_deref(), Some("acme.com"));
        assert_eq!(normalize_domain(" "), None);
    }

    #[test]
    fn numbers_are_canonical() {
        let n = |v: Value| canonical(CustomFieldType::Number, &v);
        assert_eq!(n(serde_json::json!(1)), n(serde_json::json!(1.0)));
        assert_ne!(n(serde_json::json!(1)), n(serde_json::json!(1.5)));
        assert_eq!(
            canonical(CustomFieldType::Email, &"A@B.c".into()),
            canonical(CustomFieldType::Email, &"a@b.C".into())
        );
        assert_eq!(canonical(CustomFieldType::Text, &Value::Null), None);
    }
}
