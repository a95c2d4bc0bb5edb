//! One run, from a resolved `Config` to its `Outcome`: the actor system started, the
//! Coordinator joined, the summary said and the outputs written. `main` calls [`run`]
//! and exits with [`Outcome::exit_code`].
//!
//! # Layout
//!
//! - `wiring`: the composition root, the only code that names concrete types: the store,
//!   the frontier (in memory, Redis, the shared walk), the host gate, the workers of the
//!   run's `Mode`, the renderer;
//! - `notices`: what a run says before and after its work, and the outputs it writes;
//! - `shutdown`: [`Shutdown`], how a run is told to stop (the OS's signals, or a test's).

mod notices;
mod shutdown;
#[cfg(test)]
mod tests;
mod wiring;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use anyhow::Context as _;
use slog::{Logger, info, o, warn};

use crate::config::{Config, ReportKind};
use crate::coordinator::{Coordinator, Join, Plan};
use crate::counts::CountsWatch;
use crate::exit::ExitCode;
use crate::progress::Progress;
use crate::render;
use crate::report::{self, Summary};
use crate::settings::Mode;
use crate::store::Store;
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
    let started = Instant::now();
    let system = System::new();
    let (mut summary, arbiters, interrupted) =
        system.block_on(scrape(config, &store, log, progress, shutdown))?;
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
    notices::log_summary(&summary, config, interrupted.is_some(), elapsed, log);
    let output_error = notices::write_outputs(&summary, config, elapsed, log);
    Ok(Outcome { summary, elapsed, output_error, interrupted })
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
        record_items: config.report.is_some() || config.failed_list.is_some(),
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
