//! What the built-in roles permit beyond records: company admins (super-admins and the system
//! too) manage the organization — its users, API keys, pipelines and custom fields — and do
//! what cannot be undone or moves money: purging and erasing records, rebuilding match keys,
//! settling invoices, giving an unowned record an owner. Every such check of the library is a
//! call of [`require_admin`] or [`is_admin`]; the layers test keeps role checks out of the
//! other modules. (Reading and changing records is a matter of reach: [`super::Grants`].)

use crate::context::TenantContext;
use crate::error::{Error, Result};

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
