//! The demo's galleries built in the browser (`--demo infinite|load-more|app`): one page
//! each whose HTML holds no image at all, and a tiny script of our own (no third-party
//! code) that fetches the images' URLs as JSON and builds the grid, as infinite scroll,
//! "Load more" buttons and single-page apps do. Only a render finds their images.
//!
//! Each gallery's images are `/img/{stem}-{batch}-{k}.png` (`feed`, `more`, `app`),
//! served by the same picture routes as every shape: batch `n` of the gallery is the
//! gallery's page `n`, so [`Gallery::picture`](super::Gallery::picture) knows them.

use serde_json::{Value, json};

use super::{Gallery, Reply, Shape};

/// The name of a scripted shape's page, JSON routes and images: `/feed.html`,
/// `/feed/1.json`, `/img/feed-1-1.png`. `None` for the shapes whose HTML holds the images.
pub(super) fn stem(shape: Shape) -> Option<&'static str> {
    match shape {
        Shape::Infinite => Some("feed"),
        Shape::LoadMore => Some("more"),
        Shape::App => Some("app"),
        _ => None,
    }
}

/// Where the single-page app asks for its whole gallery.
const API: &str = "/api/gallery.json";

/// Each image tall enough that a batch is taller than any screen: the next one comes only
/// once the user scrolls (or clicks), never by itself on a large window.
const STYLE: &str = "<style>.gallery img{display:block;width:320px;height:240px;margin:8px 0}</style>";

/// Shared by the feed and the button: fetch batch `url`, append an `<img>` per URL to
/// `grid`, resolve to the next batch's URL (`null` after the last).
const LOAD_BATCH: &str = r#"function loadBatch(grid, url) {
  return fetch(url).then((r) => { if (!r.ok) throw new Error(url + ": " + r.status); return r.json(); })
    .then((batch) => {
      for (const src of batch.images) {
        const img = document.createElement("img");
        img.src = src;
        img.alt = src;
        grid.appendChild(img);
      }
      return batch.next;
    });
}"#;

/// Infinite scroll: the first batch on load, each next one once the bottom is within a
/// screen; a window the feed does not fill yet asks for the next batch itself.
const FEED_SCRIPT: &str = r#"const feed = document.getElementById("feed");
let next = feed.dataset.next, busy = false;
function more() {
  const nearBottom = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - window.innerHeight;
  if (busy || !next || !nearBottom) return;
  busy = true;
  loadBatch(feed, next).then((after) => {
    next = after;
    busy = false;
    if (!next) document.getElementById("end").hidden = false;
    more();
  }, () => { busy = false; });
}
window.addEventListener("scroll", more, { passive: true });
more();"#;

/// "Load more": the first batch on load, each next one on a click; the button goes away
/// after the last (so a renderer clicking "while it matches" stops), and is disabled
/// while a batch is on its way.
const MORE_SCRIPT: &str = r#"const grid = document.getElementById("gallery");
const button = document.getElementById("load-more");
function more() {
  button.disabled = true;
  loadBatch(grid, button.dataset.next).then((next) => {
    if (!next) { button.remove(); return; }
    button.dataset.next = next;
    button.disabled = false;
  }, () => { button.disabled = false; });
}
button.addEventListener("click", () => { if (!button.disabled) more(); });
more();"#;

/// The app: one API call for the whole gallery, each image built as its JSON says (a
/// linked thumbnail, a srcset, a `<picture>`, a plain `src`), so the extraction rules of
/// static pages are what the rendered DOM is read with.
const APP_SCRIPT: &str = r#"const app = document.getElementById("app");
function build(image) {
  const img = document.createElement("img");
  img.src = image.src;
  img.alt = image.alt;
  if (image.srcset) img.srcset = image.srcset;
  let el = img;
  if (image.sources) {
    el = document.createElement("picture");
    for (const s of image.sources) {
      const source = document.createElement("source");
      if (s.type) source.type = s.type;
      source.srcset = s.srcset;
      el.appendChild(source);
    }
    el.appendChild(img);
  }
  if (image.href) {
    const a = document.createElement("a");
    a.href = image.href;
    a.appendChild(el);
    el = a;
  }
  return el;
}
fetch(app.dataset.api).then((r) => r.json()).then((gallery) => {
  const title = document.createElement("h1");
  title.textContent = gallery.title;
  const grid = document.createElement("div");
  grid.className = "gallery";
  for (const image of gallery.images) grid.appendChild(build(image));
  app.append(title, grid);
});"#;

impl Gallery {
    /// Every image of a scripted gallery, batch by batch (empty for the other shapes):
    /// `/img/feed-1-1.png` ... `/img/feed-5-12.png`.
    pub fn script_images(&self) -> Vec<String> {
        (1..=self.pages).flat_map(|n| self.batch(n)).collect()
    }

    /// Batch `n`'s images (`n` from 1); empty past the last or on other shapes.
    fn batch(&self, n: u32) -> Vec<String> {
        match stem(self.shape) {
            Some(stem) if (1..=self.pages).contains(&n) => {
                (1..=self.per_page).map(|k| format!("/img/{stem}-{n}-{k}.png")).collect()
            }
            _ => Vec::new(),
        }
    }

    /// A scripted shape's routes: its page and its JSON; `None` for any other path.
    pub(super) fn script_reply(&self, path: &str) -> Option<Reply> {
        let stem = stem(self.shape)?;
        if path == format!("/{stem}.html") {
            return Some(Reply::Html(self.script_page(stem)));
        }
        if self.shape == Shape::App {
            return (path == API).then(|| Reply::Json(self.app_json().to_string()));
        }
        let n: u32 = path.strip_prefix(&format!("/{stem}/"))?.strip_suffix(".json")?.parse().ok()?;
        self.batch_json(stem, n).map(|json| Reply::Json(json.to_string()))
    }

    /// Batch `n` as the feed and the button read it:
    /// `{"batch": n, "of": 5, "images": ["/img/feed-n-1.png", ...], "next": "/feed/n+1.json"}`,
    /// `"next": null` on the last.
    fn batch_json(&self, stem: &str, n: u32) -> Option<Value> {
        let images = self.batch(n);
        if images.is_empty() {
            return None;
        }
        let next = (n < self.pages).then(|| format!("/{stem}/{}.json", n + 1));
        Some(json!({ "batch": n, "of": self.pages, "images": images, "next": next }))
    }

    /// The app's whole gallery: `{"title": ..., "images": [{"alt", "src", and "href" |
    /// "srcset" | "sources": [{"type"?, "srcset"}]}]}`; the original is what each shows
    /// at its largest (the `-small` candidates do not exist, as on the static pages).
    fn app_json(&self) -> Value {
        let images: Vec<Value> = (1..=self.pages)
            .flat_map(|n| (1..=self.per_page).map(move |k| (n, k)))
            .map(|(n, k)| {
                let (file, alt) = (format!("app-{n}-{k}"), format!("app {n}.{k}"));
                let (original, small) = (format!("/img/{file}.png"), format!("/img/{file}-small.png"));
                let widths = format!("{small} 320w, {original} 1280w");
                match k % 4 {
                    // A thumbnail linked to its original: the original is downloaded.
                    1 => json!({ "alt": alt, "src": format!("/thumb/{file}.png"), "href": original }),
                    2 => json!({ "alt": alt, "src": small, "srcset": widths }),
                    3 => json!({ "alt": alt, "src": original }),
                    _ => json!({ "alt": alt, "src": small, "sources": [
                        { "type": "image/webp", "srcset": format!("/img/{file}-small.webp 320w") },
                        { "srcset": widths },
                    ] }),
                }
            })
            .collect();
        json!({ "title": "app gallery", "images": images })
    }

    /// The one page of a scripted shape: no `<img>`, its marker (`data-infinite-scroll`,
    /// `#load-more`, `#app`), its script.
    fn script_page(&self, stem: &str) -> String {
        let (body, script) = match self.shape {
            Shape::Infinite => (
                format!(
                    r#"<div id="feed" class="gallery infinite-scroll" data-infinite-scroll data-next="/{stem}/1.json"></div>
<p id="end" hidden>That is all.</p>"#
                ),
                format!("{LOAD_BATCH}\n{FEED_SCRIPT}"),
            ),
            Shape::LoadMore => (
                format!(
                    r#"<div id="gallery" class="gallery"></div>
<button id="load-more" class="load-more" data-next="/{stem}/1.json">Load more</button>"#
                ),
                format!("{LOAD_BATCH}\n{MORE_SCRIPT}"),
            ),
            _ => (format!(r#"<div id="app" data-api="{API}"></div>"#), APP_SCRIPT.to_string()),
        };
        format!(
            r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{stem}</title>{STYLE}</head>
<body>
{body}
<script>
{script}
</script>
</body></html>
"#
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;
    use url::Url;

    use super::super::tests::{ORIGIN, html, not_found, scan_text};
    use super::super::{Expected, Gallery, Picture, Reply, Shape, png};

    const SCRIPTED: [Shape; 3] = [Shape::Infinite, Shape::LoadMore, Shape::App];

    fn json(g: &Gallery, path: &str) -> Value {
        match g.reply(path, "", ORIGIN) {
            Reply::Json(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("{path}: {other:?}"),
        }
    }

    fn strings(value: &Value) -> Vec<String> {
        value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn each_scripted_page_has_no_image_only_its_script_and_marker() {
        for (shape, marker) in SCRIPTED.into_iter().zip([
            r#"class="gallery infinite-scroll" data-infinite-scroll"#,
            r#"<button id="load-more" class="load-more""#,
            r#"<div id="app" data-api="/api/gallery.json"></div>"#,
        ]) {
            let g = Gallery::shaped(shape);
            assert_eq!(g.expected(), Expected { images: 60, pages: 1, detail_pages: 0 }, "{shape:?}");
            let path = g.page_path(1, "cats");
            assert_eq!(
                (path.as_str(), g.page_path(3, "dogs")),
                (format!("/{}", shape.page_path()).as_str(), path.clone())
            );
            let page = html(&g, &path, "");
            assert!(!page.contains("<img") && !page.contains("src="), "{shape:?}: {page}");
            assert!(page.contains("<script>") && page.contains("fetch("), "{shape:?}");
            assert!(page.contains(marker), "{shape:?}: {page}");
            let found = scan_text(&g, &page, &Url::parse(&format!("{ORIGIN}{path}")).unwrap(), false);
            assert!(
                found.images.is_empty() && found.next.is_none(),
                "{shape:?}: the tool's static path sees nothing"
            );
            // The index leads to the page; the other shapes' pages are not there.
            assert!(html(&g, "/", "").contains(&format!(r#"href="{path}""#)), "{shape:?}");
            assert!(not_found(&g, "/p1/cats.html", "") && not_found(&g, "/list/cats", ""), "{shape:?}");
            assert_eq!(shape.load_more_selector().is_some(), shape == Shape::LoadMore);
        }
        assert!(!Shape::Counted.is_scripted() && Shape::ALL.iter().filter(|s| s.is_scripted()).count() == 3);
    }

    #[test]
    fn every_image_is_a_distinct_png_of_the_gallery() {
        for shape in SCRIPTED {
            let g = Gallery::shaped(shape);
            let images = g.script_images();
            assert_eq!(images.len(), 60, "{shape:?}");
            let mut bodies = BTreeSet::new();
            for path in &images {
                let Reply::Png(bytes) = g.reply(path, "", ORIGIN) else { panic!("{path}") };
                let picture = g.picture(path.strip_prefix("/img/").unwrap()).unwrap();
                assert!(matches!(picture, Picture::Own { .. }) && bytes == png(picture), "{path}");
                bodies.insert(bytes);
            }
            assert_eq!(bodies.len(), 60, "{shape:?}: distinct pictures");
            assert!(not_found(&g, &images[0].replace("-1-1.png", "-6-1.png"), ""), "{shape:?}: no batch 6");
        }
    }

    #[test]
    fn feed_and_button_batches_chain_to_the_last_which_says_no_more() {
        for (shape, stem) in [(Shape::Infinite, "feed"), (Shape::LoadMore, "more")] {
            let g = Gallery::shaped(shape);
            let page = html(&g, &format!("/{stem}.html"), "");
            assert!(page.contains(&format!(r#"data-next="/{stem}/1.json""#)), "{page}");
            let (mut next, mut seen) = (Some(format!("/{stem}/1.json")), Vec::new());
            while let Some(path) = next {
                let batch = json(&g, &path);
                let n = seen.len() / 12 + 1;
                assert_eq!(
                    (batch["batch"].as_u64(), batch["of"].as_u64()),
                    (Some(n as u64), Some(5)),
                    "{path}"
                );
                let images = strings(&batch["images"]);
                assert_eq!(images.len(), 12, "{path}");
                assert_eq!(images[2], format!("/img/{stem}-{n}-3.png"));
                seen.extend(images);
                next = batch["next"].as_str().map(String::from);
                assert!(next.is_some() || batch["next"].is_null(), "{path}");
            }
            assert_eq!(seen, g.script_images(), "{shape:?}: every image once, in order");
            for bad in ["0", "6", "x", "1.5", ""] {
                assert!(not_found(&g, &format!("/{stem}/{bad}.json"), ""), "{stem}/{bad}");
            }
            assert!(not_found(&g, "/api/gallery.json", ""), "{shape:?}");
        }
        // Each shape answers its own routes only.
        assert!(not_found(&Gallery::shaped(Shape::Infinite), "/more/1.json", ""));
        assert!(not_found(&Gallery::shaped(Shape::LoadMore), "/feed.html", ""));
        assert!(not_found(&Gallery::shaped(Shape::App), "/feed/1.json", ""));
    }

    /// The element `build` in the app's script makes of one JSON entry, as HTML.
    fn built(image: &Value) -> String {
        let attr = |name: &str| image[name].as_str().map(|v| format!(r#" {name}="{v}""#)).unwrap_or_default();
        let mut html = format!("<img{}{}{}>", attr("src"), attr("alt"), attr("srcset"));
        if let Some(sources) = image["sources"].as_array() {
            let sources: String = sources
                .iter()
                .map(|s| {
                    format!(
                        "<source{}{}>",
                        s["type"].as_str().map(|t| format!(r#" type="{t}""#)).unwrap_or_default(),
                        format_args!(r#" srcset="{}""#, s["srcset"].as_str().unwrap())
                    )
                })
                .collect();
            html = format!("<picture>{sources}{html}</picture>");
        }
        match image["href"].as_str() {
            Some(href) => format!(r#"<a href="{href}">{html}</a>"#),
            None => html,
        }
    }

    #[test]
    fn the_app_api_holds_the_whole_gallery_in_every_way_pages_show_images() {
        let g = Gallery::shaped(Shape::App);
        let gallery = json(&g, "/api/gallery.json");
        assert_eq!(gallery["title"], "app gallery");
        let images = gallery["images"].as_array().unwrap();
        assert_eq!(images.len(), 60);
        for key in ["href", "srcset", "sources"] {
            assert!(images.iter().filter(|i| !i[key].is_null()).count() >= 10, "{key}");
        }
        // The grid the script builds, read by the tool's extractor: each original once.
        let grid: String = images.iter().map(built).collect();
        let page = format!(r#"<div id="app"><h1>app gallery</h1><div class="gallery">{grid}</div></div>"#);
        let found = scan_text(&g, &page, &Url::parse(&format!("{ORIGIN}/app.html")).unwrap(), false);
        let urls: Vec<&str> = found.urls().map(Url::path).collect();
        assert_eq!(urls, g.script_images(), "{page}");
        // Its thumbnails are real (and not what is downloaded).
        assert!(matches!(g.reply("/thumb/app-1-1.png", "", ORIGIN), Reply::Png(_)));
    }

    #[test]
    fn the_server_sends_the_batches_as_json() {
        let server = super::super::DemoServer::start(Gallery::shaped(Shape::Infinite)).unwrap();
        // No proxy: ureq's default config would send this through one from the environment.
        let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
        let mut response = agent.get(&format!("{}feed/5.json", server.url())).call().unwrap();
        assert_eq!(response.headers()["content-type"], "application/json");
        let batch: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!((batch["images"].as_array().unwrap().len(), batch["next"].is_null()), (12, true));
    }
}
