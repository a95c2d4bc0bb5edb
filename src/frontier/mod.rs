//! The Frontier: the work itself, apart from who fetches it and how. Listing pages (the
//! cursor and where the walk ends), the images they reveal (one queue per origin), the
//! seen-set that admits each URL once, the leases of what is out, and the exact count of
//! what is still open. Pure: no actix, no config.
//!
//! The Coordinator talks to it only through [`Frontier`], whose answers are futures: the
//! in-memory [`LocalFrontier`] answers at once (its futures are ready when returned, and
//! the Coordinator applies a ready answer in the same step, with no extra turn of its
//! mailbox), while a frontier shared by several machines answers over the network.
//!
//! # Layout
//!
//! - `local`: [`LocalFrontier`], the in-memory frontier, and its rules' tests;
//! - `pages`: `PageCursor`, which listing page goes next and where the walk ends;
//! - `queues`: `Queues`, the images waiting, one queue per origin, and [`Meta`];
//! - `seen`: `SeenSet`, 64-bit hashes of every URL admitted;
//! - `source`: [`Source`] (listing pages or a URL list), [`Filters`], [`WalkMark`], and
//!   the in-memory walk a source starts as ([`walk_of`], [`walk_from`]).

mod local;
mod pages;
mod queues;
mod seen;
mod source;

use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use url::Url;

use crate::robots::{Origin, Rules};

pub use local::LocalFrontier;
pub use queues::Meta;
pub use seen::SeenSet;
pub use source::{Filters, PageUrls, Source, UrlList, WalkMark, walk_from, walk_of};

/// A frontier's answer: a future, ready at once for the in-memory frontier.
pub type Answer<T> = LocalBoxFuture<'static, Result<T, FrontierError>>;

/// A lease: one piece of work handed out and not yet completed or released.
pub type LeaseId = u64;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FrontierError {
    /// The frontier could not be reached or refused the step: the run cannot go on.
    #[error("frontier unavailable: {0}")]
    Unavailable(String),
}

/// The work a frontier holds, as a claim returns it.
pub trait Frontier {
    /// Images found (or given as a list): the seen-set admits each URL once; returns,
    /// per offer, whether it was admitted (and queued).
    fn offer(&mut self, offers: Vec<Offer>) -> Answer<Vec<bool>>;

    /// Up to `want` pieces of work that may go now, by priority: a redirected page, a
    /// page while the images waiting are fewer than `capacity`, an image, else a page.
    /// `gate` judges each candidate (robots.txt, the host's room); what it refuses is
    /// taken off the frontier and returned as refused, for the caller to count.
    fn claim(&mut self, want: usize, capacity: usize, gate: &mut dyn Gate) -> Answer<Claimed>;

    /// Lease `id` is over, with `children` (what it revealed) offered in the same step,
    /// before it stops counting as open, so the work never looks done too early (as
    /// `JoinableQueue` puts before `task_done`).
    fn complete(&mut self, id: LeaseId, ending: Ending, children: Vec<Offer>) -> Answer<Completed>;

    /// Leases given back untried: their work goes out again first. (The caller hands
    /// back the work too; a frontier that keeps it needs only the ids.)
    fn release(&mut self, leases: Vec<Lease>) -> Answer<()>;

    /// Nothing more goes out: what was never handed out, for the caller to count.
    fn abandon(&mut self) -> Answer<Abandoned>;

    fn counts(&self) -> Answer<Counts>;

    /// Every piece of work is completed, and none will come.
    fn is_done(&self) -> Answer<bool>;

    /// Keeps this process's leases alive (a shared frontier takes back the work of a
    /// process that stops renewing: it died). Nothing to do for the in-memory one.
    fn renew(&mut self) -> Answer<()> {
        futures_util::future::ready(Ok(())).boxed_local()
    }

    /// Whether `claim` judged robots.txt through the gate. A shared frontier cannot (its
    /// answer comes after the gate is gone): the caller judges what it hands out.
    fn judges_robots(&self) -> bool {
        true
    }
}

/// What the caller lets a claim take. Read during the call: a remote frontier takes a
/// snapshot of what it needs before it answers.
pub trait Gate {
    /// robots.txt's verdict on `url`, asking for it the first time its origin is seen.
    fn verdict(&mut self, url: &Url) -> Verdict;
    /// The same for a queue by origin: the origin's rules, or `None` to wait.
    fn rules(&mut self, origin: Origin, url: &Url) -> Option<Rules>;
    /// Whether another request to `host` may start now.
    fn has_room(&self, host: &str) -> bool;
    /// A piece of work for `host` was claimed in this call.
    fn took(&mut self, host: &str);
    /// Something must go before anything claimed (a robots.txt): stop claiming.
    fn yields(&self) -> bool;
}

/// A gate that lets everything go, robots.txt allowing all and room on every host: for
/// tests of a walk's own rules.
#[cfg(test)]
pub struct AllGo;

#[cfg(test)]
impl Gate for AllGo {
    fn verdict(&mut self, _: &Url) -> Verdict {
        Verdict::Go
    }
    fn rules(&mut self, _: Origin, _: &Url) -> Option<Rules> {
        Some(Rules::parse(b""))
    }
    fn has_room(&self, _: &str) -> bool {
        true
    }
    fn took(&mut self, _: &str) {}
    fn yields(&self) -> bool {
        false
    }
}

/// May this URL be fetched now?
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
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

/// An image found, and how. Serde: the Redis frontier stores it as JSON, queued and
/// leased.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Offer {
    pub url: Url,
    /// The page that revealed it (0 for a `--urls` list).
    pub page: u32,
    /// The page's URL, sent as the Referer.
    pub referer: Option<Url>,
    pub meta: Meta,
    /// Admitted already under the URL it was found as (a redirect target): not checked
    /// against the seen-set again.
    pub again: bool,
    /// A detail page (a page per image, linked from a listing page), not an image: it
    /// waits in the same per-origin queues, and is claimed as [`Work::Detail`].
    pub detail: bool,
    /// The row's 0-based place in a `--urls` list: `NAME`'s `{index}` and `{shard}`.
    /// `None` for an image found by a walk, which is numbered as it is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The list row's other columns (caption, key...): `NAME`'s `{column}`s, and the
    /// manifest's. Boxed: most offers have none, and an offer is kept per queued image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<Box<crate::urllist::Carried>>,
}

impl Offer {
    pub fn new(url: Url, page: u32, referer: Option<Url>, meta: Meta) -> Self {
        Self { url, page, referer, meta, again: false, detail: false, index: None, carried: None }
    }

    /// The URL the image was found under, before any redirect.
    pub fn found(&self) -> &Url {
        self.meta.found.as_deref().unwrap_or(&self.url)
    }
}

/// A piece of work.
// Images are nearly all the work: boxing them to shrink the rare page would cost an
// allocation per image.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Work {
    Page {
        number: u32,
        url: Url,
        /// Redirects followed to get to `url`.
        hops: u8,
    },
    Image(Offer),
    /// A detail page: fetched for the image(s) it shows, one level only.
    Detail(Offer),
}

impl Work {
    pub fn url(&self) -> &Url {
        match self {
            Work::Page { url, .. } => url,
            Work::Image(offer) | Work::Detail(offer) => &offer.url,
        }
    }
}

#[derive(Debug)]
pub struct Lease {
    pub id: LeaseId,
    pub work: Work,
}

/// What a claim took.
#[derive(Debug, Default)]
pub struct Claimed {
    pub leases: Vec<Lease>,
    /// Taken off the frontier because the gate refused them: done, for the caller to
    /// count as skipped (the site disallows it) or failed (robots.txt unreadable).
    pub refused: Vec<Refused>,
    /// Work that ended failed in this claim without being handed out, with the reason:
    /// a shared frontier's task whose lease expired too many times (its holders kept
    /// dying). Done, for the caller to count as failed. Always empty in memory.
    pub lost: Vec<(Work, String)>,
}

#[derive(Debug)]
pub struct Refused {
    pub work: Work,
    pub reason: String,
    pub failure: bool,
}

/// How a lease ended, as far as the frontier's rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// An image or a detail page ended, or gave way to its children.
    Image(ItemEnd),
    /// An image was stored under `path` (a file name in the out dir, or an object's
    /// key) with `bytes` bytes: `ItemEnd::Ok`, with where, for a shared job's record.
    Saved {
        path: String,
        bytes: u64,
        /// `DEDUPE: content`: the bytes were stored first for another URL, under `path`:
        /// `ItemEnd::Skipped`, so the job counts it as this process does.
        duplicate: bool,
    },
    /// A listing page was fetched. `stated`: the page count it states, if any; `next`:
    /// the next page it links to (already past the page host filter); `found`: image
    /// URLs it holds, before `--ext` and the like (the children are what is left).
    PageFetched {
        stated: Option<u32>,
        next: Option<Url>,
        found: usize,
    },
    /// The page's server redirected it: it goes out again at `url` before new pages.
    PageMoved {
        url: Url,
        hops: u8,
    },
    /// 404 or 410.
    PageMissing,
    PageFailed,
}

/// How an image or a detail page ended, for the job's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemEnd {
    Ok,
    Failed,
    Skipped,
    /// Gave way to its children (a redirect's target, a thumbnail in place of a link to
    /// a page): not an image's end, which the child's will be.
    Replaced,
    /// A detail page fetched (its images are its children), or not.
    DetailOk,
    DetailFailed,
}

impl ItemEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemEnd::Ok => "ok",
            ItemEnd::Failed => "failed",
            ItemEnd::Skipped => "skipped",
            ItemEnd::Replaced => "replaced",
            ItemEnd::DetailOk => "detail_ok",
            ItemEnd::DetailFailed => "detail_failed",
        }
    }
}

/// What the frontier made of a completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// Per child, whether the seen-set admitted it.
    pub admitted: Vec<bool>,
    /// For a page: how it counts.
    pub page: Option<PageFate>,
}

/// How a page that came back counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFate {
    Ok,
    /// The first page stated the page count: the walk is now pages `first..=last`.
    Clamped {
        stated: u32,
        last: u32,
    },
    /// This page is past the end of a walk that states no count, and shows it: neither
    /// ok nor failed. `first_time`: this is the page that ended it (not one past an end
    /// known already).
    End {
        why: EndWhy,
        first_time: bool,
    },
    /// Fetched, and the last page: nothing follows it.
    Last(LastWhy),
    /// Asked for ahead of knowing where the end was, and past it: not counted.
    PastEnd,
    Failed,
    /// Redirected: it goes out again.
    Moved,
}

/// Why a page is past the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndWhy {
    /// 404 or 410.
    Missing,
    /// Every image on it is already known (sites that serve their last page for any
    /// larger number).
    Repeats,
}

/// Why a page is the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastWhy {
    /// No images and no next link.
    Empty,
    /// Earlier pages linked to the next one; this one does not.
    NoNext,
    /// Its next link leads to a page already walked.
    Loop,
}

/// Nothing more goes out: what never went.
#[derive(Debug, Default)]
pub struct Abandoned {
    /// Listing pages never handed out.
    pub pages: u64,
    pub images: Vec<Offer>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Images waiting to be handed out.
    pub queued: usize,
    /// Listing pages the walk means to fetch, as known so far.
    pub pages_planned: u32,
    /// `pages_planned` is the count, not a bound: the first page stated it, or the walk
    /// has ended.
    pub pages_known: bool,
    /// Leases out.
    pub leased: usize,
}

/// Polls an answer once: a ready one (the in-memory frontier's) is applied at once;
/// `Err` gives back one that has to be awaited.
pub fn ready<T>(mut answer: Answer<T>) -> Result<Result<T, FrontierError>, Answer<T>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match answer.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(result) => Ok(result),
        std::task::Poll::Pending => Err(answer),
    }
}
