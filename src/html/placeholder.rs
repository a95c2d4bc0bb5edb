//! Whether a URL as written names a placeholder: the spacer, blank or spinner a lazy
//! loader leaves in `src` until the real image loads. Judged by the file name's shape,
//! since no list of names keeps up with what sites call them (`placeholder-horizontal.gif`,
//! `blank_1x1.png`, `lazy_placeholder.svg`). Pure; `data:` URIs are judged by the caller.
//!
//! The rule: the file's stem (its name without the last extension), split into words at
//! `-`, `_` and `.`, is a placeholder when
//! - it is one of the tiny spacers' usual names (`spacer`, `grey`, `dot`, `clear`...), or
//! - one of its words says so whatever stands beside it (`placeholder`, `spacer`,
//!   `lazyload`, `1x1`: no photo is named that way), or
//! - one of its words hints so (`blank`, `lazy`, `loading`, `transparent`, `pixel`...)
//!   and every other word only describes a placeholder: another such word, a size
//!   (`16`, `300x200`, `2px`) or a plain word of shape, colour or kind (`horizontal`,
//!   `white`, `image`, `default`...).
//!
//! So `blank-canvas-painting.jpg` is a photo (`canvas` describes no placeholder) and
//! `loading-dock.jpg` too, while `blank_1x1.png` and `transparent-pixel.gif` are not.

/// Stems that name a tiny spacer on their own; too common inside real names to count as
/// words (`grey-heron.jpg`, `dot-matrix.png`).
const SPACER_STEMS: &[&str] = &["clear", "empty", "trans", "grey", "gray", "dot"];

/// Words no real picture's name holds: a stem with one is a placeholder.
const SURE_WORDS: &[&str] = &["placeholder", "placeholders", "spacer", "lazyload", "lazyloader", "1x1"];

/// Words that name placeholders but also real things (`blank canvas`, `lazy Sunday`,
/// `loading dock`): a stem with one is a placeholder only if nothing else in it is a
/// real subject.
const HINT_WORDS: &[&str] = &[
    "blank",
    "lazy",
    "load",
    "loading",
    "loader",
    "transparent",
    "pixel",
    "spinner",
    "empty",
    "clear",
    "trans",
    "dummy",
    "noimage",
    "nophoto",
];

/// Words that only describe a placeholder's shape, colour or kind.
const PLAIN_WORDS: &[&str] = &[
    "img",
    "image",
    "images",
    "photo",
    "pic",
    "picture",
    "thumb",
    "thumbnail",
    "icon",
    "bg",
    "background",
    "default",
    "generic",
    "no",
    "horizontal",
    "vertical",
    "landscape",
    "portrait",
    "square",
    "wide",
    "tall",
    "small",
    "medium",
    "large",
    "white",
    "black",
    "grey",
    "gray",
    "light",
    "dark",
    "gif",
    "png",
    "svg",
    "jpg",
    "webp",
    "min",
];

/// Whether the URL as written (relative or absolute, a query allowed) names a
/// placeholder by the module's rule.
pub fn is_placeholder(raw: &str) -> bool {
    let path = &raw[..raw.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(raw.len())];
    let name = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    // Asked for every candidate of every image: no allocation.
    let among = |word: &str, list: &[&str]| list.iter().any(|w| w.eq_ignore_ascii_case(word));
    if among(stem, SPACER_STEMS) {
        return true;
    }
    let words = || stem.split(['-', '_', '.']).filter(|w| !w.is_empty());
    if words().any(|w| among(w, SURE_WORDS)) {
        return true;
    }
    words().any(|w| among(w, HINT_WORDS))
        && words().all(|w| among(w, HINT_WORDS) || among(w, PLAIN_WORDS) || is_size(w))
}

/// `16`, `300x200`, `2px`, `2x`: a size, which a placeholder's name often carries.
fn is_size(word: &str) -> bool {
    let word = word.strip_suffix("px").or_else(|| word.strip_suffix("PX")).unwrap_or(word);
    let mut parts = word.split(['x', 'X']);
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), None, None) => digits(a),
        (Some(a), Some(b), None) => digits(a) && (b.is_empty() || digits(b)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_known_by_their_shape() {
        for raw in [
            "/img/spacer.gif?v=2",
            "blank.gif",
            "1x1.png",
            "grey.gif",
            "placeholder.png",
            "lazy.gif",
            "loading.gif",
            "/wp-content/plugins/x/placeholder-horizontal.gif",
            "//cdn.example/blank_1x1.png",
            "lazy_placeholder.svg",
            "Transparent-Pixel.GIF",
            "woocommerce-placeholder-300x300.png",
            "loading-spinner-64px.svg",
            "lazyload.min.gif",
            "img/blank-white.png#x",
        ] {
            assert!(is_placeholder(raw), "{raw} is a placeholder");
        }
    }

    #[test]
    fn real_names_with_such_words_are_photos() {
        for raw in [
            "blank-canvas-painting.jpg",
            "loading-dock.jpg",
            "lazy-sunday-afternoon.jpg",
            "grey-heron.jpg",
            "dot-matrix.png",
            "transparent-watercolour-wash.png",
            "pixel-art-castle.png",
            "/2020/05/IMG_1234.jpg",
            "clear-water.jpg",
            "spacers.jpg",
            "/spacer/photo.jpg",
        ] {
            assert!(!is_placeholder(raw), "{raw} is a photo");
        }
    }
}
