//! What a run did, for people and scripts: the summary lines and table, the JSON report,
//! the JSONL manifest and the list of failed URLs, made from the counts the Coordinator
//! publishes (`crate::counts`). Never imports actix.
//!
//! # Layout
//!
//! - `files`: [`ReportFiles`], the outputs of one line per item, written as items end.

mod files;

pub use files::{HashStored, ReportFiles, RunFacts, SharedReport};

use std::time::Duration;

use serde::Serialize;

pub use crate::counts::{Dropped, ImageCounts, JobCounts, PageCounts, Skips, Summary};
use crate::exit::ExitCode;
use crate::settings::Mode;

impl Summary {
    pub fn all_succeeded(&self) -> bool {
        self.pages.failed == 0 && self.pages.detail_failed == 0 && self.images.failed == 0
    }

    /// Success when every page and image succeeded, failure otherwise. A shared job
    /// succeeds or fails as a whole, the same on every process: its counts decide when
    /// they could be read.
    pub fn exit_code(&self) -> ExitCode {
        let succeeded = match &self.job {
            Some(job) => job.all_succeeded(),
            None => self.all_succeeded(),
        };
        if succeeded { ExitCode::Success } else { ExitCode::Failure }
    }

    /// The original program's line, kept word for word: scripts grep for it.
    pub fn images_line(&self) -> String {
        let i = &self.images;
        let done = i.ok + i.skipped;
        format!("Done, success: {done}/{}, failure: {}/{}", i.total, i.total - done, i.total)
    }

    /// The line that comes first when the run stopped early.
    pub fn stopped_line(&self) -> Option<String> {
        self.stopped.as_ref().map(|why| match self.shared {
            false => format!("Stopped early: {why}; what was not done counts as failed"),
            true => format!(
                "Stopped early: {why}; {} in flight handed back to the shared job, which still holds what was not done",
                self.handed_back
            ),
        })
    }

    pub fn pages_line(&self) -> String {
        let p = &self.pages;
        let mut line = format!("Pages, success: {}/{}, failure: {}/{}", p.ok, p.total, p.failed, p.total);
        if p.skipped > 0 {
            line.push_str(&format!(", skipped (robots.txt): {}/{}", p.skipped, p.total));
        }
        line
    }

    /// The detail pages' line, when there were any.
    pub fn details_line(&self) -> Option<String> {
        let p = &self.pages;
        let details = p.detail_ok + p.detail_failed + p.detail_skipped;
        if details == 0 {
            return None;
        }
        let mut line = format!(
            "Detail pages, success: {}/{details}, failure: {}/{details}",
            p.detail_ok, p.detail_failed
        );
        if p.detail_skipped > 0 {
            line.push_str(&format!(", skipped: {}/{details}", p.detail_skipped));
        }
        Some(line)
    }

    /// The end-of-run table for people.
    pub fn table(&self, elapsed: Duration) -> String {
        let (p, i) = (&self.pages, &self.images);
        let secs = elapsed.as_secs_f64().max(0.001);
        let mut rows: Vec<String> = self.stopped_line().into_iter().collect();
        // A URL list walks no pages: a row of zeros would only puzzle.
        if p.total + p.ok + p.failed + p.skipped > 0 {
            rows.push(format!("  pages    {:>6} ok {:>6} failed {:>6} skipped", p.ok, p.failed, p.skipped));
        }
        if p.detail_ok + p.detail_failed + p.detail_skipped > 0 {
            rows.push(format!(
                "  details  {:>6} ok {:>6} failed {:>6} skipped",
                p.detail_ok, p.detail_failed, p.detail_skipped
            ));
        }
        rows.extend([
            format!(
                "  images   {:>6} ok {:>6} failed {:>6} skipped   of {}",
                i.ok, i.failed, i.skipped, i.total
            ),
            format!(
                "  saved    {} in {:.2} s   {}/s   {:.0} images/s",
                human_bytes(i.bytes as f64),
                secs,
                human_bytes(i.bytes as f64 / secs),
                i.ok as f64 / secs
            ),
        ]);
        if self.listed > 0 {
            rows.push(format!("  listed   {:>6} (dry run: nothing downloaded)", self.listed));
        }
        let s = &self.skips;
        let why = [
            (s.complete, "complete from an earlier run"),
            (s.robots, "robots.txt disallowed"),
            (s.size, "size filter"),
            (s.dimensions, "dimension filter"),
            (s.opt_out, "opted out (X-Robots-Tag)"),
            (s.duplicate, "duplicate content"),
            (s.other, "other"),
        ];
        if let Some(line) = counted(&why) {
            rows.push(format!("  skipped  {line}"));
        }
        let d = &self.dropped;
        if let Some(line) =
            counted(&[(d.other_host, "on other hosts (IMAGE_HOST)"), (d.extension, "by --ext")])
        {
            rows.push(format!("  dropped  {line}"));
        }
        if let Some(line) = counted(&[(p.rendered, "rendered"), (p.unrendered, "not rendered (no browser)")])
        {
            rows.push(format!("  browser  {line}"));
        }
        if let Some(j) = &self.job {
            // The rows above are this process's share; the exit status follows this one.
            rows.push(format!(
                "  job      {:>6} ok {:>6} failed {:>6} skipped   of {} (every process; {} open)",
                j.ok,
                j.failures(),
                j.skipped,
                j.accepted,
                j.open
            ));
        }
        rows.join("\n")
    }
}

/// `3 complete from an earlier run, 2 robots.txt disallowed`; `None` when all are 0.
fn counted(counts: &[(u64, &str)]) -> Option<String> {
    let parts: Vec<String> =
        counts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `1.5 MiB`, `812 B`.
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{value:.0} {}", UNITS[0]) } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[derive(Serialize)]
struct Report<'a> {
    mode: Mode,
    workers: usize,
    /// `--insecure`: no certificate was checked, so what was downloaded over HTTPS may
    /// not be what the server sent. Always present, so a reader never has to guess.
    insecure: bool,
    elapsed_secs: f64,
    pages: &'a PageCounts,
    images: &'a ImageCounts,
    /// `images.skipped` by reason.
    skipped_by: &'a Skips,
    /// Image URLs the filters dropped before counting (not in `images.total`).
    dropped: &'a Dropped,
    /// A shared job's counts, every process's; `pages` and `images` are then this
    /// process's share. Left out for a run of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<&'a JobCounts>,
    /// The run's peak resident memory in KiB (`null` where the system does not tell):
    /// a user sizing a machine for a long list reads it here.
    peak_rss_kib: Option<u64>,
}

/// The JSON report up to its items: the counts, then `"items": [`, for
/// [`ReportFiles`] to follow with the items and close.
fn report_head(summary: &Summary, facts: RunFacts) -> Vec<u8> {
    let report = Report {
        mode: facts.mode,
        workers: facts.workers,
        insecure: facts.insecure,
        elapsed_secs: (facts.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        pages: &summary.pages,
        images: &summary.images,
        skipped_by: &summary.skips,
        dropped: &summary.dropped,
        job: summary.job.as_ref(),
        peak_rss_kib: facts.peak_rss_kib,
    };
    let mut json = serde_json::to_vec_pretty(&report).unwrap_or_else(|_| b"{}".to_vec());
    // `{ ... \n}`: the object stays open for its last key.
    json.truncate(json.iter().rposition(|b| *b == b'}').unwrap_or(0));
    while json.last().is_some_and(u8::is_ascii_whitespace) {
        json.pop();
    }
    json.extend_from_slice(if json.len() > 1 {
        b",\n  \"items\": [\n    "
    } else {
        b"\n  \"items\": [\n    "
    });
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::{Item, ItemKind, Status};
    use crate::html::Element;
    use std::path::Path;

    fn summary() -> Summary {
        Summary {
            stopped: None,
            shared: false,
            handed_back: 0,
            pages: PageCounts { total: 2, ok: 1, failed: 1, skipped: 0, ..PageCounts::default() },
            images: ImageCounts { total: 2, ok: 1, failed: 1, skipped: 0, bytes: 2048 },
            listed: 0,
            dropped: Dropped::default(),
            skips: Skips::default(),
            job: None,
        }
    }

    fn items() -> Vec<Item> {
        vec![
            Item {
                kind: ItemKind::Image,
                url: "http://h/a.jpg".into(),
                page: 1,
                path: "a.jpg".into(),
                status: Status::Failed,
                bytes: 0,
                attempts: 4,
                error: Some("HTTP status 404".into()),
                reason: None,
                sha256: None,
                element: Some(Element::Img),
                note: None,
                detail: None,
                info: Default::default(),
                render: None,
                carried: None,
            },
            Item {
                kind: ItemKind::Image,
                url: "http://h/b.jpg".into(),
                page: 1,
                path: "b.jpg".into(),
                status: Status::Ok,
                bytes: 2048,
                attempts: 1,
                error: None,
                reason: None,
                sha256: Some("ab".repeat(32)),
                element: None,
                note: None,
                detail: None,
                info: Default::default(),
                render: None,
                carried: None,
            },
            Item {
                kind: ItemKind::Page,
                url: "http://h/p2/cats.html".into(),
                page: 2,
                path: String::new(),
                status: Status::Failed,
                bytes: 0,
                attempts: 4,
                error: Some("HTTP status 500".into()),
                reason: None,
                sha256: None,
                element: None,
                note: None,
                detail: None,
                info: Default::default(),
                render: None,
                carried: None,
            },
        ]
    }

    /// Writes `summary`'s report as a run does: the items as they end, the rest at the end.
    fn write(report: Option<(&Path, bool)>, failed: Option<&Path>, summary: &Summary, workers: usize) {
        let report =
            report.map(|(path, json)| (path, (!json).then_some(crate::manifest::ManifestKind::Jsonl)));
        let mut files = ReportFiles::create(report, &[], failed, None).unwrap().unwrap();
        for item in items() {
            crate::counts::ItemSink::write(&mut files, &item);
        }
        let facts = RunFacts {
            mode: Mode::Sync,
            workers,
            insecure: false,
            elapsed: Duration::from_millis(1234),
            peak_rss_kib: Some(2048),
        };
        assert_eq!(files.finish(summary, facts), Vec::<String>::new());
    }

    fn write_json(path: &Path, summary: &Summary) -> serde_json::Value {
        write(Some((path, true)), None, summary, 3);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn a_shared_jobs_counts_decide_the_status_and_sit_beside_the_share() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let alone = summary();
        let job = JobCounts { accepted: 9, done: 9, ok: 9, ..JobCounts::default() };
        let share = Summary { shared: true, job: Some(job), ..summary() };
        // This process's share failed one image, which another process then did: the
        // job, the same on every process, decides.
        assert_eq!(alone.exit_code(), ExitCode::Failure);
        assert_eq!(share.exit_code(), ExitCode::Success);
        let failed = Summary { job: Some(JobCounts { failed: 1, ..job }), ..share.clone() };
        assert_eq!(failed.exit_code(), ExitCode::Failure);
        assert!(share.table(Duration::from_secs(1)).contains("job           9 ok      0 failed"));
        assert!(!alone.table(Duration::from_secs(1)).contains("job"));
        let v = write_json(&path, &share);
        assert_eq!((&v["job"]["accepted"], &v["job"]["ok"]), (&serde_json::json!(9), &serde_json::json!(9)));
        assert_eq!(v["images"]["ok"], 1, "images are this process's share");
        let v = write_json(&path, &alone);
        assert!(v.get("job").is_none(), "a run of its own has no job");
    }

    #[test]
    fn report_has_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let summary = summary();
        let v = write_json(&path, &summary);
        assert_eq!(v["mode"], "sync");
        assert_eq!(v["workers"], 3);
        assert_eq!(v["insecure"], false);
        assert_eq!(v["elapsed_secs"], 1.234);
        assert_eq!(v["peak_rss_kib"], 2048);
        assert_eq!(
            v["pages"],
            serde_json::json!({"total": 2, "ok": 1, "failed": 1, "skipped": 0,
                "detail_ok": 0, "detail_failed": 0, "detail_skipped": 0, "rendered": 0, "unrendered": 0})
        );
        assert!(v["items"][0].get("rendered").is_none(), "render fields only on a rendered page");
        assert_eq!(v["images"]["failed"], 1);
        assert_eq!(v["items"][0]["status"], "failed");
        assert_eq!(v["items"][0]["error"], "HTTP status 404");
        assert!(v["items"][0]["reason"].is_null());
        assert_eq!(
            (&v["items"][0]["element"], &v["items"][1]["element"]),
            (&"img".into(), &serde_json::Value::Null)
        );
        assert!(v["items"][0]["note"].is_null());
        assert!(v["items"][0]["detail"].is_null(), "found on a listing page");
        assert_eq!((&v["items"][0]["kind"], &v["items"][2]["kind"]), (&"image".into(), &"page".into()));
        assert_eq!(v["items"][2]["error"], "HTTP status 500");
        assert_eq!(summary.exit_code(), crate::exit::ExitCode::Failure);
        assert_eq!(summary.images_line(), "Done, success: 1/2, failure: 1/2");
    }

    #[test]
    fn manifest_and_failed_list() {
        let dir = tempfile::tempdir().unwrap();
        let summary = summary();
        let manifest = dir.path().join("m.jsonl");
        let failed = dir.path().join("failed.txt");
        write(Some((&manifest, false)), Some(&failed), &summary, 1);
        let text = std::fs::read_to_string(&manifest).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["sha256"], "ab".repeat(32));
        assert_eq!(lines[1]["path"], "b.jpg");
        assert_eq!(lines[2]["kind"], "page");
        let text = std::fs::read_to_string(&failed).unwrap();
        assert_eq!(text, "# page 2 failed: HTTP status 500: http://h/p2/cats.html\nhttp://h/a.jpg\n");
        let spec = crate::urllist::ListSpec {
            inputs: vec![crate::urllist::Input::File(failed.clone())],
            format: None,
            url_column: "url".into(),
        };
        let rows = crate::urllist::open(&spec).unwrap();
        let images: Vec<String> = rows.map(|row| row.unwrap().url).collect();
        assert_eq!(images, ["http://h/a.jpg"], "it reads back as the images' list");
        let leftovers: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 2, "no part file left: {leftovers:?}");
    }

    #[test]
    fn a_report_with_no_items_is_still_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let files = ReportFiles::create(Some((&path, None)), &[], None, None).unwrap().unwrap();
        let facts = RunFacts {
            mode: Mode::Async,
            workers: 1,
            insecure: false,
            elapsed: Duration::ZERO,
            peak_rss_kib: None,
        };
        assert!(files.finish(&summary(), facts).is_empty());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["items"], serde_json::json!([]));
        assert_eq!(v["images"]["total"], 2);
    }

    #[test]
    fn a_stop_that_handed_work_back_to_a_shared_job_calls_none_of_it_failed() {
        let alone = Summary { stopped: Some("interrupted".into()), ..summary() };
        assert!(alone.stopped_line().unwrap().ends_with("what was not done counts as failed"));
        let shared = Summary { shared: true, handed_back: 2, ..alone };
        let line = shared.stopped_line().unwrap();
        assert!(
            line.contains("2 in flight handed back to the shared job") && !line.contains("failed"),
            "{line}"
        );
    }

    #[test]
    fn a_run_that_walked_no_pages_has_no_pages_row() {
        let summary = Summary { pages: PageCounts::default(), ..summary() };
        let table = summary.table(Duration::from_secs(2));
        assert!(!table.contains("pages"), "{table}");
        assert!(table.contains("images        1 ok"), "{table}");
    }

    #[test]
    fn the_table_reads_at_a_glance() {
        let table = summary().table(Duration::from_secs(2));
        assert!(table.contains("pages         1 ok      1 failed      0 skipped"), "{table}");
        assert!(!table.contains("browser"), "no browser row when nothing was rendered: {table}");
        assert!(table.contains("images        1 ok      1 failed      0 skipped   of 2"), "{table}");
        assert!(table.contains("saved    2.0 KiB in 2.00 s   1.0 KiB/s   0 images/s"), "{table}");
        assert!(
            !table.contains("\n  skipped  ") && !table.contains("dropped"),
            "no reasons to give: {table}"
        );
    }

    #[test]
    fn the_table_gives_each_reason_its_count() {
        let mut summary = summary();
        summary.skips = Skips { complete: 3, robots: 2, dimensions: 4, opt_out: 1, ..Skips::default() };
        summary.dropped = Dropped { other_host: 5, extension: 0 };
        let table = summary.table(Duration::from_secs(1));
        assert!(
            table.contains(
                "  skipped  3 complete from an earlier run, 2 robots.txt disallowed, 4 dimension filter, \
                 1 opted out (X-Robots-Tag)\n"
            ),
            "{table}"
        );
        assert!(table.ends_with("  dropped  5 on other hosts (IMAGE_HOST)"), "{table}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let v = write_json(&path, &summary);
        assert_eq!(
            v["skipped_by"],
            serde_json::json!({"complete": 3, "robots": 2, "size": 0,
            "dimensions": 4, "opt_out": 1, "duplicate": 0, "other": 0})
        );
        assert_eq!(v["dropped"], serde_json::json!({"other_host": 5, "extension": 0}));
    }
}
