//! What the run knows of each origin's robots.txt: asked for the first time an origin is
//! seen, fetched before anything else from it, then the verdict for every URL there.
//! Pure: no actix.

use std::collections::{HashMap, VecDeque};

use url::Url;

pub use crate::frontier::Verdict;
use crate::robots::{self, Origin, Rules};

#[derive(Debug)]
enum State {
    Requested,
    Known(Rules),
}

#[derive(Debug)]
pub struct RobotsBook {
    /// `--ignore-robots` makes every verdict `Go` and asks for nothing.
    obey: bool,
    /// Per origin (scheme, host, port, hashed).
    known: HashMap<Origin, State>,
    /// robots.txt URLs to fetch, in the order their origins were first seen.
    to_fetch: VecDeque<Url>,
}

impl RobotsBook {
    pub fn new(obey: bool) -> Self {
        Self { obey, known: HashMap::new(), to_fetch: VecDeque::new() }
    }

    /// The rules of `url`'s origin (given hashed, as callers that queue by origin have
    /// it), once known; `None` means wait. The first time an origin is seen, its
    /// robots.txt is queued for fetching.
    pub fn rules(&mut self, origin: Origin, url: &Url) -> Option<Rules> {
        if !self.obey {
            return Some(Rules::AllowAll);
        }
        match self.known.get(&origin) {
            Some(State::Known(rules)) => Some(rules.clone()),
            Some(State::Requested) => None,
            None => {
                self.known.insert(origin, State::Requested);
                self.to_fetch.extend(robots::robots_url(url));
                None
            }
        }
    }

    /// Whether `url` may be fetched now.
    pub fn verdict(&mut self, url: &Url) -> Verdict {
        match self.rules(robots::origin(url), url) {
            None => Verdict::Wait,
            Some(rules) if rules.allows(url) => Verdict::Go,
            Some(rules) => Verdict::Refused { reason: rules.refusal(), failure: rules.is_failure() },
        }
    }

    /// The next robots.txt to fetch.
    pub fn next_request(&mut self) -> Option<Url> {
        self.to_fetch.pop_front()
    }

    pub fn has_requests(&self) -> bool {
        !self.to_fetch.is_empty()
    }

    /// Nothing more will be fetched (the run is stopping).
    pub fn clear_requests(&mut self) {
        self.to_fetch.clear();
    }

    /// The robots.txt at `url` said `rules` (or could not be read: `Rules::Unreachable`).
    pub fn learn(&mut self, url: &Url, rules: Rules) {
        self.known.insert(robots::origin(url), State::Known(rules));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn an_origin_waits_for_its_robots_txt_once_then_is_judged() {
        let mut book = RobotsBook::new(true);
        let page = url("http://h.test/p1.html");
        assert_eq!(book.verdict(&page), Verdict::Wait);
        assert_eq!(book.verdict(&url("http://h.test/a.jpg")), Verdict::Wait);
        assert_eq!(book.next_request().unwrap().as_str(), "http://h.test/robots.txt");
        assert!(book.next_request().is_none(), "asked for once");
        book.learn(&url("http://h.test/robots.txt"), Rules::parse(b"User-agent: *\nDisallow: /private\n"));
        assert_eq!(book.verdict(&page), Verdict::Go);
        let refused = book.verdict(&url("http://h.test/private/x.jpg"));
        assert_eq!(refused, Verdict::Refused { reason: "disallowed by robots.txt".into(), failure: false });
        // Another port is another origin.
        assert_eq!(book.verdict(&url("http://h.test:8080/a.jpg")), Verdict::Wait);
        assert!(book.has_requests());
        book.clear_requests();
        assert!(!book.has_requests());
    }

    #[test]
    fn an_unreadable_robots_txt_is_a_failure_and_ignoring_asks_nothing() {
        let mut book = RobotsBook::new(true);
        let a = url("http://h.test/a.jpg");
        book.verdict(&a);
        book.learn(&url("http://h.test/robots.txt"), Rules::Unreachable("HTTP 503".into()));
        let refused = book.verdict(&a);
        assert_eq!(
            refused,
            Verdict::Refused { reason: "robots.txt unreachable (HTTP 503)".into(), failure: true }
        );
        let mut ignoring = RobotsBook::new(false);
        assert_eq!(ignoring.verdict(&a), Verdict::Go);
        assert!(!ignoring.has_requests());
    }
}
