//! A response read the same way by every worker kind, whatever its HTTP client: which of
//! the client's header constants the fetch core's [`Header`](crate::fetch::Header) is,
//! and whose failure a 407 is.

use url::Url;

use crate::net::proxy::Proxy;
use crate::work::TaskError;

/// The client's own constant for a [`Header`](crate::fetch::Header), so no name is parsed
/// per response. A macro, not a function: ureq and awc name headers with two versions of
/// the `http` crate, whose constants are of different types. `$header` is the client's
/// `header` module.
macro_rules! header_name {
    ($name:expr, $($header:ident)::+) => {
        match $name {
            $crate::fetch::Header::Location => $($header)::+::LOCATION,
            $crate::fetch::Header::RetryAfter => $($header)::+::RETRY_AFTER,
            $crate::fetch::Header::ContentEncoding => $($header)::+::CONTENT_ENCODING,
            $crate::fetch::Header::ContentLength => $($header)::+::CONTENT_LENGTH,
            $crate::fetch::Header::ContentType => $($header)::+::CONTENT_TYPE,
            // No constant in `http`: one made at compile time, as the constants are.
            $crate::fetch::Header::XRobotsTag => $($header)::+::HeaderName::from_static("x-robots-tag"),
        }
    };
}
pub(crate) use header_name;

/// The response to a request sent through `proxy`, or the proxy's failure when it answered
/// 407 itself. Only a proxy that forwards the request (an `http://` target through an HTTP
/// proxy) answers 407 in place of the target; a tunnel's comes as the client's CONNECT
/// error, and no server's 407 is taken for the proxy's when none is in the way.
pub(crate) fn unless_proxy_refused<R>(
    response: R,
    status: u16,
    proxy: Option<&Proxy>,
    url: &Url,
) -> Result<R, TaskError> {
    match proxy {
        Some(proxy) if proxy.forwards(url) && status == 407 => {
            Err(TaskError::Connect(proxy.failure("answered 407 Proxy Authentication Required")))
        }
        _ => Ok(response),
    }
}
