//! `crm user`: the users of an organization. Passwords come from a prompt or standard input,
//! never from a flag (flags end up in shell history and process lists).

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use crm_core::{Crm, NewUser, Password, PasswordKind, Role, User};

use crate::Output;
use crate::connect::system;

/// User commands.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user. The password is prompted for, or read from standard input.
    Create {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Role: user, company_admin or super_admin.
        #[arg(long, default_value = "user")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "no_password")]
        password_stdin: bool,
        /// Create the user without a password (they cannot sign in yet).
        #[arg(long)]
        no_password: bool,
    },
    /// List the users of an organization.
    List {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
    },
    /// Change a user's role.
    SetRole {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// The user's email or id.
        user: String,
        /// The new role.
        role: String,
    },
    /// Set a user's password (prompted for, or read from standard input); their sessions end
    /// (refresh tokens revoked). It is temporary: the user must change it at their next sign-in
    /// (until then their access tokens reach only `POST me/password` and `GET me`), unless
    /// `--permanent`.
    SetPassword {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// The user's email or id.
        user: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// The user keeps this password (no change required at the next sign-in).
        #[arg(long)]
        permanent: bool,
    },
    /// Deactivate a user: they can no longer sign in; their records stay.
    Deactivate {
        /// Organization slug or id.
        #[arg(long)]
        org: String,
        /// The user's email or id.
        user: String,
    },
}

fn line(u: &User) -> String {
    let state = if u.is_active { "active" } else { "deactivated" };
    format!(
        "{}  {:<32} {:<14} {:<12} {}",
        u.id, u.email, u.role, state, u.name
    )
}

fn read_password(stdin: bool) -> anyhow::Result<Password> {
    let password = if stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        bail!("standard input is not a terminal: pass --password-stdin (or --no-password)");
    };
    Ok(Password::new(password))
}

pub(crate) async fn run(crm: &Crm, cmd: UserCommand, out: Output) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Create {
            org,
            email,
            name,
            role,
            password_stdin,
            no_password,
        } => {
            let role: Role = role.parse()?;
            let password = if no_password {
                None
            } else {
                Some(read_password(password_stdin)?)
            };
            let t = system(crm, &org).await?;
            let user = t
                .users()
                .create(NewUser {
                    email,
                    name,
                    password,
                    role,
                })
                .await?;
            out.show(&user, || format!("created {}", line(&user)))?;
        }
        UserCommand::List { org } => {
            let t = system(crm, &org).await?;
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = t.users().list(after, 100).await?;
                let done = page.len() < 100;
                after = page.last().map(|u| u.id);
                all.extend(page);
                if done {
                    break;
                }
            }
            out.show(&all, || all.iter().map(line).collect::<Vec<_>>().join("\n"))?;
        }
        UserCommand::SetRole { org, user, role } => {
            let t = system(crm, &org).await?;
            let id = crate::connect::user(&t, &user).await?.id;
            let user = t.users().set_role(id, role.parse()?).await?;
            out.show(&user, || format!("updated {}", line(&user)))?;
        }
        UserCommand::SetPassword {
            org,
            user,
            password_stdin,
            permanent,
        } => {
            let t = system(crm, &org).await?;
            let id = crate::connect::user(&t, &user).await?.id;
            let kind = if permanent {
                PasswordKind::Permanent
            } else {
                PasswordKind::Temporary
            };
            t.users()
                .set_password(id, &read_password(password_stdin)?, kind)
                .await?;
            let user = t.users().get(id).await?;
            let must = if permanent {
                ""
            } else {
                " (they must change it at their next sign-in)"
            };
            out.show(&user, || {
                format!(
                    "password set{must} for {}; their sessions ended",
                    line(&user)
                )
            })?;
        }
        UserCommand::Deactivate { org, user } => {
            let t = system(crm, &org).await?;
            let id = crate::connect::user(&t, &user).await?.id;
            let user = t.users().deactivate(id).await?;
            out.show(&user, || format!("deactivated {}", line(&user)))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
