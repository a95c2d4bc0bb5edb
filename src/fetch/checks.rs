//! What a response's status line and headers say before its body is read: a redirect's
//! target, a failure's status, a body that ended short, a size over the limit.

use url::Url;

use crate::task::TaskError;

/// Redirects a worker hands back rather than follows (see [`Done::Moved`]).
pub const MAX_REDIRECTS: u8 = 10;

/// Where a redirect response points: `None` for a status that is no redirect. The target
/// must be an http(s) URL; a redirect without a usable Location is a failure.
pub fn redirect_target(from: &Url, status: u16, location: Option<&str>) -> Result<Option<Url>, TaskError> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let location = location.ok_or_else(|| TaskError::status(status))?;
    let target = from.join(location.trim()).map_err(|_| TaskError::status(status))?;
    if !matches!(target.scheme(), "http" | "https") || target.host_str().is_none() {
        let shown: String = location.chars().take(80).collect();
        return Err(TaskError::RedirectNotHttp(shown));
    }
    Ok(Some(target))
}

/// 2xx is success; anything else (a 3xx that is no redirect we follow included) is a
/// failure carrying its status and the server's Retry-After.
pub fn check_status(status: u16, retry_after: Option<&str>) -> Result<(), TaskError> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let retry_after = retry_after.and_then(crate::fetch::validate::parse_retry_after);
        Err(TaskError::Status { code: status, retry_after })
    }
}

/// A body that ends before its Content-Length is truncated, not complete.
pub fn check_length(expected: Option<u64>, received: u64) -> Result<(), TaskError> {
    match expected {
        Some(n) if n != received => {
            Err(TaskError::Transfer(format!("body ended after {received} of {n} bytes")))
        }
        _ => Ok(()),
    }
}

/// Content-Length when it counts the bytes we save: not when the body was encoded (gzip,
/// br), since the decoded bytes are what is saved.
pub fn plain_length(content_encoding: Option<&str>, content_length: Option<&str>) -> Option<u64> {
    if !crate::fetch::decode::is_plain(content_encoding) {
        return None;
    }
    content_length?.trim().parse().ok()
}

/// Refuses an image whose announced size is over the limit before any byte is written.
pub fn check_announced_size(content_length: Option<u64>, max: u64) -> Result<(), TaskError> {
    match content_length {
        Some(n) if n > max => Err(TaskError::TooLarge(max)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_must_point_to_http() {
        let from = Url::parse("https://h.test/a/b.jpg").unwrap();
        let to = |status, location| redirect_target(&from, status, location);
        assert_eq!(to(200, Some("/x")), Ok(None));
        assert_eq!(to(302, Some("../c.jpg")).unwrap().unwrap().as_str(), "https://h.test/c.jpg");
        assert_eq!(to(301, Some("http://other.test/d")).unwrap().unwrap().as_str(), "http://other.test/d");
        for bad in ["ftp://h.test:21/x", "file:///etc/passwd", "data:image/png;base64,AA", "javascript:x"] {
            assert!(matches!(to(307, Some(bad)), Err(TaskError::RedirectNotHttp(_))), "{bad}");
        }
        assert_eq!(to(302, None), Err(TaskError::status(302)));
        assert_eq!(to(304, Some("/x")), Ok(None), "not a redirect to follow");
    }
}
