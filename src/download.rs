//! What both worker kinds do with an image body, chunk by chunk: refuse it early if it
//! announces too much, check it is an image, cap its size, write it to a hidden
//! temporary file, and put it under its final name only when it is complete.
//!
//! Never imports actix: the HTTP clients differ, this does not.

use std::io::{BufWriter, Write};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::outdir::same_contents;
use crate::validate::{Format, SNIFF_BYTES, TAIL_BYTES, check_complete, check_image};
use crate::work::{Done, FetchOptions, ImageTask, TaskError, check_announced_size, check_length};

pub struct ImageSink<'a> {
    opts: &'a FetchOptions,
    task: &'a ImageTask,
    content_type: Option<String>,
    /// Deleted when dropped: a failed, cancelled or panicking download leaves nothing.
    file: BufWriter<NamedTempFile>,
    written: u64,
    /// The first bytes, for the format check.
    head: Vec<u8>,
    /// What the first bytes said, once they have been checked.
    format: Option<Format>,
    /// The last bytes, for [`check_complete`] when there is no length to check.
    tail: Vec<u8>,
    /// Only when a manifest wants the SHA-256: it costs a few ns per byte.
    hasher: Option<Sha256>,
}

impl<'a> ImageSink<'a> {
    /// Starts a download from the response headers.
    pub fn start(
        opts: &'a FetchOptions,
        task: &'a ImageTask,
        content_type: Option<&str>,
        content_length: Option<u64>,
    ) -> Result<Self, TaskError> {
        check_announced_size(content_length, opts.max_image_bytes)?;
        if let Some(len) = content_length {
            check_wanted(opts, len, len)?;
        }
        let temp =
            tempfile::Builder::new().prefix("part-").tempfile_in(opts.tmp_dir()).map_err(TaskError::write)?;
        Ok(Self {
            opts,
            task,
            content_type: content_type.map(str::to_string),
            file: BufWriter::with_capacity(64 * 1024, temp),
            written: 0,
            head: Vec::with_capacity(SNIFF_BYTES),
            format: None,
            tail: Vec::new(),
            hasher: opts.hash.then(Sha256::new),
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
        self.keep_tail(chunk);
        self.file.write_all(chunk).map_err(TaskError::write)
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

    /// Ends the download: the body is complete (`expected` is its Content-Length when it
    /// counts plain bytes). Renames the file to its final name, or, when a file we did not
    /// write holds that name, keeps the existing one if identical and takes the
    /// alternative name otherwise.
    pub fn finish(mut self, expected: Option<u64>) -> Result<Done, TaskError> {
        let format = match self.format {
            Some(format) => format,
            None => self.check()?,
        };
        match expected {
            Some(_) => check_length(expected, self.written)?,
            None => {
                check_complete(format, self.written, &self.head, &self.tail).map_err(TaskError::Transfer)?
            }
        }
        check_wanted(self.opts, self.written, self.written)?;
        let sha256 = self.hasher.take().map(|h| hex(&h.finalize()));
        let temp = self.file.into_inner().map_err(|e| TaskError::write(e.into_error()))?;
        let bytes = self.written;
        let dest = self.opts.final_path(&self.task.name);
        if let Some(alternative) = &self.task.if_taken
            && dest.exists()
        {
            if same_contents(temp.path(), &dest).unwrap_or(false) {
                return Ok(Done::Image { bytes, name: self.task.name.clone(), sha256 });
            }
            temp.persist_noclobber(self.opts.final_path(alternative))
                .map_err(|e| TaskError::write(e.error))?;
            return Ok(Done::Image { bytes, name: alternative.clone(), sha256 });
        }
        temp.persist(&dest).map_err(|e| TaskError::write(e.error))?;
        Ok(Done::Image { bytes, name: self.task.name.clone(), sha256 })
    }
}

/// The size filters: `at_least` bytes are known to come (checked against the
/// minimum only once the body is complete), `so_far` have come.
fn check_wanted(opts: &FetchOptions, at_least: u64, so_far: u64) -> Result<(), TaskError> {
    if let Some(max) = opts.max_wanted_bytes
        && so_far.max(at_least) > max
    {
        return Err(TaskError::Unwanted(format!("larger than --max-size ({max} bytes)")));
    }
    if let Some(min) = opts.min_wanted_bytes
        && at_least > 0
        && at_least < min
    {
        return Err(TaskError::Unwanted(format!("smaller than --min-size ({min} bytes)")));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::ExtractRules;
    use crate::outdir::OutDir;

    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0 some jpeg payload that is long enough to sniff\xFF\xD9";

    fn opts(out: &OutDir) -> FetchOptions {
        let extract = ExtractRules {
            image_selector: "img".into(),
            attributes: vec!["src".into()],
            image_host: String::new(),
            page_count_selector: String::new(),
        };
        FetchOptions { max_image_bytes: 100, ..FetchOptions::defaults(out, extract) }
    }

    fn task(name: &str, if_taken: Option<&str>) -> ImageTask {
        ImageTask {
            url: url::Url::parse("http://h/x.jpg").unwrap(),
            name: name.into(),
            if_taken: if_taken.map(str::to_string),
            referer: None,
        }
    }

    fn files(out: &OutDir) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(out.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    fn tmp_count(out: &OutDir) -> usize {
        std::fs::read_dir(out.tmp_dir()).unwrap().count()
    }

    #[test]
    fn a_complete_image_lands_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        let (o, t) = (opts(&out), task("x.jpg", None));
        let mut sink = ImageSink::start(&o, &t, Some("image/jpeg"), Some(JPEG.len() as u64)).unwrap();
        sink.write(&JPEG[..5]).unwrap();
        sink.write(&JPEG[5..]).unwrap();
        let done = sink.finish(Some(JPEG.len() as u64)).unwrap();
        assert_eq!(done, Done::Image { bytes: JPEG.len() as u64, name: "x.jpg".into(), sha256: None });
        assert_eq!(std::fs::read(out.final_path("x.jpg")).unwrap(), JPEG);
        assert_eq!(tmp_count(&out), 0);
    }

    #[test]
    fn refusals_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        let o = opts(&out);
        let t = task("x.jpg", None);
        // Announced too large: refused before a file exists.
        assert_eq!(ImageSink::start(&o, &t, None, Some(101)).err(), Some(TaskError::TooLarge(100)));
        // Too large while streaming.
        let mut sink = ImageSink::start(&o, &t, Some("image/jpeg"), None).unwrap();
        sink.write(JPEG).unwrap();
        assert_eq!(sink.write(&[0u8; 60]), Err(TaskError::TooLarge(100)));
        drop(sink);
        // An HTML error page served as a JPEG.
        let mut sink = ImageSink::start(&o, &t, Some("image/jpeg"), None).unwrap();
        let page = b"<!DOCTYPE html><html><body>not found, sorry, but with a 200</body></html>";
        assert!(matches!(sink.write(page), Err(TaskError::NotAnImage(_))));
        drop(sink);
        // Shorter than announced.
        let mut sink = ImageSink::start(&o, &t, Some("image/jpeg"), Some(90)).unwrap();
        sink.write(JPEG).unwrap();
        assert!(matches!(sink.finish(Some(90)), Err(TaskError::Transfer(_))));
        // Cancelled mid-body.
        let mut sink = ImageSink::start(&o, &t, Some("image/jpeg"), None).unwrap();
        sink.write(&JPEG[..10]).unwrap();
        o.cancel.cancel();
        assert_eq!(sink.write(&JPEG[10..]), Err(TaskError::Interrupted));
        drop(sink);
        assert!(files(&out).is_empty());
        assert_eq!(tmp_count(&out), 0);
    }

    #[test]
    fn a_file_we_did_not_write_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        let o = opts(&out);
        std::fs::write(out.final_path("x.jpg"), JPEG).unwrap();
        let t = task("x.jpg", Some("x-1.jpg"));
        // Identical: kept as it is, nothing new written.
        let mut sink = ImageSink::start(&o, &t, None, None).unwrap();
        sink.write(JPEG).unwrap();
        assert_eq!(
            sink.finish(None).unwrap(),
            Done::Image { bytes: JPEG.len() as u64, name: "x.jpg".into(), sha256: None }
        );
        assert_eq!(files(&out), ["x.jpg"]);
        // Different: saved under the alternative name; the user's file untouched.
        std::fs::write(out.final_path("x.jpg"), b"the user's own file").unwrap();
        let mut sink = ImageSink::start(&o, &t, None, None).unwrap();
        sink.write(JPEG).unwrap();
        assert_eq!(
            sink.finish(None).unwrap(),
            Done::Image { bytes: JPEG.len() as u64, name: "x-1.jpg".into(), sha256: None }
        );
        assert_eq!(std::fs::read(out.final_path("x.jpg")).unwrap(), b"the user's own file");
        assert_eq!(std::fs::read(out.final_path("x-1.jpg")).unwrap(), JPEG);
        assert_eq!(tmp_count(&out), 0);
    }
}
