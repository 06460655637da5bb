//! Erasure (GDPR "right to be forgotten"): a person removed for good, with the personal data
//! the library holds about them elsewhere, leaving only tombstones.
//!
//! What is erased, in one transaction:
//! - the record, every record of the same person linked by a `[same_person]` column, both ways
//!   (a converted lead and the contact it became), and every record merged into one of them
//!   (found through the merge redirects: a merge says two records were one person);
//! - their activities; links to them from other records (nullable links are cleared and logged,
//!   a required link refuses with `still_required`);
//! - the `changes` of every event about them, and of every other event of the organization that
//!   holds one of their identifying values (`[personal]` columns: the full name, email, phone
//!   numbers) — e.g. the `created` event of an account named after them. Values are found
//!   whatever their letter case, and as JSON text holds them (`"` and `\` escaped);
//! - the stored responses of `Idempotency-Key` requests that named them (replays answer 410).
//!
//! It refuses (`personal_data_elsewhere`) while a record they link to still holds their full name
//! in a text field, in any letter case (an account a conversion named after them): rename or
//! erase that first. Letter case is the database's `lower()`: SQLite's folds ASCII letters only.
//! The event log keeps that something happened, by whom and when; never what it said.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::entity::Entity;
use super::fields::Kind;
use super::service::Records;
use crate::access::grants::forget_shares;
use crate::context::TenantContext;
use crate::custom_fields;
use crate::entities::EntityKind;
use crate::error::{Error, Result};
use crate::events::{self, Action};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::storage::{Sql, Tx};
use crate::tenant::Tenant;
use crate::time::now;

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Erasure {
    /// The entity (`"contact"`, `"lead"`).
    pub entity: &'static str,
    /// The erased record's id (kept in the tombstone event: it identifies no one).
    pub id: Uuid,
    /// When.
    pub erased_at: DateTime<Utc>,
    /// Records of the same person erased with it (the lead a contact was converted from, or the
    /// contact a lead became, and the records merged into any of them).
    pub also_erased: Vec<ErasedRecord>,
    /// Records that linked to it and now link to nothing (each logged as an update).
    pub unlinked: u64,
    /// Activities attached to it, removed with it (they are about the person).
    pub activities_removed: u64,
    /// Event-log entries whose changes were blanked.
    pub events_scrubbed: u64,
    /// Stored `Idempotency-Key` responses that named the person, dropped.
    pub responses_scrubbed: u64,
}

/// A record erased along with the one asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasedRecord {
    /// Its entity.
    pub entity: &'static str,
    /// Its id.
    pub id: Uuid,
}

/// A link column of an entity that may point at the erased record.
pub(super) struct Referrer {
    pub(super) kind: EntityKind,
    pub(super) column: &'static str,
    nullable: bool,
    same_person: bool,
}

/// Every link column of every registered entity that points at `target`'s table.
pub(super) fn referrers(target: &'static str) -> impl Iterator<Item = Referrer> {
    EntityKind::ALL.iter().flat_map(move |&kind| {
        kind.columns().iter().filter_map(move |c| match c.kind {
            Kind::Ref { table, .. } if table == target => Some(Referrer {
                kind,
                column: c.name,
                nullable: c.nullable,
                same_person: c.same_person,
            }),
            _ => None,
        })
    })
}

impl<E: Entity> Records<'_, E> {
    /// Erases record `id` (live or trashed) and the person's data around it (see the module).
    /// Company admins only.
    pub(crate) async fn erase_with(&self, id: Id<E>) -> Result<Erasure> {
        crate::access::roles::require_admin(
            self.tenant().context(),
            format_args!("erase a {}", E::NAME),
        )?;
        let ctx = *self.tenant().context();
        let mut s = self.tenant().session().await?;
        let mut tx = s.begin().await?;
        let out = erase_person(&mut tx, self.tenant(), &ctx, E::KIND, id.uuid()).await;
        tx.settle(out).await
    }
}

async fn erase_person(
    tx: &mut Tx<'_>,
    tenant: &Tenant,
    ctx: &TenantContext,
    kind: EntityKind,
    id: Uuid,
) -> Result<Erasure> {
    let org = ctx.organization_id();
    let person = same_person(tx, org, kind, id).await?;
    let values = personal_values(tx, org, &person).await?;
    if let Some(name) = values.full_name.as_deref() {
        refuse_copies(tx, org, &person, name).await?;
    }
    let at = now();
    let mut erasure = Erasure {
        entity: kind.name(),
        id,
        erased_at: at,
        also_erased: person[1..]
            .iter()
            .map(|&(k, id)| ErasedRecord {
                entity: k.name(),
                id,
            })
            .collect(),
        unlinked: 0,
        activities_removed: 0,
        events_scrubbed: 0,
        responses_scrubbed: 0,
    };
    for &(k, rid) in &person {
        erase_record(tx, tenant, ctx, k, rid, at, &mut erasure).await?;
    }
    let searched = values.all();
    erasure.events_scrubbed += scrub_events_holding(tx, org, &searched).await?;
    let ids: Vec<String> = person.iter().map(|(_, id)| id.to_string()).collect();
    let mut needles: Vec<&str> = ids.iter().map(String::as_str).collect();
    needles.extend(searched.iter().map(String::as_str));
    erasure.responses_scrubbed = scrub_responses(tx, org, &needles).await?;
    Ok(erasure)
}

/// The record asked for (locked; `NotFound` if it is not there) and every record of the same
/// person reachable from it: through `[same_person]` links, either way, and the records merged
/// into it (or into any record found), through the merge redirects.
async fn same_person(
    tx: &mut Tx<'_>,
    org: OrganizationId,
    kind: EntityKind,
    id: Uuid,
) -> Result<Vec<(EntityKind, Uuid)>> {
    let mut found: Vec<(EntityKind, Uuid)> = Vec::new();
    let mut todo = vec![(kind, id)];
    while let Some((k, rid)) = todo.pop() {
        if found.contains(&(k, rid)) {
            continue;
        }
        let backend = tx.conn().backend();
        let mut q = Sql::new("select id from ");
        q.push(k.table())
            .push(" where organization_id = ")
            .bind(org);
        q.push(" and id = ").bind(rid).push(backend.lock_rows());
        if tx.conn().fetch_optional::<(Uuid,)>(&q).await?.is_none() {
            if found.is_empty() {
                return Err(Error::not_found(k.name(), rid));
            }
            continue;
        }
        found.push((k, rid));
        // Its own links to the same person.
        for c in k.columns().iter().filter(|c| c.same_person) {
            let Kind::Ref { table, .. } = c.kind else {
                continue;
            };
            let Some(target) = EntityKind::from_table(table) else {
                continue;
            };
            let mut q = Sql::new("select ");
            q.push(c.name).push(" from ").push(k.table());
            q.push(" where organization_id = ").bind(org);
            q.push(" and id = ").bind(rid);
            if let Some((Some(other),)) = tx.conn().fetch_optional::<(Option<Uuid>,)>(&q).await? {
                todo.push((target, other));
            }
        }
        // Records merged into it: the merge redirects name every one, chains collapsed.
        for absorbed in super::redirect::absorbed_into(&mut tx.conn(), org, k.name(), rid).await? {
            todo.push((k, absorbed));
        }
        // Links to it that say the same person.
        for r in referrers(k.table()).filter(|r| r.same_person) {
            let mut q = Sql::new("select id from ");
            q.push(r.kind.table())
                .push(" where organization_id = ")
                .bind(org);
            q.push(" and ").push(r.column).push(" = ").bind(rid);
            let ids: Vec<(Uuid,)> = tx.conn().fetch_all(&q).await?;
            todo.extend(ids.into_iter().map(|(other,)| (r.kind, other)));
        }
    }
    Ok(found)
}

/// The values that identify the person, to find copies of: the full name (`first_name` and
/// `last_name` together: one part alone would match other people), and every other `[personal]`
/// value of six characters or more (emails, phone numbers).
#[derive(Debug, Default)]
struct PersonalValues {
    full_name: Option<String>,
    others: Vec<String>,
}

impl PersonalValues {
    fn all(&self) -> Vec<String> {
        self.full_name.iter().chain(&self.others).cloned().collect()
    }
}

async fn personal_values(
    tx: &mut Tx<'_>,
    org: OrganizationId,
    person: &[(EntityKind, Uuid)],
) -> Result<PersonalValues> {
    let mut values = PersonalValues::default();
    for &(k, id) in person {
        let (mut first, mut last) = (None, None);
        for c in k.columns().iter().filter(|c| c.personal) {
            let mut q = Sql::new("select ");
            q.push(c.name).push(" from ").push(k.table());
            q.push(" where organization_id = ").bind(org);
            q.push(" and id = ").bind(id);
            let Some((Some(v),)) = tx.conn().fetch_optional::<(Option<String>,)>(&q).await? else {
                continue;
            };
            let v = v.trim().to_owned();
            match c.name {
                "first_name" => first = Some(v),
                "last_name" => last = Some(v),
                _ if v.chars().count() >= 6 => values.others.push(v),
                _ => {}
            }
        }
        if let (Some(f), Some(l)) = (first, last)
            && !f.is_empty()
            && !l.is_empty()
        {
            values.full_name.get_or_insert(format!("{f} {l}"));
        }
    }
    values.others.sort();
    values.others.dedup();
    Ok(values)
}

/// Refuses while a record the person links to (other than through `[same_person]` links) holds
/// their full name in a free-text field.
async fn refuse_copies(
    tx: &mut Tx<'_>,
    org: OrganizationId,
    person: &[(EntityKind, Uuid)],
    name: &str,
) -> Result<()> {
    for &(k, id) in person {
        for c in k.columns().iter().filter(|c| !c.same_person && !c.owner) {
            let Kind::Ref { table, .. } = c.kind else {
                continue;
            };
            let Some(target) = EntityKind::from_table(table) else {
                continue;
            };
            let texts: Vec<&'static str> = target
                .columns()
                .iter()
                .filter(|t| t.kind == Kind::Text && t.choices.is_empty() && t.format.is_none())
                .map(|t| t.name)
                .collect();
            if texts.is_empty() {
                continue;
            }
            let mut q = Sql::new("select t.id from ");
            q.push(target.table()).push(" t join ").push(k.table());
            q.push(" s on s.organization_id = t.organization_id and s.")
                .push(c.name)
                .push(" = t.id where s.organization_id = ")
                .bind(org);
            q.push(" and s.id = ").bind(id).push(" and (");
            for (i, t) in texts.iter().enumerate() {
                if i > 0 {
                    q.push(" or ");
                }
                q.push_contains(|q| _ = q.push("t.").push(t), name);
            }
            q.push(")");
            if let Some((copy,)) = tx.conn().fetch_optional::<(Uuid,)>(&q).await? {
                return Err(Error::conflict(
                    "personal_data_elsewhere",
                    format!(
                        "{} {copy} still holds this person's name; rename or erase it first",
                        target.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Erases one record: unlinks what points at it, removes its activities, deletes it, blanks its
/// events and its activities' events, and leaves an `erased` event.
async fn erase_record(
    tx: &mut Tx<'_>,
    tenant: &Tenant,
    ctx: &TenantContext,
    kind: EntityKind,
    id: Uuid,
    at: DateTime<Utc>,
    erasure: &mut Erasure,
) -> Result<()> {
    let org = ctx.organization_id();
    for r in referrers(kind.table()) {
        if !r.nullable {
            let mut q = Sql::new("select id from ");
            q.push(r.kind.table())
                .push(" where organization_id = ")
                .bind(org);
            q.push(" and ").push(r.column).push(" = ").bind(id);
            q.push(" limit 1");
            if tx.conn().fetch_optional::<(Uuid,)>(&q).await?.is_some() {
                return Err(Error::conflict(
                    "still_required",
                    format!(
                        "a {} still requires this {} ({}); remove that link first",
                        r.kind.name(),
                        kind.name(),
                        r.column
                    ),
                ));
            }
            continue;
        }
        let mut q = Sql::new("update ");
        q.push(r.kind.table())
            .push(" set ")
            .push(r.column)
            .push(" = null, version = version + 1, updated_at = ");
        q.bind(at).push(", updated_by = ").bind(ctx.actor().id());
        q.push(" where organization_id = ")
            .bind(org)
            .push(" and ")
            .push(r.column)
            .push(" = ")
            .bind(id);
        q.push(" returning id");
        let ids: Vec<(Uuid,)> = tx.conn().fetch_all(&q).await?;
        let entries = ids
            .iter()
            .map(|(rid,)| {
                let mut changes = Map::new();
                changes.insert(r.column.into(), json!({ "before": id, "after": null }));
                events::Entry {
                    record_id: *rid,
                    action: Action::Updated,
                    changes,
                }
            })
            .collect();
        events::append_many(&mut tx.conn(), ctx, r.kind.name(), entries, at).await?;
        erasure.unlinked += ids.len() as u64;
    }

    let mut q = Sql::new("delete from activities where organization_id = ");
    q.bind(org).push(" and related_entity = ").bind(kind.name());
    q.push(" and related_id = ").bind(id).push(" returning id");
    let activities: Vec<(Uuid,)> = tx.conn().fetch_all(&q).await?;
    erasure.activities_removed += activities.len() as u64;
    let activity_ids: Vec<Uuid> = activities.iter().map(|(a,)| *a).collect();
    let activity = EntityKind::Activity.name();
    super::keys::forget(&mut tx.conn(), org, activity, &activity_ids).await?;
    super::keys::forget(&mut tx.conn(), org, kind.name(), &[id]).await?;
    forget_shares(&mut tx.conn(), org, activity, &activity_ids).await?;
    forget_shares(&mut tx.conn(), org, kind.name(), &[id]).await?;
    super::redirect::forget_all(&mut tx.conn(), org, kind.name(), id).await?;

    let linked = custom_fields::linked_before_removal(tx, tenant, kind, id).await?;
    let mut q = Sql::new("delete from ");
    q.push(kind.table())
        .push(" where organization_id = ")
        .bind(org)
        .push(" and id = ")
        .bind(id);
    tx.conn().execute(&q).await?;
    custom_fields::refresh_for(tx, tenant, kind, || Ok(linked)).await?;

    let mut q = Sql::new("update events set changes = ");
    q.bind(serde_json::Value::Object(Map::new()))
        .push(" where organization_id = ")
        .bind(org);
    q.push(" and ((entity = ")
        .bind(kind.name())
        .push(" and record_id = ")
        .bind(id)
        .push(")");
    for (a,) in &activities {
        q.push(" or (entity = 'activity' and record_id = ")
            .bind(*a)
            .push(")");
    }
    q.push(")");
    erasure.events_scrubbed += tx.conn().execute(&q).await?;

    events::append(
        &mut tx.conn(),
        ctx,
        kind.name(),
        id,
        Action::Erased,
        Map::new(),
    )
    .await
}

/// Blanks the `changes` of the organization's events that hold any of `values`.
async fn scrub_events_holding(
    tx: &mut Tx<'_>,
    org: OrganizationId,
    values: &[String],
) -> Result<u64> {
    if values.is_empty() {
        return Ok(0);
    }
    let backend = tx.conn().backend();
    let mut q = Sql::new("update events set changes = ");
    q.bind(serde_json::Value::Object(Map::new()))
        .push(" where organization_id = ")
        .bind(org)
        .push(" and (");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            q.push(" or ");
        }
        q.push_contains(|q| backend.push_json_text(q, "changes"), &in_json(v));
    }
    q.push(")");
    tx.conn().execute(&q).await
}

/// Drops the stored responses of `Idempotency-Key` requests that hold any of `needles` (the
/// erased ids and the person's values); their keys answer "erased" from now on.
async fn scrub_responses(tx: &mut Tx<'_>, org: OrganizationId, needles: &[&str]) -> Result<u64> {
    if needles.is_empty() {
        return Ok(0);
    }
    let mut q = Sql::new(
        "update idempotency_keys set status = 'erased', response_status = null, \
         response_headers = null, response_body = null where organization_id = ",
    );
    q.bind(org).push(" and status = 'done' and (");
    for (i, n) in needles.iter().enumerate() {
        if i > 0 {
            q.push(" or ");
        }
        q.push_contains(|q| _ = q.push("response_body"), &in_json(n));
    }
    q.push(")");
    tx.conn().execute(&q).await
}

/// `value` as JSON text holds it, the content of its JSON string (`"` as `\"`, `\` as `\\`,
/// control characters escaped): what the event log's `changes` and stored responses hold
/// (PostgreSQL's `jsonb` renders strings the same way).
fn in_json(value: &str) -> String {
    let quoted = Value::String(value.to_owned()).to_string();
    let content = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'));
    content.unwrap_or(value).to_owned()
}

#[cfg(test)]
mod tests {
    use super::in_json;

    #[test]
    fn values_are_searched_as_json_writes_them() {
        assert_eq!(in_json("ada@secret.test"), "ada@secret.test");
        assert_eq!(in_json(r#"Jo "JJ" Back\Slash"#), r#"Jo \"JJ\" Back\\Slash"#);
        assert_eq!(in_json("Zoë\n"), "Zoë\\n");
    }
}
