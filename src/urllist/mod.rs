//! Pure: the `--urls` list formats, read as a stream of rows. Plain text (`text.rs`), CSV
//! and TSV with a header (`csv.rs`), JSON Lines (`jsonl.rs`) and Parquet (`parquet.rs`);
//! a row's other columns are carried untouched, with their JSON types, to the manifest.
//!
//! Lists run to millions of rows (LAION-style shards), so nothing here holds a whole
//! file: text, CSV and JSONL are read a line at a time, Parquet a record batch at a time.

mod csv;
mod jsonl;
mod parquet;
mod text;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A row's columns other than its URL, by column name.
pub type Carried = serde_json::Map<String, serde_json::Value>;

/// One URL of a list, where it was, and what came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The raw text of the URL cell, trimmed: resolving it is the caller's, so an error
    /// names the row it came from.
    pub url: String,
    /// Where the row is, for error messages.
    pub at: Position,
    /// Every other column; `None` when there are none (plain text), so a text list costs
    /// no map per row.
    pub carried: Option<Box<Carried>>,
}

/// Where a row is: `list.csv:12`. The file name is shared by all its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file as given (`-` for stdin).
    pub file: Arc<str>,
    /// 1-based line for text, CSV and JSONL; 1-based row for Parquet.
    pub row: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.row)
    }
}

/// A list's format: from the file's extension, or `--list-format` (stdin has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    Tsv,
    Jsonl,
    Parquet,
}

impl Format {
    /// The format a file's extension names; `None` for an extension no list has (a folder
    /// skips such files; a file named on its own is read as text).
    pub fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        Some(match ext.as_deref() {
            None | Some("txt" | "list") => Format::Text,
            Some("csv") => Format::Csv,
            Some("tsv") => Format::Tsv,
            Some("jsonl" | "ndjson") => Format::Jsonl,
            Some("parquet") => Format::Parquet,
            Some(_) => return None,
        })
    }

    /// The names `--list-format` takes.
    pub const NAMES: [&'static str; 5] = ["text", "csv", "tsv", "jsonl", "parquet"];
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "text" => Format::Text,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            "jsonl" => Format::Jsonl,
            "parquet" => Format::Parquet,
            _ => return Err(format!("expected one of: {}", Format::NAMES.join(", "))),
        })
    }
}

/// One list to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    fn name(&self) -> Arc<str> {
        match self {
            Input::File(path) => path.display().to_string().into(),
            Input::Stdin => "-".into(),
        }
    }
}

/// What to read: the lists in order, their format when the extension must not decide,
/// and the column that holds the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSpec {
    /// Read one after another, in this order.
    pub inputs: Vec<Input>,
    /// `--list-format`: overrides every input's extension (stdin has none).
    pub format: Option<Format>,
    /// `--url-column`: ignored by plain text, which is all URL.
    pub url_column: String,
}

impl ListSpec {
    /// Every input is plain text: a list written by hand, not a dataset's table.
    pub fn is_text(&self) -> bool {
        self.inputs.iter().all(|input| self.format_of(input) == Format::Text)
    }

    fn format_of(&self, input: &Input) -> Format {
        self.format.unwrap_or(match input {
            Input::File(path) => Format::of_path(path).unwrap_or(Format::Text),
            Input::Stdin => Format::Text,
        })
    }
}

/// Why a list cannot be read. Each is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cannot read the list {file}: {why}")]
    Unreadable { file: Arc<str>, why: String },
    #[error("{at}: {why}")]
    BadRow { at: Position, why: String },
    #[error("--url-column {column}: {file} has no column \"{column}\" (its columns: {})", .columns.join(", "))]
    NoColumn { file: Arc<str>, column: String, columns: Vec<String> },
}

impl ListError {
    fn unreadable(file: &Arc<str>, why: impl std::fmt::Display) -> ListError {
        ListError::Unreadable { file: file.clone(), why: why.to_string() }
    }

    /// A read that failed at `row`: a line that is not UTF-8 is that row's fault, the
    /// rest (a disk error) the file's.
    fn io(file: &Arc<str>, row: u64, e: std::io::Error) -> ListError {
        match e.kind() {
            std::io::ErrorKind::InvalidData => ListError::bad_row(file, row, "not UTF-8 text"),
            _ => ListError::unreadable(file, e),
        }
    }

    fn bad_row(file: &Arc<str>, row: u64, why: impl Into<String>) -> ListError {
        ListError::BadRow { at: Position { file: file.clone(), row }, why: why.into() }
    }
}

/// An opened text-like input: its name for errors and its bytes.
struct Source {
    name: Arc<str>,
    reader: Box<dyn BufRead + Send>,
}

fn source(input: &Input) -> Result<Source, ListError> {
    let name = input.name();
    let reader: Box<dyn BufRead + Send> = match input {
        Input::File(path) => {
            let file = File::open(path).map_err(|e| ListError::unreadable(&name, e))?;
            Box::new(BufReader::with_capacity(64 * 1024, file))
        }
        Input::Stdin => Box::new(BufReader::new(std::io::stdin())),
    };
    Ok(Source { name, reader })
}

fn parquet_file(input: &Input) -> Result<(Arc<str>, File), ListError> {
    let name = input.name();
    match input {
        Input::File(path) => {
            let file = File::open(path).map_err(|e| ListError::unreadable(&name, e))?;
            Ok((name, file))
        }
        // The footer is at the end: a pipe cannot be read back to it.
        Input::Stdin => {
            Err(ListError::unreadable(&name, "a Parquet list cannot be read from stdin (give the file)"))
        }
    }
}

/// The rows of every input, in order.
pub struct Rows(Box<dyn Iterator<Item = Result<Row, ListError>> + Send>);

impl Iterator for Rows {
    type Item = Result<Row, ListError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

type RowIter = Box<dyn Iterator<Item = Result<Row, ListError>> + Send>;

fn open_one(spec: &ListSpec, input: &Input) -> Result<RowIter, ListError> {
    Ok(match spec.format_of(input) {
        Format::Text => Box::new(text::rows(source(input)?)),
        Format::Csv => Box::new(csv::rows(source(input)?, b',', &spec.url_column)?),
        Format::Tsv => Box::new(csv::rows(source(input)?, b'\t', &spec.url_column)?),
        Format::Jsonl => Box::new(jsonl::rows(source(input)?, &spec.url_column)),
        Format::Parquet => {
            let (name, file) = parquet_file(input)?;
            Box::new(parquet::rows(name, file, &spec.url_column)?)
        }
    })
}

/// Opens the list: the first input now (so a missing file or column is an error before
/// any request), each later one when the one before it is done (so a folder of a
/// thousand shards holds one open).
pub fn open(spec: &ListSpec) -> Result<Rows, ListError> {
    let Some((first, rest)) = spec.inputs.split_first() else {
        return Ok(Rows(Box::new(std::iter::empty())));
    };
    let first = open_one(spec, first)?;
    let spec = spec.clone();
    // Owned: the rows outlive `spec` (they are read on another thread).
    let later: Vec<Input> = rest.to_vec();
    let rest = later.into_iter().flat_map(move |input| match open_one(&spec, &input) {
        Ok(rows) => rows,
        Err(e) => Box::new(std::iter::once(Err(e))) as RowIter,
    });
    Ok(Rows(Box::new(first.chain(rest))))
}

/// How many rows the list holds, for the progress bar's total: Parquet from its footer,
/// the others by one streaming pass. `None` for stdin, which can be read only once.
pub fn count(spec: &ListSpec) -> Result<Option<u64>, ListError> {
    let mut total = 0;
    for input in &spec.inputs {
        if *input == Input::Stdin {
            return Ok(None);
        }
        total += match spec.format_of(input) {
            Format::Text => text::count(source(input)?)?,
            Format::Csv => csv::count(source(input)?, b',')?,
            Format::Tsv => csv::count(source(input)?, b'\t')?,
            Format::Jsonl => jsonl::count(source(input)?)?,
            Format::Parquet => {
                let (name, file) = parquet_file(input)?;
                parquet::count(&name, file)?
            }
        };
    }
    Ok(Some(total))
}

/// The type a carried column has in a Parquet manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Str,
    Int,
    Float,
    Bool,
}

/// The carried columns (all but the URL column) and their types, from the first input:
/// the CSV header (all strings), the Parquet schema, or the first JSONL object (a
/// later row's value of another type is written as null by a Parquet manifest). A
/// Parquet manifest needs its schema before its first row; text has no columns.
pub fn columns(spec: &ListSpec) -> Result<Vec<(String, ColumnType)>, ListError> {
    let Some(input) = spec.inputs.first() else { return Ok(Vec::new()) };
    let mut columns = match spec.format_of(input) {
        Format::Text => Vec::new(),
        Format::Csv => csv::columns(source(input)?, b',')?,
        Format::Tsv => csv::columns(source(input)?, b'\t')?,
        Format::Jsonl => jsonl::columns(source(input)?)?,
        Format::Parquet => {
            let (name, file) = parquet_file(input)?;
            parquet::columns(&name, file)?
        }
    };
    columns.retain(|(name, _)| *name != spec.url_column);
    Ok(columns)
}

/// A folder's lists: its files with a list's extension, sorted by name; hidden files
/// (`.DS_Store`, an editor's swap file) and other extensions skipped.
pub fn folder_lists(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut lists = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let has_ext = path.extension().is_some();
        if !hidden && has_ext && Format::of_path(&path).is_some() && entry.file_type()?.is_file() {
            lists.push(path);
        }
    }
    lists.sort();
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_names_the_format() {
        let of = |p: &str| Format::of_path(Path::new(p));
        assert_eq!(of("a.txt"), Some(Format::Text));
        assert_eq!(of("failed"), Some(Format::Text));
        assert_eq!(of("a.CSV"), Some(Format::Csv));
        assert_eq!(of("a.tsv"), Some(Format::Tsv));
        assert_eq!(of("a.ndjson"), Some(Format::Jsonl));
        assert_eq!(of("a.parquet"), Some(Format::Parquet));
        assert_eq!(of("a.json"), None);
    }

    #[test]
    fn a_folder_gives_its_lists_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.csv", "a.txt", ".hidden.txt", "notes.md", "c.parquet", "README"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.txt")).unwrap();
        let names: Vec<_> = folder_lists(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.txt", "b.csv", "c.parquet"]);
    }

    #[test]
    fn inputs_are_read_in_turn_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.jsonl");
        std::fs::write(&a, "http://h/1\n# c\nhttp://h/2\n").unwrap();
        std::fs::write(&b, "{\"url\": \"http://h/3\", \"k\": 1}\n").unwrap();
        let spec = ListSpec {
            inputs: vec![Input::File(a), Input::File(b.clone())],
            format: None,
            url_column: "url".into(),
        };
        let urls: Vec<_> = open(&spec).unwrap().map(|r| r.unwrap().url).collect();
        assert_eq!(urls, ["http://h/1", "http://h/2", "http://h/3"]);
        assert_eq!(count(&spec).unwrap(), Some(3));
        let spec = ListSpec { inputs: vec![Input::Stdin], ..spec };
        assert_eq!(count(&spec).unwrap(), None);
    }

    #[test]
    fn a_missing_file_is_one_line_naming_it() {
        let spec = ListSpec {
            inputs: vec![Input::File("/nonexistent/list.csv".into())],
            format: None,
            url_column: "url".into(),
        };
        let e = open(&spec).err().unwrap().to_string();
        assert!(e.starts_with("cannot read the list /nonexistent/list.csv: "), "{e}");
        assert!(!e.contains('\n'));
    }
}
