//! [`Tenant`]: the services of one organization, bound to one [`TenantContext`].

use crate::access::grants::Grants;
use crate::context::TenantContext;
use crate::crm::Crm;
use crate::error::Result;
use std::future::Future;
use std::sync::Arc;

use crate::storage::{SessionRef, Unit};

/// How many more times a call that lost a race with concurrent writers is run
/// ([`Tenant::retrying`]).
pub(crate) const CONTENDED_RETRIES: u32 = 5;

/// The pause before the `retry`-th run of a call that lost a race: a random time between 1 ms
/// and a ceiling of 20 ms that doubles with each retry (full jitter), so that at most 0.62 s is
/// spent waiting in all.
fn contended_pause(retry: u32) -> std::time::Duration {
    let ceiling_ms = 10u64 << retry.min(5);
    std::time::Duration::from_micros(rand::random_range(1_000..=ceiling_ms * 1_000))
}

/// The services of one organization, acting as one actor. Made by [`Crm::tenant`]; cheap to
/// make and to clone. Each service module adds its accessor (`accounts()`, `users()`,
/// `pipelines()`…) in its own file.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use crm_core::{Crm, ListQuery, NewContact, NewOrganization, Op, TenantContext};
/// # let crm = Crm::connect("sqlite::memory:").await?;
/// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
/// let t = crm.tenant(&TenantContext::system(org.id));
/// t.contacts().create(NewContact { email: Some("ada@example.com".into()), ..Default::default() }).await?;
/// let page = t.contacts().list(&ListQuery::default().filter("email", Op::Eq, "ada@example.com")).await?;
/// assert_eq!(page.data.len(), 1);
/// # Ok::<_, crm_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Tenant {
    crm: Crm,
    ctx: TenantContext,
    /// The unit of work this handle belongs to ([`Tenant::transaction`]), if any.
    unit: Option<Arc<Unit>>,
    /// Grants given by the library for one task (a web form's lead), instead of the caller's
    /// own ([`Tenant::grants`]).
    grants: Option<Arc<Grants>>,
}

impl Crm {
    /// The services of one tenant. Every read and write through the returned handle is confined
    /// to `ctx`'s organization and attributed to its actor.
    pub fn tenant(&self, ctx: &TenantContext) -> Tenant {
        Tenant {
            crm: self.clone(),
            ctx: *ctx,
            unit: None,
            grants: None,
        }
    }
}

impl Tenant {
    /// The context every call of this handle runs with.
    pub fn context(&self) -> &TenantContext {
        &self.ctx
    }

    pub(crate) fn crm(&self) -> &Crm {
        &self.crm
    }

    /// This handle acting with `grants` instead of the caller's own, for a task the library
    /// allows whatever the caller's reach (a web form creating its lead).
    pub(crate) fn acting_with(&self, grants: Arc<Grants>) -> Tenant {
        Tenant {
            grants: Some(grants),
            ..self.clone()
        }
    }

    /// The grants [`Tenant::acting_with`] gave, if any.
    pub(crate) fn given_grants(&self) -> Option<&Arc<Grants>> {
        self.grants.as_ref()
    }

    /// The connection a call runs on: a pooled one bound to this tenant, or the unit of work's.
    pub(crate) async fn session(&self) -> Result<SessionRef> {
        match &self.unit {
            None => Ok(SessionRef::Own(
                self.crm.pool().tenant(self.ctx.organization_id()).await?,
            )),
            Some(unit) => Ok(SessionRef::Unit(unit.lock().await?)),
        }
    }

    /// The connection a read runs on for a caller with `grants`: as [`Tenant::session`], and on
    /// PostgreSQL bound to a restricted caller's reach, so that row-level security lets through
    /// only what the library's own conditions select.
    pub(crate) async fn reading(&self, grants: &Grants) -> Result<SessionRef> {
        match &self.unit {
            None => Ok(SessionRef::Own(
                self.crm
                    .pool()
                    .tenant_reading(self.ctx.organization_id(), grants.read_binding())
                    .await?,
            )),
            Some(unit) => Ok(SessionRef::Unit(unit.lock().await?)),
        }
    }

    /// Runs `attempt`, one whole transaction of a call (it takes its connection, begins,
    /// writes and settles), and runs it again when it lost a race with concurrent writers
    /// ([`crate::Error::is_contention`]: a deadlock, a serialization failure, SQLite busy), which
    /// undid it as a whole: up to [`CONTENDED_RETRIES`] more times, after a short pause with
    /// jitter so that the writers that collided do not collide again. Past that, the error is
    /// answered ([`crate::Error::Unavailable`], HTTP 503).
    ///
    /// Inside a unit of work ([`Tenant::transaction`]) the call runs once: its savepoint is
    /// undone, and the unit's owner, who knows what else the unit did, decides.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if self.unit.is_some() {
            return attempt().await;
        }
        let mut retries = 0;
        loop {
            match attempt().await {
                Err(e) if e.is_contention() && retries < CONTENDED_RETRIES => {
                    retries += 1;
                    tracing::debug!(error = %e, retries, "lost a race with another writer; writing again");
                    tokio::time::sleep(contended_pause(retries)).await;
                }
                out => return out,
            }
        }
    }

    /// Runs `work` as one unit of work: every call it makes through the [`Tenant`] it is given
    /// (a handle with the same typed services: `t.accounts()`, `t.contacts()`,
    /// `t.idempotency()`…) shares one transaction, committed when `work` returns `Ok` and rolled back when it returns an error
    /// (or is cancelled). Each call inside runs in a savepoint, so a call that fails undoes only
    /// itself and `work` may go on (or return the error to undo everything).
    ///
    /// Called on a handle that already belongs to a unit, `work` runs in a savepoint of it.
    /// Calls of one unit run one at a time on its connection; a handle kept after the unit ended
    /// answers [`crate::Error::Conflict`]. Calls through any other handle (`self`, too) run
    /// outside the unit, on connections of their own.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Crm, NewAccount, NewContact, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let t = crm.tenant(&TenantContext::system(org.id));
    /// let (account, contact) = t
    ///     .transaction(|t| async move {
    ///         let account = t.accounts().create(NewAccount { name: "Globex".into(), ..Default::default() }).await?;
    ///         let contact = t.contacts().create(NewContact {
    ///             last_name: Some("Lovelace".into()),
    ///             account_id: Some(account.id),
    ///             ..Default::default()
    ///         }).await?;
    ///         Ok((account, contact))
    ///     })
    ///     .await?;
    /// assert_eq!(contact.account_id, Some(account.id));
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn transaction<T, F, Fut>(&self, work: F) -> Result<T>
    where
        F: FnOnce(Tenant) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if let Some(unit) = &self.unit {
            // Nested: a savepoint of the unit, held across the calls `work` makes.
            unit.open_savepoint().await?;
            let out = work(self.clone()).await;
            return unit.close_savepoint(out.is_ok()).await.and(out);
        }
        let session = self.crm.pool().tenant(self.ctx.organization_id()).await?;
        let unit = Arc::new(Unit::begin(session).await?);
        let handle = Tenant {
            crm: self.crm.clone(),
            ctx: self.ctx,
            unit: Some(unit.clone()),
            grants: self.grants.clone(),
        };
        let out = work(handle).await;
        match out {
            Ok(value) => unit.end(true).await.map(|()| value),
            Err(e) => {
                // The work's error is the one to report.
                let _ = unit.end(false).await;
                Err(e)
            }
        }
    }
}
