//! The thread that reads a `--urls` list while the run goes and sends its rows to the
//! Coordinator in batches. A read may block (stdin, a slow disk) and a Parquet batch
//! takes decoding: on a thread of its own it never stalls the Coordinator's event loop,
//! and the channel's bound keeps it only a few batches ahead, so a list of any length is
//! never held whole.

use slog::{Logger, error};

use crate::coordinator::{BATCH, BadRow, Feed, ListEntry, ListSender, list_channel};
use crate::frontier::UrlList;
use crate::settings::parse_site_url;
use crate::urllist;

/// Starts reading `list`; the Coordinator takes the rows from the returned end.
pub(super) fn start(list: &UrlList, log: &Logger) -> anyhow::Result<Feed> {
    let (tx, feed) = list_channel();
    let (spec, log) = (list.spec.clone(), log.clone());
    std::thread::Builder::new()
        .name("list-reader".into())
        .spawn(move || read(&spec, tx, &log))
        .map_err(|e| anyhow::anyhow!("--urls: cannot start the list's reader: {e}"))?;
    Ok(feed)
}

fn read(spec: &urllist::ListSpec, tx: ListSender, log: &Logger) {
    let rows = match urllist::open(spec) {
        Ok(rows) => rows,
        Err(e) => {
            let row = BadRow { text: String::new(), error: format!("cannot read the list: {e}") };
            let _ = tx.blocking_send(vec![ListEntry { index: 0, url: Err(row), carried: None }]);
            return;
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    for (index, row) in (0u64..).zip(rows) {
        let (entry, end) = match row {
            Ok(row) => {
                let url = parse_site_url(&row.url)
                    .map_err(|e| BadRow { error: format!("{}: {e}", row.at), text: row.url });
                (ListEntry { index, url, carried: row.carried }, false)
            }
            Err(e) => {
                // The rest of this list cannot be read (not UTF-8, an I/O error, a broken
                // file): one failure says so, and a re-run picks up from there.
                error!(log, "cannot read the rest of the list"; "error" => %e);
                let row =
                    BadRow { text: String::new(), error: format!("cannot read the rest of the list: {e}") };
                (ListEntry { index, url: Err(row), carried: None }, true)
            }
        };
        batch.push(entry);
        if batch.len() == BATCH || end {
            // Closed: the run stopped and reads no more.
            if tx.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err() {
                return;
            }
        }
        if end {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
}
