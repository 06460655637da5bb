//! [`Records`]: the CRUD, trash and list service every entity gets.

use std::marker::PhantomData;

use serde_json::Value;
use uuid::Uuid;

use super::compile;
use super::entity::Entity;
use super::page::Page;
use super::projection::redact;
use super::query::{Deleted, ListQuery};
use super::redirect;
use super::row::Record;
use super::values::to_object;
use crate::access::grants::Grants;
use crate::access::rules::{Need, Reach};
use crate::context::TenantContext;
use crate::custom_fields::{self};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::storage::{Backend, Sql, Tx};
use crate::tenant::Tenant;

impl Tenant {
    /// The records of any entity (the registry also gives each its own accessor, e.g.
    /// [`Tenant::accounts`]).
    pub fn records<E: Entity>(&self) -> Records<'_, E> {
        Records::new(self)
    }
}

/// The records of entity `E` in one organization: `tenant.accounts()`, `tenant.contacts()`…
///
/// Every method is confined to the tenant's organization: another organization's id answers
/// [`Error::NotFound`], exactly like an id that does not exist. Every write bumps the record's
/// `version`, stamps the audit columns from the context's actor and appends an event in the same
/// transaction.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::{AccountPatch, Crm, NewAccount, NewOrganization, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// let a = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
/// let patch = AccountPatch { industry: Some(Some("Energy".into())), ..Default::default() };
/// let a = t.accounts().update_if_version(a.id, a.version, patch).await?;
/// assert_eq!((a.industry.as_deref(), a.version), (Some("Energy"), 2));
/// t.accounts().delete(a.id).await?;
/// assert!(t.accounts().get(a.id).await.is_err());
/// t.accounts().restore(a.id).await?;
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Records<'t, E> {
    pub(super) tenant: &'t Tenant,
    entity: PhantomData<fn() -> E>,
}

impl<E> Clone for Records<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Records<'_, E> {}

impl<'t, E: Entity> Records<'t, E> {
    pub(crate) fn new(tenant: &'t Tenant) -> Self {
        Self {
            tenant,
            entity: PhantomData,
        }
    }

    pub(super) fn ctx(&self) -> &TenantContext {
        self.tenant.context()
    }

    /// The tenant these records belong to.
    pub(crate) fn tenant(&self) -> &'t Tenant {
        self.tenant
    }

    pub(super) fn org(&self) -> OrganizationId {
        self.ctx().organization_id()
    }

    /// The live record with `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it does not exist in this organization or is in the trash.
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn get(&self, id: Id<E>) -> Result<Record<E>> {
        self.find(id, Deleted::Exclude).await
    }

    /// The record with `id`, even if it is in the trash.
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn get_including_deleted(&self, id: Id<E>) -> Result<Record<E>> {
        self.find(id, Deleted::Include).await
    }

    async fn find(&self, id: Id<E>, deleted: Deleted) -> Result<Record<E>> {
        let grants = self.tenant.grants().await?;
        grants.require_some(E::TABLE, Need::Read)?;
        let mut s = self.tenant.reading(&grants).await?;
        let mut q = select_one::<E>(self.org(), id, deleted, false, s.conn().backend());
        grants.push_reach_among(&mut q, reach_scope::<E>(), Need::Read, Some(&[id.uuid()]));
        match s.conn().fetch_optional(&q).await? {
            Some(mut record) => {
                redact(&grants, &mut record)?;
                Ok(record)
            }
            None if deleted == Deleted::Exclude => {
                Err(redirect::missing(&mut s.conn(), self.org(), E::NAME, id.uuid()).await)
            }
            None => Err(Error::not_found(E::NAME, id)),
        }
    }

    /// One page of records matching `query`.
    ///
    /// # Errors
    /// [`Error::Validation`] for unknown fields, unsortable fields, mistyped values, a limit out
    /// of range, or a cursor from another list.
    #[tracing::instrument(level = "debug", skip_all, fields(entity = E::NAME, org = %self.org()))]
    pub async fn list(&self, query: &ListQuery) -> Result<Page<Record<E>>> {
        let grants = self.tenant.grants().await?;
        grants.require_some(E::TABLE, Need::Read)?;
        // A query that reaches a kind through links reads it: an API key needs its scope.
        for kind in query.linked_kinds(E::KIND) {
            grants.require_in_scope(kind.table())?;
        }
        let mut s = self.tenant.reading(&grants).await?;
        let mut conn = s.conn();
        // Definitions are needed (and, on a cache miss, read) only to filter on custom fields.
        let defs = if query.mentions_custom_fields() {
            custom_fields::load(self.tenant, E::NAME, &mut conn).await?
        } else {
            Default::default()
        };
        let plan = compile::plan::<E>(query, self.org(), conn.backend(), &defs, &grants)?;
        let mut data: Vec<Record<E>> = conn.fetch_all(&plan.sql).await?;
        for record in &mut data {
            redact(&grants, record)?;
        }
        // The connection goes back before a related sort's value is read (with another).
        drop(s);
        let next_cursor = if data.len() > plan.limit {
            data.truncate(plan.limit);
            match data.last() {
                Some(last) => {
                    let last_object = to_object(last)?;
                    let related = match plan.related_sort() {
                        Some((link, kind, column)) => {
                            let target = last_object
                                .get(link)
                                .and_then(Value::as_str)
                                .and_then(|id| Uuid::try_parse(id).ok());
                            Some(match target {
                                Some(id) => {
                                    let tenant = self.tenant;
                                    kind.visit(LinkedValue { tenant, id, column }).await?
                                }
                                None => Value::Null,
                            })
                        }
                        None => None,
                    };
                    Some(plan.cursor_after(&last_object, last.id.uuid(), related))
                }
                None => None,
            }
        } else {
            None
        };
        Ok(Page { data, next_cursor })
    }

    /// Reads record `id` in `scope` for update (locked on PostgreSQL; SQLite's `BEGIN
    /// IMMEDIATE` already holds the write lock) and checks the expected version.
    pub(crate) async fn lock_in(
        &self,
        tx: &mut Tx<'_>,
        id: Id<E>,
        scope: Deleted,
        expected: Option<i64>,
        need: Need,
    ) -> Result<Record<E>> {
        let grants = self.tenant.grants_in(&mut tx.conn()).await?;
        grants.require_some(E::TABLE, need)?;
        let backend = tx.conn().backend();
        let found = tx
            .conn()
            .fetch_optional(&select_one::<E>(self.org(), id, scope, true, backend))
            .await?;
        let current: Record<E> = match found {
            Some(record) => record,
            None if scope == Deleted::Exclude => {
                return Err(
                    redirect::missing(&mut tx.conn(), self.org(), E::NAME, id.uuid()).await,
                );
            }
            None => return Err(Error::not_found(E::NAME, id)),
        };
        self.may(&grants, tx, &current, need).await?;
        match expected {
            Some(expected) if expected != current.version => Err(Error::VersionMismatch {
                expected,
                actual: current.version,
            }),
            _ => Ok(current),
        }
    }
}

impl<E: Entity> Records<'_, E> {
    /// `Ok` when the caller reaches `current` for `need` (by owner, creator, team or a share);
    /// otherwise 403 `not_permitted` if they may read it, and 404 if they may not even know of
    /// it.
    pub(crate) async fn may(
        &self,
        grants: &Grants,
        tx: &mut Tx<'_>,
        current: &Record<E>,
        need: Need,
    ) -> Result<()> {
        let owner = current.fields.owner().map(Id::uuid);
        if grants.reaches(E::TABLE, need, owner, current.created_by) {
            return Ok(());
        }
        let shared = |need| {
            let mut q = Sql::new("select count(*) from ");
            q.push(E::TABLE)
                .push(" where organization_id = ")
                .bind(self.org())
                .push(" and id = ")
                .bind(current.id)
                .push(" and ");
            grants.push_shared(&mut q, reach_scope::<E>(), need);
            q
        };
        let (n,): (i64,) = tx.conn().fetch_one(&shared(need)).await?;
        if n > 0 {
            return Ok(());
        }
        let readable = grants.reaches(E::TABLE, Need::Read, owner, current.created_by) || {
            let (n,): (i64,) = tx.conn().fetch_one(&shared(Need::Read)).await?;
            n > 0
        };
        if !readable {
            return Err(Error::not_found(E::NAME, current.id));
        }
        let verb = match need {
            Need::Read => "read",
            Need::Write => "change",
            Need::Delete => "delete or restore",
        };
        // A caller who reaches only their own records is told so, with the code callers
        // have always got for it.
        let code = if grants.reach(E::TABLE, need) == Reach::Own {
            "not_owner"
        } else {
            "not_permitted"
        };
        Err(Error::forbidden(
            code,
            format!("this caller may not {verb} {} {}", E::NAME, current.id),
        ))
    }
}

/// The reach scope of `E`'s table, read by its own name.
pub(crate) fn reach_scope<E: Entity>() -> crate::access::grants::ReachScope {
    compile::reach_scope(E::TABLE, E::TABLE, E::NAME, E::COLUMNS)
}

/// `select <its columns> from T where organization_id = $1 and id = $2 …`, locked for update on PostgreSQL
/// when `lock` (SQLite's `BEGIN IMMEDIATE` already holds the write lock).
fn select_one<E: Entity>(
    org: OrganizationId,
    id: Id<E>,
    deleted: Deleted,
    lock: bool,
    backend: Backend,
) -> Sql {
    let mut q = Sql::new("select ");
    q.push(E::SELECT).push(" from ").push(E::TABLE);
    q.push(" where organization_id = ").bind(org);
    q.push(" and id = ").bind(id);
    match deleted {
        Deleted::Exclude => q.push(" and not is_deleted"),
        Deleted::Include => &mut q,
        Deleted::Only => q.push(" and is_deleted"),
    };
    if lock {
        q.push(backend.lock_rows());
    }
    q
}

/// The value of `column` of the live record `id` of the visited kind (`null` when it is gone
/// or in the trash): a related sort's value for the cursor.
struct LinkedValue<'t> {
    tenant: &'t Tenant,
    id: Uuid,
    column: &'static str,
}

impl<'t> crate::entities::EntityVisitor for LinkedValue<'t> {
    type Output = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value>> + Send + 't>>;

    fn visit<K: Entity>(self) -> Self::Output {
        Box::pin(async move {
            match Records::<K>::new(self.tenant)
                .get(Id::from_uuid(self.id))
                .await
            {
                Ok(record) => Ok(to_object(&record)?
                    .remove(self.column)
                    .unwrap_or(Value::Null)),
                Err(Error::NotFound { .. } | Error::Moved { .. }) => Ok(Value::Null),
                Err(e) => Err(e),
            }
        })
    }
}
