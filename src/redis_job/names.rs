//! Object names reserved across a shared job, so that its processes can fill one bucket:
//! a folder's commit is a rename that never replaces a file, but an object store's PUT
//! replaces whatever the key held, and two processes naming two images alike (each sure
//! the name was free when it listed the bucket) would lose one. One round trip
//! (`name.lua`) per image when its upload opens: blocking a sync worker's own thread, or
//! awaited on an async worker's Arbiter ([`Link`]).

use std::sync::Arc;

use url::Url;

use super::arbiter_conn::ArbiterConns;
use super::conn::{JobConn, Link};
use super::scripts;
use crate::store::{LedgerAnswer, NameLedger};

#[derive(Debug)]
pub struct RedisNames {
    /// Blocking or per Arbiter, as the workers that open uploads may wait.
    link: Link,
}

impl RedisNames {
    /// Connects (blocking) to the job's Redis, for blocking workers (sync mode).
    pub fn connect(url: &str, job: &str) -> Result<Self, super::RedisFrontierError> {
        Ok(Self { link: Link::Blocking(JobConn::connect(url, job)?) })
    }

    /// For async workers (async mode): each Arbiter connects on its first reservation,
    /// on its own event loop. The server is checked now, blocking: the store is opened
    /// before the actor system runs.
    pub fn per_arbiter(url: &str, job: &str) -> Result<Self, super::RedisFrontierError> {
        Ok(Self { link: Link::Arbiters(Arc::new(ArbiterConns::connect_blocking(url, job)?)) })
    }
}

impl NameLedger for RedisNames {
    fn reserve<'a>(&'a self, name: &'a str, url: &'a Url) -> LedgerAnswer<'a> {
        Box::pin(async move {
            let taken: u8 = self
                .link
                .call(&scripts::NAME, &[name, url.as_str()])
                .await
                .map_err(|e| format!("Redis: {e}"))?;
            Ok(taken == 1)
        })
    }
}
