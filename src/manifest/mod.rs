//! Pure: the manifest written as a stream, one item at a time, so a run of millions of
//! images never gathers its items: JSON Lines (`jsonl.rs`) or Parquet (`parquet.rs`),
//! chosen by the report path's extension.
//!
//! Each sink writes to `FILE.part` beside `FILE` and renames it at `finish`: a crash or
//! a failed write never leaves a half manifest under the name a loader reads.

mod jsonl;
mod parquet;

use std::io;
use std::path::Path;

use crate::counts::Item;
use crate::storage::Part;
use crate::urllist::ColumnType;

/// Where the items of a run go, as they end.
pub trait ManifestSink {
    fn write(&mut self, item: &Item) -> io::Result<()>;
    /// Flushes what is buffered and gives the file its name.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Which sink a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Jsonl,
    Parquet,
}

impl ManifestKind {
    /// `None` for a path that names no manifest (the JSON report is another thing).
    pub fn of_path(path: &Path) -> Option<ManifestKind> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(ManifestKind::Jsonl),
            "parquet" => Some(ManifestKind::Parquet),
            _ => None,
        }
    }
}

/// Opens the manifest at `path`. `carried` is the list's columns (`urllist::columns`):
/// a Parquet file's schema is fixed before its first row, so they must be known now;
/// JSON Lines ignores it.
pub fn create(
    path: &Path,
    kind: ManifestKind,
    carried: &[(String, ColumnType)],
) -> io::Result<Box<dyn ManifestSink>> {
    let part = Part::create(path)?;
    Ok(match kind {
        ManifestKind::Jsonl => Box::new(jsonl::JsonlSink::new(part)),
        ManifestKind::Parquet => Box::new(parquet::ParquetSink::new(part, carried)?),
    })
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::counts::{ImageInfo, Item, ItemKind, Status};
    use crate::html::Element;

    /// A stored image with every field set, and its row's columns.
    pub fn item(n: usize) -> Item {
        let mut carried = crate::urllist::Carried::new();
        carried.insert("caption".into(), format!("cat {n}").into());
        carried.insert("key".into(), (n as i64).into());
        Item {
            kind: ItemKind::Image,
            url: format!("http://h/{n}.jpg"),
            page: 0,
            path: format!("{n}.jpg"),
            status: Status::Ok,
            bytes: 100 + n as u64,
            attempts: 1,
            error: None,
            reason: None,
            sha256: Some("ab".repeat(32)),
            element: Some(Element::Img),
            note: None,
            detail: None,
            info: ImageInfo {
                final_url: Some(format!("http://cdn/{n}.jpg")),
                content_type: Some("image/jpeg".into()),
                width: Some(640),
                height: Some(480),
            },
            render: None,
            carried: Some(Box::new(carried)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_chooses_the_sink() {
        assert_eq!(ManifestKind::of_path(Path::new("m.jsonl")), Some(ManifestKind::Jsonl));
        assert_eq!(ManifestKind::of_path(Path::new("m.PARQUET")), Some(ManifestKind::Parquet));
        assert_eq!(ManifestKind::of_path(Path::new("m.json")), None);
    }

    #[test]
    fn the_file_has_its_name_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let mut sink = create(&path, ManifestKind::Jsonl, &[]).unwrap();
        sink.write(&testing::item(1)).unwrap();
        assert!(!path.exists());
        assert!(dir.path().join("m.jsonl.part").exists());
        sink.finish().unwrap();
        assert!(path.exists());
        assert!(!dir.path().join("m.jsonl.part").exists());
        // A sink dropped unfinished (the run failed) leaves nothing behind.
        let path = dir.path().join("n.parquet");
        drop(create(&path, ManifestKind::Parquet, &[]).unwrap());
        assert!(!path.exists() && !dir.path().join("n.parquet.part").exists());
    }
}
