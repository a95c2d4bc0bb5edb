//! What the tool gives people and scripts: the dry run, the manifest, the failed list fed
//! back with --urls, filters, completions and the man page, settings from the
//! environment, JSON logs, the summary table and the progress bar (in a pseudo-terminal).

use std::process::Command;

use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::helpers::{TestServer, images, jpeg, read_report, run_binary, write_settings};

/// Images 0..n of `1000 * (i + 1)` bytes (two of them, .png, are PNG-named JPEGs), plus
/// a broken one.
fn server(n: u8) -> TestServer {
    TestServer::start_with(move |cfg| {
        let mut tags: String =
            (0..n).map(|i| format!("<img src=\"/img/{i}.{}\">", if i < 2 { "png" } else { "jpg" })).collect();
        tags.push_str("<img src=\"/img/broken.jpg\"><li class=\"pag-text\">Page 1 of 1</li>");
        cfg.route(
            "/p1/cats.html",
            web::get().to(move || {
                let tags = tags.clone();
                async move { HttpResponse::Ok().content_type("text/html").body(tags) }
            }),
        )
        .route("/img/broken.jpg", web::get().to(|| async { HttpResponse::NotFound().finish() }))
        .route(
            "/img/{file}",
            web::get().to(|file: web::Path<String>| async move {
                let i: u8 = file.split('.').next().unwrap().parse().unwrap();
                HttpResponse::Ok().content_type("image/jpeg").body(jpeg(i, 1000 * (i as usize + 1)))
            }),
        );
    })
}

#[test]
fn dry_run_lists_urls_and_downloads_nothing() {
    let server = server(3);
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    let run = run_binary(dir.path(), &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed: Vec<&str> = run.stdout.lines().collect();
    let origin = server.origin();
    let expected = [
        format!("{origin}/img/0.png"),
        format!("{origin}/img/1.png"),
        format!("{origin}/img/2.jpg"),
        format!("{origin}/img/broken.jpg"),
    ];
    assert_eq!(listed, expected);
    assert_eq!(server.hits("/img/0.png") + server.hits("/img/2.jpg"), 0, "nothing downloaded");
    assert!(!dir.path().join("images").exists(), "nothing created");
}

#[test]
fn the_manifest_has_a_line_per_image_with_its_sha256() {
    let server = server(3);
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    let run = run_binary(dir.path(), &["--report", "manifest.jsonl"]);
    assert_eq!(run.code, 1, "broken.jpg fails: {}", run.stderr);
    let text = std::fs::read_to_string(dir.path().join("manifest.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    let files = images(&dir.path().join("images"));
    for line in &lines {
        for key in ["url", "page", "path", "bytes", "status", "error"] {
            assert!(line.get(key).is_some(), "{key} missing in {line}");
        }
        if line["status"] == "ok" {
            let bytes = &files[line["path"].as_str().unwrap()];
            let sha = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect::<String>();
            assert_eq!(line["sha256"], sha);
        } else {
            assert_eq!(line["error"], "HTTP status 404");
        }
    }
}

#[test]
fn the_failed_list_feeds_back_into_urls() {
    let server = server(2);
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    let run = run_binary(dir.path(), &["--failed", "failed.txt"]);
    assert_eq!(run.code, 1);
    let failed = std::fs::read_to_string(dir.path().join("failed.txt")).unwrap();
    assert_eq!(failed, format!("{}/img/broken.jpg\n", server.origin()));
    // Fed back: only that URL is requested again (and fails again: still exit 1).
    let run = run_binary(dir.path(), &["--urls", "failed.txt", "--failed", "failed.txt"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.assert_line("Done, success: 0/1, failure: 1/1");
    assert_eq!(server.hits("/img/broken.jpg"), 2);
    assert_eq!(server.hits("/img/0.png"), 1);
    assert_eq!(server.hits("/p1/cats.html"), 1, "no pages with --urls");
}

#[test]
fn extension_and_size_filters() {
    let server = server(6);
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    // .jpg only: 2..5 (3 000 to 6 000 bytes) and the broken one; of those, 4 000 to 5 000.
    let run = run_binary(
        dir.path(),
        &["--ext", "jpg", "--min-size", "3.5K", "--max-size", "5000", "--report", "r.json"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let files = images(&dir.path().join("images"));
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["3.jpg", "4.jpg"]);
    assert_eq!(server.hits("/img/0.png"), 0, "filtered by extension before any request");
    let report = read_report(&dir.path().join("r.json"));
    assert_eq!(report["images"]["total"], 5, "the .png ones are not counted at all");
    assert_eq!(report["images"]["skipped"], 2);
    let reasons: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "skipped")
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().any(|r| r.starts_with("smaller than --min-size")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("larger than --max-size")), "{reasons:?}");
}

#[test]
fn completions_and_the_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_binary(dir.path(), &["completions", "bash"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("complete -F") && run.stdout.contains("--dry-run"), "{}", &run.stdout[..200]);
    let run = run_binary(dir.path(), &["completions", "zsh"]);
    assert!(run.code == 0 && run.stdout.contains("#compdef image-scraper"));
    let run = run_binary(dir.path(), &["man"]);
    assert!(
        run.code == 0 && run.stdout.contains(".TH image-scraper"),
        "{}",
        &run.stdout[..200.min(run.stdout.len())]
    );
}

#[test]
fn settings_come_from_the_environment_below_flags() {
    let server = server(2);
    let dir = tempfile::tempdir().unwrap();
    let output = crate::helpers::without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
        .args(["--dry-run", "--item", "cats"])
        .current_dir(dir.path())
        .env("IMAGE_SCRAPER_URL", format!("{}/", server.origin()))
        .env("IMAGE_SCRAPER_ITEM", "dogs")
        .env("IMAGE_SCRAPER_IMAGE_HOST", "127.0.0.1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        3,
        "--item cats beat IMAGE_SCRAPER_ITEM"
    );
    let output = crate::helpers::without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
        .current_dir(dir.path())
        .env("IMAGE_SCRAPER_AMOUNT_PAGES", "many")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("IMAGE_SCRAPER_AMOUNT_PAGES"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let server = server(2);
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    let run = run_binary(dir.path(), &["--log-format", "json"]);
    assert_eq!(run.code, 1);
    let lines: Vec<serde_json::Value> =
        run.stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(lines.iter().any(|l| l["msg"] == "Done, success: 2/3, failure: 1/3"));
    assert!(lines.iter().all(|l| l.get("level").is_some()));
}

#[test]
fn people_get_a_table_and_no_bar_when_not_on_a_terminal() {
    let server = server(2);
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    let run = run_binary(dir.path(), &[]);
    assert!(
        run.stderr.contains("  images        2 ok      1 failed      0 skipped   of 3"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\r') && !run.stderr.contains("eta"), "no bar: {}", run.stderr);
}

#[test]
fn a_terminal_gets_a_live_bar_with_the_log_above_it() {
    let server = server(2);
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "");
    // util-linux script(1) gives the program a pseudo-terminal and records what it drew.
    let command = format!("{} -p 1", env!("CARGO_BIN_EXE_image-scraper"));
    let output = crate::helpers::without_proxy(&mut Command::new("script"))
        .args(["-qefc", &command, "/dev/null"])
        .current_dir(dir.path())
        .output()
        .expect("script(1) from util-linux");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(screen.contains("images") && screen.contains("eta"), "the bar was drawn: {screen}");
    assert!(screen.contains("Done, success: 2/3, failure: 1/3"), "{screen}");
    assert!(screen.contains("of 3"), "and the table: {screen}");
}
