//! What a run did: the counts the Coordinator keeps, one item per distinct image, and the
//! outputs made from them: the JSON report, the JSONL manifest, the list of failed URLs,
//! and the summary table for people. Plain data; never imports actix.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::exit::ExitCode;
use crate::html::Element;
use crate::settings::Mode;

/// Counts of listing pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PageCounts {
    /// Listing pages (ok + failed + skipped). Pages past the end of a walk that states no
    /// count (a 404, a repeated last page) are not counted at all.
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    /// Disallowed by robots.txt.
    pub skipped: u64,
    /// Detail pages (`DETAIL_SELECTOR`): the page per image a listing links to.
    pub detail_ok: u64,
    pub detail_failed: u64,
    /// Disallowed by robots.txt, or off `PAGE_HOST`.
    pub detail_skipped: u64,
    /// Pages (listing and detail) rendered in the browser.
    pub rendered: u64,
    /// Pages that looked built by JavaScript but were not rendered, for want of a
    /// browser: the end of the run says what to install.
    pub unrendered: u64,
}

/// Counts of distinct images found (after the host and extension filters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImageCounts {
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Bytes of the images saved by this run.
    pub bytes: u64,
}

/// Image URLs a filter dropped before they were counted as found (they are not in
/// `images.total`): a run that finds nothing must say which filter took what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Distinct image URLs on a host `IMAGE_HOST` does not take.
    pub other_host: u64,
    /// Distinct image URLs whose extension `--ext` does not list.
    pub extension: u64,
}

/// Why images were skipped, one count per reason (they add up to `images.skipped`), so
/// the summary can give the hint that fits each: `--force` helps only the first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Skips {
    /// Complete from an earlier run (the resume record).
    pub complete: u64,
    /// Disallowed by robots.txt.
    pub robots: u64,
    /// Outside `--min-size`/`--max-size`.
    pub size: u64,
    /// Anything else (a link whose thumbnail is already another image of the run).
    pub other: u64,
}

/// What a skip is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Complete,
    Robots,
    Size,
    Other,
}

impl Skips {
    pub fn add(&mut self, why: SkipReason) {
        *match why {
            SkipReason::Complete => &mut self.complete,
            SkipReason::Robots => &mut self.robots,
            SkipReason::Size => &mut self.size,
            SkipReason::Other => &mut self.other,
        } += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

/// What an item is: an image, or a page that failed (so the report says which page and
/// why, not only the log) or was rendered (so it says why and what the render found).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Image,
    /// A listing or detail page that failed (its images are unknown) or was rendered.
    Page,
}

/// One distinct image URL and what became of it, or a page that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub kind: Kind,
    pub url: String,
    /// The first page it was found on (0 for a `--urls` list).
    pub page: u32,
    /// Relative to the out dir.
    pub path: String,
    pub status: Status,
    /// What is on disk under `path` (0 when failed).
    pub bytes: u64,
    /// Requests made for it, retries included (0 when skipped).
    pub attempts: u32,
    /// Why it failed; `null` otherwise.
    pub error: Option<String>,
    /// Why it was skipped (complete from an earlier run, robots.txt, a size filter);
    /// `null` otherwise.
    pub reason: Option<String>,
    /// Only computed for a .jsonl manifest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Which rule found it (`img`, `picture`, `noscript`, `link`), so a user can see why
    /// this URL was chosen; `null` for a `--urls` list.
    pub element: Option<Element>,
    /// Why the URL is not the one the page offered first (a link target that was a page,
    /// replaced by its thumbnail); `null` otherwise.
    pub note: Option<String>,
    /// The detail page it was found on (`page` is then the listing page that linked to
    /// that detail page); `null` when found on a listing page.
    pub detail: Option<String>,
    /// A page that was rendered (or wanted a render, with no browser): how it went. Its
    /// fields sit beside the item's own.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub render: Option<RenderNote>,
}

/// What rendering a page did, for its report entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RenderNote {
    /// False when the page looked built by JavaScript but no browser was there.
    pub rendered: bool,
    /// Why it was rendered (`RENDER`, no image in its HTML, a marker).
    pub why: String,
    pub render_ms: u64,
    /// Scroll steps and load-more clicks.
    pub scroll_steps: u32,
    /// Images (and detail links) the static HTML gave, and the rendered DOM.
    pub images_static: usize,
    pub images_rendered: usize,
    /// Distinct images the page asked the network for (the browser was refused them),
    /// and how many of those the extractor did not list: a cross-check.
    pub network_images: usize,
    pub network_only: usize,
    /// Why scrolling stopped before the page settled (`SCROLL_MAX`,
    /// `RENDER_TIMEOUT_SECS`); `null` when it settled.
    pub capped: Option<String>,
    /// Navigations away from the page the renderer refused.
    pub navigations_blocked: u32,
}

/// The Coordinator's answer to `Join`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Why the run stopped before the work was done (`interrupted`, `disk full: ...`).
    pub stopped: Option<String>,
    /// A shared job's share: what this process did not do stays with the job, so a stop
    /// fails none of it.
    pub shared: bool,
    /// A shared job's tasks this process gave back untried when it stopped: they are the
    /// job's still, not failures, and the stopped line must not call them failed.
    pub handed_back: u64,
    pub pages: PageCounts,
    pub images: ImageCounts,
    /// `--dry-run`: image URLs listed instead of downloaded.
    pub listed: u64,
    /// What the filters dropped before counting, by filter.
    pub dropped: Dropped,
    /// `images.skipped` by reason.
    pub skips: Skips,
    /// Filled only when a report or a failed list was asked for, so a run without one
    /// keeps no per-image record.
    pub items: Vec<Item>,
}

impl Summary {
    pub fn all_succeeded(&self) -> bool {
        self.pages.failed == 0 && self.pages.detail_failed == 0 && self.images.failed == 0
    }

    /// Success when every page and image succeeded, failure otherwise.
    pub fn exit_code(&self) -> ExitCode {
        if self.all_succeeded() { ExitCode::Success } else { ExitCode::Failure }
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
        rows.join("\n")
    }

    /// The images that failed (what `--urls` can fetch again).
    pub fn failed_urls(&self) -> impl Iterator<Item = &str> {
        self.failed(Kind::Image).map(|i| i.url.as_str())
    }

    fn failed(&self, kind: Kind) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(move |i| i.status == Status::Failed && i.kind == kind)
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
    items: &'a [Item],
}

/// Writes the JSON report through a temporary file, so `path` never holds half a report.
pub fn write_json(
    path: &Path,
    mode: Mode,
    workers: usize,
    insecure: bool,
    elapsed: Duration,
    summary: &Summary,
) -> std::io::Result<()> {
    let report = Report {
        mode,
        workers,
        insecure,
        elapsed_secs: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        pages: &summary.pages,
        images: &summary.images,
        skipped_by: &summary.skips,
        dropped: &summary.dropped,
        items: &summary.items,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
    crate::storage::write_atomically(path, &json)
}

/// The manifest: one JSON object per line and per image (url, page, path, bytes,
/// sha256, status, error, reason).
pub fn write_jsonl(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let mut text = Vec::new();
    for item in &summary.items {
        serde_json::to_writer(&mut text, item).map_err(std::io::Error::other)?;
        text.push(b'\n');
    }
    crate::storage::write_atomically(path, &text)
}

/// Fills in the SHA-256 of the images skipped as stored by an earlier run (asked of the
/// store by path and size), so every image line of the manifest has one, as documented.
pub fn hash_skipped(summary: &mut Summary, sha256: impl Fn(&str, u64) -> Option<String>) {
    for item in &mut summary.items {
        if item.kind == Kind::Image
            && item.status == Status::Skipped
            && item.sha256.is_none()
            && item.bytes > 0
            && !item.path.is_empty()
        {
            item.sha256 = sha256(&item.path, item.bytes);
        }
    }
}

/// The URLs of the failed images, one per line: what `--urls` reads back. Failed pages
/// come first as comments (`# page 3 failed: HTTP status 500: URL`), which `--urls`
/// skips: one file tells everything that failed and still reads back as the images' list.
pub fn write_failed(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let pages = summary.failed(Kind::Page).map(|i| {
        let error = i.error.as_deref().unwrap_or("failed").replace(['\n', '\r'], " ");
        format!("# page {} failed: {error}: {}\n", i.page, i.url)
    });
    let text: String = pages.chain(summary.failed_urls().map(|u| format!("{u}\n"))).collect();
    crate::storage::write_atomically(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            items: vec![
                Item {
                    kind: Kind::Image,
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
                    render: None,
                },
                Item {
                    kind: Kind::Image,
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
                    render: None,
                },
                Item {
                    kind: Kind::Page,
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
                    render: None,
                },
            ],
        }
    }

    #[test]
    fn report_has_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let summary = summary();
        write_json(&path, Mode::Sync, 3, false, Duration::from_millis(1234), &summary).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["mode"], "sync");
        assert_eq!(v["workers"], 3);
        assert_eq!(v["insecure"], false);
        assert_eq!(v["elapsed_secs"], 1.234);
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
        write_jsonl(&manifest, &summary).unwrap();
        let text = std::fs::read_to_string(&manifest).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["sha256"], "ab".repeat(32));
        assert_eq!(lines[1]["path"], "b.jpg");
        assert_eq!(lines[2]["kind"], "page");
        let failed = dir.path().join("failed.txt");
        write_failed(&failed, &summary).unwrap();
        let text = std::fs::read_to_string(&failed).unwrap();
        assert_eq!(text, "# page 2 failed: HTTP status 500: http://h/p2/cats.html\nhttp://h/a.jpg\n");
        let images: Vec<&str> = crate::urllist::entries(&text).map(|(_, url)| url).collect();
        assert_eq!(images, ["http://h/a.jpg"], "it reads back as the images' list");
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
        summary.skips = Skips { complete: 3, robots: 2, ..Skips::default() };
        summary.dropped = Dropped { other_host: 5, extension: 0 };
        let table = summary.table(Duration::from_secs(1));
        assert!(
            table.contains("  skipped  3 complete from an earlier run, 2 robots.txt disallowed\n"),
            "{table}"
        );
        assert!(table.ends_with("  dropped  5 on other hosts (IMAGE_HOST)"), "{table}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_json(&path, Mode::Sync, 1, false, Duration::ZERO, &summary).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["skipped_by"], serde_json::json!({"complete": 3, "robots": 2, "size": 0, "other": 0}));
        assert_eq!(v["dropped"], serde_json::json!({"other_host": 5, "extension": 0}));
    }
}
