//! Which listing page goes next, and when the walk of pages is over. The first page
//! (page 1, or 5 for `--pages 5-12`) goes out alone: it may lower the page count, and
//! asking for pages the site does not have would only produce failures. A page whose
//! server redirected it comes back as a moved page and goes out again, before new ones.
//! Pure: no actix.

use std::collections::VecDeque;

use url::Url;

/// A page whose server redirected it, waiting to be fetched at its new URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedPage {
    pub number: u32,
    pub url: Url,
    /// Redirects followed so far.
    pub hops: u8,
}

#[derive(Debug)]
pub struct PageCursor {
    /// The page the walk starts at.
    first: u32,
    first_sent: bool,
    /// The first page came back (or will never be fetched): later pages may go.
    first_done: bool,
    /// The next page number to hand out, and the last one to fetch (inclusive).
    next: u32,
    last: u32,
    in_flight: usize,
    moved: VecDeque<MovedPage>,
    /// The first page stated the page count: `last` is the site's word, and a page
    /// missing before it is a failure, not the end.
    stated: bool,
    /// A missing page ended the walk: pages past `last` already out are not counted.
    ended: bool,
}

impl PageCursor {
    /// Pages `first` to `last`, the first one first and alone.
    pub fn pages(first: u32, last: u32) -> Self {
        let next = first.saturating_add(1);
        let moved = VecDeque::new();
        Self {
            first,
            first_sent: false,
            first_done: false,
            next,
            last,
            in_flight: 0,
            moved,
            stated: false,
            ended: false,
        }
    }

    /// No pages at all (a list of image URLs): the first page counts as done.
    pub fn none() -> Self {
        Self { first_sent: true, first_done: true, next: 1, ..Self::pages(1, 0) }
    }

    /// The page the walk starts at: the one that may state the page count.
    pub fn first(&self) -> u32 {
        self.first
    }

    /// Pages the walk means to fetch, as known so far.
    pub fn planned(&self) -> u32 {
        (self.last + 1).saturating_sub(self.first)
    }

    /// The page number that may go next, with at most `max_in_flight` pages out; robots.txt
    /// and the host's room are the caller's to check.
    pub fn next_number(&self, max_in_flight: usize) -> Option<u32> {
        if !self.first_sent {
            Some(self.first)
        } else if self.first_done && self.next <= self.last && self.in_flight < max_in_flight {
            Some(self.next)
        } else {
            None
        }
    }

    /// Page `n` (from `next_number`) went out.
    pub fn sent(&mut self, n: u32) {
        match n == self.first {
            true => self.first_sent = true,
            false => self.next += 1,
        }
        self.in_flight += 1;
    }

    /// Page `n` (from `next_number`) will not be fetched (robots.txt refuses it); without
    /// the first page, the walk goes on to the next.
    pub fn passed(&mut self, n: u32) {
        match n == self.first {
            true => (self.first_sent, self.first_done) = (true, true),
            false => self.next += 1,
        }
    }

    /// Page `n` came back: done, failed, or (`moved`) redirected to go out again.
    pub fn came_back(&mut self, n: u32, moved: Option<MovedPage>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match moved {
            Some(page) => self.moved.push_back(page),
            None if n == self.first => self.first_done = true,
            None => {}
        }
    }

    /// The first redirected page waiting to go out again.
    pub fn front_moved(&self) -> Option<&MovedPage> {
        self.moved.front()
    }

    /// The first redirected page goes out.
    pub fn send_moved(&mut self) -> Option<MovedPage> {
        let page = self.moved.pop_front()?;
        self.in_flight += 1;
        Some(page)
    }

    /// The first redirected page will not be fetched (robots.txt refuses its target).
    pub fn drop_moved(&mut self) -> Option<MovedPage> {
        let page = self.moved.pop_front()?;
        if page.number == self.first {
            self.first_done = true;
        }
        Some(page)
    }

    /// The first page stated how many pages there are (already bounded by what was
    /// asked for).
    pub fn clamp(&mut self, last: u32) {
        self.last = last;
        self.stated = true;
    }

    /// Whether the first page stated the page count.
    pub fn count_stated(&self) -> bool {
        self.stated
    }

    /// A page says another follows (a next link): the walk goes on to page `last` at
    /// least, unless the count was stated or the end is known.
    pub fn extend_to(&mut self, last: u32) {
        if !self.stated && !self.ended {
            self.last = self.last.max(last);
        }
    }

    /// Whether the end of the walk is known (stated, or found).
    pub fn end_known(&self) -> bool {
        self.stated || self.ended
    }

    /// The walk ends with page `last` (a page after it is missing, repeats, or a page
    /// says nothing follows) and no count was stated: pages past it already out are not
    /// counted.
    pub fn end_at(&mut self, last: u32) {
        self.last = self.last.min(last.max(self.first));
        self.ended = true;
    }

    /// Page `n` lies past the end a missing page set: what becomes of it is not counted
    /// as a failure (it was asked for ahead of knowing where the end was).
    pub fn past_end(&self, n: u32) -> bool {
        self.ended && n > self.last
    }

    pub fn last(&self) -> u32 {
        self.last
    }

    /// Every page has gone out and come back, or never will go.
    pub fn is_done(&self) -> bool {
        self.in_flight == 0 && self.moved.is_empty() && self.first_done && self.next > self.last
    }

    /// Nothing more goes out (the run is stopping); returns how many pages never went,
    /// for the caller to count as failed.
    pub fn abandon(&mut self) -> u64 {
        if !self.first_sent {
            (self.first_sent, self.first_done) = (true, true);
            self.next = self.first;
        }
        if self.moved.iter().any(|m| m.number == self.first) {
            self.first_done = true;
        }
        let mut unsent = self.moved.drain(..).count() as u64;
        if self.next <= self.last {
            unsent += u64::from(self.last - self.next + 1);
            self.next = self.last + 1;
        }
        unsent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(number: u32) -> MovedPage {
        MovedPage { number, url: Url::parse(&format!("http://h.test/new/{number}")).unwrap(), hops: 1 }
    }

    #[test]
    fn page_one_goes_alone_then_the_rest_within_the_limit() {
        let mut pages = PageCursor::pages(1, 4);
        assert_eq!(pages.next_number(8), Some(1));
        pages.sent(1);
        assert_eq!(pages.next_number(8), None, "page 1 is out alone");
        pages.clamp(3);
        pages.came_back(1, None);
        assert_eq!(pages.next_number(1), Some(2));
        pages.sent(2);
        assert_eq!(pages.next_number(1), None, "one page in flight at most");
        assert_eq!(pages.next_number(2), Some(3));
        pages.passed(3);
        assert_eq!(pages.next_number(2), None, "3 was the last");
        assert!(!pages.is_done(), "2 is still out");
        pages.came_back(2, None);
        assert!(pages.is_done());
    }

    #[test]
    fn a_moved_page_goes_again_first_and_page_one_waits_for_it() {
        let mut pages = PageCursor::pages(1, 2);
        pages.sent(1);
        pages.came_back(1, Some(moved(1)));
        assert_eq!(pages.next_number(8), None, "page 1 is not done while it is redirected");
        assert_eq!(pages.front_moved(), Some(&moved(1)));
        assert_eq!(pages.send_moved(), Some(moved(1)));
        pages.came_back(1, None);
        assert_eq!(pages.next_number(8), Some(2));
        pages.sent(2);
        pages.came_back(2, Some(moved(2)));
        assert!(!pages.is_done());
        assert_eq!(pages.drop_moved(), Some(moved(2)), "refused at its new address");
        assert!(pages.is_done());
    }

    #[test]
    fn abandoning_counts_what_never_went_and_a_url_list_has_no_pages() {
        let mut pages = PageCursor::pages(1, 5);
        assert_eq!(pages.abandon(), 5, "page 1 never went either");
        assert!(pages.is_done());
        let mut pages = PageCursor::pages(1, 5);
        pages.sent(1);
        pages.came_back(1, None);
        pages.sent(2);
        pages.came_back(2, Some(moved(2)));
        assert_eq!(pages.abandon(), 1 + 3, "the moved page and pages 3 to 5");
        let none = PageCursor::none();
        assert_eq!(none.next_number(8), None);
        assert!(none.is_done());
    }

    #[test]
    fn a_range_starts_at_its_first_page_which_goes_alone() {
        let mut pages = PageCursor::pages(5, 7);
        assert_eq!((pages.first(), pages.planned()), (5, 3));
        assert_eq!(pages.next_number(8), Some(5));
        pages.sent(5);
        assert_eq!(pages.next_number(8), None, "the first page is out alone");
        pages.came_back(5, None);
        assert_eq!(pages.next_number(8), Some(6));
        pages.sent(6);
        pages.passed(7);
        pages.came_back(6, None);
        assert!(pages.is_done());
        let mut untouched = PageCursor::pages(5, 7);
        assert_eq!(untouched.abandon(), 3, "pages 5 to 7, no more");
    }

    #[test]
    fn a_next_link_extends_the_walk_until_the_end_is_known() {
        let mut pages = PageCursor::pages(1, 1);
        pages.sent(1);
        pages.extend_to(2);
        pages.came_back(1, None);
        assert_eq!(pages.next_number(4), Some(2));
        pages.sent(2);
        pages.end_at(2);
        pages.extend_to(3);
        assert_eq!(pages.last(), 2, "the end is known: a next link no longer extends it");
        let mut stated = PageCursor::pages(1, 1);
        stated.clamp(1);
        stated.extend_to(2);
        assert_eq!(stated.last(), 1, "a stated count is the site's word");
    }

    #[test]
    fn a_missing_page_ends_a_walk_that_states_no_count() {
        let mut pages = PageCursor::pages(1, 10);
        pages.sent(1);
        pages.came_back(1, None);
        for n in 2..=4 {
            pages.sent(n);
        }
        // Page 3 is missing: 2 was the last; 4, already out, is past the end.
        pages.came_back(3, None);
        pages.end_at(2);
        assert!(pages.past_end(4) && pages.past_end(3) && !pages.past_end(2));
        assert_eq!(pages.next_number(16), None, "nothing more goes out");
        pages.came_back(2, None);
        pages.came_back(4, None);
        assert!(pages.is_done());
        assert_eq!(pages.planned(), 2);
        let mut stated = PageCursor::pages(1, 10);
        stated.clamp(5);
        assert!(stated.count_stated() && !stated.past_end(6));
    }
}
