//! Object names reserved across a shared job, so that its processes can fill one bucket:
//! a folder's commit is a rename that never replaces a file, but an object store's PUT
//! replaces whatever the key held, and two processes naming two images alike (each sure
//! the name was free when it listed the bucket) would lose one. One round trip
//! (`name.lua`) per image when its upload opens: blocking a sync worker's own thread, or
//! awaited on an async worker's Arbiter ([`Link`]).

use url::Url;

use super::conn::Link;
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
        Ok(Self { link: Link::open(url, job, false)? })
    }

    /// For async workers (async mode): see [`Link::open`].
    pub fn per_arbiter(url: &str, job: &str) -> Result<Self, super::RedisFrontierError> {
        Ok(Self { link: Link::open(url, job, true)? })
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
