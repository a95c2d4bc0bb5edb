//! `PAGE_HOST` and `PAGE_LOOKAHEAD`: how far a walk may wander from the first page's host
//! and how far it runs ahead of a known end.

use anyhow::bail;

use super::in_range;
use url::Url;

use super::site::Source;
use crate::settings::Settings;

/// The most template pages `PAGE_LOOKAHEAD` lets run ahead: past it, pages fetched past
/// the end cost the site more than they gain.
pub const MAX_PAGE_LOOKAHEAD: u32 = 64;

/// How a walk goes on from page to page beyond the template (next links, detail links)
/// and how far it runs ahead: the Coordinator's part of `NEXT_SELECTOR`, `PAGE_HOST`,
/// `PAGE_LOOKAHEAD` and `DETAIL_SELECTOR` (what pages say is the extractor's, in
/// [`ExtractRules`](crate::html::ExtractRules): with `NEXT_SELECTOR` or
/// `DETAIL_SELECTOR` off, scans find no next link or no detail link, so nothing here
/// needs to know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkSettings {
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

impl WalkSettings {
    /// Whether a page at `url`, reached by a link, may be fetched.
    pub fn allows(&self, url: &Url) -> bool {
        crate::html::host_matches(&self.page_host, url)
    }
}

/// `PAGE_HOST` and `PAGE_LOOKAHEAD`, with their defaults: the first page's host (the
/// demo's, whatever the file says: it is a key about the site) and the worker count.
pub(super) fn resolve(
    settings: &Settings,
    demo: bool,
    source: &Source,
    workers: usize,
) -> anyhow::Result<WalkSettings> {
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
        Some(n) => in_range(settings.origin("PAGE_LOOKAHEAD"), n, 1..=MAX_PAGE_LOOKAHEAD)?,
        None => u32::try_from(workers).unwrap_or(u32::MAX).clamp(1, MAX_PAGE_LOOKAHEAD),
    };
    Ok(WalkSettings { page_host, lookahead })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::resolve;
    use crate::config::testing::*;
    use crate::html::DetailRules;

    #[test]
    fn walk_keys_have_defaults() {
        let c = resolve(ORIGINAL, &["-p", "3"]).unwrap();
        assert_eq!(c.extract.next_selector, None);
        assert_eq!(c.walk, WalkSettings { page_host: "www.stockfreeimages.com".into(), lookahead: 3 });
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
        assert_eq!(c.walk, WalkSettings { page_host: "example.com".into(), lookahead: 5 });
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
}
