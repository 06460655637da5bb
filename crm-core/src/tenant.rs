//! [`Tenant`]: the services of one organization, bound to one [`TenantContext`].

use crate::context::TenantContext;
use crate::crm::Crm;
use crate::error::Result;
use crate::storage::Session;

/// The services of one organization, acting as one actor. Made by [`Crm::tenant`]; cheap to
/// make and to clone. Each service module adds its accessor (`accounts()`, `users()`,
/// `pipelines()`…) in its own file.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::{Crm, ListQuery, NewContact, NewOrganization, Op, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// t.contacts().create(NewContact { email: Some("ada@example.com".into()), ..Default::default() }).await?;
/// let page = t.contacts().list(&ListQuery::default().filter("email", Op::Eq, "ada@example.com")).await?;
/// assert_eq!(page.data.len(), 1);
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Tenant {
    crm: Crm,
    ctx: TenantContext,
}

impl Crm {
    /// The services of one tenant. Every read and write through the returned handle is confined
    /// to `ctx`'s organization and attributed to its actor.
    pub fn tenant(&self, ctx: &TenantContext) -> Tenant {
        Tenant {
            crm: self.clone(),
            ctx: *ctx,
        }
    }
}

impl Tenant {
    /// The context every call of this handle runs with.
    pub fn context(&self) -> &TenantContext {
        &self.ctx
    }

    pub(crate) fn crm(&self) -> &Crm {
        &self.crm
    }

    /// A connection bound to this tenant.
    pub(crate) async fn session(&self) -> Result<Session> {
        self.crm.pool().tenant(self.ctx.organization_id()).await
    }
}
