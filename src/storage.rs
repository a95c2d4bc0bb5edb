//! How an image URL becomes a file: a safe name inside the out dir, and a write that
//! shows the file under that name only once it is complete.
//!
//! Pure apart from the file system; never imports actix, so both worker kinds share it.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;
use tempfile::NamedTempFile;
use url::Url;
use xxhash_rust::xxh3::xxh3_64;

/// Longest file name we produce, in bytes. Every common file system allows 255; we keep
/// room for a clash suffix and for the temporary-name decoration.
pub const MAX_NAME_BYTES: usize = 150;

/// Prefix of every entry the tool itself creates in the out dir (temporary files now,
/// state later): hidden, and never a name `file_name` can produce, since that strips
/// leading dots.
pub const OWN_PREFIX: &str = ".image-scraper";

/// The name an image is saved under: the last segment of the URL path, percent-decoded and
/// made safe (no separators, no `..`, no control or bidi characters, no leading dot,
/// at most [`MAX_NAME_BYTES`]), or `image-<hash>` when nothing usable is left.
pub fn file_name(url: &Url) -> String {
    let last = url.path_segments().and_then(|mut segments| segments.next_back()).unwrap_or("");
    let decoded = percent_decode_str(last).decode_utf8_lossy();
    sanitize(&decoded).unwrap_or_else(|| format!("image-{}", short_hash(url)))
}

/// `name` with a short suffix derived from the URL before its extension: what an image gets
/// when another URL already took its name. Stable across runs for the same URL.
pub fn with_suffix(name: &str, url: &Url) -> String {
    let tag = short_hash(url);
    let (stem, ext) = split_extension(name);
    let room = MAX_NAME_BYTES.saturating_sub(tag.len() + 1 + ext.len());
    let stem = truncate_at_char(stem, room);
    format!("{stem}-{tag}{ext}")
}

/// Eight hex digits of a stable hash of the URL.
pub fn short_hash(url: &Url) -> String {
    format!("{:08x}", xxh3_64(url.as_str().as_bytes()) as u32)
}

fn sanitize(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !is_invisible(*c))
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    // Leading dots would hide the file (or make `..`); trailing dots and spaces are
    // silently dropped by Windows file systems, so two names could meet there.
    let trimmed = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    if !trimmed.chars().any(char::is_alphanumeric) {
        return None;
    }
    let (stem, ext) = split_extension(trimmed);
    if trimmed.len() <= MAX_NAME_BYTES {
        return Some(trimmed.to_string());
    }
    let stem = truncate_at_char(stem, MAX_NAME_BYTES - ext.len());
    Some(format!("{stem}{ext}"))
}

/// Zero-width and bidirectional-override characters: legal in names, but they make a
/// file look like another (`gpj.exe` shown as `exe.jpg`).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Splits `cat.jpg` into (`cat`, `.jpg`); an extension is short and alphanumeric, so
/// `v1.2 final` has none.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot)
            if dot > 0
                && name.len() - dot <= 10
                && name[dot + 1..].chars().all(|c| c.is_ascii_alphanumeric())
                && dot + 1 < name.len() =>
        {
            name.split_at(dot)
        }
        _ => (name, ""),
    }
}

fn truncate_at_char(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A download in progress: a hidden temporary file in the out dir that is deleted if dropped,
/// and renamed to its final name by [`PartialFile::commit`]. Same directory, so the rename
/// is atomic and a reader never sees half an image under a real name.
pub struct PartialFile {
    /// Buffered because network chunks are often a few KiB; the buffer turns them into
    /// fewer, larger writes.
    file: BufWriter<NamedTempFile>,
    /// Bytes written so far, for limits and the report.
    written: u64,
}

impl PartialFile {
    pub fn create(dir: &Path) -> io::Result<Self> {
        let file =
            tempfile::Builder::new().prefix(&format!("{OWN_PREFIX}-")).suffix(".part").tempfile_in(dir)?;
        Ok(Self { file: BufWriter::with_capacity(64 * 1024, file), written: 0 })
    }

    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk)?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and renames to `dest`; returns the number of bytes in the file.
    pub fn commit(self, dest: &Path) -> io::Result<u64> {
        let written = self.written;
        let temp = self.file.into_inner().map_err(|e| e.into_error())?;
        temp.persist(dest).map_err(|e| e.error)?;
        Ok(written)
    }
}

/// Where `name` (from [`file_name`] or [`with_suffix`]) lands: always directly inside `dir`.
pub fn destination(dir: &Path, name: &str) -> PathBuf {
    debug_assert!(!name.contains(['/', '\\']) && !name.starts_with('.'));
    dir.join(name)
}

/// Writes `contents` to `dest` through a temporary file beside it, so `dest` is either the
/// old file or the whole new one.
pub fn write_atomically(dest: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new().prefix(&format!("{OWN_PREFIX}-")).tempfile_in(dir)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Opens `dir` as the out dir: creates it if missing; an existing non-directory is an error.
pub fn prepare_out_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // A probe proves we can create files there before any request is made.
    let probe = tempfile::Builder::new().prefix(&format!("{OWN_PREFIX}-probe-")).tempfile_in(dir)?;
    drop(probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(url: &str) -> String {
        file_name(&Url::parse(url).unwrap())
    }

    #[test]
    fn last_segment_percent_decoded() {
        assert_eq!(name("https://h/a/b/cat-1.jpg"), "cat-1.jpg");
        assert_eq!(name("https://h/a/b/black%20cat.jpg?x=1#f"), "black cat.jpg");
        assert_eq!(name("https://h/caf%C3%A9.png"), "café.png");
    }

    #[test]
    fn separators_and_dots_cannot_escape() {
        assert_eq!(name("https://h/x/..%2F..%2F.bashrc"), "_.._.bashrc");
        assert_eq!(name("https://h/x/..%5C..%5Cboot.ini"), "_.._boot.ini");
        assert_eq!(name("https://h/x/.hidden.jpg"), "hidden.jpg");
        for url in ["https://h/x/..", "https://h/x/%2E%2E", "https://h/", "https://h/x/%00"] {
            let n = name(url);
            assert!(n.starts_with("image-") && n.len() == 14, "{url} -> {n}");
        }
    }

    #[test]
    fn control_and_invisible_characters_go() {
        assert_eq!(name("https://h/a%0Ab%09c.jpg"), "a_b_c.jpg");
        assert_eq!(name("https://h/gpj%E2%80%AE.exe"), "gpj.exe");
        assert_eq!(name("https://h/con:%22x%22.jpg"), "con__x_.jpg");
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        let long = format!("https://h/{}.jpeg", "é".repeat(200));
        let n = name(&long);
        assert!(n.len() <= MAX_NAME_BYTES, "{}", n.len());
        assert!(n.ends_with(".jpeg"));
        let suffixed = with_suffix(&n, &Url::parse(&long).unwrap());
        assert!(suffixed.len() <= MAX_NAME_BYTES);
        assert!(suffixed.ends_with(".jpeg"));
    }

    #[test]
    fn suffix_is_stable_and_differs_by_url() {
        let a = Url::parse("https://h/a/cat.jpg").unwrap();
        let b = Url::parse("https://h/b/cat.jpg").unwrap();
        assert_eq!(with_suffix("cat.jpg", &a), with_suffix("cat.jpg", &a));
        assert_ne!(with_suffix("cat.jpg", &a), with_suffix("cat.jpg", &b));
        let s = with_suffix("cat.jpg", &a);
        assert!(s.starts_with("cat-") && s.ends_with(".jpg") && s.len() == "cat-12345678.jpg".len());
        assert_eq!(with_suffix("README", &a).len(), "README-12345678".len());
    }

    #[test]
    fn partial_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("cat.jpg");
        let mut part = PartialFile::create(dir.path()).unwrap();
        part.write(b"hello ").unwrap();
        part.write(b"world").unwrap();
        assert_eq!(part.written(), 11);
        assert!(!dest.exists());
        assert_eq!(part.commit(&dest).unwrap(), 11);
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello world");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_partial_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut part = PartialFile::create(dir.path()).unwrap();
        part.write(&[0u8; 100_000]).unwrap();
        drop(part);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
