//! Background jobs on apalis: the daily maintenance planned once per organization and day and
//! run by a worker; failures retried with backoff, then dead until an operator retries them;
//! cancelled jobs never run. Each test has a job queue of its own (`harness::connect`).

use std::time::Duration;

use chrono::{NaiveDate, TimeDelta, Utc};
use crm_core::sqlx::types::Json;
use crm_core::{
    Crm, Error, InvoiceStatus, Job, JobInfo, JobStatus, LineItem, NewInvoice, OrganizationId,
    Worker,
};
use tokio::sync::oneshot;

use crate::harness::{Fixtures as _, Org, assert_not_found};

/// Starts a worker with quick retries; send on the sender (or drop it) to stop it.
fn start(
    worker: Worker,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<crm_core::Result<()>>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = worker
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .grace(Duration::from_secs(5));
    let handle = tokio::spawn(worker.run_until(async {
        let _ = stopped.await;
    }));
    (stop, handle)
}

/// Waits until `done` holds for the queue's jobs (listed newest first), or fails after 30 s.
async fn until(crm: &Crm, what: &str, done: impl Fn(&[JobInfo]) -> bool) -> Vec<JobInfo> {
    for _ in 0..300 {
        let jobs = crm.jobs().list(None, None, 100).await.unwrap();
        if done(&jobs) {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for {what}: {:#?}",
        crm.jobs().list(None, None, 100).await.unwrap()
    );
}

async fn the_daily_jobs_run_once_per_organization_and_day(crm: Crm) {
    let org = Org::new(&crm, "Acme").await;
    let t = org.admin(&crm);
    let account = t.account("Billed").await.id;
    let yesterday = Utc::now().date_naive() - TimeDelta::days(1);
    let invoice = t
        .invoices()
        .create(NewInvoice {
            account_id: Some(account),
            currency: "EUR".into(),
            line_items: Json(vec![LineItem::new("Work", 1, 1_000, 0)]),
            issue_date: Some(yesterday - TimeDelta::days(30)),
            due_date: Some(yesterday),
            ..Default::default()
        })
        .await
        .unwrap();
    t.invoices().send(invoice.id).await.unwrap();
    let trashed = t.account("Gone").await;
    t.accounts().delete(trashed.id).await.unwrap();

    // Two workers plan the same day: each job is enqueued once.
    let (stop_a, a) = start(
        Worker::new(&crm)
            .trash_retention(TimeDelta::zero())
            .plan_every(Some(Duration::from_millis(200))),
    );
    let (stop_b, b) = start(
        Worker::new(&crm)
            .trash_retention(TimeDelta::zero())
            .plan_every(Some(Duration::from_millis(300))),
    );
    let jobs = until(&crm, "three done jobs", |jobs| {
        jobs.len() == 3 && jobs.iter().all(|j| j.status == JobStatus::Done)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();

    let mut kinds: Vec<_> = jobs
        .iter()
        .map(|j| j.job.as_ref().unwrap().kind())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["mark_overdue_invoices", "purge_trash", "sweep_expired"]
    );
    assert!(
        jobs.iter()
            .all(|j| j.job.as_ref().unwrap().organization_id() == org.id)
    );
    assert!(jobs.iter().all(|j| j.attempts == 1 && j.done_at.is_some()));
    assert_eq!(
        crm.jobs().list(None, None, 100).await.unwrap().len(),
        3,
        "planned again by two workers, still one of each"
    );
    assert_eq!(crm.jobs().plan_daily(Utc::now()).await.unwrap(), 0);

    assert_eq!(
        t.invoices().get(invoice.id).await.unwrap().status,
        InvoiceStatus::Overdue
    );
    let err = t
        .accounts()
        .get_including_deleted(trashed.id)
        .await
        .unwrap_err();
    assert_not_found(&err, "account");
    // Only this organization's jobs, when asked for them.
    let none = crm
        .jobs()
        .list(None, Some(OrganizationId::new()), 10)
        .await
        .unwrap();
    assert!(none.is_empty());
    let mine = crm
        .jobs()
        .list(Some(JobStatus::Done), Some(org.id), 10)
        .await;
    assert_eq!(mine.unwrap().len(), 3);
}

async fn failing_jobs_retry_then_die_and_operators_steer_them(crm: Crm) {
    // No such organization: the job fails on every attempt.
    let doomed = crm
        .jobs()
        .enqueue(Job::SweepExpired {
            organization_id: OrganizationId::new(),
        })
        .await
        .unwrap();
    // Cancelled before any worker runs: it never runs.
    let org = Org::new(&crm, "Acme").await;
    let cancelled = crm
        .jobs()
        .enqueue(Job::MarkOverdueInvoices {
            organization_id: org.id,
            date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        })
        .await
        .unwrap();
    crm.jobs().cancel(&cancelled).await.unwrap();
    assert!(matches!(
        crm.jobs().cancel(&cancelled).await,
        Err(Error::NotFound { entity: "job", .. })
    ));

    let worker = || Worker::new(&crm).plan_every(None);
    let (stop, w) = start(worker());
    let dead = |jobs: &[JobInfo]| {
        jobs.iter()
            .any(|j| j.id == doomed && j.status == JobStatus::Dead)
    };
    let jobs = until(&crm, "the failing job to die", dead).await;
    let job = jobs.iter().find(|j| j.id == doomed).unwrap();
    let max = crm_core::DEFAULT_MAX_ATTEMPTS as u32;
    assert_eq!((job.attempts, job.max_attempts), (max, max), "{job:#?}");
    assert!(
        job.error
            .as_deref()
            .unwrap_or_default()
            .contains("organization"),
        "{job:#?}"
    );
    let other = jobs.iter().find(|j| j.id == cancelled).unwrap();
    assert_eq!((other.status, other.attempts), (JobStatus::Cancelled, 0));
    let listed = crm
        .jobs()
        .list(Some(JobStatus::Dead), None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    // An operator retries it: it runs (and fails) as many times again.
    crm.jobs().retry(&doomed).await.unwrap();
    until(&crm, "the retried job to run", |jobs| {
        jobs.iter()
            .any(|j| j.id == doomed && j.status != JobStatus::Dead)
            || jobs.iter().any(|j| j.id == doomed && j.done_at.is_none())
    })
    .await;
    let jobs = until(&crm, "the retried job to die again", dead).await;
    assert_eq!(jobs.iter().find(|j| j.id == doomed).unwrap().attempts, max);
    stop.send(()).unwrap();
    w.await.unwrap().unwrap();

    // A cancelled job can be retried too; a done one cannot be retried or cancelled.
    crm.jobs().retry(&cancelled).await.unwrap();
    let (stop, w) = start(worker());
    until(&crm, "the revived job to run", |jobs| {
        jobs.iter()
            .any(|j| j.id == cancelled && j.status == JobStatus::Done)
    })
    .await;
    stop.send(()).unwrap();
    w.await.unwrap().unwrap();
    assert!(crm.jobs().retry(&cancelled).await.is_err());
    assert!(crm.jobs().cancel(&cancelled).await.is_err());
    assert!(crm.jobs().list(None, None, 0).await.is_err());

    // Finished jobs are forgotten after their time.
    let forgotten = crm
        .jobs()
        .forget_finished(Utc::now() + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(forgotten, 2);
    assert!(crm.jobs().list(None, None, 10).await.unwrap().is_empty());
}

crate::on_both_backends!(
    the_daily_jobs_run_once_per_organization_and_day,
    failing_jobs_retry_then_die_and_operators_steer_them
);
