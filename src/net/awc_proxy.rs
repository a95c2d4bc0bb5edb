//! Async mode through a proxy. awc (3.11) has no proxy support at all: no setting, and
//! its connector always dials the target. This is the TCP connector the Downloader's
//! `awc::Connector` is built with (`Connector::connector`): per connection it asks
//! [`Proxies::for_url`] about the target and
//!
//! - dials the target itself (awc's own resolving connector) when no proxy applies;
//! - for an `https://` target, dials the proxy and opens a `CONNECT host:port` tunnel,
//!   over which awc then does TLS (and HTTP/2 when offered) with the target as usual;
//! - for an `http://` target, dials the proxy and hands the plain connection back: the
//!   Downloader then writes each request in the absolute form a forwarding proxy wants
//!   (see [`forward_uri`]). That is what curl does; CONNECT to port 80 is refused by
//!   tinyproxy's and squid's default configurations.
//! - through a SOCKS5 proxy, for either scheme, dials the proxy and does the SOCKS5
//!   handshake (tokio-socks, the crate reqwest's SOCKS support is built on): RFC 1929
//!   credentials when given, the target's name sent (`socks5h`) or resolved here and
//!   its address sent (`socks5`). The connection is then the target's: TLS over it for
//!   https, requests in the origin form for http.
//!
//! awc pools connections by the target's authority; a target's route is a pure function
//! of its scheme, host and port, so a pooled connection always went the way a new one
//! would (per proxy, never mixed with direct ones).
//!
//! awc times the whole call (`Connector::timeout`), so a proxy that accepts and never
//! answers the CONNECT costs one timeout, like a stalled server.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use actix_rt::net::TcpStream;
use actix_service::Service;
use actix_tls::connect::{
    ConnectError, ConnectInfo, Connection, Connector as TcpConnector, ConnectorService, Host, Resolver,
};
use awc::http::Uri;
use awc::http::uri::{Authority, Parts, PathAndQuery, Scheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

use tokio_socks::TargetAddr;
use tokio_socks::tcp::Socks5Stream;

use crate::net::proxy::{Kind, Proxies, Proxy, absolute_form, connect_authority, host_header};

/// A proxy's answer to CONNECT longer than this is not a proxy's answer.
const MAX_CONNECT_RESPONSE: usize = 16 * 1024;

/// awc's TCP connector, through a proxy where the run's rules say so.
#[derive(Clone)]
pub struct ProxyConnector {
    /// awc's default connector (resolve, then connect): for direct targets and to reach
    /// a proxy.
    tcp: ConnectorService,
    /// The run's rules, shared by every Downloader.
    proxies: Arc<Proxies>,
}

impl ProxyConnector {
    pub fn new(proxies: Arc<Proxies>) -> Self {
        Self { tcp: TcpConnector::new(Resolver::default()).service(), proxies }
    }
}

/// Where the proxy listens, as actix-tls's connector wants an address.
struct ProxyAddr {
    /// A name, or an address without brackets (what the resolver parses).
    host: String,
    port: u16,
}

impl Host for ProxyAddr {
    fn hostname(&self) -> &str {
        &self.host
    }

    fn port(&self) -> Option<u16> {
        Some(self.port)
    }
}

impl Service<ConnectInfo<Uri>> for ProxyConnector {
    type Response = Connection<Uri, TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let uri = req.request().clone();
        let target = target_of(&uri);
        let proxy = target.as_ref().and_then(|t| self.proxies.for_url(t)).cloned();
        let (Some(target), Some(proxy)) = (target, proxy) else {
            return Box::pin(self.tcp.call(req));
        };
        let tcp = self.tcp.clone();
        Box::pin(async move {
            let addr = ConnectInfo::new(ProxyAddr { host: proxy.host.clone(), port: proxy.port });
            let mut stream = tcp.call(addr).await.map_err(|e| unreachable(&proxy, e))?.into_parts().0;
            match proxy.kind {
                Kind::Socks5 | Kind::Socks5h => {
                    stream = socks5(stream, &proxy, &target).await.map_err(ConnectError::Io)?;
                }
                Kind::Http if target.scheme() == "https" => {
                    tunnel(&mut stream, &proxy, &target).await.map_err(ConnectError::Io)?;
                }
                Kind::Http => {}
            }
            Ok(Connection::new(uri, stream))
        })
    }
}

/// `scheme://authority/` of what awc is connecting to: all the rules look at.
fn target_of(uri: &Uri) -> Option<Url> {
    Url::parse(&format!("{}://{}/", uri.scheme_str()?, uri.authority()?)).ok()
}

/// A proxy that could not be reached: the error names it, keeping the kind (refused,
/// timed out) so it is classified as it would be for a server.
fn unreachable(proxy: &Proxy, err: ConnectError) -> ConnectError {
    // actix-tls's own text for an I/O error is only "I/O error": say which.
    let (kind, why) = match &err {
        ConnectError::Io(e) => (e.kind(), e.to_string()),
        other => (io::ErrorKind::Other, other.to_string()),
    };
    ConnectError::Io(io::Error::new(kind, proxy.failure(format!("cannot connect: {why}"))))
}

/// Asks `proxy` for a tunnel to `target`; anything but a 2xx answer is an error naming
/// the proxy and its status. Reads the answer's head only: a proxy sends nothing after
/// it until the client speaks (TLS's client hello comes first).
async fn tunnel(stream: &mut TcpStream, proxy: &Proxy, target: &Url) -> io::Result<()> {
    let authority = connect_authority(target);
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(credentials) = &proxy.authorization {
        head.push_str(&format!("Proxy-Authorization: {credentials}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;

    let fail = |what: String| io::Error::new(io::ErrorKind::ConnectionRefused, proxy.failure(what));
    let mut answer = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(fail(format!("closed the connection instead of answering CONNECT {authority}")));
        }
        answer.extend_from_slice(&chunk[..n]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let status_line = String::from_utf8_lossy(&answer[..end]);
            let status_line = status_line.lines().next().unwrap_or_default();
            let status = status_line.split(' ').nth(1).and_then(|code| code.parse::<u16>().ok());
            return match status {
                Some(200..=299) if end + 4 == answer.len() => Ok(()),
                Some(200..=299) => Err(fail("sent data into the tunnel before it was used".into())),
                Some(_) => {
                    let status = status_line.split_once(' ').map_or("", |(_, rest)| rest).trim();
                    Err(fail(format!("CONNECT {authority} answered {status}")))
                }
                None => Err(fail(format!("answered CONNECT {authority} with something not HTTP"))),
            };
        }
        if answer.len() > MAX_CONNECT_RESPONSE {
            return Err(fail(format!("answered CONNECT {authority} with a head over 16 KiB")));
        }
    }
}

/// A SOCKS5 handshake on `stream` (connected to `proxy`) for a connection to `target`;
/// the stream is then the target's. Failures name the proxy and the target.
async fn socks5(stream: TcpStream, proxy: &Proxy, target: &Url) -> io::Result<TcpStream> {
    let port = target.port_or_known_default().unwrap_or(443);
    let fail = |what: String| {
        io::Error::new(
            io::ErrorKind::ConnectionRefused,
            proxy.failure(format!("SOCKS5 to {}: {what}", connect_authority(target))),
        )
    };
    let addr: TargetAddr<'_> = match target.host() {
        Some(url::Host::Ipv4(ip)) => TargetAddr::Ip((ip, port).into()),
        Some(url::Host::Ipv6(ip)) => TargetAddr::Ip((ip, port).into()),
        Some(url::Host::Domain(name)) if proxy.kind == Kind::Socks5h => TargetAddr::Domain(name.into(), port),
        Some(url::Host::Domain(name)) => {
            // socks5://: the name is resolved here, the address sent (the first, as curl).
            let mut addrs = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| fail(format!("cannot resolve {name}: {e}")))?;
            TargetAddr::Ip(addrs.next().ok_or_else(|| fail(format!("{name} has no address")))?)
        }
        None => return Err(fail("a target without a host".into())),
    };
    let connected = match &proxy.credentials {
        Some(c) => Socks5Stream::connect_with_password_and_socket(stream, addr, &c.user, &c.password).await,
        None => Socks5Stream::connect_with_socket(stream, addr).await,
    };
    connected.map(Socks5Stream::into_inner).map_err(|e| match e {
        tokio_socks::Error::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            fail("closed the connection during the handshake".into())
        }
        e => fail(e.to_string().to_lowercase()),
    })
}

/// The URI awc sends `url` with when a proxy forwards it: its authority is the target's
/// (so `Host`, the pool and [`ProxyConnector`]'s choice go by the target), its
/// path-and-query is the whole URL. actix-http's h1 encoder writes
/// `uri.path_and_query()` as the request target (`GET /p HTTP/1.1`); with this URI it
/// writes the absolute form RFC 9112 section 3.2.2 asks of a request to a proxy
/// (`GET http://host/p HTTP/1.1`). No patch to awc or actix-http needed: the `http`
/// crate takes any path-and-query characters.
pub fn forward_uri(url: &Url) -> Option<Uri> {
    let mut parts = Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(Authority::try_from(host_header(url)).ok()?);
    parts.path_and_query = Some(PathAndQuery::try_from(absolute_form(url)).ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forward_uri_keeps_the_target_and_writes_the_absolute_form() {
        for raw in [
            "http://127.0.0.1:8080/p1/cats.html?x=1&y=%20#frag",
            "http://example.com/img/a%2Fb.jpg",
            "http://[::1]:9000/x",
        ] {
            let url = Url::parse(raw).unwrap();
            let uri = forward_uri(&url).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(uri.path_and_query().unwrap().as_str(), absolute_form(&url), "{raw}");
            assert_eq!(uri.authority().unwrap().as_str(), host_header(&url));
            assert_eq!(target_of(&uri).unwrap().host_str(), url.host_str());
        }
    }
}
