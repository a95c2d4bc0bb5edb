//! `image-scraper job status|cancel|retry`: a shared job seen, stopped and reopened from
//! outside, with no process of it needed (`--frontier URL --job NAME`). What it prints
//! is `key: value` lines, for people and for `grep`.

use std::fmt::Write as _;
use std::time::Duration;

use actix::System;
use anyhow::Context as _;

use crate::redis_job::{JobCounts, JobState, RedisFrontier};

/// The job `job` at `url`, refused with one line when no process ever joined it (a
/// typo'd name must not read as an empty job).
async fn open(url: &str, job: &str) -> anyhow::Result<RedisFrontier> {
    let context = || format!("--frontier {url}");
    let frontier = RedisFrontier::connect(url, job, &crate::app::node_name()).await.with_context(context)?;
    if !frontier.exists().await.with_context(context)? {
        anyhow::bail!("no job {job} at {url}");
    }
    Ok(frontier)
}

/// `job status`: the job's counts, where its work is and who holds it, read from Redis.
pub fn status(url: &str, job: &str) -> anyhow::Result<String> {
    System::new().block_on(async {
        let context = || format!("--frontier {url}");
        let frontier = open(url, job).await?;
        let counts = frontier.job_counts().await.with_context(context)?;
        let state = frontier.job_state().await.with_context(context)?;
        let expires = frontier.expires_in().await.with_context(context)?;
        Ok(render(url, job, &counts, &state, expires))
    })
}

/// `job cancel`: nothing more of the job is handed out; its processes end once what
/// they hold is done.
pub fn cancel(url: &str, job: &str) -> anyhow::Result<String> {
    System::new().block_on(async {
        let frontier = open(url, job).await?;
        frontier.cancel().await.with_context(|| format!("--frontier {url}"))?;
        Ok(format!(
            "job {job}: cancelled; its processes end once what they hold is done (job retry reopens it)\n"
        ))
    })
}

/// `job retry`: the job's failed images and detail pages go back to its queues, and a
/// cancelled or finished job is reopened; the next run of it (the same command, the
/// same `--job`) fetches them.
pub fn retry(url: &str, job: &str) -> anyhow::Result<String> {
    System::new().block_on(async {
        let context = || format!("--frontier {url}");
        let frontier = open(url, job).await?;
        let retried = frontier.retry().await.with_context(context)?;
        let mut out = format!("job: {job}\nqueued_again: {}\n", retried.queued);
        if retried.kept > 0 {
            let _ = writeln!(
                out,
                "not_queued: {} (failed under an older version: its record has no task)",
                retried.kept
            );
        }
        if retried.uncancelled {
            out.push_str("cancelled: no longer\n");
        }
        let next = match (retried.queued > 0 || retried.uncancelled, retried.kept > 0) {
            (true, _) => format!("run the job again (the same command, --job {job}) to fetch them"),
            (false, true) => {
                "nothing could be queued again: another --job name fetches everything anew".into()
            }
            (false, false) => "nothing had failed: nothing to do".into(),
        };
        let _ = writeln!(out, "next: {next}");
        Ok(out)
    })
}

fn render(url: &str, job: &str, c: &JobCounts, s: &JobState, expires: Option<Duration>) -> String {
    let state = match (c.accepted, c.finished(), c.cancelled) {
        (0, _, _) => "starting (nothing offered to it yet)",
        (_, true, _) => "done",
        (_, false, true) => "cancelled",
        (_, false, false) => "running",
    };
    // `done` first and then what it adds up from; `lost` and `open` make up the rest
    // of `accepted`.
    let mut out = format!(
        "job: {job}\nstate: {state}\naccepted: {}\ndone: {}\nok: {}\nfailed: {}\nskipped: {}\nreplaced: {}\ndetail_ok: {}\ndetail_failed: {}\nlost: {}\nopen: {}\nqueued: {}\nleased: {}\nduplicates: {}\n",
        c.accepted,
        c.done,
        c.ok,
        c.failed,
        c.skipped,
        c.replaced,
        c.detail_ok,
        c.detail_failed,
        c.lost,
        c.open,
        c.queued,
        c.leased,
        c.duplicates,
    );
    if c.finished() && c.failures() > 0 {
        let _ = writeln!(
            out,
            "hint: image-scraper job retry {job} --frontier {url} queues its {} failures again",
            c.failures()
        );
    }
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
        let text = render("redis://r.test/0", "cats", &counts, &state, None);
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
        let text =
            render("redis://r.test/0", "cats", &done, &JobState::default(), Some(Duration::from_secs(90)));
        assert!(text.contains("state: done\n") && text.contains("expires_in_secs: 90\n"), "{text}");
    }
}
