//! `MIN_WIDTH`, `MIN_HEIGHT`, `MAX_ASPECT` end to end in both modes: judged from the
//! header as the image streams in, a thumbnail or a banner is skipped with the filter
//! and its dimensions named, and a large image that is too narrow is cut off after its
//! first bytes rather than downloaded whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{HttpResponse, web};
use image_scraper::demo::{Picture, png, thumbnail};

use crate::helpers::{TestServer, images, jpeg, read_report, run_binary_with_env};

const MODES: [&str; 2] = ["sync", "async"];

/// What `/img/huge.png` would send whole: far more than any socket buffers between the
/// server and a client that stopped reading.
const HUGE: u64 = 64 << 20;

const PIECE: usize = 64 << 10;

fn server(sent: Arc<AtomicU64>) -> TestServer {
    TestServer::start_with(move |cfg| {
        let sent = Arc::clone(&sent);
        cfg.route("/img/wide.png", web::get().to(|| async { image(png(Picture::Own { page: 1, k: 1 })) }))
            .route("/img/thumb.png", web::get().to(|| async { image(thumbnail(Picture::Cover)) }))
            .route("/img/banner.png", web::get().to(|| async { image(png(Picture::Logo)) }))
            // A JPEG-framed body with no frame header: its dimensions never tell, so it
            // passes.
            .route(
                "/img/untold.jpg",
                web::get().to(|| async { HttpResponse::Ok().content_type("image/jpeg").body(jpeg(3, 5000)) }),
            )
            .route(
                "/img/huge.png",
                web::get().to(move || {
                    let sent = Arc::clone(&sent);
                    async move { HttpResponse::Ok().content_type("image/png").streaming(narrow_and_huge(sent)) }
                }),
            );
    })
}

fn image(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok().content_type("image/png").body(body)
}

/// A 40x30 PNG's header, then filler up to [`HUGE`] bytes, made piece by piece as the
/// connection takes them: `sent` counts what the server handed over. It ends as a PNG
/// does, so only the cut-off, not a truncated body, can keep it from being read whole.
fn narrow_and_huge(
    sent: Arc<AtomicU64>,
) -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> + 'static {
    let small = thumbnail(Picture::Cover);
    // The signature and IHDR, then filler, then IEND: whole to a reader that takes it all.
    let (header, end) = (small[..33].to_vec(), small[small.len() - 12..].to_vec());
    let filler = std::iter::repeat_n(vec![0u8; PIECE], HUGE as usize / PIECE);
    let pieces = std::iter::once(header).chain(filler).chain(std::iter::once(end));
    futures_util::stream::iter(pieces.map(move |piece| {
        sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
        Ok(web::Bytes::from(piece))
    }))
}

#[test]
fn images_outside_the_dimension_filter_are_cut_off_after_their_header() {
    for mode in MODES {
        let sent = Arc::new(AtomicU64::new(0));
        let server = server(Arc::clone(&sent));
        let dir = tempfile::tempdir().unwrap();
        let names = ["wide.png", "thumb.png", "banner.png", "untold.jpg", "huge.png"];
        let list: String = names.iter().map(|name| format!("{}/img/{name}\n", server.origin())).collect();
        std::fs::write(dir.path().join("list.txt"), list).unwrap();
        let args = ["-m", mode, "--urls", "list.txt", "-o", "out", "--report", "r.json"];
        // Sync from the flags, async from the settings keys (as environment variables).
        let (flags, env): (&[&str], &[(&str, &str)]) = match mode {
            "sync" => (&["--min-width", "64", "--max-aspect", "2.5"], &[]),
            _ => (&[], &[("IMAGE_SCRAPER_MIN_WIDTH", "64"), ("IMAGE_SCRAPER_MAX_ASPECT", "2.5")]),
        };
        let run = run_binary_with_env(dir.path(), &[&args[..], flags].concat(), env);
        assert_eq!(run.code, 0, "{mode}: skips are no failure: {}", run.stderr);

        let stored = images(&dir.path().join("out"));
        let kept: Vec<&str> = stored.keys().map(String::as_str).collect();
        assert_eq!(kept, ["untold.jpg", "wide.png"], "{mode}");
        assert_eq!(stored["wide.png"], png(Picture::Own { page: 1, k: 1 }), "{mode}");
        let report = read_report(&dir.path().join("r.json"));
        assert_eq!(report["skipped_by"]["dimensions"], 3, "{mode}: {report}");
        let reason = |name: &str| {
            let items = report["items"].as_array().unwrap();
            let item = items.iter().find(|i| i["url"].as_str().unwrap().ends_with(name)).unwrap();
            assert_eq!(item["status"], "skipped", "{mode}: {item}");
            item["reason"].as_str().unwrap().to_string()
        };
        assert_eq!(reason("/thumb.png"), "40x30 is narrower than MIN_WIDTH (64 px)", "{mode}");
        assert_eq!(reason("/huge.png"), "40x30 is narrower than MIN_WIDTH (64 px)", "{mode}");
        assert_eq!(reason("/banner.png"), "120x40 is more elongated than MAX_ASPECT (2.5)", "{mode}");
        // Cut off: the server got rid of a small part of the body before the client
        // stopped reading (what socket buffers hold), not all of it.
        let sent = sent.load(Ordering::SeqCst);
        assert!(sent < HUGE / 4, "{mode}: {sent} of {HUGE} bytes sent");
        run.assert_line("images skipped: outside the dimension filter, cut off after their header (MIN_WIDTH 64 px, MAX_ASPECT 2.5)");
        run.assert_line("3 dimension filter");
    }
}
