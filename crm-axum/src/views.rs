//! Response and request bodies of the non-record routes, with their OpenAPI schemas.
//!
//! crm-core has no HTTP (and no utoipa), so the wire shapes of its users and organizations are
//! declared here, converted with `From`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RoleView {
    /// Works with the records of their organization.
    User,
    /// Administers one organization.
    CompanyAdmin,
    /// Operates the installation.
    SuperAdmin,
}

impl From<crm_core::Role> for RoleView {
    fn from(r: crm_core::Role) -> Self {
        match r {
            crm_core::Role::User => RoleView::User,
            crm_core::Role::CompanyAdmin => RoleView::CompanyAdmin,
            crm_core::Role::SuperAdmin => RoleView::SuperAdmin,
        }
    }
}

impl From<RoleView> for crm_core::Role {
    fn from(r: RoleView) -> Self {
        match r {
            RoleView::User => crm_core::Role::User,
            RoleView::CompanyAdmin => crm_core::Role::CompanyAdmin,
            RoleView::SuperAdmin => crm_core::Role::SuperAdmin,
        }
    }
}

/// A user (never their password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct UserView {
    /// Id.
    pub(crate) id: Uuid,
    /// Organization.
    pub(crate) organization_id: Uuid,
    /// Email address.
    pub(crate) email: String,
    /// Display name.
    pub(crate) name: String,
    /// Role.
    pub(crate) role: RoleView,
    /// Whether the user may sign in.
    pub(crate) is_active: bool,
    /// Created at.
    pub(crate) created_at: DateTime<Utc>,
    /// Updated at.
    pub(crate) updated_at: DateTime<Utc>,
    /// Version.
    pub(crate) version: i64,
}

impl From<crm_core::User> for UserView {
    fn from(u: crm_core::User) -> Self {
        Self {
            id: u.id.uuid(),
            organization_id: u.organization_id.uuid(),
            email: u.email,
            name: u.name,
            role: u.role.into(),
            is_active: u.is_active,
            created_at: u.created_at,
            updated_at: u.updated_at,
            version: u.version,
        }
    }
}

/// Whether an organization may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OrganizationStatusView {
    /// In use.
    Active,
    /// Switched off: its users are refused, its data kept.
    Suspended,
}

/// An organization (tenant).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct OrganizationView {
    /// Id.
    pub(crate) id: Uuid,
    /// Display name.
    pub(crate) name: String,
    /// Unique short name, used to sign in.
    pub(crate) slug: String,
    /// Status.
    pub(crate) status: OrganizationStatusView,
    /// Created at.
    pub(crate) created_at: DateTime<Utc>,
    /// Updated at.
    pub(crate) updated_at: DateTime<Utc>,
}

impl From<crm_core::Organization> for OrganizationView {
    fn from(o: crm_core::Organization) -> Self {
        Self {
            id: o.id.uuid(),
            name: o.name,
            slug: o.slug,
            status: match o.status {
                crm_core::OrganizationStatus::Active => OrganizationStatusView::Active,
                crm_core::OrganizationStatus::Suspended => OrganizationStatusView::Suspended,
            },
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A list of `T` with the cursor of the next page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ListOf<T> {
    /// The items.
    pub(crate) data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub(crate) next_cursor: Option<String>,
}

/// Keyset paging of simple lists (users, organizations).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct Paging {
    /// Page size (1–100, default 50).
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<Uuid>,
}

impl Paging {
    /// The page size asked for.
    pub(crate) fn size(&self) -> u32 {
        self.limit.unwrap_or(50).clamp(1, 100)
    }

    /// A page from the rows read with [`Paging::size`]: a full page has a cursor (the next
    /// page may be empty: the core's simple lists read no extra row to know).
    pub(crate) fn page<T, V: From<T>>(&self, rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> ListOf<V> {
        let next_cursor = if rows.len() >= self.size() as usize {
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        };
        ListOf {
            data: rows.into_iter().map(V::from).collect(),
            next_cursor,
        }
    }
}
