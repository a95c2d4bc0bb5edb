//! The next listing page when `NEXT_SELECTOR` is not set: found as real pagers write it.
//! Most pagers that real software renders carry no `rel=next` (WordPress's
//! `a.next.page-numbers` and "Older posts", Bootstrap's `aria-label="Next"` with `»`,
//! MediaWiki's "next page", Blogger's `blog-pager-older-link`, `<li class="next">`), so a
//! walk that knew only `rel` stopped at page 1 on them. Pure: no actix, no config.
//!
//! In order, the first link that leads elsewhere wins:
//! 1. `rel=next` on an `<a>` or a `<link>`;
//! 2. an `<a>` marked next by its `class` or `id` (or those of an ancestor, up to two
//!    levels, that holds no other link), its `aria-label` or its `title`;
//! 3. an `<a>` whose text is next-like, in English or the usual words of other languages,
//!    or only an arrow (`›`, `»`, `→`).
//!
//! Never a link marked previous: `rel=prev`, a prev-like text, label or class (`newer`
//! counts as previous: blogs list the newest first). A link's own text says which way it
//! goes before its label and its classes do, since themes reuse classes for either side
//! (WordPress's `nav-next` holds "Newer posts" in one theme and "Next →" in another).

use ego_tree::NodeRef;
use scraper::{ElementRef, Html, Node, Selector};
use url::Url;

/// Which way a link goes, as far as its markup says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Next,
    Previous,
}

/// Phrases of a next link's text, label or title (lower case, spaces collapsed).
const NEXT_PHRASES: &[&str] = &[
    "next",
    "next page",
    "next posts",
    "next entries",
    "older",
    "older posts",
    "older entries",
    "older articles",
    "suivant",
    "suivante",
    "page suivante",
    "weiter",
    "nächste",
    "nächste seite",
    "siguiente",
    "página siguiente",
    "avanti",
    "successiva",
    "pagina successiva",
    "volgende",
    "volgende pagina",
    "próxima",
    "próximo",
    "próxima página",
    "следующая",
    "следующая страница",
    "далее",
    "次へ",
    "次のページ",
    "下一页",
    "下一頁",
    "다음",
    "다음 페이지",
    "następna",
    "nästa",
];

/// Phrases of a previous link's: never followed.
const PREVIOUS_PHRASES: &[&str] = &[
    "prev",
    "previous",
    "previous page",
    "prev page",
    "previous posts",
    "previous entries",
    "newer",
    "newer posts",
    "newer entries",
    "newer articles",
    "précédent",
    "précédente",
    "page précédente",
    "zurück",
    "vorherige",
    "vorherige seite",
    "anterior",
    "página anterior",
    "indietro",
    "precedente",
    "pagina precedente",
    "vorige",
    "vorige pagina",
    "предыдущая",
    "предыдущая страница",
    "назад",
    "前へ",
    "前のページ",
    "上一页",
    "上一頁",
    "이전",
    "이전 페이지",
    "poprzednia",
    "föregående",
];

const NEXT_ARROWS: &[char] = &['›', '»', '→', '≫', '⟶', '⇒', '▶', '►', '▸', '〉', '>'];
const PREVIOUS_ARROWS: &[char] = &['‹', '«', '←', '≪', '⟵', '⇐', '◀', '◄', '◂', '〈', '<'];

/// The default rules, with their selector parsed once.
#[derive(Debug)]
pub struct DefaultNext {
    links: Selector,
}

impl Default for DefaultNext {
    fn default() -> Self {
        Self { links: Selector::parse("a[href], link[href]").expect("static selector") }
    }
}

/// An `<a>` of the page, read once for steps 2 and 3.
struct Link<'a> {
    href: &'a str,
    /// Marked next by class, id, label or title.
    marked: bool,
    /// Which way its text (else label, else classes) says it goes.
    way: Option<Way>,
}

impl DefaultNext {
    /// The next page of `doc` by the module's rules: the first link, by the earliest
    /// step that finds one, that `resolve`s to a URL other than `here`. Texts and
    /// classes are read only when no `rel=next` leads anywhere, as on most pages that
    /// have one.
    pub fn find(&self, doc: &Html, here: &Url, resolve: impl Fn(&str) -> Option<Url>) -> Option<Url> {
        let links: Vec<ElementRef<'_>> =
            doc.select(&self.links).filter(|e| !in_template(*e) && !backwards(*e)).collect();
        let elsewhere = |href: &str| resolve(href).filter(|url| url != here);
        let rel_next = links.iter().filter(|e| has_rel(**e, "next"));
        if let Some(url) = rel_next.filter_map(|e| e.value().attr("href")).find_map(elsewhere) {
            return Some(url);
        }
        let read: Vec<Link<'_>> =
            links.into_iter().filter(|e| e.value().name() == "a").filter_map(read).collect();
        let marked = read.iter().filter(|l| l.marked && l.way != Some(Way::Previous));
        let worded = read.iter().filter(|l| l.way == Some(Way::Next));
        marked.map(|l| l.href).find_map(elsewhere).or_else(|| worded.map(|l| l.href).find_map(elsewhere))
    }
}

/// The words of a link's `rel` (ASCII case-insensitive, as HTML compares them).
fn rel_words(element: ElementRef<'_>) -> impl Iterator<Item = &str> {
    element.value().attr("rel").into_iter().flat_map(str::split_ascii_whitespace)
}

fn has_rel(element: ElementRef<'_>, word: &str) -> bool {
    rel_words(element).any(|t| t.eq_ignore_ascii_case(word))
}

/// A link never followed whatever else it says: `rel=prev`, or greyed out.
fn backwards(element: ElementRef<'_>) -> bool {
    rel_words(element).any(|t| t.eq_ignore_ascii_case("prev") || t.eq_ignore_ascii_case("previous"))
        || disabled(element)
}

/// What an `<a>` says about where it goes.
fn read(element: ElementRef<'_>) -> Option<Link<'_>> {
    let e = element.value();
    let href = e.attr("href")?;
    let text = short_text(element).and_then(|t| way_of_words(&t));
    let label =
        e.attr("aria-label").and_then(way_of_words).or_else(|| e.attr("title").and_then(way_of_words));
    let class = way_of_classes(element);
    let way = text.or(label).or(class);
    let marked = label == Some(Way::Next) || class == Some(Way::Next);
    Some(Link { href, marked, way })
}

/// Longer than any phrase with arrows around it: a title or a sentence, not a pager's.
const MAX_PHRASE_BYTES: usize = 64;

/// The link's text when it is short enough to be a pager's; `None` for longer text,
/// read no further. Most links of a gallery (a thumbnail, a caption) are one or the
/// other, and every link of a page without `rel=next` is read.
fn short_text(element: ElementRef<'_>) -> Option<String> {
    let mut text = String::new();
    for piece in element.text() {
        let piece = if text.is_empty() { piece.trim_start() } else { piece };
        if text.len() + piece.len() > MAX_PHRASE_BYTES * 2 {
            return None;
        }
        text.push_str(piece);
    }
    Some(text)
}

/// A pager's greyed-out link: `aria-disabled="true"`, or `disabled` in its or its
/// parent's class.
fn disabled(element: ElementRef<'_>) -> bool {
    let class_says = |e: ElementRef<'_>| e.value().classes().any(|c| c.eq_ignore_ascii_case("disabled"));
    element.value().attr("aria-disabled").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || class_says(element)
        || element.parent().and_then(ElementRef::wrap).is_some_and(class_says)
}

/// Which way a text, label or title says: a phrase of either list once the arrows and
/// punctuation around it are trimmed (`« Older Entries`, `Next ›`), or an arrow alone.
fn way_of_words(text: &str) -> Option<Way> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_PHRASE_BYTES {
        return None;
    }
    // Spaces collapsed and lower-cased in one pass.
    let mut folded = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !folded.is_empty() {
            folded.push(' ');
        }
        folded.extend(word.chars().flat_map(char::to_lowercase));
    }
    let text = folded;
    let core = text.trim_matches(|c: char| {
        c.is_whitespace() || NEXT_ARROWS.contains(&c) || PREVIOUS_ARROWS.contains(&c) || ".…:()[]".contains(c)
    });
    if core.is_empty() {
        let next = text.contains(NEXT_ARROWS);
        let previous = text.contains(PREVIOUS_ARROWS);
        return match (next, previous) {
            (true, false) => Some(Way::Next),
            (false, true) => Some(Way::Previous),
            _ => None,
        };
    }
    if NEXT_PHRASES.contains(&core) {
        Some(Way::Next)
    } else if PREVIOUS_PHRASES.contains(&core) {
        Some(Way::Previous)
    } else {
        None
    }
}

/// Which way the `class` and `id` of the link, or of an ancestor up to two levels that
/// holds no other link, say: a word (split at `-` and `_`) `next`, `older` or a
/// pagination plugin's `nextpostslink`; `prev`, `previous` or `newer` the other way.
/// WordPress's posts navigation puts the older posts, the next listing page, in
/// `nav-previous`, and the newer ones in `nav-next`.
fn way_of_classes(link: ElementRef<'_>) -> Option<Way> {
    let mut node = Some(*link);
    for level in 0..3 {
        let Some(element) = node.and_then(ElementRef::wrap) else { break };
        let e = element.value();
        let way = e.classes().chain(e.id()).find_map(way_of_name);
        if way.is_some() && (level == 0 || only_link(element)) {
            return way;
        }
        node = element.parent();
    }
    None
}

/// Which way one class or id says, any case.
fn way_of_name(name: &str) -> Option<Way> {
    let is = |word: &str, one_of: &[&str]| one_of.iter().any(|w| w.eq_ignore_ascii_case(word));
    if is(name, &["nav-previous"]) {
        return Some(Way::Next);
    }
    if is(name, &["nav-next"]) {
        return Some(Way::Previous);
    }
    name.split(['-', '_']).find_map(|word| {
        if is(word, &["next", "older", "nextpostslink", "nextpage"]) {
            Some(Way::Next)
        } else if is(word, &["prev", "previous", "newer", "previouspostslink", "prevpage"]) {
            Some(Way::Previous)
        } else {
            None
        }
    })
}

/// Whether `element` holds exactly one link: its marker then names that link alone.
fn only_link(element: ElementRef<'_>) -> bool {
    element.descendants().filter(|n| is_link(n)).take(2).count() == 1
}

fn is_link(node: &NodeRef<'_, Node>) -> bool {
    node.value().as_element().is_some_and(|e| e.name() == "a" && e.attr("href").is_some())
}

/// Elements in a `<template>` are inert, as for images.
fn in_template(element: ElementRef<'_>) -> bool {
    element.ancestors().filter_map(ElementRef::wrap).any(|a| a.value().name() == "template")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "https://site.example/list/page/2/";

    /// The next link `DefaultNext` finds on `html`, served at [`PAGE`].
    fn next(html: &str) -> Option<String> {
        let doc = crate::html::parse::document(html).html;
        let here = Url::parse(PAGE).unwrap();
        // As `Extractor::resolve`: http(s) only, no fragment.
        let resolve = |href: &str| {
            let mut url = here.join(href.trim()).ok().filter(|u| u.scheme().starts_with("http"))?;
            url.set_fragment(None);
            Some(url)
        };
        DefaultNext::default().find(&doc, &here, resolve).map(String::from)
    }

    // Each fixture is page 2 of 3 as the named software renders its pager, written from
    // its template: the previous link comes first where the software puts it first.

    #[test]
    fn wordpress_paginate_links() {
        // wp-includes/general-template.php, paginate_links() as the_posts_pagination()
        // (wp-includes/link-template.php) wraps it; the arrows of the older default texts.
        let html = r#"<nav class="navigation pagination" aria-label="Posts pagination">
            <h2 class="screen-reader-text">Posts pagination</h2><div class="nav-links">
            <a class="prev page-numbers" href="https://site.example/list/">&laquo; Previous</a>
            <a class="page-numbers" href="https://site.example/list/">1</a>
            <span aria-current="page" class="page-numbers current">2</span>
            <a class="page-numbers" href="https://site.example/list/page/3/">3</a>
            <a class="next page-numbers" href="https://site.example/list/page/3/">Next &raquo;</a></div></nav>"#;
        assert_eq!(next(html).as_deref(), Some("https://site.example/list/page/3/"));
    }

    #[test]
    fn wordpress_posts_navigation_in_any_language() {
        // wp-includes/link-template.php, get_the_posts_navigation(): older posts are the
        // next listing page, in `nav-previous`.
        for (older, newer) in [("Older posts", "Newer posts"), ("Ältere Beiträge", "Neuere Beiträge")] {
            let html = format!(
                r#"<nav class="navigation posts-navigation" aria-label="Posts"><h2 class="screen-reader-text">Posts navigation</h2>
                <div class="nav-links"><div class="nav-previous"><a href="/list/page/3/">{older}</a></div>
                <div class="nav-next"><a href="/list/">{newer}</a></div></div></nav>"#
            );
            assert_eq!(next(&html).as_deref(), Some("https://site.example/list/page/3/"), "{older}");
        }
        // Themes that put "Next" in nav-next (next_posts_link() there): the text decides.
        let html = r#"<div class="navigation"><div class="nav-next"><a href="/list/page/3/">Next <span class="meta-nav">&rarr;</span></a></div>
            <div class="nav-previous"><a href="/list/"><span class="meta-nav">&larr;</span> Previous</a></div></div>"#;
        assert_eq!(next(html).as_deref(), Some("https://site.example/list/page/3/"));
    }

    #[test]
    fn bootstrap_pagination_with_icons() {
        // Bootstrap's documentation, Pagination, "Working with icons", and "Disabled and
        // active states" for the last page.
        let pager = |n: u32, last: bool| {
            let next = if last {
                format!(
                    r#"<li class="page-item disabled"><a class="page-link" href="?page={n}" aria-disabled="true" aria-label="Next"><span aria-hidden="true">&raquo;</span></a></li>"#
                )
            } else {
                format!(
                    r#"<li class="page-item"><a class="page-link" href="?page={}" aria-label="Next"><span aria-hidden="true">&raquo;</span></a></li>"#,
                    n + 1
                )
            };
            format!(
                r#"<nav aria-label="Page navigation example"><ul class="pagination">
                <li class="page-item"><a class="page-link" href="?page={}" aria-label="Previous"><span aria-hidden="true">&laquo;</span></a></li>
                <li class="page-item active" aria-current="page"><a class="page-link" href="?page={n}">{n}</a></li>{next}</ul></nav>"#,
                n - 1
            )
        };
        assert_eq!(next(&pager(2, false)).as_deref(), Some("https://site.example/list/page/2/?page=3"));
        assert_eq!(next(&pager(3, true)), None, "the last page's greyed-out link");
    }

    #[test]
    fn mediawiki_category_pages() {
        // includes/category/CategoryViewer.php, pagingLinks(): the messages prev-page and
        // next-page in categoryviewer-pagedlinks, links titled with the category.
        let html = r#"<div id="mw-category-media"><h2>Media in category "Cats"</h2>
            <p>The following 200 files are in this category, out of 450 total.</p>
            (<a href="/index.php?title=Category:Cats&amp;fileuntil=Cat+201.jpg#mw-category-media" title="Category:Cats">previous page</a>)
            (<a href="/index.php?title=Category:Cats&amp;filefrom=Cat+400.jpg#mw-category-media" title="Category:Cats">next page</a>)</div>"#;
        assert_eq!(
            next(html).as_deref(),
            Some("https://site.example/index.php?title=Category:Cats&filefrom=Cat+400.jpg")
        );
    }

    #[test]
    fn blogger_older_posts() {
        // Blogger's Blog1 widget, the blog-pager block of its layouts templates.
        let html = r#"<div class="blog-pager" id="blog-pager">
            <span id="blog-pager-newer-link"><a class="blog-pager-newer-link" href="https://site.example/search?updated-max=2024-05-01T00:00:00-07:00&amp;max-results=7&amp;reverse-paginate=true" id="Blog1_blog-pager-newer-link" title="Newer Posts">Newer Posts</a></span>
            <span id="blog-pager-older-link"><a class="blog-pager-older-link" href="https://site.example/search?updated-max=2024-03-01T00:00:00-08:00&amp;max-results=7" id="Blog1_blog-pager-older-link" title="Older Posts">Older Posts</a></span>
            <a class="home-link" href="https://site.example/">Home</a></div>"#;
        assert_eq!(
            next(html).as_deref(),
            Some("https://site.example/search?updated-max=2024-03-01T00:00:00-08:00&max-results=7")
        );
    }

    #[test]
    fn catalogue_pager_with_li_next() {
        // A shop catalogue's pager (books.toscrape.com, the sandbox Scrapy's tutorial walks).
        let html = r#"<ul class="pager"><li class="current">Page 2 of 50</li>
            <li class="previous"><a href="page-1.html">previous</a></li>
            <li class="next"><a href="page-3.html">next</a></li></ul>"#;
        assert_eq!(next(html).as_deref(), Some("https://site.example/list/page/2/page-3.html"));
    }

    #[test]
    fn next_like_words_and_arrows() {
        for text in [
            "Next",
            "next ›",
            "Next page",
            "NEXT PAGE →",
            "« Older Entries",
            "Older posts",
            "›",
            "»",
            "→",
            "Suivant",
            "Weiter",
            "Nächste Seite",
            "Siguiente",
            "Avanti",
            "Volgende",
            "Próxima",
            "Следующая",
            "次へ",
            "下一页",
            "다음",
        ] {
            let html = format!(r#"<a href="/list/">Home</a> <a href="/list/page/3/">{text}</a>"#);
            assert_eq!(next(&html).as_deref(), Some("https://site.example/list/page/3/"), "{text:?}");
        }
        for text in
            ["Next: how we shot it", "Read more", "3", "»|", "Last »", "Newer posts", "‹ Previous", "«"]
        {
            let html = format!(r#"<a href="/list/page/3/">{text}</a>"#);
            assert_eq!(next(&html), None, "{text:?}");
        }
    }

    #[test]
    fn rel_then_marks_then_words_and_never_back_or_here() {
        // rel=next wins over a marked link before it; a marked link over a worded one.
        let html = r#"<a class="next" href="/b">x</a><a href="/c">Next</a><a rel="next" href="/a">2</a>"#;
        assert_eq!(next(html).as_deref(), Some("https://site.example/a"));
        let html = r#"<a href="/c">Next</a><span class="pager-next"><a href="/b">x</a></span>"#;
        assert_eq!(next(html).as_deref(), Some("https://site.example/b"));
        // Drupal's pager: the word `next` in a BEM class of the link's `<li>`.
        let html = r#"<li class="pager__item pager__item--next"><a href="?page=2" title="Go to next page"><span class="visually-hidden">Next page</span><span aria-hidden="true">››</span></a></li>"#;
        assert_eq!(next(html).as_deref(), Some("https://site.example/list/page/2/?page=2"));
        let html =
            r#"<li class="pager__item pager__item--next"><a href="?page=2"><img src="arrow.svg"></a></li>"#;
        assert_eq!(
            next(html).as_deref(),
            Some("https://site.example/list/page/2/?page=2"),
            "by the class alone"
        );
        // A marker on an ancestor names its link only when it holds no other.
        let html = r#"<div class="next-posts"><a href="/x">One</a><a href="/y">Two</a></div>"#;
        assert_eq!(next(html), None);
        // Marked previous, worded previous, the page itself, a template: never.
        for html in [
            r#"<a rel="prev" class="next" href="/b">Next</a>"#,
            r#"<a class="next" href="/b">Newer posts</a>"#,
            r#"<li class="next"><a href="/list/page/2/#top">next</a></li>"#,
            r#"<template><a class="next" href="/b">Next</a></template>"#,
            r#"<a class="next-arrow" href="javascript:void(0)">Next</a>"#,
        ] {
            assert_eq!(next(html), None, "{html}");
        }
    }
}
