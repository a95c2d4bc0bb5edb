//! What a run says around its work: where its trust comes from and whether it can
//! render, before any request; the summary lines, the skips with their hints and a
//! shared job's counts, after; and the outputs it writes (report, failed list).

use std::time::Duration;

use slog::{Logger, debug, error, info, warn};

use crate::config::{Config, SharedJob};
use crate::frontier::FrontierError;
use crate::redis_job::JobCounts;
use crate::report::{RunFacts, SharedReport, Summary};
use crate::{net, render};

/// Whether pages may be rendered, said once before any request: `auto` with no browser
/// stays static, and a user should know why a JavaScript gallery then comes back empty.
pub(super) fn log_render(render: &render::RenderOptions, log: &Logger) {
    match (render.policy, &render.launch) {
        (render::Policy::Never, _) => debug!(log, "rendering off (RENDER: never)"),
        (render::Policy::Auto, None) => {
            warn!(log, "no browser found: pages built by JavaScript will not be rendered";
            "hint" => render::INSTALL_HINT)
        }
        (policy, Some(launch)) => debug!(log, "rendering"; "render" => policy.as_str(),
            "browser" => %launch.program.display(), "tabs" => render.tabs),
        (render::Policy::Always, None) => {}
    }
}

/// Which servers this run trusts, said before any request: a certificate refused later
/// is easier to understand knowing where the roots came from.
pub(super) fn log_trust(trust: &net::tls::Trust, log: &Logger) {
    for problem in &trust.problems {
        warn!(log, "cannot read some of the system's trusted certificates"; "error" => problem);
    }
    if trust.base == net::tls::Base::Bundled {
        warn!(log, "no trusted certificates on this machine (or in SSL_CERT_FILE / SSL_CERT_DIR): using the bundled webpki roots";
            "roots" => trust.base_roots);
    }
    if trust.insecure {
        warn!(
            log,
            "--insecure: NO SERVER CERTIFICATE IS CHECKED; anyone on the network path can read and change what is downloaded"
        );
    }
    debug!(log, "trusted roots"; "base" => ?trust.base, "base_roots" => trust.base_roots,
        "ca_cert_roots" => trust.extra_roots);
}

pub(super) fn log_summary(
    summary: &Summary,
    config: &Config,
    interrupted: bool,
    elapsed: Duration,
    log: &Logger,
) {
    if let Some(line) = summary.stopped_line() {
        error!(log, "{}", line);
    }
    // A URL list walks no pages: `Pages, success: 0/0` would only puzzle.
    let walked = config.first_page().is_some();
    if config.dry_run {
        info!(log, "dry run: listed the images it would download"; "listed" => summary.listed,
            "skipped" => summary.images.skipped);
    } else if summary.all_succeeded() && !interrupted {
        info!(log, "{}", summary.images_line());
        if walked {
            info!(log, "{}", summary.pages_line());
        }
        if let Some(line) = summary.details_line() {
            info!(log, "{}", line);
        }
    } else {
        warn!(log, "{}", summary.images_line());
        if walked {
            warn!(log, "{}", summary.pages_line());
        }
        if let Some(line) = summary.details_line() {
            warn!(log, "{}", line);
        }
    }
    log_rendering(summary, log);
    log_skips_and_drops(summary, config, log);
    info!(log, "finished";
        "bytes" => summary.images.bytes, "secs" => format!("{:.2}", elapsed.as_secs_f64()),
        "out_dir" => %config.out_dir.display());
}

/// How many pages went through the browser, and how many wanted to with none there,
/// with what to install.
fn log_rendering(summary: &Summary, log: &Logger) {
    let pages = &summary.pages;
    if pages.rendered > 0 {
        info!(log, "pages rendered in the browser"; "rendered" => pages.rendered);
    }
    if pages.unrendered > 0 {
        warn!(log, "pages look built by JavaScript (no image in their HTML, or an app shell) and were not rendered: {}", render::INSTALL_HINT;
            "pages" => pages.unrendered);
    }
}

/// Each reason images were not downloaded, with its count and the hint that fits it
/// (`--force` helps only what an earlier run completed, and only when not given).
fn log_skips_and_drops(summary: &Summary, config: &Config, log: &Logger) {
    let (skips, dropped) = (&summary.skips, &summary.dropped);
    if skips.complete > 0 {
        match config.force {
            true => info!(log, "images skipped: complete from an earlier run"; "skipped" => skips.complete),
            false => info!(log, "images skipped: complete from an earlier run; --force downloads them again";
                "skipped" => skips.complete),
        }
    }
    if skips.robots > 0 {
        warn!(log, "images skipped: robots.txt disallows them (--force does not change that; --ignore-robots would, with the site owner's consent)";
            "skipped" => skips.robots);
    }
    if skips.size > 0 {
        let f = &config.filters;
        let limits: Vec<String> = [("--min-size", f.min_bytes), ("--max-size", f.max_bytes)]
            .into_iter()
            .filter_map(|(flag, bytes)| bytes.map(|b| format!("{flag} {b} bytes")))
            .collect();
        info!(log, "images skipped: outside the size filter ({})", limits.join(", "); "skipped" => skips.size);
    }
    if skips.dimensions > 0 {
        let d = &config.dimensions;
        let limits: Vec<String> = [
            ("MIN_WIDTH", d.min_width.map(|px| format!("{px} px"))),
            ("MIN_HEIGHT", d.min_height.map(|px| format!("{px} px"))),
            ("MAX_ASPECT", d.max_aspect.map(|ratio| ratio.to_string())),
        ]
        .into_iter()
        .filter_map(|(key, limit)| limit.map(|l| format!("{key} {l}")))
        .collect();
        info!(log, "images skipped: outside the dimension filter, cut off after their header ({})", limits.join(", ");
            "skipped" => skips.dimensions);
    }
    if skips.opt_out > 0 {
        warn!(log, "images skipped: their server opted them out with X-Robots-Tag (noai, noimageai, none or noindex; --ignore-robots would keep them, with the site owner's consent)";
            "skipped" => skips.opt_out);
    }
    if skips.duplicate > 0 {
        info!(log, "images skipped: their bytes are stored already under another URL (DEDUPE: content); the report points each at the first copy";
            "skipped" => skips.duplicate);
    }
    if skips.other > 0 {
        info!(log, "images skipped: a link's thumbnail already downloaded as an image of its own"; "skipped" => skips.other);
    }
    let host = &config.extract.image_host;
    let images = |n: u64| if n == 1 { "1 image".to_string() } else { format!("{n} images") };
    let host_line = format!("{} on other hosts dropped by IMAGE_HOST={host}", images(dropped.other_host));
    let ext_line = format!(
        "{} dropped by the extension filter --ext {}",
        images(dropped.extension),
        config.filters.extensions.join(",")
    );
    let found_none = summary.images.total == 0 && summary.pages.ok + summary.pages.detail_ok > 0;
    if found_none && dropped.other_host + dropped.extension > 0 {
        let mut why = Vec::new();
        if dropped.other_host > 0 {
            why.push(format!("{host_line} (IMAGE_HOST: \"\" keeps all hosts)"));
        }
        if dropped.extension > 0 {
            why.push(format!("{ext_line} (without --ext, all are kept)"));
        }
        warn!(log, "no images kept: {}", why.join("; "));
        return;
    }
    // Pages that wanted a browser already said why they gave nothing.
    if found_none && summary.pages.unrendered == 0 {
        warn!(log, "no images found on the pages: check IMAGE_SELECTOR and IMAGE_ATTRIBUTES");
    }
    if dropped.other_host > 0 {
        info!(log, "{}", host_line);
    }
    if dropped.extension > 0 {
        info!(log, "{}", ext_line);
    }
}

/// Writes the report and the failed list; returns what went wrong, if anything.
pub(super) fn write_outputs(
    report: Option<SharedReport>,
    summary: &Summary,
    config: &Config,
    elapsed: Duration,
    log: &Logger,
) -> Option<String> {
    let files = report.and_then(|shared| shared.0.borrow_mut().take());
    let facts = RunFacts {
        mode: config.mode,
        workers: config.workers,
        insecure: config.trust.insecure,
        elapsed,
        peak_rss_kib: peak_rss_kib(),
    };
    let failures = files.map(|files| files.finish(summary, facts)).unwrap_or_default();
    for failure in &failures {
        error!(log, "{}", failure);
    }
    (!failures.is_empty()).then(|| failures.join("; "))
}

/// `VmHWM` from `/proc/self/status`: the most memory the process held at once.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// A job this process joins that is over already, or cancelled, says so at once, and
/// what to do: a re-run of it does nothing else.
pub(super) fn log_job_state(job: &SharedJob, c: &JobCounts, log: &Logger) {
    let retry = format!("image-scraper job retry {} --frontier {}", job.job, job.url);
    // Fields listed backwards: slog writes them last first.
    if c.cancelled {
        warn!(log, "the job was cancelled: nothing more of it is handed out; `{}` reopens it (its open and failed items), or use another --job name to start anew", retry;
            "open" => c.open, "failed" => c.failures(), "ok" => c.ok, "job" => &job.job);
    } else if c.accepted > 0 && c.finished() && c.failures() > 0 {
        warn!(log, "the job is finished, with failures: nothing left to do; `{}` queues them again for a run of the job to fetch", retry;
            "skipped" => c.skipped, "failed" => c.failures(), "ok" => c.ok, "job" => &job.job);
    } else if c.accepted > 0 && c.finished() {
        info!(log, "the job is finished: nothing left to do (use another --job name to fetch it all again)";
            "skipped" => c.skipped, "ok" => c.ok, "job" => &job.job);
    }
}

/// The whole job's counts beside this process's share (the job's are the same on every
/// process).
pub(super) fn log_job(
    job: &SharedJob,
    counts: Result<JobCounts, FrontierError>,
    summary: &Summary,
    log: &Logger,
) -> Option<JobCounts> {
    match counts {
        Ok(c) => {
            // slog writes a record's fields last first: listed backwards here, they read
            // accepted, done and what done adds up from, lost, open.
            info!(log, "job counts (every process)"; "this_process" => summary.images.total,
                "duplicates" => c.duplicates, "open" => c.open, "lost" => c.lost,
                "detail_failed" => c.detail_failed, "detail_ok" => c.detail_ok,
                "replaced" => c.replaced, "skipped" => c.skipped, "failed" => c.failed,
                "ok" => c.ok, "done" => c.done, "accepted" => c.accepted, "job" => &job.job);
            if !c.all_succeeded() && c.finished() && summary.all_succeeded() {
                // Its own share went well: the exit status 1 is the job's, said here.
                warn!(log, "the job has failures (this process's share has none): `image-scraper job retry {} --frontier {}` queues them again", job.job, job.url;
                    "failed" => c.failures());
            }
            Some(c)
        }
        Err(e) => {
            warn!(log, "cannot read the job's counts: the exit status is this process's share's"; "job" => &job.job, "error" => %e);
            None
        }
    }
}
