//! A `--urls` list as it reaches the Coordinator: batches of rows from a reader thread,
//! pulled only while the frontier holds few images, so a list of any length costs the
//! memory of a few batches.

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{Receiver, Sender, channel};
use url::Url;

use crate::urllist::Carried;

/// One row of the list.
#[derive(Debug)]
pub struct ListEntry {
    /// The row's place among the list's rows, from 0: `NAME`'s `{index}`.
    pub index: u64,
    /// The image's URL, or the row's text and why it is not one (a counted failure: a
    /// dataset's list is not refused for one broken row found halfway).
    pub url: Result<Url, BadRow>,
    /// The row's other columns (a caption, a key), carried to its report item.
    pub carried: Option<Box<Carried>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub text: String,
    pub error: String,
}

/// Rows in a batch: a round trip to a shared frontier per batch, and a bound on what a
/// batch holds.
pub const BATCH: usize = 256;

/// Batches the reader may have ready ahead of the Coordinator.
const BATCHES_AHEAD: usize = 4;

/// The reader's end of the list.
pub type ListSender = Sender<Vec<ListEntry>>;

/// A channel for a list's batches: the reader sends with `blocking_send` from its own
/// thread (a read may block, as stdin's does), the Coordinator takes them.
pub fn list_channel() -> (ListSender, Feed) {
    let (tx, rx) = channel(BATCHES_AHEAD);
    (tx, Feed { rx: Some(rx), waiting: false, offering: 0, read: 0 })
}

/// The Coordinator's end of the list.
#[derive(Debug)]
pub struct Feed {
    /// `None` while a wait for the next batch holds it.
    rx: Option<Receiver<Vec<ListEntry>>>,
    /// A wait for the next batch, or for the frontier's counts, is under way: no second.
    pub waiting: bool,
    /// Rows offered to the frontier whose answer has not come: they count as queued.
    pub offering: usize,
    /// Rows taken from the list, for what a stop leaves unread.
    pub read: u64,
}

/// What the list has for the Coordinator now.
#[derive(Debug)]
pub enum Pulled {
    Batch(Vec<ListEntry>),
    /// Nothing yet: wait with [`Feed::take_receiver`].
    Empty,
    /// The list is read to its end.
    End,
}

impl Feed {
    pub fn try_pull(&mut self) -> Pulled {
        let Some(rx) = self.rx.as_mut() else { return Pulled::Empty };
        match rx.try_recv() {
            Ok(batch) => {
                self.read += batch.len() as u64;
                Pulled::Batch(batch)
            }
            Err(TryRecvError::Empty) => Pulled::Empty,
            Err(TryRecvError::Disconnected) => Pulled::End,
        }
    }

    /// The receiver, for a wait that hands it back with [`Feed::put_back`].
    pub fn take_receiver(&mut self) -> Option<Receiver<Vec<ListEntry>>> {
        self.waiting = true;
        self.rx.take()
    }

    pub fn put_back(&mut self, rx: Receiver<Vec<ListEntry>>, batch: Option<&[ListEntry]>) {
        self.waiting = false;
        self.rx = Some(rx);
        self.read += batch.map_or(0, |b| b.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32) -> ListEntry {
        ListEntry {
            index: u64::from(n),
            url: Ok(Url::parse(&format!("http://h.test/{n}.jpg")).unwrap()),
            carried: None,
        }
    }

    #[test]
    fn batches_come_in_order_then_the_end() {
        let (tx, mut feed) = list_channel();
        assert!(matches!(feed.try_pull(), Pulled::Empty));
        tx.try_send(vec![entry(1), entry(2)]).unwrap();
        tx.try_send(vec![entry(3)]).unwrap();
        drop(tx);
        let Pulled::Batch(first) = feed.try_pull() else { panic!() };
        assert_eq!(first.len(), 2);
        let Pulled::Batch(second) = feed.try_pull() else { panic!() };
        assert_eq!(second[0].url.as_ref().unwrap().path(), "/3.jpg");
        assert!(matches!(feed.try_pull(), Pulled::End));
        assert_eq!(feed.read, 3);
    }

    #[test]
    fn the_reader_waits_while_the_coordinator_has_enough() {
        let (tx, _feed) = list_channel();
        for _ in 0..BATCHES_AHEAD {
            tx.try_send(vec![entry(1)]).unwrap();
        }
        assert!(tx.try_send(vec![entry(2)]).is_err(), "bounded: the reader cannot run ahead");
    }
}
