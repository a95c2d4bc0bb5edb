//! `X-Robots-Tag` opt-outs, end to end in both modes: an image whose server says `noai`
//! (for all, or for our token) is not stored and is counted skipped with the directive;
//! one meant for another agent is stored; `--ignore-robots` stores them all.

use actix_web::{HttpResponse, web};
use image_scraper::demo::{Picture, png};

use crate::helpers::{TestServer, images, read_report, run_binary};

const MODES: [&str; 2] = ["sync", "async"];

/// Each image's name and the `X-Robots-Tag` lines it is served with.
const SERVED: [(&str, &[&str]); 4] = [
    ("open.png", &[]),
    ("noai.png", &["noai"]),
    // Two lines: the first names another agent, the second us.
    ("ours.png", &["googlebot: nofollow", "image-scraper: noimageai"]),
    ("theirs.png", &["otherbot: noindex, noai"]),
];

/// A real PNG per name, different bytes for each.
fn picture(name: &str) -> Vec<u8> {
    let k = SERVED.iter().position(|(n, _)| *n == name).unwrap_or(99) as u32;
    png(Picture::Own { page: 1, k })
}

fn server() -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.route(
            "/img/{name}",
            web::get().to(|name: web::Path<String>| async move {
                let lines = SERVED.iter().find(|(n, _)| *n == name.as_str()).map_or(&[][..], |(_, l)| *l);
                let mut reply = HttpResponse::Ok();
                reply.content_type("image/png");
                for line in lines {
                    reply.append_header(("X-Robots-Tag", *line));
                }
                reply.body(picture(&name))
            }),
        );
    })
}

#[test]
fn an_opted_out_image_is_skipped_with_its_directive_unless_robots_are_ignored() {
    for mode in MODES {
        let server = server();
        let dir = tempfile::tempdir().unwrap();
        let list: String =
            SERVED.iter().map(|(name, _)| format!("{}/img/{name}\n", server.origin())).collect();
        std::fs::write(dir.path().join("list.txt"), list).unwrap();

        let run =
            run_binary(dir.path(), &["-m", mode, "--urls", "list.txt", "-o", "out", "--report", "r.json"]);
        assert_eq!(run.code, 0, "{mode}: skips are no failure: {}", run.stderr);
        let stored = images(&dir.path().join("out"));
        let names: Vec<&str> = stored.keys().map(String::as_str).collect();
        assert_eq!(names, ["open.png", "theirs.png"], "{mode}");
        for (name, bytes) in &stored {
            assert_eq!(*bytes, picture(name), "{mode}: {name}");
        }
        let report = read_report(&dir.path().join("r.json"));
        assert_eq!(report["skipped_by"]["opt_out"], 2, "{mode}: {report}");
        assert_eq!(report["images"]["skipped"], 2, "{mode}");
        let reason = |name: &str| {
            let items = report["items"].as_array().unwrap();
            let item = items.iter().find(|i| i["url"].as_str().unwrap().ends_with(name)).unwrap();
            (item["status"].as_str().unwrap().to_string(), item["reason"].clone())
        };
        assert_eq!(reason("/noai.png"), ("skipped".into(), "X-Robots-Tag: noai".into()), "{mode}");
        assert_eq!(reason("/ours.png"), ("skipped".into(), "X-Robots-Tag: noimageai".into()), "{mode}");
        assert_eq!(reason("/theirs.png").0, "ok", "{mode}");
        run.assert_line("images skipped: their server opted them out with X-Robots-Tag");
        run.assert_line("2 opted out (X-Robots-Tag)");

        // With robots ignored the same images are stored, whole.
        let run = run_binary(
            dir.path(),
            &["-m", mode, "--urls", "list.txt", "-o", "out", "--report", "r.json", "--ignore-robots"],
        );
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let stored = images(&dir.path().join("out"));
        assert_eq!(stored.len(), 4, "{mode}: {:?}", stored.keys());
        assert_eq!(stored["noai.png"], picture("noai.png"), "{mode}");
        assert_eq!(stored["ours.png"], picture("ours.png"), "{mode}");
        let report = read_report(&dir.path().join("r.json"));
        assert_eq!(report["skipped_by"]["opt_out"], 0, "{mode}: {report}");
    }
}
