//! The thread that reads a `--urls` list while the run goes and sends its rows to the
//! Coordinator in batches. A read may block (stdin, a slow disk): on a thread of its own
//! it never stalls the Coordinator's event loop, and the channel's bound keeps it only a
//! few batches ahead, so a list of any length is never held whole.

use std::io::{BufReader, Read};
use std::path::PathBuf;

use slog::{Logger, error};

use crate::coordinator::{BATCH, BadRow, Feed, ListEntry, ListSender, list_channel};
use crate::frontier::UrlList;
use crate::settings::parse_site_url;

/// Starts reading `list`; the Coordinator takes the rows from the returned end.
pub(super) fn start(list: &UrlList, log: &Logger) -> anyhow::Result<Feed> {
    let (tx, feed) = list_channel();
    let (path, log) = (list.path.clone(), log.clone());
    std::thread::Builder::new()
        .name("list-reader".into())
        .spawn(move || read(path, tx, &log))
        .map_err(|e| anyhow::anyhow!("--urls: cannot start the list's reader: {e}"))?;
    Ok(feed)
}

fn read(path: PathBuf, tx: ListSender, log: &Logger) {
    let name = path.display().to_string();
    let input: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        match std::fs::File::open(&path) {
            Ok(file) => Box::new(file),
            Err(e) => {
                let row = BadRow { text: name.clone(), error: format!("cannot read the list: {e}") };
                let _ = tx.blocking_send(vec![ListEntry { index: 0, url: Err(row) }]);
                return;
            }
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    let rows = crate::urllist::read_entries(BufReader::with_capacity(256 * 1024, input));
    for (index, entry) in (0u64..).zip(rows) {
        let (url, end) = match entry {
            Ok((n, text)) => {
                (parse_site_url(&text).map_err(|e| BadRow { error: format!("{name}:{n}: {e}"), text }), false)
            }
            Err(e) => {
                // The rest of the list cannot be read (not UTF-8, an I/O error): one
                // failure says so, and a re-run picks up from there once it reads.
                error!(log, "cannot read the rest of the list"; "list" => &name, "error" => %e);
                let error = format!("cannot read the rest of the list: {e}");
                (Err(BadRow { text: name.clone(), error }), true)
            }
        };
        batch.push(ListEntry { index, url });
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
