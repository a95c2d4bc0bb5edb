//! The Parquet manifest: items gathered into arrow builders, `BATCH` rows at a time, each
//! batch written as a row group of its own (snappy), so the sink holds at most one batch
//! whatever the run's length.
//!
//! Columns: the item's fields as they serialise (`kind` ... `detail`), its provenance
//! (`final_url`, `content_type`, `width`, `height`), `render` (a rendered page's note as
//! JSON text: pages are rare in a dataset's manifest, and ten mostly-null columns would
//! crowd it), then the list's carried columns with the types `urllist::columns` gave. A
//! carried value of another type than its column's is written as null (a string column
//! takes any value, as its JSON text). A carried column named like an item field is
//! written as `list_NAME`, so no two columns share a name.

use std::io;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use super::ManifestSink;
use crate::counts::{Item, ItemKind, Status};
use crate::storage::Part;
use crate::urllist::ColumnType;

/// Rows per row group: what the sink holds at most.
pub(super) const BATCH: usize = 8192;

/// The item's own columns, in the order they serialise.
const FIELDS: [(&str, DataType, bool); 18] = [
    ("kind", DataType::Utf8, false),
    ("url", DataType::Utf8, false),
    ("page", DataType::UInt32, false),
    ("path", DataType::Utf8, false),
    ("status", DataType::Utf8, false),
    ("bytes", DataType::UInt64, false),
    ("attempts", DataType::UInt32, false),
    ("error", DataType::Utf8, true),
    ("reason", DataType::Utf8, true),
    ("sha256", DataType::Utf8, true),
    ("element", DataType::Utf8, true),
    ("note", DataType::Utf8, true),
    ("detail", DataType::Utf8, true),
    ("final_url", DataType::Utf8, true),
    ("content_type", DataType::Utf8, true),
    ("width", DataType::UInt32, true),
    ("height", DataType::UInt32, true),
    ("render", DataType::Utf8, true),
];

/// The builders of the item's own columns.
#[derive(Default)]
struct Own {
    kind: StringBuilder,
    url: StringBuilder,
    page: UInt32Builder,
    path: StringBuilder,
    status: StringBuilder,
    bytes: UInt64Builder,
    attempts: UInt32Builder,
    error: StringBuilder,
    reason: StringBuilder,
    sha256: StringBuilder,
    element: StringBuilder,
    note: StringBuilder,
    detail: StringBuilder,
    final_url: StringBuilder,
    content_type: StringBuilder,
    width: UInt32Builder,
    height: UInt32Builder,
    render: StringBuilder,
}

impl Own {
    fn append(&mut self, item: &Item) {
        self.kind.append_value(match item.kind {
            ItemKind::Image => "image",
            ItemKind::Page => "page",
        });
        self.url.append_value(&item.url);
        self.page.append_value(item.page);
        self.path.append_value(&item.path);
        self.status.append_value(match item.status {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        });
        self.bytes.append_value(item.bytes);
        self.attempts.append_value(item.attempts);
        self.error.append_option(item.error.as_deref());
        self.reason.append_option(item.reason.as_deref());
        self.sha256.append_option(item.sha256.as_deref());
        self.element.append_option(item.element.map(|e| e.as_str()));
        self.note.append_option(item.note.as_deref());
        self.detail.append_option(item.detail.as_deref());
        self.final_url.append_option(item.info.final_url.as_deref());
        self.content_type.append_option(item.info.content_type.as_deref());
        self.width.append_option(item.info.width);
        self.height.append_option(item.info.height);
        let render = item.render.as_ref().and_then(|r| serde_json::to_string(r).ok());
        self.render.append_option(render);
    }

    fn finish(&mut self) -> [ArrayRef; FIELDS.len()] {
        [
            Arc::new(self.kind.finish()),
            Arc::new(self.url.finish()),
            Arc::new(self.page.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.bytes.finish()),
            Arc::new(self.attempts.finish()),
            Arc::new(self.error.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.sha256.finish()),
            Arc::new(self.element.finish()),
            Arc::new(self.note.finish()),
            Arc::new(self.detail.finish()),
            Arc::new(self.final_url.finish()),
            Arc::new(self.content_type.finish()),
            Arc::new(self.width.finish()),
            Arc::new(self.height.finish()),
            Arc::new(self.render.finish()),
        ]
    }
}

/// A carried column's builder, by its type.
enum Carried {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
}

impl Carried {
    fn new(t: ColumnType) -> Carried {
        match t {
            ColumnType::Str => Carried::Str(StringBuilder::new()),
            ColumnType::Int => Carried::Int(Int64Builder::new()),
            ColumnType::Float => Carried::Float(Float64Builder::new()),
            ColumnType::Bool => Carried::Bool(BooleanBuilder::new()),
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Carried::Str(_) => DataType::Utf8,
            Carried::Int(_) => DataType::Int64,
            Carried::Float(_) => DataType::Float64,
            Carried::Bool(_) => DataType::Boolean,
        }
    }

    fn append(&mut self, value: Option<&Value>) {
        let value = value.filter(|v| !v.is_null());
        match self {
            Carried::Str(b) => match value {
                Some(Value::String(s)) => b.append_value(s),
                Some(other) => b.append_value(other.to_string()),
                None => b.append_null(),
            },
            Carried::Int(b) => b.append_option(value.and_then(Value::as_i64)),
            Carried::Float(b) => b.append_option(value.and_then(Value::as_f64)),
            Carried::Bool(b) => b.append_option(value.and_then(Value::as_bool)),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Carried::Str(b) => Arc::new(b.finish()),
            Carried::Int(b) => Arc::new(b.finish()),
            Carried::Float(b) => Arc::new(b.finish()),
            Carried::Bool(b) => Arc::new(b.finish()),
        }
    }
}

pub(super) struct ParquetSink {
    writer: ArrowWriter<std::fs::File>,
    schema: SchemaRef,
    own: Own,
    /// The list's column name (what a row's map is keyed by) and its builder.
    carried: Vec<(String, Carried)>,
    /// Rows in the builders, not yet written.
    rows: usize,
    part: Part,
}

impl ParquetSink {
    pub(super) fn new(mut part: Part, columns: &[(String, ColumnType)]) -> io::Result<ParquetSink> {
        let carried: Vec<(String, Carried)> =
            columns.iter().map(|(n, t)| (n.clone(), Carried::new(*t))).collect();
        let mut fields: Vec<Field> =
            FIELDS.iter().map(|(n, t, null)| Field::new(*n, t.clone(), *null)).collect();
        for (name, builder) in &carried {
            let taken = FIELDS.iter().any(|(n, _, _)| n == name);
            let name = if taken { format!("list_{name}") } else { name.clone() };
            fields.push(Field::new(name, builder.data_type(), true));
        }
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(BATCH))
            .build();
        let writer =
            ArrowWriter::try_new(part.take_file(), schema.clone(), Some(props)).map_err(io::Error::other)?;
        Ok(ParquetSink { writer, schema, own: Own::default(), carried, rows: 0, part })
    }

    /// Writes the builders' rows as a row group.
    fn flush(&mut self) -> io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut columns = self.own.finish().to_vec();
        columns.extend(self.carried.iter_mut().map(|(_, b)| b.finish()));
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(io::Error::other)?;
        self.writer.write(&batch).map_err(io::Error::other)?;
        // Without it the writer would gather row groups of a million rows in memory.
        self.writer.flush().map_err(io::Error::other)?;
        self.rows = 0;
        Ok(())
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        (self.rows, self.writer.in_progress_rows())
    }
}

impl ManifestSink for ParquetSink {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        self.own.append(item);
        for (name, builder) in &mut self.carried {
            builder.append(item.carried.as_ref().and_then(|c| c.get(name)));
        }
        self.rows += 1;
        if self.rows >= BATCH { self.flush() } else { Ok(()) }
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.flush()?;
        let ParquetSink { writer, part, .. } = *self;
        writer.into_inner().map_err(io::Error::other)?.sync_all()?;
        part.commit()
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, UInt32Type, UInt64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::super::{ManifestKind, create, testing};
    use super::*;
    use crate::storage::Part;

    fn columns() -> Vec<(String, ColumnType)> {
        vec![
            ("caption".into(), ColumnType::Str),
            ("key".into(), ColumnType::Int),
            ("status".into(), ColumnType::Str),
        ]
    }

    #[test]
    fn every_column_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.parquet");
        let mut sink = create(&path, ManifestKind::Parquet, &columns()).unwrap();
        let mut plain = testing::item(1);
        (plain.info, plain.carried, plain.sha256) = (Default::default(), None, None);
        plain.status = Status::Failed;
        plain.error = Some("HTTP status 404".into());
        let mut odd = testing::item(2);
        let c = odd.carried.as_mut().unwrap();
        c.insert("key".into(), "not a number".into());
        c.insert("status".into(), true.into());
        for item in [testing::item(0), plain, odd] {
            sink.write(&item).unwrap();
        }
        sink.finish().unwrap();

        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        let names: Vec<_> = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
        let mut expected: Vec<String> = FIELDS.iter().map(|(n, _, _)| n.to_string()).collect();
        expected.extend(["caption", "key", "list_status"].map(String::from));
        assert_eq!(names, expected);
        let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        let s = |c: &str| b.column_by_name(c).unwrap().as_string::<i32>().clone();
        let u32s = |c: &str| b.column_by_name(c).unwrap().as_primitive::<UInt32Type>().clone();
        assert_eq!(s("kind").value(0), "image");
        assert_eq!(s("url").value(0), "http://h/0.jpg");
        assert_eq!(u32s("page").value(0), 0);
        assert_eq!(s("path").value(0), "0.jpg");
        assert_eq!(s("status").value(0), "ok");
        assert_eq!(s("status").value(1), "failed");
        assert_eq!(b.column_by_name("bytes").unwrap().as_primitive::<UInt64Type>().value(0), 100);
        assert_eq!(u32s("attempts").value(0), 1);
        assert!(s("error").is_null(0));
        assert_eq!(s("error").value(1), "HTTP status 404");
        assert!(s("reason").is_null(0));
        assert_eq!(s("sha256").value(0), "ab".repeat(32));
        assert!(s("sha256").is_null(1));
        assert_eq!(s("element").value(0), "img");
        assert!(s("note").is_null(0) && s("detail").is_null(0) && s("render").is_null(0));
        assert_eq!(s("final_url").value(0), "http://cdn/0.jpg");
        assert!(s("final_url").is_null(1));
        assert_eq!(s("content_type").value(0), "image/jpeg");
        assert_eq!((u32s("width").value(0), u32s("height").value(0)), (640, 480));
        assert!(u32s("width").is_null(1));
        assert_eq!(s("caption").value(0), "cat 0");
        assert!(s("caption").is_null(1));
        let key = b.column_by_name("key").unwrap().as_primitive::<Int64Type>().clone();
        assert_eq!(key.value(0), 0);
        assert!(key.is_null(2), "a value of another type is null");
        assert!(s("list_status").is_null(0));
        assert_eq!(s("list_status").value(2), "true");
    }

    #[test]
    fn the_sink_holds_at_most_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.parquet");
        let part = Part::create(&path).unwrap();
        let mut sink = ParquetSink::new(part, &columns()).unwrap();
        let total = 3 * BATCH + 5;
        for n in 0..total {
            sink.write(&testing::item(n)).unwrap();
            let (rows, in_writer) = sink.held();
            assert!(rows < BATCH && in_writer == 0, "{rows} rows built, {in_writer} in the writer");
        }
        Box::new(sink).finish().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        let groups: Vec<i64> = reader.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, [BATCH as i64, BATCH as i64, BATCH as i64, 5]);
        let mut n = 0;
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let urls = batch.column_by_name("url").unwrap().as_string::<i32>().clone();
            for url in urls.iter() {
                assert_eq!(url.unwrap(), format!("http://h/{n}.jpg"));
                n += 1;
            }
        }
        assert_eq!(n, total);
    }
}
