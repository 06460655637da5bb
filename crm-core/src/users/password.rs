//! Changing passwords: a user changing their own (the current one required), and a company
//! admin or an operator setting someone's. Either way the user's other sessions end: their
//! refresh-token families are revoked (all of them, or all but the one the change came from).
//!
//! A password set by someone else is normally [`PasswordKind::Temporary`]: the user's
//! `must_change_password` flag is set until they change it themselves, and crm-axum lets their
//! access tokens reach nothing but that change (see `crm-axum/src/auth/mod.rs`).

use serde_json::{Map, json};
use uuid::Uuid;

use super::model::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, PasswordKind, Role, User, UserId};
use super::service::Users;
use crate::context::Actor;
use crate::error::{Error, Result};
use crate::events::{self, Action};
use crate::password::Password;
use crate::storage::{Sql, Tx};
use crate::time::now;

impl Users<'_> {
    /// The acting user changes their own password. `current` must be right (else
    /// [`Error::Unauthenticated`], as a wrong password at sign-in); every refresh-token family of
    /// theirs is revoked except `keep_family` (the session the change came from, if any). A
    /// temporary password ([`User::must_change_password`]) ends here.
    ///
    /// # Errors
    /// [`Error::Forbidden`] (`users_only`) for an actor that is no user; [`Error::Validation`]
    /// for a new password outside 8–1024 characters, or the same as the current one
    /// (`unchanged`: a temporary password cannot be kept by "changing" it to itself).
    pub async fn change_own_password(
        &self,
        current: &Password,
        new: &Password,
        keep_family: Option<Uuid>,
    ) -> Result<()> {
        let Actor::User(id) = self.tenant().context().actor() else {
            return Err(Error::forbidden(
                "users_only",
                "only a signed-in user has a password to change",
            ));
        };
        let user = self.get(id).await?;
        // The same check and the same error as signing in.
        self.authenticate(&user.email, current).await?;
        if new.expose() == current.expose() {
            return Err(Error::invalid(
                "new_password",
                "unchanged",
                "must differ from the current password",
            ));
        }
        self.store(&user, new, false, keep_family).await
    }

    /// Sets user `id`'s password: company admins (not for a user whose role is above their own)
    /// and operators (a system context, as `crm user set-password`). Every refresh-token family
    /// of the user is revoked; their API keys are not touched. With
    /// [`PasswordKind::Temporary`] the user must change it at their next sign-in
    /// ([`User::must_change_password`]); with [`PasswordKind::Permanent`] they keep it (and a
    /// pending change is no longer required).
    ///
    /// # Errors
    /// [`Error::Forbidden`] as above; [`Error::NotFound`] for no such user in the organization;
    /// [`Error::Validation`] for a password outside 8–1024 characters.
    pub async fn set_password(&self, id: UserId, new: &Password, kind: PasswordKind) -> Result<()> {
        let ctx = self.tenant().context();
        crate::access::roles::require_admin(ctx, "set another user's password")?;
        let user = self.get(id).await?;
        if user.role > ctx.role() && ctx.role() < Role::SuperAdmin {
            return Err(Error::forbidden(
                "role_above_own",
                format!(
                    "cannot change a user whose role ({}) is above your own",
                    user.role
                ),
            ));
        }
        self.store(&user, new, kind == PasswordKind::Temporary, None)
            .await
    }

    /// Checks and hashes `new` (before any transaction: hashing is slow), then stores it with
    /// `must_change`, revokes the user's refresh-token families but `keep_family`, and logs a
    /// `password_changed` event (without the password).
    async fn store(
        &self,
        user: &User,
        new: &Password,
        must_change: bool,
        keep_family: Option<Uuid>,
    ) -> Result<()> {
        let n = new.expose().chars().count();
        if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&n) {
            return Err(Error::invalid(
                "new_password",
                "invalid_length",
                "must be between 8 and 1024 characters",
            ));
        }
        let hash = self.tenant().crm().hasher().hash(new).await?;
        let mut s = self.tenant().session().await?;
        let mut tx = s.begin().await?;
        let out = self
            .store_in(&mut tx, user, &hash, must_change, keep_family)
            .await;
        tx.settle(out).await
    }

    async fn store_in(
        &self,
        tx: &mut Tx<'_>,
        user: &User,
        hash: &str,
        must_change: bool,
        keep_family: Option<Uuid>,
    ) -> Result<()> {
        let id = user.id;
        let ctx = self.tenant().context();
        let org = ctx.organization_id();
        let at = now();
        let mut q = Sql::new("update users set password_hash = ");
        q.bind(hash)
            .push(", must_change_password = ")
            .bind(must_change)
            .push(", updated_at = ")
            .bind(at)
            .push(", version = version + 1 where organization_id = ")
            .bind(org)
            .push(" and id = ")
            .bind(id);
        if tx.conn().execute(&q).await? == 0 {
            return Err(Error::not_found("user", id));
        }
        let mut r = Sql::new("update refresh_tokens set revoked_at = ");
        r.bind(at)
            .push(" where organization_id = ")
            .bind(org)
            .push(" and user_id = ")
            .bind(id)
            .push(" and revoked_at is null");
        if let Some(keep) = keep_family {
            r.push(" and family_id <> ").bind(keep);
        }
        tx.conn().execute(&r).await?;
        let mut changes = Map::new();
        if user.must_change_password != must_change {
            changes.insert(
                "must_change_password".into(),
                json!({ "before": user.must_change_password, "after": must_change }),
            );
        }
        events::append(
            &mut tx.conn(),
            ctx,
            events::USER,
            id.uuid(),
            Action::PasswordChanged,
            changes,
        )
        .await
    }
}
