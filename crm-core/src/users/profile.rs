//! A user's name and email: changed by the user themselves, or by a company admin.

use serde_json::{Map, json};

use super::model::{User, UserId};
use super::service::{COLUMNS, Users};
use crate::context::Actor;
use crate::error::{Error, Result, ResultExt as _};
use crate::events::{self, Action};
use crate::storage::Sql;
use crate::time::now;
use crate::validation::Validator;

impl Users<'_> {
    /// Changes user `id`'s name and/or email (`None` keeps it): the user themselves, or a
    /// company admin (not for a user whose role is above their own). The email stays unique in
    /// the organization, ignoring case. The change is an `updated` event with both values.
    ///
    /// # Errors
    /// [`Error::Forbidden`] as above; [`Error::NotFound`] for no such user in the organization;
    /// [`Error::Validation`] for a blank name or a malformed email; [`Error::Conflict`]
    /// (`duplicate`) when another user has the email.
    pub async fn update_profile(
        &self,
        id: UserId,
        name: Option<String>,
        email: Option<String>,
    ) -> Result<User> {
        let ctx = *self.tenant().context();
        let myself = ctx.actor() == Actor::User(id);
        if !myself {
            crate::access::roles::require_admin(&ctx, "change another user's name or email")?;
        }
        let current = self.get(id).await?;
        if !myself && current.role > ctx.role() {
            return Err(Error::forbidden(
                "role_above_own",
                format!(
                    "cannot change a user whose role ({}) is above your own",
                    current.role
                ),
            ));
        }
        let name = name.map_or(current.name.clone(), |n| n.trim().to_owned());
        let email = email.map_or(current.email.clone(), |e| e.trim().to_owned());
        let mut v = Validator::new();
        v.text("name", &name, true, 200);
        v.email("email", &email);
        v.finish()?;
        if name == current.name && email == current.email {
            return Ok(current);
        }

        let mut s = self.tenant().session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let mut q = Sql::new("update users set name = ");
            q.bind(name.as_str())
                .push(", email = ")
                .bind(email.as_str())
                .push(", updated_at = ")
                .bind(now())
                .push(", version = version + 1 where organization_id = ")
                .bind(ctx.organization_id())
                .push(" and id = ")
                .bind(id)
                .push(" returning ")
                .push(COLUMNS);
            let updated: User = tx.conn().fetch_one(&q).await.on_unique(|| {
                format!("a user with email {email} already exists in this organization")
            })?;
            let mut changes = Map::new();
            for (field, before, after) in [
                ("name", &current.name, &updated.name),
                ("email", &current.email, &updated.email),
            ] {
                if before != after {
                    changes.insert(field.into(), json!({ "before": before, "after": after }));
                }
            }
            events::append(
                &mut tx.conn(),
                &ctx,
                events::USER,
                id.uuid(),
                Action::Updated,
                changes,
            )
            .await?;
            Ok(updated)
        }
        .await;
        tx.settle(out).await
    }
}
