//! File names handed out in this run: two URLs never get one name, even on a
//! case-insensitive file system. A name is kept as 8 bytes of its lower-cased hash; a
//! collision only costs a suffix. Pure: no actix.

use std::collections::HashSet;

use url::Url;

use crate::storage;

#[derive(Debug, Default)]
pub struct Names {
    taken: HashSet<u64>,
}

impl Names {
    /// Takes `name` if no URL of this run has it; false if one does.
    pub fn take(&mut self, name: &str) -> bool {
        self.taken.insert(key(name))
    }

    /// The URL's own file name, or, when another URL of this run has it, that name with
    /// a suffix derived from the URL. (A file already in the store under it is the
    /// store's business at commit: it never writes over what it did not write.)
    pub fn claim(&mut self, url: &Url) -> String {
        let base = storage::file_name(url);
        if self.take(&base) {
            return base;
        }
        let suffixed = storage::with_suffix(&base, url);
        let candidates = std::iter::once(suffixed.clone())
            .chain((2u32..).map(|n| storage::with_suffix(&format!("{n}-{suffixed}"), url)));
        for name in candidates {
            if self.take(&name) {
                return name;
            }
        }
        unreachable!("the candidate names never run out")
    }
}

fn key(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.to_lowercase().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn clashing_names_get_a_url_suffix_whatever_the_case() {
        let mut names = Names::default();
        let (a, b, c) = (url("http://h/a/cat.jpg"), url("http://h/b/cat.jpg"), url("http://h/c/CAT.jpg"));
        assert_eq!(names.claim(&a), "cat.jpg");
        assert_eq!(names.claim(&b), storage::with_suffix("cat.jpg", &b));
        assert_eq!(names.claim(&c), storage::with_suffix("CAT.jpg", &c));
        assert!(!names.take("Cat.JPG"), "taken, whatever the case");
        // The same URL again (a clash of its own suffix): the numbered ones follow.
        let again = names.claim(&b);
        assert!(again.starts_with("2-cat-"), "{again}");
    }
}
