//! `crm purge`: retention for the trash.

use std::process::ExitCode;

use anyhow::bail;
use chrono::{TimeDelta, Utc};
use clap::Args;
use crm_core::{Crm, Organization, PurgeReport, TenantContext};
use serde::Serialize;

use crate::Output;
use crate::connect::{organization, organizations};

/// Arguments of `crm purge`.
#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    /// Retention: records trashed longer ago than this go (`30d`, `12h`, `2w`, `90m`).
    #[arg(long, value_parser = parse_age)]
    older_than: TimeDelta,
    /// Only this organization (slug or id); all organizations when absent.
    #[arg(long)]
    org: Option<String>,
    /// Really delete. Without it the command only reports what it would delete.
    #[arg(long)]
    yes: bool,
}

/// `30d` → 30 days.
fn parse_age(s: &str) -> Result<TimeDelta, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("`{s}`: expected a number and a unit, like 30d"))?;
    let delta = match unit {
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        "w" => TimeDelta::try_weeks(n),
        _ => None,
    };
    delta.ok_or_else(|| format!("`{s}`: the unit is one of m, h, d, w"))
}

#[derive(Debug, Serialize)]
struct Line {
    organization: String,
    entity: &'static str,
    #[serde(flatten)]
    report: PurgeReport,
}

pub(crate) async fn run(crm: &Crm, args: PurgeArgs, out: Output) -> anyhow::Result<ExitCode> {
    let Some(cutoff) = Utc::now().checked_sub_signed(args.older_than) else {
        bail!("the retention period is too long");
    };
    let orgs: Vec<Organization> = match &args.org {
        Some(key) => vec![organization(crm, key).await?],
        None => organizations(crm, None).await?,
    };
    let dry_run = !args.yes;
    let mut lines = Vec::new();
    for org in &orgs {
        let t = crm.tenant(&TenantContext::system(org.id));
        for (kind, report) in t.purge_trash(cutoff, dry_run).await? {
            if report.purged > 0 || report.kept_linked > 0 {
                lines.push(Line {
                    organization: org.slug.clone(),
                    entity: kind.name(),
                    report,
                });
            }
        }
    }
    out.show(&lines, || {
        let verb = if dry_run { "would purge" } else { "purged" };
        let mut text: Vec<String> = lines
            .iter()
            .map(|l| {
                format!(
                    "{}: {verb} {} {} ({} kept: still linked)",
                    l.organization, l.report.purged, l.entity, l.report.kept_linked
                )
            })
            .collect();
        let total: u64 = lines.iter().map(|l| l.report.purged).sum();
        text.push(format!(
            "{verb} {total} records trashed before {}",
            cutoff.to_rfc3339()
        ));
        if dry_run {
            text.push("dry run: nothing was deleted; run again with --yes to delete".into());
        }
        text.join("\n")
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Ok(TimeDelta::days(30)));
        assert_eq!(parse_age("2w"), Ok(TimeDelta::weeks(2)));
        assert!(parse_age("30").is_err() && parse_age("d").is_err() && parse_age("3y").is_err());
    }
}
