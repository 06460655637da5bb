//! The worker: runs jobs until told to stop, and plans the daily ones.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::layers::retry::HasherRng;
use apalis::layers::retry::backoff::{ExponentialBackoffMaker, MakeBackoff as _};
use apalis::prelude::{
    AbortError, BoxDynError, Data, Monitor, RetryPolicy, WorkerBuilder, WorkerBuilderExt as _,
};
use chrono::{TimeDelta, Utc};
use tokio::sync::watch;

use super::{DEFAULT_MAX_ATTEMPTS, Job};
use crate::crm::Crm;
use crate::error::{Error, Result};
use crate::storage::with_apalis_storage;
use crate::webhooks::dispatcher;
use crate::webhooks::{WebhookSettings, WebhookTransport};

/// Runs background jobs and delivers webhooks: `crm worker`, or in the server's process
/// (`crm serve`), or in an embedding app.
///
/// ```no_run
/// # async fn run(crm: crm_core::Crm, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> crm_core::Result<()> {
/// use crm_core::Worker;
///
/// // Until `shutdown` completes (Ctrl-C, say); running jobs finish first (up to the grace
/// // period). Webhooks need a transport too: `.webhooks(crm_axum::WebhookSender::default(), …)`.
/// Worker::new(&crm).concurrency(4).run_until(shutdown).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Worker {
    crm: Crm,
    name: String,
    concurrency: usize,
    backoff: (Duration, Duration),
    trash_retention: Option<TimeDelta>,
    plan_every: Option<Duration>,
    grace: Duration,
    webhooks: Option<(Arc<dyn WebhookTransport>, WebhookSettings)>,
}

/// What every run of a job is given.
#[derive(Debug, Clone)]
struct Context {
    crm: Crm,
    trash_retention: Option<TimeDelta>,
}

impl Worker {
    /// A worker for `crm`'s queue: 2 jobs at once, up to [`DEFAULT_MAX_ATTEMPTS`] runs of a
    /// job with a backoff from 1 s doubling to 5 min (with jitter) between them, each
    /// organization's own trash retention, the daily plan checked every 10 minutes, 30 s of
    /// grace on stop.
    pub fn new(crm: &Crm) -> Self {
        Self {
            crm: crm.clone(),
            name: format!("crm-{}", ulid::Ulid::generate()),
            concurrency: 2,
            backoff: (Duration::from_secs(1), Duration::from_secs(300)),
            trash_retention: None,
            plan_every: Some(Duration::from_secs(600)),
            grace: Duration::from_secs(30),
            webhooks: None,
        }
    }

    /// Jobs run at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The first retry's delay and the longest; each retry doubles it, with jitter.
    pub fn backoff(mut self, first: Duration, longest: Duration) -> Self {
        self.backoff = (first, longest.max(first));
        self
    }

    /// How long trashed records are kept before [`Job::PurgeTrash`] removes them, for every
    /// organization alike; by default each organization's own
    /// ([`crate::Organization::trash_retention_days`]).
    pub fn trash_retention(mut self, keep: TimeDelta) -> Self {
        self.trash_retention = Some(keep);
        self
    }

    /// How often the worker plans the day's jobs (`None`: never; another worker or
    /// [`super::Jobs::plan_daily`] does). Planning is idempotent per organization and day.
    pub fn plan_every(mut self, every: Option<Duration>) -> Self {
        self.plan_every = every;
        self
    }

    /// How long running jobs may take to finish once stop is asked; then the worker returns
    /// and what still runs is taken back by the storage after its heartbeats stop.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Delivers webhooks too, through `transport` (crm-core speaks no HTTP:
    /// `crm_axum::WebhookSender` is the ready one), as `settings` say. Without it, this worker
    /// delivers none (another may).
    pub fn webhooks(mut self, transport: impl WebhookTransport, settings: WebhookSettings) -> Self {
        self.webhooks = Some((Arc::new(transport), settings));
        self
    }

    /// Runs until `stop` completes, then lets running jobs finish (within the grace period).
    /// Jobs that were waiting stay in the store for the next worker.
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable backoff; the job storage's errors when it cannot be
    /// opened.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let store = self.crm.job_store().await?.clone();
        let (stopped_tx, stopped) = watch::channel(false);
        let planner = self.plan_every.map(|every| {
            let crm = self.crm.clone();
            let stopped = stopped.clone();
            tokio::spawn(plan(crm, every, stopped))
        });
        let deliveries = self.webhooks.clone().map(|(transport, settings)| {
            let crm = self.crm.clone();
            let stopped = stopped.clone();
            tokio::spawn(dispatcher::run(
                crm, transport, settings, stopped, self.grace,
            ))
        });
        let retry = RetryPolicy::retries(DEFAULT_MAX_ATTEMPTS - 1).with_backoff(
            ExponentialBackoffMaker::new(self.backoff.0, self.backoff.1, 0.5, HasherRng::default())
                .map_err(|e| Error::Config(format!("job backoff: {e}")))?
                .make_backoff(),
        );
        let context = Context {
            crm: self.crm.clone(),
            trash_retention: self.trash_retention,
        };
        let name = self.name.clone();
        let concurrency = self.concurrency;
        let monitor = Monitor::new().shutdown_timeout(self.grace);
        let monitor = with_apalis_storage!(&store, |storage| monitor.register(move |_| {
            WorkerBuilder::new(name.as_str())
                .backend(storage.clone())
                .data(context.clone())
                .catch_panic()
                .retry(retry.clone())
                .concurrency(concurrency)
                .build(run_job)
        }));
        let signal = async move {
            stop.await;
            let _ = stopped_tx.send(true);
            Ok(())
        };
        let out = monitor
            .run_with_signal(signal)
            .await
            .map_err(|e| Error::Internal(format!("job worker: {e}")));
        if let Some(planner) = planner {
            let _ = planner.await;
        }
        if let Some(deliveries) = deliveries {
            let _ = deliveries.await;
        }
        out
    }
}

/// Plans the day's jobs now and every `every` until stopped; forgets jobs finished more than
/// 30 days ago once a day. A failure is logged and tried again next time.
async fn plan(crm: Crm, every: Duration, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    let mut forgot_on = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let now = Utc::now();
        match crm.jobs().plan_daily(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "daily jobs planned"),
            Err(e) => tracing::warn!(error = %e, "planning the daily jobs failed"),
        }
        if forgot_on != Some(now.date_naive()) {
            match crm.jobs().forget_finished(now - TimeDelta::days(30)).await {
                Ok(n) => {
                    forgot_on = Some(now.date_naive());
                    if n > 0 {
                        tracing::info!(jobs = n, "finished jobs older than 30 days deleted");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "deleting old finished jobs failed"),
            }
        }
    }
}

/// Runs one job; a failure that no retry can mend (bad configuration or input, refusal)
/// aborts at once, others are retried.
async fn run_job(job: Job, context: Data<Context>) -> std::result::Result<(), BoxDynError> {
    match job.run(&context.crm, context.trash_retention).await {
        Ok(()) => Ok(()),
        Err(e @ (Error::Config(_) | Error::Validation(_) | Error::Forbidden(_))) => {
            tracing::warn!(kind = job.kind(), error = %e, "job failed for good");
            Err(Box::new(AbortError::new(e)))
        }
        Err(e) => {
            tracing::warn!(kind = job.kind(), error = %e, "job failed; it will be retried");
            Err(Box::new(e))
        }
    }
}
