//! The built-in demo gallery: an actix-web server on 127.0.0.1 serving listing pages and
//! real PNG images, so the tool can be tried (and tested) with no internet. It comes in
//! the shapes real galleries have ([`Shape`], `--demo SHAPE`): numbered pages that state
//! their count (the default), pages reached only by their next links, numbered pages
//! that end in a 404, or that repeat the last one for any larger number, and a listing
//! whose thumbnails lead to a page per image. Three more shapes hold no image in their
//! HTML: a script of the page builds the gallery in the browser ([`scripted`]).
//!
//! Every listing page exercises the extraction rules: thumbnails linked to their
//! full-size originals (`<a href="/img/x.png"><img src="/thumb/x.png"></a>`: the original
//! is what is downloaded), root-relative, page-relative and absolute image URLs, a
//! lazy-loaded one (`data-src`) with its `<noscript>` twin, a `<picture>` whose sources
//! offer two sizes and formats, a duplicate on the page, an image shared by all pages
//! behind a MediaWiki-style link to an HTML description page (so its thumbnail is the
//! fallback), a foreign-host image the host filter must drop, a `data:` URI, and on page
//! 1 a second image with the same file name as another (served from another folder).

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use url::Url;

mod scripted;

/// A 1x1 transparent GIF, as lazy-loading pages put in `src`.
const PLACEHOLDER: &str = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";

/// How the demo gallery's pages are laid out (`--demo SHAPE`): each is a way real
/// galleries are, so `--demo` and the tests can walk every one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Shape {
    /// Numbered pages (/p1/cats.html) that state their count ("Page 1 of 5")
    #[default]
    Counted,
    /// Pages reached only by their rel="next" links (/list/cats, /list/cats?after=cats-1-8),
    /// no count stated
    NextLinks,
    /// Numbered pages, no count stated; past the last, 404
    Missing,
    /// Numbered pages, no count stated; any number past the last serves the last again
    RepeatLast,
    /// Numbered pages whose thumbnails link to a page per image (/view/cats-1-1.html)
    /// holding the original among smaller images
    Details,
    /// One page (/feed.html) with no image in its HTML: its script appends 12 more from
    /// JSON (/feed/1.json ... /feed/5.json) each time the reader nears the bottom
    Infinite,
    /// One page (/more.html) with no image in its HTML: its script shows 12, then 12 more
    /// on each click of its "Load more" button (#load-more), which goes after the last
    LoadMore,
    /// A single-page app (/app.html): an empty <div id="app"> its script fills with the
    /// whole gallery from /api/gallery.json
    App,
}

impl Shape {
    pub const ALL: [Shape; 8] = [
        Shape::Counted,
        Shape::NextLinks,
        Shape::Missing,
        Shape::RepeatLast,
        Shape::Details,
        Shape::Infinite,
        Shape::LoadMore,
        Shape::App,
    ];

    /// `PAGE_PATH` as a user would write it for this site: without `{page}` for the
    /// next-link gallery, whose walk starts at the first page and follows its links, and
    /// for the scripted ones, which are a single page.
    pub fn page_path(self) -> &'static str {
        match self {
            Shape::NextLinks => "list/{item}",
            Shape::Infinite => "feed.html",
            Shape::LoadMore => "more.html",
            Shape::App => "app.html",
            _ => "p{page}/{item}.html",
        }
    }

    /// Whether the gallery is built by a script in the browser: its HTML holds no image,
    /// only a render finds them.
    pub fn is_scripted(self) -> bool {
        scripted::stem(self).is_some()
    }

    /// `LOAD_MORE_SELECTOR` as a user would set it for this site; `None`: no button.
    pub fn load_more_selector(self) -> Option<&'static str> {
        (self == Shape::LoadMore).then_some("#load-more")
    }

    /// `DETAIL_SELECTOR` as a user would write it for this site; `None`: no detail pages.
    pub fn detail_selector(self) -> Option<&'static str> {
        (self == Shape::Details).then_some("a.view")
    }

    /// `AMOUNT_PAGES` as a user would set it for this site when none is given: an upper
    /// bound for a numbered gallery that states no count and has no next links, whose
    /// end is found by the walk (a 404, a repeated page).
    pub fn amount_pages(self) -> Option<u32> {
        matches!(self, Shape::Missing | Shape::RepeatLast).then_some(20)
    }

    /// Whether listing pages state the page count (`li.pag-text`).
    fn states_count(self) -> bool {
        matches!(self, Shape::Counted | Shape::Details)
    }
}

/// Shape of the demo gallery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gallery {
    /// Listing pages the site has.
    pub pages: u32,
    /// Distinct images of each page's own (besides the shared one and page 1's clash).
    pub per_page: u32,
    /// How its pages are laid out and linked.
    pub shape: Shape,
}

impl Default for Gallery {
    fn default() -> Self {
        Self { pages: 5, per_page: 8, shape: Shape::Counted }
    }
}

/// What a walk of a whole gallery finds with the demo's settings for its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Distinct images saved.
    pub images: u32,
    /// Listing pages the gallery has. A walk also asks for the one past the last where
    /// that is how its end is found: the 404 of `missing`, the repeat of `repeat-last`.
    pub pages: u32,
    /// Detail pages, one per image of `details`'s listing.
    pub detail_pages: u32,
}

/// Which picture an image path shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Picture {
    Own {
        page: u32,
        k: u32,
    },
    /// On every page: found many times, downloaded once.
    Cover,
    /// `/img/alt/{item}-1-1.png`: same file name as page 1's first image, other bytes.
    Alt,
    /// `/img/{item}-logo.png`: the site's logo, on every page of `details`.
    Logo,
    /// `/img/{item}-avatar.png`: the uploader's picture on a detail page, never the image.
    Avatar,
}

/// What the demo answers to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Html(String),
    Png(Vec<u8>),
    /// What the scripted shapes' pages fetch.
    Json(String),
    NotFound,
}

impl Gallery {
    /// The default gallery in `shape`; the scripted ones come in 5 batches of 12 (60
    /// images), as an infinite scroll of a real site does.
    pub fn shaped(shape: Shape) -> Self {
        match shape.is_scripted() {
            true => Self { shape, pages: 5, per_page: 12 },
            false => Self { shape, ..Self::default() },
        }
    }

    /// Distinct images a scraper with the demo settings should save.
    pub fn image_count(&self) -> u32 {
        self.expected().images
    }

    /// What a full walk finds: each listing page's own images, plus the cover and page
    /// 1's clash; on `details`, an original per detail page plus the logo of the listing;
    /// on a scripted shape, every batch's images, all on its one page.
    pub fn expected(&self) -> Expected {
        let own = self.pages * self.per_page;
        match self.shape {
            _ if self.shape.is_scripted() => Expected { images: own, pages: 1, detail_pages: 0 },
            Shape::Details => Expected { images: own + 1, pages: self.pages, detail_pages: own },
            _ => Expected { images: own + 2, pages: self.pages, detail_pages: 0 },
        }
    }

    /// Where listing page `n` is, as a path and query on the origin (a scripted shape has
    /// one page, whatever `n`).
    pub fn page_path(&self, n: u32, item: &str) -> String {
        if self.shape.is_scripted() {
            return format!("/{}", self.shape.page_path());
        }
        match (self.shape, n) {
            (Shape::NextLinks, 1) => format!("/list/{item}"),
            (Shape::NextLinks, n) => format!("/list/{item}?after={item}-{}-{}", n - 1, self.per_page),
            (_, n) => format!("/p{n}/{item}.html"),
        }
    }

    /// The answer to a GET of `path` (percent-decoded) with `query`, on `origin`
    /// (`http://127.0.0.1:PORT`): every route of the server, whatever the shape.
    pub fn reply(&self, path: &str, query: &str, origin: &str) -> Reply {
        let html = |page: Option<String>| page.map_or(Reply::NotFound, Reply::Html);
        if path == "/" {
            return Reply::Html(self.index());
        }
        if let Some(rest) = path.strip_prefix("/img/") {
            return self.picture(rest).map_or(Reply::NotFound, |p| Reply::Png(png(p)));
        }
        if let Some(rest) = path.strip_prefix("/thumb/") {
            return self.picture(rest).map_or(Reply::NotFound, |p| Reply::Png(thumbnail(p)));
        }
        if let Some(name) = path.strip_prefix("/wiki/").filter(|n| !n.contains('/')) {
            return Reply::Html(wiki(name));
        }
        if self.shape.is_scripted() {
            return self.script_reply(path).unwrap_or(Reply::NotFound);
        }
        match self.shape {
            Shape::NextLinks => {
                let Some(item) = path.strip_prefix("/list/").filter(|i| !i.is_empty() && !i.contains('/'))
                else {
                    return Reply::NotFound;
                };
                html(self.after(item, query).and_then(|n| self.page_html(n, item, origin)))
            }
            Shape::Details if path.starts_with("/view/") => {
                let file = &path["/view/".len()..];
                html(file.strip_suffix(".html").and_then(|stem| self.detail_html(stem)))
            }
            _ => {
                let Some((n, file)) = path.strip_prefix("/p").and_then(|rest| rest.split_once('/')) else {
                    return Reply::NotFound;
                };
                let item = file.strip_suffix(".html").filter(|i| !i.is_empty() && !i.contains('/'));
                html(n.parse().ok().zip(item).and_then(|(n, item)| self.page_html(n, item, origin)))
            }
        }
    }

    /// The page number a next-link gallery's `?after=` cursor names: the page after the
    /// one whose last image it is; no cursor is page 1.
    fn after(&self, item: &str, query: &str) -> Option<u32> {
        let cursor = query.split('&').find_map(|pair| pair.strip_prefix("after="));
        let Some(cursor) = cursor else { return query.is_empty().then_some(1) };
        let (stem, k) = cursor.rsplit_once('-')?;
        let (cursor_item, page) = stem.rsplit_once('-')?;
        let page: u32 = page.parse().ok()?;
        let last_of_its_page = k.parse::<u32>().ok()? == self.per_page;
        (cursor_item == item && last_of_its_page && (1..self.pages).contains(&page)).then_some(page + 1)
    }

    /// The listing page `n` for `item`, with absolute URLs on `origin`
    /// (`http://127.0.0.1:PORT`); `None` past the last page, except on `repeat-last`,
    /// whose last page answers for any number past it.
    pub fn page_html(&self, n: u32, item: &str, origin: &str) -> Option<String> {
        let n = match self.shape {
            Shape::RepeatLast if n > self.pages => self.pages,
            _ => n,
        };
        if n == 0 || n > self.pages {
            return None;
        }
        let imgs = match self.shape {
            Shape::Details => self.detail_thumbnails(n, item),
            _ => self.images(n, item, origin),
        };
        let gallery: String = imgs.iter().map(|i| format!("  <div class=\"thumb\">{i}</div>\n")).collect();
        let (head, nav) = self.navigation(n, item);
        Some(format!(
            r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{item}, page {n}</title>{head}</head>
<body>
<header><img src="http://ads.example.invalid/banner.png" alt="an ad on another host">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="spacer"></header>
<div class="gallery">
{gallery}</div>
{nav}
</body></html>
"#
        ))
    }

    /// A listing page's own images, each in one of the ways pages show images.
    fn images(&self, n: u32, item: &str, origin: &str) -> Vec<String> {
        let mut imgs = Vec::new();
        for k in 1..=self.per_page {
            let file = format!("{item}-{n}-{k}.png");
            let alt = format!("{item} {n}.{k}");
            imgs.push(match k {
                // Lazy loading: a placeholder in src, the picture in data-src, and the
                // same picture for browsers without scripts in <noscript>: one image.
                4 => format!(
                    r#"<img src="{PLACEHOLDER}" data-src="/img/{file}" alt="{alt}"><noscript><img src="/img/{file}" alt="{alt}"></noscript>"#
                ),
                // Responsive: the widest candidate of the <picture> is the picture (the
                // small ones do not exist).
                5 => format!(
                    r#"<picture><source type="image/webp" srcset="/img/{item}-{n}-5-small.webp 320w"><source srcset="/img/{item}-{n}-5-small.png 320w, /img/{file} 1280w"><img src="/img/{item}-{n}-5-small.png" alt="{alt}"></picture>"#
                ),
                // A thumbnail linked to its original: the original is downloaded.
                _ => match k % 3 {
                    1 => format!(r#"<a href="/img/{file}"><img src="/thumb/{file}" alt="{alt}"></a>"#),
                    2 => format!(r#"<a href="../img/{file}"><img src="../thumb/{file}" alt="{alt}"></a>"#),
                    _ => format!(r#"<img src="{origin}/img/{file}" alt="{alt}">"#),
                },
            });
        }
        imgs.push(format!(r#"<img src="/img/{item}-{n}-1.png" alt="the first one again">"#));
        // Looks like a link to an image file, answers with a page (as MediaWiki's
        // `File:` links do): the thumbnail, here the cover itself, is the fallback.
        imgs.push(format!(
            r#"<a href="/wiki/File:{item}-cover.png"><img src="/img/{item}-cover.png" alt="cover"></a>"#
        ));
        if n == 1 {
            imgs.push(format!(r#"<img src="/img/alt/{item}-1-1.png" alt="same name, other picture">"#));
        }
        imgs
    }

    /// `details`: the site's logo, then a thumbnail per image, each linking to the
    /// image's own page (the thumbnail is not what is wanted: the page's original is).
    fn detail_thumbnails(&self, n: u32, item: &str) -> Vec<String> {
        let logo = format!(r#"<img src="/img/{item}-logo.png" width="120" height="40" alt="logo">"#);
        let thumbs = (1..=self.per_page).map(|k| {
            format!(
                r#"<a class="view" href="/view/{item}-{n}-{k}.html"><img src="/thumb/{item}-{n}-{k}.png" width="40" height="30" alt="{item} {n}.{k}"></a>"#
            )
        });
        std::iter::once(logo).chain(thumbs).collect()
    }

    /// What goes in `<head>` and under the gallery to lead from page to page: plain
    /// links and the count on numbered pages, `rel="next"` links (and no count) on the
    /// next-link gallery.
    fn navigation(&self, n: u32, item: &str) -> (String, String) {
        let last = n >= self.pages;
        if self.shape == Shape::NextLinks {
            let prev = match n {
                1 => String::new(),
                n => format!(r#"<a rel="prev" href="{}">newer</a>"#, self.page_path(n - 1, item)),
            };
            if last {
                return (String::new(), format!(r#"<nav>{prev}</nav>"#));
            }
            let next = self.page_path(n + 1, item);
            let head = format!(r#"<link rel="next" href="{next}">"#);
            return (head, format!(r#"<nav>{prev} <a rel="next" href="{next}">older</a></nav>"#));
        }
        let prev =
            if n > 1 { format!(r#"<a href="/p{}/{item}.html">prev</a>"#, n - 1) } else { String::new() };
        let next =
            if last { String::new() } else { format!(r#"<a href="/p{}/{item}.html">next</a>"#, n + 1) };
        let count = match self.shape.states_count() {
            true => format!(r#"<li class="pag-text">Page {n} of {}</li>"#, self.pages),
            false => format!("<li>Page {n}</li>"),
        };
        (String::new(), format!(r#"<ul class="pagination"><li>{prev}</li>{count}<li>{next}</li></ul>"#))
    }

    /// The page of one image (`details`): the site's logo, the uploader's avatar, the
    /// image (a linked original for odd `k`, the full-size `<img>` itself for even), a
    /// next link to the following image's page and thumbnails of related images linking
    /// to their pages. Only the original is the image; nothing here leads further.
    fn detail_html(&self, stem: &str) -> Option<String> {
        let Some(Picture::Own { page: n, k }) = self.picture(&format!("{stem}.png")) else { return None };
        let item = &stem[..stem.len() - format!("-{n}-{k}").len()];
        let file = format!("{item}-{n}-{k}.png");
        let photo = match k % 2 {
            1 => format!(
                r#"<a href="/img/{file}"><img src="/thumb/{file}" width="40" height="30" alt="{item} {n}.{k}"></a>"#
            ),
            _ => format!(r#"<img src="/img/{file}" width="160" height="120" alt="{item} {n}.{k}">"#),
        };
        let related: String = (1..=self.per_page)
            .filter(|&other| other != k)
            .take(3)
            .map(|other| {
                format!(
                    r#"<a href="/view/{item}-{n}-{other}.html"><img src="/thumb/{item}-{n}-{other}.png" width="40" height="30" alt="related"></a>"#
                )
            })
            .collect();
        let next = match (k < self.per_page).then(|| format!("/view/{item}-{n}-{}.html", k + 1)) {
            Some(next) => format!(r#"<a rel="next" href="{next}">next image</a>"#),
            None => String::new(),
        };
        Some(format!(
            r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{item} {n}.{k}</title></head>
<body>
<header><img src="/img/{item}-logo.png" width="120" height="40" alt="logo">
<img src="/img/{item}-avatar.png" width="48" height="48" alt="uploaded by"></header>
<main class="photo">{photo}</main>
<nav>{next}</nav>
<aside class="related">{related}</aside>
</body></html>
"#
        ))
    }

    /// Links to the listing's first pages.
    fn index(&self) -> String {
        let links: String = (1..=self.pages)
            .map(|n| format!(r#"<li><a href="{}">page {n}</a></li>"#, self.page_path(n, "cats")))
            .take(match self.shape {
                Shape::Counted | Shape::Missing | Shape::RepeatLast | Shape::Details => usize::MAX,
                _ => 1,
            })
            .collect();
        format!("<!DOCTYPE html><title>demo gallery</title><ul>{links}</ul>")
    }

    /// Which picture `/img/{path}` is, for any item; `None` if there is no such image.
    pub fn picture(&self, path: &str) -> Option<Picture> {
        let (alt, file) = match path.strip_prefix("alt/") {
            Some(file) => (true, file),
            None => (false, path),
        };
        let stem = file.strip_suffix(".png")?;
        if !alt {
            for (suffix, picture) in
                [("-cover", Picture::Cover), ("-logo", Picture::Logo), ("-avatar", Picture::Avatar)]
            {
                if stem.strip_suffix(suffix).is_some_and(|item| !item.is_empty()) {
                    return Some(picture);
                }
            }
        }
        let mut parts = stem.rsplitn(3, '-');
        let k: u32 = parts.next()?.parse().ok()?;
        let page: u32 = parts.next()?.parse().ok()?;
        parts.next().filter(|item| !item.is_empty())?;
        match (alt, page, k) {
            (true, 1, 1) => Some(Picture::Alt),
            (false, 1..=u32::MAX, 1..=u32::MAX) if page <= self.pages && k <= self.per_page => {
                Some(Picture::Own { page, k })
            }
            _ => None,
        }
    }
}

/// A description page for an image, as MediaWiki serves at `/wiki/File:Name.png`.
fn wiki(name: &str) -> String {
    let file = name.strip_prefix("File:").unwrap_or(name);
    format!(
        r#"<!DOCTYPE html><title>File:{file}</title><h1>File:{file}</h1><a href="/img/{file}"><img src="/img/{file}"></a>"#
    )
}

/// The PNG bytes of a picture: a gradient with a few discs and some grain, different for
/// every picture, the same on every run.
pub fn png(picture: Picture) -> Vec<u8> {
    let (w, h) = size(picture);
    render(picture, w, h)
}

/// A picture's width and height: the logo and the avatar are as small as their `<img>`s
/// say, so a detail page's largest image is its original whichever way it is measured.
pub fn size(picture: Picture) -> (u32, u32) {
    match picture {
        Picture::Logo => (120, 40),
        Picture::Avatar => (48, 48),
        _ => (160, 120),
    }
}

/// The thumbnail of a picture (`/thumb/...`): what a scraper should not settle for.
pub fn thumbnail(picture: Picture) -> Vec<u8> {
    render(picture, 40, 30)
}

fn render(picture: Picture, w: u32, h: u32) -> Vec<u8> {
    let seed = match picture {
        Picture::Own { page, k } => page.wrapping_mul(7919).wrapping_add(k),
        Picture::Cover => 0xC0FE,
        Picture::Alt => 0xA17,
        Picture::Logo => 0x1060,
        Picture::Avatar => 0xA7A,
    };
    let mut rng = XorShift(u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let c1 = [rng.byte(), rng.byte(), rng.byte()];
    let c2 = [rng.byte(), rng.byte(), rng.byte()];
    let discs: Vec<(i64, i64, i64, [u8; 3])> = (0..4)
        .map(|_| {
            let x = i64::from(rng.next() as u32 % w);
            let y = i64::from(rng.next() as u32 % h);
            let r = 10 + i64::from(rng.next() as u32 % 30);
            (x, y, r, [rng.byte(), rng.byte(), rng.byte()])
        })
        .collect();
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let t = (x + y) as f32 / (w + h) as f32;
            let mut px: [u8; 3] =
                std::array::from_fn(|i| (c1[i] as f32 * (1.0 - t) + c2[i] as f32 * t) as u8);
            for &(dx, dy, r, color) in &discs {
                let (ex, ey) = (i64::from(x) - dx, i64::from(y) - dy);
                if ex * ex + ey * ey <= r * r {
                    px = color;
                }
            }
            let grain = (rng.next() % 24) as u8;
            data.extend(px.iter().map(|c| c.saturating_add(grain)));
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().expect("in-memory PNG header");
    writer.write_image_data(&data).expect("in-memory PNG data");
    writer.finish().expect("in-memory PNG end");
    out
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 24) as u8
    }
}

/// The port `--demo` asks for first.
pub const DEMO_PORT: u16 = 8429;

/// The running demo server. Stops when dropped.
pub struct DemoServer {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl DemoServer {
    /// Starts the server on 127.0.0.1 with a free port, on a thread of its own (its own
    /// actix System), and returns once it accepts connections.
    pub fn start(gallery: Gallery) -> io::Result<Self> {
        Self::start_on(gallery, 0)
    }

    /// Like [`DemoServer::start`], on `port` if it is free (else any free port): the
    /// same port on every run means the same image URLs, so a second `--demo` run
    /// resumes instead of downloading everything again.
    pub fn start_on(gallery: Gallery, port: u16) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .or_else(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))?;
        Self::serve(gallery, listener)
    }

    /// On `port` or not at all (a shared job's first process serves the gallery there,
    /// and the others use it).
    pub fn start_exactly(gallery: Gallery, port: u16) -> io::Result<Self> {
        Self::serve(gallery, std::net::TcpListener::bind(("127.0.0.1", port))?)
    }

    /// Where [`DEMO_PORT`]'s gallery is, served by this process or another.
    pub fn url_on() -> Url {
        Url::parse(&format!("http://127.0.0.1:{DEMO_PORT}/")).expect("a socket address makes a URL")
    }

    fn serve(gallery: Gallery, listener: std::net::TcpListener) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("demo-gallery".into()).spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new().app_data(web::Data::new(gallery)).default_service(web::to(serve))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener);
                let server = match server {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let addr = server.addrs()[0];
                let running = server.run();
                let _ = tx.send(Ok((addr, running.handle())));
                let _ = running.await;
            });
        })?;
        let (addr, handle) =
            rx.recv().map_err(|_| io::Error::other("demo server thread ended before it started"))??;
        Ok(Self { addr, handle, thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`
    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("a socket address makes a URL")
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        // `stop` sends its command when called; the returned future only waits for it.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Every request, answered by [`Gallery::reply`]: the routes are plain code there, so
/// they are unit-tested without a server.
async fn serve(req: HttpRequest, gallery: web::Data<Gallery>) -> HttpResponse {
    let origin = format!("http://{}", req.connection_info().host());
    let path = percent_encoding::percent_decode_str(req.path()).decode_utf8_lossy();
    if req.method() != actix_web::http::Method::GET {
        return HttpResponse::MethodNotAllowed().finish();
    }
    gallery.reply(&path, req.query_string(), &origin).into_response()
}

impl Reply {
    /// The HTTP answer: one place for the content types, for this server and for the
    /// tests that serve the gallery themselves to count its requests.
    pub fn into_response(self) -> HttpResponse {
        match self {
            Reply::Html(html) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html),
            Reply::Png(bytes) => HttpResponse::Ok().content_type("image/png").body(bytes),
            Reply::Json(json) => HttpResponse::Ok().content_type("application/json").body(json),
            Reply::NotFound => HttpResponse::NotFound().body("not found"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_valid_distinct_pngs() {
        let a = png(Picture::Own { page: 1, k: 1 });
        let b = png(Picture::Alt);
        assert_eq!(&a[..8], b"\x89PNG\r\n\x1a\n");
        assert_ne!(a, b);
        assert_eq!(a, png(Picture::Own { page: 1, k: 1 }));
        let decoder = png::Decoder::new(std::io::Cursor::new(a));
        let info = decoder.read_info().unwrap();
        assert_eq!((info.info().width, info.info().height), (160, 120));
    }

    #[test]
    fn image_paths_map_to_pictures() {
        let g = Gallery::default();
        assert_eq!(g.picture("cats-2-3.png"), Some(Picture::Own { page: 2, k: 3 }));
        assert_eq!(g.picture("black-cats-2-3.png"), Some(Picture::Own { page: 2, k: 3 }));
        assert_eq!(g.picture("cats-cover.png"), Some(Picture::Cover));
        assert_eq!(g.picture("alt/cats-1-1.png"), Some(Picture::Alt));
        for bad in
            ["cats-6-1.png", "cats-1-9.png", "cats-0-1.png", "alt/cats-2-1.png", "-1-1.png", "x.jpg", ""]
        {
            assert_eq!(g.picture(bad), None, "{bad}");
        }
        assert!(g.page_html(6, "cats", "http://x").is_none());
        assert!(g.page_html(5, "cats", "http://x").unwrap().contains("Page 5 of 5"));
        assert_eq!(g.picture("cats-logo.png"), Some(Picture::Logo));
        assert_eq!(g.picture("cats-avatar.png"), Some(Picture::Avatar));
        assert_eq!(g.picture("-logo.png"), None);
    }

    pub(super) const ORIGIN: &str = "http://127.0.0.1:9";

    pub(super) fn html(g: &Gallery, path: &str, query: &str) -> String {
        match g.reply(path, query, ORIGIN) {
            Reply::Html(html) => html,
            other => panic!("{path}?{query}: {other:?}"),
        }
    }

    pub(super) fn not_found(g: &Gallery, path: &str, query: &str) -> bool {
        g.reply(path, query, ORIGIN) == Reply::NotFound
    }

    /// What the tool itself finds on a page, with the demo's settings for the shape.
    fn scan(g: &Gallery, path: &str, query: &str, detail: bool) -> crate::html::PageScan {
        let sep = if query.is_empty() { "" } else { "?" };
        let url = Url::parse(&format!("{ORIGIN}{path}{sep}{query}")).unwrap();
        let text = html(g, path, query);
        scan_text(g, &text, &url, detail)
    }

    /// What the tool finds in `text` as if it were at `url` (a page as a script left it).
    pub(super) fn scan_text(g: &Gallery, text: &str, url: &Url, detail: bool) -> crate::html::PageScan {
        let rules = crate::html::ExtractRules {
            image_selector: "img, picture source".into(),
            attributes: ["data-src", "srcset", "src"].map(String::from).to_vec(),
            image_host: "127.0.0.1".into(),
            page_count_selector: "li.pag-text".into(),
            linked_images: Default::default(),
            link_selector: String::new(),
            next_selector: None,
            detail: crate::html::DetailRules {
                selector: g.shape.detail_selector().unwrap_or_default().into(),
                ..Default::default()
            },
        };
        let extractor = crate::html::Extractor::new(&rules).unwrap();
        if detail { extractor.scan_detail(text, url) } else { extractor.scan(text, url) }
    }

    #[test]
    fn the_default_shape_is_todays_gallery() {
        let g = Gallery::default();
        assert_eq!((g.shape, g.image_count(), g.expected().pages), (Shape::Counted, 42, 5));
        assert_eq!(Gallery::shaped(Shape::Counted), g);
        let page = scan(&g, "/p2/cats.html", "", false);
        // Its plain "next" link is one by the default rules; the stated count still leads.
        assert_eq!((page.page_count, page.next.is_some()), (Some(5), true));
        assert!(not_found(&g, "/p6/cats.html", "") && not_found(&g, "/p0/cats.html", ""));
        assert!(not_found(&g, "/list/cats", "") && not_found(&g, "/view/cats-1-1.html", ""));
        assert!(matches!(g.reply("/img/cats-1-1.png", "", ORIGIN), Reply::Png(_)));
        assert!(matches!(g.reply("/wiki/File:cats-cover.png", "", ORIGIN), Reply::Html(_)));
        assert!(html(&g, "/", "").contains("/p5/cats.html"));
        assert!(not_found(&g, "/nothing", ""));
    }

    #[test]
    fn missing_pages_past_the_last_are_404_and_no_count_is_stated() {
        let g = Gallery::shaped(Shape::Missing);
        let page = scan(&g, "/p5/cats.html", "", false);
        assert_eq!((page.page_count, page.next.is_none()), (None, true));
        assert_eq!(page.images.len(), 9, "eight of its own and the cover");
        assert!(not_found(&g, "/p6/cats.html", ""));
        assert!(not_found(&g, "/p4000000000/cats.html", ""));
        assert_eq!(g.expected(), Expected { images: 42, pages: 5, detail_pages: 0 });
    }

    #[test]
    fn repeat_last_serves_the_last_page_for_any_larger_number() {
        let g = Gallery::shaped(Shape::RepeatLast);
        let last = html(&g, "/p5/cats.html", "");
        for n in [6, 7, 1000, u32::MAX] {
            assert_eq!(html(&g, &format!("/p{n}/cats.html"), ""), last, "{n}");
        }
        assert!(!last.contains("pag-text"));
        assert!(not_found(&g, "/p0/cats.html", ""));
        assert_ne!(html(&g, "/p4/cats.html", ""), last);
        assert_eq!(g.expected(), Expected { images: 42, pages: 5, detail_pages: 0 });
    }

    #[test]
    fn next_link_pages_are_reached_only_by_their_links() {
        let g = Gallery::shaped(Shape::NextLinks);
        assert_eq!(g.expected(), Expected { images: 42, pages: 5, detail_pages: 0 });
        // Walking the links as the tool does: five pages, every image of each, then none.
        let (mut path, mut query) = ("/list/cats".to_string(), String::new());
        let mut images = std::collections::HashSet::new();
        for n in 1..=5 {
            let page = scan(&g, &path, &query, false);
            assert_eq!(page.page_count, None, "page {n} states no count");
            images.extend(page.images.into_iter().map(|f| f.url));
            match page.next {
                Some(next) => {
                    assert!(n < 5, "page 5 is the last");
                    path = next.path().to_string();
                    query = next.query().unwrap_or_default().to_string();
                }
                None => assert_eq!(n, 5, "page {n} has a next link"),
            }
        }
        assert_eq!(images.len(), 42);
        assert_eq!(query, "after=cats-4-8");
        // Template URLs and made-up cursors are not pages.
        for (path, query) in [
            ("/p1/cats.html", ""),
            ("/p2/cats.html", ""),
            ("/list/cats", "after=cats-5-8"),
            ("/list/cats", "after=cats-1-3"),
            ("/list/cats", "after=dogs-1-8"),
            ("/list/cats", "after=x"),
            ("/list/cats", "page=2"),
            ("/list/", ""),
        ] {
            assert!(not_found(&g, path, query), "{path}?{query}");
        }
        assert!(html(&g, "/", "").contains(r#"href="/list/cats""#));
    }

    #[test]
    fn details_lead_from_thumbnails_to_a_page_per_image_with_its_original() {
        let g = Gallery::shaped(Shape::Details);
        assert_eq!(g.expected(), Expected { images: 41, pages: 5, detail_pages: 40 });
        let listing = scan(&g, "/p1/cats.html", "", false);
        assert_eq!(listing.page_count, Some(5));
        assert_eq!(listing.details.len(), 8);
        assert_eq!(listing.details[2].path(), "/view/cats-1-3.html");
        // The thumbnails are replaced by their pages; the logo is an image of its own.
        assert_eq!(listing.urls().map(Url::path).collect::<Vec<_>>(), ["/img/cats-logo.png"]);
        for k in 1..=8 {
            let detail = scan(&g, &format!("/view/cats-2-{k}.html"), "", true);
            let got: Vec<&str> = detail.urls().map(Url::path).collect();
            assert_eq!(
                got,
                [format!("/img/cats-2-{k}.png")],
                "{k}: the original, not the logo or thumbnails"
            );
            assert!(detail.next.is_none() && detail.details.is_empty());
        }
        for bad in ["/view/cats-6-1.html", "/view/cats-1-9.html", "/view/cats-logo.html", "/view/x.html"] {
            assert!(not_found(&g, bad, ""), "{bad}");
        }
        // The smaller images are real, and smaller.
        for picture in [Picture::Logo, Picture::Avatar] {
            let Reply::Png(bytes) = g.reply(&format!("/img/cats-{picture:?}.png").to_lowercase(), "", ORIGIN)
            else {
                panic!("{picture:?}")
            };
            assert_eq!(png(picture), bytes);
            let info = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
            assert_eq!((info.info().width, info.info().height), size(picture));
        }
    }

    #[test]
    fn the_server_answers_each_shape_on_its_routes() {
        let server = DemoServer::start(Gallery::shaped(Shape::NextLinks)).unwrap();
        // No proxy: ureq's default config would send these through one from the environment.
        let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
        let get = |path: &str| {
            let mut response =
                agent.get(&format!("{}{path}", server.url().as_str().trim_end_matches('/'))).call().unwrap();
            response.body_mut().read_to_string().unwrap()
        };
        let first = get("/list/cats");
        assert!(first.contains(r#"<link rel="next" href="/list/cats?after=cats-1-8">"#), "{first}");
        assert!(get("/list/cats?after=cats-4-8").contains("cats, page 5"));
        let status = |path: &str| match agent.get(&format!("{}{path}", server.url())).call() {
            Ok(r) => r.status().as_u16(),
            Err(ureq::Error::StatusCode(code)) => code,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(status("p1/cats.html"), 404);
        assert_eq!(status("img/cats-1-1.png"), 200);
        // Percent-encoded paths are decoded, as the routes were before.
        assert_eq!(status("wiki/File%3Acats-cover.png"), 200);
    }
}
