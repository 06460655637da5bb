//! An organization (tenant), its id and status, and the input that creates one.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
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
    #[sqlx(try_from = "String")]
    pub status: OrganizationStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Whether an organization may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrganizationStatus {
    /// In use.
    Active,
    /// Switched off by an operator: its users are refused, its data kept.
    Suspended,
}

impl OrganizationStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrganizationStatus::Active => "active",
            OrganizationStatus::Suspended => "suspended",
        }
    }
}

impl fmt::Display for OrganizationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for OrganizationStatus {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        match s.as_str() {
            "active" => Ok(OrganizationStatus::Active),
            "suspended" => Ok(OrganizationStatus::Suspended),
            other => Err(Error::Internal(format!(
                "unknown organization status `{other}`"
            ))),
        }
    }
}

/// Input of [`Organizations::create`].
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
