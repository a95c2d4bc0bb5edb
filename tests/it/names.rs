//! `NAME` templates end to end in both modes: folders from the URL's host and path,
//! `{shard}/{index}` in list order, `{ext}` from the Content-Type, `{sha256}`, hostile URL
//! paths and a planted link that never lead outside the out dir, a re-run that finds
//! every templated file through the record, templates refused at start, templated object
//! keys in a bucket; and `DEDUPE: content`, one copy per content within a run and across
//! runs.

use std::collections::BTreeMap;
use std::path::Path;

use actix_web::{HttpRequest, HttpResponse, web};
use image_scraper::demo::{Picture, png};
use sha2::{Digest, Sha256};

use crate::helpers::{TestServer, images, jpeg, run_binary};

const MODES: [&str; 2] = ["sync", "async"];

/// Paths the list asks for: plain, nested, and hostile (encoded slashes and dots, a NUL,
/// a segment far over the length limit, the tool's own folder's name).
fn paths() -> Vec<String> {
    vec![
        "/a/b/cat.jpg".into(),
        "/a/dog.jpg".into(),
        "/x/..%2F..%2F..%2Fescape.jpg".into(),
        "/x/%2E%2E%2F%2E%2E%2Fdots.jpg".into(),
        "/n/a%00b.jpg".into(),
        format!("/long/{}.jpg", "l".repeat(300)),
        "/.image-scraper/done.jsonl".into(),
    ]
}

/// Any path is a JPEG of its own bytes; `/noext/N` a PNG, said only by its Content-Type;
/// `/same/...` one JPEG whatever the name.
fn server() -> TestServer {
    TestServer::start_with(|cfg| {
        cfg.route(
            "/noext/{n}",
            web::get().to(|n: web::Path<u32>| async move {
                HttpResponse::Ok().content_type("image/png").body(png(Picture::Own { page: 1, k: *n }))
            }),
        );
        cfg.route(
            "/same/{name}",
            web::get().to(|| async { HttpResponse::Ok().content_type("image/jpeg").body(jpeg(1, 600)) }),
        );
        cfg.default_service(web::to(|req: HttpRequest| async move {
            HttpResponse::Ok().content_type("image/jpeg").body(jpeg(seed(req.uri().path()), 600))
        }));
    })
}

/// A JPEG's seed from its path: different paths, different bytes (mostly).
fn seed(path: &str) -> u8 {
    path.bytes().fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b))
}

fn write_list(dir: &Path, server: &TestServer) {
    let list: String = paths().iter().map(|p| format!("{}{p}\n", server.origin())).collect();
    std::fs::write(dir.join("list.txt"), list).unwrap();
}

/// The images stored, folders left out.
fn files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut all = images(out);
    all.retain(|name, _| !name.ends_with('/'));
    all
}

#[test]
fn host_and_path_make_folders_inside_the_out_dir_and_a_re_run_finds_them() {
    for mode in MODES {
        let server = server();
        let dir = tempfile::tempdir().unwrap();
        write_list(dir.path(), &server);
        let args = ["-m", mode, "--urls", "list.txt", "-o", "out", "--name", "{host}/{path}"];
        let run = run_binary(dir.path(), &args);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);

        let stored = files(&dir.path().join("out"));
        let names: Vec<&str> = stored.keys().map(String::as_str).collect();
        let long = format!("127.0.0.1/long/{}.jpg", "l".repeat(146));
        let mut wanted = vec![
            "127.0.0.1/a/b/cat.jpg",
            "127.0.0.1/a/dog.jpg",
            "127.0.0.1/image-scraper/done.jsonl",
            long.as_str(),
            "127.0.0.1/n/a_b.jpg",
            "127.0.0.1/x/_.._.._escape.jpg",
            "127.0.0.1/x/_.._dots.jpg",
        ];
        wanted.sort();
        assert_eq!(names, wanted, "{mode}");
        // Nothing beside the list and the out dir: no write escaped it.
        let mut top: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        assert_eq!(top, ["list.txt", "out"], "{mode}");
        let record = std::fs::read_to_string(dir.path().join("out/.image-scraper/done.jsonl")).unwrap();
        assert!(record.contains("\"path\":\"127.0.0.1/a/b/cat.jpg\""), "{mode}: {record}");
        assert_eq!(record.lines().count(), paths().len(), "{mode}: the tool's own record untouched");

        // Again: every image is found whole under its templated path, none fetched.
        let fetched = || server.hits_under("/").values().sum::<usize>() - server.hits("/robots.txt");
        let before = fetched();
        let run = run_binary(dir.path(), &args);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        assert_eq!(fetched(), before, "{mode}: nothing fetched again");
        assert_eq!(files(&dir.path().join("out")), stored, "{mode}");
    }
}

#[test]
fn shard_and_index_follow_the_list_order() {
    for mode in MODES {
        let server = server();
        let dir = tempfile::tempdir().unwrap();
        write_list(dir.path(), &server);
        let run = run_binary(
            dir.path(),
            &["-m", mode, "--urls", "list.txt", "-o", "out", "--name", "{shard}/{index}.{ext}"],
        );
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let stored = files(&dir.path().join("out"));
        let names: Vec<&str> = stored.keys().map(String::as_str).collect();
        // The record's row has no extension: its trailing dot goes.
        assert_eq!(
            names,
            [
                "00000/000000000.jpg",
                "00000/000000001.jpg",
                "00000/000000002.jpg",
                "00000/000000003.jpg",
                "00000/000000004.jpg",
                "00000/000000005.jpg",
                "00000/000000006.jsonl",
            ],
            "{mode}"
        );
        assert_eq!(stored["00000/000000001.jpg"], jpeg(seed("/a/dog.jpg"), 600), "{mode}");
    }
}

#[test]
fn a_template_that_could_leave_the_out_dir_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list.txt"), "http://127.0.0.1:9/a.jpg\n").unwrap();
    for (template, says) in [
        ("../{path}", "`..` folder"),
        ("/tmp/{path}", "relative path"),
        ("{path", "never closed"),
        ("{nope x}", "not a placeholder"),
        ("{host}/", "file name would be empty"),
    ] {
        let run = run_binary(dir.path(), &["--urls", "list.txt", "-o", "out", "--name", template]);
        assert_eq!(run.code, 2, "{template}: {}", run.stderr);
        assert!(run.stderr.contains("--name") && run.stderr.contains(says), "{template}: {}", run.stderr);
        assert!(!dir.path().join("out").exists(), "{template}: nothing created");
    }
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn ext_from_the_content_type_and_names_by_sha256() {
    for mode in MODES {
        let server = server();
        let dir = tempfile::tempdir().unwrap();
        let list: String = ["/noext/1", "/noext/2", "/same/a.jpg", "/same/b.jpg", "/a/b/cat.jpg"]
            .iter()
            .map(|p| format!("{}{p}\n", server.origin()))
            .collect();
        std::fs::write(dir.path().join("list.txt"), list).unwrap();

        let run = run_binary(
            dir.path(),
            &["-m", mode, "--urls", "list.txt", "-o", "stems", "--name", "{stem}.{ext}"],
        );
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let stored = files(&dir.path().join("stems"));
        let names: Vec<&str> = stored.keys().map(String::as_str).collect();
        assert_eq!(names, ["1.png", "2.png", "a.jpg", "b.jpg", "cat.jpg"], "{mode}");

        let run = run_binary(
            dir.path(),
            &["-m", mode, "--urls", "list.txt", "-o", "sums", "--name", "{sha256}.{ext}"],
        );
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let stored = files(&dir.path().join("sums"));
        let one = |p: u32| png(Picture::Own { page: 1, k: p });
        let cat = jpeg(seed("/a/b/cat.jpg"), 600);
        let mut wanted = vec![
            format!("{}.png", sha256(&one(1))),
            format!("{}.png", sha256(&one(2))),
            // Two URLs, one content: one file.
            format!("{}.jpg", sha256(&jpeg(1, 600))),
            format!("{}.jpg", sha256(&cat)),
        ];
        wanted.sort();
        assert_eq!(stored.keys().cloned().collect::<Vec<_>>(), wanted, "{mode}");
        let record = std::fs::read_to_string(dir.path().join("sums/.image-scraper/done.jsonl")).unwrap();
        assert_eq!(record.lines().count(), 5, "{mode}: every URL recorded: {record}");

        // Again: each found under its name by content, nothing fetched.
        let fetched = || server.hits_under("/").values().sum::<usize>() - server.hits("/robots.txt");
        let before = fetched();
        let run = run_binary(
            dir.path(),
            &["-m", mode, "--urls", "list.txt", "-o", "sums", "--name", "{sha256}.{ext}"],
        );
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        assert_eq!(fetched(), before, "{mode}");
    }
}

#[test]
fn dedupe_content_stores_one_copy_within_a_run_and_across_runs() {
    for mode in MODES {
        let server = server();
        let dir = tempfile::tempdir().unwrap();
        let list = |paths: &[&str]| -> String {
            paths.iter().map(|p| format!("{}{p}\n", server.origin())).collect()
        };
        std::fs::write(dir.path().join("list.txt"), list(&["/same/a.jpg", "/same/b.jpg", "/a/b/cat.jpg"]))
            .unwrap();
        let args = |list: &'static str| {
            ["-m", mode, "--urls", list, "-o", "out", "--dedupe", "content", "--report", "r.json"]
                .map(String::from)
        };
        let run_with = |list: &'static str| {
            let args = args(list);
            run_binary(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>())
        };

        let run = run_with("list.txt");
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        let stored = files(&dir.path().join("out"));
        let same: Vec<&String> = stored.keys().filter(|n| *n != "cat.jpg").collect();
        assert_eq!(same.len(), 1, "{mode}: one copy of the same bytes: {:?}", stored.keys());
        let first = same[0].clone();
        assert_eq!(stored[&first], jpeg(1, 600), "{mode}");
        let report = crate::helpers::read_report(&dir.path().join("r.json"));
        assert_eq!(report["skipped_by"]["duplicate"], 1, "{mode}: {report}");
        let items = report["items"].as_array().unwrap();
        let dup = items.iter().find(|i| i["status"] == "skipped").expect("the duplicate's item");
        assert_eq!(dup["path"], first.as_str(), "{mode}: the duplicate points at the first copy");
        assert_eq!(dup["reason"], format!("duplicate of {first}"), "{mode}");
        run.assert_line("1 duplicate content");

        // A later run meets the same bytes under a new URL: found by the record's digest.
        std::fs::write(dir.path().join("more.txt"), list(&["/same/c.jpg"])).unwrap();
        let run = run_with("more.txt");
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        assert_eq!(files(&dir.path().join("out")), stored, "{mode}: nothing new stored");
        let report = crate::helpers::read_report(&dir.path().join("r.json"));
        assert_eq!(report["skipped_by"]["duplicate"], 1, "{mode}: {report}");
        assert_eq!(report["items"][0]["path"], first.as_str(), "{mode}");

        // Without it, every URL keeps its own file.
        let run = run_binary(dir.path(), &["-m", mode, "--urls", "list.txt", "-o", "plain"]);
        assert_eq!(run.code, 0, "{mode}: {}", run.stderr);
        assert_eq!(files(&dir.path().join("plain")).len(), 3, "{mode}");
    }
}

#[test]
fn a_link_planted_where_a_template_folder_goes_is_never_followed() {
    for mode in MODES {
        let server = server();
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("list.txt"), format!("{}/a/b/cat.jpg\n", server.origin())).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("out/127.0.0.1")).unwrap();
        let run = run_binary(
            dir.path(),
            &["-m", mode, "--urls", "list.txt", "-o", "out", "--name", "{host}/{path}"],
        );
        assert_eq!(run.code, 1, "{mode}: the image fails: {}", run.stderr);
        assert!(run.stderr.contains("not a folder"), "{mode}: {}", run.stderr);
        assert_eq!(
            std::fs::read_dir(elsewhere.path()).unwrap().count(),
            0,
            "{mode}: nothing written through it"
        );
    }
}

#[test]
fn a_bucket_takes_templated_names_as_object_keys_and_a_re_run_finds_them() {
    let Some(s3) = crate::s3::server() else { return };
    for mode in MODES {
        let server = server();
        let bucket = s3.new_bucket(&format!("names-{mode}"));
        let dir = tempfile::tempdir().unwrap();
        let list: String = ["/a/b/cat.jpg", "/noext/1", "/a/dog.jpg"]
            .iter()
            .map(|p| format!("{}{p}\n", server.origin()))
            .collect();
        std::fs::write(dir.path().join("list.txt"), list).unwrap();
        let out = format!("s3://{}/pre", bucket.bucket());
        let args = ["-m", mode, "--urls", "list.txt", "-o", &out, "--name", "x/{stem}.{ext}"];
        let run = || {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_image-scraper"));
            command.args(args).envs(s3.env());
            crate::helpers::run_command(&mut command, dir.path(), &[])
        };
        let first = run();
        assert_eq!(first.code, 0, "{mode}: {}", first.stderr);
        let objects: Vec<String> = bucket.list("pre/").unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            objects,
            ["pre/.image-scraper/done.jsonl", "pre/x/1.png", "pre/x/cat.jpg", "pre/x/dog.jpg"],
            "{mode}"
        );
        assert_eq!(
            bucket.get("pre/x/1.png").unwrap().unwrap(),
            png(Picture::Own { page: 1, k: 1 }),
            "{mode}"
        );
        let fetched = || server.hits_under("/").values().sum::<usize>() - server.hits("/robots.txt");
        let before = fetched();
        let again = run();
        assert_eq!(again.code, 0, "{mode}: {}", again.stderr);
        assert_eq!(fetched(), before, "{mode}: found in the bucket, nothing fetched again");
    }
}

#[test]
fn two_processes_of_a_shared_job_name_each_row_by_its_index() {
    let (Some(s3), Some(redis)) = (crate::s3::server(), crate::redis_server::server()) else { return };
    let server = server();
    let bucket = s3.new_bucket("names-shared");
    let out = format!("s3://{}/pre", bucket.bucket());
    let root = tempfile::tempdir().unwrap();
    const ROWS: usize = 12;
    // Every row's file is `cat.jpg`: only the template tells them apart.
    let list: String = (0..ROWS).map(|i| format!("{}/r{i}/cat.jpg\n", server.origin())).collect();
    std::fs::write(root.path().join("list.txt"), list).unwrap();
    let job = format!("names-{:08x}", fastrand::u32(..));
    // One process of each mode: the index travels with the row through Redis either way.
    let children: Vec<_> = ["sync", "async"]
        .iter()
        .map(|mode| {
            let dir = root.path().join(mode);
            std::fs::create_dir_all(&dir).unwrap();
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_image-scraper"));
            crate::helpers::without_proxy(&mut command)
                .args(["--urls", "../list.txt", "-o", &out, "-m", mode, "-p", "1", "--no-progress"])
                .args([
                    "--name",
                    "{shard}/{index}.{ext}",
                    "--frontier",
                    redis.url.as_str(),
                    "--job",
                    job.as_str(),
                ])
                .current_dir(&dir)
                .envs(s3.env())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let images: Vec<String> = bucket
        .list("pre/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !k.starts_with("pre/.image-scraper/"))
        .collect();
    let wanted: Vec<String> = (0..ROWS).map(|i| format!("pre/00000/{i:09}.jpg")).collect();
    assert_eq!(images, wanted);
    for i in 0..ROWS {
        let body = bucket.get(&format!("pre/00000/{i:09}.jpg")).unwrap().unwrap();
        assert_eq!(body, jpeg(seed(&format!("/r{i}/cat.jpg")), 600), "row {i} under its own index");
    }
}
