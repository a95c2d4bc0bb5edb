//! `--urls`, `--url-column`, `--list-format` into a `urllist::ListSpec`: which lists to
//! read, in which format, and where their URL is. Only what the command line can tell
//! is checked here (the files there, a folder with lists in it); a file's columns are
//! checked when it is opened.

use std::path::Path;

use anyhow::{anyhow, bail};

use crate::cli::Cli;
use crate::urllist::{Format, Input, ListSpec, folder_lists};

/// The column a list's URL is in when `--url-column` does not say: img2dataset's default.
pub const DEFAULT_URL_COLUMN: &str = "url";

/// The lists `--urls` names; `None` without `--urls`.
pub fn list_spec(cli: &Cli) -> anyhow::Result<Option<ListSpec>> {
    let Some(path) = &cli.urls else {
        if cli.url_column.is_some() {
            bail!("--url-column: only a --urls list has columns (give --urls FILE)");
        }
        if cli.list_format.is_some() {
            bail!("--list-format: only a --urls list has a format (give --urls FILE)");
        }
        return Ok(None);
    };
    let format = cli
        .list_format
        .as_deref()
        .map(str::parse::<Format>)
        .transpose()
        .map_err(|e| anyhow!("--list-format: {e}"))?;
    let inputs = if path.as_os_str() == "-" {
        if format == Some(Format::Parquet) {
            bail!(
                "--urls -: a Parquet list cannot be read from stdin (its index is at its end): give the file"
            );
        }
        vec![Input::Stdin]
    } else {
        inputs(path)?
    };
    let url_column = cli.url_column.clone().unwrap_or_else(|| DEFAULT_URL_COLUMN.to_string());
    if url_column.trim().is_empty() {
        bail!("--url-column: empty (give the name of the column that holds the URLs)");
    }
    Ok(Some(ListSpec { inputs, format, url_column }))
}

/// A file, or a folder's lists in name order.
fn inputs(path: &Path) -> anyhow::Result<Vec<Input>> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow!("--urls: cannot read {}: {e}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![Input::File(path.to_path_buf())]);
    }
    let lists =
        folder_lists(path).map_err(|e| anyhow!("--urls: cannot read the folder {}: {e}", path.display()))?;
    if lists.is_empty() {
        bail!(
            "--urls: the folder {} holds no lists (files ending .txt, .list, .csv, .tsv, .jsonl, .ndjson or .parquet)",
            path.display()
        );
    }
    Ok(lists.into_iter().map(Input::File).collect())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::testing::cli;
    use super::*;

    fn error(args: &[&str]) -> String {
        format!("{:#}", list_spec(&cli(args)).unwrap_err())
    }

    #[test]
    fn a_file_stdin_or_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.parquet", "a.csv", "notes.md", ".a.txt"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let d = dir.path().to_str().unwrap();
        let spec = list_spec(&cli(&["--urls", d, "--url-column", "URL"])).unwrap().unwrap();
        assert_eq!(
            spec.inputs,
            [Input::File(dir.path().join("a.csv")), Input::File(dir.path().join("b.parquet"))]
        );
        assert_eq!((spec.format, spec.url_column.as_str()), (None, "URL"));

        let spec = list_spec(&cli(&["--urls", "-", "--list-format", "jsonl"])).unwrap().unwrap();
        assert_eq!((spec.inputs, spec.format), (vec![Input::Stdin], Some(Format::Jsonl)));
        assert_eq!(spec.url_column, "url");

        let file = dir.path().join("a.csv");
        let spec = list_spec(&cli(&["--urls", file.to_str().unwrap()])).unwrap().unwrap();
        assert_eq!(spec.inputs, [Input::File(file)]);
        assert_eq!(list_spec(&cli(&[])).unwrap(), None);
    }

    #[test]
    fn each_mistake_is_one_line() {
        let empty = tempfile::tempdir().unwrap();
        let e = error(&["--urls", empty.path().to_str().unwrap()]);
        assert!(e.starts_with("--urls: the folder ") && e.contains("holds no lists"), "{e}");
        let e = error(&["--urls", "/nonexistent/list.csv"]);
        assert!(e.starts_with("--urls: cannot read /nonexistent/list.csv: "), "{e}");
        assert_eq!(
            error(&["--url-column", "URL"]),
            "--url-column: only a --urls list has columns (give --urls FILE)"
        );
        assert!(error(&["--urls", "-", "--list-format", "parquet"]).contains("cannot be read from stdin"));
        for e in [error(&["--urls", "/nonexistent"]), error(&["--list-format", "csv"])] {
            assert!(!e.contains('\n'), "{e}");
        }
        let resolved =
            super::super::testing::error(super::super::testing::ORIGINAL, &["--url-column", "URL"]);
        assert_eq!(
            resolved, "--url-column: only a --urls list has columns (give --urls FILE)",
            "checked by resolve"
        );
        let bad = Cli::try_parse_from(["image-scraper", "--urls", "-", "--list-format", "xls"]);
        assert!(bad.is_err(), "clap refuses a format it does not know");
    }
}
