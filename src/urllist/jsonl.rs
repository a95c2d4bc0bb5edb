//! JSON Lines lists: one object per line, the URL a string under `--url-column`; every
//! other field is carried with its JSON type. Blank lines are skipped (a trailing one is
//! common).

use std::io::BufRead;

use super::{Carried, ColumnType, ListError, Position, Row, Source};

fn object(line: &str) -> Result<Carried, String> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Each non-blank line with its 1-based number, a BOM dropped from the first.
fn lines(source: Source) -> impl Iterator<Item = Result<(u64, String), ListError>> + Send {
    let Source { name, reader } = source;
    let mut lines = reader.lines();
    let mut n = 0u64;
    std::iter::from_fn(move || {
        loop {
            n += 1;
            match lines.next()? {
                Err(e) => return Some(Err(ListError::io(&name, n, e))),
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) if n == 1 => {
                    return Some(Ok((n, line.trim_start_matches('\u{feff}').to_string())));
                }
                Ok(line) => return Some(Ok((n, line))),
            }
        }
    })
}

pub(super) fn rows(
    source: Source,
    url_column: &str,
) -> impl Iterator<Item = Result<Row, ListError>> + Send + use<> {
    let name = source.name.clone();
    let url_column = url_column.to_string();
    lines(source).map(move |line| {
        let (n, line) = line?;
        let bad = |why: String| ListError::bad_row(&name, n, why);
        let mut carried = object(&line).map_err(bad)?;
        let url = match carried.remove(&url_column) {
            Some(serde_json::Value::String(url)) if !url.trim().is_empty() => url.trim().to_string(),
            Some(serde_json::Value::String(_)) => return Err(bad(format!("no URL in \"{url_column}\""))),
            Some(_) => return Err(bad(format!("\"{url_column}\" is not a string"))),
            None => {
                let fields: Vec<&str> = carried.keys().map(String::as_str).collect();
                let why = format!("no \"{url_column}\" field (its fields: {})", fields.join(", "));
                return Err(bad(why));
            }
        };
        let carried = (!carried.is_empty()).then(|| Box::new(carried));
        Ok(Row { url, at: Position { file: name.clone(), row: n }, carried })
    })
}

pub(super) fn count(source: Source) -> Result<u64, ListError> {
    let mut n = 0;
    for line in lines(source) {
        line?;
        n += 1;
    }
    Ok(n)
}

/// The first object's fields and their types: null and nested values are carried as
/// strings in a Parquet manifest (the JSON text of a nested value).
pub(super) fn columns(source: Source) -> Result<Vec<(String, ColumnType)>, ListError> {
    let name = source.name.clone();
    let Some(first) = lines(source).next() else { return Ok(Vec::new()) };
    let (n, line) = first?;
    let map = object(&line).map_err(|why| ListError::bad_row(&name, n, why))?;
    Ok(map.into_iter().map(|(k, v)| (k, type_of(&v))).collect())
}

fn type_of(value: &serde_json::Value) -> ColumnType {
    match value {
        serde_json::Value::Bool(_) => ColumnType::Bool,
        serde_json::Value::Number(n) if n.is_i64() => ColumnType::Int,
        serde_json::Value::Number(_) => ColumnType::Float,
        _ => ColumnType::Str,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &'static str) -> Source {
        Source { name: "l.jsonl".into(), reader: Box::new(text.as_bytes()) }
    }

    #[test]
    fn fields_keep_their_types() {
        let text =
            "{\"url\": \"http://h/a\", \"w\": 640, \"s\": 0.5, \"ok\": true, \"c\": null, \"t\": \"x\"}\n\n";
        let rows: Vec<_> = rows(source(text), "url").map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        let c = rows[0].carried.as_deref().unwrap();
        assert_eq!(c["w"], 640);
        assert_eq!(c["s"], 0.5);
        assert_eq!(c["ok"], true);
        assert!(c["c"].is_null());
        assert!(!c.contains_key("url"));
        let types = columns(source(text)).unwrap();
        assert_eq!(types[0], ("c".into(), ColumnType::Str));
        assert!(types.contains(&("w".into(), ColumnType::Int)));
        assert!(types.contains(&("s".into(), ColumnType::Float)));
        assert_eq!(count(source(text)).unwrap(), 1);
    }

    #[test]
    fn a_bad_line_says_where_and_why() {
        let text = "{\"url\": \"http://h/a\"}\nnot json\n[1]\n{\"url\": 3}\n{\"link\": \"x\"}\n";
        let errors: Vec<String> =
            rows(source(text), "url").filter_map(|r| r.err()).map(|e| e.to_string()).collect();
        assert!(errors[0].starts_with("l.jsonl:2: not JSON: "), "{}", errors[0]);
        assert_eq!(errors[1], "l.jsonl:3: not a JSON object");
        assert_eq!(errors[2], "l.jsonl:4: \"url\" is not a string");
        assert_eq!(errors[3], "l.jsonl:5: no \"url\" field (its fields: link)");
    }
}
