//! Which proxy, if any, a request goes through: curl's conventions, pure. The clients'
//! sides are `blocking.rs` (ureq) and `awc_proxy.rs` (awc); both ask [`Proxies::for_url`]
//! per request, so both modes route every URL the same way.
//!
//! Where the proxy comes from, first match wins:
//!
//! 1. `--proxy URL` (flag), then `PROXY` (settings file or `IMAGE_SCRAPER_PROXY`): one
//!    proxy for every target; an empty value means no proxy at all, whatever the
//!    environment says (curl's `--proxy ""`).
//! 2. The environment, per target scheme: `http_proxy` (then `HTTP_PROXY`, unless
//!    `REQUEST_METHOD` is set: see [`HTTP_PROXY_IN_CGI`]) for `http://` targets,
//!    `https_proxy` then `HTTPS_PROXY` for `https://` ones, and `all_proxy` then
//!    `ALL_PROXY` for either when its own is unset. An empty variable is unset.
//!
//! Targets that go direct anyway: `--noproxy LIST`, else `NO_PROXY` in the settings, else
//! `no_proxy` then `NO_PROXY` in the environment (grammar in [`bypass`]). They apply to
//! a `--proxy` proxy too, as in curl.
//!
//! Imports no actix and no config: `config.rs` resolves a [`Proxies`] once, workers only
//! read it.

pub mod bypass;

use std::fmt;

use base64::Engine as _;
use url::Url;

pub use self::bypass::Bypass;

/// Where `proxy_env` looks, in order, for a target's scheme. `HTTP_PROXY` is in the list
/// but skipped under CGI.
const HTTP_VARS: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];
const HTTPS_VARS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
const NO_PROXY_VARS: [&str; 2] = ["no_proxy", "NO_PROXY"];

/// Every variable this module reads, so settings loading can keep just these and tests
/// can clear them.
pub const ENV_VARS: [&str; 9] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    HTTP_PROXY_IN_CGI,
];

/// Set by a web server for a CGI program, which also turns a request's `Proxy:` header
/// into `HTTP_PROXY` ("httpoxy"): then upper-case `HTTP_PROXY` is not trusted, as Go's
/// net/http does. curl ignores upper-case `HTTP_PROXY` always; we read it outside CGI
/// because Docker, systemd units and most tools set the upper-case form.
pub const HTTP_PROXY_IN_CGI: &str = "REQUEST_METHOD";

/// curl's port for a proxy URL that names none.
pub const DEFAULT_PROXY_PORT: u16 = 1080;

/// An `http://` proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `http://host:port`, without credentials: how errors and logs name the proxy, so a
    /// password never reaches a log or a report.
    name: String,
    /// The URL with its credentials as given (percent-encoded), for ureq's own `Proxy`,
    /// which decodes them itself.
    url: Url,
    /// The host to connect to: a name, or an address without brackets.
    pub host: String,
    pub port: u16,
    /// `Basic ...` of the percent-decoded `user:password`, for `Proxy-Authorization`;
    /// `None` when the URL has no credentials.
    pub authorization: Option<String>,
}

impl fmt::Debug for Proxy {
    /// The name only: Debug output ends up in logs too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({})", self.name)
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Why a proxy setting was refused. The value itself is not repeated: it may hold a
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("not a proxy URL: {0}")]
    Malformed(String),
    #[error("unsupported proxy scheme {0:?} (only http:// proxies are supported)")]
    Unsupported(String),
}

impl Proxy {
    /// Parses a proxy as curl takes it: `http://[user:password@]host[:port]`, the scheme
    /// optional (`host:3128`), the port 1080 when absent.
    pub fn parse(raw: &str) -> Result<Self, ProxyError> {
        let raw = raw.trim();
        let with_scheme = match raw.split_once("://") {
            Some((scheme, _)) if !scheme.eq_ignore_ascii_case("http") => {
                return Err(ProxyError::Unsupported(scheme.to_ascii_lowercase()));
            }
            Some(_) => raw.to_string(),
            None => format!("http://{raw}"),
        };
        let url = Url::parse(&with_scheme).map_err(|e| ProxyError::Malformed(e.to_string()))?;
        let host = match url.host() {
            Some(url::Host::Domain(name)) if !name.is_empty() => name.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(ProxyError::Malformed("no host".into())),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(ProxyError::Malformed("a proxy URL has no path, query or fragment".into()));
        }
        let port = match url.port() {
            Some(port) => port,
            // The url crate drops a port equal to the scheme's default: `:80` was written.
            None if names_port(&with_scheme) => 80,
            None => DEFAULT_PROXY_PORT,
        };
        let authorization = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => {
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| ProxyError::Malformed("credentials are not UTF-8".into()))
                };
                let pair = format!("{}:{}", decode(user)?, decode(password.unwrap_or(""))?);
                Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)))
            }
        };
        let authority = match url.host() {
            Some(url::Host::Ipv6(_)) => format!("[{host}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        Ok(Proxy { name: format!("http://{authority}"), url, host, port, authorization })
    }

    /// The URL for ureq (credentials included, port explicit).
    pub fn url_for_client(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_port(Some(self.port));
        url.as_str().trim_end_matches('/').to_string()
    }

    /// A per-request failure that is the proxy's, naming it.
    pub fn failure(&self, what: impl fmt::Display) -> String {
        format!("proxy {}: {what}", self.name)
    }
}

/// Whether the authority of `url` (`scheme://[userinfo@]host[:port]...`) writes a port.
fn names_port(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    match host_port.rfind(']') {
        Some(end) => host_port[end + 1..].starts_with(':'),
        None => host_port.contains(':'),
    }
}

/// The run's proxies: one per target scheme (often the same), and what bypasses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// For `http://` targets.
    http: Option<Proxy>,
    /// For `https://` targets.
    https: Option<Proxy>,
    /// Targets that go direct although a proxy is set.
    bypass: Bypass,
}

/// Where a proxy setting came from (`--proxy`, `environment HTTPS_PROXY`, ...), for the
/// error naming it.
pub type Origin = String;

impl Proxies {
    /// No proxy: every request direct.
    pub fn none() -> Self {
        Self::default()
    }

    /// Resolves the run's proxies. `proxy` is `--proxy`/`PROXY` with where it came from
    /// (`Some("")`: no proxy); `no_proxy` likewise for `--noproxy`/`NO_PROXY`; `env` reads
    /// the process environment (given, so tests need not touch theirs).
    pub fn resolve(
        proxy: Option<(&str, Origin)>,
        no_proxy: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, (Origin, ProxyError)> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let from_env = || NO_PROXY_VARS.iter().find_map(|var| env(var));
        let bypass = Bypass::parse(&no_proxy.map(str::to_string).or_else(from_env).unwrap_or_default());
        let parse = |value: &str, origin: Origin| Proxy::parse(value).map_err(|e| (origin, e));
        let (http, https) = match proxy {
            Some((value, _)) if value.trim().is_empty() => (None, None),
            Some((value, origin)) => {
                let proxy = parse(value, origin)?;
                (Some(proxy.clone()), Some(proxy))
            }
            None => {
                let cgi = env(HTTP_PROXY_IN_CGI).is_some();
                let from = |vars: &[&str]| -> Result<Option<Proxy>, (Origin, ProxyError)> {
                    for var in vars {
                        if *var == "HTTP_PROXY" && cgi {
                            continue;
                        }
                        if let Some(value) = env(var) {
                            return parse(&value, format!("environment {var}")).map(Some);
                        }
                    }
                    Ok(None)
                };
                (from(&HTTP_VARS)?, from(&HTTPS_VARS)?)
            }
        };
        Ok(Proxies { http, https, bypass })
    }

    /// The proxy for `url`, or `None` when it goes direct.
    pub fn for_url(&self, url: &Url) -> Option<&Proxy> {
        let proxy = match url.scheme() {
            "http" => self.http.as_ref(),
            "https" => self.https.as_ref(),
            _ => None,
        }?;
        (!self.bypass.matches(url)).then_some(proxy)
    }

    /// Each distinct proxy: a client keeps one pool (ureq: one agent) per proxy.
    pub fn distinct(&self) -> impl Iterator<Item = &Proxy> {
        let https = self.https.as_ref().filter(|p| self.http.as_ref() != Some(*p));
        self.http.iter().chain(https)
    }

    /// Whether any request could go through a proxy.
    pub fn any(&self) -> bool {
        self.http.is_some() || self.https.is_some()
    }

    /// For the start-up log line: `http -> http://p:3128, https -> ...`; no credentials.
    pub fn describe(&self) -> String {
        let one = |p: &Option<Proxy>| p.as_ref().map_or_else(|| "direct".to_string(), |p| p.name.clone());
        format!("http: {}, https: {}", one(&self.http), one(&self.https))
    }
}

/// The request target of a request a proxy forwards (RFC 9112 section 3.2.2, the
/// absolute form): the whole URL, without its fragment (never sent).
pub fn absolute_form(url: &Url) -> String {
    let mut url = url.clone();
    url.set_fragment(None);
    url.into()
}

/// `Host` for `url`: its host, with the port when not the scheme's default.
pub fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// `CONNECT`'s target: `host:port`, the port always written.
pub fn connect_authority(url: &Url) -> String {
    format!("{}:{}", url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or(443))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    fn resolve(proxy: Option<&str>, no_proxy: Option<&str>, vars: &[(&str, &str)]) -> Proxies {
        Proxies::resolve(proxy.map(|p| (p, "--proxy".to_string())), no_proxy, env(vars)).unwrap()
    }

    fn name_for(proxies: &Proxies, url: &str) -> Option<String> {
        proxies.for_url(&Url::parse(url).unwrap()).map(|p| p.to_string())
    }

    #[test]
    fn parses_what_curl_takes() {
        let p = Proxy::parse("http://proxy.corp:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.authorization.as_ref()), ("proxy.corp", 3128, None));
        assert_eq!(p.to_string(), "http://proxy.corp:3128");
        let p = Proxy::parse("proxy.corp").unwrap();
        assert_eq!((p.to_string().as_str(), p.port), ("http://proxy.corp:1080", 1080), "curl's default port");
        assert_eq!(Proxy::parse("HTTP://Proxy.Corp:80/").unwrap().port, 80, "an explicit :80 is kept");
        assert_eq!(Proxy::parse("10.0.0.1:8080").unwrap().host, "10.0.0.1");
        let p = Proxy::parse("http://[::1]:3128").unwrap();
        assert_eq!((p.host.as_str(), p.to_string().as_str()), ("::1", "http://[::1]:3128"));
    }

    #[test]
    fn credentials_are_percent_decoded_and_never_named() {
        let p = Proxy::parse("http://us%20er:p%3Ass%40w@proxy:3128").unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("us er:p:ss@w");
        assert_eq!(p.authorization, Some(format!("Basic {expected}")));
        assert_eq!(p.to_string(), "http://proxy:3128");
        assert_eq!(format!("{p:?}"), "Proxy(http://proxy:3128)");
        assert!(!p.failure("x").contains("ss"));
        assert_eq!(p.url_for_client(), "http://us%20er:p%3Ass%40w@proxy:3128");
        let user_only = Proxy::parse("http://user@proxy:1").unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("user:");
        assert_eq!(user_only.authorization, Some(format!("Basic {expected}")));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for (raw, unsupported) in [
            ("socks5://127.0.0.1:1080", true),
            ("socks5h://127.0.0.1:1080", true),
            ("https://proxy:443", true),
            ("http://", false),
            ("http://proxy:99999", false),
            ("http://pro xy:1", false),
            ("http://proxy:1/path", false),
            ("http://[::1:1", false),
        ] {
            match Proxy::parse(raw) {
                Err(ProxyError::Unsupported(_)) => assert!(unsupported, "{raw}"),
                Err(ProxyError::Malformed(_)) => assert!(!unsupported, "{raw}"),
                Ok(p) => panic!("{raw} accepted as {p}"),
            }
        }
        let err = Proxy::parse("socks5://u:secret@h:1").unwrap_err().to_string();
        assert!(err.contains("unsupported proxy scheme \"socks5\"") && !err.contains("secret"), "{err}");
    }

    #[test]
    fn the_environment_by_curls_rules() {
        let vars = [
            ("http_proxy", "http://lower-http:1"),
            ("HTTP_PROXY", "http://upper-http:1"),
            ("HTTPS_PROXY", "http://upper-https:1"),
            ("ALL_PROXY", "http://all:1"),
        ];
        let p = resolve(None, None, &vars);
        assert_eq!(name_for(&p, "http://a/").as_deref(), Some("http://lower-http:1"), "lower case first");
        assert_eq!(name_for(&p, "https://a/").as_deref(), Some("http://upper-https:1"));
        assert_eq!(name_for(&p, "ftp://a/"), None);

        let p = resolve(None, None, &[("HTTP_PROXY", "http://upper-http:1")]);
        assert_eq!(name_for(&p, "http://a/").as_deref(), Some("http://upper-http:1"));
        assert_eq!(name_for(&p, "https://a/"), None, "HTTP_PROXY is for http:// targets only");

        let cgi = [("HTTP_PROXY", "http://from-a-header:1"), ("REQUEST_METHOD", "GET")];
        assert_eq!(name_for(&resolve(None, None, &cgi), "http://a/"), None, "httpoxy");

        let p = resolve(None, None, &[("all_proxy", "http://all:2"), ("https_proxy", "")]);
        assert_eq!(name_for(&p, "http://a/").as_deref(), Some("http://all:2"));
        assert_eq!(name_for(&p, "https://a/").as_deref(), Some("http://all:2"), "empty is unset");
    }

    #[test]
    fn the_flag_wins_and_empty_means_none() {
        let vars = [("http_proxy", "http://env:1"), ("https_proxy", "http://env:1")];
        let p = resolve(Some("flag:2"), None, &vars);
        assert_eq!(name_for(&p, "http://a/").as_deref(), Some("http://flag:2"));
        assert_eq!(name_for(&p, "https://a/").as_deref(), Some("http://flag:2"));
        let p = resolve(Some(""), None, &vars);
        assert!(!p.any());
        assert_eq!(name_for(&p, "http://a/"), None);
    }

    #[test]
    fn no_proxy_from_the_environment_or_overridden() {
        let vars = [("http_proxy", "http://p:1"), ("NO_PROXY", "example.com"), ("no_proxy", "other.org")];
        let p = resolve(None, None, &vars);
        assert_eq!(name_for(&p, "http://img.other.org/"), None, "lower-case no_proxy first");
        assert!(name_for(&p, "http://example.com/").is_some());
        let p = resolve(Some("flag:2"), None, &vars);
        assert_eq!(name_for(&p, "http://other.org/"), None, "the environment's list applies to --proxy");
        let p = resolve(None, Some("example.com"), &vars);
        assert_eq!(name_for(&p, "http://example.com/"), None);
        assert!(name_for(&p, "http://other.org/").is_some(), "--noproxy replaces the environment's list");
    }

    #[test]
    fn a_bad_value_names_where_it_came_from() {
        let (origin, err) =
            Proxies::resolve(None, None, env(&[("HTTPS_PROXY", "socks5://h:1")])).unwrap_err();
        assert_eq!(origin, "environment HTTPS_PROXY");
        assert!(matches!(err, ProxyError::Unsupported(_)));
        let (origin, _) = Proxies::resolve(Some(("http://", "--proxy".into())), None, env(&[])).unwrap_err();
        assert_eq!(origin, "--proxy");
    }

    #[test]
    fn request_lines() {
        let url = Url::parse("http://h.example:8080/a/b.jpg?x=1#frag").unwrap();
        assert_eq!(absolute_form(&url), "http://h.example:8080/a/b.jpg?x=1");
        assert_eq!(host_header(&url), "h.example:8080");
        assert_eq!(host_header(&Url::parse("http://h.example/").unwrap()), "h.example");
        assert_eq!(connect_authority(&Url::parse("https://h.example/").unwrap()), "h.example:443");
        assert_eq!(connect_authority(&Url::parse("https://[::1]:8443/").unwrap()), "[::1]:8443");
    }
}
