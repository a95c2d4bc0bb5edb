//! The composition root: the only code that names concrete types. It opens the store
//! (the out dir or a bucket), the frontier (in memory, a shared job in Redis, or the
//! job's walk of listing pages), the host gate, the workers of the run's `Mode` and the
//! renderer, and hands the Coordinator a plan and trait objects. A new store, frontier,
//! worker kind or renderer is one branch here and a folder of its own.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use anyhow::Context as _;
use slog::{Logger, info, o, warn};

use super::notices::log_job_state;
use crate::config::{Config, SharedJob, Source};
use crate::coordinator::Coordinator;
use crate::fetch::options::FetchOptions;
use crate::frontier::{Frontier, FrontierError, walk_from, walk_of};
use crate::net::politeness::{HostGate, PauseWatch};
use crate::outdir::OutDir;
use crate::progress::Progress;
use crate::redis_job::{JobCounts, RedisDigests, RedisFrontier, RedisNames, RedisRate, SharedWalk};
use crate::settings::Mode;
use crate::state::Resume;
use crate::store::Store;
use crate::store::bucket::BucketStore;
use crate::store::folder::FolderStore;
use crate::store::s3::{S3Client, S3Settings};
use crate::work::{self, RegisterWorker, TaskFinished};
use crate::workers::blocking::Blocking;
use crate::workers::downloader::{self, Downloader};
use crate::{limits, render};

/// The store images go to: the out dir, or a bucket. A dry run creates nothing: it only
/// reads what an earlier run left.
pub(super) fn open_store(config: &Config, log: &Logger) -> anyhow::Result<Arc<dyn Store>> {
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
    let store = FolderStore::new(out, resume).with_archive(config.archive);
    let store = match (config.naming.dedupe, &config.shared) {
        (crate::config::Dedupe::Url, _) => store,
        // A dry run stores nothing, so claims no content in the job.
        (crate::config::Dedupe::Content, Some(job)) if !config.dry_run => {
            // Async workers await the job's answer on their own event loops.
            let ledger = RedisDigests::open(&job.url, &job.job, config.mode == Mode::Async)
                .with_context(|| format!("--frontier {}", job.url))?;
            store
                .with_dedupe()
                .with_job_digests(Box::new(ledger), &machine_name())
                .map_err(|e| anyhow::anyhow!("out dir {}: {e}", config.out_dir.display()))?
        }
        (crate::config::Dedupe::Content, _) => store.with_dedupe(),
    };
    Ok(Arc::new(store))
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

/// One Arbiter per async worker. `Arbiter::new` panics when the system refuses a thread
/// or a runtime (EMFILE): an error in one line instead, the ones started stopped.
pub(super) fn start_arbiters(workers: usize) -> anyhow::Result<Vec<Arbiter>> {
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

/// A paused host, said at the default level and on the bar: otherwise a run waiting out
/// a 429's Retry-After looks hung for up to a minute.
struct PauseNotice {
    log: Logger,
    progress: Option<Progress>,
}

impl PauseWatch for PauseNotice {
    fn paused(&self, host: &str, wait: Duration, reason: &str) {
        info!(self.log, "host paused {} s: {reason}", wait.as_secs_f64().ceil() as u64; "host" => host);
        if let Some(progress) = &self.progress {
            progress.paused(host, wait);
        }
    }
}

/// The gate every request waits at: the run's spacing, and in a shared job the other
/// processes' too.
pub(super) async fn host_gate(
    config: &Config,
    log: &Logger,
    progress: Option<Progress>,
) -> anyhow::Result<Arc<HostGate>> {
    let watch = Box::new(PauseNotice { log: log.new(o!("actor" => "gate")), progress });
    let gate = config.host_gate().with_watch(watch);
    Ok(Arc::new(match &config.shared {
        Some(job) => {
            // Async workers await the job's answer on their own event loops.
            let rate = match config.mode {
                Mode::Sync => RedisRate::connect(&job.url, &job.job),
                Mode::Async => RedisRate::per_arbiter(&job.url, &job.job).await,
            }
            .with_context(|| format!("--frontier {}", job.url))?;
            gate.with_shared(Box::new(rate))
        }
        None => gate,
    }))
}

/// Where the run's work is kept: in memory, or a job shared through Redis (whose listing
/// pages one process at a time walks, in memory, under a lease).
pub(super) async fn open_frontier(config: &Config, log: &Logger) -> anyhow::Result<Box<dyn Frontier>> {
    let lookahead = Some(config.walk.lookahead as usize);
    let Some(job) = &config.shared else {
        let frontier = walk_of(&config.source, lookahead, Some(&spill_dir(config)));
        return Ok(match config.dry_run {
            true => Box::new(frontier.listing()),
            false => Box::new(frontier),
        });
    };
    let frontier = shared_frontier(config, job, log).await?;
    if let Source::Urls(_) = &config.source {
        return Ok(Box::new(frontier));
    }
    let source = config.source.clone();
    let walk = SharedWalk::join(frontier, move |mark| walk_from(&source, lookahead, mark).pages_only())
        .await
        .with_context(|| format!("--frontier {}", job.url))?;
    info!(log, "the job's listing pages"; "walked_here" => walk.walks());
    Ok(Box::new(walk))
}

/// Where the per-URL sets of a long list or walk write their hashes (`keyset`): the out
/// dir's own temporary folder, on the disk the images fill anyway and never a RAM-backed
/// /tmp; the system's temporary folder for a bucket, or before the out dir exists (a dry
/// run).
pub(super) fn spill_dir(config: &Config) -> std::path::PathBuf {
    let own = config.out_dir.join(crate::storage::OWN_PREFIX).join("tmp");
    match config.bucket.is_none() && own.is_dir() {
        true => own,
        false => std::env::temp_dir(),
    }
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

/// The renderer, when pages may be rendered and a browser was found: on an Arbiter of
/// its own, not a worker's, stopped and joined with theirs, which drops the browser.
pub(super) fn start_renderer(
    config: &Config,
    opts: &mut FetchOptions,
    log: &Logger,
) -> anyhow::Result<Option<Arbiter>> {
    if config.render.policy == render::Policy::Never || config.render.launch.is_none() {
        return Ok(None);
    }
    let arbiter = Arbiter::try_new().context("cannot start the renderer")?;
    let (render_opts, log) = (Arc::new(config.render.clone()), log.new(o!("actor" => "renderer")));
    let renderer = render::Renderer::start_in_arbiter(&arbiter.handle(), move |_| {
        render::Renderer::new(render_opts, log)
    });
    opts.renderer = Some(Arc::new(render::RendererHandle(renderer)));
    Ok(Some(arbiter))
}

/// The workers of the run's mode, each registered with the Coordinator: a `SyncArbiter`
/// pool of blocking workers, or one Downloader per Arbiter in `arbiters`.
pub(super) fn start_workers(
    config: &Config,
    opts: Arc<FetchOptions>,
    arbiters: &[Arbiter],
    coordinator: &Addr<Coordinator>,
    log: &Logger,
) -> anyhow::Result<()> {
    let results = coordinator.clone().recipient::<TaskFinished>();
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
    Ok(())
}

/// A shared job's counts (every process's), read afresh when this process is done.
pub(super) async fn job_counts(job: &SharedJob) -> Result<JobCounts, FrontierError> {
    match RedisFrontier::connect(&job.url, &job.job, &node_name()).await {
        Ok(frontier) => frontier.job_counts().await,
        Err(e) => Err(FrontierError::Unavailable(e.to_string())),
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
    format!("{}-{}", machine_name(), std::process::id())
}

/// This machine's host name, as a key's characters allow: a node name starts with it, and
/// a shared job's first copy of a content names the machine its path is on.
fn machine_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .collect();
    if host.is_empty() { "node".to_string() } else { host.chars().take(40).collect() }
}
