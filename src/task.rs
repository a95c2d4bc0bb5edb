//! What a task is, what it produced and why it failed: [`Task`], [`Done`], [`TaskError`].
//! Pure (no actix, no config): the frontier, the stores and the fetch core use these
//! without reaching the actor contract in `work`, which re-exports them.

use std::time::Duration;

use url::Url;

use crate::counts::{ImageInfo, RenderNote, SkipReason};
use crate::html::PageScan;
use crate::robots::Rules;

/// Identifies a task from hand-out to acknowledgement; unique within a run.
pub type TaskId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Fetch an origin's robots.txt (before anything else is fetched from it).
    Robots { url: Url },
    /// Fetch a page and scan it for images: a listing page, or a detail page one of them
    /// links to (`kind`).
    Page {
        /// The listing page's number; a detail page's is that of the listing page that
        /// linked to it.
        number: u32,
        url: Url,
        /// Which scan the page gets: a detail page yields its largest image and leads
        /// nowhere further.
        kind: PageKind,
    },
    /// Download an image into the out dir.
    Image(ImageTask),
    /// `--dry-run`: ask (a HEAD) whether a link target a thumbnail stands in for is an
    /// image or a page (a wiki's `File:` page ends in `.png` too), so the list holds what
    /// a real run would download, and `--urls` can read it back.
    Probe { url: Url },
}

impl Task {
    /// Listing page `number` at `url`.
    pub fn listing(number: u32, url: Url) -> Self {
        Task::Page { number, url, kind: PageKind::Listing }
    }

    pub fn url(&self) -> &Url {
        match self {
            Task::Robots { url } | Task::Page { url, .. } | Task::Probe { url } => url,
            Task::Image(image) => &image.url,
        }
    }
}

/// What a page is to the walk, so the worker knows which scan it gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// A page of the gallery's listing: its images, page count, next link, detail links.
    #[default]
    Listing,
    /// A page per image (reached by a `DETAIL_SELECTOR` link): its image, nothing more.
    Detail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTask {
    pub url: Url,
    /// The bare, safe file name chosen by the Coordinator.
    pub name: String,
    /// The file at `name` is ours (the resume record says this URL wrote it) and may be
    /// replaced. Otherwise a file found there is never overwritten: the download is kept
    /// there only if identical, and goes to a name suffixed from the URL if not.
    pub overwrite: bool,
    /// The page it was found on, sent as Referer.
    pub referer: Option<Url>,
}

/// What a successful task produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// The server redirected a page or image here (an http(s) URL): the Coordinator
    /// decides whether to follow, with the host filter, robots.txt and the per-host
    /// limit applied to the target as to any URL.
    Moved(Url),
    Robots(Rules),
    /// A page's images and links, and how a render of it went when it wanted one.
    Page(PageScan, Option<Box<RenderNote>>),
    /// The image is complete on disk under `name` with `bytes` bytes (and this SHA-256,
    /// when a manifest asked for it).
    Image {
        bytes: u64,
        name: String,
        sha256: Option<String>,
        /// Where the bytes came from and what they are, for the manifest: `final_url` is
        /// the URL fetched (the Coordinator nulls it when it is the item's own).
        info: ImageInfo,
    },
    /// A probed link target: false when the server says it is not an image (its
    /// Content-Type is not `image/*`).
    Probed {
        image: bool,
    },
}

/// How an EMFILE/ENFILE is told, with what to do: what a task failed by one says.
pub const TOO_MANY_OPEN_FILES: &str = "too many open files (raise ulimit -n, or lower -p/CONCURRENCY)";

/// Why a task failed. Callers branch on the variant ([`TaskError::is_retryable`]); the
/// text is what the log and the report show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("HTTP status {code}")]
    Status {
        code: u16,
        /// The server's Retry-After, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error("connection failed: {0}")]
    Connect(String),
    /// The TLS handshake failed: most often the server's certificate was refused (expired,
    /// unknown issuer, another name). Not retried: another try meets the same certificate.
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection broke or the body ended early.
    #[error("transfer failed: {0}")]
    Transfer(String),
    #[error("cannot decode the body: {0}")]
    Decode(String),
    #[error("too many redirects")]
    Redirects,
    /// A redirect to `ftp:`, `file:`, `data:`...: never followed (awc would have spoken
    /// HTTP to an FTP port).
    #[error("redirect to a non-HTTP URL: {0}")]
    RedirectNotHttp(String),
    /// A redirect to a host the image host filter (`IMAGE_HOST`) does not take.
    #[error("redirect to a host outside IMAGE_HOST: {0}")]
    RedirectOffHost(String),
    /// The server's Retry-After was longer than `RETRY_MAX_WAIT_SECS`: not waited.
    #[error("server asked to wait {secs} s (HTTP status {code})")]
    WaitTooLong { code: u16, secs: u64 },
    #[error("larger than the {0}-byte limit")]
    TooLarge(u64),
    #[error("not an image: {0}")]
    NotAnImage(String),
    #[error("cannot write the file: {0}")]
    Write(String),
    /// No space, no quota, or a read-only file system: every other image would fail the
    /// same way, so the run stops.
    #[error("disk full: {0}")]
    DiskFull(String),
    #[error("worker failed: {0}")]
    Worker(String),
    /// The request's proxy setting cannot be used (`proxy::Unusable`): not retried, every
    /// try would meet the same setting.
    #[error("{0}")]
    Proxy(String),
    #[error("interrupted")]
    Interrupted,
    /// The frontier (where the work is kept) failed: the run stops.
    #[error("{0}")]
    Frontier(String),
    /// The page was to be rendered and the render failed (`render::RenderError`'s
    /// words). Not retried here: the renderer already gave a dead browser a second try.
    #[error("render failed: {0}")]
    Render(String),
    /// Not an error: a filter (`--min-size`, `MIN_WIDTH`...) or the server's opt-out
    /// does not want it. Counted as skipped under its kind, with this reason: the kind
    /// travels with it so the Coordinator counts it where the end of the run can say
    /// which setting took it.
    #[error("{1}")]
    Unwanted(SkipReason, String),
}

impl TaskError {
    pub fn status(code: u16) -> Self {
        Self::Status { code, retry_after: None }
    }

    /// EMFILE or ENFILE, from a socket or a file: said with what to do, and retried (files
    /// free up as other requests end), never read as the server's failure.
    pub fn too_many_open_files() -> Self {
        Self::Connect(TOO_MANY_OPEN_FILES.into())
    }

    /// A failed handshake with `url`'s host, `reason` in words (see `tls::refusal`).
    pub fn tls(url: &Url, reason: String) -> Self {
        Self::Tls { host: url.host_str().unwrap_or_default().to_string(), reason }
    }

    pub fn write(err: std::io::Error) -> Self {
        use std::io::ErrorKind::{QuotaExceeded, ReadOnlyFilesystem, StorageFull};
        if crate::limits::is_too_many_open_files(&err) {
            return Self::too_many_open_files();
        }
        match err.kind() {
            StorageFull | QuotaExceeded | ReadOnlyFilesystem => Self::DiskFull(err.to_string()),
            _ => Self::Write(err.to_string()),
        }
    }

    /// What a failure is reported as once no retry is left: a Retry-After beyond the
    /// ceiling (which was not waited) says so.
    pub fn settle(self, max_wait: Duration) -> Self {
        match self {
            Self::Status { code, retry_after: Some(wait) } if wait > max_wait => {
                Self::WaitTooLong { code, secs: wait.as_secs() }
            }
            other => other,
        }
    }

    /// Connection errors, timeouts, a broken body, 5xx, 408 and 429 may succeed on
    /// another try; anything else will fail the same way again (a refused certificate
    /// too: retrying it only delays the error).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { code, .. } => *code >= 500 || *code == 408 || *code == 429,
            Self::Connect(_) | Self::Timeout(_) | Self::Transfer(_) => true,
            _ => false,
        }
    }

    /// A failure on this side of the connection: the proxy, or this machine's open-files
    /// limit. It says nothing about the site, so advice about the site (`--ignore-robots`)
    /// would point the wrong way. The proxy's failures are the texts `Proxy::failure`
    /// makes (they reach us through the clients' own error types as text).
    pub fn is_local(&self) -> bool {
        match self {
            Self::Proxy(_) => true,
            Self::Connect(why) | Self::Transfer(why) => {
                why.starts_with("proxy ") || why.contains(TOO_MANY_OPEN_FILES)
            }
            _ => false,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The host part a task is gated on.
pub fn host_of(url: &Url) -> &str {
    url.host_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried() {
        for code in [500, 502, 503, 408, 429] {
            assert!(TaskError::status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 410] {
            assert!(!TaskError::status(code).is_retryable(), "{code}");
        }
        assert!(TaskError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(TaskError::Transfer("reset".into()).is_retryable());
        assert!(!TaskError::NotAnImage("text/html".into()).is_retryable());
        assert!(!TaskError::TooLarge(1).is_retryable());
        assert!(!TaskError::Interrupted.is_retryable());
    }

    #[test]
    fn a_retry_after_past_the_ceiling_is_named_when_it_fails() {
        let cap = Duration::from_secs(60);
        let long = TaskError::Status { code: 503, retry_after: Some(Duration::from_secs(100_000)) };
        assert_eq!(long.settle(cap).to_string(), "server asked to wait 100000 s (HTTP status 503)");
        let short = TaskError::Status { code: 503, retry_after: Some(Duration::from_secs(5)) };
        assert_eq!(short.clone().settle(cap), short);
    }

    #[test]
    fn a_full_disk_is_told_apart_from_other_write_errors() {
        use std::io::{Error, ErrorKind};
        for kind in [ErrorKind::StorageFull, ErrorKind::QuotaExceeded, ErrorKind::ReadOnlyFilesystem] {
            assert!(matches!(TaskError::write(Error::from(kind)), TaskError::DiskFull(_)), "{kind:?}");
        }
        assert!(matches!(TaskError::write(Error::from_raw_os_error(28)), TaskError::DiskFull(_)), "ENOSPC");
        let emfile = TaskError::write(Error::from_raw_os_error(24));
        assert!(emfile.is_retryable() && emfile.is_local(), "EMFILE: {emfile}");
        assert!(emfile.to_string().contains("raise ulimit -n"), "{emfile}");
        assert!(matches!(TaskError::write(Error::from(ErrorKind::PermissionDenied)), TaskError::Write(_)));
    }
}
