//! The scripts' rules against a real redis-server, each test a job of its own. Time
//! passes for a job when a test says so (`advance`: the skew the scripts add to Redis'
//! clock), so leases expire without waiting.

use std::collections::HashMap;

use redis::AsyncCommands as _;
use url::Url;

use super::testing::{self, RedisServer};
use super::*;
use crate::frontier::{ItemEnd, Meta, Verdict, WalkMark};
use crate::html::Element;
use crate::net::politeness::SharedRate as _;
use crate::robots::{Origin, Rules};

/// A gate that lets everything through: the Redis frontier reads only `yields`.
pub struct Open {
    /// What `yields` answers: true as when a robots.txt must go first.
    pub yields: bool,
}

impl Gate for Open {
    fn verdict(&mut self, _: &Url) -> Verdict {
        panic!("the Redis frontier leaves robots.txt to the caller")
    }
    fn rules(&mut self, _: Origin, _: &Url) -> Option<Rules> {
        panic!("the Redis frontier leaves robots.txt to the caller")
    }
    fn has_room(&self, _: &str) -> bool {
        panic!("the Redis frontier counts each host's room itself")
    }
    fn took(&mut self, _: &str) {}
    fn yields(&self) -> bool {
        self.yields
    }
}

pub const LEASE_MS: u64 = 1_000;

/// A node of `job`, its leases lasting [`LEASE_MS`].
pub async fn node(server: &RedisServer, job: &str, name: &str) -> RedisFrontier {
    let frontier = RedisFrontier::connect(&server.url, job, name).await.expect("connect");
    frontier.with_lease(Duration::from_millis(LEASE_MS))
}

/// Makes `ms` pass on `job`'s clock, for every node of it.
pub async fn advance(server: &RedisServer, job: &str, ms: u64) {
    let mut conn = raw(server).await;
    let _: i64 = conn.incr(format!("{}clock", keys::prefix(job)), ms).await.unwrap();
}

pub async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url.as_str()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

pub fn image(url: &str) -> Offer {
    Offer::new(Url::parse(url).unwrap(), 1, None, Meta::default())
}

pub async fn claim(frontier: &mut RedisFrontier, want: usize) -> Claimed {
    frontier.claim(want, want, &mut Open { yields: false }).await.unwrap()
}

pub async fn complete(frontier: &mut RedisFrontier, id: LeaseId, children: Vec<Offer>) -> Completed {
    frontier.complete(id, Ending::Image(ItemEnd::Ok), children).await.unwrap()
}

pub async fn counts(frontier: &RedisFrontier) -> JobCounts {
    frontier.job_counts().await.unwrap()
}

fn urls(claimed: &Claimed) -> Vec<&str> {
    claimed.leases.iter().map(|l| l.work.url().as_str()).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_url_offered_twice_is_accepted_once() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("seen");
    let mut a = node(server, &job, "a").await;
    let mut b = node(server, &job, "b").await;
    let first =
        vec![image("http://h.test/1.jpg"), image("http://h.test/1.jpg"), image("http://h.test/2.jpg")];
    assert_eq!(a.offer(first).await.unwrap(), [true, false, true]);
    assert_eq!(b.offer(vec![image("http://h.test/1.jpg")]).await.unwrap(), [false], "another node, same job");
    let moved = Offer { again: true, ..image("http://h.test/1.jpg") };
    let detail = Offer { detail: true, ..image("http://h.test/1.jpg") };
    assert_eq!(b.offer(vec![moved, detail]).await.unwrap(), [true, true], "again; detail pages apart");
    let c = counts(&a).await;
    assert_eq!((c.accepted, c.open, c.queued), (4, 4, 4));
    let mut other = node(server, &testing::job("seen-other"), "a").await;
    assert_eq!(other.offer(vec![image("http://h.test/1.jpg")]).await.unwrap(), [true], "jobs apart");
}

#[tokio::test(flavor = "current_thread")]
async fn an_offer_comes_back_as_it_went_in_and_never_as_a_page() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("roundtrip");
    let mut a = node(server, &job, "a").await;
    let mut offer = Offer::new(
        Url::parse("http://h.test/a%20b.jpg?x=1").unwrap(),
        7,
        Some(Url::parse("http://h.test/p7.html").unwrap()),
        Meta { element: Some(Element::Picture), note: Some("a\nnote".into()), ..Meta::default() },
    );
    offer.meta.fallback = Some(Box::new(Url::parse("http://h.test/thumb.jpg").unwrap()));
    let detail = Offer { detail: true, ..image("http://g.test/view/1") };
    a.offer(vec![offer.clone(), detail.clone()]).await.unwrap();
    let claimed = claim(&mut a, 8).await;
    let image = claimed.leases.iter().find(|l| matches!(l.work, Work::Image(_)));
    assert!(matches!(image, Some(Lease { work: Work::Image(i), .. }) if *i == offer));
    let page = claimed.leases.iter().find(|l| matches!(l.work, Work::Detail(_)));
    assert!(matches!(page, Some(Lease { work: Work::Detail(d), .. }) if *d == detail));
    assert!(claimed.refused.is_empty() && claimed.lost.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn the_per_host_limit_holds_across_nodes() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("per-host");
    let mut a = node(server, &job, "a").await.with_per_host(2);
    let mut b = node(server, &job, "b").await.with_per_host(2);
    a.offer((0..6).map(|k| image(&format!("http://h.test/{k}.jpg"))).collect()).await.unwrap();
    let first = claim(&mut a, 1).await;
    assert_eq!(urls(&first), ["http://h.test/0.jpg"]);
    b.offer(vec![image("http://g.test/0.jpg")]).await.unwrap();
    let mut second = urls(&claim(&mut b, 8).await).into_iter().map(String::from).collect::<Vec<_>>();
    second.sort();
    assert_eq!(second, ["http://g.test/0.jpg", "http://h.test/1.jpg"], "one more of h.test: a holds one");
    assert!(claim(&mut a, 8).await.leases.is_empty(), "h.test is at its limit across the job");
    complete(&mut a, first.leases[0].id, Vec::new()).await;
    assert_eq!(urls(&claim(&mut b, 8).await), ["http://h.test/2.jpg"], "a's completion made room");
    assert_eq!(counts(&a).await.leased, 3);
}

#[tokio::test(flavor = "current_thread")]
async fn completing_twice_counts_once() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("twice");
    let mut a = node(server, &job, "a").await;
    a.offer(vec![image("http://h.test/1.jpg")]).await.unwrap();
    let lease = claim(&mut a, 1).await.leases.remove(0);
    let child = || vec![image("http://h.test/child.jpg")];
    assert_eq!(complete(&mut a, lease.id, child()).await.admitted, [true]);
    assert_eq!(complete(&mut a, lease.id, child()).await.admitted, [false], "a duplicate offers nothing");
    let c = counts(&a).await;
    assert_eq!((c.accepted, c.done, c.duplicates, c.open), (2, 1, 1, 1));
    assert_eq!(complete(&mut a, 999 << keys::SEQ_BITS, Vec::new()).await.admitted, Vec::<bool>::new());
    assert_eq!(counts(&a).await.stray, 1, "a lease never handed out changes nothing");
}

#[tokio::test(flavor = "current_thread")]
async fn an_expired_lease_goes_to_another_node_and_completes_once() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("takeover");
    let mut a = node(server, &job, "a").await;
    let mut b = node(server, &job, "b").await;
    a.offer(vec![image("http://h.test/1.jpg"), image("http://h.test/2.jpg")]).await.unwrap();
    let held = claim(&mut a, 2).await;
    assert!(claim(&mut b, 2).await.leases.is_empty(), "a's leases are live");
    advance(server, &job, LEASE_MS + 1).await;
    let taken = claim(&mut b, 2).await;
    assert_eq!(urls(&taken), urls(&held), "reaped, back at the front, and claimed by b");
    assert!(taken.leases.iter().zip(&held.leases).all(|(t, h)| t.id != h.id), "new leases");
    // 1.jpg: b completes first, then a's late completion. 2.jpg: the other way round.
    complete(&mut b, taken.leases[0].id, Vec::new()).await;
    complete(&mut a, held.leases[0].id, Vec::new()).await;
    complete(&mut a, held.leases[1].id, Vec::new()).await;
    complete(&mut b, taken.leases[1].id, Vec::new()).await;
    let c = counts(&a).await;
    assert_eq!((c.done, c.duplicates, c.open, c.leased, c.queued), (2, 2, 0, 0, 0));
    assert!(a.is_done().await.unwrap());
}

#[tokio::test(flavor = "current_thread")]
async fn a_late_completion_takes_its_task_off_the_queue() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("late");
    let mut a = node(server, &job, "a").await;
    let mut b = node(server, &job, "b").await;
    a.offer(vec![image("http://h.test/1.jpg")]).await.unwrap();
    let held = claim(&mut a, 1).await.leases.remove(0);
    a.offer(vec![image("http://g.test/x.jpg")]).await.unwrap();
    advance(server, &job, LEASE_MS + 1).await;
    // b reaps 1.jpg back into h.test's queue, which is now ready after g.test's.
    assert_eq!(urls(&claim(&mut b, 1).await), ["http://g.test/x.jpg"]);
    assert_eq!(counts(&a).await.queued, 1);
    complete(&mut a, held.id, Vec::new()).await;
    let c = counts(&a).await;
    assert_eq!((c.done, c.duplicates, c.queued, c.leased, c.open), (1, 0, 0, 1, 1), "taken off its queue");
    assert!(claim(&mut b, 8).await.leases.is_empty(), "not fetched again");
}

#[tokio::test(flavor = "current_thread")]
async fn renewed_leases_do_not_expire() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("renew");
    let mut a = node(server, &job, "a").await;
    let mut b = node(server, &job, "b").await;
    a.offer(vec![image("http://h.test/1.jpg")]).await.unwrap();
    claim(&mut a, 1).await;
    for _ in 0..3 {
        advance(server, &job, LEASE_MS * 2 / 3).await;
        assert_eq!(a.renew().await.unwrap(), 1);
        assert!(claim(&mut b, 1).await.leases.is_empty(), "still a's");
    }
    assert_eq!(b.renew().await.unwrap(), 0, "b holds nothing");
    advance(server, &job, LEASE_MS + 1).await;
    assert_eq!(claim(&mut b, 1).await.leases.len(), 1, "a stopped renewing");
}

#[tokio::test(flavor = "current_thread")]
async fn a_task_whose_leases_keep_expiring_ends_failed() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("crashy");
    let mut a = node(server, &job, "a").await.with_tries(3);
    a.offer(vec![image("http://h.test/crash.jpg")]).await.unwrap();
    let mut claimed = claim(&mut a, 1).await;
    for round in 1..=3 {
        assert_eq!(claimed.leases.len(), 1, "round {round}");
        advance(server, &job, LEASE_MS + 1).await;
        claimed = claim(&mut a, 1).await;
    }
    assert!(claimed.leases.is_empty());
    assert!(
        matches!(&claimed.lost[..], [(Work::Image(o), why)] if o.url.path() == "/crash.jpg" && why == "lease expired 3 times")
    );
    let c = counts(&a).await;
    assert_eq!((c.accepted, c.lost, c.done, c.open, c.leased), (1, 1, 0, 0, 0));
    assert!(a.is_done().await.unwrap());
    let record: String = raw(server).await.hget(format!("{}done", keys::prefix(&job)), 1).await.unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["status"], "failed: lease expired 3 times");
    assert_eq!(record["url"], "http://h.test/crash.jpg");
}

#[tokio::test(flavor = "current_thread")]
async fn children_are_admitted_before_open_drops() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("children");
    let mut a = node(server, &job, "a").await;
    a.offer(vec![Offer { detail: true, ..image("http://h.test/view/1") }]).await.unwrap();
    let page = claim(&mut a, 1).await.leases.remove(0);
    assert!(matches!(page.work, Work::Detail(_)));
    let children = vec![image("http://h.test/big.jpg"), image("http://h.test/big2.jpg")];
    assert_eq!(complete(&mut a, page.id, children).await.admitted, [true, true]);
    assert!(!a.is_done().await.unwrap(), "its images are queued in the same step");
    assert_eq!(counts(&a).await.open, 2);
    let images = claim(&mut a, 8).await;
    complete(&mut a, images.leases[0].id, Vec::new()).await;
    assert!(!a.is_done().await.unwrap(), "one image still out");
    complete(&mut a, images.leases[1].id, Vec::new()).await;
    assert!(a.is_done().await.unwrap());
    let c = counts(&a).await;
    assert_eq!((c.accepted, c.done, c.open), (3, 3, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn released_work_goes_out_again_first_and_only_the_holder_releases() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("release");
    let mut a = node(server, &job, "a").await.with_tries(1);
    let mut b = node(server, &job, "b").await;
    a.offer((1..=3).map(|k| image(&format!("http://h.test/{k}.jpg"))).collect()).await.unwrap();
    let mut held = claim(&mut a, 2).await;
    let second = held.leases.pop().unwrap();
    b.release(vec![Lease { id: second.id, work: second.work.clone() }]).await.unwrap();
    assert_eq!(counts(&a).await.leased, 2, "b cannot release a's lease");
    a.release(vec![second]).await.unwrap();
    assert_eq!(urls(&claim(&mut b, 1).await), ["http://h.test/2.jpg"], "first again, no try counted");
    assert_eq!(a.abandon().await.unwrap().images.len(), 0, "the queue is the job's");
    let c = counts(&a).await;
    assert_eq!((c.queued, c.leased, c.open, c.lost), (2, 1, 3, 0));
    assert_eq!(urls(&claim(&mut b, 8).await), ["http://h.test/1.jpg", "http://h.test/3.jpg"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_yielding_gate_takes_nothing() {
    let Some(server) = testing::server() else { return };
    let mut a = node(server, &testing::job("yield"), "a").await;
    a.offer(vec![image("http://h.test/1.jpg")]).await.unwrap();
    assert!(a.claim(8, 8, &mut Open { yields: true }).await.unwrap().leases.is_empty());
    assert_eq!(claim(&mut a, 8).await.leases.len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn bad_names_and_servers_are_errors() {
    let bad_job = RedisFrontier::connect("redis://127.0.0.1:1/", "a{b", "n").await;
    assert!(matches!(bad_job, Err(RedisFrontierError::Name(NameError::BadChar { .. }))));
    let bad_node = RedisFrontier::connect("redis://127.0.0.1:1/", "job", "").await;
    assert!(matches!(bad_node, Err(RedisFrontierError::Name(NameError::Empty { what: "node" }))));
    assert!(matches!(
        RedisFrontier::connect("nonsense", "j", "n").await,
        Err(RedisFrontierError::Connect(_))
    ));
    let Some(server) = testing::server() else { return };
    let missing = format!("redis+unix://{}.gone", server.socket().display());
    assert!(matches!(RedisFrontier::connect(&missing, "j", "n").await, Err(RedisFrontierError::Connect(_))));
}

/// What each host holds in flight, as the job counts it.
pub async fn in_flight(server: &RedisServer, job: &str) -> HashMap<String, i64> {
    raw(server).await.hgetall(format!("{}inflight", keys::prefix(job))).await.unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn the_gate_spaces_two_processes_and_a_pause_holds_for_both() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("gate");
    let (one, two) =
        (RedisRate::connect(&server.url, &job).unwrap(), RedisRate::connect(&server.url, &job).unwrap());
    let interval = Duration::from_secs(60);
    assert_eq!(one.reserve("h.test", interval).await, Some(Duration::ZERO), "the first start is free");
    let wait = two.reserve("h.test", interval).await.unwrap();
    assert!(wait > Duration::from_secs(59) && wait <= interval, "the other process waits: {wait:?}");
    assert_eq!(two.reserve("g.test", interval).await, Some(Duration::ZERO), "per host");
    // Time passes on the job's clock: the next start is free, for one process only.
    advance(server, &job, 60_000).await;
    assert_eq!(two.reserve("h.test", interval).await, Some(Duration::ZERO));
    assert!(one.reserve("h.test", interval).await.unwrap() > Duration::ZERO);
    // A 429 seen by one process holds the host for the other, even with no rate set.
    one.pause("p.test", Duration::from_secs(30));
    let paused = two.reserve("p.test", Duration::ZERO).await.unwrap();
    assert!(paused > Duration::from_secs(29), "{paused:?}");
}

#[actix::test]
async fn an_arbiter_s_pause_and_reservations_reach_the_job() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("arbiter-gate");
    let rate = RedisRate::per_arbiter(&server.url, &job).await.expect("connect");
    rate.pause("p.test", Duration::from_secs(30));
    // Sent as a task of this Arbiter, not waited for: wait until the job holds it, as
    // Redis shows it (a hang guard, not a timing).
    let key = format!("{}gate:p.test", keys::prefix(&job));
    let mut conn = raw(server).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !conn.exists::<_, bool>(&key).await.unwrap() {
        assert!(tokio::time::Instant::now() < deadline, "the pause never reached the job");
        tokio::task::yield_now().await;
    }
    let other = RedisRate::connect(&server.url, &job).unwrap();
    let paused = other.reserve("p.test", Duration::ZERO).await.unwrap();
    assert!(paused > Duration::from_secs(29), "another process sees the pause: {paused:?}");
    let interval = Duration::from_secs(60);
    assert_eq!(rate.reserve("h.test", interval).await, Some(Duration::ZERO), "the first start is free");
    let wait = other.reserve("h.test", interval).await.unwrap();
    assert!(wait > Duration::from_secs(59), "the Arbiter's start counts for the job: {wait:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_paused_host_s_tasks_are_not_claimed_until_the_pause_is_over() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("pause");
    let mut a = node(server, &job, "a").await;
    a.offer(vec![image("http://p.test/1.jpg"), image("https://p.test/2.jpg"), image("http://q.test/1.jpg")])
        .await
        .unwrap();
    let rate = RedisRate::connect(&server.url, &job).unwrap();
    rate.pause("p.test", Duration::from_secs(30));
    let first = claim(&mut a, 8).await;
    assert_eq!(urls(&first), ["http://q.test/1.jpg"], "both of p.test's origins wait");
    complete(&mut a, first.leases[0].id, Vec::new()).await;
    advance(server, &job, 30_001).await;
    let mut after = urls(&claim(&mut a, 8).await).into_iter().map(String::from).collect::<Vec<_>>();
    after.sort();
    assert_eq!(after, ["http://p.test/1.jpg", "https://p.test/2.jpg"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_process_told_to_wait_by_the_job_keeps_its_own_turn() {
    // Two processes' gates, a long interval. The first takes a start; the second is told
    // to wait. When the job's clock says the interval is over, the second must get the
    // start at once: had it spent its own limiter's start on the refused try, it would
    // wait its own interval again, and come just too late each time (starved).
    let Some(server) = testing::server() else { return };
    let job = testing::job("turns");
    let interval = Duration::from_secs(60);
    let gate = || {
        crate::net::politeness::HostGate::new(Some(interval), Duration::ZERO)
            .with_shared(Box::new(RedisRate::connect(&server.url, &job).unwrap()))
    };
    let (first, second) = (gate(), gate());
    assert_eq!(first.wait_for("h.test").await, Duration::ZERO);
    let told = second.wait_for("h.test").await;
    assert!(told > Duration::from_secs(59), "{told:?}");
    advance(server, &job, 60_000).await;
    assert_eq!(second.wait_for("h.test").await, Duration::ZERO, "its turn, not another wait of its own");
    assert!(first.wait_for("h.test").await > Duration::from_secs(59), "and the first waits now");
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_job_hands_out_nothing_and_ends_once_nothing_is_held() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("cancel");
    let mut a = node(server, &job, "a").await;
    a.offer((1..=3).map(|i| image(&format!("http://h.test/{i}.jpg"))).collect()).await.unwrap();
    let held = a.claim(1, 8, &mut Open { yields: false }).await.unwrap();
    assert_eq!(held.leases.len(), 1);
    a.cancel().await.unwrap();
    assert!(a.claim(8, 8, &mut Open { yields: false }).await.unwrap().leases.is_empty(), "nothing more");
    assert!(!a.is_done().await.unwrap(), "a lease is still out");
    a.complete(held.leases[0].id, Ending::Image(ItemEnd::Ok), Vec::new()).await.unwrap();
    assert!(a.is_done().await.unwrap(), "nothing held: the process may end");
    let c = counts(&a).await;
    assert!(c.cancelled && c.open == 2 && !c.all_succeeded(), "{c:?}");
}

/// Every key of `job` with its time to live in ms (-1: kept until deleted).
async fn ttls(server: &RedisServer, job: &str) -> Vec<(String, i64)> {
    let mut conn = raw(server).await;
    let pattern = format!("{}*", keys::prefix(job)).replace('{', "\\{").replace('}', "\\}");
    let names: Vec<String> = conn.keys(pattern).await.unwrap();
    let mut out = Vec::new();
    for name in names {
        let ttl: i64 = conn.pttl(&name).await.unwrap();
        out.push((name, ttl));
    }
    out
}

#[tokio::test(flavor = "current_thread")]
async fn a_finished_job_expires_whole_and_only_once_it_is_over() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("expiry");
    let mut a = node(server, &job, "a").await.with_expiry(Some(Duration::from_secs(60)));
    assert!(a.agree("settings").await.unwrap());
    a.offer(vec![image("http://h.test/1.jpg"), image("http://h.test/2.jpg")]).await.unwrap();
    let mut held = claim(&mut a, 2).await.leases;
    complete(&mut a, held.remove(0).id, Vec::new()).await;
    let running = ttls(server, &job).await;
    assert!(running.iter().all(|(_, ttl)| *ttl == -1), "nothing expires while the job runs: {running:?}");
    assert_eq!(a.expires_in().await.unwrap(), None);

    complete(&mut a, held.remove(0).id, Vec::new()).await;
    let over = ttls(server, &job).await;
    assert!(over.len() >= 5, "{over:?}");
    assert!(
        over.iter().all(|(_, ttl)| (1..=60_000).contains(ttl)),
        "every key goes within a minute: {over:?}"
    );
    let left = a.expires_in().await.unwrap().expect("the counts expire");
    assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50), "{left:?}");
    // A late duplicate completion touches the counts but does not keep them longer.
    complete(&mut a, 1 << keys::SEQ_BITS | 1, Vec::new()).await;
    assert!(a.expires_in().await.unwrap().unwrap() <= left);
}

#[tokio::test(flavor = "current_thread")]
async fn a_job_started_without_expiry_keeps_its_keys_and_a_later_process_cannot_change_that() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("kept");
    let mut a = node(server, &job, "a").await.with_expiry(None);
    assert!(a.agree("settings").await.unwrap());
    let b = node(server, &job, "b").await.with_expiry(Some(Duration::from_secs(1)));
    assert!(b.agree("settings").await.unwrap());
    a.offer(vec![image("http://h.test/1.jpg")]).await.unwrap();
    let lease = claim(&mut a, 1).await.leases.remove(0);
    complete(&mut a, lease.id, Vec::new()).await;
    assert!(counts(&a).await.finished());
    let kept = ttls(server, &job).await;
    assert!(!kept.is_empty() && kept.iter().all(|(_, ttl)| *ttl == -1), "{kept:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_job_state_names_each_host_s_load_the_waiting_origins_and_each_process() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("state");
    let (mut a, mut b) = (node(server, &job, "a").await, node(server, &job, "b").await);
    let offers = ["http://h.test/1.jpg", "http://h.test/2.jpg", "http://h.test/3.jpg", "http://g.test/1.jpg"];
    a.offer(offers.iter().map(|u| image(u)).collect()).await.unwrap();
    assert_eq!(claim(&mut a, 1).await.leases.len(), 1);
    assert_eq!(claim(&mut b, 1).await.leases.len(), 1);
    RedisRate::connect(&server.url, &job).unwrap().pause("h.test", Duration::from_secs(30));
    let state = a.job_state().await.unwrap();
    let mut hosts = state.hosts.clone();
    hosts.sort();
    assert_eq!(hosts.iter().map(|(_, n)| n).sum::<u64>(), 2, "{state:?}");
    let waiting: Vec<(&str, u64, bool)> =
        state.origins.iter().map(|(o, n, ms)| (o.as_str(), *n, *ms > 29_000)).collect();
    // The claims took g.test's one image and one of h.test's (origins waiting longest go
    // first, ties by name); h.test's other two wait out the pause.
    assert_eq!(waiting, [("http://h.test:80", 2, true)], "{state:?}");
    assert_eq!(state.waiting, state.origins.len() as u64);
    let mut nodes: Vec<(&str, u64)> = state.nodes.iter().map(|(n, _, held)| (n.as_str(), *held)).collect();
    nodes.sort();
    assert_eq!(nodes, [("a", 1), ("b", 1)], "{state:?}");
}

/// The page numbers among `claimed`'s leases.
fn page_numbers(claimed: &Claimed) -> Vec<u32> {
    claimed
        .leases
        .iter()
        .filter_map(|l| match l.work {
            Work::Page { number, .. } => Some(number),
            _ => None,
        })
        .collect()
}

/// Pages 1..=9 by template, as `coordinator::walk_from` builds them from a mark.
fn nine_pages(mark: Option<&WalkMark>) -> crate::frontier::LocalFrontier {
    let from = mark.map_or(1, |m| m.done + 1);
    let url = |n: u32| Url::parse(&format!("http://h.test/p{n}/cats.html")).unwrap();
    let pages = crate::frontier::LocalFrontier::pages(from, 9, Box::new(url));
    match mark.and_then(|m| m.last) {
        Some(last) => pages.with_stated_last(last),
        None => pages,
    }
    .pages_only()
}

/// A walker whose page 1 found six images of one host, claiming with a capacity of four:
/// the job's queue is longer than the capacity.
async fn walker_with_six_images_queued(server: &RedisServer, job: &str, per_host: usize) -> SharedWalk {
    let items = node(server, job, "a").await.with_per_host(per_host);
    let mut walker = SharedWalk::join(items, nine_pages).await.unwrap();
    let first = walker.claim(1, 4, &mut crate::frontier::AllGo).await.unwrap();
    assert_eq!(page_numbers(&first), [1]);
    let images = (0..6).map(|i| image(&format!("http://i.test/{i}.jpg"))).collect();
    let found = Ending::PageFetched { stated: None, next: None, found: 6 };
    walker.complete(first.leases[0].id, found, images).await.unwrap();
    walker
}

#[tokio::test(flavor = "current_thread")]
async fn a_walker_lists_pages_only_while_the_job_s_queue_is_short() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("bound");
    let mut walker = walker_with_six_images_queued(server, &job, 32).await;
    let mut images = 0;
    let page = loop {
        let claimed = walker.claim(1, 4, &mut crate::frontier::AllGo).await.unwrap();
        match page_numbers(&claimed).first() {
            Some(page) => break *page,
            None => images += claimed.leases.len(),
        }
        assert!(images <= 6, "never a page");
    };
    // Six queued, four slots: images go until three wait, then page 2.
    assert_eq!((images, page), (3, 2), "images first while the queue is long");
}

#[tokio::test(flavor = "current_thread")]
async fn a_walker_lists_a_page_when_none_of_a_long_queue_may_go() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("starved");
    // One request at a time to i.test across the job: one image goes, five wait for it.
    let mut walker = walker_with_six_images_queued(server, &job, 1).await;
    let all = &mut crate::frontier::AllGo;
    assert_eq!(urls(&walker.claim(1, 4, all).await.unwrap()), ["http://i.test/0.jpg"]);
    assert!(walker.claim(1, 4, all).await.unwrap().leases.is_empty(), "the host is full");
    let next = walker.claim(1, 4, all).await.unwrap();
    assert_eq!(page_numbers(&next), [2], "the slots do not idle while the queue cannot go");
}

#[tokio::test(flavor = "current_thread")]
async fn a_walk_taken_over_goes_on_from_where_its_walker_left_it() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("mark");
    let mut a = SharedWalk::join(node(server, &job, "a").await, nine_pages).await.unwrap();
    let mut b = SharedWalk::join(node(server, &job, "b").await, nine_pages).await.unwrap();
    assert!(a.walks() && !b.walks());
    let fetched = |stated| Ending::PageFetched { stated, next: None, found: 0 };

    // Page 1 states 5 pages; pages 2 and 3 go out; 3 comes back, 2 does not: a dies.
    let first = a.claim(4, 32, &mut crate::frontier::AllGo).await.unwrap();
    assert_eq!(page_numbers(&first), [1]);
    a.complete(first.leases[0].id, fetched(Some(5)), Vec::new()).await.unwrap();
    let more = a.claim(4, 32, &mut crate::frontier::AllGo).await.unwrap();
    assert_eq!(page_numbers(&more), [2, 3]);
    let third = more.leases.iter().find(|l| matches!(l.work, Work::Page { number: 3, .. })).unwrap();
    a.complete(third.id, fetched(None), Vec::new()).await.unwrap();

    // b takes the walk over once a's lease lapses: from page 2 (page 1 finished, page 3
    // finished but after an unfinished one), knowing the walk ends at page 5.
    advance(server, &job, LEASE_MS + 1).await;
    b.renew().await.unwrap();
    assert!(b.walks(), "the walk is b's now");
    let resumed = b.claim(4, 32, &mut crate::frontier::AllGo).await.unwrap();
    assert_eq!(page_numbers(&resumed), [2], "from the first unfinished page, alone");
    b.complete(resumed.leases[0].id, fetched(None), Vec::new()).await.unwrap();
    let mut rest = Vec::new();
    loop {
        let claimed = b.claim(4, 32, &mut crate::frontier::AllGo).await.unwrap();
        if claimed.leases.is_empty() {
            break;
        }
        rest.extend(page_numbers(&claimed));
        for lease in claimed.leases {
            b.complete(lease.id, fetched(None), Vec::new()).await.unwrap();
        }
    }
    assert_eq!(rest, [3, 4, 5], "to the stated end and no further");
    assert!(b.is_done().await.unwrap(), "the walk is over, and with it the job");
}

#[tokio::test(flavor = "current_thread")]
async fn retry_queues_failed_and_lost_tasks_again_and_reopens_the_job() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("retry");
    let mut a = node(server, &job, "a").await.with_tries(1);
    assert!(!a.exists().await.unwrap(), "nothing of it yet");
    let urls = ["http://h.test/ok.jpg", "http://h.test/failed.jpg", "http://h.test/lost.jpg"];
    a.offer(urls.iter().map(|u| image(u)).collect()).await.unwrap();
    assert!(a.exists().await.unwrap());
    let leases = claim(&mut a, 3).await.leases;
    let by_url = |path: &str| leases.iter().find(|l| l.work.url().path() == path).unwrap().id;
    complete(&mut a, by_url("/ok.jpg"), Vec::new()).await;
    a.complete(by_url("/failed.jpg"), Ending::Image(ItemEnd::Failed), Vec::new()).await.unwrap();
    advance(server, &job, LEASE_MS + 1).await;
    assert_eq!(claim(&mut a, 1).await.lost.len(), 1, "its one try expired");
    let c = counts(&a).await;
    assert!(c.finished(), "{c:?}");
    assert_eq!((c.done, c.ok, c.failed, c.lost, c.failures()), (2, 1, 1, 1, 2));

    assert_eq!(a.retry().await.unwrap(), Retried { queued: 2, kept: 0, uncancelled: false });
    let c = counts(&a).await;
    assert!(!c.finished(), "reopened: {c:?}");
    assert_eq!((c.accepted, c.done, c.ok, c.failed, c.lost, c.open, c.queued), (3, 1, 1, 0, 0, 2, 2));
    let again = claim(&mut a, 8).await.leases;
    let mut paths: Vec<&str> = again.iter().map(|l| l.work.url().path()).collect();
    paths.sort();
    assert_eq!(paths, ["/failed.jpg", "/lost.jpg"], "each once, with its tries at zero");
    for lease in again {
        complete(&mut a, lease.id, Vec::new()).await;
    }
    let c = counts(&a).await;
    assert!(c.finished() && c.all_succeeded(), "{c:?}");
    assert_eq!((c.accepted, c.done, c.ok), (3, 3, 3));
    assert_eq!(a.retry().await.unwrap(), Retried::default(), "nothing failed: nothing to do");
}

#[tokio::test(flavor = "current_thread")]
async fn retry_reopens_a_cancelled_job() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("retry-cancelled");
    let mut a = node(server, &job, "a").await;
    a.offer(vec![image("http://h.test/1.jpg")]).await.unwrap();
    a.cancel().await.unwrap();
    assert!(claim(&mut a, 1).await.leases.is_empty());
    assert_eq!(a.retry().await.unwrap(), Retried { queued: 0, kept: 0, uncancelled: true });
    assert!(!counts(&a).await.cancelled);
    assert_eq!(claim(&mut a, 1).await.leases.len(), 1, "handed out again");
}

#[tokio::test(flavor = "current_thread")]
async fn a_task_replaced_by_another_counts_as_replaced_so_done_adds_up() {
    let Some(server) = testing::server() else { return };
    let job = testing::job("replaced");
    let mut a = node(server, &job, "a").await;
    a.offer(vec![image("http://h.test/link.jpg")]).await.unwrap();
    let link = claim(&mut a, 1).await.leases.remove(0);
    let thumb = image("http://h.test/thumb.jpg");
    a.complete(link.id, Ending::Image(ItemEnd::Replaced), vec![thumb]).await.unwrap();
    let thumb = claim(&mut a, 1).await.leases.remove(0);
    complete(&mut a, thumb.id, Vec::new()).await;
    let c = counts(&a).await;
    assert_eq!((c.accepted, c.done, c.ok, c.replaced), (2, 2, 1, 1));
    assert_eq!(c.done, c.ok + c.failed + c.skipped + c.replaced + c.detail_ok + c.detail_failed);
}

fn copy(url: &str, path: &str) -> crate::store::FirstCopy {
    crate::store::FirstCopy { url: url.into(), machine: "m1".into(), path: path.into() }
}

#[test]
fn of_two_processes_claiming_one_content_exactly_one_wins() {
    use crate::store::DigestLedger as _;
    let Some(server) = testing::server() else { return };
    let job = testing::job("digests");
    let sha = "ab".repeat(32);
    // Two processes (each its own connection) race for one content, many times over:
    // both hear the same first copy, and it is one of theirs.
    for round in 0..20 {
        let sha = format!("{round:02}{}", &sha[2..]);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = ["a", "b"]
            .map(|who| {
                let (url, job, sha, barrier) =
                    (server.url.clone(), job.clone(), sha.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let ledger = RedisDigests::open(&url, &job, false).expect("connect");
                    let ours = copy(&format!("http://h.test/{who}.jpg"), &format!("/out/{who}.jpg"));
                    barrier.wait();
                    (ours.clone(), crate::fetch::run_blocking(ledger.claim(&sha, &ours)).expect("claim"))
                })
            })
            .into_iter()
            .collect();
        let answers: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(answers[0].1, answers[1].1, "round {round}: both hear one first copy");
        let winners = answers.iter().filter(|(ours, first)| ours == first).count();
        assert_eq!(winners, 1, "round {round}: exactly one wins: {answers:?}");
    }
    // The first copy stays the first: a later claim, even by the winner's URL, hears it.
    let ledger = RedisDigests::open(&server.url, &job, false).unwrap();
    let first = copy("http://h.test/a.jpg", "/out/a.jpg");
    let other = "cd".repeat(32);
    assert_eq!(crate::fetch::run_blocking(ledger.claim(&other, &first)).unwrap(), first);
    let later = copy("http://h.test/c.jpg", "/elsewhere/c.jpg");
    assert_eq!(crate::fetch::run_blocking(ledger.claim(&other, &later)).unwrap(), first);
    // A copy whose path holds a line break cannot be shared: an error, not a wrong answer.
    let broken = copy("http://h.test/d.jpg", "/out/d\n.jpg");
    assert!(crate::fetch::run_blocking(ledger.claim(&"ef".repeat(32), &broken)).is_err());
}

#[actix::test]
async fn an_arbiter_claims_a_content_through_its_own_connection() {
    use crate::store::DigestLedger as _;
    let Some(server) = testing::server() else { return };
    let job = testing::job("arbiter-digests");
    let sha = "12".repeat(32);
    let on_arbiter = RedisDigests::open(&server.url, &job, true).expect("connect");
    let blocking = RedisDigests::open(&server.url, &job, false).expect("connect");
    let first = copy("http://h.test/a.jpg", "/out/a.jpg");
    assert_eq!(on_arbiter.claim(&sha, &first).await.unwrap(), first, "the first claim wins");
    let second = copy("http://h.test/b.jpg", "/out/b.jpg");
    assert_eq!(blocking.claim(&sha, &second).await.unwrap(), first, "another process hears it");
    let key = format!("{}digests", keys::prefix(&job));
    let stored: Option<String> = raw(server).await.hget(&key, &sha).await.unwrap();
    assert_eq!(stored.as_deref(), Some("http://h.test/a.jpg\nm1\n/out/a.jpg"), "one hash per job");
}
