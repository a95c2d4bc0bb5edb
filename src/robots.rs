//! robots.txt as RFC 9309 reads it: the rules for our product token (or `*`), and the
//! Crawl-delay. Parsing is texting_robots' (tested against a large crawl corpus); this
//! is what a fetch outcome means, and which `User-agent:` lines name us. Never imports
//! actix.

use std::sync::Arc;
use std::time::Duration;

use texting_robots::Robot;
use url::Url;

/// The product token robots.txt groups are matched against.
pub const ROBOTS_AGENT: &str = "image-scraper";

/// A robots.txt body is read up to this much; RFC 9309 asks crawlers to parse at least
/// 500 KiB.
pub const MAX_ROBOTS_BYTES: u64 = 512 * 1024;

/// Redirects followed for robots.txt itself (RFC 9309 2.3.1.2 asks for at least five);
/// past them it counts as unavailable, like a 4xx.
pub const ROBOTS_REDIRECTS: usize = 5;

#[derive(Debug, Clone)]
pub enum Rules {
    /// No robots.txt (4xx), or --ignore-robots.
    AllowAll,
    /// The server failed (5xx) or could not be reached: RFC 9309 says assume complete
    /// disallow. Nothing is fetched there, and what was not fetched counts as failed, not
    /// skipped: a run that got nothing must not look like a success.
    Unreachable(String),
    Parsed(Arc<Robot>),
}

impl PartialEq for Rules {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Rules::AllowAll, Rules::AllowAll) => true,
            (Rules::Unreachable(a), Rules::Unreachable(b)) => a == b,
            (Rules::Parsed(a), Rules::Parsed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Rules {}

impl Rules {
    /// From a 2xx body. A body texting_robots cannot make sense of allows everything, as
    /// an empty file would.
    pub fn parse(body: &[u8]) -> Self {
        match Robot::new(ROBOTS_AGENT, &product_tokens(body)) {
            Ok(robot) => Rules::Parsed(Arc::new(robot)),
            Err(_) => Rules::AllowAll,
        }
    }

    pub fn allows(&self, url: &Url) -> bool {
        match self {
            Rules::AllowAll => true,
            Rules::Unreachable(_) => false,
            Rules::Parsed(robot) => robot.allowed(url.as_str()),
        }
    }

    pub fn crawl_delay(&self) -> Option<Duration> {
        match self {
            // Capped by the caller (RETRY_MAX_WAIT_SECS); this only keeps it a Duration.
            Rules::Parsed(robot) => {
                robot.delay.filter(|d| d.is_finite() && *d > 0.0).map(|d| Duration::from_secs_f32(d.min(1e9)))
            }
            _ => None,
        }
    }

    /// Why a URL is not fetched, for the report.
    pub fn refusal(&self) -> String {
        match self {
            Rules::Unreachable(why) => format!("robots.txt unreachable ({why})"),
            _ => "disallowed by robots.txt".into(),
        }
    }

    /// A refusal that is a failure of the run (robots.txt could not be read), not a
    /// site's wish.
    pub fn is_failure(&self) -> bool {
        matches!(self, Rules::Unreachable(_))
    }
}

/// The body with each `User-agent:` value cut to its product token, so that
/// texting_robots, which compares the whole lower-cased value, matches groups as RFC 9309
/// §2.2.1 asks and Google's open-source matcher does: `image-scraper/1.0` and
/// `Image-Scraper bar` name us. Its grouping stays the library's (several user-agent
/// lines per group, groups for one token merged). Lines are cut where the library cuts
/// them (`\n`, `\r`, and `\0`, which it reads as a line break), so no rule moves group.
fn product_tokens(body: &[u8]) -> Vec<u8> {
    // A byte order mark would hide the first line's key; the library drops it too.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|b| matches!(b, b'\n' | b'\r' | 0)) {
        let (text, end) = match line.last() {
            Some(b'\n' | b'\r' | 0) => line.split_at(line.len() - 1),
            _ => (line, &[][..]),
        };
        match user_agent_token(text) {
            Some(token) => {
                out.extend_from_slice(b"User-agent: ");
                out.extend_from_slice(token);
            }
            None => out.extend_from_slice(text),
        }
        out.extend_from_slice(end);
    }
    out
}

/// The product token of a `User-agent:` line (as texting_robots spells the key: any
/// case, `user-agent`, `user agent` or `useragent`, then `:` or a space), or `None` for
/// any other line and for a value with no token, which is left for the library as it is.
/// `*` followed by a space and more is the global group, as in Google's matcher.
fn user_agent_token(line: &[u8]) -> Option<&[u8]> {
    let line = line.trim_ascii_start();
    let key = [&b"user-agent"[..], b"user agent", b"useragent"]
        .into_iter()
        .find(|key| line.len() >= key.len() && line[..key.len()].eq_ignore_ascii_case(key))?;
    let rest = &line[key.len()..];
    let value = match rest.trim_ascii_start() {
        [b':', value @ ..] => value,
        value if value.len() < rest.len() => value,
        _ => return None,
    };
    let value = value.split(|b| *b == b'#').next().unwrap_or_default().trim_ascii();
    if value.first() == Some(&b'*') {
        return (value.len() == 1 || value[1].is_ascii_whitespace()).then_some(&value[..1]);
    }
    let end = value
        .iter()
        .position(|b| !(b.is_ascii_alphabetic() || matches!(b, b'-' | b'_')))
        .unwrap_or(value.len());
    (end > 0).then_some(&value[..end])
}

/// `https://host:port/robots.txt` for the origin of `url`.
pub fn robots_url(url: &Url) -> Option<Url> {
    let mut robots = url.clone();
    robots.host_str()?;
    robots.set_path("/robots.txt");
    robots.set_query(None);
    robots.set_fragment(None);
    let _ = robots.set_username("");
    let _ = robots.set_password(None);
    Some(robots)
}

/// The key robots.txt rules apply to: scheme, host and port, as a 128-bit hash. It is
/// looked up for every image; the serialised origin would be formatted and allocated
/// each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin(u128);

pub fn origin(url: &Url) -> Origin {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(url.scheme().as_bytes());
    hasher.update(b"://");
    hasher.update(url.host_str().unwrap_or_default().as_bytes());
    hasher.update(&url.port_or_known_default().unwrap_or(0).to_le_bytes());
    Origin(hasher.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn origin_is_scheme_host_and_port() {
        let o = |s| origin(&url(s));
        assert_eq!(o("http://H.test/a.jpg"), o("http://h.test:80/b/c.png?x"));
        assert_ne!(o("http://h.test/"), o("https://h.test/"));
        assert_ne!(o("http://h.test/"), o("http://h.test:8080/"));
        assert_ne!(o("http://h.test/"), o("http://g.test/"));
        assert_ne!(o("http://h.test:1/"), o("http://h.test1/"));
    }

    #[test]
    fn our_group_or_the_star_group_applies() {
        let txt = b"User-agent: *\nDisallow: /private\n\nUser-agent: image-scraper\nDisallow: /no-bots\nCrawl-delay: 2\n";
        let rules = Rules::parse(txt);
        assert!(!rules.allows(&url("http://h/no-bots/a.jpg")));
        assert!(rules.allows(&url("http://h/private/a.jpg")), "our own group replaces *");
        assert_eq!(rules.crawl_delay(), Some(Duration::from_secs(2)));
        let star = Rules::parse(b"User-agent: *\nDisallow: /private\nCrawl-delay: 0.5\n");
        assert!(!star.allows(&url("http://h/private/a.jpg")));
        assert!(star.allows(&url("http://h/public/a.jpg")));
        assert_eq!(star.crawl_delay(), Some(Duration::from_millis(500)));
    }

    /// Disallows `/ours` for the group `ua`, `/theirs` for everyone else.
    fn ours_or_star(ua: &str) -> Rules {
        Rules::parse(
            format!("User-agent: *\nDisallow: /theirs\n\nUser-agent: {ua}\nDisallow: /ours\n").as_bytes(),
        )
    }

    fn is_ours(rules: &Rules) -> bool {
        !rules.allows(&url("http://h/ours")) && rules.allows(&url("http://h/theirs"))
    }

    #[test]
    fn a_group_is_ours_by_its_product_token() {
        for ua in [
            "image-scraper",
            "image-scraper/1.0",
            "Image-Scraper bar",
            "IMAGE-SCRAPER/2 (+http://x)",
            "image-scraper # us",
        ] {
            assert!(is_ours(&ours_or_star(ua)), "{ua:?} names us");
        }
        for ua in [
            "image-scraper-bot",
            "image",
            "images-scraper/1.0",
            "image_scraper",
            "*image-scraper",
            "/image-scraper",
        ] {
            assert!(!is_ours(&ours_or_star(ua)), "{ua:?} is not us");
            assert!(!ours_or_star(ua).allows(&url("http://h/theirs")), "{ua:?}: the * group applies");
        }
        let crlf = Rules::parse(
            b"User-agent: *\r\nDisallow: /theirs\r\nuseragent image-scraper/1.0\r\nDisallow: /ours\r\n",
        );
        assert!(is_ours(&crlf), "CRLF and the key's other spellings");
        let bom = Rules::parse(b"\xEF\xBB\xBFUser-agent: image-scraper/1.0\nDisallow: /ours\n\nUser-agent: *\nDisallow: /theirs\n");
        assert!(is_ours(&bom), "a byte order mark before the first group");
    }

    #[test]
    fn groups_have_several_agents_and_merge_by_token() {
        let txt = b"User-agent: other\nUser-agent: image-scraper/1.0\nDisallow: /a\n\n\
            User-agent: *\nDisallow: /theirs\n\nUser-agent: Image-Scraper\nDisallow: /b\nCrawl-delay: 3\n";
        let rules = Rules::parse(txt);
        assert!(!rules.allows(&url("http://h/a/x.jpg")), "a group of several user-agent lines");
        assert!(!rules.allows(&url("http://h/b/x.jpg")), "the second group for our token is merged");
        assert!(rules.allows(&url("http://h/theirs/x.jpg")));
        assert_eq!(rules.crawl_delay(), Some(Duration::from_secs(3)));
        let star = Rules::parse(b"User-agent: * extra words\nDisallow: /theirs\n");
        assert!(!star.allows(&url("http://h/theirs")), "`*` and more is still the global group");
    }

    #[test]
    fn fetch_failures_mean_what_rfc_9309_says() {
        assert!(Rules::AllowAll.allows(&url("http://h/x")));
        let down = Rules::Unreachable("HTTP status 503".into());
        assert!(!down.allows(&url("http://h/x")));
        assert!(down.refusal().contains("503"));
        assert!(Rules::parse(b"\xFF\xFE garbage \0\0").allows(&url("http://h/x")));
    }

    #[test]
    fn robots_lives_at_the_origin() {
        let u = url("https://user:pw@h.example:8443/a/b.html?q=1#f");
        assert_eq!(robots_url(&u).unwrap().as_str(), "https://h.example:8443/robots.txt");
        assert_eq!(origin(&u), origin(&url("https://h.example:8443/robots.txt")));
    }
}
