//! `crm team` and `crm access`: the teams of an organization, and its permission sets (as the
//! system, like every operator command).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use crm_core::access::{NewPermissionSet, NewTeam, PermissionSet, PermissionSetId, Team, TeamId};
use crm_core::{Crm, UserId};

use crate::Output;
use crate::connect::system;

/// Team commands.
#[derive(Debug, Subcommand)]
pub(crate) enum TeamCommand {
    /// List an organization's teams.
    List {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
    },
    /// Create a team.
    Create {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// Its name (unique in the organization, ignoring case).
        #[arg(long)]
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Its manager's user id.
        #[arg(long)]
        manager: Option<UserId>,
    },
    /// Delete a team, its memberships and the shares granted to it.
    Delete {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// The team's id.
        id: TeamId,
    },
    /// Add a user to a team.
    AddMember(Membership),
    /// Take a user out of a team.
    RemoveMember(Membership),
}

/// One user in one team.
#[derive(Debug, Args)]
pub(crate) struct Membership {
    /// Organization slug or id.
    #[arg(long)]
    org: String,
    /// The team's id.
    #[arg(long)]
    team: TeamId,
    /// The user's id.
    #[arg(long)]
    user: UserId,
}

/// Permission set commands.
#[derive(Debug, Subcommand)]
pub(crate) enum AccessCommand {
    /// List an organization's permission sets.
    SetList {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
    },
    /// Create a permission set from a JSON file: `{"name": …, "description": …, "entities":
    /// {"contacts": {"read": "team", "write": "own", "delete": "none"}}, "fields": {…}}`.
    SetCreate {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// The JSON file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Give a user a permission set.
    Assign {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// The user's id.
        #[arg(long)]
        user: UserId,
        /// The permission set's id.
        #[arg(long)]
        set: PermissionSetId,
    },
}

fn team_line(t: &Team) -> String {
    let manager = t.manager_id.map(|m| m.to_string()).unwrap_or_default();
    format!("{}  {}  {}", t.id, t.name, manager)
}

fn set_line(s: &PermissionSet) -> String {
    let entities: Vec<String> = s
        .entities
        .iter()
        .map(|(table, a)| format!("{table}:{}/{}/{}", a.read, a.write, a.delete))
        .collect();
    format!("{}  {}  [{}]", s.id, s.name, entities.join(" "))
}

/// Runs a team command.
pub(crate) async fn team(crm: &Crm, cmd: TeamCommand, out: Output) -> anyhow::Result<ExitCode> {
    match cmd {
        TeamCommand::List { org } => {
            let teams = system(crm, &org).await?.teams().list().await?;
            out.show(&teams, || {
                teams.iter().map(team_line).collect::<Vec<_>>().join("\n")
            })?;
        }
        TeamCommand::Create {
            org,
            name,
            description,
            manager,
        } => {
            let new = NewTeam {
                name,
                description,
                manager_id: manager,
            };
            let team = system(crm, &org).await?.teams().create(new).await?;
            out.show(&team, || format!("created {}", team_line(&team)))?;
        }
        TeamCommand::Delete { org, id } => {
            system(crm, &org)
                .await?
                .teams()
                .delete(id)
                .await
                .context("deleting the team")?;
            out.show(&serde_json::json!({ "deleted": id }), || {
                format!("deleted team {id}")
            })?;
        }
        TeamCommand::AddMember(Membership { org, team, user }) => {
            let member = system(crm, &org)
                .await?
                .teams()
                .add_member(team, user)
                .await?;
            out.show(&member, || format!("added {user} to team {team}"))?;
        }
        TeamCommand::RemoveMember(Membership { org, team, user }) => {
            system(crm, &org)
                .await?
                .teams()
                .remove_member(team, user)
                .await?;
            out.show(
                &serde_json::json!({ "team_id": team, "user_id": user }),
                || format!("removed {user} from team {team}"),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a permission set command.
pub(crate) async fn access(crm: &Crm, cmd: AccessCommand, out: Output) -> anyhow::Result<ExitCode> {
    match cmd {
        AccessCommand::SetList { org } => {
            let sets = system(crm, &org).await?.permission_sets().list().await?;
            out.show(&sets, || {
                sets.iter().map(set_line).collect::<Vec<_>>().join("\n")
            })?;
        }
        AccessCommand::SetCreate { org, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let new: NewPermissionSet = serde_json::from_str(&text)
                .with_context(|| format!("{} is no permission set", file.display()))?;
            let set = system(crm, &org)
                .await?
                .permission_sets()
                .create(new)
                .await?;
            out.show(&set, || format!("created {}", set_line(&set)))?;
        }
        AccessCommand::Assign { org, user, set } => {
            let user = system(crm, &org)
                .await?
                .permission_sets()
                .assign_to_user(user, Some(set))
                .await?;
            out.show(&user, || {
                format!("{} now holds permission set {set}", user.id)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
