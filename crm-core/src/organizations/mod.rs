//! Organizations: the tenants. A global table, managed by the installation's operators.

mod model;
mod service;

pub use model::{NewOrganization, Organization, OrganizationId, OrganizationStatus};
pub use service::{MAX_RETENTION_DAYS, Organizations};
