//! image-scraper: download every image of a paginated web gallery with every core.
//!
//! An actix actor system. A Coordinator (`coordinator`) owns the work and
//! the counts; workers fetch. In sync mode the workers are [`Blocking`](workers::blocking::Blocking)
//! actors on a `SyncArbiter` (one thread and one request each); in async mode each worker
//! is a [`Downloader`](workers::downloader::Downloader) on its own `Arbiter` with its own
//! `awc::Client` and many requests in flight. Messages replace queues.
//!
//! # Layout
//!
//! - `main.rs`: thin: flags, settings, logging, [`run`], exit status; the only place
//!   the process ends.
//! - `app`: one run, from a `Config` to its [`Outcome`]: `app::wiring` is the
//!   composition root (the one place naming the concrete store, frontier, workers and
//!   renderer), `app::shutdown` the [`Shutdown`] a run is handed.
//! - [`cli`]: the clap-derive command line; its doc comments are `--help`.
//! - [`settings`]: `settings.yaml` and `IMAGE_SCRAPER_*` variables as read.
//! - [`config`]: flags + settings + defaults -> a validated [`Config`](config::Config).
//! - `coordinator`: the Coordinator actor and the messages only it handles
//!   (`Interrupt`, `Join`, `GetCounts`).
//! - `frontier`: pure: the work (pages, images, the seen-set, leases) behind the
//!   `Frontier` trait; `LocalFrontier` is the in-memory one.
//! - `redis_job`: the shared-job backend: a job spread over processes through Redis,
//!   a file per port it serves (frontier, walk, rate, names, connection, scripts).
//! - `task`: pure: the contract's data: `Task`, `ImageTask`, `Done`, `TaskError`.
//! - [`work`]: the worker contract's messages (`RegisterWorker`, `RunTask`,
//!   `TaskFinished`), re-exporting `task`'s types; `FetchOptions`, retries and
//!   cancellation.
//! - `fetch`: the fetch core: the policy both worker kinds share (gate, retries,
//!   robots.txt statuses, pages, images, redirects), behind a small `Client` trait;
//!   `fetch::download` (what both workers do with a body), `fetch::decode` (pure:
//!   Content-Encoding undone layer by layer), `fetch::validate` (pure: is it an image,
//!   did it end, Retry-After).
//! - [`workers`]: the worker kinds and the glue they share: `workers::blocking`, the
//!   sync-mode worker (SyncContext, ureq): only what ureq needs; `workers::downloader`,
//!   the async-mode worker (one per Arbiter, owns its awc Client).
//! - [`html`]: pure: page HTML + page URL -> image URLs and page count.
//! - `manifest`: pure: the manifest written as a stream (JSON Lines or Parquet), one item at a time.
//! - `urllist`: pure: the `--urls` list formats (text, CSV/TSV, JSONL, Parquet), read as a stream of rows.
//! - [`storage`]: pure: safe file names, atomic writes.
//! - [`net`]: how requests reach servers: trust (`net::tls`), proxies (`net::proxy`,
//!   `net::awc_proxy`, `net::ureq_forward`) and the per-host gate (`net::politeness`).
//! - [`store`]: where images end up; `store::s3` is S3-compatible object storage
//!   (`s3://bucket/prefix`: settings from the AWS variables and `~/.aws`, a blocking
//!   client, streaming multipart uploads).
//! - [`outdir`]: the out dir's layout (`.image-scraper/`).
//! - `state`: the resume record.
//! - `keyset`: pure: a set of 64-bit hashes that writes most of itself to disk, for
//!   the per-URL state of lists of millions (seen URLs, names taken).
//! - [`robots`]: robots.txt rules.
//! - `counts`: plain data: the counts a run keeps and publishes, its items, the
//!   summary, and `CountsWatch`, how the Coordinator tells the bar.
//! - `report`: the summary lines and table, the report, manifest and failed list.
//! - [`progress`]: the progress bar.
//! - [`demo`]: the built-in gallery server.
//! - [`job`]: `job status`, `job cancel` and `job retry`: a shared job seen, stopped and
//!   reopened from outside.
//! - [`limits`]: the open-files limit raised at start, and whether `-p` and
//!   `CONCURRENCY` fit under it.
//! - [`logging`]: the slog root logger.
//! - [`exit`]: every exit status, as one enum.

mod app;
pub mod cli;
pub mod config;
pub(crate) mod coordinator;
pub(crate) mod counts;
pub mod demo;
pub mod exit;
pub mod fetch;
pub(crate) mod frontier;
// Not yet wired: the streaming report (issue 22) opens it; its tests drive it until then.
pub mod html;
pub mod job;
pub(crate) mod keyset;
pub mod limits;
pub mod logging;
pub(crate) mod manifest;
pub mod name_template;
pub mod net;
pub mod outdir;
pub mod progress;
pub(crate) mod redis_job;
pub mod render;
pub(crate) mod report;
pub mod robots;
pub mod settings;
pub(crate) mod state;
pub mod storage;
pub mod store;
pub(crate) mod task;
pub mod urllist;
pub mod work;
pub mod workers;

pub use app::{Outcome, Shutdown, run};
