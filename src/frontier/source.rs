//! Where the work comes from and which of it is wanted: the listing pages (by template
//! or by next links) or a `--urls` list, the filters, and the in-memory walk a source
//! starts as (from its first page, or from where an earlier walker left it).

use url::Url;

use super::LocalFrontier;

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
    /// A list of image URLs (`--urls`): no pages. Read as a stream while the run goes,
    /// never held whole.
    Urls(UrlList),
}

/// A `--urls` list as the run knows it before reading it: where it is, and what a first
/// pass over it found (its length for the progress bar, its digest for a shared job).
#[derive(Clone, PartialEq, Eq)]
pub struct UrlList {
    /// The lists (files, a folder's, or stdin), their format and URL column.
    pub spec: crate::urllist::ListSpec,
    /// Rows holding a URL; `None` when the list could not be read ahead (stdin).
    pub rows: Option<u64>,
    /// A hash of the URLs in order: processes of one shared job must read the same
    /// list, wherever each keeps its copy. `None` for stdin.
    pub digest: Option<u128>,
}

impl std::fmt::Debug for UrlList {
    /// Without the path: the shared job's settings fingerprint is made from this, and
    /// two machines may keep one list under two paths.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlList").field("rows", &self.rows).field("digest", &self.digest).finish()
    }
}

impl Source {
    /// Page 1's URL (even when `--pages` starts later), or `None` for a URL list: the
    /// browser's proxy is picked for it, and the run's log names it.
    pub fn first_url(&self) -> Option<Url> {
        match self {
            Source::Pages { pages, .. } => Some(pages.url(1)),
            Source::Urls(_) => None,
        }
    }
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

/// Where a walk of listing pages stands, kept outside the process that walks it (a
/// shared job keeps it in Redis as `walk:mark`), so that another process can take the
/// walk over from there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WalkMark {
    /// Every page up to this one is finished (fetched, failed, or refused by robots.txt).
    pub done: u32,
    /// The last page, as the walk's first page stated it.
    pub last: Option<u32>,
    /// The next link of page `done`: where a walk that follows next links goes on.
    pub next: Option<Url>,
}

/// The walk of `source`'s pages from where an earlier walker of a shared job left it
/// (`mark`: the pages it finished), or from the first page when none did.
pub fn walk_from(source: &Source, lookahead: Option<usize>, mark: Option<&WalkMark>) -> LocalFrontier {
    // A shared walk keeps pages only (its images are in Redis): its sets stay in memory.
    let Some(mark) = mark else { return walk_of(source, lookahead, None) };
    let from = mark.done.saturating_add(1);
    match source {
        Source::Pages { pages, max_pages, .. } if !pages.has_template() => match &mark.next {
            Some(url) => LocalFrontier::links_from(from, url.clone()).with_max_pages(*max_pages),
            // The last page walked linked to none: the walk is over.
            None => LocalFrontier::empty(),
        },
        Source::Pages { pages, max_pages, .. } => {
            let bound = mark.last.or(*max_pages);
            if bound.is_some_and(|last| from > last) {
                return LocalFrontier::empty();
            }
            let pages = pages.clone();
            let walk = LocalFrontier::pages(from, bound.unwrap_or(from), Box::new(move |n| pages.url(n)))
                .with_max_pages(*max_pages)
                .with_lookahead(lookahead);
            match mark.last {
                Some(last) => walk.with_stated_last(last),
                None => walk,
            }
        }
        Source::Urls(_) => LocalFrontier::empty(),
    }
}

/// The in-memory frontier for `source`: a walk by template or by next links, or a list
/// of URLs to be offered (empty until then). `spill`: see [`LocalFrontier::with_sets`].
pub fn walk_of(source: &Source, lookahead: Option<usize>, spill: Option<&std::path::Path>) -> LocalFrontier {
    let frontier = match source {
        Source::Pages { pages, max_pages, .. } if !pages.has_template() => {
            LocalFrontier::links(pages.url(1)).with_max_pages(*max_pages)
        }
        Source::Pages { pages, first_page, max_pages } => {
            let pages = pages.clone();
            let last = max_pages.unwrap_or(*first_page);
            LocalFrontier::pages(*first_page, last, Box::new(move |n| pages.url(n)))
                .with_max_pages(*max_pages)
                .with_lookahead(lookahead)
        }
        Source::Urls(_) => LocalFrontier::empty(),
    };
    let expected_images = match source {
        Source::Urls(list) => list.rows.unwrap_or(0),
        Source::Pages { .. } => 0,
    };
    frontier.with_sets(spill, expected_images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontier::Frontier;

    #[test]
    fn a_walk_taken_over_starts_after_its_mark() {
        let settings_source = |template: bool| {
            let base = Url::parse("http://h.test/").unwrap();
            let path = if template { "p{page}/{item}.html" } else { "start/{item}.html" };
            let pages = PageUrls::new(base, path, "cats").unwrap();
            Source::Pages { pages, first_page: 1, max_pages: Some(50) }
        };
        let claim_pages = |mut walk: LocalFrontier| {
            let claimed =
                crate::frontier::ready(walk.claim(1, 1, &mut crate::frontier::AllGo)).ok().unwrap().unwrap();
            claimed.leases.into_iter().map(|l| l.work.url().to_string()).collect::<Vec<_>>()
        };
        // A template: the first page after the mark, then no further than the stated end.
        let mark = WalkMark { done: 3, last: Some(7), next: None };
        assert_eq!(
            claim_pages(walk_from(&settings_source(true), None, Some(&mark))),
            ["http://h.test/p4/cats.html"]
        );
        let over = WalkMark { done: 7, last: Some(7), next: None };
        assert!(claim_pages(walk_from(&settings_source(true), None, Some(&over))).is_empty(), "nothing left");
        // Next links: where page `done` linked to; none, and the walk is over.
        let next = Url::parse("http://h.test/list?after=3").unwrap();
        let mark = WalkMark { done: 3, last: None, next: Some(next.clone()) };
        assert_eq!(claim_pages(walk_from(&settings_source(false), None, Some(&mark))), [next.to_string()]);
        let end = WalkMark { done: 3, last: None, next: None };
        assert!(claim_pages(walk_from(&settings_source(false), None, Some(&end))).is_empty());
    }
}
