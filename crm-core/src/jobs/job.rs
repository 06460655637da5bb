//! What a job is, and what running one does.

use chrono::{Duration as TimeDelta, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::context::TenantContext;
use crate::crm::Crm;
use crate::error::{Error, Result};
use crate::organizations::OrganizationId;

/// A unit of background work, stored as JSON (`{"kind": "purge_trash", …}`) by the job
/// library. Each job concerns one organization, so that one tenant's failure retries alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Marks the organization's invoices past due on `date` as overdue
    /// (`mark_overdue` of invoices); planned daily, for the UTC date.
    MarkOverdueInvoices {
        /// The organization.
        organization_id: OrganizationId,
        /// The day the invoices are judged on.
        date: NaiveDate,
    },
    /// Permanently removes what the organization trashed longer ago than its trash retention
    /// ([`crate::Organization::trash_retention_days`], 30 days by default), referrers first;
    /// records still linked stay.
    PurgeTrash {
        /// The organization.
        organization_id: OrganizationId,
    },
    /// Deletes the organization's expired `Idempotency-Key` records and refresh tokens, and
    /// its webhook delivery log older than 30 days.
    SweepExpired {
        /// The organization.
        organization_id: OrganizationId,
    },
}

impl Job {
    /// The job's kind as stored (`purge_trash`…).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MarkOverdueInvoices { .. } => "mark_overdue_invoices",
            Self::PurgeTrash { .. } => "purge_trash",
            Self::SweepExpired { .. } => "sweep_expired",
        }
    }

    /// The organization it concerns.
    pub fn organization_id(&self) -> OrganizationId {
        match self {
            Self::MarkOverdueInvoices {
                organization_id, ..
            }
            | Self::PurgeTrash { organization_id }
            | Self::SweepExpired { organization_id } => *organization_id,
        }
    }

    /// Runs the job. `trash_retention`, when given, replaces the organization's own retention
    /// (for tests and one-off runs).
    ///
    /// # Errors
    /// What the underlying service answers; [`Error::NotFound`] for an organization that does
    /// not exist (any more).
    pub async fn run(&self, crm: &Crm, trash_retention: Option<TimeDelta>) -> Result<()> {
        let org = self.organization_id();
        // An organization deleted since the job was planned: nothing to do, and no tenant to
        // bind, so the job fails (and ends dead after its retries) rather than pretending.
        let organization = crm.organizations().get(org).await?;
        let t = crm.tenant(&TenantContext::system(org));
        match self {
            Self::MarkOverdueInvoices { date, .. } => {
                let n = t.invoices().mark_overdue(*date).await?;
                tracing::info!(org = %org, invoices = n, "invoices marked overdue");
            }
            Self::PurgeTrash { .. } => {
                let keep = trash_retention.unwrap_or_else(|| {
                    TimeDelta::days(i64::from(organization.trash_retention_days))
                });
                let cutoff = Utc::now()
                    .checked_sub_signed(keep)
                    .ok_or_else(|| Error::Config("the trash retention is too long".into()))?;
                let purged = t.purge_trash(cutoff, false).await?;
                let n: u64 = purged.iter().map(|(_, r)| r.purged).sum();
                tracing::info!(org = %org, purged = n, "trash purged");
            }
            Self::SweepExpired { .. } => {
                let report = t.sweep_expired().await?;
                tracing::info!(
                    org = %org,
                    idempotency_keys = report.idempotency_keys,
                    refresh_tokens = report.refresh_tokens,
                    webhook_deliveries = report.webhook_deliveries,
                    "expired credentials swept"
                );
            }
        }
        Ok(())
    }

    /// The jobs planned for `org` on the UTC day `date`, with the key that makes each unique
    /// per day (however many workers plan it).
    pub(crate) fn daily(org: OrganizationId, date: NaiveDate) -> [(Job, String); 3] {
        let key = |kind: &str| format!("{kind}:{org}:{date}");
        [
            (
                Self::MarkOverdueInvoices {
                    organization_id: org,
                    date,
                },
                key("mark_overdue_invoices"),
            ),
            (
                Self::PurgeTrash {
                    organization_id: org,
                },
                key("purge_trash"),
            ),
            (
                Self::SweepExpired {
                    organization_id: org,
                },
                key("sweep_expired"),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_stored_as_tagged_json() {
        let org = OrganizationId::new();
        let job = Job::MarkOverdueInvoices {
            organization_id: org,
            date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["kind"], "mark_overdue_invoices");
        assert_eq!(json["date"], "2026-11-30");
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), job);
        let keys: Vec<_> = Job::daily(org, NaiveDate::from_ymd_opt(2026, 11, 30).unwrap())
            .into_iter()
            .map(|(j, k)| {
                assert!(k.starts_with(j.kind()));
                k
            })
            .collect();
        assert_eq!(keys[1], format!("purge_trash:{org}:2026-11-30"));
    }
}
