//! What any worker kind must do, run for each kind: a new kind of worker is added to
//! [`KINDS`] and must pass every test here. A probe stands in for the Coordinator; a
//! local server plays each case.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use futures_util::stream::{self, StreamExt};
use image_scraper::fetch::options::{FetchOptions, Retries};
use image_scraper::html::ExtractRules;
use image_scraper::net::politeness::HostGate;
use image_scraper::outdir::OutDir;
use image_scraper::robots::Rules;
use image_scraper::store::folder::FolderStore;
use image_scraper::work::{Done, ImageTask, PageKind, RunTask, Task, TaskError, TaskFinished};
use image_scraper::workers::blocking::Blocking;
use image_scraper::workers::downloader::{self, Downloader};
use slog::{Logger, o};
use url::Url;

use crate::helpers::{TestServer, gallery_html, jpeg, serve_page};
use crate::workers::{Probe, WaitFor};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Async,
    Sync,
}

const KINDS: [Kind; 2] = [Kind::Async, Kind::Sync];

/// A worker of `kind` reporting to a fresh probe; stopped when dropped.
struct Worker {
    tasks: Recipient<RunTask>,
    probe: Addr<Probe>,
    arbiter: Option<Arbiter>,
}

impl Worker {
    fn start(kind: Kind, opts: Arc<FetchOptions>) -> Self {
        let probe = Probe::default().start();
        let report = probe.clone().recipient::<TaskFinished>();
        let log = Logger::root(slog::Discard, o!());
        match kind {
            Kind::Async => {
                let arbiter = Arbiter::new();
                let worker = Downloader::start_in_arbiter(&arbiter.handle(), move |_| {
                    Downloader::new(opts, downloader::tls_config(&crate::helpers::plain_trust()), report, log)
                });
                Self { tasks: worker.recipient(), probe, arbiter: Some(arbiter) }
            }
            Kind::Sync => {
                let agent = Blocking::agents(&opts, 2, crate::helpers::plain_trust().ureq_config()).unwrap();
                let pool = SyncArbiter::start(2, move || {
                    Blocking::new(agent.clone(), Arc::clone(&opts), report.clone(), log.clone())
                });
                Self { tasks: pool.recipient(), probe, arbiter: None }
            }
        }
    }

    /// Hands the worker `tasks` and waits for as many answers, sorted by id.
    async fn run(&self, tasks: Vec<RunTask>) -> Vec<TaskFinished> {
        let n = tasks.len();
        for task in tasks {
            self.tasks.do_send(task);
        }
        let mut results = self.probe.send(WaitFor(n)).await.unwrap();
        results.sort_by_key(|r| r.id);
        results
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(arbiter) = self.arbiter.take() {
            arbiter.stop();
        }
    }
}

fn options(out: &OutDir, change: impl FnOnce(&mut FetchOptions)) -> Arc<FetchOptions> {
    let extract = ExtractRules {
        image_selector: "img".into(),
        attributes: vec!["src".into()],
        image_host: String::new(),
        page_count_selector: "li.pag-text".into(),
        linked_images: Default::default(),
        link_selector: String::new(),
        next_selector: Some(String::new()),
        detail: Default::default(),
    };
    let mut opts = FetchOptions {
        timeout: Duration::from_secs(10),
        concurrency: 4,
        ..FetchOptions::new(Arc::new(FolderStore::fresh(out.clone())), extract)
    };
    change(&mut opts);
    Arc::new(opts)
}

/// A worker of `kind` with options changed by `change`, writing into an out dir of its
/// own (which lives as long as the returned guard).
fn fresh(kind: Kind, change: impl FnOnce(&mut FetchOptions)) -> (tempfile::TempDir, OutDir, Worker) {
    let dir = tempfile::tempdir().unwrap();
    let out = OutDir::open(dir.path()).unwrap();
    let worker = Worker::start(kind, options(&out, change));
    (dir, out, worker)
}

fn image(id: u64, origin: &str, path: &str) -> RunTask {
    let url = Url::parse(&format!("{origin}{path}")).unwrap();
    let name = path.rsplit('/').next().unwrap().to_string();
    RunTask { id, task: Task::Image(ImageTask { url, name, overwrite: false, referer: None }) }
}

fn url(origin: &str, path: &str) -> Url {
    Url::parse(&format!("{origin}{path}")).unwrap()
}

/// Every case's routes on one server.
fn server(flaky_failures: usize) -> TestServer {
    let flaky = Arc::new(AtomicUsize::new(0));
    TestServer::start_with(move |cfg| {
        serve_page(cfg, "/page.html", gallery_html(&["/a.jpg".into(), "sub/b.jpg".into()], 7));
        let flaky = Arc::clone(&flaky);
        cfg.route(
            "/a.jpg",
            web::get().to(|| async { HttpResponse::Ok().content_type("image/jpeg").body(jpeg(1, 5_000)) }),
        )
        .route(
            "/flaky.jpg",
            web::get().to(move || {
                let fail = flaky.fetch_add(1, Ordering::SeqCst) < flaky_failures;
                async move {
                    match fail {
                        true => HttpResponse::InternalServerError().finish(),
                        false => HttpResponse::Ok().content_type("image/jpeg").body(jpeg(2, 3_000)),
                    }
                }
            }),
        )
        .route(
            "/cut.jpg",
            web::get().to(|| async {
                let first = stream::once(async {
                    Ok::<_, std::io::Error>(Bytes::from(jpeg(3, 50_000)[..5_000].to_vec()))
                });
                let error = stream::once(async {
                    actix_rt::time::sleep(Duration::from_millis(100)).await;
                    Err(std::io::Error::other("connection broken"))
                });
                HttpResponse::Ok()
                    .content_type("image/jpeg")
                    .no_chunking(50_000)
                    .streaming(first.chain(error))
            }),
        )
        .route(
            "/moved.jpg",
            web::get().to(|| async {
                HttpResponse::MovedPermanently().insert_header((header::LOCATION, "/a.jpg")).finish()
            }),
        )
        .route(
            "/ftp.jpg",
            web::get().to(|| async {
                HttpResponse::Found().insert_header((header::LOCATION, "ftp://127.0.0.1:1/x")).finish()
            }),
        )
        .route("/r404/robots.txt", web::get().to(|| async { HttpResponse::NotFound().finish() }))
        .route("/r500/robots.txt", web::get().to(|| async { HttpResponse::InternalServerError().finish() }))
        .route(
            "/robots.txt",
            web::get().to(|| async { HttpResponse::Ok().body("User-agent: *\nDisallow: /private/\n") }),
        );
    })
}

fn temp_files(out: &OutDir) -> usize {
    std::fs::read_dir(out.tmp_dir()).unwrap().count()
}

#[actix::test]
async fn a_page_is_scanned_and_an_image_saved() {
    let server = server(0);
    for kind in KINDS {
        let (_dir, out, worker) = fresh(kind, |_| {});
        let origin = server.origin();
        let page = RunTask {
            id: 1,
            task: Task::Page { number: 1, url: url(&origin, "/page.html"), kind: PageKind::Listing },
        };
        let results = worker.run(vec![page, image(2, &origin, "/a.jpg")]).await;
        match &results[0].outcome {
            Ok(Done::Page(scan, _)) => {
                let urls: Vec<String> = scan.images.iter().map(|f| f.url.to_string()).collect();
                assert_eq!(
                    urls,
                    [url(&origin, "/a.jpg").to_string(), url(&origin, "/sub/b.jpg").to_string()]
                );
                assert_eq!(scan.page_count, Some(7), "{kind:?}");
            }
            other => panic!("{kind:?}: {other:?}"),
        }
        assert!(
            matches!(&results[1].outcome, Ok(Done::Image { bytes: 5_000, name, sha256: None, .. }) if name == "a.jpg"),
            "{kind:?}: {:?}",
            results[1].outcome
        );
        assert_eq!(std::fs::read(out.final_path("a.jpg")).unwrap(), jpeg(1, 5_000), "{kind:?}");
        assert_eq!((results[0].attempts, results[1].attempts), (1, 1), "{kind:?}");
    }
}

#[actix::test]
async fn a_detail_page_gets_the_detail_scan() {
    let server = server(0);
    for kind in KINDS {
        let (_dir, _out, worker) = fresh(kind, |_| {});
        let origin = server.origin();
        let page =
            |id, kind| RunTask { id, task: Task::Page { number: 1, url: url(&origin, "/page.html"), kind } };
        let results = worker.run(vec![page(1, PageKind::Listing), page(2, PageKind::Detail)]).await;
        let scans: Vec<_> = results
            .iter()
            .map(|r| match &r.outcome {
                Ok(Done::Page(scan, _)) => (scan.images.len(), scan.page_count),
                other => panic!("{kind:?}: {other:?}"),
            })
            .collect();
        // The same page: as a listing, both images and its count; as a detail page, its
        // largest image (none declares a size: the first) and no count.
        assert_eq!(scans, [(2, Some(7)), (1, None)], "{kind:?}");
    }
}

#[actix::test]
async fn robots_txt_4xx_allows_all_and_5xx_is_a_failure() {
    let server = server(0);
    for kind in KINDS {
        let (_dir, _out, worker) = fresh(kind, |_| {});
        let origin = server.origin();
        let robots = |id, path: &str| RunTask { id, task: Task::Robots { url: url(&origin, path) } };
        let results = worker
            .run(vec![robots(1, "/r404/robots.txt"), robots(2, "/r500/robots.txt"), robots(3, "/robots.txt")])
            .await;
        assert_eq!(results[0].outcome, Ok(Done::Robots(Rules::AllowAll)), "{kind:?}");
        assert_eq!(results[1].outcome, Err(TaskError::status(500)), "{kind:?}");
        match &results[2].outcome {
            Ok(Done::Robots(rules)) => assert!(!rules.allows(&url(&origin, "/private/x.jpg")), "{kind:?}"),
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}

#[actix::test]
async fn failures_are_retried_and_attempts_counted() {
    for kind in KINDS {
        let server = server(2);
        let retries = Retries { times: 2, base: Duration::from_millis(10), max_wait: Duration::from_secs(1) };
        let (_dir, _out, worker) = fresh(kind, |o| o.retries = retries);
        let results = worker.run(vec![image(1, &server.origin(), "/flaky.jpg")]).await;
        assert!(
            matches!(results[0].outcome, Ok(Done::Image { bytes: 3_000, .. })),
            "{kind:?}: {:?}",
            results[0]
        );
        assert_eq!(results[0].attempts, 3, "{kind:?}");
        assert_eq!(server.hits("/flaky.jpg"), 3);
    }
}

#[actix::test]
async fn the_gate_spaces_requests_to_a_host() {
    let server = server(0);
    for kind in KINDS {
        let gate = Arc::new(HostGate::new(Some(Duration::from_millis(200)), Duration::ZERO));
        let (_dir, _out, worker) = fresh(kind, |o| o.gate = gate);
        let before = server.hit_times("/a.jpg").len();
        let handed = std::time::Instant::now();
        let tasks = (0..3).map(|i| image(i, &server.origin(), "/a.jpg")).collect();
        worker.run(tasks).await;
        let times = &server.hit_times("/a.jpg")[before..];
        assert_eq!(times.len(), 3);
        // Every start comes after the tasks were handed over and the third two intervals
        // after the first, so the third arrives at least that long after the handing
        // over, however late a loaded machine sends any of them (the gaps themselves
        // have no such bound; the exact spacing is tested on a paused clock, in
        // `fetch/mod.rs`). Without the gate the three arrive within milliseconds.
        let last = times[2] - handed;
        assert!(last >= Duration::from_millis(400), "{kind:?}: the third after {last:?}");
    }
}

#[actix::test]
async fn a_cut_body_fails_and_leaves_nothing() {
    let server = server(0);
    for kind in KINDS {
        let (_dir, out, worker) = fresh(kind, |_| {});
        let results = worker.run(vec![image(1, &server.origin(), "/cut.jpg")]).await;
        assert!(
            matches!(results[0].outcome, Err(TaskError::Transfer(_))),
            "{kind:?}: {:?}",
            results[0].outcome
        );
        assert!(!out.final_path("cut.jpg").exists() && temp_files(&out) == 0, "{kind:?}");
    }
}

#[actix::test]
async fn redirects_are_handed_back_not_followed() {
    let server = server(0);
    for kind in KINDS {
        let (_dir, _out, worker) = fresh(kind, |_| {});
        let origin = server.origin();
        let results = worker.run(vec![image(1, &origin, "/moved.jpg"), image(2, &origin, "/ftp.jpg")]).await;
        assert_eq!(results[0].outcome, Ok(Done::Moved(url(&origin, "/a.jpg"))), "{kind:?}");
        assert!(matches!(results[1].outcome, Err(TaskError::RedirectNotHttp(_))), "{kind:?}");
    }
}

#[actix::test]
async fn a_cancel_wakes_a_worker_waiting_at_the_gate() {
    let server = server(0);
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::open(dir.path()).unwrap();
        // One request an hour: the second task waits at the gate until the cancel wakes
        // it (or, broken, until the probe's guard fails the test).
        let gate = Arc::new(HostGate::new(Some(Duration::from_secs(3600)), Duration::ZERO));
        let mut held = gate.held();
        let opts = options(&out, |o| o.gate = gate);
        let cancel = opts.cancel.clone();
        let worker = Worker::start(kind, opts);
        let before = server.hits("/a.jpg");
        worker.tasks.do_send(image(1, &server.origin(), "/a.jpg"));
        let first = worker.probe.send(WaitFor(1)).await.unwrap();
        assert!(matches!(first[0].outcome, Ok(Done::Image { .. })), "{kind:?}: {:?}", first[0]);
        worker.tasks.do_send(image(2, &server.origin(), "/a.jpg"));
        // Cancelled only once the gate has told it to wait: a cancel before it got there
        // would be turned away at the start and prove nothing about waking a waiter.
        let at_gate = held.wait_for(|held| *held > 0);
        tokio::time::timeout(Duration::from_secs(20), at_gate)
            .await
            .expect("the task reached the gate")
            .unwrap();
        cancel.cancel();
        let results = worker.probe.send(WaitFor(1)).await.unwrap();
        assert_eq!(results[0].outcome, Err(TaskError::Interrupted), "{kind:?}: {:?}", results[0]);
        assert_eq!(results[0].attempts, 0, "{kind:?}: no request was made for it");
        assert_eq!(server.hits("/a.jpg"), before + 1, "{kind:?}");
        assert_eq!(temp_files(&out), 0, "{kind:?}");
    }
}
