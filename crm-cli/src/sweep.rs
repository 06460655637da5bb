//! `crm sweep`: deletes expired `Idempotency-Key` records and refresh tokens (run it daily).

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
}

#[derive(Debug, Serialize)]
struct Line {
    organization: String,
    #[serde(flatten)]
    report: SweepReport,
}

pub(crate) async fn run(crm: &Crm, args: SweepArgs, out: Output) -> anyhow::Result<ExitCode> {
    let orgs: Vec<Organization> = match &args.org {
        Some(key) => vec![organization(crm, key).await?],
        None => organizations(crm, None).await?,
    };
    let mut lines = Vec::with_capacity(orgs.len());
    for org in orgs {
        let report = crm
            .tenant(&TenantContext::system(org.id))
            .sweep_expired()
            .await?;
        lines.push(Line {
            organization: org.slug,
            report,
        });
    }
    out.show(&lines, || {
        let keys: u64 = lines.iter().map(|l| l.report.idempotency_keys).sum();
        let tokens: u64 = lines.iter().map(|l| l.report.refresh_tokens).sum();
        format!(
            "deleted {keys} expired idempotency keys and {tokens} expired refresh tokens in {} organizations",
            lines.len()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
