//! `crm api-key`: machine access for one organization.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use crm_core::Crm;
use crm_core::auth::{ApiKey, ApiKeyId, ApiKeyScope, NewApiKey};
use serde::Serialize;

use crate::Output;
use crate::connect::system;

/// API key commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeyCommand {
    /// Create a key. It is printed once and stored hashed: keep it now.
    Create {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// What it is for.
        #[arg(long)]
        name: String,
        /// What it may do (repeat, or separate with commas): `forms` (post web forms),
        /// `<entity>:read`, `<entity>:write` (write includes read) for any entity, or `all`.
        /// Default: `forms`.
        #[arg(long = "scope", value_delimiter = ',', default_value = "forms")]
        scopes: Vec<ApiKeyScope>,
    },
    /// List an organization's keys (never the secrets).
    List {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
    },
    /// Revoke a key: requests with it are refused from now on.
    Revoke {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// The key's id.
        id: ApiKeyId,
    },
}

fn line(k: &ApiKey) -> String {
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else {
        "active"
    };
    let scopes: Vec<_> = k.scopes.as_slice().iter().map(|s| s.to_string()).collect();
    format!(
        "{}  {}  {:<8} {}  [{}]",
        k.id,
        k.prefix,
        state,
        k.name,
        scopes.join(" ")
    )
}

#[derive(Serialize)]
struct Created<'a> {
    #[serde(flatten)]
    key: &'a ApiKey,
    secret: &'a str,
}

pub(crate) async fn run(crm: &Crm, cmd: ApiKeyCommand, out: Output) -> anyhow::Result<ExitCode> {
    match cmd {
        ApiKeyCommand::Create { org, name, scopes } => {
            let t = system(crm, &org).await?;
            let (key, secret) = t.api_keys().create(NewApiKey { name, scopes }).await?;
            out.show(
                &Created {
                    key: &key,
                    secret: &secret,
                },
                || {
                    format!(
                        "created {}\n{secret}\n(shown once: it is stored hashed)",
                        line(&key)
                    )
                },
            )?;
        }
        ApiKeyCommand::List { org } => {
            let keys = system(crm, &org).await?.api_keys().list().await?;
            out.show(&keys, || {
                keys.iter().map(line).collect::<Vec<_>>().join("\n")
            })?;
        }
        ApiKeyCommand::Revoke { org, id } => {
            let key = system(crm, &org)
                .await?
                .api_keys()
                .revoke(id)
                .await
                .context("revoking the key")?;
            out.show(&key, || format!("revoked {}", line(&key)))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
