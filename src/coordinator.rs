//! The Coordinator: owns the work (pages to fetch, then the images they reveal), hands it
//! out to registered workers within their capacity, counts what comes back, and answers
//! [`Join`] once every task it handed out has been acknowledged.
//!
//! It is the only place that touches the queue and the counts. Workers are anything
//! behind a `Recipient<RunTask>`; the Coordinator never knows their type.

use std::collections::{HashMap, HashSet, VecDeque};

use actix::prelude::*;
use slog::{Logger, debug, info, warn};
use tokio::sync::oneshot;
use url::Url;
use xxhash_rust::xxh3::xxh3_128;

use crate::html::PageScan;
use crate::report::{ImageCounts, Item, PageCounts, Status, Summary};
use crate::settings::PageUrls;
use crate::storage;
use crate::work::{Done, RunTask, Task, TaskError, TaskId};

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
}

impl Message for TaskFinished {
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

/// What to fetch, fixed before the run starts.
pub struct Plan {
    pub pages: PageUrls,
    /// `AMOUNT_PAGES`; lowered to the count page 1 states. `None`: take that count (or
    /// only page 1 when the page states none).
    pub max_pages: Option<u32>,
    /// Keep one [`Item`] per image for the report.
    pub record_items: bool,
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
    url: Url,
    name: String,
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
    /// Lower-cased names handed out, so two URLs never share a file, even on a
    /// case-insensitive file system.
    taken_names: HashSet<String>,
    pages: PageCounts,
    images: ImageCounts,
    items: Vec<Item>,
    joiners: Vec<oneshot::Sender<Summary>>,
}

impl Coordinator {
    pub fn new(plan: Plan, log: Logger) -> Self {
        let last_page = plan.max_pages.unwrap_or(1).max(1);
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
            taken_names: HashSet::new(),
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
        self.first_page_done
            && self.next_page > self.last_page
            && self.pending.is_empty()
            && self.in_flight.is_empty()
    }

    /// The next task by priority: page 1 first and alone; then a page when the image
    /// queue is running short; else an image.
    fn next_task(&mut self) -> Option<(Task, u32)> {
        if !self.first_page_sent {
            self.first_page_sent = true;
            return Some((self.page_task(1), 1));
        }
        let page_due = self.first_page_done
            && self.next_page <= self.last_page
            && self.pages_in_flight < self.max_pages_in_flight();
        if page_due && self.pending.len() < self.capacity() {
            let n = self.next_page;
            self.next_page += 1;
            return Some((self.page_task(n), n));
        }
        if let Some(image) = self.pending.pop_front() {
            let task = Task::Image {
                url: image.url,
                name: image.name,
            };
            return Some((task, image.page));
        }
        if page_due {
            let n = self.next_page;
            self.next_page += 1;
            return Some((self.page_task(n), n));
        }
        None
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
        loop {
            let Some(slot) = self.least_loaded_slot() else {
                return;
            };
            if !self.slots[slot].tasks.connected() {
                warn!(self.log, "worker is gone"; "slot" => slot);
                self.slots[slot].capacity = 0;
                self.fail_in_flight_of(slot);
                continue;
            }
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

    fn fail_in_flight_of(&mut self, slot: usize) {
        let lost: Vec<TaskId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.slot == slot)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            let outcome = Err(TaskError::Worker("worker stopped".into()));
            self.finish(TaskFinished { id, outcome });
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
                self.page_finished(number, &url, outcome);
            }
            (Task::Image { url, name }, Ok(Done::Image { bytes })) => {
                debug!(self.log, "image saved"; "url" => %url, "path" => &name, "bytes" => bytes);
                self.images.ok += 1;
                self.images.bytes += bytes;
                self.record(url, done.page, name, Status::Ok, bytes, None);
            }
            (Task::Image { url, name }, outcome) => {
                let error = match outcome {
                    Err(e) => e.to_string(),
                    Ok(other) => format!("worker answered an image with {other:?}"),
                };
                warn!(self.log, "image failed"; "url" => %url, "error" => &error);
                self.images.failed += 1;
                self.record(url, done.page, name, Status::Failed, 0, Some(error));
            }
        }
    }

    fn page_finished(&mut self, number: u32, url: &Url, outcome: Result<Done, TaskError>) {
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
                warn!(self.log, "page failed"; "page" => number, "url" => %url, "error" => error);
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
        if stated < wanted {
            info!(self.log, "site states its page count"; "pages" => stated, "asked" => self.plan.max_pages);
        }
        self.last_page = stated.min(wanted);
    }

    fn enqueue_images(&mut self, page: u32, scan: PageScan) {
        let found = scan.images.len();
        let mut new = 0;
        for url in scan.images {
            if !self.seen_urls.insert(xxh3_128(url.as_str().as_bytes())) {
                continue;
            }
            new += 1;
            let name = self.claim_name(&url);
            self.images.total += 1;
            self.pending.push_back(PendingImage { url, name, page });
        }
        debug!(self.log, "page scanned"; "page" => page, "images" => found, "new" => new);
    }

    /// The URL's own file name, or that name with a URL-derived suffix when another URL
    /// already has it.
    fn claim_name(&mut self, url: &Url) -> String {
        let base = storage::file_name(url);
        let mut name = base.clone();
        let mut attempt = 0u32;
        while !self.taken_names.insert(name.to_lowercase()) {
            attempt += 1;
            let suffixed = storage::with_suffix(&base, url);
            name = if attempt == 1 {
                suffixed
            } else {
                storage::with_suffix(&format!("{attempt}-{suffixed}"), url)
            };
        }
        name
    }

    fn record(
        &mut self,
        url: Url,
        page: u32,
        path: String,
        status: Status,
        bytes: u64,
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
        if self.is_finished() && !self.joiners.is_empty() {
            let summary = self.summary();
            for joiner in self.joiners.drain(..) {
                let _ = joiner.send(summary.clone());
            }
        }
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;
}

impl Handler<RegisterWorker> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: RegisterWorker, _: &mut Context<Self>) {
        if msg.capacity == 0 {
            return;
        }
        self.slots.push(Slot {
            tasks: msg.tasks,
            capacity: msg.capacity,
            busy: 0,
        });
        self.dispatch();
    }
}

impl Handler<TaskFinished> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: TaskFinished, _: &mut Context<Self>) {
        self.finish(msg);
        self.dispatch();
        self.answer_joiners_if_finished();
    }
}

impl Handler<Join> for Coordinator {
    type Result = ResponseFuture<Option<Summary>>;

    fn handle(&mut self, _: Join, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.joiners.push(tx);
        self.answer_joiners_if_finished();
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
