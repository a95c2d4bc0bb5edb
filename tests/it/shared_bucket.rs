//! One bucket, one shared job, two processes (real SeaweedFS, real redis-server): images
//! whose URLs end in the same file name go to distinct objects, none written over by the
//! other process, each byte for byte; each process keeps its own record, and a later run
//! reads them all.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::helpers::{TestServer, jpeg, read_report};
use crate::redis_server;
use crate::s3::server;

const IMAGES: u8 = 24;

/// Image `i` of the gallery: `/a{i}/cat.jpg`, every one named alike.
fn image(i: u8) -> Vec<u8> {
    jpeg(100 + i, 4_000)
}

/// Every image after a short wait, so both processes hold some at once.
fn cats() -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.default_service(web::to(|req: HttpRequest| async move {
            let i = req.path().strip_prefix("/a").and_then(|p| p.strip_suffix("/cat.jpg"));
            let Some(i) = i.and_then(|i| i.parse::<u8>().ok()) else {
                return HttpResponse::NotFound().finish();
            };
            actix_web::rt::time::sleep(Duration::from_millis(40)).await;
            HttpResponse::Ok().content_type("image/jpeg").body(image(i))
        }));
    })
}

fn run(dir: &std::path::Path, out: &str, extra: &[&str], env: &[(String, String)]) -> Command {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("settings.yaml"), "SCRAPER:\n  IMAGE_HOST: \"\"\n  CONCURRENCY: 2\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_image-scraper"));
    command
        .args([
            "--urls",
            "../list.txt",
            "-o",
            out,
            "-m",
            "async",
            "-p",
            "1",
            "--no-progress",
            "--report",
            "r.json",
        ])
        .args(extra)
        .current_dir(dir)
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn two_processes_of_a_job_fill_one_bucket_and_never_write_one_name_twice() {
    let (Some(s3), Some(redis)) = (server(), redis_server::server()) else { return };
    let site = cats();
    let bucket = s3.new_bucket("shared");
    let out = format!("s3://{}/cats", bucket.bucket());
    let root = tempfile::tempdir().unwrap();
    let list: String = (0..IMAGES).map(|i| format!("{}/a{i}/cat.jpg\n", site.origin())).collect();
    std::fs::write(root.path().join("list.txt"), list).unwrap();
    let job = format!("bucket-{:08x}", fastrand::u32(..));
    let shared = ["--frontier", redis.url.as_str(), "--job", job.as_str()];

    let children: Vec<_> = ["one", "two"]
        .iter()
        .map(|name| run(&root.path().join(name), &out, &shared, &s3.env()).spawn().unwrap())
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
    }

    // Every image once, in an object of its own, byte for byte: none written over.
    let objects: BTreeMap<String, u64> = bucket.list("cats/").unwrap().into_iter().collect();
    let (records, images): (Vec<&String>, Vec<&String>) =
        objects.keys().partition(|k| k.starts_with("cats/.image-scraper/"));
    assert_eq!(images.len(), usize::from(IMAGES), "one object per image: {objects:?}");
    let stored: BTreeSet<Vec<u8>> = images.iter().map(|k| bucket.get(k).unwrap().unwrap()).collect();
    let expected: BTreeSet<Vec<u8>> = (0..IMAGES).map(image).collect();
    assert!(stored == expected, "an image was lost or written over: {objects:?}");
    assert_eq!(records.len(), 2, "a record per process: {records:?}");

    // A later run (not shared) reads both records: everything is there, nothing fetched.
    let fetched = || (0..IMAGES).map(|i| site.hits(&format!("/a{i}/cat.jpg"))).sum::<usize>();
    let before = fetched();
    let later = root.path().join("later");
    let output = run(&later, &out, &[], &s3.env()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(read_report(&later.join("r.json"))["images"]["skipped"], u64::from(IMAGES), "{stderr}");
    assert_eq!(fetched(), before, "a stored image fetched again");
}
