//! Which one URL an image element stands for, among all the candidates of its attributes
//! (and its `<picture>`'s `<source>`s), and which of a `<noscript>` image and its lazy
//! twin is the better: a browser shows one image per element, so downloading every
//! candidate would fetch the same picture at several sizes.

use scraper::ElementRef;
use url::Url;

use super::detail::Dims;
use super::extractor::Extractor;
use super::lazy;
use super::placeholder::is_placeholder;
use super::srcset::{self, Size};
use super::url_text::{is_image_reference, looks_like_url};

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
pub(super) struct Pick {
    pub(super) url: Url,
    pub(super) size: Size,
    pub(super) lazy: bool,
    pub(super) placeholder: bool,
    /// The element's `width`/`height` attributes: read only where the largest image of
    /// a detail page is wanted, since reading attributes per element costs.
    pub(super) dims: Dims,
}

impl Extractor {
    /// The one URL an image element stands for: the largest of its real candidates.
    pub(super) fn choose(&self, unit: ElementRef<'_>, base: &Url) -> Option<Pick> {
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
pub(super) fn noscript_wins(noscript: &Pick, twin: &Pick) -> bool {
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

#[cfg(test)]
mod tests {
    use crate::html::Element;
    use crate::html::fixtures::*;

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
}
