//! Shared by every integration test: a local HTTP server with fixed routes, a runner for
//! the real binary, and readers for what a run leaves on disk.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::{ServerHandle, Service};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
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
        Self { status: 200, content_type: "text/html; charset=utf-8", body: body.into().into_bytes() }
    }

    pub fn image(body: &[u8]) -> Self {
        Self { status: 200, content_type: "image/jpeg", body: body.to_vec() }
    }

    pub fn status(status: u16) -> Self {
        Self { status, content_type: "text/plain", body: format!("status {status}").into_bytes() }
    }
}

/// A server on 127.0.0.1:0 counting requests per path (with query), and letting a test
/// wait until some have arrived. Stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    handle: ServerHandle,
    hits: Arc<Hits>,
    thread: Option<JoinHandle<()>>,
}

/// Every request, by path: when it arrived and its headers.
#[derive(Default)]
pub struct Hits {
    counts: Mutex<HashMap<String, Vec<(Instant, HeaderMap)>>>,
    arrived: Condvar,
}

impl Hits {
    fn add(&self, path: String, headers: HeaderMap) {
        self.counts.lock().unwrap().entry(path).or_default().push((Instant::now(), headers));
        self.arrived.notify_all();
    }
}

impl TestServer {
    /// Fixed routes; 404 for the rest.
    pub fn start(routes: Vec<(&str, Reply)>) -> Self {
        let routes: Arc<HashMap<String, Reply>> =
            Arc::new(routes.into_iter().map(|(p, r)| (p.to_string(), r)).collect());
        Self::start_with(move |cfg| {
            let routes = Arc::clone(&routes);
            cfg.default_service(web::to(move |req: HttpRequest| {
                let reply = routes.get(&path_of(&req)).cloned();
                async move {
                    match reply {
                        Some(reply) => HttpResponse::build(StatusCode::from_u16(reply.status).unwrap())
                            .content_type(reply.content_type)
                            .body(reply.body),
                        None => HttpResponse::NotFound().body("no route"),
                    }
                }
            }));
        })
    }

    /// Routes set up by `configure` (called once per server worker).
    pub fn start_with(configure: impl Fn(&mut web::ServiceConfig) + Send + Sync + Clone + 'static) -> Self {
        let hits = Arc::new(Hits::default());
        let server_hits = Arc::clone(&hits);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let hits = Arc::clone(&server_hits);
                    App::new()
                        .wrap_fn(move |req, srv| {
                            hits.add(path_of(req.request()), req.headers().clone());
                            srv.call(req)
                        })
                        .configure(configure.clone())
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
        Self { addr, handle, hits, thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.counts.lock().unwrap().get(path).map_or(0, Vec::len)
    }

    /// Requests for each path (with query) starting with `prefix`: what was asked for
    /// under a folder, and how often, without knowing the paths beforehand.
    pub fn hits_under(&self, prefix: &str) -> BTreeMap<String, usize> {
        let counts = self.hits.counts.lock().unwrap();
        counts.iter().filter(|(p, _)| p.starts_with(prefix)).map(|(p, t)| (p.clone(), t.len())).collect()
    }

    /// When each request for `path` arrived.
    pub fn hit_times(&self, path: &str) -> Vec<Instant> {
        self.requests(path).into_iter().map(|(t, _)| t).collect()
    }

    /// Each request for `path`: when it arrived and its headers.
    pub fn requests(&self, path: &str) -> Vec<(Instant, HeaderMap)> {
        self.hits.counts.lock().unwrap().get(path).cloned().unwrap_or_default()
    }

    /// When every request arrived, in order, whatever its path.
    pub fn all_times(&self) -> Vec<Instant> {
        let counts = self.hits.counts.lock().unwrap();
        let mut times: Vec<Instant> = counts.values().flatten().map(|(t, _)| *t).collect();
        times.sort();
        times
    }

    /// Blocks until requests for paths starting with `prefix` number at least `n`
    /// (panics after a minute: a guard against a hang, not a wait).
    pub fn wait_for_hits(&self, prefix: &str, n: usize) {
        self.hits.wait_for(prefix, n);
    }
}

impl Hits {
    fn wait_for(&self, prefix: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut counts = self.counts.lock().unwrap();
        loop {
            let seen: usize =
                counts.iter().filter(|(p, _)| p.starts_with(prefix)).map(|(_, t)| t.len()).sum();
            if seen >= n {
                return;
            }
            let left = deadline.checked_duration_since(Instant::now()).expect("requests never arrived");
            counts = self.arrived.wait_timeout(counts, left).unwrap().0;
        }
    }
}

fn path_of(req: &HttpRequest) -> String {
    req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves `html` at `path` (GET).
pub fn serve_page(cfg: &mut web::ServiceConfig, path: &str, html: String) {
    cfg.route(
        path,
        web::get().to(move || {
            let html = html.clone();
            async move { HttpResponse::Ok().content_type("text/html").body(html) }
        }),
    );
}

/// A listing page with these image `src`s that says it is one of `pages`.
pub fn gallery_html(srcs: &[String], pages: u32) -> String {
    let tags: String = srcs.iter().map(|src| format!("<img src=\"{src}\">\n")).collect();
    format!("<html><body>{tags}<li class=\"pag-text\">Page 1 of {pages}</li></body></html>")
}

/// `/img/0.jpg` .. `/img/{n-1}.jpg`
pub fn image_paths(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("/img/{i}.jpg")).collect()
}

/// A JPEG-framed body of `len` bytes (SOI ... EOI), different for every `seed`. The
/// filler never contains an EOI marker, so a prefix of it looks cut.
pub fn jpeg(seed: u8, len: usize) -> Vec<u8> {
    let mut body: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    body[..4].copy_from_slice(b"\xFF\xD8\xFF\xE0");
    body[len - 2..].copy_from_slice(b"\xFF\xD9");
    body
}

/// A finished run of the real binary.
pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub stdout: String,
}

impl Run {
    pub fn assert_line(&self, needle: &str) {
        assert!(self.stderr.contains(needle), "expected {needle:?} in:\n{}", self.stderr);
    }
}

/// Clears every proxy variable the binary (or ureq, for S3) would read: the machine's
/// proxy must neither see a test's requests nor break them. A test that wants a proxy
/// sets one after this.
pub fn without_proxy(command: &mut Command) -> &mut Command {
    for var in image_scraper::net::proxy::ENV_VARS {
        command.env_remove(var);
    }
    command.env_remove("IMAGE_SCRAPER_PROXY").env_remove("IMAGE_SCRAPER_NO_PROXY")
}

/// Starts `image-scraper` with `args` in `cwd`, its stderr piped for the test to read
/// (`exit_within`): a process of a shared job, run beside others.
pub fn spawn_binary(cwd: &Path, args: &[&str]) -> Child {
    without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start image-scraper")
}

/// Runs `image-scraper` with `args` in `cwd`.
pub fn run_binary(cwd: &Path, args: &[&str]) -> Run {
    run_binary_with_env(cwd, args, &[])
}

/// [`run_binary`] with these environment variables set on top of this process's.
pub fn run_binary_with_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output: Output = without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .expect("run image-scraper");
    Run {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// Runs `command` in `cwd` with `env` (after clearing the proxy variables), failing the
/// test if it has not ended within a minute: a hang is the defect, not a slow run.
pub fn run_command(command: &mut Command, cwd: &Path, env: &[(&str, &str)]) -> Run {
    let mut child = without_proxy(command)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run image-scraper");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let reader = std::thread::spawn(move || {
            let _ = err.read_to_string(&mut stderr);
            stderr
        });
        let _ = out.read_to_string(&mut stdout);
        let _ = tx.send((stdout, reader.join().unwrap()));
    });
    let Ok((stdout, stderr)) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!("image-scraper hung");
    };
    let code = child.wait().unwrap().code().unwrap_or(-1);
    Run { code, stdout, stderr }
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

/// The images in an out dir: every entry but the tool's own hidden folder, after
/// checking that folder holds no download in progress.
pub fn images(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let tmp = out.join(".image-scraper/tmp");
    let partials: Vec<_> = std::fs::read_dir(&tmp).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(partials.is_empty(), "downloads left in progress: {partials:?}");
    let mut all = tree(out);
    all.retain(|name, _| !name.starts_with(".image-scraper/"));
    all
}

/// The JSON report at `path`.
pub fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report is JSON")
}

/// Trust for clients that speak plain HTTP to the test servers: the bundled roots, not
/// the machine's, so no test depends on what this machine trusts.
pub fn plain_trust() -> image_scraper::net::tls::Trust {
    image_scraper::net::tls::Trust::new(Default::default(), &[], false).expect("no CA file to read")
}

/// Waits for the child to exit, failing the test if it takes longer than `limit` (a
/// hang guard, not a timing): its exit code and stderr. Waited for on a thread of its
/// own, which says when it is over, rather than polled.
pub fn exit_within(child: Child, limit: Duration) -> (i32, String) {
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            let out = rx.recv().unwrap().unwrap();
            panic!("image-scraper still running after {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
    };
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}
