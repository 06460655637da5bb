//! Resolving a caller's [`Grants`]: [`Tenant::grants`].

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use uuid::Uuid;

use super::grants::{Grants, shared_with};
use super::permission_sets::StoredRules;
use super::rules::{EntityAccess, Reach};
use crate::context::Actor;
use crate::entities::EntityKind;
use crate::error::{Error, Result};
use crate::storage::{Conn, Sql};
use crate::tenant::Tenant;
use crate::users::Role;

/// The grants of company admins, super-admins and the system.
static UNRESTRICTED: LazyLock<Arc<Grants>> = LazyLock::new(|| Arc::new(Grants::unrestricted()));

/// Every entity table of the registry.
fn tables() -> Vec<&'static str> {
    EntityKind::ALL.iter().map(|k| k.table()).collect()
}

impl Tenant {
    /// What the caller may do: their reach into each entity, field rules, teams and (for an API
    /// key) scopes. Company admins and the system have every grant at no cost; anyone else's
    /// are read once and cached for up to 30 seconds (a change of access made through this
    /// [`crate::Crm`] is seen at once; see [`crate::Crm::forget_cached_definitions`] for several
    /// instances).
    ///
    /// Call it before taking a connection for a call: it may read with one of its own.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a user or API key that no longer exists (or a revoked
    /// key); storage errors.
    pub async fn grants(&self) -> Result<Arc<Grants>> {
        if let Some(known) = self.known_grants() {
            return Ok(known);
        }
        let mut s = self.session().await?;
        self.resolve_grants(&mut s.conn()).await
    }

    /// [`Tenant::grants`] read on `conn`: for the write path, which already holds the call's
    /// connection (on SQLite the only writer).
    pub(crate) async fn grants_in(&self, conn: &mut Conn<'_>) -> Result<Arc<Grants>> {
        match self.known_grants() {
            Some(known) => Ok(known),
            None => self.resolve_grants(conn).await,
        }
    }

    /// The grants known without reading: every grant of admins and the system, or cached.
    fn known_grants(&self) -> Option<Arc<Grants>> {
        if let Some(given) = self.given_grants() {
            return Some(given.clone());
        }
        let ctx = self.context();
        if ctx.role().is_admin() {
            return Some(UNRESTRICTED.clone());
        }
        self.crm()
            .grants_cache()
            .get(&(ctx.organization_id(), ctx.actor()))
    }

    /// Resolves the caller's grants on `conn` and caches them.
    async fn resolve_grants(&self, conn: &mut Conn<'_>) -> Result<Arc<Grants>> {
        let ctx = self.context();
        let mut resolved = resolve(conn, self).await?;
        if self.crm().rls_alone() {
            resolved.leave_reads_to_row_level_security();
        }
        let resolved = Arc::new(resolved);
        self.crm()
            .grants_cache()
            .insert((ctx.organization_id(), ctx.actor()), resolved.clone());
        Ok(resolved)
    }

    /// `Ok` unless the caller is an API key whose scopes leave out the organization's settings
    /// (see [`Grants::require_settings`]); users and the system read them at no cost.
    pub(crate) async fn require_settings(&self) -> Result<()> {
        match self.context().actor() {
            Actor::ApiKey(_) => self.grants().await?.require_settings(),
            _ => Ok(()),
        }
    }

    /// `Ok` when the caller may manage the organization's settings (company admins, API keys
    /// with the `all` scope), else 403 saying `message` (`out_of_scope` for other keys).
    pub(crate) async fn require_manage(&self, message: &'static str) -> Result<()> {
        self.grants().await?.require_manage(message)
    }

    /// The caller's grants, if they may read the organization's change feed at all (company
    /// admins, the system, API keys with the `changes` or `all` scope); else 403.
    pub(crate) async fn require_changes(&self) -> Result<Arc<Grants>> {
        let grants = self.grants().await?;
        if grants.may_read_changes() {
            Ok(grants)
        } else if matches!(self.context().actor(), Actor::ApiKey(_)) {
            Err(Error::forbidden(
                "out_of_scope",
                "this API key's scopes do not include the change feed",
            ))
        } else {
            Err(Error::forbidden(
                "admin_only",
                "only company admins and API keys may read the change feed",
            ))
        }
    }

    /// Forgets the cached grants of this organization's callers, after a change of access.
    pub(crate) fn forget_grants(&self) {
        let org = self.context().organization_id();
        // Built with invalidation closures; an error would mean otherwise.
        let _ = self
            .crm()
            .grants_cache()
            .invalidate_entries_if(move |(o, _), _| *o == org);
    }
}

async fn resolve(conn: &mut Conn<'_>, tenant: &Tenant) -> Result<Grants> {
    let ctx = tenant.context();
    let org = ctx.organization_id();
    match ctx.actor() {
        Actor::System => Ok(Grants::unrestricted()),
        Actor::User(user) => user_grants(conn, tenant, user.uuid(), ctx.role()).await,
        Actor::ApiKey(key) => {
            let mut q = Sql::new(
                "select scopes, permission_set_id, user_id from api_keys where organization_id = ",
            );
            q.bind(org)
                .push(" and id = ")
                .bind(key)
                .push(" and revoked_at is null");
            let (scopes, set, user): (String, Option<Uuid>, Option<Uuid>) = conn
                .fetch_optional(&q)
                .await?
                .ok_or(Error::Unauthenticated)?;
            let base = match (user, set) {
                (Some(user), _) => {
                    let mut q =
                        Sql::new("select role from users where is_active and organization_id = ");
                    q.bind(org).push(" and id = ").bind(user);
                    let (role,): (Role,) = conn
                        .fetch_optional(&q)
                        .await?
                        .ok_or(Error::Unauthenticated)?;
                    user_grants(conn, tenant, user, role).await?
                }
                (None, Some(set)) => of_permission_set(conn, tenant, set).await?,
                // A key acts on its own with the built-in access of the `user` role; its own
                // records are those it created.
                (None, None) => {
                    Grants::built_in(EntityAccess::USER, Some(key), true).finish(&tables())
                }
            };
            Ok(narrowed(base, &scopes, user.is_some()))
        }
    }
}

/// The grants of a holder of permission set `set` that is no user (an API key of its own, a
/// webhook subscription): the set's reach and field rules, no teams, no records of its own.
///
/// # Errors
/// [`Error::NotFound`] for an unknown set; storage errors.
pub(crate) async fn of_permission_set(
    conn: &mut Conn<'_>,
    tenant: &Tenant,
    set: Uuid,
) -> Result<Grants> {
    let rules = StoredRules::read(conn, tenant, set).await?;
    Ok(Grants::new(
        rules.entities,
        EntityAccess::NONE,
        rules.fields,
        None,
        Vec::new(),
        Vec::new(),
        (true, true, true),
    )
    .finish(&tables()))
}

/// The grants of `user` acting with `role`: everything for admins; otherwise their permission
/// set (or the built-in access of the role), their teams and teammates.
async fn user_grants(
    conn: &mut Conn<'_>,
    tenant: &Tenant,
    user: Uuid,
    role: Role,
) -> Result<Grants> {
    if role.is_admin() {
        return Ok(Grants::unrestricted());
    }
    let org = tenant.context().organization_id();
    let mut q = Sql::new("select permission_set_id from users where organization_id = ");
    q.bind(org).push(" and id = ").bind(user);
    let (set,): (Option<Uuid>,) = conn
        .fetch_optional(&q)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let mut q = Sql::new("select team_id from team_members where organization_id = ");
    q.bind(org).push(" and user_id = ").bind(user);
    q.push(" union select id from teams where organization_id = ")
        .bind(org)
        .push(" and manager_id = ")
        .bind(user);
    let teams: Vec<(Uuid,)> = conn.fetch_all(&q).await?;
    let teams: Vec<Uuid> = teams.into_iter().map(|(t,)| t).collect();
    let mut teammates = vec![user];
    if !teams.is_empty() {
        let ids = || teams.iter().map(|t| (*t).into());
        let mut q = Sql::new("select user_id from team_members where organization_id = ");
        q.bind(org).push(" and team_id in (").bind_list(ids());
        q.push(") union select manager_id from teams where organization_id = ")
            .bind(org);
        q.push(" and manager_id is not null and id in (")
            .bind_list(ids())
            .push(")");
        let mates: Vec<(Uuid,)> = conn.fetch_all(&q).await?;
        teammates.extend(mates.into_iter().map(|(u,)| u));
    }
    let mut grantees = vec![user];
    grantees.extend(&teams);
    let (entities, default, fields) = match set {
        Some(set) => {
            let rules = StoredRules::read(conn, tenant, set).await?;
            (rules.entities, EntityAccess::NONE, rules.fields)
        }
        None => (HashMap::new(), EntityAccess::USER, HashMap::new()),
    };
    let grants = Grants::new(
        entities,
        default,
        fields,
        Some(user),
        teammates,
        grantees,
        (false, false, false),
    );
    let tables = tables();
    let shared = if grants.reads_narrowly(&tables) {
        shared_with(conn, org, grants.grantees()).await?
    } else {
        HashMap::new()
    };
    Ok(grants.with_shared(shared).finish(&tables))
}

/// `base` narrowed by an API key's stored `scopes` (`all`, `forms`, `changes`,
/// `<table>:read`, `<table>:write`); `for_user` when the key acts for a user, whose settings
/// rights it does not widen.
fn narrowed(base: Grants, scopes: &str, for_user: bool) -> Grants {
    let scopes: Vec<&str> = scopes.split_whitespace().collect();
    let all = scopes.contains(&"all");
    let mut entities = HashMap::new();
    let mut out_of_scope = Vec::new();
    let mut read_only = Vec::new();
    for table in tables() {
        let access = base.access(table);
        let write = scopes
            .iter()
            .any(|s| s.strip_suffix(":write") == Some(table));
        let read = write
            || scopes
                .iter()
                .any(|s| s.strip_suffix(":read") == Some(table));
        if all || write {
            entities.insert(table.to_owned(), access);
        } else if read {
            read_only.push(table.to_owned());
            entities.insert(
                table.to_owned(),
                EntityAccess {
                    read: access.read,
                    write: Reach::None,
                    delete: Reach::None,
                },
            );
        } else {
            out_of_scope.push(table.to_owned());
        }
    }
    let manage = all && (!for_user || base.may_manage());
    let forms = all || scopes.contains(&"forms");
    let changes = all || scopes.contains(&"changes");
    let fields = tables()
        .into_iter()
        .map(|t| {
            let rules = base
                .field_rules(t)
                .map(|(f, r)| (f.to_owned(), r))
                .collect();
            (t.to_owned(), rules)
        })
        .collect();
    Grants::new(
        entities,
        EntityAccess::NONE,
        fields,
        base.user(),
        base.teammates().to_vec(),
        base.grantees().to_vec(),
        (manage, forms, changes),
    )
    .with_shared(base.shares())
    .scoped(out_of_scope, read_only, all)
    .finish(&tables())
}
