//! Where the run writes: the image folder or bucket (`-o`, `OUT_DIR`), the report
//! (`--report`) and the failed list (`--failed`), checked before any download so a typo
//! does not cost a whole run.

use std::path::{Path, PathBuf};

use crate::manifest::ManifestKind;
use anyhow::{anyhow, bail};

use super::defaults::DEFAULT_OUT_DIR;
use crate::cli::Cli;
use crate::settings::Settings;
use crate::store::s3::S3Location;

/// What the report file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Counts and items in one JSON document.
    Json,
    /// One JSON line per image, with its sha256.
    Jsonl,
    /// The manifest as a Parquet file: what a dataset loader reads.
    Parquet,
}

/// The output paths, checked: a part of [`Config`](super::Config) built on its own so the
/// checks sit next to the flags they check. Field meanings are `Config`'s.
pub(super) struct Output {
    /// `-o`/`OUT_DIR`; only a name in messages when `bucket` is set.
    pub out_dir: PathBuf,
    /// `-o s3://bucket/prefix`.
    pub bucket: Option<S3Location>,
    /// `--report`, its kind from the extension.
    pub report: Option<(PathBuf, ReportKind)>,
    /// `--failed`.
    pub failed_list: Option<PathBuf>,
}

/// `-o`/`OUT_DIR` (folder or bucket), `--report`, `--failed`.
pub(super) fn resolve(settings: &Settings, cli: &Cli) -> anyhow::Result<Output> {
    let key = |name: &str| settings.origin(name);
    let s = &settings.section;
    let (out_dir, out_origin) = match (&cli.out_dir, &s.out_dir) {
        (Some(dir), _) => (dir.clone(), "--out-dir".to_string()),
        (None, Some(dir)) => (dir.clone(), key("OUT_DIR")),
        (None, None) => (PathBuf::from(DEFAULT_OUT_DIR), "out dir".to_string()),
    };
    if out_dir.as_os_str().is_empty() {
        bail!("{out_origin}: must not be empty");
    }
    let bucket = match out_dir.to_str().filter(|s| s.starts_with("s3://")) {
        Some(text) => Some(S3Location::parse(text).map_err(|e| anyhow!("{out_origin}: {e}"))?),
        None => None,
    };
    if bucket.is_none() && out_dir.exists() && !out_dir.is_dir() {
        bail!("{out_origin}: {} exists and is not a folder", out_dir.display());
    }
    let report = match &cli.report {
        Some(path) => {
            check_output_file("--report", path, &out_dir)?;
            let kind = match ManifestKind::of_path(path) {
                Some(ManifestKind::Jsonl) => ReportKind::Jsonl,
                Some(ManifestKind::Parquet) => ReportKind::Parquet,
                None => ReportKind::Json,
            };
            Some((path.clone(), kind))
        }
        None => None,
    };
    if let Some(path) = &cli.failed {
        check_output_file("--failed", path, &out_dir)?;
    }
    Ok(Output { out_dir, bucket, report, failed_list: cli.failed.clone() })
}

/// An output file's folder must exist and the file must not be a folder.
/// `out_dir`: a file right inside the out dir is fine before the folder exists (`-o out
/// --report out/manifest.parquet`, a dataset's layout): the run makes it first.
fn check_output_file(flag: &str, path: &Path, out_dir: &Path) -> anyhow::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|p| !p.is_dir() && *p != out_dir) {
        bail!("{flag}: folder {} does not exist", parent.display());
    }
    if path.is_dir() {
        bail!("{flag}: {} is a folder", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::resolve;
    use crate::config::testing::*;

    #[test]
    fn output_paths_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = error(ORIGINAL, &["-o", file.to_str().unwrap()]);
        assert!(e.starts_with("--out-dir: ") && e.ends_with("is not a folder"), "{e}");
        let missing = dir.path().join("no/such/report.json");
        let e = error(ORIGINAL, &["--report", missing.to_str().unwrap()]);
        assert!(e.starts_with("--report: folder"), "{e}");
        let e = error(ORIGINAL, &["--failed", dir.path().to_str().unwrap()]);
        assert!(e.starts_with("--failed: ") && e.ends_with("is a folder"), "{e}");
        let c = resolve(ORIGINAL, &["--report", "x.JSONL"]).unwrap();
        assert_eq!(c.report.unwrap().1, ReportKind::Jsonl);
    }
}
