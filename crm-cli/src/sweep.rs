//! `crm sweep`: deletes expired `Idempotency-Key` records and refresh tokens (the worker's daily
//! `sweep_expired` job does the same; this runs it by hand), and with `--keep-changes-days` the
//! change-feed commits older than that (the event log's too).

use std::process::ExitCode;

use clap::Args;
use crm_core::auth::SweepReport;
use crm_core::{Crm, Organization, TenantContext};
use serde::Serialize;

use crate::Output;
use crate::connect::{organization, organizations};

/// Arguments of `crm sweep`.
#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// Only this organization (slug or id); all organizations when absent.
    #[arg(long)]
    org: Option<String>,
    /// Also delete the change-feed commits (and their events: audit trail and field history)
    /// older than this many days; feed readers behind them get 410 `cursor_expired`. Kept
    /// forever when absent.
    #[arg(long, value_name = "DAYS")]
    keep_changes_days: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Line {
    organization: String,
    #[serde(flatten)]
    report: SweepReport,
    /// Events the feed retention deleted (with `--keep-changes-days`).
    #[serde(skip_serializing_if = "Option::is_none")]
    changes_expired: Option<u64>,
}

pub(crate) async fn run(crm: &Crm, args: SweepArgs, out: Output) -> anyhow::Result<ExitCode> {
    let orgs: Vec<Organization> = match &args.org {
        Some(key) => vec![organization(crm, key).await?],
        None => organizations(crm, None).await?,
    };
    let mut lines = Vec::with_capacity(orgs.len());
    let horizon = args
        .keep_changes_days
        .map(|days| chrono::Utc::now() - chrono::TimeDelta::days(i64::from(days)));
    for org in orgs {
        let t = crm.tenant(&TenantContext::system(org.id));
        let report = t.sweep_expired().await?;
        let changes_expired = match horizon {
            Some(before) => Some(t.changes().expire_before(before).await?.events),
            None => None,
        };
        lines.push(Line {
            organization: org.slug,
            report,
            changes_expired,
        });
    }
    out.show(&lines, || {
        let keys: u64 = lines.iter().map(|l| l.report.idempotency_keys).sum();
        let tokens: u64 = lines.iter().map(|l| l.report.refresh_tokens).sum();
        let deliveries: u64 = lines.iter().map(|l| l.report.webhook_deliveries).sum();
        let changes: u64 = lines.iter().filter_map(|l| l.changes_expired).sum();
        let feed = match args.keep_changes_days {
            Some(days) => format!(", and {changes} change-feed events older than {days} days"),
            None => String::new(),
        };
        format!(
            "deleted {keys} expired idempotency keys, {tokens} expired refresh tokens, {deliveries} webhook deliveries older than 30 days{feed} in {} organizations",
            lines.len()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
