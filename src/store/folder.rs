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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use tempfile::{NamedTempFile, PersistError};
use url::Url;

use super::{Commit, DigestLedger, FirstCopy, Lookup, Opening, Store, Writer};
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
    /// `DEDUPE: content` in a shared job: the job's first copy of each content, asked
    /// after `digests` (this process's own and its record's), so the job's processes
    /// keep one copy between them.
    job: Option<Arc<JobDigests>>,
}

/// A shared job's digests, as this process's writers ask them.
#[derive(Debug)]
struct JobDigests {
    /// The job-wide truth (Redis): which copy of each content came first.
    ledger: Box<dyn DigestLedger>,
    /// This machine's host name: a first copy's absolute path names a file only there.
    machine: String,
    /// The out dir made canonical: a copy's absolute path is this and its name, the same
    /// for every process sharing the out dir whatever path it was given.
    root: PathBuf,
    /// The first error the ledger gave: images went on being stored as first copies,
    /// which the run says once ([`Store::notice`]).
    trouble: OnceLock<String>,
    /// Whether `trouble` was said.
    said: AtomicBool,
}

impl FolderStore {
    pub fn new(out: OutDir, resume: Resume) -> Self {
        Self { out, resume: Mutex::new(resume), digests: None, archive: false, job: None }
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

    /// `DEDUPE: content` across a shared job (after [`FolderStore::with_dedupe`]): each new
    /// content is claimed in `ledger` once placed, and a copy that came second is removed
    /// again. `machine`: this machine's host name.
    pub fn with_job_digests(self, ledger: Box<dyn DigestLedger>, machine: &str) -> io::Result<Self> {
        let root = std::fs::canonicalize(self.out.root())?;
        let job = JobDigests {
            ledger,
            machine: machine.to_string(),
            root,
            trouble: OnceLock::new(),
            said: AtomicBool::new(false),
        };
        Ok(Self { job: Some(Arc::new(job)), ..self })
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
            let (root, digests, job) =
                (self.out.root().to_path_buf(), self.digests.clone(), self.job.clone());
            let hasher = hashed.then(Sha256::new);
            Box::new(FolderWriter { file, root, task: task.clone(), hasher, digests, job }) as Box<dyn Writer>
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
        // A duplicate whose first copy is outside this out dir (another process's of the
        // job) has no name here for the record to keep: the job's own record has it.
        if !storage::is_safe_path(name) {
            return Ok(());
        }
        self.resume().record_content(url, name, bytes, sha256)
    }

    fn first_copy(&self, url: &Url, sha256: &str) -> Option<String> {
        let digests = self.digests.as_ref()?.lock().unwrap_or_else(|e| e.into_inner());
        let (first_url, path) = digests.get(&digest_key(sha256)?)?;
        (*first_url != url_key(url.as_str())).then(|| path.to_string())
    }

    fn notice(&self) -> Option<String> {
        let job = self.job.as_ref()?;
        let trouble = job.trouble.get()?;
        (!job.said.swap(true, Ordering::Relaxed)).then(|| {
            format!(
                "cannot ask the job's digests ({trouble}): images are stored without the job-wide content check, so another process may keep a copy too"
            )
        })
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
    /// `DEDUPE: content` in a shared job: the job's digests, asked after `digests`.
    job: Option<Arc<JobDigests>>,
}

impl Writer for FolderWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), TaskError> {
        if let Some(hasher) = &mut self.hasher {
            hasher.update(bytes);
        }
        self.file.write_all(bytes).map_err(TaskError::write)
    }

    /// A rename or two: cheap enough to do on the worker's own thread. In a shared job with
    /// `DEDUPE: content`, then a round trip to the job's digests, as a future the worker
    /// awaits where it waits (`Commit::Pending`): an async worker on its Arbiter, through
    /// that Arbiter's own connection, while its other downloads go on; a blocking worker
    /// on its own thread. Not `Commit::Blocking`, as a bucket's upload is: that runs on
    /// the blocking pool, where no Arbiter's connection lives.
    fn commit(self: Box<Self>) -> Commit {
        let FolderWriter { file, root, mut task, hasher, digests, job } = *self;
        let Some(hasher) = hasher else { return Commit::Done(commit(file, &root, &task).map(|p| p.name)) };
        let digest = storage::hex(&hasher.finalize());
        task.name = storage::fill_holes(&task.name, None, Some(&digest));
        let (Some(digests), Some(key)) = (digests, digest_key(&digest)) else {
            return Commit::Done(commit(file, &root, &task).map(|p| p.name));
        };
        let Some(job) = job else {
            return Commit::Done(commit_once_per_content(file, &root, &task, &digests, key));
        };
        // This process's own digests first: a content it stored (or its record names) is
        // not asked of the job again.
        if let Some(first) = stored_here(&digests, key, &root) {
            return Commit::Done(Ok(first));
        }
        // Placed before the claim: the claim names the file's path, known only once the
        // no-replace rename has found a free name; and so a claim in the job always names
        // a file that is there (a process killed between the two leaves one copy more,
        // never a claim of nothing). Two writers of this process with one content are
        // told apart by the job, as two processes are: no lock is held over the round
        // trip.
        let placed = match commit(file, &root, &task) {
            Ok(placed) => placed,
            Err(e) => return Commit::Done(Err(e)),
        };
        Commit::Pending(Box::pin(async move {
            Ok(job.settle(&digest, &task, placed, &root, &digests, key).await)
        }))
    }
}

/// The path of the first copy of content `key` as this process's digests have it, if
/// that file is still here.
fn stored_here(digests: &Mutex<Digests>, key: u128, root: &Path) -> Option<String> {
    let digests = digests.lock().unwrap_or_else(|e| e.into_inner());
    let (_, first) = digests.get(&key)?;
    is_regular_file(&local_file(root, first)?).then(|| first.to_string())
}

/// Where a first copy, as a folder's items name it, is on this machine: its name in the
/// out dir, or an absolute path (another out dir). `None` for another machine's.
fn local_file(root: &Path, shown: &str) -> Option<PathBuf> {
    if storage::is_safe_path(shown) {
        return Some(storage::destination(root, shown));
    }
    (Path::new(shown).is_absolute() && !shown.contains(ELSEWHERE)).then(|| PathBuf::from(shown))
}

/// Between a path and the machine it is on, in a first copy shown from another machine.
const ELSEWHERE: &str = " on ";

/// A first copy as a process with out dir `root` (canonical) on `machine` names it: its
/// name there (relative, as a folder's items are) when it is in that out dir, its
/// absolute path when it is elsewhere on that machine, else `PATH on MACHINE`.
fn shown_from(first: &FirstCopy, machine: &str, root: &Path) -> String {
    if first.machine != machine {
        return format!("{}{ELSEWHERE}{}", first.path, first.machine);
    }
    match Path::new(&first.path).strip_prefix(root).ok().and_then(Path::to_str) {
        Some(name) if storage::is_safe_path(name) => name.to_string(),
        _ => first.path.clone(),
    }
}

/// One process alone: the digests looked up and the file put under its name in one step.
fn commit_once_per_content(
    file: NamedTempFile,
    root: &Path,
    task: &ImageTask,
    digests: &Mutex<Digests>,
    key: u128,
) -> Result<String, TaskError> {
    // Held across the rename: the second of two writers with one content must see the
    // first's file.
    let mut digests = digests.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, first)) = digests.get(&key)
        && local_file(root, first).is_some_and(|f| is_regular_file(&f))
    {
        // Stored already: the download is dropped with its temporary file.
        return Ok(first.to_string());
    }
    let stored = commit(file, root, task).map(|p| p.name);
    if let Ok(name) = &stored {
        digests.insert(key, (url_key(task.url.as_str()), name.as_str().into()));
    }
    stored
}

impl JobDigests {
    /// Claims content `sha256` for the copy just `placed`; answers the name the image's
    /// item takes: its own, or the job's first copy's (then the Coordinator's
    /// `first_copy` finds it a duplicate, and this process's copy is gone again if it
    /// wrote one).
    async fn settle(
        &self,
        sha256: &str,
        task: &ImageTask,
        placed: Placed,
        root: &Path,
        digests: &Mutex<Digests>,
        key: u128,
    ) -> String {
        let ours = FirstCopy {
            url: task.url.to_string(),
            machine: self.machine.clone(),
            path: self.root.join(&placed.name).to_string_lossy().into_owned(),
        };
        let first = match self.ledger.claim(sha256, &ours).await {
            Ok(first) => first,
            Err(e) => {
                // The image is not lost for it: kept as a first copy, said once.
                let _ = self.trouble.set(e.to_string());
                ours.clone()
            }
        };
        // The same URL fetched again (its lease expired) is not a duplicate of itself; one
        // file two processes sharing an out dir both named (the second found it there,
        // identical) is one copy, not two.
        let same_copy = first.machine == ours.machine && first.path == ours.path;
        let shown = if first.url == ours.url || same_copy {
            placed.name
        } else {
            if placed.wrote {
                // Only the file this writer just wrote: one it found there and adopted
                // may be another's. Left if it cannot go: one copy more, nothing lost.
                let _ = std::fs::remove_file(storage::destination(root, &placed.name));
            }
            shown_from(&first, &self.machine, &self.root)
        };
        let mut digests = digests.lock().unwrap_or_else(|e| e.into_inner());
        digests.insert(key, (url_key(&first.url), shown.as_str().into()));
        shown
    }
}

/// Where [`commit`] put a download.
struct Placed {
    /// Its name in the out dir.
    name: String,
    /// Whether this download wrote the file (false: an identical file was there, kept as
    /// it was, and may be another's).
    wrote: bool,
}

/// Puts the complete download under its name; returns the name it got. One rename in
/// the common case: no look before it, and the no-replace rename means no race either.
fn commit(temp: NamedTempFile, root: &Path, task: &ImageTask) -> Result<Placed, TaskError> {
    // A `NAME` template's folders; its suffixed names below share them.
    crate::outdir::make_folders(root, &task.name).map_err(TaskError::write)?;
    let own = storage::destination(root, &task.name);
    // Ours to replace only while it is still a plain file (or gone): a link, FIFO or
    // folder put there since is a clash like any other.
    if task.overwrite && (is_regular_file(&own) || own.symlink_metadata().is_err()) {
        temp.persist(own).map_err(|e| TaskError::write(e.error))?;
        return Ok(Placed { name: task.name.clone(), wrote: true });
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
            Ok(_) => return Ok(Placed { name, wrote: true }),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                temp = e.file;
                // The same image under this name already (an earlier run, the URL since
                // changed): keep that file, drop the download. Only a regular file is
                // compared: a link, FIFO, socket or folder there is never opened.
                if same_contents(temp.path(), &dest).unwrap_or(false) {
                    return Ok(Placed { name, wrote: false });
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
            Commit::Pending(answer) => crate::fetch::run_blocking(answer),
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

    /// A shared job's digests in memory: the first claim of a content wins, as
    /// `digest.lua`'s; or, `down`, an error for every claim.
    #[derive(Debug, Default)]
    struct Ledger {
        /// SHA-256 -> the first copy claimed: what `digests` holds in Redis.
        first: Mutex<std::collections::HashMap<String, FirstCopy>>,
        /// Redis not answering: every claim fails.
        down: bool,
    }

    impl DigestLedger for Arc<Ledger> {
        fn claim<'a>(&'a self, sha256: &'a str, ours: &'a FirstCopy) -> super::super::DigestAnswer<'a> {
            let answer = match self.down {
                true => Err(super::super::DigestError("Redis: connection refused".into())),
                false => Ok(self
                    .first
                    .lock()
                    .unwrap()
                    .entry(sha256.into())
                    .or_insert_with(|| ours.clone())
                    .clone()),
            };
            Box::pin(std::future::ready(answer))
        }
    }

    /// A process of a shared job with `DEDUPE: content`, its out dir `dir`.
    fn process(dir: &Path, ledger: &Arc<Ledger>) -> FolderStore {
        store(dir).with_dedupe().with_job_digests(Box::new(Arc::clone(ledger)), "m1").unwrap()
    }

    fn at(url: &str, name: &str) -> ImageTask {
        ImageTask { url: Url::parse(url).unwrap(), name: name.into(), overwrite: false, referer: None }
    }

    fn sha(body: &[u8]) -> String {
        storage::hex(&Sha256::digest(body))
    }

    #[test]
    fn of_two_processes_with_two_out_dirs_the_second_keeps_no_copy() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ledger = Arc::new(Ledger::default());
        let (one, two) = (process(a.path(), &ledger), process(b.path(), &ledger));
        assert_eq!(save(&one, &at("http://h/a.jpg", "a.jpg"), JPEG).unwrap(), "a.jpg");
        let first = std::fs::canonicalize(a.path()).unwrap().join("a.jpg").to_string_lossy().into_owned();
        let b_url = Url::parse("http://h/b.jpg").unwrap();
        assert_eq!(save(&two, &at(b_url.as_str(), "b.jpg"), JPEG).unwrap(), first, "the winner's path");
        assert!(two.out().image_names().is_empty(), "the copy it wrote is gone again");
        assert_eq!(two.out().tmp_count(), 0);
        assert_eq!(two.first_copy(&b_url, &sha(JPEG)), Some(first.clone()), "so a duplicate");
        assert_eq!(one.first_copy(&Url::parse("http://h/a.jpg").unwrap(), &sha(JPEG)), None);
        // Met again in the second process: its own digests answer, nothing is written.
        assert_eq!(save(&two, &at("http://h/c.jpg", "c.jpg"), JPEG).unwrap(), first);
        assert!(two.out().image_names().is_empty());
        // A path outside the out dir is not the record's: it is not written there.
        two.record_content(&b_url, &first, JPEG.len() as u64, Some(&sha(JPEG))).unwrap();
        two.flush().unwrap();
        assert!(Resume::digests(&two.out().state_file()).is_empty());
        // The same URL fetched again elsewhere (a lease that expired) is no duplicate of
        // itself: its copy stays.
        let again = tempfile::tempdir().unwrap();
        let three = process(again.path(), &ledger);
        assert_eq!(save(&three, &at("http://h/a.jpg", "a.jpg"), JPEG).unwrap(), "a.jpg");
        assert_eq!(three.out().image_names(), ["a.jpg"]);
    }

    #[test]
    fn in_one_out_dir_the_loser_removes_only_the_file_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::default());
        let (one, two) = (process(dir.path(), &ledger), process(dir.path(), &ledger));
        assert_eq!(save(&one, &at("http://h/x/cat.jpg", "cat.jpg"), JPEG).unwrap(), "cat.jpg");
        // Another name: a second copy, which goes again.
        assert_eq!(save(&two, &at("http://h/dog.jpg", "dog.jpg"), JPEG).unwrap(), "cat.jpg");
        assert_eq!(one.out().image_names(), ["cat.jpg"]);
        // The same name (two processes each sure of it): the second found the first's file
        // there, identical, and kept it: one copy, which stays.
        let three = process(dir.path(), &ledger);
        let url = Url::parse("http://h/y/cat.jpg").unwrap();
        assert_eq!(save(&three, &at(url.as_str(), "cat.jpg"), JPEG).unwrap(), "cat.jpg");
        assert_eq!(one.out().image_names(), ["cat.jpg"]);
        assert_eq!(three.first_copy(&url, &sha(JPEG)), Some("cat.jpg".into()), "still a duplicate");
        // A user's identical file taken for a name is not ours to remove, though the job's
        // copy is elsewhere.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("mine.jpg"), JPEG).unwrap();
        let four = process(other.path(), &ledger);
        let first = save(&four, &at("http://h/mine.jpg", "mine.jpg"), JPEG).unwrap();
        assert!(first.ends_with("/cat.jpg"), "{first}");
        assert_eq!(std::fs::read(other.path().join("mine.jpg")).unwrap(), JPEG, "left as it was");
    }

    #[test]
    fn with_the_job_s_digests_unreachable_the_image_is_kept_and_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger { down: true, ..Ledger::default() });
        let one = process(dir.path(), &ledger);
        assert_eq!(one.notice(), None, "nothing to say yet");
        let url = Url::parse("http://h/a.jpg").unwrap();
        assert_eq!(save(&one, &at(url.as_str(), "a.jpg"), JPEG).unwrap(), "a.jpg");
        assert_eq!(one.first_copy(&url, &sha(JPEG)), None, "counted ok");
        let notice = one.notice().expect("said");
        assert!(notice.contains("connection refused"), "{notice}");
        assert_eq!(one.notice(), None, "once");
        // This process's own digests still hold: the same bytes again are a duplicate.
        assert_eq!(save(&one, &at("http://h/b.jpg", "b.jpg"), JPEG).unwrap(), "a.jpg");
        assert_eq!(one.out().image_names(), ["a.jpg"]);
    }

    #[test]
    fn a_first_copy_is_named_as_the_process_that_reads_it_can_find_it() {
        let copy = FirstCopy {
            url: "http://h/a.jpg".into(),
            machine: "m1".into(),
            path: "/data/out/x/a.jpg".into(),
        };
        assert_eq!(shown_from(&copy, "m1", Path::new("/data/out")), "x/a.jpg");
        assert_eq!(shown_from(&copy, "m1", Path::new("/data/other")), "/data/out/x/a.jpg");
        assert_eq!(shown_from(&copy, "m2", Path::new("/data/out")), "/data/out/x/a.jpg on m1");
        assert_eq!(local_file(Path::new("/r"), "/data/out/x/a.jpg on m1"), None, "not on this machine");
        assert_eq!(local_file(Path::new("/r"), "x/a.jpg"), Some(PathBuf::from("/r/x/a.jpg")));
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
