//! Is this response really an image, and when may we ask again? Pure; never imports
//! actix.

use std::time::{Duration, SystemTime};

/// Bytes [`check_image`] wants to see before deciding.
pub const SNIFF_BYTES: usize = 32;

/// Bytes at the end of a body [`check_complete`] looks at.
pub const TAIL_BYTES: usize = 4096;

/// Image formats whose end we can recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Other,
}

/// How [`check_image`] words a refusal, so [`is_page`] can tell a page from other refusals.
const SENT: &str = "the server sent ";
const HTML_BODY: &str = "the body is an HTML page";

/// Whether a [`check_image`] refusal says the answer was an HTML page (a link that only
/// looked like an image file, such as MediaWiki's `File:Name.jpg`).
pub fn is_page(reason: &str) -> bool {
    reason == HTML_BODY
        || reason.strip_prefix(SENT).is_some_and(|mime| matches!(mime, "text/html" | "application/xhtml+xml"))
}

/// Accepts a body as an image when its first bytes are a known image format, or, for a
/// format we do not know, when the server calls it `image/*`. Refuses what the server
/// labels as a document, and anything that starts like HTML: a `.jpg` full of an error
/// page is the classic silent failure of bulk downloaders.
pub fn check_image(content_type: Option<&str>, head: &[u8]) -> Result<Format, String> {
    let mime = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    let document = matches!(
        mime.as_str(),
        "text/html"
            | "application/xhtml+xml"
            | "application/json"
            | "text/plain"
            | "text/css"
            | "application/javascript"
            | "text/javascript"
    );
    if document {
        return Err(format!("{SENT}{mime}"));
    }
    if head.is_empty() {
        return Err("empty body".into());
    }
    if let Some(format) = sniff(head) {
        return match format {
            "html" => Err(HTML_BODY.into()),
            "jpeg" => Ok(Format::Jpeg),
            "png" => Ok(Format::Png),
            "gif" => Ok(Format::Gif),
            "webp" => Ok(Format::Webp),
            _ => Ok(Format::Other),
        };
    }
    if mime.starts_with("image/") {
        return Ok(Format::Other);
    }
    let shown = if mime.is_empty() { "no Content-Type".to_string() } else { mime };
    Err(format!("unknown format ({shown}, first bytes {})", crate::storage::hex(&head[..head.len().min(8)])))
}

/// The format the first bytes announce, if we know it.
fn sniff(head: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\xFF\xD8\xFF", "jpeg"),
        (b"\x89PNG\r\n\x1A\n", "png"),
        (b"GIF87a", "gif"),
        (b"GIF89a", "gif"),
        (b"BM", "bmp"),
        (b"II*\0", "tiff"),
        (b"MM\0*", "tiff"),
        (b"\0\0\x01\0", "ico"),
        (b"\xFF\x0A", "jxl"),
        (b"\0\0\0\x0CJXL \r\n\x87\n", "jxl"),
        (b"8BPS", "psd"),
    ];
    if let Some((_, name)) = SIGNATURES.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(name);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("webp");
    }
    // ISO base media: avif, heic.
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Some("isobmff");
    }
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{FEFF}').trim_start().to_ascii_lowercase();
    if text.starts_with("<svg") || (text.starts_with("<?xml") && !text.contains("<html")) {
        return Some("svg");
    }
    if text.starts_with("<!doctype")
        || text.starts_with("<html")
        || text.starts_with("<head")
        || text.starts_with("<body")
    {
        return Some("html");
    }
    None
}

/// For a body that came without a length to check it against: does it end the way its
/// format ends? A connection that breaks mid-image otherwise leaves a shorter file that
/// looks whole (awc 3 ends a chunked body at EOF without reporting the missing last
/// chunk). `len` is the body's length, `head` its first bytes, `tail` its last
/// [`TAIL_BYTES`] (or all of it).
pub fn check_complete(format: Format, len: u64, head: &[u8], tail: &[u8]) -> Result<(), String> {
    let complete = match format {
        // EOI; cameras may append data after it, so anywhere near the end will do.
        Format::Jpeg => tail.windows(2).any(|w| w == b"\xFF\xD9"),
        Format::Png => tail.windows(8).any(|w| w == b"IEND\xAE\x42\x60\x82"),
        Format::Gif => tail.last() == Some(&0x3B),
        // RIFF states the file's length.
        Format::Webp => {
            head.len() >= 8 && {
                let stated = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                len >= u64::from(stated) + 8
            }
        }
        Format::Other => true,
    };
    if complete {
        Ok(())
    } else {
        Err(format!("the {format:?} image ends early ({len} bytes): the transfer was cut"))
    }
}

/// `Retry-After` as seconds (`120`) or an HTTP date; `None` if unparseable. A date in the
/// past means "now".
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_that_mean_a_page_are_told_apart() {
        let page = |ct: Option<&str>, body: &[u8]| is_page(&check_image(ct, body).unwrap_err());
        assert!(page(Some("text/html; charset=utf-8"), b"<!DOCTYPE html>"));
        assert!(page(None, b"<!doctype html><html>"));
        assert!(!page(Some("application/json"), b"{}"));
        assert!(!page(Some("image/png"), b""));
    }

    #[test]
    fn known_formats_pass_whatever_the_label() {
        assert!(check_image(Some("image/jpeg"), b"\xFF\xD8\xFF\xE0rest").is_ok());
        assert!(check_image(None, b"\x89PNG\r\n\x1A\n....").is_ok());
        assert!(check_image(Some("application/octet-stream"), b"GIF89a...").is_ok());
        assert!(check_image(Some("binary/octet-stream"), b"RIFF\0\0\0\0WEBPVP8 ").is_ok());
        assert!(check_image(Some("image/svg+xml"), b"  <svg xmlns=").is_ok());
        assert!(check_image(Some("image/avif"), b"\0\0\0\x1cftypavif").is_ok());
    }

    #[test]
    fn documents_and_error_pages_fail_with_a_reason() {
        let e = check_image(Some("text/html; charset=utf-8"), b"\xFF\xD8\xFF").unwrap_err();
        assert_eq!(e, "the server sent text/html");
        let e = check_image(Some("image/jpeg"), b"<!DOCTYPE html><html>").unwrap_err();
        assert_eq!(e, "the body is an HTML page");
        let e = check_image(Some("application/octet-stream"), b"hello").unwrap_err();
        assert!(e.starts_with("unknown format (application/octet-stream"), "{e}");
        assert!(check_image(Some("image/jpeg"), b"").is_err());
    }

    #[test]
    fn unknown_formats_pass_when_labelled_as_images() {
        assert!(check_image(Some("image/x-exotic"), b"\x01\x02\x03").is_ok());
        assert!(check_image(None, b"\x01\x02\x03").is_err());
    }

    #[test]
    fn cut_images_are_recognised() {
        let jpeg = b"\xFF\xD8\xFF\xE0 data \xFF\xD9";
        assert!(check_complete(Format::Jpeg, 14, jpeg, jpeg).is_ok());
        assert!(check_complete(Format::Jpeg, 14, jpeg, b"\xFF\xD9 trailer an app added").is_ok());
        assert!(check_complete(Format::Jpeg, 10, jpeg, &jpeg[..10]).is_err());
        let png_end = b"\0\0\0\0IEND\xAE\x42\x60\x82";
        assert!(check_complete(Format::Png, 100, b"", png_end).is_ok());
        assert!(check_complete(Format::Png, 100, b"", &png_end[..10]).is_err());
        assert!(check_complete(Format::Gif, 100, b"", b"...\x3B").is_ok());
        assert!(check_complete(Format::Gif, 100, b"", b"...\x00").is_err());
        let webp = b"RIFF\x10\0\0\0WEBPVP8 ";
        assert!(check_complete(Format::Webp, 24, webp, b"").is_ok());
        let err = check_complete(Format::Webp, 20, webp, b"").unwrap_err();
        assert!(err.contains("ends early"), "{err}");
        assert!(check_complete(Format::Other, 1, b"?", b"?").is_ok());
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = parse_retry_after(&soon).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30), "{wait:?}");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
