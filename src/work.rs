//! The contract between the Coordinator and any worker actor: the task a worker is handed
//! ([`RunTask`]), what it answers (`coordinator::TaskFinished` carrying [`Done`] or
//! [`TaskError`]), and the options every worker needs ([`FetchOptions`]).
//!
//! A new kind of worker implements `Handler<RunTask>`, reports through a
//! `Recipient<TaskFinished>`, and is registered with `coordinator::RegisterWorker`.

use std::path::PathBuf;
use std::time::Duration;

use actix::Message;
use url::Url;

use crate::html::{ExtractRules, PageScan};

/// Identifies a task from hand-out to acknowledgement; unique within a run.
pub type TaskId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Fetch a listing page and scan it for images.
    Page { number: u32, url: Url },
    /// Download an image into the out dir under `name` (a bare, safe file name).
    Image { url: Url, name: String },
}

/// Command: do this task, then report `TaskFinished` with the same id.
#[derive(Debug)]
pub struct RunTask {
    pub id: TaskId,
    pub task: Task,
}

impl Message for RunTask {
    type Result = ();
}

/// What a successful task produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Page(PageScan),
    /// The image is on disk under its final name with this many bytes.
    Image {
        bytes: u64,
    },
}

/// Why a task failed. Variants are what a caller branches on (retry or give up); the
/// text is what the report shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("transfer failed: {0}")]
    Transfer(String),
    #[error("larger than the {0}-byte limit")]
    TooLarge(u64),
    #[error("cannot write the file: {0}")]
    Write(String),
    #[error("worker failed: {0}")]
    Worker(String),
}

impl TaskError {
    pub fn write(err: std::io::Error) -> Self {
        Self::Write(err.to_string())
    }
}

/// What every worker needs to know about the run; shared read-only by all of them.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Where images land (their final names are chosen by the Coordinator).
    pub out_dir: PathBuf,
    pub extract: ExtractRules,
    /// Connect timeout, and the longest wait for response headers or for the next piece
    /// of a body, so a stalled server cannot hang the run.
    pub timeout: Duration,
    pub user_agent: String,
    /// A listing page is held in memory to parse it; this caps it.
    pub max_page_bytes: u64,
    /// Requests one async worker keeps in flight; sizes its connection pool.
    pub concurrency: usize,
}

/// Default cap on a listing page: generous for any gallery, small enough to hold.
pub const MAX_PAGE_BYTES: u64 = 32 * 1024 * 1024;

/// 2xx is success; anything else (after redirects) is a failure carrying its status.
pub fn check_status(status: u16) -> Result<(), TaskError> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(TaskError::Status(status))
    }
}

/// A body that ends before its Content-Length is truncated, not complete.
pub fn check_length(expected: Option<u64>, received: u64) -> Result<(), TaskError> {
    match expected {
        Some(n) if n != received => Err(TaskError::Transfer(format!(
            "body ended after {received} of {n} bytes"
        ))),
        _ => Ok(()),
    }
}
