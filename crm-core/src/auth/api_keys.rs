//! [`ApiKeys`]: machine credentials of one organization, stored hashed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::refresh_tokens::API_KEY_PREFIX;
use super::scopes::{ApiKeyScope, ApiKeyScopes};
use super::secret;
use crate::context::TenantContext;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::organizations::OrganizationId;
use crate::storage::Sql;
use crate::tenant::Tenant;
use crate::time::now;
use crate::validation::Validator;

/// The id of an API key.
pub type ApiKeyId = Id<ApiKey>;

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// Its organization: the only one it can act on.
    pub organization_id: OrganizationId,
    /// What it is for.
    pub name: String,
    /// The start of the key, its own for each key (`crm_key_<organization>_<key id>`, what
    /// precedes the secret): tells keys apart, and is not secret.
    pub prefix: String,
    /// What the key may do (`["forms"]`, `["leads:read", "accounts:write"]`, `["all"]`).
    #[sqlx(try_from = "String")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::api_key_scopes))]
    pub scopes: ApiKeyScopes,
    /// The user who created it.
    pub created_by: Option<Uuid>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; revoked keys authenticate nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Input of [`ApiKeys::create`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What it is for (1–200 characters).
    pub name: String,
    /// What it may do: at least one scope (see [`ApiKeyScope`]).
    pub scopes: Vec<ApiKeyScope>,
}

/// A verified API key: the context it acts in and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyAccess {
    /// The organization it acts on, as the key (role `user`).
    pub context: TenantContext,
    /// Its scopes.
    pub scopes: ApiKeyScopes,
}

const COLUMNS: &str =
    "id, organization_id, name, prefix, scopes, created_by, created_at, revoked_at";

/// The visible start of a key: everything before its secret. Derived rather than read, so
/// keys made when all keys of an organization shared one stored prefix show their own too.
fn visible(mut key: ApiKey) -> ApiKey {
    key.prefix = format!(
        "{API_KEY_PREFIX}_{}_{}",
        key.organization_id.uuid().simple(),
        key.id.uuid().simple()
    );
    key
}

impl Tenant {
    /// API keys of the organization (company admins).
    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys::new(self)
    }
}

/// The API keys of one organization; company admins only. Reached through
/// [`Tenant::api_keys`].
#[derive(Debug, Clone, Copy)]
pub struct ApiKeys<'t> {
    tenant: &'t Tenant,
}

impl<'t> ApiKeys<'t> {
    pub(crate) fn new(tenant: &'t Tenant) -> Self {
        Self { tenant }
    }

    fn admin(&self) -> Result<OrganizationId> {
        let ctx = self.tenant.context();
        crate::access::roles::require_admin(ctx, "manage API keys")?;
        Ok(ctx.organization_id())
    }

    /// Creates a key; returns it and its secret text, which is never shown again.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for non-admins; [`Error::Validation`] for a bad name or no scope.
    pub async fn create(&self, new: NewApiKey) -> Result<(ApiKey, String)> {
        let org = self.admin()?;
        let mut v = Validator::new();
        v.text("name", &new.name, true, 200);
        v.check(
            !new.scopes.is_empty(),
            "scopes",
            "required",
            "a key needs at least one scope",
        );
        v.finish()?;
        let scopes = ApiKeyScopes::new(new.scopes);
        let id = ApiKeyId::new();
        let (token, hash) = secret::mint(API_KEY_PREFIX, org.uuid(), id.uuid());
        let prefix = format!(
            "{API_KEY_PREFIX}_{}_{}",
            org.uuid().simple(),
            id.uuid().simple()
        );
        let mut q = Sql::new(
            "insert into api_keys (organization_id, id, name, prefix, scopes, secret_hash, created_by, created_at) values (",
        );
        q.bind(org)
            .push(", ")
            .bind(id)
            .push(", ")
            .bind(new.name.trim());
        q.push(", ").bind(prefix).push(", ").bind(scopes.stored());
        q.push(", ").bind(hash);
        q.push(", ")
            .bind(self.tenant.context().actor().id())
            .push(", ")
            .bind(now())
            .push(") returning ")
            .push(COLUMNS);
        let mut s = self.tenant.session().await?;
        let key = s.conn().fetch_one(&q).await?;
        Ok((visible(key), token))
    }

    /// Up to 100 keys (revoked ones too), newest last.
    pub async fn list(&self) -> Result<Vec<ApiKey>> {
        let org = self.admin()?;
        let mut q = Sql::new("select ");
        q.push(COLUMNS)
            .push(" from api_keys where organization_id = ")
            .bind(org)
            .push(" order by id limit 100");
        let mut s = self.tenant.session().await?;
        let keys: Vec<ApiKey> = s.conn().fetch_all(&q).await?;
        Ok(keys.into_iter().map(visible).collect())
    }

    /// Revokes a key (idempotent).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a key of no (or another) organization.
    pub async fn revoke(&self, id: ApiKeyId) -> Result<ApiKey> {
        let org = self.admin()?;
        let mut q = Sql::new("update api_keys set revoked_at = coalesce(revoked_at, ");
        q.bind(now())
            .push(") where organization_id = ")
            .bind(org)
            .push(" and id = ")
            .bind(id)
            .push(" returning ")
            .push(COLUMNS);
        let mut s = self.tenant.session().await?;
        s.conn()
            .fetch_optional(&q)
            .await?
            .map(visible)
            .ok_or(Error::not_found("api key", id))
    }
}
