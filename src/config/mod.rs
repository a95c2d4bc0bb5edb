//! Flags + settings (file and environment) + defaults -> one resolved, validated
//! [`Config`]. Precedence: flags > environment > file > defaults.
//!
//! Everything a run needs is checked in this folder, before any request is made or any
//! file created; each problem is one line naming the flag, variable or file key and what
//! is wrong. Each concern has its file, where its keys are read and range-checked, and
//! gives back a small typed part; [`Config::resolve`] only puts the parts together.

use std::path::PathBuf;
use std::sync::Arc;

use url::Url;

mod defaults;
mod extract;
mod http;
mod list;
mod naming;
mod net;
mod output;
pub mod render;
mod shared;
mod site;
#[cfg(test)]
mod testing;
mod walk;

pub use defaults::*;
pub use http::Requests;
pub use list::{DEFAULT_URL_COLUMN, list_spec};
pub use naming::{Dedupe, Naming};
pub use output::ReportKind;
pub use shared::SharedJob;
pub use site::{Filters, PageUrls, Source, parse_pages};
pub use walk::{MAX_PAGE_LOOKAHEAD, WalkSettings};

use crate::cli::Cli;
use crate::fetch::dimensions::DimensionFilter;
use crate::fetch::options::{FetchOptions, MAX_PAGE_BYTES};
use crate::html::ExtractRules;
use crate::net::politeness::HostGate;
use crate::net::proxy::Proxies;
use crate::net::tls::Trust;
pub use crate::robots::ROBOTS_AGENT;
use crate::settings::{Mode, Settings};
use crate::store::Store;
use crate::store::s3::S3Location;
use crate::work::Cancel;

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
    pub walk: WalkSettings,
    /// How each request is made and paced (`CONCURRENCY`, rates, timeouts, retries,
    /// User-Agent, headers...): one typed part, checked where its keys are resolved.
    pub requests: Requests,
    pub filters: Filters,
    /// `MIN_WIDTH`, `MIN_HEIGHT`, `MAX_ASPECT`: apart from `filters`, which the frontier
    /// applies to URLs; these only the fetch core can judge, from the bytes.
    pub dimensions: DimensionFilter,
    pub report: Option<(PathBuf, ReportKind)>,
    /// Where to list the URLs of failed images (`--failed`).
    pub failed_list: Option<PathBuf>,
    /// Download again what an earlier run completed (`--force`).
    pub force: bool,
    /// `--archive`: the resume record alone says what is done; a recorded image whose
    /// file is gone (moved away) is not fetched again.
    pub archive: bool,
    /// `NAME` and `DEDUPE`: how stored images are named, and what makes two the same.
    pub naming: Naming,
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

impl Config {
    /// Combines the settings with the flags. `demo` is the built-in gallery's address
    /// when `--demo` is on: it replaces every key that describes the site.
    pub fn resolve(settings: Settings, cli: &Cli, demo: Option<&Url>) -> anyhow::Result<Self> {
        // In this order: with several keys wrong, the one reported is the first here.
        let extract = extract::resolve(&settings, cli, demo)?;
        // For its one-line errors (--url-column without --urls...) until the streaming
        // Source reads the list through it.
        list::list_spec(cli)?;
        let source = site::resolve_source(&settings, cli, demo)?;
        let requests = http::resolve(&settings, cli)?;
        let output = output::resolve(&settings, cli)?;
        let filters = site::resolve_filters(cli)?;
        let naming = naming::resolve(&settings, cli, &source, output.bucket.is_some())?;
        let naming = naming::resolve_dedupe(&settings, cli, naming, output.bucket.is_some())?;
        let dimensions = site::resolve_dimensions(&settings, cli)?;
        let workers = match cli.process {
            Some(n) => n as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let walk = walk::resolve(&settings, demo.is_some(), &source, workers)?;
        let shared = shared::resolve(cli, &settings)?;
        let trust = net::resolve_trust(cli, &settings)?;
        let proxies = match demo {
            Some(_) => Proxies::none(),
            None => net::resolve_proxies(cli, &settings)?,
        };
        let first_page = source.first_url();
        let shared_with_browser = render::Shared {
            user_agent: &requests.user_agent,
            headers: &requests.headers,
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
            out_dir: output.out_dir,
            bucket: output.bucket,
            extract,
            walk,
            requests,
            filters,
            dimensions,
            report: output.report,
            failed_list: output.failed_list,
            force: cli.force,
            archive: cli.archive,
            naming,
            dry_run: cli.dry_run,
            shared,
            trust: Arc::new(trust),
            proxies,
            render,
        })
    }

    /// The first listing page, or `None` for a URL list.
    pub fn first_page(&self) -> Option<Url> {
        self.source.first_url()
    }

    /// What the workers need, writing into `out` and stopping on `cancel`.
    pub fn fetch_options(&self, store: Arc<dyn Store>, cancel: Cancel, gate: Arc<HostGate>) -> FetchOptions {
        let hash = self.report.as_ref().is_some_and(|(_, kind)| *kind != ReportKind::Json)
            || self.naming.dedupe == Dedupe::Content;
        FetchOptions {
            timeout: self.requests.timeout,
            user_agent: self.requests.user_agent.clone(),
            headers: self.requests.headers.clone(),
            send_referer: self.requests.send_referer,
            max_page_bytes: MAX_PAGE_BYTES,
            max_image_bytes: self.requests.max_image_bytes,
            min_wanted_bytes: self.filters.min_bytes,
            max_wanted_bytes: self.filters.max_bytes,
            dimensions: self.dimensions,
            obey_opt_outs: self.requests.obey_robots,
            hash,
            concurrency: self.requests.concurrency,
            retries: self.requests.retries,
            cancel,
            gate,
            proxies: Arc::new(self.proxies.clone()),
            render: self.render.policy,
            ..FetchOptions::new(store, self.extract.clone())
        }
    }

    /// The per-host gate these settings ask for.
    pub fn host_gate(&self) -> HostGate {
        HostGate::new(self.requests.host_interval, self.requests.host_jitter)
    }
}

/// `value` when it lies in `range`; else the one-line error every range-checked key
/// gives, naming where the key was set.
fn in_range<T: PartialOrd + std::fmt::Display>(
    key: String,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> anyhow::Result<T> {
    if range.contains(&value) {
        return Ok(value);
    }
    anyhow::bail!("{key}: must be between {} and {}, got {value}", range.start(), range.end())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use testing::*;

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
        assert!(c.requests.obey_robots && c.requests.send_referer);
        assert_eq!(c.requests.per_host_concurrency, 32);
        assert_eq!(c.requests.host_interval, None);
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
    fn new_keys_are_read() {
        let yaml = "SCRAPER:\n  URL: http://h.example/\n  ITEM: x\n  PAGE_PATH: 'list?page={page}'\n  IMAGE_SELECTOR: 'div.g img'\n  IMAGE_ATTRIBUTES: [data-src, src]\n  IMAGE_HOST: ''\n  PAGE_COUNT_SELECTOR: ''\n  CONCURRENCY: 4\n  TIMEOUT_SECS: 2.5\n  USER_AGENT: test-agent\n  PER_HOST_CONCURRENCY: 3\n  REQUESTS_PER_SECOND: 4\n  DELAY_JITTER_MS: 50\n  OBEY_ROBOTS: false\n  SEND_REFERER: false\n  HEADERS: {X-Token: abc}\n  COOKIES: {session: s1, theme: dark}\n";
        let c = resolve(yaml, &[]).unwrap();
        let (urls, max) = pages(&c);
        assert_eq!(urls.url(7).as_str(), "http://h.example/list?page=7");
        assert_eq!(max, None);
        assert_eq!(c.extract.attributes, ["data-src", "src"]);
        assert_eq!(c.extract.image_host, "");
        assert_eq!((c.requests.concurrency, c.requests.per_host_concurrency), (4, 3));
        assert_eq!(c.requests.timeout, Duration::from_millis(2500));
        assert_eq!(c.requests.user_agent, "test-agent");
        assert_eq!(c.requests.host_interval, Some(Duration::from_millis(250)));
        assert_eq!(c.requests.host_jitter, Duration::from_millis(50));
        assert!(!c.requests.obey_robots && !c.requests.send_referer);
        assert_eq!(
            c.requests.headers,
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
            assert_eq!(c.walk, WalkSettings { page_host: "127.0.0.1".into(), lookahead: 7 }, "{name}");
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
    fn demo_replaces_the_site_keys_only() {
        let demo = Url::parse("http://127.0.0.1:4000/").unwrap();
        let yaml = format!("{ORIGINAL}  CONCURRENCY: 3\n  IMAGE_SELECTOR: 'nothing'\n");
        let c = Config::resolve(Settings::parse_for_test(&yaml).unwrap(), &cli(&["--demo"]), Some(&demo))
            .unwrap();
        let (urls, max) = pages(&c);
        assert_eq!(urls.url(1).as_str(), "http://127.0.0.1:4000/p1/cats.html");
        assert_eq!(c.extract.image_host, "127.0.0.1");
        assert_eq!(c.extract.image_selector, DEFAULT_IMAGE_SELECTOR);
        assert_eq!(c.requests.concurrency, 3);
        assert_eq!(max, Some(10));
    }
}
