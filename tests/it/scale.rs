//! Long `--urls` lists on flat memory: what a run holds must not grow with the list
//! beyond a few hashes per URL. Measured by the binary's own high-water mark (the
//! report's `peak_rss_kib`), asserted only as generous ceilings; the figures for 1 to 10
//! million URLs are the bench's (bench/scale.sh, docs/PERFORMANCE.md).

use actix_web::{HttpResponse, web};

use crate::helpers::{TestServer, jpeg, read_report, run_binary};

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
