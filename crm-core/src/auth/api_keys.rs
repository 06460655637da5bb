//! [`ApiKeys`]: machine credentials of one organization, stored hashed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::refresh_tokens::API_KEY_PREFIX;
use super::secret;
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
    /// The start of the key, to tell keys apart (not secret).
    pub prefix: String,
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
}

const COLUMNS: &str = "id, organization_id, name, prefix, created_by, created_at, revoked_at";

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
        if !ctx.role().is_admin() {
            return Err(Error::forbidden(
                "admin_only",
                "only company admins may manage API keys",
            ));
        }
        Ok(ctx.organization_id())
    }

    /// Creates a key; returns it and its secret text, which is never shown again.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for non-admins; [`Error::Validation`] for a bad name.
    pub async fn create(&self, new: NewApiKey) -> Result<(ApiKey, String)> {
        let org = self.admin()?;
        let mut v = Validator::new();
        v.text("name", &new.name, true, 200);
        v.finish()?;
        let id = ApiKeyId::new();
        let (token, hash) = secret::mint(API_KEY_PREFIX, org.uuid(), id.uuid());
        let prefix: String = token.chars().take(API_KEY_PREFIX.len() + 9).collect();
        let mut q = Sql::new(
            "insert into api_keys (organization_id, id, name, prefix, secret_hash, created_by, created_at) values (",
        );
        q.bind(org)
            .push(", ")
            .bind(id)
            .push(", ")
            .bind(new.name.trim());
        q.push(", ").bind(prefix).push(", ").bind(hash);
        q.push(", ")
            .bind(self.tenant.context().actor().id())
            .push(", ")
            .bind(now())
            .push(") returning ")
            .push(COLUMNS);
        let mut s = self.tenant.session().await?;
        let key = s.conn().fetch_one(&q).await?;
        Ok((key, token))
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
        s.conn().fetch_all(&q).await
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
            .ok_or(Error::not_found("api key", id))
    }
}
