//! Page HTML + page URL -> the images on it, one per image element, and the page count it
//! states.
//!
//! Pure and synchronous: `scraper::Html` is `!Send`, so a document is parsed and dropped
//! inside [`Extractor::scan`] and only owned URLs leave it. Never imports actix.
//!
//! The rules (docs/EXTRACTION.md says why each exists):
//! - one URL per image element: an `<img>` with its `<picture>`'s `<source>`s, or a
//!   `<picture>` alone, chooses among all their candidates ([`Extractor::choose`]);
//! - lazy-loading attributes (`data-*`) before `srcset`/`src`, any other `data-*` shaped
//!   like an image where those offer nothing real ([`lazy`]); placeholders last;
//!   values that are not URLs never;
//! - `<noscript>` read as markup; its image and its lazy twin beside it are one image;
//! - `<template>` is inert;
//! - an `<a href>` to an image file is an image, and replaces the thumbnail it wraps
//!   (`LINKED_IMAGES`), which stays as its fallback;
//! - a listing page's next link (`NEXT_SELECTOR`) and its links to a page per image
//!   (`DETAIL_SELECTOR`), whose thumbnails they replace; a detail page
//!   ([`Extractor::scan_detail`]) yields its largest image ([`detail`]).

pub mod detail;
pub mod lazy;
pub mod next;
pub mod pager;
pub mod parse;
pub mod placeholder;
pub mod srcset;

use std::collections::HashSet;

use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node, Selector};
use serde::{Deserialize, Serialize};
use url::Url;

use detail::Dims;
pub use detail::{DetailImages, DetailRules};
use placeholder::is_placeholder;
use srcset::Size;

/// What the site-specific settings say about where images and the page count are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractRules {
    /// CSS selector of the elements that carry an image URL (`IMAGE_SELECTOR`).
    pub image_selector: String,
    /// Attributes read on each element (`IMAGE_ATTRIBUTES`): `data-*` ones (what lazy
    /// loaders read) before the others; a name ending in `srcset` is parsed as a srcset.
    /// Among all candidates the largest wins; ties go to the earlier attribute.
    pub attributes: Vec<String>,
    /// Keep only URLs whose host contains this; empty keeps all (`IMAGE_HOST`).
    pub image_host: String,
    /// Element whose text states the page count, e.g. `Page 1 of 48`; empty disables
    /// clamping (`PAGE_COUNT_SELECTOR`).
    pub page_count_selector: String,
    /// What to do with `<a href>`s to image files (`LINKED_IMAGES`).
    pub linked_images: LinkedImages,
    /// Links that are images whatever their extension (`LINK_SELECTOR`); empty: none.
    pub link_selector: String,
    /// Elements whose `href` is the next listing page (`NEXT_SELECTOR`), so a walk can go
    /// on where no template numbers the pages; empty: a scan never finds one. `None`: the
    /// default rules ([`next`]), since most real pagers carry no `rel=next` and a CSS
    /// selector cannot say "a link whose text is Next, unless it is marked previous".
    pub next_selector: Option<String>,
    /// Links to a page per image, and what such a page yields (`DETAIL_*`).
    pub detail: DetailRules,
}

/// `LINKED_IMAGES`: what an `<a href>` to an image file means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkedImages {
    /// The link target is the image; a thumbnail inside the link is only its fallback.
    #[default]
    Prefer,
    /// The link target and the thumbnail are both downloaded.
    Both,
    /// Links are not images.
    Off,
}

/// Which rule found an image: shown in the report so a user can see why it was chosen.
// Deserialize: an offer's `Meta` is stored as JSON by the Redis frontier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Element {
    Img,
    Picture,
    Noscript,
    Link,
}

impl Element {
    pub fn as_str(self) -> &'static str {
        match self {
            Element::Img => "img",
            Element::Picture => "picture",
            Element::Noscript => "noscript",
            Element::Link => "link",
        }
    }
}

/// One image of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub url: Url,
    pub element: Element,
    /// For a link target: the best candidate of the thumbnail it wraps, to download
    /// instead when the target turns out to be a page, not an image (MediaWiki's
    /// `File:` links).
    pub fallback: Option<Url>,
}

impl Found {
    pub fn img(url: Url) -> Self {
        Self { url, element: Element::Img, fallback: None }
    }
}

/// What one page yielded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageScan {
    /// Distinct absolute http(s) image URLs, in document order, after the host filter.
    /// Thumbnails inside detail links are not among them: their detail pages' images
    /// replace them.
    pub images: Vec<Found>,
    /// The last number in the page-count element's text, if there is one.
    pub page_count: Option<u32>,
    /// The first `NEXT_SELECTOR` match (or, with none set, the first link the default
    /// rules of [`next`] find) whose `href` is an http(s) URL other than the page's own
    /// (fragment stripped): where a walk without a template goes next. Never
    /// set on a detail page (one level only).
    pub next: Option<Url>,
    /// Distinct http(s) targets of the `DETAIL_SELECTOR` links, in document order
    /// (fragments stripped): the pages whose images replace the thumbnails inside those
    /// links. Never set on a detail page.
    pub details: Vec<Url>,
    /// What looks like a pager on a listing page with no next link recognised, in words
    /// ([`pager::pager`]): a walk ending there says `NEXT_SELECTOR` may be what is missing.
    pub pager: Option<String>,
    /// Distinct image URLs the host filter (`IMAGE_HOST`) dropped, so a run can say how
    /// many and why instead of finding nothing silently.
    pub other_hosts: Vec<Url>,
    /// Set by the fetch core, not the extractor: how the page was rendered (or that it
    /// wanted a render and no browser was there), for its report entry.
    pub render: Option<Box<crate::report::RenderNote>>,
}

impl PageScan {
    /// The image URLs alone.
    pub fn urls(&self) -> impl Iterator<Item = &Url> {
        self.images.iter().map(|f| &f.url)
    }
}

/// An attribute to read, as configured.
#[derive(Debug)]
struct Attribute {
    /// Lower-cased.
    name: String,
    srcset: bool,
    /// Set by a lazy loader's script: where the real image is when the page also has a
    /// placeholder in `src`/`srcset`.
    lazy: bool,
}

/// [`ExtractRules`] with the selectors parsed once.
#[derive(Debug)]
pub struct Extractor {
    image: Selector,
    attributes: Vec<Attribute>,
    /// Lower-cased, since `Url` lower-cases hosts.
    host: String,
    page_count: Option<Selector>,
    /// `<base href>` changes what relative URLs resolve against, as in a browser.
    base: Selector,
    links: LinkedImages,
    link_selector: Option<Selector>,
    next: NextRule,
    /// `DETAIL_SELECTOR`: links to a page per image, on listing pages.
    detail_links: Option<Selector>,
    /// `DETAIL_IMAGE_SELECTOR`: the images of a detail page; `None`: `image`'s. When set,
    /// it alone says what an image is there: links it matches are linked originals
    /// whatever their extension, links it does not match are not images.
    detail_image: Option<Selector>,
    detail_images: DetailImages,
}

/// How a listing page's next link is found (`NEXT_SELECTOR`).
#[derive(Debug)]
enum NextRule {
    /// `NEXT_SELECTOR: ""`.
    Off,
    /// The user's selector, alone.
    Selector(Selector),
    /// Not set: `rel=next`, then links marked or worded next ([`next`]).
    Default(next::DefaultNext),
}

/// One candidate URL of an element, as written, ranked. Resolved only once chosen: a
/// URL join costs more than everything else done per candidate.
#[derive(Debug, Clone)]
struct Candidate<'a> {
    raw: &'a str,
    size: Size,
    /// From a `data-*` attribute.
    lazy: bool,
    /// A spacer or placeholder file name.
    placeholder: bool,
    /// The `<img>`'s own (not a `<source>`'s): the format every browser takes.
    own: bool,
    /// Position of its attribute in the configured list: earlier wins a tie.
    rank: usize,
}

/// What one image element chose, with what the choice was made from.
#[derive(Debug, Clone)]
struct Pick {
    url: Url,
    size: Size,
    lazy: bool,
    placeholder: bool,
    /// The element's `width`/`height` attributes: read only where the largest image of
    /// a detail page is wanted, since reading attributes per element costs.
    dims: Dims,
}

/// An image found, before duplicates are dropped.
struct Entry {
    found: Found,
    /// Its element's choice, for comparing a `<noscript>` image with its twin.
    pick: Option<Pick>,
    /// Its element in the document; `None` for one inside a `<noscript>` (another tree)
    /// and for links, which are never a `<noscript>`'s twin.
    node: Option<ego_tree::NodeId>,
}

/// A link to an image file being walked: the images inside it are its thumbnail.
struct OpenLink {
    node: ego_tree::NodeId,
    /// Whether `node` is in a `<noscript>`'s fragment rather than the document.
    in_noscript: bool,
    entry: usize,
}

/// A `<noscript>` whose image still looks for its lazy twin among the images that follow.
struct WaitingTwin {
    entry: usize,
    /// The `<noscript>`'s parent: the twin is inside it.
    scope: ego_tree::NodeId,
}

/// A detail link being walked: the images inside it are the thumbnails its page replaces.
struct OpenDetail {
    node: ego_tree::NodeId,
    in_noscript: bool,
}

/// State of one walk over a document (and the fragments of its `<noscript>`s).
struct Walk<'a> {
    base: &'a Url,
    /// A detail page: its own image selector, no detail links, sizes read for `largest`.
    detail_page: bool,
    entries: Vec<Entry>,
    link: Option<OpenLink>,
    twin: Option<WaitingTwin>,
    /// Targets of detail links, in document order, duplicates included.
    details: Vec<Url>,
    detail: Option<OpenDetail>,
    /// Image URLs the host filter dropped, duplicates included.
    other_hosts: Vec<Url>,
}

/// A CSS selector, or a message naming `what` it was for and why it is not one.
pub fn parse_selector(css: &str, what: &str) -> Result<Selector, String> {
    Selector::parse(css).map_err(|e| {
        // Some of scraper's messages span lines; settings errors are one line.
        let why =
            e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(": ");
        format!("{what} {css:?} is not a valid CSS selector: {why}")
    })
}

/// A selector that may be off: empty (or blank) is `None`.
fn optional_selector(css: &str, what: &str) -> Result<Option<Selector>, String> {
    match css.trim() {
        "" => Ok(None),
        css => parse_selector(css, what).map(Some),
    }
}

impl Extractor {
    /// Fails with a message naming the bad selector.
    pub fn new(rules: &ExtractRules) -> Result<Self, String> {
        let page_count = optional_selector(&rules.page_count_selector, "page-count selector")?;
        let link_selector = optional_selector(&rules.link_selector, "link selector")?;
        let attributes: Vec<Attribute> = rules
            .attributes
            .iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .map(|name| Attribute { srcset: name.ends_with("srcset"), lazy: name.starts_with("data-"), name })
            .collect();
        if attributes.is_empty() {
            return Err("no image attribute to read".into());
        }
        Ok(Self {
            image: parse_selector(&rules.image_selector, "image selector")?,
            attributes,
            host: rules.image_host.trim().to_ascii_lowercase(),
            page_count,
            base: Selector::parse("base[href]").expect("static selector"),
            links: rules.linked_images,
            link_selector,
            next: match &rules.next_selector {
                None => NextRule::Default(next::DefaultNext::default()),
                Some(css) => {
                    optional_selector(css, "next-link selector")?.map_or(NextRule::Off, NextRule::Selector)
                }
            },
            detail_links: optional_selector(&rules.detail.selector, "detail-link selector")?,
            detail_image: optional_selector(&rules.detail.image_selector, "detail-image selector")?,
            detail_images: rules.detail.images,
        })
    }

    /// A listing page: its images, one per image element, distinct, in document order (a
    /// `<noscript>`'s where the `<noscript>` is); the page count it states; its next link;
    /// its detail links. One parse for all of it.
    pub fn scan(&self, html: &str, page_url: &Url) -> PageScan {
        self.scan_page(html, page_url, false)
    }

    /// A detail page (one reached by a `DETAIL_SELECTOR` link): its images by
    /// `DETAIL_IMAGE_SELECTOR` (else as on a listing page), only the largest with
    /// `DETAIL_IMAGES: largest` ([`detail`] says what largest means). No page count, no
    /// next link, no detail links: one level only.
    pub fn scan_detail(&self, html: &str, page_url: &Url) -> PageScan {
        self.scan_page(html, page_url, true)
    }

    fn scan_page(&self, html: &str, page_url: &Url, detail_page: bool) -> PageScan {
        let doc = parse::document(html).html;
        let base = doc
            .select(&self.base)
            .next()
            .and_then(|e| e.value().attr("href"))
            .and_then(|href| page_url.join(href.trim()).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .unwrap_or_else(|| page_url.clone());

        let mut walk = Walk {
            base: &base,
            detail_page,
            entries: Vec::new(),
            link: None,
            twin: None,
            details: Vec::new(),
            detail: None,
            other_hosts: Vec::new(),
        };
        self.walk(&doc, false, &mut walk);
        let mut seen = HashSet::new();
        let mut entries: Vec<Entry> =
            walk.entries.into_iter().filter(|e| seen.insert(e.found.url.clone())).collect();
        let other_hosts = distinct(walk.other_hosts);
        if detail_page {
            if self.detail_images == DetailImages::Largest
                && let Some(best) = detail::largest(&entries)
            {
                entries = vec![entries.swap_remove(best)];
            }
            return PageScan {
                images: entries.into_iter().map(|e| e.found).collect(),
                other_hosts,
                ..PageScan::default()
            };
        }
        let page_count = self
            .page_count
            .as_ref()
            .and_then(|s| doc.select(s).next())
            .and_then(|e| last_number(&e.text().collect::<String>()));
        let details = distinct(walk.details);
        let next = self.next_link(&doc, &base, page_url);
        let pager = if next.is_none() { pager::pager(&doc) } else { None };
        PageScan {
            images: entries.into_iter().map(|e| e.found).collect(),
            page_count,
            next,
            details,
            other_hosts,
            pager,
            render: None,
        }
    }

    /// The first next link that leads somewhere else. Elements in a `<template>` are
    /// inert, as for images.
    fn next_link(&self, doc: &Html, base: &Url, page_url: &Url) -> Option<Url> {
        let mut here = page_url.clone();
        here.set_fragment(None);
        let selector = match &self.next {
            NextRule::Off => return None,
            NextRule::Default(rules) => return rules.find(doc, &here, |href| self.resolve(href, base)),
            NextRule::Selector(selector) => selector,
        };
        doc.select(selector)
            .filter(|e| !e.ancestors().filter_map(ElementRef::wrap).any(|a| a.value().name() == "template"))
            .filter_map(|e| self.resolve(e.value().attr("href")?, base))
            .find(|url| *url != here)
    }

    /// Every image of `doc` in document order, into `walk`. `<template>` contents are
    /// skipped: a browser never shows them as they are.
    fn walk(&self, doc: &Html, in_noscript: bool, walk: &mut Walk<'_>) {
        let mut inert = 0usize;
        // `<picture>`s already taken as one image (ids of this tree only).
        let mut pictures = HashSet::new();
        // `Selector::matches` builds its caches anew on every call; `select` shares them.
        let selector = match (&self.detail_image, walk.detail_page) {
            (Some(detail), true) => detail,
            _ => &self.image,
        };
        let images: parse::IdSet = doc.select(selector).map(|e| e.id()).collect();
        let details: parse::IdSet = match (&self.detail_links, walk.detail_page) {
            (Some(links), false) => doc.select(links).map(|e| e.id()).collect(),
            _ => parse::IdSet::default(),
        };
        for edge in doc.tree.root().traverse() {
            match edge {
                Edge::Open(node) => {
                    let Some(element) = ElementRef::wrap(node) else { continue };
                    let name = element.value().name();
                    if name == "template" {
                        inert += 1;
                    }
                    if inert == 0 {
                        let id = element.id();
                        let seen = Seen { image: images.contains(&id), detail: details.contains(&id) };
                        self.open(element, seen, in_noscript, &mut pictures, walk);
                    }
                }
                Edge::Close(node) => {
                    let Some(element) = ElementRef::wrap(node) else { continue };
                    if element.value().name() == "template" {
                        inert -= 1;
                    }
                    // Ids are per tree: a `<noscript>`'s fragment has its own.
                    if walk.link.as_ref().is_some_and(|l| l.node == node.id() && l.in_noscript == in_noscript)
                    {
                        walk.link = None;
                    }
                    if walk
                        .detail
                        .as_ref()
                        .is_some_and(|d| d.node == node.id() && d.in_noscript == in_noscript)
                    {
                        walk.detail = None;
                    }
                    if !in_noscript && walk.twin.as_ref().is_some_and(|t| t.scope == node.id()) {
                        walk.twin = None;
                    }
                }
            }
        }
    }

    fn open(
        &self,
        element: ElementRef<'_>,
        seen: Seen,
        in_noscript: bool,
        pictures: &mut HashSet<ego_tree::NodeId>,
        walk: &mut Walk<'_>,
    ) {
        // A detail link is that, not a linked image, even when it names an image file.
        if seen.detail && walk.detail.is_none() {
            self.detail_link(element, in_noscript, walk);
        } else {
            match element.value().name() {
                "noscript" if !in_noscript => self.noscript(element, walk),
                "a" if walk.link.is_none() && walk.detail.is_none() => {
                    self.link(element, seen.image, in_noscript, walk)
                }
                _ => {}
            }
        }
        if !seen.image {
            return;
        }
        let (unit, kind) = unit_of(element);
        if kind == Element::Picture && !pictures.insert(unit.id()) {
            return;
        }
        let kind = if in_noscript { Element::Noscript } else { kind };
        let mut pick = self.choose(unit, walk.base);
        if walk.detail_page
            && self.detail_images == DetailImages::Largest
            && let Some(pick) = &mut pick
        {
            pick.dims = Dims::of(unit);
        }
        self.emit(pick, kind, element, walk);
    }

    /// A link to a page per image: its target is a detail page, and the thumbnail inside
    /// it is not an image of this page (the detail page's replaces it). One whose target
    /// is no http(s) URL leads nowhere, so its thumbnail stays.
    fn detail_link(&self, element: ElementRef<'_>, in_noscript: bool, walk: &mut Walk<'_>) {
        let Some(url) = element.value().attr("href").and_then(|href| self.resolve(href, walk.base)) else {
            return;
        };
        walk.details.push(url);
        walk.detail = Some(OpenDetail { node: element.id(), in_noscript });
    }

    /// Adds what an image element chose: as a link's thumbnail, as a `<noscript>`'s twin,
    /// or as an image of its own. A detail link's thumbnail is dropped.
    fn emit(&self, pick: Option<Pick>, kind: Element, element: ElementRef<'_>, walk: &mut Walk<'_>) {
        let Some(pick) = pick else { return };
        if walk.detail.is_some() {
            // Not a `<noscript>`'s twin either: that would bring it back.
            walk.twin = None;
            return;
        }
        if let Some(link) = &walk.link
            && self.links == LinkedImages::Prefer
        {
            let entry = &mut walk.entries[link.entry];
            if entry.found.fallback.is_none() && self.host_allowed(&pick.url) {
                entry.found.fallback = Some(pick.url);
            }
            // Absorbed by the link: not a `<noscript>`'s twin either.
            walk.twin = None;
            return;
        }
        if !self.host_allowed(&pick.url) {
            walk.other_hosts.push(pick.url);
            return;
        }
        let node = (kind != Element::Noscript).then(|| element.id());
        // The image just after a `<noscript>` may be its twin; any other ends the wait.
        if let Some(twin) = walk.twin.take_if(|_| node.is_some())
            && near(element.tree(), element.id(), twin.scope)
        {
            merge(&mut walk.entries[twin.entry], pick, kind);
            walk.entries[twin.entry].node = node;
            return;
        }
        let found = Found { url: pick.url.clone(), element: kind, fallback: None };
        walk.entries.push(Entry { found, pick: Some(pick), node });
    }

    /// A `<noscript>`'s text read as markup, as a browser with scripting off reads it.
    /// Its one image and the lazy image beside it (just before or just after it, under
    /// the same parent) are one image: the better is kept.
    fn noscript(&self, element: ElementRef<'_>, walk: &mut Walk<'_>) {
        let text: String = element.text().collect();
        if !text.contains('<') {
            return;
        }
        let fragment = parse::fragment(&text).html;
        let before = walk.entries.len();
        self.walk(&fragment, true, walk);
        // One image, not a link (links have no twin), and not absorbed by a link around.
        if walk.entries.len() != before + 1 || walk.link.is_some() || walk.entries[before].pick.is_none() {
            return;
        }
        let Some(scope) = element.parent().map(|p| p.id()) else { return };
        let twin_before = before
            .checked_sub(1)
            .filter(|&prev| walk.entries[prev].node.is_some_and(|n| near(element.tree(), n, scope)));
        match twin_before {
            Some(prev) => {
                let noscript = walk.entries.pop().expect("just added").pick.expect("an image has a pick");
                merge(&mut walk.entries[prev], noscript, Element::Noscript);
            }
            None => walk.twin = Some(WaitingTwin { entry: before, scope }),
        }
    }

    /// An `<a href>` to an image file: an image, and the thumbnail inside it its fallback.
    /// On a detail page with `DETAIL_IMAGE_SELECTOR`, a link it matches (`image`) is one
    /// whatever its target's extension, and no other link is.
    fn link(&self, element: ElementRef<'_>, image: bool, in_noscript: bool, walk: &mut Walk<'_>) {
        let chosen = walk.detail_page && self.detail_image.is_some();
        if (chosen && !image) || (!chosen && self.links == LinkedImages::Off) {
            return;
        }
        let Some(href) = element.value().attr("href") else { return };
        // Most links lead to pages: tell by the text before paying for a URL.
        let by_selector = chosen || self.link_selector.as_ref().is_some_and(|s| s.matches(&element));
        if !by_selector && !names_an_image_file(href) {
            return;
        }
        let Some(url) = self.resolve(href, walk.base) else { return };
        if !(by_selector || has_image_extension(&url)) {
            return;
        }
        if !self.host_allowed(&url) {
            walk.other_hosts.push(url);
            return;
        }
        walk.entries.push(Entry {
            found: Found { url, element: Element::Link, fallback: None },
            pick: None,
            node: None,
        });
        walk.link = Some(OpenLink { node: element.id(), in_noscript, entry: walk.entries.len() - 1 });
    }

    /// The one URL an image element stands for: the largest of its real candidates.
    fn choose(&self, unit: ElementRef<'_>, base: &Url) -> Option<Pick> {
        let mut candidates = Vec::new();
        let members = members(unit);
        for &(element, own) in &members {
            self.candidates_of(element, own, &mut candidates);
        }
        // Known attributes first; any other `data-*` only where they offer no real image.
        if best_candidate(&candidates).is_none_or(|best| candidates[best].placeholder) {
            for &(element, own) in &members {
                self.unlisted_lazy_of(element, own, &mut candidates);
            }
        }
        // The best that resolves to an http(s) URL (almost always the best of all).
        loop {
            let best = best_candidate(&candidates)?;
            let c = &candidates[best];
            match self.resolve(c.raw, base) {
                Some(url) => {
                    let dims = Dims::default();
                    return Some(Pick { url, size: c.size, lazy: c.lazy, placeholder: c.placeholder, dims });
                }
                None => _ = candidates.swap_remove(best),
            }
        }
    }

    fn candidates_of<'a>(&self, element: ElementRef<'a>, own: bool, out: &mut Vec<Candidate<'a>>) {
        // The element's attributes, matched against ours by name: `Element::attr` interns
        // its argument as an atom on every call, which was a dozen interning lookups per
        // element. Candidates carry their attribute's rank, so the order they are found
        // in does not change which one wins.
        for (name, value) in element.value().attrs() {
            let Some((rank, attribute)) = self.attributes.iter().enumerate().find(|(_, a)| a.name == name)
            else {
                continue;
            };
            let mut push = |raw: &'a str, size: Size| {
                let raw = raw.trim_matches(|c: char| c.is_ascii_whitespace());
                // `src` and `srcset` hold URLs by definition, and a browser fetches a bare
                // `photo` or `img-a` as one; only a script's `data-*` attribute may hold
                // anything. A `data:` URI is a placeholder by nature and never downloaded;
                // a bare fragment (`#`) is the page itself.
                if (attribute.lazy && !looks_like_url(raw)) || !is_image_reference(raw) {
                    return;
                }
                let placeholder = is_placeholder(raw);
                out.push(Candidate { raw, size, lazy: attribute.lazy, placeholder, own, rank });
            };
            if attribute.srcset {
                for c in srcset::parse(value) {
                    push(c.url, c.size);
                }
            } else {
                let value = value.trim();
                // Inner whitespace in a `data-*` value: template text or prose for a
                // script, not a URL. A `src` is fetched by the browser as it is, spaces
                // and all (`My Photo.jpg`), so it is a URL whatever it holds.
                if !(attribute.lazy && value.contains(char::is_whitespace)) {
                    push(value, Size::Density(1.0));
                }
            }
        }
    }

    /// The candidates of an `<img>`'s or `<source>`'s `data-*` attributes that are not
    /// in `IMAGE_ATTRIBUTES` but hold an image's URL by shape ([`lazy`]). They rank after
    /// every configured attribute, so among equals a known one wins.
    fn unlisted_lazy_of<'a>(&self, element: ElementRef<'a>, own: bool, out: &mut Vec<Candidate<'a>>) {
        if !matches!(element.value().name(), "img" | "source") {
            return;
        }
        for (i, (name, value)) in element.value().attrs().enumerate() {
            if !name.starts_with("data-") || self.attributes.iter().any(|a| a.name == name) {
                continue;
            }
            for c in lazy::image_candidates(name, value) {
                let placeholder = is_placeholder(c.url);
                let rank = self.attributes.len() + i;
                out.push(Candidate { raw: c.url, size: c.size, lazy: true, placeholder, own, rank });
            }
        }
    }

    /// An absolute http(s) URL without a fragment, or `None`.
    fn resolve(&self, raw: &str, base: &Url) -> Option<Url> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        let mut url = base.join(raw).ok()?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return None;
        }
        url.set_fragment(None);
        Some(url)
    }

    fn host_allowed(&self, url: &Url) -> bool {
        host_matches(&self.host, url)
    }
}

/// Which of the page's selectors matched an element.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The image selector (`DETAIL_IMAGE_SELECTOR` on a detail page).
    image: bool,
    /// `DETAIL_SELECTOR`, on a listing page.
    detail: bool,
}

/// The image element `element` belongs to: its `<picture>` when it is an `<img>` or a
/// `<source>` in one, else itself.
fn unit_of(element: ElementRef<'_>) -> (ElementRef<'_>, Element) {
    let name = element.value().name();
    if matches!(name, "img" | "source")
        && let Some(picture) = element.parent().and_then(ElementRef::wrap)
        && picture.value().name() == "picture"
    {
        return (picture, Element::Picture);
    }
    if name == "picture" {
        return (element, Element::Picture);
    }
    (element, Element::Img)
}

/// The elements whose candidates an image element chooses among, each with whether it is
/// the `<img>` itself: a `<picture>`'s `<source>`s and `<img>`, or the element alone.
fn members(unit: ElementRef<'_>) -> Vec<(ElementRef<'_>, bool)> {
    if unit.value().name() != "picture" {
        return vec![(unit, true)];
    }
    unit.children()
        .filter_map(ElementRef::wrap)
        .filter_map(|child| match child.value().name() {
            "source" => Some((child, false)),
            "img" => Some((child, true)),
            _ => None,
        })
        .collect()
}

/// The index of the best candidate: real before placeholders, lazy before the rest (a
/// lazy loader's real image beats the `src` it will replace), then [`outranks`].
fn best_candidate(candidates: &[Candidate<'_>]) -> Option<usize> {
    let class = |c: &Candidate<'_>| (!c.placeholder, c.lazy);
    (0..candidates.len()).reduce(|best, i| {
        let (c, b) = (&candidates[i], &candidates[best]);
        if class(c) > class(b) || (class(c) == class(b) && outranks(c, b)) { i } else { best }
    })
}

/// Whether `c` beats `best`: a larger width, else (no widths) a larger density; a width
/// beats any density. Ties: the `<img>`'s own, then the earlier attribute; else the first.
fn outranks(c: &Candidate<'_>, best: &Candidate<'_>) -> bool {
    let key = |c: &Candidate<'_>| match c.size {
        Size::Width(w) => (1u8, f64::from(w)),
        Size::Density(x) => (0u8, x),
    };
    let (a, b) = (key(c), key(best));
    if a != b {
        return a.0 > b.0 || (a.0 == b.0 && a.1 > b.1);
    }
    (c.own, std::cmp::Reverse(c.rank)) > (best.own, std::cmp::Reverse(best.rank))
}

/// Whether a `<noscript>` image (`noscript`) is better than its lazy twin's (`twin`): the
/// twin's choice was only a placeholder, or not a lazy loader's real image while the two
/// differ, or the `<noscript>` one is wider.
fn noscript_wins(noscript: &Pick, twin: &Pick) -> bool {
    if twin.placeholder && !noscript.placeholder {
        return true;
    }
    match (noscript.size, twin.size) {
        (Size::Width(a), Size::Width(b)) if a != b => a > b,
        (Size::Width(_), Size::Density(_)) => true,
        (Size::Density(_), Size::Width(_)) => false,
        // The twin's `src` without a lazy attribute is a low-quality stand-in.
        _ => !twin.lazy,
    }
}

/// Two images that are one (a `<noscript>` image and its lazy twin): `entry` keeps its
/// place in the page and becomes the better of the two; `other` is the one met second.
fn merge(entry: &mut Entry, other: Pick, kind: Element) {
    let mine = entry.pick.clone().expect("an image has a pick");
    let other_wins =
        if kind == Element::Noscript { noscript_wins(&other, &mine) } else { !noscript_wins(&mine, &other) };
    if other_wins {
        entry.found = Found { url: other.url.clone(), element: kind, fallback: None };
        entry.pick = Some(other);
    }
}

/// Whether the element `node` sits within three levels under `scope` (a `<noscript>`'s
/// parent): close enough to be the `<noscript>`'s twin.
fn near(tree: &ego_tree::Tree<Node>, node: ego_tree::NodeId, scope: ego_tree::NodeId) -> bool {
    tree.get(node).is_some_and(|n| n.ancestors().take(3).any(|a| a.id() == scope))
}

/// Whether a URL as written can name an image at all: not empty, not a `data:` URI (a
/// placeholder, never downloaded), not a bare fragment (the page itself).
fn is_image_reference(raw: &str) -> bool {
    !raw.is_empty() && !raw.starts_with('#') && !raw.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("data:"))
}

/// Not a URL: JSON (`{"default": ...}`), a list, or template text (`{{ src }}`, `${x}`,
/// `<%= %>`), which pages leave in `data-*` attributes for their scripts.
fn looks_like_url(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.is_empty() || matches!(b[0], b'{' | b'[') {
        return false;
    }
    let (mut dot_or_slash, mut marker) = (false, false);
    for &c in b {
        dot_or_slash |= c == b'.' || c == b'/';
        marker |= c == b'{' || c == b'<';
    }
    // Every template marker holds a `{` or a `<`: look closer only when one is there.
    dot_or_slash
        && !(marker && (raw.contains("{{") || raw.contains("{%") || raw.contains("${") || raw.contains("<%")))
}

/// Extensions of image files, for links (`<a href="full/photo.jpg">`).
const IMAGE_EXTENSIONS: &[&str] =
    &["jpg", "jpeg", "png", "gif", "webp", "avif", "bmp", "tif", "tiff", "svg", "heic"];

/// `urls` in document order, each once.
fn distinct(urls: Vec<Url>) -> Vec<Url> {
    let mut seen = HashSet::new();
    urls.into_iter().filter(|u| seen.insert(u.clone())).collect()
}

/// The host filter's rule, for `IMAGE_HOST` and `PAGE_HOST` alike: `url`'s host contains
/// `filter` (already lower-cased); an empty filter takes any host. A filter ending in a
/// port (`127.0.0.1:8080`) takes only that port too (the scheme's default when the URL
/// names none): two servers on one machine differ only by it.
pub fn host_matches(filter: &str, url: &Url) -> bool {
    if filter.is_empty() {
        return true;
    }
    let (host, port) = split_port(filter);
    url.host_str().is_some_and(|h| h.contains(host))
        && port.is_none_or(|port| url.port_or_known_default() == Some(port))
}

/// `host:port` -> (`host`, port); an IPv6 address needs its brackets (`[::1]:8080`) for
/// its last group not to be read as a port.
fn split_port(filter: &str) -> (&str, Option<u16>) {
    match filter.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && (!host.contains(':') || host.ends_with(']')) => {
            match port.parse() {
                Ok(port) => (host, Some(port)),
                Err(_) => (filter, None),
            }
        }
        _ => (filter, None),
    }
}

/// Whether the URL's path names an image file (a query may follow).
pub fn has_image_extension(url: &Url) -> bool {
    ends_in_image_extension(url.path())
}

fn ends_in_image_extension(path: &str) -> bool {
    let name = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    let Some(dot) = name.rfind('.') else { return false };
    let ext = name[dot + 1..].trim_end();
    (3..=4).contains(&ext.len()) && IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext))
}

/// A quick look at an `href` as written: could it name an image file? (The resolved URL
/// decides; this only spares resolving the links that plainly lead to pages.)
fn names_an_image_file(href: &str) -> bool {
    let path = &href[..href.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(href.len())];
    // Percent-encoded dots and the like are left to the URL parser.
    ends_in_image_extension(path) || path.contains('%')
}

/// `Page 1 of 48` -> 48; `of 48` -> 48; no digits -> None.
pub fn last_number(text: &str) -> Option<u32> {
    let end = text.rfind(|c: char| c.is_ascii_digit())? + 1;
    // The character before the digits may be several bytes long (`共48页`).
    let start = text[..end].trim_end_matches(|c: char| c.is_ascii_digit()).len();
    text[start..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(selector: &str, attributes: &[&str], host: &str) -> ExtractRules {
        ExtractRules {
            image_selector: selector.into(),
            attributes: attributes.iter().map(|s| s.to_string()).collect(),
            image_host: host.into(),
            page_count_selector: "li.pag-text".into(),
            linked_images: LinkedImages::Prefer,
            link_selector: String::new(),
            next_selector: Some(String::new()),
            detail: DetailRules::default(),
        }
    }

    fn scan(rules: &ExtractRules, html: &str, page: &str) -> PageScan {
        Extractor::new(rules).unwrap().scan(html, &Url::parse(page).unwrap())
    }

    fn urls(scan: &PageScan) -> Vec<&str> {
        scan.urls().map(Url::as_str).collect()
    }

    #[test]
    fn resolves_relative_urls_against_the_page() {
        let html = r#"<img src="a.jpg"><img src="/b.jpg"><img src="../c.jpg">
            <img src="//cdn.example/d.jpg"><img src="https://x.example/e.jpg#frag">"#;
        let s = scan(&rules("img", &["src"], ""), html, "http://site.example/p2/cats.html");
        assert_eq!(
            urls(&s),
            [
                "http://site.example/p2/a.jpg",
                "http://site.example/b.jpg",
                "http://site.example/c.jpg",
                "http://cdn.example/d.jpg",
                "https://x.example/e.jpg",
            ]
        );
    }

    #[test]
    fn base_href_is_respected() {
        let html = r#"<head><base href="https://img.example/g/"></head><img src="a.jpg">"#;
        let s = scan(&rules("img", &["src"], ""), html, "http://site.example/p1/x.html");
        assert_eq!(urls(&s), ["https://img.example/g/a.jpg"]);
    }

    #[test]
    fn host_filter_keeps_hosts_containing_the_text() {
        let html = r#"<img src="https://images.stockfreeimages.com/1.jpg">
            <img src="https://www.stockfreeimages.com/logo.png">
            <img src="/local.jpg">"#;
        let r = rules("img", &["src"], "images.stockfreeimages.com");
        let s = scan(&r, html, "https://www.stockfreeimages.com/p1/cats.html");
        assert_eq!(urls(&s), ["https://images.stockfreeimages.com/1.jpg"]);
        let all = scan(&rules("img", &["src"], ""), html, "https://www.stockfreeimages.com/p1/cats.html");
        assert_eq!(all.images.len(), 3);
        // What the filter dropped is told, once per URL, so a run can count it.
        let twice = format!("{html}<img src=/local.jpg><a href=https://other.example/big.jpg>x</a>");
        let dropped = scan(&r, &twice, "https://www.stockfreeimages.com/p1/cats.html").other_hosts;
        let dropped: Vec<&str> = dropped.iter().map(Url::as_str).collect();
        assert_eq!(
            dropped,
            [
                "https://www.stockfreeimages.com/logo.png",
                "https://www.stockfreeimages.com/local.jpg",
                "https://other.example/big.jpg"
            ]
        );
        assert!(all.other_hosts.is_empty());
    }

    #[test]
    fn a_host_filter_with_a_port_takes_that_port_only() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(host_matches("127.0.0.1:8080", &url("http://127.0.0.1:8080/a.png")));
        assert!(!host_matches("127.0.0.1:8080", &url("http://127.0.0.1:9090/a.png")));
        assert!(!host_matches("127.0.0.1:8080", &url("http://127.0.0.1/a.png")));
        assert!(host_matches("example.com:443", &url("https://cdn.example.com/a.png")), "the default port");
        assert!(host_matches("127.0.0.1", &url("http://127.0.0.1:9090/a.png")), "no port: any port");
        assert!(host_matches("[::1]:8080", &url("http://[::1]:8080/a.png")));
        assert!(host_matches("::1", &url("http://[::1]:8080/a.png")), "no brackets: no port");
    }

    #[test]
    fn duplicates_data_uris_and_junk_are_dropped() {
        let html = r#"<img src="a.jpg"><img src="a.jpg"><img src="a.jpg#x">
            <img src="data:image/png;base64,AAAA"><img src="javascript:alert(1)">
            <img src=""><img><img src="http://[::1">"#;
        let s = scan(&rules("img", &["src"], ""), html, "http://h.example/");
        assert_eq!(urls(&s), ["http://h.example/a.jpg"]);
    }

    #[test]
    fn first_present_attribute_wins_and_srcset_takes_the_largest() {
        let html = r#"<img src="thumb.gif" data-src="real.jpg">
            <img srcset="s.jpg 480w, l.jpg 1080w, m.jpg 800w">
            <img data-srcset="one.jpg, two.jpg 2x">
            <img src="plain.jpg">"#;
        let r = rules("img", &["data-src", "srcset", "data-srcset", "src"], "");
        let s = scan(&r, html, "http://h.example/");
        assert_eq!(
            urls(&s),
            [
                "http://h.example/real.jpg",
                "http://h.example/l.jpg",
                "http://h.example/two.jpg",
                "http://h.example/plain.jpg"
            ]
        );
    }

    #[test]
    fn page_count_is_the_last_number_of_the_element() {
        let r = rules("img", &["src"], "");
        let page = "http://h.example/";
        let s = scan(&r, r#"<ul><li class="pag-text">Page 1 of 48</li></ul>"#, page);
        assert_eq!(s.page_count, Some(48));
        let s = scan(&r, r#"<li class="pag-text">of 7</li>"#, page);
        assert_eq!(s.page_count, Some(7));
        assert_eq!(scan(&r, "<p>Page 1 of 48</p>", page).page_count, None);
        let s = scan(&r, r#"<li class="pag-text">of 99999999999</li>"#, page);
        assert_eq!(s.page_count, None);
        assert_eq!(last_number("no digits"), None);
        assert_eq!(last_number("3 of 12 pages"), Some(12));
    }

    #[test]
    fn page_count_after_a_multibyte_character() {
        // Found by tests/it/props.rs: sliced inside `共` and panicked.
        assert_eq!(last_number("第1页 共48页"), Some(48));
        assert_eq!(last_number("¡0"), Some(0));
        let r = rules("img", &["src"], "");
        let s = scan(&r, r#"<li class="pag-text">第1页 共48页</li>"#, "http://h.example/");
        assert_eq!(s.page_count, Some(48));
    }

    #[test]
    fn srcset_descriptor_ending_in_a_multibyte_character() {
        // Found by tests/it/props.rs: `1é` was split inside `é` and panicked. Not a
        // descriptor a browser accepts: the candidate is dropped.
        let r = rules("img", &["srcset"], "");
        let s = scan(&r, r#"<img srcset="a.jpg 1é, b.jpg 2x"><img srcset="c.jpg 1é">"#, "http://h.example/");
        assert_eq!(urls(&s), ["http://h.example/b.jpg"]);
        let s =
            scan(&r, r#"<img srcset="a.jpg 2x, b.jpg NaNw, c.jpg infx, d.jpg -5w">"#, "http://h.example/");
        assert_eq!(urls(&s), ["http://h.example/a.jpg"]);
    }

    #[test]
    fn bad_selectors_are_reported() {
        let mut r = rules("img[", &["src"], "");
        assert!(Extractor::new(&r).unwrap_err().contains("image selector"));
        r.image_selector = "img".into();
        r.page_count_selector = "li..x".into();
        assert!(Extractor::new(&r).unwrap_err().contains("page-count selector"));
    }

    /// The attributes `config::DEFAULT_IMAGE_ATTRIBUTES` lists (repeated: html.rs does
    /// not import the config).
    const DEFAULTS: &[&str] = &[
        "data-lazy-srcset",
        "data-srcset",
        "data-lazy-src",
        "data-src",
        "data-original",
        "data-orig-file",
        "srcset",
        "src",
    ];

    fn defaults() -> ExtractRules {
        rules("img, picture source", DEFAULTS, "")
    }

    fn found(html: &str) -> Vec<(String, Element)> {
        let s = scan(&defaults(), html, "http://h.example/p/");
        s.images.iter().map(|f| (f.url.to_string(), f.element)).collect()
    }

    fn one(html: &str) -> (String, Element) {
        let all = found(html);
        assert_eq!(all.len(), 1, "{all:?}");
        all.into_iter().next().unwrap()
    }

    #[test]
    fn a_picture_is_one_image_its_widest_candidate() {
        let html = r#"<picture>
            <source media="(max-width: 600px)" type="image/webp" srcset="s.webp 600w, m.webp 900w">
            <source media="(max-width: 600px)" srcset="s.jpg 600w, m.jpg 900w">
            <source type="image/webp" srcset="l.webp 1600w">
            <source srcset="l.jpg 1600w">
            <img src="fallback.jpg" srcset="m.jpg 900w, l.jpg 1600w" alt="">
        </picture>"#;
        // 1600w ties between two sources and the <img>'s own candidate: the <img> wins.
        assert_eq!(one(html), ("http://h.example/p/l.jpg".into(), Element::Picture));
    }

    #[test]
    fn a_picture_of_densities_and_a_picture_without_img() {
        let html = r#"<picture><source type="image/webp" srcset="a.webp 1x, a@2x.webp 2x">
            <source srcset="a.jpg 1x, a@2x.jpg 2x"><img src="a.jpg"></picture>
            <picture><source srcset="b.avif 1x, b@3x.avif 3x"><source srcset="b.png"></picture>"#;
        assert_eq!(
            found(html),
            [
                ("http://h.example/p/a@2x.webp".into(), Element::Picture),
                ("http://h.example/p/b@3x.avif".into(), Element::Picture)
            ]
        );
        // Widths outrank densities: a width is a real size, a density only relative.
        let html = r#"<picture><source srcset="x.jpg 3x"><img srcset="y.jpg 800w"></picture>"#;
        assert_eq!(one(html).0, "http://h.example/p/y.jpg");
    }

    #[test]
    fn cdn_urls_with_commas_are_kept_whole() {
        let html = r#"
            <img srcset="https://res.cloudinary.com/demo/image/upload/c_fill,f_auto,w_320/cat.jpg 320w,
                         https://res.cloudinary.com/demo/image/upload/c_fill,f_auto,w_960/cat.jpg 960w">
            <img srcset="/cdn-cgi/image/width=400,quality=75/dog.jpg 400w,/cdn-cgi/image/width=800,quality=75/dog.jpg 800w">
            <img src="https://i0.wp.com/s.example/owl.jpg?resize=198,178" srcset="https://i0.wp.com/s.example/owl.jpg?resize=198,178&amp;ssl=1 198w, https://i0.wp.com/s.example/owl.jpg?resize=600,540&amp;ssl=1 600w">"#;
        let urls: Vec<String> = found(html).into_iter().map(|f| f.0).collect();
        assert_eq!(
            urls,
            [
                "https://res.cloudinary.com/demo/image/upload/c_fill,f_auto,w_960/cat.jpg",
                "http://h.example/cdn-cgi/image/width=800,quality=75/dog.jpg",
                "https://i0.wp.com/s.example/owl.jpg?resize=600,540&ssl=1",
            ]
        );
    }

    #[test]
    fn noscript_only_images_are_found() {
        let html = r#"<div><noscript><img src="only.jpg"></noscript></div>
            <noscript><picture><source srcset="p.jpg 2x"><img src="p-small.jpg"></picture></noscript>"#;
        assert_eq!(
            found(html),
            [
                ("http://h.example/p/only.jpg".into(), Element::Noscript),
                ("http://h.example/p/p.jpg".into(), Element::Noscript)
            ]
        );
        // In <head> too (a browser moves the image into <body>).
        let html = r#"<html><head><noscript><img src="h.jpg"></noscript></head><body></body></html>"#;
        assert_eq!(one(html).0, "http://h.example/p/h.jpg");
    }

    #[test]
    fn a_noscript_image_and_its_lazy_twin_are_one_image() {
        // Twin before, the same picture: one image, the lazy one's place and URL.
        let html = r#"<p><img src="data:image/gif;base64,R0lGOD" data-src="real.jpg"><noscript><img src="real.jpg"></noscript></p>"#;
        assert_eq!(one(html), ("http://h.example/p/real.jpg".into(), Element::Img));
        // Twin after, with a larger lazy srcset: the larger wins.
        let html = r#"<div><noscript><img src="cat-300.jpg"></noscript>
            <img class="lazyload" data-srcset="cat-300.jpg 300w, cat-1200.jpg 1200w"></div>"#;
        assert_eq!(one(html), ("http://h.example/p/cat-1200.jpg".into(), Element::Img));
        // The twin shows only a low-quality stand-in (no lazy attribute): the real one wins.
        let html = r#"<div><img src="blur-tiny.jpg"><noscript><img src="full.jpg"></noscript></div>"#;
        assert_eq!(one(html), ("http://h.example/p/full.jpg".into(), Element::Noscript));
        // Unrelated images around a <noscript> are not twins.
        let html = r#"<div><img src="a.jpg"></div><section><noscript><img src="b.jpg"></noscript></section>"#;
        assert_eq!(found(html).len(), 2);
    }

    #[test]
    fn wp_rocket_lazy_srcset_beats_the_placeholder_srcset() {
        let html = r#"<img width="1024" src="data:image/svg+xml,%3Csvg%3E%3C/svg%3E"
            srcset="https://s.example/1x1.png 1w"
            data-lazy-srcset="https://s.example/a-300x200.jpg 300w, https://s.example/a-1024x683.jpg 1024w"
            data-lazy-src="https://s.example/a-1024x683.jpg">"#;
        assert_eq!(one(html).0, "https://s.example/a-1024x683.jpg");
        // jQuery lazyload and a spacer file name.
        let html = r#"<img src="/img/grey.gif" data-original="/photos/b.jpg">"#;
        assert_eq!(one(html).0, "http://h.example/photos/b.jpg");
        // A spacer is never chosen over a real image, but is what is left without one.
        let html = r#"<img src="/img/spacer.gif" srcset="/img/c.jpg 1x">"#;
        assert_eq!(one(html).0, "http://h.example/img/c.jpg");
    }

    #[test]
    fn a_placeholder_by_shape_loses_to_any_real_image() {
        for spacer in ["/img/blank_1x1.png", "placeholder-horizontal.gif", "/lazy_placeholder.svg"] {
            let html = format!(r#"<img srcset="{spacer} 2x" src="/img/real.jpg">"#);
            assert_eq!(one(&html).0, "http://h.example/img/real.jpg", "{spacer}");
        }
        let canvas = r#"<img srcset="/img/blank-canvas-painting.jpg 2x" src="/img/small.jpg">"#;
        assert_eq!(one(canvas).0, "http://h.example/img/blank-canvas-painting.jpg");
    }

    #[test]
    fn any_data_attribute_shaped_like_an_image_stands_in_for_a_placeholder() {
        let p = |n: &str| format!("http://h.example/p/{n}");
        // Names outside IMAGE_ATTRIBUTES, behind a spacer or no src at all.
        assert_eq!(one(r#"<img src="blank.gif" data-src1="a.jpg">"#).0, p("a.jpg"));
        assert_eq!(one(r#"<img data-source-standard="/img/b.png">"#).0, "http://h.example/img/b.png");
        assert_eq!(
            one(r#"<img src="data:x" data-bgset="c-400.jpg 400w, c-1200.jpg 1200w">"#).0,
            p("c-1200.jpg")
        );
        // Several: the largest by the usual rules, the first among equals.
        let several = r#"<img src="spacer.gif" data-full="d.jpg" data-zoom-image="d-zoom.jpg" data-hires="d-2x.jpg 2x">"#;
        assert_eq!(one(several).0, p("d-2x.jpg"));
        assert_eq!(
            one(r#"<img src="spacer.gif" data-full="e.jpg" data-zoom-image="e-zoom.jpg">"#).0,
            p("e.jpg")
        );
        // A known attribute first; a real src is never replaced.
        assert_eq!(
            one(r#"<img src="spacer.gif" data-zoom="/z/f-big.jpg 2x" data-src="f.jpg">"#).0,
            p("f.jpg")
        );
        assert_eq!(one(r#"<img src="g.jpg" data-zoom-image="g-zoom.jpg">"#).0, p("g.jpg"));
        // JSON, template text and page links are never taken: the placeholder stays.
        let junk = r#"<img src="spacer.gif" data-gallery='{"src":"h.jpg"}' data-tpl="{{ url }}.jpg" data-href="/post/12">"#;
        assert_eq!(one(junk).0, p("spacer.gif"));
        // In a <picture>, a <source>'s unlisted attribute counts too.
        let picture = r#"<picture><source data-hi-srcset="i-800.webp 800w"><img src="lazy.gif"></picture>"#;
        assert_eq!(one(picture).0, p("i-800.webp"));
    }

    #[test]
    fn values_that_are_not_urls_are_never_requested() {
        let html = r#"<img data-src='{"default":"//img.example/a.jpg","2x":"//img.example/a@2x.jpg"}' src="b.jpg">
            <img data-src="[&quot;x.jpg&quot;]" src="c.jpg">
            <img data-src="{{ image.url }}" src="d.jpg">
            <img data-src="/x/${id}.jpg" src="e.jpg">
            <img data-src="not a url.jpg" src="f.jpg">
            <img data-src="undefined" src="g.jpg"><img src="My Photo.jpg">"#;
        let urls: Vec<String> = found(html).into_iter().map(|f| f.0).collect();
        let mut expected = ["b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg", "g.jpg"]
            .map(|n| format!("http://h.example/p/{n}"))
            .to_vec();
        expected.push("http://h.example/p/My%20Photo.jpg".into());
        assert_eq!(urls, expected);
    }

    #[test]
    fn src_and_srcset_are_urls_however_bare() {
        // As a browser resolves them (cases from the HTML standard's srcset tests).
        let html = r##"<img src="photo"><img srcset="img-a 1x"><img srcset="img-b 1x, img-c 2x">
            <img src="undefined"><img src="" srcset="  "><img src="#"><img src="data:image/gif;base64,R0lG">"##;
        let urls: Vec<String> = found(html).into_iter().map(|f| f.0).collect();
        assert_eq!(urls, ["photo", "img-a", "img-c", "undefined"].map(|n| format!("http://h.example/p/{n}")));
    }

    #[test]
    fn template_contents_are_inert() {
        let html = r#"<template><img src="t.jpg"><noscript><img src="tn.jpg"></noscript></template>
            <template><a href="big.jpg"><img src="small.jpg"></a></template><img src="real.jpg">"#;
        assert_eq!(one(html).0, "http://h.example/p/real.jpg");
        // Nor script, style, textarea or comments.
        let html = r#"<script>x = '<img src="s.jpg">'</script><style>/* <img src="c.jpg"> */</style>
            <textarea><img src="t.jpg"></textarea><!-- <img src="m.jpg"> --><img src="r.jpg">"#;
        assert_eq!(one(html).0, "http://h.example/p/r.jpg");
    }

    #[test]
    fn a_thumbnail_linked_to_its_original_gives_the_original() {
        let html = r#"<a href="/full/photo.JPG?v=2"><img src="/thumbs/photo.jpg" srcset="/thumbs/photo@2x.jpg 2x"></a>
            <a href="/page.html"><img src="/thumbs/other.jpg"></a>"#;
        let s = scan(&defaults(), html, "http://h.example/p/");
        let got: Vec<_> = s
            .images
            .iter()
            .map(|f| (f.url.as_str(), f.element, f.fallback.as_ref().map(Url::as_str)))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "http://h.example/full/photo.JPG?v=2",
                    Element::Link,
                    Some("http://h.example/thumbs/photo@2x.jpg")
                ),
                ("http://h.example/thumbs/other.jpg", Element::Img, None),
            ]
        );
        // `both` keeps the thumbnail too; `off` ignores links.
        let mut r = defaults();
        r.linked_images = LinkedImages::Both;
        assert_eq!(urls(&scan(&r, html, "http://h.example/p/")).len(), 3);
        r.linked_images = LinkedImages::Off;
        assert_eq!(
            urls(&scan(&r, html, "http://h.example/p/")),
            ["http://h.example/thumbs/photo@2x.jpg", "http://h.example/thumbs/other.jpg"]
        );
        // LINK_SELECTOR: links that are images whatever their extension.
        let mut r = defaults();
        r.link_selector = "a.download".into();
        let s =
            scan(&r, r#"<a class="download" href="/get?id=7"><img src="t.jpg"></a>"#, "http://h.example/p/");
        assert_eq!(urls(&s), ["http://h.example/get?id=7"]);
    }

    #[test]
    fn noscript_fragments_do_not_close_the_documents_links() {
        // The fragment's nodes have ids of their own tree; one equal to the link's must not
        // end the link, and images after the link are images of their own.
        let html = format!(
            r#"<a href="/big.jpg">{}<noscript><div><p><span><img src="n.jpg"></span></p></div></noscript><img src="t.jpg"></a><img src="after.jpg">"#,
            "<span></span>".repeat(3)
        );
        let s = scan(&defaults(), &html, "http://h.example/");
        assert_eq!(urls(&s), ["http://h.example/big.jpg", "http://h.example/after.jpg"]);
        assert_eq!(s.images[0].fallback.as_ref().map(Url::as_str), Some("http://h.example/n.jpg"));
        let s = scan(
            &defaults(),
            r#"<noscript><a href="full.png"><img src="t.png"></a></noscript><img src="x.jpg">"#,
            "http://h.example/",
        );
        assert_eq!(urls(&s), ["http://h.example/full.png", "http://h.example/x.jpg"]);
    }

    #[test]
    fn a_link_the_host_filter_refuses_leaves_the_thumbnail() {
        let html = r#"<a href="https://elsewhere.example/big.jpg"><img src="https://img.example/t.jpg"></a>"#;
        let s = scan(&rules("img", DEFAULTS, "img.example"), html, "http://h.example/");
        assert_eq!(urls(&s), ["https://img.example/t.jpg"]);
    }

    #[test]
    fn a_directory_listing_is_a_gallery() {
        let html = r#"<html><head><title>Index of /photos</title></head><body><h1>Index of /photos</h1>
            <pre><a href="?C=N;O=D">Name</a> <a href="/">Parent Directory</a>
            <a href="IMG_0001.jpg">IMG_0001.jpg</a> 2024-01-01 12:00  2.1M
            <a href="IMG_0002.jpeg">IMG_0002.jpeg</a> 2024-01-01 12:00  2.0M
            <a href="scan.tiff">scan.tiff</a> <a href="notes.txt">notes.txt</a> <a href="sub/">sub/</a></pre></body></html>"#;
        let s = scan(&defaults(), html, "http://h.example/photos/");
        assert_eq!(
            urls(&s),
            [
                "http://h.example/photos/IMG_0001.jpg",
                "http://h.example/photos/IMG_0002.jpeg",
                "http://h.example/photos/scan.tiff"
            ]
        );
        assert!(s.images.iter().all(|f| f.element == Element::Link && f.fallback.is_none()));
    }

    #[test]
    fn a_deep_page_is_scanned_with_its_images() {
        let page = format!("{}<img src=deep.jpg>{}", "<div>".repeat(50_000), "</div>".repeat(50_000));
        assert_eq!(one(&page).0, "http://h.example/p/deep.jpg");
    }

    #[test]
    fn broken_markup_still_yields_images() {
        let html = "<html><body><div><img src='a.jpg'<p><img src=b.jpg></table></body>";
        let s = scan(&rules("img", &["src"], ""), html, "http://h.example/");
        assert!(urls(&s).contains(&"http://h.example/b.jpg"));
    }
}
