//! Hostile folders, encodings, servers and settings: the real binary against each, in
//! both modes. Every check is on what a user sees (files, the report, the summary, the
//! exit status) and on what must not happen: a write or a read outside the out dir, a
//! hang, a still-encoded file reported `ok`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::helpers::{
    Run, TestServer, gallery_html, images, jpeg, read_report, run_command, serve_page, tree, write_settings,
};

const MODES: [(&str, &str); 2] = [("async", "2"), ("sync", "2")];

/// Runs the binary with `args` (and `env`), failing the test if it has not ended within
/// a minute: a hang is the defect, not a slow run.
fn run_guarded(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_command(Command::new(env!("CARGO_BIN_EXE_image-scraper")).args(args), cwd, env)
}

/// A work dir with settings for `origin`; returns (tempdir guard, work dir).
fn workdir(origin: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    write_settings(&dir, origin, extra);
    (root, dir)
}

fn gallery_server(images: Vec<(String, Vec<u8>)>) -> TestServer {
    TestServer::start_with(move |cfg| {
        let srcs: Vec<String> = images.iter().map(|(p, _)| p.clone()).collect();
        serve_page(cfg, "/p1/cats.html", gallery_html(&srcs, 1));
        for (path, body) in images.clone() {
            cfg.route(
                &path,
                web::get().to(move || {
                    let body = body.clone();
                    async move { HttpResponse::Ok().content_type("image/jpeg").body(body) }
                }),
            );
        }
    })
}

fn item<'a>(report: &'a serde_json::Value, suffix: &str) -> &'a serde_json::Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["url"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("{suffix} not in the report"))
}

// --- 1. The tool's own folder -----------------------------------------------------

#[test]
fn a_linked_tool_folder_stops_the_run_and_its_target_is_untouched() {
    let server = gallery_server(vec![("/img/a.jpg".into(), jpeg(1, 2_000))]);
    for link_at in [".image-scraper", ".image-scraper/tmp"] {
        let (root, dir) = workdir(&server.origin(), "");
        let decoys = root.path().join("decoys");
        std::fs::create_dir(&decoys).unwrap();
        std::fs::write(decoys.join("part-abcdef"), b"decoy").unwrap();
        std::fs::write(decoys.join("family.jpg"), b"photo").unwrap();
        let before = tree(&decoys);
        let out = dir.join("images");
        std::fs::create_dir_all(out.join(link_at).parent().unwrap()).unwrap();
        symlink(&decoys, out.join(link_at)).unwrap();
        for args in [&[][..], &["--dry-run"][..]] {
            let run = run_guarded(&dir, args, &[]);
            assert_eq!(run.code, 2, "{link_at} {args:?}: {}", run.stderr);
            let error: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(error.len(), 1, "{}", run.stderr);
            assert!(error[0].contains("is a symbolic link, not a folder"), "{}", error[0]);
            assert_eq!(tree(&decoys), before, "{link_at}: the link's target changed");
        }
        assert_eq!(server.hits("/p1/cats.html"), 0, "stopped before any request");
    }
}

// --- 2. Whatever sits under an image's name ----------------------------------------

#[test]
fn a_fifo_or_a_link_under_an_image_name_is_a_clash_never_opened() {
    let (a, b) = (jpeg(2, 3_000), jpeg(3, 3_000));
    let server = gallery_server(vec![("/img/a.jpg".into(), a.clone()), ("/img/b.jpg".into(), b.clone())]);
    for (mode, p) in MODES {
        let (root, dir) = workdir(&server.origin(), "");
        let out = dir.join("images");
        std::fs::create_dir_all(&out).unwrap();
        let fifo = |path: &Path| {
            let status = Command::new("mkfifo").arg(path).status().unwrap();
            assert!(status.success());
        };
        fifo(&out.join("a.jpg"));
        // A link to a FIFO outside: reading through it would block forever.
        let outside = root.path().join("outside-fifo");
        fifo(&outside);
        symlink(&outside, out.join("b.jpg")).unwrap();
        let run = run_guarded(&dir, &["-m", mode, "-p", p, "--report", "r.json"], &[]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let report = read_report(&dir.join("r.json"));
        for (suffix, body) in [("a.jpg", &a), ("b.jpg", &b)] {
            let entry = item(&report, suffix);
            assert_eq!(entry["status"], "ok");
            let name = entry["path"].as_str().unwrap();
            assert_ne!(name, suffix, "{mode}: the name held by something else is not used");
            assert_eq!(&std::fs::read(out.join(name)).unwrap(), body);
        }
        let kinds = |p: &Path| std::fs::symlink_metadata(p).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kinds(&out.join("a.jpg"))));
        assert!(kinds(&out.join("b.jpg")).is_symlink(), "the link is left as it was");
    }
}

// --- 3. Encodings -----------------------------------------------------------------

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A valid brotli stream holding `bytes` uncompressed (RFC 7932 9.2), so no encoder is
/// needed.
fn brotli(bytes: &[u8]) -> Vec<u8> {
    let bits: u64 = (((bytes.len() - 1) as u64) << 4) | (1 << 20);
    let mut out: Vec<u8> = (0..3).map(|i| (bits >> (8 * i)) as u8).collect();
    out.extend_from_slice(bytes);
    out.push(0x03);
    out
}

#[test]
fn every_coding_layer_is_undone_or_the_image_fails() {
    let plain: BTreeMap<&str, Vec<u8>> = [
        ("twice.jpg", jpeg(4, 20_000)),
        ("deflate.jpg", jpeg(5, 20_000)),
        ("br.jpg", jpeg(6, 20_000)),
        ("stacked.jpg", jpeg(7, 20_000)),
        ("zstd.jpg", jpeg(8, 20_000)),
    ]
    .into();
    let served: Vec<(&str, &str, Vec<u8>)> = vec![
        ("/img/twice.jpg", "gzip, gzip", gzip(&gzip(&plain["twice.jpg"]))),
        ("/img/deflate.jpg", "deflate", zlib(&plain["deflate.jpg"])),
        ("/img/br.jpg", "br", brotli(&plain["br.jpg"])),
        ("/img/stacked.jpg", "deflate, br", brotli(&zlib(&plain["stacked.jpg"]))),
        ("/img/zstd.jpg", "zstd", plain["zstd.jpg"].clone()),
    ];
    let server = TestServer::start_with(move |cfg| {
        let srcs: Vec<String> = served.iter().map(|(p, _, _)| p.to_string()).collect();
        serve_page(cfg, "/p1/cats.html", gallery_html(&srcs, 1));
        for (path, coding, body) in served.clone() {
            cfg.route(
                path,
                web::get().to(move || {
                    let body = body.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("image/jpeg")
                            .insert_header((header::CONTENT_ENCODING, coding))
                            .body(body)
                    }
                }),
            );
        }
    });
    for (mode, p) in MODES {
        let (_root, dir) = workdir(&server.origin(), "");
        let run = run_guarded(&dir, &["-m", mode, "-p", p, "--report", "r.json"], &[]);
        assert_eq!(run.code, 1, "{mode}: zstd fails: {}", run.stderr);
        let files = images(&dir.join("images"));
        for name in ["twice.jpg", "deflate.jpg", "br.jpg", "stacked.jpg"] {
            assert!(files.get(name) == Some(&plain[name]), "{mode}: {name} is not the decoded image");
        }
        assert!(!files.contains_key("zstd.jpg"), "{mode}: still-encoded bytes saved");
        let report = read_report(&dir.join("r.json"));
        let error = item(&report, "zstd.jpg")["error"].as_str().unwrap().to_string();
        assert!(error.contains("unsupported content encoding: zstd"), "{mode}: {error}");
    }
    // Both modes advertise exactly what they decode.
    let asked: Vec<String> = server
        .requests("/img/br.jpg")
        .iter()
        .map(|(_, h)| h.get("accept-encoding").unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(asked, ["gzip, deflate, br", "gzip, deflate, br"]);
}

// --- 4. Redirects -----------------------------------------------------------------

#[test]
fn redirects_go_only_to_http_and_pass_the_same_checks() {
    let real = jpeg(9, 4_000);
    let server = TestServer::start_with({
        let real = real.clone();
        move |cfg| {
            let srcs: Vec<String> =
                ["/img/ftp.jpg", "/img/file.jpg", "/img/data.jpg", "/img/moved.jpg", "/img/private.jpg"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            serve_page(cfg, "/p1/cats.html", gallery_html(&srcs, 1));
            let redirect = |to: String| {
                move |req: HttpRequest| {
                    let to = to.replace("PORT", &req.connection_info().host().replace("127.0.0.1:", ""));
                    async move { HttpResponse::Found().insert_header((header::LOCATION, to)).finish() }
                }
            };
            cfg.route("/img/ftp.jpg", web::get().to(redirect("ftp://127.0.0.1:PORT/x.jpg".into())))
                .route("/img/file.jpg", web::get().to(redirect("file:///etc/passwd".into())))
                .route("/img/data.jpg", web::get().to(redirect("data:image/jpeg;base64,/9j/".into())))
                .route("/img/moved.jpg", web::get().to(redirect("/real/moved.jpg".into())))
                .route("/img/private.jpg", web::get().to(redirect("/private/x.jpg".into())))
                .route(
                    "/robots.txt",
                    web::get()
                        .to(|| async { HttpResponse::Ok().body("User-agent: *\nDisallow: /private/\n") }),
                );
            let real = real.clone();
            cfg.route(
                "/real/moved.jpg",
                web::get().to(move || {
                    let real = real.clone();
                    async move { HttpResponse::Ok().content_type("image/jpeg").body(real) }
                }),
            );
        }
    });
    for (mode, p) in MODES {
        let (_root, dir) = workdir(&server.origin(), "");
        let run = run_guarded(&dir, &["-m", mode, "-p", p, "--report", "r.json"], &[]);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        let report = read_report(&dir.join("r.json"));
        for bad in ["ftp.jpg", "file.jpg", "data.jpg"] {
            let entry = item(&report, bad);
            assert_eq!(entry["status"], "failed", "{mode} {bad}");
            assert!(entry["error"].as_str().unwrap().contains("redirect to a non-HTTP URL"), "{entry}");
        }
        let moved = item(&report, "/img/moved.jpg");
        assert_eq!((&moved["status"], &moved["path"]), (&"ok".into(), &"moved.jpg".into()), "{mode}");
        assert_eq!(images(&dir.join("images"))["moved.jpg"], real);
        let private = item(&report, "/img/private.jpg");
        assert_eq!(private["status"], "skipped", "{mode}: robots.txt applies to the target");
        assert_eq!(private["reason"], "disallowed by robots.txt");
    }
    assert_eq!(server.hits("/private/x.jpg"), 0);
}

// --- 5. Interim responses -----------------------------------------------------------

/// A raw HTTP/1.1 server on 127.0.0.1:0 that answers `/img/hint.jpg` with
/// `103 Early Hints` and `/img/cont.jpg` with an unsolicited `100 Continue` before the
/// real response, keeping connections alive. Returns its origin and a log of the paths
/// asked for per connection.
fn interim_server(page: String, bodies: BTreeMap<String, Vec<u8>>) -> (String, Arc<Mutex<Vec<Vec<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (page, bodies, seen) = (page.clone(), bodies.clone(), Arc::clone(&seen));
            std::thread::spawn(move || serve_connection(stream, &page, &bodies, &seen));
        }
    });
    (origin, log)
}

fn serve_connection(
    stream: TcpStream,
    page: &str,
    bodies: &BTreeMap<String, Vec<u8>>,
    seen: &Mutex<Vec<Vec<String>>>,
) {
    let connection = {
        let mut seen = seen.lock().unwrap();
        seen.push(Vec::new());
        seen.len() - 1
    };
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
        seen.lock().unwrap()[connection].push(path.clone());
        let (status, kind, body) = match (path.as_str(), bodies.get(&path)) {
            ("/p1/cats.html", _) => ("200 OK", "text/html", page.as_bytes().to_vec()),
            (_, Some(body)) => ("200 OK", "image/jpeg", body.clone()),
            _ => ("404 Not Found", "text/plain", b"no".to_vec()),
        };
        let interim = match path.as_str() {
            "/img/hint.jpg" => "HTTP/1.1 103 Early Hints\r\nLink: </img/plain.jpg>; rel=preload\r\n\r\n",
            "/img/cont.jpg" => "HTTP/1.1 100 Continue\r\n\r\n",
            _ => "",
        };
        let head = format!(
            "{interim}HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(&body)).is_err() {
            return;
        }
    }
}

#[test]
fn interim_responses_are_read_past_in_both_modes() {
    let bodies: BTreeMap<String, Vec<u8>> = [
        ("/img/hint.jpg".to_string(), jpeg(10, 5_000)),
        ("/img/cont.jpg".to_string(), jpeg(11, 6_000)),
        ("/img/plain.jpg".to_string(), jpeg(12, 7_000)),
    ]
    .into();
    let srcs: Vec<String> = bodies.keys().cloned().collect();
    let (origin, log) = interim_server(gallery_html(&srcs, 1), bodies.clone());
    // One worker, one request at a time: every request after the first rides the same
    // connection, so an interim response left unread would answer the next request.
    for (mode, p) in [("async", "1"), ("sync", "1")] {
        let (_root, dir) = workdir(&origin, "  OBEY_ROBOTS: false\n  CONCURRENCY: 1\n");
        let run = run_guarded(&dir, &["-m", mode, "-p", p], &[]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let files = images(&dir.join("images"));
        for (path, body) in &bodies {
            let name = path.rsplit('/').next().unwrap();
            assert!(files.get(name) == Some(body), "{mode}: {name} is not what the final response held");
        }
    }
    let log = log.lock().unwrap();
    assert!(log.iter().any(|paths| paths.len() >= 3), "connections were reused: {log:?}");
}

// --- 7. Waits a server asks for ----------------------------------------------------------

#[test]
fn a_hostile_crawl_delay_is_clamped_and_a_long_retry_after_is_not_waited() {
    for (mode, p) in MODES {
        hostile_waits(mode, p);
    }
}

/// One run of [`a_hostile_crawl_delay_is_clamped_and_a_long_retry_after_is_not_waited`],
/// on a server of its own: the spacing is measured on every request it saw.
fn hostile_waits(mode: &str, p: &str) {
    let server = TestServer::start_with(|cfg| {
        let srcs: Vec<String> = ["/img/a.jpg", "/img/b.jpg", "/img/c.jpg", "/img/busy.jpg"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        serve_page(cfg, "/p1/cats.html", gallery_html(&srcs, 1));
        cfg.route(
            "/robots.txt",
            web::get().to(|| async { HttpResponse::Ok().body("User-agent: *\nCrawl-delay: 100000\n") }),
        )
        .route(
            "/img/busy.jpg",
            web::get().to(|| async {
                HttpResponse::ServiceUnavailable().insert_header((header::RETRY_AFTER, "100000")).finish()
            }),
        );
        for (i, path) in ["/img/a.jpg", "/img/b.jpg", "/img/c.jpg"].into_iter().enumerate() {
            cfg.route(
                path,
                web::get().to(move || async move {
                    HttpResponse::Ok().content_type("image/jpeg").body(jpeg(20 + i as u8, 1_000))
                }),
            );
        }
    });
    let (_root, dir) =
        workdir(&server.origin(), "  RETRY_MAX_WAIT_SECS: 0.3\n  RETRIES: 1\n  RETRY_BACKOFF_MS: 10\n");
    let run = run_guarded(&dir, &["-m", mode, "-p", p, "--report", "r.json"], &[]);
    assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
    run.assert_line("robots.txt asks for a crawl delay longer than RETRY_MAX_WAIT_SECS");
    run.assert_line("127.0.0.1");
    let report = read_report(&dir.join("r.json"));
    assert_eq!(report["images"]["ok"], 3);
    let busy = item(&report, "busy.jpg");
    assert_eq!(busy["error"], "server asked to wait 100000 s (HTTP status 503)");
    assert_eq!(server.hits("/img/busy.jpg"), 2, "retried once, as RETRIES says");
    // The clamped delay still spaces requests: 0.3 s, not 100000 s and not nothing. It
    // counts from robots.txt's answer, after robots.txt's arrival (`times[0]`), so every
    // later start is a whole number of delays after that arrival, however late a
    // loaded machine sends it. (Not each gap: a start sent late shortens the gap after it.)
    let times = server.all_times();
    let span = *times.last().unwrap() - times[0];
    let delays = times.len() as u32 - 1;
    assert!(span >= Duration::from_millis(300) * delays, "{mode}: {span:?} for {delays} delays: {times:?}");
}

// --- 8. Settings ----------------------------------------------------------------------

#[test]
fn a_malformed_environment_value_is_an_error_naming_it() {
    let (_root, dir) = workdir("http://127.0.0.1:9", "");
    for (var, value) in [("IMAGE_SCRAPER_AMOUNT_PAGES", "[1"), ("IMAGE_SCRAPER_HEADERS", "{a: [")] {
        let run = run_guarded(&dir, &[], &[(var, value)]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        let line = run.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
        assert!(line.contains(&format!("environment {var}")), "{}", run.stderr);
        assert!(!dir.join("images").exists(), "nothing created");
    }
    let deep = format!("SCRAPER:\n  HEADERS: {}\n", "[".repeat(100_000));
    std::fs::write(dir.join("deep.yaml"), deep).unwrap();
    let run = run_guarded(&dir, &["-c", "deep.yaml"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nested deeper than 64"), "{}", run.stderr);
}

// --- 9. robots.txt that cannot be read ------------------------------------------------

#[test]
fn an_unreadable_robots_txt_fails_the_run() {
    let server = TestServer::start_with(|cfg| {
        serve_page(cfg, "/p1/cats.html", gallery_html(&["/img/a.jpg".to_string()], 1));
        cfg.route("/robots.txt", web::get().to(|| async { HttpResponse::ServiceUnavailable().finish() }));
    });
    for (mode, p) in MODES {
        let (_root, dir) = workdir(&server.origin(), "  RETRIES: 0\n");
        let run = run_guarded(&dir, &["-m", mode, "-p", p, "--pages", "1", "--report", "r.json"], &[]);
        assert_eq!(run.code, 1, "{mode}: a run that fetched nothing is no success: {}", run.stderr);
        run.assert_line("robots.txt unreachable (HTTP 503)");
        run.assert_line("Pages, success: 0/1, failure: 1/1");
        let report = read_report(&dir.join("r.json"));
        assert_eq!(report["pages"]["failed"], 1);
    }
    assert_eq!(server.hits("/p1/cats.html"), 0);
}

// --- 11. File modes ---------------------------------------------------------------------

#[test]
fn saved_files_get_the_mode_the_umask_allows() {
    let server = gallery_server(vec![("/img/a.jpg".into(), jpeg(30, 2_000))]);
    for ((umask, want), mode) in [("022", 0o644), ("077", 0o600)].into_iter().zip(["async", "sync"]) {
        let (_root, dir) = workdir(&server.origin(), "");
        let binary = env!("CARGO_BIN_EXE_image-scraper");
        let script = format!("umask {umask}; exec \"$0\" -m {mode} --report r.json --failed failed.txt");
        let run = run_command(Command::new("sh").args(["-c", &script, binary]), &dir, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let mode = |p: PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.join("images/a.jpg")), want, "umask {umask}: the image");
        assert_eq!(mode(dir.join("r.json")), want, "umask {umask}: the report");
        assert_eq!(mode(dir.join("failed.txt")), want, "umask {umask}: the failed list");
    }
}

// --- 10. A full disk ---------------------------------------------------------------------

/// A tmpfs of `size` at `dir`, unmounted when dropped; `None` where mounting is not
/// allowed (not root). Under CI (root) it must work.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok && std::env::var("CI").as_deref() == Ok("true") {
            panic!("cannot mount a tmpfs under CI (root is needed for the full-disk test)");
        }
        ok.then(|| Self(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_and_a_rerun_completes_it() {
    let bodies: Vec<(String, Vec<u8>)> =
        (0..12u8).map(|i| (format!("/img/{i}.jpg"), jpeg(40 + i, 100_000))).collect();
    let server = gallery_server(bodies.clone());
    let requests = || -> usize { bodies.iter().map(|(path, _)| server.hits(path)).sum() };
    for mode in ["sync", "async"] {
        let (_root, dir) = workdir(&server.origin(), "  CONCURRENCY: 1\n");
        let Some(disk) = Tmpfs::mount(&dir.join("images"), "320k") else {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        };
        let before = requests();
        let run = run_guarded(&dir, &["-m", mode, "-p", "1", "--report", "r.json"], &[]);
        assert_eq!(run.code, 1, "{mode}: {}", run.stderr);
        run.assert_line("Stopped early: disk full");
        let report = read_report(&dir.join("r.json"));
        let count = |key: &str| report["images"][key].as_u64().unwrap();
        let (ok, failed) = (count("ok"), count("failed"));
        assert!((1..12).contains(&ok) && ok + failed == 12, "{mode}: ok {ok} failed {failed}");
        for entry in report["items"].as_array().unwrap().iter().filter(|i| i["status"] == "failed") {
            assert!(entry["error"].as_str().unwrap().starts_with("disk full"), "{mode}: {entry}");
        }
        let asked = requests() - before;
        assert!(
            asked <= ok as usize + 1,
            "{mode}: nothing handed out after the disk filled ({asked} requests)"
        );
        assert_eq!(images(&dir.join("images")).len() as u64, ok, "{mode}: no partial file left");
        // Space freed: the re-run completes the rest.
        disk.resize("4m");
        let run = run_guarded(&dir, &["-m", mode, "-p", "1"], &[]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let files = images(&dir.join("images"));
        for (path, body) in &bodies {
            assert!(files.get(&path["/img/".len()..]) == Some(body), "{mode}: {path}");
        }
    }
}

// --- Output nobody reads ------------------------------------------------------------

#[test]
fn a_closed_stderr_loses_the_log_not_the_run() {
    // `image-scraper ... 2>&1 | head -1`: the reader goes after one line. Writing to the
    // pipe then fails (EPIPE); that must cost the log lines, not a panic (exit 101)
    // halfway through the downloads.
    let site = gallery_server((0..6u8).map(|i| (format!("/img/{i}.jpg"), jpeg(i, 2_000))).collect());
    for format in ["text", "json"] {
        let (_root, dir) = workdir(&site.origin(), "");
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let status = crate::helpers::without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
            .args(["--no-progress", "--log-format", format, "-v"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(writer)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0), "{format}");
        assert_eq!(images(&dir.join("images")).len(), 6, "{format}: every image saved");
    }
}
