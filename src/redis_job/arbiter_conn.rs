//! Async connections to a job's Redis for what async workers ask before a request (the
//! rate gate, object names): one connection per Arbiter, made on that Arbiter's event
//! loop at its first call, so a round trip is awaited there while the Arbiter's other
//! requests go on, instead of blocking its thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, FromRedisValue, Script};
use tokio::sync::OnceCell;

use super::{RedisFrontierError, keys, scripts};

/// How long connecting, or one call's answer, may take: a call that gets no answer fails
/// (the caller goes on without the job's word) rather than holding a request.
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct ArbiterConns {
    /// Where each thread connects from; opening it does no I/O.
    client: redis::Client,
    /// `isc:{JOB}:`.
    prefix: String,
    /// One connection per thread that asked, made there: a connection's driver is a task
    /// on the event loop that made it, so one shared with another Arbiter would answer
    /// only when that Arbiter's loop runs (and not at all once it stops). The cell is
    /// made under the lock, the connection outside it, so a first call waits for no
    /// other thread's.
    conns: Mutex<HashMap<ThreadId, Arc<OnceCell<ConnectionManager>>>>,
}

impl std::fmt::Debug for ArbiterConns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArbiterConns").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl ArbiterConns {
    /// For job `job` on the Redis at `url`, checked by one connection made and dropped
    /// here (an unreachable server is said at the start, not per request); awaited on the
    /// caller's event loop.
    pub async fn connect(url: &str, job: &str) -> Result<Self, RedisFrontierError> {
        let conns = Self::open(url, job)?;
        let once = AsyncConnectionConfig::new().set_connection_timeout(Some(TIMEOUT));
        drop(conns.client.get_multiplexed_async_connection_with_config(&once).await.map_err(cannot)?);
        Ok(conns)
    }

    /// The same, checked by a blocking connection: for callers with no event loop yet
    /// (the store is opened before the actor system starts).
    pub fn connect_blocking(url: &str, job: &str) -> Result<Self, RedisFrontierError> {
        let conns = Self::open(url, job)?;
        drop(conns.client.get_connection_with_timeout(TIMEOUT).map_err(cannot)?);
        Ok(conns)
    }

    fn open(url: &str, job: &str) -> Result<Self, RedisFrontierError> {
        keys::check_name("job", job)?;
        let client = redis::Client::open(url).map_err(cannot)?;
        Ok(Self { client, prefix: keys::prefix(job), conns: Mutex::default() })
    }

    /// Runs `script` for the job with `args` after the prefix, on this thread's
    /// connection (made now if this is the thread's first call).
    pub async fn call<T: FromRedisValue>(
        &self,
        script: &'static Script,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        let cell = {
            let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(conns.entry(thread::current().id()).or_default())
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let conn =
            cell.get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config)).await?;
        let mut call = scripts::call(script, &self.prefix);
        for arg in args {
            call.arg(*arg);
        }
        call.invoke_async(&mut conn.clone()).await
    }
}

fn cannot(e: redis::RedisError) -> RedisFrontierError {
    RedisFrontierError::Connect(e.to_string())
}
