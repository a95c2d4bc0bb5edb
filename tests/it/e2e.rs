//! The real binary, end to end, in both modes: files on disk byte for byte, the summary
//! line, the report and the exit status.

use std::collections::BTreeSet;
use std::path::Path;

use image_scraper::demo::{self, DemoServer, Gallery};
use url::Url;

use crate::helpers::{Reply, TestServer, images, read_report, run_binary, write_settings};

/// Runs against a demo gallery served by this test process and checks every file.
fn scrape_demo_gallery(mode: &str, workers: &str, concurrency: usize) {
    let gallery = Gallery { pages: 3, per_page: 7, ..Gallery::default() };
    let server = DemoServer::start(gallery).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let origin = server.url().as_str().trim_end_matches('/').to_string();
    write_settings(dir.path(), &origin, &format!("  CONCURRENCY: {concurrency}\n"));

    let run = run_binary(dir.path(), &["-m", mode, "-p", workers, "--report", "report.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let n = gallery.image_count();
    run.assert_line(&format!("Done, success: {n}/{n}, failure: 0/{n}"));
    run.assert_line("Pages, success: 3/3, failure: 0/3");
    run.assert_line("the walk ended after page 3: the site states 3 pages");

    let report = read_report(&dir.path().join("report.json"));
    assert_eq!(report["mode"], mode);
    assert_eq!(report["workers"], workers.parse::<u64>().unwrap());
    assert_eq!(
        report["pages"],
        serde_json::json!({"total": 3, "ok": 3, "failed": 0, "skipped": 0,
        "detail_ok": 0, "detail_failed": 0, "detail_skipped": 0, "rendered": 0, "unrendered": 0})
    );
    assert_eq!(report["images"]["total"], n);
    assert_eq!(report["images"]["ok"], n);
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), n as usize);

    let files = images(&dir.path().join("images"));
    let mut total = 0;
    for item in items {
        assert_eq!(item["status"], "ok");
        let url = Url::parse(item["url"].as_str().unwrap()).unwrap();
        let picture = gallery.picture(url.path().strip_prefix("/img/").unwrap()).unwrap();
        let path = item["path"].as_str().unwrap();
        let on_disk = files.get(path).unwrap_or_else(|| panic!("{path} missing"));
        assert!(on_disk == &demo::png(picture), "{path} differs from {url}");
        assert_eq!(item["bytes"], on_disk.len());
        total += on_disk.len();
    }
    assert_eq!(report["images"]["bytes"], total);
    let paths: BTreeSet<&str> = items.iter().map(|i| i["path"].as_str().unwrap()).collect();
    let names: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(paths, names, "exactly the reported files, no temporary or extra ones");
    assert!(names.contains("cats-1-1.png"), "the first of two same-named images keeps its name");

    // Why each URL was chosen: thumbnails gave way to the originals they link to, a
    // <picture> to its widest source, and the cover's link, a page, to its thumbnail.
    let element_of = |suffix: &str| {
        let item = items.iter().find(|i| i["url"].as_str().unwrap().ends_with(suffix)).unwrap();
        (item["element"].as_str().unwrap(), item["note"].as_str())
    };
    assert_eq!(element_of("/img/cats-2-1.png"), ("link", None));
    assert_eq!(element_of("/img/cats-2-2.png"), ("link", None));
    assert_eq!(element_of("/img/cats-2-3.png"), ("img", None));
    assert_eq!(
        element_of("/img/cats-2-4.png"),
        ("img", None),
        "the lazy image and its <noscript> twin are one"
    );
    assert_eq!(element_of("/img/cats-2-5.png"), ("picture", None));
    let (element, note) = element_of("/img/cats-cover.png");
    assert_eq!(element, "img");
    assert!(note.is_some_and(|n| n.contains("/wiki/File:cats-cover.png")), "{note:?}");
}

#[test]
fn async_one_worker() {
    scrape_demo_gallery("async", "1", 4);
}

#[test]
fn async_eight_workers() {
    scrape_demo_gallery("async", "8", 2);
}

#[test]
fn sync_one_worker() {
    scrape_demo_gallery("sync", "1", 1);
}

#[test]
fn sync_three_workers() {
    scrape_demo_gallery("sync", "3", 1);
}

#[test]
fn demo_flag_downloads_the_whole_built_in_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_binary(dir.path(), &["--demo", "-m", "sync", "-p", "3", "-o", "out"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let n = Gallery::default().image_count();
    run.assert_line(&format!("Done, success: {n}/{n}, failure: 0/{n}"));
    let files = images(&dir.path().join("out"));
    assert_eq!(files.len(), n as usize);
    assert!(files.values().all(|f| f.starts_with(b"\x89PNG\r\n\x1a\n")));
    // The originals (160 px wide), never the 40 px thumbnails that link to them.
    let width = |f: &Vec<u8>| u32::from_be_bytes(f[16..20].try_into().unwrap());
    assert!(files.values().all(|f| width(f) == 160), "a thumbnail was saved");
    assert!(files.contains_key("cats-1-1.png") && !files.keys().any(|k| k.contains("small")));
}

#[test]
fn page_count_lowers_pages_and_pages_flag_caps_them() {
    let gallery = Gallery::default();
    let server = DemoServer::start(gallery).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let origin = server.url().as_str().trim_end_matches('/').to_string();
    write_settings(dir.path(), &origin, "");
    // AMOUNT_PAGES is 10; the site says 5.
    let run = run_binary(dir.path(), &["-p", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("Pages, success: 5/5, failure: 0/5");
    // --pages 2 overrides the file; 2 pages of 8 own images, the cover, the clash.
    let run = run_binary(dir.path(), &["--pages", "2", "-o", "two"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("Pages, success: 2/2, failure: 0/2");
    run.assert_line("Done, success: 18/18, failure: 0/18");
    assert_eq!(images(&dir.path().join("two")).len(), 18);
}

/// A gallery with failures: a 404 image, a 500 page, duplicates and hostile names.
fn troubled_server() -> TestServer {
    let page1 = r#"<html><body>
        <img src="/img/ok.jpg"><img src="/img/ok.jpg"><img src="../img/ok.jpg">
        <img src="/img/missing.jpg">
        <img src="/img/..%2F..%2Fescape.jpg">
        <img src="/img/%00">
        <img src="/a/same.jpg"><img src="/b/same.jpg">
        <li class="pag-text">Page 1 of 3</li></body></html>"#;
    let page3 = r#"<img src="/img/ok.jpg"><img src="/img/three.jpg">"#;
    TestServer::start(vec![
        ("/p1/cats.html", Reply::html(page1)),
        ("/p2/cats.html", Reply::status(500)),
        ("/p3/cats.html", Reply::html(page3)),
        ("/img/ok.jpg", Reply::image(b"ok-bytes")),
        ("/img/three.jpg", Reply::image(b"three-bytes")),
        ("/img/..%2F..%2Fescape.jpg", Reply::image(b"escape-bytes")),
        ("/img/%00", Reply::image(b"dots-bytes")),
        ("/a/same.jpg", Reply::image(b"same-a")),
        ("/b/same.jpg", Reply::image(b"same-b")),
    ])
}

fn check_troubled_run(mode: &str, workers: &str) {
    let server = troubled_server();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    write_settings(&dir, &server.origin(), "  RETRY_BACKOFF_MS: 10\n");
    let run = run_binary(&dir, &["-m", mode, "-p", workers, "--report", "r.json"]);
    assert_eq!(run.code, 1, "something failed: {}", run.stderr);
    run.assert_line("Done, success: 6/7, failure: 1/7");
    run.assert_line("Pages, success: 2/3, failure: 1/3");
    assert_eq!(server.hits("/img/ok.jpg"), 1, "a URL found four times is fetched once");

    let report = read_report(&dir.join("r.json"));
    assert_eq!(
        report["pages"],
        serde_json::json!({"total": 3, "ok": 2, "failed": 1, "skipped": 0,
        "detail_ok": 0, "detail_failed": 0, "detail_skipped": 0, "rendered": 0, "unrendered": 0})
    );
    let items = report["items"].as_array().unwrap();
    let missing = items.iter().find(|i| i["url"].as_str().unwrap().ends_with("missing.jpg")).unwrap();
    assert_eq!(missing["status"], "failed");
    assert_eq!(missing["error"], "HTTP status 404");
    assert_eq!(missing["bytes"], 0);

    let files = images(&dir.join("images"));
    assert_eq!(files.get("ok.jpg").map(Vec::as_slice), Some(&b"ok-bytes"[..]));
    assert_eq!(files.get("three.jpg").map(Vec::as_slice), Some(&b"three-bytes"[..]));
    assert_eq!(files.get("_.._escape.jpg").map(Vec::as_slice), Some(&b"escape-bytes"[..]));
    let same: BTreeSet<&[u8]> =
        files.iter().filter(|(k, _)| k.starts_with("same")).map(|(_, v)| v.as_slice()).collect();
    assert_eq!(same, BTreeSet::from([&b"same-a"[..], &b"same-b"[..]]), "two URLs, two files");
    assert!(files.iter().any(|(k, v)| k.starts_with("image-") && v == b"dots-bytes"));
    assert_eq!(files.len(), 6, "{:?}", files.keys());
    assert!(files.keys().all(|k| !k.starts_with('.') && !k.contains('/')));
    // Nothing escaped: the work folder holds only what we put there and the outputs.
    assert_eq!(entries(root.path()), BTreeSet::from(["work".into()]));
    assert_eq!(entries(&dir), BTreeSet::from(["images".into(), "r.json".into(), "settings.yaml".into()]));
}

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

#[test]
fn failures_are_counted_and_change_the_exit_code_async() {
    check_troubled_run("async", "2");
}

#[test]
fn failures_are_counted_and_change_the_exit_code_sync() {
    check_troubled_run("sync", "2");
}

#[test]
fn bad_settings_exit_2_with_one_line_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "SCRAPER:\n  URL: https://h.test/\n  ITEM: cats\n  AMOUNT_PAGES: ten\n",
            &[],
            "SCRAPER.AMOUNT_PAGES",
        ),
        ("SCRAPER:\n  URL: https://h.test/\n  ITEM: cats\n  COLOUR: red\n", &[], "unknown key COLOUR"),
        ("SCRAPER:\n  URL: nope\n  ITEM: cats\n", &[], "SCRAPER.URL"),
        ("SCRAPER: [\n", &[], "settings.yaml"),
        ("SCRAPER:\n  URL: https://h.test/\n  PAGE_PATH: '{item}/{page}'\n", &[], "no item"),
        ("SCRAPER:\n  URL: https://h.test/\n  ITEM: cats\n", &["-c", "missing.yaml"], "missing.yaml"),
        ("SCRAPER:\n  URL: https://h.test/\n  ITEM: cats\n", &["-p", "0"], "--process"),
        ("SCRAPER:\n  URL: https://h.test/\n  ITEM: cats\n", &["--url", "ftp://x/"], "--url"),
        ("SCRAPER:\n  URL: https://h.test/\n  ITEM: cats\n", &["-m", "fast"], "--mode"),
    ];
    for (yaml, args, needle) in cases {
        std::fs::write(dir.path().join("settings.yaml"), yaml).unwrap();
        let run = run_binary(dir.path(), args);
        assert_eq!(run.code, 2, "{yaml:?} {args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{needle:?} not in {:?}", run.stderr);
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: "), "{first}");
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(!dir.path().join("images").exists(), "{yaml:?} created the out dir");
    }
    // Settings errors print exactly one line.
    std::fs::write(dir.path().join("settings.yaml"), "SCRAPER:\n  ITEM: [\n").unwrap();
    let run = run_binary(dir.path(), &[]);
    assert_eq!((run.code, run.stderr.lines().count()), (2, 1), "{}", run.stderr);
}

#[test]
fn out_dir_that_is_a_file_is_a_settings_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("images"), b"not a folder").unwrap();
    write_settings(dir.path(), "http://127.0.0.1:9", "");
    let run = run_binary(dir.path(), &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("OUT_DIR") && run.stderr.contains("not a folder"), "{}", run.stderr);
    assert_eq!(std::fs::read(dir.path().join("images")).unwrap(), b"not a folder");
}

#[test]
fn help_shows_an_example() {
    let run = run_binary(Path::new("."), &["--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Examples:") && run.stdout.contains("image-scraper --demo"));
    assert!(run.stdout.contains("--process") && run.stdout.contains("--report"));
}

#[test]
fn a_page_range_walks_just_those_pages() {
    let mut routes: Vec<(String, Reply)> = Vec::new();
    for n in 1..=4u8 {
        let src = format!("/img/{n}.jpg");
        routes.push((
            format!("/p{n}/cats.html"),
            Reply::html(crate::helpers::gallery_html(std::slice::from_ref(&src), 4)),
        ));
        routes.push((src, Reply::image(&crate::helpers::jpeg(n, 2_000))));
    }
    let server = TestServer::start(routes.iter().map(|(p, r)| (p.as_str(), r.clone())).collect());
    for mode in ["async", "sync"] {
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &server.origin(), "");
        let before = |n: u8| server.hits(&format!("/p{n}/cats.html"));
        let counts: Vec<usize> = (1..=4).map(before).collect();
        let run = run_binary(dir.path(), &["-m", mode, "--pages", "2-3"]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        run.assert_line("Pages, success: 2/2, failure: 0/2");
        let fetched: Vec<usize> = (1..=4).map(|n| before(n) - counts[n as usize - 1]).collect();
        assert_eq!(fetched, [0, 1, 1, 0], "{mode}: pages 2 and 3, each once");
        let files: Vec<String> = images(&dir.path().join("images")).into_keys().collect();
        assert_eq!(files, ["2.jpg", "3.jpg"], "{mode}");
    }
}

#[test]
fn a_missing_page_ends_a_walk_that_states_no_count() {
    // Three pages that state no count; every page after them is missing.
    let mut routes: Vec<(String, Reply)> = Vec::new();
    for n in 1..=3u8 {
        let src = format!("/img/{n}.jpg");
        let page = format!("<html><body><img src=\"{src}\"></body></html>");
        routes.push((format!("/p{n}/cats.html"), Reply::html(page)));
        routes.push((src, Reply::image(&crate::helpers::jpeg(n, 2_000))));
    }
    let server = TestServer::start(routes.iter().map(|(p, r)| (p.as_str(), r.clone())).collect());
    for (mode, p) in [("async", "2"), ("sync", "4")] {
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &server.origin(), "");
        let run = run_binary(dir.path(), &["-m", mode, "-p", p, "--report", "r.json"]);
        assert_eq!(run.code, 0, "{mode}: the end of the gallery is no failure: {}", run.stderr);
        run.assert_line("Pages, success: 3/3, failure: 0/3");
        run.assert_line("page not found: the walk ends before it");
        let files: Vec<String> = images(&dir.path().join("images")).into_keys().collect();
        assert_eq!(files, ["1.jpg", "2.jpg", "3.jpg"], "{mode}");
        assert_eq!(read_report(&dir.path().join("r.json"))["pages"]["failed"], 0);
    }
    assert_eq!(server.hits("/p4/cats.html"), 2, "page 4 asked for once per run");
    // A missing first page is still a failure.
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &format!("{}/nothing", server.origin()), "");
    let run = run_binary(dir.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
}
