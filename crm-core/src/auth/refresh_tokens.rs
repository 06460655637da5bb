//! [`Auth`]: principals, rotating refresh tokens and API-key verification.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::secret;
use crate::context::TenantContext;
use crate::crm::Crm;
use crate::error::{Error, Result};
use crate::organizations::OrganizationId;
use crate::storage::{Conn, Sql};
use crate::time::now;
use crate::users::Role;
use crate::users::UserId;

/// The prefix of refresh tokens.
const REFRESH_PREFIX: &str = "crm_rt";
/// The prefix of API keys.
pub(crate) const API_KEY_PREFIX: &str = "crm_key";

/// A user as they are *now*: still active, in an active organization, with their current role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// Their organization.
    pub organization_id: OrganizationId,
    /// The user.
    pub user_id: UserId,
    /// Their current role (a token's role claim may be older).
    pub role: Role,
    /// Their password was set by someone else and must be changed before anything else
    /// ([`crate::User::must_change_password`]).
    pub must_change_password: bool,
}

impl Principal {
    /// The context requests of this principal run with.
    pub fn context(&self) -> TenantContext {
        TenantContext::user(self.organization_id, self.user_id, self.role)
    }
}

/// A refresh token just issued: the only time its text exists outside the client.
#[derive(Debug, Clone)]
pub struct IssuedRefreshToken {
    /// The token to hand to the client.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Authentication calls that start from a credential. Reached through [`Crm::auth`].
#[derive(Debug, Clone, Copy)]
pub struct Auth<'c> {
    crm: &'c Crm,
}

#[derive(sqlx::FromRow)]
struct PrincipalRow {
    role: String,
    is_active: bool,
    must_change_password: bool,
    status: String,
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    family_id: Uuid,
    user_id: Uuid,
    secret_hash: String,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    secret_hash: String,
    scopes: String,
    revoked_at: Option<DateTime<Utc>>,
    status: String,
}

impl<'c> Auth<'c> {
    pub(crate) fn new(crm: &'c Crm) -> Self {
        Self { crm }
    }

    /// The user `user` of `org` as they are now, in one query.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] when the user does not exist (in that organization), is
    /// deactivated, or the organization is suspended.
    pub async fn principal(&self, org: OrganizationId, user: UserId) -> Result<Principal> {
        let mut s = self.crm.pool().tenant(org).await?;
        principal(&mut s.conn(), org, user).await
    }

    /// Starts a new refresh-token family for `principal` (at sign-in).
    pub async fn issue_refresh_token(
        &self,
        principal: &Principal,
        ttl: Duration,
    ) -> Result<IssuedRefreshToken> {
        let mut s = self.crm.pool().tenant(principal.organization_id).await?;
        insert_refresh(
            &mut s.conn(),
            principal.organization_id,
            principal.user_id,
            Uuid::now_v7(),
            ttl,
        )
        .await
    }

    /// Uses `token` and issues its successor in the same family.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for an unknown, expired, used or revoked token, or when the
    /// user may no longer sign in. Presenting a token that was already used or revoked revokes
    /// every token of its family: a stolen token stops working for the thief and the owner alike.
    pub async fn rotate_refresh_token(
        &self,
        token: &str,
        ttl: Duration,
    ) -> Result<(Principal, IssuedRefreshToken)> {
        self.rotate_refresh_token_within(token, ttl, Duration::MAX)
            .await
    }

    /// Like [`Auth::rotate_refresh_token`], within an absolute lifetime of the family: however
    /// often it is rotated, no token of a family outlives `family_lifetime` after the sign-in
    /// that started it (the successor's expiry is cut to it), so a stolen token that is kept
    /// fresh still dies.
    ///
    /// # Errors
    /// As [`Auth::rotate_refresh_token`]; also [`Error::Unauthenticated`] once the family is
    /// older than `family_lifetime`.
    pub async fn rotate_refresh_token_within(
        &self,
        token: &str,
        ttl: Duration,
        family_lifetime: Duration,
    ) -> Result<(Principal, IssuedRefreshToken)> {
        let parsed = secret::parse(REFRESH_PREFIX, token).ok_or(Error::Unauthenticated)?;
        let org = OrganizationId::from_uuid(parsed.organization);
        let mut s = self.crm.pool().tenant(org).await?;
        let mut tx = s.begin().await?;
        let mut q = select_refresh(org, parsed.id);
        q.push(tx.conn().backend().lock_rows());
        let out = async {
            let row: Option<RefreshRow> = tx.conn().fetch_optional(&q).await?;
            let Some(row) = row.filter(|r| secret::same(&secret::hash(parsed.secret), &r.secret_hash))
            else {
                return Ok(Err(Error::Unauthenticated));
            };
            if row.used_at.is_some() || row.revoked_at.is_some() {
                tracing::warn!(org = %org, family = %row.family_id, "refresh token reused: revoking its family");
                revoke_family(&mut tx.conn(), org, row.family_id).await?;
                return Ok(Err(Error::Unauthenticated));
            }
            // A family's id is a UUIDv7 minted at the sign-in that started it: its time is the
            // family's birth.
            let left = family_age(row.family_id)
                .and_then(|age| family_lifetime.checked_sub(age))
                .unwrap_or(Duration::ZERO);
            if row.expires_at <= now() || left.is_zero() {
                return Ok(Err(Error::Unauthenticated));
            }
            let ttl = ttl.min(left);
            let user = UserId::from_uuid(row.user_id);
            let principal = match principal(&mut tx.conn(), org, user).await {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
            let mut used = Sql::new("update refresh_tokens set used_at = ");
            used.bind(now())
                .push(" where organization_id = ")
                .bind(org)
                .push(" and id = ")
                .bind(parsed.id);
            tx.conn().execute(&used).await?;
            let next = insert_refresh(&mut tx.conn(), org, user, row.family_id, ttl).await?;
            Ok(Ok((principal, next)))
        }
        .await;
        // A reuse revokes the family *and* fails the call: commit the revocation, then fail.
        tx.settle(out).await?
    }

    /// The family of refresh token `token` if it is a live token of user `user` (the session a
    /// password change comes from, which keeps its family); `None` otherwise.
    pub async fn refresh_family(&self, token: &str, user: UserId) -> Result<Option<Uuid>> {
        let Some(parsed) = secret::parse(REFRESH_PREFIX, token) else {
            return Ok(None);
        };
        let org = OrganizationId::from_uuid(parsed.organization);
        let mut s = self.crm.pool().tenant(org).await?;
        let row: Option<RefreshRow> = s
            .conn()
            .fetch_optional(&select_refresh(org, parsed.id))
            .await?;
        Ok(row
            .filter(|r| secret::same(&secret::hash(parsed.secret), &r.secret_hash))
            .filter(|r| r.user_id == user.uuid() && r.revoked_at.is_none())
            .map(|r| r.family_id))
    }

    /// Revokes the family of `token` (sign-out). Unknown tokens are ignored: signing out twice
    /// is not an error.
    pub async fn revoke_refresh_token(&self, token: &str) -> Result<()> {
        let Some(parsed) = secret::parse(REFRESH_PREFIX, token) else {
            return Ok(());
        };
        let org = OrganizationId::from_uuid(parsed.organization);
        let mut s = self.crm.pool().tenant(org).await?;
        let q = select_refresh(org, parsed.id);
        let row: Option<RefreshRow> = s.conn().fetch_optional(&q).await?;
        if let Some(row) =
            row.filter(|r| secret::same(&secret::hash(parsed.secret), &r.secret_hash))
        {
            revoke_family(&mut s.conn(), org, row.family_id).await?;
        }
        Ok(())
    }

    /// The context and scopes of the API key `key`, in one query.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for an unknown or revoked key, or a suspended organization.
    pub async fn verify_api_key(&self, key: &str) -> Result<super::ApiKeyAccess> {
        let parsed = secret::parse(API_KEY_PREFIX, key).ok_or(Error::Unauthenticated)?;
        let org = OrganizationId::from_uuid(parsed.organization);
        let mut q = Sql::new(
            "select k.secret_hash, k.scopes, k.revoked_at, o.status from api_keys k join organizations o on o.id = k.organization_id where k.organization_id = ",
        );
        q.bind(org).push(" and k.id = ").bind(parsed.id);
        let mut s = self.crm.pool().tenant(org).await?;
        let row: Option<KeyRow> = s.conn().fetch_optional(&q).await?;
        match row {
            Some(r)
                if secret::same(&secret::hash(parsed.secret), &r.secret_hash)
                    && r.revoked_at.is_none()
                    && r.status == "active" =>
            {
                Ok(super::ApiKeyAccess {
                    context: TenantContext::api_key(org, parsed.id),
                    scopes: r.scopes.into(),
                })
            }
            _ => Err(Error::Unauthenticated),
        }
    }
}

impl Crm {
    /// Authentication calls that start from a credential (tokens, API keys).
    pub fn auth(&self) -> Auth<'_> {
        Auth::new(self)
    }
}

/// How long ago the family `family` (a UUIDv7) started; `None` for an id that carries no time.
fn family_age(family: Uuid) -> Option<Duration> {
    let (secs, nanos) = family.get_timestamp()?.to_unix();
    let born = std::time::UNIX_EPOCH + Duration::new(secs, nanos);
    Some(
        std::time::SystemTime::now()
            .duration_since(born)
            .unwrap_or_default(),
    )
}

/// The refresh token `id` of `org`.
fn select_refresh(org: OrganizationId, id: Uuid) -> Sql {
    let mut q = Sql::new(
        "select family_id, user_id, secret_hash, expires_at, used_at, revoked_at from refresh_tokens where organization_id = ",
    );
    q.bind(org).push(" and id = ").bind(id);
    q
}

async fn principal(conn: &mut Conn<'_>, org: OrganizationId, user: UserId) -> Result<Principal> {
    let mut q = Sql::new(
        "select u.role, u.is_active, u.must_change_password, o.status from users u join organizations o on o.id = u.organization_id where u.organization_id = ",
    );
    q.bind(org).push(" and u.id = ").bind(user);
    let row: Option<PrincipalRow> = conn.fetch_optional(&q).await?;
    match row {
        Some(r) if r.is_active && r.status == "active" => Ok(Principal {
            organization_id: org,
            user_id: user,
            role: r.role.parse()?,
            must_change_password: r.must_change_password,
        }),
        _ => Err(Error::Unauthenticated),
    }
}

async fn insert_refresh(
    conn: &mut Conn<'_>,
    org: OrganizationId,
    user: UserId,
    family: Uuid,
    ttl: Duration,
) -> Result<IssuedRefreshToken> {
    let id = Uuid::now_v7();
    let (token, hash) = secret::mint(REFRESH_PREFIX, org.uuid(), id);
    let at = now();
    let ttl = TimeDelta::from_std(ttl).map_err(|e| Error::Config(format!("refresh TTL: {e}")))?;
    let expires_at = at + ttl;
    let mut q = Sql::new(
        "insert into refresh_tokens (organization_id, id, family_id, user_id, secret_hash, created_at, expires_at) values (",
    );
    q.bind(org).push(", ").bind(id).push(", ").bind(family);
    q.push(", ").bind(user).push(", ").bind(hash);
    q.push(", ").bind(at).push(", ").bind(expires_at).push(")");
    conn.execute(&q).await?;
    Ok(IssuedRefreshToken { token, expires_at })
}

async fn revoke_family(conn: &mut Conn<'_>, org: OrganizationId, family: Uuid) -> Result<()> {
    let mut q = Sql::new("update refresh_tokens set revoked_at = ");
    q.bind(now())
        .push(" where organization_id = ")
        .bind(org)
        .push(" and family_id = ")
        .bind(family)
        .push(" and revoked_at is null");
    conn.execute(&q).await?;
    Ok(())
}
