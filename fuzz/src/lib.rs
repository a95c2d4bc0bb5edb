//! What every fuzz target checks, as panics: the same properties as
//! `tests/it/props.rs`, for inputs no generator thought of.

use std::path::{Component, Path};

use image_scraper::storage::{self, MAX_NAME_BYTES, OWN_PREFIX};
use url::Url;

/// Bidirectional controls and other invisible characters: in a name they make it look like
/// another one (a sample of Unicode's default-ignorable code points).
pub const INVISIBLE: &[char] = &[
    '\u{00AD}',
    '\u{061C}',
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{200E}',
    '\u{200F}',
    '\u{202A}',
    '\u{202B}',
    '\u{202C}',
    '\u{202D}',
    '\u{202E}',
    '\u{2060}',
    '\u{2063}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{3164}',
    '\u{115F}',
    '\u{180E}',
    '\u{FE0F}',
    '\u{FEFF}',
    '\u{E0041}',
];

/// A name from `storage::file_name` or `with_suffix`: lands directly inside the out dir,
/// is bounded, and reads as what it is.
pub fn assert_safe_name(name: &str) {
    assert!(!name.is_empty(), "empty name");
    assert!(name.len() <= MAX_NAME_BYTES, "{} bytes: {name:?}", name.len());
    assert!(name != "." && name != "..", "{name:?}");
    assert!(!name.starts_with('.') && !name.starts_with(OWN_PREFIX), "{name:?}");
    assert!(!name.ends_with(|c: char| c == '.' || c.is_whitespace()), "trailing dot or space: {name:?}");
    for c in name.chars() {
        assert!(!c.is_control(), "control {c:?} in {name:?}");
        assert!(!matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'), "{c:?} in {name:?}");
        assert!(!INVISIBLE.contains(&c), "invisible {c:?} in {name:?}");
    }
    let out = Path::new("/srv/out");
    let path = storage::destination(out, name);
    assert_eq!(path.parent(), Some(out), "{path:?} escapes");
    assert!(matches!(path.components().next_back(), Some(Component::Normal(n)) if n == name), "{path:?}");
}

/// An image URL `html::Extractor::scan` returned: fetchable over http(s), no fragment, and
/// on the host the filter asked for.
pub fn assert_image_url(url: &Url, host_filter: &str) {
    assert!(matches!(url.scheme(), "http" | "https"), "{url}");
    assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
    assert!(!url.cannot_be_a_base(), "{url}");
    assert_eq!(url.fragment(), None, "{url}");
    if !host_filter.is_empty() {
        assert!(url.host_str().unwrap().contains(host_filter), "{url} passed {host_filter:?}");
    }
}
