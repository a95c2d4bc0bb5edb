//! The per-host spacing of a shared job, kept in Redis so `DELAY_MS`,
//! `REQUESTS_PER_SECOND`, robots.txt's Crawl-delay and a 429's pause hold across every
//! process, not per process. Workers ask before each request, from their own threads
//! (a blocking worker's, or an async worker's Arbiter), so this holds one blocking
//! connection behind a lock: one round trip (`gate.lua`, tens of microseconds on a local
//! network) per request. If Redis cannot answer, the process's own gate still spaces its
//! own requests: the run goes on rather than stopping on a politeness check.

use std::sync::Mutex;
use std::time::Duration;

use super::{keys, millis, scripts};
use crate::politeness::SharedRate;

pub struct RedisRate {
    conn: Mutex<redis::Connection>,
    /// `isc:{JOB}:`.
    prefix: String,
}

impl std::fmt::Debug for RedisRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRate").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisRate {
    /// Connects (blocking) to the job's Redis for the gate's round trips.
    pub fn connect(url: &str, job: &str) -> Result<Self, super::RedisFrontierError> {
        keys::check_name("job", job)?;
        let cannot = |e: redis::RedisError| super::RedisFrontierError::Connect(e.to_string());
        let client = redis::Client::open(url).map_err(cannot)?;
        let conn = client.get_connection_with_timeout(Duration::from_secs(5)).map_err(cannot)?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).map_err(cannot)?;
        Ok(Self { conn: Mutex::new(conn), prefix: keys::prefix(job) })
    }

    fn call(&self, host: &str, op: &str, ms: u64) -> Option<u64> {
        let mut call = scripts::call(&scripts::GATE, &self.prefix);
        call.arg(host).arg(op).arg(ms);
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        call.invoke::<u64>(&mut conn).ok()
    }
}

impl SharedRate for RedisRate {
    fn reserve(&self, host: &str, interval: Duration) -> Duration {
        self.call(host, "reserve", millis(interval)).map_or(Duration::ZERO, Duration::from_millis)
    }

    fn pause(&self, host: &str, wait: Duration) {
        self.call(host, "pause", millis(wait));
    }
}
