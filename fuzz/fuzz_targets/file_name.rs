//! `storage::file_name` and `with_suffix` on any URL a page can hold.
//!
//! Input: one byte that says how to read the rest, then the rest: a path after a fixed
//! origin (decoded as UTF-8, lossily), a whole URL, or raw bytes percent-encoded into a
//! path segment (so invalid UTF-8 reaches the percent-decoder).
#![no_main]

use image_scraper::storage::{file_name, with_suffix};
use image_scraper_fuzz::assert_safe_name;
use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Some((&how, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let raw = match how % 4 {
        0 => format!("https://h.example/{text}"),
        1 => format!("http://img.example/a/b/{text}"),
        2 => text.into_owned(),
        _ => {
            let encoded: String = rest
                .iter()
                .map(|&b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("https://h.example/x/{encoded}")
        }
    };
    let Ok(url) = Url::parse(&raw) else {
        return;
    };
    let name = file_name(&url);
    assert_safe_name(&name);
    // What the Coordinator does when the name is taken, once and then again.
    let suffixed = with_suffix(&name, &url);
    assert_safe_name(&suffixed);
    assert_ne!(suffixed.to_lowercase(), name.to_lowercase());
    assert_safe_name(&with_suffix(&format!("2-{suffixed}"), &url));
});
