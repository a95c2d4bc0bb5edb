//! The shared job as the issue describes it, end to end: a gallery of 20 listing pages of
//! 15 images each on two hosts (127.0.0.1 and localhost, one server), with images listed
//! again on the next page, 404s and robots-disallowed images, every response 50-150 ms;
//! three processes (`-p 2`, `--lease 2`), one SIGKILLed once about a third of the images
//! were asked for. What the survivors say, what Redis holds, what the out dirs hold and
//! what the server saw must all agree.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};

use crate::distributed::{finish, job_fields};
use crate::helpers::{TestServer, jpeg, tree};
use crate::redis_server;

const PAGES: usize = 20;
const PER_PAGE: usize = 15;
/// Each page starts this far after the previous one: its last two images are the next
/// page's first two.
const STRIDE: usize = 13;
const IMAGES: usize = (PAGES - 1) * STRIDE + PER_PAGE;
const PER_HOST: usize = 3;
const DELAY_MS: u64 = 60;
/// What one process holds at most: `-p 2` x `CONCURRENCY: 2`.
const CAPACITY: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Ok,
    Missing,
    Private,
}

fn kind(k: usize) -> Kind {
    match k {
        _ if k % 37 == 5 => Kind::Missing,
        _ if k % 29 == 7 => Kind::Private,
        _ => Kind::Ok,
    }
}

fn body(k: usize) -> Vec<u8> {
    jpeg(k as u8, 3_000 + k)
}

/// Image `k`'s URL: even ones on 127.0.0.1, odd ones on localhost.
fn url(k: usize, port: &str) -> String {
    let host = if k.is_multiple_of(2) { "127.0.0.1" } else { "localhost" };
    let dir = match kind(k) {
        Kind::Ok => "img",
        Kind::Missing => "missing",
        Kind::Private => "private",
    };
    format!("http://{host}:{port}/{dir}/{k}.jpg")
}

fn page(n: usize, port: &str) -> String {
    let first = (n - 1) * STRIDE;
    let tags: String =
        (first..first + PER_PAGE).map(|k| format!("<img src=\"{}\">\n", url(k, port))).collect();
    format!("<html><body>{tags}<li class=\"pag-text\">Page {n} of {PAGES}</li></body></html>")
}

/// What the server saw of image requests, per host: in flight now, the most at once,
/// when each arrived.
#[derive(Default)]
struct Seen {
    /// Image requests being served now, per host.
    now: Mutex<HashMap<String, usize>>,
    /// The most served at once to one host.
    most: AtomicUsize,
    /// When each image request arrived, per host.
    arrivals: Mutex<HashMap<String, Vec<Instant>>>,
    /// When robots.txt was first asked for, per host: no image of the host is asked for
    /// before an answer to it.
    robots: Mutex<HashMap<String, Instant>>,
    /// Signalled at each arrival, so a test waits for a number of them, not polls.
    arrived: Condvar,
}

impl Seen {
    /// Blocks until `n` image requests have arrived (a hang guard, not a wait: panics
    /// after a minute).
    fn wait_for(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut arrivals = self.arrivals.lock().unwrap();
        while arrivals.values().map(Vec::len).sum::<usize>() < n {
            let left = deadline.checked_duration_since(Instant::now()).expect("the job never got that far");
            arrivals = self.arrived.wait_timeout(arrivals, left).unwrap().0;
        }
    }
}

fn gallery(seen: Arc<Seen>, port: Arc<Mutex<String>>) -> TestServer {
    TestServer::start_with(move |cfg| {
        let (seen, port) = (Arc::clone(&seen), Arc::clone(&port));
        cfg.default_service(web::to(move |req: HttpRequest| {
            let (seen, port) = (Arc::clone(&seen), port.lock().unwrap().clone());
            async move {
                let path = req.path().to_string();
                let host = req.connection_info().host().split(':').next().unwrap_or_default().to_string();
                if path == "/robots.txt" {
                    seen.robots.lock().unwrap().entry(host).or_insert_with(Instant::now);
                    return HttpResponse::Ok().body("User-agent: *\nDisallow: /private/\n");
                }
                if let Some(n) = path.strip_prefix("/p").and_then(|p| p.strip_suffix("/cats.html")) {
                    let n: usize = n.parse().unwrap_or(0);
                    actix_web::rt::time::sleep(Duration::from_millis(50 + (n as u64 * 31) % 101)).await;
                    return match (1..=PAGES).contains(&n) {
                        true => HttpResponse::Ok().content_type("text/html").body(page(n, &port)),
                        false => HttpResponse::NotFound().finish(),
                    };
                }
                let k: usize = path
                    .rsplit('/')
                    .next()
                    .and_then(|f| f.strip_suffix(".jpg"))
                    .and_then(|k| k.parse().ok())
                    .unwrap_or(0);
                seen.arrivals.lock().unwrap().entry(host.clone()).or_default().push(Instant::now());
                seen.arrived.notify_all();
                {
                    let mut now = seen.now.lock().unwrap();
                    let n = now.entry(host.clone()).or_default();
                    *n += 1;
                    seen.most.fetch_max(*n, Ordering::SeqCst);
                }
                actix_web::rt::time::sleep(Duration::from_millis(50 + (k as u64 * 37) % 101)).await;
                *seen.now.lock().unwrap().get_mut(&host).unwrap() -= 1;
                match path.starts_with("/img/") {
                    true => HttpResponse::Ok().content_type("image/jpeg").body(body(k)),
                    false => HttpResponse::NotFound().finish(),
                }
            }
        }));
    })
}

fn process(dir: &Path, origin: &str, redis: &str, job: &str, image_host: &str) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let settings = format!(
        "SCRAPER:\n  URL: {origin}/\n  ITEM: cats\n  IMAGE_HOST: \"{image_host}\"\n  CONCURRENCY: 2\n  PER_HOST_CONCURRENCY: {PER_HOST}\n  DELAY_MS: {DELAY_MS}\n"
    );
    std::fs::write(dir.join("settings.yaml"), settings).unwrap();
    Command::new(env!("CARGO_BIN_EXE_image-scraper"))
        .args(["-o", "images", "-m", "async", "-p", "2", "--no-progress"])
        // 3 s, as in distributed.rs: no lapse of a live process's leases under load.
        .args(["--frontier", redis, "--job", job, "--lease", "3"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The job's counts as a process logs them.
fn job_counts(log: &str) -> String {
    let names = ["accepted", "done", "ok", "failed", "skipped", "lost", "open"];
    let values = job_fields(log, &names);
    names.iter().zip(values).map(|(name, value)| format!("{name} {value}")).collect::<Vec<_>>().join(", ")
}

#[test]
fn three_processes_walk_a_gallery_on_two_hosts_and_survive_one_killed() {
    let Some(redis) = redis_server::server() else { return };
    let seen = Arc::new(Seen::default());
    let port = Arc::new(Mutex::new(String::new()));
    let server = gallery(Arc::clone(&seen), Arc::clone(&port));
    *port.lock().unwrap() = server.origin().rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let job = redis_server::job("gallery");
    let nodes: Vec<_> = (0..3).map(|i| dir.path().join(format!("node{i}"))).collect();
    let mut children: Vec<Child> =
        nodes.iter().map(|d| process(d, &server.origin(), &redis.url, &job, "")).collect();
    // A process's node name ends with its pid: which out dir a done record points to.
    let dirs: HashMap<String, &Path> =
        children.iter().zip(&nodes).map(|(c, d)| (c.id().to_string(), d.as_path())).collect();

    // About a third of the images asked for: the first process dies with what it holds.
    let third = IMAGES / 3;
    seen.wait_for(third);
    let mut killed = children.remove(0);
    killed.kill().unwrap();
    let _ = killed.wait();
    let survivors: Vec<(i32, String)> = children.into_iter().map(finish).collect();

    let (missing, private) = (
        (0..IMAGES).filter(|&k| kind(k) == Kind::Missing).count(),
        (0..IMAGES).filter(|&k| kind(k) == Kind::Private).count(),
    );
    let ok = IMAGES - missing - private;
    let expected = format!(
        "accepted {IMAGES}, done {IMAGES}, ok {ok}, failed {missing}, skipped {private}, lost 0, open 0"
    );
    for (code, log) in &survivors {
        assert_eq!(*code, 1, "the job's 404s fail every process: {log}");
        assert_eq!(job_counts(log), expected, "{log}");
    }

    // Redis: nothing open, queued or leased; one done record per image.
    let status = Command::new(env!("CARGO_BIN_EXE_image-scraper"))
        .args(["job", "status", "--frontier", &redis.url, "--job", &job])
        .output()
        .unwrap();
    let status = String::from_utf8(status.stdout).unwrap();
    for line in ["state: done", "open: 0", "queued: 0", "leased: 0"] {
        assert!(status.lines().any(|l| l == line), "{line}: {status}");
    }
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let records: HashMap<String, String> =
        redis::cmd("HGETALL").arg(format!("isc:{{{job}}}:done")).query(&mut conn).unwrap();
    let records: Vec<serde_json::Value> =
        records.values().map(|r| serde_json::from_str(r).unwrap()).collect();
    let mut urls: Vec<&str> = records.iter().map(|r| r["url"].as_str().unwrap()).collect();
    urls.sort();
    urls.dedup();
    assert_eq!((records.len(), urls.len()), (IMAGES, IMAGES), "one done record per image");
    // A stored image's record says where: that process's out dir holds it, byte for byte.
    for record in records.iter().filter(|r| r["status"] == "ok") {
        let (path, node) = (record["path"].as_str().unwrap(), record["node"].as_str().unwrap());
        let dir = dirs[node.rsplit('-').next().unwrap()];
        let k: usize = path.strip_suffix(".jpg").unwrap().parse().unwrap();
        assert_eq!(record["bytes"], body(k).len(), "{record}");
        assert!(std::fs::read(dir.join("images").join(path)).unwrap() == body(k), "{record}");
    }
    assert_eq!(records.iter().filter(|r| r["status"] == "ok").count(), ok);

    // Every image byte for byte in some out dir; none of the others anywhere.
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for node in &nodes {
        let mut files = tree(&node.join("images"));
        files.retain(|name, _| !name.starts_with(".image-scraper/") && !name.ends_with('/'));
        found.extend(files);
    }
    for k in 0..IMAGES {
        let file = found.get(&format!("{k}.jpg"));
        match kind(k) {
            Kind::Ok => assert!(file == Some(&body(k)), "image {k}"),
            _ => assert!(file.is_none(), "image {k} is {:?}", kind(k)),
        }
    }
    assert_eq!(found.len(), ok, "{:?}", found.keys().collect::<Vec<_>>());

    // The server's view: each image fetched once but for what the dead process held;
    // robots.txt obeyed; per-host limit and spacing across all three.
    let fetched: usize =
        (0..IMAGES).filter(|&k| kind(k) == Kind::Ok).map(|k| server.hits(&format!("/img/{k}.jpg"))).sum();
    assert!(
        fetched <= ok + CAPACITY,
        "{fetched} fetches of {ok} images: at most the dead process's {CAPACITY} again"
    );
    let private_hits: usize = (0..IMAGES).map(|k| server.hits(&format!("/private/{k}.jpg"))).sum();
    assert_eq!(private_hits, 0, "robots.txt disallows /private/");
    let most = seen.most.load(Ordering::SeqCst);
    assert!(most <= PER_HOST, "{most} requests at once to one host across processes");
    // The job's gate starts requests to a host DELAY_MS apart across all processes, the
    // first image after robots.txt's answer: the last image asked for arrives at least
    // that many delays after robots.txt was first asked for, on any machine (a late send
    // lengthens the span; only the gaps, not asserted, can shrink). Three processes each
    // spacing only their own would take about half that, their per-host limit the bound.
    let robots = seen.robots.lock().unwrap().clone();
    for (host, times) in seen.arrivals.lock().unwrap().iter() {
        let last = *times.iter().max().unwrap();
        let span = last - robots[host];
        let least = Duration::from_millis(DELAY_MS) * (times.len() as u32 - 1);
        assert!(span >= least, "{host}: {} images in {span:?}, less than {least:?}", times.len());
    }

    // Later: one process with the same settings ends at once; one with others is refused.
    let before = server.all_times().len();
    let (code, log) = finish(process(&dir.path().join("late"), &server.origin(), &redis.url, &job, ""));
    assert_eq!((code, job_counts(&log)), (1, expected.clone()), "{log}");
    // Ends at once: it asked the job, found nothing open, and fetched nothing (not even
    // robots.txt or page 1 again).
    assert_eq!(server.all_times().len(), before, "a finished job fetches nothing: {log}");
    let (code, log) =
        finish(process(&dir.path().join("other"), &server.origin(), &redis.url, &job, "127.0.0.1"));
    assert_eq!(code, 2, "{log}");
}
