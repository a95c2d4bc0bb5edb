//! The value each key takes when nothing sets it, apart from the checks: a reader asking
//! "what happens if I leave this out" finds the answer here, whichever concern checks the
//! key (the rendering keys' are with them in `render.rs`, and limits such as
//! `MAX_PAGE_LOOKAHEAD` with the check that enforces them).

pub use crate::fetch::options::{DEFAULT_MAX_IMAGE_BYTES, default_user_agent};

pub const DEFAULT_PAGE_PATH: &str = "p{page}/{item}.html";
/// `img` for the original's `<img src>`, `picture source` for `<picture>` sets.
pub const DEFAULT_IMAGE_SELECTOR: &str = "img, picture source";
/// What lazy loaders read (`data-*`: WP Rocket and Jetpack's `data-lazy-*`, lazysizes'
/// `data-src*`, jQuery lazyload's `data-original`, Slick's `data-lazy`, Flickity's
/// `data-flickity-lazyload`, WordPress's advertised original `data-orig-file`), then what
/// the browser reads. `data-*` ones come first whatever the
/// order; the order breaks ties between equally large candidates.
pub const DEFAULT_IMAGE_ATTRIBUTES: [&str; 12] = [
    "data-lazy-srcset",
    "data-srcset",
    "data-lazy-src",
    "data-src",
    "data-original",
    "data-hi-res-src",
    "data-lazy",
    "data-lazyload",
    "data-flickity-lazyload",
    "data-orig-file",
    "srcset",
    "src",
];
/// Any host: a site's images are often on a CDN of another name, and a filter that
/// guesses one finds nothing anywhere else (the seed's own is in the shipped
/// `settings.yaml`, next to its URL).
pub const DEFAULT_IMAGE_HOST: &str = "";
pub const DEFAULT_PAGE_COUNT_SELECTOR: &str = "li.pag-text";
pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_PER_HOST_CONCURRENCY: usize = 32;
pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;
pub const DEFAULT_OUT_DIR: &str = "images";
pub const DEFAULT_RETRIES: u32 = 3;
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 500;
pub const DEFAULT_RETRY_MAX_WAIT_SECS: f64 = 60.0;
/// The demo gallery's item when none is configured.
pub const DEMO_ITEM: &str = "cats";
