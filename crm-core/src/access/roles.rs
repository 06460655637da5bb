//! What the built-in roles permit beyond records: company admins (super-admins and the system
//! too) manage the organization — its users, API keys, pipelines and custom fields — and do
//! what cannot be undone or moves money: purging and erasing records, rebuilding match keys,
//! settling invoices, giving an unowned record an owner. Every such check of the library is a
//! call of [`require_admin`] or [`is_admin`]; the layers test keeps role checks out of the
//! other modules. (Reading and changing records is a matter of reach: [`super::Grants`].)

use crate::context::{Actor, TenantContext};
use crate::error::{Error, Result};
use crate::users::{Role, UserId};

/// Whether the caller is a company admin, a super-admin or the system.
pub(crate) fn is_admin(ctx: &TenantContext) -> bool {
    ctx.role().is_admin()
}

/// `Ok` for company admins, super-admins and the system; otherwise 403 `admin_only`, saying
/// "only company admins may `what`".
///
/// # Errors
/// [`Error::Forbidden`].
pub(crate) fn require_admin(ctx: &TenantContext, what: impl std::fmt::Display) -> Result<()> {
    if is_admin(ctx) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "admin_only",
            format!("only company admins may {what}"),
        ))
    }
}

/// The user, for a super-admin signed in as a user (installation-level work is never an API
/// key's or a job's); otherwise 403 `super_admin_only`, saying "only super-admins may `what`".
///
/// # Errors
/// [`Error::Forbidden`].
pub(crate) fn require_super_admin(
    ctx: &TenantContext,
    what: impl std::fmt::Display,
) -> Result<UserId> {
    match ctx.actor() {
        Actor::User(user) if ctx.role() == Role::SuperAdmin => Ok(user),
        _ => Err(Error::forbidden(
            "super_admin_only",
            format!("only super-admins may {what}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::organizations::OrganizationId;

    #[test]
    fn only_a_signed_in_super_admin_is_one() {
        let org = OrganizationId::new();
        let me = UserId::new();
        let root = TenantContext::user(org, me, Role::SuperAdmin);
        assert_eq!(require_super_admin(&root, "act").ok(), Some(me));
        for not in [
            TenantContext::user(org, UserId::new(), Role::CompanyAdmin),
            TenantContext::user(org, UserId::new(), Role::User),
            TenantContext::api_key(org, uuid::Uuid::now_v7()),
            TenantContext::system(org),
        ] {
            let Err(Error::Forbidden(r)) = require_super_admin(&not, "act") else {
                panic!("{not:?} passed");
            };
            assert_eq!(r.code, "super_admin_only");
            assert_eq!(r.message, "only super-admins may act");
        }
    }
}
