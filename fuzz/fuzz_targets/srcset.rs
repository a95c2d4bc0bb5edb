//! `html::srcset::parse` on any text: it must not panic; every candidate's URL is
//! non-empty, holds no ASCII whitespace and neither starts nor ends with a comma (the
//! standard's URL runs to whitespace, trailing commas end it); widths are above zero and
//! densities finite and not negative; and writing the candidates back out as a srcset and
//! parsing that again gives the same candidates.
#![no_main]

use image_scraper::html::srcset::{Size, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let candidates = parse(&text);
    let mut again = String::new();
    for c in &candidates {
        assert!(!c.url.is_empty(), "empty URL in {text:?}");
        assert!(!c.url.contains(['\t', '\n', '\x0C', '\r', ' ']), "{:?}", c.url);
        assert!(!c.url.starts_with(',') && !c.url.ends_with(','), "{:?}", c.url);
        match c.size {
            Size::Width(w) => {
                assert!(w > 0);
                again.push_str(&format!("{} {w}w, ", c.url));
            }
            Size::Density(x) => {
                assert!(x.is_finite() && x >= 0.0, "{x}");
                again.push_str(&format!("{} {x}x, ", c.url));
            }
        }
    }
    assert_eq!(parse(&again), candidates, "round trip of {text:?}");
});
