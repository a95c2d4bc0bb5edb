//! robots.txt as RFC 9309 reads it: the rules for our product token (or `*`), and the
//! Crawl-delay. Parsing is texting_robots' (tested against a large crawl corpus); this
//! is what a fetch outcome means. Never imports actix.

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
        match Robot::new(ROBOTS_AGENT, body) {
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
