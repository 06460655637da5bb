//! `crm org`: organizations.

use std::process::ExitCode;

use clap::Subcommand;
use crm_core::{Crm, NewOrganization, Organization, OrganizationStatus};

use crate::Output;
use crate::connect::{organization, organizations};

/// Organization commands.
#[derive(Debug, Subcommand)]
pub(crate) enum OrgCommand {
    /// Create an organization (with its default sales pipeline).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Short URL-safe name; derived from the name when absent.
        #[arg(long)]
        slug: Option<String>,
    },
    /// List organizations.
    List {
        /// How many (at most 100 per page; all when absent).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Suspend an organization: its users are refused, its data kept.
    Suspend {
        /// Slug or id.
        org: String,
    },
    /// Set how many days the organization keeps trashed records before the daily purge job
    /// removes them for good (default 30).
    SetRetention {
        /// Slug or id.
        org: String,
        /// Days, 1 to 36500.
        #[arg(long)]
        days: u32,
    },
    /// Resume a suspended organization.
    Resume {
        /// Slug or id.
        org: String,
    },
}

fn line(o: &Organization) -> String {
    format!("{}  {:<24} {:<10} {}", o.id, o.slug, o.status, o.name)
}

pub(crate) async fn run(crm: &Crm, cmd: OrgCommand, out: Output) -> anyhow::Result<ExitCode> {
    match cmd {
        OrgCommand::Create { name, slug } => {
            let org = crm
                .organizations()
                .create(NewOrganization { name, slug })
                .await?;
            out.show(&org, || format!("created {}", line(&org)))?;
        }
        OrgCommand::List { limit } => {
            let all = organizations(crm, limit).await?;
            out.show(&all, || all.iter().map(line).collect::<Vec<_>>().join("\n"))?;
        }
        OrgCommand::Suspend { org } => {
            let id = organization(crm, &org).await?.id;
            let org = crm
                .organizations()
                .set_status(id, OrganizationStatus::Suspended)
                .await?;
            out.show(&org, || format!("suspended {}", line(&org)))?;
        }
        OrgCommand::SetRetention { org, days } => {
            let id = organization(crm, &org).await?.id;
            let org = crm.organizations().set_trash_retention(id, days).await?;
            out.show(&org, || {
                format!(
                    "{} keeps trashed records {} days",
                    org.slug, org.trash_retention_days
                )
            })?;
        }
        OrgCommand::Resume { org } => {
            let id = organization(crm, &org).await?.id;
            let org = crm
                .organizations()
                .set_status(id, OrganizationStatus::Active)
                .await?;
            out.show(&org, || format!("resumed {}", line(&org)))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
