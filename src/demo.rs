//! The built-in demo gallery: an actix-web server on 127.0.0.1 serving listing pages at
//! `/p{N}/{item}.html` and real PNG images, so the tool can be tried (and tested) with no
//! internet.
//!
//! Every page exercises the extraction rules: thumbnails linked to their full-size
//! originals (`<a href="/img/x.png"><img src="/thumb/x.png"></a>`: the original is what
//! is downloaded), root-relative, page-relative and absolute image URLs, a lazy-loaded one
//! (`data-src`) with its `<noscript>` twin, a `<picture>` whose sources offer two sizes
//! and formats, a duplicate on the page, an image shared by all pages behind a MediaWiki-
//! style link to an HTML description page (so its thumbnail is the fallback), a
//! foreign-host image the host filter must drop, a `data:` URI, and on page 1 a second
//! image with the same file name as another (served from another folder).

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use url::Url;

/// A 1x1 transparent GIF, as lazy-loading pages put in `src`.
const PLACEHOLDER: &str = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";

/// Shape of the demo gallery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gallery {
    /// Pages the site has, and states in `li.pag-text`.
    pub pages: u32,
    /// Distinct images of each page's own (besides the shared one and page 1's clash).
    pub per_page: u32,
}

impl Default for Gallery {
    fn default() -> Self {
        Self { pages: 5, per_page: 8 }
    }
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
}

impl Gallery {
    /// Distinct images a scraper with the demo settings should save.
    pub fn image_count(&self) -> u32 {
        self.pages * self.per_page + 2
    }

    /// The listing page `n` for `item`, with absolute URLs on `origin`
    /// (`http://127.0.0.1:PORT`); `None` past the last page.
    pub fn page_html(&self, n: u32, item: &str, origin: &str) -> Option<String> {
        if n == 0 || n > self.pages {
            return None;
        }
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
        let gallery: String = imgs.iter().map(|i| format!("  <div class=\"thumb\">{i}</div>\n")).collect();
        let prev =
            if n > 1 { format!(r#"<a href="/p{}/{item}.html">prev</a>"#, n - 1) } else { String::new() };
        let next = if n < self.pages {
            format!(r#"<a href="/p{}/{item}.html">next</a>"#, n + 1)
        } else {
            String::new()
        };
        Some(format!(
            r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{item}, page {n}</title></head>
<body>
<header><img src="http://ads.example.invalid/banner.png" alt="an ad on another host">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="spacer"></header>
<div class="gallery">
{gallery}</div>
<ul class="pagination"><li>{prev}</li><li class="pag-text">Page {n} of {pages}</li><li>{next}</li></ul>
</body></html>
"#,
            pages = self.pages
        ))
    }

    /// Which picture `/img/{path}` is, for any item; `None` if there is no such image.
    pub fn picture(&self, path: &str) -> Option<Picture> {
        let (alt, file) = match path.strip_prefix("alt/") {
            Some(file) => (true, file),
            None => (false, path),
        };
        let stem = file.strip_suffix(".png")?;
        if !alt && stem.ends_with("-cover") {
            return Some(Picture::Cover);
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

/// The PNG bytes of a picture: a gradient with a few discs and some grain, different for
/// every picture, the same on every run.
pub fn png(picture: Picture) -> Vec<u8> {
    render(picture, 160, 120)
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
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("demo-gallery".into()).spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(gallery))
                        .route("/", web::get().to(index))
                        .route("/p{n}/{file}", web::get().to(page))
                        .route("/img/{path:.*}", web::get().to(image))
                        .route("/thumb/{path:.*}", web::get().to(thumb))
                        .route("/wiki/{name}", web::get().to(wiki))
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

async fn index(gallery: web::Data<Gallery>) -> HttpResponse {
    let links: String =
        (1..=gallery.pages).map(|n| format!(r#"<li><a href="/p{n}/cats.html">page {n}</a></li>"#)).collect();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!("<!DOCTYPE html><title>demo gallery</title><ul>{links}</ul>"))
}

async fn page(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    gallery: web::Data<Gallery>,
) -> HttpResponse {
    let (n, file) = path.into_inner();
    let origin = format!("http://{}", req.connection_info().host());
    let html = n
        .parse()
        .ok()
        .zip(file.strip_suffix(".html"))
        .and_then(|(n, item)| gallery.page_html(n, item, &origin));
    match html {
        Some(html) => HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html),
        None => HttpResponse::NotFound().body("no such page"),
    }
}

async fn image(path: web::Path<String>, gallery: web::Data<Gallery>) -> HttpResponse {
    match gallery.picture(&path) {
        Some(picture) => HttpResponse::Ok().content_type("image/png").body(png(picture)),
        None => HttpResponse::NotFound().body("no such image"),
    }
}

async fn thumb(path: web::Path<String>, gallery: web::Data<Gallery>) -> HttpResponse {
    match gallery.picture(&path) {
        Some(picture) => HttpResponse::Ok().content_type("image/png").body(thumbnail(picture)),
        None => HttpResponse::NotFound().body("no such image"),
    }
}

/// A description page for an image, as MediaWiki serves at `/wiki/File:Name.png`.
async fn wiki(name: web::Path<String>) -> HttpResponse {
    let file = name.strip_prefix("File:").unwrap_or(&name);
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
        r#"<!DOCTYPE html><title>File:{file}</title><h1>File:{file}</h1><a href="/img/{file}"><img src="/img/{file}"></a>"#
    ))
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
    }
}
