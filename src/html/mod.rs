//! Page HTML + page URL -> the images on it, one per image element, and the page count it
//! states.
//!
//! Pure and synchronous: `scraper::Html` is `!Send`, so a document is parsed and dropped
//! inside [`Extractor::scan`] and only owned URLs leave it. Never imports actix.
//!
//! The rules (docs/EXTRACTION.md says why each exists):
//! - one URL per image element: an `<img>` with its `<picture>`'s `<source>`s, or a
//!   `<picture>` alone, chooses among all their candidates ([`Extractor::choose`]);
//! - lazy-loading attributes (`data-*`) before `srcset`/`src`, any other `data-*` shaped
//!   like an image where those offer nothing real ([`lazy`]); placeholders last;
//!   values that are not URLs never;
//! - `<noscript>` read as markup; its image and its lazy twin beside it are one image;
//! - `<template>` is inert;
//! - an `<a href>` to an image file is an image, and replaces the thumbnail it wraps
//!   (`LINKED_IMAGES`), which stays as its fallback;
//! - a listing page's next link (`NEXT_SELECTOR`) and its links to a page per image
//!   (`DETAIL_SELECTOR`), whose thumbnails they replace; a detail page
//!   ([`Extractor::scan_detail`]) yields its largest image ([`detail`]).
//!
//! # Layout
//! One concern per file:
//! - `rules.rs`: what the settings say ([`ExtractRules`], [`LinkedImages`]) and their CSS
//!   selectors checked ([`parse_selector`]);
//! - `scan.rs`: what a scan hands out ([`PageScan`], [`Found`], [`Element`]);
//! - `extractor.rs`: [`Extractor`], the rules compiled once, and one scan of a page from
//!   parse to [`PageScan`];
//! - `walk.rs`: the walk over the tree in document order and its state (`TreeWalk`):
//!   images, links to image files, `<noscript>` twins, detail links, inert `<template>`s;
//! - `choose.rs`: the one URL an image element stands for, among its candidates;
//! - `url_text.rs`: judgements on URLs and text as written ([`host_matches`],
//!   [`has_image_extension`], [`last_number`]);
//! - [`detail`]: detail pages and their largest image; [`next`]: the default next-link
//!   rules; [`pager`]: whether a page looks paged; [`lazy`]: unlisted `data-*` attributes
//!   by shape; [`placeholder`]: spacer file names; [`srcset`]: the WHATWG srcset parser;
//!   [`parse`]: html5ever with the tree depth bounded;
//! - `fixtures.rs` (tests only): the rule sets and scan helpers the unit tests share.

mod choose;
pub mod detail;
mod extractor;
#[cfg(test)]
mod fixtures;
pub mod lazy;
pub mod next;
pub mod pager;
pub mod parse;
pub mod placeholder;
mod rules;
mod scan;
pub mod srcset;
mod url_text;
mod walk;

pub use detail::{DetailImages, DetailRules};
pub use extractor::Extractor;
pub use rules::{ExtractRules, LinkedImages, parse_selector};
pub use scan::{Element, Found, PageScan};
pub use url_text::{has_image_extension, host_matches, last_number};
