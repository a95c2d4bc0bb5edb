//! A shared job that walks listing pages: one process at a time walks them (the walker,
//! under a lease in Redis it renews with its other leases), with `LocalFrontier`'s page
//! rules; every process fetches the images and detail pages the walk offers to Redis.
//! A walker that dies stops renewing: another process takes the walk over and starts it
//! again from the first page (listing pages are few and cheap; the images they offer
//! again are known to the job's seen-set, and its own walk's rules keep their own, so a
//! page seen before does not look like a repeated last page). Pure of actix.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::FutureExt;

use super::{RedisFrontier, millis, scripts, unavailable};
use crate::frontier::{
    Abandoned, Answer, Claimed, Completed, Counts, Ending, Frontier, FrontierError, Gate, Lease, LeaseId,
    LocalFrontier, Offer, ready,
};

/// Page leases carry this bit: they are the walker's own, never Redis'.
const PAGE: LeaseId = 1 << 63;

/// This process's part in the walk.
enum Walk {
    /// Another process walks (or will: this one takes over if its lease lapses).
    Elsewhere,
    Mine(Box<LocalFrontier>),
    Done,
}

pub struct SharedWalk {
    items: RedisFrontier,
    /// Shared with the futures of `renew` and `complete`, which hand the walk over.
    walk: Rc<RefCell<Walk>>,
    /// A fresh walk from the first page (pages only), for when this process takes over.
    make: Rc<dyn Fn() -> LocalFrontier>,
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
        make: impl Fn() -> LocalFrontier + 'static,
    ) -> Result<Self, FrontierError> {
        let shared = Self { items, walk: Rc::new(RefCell::new(Walk::Elsewhere)), make: Rc::new(make) };
        let took = shared.call("take").await?;
        shared.apply(took);
        Ok(shared)
    }

    /// Whether this process walks the pages now.
    pub fn walks(&self) -> bool {
        matches!(*self.walk.borrow(), Walk::Mine(_))
    }

    fn call(&self, op: &'static str) -> Answer<Took> {
        let mut call = scripts::call(&scripts::WALK, &self.items.prefix);
        call.arg(&self.items.node).arg(millis(self.items.lease)).arg(op);
        let mut conn = self.items.conn.clone();
        async move {
            let answer: String = call.invoke_async(&mut conn).await.map_err(unavailable)?;
            Ok(match answer.as_str() {
                "new" => Took::New,
                "mine" => Took::Mine,
                "done" => Took::Done,
                _ => Took::Elsewhere,
            })
        }
        .boxed_local()
    }

    fn apply(&self, took: Took) {
        apply(&self.walk, &self.make, took);
    }

    /// The walk is over here: tells the job (the walk's count of `open` goes).
    fn finish_walk(&self) -> Option<Answer<Took>> {
        let done = matches!(&*self.walk.borrow(), Walk::Mine(local) if now_done(local));
        done.then(|| {
            *self.walk.borrow_mut() = Walk::Done;
            self.call("done")
        })
    }
}

fn apply(walk: &RefCell<Walk>, make: &Rc<dyn Fn() -> LocalFrontier>, took: Took) {
    let mut walk = walk.borrow_mut();
    match took {
        Took::New => *walk = Walk::Mine(Box::new(make())),
        Took::Mine => {}
        // Another process took over (this one was too slow to renew): its walk is theirs.
        Took::Elsewhere => *walk = Walk::Elsewhere,
        Took::Done => *walk = Walk::Done,
    }
}

fn now_done(local: &LocalFrontier) -> bool {
    matches!(ready(local.is_done()), Ok(Ok(true)))
}

impl Frontier for SharedWalk {
    fn offer(&mut self, offers: Vec<Offer>) -> Answer<Vec<bool>> {
        self.items.offer(offers)
    }

    /// Pages first (the walker's, judged by the gate here), then images and detail pages
    /// from the job.
    fn claim(&mut self, want: usize, capacity: usize, gate: &mut dyn Gate) -> Answer<Claimed> {
        let mut pages = Claimed::default();
        if let Walk::Mine(local) = &mut *self.walk.borrow_mut()
            && let Ok(Ok(claimed)) = ready(local.claim(want, capacity, gate))
        {
            pages = claimed;
            for lease in &mut pages.leases {
                lease.id |= PAGE;
            }
        }
        let finished = self.finish_walk();
        let items = self.items.claim(want.saturating_sub(pages.leases.len()), capacity, gate);
        async move {
            if let Some(finished) = finished {
                finished.await?;
            }
            let mut claimed = items.await?;
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
            return self.items.complete(id, ending, children);
        }
        // A page of a walk this process no longer holds: its images still go to the job.
        let page = match &mut *self.walk.borrow_mut() {
            Walk::Mine(local) => match ready(local.complete(id & !PAGE, ending, children.clone())) {
                Ok(Ok(done)) => done.page,
                _ => None,
            },
            _ => None,
        };
        let offered = self.items.offer(children);
        let walk = Rc::clone(&self.walk);
        let finished = self.finish_walk();
        async move {
            let admitted = offered.await?;
            if let Some(finished) = finished {
                let took = finished.await?;
                if took == Took::Elsewhere {
                    *walk.borrow_mut() = Walk::Elsewhere;
                }
            }
            Ok(Completed { admitted, page })
        }
        .boxed_local()
    }

    fn release(&mut self, leases: Vec<Lease>) -> Answer<()> {
        let (pages, items): (Vec<Lease>, Vec<Lease>) = leases.into_iter().partition(|l| l.id & PAGE != 0);
        if let Walk::Mine(local) = &mut *self.walk.borrow_mut() {
            let pages = pages.into_iter().map(|l| Lease { id: l.id & !PAGE, work: l.work }).collect();
            let _ = ready(local.release(pages));
        }
        self.items.release(items)
    }

    /// Stops walking here (another process takes the walk over at once) and gives this
    /// process's leases back; nothing to count, as for `RedisFrontier`.
    fn abandon(&mut self) -> Answer<Abandoned> {
        let walked = matches!(*self.walk.borrow(), Walk::Mine(_));
        *self.walk.borrow_mut() = Walk::Elsewhere;
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
        let planned = match &*self.walk.borrow() {
            Walk::Mine(local) => {
                ready(local.counts()).ok().and_then(Result::ok).map_or(0, |c| c.pages_planned)
            }
            _ => 0,
        };
        let counts = self.items.counts();
        async move { counts.await.map(|c| Counts { pages_planned: planned, ..c }) }.boxed_local()
    }

    /// The job's: its `open` holds one count while the walk is not over.
    fn is_done(&self) -> Answer<bool> {
        self.items.is_done()
    }

    /// Renews this process's leases, and the walk's: or takes the walk over when its
    /// walker stopped renewing (it died).
    fn renew(&mut self) -> Answer<()> {
        let items = self.items.renew();
        let take = (!matches!(*self.walk.borrow(), Walk::Done)).then(|| self.call("take"));
        let (walk, make) = (Rc::clone(&self.walk), Rc::clone(&self.make));
        async move {
            items.await?;
            if let Some(take) = take {
                let took = take.await?;
                apply(&walk, &make, took);
            }
            Ok(())
        }
        .boxed_local()
    }

    fn judges_robots(&self) -> bool {
        false
    }
}
