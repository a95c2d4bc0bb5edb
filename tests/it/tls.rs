//! HTTPS end to end: a gallery on a local TLS server whose CA is made here (rcgen), the
//! real binary in both modes. Which servers are trusted (`--ca-cert`, `SSL_CERT_FILE`,
//! neither), what a refused certificate looks like, and which HTTP version each mode
//! speaks, as the server saw it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use actix_web::dev::{ServerHandle, Service};
use actix_web::http::Version;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::helpers::{Run, gallery_html, images, jpeg, read_report, run_binary_with_env, write_settings};

pub(crate) const IMAGES: usize = 24;
/// How long the server holds each image: long enough for the requests the run allows
/// at once to overlap, so the server can count them.
const HOLD: Duration = Duration::from_millis(25);

/// A CA made for one test, and what it signs.
pub(crate) struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Self { pem, issuer: Issuer::new(params, key) }
    }

    /// A server certificate for `names` (a name that parses as an IP address is one),
    /// valid from a year ago until `not_after`.
    pub(crate) fn leaf(&self, names: &[&str], not_after: SystemTime) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.not_before = (SystemTime::now() - DAY * 365).into();
        params.not_after = not_after.into();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert: cert.der().clone(), key: PrivatePkcs8KeyDer::from(key.serialize_der()).into() }
    }

    pub(crate) fn write(&self, dir: &Path, name: &str) -> String {
        std::fs::write(dir.join(name), &self.pem).unwrap();
        dir.join(name).to_str().unwrap().to_string()
    }
}

pub(crate) struct Leaf {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

const DAY: Duration = Duration::from_secs(86_400);

pub(crate) fn in_a_year() -> SystemTime {
    SystemTime::now() + DAY * 365
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    /// Each request's path and HTTP version, in arrival order.
    requests: Mutex<Vec<(String, Version)>>,
    /// Connections whose TLS handshake succeeded.
    connections: AtomicUsize,
    /// Image requests being answered now, and the most there ever were.
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// A one-page gallery of [`IMAGES`] JPEGs over HTTPS (HTTP/2 and HTTP/1.1 offered by
/// ALPN) on 127.0.0.1:0. Stops when dropped.
pub(crate) struct HttpsGallery {
    port: u16,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    seen: Arc<Seen>,
}

fn body(i: usize) -> Vec<u8> {
    jpeg(i as u8, 3000 + i * 101)
}

impl HttpsGallery {
    pub(crate) fn start(leaf: Leaf) -> Self {
        let tls =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf.cert], leaf.key)
                .unwrap();
        let seen = Arc::new(Seen::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let server_seen = Arc::clone(&seen);
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let connected = Arc::clone(&server_seen);
                let server = HttpServer::new(move || {
                    let (seen, images) = (Arc::clone(&server_seen), Arc::clone(&server_seen));
                    let srcs: Vec<String> = (0..IMAGES).map(|i| format!("/img/{i}.jpg")).collect();
                    let page = gallery_html(&srcs, 1);
                    App::new()
                        .wrap_fn(move |req, srv| {
                            let path = req.path().to_string();
                            seen.requests.lock().unwrap().push((path, req.version()));
                            srv.call(req)
                        })
                        .route(
                            "/p1/cats.html",
                            web::get().to(move || {
                                let page = page.clone();
                                async move { HttpResponse::Ok().content_type("text/html").body(page) }
                            }),
                        )
                        .route(
                            "/img/{name}",
                            web::get().to(move |req: HttpRequest| {
                                let seen = Arc::clone(&images);
                                async move {
                                    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                                    seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
                                    actix_rt::time::sleep(HOLD).await;
                                    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                                    let name = req.match_info().get("name").unwrap_or_default();
                                    match name.strip_suffix(".jpg").and_then(|n| n.parse::<usize>().ok()) {
                                        Some(i) if i < IMAGES => {
                                            HttpResponse::Ok().content_type("image/jpeg").body(body(i))
                                        }
                                        _ => HttpResponse::NotFound().finish(),
                                    }
                                }
                            }),
                        )
                })
                .on_connect(move |_, _| {
                    connected.connections.fetch_add(1, Ordering::SeqCst);
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .bind_rustls_0_23(("127.0.0.1", 0), tls)
                .expect("bind 127.0.0.1:0");
                let port = server.addrs()[0].port();
                let running = server.run();
                tx.send((port, running.handle())).unwrap();
                let _ = running.await;
            });
        });
        let (port, handle) = rx.recv().expect("HTTPS server started");
        Self { port, handle, thread: Some(thread), seen }
    }

    pub(crate) fn origin(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn versions(&self) -> Vec<Version> {
        self.seen.requests.lock().unwrap().iter().map(|(_, v)| *v).collect()
    }

    pub(crate) fn requests(&self) -> usize {
        self.seen.requests.lock().unwrap().len()
    }

    fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }

    fn most_in_flight(&self) -> usize {
        self.seen.most_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for HttpsGallery {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) fn expected_files() -> BTreeMap<String, Vec<u8>> {
    (0..IMAGES).map(|i| (format!("{i}.jpg"), body(i))).collect()
}

/// Scrapes `server` from a fresh folder with `args` (after the mode's) and `env`.
fn scrape(server: &HttpsGallery, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    write_settings(dir, &server.origin(), "  PER_HOST_CONCURRENCY: 3\n");
    let mut all = vec!["--report", "report.json", "--no-progress"];
    all.extend_from_slice(args);
    run_binary_with_env(dir, &all, env)
}

fn assert_complete(run: &Run, dir: &Path) {
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line(&format!("Done, success: {IMAGES}/{IMAGES}, failure: 0/{IMAGES}"));
    assert!(images(&dir.join("images")) == expected_files(), "every image, byte for byte");
}

#[test]
fn async_mode_trusts_a_ca_cert_and_multiplexes_on_one_http2_connection() {
    let ca = Ca::new("image-scraper test CA");
    let server = HttpsGallery::start(ca.leaf(&["127.0.0.1", "localhost"], in_a_year()));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let run = scrape(&server, dir.path(), &["-m", "async", "-p", "1", "--ca-cert", &ca_file], &[]);
    assert_complete(&run, dir.path());

    let versions = server.versions();
    assert!(versions.iter().all(|v| *v == Version::HTTP_2), "ALPN chose h2 for every request: {versions:?}");
    // robots.txt, the page and every image, on one connection: the worker's one client
    // multiplexed its requests as streams.
    assert_eq!(server.requests(), IMAGES + 2);
    assert_eq!(server.connections(), 1, "one HTTP/2 connection for the host");
    let most = server.most_in_flight();
    assert!(most <= 3, "PER_HOST_CONCURRENCY bounds streams in flight too: {most}");
    assert!(most >= 2, "streams overlapped on the one connection: {most}");
}

#[test]
fn sync_mode_trusts_a_ca_cert_and_speaks_http1_with_keep_alive() {
    let ca = Ca::new("image-scraper test CA");
    let server = HttpsGallery::start(ca.leaf(&["127.0.0.1"], in_a_year()));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let run = scrape(&server, dir.path(), &["-m", "sync", "-p", "2", "--ca-cert", &ca_file], &[]);
    assert_complete(&run, dir.path());

    let versions = server.versions();
    assert!(versions.iter().all(|v| *v == Version::HTTP_11), "ureq speaks HTTP/1.1: {versions:?}");
    assert!(server.most_in_flight() <= 2, "one request per worker");
    let connections = server.connections();
    // Two workers, one request each at a time: a connection each, kept alive for all
    // 26 requests (one spare, for a connection a server-side close may cost).
    assert!(connections <= 3, "kept alive: {connections} connections for {} requests", server.requests());
}

#[test]
fn ssl_cert_file_is_trusted_as_the_machines_roots_in_both_modes() {
    let ca = Ca::new("image-scraper test CA");
    let server = HttpsGallery::start(ca.leaf(&["127.0.0.1"], in_a_year()));
    for mode in ["async", "sync"] {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = ca.write(dir.path(), "ca.pem");
        let run = scrape(&server, dir.path(), &["-m", mode, "-p", "2"], &[("SSL_CERT_FILE", &ca_file)]);
        assert_complete(&run, dir.path());
    }
}

/// Runs a `--urls` list of three images of `server` with `env`, expecting every one
/// refused because `why`: each image counted failed after one attempt (no retry), the
/// host and `why` on one line in its report item and its log line, exit 1. With
/// `robots`, the refusal is robots.txt's, and the images carry it.
fn assert_refused(
    server: &HttpsGallery,
    mode: &str,
    args: &[&str],
    env: &[(&str, &str)],
    robots: bool,
    why: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let list: String = (0..3).map(|i| format!("{}/img/{i}.jpg\n", server.origin())).collect();
    std::fs::write(dir.path().join("urls.txt"), list).unwrap();
    // -v: a retry is logged ("retrying"), so one that happened shows whatever the clock.
    let mut all =
        vec!["-m", mode, "-p", "2", "-v", "--urls", "urls.txt", "--report", "report.json", "--no-progress"];
    all.extend_from_slice(args);
    if !robots {
        all.push("--ignore-robots");
    }
    std::fs::write(dir.path().join("settings.yaml"), "SCRAPER:\n  RETRIES: 3\n  RETRY_BACKOFF_MS: 10\n")
        .unwrap();
    let run = run_binary_with_env(dir.path(), &all, env);
    assert!(!run.stderr.contains("retrying"), "a certificate error is not retried:\n{}", run.stderr);
    assert_eq!(run.code, 1, "{}", run.stderr);
    run.assert_line("Done, success: 0/3, failure: 3/3");
    assert!(images(&dir.path().join("images")).is_empty());

    let said = "TLS with 127.0.0.1 failed: ";
    let report = read_report(&dir.path().join("report.json"));
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for item in items {
        assert_eq!(item["status"], "failed");
        let error = item["error"].as_str().unwrap();
        assert!(error.contains(said) && error.contains(why) && !error.contains('\n'), "{error}");
        match robots {
            true => assert!(error.starts_with("robots.txt unreachable (TLS with"), "{error}"),
            false => assert_eq!(item["attempts"], 1, "tried once, not retried: {item}"),
        }
    }
    let lines = run.stderr.lines().filter(|l| l.contains(said) && l.contains(why)).count();
    assert_eq!(lines, 3 + usize::from(robots), "a line per image (and robots.txt's):\n{}", run.stderr);
}

#[test]
fn an_untrusted_certificate_fails_each_image_with_the_host_and_the_reason_in_both_modes() {
    let ca = Ca::new("image-scraper test CA");
    let server = HttpsGallery::start(ca.leaf(&["127.0.0.1"], in_a_year()));
    // The machine's roots are another CA's: hermetic, whatever this machine trusts.
    let dir = tempfile::tempdir().unwrap();
    let other = Ca::new("someone else").write(dir.path(), "other.pem");
    for mode in ["async", "sync"] {
        for robots in [false, true] {
            assert_refused(&server, mode, &[], &[("SSL_CERT_FILE", &other)], robots, "unknown CA");
        }
    }
    assert_eq!(server.requests(), 0, "no request is sent over a refused connection");
}

#[test]
fn a_certificate_for_another_name_or_expired_is_refused_saying_so() {
    let ca = Ca::new("image-scraper test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let elsewhere = HttpsGallery::start(ca.leaf(&["gallery.test"], in_a_year()));
    let yesterday = SystemTime::now() - DAY;
    let expired = HttpsGallery::start(ca.leaf(&["127.0.0.1"], yesterday));
    for mode in ["async", "sync"] {
        assert_refused(
            &elsewhere,
            mode,
            &["--ca-cert", &ca_file],
            &[],
            false,
            "not valid for name \"127.0.0.1\"",
        );
        assert_refused(&expired, mode, &["--ca-cert", &ca_file], &[], false, "certificate expired 1 day ago");
    }
}

#[test]
fn insecure_downloads_from_an_untrusted_server_and_says_so_loudly() {
    let ca = Ca::new("image-scraper test CA");
    let server = HttpsGallery::start(ca.leaf(&["127.0.0.1"], in_a_year()));
    let dir = tempfile::tempdir().unwrap();
    let other = Ca::new("someone else").write(dir.path(), "other.pem");
    for mode in ["async", "sync"] {
        let dir = tempfile::tempdir().unwrap();
        let run = scrape(&server, dir.path(), &["-m", mode, "--insecure"], &[("SSL_CERT_FILE", &other)]);
        assert_complete(&run, dir.path());
        run.assert_line("NO SERVER CERTIFICATE IS CHECKED");
        assert_eq!(read_report(&dir.path().join("report.json"))["insecure"], true);
    }
}

#[test]
fn a_bad_ca_cert_is_a_one_line_settings_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.pem"), KeyPair::generate().unwrap().serialize_pem()).unwrap();
    for (file, says) in [("missing.pem", "cannot read"), ("key.pem", "holds no certificate")] {
        let run = run_binary_with_env(dir.path(), &["--url", "https://127.0.0.1:9/", "--ca-cert", file], &[]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.starts_with(&format!("error: --ca-cert: {file}: {says}")), "{}", run.stderr);
    }
    assert!(!dir.path().join("images").exists(), "nothing created");
}

#[test]
fn a_burst_of_requests_shares_one_http2_connection_per_worker() {
    // Two workers, 16 requests in flight each, room for all of them at the host: the
    // worker that did not fetch robots.txt and the page starts its first 16 at once, on a
    // client with no connection yet (awc opened one connection per request of such a
    // burst, each with its own TLS handshake).
    let ca = Ca::new("image-scraper test CA");
    let server = HttpsGallery::start(ca.leaf(&["127.0.0.1", "localhost"], in_a_year()));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write(dir.path(), "ca.pem");
    write_settings(dir.path(), &server.origin(), "  PER_HOST_CONCURRENCY: 32\n  CONCURRENCY: 16\n");
    let args = ["--no-progress", "-m", "async", "-p", "2", "--ca-cert", &ca_file];
    let run = run_binary_with_env(dir.path(), &args, &[]);
    assert_complete(&run, dir.path());
    assert!(server.most_in_flight() >= 4, "requests overlapped: {}", server.most_in_flight());
    assert!(server.connections() <= 2, "one HTTP/2 connection per worker: {}", server.connections());
}
