//! SOCKS5 proxies (issue 23, item 6): the real binary in both modes through
//! `SocksProxy`, a SOCKS5 proxy on 127.0.0.1 that records each connection asked for and
//! whether a name or an address was sent. Every proxy variable is cleared first
//! (`helpers::run_command`), then set per test.

use crate::helpers::images;
use crate::proxy::{assert_complete, gallery, scrape};
use crate::socks_proxy::{Seen, SocksProxy};
use crate::tls::{Ca, HttpsGallery, IMAGES, expected_files, in_a_year};

const MODES: [&str; 2] = ["async", "sync"];

/// The port of an `http://127.0.0.1:PORT` or `https://...` origin.
fn port_of(origin: &str) -> u16 {
    origin.rsplit(':').next().unwrap().parse().unwrap()
}

/// A settings file for the gallery at `origin` (any host: `localhost` is the point of
/// some tests), quick to fail.
fn workdir(origin: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let text = format!(
        "SCRAPER:\n  URL: {origin}/\n  ITEM: cats\n  OUT_DIR: images\n  AMOUNT_PAGES: 10\n  IMAGE_HOST: \"\"\n  RETRIES: 1\n  RETRY_BACKOFF_MS: 10\n  TIMEOUT_SECS: 5\n"
    );
    std::fs::write(root.path().join("settings.yaml"), text).unwrap();
    root
}

/// Every connection went to `target`, sent as a name (`domain`) or an address.
fn assert_all(seen: &[Seen], target: &str, domain: bool, what: &str) {
    assert!(!seen.is_empty(), "{what}: the proxy saw nothing");
    for s in seen {
        assert_eq!((s.target.as_str(), s.domain), (target, domain), "{what}: {seen:?}");
    }
}

/// socks5h: the proxy resolves, so the name is sent; socks5: resolved here, the address
/// is sent. http targets, written as to the server (the proxy only relays bytes).
#[test]
fn http_targets_through_socks5h_send_the_name_and_through_socks5_the_address() {
    let (server, bodies) = gallery();
    let port = port_of(&server.origin());
    let origin = format!("http://localhost:{port}");
    for mode in MODES {
        for (scheme, target, domain) in
            [("socks5h", format!("localhost:{port}"), true), ("socks5", format!("127.0.0.1:{port}"), false)]
        {
            let proxy = SocksProxy::start();
            let dir = workdir(&origin);
            let what = format!("{mode} {scheme}");
            let run = scrape(dir.path(), mode, &[], &[("all_proxy", &proxy.url(scheme))]);
            assert_complete(&run, dir.path(), &bodies, &what);
            assert_all(&proxy.seen(), &target, domain, &what);
            assert!(proxy.seen().iter().all(|s| s.user.is_none()), "{what}");
        }
    }
    assert!(server.hits("/img/0.jpg") >= 4, "every run reached the server through the proxy");
}

/// https targets: TLS with the target over the SOCKS connection, the certificate checked
/// against the target's name; from https_proxy and from --proxy.
#[test]
fn https_targets_through_socks_in_both_modes() {
    let ca = Ca::new("image-scraper socks test CA");
    let server = HttpsGallery::start(ca.leaf(&["127.0.0.1", "localhost"], in_a_year()));
    let origin = format!("https://localhost:{}", server.port());
    for mode in MODES {
        for (scheme, how, target, domain) in [
            ("socks5h", "https_proxy", format!("localhost:{}", server.port()), true),
            ("socks5", "--proxy", format!("127.0.0.1:{}", server.port()), false),
        ] {
            let proxy = SocksProxy::start();
            let dir = workdir(&origin);
            let ca_file = ca.write(dir.path(), "ca.pem");
            let url = proxy.url(scheme);
            let mut args = vec!["--ca-cert", ca_file.as_str()];
            let env = if how == "--proxy" {
                args.extend(["--proxy", url.as_str()]);
                vec![]
            } else {
                vec![(how, url.as_str())]
            };
            let what = format!("{mode} {scheme} {how}");
            let run = scrape(dir.path(), mode, &args, &env);
            assert_eq!(run.code, 0, "{what}: {}", run.stderr);
            run.assert_line(&format!("Done, success: {IMAGES}/{IMAGES}, failure: 0/{IMAGES}"));
            assert!(
                images(&dir.path().join("images")) == expected_files(),
                "{what}: every image, byte for byte"
            );
            assert_all(&proxy.seen(), &target, domain, &what);
        }
    }
}

/// RFC 1929: the right username and password (percent-decoded from the URL) pass; wrong
/// ones are counted failures naming the proxy, never the password, and nothing reaches
/// the server.
#[test]
fn socks_credentials_pass_and_wrong_ones_are_counted_failures() {
    let (server, bodies) = gallery();
    let origin = server.origin();
    for mode in MODES {
        let proxy = SocksProxy::with_password("us@er", "pa:ss");
        let dir = workdir(&origin);
        let run =
            scrape(dir.path(), mode, &[], &[("ALL_PROXY", &proxy.url_with("socks5h", "us%40er:pa%3Ass"))]);
        assert_complete(&run, dir.path(), &bodies, mode);
        let seen = proxy.seen();
        assert!(seen.iter().all(|s| s.user.as_deref() == Some("us@er")), "{mode}: {seen:?}");
        assert_eq!(proxy.refused(), 0, "{mode}");

        let before = server.hits("/robots.txt") + server.hits("/p1/cats.html");
        let dir = workdir(&origin);
        let url = proxy.url_with("socks5", "us%40er:wrong-secret");
        let run = scrape(dir.path(), mode, &["--report", "r.json"], &[("all_proxy", &url)]);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        run.assert_line(&format!("proxy {}", proxy.url("socks5")));
        assert!(!run.stderr.contains("wrong-secret"), "{mode}: the password leaked: {}", run.stderr);
        assert!(!run.stderr.contains("--ignore-robots"), "{mode}: wrong advice: {}", run.stderr);
        assert!(proxy.refused() > 0, "{mode}: the proxy refused the credentials");
        assert_eq!(server.hits("/robots.txt") + server.hits("/p1/cats.html"), before, "{mode}: went direct");
    }
}

/// no_proxy sends matching targets direct, past a SOCKS proxy too.
#[test]
fn no_proxy_bypasses_a_socks_proxy() {
    let (server, bodies) = gallery();
    for mode in MODES {
        let proxy = SocksProxy::start();
        let dir = workdir(&server.origin());
        let env = [("all_proxy", proxy.url("socks5h")), ("no_proxy", "localhost,127.0.0.1".into())];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let run = scrape(dir.path(), mode, &[], &env);
        assert_complete(&run, dir.path(), &bodies, mode);
        assert_eq!(proxy.seen(), vec![], "{mode}: bypassed");
    }
}

/// A proxy setting the tool cannot use (socks4, an https:// proxy) is no error while no
/// request needs it; a request that would is a counted failure with the reason; and
/// one every request would use stops the run at start.
#[test]
fn an_unusable_proxy_is_an_error_only_where_it_is_used() {
    let (server, bodies) = gallery();
    let origin = server.origin();
    for mode in MODES {
        // Only http:// URLs are fetched: https_proxy is never used.
        let dir = workdir(&origin);
        let run = scrape(dir.path(), mode, &[], &[("https_proxy", "socks4://127.0.0.1:1")]);
        assert_complete(&run, dir.path(), &bodies, &format!("{mode} https_proxy unused"));
        // no_proxy covers every target.
        let dir = workdir(&origin);
        let env = [("all_proxy", "https://127.0.0.1:1"), ("no_proxy", "127.0.0.1")];
        let run = scrape(dir.path(), mode, &[], &env);
        assert_complete(&run, dir.path(), &bodies, &format!("{mode} no_proxy covers all"));

        // One URL would use it: that one fails, with the reason; the other is fetched.
        let dir = workdir(&origin);
        let authority = origin.trim_start_matches("http://");
        std::fs::write(
            dir.path().join("urls.txt"),
            format!("{origin}/img/0.jpg\nhttps://{authority}/img/1.jpg\n"),
        )
        .unwrap();
        let run = scrape(
            dir.path(),
            mode,
            &["--urls", "urls.txt", "--ignore-robots"],
            &[("https_proxy", "socks4://127.0.0.1:1")],
        );
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        run.assert_line("Done, success: 1/2, failure: 1/2");
        run.assert_line(
            "the proxy of environment https_proxy cannot be used: unsupported proxy scheme \"socks4\"",
        );

        // Every request would use it: refused before any, in one line.
        let dir = workdir(&origin);
        let before = server.hits("/robots.txt");
        let run = scrape(dir.path(), mode, &[], &[("ALL_PROXY", "socks4://127.0.0.1:1")]);
        assert_eq!(run.code, 2, "{mode}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{mode}: one line: {}", run.stderr);
        run.assert_line("environment ALL_PROXY: unsupported proxy scheme \"socks4\"");
        assert_eq!(server.hits("/robots.txt"), before, "{mode}: before any request");
    }
}

/// S3 storage follows the run's proxy rules: the endpoint through the SOCKS5 proxy too
/// (ureq's SOCKS connector), in both modes; a bucket whose endpoint would go through an
/// unusable proxy is refused at start.
#[test]
fn s3_storage_goes_through_a_socks_proxy_too() {
    let Some(s3) = crate::s3::server() else { return };
    let (site, bodies) = gallery();
    let endpoint_port =
        s3.env().iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").map(|(_, v)| port_of(v)).unwrap();
    for mode in MODES {
        let proxy = SocksProxy::start();
        let bucket = s3.new_bucket(&format!("socks-{mode}"));
        let dir = workdir(&site.origin());
        let out = format!("s3://{}/cats", bucket.bucket());
        let mut env = s3.env();
        env.push(("all_proxy".into(), proxy.url("socks5h")));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let run = scrape(dir.path(), mode, &["-o", &out], &env);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let stored: Vec<String> = bucket.list("cats/").unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(stored.iter().filter(|k| k.ends_with(".jpg")).count(), bodies.len(), "{mode}: {stored:?}");
        let seen = proxy.seen();
        let to_s3 = format!("127.0.0.1:{endpoint_port}");
        assert!(seen.iter().any(|s| s.target == to_s3), "{mode}: S3 went direct: {seen:?}");

        // With a no_proxy list the setting alone is no error; every S3 request would use it.
        let mut unusable: Vec<(&str, &str)> =
            env.iter().filter(|(k, _)| *k != "all_proxy").copied().collect();
        unusable.extend([("all_proxy", "socks4://127.0.0.1:1"), ("no_proxy", "localhost")]);
        let run = scrape(dir.path(), mode, &["-o", &out], &unusable);
        assert_eq!(run.code, 2, "{mode}: {}", run.stderr);
        run.assert_line("the proxy of environment all_proxy cannot be used");
    }
}
