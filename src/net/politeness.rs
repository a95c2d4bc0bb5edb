//! Per-host manners shared by every worker of a run, whatever its kind or thread: a
//! request rate per host, robots.txt's Crawl-delay, and a pause of the whole host when
//! it answers 429 or 503. `-p 8` means eight workers, not eight times the rate.
//!
//! How many requests a host has in flight is the Coordinator's business (it hands out
//! the tasks); this is about when each request may start. Never imports actix.
//!
//! Time is tokio's clock (`tokio::time::Instant`), so tests pause and advance it. Off a
//! runtime (sync mode's SyncArbiter threads) it reads the system's monotonic clock, as
//! tokio's own does whenever it is not paused: both kinds of caller see one clock.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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
    /// Each host's spacing and pause, by host name.
    hosts: Mutex<HashMap<String, Host>>,
    /// Other processes of a shared job: their starts count too.
    shared: Option<Box<dyn SharedRate>>,
    /// Told of each new or longer pause.
    watch: Option<Box<dyn PauseWatch>>,
    /// How many times a request has been told to wait, published so that a test can
    /// know a task is held at the gate rather than on its way to it.
    held: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for dyn PauseWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PauseWatch")
    }
}

#[derive(Debug, Default)]
struct Host {
    /// The least time between two of this process's starts here: the run's, or a longer
    /// Crawl-delay; `None`: no limit.
    interval: Option<Duration>,
    /// The last start plus `interval`: no start here before it. One start per interval
    /// and no burst is the whole rule, so one instant holds it.
    next_start: Option<Instant>,
    /// Set by a 429/503: nothing goes to the host before this.
    paused_until: Option<Instant>,
}

impl HostGate {
    pub fn new(interval: Option<Duration>, jitter: Duration) -> Self {
        Self {
            interval: interval.filter(|d| !d.is_zero()),
            jitter,
            hosts: Mutex::new(HashMap::new()),
            shared: None,
            watch: None,
            held: tokio::sync::watch::Sender::new(0),
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

    /// How many times a request has been told to wait so far, and each time it changes.
    pub fn held(&self) -> tokio::sync::watch::Receiver<u64> {
        self.held.subscribe()
    }

    /// robots.txt asked for at least `delay` between requests to `host`. Called right
    /// after fetching it, so that fetch counts as the last request.
    pub fn set_crawl_delay(&self, host: &str, delay: Duration) {
        let mut hosts = self.lock();
        let entry = hosts.entry(host.to_string()).or_default();
        let wanted = self.interval.max(Some(delay)).filter(|d| !d.is_zero());
        if wanted > entry.interval {
            entry.interval = wanted;
            entry.next_start = wanted.map(|delay| Instant::now() + delay);
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
            // Taken: this process's spacing notes the start, for when Redis stops answering.
            Some(wait) if wait.is_zero() => {
                self.with_host(host, |gate, entry| gate.take(entry));
                Duration::ZERO
            }
            Some(wait) => wait + self.hold(),
            // Redis does not answer: this process's own spacing holds its own requests.
            None => self.with_host(host, |gate, entry| gate.take(entry)),
        }
    }

    /// Runs `f` on `host`'s entry, under the lock.
    fn with_host<R>(&self, host: &str, f: impl FnOnce(&Self, &mut Host) -> R) -> R {
        let mut hosts = self.lock();
        let entry = hosts.entry(host.to_string()).or_insert_with(|| Host {
            interval: self.interval,
            next_start: None,
            paused_until: None,
        });
        f(self, entry)
    }

    /// How long a 429/503 still holds the host here, if it does.
    fn paused(&self, entry: &mut Host) -> Option<Duration> {
        let until = entry.paused_until?;
        let now = Instant::now();
        if until > now {
            return Some(until - now + self.hold());
        }
        entry.paused_until = None;
        None
    }

    /// Takes a start by this process's own spacing now if the host has one free; else
    /// how long until it would.
    fn take(&self, entry: &mut Host) -> Duration {
        let Some(interval) = entry.interval else { return Duration::ZERO };
        let now = Instant::now();
        match entry.next_start {
            Some(next) if next > now => next - now + self.hold(),
            _ => {
                entry.next_start = Some(now + interval);
                Duration::ZERO
            }
        }
    }

    /// Notes a request told to wait (see `held`) and answers the jitter to add to its wait.
    fn hold(&self) -> Duration {
        self.held.send_modify(|held| *held += 1);
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        self.jitter.mul_f64(fastrand::f64())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Host>> {
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;
    use tokio::time::advance;

    /// Runs `test` with tokio's clock paused, so every wait below is exact and moves only
    /// by `advance`. A runtime of its own rather than `#[actix::test]`: the gate never
    /// imports actix.
    fn paused(test: impl Future<Output = ()>) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build();
        runtime.expect("a runtime").block_on(test);
    }

    const SECOND: Duration = Duration::from_secs(1);

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
        paused(async {
            let gate = HostGate::new(Some(10 * SECOND), Duration::ZERO);
            assert_eq!(now(&gate, "a"), Duration::ZERO);
            assert_eq!(now(&gate, "a"), 10 * SECOND, "the interval, counted from the start");
            assert_eq!(now(&gate, "b"), Duration::ZERO, "another host has its own budget");
            advance(4 * SECOND).await;
            assert_eq!(now(&gate, "a"), 6 * SECOND, "a wait is not a reservation: still from the start");
            advance(6 * SECOND).await;
            assert_eq!(now(&gate, "a"), Duration::ZERO, "free once the interval has passed");
            assert_eq!(now(&gate, "a"), 10 * SECOND, "and that start counts from now");
            advance(25 * SECOND).await;
            assert_eq!(now(&gate, "a"), Duration::ZERO);
            assert_eq!(now(&gate, "a"), 10 * SECOND, "an idle host saves up no burst");
        });
    }

    #[test]
    fn crawl_delay_only_lengthens_and_counts_from_the_robots_fetch() {
        paused(async {
            let gate = HostGate::new(Some(10 * SECOND), Duration::ZERO);
            assert_eq!(now(&gate, "a"), Duration::ZERO, "robots.txt itself");
            advance(2 * SECOND).await;
            gate.set_crawl_delay("a", SECOND);
            assert_eq!(now(&gate, "a"), 8 * SECOND, "a shorter crawl delay changes nothing");
            assert_eq!(now(&gate, "b"), Duration::ZERO, "robots.txt itself");
            advance(2 * SECOND).await;
            gate.set_crawl_delay("b", 30 * SECOND);
            assert_eq!(now(&gate, "b"), 30 * SECOND, "the first request after robots.txt waits");
            advance(30 * SECOND).await;
            assert_eq!(now(&gate, "b"), Duration::ZERO);
            assert_eq!(now(&gate, "b"), 30 * SECOND, "every request after it too");
            let open = HostGate::open();
            open.set_crawl_delay("c", 5 * SECOND);
            assert_eq!(now(&open, "c"), 5 * SECOND, "a gate with no rate of its own");
        });
    }

    #[test]
    fn a_pause_holds_the_whole_host_until_it_ends() {
        paused(async {
            let gate = HostGate::open();
            gate.pause("a", 20 * SECOND, "429");
            assert_eq!(now(&gate, "a"), 20 * SECOND);
            assert_eq!(now(&gate, "a"), 20 * SECOND, "every request, not just one");
            assert_eq!(now(&gate, "b"), Duration::ZERO);
            advance(5 * SECOND).await;
            gate.pause("a", SECOND, "429");
            assert_eq!(now(&gate, "a"), 15 * SECOND, "a shorter pause does not shorten it");
            gate.pause("a", 30 * SECOND, "429");
            assert_eq!(now(&gate, "a"), 30 * SECOND, "a longer one lengthens it");
            advance(30 * SECOND).await;
            assert_eq!(now(&gate, "a"), Duration::ZERO, "over at its end, not before or after");
        });
    }

    #[test]
    fn a_pause_and_the_rate_both_hold() {
        paused(async {
            let gate = HostGate::new(Some(10 * SECOND), Duration::ZERO);
            assert_eq!(now(&gate, "a"), Duration::ZERO);
            gate.pause("a", 3 * SECOND, "503");
            assert_eq!(now(&gate, "a"), 3 * SECOND, "the pause first");
            advance(3 * SECOND).await;
            assert_eq!(now(&gate, "a"), 7 * SECOND, "then what is left of the interval");
        });
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
        paused(async {
            let heard = std::sync::Arc::new(Heard::default());
            let gate = HostGate::open().with_watch(Box::new(heard.clone()));
            for _ in 0..4 {
                gate.pause("a", 60 * SECOND, "429 Retry-After");
            }
            gate.pause("a", 120 * SECOND, "503");
            gate.pause("b", 5 * SECOND, "429");
            advance(5 * SECOND).await;
            gate.pause("b", 5 * SECOND, "429 Retry-After");
            let heard = heard.0.lock().unwrap().clone();
            let expected = [
                ("a", 60, "429 Retry-After"),
                ("a", 120, "503"),
                ("b", 5, "429"),
                ("b", 5, "429 Retry-After"),
            ];
            assert_eq!(
                heard,
                expected.map(|(h, s, r)| (h.to_string(), s, r.to_string())),
                "a pause over is news again"
            );
        });
    }

    #[test]
    fn jitter_adds_up_to_its_amount_to_every_wait() {
        paused(async {
            let jitter = Duration::from_millis(100);
            let gate = HostGate::new(Some(2 * SECOND), jitter);
            assert_eq!(now(&gate, "a"), Duration::ZERO, "a free start is not delayed");
            gate.pause("b", SECOND, "429");
            let rate: Vec<Duration> = (0..50).map(|_| now(&gate, "a")).collect();
            let pause: Vec<Duration> = (0..50).map(|_| now(&gate, "b")).collect();
            for (waits, least) in [(&rate, 2 * SECOND), (&pause, SECOND)] {
                for wait in waits {
                    assert!(
                        *wait >= least && *wait <= least + jitter,
                        "{wait:?} outside {least:?} + {jitter:?}"
                    );
                }
                // The clock stands still: without jitter every wait would be exactly `least`.
                assert!(waits.iter().any(|w| *w > least), "no jitter added: {waits:?}");
            }
        });
    }

    #[test]
    fn every_wait_told_is_counted_and_no_start_taken() {
        let gate = HostGate::new(Some(60 * SECOND), Duration::ZERO);
        let held = gate.held();
        assert_eq!(now(&gate, "a"), Duration::ZERO);
        assert_eq!(*held.borrow(), 0, "a start taken is no wait");
        now(&gate, "a");
        gate.pause("b", SECOND, "429");
        now(&gate, "b");
        assert_eq!(*held.borrow(), 2, "the rate's and the pause's");
    }

    #[test]
    fn the_clock_off_a_runtime_is_the_systems() {
        // Sync mode's workers ask from SyncArbiter threads, with no runtime: the gate
        // still spaces their requests, by the monotonic clock.
        let gate = HostGate::new(Some(60 * SECOND), Duration::ZERO);
        assert_eq!(now(&gate, "a"), Duration::ZERO);
        let wait = now(&gate, "a");
        assert!(wait > 59 * SECOND && wait <= 60 * SECOND, "{wait:?}");
    }
}
