//! One object streamed into S3 as it arrives ([`Upload`]): bytes are buffered up to one
//! part; a single PUT if the object stays below a part, a multipart upload once it does
//! not. Dropping an unfinished upload aborts it, so a failed or cancelled image leaves
//! neither an object nor parts behind.
//!
//! Full parts go up where blocking is allowed. An upload made on an event loop (a tokio
//! runtime is current: an async worker's Arbiter) hands them to that runtime's blocking
//! pool and its writer goes on at once; one made on a thread of its own (a blocking
//! worker, a test) sends them in place, as that thread may wait. At most
//! [`PARTS_IN_FLIGHT`] full parts wait or go up at once: a writer on an event loop awaits
//! [`InFlight::room`] before it feeds more bytes, so memory stays bounded and no event
//! loop waits on the network.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::Notify;

use super::s3::{S3Client, S3Error};

/// S3's smallest part (except the last one): a smaller part size is raised to it.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// A part size that keeps memory low per image and requests few for large ones.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// S3 numbers parts 1 to 10,000; a larger object cannot be completed.
const MAX_PARTS: usize = 10_000;

/// Full parts handed over and not yet sent, at most: one going up and one ready behind
/// it, so the body is read on while a part goes up. With the one filling, an image holds
/// three parts' worth of memory, and more only while one network chunk decodes to more
/// than a part (a compressed body): the wait after that chunk holds the next one back.
pub const PARTS_IN_FLIGHT: usize = 2;

/// An object on its way up. See the module's doc.
#[derive(Debug)]
pub struct Upload {
    /// What this writer shares with the part uploads it handed over.
    parts: Arc<Parts>,
    /// Bytes not yet handed over: never more than one part.
    buf: Vec<u8>,
    /// Bytes written so far, for `finish`'s answer.
    written: u64,
    /// The blocking pool full parts go to; `None` on a thread that may block, which
    /// sends them itself.
    pool: Option<Handle>,
    /// Finished or aborted by its owner: nothing is left for drop to abort.
    settled: bool,
}

/// A multipart upload's side that outlives any one call: the parts' uploader (a pool
/// thread or the writer's) and the writer both hold it.
#[derive(Debug)]
struct Parts {
    /// Shared with every other upload of the run.
    client: Arc<S3Client>,
    /// The object's full key.
    key: String,
    /// Bytes per part (at least 5 MiB, S3's minimum for all but the last part).
    part_size: usize,
    /// What is sent and what waits; locked only between requests, never across one.
    state: Mutex<State>,
    /// Wakes a thread waiting for the queue to empty (`finish`, `abort`).
    sent: Condvar,
    /// Wakes a writer on an event loop waiting for room ([`InFlight::room`]).
    room: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// S3's name for the upload once it is started, for every part, the completion and
    /// the abort.
    upload_id: Option<String>,
    /// The ETag of each part sent, in order (part n is etags[n - 1]).
    etags: Vec<String>,
    /// Full parts handed over and not yet being sent, in order.
    queued: VecDeque<Vec<u8>>,
    /// Someone is sending the queue now: at most one at a time, so parts go up in order.
    sending: bool,
    /// A part taken off the queue is going up now.
    going_up: bool,
    /// The first failure: every later call answers with it, as the write that met it
    /// would have.
    failed: Option<S3Error>,
    /// Dropped unfinished: whoever is sending aborts the upload instead of going on.
    abandoned: bool,
}

impl State {
    /// Parts handed over and not yet sent, the one going up included.
    fn pending(&self) -> usize {
        self.queued.len() + usize::from(self.going_up)
    }
}

impl Upload {
    /// An upload of `key`; `part_size` below [`MIN_PART_SIZE`] is raised to it.
    /// Nothing is sent until a part is full or `finish` is called.
    pub fn new(client: Arc<S3Client>, key: String, part_size: usize) -> Upload {
        let part_size = part_size.max(MIN_PART_SIZE);
        let parts = Parts {
            client,
            key,
            part_size,
            state: Mutex::default(),
            sent: Condvar::new(),
            room: Notify::new(),
        };
        // Made on an event loop, its parts go to that loop's blocking pool.
        let pool = Handle::try_current().ok();
        // The buffer grows as bytes come: most images are far smaller than a part.
        Upload { parts: Arc::new(parts), buf: Vec::new(), written: 0, pool, settled: false }
    }

    /// The key this upload writes.
    pub fn key(&self) -> &str {
        &self.parts.key
    }

    /// Parts already sent: 0 until the object outgrows one part.
    pub fn parts_sent(&self) -> usize {
        self.parts.state().etags.len()
    }

    /// What a writer on an event loop awaits before more bytes (see [`InFlight`]).
    pub fn in_flight(&self) -> InFlight {
        InFlight(Arc::clone(&self.parts))
    }

    /// Appends bytes, handing over a part each time one is full (the first starts the
    /// multipart upload). After an error the upload is unusable: abort or drop it.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), S3Error> {
        self.parts.check()?;
        let part_size = self.parts.part_size;
        while !bytes.is_empty() {
            let take = (part_size - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            self.written += take as u64;
            bytes = &bytes[take..];
            if self.buf.len() == part_size {
                let here = self.pool.is_none();
                self.hand_over(here)?;
            }
        }
        Ok(())
    }

    /// Queues the buffer as the next part and makes sure someone sends the queue: this
    /// thread (`here`) or a pool thread.
    fn hand_over(&mut self, here: bool) -> Result<(), S3Error> {
        let part = std::mem::take(&mut self.buf);
        let mut state = self.parts.state();
        if let Some(err) = &state.failed {
            return Err(err.clone());
        }
        state.queued.push_back(part);
        if state.sending {
            return Ok(());
        }
        state.sending = true;
        drop(state);
        match (&self.pool, here) {
            (Some(pool), false) => {
                let drain = Drain(Some(Arc::clone(&self.parts)));
                pool.spawn_blocking(move || drain.run());
                Ok(())
            }
            _ => {
                self.parts.drain();
                self.parts.check()
            }
        }
    }

    /// Sends what is left and makes the object appear; returns its size in bytes. Waits
    /// for the network: call it where blocking is allowed. On error nothing is left
    /// behind (the multipart upload is aborted on drop).
    pub fn finish(mut self) -> Result<u64, S3Error> {
        let multipart = {
            let state = self.parts.state();
            state.upload_id.is_some() || state.pending() > 0 || state.failed.is_some()
        };
        if !multipart {
            self.parts.client.put(&self.parts.key, &self.buf)?;
            self.settled = true;
            return Ok(self.written);
        }
        if !self.buf.is_empty() {
            self.hand_over(true)?;
        }
        let (upload_id, etags) = {
            let state = self.parts.wait_sent();
            if let Some(err) = &state.failed {
                return Err(err.clone());
            }
            let upload_id = state.upload_id.clone().expect("a part was sent");
            (upload_id, state.etags.clone())
        };
        // On error, drop aborts it.
        self.parts.client.complete_multipart(&self.parts.key, &upload_id, &etags)?;
        self.settled = true;
        Ok(self.written)
    }

    /// Gives up: nothing is written, and parts already sent are freed. Waits for a part
    /// going up, then for the abort.
    pub fn abort(mut self) -> Result<(), S3Error> {
        self.settled = true;
        self.parts.state().abandoned = true;
        let upload_id = self.parts.wait_sent().upload_id.take();
        match upload_id {
            Some(upload_id) => self.parts.client.abort_multipart(&self.parts.key, &upload_id),
            None => Ok(()),
        }
    }
}

impl Drop for Upload {
    /// An upload dropped unfinished (an error, a panic, a cancelled task) is aborted,
    /// best effort and where blocking is allowed: by whoever is sending a part, or on
    /// the pool. Parts left behind cost storage until a lifecycle rule or the end of the
    /// run (`BucketStore::remove_partials`) removes them.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let upload_id = {
            let mut state = self.parts.state();
            state.abandoned = true;
            if state.sending {
                return;
            }
            state.upload_id.take()
        };
        let Some(upload_id) = upload_id else { return };
        let parts = Arc::clone(&self.parts);
        let abort = move || {
            let _ = parts.client.abort_multipart(&parts.key, &upload_id);
        };
        match &self.pool {
            Some(pool) => drop(pool.spawn_blocking(abort)),
            None => abort(),
        }
    }
}

/// The parts an upload handed over and not yet sent, as its writer's caller sees them.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<Parts>);

impl InFlight {
    /// Ready once fewer than [`PARTS_IN_FLIGHT`] parts wait or go up (at once, nearly
    /// always); fails with the error a part met.
    pub fn room(&self) -> impl Future<Output = Result<(), S3Error>> + Send + 'static {
        let parts = Arc::clone(&self.0);
        async move {
            loop {
                // Made before the look, so a part sent in between still wakes it.
                let notified = parts.room.notified();
                {
                    let state = parts.state();
                    if let Some(err) = &state.failed {
                        return Err(err.clone());
                    }
                    if state.pending() < PARTS_IN_FLIGHT {
                        return Ok(());
                    }
                }
                notified.await;
            }
        }
    }
}

impl Parts {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error a part met, if any.
    fn check(&self) -> Result<(), S3Error> {
        match &self.state().failed {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Blocks until no part is queued or going up.
    fn wait_sent(&self) -> MutexGuard<'_, State> {
        let mut state = self.state();
        while state.sending {
            state = self.sent.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state
    }

    /// Sends queued parts in order until none is left (the caller set `sending`). After
    /// a failure the rest are dropped; an abandoned upload is aborted instead.
    fn drain(&self) {
        let mut state = self.state();
        loop {
            if state.abandoned {
                state.queued.clear();
                let upload_id = state.upload_id.take();
                drop(state);
                if let Some(upload_id) = upload_id {
                    let _ = self.client.abort_multipart(&self.key, &upload_id);
                }
                state = self.state();
                break;
            }
            let Some(part) = state.queued.pop_front() else { break };
            state.going_up = true;
            drop(state);
            let sent = self.send(&part);
            drop(part);
            state = self.state();
            state.going_up = false;
            if let Err(err) = sent {
                state.failed.get_or_insert(err);
                state.queued.clear();
            }
            self.room.notify_waiters();
        }
        state.sending = false;
        drop(state);
        self.room.notify_waiters();
        self.sent.notify_all();
    }

    /// Sends `part` as the next part, starting the multipart upload if needed.
    fn send(&self, part: &[u8]) -> Result<(), S3Error> {
        let (upload_id, sent) = {
            let state = self.state();
            (state.upload_id.clone(), state.etags.len())
        };
        let upload_id = match upload_id {
            Some(upload_id) => upload_id,
            None => {
                let upload_id = self.client.create_multipart(&self.key)?;
                self.state().upload_id = Some(upload_id.clone());
                upload_id
            }
        };
        if sent >= MAX_PARTS {
            return Err(S3Error::Invalid(format!(
                "{} exceeds {MAX_PARTS} parts of {} bytes",
                self.key, self.part_size
            )));
        }
        let number = u16::try_from(sent + 1).expect("at most 10,000 parts");
        let etag = self.client.upload_part(&self.key, &upload_id, number, part)?;
        self.state().etags.push(etag);
        Ok(())
    }
}

/// A pool thread's turn at sending the queue. Dropped unrun (the pool's runtime is
/// shutting down), it fails the upload rather than leave it waiting for a sender that
/// never comes.
struct Drain(Option<Arc<Parts>>);

impl Drain {
    fn run(mut self) {
        if let Some(parts) = self.0.take() {
            parts.drain();
        }
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        let Some(parts) = self.0.take() else { return };
        let mut state = parts.state();
        state.failed.get_or_insert(S3Error::Connection("the run ended before the part was sent".into()));
        state.queued.clear();
        state.sending = false;
        drop(state);
        parts.room.notify_waiters();
        parts.sent.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;
    use crate::store::s3::S3Settings;

    /// A client for an endpoint on 127.0.0.1:`port`, giving up after a second's stall.
    fn client(port: u16) -> Arc<S3Client> {
        let endpoint = format!("http://127.0.0.1:{port}");
        let env = |name: &str| match name {
            "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("k".into()),
            _ => None,
        };
        let settings = S3Settings::from_env(env, None).unwrap();
        let tls = crate::net::tls::Trust::new(Default::default(), &[], false).unwrap().ureq_config();
        Arc::new(S3Client::new(&settings, "bucket", Duration::from_secs(1), tls, None).unwrap())
    }

    fn event_loop() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_part_failing_on_the_pool_fails_the_upload_as_it_would_in_place() {
        // A port that was free a moment ago: connections are refused.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let part = vec![7u8; MIN_PART_SIZE];
        let in_place = Upload::new(client(port), "k".into(), MIN_PART_SIZE).write(&part).unwrap_err();
        let (on_pool, later) = event_loop().block_on(async {
            let mut upload = Upload::new(client(port), "k".into(), MIN_PART_SIZE);
            // Handed over: this loop does not wait for it.
            upload.write(&part).unwrap();
            let in_flight = upload.in_flight();
            let finished = tokio::task::spawn_blocking(move || upload.finish()).await.unwrap();
            (finished.unwrap_err(), in_flight.room().await.unwrap_err())
        });
        assert!(matches!(in_place, S3Error::Connection(_)), "{in_place}");
        assert_eq!(on_pool.to_string(), in_place.to_string());
        assert_eq!(later.to_string(), in_place.to_string());
    }

    #[test]
    fn a_writer_on_an_event_loop_waits_for_room_once_parts_pile_up() {
        // Connections are taken and never answered: each part stalls until the timeout.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        event_loop().block_on(async {
            let mut upload = Upload::new(client(port), "k".into(), MIN_PART_SIZE);
            let in_flight = upload.in_flight();
            upload.write(&vec![1u8; MIN_PART_SIZE]).unwrap();
            assert_eq!(in_flight.room().now_or_never().map(|r| r.is_ok()), Some(true), "room for one more");
            upload.write(&vec![2u8; MIN_PART_SIZE]).unwrap();
            assert!(in_flight.room().now_or_never().is_none(), "{PARTS_IN_FLIGHT} parts held and room given");
            // The stalled part fails at the timeout, and the wait ends with it.
            assert!(matches!(in_flight.room().await, Err(S3Error::Timeout(_) | S3Error::Connection(_))));
        });
        drop(silent);
    }
}
