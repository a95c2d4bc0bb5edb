//! The outputs made of one line per item (the JSON report's `items`, the JSONL manifest,
//! the failed list), written as each image ends rather than gathered: a list of millions
//! of URLs must not hold a million items. Each goes to a `.part` file beside its final
//! path and takes that name only when the run is over, so a path never holds half an
//! output. Never imports actix.

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use crate::counts::{Item, ItemKind, ItemSink, Status, Summary};
use crate::manifest::{self, ManifestKind, ManifestSink};
use crate::settings::Mode;
use crate::storage::Part;
use crate::urllist::ColumnType;

/// What the JSON report says besides its items, known only at the end.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts {
    pub mode: Mode,
    pub workers: usize,
    pub insecure: bool,
    pub elapsed: Duration,
    /// The process's peak resident memory, where the system tells it (Linux).
    pub peak_rss_kib: Option<u64>,
}

/// The SHA-256 of a stored file, by path and size: for the manifest's lines about images
/// an earlier run stored, which this run did not read.
pub type HashStored = Box<dyn Fn(&str, u64) -> Option<String>>;

/// The per-item outputs of one run.
pub struct ReportFiles {
    /// `--report FILE.json`: its items so far; the counts come at the end.
    json: Option<PartFile>,
    /// `--report FILE.jsonl` or `FILE.parquet`.
    manifest: Option<Box<dyn ManifestSink>>,
    /// `--failed FILE`: failed images' URLs so far. The failed pages are few and go
    /// first, so they wait in memory.
    failed: Option<PartFile>,
    failed_pages: Vec<String>,
    /// Fills in a skipped image's sha256 in the manifest.
    hash_stored: Option<HashStored>,
    /// The first write that failed: said at the end (the run goes on: the images are
    /// what matters).
    error: Option<String>,
}

/// Lines written to `FILE.part`, put around a head and a tail into `FILE` at the end.
struct PartFile {
    /// Removed when this is dropped, finished or not.
    part: Part,
    out: BufWriter<File>,
    lines: u64,
}

impl PartFile {
    fn create(path: &Path) -> io::Result<Self> {
        let mut part = Part::create(path)?;
        let out = BufWriter::with_capacity(64 * 1024, part.take_file());
        Ok(Self { part, out, lines: 0 })
    }

    fn path(&self) -> &Path {
        self.part.path()
    }

    fn line(&mut self, item: &Item) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, item).map_err(io::Error::other)?;
        self.lines += 1;
        self.out.write_all(b"\n")
    }

    /// Writes `head`, the part file's lines joined by `sep`, then `tail`, to the final
    /// path, by way of a second temporary file (`FILE.tmp`).
    fn finish_around(self, head: &[u8], tail: &[u8], sep: &[u8]) -> io::Result<()> {
        let Self { part, out, lines } = self;
        drop(out.into_inner().map_err(|e| e.into_error())?);
        let mut whole = Part::with_suffix(part.path(), ".tmp")?;
        let mut out = BufWriter::new(whole.take_file());
        out.write_all(head)?;
        let mut reader = io::BufReader::new(File::open(part.part_path())?);
        let mut line = Vec::new();
        for n in 0..lines {
            line.clear();
            // Lines hold no raw newline (JSON escapes them; a URL has none).
            reader.read_until(b'\n', &mut line)?;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            if n > 0 {
                out.write_all(sep)?;
            }
            out.write_all(&line)?;
        }
        out.write_all(tail)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        whole.commit()
    }
}

impl ReportFiles {
    /// Opens the part files for `--report` (a manifest of the `ManifestKind`, else the
    /// JSON report; `carried`: the list's other columns, which a Parquet file's schema
    /// names before its first row) and `--failed`. Nothing to open: `None`, and no item
    /// is kept.
    pub fn create(
        report: Option<(&Path, Option<ManifestKind>)>,
        carried: &[(String, ColumnType)],
        failed: Option<&Path>,
        hash_stored: Option<HashStored>,
    ) -> io::Result<Option<Self>> {
        if report.is_none() && failed.is_none() {
            return Ok(None);
        }
        let (json, manifest) = match report {
            Some((path, None)) => (Some(PartFile::create(path)?), None),
            Some((path, Some(kind))) => (None, Some(manifest::create(path, kind, carried)?)),
            None => (None, None),
        };
        let failed = failed.map(PartFile::create).transpose()?;
        Ok(Some(Self { json, manifest, failed, failed_pages: Vec::new(), hash_stored, error: None }))
    }

    fn write(&mut self, item: &Item) -> io::Result<()> {
        if let Some(json) = &mut self.json {
            json.line(item)?;
        }
        if let Some(manifest) = &mut self.manifest {
            let needs_hash = item.kind == ItemKind::Image
                && item.status == Status::Skipped
                && item.sha256.is_none()
                && item.bytes > 0
                && !item.path.is_empty();
            match (&self.hash_stored, needs_hash) {
                (Some(hash), true) => {
                    let sha256 = hash(&item.path, item.bytes);
                    manifest.write(&Item { sha256, ..item.clone() })?;
                }
                _ => manifest.write(item)?,
            }
        }
        if let Some(failed) = &mut self.failed
            && item.status == Status::Failed
        {
            match item.kind {
                ItemKind::Image => {
                    failed.out.write_all(item.url.as_bytes())?;
                    failed.out.write_all(b"\n")?;
                    failed.lines += 1;
                }
                ItemKind::Page => {
                    let error = item.error.as_deref().unwrap_or("failed").replace(['\n', '\r'], " ");
                    self.failed_pages.push(format!("# page {} failed: {error}: {}\n", item.page, item.url));
                }
            }
        }
        Ok(())
    }

    /// Gives every output its final name, the JSON report with the run's counts. Returns
    /// what could not be written, one line each.
    pub fn finish(self, summary: &Summary, facts: RunFacts) -> Vec<String> {
        let mut failures: Vec<String> = self.error.into_iter().collect();
        if let Some(json) = self.json {
            let path = json.path().to_path_buf();
            let head = super::report_head(summary, facts);
            if let Err(e) = json.finish_around(&head, b"\n  ]\n}\n", b",\n    ") {
                failures.push(format!("cannot write the report {}: {e}", path.display()));
            }
        }
        if let Some(manifest) = self.manifest
            && let Err(e) = manifest.finish()
        {
            failures.push(format!("cannot write the manifest: {e}"));
        }
        if let Some(failed) = self.failed {
            let path = failed.path().to_path_buf();
            let head = self.failed_pages.concat();
            // One line per URL, each ended by a newline.
            let tail: &[u8] = if failed.lines > 0 { b"\n" } else { b"" };
            if let Err(e) = failed.finish_around(head.as_bytes(), tail, b"\n") {
                failures.push(format!("cannot write the failed list {}: {e}", path.display()));
            }
        }
        failures
    }
}

impl ItemSink for ReportFiles {
    fn write(&mut self, item: &Item) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = ReportFiles::write(self, item) {
            self.error = Some(format!("cannot write the report's items: {e}"));
        }
    }
}

/// One [`ReportFiles`] the Coordinator writes to and the run finishes: both hold it,
/// on the System's thread.
#[derive(Clone)]
pub struct SharedReport(pub std::rc::Rc<std::cell::RefCell<Option<ReportFiles>>>);

impl ItemSink for SharedReport {
    fn write(&mut self, item: &Item) {
        if let Some(files) = self.0.borrow_mut().as_mut() {
            ItemSink::write(files, item);
        }
    }
}
