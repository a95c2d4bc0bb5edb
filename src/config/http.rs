//! How each request is made and paced: concurrency, the per-host rate, timeouts, retries,
//! size cap, User-Agent, headers and cookies, robots.txt and the Referer.

use std::time::Duration;

use anyhow::bail;

use super::in_range;

use super::defaults::{
    DEFAULT_CONCURRENCY, DEFAULT_MAX_IMAGE_BYTES, DEFAULT_PER_HOST_CONCURRENCY, DEFAULT_RETRIES,
    DEFAULT_RETRY_BACKOFF_MS, DEFAULT_RETRY_MAX_WAIT_SECS, DEFAULT_TIMEOUT_SECS, default_user_agent,
};
use crate::cli::Cli;
use crate::fetch::options::Retries;
use crate::settings::Settings;

/// The request keys, each range-checked: a part of [`Config`](super::Config) built on its
/// own so the checks sit next to the keys they check.
#[derive(Debug, Clone)]
pub struct Requests {
    /// `CONCURRENCY`: requests in flight per async worker.
    pub concurrency: usize,
    /// `PER_HOST_CONCURRENCY`: requests in flight per host, across all workers.
    pub per_host_concurrency: usize,
    /// `DELAY_MS` or `REQUESTS_PER_SECOND`; `None`: no rate limit.
    pub host_interval: Option<Duration>,
    /// `DELAY_JITTER_MS`: so requests to one host do not fall in lockstep.
    pub host_jitter: Duration,
    /// `--ignore-robots`, `OBEY_ROBOTS`.
    pub obey_robots: bool,
    /// `TIMEOUT_SECS`.
    pub timeout: Duration,
    /// `USER_AGENT`, checked printable, since every client refuses otherwise.
    pub user_agent: String,
    /// `HEADERS`, and `Cookie` from `COOKIES`.
    pub headers: Vec<(String, String)>,
    /// `SEND_REFERER`.
    pub send_referer: bool,
    /// `RETRIES`, `RETRY_BACKOFF_MS`, `RETRY_MAX_WAIT_SECS`.
    pub retries: Retries,
    /// `MAX_IMAGE_BYTES`.
    pub max_image_bytes: u64,
}

/// The request keys, with their defaults; the first bad one, named, stops the run.
pub(super) fn resolve(settings: &Settings, cli: &Cli) -> anyhow::Result<Requests> {
    let key = |name: &str| settings.origin(name);
    let s = &settings.section;
    let concurrency = in_range(key("CONCURRENCY"), s.concurrency.unwrap_or(DEFAULT_CONCURRENCY), 1..=1024)?;
    let per_host_concurrency = in_range(
        key("PER_HOST_CONCURRENCY"),
        s.per_host_concurrency.unwrap_or(DEFAULT_PER_HOST_CONCURRENCY),
        1..=4096,
    )?;
    let (host_interval, host_jitter) = resolve_rate(settings)?;
    let timeout_secs = s.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(timeout_secs > 0.0 && timeout_secs <= 86_400.0) {
        bail!("{}: must be more than 0 and at most 86400, got {timeout_secs}", key("TIMEOUT_SECS"));
    }
    let retries = resolve_retries(settings)?;
    let max_image_bytes = s.max_image_bytes.unwrap_or(DEFAULT_MAX_IMAGE_BYTES);
    if max_image_bytes == 0 {
        bail!("{}: must be at least 1", key("MAX_IMAGE_BYTES"));
    }
    let user_agent = s.user_agent.clone().unwrap_or_else(default_user_agent);
    if user_agent.trim().is_empty() || !is_header_text(&user_agent) {
        bail!("{}: must be non-empty printable ASCII", key("USER_AGENT"));
    }
    let headers = resolve_headers(settings)?;
    Ok(Requests {
        concurrency,
        per_host_concurrency,
        host_interval,
        host_jitter,
        obey_robots: !cli.ignore_robots && s.obey_robots.unwrap_or(true),
        timeout: Duration::from_secs_f64(timeout_secs),
        user_agent,
        headers,
        send_referer: s.send_referer.unwrap_or(true),
        retries,
        max_image_bytes,
    })
}

/// `DELAY_MS` or `REQUESTS_PER_SECOND` (one least time between two requests to a host,
/// said two ways, so never both), and `DELAY_JITTER_MS`.
fn resolve_rate(settings: &Settings) -> anyhow::Result<(Option<Duration>, Duration)> {
    let key = |name: &str| settings.origin(name);
    let s = &settings.section;
    let host_interval = match (s.delay_ms, s.requests_per_second) {
        (Some(_), Some(_)) => {
            bail!("{}: set DELAY_MS or REQUESTS_PER_SECOND, not both", key("REQUESTS_PER_SECOND"))
        }
        (Some(ms), None) if ms > 3_600_000 => {
            bail!("{}: must be at most 3600000, got {ms}", key("DELAY_MS"))
        }
        (Some(ms), None) => Some(Duration::from_millis(ms)).filter(|d| !d.is_zero()),
        (None, Some(rps)) if !(rps > 0.0 && rps <= 1_000_000.0) => {
            bail!("{}: must be more than 0, got {rps}", key("REQUESTS_PER_SECOND"))
        }
        (None, Some(rps)) => Some(Duration::from_secs_f64(1.0 / rps)),
        (None, None) => None,
    };
    let jitter_ms = s.delay_jitter_ms.unwrap_or(0);
    if jitter_ms > 3_600_000 {
        bail!("{}: must be at most 3600000, got {jitter_ms}", key("DELAY_JITTER_MS"));
    }
    Ok((host_interval, Duration::from_millis(jitter_ms)))
}

/// `RETRIES`, `RETRY_BACKOFF_MS`, `RETRY_MAX_WAIT_SECS`.
fn resolve_retries(settings: &Settings) -> anyhow::Result<Retries> {
    let key = |name: &str| settings.origin(name);
    let s = &settings.section;
    let retries = s.retries.unwrap_or(DEFAULT_RETRIES);
    if retries > 100 {
        bail!("{}: must be at most 100, got {retries}", key("RETRIES"));
    }
    let backoff_ms = s.retry_backoff_ms.unwrap_or(DEFAULT_RETRY_BACKOFF_MS);
    if backoff_ms > 3_600_000 {
        bail!("{}: must be at most 3600000, got {backoff_ms}", key("RETRY_BACKOFF_MS"));
    }
    let max_wait = in_range(
        key("RETRY_MAX_WAIT_SECS"),
        s.retry_max_wait_secs.unwrap_or(DEFAULT_RETRY_MAX_WAIT_SECS),
        0.0..=86_400.0,
    )?;
    Ok(Retries {
        times: retries,
        base: Duration::from_millis(backoff_ms),
        max_wait: Duration::from_secs_f64(max_wait),
    })
}

/// `HEADERS`, then `COOKIES` as one `Cookie` header: checked here, so a bad name or value
/// is named at start instead of failing every request.
fn resolve_headers(settings: &Settings) -> anyhow::Result<Vec<(String, String)>> {
    let s = &settings.section;
    let mut headers = Vec::new();
    for (name, value) in s.headers.iter().flatten() {
        if !is_token(name) || !is_header_text(value) {
            bail!("{}: {name:?}: not a valid header name and value", settings.origin("HEADERS"));
        }
        headers.push((name.clone(), value.clone()));
    }
    let mut cookies = Vec::new();
    for (name, value) in s.cookies.iter().flatten() {
        let value_ok = value.bytes().all(|b| b.is_ascii_graphic() && !b"\",;\\".contains(&b));
        if !is_token(name) || !value_ok {
            bail!("{}: {name:?}: not a valid cookie name and value", settings.origin("COOKIES"));
        }
        cookies.push(format!("{name}={value}"));
    }
    if !cookies.is_empty() {
        headers.push(("Cookie".into(), cookies.join("; ")));
    }
    Ok(headers)
}

/// An HTTP token: a header or cookie name.
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Printable ASCII (and spaces): what every client sends without complaint.
fn is_header_text(text: &str) -> bool {
    text.chars().all(|c| c == ' ' || c.is_ascii_graphic())
}
