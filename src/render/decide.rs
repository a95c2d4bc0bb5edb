//! Whether a page is rendered: `RENDER` and what its static HTML shows. Pure: the page's
//! text and what the extractor found in it, nothing else.

use serde::Deserialize;

/// `RENDER`: when listing and detail pages go through the browser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Never: the static path only, no browser needed.
    Never,
    /// When the static HTML gives no image, or holds an app shell or an infinite-scroll
    /// marker, and has scripts.
    #[default]
    Auto,
    /// Every page (`--render`).
    Always,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Never => "never",
            Policy::Auto => "auto",
            Policy::Always => "always",
        }
    }
}

/// Why a page is rendered, as the log and the report say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `RENDER: always` / `--render`.
    Always,
    /// Its HTML gives no image, and it has scripts that may build some.
    NoImages,
    /// Its HTML holds this app-shell or infinite-scroll marker.
    Marker(&'static str),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Always => f.write_str("RENDER is always"),
            Why::NoImages => f.write_str("its HTML has no image but has scripts"),
            Why::Marker(marker) => write!(f, "its HTML has {marker}"),
        }
    }
}

/// Markers of a page its scripts fill in: an app framework's empty mount point, or an
/// infinite-scroll or load-more widget. Each lower-cased, matched in lower-cased markup
/// outside `<script>` (a script that merely names a plugin marks nothing: measured on
/// real pages, `infiniteScroll` and `ng-app` in scripts and templates rendered pages whose
/// HTML already held every image), and each specific enough that a static gallery does
/// not carry it by chance.
const MARKERS: [(&str, &str); 11] = [
    ("<div id=\"app\"></div>", "an empty app mount point (#app)"),
    ("<div id=\"root\"></div>", "an empty app mount point (#root)"),
    ("<div id=\"__next\"></div>", "an empty Next.js mount point"),
    ("<div id=\"__nuxt\"></div>", "an empty Nuxt mount point"),
    ("<app-root></app-root>", "an empty Angular mount point"),
    ("data-infinite-scroll", "an infinite-scroll marker (data-infinite-scroll)"),
    ("infinite-scroll", "an infinite-scroll marker (infinite-scroll)"),
    ("class=\"load-more", "a load-more button (.load-more)"),
    ("id=\"load-more", "a load-more button (#load-more)"),
    ("class=\"loadmore", "a load-more button (.loadmore)"),
    ("id=\"loadmore", "a load-more button (#loadmore)"),
];

/// Whether and why to render a page whose static HTML is `html`, in which the
/// extractor found `images` images (and detail links). `None`: the static scan stands.
pub fn decide(policy: Policy, html: &str, images: usize) -> Option<Why> {
    match policy {
        Policy::Never => None,
        Policy::Always => Some(Why::Always),
        Policy::Auto => {
            let lower = html.to_ascii_lowercase();
            if !lower.contains("<script") {
                return None;
            }
            if images == 0 {
                return Some(Why::NoImages);
            }
            let without_space = compact(&without_scripts(&lower));
            MARKERS
                .iter()
                .find(|(marker, _)| without_space.contains(&compact(marker)))
                .map(|(_, why)| Why::Marker(why))
        }
    }
}

/// Lower-cased markup with the text of its `<script>` elements left out.
fn without_scripts(lower: &str) -> String {
    let mut out = String::with_capacity(lower.len());
    let mut rest = lower;
    while let Some(open) = rest.find("<script") {
        out.push_str(&rest[..open]);
        match rest[open..].find("</script") {
            Some(close) => rest = &rest[open + close + "</script".len()..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// The text with whitespace around `>` and `<` dropped, so `<div id="app"> </div>` is
/// the empty mount point it is.
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '>' {
            out.push(c);
            while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                chars.next();
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            let mut spaces = String::from(c);
            while let Some(&next) = chars.peek().filter(|c| c.is_ascii_whitespace()) {
                spaces.push(next);
                chars.next();
            }
            if chars.peek() != Some(&'<') {
                out.push_str(&spaces);
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_and_always_do_not_look_at_the_page() {
        assert_eq!(decide(Policy::Never, "<div id=app></div><script></script>", 0), None);
        assert_eq!(decide(Policy::Always, "<img src=a.jpg>", 1), Some(Why::Always));
    }

    #[test]
    fn auto_renders_a_scripted_page_with_no_image_or_with_a_marker() {
        assert_eq!(decide(Policy::Auto, "<body><script src=app.js></script>", 0), Some(Why::NoImages));
        let shell = "<body><div id=\"app\">\n  </div><img src=logo.png><script src=app.js></script>";
        assert!(matches!(decide(Policy::Auto, shell, 1), Some(Why::Marker(m)) if m.contains("#app")));
        let feed = "<div class=\"grid\" data-infinite-scroll='{}'><img src=a.jpg></div><script>x</script>";
        assert!(matches!(decide(Policy::Auto, feed, 1), Some(Why::Marker(_))));
        let more = "<img src=a.jpg><button id=\"load-more\">More</button><script>x</script>";
        assert!(matches!(decide(Policy::Auto, more, 1), Some(Why::Marker(_))));
    }

    #[test]
    fn a_marker_inside_a_script_marks_nothing() {
        let page = "<img src=a.jpg><script>$('.grid').infiniteScroll({path: '.next'}); x = 'infinite-scroll'</script>";
        assert_eq!(decide(Policy::Auto, page, 1), None);
        let after = "<script>x()</script><div class=\"feed infinite-scroll\"><img src=a.jpg></div>";
        assert!(matches!(decide(Policy::Auto, after, 1), Some(Why::Marker(_))));
    }

    #[test]
    fn auto_leaves_static_pages_and_pages_without_scripts_alone() {
        assert_eq!(decide(Policy::Auto, "<body><p>no images, no scripts</p>", 0), None);
        let gallery = "<div id=\"app\"><img src=a.jpg></div><script>analytics()</script>";
        assert_eq!(decide(Policy::Auto, gallery, 1), None);
        assert_eq!(decide(Policy::Auto, "<img src=a.jpg><script>x</script>", 1), None);
    }
}
