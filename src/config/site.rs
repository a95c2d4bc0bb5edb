//! Where the image URLs come from (listing pages from `URL`, `ITEM`, `PAGE_PATH` and
//! `AMOUNT_PAGES`/`--pages`, or a `--urls` list) and which of them are wanted (`--ext`,
//! `--min-size`, `--max-size`): the work the frontier is seeded with and filters by.

use anyhow::{anyhow, bail};
use url::Url;

use super::defaults::{DEFAULT_PAGE_PATH, DEMO_ITEM};
use crate::cli::Cli;
use crate::fetch::dimensions::DimensionFilter;
pub use crate::frontier::{Filters, PageUrls, Source, UrlList};
use crate::settings::{PagesValue, Settings, parse_site_url};
use crate::urllist::{self, Input, ListSpec};

/// `--urls` replaces the pages; otherwise they are built from the site's keys (or the
/// demo's).
pub(super) fn resolve_source(settings: &Settings, cli: &Cli, demo: Option<&Url>) -> anyhow::Result<Source> {
    match &cli.urls {
        Some(_) => Ok(Source::Urls(scan_url_list(super::list_spec(cli)?.expect("--urls was given"))?)),
        None => resolve_pages(settings, cli, demo),
    }
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

/// A first pass over the list, streaming: its rows counted (the progress bar's total) and
/// hashed (processes of a shared job must read one list), and in a plain-text list each
/// URL checked: a hand-written list with a typo is refused before anything is fetched,
/// naming the line. In a dataset's table (CSV, JSON Lines, Parquet) a broken URL is one
/// row's failure, as img2dataset counts it, not a reason to refuse millions of rows.
/// Stdin cannot be read twice: it is read only by the run, and its rows are not counted.
fn scan_url_list(spec: ListSpec) -> anyhow::Result<UrlList> {
    if spec.inputs.contains(&Input::Stdin) {
        return Ok(UrlList { spec, rows: None, digest: None });
    }
    let mut digest = xxhash_rust::xxh3::Xxh3::new();
    let mut rows = 0u64;
    let by_hand = spec.is_text();
    for row in urllist::open(&spec).map_err(|e| anyhow!("--urls: {e}"))? {
        let row = row.map_err(|e| anyhow!("--urls: {e}"))?;
        if by_hand && let Err(e) = parse_site_url(&row.url) {
            bail!("--urls: {}: {e}", row.at);
        }
        digest.update(row.url.as_bytes());
        digest.update(b"\n");
        rows += 1;
    }
    Ok(UrlList { spec, rows: Some(rows), digest: Some(digest.digest128()) })
}

/// `--ext`, `--min-size`, `--max-size`, checked against each other before any download.
pub(super) fn resolve_filters(cli: &Cli) -> anyhow::Result<Filters> {
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

/// `MIN_WIDTH`, `MIN_HEIGHT`, `MAX_ASPECT` (the flags win): pixels, judged from each
/// image's header as it streams in.
pub(super) fn resolve_dimensions(settings: &Settings, cli: &Cli) -> anyhow::Result<DimensionFilter> {
    let s = &settings.section;
    let filter = DimensionFilter {
        min_width: cli.min_width.or(s.min_width),
        min_height: cli.min_height.or(s.min_height),
        max_aspect: cli.max_aspect.or(s.max_aspect),
    };
    if let Some(aspect) = filter.max_aspect
        && !(aspect >= 1.0 && aspect.is_finite())
    {
        let at = match cli.max_aspect {
            Some(_) => "--max-aspect".to_string(),
            None => settings.origin("MAX_ASPECT"),
        };
        bail!("{at}: the long side over the short one, at least 1 (2 for twice as long), got {aspect}");
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::resolve;
    use crate::config::testing::*;

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
    fn a_url_list_replaces_the_pages() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("failed.txt");
        std::fs::write(&list, "# retry these\nhttp://h.example/a.jpg\n\n  https://h.example/b.png  \n")
            .unwrap();
        let c = resolve(ORIGINAL, &["--urls", list.to_str().unwrap()]).unwrap();
        let Source::Urls(urls) = &c.source else { panic!() };
        assert_eq!(urls.rows, Some(2));
        assert_eq!(c.first_page(), None);
        std::fs::write(&list, "http://h.example/a.jpg\nnot a url\n").unwrap();
        let e = error(ORIGINAL, &["--urls", list.to_str().unwrap()]);
        assert!(e.contains("failed.txt:2:"), "{e}");
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
    fn dimension_filters_from_keys_or_flags_the_flags_winning() {
        let yaml = format!("{ORIGINAL}  MIN_WIDTH: 200\n  MIN_HEIGHT: 100\n  MAX_ASPECT: 2.5\n");
        let c = resolve(&yaml, &["--min-width", "300"]).unwrap();
        let wanted = DimensionFilter { min_width: Some(300), min_height: Some(100), max_aspect: Some(2.5) };
        assert_eq!(c.dimensions, wanted);
        assert!(!resolve(ORIGINAL, &[]).unwrap().dimensions.is_on(), "off unless asked for");
        let e = error(ORIGINAL, &["--max-aspect", "0.5"]);
        assert!(e.starts_with("--max-aspect: the long side over the short one, at least 1"), "{e}");
        let e = error(&format!("{ORIGINAL}  MAX_ASPECT: .nan\n"), &[]);
        assert!(e.contains("SCRAPER.MAX_ASPECT: the long side"), "{e}");
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
}
