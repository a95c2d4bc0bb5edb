//! image-scraper: download every image of a paginated web gallery with every core.
//!
//! An actix actor system. A [`Coordinator`](coordinator::Coordinator) owns the work and
//! the counts; workers fetch. In sync mode the workers are [`Blocking`](workers::blocking::Blocking)
//! actors on a `SyncArbiter` (one thread and one request each); in async mode each worker
//! is a [`Downloader`](workers::downloader::Downloader) on its own `Arbiter` with its own
//! `awc::Client` and many requests in flight. Messages replace queues.
//!
//! # Layout
//!
//! - `main.rs`: thin: flags, settings, logging, [`run`], exit status.
//! - [`cli`]: the clap-derive command line; its doc comments are `--help`.
//! - [`settings`]: `settings.yaml` and `IMAGE_SCRAPER_*` variables as read.
//! - [`config`]: flags + settings + defaults -> a validated [`Config`](config::Config).
//! - [`coordinator`]: the Coordinator actor and the messages only it handles
//!   (`Interrupt`, `Join`, `GetCounts`).
//! - [`frontier`]: pure: the work (pages, images, the seen-set, leases) behind the
//!   `Frontier` trait; `LocalFrontier` is the in-memory one.
//! - [`redis_job`]: the shared-job backend: a job spread over processes through Redis,
//!   a file per port it serves (frontier, walk, rate, names, connection, scripts).
//! - [`work`]: the worker contract: `RegisterWorker`, `RunTask`, `TaskFinished`, `Task`,
//!   `Done`, `TaskError`, `FetchOptions`, retries and cancellation. Imports no actor.
//! - [`fetch`]: the fetch core: the policy both worker kinds share (gate, retries,
//!   robots.txt statuses, pages, images, redirects), behind a small `Client` trait;
//!   `fetch::download` (what both workers do with a body), `fetch::decode` (pure:
//!   Content-Encoding undone layer by layer), `fetch::validate` (pure: is it an image,
//!   did it end, Retry-After).
//! - [`workers`]: the worker kinds and the glue they share: `workers::blocking`, the
//!   sync-mode worker (SyncContext, ureq): only what ureq needs; `workers::downloader`,
//!   the async-mode worker (one per Arbiter, owns its awc Client).
//! - [`html`]: pure: page HTML + page URL -> image URLs and page count.
//! - [`urllist`]: pure: the `--urls` list format (comments, blank lines, a BOM).
//! - [`storage`]: pure: safe file names, atomic writes.
//! - [`net`]: how requests reach servers: trust (`net::tls`), proxies (`net::proxy`,
//!   `net::awc_proxy`, `net::ureq_forward`) and the per-host gate (`net::politeness`).
//! - [`store`]: where images end up; `store::s3` is S3-compatible object storage
//!   (`s3://bucket/prefix`: settings from the AWS variables and `~/.aws`, a blocking
//!   client, streaming multipart uploads).
//! - [`outdir`]: the out dir's layout (`.image-scraper/`).
//! - [`state`]: the resume record.
//! - [`robots`]: robots.txt rules.
//! - [`report`]: counts, per-image items, the report, manifest and failed list.
//! - [`progress`]: the progress bar.
//! - [`demo`]: the built-in gallery server.
//! - [`job`]: `job status`, `job cancel` and `job retry`: a shared job seen, stopped and
//!   reopened from outside.
//! - [`limits`]: the open-files limit raised at start, and whether `-p` and
//!   `CONCURRENCY` fit under it.
//! - [`logging`]: the slog root logger.
//! - [`exit`]: every exit status, as one enum.

pub mod cli;
pub mod config;
pub mod coordinator;
pub mod demo;
pub mod exit;
pub mod fetch;
pub mod frontier;
pub mod html;
pub mod job;
pub mod limits;
pub mod logging;
pub mod net;
pub mod outdir;
pub mod progress;
pub mod redis_job;
pub mod render;
pub mod report;
pub mod robots;
pub mod settings;
pub mod state;
pub mod storage;
pub mod store;
pub mod task;
pub mod urllist;
pub mod work;
pub mod workers;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::Context as _;
use futures_util::future::{Either, select};
use slog::{Logger, debug, error, info, o, warn};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::SharedJob;
use crate::config::Source;
use crate::config::{Config, ReportKind};
use crate::coordinator::walk_from;
use crate::coordinator::{Coordinator, Interrupt, Join, Plan};
use crate::exit::ExitCode;
use crate::outdir::OutDir;
use crate::progress::Progress;
use crate::redis_job::{JobCounts, RedisFrontier, RedisNames, RedisRate, SharedWalk};
use crate::report::Summary;
use crate::settings::Mode;
use crate::state::Resume;
use crate::store::Store;
use crate::store::bucket::BucketStore;
use crate::store::folder::FolderStore;
use crate::store::s3::{S3Client, S3Settings};
use crate::work::{Cancel, RegisterWorker, TaskFinished};
use crate::workers::blocking::Blocking;
use crate::workers::downloader::{self, Downloader};

/// What a finished run leaves for `main`.
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
    pub elapsed: Duration,
    /// An output (report, failed list) was asked for and could not be written.
    pub output_error: Option<String>,
    /// The signal that stopped the run, if one did.
    pub interrupted: Option<i32>,
    /// A shared job's counts (every process's), read when this process ended.
    pub job: Option<JobCounts>,
}

impl Outcome {
    /// The signal's status when interrupted; else success when every page and image
    /// succeeded (and the outputs asked for were written), failure otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match (self.interrupted, &self.output_error) {
            (Some(signal), _) => ExitCode::Signal(signal),
            (None, Some(_)) => ExitCode::Failure,
            // A shared job succeeds or fails as a whole, the same on every process.
            (None, None) => match &self.job {
                Some(job) if job.all_succeeded() => ExitCode::Success,
                Some(_) => ExitCode::Failure,
                None => self.summary.exit_code(),
            },
        }
    }
}

/// One Arbiter per async worker. `Arbiter::new` panics when the system refuses a thread
/// or a runtime (EMFILE): an error in one line instead, the ones started stopped.
fn start_arbiters(workers: usize) -> anyhow::Result<Vec<Arbiter>> {
    let mut arbiters = Vec::with_capacity(workers);
    for i in 0..workers {
        match Arbiter::try_new() {
            Ok(arbiter) => arbiters.push(arbiter),
            Err(e) => {
                for arbiter in arbiters {
                    arbiter.stop();
                    let _ = arbiter.join();
                }
                let why = if limits::is_too_many_open_files(&e) {
                    work::TOO_MANY_OPEN_FILES.to_string()
                } else {
                    e.to_string()
                };
                anyhow::bail!("cannot start async worker {} of {workers}: {why}", i + 1);
            }
        }
    }
    Ok(arbiters)
}

/// Runs one scrape to the end: starts the actor system, the Coordinator and the workers,
/// waits for the Coordinator's `Join` answer, stops every Arbiter, logs the summary and
/// writes the outputs. Errors are problems found before any request was made.
pub fn run(config: &Config, log: &Logger, progress: Option<Progress>) -> anyhow::Result<Outcome> {
    log_trust(&config.trust, log);
    let store = open_store(config, log)?;
    info!(log, "starting";
        "mode" => config.mode.as_str(), "workers" => config.workers,
        "first_page" => config.first_page().map_or("(url list)".into(), |u| u.to_string()),
        "out_dir" => %config.out_dir.display(), "robots" => config.requests.obey_robots);
    if config.proxies.any() {
        // Which proxy, never its credentials: a user behind one should see it is used.
        info!(log, "through a proxy"; "proxies" => config.proxies.describe());
    }
    for unusable in config.proxies.unusable() {
        // Not an error while no request needs it; each that does fails with this reason.
        warn!(log, "a proxy setting cannot be used: requests through it will fail (unset it, or cover their hosts in no_proxy)";
            "setting" => &unusable.origin, "why" => %unusable.error);
    }
    log_render(&config.render, log);
    let started = Instant::now();
    let system = System::new();
    let (mut summary, arbiters, interrupted, job) = system.block_on(scrape(config, &store, log, progress))?;
    for arbiter in arbiters {
        let _ = arbiter.join();
    }
    // A blocking worker may still be inside a read the interrupt could not cut short:
    // its temporary file goes now, and its rename will then fail.
    if !config.dry_run {
        store.remove_partials();
    }
    let elapsed = started.elapsed();
    if matches!(config.report, Some((_, ReportKind::Jsonl))) && !config.dry_run {
        report::hash_skipped(&mut summary, |path, bytes| store.sha256(path, bytes));
    }
    // Every Arbiter has stopped, so every browser was dropped; this is for one that a
    // stop did not reach.
    render::kill_all();
    log_summary(&summary, config, interrupted.is_some(), elapsed, log);
    let output_error = write_outputs(&summary, config, elapsed, log);
    Ok(Outcome { summary, elapsed, output_error, interrupted, job })
}

/// Whether pages may be rendered, said once before any request: `auto` with no browser
/// stays static, and a user should know why a JavaScript gallery then comes back empty.
fn log_render(render: &render::RenderOptions, log: &Logger) {
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
fn log_trust(trust: &net::tls::Trust, log: &Logger) {
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

fn log_summary(summary: &Summary, config: &Config, interrupted: bool, elapsed: Duration, log: &Logger) {
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
fn write_outputs(summary: &Summary, config: &Config, elapsed: Duration, log: &Logger) -> Option<String> {
    let mut failures = Vec::new();
    if let Some((path, kind)) = &config.report {
        let written = match kind {
            ReportKind::Json => {
                report::write_json(path, config.mode, config.workers, config.trust.insecure, elapsed, summary)
            }
            ReportKind::Jsonl => report::write_jsonl(path, summary),
        };
        if let Err(e) = written {
            failures.push(format!("cannot write the report {}: {e}", path.display()));
        }
    }
    if let Some(path) = &config.failed_list
        && let Err(e) = report::write_failed(path, summary)
    {
        failures.push(format!("cannot write the failed list {}: {e}", path.display()));
    }
    for failure in &failures {
        error!(log, "{}", failure);
    }
    (!failures.is_empty()).then(|| failures.join("; "))
}

/// The store images go to: the out dir, or a bucket. A dry run creates nothing: it only
/// reads what an earlier run left.
fn open_store(config: &Config, log: &Logger) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(location) = &config.bucket {
        let cannot = |e: String| anyhow::anyhow!("out dir {location}: {e}");
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let settings = S3Settings::from_env(|k| std::env::var(k).ok(), home.as_deref()).map_err(cannot)?;
        // Every S3 request would go through it: refused now, not per image.
        config.proxies.check(&settings.endpoint).map_err(|u| cannot(u.to_string()))?;
        let proxy = config.proxies.for_url(&settings.endpoint);
        let client = S3Client::new(
            &settings,
            &location.bucket,
            config.requests.timeout,
            config.trust.ureq_config(),
            proxy,
        )
        .map_err(|e| cannot(e.to_string()))?;
        let store = match &config.shared {
            // The job's other processes may fill this bucket too: names are reserved in
            // the job, and each process keeps its own record.
            Some(job) => {
                // Async workers await the job's answer on their own event loops.
                let ledger = match config.mode {
                    Mode::Sync => RedisNames::connect(&job.url, &job.job),
                    Mode::Async => RedisNames::per_arbiter(&job.url, &job.job),
                }
                .with_context(|| format!("--frontier {}", job.url))?;
                BucketStore::shared(client, location.clone(), config.dry_run, Box::new(ledger), &node_name())
            }
            None => BucketStore::open(client, location.clone(), config.dry_run),
        }
        .map_err(|e| cannot(format!("cannot use the bucket: {e}")))?;
        return Ok(Arc::new(store));
    }
    let out = match config.dry_run {
        true => OutDir::existing(&config.out_dir),
        false => OutDir::open(&config.out_dir),
    }
    .map_err(|e| anyhow::anyhow!("out dir {}: {e}", config.out_dir.display()))?;
    let resume = load_resume(&out, config.dry_run, log);
    Ok(Arc::new(FolderStore::new(out, resume)))
}

fn load_resume(out: &OutDir, read_only: bool, log: &Logger) -> Resume {
    let (resume, loaded) = match read_only {
        true => Resume::peek(&out.state_file()),
        false => Resume::load(&out.state_file()),
    };
    if let Some(reason) = &loaded.unreadable {
        warn!(log, "resume record unusable: images without a record are fetched again, and files already there are kept";
            "file" => %out.state_file().display(), "error" => reason);
    }
    if loaded.bad_lines > 0 {
        warn!(log, "resume record damaged: dropped the bad lines";
            "file" => %out.state_file().display(), "bad_lines" => loaded.bad_lines, "kept" => loaded.entries);
    }
    resume
}

/// A paused host, said at the default level and on the bar: otherwise a run waiting out
/// a 429's Retry-After looks hung for up to a minute.
struct PauseNotice {
    log: Logger,
    progress: Option<Progress>,
}

impl net::politeness::PauseWatch for PauseNotice {
    fn paused(&self, host: &str, wait: Duration, reason: &str) {
        info!(self.log, "host paused {} s: {reason}", wait.as_secs_f64().ceil() as u64; "host" => host);
        if let Some(progress) = &self.progress {
            progress.paused(host, wait);
        }
    }
}

/// The body of the actor system: returns the summary, the Arbiters to join once the
/// system is no longer driving them, the exit status a signal asked for, and a shared
/// job's counts.
async fn scrape(
    config: &Config,
    store: &Arc<dyn Store>,
    log: &Logger,
    progress: Option<Progress>,
) -> anyhow::Result<(Summary, Vec<Arbiter>, Option<i32>, Option<JobCounts>)> {
    // Before any actor: an error here must not leave a Coordinator never started (its
    // drop outside a runtime panicked).
    let arbiters = match config.mode {
        Mode::Async => start_arbiters(config.workers)?,
        Mode::Sync => Vec::new(),
    };
    let watch = Box::new(PauseNotice { log: log.new(o!("actor" => "gate")), progress: progress.clone() });
    let gate = config.host_gate().with_watch(watch);
    let gate = match &config.shared {
        Some(job) => {
            // Async workers await the job's answer on their own event loops.
            let rate = match config.mode {
                Mode::Sync => RedisRate::connect(&job.url, &job.job),
                Mode::Async => RedisRate::per_arbiter(&job.url, &job.job).await,
            }
            .with_context(|| format!("--frontier {}", job.url))?;
            Arc::new(gate.with_shared(Box::new(rate)))
        }
        None => Arc::new(gate),
    };
    let cancel = Cancel::default();
    let plan = Plan {
        source: config.source.clone(),
        record_items: config.report.is_some() || config.failed_list.is_some(),
        store: Arc::clone(store),
        force: config.force,
        per_host_concurrency: config.requests.per_host_concurrency,
        obey_robots: config.requests.obey_robots,
        gate: Arc::clone(&gate),
        filters: config.filters.clone(),
        listing: config.dry_run.then(|| Box::new(std::io::stdout()) as Box<dyn std::io::Write>),
        progress,
        image_host: config.extract.image_host.trim().to_ascii_lowercase(),
        page_host: config.walk.page_host.clone(),
        page_lookahead: Some(config.walk.lookahead as usize),
        max_server_wait: config.requests.retries.max_wait,
        shared: config.shared.as_ref().map(|job| job.lease / 3),
        cancel: cancel.clone(),
    };
    let coordinator_log = log.new(o!("actor" => "coordinator"));
    let coordinator = match &config.shared {
        None => Coordinator::new(plan, coordinator_log),
        Some(job) => {
            let frontier = shared_frontier(config, job, log).await?;
            match &config.source {
                Source::Urls(_) => Coordinator::with_frontier(plan, Box::new(frontier), coordinator_log),
                Source::Pages { .. } => {
                    let (source, lookahead) = (config.source.clone(), Some(config.walk.lookahead as usize));
                    let walk = SharedWalk::join(frontier, move |mark| {
                        walk_from(&source, lookahead, mark).pages_only()
                    })
                    .await
                    .with_context(|| format!("--frontier {}", job.url))?;
                    info!(log, "the job's listing pages"; "walked_here" => walk.walks());
                    Coordinator::with_frontier(plan, Box::new(walk), coordinator_log)
                }
            }
        }
    }
    .start();
    let interrupted = Rc::new(Cell::new(None));
    actix_rt::spawn(on_signals(
        coordinator.clone(),
        cancel.clone(),
        Rc::clone(&interrupted),
        Arc::clone(store),
        log.clone(),
    ));

    let results = coordinator.clone().recipient::<TaskFinished>();
    let mut opts = config.fetch_options(Arc::clone(store), cancel, gate);
    // On an Arbiter of its own, not a worker's: stopped and joined with theirs (below),
    // which drops the browser.
    let renderer_arbiter = match config.render.policy != render::Policy::Never
        && config.render.launch.is_some()
    {
        true => {
            let arbiter = Arbiter::try_new().context("cannot start the renderer")?;
            let (render_opts, log) = (Arc::new(config.render.clone()), log.new(o!("actor" => "renderer")));
            let renderer = render::Renderer::start_in_arbiter(&arbiter.handle(), move |_| {
                render::Renderer::new(render_opts, log)
            });
            opts.renderer = Some(Arc::new(render::RendererHandle(renderer)));
            Some(arbiter)
        }
        false => None,
    };
    let opts = Arc::new(opts);
    match config.mode {
        Mode::Sync => {
            let agents = Blocking::agents(&opts, config.workers, config.trust.ureq_config())
                .map_err(anyhow::Error::msg)?;
            let log = log.new(o!("actor" => "blocking"));
            let pool = SyncArbiter::start(config.workers, move || {
                Blocking::new(agents.clone(), Arc::clone(&opts), results.clone(), log.clone())
            });
            // The pool's threads share one mailbox: one registration, one slot per thread.
            coordinator.do_send(RegisterWorker { tasks: pool.recipient(), capacity: config.workers });
        }
        Mode::Async => {
            let tls = downloader::tls_config(&config.trust);
            for (i, arbiter) in arbiters.iter().enumerate() {
                let (opts, tls, results) = (Arc::clone(&opts), Arc::clone(&tls), results.clone());
                let log = log.new(o!("actor" => "downloader", "worker" => i));
                let worker = Downloader::start_in_arbiter(&arbiter.handle(), move |_| {
                    Downloader::new(opts, tls, results, log)
                });
                coordinator.do_send(RegisterWorker {
                    tasks: worker.recipient(),
                    capacity: config.requests.concurrency,
                });
            }
        }
    }
    let summary = coordinator
        .send(Join)
        .await
        .context("the coordinator stopped")?
        .context("the coordinator stopped before the work was done")?;
    let mut arbiters = arbiters;
    arbiters.extend(renderer_arbiter);
    for arbiter in &arbiters {
        arbiter.stop();
    }
    let job = match &config.shared {
        Some(job) => log_job(job, &summary, log).await,
        None => None,
    };
    Ok((summary, arbiters, interrupted.get(), job))
}

/// This process's view of a job shared through Redis, made in the System's own Arbiter
/// (where the Coordinator runs). Refuses a job that was started with other settings.
async fn shared_frontier(config: &Config, job: &SharedJob, log: &Logger) -> anyhow::Result<RedisFrontier> {
    let node = node_name();
    let frontier = RedisFrontier::connect(&job.url, &job.job, &node)
        .await
        .with_context(|| format!("--frontier {}", job.url))?
        .with_per_host(config.requests.per_host_concurrency)
        .with_lease(job.lease)
        .with_expiry(job.ttl);
    let agreed =
        frontier.agree(&job_fingerprint(config)).await.with_context(|| format!("--frontier {}", job.url))?;
    if !agreed {
        anyhow::bail!(
            "--job {}: that job was started with other settings (another URL list, host filter or extension filter); use another --job name",
            job.job
        );
    }
    info!(log, "joined a shared job"; "job" => &job.job, "node" => &node, "lease_secs" => job.lease.as_secs());
    match frontier.job_counts().await {
        Ok(counts) => log_job_state(job, &counts, log),
        Err(e) => warn!(log, "cannot read the job's counts"; "job" => &job.job, "error" => %e),
    }
    if frontier.persistent().await == Some(false) {
        warn!(log, "Redis keeps the job in memory only (appendonly no): if Redis restarts, the job is lost";
            "frontier" => &job.url);
    }
    Ok(frontier)
}

/// A job this process joins that is over already, or cancelled, says so at once, and
/// what to do: a re-run of it does nothing else.
fn log_job_state(job: &SharedJob, c: &JobCounts, log: &Logger) {
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

/// What a process must agree on to join a job: the work (its URL list) and the settings
/// that change which images are fetched.
fn job_fingerprint(config: &Config) -> String {
    let text = format!(
        "{:?}\n{:?}\n{}\n{}",
        config.source, config.filters, config.extract.image_host, config.requests.max_image_bytes
    );
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

/// This process in the job's leases: the machine's name and the process id.
pub(crate) fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .collect();
    let host = if host.is_empty() { "node".to_string() } else { host.chars().take(40).collect() };
    format!("{host}-{}", std::process::id())
}

/// The whole job's counts beside this process's share (the job's are the same on every
/// process).
async fn log_job(job: &SharedJob, summary: &Summary, log: &Logger) -> Option<JobCounts> {
    let counts = match RedisFrontier::connect(&job.url, &job.job, &node_name()).await {
        Ok(frontier) => frontier.job_counts().await,
        Err(e) => Err(crate::frontier::FrontierError::Unavailable(e.to_string())),
    };
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

/// First SIGINT/SIGTERM: cancel in-flight work and let the Coordinator wind down, so the
/// summary and report still come. Second: delete downloads in progress and exit at once.
async fn on_signals(
    coordinator: Addr<Coordinator>,
    cancel: Cancel,
    interrupted: Rc<Cell<Option<i32>>>,
    store: Arc<dyn Store>,
    log: Logger,
) {
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        warn!(log, "cannot listen for signals: Ctrl-C will stop the run without a summary");
        return;
    };
    let code = match select(Box::pin(int.recv()), Box::pin(term.recv())).await {
        Either::Left(_) => exit::SIGINT,
        Either::Right(_) => exit::SIGTERM,
    };
    interrupted.set(Some(code));
    warn!(log, "signal received: stopping (again to exit at once)");
    cancel.cancel();
    coordinator.do_send(Interrupt);
    let _ = select(Box::pin(int.recv()), Box::pin(term.recv())).await;
    store.remove_partials();
    eprintln!("image-scraper: interrupted twice, exiting now");
    exit::at_once(code)
}
