//! The plain-text list: one URL per line; blank lines and `#` comments (a
//! whole line, or after whitespace at the end of a line) are skipped, and a UTF-8 byte
//! order mark is dropped. A `#` inside a URL (no whitespace before it) is its fragment.
//!
//! Lists are written by hand in editors that add a BOM (Notepad), annotated, and fed
//! back from `--failed` and `--dry-run`; each of those must read back as it was meant.

use std::io::BufRead;

use super::{ListError, Position, Row, Source};

/// The rows of a plain-text list, a line at a time: the file is never held whole.
pub(super) fn rows(source: Source) -> impl Iterator<Item = Result<Row, ListError>> + Send {
    let Source { name, reader } = source;
    let mut lines = reader.lines();
    let mut line = 0u64;
    std::iter::from_fn(move || {
        loop {
            line += 1;
            let text = match lines.next()? {
                Ok(text) => text,
                Err(e) => return Some(Err(ListError::io(&name, line, e))),
            };
            let text = if line == 1 { text.strip_prefix('\u{feff}').unwrap_or(&text) } else { &text };
            let entry = strip_comment(text).trim();
            if !entry.is_empty() {
                let at = Position { file: name.clone(), row: line };
                return Some(Ok(Row { url: entry.to_string(), at, carried: None }));
            }
        }
    })
}

/// How many URLs the list holds, by one pass over its lines.
pub(super) fn count(source: Source) -> Result<u64, ListError> {
    let mut n = 0;
    for row in rows(source) {
        row?;
        n += 1;
    }
    Ok(n)
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

    /// What `rows` makes of `text`: each URL with its line number.
    fn list(text: &str) -> Vec<(u64, String)> {
        let source =
            Source { name: "l.txt".into(), reader: Box::new(std::io::Cursor::new(text.to_string())) };
        rows(source).map(|row| row.map(|r| (r.at.row, r.url)).unwrap()).collect()
    }

    fn want(pairs: &[(u64, &str)]) -> Vec<(u64, String)> {
        pairs.iter().map(|(n, url)| (*n, url.to_string())).collect()
    }

    #[test]
    fn blank_lines_and_comments_are_skipped() {
        let text = "# retry these\nhttp://h/a.jpg\n\n   \n  https://h/b.png  \n\t# indented comment\n";
        assert_eq!(list(text), want(&[(2, "http://h/a.jpg"), (5, "https://h/b.png")]));
    }

    #[test]
    fn a_comment_after_whitespace_ends_the_line_but_a_fragment_stays() {
        let text = "http://h/a.jpg   # the cat\nhttp://h/b.jpg#top\nhttp://h/c.jpg\t#tab\n";
        assert_eq!(
            list(text),
            want(&[(1, "http://h/a.jpg"), (2, "http://h/b.jpg#top"), (3, "http://h/c.jpg")])
        );
    }

    #[test]
    fn rows_stream_with_their_line_numbers() {
        let source = Source {
            name: "l.txt".into(),
            reader: Box::new(&b"\xef\xbb\xbfhttp://h/a\r\n\n# c\n x  # y\n"[..]),
        };
        let rows: Vec<_> = rows(source).map(Result::unwrap).collect();
        assert_eq!(
            rows.iter().map(|r| (r.at.to_string(), r.url.as_str())).collect::<Vec<_>>(),
            [("l.txt:1".to_string(), "http://h/a"), ("l.txt:4".to_string(), "x")]
        );
        assert!(rows.iter().all(|r| r.carried.is_none()));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_named() {
        let source = Source { name: "l.txt".into(), reader: Box::new(&b"http://h/a\nhttp://h/\xff\n"[..]) };
        let rows: Vec<_> = rows(source).collect();
        assert!(rows[0].is_ok());
        let e = rows[1].as_ref().unwrap_err().to_string();
        assert!(e.starts_with("l.txt:2: "), "{e}");
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        assert_eq!(
            list("\u{feff}http://h/a.jpg\r\nhttp://h/b.jpg\r\n"),
            want(&[(1, "http://h/a.jpg"), (2, "http://h/b.jpg")])
        );
        assert_eq!(list("\u{feff}# only a comment\n"), want(&[]));
    }
}
