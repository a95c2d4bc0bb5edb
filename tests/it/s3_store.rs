//! The real binary writing into a real S3-compatible server (SeaweedFS, started by
//! `s3::server`), in both modes: `-o s3://bucket/prefix` fills the bucket byte for byte,
//! a re-run skips what is there, a failed image leaves no object, and a Ctrl-C leaves no
//! partial object or upload behind.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use futures_util::stream::{self, StreamExt};

use crate::helpers::{TestServer, exit_within, gallery_html, jpeg, read_report, serve_page, write_settings};

/// A hang guard, not a timing: a run that has not ended by then is stuck.
const HANG: Duration = Duration::from_secs(60);
use crate::s3::server;

/// Images the gallery serves, by path; the 9 MiB one goes up in parts.
fn gallery() -> BTreeMap<String, Vec<u8>> {
    let mut images: BTreeMap<String, Vec<u8>> =
        (0..4u8).map(|i| (format!("/img/{i}.jpg"), jpeg(60 + i, 30_000))).collect();
    images.insert("/img/big.jpg".into(), jpeg(70, 9 * 1024 * 1024));
    images
}

fn gallery_server() -> TestServer {
    TestServer::start_with(|cfg| {
        let mut srcs: Vec<String> = gallery().keys().cloned().collect();
        srcs.extend(["/img/missing.jpg".to_string(), "/img/page.jpg".to_string()]);
        serve_page(cfg, "/p1/cats.html", gallery_html(&srcs, 1));
        for (path, body) in gallery() {
            cfg.route(
                &path,
                web::get().to(move || {
                    let body = body.clone();
                    async move { HttpResponse::Ok().content_type("image/jpeg").body(body) }
                }),
            );
        }
        cfg.route(
            "/img/page.jpg",
            web::get().to(|| async { HttpResponse::Ok().content_type("text/html").body("<html>no</html>") }),
        )
        // 10 MiB, then nothing: one 8 MiB part goes up, the rest never comes.
        .route(
            "/stall/big.jpg",
            web::get().to(|| async {
                let first = stream::once(async {
                    Ok::<_, std::io::Error>(Bytes::from(
                        jpeg(80, 16 * 1024 * 1024)[..10 * 1024 * 1024].to_vec(),
                    ))
                });
                HttpResponse::Ok()
                    .content_type("image/jpeg")
                    .no_chunking(16 * 1024 * 1024)
                    .streaming(first.chain(stream::pending()))
            }),
        );
        serve_page(cfg, "/p1/stall.html", gallery_html(&["/stall/big.jpg".to_string()], 1));
    })
}

fn binary(dir: &std::path::Path, args: &[&str], env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_image-scraper"));
    crate::helpers::without_proxy(&mut command)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn a_gallery_goes_into_a_bucket_and_a_rerun_skips_it() {
    let Some(s3) = server() else { return };
    let site = gallery_server();
    for mode in ["async", "sync"] {
        let bucket = s3.new_bucket(&format!("gallery-{mode}"));
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &site.origin(), "");
        let out = format!("s3://{}/cats", bucket.bucket());
        let args = ["-m", mode, "-p", "2", "-o", &out, "--report", "r.json"];
        let (code, stderr) = exit_within(binary(dir.path(), &args, &s3.env()).spawn().unwrap(), HANG);
        assert_eq!(code, 1, "{mode}: two images fail: {stderr}");
        assert!(stderr.contains("Done, success: 5/7, failure: 2/7"), "{mode}: {stderr}");
        // Every image byte for byte under the prefix; nothing for the failures; no
        // upload left open.
        let objects: BTreeMap<String, u64> = bucket.list("cats/").unwrap().into_iter().collect();
        for (path, body) in gallery() {
            let key = format!("cats/{}", &path["/img/".len()..]);
            let stored = bucket.get(&key).unwrap();
            assert!(
                stored.as_deref() == Some(&body[..]),
                "{mode}: {key} is not the image: {objects:?}\n{stderr}"
            );
        }
        let names: Vec<&str> = objects.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "cats/.image-scraper/done.jsonl",
                "cats/0.jpg",
                "cats/1.jpg",
                "cats/2.jpg",
                "cats/3.jpg",
                "cats/big.jpg"
            ]
        );
        assert!(bucket.list_multipart_uploads("cats/").unwrap().is_empty(), "{mode}: an upload left open");
        assert!(!dir.path().join("images").exists(), "{mode}: nothing written locally");

        // Again: what is there is skipped, not fetched.
        let before = site.hits("/img/big.jpg");
        let (code, stderr) = exit_within(binary(dir.path(), &args, &s3.env()).spawn().unwrap(), HANG);
        assert_eq!(code, 1, "{mode}: {stderr}");
        let report = read_report(&dir.path().join("r.json"));
        assert_eq!(report["images"]["skipped"], 5, "{mode}: {stderr}");
        assert_eq!(site.hits("/img/big.jpg"), before, "{mode}: a stored image fetched again");
    }
}

#[test]
fn a_name_an_object_holds_is_never_written_over() {
    let Some(s3) = server() else { return };
    let site = gallery_server();
    let bucket = s3.new_bucket("clash");
    bucket.put("cats/0.jpg", b"someone else's object").unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &site.origin(), "");
    let out = format!("s3://{}/cats", bucket.bucket());
    let (_, stderr) = exit_within(
        binary(dir.path(), &["-o", &out, "--report", "r.json"], &s3.env()).spawn().unwrap(),
        HANG,
    );
    let kept = bucket.get("cats/0.jpg").unwrap();
    assert!(kept.as_deref() == Some(&b"someone else's object"[..]), "{stderr}");
    let report = read_report(&dir.path().join("r.json"));
    let item = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["url"].as_str().unwrap().ends_with("/img/0.jpg"))
        .unwrap();
    let name = item["path"].as_str().unwrap();
    assert!(name.starts_with("0-") && name.ends_with(".jpg"), "{name}");
    assert!(bucket.get(&format!("cats/{name}")).unwrap() == Some(jpeg(60, 30_000)), "{name}");
}

#[test]
fn ctrl_c_leaves_no_partial_object_or_upload() {
    let Some(s3) = server() else { return };
    let site = gallery_server();
    for mode in ["async", "sync"] {
        let bucket = s3.new_bucket(&format!("cancel-{mode}"));
        let dir = tempfile::tempdir().unwrap();
        let settings = format!(
            "SCRAPER:\n  URL: {}/\n  ITEM: stall\n  AMOUNT_PAGES: 1\n  IMAGE_HOST: 127.0.0.1\n  TIMEOUT_SECS: 60\n",
            site.origin()
        );
        std::fs::write(dir.path().join("settings.yaml"), settings).unwrap();
        let out = format!("s3://{}/cats", bucket.bucket());
        let child = binary(dir.path(), &["-m", mode, "-p", "1", "-o", &out], &s3.env()).spawn().unwrap();
        // The first part is up once the server lists an upload in progress.
        let deadline = Instant::now() + Duration::from_secs(20);
        while bucket.list_multipart_uploads("cats/").unwrap().is_empty() {
            if Instant::now() > deadline {
                let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
                panic!("{mode}: no part was ever uploaded: {}", exit_within(child, HANG).1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let (code, stderr) = exit_within(child, HANG);
        assert_eq!(code, 130, "{mode}: {stderr}");
        assert_eq!(bucket.head("cats/big.jpg").unwrap(), None, "{mode}: a partial object");
        assert!(bucket.list_multipart_uploads("cats/").unwrap().is_empty(), "{mode}: an upload left open");
    }
}
