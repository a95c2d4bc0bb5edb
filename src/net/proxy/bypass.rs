//! `NO_PROXY`: which targets go direct although a proxy is set, by curl's grammar. Pure.
//!
//! A list of entries separated by commas (spaces around them are ignored, and a list of
//! only spaces between entries works too):
//!
//! - `*` alone: every target goes direct.
//! - a host name, optionally with a leading `.` or `*.`: that host and every host under
//!   it (`example.com` and `.example.com` both match `example.com` and `a.example.com`,
//!   never `badexample.com`). Case-insensitive; a trailing dot is ignored.
//! - an IP address (`10.1.2.3`, `::1`, `[::1]`): a target written as that address.
//! - a CIDR range (`10.0.0.0/8`, `fd00::/8`): a target written as an address in it.
//! - any of the above but `*` followed by `:PORT` (`[::1]:8080` for IPv6): only targets on
//!   that port (the scheme's default port counts).
//!
//! Names are never resolved: `localhost` does not match `127.0.0.1`, as in curl.

use std::net::IpAddr;

use url::{Host, Url};

/// The parsed list. Empty: nothing bypasses the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bypass {
    /// `*`: the proxy is never used (kept apart so matching need not look at entries).
    all: bool,
    /// Every other entry, in the order given (order does not matter: any match wins).
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    pattern: Pattern,
    /// `host:PORT`: the entry matches only this port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// Lower-case, without leading or trailing dots: the name and its subdomains.
    Suffix(String),
    /// An address or a range of them, as (network, prefix length): an address is a range
    /// of one.
    Range(IpAddr, u8),
}

impl Bypass {
    /// Parses a `NO_PROXY` value. Never fails: an entry that is neither an address nor a
    /// range is a host name, as curl takes it.
    pub fn parse(list: &str) -> Self {
        let mut bypass = Bypass::default();
        for raw in list.split(|c: char| c == ',' || c.is_whitespace()) {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            if raw == "*" {
                bypass.all = true;
                continue;
            }
            bypass.entries.push(Entry::parse(raw));
        }
        bypass
    }

    /// Whether the list sends nothing direct (none given).
    pub fn is_empty(&self) -> bool {
        !self.all && self.entries.is_empty()
    }

    /// Whether `url` goes direct.
    pub fn matches(&self, url: &Url) -> bool {
        if self.all {
            return true;
        }
        let Some(host) = url.host() else { return false };
        let port = url.port_or_known_default();
        self.entries.iter().any(|entry| entry.matches(&host, port))
    }
}

impl Entry {
    fn parse(raw: &str) -> Self {
        let (text, port) = split_port(raw);
        let pattern = match text.split_once('/') {
            Some((addr, bits)) => match (parse_ip(addr), bits.parse::<u8>()) {
                (Some(ip), Ok(bits)) if bits <= max_bits(ip) => Pattern::Range(ip, bits),
                _ => Pattern::Suffix(name(text)),
            },
            None => match parse_ip(text) {
                Some(ip) => Pattern::Range(ip, max_bits(ip)),
                None => Pattern::Suffix(name(text)),
            },
        };
        Entry { pattern, port }
    }

    fn matches(&self, host: &Host<&str>, port: Option<u16>) -> bool {
        if self.port.is_some() && self.port != port {
            return false;
        }
        match (&self.pattern, host) {
            (Pattern::Suffix(suffix), Host::Domain(domain)) => {
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                domain == *suffix
                    || domain.strip_suffix(suffix.as_str()).is_some_and(|head| head.ends_with('.'))
            }
            (Pattern::Range(net, bits), Host::Ipv4(ip)) => in_range(IpAddr::V4(*ip), *net, *bits),
            (Pattern::Range(net, bits), Host::Ipv6(ip)) => in_range(IpAddr::V6(*ip), *net, *bits),
            _ => false,
        }
    }
}

/// `host:8080` -> (`host`, 8080); `[::1]:8080` -> (`::1`, 8080); a bare IPv6 address has
/// no port (its colons are its own).
fn split_port(raw: &str) -> (&str, Option<u16>) {
    if let Some(rest) = raw.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((addr, tail)) => {
                let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
                // `[fd00::]/8`: the range's length follows the bracket.
                match tail.strip_prefix('/') {
                    Some(_) => (raw, None),
                    None => (addr, port),
                }
            }
            None => (raw, None),
        };
    }
    match raw.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (raw, None),
        },
        _ => (raw, None),
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    text.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// `*.Example.COM.` -> `example.com`
fn name(text: &str) -> String {
    text.trim_start_matches("*.").trim_matches('.').to_ascii_lowercase()
}

fn max_bits(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Whether `ip` is in `net`/`bits`. An IPv4 target never matches an IPv6 range and the
/// other way round, except an IPv4-mapped IPv6 target (`::ffff:10.0.0.1`), which is the
/// IPv4 address it maps.
fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(list: &str, url: &str) -> bool {
        Bypass::parse(list).matches(&Url::parse(url).unwrap())
    }

    #[test]
    fn the_grammar_table() {
        // (NO_PROXY, target, goes direct)
        let table = [
            ("", "http://example.com/", false),
            ("*", "http://example.com/", true),
            ("*", "https://10.0.0.1:8443/x", true),
            ("example.com", "http://example.com/", true),
            ("example.com", "http://a.b.example.com/", true),
            ("example.com", "http://badexample.com/", false),
            ("example.com", "http://example.com.evil.net/", false),
            (".example.com", "http://example.com/", true),
            (".example.com", "http://img.example.com/", true),
            ("*.example.com", "http://img.example.com/", true),
            ("EXAMPLE.com.", "http://Img.Example.COM./", true),
            ("other.org, example.com", "http://example.com/", true),
            ("other.org example.com", "http://example.com/", true),
            (" other.org ,, ", "http://example.com/", false),
            ("example.com:8080", "http://example.com:8080/", true),
            ("example.com:8080", "http://example.com/", false),
            ("example.com:80", "http://example.com/", true),
            ("example.com:443", "https://example.com/", true),
            ("127.0.0.1", "http://127.0.0.1:9000/", true),
            ("127.0.0.1", "http://127.0.0.2/", false),
            ("127.0.0.1", "http://localhost/", false),
            ("localhost", "http://127.0.0.1/", false),
            ("127.0.0.0/8", "http://127.9.8.7/", true),
            ("10.0.0.0/8", "http://11.0.0.1/", false),
            ("192.168.1.0/24", "http://192.168.1.200/", true),
            ("192.168.1.0/24", "http://192.168.2.1/", false),
            ("0.0.0.0/0", "http://8.8.8.8/", true),
            ("10.0.0.0/8", "http://10.example.com/", false),
            ("10.1.2.3:8080", "http://10.1.2.3:8080/", true),
            ("10.1.2.3:8080", "http://10.1.2.3:8081/", false),
            ("::1", "http://[::1]:8080/", true),
            ("[::1]", "http://[::1]/", true),
            ("[::1]:8080", "http://[::1]:8080/", true),
            ("[::1]:8080", "http://[::1]:9090/", false),
            ("fd00::/8", "http://[fd12::1]/", true),
            ("fd00::/8", "http://[fe80::1]/", false),
            ("[fd00::]/8", "http://[fd12::1]/", true),
            ("10.0.0.0/8", "http://[::ffff:10.1.1.1]/", true),
            ("::1", "http://127.0.0.1/", false),
            // Not a range (the length is out of bounds): a name that matches nothing real.
            ("10.0.0.0/33", "http://10.0.0.1/", false),
        ];
        for (list, url, expected) in table {
            assert_eq!(direct(list, url), expected, "NO_PROXY={list:?} for {url}");
        }
    }

    #[test]
    fn in_range_edges() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_range(ip("1.2.3.4"), ip("0.0.0.0"), 0));
        assert!(in_range(ip("1.2.3.4"), ip("1.2.3.4"), 32));
        assert!(!in_range(ip("1.2.3.5"), ip("1.2.3.4"), 32));
        assert!(in_range(ip("::2"), ip("::"), 0));
        assert!(in_range(ip("fd00::1"), ip("fd00::1"), 128));
    }

    proptest::proptest! {
        /// A name always matches itself and its subdomains, whatever the case and however
        /// the entry is written; a name that merely ends with it never does.
        #[test]
        fn a_name_matches_itself_and_below(
            name in "[a-z][a-z0-9]{0,8}(\\.[a-z][a-z0-9]{0,8}){0,3}",
            sub in "[a-z][a-z0-9]{0,8}",
            form in 0..3usize,
        ) {
            let entry = match form { 0 => name.clone(), 1 => format!(".{name}"), _ => format!("*.{name}") };
            let bypass = Bypass::parse(&entry);
            let url = |host: &str| Url::parse(&format!("https://{host}/")).unwrap();
            let (below, glued) = (format!("{sub}.{name}"), format!("{sub}{name}"));
            proptest::prop_assert!(bypass.matches(&url(&name.to_uppercase())));
            proptest::prop_assert!(bypass.matches(&url(&below)));
            proptest::prop_assert!(!bypass.matches(&url(&glued)));
        }

        /// An address is in a range exactly when its first `bits` bits are the network's.
        #[test]
        fn an_address_is_in_its_own_ranges(addr: u32, bits in 0u8..=32) {
            let ip = std::net::Ipv4Addr::from(addr);
            let url = Url::parse(&format!("http://{ip}/")).unwrap();
            let own = Bypass::parse(&format!("{ip}/{bits}"));
            proptest::prop_assert!(own.matches(&url));
            if bits > 0 {
                let flipped = std::net::Ipv4Addr::from(addr ^ (1 << (32 - u32::from(bits))));
                let other = Bypass::parse(&format!("{flipped}/{bits}"));
                proptest::prop_assert!(!other.matches(&url));
            }
        }
    }
}
