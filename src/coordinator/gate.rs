//! What the Frontier lets a claim take, as the Coordinator decides it: robots.txt's
//! verdicts, and the room each host has counting what this claim took so far. Lives for
//! one claim. No actix beyond the ledger it reads.

use std::collections::HashMap;

use url::Url;

use super::InFlight;
use super::robots_book::RobotsBook;
use super::slots::Slots;
use crate::frontier::{Gate, Verdict};
use crate::robots::{Origin, Rules};

/// What the frontier lets a claim take: robots.txt's verdicts and the room each host has
/// with what this claim took so far.
pub struct ClaimGate<'a> {
    robots: &'a mut RobotsBook,
    slots: &'a Slots<InFlight>,
    limit: usize,
    /// Claimed in this call, per host, not yet in the ledger.
    claimed: HashMap<String, usize>,
}

impl<'a> ClaimGate<'a> {
    pub fn new(robots: &'a mut RobotsBook, slots: &'a Slots<InFlight>, limit: usize) -> Self {
        Self { robots, slots, limit, claimed: HashMap::new() }
    }
}

impl Gate for ClaimGate<'_> {
    fn verdict(&mut self, url: &Url) -> Verdict {
        self.robots.verdict(url)
    }

    fn rules(&mut self, origin: Origin, url: &Url) -> Option<Rules> {
        self.robots.rules(origin, url)
    }

    fn has_room(&self, host: &str) -> bool {
        self.slots.host_busy(host) + self.claimed.get(host).copied().unwrap_or(0) < self.limit
    }

    fn took(&mut self, host: &str) {
        *self.claimed.entry(host.to_string()).or_default() += 1;
    }

    fn yields(&self) -> bool {
        self.robots.has_requests()
    }
}
