//! CSV and TSV lists: a header row names the columns; the URL column is `--url-column`,
//! every other cell is carried as a string (CSV has no types, and guessing one would
//! turn a key such as `007` into 7). Quoted fields and a UTF-8 BOM as spreadsheets
//! write them.

use std::sync::Arc;

use super::{Carried, ColumnType, ListError, Position, Row, Source};

fn reader(source: Source, delimiter: u8) -> ::csv::Reader<Box<dyn std::io::BufRead + Send>> {
    ::csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).from_reader(source.reader)
}

/// The header's names, a BOM dropped from the first (csv keeps it as part of the name).
fn header(
    name: &Arc<str>,
    reader: &mut ::csv::Reader<Box<dyn std::io::BufRead + Send>>,
) -> Result<Vec<String>, ListError> {
    let headers = reader.headers().map_err(|e| error(name, e))?;
    let names: Vec<String> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| if i == 0 { h.trim_start_matches('\u{feff}') } else { h }.trim().to_string())
        .collect();
    if names.is_empty() || names == [""] {
        return Err(ListError::unreadable(name, "it has no header row (the first line names the columns)"));
    }
    Ok(names)
}

fn error(name: &Arc<str>, e: ::csv::Error) -> ListError {
    match e.position() {
        Some(at) => ListError::bad_row(name, at.line(), e.to_string()),
        None => ListError::unreadable(name, e),
    }
}

pub(super) fn rows(
    source: Source,
    delimiter: u8,
    url_column: &str,
) -> Result<impl Iterator<Item = Result<Row, ListError>> + Send + use<>, ListError> {
    let name = source.name.clone();
    let mut reader = reader(source, delimiter);
    let names = header(&name, &mut reader)?;
    let Some(url_at) = names.iter().position(|n| n == url_column) else {
        return Err(ListError::NoColumn { file: name, column: url_column.to_string(), columns: names });
    };
    let mut records = reader.into_records();
    Ok(std::iter::from_fn(move || {
        let record = match records.next()? {
            Ok(record) => record,
            Err(e) => return Some(Err(error(&name, e))),
        };
        let line = record.position().map_or(0, |p| p.line());
        let url = record.get(url_at).unwrap_or("").trim();
        if url.is_empty() {
            let why = format!("no URL in column \"{}\"", names[url_at]);
            return Some(Err(ListError::bad_row(&name, line, why)));
        }
        let carried: Carried = names
            .iter()
            .zip(record.iter())
            .enumerate()
            .filter(|(i, _)| *i != url_at)
            .map(|(_, (n, v))| (n.clone(), serde_json::Value::String(v.to_string())))
            .collect();
        let carried = (!carried.is_empty()).then(|| Box::new(carried));
        Some(Ok(Row { url: url.to_string(), at: Position { file: name.clone(), row: line }, carried }))
    }))
}

pub(super) fn count(source: Source, delimiter: u8) -> Result<u64, ListError> {
    let name = source.name.clone();
    let mut reader = reader(source, delimiter);
    header(&name, &mut reader)?;
    let mut record = ::csv::ByteRecord::new();
    let mut n = 0;
    while reader.read_byte_record(&mut record).map_err(|e| error(&name, e))? {
        n += 1;
    }
    Ok(n)
}

pub(super) fn columns(source: Source, delimiter: u8) -> Result<Vec<(String, ColumnType)>, ListError> {
    let name = source.name.clone();
    let names = header(&name, &mut reader(source, delimiter))?;
    Ok(names.into_iter().map(|n| (n, ColumnType::Str)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &'static str) -> Source {
        Source { name: "l.csv".into(), reader: Box::new(text.as_bytes()) }
    }

    #[test]
    fn the_url_column_is_taken_and_the_others_carried() {
        let text = "\u{feff}key,url,caption\n007, http://h/a.jpg ,\"a cat, asleep\"\n008,http://h/b.jpg,\"say \"\"hi\"\"\nthere\"\n";
        let rows: Vec<_> = rows(source(text), b',', "url").unwrap().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].url, "http://h/a.jpg");
        assert_eq!(rows[0].at.to_string(), "l.csv:2");
        let carried = rows[0].carried.as_deref().unwrap();
        assert_eq!(carried["key"], "007");
        assert_eq!(carried["caption"], "a cat, asleep");
        assert_eq!(rows[1].carried.as_deref().unwrap()["caption"], "say \"hi\"\nthere");
        assert_eq!(count(source(text), b',').unwrap(), 2);
        let names: Vec<_> = columns(source(text), b',').unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["key", "url", "caption"]);
    }

    #[test]
    fn tabs_separate_a_tsv() {
        let rows: Vec<_> = rows(source("URL\tTEXT\nhttp://h/a\ta, b\n"), b'\t', "URL")
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows[0].url, "http://h/a");
        assert_eq!(rows[0].carried.as_deref().unwrap()["TEXT"], "a, b");
    }

    #[test]
    fn a_missing_column_names_the_columns_there_are() {
        let e = rows(source("link,caption\nhttp://h/a,x\n"), b',', "url").err().unwrap();
        assert_eq!(
            e.to_string(),
            "--url-column url: l.csv has no column \"url\" (its columns: link, caption)"
        );
    }

    #[test]
    fn a_bad_row_says_where_and_why() {
        let text = "url,k\nhttp://h/a,1\n,2\nhttp://h/c,3,extra\n";
        let rows: Vec<_> = rows(source(text), b',', "url").unwrap().collect();
        assert!(rows[0].is_ok());
        assert_eq!(rows[1].as_ref().unwrap_err().to_string(), "l.csv:3: no URL in column \"url\"");
        let e = rows[2].as_ref().unwrap_err().to_string();
        assert!(e.starts_with("l.csv:4: "), "{e}");
    }
}
