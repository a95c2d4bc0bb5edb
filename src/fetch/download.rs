//! What both worker kinds do with a body, chunk by chunk: undo its Content-Encoding
//! ([`Body`]); for an image, refuse it early if it announces too much, check it is an
//! image, cap its size and check it is complete, whatever the store it goes to, and
//! hand it to the store's writer ([`ImageSink`]); for a page, hold it up to a cap
//! ([`Capped`]).
//!
//! Never imports actix: the HTTP clients differ, this does not.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

use crate::counts::SkipReason;
use crate::fetch::checks::{check_announced_size, check_length};
use crate::fetch::decode::Decoder;
use crate::fetch::dimensions::{HeaderProbe, Judgement};
use crate::fetch::options::FetchOptions;
use crate::fetch::validate::{Format, SNIFF_BYTES, TAIL_BYTES, check_complete, check_image};
use crate::storage;
use crate::store::{Backlog, Commit, Writer};
use crate::work::{ImageTask, TaskError};

pub struct ImageSink<'a> {
    opts: &'a FetchOptions,
    content_type: Option<String>,
    /// The store's: dropped without a commit, it leaves nothing behind.
    writer: Box<dyn Writer>,
    written: u64,
    /// The first bytes, for the format check.
    head: Vec<u8>,
    /// What the first bytes said, once they have been checked.
    format: Option<Format>,
    /// The plain Content-Length, when the server announced one: the length the body must
    /// have to be complete.
    expected: Option<u64>,
    /// The last bytes, for [`check_complete`], kept only when there is no length to check
    /// (copying them out of every chunk is not free).
    tail: Vec<u8>,
    /// Only when a manifest wants the SHA-256: it costs a few ns per byte.
    hasher: Option<Sha256>,
    /// Only while the header has not told the dimensions (for the manifest, and the
    /// `MIN_WIDTH`... filters); gone once it has, so the rest of the body costs nothing
    /// more.
    probe: Option<HeaderProbe>,
    /// Width and height, once the probe read them.
    size: Option<(u32, u32)>,
}

impl<'a> ImageSink<'a> {
    /// Starts a download from the response headers. `content_length` only when it counts
    /// the plain bytes (no Content-Encoding). Awaits the store's opening (a shared job's
    /// bucket asks the job for the name).
    pub async fn start(
        opts: &'a FetchOptions,
        task: &'a ImageTask,
        content_type: Option<&str>,
        content_length: Option<u64>,
    ) -> Result<Self, TaskError> {
        check_announced_size(content_length, opts.max_image_bytes)?;
        if let Some(len) = content_length {
            check_wanted(opts, len, len)?;
        }
        // A `NAME` whose `{ext}` the URL could not tell: the Content-Type tells it now.
        let filled;
        let task = match task.name.contains(storage::EXT_HOLE) {
            true => {
                let ext = storage::ext_of_type(content_type);
                filled = ImageTask { name: storage::fill_holes(&task.name, Some(ext), None), ..task.clone() };
                &filled
            }
            false => task,
        };
        let writer = opts.store.begin(task).await?;
        Ok(Self {
            opts,
            content_type: content_type.map(str::to_string),
            writer,
            written: 0,
            head: Vec::with_capacity(SNIFF_BYTES),
            format: None,
            expected: content_length,
            tail: Vec::new(),
            hasher: opts.hash.then(Sha256::new),
            probe: Some(HeaderProbe::new(opts.dimensions)),
            size: None,
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<(), TaskError> {
        if self.opts.cancel.is_cancelled() {
            return Err(TaskError::Interrupted);
        }
        self.written += chunk.len() as u64;
        if self.written > self.opts.max_image_bytes {
            return Err(TaskError::TooLarge(self.opts.max_image_bytes));
        }
        check_wanted(self.opts, 0, self.written)?;
        self.judge_dimensions(chunk)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(chunk);
        }
        if self.format.is_none() {
            let take = (SNIFF_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            if self.head.len() >= SNIFF_BYTES {
                self.check()?;
            }
        }
        if self.expected.is_none() {
            self.keep_tail(chunk);
        }
        self.writer.write(chunk)
    }

    /// Refuses the image as soon as its header shows dimensions the filter does not want:
    /// the error ends the read, so the rest of the body never comes, and the writer is
    /// dropped with what it had.
    fn judge_dimensions(&mut self, chunk: &[u8]) -> Result<(), TaskError> {
        let Some(probe) = &mut self.probe else {
            return Ok(());
        };
        match probe.feed(chunk) {
            Judgement::Unknown => Ok(()),
            Judgement::Pass => {
                self.size = probe.size();
                self.probe = None;
                Ok(())
            }
            Judgement::Refuse(why) => Err(TaskError::Unwanted(SkipReason::Dimensions, why)),
        }
    }

    /// The writer's work going on elsewhere, for the read loop to wait on (see
    /// [`Writer::backlog`]).
    pub fn backlog(&self) -> Option<Box<dyn Backlog>> {
        self.writer.backlog()
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_BYTES {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - TAIL_BYTES..]);
        } else {
            self.tail.extend_from_slice(chunk);
            let excess = self.tail.len().saturating_sub(TAIL_BYTES);
            self.tail.drain(..excess);
        }
    }

    fn check(&mut self) -> Result<Format, TaskError> {
        let format = check_image(self.content_type.as_deref(), &self.head).map_err(TaskError::NotAnImage)?;
        self.format = Some(format);
        Ok(format)
    }

    /// Ends the download: the body has ended. Checks it is complete, then asks the store
    /// to put it under its name.
    pub fn finish(mut self) -> Result<Checked, TaskError> {
        let format = match self.format {
            Some(format) => format,
            None => self.check()?,
        };
        match self.expected {
            Some(_) => check_length(self.expected, self.written)?,
            None => {
                check_complete(format, self.written, &self.head, &self.tail).map_err(TaskError::Transfer)?
            }
        }
        check_wanted(self.opts, self.written, self.written)?;
        let sha256 = self.hasher.take().map(|h| storage::hex(&h.finalize()));
        let (width, height) = self.size.unzip();
        let content_type = self.content_type.take();
        Ok(Checked { commit: self.writer.commit(), bytes: self.written, sha256, content_type, width, height })
    }
}

/// An image that passed every check, on its way under its name.
pub struct Checked {
    /// The store's last step (done, or blocking work for the caller to run).
    pub commit: Commit,
    pub bytes: u64,
    /// When a manifest asked for it.
    pub sha256: Option<String>,
    /// The response's, as sent: for the manifest.
    pub content_type: Option<String>,
    /// From the header bytes; `None` when they did not tell.
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// The decoded bytes of an image go through the sink's checks; its errors travel
/// through `io::Error` to the decoder's caller and come back out in [`from_io`].
impl Write for ImageSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        ImageSink::write(self, buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A page or robots.txt body held in memory, up to `limit` bytes.
pub struct Capped {
    pub bytes: Vec<u8>,
    limit: u64,
}

impl Capped {
    pub fn new(limit: u64) -> Self {
        Self { bytes: Vec::new(), limit }
    }
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if (self.bytes.len() + buf.len()) as u64 > self.limit {
            return Err(io::Error::other(TaskError::TooLarge(self.limit)));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A response body on its way into a sink: its Content-Encoding undone layer by layer.
/// Both workers feed it the chunks their client reads.
pub struct Body<'s> {
    decoder: Decoder<'s>,
}

impl<'s> Body<'s> {
    /// Fails at once, before any byte is read, on a coding that cannot be undone.
    pub fn new(content_encoding: Option<&str>, sink: &'s mut (impl Write + 's)) -> Result<Self, TaskError> {
        let decoder = Decoder::new(content_encoding, sink).map_err(|e| TaskError::Decode(e.to_string()))?;
        Ok(Self { decoder })
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<(), TaskError> {
        self.decoder.write(chunk).map_err(from_io)
    }

    /// The body ended: every coding layer must have ended too.
    pub fn finish(self) -> Result<(), TaskError> {
        self.decoder.finish().map_err(from_io)
    }
}

/// A sink's own [`TaskError`] as it was; anything else is the decoder's complaint.
fn from_io(err: io::Error) -> TaskError {
    match err.get_ref().and_then(|e| e.downcast_ref::<TaskError>()) {
        Some(task) => task.clone(),
        None => TaskError::Decode(err.to_string()),
    }
}

/// The size filters: `at_least` bytes are known to come (checked against the
/// minimum only once the body is complete), `so_far` have come.
fn check_wanted(opts: &FetchOptions, at_least: u64, so_far: u64) -> Result<(), TaskError> {
    if let Some(max) = opts.max_wanted_bytes
        && so_far.max(at_least) > max
    {
        return Err(TaskError::Unwanted(SkipReason::Size, format!("larger than --max-size ({max} bytes)")));
    }
    if let Some(min) = opts.min_wanted_bytes
        && at_least > 0
        && at_least < min
    {
        return Err(TaskError::Unwanted(SkipReason::Size, format!("smaller than --min-size ({min} bytes)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::dimensions::DimensionFilter;
    use crate::outdir::OutDir;
    use crate::store::folder::FolderStore;
    use std::sync::Arc;

    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0 some jpeg payload that is long enough to sniff\xFF\xD9";

    fn opts(out: &OutDir) -> FetchOptions {
        FetchOptions {
            max_image_bytes: 100,
            ..FetchOptions::new(Arc::new(FolderStore::fresh(out.clone())), crate::fetch::image_rules())
        }
    }

    fn task(name: &str) -> ImageTask {
        ImageTask {
            url: url::Url::parse("http://h/x.jpg").unwrap(),
            name: name.into(),
            overwrite: false,
            referer: None,
        }
    }

    /// A sink into a folder, which opens at once.
    fn start<'a>(
        o: &'a FetchOptions,
        t: &'a ImageTask,
        content_type: Option<&str>,
        length: Option<u64>,
    ) -> Result<ImageSink<'a>, TaskError> {
        crate::fetch::run_blocking(ImageSink::start(o, t, content_type, length))
    }

    fn name(checked: Checked) -> String {
        match checked.commit {
            Commit::Done(name) => name.unwrap(),
            Commit::Blocking(job) => job().unwrap(),
            Commit::Pending(answer) => crate::fetch::run_blocking(answer).unwrap(),
        }
    }

    #[test]
    fn a_complete_image_lands_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        let (o, t) = (opts(&out), task("x.jpg"));
        let mut sink = start(&o, &t, Some("image/jpeg"), Some(JPEG.len() as u64)).unwrap();
        sink.write(&JPEG[..5]).unwrap();
        sink.write(&JPEG[5..]).unwrap();
        let checked = sink.finish().unwrap();
        assert_eq!((checked.bytes, checked.sha256.clone()), (JPEG.len() as u64, None));
        assert_eq!(name(checked), "x.jpg");
        assert_eq!(std::fs::read(out.final_path("x.jpg")).unwrap(), JPEG);
        assert_eq!(out.tmp_count(), 0);
    }

    #[test]
    fn refusals_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        let o = opts(&out);
        let t = task("x.jpg");
        // Announced too large: refused before a file exists.
        assert_eq!(
            start(&o, &t, None, Some(101)).err().map(|e| e.to_string()),
            Some(TaskError::TooLarge(100).to_string())
        );
        // Too large while streaming.
        let mut sink = start(&o, &t, Some("image/jpeg"), None).unwrap();
        sink.write(JPEG).unwrap();
        assert_eq!(sink.write(&[0u8; 60]), Err(TaskError::TooLarge(100)));
        drop(sink);
        // An HTML error page served as a JPEG.
        let mut sink = start(&o, &t, Some("image/jpeg"), None).unwrap();
        let page = b"<!DOCTYPE html><html><body>not found, sorry, but with a 200</body></html>";
        assert!(matches!(sink.write(page), Err(TaskError::NotAnImage(_))));
        drop(sink);
        // Shorter than announced.
        let mut sink = start(&o, &t, Some("image/jpeg"), Some(90)).unwrap();
        sink.write(JPEG).unwrap();
        assert!(matches!(sink.finish().err(), Some(TaskError::Transfer(_))));
        // Cancelled mid-body.
        let mut sink = start(&o, &t, Some("image/jpeg"), None).unwrap();
        sink.write(&JPEG[..10]).unwrap();
        o.cancel.cancel();
        assert_eq!(sink.write(&JPEG[10..]), Err(TaskError::Interrupted));
        drop(sink);
        assert!(out.image_names().is_empty());
        assert_eq!(out.tmp_count(), 0);
    }

    #[test]
    fn an_image_too_small_by_its_header_is_refused_there_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        let dimensions = DimensionFilter { min_width: Some(64), ..DimensionFilter::default() };
        let o = FetchOptions { dimensions, max_image_bytes: 1 << 20, ..opts(&out) };
        let t = task("x.png");
        let png = crate::demo::thumbnail(crate::demo::Picture::Logo);
        let mut sink = start(&o, &t, Some("image/png"), None).unwrap();
        // The signature alone tells nothing yet; the IHDR that follows does.
        sink.write(&png[..8]).unwrap();
        let refused = sink.write(&png[8..]).unwrap_err();
        assert_eq!(
            refused,
            TaskError::Unwanted(SkipReason::Dimensions, "40x30 is narrower than MIN_WIDTH (64 px)".into())
        );
        drop(sink);
        assert!(out.image_names().is_empty());
        assert_eq!(out.tmp_count(), 0);
        // Wide enough (120x40): judged once, then streamed and stored as any other.
        let png = crate::demo::png(crate::demo::Picture::Logo);
        let mut sink = start(&o, &t, Some("image/png"), None).unwrap();
        sink.write(&png).unwrap();
        assert!(sink.probe.is_none(), "no header kept once judged");
        assert_eq!(name(sink.finish().unwrap()), "x.png");
    }
}
