//! How many files a run may hold open, and whether the run asked for fits: the soft
//! `RLIMIT_NOFILE` raised to the hard one at start (most systems set 1024 soft, far
//! more hard), and an estimate of what `-p` and `CONCURRENCY` need, so a run that could
//! not open its sockets is refused in one line before any request, instead of failing
//! requests (or panicking in actix-rt) with "Too many open files" halfway.
//!
//! Pure but for the two system calls: no actix, no config. `main` asks, with the
//! resolved numbers.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Files open whatever the run's size: standard streams, the log, the resume record,
/// the out dir's folders, the main System's runtime and signal pipe, the Coordinator's
/// Redis connection; with room to spare.
pub const SPARE: u64 = 64;
/// An async worker's own: its Arbiter's epoll and waker, and a Redis connection when the
/// job is shared.
pub const PER_ARBITER: u64 = 3;
/// A request in flight: its socket, the temporary file an image is written to, and one
/// idle kept-alive connection a pool may hold beside it.
pub const PER_REQUEST: u64 = 3;

/// The open-files limit after [`raise_open_files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit now; `None`: unlimited.
    pub limit: Option<u64>,
    /// What it was before, when it was raised.
    pub raised_from: Option<u64>,
}

/// Raises the soft open-files limit to the hard one, as far as the system lets us
/// (the hard limit is the ceiling an unprivileged process may set itself). Never fails:
/// the limit as it is is the answer then.
pub fn raise_open_files() -> OpenFiles {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    match (current, maximum) {
        (Some(soft), Some(hard)) if soft < hard => {
            match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) }) {
                Ok(()) => OpenFiles { limit: Some(hard), raised_from: Some(soft) },
                Err(_) => OpenFiles { limit: Some(soft), raised_from: None },
            }
        }
        (soft, _) => OpenFiles { limit: soft, raised_from: None },
    }
}

/// What a run will hold open at most, by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunShape {
    /// Async mode: one Arbiter per worker, `concurrency` requests each.
    pub async_mode: bool,
    /// `-p`.
    pub workers: usize,
    /// `CONCURRENCY` (async mode only).
    pub concurrency: usize,
    /// The built-in demo gallery runs in this process: it holds the other end of every
    /// connection to it.
    pub demo: bool,
}

impl RunShape {
    /// Requests in flight at most: the Coordinator never hands a worker more than its
    /// capacity.
    pub fn in_flight(&self) -> u64 {
        let per_worker = if self.async_mode { self.concurrency.max(1) } else { 1 };
        self.workers as u64 * per_worker as u64
    }

    /// Files a request in flight holds (the demo gallery holds the other end too).
    fn per_request(&self) -> u64 {
        PER_REQUEST + u64::from(self.demo)
    }

    /// Open files needed at most, estimated.
    pub fn needed(&self) -> u64 {
        let arbiters = if self.async_mode { self.workers as u64 * PER_ARBITER } else { 0 };
        SPARE + arbiters + self.in_flight() * self.per_request()
    }

    /// The most workers, up to this shape's, that fit under `limit`; `None` when not even
    /// one does.
    pub fn most_workers(&self, limit: Option<u64>) -> Option<usize> {
        let Some(limit) = limit else { return Some(self.workers) };
        (1..=self.workers).rev().find(|&w| RunShape { workers: w, ..*self }.needed() <= limit)
    }

    /// `Ok` when the run fits under `limit` (`None`: unlimited); else one line saying
    /// why and what fits.
    pub fn check(&self, limit: Option<u64>) -> Result<(), String> {
        let Some(limit) = limit else { return Ok(()) };
        let needed = self.needed();
        if needed <= limit {
            return Ok(());
        }
        let asked = if self.async_mode {
            format!("-p {} with CONCURRENCY {}", self.workers, self.concurrency)
        } else {
            format!("-p {}", self.workers)
        };
        let per_request = self.per_request();
        let why = if self.async_mode {
            format!("{PER_ARBITER} per worker, {per_request} per request in flight, {SPARE} spare")
        } else {
            format!("{per_request} per worker, {SPARE} spare")
        };
        let fits = |shape: RunShape| shape.needed() <= limit;
        let advice = match self.most_workers(Some(limit)) {
            Some(w) => format!("-p {w} fits"),
            None if self.async_mode => {
                match (1..=self.concurrency)
                    .rev()
                    .find(|&c| fits(RunShape { workers: 1, concurrency: c, ..*self }))
                {
                    Some(c) => format!("-p 1 with CONCURRENCY {c} fits"),
                    None => "nothing fits".into(),
                }
            }
            None => "nothing fits".into(),
        };
        Err(format!(
            "{asked} needs up to {needed} open files ({why}), over this process's limit of {limit}: {advice}, or raise the hard limit (ulimit -Hn)"
        ))
    }
}

/// Whether `err` is "too many open files" (EMFILE: this process's limit; ENFILE: the
/// system's).
pub fn is_too_many_open_files(err: &std::io::Error) -> bool {
    let code = err.raw_os_error();
    code == Some(rustix::io::Errno::MFILE.raw_os_error())
        || code == Some(rustix::io::Errno::NFILE.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(async_mode: bool, workers: usize, concurrency: usize) -> RunShape {
        RunShape { async_mode, workers, concurrency, demo: false }
    }

    #[test]
    fn what_a_run_needs() {
        assert_eq!(shape(false, 8, 16).needed(), SPARE + 8 * PER_REQUEST, "sync: one request per worker");
        assert_eq!(shape(true, 2, 16).needed(), SPARE + 2 * PER_ARBITER + 32 * PER_REQUEST);
        let demo = RunShape { demo: true, ..shape(true, 2, 16) };
        assert_eq!(demo.needed(), SPARE + 2 * PER_ARBITER + 32 * (PER_REQUEST + 1), "the demo's end too");
    }

    #[test]
    fn a_run_that_fits_or_one_line_saying_what_does() {
        assert!(shape(true, 8, 16).check(None).is_ok(), "unlimited");
        assert!(shape(true, 8, 16).check(Some(1 << 20)).is_ok());
        let err = shape(true, 300, 16).check(Some(1024)).unwrap_err();
        assert!(err.starts_with("-p 300 with CONCURRENCY 16 needs up to"), "{err}");
        assert!(err.contains("limit of 1024: -p 18 fits"), "{err}");
        assert!(!err.contains('\n'));
        assert!(shape(true, 18, 16).check(Some(1024)).is_ok(), "what it says fits, fits");
        let err = shape(true, 4, 512).check(Some(1024)).unwrap_err();
        assert!(err.contains("-p 1 with CONCURRENCY 319 fits"), "{err}");
        let err = shape(false, 400, 16).check(Some(1024)).unwrap_err();
        assert!(err.starts_with("-p 400 needs up to") && err.contains("-p 320 fits"), "{err}");
        assert!(shape(false, 1, 1).check(Some(10)).unwrap_err().contains("nothing fits"));
        assert_eq!(shape(true, 300, 16).most_workers(Some(1024)), Some(18));
        assert_eq!(shape(true, 300, 16).most_workers(None), Some(300));
        assert_eq!(shape(true, 300, 16).most_workers(Some(10)), None);
    }

    #[test]
    fn too_many_open_files_is_recognised() {
        assert!(is_too_many_open_files(&std::io::Error::from_raw_os_error(24)));
        assert!(is_too_many_open_files(&std::io::Error::from_raw_os_error(23)));
        assert!(!is_too_many_open_files(&std::io::Error::from_raw_os_error(28)));
    }

    #[test]
    fn raising_never_lowers() {
        let before = getrlimit(Resource::Nofile).current;
        let after = raise_open_files().limit;
        match (before, after) {
            (Some(b), Some(a)) => assert!(a >= b),
            (b, a) => assert_eq!(b, a),
        }
    }
}
