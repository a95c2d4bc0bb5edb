//! Whether a page looks paged: a block named like a pager (`class="pagination"`,
//! `nav-links`, `pager`...) or links numbered in sequence (`1 2 3`). Asked only when no
//! next link was recognised, so a walk that ends at such a page can say that
//! `NEXT_SELECTOR` may be what is missing. A guess, for a hint: never a rule of the walk.

use scraper::{ElementRef, Html};

/// Words in a class or id that name a pager (lower case; matched inside each token).
const PAGER_WORDS: [&str; 7] =
    ["pagination", "pager", "paging", "nav-links", "pagenav", "page-numbers", "pag-"];

/// What looks like a pager on `doc`, in words (`<nav class="nav-links">`, `links numbered
/// 1, 2, 3`); `None` if nothing does.
pub fn pager(doc: &Html) -> Option<String> {
    let mut numbers = Vec::new();
    for node in doc.tree.nodes() {
        let Some(element) = ElementRef::wrap(node) else { continue };
        let e = element.value();
        for (attr, value) in [("class", e.attr("class")), ("id", e.attr("id"))] {
            let Some(value) = value else { continue };
            let named = value.split_ascii_whitespace().any(|token| {
                let token = token.to_ascii_lowercase();
                token == "pag" || PAGER_WORDS.iter().any(|word| token.contains(word))
            });
            if named {
                return Some(format!("<{} {attr}=\"{}\">", e.name(), value.trim()));
            }
        }
        if e.name() == "a"
            && e.attr("href").is_some()
            && let Ok(n) = element.text().collect::<String>().trim().parse::<u32>()
        {
            numbers.push(n);
        }
    }
    let in_sequence = numbers.windows(2).any(|pair| pair[1] == pair[0].wrapping_add(1));
    in_sequence.then(|| {
        let shown: Vec<String> = numbers.iter().take(5).map(u32::to_string).collect();
        format!("links numbered {}", shown.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(html: &str) -> Option<String> {
        pager(&Html::parse_document(html))
    }

    #[test]
    fn a_block_named_like_a_pager_is_one() {
        let wordpress = r#"<nav class="navigation pagination"><div class="nav-links">
            <span class="page-numbers current">1</span><a class="page-numbers" href="/page/2/">2</a>
            <a class="next" href="/page/2/">Older posts</a></div></nav>"#;
        assert_eq!(look(wordpress).unwrap(), r#"<nav class="navigation pagination">"#);
        assert_eq!(look(r#"<ul id="Pager"><li>more</li></ul>"#).unwrap(), r#"<ul id="Pager">"#);
        assert_eq!(look(r#"<li class="pag-text">Page 1 of 3</li>"#).unwrap(), r#"<li class="pag-text">"#);
    }

    #[test]
    fn links_numbered_in_sequence_are_one() {
        let html = r#"<p><a href="?p=1">1</a> <a href="?p=2">2</a> <a href="?p=3"> 3 </a></p>"#;
        assert_eq!(look(html).unwrap(), "links numbered 1, 2, 3");
    }

    #[test]
    fn ordinary_pages_are_not() {
        assert_eq!(look(r#"<div id="page" class="page-content"><img src="a.jpg"></div>"#), None);
        assert_eq!(look(r#"<a href="/2019">2019</a> <a href="/2021">2021</a><a href="/x">1</a>"#), None);
        assert_eq!(look(r#"<span>1</span><span>2</span>"#), None, "numbers that are not links");
    }
}
