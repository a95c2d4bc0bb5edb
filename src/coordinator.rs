//! The Coordinator: owns the work (pages to fetch, then the images they reveal), hands it
//! out to registered workers within their capacity, counts what comes back, and answers
//! [`Join`] once every task it handed out has been acknowledged.
//!
//! It is the only place that touches the queue, the counts and the resume record.
//! Workers are anything behind a `Recipient<RunTask>`; the Coordinator never knows their
//! type.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use slog::{Logger, debug, info, warn};
use tokio::sync::oneshot;
use url::Url;
use xxhash_rust::xxh3::xxh3_128;

use crate::config::{Filters, Source};
use crate::html::{Element, Found};
use crate::politeness::HostGate;
use crate::progress::{Progress, Snapshot};
use crate::report::{ImageCounts, Item, PageCounts, Status, Summary};
use crate::robots::{self, Rules};
use crate::storage;
use crate::store::{Lookup, Store};
use crate::validate;
use crate::work::{
    Cancel, Done, ImageTask, MAX_REDIRECTS, RegisterWorker, RunTask, Task, TaskError, TaskFinished, TaskId,
    host_of,
};

/// How often the Coordinator looks for workers that died.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(500);

/// After an interrupt, how long tasks in flight get to acknowledge their cancellation
/// before they are counted as failed anyway (a blocking read can outlast it).
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

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

/// What to fetch, where it goes and how, fixed before the run starts.
pub struct Plan {
    pub source: Source,
    /// Keep one [`Item`] per image (for the report and the failed list).
    pub record_items: bool,
    /// Where images go: asked what earlier runs stored, told what this one stores.
    pub store: Arc<dyn Store>,
    /// Download again what the resume record says is complete (`--force`).
    pub force: bool,
    /// Requests in flight per host, across all workers.
    pub per_host_concurrency: usize,
    /// Fetch each origin's robots.txt first and obey it.
    pub obey_robots: bool,
    /// Told each origin's Crawl-delay.
    pub gate: Arc<HostGate>,
    /// Which images are wanted at all (`--ext`), like the host filter.
    pub filters: Filters,
    /// `--dry-run`: write the URLs here instead of downloading.
    pub listing: Option<Box<dyn Write>>,
    pub progress: Option<Progress>,
    /// `IMAGE_HOST`, lower-cased: where an image found on a page may be redirected to
    /// (the extractor applies it to the URLs on the page). Empty takes any host.
    pub image_host: String,
    /// The longest wait a server may ask for (`RETRY_MAX_WAIT_SECS`): a longer
    /// Crawl-delay is clamped to it.
    pub max_server_wait: Duration,
    /// Tripped when the run must stop (a full disk): workers drop what they are doing.
    pub cancel: Cancel,
}

impl Plan {
    /// The plan for `source` with everything else at its simplest: no robots, no limits
    /// beyond `per_host_concurrency`, no listing, no bar.
    pub fn new(source: Source, store: Arc<dyn Store>) -> Self {
        Self {
            source,
            record_items: true,
            store,
            force: false,
            per_host_concurrency: usize::MAX,
            obey_robots: false,
            gate: Arc::new(HostGate::open()),
            filters: Filters::default(),
            listing: None,
            progress: None,
            image_host: String::new(),
            max_server_wait: Duration::from_secs(60),
            cancel: Cancel::default(),
        }
    }
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
    /// How it came to its URL, and for an image what its page said about it.
    meta: Meta,
}

/// What the Coordinator knows of a task beyond the task itself. Kept here, not in the
/// task: only the Coordinator acts on it, workers only fetch.
#[derive(Debug, Clone, Default)]
struct Meta {
    /// Redirects followed to get to the task's URL.
    hops: u8,
    /// For an image that was redirected: the URL it was found under (what the report
    /// and the resume record name).
    found: Option<Url>,
    /// The rule that found the image; `None` for a `--urls` list.
    element: Option<Element>,
    /// For a link target: the thumbnail to fetch instead if the target is a page.
    fallback: Option<Url>,
    /// Why the URL is not the one the page pointed at first.
    note: Option<String>,
}

/// An image waiting for a free slot (and for its origin's robots.txt).
struct PendingImage {
    task: ImageTask,
    page: u32,
    meta: Meta,
}

impl PendingImage {
    /// The URL the image was found under, before any redirect.
    fn found(&self) -> &Url {
        self.meta.found.as_ref().unwrap_or(&self.task.url)
    }
}

/// A page whose server redirected it, waiting to be fetched at its new URL.
struct MovedPage {
    number: u32,
    url: Url,
    hops: u8,
}

/// Images found and not yet handed out, one queue per origin (in order of first
/// appearance), so an origin whose host is at its limit, or whose robots.txt is still on
/// its way, is passed over in one step instead of image by image.
#[derive(Default)]
struct Pending {
    queues: Vec<OriginQueue>,
    by_origin: HashMap<robots::Origin, usize>,
}

struct OriginQueue {
    /// For robots.txt (scheme, host, port).
    origin: robots::Origin,
    /// For the per-host limit.
    host: String,
    images: VecDeque<PendingImage>,
}

impl Pending {
    fn push(&mut self, image: PendingImage) {
        let origin = robots::origin(&image.task.url);
        let slot = match self.by_origin.get(&origin) {
            Some(&slot) => slot,
            None => {
                let host = host_of(&image.task.url).to_string();
                self.queues.push(OriginQueue { origin, host, images: VecDeque::new() });
                self.by_origin.insert(origin, self.queues.len() - 1);
                self.queues.len() - 1
            }
        };
        self.queues[slot].images.push_back(image);
    }

    fn pop(&mut self, queue: usize) -> Option<PendingImage> {
        self.queues[queue].images.pop_front()
    }

    fn len(&self) -> usize {
        self.queues.iter().map(|q| q.images.len()).sum()
    }

    fn is_empty(&self) -> bool {
        self.queues.iter().all(|q| q.images.is_empty())
    }

    fn drain(&mut self) -> Vec<PendingImage> {
        self.queues.iter_mut().flat_map(|q| q.images.drain(..)).collect()
    }
}

enum RobotsState {
    Requested,
    Known(Rules),
}

/// May this URL be fetched now?
enum Verdict {
    Go,
    /// Its robots.txt is being fetched.
    Wait,
    /// Not fetched. `failure`: robots.txt could not be read, which counts as failed;
    /// otherwise the site disallows it, which counts as skipped.
    Refused {
        reason: String,
        failure: bool,
    },
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
    /// Pages redirected elsewhere, to fetch again at their new URL before other pages.
    moved_pages: VecDeque<MovedPage>,
    /// Images found and not yet handed out. Pages go out only while this is short, so
    /// it never grows much beyond one page's worth per page in flight.
    pending: Pending,
    in_flight: HashMap<TaskId, InFlight>,
    /// Tasks in flight per host, for `per_host_concurrency`.
    host_busy: HashMap<String, usize>,
    /// Per origin (scheme, host, port): its robots.txt, fetched before anything else.
    robots: HashMap<robots::Origin, RobotsState>,
    robots_queue: VecDeque<Url>,
    next_id: TaskId,
    /// 128-bit hashes of every image URL found: the same URL on two pages is downloaded
    /// once, and a hash costs 16 bytes where the URL would cost a hundred.
    seen_urls: HashSet<u128>,
    /// Hashes of the lower-cased names handed out in this run, so two URLs never share a
    /// file, even on a case-insensitive file system. 8 bytes a name; a collision only
    /// costs a suffix.
    taken_names: HashSet<u64>,
    /// Set by [`Interrupt`] or a full disk: nothing more is handed out, and what a
    /// worker gives up on counts as failed with this error.
    stopped: Option<TaskError>,
    /// `--dry-run` and its reader closed stdout: stop quietly.
    listing_closed: bool,
    /// `--dry-run`: pages' images held until every earlier page is done, so the list is
    /// in page order whatever order pages come back in.
    held: BTreeMap<u32, (Option<Url>, Vec<Found>)>,
    /// `--dry-run`: the next page whose images may be listed.
    next_listed_page: u32,
    /// `--dry-run`: images to list, in page order (a per-origin queue would reorder them).
    to_list: VecDeque<PendingImage>,
    /// The resume record could not be written: warned once.
    resume_warned: bool,
    pages: PageCounts,
    images: ImageCounts,
    listed: u64,
    items: Vec<Item>,
    joiners: Vec<oneshot::Sender<Summary>>,
}

impl Coordinator {
    pub fn new(plan: Plan, log: Logger) -> Self {
        let (last_page, urls) = match &plan.source {
            Source::Pages { max_pages, .. } => (max_pages.unwrap_or(1).max(1), Vec::new()),
            Source::Urls(urls) => (0, urls.clone()),
        };
        let no_pages = matches!(plan.source, Source::Urls(_));
        let mut coordinator = Self {
            plan,
            log,
            slots: Vec::new(),
            first_page_done: no_pages,
            first_page_sent: no_pages,
            next_page: if no_pages { 1 } else { 2 },
            last_page,
            pages_in_flight: 0,
            moved_pages: VecDeque::new(),
            pending: Pending::default(),
            in_flight: HashMap::new(),
            host_busy: HashMap::new(),
            robots: HashMap::new(),
            robots_queue: VecDeque::new(),
            next_id: 0,
            seen_urls: HashSet::new(),
            taken_names: HashSet::new(),
            stopped: None,
            listing_closed: false,
            held: BTreeMap::new(),
            next_listed_page: 1,
            to_list: VecDeque::new(),
            resume_warned: false,
            pages: PageCounts::default(),
            images: ImageCounts::default(),
            listed: 0,
            items: Vec::new(),
            joiners: Vec::new(),
        };
        coordinator.enqueue_images(0, None, urls.into_iter().map(|url| (url, Meta::default())).collect());
        coordinator
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
            && self.to_list.is_empty()
            && self.held.is_empty()
            && self.robots_queue.is_empty()
            && self.moved_pages.is_empty()
            && self.first_page_done
            && self.next_page > self.last_page
    }

    fn page_url(&self, n: u32) -> Option<Url> {
        match &self.plan.source {
            Source::Pages { pages, .. } => Some(pages.url(n)),
            Source::Urls(_) => None,
        }
    }

    /// Whether `url` may be fetched now; asks for its origin's robots.txt the first time.
    fn verdict(&mut self, url: &Url) -> Verdict {
        if !self.plan.obey_robots {
            return Verdict::Go;
        }
        match robots_rules(&mut self.robots, &mut self.robots_queue, robots::origin(url), url) {
            None => Verdict::Wait,
            Some(rules) if rules.allows(url) => Verdict::Go,
            Some(rules) => Verdict::Refused { reason: rules.refusal(), failure: rules.is_failure() },
        }
    }

    fn host_has_room(&self, host: &str) -> bool {
        self.host_busy.get(host).copied().unwrap_or(0) < self.plan.per_host_concurrency
    }

    /// The next task by priority: robots.txt first; page 1 alone; then a page when the
    /// image queue is running short; else an image; else a page.
    fn next_task(&mut self) -> Option<(Task, u32, Meta)> {
        if self.stopped.is_some() || self.listing_closed {
            return None;
        }
        if let Some(url) = self.robots_queue.pop_front() {
            return Some((Task::Robots { url }, 0, Meta::default()));
        }
        if let Some(moved) = self.take_moved_page() {
            return Some(moved);
        }
        let page = self.ready_page();
        if let Some(n) = page
            && self.pending.len() < self.capacity()
        {
            return Some(self.take_page(n));
        }
        if let Some(image) = self.take_ready_image() {
            return Some((Task::Image(image.task), image.page, image.meta));
        }
        page.map(|n| self.take_page(n))
    }

    /// The first redirected page, when its new URL may be fetched now. One refused by
    /// robots.txt is counted on the way.
    fn take_moved_page(&mut self) -> Option<(Task, u32, Meta)> {
        loop {
            let url = self.moved_pages.front()?.url.clone();
            match self.verdict(&url) {
                Verdict::Wait => return None,
                Verdict::Go if !self.host_has_room(host_of(&url)) => return None,
                Verdict::Go => {
                    let moved = self.moved_pages.pop_front().expect("a front");
                    self.pages_in_flight += 1;
                    let meta = Meta { hops: moved.hops, ..Meta::default() };
                    return Some((Task::Page { number: moved.number, url: moved.url }, moved.number, meta));
                }
                Verdict::Refused { reason, failure } => {
                    let moved = self.moved_pages.pop_front().expect("a front");
                    self.refuse_page(moved.number, &url, reason, failure);
                }
            }
        }
    }

    /// A page robots.txt keeps us from: skipped when the site disallows it, failed when
    /// robots.txt could not be read.
    fn refuse_page(&mut self, n: u32, url: &Url, reason: String, failure: bool) {
        if failure {
            warn!(self.log, "page failed"; "page" => n, "url" => %url, "reason" => &reason);
            self.pages.failed += 1;
        } else {
            warn!(self.log, "page skipped"; "page" => n, "url" => %url, "reason" => &reason);
            self.pages.skipped += 1;
        }
        self.page_settled(n, None, Vec::new());
        if n == 1 {
            self.first_page_sent = true;
            self.first_page_done = true;
        }
    }

    /// The page that may go now, if any. Pages robots.txt disallows are counted as
    /// skipped on the way.
    fn ready_page(&mut self) -> Option<u32> {
        loop {
            let n = if !self.first_page_sent {
                1
            } else if self.first_page_done
                && self.next_page <= self.last_page
                && self.pages_in_flight < self.max_pages_in_flight()
            {
                self.next_page
            } else {
                return None;
            };
            let url = self.page_url(n)?;
            match self.verdict(&url) {
                Verdict::Wait => return None,
                Verdict::Go => return self.host_has_room(host_of(&url)).then_some(n),
                Verdict::Refused { reason, failure } => {
                    self.refuse_page(n, &url, reason, failure);
                    if n != 1 {
                        self.next_page += 1;
                    }
                }
            }
        }
    }

    fn take_page(&mut self, n: u32) -> (Task, u32, Meta) {
        if n == 1 {
            self.first_page_sent = true;
        } else {
            self.next_page += 1;
        }
        self.pages_in_flight += 1;
        let url = self.page_url(n).expect("pages come from a page source");
        (Task::Page { number: n, url }, n, Meta::default())
    }

    /// The first waiting image that may go now. Images robots.txt disallows are counted
    /// as skipped on the way; with `--dry-run`, allowed ones are listed instead.
    fn take_ready_image(&mut self) -> Option<PendingImage> {
        for queue in 0..self.pending.queues.len() {
            let OriginQueue { origin, images, .. } = &self.pending.queues[queue];
            let Some(front) = images.front() else { continue };
            let rules = if self.plan.obey_robots {
                match robots_rules(&mut self.robots, &mut self.robots_queue, *origin, &front.task.url) {
                    Some(rules) => rules,
                    None => continue,
                }
            } else {
                Rules::AllowAll
            };
            while let Some(front) = self.pending.queues[queue].images.front() {
                if !rules.allows(&front.task.url) {
                    let image = self.pending.pop(queue).expect("a front");
                    match rules.is_failure() {
                        true => self.fail_image(&image, 0, rules.refusal()),
                        false => self.skip(image, rules.refusal()),
                    }
                } else if self.host_has_room(&self.pending.queues[queue].host) {
                    return self.pending.pop(queue);
                } else {
                    break;
                }
            }
        }
        None
    }

    fn skip(&mut self, image: PendingImage, reason: String) {
        debug!(self.log, "image skipped"; "url" => %image.found(), "reason" => &reason);
        self.images.skipped += 1;
        let mut item = item(image.found().clone(), image.page, image.task.name, Status::Skipped);
        item.reason = Some(reason);
        (item.element, item.note) = (image.meta.element, image.meta.note);
        self.record(item);
    }

    fn fail_image(&mut self, image: &PendingImage, attempts: u32, error: String) {
        warn!(self.log, "image failed"; "url" => %image.found(), "error" => &error, "attempts" => attempts);
        self.images.failed += 1;
        let mut item = item(image.found().clone(), image.page, image.task.name.clone(), Status::Failed);
        (item.attempts, item.error) = (attempts, Some(error));
        (item.element, item.note) = (image.meta.element, image.meta.note.clone());
        self.record(item);
    }

    /// `--dry-run`: lists the waiting images in order, up to one whose robots.txt is
    /// still on its way (the order must hold), skipping what robots.txt refuses.
    fn list_ready(&mut self) {
        while let Some(front) = self.to_list.front() {
            match self.verdict(&front.task.url.clone()) {
                Verdict::Wait => return,
                Verdict::Go => {
                    let image = self.to_list.pop_front().expect("a front");
                    self.list(&image.task.url);
                }
                Verdict::Refused { reason, failure } => {
                    let image = self.to_list.pop_front().expect("a front");
                    match failure {
                        true => self.fail_image(&image, 0, reason),
                        false => self.skip(image, reason),
                    }
                }
            }
        }
    }

    fn list(&mut self, url: &Url) {
        if self.listing_closed {
            return;
        }
        let Some(out) = self.plan.listing.as_mut() else { return };
        if writeln!(out, "{url}").and_then(|()| out.flush()).is_ok() {
            self.listed += 1;
            return;
        }
        // The reader is gone (`| head`): nothing more to fetch or list, and nothing failed.
        self.listing_closed = true;
        self.pending.drain();
        self.to_list.clear();
        self.held.clear();
        self.robots_queue.clear();
        self.moved_pages.clear();
        self.first_page_sent = true;
        self.first_page_done = true;
        self.next_page = self.last_page + 1;
    }

    /// Hands out tasks while some worker has room, always to the least loaded one so
    /// async workers share the load.
    fn dispatch(&mut self) {
        self.drop_dead_workers();
        if self.plan.listing.is_some() {
            // A dry run hands out no images: list what is ready now.
            self.list_ready();
        }
        while let Some(slot) = self.least_loaded_slot() {
            let Some((task, page, meta)) = self.next_task() else {
                return;
            };
            let id = self.next_id;
            self.next_id += 1;
            self.slots[slot].busy += 1;
            match self.host_busy.get_mut(host_of(task.url())) {
                Some(busy) => *busy += 1,
                None => _ = self.host_busy.insert(host_of(task.url()).to_string(), 1),
            }
            self.slots[slot].tasks.do_send(RunTask { id, task: task.clone() });
            self.in_flight.insert(id, InFlight { slot, task, page, meta });
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
            self.finish(TaskFinished { id, outcome: Err(error.clone()), attempts: 1 });
        }
    }

    /// Counts every page and image not yet handed out as failed with `reason`.
    fn abandon_remaining(&mut self, reason: &str) {
        if !self.first_page_sent {
            self.first_page_sent = true;
            self.first_page_done = true;
            self.next_page = 1;
        }
        if self.moved_pages.iter().any(|m| m.number == 1) {
            self.first_page_done = true;
        }
        let mut unsent = self.moved_pages.drain(..).count() as u64;
        if self.next_page <= self.last_page {
            unsent += u64::from(self.last_page - self.next_page + 1);
            self.next_page = self.last_page + 1;
        }
        if unsent > 0 {
            warn!(self.log, "pages abandoned"; "count" => unsent, "reason" => reason);
            self.pages.failed += unsent;
        }
        self.robots_queue.clear();
        self.release_held();
        let unlisted: Vec<PendingImage> = self.to_list.drain(..).collect();
        for image in self.pending.drain().into_iter().chain(unlisted) {
            self.images.failed += 1;
            let mut item = item(image.found().clone(), image.page, image.task.name, Status::Failed);
            item.error = Some(reason.to_string());
            (item.element, item.note) = (image.meta.element, image.meta.note);
            self.record(item);
        }
    }

    /// Counts what a worker reports. Returns the error that must stop the whole run (a
    /// full disk), if this was one.
    fn finish(&mut self, msg: TaskFinished) -> Option<TaskError> {
        let Some(done) = self.in_flight.remove(&msg.id) else {
            warn!(self.log, "acknowledgement for an unknown task"; "id" => msg.id);
            return None;
        };
        let slot = &mut self.slots[done.slot];
        slot.busy = slot.busy.saturating_sub(1);
        if let Some(busy) = self.host_busy.get_mut(host_of(done.task.url())) {
            *busy = busy.saturating_sub(1);
        }
        let outcome = match (&self.stopped, msg.outcome) {
            // Given up because the run stopped: say why it stopped.
            (Some(why), Err(TaskError::Interrupted)) => Err(why.clone()),
            (_, outcome) => outcome,
        };
        let halt = match &outcome {
            Err(e @ TaskError::DiskFull(_)) if self.stopped.is_none() => Some(e.clone()),
            _ => None,
        };
        let InFlight { task, page, meta, .. } = done;
        match (task, outcome) {
            (Task::Robots { url }, outcome) => self.robots_finished(&url, outcome),
            (Task::Page { number, url }, Ok(Done::Moved(to))) => {
                self.pages_in_flight -= 1;
                match meta.hops < MAX_REDIRECTS {
                    true => self.moved_pages.push_back(MovedPage { number, url: to, hops: meta.hops + 1 }),
                    false => self.page_finished(number, &url, Err(TaskError::Redirects), msg.attempts),
                }
            }
            (Task::Page { number, url }, outcome) => {
                self.pages_in_flight -= 1;
                self.page_finished(number, &url, outcome, msg.attempts);
            }
            (Task::Image(task), outcome) => {
                let image = PendingImage { task, page, meta };
                self.image_finished(image, outcome, msg.attempts);
            }
        }
        self.show_progress();
        halt
    }

    fn image_finished(&mut self, image: PendingImage, outcome: Result<Done, TaskError>, attempts: u32) {
        match outcome {
            Ok(Done::Image { bytes, name, sha256 }) => {
                let url = image.found().clone();
                debug!(self.log, "image saved"; "url" => %url, "path" => &name, "bytes" => bytes);
                self.images.ok += 1;
                self.images.bytes += bytes;
                if let Err(e) = self.plan.store.record(&url, &name, bytes)
                    && !self.resume_warned
                {
                    self.resume_warned = true;
                    warn!(self.log, "cannot update the resume record: a re-run will fetch these again"; "error" => %e);
                }
                let mut item = item(url, image.page, name, Status::Ok);
                (item.bytes, item.attempts, item.sha256) = (bytes, attempts, sha256);
                (item.element, item.note) = (image.meta.element, image.meta.note);
                self.record(item);
            }
            Ok(Done::Moved(to)) => self.follow(image, to, attempts),
            Err(TaskError::Unwanted(reason)) => self.skip(image, reason),
            Err(TaskError::NotAnImage(reason))
                if image.meta.fallback.is_some() && validate::is_page(&reason) =>
            {
                self.fall_back(image)
            }
            Err(e) => self.fail_image(&image, attempts, e.to_string()),
            Ok(other) => {
                self.fail_image(&image, attempts, format!("worker answered an image with {other:?}"))
            }
        }
    }

    /// An image's server redirected it: queue it again at the target, which passes the
    /// same checks as a URL found on a page (robots.txt and the per-host limit when it
    /// is handed out), under the name and the report entry of the URL it was found as.
    fn follow(&mut self, image: PendingImage, to: Url, attempts: u32) {
        let off_host = image.page > 0
            && !self.plan.image_host.is_empty()
            && !to.host_str().is_some_and(|h| h.contains(&self.plan.image_host));
        if image.meta.hops >= MAX_REDIRECTS {
            return self.fail_image(&image, attempts, TaskError::Redirects.to_string());
        }
        if off_host {
            return self.fail_image(&image, attempts, TaskError::RedirectOffHost(to.to_string()).to_string());
        }
        let found = image.found().clone();
        let meta = Meta { hops: image.meta.hops + 1, found: Some(found), ..image.meta };
        let task = ImageTask { url: to, ..image.task };
        self.pending.push(PendingImage { task, page: image.page, meta });
    }

    /// A link target answered with a page (MediaWiki's `File:` links look like image
    /// files): the element's own best candidate, the thumbnail, is downloaded instead. Not
    /// a failure, and the same image: counted once, under the thumbnail's URL.
    fn fall_back(&mut self, link: PendingImage) {
        let thumbnail = link.meta.fallback.clone().expect("checked by the caller");
        let note = format!("the link target {} is a page, not an image: its thumbnail instead", link.found());
        info!(self.log, "link target is a page: fetching its thumbnail"; "link" => %link.found(), "thumbnail" => %thumbnail);
        let meta = Meta { element: Some(Element::Img), note: Some(note), ..Meta::default() };
        if !self.seen_urls.insert(xxh3_128(thumbnail.as_str().as_bytes())) {
            // Found on its own too: downloaded (or skipped) as that image.
            let reason = "its thumbnail is already another image of this run".to_string();
            return self.skip(PendingImage { meta, ..link }, reason);
        }
        let page = link.page;
        if let Some(task) = self.plan_image(thumbnail, page, link.task.referer.as_ref(), &meta) {
            self.pending.push(PendingImage { task, page, meta });
        }
    }

    fn robots_finished(&mut self, url: &Url, outcome: Result<Done, TaskError>) {
        let rules = match outcome {
            Ok(Done::Robots(rules)) => rules,
            Err(e) => {
                let why = match e {
                    TaskError::Status { code, .. } => format!("HTTP {code}"),
                    e => e.to_string(),
                };
                warn!(self.log, "robots.txt unreachable: nothing is fetched from that site, and its pages and images count as failed (--ignore-robots to override)";
                    "url" => %url, "error" => &why);
                Rules::Unreachable(why)
            }
            Ok(other) => Rules::Unreachable(format!("unexpected answer {other:?}")),
        };
        if let Some(asked) = rules.crawl_delay() {
            let host = host_of(url);
            let delay = asked.min(self.plan.max_server_wait);
            if delay < asked {
                warn!(self.log, "robots.txt asks for a crawl delay longer than RETRY_MAX_WAIT_SECS: using that instead";
                    "host" => host, "asked_secs" => asked.as_secs_f64(), "using_secs" => delay.as_secs_f64());
            } else {
                info!(self.log, "robots.txt asks for a crawl delay"; "host" => host, "secs" => delay.as_secs_f64());
            }
            self.plan.gate.set_crawl_delay(host, delay);
        }
        self.robots.insert(robots::origin(url), RobotsState::Known(rules));
    }

    fn page_finished(&mut self, number: u32, url: &Url, outcome: Result<Done, TaskError>, attempts: u32) {
        match outcome {
            Ok(Done::Page(scan)) => {
                self.pages.ok += 1;
                if number == 1 {
                    self.clamp_pages(scan.page_count);
                }
                self.page_settled(number, Some(url.clone()), scan.images);
            }
            other => {
                let error = match other {
                    Err(e) => e.to_string(),
                    Ok(done) => format!("worker answered a page with {done:?}"),
                };
                warn!(self.log, "page failed"; "page" => number, "url" => %url, "error" => error, "attempts" => attempts);
                self.pages.failed += 1;
                self.page_settled(number, None, Vec::new());
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
        let wanted = match &self.plan.source {
            Source::Pages { max_pages, .. } => max_pages.unwrap_or(u32::MAX),
            Source::Urls(_) => return,
        };
        self.last_page = stated.min(wanted);
        info!(self.log, "page 1 states the page count"; "stated" => stated, "fetching" => self.last_page);
    }

    /// Page `number` is done (fetched, failed or skipped) with these images. A dry run
    /// lists pages in order, so it holds them until every earlier page is done.
    fn page_settled(&mut self, number: u32, referer: Option<Url>, images: Vec<Found>) {
        if self.plan.listing.is_none() {
            return self.enqueue_images(number, referer.as_ref(), metas(images));
        }
        self.held.insert(number, (referer, images));
        while let Some((referer, images)) = self.held.remove(&self.next_listed_page) {
            self.enqueue_images(self.next_listed_page, referer.as_ref(), metas(images));
            self.next_listed_page += 1;
        }
    }

    /// Every held page, in order, whatever is still missing before it (the run is ending).
    fn release_held(&mut self) {
        while let Some((number, (referer, images))) = self.held.pop_first() {
            self.enqueue_images(number, referer.as_ref(), metas(images));
        }
    }

    fn enqueue_images(&mut self, page: u32, referer: Option<&Url>, images: Vec<(Url, Meta)>) {
        if self.listing_closed {
            return;
        }
        let found = images.len();
        let mut new = 0;
        for (url, meta) in images {
            if !self.plan.filters.wants(&url) || !self.seen_urls.insert(xxh3_128(url.as_str().as_bytes())) {
                continue;
            }
            new += 1;
            self.images.total += 1;
            if let Some(task) = self.plan_image(url, page, referer, &meta) {
                let image = PendingImage { task, page, meta };
                match self.plan.listing {
                    Some(_) => self.to_list.push_back(image),
                    None => self.pending.push(image),
                }
            }
        }
        debug!(self.log, "images found"; "page" => page, "images" => found, "new" => new);
    }

    /// Decides what to do with a newly found image: skip it (an earlier run stored it and
    /// it is still whole), or download it under the name an earlier run gave it, or under
    /// a new name no other URL has.
    fn plan_image(&mut self, url: Url, page: u32, referer: Option<&Url>, meta: &Meta) -> Option<ImageTask> {
        let referer = referer.cloned();
        let earlier = match self.plan.store.lookup(&url) {
            Lookup::Complete { name, bytes } if !self.plan.force => {
                self.images.skipped += 1;
                let mut item = item(url, page, name, Status::Skipped);
                (item.bytes, item.reason) = (bytes, Some("complete from an earlier run".into()));
                (item.element, item.note) = (meta.element, meta.note.clone());
                self.record(item);
                return None;
            }
            Lookup::Complete { name, .. } | Lookup::Stale { name } => Some(name),
            Lookup::Unknown => None,
        };
        // Ours to replace, unless another URL of this run already went there (the file
        // was gone when it looked): then this one must not overwrite it.
        if let Some(name) = earlier
            && self.taken_names.insert(name_key(&name))
        {
            return Some(ImageTask { url, name, overwrite: true, referer });
        }
        let name = self.claim_name(&url);
        Some(ImageTask { url, name, overwrite: false, referer })
    }

    /// The URL's own file name, or, when another URL of this run has it, that name with a
    /// suffix derived from the URL. (A file already on disk under it is the worker's
    /// business at commit time: it never overwrites one it did not write.)
    fn claim_name(&mut self, url: &Url) -> String {
        let base = storage::file_name(url);
        if self.taken_names.insert(name_key(&base)) {
            return base;
        }
        let suffixed = storage::with_suffix(&base, url);
        let candidates = std::iter::once(suffixed.clone())
            .chain((2u32..).map(|n| storage::with_suffix(&format!("{n}-{suffixed}"), url)));
        for name in candidates {
            if self.taken_names.insert(name_key(&name)) {
                return name;
            }
        }
        unreachable!("the candidate names never run out")
    }

    fn record(&mut self, item: Item) {
        if self.plan.record_items {
            self.items.push(item);
        }
    }

    fn page_counts(&self) -> PageCounts {
        let mut pages = self.pages;
        pages.total = pages.ok + pages.failed + pages.skipped;
        pages
    }

    fn show_progress(&self) {
        if let Some(progress) = &self.plan.progress {
            progress.update(&Snapshot {
                pages: self.page_counts(),
                pages_planned: u64::from(self.last_page),
                images: self.images,
            });
        }
    }

    fn summary(&mut self) -> Summary {
        Summary {
            stopped: self.stopped.as_ref().map(TaskError::to_string),
            pages: self.page_counts(),
            images: self.images,
            listed: self.listed,
            items: std::mem::take(&mut self.items),
        }
    }

    fn answer_joiners_if_finished(&mut self) {
        if let Some(why) = &self.stopped
            && self.in_flight.is_empty()
        {
            // Page 1 may have come back after the stop, with pages to count.
            let why = why.to_string();
            self.abandon_remaining(&why);
        }
        if self.is_finished() && !self.joiners.is_empty() {
            if let Some(progress) = &self.plan.progress {
                progress.finish();
            }
            if let Err(e) = self.plan.store.flush() {
                warn!(self.log, "cannot update the resume record: a re-run will fetch these again"; "error" => %e);
            }
            let summary = self.summary();
            for joiner in self.joiners.drain(..) {
                let _ = joiner.send(summary.clone());
            }
        }
    }

    /// Stops the run (a signal, a full disk): nothing more goes out, what never went out
    /// counts as failed with `why`, workers are told to drop what they hold, and what is
    /// in flight has [`INTERRUPT_GRACE`] to say so before it is counted failed anyway.
    fn stop(&mut self, why: TaskError, ctx: &mut Context<Self>) {
        if self.stopped.is_some() {
            return;
        }
        warn!(self.log, "stopping: finishing what is in flight"; "why" => %why, "in_flight" => self.in_flight.len());
        self.plan.cancel.cancel();
        self.abandon_remaining(&why.to_string());
        self.stopped = Some(why);
        ctx.run_later(INTERRUPT_GRACE, |act, _| {
            let why = act.stopped.clone().unwrap_or(TaskError::Interrupted);
            act.fail_in_flight(None, why);
            act.step();
        });
    }

    /// Every handler ends here: hand out what can go, answer `Join` if all is done.
    fn step(&mut self) {
        self.dispatch();
        self.answer_joiners_if_finished();
    }
}

/// The robots.txt rules of `origin`, once known; `None` means wait. The first time an
/// origin is seen, its robots.txt (at `url`'s origin) is queued for fetching. Takes the two
/// fields rather than the Coordinator, so a caller may hold a borrow of a pending image.
fn robots_rules(
    known: &mut HashMap<robots::Origin, RobotsState>,
    to_fetch: &mut VecDeque<Url>,
    origin: robots::Origin,
    url: &Url,
) -> Option<Rules> {
    match known.get(&origin) {
        Some(RobotsState::Known(rules)) => Some(rules.clone()),
        Some(RobotsState::Requested) => None,
        None => {
            known.insert(origin, RobotsState::Requested);
            to_fetch.extend(robots::robots_url(url));
            None
        }
    }
}

/// What a page said about each image, as the Coordinator keeps it.
fn metas(images: Vec<Found>) -> Vec<(Url, Meta)> {
    images
        .into_iter()
        .map(|f| (f.url, Meta { element: Some(f.element), fallback: f.fallback, ..Meta::default() }))
        .collect()
}

/// What `taken_names` keeps of a name.
fn name_key(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.to_lowercase().as_bytes())
}

/// An item with nothing known yet beyond what it is.
fn item(url: Url, page: u32, path: String, status: Status) -> Item {
    Item {
        url: url.into(),
        page,
        path,
        status,
        bytes: 0,
        attempts: 0,
        error: None,
        reason: None,
        sha256: None,
        element: None,
        note: None,
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    /// A worker that dies sends nothing more, and a `Join` may be all that is pending:
    /// look at the workers now and then, so it is answered without another message.
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(LIVENESS_CHECK, |act, _| act.step());
    }
}

impl Handler<RegisterWorker> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: RegisterWorker, _: &mut Context<Self>) {
        if msg.capacity > 0 {
            self.slots.push(Slot { tasks: msg.tasks, capacity: msg.capacity, busy: 0 });
        }
        self.step();
    }
}

impl Handler<TaskFinished> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: TaskFinished, ctx: &mut Context<Self>) {
        if let Some(why) = self.finish(msg) {
            self.stop(why, ctx);
        }
        self.step();
    }
}

impl Handler<Interrupt> for Coordinator {
    type Result = ();

    fn handle(&mut self, _: Interrupt, ctx: &mut Context<Self>) {
        self.stop(TaskError::Interrupted, ctx);
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
        MessageResult((self.page_counts(), self.images))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PageUrls;
    use crate::html::{Found, PageScan};
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

    /// The out dir `out` as a store, with its resume record.
    fn folder(out: &Path) -> Arc<dyn Store> {
        let out = crate::outdir::OutDir::open(out).unwrap();
        let (resume, _) = crate::state::Resume::load(&out.state_file());
        Arc::new(crate::store::folder::FolderStore::new(out, resume))
    }

    /// A Coordinator writing into `out` (its resume record there too).
    fn start_in(out: &Path, max_pages: Option<u32>, force: bool) -> Addr<Coordinator> {
        let pages = PageUrls::new(url("http://h.test/"), "p{page}/cats.html", "cats").unwrap();
        let plan = Plan { force, ..Plan::new(Source::Pages { pages, max_pages }, folder(out)) };
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
        coordinator.send(RegisterWorker { tasks, capacity }).await.unwrap();
        let handed = probe.send(Take).await.unwrap();
        (probe, handed)
    }

    fn page_done(id: TaskId, images: &[&str], page_count: Option<u32>) -> TaskFinished {
        let images = images.iter().map(|s| Found::img(url(s))).collect();
        let outcome = Ok(Done::Page(PageScan { images, page_count }));
        TaskFinished { id, outcome, attempts: 1 }
    }

    /// What a worker reports for an image it saved, having saved it as a worker does.
    fn image_done(out: &Path, task: &RunTask, bytes: u64) -> TaskFinished {
        let name = image_name(task).to_string();
        std::fs::write(out.join(&name), vec![0u8; bytes as usize]).unwrap();
        let outcome = Ok(Done::Image { bytes, name, sha256: None });
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
                    Task::Page { .. } | Task::Robots { .. } => page_done(task.id, &[], None),
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
        assert_eq!(summary.pages, PageCounts { total: 2, ok: 2, failed: 0, skipped: 0 });
        assert_eq!(summary.images, ImageCounts { total: 3, ok: 2, failed: 1, skipped: 0, bytes: 150 });
        let failed_item = summary.items.iter().find(|i| i.status == Status::Failed).unwrap();
        assert_eq!(failed_item.url, "http://h.test/b.jpg");
        assert_eq!(failed_item.error.as_deref(), Some("HTTP status 404"));
        assert_eq!(failed_item.attempts, 4);
        assert_eq!(summary.items.len(), 3);
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
        let outcome = Ok(Done::Page(PageScan { images: vec![link], page_count: None }));
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
        assert_eq!(summary.items.len(), 1);
        let item = &summary.items[0];
        assert_eq!(
            (item.url.as_str(), item.element),
            ("http://h.test/thumb/Cat-200px.jpg", Some(Element::Img))
        );
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
        assert_eq!((summary.images.failed, summary.items[0].element), (1, Some(Element::Link)));
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
            ..Plan::new(Source::Pages { pages, max_pages: Some(3) }, folder(dir.path()))
        };
        let coordinator = Coordinator::new(plan, Logger::root(slog::Discard, slog::o!())).start();
        let (probe, handed) = register(&coordinator, 32).await;
        // Two origins on one page: a per-origin queue would group them.
        let page1 = ["http://h.test/1a.jpg", "http://other.test/1b.jpg", "http://h.test/1c.jpg"];
        coordinator.send(page_done(handed[0].id, &page1, None)).await.unwrap();
        let handed = probe.send(Take).await.unwrap();
        let id_of = |n: u32| handed.iter().find(|t| pages_of(std::slice::from_ref(t)) == [n]).unwrap().id;
        let (p2, p3) = (id_of(2), id_of(3));
        coordinator
            .send(page_done(p3, &["http://h.test/3.jpg", "http://h.test/1a.jpg"], None))
            .await
            .unwrap();
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
                    Task::Page { .. } | Task::Robots { .. } => page_done(task.id, &[], None),
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
        assert_eq!(summary.pages, PageCounts { total: 2, ok: 1, failed: 1, skipped: 0 });
    }

    #[actix::test]
    async fn a_dead_worker_fails_its_tasks_instead_of_hanging() {
        let (coordinator, _dir) = start(Some(3));
        let (probe, handed) = register(&coordinator, 4).await;
        let images =
            ["http://h.test/a.jpg", "http://h.test/b.jpg", "http://h.test/c.jpg", "http://h.test/d.jpg"];
        coordinator.send(page_done(handed[0].id, &images, Some(3))).await.unwrap();
        probe.send(Stop).await.unwrap();
        drop(probe);
        // Any message makes the Coordinator look at its workers again. The timeout turns
        // a regression (a hang) into a failure.
        let join = tokio::time::timeout(Duration::from_secs(10), coordinator.send(Join));
        let summary = join.await.expect("join hung").unwrap().unwrap();
        assert_eq!(summary.pages, PageCounts { total: 3, ok: 1, failed: 2, skipped: 0 });
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
            first.items.iter().map(|i| (i.url.clone(), i.path.clone())).collect();

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
        for item in &summary.items {
            assert_eq!(names_before[&item.url], item.path, "same URL, same file");
        }
        let skipped = summary.items.iter().find(|i| i.status == Status::Skipped).unwrap();
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
        let images =
            ["http://h.test/a.jpg", "http://h.test/b.jpg", "http://h.test/c.jpg", "http://h.test/d.jpg"];
        coordinator.send(page_done(handed[0].id, &images, Some(5))).await.unwrap();
        let handed = probe.send(Take).await.unwrap();
        assert_eq!(handed.len(), 2);
        let mut join = Box::pin(coordinator.send(Join));
        coordinator.send(Interrupt).await.unwrap();
        assert!(futures_util::poll!(&mut join).is_pending(), "two tasks still in flight");
        // One finishes, one is cancelled by its worker; nothing new goes out.
        let finished = |t: &RunTask| match &t.task {
            Task::Image(_) => image_done(dir.path(), t, 5),
            Task::Page { .. } | Task::Robots { .. } => page_done(t.id, &[], None),
        };
        coordinator.send(finished(&handed[0])).await.unwrap();
        let cancelled = TaskFinished { id: handed[1].id, outcome: Err(TaskError::Interrupted), attempts: 1 };
        coordinator.send(cancelled).await.unwrap();
        assert!(probe.send(Take).await.unwrap().is_empty());
        let summary = tokio::time::timeout(Duration::from_secs(10), join).await.unwrap().unwrap().unwrap();
        assert_eq!(summary.pages.total, 5, "unsent pages are counted");
        assert_eq!(summary.pages.failed + summary.pages.ok, 5);
        assert_eq!(summary.images.ok + summary.images.failed, summary.images.total);
        assert!(summary.items.iter().any(|i| i.error.as_deref() == Some("interrupted")));
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
        assert_eq!(summary.pages, PageCounts { total: 1, ok: 0, failed: 1, skipped: 0 });
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
        let summary =
            tokio::time::timeout(LIVENESS_CHECK * 20, join).await.expect("join hung").unwrap().unwrap();
        assert_eq!(summary.pages, PageCounts { total: 1, ok: 0, failed: 1, skipped: 0 });
    }

    #[actix::test]
    async fn a_full_disk_stops_the_run_like_an_interrupt() {
        let dir = tempfile::tempdir().unwrap();
        let pages = PageUrls::new(url("http://h.test/"), "p{page}/cats.html", "cats").unwrap();
        let plan = Plan::new(Source::Pages { pages, max_pages: Some(3) }, folder(dir.path()));
        let cancel = plan.cancel.clone();
        let coordinator = Coordinator::new(plan, Logger::root(slog::Discard, slog::o!())).start();
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
        assert!(
            summary.stopped.as_deref().is_some_and(|s| s.starts_with("disk full")),
            "{:?}",
            summary.stopped
        );
        assert!(summary.stopped_line().unwrap().starts_with("Stopped early: disk full"));
        assert_eq!(summary.images.failed, summary.images.total, "every image not done counts failed");
        assert_eq!(summary.pages.failed + summary.pages.ok, summary.pages.total);
        for item in summary.items.iter().filter(|i| i.page == 1) {
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
            if let Some(real) = handed.iter().find(|t| t.task.url().as_str() == "http://cdn.test/real/x.jpg")
            {
                assert_eq!(image_name(real), "a.jpg", "the name of the URL as found");
                coordinator.send(image_done(dir.path(), real, 9)).await.unwrap();
            }
        }
        assert_eq!(rounds, usize::from(MAX_REDIRECTS) + 1);
        let summary = coordinator.send(Join).await.unwrap().unwrap();
        let a = summary.items.iter().find(|i| i.url == "http://h.test/a.jpg").expect("reported as found");
        assert_eq!((a.status, a.path.as_str()), (Status::Ok, "a.jpg"));
        let looped = summary.items.iter().find(|i| i.url.ends_with("loop.jpg")).unwrap();
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
        let moved = TaskFinished {
            id: handed[0].id,
            outcome: Ok(Done::Moved(url("http://h.test/new/1"))),
            attempts: 1,
        };
        coordinator.send(moved).await.unwrap();
        let handed = probe.send(Take).await.unwrap();
        assert_eq!(pages_of(&handed), [1]);
        assert_eq!(handed[0].task.url().as_str(), "http://h.test/new/1");
        coordinator.send(page_done(handed[0].id, &[], None)).await.unwrap();
        let summary = coordinator.send(Join).await.unwrap().unwrap();
        assert_eq!(summary.pages, PageCounts { total: 1, ok: 1, failed: 0, skipped: 0 });
    }
}
