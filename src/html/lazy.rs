//! Lazy attributes by shape: a `data-*` attribute outside `IMAGE_ATTRIBUTES` whose value
//! is shaped like an image's URL. Lazy loaders use names no list keeps up with
//! (`data-src1`, `data-source-standard`, `data-full`, `data-zoom-image`...), so where an
//! element offers no real image otherwise, its value's shape, not its name, says whether
//! it is one. Pure; the caller decides when to ask.

use super::srcset::{self, Candidate, Size};
use super::url_text::{ends_in_image_extension, looks_like_url};

/// The candidates `value` offers as an image, or none: one URL naming an image file
/// (`/big/a.jpg`, `//cdn/a.png?w=2`), or a srcset whose every candidate names an image
/// file or states a width (`a-300.jpg 300w, a-900.jpg 900w`). JSON, template text, prose
/// and links to pages (`/post/12`, `page.html`) are none. A name ending in `srcset` is
/// read as a srcset only.
pub fn image_candidates<'a>(name: &str, value: &'a str) -> Vec<Candidate<'a>> {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if !looks_like_url(value) {
        return Vec::new();
    }
    if !name.ends_with("srcset") && !value.contains(|c: char| c.is_ascii_whitespace()) {
        return if names_image_file(value) {
            vec![Candidate { url: value, size: Size::Density(1.0) }]
        } else {
            vec![]
        };
    }
    let candidates = srcset::parse(value);
    let shaped = |c: &Candidate<'_>| {
        looks_like_url(c.url) && (names_image_file(c.url) || matches!(c.size, Size::Width(_)))
    };
    if candidates.iter().all(shaped) { candidates } else { Vec::new() }
}

/// Whether a URL as written has an image file's extension, a query or fragment after it
/// allowed.
fn names_image_file(url: &str) -> bool {
    ends_in_image_extension(&url[..url.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(url.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls<'a>(name: &str, value: &'a str) -> Vec<&'a str> {
        image_candidates(name, value).into_iter().map(|c| c.url).collect()
    }

    #[test]
    fn image_urls_and_srcsets_are_taken() {
        assert_eq!(urls("data-src1", "/img/a.jpg"), ["/img/a.jpg"]);
        assert_eq!(
            urls("data-zoom-image", " https://cdn.example/a-big.PNG?w=2000 "),
            ["https://cdn.example/a-big.PNG?w=2000"]
        );
        assert_eq!(urls("data-full", "photo.webp#x"), ["photo.webp#x"]);
        assert_eq!(
            urls("data-bgset", "a-300.jpg 300w, /c_fill,w_900/a 900w"),
            ["a-300.jpg", "/c_fill,w_900/a"]
        );
        assert_eq!(urls("data-hi-srcset", "a.jpg"), ["a.jpg"]);
        assert_eq!(urls("data-pair", "a.jpg 1x, b.jpg 2x"), ["a.jpg", "b.jpg"]);
    }

    #[test]
    fn json_templates_prose_and_page_links_are_not() {
        for (name, value) in [
            ("data-gallery", r#"{"src": "/img/a.jpg"}"#),
            ("data-list", r#"["/img/a.jpg"]"#),
            ("data-tpl", "{{ image.url }}.jpg"),
            ("data-tpl", "/img/${id}.jpg"),
            ("data-href", "/posts/12"),
            ("data-link", "https://h.example/gallery/page.html"),
            ("data-caption", "A cat asleep, photo.jpg by me"),
            ("data-count", "12"),
            ("data-mode", "lazy"),
            ("data-srcset", "/posts/12 2x"),
        ] {
            assert_eq!(urls(name, value), Vec::<&str>::new(), "{name}={value:?}");
        }
    }
}
