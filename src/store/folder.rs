//! The out dir as a [`Store`]: each image written to a temporary file in
//! `.image-scraper/tmp/` (same file system, so the final rename is atomic), put under its
//! name by a no-replace rename (an identical file already there is adopted, a different
//! one is never replaced: the image takes the URL-suffixed name), and recorded in
//! `.image-scraper/done.jsonl` for the next run.
//!
//! Never imports actix.

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tempfile::{NamedTempFile, PersistError};
use url::Url;

use super::{Commit, Lookup, Opening, Store, Writer};
use crate::outdir::{OutDir, PART_PREFIX, is_regular_file, same_contents};
use crate::state::{Digests, Resume, digest_key, url_key};
use crate::storage;
use crate::task::{ImageTask, TaskError};

#[derive(Debug)]
pub struct FolderStore {
    out: OutDir,
    /// Read at the start, appended to as images complete. Only the Coordinator records,
    /// so the lock is never contended; it makes the store shareable with the workers.
    resume: Mutex<Resume>,
    /// `DEDUPE: content`: the bytes stored so far (this run's and the record's), shared
    /// with the writers, which look a digest up and put a file under its name in one
    /// step, so two writers with the same bytes store one copy.
    digests: Option<Arc<Mutex<Digests>>>,
    /// `--archive`: a recorded image whose file is gone was moved away by its owner, and
    /// is complete; only a file there with the wrong size is fetched again.
    archive: bool,
}

impl FolderStore {
    pub fn new(out: OutDir, resume: Resume) -> Self {
        Self { out, resume: Mutex::new(resume), digests: None, archive: false }
    }

    /// See `archive`.
    pub fn with_archive(self, archive: bool) -> Self {
        Self { archive, ..self }
    }

    /// `DEDUPE: content`: bytes already stored (by this run, or an earlier one whose
    /// record has their SHA-256) are not stored again.
    pub fn with_dedupe(self) -> Self {
        let digests = Resume::digests(&self.out.state_file());
        Self { digests: Some(Arc::new(Mutex::new(digests))), ..self }
    }

    /// The out dir with no record of an earlier run: every image is new to it.
    pub fn fresh(out: OutDir) -> Self {
        Self::new(out, Resume::none())
    }

    pub fn out(&self) -> &OutDir {
        &self.out
    }

    fn resume(&self) -> std::sync::MutexGuard<'_, Resume> {
        self.resume.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for FolderStore {
    /// Ready at once: a local file, nothing to ask.
    fn begin<'a>(&'a self, task: &'a ImageTask) -> Opening<'a> {
        // 0666 less the umask, as curl and wget create files: set at creation, so the
        // final name never holds a file of another mode. (tempfile's default is 0600.)
        let file = tempfile::Builder::new()
            .prefix(PART_PREFIX)
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(self.out.tmp_dir())
            .map_err(TaskError::write);
        let writer = file.map(|file| {
            // A `NAME` with `{sha256}`: the name is known once the bytes are.
            let hashed = task.name.contains(storage::SHA256_HOLE) || self.digests.is_some();
            let (root, digests) = (self.out.root().to_path_buf(), self.digests.clone());
            let hasher = hashed.then(Sha256::new);
            Box::new(FolderWriter { file, root, task: task.clone(), hasher, digests }) as Box<dyn Writer>
        });
        Box::pin(std::future::ready(writer))
    }

    fn lookup(&self, url: &Url) -> Lookup {
        let Some(done) = self.resume().get(url) else {
            return Lookup::Unknown;
        };
        // Never through a link: a planted one must not pass for our file.
        let on_disk = std::fs::symlink_metadata(self.out.final_path(&done.path))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let moved_away = self.archive && on_disk.is_none();
        match on_disk == Some(done.bytes) || moved_away {
            true => Lookup::Complete { name: done.path, bytes: done.bytes },
            false => Lookup::Stale { name: done.path },
        }
    }

    fn record(&self, url: &Url, name: &str, bytes: u64) -> io::Result<()> {
        self.resume().record(url, name, bytes)
    }

    fn record_content(&self, url: &Url, name: &str, bytes: u64, sha256: Option<&str>) -> io::Result<()> {
        self.resume().record_content(url, name, bytes, sha256)
    }

    fn first_copy(&self, url: &Url, sha256: &str) -> Option<String> {
        let digests = self.digests.as_ref()?.lock().unwrap_or_else(|e| e.into_inner());
        let (first_url, path) = digests.get(&digest_key(sha256)?)?;
        (*first_url != url_key(url)).then(|| path.to_string())
    }

    fn flush(&self) -> io::Result<()> {
        self.resume().flush()
    }

    fn sha256(&self, name: &str, bytes: u64) -> Option<String> {
        use sha2::{Digest, Sha256};
        // Through `open_regular`: a link or a FIFO planted under the name is never read.
        let mut file = crate::outdir::open_regular(&self.out.final_path(name)).ok()?;
        if file.metadata().ok()?.len() != bytes {
            return None;
        }
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher).ok()?;
        Some(crate::storage::hex(&hasher.finalize()))
    }

    fn remove_partials(&self) {
        let _ = self.out.remove_partials();
    }
}

struct FolderWriter {
    /// Deleted when dropped: a failed, cancelled or panicking download leaves nothing.
    /// Unbuffered: chunks arrive in kilobytes already, and a buffer would copy every byte
    /// once more.
    file: NamedTempFile,
    root: PathBuf,
    task: ImageTask,
    /// For a name that holds `{sha256}` (what fills it at commit), or `DEDUPE: content`.
    hasher: Option<Sha256>,
    /// `DEDUPE: content`: the store's digests.
    digests: Option<Arc<Mutex<Digests>>>,
}

impl Writer for FolderWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), TaskError> {
        if let Some(hasher) = &mut self.hasher {
            hasher.update(bytes);
        }
        self.file.write_all(bytes).map_err(TaskError::write)
    }

    /// A rename or two: cheap enough to do on the worker's own thread.
    fn commit(self: Box<Self>) -> Commit {
        let FolderWriter { file, root, mut task, hasher, digests } = *self;
        let Some(hasher) = hasher else { return Commit::Done(commit(file, &root, &task)) };
        let digest = storage::hex(&hasher.finalize());
        task.name = storage::fill_holes(&task.name, None, Some(&digest));
        let (Some(digests), Some(key)) = (digests, digest_key(&digest)) else {
            return Commit::Done(commit(file, &root, &task));
        };
        // Held across the rename: the second of two writers with one content must see
        // the first's file.
        let mut digests = digests.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, first)) = digests.get(&key)
            && is_regular_file(&storage::destination(&root, first))
        {
            // Stored already: the download is dropped with its temporary file.
            return Commit::Done(Ok(first.to_string()));
        }
        let stored = commit(file, &root, &task);
        if let Ok(name) = &stored {
            digests.insert(key, (url_key(&task.url), name.as_str().into()));
        }
        Commit::Done(stored)
    }
}

/// Puts the complete download under its name; returns the name it got. One rename in
/// the common case: no look before it, and the no-replace rename means no race either.
fn commit(temp: NamedTempFile, root: &Path, task: &ImageTask) -> Result<String, TaskError> {
    // A `NAME` template's folders; its suffixed names below share them.
    crate::outdir::make_folders(root, &task.name).map_err(TaskError::write)?;
    let own = storage::destination(root, &task.name);
    // Ours to replace only while it is still a plain file (or gone): a link, FIFO or
    // folder put there since is a clash like any other.
    if task.overwrite && (is_regular_file(&own) || own.symlink_metadata().is_err()) {
        temp.persist(own).map_err(|e| TaskError::write(e.error))?;
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
        let dest = storage::destination(root, &name);
        match place_new(temp, &dest, |t, d| t.persist_noclobber(d)) {
            Ok(_) => return Ok(name),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                temp = e.file;
                // The same image under this name already (an earlier run, the URL since
                // changed): keep that file, drop the download. Only a regular file is
                // compared: a link, FIFO, socket or folder there is never opened.
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

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0 some jpeg payload that is long enough to sniff\xFF\xD9";

    fn store(dir: &Path) -> FolderStore {
        let out = OutDir::open(dir).unwrap();
        let (resume, _) = Resume::load(&out.state_file());
        FolderStore::new(out, resume)
    }

    fn task(name: &str, overwrite: bool) -> ImageTask {
        ImageTask {
            url: url::Url::parse("http://h/x.jpg").unwrap(),
            name: name.into(),
            overwrite,
            referer: None,
        }
    }

    /// A writer, which a folder opens at once.
    fn opened(store: &FolderStore, task: &ImageTask) -> Box<dyn Writer> {
        store.begin(task).now_or_never().expect("ready at once").unwrap()
    }

    fn save(store: &FolderStore, task: &ImageTask, body: &[u8]) -> Result<String, TaskError> {
        let mut writer = opened(store, task);
        writer.write(body).unwrap();
        match writer.commit() {
            Commit::Done(name) => name,
            Commit::Blocking(job) => job(),
        }
    }

    #[test]
    fn a_dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let mut writer = opened(&store, &task("x.jpg", false));
        writer.write(JPEG).unwrap();
        assert_eq!(store.out().tmp_count(), 1);
        drop(writer);
        assert_eq!(store.out().tmp_count(), 0);
        assert!(store.out().image_names().is_empty());
    }

    #[test]
    fn a_file_we_did_not_write_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let out = store.out().clone();
        let t = task("x.jpg", false);
        // Identical: kept as it is, nothing new written.
        std::fs::write(out.final_path("x.jpg"), JPEG).unwrap();
        assert_eq!(save(&store, &t, JPEG).unwrap(), "x.jpg");
        assert_eq!(store.out().image_names(), ["x.jpg"]);
        // Different: saved under the URL's suffixed name; the user's file untouched.
        std::fs::write(out.final_path("x.jpg"), b"the user's own file").unwrap();
        let suffixed = storage::with_suffix("x.jpg", &t.url);
        assert_eq!(save(&store, &t, JPEG).unwrap(), suffixed);
        assert_eq!(std::fs::read(out.final_path("x.jpg")).unwrap(), b"the user's own file");
        assert_eq!(std::fs::read(out.final_path(&suffixed)).unwrap(), JPEG);
        // And when that is taken by something else too, the next one.
        std::fs::write(out.final_path(&suffixed), b"another").unwrap();
        let next = save(&store, &t, JPEG).unwrap();
        assert!(next.starts_with("2-x-"), "{next:?}");
        assert_eq!(store.out().image_names().len(), 3);
        assert_eq!(store.out().tmp_count(), 0);
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
        assert_eq!(std::fs::read_dir(out.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_template_s_folders_are_made_and_a_planted_link_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        assert_eq!(save(&store, &task("a/b/x.jpg", false), JPEG).unwrap(), "a/b/x.jpg");
        assert_eq!(std::fs::read(dir.path().join("a/b/x.jpg")).unwrap(), JPEG);
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("h")).unwrap();
        let err = save(&store, &task("h/x.jpg", false), JPEG).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
        std::fs::write(dir.path().join("f"), b"a file").unwrap();
        assert!(save(&store, &task("f/x.jpg", false), JPEG).is_err());
        assert_eq!(
            std::fs::read_dir(elsewhere.path()).unwrap().count(),
            0,
            "nothing written through the link"
        );
        assert_eq!(store.out().tmp_count(), 0);
    }

    #[test]
    fn our_own_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        std::fs::write(store.out().final_path("x.jpg"), b"half of it").unwrap();
        assert_eq!(save(&store, &task("x.jpg", true), JPEG).unwrap(), "x.jpg");
        assert_eq!(std::fs::read(store.out().final_path("x.jpg")).unwrap(), JPEG);
        assert_eq!(store.out().image_names(), ["x.jpg"]);
    }

    #[test]
    fn lookup_tells_complete_from_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let url = |s: &str| Url::parse(s).unwrap();
        store.record(&url("http://h/a.jpg"), "a.jpg", 3).unwrap();
        store.record(&url("http://h/b.jpg"), "b.jpg", 3).unwrap();
        store.flush().unwrap();
        std::fs::write(store.out().final_path("a.jpg"), b"abc").unwrap();
        std::fs::write(store.out().final_path("b.jpg"), b"a").unwrap();
        let again = self::store(dir.path());
        assert_eq!(again.lookup(&url("http://h/a.jpg")), Lookup::Complete { name: "a.jpg".into(), bytes: 3 });
        assert_eq!(again.lookup(&url("http://h/b.jpg")), Lookup::Stale { name: "b.jpg".into() });
        assert_eq!(again.lookup(&url("http://h/c.jpg")), Lookup::Unknown);
        std::fs::remove_file(store.out().final_path("a.jpg")).unwrap();
        assert_eq!(again.lookup(&url("http://h/a.jpg")), Lookup::Stale { name: "a.jpg".into() });
        let archive = self::store(dir.path()).with_archive(true);
        assert_eq!(
            archive.lookup(&url("http://h/a.jpg")),
            Lookup::Complete { name: "a.jpg".into(), bytes: 3 },
            "moved away: the record says it is done"
        );
        assert_eq!(archive.lookup(&url("http://h/b.jpg")), Lookup::Stale { name: "b.jpg".into() }, "damaged");
    }
}
