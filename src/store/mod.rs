//! Where images end up, behind one seam: a [`Store`] opens a [`Writer`] per image, the
//! workers stream validated bytes into it, and its commit gives the name the image got.
//! It also answers, for the Coordinator, what an earlier run stored ([`Lookup`]) and
//! records what this run stores, so a re-run skips it.
//!
//! The checks every image passes whatever its store (size caps, format, completeness,
//! SHA-256) are `download::ImageSink`'s, before any byte reaches a writer. A store only
//! keeps bytes and names. `FolderStore` is the out dir. Never imports actix.

pub mod bucket;
pub mod folder;
mod record_writer;
pub mod s3;
pub mod upload;

use std::future::Future;
use std::pin::Pin;

use url::Url;

use crate::task::{ImageTask, TaskError};

/// What an earlier run stored for a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Stored under `name` and still there whole: skip it.
    Complete { name: String, bytes: u64 },
    /// Recorded under `name` but gone or damaged: fetch it again into that name.
    Stale { name: String },
    /// Never stored.
    Unknown,
}

/// The end of a [`Writer`]: the name the image got, done now, as blocking work for the
/// caller to run where blocking is allowed (an async worker hands it to a thread), or as
/// a future the caller awaits where it waits (a shared job's content check: a round trip
/// to Redis on the asking Arbiter's own connection, or at once on a blocking worker's
/// thread, as [`Opening`] is).
pub enum Commit {
    Done(Result<String, TaskError>),
    Blocking(Box<dyn FnOnce() -> Result<String, TaskError> + Send>),
    Pending(Pin<Box<dyn Future<Output = Result<String, TaskError>>>>),
}

/// One image on its way into a store. Dropped without a commit (a failure, a cancel, a
/// panic), it leaves nothing behind.
pub trait Writer: Send {
    /// The next bytes, already checked. Runs on the worker's thread or event loop, so
    /// it never waits on the network: a writer with such work hands it elsewhere and
    /// says so in [`Writer::backlog`].
    fn write(&mut self, bytes: &[u8]) -> Result<(), TaskError>;

    /// The work this writer hands elsewhere (parts going up), for its caller to wait on
    /// between writes; `None`, a folder's, when every write is done when it returns.
    fn backlog(&self) -> Option<Box<dyn Backlog>> {
        None
    }

    /// The image is complete: put it under its name, never over a file this run may not
    /// replace (see `ImageTask::overwrite`).
    fn commit(self: Box<Self>) -> Commit;
}

/// A writer being opened: ready at once, unless the store must first ask elsewhere (a
/// shared job's bucket reserves the name in the job), which an async worker awaits on its
/// event loop while its other requests go on.
pub type Opening<'a> = Pin<Box<dyn Future<Output = Result<Box<dyn Writer>, TaskError>> + 'a>>;

/// A [`NameLedger`]'s answer: a round trip, awaited where the worker waits.
pub type LedgerAnswer<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + 'a>>;

/// A writer's work going on elsewhere (parts going up on the blocking pool). Its caller
/// awaits [`Backlog::room`] before it feeds the writer more bytes, so memory stays
/// bounded while no event loop waits on the network.
pub trait Backlog: Send {
    /// Ready once the writer may take more bytes; fails with what the work met.
    fn room(&self) -> Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>>;
}

/// Names reserved across every process that fills one bucket (a shared job's), so two of
/// them never write one object name for two images. A folder needs none: its commit is a
/// rename that never replaces a file.
pub trait NameLedger: Send + Sync + std::fmt::Debug {
    /// Reserves `name` for `url`'s image: true if it was free or is `url`'s already.
    fn reserve<'a>(&'a self, name: &'a str, url: &'a Url) -> LedgerAnswer<'a>;
}

/// Where the first copy of some bytes was stored, across every process of a shared job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstCopy {
    /// The URL whose image it is: the same URL fetched again (a lease that expired) is
    /// not a duplicate of itself.
    pub url: String,
    /// The machine that stored it (its host name): an absolute path names a file only
    /// on its own machine.
    pub machine: String,
    /// The file, absolute (the out dir made canonical, then the name): two processes
    /// sharing one out dir under two spellings of it still see one file.
    pub path: String,
}

/// The job's digests could not be asked (Redis did not answer, or answered what this
/// version cannot read): the image is kept as if it were the first copy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the job's digests: {0}")]
pub struct DigestError(
    /// What failed, in words, for the warning the run gives once.
    pub String,
);

/// A [`DigestLedger`]'s answer: a round trip, awaited where the worker waits.
pub type DigestAnswer<'a> = Pin<Box<dyn Future<Output = Result<FirstCopy, DigestError>> + 'a>>;

/// `DEDUPE: content` across every process of a shared job: the first copy of each content,
/// claimed once for the whole job, so two processes (one out dir or two) keep one copy.
pub trait DigestLedger: Send + Sync + std::fmt::Debug {
    /// Claims the content `sha256` (hex) for `ours`, a copy already in place: answers the
    /// job's first copy of it, which is `ours` when this claim was the first.
    fn claim<'a>(&'a self, sha256: &'a str, ours: &'a FirstCopy) -> DigestAnswer<'a>;
}

pub trait Store: Send + Sync + std::fmt::Debug {
    /// Opens a writer for `task`'s image.
    fn begin<'a>(&'a self, task: &'a ImageTask) -> Opening<'a>;

    /// What an earlier run stored for `url`.
    fn lookup(&self, url: &Url) -> Lookup;

    /// Notes that `url` was stored as `name` with `bytes` bytes, for the next run. Called
    /// from the Coordinator's handlers, so it never waits on the network (a bucket hands
    /// the record to a writer thread). A failure only means a re-run fetches it again;
    /// the caller warns once.
    fn record(&self, url: &Url, name: &str, bytes: u64) -> std::io::Result<()>;

    /// [`Store::record`], with the image's SHA-256 when it is known: a store that keeps
    /// one copy per content (`DEDUPE: content`) finds it again in the next run.
    fn record_content(
        &self,
        url: &Url,
        name: &str,
        bytes: u64,
        _sha256: Option<&str>,
    ) -> std::io::Result<()> {
        self.record(url, name, bytes)
    }

    /// With `DEDUPE: content`: the path of the first copy of these bytes when another URL
    /// stored it (in this run or an earlier one), so `url`'s image is a duplicate. `None`
    /// when `url`'s is the first, or the store keeps every URL's bytes.
    fn first_copy(&self, _url: &Url, _sha256: &str) -> Option<String> {
        None
    }

    /// The SHA-256 of what an earlier run stored under `name`, if it is still there with
    /// `bytes` bytes: the manifest gives one for every image, skipped ones too. `None`
    /// when the store cannot tell without fetching it back (a bucket).
    fn sha256(&self, _name: &str, _bytes: u64) -> Option<String> {
        None
    }

    /// Makes what `record` noted durable (at the end, and before an exit). May wait on
    /// the disk or the network: a caller on an event loop runs it where blocking is
    /// allowed.
    fn flush(&self) -> std::io::Result<()>;

    /// Removes what downloads in progress left (a second Ctrl-C, the end of a run).
    fn remove_partials(&self);

    /// A problem the store worked around that the run should say once (its writers have
    /// no log): `Some` the first time it is asked after the problem, then `None`.
    fn notice(&self) -> Option<String> {
        None
    }
}
