//! Walking whole galleries end to end, in both modes, on each shape of the built-in
//! gallery served by this test process (so every request is counted): next links, a
//! 404 past the end, a repeated last page, detail pages. Settings are what a user would
//! write for such a site.

use std::collections::BTreeSet;
use std::path::Path;

use actix_web::{HttpRequest, HttpResponse, web};
use image_scraper::demo::{self, Gallery, Shape};

use crate::helpers::{Reply, Run, TestServer, images, read_report, run_binary};

/// The built-in gallery in `shape`, every request counted.
fn serve(shape: Shape) -> TestServer {
    TestServer::start_with(move |cfg| {
        cfg.default_service(web::to(move |req: HttpRequest| async move {
            let origin = format!("http://{}", req.connection_info().host());
            Gallery::shaped(shape).reply(req.path(), req.query_string(), &origin).into_response()
        }));
    })
}

/// The settings file a user would write for `shape` on `origin`.
fn settings(dir: &Path, shape: Shape, origin: &str) {
    let site = match shape {
        // A gallery whose pages link to each other: the first page's URL is enough.
        Shape::NextLinks => format!("  URL: {origin}/list/cats\n"),
        // Numbered pages that state no count: an upper bound, the walk finds the end.
        Shape::Missing | Shape::RepeatLast => {
            format!(
                "  URL: {origin}/\n  PAGE_PATH: p{{page}}/{{item}}.html\n  ITEM: cats\n  AMOUNT_PAGES: 50\n"
            )
        }
        Shape::Details => format!(
            "  URL: {origin}/\n  PAGE_PATH: p{{page}}/{{item}}.html\n  ITEM: cats\n  DETAIL_SELECTOR: a.view\n"
        ),
        Shape::Counted => format!("  URL: {origin}/\n  ITEM: cats\n"),
        // A gallery built in the browser: its one page; only a render finds its images.
        Shape::Infinite | Shape::LoadMore | Shape::App => format!("  URL: {origin}/{}\n", shape.page_path()),
    };
    let text = format!("SCRAPER:\n{site}  OUT_DIR: images\n  IMAGE_HOST: 127.0.0.1\n");
    std::fs::write(dir.join("settings.yaml"), text).unwrap();
}

const SHAPES: [Shape; 4] = [Shape::NextLinks, Shape::Missing, Shape::RepeatLast, Shape::Details];

fn scrape(dir: &Path, mode: &str, extra: &[&str]) -> Run {
    let mut args = vec!["-m", mode, "-p", "2", "--report", "r.json"];
    args.extend_from_slice(extra);
    run_binary(dir, &args)
}

/// Requests for listing pages, by path and query.
fn listing_hits(server: &TestServer, shape: Shape, upto: u32) -> Vec<usize> {
    let gallery = Gallery::shaped(shape);
    (1..=upto).map(|n| server.hits(&gallery.page_path(n, "cats"))).collect()
}

#[test]
fn every_shape_is_walked_exactly_in_both_modes() {
    for shape in SHAPES {
        for mode in ["async", "sync"] {
            let server = serve(shape);
            let dir = tempfile::tempdir().unwrap();
            settings(dir.path(), shape, &server.origin());
            let run = scrape(dir.path(), mode, &[]);
            let what = format!("{shape:?} {mode}");
            assert_eq!(run.code, 0, "{what}: {}", run.stderr);
            let expected = Gallery::shaped(shape).expected();
            let n = expected.images;
            run.assert_line(&format!("Done, success: {n}/{n}, failure: 0/{n}"));
            let p = expected.pages;
            run.assert_line(&format!("Pages, success: {p}/{p}, failure: 0/{p}"));

            // Every listing page once; past the end, no more than the look-ahead (the
            // worker count, 2), and nothing at all where next links lead. The numbered
            // pages' plain "next" links are read too, so their last page, which has none,
            // may end the walk before the look-ahead asks past it.
            let hits = listing_hits(&server, shape, 30);
            assert!(hits[..p as usize].iter().all(|&h| h == 1), "{what}: each page once: {hits:?}");
            let past: usize = hits[p as usize..].iter().sum();
            let allowed = match shape {
                Shape::Missing | Shape::RepeatLast => 0..=2,
                _ => 0..=0,
            };
            assert!(allowed.contains(&past), "{what}: {past} pages past the end: {hits:?}");

            // Every file the picture its URL names, byte for byte.
            let report = read_report(&dir.path().join("r.json"));
            assert_eq!(report["pages"]["failed"], 0, "{what}");
            let files = images(&dir.path().join("images"));
            assert_eq!(files.len(), n as usize, "{what}");
            for item in report["items"].as_array().unwrap() {
                let url = url::Url::parse(item["url"].as_str().unwrap()).unwrap();
                let picture =
                    Gallery::shaped(shape).picture(url.path().strip_prefix("/img/").unwrap()).unwrap();
                assert!(files[item["path"].as_str().unwrap()] == demo::png(picture), "{what}: {url}");
            }
            if shape == Shape::Details {
                let d = expected.detail_pages;
                run.assert_line(&format!("Detail pages, success: {d}/{d}, failure: 0/{d}"));
                assert_eq!(report["pages"]["detail_ok"], d);
                let originals =
                    report["items"].as_array().unwrap().iter().filter(|i| i["detail"].is_string());
                assert_eq!(originals.count(), d as usize, "{what}: each original names its detail page");
                assert_eq!(server.hits("/view/cats-3-4.html"), 1, "{what}: a detail page once");
                assert_eq!(server.hits("/thumb/cats-3-4.png"), 0, "{what}: its thumbnail is not fetched");
                assert_eq!(server.hits("/img/cats-avatar.png"), 0, "{what}: only the largest image");
            }
        }
    }
}

#[test]
fn a_rerun_skips_what_the_first_completed_on_every_shape() {
    for shape in SHAPES {
        let server = serve(shape);
        let dir = tempfile::tempdir().unwrap();
        settings(dir.path(), shape, &server.origin());
        assert_eq!(scrape(dir.path(), "async", &[]).code, 0, "{shape:?}");
        let again = scrape(dir.path(), "sync", &[]);
        assert_eq!(again.code, 0, "{shape:?}: {}", again.stderr);
        let n = Gallery::shaped(shape).expected().images;
        let report = read_report(&dir.path().join("r.json"));
        assert_eq!(
            (report["images"]["skipped"].as_u64(), report["images"]["ok"].as_u64()),
            (Some(n.into()), Some(0))
        );
        let fetched: usize = (1..=8).map(|k| server.hits(&format!("/img/cats-2-{k}.png"))).sum();
        assert_eq!(fetched, 8, "{shape:?}: each image of page 2 fetched by the first run only");
    }
}

#[test]
fn a_dry_run_lists_what_a_real_run_gets_on_every_shape() {
    for shape in SHAPES {
        let server = serve(shape);
        let dir = tempfile::tempdir().unwrap();
        settings(dir.path(), shape, &server.origin());
        let listed = scrape(dir.path(), "async", &["--dry-run"]);
        assert_eq!(listed.code, 0, "{shape:?}: {}", listed.stderr);
        let listed: BTreeSet<String> = listed.stdout.lines().map(String::from).collect();
        assert_eq!(scrape(dir.path(), "async", &[]).code, 0);
        let report = read_report(&dir.path().join("r.json"));
        // A link target that is a page is asked with a HEAD by the dry run, which then
        // lists its thumbnail, as the real run downloads it.
        let as_listed = |item: &serde_json::Value| item["url"].as_str().unwrap().to_string();
        let got: BTreeSet<String> = report["items"].as_array().unwrap().iter().map(as_listed).collect();
        assert_eq!(listed, got, "{shape:?}");
    }
}

/// Pages `(path, next link)`, each with one image of its own.
fn linked_pages(pages: &[(&str, Option<String>)]) -> Vec<(String, Reply)> {
    let mut routes = Vec::new();
    for (i, (path, next)) in pages.iter().enumerate() {
        let next = next.as_ref().map_or(String::new(), |n| format!(r#"<a rel="next" href="{n}">next</a>"#));
        let html = format!(r#"<html><body><img src="/img/{i}.jpg">{next}</body></html>"#);
        routes.push((path.to_string(), Reply::html(html)));
        routes.push((format!("/img/{i}.jpg"), Reply::image(&crate::helpers::jpeg(i as u8, 1_000))));
    }
    routes
}

fn start(routes: &[(String, Reply)]) -> TestServer {
    TestServer::start(routes.iter().map(|(p, r)| (p.as_str(), r.clone())).collect())
}

fn just_url(dir: &Path, url: &str) {
    std::fs::write(
        dir.join("settings.yaml"),
        format!("SCRAPER:\n  URL: {url}\n  OUT_DIR: images\n  IMAGE_HOST: \"\"\n"),
    )
    .unwrap();
}

#[test]
fn next_links_that_loop_end_the_walk() {
    let routes =
        linked_pages(&[("/a", Some("/b".into())), ("/b", Some("/c".into())), ("/c", Some("/a".into()))]);
    let server = start(&routes);
    for mode in ["async", "sync"] {
        let dir = tempfile::tempdir().unwrap();
        just_url(dir.path(), &format!("{}/a", server.origin()));
        let run = scrape(dir.path(), mode, &[]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        run.assert_line("Pages, success: 3/3, failure: 0/3");
        run.assert_line("its next link leads back to a page walked");
    }
    assert_eq!((server.hits("/a"), server.hits("/b"), server.hits("/c")), (2, 2, 2), "once per run");
}

#[test]
fn a_next_link_to_another_host_is_not_followed_unless_page_host_allows_it() {
    // `localhost` and 127.0.0.1 are one server (loopback) but two hosts: the next link
    // leads off the site.
    let server = TestServer::start_with(|cfg| {
        cfg.default_service(web::to(|req: HttpRequest| async move {
            let port = req.app_config().local_addr().port();
            match req.path() {
                "/a" => HttpResponse::Ok().content_type("text/html").body(format!(
                    r#"<img src="/img/a.jpg"><a rel="next" href="http://localhost:{port}/b">next</a>"#
                )),
                "/b" => HttpResponse::Ok().content_type("text/html").body(r#"<img src="/img/b.jpg">"#),
                path if path.starts_with("/img/") => {
                    HttpResponse::Ok().content_type("image/jpeg").body(crate::helpers::jpeg(7, 1_000))
                }
                _ => HttpResponse::NotFound().finish(),
            }
        }));
    });
    let dir = tempfile::tempdir().unwrap();
    just_url(dir.path(), &format!("{}/a", server.origin()));
    let run = scrape(dir.path(), "async", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("next link leads off PAGE_HOST: not followed");
    assert_eq!(server.hits("/b"), 0);
    let text = std::fs::read_to_string(dir.path().join("settings.yaml")).unwrap();
    std::fs::write(dir.path().join("settings.yaml"), format!("{text}  PAGE_HOST: \"\"\n")).unwrap();
    let run = scrape(dir.path(), "sync", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line("Pages, success: 2/2, failure: 0/2");
    assert_eq!(server.hits("/b"), 1, "PAGE_HOST: \"\" follows it");
}

#[test]
fn a_server_error_on_a_later_page_is_a_failure() {
    let mut routes = linked_pages(&[("/a", Some("/b".into()))]);
    routes.push(("/b".into(), Reply::status(500)));
    let server = start(&routes);
    let dir = tempfile::tempdir().unwrap();
    just_url(dir.path(), &format!("{}/a", server.origin()));
    let text = std::fs::read_to_string(dir.path().join("settings.yaml")).unwrap();
    std::fs::write(dir.path().join("settings.yaml"), format!("{text}  RETRIES: 0\n")).unwrap();
    let run = scrape(dir.path(), "sync", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.assert_line("Pages, success: 1/2, failure: 1/2");
}

/// The three pages of a listing as `software` renders its pager (the markup of the unit
/// fixtures in `src/html/next.rs`, whose tests say which template each comes from):
/// `(path and query, html)`, each page with one image of its own.
fn real_pager_pages(software: &str) -> Vec<(String, String)> {
    let url = |n: u32| -> String {
        match (software, n) {
            ("wordpress" | "wordpress-older", 1) => "/blog/".into(),
            ("wordpress" | "wordpress-older", n) => format!("/blog/page/{n}/"),
            ("bootstrap", 1) => "/gallery".into(),
            ("bootstrap", n) => format!("/gallery?page={n}"),
            ("mediawiki", 1) => "/index.php?title=Category:Cats".into(),
            ("mediawiki", n) => format!("/index.php?title=Category:Cats&filefrom=Cat+{n}00.jpg"),
            ("blogger", 1) => "/".into(),
            ("blogger", n) => format!("/search?updated-max=2024-0{}-01T00:00:00Z&max-results=7", 9 - n),
            (_, n) => format!("/catalogue/page-{n}.html"),
        }
    };
    let href = |n: u32| url(n).replace('&', "&amp;");
    (1..=3)
        .map(|n| {
            let (prev, next) = (n > 1, n < 3);
            let pager = match software {
                "wordpress" => {
                    let p = if prev { format!(r#"<a class="prev page-numbers" href="{}">&laquo; Previous</a>"#, href(n - 1)) } else { String::new() };
                    let x = if next { format!(r#"<a class="next page-numbers" href="{}">Next &raquo;</a>"#, href(n + 1)) } else { String::new() };
                    format!(r#"<nav class="navigation pagination"><div class="nav-links">{p}<span aria-current="page" class="page-numbers current">{n}</span>{x}</div></nav>"#)
                }
                "wordpress-older" => {
                    let p = if next { format!(r#"<div class="nav-previous"><a href="{}">Older posts</a></div>"#, href(n + 1)) } else { String::new() };
                    let x = if prev { format!(r#"<div class="nav-next"><a href="{}">Newer posts</a></div>"#, href(n - 1)) } else { String::new() };
                    format!(r#"<nav class="navigation posts-navigation"><div class="nav-links">{p}{x}</div></nav>"#)
                }
                "bootstrap" => {
                    let p = if prev { format!(r#"<li class="page-item"><a class="page-link" href="{}" aria-label="Previous"><span aria-hidden="true">&laquo;</span></a></li>"#, href(n - 1)) } else { String::new() };
                    let x = if next {
                        format!(r#"<li class="page-item"><a class="page-link" href="{}" aria-label="Next"><span aria-hidden="true">&raquo;</span></a></li>"#, href(n + 1))
                    } else {
                        format!(r#"<li class="page-item disabled"><a class="page-link" href="{}" aria-disabled="true" aria-label="Next"><span aria-hidden="true">&raquo;</span></a></li>"#, href(n))
                    };
                    format!(r#"<nav aria-label="Page navigation"><ul class="pagination">{p}<li class="page-item active"><a class="page-link" href="{}">{n}</a></li>{x}</ul></nav>"#, href(n))
                }
                "mediawiki" => {
                    let p = if prev { format!(r#"<a href="{}#mw-category-media" title="Category:Cats">previous page</a>"#, href(n - 1)) } else { "previous page".into() };
                    let x = if next { format!(r#"<a href="{}#mw-category-media" title="Category:Cats">next page</a>"#, href(n + 1)) } else { "next page".into() };
                    format!(r#"<div id="mw-category-media">({p}) ({x})</div>"#)
                }
                "blogger" => {
                    let p = if prev { format!(r#"<span id="blog-pager-newer-link"><a class="blog-pager-newer-link" href="{}" title="Newer Posts">Newer Posts</a></span>"#, href(n - 1)) } else { String::new() };
                    let x = if next { format!(r#"<span id="blog-pager-older-link"><a class="blog-pager-older-link" href="{}" title="Older Posts">Older Posts</a></span>"#, href(n + 1)) } else { String::new() };
                    format!(r#"<div class="blog-pager" id="blog-pager">{p}{x}<a class="home-link" href="/">Home</a></div>"#)
                }
                _ => {
                    let p = if prev { format!(r#"<li class="previous"><a href="page-{}.html">previous</a></li>"#, n - 1) } else { String::new() };
                    let x = if next { format!(r#"<li class="next"><a href="page-{}.html">next</a></li>"#, n + 1) } else { String::new() };
                    format!(r#"<ul class="pager"><li class="current">Page {n} of 3</li>{p}{x}</ul>"#)
                }
            };
            (url(n), format!(r#"<html><body><img src="/img/{software}-{n}.jpg">{pager}</body></html>"#))
        })
        .collect()
}

#[test]
fn real_pagers_without_rel_next_are_walked_to_their_last_page_by_default() {
    for software in ["wordpress", "wordpress-older", "bootstrap", "mediawiki", "blogger", "catalogue"] {
        let pages = real_pager_pages(software);
        let served = pages.clone();
        let server = TestServer::start_with(move |cfg| {
            let served = served.clone();
            cfg.default_service(web::to(move |req: HttpRequest| {
                let at = req.uri().path_and_query().map_or("", |p| p.as_str()).to_string();
                let page = served.iter().find(|(url, _)| *url == at).map(|(_, html)| html.clone());
                async move {
                    match page {
                        Some(html) => HttpResponse::Ok().content_type("text/html").body(html),
                        None if at.starts_with("/img/") => HttpResponse::Ok()
                            .content_type("image/jpeg")
                            .body(crate::helpers::jpeg(at.len() as u8, 1_000)),
                        None => HttpResponse::NotFound().finish(),
                    }
                }
            }));
        });
        for mode in ["async", "sync"] {
            let dir = tempfile::tempdir().unwrap();
            // What a new user writes: the first page, any image host.
            let settings =
                format!("SCRAPER:\n  URL: {}{}\n  IMAGE_HOST: \"\"\n", server.origin(), pages[0].0);
            std::fs::write(dir.path().join("settings.yaml"), settings).unwrap();
            let run = scrape(dir.path(), mode, &["-o", "images", "--ignore-robots"]);
            assert_eq!(run.code, 0, "{software} {mode}: {}", run.stderr);
            run.assert_line("Pages, success: 3/3, failure: 0/3");
            run.assert_line("the walk ended after page 3");
            assert_eq!(images(&dir.path().join("images")).len(), 3, "{software} {mode}");
        }
        for (url, _) in &pages {
            assert_eq!(server.hits(url), 2, "{software}: {url} once per run");
        }
    }
}

#[test]
fn a_next_selector_set_by_the_user_replaces_the_default_rules() {
    let pages = real_pager_pages("catalogue");
    let routes: Vec<(String, Reply)> =
        pages.iter().map(|(url, html)| (url.clone(), Reply::html(html.clone()))).collect();
    let server = start(&routes);
    let dir = tempfile::tempdir().unwrap();
    just_url(dir.path(), &format!("{}{}", server.origin(), pages[0].0));
    let text = std::fs::read_to_string(dir.path().join("settings.yaml")).unwrap();
    std::fs::write(dir.path().join("settings.yaml"), format!("{text}  NEXT_SELECTOR: a[rel~=next]\n"))
        .unwrap();
    let run = scrape(dir.path(), "async", &["--dry-run", "--ignore-robots"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.hits("/catalogue/page-2.html"), 0, "only the user's selector is asked");
}
