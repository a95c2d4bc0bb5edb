//! The in-memory frontier: one process's work, answered at once. Pure: no actix.

use std::collections::HashMap;

use futures_util::FutureExt;
use futures_util::future::ready;
use url::Url;

use super::pages::{MovedPage, PageCursor};
use super::queues::Queues;
use super::{
    Abandoned, Answer, Claimed, Completed, Counts, EndWhy, Ending, Frontier, Gate, LastWhy, Lease, LeaseId,
    Offer, PageFate, Refused, SeenSet, Verdict, Work,
};
use crate::task::host_of;

/// Turns page numbers into URLs (the `{page}` template).
pub type PageUrl = Box<dyn Fn(u32) -> Url>;

/// Where listing pages' URLs come from.
enum PageSource {
    /// None: a `--urls` list.
    None,
    /// A `{page}` template: any number has a URL, and next links are only hints that
    /// the walk goes on.
    Template(PageUrl),
    /// Next links: page n + 1 is the page n links to, known once page n is fetched.
    Links(HashMap<u32, Url>),
}

/// What a lease is, as far as the rules care.
enum Leased {
    Page(u32),
    /// An image or a detail page.
    Item,
}

pub struct LocalFrontier {
    /// Which listing page goes next, and where the walk ends.
    pages: PageCursor,
    /// Page number -> URL.
    source: PageSource,
    /// Listing pages walked (as asked for, and where they were redirected to): a next
    /// link back to one of them ends the walk.
    walked: SeenSet,
    /// Some page had a next link: a later page without one is the last.
    next_seen: bool,
    /// Detail pages admitted (apart from images: a URL can be both only by accident).
    details: SeenSet,
    /// The most pages the first page may say the walk has (`--pages`' upper end).
    max_pages: u32,
    /// Pages out at once while the end of the walk is not known (`PAGE_LOOKAHEAD`):
    /// those past the end cost a request each.
    lookahead: Option<usize>,
    /// Images admitted and not yet handed out.
    queues: Queues,
    seen: SeenSet,
    /// A dry run lists images itself, in page order: they are admitted, never queued.
    queue_images: bool,
    /// Detail pages are queued (even in a dry run: they must be fetched to be listed),
    /// unless another frontier keeps them (a shared walk's).
    queue_details: bool,
    leases: HashMap<LeaseId, Leased>,
    next_id: LeaseId,
}

impl LocalFrontier {
    /// A walk of listing pages `first..=last` (`last` an upper bound until the first
    /// page states the count), their URLs from `page_url`.
    pub fn pages(first: u32, last: u32, page_url: PageUrl) -> Self {
        let first = first.max(1);
        let mut frontier = Self::empty();
        frontier.pages = PageCursor::pages(first, last.max(first));
        frontier.source = PageSource::Template(page_url);
        frontier
    }

    /// A walk that follows next links from `first`, which is page 1.
    pub fn links(first: Url) -> Self {
        Self::links_from(1, first)
    }

    /// A walk that follows next links from page `number` at `url` (a walk taken over
    /// where another process left it).
    pub fn links_from(number: u32, url: Url) -> Self {
        let number = number.max(1);
        let mut frontier = Self::empty();
        frontier.pages = PageCursor::pages(number, number);
        frontier.source = PageSource::Links(HashMap::from([(number, url)]));
        frontier
    }

    /// The walk's last page is `last`, as an earlier walk of it learnt from its first
    /// page: a page missing before it is a failure, not the end.
    pub fn with_stated_last(mut self, last: u32) -> Self {
        self.pages.clamp(last.max(self.pages.first()));
        self
    }

    /// No pages: the images come from the caller's `offer` (a `--urls` list).
    pub fn empty() -> Self {
        Self {
            pages: PageCursor::none(),
            source: PageSource::None,
            walked: SeenSet::default(),
            next_seen: false,
            details: SeenSet::default(),
            max_pages: u32::MAX,
            lookahead: None,
            queues: Queues::default(),
            seen: SeenSet::default(),
            queue_images: true,
            queue_details: true,
            leases: HashMap::new(),
            next_id: 0,
        }
    }

    /// The seen-sets (images, walked pages, detail pages), made once: the images' with
    /// room for `expected_images` (a `--urls` list a first pass counted). With `spill`,
    /// hashes past a quarter of a million go to unnamed files under it, so a list or a
    /// walk of millions stays small in memory.
    pub fn with_sets(mut self, spill: Option<&std::path::Path>, expected_images: u64) -> Self {
        self.seen = SeenSet::new(spill, expected_images);
        self.walked = SeenSet::new(spill, 0);
        self.details = SeenSet::new(spill, 0);
        self
    }

    /// The most pages a stated count may take the walk to.
    pub fn with_max_pages(mut self, max_pages: Option<u32>) -> Self {
        self.max_pages = max_pages.unwrap_or(u32::MAX);
        self
    }

    /// Pages out at once while the end of the walk is not known (by default, as when it
    /// is: from the workers' capacity).
    pub fn with_lookahead(mut self, pages: Option<usize>) -> Self {
        self.lookahead = pages.map(|n| n.max(1));
        self
    }

    /// Images are admitted and reported, never queued (a dry run lists them itself).
    pub fn listing(mut self) -> Self {
        self.queue_images = false;
        self
    }

    /// Listing pages only: what they reveal is admitted (for the walk's own rules: a
    /// repeated page) and queued elsewhere (a shared job's Redis).
    pub fn pages_only(mut self) -> Self {
        self.queue_images = false;
        self.queue_details = false;
        self
    }

    fn lease(&mut self, leased: Leased, work: Work) -> Lease {
        let id = self.next_id;
        self.next_id += 1;
        self.leases.insert(id, leased);
        Lease { id, work }
    }

    fn page_url(&self, n: u32) -> Option<Url> {
        match &self.source {
            PageSource::None => None,
            PageSource::Template(url) => Some(url(n)),
            PageSource::Links(urls) => urls.get(&n).cloned(),
        }
    }

    /// Pages out at once, at most: enough to keep every slot fed when a page holds few
    /// images, few enough that images found and waiting stay a short queue, and while
    /// the end is not known, no more than the look-ahead.
    fn max_pages_in_flight(&self, capacity: usize) -> usize {
        let by_capacity = (capacity / 16).clamp(2, 16);
        match self.lookahead {
            Some(pages) if !self.pages.end_known() => pages,
            _ => by_capacity,
        }
    }

    fn next(&mut self, capacity: usize, gate: &mut dyn Gate, refused: &mut Vec<Refused>) -> Option<Lease> {
        if let Some(moved) = self.take_moved_page(gate, refused) {
            return Some(moved);
        }
        // A page's URL is made only when a page may go: making it for every image handed
        // out was a measurable share of the run (a template join per call).
        let short = self.queues.len() < capacity;
        if short && let Some((n, url)) = self.ready_page(capacity, gate, refused) {
            return Some(self.take_page(n, url, gate));
        }
        if let Some(item) = self.take_ready_image(gate, refused) {
            gate.took(host_of(&item.url));
            let work = match item.detail {
                true => Work::Detail(item),
                false => Work::Image(item),
            };
            return Some(self.lease(Leased::Item, work));
        }
        let (n, url) = match short {
            // Asked already: no page may go.
            true => None,
            false => self.ready_page(capacity, gate, refused),
        }?;
        Some(self.take_page(n, url, gate))
    }

    /// The first redirected page, when its new URL may be fetched now.
    fn take_moved_page(&mut self, gate: &mut dyn Gate, refused: &mut Vec<Refused>) -> Option<Lease> {
        loop {
            let url = self.pages.front_moved()?.url.clone();
            match gate.verdict(&url) {
                Verdict::Wait => return None,
                Verdict::Go if !gate.has_room(host_of(&url)) => return None,
                Verdict::Go => {
                    let MovedPage { number, url, hops } = self.pages.send_moved().expect("a front");
                    gate.took(host_of(&url));
                    self.walked.admit(&url);
                    return Some(self.lease(Leased::Page(number), Work::Page { number, url, hops }));
                }
                Verdict::Refused { reason, failure } => {
                    let MovedPage { number, url, hops } = self.pages.drop_moved().expect("a front");
                    refused.push(Refused { work: Work::Page { number, url, hops }, reason, failure });
                }
            }
        }
    }

    /// The page that may go now, if any; pages the gate refuses are passed on the way.
    fn ready_page(
        &mut self,
        capacity: usize,
        gate: &mut dyn Gate,
        refused: &mut Vec<Refused>,
    ) -> Option<(u32, Url)> {
        loop {
            let n = self.pages.next_number(self.max_pages_in_flight(capacity))?;
            let url = self.page_url(n)?;
            match gate.verdict(&url) {
                Verdict::Wait => return None,
                Verdict::Go => return gate.has_room(host_of(&url)).then_some((n, url)),
                Verdict::Refused { reason, failure } => {
                    self.pages.passed(n);
                    refused.push(Refused { work: Work::Page { number: n, url, hops: 0 }, reason, failure });
                }
            }
        }
    }

    fn take_page(&mut self, number: u32, url: Url, gate: &mut dyn Gate) -> Lease {
        self.pages.sent(number);
        gate.took(host_of(&url));
        self.walked.admit(&url);
        self.lease(Leased::Page(number), Work::Page { number, url, hops: 0 })
    }

    /// The first waiting image that may go now; those the gate refuses are taken off on
    /// the way.
    fn take_ready_image(&mut self, gate: &mut dyn Gate, refused: &mut Vec<Refused>) -> Option<Offer> {
        for queue in 0..self.queues.queues.len() {
            let q = &self.queues.queues[queue];
            let Some(front) = q.images.front() else { continue };
            let Some(rules) = gate.rules(q.origin, &front.url) else { continue };
            while let Some(front) = self.queues.queues[queue].images.front() {
                if !rules.allows(&front.url) {
                    let item = self.queues.pop(queue).expect("a front");
                    let (reason, failure) = (rules.refusal(), rules.is_failure());
                    let work = match item.detail {
                        true => Work::Detail(item),
                        false => Work::Image(item),
                    };
                    refused.push(Refused { work, reason, failure });
                } else if gate.has_room(&self.queues.queues[queue].host) {
                    return self.queues.pop(queue);
                } else {
                    break;
                }
            }
        }
        None
    }

    fn admit(&mut self, offers: Vec<Offer>) -> Vec<bool> {
        let mut admitted = Vec::with_capacity(offers.len());
        for offer in offers {
            let new = offer.again
                || match offer.detail {
                    true => self.details.admit(&offer.url),
                    false => self.seen.admit(&offer.url),
                };
            // A dry run lists images itself, but its detail pages must be fetched.
            let queued = match offer.detail {
                true => self.queue_details,
                false => self.queue_images,
            };
            if new && queued {
                self.queues.push(offer);
            }
            admitted.push(new);
        }
        admitted
    }

    /// How page `n` counts, applying what it says about the walk's end. `admitted`: how
    /// many of its images were new.
    fn page_ended(&mut self, n: u32, ending: Ending, admitted: usize) -> PageFate {
        match ending {
            Ending::PageMoved { url, hops } => {
                self.pages.came_back(n, Some(MovedPage { number: n, url, hops }));
                return PageFate::Moved;
            }
            _ => self.pages.came_back(n, None),
        }
        let first = self.pages.first();
        match ending {
            Ending::PageFetched { stated: Some(stated), .. } if n == first => {
                let last = stated.max(1).min(self.max_pages);
                self.pages.clamp(last);
                PageFate::Clamped { stated: stated.max(1), last: self.pages.last() }
            }
            Ending::PageFetched { next, found, .. } => self.page_fetched(n, next, found, admitted),
            // No count stated and a page after the first is missing: the walk ended with
            // the page before it.
            Ending::PageMissing if n != first && !self.pages.count_stated() => {
                self.end_before(n, EndWhy::Missing)
            }
            _ if self.pages.past_end(n) => PageFate::PastEnd,
            _ => PageFate::Failed,
        }
    }

    /// The end-of-walk rules for a page fetched, when no count was stated.
    fn page_fetched(&mut self, n: u32, next: Option<Url>, found: usize, admitted: usize) -> PageFate {
        if self.pages.count_stated() {
            return PageFate::Ok;
        }
        if self.pages.past_end(n) {
            return PageFate::PastEnd;
        }
        // Sites that serve their last page for any larger number.
        if n != self.pages.first() && found > 0 && admitted == 0 {
            return self.end_before(n, EndWhy::Repeats);
        }
        // With a template the numbers lead: a next link to a page already handed out (the
        // lookahead's page n + 1, sent before page n came back) says only that the walk
        // goes on. Only a walk by links can loop.
        let by_links = matches!(self.source, PageSource::Links(_));
        let last = match next {
            Some(next) if by_links && self.walked.contains(&next) => Some(LastWhy::Loop),
            Some(next) => {
                self.next_seen = true;
                let following = n.saturating_add(1);
                if following <= self.max_pages && !self.pages.end_known() {
                    if let PageSource::Links(urls) = &mut self.source {
                        urls.insert(following, next);
                    }
                    self.pages.extend_to(following);
                }
                None
            }
            None if found == 0 => Some(LastWhy::Empty),
            None if self.next_seen => Some(LastWhy::NoNext),
            None => None,
        };
        match last {
            Some(why) => {
                self.pages.end_at(n);
                PageFate::Last(why)
            }
            None => PageFate::Ok,
        }
    }

    /// Page `n` shows the walk ended with the page before it.
    fn end_before(&mut self, n: u32, why: EndWhy) -> PageFate {
        let first_time = !self.pages.past_end(n);
        self.pages.end_at(n - 1);
        PageFate::End { why, first_time }
    }
}

impl Frontier for LocalFrontier {
    fn offer(&mut self, offers: Vec<Offer>) -> Answer<Vec<bool>> {
        ready(Ok(self.admit(offers))).boxed_local()
    }

    fn claim(&mut self, want: usize, capacity: usize, gate: &mut dyn Gate) -> Answer<Claimed> {
        let mut claimed = Claimed::default();
        while claimed.leases.len() < want && !gate.yields() {
            match self.next(capacity, gate, &mut claimed.refused) {
                Some(lease) => claimed.leases.push(lease),
                None => break,
            }
        }
        ready(Ok(claimed)).boxed_local()
    }

    fn complete(&mut self, id: LeaseId, ending: Ending, children: Vec<Offer>) -> Answer<Completed> {
        let admitted = self.admit(children);
        let new = admitted.iter().filter(|new| **new).count();
        let page = match self.leases.remove(&id) {
            Some(Leased::Page(n)) => Some(self.page_ended(n, ending, new)),
            Some(Leased::Item) | None => None,
        };
        ready(Ok(Completed { admitted, page })).boxed_local()
    }

    fn release(&mut self, leases: Vec<Lease>) -> Answer<()> {
        for Lease { id, work } in leases {
            match (self.leases.remove(&id), work) {
                (Some(Leased::Page(_)), Work::Page { number, url, hops }) => {
                    self.pages.came_back(number, Some(MovedPage { number, url, hops }));
                }
                (Some(_), Work::Image(offer) | Work::Detail(offer)) => self.queues.push_front(offer),
                _ => {}
            }
        }
        ready(Ok(())).boxed_local()
    }

    fn abandon(&mut self) -> Answer<Abandoned> {
        let pages = self.pages.abandon();
        let images = self.queues.drain();
        ready(Ok(Abandoned { pages, images })).boxed_local()
    }

    fn counts(&self) -> Answer<Counts> {
        let counts = Counts {
            queued: self.queues.len(),
            pages_planned: self.pages.planned(),
            pages_known: self.pages.end_known() || self.pages.is_done(),
            leased: self.leases.len(),
        };
        ready(Ok(counts)).boxed_local()
    }

    fn is_done(&self) -> Answer<bool> {
        let done = self.leases.is_empty() && self.queues.is_empty() && self.pages.is_done();
        ready(Ok(done)).boxed_local()
    }
}

#[cfg(test)]
mod tests;
