//! Who is acting, for which organization: the [`TenantContext`] every tenant call carries.

use uuid::Uuid;

use crate::organizations::OrganizationId;
use crate::users::{Role, UserId};

/// Who performs a call; recorded as `created_by` / `updated_by` / `deleted_by` and in the
/// event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A signed-in user.
    User(UserId),
    /// A machine client authenticated by an API key (the key's id).
    ApiKey(Uuid),
    /// The library itself or an operator tool (jobs, CLI, imports).
    System,
}

impl Actor {
    /// The id stored in audit columns: the user's or the API key's id; `None` for the system.
    pub fn id(self) -> Option<Uuid> {
        match self {
            Actor::User(id) => Some(id.uuid()),
            Actor::ApiKey(id) => Some(id),
            Actor::System => None,
        }
    }
}

/// The organization a call acts on, who acts, and with which role.
///
/// Every service for tenant data is reached through [`crate::Crm::tenant`] with one of these;
/// there is no other way to read or write tenant rows. The library trusts the context it is
/// given: building one from a verified token or session is the host's (or `crm-axum`'s) job.
///
/// ```
/// use crm_core::{OrganizationId, Role, TenantContext, UserId};
/// let ctx = TenantContext::user(OrganizationId::new(), UserId::new(), Role::User);
/// assert!(!ctx.role().is_admin());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantContext {
    organization_id: OrganizationId,
    actor: Actor,
    role: Role,
    request_id: Option<Uuid>,
}

impl TenantContext {
    /// A user of `organization_id` acting with `role`.
    pub fn user(organization_id: OrganizationId, user_id: UserId, role: Role) -> Self {
        Self {
            organization_id,
            actor: Actor::User(user_id),
            role,
            request_id: None,
        }
    }

    /// An API key of `organization_id`; machine clients act with the `user` role.
    pub fn api_key(organization_id: OrganizationId, key_id: Uuid) -> Self {
        Self {
            organization_id,
            actor: Actor::ApiKey(key_id),
            role: Role::User,
            request_id: None,
        }
    }

    /// The system acting inside one organization (jobs, imports, operator commands). It has
    /// super-admin rights there; use it only for work no user started, and never to serve a
    /// request.
    pub fn system(organization_id: OrganizationId) -> Self {
        Self {
            organization_id,
            actor: Actor::System,
            role: Role::SuperAdmin,
            request_id: None,
        }
    }

    /// The organization every read and write of this context is confined to.
    pub fn organization_id(&self) -> OrganizationId {
        self.organization_id
    }

    /// Who acts.
    pub fn actor(&self) -> Actor {
        self.actor
    }

    /// With which role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The same context for the request `request_id` (the HTTP layer's `x-request-id`): the
    /// events its writes log carry it, so a change can be traced to the request that made it.
    pub fn with_request_id(mut self, request_id: Option<Uuid>) -> Self {
        self.request_id = request_id;
        self
    }

    /// The request this context serves, if it was given one.
    pub fn request_id(&self) -> Option<Uuid> {
        self.request_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::User < Role::CompanyAdmin && Role::CompanyAdmin < Role::SuperAdmin);
        for r in [Role::User, Role::CompanyAdmin, Role::SuperAdmin] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!(matches!(
            "root".parse::<Role>(),
            Err(crate::Error::Validation(_))
        ));
    }
}
