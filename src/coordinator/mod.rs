//! The Coordinator: owns the work (pages to fetch, then the images they reveal), hands it
//! out to registered workers within their capacity, counts what comes back, and answers
//! [`Join`] once every task it handed out has been acknowledged.
//!
//! It is the only place that touches the queue, the counts and the resume record.
//! Workers are anything behind a `Recipient<RunTask>`; the Coordinator never knows their
//! type.
//!
//! # Layout
//!
//! This file keeps the policy: which task goes next (robots.txt first, page 1 alone,
//! pages while images run short), the per-host room, redirects and fallbacks, stopping,
//! and `Join`. Each part of its state is its own small type, with its own tests:
//!
//! - `slots`: `Slots`, the registered workers and the ledger of what each holds (and so
//!   the tasks in flight per host);
//! - `plan`: `Plan`, what the run is to do, fixed before it starts;
//! - `pages`: `PageCursor`, which listing page goes next and when the pages are done;
//! - `pending`: `Pending`, the images found and not yet handed out, one queue per origin;
//!   `Meta`, what the Coordinator knows of a task beyond the task;
//! - `robots_book`: `RobotsBook`, each origin's robots.txt: asked for, then the verdicts;
//! - `names`: `Names`, the file names handed out in this run;
//! - `tally`: `Tally`, the counts, the items and the summary;
//! - `tests`: the Coordinator with probe workers.

mod names;
mod pages;
mod pending;
mod plan;
mod robots_book;
mod slots;
mod tally;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Write;
use std::time::Duration;

use actix::prelude::*;
use slog::{Logger, debug, info, warn};
use tokio::sync::oneshot;
use url::Url;
use xxhash_rust::xxh3::xxh3_128;

use crate::config::Source;
use crate::html::{Element, Found};
use crate::progress::Snapshot;
use crate::report::{ImageCounts, Item, PageCounts, Status, Summary};
use crate::robots::Rules;
use crate::store::Lookup;
use crate::validate;
use crate::work::{Done, ImageTask, MAX_REDIRECTS, RegisterWorker, Task, TaskError, TaskFinished, host_of};
use names::Names;
use pages::{MovedPage, PageCursor};
use pending::{Meta, OriginQueue, Pending, PendingImage};
pub use plan::Plan;
use robots_book::{RobotsBook, Verdict};
use slots::Slots;
use tally::Tally;

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

/// What the Coordinator keeps beside a task handed out, until it comes back.
struct InFlight {
    task: Task,
    /// For images: the page that revealed it.
    page: u32,
    /// How it came to its URL, and for an image what its page said about it.
    meta: Meta,
}

pub struct Coordinator {
    plan: Plan,
    log: Logger,
    /// The workers and the ledger of what each holds.
    slots: Slots<InFlight>,
    /// Which listing page goes next, and when they are all done.
    pages: PageCursor,
    /// Images found and not yet handed out. Pages go out only while this is short, so
    /// it never grows much beyond one page's worth per page in flight.
    pending: Pending,
    /// Per origin (scheme, host, port): its robots.txt, fetched before anything else.
    robots: RobotsBook,
    /// 128-bit hashes of every image URL found: the same URL on two pages is downloaded
    /// once, and a hash costs 16 bytes where the URL would cost a hundred.
    seen_urls: HashSet<u128>,
    /// File names handed out in this run.
    names: Names,
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
    /// Counts, items, the summary.
    tally: Tally,
    joiners: Vec<oneshot::Sender<Summary>>,
}

impl Coordinator {
    pub fn new(plan: Plan, log: Logger) -> Self {
        let (pages, urls) = match &plan.source {
            Source::Pages { first_page, max_pages, .. } => {
                let first = (*first_page).max(1);
                (PageCursor::pages(first, max_pages.unwrap_or(first).max(first)), Vec::new())
            }
            Source::Urls(urls) => (PageCursor::none(), urls.clone()),
        };
        let pages_first = pages.first();
        let (keep_items, obey_robots) = (plan.record_items, plan.obey_robots);
        let mut coordinator = Self {
            plan,
            log,
            slots: Slots::default(),
            pages,
            pending: Pending::default(),
            robots: RobotsBook::new(obey_robots),
            seen_urls: HashSet::new(),
            names: Names::default(),
            stopped: None,
            listing_closed: false,
            held: BTreeMap::new(),
            next_listed_page: pages_first,
            to_list: VecDeque::new(),
            resume_warned: false,
            tally: Tally::new(keep_items),
            joiners: Vec::new(),
        };
        coordinator.enqueue_images(0, None, urls.into_iter().map(|url| (url, Meta::default())).collect());
        coordinator
    }

    fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Pages fetched ahead of need: enough to keep every slot fed when a page holds few
    /// images, few enough that found-but-waiting images stay a small queue.
    fn max_pages_in_flight(&self) -> usize {
        (self.capacity() / 16).clamp(2, 16)
    }

    fn is_finished(&self) -> bool {
        self.slots.in_flight() == 0
            && self.pending.is_empty()
            && self.to_list.is_empty()
            && self.held.is_empty()
            && !self.robots.has_requests()
            && self.pages.is_done()
    }

    fn page_url(&self, n: u32) -> Option<Url> {
        match &self.plan.source {
            Source::Pages { pages, .. } => Some(pages.url(n)),
            Source::Urls(_) => None,
        }
    }

    fn host_has_room(&self, host: &str) -> bool {
        self.slots.host_busy(host) < self.plan.per_host_concurrency
    }

    /// The next task by priority: robots.txt first; page 1 alone; then a page when the
    /// image queue is running short; else an image; else a page.
    fn next_task(&mut self) -> Option<(Task, u32, Meta)> {
        if self.stopped.is_some() || self.listing_closed {
            return None;
        }
        if let Some(url) = self.robots.next_request() {
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
            let url = self.pages.front_moved()?.url.clone();
            match self.robots.verdict(&url) {
                Verdict::Wait => return None,
                Verdict::Go if !self.host_has_room(host_of(&url)) => return None,
                Verdict::Go => {
                    let moved = self.pages.send_moved().expect("a front");
                    let meta = Meta { hops: moved.hops, ..Meta::default() };
                    return Some((Task::listing(moved.number, moved.url), moved.number, meta));
                }
                Verdict::Refused { reason, failure } => {
                    let moved = self.pages.drop_moved().expect("a front");
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
            self.tally.pages_failed(1);
        } else {
            warn!(self.log, "page skipped"; "page" => n, "url" => %url, "reason" => &reason);
            self.tally.page_skipped();
        }
        self.page_settled(n, None, Vec::new());
    }

    /// The page that may go now, if any. Pages robots.txt disallows are counted as
    /// skipped on the way.
    fn ready_page(&mut self) -> Option<u32> {
        loop {
            let n = self.pages.next_number(self.max_pages_in_flight())?;
            let url = self.page_url(n)?;
            match self.robots.verdict(&url) {
                Verdict::Wait => return None,
                Verdict::Go => return self.host_has_room(host_of(&url)).then_some(n),
                Verdict::Refused { reason, failure } => {
                    self.pages.passed(n);
                    self.refuse_page(n, &url, reason, failure);
                }
            }
        }
    }

    fn take_page(&mut self, n: u32) -> (Task, u32, Meta) {
        self.pages.sent(n);
        let url = self.page_url(n).expect("pages come from a page source");
        (Task::listing(n, url), n, Meta::default())
    }

    /// The first waiting image that may go now. Images robots.txt disallows are counted
    /// as skipped on the way; with `--dry-run`, allowed ones are listed instead.
    fn take_ready_image(&mut self) -> Option<PendingImage> {
        for queue in 0..self.pending.queues.len() {
            let OriginQueue { origin, images, .. } = &self.pending.queues[queue];
            let Some(front) = images.front() else { continue };
            let Some(rules) = self.robots.rules(*origin, &front.task.url) else { continue };
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
        let mut item = item(image.found().clone(), image.page, image.task.name, Status::Skipped);
        item.reason = Some(reason);
        (item.element, item.note) = (image.meta.element, image.meta.note);
        self.tally.image(item);
    }

    fn fail_image(&mut self, image: &PendingImage, attempts: u32, error: String) {
        warn!(self.log, "image failed"; "url" => %image.found(), "error" => &error, "attempts" => attempts);
        let mut item = item(image.found().clone(), image.page, image.task.name.clone(), Status::Failed);
        (item.attempts, item.error) = (attempts, Some(error));
        (item.element, item.note) = (image.meta.element, image.meta.note.clone());
        self.tally.image(item);
    }

    /// `--dry-run`: lists the waiting images in order, up to one whose robots.txt is
    /// still on its way (the order must hold), skipping what robots.txt refuses.
    fn list_ready(&mut self) {
        while let Some(front) = self.to_list.front() {
            match self.robots.verdict(&front.task.url.clone()) {
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
            self.tally.listed();
            return;
        }
        // The reader is gone (`| head`): nothing more to fetch or list, and nothing failed.
        self.listing_closed = true;
        self.pending.drain();
        self.to_list.clear();
        self.held.clear();
        self.robots.clear_requests();
        self.pages.close();
    }

    /// Hands out tasks while some worker has room, always to the least loaded one so
    /// async workers share the load.
    fn dispatch(&mut self) {
        self.drop_dead_workers();
        if self.plan.listing.is_some() {
            // A dry run hands out no images: list what is ready now.
            self.list_ready();
        }
        while let Some(slot) = self.slots.free_slot() {
            let Some((task, page, meta)) = self.next_task() else {
                return;
            };
            self.slots.send(slot, task.clone(), InFlight { task, page, meta });
        }
    }

    /// A worker whose mailbox is gone (its Arbiter or thread died) will never acknowledge
    /// what it holds: count that as failed, and if no worker is left, the rest too,
    /// rather than wait forever.
    fn drop_dead_workers(&mut self) {
        for slot in self.slots.newly_dead() {
            warn!(self.log, "worker is gone"; "slot" => slot);
            self.fail_in_flight(Some(slot), TaskError::Worker("worker stopped".into()));
        }
        if self.slots.all_dead() {
            self.abandon_remaining("no worker left");
        }
    }

    /// Counts the tasks in flight (on `slot`, or on every slot) as failed.
    fn fail_in_flight(&mut self, slot: Option<usize>, error: TaskError) {
        for id in self.slots.held_by(slot) {
            self.finish(TaskFinished { id, outcome: Err(error.clone()), attempts: 1 });
        }
    }

    /// Counts every page and image not yet handed out as failed with `reason`.
    fn abandon_remaining(&mut self, reason: &str) {
        let unsent = self.pages.abandon();
        if unsent > 0 {
            warn!(self.log, "pages abandoned"; "count" => unsent, "reason" => reason);
            self.tally.pages_failed(unsent);
        }
        self.robots.clear_requests();
        self.release_held();
        let unlisted: Vec<PendingImage> = self.to_list.drain(..).collect();
        for image in self.pending.drain().into_iter().chain(unlisted) {
            let mut item = item(image.found().clone(), image.page, image.task.name, Status::Failed);
            item.error = Some(reason.to_string());
            (item.element, item.note) = (image.meta.element, image.meta.note);
            self.tally.image(item);
        }
    }

    /// Counts what a worker reports. Returns the error that must stop the whole run (a
    /// full disk), if this was one.
    fn finish(&mut self, msg: TaskFinished) -> Option<TaskError> {
        let Some(done) = self.slots.take(msg.id) else {
            warn!(self.log, "acknowledgement for an unknown task"; "id" => msg.id);
            return None;
        };
        let outcome = match (&self.stopped, msg.outcome) {
            // Given up because the run stopped: say why it stopped.
            (Some(why), Err(TaskError::Interrupted)) => Err(why.clone()),
            (_, outcome) => outcome,
        };
        let halt = match &outcome {
            Err(e @ TaskError::DiskFull(_)) if self.stopped.is_none() => Some(e.clone()),
            _ => None,
        };
        let InFlight { task, page, meta } = done;
        match (task, outcome) {
            (Task::Robots { url }, outcome) => self.robots_finished(&url, outcome),
            (Task::Page { number, .. }, Ok(Done::Moved(to))) if meta.hops < MAX_REDIRECTS => {
                self.pages.came_back(number, Some(MovedPage { number, url: to, hops: meta.hops + 1 }));
            }
            (Task::Page { number, url, .. }, Ok(Done::Moved(_))) => {
                self.pages.came_back(number, None);
                self.page_finished(number, &url, Err(TaskError::Redirects), msg.attempts);
            }
            (Task::Page { number, url, .. }, outcome) => {
                self.pages.came_back(number, None);
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
                if let Err(e) = self.plan.store.record(&url, &name, bytes)
                    && !self.resume_warned
                {
                    self.resume_warned = true;
                    warn!(self.log, "cannot update the resume record: a re-run will fetch these again"; "error" => %e);
                }
                let mut item = item(url, image.page, name, Status::Ok);
                (item.bytes, item.attempts, item.sha256) = (bytes, attempts, sha256);
                (item.element, item.note) = (image.meta.element, image.meta.note);
                self.tally.image(item);
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
        self.robots.learn(url, rules);
    }

    fn page_finished(&mut self, number: u32, url: &Url, outcome: Result<Done, TaskError>, attempts: u32) {
        match outcome {
            Ok(Done::Page(scan)) => {
                self.tally.page_ok();
                if number == self.pages.first() {
                    self.clamp_pages(scan.page_count);
                }
                self.page_settled(number, Some(url.clone()), scan.images);
            }
            // No count stated and a page after the first is missing: the walk ended with
            // the page before it. That page is the end, neither ok nor failed.
            Err(TaskError::Status { code: 404 | 410, .. })
                if number != self.pages.first() && !self.pages.count_stated() =>
            {
                if !self.pages.past_end(number) {
                    info!(self.log, "page not found: the walk ends before it"; "page" => number, "url" => %url);
                }
                self.pages.end_at(number - 1);
                self.page_settled(number, None, Vec::new());
            }
            // Asked for ahead of knowing where the end was: not a failure of the run.
            Err(e) if self.pages.past_end(number) => {
                debug!(self.log, "page past the end"; "page" => number, "url" => %url, "error" => %e);
                self.page_settled(number, None, Vec::new());
            }
            other => {
                let error = match other {
                    Err(e) => e.to_string(),
                    Ok(done) => format!("worker answered a page with {done:?}"),
                };
                warn!(self.log, "page failed"; "page" => number, "url" => %url, "error" => error, "attempts" => attempts);
                self.tally.pages_failed(1);
                self.page_settled(number, None, Vec::new());
            }
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
        self.pages.clamp(stated.min(wanted));
        // Logged as before for a walk from page 1 (scripts may look for it); a range names
        // its first page.
        match self.pages.first() {
            1 => {
                info!(self.log, "page 1 states the page count"; "stated" => stated, "fetching" => self.pages.last())
            }
            first => info!(self.log, "the first page states the page count";
                "page" => first, "stated" => stated, "last" => self.pages.last()),
        }
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
            self.tally.found_image();
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
                let mut item = item(url, page, name, Status::Skipped);
                (item.bytes, item.reason) = (bytes, Some("complete from an earlier run".into()));
                (item.element, item.note) = (meta.element, meta.note.clone());
                self.tally.image(item);
                return None;
            }
            Lookup::Complete { name, .. } | Lookup::Stale { name } => Some(name),
            Lookup::Unknown => None,
        };
        // Ours to replace, unless another URL of this run already went there (the file
        // was gone when it looked): then this one must not overwrite it.
        if let Some(name) = earlier
            && self.names.take(&name)
        {
            return Some(ImageTask { url, name, overwrite: true, referer });
        }
        let name = self.names.claim(&url);
        Some(ImageTask { url, name, overwrite: false, referer })
    }

    fn show_progress(&self) {
        if let Some(progress) = &self.plan.progress {
            progress.update(&Snapshot {
                pages: self.tally.pages(),
                pages_planned: u64::from(self.pages.planned()),
                images: self.tally.images(),
            });
        }
    }

    fn answer_joiners_if_finished(&mut self) {
        if let Some(why) = &self.stopped
            && self.slots.in_flight() == 0
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
            let summary = self.tally.summary(self.stopped.as_ref().map(TaskError::to_string));
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
        warn!(self.log, "stopping: finishing what is in flight"; "why" => %why, "in_flight" => self.slots.in_flight());
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

/// What a page said about each image, as the Coordinator keeps it.
fn metas(images: Vec<Found>) -> Vec<(Url, Meta)> {
    images
        .into_iter()
        .map(|f| (f.url, Meta { element: Some(f.element), fallback: f.fallback, ..Meta::default() }))
        .collect()
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
        self.slots.register(msg.tasks, msg.capacity);
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
        MessageResult((self.tally.pages(), self.tally.images()))
    }
}

#[cfg(test)]
mod tests;
