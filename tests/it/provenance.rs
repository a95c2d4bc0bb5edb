//! Provenance end to end in both modes: every stored image's item says the URL its bytes
//! came from after redirects, the Content-Type as sent, and the width and height read
//! from its header, in the JSON report and the JSONL manifest alike.

use actix_web::{HttpResponse, web};
use image_scraper::demo::{Picture, png, thumbnail};

use crate::helpers::{TestServer, read_report, run_binary};

const MODES: [&str; 2] = ["sync", "async"];

/// A baseline JPEG of `width` x `height` as its frame header (SOF0) states it, then
/// filler and EOI: what a header reader sees of a real photo.
fn jpeg_of(width: u16, height: u16) -> Vec<u8> {
    let mut body = b"\xFF\xD8\xFF\xC0\x00\x11\x08".to_vec();
    body.extend_from_slice(&height.to_be_bytes());
    body.extend_from_slice(&width.to_be_bytes());
    body.extend_from_slice(b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01");
    body.extend((0..3000u32).map(|i| (i % 200) as u8));
    body.extend_from_slice(b"\xFF\xD9");
    body
}

fn server() -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.route(
            "/img/moved.png",
            web::get().to(|| async {
                HttpResponse::Found().insert_header(("Location", "/cdn/banner.png")).finish()
            }),
        )
        .route(
            "/cdn/banner.png",
            web::get().to(|| async { HttpResponse::Ok().content_type("image/png").body(png(Picture::Logo)) }),
        )
        .route(
            "/img/thumb.png",
            web::get().to(|| async {
                HttpResponse::Ok().content_type("image/png").body(thumbnail(Picture::Cover))
            }),
        )
        .route(
            "/img/photo.jpg",
            web::get().to(|| async {
                HttpResponse::Ok().insert_header(("Content-Type", "image/JPEG; q=1")).body(jpeg_of(1024, 768))
            }),
        );
    })
}

#[test]
fn each_stored_image_says_where_it_came_from_and_its_size() {
    for mode in MODES {
        let server = server();
        let origin = server.origin();
        let dir = tempfile::tempdir().unwrap();
        let list: String = ["moved.png", "thumb.png", "photo.jpg"]
            .iter()
            .map(|name| format!("{origin}/img/{name}\n"))
            .collect();
        std::fs::write(dir.path().join("list.txt"), list).unwrap();
        for report in ["r.json", "m.jsonl"] {
            let out = format!("out-{report}");
            let args = ["-m", mode, "--urls", "list.txt", "-o", &out, "--report", report];
            let run = run_binary(dir.path(), &args);
            assert_eq!(run.code, 0, "{mode} {report}: {}", run.stderr);
            let items: Vec<serde_json::Value> = if report.ends_with(".jsonl") {
                let text = std::fs::read_to_string(dir.path().join(report)).unwrap();
                text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
            } else {
                read_report(&dir.path().join(report))["items"].as_array().unwrap().clone()
            };
            let item = |name: &str| {
                let url = format!("{origin}/img/{name}");
                items
                    .iter()
                    .find(|i| i["url"] == url.as_str())
                    .unwrap_or_else(|| panic!("{mode}: no {url} in {items:?}"))
            };
            let provenance = |name: &str| {
                let i = item(name);
                assert_eq!(i["status"], "ok", "{mode} {report}: {i}");
                (i["final_url"].clone(), i["content_type"].clone(), i["width"].clone(), i["height"].clone())
            };
            let target = format!("{origin}/cdn/banner.png");
            assert_eq!(
                provenance("moved.png"),
                (target.into(), "image/png".into(), 120.into(), 40.into()),
                "{mode} {report}: the redirect's target, and the target's own size"
            );
            assert_eq!(
                provenance("thumb.png"),
                (serde_json::Value::Null, "image/png".into(), 40.into(), 30.into()),
                "{mode} {report}"
            );
            assert_eq!(
                provenance("photo.jpg"),
                (serde_json::Value::Null, "image/JPEG; q=1".into(), 1024.into(), 768.into()),
                "{mode} {report}: the Content-Type as sent"
            );
        }
    }
}
