//! One deadline and cancellation signal per operation, shared by every wait and every retry.
//!
//! A [`Deadline`] is an instant plus a [`CancellationToken`]. The caller that knows the
//! operation's budget (a resource, from its `timeouts` and the provider's stop signal) builds
//! one and runs the operation under it with [`Deadline::run`]; code further down (the
//! Kubernetes client's retries) finds it with [`Deadline::current`] without it being passed
//! through every signature (a tokio task-local). Outside any operation, [`Deadline::current`]
//! is a bounded default ([`DEFAULT_BUDGET`] from the call), so nothing ever retries forever.
//!
//! The task-local is visible to the future given to [`Deadline::run`] and everything it
//! awaits in the same task; work moved to another task with `tokio::spawn` must be wrapped
//! in `run` again.
//!
//! Nothing here knows Terraform or Kubernetes.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The budget of work done outside any [`Deadline::run`].
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(120);

/// Why the operation must stop now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Interrupted {
    /// The deadline passed; `budget` is the whole time the operation was given.
    #[error("timed out after {}", humantime::format_duration(*.budget))]
    Expired { budget: Duration },
    #[error("cancelled: asked to stop")]
    Cancelled,
}

/// Stack and other callers whose errors are plain text can `?` an [`Interrupted`].
impl From<Interrupted> for String {
    fn from(e: Interrupted) -> String {
        e.to_string()
    }
}

/// What one check of a [`Deadline::poll`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Done,
    /// Not yet; the text is the current status, quoted if the wait runs out.
    Pending(String),
    /// Will never get done; stop waiting at once.
    Failed(String),
}

/// Why a [`Deadline::poll`] ended without [`Progress::Done`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("{what}: failed: {message}")]
    Failed { what: String, message: String },
    #[error("timed out after {} waiting for {what}; last status: {last}", humantime::format_duration(*.waited))]
    TimedOut { what: String, waited: Duration, last: String },
    #[error("cancelled while waiting for {what}; last status: {last}")]
    Cancelled { what: String, last: String },
}

impl WaitError {
    /// The last status seen (empty for [`WaitError::Failed`], whose message says it all).
    pub fn last_status(&self) -> &str {
        match self {
            WaitError::Failed { .. } => "",
            WaitError::TimedOut { last, .. } | WaitError::Cancelled { last, .. } => last,
        }
    }
}

impl From<WaitError> for String {
    fn from(e: WaitError) -> String {
        e.to_string()
    }
}

/// When an operation must be done by, and the signal that cancels it early.
#[derive(Clone)]
pub struct Deadline {
    until: Instant,
    budget: Duration,
    cancel: CancellationToken,
    /// Requests retried under this deadline (shared by its clones).
    retries: Arc<AtomicU64>,
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("remaining", &self.remaining())
            .field("budget", &self.budget)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish()
    }
}

tokio::task_local! {
    static CURRENT: Deadline;
}

impl Deadline {
    /// `budget` from now, cancelled early when `cancel` fires.
    pub fn after(budget: Duration, cancel: CancellationToken) -> Deadline {
        Deadline { until: Instant::now() + budget, budget, cancel, retries: Arc::default() }
    }

    /// The deadline of the operation this task is running (see [`Deadline::run`]), or
    /// [`DEFAULT_BUDGET`] from now, never cancelled, outside any.
    pub fn current() -> Deadline {
        CURRENT.try_with(Deadline::clone).unwrap_or_else(|_| Deadline::after(DEFAULT_BUDGET, CancellationToken::new()))
    }

    /// Whether this task runs under a [`Deadline::run`].
    pub fn is_set() -> bool {
        CURRENT.try_with(|_| ()).is_ok()
    }

    /// The whole time this deadline was given.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    pub fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// `Err` when the operation must stop now (cancelled wins over expired).
    pub fn check(&self) -> Result<(), Interrupted> {
        if self.cancel.is_cancelled() {
            Err(Interrupted::Cancelled)
        } else if Instant::now() >= self.until {
            Err(Interrupted::Expired { budget: self.budget })
        } else {
            Ok(())
        }
    }

    /// Sleeps for `d`; `Err` as soon as the deadline passes or the token fires, so a caller
    /// never sleeps past its budget.
    pub async fn sleep(&self, d: Duration) -> Result<(), Interrupted> {
        self.check()?;
        let wake = Instant::now() + d;
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Interrupted::Cancelled),
            _ = tokio::time::sleep_until(wake.min(self.until)) => {
                if wake <= self.until { Ok(()) } else { Err(Interrupted::Expired { budget: self.budget }) }
            }
        }
    }

    /// Runs `work` as the current operation: everything it awaits sees this deadline
    /// through [`Deadline::current`], and it is dropped when the deadline passes or the
    /// token fires. The outermost `run` of a task logs at info how many requests were
    /// retried, when any were (nested ones, such as each check of a poll, stay quiet).
    pub async fn run<T, E>(&self, work: impl Future<Output = Result<T, E>>) -> Result<T, E>
    where
        E: From<Interrupted>,
    {
        let outermost = !Deadline::is_set();
        let before = self.retries();
        let result = CURRENT.scope(self.clone(), self.within(work)).await;
        let retried = self.retries() - before;
        if outermost && retried > 0 {
            tracing::info!(retries = retried, "retried {retried} requests");
        }
        result
    }

    /// Bounds `work` by this deadline and token without making it current (for callers
    /// that already run under it, such as one attempt of a retried request).
    pub async fn within<T, E>(&self, work: impl Future<Output = Result<T, E>>) -> Result<T, E>
    where
        E: From<Interrupted>,
    {
        self.check()?;
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Interrupted::Cancelled.into()),
            result = tokio::time::timeout_at(self.until, work) => {
                result.unwrap_or_else(|_| Err(Interrupted::Expired { budget: self.budget }.into()))
            }
        }
    }

    /// Calls `check` every `interval` until it reports [`Progress::Done`] or
    /// [`Progress::Failed`], the deadline passes or the token fires. A check that errors
    /// counts as pending (its error becomes the status): transient failures are retried
    /// below, so what reaches here is worth quoting, not worth giving up on. Messages name
    /// `what` was waited for and the last status seen.
    pub async fn poll<F, Fut, E>(&self, what: &str, interval: Duration, mut check: F) -> Result<(), WaitError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Progress, E>>,
        E: fmt::Display,
    {
        let started = Instant::now();
        let mut last = String::from("not checked yet");
        loop {
            let outcome = self.run(async { Ok::<_, Interrupted>(check().await) }).await;
            match outcome {
                Ok(Ok(Progress::Done)) => return Ok(()),
                Ok(Ok(Progress::Failed(message))) => return Err(WaitError::Failed { what: what.to_string(), message }),
                Ok(Ok(Progress::Pending(status))) => last = status,
                Ok(Err(e)) => last = format!("could not check: {e}"),
                Err(_) => {}
            }
            match self.sleep(interval).await {
                Ok(()) => {}
                Err(Interrupted::Cancelled) => return Err(WaitError::Cancelled { what: what.to_string(), last }),
                Err(Interrupted::Expired { .. }) => {
                    // Whole seconds: sub-second noise says nothing to a reader.
                    let waited = Duration::from_secs(started.elapsed().as_secs());
                    return Err(WaitError::TimedOut { what: what.to_string(), waited, last });
                }
            }
        }
    }

    /// Counts one retried request against this operation (called by clients that retry).
    pub fn note_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests retried so far under this deadline and its clones.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// An error of an operation that [`retry`] may try again.
pub trait Retryable: Sized + fmt::Display + From<Interrupted> {
    /// Whether trying again may help (no answer, a busy server).
    fn is_transient(&self) -> bool;
    /// The interruption this error is, if it is one.
    fn interrupted(&self) -> Option<Interrupted>;
    /// The same error with `note` (why retrying stopped) added to its message.
    fn noting(self, note: &str) -> Self;
}

/// Runs `attempt` until it succeeds, fails for good, or the current [`Deadline`] passes,
/// pausing between attempts with the jittered backoff the Kubernetes client uses. Every
/// attempt builds its request anew (a signature is made per request, with the current
/// time). When retrying stops, the last transient error says why; an attempt the deadline
/// cut short reports the failure before it rather than a bare "timed out". `what` names the
/// operation in the debug log.
pub async fn retry<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Deadline::current();
    let started = Instant::now();
    let mut failed: Option<E> = None;
    let mut attempts = 0u32;
    loop {
        let outcome = deadline.within(attempt()).await;
        attempts += 1;
        let gave_up = |error: E, why: &str| {
            error.noting(&format!("gave up after {attempts} attempts in {}s: {why}", started.elapsed().as_secs()))
        };
        let error = match outcome {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() => e,
            Err(e) => match (e.interrupted(), failed.take()) {
                (Some(Interrupted::Expired { budget }), Some(previous)) => {
                    return Err(gave_up(previous, &format!("the {} timeout passed", humantime::format_duration(budget))))
                }
                _ => return Err(e),
            },
        };
        let pause = crate::clients::kube::retry::backoff(attempts - 1);
        let out_of_time = || format!("the next would outlast the {} timeout", humantime::format_duration(deadline.budget()));
        if pause >= deadline.remaining() {
            return Err(gave_up(error, &out_of_time()));
        }
        tracing::debug!(what, error = %error, attempt = attempts, "transient failure; retrying");
        deadline.note_retry();
        match deadline.sleep(pause).await {
            Ok(()) => failed = Some(error),
            Err(Interrupted::Cancelled) => return Err(Interrupted::Cancelled.into()),
            Err(Interrupted::Expired { .. }) => return Err(gave_up(error, &out_of_time())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleep_stops_at_the_deadline() {
        let deadline = Deadline::after(Duration::from_secs(5), CancellationToken::new());
        assert_eq!(deadline.sleep(Duration::from_secs(2)).await, Ok(()));
        let started = Instant::now();
        assert_eq!(deadline.sleep(Duration::from_secs(60)).await, Err(Interrupted::Expired { budget: Duration::from_secs(5) }));
        assert_eq!(started.elapsed(), Duration::from_secs(3), "slept exactly to the deadline, not past it");
        assert!(deadline.check().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_interrupts_sleep_and_run() {
        let token = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(600), token.clone());
        let canceller = {
            let token = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                token.cancel();
            })
        };
        let started = Instant::now();
        let result: Result<(), Interrupted> = deadline.run(std::future::pending()).await;
        assert_eq!(result, Err(Interrupted::Cancelled));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(deadline.sleep(Duration::from_millis(1)).await, Err(Interrupted::Cancelled));
        canceller.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn run_makes_the_deadline_current_for_the_work_only() {
        assert!(!Deadline::is_set());
        let deadline = Deadline::after(Duration::from_secs(7), CancellationToken::new());
        let seen: Result<Duration, Interrupted> = deadline.run(async { Ok(Deadline::current().budget()) }).await;
        assert_eq!(seen, Ok(Duration::from_secs(7)));
        assert_eq!(Deadline::current().budget(), DEFAULT_BUDGET);
        // Retries noted through the current deadline count on the operation's deadline.
        let _: Result<(), Interrupted> = deadline.run(async {
            Deadline::current().note_retry();
            Deadline::current().note_retry();
            Ok(())
        })
        .await;
        assert_eq!(deadline.retries(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn run_times_out_with_the_budget_in_the_error() {
        let deadline = Deadline::after(Duration::from_secs(3), CancellationToken::new());
        let result: Result<(), String> = deadline.run(std::future::pending()).await;
        assert_eq!(result.unwrap_err(), "timed out after 3s");
    }

    #[tokio::test(start_paused = true)]
    async fn poll_names_what_it_waited_for_and_the_last_status() {
        let deadline = Deadline::after(Duration::from_secs(10), CancellationToken::new());
        let mut calls = 0;
        let err = deadline
            .poll("Deployment a/b to be rolled out", Duration::from_secs(1), || {
                calls += 1;
                let n = calls;
                async move { if n % 2 == 1 { Err("connection refused") } else { Ok(Progress::Pending(format!("{n} pods updated"))) } }
            })
            .await
            .unwrap_err();
        // Checks at 0 s, 1 s, ... 9 s; at 10 s the budget is spent.
        assert_eq!(
            err.to_string(),
            "timed out after 10s waiting for Deployment a/b to be rolled out; last status: 10 pods updated"
        );
        assert_eq!(calls, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn poll_ends_on_done_and_on_failure() {
        let deadline = Deadline::after(Duration::from_secs(10), CancellationToken::new());
        let mut calls = 0;
        let done = deadline
            .poll("x", Duration::from_millis(500), || {
                calls += 1;
                let n = calls;
                async move { Ok::<_, String>(if n == 3 { Progress::Done } else { Progress::Pending("no".into()) }) }
            })
            .await;
        assert_eq!(done, Ok(()));
        let failed = deadline
            .poll("HelmRelease a/b to be Ready", Duration::from_millis(500), || async {
                Ok::<_, String>(Progress::Failed("InstallFailed: boom".into()))
            })
            .await
            .unwrap_err();
        assert_eq!(failed.to_string(), "HelmRelease a/b to be Ready: failed: InstallFailed: boom");
    }

    #[tokio::test(start_paused = true)]
    async fn poll_reports_cancellation_with_the_last_status() {
        let token = CancellationToken::new();
        let deadline = Deadline::after(Duration::from_secs(600), token.clone());
        let mut calls = 0;
        let err = deadline
            .poll("namespace x to be deleted", Duration::from_secs(1), || {
                calls += 1;
                if calls == 2 {
                    token.cancel();
                }
                async { Ok::<_, String>(Progress::Pending("Terminating".into())) }
            })
            .await
            .unwrap_err();
        assert_eq!(err, WaitError::Cancelled { what: "namespace x to be deleted".into(), last: "Terminating".into() });
    }
}
