//! Page HTML + page URL -> the image URLs on it and the page count it states.
//!
//! Pure and synchronous: `scraper::Html` is `!Send`, so a document is parsed and dropped
//! inside [`Extractor::scan`] and only owned URLs leave it. Never imports actix.

use std::collections::HashSet;

use scraper::{ElementRef, Html, Selector};
use url::Url;

/// What the site-specific settings say about where images and the page count are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractRules {
    /// CSS selector of the elements that carry an image URL (`IMAGE_SELECTOR`).
    pub image_selector: String,
    /// Attributes read on each element, first present wins (`IMAGE_ATTRIBUTES`); a name
    /// ending in `srcset` is parsed as a srcset and its largest candidate taken.
    pub attributes: Vec<String>,
    /// Keep only URLs whose host contains this; empty keeps all (`IMAGE_HOST`).
    pub image_host: String,
    /// Element whose text states the page count, e.g. `Page 1 of 48`; empty disables
    /// clamping (`PAGE_COUNT_SELECTOR`).
    pub page_count_selector: String,
}

/// What one page yielded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageScan {
    /// Distinct absolute http(s) image URLs, in document order, after the host filter.
    pub images: Vec<Url>,
    /// The last number in the page-count element's text, if there is one.
    pub page_count: Option<u32>,
}

/// [`ExtractRules`] with the selectors parsed once.
#[derive(Debug)]
pub struct Extractor {
    image: Selector,
    /// Lower-cased attribute names.
    attributes: Vec<String>,
    /// Lower-cased, since `Url` lower-cases hosts.
    host: String,
    page_count: Option<Selector>,
    /// `<base href>` changes what relative URLs resolve against, as in a browser.
    base: Selector,
}

impl Extractor {
    /// Fails with a message naming the bad selector.
    pub fn new(rules: &ExtractRules) -> Result<Self, String> {
        let parse = |css: &str, what: &str| {
            Selector::parse(css).map_err(|e| format!("{what} {css:?} is not a valid CSS selector: {e}"))
        };
        let page_count = match rules.page_count_selector.trim() {
            "" => None,
            css => Some(parse(css, "page-count selector")?),
        };
        if rules.attributes.iter().all(|a| a.trim().is_empty()) {
            return Err("no image attribute to read".into());
        }
        Ok(Self {
            image: parse(&rules.image_selector, "image selector")?,
            attributes: rules
                .attributes
                .iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| !a.is_empty())
                .collect(),
            host: rules.image_host.trim().to_ascii_lowercase(),
            page_count,
            base: Selector::parse("base[href]").expect("static selector"),
        })
    }

    pub fn scan(&self, html: &str, page_url: &Url) -> PageScan {
        let doc = Html::parse_document(html);
        let base = doc
            .select(&self.base)
            .next()
            .and_then(|e| e.value().attr("href"))
            .and_then(|href| page_url.join(href.trim()).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .unwrap_or_else(|| page_url.clone());

        let mut seen = HashSet::new();
        let mut images = Vec::new();
        for element in doc.select(&self.image) {
            let Some(url) = self.image_url(element, &base) else {
                continue;
            };
            if self.host_allowed(&url) && seen.insert(url.clone()) {
                images.push(url);
            }
        }
        let page_count = self
            .page_count
            .as_ref()
            .and_then(|s| doc.select(s).next())
            .and_then(|e| last_number(&e.text().collect::<String>()));
        PageScan { images, page_count }
    }

    fn image_url(&self, element: ElementRef<'_>, base: &Url) -> Option<Url> {
        let (name, value) = self.attributes.iter().find_map(|name| {
            let value = element.value().attr(name)?.trim();
            (!value.is_empty()).then_some((name, value))
        })?;
        let raw = if name.ends_with("srcset") { largest_srcset_candidate(value)? } else { value };
        let mut url = base.join(raw).ok()?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return None;
        }
        url.set_fragment(None);
        Some(url)
    }

    fn host_allowed(&self, url: &Url) -> bool {
        self.host.is_empty() || url.host_str().is_some_and(|h| h.contains(&self.host))
    }
}

/// The URL of the largest candidate in a `srcset` (`a.jpg 480w, b.jpg 1080w` or `1x, 2x`).
/// A candidate without a descriptor counts as `1x`.
fn largest_srcset_candidate(srcset: &str) -> Option<&str> {
    srcset
        .split(',')
        .filter_map(|candidate| {
            let mut parts = candidate.split_whitespace();
            let url = parts.next()?;
            let size = parts
                .next()
                .and_then(|d| {
                    // By suffix, not by byte offset: a descriptor may end in any character.
                    // Widths and densities are not comparable; widths are what sites use
                    // for galleries, so a width outranks any density.
                    let (number, bonus) = match d.strip_suffix('w') {
                        Some(number) => (number, 1e9),
                        None => (d.strip_suffix('x')?, 0.0),
                    };
                    let n = number.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0)?;
                    Some(n + bonus)
                })
                .unwrap_or(1.0);
            Some((url, size))
        })
        .fold(None, |best: Option<(&str, f64)>, (url, size)| match best {
            Some((_, best_size)) if best_size >= size => best,
            _ => Some((url, size)),
        })
        .map(|(url, _)| url)
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
        }
    }

    fn scan(rules: &ExtractRules, html: &str, page: &str) -> PageScan {
        Extractor::new(rules).unwrap().scan(html, &Url::parse(page).unwrap())
    }

    fn urls(scan: &PageScan) -> Vec<&str> {
        scan.images.iter().map(Url::as_str).collect()
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
        // Found by tests/it/props.rs: `1é` was split inside `é` and panicked.
        assert_eq!(largest_srcset_candidate("a.jpg 1é, b.jpg 2x"), Some("b.jpg"));
        assert_eq!(largest_srcset_candidate("a.jpg 1é"), Some("a.jpg"));
        // Not numbers a browser accepts: counted as no descriptor (1x), never the largest.
        assert_eq!(largest_srcset_candidate("a.jpg 2x, b.jpg NaNw, c.jpg infw"), Some("a.jpg"));
        assert_eq!(largest_srcset_candidate("a.jpg 2x, b.jpg -5w"), Some("a.jpg"));
    }

    #[test]
    fn bad_selectors_are_reported() {
        let mut r = rules("img[", &["src"], "");
        assert!(Extractor::new(&r).unwrap_err().contains("image selector"));
        r.image_selector = "img".into();
        r.page_count_selector = "li..x".into();
        assert!(Extractor::new(&r).unwrap_err().contains("page-count selector"));
    }

    #[test]
    fn broken_markup_still_yields_images() {
        let html = "<html><body><div><img src='a.jpg'<p><img src=b.jpg></table></body>";
        let s = scan(&rules("img", &["src"], ""), html, "http://h.example/");
        assert!(urls(&s).contains(&"http://h.example/b.jpg"));
    }
}
