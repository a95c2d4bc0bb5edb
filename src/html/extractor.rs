//! [`Extractor`]: the rules compiled once per worker rather than per page, and one scan of
//! a page from parse to [`PageScan`] (base URL, the tree walk, duplicates, page count,
//! next link, pager), so every fact on a page comes from one parse.

use std::collections::HashSet;

use scraper::{ElementRef, Html, Selector};
use url::Url;

use super::detail::{self, DetailImages};
use super::rules::{ExtractRules, LinkedImages, optional_selector, parse_selector};
use super::scan::PageScan;
use super::url_text::{host_matches, last_number};
use super::walk::{Entry, TreeWalk};
use super::{next, pager, parse};

/// An attribute to read, as configured.
#[derive(Debug)]
pub(super) struct Attribute {
    /// Lower-cased.
    pub(super) name: String,
    pub(super) srcset: bool,
    /// Set by a lazy loader's script: where the real image is when the page also has a
    /// placeholder in `src`/`srcset`.
    pub(super) lazy: bool,
}

/// [`ExtractRules`] with the selectors parsed once.
#[derive(Debug)]
pub struct Extractor {
    pub(super) image: Selector,
    pub(super) attributes: Vec<Attribute>,
    /// Lower-cased, since `Url` lower-cases hosts.
    host: String,
    page_count: Option<Selector>,
    /// `<base href>` changes what relative URLs resolve against, as in a browser.
    base: Selector,
    pub(super) links: LinkedImages,
    pub(super) link_selector: Option<Selector>,
    next: NextRule,
    /// `DETAIL_SELECTOR`: links to a page per image, on listing pages.
    pub(super) detail_links: Option<Selector>,
    /// `DETAIL_IMAGE_SELECTOR`: the images of a detail page; `None`: `image`'s. When set,
    /// it alone says what an image is there: links it matches are linked originals
    /// whatever their extension, links it does not match are not images.
    pub(super) detail_image: Option<Selector>,
    pub(super) detail_images: DetailImages,
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

        let mut walk = TreeWalk::new(&base, detail_page);
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

    /// An absolute http(s) URL without a fragment, or `None`.
    pub(super) fn resolve(&self, raw: &str, base: &Url) -> Option<Url> {
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

    pub(super) fn host_allowed(&self, url: &Url) -> bool {
        host_matches(&self.host, url)
    }
}

/// `urls` in document order, each once.
fn distinct(urls: Vec<Url>) -> Vec<Url> {
    let mut seen = HashSet::new();
    urls.into_iter().filter(|u| seen.insert(u.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::fixtures::*;

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
    fn duplicates_data_uris_and_junk_are_dropped() {
        let html = r#"<img src="a.jpg"><img src="a.jpg"><img src="a.jpg#x">
            <img src="data:image/png;base64,AAAA"><img src="javascript:alert(1)">
            <img src=""><img><img src="http://[::1">"#;
        let s = scan(&rules("img", &["src"], ""), html, "http://h.example/");
        assert_eq!(urls(&s), ["http://h.example/a.jpg"]);
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
    fn bad_selectors_are_reported() {
        let mut r = rules("img[", &["src"], "");
        assert!(Extractor::new(&r).unwrap_err().contains("image selector"));
        r.image_selector = "img".into();
        r.page_count_selector = "li..x".into();
        assert!(Extractor::new(&r).unwrap_err().contains("page-count selector"));
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
