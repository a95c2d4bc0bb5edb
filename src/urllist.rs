//! Pure: the `--urls` list format. One URL per line; blank lines and `#` comments (a
//! whole line, or after whitespace at the end of a line) are skipped, and a UTF-8 byte
//! order mark is dropped. A `#` inside a URL (no whitespace before it) is its fragment.
//!
//! Lists are written by hand in editors that add a BOM (Notepad), annotated, and fed
//! back from `--failed` and `--dry-run`; each of those must read back as it was meant.

use std::io::{self, BufRead};

/// The URL text on each line that holds one, with its 1-based line number (for errors),
/// read line by line from `reader` (a file, stdin): a list is never held whole.
pub fn read_entries<R: BufRead>(reader: R) -> impl Iterator<Item = io::Result<(u64, String)>> {
    reader.lines().enumerate().filter_map(|(n, line)| {
        let line = match line {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        let line = if n == 0 { line.strip_prefix('\u{feff}').unwrap_or(&line) } else { &line };
        let entry = strip_comment(line).trim();
        (!entry.is_empty()).then(|| Ok((n as u64 + 1, entry.to_string())))
    })
}

/// The line without its comment: from a `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..at];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> Vec<(u64, String)> {
        read_entries(text.as_bytes()).map(Result::unwrap).collect()
    }

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        let text = "# retry these\nhttp://h/a.jpg\n\n   \n  https://h/b.png  \n\t# indented comment\n";
        assert_eq!(list(text), [(2, "http://h/a.jpg".into()), (5, "https://h/b.png".into())]);
    }

    #[test]
    fn a_comment_after_whitespace_ends_the_line_but_a_fragment_stays() {
        let text = "http://h/a.jpg   # the cat\nhttp://h/b.jpg#top\nhttp://h/c.jpg\t#tab\n";
        assert_eq!(
            list(text),
            [(1, "http://h/a.jpg".into()), (2, "http://h/b.jpg#top".into()), (3, "http://h/c.jpg".into())]
        );
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        assert_eq!(
            list("\u{feff}http://h/a.jpg\r\nhttp://h/b.jpg\r\n"),
            [(1, "http://h/a.jpg".into()), (2, "http://h/b.jpg".into())]
        );
        assert_eq!(list("\u{feff}# only a comment\n"), []);
    }
}
