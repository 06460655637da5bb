//! Who is acting, for which organization: the [`TenantContext`] every tenant call carries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::organizations::OrganizationId;
use crate::users::UserId;

/// A user's role. Ordered: `User < CompanyAdmin < SuperAdmin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works with the CRM records of their organization.
    User,
    /// Administers one organization: users, custom fields, API keys, purges.
    CompanyAdmin,
    /// Operates the whole installation: creates and suspends organizations.
    SuperAdmin,
}

impl Role {
    /// The stored and serialized name (`"user"`, `"company_admin"`, `"super_admin"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::CompanyAdmin => "company_admin",
            Role::SuperAdmin => "super_admin",
        }
    }

    /// Whether this role administers its organization (company admin or above).
    pub fn is_admin(self) -> bool {
        self >= Role::CompanyAdmin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "user" => Ok(Role::User),
            "company_admin" => Ok(Role::CompanyAdmin),
            "super_admin" => Ok(Role::SuperAdmin),
            other => Err(Error::invalid(
                "role",
                "invalid_choice",
                format!("unknown role `{other}` (expected user, company_admin or super_admin)"),
            )),
        }
    }
}

impl TryFrom<String> for Role {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

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
}

impl TenantContext {
    /// A user of `organization_id` acting with `role`.
    pub fn user(organization_id: OrganizationId, user_id: UserId, role: Role) -> Self {
        Self {
            organization_id,
            actor: Actor::User(user_id),
            role,
        }
    }

    /// An API key of `organization_id`; machine clients act with the `user` role.
    pub fn api_key(organization_id: OrganizationId, key_id: Uuid) -> Self {
        Self {
            organization_id,
            actor: Actor::ApiKey(key_id),
            role: Role::User,
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
        assert!(matches!("root".parse::<Role>(), Err(Error::Validation(_))));
    }
}
