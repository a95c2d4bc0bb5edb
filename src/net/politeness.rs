//! Per-host manners shared by every worker of a run, whatever its kind or thread: a
//! request rate per host (governor), robots.txt's Crawl-delay, and a pause of the whole
//! host when it answers 429 or 503. `-p 8` means eight workers, not eight times the rate.
//!
//! How many requests a host has in flight is the Coordinator's business (it hands out
//! the tasks); this is about when each request may start. Never imports actix.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

type Limiter = RateLimiter<governor::state::NotKeyed, governor::state::InMemoryState, DefaultClock>;

/// What a [`SharedRate`] answers: a round trip to the other processes, awaited where the
/// worker waits (on an async worker's event loop, which goes on with its other requests
/// meanwhile), or done at once on a blocking worker's own thread.
pub type SharedAnswer<'a> = Pin<Box<dyn Future<Output = Option<Duration>> + 'a>>;

/// Spacing kept with other processes (a job shared through Redis): one start per
/// interval per host across all of them, and their pauses.
pub trait SharedRate: Send + Sync + std::fmt::Debug {
    /// Takes a start for `host` now if the last one anywhere was at least `interval` ago;
    /// else answers how long until one is free (zero: taken). `None`: the other processes
    /// cannot be asked (Redis does not answer).
    fn reserve<'a>(&'a self, host: &'a str, interval: Duration) -> SharedAnswer<'a>;
    /// The host said to slow down: no process sends to it for `wait`. Called from a
    /// retry's plan, which cannot wait: it sends and does not wait for the answer.
    fn pause(&self, host: &str, wait: Duration);
}

/// Told when a host's pause starts or grows (the log line and the bar), so a run waiting
/// on a 429 says so instead of looking frozen.
pub trait PauseWatch: Send + Sync {
    /// `host` gets nothing for `wait`, because of `reason` (`429 Retry-After`).
    fn paused(&self, host: &str, wait: Duration, reason: &str);
}

/// The shared gate; cheap to consult, one short lock per request.
#[derive(Debug)]
pub struct HostGate {
    /// The least time between two requests to one host (`DELAY_MS` or
    /// `REQUESTS_PER_SECOND`); `None`: no rate limit.
    interval: Option<Duration>,
    /// Up to this much is added at random to each wait, so requests do not march in
    /// lockstep.
    jitter: Duration,
    clock: DefaultClock,
    hosts: Mutex<HashMap<String, Host>>,
    /// Other processes of a shared job: their starts count too.
    shared: Option<Box<dyn SharedRate>>,
    /// Told of each new or longer pause.
    watch: Option<Box<dyn PauseWatch>>,
}

impl std::fmt::Debug for dyn PauseWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PauseWatch")
    }
}

#[derive(Debug, Default)]
struct Host {
    /// `None` until the host needs one (no interval and no Crawl-delay).
    limiter: Option<Limiter>,
    /// The interval its limiter was built for (robots.txt may lengthen it).
    interval: Option<Duration>,
    /// Set by a 429/503: nothing goes to the host before this.
    paused_until: Option<Instant>,
}

impl HostGate {
    pub fn new(interval: Option<Duration>, jitter: Duration) -> Self {
        Self {
            interval: interval.filter(|d| !d.is_zero()),
            jitter,
            clock: DefaultClock::default(),
            hosts: Mutex::new(HashMap::new()),
            shared: None,
            watch: None,
        }
    }

    /// Spaces requests with other processes too (`RedisRate`).
    pub fn with_shared(mut self, shared: Box<dyn SharedRate>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Tells `watch` of every pause.
    pub fn with_watch(mut self, watch: Box<dyn PauseWatch>) -> Self {
        self.watch = Some(watch);
        self
    }

    /// No limits at all.
    pub fn open() -> Self {
        Self::new(None, Duration::ZERO)
    }

    /// robots.txt asked for at least `delay` between requests to `host`. Called right
    /// after fetching it, so that fetch counts as the last request.
    pub fn set_crawl_delay(&self, host: &str, delay: Duration) {
        let mut hosts = self.lock();
        let entry = hosts.entry(host.to_string()).or_default();
        let wanted = self.interval.max(Some(delay)).filter(|d| !d.is_zero());
        if wanted > entry.interval {
            entry.interval = wanted;
            entry.limiter = wanted.and_then(limiter);
            if let Some(limiter) = &entry.limiter {
                let _ = limiter.check();
            }
        }
    }

    /// The host said to slow down (`reason`, as `429 Retry-After`): nothing goes to it
    /// for `wait`.
    pub fn pause(&self, host: &str, wait: Duration, reason: &str) {
        let now = Instant::now();
        let until = now + wait;
        let news = {
            let mut hosts = self.lock();
            let entry = hosts.entry(host.to_string()).or_default();
            // Every worker with a request out to the host hears the same 429 at about the
            // same time: only a pause that starts, or outlasts the current one by a second
            // or more, is news.
            let news = entry
                .paused_until
                .is_none_or(|current| current <= now || until >= current + Duration::from_secs(1));
            entry.paused_until = entry.paused_until.max(Some(until));
            news
        };
        if news && let Some(watch) = &self.watch {
            watch.paused(host, wait, reason);
        }
        if let Some(shared) = &self.shared {
            shared.pause(host, wait);
        }
    }

    /// How long to wait before sending a request to `host`; zero means now. A non-zero
    /// answer is not a reservation: ask again after waiting. Ready at once unless a shared
    /// rate is asked.
    pub async fn wait_for(&self, host: &str) -> Duration {
        let Some(shared) = &self.shared else {
            return self
                .with_host(host, |gate, entry| gate.paused(entry).unwrap_or_else(|| gate.take(entry)));
        };
        let interval = match self.with_host(host, |gate, entry| gate.paused(entry).ok_or(entry.interval)) {
            Ok(paused) => return paused,
            Err(interval) => interval,
        };
        // In a shared job the job's spacing is the one that counts, and it is asked first
        // (outside the lock: a round trip to Redis, which other workers must not queue
        // behind; asked even with no interval, as another process may have paused the
        // host). Asking this process's own limiter first took its start even when the
        // job then said wait, so a process that joined later kept trying a fixed time
        // after the first one's starts, always just too late: in step, starved.
        match shared.reserve(host, interval.unwrap_or_default()).await {
            // Taken: this process's limiter notes the start, for when Redis stops answering.
            Some(wait) if wait.is_zero() => {
                self.with_host(host, |gate, entry| gate.take(entry));
                Duration::ZERO
            }
            Some(wait) => wait + self.jitter(),
            // Redis does not answer: this process's own spacing holds its own requests.
            None => self.with_host(host, |gate, entry| gate.take(entry)),
        }
    }

    /// Runs `f` on `host`'s entry, under the lock.
    fn with_host<R>(&self, host: &str, f: impl FnOnce(&Self, &mut Host) -> R) -> R {
        let mut hosts = self.lock();
        let entry = hosts.entry(host.to_string()).or_insert_with(|| Host {
            limiter: self.interval.and_then(limiter),
            interval: self.interval,
            paused_until: None,
        });
        f(self, entry)
    }

    /// How long a 429/503 still holds the host here, if it does.
    fn paused(&self, entry: &mut Host) -> Option<Duration> {
        let until = entry.paused_until?;
        let now = Instant::now();
        if until > now {
            return Some(until - now + self.jitter());
        }
        entry.paused_until = None;
        None
    }

    /// Takes a start from this process's own limiter now if it has one; else how long
    /// until it would.
    fn take(&self, entry: &mut Host) -> Duration {
        match entry.limiter.as_ref().map(Limiter::check) {
            Some(Err(not_until)) => not_until.wait_time_from(self.clock.now()) + self.jitter(),
            _ => Duration::ZERO,
        }
    }

    fn jitter(&self) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        self.jitter.mul_f64(fastrand::f64())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Host>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One request per `interval`, no bursts.
fn limiter(interval: Duration) -> Option<Limiter> {
    let quota = Quota::with_period(interval)?.allow_burst(NonZeroU32::MIN);
    Some(RateLimiter::direct(quota))
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    /// The gate's answer, which with no shared rate is ready at once.
    fn now(gate: &HostGate, host: &str) -> Duration {
        gate.wait_for(host).now_or_never().expect("no shared rate: answered at once")
    }

    #[test]
    fn no_limits_means_no_waiting() {
        let gate = HostGate::open();
        for _ in 0..100 {
            assert_eq!(now(&gate, "h"), Duration::ZERO);
        }
    }

    #[test]
    fn a_rate_spaces_requests_per_host() {
        let gate = HostGate::new(Some(Duration::from_secs(10)), Duration::ZERO);
        assert_eq!(now(&gate, "a"), Duration::ZERO);
        let wait = now(&gate, "a");
        assert!(wait > Duration::from_secs(9), "{wait:?}");
        assert_eq!(now(&gate, "b"), Duration::ZERO, "another host has its own budget");
    }

    #[test]
    fn crawl_delay_only_lengthens_and_counts_from_the_robots_fetch() {
        let gate = HostGate::new(Some(Duration::from_secs(10)), Duration::ZERO);
        assert_eq!(now(&gate, "a"), Duration::ZERO, "robots.txt itself");
        gate.set_crawl_delay("a", Duration::from_secs(1));
        assert!(now(&gate, "a") > Duration::from_secs(9), "a shorter crawl delay changes nothing");
        assert_eq!(now(&gate, "b"), Duration::ZERO, "robots.txt itself");
        gate.set_crawl_delay("b", Duration::from_secs(30));
        assert!(now(&gate, "b") > Duration::from_secs(29), "the first request after robots.txt waits");
        let open = HostGate::open();
        open.set_crawl_delay("c", Duration::from_secs(5));
        assert!(now(&open, "c") > Duration::from_secs(4));
    }

    #[test]
    fn a_pause_holds_the_whole_host() {
        let gate = HostGate::open();
        gate.pause("a", Duration::from_secs(20), "429");
        assert!(now(&gate, "a") > Duration::from_secs(19));
        assert!(now(&gate, "a") > Duration::from_secs(19), "every request, not just one");
        assert_eq!(now(&gate, "b"), Duration::ZERO);
        gate.pause("a", Duration::from_secs(1), "429");
        assert!(now(&gate, "a") > Duration::from_secs(19), "a shorter pause does not shorten it");
    }

    #[test]
    fn the_watch_hears_of_a_pause_once_not_once_per_worker() {
        #[derive(Default)]
        struct Heard(Mutex<Vec<(String, u64, String)>>);
        impl PauseWatch for std::sync::Arc<Heard> {
            fn paused(&self, host: &str, wait: Duration, reason: &str) {
                self.0.lock().unwrap().push((host.into(), wait.as_secs(), reason.into()));
            }
        }
        let heard = std::sync::Arc::new(Heard::default());
        let gate = HostGate::open().with_watch(Box::new(heard.clone()));
        for _ in 0..4 {
            gate.pause("a", Duration::from_secs(60), "429 Retry-After");
        }
        gate.pause("a", Duration::from_secs(120), "503");
        gate.pause("b", Duration::from_secs(5), "429");
        let heard = heard.0.lock().unwrap().clone();
        let expected = [("a", 60, "429 Retry-After"), ("a", 120, "503"), ("b", 5, "429")];
        assert_eq!(heard, expected.map(|(h, s, r)| (h.to_string(), s, r.to_string())));
    }

    #[test]
    fn jitter_adds_at_most_its_amount() {
        let gate = HostGate::new(None, Duration::from_millis(100));
        gate.pause("a", Duration::from_secs(1), "429");
        let waits: Vec<Duration> = (0..50).map(|_| now(&gate, "a")).collect();
        for wait in &waits {
            assert!(*wait <= Duration::from_millis(1100), "{wait:?}");
            // The pause still holds (these calls take microseconds, a loaded machine
            // far less than half a second).
            assert!(*wait >= Duration::from_millis(500), "{wait:?}");
        }
        // What is left of the pause is under a second: only jitter makes a wait longer.
        // Fifty draws all under the microseconds elapsed would mean no jitter at all.
        assert!(waits.iter().any(|w| *w > Duration::from_secs(1)), "no jitter added: {waits:?}");
    }
}
