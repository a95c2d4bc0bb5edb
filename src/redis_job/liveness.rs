//! A slow Redis holds only the request that asks it: on an async worker's Arbiter, the
//! shared rate's reservation and a name's reservation are awaited, and the event loop
//! goes on meanwhile (its timers fire, its other requests move). Redis is made slow by
//! [`SlowRelay`]; a timer on the test's Arbiter says how late the loop ran while a call
//! waited.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use super::testing::{self, SlowRelay};
use super::{RedisNames, RedisRate};
use crate::net::politeness::HostGate;
use crate::store::NameLedger as _;

/// How long the relay holds each chunk: a call waits at least twice this (its request,
/// then its answer).
const DELAY: Duration = Duration::from_millis(300);

/// How often the timer on the test's Arbiter is due.
const TICK: Duration = Duration::from_millis(10);

/// Runs `call` on this Arbiter beside a timer due every [`TICK`]; answers `call`'s
/// output, how long it took, and the most any tick came late meanwhile. The timer has
/// ticked once before `call` starts, so a call that blocks the thread at its first poll
/// is seen too; and the first tick after it counts, as a tick held up by a blocked
/// thread runs only once the call is over.
async fn lag_while<F: Future>(call: F) -> (F::Output, Duration, Duration) {
    let (tick, mut ticks) = tokio::sync::mpsc::unbounded_channel();
    let timer = actix_rt::spawn(async move {
        loop {
            let due = Instant::now() + TICK;
            tokio::time::sleep_until(due).await;
            if tick.send(due.elapsed()).is_err() {
                return;
            }
        }
    });
    ticks.recv().await.expect("the timer ticks");
    let start = Instant::now();
    let output = call.await;
    let took = start.elapsed();
    let mut lag = Duration::ZERO;
    while let Ok(late) = ticks.try_recv() {
        lag = lag.max(late);
    }
    lag = lag.max(ticks.recv().await.expect("the timer ticks"));
    timer.abort();
    (output, took, lag)
}

/// The relay really slowed the call (else the test proves nothing), and the loop ran
/// meanwhile. A call that blocks the thread holds every tick for all of its time, so a
/// tick comes late by nearly the whole call; an awaited one leaves only scheduling
/// noise. The bound is half the call, not a fixed time: a loaded machine stretches the
/// call as much as any stall within it, so only a stall of seconds fails it.
fn assert_live(what: &str, took: Duration, lag: Duration) {
    assert!(took >= 2 * DELAY, "{what} did not go through the slow relay: it took {took:?}");
    assert!(lag < took / 2, "the event loop stalled {lag:?} while {what} waited {took:?}");
}

#[actix::test]
async fn a_slow_shared_rate_does_not_stall_the_arbiter() {
    let Some(server) = testing::server() else { return };
    let relay = SlowRelay::start(server, DELAY);
    let job = testing::job("slow-rate");
    let rate = RedisRate::per_arbiter(&relay.url, &job).await.expect("connect through the relay");
    let gate = HostGate::new(Some(Duration::from_secs(60)), Duration::ZERO).with_shared(Box::new(rate));
    // The first call also makes this Arbiter's connection: that must not block either.
    let (wait, took, lag) = lag_while(gate.wait_for("h.test")).await;
    assert_eq!(wait, Duration::ZERO, "the first start is free");
    assert_live("the first reservation", took, lag);
    let (wait, took, lag) = lag_while(gate.wait_for("h.test")).await;
    assert!(wait > Duration::from_secs(50), "the job's spacing holds: {wait:?}");
    assert_live("a reservation", took, lag);
}

#[actix::test]
async fn a_slow_name_reservation_does_not_stall_the_arbiter() {
    let Some(server) = testing::server() else { return };
    let relay = SlowRelay::start(server, DELAY);
    let job = testing::job("slow-names");
    let names = RedisNames::per_arbiter(&relay.url, &job).expect("connect through the relay");
    let (one, two) =
        (Url::parse("http://h.test/a/x.jpg").unwrap(), Url::parse("http://h.test/b/x.jpg").unwrap());
    let (free, took, lag) = lag_while(names.reserve("bucket/x.jpg", &one)).await;
    assert_eq!(free, Ok(true), "a free name");
    assert_live("the first name", took, lag);
    let (free, took, lag) = lag_while(names.reserve("bucket/x.jpg", &two)).await;
    assert_eq!(free, Ok(false), "another image's name");
    assert_live("a name", took, lag);
}
