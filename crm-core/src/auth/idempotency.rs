//! [`Idempotency`]: `Idempotency-Key` records, scoped per caller (a user or an API key of one
//! organization) and expiring.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::context::Actor;
use crate::error::{Error, Result, ResultExt as _};
use crate::storage::Sql;
use crate::tenant::Tenant;
use crate::time::now;

/// A finished response, as stored for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// Its status code.
    pub status: u16,
    /// Its headers worth replaying, as a JSON object text (the HTTP layer chooses which).
    pub headers: String,
    /// Its body.
    pub body: String,
}

/// What [`Idempotency::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is new (or had expired): the caller does the work, then calls
    /// [`Idempotency::complete`] or [`Idempotency::release`].
    Started,
    /// The first request with this key finished: replay its response.
    Replay(StoredResponse),
    /// The first request with this key is still running (whatever this request is).
    InProgress,
    /// The key was used with a different request, which has finished.
    Mismatch,
    /// The first request's response named a record since erased (GDPR): it is not replayed,
    /// and the request is not run again.
    Erased,
}

/// A pending key older than this belongs to a request that died (process crash, dropped
/// connection): the next request with the key takes it over instead of waiting for expiry.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(120);

#[derive(sqlx::FromRow)]
struct Row {
    fingerprint: String,
    status: String,
    response_status: Option<i64>,
    response_headers: Option<String>,
    response_body: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl Tenant {
    /// `Idempotency-Key` records of the organization.
    pub fn idempotency(&self) -> Idempotency<'_> {
        Idempotency::new(self)
    }
}

/// The idempotency keys of one organization. Reached through [`Tenant::idempotency`].
#[derive(Debug, Clone, Copy)]
pub struct Idempotency<'t> {
    tenant: &'t Tenant,
}

impl<'t> Idempotency<'t> {
    pub(crate) fn new(tenant: &'t Tenant) -> Self {
        Self { tenant }
    }

    /// Whose keys these are: the acting user or API key (`user:…`, `key:…`), or `system`.
    fn caller(&self) -> String {
        match self.tenant.context().actor() {
            Actor::User(id) => format!("user:{id}"),
            Actor::ApiKey(id) => format!("key:{id}"),
            Actor::System => "system".to_owned(),
        }
    }

    /// Claims `key` for the request whose fingerprint (a hash of method, path and body) is
    /// `fingerprint`, for `ttl`.
    ///
    /// # Errors
    /// [`Error::Validation`] for an empty key or one over 255 characters.
    pub async fn begin(&self, key: &str, fingerprint: &str, ttl: Duration) -> Result<Begin> {
        if key.is_empty() || key.len() > 255 {
            return Err(Error::invalid(
                "Idempotency-Key",
                "invalid_length",
                "must be 1-255 characters",
            ));
        }
        let org = self.tenant.context().organization_id();
        let caller = self.caller();
        let at = now();
        let ttl =
            TimeDelta::from_std(ttl).map_err(|e| Error::Config(format!("idempotency TTL: {e}")))?;
        let abandoned = TimeDelta::from_std(ABANDONED_AFTER).unwrap_or(TimeDelta::MAX);
        let mut s = self.tenant.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let mut q = Sql::new(
                "select fingerprint, status, response_status, response_headers, response_body, created_at, expires_at from idempotency_keys where organization_id = ",
            );
            q.bind(org).push(" and caller = ").bind(caller.as_str());
            q.push(" and key = ").bind(key);
            let found: Option<Row> = tx.conn().fetch_optional(&q).await?;
            if let Some(row) = found {
                let abandoned = row.status == "pending" && row.created_at + abandoned <= at;
                if row.expires_at > at && !abandoned {
                    // A running first request wins over a mismatch: the client learns to
                    // wait before it learns the key was reused.
                    return Ok(if row.status == "pending" {
                        Begin::InProgress
                    } else if row.status == "erased" {
                        Begin::Erased
                    } else if row.fingerprint != fingerprint {
                        Begin::Mismatch
                    } else {
                        Begin::Replay(StoredResponse {
                            status: u16::try_from(row.response_status.unwrap_or(200)).unwrap_or(200),
                            headers: row.response_headers.unwrap_or_else(|| "{}".into()),
                            body: row.response_body.unwrap_or_default(),
                        })
                    });
                }
                let mut d = Sql::new("delete from idempotency_keys where organization_id = ");
                d.bind(org).push(" and caller = ").bind(caller.as_str());
                d.push(" and key = ").bind(key);
                tx.conn().execute(&d).await?;
            }
            let mut i = Sql::new(
                "insert into idempotency_keys (organization_id, caller, key, fingerprint, status, created_at, expires_at) values (",
            );
            i.bind(org).push(", ").bind(caller.as_str());
            i.push(", ").bind(key).push(", ").bind(fingerprint);
            i.push(", 'pending', ").bind(at).push(", ").bind(at + ttl).push(")");
            // Two first requests racing: the loser sees a unique violation and is "in progress".
            match tx.conn().execute(&i).await.on_unique(String::new) {
                Ok(_) => Ok(Begin::Started),
                Err(Error::Conflict(_)) => Ok(Begin::InProgress),
                Err(e) => Err(e),
            }
        }
        .await;
        tx.settle(out).await
    }

    /// Stores the response of the request that claimed `key`.
    pub async fn complete(&self, key: &str, response: &StoredResponse) -> Result<()> {
        let org = self.tenant.context().organization_id();
        let mut q = Sql::new("update idempotency_keys set status = 'done', response_status = ");
        q.bind(i64::from(response.status))
            .push(", response_headers = ")
            .bind(response.headers.as_str())
            .push(", response_body = ")
            .bind(response.body.as_str())
            .push(" where organization_id = ")
            .bind(org)
            .push(" and caller = ")
            .bind(self.caller())
            .push(" and key = ")
            .bind(key);
        let mut s = self.tenant.session().await?;
        s.conn().execute(&q).await?;
        Ok(())
    }

    /// Forgets `key` (the request failed in a way worth retrying).
    pub async fn release(&self, key: &str) -> Result<()> {
        let org = self.tenant.context().organization_id();
        let mut q = Sql::new("delete from idempotency_keys where organization_id = ");
        q.bind(org).push(" and caller = ").bind(self.caller());
        q.push(" and key = ").bind(key);
        let mut s = self.tenant.session().await?;
        s.conn().execute(&q).await?;
        Ok(())
    }
}
