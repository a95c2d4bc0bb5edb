//! The contract between the Coordinator and any worker actor: the messages
//! ([`RegisterWorker`], [`RunTask`], and [`TaskFinished`] carrying [`Done`] or
//! [`TaskError`]), the options every worker needs ([`FetchOptions`]), and the failure
//! model they share: what is retried and how long to wait ([`Retries`]), and how a run
//! is cancelled ([`Cancel`]). Imports no actor: workers and the Coordinator depend on
//! this, never on each other.
//!
//! A new kind of worker implements `Handler<RunTask>`, reports through a
//! `Recipient<TaskFinished>`, and is registered with [`RegisterWorker`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use actix::{Message, Recipient};
use backon::{BackoffBuilder, ExponentialBuilder};
use url::Url;

use crate::html::ExtractRules;
use crate::net::politeness::HostGate;
// The task types are pure (no actix): the frontier and the stores use them from there.
pub use crate::task::{Done, ImageTask, PageKind, TOO_MANY_OPEN_FILES, Task, TaskError, TaskId, host_of};

/// Command: do this task, then report `TaskFinished` with the same id.
#[derive(Debug)]
pub struct RunTask {
    pub id: TaskId,
    pub task: Task,
}

impl Message for RunTask {
    type Result = ();
}

/// Command: add a worker that can hold `capacity` tasks at once. For a `SyncArbiter` pool
/// that is its thread count (its threads share one mailbox); for an async worker it is
/// how many requests it may keep in flight.
pub struct RegisterWorker {
    pub tasks: Recipient<RunTask>,
    pub capacity: usize,
}

impl Message for RegisterWorker {
    type Result = ();
}

/// Event: a worker finished the task it was handed as `id`.
#[derive(Debug)]
pub struct TaskFinished {
    pub id: TaskId,
    pub outcome: Result<Done, TaskError>,
    /// Requests made, retries included.
    pub attempts: u32,
}

impl Message for TaskFinished {
    type Result = ();
}

/// What every worker needs to know about the run; shared read-only by all of them.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Where images end up (their names are chosen by the Coordinator).
    pub store: Arc<dyn crate::store::Store>,
    pub extract: ExtractRules,
    /// Connect timeout, and the longest wait for response headers or for the next piece
    /// of a body, so a stalled server cannot hang the run.
    pub timeout: Duration,
    pub user_agent: String,
    /// Sent with every request (`HEADERS`, cookies).
    pub headers: Vec<(String, String)>,
    /// Send an image's page as its Referer.
    pub send_referer: bool,
    /// A listing page is held in memory to parse it; this caps it.
    pub max_page_bytes: u64,
    /// An image larger than this fails (by Content-Length, or while streaming).
    pub max_image_bytes: u64,
    /// Images outside these (`--min-size`, `--max-size`) are skipped, not saved.
    pub min_wanted_bytes: Option<u64>,
    pub max_wanted_bytes: Option<u64>,
    /// Compute each image's SHA-256 (for the .jsonl manifest); off otherwise, it costs CPU.
    pub hash: bool,
    /// Requests one async worker keeps in flight; sizes its connection pool.
    pub concurrency: usize,
    pub retries: Retries,
    /// Tripped on SIGINT/SIGTERM: workers stop waiting and drop what they are writing.
    pub cancel: Cancel,
    /// When each request may go, per host; shared by every worker of the run.
    pub gate: Arc<HostGate>,
    /// Which proxy each request goes through: a transport matter, per request. The gate
    /// and the Coordinator's limits still go by the target's host.
    pub proxies: Arc<crate::net::proxy::Proxies>,
    /// `RENDER`: which pages go through the browser after their static fetch.
    pub render: crate::render::Policy,
    /// The browser, when rendering is on and there is one; `None` with `auto` and no
    /// browser: pages that wanted a render say so instead.
    pub renderer: Option<Arc<dyn crate::render::Render>>,
}

impl FetchOptions {
    /// Options writing into `out` (with no resume record) with `extract` and every other
    /// knob at its default: 30 s timeouts, no retries, no limits beyond the default caps,
    /// no headers.
    pub fn defaults(out: &crate::outdir::OutDir, extract: ExtractRules) -> Self {
        let store = crate::store::folder::FolderStore::new(out.clone(), crate::state::Resume::none());
        Self::new(Arc::new(store), extract)
    }

    /// Options storing into `store`, everything else as [`FetchOptions::defaults`].
    pub fn new(store: Arc<dyn crate::store::Store>, extract: ExtractRules) -> Self {
        Self {
            store,
            extract,
            timeout: Duration::from_secs(30),
            user_agent: default_user_agent(),
            headers: Vec::new(),
            send_referer: true,
            max_page_bytes: MAX_PAGE_BYTES,
            max_image_bytes: DEFAULT_MAX_IMAGE_BYTES,
            min_wanted_bytes: None,
            max_wanted_bytes: None,
            hash: false,
            concurrency: 16,
            retries: Retries { times: 0, base: Duration::ZERO, max_wait: Duration::ZERO },
            cancel: Cancel::default(),
            gate: Arc::new(HostGate::open()),
            // Never the environment's: tests and library callers opt in.
            proxies: Arc::new(crate::net::proxy::Proxies::none()),
            // No browser unless asked for: tests and library callers opt in.
            render: crate::render::Policy::Never,
            renderer: None,
        }
    }

    /// The headers for a request for `task`, besides the User-Agent: the user's, the
    /// codings we decode (unless the user set their own), and the Referer.
    pub fn headers_for<'a>(&'a self, task: &'a Task) -> impl Iterator<Item = (&'a str, &'a str)> {
        let referer = match task {
            Task::Image(ImageTask { referer: Some(page), .. }) if self.send_referer => {
                Some(("Referer", page.as_str()))
            }
            _ => None,
        };
        let own_encoding = self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("accept-encoding"));
        let encoding = (!own_encoding).then_some(("Accept-Encoding", crate::fetch::decode::ACCEPT_ENCODING));
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(encoding).chain(referer)
    }
}

/// Identifies the tool, as robots.txt and site owners expect.
pub fn default_user_agent() -> String {
    format!("image-scraper/{} (+https://crates.io/crates/image-scraper)", env!("CARGO_PKG_VERSION"))
}

/// An image larger than this fails unless `MAX_IMAGE_BYTES` says otherwise.
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 100 * 1024 * 1024;

/// Default cap on a listing page: generous for any gallery, small enough to hold.
pub const MAX_PAGE_BYTES: u64 = 32 * 1024 * 1024;

/// Retry policy: exponential backoff with jitter (backon), Retry-After honoured up to a
/// ceiling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retries {
    /// Further attempts after the first (`RETRIES`).
    pub times: u32,
    /// First backoff; it doubles each time, plus up to 100% jitter.
    pub base: Duration,
    /// Ceiling for a backoff and for a server's Retry-After.
    pub max_wait: Duration,
}

impl Retries {
    /// The waits before each retry, in order; empty when retries are off.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::new()
            .with_min_delay(self.base)
            .with_max_delay(self.max_wait)
            .with_factor(2.0)
            .with_max_times(self.times as usize)
            .with_jitter()
            .build()
    }

    /// How long to wait after `err`, given the backoff's own `delay`: the server's
    /// Retry-After when it sent one, never more than the ceiling.
    pub fn wait(&self, err: &TaskError, delay: Duration) -> Duration {
        err.retry_after().unwrap_or(delay).min(self.max_wait)
    }
}

/// What a worker does after a failed attempt at a task on `host`: nothing more (not
/// retryable, or out of retries), or try again once the gate lets it. A 429 or 503
/// pauses the whole host, not just this task.
pub fn plan_retry(
    opts: &FetchOptions,
    host: &str,
    err: &TaskError,
    delays: &mut impl Iterator<Item = Duration>,
) -> Option<Duration> {
    if !err.is_retryable() || opts.cancel.is_cancelled() {
        return None;
    }
    let wait = opts.retries.wait(err, delays.next()?);
    if let TaskError::Status { code: code @ (429 | 503), retry_after } = err {
        let reason = match retry_after {
            Some(_) => format!("{code} Retry-After"),
            None => code.to_string(),
        };
        opts.gate.pause(host, wait, &reason);
        return Some(Duration::ZERO);
    }
    Some(wait)
}

/// A run-wide cancellation flag both worker kinds can wait on: blocking threads through
/// a condition variable, async tasks through a `Notify`.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    flag: AtomicBool,
    /// Threads inside `sleep_blocking`'s wait, counted under `lock` (so a test can tell
    /// a sleeper is really asleep).
    lock: Mutex<usize>,
    condvar: Condvar,
    notify: tokio::sync::Notify,
}

impl Cancel {
    pub fn cancel(&self) {
        let inner = &self.0;
        inner.flag.store(true, Ordering::SeqCst);
        let _guard = inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        inner.condvar.notify_all();
        inner.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst)
    }

    /// Sleeps `duration` on this thread; returns false (early) if cancelled.
    pub fn sleep_blocking(&self, duration: Duration) -> bool {
        self.sleep_blocking_for(duration).0
    }

    /// `sleep_blocking`, also telling whether the whole `duration` passed.
    fn sleep_blocking_for(&self, duration: Duration) -> (bool, bool) {
        let inner = &self.0;
        let mut guard = inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        *guard += 1;
        let (mut guard, result) = inner
            .condvar
            .wait_timeout_while(guard, duration, |_| !inner.flag.load(Ordering::SeqCst))
            .unwrap_or_else(|e| e.into_inner());
        *guard -= 1;
        (!self.is_cancelled(), result.timed_out())
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        let notified = self.0.notify.notified();
        let mut notified = std::pin::pin!(notified);
        // Register before checking the flag, so a cancel in between is not missed.
        notified.as_mut().enable();
        if self.is_cancelled() {
            return;
        }
        notified.await;
    }
}

/// Redirects a worker hands back rather than follows (see [`Done::Moved`]).
pub const MAX_REDIRECTS: u8 = 10;

/// Where a redirect response points: `None` for a status that is no redirect. The target
/// must be an http(s) URL; a redirect without a usable Location is a failure.
pub fn redirect_target(from: &Url, status: u16, location: Option<&str>) -> Result<Option<Url>, TaskError> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let location = location.ok_or_else(|| TaskError::status(status))?;
    let target = from.join(location.trim()).map_err(|_| TaskError::status(status))?;
    if !matches!(target.scheme(), "http" | "https") || target.host_str().is_none() {
        let shown: String = location.chars().take(80).collect();
        return Err(TaskError::RedirectNotHttp(shown));
    }
    Ok(Some(target))
}

/// 2xx is success; anything else (a 3xx that is no redirect we follow included) is a
/// failure carrying its status and the server's Retry-After.
pub fn check_status(status: u16, retry_after: Option<&str>) -> Result<(), TaskError> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let retry_after = retry_after.and_then(crate::fetch::validate::parse_retry_after);
        Err(TaskError::Status { code: status, retry_after })
    }
}

/// A body that ends before its Content-Length is truncated, not complete.
pub fn check_length(expected: Option<u64>, received: u64) -> Result<(), TaskError> {
    match expected {
        Some(n) if n != received => {
            Err(TaskError::Transfer(format!("body ended after {received} of {n} bytes")))
        }
        _ => Ok(()),
    }
}

/// Content-Length when it counts the bytes we save: not when the body was encoded (gzip,
/// br), since the decoded bytes are what is saved.
pub fn plain_length(content_encoding: Option<&str>, content_length: Option<&str>) -> Option<u64> {
    if !crate::fetch::decode::is_plain(content_encoding) {
        return None;
    }
    content_length?.trim().parse().ok()
}

/// Refuses an image whose announced size is over the limit before any byte is written.
pub fn check_announced_size(content_length: Option<u64>, max: u64) -> Result<(), TaskError> {
    match content_length {
        Some(n) if n > max => Err(TaskError::TooLarge(max)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_retry_after_wins_up_to_the_ceiling() {
        let r = Retries { times: 3, base: Duration::from_millis(100), max_wait: Duration::from_secs(5) };
        let delays: Vec<Duration> = r.delays().collect();
        assert_eq!(delays.len(), 3);
        for (i, d) in delays.iter().enumerate() {
            let floor = Duration::from_millis(100 << i);
            assert!(*d >= floor && *d <= floor * 2, "{i}: {d:?}");
        }
        let plain = TaskError::status(503);
        assert_eq!(r.wait(&plain, Duration::from_millis(300)), Duration::from_millis(300));
        let told = TaskError::Status { code: 429, retry_after: Some(Duration::from_secs(2)) };
        assert_eq!(r.wait(&told, Duration::from_millis(300)), Duration::from_secs(2));
        let greedy = TaskError::Status { code: 429, retry_after: Some(Duration::from_secs(3600)) };
        assert_eq!(r.wait(&greedy, Duration::from_millis(300)), Duration::from_secs(5));
        let none = Retries { times: 0, ..r };
        assert_eq!(none.delays().count(), 0);
    }

    #[test]
    fn cancel_wakes_a_sleeping_thread() {
        let cancel = Cancel::default();
        let sleeper = {
            let cancel = cancel.clone();
            std::thread::spawn(move || cancel.sleep_blocking_for(Duration::from_secs(3600)))
        };
        // Only once the thread is inside the wait (it counts itself under the lock) does
        // the cancel go: a cancel landing before the sleep would prove nothing.
        while *cancel.0.lock.lock().unwrap() == 0 {
            std::thread::yield_now();
        }
        cancel.cancel();
        let (running, timed_out) = sleeper.join().unwrap();
        assert!(!timed_out, "woken by the cancel, not by the end of its hour");
        assert!(!running, "and told it was cancelled");
        assert_eq!(
            cancel.sleep_blocking_for(Duration::from_secs(3600)),
            (false, false),
            "already cancelled: no wait"
        );
    }

    #[actix::test]
    async fn cancel_wakes_a_waiting_task() {
        let cancel = Cancel::default();
        let waiter = actix_rt::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        actix_rt::task::yield_now().await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(10), cancel.cancelled()).await.unwrap();
    }

    #[test]
    fn redirects_must_point_to_http() {
        let from = Url::parse("https://h.test/a/b.jpg").unwrap();
        let to = |status, location| redirect_target(&from, status, location);
        assert_eq!(to(200, Some("/x")), Ok(None));
        assert_eq!(to(302, Some("../c.jpg")).unwrap().unwrap().as_str(), "https://h.test/c.jpg");
        assert_eq!(to(301, Some("http://other.test/d")).unwrap().unwrap().as_str(), "http://other.test/d");
        for bad in ["ftp://h.test:21/x", "file:///etc/passwd", "data:image/png;base64,AA", "javascript:x"] {
            assert!(matches!(to(307, Some(bad)), Err(TaskError::RedirectNotHttp(_))), "{bad}");
        }
        assert_eq!(to(302, None), Err(TaskError::status(302)));
        assert_eq!(to(304, Some("/x")), Ok(None), "not a redirect to follow");
    }
}
