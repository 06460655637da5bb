//! Field history, read from the event log: each field's before and after at every write, with
//! who made it and from which request, and a record rebuilt as it was at a past moment.
//!
//! Every write of a record goes through one path that logs the fields it changed, before and
//! after, in the same transaction (`update.rs`, `trash.rs`, `create.rs`), and bumps the version
//! by one. So undoing the logged changes newer than a moment, newest first, gives the record as
//! it was then. Erasure blanks what the log held about the person and removes the record, so
//! neither its history nor any past state of it can be read afterwards.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::values::to_object;
use super::{Entity, Page, Record, Records};
use crate::access::rules::FieldRule;
use crate::error::{Error, Result};
use crate::events::{Action, Event, EventId, Start};
use crate::id::Id;
use crate::time::within_years;

/// The largest page of field changes.
pub const MAX_HISTORY_PAGE: u32 = 100;

/// How many events one read of the log takes while walking it.
const WALK: u32 = 100;

/// One field's change at one write of a record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    /// The field: a column (`last_name`), `is_deleted` (trash and restore) or
    /// `custom_fields.<key>`.
    pub field: String,
    /// Its value before the write (`null` on create, or when it was empty).
    pub before: Value,
    /// Its value after the write (`null` when the write cleared it).
    pub after: Value,
    /// The write: its event (`id`, `action`, the actor, `request_id`, `occurred_at`), its
    /// `changes` narrowed to this field.
    #[serde(flatten)]
    pub write: Event,
}

/// Where the previous page of a history ended: its last change's event and field.
struct Cursor {
    event: EventId,
    field: String,
}

impl Cursor {
    fn encode(change: &FieldChange) -> String {
        format!("{}~{}", change.write.id.uuid().simple(), change.field)
    }

    fn decode(text: &str) -> Result<Self> {
        text.split_once('~')
            .and_then(|(event, field)| {
                let event = Id::from_uuid(Uuid::try_parse(event).ok()?);
                Some(Cursor {
                    event,
                    field: field.to_owned(),
                })
            })
            .ok_or_else(|| {
                Error::invalid(
                    "cursor",
                    "invalid_cursor",
                    "is not a cursor this history returned",
                )
            })
    }
}

/// The changes of one event, by field name, as `(field, before, after)`.
fn changes_of(event: &Event) -> impl Iterator<Item = (&String, &Value, &Value)> {
    event.changes.iter().map(|(field, change)| {
        let side = |k: &str| change.get(k).unwrap_or(&Value::Null);
        (field, side("before"), side("after"))
    })
}

impl<E: Entity> Records<'_, E> {
    /// The changes of record `id`, newest first, each field of a write on its own (by field name
    /// within a write); only those of `field` when given (a column, `is_deleted` or
    /// `custom_fields.<key>`). `limit` (1–[`MAX_HISTORY_PAGE`]) changes a page; pass
    /// `next_cursor` for the next. A record in the trash keeps its history; a purged or erased
    /// one has none to read.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{AccountPatch, Crm, NewAccount, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let a = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
    /// let patch = AccountPatch { name: Some("Globex Corp".into()), ..Default::default() };
    /// t.accounts().update(a.id, patch).await?;
    /// let names = t.accounts().history(a.id, Some("name"), 10, None).await?;
    /// assert_eq!(names.data[0].before, "Globex");
    /// assert_eq!(names.data[0].after, "Globex Corp");
    /// assert_eq!(names.data[1].after, "Globex"); // created
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] when the record does not exist (or was purged or erased);
    /// [`Error::Validation`] for an unknown field, a `limit` out of range or a foreign cursor.
    pub async fn history(
        &self,
        id: Id<E>,
        field: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<FieldChange>> {
        crate::validation::page_limit(limit, MAX_HISTORY_PAGE)?;
        if let Some(field) = field {
            known_field::<E>(field)?;
        }
        let after = cursor.map(Cursor::decode).transpose()?;
        self.get_including_deleted(id).await?;
        // Cached by the read above.
        let grants = self.tenant().grants().await?;
        let hidden = |name: &str| {
            let key = name.strip_prefix("custom_fields.").unwrap_or(name);
            grants.field_rule(E::TABLE, key) == Some(FieldRule::Hidden)
        };
        if let Some(field) = field.filter(|f| hidden(f)) {
            return Err(Error::invalid(
                "field",
                "hidden_field",
                format!("`{field}` is hidden from this caller"),
            ));
        }
        // A survivor's history holds the history of the records merged into it.
        let mut ids = vec![id.uuid()];
        {
            let mut s = self.tenant().session().await?;
            let org = self.tenant().context().organization_id();
            ids.extend(
                super::redirect::absorbed_into(&mut s.conn(), org, E::NAME, id.uuid()).await?,
            );
        }
        let mut out = Vec::new();
        // Events newer than the cursor's were on earlier pages: the walk starts at its event.
        let mut start = after.as_ref().map_or(Start::Newest, |c| Start::At(c.event));
        'walk: loop {
            let page = self
                .tenant()
                .events()
                .of_records::<E>(&ids, WALK, start)
                .await?;
            for event in &page.data {
                for (name, before, after_value) in changes_of(event) {
                    let seen = after
                        .as_ref()
                        .is_some_and(|c| c.event == event.id && *name <= c.field);
                    if seen || field.is_some_and(|f| f != name) || hidden(name) {
                        continue;
                    }
                    let mut write = event.clone();
                    write.changes.retain(|k, _| k == name);
                    out.push(FieldChange {
                        field: name.clone(),
                        before: before.clone(),
                        after: after_value.clone(),
                        write,
                    });
                    if out.len() > limit as usize {
                        break 'walk;
                    }
                }
            }
            match (page.next_cursor, page.data.last()) {
                (Some(_), Some(last)) => start = Start::Before(last.id),
                _ => break,
            }
        }
        Ok(Page::of(out, limit as usize, Cursor::encode))
    }

    /// Record `id` as it was at `at`: its present state with every logged change after `at`
    /// undone, newest first. Its version, `updated_at`/`updated_by` and trash columns are those
    /// of its last write up to `at`. A record in the trash now is found as it was; one purged or
    /// erased is not; one merged into another answers [`Error::Moved`], as [`Records::get`] does.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{AccountPatch, Crm, NewAccount, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let a = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
    /// let then = chrono::Utc::now();
    /// # std::thread::sleep(std::time::Duration::from_millis(5));
    /// let patch = AccountPatch { city: Some(Some("Oslo".into())), ..Default::default() };
    /// t.accounts().update(a.id, patch).await?;
    /// let old = t.accounts().as_of(a.id, then).await?;
    /// assert_eq!((old.city.as_deref(), old.version), (None, 1));
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] when the record does not exist now, or did not yet at `at`;
    /// [`Error::Moved`] for a merged record; [`Error::Validation`] (`out_of_range`) for an `at`
    /// outside the years 1 to 9999.
    pub async fn as_of(&self, id: Id<E>, at: DateTime<Utc>) -> Result<Record<E>> {
        let at = within_years("as_of", at)?;
        let current = self.get_including_deleted(id).await?;
        // A merged record answers for its survivor, as a plain read of it does.
        if current.is_deleted {
            let mut s = self.tenant().session().await?;
            let org = self.tenant().context().organization_id();
            if let Some(to) =
                super::redirect::survivor(&mut s.conn(), org, E::NAME, id.uuid()).await?
            {
                return Err(Error::Moved {
                    entity: E::NAME,
                    id: id.uuid(),
                    to,
                });
            }
        }
        let mut state = to_object(&current)?;
        let mut undone = 0_i64;
        let mut start = Start::Newest;
        let last = 'walk: loop {
            let page = self.tenant().events().of_record(id, WALK, start).await?;
            for event in &page.data {
                if event.occurred_at <= at {
                    break 'walk event.clone();
                }
                if event.action == Action::Created {
                    break;
                }
                undo(&mut state, event);
                undone += 1;
            }
            match (page.next_cursor, page.data.last()) {
                (Some(_), Some(last)) if last.action != Action::Created => {
                    start = Start::Before(last.id);
                }
                _ => return Err(Error::not_found(E::NAME, id)),
            }
        };
        if undone == 0 {
            return Ok(current);
        }
        let deleted = state.get("is_deleted") == Some(&Value::Bool(true));
        let set = |state: &mut Map<String, Value>, k: &str, v: Value| {
            state.insert(k.to_owned(), v);
        };
        set(&mut state, "version", (current.version - undone).into());
        set(&mut state, "updated_at", json!(last.occurred_at));
        set(&mut state, "updated_by", json!(last.actor_id));
        // On the trash, a record is only ever written by its deletion and restore: when it was
        // in the trash at `at`, its last write then was the deletion.
        let (deleted_at, deleted_by) = if deleted {
            (json!(last.occurred_at), json!(last.actor_id))
        } else {
            (Value::Null, Value::Null)
        };
        set(&mut state, "deleted_at", deleted_at);
        set(&mut state, "deleted_by", deleted_by);
        let mut past: Record<E> = serde_json::from_value(Value::Object(state))
            .map_err(|e| Error::Internal(format!("a past state did not rebuild: {e}")))?;
        // What was undone may have brought back a field hidden from the caller.
        super::projection::redact(&*self.tenant().grants().await?, &mut past)?;
        Ok(past)
    }
}

/// Undoes the changes of `event` on `state` (a record as JSON): each field back to `before`.
fn undo(state: &mut Map<String, Value>, event: &Event) {
    for (field, before, _) in changes_of(event) {
        match field.strip_prefix("custom_fields.") {
            Some(key) => {
                if let Some(Value::Object(custom)) = state.get_mut("custom_fields") {
                    match before {
                        Value::Null => custom.remove(key),
                        v => custom.insert(key.to_owned(), v.clone()),
                    };
                }
            }
            None => {
                state.insert(field.clone(), before.clone());
            }
        }
    }
}

/// Refuses a field no write of `E` logs.
fn known_field<E: Entity>(field: &str) -> Result<()> {
    let custom = field
        .strip_prefix("custom_fields.")
        .is_some_and(|k| crate::storage::FieldKey::new(k).is_some());
    if custom || field == "is_deleted" || E::COLUMNS.iter().any(|c| c.name == field) {
        Ok(())
    } else {
        Err(Error::invalid(
            "field",
            "unknown_field",
            format!("{} has no field {field:?}", E::NAME),
        ))
    }
}
