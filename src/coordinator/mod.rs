//! The Coordinator: hands the work out to registered workers within their capacity,
//! counts what comes back, and answers [`Join`] once every task it handed out has been
//! acknowledged and the [`Frontier`] holds no more work.
//!
//! The work itself (pages, the images they reveal, the seen-set, what is out) is the
//! Frontier's; the Coordinator keeps the policy: robots.txt first, the per-host room,
//! what a worker's answer means (a redirect, a fallback, a full disk), the resume
//! decision and file names, stopping, and `Join`. Workers are anything behind a
//! `Recipient<RunTask>`; the Coordinator never knows their type.
//!
//! # Layout
//!
//! - `answers`: what a worker's answer does (counts, logs, the lease completed with what
//!   the task revealed);
//! - `slots`: `Slots`, the registered workers and the ledger of what each holds (and so
//!   the tasks in flight per host);
//! - `plan`: `Plan`, what the run is to do, fixed before it starts;
//! - `robots_book`: `RobotsBook`, each origin's robots.txt: asked for, then the verdicts;
//! - `names`: `Names`, the file names handed out in this run, and the resume decision;
//! - `listing`: `Listing`, `--dry-run`'s list in page order;
//! - `feed`: `Feed`, a `--urls` list's rows as a reader thread sends them, in batches;
//! - `outcome`: what a worker's answer means (a page's ending, an image to follow or
//!   to replace by its thumbnail), before anything is counted;
//! - `gate`: `ClaimGate`, robots.txt and the per-host room, as a claim sees them;
//! - `tally`: `Tally`, the counts, the items and the summary; `Subject`, an image as
//!   the report names it;
//! - `tests`: the Coordinator with probe workers.

mod answers;
mod feed;
mod gate;
mod listing;
mod names;
mod outcome;
mod plan;
mod robots_book;
mod slots;
mod tally;
mod walk_end;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use slog::{Logger, debug, info, warn};
use tokio::sync::oneshot;
use url::Url;

use crate::counts::{PagesPlanned, Snapshot};
use crate::frontier::Source;
use crate::frontier::{
    self, Answer, Claimed, Ending, Frontier, FrontierError, ItemEnd, LeaseId, Meta, Offer, Refused, Verdict,
    Work,
};
use crate::keyset::KeySet;
use crate::urllist::Carried;

use crate::counts::{ImageCounts, PageCounts, SkipReason, Status, Summary};
use crate::work::{ImageTask, PageKind, RegisterWorker, Task, TaskError, TaskFinished};
use feed::Pulled;
pub use feed::{BATCH, BadRow, Feed, ListEntry, ListSender, list_channel};
use gate::ClaimGate;
use listing::Listing;
use names::{Names, Planned};
pub use plan::Plan;
use robots_book::RobotsBook;
use slots::Slots;
use tally::{Subject, Tally};

/// How often the Coordinator looks for workers that died.
pub const LIVENESS_CHECK: Duration = Duration::from_millis(500);

/// Images a `--urls` list keeps waiting in the frontier, at least: enough that no
/// worker waits for the reader, few enough that a list of any length costs a few
/// hundred KiB.
const LIST_AHEAD: usize = 2 * BATCH * 4;

/// How soon an idle process asks a shared frontier again, first and at most (the
/// liveness tick, every [`LIVENESS_CHECK`], asks too).
const IDLE_POLL_FIRST: Duration = Duration::from_millis(50);
const IDLE_POLL_MAX: Duration = Duration::from_secs(1);

/// After an interrupt, how long tasks in flight get to acknowledge their cancellation
/// before they are counted as failed anyway (a blocking read can outlast it).
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(2);

/// Command: stop handing out work (SIGINT/SIGTERM). What was never handed out counts as
/// failed; what is in flight has [`INTERRUPT_GRACE`] to acknowledge. In a shared job
/// nothing is failed: the work is the job's, and goes back to it untried.
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
    /// The Frontier's lease; `None` for a robots.txt, which is this process's own.
    lease: Option<LeaseId>,
    /// For images: the page that revealed it, and its Referer.
    page: u32,
    referer: Option<Url>,
    /// How it came to its URL, and for an image what its page said about it.
    meta: Meta,
    /// A list row's other columns, for the image's report item.
    carried: Option<Box<Carried>>,
}

/// An image about to go out: its task, page, Referer, meta and carried columns.
type ImageGoing = (Task, u32, Option<Url>, Meta, Option<Box<Carried>>);

impl InFlight {
    /// A task of this process's own (a robots.txt, a dry run's probe): no lease, no page.
    fn unleased(task: Task) -> Self {
        Self { task, lease: None, page: 0, referer: None, meta: Meta::default(), carried: None }
    }
}

pub struct Coordinator {
    plan: Plan,
    log: Logger,
    /// The work: pages, images, the seen-set, leases.
    frontier: Box<dyn Frontier>,
    /// The workers and the ledger of what each holds.
    slots: Slots<InFlight>,
    /// Per origin (scheme, host, port): its robots.txt, fetched before anything else.
    robots: RobotsBook,
    /// File names handed out in this run.
    names: Names,
    /// `--dry-run`: images are listed, not handed out.
    listing: Option<Listing>,
    /// A claim is on its way (a remote frontier): no second one meanwhile.
    claiming: bool,
    /// A remote frontier had nothing for free slots: when to ask again (and whether the
    /// job is done), from 50 ms doubling to 1 s, back to 50 ms once work comes. Other
    /// processes' completions send this one no message.
    idle_poll: Option<Duration>,
    /// Set by [`Interrupt`], a full disk or a frontier that failed: nothing more is
    /// handed out, and what a worker gives up on counts as failed with this error.
    stopped: Option<TaskError>,
    /// The resume record could not be written: warned once.
    resume_warned: bool,
    /// Counts, items, the summary.
    tally: Tally,
    joiners: Vec<oneshot::Sender<Summary>>,
    /// A `--urls` list not yet read to its end: its rows are offered a batch at a time
    /// while the frontier holds few images.
    feed: Option<Feed>,
    /// The list's rows, when a first pass counted them: what a stop leaves unread is
    /// counted as failed.
    list_rows: Option<u64>,
    /// Why the walk of listing pages ended, said when the run ends.
    walk_end: walk_end::WalkEnd,
    /// `--dry-run`: the link target at the front of the listing to probe, and whether
    /// the probe went out.
    probe: Option<(Url, bool)>,
    /// A shared job's tasks this process gave up because it stops, their leases given
    /// back untried: said once at the end, so a user sees the job still has them.
    handed_back: u64,
}

impl Coordinator {
    /// A Coordinator for `plan` whose work is kept by `frontier` (made for that plan).
    pub fn new(mut plan: Plan, frontier: Box<dyn Frontier>, log: Logger) -> Self {
        let (first, list_rows) = match &plan.source {
            Source::Pages { first_page, .. } => ((*first_page).max(1), None),
            Source::Urls(list) => (1, list.rows),
        };
        let listing = plan.listing.take().map(|out| Listing::new(out, first));
        let walk_end = match &plan.source {
            Source::Pages { pages, max_pages, .. } => {
                walk_end::WalkEnd::new(*max_pages, !pages.has_template())
            }
            Source::Urls(_) => walk_end::WalkEnd::default(),
        };
        Self {
            walk_end,
            probe: None,
            log,
            frontier,
            slots: Slots::default(),
            robots: RobotsBook::new(plan.obey_robots),
            names: Names::new(plan.name.clone())
                .with_keys(KeySet::spilling(plan.spill.clone(), list_rows.unwrap_or(0))),
            listing,
            claiming: false,
            idle_poll: None,
            stopped: None,
            resume_warned: false,
            tally: match plan.shared {
                Some(_) => Tally::new(plan.items.take()).share(),
                None => Tally::new(plan.items.take()),
            },
            joiners: Vec::new(),
            feed: plan.list.take(),
            list_rows,
            handed_back: 0,
            plan,
        }
    }

    /// Offers the next rows of a `--urls` list while the frontier holds fewer than
    /// [`LIST_AHEAD`] images (or four per slot): the list is never read far ahead of
    /// the work, whatever its length. A shared frontier's count is a round trip: one at
    /// a time, and none again until the next step.
    fn read_list(&mut self, ctx: &mut Context<Self>) {
        let Some(feed) = &mut self.feed else { return };
        if feed.waiting || self.stopped.is_some() {
            return;
        }
        match frontier::ready(self.frontier.counts()) {
            Ok(Ok(counts)) => self.read_list_while_short(counts.queued, ctx),
            Ok(Err(e)) => self.frontier_failed(e, ctx),
            Err(later) => {
                feed.waiting = true;
                ctx.spawn(later.into_actor(self).map(|counts, act, ctx| {
                    if let Some(feed) = &mut act.feed {
                        feed.waiting = false;
                    }
                    match counts {
                        Ok(counts) => act.read_list_while_short(counts.queued, ctx),
                        Err(e) => act.frontier_failed(e, ctx),
                    }
                }));
            }
        }
    }

    fn read_list_while_short(&mut self, queued: usize, ctx: &mut Context<Self>) {
        let ahead = LIST_AHEAD.max(4 * self.slots.capacity());
        let Some(feed) = &mut self.feed else { return };
        let mut queued = queued + feed.offering;
        while queued < ahead && self.stopped.is_none() {
            let Some(feed) = &mut self.feed else { return };
            match feed.try_pull() {
                Pulled::Batch(batch) => {
                    queued += batch.len();
                    self.offer_list(batch, ctx);
                }
                Pulled::Empty => return self.wait_for_list(ctx),
                Pulled::End => {
                    self.feed = None;
                    return;
                }
            }
        }
    }

    /// The reader has nothing ready (a slow disk, a pipe): wait for its next batch off
    /// the mailbox, and go on from there.
    fn wait_for_list(&mut self, ctx: &mut Context<Self>) {
        let Some(mut rx) = self.feed.as_mut().and_then(Feed::take_receiver) else { return };
        let next = async move {
            let batch = rx.recv().await;
            (rx, batch)
        };
        ctx.spawn(next.into_actor(self).map(|(rx, batch), act, ctx| {
            // Stopped meanwhile: the list is closed, and the rest stays unread.
            let Some(feed) = &mut act.feed else { return };
            feed.put_back(rx, batch.as_deref());
            match batch {
                Some(batch) => act.offer_list(batch, ctx),
                None => act.feed = None,
            }
            act.step(ctx);
        }));
    }

    /// Offers a batch of rows: each new URL is counted as found once the frontier admits
    /// it; a row that is not a URL is found and failed at once.
    fn offer_list(&mut self, batch: Vec<ListEntry>, ctx: &mut Context<Self>) {
        let mut offers = Vec::with_capacity(batch.len());
        for entry in batch {
            match entry.url {
                Ok(url) => offers.push(Offer {
                    index: Some(entry.index),
                    carried: entry.carried,
                    ..Offer::new(url, 0, None, Meta::default())
                }),
                Err(BadRow { text, error }) => {
                    warn!(self.log, "list row failed"; "row" => &text, "error" => &error);
                    self.tally.found_image();
                    self.tally.bad_row(text, error, entry.carried);
                }
            }
        }
        if offers.is_empty() {
            return;
        }
        let n = offers.len();
        if let Some(feed) = &mut self.feed {
            feed.offering += n;
        }
        let answer = self.frontier.offer(offers);
        self.then(ctx, answer, move |act, admitted| {
            if let Some(feed) = &mut act.feed {
                feed.offering = feed.offering.saturating_sub(n);
            }
            for _ in admitted.iter().filter(|new| **new) {
                act.tally.found_image();
            }
        });
    }

    /// Nothing more is read from the list (a stop): rows a first pass counted and this
    /// run never reached count as failed, without an item each (a re-run of the list
    /// picks them up; the resume record skips what is done).
    fn close_list(&mut self) {
        let Some(feed) = self.feed.take() else { return };
        if let Some(rows) = self.list_rows {
            let unread = rows.saturating_sub(feed.read);
            if unread > 0 {
                warn!(self.log, "list rows never reached count as failed"; "rows" => unread);
                self.tally.unread(unread);
            }
        }
    }

    /// Applies a frontier's answer: at once when it is ready (the in-memory frontier's
    /// always are), else when it arrives, then hands out what can go.
    fn then<T: 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        answer: Answer<T>,
        apply: impl FnOnce(&mut Self, T) + 'static,
    ) {
        match frontier::ready(answer) {
            Ok(Ok(value)) => apply(self, value),
            Ok(Err(e)) => self.frontier_failed(e, ctx),
            Err(later) => {
                ctx.spawn(later.into_actor(self).map(move |result, act, ctx| {
                    match result {
                        Ok(value) => apply(act, value),
                        Err(e) => act.frontier_failed(e, ctx),
                    }
                    // Joiners are answered by the next step or the liveness tick.
                    act.dispatch(ctx);
                }));
            }
        }
    }

    fn frontier_failed(&mut self, e: FrontierError, ctx: &mut Context<Self>) {
        slog::error!(self.log, "the frontier failed: stopping"; "error" => %e);
        self.stop(TaskError::Frontier(e.to_string()), ctx);
    }

    /// Hands out tasks while some worker has room: robots.txt first, then what the
    /// frontier lets go.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        self.drop_dead_workers(ctx);
        self.list_ready(ctx);
        loop {
            // Each turn: images that all ended at once leave the frontier short again.
            self.read_list(ctx);
            if self.stopped.is_some()
                || self.listing.as_ref().is_some_and(Listing::is_closed)
                || self.claiming
            {
                return;
            }
            while let Some(slot) = self.slots.free_slot()
                && let Some(url) = self.robots.next_request()
            {
                let task = Task::Robots { url };
                self.slots.send(slot, task.clone(), InFlight::unleased(task));
            }
            if let Some((url, sent @ false)) = &mut self.probe
                && let Some(slot) = self.slots.free_slot()
            {
                *sent = true;
                let task = Task::Probe { url: url.clone() };
                self.slots.send(slot, task.clone(), InFlight::unleased(task));
            }
            let want = self.slots.free();
            if want == 0 {
                return;
            }
            let mut gate = ClaimGate::new(&mut self.robots, &self.slots, self.plan.per_host_concurrency);
            let answer = self.frontier.claim(want, self.slots.capacity(), &mut gate);
            match frontier::ready(answer) {
                Ok(Ok(claimed)) => {
                    let moved = self.take_claimed(claimed, ctx) > 0;
                    if !moved && !self.robots.has_requests() {
                        return;
                    }
                }
                Ok(Err(e)) => return self.frontier_failed(e, ctx),
                Err(later) => {
                    self.claiming = true;
                    ctx.spawn(later.into_actor(self).map(|result, act, ctx| {
                        act.claiming = false;
                        match result {
                            // Claim again only if this one took something: an empty
                            // answer means nothing can go until another message.
                            Ok(claimed) => {
                                if act.take_claimed(claimed, ctx) > 0 || act.robots.has_requests() {
                                    act.idle_poll = None;
                                    act.dispatch(ctx);
                                } else {
                                    act.poll_later(ctx);
                                }
                            }
                            Err(e) => act.frontier_failed(e, ctx),
                        }
                    }));
                    return;
                }
            }
        }
    }

    /// Asks a remote frontier again a little later, backing off while nothing comes.
    fn poll_later(&mut self, ctx: &mut Context<Self>) {
        if self.idle_poll.is_some_and(|wait| wait > IDLE_POLL_MAX) || self.stopped.is_some() {
            return;
        }
        let wait = self.idle_poll.map_or(IDLE_POLL_FIRST, |wait| wait * 2);
        self.idle_poll = Some(wait);
        ctx.run_later(wait.min(IDLE_POLL_MAX), |act, ctx| act.step(ctx));
    }

    /// Counts what the gate refused (and what a shared frontier gave up on) and hands out
    /// the rest. Returns how much of the claim ended or went out: more than nothing means
    /// the frontier moved on, and a claim again may find more (a re-run whose images
    /// all end at once, complete from an earlier run, must not wait for a tick per slot).
    fn take_claimed(&mut self, mut claimed: Claimed, ctx: &mut Context<Self>) -> usize {
        // A claim that comes back once this process is stopping: the job's other
        // processes will do the work, untried; handed out here it would only be cancelled.
        if self.plan.shared.is_some() && self.plan.cancel.is_cancelled() && !claimed.leases.is_empty() {
            let answer = self.frontier.release(std::mem::take(&mut claimed.leases));
            self.then(ctx, answer, |_, ()| {});
        }
        let mut ended = claimed.lost.len();
        for (work, reason) in claimed.lost.drain(..) {
            match work {
                Work::Image(offer) => self.fail(&offer.into(), 0, reason),
                Work::Detail(offer) => self.detail_refused(&offer.url, reason, true),
                Work::Page { number, url, .. } => self.refuse_page(number, &url, reason, true),
            }
        }
        if !self.frontier.judges_robots() {
            claimed = self.judge_robots(claimed, ctx);
        }
        ended += claimed.refused.len();
        for Refused { work, reason, failure } in claimed.refused {
            match work {
                Work::Page { number, url, .. } => self.refuse_page(number, &url, reason, failure),
                Work::Image(offer) if failure => self.fail(&offer.into(), 0, reason),
                Work::Image(offer) => self.skip(&offer.into(), SkipReason::Robots, reason),
                Work::Detail(offer) => self.detail_refused(&offer.url, reason, failure),
            }
        }
        let mut went = 0;
        for lease in claimed.leases {
            let Some(slot) = self.slots.free_slot() else {
                // More than asked for: back to the frontier, untried.
                let answer = self.frontier.release(vec![lease]);
                self.then(ctx, answer, |_, _| {});
                continue;
            };
            let (task, page, referer, meta, carried) = match lease.work {
                Work::Page { number, url, hops } => {
                    (Task::listing(number, url), number, None, Meta { hops, ..Meta::default() }, None)
                }
                Work::Detail(Offer { url, page, referer, meta, .. }) => {
                    (Task::Page { number: page, url, kind: PageKind::Detail }, page, referer, meta, None)
                }
                Work::Image(offer) => match self.image_task(offer) {
                    Ok(ready) => ready,
                    Err(end) => {
                        let answer = self.frontier.complete(lease.id, Ending::Image(end), Vec::new());
                        self.then(ctx, answer, |_, _| {});
                        ended += 1;
                        continue;
                    }
                },
            };
            let entry = InFlight { task: task.clone(), lease: Some(lease.id), page, referer, meta, carried };
            self.slots.send(slot, task, entry);
            went += 1;
        }
        went + ended
    }

    /// robots.txt on what a frontier that cannot ask the gate handed out: what must wait
    /// for its robots.txt goes back untried; what it refuses ends here.
    fn judge_robots(&mut self, claimed: Claimed, ctx: &mut Context<Self>) -> Claimed {
        let mut kept = Claimed { refused: claimed.refused, ..Claimed::default() };
        let mut back = Vec::new();
        for lease in claimed.leases {
            match self.robots.verdict(lease.work.url()) {
                Verdict::Go => kept.leases.push(lease),
                Verdict::Wait => back.push(lease),
                Verdict::Refused { reason, failure } => {
                    let end = match (&lease.work, failure) {
                        (Work::Detail(_), true) => ItemEnd::DetailFailed,
                        (_, true) => ItemEnd::Failed,
                        (_, false) => ItemEnd::Skipped,
                    };
                    let answer = self.frontier.complete(lease.id, Ending::Image(end), Vec::new());
                    self.then(ctx, answer, |_, _| {});
                    kept.refused.push(Refused { work: lease.work, reason, failure });
                }
            }
        }
        if !back.is_empty() {
            let answer = self.frontier.release(back);
            self.then(ctx, answer, |_, ()| {});
        }
        kept
    }

    /// The task for an image about to go out: under the name it already has (it was
    /// redirected), or the resume decision's. `Err` when an earlier run stored it whole
    /// (counted as skipped here) or `NAME` cannot name it (counted as failed), with how
    /// it ended.
    fn image_task(&mut self, offer: Offer) -> Result<ImageGoing, ItemEnd> {
        let (name, overwrite) = match offer.meta.name.clone() {
            Some(name) => (name, offer.meta.overwrite),
            None => match self.names.plan(&*self.plan.store, &offer, self.plan.force) {
                Planned::Fetch { name, overwrite } => (name, overwrite),
                Planned::Unnamed(why) => {
                    self.fail(&offer.into(), 0, why);
                    return Err(ItemEnd::Failed);
                }
                Planned::Complete { name, bytes } => {
                    self.skip_complete(offer, name, bytes);
                    return Err(ItemEnd::Skipped);
                }
            },
        };
        let Offer { url, page, referer, meta, carried, .. } = offer;
        let task = ImageTask { url, name, overwrite, referer: referer.clone() };
        Ok((Task::Image(task), page, referer, meta, carried))
    }

    fn skip_complete(&mut self, offer: Offer, name: String, bytes: u64) {
        let mut item = Subject { path: name, ..Subject::from(offer) }.item(Status::Skipped);
        (item.bytes, item.reason) = (bytes, Some("complete from an earlier run".into()));
        self.tally.skipped(item, SkipReason::Complete);
    }

    /// A page robots.txt keeps us from: skipped when the site disallows it, failed when
    /// robots.txt could not be read.
    fn refuse_page(&mut self, n: u32, url: &Url, reason: String, failure: bool) {
        if failure {
            warn!(self.log, "page failed"; "page" => n, "url" => %url, "reason" => &reason);
            self.tally.page_failed(url, n, reason, 0, false);
        } else {
            warn!(self.log, "page skipped"; "page" => n, "url" => %url, "reason" => &reason);
            self.tally.page_skipped();
        }
        if let Some(listing) = &mut self.listing {
            listing.page_done(n, Vec::new());
        }
    }

    pub(super) fn skip(&mut self, image: &Subject, why: SkipReason, reason: String) {
        debug!(self.log, "image skipped"; "url" => %image.found, "reason" => &reason);
        let mut item = image.item(Status::Skipped);
        item.reason = Some(reason);
        self.tally.skipped(item, why);
    }

    fn fail(&mut self, image: &Subject, attempts: u32, error: String) {
        warn!(self.log, "image failed"; "url" => %image.found, "error" => &error, "attempts" => attempts);
        let mut item = image.item(Status::Failed);
        (item.attempts, item.error) = (attempts, Some(error));
        self.tally.image(item);
    }

    /// `--dry-run`: lists the waiting images in order, up to one whose robots.txt is
    /// still on its way (the order must hold), skipping what robots.txt refuses.
    fn list_ready(&mut self, ctx: &mut Context<Self>) {
        while let Some(url) = self.listing.as_ref().and_then(Listing::front).map(|o| o.url.clone()) {
            let verdict = self.robots.verdict(&url);
            if verdict == Verdict::Wait {
                return;
            }
            if verdict == Verdict::Go && self.listing.as_ref().is_some_and(Listing::front_needs_probe) {
                // Listed in page order: the rest waits for this answer.
                if self.probe.is_none() {
                    self.probe = Some((url, false));
                }
                return;
            }
            let offer = self.listing.as_mut().and_then(Listing::pop).expect("a front");
            match verdict {
                Verdict::Wait => unreachable!("returned above"),
                Verdict::Refused { reason, failure: true } => self.fail(&offer.into(), 0, reason),
                Verdict::Refused { reason, failure: false } => {
                    self.skip(&offer.into(), SkipReason::Robots, reason)
                }
                Verdict::Go => match self.names.plan(&*self.plan.store, &offer, self.plan.force) {
                    Planned::Complete { name, bytes } => self.skip_complete(offer, name, bytes),
                    Planned::Unnamed(why) => self.fail(&offer.into(), 0, why),
                    Planned::Fetch { .. } if self.listing.as_mut().is_some_and(|l| l.write(&url)) => {
                        self.tally.listed()
                    }
                    // The reader is gone (`| head`): nothing more to fetch or list, and
                    // nothing failed.
                    Planned::Fetch { .. } => {
                        self.robots.clear_requests();
                        let answer = self.frontier.abandon();
                        return self.then(ctx, answer, |_, _| {});
                    }
                },
            }
        }
    }

    /// A worker whose mailbox is gone (its Arbiter or thread died) will never acknowledge
    /// what it holds: count that as failed, and if no worker is left, the rest too,
    /// rather than wait forever.
    fn drop_dead_workers(&mut self, ctx: &mut Context<Self>) {
        for slot in self.slots.newly_dead() {
            warn!(self.log, "worker is gone"; "slot" => slot);
            self.fail_in_flight(Some(slot), TaskError::Worker("worker stopped".into()), ctx);
        }
        if self.slots.all_dead() {
            self.abandon_remaining("no worker left", ctx);
        }
    }

    /// Counts the tasks in flight (on `slot`, or on every slot) as failed.
    fn fail_in_flight(&mut self, slot: Option<usize>, error: TaskError, ctx: &mut Context<Self>) {
        for id in self.slots.held_by(slot) {
            self.finish(TaskFinished { id, outcome: Err(error.clone()), attempts: 1 }, ctx);
        }
    }

    /// Counts every page and image not yet handed out as failed with `reason`.
    fn abandon_remaining(&mut self, reason: &str, ctx: &mut Context<Self>) {
        self.robots.clear_requests();
        let unlisted = self.listing.as_mut().map(Listing::drain).unwrap_or_default();
        for offer in unlisted {
            self.fail(&offer.into(), 0, reason.to_string());
        }
        let reason = reason.to_string();
        let answer = self.frontier.abandon();
        self.then(ctx, answer, move |act, abandoned| {
            if abandoned.pages > 0 {
                warn!(act.log, "pages abandoned"; "count" => abandoned.pages, "reason" => &reason);
                act.tally.pages_failed(abandoned.pages);
            }
            for offer in abandoned.images {
                if offer.detail {
                    act.tally.detail_failed();
                    continue;
                }
                let mut item = Subject::from(offer).item(Status::Failed);
                item.error = Some(reason.clone());
                act.tally.image(item);
            }
            // Stopped: done once this process holds nothing, whatever the frontier still
            // holds (a shared job goes on without it), and only once its leases went back.
            if act.stopped.is_some() && act.slots.in_flight() == 0 && !act.joiners.is_empty() {
                act.answer_joiners();
            }
        });
    }

    fn show_progress(&self) {
        let Some(watch) = &self.plan.watch else { return };
        // A remote frontier's counts would take a round trip: the bar keeps its last.
        if let Ok(Ok(counts)) = frontier::ready(self.frontier.counts()) {
            let pages_planned = match (&self.plan.source, counts.pages_known) {
                (Source::Urls(list), _) => list.rows.map_or(PagesPlanned::NoPages, PagesPlanned::List),
                (_, true) => PagesPlanned::Known(u64::from(counts.pages_planned)),
                (_, false) => PagesPlanned::Unknown,
            };
            watch.update(&Snapshot { pages: self.tally.pages(), pages_planned, images: self.tally.images() });
        }
    }

    fn answer_joiners_if_finished(&mut self, ctx: &mut Context<Self>) {
        if let Some(why) = &self.stopped {
            // Page 1 may have come back after the stop, with pages to count; the
            // joiners are answered once that is done.
            if self.slots.in_flight() == 0 {
                let why = why.to_string();
                self.abandon_remaining(&why, ctx);
            }
            return;
        }
        let listing_done = self.listing.as_ref().is_none_or(Listing::is_empty);
        if self.joiners.is_empty()
            || self.feed.is_some()
            || self.slots.in_flight() > 0
            || self.robots.has_requests()
            || !listing_done
        {
            return;
        }
        let answer = self.frontier.is_done();
        self.then(ctx, answer, |act, done| {
            if done {
                act.answer_joiners();
            }
        });
    }

    fn answer_joiners(&mut self) {
        if let Some(watch) = &self.plan.watch {
            watch.finish();
        }
        // Said even when it looks obvious: a walk that stopped at page 1 because the
        // site's pager went unrecognised looks just like a one-page gallery.
        if self.stopped.is_none()
            && let Some(end) = self.walk_end.line()
        {
            info!(self.log, "the walk ended after page {}: {}", end.last, end.why);
            if let Some(hint) = end.hint {
                warn!(self.log, "{hint}");
            }
        }
        if self.handed_back > 0 {
            info!(self.log, "tasks in flight handed back to the shared job, untried: its other processes (or a later run) do them";
                "tasks" => self.handed_back);
        }
        let summary = Summary {
            handed_back: self.handed_back,
            ..self.tally.summary(self.stopped.as_ref().map(TaskError::to_string))
        };
        let joiners = std::mem::take(&mut self.joiners);
        // The record's last write may wait on the network (a bucket's PUT): on the
        // blocking pool, never in this handler; the joiners are answered once it is
        // durable, so the run never ends before it.
        let (store, log) = (Arc::clone(&self.plan.store), self.log.clone());
        actix_rt::spawn(async move {
            let failed = match actix_rt::task::spawn_blocking(move || store.flush()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("the flush panicked".to_string()),
            };
            if let Some(e) = failed {
                warn!(log, "cannot update the resume record: a re-run will fetch these again"; "error" => e);
            }
            for joiner in joiners {
                let _ = joiner.send(summary.clone());
            }
        });
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
        self.close_list();
        self.abandon_remaining(&why.to_string(), ctx);
        self.stopped = Some(why);
        ctx.run_later(INTERRUPT_GRACE, |act, ctx| {
            // Counted with the stop's reason (see `finish`), or handed back in a shared job.
            act.fail_in_flight(None, TaskError::Interrupted, ctx);
            act.step(ctx);
        });
    }

    /// Every handler ends here: hand out what can go, answer `Join` if all is done.
    fn step(&mut self, ctx: &mut Context<Self>) {
        self.dispatch(ctx);
        self.answer_joiners_if_finished(ctx);
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    /// A worker that dies sends nothing more, and a `Join` may be all that is pending:
    /// look at the workers now and then, so it is answered without another message.
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.read_list(ctx);
        ctx.run_interval(LIVENESS_CHECK, |act, ctx| act.step(ctx));
        if let Some(every) = self.plan.shared {
            ctx.run_interval(every, |act, ctx| {
                let answer = act.frontier.renew();
                act.then(ctx, answer, |_, ()| {});
            });
        }
    }
}

impl Handler<RegisterWorker> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: RegisterWorker, ctx: &mut Context<Self>) {
        self.slots.register(msg.tasks, msg.capacity);
        self.step(ctx);
    }
}

impl Handler<TaskFinished> for Coordinator {
    type Result = ();

    fn handle(&mut self, msg: TaskFinished, ctx: &mut Context<Self>) {
        if let Some(why) = self.finish(msg, ctx) {
            self.stop(why, ctx);
        }
        self.step(ctx);
    }
}

impl Handler<Interrupt> for Coordinator {
    type Result = ();

    fn handle(&mut self, _: Interrupt, ctx: &mut Context<Self>) {
        self.stop(TaskError::Interrupted, ctx);
        self.step(ctx);
    }
}

impl Handler<Join> for Coordinator {
    type Result = ResponseFuture<Option<Summary>>;

    fn handle(&mut self, _: Join, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.joiners.push(tx);
        self.step(ctx);
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
