//! `html::Extractor::scan` on any page: it must not panic, and every URL it returns must be
//! a fetchable http(s) URL on the allowed host whose file name is safe.
//!
//! Input: one byte that picks the rules and the decoding (UTF-8, lossily, or Latin-1,
//! which lets every byte through as a character: NULs, controls, C1), then the page.
#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use image_scraper::html::{ExtractRules, Extractor};
use image_scraper::storage::file_name;
use image_scraper_fuzz::{assert_image_url, assert_safe_name};
use libfuzzer_sys::fuzz_target;
use url::Url;

/// (rules, page URL) pairs: the defaults, attribute lists with srcset, a host filter,
/// selectors that walk ancestors.
static SETUPS: LazyLock<Vec<(Extractor, String, Url)>> = LazyLock::new(|| {
    let setup = |selector: &str, attributes: &[&str], host: &str, count: &str, page: &str| {
        let rules = ExtractRules {
            image_selector: selector.into(),
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
            image_host: host.into(),
            page_count_selector: count.into(),
            linked_images: Default::default(),
            link_selector: String::new(),
            next_selector: String::new(),
            detail: Default::default(),
        };
        (Extractor::new(&rules).unwrap(), host.to_ascii_lowercase(), Url::parse(page).unwrap())
    };
    vec![
        setup("img", &["src"], "", "li.pag-text", "http://site.example/p1/cats.html"),
        setup("img", &["src"], "img.example", "li.pag-text", "https://img.example/p2/"),
        setup("img, source", &["data-src", "srcset", "src"], "", "*", "http://[::1]:8080/a/b?c#d"),
        setup("div img, a > img", &["data-srcset", "src"], "example", "li", "https://www.example/"),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Some((&how, rest)) = data.split_first() else {
        return;
    };
    let html = if how & 0x80 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        rest.iter().map(|&b| b as char).collect()
    };
    let (extractor, host, page) = &SETUPS[usize::from(how & 0x7f) % SETUPS.len()];
    let scan = extractor.scan(&html, page);
    let mut seen = HashSet::new();
    for url in scan.urls() {
        assert_image_url(url, host);
        assert!(seen.insert(url.as_str()), "duplicate {url}");
        assert_safe_name(&file_name(url));
    }
});
