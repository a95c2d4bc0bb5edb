//! Every URL admitted so far, as a 128-bit hash: the same URL found on two pages is
//! fetched once, and a hash costs 16 bytes where the URL would cost a hundred. Exact for
//! every practical purpose (a collision needs about 2^64 URLs). Pure.

use std::collections::HashSet;

use url::Url;
use xxhash_rust::xxh3::xxh3_128;

#[derive(Debug, Default)]
pub struct SeenSet {
    hashes: HashSet<u128>,
}

impl SeenSet {
    /// Admits `url` if it was never admitted; false if it was.
    pub fn admit(&mut self, url: &Url) -> bool {
        self.hashes.insert(xxh3_128(url.as_str().as_bytes()))
    }

    /// Whether `url` was admitted, without admitting it.
    pub fn contains(&self, url: &Url) -> bool {
        self.hashes.contains(&xxh3_128(url.as_str().as_bytes()))
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
