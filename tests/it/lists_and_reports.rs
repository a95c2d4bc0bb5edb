//! Input that forgives and reports that tell everything, in both modes: URL lists as
//! people write them (a BOM, comments, blank lines), a URL without a scheme, failed pages
//! in the report and the failed lists, the manifest on a re-run, the walk's end reason.

use actix_web::{HttpResponse, web};

use crate::helpers::{
    TestServer, jpeg, read_report, run_binary, run_binary_with_env, serve_page, write_settings,
};

const MODES: [&str; 2] = ["sync", "async"];

/// `/img/{n}.jpg`: a JPEG of `1000 + n` bytes.
fn numbered_images(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/img/{file}",
        web::get().to(|file: web::Path<String>| async move {
            let n: usize = file.trim_end_matches(".jpg").parse().unwrap_or(0);
            HttpResponse::Ok().content_type("image/jpeg").body(jpeg(n as u8, 1000 + n))
        }),
    );
}

fn images_server() -> TestServer {
    TestServer::start_with(numbered_images)
}

#[test]
fn a_list_with_a_bom_comments_and_blank_lines_downloads_what_it_lists() {
    for mode in MODES {
        let server = images_server();
        let origin = server.origin();
        let dir = tempfile::tempdir().unwrap();
        let list = format!(
            "\u{feff}# from the editor\r\n{origin}/img/1.jpg\r\n\r\n  {origin}/img/2.jpg   # the dog\r\n\t# {origin}/img/3.jpg\r\n{origin}/img/4.jpg#frag\r\n"
        );
        std::fs::write(dir.path().join("list.txt"), list).unwrap();
        let run = run_binary(dir.path(), &["-m", mode, "--urls", "list.txt", "-o", "out"]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        run.assert_line("Done, success: 3/3, failure: 0/3");
        assert!(!run.stderr.contains("Pages, success"), "{mode}: a list walks no pages: {}", run.stderr);
        assert_eq!(
            server.hits("/img/1.jpg") + server.hits("/img/2.jpg") + server.hits("/img/4.jpg"),
            3,
            "{mode}"
        );
        assert_eq!(server.hits("/img/3.jpg"), 0, "{mode}: a commented-out line is not fetched");
    }
}

#[test]
fn a_url_without_a_scheme_is_refused_with_a_guess() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_binary(dir.path(), &["--url", "example.com/gallery/"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    run.assert_line(
        "\"example.com/gallery/\" is not a URL: no scheme; did you mean https://example.com/gallery/?",
    );
    let run = run_binary_with_env(dir.path(), &[], &[("IMAGE_SCRAPER_URL", "example.com/gallery/")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    run.assert_line("did you mean https://example.com/gallery/?");
    std::fs::write(dir.path().join("list.txt"), "http://127.0.0.1:9/a.jpg\nexample.com/b.jpg\n").unwrap();
    let run = run_binary(dir.path(), &["--urls", "list.txt"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    run.assert_line(
        "list.txt:2: \"example.com/b.jpg\" is not a URL: no scheme; did you mean https://example.com/b.jpg?",
    );
    assert_eq!(run.stderr.trim().lines().count(), 1, "one line: {}", run.stderr);
}

/// A WordPress-style blog of two pages whose pager has no `rel="next"` and words its
/// link to page 2 in a way no default rule reads ("Keep reading"): the default next-link
/// rules do not see it.
fn blog_server() -> TestServer {
    TestServer::start_with(|cfg| {
        let pager = |n: u32| {
            let next = match n {
                1 => {
                    r#"<a class="page-numbers" href="/blog/page/2/">2</a><a class="more-link page-numbers" href="/blog/page/2/">Keep reading</a>"#
                }
                _ => {
                    r#"<a class="prev page-numbers" href="/blog/">Previous</a><a class="page-numbers" href="/blog/">1</a>"#
                }
            };
            format!(r#"<nav class="navigation pagination"><div class="nav-links">{next}</div></nav>"#)
        };
        serve_page(cfg, "/blog/", format!(r#"<img src="/img/1.jpg"><img src="/img/2.jpg">{}"#, pager(1)));
        serve_page(cfg, "/blog/page/2/", format!(r#"<img src="/img/3.jpg">{}"#, pager(2)));
        numbered_images(cfg);
    })
}

#[test]
fn a_walk_that_stops_at_an_unread_pager_says_why_and_names_next_selector() {
    for mode in MODES {
        let server = blog_server();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{}/blog/", server.origin());
        let args = ["-m", mode, "--url", &url, "-o", "out", "--ignore-robots"];
        let run = run_binary_with_env(dir.path(), &args, &[("IMAGE_SCRAPER_IMAGE_HOST", "127.0.0.1")]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        run.assert_line("Done, success: 2/2");
        run.assert_line("the walk ended after page 1: no next link was found on it");
        run.assert_line(
            "page 1 has what looks like a pager (<nav class=\"navigation pagination\">) but no next link was recognised: set NEXT_SELECTOR",
        );
        assert_eq!(server.hits("/blog/page/2/"), 0, "{mode}");
        // Told, the user sets it: both pages, and the walk's end is the site's.
        let env = [("IMAGE_SCRAPER_IMAGE_HOST", "127.0.0.1"), ("IMAGE_SCRAPER_NEXT_SELECTOR", "a.more-link")];
        let run = run_binary_with_env(dir.path(), &args, &env);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        run.assert_line(
            "the walk ended after page 2: it has no next link, where the pages before it had one",
        );
        assert!(
            !run.stderr.contains("NEXT_SELECTOR"),
            "{mode}: no hint once next links are read: {}",
            run.stderr
        );
        assert_eq!(server.hits("/blog/page/2/"), 1, "{mode}");
    }
}

/// A gallery of three stated pages whose page 2 fails (500 every time) and whose page 1
/// holds a missing image.
fn failing_page_server() -> TestServer {
    TestServer::start_with(|cfg| {
        let count = r#"<li class="pag-text">Page 1 of 3</li>"#;
        serve_page(
            cfg,
            "/p1/cats.html",
            format!(r#"<img src="/img/1.jpg"><img src="/img/gone.jpg">{count}"#),
        );
        serve_page(cfg, "/p3/cats.html", format!(r#"<img src="/img/3.jpg">{count}"#));
        cfg.route("/p2/cats.html", web::get().to(|| async { HttpResponse::InternalServerError().finish() }))
            .route("/img/gone.jpg", web::get().to(|| async { HttpResponse::NotFound().finish() }));
        numbered_images(cfg);
    })
}

#[test]
fn a_failed_page_is_in_the_report_and_the_failed_list() {
    for mode in MODES {
        let server = failing_page_server();
        let origin = server.origin();
        let dir = tempfile::tempdir().unwrap();
        write_settings(
            dir.path(),
            &origin,
            "  RETRIES: 1
  RETRY_BACKOFF_MS: 1
",
        );
        let args = ["-m", mode, "--report", "r.json", "--failed", "failed.txt"];
        let run = run_binary(dir.path(), &args);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        run.assert_line("Pages, success: 2/3, failure: 1/3");
        let report = read_report(&dir.path().join("r.json"));
        let items = report["items"].as_array().unwrap();
        let pages: Vec<&serde_json::Value> = items.iter().filter(|i| i["kind"] == "page").collect();
        assert_eq!(pages.len(), 1, "{mode}: {items:?}");
        let page = pages[0];
        assert_eq!(page["url"], format!("{origin}/p2/cats.html"));
        assert_eq!(
            (&page["page"], &page["status"], &page["error"]),
            (&2.into(), &"failed".into(), &"HTTP status 500".into())
        );
        assert_eq!(page["attempts"], 2);
        assert_eq!(items.iter().filter(|i| i["kind"] == "image").count(), 3, "{mode}");
        assert_eq!(report["images"]["total"], 3, "{mode}: a page is not an image");

        let failed = std::fs::read_to_string(dir.path().join("failed.txt")).unwrap();
        assert_eq!(
            failed,
            format!("# page 2 failed: HTTP status 500: {origin}/p2/cats.html\n{origin}/img/gone.jpg\n"),
            "{mode}"
        );
        // Read back, the list fetches just the failed image: the page is a comment.
        let run = run_binary(dir.path(), &["-m", mode, "--urls", "failed.txt"]);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        run.assert_line("Done, success: 0/1, failure: 1/1");
        assert_eq!(server.hits("/p2/cats.html"), 2, "{mode}: not requested again by the list");
    }
}

fn manifest(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_re_run_keeps_the_sha256_of_every_image_in_the_manifest() {
    for mode in MODES {
        let server = failing_page_server();
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &server.origin(), "  RETRIES: 0\n");
        let run = run_binary(dir.path(), &["-m", mode, "--report", "first.jsonl"]);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        let run = run_binary(dir.path(), &["-m", mode, "--report", "again.jsonl"]);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        let hashes = |lines: &[serde_json::Value], status: &str| -> Vec<(String, String)> {
            let mut found: Vec<(String, String)> = lines
                .iter()
                .filter(|l| l["kind"] == "image" && l["status"] == status)
                .map(|l| {
                    (
                        l["url"].as_str().unwrap().to_string(),
                        l["sha256"].as_str().unwrap_or("missing").to_string(),
                    )
                })
                .collect();
            found.sort();
            found
        };
        let first = hashes(&manifest(&dir.path().join("first.jsonl")), "ok");
        let again = hashes(&manifest(&dir.path().join("again.jsonl")), "skipped");
        assert_eq!(first.len(), 2, "{mode}");
        assert_eq!(again, first, "{mode}: the skipped images keep their sha256");
    }
}

#[test]
fn a_dry_run_list_of_the_demo_downloads_every_line_with_urls() {
    use image_scraper::demo::{DemoServer, Gallery};
    for mode in MODES {
        let gallery = Gallery { pages: 2, per_page: 3, ..Gallery::default() };
        let server = DemoServer::start(gallery).unwrap();
        let origin = server.url().as_str().trim_end_matches('/').to_string();
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &origin, "");
        let run = run_binary(dir.path(), &["-m", mode, "--dry-run"]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        assert!(!run.stdout.contains("/wiki/"), "{mode}: a wiki File: page is not an image:\n{}", run.stdout);
        assert!(run.stdout.contains(&format!("{origin}/img/cats-cover.png\n")), "{mode}: its thumbnail is");
        run.assert_line("dry run: the link target is a page, its thumbnail is listed instead");
        std::fs::write(dir.path().join("urls.txt"), &run.stdout).unwrap();
        let listed = run.stdout.lines().count();

        let run = run_binary(dir.path(), &["-m", mode, "--urls", "urls.txt", "-o", "from-list"]);
        assert_eq!(run.code, 0, "{mode}: every listed URL is an image: {}", run.stderr);
        run.assert_line(&format!("Done, success: {listed}/{listed}, failure: 0/{listed}"));
        assert_eq!(crate::helpers::images(&dir.path().join("from-list")).len(), listed, "{mode}");
    }
}
