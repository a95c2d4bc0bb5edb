//! File names handed out in this run: two URLs never get one name, even on a
//! case-insensitive file system. A name is kept as 8 bytes of its lower-cased hash; a
//! collision only costs a suffix. Also the resume decision, made as an image is handed
//! out: skip what an earlier run stored whole, reuse the name it gave. Pure: no actix.

use std::collections::HashSet;

use url::Url;

use crate::storage;
use crate::store::{Lookup, Store};

/// What becomes of an image about to be handed out.
#[derive(Debug, PartialEq, Eq)]
pub enum Planned {
    /// An earlier run stored it under `name` and it is still whole.
    Complete { name: String, bytes: u64 },
    /// Fetch it into `name`; `overwrite`: the name is this URL's from an earlier run.
    Fetch { name: String, overwrite: bool },
}

#[derive(Debug, Default)]
pub struct Names {
    taken: HashSet<u64>,
}

impl Names {
    /// Room for `n` names made at once (a `--urls` list a first pass counted): see
    /// `SeenSet::with_capacity`.
    pub fn with_capacity(n: u64) -> Self {
        Self { taken: HashSet::with_capacity(usize::try_from(n).unwrap_or(0)) }
    }

    /// Takes `name` if no URL of this run has it; false if one does.
    pub fn take(&mut self, name: &str) -> bool {
        self.taken.insert(key(name))
    }

    /// Decides what to do with `url`: skip it (an earlier run stored it and it is still
    /// whole, unless `force`), or fetch it under the name an earlier run gave it, or
    /// under a new name no other URL of this run has.
    pub fn plan(&mut self, store: &dyn Store, url: &Url, force: bool) -> Planned {
        let earlier = match store.lookup(url) {
            Lookup::Complete { name, bytes } if !force => return Planned::Complete { name, bytes },
            Lookup::Complete { name, .. } | Lookup::Stale { name } => Some(name),
            Lookup::Unknown => None,
        };
        // Ours to replace, unless another URL of this run already went there (the file
        // was gone when it looked): then this one must not overwrite it.
        if let Some(name) = earlier
            && self.take(&name)
        {
            return Planned::Fetch { name, overwrite: true };
        }
        Planned::Fetch { name: self.claim(url), overwrite: false }
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
