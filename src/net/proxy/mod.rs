//! Which proxy, if any, a request goes through: curl's conventions, pure. The clients'
//! sides are `workers/blocking.rs` (ureq) and `awc_proxy.rs` (awc); both ask
//! [`Proxies::for_url`] per request, so both modes route every URL the same way.
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
//! Which proxies: `http://` (a `CONNECT` tunnel for https targets, forwarding for http
//! ones), `socks5://` (we resolve the target and send its address) and `socks5h://` (the
//! proxy resolves the name we send), for both target schemes; SOCKS credentials are RFC
//! 1929's username/password. A setting that cannot be used (`https://`, `socks4://`, a
//! malformed URL) is an error at start only when it is certain to be used: it came from
//! `--proxy`/`PROXY`, or it is the environment's proxy for both target schemes with no
//! `no_proxy` list. Otherwise it is kept as an [`Unusable`] and only the requests that
//! would go through it fail ([`Proxies::check`]): a `socks4://` in `https_proxy` must not
//! stop a run that fetches only `http://` URLs.
//!
//! Imports no actix and no config: `config/net.rs` resolves a [`Proxies`] once, workers only
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

/// What a proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HTTP: `CONNECT` for https targets, the absolute form for http ones.
    Http,
    /// SOCKS5, the target resolved here and sent as an address (curl's `socks5://`).
    Socks5,
    /// SOCKS5, the target's name sent for the proxy to resolve (curl's `socks5h://`): a
    /// name only the proxy's side knows works.
    Socks5h,
}

/// A SOCKS5 username and password (RFC 1929), percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    /// Never the password: Debug output may reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({})", self.user)
    }
}

/// A proxy URL, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `http://host:port` or `socks5h://host:port`, without credentials: how errors and
    /// logs name the proxy, so a password never reaches a log or a report.
    name: String,
    pub kind: Kind,
    /// The URL with its credentials as given (percent-encoded), for ureq's own `Proxy`,
    /// which decodes them itself.
    url: Url,
    /// The host to connect to: a name, or an address without brackets.
    pub host: String,
    pub port: u16,
    /// `Basic ...` of the percent-decoded `user:password`, for `Proxy-Authorization`;
    /// `None` when the URL has no credentials or the proxy is not an HTTP one.
    pub authorization: Option<String>,
    /// A SOCKS proxy's username and password; `None` for an HTTP proxy or none given.
    pub credentials: Option<Credentials>,
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
    #[error("unsupported proxy scheme {0:?} (http://, socks5:// and socks5h:// proxies are)")]
    Unsupported(String),
}

/// A proxy setting that cannot be used, kept because no request may need it; what a
/// request through it fails with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    /// `environment https_proxy`, ...
    pub origin: Origin,
    pub error: ProxyError,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the proxy of {} cannot be used: {}; unset it or add this host to no_proxy",
            self.origin, self.error
        )
    }
}

/// A target scheme's proxy setting.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Setting {
    Usable(Proxy),
    Unusable(Unusable),
}

impl Proxy {
    /// Parses a proxy as curl takes it: `SCHEME://[user:password@]host[:port]`, the
    /// scheme `http`, `socks5` or `socks5h`, optional for `http` (`host:3128`), the port
    /// 1080 when absent.
    pub fn parse(raw: &str) -> Result<Self, ProxyError> {
        let raw = raw.trim();
        let (kind, with_scheme) = match raw.split_once("://") {
            Some((scheme, rest)) => {
                let kind = match scheme.to_ascii_lowercase().as_str() {
                    "http" => Kind::Http,
                    "socks5" => Kind::Socks5,
                    "socks5h" => Kind::Socks5h,
                    other => return Err(ProxyError::Unsupported(other.to_string())),
                };
                // The url crate knows no default port for socks: parse every kind as http
                // and keep the kind aside, so `:80` and the port rules stay one rule.
                (kind, format!("http://{rest}"))
            }
            None => (Kind::Http, format!("http://{raw}")),
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
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => {
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| ProxyError::Malformed("credentials are not UTF-8".into()))
                };
                Some(Credentials { user: decode(user)?, password: decode(password.unwrap_or(""))? })
            }
        };
        let (authorization, credentials) = match kind {
            Kind::Http => {
                let basic = |c: Credentials| {
                    let pair = format!("{}:{}", c.user, c.password);
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
                };
                (credentials.map(basic), None)
            }
            Kind::Socks5 | Kind::Socks5h => (None, credentials),
        };
        let authority = match url.host() {
            Some(url::Host::Ipv6(_)) => format!("[{host}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        let scheme = match kind {
            Kind::Http => "http",
            Kind::Socks5 => "socks5",
            Kind::Socks5h => "socks5h",
        };
        Ok(Proxy {
            name: format!("{scheme}://{authority}"),
            kind,
            url,
            host,
            port,
            authorization,
            credentials,
        })
    }

    /// The URL for ureq's own `Proxy` of an HTTP proxy (credentials included, port
    /// explicit). SOCKS proxies are given to ureq field by field (`net::ureq_forward::ureq_proxy`).
    pub fn url_for_client(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_port(Some(self.port));
        url.as_str().trim_end_matches('/').to_string()
    }

    /// Whether an `http://` target is sent to this proxy in the absolute form (an HTTP
    /// proxy forwards it); through SOCKS the request is written as to the server.
    pub fn forwards(&self, url: &Url) -> bool {
        self.kind == Kind::Http && url.scheme() == "http"
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
    http: Option<Setting>,
    /// For `https://` targets.
    https: Option<Setting>,
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
        let parse = |value: &str, origin: Origin| match Proxy::parse(value) {
            Ok(proxy) => Setting::Usable(proxy),
            Err(error) => Setting::Unusable(Unusable { origin, error }),
        };
        let (http, https) = match proxy {
            Some((value, _)) if value.trim().is_empty() => (None, None),
            Some((value, origin)) => {
                // Named for this run: an error now, whatever no_proxy says.
                let proxy = Proxy::parse(value).map_err(|e| (origin, e))?;
                (Some(Setting::Usable(proxy.clone())), Some(Setting::Usable(proxy)))
            }
            None => {
                let cgi = env(HTTP_PROXY_IN_CGI).is_some();
                let from = |vars: &[&str]| -> Option<Setting> {
                    let var =
                        vars.iter().find(|var| !(**var == "HTTP_PROXY" && cgi) && env(var).is_some())?;
                    Some(parse(&env(var).unwrap_or_default(), format!("environment {var}")))
                };
                (from(&HTTP_VARS), from(&HTTPS_VARS))
            }
        };
        // Every request would go through an unusable proxy: say so now rather than fail
        // each one.
        if let (Some(Setting::Unusable(u)), Some(Setting::Unusable(_))) = (&http, &https)
            && bypass.is_empty()
        {
            return Err((u.origin.clone(), u.error.clone()));
        }
        Ok(Proxies { http, https, bypass })
    }

    /// `url`'s scheme's setting, unless `url` bypasses proxies.
    fn setting(&self, url: &Url) -> Option<&Setting> {
        let setting = match url.scheme() {
            "http" => self.http.as_ref(),
            "https" => self.https.as_ref(),
            _ => None,
        }?;
        (!self.bypass.matches(url)).then_some(setting)
    }

    /// The proxy for `url`, or `None` when it goes direct (or would go through an
    /// unusable proxy: [`Proxies::check`] refuses those before any client sees them).
    pub fn for_url(&self, url: &Url) -> Option<&Proxy> {
        match self.setting(url)? {
            Setting::Usable(proxy) => Some(proxy),
            Setting::Unusable(_) => None,
        }
    }

    /// Whether `url` may be requested: not when its proxy is one that cannot be used.
    /// Asked before every request, so such a request fails (counted, with this reason)
    /// instead of going direct behind the user's back.
    pub fn check(&self, url: &Url) -> Result<(), &Unusable> {
        match self.setting(url) {
            Some(Setting::Unusable(unusable)) => Err(unusable),
            _ => Ok(()),
        }
    }

    /// Each distinct usable proxy: a client keeps one pool (ureq: one agent) per proxy.
    pub fn distinct(&self) -> impl Iterator<Item = &Proxy> {
        let http = usable(&self.http);
        let https = usable(&self.https).filter(|p| http != Some(*p));
        http.into_iter().chain(https)
    }

    /// Whether any request could go through a proxy (or fail for one).
    pub fn any(&self) -> bool {
        self.http.is_some() || self.https.is_some()
    }

    /// The settings that cannot be used, for a warning at start: a request through one
    /// fails.
    pub fn unusable(&self) -> impl Iterator<Item = &Unusable> {
        let (http, https) = (unusable(&self.http), unusable(&self.https));
        http.into_iter().chain(https.filter(|u| Some(*u) != http))
    }

    /// For the start-up log line: `http -> http://p:3128, https -> ...`; no credentials.
    pub fn describe(&self) -> String {
        let one = |s: &Option<Setting>| match s {
            None => "direct".to_string(),
            Some(Setting::Usable(p)) => p.name.clone(),
            Some(Setting::Unusable(u)) => format!("unusable ({})", u.origin),
        };
        format!("http: {}, https: {}", one(&self.http), one(&self.https))
    }
}

fn usable(setting: &Option<Setting>) -> Option<&Proxy> {
    match setting {
        Some(Setting::Usable(proxy)) => Some(proxy),
        _ => None,
    }
}

fn unusable(setting: &Option<Setting>) -> Option<&Unusable> {
    match setting {
        Some(Setting::Unusable(unusable)) => Some(unusable),
        _ => None,
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
            ("socks4://127.0.0.1:1080", true),
            ("socks4a://127.0.0.1:1080", true),
            ("https://proxy:443", true),
            ("socks5://", false),
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
        let err = Proxy::parse("socks4://u:secret@h:1").unwrap_err().to_string();
        assert!(err.contains("unsupported proxy scheme \"socks4\"") && !err.contains("secret"), "{err}");
    }

    #[test]
    fn socks5_proxies_with_and_without_remote_resolving() {
        let p = Proxy::parse("socks5h://127.0.0.1").unwrap();
        assert_eq!(
            (p.kind, p.port, p.to_string().as_str()),
            (Kind::Socks5h, 1080, "socks5h://127.0.0.1:1080")
        );
        let p = Proxy::parse("SOCKS5://us%40er:pa%3Ass@[::1]:9050").unwrap();
        assert_eq!((p.kind, p.host.as_str()), (Kind::Socks5, "::1"));
        assert_eq!(p.to_string(), "socks5://[::1]:9050", "no credentials in the name");
        let credentials = p.credentials.clone().unwrap();
        assert_eq!((credentials.user.as_str(), credentials.password.as_str()), ("us@er", "pa:ss"));
        assert_eq!(p.authorization, None, "no Proxy-Authorization: RFC 1929 instead");
        assert!(!format!("{credentials:?}").contains("pa:ss"));
        assert_eq!(Proxy::parse("socks5://h:80").unwrap().port, 80, "an explicit :80 is kept");
        let http = Url::parse("http://a/").unwrap();
        assert!(!p.forwards(&http), "through SOCKS a request is written as to the server");
        assert!(Proxy::parse("http://h:1").unwrap().forwards(&http));
        assert!(!Proxy::parse("http://h:1").unwrap().forwards(&Url::parse("https://a/").unwrap()));
    }

    #[test]
    fn an_unusable_proxy_fails_only_the_requests_that_would_use_it() {
        let p = resolve(None, None, &[("https_proxy", "socks4://h:1")]);
        assert!(p.check(&Url::parse("http://a/").unwrap()).is_ok(), "http targets do not use it");
        let refused = p.check(&Url::parse("https://a/").unwrap()).unwrap_err().to_string();
        assert!(
            refused.starts_with(
                "the proxy of environment https_proxy cannot be used: unsupported proxy scheme \"socks4\""
            ),
            "{refused}"
        );
        assert_eq!(name_for(&p, "https://a/"), None);
        assert_eq!(p.unusable().count(), 1);

        let vars = [("all_proxy", "https://h:1"), ("no_proxy", "localhost")];
        let p = resolve(None, None, &vars);
        assert!(p.check(&Url::parse("http://localhost:8080/").unwrap()).is_ok(), "no_proxy covers it");
        assert!(p.check(&Url::parse("http://example.com/").unwrap()).is_err());
        assert_eq!(p.unusable().count(), 1, "one setting, named once");
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
    fn a_bad_value_every_request_would_use_names_where_it_came_from() {
        let (origin, err) = Proxies::resolve(None, None, env(&[("ALL_PROXY", "socks4://h:1")])).unwrap_err();
        assert_eq!(origin, "environment ALL_PROXY");
        assert!(matches!(err, ProxyError::Unsupported(_)));
        let vars = [("http_proxy", "https://h:1"), ("HTTPS_PROXY", "socks4://h:1")];
        let (origin, _) = Proxies::resolve(None, None, env(&vars)).unwrap_err();
        assert_eq!(origin, "environment http_proxy");
        let (origin, _) =
            Proxies::resolve(Some(("socks4://h:1", "--proxy".into())), Some("*"), env(&[])).unwrap_err();
        assert_eq!(origin, "--proxy", "a proxy named for this run is checked whatever no_proxy says");
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
