//! `srcset` as the HTML standard parses it ("parse a srcset attribute", WHATWG HTML
//! 4.8.4.3.10): a URL runs to the next whitespace, so commas inside it (common in CDN
//! URLs: `/c_fill,f_auto,w_320/x.jpg`, `?resize=198,178`) stay part of it; only commas
//! that end a URL or follow its descriptors separate candidates. A candidate with an
//! invalid descriptor list is dropped, never guessed at: a browser would not fetch it.

/// How big one candidate says it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// `480w`: the image's width in pixels.
    Width(u32),
    /// `2x`, or no descriptor (`1x`).
    Density(f64),
}

/// One candidate of a srcset: its URL (as written, unresolved) and its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate<'a> {
    pub url: &'a str,
    pub size: Size,
}

/// The HTML standard's ASCII whitespace; a non-breaking space is part of a URL.
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0C' | '\r' | ' ')
}

/// Every valid candidate of `input`, in order.
pub fn parse(input: &str) -> Vec<Candidate<'_>> {
    let mut out = Vec::new();
    let mut rest = input;
    loop {
        // Step 4: separators between candidates.
        rest = rest.trim_start_matches(|c| is_space(c) || c == ',');
        if rest.is_empty() {
            return out;
        }
        // Step 6: the URL is everything up to whitespace.
        let end = rest.find(is_space).unwrap_or(rest.len());
        let (raw_url, after) = rest.split_at(end);
        let url = raw_url.trim_end_matches(',');
        let descriptors = if url.len() != raw_url.len() {
            // Trailing commas end the candidate: no descriptors.
            rest = after;
            Vec::new()
        } else {
            let (descriptors, tail) = tokenize_descriptors(after);
            rest = tail;
            descriptors
        };
        if let Some(size) = size_of(&descriptors)
            && !url.is_empty()
        {
            out.push(Candidate { url, size });
        }
    }
}

/// Step 8 of the algorithm: descriptors up to a comma outside parentheses, or the end.
/// Returns them and what follows the comma.
fn tokenize_descriptors(input: &str) -> (Vec<&str>, &str) {
    let mut descriptors = Vec::new();
    let mut start: Option<usize> = None;
    let mut in_parens = false;
    for (i, c) in input.char_indices() {
        if in_parens {
            in_parens = c != ')';
            continue;
        }
        match c {
            ',' => {
                descriptors.extend(start.map(|s| &input[s..i]));
                return (descriptors, &input[i + 1..]);
            }
            c if is_space(c) => {
                descriptors.extend(start.take().map(|s| &input[s..i]));
            }
            '(' => {
                start.get_or_insert(i);
                in_parens = true;
            }
            _ => _ = start.get_or_insert(i),
        }
    }
    descriptors.extend(start.map(|s| &input[s..]));
    (descriptors, "")
}

/// Step 13: the size the descriptors give, or `None` when the list is invalid (two widths,
/// a width and a density, an unknown descriptor, `0w`, `-1x`, `h` without `w`).
fn size_of(descriptors: &[&str]) -> Option<Size> {
    let (mut width, mut density, mut height) = (None, None, None);
    for d in descriptors {
        let value = &d[..d.len() - d.chars().next_back()?.len_utf8()];
        match d.chars().next_back()? {
            'w' if width.is_none() && density.is_none() => width = Some(positive_integer(value)?),
            'x' if width.is_none() && density.is_none() && height.is_none() => {
                density = Some(non_negative_float(value)?);
            }
            'h' if height.is_none() && density.is_none() => height = Some(positive_integer(value)?),
            _ => return None,
        }
    }
    match (width, density, height) {
        (None, _, Some(_)) => None,
        (Some(w), _, _) => Some(Size::Width(w)),
        (None, Some(x), None) => Some(Size::Density(x)),
        (None, None, None) => Some(Size::Density(1.0)),
    }
}

/// A "valid non-negative integer" above zero: ASCII digits only, no sign.
fn positive_integer(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits beyond u32 are still a valid (huge) width.
    let n = text.parse::<u64>().map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32);
    (n > 0).then_some(n)
}

/// A "valid floating-point number" that is not negative: `-?(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?`.
/// Rust's own parser would also take `inf`, `NaN`, `+1` and `1.`, which the standard does not.
fn non_negative_float(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    let whole = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    } else if !whole {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(srcset: &str) -> Vec<&str> {
        parse(srcset).iter().map(|c| c.url).collect()
    }

    #[test]
    fn commas_inside_urls_stay_in_the_url() {
        // Cloudinary, Cloudflare Images, WordPress Photon.
        let cloudinary = "https://res.cloudinary.com/d/image/upload/c_fill,f_auto,w_320/x.jpg 320w, \
                          https://res.cloudinary.com/d/image/upload/c_fill,f_auto,w_960/x.jpg 960w";
        assert_eq!(
            parse(cloudinary),
            [
                Candidate {
                    url: "https://res.cloudinary.com/d/image/upload/c_fill,f_auto,w_320/x.jpg",
                    size: Size::Width(320)
                },
                Candidate {
                    url: "https://res.cloudinary.com/d/image/upload/c_fill,f_auto,w_960/x.jpg",
                    size: Size::Width(960)
                },
            ]
        );
        assert_eq!(
            urls(
                "/cdn-cgi/image/width=800,quality=75/x.jpg 800w,/cdn-cgi/image/width=400,quality=75/x.jpg 400w"
            ),
            ["/cdn-cgi/image/width=800,quality=75/x.jpg", "/cdn-cgi/image/width=400,quality=75/x.jpg"]
        );
        assert_eq!(
            urls(
                "https://i0.wp.com/s.example/a.jpg?resize=198,178&ssl=1 198w, https://i0.wp.com/s.example/a.jpg?w=600 600w"
            ),
            [
                "https://i0.wp.com/s.example/a.jpg?resize=198,178&ssl=1",
                "https://i0.wp.com/s.example/a.jpg?w=600"
            ]
        );
    }

    #[test]
    fn trailing_commas_end_a_candidate_and_separators_may_be_tight() {
        assert_eq!(urls("a.jpg,b.jpg 2x"), ["a.jpg,b.jpg"]);
        assert_eq!(urls("a.jpg,, b.jpg 2x"), ["a.jpg", "b.jpg"]);
        assert_eq!(urls("a.jpg 1x,b.jpg 2x"), ["a.jpg", "b.jpg"]);
        assert_eq!(urls("  ,, a.jpg\t1x ,\n b.jpg  2x  ,"), ["a.jpg", "b.jpg"]);
        assert_eq!(urls(""), Vec::<&str>::new());
        assert_eq!(urls(" , ,"), Vec::<&str>::new());
    }

    #[test]
    fn descriptors_are_checked_and_bad_candidates_dropped() {
        assert_eq!(parse("a.jpg")[0].size, Size::Density(1.0));
        assert_eq!(parse("a.jpg 1.5x")[0].size, Size::Density(1.5));
        assert_eq!(parse("a.jpg .5x")[0].size, Size::Density(0.5));
        assert_eq!(parse("a.jpg 1e1x")[0].size, Size::Density(10.0));
        assert_eq!(parse("a.jpg 300w 200h")[0].size, Size::Width(300));
        for bad in [
            "a.jpg 0w",
            "a.jpg -5w",
            "a.jpg +5w",
            "a.jpg 5.5w",
            "a.jpg -1x",
            "a.jpg 1.x",
            "a.jpg infx",
            "a.jpg NaNx",
            "a.jpg 200h",
            "a.jpg 1x 2x",
            "a.jpg 300w 2x",
            "a.jpg 2q",
            "a.jpg 1é",
            "a.jpg 300w 300w",
        ] {
            assert_eq!(urls(bad), Vec::<&str>::new(), "{bad}");
        }
        assert_eq!(urls("a.jpg 2q, b.jpg 2x"), ["b.jpg"]);
    }

    #[test]
    fn parentheses_keep_commas_and_spaces_inside_a_descriptor() {
        // Future-compatible syntax: `(a, b)` is one (unknown, so invalid) descriptor and
        // its comma does not split the candidate.
        assert_eq!(urls("a.jpg 1x (x, y), b.jpg 2x"), ["b.jpg"]);
        assert_eq!(urls("a.jpg (unclosed, b.jpg 2x"), Vec::<&str>::new());
    }

    #[test]
    fn huge_widths_saturate() {
        assert_eq!(parse("a.jpg 99999999999w")[0].size, Size::Width(u32::MAX));
    }
}
