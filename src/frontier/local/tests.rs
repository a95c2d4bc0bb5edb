//! The in-memory frontier's rules, without actix: a gate that allows what a test says.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::frontier::{EndWhy, ItemEnd, LastWhy, Meta, ready as now};
use crate::robots::{Origin, Rules};

/// A gate with robots.txt known for every origin but those in `waiting`, `disallowed`
/// paths refused, and `limit` requests per host.
struct TestGate {
    waiting: HashSet<String>,
    disallowed: Vec<String>,
    limit: usize,
    busy: HashMap<String, usize>,
}

impl TestGate {
    fn open() -> Self {
        Self { waiting: HashSet::new(), disallowed: Vec::new(), limit: usize::MAX, busy: HashMap::new() }
    }

    fn judge(&self, url: &Url) -> Verdict {
        if self.waiting.contains(host_of(url)) {
            Verdict::Wait
        } else if self.disallowed.iter().any(|p| url.path().starts_with(p)) {
            Verdict::Refused { reason: "disallowed by robots.txt".into(), failure: false }
        } else {
            Verdict::Go
        }
    }
}

impl Gate for TestGate {
    fn verdict(&mut self, url: &Url) -> Verdict {
        self.judge(url)
    }

    fn rules(&mut self, _: Origin, url: &Url) -> Option<Rules> {
        if self.waiting.contains(host_of(url)) {
            return None;
        }
        let text: String = self.disallowed.iter().map(|p| format!("Disallow: {p}\n")).collect();
        Some(Rules::parse(format!("User-agent: *\n{text}").as_bytes()))
    }

    fn has_room(&self, host: &str) -> bool {
        self.busy.get(host).copied().unwrap_or(0) < self.limit
    }

    fn took(&mut self, host: &str) {
        *self.busy.entry(host.to_string()).or_default() += 1;
    }

    fn yields(&self) -> bool {
        false
    }
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn walk(first: u32, last: u32) -> LocalFrontier {
    LocalFrontier::pages(first, last, Box::new(|n| url(&format!("http://h.test/p{n}.html"))))
}

fn image(path: &str) -> Offer {
    Offer::new(url(&format!("http://h.test/{path}")), 1, None, Meta::default())
}

fn fetched(stated: Option<u32>, next: Option<&str>, found: usize) -> Ending {
    Ending::PageFetched { stated, next: next.map(url), found }
}

fn claim(frontier: &mut LocalFrontier, want: usize, capacity: usize, gate: &mut TestGate) -> Claimed {
    now(frontier.claim(want, capacity, gate)).ok().unwrap().unwrap()
}

fn complete(frontier: &mut LocalFrontier, id: LeaseId, ending: Ending, children: Vec<Offer>) -> Completed {
    now(frontier.complete(id, ending, children)).ok().unwrap().unwrap()
}

fn done(frontier: &LocalFrontier) -> bool {
    now(frontier.is_done()).ok().unwrap().unwrap()
}

fn pages_of(claimed: &Claimed) -> Vec<u32> {
    claimed
        .leases
        .iter()
        .filter_map(|l| match &l.work {
            Work::Page { number, .. } => Some(*number),
            Work::Image(_) | Work::Detail(_) => None,
        })
        .collect()
}

#[test]
fn its_answers_are_ready_at_once() {
    let mut frontier = walk(1, 1);
    assert!(now(frontier.counts()).is_ok(), "the coordinator applies them in the same step");
    assert!(now(frontier.offer(vec![image("a.jpg")])).is_ok());
}

#[test]
fn the_first_page_goes_alone_then_pages_while_images_run_short() {
    let mut frontier = walk(1, 10).with_lookahead(Some(2));
    let mut gate = TestGate::open();
    let first = claim(&mut frontier, 8, 8, &mut gate);
    assert_eq!(pages_of(&first), [1], "page 1 alone: it may state the count");
    let children = (0..3).map(|k| image(&format!("{k}.jpg"))).collect();
    let fate = complete(&mut frontier, first.leases[0].id, fetched(None, None, 3), children);
    assert_eq!(fate.admitted, [true, true, true]);
    assert_eq!(fate.page, Some(PageFate::Ok));
    // Three images wait and eight slots would take them: pages go first, two at most.
    let next = claim(&mut frontier, 8, 8, &mut gate);
    assert_eq!(pages_of(&next), [2, 3], "PAGE_LOOKAHEAD bounds the pages out at once");
    assert_eq!(next.leases.len(), 5, "then the images");
}

#[test]
fn images_go_before_pages_when_enough_wait() {
    let mut frontier = walk(1, 10);
    let mut gate = TestGate::open();
    let first = claim(&mut frontier, 1, 2, &mut gate);
    let children = (0..5).map(|k| image(&format!("{k}.jpg"))).collect();
    complete(&mut frontier, first.leases[0].id, fetched(None, None, 5), children);
    let next = claim(&mut frontier, 2, 2, &mut gate);
    assert!(pages_of(&next).is_empty(), "five images wait for two slots: no page yet");
}

#[test]
fn the_seen_set_admits_a_url_once_and_a_redirect_target_again() {
    let mut frontier = LocalFrontier::empty();
    let admitted =
        now(frontier.offer(vec![image("a.jpg"), image("a.jpg"), image("b.jpg")])).ok().unwrap().unwrap();
    assert_eq!(admitted, [true, false, true]);
    let again = Offer { again: true, ..image("a.jpg") };
    assert_eq!(now(frontier.offer(vec![again])).ok().unwrap().unwrap(), [true]);
    assert_eq!(now(frontier.counts()).ok().unwrap().unwrap().queued, 3);
}

#[test]
fn children_are_offered_before_the_lease_stops_counting() {
    let mut frontier = walk(1, 1);
    let mut gate = TestGate::open();
    let page = claim(&mut frontier, 1, 4, &mut gate).leases.remove(0);
    assert!(!done(&frontier), "page 1 is out");
    complete(&mut frontier, page.id, fetched(None, None, 1), vec![image("a.jpg")]);
    assert!(!done(&frontier), "its image is queued in the same step");
    let leased = claim(&mut frontier, 4, 4, &mut gate);
    assert_eq!(leased.leases.len(), 1);
    assert!(!done(&frontier), "the image is out");
    complete(&mut frontier, leased.leases[0].id, Ending::Image(ItemEnd::Ok), Vec::new());
    assert!(done(&frontier));
}

#[test]
fn refused_work_is_taken_off_and_waiting_work_stays() {
    let mut frontier = LocalFrontier::empty();
    now(frontier.offer(vec![image("private/a.jpg"), image("b.jpg")])).ok().unwrap().unwrap();
    let other = Offer::new(url("http://g.test/c.jpg"), 1, None, Meta::default());
    now(frontier.offer(vec![other])).ok().unwrap().unwrap();
    let mut gate = TestGate { disallowed: vec!["/private".into()], ..TestGate::open() };
    gate.waiting.insert("g.test".into());
    let claimed = claim(&mut frontier, 8, 8, &mut gate);
    assert_eq!(claimed.refused.len(), 1, "disallowed: taken off, for the caller to count");
    assert_eq!(claimed.leases.len(), 1, "b.jpg; g.test waits for its robots.txt");
    assert_eq!(now(frontier.counts()).ok().unwrap().unwrap().queued, 1);
}

#[test]
fn the_host_limit_holds_within_one_claim() {
    let mut frontier = LocalFrontier::empty();
    now(frontier.offer((0..6).map(|k| image(&format!("{k}.jpg"))).collect())).ok().unwrap().unwrap();
    let mut gate = TestGate { limit: 2, ..TestGate::open() };
    assert_eq!(claim(&mut frontier, 8, 8, &mut gate).leases.len(), 2);
}

#[test]
fn a_stated_count_clamps_the_walk_to_what_was_asked() {
    let mut frontier = walk(1, 1).with_max_pages(Some(4));
    let mut gate = TestGate::open();
    let page = claim(&mut frontier, 1, 8, &mut gate).leases.remove(0);
    let fate = complete(&mut frontier, page.id, fetched(Some(9), None, 0), Vec::new());
    assert_eq!(fate.page, Some(PageFate::Clamped { stated: 9, last: 4 }));
    assert_eq!(now(frontier.counts()).ok().unwrap().unwrap().pages_planned, 4);
}

#[test]
fn a_missing_page_ends_the_walk_and_pages_past_it_do_not_count() {
    let mut frontier = walk(1, 10).with_lookahead(Some(3));
    let mut gate = TestGate::open();
    let page1 = claim(&mut frontier, 1, 8, &mut gate).leases.remove(0);
    complete(&mut frontier, page1.id, fetched(None, None, 1), Vec::new());
    let out = claim(&mut frontier, 8, 8, &mut gate);
    assert_eq!(pages_of(&out), [2, 3, 4]);
    let fate = complete(&mut frontier, out.leases[1].id, Ending::PageMissing, Vec::new());
    assert_eq!(fate.page, Some(PageFate::End { why: EndWhy::Missing, first_time: true }));
    let fate = complete(&mut frontier, out.leases[2].id, Ending::PageFailed, Vec::new());
    assert_eq!(fate.page, Some(PageFate::PastEnd));
    assert!(claim(&mut frontier, 8, 8, &mut gate).leases.is_empty(), "nothing past the end");
    complete(&mut frontier, out.leases[0].id, fetched(None, None, 1), Vec::new());
    assert!(done(&frontier));
}

#[test]
fn with_a_template_a_next_link_to_a_page_already_sent_is_no_loop() {
    let mut frontier = walk(1, 10).with_lookahead(Some(3)).listing();
    let mut gate = TestGate::open();
    let page1 = claim(&mut frontier, 1, 8, &mut gate).leases.remove(0);
    complete(&mut frontier, page1.id, fetched(None, Some("http://h.test/p2.html"), 1), vec![image("1.jpg")]);
    let out = claim(&mut frontier, 8, 8, &mut gate);
    assert_eq!(pages_of(&out), [2, 3, 4]);
    // Page 2 comes back after page 3 went out: its link to page 3 is the walk going on.
    let next = fetched(None, Some("http://h.test/p3.html"), 1);
    let fate = complete(&mut frontier, out.leases[0].id, next, vec![image("2.jpg")]);
    assert_eq!(fate.page, Some(PageFate::Ok));
    assert!(!claim(&mut frontier, 8, 8, &mut gate).leases.is_empty(), "the walk goes on");
}

#[test]
fn a_missing_first_page_is_a_failure() {
    let mut frontier = walk(1, 5);
    let mut gate = TestGate::open();
    let page1 = claim(&mut frontier, 1, 8, &mut gate).leases.remove(0);
    let fate = complete(&mut frontier, page1.id, Ending::PageMissing, Vec::new());
    assert_eq!(fate.page, Some(PageFate::Failed));
}

#[test]
fn a_moved_page_goes_out_again_before_new_ones() {
    let mut frontier = walk(1, 3);
    let mut gate = TestGate::open();
    let page1 = claim(&mut frontier, 1, 8, &mut gate).leases.remove(0);
    let moved = Ending::PageMoved { url: url("http://h.test/new/p1.html"), hops: 1 };
    assert_eq!(complete(&mut frontier, page1.id, moved, Vec::new()).page, Some(PageFate::Moved));
    let again = claim(&mut frontier, 8, 8, &mut gate);
    assert_eq!(pages_of(&again), [1], "page 1 again, alone");
    assert!(matches!(&again.leases[0].work, Work::Page { url, hops: 1, .. } if url.path() == "/new/p1.html"));
}

#[test]
fn released_work_goes_out_again_first() {
    let mut frontier = LocalFrontier::empty();
    now(frontier.offer(vec![image("a.jpg"), image("b.jpg")])).ok().unwrap().unwrap();
    let mut gate = TestGate::open();
    let first = claim(&mut frontier, 1, 8, &mut gate);
    now(frontier.release(first.leases)).ok().unwrap().unwrap();
    let again = claim(&mut frontier, 1, 8, &mut gate);
    assert!(matches!(&again.leases[0].work, Work::Image(o) if o.url.path() == "/a.jpg"));
}

#[test]
fn abandoning_gives_back_what_never_went() {
    let mut frontier = walk(1, 5);
    now(frontier.offer(vec![image("a.jpg")])).ok().unwrap().unwrap();
    let abandoned = now(frontier.abandon()).ok().unwrap().unwrap();
    assert_eq!((abandoned.pages, abandoned.images.len()), (5, 1));
    assert!(done(&frontier));
}

#[test]
fn a_listing_frontier_admits_without_queueing() {
    let mut frontier = LocalFrontier::empty().listing();
    let admitted = now(frontier.offer(vec![image("a.jpg"), image("a.jpg")])).ok().unwrap().unwrap();
    assert_eq!(admitted, [true, false]);
    assert!(done(&frontier), "a dry run lists images itself");
}

/// Fetches the one page the frontier hands out, with these images and next link. The
/// walks below are dry runs (images admitted, not queued), so only pages go out.
fn walk_page(
    frontier: &mut LocalFrontier,
    images: &[&str],
    next: Option<&str>,
) -> (u32, Url, Option<PageFate>) {
    let mut gate = TestGate::open();
    let mut claimed = claim(frontier, 1, 64, &mut gate);
    assert_eq!(claimed.leases.len(), 1, "one page goes: {claimed:?}");
    let lease = claimed.leases.remove(0);
    let Work::Page { number, url: page_url, .. } = lease.work else { panic!("not a page") };
    let children = images.iter().map(|i| image(i)).collect();
    let done = complete(frontier, lease.id, fetched(None, next, images.len()), children);
    (number, page_url, done.page)
}

#[test]
fn a_walk_by_next_links_goes_where_they_lead_and_ends_where_none_follows() {
    let mut frontier = LocalFrontier::links(url("http://h.test/gallery")).listing();
    let (n, at, fate) = walk_page(&mut frontier, &["1.jpg"], Some("http://h.test/gallery?after=1"));
    assert_eq!((n, at.as_str(), fate), (1, "http://h.test/gallery", Some(PageFate::Ok)));
    let (n, at, fate) = walk_page(&mut frontier, &["2.jpg"], Some("http://h.test/gallery?after=2"));
    assert_eq!((n, at.as_str(), fate), (2, "http://h.test/gallery?after=1", Some(PageFate::Ok)));
    let (n, _, fate) = walk_page(&mut frontier, &["3.jpg"], None);
    assert_eq!((n, fate), (3, Some(PageFate::Last(LastWhy::NoNext))));
    assert!(claim(&mut frontier, 8, 8, &mut TestGate::open()).leases.is_empty());
    assert_eq!(now(frontier.counts()).ok().unwrap().unwrap().pages_planned, 3);
}

#[test]
fn a_next_link_back_to_a_walked_page_ends_the_walk() {
    let mut frontier = LocalFrontier::links(url("http://h.test/a")).listing();
    walk_page(&mut frontier, &["1.jpg"], Some("http://h.test/b"));
    let (_, _, fate) = walk_page(&mut frontier, &["2.jpg"], Some("http://h.test/a"));
    assert_eq!(fate, Some(PageFate::Last(LastWhy::Loop)));
    assert!(done(&frontier));
}

#[test]
fn a_walk_by_links_stops_at_its_upper_bound() {
    let mut frontier = LocalFrontier::links(url("http://h.test/p")).with_max_pages(Some(2)).listing();
    walk_page(&mut frontier, &["1.jpg"], Some("http://h.test/p?2"));
    walk_page(&mut frontier, &["2.jpg"], Some("http://h.test/p?3"));
    assert!(done(&frontier), "AMOUNT_PAGES: 2");
}

#[test]
fn a_template_walk_goes_on_while_pages_link_to_a_next_one() {
    let mut frontier = walk(1, 1).listing();
    walk_page(&mut frontier, &["1.jpg"], Some("http://h.test/p2.html"));
    let (n, at, _) = walk_page(&mut frontier, &["2.jpg"], Some("http://h.test/?page=3"));
    assert_eq!((n, at.as_str()), (2, "http://h.test/p2.html"), "the template leads; the link is a hint");
    let (n, _, fate) = walk_page(&mut frontier, &["3.jpg"], None);
    assert_eq!((n, fate), (3, Some(PageFate::Last(LastWhy::NoNext))));
    assert!(done(&frontier));
}

#[test]
fn a_page_that_repeats_known_images_is_past_the_end() {
    let mut frontier = walk(1, 10).with_lookahead(Some(1)).listing();
    walk_page(&mut frontier, &["1.jpg"], None);
    walk_page(&mut frontier, &["2.jpg"], None);
    let (n, _, fate) = walk_page(&mut frontier, &["2.jpg"], None);
    assert_eq!((n, fate), (3, Some(PageFate::End { why: EndWhy::Repeats, first_time: true })));
    assert_eq!(now(frontier.counts()).ok().unwrap().unwrap().pages_planned, 2);
    assert!(claim(&mut frontier, 8, 8, &mut TestGate::open()).leases.is_empty());
}

#[test]
fn a_page_with_no_images_and_no_next_link_is_the_last() {
    let mut frontier = walk(1, 10).with_lookahead(Some(1)).listing();
    walk_page(&mut frontier, &["1.jpg"], None);
    let (n, _, fate) = walk_page(&mut frontier, &[], None);
    assert_eq!((n, fate), (2, Some(PageFate::Last(LastWhy::Empty))));
    assert!(claim(&mut frontier, 8, 8, &mut TestGate::open()).leases.is_empty());
}

#[test]
fn detail_pages_are_admitted_once_and_claimed_as_details_even_in_a_dry_run() {
    let mut frontier = LocalFrontier::empty().listing();
    let detail = Offer { detail: true, ..image("view/1.html") };
    let admitted =
        now(frontier.offer(vec![detail.clone(), detail, image("view/1.html")])).ok().unwrap().unwrap();
    assert_eq!(admitted, [true, false, true], "details and images have seen-sets of their own");
    let claimed = claim(&mut frontier, 8, 8, &mut TestGate::open());
    assert_eq!(claimed.leases.len(), 1, "the dry run fetches the detail page, lists the image itself");
    assert!(matches!(claimed.leases[0].work, Work::Detail(_)));
}
