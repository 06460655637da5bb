//! `crm worker` (runs background jobs), `crm jobs list|retry|cancel|plan` (operators' view of
//! the queue), and the worker options `crm serve` shares.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use crm_core::{Crm, JobInfo, JobStatus, Worker};
use tokio::sync::oneshot;

use crate::Output;
use crate::connect::organization;

/// How a worker runs (`crm worker`, and the one inside `crm serve`).
#[derive(Debug, Clone, Args)]
pub(crate) struct WorkerArgs {
    /// Jobs a worker runs at once.
    #[arg(long, env = "CRM_WORKER_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    worker_concurrency: u32,
    /// Do not plan the daily jobs from this process (another worker does).
    #[arg(long)]
    no_plan: bool,
    /// Do not deliver webhooks from this process (another worker does).
    #[arg(long)]
    no_webhooks: bool,
    /// Seconds a webhook receiver has to answer. A delivery is leased for twice that plus 5 s:
    /// a worker that dies mid-delivery has it sent again (same `webhook-id`) after the lease.
    #[arg(long, env = "CRM_WEBHOOK_TIMEOUT", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=300))]
    webhook_timeout: u64,
}

impl WorkerArgs {
    /// The worker these options describe.
    pub(crate) fn worker(&self, crm: &Crm) -> Worker {
        let webhooks = crm_core::WebhookSettings {
            timeout: Duration::from_secs(self.webhook_timeout),
            ..crm_core::WebhookSettings::default()
        };
        let worker = Worker::new(crm)
            .concurrency(self.worker_concurrency as usize)
            .plan_every((!self.no_plan).then_some(Duration::from_secs(600)));
        if self.no_webhooks {
            worker
        } else {
            worker.webhooks(crm_axum::WebhookSender::default(), webhooks)
        }
    }
}

/// A worker running beside the server: stop it with [`Background::stop`].
pub(crate) struct Background {
    stop: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<crm_core::Result<()>>,
}

impl Background {
    /// Starts `worker` on a task of its own.
    pub(crate) fn start(worker: Worker) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(worker.run_until(async {
            let _ = stopped.await;
        }));
        Self { stop, handle }
    }

    /// Asks the worker to stop and waits for its running jobs (within its grace period).
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.handle.await.context("the job worker panicked")??;
        Ok(())
    }
}

/// `crm worker`: runs jobs until SIGINT or SIGTERM, then lets running jobs finish.
pub(crate) async fn worker(crm: Crm, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let _tracing = crm_axum::server::init_tracing(
        crm_axum::server::LogFormat::from_env().map_err(anyhow::Error::msg)?,
    )?;
    tracing::info!(
        concurrency = args.worker_concurrency,
        plans = !args.no_plan,
        webhooks = !args.no_webhooks,
        "job worker started"
    );
    args.worker(&crm)
        .run_until(crm_axum::server::shutdown_signal())
        .await?;
    tracing::info!("job worker stopped");
    crm.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Job commands.
#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state.
        #[arg(long, value_parser = parse_status)]
        status: Option<JobStatus>,
        /// Only this organization's jobs (slug or id).
        #[arg(long)]
        org: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Run a dead or cancelled job again (its attempts start over).
    Retry {
        /// The job's id.
        id: String,
    },
    /// Cancel a job that has not run yet (or waits for a retry).
    Cancel {
        /// The job's id.
        id: String,
    },
    /// Enqueue today's daily jobs of every organization now (once per day each; workers also
    /// do it every 10 minutes).
    Plan,
}

fn parse_status(s: &str) -> Result<JobStatus, String> {
    s.parse().map_err(|e: crm_core::Error| e.to_string())
}

pub(crate) async fn run(crm: &Crm, cmd: JobsCommand, out: Output) -> anyhow::Result<ExitCode> {
    match cmd {
        JobsCommand::List { status, org, limit } => {
            let org = match org {
                Some(key) => Some(organization(crm, &key).await?.id),
                None => None,
            };
            let jobs = crm.jobs().list(status, org, limit).await?;
            out.show(&jobs, || table(&jobs))?;
        }
        JobsCommand::Retry { id } => steered(out, crm.jobs().retry(&id).await, &id, RETRIED)?,
        JobsCommand::Cancel { id } => steered(out, crm.jobs().cancel(&id).await, &id, CANCELLED)?,
        JobsCommand::Plan => {
            let added = crm.jobs().plan_daily(chrono::Utc::now()).await?;
            out.show(&serde_json::json!({ "planned": added }), || {
                format!("{added} jobs planned")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How a retry or cancel reports: its JSON key, what was missing when it fails, what became of
/// the job when it succeeds.
type Steer = (&'static str, &'static str, &'static str);
const RETRIED: Steer = ("retried", "no dead or cancelled job", "queued again");
const CANCELLED: Steer = ("cancelled", "no pending or retrying job", "cancelled");

/// Reports a retry or cancel of job `id`: `{key: id}` or "job … `done`", or why not.
fn steered(
    out: Output,
    result: crm_core::Result<()>,
    id: &str,
    (key, missing, done): Steer,
) -> anyhow::Result<()> {
    result.with_context(|| format!("{missing} `{id}`"))?;
    out.show(&serde_json::json!({ key: id }), || {
        format!("job {id} {done}")
    })
}

/// One line per job: id, state, attempts, kind, organization, when, error.
fn table(jobs: &[JobInfo]) -> String {
    if jobs.is_empty() {
        return "no jobs".into();
    }
    jobs.iter()
        .map(|j| {
            let (kind, org) = j.job.as_ref().map_or(("?", String::new()), |job| {
                (job.kind(), job.organization_id().to_string())
            });
            let status = serde_json::to_value(j.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!(
                "{} {:<9} {}/{} {:<22} {} {}{}",
                j.id,
                status,
                j.attempts,
                j.max_attempts,
                kind,
                org,
                j.run_at.to_rfc3339(),
                j.error
                    .as_deref()
                    .map(|e| format!("  error: {e}"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
