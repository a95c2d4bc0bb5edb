//! When scrolling has found everything: a page is settled when what it shows has not
//! changed for the idle time. Pure: the tab measures, this judges.

use std::time::{Duration, Instant};

/// What a page shows, measured in the tab: image elements, those with a real `src`,
/// other image sources, the document's height. Any change is activity.
pub type Signature = Vec<u64>;

/// The last change seen and when.
#[derive(Debug)]
pub struct Watch {
    idle: Duration,
    last: Signature,
    since: Instant,
}

impl Watch {
    pub fn new(idle: Duration, first: Signature, now: Instant) -> Self {
        Self { idle, last: first, since: now }
    }

    /// Takes a new measure; true when it differs from the last (the page grew).
    pub fn observe(&mut self, signature: Signature, now: Instant) -> bool {
        if signature == self.last {
            return false;
        }
        self.last = signature;
        self.since = now;
        true
    }

    /// Restarts the idle time without a change (after a click: its answer takes time).
    pub fn touch(&mut self, now: Instant) {
        self.since = now;
    }

    /// Nothing changed for the idle time.
    pub fn is_idle(&self, now: Instant) -> bool {
        now.duration_since(self.since) >= self.idle
    }

    /// The number of image elements last seen (the signature's first measure).
    pub fn images(&self) -> u64 {
        self.last.first().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_idle_only_after_the_idle_time_without_a_change() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut watch = Watch::new(ms(1500), vec![0, 0, 0, 600], t0);
        assert!(!watch.is_idle(t0 + ms(1499)));
        assert!(!watch.observe(vec![0, 0, 0, 600], t0 + ms(1000)), "no change is not activity");
        assert!(watch.is_idle(t0 + ms(1500)));
        assert!(watch.observe(vec![12, 12, 0, 2400], t0 + ms(1600)));
        assert_eq!(watch.images(), 12);
        assert!(!watch.is_idle(t0 + ms(3000)), "idle time counts from the last change");
        assert!(watch.is_idle(t0 + ms(3100)));
        watch.touch(t0 + ms(4000));
        assert!(!watch.is_idle(t0 + ms(5000)));
    }
}
