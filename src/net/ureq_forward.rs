//! Sync mode's plain forwarding through a proxy, for `http://` targets: the request goes
//! to the proxy in the absolute form (`GET http://host:port/p HTTP/1.1`), as curl and
//! async mode (`awc_proxy`) send it, instead of through a `CONNECT host:80` tunnel,
//! which tinyproxy's and squid's default configurations refuse.
//!
//! The ureq limitation this works around: ureq 3 has no forwarding proxy. Its
//! `ureq::Proxy` with an `http://` proxy always opens a CONNECT tunnel, whatever the
//! target's scheme; it writes only the origin form (`GET /p`), and the `http` 1.x `Uri` a
//! request is built from refuses a whole URL as its path. So this is an agent of its
//! own, built from ureq's unversioned parts (`Agent::with_parts`), one per proxy:
//!
//! - [`ProxyResolver`]: whatever the target, resolves the proxy. ureq resolves a
//!   request's host itself when the agent has no `ureq::Proxy` (this one has none); the
//!   target's name is the proxy's to resolve, as with curl, so a host only the proxy can
//!   resolve works.
//! - [`ForwardConnector`]: connects with ureq's own `TcpConnector` to those addresses
//!   (the proxy), and wraps the connection in a [`ForwardTransport`], which remembers
//!   the target's `http://host:port` from the connection details.
//! - [`ForwardTransport`]: rewrites each request head on its way out: the request
//!   line's origin-form target becomes the absolute form, and `Proxy-Authorization` is
//!   added when the proxy URL has credentials. Everything else passes through as is.
//!
//! ureq pools connections by the target's scheme and authority, so a pooled connection
//! to the proxy is only reused for the target it was opened for, and the origin the
//! transport remembers is always the request's.
//!
//! Only GET requests without a body are ever sent in sync mode (pages, images,
//! robots.txt), so every request is exactly its head: the transport refuses any other
//! method rather than learn where a body ends.

use std::fmt;
use std::io;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::http::uri::Scheme;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, NextTimeout, TcpConnector, Transport,
};

use crate::net::proxy::{Kind, Proxy};

/// A request head longer than this is not one of ours.
const MAX_HEAD: usize = 64 * 1024;

/// An agent that sends every (`http://`) request it is given to `proxy`, in the absolute
/// form. `config` must have no `ureq::Proxy` (it would tunnel).
pub fn agent(config: Config, proxy: &Proxy) -> Result<ureq::Agent, String> {
    // The proxy's name (`http://host:port`, brackets around an IPv6 address): no
    // credentials to carry around.
    let address: Uri = proxy.to_string().parse().map_err(|e| proxy.failure(format!("not a URI: {e}")))?;
    let connector = ForwardConnector { authorization: proxy.authorization.clone() };
    Ok(ureq::Agent::with_parts(config, connector, ProxyResolver { address }))
}

/// Resolves the proxy, whichever target a request names.
#[derive(Debug)]
struct ProxyResolver {
    /// `http://host:port` of the proxy.
    address: Uri,
}

impl Resolver for ProxyResolver {
    fn resolve(
        &self,
        _target: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        DefaultResolver::default().resolve(&self.address, config, timeout)
    }
}

/// Opens a TCP connection to the proxy (the addresses [`ProxyResolver`] gave) for an
/// `http://` target.
struct ForwardConnector {
    /// `Basic ...`, for `Proxy-Authorization`.
    authorization: Option<String>,
}

impl fmt::Debug for ForwardConnector {
    /// Never the credentials: Debug output may reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardConnector").field("credentials", &self.authorization.is_some()).finish()
    }
}

impl Connector<()> for ForwardConnector {
    type Out = ForwardTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _: Option<()>,
    ) -> Result<Option<ForwardTransport>, ureq::Error> {
        // An https target would go to the proxy in clear text: it is tunnelled instead,
        // by another agent (`workers::blocking::Agents`). Reaching here with one is a bug.
        if details.uri.scheme() != Some(&Scheme::HTTP) {
            return Err(other("only http:// targets are forwarded"));
        }
        let origin = origin_of(details.uri).ok_or_else(|| other("a target without a host"))?;
        let Some(tcp) = Connector::<()>::connect(&TcpConnector::default(), details, None)? else {
            return Ok(None);
        };
        Ok(Some(ForwardTransport {
            inner: Box::new(tcp),
            origin,
            authorization: self.authorization.clone(),
            head: Vec::new(),
        }))
    }
}

/// `http://host[:port]` of a target URI, as written (no user info).
fn origin_of(uri: &Uri) -> Option<String> {
    let authority = uri.authority()?.as_str();
    let host_port = authority.rsplit('@').next()?;
    (!host_port.is_empty()).then(|| format!("http://{host_port}"))
}

fn other(why: &str) -> ureq::Error {
    ureq::Error::Other(why.into())
}

/// A connection to the proxy that writes each request for it.
struct ForwardTransport {
    /// The TCP connection to the proxy.
    inner: Box<dyn Transport>,
    /// `http://host:port` of the target this connection was opened for.
    origin: String,
    /// `Basic ...`, for `Proxy-Authorization`.
    authorization: Option<String>,
    /// The head of the request being written, until it is whole: ureq may write a head
    /// in several pieces when its output buffer is small.
    head: Vec<u8>,
}

impl fmt::Debug for ForwardTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwardTransport").field("inner", &self.inner).field("origin", &self.origin).finish()
    }
}

impl Transport for ForwardTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    /// ureq wrote `amount` bytes of a request head into the output buffer: kept until
    /// the head is whole, then sent rewritten.
    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.head.extend_from_slice(&self.inner.buffers().output()[..amount]);
        if !self.head.ends_with(b"\r\n\r\n") {
            if self.head.len() > MAX_HEAD {
                return Err(other("a request head over 64 KiB"));
            }
            return Ok(());
        }
        let head = std::mem::take(&mut self.head);
        let head = for_proxy(&head, &self.origin, self.authorization.as_deref())?;
        let mut rest = head.as_slice();
        while !rest.is_empty() {
            let output = self.inner.buffers().output();
            let n = output.len().min(rest.len());
            if n == 0 {
                return Err(other("no output buffer"));
            }
            output[..n].copy_from_slice(&rest[..n]);
            self.inner.transmit_output(n, timeout)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        false
    }
}

/// `head` (`GET /p HTTP/1.1\r\n...\r\n\r\n`, as ureq writes it) as a proxy wants it:
/// `GET http://host:port/p HTTP/1.1`, then `Proxy-Authorization` when there are
/// credentials, then ureq's headers unchanged (`Host` among them).
fn for_proxy(head: &[u8], origin: &str, authorization: Option<&str>) -> Result<Vec<u8>, ureq::Error> {
    let malformed = || ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidInput, "not a request head"));
    let line_end = head.windows(2).position(|w| w == b"\r\n").ok_or_else(malformed)?;
    let line = std::str::from_utf8(&head[..line_end]).map_err(|_| malformed())?;
    let mut words = line.splitn(3, ' ');
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next()) else {
        return Err(malformed());
    };
    // A method with a body would need the body passed through after the head; sync mode
    // sends none (see the module's docs).
    if method != "GET" {
        return Err(other("only GET requests are forwarded"));
    }
    if !target.starts_with('/') {
        return Err(malformed());
    }
    let mut out = Vec::with_capacity(head.len() + origin.len() + 64);
    out.extend_from_slice(format!("{method} {origin}{target} {version}\r\n").as_bytes());
    if let Some(credentials) = authorization {
        out.extend_from_slice(format!("Proxy-Authorization: {credentials}\r\n").as_bytes());
    }
    out.extend_from_slice(&head[line_end + 2..]);
    Ok(out)
}

/// ureq's own `Proxy` for `proxy`: for an HTTP proxy, its `CONNECT` tunnel (every
/// target tunnelled: what S3 and https targets use); for SOCKS5, its SOCKS connector,
/// for every target. A SOCKS proxy is built field by field: the credentials as decoded
/// (ureq encodes them again for its URI), and where the target is resolved set
/// explicitly, by our `Kind` rather than by ureq's reading of a scheme.
pub fn ureq_proxy(proxy: &Proxy) -> Result<ureq::Proxy, String> {
    let (protocol, resolve_here) = match proxy.kind {
        Kind::Http => return ureq::Proxy::new(&proxy.url_for_client()).map_err(|e| proxy.failure(e)),
        Kind::Socks5 => (ureq::ProxyProtocol::Socks5, true),
        Kind::Socks5h => (ureq::ProxyProtocol::Socks5h, false),
    };
    let mut builder =
        ureq::Proxy::builder(protocol).host(&proxy.host).port(proxy.port).resolve_target(resolve_here);
    if let Some(credentials) = &proxy.credentials {
        builder = builder.username(&credentials.user).password(&credentials.password);
    }
    builder.build().map_err(|e| proxy.failure(e))
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    /// Through a real agent, to a one-request proxy on 127.0.0.1: the head it receives.
    /// The target's port has nothing behind it, so a request sent direct would fail.
    #[test]
    fn an_agent_sends_the_proxy_the_absolute_form_even_in_small_pieces() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy =
            Proxy::parse(&format!("http://u:p@127.0.0.1:{}", listener.local_addr().unwrap().port())).unwrap();
        let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push(line.trim_end().to_string());
            }
            let mut conn = conn;
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").unwrap();
            head
        });
        // A head in pieces of 64 bytes: kept until whole, sent rewritten in pieces too.
        let config = ureq::Agent::config_builder().output_buffer_size(64).proxy(None).build();
        let agent = agent(config, &proxy).unwrap();
        let target = format!("http://127.0.0.1:{dead}/gallery/p1/cats.html?page=1");
        let mut response = agent.get(&target).call().unwrap();
        assert_eq!(response.body_mut().read_to_string().unwrap(), "ok");
        let head = server.join().unwrap();
        assert_eq!(head[0], format!("GET {target} HTTP/1.1"));
        assert!(head.contains(&format!("Proxy-Authorization: {}", proxy.authorization.unwrap())), "{head:?}");
        assert!(head.iter().any(|h| h.eq_ignore_ascii_case(&format!("host: 127.0.0.1:{dead}"))), "{head:?}");
    }

    #[test]
    fn the_head_is_rewritten_to_the_absolute_form() {
        let head = b"GET /p1/cats.html?x=1&y=%20 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nuser-agent: t\r\n\r\n";
        let out = for_proxy(head, "http://127.0.0.1:8080", None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET http://127.0.0.1:8080/p1/cats.html?x=1&y=%20 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nuser-agent: t\r\n\r\n"
        );
        let out = for_proxy(b"GET / HTTP/1.1\r\nhost: h\r\n\r\n", "http://h", Some("Basic dTpw")).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET http://h/ HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\nhost: h\r\n\r\n"
        );
    }

    #[test]
    fn anything_but_a_bodiless_get_head_is_refused() {
        for head in
            [&b"POST /upload HTTP/1.1\r\nhost: h\r\n\r\n"[..], b"GET http://h/ HTTP/1.1\r\n\r\n", b"GET"]
        {
            assert!(for_proxy(head, "http://h", None).is_err(), "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn the_origin_is_the_targets_authority_as_written() {
        for (uri, origin) in [
            ("http://127.0.0.1:8080/a", "http://127.0.0.1:8080"),
            ("http://example.com/a", "http://example.com"),
            ("http://[::1]:9000/x", "http://[::1]:9000"),
            ("http://user:pw@example.com:81/", "http://example.com:81"),
        ] {
            assert_eq!(origin_of(&uri.parse().unwrap()).as_deref(), Some(origin), "{uri}");
        }
    }
}
