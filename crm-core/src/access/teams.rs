//! [`Teams`]: the teams of an organization and their members.
//!
//! A team groups users so that a permission set's `team` reach ([`super::rules::Reach::Team`])
//! lets each member reach the records owned or created by the others (its manager counts as a
//! member), and so that a record can be shared with all of them at once
//! ([`super::shares::Shares`]). Any user of the organization may read the teams; only company
//! admins (and API keys with every scope) change them. Every change is logged (entity `team`)
//! in its own transaction, and is seen by every caller's grants at once in this process.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use uuid::Uuid;

use super::permission_sets::object;
use crate::error::{Error, Result, ResultExt};
use crate::events::{self, Action};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::record::Referable;
use crate::storage::{Conn, Sql};
use crate::tenant::Tenant;
use crate::time::now;
use crate::users::UserId;
use crate::validation::Validator;

/// The id of a team.
pub type TeamId = Id<Team>;

/// A group of users of one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Team {
    /// Its id.
    pub id: TeamId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Its name, unique in the organization ignoring case.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its manager (an active user of the organization), a member of the team for reach.
    pub manager_id: Option<UserId>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Referable for Team {
    const TABLE: &'static str = "teams";
    const NAME: &'static str = "team";
    const SOFT_DELETE: bool = false;
}

/// One member of a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamMember {
    /// The team.
    pub team_id: TeamId,
    /// The user.
    pub user_id: UserId,
    /// When they were added.
    pub added_at: DateTime<Utc>,
}

/// Input of [`Teams::create`].
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    /// Its name (1–100 characters).
    pub name: String,
    /// What it is for (up to 1,000 characters).
    #[serde(default)]
    pub description: String,
    /// Its manager: an active user of the organization.
    #[serde(default)]
    pub manager_id: Option<UserId>,
}

/// Input of [`Teams::update`]: what is given replaces what was.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new description.
    #[serde(default)]
    pub description: Option<String>,
    /// A new manager (`Some(None)`, JSON `null`: none).
    #[serde(default, deserialize_with = "crate::record::present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Uuid>))]
    pub manager_id: Option<Option<UserId>>,
}

impl Tenant {
    /// The organization's teams (any user reads them; company admins change them).
    pub fn teams(&self) -> Teams<'_> {
        Teams { tenant: self }
    }
}

/// The teams of one organization. Reached through [`Tenant::teams`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::access::NewTeam;
/// use crm_core::{Crm, NewOrganization, NewUser, Role, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// let ann = t.users().create(NewUser {
///     email: "ann@example.com".into(), name: "Ann".into(), password: None, role: Role::User,
/// }).await?;
/// let team = t.teams().create(NewTeam { name: "West".into(), ..Default::default() }).await?;
/// t.teams().add_member(team.id, ann.id).await?;
/// assert_eq!(t.teams().members(team.id).await?[0].user_id, ann.id);
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Teams<'t> {
    tenant: &'t Tenant,
}

impl Teams<'_> {
    fn org(&self) -> OrganizationId {
        self.tenant.context().organization_id()
    }

    async fn require_manage(&self) -> Result<()> {
        self.tenant
            .grants()
            .await?
            .require_manage("only company admins may manage teams")
    }

    /// Every team, by name.
    pub async fn list(&self) -> Result<Vec<Team>> {
        self.tenant.require_settings().await?;
        let mut s = self.tenant.session().await?;
        let mut q = Sql::new("select ");
        q.push(COLUMNS)
            .push(" from teams where organization_id = ")
            .bind(self.org())
            .push(" order by lower(name), id");
        let rows: Vec<Row> = s.conn().fetch_all(&q).await?;
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// The team `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn get(&self, id: TeamId) -> Result<Team> {
        self.tenant.require_settings().await?;
        let mut s = self.tenant.session().await?;
        read(&mut s.conn(), self.org(), id, false).await
    }

    /// The members of team `id`, in the order they were added.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown team.
    pub async fn members(&self, id: TeamId) -> Result<Vec<TeamMember>> {
        self.tenant.require_settings().await?;
        let mut s = self.tenant.session().await?;
        read(&mut s.conn(), self.org(), id, false).await?;
        let mut q = Sql::new(
            "select team_id, user_id, added_at from team_members where organization_id = ",
        );
        q.bind(self.org())
            .push(" and team_id = ")
            .bind(id)
            .push(" order by added_at, user_id");
        let rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = s.conn().fetch_all(&q).await?;
        Ok(rows
            .into_iter()
            .map(|(team, user, added_at)| TeamMember {
                team_id: Id::from_uuid(team),
                user_id: Id::from_uuid(user),
                added_at,
            })
            .collect())
    }

    /// Creates a team.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless a company admin; [`Error::Validation`] for a bad name or a
    /// manager who is not an active user of the organization (`manager_id`);
    /// [`Error::Conflict`] (`duplicate`) for a name taken.
    pub async fn create(&self, new: NewTeam) -> Result<Team> {
        self.require_manage().await?;
        let name = new.name.trim().to_owned();
        let mut v = Validator::new();
        v.text("name", &name, true, 100);
        v.text("description", &new.description, false, 1000);
        v.finish()?;
        let (id, at) = (TeamId::new(), now());
        let ctx = *self.tenant.context();
        let org = self.org();
        let team = self
            .tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    if let Some(m) = new.manager_id {
                        require_active_user(&mut tx.conn(), org, m, "manager_id").await?;
                    }
                    let mut q = Sql::new(
                        "insert into teams (organization_id, id, name, description, manager_id, created_at, updated_at) values (",
                    );
                    q.bind(org).push(", ").bind(id).push(", ").bind(name.clone());
                    q.push(", ").bind(new.description.clone());
                    q.push(", ").bind(new.manager_id);
                    q.push(", ").bind(at).push(", ").bind(at).push(")");
                    tx.conn().execute(&q).await.on_unique(|| TAKEN.to_owned())?;
                    let changes = json!({
                        "name": { "after": name },
                        "description": { "after": new.description },
                        "manager_id": { "after": new.manager_id },
                    });
                    events::append(&mut tx.conn(), &ctx, events::TEAM, id.uuid(), Action::Created, object(changes))
                        .await?;
                    read(&mut tx.conn(), org, id, false).await
                }
                .await;
                tx.settle(out).await
            })
            .await?;
        self.tenant.forget_grants();
        Ok(team)
    }

    /// Changes team `id` (at `expected_version`, when given).
    ///
    /// # Errors
    /// As [`Teams::create`]; [`Error::NotFound`]; [`Error::VersionMismatch`].
    pub async fn update(
        &self,
        id: TeamId,
        expected_version: Option<i64>,
        patch: TeamPatch,
    ) -> Result<Team> {
        self.require_manage().await?;
        let name = patch.name.as_deref().map(|n| n.trim().to_owned());
        let mut v = Validator::new();
        if let Some(n) = &name {
            v.text("name", n, true, 100);
        }
        if let Some(d) = &patch.description {
            v.text("description", d, false, 1000);
        }
        v.finish()?;
        let ctx = *self.tenant.context();
        let org = self.org();
        let team = self
            .tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    let current = read(&mut tx.conn(), org, id, true).await?;
                    if let Some(expected) = expected_version
                        && expected != current.version
                    {
                        return Err(Error::VersionMismatch {
                            expected,
                            actual: current.version,
                        });
                    }
                    let mut changes = Map::new();
                    let mut q = Sql::new("update teams set version = version + 1, updated_at = ");
                    q.bind(now());
                    if let Some(n) = &name
                        && *n != current.name
                    {
                        q.push(", name = ").bind(n.clone());
                        changes
                            .insert("name".into(), json!({ "before": current.name, "after": n }));
                    }
                    if let Some(d) = &patch.description
                        && *d != current.description
                    {
                        q.push(", description = ").bind(d.clone());
                        changes.insert(
                            "description".into(),
                            json!({ "before": current.description, "after": d }),
                        );
                    }
                    if let Some(m) = patch.manager_id
                        && m != current.manager_id
                    {
                        if let Some(m) = m {
                            require_active_user(&mut tx.conn(), org, m, "manager_id").await?;
                        }
                        q.push(", manager_id = ").bind(m);
                        changes.insert(
                            "manager_id".into(),
                            json!({ "before": current.manager_id, "after": m }),
                        );
                    }
                    if changes.is_empty() {
                        return Ok(current);
                    }
                    q.push(" where organization_id = ")
                        .bind(org)
                        .push(" and id = ")
                        .bind(id);
                    tx.conn().execute(&q).await.on_unique(|| TAKEN.to_owned())?;
                    events::append(
                        &mut tx.conn(),
                        &ctx,
                        events::TEAM,
                        id.uuid(),
                        Action::Updated,
                        changes,
                    )
                    .await?;
                    read(&mut tx.conn(), org, id, false).await
                }
                .await;
                tx.settle(out).await
            })
            .await?;
        self.tenant.forget_grants();
        Ok(team)
    }

    /// Deletes team `id`, with its memberships and the shares granted to it.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless a company admin; [`Error::NotFound`].
    pub async fn delete(&self, id: TeamId) -> Result<()> {
        self.require_manage().await?;
        let ctx = *self.tenant.context();
        let org = self.org();
        self.tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    let current = read(&mut tx.conn(), org, id, true).await?;
                    let mut q = Sql::new("delete from record_shares where organization_id = ");
                    q.bind(org)
                        .push(" and grantee_kind = 'team' and grantee_id = ")
                        .bind(id);
                    tx.conn().execute(&q).await?;
                    for table in ["team_members", "teams"] {
                        let column = if table == "teams" { "id" } else { "team_id" };
                        let mut q = Sql::new("delete from ");
                        q.push(table).push(" where organization_id = ").bind(org);
                        q.push(" and ").push(column).push(" = ").bind(id);
                        tx.conn().execute(&q).await?;
                    }
                    let changes = object(json!({ "name": { "before": current.name } }));
                    events::append(
                        &mut tx.conn(),
                        &ctx,
                        events::TEAM,
                        id.uuid(),
                        Action::Purged,
                        changes,
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

    /// Adds `user` (an active user of the organization) to team `team`; adding a member again
    /// changes nothing.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless a company admin; [`Error::NotFound`] for an unknown team;
    /// [`Error::Validation`] (`user_id`) for a user who is not an active user of the
    /// organization.
    pub async fn add_member(&self, team: TeamId, user: UserId) -> Result<TeamMember> {
        self.change_member(team, user, true).await?;
        let mut s = self.tenant.session().await?;
        let mut q = Sql::new("select added_at from team_members where organization_id = ");
        q.bind(self.org()).push(" and team_id = ").bind(team);
        q.push(" and user_id = ").bind(user);
        let (added_at,): (DateTime<Utc>,) = s
            .conn()
            .fetch_optional(&q)
            .await?
            .ok_or_else(|| Error::not_found("team_member", user))?;
        Ok(TeamMember {
            team_id: team,
            user_id: user,
            added_at,
        })
    }

    /// Takes `user` out of team `team`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] unless a company admin; [`Error::NotFound`] for an unknown team, or
    /// (`team_member`) a user who is not in it.
    pub async fn remove_member(&self, team: TeamId, user: UserId) -> Result<()> {
        self.change_member(team, user, false).await
    }

    async fn change_member(&self, team: TeamId, user: UserId, add: bool) -> Result<()> {
        self.require_manage().await?;
        let ctx = *self.tenant.context();
        let org = self.org();
        let changed = self
            .tenant
            .retrying(|| async {
                let mut s = self.tenant.session().await?;
                let mut tx = s.begin().await?;
                let out = async {
                    // The team's row lock orders membership changes after a concurrent delete.
                    read(&mut tx.conn(), org, team, true).await?;
                    let (q, change) = if add {
                        require_active_user(&mut tx.conn(), org, user, "user_id").await?;
                        let mut q = Sql::new(
                            "insert into team_members (organization_id, team_id, user_id, added_at) values (",
                        );
                        q.bind(org).push(", ").bind(team).push(", ").bind(user);
                        q.push(", ").bind(now()).push(") on conflict do nothing");
                        (q, json!({ "members": { "added": user } }))
                    } else {
                        let mut q = Sql::new("delete from team_members where organization_id = ");
                        q.bind(org).push(" and team_id = ").bind(team);
                        q.push(" and user_id = ").bind(user);
                        (q, json!({ "members": { "removed": user } }))
                    };
                    let n = tx.conn().execute(&q).await?;
                    if n == 0 {
                        return if add {
                            Ok(false)
                        } else {
                            Err(Error::not_found("team_member", user))
                        };
                    }
                    events::append(&mut tx.conn(), &ctx, events::TEAM, team.uuid(), Action::Updated, object(change))
                        .await?;
                    Ok(true)
                }
                .await;
                tx.settle(out).await
            })
            .await?;
        if changed {
            self.tenant.forget_grants();
        }
        Ok(())
    }
}

/// `Ok` when `user` is an active user of `org`, else 422 on `field`.
async fn require_active_user(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    user: UserId,
    field: &'static str,
) -> Result<()> {
    let mut q = Sql::new("select count(*) from users where is_active and organization_id = ");
    q.bind(org).push(" and id = ").bind(user);
    let (n,): (i64,) = conn.fetch_one(&q).await?;
    if n == 0 {
        return Err(Error::invalid(
            field,
            "unknown_user",
            format!("{user} is not an active user of this organization"),
        ));
    }
    Ok(())
}

/// Team `id`, locked for update when `lock`.
pub(super) async fn read(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    id: TeamId,
    lock: bool,
) -> Result<Team> {
    let mut q = Sql::new("select ");
    q.push(COLUMNS)
        .push(" from teams where organization_id = ")
        .bind(org)
        .push(" and id = ")
        .bind(id);
    if lock {
        q.push(conn.backend().lock_rows());
    }
    let row: Row = conn
        .fetch_optional(&q)
        .await?
        .ok_or_else(|| Error::not_found(Team::NAME, id))?;
    Ok(from_row(row))
}

const COLUMNS: &str =
    "id, organization_id, name, description, manager_id, version, created_at, updated_at";

type Row = (
    Uuid,
    Uuid,
    String,
    String,
    Option<Uuid>,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn from_row(row: Row) -> Team {
    let (id, org, name, description, manager, version, created_at, updated_at) = row;
    Team {
        id: Id::from_uuid(id),
        organization_id: OrganizationId::from_uuid(org),
        name,
        description,
        manager_id: manager.map(Id::from_uuid),
        version,
        created_at,
        updated_at,
    }
}

/// What a unique-name violation means.
const TAKEN: &str = "a team of this name exists";
