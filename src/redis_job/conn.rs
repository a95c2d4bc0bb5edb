//! A blocking connection to a job's Redis, for what is asked from worker threads rather
//! than from an event loop of ours (the rate gate, object names): one round trip per
//! call, behind a lock, each call one script of the job.

use std::sync::Mutex;
use std::time::Duration;

use redis::{FromRedisValue, Script};

use super::{RedisFrontierError, keys, scripts};

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
