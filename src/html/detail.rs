//! Detail pages: the page per image a listing's thumbnail links to (`DETAIL_SELECTOR`),
//! and which of its images is *the* image (`DETAIL_IMAGES: largest`).
//!
//! Largest by what the HTML says, never by fetching: a detail page also shows a logo, an
//! avatar, related thumbnails, and the one image wanted is the one the page declares
//! largest. In order:
//! 1. a linked original (an `<a href>` to an image file, or one `DETAIL_IMAGE_SELECTOR`
//!    matches) beats anything: it is how such pages offer the full-size file;
//! 2. else the largest declared size: width from the chosen srcset candidate's `w`
//!    descriptor, else the `width` attribute times its density (`2x`); height from the
//!    `height` attribute, scaled as the width was. Two images that both declare a height
//!    are compared by area (a 970x90 banner is smaller than an 800x1200 photo), others by
//!    width; one that declares no width loses to any that does;
//! 3. ties, and pages where nothing declares a size, go to the first in document order.

use scraper::ElementRef;
use serde::{Deserialize, Serialize};

use super::choose::Pick;
use super::scan::Element;
use super::srcset::Size;
use super::walk::Entry;

/// `DETAIL_IMAGES`: what a detail page yields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DetailImages {
    /// Only its largest image: the original, not the logo and related thumbnails around it.
    #[default]
    Largest,
    /// Every image it has, as a listing page's.
    All,
}

/// What leads to detail pages and what is taken from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetailRules {
    /// CSS selector of the links on a listing page that lead to a page per image
    /// (`DETAIL_SELECTOR`); empty: there are none, and thumbnails are images as usual.
    pub selector: String,
    /// CSS selector of the images on a detail page (`DETAIL_IMAGE_SELECTOR`); empty: a
    /// listing page's rules. Set, it alone says what an image is there (a link it matches
    /// is a linked original whatever its extension), since a detail page is full of
    /// images that are not the one.
    pub image_selector: String,
    /// Only the largest image of a detail page, or all (`DETAIL_IMAGES`).
    pub images: DetailImages,
}

/// The `width` and `height` attributes of an image element, in CSS pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Dims {
    width: Option<u32>,
    height: Option<u32>,
}

impl Dims {
    /// An image element's declared dimensions: a `<picture>`'s are its `<img>`'s.
    pub(super) fn of(unit: ElementRef<'_>) -> Self {
        let img = match unit.value().name() {
            "picture" => unit.children().filter_map(ElementRef::wrap).find(|c| c.value().name() == "img"),
            _ => Some(unit),
        };
        let mut dims = Self::default();
        // Matched by name over the element's attributes: `attr` interns its argument.
        for (name, value) in img.iter().flat_map(|img| img.value().attrs()) {
            match name {
                "width" => dims.width = dimension(value),
                "height" => dims.height = dimension(value),
                _ => {}
            }
        }
        dims
    }
}

/// A dimension attribute as browsers read it: the leading digits (`800`, `800px`);
/// zero, none, or more than fits is no dimension.
fn dimension(value: &str) -> Option<u32> {
    let value = value.trim_start();
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    value[..digits].parse().ok().filter(|&n| n > 0)
}

/// The size an image declares, scaled to the candidate chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Declared {
    width: Option<f64>,
    height: Option<f64>,
}

impl Declared {
    fn of(pick: &Pick) -> Self {
        let Dims { width, height } = pick.dims;
        let (width, height) = (width.map(f64::from), height.map(f64::from));
        let scale = match (pick.size, width) {
            (Size::Width(w), Some(attr)) => Some(f64::from(w) / attr),
            (Size::Width(_), None) => None,
            (Size::Density(x), _) => Some(x),
        };
        let width = match pick.size {
            Size::Width(w) => Some(f64::from(w)),
            Size::Density(x) => width.map(|w| w * x),
        };
        Self { width, height: height.zip(scale).map(|(h, s)| h * s) }
    }

    /// Strictly larger than `other`: by area when both declare one, else by width.
    fn beats(&self, other: &Self) -> bool {
        match (self.width.zip(self.height), other.width.zip(other.height)) {
            (Some((w, h)), Some((ow, oh))) => w * h > ow * oh,
            _ => self.width.unwrap_or(0.0) > other.width.unwrap_or(0.0),
        }
    }
}

/// The index of a detail page's image, among its distinct images in document order:
/// the first linked original, else the largest declared, else the first.
pub(super) fn largest(entries: &[Entry]) -> Option<usize> {
    if let Some(link) = entries.iter().position(|e| e.found.element == Element::Link) {
        return Some(link);
    }
    let declared: Vec<Option<Declared>> = entries.iter().map(|e| e.pick.as_ref().map(Declared::of)).collect();
    (0..entries.len()).reduce(|best, i| match (&declared[i], &declared[best]) {
        (Some(c), Some(b)) if c.beats(b) => i,
        _ => best,
    })
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::super::{ExtractRules, Extractor, LinkedImages, PageScan};
    use super::*;

    const PAGE: &str = "http://h.example/list/p1.html";

    fn rules(change: impl FnOnce(&mut ExtractRules)) -> ExtractRules {
        let mut rules = ExtractRules {
            image_selector: "img, picture source".into(),
            attributes: ["data-src", "srcset", "src"].map(String::from).to_vec(),
            image_host: String::new(),
            page_count_selector: "li.pag-text".into(),
            linked_images: LinkedImages::Prefer,
            link_selector: String::new(),
            next_selector: None,
            detail: DetailRules::default(),
        };
        change(&mut rules);
        rules
    }

    fn listing(rules: &ExtractRules, html: &str) -> PageScan {
        Extractor::new(rules).unwrap().scan(html, &Url::parse(PAGE).unwrap())
    }

    fn detail(rules: &ExtractRules, html: &str) -> PageScan {
        Extractor::new(rules).unwrap().scan_detail(html, &Url::parse(PAGE).unwrap())
    }

    fn next(html: &str) -> Option<String> {
        listing(&rules(|_| {}), html).next.map(String::from)
    }

    fn urls(scan: &PageScan) -> Vec<&str> {
        scan.urls().map(Url::as_str).collect()
    }

    fn with_details(r: &mut ExtractRules) {
        r.detail.selector = "a.view".into();
    }

    #[test]
    fn the_next_link_is_the_first_match_resolved_against_the_page() {
        assert_eq!(
            next(r#"<a rel="next" href="p2.html#top">next</a>"#).as_deref(),
            Some("http://h.example/list/p2.html")
        );
        // `~=`: one word among several; `<link>` in the head counts too.
        assert_eq!(
            next(r#"<a rel="nofollow next" href="/p/2">›</a>"#).as_deref(),
            Some("http://h.example/p/2")
        );
        let head = r#"<html><head><link rel="next" href="https://h.example/list?after=9"></head><body><a rel="next" href="x"></a></body></html>"#;
        assert_eq!(next(head).as_deref(), Some("https://h.example/list?after=9"));
        // `<base href>` moves relative links, as for images.
        let based = r#"<head><base href="https://other.example/g/"></head><a rel="next" href="p2">n</a>"#;
        assert_eq!(next(based).as_deref(), Some("https://other.example/g/p2"));
        // A link that says nothing of next is not one; `rel="prev"` never is, whatever its text.
        assert_eq!(next(r#"<a href="p2.html">page two</a><a rel="prev" href="p0.html">next</a>"#), None);
    }

    #[test]
    fn hostile_next_links_are_skipped_for_the_next_usable_one() {
        for bad in [
            "javascript:void(0)",
            "mailto:me@h.example",
            "data:text/html,<p>x</p>",
            "",
            "   ",
            "#",
            "p1.html",
            "p1.html#more",
            "ftp://h.example/p2",
            "http://[::1",
        ] {
            let html = format!(r#"<a rel="next" href="{bad}">bad</a>"#);
            assert_eq!(next(&html), None, "{bad:?}");
            let html = format!(r#"<a rel="next" href="{bad}">bad</a><a rel="next" href="p2.html">ok</a>"#);
            assert_eq!(next(&html).as_deref(), Some("http://h.example/list/p2.html"), "{bad:?}");
        }
        // Without an href there is nothing to follow; inside a <template>, nothing is shown.
        assert_eq!(
            next(r#"<a rel="next">n</a><template><a rel="next" href="t.html">t</a></template>"#),
            None
        );
    }

    #[test]
    fn next_links_can_be_turned_off_or_chosen() {
        let off = rules(|r| r.next_selector = Some(String::new()));
        assert_eq!(listing(&off, r#"<a rel="next" href="p2.html">n</a>"#).next, None);
        let own = rules(|r| r.next_selector = Some("nav .older".into()));
        let s = listing(
            &own,
            r#"<a rel="next" href="p2.html">n</a><nav><a class="older" href="p9.html">older</a></nav>"#,
        );
        assert_eq!(s.next.as_ref().map(Url::as_str), Some("http://h.example/list/p9.html"));
        let bad = rules(|r| r.next_selector = Some("a[rel=".into()));
        assert!(Extractor::new(&bad).unwrap_err().contains("next-link selector"));
    }

    #[test]
    fn detail_links_replace_their_thumbnails_and_other_images_stay() {
        let r = rules(with_details);
        let html = r#"<header><img src="/logo.png"></header>
            <a class="view" href="/view/1.html"><img src="/thumb/1.jpg"></a>
            <a class="view" href="/view/2.html#c"><picture><source srcset="/thumb/2.webp 2x"><img src="/thumb/2.jpg"></picture></a>
            <a class="view" href="/view/1.html"><img src="/thumb/1b.jpg"></a>
            <a class="view" href="/full/3.jpg"><img src="/thumb/3.jpg"></a>
            <a class="view" href="javascript:void(0)"><img src="/thumb/4.jpg"></a>
            <a href="/full/5.jpg"><img src="/thumb/5.jpg"></a>
            <img src="/after.jpg">"#;
        let s = listing(&r, html);
        assert_eq!(
            s.details.iter().map(Url::as_str).collect::<Vec<_>>(),
            ["http://h.example/view/1.html", "http://h.example/view/2.html", "http://h.example/full/3.jpg"]
        );
        // A detail link naming an image file is still a detail link; one leading nowhere
        // leaves its thumbnail; a linked original outside them is as before.
        assert_eq!(
            urls(&s),
            [
                "http://h.example/logo.png",
                "http://h.example/thumb/4.jpg",
                "http://h.example/full/5.jpg",
                "http://h.example/after.jpg"
            ]
        );
        // Without DETAIL_SELECTOR nothing changes.
        let s = listing(&rules(|_| {}), html);
        assert!(s.details.is_empty());
        assert_eq!(urls(&s).len(), 8);
    }

    #[test]
    fn a_detail_links_noscript_thumbnail_is_dropped_too() {
        let r = rules(with_details);
        let html = r#"<a class="view" href="/view/1.html"><img data-src="/t/1.jpg" src="data:,"><noscript><img src="/t/1.jpg"></noscript></a><div><noscript><img src="/n.jpg"></noscript></div>"#;
        let s = listing(&r, html);
        assert_eq!(urls(&s), ["http://h.example/n.jpg"]);
        let inside = r#"<noscript><a class="view" href="/view/9.html"><img src="/t/9.jpg"></a></noscript><img src="/x.jpg">"#;
        let s = listing(&r, inside);
        assert_eq!(s.details.iter().map(Url::as_str).collect::<Vec<_>>(), ["http://h.example/view/9.html"]);
        assert_eq!(urls(&s), ["http://h.example/x.jpg"]);
    }

    #[test]
    fn a_detail_page_has_no_next_no_details_no_count() {
        let r = rules(with_details);
        let html = r#"<a rel="next" href="/view/2.html">next</a><a class="view" href="/view/3.html"><img src="/t/3.jpg"></a>
            <li class="pag-text">1 of 9</li><img src="/img/1.jpg" width="800" height="600">"#;
        let s = detail(&r, html);
        assert_eq!((&s.next, s.details.len(), s.page_count), (&None, 0, None));
        assert_eq!(urls(&s), ["http://h.example/img/1.jpg"]);
    }

    const DETAIL: &str = r#"<header><img src="/logo.png" width="120" height="40"><img src="/avatar.png" width="48" height="48"></header>
        <main><img src="/img/photo.jpg" width="1600" height="1200"></main>
        <aside><a href="/view/2.html"><img src="/thumb/2.jpg" width="150" height="100"></a></aside>"#;

    #[test]
    fn largest_takes_the_largest_declared_image() {
        let r = rules(with_details);
        assert_eq!(urls(&detail(&r, DETAIL)), ["http://h.example/img/photo.jpg"]);
        // `all` keeps every image, as on a listing page.
        let all = rules(|r| {
            with_details(r);
            r.detail.images = DetailImages::All;
        });
        assert_eq!(urls(&detail(&all, DETAIL)).len(), 4);
    }

    #[test]
    fn a_linked_original_beats_any_declared_size() {
        let r = rules(with_details);
        let html = r#"<img src="/banner.jpg" width="2000" height="300">
            <a href="/orig/photo.png"><img src="/med/photo.png" width="640" height="480"></a>
            <a href="/orig/other.png">download the other</a>"#;
        let s = detail(&r, html);
        assert_eq!(urls(&s), ["http://h.example/orig/photo.png"]);
        assert_eq!(s.images[0].fallback.as_ref().map(Url::as_str), Some("http://h.example/med/photo.png"));
    }

    #[test]
    fn srcset_widths_and_densities_are_declared_sizes() {
        let r = rules(with_details);
        // A `w` descriptor is a width; the height scales with it.
        let html = r#"<img src="/logo.png" width="300" height="300"><img srcset="/p-400.jpg 400w, /p-2000.jpg 2000w" width="400" height="300">"#;
        assert_eq!(urls(&detail(&r, html)), ["http://h.example/p-2000.jpg"]);
        // `2x` of a 300-wide image is 600 wide.
        let html = r#"<img src="/a.jpg" width="500"><img srcset="/b.jpg 1x, /b@2x.jpg 2x" width="300">"#;
        assert_eq!(urls(&detail(&r, html)), ["http://h.example/b@2x.jpg"]);
        // Area when both declare a height: the tall photo beats the wide banner.
        let html = r#"<img src="/banner.jpg" width="970" height="90"><img src="/tall.jpg" width="800" height="1200">"#;
        assert_eq!(urls(&detail(&r, html)), ["http://h.example/tall.jpg"]);
        // A width without a height is compared by width.
        let html = r#"<img src="/small.jpg" width="100" height="100"><img srcset="/big.jpg 1200w">"#;
        assert_eq!(urls(&detail(&r, html)), ["http://h.example/big.jpg"]);
    }

    #[test]
    fn unknown_sizes_and_ties_go_to_the_first() {
        let r = rules(with_details);
        assert_eq!(urls(&detail(&r, r#"<img src="/a.jpg"><img src="/b.jpg">"#)), ["http://h.example/a.jpg"]);
        let html = r#"<img src="/a.jpg" width="50"><img src="/b.jpg" width="50"><img src="/c.jpg">"#;
        assert_eq!(urls(&detail(&r, html)), ["http://h.example/a.jpg"]);
        // Any declared width beats none; junk dimensions are none.
        let html = r#"<img src="/a.jpg" width="wide" height="-3"><img src="/b.jpg" width="10px">"#;
        assert_eq!(urls(&detail(&r, html)), ["http://h.example/b.jpg"]);
        let html = r#"<img src="/a.jpg" width="99999999999999"><img src="/b.jpg" width="0">"#;
        assert_eq!(urls(&detail(&r, html)), ["http://h.example/a.jpg"]);
        assert!(detail(&r, "<p>no images</p>").images.is_empty());
    }

    #[test]
    fn a_detail_image_selector_alone_says_what_the_images_are() {
        // MediaWiki's file page: the original is linked from `.fullImageLink`; the file
        // history links older versions; the page has other images.
        let html = r#"<img src="/logo.png" width="135" height="135">
            <div class="fullImageLink"><a href="//upload.h.example/a/ab/Cat.jpg"><img src="//upload.h.example/thumb/a/ab/Cat.jpg/800px-Cat.jpg" width="800" height="600"></a></div>
            <table class="filehistory"><a href="//upload.h.example/archive/a/ab/old-Cat.jpg">old</a></table>
            <a href="/download?file=Cat.jpg" class="dl">download</a>"#;
        let r = rules(|r| {
            with_details(r);
            r.detail.image_selector = ".fullImageLink a, .fullImageLink img, a.dl".into();
            r.detail.images = DetailImages::All;
        });
        // The matched link without an image extension is one; the history link is not.
        assert_eq!(
            urls(&detail(&r, html)),
            ["http://upload.h.example/a/ab/Cat.jpg", "http://h.example/download?file=Cat.jpg"]
        );
        let r = rules(|r| {
            with_details(r);
            r.detail.image_selector = ".fullImageLink a, .fullImageLink img".into();
        });
        assert_eq!(urls(&detail(&r, html)), ["http://upload.h.example/a/ab/Cat.jpg"]);
        // Listing pages keep their own rules.
        assert_eq!(listing(&r, html).images.len(), 3);
        let bad = rules(|r| r.detail.image_selector = "..x".into());
        assert!(Extractor::new(&bad).unwrap_err().contains("detail-image selector"));
    }

    #[test]
    fn the_host_filter_applies_on_detail_pages() {
        let r = rules(|r| {
            with_details(r);
            r.image_host = "img.example".into();
        });
        let html = r#"<img src="https://ads.example/huge.jpg" width="3000" height="3000"><img src="https://img.example/p.jpg" width="800">"#;
        assert_eq!(urls(&detail(&r, html)), ["https://img.example/p.jpg"]);
    }

    #[test]
    fn dimensions_read_like_a_browser() {
        assert_eq!(dimension("800"), Some(800));
        assert_eq!(dimension(" 640px"), Some(640));
        assert_eq!(dimension("0"), None);
        assert_eq!(dimension("auto"), None);
        assert_eq!(dimension("-5"), None);
        assert_eq!(dimension("4294967296"), None);
    }
}
