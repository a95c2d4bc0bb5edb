//! Manners, measured on the server: requests in flight per host, the request rate, a
//! 429 pausing the whole host, robots.txt and its Crawl-delay, and the headers sent.
//! Bounds only, each true on any machine: a slow one can make a run slower, never ruder.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::helpers::{
    TestServer, gallery_html, image_paths, images, jpeg, read_report, run_binary, serve_page, write_settings,
};

/// A page of `n` images, each held for `hold` by the server, which counts how many it is
/// serving at once.
fn counting_server(n: usize, hold: Duration) -> (TestServer, Arc<AtomicUsize>) {
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&most);
    let server = TestServer::start_with(move |cfg| {
        let (now, most) = (Arc::clone(&now), Arc::clone(&most));
        serve_page(cfg, "/p1/cats.html", gallery_html(&image_paths(n), 1));
        cfg.route(
            "/img/{n}.jpg",
            web::get().to(move |n: web::Path<u8>| {
                let (now, most) = (Arc::clone(&now), Arc::clone(&most));
                async move {
                    let serving = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(serving, Ordering::SeqCst);
                    actix_rt::time::sleep(hold).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    HttpResponse::Ok().content_type("image/jpeg").body(jpeg(n.into_inner(), 3_000))
                }
            }),
        );
    });
    (server, seen)
}

#[test]
fn never_more_than_the_per_host_limit_in_flight() {
    for (mode, workers) in [("async", "4"), ("sync", "4")] {
        let (server, most) = counting_server(24, Duration::from_millis(40));
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &server.origin(), "  PER_HOST_CONCURRENCY: 3\n  CONCURRENCY: 16\n");
        let run = run_binary(dir.path(), &["-m", mode, "-p", workers]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let most = most.load(Ordering::SeqCst);
        assert!(most <= 3, "{mode}: {most} requests at once with a limit of 3");
        assert!(most >= 2, "{mode}: the run was concurrent at all ({most})");
        assert_eq!(images(&dir.path().join("images")).len(), 24);
    }
}

#[test]
fn the_rate_limit_holds_across_workers() {
    for (mode, workers) in [("async", "1"), ("async", "4"), ("async", "8"), ("sync", "4"), ("sync", "8")] {
        let (server, _) = counting_server(14, Duration::ZERO);
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &server.origin(), "  REQUESTS_PER_SECOND: 25\n");
        let run = run_binary(dir.path(), &["-m", mode, "-p", workers]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        // robots.txt, the page and the 14 images: 16 requests.
        let times = server.all_times();
        assert_eq!(times.len(), 16);
        assert_spaced_after_robots(&times, 14, Duration::from_millis(40), &format!("{mode} -p {workers}"));
    }
}

/// Asserts what spacing by `interval` makes true of the server's clock whatever the
/// machine's load: nothing is sent before robots.txt has answered, so the start of the
/// request after it comes later than robots.txt's arrival (`times[0]`), and each of the
/// `intervals` starts after that one at least `interval` later still; a request arrives
/// after its start. A slow machine only lengthens the span. (The gaps themselves are not
/// bounded: a start sent late shortens the gap after it. The gate's exact spacing is
/// tested on a paused clock, in `politeness.rs` and `fetch/mod.rs`.)
fn assert_spaced_after_robots(times: &[std::time::Instant], intervals: u32, interval: Duration, what: &str) {
    let span = *times.last().unwrap() - times[0];
    // A limit per worker instead of per run would take a fraction of this.
    assert!(span >= interval * intervals, "{what}: {span:?} for {intervals} intervals of {interval:?}");
}

#[test]
fn a_429_pauses_the_whole_host() {
    for mode in ["async", "sync"] {
        let told = Arc::new(AtomicBool::new(false));
        let server = TestServer::start_with({
            let told = Arc::clone(&told);
            move |cfg| {
                let told = Arc::clone(&told);
                serve_page(cfg, "/p1/cats.html", gallery_html(&image_paths(12), 1));
                cfg.route(
                    "/img/{n}.jpg",
                    web::get().to(move |n: web::Path<u8>| {
                        let n = n.into_inner();
                        let first_429 = n == 0 && !told.swap(true, Ordering::SeqCst);
                        async move {
                            if first_429 {
                                return HttpResponse::TooManyRequests()
                                    .insert_header((header::RETRY_AFTER, "1"))
                                    .finish();
                            }
                            // Held long enough that without the pause the other images
                            // would be asked for during it, not all done before it starts.
                            actix_rt::time::sleep(Duration::from_millis(100)).await;
                            HttpResponse::Ok().content_type("image/jpeg").body(jpeg(n, 3_000))
                        }
                    }),
                );
            }
        });
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &server.origin(), "  PER_HOST_CONCURRENCY: 2\n  CONCURRENCY: 8\n");
        let run = run_binary(dir.path(), &["-m", mode, "-p", "2"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        // Said once, at the default level: the run is waiting, not hung.
        assert_eq!(
            run.stderr.matches("host paused 1 s: 429 Retry-After").count(),
            1,
            "{mode}: {}",
            run.stderr
        );
        // The retry waits out the second from when the 429 was read, after the server
        // sent it: true on any machine. That no other request to the host starts in that
        // second is a matter of time the server cannot tell from a late arrival; it is
        // tested on a paused clock (`fetch/mod.rs`: a 429 holds every task to the host).
        let told = server.hit_times("/img/0.jpg");
        assert_eq!(told.len(), 2);
        assert!(told[1] - told[0] >= Duration::from_secs(1), "{mode}: retried after {:?}", told[1] - told[0]);
        assert_eq!(images(&dir.path().join("images")).len(), 12);
    }
}

/// robots.txt disallows /private/ and page 2, and asks for a crawl delay.
fn robots_server() -> TestServer {
    robots_server_with("User-agent: *\nDisallow: /private/\nDisallow: /p2/\nCrawl-delay: 0.1\n")
}

/// The gallery of `robots_server` behind the robots.txt `txt`.
fn robots_server_with(txt: &'static str) -> TestServer {
    TestServer::start_with(move |cfg| {
        let mut paths: Vec<String> = (0..4).map(|i| format!("/public/{i}.jpg")).collect();
        paths.extend((4..7).map(|i| format!("/private/{i}.jpg")));
        serve_page(cfg, "/p1/cats.html", gallery_html(&paths, 2));
        cfg.route(
            "/robots.txt",
            web::get().to(move || async move { HttpResponse::Ok().content_type("text/plain").body(txt) }),
        )
        .route(
            "/p2/cats.html",
            web::get().to(|| async {
                HttpResponse::Ok().content_type("text/html").body(r#"<img src="/public/9.jpg">"#)
            }),
        )
        .route(
            "/{folder}/{n}.jpg",
            web::get().to(|path: web::Path<(String, u8)>| async move {
                HttpResponse::Ok().content_type("image/jpeg").body(jpeg(path.into_inner().1, 3_000))
            }),
        );
    })
}

#[test]
fn robots_txt_is_obeyed_with_its_crawl_delay() {
    for mode in ["async", "sync"] {
        let server = robots_server();
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &server.origin(), "");
        let run = run_binary(dir.path(), &["-m", mode, "-p", "4", "--report", "r.json"]);
        assert_eq!(run.code, 0, "skipping is not failing: {}", run.stderr);
        assert_eq!(server.hits("/robots.txt"), 1);
        assert_eq!(server.hits("/p2/cats.html"), 0, "a disallowed page is not fetched");
        for i in 4..7 {
            assert_eq!(server.hits(&format!("/private/{i}.jpg")), 0, "{mode}: /private/{i}.jpg fetched");
        }
        let report = read_report(&dir.path().join("r.json"));
        assert_eq!(report["pages"]["skipped"], 1);
        assert_eq!(report["images"]["skipped"], 3);
        assert_eq!(report["images"]["ok"], 4);
        let skipped: Vec<&serde_json::Value> =
            report["items"].as_array().unwrap().iter().filter(|i| i["status"] == "skipped").collect();
        assert!(skipped.iter().all(|i| i["reason"] == "disallowed by robots.txt"), "{skipped:?}");
        // Crawl-delay 0.1 s: robots.txt, page 1 and four images. The delay counts from
        // robots.txt's answer, so even page 1 is one delay after its arrival.
        let times = server.all_times();
        assert_eq!(times.len(), 6, "{mode}");
        assert_spaced_after_robots(&times, 5, Duration::from_millis(100), mode);
    }
}

#[test]
fn a_group_written_for_our_name_and_version_is_obeyed() {
    // The `*` group would allow everything; the versioned one is ours.
    let server =
        robots_server_with("User-agent: *\nAllow: /\n\nUser-agent: Image-Scraper/1.0\nDisallow: /private/\n");
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    let run = run_binary(dir.path(), &["-p", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.hits("/private/5.jpg"), 0, "our group's Disallow is obeyed");
    assert_eq!(server.hits("/public/1.jpg"), 1);
}

#[test]
fn ignore_robots_does_not_even_ask() {
    let server = robots_server();
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    let run = run_binary(dir.path(), &["--ignore-robots"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.hits("/robots.txt"), 0);
    assert_eq!(server.hits("/private/5.jpg"), 1);
    assert_eq!(images(&dir.path().join("images")).len(), 8, "private ones and page 2's too");
}

#[test]
fn an_unreachable_robots_txt_means_nothing_is_fetched() {
    let server = TestServer::start_with(|cfg| {
        cfg.route("/robots.txt", web::get().to(|| async { HttpResponse::ServiceUnavailable().finish() }));
    });
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "  RETRIES: 1\n  RETRY_BACKOFF_MS: 10\n");
    let run = run_binary(dir.path(), &[]);
    assert_eq!(server.hits("/robots.txt"), 2, "retried like any request");
    assert_eq!(server.hits("/p1/cats.html"), 0, "RFC 9309: a 5xx robots.txt disallows all");
    run.assert_line("robots.txt unreachable");
    run.assert_line("--ignore-robots");
}

#[test]
fn referer_headers_and_cookies_are_sent() {
    for (mode, referer) in [("async", true), ("sync", true), ("async", false)] {
        let (server, _) = counting_server(2, Duration::ZERO);
        let dir = tempfile::tempdir().unwrap();
        let extra = format!(
            "  HEADERS: {{X-Token: abc}}\n  COOKIES: {{session: s1, theme: dark}}\n  SEND_REFERER: {referer}\n"
        );
        write_settings(dir.path(), &server.origin(), &extra);
        let run = run_binary(dir.path(), &["-m", mode]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let page_url = format!("{}/p1/cats.html", server.origin());
        for (_, headers) in server.requests("/img/1.jpg").iter().chain(&server.requests("/p1/cats.html")) {
            let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            assert_eq!(get("x-token").as_deref(), Some("abc"), "{mode}");
            assert_eq!(get("cookie").as_deref(), Some("session=s1; theme=dark"), "{mode}");
            assert!(get("user-agent").is_some_and(|ua| ua.starts_with("image-scraper/")), "{mode}");
        }
        let (_, image) = &server.requests("/img/1.jpg")[0];
        let sent = image.get("referer").and_then(|v| v.to_str().ok());
        assert_eq!(sent, referer.then_some(page_url.as_str()), "{mode}");
    }
}
