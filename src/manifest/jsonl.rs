//! The JSON Lines manifest: one object per item, as `serde` writes an `Item` (its
//! provenance and carried columns flattened beside its own fields).

use std::io::{self, BufWriter, Write};

use super::ManifestSink;
use crate::counts::Item;
use crate::storage::Part;

pub(super) struct JsonlSink {
    out: BufWriter<std::fs::File>,
    part: Part,
}

impl JsonlSink {
    pub(super) fn new(mut part: Part) -> JsonlSink {
        JsonlSink { out: BufWriter::with_capacity(64 * 1024, part.take_file()), part }
    }
}

impl ManifestSink for JsonlSink {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, item).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        let JsonlSink { out, part } = *self;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        part.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ManifestKind, create, testing};

    #[test]
    fn each_item_is_a_line_with_its_provenance_and_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        let mut sink = create(&path, ManifestKind::Jsonl, &[]).unwrap();
        for n in 0..3 {
            sink.write(&testing::item(n)).unwrap();
        }
        sink.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        let line = &lines[2];
        assert_eq!(line["url"], "http://h/2.jpg");
        assert_eq!(line["final_url"], "http://cdn/2.jpg");
        assert_eq!(line["content_type"], "image/jpeg");
        assert_eq!((line["width"].as_u64(), line["height"].as_u64()), (Some(640), Some(480)));
        assert_eq!(line["caption"], "cat 2");
        assert_eq!(line["key"], 2);
        assert_eq!(line["element"], "img");
    }
}
