//! An organization (tenant), its id and status, and the input that creates one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::Id;

/// The id of an organization (tenant).
pub type OrganizationId = Id<Organization>;

/// A tenant: every CRM record belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organization {
    /// Its id.
    pub id: OrganizationId,
    /// Display name.
    pub name: String,
    /// Unique, URL-safe short name (`acme-corp`).
    pub slug: String,
    /// Whether its users may work.
    pub status: OrganizationStatus,
    /// Days a trashed record is kept before the daily purge removes it for good (1–36500,
    /// default 30; [`crate::Organizations::set_trash_retention`]).
    pub trash_retention_days: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

crate::text_enum! {
    /// Whether an organization may be used.
    pub enum OrganizationStatus {
        /// In use.
        Active = "active",
        /// Switched off by an operator: its users are refused, its data kept.
        Suspended = "suspended",
    }
}

/// Input of `Organizations::create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// Display name (1–200 characters).
    pub name: String,
    /// Short name; derived from the name when absent.
    #[serde(default)]
    pub slug: Option<String>,
}
