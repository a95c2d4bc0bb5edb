//! The thread that PUTs a bucket's resume record, so that noting an image in it (from
//! the Coordinator's handlers) never waits on the network; only a flush waits, where
//! blocking is allowed.
//!
//! Writes coalesce: the record only grows, so a newer one handed over replaces one still
//! waiting, and at most one PUT goes up while one more waits.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Owned by the store; dropped, it writes what still waits and ends its thread.
#[derive(Debug)]
pub(super) struct RecordWriter {
    /// What the store and the thread share.
    shared: Arc<Shared>,
    /// Joined on drop, so a record handed over is written before the store is gone.
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Locked only between PUTs, never across one.
    slot: Mutex<Slot>,
    /// Wakes the thread (a record handed over, closing) and the waiters (a PUT done).
    changed: Condvar,
}

/// Records are numbered by generation: how many lines this run had noted when the
/// record was taken, so "is this line durable" is one comparison.
#[derive(Debug, Default)]
struct Slot {
    /// The newest record handed over and not yet taken by the thread, with its
    /// generation: a newer one replaces it.
    waiting: Option<(u64, Vec<u8>)>,
    /// The generation going up now: a waiter for it has an answer coming.
    writing: Option<u64>,
    /// The newest generation durable.
    written: u64,
    /// The newest failed PUT's generation and why, until a later one succeeds: what a
    /// flush waiting for it answers.
    failed: Option<(u64, String)>,
    /// A failure not yet told to `record`'s caller, who warns once.
    untold: Option<String>,
    /// The store is going: write what waits, then end.
    closing: bool,
}

impl RecordWriter {
    /// Starts the thread; `put` writes a whole record where it belongs.
    pub fn start(put: impl Fn(&[u8]) -> Result<(), String> + Send + 'static) -> io::Result<RecordWriter> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name("s3-record".into()).spawn(move || shared.run(put))?
        };
        Ok(RecordWriter { shared, thread: Some(thread) })
    }

    /// Hands over `record`, as of `generation`, to be written soon. Never waits.
    pub fn hand_over(&self, generation: u64, record: Vec<u8>) {
        let mut slot = self.shared.slot();
        if slot.waiting.as_ref().is_none_or(|(waiting, _)| *waiting <= generation) {
            slot.waiting = Some((generation, record));
        }
        drop(slot);
        self.shared.changed.notify_all();
    }

    /// The newest generation durable.
    pub fn written(&self) -> u64 {
        self.shared.slot().written
    }

    /// Why a PUT failed since this was last asked, once.
    pub fn untold_failure(&self) -> Option<String> {
        self.shared.slot().untold.take()
    }

    /// Blocks until `generation` is durable, or the PUT meant to make it so failed.
    pub fn wait(&self, generation: u64) -> io::Result<()> {
        let mut slot = self.shared.slot();
        loop {
            if slot.written >= generation {
                return Ok(());
            }
            let coming = slot.writing.is_some_and(|g| g >= generation)
                || slot.waiting.as_ref().is_some_and(|(g, _)| *g >= generation);
            if let Some((failed, why)) = &slot.failed
                && *failed >= generation
                && !coming
            {
                let why = why.clone();
                slot.untold = None;
                return Err(io::Error::other(why));
            }
            slot = self.shared.changed.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        self.shared.slot().closing = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The thread: takes the newest record waiting, PUTs it, says how it went.
    fn run(&self, put: impl Fn(&[u8]) -> Result<(), String>) {
        loop {
            let mut slot = self.slot();
            while slot.waiting.is_none() && !slot.closing {
                slot = self.changed.wait(slot).unwrap_or_else(|e| e.into_inner());
            }
            let Some((generation, record)) = slot.waiting.take() else { return };
            slot.writing = Some(generation);
            drop(slot);
            let result = put(&record);
            let mut slot = self.slot();
            slot.writing = None;
            match result {
                Ok(()) => {
                    slot.written = slot.written.max(generation);
                    if slot.failed.as_ref().is_some_and(|(failed, _)| *failed <= generation) {
                        slot.failed = None;
                    }
                }
                Err(why) => {
                    slot.untold = Some(why.clone());
                    slot.failed = Some((generation, why));
                }
            }
            drop(slot);
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer whose PUTs each wait for the test's go, reporting what they were handed.
    fn gated() -> (RecordWriter, mpsc::Receiver<Vec<u8>>, mpsc::SyncSender<Result<(), String>>) {
        let (seen_tx, seen) = mpsc::channel();
        let (go, go_rx) = mpsc::sync_channel::<Result<(), String>>(0);
        let go_rx = Mutex::new(go_rx);
        let writer = RecordWriter::start(move |record| {
            seen_tx.send(record.to_vec()).unwrap();
            go_rx.lock().unwrap().recv().unwrap()
        })
        .unwrap();
        (writer, seen, go)
    }

    #[test]
    fn records_handed_over_while_one_goes_up_coalesce_into_the_newest() {
        let (writer, seen, go) = gated();
        writer.hand_over(1, b"a".to_vec());
        assert_eq!(seen.recv().unwrap(), b"a");
        // Handed over while "a" is still going up: only the newest goes next.
        writer.hand_over(2, b"ab".to_vec());
        writer.hand_over(3, b"abc".to_vec());
        go.send(Ok(())).unwrap();
        assert_eq!(seen.recv().unwrap(), b"abc");
        go.send(Ok(())).unwrap();
        writer.wait(3).unwrap();
        assert_eq!(writer.written(), 3);
        drop(writer);
        assert!(seen.try_recv().is_err(), "a PUT too many");
    }

    #[test]
    fn a_failed_put_is_told_once_and_answers_the_flush_waiting_for_it() {
        let (writer, seen, go) = gated();
        writer.hand_over(1, b"a".to_vec());
        seen.recv().unwrap();
        go.send(Err("S3 answered 503".into())).unwrap();
        let err = writer.wait(1).unwrap_err();
        assert_eq!(err.to_string(), "S3 answered 503");
        writer.hand_over(1, b"a".to_vec());
        seen.recv().unwrap();
        go.send(Ok(())).unwrap();
        writer.wait(1).unwrap();
        assert_eq!(writer.untold_failure(), None, "told by the flush already");
    }

    #[test]
    fn dropping_the_writer_writes_what_waits() {
        let (writer, seen, go) = gated();
        writer.hand_over(1, b"a".to_vec());
        let answer = std::thread::spawn(move || {
            assert_eq!(seen.recv().unwrap(), b"a");
            go.send(Ok(())).unwrap();
        });
        drop(writer);
        answer.join().unwrap();
    }
}
