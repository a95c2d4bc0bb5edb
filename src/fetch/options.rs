//! What every worker needs to know about the run ([`FetchOptions`]), and the retry
//! policy the fetch core follows: what is retried and how long to wait ([`Retries`],
//! [`plan_retry`]).

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::fetch::dimensions::DimensionFilter;
use crate::html::ExtractRules;
use crate::net::politeness::HostGate;
use crate::store::Store;
use crate::task::{ImageTask, Task, TaskError};
use crate::work::Cancel;

/// What every worker needs to know about the run; shared read-only by all of them.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Where images end up (their names are chosen by the Coordinator).
    pub store: Arc<dyn Store>,
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
    /// Images whose header shows other dimensions (`MIN_WIDTH`, `MIN_HEIGHT`,
    /// `MAX_ASPECT`) are cut off there and skipped.
    pub dimensions: DimensionFilter,
    /// Honour a response's `X-Robots-Tag: noai`... (off with `--ignore-robots`, as
    /// robots.txt is): such an image is skipped before any byte of it is stored.
    pub obey_opt_outs: bool,
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
    /// Options storing into `store` with `extract` and every other knob at its default:
    /// 30 s timeouts, no retries, no limits beyond the default caps, no headers.
    pub fn new(store: Arc<dyn Store>, extract: ExtractRules) -> Self {
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
            dimensions: DimensionFilter::default(),
            // The site's wish, as robots.txt's: honoured unless the caller says otherwise.
            obey_opt_outs: true,
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
}
