//! How the rate gate and object names reach a job's Redis, as the worker kind that asks
//! may wait: a blocking connection for blocking workers' threads (made for it), or
//! connections per Arbiter for async workers ([`ArbiterConns`]), whose event loops must
//! not block on a round trip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::{FromRedisValue, Script};

use super::arbiter_conn::ArbiterConns;
use super::{RedisFrontierError, keys, scripts};

/// One of the two, chosen by the caller for the workers that will ask.
#[derive(Debug)]
pub enum Link {
    /// Sync mode: every call blocks the asking thread for its round trip.
    Blocking(JobConn),
    /// Async mode: every call is awaited on the asking Arbiter. In an `Arc`, so that a
    /// call whose answer no one waits for can run as a task of its own.
    Arbiters(Arc<ArbiterConns>),
}

impl Link {
    /// For the job's workers: `per_arbiter` (async mode), each Arbiter connects on its
    /// first call, on its own event loop, the server checked now, blocking (a store is
    /// opened before the actor system runs); else one blocking connection (sync mode).
    pub fn open(url: &str, job: &str, per_arbiter: bool) -> Result<Self, RedisFrontierError> {
        Ok(match per_arbiter {
            true => Link::Arbiters(Arc::new(ArbiterConns::connect_blocking(url, job)?)),
            false => Link::Blocking(JobConn::connect(url, job)?),
        })
    }

    /// Runs `script` for the job with `args` after the prefix; on a blocking link the
    /// future is done at its first poll.
    pub async fn call<T: FromRedisValue>(
        &self,
        script: &'static Script,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        match self {
            Link::Blocking(conn) => conn.call(script, args),
            Link::Arbiters(conns) => conns.call(script, args).await,
        }
    }

    /// Runs `script` without waiting for its answer (for callers that cannot wait): a
    /// task on this thread's event loop, or at once on a blocking link. With no event
    /// loop to run it, it is not sent: the caller's own state still holds.
    pub fn send(&self, script: &'static Script, args: Vec<String>) {
        match self {
            Link::Blocking(conn) => drop(conn.call::<redis::Value>(script, &strs(&args))),
            Link::Arbiters(conns) => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
                let conns = Arc::clone(conns);
                runtime.spawn(async move { drop(conns.call::<redis::Value>(script, &strs(&args)).await) });
            }
        }
    }
}

pub struct JobConn {
    /// One per use, not per thread: the calls are short, and a lock is cheaper than a
    /// connection per worker.
    conn: Mutex<redis::Connection>,
    /// `isc:{JOB}:`.
    prefix: String,
}

impl std::fmt::Debug for JobConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobConn").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl JobConn {
    /// Connects (blocking) to the Redis at `url` for job `job`; a call that gets no
    /// answer in five seconds fails rather than holding a worker.
    pub fn connect(url: &str, job: &str) -> Result<Self, RedisFrontierError> {
        keys::check_name("job", job)?;
        let cannot = |e: redis::RedisError| RedisFrontierError::Connect(e.to_string());
        let client = redis::Client::open(url).map_err(cannot)?;
        let conn = client.get_connection_with_timeout(Duration::from_secs(5)).map_err(cannot)?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).map_err(cannot)?;
        Ok(Self { conn: Mutex::new(conn), prefix: keys::prefix(job) })
    }

    /// Runs `script` for the job with `args` after the prefix.
    pub fn call<T: FromRedisValue>(&self, script: &'static Script, args: &[&str]) -> redis::RedisResult<T> {
        let mut call = scripts::call(script, &self.prefix);
        for arg in args {
            call.arg(*arg);
        }
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        call.invoke(&mut conn)
    }
}

/// Arguments as [`Link::call`] takes them.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
