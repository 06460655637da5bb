//! `crm`: the operator tool of abetworks CRM.
//!
//! Thin by design: clap parses, the library does the work. Every setting is a flag that can
//! also come from the environment (`DATABASE_URL`, …), like the example server's.
//!
//! Layout: `main.rs` (commands and dispatch), `connect.rs` (database and organization lookup),
//! `entity.rs` (which entities the data commands take, and their CSV columns), `org.rs`,
//! `user.rs`, `api_key.rs`, `access.rs` (teams, permission sets), `http.rs` (serve, token, openapi), `seed.rs`, `import.rs`,
//! `export.rs`, `purge.rs`, `sweep.rs`, `rebuild.rs` (duplicate-match keys), `jobs.rs` (worker
//! and job queue).
#![forbid(unsafe_code)]

mod access;
mod api_key;
mod connect;
mod entity;
mod export;
mod http;
mod import;
mod jobs;
mod org;
mod purge;
mod rebuild;
mod seed;
mod spreadsheet;
mod sweep;
mod user;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// abetworks CRM operator tool.
#[derive(Debug, Parser)]
#[command(name = "crm", version, about, long_about = None)]
struct Cli {
    /// Database: postgres://…, sqlite://path or sqlite::memory:.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://crm.db",
        global = true,
        hide_env_values = true
    )]
    database_url: String,
    /// Do not apply pending migrations before the command.
    #[arg(long, global = true)]
    no_migrate: bool,
    /// PostgreSQL: keep the URL's role instead of switching to `crm_app`. A superuser or the
    /// tables' owner then bypasses row-level security: for measuring its cost only.
    #[arg(long, global = true)]
    no_rls: bool,
    /// The job queue (its name in the job tables): instances that share a database and this
    /// name share their jobs.
    #[arg(long, env = "CRM_JOB_QUEUE", default_value = crm_core::DEFAULT_JOB_QUEUE, global = true)]
    job_queue: String,
    /// Let outbound webhooks use plain `http://` URLs (development against a local receiver).
    #[arg(long, env = "CRM_WEBHOOK_ALLOW_HTTP", global = true, value_parser = clap::builder::FalseyValueParser::new())]
    webhook_allow_http: bool,
    /// Let outbound webhooks reach loopback, private, link-local and other non-public
    /// addresses (development only: it opens the operator's network to subscribers).
    #[arg(long, env = "CRM_WEBHOOK_ALLOW_PRIVATE_NETWORKS", global = true, value_parser = clap::builder::FalseyValueParser::new())]
    webhook_allow_private_networks: bool,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations (or show them with --status).
    Migrate {
        /// List every migration and whether it is applied; change nothing.
        #[arg(long)]
        status: bool,
    },
    /// Manage organizations (tenants).
    #[command(subcommand)]
    Org(org::OrgCommand),
    /// Manage the users of an organization.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage the API keys of an organization.
    #[command(subcommand)]
    ApiKey(api_key::ApiKeyCommand),
    /// Manage the teams of an organization and their members.
    #[command(subcommand)]
    Team(access::TeamCommand),
    /// Manage the permission sets of an organization and who holds them.
    #[command(subcommand)]
    Access(access::AccessCommand),
    /// Serve the REST API (the same server as examples/server.rs).
    Serve(http::ServeArgs),
    /// Access tokens for scripts and tests.
    #[command(subcommand)]
    Token(http::TokenCommand),
    /// Print the OpenAPI description of the REST API.
    Openapi {
        /// Output format.
        #[arg(long, value_enum, default_value = "yaml")]
        format: http::SpecFormat,
    },
    /// Generate a realistic, deterministic demo data set.
    Seed(seed::SeedArgs),
    /// Import records from a CSV file, validated by the same services as the API.
    Import(import::ImportArgs),
    /// Export records as CSV or JSON lines, streamed.
    Export(export::ExportArgs),
    /// Permanently remove records trashed longer ago than the retention period.
    Purge(purge::PurgeArgs),
    /// Delete expired Idempotency-Key records and refresh tokens (the worker does it daily: this
    /// runs it by hand), and change-feed commits past `--keep-changes-days`.
    Sweep(sweep::SweepArgs),
    /// Compute the duplicate-match keys of records written before the database kept them (run
    /// once after upgrading to migration 0014).
    RebuildMatchKeys(rebuild::RebuildArgs),
    /// Run background jobs (the daily maintenance, retries) until SIGINT/SIGTERM; `crm serve`
    /// runs one in process unless --no-worker.
    Worker(jobs::WorkerArgs),
    /// See and steer the job queue.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
}

/// What a command prints: text for people, JSON with `--json`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `text` for people.
    pub(crate) fn show(
        &self,
        value: &impl serde::Serialize,
        text: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        let text = if self.json {
            serde_json::to_string_pretty(value)?
        } else {
            text()
        };
        // Not `println!`, which panics when the reader has gone (`crm … | head`).
        writeln!(std::io::stdout().lock(), "{text}")?;
        Ok(())
    }
}

/// mimalloc rather than the system allocator: `crm serve` allocates and frees many small
/// objects per request on every worker thread (see docs/benchmarks.md, "HTTP CPU").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        // A closed pipe (`crm export … | head`) is the reader's choice, not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl Cli {
    /// Where outbound webhooks may go.
    fn webhook_policy(&self) -> crm_core::WebhookPolicy {
        crm_core::WebhookPolicy {
            allow_http: self.webhook_allow_http,
            allow_private_networks: self.webhook_allow_private_networks,
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let out = Output { json: cli.json };
    if let Command::Openapi { format } = cli.command {
        return http::openapi(format);
    }
    if let Command::Migrate { status } = cli.command {
        let crm = connect::connect(
            &cli.database_url,
            false,
            cli.no_rls,
            &cli.job_queue,
            cli.webhook_policy(),
        )
        .await?;
        if !status {
            crm.migrate().await?;
        }
        let migrations = crm.migration_status().await?;
        out.show(&migrations, || {
            migrations
                .iter()
                .map(|m| {
                    format!(
                        "{:>4} {:<20} {}",
                        m.version,
                        m.description,
                        if m.applied { "applied" } else { "pending" }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let crm = connect::connect(
        &cli.database_url,
        !cli.no_migrate,
        cli.no_rls,
        &cli.job_queue,
        cli.webhook_policy(),
    )
    .await?;
    let code = match cli.command {
        Command::Migrate { .. } | Command::Openapi { .. } => ExitCode::SUCCESS,
        Command::ApiKey(cmd) => api_key::run(&crm, cmd, out).await?,
        Command::Team(cmd) => access::team(&crm, cmd, out).await?,
        Command::Access(cmd) => access::access(&crm, cmd, out).await?,
        Command::Serve(args) => return http::serve(crm, args).await,
        Command::Token(cmd) => http::token(&crm, cmd, out).await?,
        Command::Org(cmd) => org::run(&crm, cmd, out).await?,
        Command::User(cmd) => user::run(&crm, cmd, out).await?,
        Command::Seed(args) => seed::run(&crm, args, out).await?,
        Command::Import(args) => import::run(&crm, args, out).await?,
        Command::Export(args) => export::run(&crm, args).await?,
        Command::Purge(args) => purge::run(&crm, args, out).await?,
        Command::Sweep(args) => sweep::run(&crm, args, out).await?,
        Command::RebuildMatchKeys(args) => rebuild::run(&crm, args, out).await?,
        Command::Worker(args) => return jobs::worker(crm, args).await,
        Command::Jobs(cmd) => jobs::run(&crm, cmd, out).await?,
    };
    crm.close().await;
    Ok(code)
}
