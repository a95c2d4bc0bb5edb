//! The Coordinator: owns the work (pages to fetch, then the images they reveal), hands it
//! out to registered workers within their capacity, counts what comes back, and answers
//! [`Join`] once every task it handed out has been acknowledged.
//!
//! It is the only place that touches the queue, the counts and the resume record.
//! Workers are anything behind a `Recipient<RunTask>`; the Coordinator never knows their
//! type.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;
use slog::{Logger, debug, info, warn};
use tokio::sync::oneshot;
use url::Url;
use xxhash_rust::xxh3::xxh3_128;

use crate::html::PageScan;
use crate::report::{ImageCounts, Item, PageCounts, Status, Summary};
use crate::settings::PageUrls;
use crate::state::Resume;
use crate::storage;
use crate::work::{Done, ImageTask, RunTask, Task, TaskError, TaskId};

/// After an interrupt, how long tasks in flight get to acknowledge their cancellation
/// before they are counted as failed anyway (a blocking read can outlast it).
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// Command: add a worker that can hold `capacity` tasks at once. For a `SyncArbiter` pool
/// that is its thread count (its threads share one mailbox); for an async worker it is
/// how many requests it may keep in flight.
pub struct RegisterWorker {
    pub tasks: Recipient<RunTask>,
    pub capacity: usize,
}

impl Message for RegisterWorker {
    type Result = ();
}

/// Event: a worker finished the task it was handed as `id`.
#[derive(Debug)]
pub struct TaskFinished {
    pub id: TaskId,
    pub outcome: Result<Done, TaskError>,
    /// Requests made, retries included.
    pub attempts: u32,
}

impl Message for TaskFinished {
    type Result = ();
}

/// Command: stop handing out work (SIGINT/SIGTERM). What was never handed out counts as
/// failed; what is in flight has [`INTERRUPT_GRACE`] to acknowledge.
pub struct Interrupt;

impl Message for Interrupt {
    type Result = ();
}

/// Request: answer when all work is acknowledged, with the summary. The counterpart of
/// `JoinableQueue.join()`. `None` if the Coordinator stopped before the work was done.
pub struct Join;

impl Message for Join {
    type Result = Option<Summary>;
}

/// Request: the counts so far (items left out), answered at once.
pub struct GetCounts;

impl Message for GetCounts {
    type Result = (PageCounts, ImageCounts);
}

/// What to fetch and where it goes, fixed before the run starts.
pub struct Plan {
    pub pages: PageUrls,
    /// `AMOUNT_PAGES`; lowered to the count page 1 states. `None`: take that count (or
    /// only page 1 when the page states none).
    pub max_pages: Option<u32>,
    /// Keep one [`Item`] per image for the report.
    pub record_items: bool,
    /// The out dir, to see which files exist.
    pub out_dir: PathBuf,
    /// What earlier runs completed; appended to as images complete.
    pub resume: Resume,
    /// Download again what the resume record says is complete (`--force`).
    pub force: bool,
}

struct Slot {
    tasks: Recipient<RunTask>,
    capacity: usize,
    busy: usize,
}

/// A task handed out and not yet acknowledged.
struct InFlight {
    slot: usize,
    task: Task,
    /// For images: the page that revealed it.
    page: u32,
}

/// An image waiting for a free slot.
struct PendingImage {
    task: ImageTask,
    page: u32,
}

pub struct Coordinator {
    plan: Plan,
    log: Logger,
    slots: Vec<Slot>,
    /// Page 1 goes out alone: it may lower the page count, and asking for pages the site
    /// does not have would only produce failures.
    first_page_done: bool,
    first_page_sent: bool,
    /// Next page number to hand out, and the last one to fetch (inclusive).
    next_page: u32,
    last_page: u32,
    pages_in_flight: usize,
    /// Images found and not yet handed out. Pages go out only while this is short, so
    /// it never grows much beyond one page's worth per page in flight.
    pending: VecDeque<PendingImage>,
    in_flight: HashMap<TaskId, InFlight>,
    next_id: TaskId,
    /// 128-bit hashes of every image URL found: the same URL on two pages is downloaded
    /// once, and a hash costs 16 bytes where the URL would cost a hundred.
    seen_urls: HashSet<u128>,
    /// Lower-cased names handed out or recorded by earlier runs, so two URLs never share
    /// a file, even on a case-insensitive file system.
    taken_names: HashSet<String>,
    /// Set by [`Interrupt`]: nothing more is handed out.
    interrupted: bool,
    /// The resume record could not be written: warned once.
    resume_warned: bool,
    pages: PageCounts,
    images: ImageCounts,
    items: Vec<Item>,
    joiners: Vec<oneshot::Sender<Summary>>,
}

impl Coordinator {
    pub fn new(plan: Plan, log: Logger) -> Self {
        let last_page = plan.max_pages.unwrap_or(1).max(1);
        let taken_names = plan.resume.names().map(str::to_lowercase).collect();
        Self {
            plan,
            log,
            slots: Vec::new(),
            first_page_done: false,
            first_page_sent: false,
            next_page: 2,
            last_page,
            pages_in_flight: 0,
            pending: VecDeque::new(),
            in_flight: HashMap::new(),
            next_id: 0,
            seen_urls: HashSet::new(),
            taken_names,
            interrupted: false,
            resume_warned: false,
            pages: PageCounts::default(),
            images: ImageCounts::default(),
            items: Vec::new(),
            joiners: Vec::new(),
        }
    }

    fn capacity(&self) -> usize {
        self.slots.iter().map(|s| s.capacity).sum()
    }

    /// Pages fetched ahead of need: enough to keep every slot fed when a page holds few
    /// images, few enough that found-but-waiting images stay a small queue.
    fn max_pages_in_flight(&self) -> usize {
        (self.capacity() / 16).clamp(2, 16)
    }

    fn is_finished(&self) -> bool {
        self.in_flight.is_empty()
            && self.pending.is_empty()
            && self.first_page_done
            && self.next_page > self.last_page
    }

    /// The next task by priority: page 1 first and alone; then a page when the image
    /// queue is running short; else an image.
    fn next_task(&mut self) -> Option<(Task, u32)> {
        if self.interrupted {
            return None;
        }
        if !self.first_page_sent {
            self.first_page_sent = true;
            return Some((self.page_task(1), 1));
        }
        let page_due = self.first_page_done
            && self.next_page <= self.last_page
            && self.pages_in_flight < self.max_pages_in_flight();
        if page_due && self.pending.len() < self.capacity() {
            return Some(self.next_page_task());
        }
        if let Some(image) = self.pending.pop_front() {
            return Some((Task::Image(image.task), image.page));
        }
        if page_due {
            return Some(self.next_page_task());
        }
        None
    }

    fn next_page_task(&mut self) -> (Task, u32) {
        let n = self.next_page;
        self.next_page += 1;
        (self.page_task(n), n)
    }

    fn page_task(&mut self, number: u32) -> Task {
        self.pages_in_flight += 1;
        Task::Page {
            number,
            url: self.plan.pages.url(number),
        }
    }

    /// Hands out tasks while some worker has room, always to the least loaded one so
    /// async workers share the load.
    fn dispatch(&mut self) {
        self.drop_dead_workers();
        while let Some(slot) = self.least_loaded_slot() {
            let Some((task, page)) = self.next_task() else {
                return;
            };
            let id = self.next_id;
            self.next_id += 1;
            self.slots[slot].busy += 1;
            self.slots[slot].tasks.do_send(RunTask {
                id,
                task: task.clone(),
            });
            self.in_flight.insert(id, InFlight { slot, task, page });
        }
    }

    fn least_loaded_slot(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.busy < s.capacity)
            .min_by_key(|(_, s)| s.busy * 1024 / s.capacity)
            .map(|(i, _)| i)
    }

    /// A worker whose mailbox is gone (its Arbiter or thread died) will never acknowledge
    /// what it holds: count that as failed, and if no worker is left, the rest too,
    /// rather than wait forever.
    fn drop_dead_workers(&mut self) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].capacity > 0 && !self.slots[slot].tasks.connected() {
                warn!(self.log, "worker is gone"; "slot" => slot);
                self.slots[slot].capacity = 0;
                self.fail_in_flight(Some(slot), TaskError::Worker("worker stopped".into()));
            }
        }
        if !self.slots.is_empty() && self.slots.iter().all(|s| s.capacity == 0) {
            self.abandon_remaining("no worker left");
        }
    }

    /// Counts the tasks in flight (on `slot`, or on every slot) as failed.
    fn fail_in_flight(&mut self, slot: Option<usize>, error: TaskError) {
        let lost: Vec<TaskId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| slot.is_none_or(|s| f.slot == s))
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.finish(TaskFinished {
                id,
                outcome: Err(error.clone()),
                attempts: 1,
            });
        }
    }

    /// Counts every page and image not yet handed out as failed with `reason`.
    fn abandon_remaining(&mut self, reason: &str) {
        if !self.first_page_sent {
            self.first_page_sent = true;
            self.first_page_done = true;
            self.next_page = 1;
        }
        if self.next_page <= self.last_page {
            let unsent = u64::from(self.last_page - self.next_page + 1);
            warn!(self.log, "pages abandoned"; "count" => unsent, "reason" => reason);
            self.pages.failed += unsent;
            self.next_page = self.last_page + 1;
        }
        while let Some(image) = self.pending.pop_front() {
            self.images.failed += 1;
            let (task, page) = (image.task, image.page);
            self.record(
                task.url,
                page,
                task.name,
                Status::Failed,
                0,
                0,
                Some(reason.to_string()),
            );
        }
    }

    fn finish(&mut self, msg: TaskFinished) {
        let Some(done) = self.in_flight.remove(&msg.id) else {
            warn!(self.log, "acknowledgement for an unknown task"; "id" => msg.id);
            return;
        };
        let slot = &mut self.slots[done.slot];
        slot.busy = slot.busy.saturating_sub(1);
        match (done.task, msg.outcome) {
            (Task::Page { number, url }, outcome) => {
                self.pages_in_flight -= 1;
                self.page_finished(number, &url, outcome, msg.attempts);
            }
            (Task::Image(task), Ok(Done::Image { bytes, name })) => {
                debug!(self.log, "image saved"; "url" => %task.url, "path" => &name, "bytes" => bytes);
                self.images.ok += 1;
                self.images.bytes += bytes;
                if let Err(e) = self.plan.resume.record(&task.url, &name, bytes)
                    && !self.resume_warned
                {
                    self.resume_warned = true;
                    warn!(self.log, "cannot update the resume record: a re-run will fetch these again"; "error" => %e);
                }
                self.record(task.url, done.page, name, Status::Ok, bytes, msg.attempts, None);
            }
            (Task::Image(task), outcome) => {
                let error = match outcome {
                    Err(e) => e.to_string(),
                    Ok(other) => format!("worker answered an image with {other:?}"),
                };
                warn!(self.log, "image failed"; "url" => %task.url, "error" => &error, "attempts" => msg.attempts);
                self.images.failed += 1;
                self.record(
                    task.url,
                    done.page,
                    task.name,
                    Status::Failed,
                    0,
                    msg.attempts,
                    Some(error),
                );
            }
        }
    }

    fn page_finished(&mut self, number: u32, url: &Url, outcome: Result<Done, TaskError>, attempts: u32) {
        match outcome {
            Ok(Done::Page(scan)) => {
                self.pages.ok += 1;
                if number == 1 {
                    self.clamp_pages(scan.page_count);
                }
                self.enqueue_images(number, scan);
            }
            other => {
                let error = match other {
                    Err(e) => e.to_string(),
                    Ok(done) => format!("worker answered a page with {done:?}"),
                };
                warn!(self.log, "page failed"; "page" => number, "url" => %url, "error" => error, "attempts" => attempts);
                self.pages.failed += 1;
            }
        }
        if number == 1 {
            self.first_page_done = true;
        }
    }

    fn clamp_pages(&mut self, stated: Option<u32>) {
        let Some(stated) = stated.map(|n| n.max(1)) else {
            return;
        };
        let wanted = self.plan.max_pages.unwrap_or(u32::MAX);
        self.last_page = stated.min(wanted);
        info!(self.log, "page 1 states the page count"; "stated" => stated, "fetching" => self.last_page);
    }

    fn enqueue_images(&mut self, page: u32, scan: PageScan) {
        let found = scan.images.len();
        let mut new = 0;
        for url in scan.images {
            if !self.seen_urls.insert(xxh3_128(url.as_str().as_bytes())) {
                continue;
            }
            new += 1;
            self.images.total += 1;
            if let Some(task) = self.plan_image(url, page) {
                self.pending.push_back(PendingImage { task, page });
            }
        }
        debug!(self.log, "page scanned"; "page" => page, "images" => found, "new" => new);
    }

    /// Decides what to do with a newly found image: skip it (an earlier run completed it
    /// and the file is still whole), or download it under the name an earlier run gave
    /// it, or under a new name no other URL has.
    fn plan_image(&mut self, url: Url, page: u32) -> Option<ImageTask> {
        if let Some(done) = self.plan.resume.get(&url).cloned() {
            let on_disk = std::fs::metadata(storage::destination(&self.plan.out_dir, &done.path))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            if !self.plan.force && on_disk == Some(done.bytes) {
                self.images.skipped += 1;
                self.record(url, page, done.path, Status::Skipped, done.bytes, 0, None);
                return None;
            }
            return Some(ImageTask {
                url,
                name: done.path,
                if_taken: None,
            });
        }
        let name = self.claim_name(&url, false);
        let if_taken = storage::destination(&self.plan.out_dir, &name)
            .symlink_metadata()
            .is_ok()
            .then(|| self.claim_name(&url, true));
        Some(ImageTask { url, name, if_taken })
    }

    /// The URL's own file name, or that name with a URL-derived suffix when another URL
    /// has it (or, with `free_on_disk`, when a file is there).
    fn claim_name(&mut self, url: &Url, free_on_disk: bool) -> String {
        let base = storage::file_name(url);
        let suffixed = storage::with_suffix(&base, url);
        let candidates = std::iter::once(base.clone())
            .chain(std::iter::once(suffixed.clone()))
            .chain((2u32..).map(|n| storage::with_suffix(&format!("{n}-{suffixed}"), url)));
        for name in candidates {
            let on_disk = free_on_disk
                && storage::destination(&self.plan.out_dir, &name)
                    .symlink_metadata()
                    .is_ok();
            if !on_disk && self.taken_names.insert(name.to_lowercase()) {
                return name;
            }
        }
        unreachable!("the candidate names never run out")
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        url: Url,
        page: u32,
        path: String,
        status: Status,
        bytes: u64,
        attempts: u32,
        error: Option<String>,
    ) {
        if self.plan.record_items {
            let url = url.into();
            self.items.push(Item {
                url,
                page,
                path,
                status,
                bytes,
                attempts,
                error,
            });
        }
    }

    fn summary(&mut self) -> Summary {
        let mut pages = self.pages;
        pages.total = pages.ok + pages.failed;
        Summary {
            pages,
            images: self.images,
            items: std::mem::take(&mut self.items),
        }
    }

    fn answer_joiners_if_finished(&mut self) {
        if self.interrupted && self.in_flight.is_empty() {
            // Page 1 may have come back after the interrupt, with pages to count.
            self.abandon_remaining("interrupted");
        }
        if self.is_finished() && !self.joiners.is_empty() {
            let summary = self.summary();
            for joiner in self.joiners.drain(..) {
                let _ = joiner.send(summary.clone());
            }
        }
    }

    /// Every handler ends here: hand out what can go, answer `Join` if all is done.
    fn step(&mut self) {
        self.dispatch();
        self.answer_joiners_if_finished();
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;
}

impl Handler<RegisterWorker> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: RegisterWorker, _: &mut Context<Self>) {
        if msg.capacity > 0 {
            self.slots.push(Slot {
                tasks: msg.tasks,
                capacity: msg.capacity,
                busy: 0,
            });
        }
        self.step();
    }
}

impl Handler<TaskFinished> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: TaskFinished, _: &mut Context<Self>) {
        self.finish(msg);
        self.step();
    }
}

impl Handler<Interrupt> for Coordinator {
    type Result = ();

    fn handle(&mut self, _: Interrupt, ctx: &mut Context<Self>) {
        if self.interrupted {
            return;
        }
        self.interrupted = true;
        warn!(self.log, "interrupted: finishing what is in flight"; "in_flight" => self.in_flight.len());
        self.abandon_remaining("interrupted");
        ctx.run_later(INTERRUPT_GRACE, |act, _| {
            act.fail_in_flight(None, TaskError::Interrupted);
            act.step();
        });
        self.step();
    }
}

impl Handler<Join> for Coordinator {
    type Result = ResponseFuture<Option<Summary>>;

    fn handle(&mut self, _: Join, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.joiners.push(tx);
        self.step();
        Box::pin(async move { rx.await.ok() })
    }
}

impl Handler<GetCounts> for Coordinator {
    type Result = MessageResult<GetCounts>;

    fn handle(&mut self, _: GetCounts, _: &mut Context<Self>) -> Self::Result {
        let mut pages = self.pages;
        pages.total = pages.ok + pages.failed;
        MessageResult((pages, self.images))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;
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

    /// A Coordinator writing into `out` (its resume record there too).
    fn start_in(out: &Path, max_pages: Option<u32>, force: bool) -> Addr<Coordinator> {
        let (resume, _) = Resume::load(&out.join("done.jsonl"));
        let plan = Plan {
            pages: PageUrls::new(url("http://h.test/"), "p{page}/cats.html", "cats").unwrap(),
            max_pages,
            record_items: true,
            out_dir: out.to_path_buf(),
            resume,
            force,
        };
        Coordinator::new(plan, Logger::root(slog::Discard, slog::o!())).start()
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
        coordinator
            .send(RegisterWorker { tasks, capacity })
            .await
            .unwrap();
        let handed = probe.send(Take).await.unwrap();
        (probe, handed)
    }

    fn page_done(id: TaskId, images: &[&str], page_count: Option<u32>) -> TaskFinished {
        let images = images.iter().map(|s| url(s)).collect();
        let outcome = Ok(Done::Page(PageScan { images, page_count }));
        TaskFinished {
            id,
            outcome,
            attempts: 1,
        }
    }

    /// What a worker reports for an image it saved, having saved it as a worker does.
    fn image_done(out: &Path, task: &RunTask, bytes: u64) -> TaskFinished {
        let name = image_name(task).to_string();
        std::fs::write(out.join(&name), vec![0u8; bytes as usize]).unwrap();
        let outcome = Ok(Done::Image { bytes, name });
        TaskFinished {
            id: task.id,
            outcome,
            attempts: 1,
        }
    }

    fn failed(id: TaskId, status: u16) -> TaskFinished {
        let outcome = Err(TaskError::status(status));
        TaskFinished {
            id,
            outcome,
            attempts: 4,
        }
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
                    Task::Page { .. } => page_done(task.id, &[], None),
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
        let page1 = [
            "http://h.test/a.jpg",
            "http://h.test/b.jpg",
            "http://h.test/a.jpg",
        ];
        coordinator
            .send(page_done(handed[0].id, &page1, Some(2)))
            .await
            .unwrap();
        let handed = probe.send(Take).await.unwrap();
        assert_eq!(pages_of(&handed), [2], "clamped to the 2 pages the site states");
        assert_eq!(handed.len(), 3, "page 2 and the two distinct images");

        let page2 = handed
            .iter()
            .find(|t| matches!(t.task, Task::Page { .. }))
            .unwrap()
            .id;
        let (a, b) = (image_of(&handed, "a.jpg"), image_of(&handed, "b.jpg").id);
        coordinator.send(image_done(dir.path(), a, 100)).await.unwrap();
        coordinator.send(failed(b, 404)).await.unwrap();
        let page2_images = ["http://h.test/a.jpg", "http://h.test/c.jpg"];
        coordinator
            .send(page_done(page2, &page2_images, None))
            .await
            .unwrap();
        let handed = probe.send(Take).await.unwrap();
        assert_eq!(handed.len(), 1, "a.jpg again is not downloaded again");
        let c = image_of(&handed, "c.jpg");

        assert!(
            futures_util::poll!(&mut join).is_pending(),
            "c.jpg is still in flight"
        );
        let (pages, images) = coordinator.send(GetCounts).await.unwrap();
        assert_eq!((pages.ok, images.ok, images.failed, images.total), (2, 1, 1, 3));

        coordinator.send(image_done(dir.path(), c, 50)).await.unwrap();
        let summary = join.await.unwrap().expect("a summary");
        assert_eq!(
            summary.pages,
            PageCounts {
                total: 2,
                ok: 2,
                failed: 0
            }
        );
        assert_eq!(
            summary.images,
            ImageCounts {
                total: 3,
                ok: 2,
                failed: 1,
                skipped: 0,
                bytes: 150
            }
        );
        let failed_item = summary.items.iter().find(|i| i.status == Status::Failed).unwrap();
        assert_eq!(failed_item.url, "http://h.test/b.jpg");
        assert_eq!(failed_item.error.as_deref(), Some("HTTP status 404"));
        assert_eq!(failed_item.attempts, 4);
        assert_eq!(summary.items.len(), 3);
        assert_eq!(summary.exit_code(), 1);
    }

    #[actix::test]
    async fn nothing_is_counted_twice() {
        let (coordinator, dir) = start(Some(1));
        let (probe, handed) = register(&coordinator, 4).await;
        coordinator
            .send(page_done(handed[0].id, &["http://h.test/a.jpg"], None))
            .await
            .unwrap();
        coordinator
            .send(page_done(handed[0].id, &["http://h.test/z.jpg"], None))
            .await
            .unwrap();
        let handed = probe.send(Take).await.unwrap();
        assert_eq!(handed.len(), 1);
        let stranger = RunTask {
            id: 999,
            task: handed[0].task.clone(),
        };
        coordinator
            .send(image_done(dir.path(), &stranger, 1))
            .await
            .unwrap();
        coordinator
            .send(image_done(dir.path(), &handed[0], 7))
            .await
            .unwrap();
        coordinator
            .send(image_done(dir.path(), &handed[0], 7))
            .await
            .unwrap();
        let summary = coordinator.send(Join).await.unwrap().unwrap();
        assert_eq!(summary.pages.ok, 1);
        assert_eq!(
            summary.images,
            ImageCounts {
                total: 1,
                ok: 1,
                failed: 0,
                skipped: 0,
                bytes: 7
            }
        );
    }

    #[actix::test]
    async fn work_in_flight_never_exceeds_capacity() {
        let (coordinator, dir) = start(Some(3));
        let (probe, handed) = register(&coordinator, 2).await;
        let images: Vec<String> = (0..10).map(|i| format!("http://h.test/{i}.jpg")).collect();
        let images: Vec<&str> = images.iter().map(String::as_str).collect();
        coordinator
            .send(page_done(handed[0].id, &images, Some(3)))
            .await
            .unwrap();
        let mut outstanding = probe.send(Take).await.unwrap();
        let mut handed_total = 0;
        while !outstanding.is_empty() {
            assert!(
                outstanding.len() <= 2,
                "{} tasks out with capacity 2",
                outstanding.len()
            );
            handed_total += outstanding.len();
            for task in outstanding.drain(..) {
                let finished = match task.task {
                    Task::Page { .. } => page_done(task.id, &[], None),
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
        let page = [
            "http://h.test/a/cat.jpg",
            "http://h.test/b/cat.jpg",
            "http://h.test/c/CAT.jpg",
        ];
        coordinator
            .send(page_done(handed[0].id, &page, None))
            .await
            .unwrap();
        let handed = probe.send(Take).await.unwrap();
        let names: Vec<&str> = handed.iter().map(image_name).collect();
        assert_eq!(names[0], "cat.jpg");
        assert_eq!(names[1], storage::with_suffix("cat.jpg", &url(page[1])));
        assert_eq!(
            names[2],
            storage::with_suffix("CAT.jpg", &url(page[2])),
            "case-insensitive clash"
        );
    }

    #[actix::test]
    async fn a_failed_first_page_still_lets_the_others_run() {
        let (coordinator, _dir) = start(Some(2));
        let (probe, handed) = register(&coordinator, 4).await;
        coordinator.send(failed(handed[0].id, 500)).await.unwrap();
        let handed = probe.send(Take).await.unwrap();
        assert_eq!(pages_of(&handed), [2]);
        coordinator
            .send(page_done(handed[0].id, &[], None))
            .await
            .unwrap();
        let summary = coordinator.send(Join).await.unwrap().unwrap();
        assert_eq!(
            summary.pages,
            PageCounts {
                total: 2,
                ok: 1,
                failed: 1
            }
        );
    }

    #[actix::test]
    async fn a_dead_worker_fails_its_tasks_instead_of_hanging() {
        let (coordinator, _dir) = start(Some(3));
        let (probe, handed) = register(&coordinator, 4).await;
        let images = [
            "http://h.test/a.jpg",
            "http://h.test/b.jpg",
            "http://h.test/c.jpg",
            "http://h.test/d.jpg",
        ];
        coordinator
            .send(page_done(handed[0].id, &images, Some(3)))
            .await
            .unwrap();
        probe.send(Stop).await.unwrap();
        drop(probe);
        // Any message makes the Coordinator look at its workers again. The timeout turns
        // a regression (a hang) into a failure.
        let join = tokio::time::timeout(Duration::from_secs(10), coordinator.send(Join));
        let summary = join.await.expect("join hung").unwrap().unwrap();
        assert_eq!(
            summary.pages,
            PageCounts {
                total: 3,
                ok: 1,
                failed: 2
            }
        );
        assert_eq!((summary.images.total, summary.images.failed), (4, 4));
    }

    #[actix::test]
    async fn a_rerun_skips_what_is_complete_and_keeps_names_stable() {
        let dir = tempfile::tempdir().unwrap();
        let page = [
            "http://h.test/a/cat.jpg",
            "http://h.test/b/cat.jpg",
            "http://h.test/dog.jpg",
        ];
        // First run: everything downloaded; b's cat gets the suffix.
        let coordinator = start_in(dir.path(), Some(1), false);
        let (probe, handed) = register(&coordinator, 8).await;
        coordinator
            .send(page_done(handed[0].id, &page, None))
            .await
            .unwrap();
        let first = drain(dir.path(), &coordinator, &probe).await;
        assert_eq!(first.images.ok, 3);
        let names_before: HashMap<String, String> = first
            .items
            .iter()
            .map(|i| (i.url.clone(), i.path.clone()))
            .collect();

        // The dog's file is damaged; the cats are whole. Page order changes: b first.
        std::fs::write(dir.path().join("dog.jpg"), b"x").unwrap();
        let coordinator = start_in(dir.path(), Some(1), false);
        let (probe, handed) = register(&coordinator, 8).await;
        let reordered = [page[1], page[0], page[2]];
        coordinator
            .send(page_done(handed[0].id, &reordered, None))
            .await
            .unwrap();
        let handed = probe.send(Take).await.unwrap();
        assert_eq!(handed.len(), 1, "only the damaged image is fetched again");
        assert_eq!(image_name(&handed[0]), "dog.jpg");
        coordinator
            .send(image_done(dir.path(), &handed[0], 3))
            .await
            .unwrap();
        let summary = drain(dir.path(), &coordinator, &probe).await;
        assert_eq!(
            (summary.images.ok, summary.images.skipped, summary.images.total),
            (1, 2, 3)
        );
        for item in &summary.items {
            assert_eq!(names_before[&item.url], item.path, "same URL, same file");
        }
        let skipped = summary
            .items
            .iter()
            .find(|i| i.status == Status::Skipped)
            .unwrap();
        assert_eq!((skipped.bytes, skipped.attempts), (3, 0));

        // --force: all again, same names.
        let coordinator = start_in(dir.path(), Some(1), true);
        let (probe, handed) = register(&coordinator, 8).await;
        coordinator
            .send(page_done(handed[0].id, &page, None))
            .await
            .unwrap();
        let handed = probe.send(Take).await.unwrap();
        assert_eq!(handed.len(), 3);
        for task in &handed {
            let Task::Image(image) = &task.task else { panic!() };
            assert_eq!(names_before[image.url.as_str()], image.name);
            assert_eq!(image.if_taken, None, "our own files may be overwritten");
        }
    }

    #[actix::test]
    async fn a_file_of_the_users_is_guarded_by_an_alternative_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cat.jpg"), b"mine").unwrap();
        let coordinator = start_in(dir.path(), Some(1), false);
        let (probe, handed) = register(&coordinator, 8).await;
        coordinator
            .send(page_done(handed[0].id, &["http://h.test/cat.jpg"], None))
            .await
            .unwrap();
        let handed = probe.send(Take).await.unwrap();
        let Task::Image(image) = &handed[0].task else {
            panic!()
        };
        assert_eq!(image.name, "cat.jpg");
        assert_eq!(
            image.if_taken.as_deref(),
            Some(storage::with_suffix("cat.jpg", &image.url).as_str())
        );
    }

    #[actix::test]
    async fn interrupt_stops_handing_out_and_counts_the_rest_as_failed() {
        let (coordinator, dir) = start(Some(5));
        let (probe, handed) = register(&coordinator, 2).await;
        let images = [
            "http://h.test/a.jpg",
            "http://h.test/b.jpg",
            "http://h.test/c.jpg",
            "http://h.test/d.jpg",
        ];
        coordinator
            .send(page_done(handed[0].id, &images, Some(5)))
            .await
            .unwrap();
        let handed = probe.send(Take).await.unwrap();
        assert_eq!(handed.len(), 2);
        let mut join = Box::pin(coordinator.send(Join));
        coordinator.send(Interrupt).await.unwrap();
        assert!(
            futures_util::poll!(&mut join).is_pending(),
            "two tasks still in flight"
        );
        // One finishes, one is cancelled by its worker; nothing new goes out.
        let finished = |t: &RunTask| match &t.task {
            Task::Image(_) => image_done(dir.path(), t, 5),
            Task::Page { .. } => page_done(t.id, &[], None),
        };
        coordinator.send(finished(&handed[0])).await.unwrap();
        let cancelled = TaskFinished {
            id: handed[1].id,
            outcome: Err(TaskError::Interrupted),
            attempts: 1,
        };
        coordinator.send(cancelled).await.unwrap();
        assert!(probe.send(Take).await.unwrap().is_empty());
        let summary = tokio::time::timeout(Duration::from_secs(10), join)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(summary.pages.total, 5, "unsent pages are counted");
        assert_eq!(summary.pages.failed + summary.pages.ok, 5);
        assert_eq!(summary.images.ok + summary.images.failed, summary.images.total);
        assert!(
            summary
                .items
                .iter()
                .any(|i| i.error.as_deref() == Some("interrupted"))
        );
    }

    #[actix::test]
    async fn interrupt_counts_tasks_that_never_answer_after_a_grace() {
        let (coordinator, _dir) = start(Some(1));
        let (_probe, handed) = register(&coordinator, 1).await;
        assert_eq!(handed.len(), 1);
        coordinator.send(Interrupt).await.unwrap();
        // The probe never answers page 1: the grace period ends the wait.
        let join = tokio::time::timeout(INTERRUPT_GRACE * 5, coordinator.send(Join));
        let summary = join.await.expect("join hung").unwrap().unwrap();
        assert_eq!(
            summary.pages,
            PageCounts {
                total: 1,
                ok: 0,
                failed: 1
            }
        );
    }
}
