//! `crm rebuild-match-keys`: computes the duplicate-match keys of records written before the
//! database had them (migration `0014_duplicates_and_merge`); run it once after that upgrade.

use std::process::ExitCode;

use clap::Args;
use crm_core::{Crm, Organization, TenantContext};
use serde::Serialize;

use crate::Output;
use crate::connect::{organization, organizations};

/// Arguments of `crm rebuild-match-keys`.
#[derive(Debug, Args)]
pub(crate) struct RebuildArgs {
    /// Only this organization (slug or id); all organizations when absent.
    #[arg(long)]
    org: Option<String>,
}

#[derive(Debug, Serialize)]
struct Line {
    organization: String,
    /// Records whose keys were recomputed.
    records: u64,
}

pub(crate) async fn run(crm: &Crm, args: RebuildArgs, out: Output) -> anyhow::Result<ExitCode> {
    let orgs: Vec<Organization> = match &args.org {
        Some(key) => vec![organization(crm, key).await?],
        None => organizations(crm, None).await?,
    };
    let mut lines = Vec::with_capacity(orgs.len());
    for org in orgs {
        let t = crm.tenant(&TenantContext::system(org.id));
        let records = t.rebuild_match_keys().await?;
        lines.push(Line {
            organization: org.slug,
            records,
        });
    }
    out.show(&lines, || {
        let records: u64 = lines.iter().map(|l| l.records).sum();
        format!(
            "recomputed the duplicate-match keys of {records} records in {} organizations",
            lines.len()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
