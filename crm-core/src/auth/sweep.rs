//! Deleting what has expired: `Idempotency-Key` records past their TTL, refresh tokens past
//! their expiry, and finished webhook deliveries older than
//! [`DELIVERY_LOG_RETENTION`](crate::DELIVERY_LOG_RETENTION). The daily `sweep_expired` job runs
//! it (and `crm sweep`).

use serde::Serialize;

use crate::error::Result;
use crate::storage::Sql;
use crate::tenant::Tenant;
use crate::time::now;

/// What [`Tenant::sweep_expired`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Expired `Idempotency-Key` records.
    pub idempotency_keys: u64,
    /// Expired refresh tokens (used, revoked or not: past expiry none is of any use).
    pub refresh_tokens: u64,
    /// Delivered or failed webhook deliveries older than the delivery log keeps.
    pub webhook_deliveries: u64,
}

impl Tenant {
    /// Deletes the organization's expired `Idempotency-Key` records and refresh tokens, and the
    /// finished webhook deliveries older than [`crate::DELIVERY_LOG_RETENTION`] (pending ones
    /// stay, however old).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use crm_core::{Crm, NewOrganization, TenantContext};
    /// # let crm = Crm::connect("sqlite::memory:").await?;
    /// # let org = crm.organizations().create(NewOrganization { name: "Acme".into(), ..Default::default() }).await?;
    /// let report = crm.tenant(&TenantContext::system(org.id)).sweep_expired().await?;
    /// assert_eq!(report.idempotency_keys, 0);
    /// # Ok::<_, crm_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn sweep_expired(&self) -> Result<SweepReport> {
        let at = now();
        let mut s = self.session().await?;
        let mut tx = s.begin().await?;
        let out = async {
            let mut report = SweepReport::default();
            for (table, count) in [
                ("idempotency_keys", &mut report.idempotency_keys),
                ("refresh_tokens", &mut report.refresh_tokens),
            ] {
                let mut q = Sql::new("delete from ");
                q.push(table)
                    .push(" where organization_id = ")
                    .bind(self.context().organization_id())
                    .push(" and expires_at <= ")
                    .bind(at);
                *count = tx.conn().execute(&q).await?;
            }
            let mut q = Sql::new("delete from webhook_deliveries where organization_id = ");
            q.bind(self.context().organization_id())
                .push(" and status <> 'pending' and created_at <= ")
                .bind(at - crate::DELIVERY_LOG_RETENTION);
            report.webhook_deliveries = tx.conn().execute(&q).await?;
            Ok(report)
        }
        .await;
        tx.settle(out).await
    }
}
