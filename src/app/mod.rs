//! One run, from a resolved `Config` to its `Outcome`: the actor system started, the
//! Coordinator joined, the summary said and the outputs written. `main` calls [`run`]
//! and exits with [`Outcome::exit_code`].
//!
//! # Layout
//!
//! - `wiring`: the composition root, the only code that names concrete types: the store,
//!   the frontier (in memory, Redis, the shared walk), the host gate, the workers of the
//!   run's `Mode`, the renderer;
//! - `list_reader`: the thread that reads a `--urls` list as the run goes;
//! - `notices`: what a run says before and after its work, and the outputs it writes;
//! - `shutdown`: [`Shutdown`], how a run is told to stop (the OS's signals, or a test's).

mod list_reader;
mod notices;
mod shutdown;
#[cfg(test)]
mod tests;
mod wiring;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::Context as _;
use slog::{Logger, info, o, warn};

use crate::config::{Config, ReportKind};
use crate::coordinator::{Coordinator, Join, Plan};
use crate::counts::{CountsWatch, ItemSink};
use crate::exit::ExitCode;
use crate::frontier::Source;
use crate::manifest::ManifestKind;
use crate::progress::Progress;
use crate::render;
use crate::report::{self, ReportFiles, SharedReport, Summary};
use crate::settings::Mode;
use crate::store::Store;
use crate::urllist;
use crate::work::Cancel;
pub use shutdown::Shutdown;
pub(crate) use wiring::node_name;

/// What a finished run leaves for `main`.
#[derive(Debug)]
pub struct Outcome {
    pub summary: Summary,
    pub elapsed: Duration,
    /// An output (report, failed list) was asked for and could not be written.
    pub output_error: Option<String>,
    /// The signal that stopped the run, if one did.
    pub interrupted: Option<i32>,
}

impl Outcome {
    /// The signal's status when interrupted; else success when every page and image
    /// succeeded (and the outputs asked for were written), failure otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match (self.interrupted, &self.output_error) {
            (Some(signal), _) => ExitCode::Signal(signal),
            (None, Some(_)) => ExitCode::Failure,
            (None, None) => self.summary.exit_code(),
        }
    }
}

/// Runs one scrape to the end: starts the actor system, the Coordinator and the workers,
/// waits for the Coordinator's `Join` answer, stops every Arbiter, logs the summary and
/// writes the outputs. Errors are problems found before any request was made.
pub fn run(
    config: &Config,
    log: &Logger,
    progress: Option<Progress>,
    shutdown: Shutdown,
) -> anyhow::Result<Outcome> {
    notices::log_trust(&config.trust, log);
    let store = wiring::open_store(config, log)?;
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
    notices::log_render(&config.render, log);
    let report = open_report(config, &store)?;
    let started = Instant::now();
    let system = System::new();
    let (summary, arbiters, interrupted) =
        system.block_on(scrape(config, &store, log, progress, shutdown, report.clone()))?;
    for arbiter in arbiters {
        let _ = arbiter.join();
    }
    // A blocking worker may still be inside a read the interrupt could not cut short:
    // its temporary file goes now, and its rename will then fail.
    if !config.dry_run {
        store.remove_partials();
    }
    let elapsed = started.elapsed();
    // Every Arbiter has stopped, so every browser was dropped; this is for one that a
    // stop did not reach.
    render::kill_all();
    notices::log_summary(&summary, config, interrupted.is_some(), elapsed, log);
    let output_error = notices::write_outputs(report, &summary, config, elapsed, log);
    Ok(Outcome { summary, elapsed, output_error, interrupted })
}

/// The report's files, opened before the run so that a path that cannot be written is
/// said before anything is fetched; items are written to them as they end.
fn open_report(config: &Config, store: &Arc<dyn Store>) -> anyhow::Result<Option<SharedReport>> {
    let hash_stored: Option<report::HashStored> = match &config.report {
        Some((_, ReportKind::Jsonl | ReportKind::Parquet)) if !config.dry_run => {
            let store = Arc::clone(store);
            Some(Box::new(move |path: &str, bytes: u64| store.sha256(path, bytes)))
        }
        _ => None,
    };
    let report = config.report.as_ref().map(|(path, kind)| {
        let manifest = match kind {
            ReportKind::Json => None,
            ReportKind::Jsonl => Some(ManifestKind::Jsonl),
            ReportKind::Parquet => Some(ManifestKind::Parquet),
        };
        (path.as_path(), manifest)
    });
    // A Parquet manifest's schema names the list's columns before its first row.
    let carried = match &config.source {
        Source::Urls(list) if report.is_some_and(|(_, kind)| kind == Some(ManifestKind::Parquet)) => {
            urllist::columns(&list.spec).map_err(|e| anyhow::anyhow!("--urls: {e}"))?
        }
        _ => Vec::new(),
    };
    let files =
        ReportFiles::create(report, &carried, config.failed_list.as_deref(), hash_stored).map_err(|e| {
            let path = config.report.as_ref().map(|(p, _)| p).or(config.failed_list.as_ref());
            anyhow::anyhow!("cannot write {}: {e}", path.map(|p| p.display().to_string()).unwrap_or_default())
        })?;
    Ok(files.map(|files| SharedReport(Rc::new(RefCell::new(Some(files))))))
}

/// The body of the actor system: returns the summary, the Arbiters to join once the
/// system is no longer driving them, the exit status a signal asked for, and a shared
/// job's counts.
async fn scrape(
    config: &Config,
    store: &Arc<dyn Store>,
    log: &Logger,
    progress: Option<Progress>,
    shutdown: Shutdown,
    report: Option<SharedReport>,
) -> anyhow::Result<(Summary, Vec<Arbiter>, Option<i32>)> {
    // Before any actor: an error here must not leave a Coordinator never started (its
    // drop outside a runtime panicked).
    let arbiters = match config.mode {
        Mode::Async => wiring::start_arbiters(config.workers)?,
        Mode::Sync => Vec::new(),
    };
    let gate = wiring::host_gate(config, log, progress.clone()).await?;
    let cancel = Cancel::default();
    let plan = Plan {
        source: config.source.clone(),
        items: report.map(|files| Box::new(files) as Box<dyn ItemSink>),
        list: match &config.source {
            Source::Urls(list) => Some(list_reader::start(list, log)?),
            Source::Pages { .. } => None,
        },
        store: Arc::clone(store),
        force: config.force,
        name: config.naming.template.clone(),
        per_host_concurrency: config.requests.per_host_concurrency,
        obey_robots: config.requests.obey_robots,
        gate: Arc::clone(&gate),
        filters: config.filters.clone(),
        listing: config.dry_run.then(|| Box::new(std::io::stdout()) as Box<dyn std::io::Write>),
        watch: progress.map(|bar| Box::new(bar) as Box<dyn CountsWatch>),
        image_host: config.extract.image_host.trim().to_ascii_lowercase(),
        page_host: config.walk.page_host.clone(),
        max_server_wait: config.requests.retries.max_wait,
        shared: config.shared.as_ref().map(|job| job.lease / 3),
        cancel: cancel.clone(),
        spill: Some(wiring::spill_dir(config)),
    };
    let frontier = wiring::open_frontier(config, log).await?;
    let coordinator = Coordinator::new(plan, frontier, log.new(o!("actor" => "coordinator"))).start();
    let interrupted = Rc::new(Cell::new(None));
    let stopping = shutdown::Stopping {
        coordinator: coordinator.clone(),
        cancel: cancel.clone(),
        interrupted: Rc::clone(&interrupted),
        store: Arc::clone(store),
        log: log.clone(),
    };
    actix_rt::spawn(shutdown::listen(shutdown, stopping));
    let mut opts = config.fetch_options(Arc::clone(store), cancel, gate);
    let renderer = wiring::start_renderer(config, &mut opts, log)?;
    wiring::start_workers(config, Arc::new(opts), &arbiters, &coordinator, log)?;
    let summary = coordinator
        .send(Join)
        .await
        .context("the coordinator stopped")?
        .context("the coordinator stopped before the work was done")?;
    let mut arbiters = arbiters;
    arbiters.extend(renderer);
    for arbiter in &arbiters {
        arbiter.stop();
    }
    let mut summary = summary;
    if let Some(job) = &config.shared {
        summary.job = notices::log_job(job, wiring::job_counts(job).await, &summary, log);
    }
    Ok((summary, arbiters, interrupted.get()))
}
