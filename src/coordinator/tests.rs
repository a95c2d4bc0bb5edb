//! The Coordinator with probe workers: request/reply round trips, no sleeps.

use std::collections::HashMap;
use std::sync::Arc;

use super::feed::ListEntry;
use super::*;
use crate::counts::Status;
use crate::counts::testing::items;
use crate::fetch::checks::MAX_REDIRECTS;
use crate::frontier::UrlList;
use crate::frontier::{Completed, Frontier, Gate, LeaseId};
use crate::frontier::{LocalFrontier, PageUrls};
use crate::html::{Element, Found, PageScan};
use crate::storage;
use crate::store::{Lookup, Store};
use crate::work::Done;
use crate::work::{RunTask, TaskId};
use std::io::Write;
use std::path::Path;

/// A fake worker: keeps what it is handed until the test takes it.
#[derive(Default)]
struct Probe {
    received: Vec<RunTask>,
}

impl Actor for Probe {
    type Context = Context<Self>;
}

impl Handler<RunTask> for Probe {
    type Result = ();

    fn handle(&mut self, msg: RunTask, _: &mut Context<Self>) {
        self.received.push(msg);
    }
}

struct Take;

impl Message for Take {
    type Result = Vec<RunTask>;
}

impl Handler<Take> for Probe {
    type Result = MessageResult<Take>;

    fn handle(&mut self, _: Take, _: &mut Context<Self>) -> Self::Result {
        MessageResult(std::mem::take(&mut self.received))
    }
}

struct Stop;

impl Message for Stop {
    type Result = ();
}

impl Handler<Stop> for Probe {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// The out dir `out` as a store, with its resume record.
fn folder(out: &Path) -> Arc<dyn Store> {
    let out = crate::outdir::OutDir::open(out).unwrap();
    let (resume, _) = crate::state::Resume::load(&out.state_file());
    Arc::new(crate::store::folder::FolderStore::new(out, resume))
}

/// A Coordinator with the in-memory frontier for its plan, as the wiring makes it.
fn in_memory(plan: Plan, log: Logger) -> Coordinator {
    let frontier = crate::frontier::walk_of(&plan.source, None, None);
    let frontier = if plan.listing.is_some() { frontier.listing() } else { frontier };
    Coordinator::new(plan, Box::new(frontier), log)
}

/// A Coordinator writing into `out` (its resume record there too).
fn start_in(out: &Path, max_pages: Option<u32>, force: bool) -> Addr<Coordinator> {
    let pages = PageUrls::new(url("http://h.test/"), "p{page}/cats.html", "cats").unwrap();
    let plan = Plan { force, ..Plan::new(Source::Pages { pages, first_page: 1, max_pages }, folder(out)) };
    in_memory(plan, Logger::root(slog::Discard, slog::o!())).start()
}

/// A Coordinator in a fresh out dir, which lives as long as the returned guard.
fn start(max_pages: Option<u32>) -> (Addr<Coordinator>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (start_in(dir.path(), max_pages, false), dir)
}

/// Registers a probe and returns it with what it was handed at once.
async fn register(coordinator: &Addr<Coordinator>, capacity: usize) -> (Addr<Probe>, Vec<RunTask>) {
    let probe = Probe::default().start();
    let tasks = probe.clone().recipient();
    coordinator.send(RegisterWorker { tasks, capacity }).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    (probe, handed)
}

fn page_done(id: TaskId, images: &[&str], page_count: Option<u32>) -> TaskFinished {
    let images = images.iter().map(|s| Found::img(url(s))).collect();
    let outcome = Ok(Done::Page(PageScan { images, page_count, ..PageScan::default() }, None));
    TaskFinished { id, outcome, attempts: 1 }
}

/// What a worker reports for an image it saved, having saved it as a worker does.
fn image_done(out: &Path, task: &RunTask, bytes: u64) -> TaskFinished {
    let name = image_name(task).to_string();
    std::fs::write(out.join(&name), vec![0u8; bytes as usize]).unwrap();
    let outcome = Ok(Done::Image { bytes, name, sha256: None, info: Default::default() });
    TaskFinished { id: task.id, outcome, attempts: 1 }
}

fn failed(id: TaskId, status: u16) -> TaskFinished {
    let outcome = Err(TaskError::status(status));
    TaskFinished { id, outcome, attempts: 4 }
}

fn image_name(task: &RunTask) -> &str {
    match &task.task {
        Task::Image(image) => &image.name,
        other => panic!("not an image: {other:?}"),
    }
}

fn pages_of(tasks: &[RunTask]) -> Vec<u32> {
    let page = |t: &RunTask| match t.task {
        Task::Page { number, .. } => Some(number),
        _ => None,
    };
    tasks.iter().filter_map(page).collect()
}

fn image_of<'a>(tasks: &'a [RunTask], suffix: &str) -> &'a RunTask {
    tasks
        .iter()
        .find(|t| matches!(&t.task, Task::Image(i) if i.url.as_str().ends_with(suffix)))
        .unwrap_or_else(|| panic!("no image task for {suffix}"))
}

/// Answers every task the probe holds (pages with no images, images saved) until
/// it holds none, then joins.
async fn drain(out: &Path, coordinator: &Addr<Coordinator>, probe: &Addr<Probe>) -> Summary {
    loop {
        let handed = probe.send(Take).await.unwrap();
        if handed.is_empty() {
            break;
        }
        for task in &handed {
            let finished = match task.task {
                Task::Page { .. } | Task::Robots { .. } | Task::Probe { .. } => page_done(task.id, &[], None),
                Task::Image(_) => image_done(out, task, 3),
            };
            coordinator.send(finished).await.unwrap();
        }
    }
    let join = tokio::time::timeout(Duration::from_secs(10), coordinator.send(Join));
    join.await.expect("join hung").unwrap().unwrap()
}

#[actix::test]
async fn join_waits_for_the_last_acknowledgement_and_counts_exactly() {
    let (coordinator, dir) = start(Some(10));
    let (probe, handed) = register(&coordinator, 8).await;
    assert_eq!(pages_of(&handed), [1], "page 1 goes out alone");
    assert_eq!(handed.len(), 1);

    let mut join = Box::pin(coordinator.send(Join));
    let page1 = ["http://h.test/a.jpg", "http://h.test/b.jpg", "http://h.test/a.jpg"];
    coordinator.send(page_done(handed[0].id, &page1, Some(2))).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    assert_eq!(pages_of(&handed), [2], "clamped to the 2 pages the site states");
    assert_eq!(handed.len(), 3, "page 2 and the two distinct images");

    let page2 = handed.iter().find(|t| matches!(t.task, Task::Page { .. })).unwrap().id;
    let (a, b) = (image_of(&handed, "a.jpg"), image_of(&handed, "b.jpg").id);
    coordinator.send(image_done(dir.path(), a, 100)).await.unwrap();
    coordinator.send(failed(b, 404)).await.unwrap();
    let page2_images = ["http://h.test/a.jpg", "http://h.test/c.jpg"];
    coordinator.send(page_done(page2, &page2_images, None)).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    assert_eq!(handed.len(), 1, "a.jpg again is not downloaded again");
    let c = image_of(&handed, "c.jpg");

    assert!(futures_util::poll!(&mut join).is_pending(), "c.jpg is still in flight");
    let (pages, images) = coordinator.send(GetCounts).await.unwrap();
    assert_eq!((pages.ok, images.ok, images.failed, images.total), (2, 1, 1, 3));

    coordinator.send(image_done(dir.path(), c, 50)).await.unwrap();
    let summary = join.await.unwrap().expect("a summary");
    assert_eq!(summary.pages, PageCounts { total: 2, ok: 2, failed: 0, skipped: 0, ..PageCounts::default() });
    assert_eq!(summary.images, ImageCounts { total: 3, ok: 2, failed: 1, skipped: 0, bytes: 150 });
    let failed_item = items().into_iter().find(|i| i.status == Status::Failed).unwrap();
    assert_eq!(failed_item.url, "http://h.test/b.jpg");
    assert_eq!(failed_item.error.as_deref(), Some("HTTP status 404"));
    assert_eq!(failed_item.attempts, 4);
    assert_eq!(items().len(), 3);
    assert_eq!(summary.exit_code(), crate::exit::ExitCode::Failure);
}

/// A one-page run whose page holds one link to `target` around `thumbnail`: the
/// Coordinator, its probe, what the probe holds (the link's task), and the out dir.
async fn one_link(
    target: &str,
    thumbnail: &str,
) -> (Addr<Coordinator>, Addr<Probe>, Vec<RunTask>, tempfile::TempDir) {
    let (coordinator, dir) = start(Some(1));
    let (probe, handed) = register(&coordinator, 4).await;
    let link = Found { url: url(target), element: Element::Link, fallback: Some(url(thumbnail)) };
    let outcome = Ok(Done::Page(PageScan { images: vec![link], ..PageScan::default() }, None));
    coordinator.send(TaskFinished { id: handed[0].id, outcome, attempts: 1 }).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    (coordinator, probe, handed, dir)
}

#[actix::test]
async fn a_link_target_that_is_a_page_falls_back_to_its_thumbnail_counted_once() {
    let (coordinator, probe, handed, dir) =
        one_link("http://h.test/wiki/File:Cat.jpg", "http://h.test/thumb/Cat-200px.jpg").await;
    let page = Err(TaskError::NotAnImage("the server sent text/html".into()));
    coordinator
        .send(TaskFinished { id: image_of(&handed, "File:Cat.jpg").id, outcome: page, attempts: 1 })
        .await
        .unwrap();
    let handed = probe.send(Take).await.unwrap();
    coordinator.send(image_done(dir.path(), image_of(&handed, "Cat-200px.jpg"), 9)).await.unwrap();
    let summary = coordinator.send(Join).await.unwrap().unwrap();
    assert_eq!(summary.images, ImageCounts { total: 1, ok: 1, failed: 0, skipped: 0, bytes: 9 });
    assert_eq!(items().len(), 1);
    let item = &items()[0];
    assert_eq!((item.url.as_str(), item.element), ("http://h.test/thumb/Cat-200px.jpg", Some(Element::Img)));
    assert!(
        item.note.as_deref().is_some_and(|n| n.contains("File:Cat.jpg") && n.contains("page")),
        "{item:?}"
    );
}

#[actix::test]
async fn a_link_target_that_fails_otherwise_is_a_failure() {
    let (coordinator, probe, handed, _dir) =
        one_link("http://h.test/full/a.jpg", "http://h.test/thumb/a.jpg").await;
    coordinator.send(failed(handed[0].id, 404)).await.unwrap();
    let summary = coordinator.send(Join).await.unwrap().unwrap();
    assert_eq!((summary.images.failed, items()[0].element), (1, Some(Element::Link)));
    assert!(probe.send(Take).await.unwrap().is_empty(), "no fallback for a missing file");
}

/// A `Write` the test can read back.
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix::test]
async fn a_dry_run_lists_in_page_order_whatever_order_pages_finish_in() {
    let dir = tempfile::tempdir().unwrap();
    let pages = PageUrls::new(url("http://h.test/"), "p{page}/cats.html", "cats").unwrap();
    let out = Shared::default();
    let plan = Plan {
        listing: Some(Box::new(out.clone())),
        ..Plan::new(Source::Pages { pages, first_page: 1, max_pages: Some(3) }, folder(dir.path()))
    };
    let coordinator = in_memory(plan, Logger::root(slog::Discard, slog::o!())).start();
    let (probe, handed) = register(&coordinator, 32).await;
    // Two origins on one page: a per-origin queue would group them.
    let page1 = ["http://h.test/1a.jpg", "http://other.test/1b.jpg", "http://h.test/1c.jpg"];
    coordinator.send(page_done(handed[0].id, &page1, None)).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    let id_of = |n: u32| handed.iter().find(|t| pages_of(std::slice::from_ref(t)) == [n]).unwrap().id;
    let (p2, p3) = (id_of(2), id_of(3));
    coordinator.send(page_done(p3, &["http://h.test/3.jpg", "http://h.test/1a.jpg"], None)).await.unwrap();
    coordinator.send(page_done(p2, &["http://h.test/2.jpg"], None)).await.unwrap();
    let summary = coordinator.send(Join).await.unwrap().unwrap();
    let listed = String::from_utf8(out.0.borrow().clone()).unwrap();
    let expected = ["1a", "1b", "1c", "2", "3"].map(|n| match n {
        "1b" => "http://other.test/1b.jpg\n".to_string(),
        n => format!("http://h.test/{n}.jpg\n"),
    });
    assert_eq!(listed, expected.concat());
    assert_eq!(summary.listed, 5);
}

#[actix::test]
async fn nothing_is_counted_twice() {
    let (coordinator, dir) = start(Some(1));
    let (probe, handed) = register(&coordinator, 4).await;
    coordinator.send(page_done(handed[0].id, &["http://h.test/a.jpg"], None)).await.unwrap();
    coordinator.send(page_done(handed[0].id, &["http://h.test/z.jpg"], None)).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    assert_eq!(handed.len(), 1);
    let stranger = RunTask { id: 999, task: handed[0].task.clone() };
    coordinator.send(image_done(dir.path(), &stranger, 1)).await.unwrap();
    coordinator.send(image_done(dir.path(), &handed[0], 7)).await.unwrap();
    coordinator.send(image_done(dir.path(), &handed[0], 7)).await.unwrap();
    let summary = coordinator.send(Join).await.unwrap().unwrap();
    assert_eq!(summary.pages.ok, 1);
    assert_eq!(summary.images, ImageCounts { total: 1, ok: 1, failed: 0, skipped: 0, bytes: 7 });
}

#[actix::test]
async fn work_in_flight_never_exceeds_capacity() {
    let (coordinator, dir) = start(Some(3));
    let (probe, handed) = register(&coordinator, 2).await;
    let images: Vec<String> = (0..10).map(|i| format!("http://h.test/{i}.jpg")).collect();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    coordinator.send(page_done(handed[0].id, &images, Some(3))).await.unwrap();
    let mut outstanding = probe.send(Take).await.unwrap();
    let mut handed_total = 0;
    while !outstanding.is_empty() {
        assert!(outstanding.len() <= 2, "{} tasks out with capacity 2", outstanding.len());
        handed_total += outstanding.len();
        for task in outstanding.drain(..) {
            let finished = match task.task {
                Task::Page { .. } | Task::Robots { .. } | Task::Probe { .. } => page_done(task.id, &[], None),
                Task::Image(_) => image_done(dir.path(), &task, 1),
            };
            coordinator.send(finished).await.unwrap();
        }
        outstanding = probe.send(Take).await.unwrap();
    }
    assert_eq!(handed_total, 10 + 2, "ten images and pages 2 and 3");
    let summary = coordinator.send(Join).await.unwrap().unwrap();
    assert_eq!((summary.pages.ok, summary.images.ok), (3, 10));
}

#[actix::test]
async fn clashing_names_get_a_url_suffix() {
    let (coordinator, _dir) = start(Some(1));
    let (probe, handed) = register(&coordinator, 4).await;
    let page = ["http://h.test/a/cat.jpg", "http://h.test/b/cat.jpg", "http://h.test/c/CAT.jpg"];
    coordinator.send(page_done(handed[0].id, &page, None)).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    let names: Vec<&str> = handed.iter().map(image_name).collect();
    assert_eq!(names[0], "cat.jpg");
    assert_eq!(names[1], storage::with_suffix("cat.jpg", &url(page[1])));
    assert_eq!(names[2], storage::with_suffix("CAT.jpg", &url(page[2])), "case-insensitive clash");
}

#[actix::test]
async fn a_failed_first_page_still_lets_the_others_run() {
    let (coordinator, _dir) = start(Some(2));
    let (probe, handed) = register(&coordinator, 4).await;
    coordinator.send(failed(handed[0].id, 500)).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    assert_eq!(pages_of(&handed), [2]);
    coordinator.send(page_done(handed[0].id, &[], None)).await.unwrap();
    let summary = coordinator.send(Join).await.unwrap().unwrap();
    assert_eq!(summary.pages, PageCounts { total: 2, ok: 1, failed: 1, skipped: 0, ..PageCounts::default() });
}

#[actix::test]
async fn a_dead_worker_fails_its_tasks_instead_of_hanging() {
    let (coordinator, _dir) = start(Some(3));
    let (probe, handed) = register(&coordinator, 4).await;
    let images = ["http://h.test/a.jpg", "http://h.test/b.jpg", "http://h.test/c.jpg", "http://h.test/d.jpg"];
    coordinator.send(page_done(handed[0].id, &images, Some(3))).await.unwrap();
    probe.send(Stop).await.unwrap();
    drop(probe);
    // Any message makes the Coordinator look at its workers again. The timeout turns
    // a regression (a hang) into a failure.
    let join = tokio::time::timeout(Duration::from_secs(10), coordinator.send(Join));
    let summary = join.await.expect("join hung").unwrap().unwrap();
    assert_eq!(summary.pages, PageCounts { total: 3, ok: 1, failed: 2, skipped: 0, ..PageCounts::default() });
    assert_eq!((summary.images.total, summary.images.failed), (4, 4));
}

#[actix::test]
async fn a_rerun_skips_what_is_complete_and_keeps_names_stable() {
    let dir = tempfile::tempdir().unwrap();
    let page = ["http://h.test/a/cat.jpg", "http://h.test/b/cat.jpg", "http://h.test/dog.jpg"];
    // First run: everything downloaded; b's cat gets the suffix.
    let coordinator = start_in(dir.path(), Some(1), false);
    let (probe, handed) = register(&coordinator, 8).await;
    coordinator.send(page_done(handed[0].id, &page, None)).await.unwrap();
    let first = drain(dir.path(), &coordinator, &probe).await;
    assert_eq!(first.images.ok, 3);
    let names_before: HashMap<String, String> =
        items().iter().map(|i| (i.url.clone(), i.path.clone())).collect();

    // The dog's file is damaged; the cats are whole. Page order changes: b first.
    std::fs::write(dir.path().join("dog.jpg"), b"x").unwrap();
    let coordinator = start_in(dir.path(), Some(1), false);
    let (probe, handed) = register(&coordinator, 8).await;
    let reordered = [page[1], page[0], page[2]];
    coordinator.send(page_done(handed[0].id, &reordered, None)).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    assert_eq!(handed.len(), 1, "only the damaged image is fetched again");
    assert_eq!(image_name(&handed[0]), "dog.jpg");
    coordinator.send(image_done(dir.path(), &handed[0], 3)).await.unwrap();
    let summary = drain(dir.path(), &coordinator, &probe).await;
    assert_eq!((summary.images.ok, summary.images.skipped, summary.images.total), (1, 2, 3));
    let items = items();
    for item in &items {
        assert_eq!(names_before[&item.url], item.path, "same URL, same file");
    }
    let skipped = items.iter().find(|i| i.status == Status::Skipped).unwrap();
    assert_eq!((skipped.bytes, skipped.attempts), (3, 0));

    // --force: all again, same names.
    let coordinator = start_in(dir.path(), Some(1), true);
    let (probe, handed) = register(&coordinator, 8).await;
    coordinator.send(page_done(handed[0].id, &page, None)).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    assert_eq!(handed.len(), 3);
    for task in &handed {
        let Task::Image(image) = &task.task else { panic!() };
        assert_eq!(names_before[image.url.as_str()], image.name);
        assert!(image.overwrite, "our own files may be replaced");
    }
}

#[actix::test]
async fn only_recorded_files_may_be_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cat.jpg"), b"mine").unwrap();
    let coordinator = start_in(dir.path(), Some(1), false);
    let (probe, handed) = register(&coordinator, 8).await;
    coordinator.send(page_done(handed[0].id, &["http://h.test/cat.jpg"], None)).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    let Task::Image(image) = &handed[0].task else { panic!() };
    assert_eq!(image.name, "cat.jpg");
    assert!(!image.overwrite, "no record says this URL wrote cat.jpg");
}

#[actix::test]
async fn a_recorded_name_another_url_took_first_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = ("http://h.test/a/cat.jpg", "http://h.test/b/cat.jpg");
    let coordinator = start_in(dir.path(), Some(1), false);
    let (probe, handed) = register(&coordinator, 8).await;
    coordinator.send(page_done(handed[0].id, &[old], None)).await.unwrap();
    assert_eq!(drain(dir.path(), &coordinator, &probe).await.images.ok, 1);
    // The user deleted the file; the new URL comes first this time and takes the name.
    std::fs::remove_file(dir.path().join("cat.jpg")).unwrap();
    let coordinator = start_in(dir.path(), Some(1), false);
    let (probe, handed) = register(&coordinator, 8).await;
    coordinator.send(page_done(handed[0].id, &[new, old], None)).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    let images: Vec<&ImageTask> = handed
        .iter()
        .map(|t| match &t.task {
            Task::Image(image) => image,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!((images[0].name.as_str(), images[0].overwrite), ("cat.jpg", false));
    assert_ne!(images[1].name, "cat.jpg", "the recorded URL must not replace the new one's file");
    assert!(!images[1].overwrite);
}

#[actix::test]
async fn interrupt_stops_handing_out_and_counts_the_rest_as_failed() {
    let (coordinator, dir) = start(Some(5));
    let (probe, handed) = register(&coordinator, 2).await;
    let images = ["http://h.test/a.jpg", "http://h.test/b.jpg", "http://h.test/c.jpg", "http://h.test/d.jpg"];
    coordinator.send(page_done(handed[0].id, &images, Some(5))).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    assert_eq!(handed.len(), 2);
    let mut join = Box::pin(coordinator.send(Join));
    coordinator.send(Interrupt).await.unwrap();
    assert!(futures_util::poll!(&mut join).is_pending(), "two tasks still in flight");
    // One finishes, one is cancelled by its worker; nothing new goes out.
    let finished = |t: &RunTask| match &t.task {
        Task::Image(_) => image_done(dir.path(), t, 5),
        Task::Page { .. } | Task::Robots { .. } | Task::Probe { .. } => page_done(t.id, &[], None),
    };
    coordinator.send(finished(&handed[0])).await.unwrap();
    let cancelled = TaskFinished { id: handed[1].id, outcome: Err(TaskError::Interrupted), attempts: 1 };
    coordinator.send(cancelled).await.unwrap();
    assert!(probe.send(Take).await.unwrap().is_empty());
    let summary = tokio::time::timeout(Duration::from_secs(10), join).await.unwrap().unwrap().unwrap();
    assert_eq!(summary.pages.total, 5, "unsent pages are counted");
    assert_eq!(summary.pages.failed + summary.pages.ok, 5);
    assert_eq!(summary.images.ok + summary.images.failed, summary.images.total);
    assert!(items().iter().any(|i| i.error.as_deref() == Some("interrupted")));
}

#[actix::test]
async fn interrupt_counts_tasks_that_never_answer_after_a_grace() {
    // Virtual time: the grace period passes as soon as nothing else can happen.
    tokio::time::pause();
    let (coordinator, _dir) = start(Some(1));
    let (_probe, handed) = register(&coordinator, 1).await;
    assert_eq!(handed.len(), 1);
    let started = tokio::time::Instant::now();
    coordinator.send(Interrupt).await.unwrap();
    // The probe never answers page 1: the grace period ends the wait.
    let join = tokio::time::timeout(INTERRUPT_GRACE * 5, coordinator.send(Join));
    let summary = join.await.expect("join hung").unwrap().unwrap();
    assert_eq!(summary.pages, PageCounts { total: 1, ok: 0, failed: 1, skipped: 0, ..PageCounts::default() });
    assert!(started.elapsed() >= INTERRUPT_GRACE, "not before the grace period ended");
}

#[actix::test]
async fn a_join_waiting_on_a_worker_that_died_is_answered_without_another_message() {
    tokio::time::pause();
    let (coordinator, _dir) = start(Some(1));
    let (probe, handed) = register(&coordinator, 1).await;
    assert_eq!(handed.len(), 1);
    let join = coordinator.send(Join);
    probe.send(Stop).await.unwrap();
    drop(probe);
    // Nothing else is sent: only the liveness check can notice. (Virtual time: a
    // regression fails at once instead of hanging.)
    let summary = tokio::time::timeout(LIVENESS_CHECK * 20, join).await.expect("join hung").unwrap().unwrap();
    assert_eq!(summary.pages, PageCounts { total: 1, ok: 0, failed: 1, skipped: 0, ..PageCounts::default() });
}

#[actix::test]
async fn a_full_disk_stops_the_run_like_an_interrupt() {
    let dir = tempfile::tempdir().unwrap();
    let pages = PageUrls::new(url("http://h.test/"), "p{page}/cats.html", "cats").unwrap();
    let plan = Plan::new(Source::Pages { pages, first_page: 1, max_pages: Some(3) }, folder(dir.path()));
    let cancel = plan.cancel.clone();
    let coordinator = in_memory(plan, Logger::root(slog::Discard, slog::o!())).start();
    let (probe, handed) = register(&coordinator, 2).await;
    let images: Vec<String> = (0..6).map(|i| format!("http://h.test/{i}.jpg")).collect();
    let images: Vec<&str> = images.iter().map(String::as_str).collect();
    coordinator.send(page_done(handed[0].id, &images, Some(3))).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    assert_eq!(handed.len(), 2);
    let (first, second) = (&handed[0], &handed[1]);
    let full = TaskError::write(std::io::Error::from(std::io::ErrorKind::StorageFull));
    assert!(matches!(full, TaskError::DiskFull(_)), "{full:?}");
    coordinator.send(TaskFinished { id: first.id, outcome: Err(full), attempts: 1 }).await.unwrap();
    assert!(cancel.is_cancelled(), "workers are told to drop what they hold");
    assert!(probe.send(Take).await.unwrap().is_empty(), "nothing more is handed out");
    let dropped = TaskFinished { id: second.id, outcome: Err(TaskError::Interrupted), attempts: 1 };
    coordinator.send(dropped).await.unwrap();
    let summary = coordinator.send(Join).await.unwrap().unwrap();
    assert!(summary.stopped.as_deref().is_some_and(|s| s.starts_with("disk full")), "{:?}", summary.stopped);
    assert!(summary.stopped_line().unwrap().starts_with("Stopped early: disk full"));
    assert_eq!(summary.images.failed, summary.images.total, "every image not done counts failed");
    assert_eq!(summary.pages.failed + summary.pages.ok, summary.pages.total);
    for item in items().iter().filter(|i| i.page == 1) {
        assert!(item.error.as_deref().is_some_and(|e| e.starts_with("disk full")), "{item:?}");
    }
    assert_eq!(summary.exit_code(), crate::exit::ExitCode::Failure);
}

#[actix::test]
async fn a_redirect_is_followed_under_the_found_url_and_its_name() {
    let (coordinator, dir) = start(Some(1));
    let (probe, handed) = register(&coordinator, 4).await;
    coordinator
        .send(page_done(handed[0].id, &["http://h.test/a.jpg", "http://h.test/loop.jpg"], None))
        .await
        .unwrap();
    let mut handed = probe.send(Take).await.unwrap();
    let moved = |id, to: &str| TaskFinished { id, outcome: Ok(Done::Moved(url(to))), attempts: 1 };
    let a = image_of(&handed, "a.jpg").id;
    coordinator.send(moved(a, "http://cdn.test/real/x.jpg")).await.unwrap();
    // The loop goes round until the limit.
    let mut rounds = 0;
    while let Some(task) = handed.iter().find(|t| t.task.url().path() == "/loop.jpg") {
        coordinator.send(moved(task.id, "http://h.test/loop.jpg")).await.unwrap();
        rounds += 1;
        handed = probe.send(Take).await.unwrap();
        if let Some(real) = handed.iter().find(|t| t.task.url().as_str() == "http://cdn.test/real/x.jpg") {
            assert_eq!(image_name(real), "a.jpg", "the name of the URL as found");
            coordinator.send(image_done(dir.path(), real, 9)).await.unwrap();
        }
    }
    assert_eq!(rounds, usize::from(MAX_REDIRECTS) + 1);
    coordinator.send(Join).await.unwrap().expect("a summary");
    let a = items().into_iter().find(|i| i.url == "http://h.test/a.jpg").expect("reported as found");
    assert_eq!((a.status, a.path.as_str()), (Status::Ok, "a.jpg"));
    let looped = items().into_iter().find(|i| i.url.ends_with("loop.jpg")).unwrap();
    assert_eq!(looped.error.as_deref(), Some("too many redirects"));
    let again = folder(dir.path());
    assert_ne!(
        again.lookup(&url("http://h.test/a.jpg")),
        Lookup::Unknown,
        "the resume record keys the found URL"
    );
}

#[actix::test]
async fn a_redirected_page_is_fetched_at_its_target() {
    let (coordinator, _dir) = start(Some(1));
    let (probe, handed) = register(&coordinator, 4).await;
    let moved =
        TaskFinished { id: handed[0].id, outcome: Ok(Done::Moved(url("http://h.test/new/1"))), attempts: 1 };
    coordinator.send(moved).await.unwrap();
    let handed = probe.send(Take).await.unwrap();
    assert_eq!(pages_of(&handed), [1]);
    assert_eq!(handed[0].task.url().as_str(), "http://h.test/new/1");
    coordinator.send(page_done(handed[0].id, &[], None)).await.unwrap();
    let summary = coordinator.send(Join).await.unwrap().unwrap();
    assert_eq!(summary.pages, PageCounts { total: 1, ok: 1, failed: 0, skipped: 0, ..PageCounts::default() });
}

/// A worker that answers at once, as a real one would: three pages stating the count,
/// two images of their own each and one they share; images saved into `out`.
struct Auto {
    coordinator: Addr<Coordinator>,
    out: std::path::PathBuf,
}

impl Actor for Auto {
    type Context = Context<Self>;
}

impl Handler<RunTask> for Auto {
    type Result = ();

    fn handle(&mut self, msg: RunTask, _: &mut Context<Self>) {
        let finished = match &msg.task {
            Task::Page { number, .. } => {
                let own = [format!("http://h.test/{number}a.jpg"), format!("http://h.test/{number}b.jpg")];
                let mut images: Vec<&str> = own.iter().map(String::as_str).collect();
                images.push("http://h.test/shared.jpg");
                page_done(msg.id, &images, Some(3))
            }
            Task::Image(_) => image_done(&self.out, &msg, 5),
            Task::Robots { .. } | Task::Probe { .. } => page_done(msg.id, &[], None),
        };
        self.coordinator.do_send(finished);
    }
}

/// The in-memory frontier behind answers that come a turn later, as a remote one's do.
struct Deferred(LocalFrontier);

fn later<T: 'static>(answer: frontier::Answer<T>) -> frontier::Answer<T> {
    Box::pin(async move {
        tokio::task::yield_now().await;
        answer.await
    })
}

impl Frontier for Deferred {
    fn offer(&mut self, offers: Vec<Offer>) -> frontier::Answer<Vec<bool>> {
        later(self.0.offer(offers))
    }
    fn claim(&mut self, want: usize, capacity: usize, gate: &mut dyn Gate) -> frontier::Answer<Claimed> {
        later(self.0.claim(want, capacity, gate))
    }
    fn complete(&mut self, id: LeaseId, ending: Ending, children: Vec<Offer>) -> frontier::Answer<Completed> {
        later(self.0.complete(id, ending, children))
    }
    fn release(&mut self, leases: Vec<frontier::Lease>) -> frontier::Answer<()> {
        later(self.0.release(leases))
    }
    fn abandon(&mut self) -> frontier::Answer<frontier::Abandoned> {
        later(self.0.abandon())
    }
    fn counts(&self) -> frontier::Answer<frontier::Counts> {
        later(self.0.counts())
    }
    fn is_done(&self) -> frontier::Answer<bool> {
        later(self.0.is_done())
    }
}

async fn run_with(frontier: Option<Box<dyn Frontier>>) -> Summary {
    let dir = tempfile::tempdir().unwrap();
    let pages = PageUrls::new(url("http://h.test/"), "p{page}/cats.html", "cats").unwrap();
    let plan = Plan::new(Source::Pages { pages, first_page: 1, max_pages: None }, folder(dir.path()));
    let log = Logger::root(slog::Discard, slog::o!());
    let coordinator = match frontier {
        Some(frontier) => Coordinator::new(plan, frontier, log),
        None => in_memory(plan, log),
    }
    .start();
    let worker = Auto { coordinator: coordinator.clone(), out: dir.path().to_path_buf() }.start();
    coordinator.send(RegisterWorker { tasks: worker.recipient(), capacity: 4 }).await.unwrap();
    let join = tokio::time::timeout(Duration::from_secs(10), coordinator.send(Join));
    join.await.expect("join hung").unwrap().unwrap()
}

#[actix::test]
async fn a_frontier_that_answers_later_does_the_same_work() {
    let pages = PageUrls::new(url("http://h.test/"), "p{page}/cats.html", "cats").unwrap();
    let walk = LocalFrontier::pages(1, 1, Box::new(move |n| pages.url(n)));
    let deferred = run_with(Some(Box::new(Deferred(walk)))).await;
    let local = run_with(None).await;
    assert_eq!((deferred.pages.ok, deferred.pages.total), (3, 3), "the count stated on page 1 was followed");
    assert_eq!(deferred.images, ImageCounts { total: 7, ok: 7, failed: 0, skipped: 0, bytes: 35 });
    assert_eq!((deferred.pages, deferred.images), (local.pages, local.images));
}

fn page_with_next(id: TaskId, images: &[&str], next: Option<&str>) -> TaskFinished {
    let images = images.iter().map(|s| Found::img(url(s))).collect();
    let outcome = Ok(Done::Page(PageScan { images, next: next.map(url), ..PageScan::default() }, None));
    TaskFinished { id, outcome, attempts: 1 }
}

fn page_url_of(task: &RunTask) -> String {
    match &task.task {
        Task::Page { url, .. } => url.to_string(),
        other => panic!("not a page: {other:?}"),
    }
}

#[actix::test]
async fn a_walk_by_next_links_hands_out_where_they_lead_and_ends_where_none_follows() {
    let dir = tempfile::tempdir().unwrap();
    let pages = PageUrls::single(url("http://h.test/list"));
    let plan = Plan::new(Source::Pages { pages, first_page: 1, max_pages: None }, folder(dir.path()));
    let coordinator = in_memory(plan, Logger::root(slog::Discard, slog::o!())).start();
    let (probe, handed) = register(&coordinator, 4).await;
    assert_eq!(page_url_of(&handed[0]), "http://h.test/list");
    coordinator
        .send(page_with_next(handed[0].id, &["http://h.test/1.jpg"], Some("http://h.test/list?2")))
        .await
        .unwrap();
    let handed = probe.send(Take).await.unwrap();
    let page2 = handed.iter().find(|t| matches!(t.task, Task::Page { .. })).expect("page 2 goes");
    assert_eq!(page_url_of(page2), "http://h.test/list?2");
    coordinator.send(page_with_next(page2.id, &["http://h.test/2.jpg"], None)).await.unwrap();
    for image in handed.iter().filter(|t| matches!(t.task, Task::Image(_))) {
        coordinator.send(image_done(dir.path(), image, 3)).await.unwrap();
    }
    let summary = drain(dir.path(), &coordinator, &probe).await;
    assert_eq!((summary.pages.ok, summary.pages.total, summary.images.ok), (2, 2, 2));
}

#[actix::test]
async fn a_page_repeating_known_images_is_the_end_not_a_page() {
    let (coordinator, dir) = start(Some(10));
    let (probe, handed) = register(&coordinator, 1).await;
    coordinator.send(page_done(handed[0].id, &["http://h.test/1.jpg"], None)).await.unwrap();
    let mut pages_seen = Vec::new();
    loop {
        let handed = probe.send(Take).await.unwrap();
        if handed.is_empty() {
            break;
        }
        for task in handed {
            let finished = match &task.task {
                Task::Page { number, .. } => {
                    pages_seen.push(*number);
                    // Page 2 has an image of its own; every page after it is page 2 again.
                    page_done(task.id, &["http://h.test/2.jpg"], None)
                }
                _ => image_done(dir.path(), &task, 3),
            };
            coordinator.send(finished).await.unwrap();
        }
    }
    let summary = coordinator.send(Join).await.unwrap().unwrap();
    assert_eq!((summary.pages.ok, summary.pages.total), (2, 2), "page 3 repeats page 2: the end");
    assert!(pages_seen.len() <= 1 + 2, "no more than the look-ahead past the end: {pages_seen:?}");
}

/// A shared job's frontier, as far as an interrupt goes: the in-memory one, noting each
/// lease released or completed; abandoning gives nothing back to count (the job's work
/// is not this process's), as `RedisFrontier`'s does.
struct SharedJob {
    inner: LocalFrontier,
    calls: std::rc::Rc<std::cell::RefCell<Vec<(&'static str, LeaseId)>>>,
}

impl Frontier for SharedJob {
    fn offer(&mut self, offers: Vec<Offer>) -> frontier::Answer<Vec<bool>> {
        self.inner.offer(offers)
    }
    fn claim(&mut self, want: usize, capacity: usize, gate: &mut dyn Gate) -> frontier::Answer<Claimed> {
        self.inner.claim(want, capacity, gate)
    }
    fn complete(&mut self, id: LeaseId, ending: Ending, children: Vec<Offer>) -> frontier::Answer<Completed> {
        self.calls.borrow_mut().push(("complete", id));
        self.inner.complete(id, ending, children)
    }
    fn release(&mut self, leases: Vec<frontier::Lease>) -> frontier::Answer<()> {
        self.calls.borrow_mut().extend(leases.iter().map(|l| ("release", l.id)));
        self.inner.release(leases)
    }
    fn abandon(&mut self) -> frontier::Answer<frontier::Abandoned> {
        Box::pin(async { Ok(frontier::Abandoned::default()) })
    }
    fn counts(&self) -> frontier::Answer<frontier::Counts> {
        self.inner.counts()
    }
    fn is_done(&self) -> frontier::Answer<bool> {
        Box::pin(async { Ok(false) })
    }
}

#[actix::test]
async fn an_interrupt_hands_a_shared_jobs_tasks_in_flight_back_instead_of_failing_them() {
    let dir = tempfile::tempdir().unwrap();
    let (rows, list) = super::feed::list_channel();
    let rows_sent = ["http://h.test/a.jpg", "http://h.test/b.jpg"].map(|u| ListEntry {
        index: 0,
        url: Ok(url(u)),
        carried: None,
    });
    rows.try_send(rows_sent.into()).unwrap();
    drop(rows);
    let list_source = UrlList { spec: list_spec(), rows: Some(2), digest: None };
    let plan = Plan {
        shared: Some(Duration::from_secs(60)),
        list: Some(list),
        ..Plan::new(Source::Urls(list_source), folder(dir.path()))
    };
    let calls = std::rc::Rc::default();
    let frontier = SharedJob { inner: LocalFrontier::empty(), calls: std::rc::Rc::clone(&calls) };
    let log = Logger::root(slog::Discard, slog::o!());
    let coordinator = Coordinator::new(plan, Box::new(frontier), log).start();
    let (_probe, handed) = register(&coordinator, 2).await;
    assert_eq!(handed.len(), 2);
    let join = coordinator.send(Join);
    coordinator.send(Interrupt).await.unwrap();
    for task in &handed {
        let cancelled = TaskFinished { id: task.id, outcome: Err(TaskError::Interrupted), attempts: 1 };
        coordinator.send(cancelled).await.unwrap();
    }
    // Answered once this process holds nothing, though the job (`is_done`) is not done.
    let summary = tokio::time::timeout(Duration::from_secs(10), join).await.unwrap().unwrap().unwrap();
    assert_eq!((summary.images.failed, summary.images.total), (0, 0), "nothing of its share failed");
    let calls = calls.borrow();
    assert_eq!(calls.iter().filter(|(call, _)| *call == "release").count(), 2, "{calls:?}");
    assert!(calls.iter().all(|(call, _)| *call == "release"), "no lease completed: {calls:?}");
}

/// A store whose flush says it began, then waits for the test's go (or ten seconds, a
/// hang guard): a bucket's last PUT to a slow S3.
#[derive(Debug)]
struct SlowFlush {
    /// Where everything but the flush goes.
    folder: Arc<dyn Store>,
    /// Told when the flush begins.
    began: tokio::sync::mpsc::UnboundedSender<()>,
    /// The test's go.
    go: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Store for SlowFlush {
    fn begin<'a>(&'a self, task: &'a ImageTask) -> crate::store::Opening<'a> {
        self.folder.begin(task)
    }

    fn lookup(&self, url: &Url) -> Lookup {
        self.folder.lookup(url)
    }

    fn record(&self, url: &Url, name: &str, bytes: u64) -> std::io::Result<()> {
        self.folder.record(url, name, bytes)
    }

    fn flush(&self) -> std::io::Result<()> {
        let _ = self.began.send(());
        let _ = self.go.lock().unwrap().recv_timeout(Duration::from_secs(10));
        self.folder.flush()
    }

    fn remove_partials(&self) {}
}

#[actix::test]
async fn the_last_flush_runs_off_the_coordinator_and_join_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let (began_tx, mut began) = tokio::sync::mpsc::unbounded_channel();
    let (go, go_rx) = std::sync::mpsc::channel();
    let store = SlowFlush { folder: folder(dir.path()), began: began_tx, go: std::sync::Mutex::new(go_rx) };
    let pages = PageUrls::new(url("http://h.test/"), "p{page}/cats.html", "cats").unwrap();
    let source = Source::Pages { pages, first_page: 1, max_pages: Some(1) };
    let plan = Plan::new(source, Arc::new(store));
    let coordinator = in_memory(plan, Logger::root(slog::Discard, slog::o!())).start();
    let (_probe, handed) = register(&coordinator, 2).await;
    let mut join = Box::pin(coordinator.send(Join));
    coordinator.send(page_done(handed[0].id, &[], Some(1))).await.unwrap();
    began.recv().await.expect("the flush began");
    // The Coordinator still answers while the flush waits, and the run is not over.
    coordinator.send(GetCounts).await.unwrap();
    assert!(futures_util::poll!(&mut join).is_pending(), "joined before the record was durable");
    go.send(()).unwrap();
    let summary = join.await.unwrap().expect("a summary");
    assert_eq!(summary.pages.ok, 1);
}

/// A store where every image is complete already (a re-run of a finished list).
#[derive(Debug)]
struct AllComplete;

impl Store for AllComplete {
    fn begin<'a>(&'a self, _: &'a ImageTask) -> crate::store::Opening<'a> {
        unreachable!("nothing is fetched")
    }

    fn lookup(&self, url: &Url) -> Lookup {
        Lookup::Complete { name: url.path().trim_start_matches('/').to_string(), bytes: 1 }
    }

    fn record(&self, _: &Url, _: &str, _: u64) -> std::io::Result<()> {
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn remove_partials(&self) {}
}

/// Images that end as they are claimed (complete from an earlier run) leave room for
/// more at once: a re-run of a finished list must not wait a liveness tick per free slot
/// (3,000 images with two workers took twelve minutes).
#[actix::test]
async fn a_rerun_of_a_finished_list_skips_it_all_in_one_step() {
    let (rows, list) = super::feed::list_channel();
    let mut n = 0;
    // The whole list waits in the channel before the Coordinator starts.
    while rows
        .try_send(
            (0..BATCH)
                .map(|i| ListEntry {
                    index: (n + i) as u64,
                    url: Ok(url(&format!("http://h.test/{}.jpg", n + i))),
                    carried: None,
                })
                .collect(),
        )
        .is_ok()
    {
        n += BATCH;
    }
    drop(rows);
    let list_source = UrlList { spec: list_spec(), rows: Some(n as u64), digest: None };
    let plan = Plan { list: Some(list), ..Plan::new(Source::Urls(list_source), Arc::new(AllComplete)) };
    let log = Logger::root(slog::Discard, slog::o!());
    let coordinator = Coordinator::new(plan, Box::new(LocalFrontier::empty()), log).start();
    let (_probe, handed) = register(&coordinator, 1).await;
    assert!(handed.is_empty(), "nothing to fetch");
    // The step that registered the worker's one slot took them all.
    let (_, images) = coordinator.send(GetCounts).await.unwrap();
    assert_eq!((images.skipped, images.total), (n as u64, n as u64));
    assert!(n >= 4 * BATCH);
}

fn list_spec() -> crate::urllist::ListSpec {
    crate::urllist::ListSpec {
        inputs: vec![crate::urllist::Input::File("list.txt".into())],
        format: None,
        url_column: "url".into(),
    }
}
