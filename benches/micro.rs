//! Microbenchmarks of the hot pure functions (criterion; public API only):
//!
//! - `html::Extractor::scan` on a large listing page (2000 gallery `<img>` tags amid
//!   realistic noise: scripts, styles, navigation, foreign-host and `data:` images, srcsets,
//!   comments) and on one page of the `bench/` gallery (40 images), with the rules
//!   `bench/run.sh` uses and with the defaults; and on a page of 100,000 nested `<div>`s
//!   (1.1 MB), which the parser's depth bound keeps linear (html5ever alone: quadratic);
//! - `storage::file_name` and `storage::with_suffix` on realistic and hostile URLs;
//! - `fetch::dimensions::HeaderProbe::feed` on an image's first 16 KiB chunk (JPEG with an
//!   EXIF block before its frame header, PNG): what every stored image now pays for the
//!   manifest's `width` and `height`.
//!
//! `cargo bench --bench micro` (add `-- --quick` for a fast pass, or a filter such as
//! `-- scan`). Timings only: nothing here asserts a speed.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use image_scraper::html::{ExtractRules, Extractor};
use image_scraper::storage::{file_name, with_suffix};
use url::Url;

/// The benchmark gallery's origin (`bench/run.sh`: images under a path segment named after the host).
const ORIGIN: &str = "http://127.0.0.1:18080";
/// A real gallery's: pages on www, images on their own host (what the default rules expect).
const SITE: &str = "https://www.stockfreeimages.com";
const IMAGES: &str = "https://images.stockfreeimages.com";

/// A listing page shaped like a real gallery's, with `images` gallery images on it.
fn large_page(images: usize) -> String {
    let mut html = String::with_capacity(images * 700);
    html.push_str(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Cats - free stock photos, page 3</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/site.css?v=20240101"><link rel="icon" href="/favicon.ico">
<style>.thumb{display:inline-block;margin:4px}.thumb img{max-width:240px}/* <img src="x.jpg"> */</style>
<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}
var tpl = '<img src="https://images.stockfreeimages.com/never.jpg">'; gtag('js', new Date());</script>
</head><body class="gallery-page">
<header><a href="/"><img src="/static/logo.png" alt="logo" width="120" height="40"></a>
<nav><ul>"#,
    );
    for n in 0..30 {
        let _ = write!(html, r#"<li class="nav-item"><a href="/category/topic-{n}.html">Topic {n}</a></li>"#);
    }
    html.push_str("</ul></nav>\n<img src=\"http://ads.example.invalid/banner.gif\" alt=\"ad\"></header>\n");
    html.push_str("<main><div class=\"gallery\">\n");
    for k in 0..images {
        let url = format!("{IMAGES}/{}/cats-{:04}-{:03}.jpg", 1000 + k, k / 40 + 1, k % 40);
        let _ = write!(
            html,
            r#"  <div class="thumb" data-id="{k}" itemscope itemtype="http://schema.org/ImageObject">
    <a href="/photo/cats-{k}.html" title="Cat number {k} &amp; friends"><img src="{url}" alt="cat {k}" loading="lazy" width="240" height="160" srcset="{url} 1x, {url}?w=480 2x"></a>
    <span class="by">by <a href="/user/u{k}">user{k}</a></span>
"#
        );
        if k % 10 == 0 {
            let _ = write!(
                html,
                r#"    <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt=""><!-- ad slot {k} -->
    <img src="https://cdn.other.example/pixel-{k}.png" alt="">
"#
            );
        }
        html.push_str("  </div>\n");
    }
    html.push_str(
        r#"</div></main>
<ul class="pagination"><li><a href="/p2/cats.html">prev</a></li><li class="pag-cur">Page 3</li>
<li class="pag-text">of 48</li><li><a href="/p4/cats.html">next</a></li></ul>
<footer><p>&copy; 2024 Example &mdash; <a href="/terms">terms</a></p>
<script src="/static/app.js" defer></script></footer></body></html>
"#,
    );
    html
}

/// `depth` nested `<div>`s with an image at the bottom: a hostile page's shape.
fn deep_page(depth: usize) -> String {
    format!("{}<img src=\"{IMAGES}/deep.jpg\">{}", "<div>".repeat(depth), "</div>".repeat(depth))
}

/// One page of `bench/gen_fixture.py`'s gallery (40 images, one decoy), as the benchmark serves it.
fn bench_page(n: usize) -> String {
    let imgs: String = (0..40)
        .map(|k| {
            let url = format!("{ORIGIN}/images.stockfreeimages.com/cats-{n:04}-{k:03}.jpg");
            format!(
                "  <div class=\"thumb\"><a href=\"#{k}\"><img src=\"{url}\" alt=\"cats {n}-{k}\"></a></div>\n"
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cats - page {n}</title></head><body>\n\
         <header><img src=\"/static/logo.png\" alt=\"logo\"></header>\n<div class=\"gallery\">\n{imgs}</div>\n\
         <ul class=\"pagination\"><li class=\"pag-cur\">Page {n}</li><li class=\"pag-text\">of 50</li></ul>\n\
         </body></html>\n"
    )
}

fn rules(selector: &str, host: &str) -> ExtractRules {
    ExtractRules {
        image_selector: selector.into(),
        attributes: vec!["src".into()],
        image_host: host.into(),
        page_count_selector: "li.pag-text".into(),
        linked_images: Default::default(),
        link_selector: String::new(),
        next_selector: Some(String::new()),
        detail: Default::default(),
    }
}

fn scan(c: &mut Criterion) {
    let page_url = Url::parse(&format!("{SITE}/p3/cats.html")).unwrap();
    let bench_url = Url::parse(&format!("{ORIGIN}/p3/cats.html")).unwrap();
    let large = large_page(2000);
    let small = bench_page(3);
    // What bench/run.sh configures, and the tool's defaults (every img, then the host filter).
    let bench_rules = Extractor::new(&rules(r#"img[src*="images.stockfreeimages.com"]"#, "")).unwrap();
    // The tool's defaults include its next-link rules, which read every link of a page.
    let mut default_rules = rules("img", "images.stockfreeimages.com");
    default_rules.next_selector = None;
    let default_rules = Extractor::new(&default_rules).unwrap();
    let mut srcset_rules = rules("img", "images.stockfreeimages.com");
    srcset_rules.attributes = vec!["srcset".into(), "src".into()];
    let srcset_rules = Extractor::new(&srcset_rules).unwrap();

    // Sanity: the benchmarks measure the work they claim to.
    let found = bench_rules.scan(&large, &page_url);
    assert_eq!((found.images.len(), found.page_count), (2000, Some(48)));
    assert_eq!(default_rules.scan(&large, &page_url).images.len(), 2000);
    assert_eq!(srcset_rules.scan(&large, &page_url).images.len(), 2000);
    assert_eq!(bench_rules.scan(&small, &bench_url).images.len(), 40);

    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(large.len() as u64));
    g.bench_function("large_2000_imgs/bench_selector", |b| {
        b.iter(|| bench_rules.scan(black_box(&large), black_box(&page_url)))
    });
    g.bench_function("large_2000_imgs/default_rules", |b| {
        b.iter(|| default_rules.scan(black_box(&large), black_box(&page_url)))
    });
    g.bench_function("large_2000_imgs/srcset_first", |b| {
        b.iter(|| srcset_rules.scan(black_box(&large), black_box(&page_url)))
    });
    g.throughput(Throughput::Bytes(small.len() as u64));
    g.bench_function("bench_page_40_imgs", |b| {
        b.iter(|| bench_rules.scan(black_box(&small), black_box(&bench_url)))
    });
    g.finish();

    let deep = deep_page(100_000);
    assert_eq!(default_rules.scan(&deep, &page_url).images.len(), 1);
    let mut g = c.benchmark_group("scan_deep");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(deep.len() as u64));
    g.bench_function("nested_100000_divs", |b| {
        b.iter(|| default_rules.scan(black_box(&deep), black_box(&page_url)))
    });
    g.finish();

    c.bench_function("extractor_new", |b| {
        b.iter(|| Extractor::new(black_box(&rules(r#"img[src*="images.stockfreeimages.com"]"#, ""))))
    });
}

fn naming(c: &mut Criterion) {
    let realistic: Vec<Url> = (0..2000)
        .map(|k| {
            Url::parse(&format!(
                "{ORIGIN}/images.stockfreeimages.com/cats-{:04}-{:03}.jpg",
                k / 40 + 1,
                k % 40
            ))
            .unwrap()
        })
        .collect();
    let long_segment = format!("https://img.example/{}.jpg", "very-long-name-".repeat(70));
    let hostile: Vec<(&str, String)> = vec![
        ("plain", "https://images.stockfreeimages.com/123/cat-on-a-mat.jpg".into()),
        ("query_and_fragment", "https://cdn.example/i/cat.jpg?w=1200&h=800&fit=crop&auto=format#x".into()),
        ("percent_utf8", "https://img.example/%E7%8C%AB/%E3%81%AD%E3%81%93%20%F0%9F%90%88.jpg".into()),
        ("traversal", "https://evil.example/a/..%2F..%2F..%2Fetc%2Fpasswd".into()),
        ("bidi_control", "https://evil.example/x/%E2%80%AEgpj.exe%00%0A%E2%80%8B%E2%80%8Bcat.jpg".into()),
        ("reserved_chars", "https://evil.example/a%5Cb%3Ac%2Ad%3Fe%22f%3Cg%3Eh%7Ci.jpg".into()),
        ("dots_only", "https://evil.example/a/...%20..".into()),
        ("empty_last_segment", "https://img.example/gallery/".into()),
        ("long_1000_bytes", long_segment),
    ];
    let hostile: Vec<(&str, Url)> =
        hostile.into_iter().map(|(name, u)| (name, Url::parse(&u).unwrap())).collect();

    let mut g = c.benchmark_group("file_name");
    g.throughput(Throughput::Elements(realistic.len() as u64));
    g.bench_function("realistic_x2000", |b| {
        b.iter(|| {
            for url in &realistic {
                black_box(file_name(black_box(url)));
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    for (name, url) in &hostile {
        g.bench_function(*name, |b| b.iter(|| file_name(black_box(url))));
    }
    g.finish();

    let mut g = c.benchmark_group("with_suffix");
    let url = &realistic[7];
    let name = file_name(url);
    g.bench_function("realistic", |b| b.iter(|| with_suffix(black_box(&name), black_box(url))));
    let long = &hostile.last().unwrap().1;
    let long_name = file_name(long);
    g.bench_function("long_150_bytes", |b| b.iter(|| with_suffix(black_box(&long_name), black_box(long))));
    let unicode = &hostile[2].1;
    let unicode_name = file_name(unicode);
    g.bench_function("percent_utf8", |b| {
        b.iter(|| with_suffix(black_box(&unicode_name), black_box(unicode)))
    });
    // What the Coordinator does per image: name, and on a clash the suffixed name.
    g.bench_function("name_then_suffix_x2000", |b| {
        b.iter_batched(
            || realistic.clone(),
            |urls| {
                for url in &urls {
                    let n = file_name(url);
                    black_box(with_suffix(&n, url));
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A JPEG's first chunk: SOI, a 4 KiB APP1 (EXIF) segment, then the frame header.
fn jpeg_chunk() -> Vec<u8> {
    let mut body = b"\xFF\xD8\xFF\xE1\x10\x00".to_vec();
    body.resize(body.len() + 0x1000 - 2, 0x45);
    body.extend_from_slice(b"\xFF\xC0\x00\x11\x08\x03\x00\x04\x00\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01");
    body.resize(16 << 10, 0x80);
    body
}

fn header_probe(c: &mut Criterion) {
    use image_scraper::fetch::dimensions::{DimensionFilter, HeaderProbe};
    let mut g = c.benchmark_group("header_probe");
    let mut png = image_scraper::demo::png(image_scraper::demo::Picture::Cover);
    png.resize(16 << 10, 0);
    for (name, chunk) in [("jpeg_exif_16k", jpeg_chunk()), ("png_16k", png)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut probe = HeaderProbe::new(DimensionFilter::default());
                black_box(probe.feed(black_box(&chunk)));
                black_box(probe.size())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, scan, naming, header_probe);
criterion_main!(benches);
