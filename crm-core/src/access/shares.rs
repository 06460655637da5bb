//! [`Shares`]: records shared with a user or a team, beyond what their reach gives them.
//!
//! A share lets its grantee (a user, or every member of a team) read one record, or read and
//! change it (`write`), whatever their permission set's reach into that entity. Whoever may
//! change a record may share it and revoke its shares (company admins always); the record must
//! be live (a record in the trash answers 404). Sharing again with the same grantee changes
//! the access of the share.
//!
//! - **Owner transfer**: shares are kept when a record's owner changes; they belong to the
//!   record, not to its owner.
//! - **Removal**: a purged or erased record loses its shares in the same transaction; a
//!   deleted team loses the shares granted to it.
//!
//! Every change is logged (entity `record_share`, with the shared record's id) in its own
//! transaction, and is seen by every caller's grants at once in this process.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::permission_sets::object;
use super::rules::Need;
use super::teams::TeamId;
use crate::entities::{EntityKind, EntityVisitor};
use crate::error::{Error, Result};
use crate::events::{self, Action};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::record::{Deleted, Entity, Records};
use crate::storage::{Conn, Sql, Tx};
use crate::tenant::Tenant;
use crate::time::now;
use crate::users::UserId;

crate::text_enum! {
    /// Who a record is shared with.
    pub enum GranteeKind {
        /// One user.
        User = "user",
        /// Every member (and the manager) of a team.
        Team = "team",
    }
}

crate::text_enum! {
    /// What a share gives.
    pub enum ShareAccess {
        /// Reading the record.
        Read = "read",
        /// Reading and changing it (not trashing it).
        Write = "write",
    }
}

/// The grantee of a share: a user or a team of the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grantee {
    /// One user.
    User(UserId),
    /// A team.
    Team(TeamId),
}

impl Grantee {
    /// Its kind.
    pub fn kind(self) -> GranteeKind {
        match self {
            Grantee::User(_) => GranteeKind::User,
            Grantee::Team(_) => GranteeKind::Team,
        }
    }

    /// Its id.
    pub fn id(self) -> Uuid {
        match self {
            Grantee::User(u) => u.uuid(),
            Grantee::Team(t) => t.uuid(),
        }
    }

    /// The grantee of `kind` with `id`.
    pub fn new(kind: GranteeKind, id: Uuid) -> Self {
        match kind {
            GranteeKind::User => Grantee::User(Id::from_uuid(id)),
            GranteeKind::Team => Grantee::Team(Id::from_uuid(id)),
        }
    }
}

/// Input of a share over HTTP: the grantee and the access.
#[derive(Debug, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    /// A user or a team.
    pub grantee_kind: GranteeKind,
    /// The user's or the team's id.
    pub grantee_id: Uuid,
    /// `read` or `write`.
    pub access: ShareAccess,
}

/// One record shared with one grantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Share {
    /// The record's entity, in the singular (`contact`).
    pub entity: String,
    /// The record's id.
    pub record_id: Uuid,
    /// A user or a team.
    pub grantee_kind: GranteeKind,
    /// The user's or the team's id.
    pub grantee_id: Uuid,
    /// `read` or `write`.
    pub access: ShareAccess,
    /// Who shared it last.
    pub created_by: Option<Uuid>,
    /// When it was shared (or its access last changed).
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    /// The records shared with users and teams of the organization.
    pub fn shares(&self) -> Shares<'_> {
        Shares { tenant: self }
    }
}

/// Record shares of one organization. Reached through [`Tenant::shares`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::access::{Grantee, ShareAccess};
/// use crm_core::{Crm, EntityKind, NewAccount, NewOrganization, NewUser, Role, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// let ann = t.users().create(NewUser {
///     email: "ann@example.com".into(), name: "Ann".into(), password: None, role: Role::User,
/// }).await?;
/// let a = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
/// let kind = EntityKind::Account;
/// t.shares().share(kind, a.id.uuid(), Grantee::User(ann.id), ShareAccess::Read).await?;
/// assert_eq!(t.shares().list_for_record(kind, a.id.uuid()).await?.len(), 1);
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Shares<'t> {
    tenant: &'t Tenant,
}

impl Shares<'_> {
    fn org(&self) -> OrganizationId {
        self.tenant.context().organization_id()
    }

    /// Locks the live record `record` of `kind` in `tx`, for a caller who may change it.
    async fn lock(&self, tx: &mut Tx<'_>, kind: EntityKind, record: Uuid) -> Result<()> {
        kind.visit(LockForWrite {
            tenant: self.tenant,
            tx,
            id: record,
        })
        .await
    }

    /// Shares record `record` of `kind` with `grantee` for `access` (changing the access of an
    /// existing share with them).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a record that does not exist, is in the trash or is out of the
    /// caller's reach; [`Error::Forbidden`] when the caller may read it but not change it;
    /// [`Error::Validation`] (`grantee_id`) for a grantee not in the organization.
    pub async fn share(
        &self,
        kind: EntityKind,
        record: Uuid,
        grantee: Grantee,
        access: ShareAccess,
    ) -> Result<Share> {
        let ctx = *self.tenant.context();
        let org = self.org();
        let share = self
            .tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    self.lock(&mut tx, kind, record).await?;
                    require_grantee(&mut tx.conn(), org, grantee).await?;
                    let before = find(&mut tx.conn(), org, kind, record, grantee.id()).await?;
                    if before.as_ref().is_some_and(|b| b.access == access) {
                        return Ok(before);
                    }
                    let at = now();
                    let mut q = Sql::new(
                        "insert into record_shares (organization_id, entity, record_id, grantee_kind, grantee_id, access, created_by, created_at) values (",
                    );
                    q.bind(org).push(", ").bind(kind.name()).push(", ").bind(record);
                    q.push(", ").bind(grantee.kind().as_str());
                    q.push(", ").bind(grantee.id());
                    q.push(", ").bind(access.as_str());
                    q.push(", ").bind(ctx.actor().id()).push(", ").bind(at);
                    q.push(") on conflict (organization_id, entity, record_id, grantee_id) do update set access = excluded.access, grantee_kind = excluded.grantee_kind, created_by = excluded.created_by, created_at = excluded.created_at");
                    tx.conn().execute(&q).await?;
                    let changes = json!({
                        "entity": kind.name(),
                        "grantee_kind": grantee.kind(),
                        "grantee_id": grantee.id(),
                        "access": { "before": before.as_ref().map(|b| b.access), "after": access },
                    });
                    let action = if before.is_some() { Action::Updated } else { Action::Created };
                    events::append(&mut tx.conn(), &ctx, events::SHARE, record, action, object(changes))
                        .await?;
                    Ok(None)
                }
                .await;
                tx.settle(out).await
            })
            .await?;
        self.tenant.forget_grants();
        match share {
            Some(unchanged) => Ok(unchanged),
            None => {
                let mut s = self.tenant.session().await?;
                find(&mut s.conn(), org, kind, record, grantee.id())
                    .await?
                    .ok_or_else(|| Error::not_found("share", grantee.id()))
            }
        }
    }

    /// Revokes the share of record `record` of `kind` with the user or team `grantee`.
    ///
    /// # Errors
    /// As [`Shares::share`]; [`Error::NotFound`] (`share`) when it is not shared with them.
    pub async fn revoke(&self, kind: EntityKind, record: Uuid, grantee: Uuid) -> Result<()> {
        let ctx = *self.tenant.context();
        let org = self.org();
        self.tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    self.lock(&mut tx, kind, record).await?;
                    let before = find(&mut tx.conn(), org, kind, record, grantee)
                        .await?
                        .ok_or_else(|| Error::not_found("share", grantee))?;
                    let mut q = Sql::new("delete from record_shares where organization_id = ");
                    q.bind(org).push(" and entity = ").bind(kind.name());
                    q.push(" and record_id = ").bind(record);
                    q.push(" and grantee_id = ").bind(grantee);
                    tx.conn().execute(&q).await?;
                    let changes = json!({
                        "entity": kind.name(),
                        "grantee_kind": before.grantee_kind,
                        "grantee_id": grantee,
                        "access": { "before": before.access, "after": null },
                    });
                    events::append(
                        &mut tx.conn(),
                        &ctx,
                        events::SHARE,
                        record,
                        Action::Purged,
                        object(changes),
                    )
                    .await
                }
                .await;
                tx.settle(out).await
            })
            .await?;
        self.tenant.forget_grants();
        Ok(())
    }

    /// The shares of record `record` of `kind`, for a caller who may read it.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a record that does not exist, is in the trash or is out of the
    /// caller's reach.
    pub async fn list_for_record(&self, kind: EntityKind, record: Uuid) -> Result<Vec<Share>> {
        kind.visit(Readable {
            tenant: self.tenant,
            id: record,
        })
        .await?;
        let mut s = self.tenant.session().await?;
        let mut q = Sql::new("select ");
        q.push(COLUMNS)
            .push(" from record_shares where organization_id = ")
            .bind(self.org());
        q.push(" and entity = ").bind(kind.name());
        q.push(" and record_id = ")
            .bind(record)
            .push(" order by created_at, grantee_id");
        let rows: Vec<Row> = s.conn().fetch_all(&q).await?;
        Ok(rows.into_iter().map(from_row).collect())
    }
}

/// `Ok` when `grantee` is an active user or a team of `org`, else 422 on `grantee_id`.
async fn require_grantee(conn: &mut Conn<'_>, org: OrganizationId, grantee: Grantee) -> Result<()> {
    let mut q = Sql::new("select count(*) from ");
    q.push(match grantee {
        Grantee::User(_) => "users where is_active and organization_id = ",
        Grantee::Team(_) => "teams where organization_id = ",
    });
    q.bind(org).push(" and id = ").bind(grantee.id());
    let (n,): (i64,) = conn.fetch_one(&q).await?;
    if n == 0 {
        return Err(Error::invalid(
            "grantee_id",
            "unknown_grantee",
            format!(
                "{} is not an active {} of this organization",
                grantee.id(),
                grantee.kind()
            ),
        ));
    }
    Ok(())
}

/// The share of `record` with `grantee`, if any.
async fn find(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    kind: EntityKind,
    record: Uuid,
    grantee: Uuid,
) -> Result<Option<Share>> {
    let mut q = Sql::new("select ");
    q.push(COLUMNS)
        .push(" from record_shares where organization_id = ")
        .bind(org);
    q.push(" and entity = ").bind(kind.name());
    q.push(" and record_id = ").bind(record);
    q.push(" and grantee_id = ").bind(grantee);
    let row: Option<Row> = conn.fetch_optional(&q).await?;
    Ok(row.map(from_row))
}

const COLUMNS: &str = "entity, record_id, grantee_kind, grantee_id, access, created_by, created_at";

type Row = (
    String,
    Uuid,
    GranteeKind,
    Uuid,
    ShareAccess,
    Option<Uuid>,
    DateTime<Utc>,
);

fn from_row(row: Row) -> Share {
    let (entity, record_id, grantee_kind, grantee_id, access, created_by, created_at) = row;
    Share {
        entity,
        record_id,
        grantee_kind,
        grantee_id,
        access,
        created_by,
        created_at,
    }
}

/// Locks the live record `id` of the visited kind in `tx`, for a caller who may change it.
struct LockForWrite<'a, 'c> {
    tenant: &'a Tenant,
    tx: &'a mut Tx<'c>,
    id: Uuid,
}

impl<'a, 'c: 'a> EntityVisitor for LockForWrite<'a, 'c> {
    type Output = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(async move {
            Records::<E>::new(self.tenant)
                .lock_in(
                    self.tx,
                    Id::from_uuid(self.id),
                    Deleted::Exclude,
                    None,
                    Need::Write,
                )
                .await
                .map(|_| ())
        })
    }
}

/// Reads the live record `id` of the visited kind, for a caller who may read it.
struct Readable<'a> {
    tenant: &'a Tenant,
    id: Uuid,
}

impl<'a> EntityVisitor for Readable<'a> {
    type Output = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

    fn visit<E: Entity>(self) -> Self::Output {
        Box::pin(async move {
            Records::<E>::new(self.tenant)
                .get(Id::from_uuid(self.id))
                .await
                .map(|_| ())
        })
    }
}
