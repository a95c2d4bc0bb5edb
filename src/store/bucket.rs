//! S3-compatible object storage as a [`Store`] (`-o s3://bucket/prefix`): each image
//! streams into an [`Upload`] (a single PUT below a part, multipart above, its parts sent
//! on the blocking pool when its writer is on an event loop; aborted when dropped, so a
//! failed or cancelled image leaves no object), and the resume record is an object beside
//! the images, `PREFIX/.image-scraper/done.jsonl`.
//!
//! What is there at the start is listed once (one request per 1,000 objects): an image
//! whose record and object agree is skipped; a name an object already holds is never
//! written over (the image takes the URL-suffixed name, as in a folder). The record is
//! written whole (S3 has no append) at most every [`RECORD_EVERY`] and at the end, by a
//! thread of its own ([`RecordWriter`]), so a killed process loses at most that much of
//! it: those images are fetched again, under suffixed names. Blocking (ureq); the fetch
//! core runs a commit off an async worker's Arbiter, and `flush` waits for the record's
//! thread (the Coordinator runs it on the blocking pool). Never imports actix.
//!
//! The processes of a shared job may fill one bucket ([`BucketStore::shared`]): each
//! reserves a name in the job ([`NameLedger`]) before it writes it, and keeps a record
//! of its own (`done-NODE.jsonl`); a run reads every record there.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;
use xxhash_rust::xxh3::xxh3_128;

use super::record_writer::RecordWriter;
use super::s3::{S3Client, S3Error, S3Location};
use super::upload::{DEFAULT_PART_SIZE, InFlight, Upload};
use super::{Backlog, Commit, Lookup, NameLedger, Opening, Store, Writer};
use crate::storage;
use crate::task::{ImageTask, TaskError};

/// Longest time between two writes of the resume record while images complete.
pub const RECORD_EVERY: Duration = Duration::from_secs(10);

/// Where the record lives under the prefix: a name no image can get (`storage` strips
/// leading dots).
const RECORD_NAME: &str = ".image-scraper/done.jsonl";

/// Every record starts so (a shared job's processes keep one each) and ends in `.jsonl`.
const RECORDS: &str = ".image-scraper/done";

#[derive(Serialize, Deserialize)]
struct Line {
    url: String,
    path: String,
    bytes: u64,
}

#[derive(Debug)]
pub struct BucketStore {
    client: Arc<S3Client>,
    location: S3Location,
    /// A dry run reads what is there and writes nothing.
    read_only: bool,
    /// A shared job's reservations: other processes write this bucket too.
    ledger: Option<Box<dyn NameLedger>>,
    /// PUTs the record off the caller's thread; `None` for a dry run, which writes none.
    records: Option<RecordWriter>,
    /// How long between two writes of the record while images complete:
    /// [`RECORD_EVERY`], shorter for a test that watches a write go up.
    record_every: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Object name (under the prefix) -> size, as listed at the start and written since.
    objects: HashMap<String, u64>,
    /// URL hash -> (name, bytes), from the record.
    done: HashMap<u128, (String, u64)>,
    /// Names handed to writers in this run: two writers never pick one name.
    claimed: HashSet<String>,
    /// The record as text, earlier lines and this run's.
    record: Vec<u8>,
    /// Lines this run added: the record's generation, for its writer.
    lines: u64,
    /// When the record was last handed to its writer, for [`BucketStore::record_every`].
    last_handed: Instant,
}

impl BucketStore {
    /// Lists what is under the prefix and reads the record. Fails when the bucket
    /// cannot be read at all (wrong keys, no such bucket, no server): the run stops
    /// before any request to a gallery.
    pub fn open(client: S3Client, location: S3Location, read_only: bool) -> Result<Self, S3Error> {
        Self::open_as(client, location, read_only, RECORD_NAME.to_string(), None)
    }

    /// The same for process `node` of a shared job, whose processes reserve names in
    /// `ledger` and each keep their own record.
    pub fn shared(
        client: S3Client,
        location: S3Location,
        read_only: bool,
        ledger: Box<dyn NameLedger>,
        node: &str,
    ) -> Result<Self, S3Error> {
        Self::open_as(client, location, read_only, format!("{RECORDS}-{node}.jsonl"), Some(ledger))
    }

    fn open_as(
        client: S3Client,
        location: S3Location,
        read_only: bool,
        record_name: String,
        ledger: Option<Box<dyn NameLedger>>,
    ) -> Result<Self, S3Error> {
        let prefix = location.list_prefix();
        let listed: Vec<(String, u64)> = client
            .list(&prefix)?
            .into_iter()
            .filter_map(|(key, size)| Some((key.strip_prefix(&prefix)?.to_string(), size)))
            .collect();
        let records =
            listed.iter().map(|(name, _)| name).filter(|n| n.starts_with(RECORDS) && n.ends_with(".jsonl"));
        let mut done = HashMap::new();
        let mut record = Vec::new();
        for name in records {
            let text = client.get(&location.key(name))?.unwrap_or_default();
            for raw in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                // A damaged line is dropped: the image it named is fetched again.
                if let Ok(line) = serde_json::from_slice::<Line>(raw) {
                    done.insert(xxh3_128(line.url.as_bytes()), (line.path, line.bytes));
                }
            }
            if *name == record_name {
                record = text;
            }
        }
        // Images only: a `NAME` template's folders included, the record (a dot name) not.
        let objects = listed.into_iter().filter(|(name, _)| storage::is_safe_path(name)).collect();
        let state =
            State { objects, done, claimed: HashSet::new(), record, lines: 0, last_handed: Instant::now() };
        let client = Arc::new(client);
        let records = match read_only {
            true => None,
            false => {
                let (client, key) = (Arc::clone(&client), location.key(&record_name));
                let put = move |record: &[u8]| client.put(&key, record).map_err(|e| e.to_string());
                Some(RecordWriter::start(put).map_err(|e| {
                    S3Error::Invalid(format!("cannot start the thread that writes the record: {e}"))
                })?)
            }
        };
        let state = Mutex::new(state);
        Ok(Self { client, location, read_only, ledger, records, record_every: RECORD_EVERY, state })
    }

    /// The same store, writing its record every `every` while images complete.
    pub fn with_record_every(self, every: Duration) -> Self {
        Self { record_every: every, ..self }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The name `task`'s image is written under: its own, unless an object that is not
    /// ours to replace holds it (or another process of the job took it), then the
    /// URL-suffixed ones in turn.
    async fn choose_name(&self, task: &ImageTask) -> Result<String, TaskError> {
        if task.overwrite && self.try_name(&task.name, &task.url, true).await? {
            return Ok(task.name.clone());
        }
        let suffixed = storage::with_suffix(&task.name, &task.url);
        let candidates = std::iter::once(task.name.clone())
            .chain(std::iter::once(suffixed.clone()))
            .chain((2..100).map(|n| storage::with_suffix(&format!("{n}-{suffixed}"), &task.url)));
        for name in candidates {
            if self.try_name(&name, &task.url, false).await? {
                return Ok(name);
            }
        }
        Err(TaskError::Write(format!("every name for {} is taken by another object", task.name)))
    }

    /// Takes `name` for `url`'s image if no writer of this run has it, no object holds it
    /// (unless `replace`) and the job lets it. Claimed here before the job is asked, and
    /// the lock let go meanwhile (the answer may be a round trip away): a second writer
    /// passes over it rather than waiting; given back if the job refuses, so that it
    /// never counts as ours (`remove_partials` aborts uploads under our names).
    async fn try_name(&self, name: &str, url: &Url, replace: bool) -> Result<bool, TaskError> {
        {
            let mut state = self.state();
            if state.claimed.contains(name) || (!replace && state.objects.contains_key(name)) {
                return Ok(false);
            }
            state.claimed.insert(name.to_string());
        }
        let reserved = self.reserve(name, url).await;
        if !matches!(reserved, Ok(true)) {
            self.state().claimed.remove(name);
        }
        reserved
    }

    /// Whether the job lets `url`'s image have `name` (always, outside a shared job).
    async fn reserve(&self, name: &str, url: &Url) -> Result<bool, TaskError> {
        let Some(ledger) = &self.ledger else { return Ok(true) };
        let key = format!("{}/{}", self.client.bucket(), self.location.key(name));
        ledger
            .reserve(&key, url)
            .await
            .map_err(|e| TaskError::Write(format!("cannot reserve the name {name}: {e}")))
    }
}

impl Store for BucketStore {
    /// In a shared job the name is reserved in the job first: awaited, as the ledger
    /// answers (on an async worker's event loop, its other requests going on).
    fn begin<'a>(&'a self, task: &'a ImageTask) -> Opening<'a> {
        Box::pin(async move {
            let name = self.choose_name(task).await?;
            // Made here, on the worker's thread or event loop: that decides where its parts go.
            let upload = Upload::new(Arc::clone(&self.client), self.location.key(&name), DEFAULT_PART_SIZE);
            Ok(Box::new(BucketWriter { upload, name }) as Box<dyn Writer>)
        })
    }

    fn lookup(&self, url: &Url) -> Lookup {
        let state = self.state();
        let Some((name, bytes)) = state.done.get(&xxh3_128(url.as_str().as_bytes())) else {
            return Lookup::Unknown;
        };
        match state.objects.get(name) == Some(bytes) {
            true => Lookup::Complete { name: name.clone(), bytes: *bytes },
            false => Lookup::Stale { name: name.clone() },
        }
    }

    fn record(&self, url: &Url, name: &str, bytes: u64) -> io::Result<()> {
        let mut state = self.state();
        state.objects.insert(name.to_string(), bytes);
        let line = Line { url: url.to_string(), path: name.to_string(), bytes };
        serde_json::to_writer(&mut state.record, &line).map_err(io::Error::other)?;
        state.record.push(b'\n');
        state.lines += 1;
        let Some(records) = &self.records else { return Ok(()) };
        if state.last_handed.elapsed() >= self.record_every {
            records.hand_over(state.lines, state.record.clone());
            state.last_handed = Instant::now();
        }
        drop(state);
        records.untold_failure().map_or(Ok(()), |why| Err(io::Error::other(why)))
    }

    /// Waits for the record's thread: call it where blocking is allowed.
    fn flush(&self) -> io::Result<()> {
        let Some(records) = &self.records else { return Ok(()) };
        let lines = {
            let mut state = self.state();
            // Handed over again after a failed PUT: a flush retries it.
            if records.written() < state.lines {
                records.hand_over(state.lines, state.record.clone());
                state.last_handed = Instant::now();
            }
            state.lines
        };
        records.wait(lines)
    }

    /// An upload dropped unfinished aborts itself, but a blocking worker still inside a
    /// read when the run ends never drops its own: abort every upload this run began
    /// and did not store (and only those: another process may be writing the bucket).
    /// A killed process can still leave parts; a bucket lifecycle rule removes those.
    fn remove_partials(&self) {
        if self.read_only {
            return;
        }
        let open: HashSet<String> = {
            let state = self.state();
            state
                .claimed
                .iter()
                .filter(|name| !state.objects.contains_key(*name))
                .map(|n| self.location.key(n))
                .collect()
        };
        if open.is_empty() {
            return;
        }
        let Ok(uploads) = self.client.list_multipart_uploads(&self.location.list_prefix()) else { return };
        for (key, upload_id) in uploads.into_iter().filter(|(key, _)| open.contains(key)) {
            let _ = self.client.abort_multipart(&key, &upload_id);
        }
    }
}

struct BucketWriter {
    upload: Upload,
    name: String,
}

impl Writer for BucketWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), TaskError> {
        self.upload.write(bytes).map_err(write_error)
    }

    /// Parts going up: a failed one fails the image as it would have from `write`.
    fn backlog(&self) -> Option<Box<dyn Backlog>> {
        Some(Box::new(self.upload.in_flight()))
    }

    /// The last PUT (or part and completion) goes over the network: blocking work.
    fn commit(self: Box<Self>) -> Commit {
        let BucketWriter { upload, name } = *self;
        Commit::Blocking(Box::new(move || upload.finish().map(|_| name).map_err(write_error)))
    }
}

impl Backlog for InFlight {
    fn room(&self) -> Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send>> {
        let room = InFlight::room(self);
        Box::pin(async move { room.await.map_err(write_error) })
    }
}

fn write_error(err: S3Error) -> TaskError {
    TaskError::Write(format!("object store: {err}"))
}
