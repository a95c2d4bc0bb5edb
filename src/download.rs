//! What both worker kinds do with an image body, chunk by chunk: refuse it early if it
//! announces too much, check it is an image, cap its size, write it to a hidden
//! temporary file, and put it under its final name only when it is complete.
//!
//! Never imports actix: the HTTP clients differ, this does not.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use tempfile::{NamedTempFile, PersistError};

use crate::outdir::same_contents;
use crate::storage;
use crate::validate::{Format, SNIFF_BYTES, TAIL_BYTES, check_complete, check_image};
use crate::work::{Done, FetchOptions, ImageTask, TaskError, check_announced_size, check_length};

pub struct ImageSink<'a> {
    opts: &'a FetchOptions,
    task: &'a ImageTask,
    content_type: Option<String>,
    /// Deleted when dropped: a failed, cancelled or panicking download leaves nothing.
    /// Unbuffered: chunks arrive in kilobytes already, and a buffer would copy every byte
    /// once more.
    file: NamedTempFile,
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
}

impl<'a> ImageSink<'a> {
    /// Starts a download from the response headers. `content_length` only when it counts
    /// the plain bytes (no Content-Encoding).
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
            file: temp,
            written: 0,
            head: Vec::with_capacity(SNIFF_BYTES),
            format: None,
            expected: content_length,
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
        if self.expected.is_none() {
            self.keep_tail(chunk);
        }
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

    /// Ends the download: the body has ended. Checks it is complete, then puts it in place
    /// (see `commit`) and returns the name it got.
    pub fn finish(mut self) -> Result<Done, TaskError> {
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
        let sha256 = self.hasher.take().map(|h| hex(&h.finalize()));
        let temp = self.file;
        let bytes = self.written;
        let name = commit(temp, self.opts, self.task)?;
        Ok(Done::Image { bytes, name, sha256 })
    }
}

/// Puts the complete download under its name; returns the name it got. One rename in
/// the common case: no look before it, and the no-replace rename means no race either.
fn commit(temp: NamedTempFile, opts: &FetchOptions, task: &ImageTask) -> Result<String, TaskError> {
    if task.overwrite {
        temp.persist(opts.final_path(&task.name)).map_err(|e| TaskError::write(e.error))?;
        return Ok(task.name.clone());
    }
    // Made as needed: the first one almost always does.
    let suffixed = || storage::with_suffix(&task.name, &task.url);
    let candidates = (0..100).map(|n| match n {
        0 => task.name.clone(),
        1 => suffixed(),
        n => storage::with_suffix(&format!("{n}-{}", suffixed()), &task.url),
    });
    let mut temp = temp;
    for name in candidates {
        let dest = opts.final_path(&name);
        match place_new(temp, &dest, |t, d| t.persist_noclobber(d)) {
            Ok(_) => return Ok(name),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                temp = e.file;
                // The same image under this name already (an earlier run, the URL since
                // changed): keep that file, drop the download.
                if same_contents(temp.path(), &dest).unwrap_or(false) {
                    return Ok(name);
                }
            }
            Err(e) => return Err(TaskError::write(e.error)),
        }
    }
    Err(TaskError::Write(format!("every name for {} is taken by another file", task.name)))
}

/// Renames `temp` to `dest` unless something is there, with `no_replace` (the no-replace
/// rename, or a hard link where there is none). On a file system that has neither (some
/// FUSE and network mounts), looks first and renames: another program could then slip
/// a file in between, but never this run, whose names are its own.
fn place_new(
    temp: NamedTempFile,
    dest: &Path,
    no_replace: impl FnOnce(NamedTempFile, &Path) -> Result<File, PersistError>,
) -> Result<(), PersistError> {
    match no_replace(temp, dest) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.error.kind(), io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied) => {
            if dest.symlink_metadata().is_ok() {
                return Err(PersistError { error: io::ErrorKind::AlreadyExists.into(), file: e.file });
            }
            e.file.persist(dest).map(drop)
        }
        Err(e) => Err(e),
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
            linked_images: Default::default(),
            link_selector: String::new(),
        };
        FetchOptions { max_image_bytes: 100, ..FetchOptions::defaults(out, extract) }
    }

    fn task(name: &str, overwrite: bool) -> ImageTask {
        ImageTask {
            url: url::Url::parse("http://h/x.jpg").unwrap(),
            name: name.into(),
            overwrite,
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
        let (o, t) = (opts(&out), task("x.jpg", false));
        let mut sink = ImageSink::start(&o, &t, Some("image/jpeg"), Some(JPEG.len() as u64)).unwrap();
        sink.write(&JPEG[..5]).unwrap();
        sink.write(&JPEG[5..]).unwrap();
        let done = sink.finish().unwrap();
        assert_eq!(done, Done::Image { bytes: JPEG.len() as u64, name: "x.jpg".into(), sha256: None });
        assert_eq!(std::fs::read(out.final_path("x.jpg")).unwrap(), JPEG);
        assert_eq!(tmp_count(&out), 0);
    }

    #[test]
    fn refusals_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        let o = opts(&out);
        let t = task("x.jpg", false);
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
        assert!(matches!(sink.finish(), Err(TaskError::Transfer(_))));
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
        let t = task("x.jpg", false);
        let done = |name: String| Done::Image { bytes: JPEG.len() as u64, name, sha256: None };
        let download = || {
            let mut sink = ImageSink::start(&o, &t, None, None).unwrap();
            sink.write(JPEG).unwrap();
            sink.finish().unwrap()
        };
        // Identical: kept as it is, nothing new written.
        std::fs::write(out.final_path("x.jpg"), JPEG).unwrap();
        assert_eq!(download(), done("x.jpg".into()));
        assert_eq!(files(&out), ["x.jpg"]);
        // Different: saved under the URL's suffixed name; the user's file untouched.
        std::fs::write(out.final_path("x.jpg"), b"the user's own file").unwrap();
        let suffixed = storage::with_suffix("x.jpg", &t.url);
        assert_eq!(download(), done(suffixed.clone()));
        assert_eq!(std::fs::read(out.final_path("x.jpg")).unwrap(), b"the user's own file");
        assert_eq!(std::fs::read(out.final_path(&suffixed)).unwrap(), JPEG);
        // And when that is taken by something else too, the next one.
        std::fs::write(out.final_path(&suffixed), b"another").unwrap();
        let next = download();
        assert!(matches!(&next, Done::Image { name, .. } if name.starts_with("2-x-")), "{next:?}");
        assert_eq!(files(&out).len(), 3);
        assert_eq!(tmp_count(&out), 0);
    }

    #[test]
    fn without_a_no_replace_rename_a_file_there_is_still_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        // What tempfile reports where neither renameat2(NOREPLACE) nor link(2) works.
        let unsupported = |t: NamedTempFile, _: &Path| -> Result<File, PersistError> {
            Err(PersistError { error: io::ErrorKind::Unsupported.into(), file: t })
        };
        let temp = |body: &[u8]| {
            let mut t = NamedTempFile::new_in(out.tmp_dir()).unwrap();
            t.write_all(body).unwrap();
            t
        };
        let dest = out.final_path("x.jpg");
        place_new(temp(JPEG), &dest, unsupported).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), JPEG);
        let refused = place_new(temp(b"other"), &dest, unsupported).unwrap_err();
        assert_eq!(refused.error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&dest).unwrap(), JPEG);
        drop(refused);
        assert_eq!(tmp_count(&out), 0);
    }

    #[test]
    fn our_own_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        let o = opts(&out);
        std::fs::write(out.final_path("x.jpg"), b"half of it").unwrap();
        let t = task("x.jpg", true);
        let mut sink = ImageSink::start(&o, &t, None, None).unwrap();
        sink.write(JPEG).unwrap();
        sink.finish().unwrap();
        assert_eq!(std::fs::read(out.final_path("x.jpg")).unwrap(), JPEG);
        assert_eq!(files(&out), ["x.jpg"]);
    }
}
