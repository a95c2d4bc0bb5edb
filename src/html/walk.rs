//! The walk over a document's tree in document order: which elements are images, links to
//! image files, `<noscript>` fragments and their lazy twins, detail links, and what is
//! inert. One pass in document order, since what an image is depends on what came just
//! before it (the link it sits in, the `<noscript>` it may be the twin of); that state
//! lives in [`TreeWalk`].

use std::collections::HashSet;

use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node};
use url::Url;

use super::choose::{Pick, noscript_wins};
use super::detail::{DetailImages, Dims};
use super::extractor::Extractor;
use super::parse;
use super::rules::LinkedImages;
use super::scan::{Element, Found};
use super::url_text::{has_image_extension, names_an_image_file};

/// An image found, before duplicates are dropped.
pub(super) struct Entry {
    pub(super) found: Found,
    /// Its element's choice, for comparing a `<noscript>` image with its twin.
    pub(super) pick: Option<Pick>,
    /// Its element in the document; `None` for one inside a `<noscript>` (another tree)
    /// and for links, which are never a `<noscript>`'s twin.
    pub(super) node: Option<ego_tree::NodeId>,
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
pub(super) struct TreeWalk<'a> {
    base: &'a Url,
    /// A detail page: its own image selector, no detail links, sizes read for `largest`.
    detail_page: bool,
    pub(super) entries: Vec<Entry>,
    link: Option<OpenLink>,
    twin: Option<WaitingTwin>,
    /// Targets of detail links, in document order, duplicates included.
    pub(super) details: Vec<Url>,
    detail: Option<OpenDetail>,
    /// Image URLs the host filter dropped, duplicates included.
    pub(super) other_hosts: Vec<Url>,
}

impl<'a> TreeWalk<'a> {
    /// A walk not begun: URLs resolve against `base`.
    pub(super) fn new(base: &'a Url, detail_page: bool) -> Self {
        Self {
            base,
            detail_page,
            entries: Vec::new(),
            link: None,
            twin: None,
            details: Vec::new(),
            detail: None,
            other_hosts: Vec::new(),
        }
    }
}

impl Extractor {
    /// Every image of `doc` in document order, into `walk`. `<template>` contents are
    /// skipped: a browser never shows them as they are.
    pub(super) fn walk(&self, doc: &Html, in_noscript: bool, walk: &mut TreeWalk<'_>) {
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
        walk: &mut TreeWalk<'_>,
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
    fn detail_link(&self, element: ElementRef<'_>, in_noscript: bool, walk: &mut TreeWalk<'_>) {
        let Some(url) = element.value().attr("href").and_then(|href| self.resolve(href, walk.base)) else {
            return;
        };
        walk.details.push(url);
        walk.detail = Some(OpenDetail { node: element.id(), in_noscript });
    }

    /// Adds what an image element chose: as a link's thumbnail, as a `<noscript>`'s twin,
    /// or as an image of its own. A detail link's thumbnail is dropped.
    fn emit(&self, pick: Option<Pick>, kind: Element, element: ElementRef<'_>, walk: &mut TreeWalk<'_>) {
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
    fn noscript(&self, element: ElementRef<'_>, walk: &mut TreeWalk<'_>) {
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
    fn link(&self, element: ElementRef<'_>, image: bool, in_noscript: bool, walk: &mut TreeWalk<'_>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::fixtures::*;

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
}
