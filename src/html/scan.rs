//! What a scan hands out: owned URLs and counts only, since the parsed document is
//! `!Send` and never leaves [`Extractor::scan`](super::Extractor::scan).

use serde::{Deserialize, Serialize};
use url::Url;

/// Which rule found an image: shown in the report so a user can see why it was chosen.
// Deserialize: an offer's `Meta` is stored as JSON by the Redis frontier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Element {
    Img,
    Picture,
    Noscript,
    Link,
}

impl Element {
    pub fn as_str(self) -> &'static str {
        match self {
            Element::Img => "img",
            Element::Picture => "picture",
            Element::Noscript => "noscript",
            Element::Link => "link",
        }
    }
}

/// One image of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub url: Url,
    pub element: Element,
    /// For a link target: the best candidate of the thumbnail it wraps, to download
    /// instead when the target turns out to be a page, not an image (MediaWiki's
    /// `File:` links).
    pub fallback: Option<Url>,
}

impl Found {
    pub fn img(url: Url) -> Self {
        Self { url, element: Element::Img, fallback: None }
    }
}

/// What one page yielded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageScan {
    /// Distinct absolute http(s) image URLs, in document order, after the host filter.
    /// Thumbnails inside detail links are not among them: their detail pages' images
    /// replace them.
    pub images: Vec<Found>,
    /// The last number in the page-count element's text, if there is one.
    pub page_count: Option<u32>,
    /// The first `NEXT_SELECTOR` match (or, with none set, the first link the default
    /// rules of [`next`] find) whose `href` is an http(s) URL other than the page's own
    /// (fragment stripped): where a walk without a template goes next. Never
    /// set on a detail page (one level only).
    pub next: Option<Url>,
    /// Distinct http(s) targets of the `DETAIL_SELECTOR` links, in document order
    /// (fragments stripped): the pages whose images replace the thumbnails inside those
    /// links. Never set on a detail page.
    pub details: Vec<Url>,
    /// What looks like a pager on a listing page with no next link recognised, in words
    /// ([`pager::pager`]): a walk ending there says `NEXT_SELECTOR` may be what is missing.
    pub pager: Option<String>,
    /// Distinct image URLs the host filter (`IMAGE_HOST`) dropped, so a run can say how
    /// many and why instead of finding nothing silently.
    pub other_hosts: Vec<Url>,
}

impl PageScan {
    /// The image URLs alone.
    pub fn urls(&self) -> impl Iterator<Item = &Url> {
        self.images.iter().map(|f| &f.url)
    }
}
