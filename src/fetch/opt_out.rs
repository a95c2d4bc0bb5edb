//! Whether a response's `X-Robots-Tag` opts its image out of being collected, as Google
//! documents the header: comma-separated directives, those after an `agent:` prefix for
//! that agent only, several header lines each scoped on its own. Pure: the fetch core
//! asks it with the lines it got, before any byte of the body is stored.

/// The directives that keep an image out of a collection: `noai`/`noimageai` say it in
/// so many words (img2dataset honours them); `none` and `noindex` ask that the resource
/// not be kept by anyone who indexes, which a dataset is.
const OPT_OUTS: [&str; 4] = ["noai", "noimageai", "none", "noindex"];

/// Directives that carry a value after a colon: `unavailable_after: 2025-01-01` names no
/// agent.
const WITH_VALUE: [&str; 4] = ["unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"];

/// The first opt-out directive in `lines` (each an `X-Robots-Tag` header line) that
/// applies to every agent or to `agent`, lower-cased; `None` when the image may be kept.
pub fn opt_out<'l>(lines: impl IntoIterator<Item = &'l str>, agent: &str) -> Option<String> {
    lines.into_iter().find_map(|line| line_opt_out(line, agent))
}

fn line_opt_out(line: &str, agent: &str) -> Option<String> {
    // Until a prefix names an agent, a line speaks to all.
    let mut ours = true;
    for part in line.split(',') {
        let mut directive = part.trim();
        if let Some((before, after)) = directive.split_once(':') {
            let name = before.trim();
            if is_agent(name) {
                ours = name.eq_ignore_ascii_case(agent);
                directive = after.trim();
            }
        }
        let directive = directive.to_ascii_lowercase();
        if ours && OPT_OUTS.contains(&directive.as_str()) {
            return Some(directive);
        }
    }
    None
}

/// A product token before a colon, not a directive with a value nor a piece of a date
/// (`unavailable_after: Friday, 25-Jun-10 15:00:00 GMT` splits at its comma).
fn is_agent(name: &str) -> bool {
    !name.is_empty()
        && !WITH_VALUE.iter().any(|d| name.eq_ignore_ascii_case(d))
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: &str = "image-scraper";

    fn said(lines: &[&str]) -> Option<String> {
        opt_out(lines.iter().copied(), US)
    }

    #[test]
    fn each_opt_out_directive_for_everyone_is_honoured_in_any_case() {
        for directive in ["noai", "noimageai", "none", "noindex", "NoAI", " NOINDEX "] {
            assert_eq!(said(&[directive]), Some(directive.trim().to_ascii_lowercase()), "{directive}");
        }
        assert_eq!(said(&["nofollow, noimageai"]).as_deref(), Some("noimageai"));
        assert_eq!(said(&["all"]), None);
        assert_eq!(said(&["nofollow, noarchive, max-image-preview: large"]), None);
        assert_eq!(said(&[]), None);
        assert_eq!(said(&[""]), None);
    }

    #[test]
    fn an_agent_prefix_scopes_the_directives_after_it_on_its_line() {
        assert_eq!(said(&["image-scraper: noai"]).as_deref(), Some("noai"));
        assert_eq!(said(&["Image-Scraper: noindex, nofollow"]).as_deref(), Some("noindex"));
        assert_eq!(said(&["googlebot: noindex"]), None);
        // The prefix holds for the rest of its line...
        assert_eq!(said(&["googlebot: nofollow, noai"]), None);
        // ...until another names an agent...
        assert_eq!(said(&["googlebot: noai, image-scraper: none"]).as_deref(), Some("none"));
        // ...and only on its line: each header line starts again for everyone.
        assert_eq!(said(&["googlebot: noindex", "noimageai"]).as_deref(), Some("noimageai"));
        assert_eq!(said(&["image-scraper: nofollow", "otherbot: noai"]), None);
    }

    #[test]
    fn directives_with_a_value_name_no_agent() {
        assert_eq!(said(&["max-image-preview: none, noai"]).as_deref(), Some("noai"));
        assert_eq!(
            said(&["unavailable_after: Friday, 25-Jun-10 15:00:00 GMT, noindex"]).as_deref(),
            Some("noindex")
        );
        assert_eq!(said(&["unavailable_after: 2025-06-25"]), None);
        assert_eq!(said(&["max-snippet: 20"]), None);
    }
}
