//! Proxies (issue 14): the real binary in both modes through `ForwardProxy`, a forward
//! proxy on 127.0.0.1 that records what passes through it. Every variable a proxy could
//! come from is cleared first (`helpers::run_command`), then set per test.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use crate::forward_proxy::{ForwardProxy, Seen, dead_port};
use crate::helpers::{
    Reply, Run, TestServer, gallery_html, image_paths, images, jpeg, read_report, run_command, write_settings,
};

const MODES: [&str; 2] = ["async", "sync"];

/// Quick to fail: a proxy test is about where requests go, not about patience.
const SETTINGS: &str = "  RETRIES: 1\n  RETRY_BACKOFF_MS: 10\n  TIMEOUT_SECS: 5\n";

/// A one-page gallery of three images; returns the server and the images' bodies.
pub(crate) fn gallery() -> (TestServer, Vec<Vec<u8>>) {
    let paths = image_paths(3);
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| jpeg(i as u8, 3000 + i * 500)).collect();
    let page = gallery_html(&paths, 1);
    let mut routes = vec![("/p1/cats.html", Reply::html(page))];
    routes.extend(paths.iter().map(String::as_str).zip(bodies.iter().map(|b| Reply::image(b))));
    (TestServer::start(routes), bodies)
}

fn workdir(origin: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    write_settings(root.path(), origin, &format!("{SETTINGS}{extra}"));
    let dir = root.path().to_path_buf();
    (root, dir)
}

/// The binary in `mode` with two workers, no bar (also for `socks.rs`).
pub(crate) fn scrape(dir: &Path, mode: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_image-scraper"));
    command.args(["-m", mode, "-p", "2", "--no-progress"]).args(args);
    run_command(&mut command, dir, env)
}

/// Every image on disk, byte for byte, and a clean exit.
pub(crate) fn assert_complete(run: &Run, dir: &Path, bodies: &[Vec<u8>], what: &str) {
    assert_eq!(run.code, 0, "{what}: {}", run.stderr);
    let mut on_disk: Vec<Vec<u8>> = images(&dir.join("images")).into_values().collect();
    on_disk.sort();
    let mut expected = bodies.to_vec();
    expected.sort();
    assert!(on_disk == expected, "{what}: the files differ from what the server sent");
}

fn basic(credentials: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
}

/// Both modes: each request forwarded in the absolute form (`GET http://host:port/p`,
/// curl's way), never tunnelled: tinyproxy and squid refuse CONNECT to port 80 by
/// default. Sync mode writes it through `ureq_forward`.
#[test]
fn http_targets_go_through_the_proxy() {
    let (server, bodies) = gallery();
    let origin = server.origin();
    for mode in MODES {
        // Lower case is curl's; upper case is what Docker and systemd set.
        for var in ["http_proxy", "HTTP_PROXY"] {
            let proxy = ForwardProxy::start();
            let (_root, dir) = workdir(&origin, "");
            let run = scrape(&dir, mode, &[], &[(var, &proxy.url())]);
            assert_complete(&run, &dir, &bodies, &format!("{mode} {var}"));
            let seen = proxy.seen();
            assert!(seen.iter().all(|s| s.auth.is_none()), "{mode} {var}: {seen:?}");
            assert_forwarded(&seen, &origin, &format!("{mode} {var}"));
        }
    }
}

/// What a forwarding proxy should see of the gallery: robots.txt, the page and each
/// image as absolute-form GETs, and nothing else (no CONNECT).
fn assert_forwarded(seen: &[Seen], origin: &str, what: &str) {
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    for path in ["/robots.txt", "/p1/cats.html", "/img/0.jpg", "/img/1.jpg", "/img/2.jpg"] {
        let target = format!("{origin}{path}");
        assert!(targets.contains(&target.as_str()), "{what}: {target} not in {targets:?}");
    }
    for s in seen {
        assert_eq!(s.method, "GET", "{what}: {seen:?}");
        assert!(s.target.starts_with(&format!("{origin}/")), "{what}: not the absolute form: {seen:?}");
    }
}

#[test]
fn https_targets_are_tunnelled_with_connect() {
    // No TLS server here: the tunnel reaches a plain one, the handshake fails, the image
    // is counted failed. What matters is that the proxy was asked for a tunnel.
    let (server, _) = gallery();
    let authority = server.origin().trim_start_matches("http://").to_string();
    for mode in MODES {
        let proxy = ForwardProxy::start();
        let (_root, dir) = workdir(&server.origin(), "");
        std::fs::write(dir.join("urls.txt"), format!("https://{authority}/img/0.jpg\n")).unwrap();
        let run = scrape(
            &dir,
            mode,
            &["--urls", "urls.txt", "--ignore-robots", "--report", "r.json"],
            &[("https_proxy", &proxy.url()), ("http_proxy", "http://127.0.0.1:1")],
        );
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        run.assert_line("Done, success: 0/1, failure: 1/1");
        let seen = proxy.seen();
        assert!(!seen.is_empty(), "{mode}: the proxy saw nothing");
        for s in &seen {
            assert_eq!((s.method.as_str(), s.target.as_str()), ("CONNECT", authority.as_str()), "{mode}");
        }
        assert_eq!(server.hits("/img/0.jpg"), 0, "{mode}: nothing went to the server as plain HTTP");
    }
}

#[test]
fn no_proxy_sends_matching_targets_direct() {
    let (server, bodies) = gallery();
    let port = server.origin().rsplit(':').next().unwrap().to_string();
    for mode in MODES {
        let with_port = format!("localhost, 127.0.0.1:{port}");
        for (how, list) in
            [("NO_PROXY", "127.0.0.1"), ("no_proxy", "127.0.0.0/8"), ("NO_PROXY", with_port.as_str())]
        {
            let proxy = ForwardProxy::start();
            let (_root, dir) = workdir(&server.origin(), "");
            let run = scrape(&dir, mode, &[], &[("http_proxy", &proxy.url()), (how, list)]);
            assert_complete(&run, &dir, &bodies, &format!("{mode} {how}={list}"));
            assert_eq!(proxy.seen(), Vec::<Seen>::new(), "{mode} {how}={list}");
        }
        // --noproxy, and a list that does not match this port: through the proxy.
        let proxy = ForwardProxy::start();
        let (_root, dir) = workdir(&server.origin(), "");
        let run = scrape(
            &dir,
            mode,
            &["--noproxy", "127.0.0.1:1"],
            &[("http_proxy", &proxy.url()), ("NO_PROXY", "*")],
        );
        assert_complete(&run, &dir, &bodies, &format!("{mode} --noproxy"));
        assert!(!proxy.seen().is_empty(), "{mode}: --noproxy replaces NO_PROXY");
    }
}

#[test]
fn the_flag_and_the_setting_override_the_environment() {
    let (server, bodies) = gallery();
    let dead = format!("http://127.0.0.1:{}", dead_port());
    for mode in MODES {
        let proxy = ForwardProxy::start();
        let (_root, dir) = workdir(&server.origin(), "");
        let run =
            scrape(&dir, mode, &["--proxy", &proxy.url()], &[("http_proxy", &dead), ("HTTP_PROXY", &dead)]);
        assert_complete(&run, &dir, &bodies, &format!("{mode} --proxy"));
        assert!(!proxy.seen().is_empty(), "{mode}: --proxy was not used");

        let (_root, dir) = workdir(&server.origin(), "");
        let run = scrape(&dir, mode, &["--proxy", ""], &[("http_proxy", &dead), ("ALL_PROXY", &dead)]);
        assert_complete(&run, &dir, &bodies, &format!("{mode} --proxy ''"));

        let proxy = ForwardProxy::start();
        let (_root, dir) = workdir(&server.origin(), &format!("  PROXY: {}\n", proxy.url()));
        let run = scrape(&dir, mode, &[], &[("http_proxy", &dead)]);
        assert_complete(&run, &dir, &bodies, &format!("{mode} PROXY"));
        assert!(!proxy.seen().is_empty(), "{mode}: PROXY was not used");
    }
}

#[test]
fn proxy_credentials_are_sent_and_their_absence_is_a_counted_407() {
    let (server, bodies) = gallery();
    let authority = server.origin().trim_start_matches("http://").to_string();
    let required = basic("us er:p@ss");
    for mode in MODES {
        let proxy = ForwardProxy::start_with(Some(required.clone()));
        let (_root, dir) = workdir(&server.origin(), "");
        let run = scrape(&dir, mode, &["--proxy", &proxy.url_with("us%20er:p%40ss")], &[]);
        assert_complete(&run, &dir, &bodies, &format!("{mode} with credentials"));
        let reached = server.hits("/img/0.jpg");
        let seen = proxy.seen();
        assert_forwarded(&seen, &server.origin(), &format!("{mode} with credentials"));
        assert!(seen.iter().all(|s| s.auth.as_deref() == Some(required.as_str())), "{mode}: {seen:?}");
        assert!(
            !run.stderr.contains("p@ss") && !run.stderr.contains("p%40ss"),
            "{mode}: a password was logged"
        );

        // Without: every request is refused by the proxy, counted, with 407 in its reason.
        let (_root, dir) = workdir(&server.origin(), "");
        std::fs::write(
            dir.join("urls.txt"),
            format!("http://{authority}/img/0.jpg\nhttps://{authority}/img/1.jpg\n"),
        )
        .unwrap();
        let args = ["--urls", "urls.txt", "--ignore-robots", "--report", "r.json", "--proxy", &proxy.url()];
        let earlier = proxy.seen().len();
        let run = scrape(&dir, mode, &args, &[]);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        run.assert_line("Done, success: 0/2, failure: 2/2");
        let report = read_report(&dir.join("r.json"));
        let items = report["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{mode}: {report}");
        for item in items {
            let error = item["error"].as_str().unwrap_or_default();
            // The proxy's failure, named as such: not the target answering 407.
            assert!(
                error.contains("407") && error.contains(&format!("proxy {}", proxy.url())),
                "{mode}: {item}"
            );
            assert_eq!(item["attempts"], 2, "{mode}: retried as a connection error: {item}");
        }
        // Each attempt once: the http target as a forwarded GET, the https one as a CONNECT.
        let seen = proxy.seen().split_off(earlier);
        let http_target = format!("http://{authority}/img/0.jpg");
        let count = |method: &str, target: &str| {
            seen.iter().filter(|s| s.method == method && s.target == target && s.auth.is_none()).count()
        };
        assert_eq!(count("GET", &http_target), 2, "{mode}: {seen:?}");
        assert_eq!(count("CONNECT", &authority), 2, "{mode}: {seen:?}");
        assert_eq!(seen.len(), 4, "{mode}: {seen:?}");
        assert_eq!(server.hits("/img/0.jpg"), reached, "{mode}: a refused request reached the server");
    }
}

#[test]
fn a_dead_proxy_is_counted_failures_not_a_hang() {
    let (server, _) = gallery();
    let authority = server.origin().trim_start_matches("http://").to_string();
    let dead = format!("http://127.0.0.1:{}", dead_port());
    for mode in MODES {
        let (_root, dir) = workdir(&server.origin(), "");
        std::fs::write(
            dir.join("urls.txt"),
            format!("http://{authority}/img/0.jpg\nhttps://{authority}/img/1.jpg\n"),
        )
        .unwrap();
        // Not a hang: it ends by itself (the test would time out otherwise), with every
        // image a counted failure that names the proxy.
        let run = scrape(&dir, mode, &["--urls", "urls.txt", "--report", "r.json"], &[("all_proxy", &dead)]);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        run.assert_line("failure: 2/2");
        run.assert_line(&format!("proxy {dead}"));
        assert_eq!(server.hits("/img/0.jpg") + server.hits("/robots.txt"), 0, "{mode}: went direct");
    }
}

#[test]
fn a_proxy_that_cannot_be_used_is_a_one_line_settings_error() {
    let (server, _) = gallery();
    for mode in MODES {
        for (args, env, settings, expected) in [
            (vec!["--proxy", "http://[::1"], vec![], "", "--proxy: not a proxy URL"),
            (vec!["--proxy", "socks4://127.0.0.1:1080"], vec![], "", "unsupported proxy scheme \"socks4\""),
            // Every request would use it: refused at start (one that only some would use is
            // tests/it/socks.rs's).
            (vec![], vec![("all_proxy", "http://pro xy:1")], "", "environment all_proxy: not a proxy URL"),
            (vec![], vec![], "  PROXY: \"http://:8080\"\n", "settings.yaml: SCRAPER.PROXY: not a proxy URL"),
        ] {
            let (_root, dir) = workdir(&server.origin(), settings);
            let run = scrape(&dir, mode, &args, &env);
            assert_eq!(run.code, 2, "{mode} {args:?} {env:?}: {}", run.stderr);
            assert_eq!(run.stderr.trim().lines().count(), 1, "{mode}: one line: {}", run.stderr);
            run.assert_line(expected);
            assert_eq!(server.hits("/robots.txt") + server.hits("/p1/cats.html"), 0, "before any request");
        }
    }
}
