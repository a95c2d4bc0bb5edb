//! File names handed out in this run: two URLs never get one name, even on a
//! case-insensitive file system. A name is kept as 8 bytes of its lower-cased hash; a
//! collision only costs a suffix. Also the resume decision, made as an image is handed
//! out: skip what an earlier run stored whole, reuse the name it gave. Pure: no actix.

use std::sync::Arc;

use url::Url;

use crate::frontier::Offer;
use crate::keyset::KeySet;
use crate::name_template::{Fields, NameTemplate};
use crate::storage;
use crate::store::{Lookup, Store};

/// What becomes of an image about to be handed out.
#[derive(Debug, PartialEq, Eq)]
pub enum Planned {
    /// An earlier run stored it under `name` and it is still whole.
    Complete { name: String, bytes: u64 },
    /// Fetch it into `name`; `overwrite`: the name is this URL's from an earlier run.
    Fetch { name: String, overwrite: bool },
    /// `NAME` cannot name it (its row lacks a column the template reads): it fails.
    Unnamed(String),
}

#[derive(Debug)]
pub struct Names {
    /// Hashes of the names handed out; spills to disk for a list of millions.
    taken: KeySet,
    /// `NAME`; `None`: the URL's own file name.
    template: Option<Arc<NameTemplate>>,
    /// The next `{index}` of an image found by a walk (a list row has its own): the order
    /// images are named in, in this process.
    walk_index: u64,
}

impl Names {
    /// Where the names' hashes are kept: sized for a `--urls` list a first pass
    /// counted, and spilling to disk when it is long (see `keyset`).
    pub fn with_keys(mut self, taken: KeySet) -> Self {
        self.taken = taken;
        self
    }

    /// Takes `name` if no URL of this run has it; false if one does.
    pub fn take(&mut self, name: &str) -> bool {
        self.taken.insert(key(name))
    }

    /// Decides what to do with `url`: skip it (an earlier run stored it and it is still
    /// whole, unless `force`), or fetch it under the name an earlier run gave it, or
    /// under a new name no other URL of this run has.
    pub fn plan(&mut self, store: &dyn Store, offer: &Offer, force: bool) -> Planned {
        let url = &offer.url;
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
        match self.fresh_name(offer) {
            Ok(name) => Planned::Fetch { name, overwrite: false },
            Err(why) => Planned::Unnamed(why),
        }
    }

    /// A `NAME` for this run: `template`'s, or the URL's own file name when `None`.
    pub fn new(template: Option<Arc<NameTemplate>>) -> Self {
        Self { taken: KeySet::in_memory(), template, walk_index: 0 }
    }

    /// The name `offer` gets when no earlier run named it: the template's rendering, or
    /// the URL's own file name, made unique in this run.
    fn fresh_name(&mut self, offer: &Offer) -> Result<String, String> {
        let Some(template) = self.template.clone() else {
            return Ok(self.claim(&offer.url));
        };
        let index = offer.index.unwrap_or_else(|| {
            self.walk_index += 1;
            self.walk_index - 1
        });
        let fields = Fields {
            url: &offer.url,
            index,
            columns: offer.carried.as_deref(),
            sha256: None,
            type_ext: None,
        };
        let base = template.render(&fields).map_err(|e| e.to_string())?;
        Ok(self.claim_as(base, &offer.url))
    }

    /// The URL's own file name, or, when another URL of this run has it, that name with
    /// a suffix derived from the URL. (A file already in the store under it is the
    /// store's business at commit: it never writes over what it did not write.)
    pub fn claim(&mut self, url: &Url) -> String {
        self.claim_as(storage::file_name(url), url)
    }

    /// `base`, or when another URL of this run has it, `base` suffixed from the URL.
    fn claim_as(&mut self, base: String, url: &Url) -> String {
        // Named by its bytes: two URLs with one name hold one image, which the store keeps
        // once (an identical file there is adopted). A suffix would break the name.
        if base.contains(storage::SHA256_HOLE) {
            return base;
        }
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
        let mut names = Names::new(None);
        let (a, b, c) = (url("http://h/a/cat.jpg"), url("http://h/b/cat.jpg"), url("http://h/c/CAT.jpg"));
        assert_eq!(names.claim(&a), "cat.jpg");
        assert_eq!(names.claim(&b), storage::with_suffix("cat.jpg", &b));
        assert_eq!(names.claim(&c), storage::with_suffix("CAT.jpg", &c));
        assert!(!names.take("Cat.JPG"), "taken, whatever the case");
        // The same URL again (a clash of its own suffix): the numbered ones follow.
        let again = names.claim(&b);
        assert!(again.starts_with("2-cat-"), "{again}");
    }

    fn offer(u: &str, index: Option<u64>, carried: Option<&str>) -> Offer {
        Offer {
            index,
            carried: carried.map(|c| Box::new(serde_json::from_str(c).unwrap())),
            ..Offer::new(url(u), 0, None, Default::default())
        }
    }

    #[test]
    fn a_template_names_from_the_row_and_clashes_keep_their_folders() {
        let store = crate::store::folder::FolderStore::fresh(
            crate::outdir::OutDir::open(tempfile::tempdir().unwrap().path()).unwrap(),
        );
        let template = |t: &str| Some(Arc::new(NameTemplate::parse(t).unwrap()));
        let mut names = Names::new(template("{shard}/{key}.{ext}"));
        let plan = |names: &mut Names, o: &Offer| names.plan(&store, o, false);
        let fetch = |name: &str| Planned::Fetch { name: name.into(), overwrite: false };
        let row = offer("http://h/a/cat.jpg", Some(12_345), Some(r#"{"key":"k1"}"#));
        assert_eq!(plan(&mut names, &row), fetch("00001/k1.jpg"));
        let same_key = offer("http://h/b/cat.jpg", Some(12_346), Some(r#"{"key":"k1"}"#));
        let suffixed = storage::with_suffix("k1.jpg", &same_key.url);
        assert_eq!(plan(&mut names, &same_key), fetch(&format!("00001/{suffixed}")));
        assert_eq!(
            plan(&mut names, &offer("http://h/c.jpg", Some(1), None)),
            Planned::Unnamed("NAME: this row has no `key` column".into())
        );
        // A walk's images are numbered as they are named.
        let mut names = Names::new(template("{index}"));
        assert_eq!(plan(&mut names, &offer("http://h/x.jpg", None, None)), fetch("000000000"));
        assert_eq!(plan(&mut names, &offer("http://h/y.jpg", None, None)), fetch("000000001"));
        // Named by content: never suffixed, whatever the URL.
        let mut names = Names::new(template("{sha256}"));
        let holed = storage::SHA256_HOLE.to_string();
        assert_eq!(plan(&mut names, &offer("http://h/x.jpg", None, None)), fetch(&holed));
        assert_eq!(plan(&mut names, &offer("http://h/y.jpg", None, None)), fetch(&holed));
    }
}
