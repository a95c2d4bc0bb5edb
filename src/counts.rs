//! The counts a run keeps and publishes: pages and images by outcome, why images were
//! skipped or dropped, one item per distinct image, and the summary the Coordinator
//! answers `Join` with. Plain data: the Coordinator fills it, and the front end
//! (`report`, `progress`) renders it; neither side imports the other.

use serde::Serialize;

use crate::html::Element;
use crate::urllist::Carried;

/// Counts of listing pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PageCounts {
    /// Listing pages (ok + failed + skipped). Pages past the end of a walk that states no
    /// count (a 404, a repeated last page) are not counted at all.
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    /// Disallowed by robots.txt.
    pub skipped: u64,
    /// Detail pages (`DETAIL_SELECTOR`): the page per image a listing links to.
    pub detail_ok: u64,
    pub detail_failed: u64,
    /// Disallowed by robots.txt, or off `PAGE_HOST`.
    pub detail_skipped: u64,
    /// Pages (listing and detail) rendered in the browser.
    pub rendered: u64,
    /// Pages that looked built by JavaScript but were not rendered, for want of a
    /// browser: the end of the run says what to install.
    pub unrendered: u64,
}

/// Counts of distinct images found (after the host and extension filters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImageCounts {
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Bytes of the images saved by this run.
    pub bytes: u64,
}

/// Image URLs a filter dropped before they were counted as found (they are not in
/// `images.total`): a run that finds nothing must say which filter took what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Distinct image URLs on a host `IMAGE_HOST` does not take.
    pub other_host: u64,
    /// Distinct image URLs whose extension `--ext` does not list.
    pub extension: u64,
}

/// Why images were skipped, one count per reason (they add up to `images.skipped`), so
/// the summary can give the hint that fits each: `--force` helps only the first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Skips {
    /// Complete from an earlier run (the resume record).
    pub complete: u64,
    /// Disallowed by robots.txt.
    pub robots: u64,
    /// Outside `--min-size`/`--max-size`.
    pub size: u64,
    /// Too small or too elongated for `MIN_WIDTH`/`MIN_HEIGHT`/`MAX_ASPECT`, judged from
    /// the header bytes: apart from `size` because the fix is another setting.
    pub dimensions: u64,
    /// The server opted the image out (`X-Robots-Tag: noai`...): apart from `robots`
    /// because the site said it per image, not in robots.txt.
    pub opt_out: u64,
    /// `DEDUPE: content`: bytes already stored under another URL, not stored again.
    pub duplicate: u64,
    /// Anything else (a link whose thumbnail is already another image of the run).
    pub other: u64,
}

/// What a skip is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Complete,
    Robots,
    Size,
    Dimensions,
    OptOut,
    Duplicate,
    Other,
}

impl Skips {
    pub fn add(&mut self, why: SkipReason) {
        *match why {
            SkipReason::Complete => &mut self.complete,
            SkipReason::Robots => &mut self.robots,
            SkipReason::Size => &mut self.size,
            SkipReason::Dimensions => &mut self.dimensions,
            SkipReason::OptOut => &mut self.opt_out,
            SkipReason::Duplicate => &mut self.duplicate,
            SkipReason::Other => &mut self.other,
        } += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

/// What an item is: an image, or a page that failed (so the report says which page and
/// why, not only the log) or was rendered (so it says why and what the render found).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    #[default]
    Image,
    /// A listing or detail page that failed (its images are unknown) or was rendered.
    Page,
}

/// One distinct image URL and what became of it, or a page that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub kind: ItemKind,
    pub url: String,
    /// The first page it was found on (0 for a `--urls` list).
    pub page: u32,
    /// Relative to the out dir.
    pub path: String,
    pub status: Status,
    /// What is on disk under `path` (0 when failed).
    pub bytes: u64,
    /// Requests made for it, retries included (0 when skipped).
    pub attempts: u32,
    /// Why it failed; `null` otherwise.
    pub error: Option<String>,
    /// Why it was skipped (complete from an earlier run, robots.txt, a size or dimension
    /// filter, an X-Robots-Tag opt-out);
    /// `null` otherwise.
    pub reason: Option<String>,
    /// Only computed for a .jsonl manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Which rule found it (`img`, `picture`, `noscript`, `link`), so a user can see why
    /// this URL was chosen; `null` for a `--urls` list.
    pub element: Option<Element>,
    /// Why the URL is not the one the page offered first (a link target that was a page,
    /// replaced by its thumbnail); `null` otherwise.
    pub note: Option<String>,
    /// The detail page it was found on (`page` is then the listing page that linked to
    /// that detail page); `null` when found on a listing page.
    pub detail: Option<String>,
    /// Where a stored image's bytes came from and what they are: its fields sit beside
    /// the item's own, so a dataset loader reads them as columns.
    #[serde(flatten)]
    pub info: ImageInfo,
    /// A page that was rendered (or wanted a render, with no browser): how it went. Its
    /// fields sit beside the item's own.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub render: Option<RenderNote>,
    /// A `--urls` row's other columns (caption, key...), untouched, beside the item's own
    /// fields: what a dataset builder joins the image back to its row by.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub carried: Option<Box<Carried>>,
}

/// Provenance of a stored image, as the fetch read it: null where unknown, and all null
/// for an image not fetched by this run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// The URL the bytes came from after redirects; null when it is the item's `url`, so
    /// a manifest of a million unredirected images does not say each URL twice.
    pub final_url: Option<String>,
    /// The response's Content-Type as sent (parameters and case kept): what the server
    /// claimed, which a loader may want to check against the bytes.
    pub content_type: Option<String>,
    /// From the image's header bytes (no decoding); null when the format is not one
    /// `imagesize` knows or the header was cut short.
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// What rendering a page did, for its report entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RenderNote {
    /// False when the page looked built by JavaScript but no browser was there.
    pub rendered: bool,
    /// Why it was rendered (`RENDER`, no image in its HTML, a marker).
    pub why: String,
    pub render_ms: u64,
    /// Scroll steps and load-more clicks.
    pub scroll_steps: u32,
    /// Images (and detail links) the static HTML gave, and the rendered DOM.
    pub images_static: usize,
    pub images_rendered: usize,
    /// Distinct images the page asked the network for (the browser was refused them),
    /// and how many of those the extractor did not list: a cross-check.
    pub network_images: usize,
    pub network_only: usize,
    /// Why scrolling stopped before the page settled (`SCROLL_MAX`,
    /// `RENDER_TIMEOUT_SECS`); `null` when it settled.
    pub capped: Option<String>,
    /// Navigations away from the page the renderer refused.
    pub navigations_blocked: u32,
}

/// Where each [`Item`] goes as it ends (the report's files): items are written, never
/// gathered, so a list of millions costs no memory per item. A write that fails is the
/// sink's to remember and say at the end; the run goes on.
pub trait ItemSink {
    fn write(&mut self, item: &Item);
}

/// The Coordinator's answer to `Join`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Why the run stopped before the work was done (`interrupted`, `disk full: ...`).
    pub stopped: Option<String>,
    /// A shared job's share: what this process did not do stays with the job, so a stop
    /// fails none of it.
    pub shared: bool,
    /// A shared job's tasks this process gave back untried when it stopped: they are the
    /// job's still, not failures, and the stopped line must not call them failed.
    pub handed_back: u64,
    pub pages: PageCounts,
    pub images: ImageCounts,
    /// `--dry-run`: image URLs listed instead of downloaded.
    pub listed: u64,
    /// What the filters dropped before counting, by filter.
    pub dropped: Dropped,
    /// `images.skipped` by reason.
    pub skips: Skips,
    /// A shared job's counts, every process's, read when this process ended: what the
    /// exit status follows. The counts above are then this process's share. `None`
    /// for a run of its own, or when the job's counts could not be read.
    pub job: Option<JobCounts>,
}

/// A job shared by several processes: its own counts, the same whichever process asks
/// (the frontier keeps them; a process's [`Summary`] is its share). `accepted = done + lost +
/// open` at every step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// Offers admitted (each URL once, plus those offered again after a redirect).
    pub accepted: u64,
    /// Admitted and not yet ended: queued, or leased and not completed.
    pub open: u64,
    /// Completed, once each.
    pub done: u64,
    /// Ended failed because their leases kept expiring.
    pub lost: u64,
    /// Completions of a task already done (a late holder's, after its lease expired).
    pub duplicates: u64,
    /// Completions of a lease the job never handed out.
    pub stray: u64,
    /// Waiting in a queue.
    pub queued: u64,
    /// Leases out, on every node.
    pub leased: u64,
    /// Completed images by how they ended; `lost` ones failed too.
    pub ok: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Completed by handing the work to another task: a redirected image, a link replaced
    /// by its thumbnail, a detail page moved. Counted in `done` like the others, so that
    /// `done = ok + failed + skipped + replaced + detail_ok + detail_failed`.
    pub replaced: u64,
    /// Detail pages fetched, and not.
    pub detail_ok: u64,
    pub detail_failed: u64,
    /// `job cancel` stopped it: nothing more is handed out, what was open stays open.
    pub cancelled: bool,
}

impl JobCounts {
    /// Nothing open, queued or leased: the whole job is over.
    pub fn finished(&self) -> bool {
        self.open == 0 && self.queued == 0 && self.leased == 0
    }

    /// The whole job was done and nothing of it failed (no image, no detail page, no
    /// task lost) or was cancelled.
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0 && self.lost == 0 && self.detail_failed == 0 && !self.cancelled && self.open == 0
    }

    /// Tasks that ended failed, of every kind: what `job retry` puts back.
    pub fn failures(&self) -> u64 {
        self.failed + self.lost + self.detail_failed
    }
}

/// What the bar shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub pages: PageCounts,
    /// How many listing pages the run will fetch, as far as it knows.
    pub pages_planned: PagesPlanned,
    pub images: ImageCounts,
}

/// What the run knows of its page count. A bound (`AMOUNT_PAGES: 1000`) or the next
/// links walked so far are not a count: showing them as one made a 7-second run read
/// `pages 1/1000 ... eta 66m`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PagesPlanned {
    /// A URL list read from a pipe: no pages at all, and its length is known only at
    /// its end.
    #[default]
    NoPages,
    /// A URL list a first pass counted: no pages, and this many images to expect (the
    /// rows; duplicates among them end up fewer).
    List(u64),
    /// Not known yet: pages walked so far is all there is to say.
    Unknown,
    /// The site stated it, or the walk has ended.
    Known(u64),
}

/// Told the counts as they change and when the run is over: the progress bar, or
/// anything else that shows them. The Coordinator knows it only by this trait.
pub trait CountsWatch {
    /// The counts now.
    fn update(&self, snapshot: &Snapshot);
    /// The run is over: no more updates come.
    fn finish(&self);
}

/// A sink that keeps every item, for tests that look at them.
#[cfg(test)]
pub mod testing {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::{Item, ItemSink};

    #[derive(Clone, Default)]
    pub struct Kept(Rc<RefCell<Vec<Item>>>);

    thread_local! {
        static LAST: RefCell<Kept> = RefCell::new(Kept::default());
    }

    impl Kept {
        pub fn items(&self) -> Vec<Item> {
            self.0.borrow().clone()
        }

        /// A new sink, which [`items`] reads from now on, on this thread (a test's).
        pub fn install() -> Self {
            let kept = Kept::default();
            LAST.with(|last| *last.borrow_mut() = kept.clone());
            kept
        }
    }

    /// The items of the sink last installed on this thread.
    pub fn items() -> Vec<Item> {
        LAST.with(|last| last.borrow().items())
    }

    impl ItemSink for Kept {
        fn write(&mut self, item: &Item) {
            self.0.borrow_mut().push(item.clone());
        }
    }
}
