//! `--frontier`, `--job`, `--lease`, `--job-ttl` (and `FRONTIER`, `JOB`): a job shared by
//! several processes, checked before any connection.

use std::time::Duration;

use anyhow::bail;

use crate::cli::Cli;
use crate::settings::Settings;

/// A job shared by several processes through a Redis frontier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedJob {
    /// `redis://host:port/db` (or `unix:///path`).
    pub url: String,
    pub job: String,
    /// How long a task stays leased to a process that stops renewing it.
    pub lease: Duration,
    /// How long a finished job's keys stay in Redis; `None`: until deleted.
    pub ttl: Option<Duration>,
}

/// `--frontier`, `--job`, `--lease`: checked here so a bad one stops the run before any
/// connection.
pub(super) fn resolve(cli: &Cli, settings: &Settings) -> anyhow::Result<Option<SharedJob>> {
    let s = &settings.section;
    let (url, job) = (cli.frontier.as_ref().or(s.frontier.as_ref()), cli.job.as_ref().or(s.job.as_ref()));
    let (url, job) = match (url, job) {
        (Some(url), Some(job)) => (url, job),
        (None, None) => return Ok(None),
        (Some(_), None) => {
            bail!("{}: set JOB (or --job) too: the shared job's name", settings.origin("FRONTIER"))
        }
        (None, Some(_)) => {
            bail!("{}: set FRONTIER (or --frontier) too: the job's Redis", settings.origin("JOB"))
        }
    };
    if !["redis://", "redis+unix://", "unix://"].iter().any(|scheme| url.starts_with(scheme)) {
        bail!("--frontier: expected redis://host:port/db or unix:///path, got {url:?}");
    }
    if job.is_empty()
        || job.len() > 64
        || !job.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        bail!("--job: 1 to 64 letters, digits, '.', '_' or '-', got {job:?}");
    }
    if !(1..=86_400).contains(&cli.lease) {
        bail!("--lease: from 1 to 86400 seconds, got {}", cli.lease);
    }
    // Redis refuses an expiry time past its range, and the script that ends the job
    // would fail with it: ten years is past any use.
    if cli.job_ttl > 10 * 365 * 86_400 {
        bail!(
            "--job-ttl: at most 315360000 seconds (ten years; 0 keeps the job until deleted), got {}",
            cli.job_ttl
        );
    }
    if cli.dry_run {
        bail!("--frontier: --dry-run lists what one process would fetch; run it without --frontier");
    }
    let ttl = (cli.job_ttl > 0).then(|| Duration::from_secs(cli.job_ttl));
    Ok(Some(SharedJob { url: url.clone(), job: job.clone(), lease: Duration::from_secs(cli.lease), ttl }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::resolve;
    use clap::Parser;

    #[test]
    fn a_shared_job_is_checked_before_any_connection() {
        let yaml = "SCRAPER:\n  URL: http://h.example/\n  ITEM: cats\n";
        let ok = resolve(yaml, &["--frontier", "redis://127.0.0.1:6379/0", "--job", "cats-1"]).unwrap();
        let shared = ok.shared.unwrap();
        assert_eq!((shared.job.as_str(), shared.lease), ("cats-1", Duration::from_secs(30)));
        let bad = |args: &[&str]| resolve(yaml, args).unwrap_err().to_string();
        assert!(bad(&["--frontier", "http://r/", "--job", "x"]).contains("redis://"));
        assert!(bad(&["--frontier", "redis://r/", "--job", "a{b}"]).contains("--job"));
        assert!(bad(&["--frontier", "redis://r/", "--job", "x", "--lease", "0"]).contains("--lease"));
        assert!(
            bad(&["--frontier", "redis://r/", "--job", "x", "--job-ttl", "999999999999"])
                .contains("--job-ttl")
        );
        assert!(bad(&["--frontier", "redis://r/", "--job", "x", "--dry-run"]).contains("--dry-run"));
        let s3 =
            resolve(yaml, &["--frontier", "redis://r/", "--job", "x", "-o", "s3://bucket/cats"]).unwrap();
        assert!(s3.shared.is_some() && s3.bucket.is_some(), "one bucket for the whole job");
        assert!(Cli::try_parse_from(["image-scraper", "--job", "x"]).is_err(), "--job needs --frontier");
        let from_file = resolve(&format!("{yaml}  FRONTIER: redis://r/\n  JOB: cats-2\n"), &[]).unwrap();
        assert_eq!(from_file.shared.unwrap().job, "cats-2");
        let half = resolve(&format!("{yaml}  FRONTIER: redis://r/\n"), &[]).unwrap_err().to_string();
        assert!(half.contains("JOB"), "{half}");
    }
}
