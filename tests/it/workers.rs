//! Each worker actor against a local server, with a probe in the Coordinator's place.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use image_scraper::fetch::options::FetchOptions;
use image_scraper::html::ExtractRules;
use image_scraper::outdir::OutDir;
use image_scraper::store::folder::FolderStore;
use image_scraper::work::TaskFinished;
use image_scraper::work::{Done, ImageTask, PageKind, RunTask, Task, TaskError};
use image_scraper::workers::blocking::Blocking;
use image_scraper::workers::downloader::{self, Downloader};
use slog::{Logger, o};
use tokio::sync::oneshot;
use url::Url;

use crate::helpers::{Reply, TestServer};

/// Stands in for the Coordinator: collects results; `WaitFor(n)` answers once it holds n.
#[derive(Default)]
pub struct Probe {
    results: Vec<TaskFinished>,
    waiting: Option<(usize, oneshot::Sender<Vec<TaskFinished>>)>,
}

impl Probe {
    fn maybe_answer(&mut self) {
        if let Some((n, _)) = &self.waiting
            && self.results.len() >= *n
        {
            let (_, tx) = self.waiting.take().unwrap();
            let _ = tx.send(std::mem::take(&mut self.results));
        }
    }
}

impl Actor for Probe {
    type Context = Context<Self>;
}

impl Handler<TaskFinished> for Probe {
    type Result = ();

    fn handle(&mut self, msg: TaskFinished, _: &mut Context<Self>) {
        self.results.push(msg);
        self.maybe_answer();
    }
}

pub struct WaitFor(pub usize);

impl Message for WaitFor {
    type Result = Vec<TaskFinished>;
}

impl Handler<WaitFor> for Probe {
    type Result = ResponseFuture<Vec<TaskFinished>>;

    fn handle(&mut self, msg: WaitFor, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.waiting = Some((msg.0, tx));
        self.maybe_answer();
        Box::pin(async move {
            // A guard against a hang, not a wait: the answer comes as soon as results do.
            tokio::time::timeout(Duration::from_secs(20), rx).await.expect("worker answered in time").unwrap()
        })
    }
}

const JPEG: &[u8] = b"\xff\xd8\xff\xe0 not really a jpeg, but bytes to compare \xff\xd9";

/// A JPEG-framed body that spans many network chunks.
fn big_image() -> Vec<u8> {
    let mut body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    body[..4].copy_from_slice(b"\xFF\xD8\xFF\xE0");
    body
}

fn server() -> TestServer {
    let big = big_image();
    TestServer::start(vec![
        (
            "/p1/cats.html",
            Reply::html(
                r#"<img src="/a.jpg"><img src="b/big.jpg"><img src="http://elsewhere.invalid/c.jpg">
                <li class="pag-text">Page 1 of 4</li>"#,
            ),
        ),
        ("/a.jpg", Reply::image(JPEG)),
        ("/p1/b/big.jpg", Reply::image(&big)),
        ("/gone.jpg", Reply::status(404)),
        ("/broken.html", Reply::status(500)),
    ])
}

fn options(out: &OutDir) -> Arc<FetchOptions> {
    let extract = ExtractRules {
        image_selector: "img".into(),
        attributes: vec!["src".into()],
        image_host: "127.0.0.1".into(),
        page_count_selector: "li.pag-text".into(),
        linked_images: Default::default(),
        link_selector: String::new(),
        next_selector: Some(String::new()),
        detail: Default::default(),
    };
    Arc::new(FetchOptions {
        timeout: Duration::from_secs(10),
        concurrency: 4,
        ..FetchOptions::new(Arc::new(FolderStore::fresh(out.clone())), extract)
    })
}

fn image(id: u64, url: Url, name: &str) -> RunTask {
    RunTask { id, task: Task::Image(ImageTask { url, name: name.into(), overwrite: false, referer: None }) }
}

fn tasks(origin: &str) -> Vec<RunTask> {
    let url = |p: &str| Url::parse(&format!("{origin}{p}")).unwrap();
    vec![
        RunTask { id: 1, task: Task::Page { number: 1, url: url("/p1/cats.html"), kind: PageKind::Listing } },
        image(2, url("/a.jpg"), "a.jpg"),
        image(3, url("/p1/b/big.jpg"), "big.jpg"),
        image(4, url("/gone.jpg"), "gone.jpg"),
        RunTask { id: 5, task: Task::Page { number: 2, url: url("/broken.html"), kind: PageKind::Listing } },
    ]
}

/// What any worker must answer for [`tasks`].
fn check(origin: &str, mut results: Vec<TaskFinished>, out: &OutDir) {
    results.sort_by_key(|r| r.id);
    let ids: Vec<u64> = results.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    match &results[0].outcome {
        Ok(Done::Page(scan, _)) => {
            let urls: Vec<&str> = scan.urls().map(Url::as_str).collect();
            assert_eq!(urls, [format!("{origin}/a.jpg"), format!("{origin}/p1/b/big.jpg")]);
            assert_eq!(scan.page_count, Some(4));
        }
        other => panic!("page 1: {other:?}"),
    }
    let saved = |outcome: &Result<Done, TaskError>| match outcome {
        Ok(Done::Image { bytes, name, .. }) => Some((*bytes as usize, name.clone())),
        _ => None,
    };
    assert_eq!(saved(&results[1].outcome), Some((JPEG.len(), "a.jpg".into())));
    assert_eq!(saved(&results[2].outcome), Some((3_000_000, "big.jpg".into())));
    assert_eq!(results[3].outcome, Err(TaskError::status(404)));
    assert_eq!(results[4].outcome, Err(TaskError::status(500)));

    assert_eq!(std::fs::read(out.final_path("a.jpg")).unwrap(), JPEG);
    let big = std::fs::read(out.final_path("big.jpg")).unwrap();
    assert!(big.len() == 3_000_000 && big == big_image());
    let mut names: Vec<String> = std::fs::read_dir(out.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".image-scraper", "a.jpg", "big.jpg"], "nothing for failures");
    assert_eq!(std::fs::read_dir(out.tmp_dir()).unwrap().count(), 0, "no temporary files left");
}

/// A Downloader on an Arbiter of its own, as `run` starts it, reporting to `probe`.
fn start_downloader(out: &OutDir, probe: &Addr<Probe>) -> (Addr<Downloader>, Arbiter) {
    let arbiter = Arbiter::new();
    let (opts, report) = (options(out), probe.clone().recipient());
    let worker = Downloader::start_in_arbiter(&arbiter.handle(), move |_| {
        Downloader::new(
            opts,
            downloader::tls_config(&crate::helpers::plain_trust()),
            report,
            Logger::root(slog::Discard, o!()),
        )
    });
    (worker, arbiter)
}

#[actix::test]
async fn downloader_fetches_pages_and_streams_images() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let out = OutDir::open(dir.path()).unwrap();
    let probe = Probe::default().start();
    let (worker, arbiter) = start_downloader(&out, &probe);
    for task in tasks(&server.origin()) {
        worker.do_send(task);
    }
    let results = probe.send(WaitFor(5)).await.unwrap();
    check(&server.origin(), results, &out);
    arbiter.stop();
}

#[actix::test]
async fn blocking_worker_fetches_pages_and_streams_images() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let out = OutDir::open(dir.path()).unwrap();
    let probe = Probe::default().start();
    let opts = options(&out);
    let agent = Blocking::agents(&opts, 2, crate::helpers::plain_trust().ureq_config()).unwrap();
    let report = probe.clone().recipient();
    let pool = SyncArbiter::start(2, move || {
        Blocking::new(agent.clone(), Arc::clone(&opts), report.clone(), Logger::root(slog::Discard, o!()))
    });
    for task in tasks(&server.origin()) {
        pool.do_send(task);
    }
    let results = probe.send(WaitFor(5)).await.unwrap();
    check(&server.origin(), results, &out);
}

#[actix::test]
async fn unreachable_server_is_a_failure_not_a_hang() {
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = Url::parse(&format!("http://127.0.0.1:{port}/x.jpg")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = OutDir::open(dir.path()).unwrap();
    let probe = Probe::default().start();
    let (worker, arbiter) = start_downloader(&out, &probe);
    worker.do_send(image(9, url, "x.jpg"));
    let results = probe.send(WaitFor(1)).await.unwrap();
    assert!(matches!(results[0].outcome, Err(TaskError::Connect(_))), "{:?}", results[0].outcome);
    assert_eq!(std::fs::read_dir(out.tmp_dir()).unwrap().count(), 0);
    arbiter.stop();
}
