//! A shared job that walks listing pages: one process at a time walks them (the walker,
//! under a lease in Redis it renews with its other leases), with `LocalFrontier`'s page
//! rules; every process fetches the images and detail pages the walk offers to Redis.
//! A walker that dies stops renewing: another process takes the walk over where it left
//! it. The walker keeps a mark in Redis ([`WalkMark`]): the pages before it are all
//! finished, with what the walk learnt from them (the stated last page, the next link),
//! so the new walker starts after it, not from page 1 (days of a gallery's pages are not
//! walked again). Pages after the mark that were already fetched are fetched again:
//! their images are known to the job's seen-set, and the new walk's own rules keep their
//! own, so a page seen before does not look like a repeated last page.
//!
//! The walker lists a page only while the job's queues are shorter than its capacity,
//! as a single process lists pages only while its own image queue is: what pages find
//! waits in Redis about a page's worth per page in flight, not a gallery's. Pure of actix.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use futures_util::FutureExt;
use url::Url;

use super::{RedisFrontier, millis, scripts, unavailable};
use crate::frontier::WalkMark;
use crate::frontier::{
    Abandoned, Answer, Claimed, Completed, Counts, Ending, Frontier, FrontierError, Gate, Lease, LeaseId,
    LocalFrontier, Offer, PageFate, Work, ready,
};

/// Page leases carry this bit: they are the walker's own, never Redis'.
const PAGE: LeaseId = 1 << 63;

/// This process's walk: which pages of it finished, to keep the mark.
#[derive(Debug, Default)]
struct WalkProgress {
    /// The mark as it stands; `None` until the first page went out.
    mark: Option<WalkMark>,
    /// Pages finished past the mark (their turn comes when the ones before finish).
    finished: BTreeSet<u32>,
    /// Next links of finished pages past the mark.
    next: HashMap<u32, Url>,
    /// Page leases out: lease id -> page number.
    out: HashMap<LeaseId, u32>,
}

impl WalkProgress {
    /// A page went out: the first one sets where the mark starts.
    fn sent(&mut self, id: LeaseId, number: u32) {
        self.out.insert(id, number);
        self.mark.get_or_insert(WalkMark { done: number.saturating_sub(1), last: None, next: None });
    }

    /// Page `number` finished; answers the mark when it moved.
    fn finished(&mut self, number: u32, next: Option<Url>) -> Option<WalkMark> {
        let mark = self.mark.as_mut()?;
        if number <= mark.done {
            return None;
        }
        self.finished.insert(number);
        if let Some(next) = next {
            self.next.insert(number, next);
        }
        let before = mark.done;
        while self.finished.remove(&(mark.done + 1)) {
            mark.done += 1;
            mark.next = self.next.remove(&mark.done);
        }
        (mark.done != before).then(|| mark.clone())
    }
}

/// Makes this process's walk (pages only) from a mark, or from the first page.
type MakeWalk = Rc<dyn Fn(Option<&WalkMark>) -> LocalFrontier>;

/// This process's part in the walk.
enum WalkRole {
    /// Another process walks (or will: this one takes over if its lease lapses).
    Elsewhere,
    Mine(Box<LocalFrontier>),
    Done,
    /// This process gave the walk up (Ctrl-C): it never takes it again, even if its
    /// leases are renewed once more before it ends, or the walk would wait on it.
    Left,
}

pub struct SharedWalk {
    items: RedisFrontier,
    /// Shared with the futures of `renew` and `complete`, which hand the walk over.
    walk: Rc<RefCell<WalkRole>>,
    /// A walk (pages only) from where the mark says, or from the first page, for when
    /// this process takes over.
    make: MakeWalk,
    /// This process's walk's pages, to keep the mark.
    progress: Rc<RefCell<WalkProgress>>,
    /// The job's queue as last heard: a claim's answer, plus what this process offered
    /// since (others' claims shorten it meanwhile: the walk only waits longer). Pages go
    /// while it is shorter than the capacity.
    queued: Rc<Cell<usize>>,
    /// The last claim of the job's work found less than it asked for (the queue's hosts
    /// full or paused): pages go anyway, as a single process lists a page when no image
    /// may go, so the slots do not idle.
    starved: Rc<Cell<bool>>,
}

/// What `walk.lua` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Took {
    New,
    Mine,
    Elsewhere,
    Done,
}

impl SharedWalk {
    /// Joins the job's walk: this process walks if no other does.
    pub async fn join(
        items: RedisFrontier,
        make: impl Fn(Option<&WalkMark>) -> LocalFrontier + 'static,
    ) -> Result<Self, FrontierError> {
        let shared = Self {
            items,
            walk: Rc::new(RefCell::new(WalkRole::Elsewhere)),
            make: Rc::new(make),
            progress: Rc::default(),
            queued: Rc::default(),
            starved: Rc::default(),
        };
        let took = shared.call("take").await?;
        shared.apply(took);
        Ok(shared)
    }

    /// Whether this process walks the pages now.
    pub fn walks(&self) -> bool {
        matches!(*self.walk.borrow(), WalkRole::Mine(_))
    }

    fn call(&self, op: &'static str) -> Answer<(Took, Option<WalkMark>)> {
        self.call_with(op, String::new())
    }

    /// `walk.lua`'s `op` with `arg` (the mark, for `mark`); answers how it went and, for
    /// a walk taken over, the mark its last walker left.
    fn call_with(&self, op: &'static str, arg: String) -> Answer<(Took, Option<WalkMark>)> {
        let mut call = scripts::call(&scripts::WALK, &self.items.prefix);
        call.arg(&self.items.node).arg(millis(self.items.lease)).arg(op).arg(arg);
        let mut conn = self.items.conn.clone();
        async move {
            let (answer, mark): (String, String) = call.invoke_async(&mut conn).await.map_err(unavailable)?;
            let took = match answer.as_str() {
                "new" => Took::New,
                "mine" => Took::Mine,
                "done" => Took::Done,
                _ => Took::Elsewhere,
            };
            // A mark that does not decode (another version's) only costs a walk from page 1.
            Ok((took, serde_json::from_str(&mark).ok()))
        }
        .boxed_local()
    }

    /// Keeps `mark` in Redis, if this process still walks.
    fn mark(&self, mark: &WalkMark) -> Answer<(Took, Option<WalkMark>)> {
        self.call_with("mark", serde_json::to_string(mark).unwrap_or_default())
    }

    fn apply(&self, took: (Took, Option<WalkMark>)) {
        apply(&self.walk, &self.make, &self.progress, took);
    }

    /// The walk is over here: tells the job (the walk's count of `open` goes).
    fn finish_walk(&self) -> Option<Answer<(Took, Option<WalkMark>)>> {
        let done = matches!(&*self.walk.borrow(), WalkRole::Mine(local) if now_done(local));
        done.then(|| {
            *self.walk.borrow_mut() = WalkRole::Done;
            self.call("done")
        })
    }
}

fn apply(
    walk: &RefCell<WalkRole>,
    make: &MakeWalk,
    progress: &RefCell<WalkProgress>,
    (took, mark): (Took, Option<WalkMark>),
) {
    let mut walk = walk.borrow_mut();
    // An answer to a `take` sent before this process left: it stays left (its `leave`
    // came after that `take` in Redis).
    if matches!(*walk, WalkRole::Left) {
        return;
    }
    match took {
        Took::New => {
            *walk = WalkRole::Mine(Box::new(make(mark.as_ref())));
            *progress.borrow_mut() = WalkProgress { mark, ..WalkProgress::default() };
        }
        Took::Mine => {}
        // Another process took over (this one was too slow to renew): its walk is theirs.
        Took::Elsewhere => *walk = WalkRole::Elsewhere,
        Took::Done => *walk = WalkRole::Done,
    }
}

/// Another process walks now, unless this one left the walk (it must not take it again).
fn elsewhere(walk: &RefCell<WalkRole>) {
    let mut walk = walk.borrow_mut();
    if !matches!(*walk, WalkRole::Left) {
        *walk = WalkRole::Elsewhere;
    }
}

/// `answer`, noting what it admitted (`admitted` of it) as queued in the job.
fn counted<T: 'static>(
    answer: Answer<T>,
    queued: &Rc<Cell<usize>>,
    admitted: fn(&T) -> &Vec<bool>,
) -> Answer<T> {
    let queued = Rc::clone(queued);
    async move {
        let answer = answer.await?;
        let new = admitted(&answer).iter().filter(|new| **new).count();
        queued.set(queued.get().saturating_add(new));
        Ok(answer)
    }
    .boxed_local()
}

fn now_done(local: &LocalFrontier) -> bool {
    matches!(ready(local.is_done()), Ok(Ok(true)))
}

impl Frontier for SharedWalk {
    fn offer(&mut self, offers: Vec<Offer>) -> Answer<Vec<bool>> {
        counted(self.items.offer(offers), &self.queued, |admitted| admitted)
    }

    /// Pages first (the walker's, judged by the gate here) while the job's queue is short
    /// (or none of it could go), then images and detail pages from the job.
    fn claim(&mut self, want: usize, capacity: usize, gate: &mut dyn Gate) -> Answer<Claimed> {
        let mut pages = Claimed::default();
        let mut moved = None;
        let short = self.queued.get() < capacity || self.starved.get();
        if short
            && let WalkRole::Mine(local) = &mut *self.walk.borrow_mut()
            && let Ok(Ok(claimed)) = ready(local.claim(want, capacity, gate))
        {
            pages = claimed;
            let mut progress = self.progress.borrow_mut();
            for lease in &mut pages.leases {
                lease.id |= PAGE;
                if let Work::Page { number, .. } = lease.work {
                    progress.sent(lease.id, number);
                }
            }
            // Pages robots.txt refuses never come back: they are finished now.
            for refused in &pages.refused {
                if let Work::Page { number, .. } = refused.work {
                    moved = progress.finished(number, None).or(moved);
                }
            }
        }
        let mark = moved.map(|mark| self.mark(&mark));
        let finished = self.finish_walk();
        let asked = want.saturating_sub(pages.leases.len());
        let items = self.items.claim_counted(asked, gate);
        let (queued, starved) = (Rc::clone(&self.queued), Rc::clone(&self.starved));
        async move {
            if let Some(mark) = mark {
                mark.await?;
            }
            if let Some(finished) = finished {
                finished.await?;
            }
            let (mut claimed, waiting) = items.await?;
            if let Some(waiting) = waiting {
                queued.set(waiting);
                starved.set(claimed.leases.len() < asked);
            }
            pages.leases.append(&mut claimed.leases);
            pages.refused.append(&mut claimed.refused);
            pages.lost.append(&mut claimed.lost);
            Ok(pages)
        }
        .boxed_local()
    }

    /// A page's children go to the job; its fate is the walk's. Once the walk has no page
    /// left, the job is told.
    fn complete(&mut self, id: LeaseId, ending: Ending, children: Vec<Offer>) -> Answer<Completed> {
        if id & PAGE == 0 {
            return counted(self.items.complete(id, ending, children), &self.queued, |done| &done.admitted);
        }
        let next = match &ending {
            Ending::PageFetched { next, .. } => next.clone(),
            _ => None,
        };
        // A page of a walk this process no longer holds: its images still go to the job.
        let page = match &mut *self.walk.borrow_mut() {
            WalkRole::Mine(local) => match ready(local.complete(id & !PAGE, ending, children.clone())) {
                Ok(Ok(done)) => done.page,
                _ => None,
            },
            _ => None,
        };
        let moved = {
            let mut progress = self.progress.borrow_mut();
            let number = progress.out.remove(&id);
            if let (Some(PageFate::Clamped { last, .. }), Some(mark)) = (&page, progress.mark.as_mut()) {
                mark.last = Some(*last);
            }
            match (number, &page) {
                // Redirected: it goes out again, under a new lease.
                (_, Some(PageFate::Moved)) | (None, _) => None,
                (Some(number), _) => progress.finished(number, next),
            }
        };
        let mark = moved.map(|mark| self.mark(&mark));
        let offered = counted(self.items.offer(children), &self.queued, |admitted| admitted);
        let walk = Rc::clone(&self.walk);
        let finished = self.finish_walk();
        async move {
            let admitted = offered.await?;
            if let Some(mark) = mark {
                let (took, _) = mark.await?;
                if took == Took::Elsewhere {
                    elsewhere(&walk);
                }
            }
            if let Some(finished) = finished {
                let (took, _) = finished.await?;
                if took == Took::Elsewhere {
                    elsewhere(&walk);
                }
            }
            Ok(Completed { admitted, page })
        }
        .boxed_local()
    }

    fn release(&mut self, leases: Vec<Lease>) -> Answer<()> {
        let (pages, items): (Vec<Lease>, Vec<Lease>) = leases.into_iter().partition(|l| l.id & PAGE != 0);
        if let WalkRole::Mine(local) = &mut *self.walk.borrow_mut() {
            let pages = pages.into_iter().map(|l| Lease { id: l.id & !PAGE, work: l.work }).collect();
            let _ = ready(local.release(pages));
        }
        self.items.release(items)
    }

    /// Stops walking here (another process takes the walk over at once) and gives this
    /// process's leases back; nothing to count, as for `RedisFrontier`.
    fn abandon(&mut self) -> Answer<Abandoned> {
        let walked = matches!(*self.walk.borrow(), WalkRole::Mine(_));
        *self.walk.borrow_mut() = WalkRole::Left;
        let leave = walked.then(|| self.call("leave"));
        let items = self.items.abandon();
        async move {
            if let Some(leave) = leave {
                leave.await?;
            }
            items.await
        }
        .boxed_local()
    }

    fn counts(&self) -> Answer<Counts> {
        let (planned, known) = match &*self.walk.borrow() {
            WalkRole::Mine(local) => ready(local.counts())
                .ok()
                .and_then(Result::ok)
                .map_or((0, false), |c| (c.pages_planned, c.pages_known)),
            _ => (0, false),
        };
        let counts = self.items.counts();
        async move { counts.await.map(|c| Counts { pages_planned: planned, pages_known: known, ..c }) }
            .boxed_local()
    }

    /// The job's: its `open` holds one count while the walk is not over.
    fn is_done(&self) -> Answer<bool> {
        self.items.is_done()
    }

    /// Renews this process's leases, and the walk's: or takes the walk over when its
    /// walker stopped renewing (it died).
    fn renew(&mut self) -> Answer<()> {
        let items = self.items.renew();
        let take =
            (!matches!(*self.walk.borrow(), WalkRole::Done | WalkRole::Left)).then(|| self.call("take"));
        let (walk, make, progress) =
            (Rc::clone(&self.walk), Rc::clone(&self.make), Rc::clone(&self.progress));
        async move {
            items.await?;
            if let Some(take) = take {
                let took = take.await?;
                apply(&walk, &make, &progress, took);
            }
            Ok(())
        }
        .boxed_local()
    }

    fn judges_robots(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(n: u32) -> Url {
        Url::parse(&format!("http://h.test/page-{n}")).unwrap()
    }

    #[test]
    fn the_mark_moves_only_over_finished_pages_and_carries_the_next_link() {
        let mut progress = WalkProgress::default();
        assert_eq!(progress.finished(1, None), None, "no page went out yet: no mark");
        for (id, n) in [(10, 4), (11, 5), (12, 6)] {
            progress.sent(id, n);
        }
        let mark = |done, next: Option<Url>| Some(WalkMark { done, last: None, next });
        assert_eq!(progress.finished(5, Some(url(6))), None, "page 4 is not finished yet");
        assert_eq!(progress.finished(4, Some(url(5))), mark(5, Some(url(6))), "4 and 5 at once");
        assert_eq!(progress.finished(5, None), None, "a page behind the mark changes nothing");
        assert_eq!(progress.finished(6, None), mark(6, None), "page 6 linked to none");
    }
}
