//! Pages whose images only a browser finds, for the renderer's tests (issue 19): an
//! infinite scroll, a "Load more" button, an app shell, IntersectionObserver lazy
//! images, a page that never goes network-idle, an endless feed, hostile pages (dialogs,
//! popups, navigation away, a redirect loop, a memory hog, a busy loop), and two static
//! controls. Every script is a few lines of our own; nothing leaves 127.0.0.1.
//!
//! Every image is `/img/{set}-{batch}-{k}.png`, a distinct PNG (no two of the whole
//! fixture share bytes), and every request is counted by [`TestServer`], so a test can
//! assert the files byte for byte and that each image was asked for exactly once: by the
//! tool's workers, never by the browser.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use image_scraper::demo::{self, Gallery, Picture, Shape};

use crate::helpers::TestServer;

/// The fixture's server, with what each page should give.
pub struct JsPages {
    pub server: TestServer,
}

/// Starts the fixture on 127.0.0.1:0.
pub fn js_gallery() -> JsPages {
    JsPages {
        server: TestServer::start_with(|cfg| {
            cfg.default_service(web::to(
                |req: HttpRequest| async move { reply(req.path(), req.query_string()) },
            ));
        }),
    }
}

/// A page of the fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsPage {
    /// Infinite scroll: 5 batches of 12 from /feed/1.json .. /feed/5.json, the first on
    /// load, each next one when the bottom is within a screen (the demo's `infinite`).
    Feed,
    /// A `#load-more` button: 4 batches of 6 from /more/N.json, the first on load, one
    /// per click; the button is removed after the last (the demo's `load-more`).
    More,
    /// An app shell (`<div id="app">`) whose whole gallery of 10, as linked thumbnails,
    /// srcsets, `<picture>`s and plain `src`s, comes from /api/gallery.json.
    App,
    /// 20 `<img>` with no URL in the HTML, 400 px tall each: an IntersectionObserver sets
    /// `src` from a script array when one scrolls into view. Jumping to the bottom misses
    /// the middle ones; only scrolling a screen at a time finds all.
    Lazy,
    /// 3 images built by script, then a fetch of /poll.json every 100 ms forever: the
    /// network never goes idle.
    Poll,
    /// A feed that adds 5 more images (`/img/endless-N-1.png` ..) on every scroll near the
    /// bottom, forever; images are served for any N up to [`ENDLESS_MAX`].
    Endless,
    /// `alert()` and `confirm()` on load (before it builds its 3 images) and on every
    /// scroll: a renderer that does not answer dialogs hangs.
    Alert,
    /// `window.open` of /elsewhere.html?from=popup and of about:blank on load (headless
    /// Chromium's popup blocker stops these unless it is off), of
    /// /elsewhere.html?from=click on any click (a user gesture, such as a CDP mouse
    /// event, lets that one through), then 3 images: no popup may be rendered or
    /// download /elsewhere.html's images.
    Popup,
    /// Builds 3 images, then 200 ms later sets `location` to /elsewhere.html (a render
    /// that waits for idle finds itself there: it must keep away.html's images, or at
    /// least not hang).
    Away,
    /// Where /away.html and /popup.html go: 3 other images, plain in its HTML.
    Elsewhere,
    /// `location.replace("/loop.html?n=N+1")` on load, forever (measured: about 30 rounds
    /// a second); no image.
    Loop,
    /// After load, holds on to 32 MB more every few milliseconds until the tab is killed
    /// (by V8's heap limit or the renderer); no image. Measured: about 300 MB a second of
    /// resident memory, still going at 3.4 GB after 10 s with no `--max-old-space-size`.
    Hog,
    /// `while (true) {}` after load: the tab's main thread never answers again; no image.
    Spin,
    /// The static control: 4 plain `<img>` in the HTML and a script that does nothing
    /// (auto mode must not render it).
    Static,
    /// No image and no script: auto mode has nothing to render it for.
    NoscriptEmpty,
}

/// The largest batch number /img/endless-N-K.png is served for.
pub const ENDLESS_MAX: u32 = 100_000;

/// Each image set: its name in `/img/{name}-{batch}-{k}.png`, how many batches, how many
/// per batch. Its index makes its pictures' seeds (see [`picture`]).
const SETS: [(&str, u32, u32); 11] = [
    ("feed", 5, 12),
    ("more", 4, 6),
    ("app", 1, 10),
    ("lazy", 1, 20),
    ("poll", 1, 3),
    ("alert", 1, 3),
    ("popup", 1, 3),
    ("away", 1, 3),
    ("elsewhere", 1, 3),
    ("static", 1, 4),
    ("endless", ENDLESS_MAX, 5),
];

impl JsPage {
    pub const ALL: [JsPage; 15] = [
        JsPage::Feed,
        JsPage::More,
        JsPage::App,
        JsPage::Lazy,
        JsPage::Poll,
        JsPage::Endless,
        JsPage::Alert,
        JsPage::Popup,
        JsPage::Away,
        JsPage::Elsewhere,
        JsPage::Loop,
        JsPage::Hog,
        JsPage::Spin,
        JsPage::Static,
        JsPage::NoscriptEmpty,
    ];

    /// Its path on the server: `/feed.html`, `/noscript-empty.html`.
    pub fn path(self) -> &'static str {
        match self {
            JsPage::Feed => "/feed.html",
            JsPage::More => "/more.html",
            JsPage::App => "/app.html",
            JsPage::Lazy => "/lazy.html",
            JsPage::Poll => "/poll.html",
            JsPage::Endless => "/endless.html",
            JsPage::Alert => "/alert.html",
            JsPage::Popup => "/popup.html",
            JsPage::Away => "/away.html",
            JsPage::Elsewhere => "/elsewhere.html",
            JsPage::Loop => "/loop.html",
            JsPage::Hog => "/hog.html",
            JsPage::Spin => "/spin.html",
            JsPage::Static => "/static.html",
            JsPage::NoscriptEmpty => "/noscript-empty.html",
        }
    }

    /// The image paths a complete render of the page finds, in page order (`Endless`:
    /// its first batch; [`endless_images`] for more).
    pub fn images(self) -> Vec<String> {
        let name = match self {
            JsPage::Feed => "feed",
            JsPage::More => "more",
            JsPage::App => "app",
            JsPage::Lazy => "lazy",
            JsPage::Poll => "poll",
            JsPage::Alert => "alert",
            JsPage::Popup => "popup",
            JsPage::Away => "away",
            JsPage::Elsewhere => "elsewhere",
            JsPage::Static => "static",
            JsPage::Endless => return endless_images(1),
            JsPage::Loop | JsPage::Hog | JsPage::Spin | JsPage::NoscriptEmpty => return Vec::new(),
        };
        let (_, batches, per) = SETS.iter().find(|(n, _, _)| *n == name).copied().expect("a set");
        (1..=batches).flat_map(|n| (1..=per).map(move |k| format!("/img/{name}-{n}-{k}.png"))).collect()
    }

    /// [`JsPage::images`] with the bytes the server sends for each: what the out dir
    /// must hold, file for file.
    pub fn expected(self) -> Vec<(String, Vec<u8>)> {
        with_bytes(self.images())
    }
}

/// The endless feed's first `batches` batches of 5.
pub fn endless_images(batches: u32) -> Vec<String> {
    (1..=batches).flat_map(|n| (1..=5).map(move |k| format!("/img/endless-{n}-{k}.png"))).collect()
}

/// Each image path with its bytes.
pub fn with_bytes(paths: Vec<String>) -> Vec<(String, Vec<u8>)> {
    paths
        .into_iter()
        .map(|path| {
            let bytes = image(&path).unwrap_or_else(|| panic!("{path} is not an image of the fixture"));
            (path, bytes)
        })
        .collect()
}

impl JsPages {
    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// The page's full URL.
    pub fn url(&self, page: JsPage) -> String {
        format!("{}{}", self.origin(), page.path())
    }

    /// Every request for an image or a thumbnail so far, by path, with its count.
    pub fn image_hits(&self) -> BTreeMap<String, usize> {
        let mut hits = self.server.hits_under("/img/");
        hits.extend(self.server.hits_under("/thumb/"));
        hits
    }

    /// Each of `images` was asked for exactly once and no other image or thumbnail at
    /// all: the workers downloaded each once, the browser none.
    pub fn assert_each_fetched_once(&self, images: &[String]) {
        let want: BTreeMap<String, usize> = images.iter().map(|p| (p.clone(), 1)).collect();
        assert_eq!(self.image_hits(), want, "image requests");
    }
}

/// The fixture's answer to a GET of `path` with `query`.
fn reply(path: &str, query: &str) -> HttpResponse {
    if let Some(bytes) = image(path) {
        return HttpResponse::Ok().content_type("image/png").body(bytes);
    }
    // What poll.html asks for every 100 ms: its answer changes nothing.
    if path == "/poll.json" {
        return HttpResponse::Ok().content_type("application/json").body(r#"{"more":false}"#);
    }
    if let Some(html) = JsPage::ALL.into_iter().find(|p| p.path() == path).and_then(page) {
        return HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html);
    }
    // The feed, the button and the app are the demo's own pages and JSON, in other sizes.
    let scripted = match path {
        p if p.starts_with("/feed") => Some(Gallery { pages: 5, per_page: 12, shape: Shape::Infinite }),
        p if p.starts_with("/more") => Some(Gallery { pages: 4, per_page: 6, shape: Shape::LoadMore }),
        "/app.html" | "/api/gallery.json" => Some(Gallery { pages: 1, per_page: 10, shape: Shape::App }),
        _ => None,
    };
    match scripted.map(|g| g.reply(path, query, "")) {
        Some(answer @ (demo::Reply::Html(_) | demo::Reply::Json(_))) => answer.into_response(),
        _ => HttpResponse::NotFound().body("no such page"),
    }
}

/// The bytes of `/img/{set}-{n}-{k}.png` (or its `/thumb/`), if the fixture has it.
fn image(path: &str) -> Option<Vec<u8>> {
    let (thumb, file) = match path.strip_prefix("/img/") {
        Some(file) => (false, file),
        None => (true, path.strip_prefix("/thumb/")?),
    };
    let picture = picture(file.strip_suffix(".png")?)?;
    Some(if thumb { demo::thumbnail(picture) } else { demo::png(picture) })
}

/// The demo's picture for `{set}-{n}-{k}`: set `i`'s batch `n` is the demo's page
/// `1000 * i + n` (the endless set last, so its many batches meet no other set's),
/// which makes every image of the fixture different.
fn picture(stem: &str) -> Option<Picture> {
    let mut parts = stem.rsplitn(3, '-');
    let k: u32 = parts.next()?.parse().ok()?;
    let n: u32 = parts.next()?.parse().ok()?;
    let name = parts.next()?;
    let (i, (_, batches, per)) = SETS.iter().enumerate().find(|(_, (set, _, _))| *set == name)?;
    ((1..=*batches).contains(&n) && (1..=*per).contains(&k))
        .then(|| Picture::Own { page: 1000 * i as u32 + n, k })
}

/// Each image as tall as a screen's third, so a batch fills more than a screen.
const STYLE: &str = "<style>.gallery img{display:block;width:320px;height:240px;margin:8px 0}</style>";

/// `show(urls)`: appends an `<img>` per URL to `#gallery`, as the pages' scripts build
/// their grids.
const SHOW: &str = r#"function show(urls) {
  const gallery = document.getElementById("gallery");
  for (const src of urls) {
    const img = document.createElement("img");
    img.src = src;
    img.alt = src;
    gallery.appendChild(img);
  }
}"#;

/// The fixture's own pages (the feed, the button and the app are the demo's): `None` for
/// those.
fn page(page: JsPage) -> Option<String> {
    let urls = |page: JsPage| serde_json::to_string(&page.images()).expect("strings make JSON");
    let gallery = r#"<div id="gallery" class="gallery"></div>"#;
    let (body, script) = match page {
        JsPage::Feed | JsPage::More | JsPage::App => return None,
        JsPage::Lazy => {
            let slots: String = (0..20)
                .map(|i| format!(r#"<img class="lazy" data-i="{i}" alt="lazy {}">"#, i + 1) + "\n")
                .collect();
            let script = format!(
                r#"const urls = {};
const observer = new IntersectionObserver((entries) => {{
  for (const entry of entries) {{
    if (!entry.isIntersecting) continue;
    entry.target.src = urls[entry.target.dataset.i];
    observer.unobserve(entry.target);
  }}
}});
for (const img of document.querySelectorAll("img.lazy")) observer.observe(img);"#,
                urls(JsPage::Lazy)
            );
            (
                format!(
                    r#"<style>.lazy{{display:block;width:320px;height:400px;margin:0}}</style><div class="gallery">{slots}</div>"#
                ),
                Some(script),
            )
        }
        JsPage::Poll => (
            gallery.to_string(),
            Some(format!(
                r#"{SHOW}
show({});
setInterval(() => fetch("/poll.json", {{ cache: "no-store" }}), 100);"#,
                urls(JsPage::Poll)
            )),
        ),
        JsPage::Endless => (
            r#"<div id="gallery" class="gallery infinite-scroll" data-infinite-scroll></div>"#.to_string(),
            Some(format!(
                r#"{SHOW}
let batch = 0;
function more() {{
  batch += 1;
  show([1, 2, 3, 4, 5].map((k) => "/img/endless-" + batch + "-" + k + ".png"));
}}
window.addEventListener("scroll", () => {{
  if (window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - window.innerHeight) more();
}}, {{ passive: true }});
more();"#
            )),
        ),
        JsPage::Alert => (
            gallery.to_string(),
            Some(format!(
                r#"{SHOW}
alert("alert.html says hello");
confirm("stay on alert.html?");
window.addEventListener("scroll", () => {{ alert("you scrolled"); confirm("scroll on?"); }});
show({});"#,
                urls(JsPage::Alert)
            )),
        ),
        JsPage::Popup => (
            gallery.to_string(),
            Some(format!(
                r#"{SHOW}
window.open("/elsewhere.html?from=popup", "_blank");
window.open("about:blank");
document.addEventListener("click", () => window.open("/elsewhere.html?from=click", "_blank"));
show({});"#,
                urls(JsPage::Popup)
            )),
        ),
        JsPage::Away => (
            gallery.to_string(),
            Some(format!(
                r#"{SHOW}
show({});
setTimeout(() => {{ location.href = "/elsewhere.html"; }}, 200);"#,
                urls(JsPage::Away)
            )),
        ),
        JsPage::Elsewhere | JsPage::Static => {
            let imgs: String =
                page.images().iter().map(|src| format!(r#"<img src="{src}" alt="{src}">"#) + "\n").collect();
            let script = (page == JsPage::Static)
                .then(|| "// Nothing to build: the images are in the HTML.".to_string());
            (format!(r#"<div class="gallery">{imgs}</div>"#), script)
        }
        JsPage::Loop => (
            "<p>Going round.</p>".to_string(),
            Some(
                r#"const n = Number(new URLSearchParams(location.search).get("n") || 0);
location.replace("/loop.html?n=" + (n + 1));"#
                    .to_string(),
            ),
        ),
        JsPage::Hog => (
            "<p>Eating memory.</p>".to_string(),
            Some(
                r#"// Ordinary arrays, so V8's heap limit ends the tab rather than the machine's memory.
const hoard = [];
function eat() {
  for (let i = 0; i < 4; i++) hoard.push(new Array(1 << 20).fill(hoard.length));
  setTimeout(eat, 1);
}
window.addEventListener("load", eat);"#
                    .to_string(),
            ),
        ),
        JsPage::Spin => (
            "<p>Spinning.</p>".to_string(),
            Some(r#"window.addEventListener("load", () => { while (true) {} });"#.to_string()),
        ),
        JsPage::NoscriptEmpty => ("<p>Nothing to see here.</p>".to_string(), None),
    };
    let script = script.map(|s| format!("<script>\n{s}\n</script>\n")).unwrap_or_default();
    let title = page.path().trim_start_matches('/');
    Some(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>{STYLE}</head>\n<body>\n{body}\n{script}</body></html>\n"
    ))
}

/// GETs `path` on the fixture: status and body (no proxy: the machine's must not see it).
fn get(pages: &JsPages, path: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().proxy(None).http_status_as_error(false).build().into();
    let mut response = agent.get(&format!("{}{path}", pages.origin())).call().unwrap();
    (response.status().as_u16(), response.body_mut().read_to_vec().unwrap())
}

fn get_json(pages: &JsPages, path: &str) -> serde_json::Value {
    let (status, body) = get(pages, path);
    assert_eq!(status, 200, "{path}");
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn only_the_static_pages_have_image_urls_in_their_html_and_only_noscript_empty_has_no_script() {
    let pages = js_gallery();
    for page in JsPage::ALL {
        let (status, body) = get(&pages, page.path());
        assert_eq!(status, 200, "{page:?}");
        let html = String::from_utf8(body).unwrap();
        let tags: Vec<&str> =
            html.split("<img").skip(1).map(|rest| &rest[..rest.find('>').unwrap()]).collect();
        let with_url = tags.iter().filter(|tag| tag.contains("src")).count();
        match page {
            JsPage::Static | JsPage::Elsewhere => assert_eq!(with_url, page.images().len(), "{page:?}"),
            JsPage::Lazy => assert_eq!((tags.len(), with_url), (20, 0), "{html}"),
            _ => assert_eq!(tags.len(), 0, "{page:?}: {html}"),
        }
        let scripts = [JsPage::NoscriptEmpty, JsPage::Elsewhere].contains(&page);
        assert_eq!(!html.contains("<script>"), scripts, "{page:?}");
        assert!(!html.contains("://"), "{page:?}: nothing but this server");
    }
    assert!(pages.server.hits_under("/img/").is_empty(), "pages alone fetch no image");
}

#[test]
fn every_image_is_a_distinct_png_served_once_per_request_and_counted() {
    let pages = js_gallery();
    let mut all: Vec<String> = JsPage::ALL.into_iter().flat_map(JsPage::images).collect();
    all.extend(endless_images(3).split_off(5));
    all.push("/thumb/app-1-1.png".into());
    let bodies: std::collections::BTreeSet<Vec<u8>> =
        with_bytes(all.clone()).into_iter().map(|(_, b)| b).collect();
    assert_eq!((all.len(), bodies.len()), (149, 149), "every image of the fixture differs");
    for (path, bytes) in JsPage::Feed.expected().into_iter().chain(JsPage::Static.expected()) {
        assert_eq!(get(&pages, &path), (200, bytes), "{path}");
    }
    let mut fetched = JsPage::Feed.images();
    fetched.extend(JsPage::Static.images());
    pages.assert_each_fetched_once(&fetched);
    assert_eq!(get(&pages, &format!("/img/endless-{ENDLESS_MAX}-5.png")).0, 200);
    for missing in [
        "/img/feed-6-1.png",
        "/img/feed-1-13.png",
        "/img/more-1-7.png",
        "/img/app-1-1-small.png",
        "/img/lazy-1-21.png",
        "/img/endless-1-6.png",
        "/img/nothing-1-1.png",
        "/thumb/feed-0-1.png",
    ] {
        assert_eq!(get(&pages, missing).0, 404, "{missing}");
    }
    assert_eq!(pages.image_hits()["/img/feed-6-1.png"], 1, "misses are counted too");
}

#[test]
fn the_feed_button_and_app_json_list_exactly_their_pages_images() {
    let pages = js_gallery();
    for (page, stem, batches) in [(JsPage::Feed, "feed", 5), (JsPage::More, "more", 4)] {
        let mut listed = Vec::new();
        for n in 1..=batches {
            let batch = get_json(&pages, &format!("/{stem}/{n}.json"));
            let next = (n < batches).then(|| format!("/{stem}/{}.json", n + 1));
            assert_eq!(batch["next"].as_str(), next.as_deref(), "{stem} {n}");
            listed
                .extend(batch["images"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()));
        }
        assert_eq!(listed, page.images(), "{page:?}");
        assert_eq!(get(&pages, &format!("/{stem}/{}.json", batches + 1)).0, 404);
    }
    let app = get_json(&pages, "/api/gallery.json");
    let entries = app["images"].as_array().unwrap();
    assert_eq!(entries.len(), 10);
    assert_eq!(entries[2]["src"], "/img/app-1-3.png", "a plain src");
    assert_eq!(entries[0]["href"], "/img/app-1-1.png", "a thumbnail linked to its original");
    let (_, more) = get(&pages, JsPage::More.path());
    assert!(String::from_utf8(more).unwrap().contains(r##"<button id="load-more""##));
}

#[test]
fn the_loop_page_answers_any_round_and_polls_are_counted_apart() {
    let pages = js_gallery();
    assert_eq!(get(&pages, "/loop.html?n=41").0, 200);
    assert_eq!(get(&pages, "/poll.json"), (200, br#"{"more":false}"#.to_vec()));
    assert_eq!((pages.server.hits("/loop.html?n=41"), pages.server.hits("/poll.json")), (1, 1));
    assert!(pages.url(JsPage::Away).ends_with("/away.html"));
}
