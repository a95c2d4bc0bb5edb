//! Flags + settings (file and environment) + defaults -> one resolved, validated
//! [`Config`]. Precedence: flags > environment > file > defaults.
//!
//! Everything a run needs is checked here, before any request is made or any file
//! created; each problem is one line naming the flag, variable or file key and what is
//! wrong.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use url::Url;

pub mod render;

use crate::cli::Cli;
use crate::html::{DetailRules, ExtractRules, Extractor, LinkedImages, parse_selector};
use crate::politeness::HostGate;
use crate::proxy::Proxies;
pub use crate::robots::ROBOTS_AGENT;
use crate::settings::{Mode, PagesValue, Settings, parse_site_url};
use crate::store::Store;
use crate::store::s3::S3Location;
use crate::tls::{SystemRoots, Trust};
use crate::work::{Cancel, FetchOptions, MAX_PAGE_BYTES, Retries};
pub use crate::work::{DEFAULT_MAX_IMAGE_BYTES, default_user_agent};

pub const DEFAULT_PAGE_PATH: &str = "p{page}/{item}.html";
/// `img` for the original's `<img src>`, `picture source` for `<picture>` sets.
pub const DEFAULT_IMAGE_SELECTOR: &str = "img, picture source";
/// What lazy loaders read (`data-*`: WP Rocket and Jetpack's `data-lazy-*`, lazysizes'
/// `data-src*`, jQuery lazyload's `data-original`, Slick's `data-lazy`, Flickity's
/// `data-flickity-lazyload`, WordPress's advertised original `data-orig-file`), then what
/// the browser reads. `data-*` ones come first whatever the
/// order; the order breaks ties between equally large candidates.
pub const DEFAULT_IMAGE_ATTRIBUTES: [&str; 12] = [
    "data-lazy-srcset",
    "data-srcset",
    "data-lazy-src",
    "data-src",
    "data-original",
    "data-hi-res-src",
    "data-lazy",
    "data-lazyload",
    "data-flickity-lazyload",
    "data-orig-file",
    "srcset",
    "src",
];
/// Any host: a site's images are often on a CDN of another name, and a filter that
/// guesses one finds nothing anywhere else (the seed's own is in the shipped
/// `settings.yaml`, next to its URL).
pub const DEFAULT_IMAGE_HOST: &str = "";
pub const DEFAULT_PAGE_COUNT_SELECTOR: &str = "li.pag-text";
/// The most template pages `PAGE_LOOKAHEAD` lets run ahead: past it, pages fetched past
/// the end cost the site more than they gain.
pub const MAX_PAGE_LOOKAHEAD: u32 = 64;
pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_PER_HOST_CONCURRENCY: usize = 32;
pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;
pub const DEFAULT_OUT_DIR: &str = "images";
pub const DEFAULT_RETRIES: u32 = 3;
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 500;
pub const DEFAULT_RETRY_MAX_WAIT_SECS: f64 = 60.0;
/// The demo gallery's item when none is configured.
pub const DEMO_ITEM: &str = "cats";

/// Page number -> listing page URL: `PAGE_PATH` with `{page}` and `{item}` filled in,
/// resolved against `URL` taken as a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageUrls {
    base: Url,
    template: String,
    item: String,
}

impl PageUrls {
    pub fn new(mut base: Url, template: &str, item: &str) -> Result<Self, String> {
        if !base.path().ends_with('/') {
            let folder = format!("{}/", base.path());
            base.set_path(&folder);
        }
        // `%2{page}` would make `%21`..`%29`: a different character, or no URL at all, for
        // each page (the fuzzer found `#` in the host for page 3).
        for placeholder in ["{page}", "{item}"] {
            if let Some(at) = template.find(placeholder)
                && template[..at].chars().rev().take(2).any(|c| c == '%')
            {
                return Err(format!("{placeholder} right after a % would make a different escape per page"));
            }
        }
        let urls = Self { base, template: template.to_string(), item: item.to_string() };
        // Every page number starts with one of these digit pairs; all must make a URL on
        // the same host as page 1.
        let first = urls.join(1)?;
        for n in (2..=100).chain([u32::MAX]) {
            let url = urls.join(n)?;
            if url.host_str() != first.host_str() || url.port() != first.port() {
                return Err(format!("page {n} lands on another host ({url})"));
            }
        }
        Ok(urls)
    }

    /// The first page is `url` itself, exactly as given (not taken as a folder), and there
    /// is no template: later pages are reached only by next links. What `URL` alone (no
    /// `PAGE_PATH`, no `ITEM`) means.
    pub fn single(mut url: Url) -> Self {
        url.set_fragment(None);
        Self { base: url, template: String::new(), item: String::new() }
    }

    /// Whether page `N` has a URL of its own (`PAGE_PATH` holds `{page}`). Without one,
    /// [`PageUrls::url`] gives the first page for every number, and the walk goes on only
    /// by next links.
    pub fn has_template(&self) -> bool {
        self.template.contains("{page}")
    }

    fn join(&self, n: u32) -> Result<Url, String> {
        let path = self.path(n);
        let url = self.base.join(&path).map_err(|e| format!("{path:?} does not make a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("{url} is not an http(s) URL"));
        }
        Ok(url)
    }

    fn path(&self, n: u32) -> String {
        self.template.replace("{page}", &n.to_string()).replace("{item}", &self.item)
    }

    pub fn url(&self, n: u32) -> Url {
        // `new` proved the template joins, on one host, whatever digits a number starts
        // with; the fallback is unreachable.
        self.join(n).unwrap_or_else(|_| self.base.clone())
    }
}

/// How a walk goes on from page to page beyond the template (next links, detail links)
/// and how far it runs ahead: the Coordinator's part of `NEXT_SELECTOR`, `PAGE_HOST`,
/// `PAGE_LOOKAHEAD` and `DETAIL_SELECTOR` (what pages say is the extractor's, in
/// [`ExtractRules`]: with `NEXT_SELECTOR` or `DETAIL_SELECTOR` off, scans find no next
/// link or no detail link, so nothing here needs to know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// `PAGE_HOST`, lower-cased: a page reached by a link (next or detail) is fetched
    /// only when its host contains this, as `IMAGE_HOST` filters images; empty: any host.
    /// Default: the first page's host, so a walk does not wander off the site.
    pub page_host: String,
    /// `PAGE_LOOKAHEAD`: template pages that may be asked for ahead of the end being
    /// known (no count stated), to keep the workers fed; those past the end cost a 404
    /// each, never a failure. 1 to [`MAX_PAGE_LOOKAHEAD`]; default: the number of workers
    /// (already resolved here from `-p`), at most [`MAX_PAGE_LOOKAHEAD`].
    pub lookahead: u32,
}

impl Walk {
    /// Whether a page at `url`, reached by a link, may be fetched.
    pub fn allows(&self, url: &Url) -> bool {
        crate::html::host_matches(&self.page_host, url)
    }
}

/// Where the image URLs come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Scrape listing pages.
    Pages {
        /// Page N's URL; without a template ([`PageUrls::has_template`]) only the first
        /// page's, the rest found by next links.
        pages: PageUrls,
        /// The page the walk starts at (`--pages 5-12`: 5); it goes out alone, as page 1.
        first_page: u32,
        /// The last page to fetch (`AMOUNT_PAGES`, `--pages`), an upper bound; `None`:
        /// as many as the site has (its stated count, else the walk's end rules).
        max_pages: Option<u32>,
    },
    /// A list of image URLs (`--urls`): no pages.
    Urls(Vec<Url>),
}

/// What the report file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// Counts and items in one JSON document.
    Json,
    /// One JSON line per image, with its sha256.
    Jsonl,
}

/// Which images are wanted at all, beyond the host filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Lower-case extensions without the dot; empty keeps all.
    pub extensions: Vec<String>,
    pub min_bytes: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl Filters {
    /// Whether the URL's path ends in a wanted extension.
    pub fn wants(&self, url: &Url) -> bool {
        if self.extensions.is_empty() {
            return true;
        }
        let path = url.path().to_ascii_lowercase();
        let ext = path.rsplit('/').next().and_then(|name| name.rsplit_once('.')).map(|(_, e)| e);
        ext.is_some_and(|e| self.extensions.iter().any(|want| want == e))
    }
}

/// Everything a run needs, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub workers: usize,
    pub source: Source,
    pub out_dir: PathBuf,
    /// `-o s3://bucket/prefix`: images go to S3-compatible object storage instead of a
    /// folder (`out_dir` then only names it in messages).
    pub bucket: Option<S3Location>,
    pub extract: ExtractRules,
    /// Following next and detail links, and running ahead (issue 12).
    pub walk: Walk,
    /// Requests in flight per async worker.
    pub concurrency: usize,
    /// Requests in flight per host, across all workers.
    pub per_host_concurrency: usize,
    /// Least time between two requests to one host; `None`: no rate limit.
    pub host_interval: Option<Duration>,
    pub host_jitter: Duration,
    pub obey_robots: bool,
    pub timeout: Duration,
    pub user_agent: String,
    /// Sent with every request (`HEADERS`, and `Cookie` from `COOKIES`).
    pub headers: Vec<(String, String)>,
    /// Send the page an image was found on as its Referer, as browsers do.
    pub send_referer: bool,
    pub retries: Retries,
    pub max_image_bytes: u64,
    pub filters: Filters,
    pub report: Option<(PathBuf, ReportKind)>,
    /// Where to list the URLs of failed images (`--failed`).
    pub failed_list: Option<PathBuf>,
    /// Download again what an earlier run completed (`--force`).
    pub force: bool,
    /// List the image URLs, download nothing (`--dry-run`).
    pub dry_run: bool,
    /// `--frontier` and `--job`: the work is shared through Redis.
    pub shared: Option<SharedJob>,
    /// Which servers every client trusts (the system's roots, `--ca-cert`/`CA_CERT`,
    /// `--insecure`), read here so a bad CA file stops the run before any request.
    pub trust: Arc<Trust>,
    /// Which proxy each request goes through (flags, settings, then the conventional
    /// variables); none for the demo gallery, which is on this machine's loopback.
    pub proxies: Proxies,
    /// Rendering pages built by JavaScript: when, with which browser, how far.
    pub render: crate::render::RenderOptions,
}

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

impl Config {
    /// Combines the settings with the flags. `demo` is the built-in gallery's address
    /// when `--demo` is on: it replaces every key that describes the site.
    pub fn resolve(settings: Settings, cli: &Cli, demo: Option<&Url>) -> anyhow::Result<Self> {
        let file = settings.file();
        let key = |name: &str| settings.origin(name);
        let s = settings.section.clone();

        let extract = match demo {
            Some(url) => ExtractRules {
                image_selector: DEFAULT_IMAGE_SELECTOR.into(),
                attributes: DEFAULT_IMAGE_ATTRIBUTES.map(String::from).to_vec(),
                image_host: url.host_str().unwrap_or_default().to_string(),
                page_count_selector: DEFAULT_PAGE_COUNT_SELECTOR.into(),
                linked_images: LinkedImages::default(),
                link_selector: String::new(),
                next_selector: None,
                detail: DetailRules {
                    selector: cli.demo.unwrap_or_default().detail_selector().unwrap_or_default().into(),
                    ..DetailRules::default()
                },
            },
            None => ExtractRules {
                image_selector: s.image_selector.clone().unwrap_or_else(|| DEFAULT_IMAGE_SELECTOR.into()),
                attributes: s
                    .image_attributes
                    .clone()
                    .map_or_else(|| DEFAULT_IMAGE_ATTRIBUTES.map(String::from).to_vec(), |a| a.into_vec()),
                image_host: match &s.image_host {
                    Some(host) => image_host(host).map_err(|e| anyhow!("{}: {e}", key("IMAGE_HOST")))?,
                    None => DEFAULT_IMAGE_HOST.into(),
                },
                page_count_selector: s
                    .page_count_selector
                    .clone()
                    .unwrap_or_else(|| DEFAULT_PAGE_COUNT_SELECTOR.into()),
                linked_images: s.linked_images.unwrap_or_default(),
                link_selector: s.link_selector.clone().unwrap_or_default(),
                next_selector: s.next_selector.clone(),
                detail: resolve_detail(&settings)?,
            },
        };
        if let Some(css) = &extract.next_selector {
            check_selector(&settings, "NEXT_SELECTOR", css, "next-link selector")?;
        }
        Extractor::new(&extract).map_err(|e| anyhow!("{file}: SCRAPER: {e}"))?;

        let source = match &cli.urls {
            Some(list) => Source::Urls(read_url_list(list)?),
            None => resolve_pages(&settings, cli, demo)?,
        };

        let concurrency = s.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=1024).contains(&concurrency) {
            bail!("{}: must be between 1 and 1024, got {concurrency}", key("CONCURRENCY"));
        }
        let per_host_concurrency = s.per_host_concurrency.unwrap_or(DEFAULT_PER_HOST_CONCURRENCY);
        if !(1..=4096).contains(&per_host_concurrency) {
            bail!("{}: must be between 1 and 4096, got {per_host_concurrency}", key("PER_HOST_CONCURRENCY"));
        }
        let host_interval = match (s.delay_ms, s.requests_per_second) {
            (Some(_), Some(_)) => {
                bail!("{}: set DELAY_MS or REQUESTS_PER_SECOND, not both", key("REQUESTS_PER_SECOND"))
            }
            (Some(ms), None) if ms > 3_600_000 => {
                bail!("{}: must be at most 3600000, got {ms}", key("DELAY_MS"))
            }
            (Some(ms), None) => Some(Duration::from_millis(ms)).filter(|d| !d.is_zero()),
            (None, Some(rps)) if !(rps > 0.0 && rps <= 1_000_000.0) => {
                bail!("{}: must be more than 0, got {rps}", key("REQUESTS_PER_SECOND"))
            }
            (None, Some(rps)) => Some(Duration::from_secs_f64(1.0 / rps)),
            (None, None) => None,
        };
        let jitter_ms = s.delay_jitter_ms.unwrap_or(0);
        if jitter_ms > 3_600_000 {
            bail!("{}: must be at most 3600000, got {jitter_ms}", key("DELAY_JITTER_MS"));
        }
        let timeout_secs = s.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(timeout_secs > 0.0 && timeout_secs <= 86_400.0) {
            bail!("{}: must be more than 0 and at most 86400, got {timeout_secs}", key("TIMEOUT_SECS"));
        }
        let retries = s.retries.unwrap_or(DEFAULT_RETRIES);
        if retries > 100 {
            bail!("{}: must be at most 100, got {retries}", key("RETRIES"));
        }
        let backoff_ms = s.retry_backoff_ms.unwrap_or(DEFAULT_RETRY_BACKOFF_MS);
        if backoff_ms > 3_600_000 {
            bail!("{}: must be at most 3600000, got {backoff_ms}", key("RETRY_BACKOFF_MS"));
        }
        let max_wait = s.retry_max_wait_secs.unwrap_or(DEFAULT_RETRY_MAX_WAIT_SECS);
        if !(0.0..=86_400.0).contains(&max_wait) {
            bail!("{}: must be between 0 and 86400, got {max_wait}", key("RETRY_MAX_WAIT_SECS"));
        }
        let max_image_bytes = s.max_image_bytes.unwrap_or(DEFAULT_MAX_IMAGE_BYTES);
        if max_image_bytes == 0 {
            bail!("{}: must be at least 1", key("MAX_IMAGE_BYTES"));
        }
        let user_agent = s.user_agent.clone().unwrap_or_else(default_user_agent);
        if user_agent.trim().is_empty() || !is_header_text(&user_agent) {
            bail!("{}: must be non-empty printable ASCII", key("USER_AGENT"));
        }
        let headers = resolve_headers(&settings)?;

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
                check_output_file("--report", path)?;
                let jsonl = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("jsonl"));
                Some((path.clone(), if jsonl { ReportKind::Jsonl } else { ReportKind::Json }))
            }
            None => None,
        };
        if let Some(path) = &cli.failed {
            check_output_file("--failed", path)?;
        }
        let filters = resolve_filters(cli)?;

        let workers = match cli.process {
            Some(n) => n as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let walk = resolve_walk(&settings, demo.is_some(), &source, workers)?;
        let shared = resolve_shared(cli, &settings)?;
        let trust = resolve_trust(cli, &settings)?;
        let proxies = match demo {
            Some(_) => Proxies::none(),
            None => resolve_proxies(cli, &settings)?,
        };
        let first_page = match &source {
            Source::Pages { pages, .. } => Some(pages.url(1)),
            Source::Urls(_) => None,
        };
        let shared_with_browser = render::Shared {
            user_agent: &user_agent,
            headers: &headers,
            proxies: &proxies,
            first_page: first_page.as_ref(),
            insecure: cli.insecure,
            demo: demo.is_some(),
        };
        let render = render::resolve(
            &settings,
            cli,
            shared_with_browser,
            std::env::var_os(crate::render::CHROMIUM_VARIABLE),
            std::env::var_os("PATH"),
        )?;
        Ok(Self {
            mode: cli.mode,
            workers,
            source,
            out_dir,
            bucket,
            extract,
            walk,
            concurrency,
            per_host_concurrency,
            host_interval,
            host_jitter: Duration::from_millis(jitter_ms),
            obey_robots: !cli.ignore_robots && s.obey_robots.unwrap_or(true),
            timeout: Duration::from_secs_f64(timeout_secs),
            user_agent,
            headers,
            send_referer: s.send_referer.unwrap_or(true),
            retries: Retries {
                times: retries,
                base: Duration::from_millis(backoff_ms),
                max_wait: Duration::from_secs_f64(max_wait),
            },
            max_image_bytes,
            filters,
            report,
            failed_list: cli.failed.clone(),
            force: cli.force,
            dry_run: cli.dry_run,
            shared,
            trust: Arc::new(trust),
            proxies,
            render,
        })
    }

    /// The first listing page, or `None` for a URL list.
    pub fn first_page(&self) -> Option<Url> {
        match &self.source {
            Source::Pages { pages, .. } => Some(pages.url(1)),
            Source::Urls(_) => None,
        }
    }

    /// What the workers need, writing into `out` and stopping on `cancel`.
    pub fn fetch_options(&self, store: Arc<dyn Store>, cancel: Cancel, gate: Arc<HostGate>) -> FetchOptions {
        let hash = self.report.as_ref().is_some_and(|(_, kind)| *kind == ReportKind::Jsonl);
        FetchOptions {
            timeout: self.timeout,
            user_agent: self.user_agent.clone(),
            headers: self.headers.clone(),
            send_referer: self.send_referer,
            max_page_bytes: MAX_PAGE_BYTES,
            max_image_bytes: self.max_image_bytes,
            min_wanted_bytes: self.filters.min_bytes,
            max_wanted_bytes: self.filters.max_bytes,
            hash,
            concurrency: self.concurrency,
            retries: self.retries,
            cancel,
            gate,
            proxies: Arc::new(self.proxies.clone()),
            render: self.render.policy,
            ..FetchOptions::new(store, self.extract.clone())
        }
    }

    /// The per-host gate these settings ask for.
    pub fn host_gate(&self) -> HostGate {
        HostGate::new(self.host_interval, self.host_jitter)
    }
}

/// `--proxy`/`PROXY`, `--noproxy`/`NO_PROXY`, then the conventional variables (see
/// `proxy`). A proxy URL that cannot be used stops the run here, naming its source, when
/// it is certain to be used (`Proxies::resolve`).
fn resolve_proxies(cli: &Cli, settings: &Settings) -> anyhow::Result<Proxies> {
    let s = &settings.section;
    let proxy = match (&cli.proxy, &s.proxy) {
        (Some(flag), _) => Some((flag.as_str(), "--proxy".to_string())),
        (None, Some(key)) => Some((key.as_str(), settings.origin("PROXY"))),
        (None, None) => None,
    };
    let no_proxy = cli.noproxy.as_deref().or(s.no_proxy.as_deref());
    Proxies::resolve(proxy, no_proxy, |name| settings.proxy_var(name))
        .map_err(|(origin, e)| anyhow!("{origin}: {e}"))
}

fn resolve_pages(settings: &Settings, cli: &Cli, demo: Option<&Url>) -> anyhow::Result<Source> {
    let file = settings.file();
    let key = |name: &str| settings.origin(name);
    let s = &settings.section;
    let (base, item, page_path) = match demo {
        Some(url) => {
            let item = cli.item.clone().or(s.item.clone()).unwrap_or_else(|| DEMO_ITEM.into());
            (url.clone(), item, cli.demo.unwrap_or_default().page_path().to_string())
        }
        None => {
            let base = match (&cli.url, &s.url) {
                (Some(url), _) => url.clone(),
                (None, Some(raw)) => parse_site_url(raw).map_err(|e| anyhow!("{}: {e}", key("URL")))?,
                (None, None) => bail!("no gallery URL: set SCRAPER.URL in {file}, pass --url, or try --demo"),
            };
            let item = cli.item.clone().or(s.item.clone());
            // `URL` alone is the first page itself: a new user's first try, on a gallery
            // whose pages link to each other.
            if s.page_path.is_none() && item.is_none() {
                let (first_page, max_pages) = resolve_range(settings, cli)?;
                check_untemplated_range(settings, cli, first_page)?;
                return Ok(Source::Pages { pages: PageUrls::single(base), first_page, max_pages });
            }
            let page_path = s.page_path.clone().unwrap_or_else(|| DEFAULT_PAGE_PATH.into());
            let item = match item {
                Some(item) => item,
                None if page_path.contains("{item}") => {
                    bail!(
                        "no item: set SCRAPER.ITEM in {file} or pass --item (PAGE_PATH {page_path:?} uses it)"
                    )
                }
                None => String::new(),
            };
            (base, item, page_path)
        }
    };
    if item.trim().is_empty() && page_path.contains("{item}") {
        bail!("{}: must not be empty", key("ITEM"));
    }
    let (first_page, mut max_pages) = resolve_range(settings, cli)?;
    if demo.is_some() && max_pages.is_none() {
        max_pages = cli.demo.unwrap_or_default().amount_pages();
    }
    let pages = PageUrls::new(base, &page_path, &item).map_err(|e| anyhow!("{}: {e}", key("PAGE_PATH")))?;
    if !pages.has_template() {
        check_untemplated_range(settings, cli, first_page)?;
    }
    Ok(Source::Pages { pages, first_page, max_pages })
}

/// `--ca-cert` (all of them), else `CA_CERT`, on top of the machine's roots. A CA file
/// that cannot be used names the flag or key it came from.
fn resolve_trust(cli: &Cli, settings: &Settings) -> anyhow::Result<Trust> {
    let (files, origin) = match (&cli.ca_cert, &settings.section.ca_cert) {
        (flags, _) if !flags.is_empty() => (flags.clone(), "--ca-cert".to_string()),
        (_, Some(files)) => {
            (files.clone().into_vec().into_iter().map(PathBuf::from).collect(), settings.origin("CA_CERT"))
        }
        (_, None) => (Vec::new(), String::new()),
    };
    Trust::new(SystemRoots::load(), &files, cli.insecure).map_err(|e| anyhow!("{origin}: {e}"))
}

/// `--frontier`, `--job`, `--lease`: checked here so a bad one stops the run before any
/// connection.
fn resolve_shared(cli: &Cli, settings: &Settings) -> anyhow::Result<Option<SharedJob>> {
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

/// `--pages` or `AMOUNT_PAGES`: the first page and the last; `(1, None)` when neither.
fn resolve_range(settings: &Settings, cli: &Cli) -> anyhow::Result<(u32, Option<u32>)> {
    Ok(match (&cli.pages, &settings.section.amount_pages) {
        (Some(text), _) => parse_pages(text).map_err(|e| anyhow!("--pages: {e}"))?,
        (None, Some(value)) => {
            let text = match value {
                PagesValue::Count(n) => n.to_string(),
                PagesValue::Range(text) => text.clone(),
            };
            parse_pages(&text).map_err(|e| anyhow!("{}: {e}", settings.origin("AMOUNT_PAGES")))?
        }
        (None, None) => (1, None),
    })
}

/// Without a template only the first page has a known URL, so a range cannot start
/// past it (its page 5 is known only by walking 1 to 4).
fn check_untemplated_range(settings: &Settings, cli: &Cli, first_page: u32) -> anyhow::Result<()> {
    if first_page == 1 {
        return Ok(());
    }
    let origin = match cli.pages {
        Some(_) => "--pages".to_string(),
        None => settings.origin("AMOUNT_PAGES"),
    };
    bail!(
        "{origin}: starts at page {first_page}, but without {{page}} in PAGE_PATH only the first page has a known URL (later ones are found by next links): start at 1"
    )
}

/// `DETAIL_*`, each checked on its own so an error names its key.
fn resolve_detail(settings: &Settings) -> anyhow::Result<DetailRules> {
    let s = &settings.section;
    let rules = DetailRules {
        selector: s.detail_selector.clone().unwrap_or_default(),
        image_selector: s.detail_image_selector.clone().unwrap_or_default(),
        images: s.detail_images.unwrap_or_default(),
    };
    check_selector(settings, "DETAIL_SELECTOR", &rules.selector, "detail-link selector")?;
    check_selector(settings, "DETAIL_IMAGE_SELECTOR", &rules.image_selector, "detail-image selector")?;
    if rules.selector.trim().is_empty() {
        // What detail pages yield means nothing without links to them: a forgotten
        // DETAIL_SELECTOR must not pass silently.
        for (name, set) in [
            ("DETAIL_IMAGE_SELECTOR", s.detail_image_selector.is_some()),
            ("DETAIL_IMAGES", s.detail_images.is_some()),
        ] {
            if set {
                bail!(
                    "{}: has no effect without DETAIL_SELECTOR (the links to detail pages)",
                    settings.origin(name)
                );
            }
        }
    }
    Ok(rules)
}

/// A selector key: empty is off; anything else must parse.
fn check_selector(settings: &Settings, key: &str, css: &str, what: &str) -> anyhow::Result<()> {
    if css.trim().is_empty() {
        return Ok(());
    }
    parse_selector(css.trim(), what).map(drop).map_err(|e| anyhow!("{}: {e}", settings.origin(key)))
}

/// `PAGE_HOST` and `PAGE_LOOKAHEAD`, with their defaults: the first page's host (the
/// demo's, whatever the file says: it is a key about the site) and the worker count.
fn resolve_walk(settings: &Settings, demo: bool, source: &Source, workers: usize) -> anyhow::Result<Walk> {
    let s = &settings.section;
    let first_host = match source {
        Source::Pages { pages, first_page, .. } => {
            pages.url(*first_page).host_str().map(str::to_ascii_lowercase)
        }
        Source::Urls(_) => None,
    };
    let page_host = match (&s.page_host, demo) {
        (Some(host), false) => {
            let host = host.trim().to_ascii_lowercase();
            if host.contains(['/', ' ', '\t', '?', '#']) {
                bail!(
                    "{}: {host:?} is not a host name (like example.com); \"\" allows any host",
                    settings.origin("PAGE_HOST")
                );
            }
            host
        }
        _ => first_host.unwrap_or_default(),
    };
    let lookahead = match s.page_lookahead {
        Some(n) if (1..=MAX_PAGE_LOOKAHEAD).contains(&n) => n,
        Some(n) => bail!(
            "{}: must be between 1 and {MAX_PAGE_LOOKAHEAD}, got {n}",
            settings.origin("PAGE_LOOKAHEAD")
        ),
        None => u32::try_from(workers).unwrap_or(u32::MAX).clamp(1, MAX_PAGE_LOOKAHEAD),
    };
    Ok(Walk { page_host, lookahead })
}

/// `12`: pages 1 to at most 12; `5-12`: pages 5 to at most 12. Returns the first page and
/// the last.
pub fn parse_pages(text: &str) -> Result<(u32, Option<u32>), String> {
    let number = |s: &str| match s.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number of pages (12) or a range of them (5-12)")),
    };
    match text.split_once('-') {
        None => Ok((1, Some(number(text)?))),
        Some((first, last)) => {
            let (first, last) = (number(first)?, number(last)?);
            if first > last {
                return Err(format!("{text:?} ends before it starts"));
            }
            Ok((first, Some(last)))
        }
    }
}

/// One image URL per line, in `urllist`'s format.
fn read_url_list(path: &Path) -> anyhow::Result<Vec<Url>> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("--urls: cannot read stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("--urls: cannot read {}", path.display()))?
    };
    crate::urllist::entries(&text)
        .map(|(n, entry)| parse_site_url(entry).map_err(|e| anyhow!("--urls: {}:{n}: {e}", path.display())))
        .collect()
}

fn resolve_headers(settings: &Settings) -> anyhow::Result<Vec<(String, String)>> {
    let s = &settings.section;
    let mut headers = Vec::new();
    for (name, value) in s.headers.iter().flatten() {
        if !is_token(name) || !is_header_text(value) {
            bail!("{}: {name:?}: not a valid header name and value", settings.origin("HEADERS"));
        }
        headers.push((name.clone(), value.clone()));
    }
    let mut cookies = Vec::new();
    for (name, value) in s.cookies.iter().flatten() {
        let value_ok = value.bytes().all(|b| b.is_ascii_graphic() && !b"\",;\\".contains(&b));
        if !is_token(name) || !value_ok {
            bail!("{}: {name:?}: not a valid cookie name and value", settings.origin("COOKIES"));
        }
        cookies.push(format!("{name}={value}"));
    }
    if !cookies.is_empty() {
        headers.push(("Cookie".into(), cookies.join("; ")));
    }
    Ok(headers)
}

/// `IMAGE_HOST` as a filter: lower-cased, a scheme and a trailing `/` dropped (a user
/// pastes a URL: images come over http and https alike, so the scheme says nothing), a
/// port kept (it must then match too). Anything else that is no host is refused.
fn image_host(raw: &str) -> Result<String, String> {
    let host = raw.trim().to_ascii_lowercase();
    let host = match host.split_once("://") {
        Some(("http" | "https", rest)) => rest.strip_suffix('/').unwrap_or(rest).to_string(),
        Some(_) => return Err(format!("{raw:?}: only http(s) images are fetched; give a host name")),
        None => host,
    };
    if host.contains(['/', ' ', '\t', '?', '#', '@']) {
        return Err(format!(
            "{raw:?} is not a host name (like images.example.com, or 127.0.0.1:8080); \"\" keeps all hosts"
        ));
    }
    Ok(host)
}

/// An HTTP token: a header or cookie name.
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Printable ASCII (and spaces): what every client sends without complaint.
fn is_header_text(text: &str) -> bool {
    text.chars().all(|c| c == ' ' || c.is_ascii_graphic())
}

fn resolve_filters(cli: &Cli) -> anyhow::Result<Filters> {
    let extensions: Vec<String> = cli
        .ext
        .iter()
        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    if extensions.iter().any(|e| !e.chars().all(|c| c.is_ascii_alphanumeric())) {
        bail!("--ext: give extensions like jpg,png");
    }
    if let (Some(min), Some(max)) = (cli.min_size, cli.max_size)
        && min > max
    {
        bail!("--min-size: {min} bytes is more than --max-size {max}");
    }
    Ok(Filters { extensions, min_bytes: cli.min_size, max_bytes: cli.max_size })
}

/// An output file's folder must exist and the file must not be a folder.
fn check_output_file(flag: &str, path: &Path) -> anyhow::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|p| !p.is_dir()) {
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
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("image-scraper").chain(args.iter().copied())).unwrap()
    }

    fn resolve(yaml: &str, args: &[&str]) -> anyhow::Result<Config> {
        Config::resolve(Settings::parse_for_test(yaml)?, &cli(args), None)
    }

    fn error(yaml: &str, args: &[&str]) -> String {
        format!("{:#}", resolve(yaml, args).unwrap_err())
    }

    fn pages(c: &Config) -> (&PageUrls, Option<u32>) {
        match &c.source {
            Source::Pages { pages, max_pages, .. } => (pages, *max_pages),
            Source::Urls(_) => panic!("not pages"),
        }
    }

    const ORIGINAL: &str = "SCRAPER:\n  URL: https://www.stockfreeimages.com/\n  ITEM: cats\n  OUT_DIR: images\n  AMOUNT_PAGES: 10\n";

    #[test]
    fn the_original_file_gives_the_original_pages_host_and_folder() {
        let c = resolve(ORIGINAL, &[]).unwrap();
        let (urls, max) = pages(&c);
        assert_eq!(urls.url(3).as_str(), "https://www.stockfreeimages.com/p3/cats.html");
        assert_eq!(max, Some(10));
        assert_eq!(c.out_dir, PathBuf::from("images"));
        assert_eq!(c.extract.image_host, "", "any host unless the file says otherwise");
        assert_eq!(c.extract.attributes.last().map(String::as_str), Some("src"));
        assert_eq!(c.mode, Mode::Async);
        assert!(c.workers >= 1);
        assert!(c.obey_robots && c.send_referer);
        assert_eq!(c.per_host_concurrency, 32);
        assert_eq!(c.host_interval, None);
    }

    #[test]
    fn flags_override_the_file() {
        let args = [
            "--url",
            "http://127.0.0.1:9/g/",
            "--item",
            "dogs",
            "--pages",
            "2",
            "-o",
            "out",
            "-m",
            "sync",
            "-p",
            "3",
        ];
        let c = resolve(ORIGINAL, &args).unwrap();
        let (urls, max) = pages(&c);
        assert_eq!(urls.url(2).as_str(), "http://127.0.0.1:9/g/p2/dogs.html");
        assert_eq!(max, Some(2));
        assert_eq!(c.out_dir, PathBuf::from("out"));
        assert_eq!((c.mode, c.workers), (Mode::Sync, 3));
    }

    #[test]
    fn templates_that_change_with_the_page_digits_are_refused() {
        let base = Url::parse("https://www.example.com/").unwrap();
        let e = PageUrls::new(base.clone(), "//h%2{page}/", "cats").unwrap_err();
        assert!(e.contains("right after a %"), "{e}");
        let e = PageUrls::new(base.clone(), "//h{page}x/", "cats").unwrap_err();
        assert!(e.contains("another host"), "{e}");
        assert!(PageUrls::new(base.clone(), "https://cdn.example.com/g/{page}/", "x").is_ok());
        assert!(PageUrls::new(base, "list?page={page}&q=%20{item}", "x").is_ok());
    }

    #[test]
    fn url_without_a_trailing_slash_is_a_folder() {
        let c = resolve("SCRAPER:\n  URL: http://h.example/gallery\n  ITEM: x\n", &[]).unwrap();
        assert_eq!(pages(&c).0.url(1).as_str(), "http://h.example/gallery/p1/x.html");
    }

    #[test]
    fn link_keys_are_read_and_checked() {
        let base = "SCRAPER:\n  URL: http://h.example/\n  ITEM: x\n";
        let c = resolve(base, &[]).unwrap();
        assert_eq!((c.extract.linked_images, c.extract.link_selector.as_str()), (LinkedImages::Prefer, ""));
        let c = resolve(&format!("{base}  LINKED_IMAGES: both\n  LINK_SELECTOR: a.download\n"), &[]).unwrap();
        assert_eq!(
            (c.extract.linked_images, c.extract.link_selector.as_str()),
            (LinkedImages::Both, "a.download")
        );
        let e = resolve(&format!("{base}  LINKED_IMAGES: always\n"), &[]).unwrap_err().to_string();
        assert!(e.contains("LINKED_IMAGES") && e.contains("prefer"), "{e}");
        let e = resolve(&format!("{base}  LINK_SELECTOR: 'a[[href]'\n"), &[]).unwrap_err().to_string();
        assert!(e.contains("link selector"), "{e}");
    }

    #[test]
    fn new_keys_are_read() {
        let yaml = "SCRAPER:\n  URL: http://h.example/\n  ITEM: x\n  PAGE_PATH: 'list?page={page}'\n  IMAGE_SELECTOR: 'div.g img'\n  IMAGE_ATTRIBUTES: [data-src, src]\n  IMAGE_HOST: ''\n  PAGE_COUNT_SELECTOR: ''\n  CONCURRENCY: 4\n  TIMEOUT_SECS: 2.5\n  USER_AGENT: test-agent\n  PER_HOST_CONCURRENCY: 3\n  REQUESTS_PER_SECOND: 4\n  DELAY_JITTER_MS: 50\n  OBEY_ROBOTS: false\n  SEND_REFERER: false\n  HEADERS: {X-Token: abc}\n  COOKIES: {session: s1, theme: dark}\n";
        let c = resolve(yaml, &[]).unwrap();
        let (urls, max) = pages(&c);
        assert_eq!(urls.url(7).as_str(), "http://h.example/list?page=7");
        assert_eq!(max, None);
        assert_eq!(c.extract.attributes, ["data-src", "src"]);
        assert_eq!(c.extract.image_host, "");
        assert_eq!((c.concurrency, c.per_host_concurrency), (4, 3));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.user_agent, "test-agent");
        assert_eq!(c.host_interval, Some(Duration::from_millis(250)));
        assert_eq!(c.host_jitter, Duration::from_millis(50));
        assert!(!c.obey_robots && !c.send_referer);
        assert_eq!(
            c.headers,
            [
                ("X-Token".to_string(), "abc".to_string()),
                ("Cookie".to_string(), "session=s1; theme=dark".to_string())
            ]
        );
    }

    #[test]
    fn bad_values_name_the_key_and_the_problem() {
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  AMOUNT_PAGES: 0\n", &[]);
        assert_eq!(e, "test.yaml: SCRAPER.AMOUNT_PAGES: must be at least 1");
        let e = error("SCRAPER:\n  URL: not a url\n  ITEM: x\n", &[]);
        assert!(e.starts_with("test.yaml: SCRAPER.URL: \"not a url\" is not a URL"), "{e}");
        let e = error("SCRAPER:\n  URL: ftp://h/\n  ITEM: x\n", &[]);
        assert!(e.contains("SCRAPER.URL") && e.contains("not an http(s) URL"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  CONCURRENCY: 0\n", &[]);
        assert!(e.contains("SCRAPER.CONCURRENCY: must be between 1 and 1024"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  TIMEOUT_SECS: 0\n", &[]);
        assert!(e.contains("SCRAPER.TIMEOUT_SECS"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  IMAGE_SELECTOR: 'img['\n", &[]);
        assert!(e.contains("image selector \"img[\""), "{e}");
        let e =
            error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  DELAY_MS: 5\n  REQUESTS_PER_SECOND: 2\n", &[]);
        assert!(e.contains("not both"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  REQUESTS_PER_SECOND: 0\n", &[]);
        assert!(e.contains("SCRAPER.REQUESTS_PER_SECOND"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  PER_HOST_CONCURRENCY: 0\n", &[]);
        assert!(e.contains("SCRAPER.PER_HOST_CONCURRENCY"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  HEADERS: {'Bad Name': x}\n", &[]);
        assert!(e.contains("SCRAPER.HEADERS"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  COOKIES: {a: 'b; c'}\n", &[]);
        assert!(e.contains("SCRAPER.COOKIES"), "{e}");
        let e = error(ORIGINAL, &["--min-size", "2M", "--max-size", "1M"]);
        assert!(e.starts_with("--min-size"), "{e}");
        let e = error(ORIGINAL, &["--ext", "j/pg"]);
        assert!(e.starts_with("--ext"), "{e}");
    }

    #[test]
    fn missing_url_or_item_is_explained() {
        assert!(error("", &[]).starts_with("no gallery URL"));
        let e = error("SCRAPER:\n  URL: https://h/\n  PAGE_PATH: 'p{page}/{item}.html'\n", &[]);
        assert!(e.starts_with("no item"), "{e}");
        assert!(resolve("", &["--url", "https://h/", "--item", "x"]).is_ok());
    }

    #[test]
    fn a_url_alone_is_the_first_page_itself() {
        for (yaml, args) in [
            ("SCRAPER:\n  URL: https://h.example/gallery/index.php?album=7#top\n", &[][..]),
            ("", &["--url", "https://h.example/gallery/index.php?album=7"][..]),
        ] {
            let c = resolve(yaml, args).unwrap();
            let (urls, max) = pages(&c);
            assert!(!urls.has_template());
            assert_eq!(urls.url(1).as_str(), "https://h.example/gallery/index.php?album=7", "not a folder");
            assert_eq!(urls.url(2), urls.url(1), "no page 2 of its own");
            assert_eq!(max, None);
            assert_eq!(c.walk.page_host, "h.example");
        }
        // With an item, the default template as before.
        let c = resolve("SCRAPER:\n  URL: https://h.example/g\n  ITEM: cats\n", &[]).unwrap();
        assert!(pages(&c).0.has_template());
    }

    #[test]
    fn a_page_path_without_page_is_one_first_page_and_next_links() {
        let base = "SCRAPER:\n  URL: https://h.example/g\n  ITEM: cats\n";
        let c = resolve(&format!("{base}  PAGE_PATH: 'list/{{item}}'\n  AMOUNT_PAGES: 12\n"), &[]).unwrap();
        let (urls, max) = pages(&c);
        assert_eq!(
            (urls.url(1).as_str(), urls.has_template(), max),
            ("https://h.example/g/list/cats", false, Some(12))
        );
        // A range must start at the first page: only its URL is known.
        let e = error(&format!("{base}  PAGE_PATH: all.html\n  AMOUNT_PAGES: \"3-5\"\n"), &[]);
        assert!(
            e.starts_with("test.yaml: SCRAPER.AMOUNT_PAGES: starts at page 3") && e.contains("{page}"),
            "{e}"
        );
        let e = error(&format!("{base}  PAGE_PATH: all.html\n"), &["--pages", "2-3"]);
        assert!(e.starts_with("--pages: starts at page 2"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h.example/\n", &["--pages", "2-3"]);
        assert!(e.starts_with("--pages: starts at page 2"), "{e}");
        assert!(resolve(&format!("{base}  PAGE_PATH: all.html\n"), &["--pages", "1-3"]).is_ok());
    }

    #[test]
    fn walk_keys_have_defaults() {
        let c = resolve(ORIGINAL, &["-p", "3"]).unwrap();
        assert_eq!(c.extract.next_selector, None);
        assert_eq!(c.walk, Walk { page_host: "www.stockfreeimages.com".into(), lookahead: 3 });
        assert_eq!(c.extract.detail, DetailRules::default());
        assert_eq!(c.extract.detail.images, crate::html::DetailImages::Largest);
        // The worker count, at most 64.
        assert_eq!(resolve(ORIGINAL, &["-p", "200"]).unwrap().walk.lookahead, MAX_PAGE_LOOKAHEAD);
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(c.walk.allows(&url("https://www.stockfreeimages.com/p2/")));
        assert!(!c.walk.allows(&url("https://evil.example/p2/")));
    }

    #[test]
    fn walk_keys_are_read() {
        let yaml = format!(
            "{ORIGINAL}  NEXT_SELECTOR: 'a.older'\n  PAGE_HOST: Example.COM\n  PAGE_LOOKAHEAD: 5\n  DETAIL_SELECTOR: 'a.mw-file-description'\n  DETAIL_IMAGE_SELECTOR: '.fullImageLink a, .fullImageLink img'\n  DETAIL_IMAGES: all\n"
        );
        let c = resolve(&yaml, &[]).unwrap();
        assert_eq!(c.extract.next_selector.as_deref(), Some("a.older"));
        assert_eq!(c.walk, Walk { page_host: "example.com".into(), lookahead: 5 });
        assert!(c.walk.allows(&Url::parse("https://www.example.com/x").unwrap()));
        assert_eq!(
            c.extract.detail,
            DetailRules {
                selector: "a.mw-file-description".into(),
                image_selector: ".fullImageLink a, .fullImageLink img".into(),
                images: crate::html::DetailImages::All,
            }
        );
        // Empty turns next links off and the page host filter off.
        let c = resolve(&format!("{ORIGINAL}  NEXT_SELECTOR: ''\n  PAGE_HOST: ''\n"), &[]).unwrap();
        assert_eq!((c.extract.next_selector.as_deref(), c.walk.page_host.as_str()), (Some(""), ""));
        assert!(c.walk.allows(&Url::parse("https://anywhere.example/").unwrap()));
    }

    #[test]
    fn bad_ca_files_name_the_flag_or_key() {
        let site = "SCRAPER:\n  URL: https://h/\n  ITEM: x\n";
        let e = error(site, &["--ca-cert", "/no/such/ca.pem"]);
        assert!(e.starts_with("--ca-cert: /no/such/ca.pem: cannot read"), "{e}");
        let e = error(&format!("{site}  CA_CERT: [/no/such/ca.pem]\n"), &[]);
        assert!(e.starts_with("test.yaml: SCRAPER.CA_CERT: /no/such/ca.pem: cannot read"), "{e}");
        let c = resolve(site, &["--insecure"]).unwrap();
        assert!(c.trust.insecure && c.trust.extra_roots == 0);
    }

    #[test]
    fn bad_walk_keys_name_the_key() {
        let cases = [
            ("NEXT_SELECTOR: 'a[rel='", "test.yaml: SCRAPER.NEXT_SELECTOR: next-link selector"),
            ("DETAIL_SELECTOR: '..x'", "test.yaml: SCRAPER.DETAIL_SELECTOR: detail-link selector"),
            (
                "DETAIL_SELECTOR: a\n  DETAIL_IMAGE_SELECTOR: 'img['",
                "test.yaml: SCRAPER.DETAIL_IMAGE_SELECTOR: detail-image",
            ),
            (
                "DETAIL_SELECTOR: a\n  DETAIL_IMAGES: biggest",
                "SCRAPER.DETAIL_IMAGES: unknown variant `biggest`",
            ),
            (
                "DETAIL_IMAGE_SELECTOR: img",
                "test.yaml: SCRAPER.DETAIL_IMAGE_SELECTOR: has no effect without DETAIL_SELECTOR",
            ),
            ("DETAIL_IMAGES: all", "test.yaml: SCRAPER.DETAIL_IMAGES: has no effect without DETAIL_SELECTOR"),
            ("PAGE_LOOKAHEAD: 0", "test.yaml: SCRAPER.PAGE_LOOKAHEAD: must be between 1 and 64, got 0"),
            ("PAGE_LOOKAHEAD: 65", "test.yaml: SCRAPER.PAGE_LOOKAHEAD: must be between 1 and 64, got 65"),
            ("PAGE_LOOKAHEAD: -1", "SCRAPER.PAGE_LOOKAHEAD: invalid type: integer `-1`"),
            (
                "PAGE_HOST: 'https://h.example/'",
                "test.yaml: SCRAPER.PAGE_HOST: \"https://h.example/\" is not a host name",
            ),
        ];
        for (key, needle) in cases {
            let e = error(&format!("{ORIGINAL}  {key}\n"), &[]);
            assert!(e.contains(needle), "{key}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn each_demo_shape_sets_the_keys_a_user_would() {
        use crate::demo::Shape;
        let demo = Url::parse("http://127.0.0.1:4000/").unwrap();
        let yaml = format!(
            "{ORIGINAL}  DETAIL_SELECTOR: nothing\n  PAGE_HOST: elsewhere.example\n  PAGE_LOOKAHEAD: 7\n"
        );
        let resolve = |shape: &str| {
            let args = ["--demo", shape];
            Config::resolve(Settings::parse_for_test(&yaml).unwrap(), &cli(&args), Some(&demo)).unwrap()
        };
        for shape in Shape::ALL {
            let name = clap::ValueEnum::to_possible_value(&shape).unwrap().get_name().to_string();
            let c = resolve(&name);
            let (urls, _) = pages(&c);
            assert_eq!(c.walk, Walk { page_host: "127.0.0.1".into(), lookahead: 7 }, "{name}");
            assert_eq!(c.extract.next_selector, None);
            assert_eq!(c.extract.detail.selector, shape.detail_selector().unwrap_or_default(), "{name}");
            let first = match shape {
                Shape::NextLinks => "http://127.0.0.1:4000/list/cats",
                Shape::Infinite => "http://127.0.0.1:4000/feed.html",
                Shape::LoadMore => "http://127.0.0.1:4000/more.html",
                Shape::App => "http://127.0.0.1:4000/app.html",
                _ => "http://127.0.0.1:4000/p1/cats.html",
            };
            assert_eq!(urls.url(1).as_str(), first, "{name}");
            let single_page = shape == Shape::NextLinks || shape.is_scripted();
            assert_eq!(urls.has_template(), !single_page, "{name}");
        }
    }

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

    #[test]
    fn a_url_list_replaces_the_pages() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("failed.txt");
        std::fs::write(&list, "# retry these\nhttp://h.example/a.jpg\n\n  https://h.example/b.png  \n")
            .unwrap();
        let c = resolve(ORIGINAL, &["--urls", list.to_str().unwrap()]).unwrap();
        let Source::Urls(urls) = &c.source else { panic!() };
        assert_eq!(urls.len(), 2);
        assert_eq!(c.first_page(), None);
        std::fs::write(&list, "http://h.example/a.jpg\nnot a url\n").unwrap();
        let e = error(ORIGINAL, &["--urls", list.to_str().unwrap()]);
        assert!(e.contains("failed.txt:2:"), "{e}");
    }

    #[test]
    fn image_host_takes_a_host_a_port_or_a_url() {
        let host =
            |v: &str| resolve(&format!("{ORIGINAL}  IMAGE_HOST: '{v}'\n"), &[]).map(|c| c.extract.image_host);
        assert_eq!(host("Images.Example.com").unwrap(), "images.example.com");
        assert_eq!(host("127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(host("http://127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(host("https://cdn.example/").unwrap(), "cdn.example");
        assert_eq!(host("").unwrap(), "");
        for bad in ["https://cdn.example/images/", "ftp://cdn.example", "a b"] {
            let e = host(bad).unwrap_err().to_string();
            assert!(e.starts_with("test.yaml: SCRAPER.IMAGE_HOST: ") && !e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn filters() {
        let c = resolve(ORIGINAL, &["--ext", "JPG,.png", "--min-size", "1K"]).unwrap();
        assert_eq!(c.filters.extensions, ["jpg", "png"]);
        assert_eq!(c.filters.min_bytes, Some(1024));
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(c.filters.wants(&url("http://h/a/b.JPG?x=1")));
        assert!(c.filters.wants(&url("http://h/b.png")));
        assert!(!c.filters.wants(&url("http://h/b.gif")));
        assert!(!c.filters.wants(&url("http://h/jpg")));
        assert!(Filters::default().wants(&url("http://h/anything")));
    }

    #[test]
    fn demo_replaces_the_site_keys_only() {
        let demo = Url::parse("http://127.0.0.1:4000/").unwrap();
        let yaml = format!("{ORIGINAL}  CONCURRENCY: 3\n  IMAGE_SELECTOR: 'nothing'\n");
        let c = Config::resolve(Settings::parse_for_test(&yaml).unwrap(), &cli(&["--demo"]), Some(&demo))
            .unwrap();
        let (urls, max) = pages(&c);
        assert_eq!(urls.url(1).as_str(), "http://127.0.0.1:4000/p1/cats.html");
        assert_eq!(c.extract.image_host, "127.0.0.1");
        assert_eq!(c.extract.image_selector, DEFAULT_IMAGE_SELECTOR);
        assert_eq!(c.concurrency, 3);
        assert_eq!(max, Some(10));
    }

    #[test]
    fn pages_are_a_count_or_a_range() {
        assert_eq!(parse_pages("12"), Ok((1, Some(12))));
        assert_eq!(parse_pages("5-12"), Ok((5, Some(12))));
        assert_eq!(parse_pages(" 3 - 3 "), Ok((3, Some(3))));
        for bad in ["0", "0-4", "12-5", "a-b", "", "-3", "5-"] {
            assert!(parse_pages(bad).is_err(), "{bad:?}");
        }
        let c =
            resolve("SCRAPER:\n  URL: http://h.example/\n  ITEM: x\n  AMOUNT_PAGES: \"2-4\"\n", &[]).unwrap();
        assert!(matches!(c.source, Source::Pages { first_page: 2, max_pages: Some(4), .. }));
        let c = resolve(
            "SCRAPER:\n  URL: http://h.example/\n  ITEM: x\n  AMOUNT_PAGES: 7\n",
            &["--pages", "5-6"],
        )
        .unwrap();
        assert!(matches!(c.source, Source::Pages { first_page: 5, max_pages: Some(6), .. }), "the flag wins");
        let e = error("SCRAPER:\n  URL: http://h.example/\n  ITEM: x\n  AMOUNT_PAGES: \"9-2\"\n", &[]);
        assert!(e.contains("AMOUNT_PAGES") && e.contains("ends before it starts"), "{e}");
        assert!(
            error("SCRAPER:\n  URL: http://h.example/\n  ITEM: x\n", &["--pages", "0"])
                .starts_with("--pages: ")
        );
    }

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

    #[test]
    fn proxies_from_flags_settings_and_the_environment() {
        let yaml = "SCRAPER:\n  URL: http://h.example/\n  ITEM: cats\n";
        let target = Url::parse("http://h.example/p1/cats.html").unwrap();
        let via = |c: &Config| c.proxies.for_url(&target).map(|p| p.to_string());
        let env = |vars: &[(&str, &str)]| {
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
        };
        let with_env = |yaml: &str, args: &[&str], vars: &[(&str, &str)]| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.yaml");
            std::fs::write(&path, yaml).unwrap();
            Config::resolve(Settings::load_with_env(Some(&path), env(vars)).unwrap(), &cli(args), None)
        };

        assert_eq!(via(&resolve(yaml, &[]).unwrap()), None, "no proxy unless asked");
        let from_env = with_env(yaml, &[], &[("http_proxy", "http://env:1")]).unwrap();
        assert_eq!(via(&from_env).as_deref(), Some("http://env:1"));
        let key =
            with_env(&format!("{yaml}  PROXY: key:2\n"), &[], &[("http_proxy", "http://env:1")]).unwrap();
        assert_eq!(via(&key).as_deref(), Some("http://key:2"), "PROXY beats the environment");
        let flag = resolve(&format!("{yaml}  PROXY: key:2\n"), &["--proxy", "flag:3"]).unwrap();
        assert_eq!(via(&flag).as_deref(), Some("http://flag:3"), "--proxy beats PROXY");
        let none = with_env(yaml, &["--proxy", ""], &[("http_proxy", "http://env:1")]).unwrap();
        assert_eq!(via(&none), None, "--proxy '' is no proxy");
        let bypassed = resolve(&format!("{yaml}  PROXY: key:2\n  NO_PROXY: .example\n"), &[]).unwrap();
        assert_eq!(via(&bypassed), None);
        let demo = Url::parse("http://127.0.0.1:4000/").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.yaml"), yaml).unwrap();
        let settings =
            Settings::load_with_env(Some(&dir.path().join("s.yaml")), env(&[("http_proxy", "http://env:1")]))
                .unwrap();
        let c = Config::resolve(settings, &cli(&["--demo"]), Some(&demo)).unwrap();
        assert!(!c.proxies.any(), "the demo gallery is on this machine");

        let bad = resolve(&format!("{yaml}  PROXY: socks4://s:1\n"), &[]).unwrap_err().to_string();
        assert!(bad.contains("SCRAPER.PROXY") && bad.contains("unsupported proxy scheme"), "{bad}");
        let bad = with_env(yaml, &[], &[("ALL_PROXY", "http://")]).unwrap_err().to_string();
        assert!(bad.starts_with("environment ALL_PROXY: not a proxy URL"), "{bad}");
        let lazy = with_env(yaml, &[], &[("HTTPS_PROXY", "http://")]).unwrap();
        assert_eq!(lazy.proxies.unusable().count(), 1, "only https targets would use it: not an error yet");
        let socks = resolve(&format!("{yaml}  PROXY: socks5h://s:1\n"), &[]).unwrap();
        assert_eq!(via(&socks).as_deref(), Some("socks5h://s:1"));
    }
}
