//! The chaos suite: a server with a route for each fault a bulk downloader meets, and the
//! real binary run against it in both modes with several `-p`, then interrupted, then
//! re-run. Every check is on what a user sees: files on disk byte for byte, no partial
//! files, nothing outside the out dir, the report, the summary line, the exit status.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use futures_util::stream::{self, StreamExt};

use crate::helpers::{
    TestServer, exit_within, gallery_html, image_paths, images, jpeg, read_report, run_binary, serve_page,
    write_settings,
};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The images that must end up on disk, by the file name they must get.
fn expected_files() -> BTreeMap<&'static str, Vec<u8>> {
    BTreeMap::from([
        ("ok.jpg", jpeg(1, 30_000)),
        ("flaky.jpg", jpeg(2, 20_000)),
        ("busy.jpg", jpeg(3, 20_000)),
        ("moved.jpg", jpeg(4, 25_000)),
        ("gzip.jpg", jpeg(5, 40_000)),
        ("chunked.jpg", jpeg(6, 90_000)),
        ("_.._evil.jpg", jpeg(7, 1_000)),
        ("proto.jpg", jpeg(8, 2_000)),
        ("three.jpg", jpeg(9, 3_000)),
    ])
}

/// Same name, different folders: both must be kept.
fn same_a() -> Vec<u8> {
    jpeg(10, 5_000)
}

fn same_b() -> Vec<u8> {
    jpeg(11, 6_000)
}

/// Failures the report must explain, by URL path, with a piece of the reason.
const FAILURES: &[(&str, &str)] = &[
    ("/img/missing.jpg", "HTTP status 404"),
    ("/img/truncated.jpg", "transfer failed"),
    ("/img/reset.jpg", "transfer failed"),
    ("/img/stall.jpg", "timed out"),
    ("/loop.jpg", "too many redirects"),
    ("/img/html.jpg", "not an image: the server sent text/html"),
    ("/img/disguised.jpg", "not an image: the body is an HTML page"),
    ("/img/huge.jpg", "larger than the 100000-byte limit"),
    ("/img/huge-chunked.jpg", "larger than the 100000-byte limit"),
    ("/img/bad-gzip.jpg", "decode"),
];

const RETRIES: usize = 2;

fn page_one(origin: &str) -> String {
    let authority = origin.trim_start_matches("http:");
    let mut imgs: Vec<String> = [
        "/img/ok.jpg",
        "/img/ok.jpg",
        "../img/ok.jpg",
        "/img/flaky.jpg",
        "/img/busy.jpg",
        "/img/moved.jpg",
        "/img/gzip.jpg",
        "/img/chunked.jpg",
        "/img/..%2F..%2Fevil.jpg",
        "/a/same.jpg",
        "/b/same.jpg",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    imgs.push(format!("{authority}/img/proto.jpg"));
    imgs.extend(FAILURES.iter().map(|(path, _)| path.to_string()));
    let tags: String = imgs.iter().map(|src| format!("<img src=\"{src}\">\n")).collect();
    format!("<html><body>{tags}<li class=\"pag-text\">Page 1 of 3</li></body></html>")
}

/// The chaos server. `flaky` and `busy` fail once, then serve.
fn chaos_server() -> TestServer {
    let first_flaky = Arc::new(AtomicUsize::new(0));
    let first_busy = Arc::new(AtomicUsize::new(0));
    TestServer::start_with(move |cfg| {
        let files = expected_files();
        let image = |bytes: Vec<u8>| {
            move || {
                let bytes = bytes.clone();
                async move { HttpResponse::Ok().content_type("image/jpeg").body(bytes) }
            }
        };
        let (flaky, busy) = (Arc::clone(&first_flaky), Arc::clone(&first_busy));
        cfg.route(
            "/p1/cats.html",
            web::get().to(|req: actix_web::HttpRequest| async move {
                let origin = format!("http://{}", req.connection_info().host());
                HttpResponse::Ok().content_type("text/html").body(page_one(&origin))
            }),
        )
        .route("/p2/cats.html", web::get().to(|| async { HttpResponse::InternalServerError().finish() }))
        .route(
            "/p3/cats.html",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/html")
                    .body(r#"<img src="/img/ok.jpg"><img src="/img/three.jpg">"#)
            }),
        )
        .route("/img/ok.jpg", web::get().to(image(files["ok.jpg"].clone())))
        .route("/img/three.jpg", web::get().to(image(files["three.jpg"].clone())))
        .route("/img/proto.jpg", web::get().to(image(files["proto.jpg"].clone())))
        .route("/img/real.jpg", web::get().to(image(files["moved.jpg"].clone())))
        .route("/a/same.jpg", web::get().to(image(same_a())))
        .route("/b/same.jpg", web::get().to(image(same_b())))
        .route(
            "/img/{evil:\\.\\.%2F\\.\\.%2Fevil\\.jpg}",
            web::get().to(image(files["_.._evil.jpg"].clone())),
        )
        .route("/img/chunked.jpg", {
            let body = files["chunked.jpg"].clone();
            web::get().to(move || {
                let chunks: Vec<Result<Bytes, std::io::Error>> =
                    body.chunks(7_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
                async move { HttpResponse::Ok().content_type("image/jpeg").streaming(stream::iter(chunks)) }
            })
        })
        .route("/img/gzip.jpg", {
            let body = gzip(&files["gzip.jpg"]);
            web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("image/jpeg")
                        .insert_header((header::CONTENT_ENCODING, "gzip"))
                        .body(body)
                }
            })
        })
        .route("/img/flaky.jpg", {
            let body = files["flaky.jpg"].clone();
            web::get().to(move || {
                let (body, first) = (body.clone(), flaky.fetch_add(1, Ordering::SeqCst) == 0);
                async move {
                    match first {
                        true => HttpResponse::InternalServerError().body("try again"),
                        false => HttpResponse::Ok().content_type("image/jpeg").body(body),
                    }
                }
            })
        })
        .route("/img/busy.jpg", {
            let body = files["busy.jpg"].clone();
            web::get().to(move || {
                let (body, first) = (body.clone(), busy.fetch_add(1, Ordering::SeqCst) == 0);
                async move {
                    match first {
                        true => {
                            HttpResponse::TooManyRequests().insert_header((header::RETRY_AFTER, "1")).finish()
                        }
                        false => HttpResponse::Ok().content_type("image/jpeg").body(body),
                    }
                }
            })
        })
        .route(
            "/img/moved.jpg",
            web::get().to(|| async {
                HttpResponse::Found().insert_header((header::LOCATION, "/img/real.jpg")).finish()
            }),
        )
        .route(
            "/loop.jpg",
            web::get().to(|| async {
                HttpResponse::Found().insert_header((header::LOCATION, "/loop.jpg")).finish()
            }),
        )
        .route("/img/missing.jpg", web::get().to(|| async { HttpResponse::NotFound().body("gone") }))
        .route(
            "/img/truncated.jpg",
            web::get().to(|| async {
                // Announces 50 000 bytes, sends 5 000, then the connection breaks.
                HttpResponse::Ok().content_type("image/jpeg").no_chunking(50_000).streaming(broken_body(12))
            }),
        )
        .route(
            "/img/reset.jpg",
            web::get()
                .to(|| async { HttpResponse::Ok().content_type("image/jpeg").streaming(broken_body(13)) }),
        )
        .route(
            "/img/stall.jpg",
            web::get().to(|| async {
                let first = stream::once(async { Ok::<_, std::io::Error>(Bytes::from(jpeg(14, 1_000))) });
                HttpResponse::Ok().content_type("image/jpeg").streaming(first.chain(stream::pending()))
            }),
        )
        .route(
            "/img/html.jpg",
            web::get().to(|| async { HttpResponse::Ok().content_type("text/html").body("<html>no</html>") }),
        )
        .route(
            "/img/disguised.jpg",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("image/jpeg")
                    .body("<!DOCTYPE html><html><body>Not found</body></html>")
            }),
        )
        .route(
            "/img/huge.jpg",
            web::get().to(|| async { HttpResponse::Ok().content_type("image/jpeg").body(jpeg(15, 200_000)) }),
        )
        .route(
            "/img/huge-chunked.jpg",
            web::get().to(|| async {
                let chunks: Vec<Result<Bytes, std::io::Error>> =
                    jpeg(16, 200_000).chunks(10_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
                HttpResponse::Ok().content_type("image/jpeg").streaming(stream::iter(chunks))
            }),
        )
        .route(
            "/img/bad-gzip.jpg",
            web::get().to(|| async {
                let mut body = gzip(&jpeg(17, 20_000));
                let middle = body.len() / 2;
                body[middle..middle + 64].fill(0xAA);
                HttpResponse::Ok()
                    .content_type("image/jpeg")
                    .insert_header((header::CONTENT_ENCODING, "gzip"))
                    .body(body)
            }),
        );
    })
}

/// 5 000 bytes, then an error that makes the server drop the connection. The pause lets
/// the headers and the first bytes go out first (actix-web sends nothing at all if the
/// error is already there when it starts writing).
fn broken_body(seed: u8) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let first = stream::once(async move { Ok(Bytes::from(jpeg(seed, 50_000)[..5_000].to_vec())) });
    let error = stream::once(async {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        Err(std::io::Error::other("connection broken"))
    });
    first.chain(error)
}

const CHAOS_SETTINGS: &str =
    "  TIMEOUT_SECS: 1\n  RETRIES: 2\n  RETRY_BACKOFF_MS: 20\n  MAX_IMAGE_BYTES: 100000\n";

fn chaos_run(mode: &str, workers: &str) {
    let server = chaos_server();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    write_settings(&dir, &server.origin(), CHAOS_SETTINGS);
    let run = run_binary(&dir, &["-v", "-m", mode, "-p", workers, "--report", "report.json"]);

    assert_eq!(run.code, 1, "some images fail: {}", run.stderr);
    let (ok, failed) = (expected_files().len() + 2, FAILURES.len());
    let total = ok + failed;
    run.assert_line(&format!("Done, success: {ok}/{total}, failure: {failed}/{total}"));
    run.assert_line("Pages, success: 2/3, failure: 1/3");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    // Retried: the 500 and the 429 once, the broken bodies and the failing page to the
    // limit; not retried: 404, redirect loop, not-an-image, too large.
    assert_eq!(server.hits("/img/flaky.jpg"), 2);
    assert_eq!(server.hits("/img/busy.jpg"), 2);
    // The wait counts from when the 429 was read, after the server sent it: a whole
    // second on the server's clock too, on any machine.
    let busy = server.hit_times("/img/busy.jpg");
    assert!(busy[1] - busy[0] >= Duration::from_secs(1), "Retry-After: 1 honoured: {:?}", busy[1] - busy[0]);
    for path in ["/img/truncated.jpg", "/img/reset.jpg", "/img/stall.jpg", "/p2/cats.html"] {
        assert_eq!(server.hits(path), RETRIES + 1, "{path}");
    }
    for path in ["/img/missing.jpg", "/img/html.jpg", "/img/disguised.jpg", "/img/huge.jpg", "/img/ok.jpg"] {
        assert_eq!(server.hits(path), 1, "{path}");
    }
    assert_eq!(server.hits("/loop.jpg"), 11, "the loop is followed to the limit once, not retried");

    let report = read_report(&dir.join("report.json"));
    assert_eq!(report["images"]["total"], total);
    assert_eq!(report["images"]["failed"], failed);
    assert_eq!(report["pages"]["failed"], 1);
    let all = report["items"].as_array().unwrap();
    let items: Vec<&serde_json::Value> = all.iter().filter(|i| i["kind"] == "image").collect();
    assert_eq!(items.len(), total, "one item per distinct URL");
    let pages: Vec<&serde_json::Value> = all.iter().filter(|i| i["kind"] == "page").collect();
    assert_eq!(pages.len(), 1, "and the page that failed: {pages:?}");
    for (path, reason) in FAILURES {
        let item = items
            .iter()
            .find(|i| i["url"].as_str().unwrap().ends_with(path))
            .unwrap_or_else(|| panic!("{path} not in the report"));
        assert_eq!(item["status"], "failed", "{path}");
        assert_eq!(item["bytes"], 0);
        let error = item["error"].as_str().unwrap();
        assert!(error.contains(reason), "{path}: {error:?} should say {reason:?}\n{}", run.stderr);
    }

    let files = images(&dir.join("images"));
    for (name, bytes) in expected_files() {
        let on_disk = files.get(name).unwrap_or_else(|| panic!("{name} missing: {:?}", files.keys()));
        assert!(on_disk == &bytes, "{name} is not byte for byte what the server sent");
    }
    let same: BTreeSet<&Vec<u8>> =
        files.iter().filter(|(k, _)| k.starts_with("same")).map(|(_, v)| v).collect();
    assert_eq!(same, BTreeSet::from([&same_a(), &same_b()]), "two URLs, two files");
    assert_eq!(files.len(), ok, "nothing for the failures: {:?}", files.keys());
    // Nothing outside the out dir.
    assert_eq!(entries(root.path()), ["work"]);
    assert_eq!(entries(&dir), ["images", "report.json", "settings.yaml"]);
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn chaos_async_one_worker() {
    chaos_run("async", "1");
}

#[test]
fn chaos_async_four_workers() {
    chaos_run("async", "4");
}

#[test]
fn chaos_sync_one_worker() {
    chaos_run("sync", "1");
}

#[test]
fn chaos_sync_three_workers() {
    chaos_run("sync", "3");
}

/// A gallery page of `n` small images served at once.
fn simple_server(n: usize) -> TestServer {
    TestServer::start_with(move |cfg| {
        serve_page(cfg, "/p1/cats.html", gallery_html(&image_paths(n), 1));
        cfg.route(
            "/img/{n}.jpg",
            web::get().to(|n: web::Path<u8>| async move {
                HttpResponse::Ok().content_type("image/jpeg").body(jpeg(n.into_inner(), 2_000))
            }),
        );
    })
}

#[test]
fn a_rerun_downloads_only_what_is_missing() {
    for mode in ["async", "sync"] {
        let server = simple_server(5);
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &server.origin(), "");
        let out = dir.path().join("images");
        let image_hits = || (0..5).map(|i| server.hits(&format!("/img/{i}.jpg"))).sum::<usize>();

        let run = run_binary(dir.path(), &["-m", mode, "--report", "r.json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(image_hits(), 5);

        // Everything there: nothing fetched, all skipped, still a success.
        let run = run_binary(dir.path(), &["-m", mode, "--report", "r.json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.assert_line("Done, success: 5/5, failure: 0/5");
        assert_eq!(image_hits(), 5, "{mode}: nothing downloaded again");
        let report = read_report(&dir.path().join("r.json"));
        assert_eq!(report["images"]["skipped"], 5);
        assert!(
            report["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["status"] == "skipped" && i["bytes"] == 2_000)
        );

        // A deleted and a damaged image are fetched again, the rest skipped.
        std::fs::remove_file(out.join("1.jpg")).unwrap();
        std::fs::write(out.join("2.jpg"), b"half").unwrap();
        let run = run_binary(dir.path(), &["-m", mode]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!((server.hits("/img/1.jpg"), server.hits("/img/2.jpg"), image_hits()), (2, 2, 7));
        assert_eq!(images(&out)["2.jpg"], jpeg(2, 2_000));

        // --force fetches everything again, into the same files.
        let run = run_binary(dir.path(), &["-m", mode, "--force"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(image_hits(), 12);
        assert_eq!(images(&out).len(), 5);

        // A damaged record: a warning, and still no duplicates and no lost files.
        std::fs::write(out.join(".image-scraper/done.jsonl"), "not json\n{\"url\":").unwrap();
        let run = run_binary(dir.path(), &["-m", mode]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.assert_line("resume record damaged");
        let files = images(&out);
        assert_eq!(files.len(), 5, "identical files are recognised, not duplicated: {:?}", files.keys());
        for i in 0..5u8 {
            assert_eq!(files[&format!("{i}.jpg")], jpeg(i, 2_000));
        }
        // ...and the record is rebuilt: the next run skips everything.
        let before = image_hits();
        let run = run_binary(dir.path(), &["-m", mode]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(image_hits(), before, "{mode}: rebuilt record skips all");
    }
}

#[test]
fn a_users_own_file_is_never_overwritten() {
    let server = simple_server(2);
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    let out = dir.path().join("images");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("0.jpg"), b"my own picture").unwrap();
    let run = run_binary(dir.path(), &["--report", "r.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = images(&out);
    assert_eq!(files["0.jpg"], b"my own picture");
    assert_eq!(files.len(), 3);
    let report = read_report(&dir.path().join("r.json"));
    let zero =
        report["items"].as_array().unwrap().iter().find(|i| i["url"].as_str().unwrap().ends_with("/0.jpg"));
    let path = zero.unwrap()["path"].as_str().unwrap();
    assert!(path.starts_with("0-") && path.ends_with(".jpg"), "{path}");
    assert_eq!(files[path], jpeg(0, 2_000));
}

/// 3 images served at once, 12 that send their headers and a first chunk, then stall.
fn stalling_server() -> TestServer {
    TestServer::start_with(|cfg| {
        serve_page(cfg, "/p1/cats.html", gallery_html(&image_paths(15), 1));
        cfg.route(
            "/img/{n}.jpg",
            web::get().to(|n: web::Path<u8>| async move {
                let n = n.into_inner();
                let body = jpeg(n, 20_000);
                match n < 3 {
                    true => HttpResponse::Ok().content_type("image/jpeg").body(body),
                    false => {
                        let first = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(body)) });
                        HttpResponse::Ok()
                            .content_type("image/jpeg")
                            .streaming(first.chain(stream::pending()))
                    }
                }
            }),
        );
    })
}

fn spawn_binary(cwd: &Path, args: &[&str]) -> Child {
    crate::helpers::without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

fn interrupted_run(mode: &str, signal_name: &str, expected_code: i32) {
    let server = stalling_server();
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "  TIMEOUT_SECS: 60\n  CONCURRENCY: 16\n");
    let child = spawn_binary(dir.path(), &["-m", mode, "-p", "4", "--report", "r.json"]);
    // All three quick images done and four stalled ones in flight (sync: one per thread).
    server.wait_for_hits("/img/", 3 + 4);
    let out = dir.path().join("images");
    // Polled: the server saw the quick images asked for, not their files renamed into
    // place, which nothing announces.
    let quick_done = || (0..3).all(|i| out.join(format!("{i}.jpg")).exists());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !quick_done() {
        assert!(Instant::now() < deadline, "quick images never completed");
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, signal_name);
    // A hang guard, not a timing: the grace period is 2 s, a loaded machine adds to it.
    let (code, stderr) = exit_within(child, Duration::from_secs(60));

    assert_eq!(code, expected_code, "{stderr}");
    assert!(stderr.contains("Done, success: 3/15, failure: 12/15"), "{stderr}");
    let files = images(&out);
    assert_eq!(files.len(), 3, "only complete images, under their names: {:?}", files.keys());
    for i in 0..3u8 {
        assert_eq!(files[&format!("{i}.jpg")], jpeg(i, 20_000));
    }
    let report = read_report(&dir.path().join("r.json"));
    assert_eq!(report["images"]["failed"], 12);
    let interrupted =
        report["items"].as_array().unwrap().iter().filter(|i| i["error"] == "interrupted").count();
    assert_eq!(interrupted, 12);
}

#[test]
fn sigint_stops_an_async_run_cleanly() {
    interrupted_run("async", "INT", 130);
}

#[test]
fn sigterm_stops_a_sync_run_cleanly() {
    // Blocking reads cannot be cut short: the Coordinator's grace period ends the wait.
    interrupted_run("sync", "TERM", 143);
}

#[test]
fn a_second_ctrl_c_exits_at_once_leaving_no_partial_file() {
    let server = stalling_server();
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "  TIMEOUT_SECS: 60\n");
    let mut child = spawn_binary(dir.path(), &["-m", "sync", "-p", "4"]);
    server.wait_for_hits("/img/", 3 + 4);
    signal(&child, "INT");
    // Once it says it is stopping (the grace period for the stalled threads has begun),
    // the second.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("signal received") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "no stopping line");
    }
    signal(&child, "INT");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    // Exited by the second signal, not at the grace period's end (which would have
    // counted the stalled images and printed the summary): said by what it printed,
    // whatever the clock on a loaded machine.
    assert!(rest.contains("interrupted twice, exiting now"), "{rest}");
    assert!(!rest.contains("Done, success"), "ended by the grace period: {rest}");
    assert_eq!(status.code(), Some(130));
    let out = dir.path().join("images");
    let files = images(&out);
    assert!(files.values().all(|bytes| bytes.len() == 20_000), "no partial file under a final name");
}

#[test]
fn a_gallery_whose_urls_changed_is_recognised_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("images");
    for _ in 0..2 {
        // A new server each time: a new port, so every URL is new to the resume record.
        let server = simple_server(5);
        write_settings(dir.path(), &server.origin(), "");
        let run = run_binary(dir.path(), &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(images(&out).len(), 5, "same images, same files: {:?}", images(&out).keys());
    }
}
