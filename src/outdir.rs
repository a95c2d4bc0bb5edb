//! The out dir's layout: images at the top, and everything of the tool's own in one
//! hidden folder, `.image-scraper/`, never among the images:
//!
//! - `.image-scraper/tmp/`: downloads in progress (`part-XXXXXX`, renamed to the top when
//!   complete, deleted otherwise; leftovers of a killed run are deleted at the next start);
//! - `.image-scraper/done.jsonl`: the resume record, one line per completed image.
//!
//! The trust rule: the tool's folder and its `tmp/` are used only when each is a real
//! directory inside the out dir. They are opened with `openat(O_NOFOLLOW | O_DIRECTORY)`
//! relative to their parent, never through a path that could follow a planted link; a
//! link, a file or anything else under those names stops the run before any request. An
//! out dir copied, unpacked or synced from elsewhere can carry such a link, and following
//! it once deleted every file in its target. Clean-up deletes only the names the tool
//! itself gives its temporary files, through the opened directory.
//!
//! Never imports actix.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::storage::{self, OWN_PREFIX};

/// The prefix of a download in progress in `tmp/`; followed by six random characters.
pub const PART_PREFIX: &str = "part-";

/// Why the out dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    /// The tool's own folder, or its `tmp/`, is not a real directory.
    #[error(
        "{path} is {what}, not a folder: the tool keeps its state only in a real folder inside the out dir (move it away and run again)"
    )]
    NotAFolder { path: PathBuf, what: &'static str },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

#[derive(Debug, Clone)]
pub struct OutDir {
    root: PathBuf,
    /// `.image-scraper/tmp/`, opened without following links: clean-up reads and deletes
    /// through it, never through a path. `None` for a dry run into an out dir that has
    /// none yet.
    tmp: Option<Arc<OwnedFd>>,
}

impl OutDir {
    /// Creates the out dir and the tool's folder if missing, checks they are real
    /// folders, removes leftovers of an earlier run that was killed, and proves files
    /// can be created there.
    pub fn open(root: &Path) -> Result<Self, OutDirError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OutDirError::Io { path, source }
        };
        std::fs::create_dir_all(root).map_err(io_err(root))?;
        let root_fd = open_dir(rustix::fs::CWD, root).map_err(|e| io_err(root)(e.into()))?;
        let own_path = root.join(OWN_PREFIX);
        let own = open_own(&root_fd, OWN_PREFIX, &own_path, true)?.expect("created when missing");
        let tmp_path = own_path.join("tmp");
        let tmp = open_own(&own, "tmp", &tmp_path, true)?.expect("created when missing");
        let out = Self { root: root.to_path_buf(), tmp: Some(Arc::new(tmp)) };
        out.remove_partials().map_err(io_err(&tmp_path))?;
        drop(tempfile::tempfile_in(out.tmp_dir()).map_err(io_err(&tmp_path))?);
        Ok(out)
    }

    /// The out dir as it is, creating nothing (for a dry run); its tool folder, when there
    /// is one, must pass the same check.
    pub fn existing(root: &Path) -> Result<Self, OutDirError> {
        let none = Self { root: root.to_path_buf(), tmp: None };
        let Ok(root_fd) = open_dir(rustix::fs::CWD, root) else {
            return Ok(none);
        };
        let own_path = root.join(OWN_PREFIX);
        let Some(own) = open_own(&root_fd, OWN_PREFIX, &own_path, false)? else {
            return Ok(none);
        };
        let tmp = open_own(&own, "tmp", &own_path.join("tmp"), false)?;
        Ok(Self { tmp: tmp.map(Arc::new), ..none })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn own_dir(&self) -> PathBuf {
        self.root.join(OWN_PREFIX)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.own_dir().join("tmp")
    }

    /// The images' names, sorted (the tool's own hidden entry left out): what the tests
    /// of every writer into the out dir compare.
    #[cfg(test)]
    pub(crate) fn image_names(&self) -> Vec<String> {
        let entries = std::fs::read_dir(self.root()).unwrap();
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// Temporary files left in `.image-scraper/tmp/`.
    #[cfg(test)]
    pub(crate) fn tmp_count(&self) -> usize {
        std::fs::read_dir(self.tmp_dir()).unwrap().count()
    }

    pub fn state_file(&self) -> PathBuf {
        self.own_dir().join("done.jsonl")
    }

    pub fn final_path(&self, name: &str) -> PathBuf {
        storage::destination(&self.root, name)
    }

    /// Deletes every download in progress; returns how many there were. Only names the
    /// tool gives its temporary files, only regular files, only in the checked `tmp/`.
    /// Safe while a worker still writes one: its final rename then fails, so nothing
    /// half-written appears under a real name.
    pub fn remove_partials(&self) -> io::Result<usize> {
        let Some(tmp) = &self.tmp else { return Ok(0) };
        let mut removed = 0;
        for entry in rustix::fs::Dir::read_from(tmp)? {
            let entry = entry?;
            let name = entry.file_name();
            let ours = name.to_str().is_ok_and(is_part_name);
            if ours
                && entry.file_type() == FileType::RegularFile
                && rustix::fs::unlinkat(tmp, name, AtFlags::empty()).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Creates the folders of `name` (a `NAME` template's `a/b/file.jpg`) under `root`, one
/// at a time through the folder opened before, never following a link: a link or a file
/// planted where a folder should be is an error, so a name never leads outside the out
/// dir. Nothing to do for a bare file name.
pub fn make_folders(root: &Path, name: &str) -> io::Result<()> {
    let Some((folders, _)) = name.rsplit_once('/') else { return Ok(()) };
    let mut dir = open_dir(rustix::fs::CWD, root)?;
    for segment in folders.split('/') {
        match rustix::fs::mkdirat(&dir, segment, Mode::from_raw_mode(0o777)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let flags =
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        dir = match rustix::fs::openat(&dir, segment, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                return Err(io::Error::other(format!(
                    "{segment} in {name} is not a folder (a link or a file)"
                )));
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok(())
}

/// `part-` and six characters of tempfile's alphabet: the only names clean-up deletes.
fn is_part_name(name: &str) -> bool {
    name.strip_prefix(PART_PREFIX)
        .is_some_and(|rest| rest.len() == 6 && rest.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn open_dir(at: impl AsFd, path: &Path) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::openat(at, path, flags, Mode::empty())
}

/// Opens `name` inside `parent` as a real directory, never following a link (and never
/// blocking on a FIFO); creates it first when `create`. `None` when it is absent and not
/// created.
fn open_own(parent: &OwnedFd, name: &str, path: &Path, create: bool) -> Result<Option<OwnedFd>, OutDirError> {
    let io_err = |e: rustix::io::Errno| OutDirError::Io { path: path.to_path_buf(), source: e.into() };
    if create {
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) if !create => Ok(None),
        // O_NOFOLLOW on a link gives ELOOP; O_DIRECTORY on anything else, ENOTDIR.
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            let what = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|s| describe(FileType::from_raw_mode(s.st_mode)))
                .map_err(io_err)?;
            Err(OutDirError::NotAFolder { path: path.to_path_buf(), what })
        }
        Err(e) => Err(io_err(e)),
    }
}

fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::Symlink => "a symbolic link",
        FileType::RegularFile => "a file",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Directory => "a folder that cannot be opened",
        FileType::Unknown => "something else",
    }
}

/// Opens `path` for reading only if it is a regular file: never through a symbolic link,
/// never blocking on a FIFO. A name something else holds is `InvalidInput`.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let flags = (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(|e| {
        match e.raw_os_error() {
            // O_NOFOLLOW on a link.
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                io::Error::new(io::ErrorKind::InvalidInput, "a symbolic link, not a file")
            }
            _ => e,
        }
    })?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

/// The bytes of `path`, only if it is a regular file (see [`open_regular`]).
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether `path` holds a regular file, looked at without following a link.
pub fn is_regular_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Whether two files hold the same bytes. Each must be a regular file (see
/// [`open_regular`]): a link or a FIFO under an image's name is never read.
pub fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (open_regular(a)?, open_regular(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn open_creates_one_hidden_folder_and_clears_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("images");
        let out = OutDir::open(&root).unwrap();
        fs::write(out.tmp_dir().join("part-a1B2c3"), b"half").unwrap();
        fs::write(out.tmp_dir().join("notes.txt"), b"not ours").unwrap();
        let out = OutDir::open(&root).unwrap();
        let top: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(top, [".image-scraper"]);
        let left: Vec<_> = fs::read_dir(out.tmp_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["notes.txt"], "only the tool's own temporary names are deleted");
    }

    /// A folder of decoys that must come through untouched.
    fn decoys(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        fs::create_dir_all(dir).unwrap();
        let files = [("part-abcdef", b"decoy one".to_vec()), ("photo.jpg", b"decoy two".to_vec())];
        files
            .into_iter()
            .map(|(name, body)| {
                let path = dir.join(name);
                fs::write(&path, &body).unwrap();
                (path, body)
            })
            .collect()
    }

    #[test]
    fn a_link_as_the_tool_folder_or_its_tmp_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        let kept = decoys(&elsewhere);
        // The tool's folder a link.
        let root = dir.path().join("a");
        fs::create_dir(&root).unwrap();
        symlink(&elsewhere, root.join(OWN_PREFIX)).unwrap();
        let e = OutDir::open(&root).unwrap_err().to_string();
        assert!(e.contains(".image-scraper is a symbolic link, not a folder"), "{e}");
        assert!(OutDir::existing(&root).is_err(), "a dry run refuses it too");
        // Its tmp/ a link.
        let root = dir.path().join("b");
        fs::create_dir_all(root.join(OWN_PREFIX)).unwrap();
        symlink(&elsewhere, root.join(OWN_PREFIX).join("tmp")).unwrap();
        let e = OutDir::open(&root).unwrap_err().to_string();
        assert!(e.contains("tmp is a symbolic link"), "{e}");
        // A file, a FIFO.
        let root = dir.path().join("c");
        fs::create_dir(&root).unwrap();
        fs::write(root.join(OWN_PREFIX), b"x").unwrap();
        assert!(OutDir::open(&root).unwrap_err().to_string().contains("is a file"));
        let root = dir.path().join("d");
        fs::create_dir(&root).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, root.join(OWN_PREFIX), Mode::from_raw_mode(0o600)).unwrap();
        assert!(OutDir::open(&root).unwrap_err().to_string().contains("is a FIFO"));
        for (path, body) in kept {
            assert_eq!(fs::read(&path).unwrap(), body, "{} changed", path.display());
        }
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 2, "nothing written there");
    }

    #[test]
    fn contents_compare() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        fs::write(&a, &big).unwrap();
        fs::write(&b, &big).unwrap();
        let mut other = big.clone();
        other[150_000] ^= 1;
        fs::write(&c, &other).unwrap();
        assert!(same_contents(&a, &b).unwrap());
        assert!(!same_contents(&a, &c).unwrap());
    }

    #[test]
    fn links_and_fifos_are_never_opened_for_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        symlink(&fifo, &link).unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        // Would block forever on the FIFO if it were opened plainly.
        assert_eq!(open_regular(&fifo).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(open_regular(&link).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert!(same_contents(&file, &link).is_err());
        assert!(is_regular_file(&file) && !is_regular_file(&link) && !is_regular_file(&fifo));
    }
}
