//! What an HTTP layer needs stored to authenticate callers, without any HTTP here:
//!
//! - [`Auth`] (from [`crate::Crm::auth`]): who a token's subject is right now ([`Principal`]),
//!   rotating refresh tokens in families, and verifying API keys — calls that start from a
//!   credential rather than from a known tenant;
//! - [`ApiKeys`] (from [`crate::Tenant::api_keys`]): an organization's machine credentials, each
//!   with its [`ApiKeyScopes`];
//! - [`Idempotency`] (from [`crate::Tenant::idempotency`]): `Idempotency-Key` records;
//! - [`crate::Tenant::sweep_expired`]: deleting expired keys and refresh tokens.
//!
//! Secrets (refresh tokens, API keys) are 256 random bits, shown once, stored as SHA-256. The
//! token text starts with its organization's id so the lookup binds its session to that
//! organization (row-level security on PostgreSQL) before reading anything.

mod api_keys;
mod idempotency;
mod refresh_tokens;
mod scopes;
mod secret;
mod sweep;

pub use api_keys::{ApiKey, ApiKeyAccess, ApiKeyId, ApiKeys, NewApiKey};
pub use idempotency::{ABANDONED_AFTER, Begin, Idempotency, StoredResponse};
pub use refresh_tokens::{Auth, IssuedRefreshToken, Principal};
pub use scopes::{ApiKeyScope, ApiKeyScopes};
pub(crate) use secret::hash as sha256_hex;
pub use sweep::SweepReport;
