//! `DEDUPE: content` across the processes of a shared job (`--frontier`): two processes,
//! in each mode, with two out dirs or one between them, fetch a list in which many URLs
//! serve identical bytes. The job's digests in Redis keep exactly one file per content
//! across the out dirs; every other URL of that content is skipped as a duplicate of a
//! file that is there, and the counts add up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::helpers::{TestServer, images, jpeg};

/// `/same/N` all serve one JPEG, `/twin/N` all another, `/own/N` one each.
const SAME: usize = 8;
const TWIN: usize = 4;
const OWN: usize = 2;

/// Which processes (User-Agents) asked for an image so far.
#[derive(Default)]
struct Arrivals {
    /// The User-Agents seen: one per process (its folder's name).
    agents: Mutex<Vec<String>>,
    /// Told when a new process asks, so the held requests go on.
    changed: Condvar,
}

impl Arrivals {
    /// Notes `agent`'s request and waits until two processes have asked: then both hold
    /// downloads of the list's first content at once, whatever the machine's speed. A
    /// hang guard lets it go after 30 s (the test may then prove less, never hang).
    fn both_in(&self, agent: String) {
        let mut agents = self.agents.lock().unwrap();
        if !agents.contains(&agent) {
            agents.push(agent);
            self.changed.notify_all();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while agents.len() < 2 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return };
            agents = self.changed.wait_timeout(agents, left).unwrap().0;
        }
    }
}

fn server(arrivals: Arc<Arrivals>) -> TestServer {
    TestServer::start_with(move |cfg| {
        let arrivals = Arc::clone(&arrivals);
        cfg.default_service(web::to(move |req: HttpRequest| {
            let arrivals = Arc::clone(&arrivals);
            async move {
                let path = req.path().to_string();
                if path == "/robots.txt" {
                    return HttpResponse::NotFound().finish();
                }
                let agent = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let agent = agent.to_string();
                web::block(move || arrivals.both_in(agent)).await.unwrap();
                let body = match path.split('/').nth(1) {
                    Some("same") => jpeg(1, 700),
                    Some("twin") => jpeg(2, 700),
                    _ => jpeg(
                        10 + path.trim_start_matches("/own/").trim_end_matches(".jpg").parse::<u8>().unwrap(),
                        700,
                    ),
                };
                HttpResponse::Ok().content_type("image/jpeg").body(body)
            }
        }));
    })
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A process of the job in `dir` (its cwd, its report), storing into `out`.
fn process(dir: &Path, out: &str, mode: &str, redis: &str, job: &str) -> std::process::Child {
    std::fs::create_dir_all(dir).unwrap();
    let agent = dir.file_name().unwrap().to_str().unwrap();
    let settings = format!("SCRAPER:\n  CONCURRENCY: 2\n  PER_HOST_CONCURRENCY: 4\n  USER_AGENT: {agent}\n");
    std::fs::write(dir.join("settings.yaml"), settings).unwrap();
    let args =
        ["--urls", "../list.txt", "-o", out, "-m", mode, "-p", "1", "--no-progress", "--dedupe", "content"];
    crate::helpers::spawn_binary(
        dir,
        &[&args[..], &["--frontier", redis, "--job", job, "--report", "r.json"]].concat(),
    )
}

#[test]
fn two_processes_of_a_shared_job_keep_one_copy_of_each_content() {
    let Some(redis) = crate::redis_server::server() else { return };
    for mode in ["sync", "async"] {
        for shared_out in [false, true] {
            let case = format!("{mode}, {}", if shared_out { "one out dir" } else { "two out dirs" });
            let server = server(Arc::default());
            let root = tempfile::tempdir().unwrap();
            let paths = (0..SAME).map(|i| format!("/same/{i}.jpg"));
            let paths = paths.chain((0..TWIN).map(|i| format!("/twin/{i}.jpg")));
            let paths: Vec<String> = paths.chain((0..OWN).map(|i| format!("/own/{i}.jpg"))).collect();
            let list: String = paths.iter().map(|p| format!("{}{p}\n", server.origin())).collect();
            std::fs::write(root.path().join("list.txt"), list).unwrap();
            let job = format!("dedupe-{mode}-{shared_out}-{:08x}", fastrand::u32(..));
            let out = if shared_out { "../shared" } else { "images" };
            let dirs = [root.path().join("a"), root.path().join("b")];
            let children: Vec<_> = dirs.iter().map(|d| process(d, out, mode, &redis.url, &job)).collect();
            for child in children {
                let (code, stderr) = crate::helpers::exit_within(child, Duration::from_secs(120));
                assert_eq!(code, 0, "{case}: a clean run: {stderr}");
                assert!(!stderr.contains("digests"), "{case}: no trouble with the job's digests: {stderr}");
            }
            let outs: Vec<PathBuf> = match shared_out {
                true => vec![root.path().join("shared")],
                false => dirs.iter().map(|d| d.join("images")).collect(),
            };

            // Exactly one file per content across the out dirs.
            let mut copies: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for out in &outs {
                for (name, bytes) in images(out) {
                    copies.entry(sha256(&bytes)).or_default().push(out.join(name).display().to_string());
                }
            }
            assert_eq!(copies.len(), 2 + OWN, "{case}: every content stored: {copies:?}");
            assert!(copies.values().all(|files| files.len() == 1), "{case}: one copy each: {copies:?}");

            // Each process's items: the first copies ok, every other URL a duplicate of a
            // file that is there and holds its bytes.
            let (mut ok, mut duplicates, mut items) = (0, 0, 0);
            for dir in &dirs {
                let report = crate::helpers::read_report(&dir.join("r.json"));
                let own_out = dir.join(out);
                ok += report["images"]["ok"].as_u64().unwrap();
                duplicates += report["skipped_by"]["duplicate"].as_u64().unwrap_or(0);
                assert_eq!(report["images"]["failed"], 0, "{case}: {report}");
                // The job's counts, the same in both reports, say what the shares say.
                let job = &report["job"];
                assert_eq!(job["ok"], 2 + OWN, "{case}: {job}");
                assert_eq!(job["skipped"], paths.len() - 2 - OWN, "{case}: duplicates are skipped: {job}");
                assert_eq!(job["failed"], 0, "{case}: {job}");
                for item in report["items"].as_array().unwrap() {
                    items += 1;
                    let path = item["path"].as_str().unwrap();
                    let file = own_out.join(path); // an absolute path stays itself
                    let bytes =
                        std::fs::read(&file).unwrap_or_else(|e| panic!("{case}: {path} is not there: {e}"));
                    assert_eq!(Some(sha256(&bytes).as_str()), item["sha256"].as_str(), "{case}: {item}");
                    match item["status"].as_str().unwrap() {
                        "ok" => {}
                        "skipped" => assert_eq!(item["reason"], format!("duplicate of {path}"), "{case}"),
                        other => panic!("{case}: {other}: {item}"),
                    }
                }
            }
            assert_eq!(items, paths.len(), "{case}: an item per URL");
            assert_eq!(ok as usize, 2 + OWN, "{case}: one ok per content");
            assert_eq!(duplicates as usize, paths.len() - 2 - OWN, "{case}: the rest duplicates");
        }
    }
}
