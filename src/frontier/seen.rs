//! Every URL admitted so far, as a 64-bit hash: the same URL found on two pages is
//! fetched once, and a hash costs 8 bytes where the URL would cost a hundred; past a
//! quarter of a million hashes most of them go to disk (`keyset`), so a list of millions
//! costs a few bytes a URL. Exact for any list a machine can fetch: two of ten million
//! URLs share a hash with a chance of about 3 in a million. Pure.

use std::path::Path;

use url::Url;
use xxhash_rust::xxh3::xxh3_64;

use crate::keyset::KeySet;

#[derive(Debug)]
pub struct SeenSet {
    hashes: KeySet,
}

impl Default for SeenSet {
    fn default() -> Self {
        Self { hashes: KeySet::in_memory() }
    }
}

impl SeenSet {
    /// A set sized for `expected` URLs (0: unknown) at once: a set that grows doubles,
    /// and holds both tables while it does, which at a list's end is the run's peak
    /// memory. With `spill`, most of its hashes go under that folder once it holds many.
    pub fn new(spill: Option<&Path>, expected: u64) -> Self {
        Self { hashes: KeySet::spilling(spill.map(Path::to_path_buf), expected) }
    }

    /// Admits `url` if it was never admitted; false if it was.
    pub fn admit(&mut self, url: &Url) -> bool {
        self.hashes.insert(xxh3_64(url.as_str().as_bytes()))
    }

    /// Whether `url` was admitted, without admitting it.
    pub fn contains(&self, url: &Url) -> bool {
        self.hashes.contains(xxh3_64(url.as_str().as_bytes()))
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
