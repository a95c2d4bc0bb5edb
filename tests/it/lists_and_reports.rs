//! Input that forgives and reports that tell everything, in both modes: URL lists as
//! people write them (a BOM, comments, blank lines), a URL without a scheme, failed pages
//! in the report and the failed lists, the manifest on a re-run, the walk's end reason.

use actix_web::{HttpResponse, web};

use crate::helpers::{TestServer, jpeg, run_binary, run_binary_with_env};

const MODES: [&str; 2] = ["sync", "async"];

/// `/img/{n}.jpg`: a JPEG of `1000 + n` bytes.
fn images_server() -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.route(
            "/img/{file}",
            web::get().to(|file: web::Path<String>| async move {
                let n: usize = file.trim_end_matches(".jpg").parse().unwrap_or(0);
                HttpResponse::Ok().content_type("image/jpeg").body(jpeg(n as u8, 1000 + n))
            }),
        );
    })
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
