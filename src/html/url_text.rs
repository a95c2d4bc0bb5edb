//! Judgements on URLs and text as written, before or instead of parsing them: whether a
//! value can be a URL at all, names an image file, passes the host filter; the page count
//! in a text. Cheap on purpose: they run on every attribute and link of a page.

use url::Url;

/// Whether a URL as written can name an image at all: not empty, not a `data:` URI (a
/// placeholder, never downloaded), not a bare fragment (the page itself).
pub(super) fn is_image_reference(raw: &str) -> bool {
    !raw.is_empty() && !raw.starts_with('#') && !raw.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("data:"))
}

/// Not a URL: JSON (`{"default": ...}`), a list, or template text (`{{ src }}`, `${x}`,
/// `<%= %>`), which pages leave in `data-*` attributes for their scripts.
pub(super) fn looks_like_url(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.is_empty() || matches!(b[0], b'{' | b'[') {
        return false;
    }
    let (mut dot_or_slash, mut marker) = (false, false);
    for &c in b {
        dot_or_slash |= c == b'.' || c == b'/';
        marker |= c == b'{' || c == b'<';
    }
    // Every template marker holds a `{` or a `<`: look closer only when one is there.
    dot_or_slash
        && !(marker && (raw.contains("{{") || raw.contains("{%") || raw.contains("${") || raw.contains("<%")))
}

/// Extensions of image files, for links (`<a href="full/photo.jpg">`).
const IMAGE_EXTENSIONS: &[&str] =
    &["jpg", "jpeg", "png", "gif", "webp", "avif", "bmp", "tif", "tiff", "svg", "heic"];

/// The host filter's rule, for `IMAGE_HOST` and `PAGE_HOST` alike: `url`'s host contains
/// `filter` (already lower-cased); an empty filter takes any host. A filter ending in a
/// port (`127.0.0.1:8080`) takes only that port too (the scheme's default when the URL
/// names none): two servers on one machine differ only by it.
pub fn host_matches(filter: &str, url: &Url) -> bool {
    if filter.is_empty() {
        return true;
    }
    let (host, port) = split_port(filter);
    url.host_str().is_some_and(|h| h.contains(host))
        && port.is_none_or(|port| url.port_or_known_default() == Some(port))
}

/// `host:port` -> (`host`, port); an IPv6 address needs its brackets (`[::1]:8080`) for
/// its last group not to be read as a port.
fn split_port(filter: &str) -> (&str, Option<u16>) {
    match filter.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && (!host.contains(':') || host.ends_with(']')) => {
            match port.parse() {
                Ok(port) => (host, Some(port)),
                Err(_) => (filter, None),
            }
        }
        _ => (filter, None),
    }
}

/// Whether the URL's path names an image file (a query may follow).
pub fn has_image_extension(url: &Url) -> bool {
    ends_in_image_extension(url.path())
}

pub(super) fn ends_in_image_extension(path: &str) -> bool {
    let name = &path[path.rfind('/').map_or(0, |i| i + 1)..];
    let Some(dot) = name.rfind('.') else { return false };
    let ext = name[dot + 1..].trim_end();
    (3..=4).contains(&ext.len()) && IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext))
}

/// A quick look at an `href` as written: could it name an image file? (The resolved URL
/// decides; this only spares resolving the links that plainly lead to pages.)
pub(super) fn names_an_image_file(href: &str) -> bool {
    let path = &href[..href.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(href.len())];
    // Percent-encoded dots and the like are left to the URL parser.
    ends_in_image_extension(path) || path.contains('%')
}

/// `Page 1 of 48` -> 48; `of 48` -> 48; no digits -> None.
pub fn last_number(text: &str) -> Option<u32> {
    let end = text.rfind(|c: char| c.is_ascii_digit())? + 1;
    // The character before the digits may be several bytes long (`共48页`).
    let start = text[..end].trim_end_matches(|c: char| c.is_ascii_digit()).len();
    text[start..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::fixtures::*;

    #[test]
    fn a_host_filter_with_a_port_takes_that_port_only() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(host_matches("127.0.0.1:8080", &url("http://127.0.0.1:8080/a.png")));
        assert!(!host_matches("127.0.0.1:8080", &url("http://127.0.0.1:9090/a.png")));
        assert!(!host_matches("127.0.0.1:8080", &url("http://127.0.0.1/a.png")));
        assert!(host_matches("example.com:443", &url("https://cdn.example.com/a.png")), "the default port");
        assert!(host_matches("127.0.0.1", &url("http://127.0.0.1:9090/a.png")), "no port: any port");
        assert!(host_matches("[::1]:8080", &url("http://[::1]:8080/a.png")));
        assert!(host_matches("::1", &url("http://[::1]:8080/a.png")), "no brackets: no port");
    }

    #[test]
    fn page_count_after_a_multibyte_character() {
        // Found by tests/it/props.rs: sliced inside `共` and panicked.
        assert_eq!(last_number("第1页 共48页"), Some(48));
        assert_eq!(last_number("¡0"), Some(0));
        let r = rules("img", &["src"], "");
        let s = scan(&r, r#"<li class="pag-text">第1页 共48页</li>"#, "http://h.example/");
        assert_eq!(s.page_count, Some(48));
    }
}
