//! The out dir's layout: images at the top, and everything of the tool's own in one
//! hidden folder, `.image-scraper/`, never among the images:
//!
//! - `.image-scraper/tmp/`: downloads in progress (renamed to the top when complete,
//!   deleted otherwise; leftovers of a killed run are deleted at the next start);
//! - `.image-scraper/done.jsonl`: the resume record, one line per completed image.
//!
//! Never imports actix.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::storage::{self, OWN_PREFIX};

#[derive(Debug, Clone)]
pub struct OutDir {
    root: PathBuf,
}

impl OutDir {
    /// Creates the out dir and the tool's folder if missing, removes leftovers of an
    /// earlier run that was killed, and proves files can be created there.
    pub fn open(root: &Path) -> io::Result<Self> {
        let out = Self { root: root.to_path_buf() };
        fs::create_dir_all(out.tmp_dir())?;
        out.remove_partials()?;
        drop(tempfile::tempfile_in(out.tmp_dir())?);
        Ok(out)
    }

    /// The out dir as it is, creating nothing (for a dry run).
    pub fn existing(root: &Path) -> Self {
        Self { root: root.to_path_buf() }
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

    pub fn state_file(&self) -> PathBuf {
        self.own_dir().join("done.jsonl")
    }

    pub fn final_path(&self, name: &str) -> PathBuf {
        storage::destination(&self.root, name)
    }

    /// Deletes every download in progress; returns how many there were. Safe while a
    /// worker still writes one: its final rename then fails, so nothing half-written
    /// appears under a real name.
    pub fn remove_partials(&self) -> io::Result<usize> {
        let entries = match fs::read_dir(self.tmp_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Whether two files hold the same bytes.
pub fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
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

    #[test]
    fn open_creates_one_hidden_folder_and_clears_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("images");
        let out = OutDir::open(&root).unwrap();
        fs::write(out.tmp_dir().join("left.part"), b"half").unwrap();
        let out = OutDir::open(&root).unwrap();
        let top: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(top, [".image-scraper"]);
        assert_eq!(fs::read_dir(out.tmp_dir()).unwrap().count(), 0);
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
}
