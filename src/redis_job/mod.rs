//! The shared frontier: one job's images and detail pages in Redis, so that several
//! processes on several machines share them. Every state change is one Lua script, run
//! atomically by the server with time from the server's clock; see docs/DISTRIBUTED.md
//! for the key layout, each script's transitions and the guarantees. Pure of actix and
//! config, like the rest of `frontier`.
//!
//! Listing pages are walked by one process at a time ([`SharedWalk`], `walk`): a claim
//! here never returns [`Work::Page`], and a job is seeded by `offer` (a `--urls` list,
//! or a page's images).
//!
//! # Layout
//!
//! - `keys`: names (job, node, the key prefix, origins) and what a lease id holds;
//! - `scripts`: the scripts (`lua/`) and their arguments;
//! - `walk`: [`SharedWalk`], the listing pages walked by one process at a time;
//! - `rate`: [`RedisRate`], the per-host spacing across every process;
//! - `names`: [`RedisNames`], object names reserved across the job (one bucket, many
//!   processes); `digests`: [`RedisDigests`], the first copy of each content
//!   (`DEDUPE: content`, one out dir or many); `conn`: how these three reach Redis,
//!   blocking (sync mode's threads) or through `arbiter_conn`'s connections, one per
//!   Arbiter (async mode's event loops);
//! - `testing` (tests only): a real `redis-server` per test process; `tests`: the scripts'
//!   rules against it; `props`: random interleavings on two nodes keep the counts exact;
//!   `liveness`: a slow Redis (behind `testing::SlowRelay`) never stalls an Arbiter.

mod arbiter_conn;
mod conn;
mod digests;
mod keys;
#[cfg(test)]
mod liveness;
mod names;
#[cfg(test)]
mod props;
mod rate;
mod scripts;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
mod walk;

use std::time::Duration;

use futures_util::FutureExt;
use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use crate::counts::JobCounts;
use crate::frontier::{
    Abandoned, Answer, Claimed, Completed, Counts, Ending, Frontier, FrontierError, Gate, ItemEnd, Lease,
    LeaseId, Offer, Work,
};
pub use digests::RedisDigests;
pub use keys::NameError;
pub use names::RedisNames;

pub use rate::RedisRate;
pub use walk::SharedWalk;

/// How long a lease lasts unless renewed: a process that dies holding work gives it up
/// this long after its last renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Leases of one task that may expire before it ends failed: a task whose every holder
/// dies (it crashes the worker, or kills the machine) must not go round forever.
pub const DEFAULT_TRIES: u32 = 3;

/// How long a finished job's keys stay, unless told: long enough to read its counts and
/// see a re-run exit at once for a week, short enough that finished jobs do not pile up
/// in Redis' memory.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Requests in flight per host across the job, unless told: `PER_HOST_CONCURRENCY`'s
/// default (the caller passes the setting; this module reads no config).
pub const DEFAULT_PER_HOST: usize = 32;

/// Why a `RedisFrontier` could not be made: the caller tells a bad name (the user's
/// input, exit 2 with the reason) from a server it cannot reach.
#[derive(Debug, thiserror::Error)]
pub enum RedisFrontierError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("cannot connect to Redis: {0}")]
    Connect(String),
}

/// One process's view of a shared job.
pub struct RedisFrontier {
    /// Made inside the Arbiter (thread) that uses it, and never leaves it; it reconnects
    /// by itself after a dropped connection.
    conn: ConnectionManager,
    /// `isc:{JOB}:`, the start of every key of the job.
    prefix: String,
    /// This process, as its leases name it: `renew` and `release` touch only its own.
    node: String,
    /// Requests in flight per host across every node of the job.
    per_host: usize,
    /// How long a lease lasts unless renewed.
    lease: Duration,
    /// Expired leases after which a task ends failed.
    tries: u32,
    /// How long the job's keys stay once it is over, if this process is the one that
    /// starts it (`--job-ttl`); `None` keeps them until someone deletes them.
    expiry: Option<Duration>,
}

/// Where a shared job's work is, beside its counts (`job status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobState {
    /// Each host with leases out, and how many: the per-host limit as every process sees it.
    pub hosts: Vec<(String, u64)>,
    /// The first origins with work waiting, in the order they go: the origin, its queue's
    /// length, and the ms until it may go (0: now; more while a 429/503 pause holds).
    pub origins: Vec<(String, u64, u64)>,
    /// Origins with work waiting, in all.
    pub waiting: u64,
    /// Each process that ever claimed or renewed: its name, the ms since, and the leases
    /// it holds. One seen long ago that holds leases has died; they go at the lease time.
    pub nodes: Vec<(String, u64, u64)>,
}

/// What `job retry` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retried {
    /// Failed tasks put back in their queues.
    pub queued: u64,
    /// Failed tasks whose record keeps no task (written by an older version): not queued.
    pub kept: u64,
    /// The job had been cancelled, and is no longer.
    pub uncancelled: bool,
}

impl RedisFrontier {
    /// Connects to the Redis at `url` (`redis://host:port/db` or `redis+unix:///path`)
    /// for job `job` as node `node`, and loads the scripts. Call it inside the Arbiter
    /// that will use the frontier.
    pub async fn connect(url: &str, job: &str, node: &str) -> Result<Self, RedisFrontierError> {
        keys::check_name("job", job)?;
        keys::check_name("node", node)?;
        let connect = |e: redis::RedisError| RedisFrontierError::Connect(e.to_string());
        let client = redis::Client::open(url).map_err(connect)?;
        let timeout = Some(Duration::from_secs(5));
        // One attempt first: the manager retries a connection with growing delays (right
        // for a blip during a run), which would keep a user waiting on a wrong address.
        let once = AsyncConnectionConfig::new().set_connection_timeout(timeout);
        drop(client.get_multiplexed_async_connection_with_config(&once).await.map_err(connect)?);
        // A script's answer may take longer than the default half second on a loaded
        // server; an answer that never comes must still end the call.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(Some(Duration::from_secs(10)));
        let mut conn = ConnectionManager::new_with_config(client, config).await.map_err(connect)?;
        for script in scripts::all() {
            script.load_async(&mut conn).await.map_err(connect)?;
        }
        Ok(Self {
            conn,
            prefix: keys::prefix(job),
            node: node.to_string(),
            per_host: DEFAULT_PER_HOST,
            lease: DEFAULT_LEASE,
            tries: DEFAULT_TRIES,
            expiry: Some(DEFAULT_EXPIRY),
        })
    }

    /// Requests in flight per host across the job (`PER_HOST_CONCURRENCY`), at least 1.
    pub fn with_per_host(mut self, per_host: usize) -> Self {
        self.per_host = per_host.max(1);
        self
    }

    /// How long a lease lasts unless renewed (`--lease`), at least a millisecond.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// Expired leases after which a task ends failed, at least 1 (the tests lower the
    /// default to reach a lost task sooner).
    #[cfg(test)]
    pub fn with_tries(mut self, tries: u32) -> Self {
        self.tries = tries.max(1);
        self
    }

    /// How long the job's keys stay once it is over (`None`: until deleted). Only the
    /// process that starts the job sets it (in [`RedisFrontier::agree`]).
    pub fn with_expiry(mut self, expiry: Option<Duration>) -> Self {
        self.expiry = expiry.filter(|d| !d.is_zero());
        self
    }

    /// Extends every lease this node holds by the lease time from now; the caller calls
    /// it well within the lease time (a third of it, say). Answers how many.
    pub fn renew(&self) -> Answer<usize> {
        let mut call = scripts::call(&scripts::RENEW, &self.prefix);
        call.arg(&self.node).arg(millis(self.lease));
        let mut conn = self.conn.clone();
        async move { call.invoke_async::<usize>(&mut conn).await.map_err(unavailable) }.boxed_local()
    }

    /// The job's counts, read in one step.
    pub fn job_counts(&self) -> Answer<JobCounts> {
        let call = scripts::call(&scripts::COUNTS, &self.prefix);
        let mut conn = self.conn.clone();
        async move {
            let [
                accepted,
                open,
                done,
                lost,
                duplicates,
                stray,
                queued,
                leased,
                ok,
                failed,
                skipped,
                detail_ok,
                detail_failed,
                cancelled,
                replaced,
            ] = call.invoke_async::<[u64; 15]>(&mut conn).await.map_err(unavailable)?;
            Ok(JobCounts {
                accepted,
                open,
                done,
                lost,
                duplicates,
                stray,
                queued,
                leased,
                ok,
                failed,
                skipped,
                replaced,
                detail_ok,
                detail_failed,
                cancelled: cancelled == 1,
            })
        }
        .boxed_local()
    }

    /// Where the job's work is: per host, per origin waiting, per process (one step).
    pub fn job_state(&self) -> Answer<JobState> {
        let call = scripts::call(&scripts::STATUS, &self.prefix);
        let mut conn = self.conn.clone();
        async move {
            let (hosts, origins, waiting, nodes) = call.invoke_async(&mut conn).await.map_err(unavailable)?;
            Ok(JobState { hosts, origins, waiting, nodes })
        }
        .boxed_local()
    }

    /// Whether Redis writes every step to its append-only file (`appendonly yes`), so a
    /// restart keeps the job; `None` when it will not say (`CONFIG` is often disabled on
    /// managed Redis).
    pub async fn persistent(&self) -> Option<bool> {
        let mut conn = self.conn.clone();
        let answer: Vec<String> =
            redis::cmd("CONFIG").arg("GET").arg("appendonly").query_async(&mut conn).await.ok()?;
        answer.get(1).map(|value| value == "yes")
    }

    /// `job cancel`: nothing more of the job is handed out, to any process; each ends once
    /// what it holds is done, and the job's counts say it was cancelled.
    pub async fn cancel(&self) -> Result<(), FrontierError> {
        let mut conn = self.conn.clone();
        let key = keys::counts_key(&self.prefix);
        redis::cmd("HSET")
            .arg(key)
            .arg("cancelled")
            .arg(1)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// Whether any process ever joined the job (its settings are stored), or anything
    /// was offered to it: `job` commands refuse a name that matches no job.
    pub async fn exists(&self) -> Result<bool, FrontierError> {
        let mut conn = self.conn.clone();
        let found: u64 = redis::cmd("EXISTS")
            .arg(format!("{}settings", self.prefix))
            .arg(keys::counts_key(&self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(found > 0)
    }

    /// `job retry`: the job's failed tasks go back to their queues, no try counted, and
    /// the job is reopened (no longer cancelled or finished), for a later run to do.
    pub async fn retry(&self) -> Result<Retried, FrontierError> {
        let call = scripts::call(&scripts::RETRY, &self.prefix);
        let mut conn = self.conn.clone();
        let (queued, kept, uncancelled): (u64, u64, u64) =
            call.invoke_async(&mut conn).await.map_err(unavailable)?;
        Ok(Retried { queued, kept, uncancelled: uncancelled == 1 })
    }

    /// Stores `fingerprint` (what the job is to do: its URL list and the settings that
    /// change what is fetched) as the job's, unless another is stored already; answers
    /// whether the job's is this one. A process with other settings must not join. The
    /// first process also says how long the job is kept once over (`with_expiry`).
    pub async fn agree(&self, fingerprint: &str) -> Result<bool, FrontierError> {
        let key = format!("{}settings", self.prefix);
        let mut conn = self.conn.clone();
        let expiry = self.expiry.map_or(0, millis);
        let _: Option<String> = redis::cmd("SET")
            .arg(format!("{}expiry", self.prefix))
            .arg(expiry)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(fingerprint)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let stored: Option<String> =
            redis::cmd("GET").arg(&key).query_async(&mut conn).await.map_err(unavailable)?;
        Ok(stored.as_deref() == Some(fingerprint))
    }

    /// How long until a finished job's keys go: `None` while the job runs, or when it is
    /// kept until deleted.
    pub async fn expires_in(&self) -> Result<Option<Duration>, FrontierError> {
        let mut conn = self.conn.clone();
        let ms: i64 = redis::cmd("PTTL")
            .arg(keys::counts_key(&self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    /// `claim`, also answering how many tasks wait in the job's queues after it (`None`
    /// when Redis was not asked): the walker lists pages while that is short.
    fn claim_counted(&self, want: usize, gate: &mut dyn Gate) -> Answer<(Claimed, Option<usize>)> {
        if want == 0 || gate.yields() {
            return futures_util::future::ready(Ok((Claimed::default(), None))).boxed_local();
        }
        let mut call = scripts::call(&scripts::CLAIM, &self.prefix);
        call.arg(&self.node).arg(want).arg(self.per_host).arg(millis(self.lease)).arg(self.tries);
        let mut conn = self.conn.clone();
        async move {
            let (leases, lost, queued): ClaimReply =
                call.invoke_async(&mut conn).await.map_err(unavailable)?;
            let mut claimed = Claimed::default();
            for (id, payload) in leases {
                let id = id.parse::<LeaseId>().map_err(|_| {
                    FrontierError::Unavailable(format!("Redis answered a bad lease id {id:?}"))
                })?;
                claimed.leases.push(Lease { id, work: work_of(scripts::decode(&payload)?) });
            }
            for (payload, reason) in lost {
                claimed.lost.push((work_of(scripts::decode(&payload)?), reason));
            }
            Ok((claimed, Some(usize::try_from(queued).unwrap_or(usize::MAX))))
        }
        .boxed_local()
    }

    fn release_ids(&self, ids: Vec<String>) -> Answer<()> {
        let mut call = scripts::call(&scripts::RELEASE, &self.prefix);
        call.arg(&self.node).arg(ids);
        let mut conn = self.conn.clone();
        async move { call.invoke_async::<u64>(&mut conn).await.map(drop).map_err(unavailable) }.boxed_local()
    }
}

fn unavailable(e: redis::RedisError) -> FrontierError {
    FrontierError::Unavailable(format!("Redis: {e}"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An offer as work: a detail page or an image.
fn work_of(offer: Offer) -> Work {
    match offer.detail {
        true => Work::Detail(offer),
        false => Work::Image(offer),
    }
}

/// What the done record says of how a lease ended.
fn status_of(ending: &Ending) -> &'static str {
    match ending {
        Ending::Image(end) => end.as_str(),
        Ending::Saved { duplicate: true, .. } => ItemEnd::Skipped.as_str(),
        Ending::Saved { .. } => ItemEnd::Ok.as_str(),
        Ending::PageFetched { .. } => "fetched",
        Ending::PageMoved { .. } => "moved",
        Ending::PageMissing => "missing",
        Ending::PageFailed => "failed",
    }
}

/// What `claim.lua` answers: leases as (id, payload), tasks that failed as (payload,
/// reason), and how many tasks are queued after it.
type ClaimReply = (Vec<(String, String)>, Vec<(String, String)>, u64);

impl Frontier for RedisFrontier {
    fn offer(&mut self, offers: Vec<Offer>) -> Answer<Vec<bool>> {
        let mut call = scripts::call(&scripts::OFFER, &self.prefix);
        if let Err(e) = scripts::add_offers(&mut call, &offers) {
            return futures_util::future::ready(Err(e)).boxed_local();
        }
        let mut conn = self.conn.clone();
        async move {
            if offers.is_empty() {
                return Ok(Vec::new());
            }
            let admitted: Vec<u8> = call.invoke_async(&mut conn).await.map_err(unavailable)?;
            Ok(admitted.into_iter().map(|a| a == 1).collect())
        }
        .boxed_local()
    }

    /// Reaps expired leases, then takes up to `want` images or detail pages from origins
    /// ready now whose host is under the per-host limit across the job. Of `gate` only
    /// `yields` is read, before the call: robots.txt is judged by the caller on what
    /// comes back, and each host's room is the script's, counted across every node.
    /// `capacity` weighs pages against images; there are no pages yet.
    fn claim(&mut self, want: usize, _capacity: usize, gate: &mut dyn Gate) -> Answer<Claimed> {
        let claim = self.claim_counted(want, gate);
        async move { claim.await.map(|(claimed, _)| claimed) }.boxed_local()
    }

    /// Idempotent: a lease whose task is done already (its lease expired and another
    /// holder completed it, or it failed after its tries) counts a duplicate and admits
    /// none of `children`. A lease reaped while its task is not done yet still completes
    /// it, and the task's next holder will count the duplicate.
    fn complete(&mut self, id: LeaseId, ending: Ending, children: Vec<Offer>) -> Answer<Completed> {
        let mut call = scripts::call(&scripts::COMPLETE, &self.prefix);
        call.arg(&self.node).arg(id).arg(keys::task_of(id)).arg(status_of(&ending));
        match &ending {
            Ending::Saved { path, bytes, .. } => call.arg(path).arg(bytes),
            _ => call.arg("").arg(0),
        };
        if let Err(e) = scripts::add_offers(&mut call, &children) {
            return futures_util::future::ready(Err(e)).boxed_local();
        }
        let mut conn = self.conn.clone();
        async move {
            let (_, admitted): (String, Vec<u8>) = call.invoke_async(&mut conn).await.map_err(unavailable)?;
            // Not done here (a duplicate or stray): no child was offered.
            let mut admitted: Vec<bool> = admitted.into_iter().map(|a| a == 1).collect();
            admitted.resize(children.len(), false);
            Ok(Completed { admitted, page: None })
        }
        .boxed_local()
    }

    /// Back to the front of their queues, no try counted; only this node's live leases.
    fn release(&mut self, leases: Vec<Lease>) -> Answer<()> {
        if leases.is_empty() {
            return futures_util::future::ready(Ok(())).boxed_local();
        }
        self.release_ids(leases.iter().map(|l| l.id.to_string()).collect())
    }

    /// Releases this node's leases and answers nothing to count: the queues are the
    /// job's, not this process's. One process stopping must not drain work that the
    /// others (or a later run) will do, as closing one scrapy-redis spider deletes the
    /// shared queue. A completion that still comes for a released lease completes its
    /// task (see `complete`).
    fn abandon(&mut self) -> Answer<Abandoned> {
        let release = self.release_ids(vec!["*".to_string()]);
        async move { release.await.map(|()| Abandoned::default()) }.boxed_local()
    }

    fn counts(&self) -> Answer<Counts> {
        let counts = self.job_counts();
        async move {
            let c = counts.await?;
            let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            Ok(Counts {
                queued: size(c.queued),
                pages_planned: 0,
                pages_known: false,
                leased: size(c.leased),
            })
        }
        .boxed_local()
    }

    fn renew(&mut self) -> Answer<()> {
        let renew = RedisFrontier::renew(self);
        async move { renew.await.map(drop) }.boxed_local()
    }

    fn judges_robots(&self) -> bool {
        false
    }

    /// Nothing open, queued or leased, in the whole job; or it was cancelled and no
    /// lease is out (this process's end, once it has nothing in flight).
    fn is_done(&self) -> Answer<bool> {
        let counts = self.job_counts();
        async move {
            let c = counts.await?;
            Ok(c.finished() || (c.cancelled && c.leased == 0))
        }
        .boxed_local()
    }
}
