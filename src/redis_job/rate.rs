//! The per-host spacing of a shared job, kept in Redis so `DELAY_MS`,
//! `REQUESTS_PER_SECOND`, robots.txt's Crawl-delay and a 429's pause hold across every
//! process, not per process. Workers ask before each request: one round trip
//! (`gate.lua`, tens of microseconds on a local network) per request, blocking a sync
//! worker's own thread, or awaited on an async worker's Arbiter through a connection of
//! that Arbiter's ([`Link`]), so a slow answer holds only the request that asked. If Redis
//! cannot answer, the process's own gate still spaces its own requests: the run goes on
//! rather than stopping on a politeness check.

use std::sync::Arc;
use std::time::Duration;

use super::arbiter_conn::ArbiterConns;
use super::conn::{JobConn, Link};
use super::{millis, scripts};
use crate::net::politeness::{SharedAnswer, SharedRate};

#[derive(Debug)]
pub struct RedisRate {
    /// Blocking or per Arbiter, as the workers that ask may wait.
    link: Link,
}

impl RedisRate {
    /// Connects (blocking) to the job's Redis, for blocking workers (sync mode).
    pub fn connect(url: &str, job: &str) -> Result<Self, super::RedisFrontierError> {
        Ok(Self { link: Link::Blocking(JobConn::connect(url, job)?) })
    }

    /// For async workers (async mode): each Arbiter that asks connects on its first ask,
    /// on its own event loop. The server is checked now, from the caller's.
    pub async fn per_arbiter(url: &str, job: &str) -> Result<Self, super::RedisFrontierError> {
        Ok(Self { link: Link::Arbiters(Arc::new(ArbiterConns::connect(url, job).await?)) })
    }
}

impl SharedRate for RedisRate {
    fn reserve<'a>(&'a self, host: &'a str, interval: Duration) -> SharedAnswer<'a> {
        Box::pin(async move {
            let ms = millis(interval).to_string();
            let wait: u64 = self.link.call(&scripts::GATE, &[host, "reserve", &ms]).await.ok()?;
            Some(Duration::from_millis(wait))
        })
    }

    fn pause(&self, host: &str, wait: Duration) {
        self.link.send(&scripts::GATE, vec![host.to_string(), "pause".into(), millis(wait).to_string()]);
    }
}
