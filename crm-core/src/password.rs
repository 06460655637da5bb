//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane).
//!
//! Hashing is deliberately slow and memory hungry. It runs on threads of its own, as many as
//! the machine has cores unless told otherwise ([`crate::CrmBuilder::max_concurrent_hashes`]),
//! each doing one hash at a time: a flood of sign-ins can neither starve the async runtime nor
//! hold more than `threads × 19 MiB`. The same few threads do every hash, so the memory a hash
//! frees is reused by the next, whatever the allocator (on the runtime's blocking pool each new
//! thread could keep a heap of its own full of freed hashes: glibc grew a server past 1 GB).
//!
//! Callers queue for the threads, in order, for a bounded time: when the hashes queued ahead
//! would take longer than [`MAX_WAIT`] (judged by how long hashes took lately), or a queued hash
//! has not started within it, the call answers [`Error::Overloaded`] (HTTP 503 with
//! `Retry-After`) at once. A sign-in made during a flood thus waits at most that long for its
//! turn, and the requests beyond the bound cost next to nothing. A hash whose caller has gone
//! (a client that hung up, a request that timed out) is skipped.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// The longest a hash waits in the queue for a thread.
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(500);

/// The most hashes queued per thread, whatever their expected wait (a bound on memory even
/// before the first hash has been timed).
const QUEUE_PER_THREAD: usize = 32;

/// A password as typed. Its `Debug` never shows it.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The password text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// Hashes and verifies passwords on threads of their own, a few at a time.
#[derive(Debug, Clone)]
pub(crate) struct Hasher {
    /// Where hashes queue for the threads; the threads end once every clone is dropped.
    jobs: SyncSender<Job>,
    load: Arc<Load>,
}

/// A hash to run on a hashing thread (it sends its result itself).
type Job = Box<dyn FnOnce() + Send>;

/// What the queue holds and how long hashes take: what a caller's wait is judged by.
#[derive(Debug)]
struct Load {
    threads: usize,
    max_wait: Duration,
    /// Hashes queued and not yet taken by a thread.
    queued: AtomicUsize,
    /// How long a hash took lately, in nanoseconds (a moving average; 0 before the first).
    hash_nanos: AtomicU64,
}

impl Load {
    /// Whether a hash queued behind `ahead` others would wait longer than allowed.
    fn too_long_behind(&self, ahead: usize) -> bool {
        let hash = self.hash_nanos.load(Ordering::Relaxed);
        let rounds = u64::try_from(ahead / self.threads).unwrap_or(u64::MAX);
        Duration::from_nanos(hash.saturating_mul(rounds)) > self.max_wait
    }

    /// Counts a hash that took `took` into the moving average (weight 1/8).
    fn took(&self, took: Duration) {
        let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let old = self.hash_nanos.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.hash_nanos.store(new, Ordering::Relaxed);
    }
}

/// A hash of a throwaway password, made once: verifying against it when the user does not exist
/// costs the same time as a real check, so timing does not reveal which emails exist.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

/// The answer to a caller who would wait too long.
fn overloaded() -> Error {
    Error::Overloaded("too many password checks at once")
}

impl Hasher {
    /// `threads` hashing threads (at least one), each waited for at most `max_wait`.
    ///
    /// # Errors
    /// [`Error::Internal`] when the system refuses a thread.
    pub(crate) fn new(threads: usize, max_wait: Duration) -> Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = sync_channel::<Job>(threads.saturating_mul(QUEUE_PER_THREAD));
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("crm-password-{n}"))
                .spawn(move || work(&queue))
                .map_err(|e| Error::Internal(format!("cannot start a password thread: {e}")))?;
        }
        Ok(Self {
            jobs,
            load: Arc::new(Load {
                threads,
                max_wait,
                queued: AtomicUsize::new(0),
                hash_nanos: AtomicU64::new(0),
            }),
        })
    }

    /// As many threads as the machine has cores, each waited for at most [`MAX_WAIT`].
    ///
    /// # Errors
    /// As [`Hasher::new`].
    pub(crate) fn per_core() -> Result<Self> {
        Self::new(
            std::thread::available_parallelism().map_or(1, usize::from),
            MAX_WAIT,
        )
    }

    /// The PHC string of `password` with a fresh random salt.
    pub(crate) async fn hash(&self, password: &Password) -> Result<String> {
        let password = password.clone();
        self.run(move || {
            Argon2::default()
                .hash_password(password.expose().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
        })
        .await
    }

    /// Whether `password` matches `hash`. With no hash (unknown user) it still does the work and
    /// answers `false`.
    pub(crate) async fn verify(&self, password: &Password, hash: Option<&str>) -> Result<bool> {
        let password = password.clone();
        let known = hash.map(str::to_owned);
        self.run(move || {
            let hash = match &known {
                Some(h) => h.as_str(),
                None => DUMMY_HASH.get_or_init(|| {
                    Argon2::default()
                        .hash_password(b"not a real password")
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                }),
            };
            let parsed = PasswordHash::new(hash)
                .map_err(|e| Error::Internal(format!("stored password hash is invalid: {e}")))?;
            let ok = Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok();
            Ok(ok && known.is_some())
        })
        .await
    }

    /// Runs `work` on a hashing thread once one is free, or answers [`Error::Overloaded`] when
    /// it would wait too long for one.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let load = &self.load;
        if load.too_long_behind(load.queued.load(Ordering::Relaxed)) {
            return Err(overloaded());
        }
        let (answer, answered) = oneshot::channel();
        let queued_at = Instant::now();
        let job_load = Arc::clone(load);
        let job: Job = Box::new(move || {
            job_load.queued.fetch_sub(1, Ordering::Relaxed);
            if answer.is_closed() {
                return;
            }
            if queued_at.elapsed() > job_load.max_wait {
                let _ = answer.send(Err(overloaded()));
                return;
            }
            let started = Instant::now();
            let result = work();
            job_load.took(started.elapsed());
            let _ = answer.send(result);
        });
        load.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(refused) = self.jobs.try_send(job) {
            load.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(match refused {
                TrySendError::Full(_) => overloaded(),
                TrySendError::Disconnected(_) => {
                    Error::Internal("the password threads have ended".into())
                }
            });
        }
        answered
            .await
            .map_err(|_| Error::Internal("a password hash failed".into()))?
    }
}

/// A hashing thread: runs the queued hashes until the queue is dropped.
fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return;
        };
        // A panicking hash drops its answer (its caller sees an error); the thread lives on.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_fail() {
        let h = Hasher::new(2, MAX_WAIT).unwrap();
        let pw = Password::new("correct horse battery staple");
        let hash = h.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify(&pw, Some(&hash)).await.unwrap());
        assert!(
            !h.verify(&Password::new("wrong"), Some(&hash))
                .await
                .unwrap()
        );
        assert!(!h.verify(&pw, None).await.unwrap());
        assert_eq!(format!("{pw:?}"), "Password(***)");
    }

    /// Runs `jobs` jobs of `each` on `h` at once; answers how many ran at the same time at
    /// most, and how many were refused.
    async fn flood(h: &Hasher, jobs: usize, each: Duration) -> (usize, usize) {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = (0..jobs)
            .map(|_| {
                let (h, running, most) = (h.clone(), Arc::clone(&running), Arc::clone(&most));
                tokio::spawn(async move {
                    h.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(each);
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        let mut refused = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(()) => {}
                Err(Error::Overloaded(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        (most.load(Ordering::SeqCst), refused)
    }

    #[tokio::test]
    async fn at_most_one_hash_per_thread_runs_at_once() {
        let h = Hasher::new(3, Duration::from_secs(60)).unwrap();
        let (most, refused) = flood(&h, 30, Duration::from_millis(20)).await;
        assert_eq!((most, refused), (3, 0));
    }

    #[tokio::test]
    async fn callers_that_would_wait_too_long_are_refused() {
        let h = Hasher::new(2, Duration::from_millis(100)).unwrap();
        // Before any hash was timed, every call queues, and those a thread has not taken within
        // 100 ms are refused then: of 40 jobs of 50 ms on 2 threads, 4 to 6 run.
        let started = Instant::now();
        let (most, refused) = flood(&h, 40, Duration::from_millis(50)).await;
        assert_eq!(most, 2);
        assert!((34..=36).contains(&refused), "{refused} refused");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // Hashes now take 50 ms: two threads busy and 100 ms of work queued are all a caller
        // may wait behind; the next is refused before it queues, without waiting.
        let (a, b) = (h.clone(), h.clone());
        let busy = tokio::spawn(async move { flood(&a, 2, Duration::from_millis(300)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let queued = tokio::spawn(async move { flood(&b, 6, Duration::from_millis(50)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let asked = Instant::now();
        let refused = h.run(|| Ok(())).await;
        assert!(matches!(refused, Err(Error::Overloaded(_))), "{refused:?}");
        assert!(
            asked.elapsed() < Duration::from_millis(50),
            "{:?}",
            asked.elapsed()
        );
        assert_eq!(busy.await.unwrap(), (2, 0));
        queued.await.unwrap();
    }
}
