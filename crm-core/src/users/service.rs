//! [`Users`]: the service that creates, reads, changes and deactivates an organization's users.

use serde_json::{Map, json};

use super::model::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, NewUser, Role, User, UserId};
use crate::context::TenantContext;
use crate::error::{Error, Result, ResultExt as _};
use crate::events::{self, Action};
use crate::password::Password;
use crate::storage::{Sql, Tx};
use crate::tenant::Tenant;
use crate::time::now;
use crate::validation::Validator;

pub(super) const COLUMNS: &str = "id, organization_id, email, name, role, is_active, must_change_password, created_at, updated_at, version";

impl Tenant {
    /// Users of the organization.
    pub fn users(&self) -> Users<'_> {
        Users::new(self)
    }
}

/// The users of one organization. Reached through [`Tenant::users`].
#[derive(Debug, Clone, Copy)]
pub struct Users<'t> {
    tenant: &'t Tenant,
}

impl<'t> Users<'t> {
    pub(crate) fn new(tenant: &'t Tenant) -> Self {
        Self { tenant }
    }

    pub(super) fn tenant(&self) -> &'t Tenant {
        self.tenant
    }

    /// Creates a user. Company admins (and the system context) may create users up to their own
    /// role.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for plain users or a role above the caller's;
    /// [`Error::Validation`] for a bad email, name or password; [`Error::Conflict`] when the
    /// email is taken in this organization.
    #[tracing::instrument(level = "debug", skip_all, fields(org = %self.tenant.context().organization_id()))]
    pub async fn create(&self, new: NewUser) -> Result<User> {
        let ctx = self.tenant.context();
        let prepared = PreparedUser::new(self.tenant.crm(), ctx, new).await?;
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = prepared.insert_in(&mut tx, ctx).await;
        tx.settle(out).await
    }

    /// The user with `id`.
    pub async fn get(&self, id: UserId) -> Result<User> {
        self.tenant.require_settings().await?;
        let mut q = Sql::new("select ");
        q.push(COLUMNS).push(" from users where organization_id = ");
        q.bind(self.tenant.context().organization_id())
            .push(" and id = ")
            .bind(id);
        let mut s = self.tenant.session().await?;
        s.conn()
            .fetch_optional(&q)
            .await?
            .ok_or(Error::not_found("user", id))
    }

    /// The user with `email` (ignoring case).
    pub async fn get_by_email(&self, email: &str) -> Result<User> {
        self.tenant.require_settings().await?;
        let mut q = Sql::new("select ");
        q.push(COLUMNS).push(" from users where organization_id = ");
        q.bind(self.tenant.context().organization_id());
        q.push(" and lower(email) = lower(")
            .bind(email.trim())
            .push(")");
        let mut s = self.tenant.session().await?;
        s.conn().fetch_optional(&q).await?.ok_or(Error::NotFound {
            entity: "user",
            id: None,
        })
    }

    /// Up to `limit` (≤ 100) users in creation order, after `after` when given.
    pub async fn list(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>> {
        self.tenant.require_settings().await?;
        let mut q = Sql::new("select ");
        q.push(COLUMNS).push(" from users where organization_id = ");
        q.bind(self.tenant.context().organization_id());
        if let Some(after) = after {
            q.push(" and id > ").bind(after);
        }
        q.push(" order by id").limit(limit.clamp(1, 100));
        let mut s = self.tenant.session().await?;
        s.conn().fetch_all(&q).await
    }

    /// Changes the role of user `id`. Admins cannot grant a role above their own, nor change a
    /// user whose role is above their own.
    ///
    /// # Errors
    /// [`Error::Forbidden`] as above; [`Error::Conflict`] when it would leave the organization
    /// without an active company admin.
    pub async fn set_role(&self, id: UserId, role: Role) -> Result<User> {
        let ctx = self.tenant.context();
        if role > ctx.role() {
            return Err(Error::forbidden(
                "role_above_own",
                format!("cannot grant role {role} above your own"),
            ));
        }
        self.change(id, Action::RoleChanged, move |u| {
            (u.role != role).then_some((u.role, role, u.is_active, u.is_active))
        })
        .await
    }

    /// Deactivates user `id`: they can no longer sign in and their refresh tokens are revoked;
    /// their records stay.
    ///
    /// # Errors
    /// [`Error::Conflict`] for the last active company admin.
    pub async fn deactivate(&self, id: UserId) -> Result<User> {
        self.change(id, Action::Deactivated, |u| {
            u.is_active.then_some((u.role, u.role, true, false))
        })
        .await
    }

    /// Lets a deactivated user sign in again.
    pub async fn reactivate(&self, id: UserId) -> Result<User> {
        self.change(id, Action::Reactivated, |u| {
            (!u.is_active).then_some((u.role, u.role, false, true))
        })
        .await
    }

    /// Changes role and/or activity of a user in one transaction, guarding the rules every such
    /// change shares. `compute` returns `(role before, role after, active before, active after)`,
    /// or `None` when there is nothing to do.
    async fn change(
        &self,
        id: UserId,
        action: Action,
        compute: impl FnOnce(&User) -> Option<(Role, Role, bool, bool)>,
    ) -> Result<User> {
        let ctx = self.tenant.context();
        crate::access::roles::require_admin(ctx, "manage users")?;
        let org = ctx.organization_id();
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let lock = tx.conn().backend().lock_rows();
            let mut q = Sql::new("select ");
            q.push(COLUMNS)
                .push(" from users where organization_id = ")
                .bind(org);
            q.push(" and id = ").bind(id).push(lock);
            let user: User = tx
                .conn()
                .fetch_optional(&q)
                .await?
                .ok_or(Error::not_found("user", id))?;
            if user.role > ctx.role() {
                return Err(Error::forbidden(
                    "role_above_own",
                    format!(
                        "cannot change a user whose role ({}) is above your own",
                        user.role
                    ),
                ));
            }
            let Some((role_before, role_after, active_before, active_after)) = compute(&user)
            else {
                return Ok(user);
            };
            // Losing an active admin: lock every active admin of the organization, so two admins
            // demoting each other at once cannot both succeed.
            let was_admin = active_before && role_before.is_admin();
            let stays_admin = active_after && role_after.is_admin();
            if was_admin && !stays_admin {
                let mut q = Sql::new("select id from users where organization_id = ");
                q.bind(org)
                    .push(" and is_active and role in ('company_admin', 'super_admin')")
                    .push(lock);
                let admins: Vec<(uuid::Uuid,)> = tx.conn().fetch_all(&q).await?;
                if admins.len() <= 1 {
                    return Err(Error::conflict(
                        "last_admin",
                        "the organization's last active company admin cannot be removed or demoted",
                    ));
                }
            }
            let mut q = Sql::new("update users set role = ");
            q.bind(role_after.as_str())
                .push(", is_active = ")
                .bind(active_after);
            q.push(", updated_at = ")
                .bind(now())
                .push(", version = version + 1 where organization_id = ");
            q.bind(org)
                .push(" and id = ")
                .bind(id)
                .push(" returning ")
                .push(COLUMNS);
            let updated: User = tx.conn().fetch_one(&q).await?;
            if active_before && !active_after {
                // A deactivated user keeps no way back in: their refresh tokens die with them.
                let mut r = Sql::new("update refresh_tokens set revoked_at = ");
                r.bind(now())
                    .push(" where organization_id = ")
                    .bind(org)
                    .push(" and user_id = ")
                    .bind(id)
                    .push(" and revoked_at is null");
                tx.conn().execute(&r).await?;
            }
            let mut changes = Map::new();
            if role_before != role_after {
                changes.insert(
                    "role".into(),
                    json!({ "before": role_before, "after": role_after }),
                );
            }
            if active_before != active_after {
                changes.insert(
                    "is_active".into(),
                    json!({ "before": active_before, "after": active_after }),
                );
            }
            events::append(
                &mut tx.conn(),
                ctx,
                events::USER,
                id.uuid(),
                action,
                changes,
            )
            .await?;
            Ok(updated)
        }
        .await;
        tx.settle(out).await
    }

    /// The active user with `email` whose password is `password`.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for an unknown email, a wrong password, a user without a
    /// password or a deactivated user — the same error and the same time for each.
    pub async fn authenticate(&self, email: &str, password: &Password) -> Result<User> {
        let mut q = Sql::new("select ");
        q.push(COLUMNS)
            .push(", password_hash from users where organization_id = ");
        q.bind(self.tenant.context().organization_id());
        q.push(" and lower(email) = lower(")
            .bind(email.trim())
            .push(")");
        let mut s = self.tenant.session().await?;
        let found: Option<UserWithHash> = s.conn().fetch_optional(&q).await?;
        drop(s);
        let hash = found.as_ref().and_then(|u| u.password_hash.as_deref());
        let ok = self.tenant.crm().hasher().verify(password, hash).await?;
        match found {
            Some(u) if ok && u.user.is_active => Ok(u.user),
            _ => Err(Error::Unauthenticated),
        }
    }
}

/// A new user, checked, with the password already hashed (slow: done before any transaction).
pub(crate) struct PreparedUser {
    id: UserId,
    email: String,
    name: String,
    hash: Option<String>,
    role: Role,
}

impl PreparedUser {
    /// Checks `new` for creation by `ctx` and hashes its password.
    pub(crate) async fn new(crm: &crate::Crm, ctx: &TenantContext, new: NewUser) -> Result<Self> {
        crate::access::roles::require_admin(ctx, "create users")?;
        if new.role > ctx.role() {
            return Err(Error::forbidden(
                "role_above_own",
                format!("cannot create a user with role {} above your own", new.role),
            ));
        }
        let email = new.email.trim().to_owned();
        let mut v = Validator::new();
        v.email("email", &email);
        v.text("name", &new.name, true, 200);
        if let Some(p) = &new.password {
            let n = p.expose().chars().count();
            v.check(
                (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&n),
                "password",
                "invalid_length",
                "must be between 8 and 1024 characters",
            );
        }
        v.finish()?;
        let hash = match &new.password {
            Some(p) => Some(crm.hasher().hash(p).await?),
            None => None,
        };
        Ok(Self {
            id: UserId::new(),
            email,
            name: new.name.trim().to_owned(),
            hash,
            role: new.role,
        })
    }

    /// Inserts the user and its event in `ctx`'s organization, inside the caller's transaction.
    pub(crate) async fn insert_in(self, tx: &mut Tx<'_>, ctx: &TenantContext) -> Result<User> {
        let at = now();
        let mut q = Sql::new(
            "insert into users (organization_id, id, email, name, password_hash, role, is_active, created_at, updated_at, version) values (",
        );
        q.bind(ctx.organization_id()).push(", ").bind(self.id);
        q.push(", ")
            .bind(self.email.as_str())
            .push(", ")
            .bind(self.name.as_str());
        q.push(", ")
            .bind(self.hash)
            .push(", ")
            .bind(self.role.as_str());
        q.push(", true, ").bind(at).push(", ").bind(at);
        q.push(", 1) returning ").push(COLUMNS);
        let email = self.email;
        let user: User = tx.conn().fetch_one(&q).await.on_unique(|| {
            format!("a user with email {email} already exists in this organization")
        })?;
        let mut changes = Map::new();
        changes.insert("email".into(), json!({ "after": user.email }));
        changes.insert("name".into(), json!({ "after": user.name }));
        changes.insert("role".into(), json!({ "after": user.role }));
        events::append(
            &mut tx.conn(),
            ctx,
            events::USER,
            user.id.uuid(),
            Action::Created,
            changes,
        )
        .await?;
        Ok(user)
    }
}

#[derive(sqlx::FromRow)]
struct UserWithHash {
    #[sqlx(flatten)]
    user: User,
    password_hash: Option<String>,
}
