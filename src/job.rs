//! `image-scraper job status|cancel`: a shared job seen and stopped from outside, with
//! no process of it needed (`--frontier URL --job NAME`). What it prints is `key: value`
//! lines, for people and for `grep`.

use std::fmt::Write as _;
use std::time::Duration;

use actix::System;
use anyhow::Context as _;

use crate::frontier::{JobCounts, JobState, RedisFrontier};

/// `job status`: the job's counts, where its work is and who holds it, read from Redis.
pub fn status(url: &str, job: &str) -> anyhow::Result<String> {
    let node = crate::node_name();
    System::new().block_on(async {
        let context = || format!("--frontier {url}");
        let frontier = RedisFrontier::connect(url, job, &node).await.with_context(context)?;
        let counts = frontier.job_counts().await.with_context(context)?;
        let state = frontier.job_state().await.with_context(context)?;
        let expires = frontier.expires_in().await.with_context(context)?;
        Ok(render(job, &counts, &state, expires))
    })
}

/// `job cancel`: nothing more of the job is handed out; its processes end once what
/// they hold is done.
pub fn cancel(url: &str, job: &str) -> anyhow::Result<String> {
    let node = crate::node_name();
    System::new().block_on(async {
        let frontier =
            RedisFrontier::connect(url, job, &node).await.with_context(|| format!("--frontier {url}"))?;
        frontier.cancel().await.with_context(|| format!("--frontier {url}"))?;
        Ok(format!("job {job}: cancelled; its processes end once what they hold is done\n"))
    })
}

fn render(job: &str, c: &JobCounts, s: &JobState, expires: Option<Duration>) -> String {
    let state = match (c.accepted, c.finished(), c.cancelled) {
        (0, _, _) => "no such job (nothing was ever offered to it)",
        (_, true, _) => "done",
        (_, false, true) => "cancelled",
        (_, false, false) => "running",
    };
    let mut out = format!(
        "job: {job}\nstate: {state}\naccepted: {}\ndone: {}\nok: {}\nfailed: {}\nskipped: {}\nlost: {}\nopen: {}\nqueued: {}\nleased: {}\nduplicates: {}\ndetail_ok: {}\ndetail_failed: {}\n",
        c.accepted,
        c.done,
        c.ok,
        c.failed,
        c.skipped,
        c.lost,
        c.open,
        c.queued,
        c.leased,
        c.duplicates,
        c.detail_ok,
        c.detail_failed
    );
    if let Some(left) = expires {
        let _ = writeln!(out, "expires_in_secs: {}", left.as_secs());
    }
    for (host, leased) in &s.hosts {
        let _ = writeln!(out, "host: {host} in_flight={leased}");
    }
    for (origin, queued, wait_ms) in &s.origins {
        let _ = writeln!(out, "waiting: {origin} queued={queued} ready_in_ms={wait_ms}");
    }
    if s.waiting > s.origins.len() as u64 {
        let _ = writeln!(out, "waiting_origins: {}", s.waiting);
    }
    for (node, ago_ms, leases) in &s.nodes {
        let _ = writeln!(out, "process: {node} leases={leases} last_seen_ms_ago={ago_ms}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_job_says_where_its_work_is_and_who_holds_it() {
        let counts =
            JobCounts { accepted: 5, open: 3, done: 2, ok: 2, queued: 2, leased: 1, ..Default::default() };
        let state = JobState {
            hosts: vec![("a.test".into(), 1)],
            origins: vec![("http://a.test:80".into(), 2, 0)],
            waiting: 3,
            nodes: vec![("vm-1".into(), 120, 1)],
        };
        let text = render("cats", &counts, &state, None);
        for line in [
            "state: running",
            "open: 3",
            "host: a.test in_flight=1",
            "waiting: http://a.test:80 queued=2 ready_in_ms=0",
            "waiting_origins: 3",
            "process: vm-1 leases=1 last_seen_ms_ago=120",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
        }
        assert!(!text.contains("expires_in_secs"));
        let done = JobCounts { accepted: 5, done: 5, ok: 5, ..Default::default() };
        let text = render("cats", &done, &JobState::default(), Some(Duration::from_secs(90)));
        assert!(text.contains("state: done\n") && text.contains("expires_in_secs: 90\n"), "{text}");
    }
}
