//! Every URL admitted so far, as a 64-bit hash: the same URL found on two pages is
//! fetched once, and a hash costs 8 bytes where the URL would cost a hundred (a list of
//! millions of URLs is held as nothing else). Exact for any list a machine can fetch: two
//! of ten million URLs share a hash with a chance of about 3 in a million. Pure.

use std::collections::HashSet;

use url::Url;
use xxhash_rust::xxh3::xxh3_64;

#[derive(Debug, Default)]
pub struct SeenSet {
    hashes: HashSet<u64>,
}

impl SeenSet {
    /// Room for `n` URLs made at once: a set that grows doubles, and holds both tables
    /// while it does, which at a list's end is the run's peak memory.
    pub fn with_capacity(n: usize) -> Self {
        Self { hashes: HashSet::with_capacity(n) }
    }

    /// Admits `url` if it was never admitted; false if it was.
    pub fn admit(&mut self, url: &Url) -> bool {
        self.hashes.insert(xxh3_64(url.as_str().as_bytes()))
    }

    /// Whether `url` was admitted, without admitting it.
    pub fn contains(&self, url: &Url) -> bool {
        self.hashes.contains(&xxh3_64(url.as_str().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_admitted_once() {
        let mut seen = SeenSet::default();
        let a = Url::parse("http://h.test/a.jpg").unwrap();
        assert!(!seen.contains(&a));
        assert!(seen.admit(&a));
        assert!(!seen.admit(&a));
        assert!(seen.contains(&a));
        assert!(seen.admit(&Url::parse("http://h.test/a.jpg?x").unwrap()), "another URL");
    }
}
