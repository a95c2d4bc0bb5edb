//! Pages scanned under small rule sets, shared by the unit tests of every file here: most
//! rules are only seen working through a whole scan.

use url::Url;

use super::scan::Element;
use super::{DetailRules, ExtractRules, Extractor, LinkedImages, PageScan};

pub(super) fn rules(selector: &str, attributes: &[&str], host: &str) -> ExtractRules {
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

pub(super) fn scan(rules: &ExtractRules, html: &str, page: &str) -> PageScan {
    Extractor::new(rules).unwrap().scan(html, &Url::parse(page).unwrap())
}

pub(super) fn urls(scan: &PageScan) -> Vec<&str> {
    scan.urls().map(Url::as_str).collect()
}

/// The attributes `config::DEFAULT_IMAGE_ATTRIBUTES` lists (repeated: `html` does
/// not import the config).
pub(super) const DEFAULTS: &[&str] = &[
    "data-lazy-srcset",
    "data-srcset",
    "data-lazy-src",
    "data-src",
    "data-original",
    "data-orig-file",
    "srcset",
    "src",
];

pub(super) fn defaults() -> ExtractRules {
    rules("img, picture source", DEFAULTS, "")
}

pub(super) fn found(html: &str) -> Vec<(String, Element)> {
    let s = scan(&defaults(), html, "http://h.example/p/");
    s.images.iter().map(|f| (f.url.to_string(), f.element)).collect()
}

pub(super) fn one(html: &str) -> (String, Element) {
    let all = found(html);
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().unwrap()
}
