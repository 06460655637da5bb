//! A user, their id and [`Role`], and the input that creates one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::password::Password;
use crate::record::Referable;

/// The id of a user.
pub type UserId = Id<User>;

/// A user of one organization. The password hash is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its organization.
    pub organization_id: OrganizationId,
    /// Email address as entered; unique per organization, ignoring case.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Deactivated users cannot sign in; their records stay.
    pub is_active: bool,
    /// Their password was set by someone else (a company admin or an operator): until they
    /// choose their own, their access tokens reach only `POST me/password` and `GET me`.
    pub must_change_password: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Referable for User {
    const TABLE: &'static str = "users";
    const NAME: &'static str = "user";
    const SOFT_DELETE: bool = false;
}

/// Input of `Users::create`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Email address (unique per organization, ignoring case).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Initial password (8–1024 characters); `None` for a user who cannot sign in yet.
    #[serde(default)]
    pub password: Option<Password>,
    /// Role; never above the creator's own.
    pub role: Role,
}

/// Whether a password set for a user by someone else ([`super::Users::set_password`]) must be
/// changed by the user at their next sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordKind {
    /// The user must replace it with their own before doing anything else (what an admin's
    /// reset gives).
    Temporary,
    /// The user keeps it (an operator setting a password they hand over by other means, or an
    /// admin setting their own).
    Permanent,
}

/// Minimum password length (OWASP ASVS 2.1.1).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Maximum password length (argon2 takes any, but unbounded input is a denial of service).
pub const MAX_PASSWORD_LEN: usize = 1024;

crate::text_enum! {
    /// A user's role. Ordered: `User < CompanyAdmin < SuperAdmin`.
    pub enum Role {
        /// Works with the CRM records of their organization.
        User = "user",
        /// Administers one organization: users, custom fields, API keys, purges.
        CompanyAdmin = "company_admin",
        /// Operates the whole installation: creates and suspends organizations.
        SuperAdmin = "super_admin",
    }
}

impl Role {
    /// Whether this role administers its organization (company admin or above).
    pub fn is_admin(self) -> bool {
        self >= Role::CompanyAdmin
    }
}
