//! Long `--urls` lists on flat memory: what a run holds must not grow with the list
//! beyond a few hashes per URL. Measured by the binary's own high-water mark (the
//! report's `peak_rss_kib`), asserted only as generous ceilings; the figures for 1 to 10
//! million URLs are the bench's (bench/scale.sh, docs/PERFORMANCE.md).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, web};

use crate::helpers::{TestServer, exit_within, jpeg, read_report, run_binary, without_proxy};

/// One small JPEG under any `/img/N.jpg`.
fn server() -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.route(
            "/img/{file}",
            web::get().to(|| async { HttpResponse::Ok().content_type("image/jpeg").body(jpeg(7, 300)) }),
        );
    })
}

/// Runs a list of `n` URLs; returns the peak memory in KiB.
fn run_list(server: &TestServer, n: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let list: String = (0..n).map(|i| format!("{}/img/{i}.jpg\n", server.origin())).collect();
    std::fs::write(dir.path().join("list.txt"), list).unwrap();
    let run = run_binary(
        dir.path(),
        &["-m", "async", "-p", "2", "--urls", "list.txt", "-o", "out", "--report", "r.json", "--no-progress"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = read_report(&dir.path().join("r.json"));
    assert_eq!(report["images"]["ok"], n, "every URL fetched");
    assert_eq!(report["items"].as_array().unwrap().len(), n, "an item per URL");
    assert_eq!(
        std::fs::read_dir(dir.path().join("out")).unwrap().count(),
        n + 1,
        "a file each, and the tool's folder"
    );
    report["peak_rss_kib"].as_u64().expect("the peak is reported on Linux")
}

#[test]
fn a_long_list_runs_on_flat_memory() {
    let server = server();
    let small = run_list(&server, 10_000);
    let large = run_list(&server, 60_000);
    eprintln!("peak memory: {small} KiB at 10,000 URLs, {large} KiB at 60,000");
    // Held whole, a list cost about 900 bytes per URL (50,000 more: some 43 MiB more).
    // Read as a stream it costs its hashes: under 200 bytes per URL with room to spare.
    let per_url = (large.saturating_sub(small) * 1024) / 50_000;
    assert!(per_url < 200, "{per_url} bytes per URL ({small} KiB at 10,000, {large} KiB at 60,000)");
    assert!(large < 64 * 1024, "{large} KiB at 60,000 URLs");
}

/// A list stopped (Ctrl-C) once 40% of it was served, the server holding every request
/// after that so the stop surely finds work in flight: the re-run fetches only what was
/// not stored, and every file ends up whole.
fn a_list_stopped_at_40_percent_resumes_where_it_stopped(mode: &str) {
    // More than the Coordinator reads ahead (a few thousand rows): a stop leaves rows unread.
    const N: usize = 5_000;
    const HOLD_AT: usize = N * 2 / 5;
    let served = Arc::new(AtomicUsize::new(0));
    let (open, gate) = tokio::sync::watch::channel(false);
    let server = {
        let served = Arc::clone(&served);
        TestServer::start_with(move |cfg| {
            let (served, gate) = (Arc::clone(&served), gate.clone());
            cfg.route(
                "/img/{n}.jpg",
                web::get().to(move |n: web::Path<u8>| {
                    let (served, mut gate) = (Arc::clone(&served), gate.clone());
                    async move {
                        if served.fetch_add(1, Ordering::SeqCst) >= HOLD_AT {
                            let _ = gate.wait_for(|open| *open).await;
                        }
                        HttpResponse::Ok().content_type("image/jpeg").body(jpeg(*n, 2_000))
                    }
                }),
            );
        })
    };
    let dir = tempfile::tempdir().unwrap();
    // Names repeat every 256 images: bytes by the image's number in its name.
    let list: String = (0..N).map(|i| format!("{}/img/{}.jpg?i={i}\n", server.origin(), i % 256)).collect();
    std::fs::write(dir.path().join("list.txt"), list).unwrap();
    let args =
        ["-m", mode, "-p", "2", "--urls", "list.txt", "-o", "out", "--report", "r.json", "--no-progress"];
    let child = without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
        .current_dir(dir.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_for_hits("/img/", HOLD_AT + 1);
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let (code, stderr) = exit_within(child, Duration::from_secs(60));
    assert_eq!(code, 130, "{mode}: {stderr}");
    let _ = open.send(true);
    let first = read_report(&dir.path().join("r.json"));
    let stored = first["images"]["ok"].as_u64().unwrap() as usize;
    assert!((1..=HOLD_AT).contains(&stored), "{mode}: {stored} stored before the stop");
    assert_eq!(first["images"]["total"], N, "{mode}: unread rows count too");
    assert_eq!(first["images"]["failed"], N - stored, "{mode}: what was not done counts as failed");

    let before = served.load(Ordering::SeqCst);
    let run = run_binary(dir.path(), &args);
    assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
    assert_eq!(served.load(Ordering::SeqCst) - before, N - stored, "{mode}: nothing stored is fetched again");
    let second = read_report(&dir.path().join("r.json"));
    assert_eq!(second["skipped_by"]["complete"], stored, "{mode}");
    assert_eq!(second["images"]["ok"], N - stored, "{mode}");
    for item in second["items"].as_array().unwrap() {
        let url = item["url"].as_str().unwrap();
        let n: u8 = url.rsplit('/').next().unwrap().split('.').next().unwrap().parse().unwrap();
        let path = dir.path().join("out").join(item["path"].as_str().unwrap());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            jpeg(n, 2_000),
            "{mode}: {url} whole in {}",
            path.display()
        );
    }
}

#[test]
fn an_async_list_stopped_at_40_percent_resumes_where_it_stopped() {
    a_list_stopped_at_40_percent_resumes_where_it_stopped("async");
}

#[test]
fn a_sync_list_stopped_at_40_percent_resumes_where_it_stopped() {
    a_list_stopped_at_40_percent_resumes_where_it_stopped("sync");
}

/// A list past what the per-URL sets keep in memory (262,144 hashes; then they go to
/// disk): its last rows repeat URLs from its first, whose hashes are on disk by then, and
/// each URL is still fetched once. Every image is cut off after its header (too narrow
/// for `--min-width`): 300,000 stored files would cost the test a gigabyte of disk.
#[test]
fn a_list_past_what_memory_holds_fetches_each_url_once() {
    const UNIQUE: u32 = 280_000;
    const REPEATS: u32 = 20_000;
    let requests = Arc::new(std::sync::Mutex::new(vec![0u8; UNIQUE as usize]));
    let server = {
        let requests = Arc::clone(&requests);
        let picture = image_scraper::demo::png(image_scraper::demo::Picture::Cover);
        TestServer::start_with(move |cfg| {
            let (requests, picture) = (Arc::clone(&requests), picture.clone());
            cfg.route(
                "/img/{n}.png",
                web::get().to(move |n: web::Path<u32>| {
                    let (requests, picture) = (Arc::clone(&requests), picture.clone());
                    async move {
                        let mut seen = requests.lock().unwrap();
                        seen[*n as usize] = seen[*n as usize].saturating_add(1);
                        HttpResponse::Ok().content_type("image/png").body(picture)
                    }
                }),
            );
        })
    };
    let dir = tempfile::tempdir().unwrap();
    // The repeats are the first rows again, read after 280,000 others.
    let rows = (0..UNIQUE).chain(0..REPEATS);
    let list: String = rows.map(|i| format!("{}/img/{i}.png\n", server.origin())).collect();
    std::fs::write(dir.path().join("list.txt"), list).unwrap();
    let args = ["-m", "async", "-p", "2", "--urls", "list.txt", "-o", "out", "--min-width", "100000"];
    let run = run_binary(dir.path(), &[&args[..], &["--report", "r.json", "--no-progress"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = requests.lock().unwrap();
    let twice = requests.iter().filter(|n| **n > 1).count();
    let never = requests.iter().filter(|n| **n == 0).count();
    assert_eq!((twice, never), (0, 0), "every URL fetched once");
    // Read as text, not parsed whole: an item a line, the counts before them.
    let report = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    let items = report.lines().filter(|l| l.trim_start().starts_with("{\"kind\"")).count();
    assert_eq!(items, UNIQUE as usize, "an item per URL");
    let peak: u64 = report
        .split("\"peak_rss_kib\":")
        .nth(1)
        .and_then(|rest| rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .expect("the peak is reported on Linux");
    // Generous: the goal for a million URLs.
    assert!(peak < 64 * 1024, "{peak} KiB");
}
