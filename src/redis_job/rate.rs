//! The per-host spacing of a shared job, kept in Redis so `DELAY_MS`,
//! `REQUESTS_PER_SECOND`, robots.txt's Crawl-delay and a 429's pause hold across every
//! process, not per process. Workers ask before each request, from their own threads
//! (a blocking worker's, or an async worker's Arbiter), so this holds one blocking
//! connection behind a lock: one round trip (`gate.lua`, tens of microseconds on a local
//! network) per request. If Redis cannot answer, the process's own gate still spaces its
//! own requests: the run goes on rather than stopping on a politeness check.

use std::time::Duration;

use super::conn::JobConn;
use super::{millis, scripts};
use crate::net::politeness::SharedRate;

#[derive(Debug)]
pub struct RedisRate {
    conn: JobConn,
}

impl RedisRate {
    /// Connects (blocking) to the job's Redis for the gate's round trips.
    pub fn connect(url: &str, job: &str) -> Result<Self, super::RedisFrontierError> {
        Ok(Self { conn: JobConn::connect(url, job)? })
    }

    fn call(&self, host: &str, op: &str, ms: u64) -> Option<u64> {
        self.conn.call(&scripts::GATE, &[host, op, &ms.to_string()]).ok()
    }
}

impl SharedRate for RedisRate {
    fn reserve(&self, host: &str, interval: Duration) -> Option<Duration> {
        self.call(host, "reserve", millis(interval)).map(Duration::from_millis)
    }

    fn pause(&self, host: &str, wait: Duration) {
        self.call(host, "pause", millis(wait));
    }
}
