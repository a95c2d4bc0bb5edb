//! Object names reserved across a shared job, so that its processes can fill one bucket:
//! a folder's commit is a rename that never replaces a file, but an object store's PUT
//! replaces whatever the key held, and two processes naming two images alike (each sure
//! the name was free when it listed the bucket) would lose one. One round trip
//! (`name.lua`) per image, from the thread that opens its upload.

use url::Url;

use super::conn::JobConn;
use super::scripts;
use crate::store::NameLedger;

#[derive(Debug)]
pub struct RedisNames {
    conn: JobConn,
}

impl RedisNames {
    /// Connects (blocking) to the job's Redis.
    pub fn connect(url: &str, job: &str) -> Result<Self, super::RedisFrontierError> {
        Ok(Self { conn: JobConn::connect(url, job)? })
    }
}

impl NameLedger for RedisNames {
    fn reserve(&self, name: &str, url: &Url) -> Result<bool, String> {
        let taken: u8 =
            self.conn.call(&scripts::NAME, &[name, url.as_str()]).map_err(|e| format!("Redis: {e}"))?;
        Ok(taken == 1)
    }
}
