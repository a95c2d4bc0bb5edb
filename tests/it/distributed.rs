//! One job, several processes, one real redis-server (started here): a list of image
//! URLs on two hosts with slow responses, three processes, one of them killed with
//! SIGKILL mid-run. The survivors finish the job with exact counts; the per-host limit
//! holds across processes, measured on the server.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};

use crate::helpers::{TestServer, images, jpeg, tree};
use crate::redis_server;

const IMAGES: usize = 90;
const PER_HOST: usize = 3;

/// The images under their final names in an out dir. A process killed with SIGKILL may
/// leave a download in progress in `.image-scraper/tmp/` (removed when a run starts
/// there again): never under an image's name, which is what this reads.
fn finished_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = tree(out);
    files.retain(|name, _| !name.starts_with(".image-scraper/"));
    files
}

/// Requests in flight per host, and the most seen at once; image requests per process
/// (by User-Agent).
#[derive(Default)]
struct Load {
    now: Mutex<HashMap<String, usize>>,
    most: AtomicUsize,
    by_agent: Mutex<HashMap<String, usize>>,
    arrived: Condvar,
}

impl Load {
    /// Blocks until `agent` has asked for `n` images (a hang guard, not a wait: panics
    /// after a minute).
    fn wait_for(&self, agent: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut by_agent = self.by_agent.lock().unwrap();
        while by_agent.get(agent).copied().unwrap_or(0) < n {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("{agent} never asked: {by_agent:?}"));
            by_agent = self.arrived.wait_timeout(by_agent, left).unwrap().0;
        }
    }
}

fn slow_server(load: Arc<Load>) -> TestServer {
    holding_server(load, None)
}

/// Requests of one process (by User-Agent) held unanswered from its `from`th image on,
/// until `open` says true: that process then surely has images in flight.
#[derive(Clone)]
struct Hold {
    agent: &'static str,
    from: usize,
    open: tokio::sync::watch::Receiver<bool>,
}

fn holding_server(load: Arc<Load>, hold: Option<Hold>) -> TestServer {
    TestServer::start_with(move |cfg| {
        let load = Arc::clone(&load);
        let hold = hold.clone();
        cfg.default_service(web::to(move |req: HttpRequest| {
            let load = Arc::clone(&load);
            let hold = hold.clone();
            async move {
                let host = req.connection_info().host().split(':').next().unwrap_or_default().to_string();
                // Each process reads robots.txt itself, outside the job's limit.
                let counted = req.path().starts_with("/img/");
                let mut held = None;
                if counted {
                    let agent =
                        req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    let asked = {
                        let mut by_agent = load.by_agent.lock().unwrap();
                        let n = by_agent.entry(agent.to_string()).or_default();
                        *n += 1;
                        *n
                    };
                    held = hold.filter(|h| h.agent == agent && asked >= h.from).map(|h| h.open);
                    load.arrived.notify_all();
                    let mut now = load.now.lock().unwrap();
                    let n = now.entry(host.clone()).or_default();
                    *n += 1;
                    load.most.fetch_max(*n, Ordering::SeqCst);
                }
                // A slow server, so leases are out when a process dies.
                actix_web::rt::time::sleep(Duration::from_millis(60)).await;
                if let Some(mut open) = held {
                    let _ = open.wait_for(|open| *open).await;
                }
                if counted {
                    *load.now.lock().unwrap().get_mut(&host).unwrap() -= 1;
                }
                let Some(n) = req.path().strip_prefix("/img/").and_then(|p| p.strip_suffix(".jpg")) else {
                    return HttpResponse::NotFound().finish();
                };
                let n: u8 = n.parse().unwrap_or(0);
                HttpResponse::Ok().content_type("image/jpeg").body(jpeg(n, 3_000))
            }
        }));
    })
}

/// A process of the job, in `dir`, known to the server by its folder's name. Each holds
/// two requests at most, so the three share the hosts' six.
fn process(dir: &Path, redis: &str, job: &str, list: &Path) -> Child {
    process_with(dir, redis, job, list, "")
}

/// The same, with `extra` settings lines.
fn process_with(dir: &Path, redis: &str, job: &str, list: &Path, extra: &str) -> Child {
    process_in(dir, redis, job, list, extra, &["-m", "async", "-p", "1"])
}

/// The same, in a mode (`-m`, `-p`) of its own: each process holds two requests at most.
fn process_in(dir: &Path, redis: &str, job: &str, list: &Path, extra: &str, mode: &[&str]) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let name = dir.file_name().unwrap().to_str().unwrap();
    let settings = format!(
        "SCRAPER:\n  PER_HOST_CONCURRENCY: {PER_HOST}\n  CONCURRENCY: 2\n  IMAGE_HOST: \"\"\n  USER_AGENT: {name}\n"
    );
    std::fs::write(dir.join("settings.yaml"), format!("{settings}{extra}")).unwrap();
    crate::helpers::without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
        .args(["--urls", list.to_str().unwrap(), "-o", "images", "--no-progress"])
        .args(mode)
        // 3 s: renewed every second, so a live process's leases outlast a loaded machine's
        // stalls (a lapse hands its images to another, a refetch the tests count).
        .args(["--frontier", redis, "--job", job, "--lease", "3", "--report", "r.json"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// [`finish`] for a process sent a signal: it must end soon, a hang guard kills it after
/// a minute (not a timing assertion: it ends in well under a second).
fn finish_stopped(child: Child) -> (i32, String) {
    crate::helpers::exit_within(child, Duration::from_secs(60))
}

pub fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The job's counts as a process logs them: accepted, done, ok, failed, lost, open.
fn job_line(log: &str) -> String {
    job_fields(log, &["accepted", "done", "ok", "failed", "lost", "open"]).join(" ")
}

/// These of the job's counts, as a process logs them.
pub fn job_fields(log: &str, names: &[&str]) -> Vec<String> {
    let line =
        log.lines().find(|l| l.contains("job counts (every process)")).unwrap_or_else(|| panic!("{log}"));
    let fields: HashMap<&str, &str> = line.split(", ").filter_map(|kv| kv.split_once(": ")).collect();
    names.iter().map(|f| fields[f].to_string()).collect()
}

#[test]
fn three_processes_share_a_job_and_survive_one_killed() {
    let Some(redis) = redis_server::server() else { return };
    let load = Arc::new(Load::default());
    let server = slow_server(Arc::clone(&load));
    let port = server.origin().rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    // Two hosts on one server: 127.0.0.1 and localhost.
    let urls: Vec<String> = (0..IMAGES)
        .map(|i| match i % 2 {
            0 => format!("http://127.0.0.1:{port}/img/{i}.jpg"),
            _ => format!("http://localhost:{port}/img/{i}.jpg"),
        })
        .collect();
    let list = dir.path().join("urls.txt");
    std::fs::write(&list, urls.join("\n")).unwrap();
    let job = redis_server::job("three");

    let nodes: Vec<_> = (0..3).map(|i| dir.path().join(format!("node{i}"))).collect();
    let mut children: Vec<Child> = nodes.iter().map(|d| process(d, &redis.url, &job, &list)).collect();
    // The first process dies with what it holds once it has asked for a few images.
    load.wait_for("node0", 3);
    let mut killed = children.remove(0);
    killed.kill().unwrap();
    let _ = killed.wait();
    let survivors: Vec<(i32, String)> = children.into_iter().map(finish).collect();
    for (code, log) in &survivors {
        assert_eq!(*code, 0, "{log}");
    }
    assert!(survivors[0].1.contains("appendonly no"), "warned that a Redis restart loses the job");
    let expected = format!("{IMAGES} {IMAGES} {IMAGES} 0 0 0");
    assert_eq!(job_line(&survivors[0].1), expected, "accepted, done, ok, failed, lost, open");
    assert_eq!(job_line(&survivors[1].1), expected, "the same counts on every process");

    // Every image once in some process's out dir, byte for byte.
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for node in &nodes {
        found.extend(finished_files(&node.join("images")));
    }
    for node in &nodes[1..] {
        images(&node.join("images")); // the survivors left no download in progress
    }
    for i in 0..IMAGES {
        assert!(found.get(&format!("{i}.jpg")) == Some(&jpeg(i as u8, 3_000)), "image {i}");
    }
    let fetched: usize = (0..IMAGES).map(|i| server.hits(&format!("/img/{i}.jpg"))).sum();
    assert!(fetched > IMAGES, "what the dead process held was fetched again: {fetched} fetches");
    assert!(fetched <= IMAGES + 2, "{fetched} fetches: at most the dead process's two leases again");
    let most = load.most.load(Ordering::SeqCst);
    assert!(most <= PER_HOST, "per-host limit across processes: {most} at once");

    // A process started once the job is done has nothing to do; one with another list is
    // refused.
    let late = finish(process(&dir.path().join("late"), &redis.url, &job, &list));
    assert_eq!(late.0, 0, "{}", late.1);
    let other = dir.path().join("other.txt");
    std::fs::write(&other, urls[..3].join("\n")).unwrap();
    let refused = finish(process(&dir.path().join("refused"), &redis.url, &job, &other));
    assert_eq!(refused.0, 2, "{}", refused.1);
    assert!(refused.1.contains("started with other settings"), "{}", refused.1);

    // `job status` reads the same counts from Redis, with no process running.
    let status = |job: &str| {
        let out = crate::helpers::without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
            .args(["job", "status", "--frontier", &redis.url, "--job", job])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let done = status(&job);
    assert!(done.contains("state: done\n") && done.contains(&format!("ok: {IMAGES}\n")), "{done}");
    let unknown = crate::helpers::without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
        .args(["job", "status", "never-ran", "--frontier", &redis.url])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2), "{said}");
    assert!(said.contains(&format!("no job never-ran at {}", redis.url)), "{said}");
}

/// Ctrl-C on one process of a shared job, with an image of it surely in flight (the
/// server holds every request of that process): they go back to the job untried, and the other process fetches
/// them; nothing fails, for the job or for the survivor.
fn ctrl_c_on_one_process_hands_its_work_to_the_other(mode: &[&str]) {
    const N: usize = 30;
    let Some(redis) = redis_server::server() else { return };
    let load = Arc::new(Load::default());
    let (open, held) = tokio::sync::watch::channel(false);
    let hold = Hold { agent: "node1", from: 1, open: held };
    let server = holding_server(Arc::clone(&load), Some(hold));
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (0..N).map(|i| format!("{}/img/{i}.jpg", server.origin())).collect();
    let list = dir.path().join("urls.txt");
    std::fs::write(&list, urls.join("\n")).unwrap();
    let job = redis_server::job(&format!("ctrl-c-{}", mode[1]));
    let nodes: Vec<_> = (0..2).map(|i| dir.path().join(format!("node{i}"))).collect();
    let survivor = process_in(&nodes[0], &redis.url, &job, &list, "", mode);
    let stopped = process_in(&nodes[1], &redis.url, &job, &list, "", mode);
    // An image it asked for is held by the server: in flight. (It may hold only one: the
    // host's limit, 3 across the job, leaves it one slot while the other holds two.)
    load.wait_for("node1", 1);
    // As chaos.rs sends its signals.
    let sent = Command::new("kill").args(["-INT", &stopped.id().to_string()]).status().unwrap();
    assert!(sent.success());
    // It ends with its requests still unanswered: nothing it held came back to it.
    let (stopped, stderr) = finish_stopped(stopped);
    let _ = open.send(true);
    let (code, log) = finish(survivor);
    let counts = job_fields(&log, &["accepted", "done", "ok", "failed", "lost", "open"]).join(" ");
    assert_eq!(counts, format!("{N} {N} {N} 0 0 0"), "accepted, done, ok, failed, lost, open: {log}");
    assert_eq!(code, 0, "{log}");
    assert_eq!(stopped, 130, "{stderr}");
    assert!(stderr.contains("handed back to the shared job"), "{stderr}");
    assert!(!stderr.contains("image failed"), "{stderr}");
    assert!(!stderr.contains("counts as failed"), "the stopped line calls nothing failed: {stderr}");
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for node in &nodes {
        found.extend(finished_files(&node.join("images")));
    }
    for i in 0..N {
        assert!(found.get(&format!("{i}.jpg")) == Some(&jpeg(i as u8, 3_000)), "image {i}: {log}");
    }
}

#[test]
fn ctrl_c_on_one_async_process_fails_nothing_of_the_job() {
    ctrl_c_on_one_process_hands_its_work_to_the_other(&["-m", "async", "-p", "1"]);
}

#[test]
fn ctrl_c_on_one_sync_process_fails_nothing_of_the_job() {
    ctrl_c_on_one_process_hands_its_work_to_the_other(&["-m", "sync", "-p", "2"]);
}

/// The `job` subcommand on `job` at `redis`: its exit status, stdout and stderr.
fn job_command(args: &[&str], job: &str, redis: &str) -> (i32, String, String) {
    let out = crate::helpers::without_proxy(&mut Command::new(env!("CARGO_BIN_EXE_image-scraper")))
        .arg("job")
        .args(args)
        .args([job, "--frontier", redis])
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

#[test]
fn a_finished_job_says_so_and_job_retry_has_its_failures_fetched_by_the_next_run() {
    let Some(redis) = redis_server::server() else { return };
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let later = Arc::clone(&ready);
    let server = TestServer::start_with(move |cfg| {
        let later = Arc::clone(&later);
        cfg.route(
            "/later.jpg",
            web::get().to(move || {
                let up = later.load(Ordering::SeqCst);
                async move {
                    match up {
                        true => HttpResponse::Ok().content_type("image/jpeg").body(jpeg(99, 2_000)),
                        false => HttpResponse::NotFound().finish(),
                    }
                }
            }),
        );
        cfg.route(
            "/{n}.jpg",
            web::get().to(|path: web::Path<u8>| async move {
                HttpResponse::Ok().content_type("image/jpeg").body(jpeg(path.into_inner(), 2_000))
            }),
        );
    });
    let dir = tempfile::tempdir().unwrap();
    let mut urls: Vec<String> = (0..3).map(|i| format!("{}/{i}.jpg", server.origin())).collect();
    urls.push(format!("{}/later.jpg", server.origin()));
    let list = dir.path().join("urls.txt");
    std::fs::write(&list, urls.join("\n")).unwrap();
    let job = redis_server::job("retry");
    let run = || finish(process(&dir.path().join("node"), &redis.url, &job, &list));
    let counts = |log: &str| job_fields(log, &["accepted", "done", "ok", "failed", "open"]).join(" ");

    let (code, log) = run();
    assert_eq!((code, counts(&log)), (1, "4 4 3 1 0".to_string()), "{log}");
    let retry = format!("image-scraper job retry {job} --frontier {}", redis.url);
    let (code, log) = run();
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("the job is finished, with failures") && log.contains(&retry), "{log}");
    assert_eq!(server.hits("/0.jpg"), 1, "a finished job fetches nothing");
    let (_, status, _) = job_command(&["status"], &job, &redis.url);
    assert!(status.contains(&format!("hint: {retry}")), "{status}");

    let (code, out, err) = job_command(&["retry"], &job, &redis.url);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("queued_again: 1\n"), "{out}");
    ready.store(true, Ordering::SeqCst);
    let (code, log) = run();
    assert_eq!((code, counts(&log)), (0, "4 4 4 0 0".to_string()), "{log}");
    assert_eq!(server.hits("/later.jpg"), 2, "the failed image fetched again, and only it");
    assert_eq!(server.hits("/0.jpg"), 1);
    assert_eq!(images(&dir.path().join("node/images"))["later.jpg"], jpeg(99, 2_000));

    let (code, out, _) = job_command(&["cancel"], &job, &redis.url);
    assert_eq!(code, 0, "{out}");
    let (_, log) = run();
    assert!(log.contains("the job was cancelled") && log.contains(&retry), "{log}");
    for action in ["status", "cancel", "retry"] {
        let (code, _, err) = job_command(&[action], "never-ran", &redis.url);
        assert_eq!(code, 2, "job {action} of an unknown job: {err}");
    }
}

#[test]
fn a_shared_job_fails_on_every_process_when_any_image_fails() {
    let Some(redis) = redis_server::server() else { return };
    let server = slow_server(Arc::new(Load::default()));
    let dir = tempfile::tempdir().unwrap();
    let mut urls: Vec<String> = (0..10).map(|i| format!("{}/img/{i}.jpg", server.origin())).collect();
    urls.push(format!("{}/missing.jpg", server.origin()));
    let list = dir.path().join("urls.txt");
    std::fs::write(&list, urls.join("\n")).unwrap();
    let job = redis_server::job("fails");
    let nodes: Vec<_> = (0..2).map(|i| dir.path().join(format!("node{i}"))).collect();
    let children: Vec<Child> = nodes.iter().map(|node| process(node, &redis.url, &job, &list)).collect();
    let mut share_ok = 0;
    for ((code, log), node) in children.into_iter().map(finish).zip(&nodes) {
        assert_eq!(code, 1, "whichever process met the failure: {log}");
        assert_eq!(job_line(&log), "11 11 10 1 0 0", "accepted, done, ok, failed, lost, open");
        // The table and the report hold the job's counts beside this process's share.
        assert!(log.contains("  job          10 ok      1 failed"), "{log}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(node.join("r.json")).unwrap()).unwrap();
        assert_eq!((&report["job"]["accepted"], &report["job"]["failed"]), (&11.into(), &1.into()));
        share_ok += report["images"]["ok"].as_u64().unwrap();
    }
    // At least: a lease that lapses on a loaded machine has an image fetched twice.
    assert!(share_ok >= 10, "the shares add up to the job: {share_ok}");
}

/// The built-in gallery (counted: five pages, 42 images), listing pages slow (300 ms) so
/// a walk takes a while, every request counted. Listing pages after the first are held
/// until `release` says so: what a walker that dies had asked for past page 1 cannot
/// have finished, whatever the machine's load, so where the takeover starts is the
/// mark's doing alone.
fn slow_gallery(release: tokio::sync::watch::Receiver<bool>) -> TestServer {
    TestServer::start_with(move |cfg| {
        let release = release.clone();
        cfg.default_service(web::to(move |req: HttpRequest| {
            let mut release = release.clone();
            async move {
                let origin = format!("http://{}", req.connection_info().host());
                let reply =
                    image_scraper::demo::Gallery::default().reply(req.path(), req.query_string(), &origin);
                match reply {
                    image_scraper::demo::Reply::Html(html) => {
                        if !req.path().starts_with("/p1/") {
                            // Err: the test ended (its sender dropped); answer anyway.
                            let _ = release.wait_for(|go| *go).await;
                        }
                        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
                        HttpResponse::Ok().content_type("text/html").body(html)
                    }
                    other => other.into_response(),
                }
            }
        }));
    })
}

/// Blocks until the walk's mark in Redis says every page up to `page` is finished (a
/// hang guard, not a wait: panics after a minute). The mark is written when a page
/// finishes, which may come after later pages were asked for: a request seen on the
/// server says nothing about it.
fn wait_for_mark(redis: &str, job: &str, page: u32) {
    let mut conn = redis::Client::open(redis).unwrap().get_connection().unwrap();
    let key = format!("isc:{{{job}}}:walk:mark");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mark: Option<String> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
        let done = mark.as_deref().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok());
        if done.and_then(|m| m["done"].as_u64()).is_some_and(|d| d >= u64::from(page)) {
            return;
        }
        assert!(Instant::now() < deadline, "the walk's mark never reached page {page}: {mark:?}");
        // Redis has no way to wait for a key's value; a short poll of the real state.
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn walker(dir: &Path, redis: &str, job: &str, origin: &str) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let settings =
        format!("SCRAPER:\n  URL: {origin}/\n  ITEM: cats\n  IMAGE_HOST: 127.0.0.1\n  CONCURRENCY: 2\n");
    std::fs::write(dir.join("settings.yaml"), settings).unwrap();
    // The lease: long enough that a walker on a loaded machine renews in time (a lapse
    // would hand the walk over while its walker lives), short enough for a quick takeover.
    let args = ["-o", "images", "-m", "async", "-p", "1", "--no-progress", "--frontier", redis, "--job", job];
    crate::helpers::spawn_binary(dir, &[&args[..], &["--lease", "3"]].concat())
}

#[test]
fn a_walk_of_listing_pages_is_taken_over_when_its_walker_dies() {
    let Some(redis) = redis_server::server() else { return };
    let (release, held) = tokio::sync::watch::channel(false);
    let server = slow_gallery(held);
    let dir = tempfile::tempdir().unwrap();
    let job = redis_server::job("walk");
    let nodes: Vec<_> = (0..2).map(|i| dir.path().join(format!("node{i}"))).collect();
    // The first process takes the walk; it dies once page 1 (which states the count) is
    // finished by the walk's mark and page 2 was asked for, which the server holds.
    let mut first = walker(&nodes[0], &redis.url, &job, &server.origin());
    server.wait_for_hits("/p1/", 1);
    let second = walker(&nodes[1], &redis.url, &job, &server.origin());
    server.wait_for_hits("/p2/", 1);
    wait_for_mark(&redis.url, &job, 1);
    first.kill().unwrap();
    let _ = first.wait();
    release.send_replace(true);
    let (code, log) = finish(second);
    assert_eq!(code, 0, "{log}");
    let n = image_scraper::demo::Gallery::default().image_count();
    // Accepted and done count one more: the cover's link, replaced by its thumbnail.
    assert_eq!(
        job_line(&log),
        format!("{} {} {n} 0 0 0", n + 1, n + 1),
        "accepted, done, ok, failed, lost, open"
    );
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for node in &nodes {
        found.extend(finished_files(&node.join("images")));
    }
    assert_eq!(found.len(), n as usize, "every image of the gallery in some out dir");
    // Page 1 was finished when the walker died (its mark said so): the walk went on from
    // page 2, which the dead walker had asked for, not from page 1.
    assert_eq!(server.hits("/p1/cats.html"), 1, "page 1 not walked again");
    assert!(server.hits("/p2/cats.html") <= 2, "page 2 at most once more");
    assert_eq!(server.hits("/p5/cats.html"), 1, "and to the end once");
}

/// Ctrl-C on the walker, page 2 in flight: it gives the walk up at once, the other
/// process walks on from page 2, and nothing of the job fails.
#[test]
fn ctrl_c_on_the_walker_hands_the_walk_to_the_other_process() {
    let Some(redis) = redis_server::server() else { return };
    let (release, held) = tokio::sync::watch::channel(false);
    let server = slow_gallery(held);
    let dir = tempfile::tempdir().unwrap();
    let job = redis_server::job("walk-ctrl-c");
    let nodes: Vec<_> = (0..2).map(|i| dir.path().join(format!("node{i}"))).collect();
    let first = walker(&nodes[0], &redis.url, &job, &server.origin());
    server.wait_for_hits("/p1/", 1);
    let second = walker(&nodes[1], &redis.url, &job, &server.origin());
    // Page 2 is asked for by the walker (the first, which took the walk alone) and held
    // by the server: in flight now. Page 1 is finished by the walk's mark (which can
    // come after page 2 is asked for).
    server.wait_for_hits("/p2/", 1);
    wait_for_mark(&redis.url, &job, 1);
    let sent = Command::new("kill").args(["-INT", &first.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let (stopped, stopped_log) = finish_stopped(first);
    release.send_replace(true);
    let (code, log) = finish(second);
    let n = image_scraper::demo::Gallery::default().image_count();
    let counts = job_fields(&log, &["ok", "failed", "lost", "open"]).join(" ");
    assert_eq!(counts, format!("{n} 0 0 0"), "ok, failed, lost, open: {log}");
    assert_eq!(code, 0, "{log}");
    assert_eq!(stopped, 130, "{stopped_log}");
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for node in &nodes {
        found.extend(finished_files(&node.join("images")));
    }
    assert_eq!(found.len(), n as usize, "every image of the gallery in some out dir");
    assert_eq!(server.hits("/p1/cats.html"), 1, "page 1 not walked again");
    assert_eq!(server.hits("/p5/cats.html"), 1, "and to the end once");
}

#[test]
fn a_delay_between_requests_holds_across_processes() {
    let Some(redis) = redis_server::server() else { return };
    let load = Arc::new(Load::default());
    let server = slow_server(Arc::clone(&load));
    let dir = tempfile::tempdir().unwrap();
    // Enough that the later process's share is not a matter of luck, even when it is
    // slow to start on a loaded machine: some 30 turns are left when it joins, and it
    // gets about half of those it is there for (none, starved).
    const DELAYED: usize = 36;
    let urls: Vec<String> = (0..DELAYED).map(|i| format!("{}/img/{i}.jpg", server.origin())).collect();
    let list = dir.path().join("urls.txt");
    std::fs::write(&list, urls.join("\n")).unwrap();
    let job = redis_server::job("delay");
    let node = |i: usize| {
        process_with(&dir.path().join(format!("node{i}")), &redis.url, &job, &list, "  DELAY_MS: 80\n")
    };
    // The second joins once the first is going: it must get turns too (it once came a
    // fixed time after each of the first's starts, always just too late, and got none).
    let first = node(0);
    load.wait_for("node0", 2);
    let children = [first, node(1)];
    for (code, log) in children.into_iter().map(finish) {
        assert_eq!(code, 0, "{log}");
    }
    let by_agent = load.by_agent.lock().unwrap().clone();
    assert!(by_agent.get("node1").copied().unwrap_or(0) >= 3, "the later process got turns: {by_agent:?}");
    // One host, two processes: starts 80 ms apart across both, each process's first
    // after its robots.txt answered. So the last image asked for arrives at least 35
    // delays after robots.txt was first asked for, on any machine: a late send only
    // lengthens that (the gaps themselves can shrink, and are not asserted). Each
    // process spacing only its own would take about half as long.
    let times: Vec<Instant> = (0..DELAYED).flat_map(|i| server.hit_times(&format!("/img/{i}.jpg"))).collect();
    let span = *times.iter().max().unwrap() - server.hit_times("/robots.txt")[0];
    let least = Duration::from_millis(80) * (times.len() as u32 - 1);
    assert!(span >= least, "{} images in {span:?}, less than {least:?}", times.len());
}

#[test]
fn a_job_whose_every_process_died_is_finished_by_one_started_again() {
    let Some(redis) = redis_server::server() else { return };
    let load = Arc::new(Load::default());
    let server = slow_server(Arc::clone(&load));
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<String> = (0..30).map(|i| format!("{}/img/{i}.jpg", server.origin())).collect();
    let list = dir.path().join("urls.txt");
    std::fs::write(&list, urls.join("\n")).unwrap();
    let job = redis_server::job("restart");
    let mut first: Vec<Child> =
        (0..2).map(|i| process(&dir.path().join(format!("node{i}")), &redis.url, &job, &list)).collect();
    load.wait_for("node0", 2);
    load.wait_for("node1", 2);
    for child in &mut first {
        child.kill().unwrap();
        let _ = child.wait();
    }
    let (code, log) = finish(process(&dir.path().join("node2"), &redis.url, &job, &list));
    assert_eq!(code, 0, "{log}");
    assert_eq!(job_line(&log), "30 30 30 0 0 0", "accepted, done, ok, failed, lost, open");
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..3 {
        found.extend(finished_files(&dir.path().join(format!("node{i}/images"))));
    }
    assert_eq!(found.len(), 30, "every image in some out dir");
}
