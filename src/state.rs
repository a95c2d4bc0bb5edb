//! The resume record: which image URL was completed into which file, so a re-run skips
//! exactly those images, and names every URL as it did before.
//!
//! One JSON line per completed image, appended as each completes, so an interrupted run
//! keeps what it finished. Keyed on the URL, never on the file name alone. A lost or
//! damaged record is survivable: bad lines are dropped with a warning, and files without
//! a record are never overwritten (see `work::ImageTask::overwrite`). Two URLs name one
//! file only when their images were found identical. Never imports actix.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::keyset::KeyMap;

/// An image an earlier run completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct Line<'a> {
    url: &'a str,
    path: &'a str,
    bytes: u64,
    /// Hex, when the run knew it (`DEDUPE: content`, a JSON Lines manifest): what the next
    /// run's content dedupe finds the file by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

/// `DEDUPE: content`'s memory: the first 16 bytes of a SHA-256 -> the URL hash of the image
/// stored first with it and its path. 16 bytes of digest, not 64 hex digits: a collision
/// of 128 bits is not met by accident.
pub type Digests = HashMap<u128, (u128, Box<str>)>;

/// The first 16 bytes of a hex SHA-256 (`None` if it is not one).
pub fn digest_key(sha256: &str) -> Option<u128> {
    sha256.get(..32).and_then(|hex| u128::from_str_radix(hex, 16).ok())
}

/// The key the record uses for a URL (its text: a shared job's digests hold it as text).
pub fn url_key(url: &str) -> u128 {
    xxh3_128(url.as_bytes())
}

/// Lines buffered before a write: a few KiB.
const FLUSH_EVERY: usize = 32;

/// The longest line read back: a URL is far shorter; past this the line is damage.
const LONGEST_LINE: usize = 1 << 20;

#[derive(Debug)]
pub struct Resume {
    /// Where records are appended; `None` when it cannot be written (warned once).
    file: Option<BufWriter<File>>,
    /// Lines in the buffer.
    unflushed: usize,
    path: PathBuf,
    /// The record as loaded, open for reading: an entry is read back from its line when
    /// asked for, so the record is never held in memory, however long.
    lines: Option<File>,
    /// The URL's 64-bit hash -> where its latest line starts in `lines`. 8 bytes of key
    /// and 8 of offset per image, most of it on disk for a record of millions
    /// (`keyset`); a hash shared by two URLs is told apart by the line's own URL.
    index: KeyMap<u64>,
}

/// What loading found wrong, for the caller to log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub entries: usize,
    pub bad_lines: usize,
    /// The record could not be read at all (the reason).
    pub unreadable: Option<String>,
}

impl Resume {
    /// Reads the record at `path` (absent is fine: a first run) and opens it for
    /// appending. Damaged lines are dropped and the file rewritten without them.
    pub fn load(path: &Path) -> (Self, LoadReport) {
        Self::read(path, true)
    }

    /// No record at all: nothing known, nothing written (tests, and stores that keep
    /// none).
    pub fn none() -> Self {
        Self { file: None, unflushed: 0, path: PathBuf::new(), lines: None, index: KeyMap::in_memory() }
    }

    /// Reads the record without writing or creating anything (a dry run).
    pub fn peek(path: &Path) -> (Self, LoadReport) {
        Self::read(path, false)
    }

    fn read(path: &Path, writable: bool) -> (Self, LoadReport) {
        Self::read_spilling(path, writable, crate::keyset::SPILL_AT)
    }

    /// [`Resume::read`] with the index spilling to disk past `spill_at` entries: tests
    /// spill after a handful.
    fn read_spilling(path: &Path, writable: bool, spill_at: usize) -> (Self, LoadReport) {
        let (mut resume, mut report, lines_read) = Self::index(path, writable, spill_at);
        if !writable {
            return (resume, report);
        }
        if lines_read > report.entries && report.unreadable.is_none() && resume.rewrite().is_ok() {
            // Duplicates or damage, now gone: the offsets are the new file's.
            let bad_lines = report.bad_lines;
            (resume, report, _) = Self::index(path, writable, spill_at);
            report.bad_lines = bad_lines;
        }
        resume.file = OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .ok()
            .map(BufWriter::new);
        if resume.file.is_none() && report.unreadable.is_none() {
            report.unreadable = Some("cannot open it for writing".into());
        }
        (resume, report)
    }

    /// Reads the record a line at a time into the index; also returns the lines read.
    fn index(path: &Path, writable: bool, spill_at: usize) -> (Self, LoadReport, usize) {
        let mut report = LoadReport::default();
        let mut lines_read = 0;
        // Through `open_regular`: a link planted as the record is never followed.
        let lines = match crate::outdir::open_regular(path) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                report.unreadable = Some(e.to_string());
                None
            }
        };
        // A dry run writes nothing near the out dir, not even an unnamed file.
        let spill = match (writable, path.parent()) {
            (true, Some(dir)) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => std::env::temp_dir(),
        };
        // About 64 bytes a line at least: enough filter for every line.
        let expected = lines.as_ref().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len() / 64);
        let mut index = KeyMap::with_spill(Some(spill), expected, spill_at);
        if let Some(file) = &lines {
            let mut reader = BufReader::with_capacity(64 * 1024, file);
            let (mut raw, mut offset) = (Vec::new(), 0u64);
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) => break,
                    Ok(n) => {
                        let at = offset;
                        offset += n as u64;
                        if raw == b"\n" {
                            continue;
                        }
                        lines_read += 1;
                        // A torn last line (no newline) is damage, like garbage.
                        let whole = raw.last() == Some(&b'\n');
                        match serde_json::from_slice::<Line>(&raw).ok().filter(|l| whole && is_valid(l)) {
                            Some(line) => {
                                // The latest line about a URL wins. Two URLs may name one
                                // file: a URL that changed (a CDN, a port) whose image
                                // was found identical.
                                let key = xxh3_64(line.url.as_bytes());
                                if !index.contains(key) {
                                    report.entries += 1;
                                }
                                index.put(key, at);
                            }
                            None => report.bad_lines += 1,
                        }
                    }
                    Err(e) => {
                        report.unreadable = Some(e.to_string());
                        break;
                    }
                }
            }
        }
        let resume = Self { file: None, unflushed: 0, path: path.to_path_buf(), lines, index };
        (resume, report, lines_read)
    }

    pub fn get(&self, url: &Url) -> Option<Entry> {
        let at = self.index.get(xxh3_64(url.as_str().as_bytes()))?;
        let raw = read_line_at(self.lines.as_ref()?, at)?;
        let line = serde_json::from_slice::<Line>(&raw).ok()?;
        (line.url == url.as_str()).then(|| Entry { path: line.path.to_string(), bytes: line.bytes })
    }

    /// Records a completed image. A failure to write is returned for the caller to warn
    /// about; the image itself is fine, only a re-run would fetch it again.
    ///
    /// Lines are buffered and written in batches (and when the record is dropped): a
    /// write per image would cost a system call each. What a killed process had not yet
    /// written is found again by the next run, whose downloads are then recognised as
    /// identical to the files already there. The index is not updated: a URL is seen
    /// once per run, and the index would grow with the run.
    pub fn record(&mut self, url: &Url, path: &str, bytes: u64) -> io::Result<()> {
        self.record_content(url, path, bytes, None)
    }

    /// [`Resume::record`] with the image's SHA-256, when known.
    pub fn record_content(
        &mut self,
        url: &Url,
        path: &str,
        bytes: u64,
        sha256: Option<&str>,
    ) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("resume record not open"))?;
        let sha256 = sha256.map(str::to_string);
        serde_json::to_writer(&mut *file, &Line { url: url.as_str(), path, bytes, sha256 })
            .map_err(io::Error::other)?;
        file.write_all(b"\n")?;
        self.unflushed += 1;
        if self.unflushed >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is buffered (whole lines only, on an O_APPEND file).
    pub fn flush(&mut self) -> io::Result<()> {
        self.unflushed = 0;
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }

    /// The digests the record at `path` names, for `DEDUPE: content`: read on their own,
    /// so a run without it keeps none. The first line with a digest wins (the first copy).
    pub fn digests(path: &Path) -> Digests {
        let mut digests = Digests::new();
        let Ok(file) = crate::outdir::open_regular(path) else { return digests };
        for raw in BufReader::with_capacity(64 * 1024, file).split(b'\n').map_while(Result::ok) {
            let Ok(line) = serde_json::from_slice::<Line>(&raw) else { continue };
            let Some(key) = line.sha256.as_deref().and_then(digest_key) else { continue };
            if is_safe_name(line.path) {
                digests.entry(key).or_insert_with(|| (xxh3_128(line.url.as_bytes()), line.path.into()));
            }
        }
        digests
    }

    /// Writes the record again with only each URL's latest valid line, a line at a
    /// time, and puts it in place of the old one in one rename.
    fn rewrite(&self) -> io::Result<()> {
        let Some(file) = &self.lines else { return Ok(()) };
        let mut whole = crate::storage::Part::create(&self.path)?;
        let mut out = BufWriter::with_capacity(64 * 1024, whole.take_file());
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        reader.rewind()?;
        let (mut raw, mut offset) = (Vec::new(), 0u64);
        loop {
            raw.clear();
            let n = reader.read_until(b'\n', &mut raw)?;
            if n == 0 {
                break;
            }
            let at = offset;
            offset += n as u64;
            if raw.last() != Some(&b'\n') {
                continue;
            }
            let Ok(line) = serde_json::from_slice::<Line>(&raw) else { continue };
            if is_valid(&line) && self.index.get(xxh3_64(line.url.as_bytes())) == Some(at) {
                out.write_all(&raw)?;
            }
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        whole.commit()
    }
}

/// A line the record may keep: a URL, and a name `storage` could have made.
fn is_valid(line: &Line) -> bool {
    is_safe_name(line.path) && Url::parse(line.url).is_ok()
}

/// The line that starts at `at`, newline included; `None` if it cannot be read whole.
fn read_line_at(file: &File, at: u64) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 512];
    while line.len() < LONGEST_LINE {
        let n = file.read_at(&mut chunk, at + line.len() as u64).ok()?;
        if n == 0 {
            return None;
        }
        match chunk[..n].iter().position(|b| *b == b'\n') {
            Some(end) => {
                line.extend_from_slice(&chunk[..=end]);
                return Some(line);
            }
            None => line.extend_from_slice(&chunk[..n]),
        }
    }
    None
}

/// A name a record may point at: a relative path of the kind `storage` and `NAME`
/// templates produce (no `..`, no leading `/`, nothing in the tool's own folder).
fn is_safe_name(name: &str) -> bool {
    crate::storage::is_safe_path(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn records_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("done.jsonl");
        let (mut r, report) = Resume::load(&path);
        assert_eq!(report, LoadReport::default());
        r.record(&url("http://h/a/cat.jpg"), "cat.jpg", 10).unwrap();
        r.record(&url("http://h/b/cat.jpg"), "cat-12345678.jpg", 20).unwrap();
        drop(r);
        let (r, report) = Resume::load(&path);
        assert_eq!(report.entries, 2);
        assert_eq!(r.get(&url("http://h/a/cat.jpg")), Some(Entry { path: "cat.jpg".into(), bytes: 10 }));
        assert_eq!(r.get(&url("http://h/b/cat.jpg")).unwrap().path, "cat-12345678.jpg");
        assert_eq!(r.get(&url("http://h/c/cat.jpg")), None);
    }

    #[test]
    fn damage_is_dropped_and_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("done.jsonl");
        let text = concat!(
            "{\"url\":\"http://h/a.jpg\",\"path\":\"a.jpg\",\"bytes\":1}\n",
            "garbage\n",
            "{\"url\":\"http://h/evil.jpg\",\"path\":\"../../evil\",\"bytes\":1}\n",
            "{\"url\":\"http://h/hidden.jpg\",\"path\":\".bashrc\",\"bytes\":1}\n",
            "{\"url\":\"http://h/own.jpg\",\"path\":\"x/.image-scraper/done.jsonl\",\"bytes\":1}\n",
            "{\"url\":\"http://h/up.jpg\",\"path\":\"x/../../up\",\"bytes\":1}\n",
            "{\"url\":\"http://h/a.jpg\",\"path\":\"a.jpg\",\"bytes\":2}\n",
            "{\"url\":\"http://h/b.jpg\",\"path\":\"b.jp", // torn last line
        );
        std::fs::write(&path, text).unwrap();
        let (r, report) = Resume::load(&path);
        assert_eq!(report.entries, 1);
        assert_eq!(report.bad_lines, 6);
        assert_eq!(r.get(&url("http://h/a.jpg")).unwrap().bytes, 2, "the latest line wins");
        let rewritten = std::fs::read_to_string(&path).unwrap();
        assert_eq!(rewritten, "{\"url\":\"http://h/a.jpg\",\"path\":\"a.jpg\",\"bytes\":2}\n");
    }

    #[test]
    fn digests_and_templated_paths_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("done.jsonl");
        let (mut r, _) = Resume::load(&path);
        let sha = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        r.record_content(&url("http://h/a.jpg"), "h/a/a.jpg", 3, Some(sha)).unwrap();
        r.record_content(&url("http://h/b.jpg"), "h/b.jpg", 3, Some(sha)).unwrap();
        r.record(&url("http://h/c.jpg"), "c.jpg", 3).unwrap();
        drop(r);
        let (r, report) = Resume::load(&path);
        assert_eq!(report.bad_lines, 0);
        assert_eq!(r.get(&url("http://h/a.jpg")).unwrap().path, "h/a/a.jpg");
        let digests = Resume::digests(&path);
        assert_eq!(digests.len(), 1);
        let (first_url, first_path) = &digests[&digest_key(sha).unwrap()];
        assert_eq!((*first_url, &**first_path), (url_key("http://h/a.jpg"), "h/a/a.jpg"), "the first copy");
    }

    #[test]
    fn a_long_record_is_read_back_from_disk_and_cleaned_as_a_short_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("done.jsonl");
        let mut text = String::new();
        for i in 0..500 {
            text += &format!("{{\"url\":\"http://h/{i}.jpg\",\"path\":\"{i}.jpg\",\"bytes\":{i}}}\n");
            if i % 100 == 7 {
                text += "garbage\n";
                // Recorded again later (a forced re-fetch): the later line wins.
                text += &format!(
                    "{{\"url\":\"http://h/{}.jpg\",\"path\":\"again-{}.jpg\",\"bytes\":1}}\n",
                    i - 5,
                    i - 5
                );
            }
        }
        std::fs::write(&path, &text).unwrap();
        let (r, report) = Resume::read_spilling(&path, true, 16);
        assert_eq!((report.entries, report.bad_lines), (500, 5));
        assert!(r.index.runs() >= 1, "spilled");
        for i in 0..500 {
            let want = match i % 100 == 2 {
                true => Entry { path: format!("again-{i}.jpg"), bytes: 1 },
                false => Entry { path: format!("{i}.jpg"), bytes: i },
            };
            assert_eq!(r.get(&url(&format!("http://h/{i}.jpg"))), Some(want), "{i}");
        }
        assert_eq!(r.get(&url("http://h/500.jpg")), None);
        drop(r);
        let rewritten = std::fs::read_to_string(&path).unwrap();
        assert_eq!(rewritten.lines().count(), 500, "one line a URL, garbage gone");
        assert!(!rewritten.contains("garbage") && !rewritten.contains("\"path\":\"2.jpg\""));
    }

    #[test]
    fn two_urls_may_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("done.jsonl");
        let text = concat!(
            "{\"url\":\"http://h/a/x.jpg\",\"path\":\"x.jpg\",\"bytes\":1}\n",
            "{\"url\":\"http://h/b/x.jpg\",\"path\":\"x.jpg\",\"bytes\":2}\n",
        );
        std::fs::write(&path, text).unwrap();
        let (r, _) = Resume::load(&path);
        assert_eq!(r.get(&url("http://h/a/x.jpg")).unwrap().path, "x.jpg");
        assert_eq!(r.get(&url("http://h/b/x.jpg")).unwrap().path, "x.jpg");
    }

    #[test]
    fn an_unreadable_record_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("done.jsonl");
        std::fs::create_dir(&path).unwrap();
        let (r, report) = Resume::load(&path);
        assert!(report.unreadable.is_some());
        assert_eq!(r.get(&url("http://h/a.jpg")), None);
    }
}
