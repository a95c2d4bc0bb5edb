//! Random interleavings of offer, claim, complete (on time, late, twice), release,
//! renew and lease expiry on two nodes of one job keep the job's counts exact:
//! `accepted = done + lost + open` after every step, `accepted` is the URLs offered,
//! no host is over its limit, and draining the job ends it with nothing left.

use std::collections::HashSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::testing::{self, RedisServer};
use super::tests::{LEASE_MS, advance, claim, complete, counts, image, in_flight, node, raw};
use super::*;

const PER_HOST: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    Offer {
        node: usize,
        images: Vec<(u8, u8)>,
    },
    Claim {
        node: usize,
        want: usize,
    },
    /// The `pick`th lease the node holds (maybe expired since), or if it holds none, one
    /// it completed already.
    Complete {
        node: usize,
        pick: usize,
        children: Vec<(u8, u8)>,
    },
    Release {
        node: usize,
        pick: usize,
    },
    Renew {
        node: usize,
    },
    Expire,
}

fn url_of((host, k): (u8, u8)) -> String {
    format!("http://h{host}.test/{k}.jpg")
}

fn op() -> impl Strategy<Value = Op> {
    let images = || proptest::collection::vec((0u8..3, 0u8..10), 0..4);
    prop_oneof![
        3 => (0..2usize, images()).prop_map(|(node, images)| Op::Offer { node, images }),
        3 => (0..2usize, 1..4usize).prop_map(|(node, want)| Op::Claim { node, want }),
        4 => (0..2usize, any::<usize>(), images()).prop_map(|(node, pick, children)| Op::Complete { node, pick, children }),
        1 => (0..2usize, any::<usize>()).prop_map(|(node, pick)| Op::Release { node, pick }),
        1 => (0..2usize).prop_map(|node| Op::Renew { node }),
        1 => Just(Op::Expire),
    ]
}

/// Every invariant that holds between any two steps.
async fn check(
    server: &RedisServer,
    job: &str,
    frontier: &RedisFrontier,
    offered: &HashSet<String>,
) -> JobCounts {
    let c = counts(frontier).await;
    assert_eq!(c.accepted, offered.len() as u64, "each URL admitted once: {c:?}");
    assert_eq!(c.accepted, c.done + c.lost + c.open, "{c:?}");
    assert!(c.queued <= c.open, "{c:?}");
    let busy = in_flight(server, job).await;
    assert!(busy.values().all(|&n| n > 0 && n <= PER_HOST as i64), "{busy:?}");
    assert_eq!(
        busy.values().sum::<i64>() as u64,
        c.leased,
        "in flight per host adds up to the leases: {c:?}"
    );
    c
}

async fn run(server: &RedisServer, ops: Vec<Op>) {
    let job = testing::job("props");
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        nodes.push(node(server, &job, name).await.with_per_host(PER_HOST).with_tries(2));
    }
    let mut held: [Vec<Lease>; 2] = [Vec::new(), Vec::new()];
    let mut finished: [Vec<LeaseId>; 2] = [Vec::new(), Vec::new()];
    let mut offered = HashSet::new();
    for op in ops {
        match op {
            Op::Offer { node, images } => {
                offered.extend(images.iter().map(|&i| url_of(i)));
                nodes[node].offer(images.into_iter().map(|i| image(&url_of(i))).collect()).await.unwrap();
            }
            Op::Claim { node, want } => held[node].extend(claim(&mut nodes[node], want).await.leases),
            Op::Complete { node, pick, children } => {
                let id = match held[node].len() {
                    0 if finished[node].is_empty() => continue,
                    0 => finished[node][pick % finished[node].len()],
                    n => held[node].remove(pick % n).id,
                };
                let before = counts(&nodes[node]).await.done;
                let offers = children.iter().map(|&i| image(&url_of(i))).collect();
                complete(&mut nodes[node], id, offers).await;
                // Only a completion that ended its task offers the children (not a
                // duplicate's, nor a stray's).
                if counts(&nodes[node]).await.done > before {
                    offered.extend(children.iter().map(|&i| url_of(i)));
                }
                finished[node].push(id);
            }
            Op::Release { node, pick } => {
                if !held[node].is_empty() {
                    let n = held[node].len();
                    let lease = held[node].remove(pick % n);
                    nodes[node].release(vec![lease]).await.unwrap();
                }
            }
            Op::Renew { node } => drop(nodes[node].renew().await.unwrap()),
            Op::Expire => advance(server, &job, LEASE_MS + 1).await,
        }
        check(server, &job, &nodes[0], &offered).await;
    }
    // Drain: whatever is held is abandoned by its holder's death; node a finishes it.
    for _ in 0..64 {
        if nodes[0].is_done().await.unwrap() {
            break;
        }
        advance(server, &job, LEASE_MS + 1).await;
        for lease in claim(&mut nodes[0], 64).await.leases {
            complete(&mut nodes[0], lease.id, Vec::new()).await;
        }
    }
    let c = check(server, &job, &nodes[0], &offered).await;
    assert!(nodes[0].is_done().await.unwrap(), "drained: {c:?}");
    assert_eq!((c.open, c.queued, c.leased), (0, 0, 0));
    let records: u64 =
        redis::AsyncCommands::hlen(&mut raw(server).await, format!("{}done", keys::prefix(&job)))
            .await
            .unwrap();
    assert_eq!(records, c.done + c.lost, "one done record per task ended");
}

#[test]
fn random_interleavings_keep_the_counts_exact() {
    let Some(server) = testing::server() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = Config { cases: 48, failure_persistence: None, ..Config::default() };
    let ops = proptest::collection::vec(op(), 1..40);
    TestRunner::new(config)
        .run(&ops, |ops| {
            runtime.block_on(run(server, ops));
            Ok(())
        })
        .unwrap();
}
