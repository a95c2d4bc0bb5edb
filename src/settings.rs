//! `settings.yaml` plus command-line flags -> one resolved, validated [`Config`].
//!
//! Everything a run needs is checked here, before any request is made or any file
//! created; each problem is one line naming the file or flag, the key and what is wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::cli::Cli;
use crate::html::{ExtractRules, Extractor};
use crate::outdir::OutDir;
use crate::work::{Cancel, FetchOptions, MAX_PAGE_BYTES, Retries};

/// How the workers fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One event loop per worker, many requests in flight on each (awc).
    Async,
    /// One thread per worker, one blocking request at a time on each (ureq).
    Sync,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Async => "async",
            Mode::Sync => "sync",
        }
    }
}

pub const DEFAULT_SETTINGS_FILE: &str = "settings.yaml";
pub const DEFAULT_PAGE_PATH: &str = "p{page}/{item}.html";
pub const DEFAULT_IMAGE_SELECTOR: &str = "img";
pub const DEFAULT_IMAGE_HOST: &str = "images.stockfreeimages.com";
pub const DEFAULT_PAGE_COUNT_SELECTOR: &str = "li.pag-text";
pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;
pub const DEFAULT_OUT_DIR: &str = "images";
pub const DEFAULT_RETRIES: u32 = 3;
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 500;
pub const DEFAULT_RETRY_MAX_WAIT_SECS: f64 = 60.0;
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 100 * 1024 * 1024;
/// The demo gallery's item when none is configured.
pub const DEMO_ITEM: &str = "cats";

pub fn default_user_agent() -> String {
    format!("image-scraper/{}", env!("CARGO_PKG_VERSION"))
}

/// The `SCRAPER:` section as written. Unknown keys are errors: a typo must not silently
/// fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "SCREAMING_SNAKE_CASE")]
struct Section {
    url: Option<String>,
    item: Option<String>,
    out_dir: Option<PathBuf>,
    amount_pages: Option<u32>,
    page_path: Option<String>,
    image_selector: Option<String>,
    image_attributes: Option<OneOrMany>,
    image_host: Option<String>,
    page_count_selector: Option<String>,
    concurrency: Option<usize>,
    timeout_secs: Option<f64>,
    user_agent: Option<String>,
    retries: Option<u32>,
    retry_backoff_ms: Option<u64>,
    retry_max_wait_secs: Option<f64>,
    max_image_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoot {
    #[serde(rename = "SCRAPER", default)]
    scraper: Section,
}

/// `IMAGE_ATTRIBUTES: src` or `IMAGE_ATTRIBUTES: [data-src, src]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The settings file as read, not yet combined with flags.
#[derive(Debug, Default)]
pub struct Settings {
    /// Named in every error about a key from the file.
    path: PathBuf,
    section: Section,
}

impl Settings {
    /// Reads `path`, or `settings.yaml` when `None`. The default file may be absent (then
    /// everything comes from flags); a file named with `-c` must exist.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_SETTINGS_FILE), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Self {
                    path,
                    section: Section::default(),
                });
            }
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        };
        let section = parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(Self { path, section })
    }

    #[cfg(test)]
    fn from_str(text: &str) -> anyhow::Result<Self> {
        let section = parse(text).map_err(|e| anyhow!("test.yaml: {e}"))?;
        Ok(Self {
            path: "test.yaml".into(),
            section,
        })
    }
}

fn parse(text: &str) -> Result<Section, String> {
    if text.trim().is_empty() {
        return Ok(Section::default());
    }
    // serde_yaml's message already names the key path (`SCRAPER.AMOUNT_PAGES: ...`) and
    // the line.
    let root: Option<FileRoot> = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    Ok(root.unwrap_or_default().scraper)
}

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
        let urls = Self {
            base,
            template: template.to_string(),
            item: item.to_string(),
        };
        for n in [1, u32::MAX] {
            let path = urls.path(n);
            let url = urls
                .base
                .join(&path)
                .map_err(|e| format!("{path:?} does not make a URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("{url} is not an http(s) URL"));
            }
        }
        Ok(urls)
    }

    fn path(&self, n: u32) -> String {
        self.template
            .replace("{page}", &n.to_string())
            .replace("{item}", &self.item)
    }

    pub fn url(&self, n: u32) -> Url {
        // `new` proved the template joins for any number.
        self.base
            .join(&self.path(n))
            .unwrap_or_else(|_| self.base.clone())
    }
}

/// Everything a run needs, resolved: flags > settings file > defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub workers: usize,
    pub pages: PageUrls,
    /// `None`: all the pages the site states (or page 1 alone when it states none).
    pub max_pages: Option<u32>,
    pub out_dir: PathBuf,
    pub extract: ExtractRules,
    /// Requests in flight per async worker.
    pub concurrency: usize,
    pub timeout: Duration,
    pub user_agent: String,
    pub retries: Retries,
    pub max_image_bytes: u64,
    pub report: Option<PathBuf>,
    /// Download again what an earlier run completed (`--force`).
    pub force: bool,
}

impl Config {
    /// Combines the file with the flags. `demo` is the built-in gallery's address when
    /// `--demo` is on: it replaces every key that describes the site.
    pub fn resolve(settings: Settings, cli: &Cli, demo: Option<&Url>) -> anyhow::Result<Self> {
        let file = settings.path.display().to_string();
        let s = settings.section;
        let key = |name: &str| format!("{file}: SCRAPER.{name}");

        let (base, item, page_path, extract) = match demo {
            Some(url) => (
                url.clone(),
                cli.item.clone().or(s.item).unwrap_or_else(|| DEMO_ITEM.into()),
                DEFAULT_PAGE_PATH.to_string(),
                ExtractRules {
                    image_selector: DEFAULT_IMAGE_SELECTOR.into(),
                    attributes: vec!["src".into()],
                    image_host: url.host_str().unwrap_or_default().to_string(),
                    page_count_selector: DEFAULT_PAGE_COUNT_SELECTOR.into(),
                },
            ),
            None => {
                let base = match (&cli.url, &s.url) {
                    (Some(url), _) => url.clone(),
                    (None, Some(raw)) => parse_site_url(raw).map_err(|e| anyhow!("{}: {e}", key("URL")))?,
                    (None, None) => {
                        bail!("no gallery URL: set SCRAPER.URL in {file}, pass --url, or try --demo")
                    }
                };
                let page_path = s.page_path.unwrap_or_else(|| DEFAULT_PAGE_PATH.into());
                let item = match cli.item.clone().or(s.item) {
                    Some(item) => item,
                    None if page_path.contains("{item}") => {
                        bail!(
                            "no item: set SCRAPER.ITEM in {file} or pass --item (PAGE_PATH {page_path:?} uses it)"
                        )
                    }
                    None => String::new(),
                };
                let attributes = match s.image_attributes {
                    None => vec!["src".to_string()],
                    Some(OneOrMany::One(a)) => vec![a],
                    Some(OneOrMany::Many(list)) => list,
                };
                let extract = ExtractRules {
                    image_selector: s.image_selector.unwrap_or_else(|| DEFAULT_IMAGE_SELECTOR.into()),
                    attributes,
                    image_host: s.image_host.unwrap_or_else(|| DEFAULT_IMAGE_HOST.into()),
                    page_count_selector: s
                        .page_count_selector
                        .unwrap_or_else(|| DEFAULT_PAGE_COUNT_SELECTOR.into()),
                };
                (base, item, page_path, extract)
            }
        };
        if item.trim().is_empty() && page_path.contains("{item}") {
            bail!("{}: must not be empty", key("ITEM"));
        }
        Extractor::new(&extract).map_err(|e| anyhow!("{file}: SCRAPER: {e}"))?;

        let max_pages = match (cli.pages, s.amount_pages) {
            (Some(n), _) => Some(n),
            (None, Some(0)) => bail!("{}: must be at least 1", key("AMOUNT_PAGES")),
            (None, n) => n,
        };
        if !page_path.contains("{page}") && max_pages != Some(1) {
            bail!(
                "{}: {page_path:?} has no {{page}}, so every page would be the same URL",
                key("PAGE_PATH")
            );
        }
        let pages =
            PageUrls::new(base, &page_path, &item).map_err(|e| anyhow!("{}: {e}", key("PAGE_PATH")))?;

        let concurrency = s.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=1024).contains(&concurrency) {
            bail!(
                "{}: must be between 1 and 1024, got {concurrency}",
                key("CONCURRENCY")
            );
        }
        let timeout_secs = s.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(timeout_secs > 0.0 && timeout_secs <= 86_400.0) {
            bail!(
                "{}: must be more than 0 and at most 86400, got {timeout_secs}",
                key("TIMEOUT_SECS")
            );
        }
        let retries = s.retries.unwrap_or(DEFAULT_RETRIES);
        if retries > 100 {
            bail!("{}: must be at most 100, got {retries}", key("RETRIES"));
        }
        let backoff_ms = s.retry_backoff_ms.unwrap_or(DEFAULT_RETRY_BACKOFF_MS);
        if backoff_ms > 3_600_000 {
            bail!(
                "{}: must be at most 3600000, got {backoff_ms}",
                key("RETRY_BACKOFF_MS")
            );
        }
        let max_wait = s.retry_max_wait_secs.unwrap_or(DEFAULT_RETRY_MAX_WAIT_SECS);
        if !(0.0..=86_400.0).contains(&max_wait) {
            bail!(
                "{}: must be between 0 and 86400, got {max_wait}",
                key("RETRY_MAX_WAIT_SECS")
            );
        }
        let max_image_bytes = s.max_image_bytes.unwrap_or(DEFAULT_MAX_IMAGE_BYTES);
        if max_image_bytes == 0 {
            bail!("{}: must be at least 1", key("MAX_IMAGE_BYTES"));
        }
        let user_agent = s.user_agent.unwrap_or_else(default_user_agent);
        if user_agent.is_empty() || !user_agent.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
            bail!("{}: must be non-empty printable ASCII", key("USER_AGENT"));
        }

        let (out_dir, out_origin) = match (&cli.out_dir, s.out_dir) {
            (Some(dir), _) => (dir.clone(), "--out-dir".to_string()),
            (None, Some(dir)) => (dir, key("OUT_DIR")),
            (None, None) => (PathBuf::from(DEFAULT_OUT_DIR), "out dir".to_string()),
        };
        if out_dir.as_os_str().is_empty() {
            bail!("{out_origin}: must not be empty");
        }
        if out_dir.exists() && !out_dir.is_dir() {
            bail!("{out_origin}: {} exists and is not a folder", out_dir.display());
        }
        if let Some(report) = &cli.report {
            let parent = report.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                bail!(
                    "--report: folder {} does not exist",
                    parent.unwrap_or(Path::new(".")).display()
                );
            }
            if report.is_dir() {
                bail!("--report: {} is a folder", report.display());
            }
        }

        let workers = match cli.process {
            Some(n) => n as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Self {
            mode: cli.mode,
            workers,
            pages,
            max_pages,
            out_dir,
            extract,
            concurrency,
            timeout: Duration::from_secs_f64(timeout_secs),
            user_agent,
            retries: Retries {
                times: retries,
                base: Duration::from_millis(backoff_ms),
                max_wait: Duration::from_secs_f64(max_wait),
            },
            max_image_bytes,
            report: cli.report.clone(),
            force: cli.force,
        })
    }

    /// What the workers need, writing into `out` and stopping on `cancel`.
    pub fn fetch_options(&self, out: &OutDir, cancel: Cancel) -> FetchOptions {
        FetchOptions {
            out_dir: out.root().to_path_buf(),
            tmp_dir: out.tmp_dir(),
            extract: self.extract.clone(),
            timeout: self.timeout,
            user_agent: self.user_agent.clone(),
            max_page_bytes: MAX_PAGE_BYTES,
            max_image_bytes: self.max_image_bytes,
            concurrency: self.concurrency,
            retries: self.retries,
            cancel,
        }
    }
}

/// A gallery URL: absolute http(s) with a host.
pub fn parse_site_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} is not an http(s) URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("image-scraper").chain(args.iter().copied())).unwrap()
    }

    fn resolve(yaml: &str, args: &[&str]) -> anyhow::Result<Config> {
        Config::resolve(Settings::from_str(yaml)?, &cli(args), None)
    }

    fn error(yaml: &str, args: &[&str]) -> String {
        format!("{:#}", resolve(yaml, args).unwrap_err())
    }

    const ORIGINAL: &str = "SCRAPER:\n  URL: https://www.stockfreeimages.com/\n  ITEM: cats\n  OUT_DIR: images\n  AMOUNT_PAGES: 10\n";

    #[test]
    fn the_original_file_gives_the_original_behaviour() {
        let c = resolve(ORIGINAL, &[]).unwrap();
        assert_eq!(
            c.pages.url(3).as_str(),
            "https://www.stockfreeimages.com/p3/cats.html"
        );
        assert_eq!(c.max_pages, Some(10));
        assert_eq!(c.out_dir, PathBuf::from("images"));
        assert_eq!(c.extract.image_host, "images.stockfreeimages.com");
        assert_eq!(c.extract.image_selector, "img");
        assert_eq!(c.extract.attributes, ["src"]);
        assert_eq!(c.mode, Mode::Async);
        assert!(c.workers >= 1);
    }

    #[test]
    fn flags_override_the_file() {
        let c = resolve(
            ORIGINAL,
            &[
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
            ],
        )
        .unwrap();
        assert_eq!(c.pages.url(2).as_str(), "http://127.0.0.1:9/g/p2/dogs.html");
        assert_eq!(c.max_pages, Some(2));
        assert_eq!(c.out_dir, PathBuf::from("out"));
        assert_eq!((c.mode, c.workers), (Mode::Sync, 3));
    }

    #[test]
    fn url_without_a_trailing_slash_is_a_folder() {
        let c = resolve("SCRAPER:\n  URL: http://h.example/gallery\n  ITEM: x\n", &[]).unwrap();
        assert_eq!(c.pages.url(1).as_str(), "http://h.example/gallery/p1/x.html");
    }

    #[test]
    fn new_keys_are_read() {
        let yaml = "SCRAPER:\n  URL: http://h.example/\n  ITEM: x\n  PAGE_PATH: 'list?page={page}'\n  IMAGE_SELECTOR: 'div.g img'\n  IMAGE_ATTRIBUTES: [data-src, src]\n  IMAGE_HOST: ''\n  PAGE_COUNT_SELECTOR: ''\n  CONCURRENCY: 4\n  TIMEOUT_SECS: 2.5\n  USER_AGENT: test-agent\n";
        let c = resolve(yaml, &[]).unwrap();
        assert_eq!(c.pages.url(7).as_str(), "http://h.example/list?page=7");
        assert_eq!(c.extract.attributes, ["data-src", "src"]);
        assert_eq!(c.extract.image_host, "");
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.user_agent, "test-agent");
        assert_eq!(c.max_pages, None);
    }

    #[test]
    fn bad_files_name_the_key_and_the_problem() {
        let e = error(
            "SCRAPER:\n  URL: https://h/\n  ITEM: cats\n  AMOUNT_PAGES: ten\n",
            &[],
        );
        assert!(
            e.starts_with("test.yaml: SCRAPER.AMOUNT_PAGES: invalid type"),
            "{e}"
        );
        let e = error("SCRAPER:\n  URL: https://h/\n  AMOUNT_PAGE: 3\n", &[]);
        assert!(e.contains("unknown field `AMOUNT_PAGE`"), "{e}");
        let e = error(
            "SCRAPER:\n  URL: https://h/\n  ITEM: x\n  AMOUNT_PAGES: -1\n",
            &[],
        );
        assert!(e.contains("SCRAPER.AMOUNT_PAGES") && e.contains("-1"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  AMOUNT_PAGES: 0\n", &[]);
        assert_eq!(e, "test.yaml: SCRAPER.AMOUNT_PAGES: must be at least 1");
        let e = error("SCRAPER:\n  URL: not a url\n  ITEM: x\n", &[]);
        assert!(
            e.starts_with("test.yaml: SCRAPER.URL: \"not a url\" is not a URL"),
            "{e}"
        );
        let e = error("SCRAPER:\n  URL: ftp://h/\n  ITEM: x\n", &[]);
        assert!(
            e.contains("SCRAPER.URL") && e.contains("not an http(s) URL"),
            "{e}"
        );
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  CONCURRENCY: 0\n", &[]);
        assert!(
            e.contains("SCRAPER.CONCURRENCY: must be between 1 and 1024"),
            "{e}"
        );
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  TIMEOUT_SECS: 0\n", &[]);
        assert!(e.contains("SCRAPER.TIMEOUT_SECS"), "{e}");
        let e = error(
            "SCRAPER:\n  URL: https://h/\n  ITEM: x\n  IMAGE_SELECTOR: 'img['\n",
            &[],
        );
        assert!(e.contains("image selector \"img[\""), "{e}");
        let e = error(
            "SCRAPER:\n  URL: https://h/\n  ITEM: x\n  PAGE_PATH: all.html\n",
            &[],
        );
        assert!(e.contains("SCRAPER.PAGE_PATH") && e.contains("no {page}"), "{e}");
        let e = error("SCRAPER: [1, 2]\n", &[]);
        assert!(e.starts_with("test.yaml: SCRAPER: invalid type"), "{e}");
        let e = error("SCRAPER:\n  URL: https://h/\n  ITEM: x\n  bad: [\n", &[]);
        assert!(e.starts_with("test.yaml: "), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn missing_url_or_item_is_explained() {
        assert!(error("", &[]).starts_with("no gallery URL"));
        assert!(error("SCRAPER:\n  URL: https://h/\n", &[]).starts_with("no item"));
        assert!(resolve("", &["--url", "https://h/", "--item", "x"]).is_ok());
    }

    #[test]
    fn out_dir_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = error(ORIGINAL, &["-o", file.to_str().unwrap()]);
        assert!(
            e.starts_with("--out-dir: ") && e.ends_with("is not a folder"),
            "{e}"
        );
        let missing = dir.path().join("no/such/report.json");
        let e = error(ORIGINAL, &["--report", missing.to_str().unwrap()]);
        assert!(e.starts_with("--report: folder"), "{e}");
    }

    #[test]
    fn demo_replaces_the_site_keys_only() {
        let demo = Url::parse("http://127.0.0.1:4000/").unwrap();
        let yaml = format!("{ORIGINAL}  CONCURRENCY: 3\n  IMAGE_SELECTOR: 'nothing'\n");
        let c = Config::resolve(Settings::from_str(&yaml).unwrap(), &cli(&["--demo"]), Some(&demo)).unwrap();
        assert_eq!(c.pages.url(1).as_str(), "http://127.0.0.1:4000/p1/cats.html");
        assert_eq!(c.extract.image_host, "127.0.0.1");
        assert_eq!(c.extract.image_selector, "img");
        assert_eq!(c.concurrency, 3);
        assert_eq!(c.max_pages, Some(10));
    }

    #[test]
    fn missing_default_file_is_fine_but_a_named_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let named = dir.path().join("nope.yaml");
        let e = format!("{:#}", Settings::load(Some(&named)).unwrap_err());
        assert!(e.contains("nope.yaml: cannot read"), "{e}");
    }
}
