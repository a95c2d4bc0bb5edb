//! Shared by every integration test: a local HTTP server with fixed routes, a runner for
//! the real binary, and readers for what a run leaves on disk.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// What a route answers.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn html(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    pub fn image(body: &[u8]) -> Self {
        Self {
            status: 200,
            content_type: "image/jpeg",
            body: body.to_vec(),
        }
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: format!("status {status}").into_bytes(),
        }
    }
}

/// A server on 127.0.0.1:0 answering fixed routes (404 for the rest), counting requests
/// per path. Stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    handle: ServerHandle,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(routes: Vec<(&str, Reply)>) -> Self {
        let routes: Arc<HashMap<String, Reply>> =
            Arc::new(routes.into_iter().map(|(p, r)| (p.to_string(), r)).collect());
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let server_hits = Arc::clone(&hits);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let routes = Arc::clone(&routes);
                    let hits = Arc::clone(&server_hits);
                    App::new().default_service(web::to(move |req: HttpRequest| {
                        let routes = Arc::clone(&routes);
                        let hits = Arc::clone(&hits);
                        async move { answer(&routes, &hits, &req) }
                    }))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .bind(("127.0.0.1", 0))
                .expect("bind 127.0.0.1:0");
                let addr = server.addrs()[0];
                let running = server.run();
                tx.send((addr, running.handle())).unwrap();
                let _ = running.await;
            });
        });
        let (addr, handle) = rx.recv().expect("test server started");
        Self {
            addr,
            handle,
            hits,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn answer(
    routes: &HashMap<String, Reply>,
    hits: &Mutex<HashMap<String, usize>>,
    req: &HttpRequest,
) -> HttpResponse {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    match routes.get(&path) {
        Some(reply) => HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).unwrap())
            .content_type(reply.content_type)
            .body(reply.body.clone()),
        None => HttpResponse::NotFound().body("no route"),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A finished run of the real binary.
pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub stdout: String,
}

impl Run {
    pub fn assert_line(&self, needle: &str) {
        assert!(
            self.stderr.contains(needle),
            "expected {needle:?} in:\n{}",
            self.stderr
        );
    }
}

/// Runs `image-scraper` with `args` in `cwd`.
pub fn run_binary(cwd: &Path, args: &[&str]) -> Run {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_image-scraper"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run image-scraper");
    Run {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// A settings file for a local gallery: page path as the demo's, host filter on 127.0.0.1.
pub fn write_settings(dir: &Path, origin: &str, extra: &str) -> PathBuf {
    let path = dir.join("settings.yaml");
    let text = format!(
        "SCRAPER:\n  URL: {origin}/\n  ITEM: cats\n  OUT_DIR: images\n  AMOUNT_PAGES: 10\n  IMAGE_HOST: 127.0.0.1\n{extra}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Every entry under `dir`, recursively, relative path -> contents (folders as empty).
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            out.insert(format!("{rel}/"), Vec::new());
            walk(root, &path, out);
        } else {
            out.insert(rel, std::fs::read(&path).unwrap());
        }
    }
}

/// The JSON report at `path`.
pub fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report is JSON")
}
