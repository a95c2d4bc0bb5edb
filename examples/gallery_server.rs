//! gallery_server: serve a folder over HTTP/1.1 on 127.0.0.1, waiting a fixed time before
//! every response. The latency workload (W2) of `bench/run.sh`; a cargo example, so it is
//! built with `cargo build --release --example gallery_server` and never installed with the
//! tool.
//!
//! ```text
//! gallery_server --root DIR [--port 18080] [--delay-ms 0] [--workers 1]
//! ```
//!
//! Every regular file under DIR is read into memory at start (the W1 gallery is ~200 MB), so
//! a request costs a hash lookup and a socket write: the server must not be what the
//! benchmark measures. The wait is a timer (no thread is blocked) awaited once per request
//! before the status line, so C keep-alive connections get at most C / delay requests per
//! second; timers have 1 ms resolution and round up, so the real wait is about MS + 1 ms.
//! A new connection costs no extra wait (a real network would add a round trip).
//!
//! URL paths map to files as with nginx's `merge_slashes` (`//p1//cats.html` is
//! `/p1/cats.html`), without percent-decoding; `/` and `/dir/` map to their `index.html`.
//! GET and HEAD only. `GET /__stats` (not delayed) answers `connections N requests M`.
//! Connections are kept alive for 75 s. SIGINT/SIGTERM stop it within a second.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use std::{fs, io};

use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};

const USAGE: &str = "usage: gallery_server --root DIR [--port 18080] [--delay-ms 0] [--workers 1]";

static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);

struct Args {
    root: String,
    port: u16,
    delay_ms: u64,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { root: String::new(), port: 18080, delay_ms: 0, workers: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--root" => args.root = value,
            "--port" => args.port = value.parse().map_err(bad)?,
            "--delay-ms" => args.delay_ms = value.parse().map_err(bad)?,
            "--workers" => args.workers = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if args.root.is_empty() {
        return Err("--root is required".into());
    }
    if args.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    Ok(args)
}

#[derive(Clone)]
struct File {
    body: Bytes,
    mime: &'static str,
}

struct Site {
    files: HashMap<String, File>,
    delay: Duration,
}

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "json" => "application/json",
        "txt" | "tsv" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Reads every regular file under `dir` into `files`, keyed by its URL path (`/p1/cats.html`).
fn load(root: &Path, dir: &Path, files: &mut HashMap<String, File>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            load(root, &path, files)?;
        } else if kind.is_file() {
            let relative = path.strip_prefix(root).map_err(io::Error::other)?;
            let key = format!("/{}", relative.to_string_lossy());
            let file = File { body: Bytes::from(fs::read(&path)?), mime: mime(&path) };
            if let Some(folder) = key.strip_suffix("index.html") {
                files.insert(folder.to_string(), file.clone()); // Bytes: a clone shares the data
            }
            files.insert(key, file);
        }
    }
    Ok(())
}

/// `//p1//cats.html` -> `/p1/cats.html`, as nginx's default `merge_slashes`.
fn merge_slashes(path: &str) -> Cow<'_, str> {
    if !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c != '/' || !out.ends_with('/') {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

async fn respond(req: HttpRequest, site: web::Data<Site>) -> HttpResponse {
    let path = req.path();
    if path == "/__stats" {
        let (c, r) = (CONNECTIONS.load(Relaxed), REQUESTS.load(Relaxed));
        return HttpResponse::Ok().content_type("text/plain").body(format!("connections {c} requests {r}\n"));
    }
    REQUESTS.fetch_add(1, Relaxed);
    if !site.delay.is_zero() {
        actix_rt::time::sleep(site.delay).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return HttpResponse::build(StatusCode::METHOD_NOT_ALLOWED).body("405\n");
    }
    match site.files.get(merge_slashes(path).as_ref()) {
        // A body of known size: actix sets Content-Length (and sends no body to HEAD).
        Some(file) => HttpResponse::Ok().content_type(file.mime).body(file.body.clone()),
        None => HttpResponse::NotFound().content_type("text/plain").body("404 not found\n"),
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("gallery_server: {e}\n{USAGE}");
        std::process::exit(2)
    });
    let fail = |what: &str, e: io::Error| -> ! {
        eprintln!("gallery_server: {what}: {e}");
        std::process::exit(1)
    };
    let root = fs::canonicalize(&args.root).unwrap_or_else(|e| fail(&args.root, e));
    let mut files = HashMap::new();
    load(&root, &root, &mut files).unwrap_or_else(|e| fail("loading the files", e));
    let bytes: usize = files.values().map(|f| f.body.len()).sum();
    let site = web::Data::new(Site { files, delay: Duration::from_millis(args.delay_ms) });

    let server = HttpServer::new(move || App::new().app_data(site.clone()).default_service(web::to(respond)))
        .workers(args.workers)
        .backlog(4096)
        .max_connections(100_000)
        .keep_alive(Duration::from_secs(75))
        .shutdown_timeout(1)
        .on_connect(|_, _| {
            CONNECTIONS.fetch_add(1, Relaxed);
        })
        .bind(("127.0.0.1", args.port))
        .unwrap_or_else(|e| fail(&format!("127.0.0.1:{}", args.port), e));
    eprintln!(
        "gallery_server: {} MB in memory from {}; http://127.0.0.1:{}/ delay {} ms, {} worker(s)",
        bytes / 1_000_000,
        root.display(),
        args.port,
        args.delay_ms,
        args.workers
    );
    if let Err(e) = actix_rt::System::new().block_on(server.run()) {
        fail("serving", e);
    }
}
