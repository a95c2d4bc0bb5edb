//! What the site-specific settings say about a page (`IMAGE_*`, `LINK*`, `NEXT_SELECTOR`,
//! `DETAIL_*`), and the CSS selectors they name, checked once so a bad one fails at start.

use scraper::Selector;
use serde::{Deserialize, Serialize};

use super::detail::DetailRules;

/// What the site-specific settings say about where images and the page count are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractRules {
    /// CSS selector of the elements that carry an image URL (`IMAGE_SELECTOR`).
    pub image_selector: String,
    /// Attributes read on each element (`IMAGE_ATTRIBUTES`): `data-*` ones (what lazy
    /// loaders read) before the others; a name ending in `srcset` is parsed as a srcset.
    /// Among all candidates the largest wins; ties go to the earlier attribute.
    pub attributes: Vec<String>,
    /// Keep only URLs whose host contains this; empty keeps all (`IMAGE_HOST`).
    pub image_host: String,
    /// Element whose text states the page count, e.g. `Page 1 of 48`; empty disables
    /// clamping (`PAGE_COUNT_SELECTOR`).
    pub page_count_selector: String,
    /// What to do with `<a href>`s to image files (`LINKED_IMAGES`).
    pub linked_images: LinkedImages,
    /// Links that are images whatever their extension (`LINK_SELECTOR`); empty: none.
    pub link_selector: String,
    /// Elements whose `href` is the next listing page (`NEXT_SELECTOR`), so a walk can go
    /// on where no template numbers the pages; empty: a scan never finds one. `None`: the
    /// default rules ([`next`]), since most real pagers carry no `rel=next` and a CSS
    /// selector cannot say "a link whose text is Next, unless it is marked previous".
    pub next_selector: Option<String>,
    /// Links to a page per image, and what such a page yields (`DETAIL_*`).
    pub detail: DetailRules,
}

/// `LINKED_IMAGES`: what an `<a href>` to an image file means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkedImages {
    /// The link target is the image; a thumbnail inside the link is only its fallback.
    #[default]
    Prefer,
    /// The link target and the thumbnail are both downloaded.
    Both,
    /// Links are not images.
    Off,
}

/// A CSS selector, or a message naming `what` it was for and why it is not one.
pub fn parse_selector(css: &str, what: &str) -> Result<Selector, String> {
    Selector::parse(css).map_err(|e| {
        // Some of scraper's messages span lines; settings errors are one line.
        let why =
            e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(": ");
        format!("{what} {css:?} is not a valid CSS selector: {why}")
    })
}

/// A selector that may be off: empty (or blank) is `None`.
pub(super) fn optional_selector(css: &str, what: &str) -> Result<Option<Selector>, String> {
    match css.trim() {
        "" => Ok(None),
        css => parse_selector(css, what).map(Some),
    }
}
