//! Parquet lists (LAION-style shards): read a record batch of `BATCH` rows at a time, so
//! memory stays flat whatever the file's length. The URL column must hold strings; the
//! other columns are carried with their JSON types. Columns of strings, integers,
//! floats, booleans and nulls only: a file with a nested, binary or date column is
//! refused at open with the column named, rather than carrying a value turned into
//! something its reader would not expect.

use std::fs::File;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde_json::Value;

use super::{Carried, ColumnType, ListError, Position, Row};

/// Rows per record batch: what is held at once.
const BATCH: usize = 8192;

fn builder(name: &Arc<str>, file: File) -> Result<ParquetRecordBatchReaderBuilder<File>, ListError> {
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| ListError::unreadable(name, e))
}

fn column_type(name: &Arc<str>, column: &str, t: &DataType) -> Result<ColumnType, ListError> {
    Ok(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => ColumnType::Str,
        DataType::Boolean => ColumnType::Bool,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ColumnType::Int,
        DataType::Float32 | DataType::Float64 => ColumnType::Float,
        other => {
            let why = format!(
                "column \"{column}\" is {other}: only string, integer, float and boolean columns can be carried"
            );
            return Err(ListError::unreadable(name, why));
        }
    })
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The value at `row`, as JSON; null for a null (and a float that is not a number).
fn value(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).into(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).into(),
        DataType::Utf8View => array.as_string_view().value(row).into(),
        DataType::Boolean => array.as_boolean().value(row).into(),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        _ => Value::Null,
    }
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A Parquet list being read: the batch in hand and the next row of it.
struct Reader {
    name: Arc<str>,
    batches: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    next: usize,
    url_at: usize,
    /// Rows before this batch, for positions.
    before: u64,
    failed: bool,
}

impl Iterator for Reader {
    type Item = Result<Row, ListError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(batch) = &self.batch
                && self.next < batch.num_rows()
            {
                let row = self.next;
                self.next += 1;
                let n = self.before + row as u64 + 1;
                let at = Position { file: self.name.clone(), row: n };
                let url = value(batch.column(self.url_at).as_ref(), row);
                let Some(url) = url.as_str().map(str::trim).filter(|u| !u.is_empty()) else {
                    let column = batch.schema().field(self.url_at).name().clone();
                    return Some(Err(ListError::BadRow {
                        at,
                        why: format!("no URL in column \"{column}\""),
                    }));
                };
                let schema = batch.schema();
                let carried: Carried = (0..batch.num_columns())
                    .filter(|&c| c != self.url_at)
                    .map(|c| (schema.field(c).name().clone(), value(batch.column(c).as_ref(), row)))
                    .collect();
                let carried = (!carried.is_empty()).then(|| Box::new(carried));
                return Some(Ok(Row { url: url.to_string(), at, carried }));
            }
            if let Some(batch) = self.batch.take() {
                self.before += batch.num_rows() as u64;
            }
            self.next = 0;
            match self.batches.next()? {
                Ok(batch) => self.batch = Some(batch),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(ListError::unreadable(&self.name, e)));
                }
            }
        }
    }
}

pub(super) fn rows(
    name: Arc<str>,
    file: File,
    url_column: &str,
) -> Result<impl Iterator<Item = Result<Row, ListError>> + Send + use<>, ListError> {
    let builder = builder(&name, file)?;
    let schema = builder.schema().clone();
    for field in schema.fields() {
        column_type(&name, field.name(), field.data_type())?;
    }
    let Some(url_at) = schema.fields().iter().position(|f| f.name() == url_column) else {
        let columns = schema.fields().iter().map(|f| f.name().clone()).collect();
        return Err(ListError::NoColumn { file: name, column: url_column.to_string(), columns });
    };
    if !is_string(schema.field(url_at).data_type()) {
        let why = format!(
            "--url-column {url_column}: the column holds {}, not strings",
            schema.field(url_at).data_type()
        );
        return Err(ListError::unreadable(&name, why));
    }
    let batches = builder.with_batch_size(BATCH).build().map_err(|e| ListError::unreadable(&name, e))?;
    Ok(Reader { name, batches, batch: None, next: 0, url_at, before: 0, failed: false })
}

/// From the footer: no row is read.
pub(super) fn count(name: &Arc<str>, file: File) -> Result<u64, ListError> {
    let rows = builder(name, file)?.metadata().file_metadata().num_rows();
    Ok(u64::try_from(rows).unwrap_or(0))
}

pub(super) fn columns(name: &Arc<str>, file: File) -> Result<Vec<(String, ColumnType)>, ListError> {
    let builder = builder(name, file)?;
    builder
        .schema()
        .fields()
        .iter()
        .map(|f| Ok((f.name().clone(), column_type(name, f.name(), f.data_type())?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, StringArray, types::Int32Type,
    };
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;

    /// A LAION-like file of `n` rows in row groups of 1,000, snappy-compressed.
    fn laion(path: &std::path::Path, n: usize) {
        let urls: Vec<String> = (0..n).map(|i| format!("http://h/{i}.jpg")).collect();
        let batch = RecordBatch::try_from_iter([
            ("URL", Arc::new(StringArray::from(urls)) as ArrayRef),
            (
                "TEXT",
                Arc::new(StringArray::from_iter((0..n).map(|i| (i % 2 == 0).then(|| format!("cat {i}"))))),
            ),
            ("WIDTH", Arc::new(Int64Array::from_iter_values((0..n).map(|i| i as i64)))),
            ("similarity", Arc::new(Float64Array::from_iter_values((0..n).map(|_| 0.25)))),
            ("nsfw", Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i == 1))))),
        ])
        .unwrap();
        let props = WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .set_max_row_group_row_count(Some(1000))
            .build();
        let mut writer =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn rows_come_a_batch_at_a_time_with_their_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.parquet");
        laion(&path, 20_000);
        let name: Arc<str> = "l.parquet".into();
        assert_eq!(count(&name, File::open(&path).unwrap()).unwrap(), 20_000);
        let mut n = 0;
        for (i, row) in rows(name.clone(), File::open(&path).unwrap(), "URL").unwrap().enumerate() {
            let row = row.unwrap();
            assert_eq!(row.url, format!("http://h/{i}.jpg"));
            assert_eq!(row.at.row, i as u64 + 1);
            let c = row.carried.unwrap();
            assert_eq!(c["WIDTH"], i as i64);
            if i < 2 {
                assert_eq!(c["TEXT"], if i == 0 { "cat 0".into() } else { Value::Null });
                assert_eq!(c["nsfw"], i == 1);
                assert_eq!(c["similarity"], 0.25);
            }
            n += 1;
        }
        assert_eq!(n, 20_000);
        let types = columns(&name, File::open(&path).unwrap()).unwrap();
        assert_eq!(
            types,
            [
                ("URL".into(), ColumnType::Str),
                ("TEXT".into(), ColumnType::Str),
                ("WIDTH".into(), ColumnType::Int),
                ("similarity".into(), ColumnType::Float),
                ("nsfw".into(), ColumnType::Bool)
            ]
        );
    }

    #[test]
    fn a_missing_url_column_names_the_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.parquet");
        laion(&path, 3);
        let e = rows("list.parquet".into(), File::open(&path).unwrap(), "url").err().unwrap();
        assert_eq!(
            e.to_string(),
            "--url-column url: list.parquet has no column \"url\" (its columns: URL, TEXT, WIDTH, similarity, nsfw)"
        );
    }

    #[test]
    fn a_nested_column_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.parquet");
        let tags = ListArray::from_iter_primitive::<Int32Type, _, _>([Some(vec![Some(1)])]);
        let batch = RecordBatch::try_from_iter([
            ("url", Arc::new(StringArray::from(vec!["http://h/a"])) as ArrayRef),
            ("tags", Arc::new(tags) as ArrayRef),
        ])
        .unwrap();
        let mut writer = ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let e = rows("l.parquet".into(), File::open(&path).unwrap(), "url").err().unwrap().to_string();
        assert!(e.starts_with("cannot read the list l.parquet: column \"tags\" is List"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_parquet_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.parquet");
        std::fs::write(&path, "url\nhttp://h/a\n").unwrap();
        let e = rows("l.parquet".into(), File::open(&path).unwrap(), "url").err().unwrap().to_string();
        assert!(e.starts_with("cannot read the list l.parquet: "), "{e}");
        assert!(!e.contains('\n'));
    }
}
