//! What a run did, as it happens: the counts, one item per image when a report or a
//! failed list wants them, and the summary made from them. Every image URL found is
//! counted once as found and once more as ok, failed or skipped, here and nowhere else.
//! [`Subject`] is an image as the report names it. Plain data: no actix.

use std::collections::HashSet;

use url::Url;

use crate::counts::{
    Dropped, ImageCounts, ImageInfo, Item, ItemKind, ItemSink, PageCounts, RenderNote, SkipReason, Skips,
    Status, Summary,
};
use crate::frontier::{Meta, Offer};
use crate::urllist::Carried;

#[derive(Default)]
pub struct Tally {
    /// `total` is derived (ok + failed + skipped), so it cannot drift.
    pages: PageCounts,
    images: ImageCounts,
    /// `--dry-run`: URLs written out instead of downloaded.
    listed: u64,
    /// `images.skipped` by reason.
    skips: Skips,
    /// The URLs each filter dropped, so one on many pages counts once. Dropped here,
    /// before the frontier's seen-set, so this is their only record.
    other_hosts: HashSet<Url>,
    other_extensions: HashSet<Url>,
    /// Where each item goes as it ends, when a report or a failed list asked for them:
    /// written, never kept, so a run keeps no per-image record, however large.
    items: Option<Box<dyn ItemSink>>,
    /// A shared job: this process counts its share, the images it ended, which need not
    /// be the ones it found (another process may have admitted them first).
    share: bool,
}

impl Tally {
    pub fn new(items: Option<Box<dyn ItemSink>>) -> Self {
        Self { items, ..Self::default() }
    }

    /// A new distinct image URL (after the filters): it will end as exactly one item.
    pub fn found_image(&mut self) {
        self.images.total += 1;
    }

    /// A list row that is not a URL: found (by [`Tally::found_image`]) and failed, with
    /// the row's text for the report's `url`.
    pub fn bad_row(&mut self, text: String, error: String, carried: Option<Box<Carried>>) {
        self.images.failed += 1;
        if let Some(items) = &mut self.items {
            let mut item = item(text, 0, String::new(), Status::Failed);
            (item.error, item.carried) = (Some(error), carried);
            items.write(&item);
        }
    }

    /// List rows a stop left unread: found and failed, without items.
    pub fn unread(&mut self, rows: u64) {
        self.images.total += rows;
        self.images.failed += rows;
    }

    /// An image skipped, counted by `why` too.
    pub fn skipped(&mut self, item: Item, why: SkipReason) {
        debug_assert_eq!(item.status, Status::Skipped);
        self.skips.add(why);
        self.images.skipped += 1;
        self.keep(item);
    }

    /// Image URLs `IMAGE_HOST` dropped on a page.
    pub fn dropped_by_host(&mut self, urls: impl IntoIterator<Item = Url>) {
        self.other_hosts.extend(urls);
    }

    /// An image URL `--ext` dropped.
    pub fn dropped_by_extension(&mut self, url: &Url) {
        if !self.other_extensions.contains(url) {
            self.other_extensions.insert(url.clone());
        }
    }

    pub fn dropped(&self) -> Dropped {
        Dropped { other_host: self.other_hosts.len() as u64, extension: self.other_extensions.len() as u64 }
    }

    /// How an image ended. Only a saved image's bytes count as this run's; a skip
    /// counted here, not through [`Tally::skipped`], has no better reason than "other".
    pub fn image(&mut self, item: Item) {
        match item.status {
            Status::Ok => {
                self.images.ok += 1;
                self.images.bytes += item.bytes;
            }
            Status::Failed => self.images.failed += 1,
            Status::Skipped => return self.skipped(item, SkipReason::Other),
        }
        self.keep(item);
    }

    fn keep(&mut self, item: Item) {
        if let Some(items) = &mut self.items {
            items.write(&item);
        }
    }

    pub fn page_ok(&mut self) {
        self.pages.ok += 1;
    }

    /// `n` pages failed (one fetched and failed, or several never handed out).
    pub fn pages_failed(&mut self, n: u64) {
        self.pages.failed += n;
    }

    /// A page that failed (fetched and failed, or refused for a robots.txt that could not
    /// be read): counted, and an item of its own, so the report and the failed list say
    /// which page and why, not only the log.
    pub fn page_failed(&mut self, url: &Url, number: u32, error: String, attempts: u32, detail: bool) {
        match detail {
            true => self.pages.detail_failed += 1,
            false => self.pages.failed += 1,
        }
        if let Some(items) = &mut self.items {
            let mut item = item(url.to_string(), number, String::new(), Status::Failed);
            (item.kind, item.error, item.attempts) = (ItemKind::Page, Some(error), attempts);
            item.note = detail.then(|| "a detail page".to_string());
            items.write(&item);
        }
    }

    /// A page that was rendered, or wanted a render with no browser there: counted, and
    /// an item of its own, so the report says why and what the render found.
    pub fn page_rendered(&mut self, url: &Url, number: u32, note: RenderNote, detail: bool) {
        match note.rendered {
            true => self.pages.rendered += 1,
            false => self.pages.unrendered += 1,
        }
        if let Some(items) = &mut self.items {
            let mut item = item(url.to_string(), number, String::new(), Status::Ok);
            item.kind = ItemKind::Page;
            item.note = detail.then(|| "a detail page".to_string());
            item.render = Some(note);
            items.write(&item);
        }
    }

    /// A page robots.txt disallows.
    pub fn page_skipped(&mut self) {
        self.pages.skipped += 1;
    }

    pub fn detail_ok(&mut self) {
        self.pages.detail_ok += 1;
    }

    pub fn detail_failed(&mut self) {
        self.pages.detail_failed += 1;
    }

    /// A detail page robots.txt disallows, or off `PAGE_HOST`.
    pub fn detail_skipped(&mut self) {
        self.pages.detail_skipped += 1;
    }

    pub fn listed(&mut self) {
        self.listed += 1;
    }

    pub fn pages(&self) -> PageCounts {
        let mut pages = self.pages;
        pages.total = pages.ok + pages.failed + pages.skipped;
        pages
    }

    pub fn images(&self) -> ImageCounts {
        let mut images = self.images;
        if self.share {
            images.total = images.ok + images.failed + images.skipped;
        }
        images
    }

    /// Counts this process's share of a shared job (see `share`).
    pub fn share(mut self) -> Self {
        self.share = true;
        self
    }

    /// The summary so far.
    pub fn summary(&mut self, stopped: Option<String>) -> Summary {
        Summary {
            stopped,
            shared: self.share,
            handed_back: 0,
            pages: self.pages(),
            images: self.images(),
            listed: self.listed,
            dropped: self.dropped(),
            skips: self.skips,
            // The job's counts are the frontier's, read by whoever ends the run.
            job: None,
        }
    }
}

/// An image as the report names it.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The URL it was found under, before any redirect.
    pub found: Url,
    pub page: u32,
    /// Its file name, once it has one.
    pub path: String,
    pub meta: Meta,
    /// A list row's other columns, carried to its report item untouched.
    pub carried: Option<Box<Carried>>,
}

impl Subject {
    /// A report item for it, nothing known yet beyond `status`.
    pub fn item(&self, status: Status) -> Item {
        let mut item = item(self.found.to_string(), self.page, self.path.clone(), status);
        (item.element, item.note) = (self.meta.element, self.meta.note.clone());
        item.detail = self.meta.detail.as_deref().map(Url::to_string);
        item.carried = self.carried.clone();
        item
    }
}

impl From<Offer> for Subject {
    fn from(offer: Offer) -> Self {
        let found = offer.found().clone();
        let path = offer.meta.name.clone().unwrap_or_default();
        Self { found, page: offer.page, path, meta: offer.meta, carried: offer.carried }
    }
}

/// An item with nothing known yet beyond what it is.
fn item(url: String, page: u32, path: String, status: Status) -> Item {
    Item {
        kind: ItemKind::Image,
        url,
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
        detail: None,
        info: ImageInfo::default(),
        render: None,
        carried: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::testing::Kept;

    fn item(status: Status, bytes: u64) -> Item {
        Item { bytes, attempts: 1, ..super::item("http://h/a.jpg".into(), 1, "a.jpg".into(), status) }
    }

    #[test]
    fn every_image_ends_once_and_only_saved_bytes_count() {
        let kept = Kept::default();
        let mut tally = Tally::new(Some(Box::new(kept.clone())));
        for _ in 0..3 {
            tally.found_image();
        }
        tally.image(item(Status::Ok, 10));
        tally.image(item(Status::Skipped, 99));
        tally.image(item(Status::Failed, 0));
        let images = tally.images();
        assert_eq!(images, ImageCounts { total: 3, ok: 1, failed: 1, skipped: 1, bytes: 10 });
        assert_eq!(tally.skips.other, 1, "a skip without a reason given is counted as other");
        assert_eq!(kept.items().len(), 3, "each written as it ended");
    }

    #[test]
    fn a_failed_page_is_an_item_but_not_an_image() {
        let kept = Kept::default();
        let mut tally = Tally::new(Some(Box::new(kept.clone())));
        let url = Url::parse("http://h/p2/cats.html").unwrap();
        tally.page_failed(&url, 2, "HTTP status 500".into(), 4, false);
        tally.page_failed(&url, 2, "HTTP status 404".into(), 1, true);
        assert_eq!((tally.pages().failed, tally.pages().detail_failed, tally.images().total), (1, 1, 0));
        let kinds: Vec<(ItemKind, String, u32)> =
            kept.items().iter().map(|i| (i.kind, i.error.clone().unwrap(), i.page)).collect();
        assert_eq!(
            kinds,
            [(ItemKind::Page, "HTTP status 500".into(), 2), (ItemKind::Page, "HTTP status 404".into(), 2)]
        );
    }

    #[test]
    fn skips_and_drops_are_counted_by_reason_once_each() {
        let mut tally = Tally::new(None);
        tally.skipped(item(Status::Skipped, 1), SkipReason::Robots);
        tally.skipped(item(Status::Skipped, 1), SkipReason::Complete);
        tally.skipped(item(Status::Skipped, 1), SkipReason::Robots);
        let url = |s: &str| Url::parse(s).unwrap();
        tally.dropped_by_host([url("http://a/1.png"), url("http://a/2.png")]);
        tally.dropped_by_host([url("http://a/1.png")]);
        tally.dropped_by_extension(&url("http://h/x.gif"));
        tally.dropped_by_extension(&url("http://h/x.gif"));
        let summary = tally.summary(None);
        assert_eq!(summary.skips, Skips { complete: 1, robots: 2, ..Skips::default() });
        assert_eq!(summary.images.skipped, 3);
        assert_eq!(summary.dropped, Dropped { other_host: 2, extension: 1 });
    }

    #[test]
    fn page_total_is_derived() {
        let mut tally = Tally::new(None);
        tally.page_ok();
        tally.pages_failed(3);
        tally.page_skipped();
        assert_eq!(
            tally.pages(),
            PageCounts { total: 5, ok: 1, failed: 3, skipped: 1, ..PageCounts::default() }
        );
    }
}
