//! Property tests for what a hostile page controls: the file names its image URLs become
//! (`storage`), what `html::Extractor` pulls out of any HTML, how `html::srcset` reads a
//! srcset, and the page URLs
//! `config::PageUrls` builds from a template. Public API only.
//!
//! Case counts are kept modest (fewer for the big inputs) so the whole module runs in a few
//! seconds in a debug build; `fuzz/` runs the same code for as long as you like.
//! Failures are not persisted to files: each one found so far is pinned as a plain test
//! at the bottom of this file, and in the unit tests beside the fixed code.

use std::collections::HashSet;
use std::path::{Component, Path};

use image_scraper::config::PageUrls;
use image_scraper::html::srcset::{self, Size};
use image_scraper::html::{ExtractRules, Extractor, LinkedImages, last_number};
use image_scraper::storage::{self, MAX_NAME_BYTES, OWN_PREFIX, file_name, with_suffix};
use proptest::prelude::*;
use proptest::test_runner::Config;
use url::Url;

/// `cases` per property, or `PROPTEST_CASES` for a longer hunt.
fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases),
        failure_persistence: None,
        ..Config::default()
    }
}

/// One of a fixed set of strings, as an owned `String`.
fn lit(choices: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(choices).prop_map(str::to_string)
}

/// Bidirectional controls (Unicode UAX #9: the implicit marks and the explicit
/// embeddings, overrides and isolates) and other invisible characters (zero-width, word
/// joiner, BOM, fillers, tags): in a name they make it look like another one.
const INVISIBLE: &[char] = &[
    '\u{061C}',
    '\u{200E}',
    '\u{200F}',
    '\u{202A}',
    '\u{202B}',
    '\u{202C}',
    '\u{202D}',
    '\u{202E}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{2060}',
    '\u{2063}',
    '\u{FEFF}',
    '\u{3164}',
    '\u{115F}',
    '\u{180E}',
    '\u{E0041}',
    '\u{E007F}',
];

/// Characters Windows refuses in a name; `file_name` replaces them so a folder of images can
/// be copied there.
const WINDOWS_RESERVED: &[char] = &[':', '*', '?', '"', '<', '>', '|'];

/// Everything a name must be to land directly inside the out dir and stay readable.
fn check_safe_name(name: &str) -> Result<(), TestCaseError> {
    prop_assert!(!name.is_empty());
    prop_assert!(name.len() <= MAX_NAME_BYTES, "{} bytes: {name:?}", name.len());
    prop_assert!(name != "." && name != "..", "{name:?}");
    prop_assert!(!name.starts_with('.'), "hidden or relative: {name:?}");
    prop_assert!(!name.starts_with(OWN_PREFIX), "{name:?}");
    for c in name.chars() {
        prop_assert!(c != '/' && c != '\\' && c != '\0', "separator or NUL in {name:?}");
        prop_assert!(!c.is_control(), "control {c:?} in {name:?}");
        prop_assert!(!INVISIBLE.contains(&c), "invisible {c:?} in {name:?}");
        prop_assert!(!WINDOWS_RESERVED.contains(&c), "{c:?} in {name:?}");
    }
    // Windows drops trailing dots and spaces, so `a.` and `a` would be one file there.
    prop_assert!(!name.ends_with(|c: char| c == '.' || c.is_whitespace()), "trailing dot or space: {name:?}");
    for out in [Path::new("/srv/out"), Path::new("out"), Path::new("./a/../out")] {
        let path = storage::destination(out, name);
        prop_assert_eq!(path.parent(), Some(out), "{:?} escapes {:?}", path, out);
        prop_assert_eq!(path.components().count(), out.components().count() + 1);
        prop_assert!(matches!(path.components().next_back(), Some(Component::Normal(_))));
        prop_assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(name));
    }
    Ok(())
}

/// `.jpg` for `cat.jpg`: what a name's extension is, as the README means it (short,
/// alphanumeric, after a non-empty stem).
fn short_extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && (1..=9).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| &name[stem.len()..])
}

/// A piece of a URL path segment, as a hostile page would write it.
fn path_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_-]{1,12}",
        2 => lit(&[
            "..", ".", "%2E", "%2e%2E", "%2F", "%2f", "%5C", "%5c", "%00", "%0A", "%0d", "%09", "%20",
            "%7F", "%C2%85", "%E2%80%AE", "%D8%9C", "%E2%81%A0", "%EF%BB%BF", "%FF", "%C3", " ", ".jpg",
            ".tar.gz", ".JPEG", ".", "\\", ":", "*", "?", "#", "%3A", "%3F", "%23", "%25", "%",
            "con", "NUL", "~", "-", "_", "é", "e\u{301}", "İ", "ß", "😀", "❤\u{FE0F}",
        ]),
        2 => any::<u8>().prop_map(|b| format!("%{b:02X}")),
        2 => any::<char>().prop_map(String::from),
        1 => any::<char>().prop_map(|c| {
            let mut buf = [0; 4];
            c.encode_utf8(&mut buf).bytes().map(|b| format!("%{b:02X}")).collect()
        }),
        2 => prop::sample::select(INVISIBLE).prop_map(String::from),
        1 => ("[a-zé. _%2E]|%20|%2e", 1..400usize).prop_map(|(s, n)| s.repeat(n)),
        1 => "\\PC{0,24}",
    ]
}

/// `https://host/` followed by 1 to 3 segments of pieces, maybe a query and a fragment.
/// The string may still be refused by `Url::parse`; the tests skip those.
fn hostile_url() -> impl Strategy<Value = String> {
    let segment = prop::collection::vec(path_piece(), 0..8).prop_map(|p| p.concat());
    (
        lit(&[
            "https://h.example/",
            "http://img.example/a/b/",
            "https://xn--caf-dma.example/",
            "http://127.0.0.1:8080/",
        ]),
        prop::collection::vec(segment, 1..4),
        prop::option::of("[a-z=&%0-9./]{0,10}"),
        prop::option::of("[a-z/.%]{0,10}"),
    )
        .prop_map(|(origin, segments, query, fragment)| {
            let mut url = origin + &segments.join("/");
            if let Some(q) = query {
                url = format!("{url}?{q}");
            }
            if let Some(f) = fragment {
                url = format!("{url}#{f}");
            }
            url
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn file_name_is_safe_and_deterministic(raw in hostile_url()) {
        let Ok(url) = Url::parse(&raw) else { return Ok(()) };
        let name = file_name(&url);
        check_safe_name(&name)?;
        // Same URL, parsed again: same name (the Coordinator and a re-run rely on it).
        prop_assert_eq!(&name, &file_name(&Url::parse(url.as_str()).unwrap()));
    }

    #[test]
    fn with_suffix_is_safe_distinct_and_keeps_the_extension(a in hostile_url(), b in hostile_url()) {
        let (Ok(a), Ok(b)) = (Url::parse(&a), Url::parse(&b)) else { return Ok(()) };
        let name = file_name(&a);
        let suffixed = with_suffix(&name, &a);
        check_safe_name(&suffixed)?;
        prop_assert_ne!(&suffixed, &name);
        prop_assert_ne!(suffixed.to_lowercase(), name.to_lowercase());
        prop_assert_eq!(&suffixed, &with_suffix(&name, &a));
        if let Some(ext) = short_extension(&name) {
            prop_assert!(suffixed.ends_with(ext), "{name:?} -> {suffixed:?} lost {ext:?}");
        }
        if a != b {
            // A 32-bit hash: equal by chance once in four billion.
            prop_assert_ne!(&suffixed, &with_suffix(&name, &b));
        }
        // What the Coordinator does on a second clash.
        check_safe_name(&with_suffix(&format!("2-{suffixed}"), &a))?;
    }

    #[test]
    fn with_suffix_of_any_safe_name_is_safe(
        raw_name in "[^./\\\\\\pC\\s](\\PC|\\.){0,160}", extension in "(\\.[a-zA-Z0-9]{0,11})?", raw in hostile_url(),
    ) {
        let Ok(url) = Url::parse(&raw) else { return Ok(()) };
        // Any name that passes for one `file_name` could have produced (up to the limit,
        // dots anywhere, maybe an extension), not only the ones it did produce.
        let mut name: String = raw_name
            .chars()
            .map(|c| if WINDOWS_RESERVED.contains(&c) || matches!(c, '/' | '\\') { '_' } else { c })
            .collect();
        name.push_str(&extension);
        while name.len() > MAX_NAME_BYTES {
            name.pop();
        }
        let name = name.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
        if check_safe_name(name).is_err() {
            return Ok(());
        }
        let suffixed = with_suffix(name, &url);
        check_safe_name(&suffixed)?;
        prop_assert_ne!(suffixed.as_str(), name);
        if let Some(ext) = short_extension(name) {
            prop_assert!(suffixed.ends_with(ext), "{name:?} -> {suffixed:?} lost {ext:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTML

/// An attribute value meant as an image URL, from plain to hostile.
fn url_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9]{1,8}\\.(jpg|png|gif)",
        1 => "/[a-z]{1,5}/[a-z]{1,5}\\.png(#[a-z]{0,4})?",
        1 => "(\\.\\./){1,3}[a-z]{1,5}\\.jpg",
        1 => "//(img|cdn|evil)\\.example(:[0-9]{1,5})?/[a-z]{1,5}",
        2 => "(https?|HTTPS?|ftp)://[a-z.]{1,12}(:[0-9]{1,6})?/[a-z%0-9]{0,10}(\\?[a-z=]{0,5})?(#[a-z]*)?",
        2 => lit(&[
            "javascript:alert(1)", "data:image/png;base64,AAAA", "mailto:x@y.example", "file:///etc/passwd",
            "http://[::1", "http://", "https:", "https:x.jpg", "  ", "", "#", "?", "http://%00/",
            "http://a b/", "http://xn--/", "http://0x7f.1/x.jpg", "http://[::1]:8080/x.jpg",
            "https://img.example.evil.test/x.jpg", "https://user:pw@img.example/x.jpg",
            "\\\\img.example\\x.jpg", "https://IMG.EXAMPLE/X.JPG", "blob:https://img.example/uuid",
            " \t\nhttps://img.example/ws.jpg\n ", "https://img.example/a b.jpg", "a.jpg#x", "a.jpg?#",
        ]),
        1 => "\\PC{0,30}",
        1 => any::<String>(),
    ]
}

/// A srcset: candidates with descriptors that may be anything, multibyte included.
fn srcset_value() -> impl Strategy<Value = String> {
    let descriptor = prop_oneof![
        lit(&[
            "", " 480w", " 1080w", " 2x", " 1.5x", " nan x", " NaNw", " infw", " -1w", " 1e400w", " x", " w"
        ]),
        "( [0-9.]{0,6}[wxh]?)",
        " \\PC{1,4}",
        any::<char>().prop_map(|c| format!(" 1{c}")),
    ];
    prop::collection::vec((url_value(), descriptor), 0..5).prop_map(|candidates| {
        candidates.into_iter().map(|(url, d)| format!("{url}{d}")).collect::<Vec<_>>().join(", ")
    })
}

/// A piece of a page: image tags in every form, `<base>`, the page-count element, broken
/// and unbalanced markup, entities, text in any script.
fn html_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => url_value().prop_map(|u| format!("<img src=\"{u}\">")),
        1 => url_value().prop_map(|u| format!("<IMG SRC={u} alt=x>")),
        1 => (url_value(), url_value()).prop_map(|(a, b)| format!("<img data-src='{a}' src='{b}'>")),
        2 => srcset_value().prop_map(|s| format!("<img srcset=\"{s}\">")),
        1 => srcset_value().prop_map(|s| format!("<picture><source srcset=\"{s}\"><img></picture>")),
        1 => url_value().prop_map(|u| format!("<base href=\"{u}\">")),
        1 => ("\\PC{0,12}", "[0-9]{0,12}", "[^<&]{0,6}")
            .prop_map(|(a, n, b)| format!("<li class=\"pag-text\">{a}{n}{b}</li>")),
        3 => lit(&[
            "<div>", "</div>", "<table>", "</table>", "<tr><td>", "<b>", "<i>", "</b>", "<p>", "<!--",
            "-->", "<script>", "</script>", "<style>", "<![CDATA[", "]]>", "&amp;", "&#0;", "&#x110000;",
            "&lt;img src=x.jpg&gt;", "<svg><image href='v.jpg'/></svg>", "<template>", "<noscript>",
            "\0", "<img src=\"open.jpg\"", "<img src=", "'", "\"", "<", ">", "</", "<!DOCTYPE html>",
            "<html>", "<head>", "<body>", "<frameset>", "<math><mi>", "<select><option>",
            "<textarea>", "<plaintext>", "<iframe srcdoc='<img src=in.jpg>'>", "<ul>", "</ul>",
            "</noscript>", "</template>", "<a href=\"big.PNG?x=1\">", "<a href='/wiki/File:X.jpg'>", "</a>",
            "<noscript><img data-src=n.jpg src=data:x></noscript>", "<noscript><a href=f.jpg><img src=t.jpg>",
        ]),
        2 => "\\PC{0,40}",
        1 => any::<String>(),
    ]
}

fn hostile_html() -> impl Strategy<Value = String> {
    prop::collection::vec(html_token(), 0..120).prop_map(|t| t.concat())
}

fn page_url() -> impl Strategy<Value = Url> {
    lit(&[
        "http://site.example/p1/cats.html",
        "https://img.example/",
        "http://127.0.0.1:8080/a/b/",
        "http://[::1]/x?y=1#z",
        "https://xn--caf-dma.example/p2/",
    ])
    .prop_map(|u| Url::parse(&u).unwrap())
}

fn rules() -> impl Strategy<Value = ExtractRules> {
    (
        lit(&["img", "img, source", "*", "[src]", "img[src$=jpg]", "div img", "body > img"]),
        prop::sample::select(vec![
            vec!["src"],
            vec!["data-src", "src"],
            vec!["srcset", "src"],
            vec!["data-src", "SRCSET", "data-srcset", "src"],
            vec!["href", "src"],
        ]),
        lit(&["", "example", "img.example", "IMG.Example ", "127.0.0.1"]),
        lit(&["li.pag-text", "", "li", "*"]),
    )
        .prop_flat_map(|first| {
            let links =
                prop::sample::select(vec![LinkedImages::Prefer, LinkedImages::Both, LinkedImages::Off]);
            (Just(first), (links, lit(&["", "a", "a[href*=wiki]"])))
        })
        .prop_map(|((selector, attributes, host, page_count), (linked_images, link_selector))| {
            ExtractRules {
                image_selector: selector,
                attributes: attributes.into_iter().map(String::from).collect(),
                image_host: host,
                page_count_selector: page_count,
                linked_images,
                link_selector,
                next_selector: Some(String::new()),
                detail: Default::default(),
            }
        })
}

/// Every URL `scan` hands the Coordinator can be fetched and named.
fn check_scan(rules: &ExtractRules, html: &str, page: &Url) -> Result<(), TestCaseError> {
    let extractor = Extractor::new(rules).map_err(TestCaseError::fail)?;
    let scan = extractor.scan(html, page);
    let host_filter = rules.image_host.trim().to_ascii_lowercase();
    let mut seen = HashSet::new();
    for url in scan.urls() {
        prop_assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
        prop_assert!(!url.cannot_be_a_base(), "{url}");
        prop_assert_eq!(url.fragment(), None, "{}", url);
        prop_assert!(seen.insert(url.as_str()), "duplicate {url}");
        if !host_filter.is_empty() {
            prop_assert!(url.host_str().unwrap().contains(&host_filter), "{url} passed {host_filter:?}");
        }
        check_safe_name(&file_name(url))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn scan_of_hostile_markup_yields_only_clean_urls(
        rules in rules(), html in hostile_html(), page in page_url(),
    ) {
        check_scan(&rules, &html, &page)?;
    }

    #[test]
    fn scan_of_random_bytes_never_panics(
        rules in rules(), bytes in prop::collection::vec(any::<u8>(), 0..8192), page in page_url(),
    ) {
        check_scan(&rules, &String::from_utf8_lossy(&bytes), &page)?;
    }

    #[test]
    fn last_number_is_the_trailing_number(
        before in "\\PC{0,12}", n in any::<u32>(), after in "[^0-9]{0,12}",
    ) {
        prop_assume!(!before.ends_with(|c: char| c.is_ascii_digit()));
        let text = format!("{before}{n}{after}");
        prop_assert_eq!(last_number(&text), Some(n), "{:?}", text);
    }

    #[test]
    fn last_number_never_panics(text in any::<String>()) {
        if let Some(n) = last_number(&text) {
            prop_assert!(text.contains(&n.to_string()));
        }
    }

    #[test]
    fn page_count_is_read_in_any_script(before in "[^<&0-9]{0,12}", n in any::<u32>()) {
        let extractor = Extractor::new(&ExtractRules {
            image_selector: "img".into(),
            attributes: vec!["src".into()],
            image_host: String::new(),
            page_count_selector: "li.pag-text".into(),
            linked_images: Default::default(),
            link_selector: String::new(),
            next_selector: Some(String::new()),
            detail: Default::default(),
        })
        .unwrap();
        let html = format!("<ul><li class=\"pag-text\">{before}{n}</li></ul>");
        let scan = extractor.scan(&html, &Url::parse("http://h.example/").unwrap());
        prop_assert_eq!(scan.page_count, Some(n));
    }
}

/// A URL as CDNs write them in a srcset: commas, parentheses, queries and percent signs
/// inside, never whitespace, never a comma first or last.
fn srcset_url() -> impl Strategy<Value = String> {
    let segment = "[a-z0-9_]{1,6}(,[a-z]_[0-9a-z]{1,4}){0,3}(\\([0-9]\\))?";
    (
        lit(&["", "/", "https://res.cloudinary.com/", "//cdn.example/", "../"]),
        prop::collection::vec(segment, 1..4),
        lit(&[".jpg", ".png", ".webp", ""]),
        lit(&["", "?resize=198,178", "?w=600&h=400,crop", "?a=%2C"]),
    )
        .prop_map(|(start, segments, ext, query)| format!("{start}{}{ext}{query}", segments.join("/")))
}

/// A size and how a page might write it.
fn srcset_size() -> impl Strategy<Value = (Option<Size>, String)> {
    prop_oneof![
        (1u32..5000).prop_map(|w| (Some(Size::Width(w)), format!("{w}w"))),
        (1u32..40)
            .prop_map(|t| (Some(Size::Density(f64::from(t) / 4.0)), format!("{}x", f64::from(t) / 4.0))),
        Just((Some(Size::Density(1.0)), String::new())),
        // Invalid: the candidate is dropped.
        lit(&["0w", "-1x", "2q", "1.x", "3w 2x", "200h"]).prop_map(|d| (None, d)),
    ]
}

/// ASCII whitespace runs a page might put around separators.
fn odd_space() -> impl Strategy<Value = String> {
    prop::collection::vec(lit(&[" ", "\t", "\n", "\r", "\x0C"]), 0..3).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn srcset_keeps_commas_inside_urls_and_drops_only_invalid_candidates(
        parts in prop::collection::vec((srcset_url(), srcset_size(), odd_space(), odd_space()), 1..6),
    ) {
        let mut text = String::new();
        let mut expected = Vec::new();
        for (url, (size, written), before, after) in &parts {
            text.push_str(before);
            text.push_str(url);
            if !written.is_empty() {
                text.push(' ');
                text.push_str(written);
            } else if !after.is_empty() {
                text.push_str(after);
            }
            // A comma right after a URL with no descriptor would end it too (trailing
            // commas); after whitespace it separates.
            text.push_str(if written.is_empty() && after.is_empty() { ", " } else { "," });
            text.push_str(after);
            if let Some(size) = size {
                expected.push((url.clone(), *size));
            }
        }
        let got: Vec<(String, Size)> = srcset::parse(&text).into_iter().map(|c| (c.url.to_string(), c.size)).collect();
        prop_assert_eq!(got, expected, "{:?}", text);
    }

    #[test]
    fn srcset_of_any_text_gives_well_formed_candidates(text in "[ a-z0-9,.()\\t\\n/:?=%-]{0,80}|\\PC{0,40}") {
        for c in srcset::parse(&text) {
            prop_assert!(!c.url.is_empty());
            prop_assert!(!c.url.contains([' ', '\t', '\n', '\r', '\x0C']), "{:?}", c.url);
            prop_assert!(!c.url.starts_with(',') && !c.url.ends_with(','), "{:?}", c.url);
            match c.size {
                Size::Width(w) => prop_assert!(w > 0),
                Size::Density(x) => prop_assert!(x.is_finite() && x >= 0.0),
            }
        }
    }
}

/// What a generated gallery page holds, and what `scan` must return for it.
fn gallery(count: usize, noise: &[u8]) -> (String, Vec<String>) {
    let mut html = String::from("<!DOCTYPE html><html><head><title>g</title></head><body><ul>");
    let mut expected = Vec::new();
    for i in 0..count {
        let url = format!("https://img.example/{}/{i}-%C3%A9 x.jpg", i % 7);
        // Written three ways: absolute, protocol-relative and path-absolute (the page is
        // on img.example), plus noise a real page has between the images.
        let written = match i % 3 {
            0 => url.clone(),
            1 => url.trim_start_matches("https:").to_string(),
            _ => url.trim_start_matches("https://img.example").to_string(),
        };
        html.push_str(&format!("<li><a href=\"/v/{i}\"><img alt=\"{i}\" src=\"{written}\"></a>"));
        match noise.get(i).map(|n| n % 5) {
            Some(0) => html.push_str("<img src=\"https://ads.test/banner.gif\">"),
            Some(1) if i > 0 => html.push_str(&format!("<img src='{}#dup'>", expected[i - 1])),
            Some(2) => html.push_str("<img src=\"data:image/gif;base64,R0lGOD\"><img>"),
            Some(3) => html.push_str("<p>unclosed <b>bold <i>"),
            _ => {}
        }
        expected.push(Url::parse(&url).unwrap().to_string());
    }
    html.push_str("</ul><li class=pag-text>Page 1 of 12</li></body></html>");
    (html, expected)
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn scan_returns_every_distinct_image_in_order(
        count in 0..3000usize, noise in prop::collection::vec(any::<u8>(), 3000),
    ) {
        let extractor = Extractor::new(&ExtractRules {
            image_selector: "img".into(),
            attributes: vec!["src".into()],
            image_host: "img.example".into(),
            page_count_selector: "li.pag-text".into(),
            linked_images: Default::default(),
            link_selector: String::new(),
            next_selector: Some(String::new()),
            detail: Default::default(),
        })
        .unwrap();
        let (html, expected) = gallery(count, &noise);
        let scan = extractor.scan(&html, &Url::parse("https://img.example/p1/cats.html").unwrap());
        let got: Vec<String> = scan.urls().map(Url::to_string).collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(scan.page_count, Some(12));
    }

    #[test]
    fn deep_nesting_and_huge_values_are_survived(
        depth in 0..10_000usize,
        open in lit(&["<div>", "<b>", "<table>", "<span><p>", "<a>", "<li>", "<font>", "<svg>"]),
        value_len in 0..(1usize << 18),
    ) {
        let extractor = Extractor::new(&ExtractRules {
            image_selector: "img, image".into(),
            attributes: vec!["srcset".into(), "src".into()],
            image_host: String::new(),
            page_count_selector: "li.pag-text".into(),
            linked_images: Default::default(),
            link_selector: String::new(),
            next_selector: Some(String::new()),
            detail: Default::default(),
        })
        .unwrap();
        let long = "a".repeat(value_len);
        let html = format!(
            "{}<img src=\"deep.jpg\"><img src=\"/{long}.jpg\"><img srcset=\"{long}.png 1w,{long}.gif 2w\">{}",
            open.repeat(depth),
            "<li class=pag-text>1 of 3</li>"
        );
        let page = Url::parse("http://h.example/").unwrap();
        let scan = extractor.scan(&html, &page);
        // Inside `<svg>` an `<img>` is a foreign element; html5ever breaks out of svg for
        // it, so the image is still found.
        prop_assert!(scan.urls().any(|u| *u == page.join("deep.jpg").unwrap()), "{open} x {depth}");
        prop_assert!(scan.images.len() <= 3);
        for url in scan.urls() {
            check_safe_name(&file_name(url))?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Page URLs

fn template_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => lit(&["{page}", "{item}", "p", "/", ".html", "-"]),
        3 => lit(&[
            "//", "%", "2", "%2", ":", "?", "#", "..", ".", "\\", "h", "@", "[", "]", " ", "\t", "\n", "{",
            "}", "{page", "page}", "{{page}}", "{ITEM}", "javascript:", "http:", "https:", "mailto:",
            "file:", "data:", "~", "%2F", "%00", "0x", "[::1]", "é", "\u{202E}",
        ]),
        1 => "\\PC{0,4}",
        1 => any::<char>().prop_map(String::from),
    ]
}

fn item() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z]{1,8}",
        1 => lit(&["{page}", "{item}", "../..", "//evil.example", "%2F", "a b", "a?b#c", "é", "", " "]),
        1 => "\\PC{0,10}",
        1 => any::<String>(),
    ]
}

fn site_url() -> impl Strategy<Value = Url> {
    lit(&[
        "https://www.example.com/",
        "https://www.example.com/gallery",
        "http://h.example/a/b?q=1",
        "http://h.example/a/b/#frag",
        "http://127.0.0.1:8080",
        "http://[::1]:1/x/",
        "https://user:pw@h.example/g/",
        // Not http(s): `new` must refuse these, not panic.
        "ftp://h.example/g/",
        "file:///tmp/g/",
        "mailto:me@h.example",
        "data:text/plain,x",
    ])
    .prop_map(|u| Url::parse(&u).unwrap())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn page_urls_are_http_for_every_page(
        base in site_url(),
        template in prop::collection::vec(template_piece(), 0..10).prop_map(|p| p.concat()),
        item in item(),
        n in any::<u32>(),
    ) {
        let Ok(urls) = PageUrls::new(base.clone(), &template, &item) else { return Ok(()) };
        // "URL" is taken as a folder, and `PAGE_PATH` with `{page}` and `{item}` filled in
        // is joined to it.
        let mut folder = base.clone();
        if !folder.path().ends_with('/') {
            let path = format!("{}/", folder.path());
            folder.set_path(&path);
        }
        for page in [1, 2, 9, 10, 11, 99, 100, 12_345, n, u32::MAX - 1, u32::MAX] {
            let url = urls.url(page);
            prop_assert!(matches!(url.scheme(), "http" | "https"), "{url}");
            prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
            let path = template.replace("{page}", &page.to_string()).replace("{item}", &item);
            prop_assert_eq!(Ok(url), folder.join(&path), "page {}, template {:?}", page, template);
        }
    }
}

// ---------------------------------------------------------------------------------------
// What the properties found, pinned.

#[test]
fn found_multibyte_character_before_the_page_count_does_not_panic() {
    // `第1页 共48页`: the byte after `共` was taken as the start of the number.
    assert_eq!(last_number("第1页 共48页"), Some(48));
    assert_eq!(last_number("é5"), Some(5));
}

#[test]
fn found_multibyte_srcset_descriptor_does_not_panic() {
    let extractor = Extractor::new(&ExtractRules {
        image_selector: "img".into(),
        attributes: vec!["srcset".into()],
        image_host: String::new(),
        page_count_selector: String::new(),
        linked_images: Default::default(),
        link_selector: String::new(),
        next_selector: Some(String::new()),
        detail: Default::default(),
    })
    .unwrap();
    let scan =
        extractor.scan("<img srcset=\"a.jpg 1é, b.jpg 2x\">", &Url::parse("http://h.example/").unwrap());
    assert_eq!(scan.urls().collect::<Vec<_>>(), [&Url::parse("http://h.example/b.jpg").unwrap()]);
}

#[test]
fn found_template_valid_for_pages_1_and_max_but_not_3() {
    // `%2` + `3` is `%23`, a `#` inside the host: no URL. `new` accepted the template because
    // pages 1 (`h!`) and 4294967295 (`h$...`) make URLs, and `url(3)` then silently
    // returned the site's own URL, so page 3 fetched the gallery root.
    // `new` now refuses it: a template some page number cannot make a URL of is no
    // template. Asserted, not assumed: an `if let Ok` here ran no assertion at all once
    // `new` refused it (issue 20), and would hide a `new` that accepted it again.
    let base = Url::parse("https://www.example.com/").unwrap();
    let made = PageUrls::new(base.clone(), "//h%2{page}/", "cats");
    assert!(made.is_err(), "accepted: page 3 would be {:?}", made.map(|urls| urls.url(3)));
}
