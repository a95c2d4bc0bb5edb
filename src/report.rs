//! What a run did: the counts the Coordinator keeps, one item per distinct image, and the
//! JSON report written from them. Plain data; never imports actix.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::settings::Mode;

/// Counts of listing pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PageCounts {
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
}

/// Counts of distinct images found (after the host filter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImageCounts {
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Bytes of the images saved by this run.
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

/// One distinct image URL and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub url: String,
    /// The first page it was found on.
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
}

/// The Coordinator's answer to `Join`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub pages: PageCounts,
    pub images: ImageCounts,
    /// Filled only when a report was asked for, so a run without one keeps no per-image
    /// record.
    pub items: Vec<Item>,
}

impl Summary {
    pub fn all_succeeded(&self) -> bool {
        self.pages.failed == 0 && self.images.failed == 0
    }

    /// 0 when every page and image succeeded, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.all_succeeded() { 0 } else { 1 }
    }

    /// The original program's line, kept word for word: scripts grep for it.
    pub fn images_line(&self) -> String {
        let i = &self.images;
        let done = i.ok + i.skipped;
        format!(
            "Done, success: {done}/{}, failure: {}/{}",
            i.total,
            i.total - done,
            i.total
        )
    }

    pub fn pages_line(&self) -> String {
        let p = &self.pages;
        format!(
            "Pages, success: {}/{}, failure: {}/{}",
            p.ok, p.total, p.failed, p.total
        )
    }
}

#[derive(Serialize)]
struct Report<'a> {
    mode: Mode,
    workers: usize,
    elapsed_secs: f64,
    pages: &'a PageCounts,
    images: &'a ImageCounts,
    items: &'a [Item],
}

/// Writes the JSON report through a temporary file, so `path` never holds half a report.
pub fn write(
    path: &Path,
    mode: Mode,
    workers: usize,
    elapsed: Duration,
    summary: &Summary,
) -> std::io::Result<()> {
    let report = Report {
        mode,
        workers,
        elapsed_secs: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        pages: &summary.pages,
        images: &summary.images,
        items: &summary.items,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(std::io::Error::other)?;
    crate::storage::write_atomically(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let summary = Summary {
            pages: PageCounts {
                total: 2,
                ok: 1,
                failed: 1,
            },
            images: ImageCounts {
                total: 1,
                ok: 0,
                failed: 1,
                skipped: 0,
                bytes: 0,
            },
            items: vec![Item {
                url: "http://h/a.jpg".into(),
                page: 1,
                path: "a.jpg".into(),
                status: Status::Failed,
                bytes: 0,
                attempts: 4,
                error: Some("HTTP 404".into()),
            }],
        };
        write(&path, Mode::Sync, 3, Duration::from_millis(1234), &summary).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["mode"], "sync");
        assert_eq!(v["workers"], 3);
        assert_eq!(v["elapsed_secs"], 1.234);
        assert_eq!(v["pages"], serde_json::json!({"total": 2, "ok": 1, "failed": 1}));
        assert_eq!(v["images"]["failed"], 1);
        assert_eq!(v["items"][0]["status"], "failed");
        assert_eq!(v["items"][0]["error"], "HTTP 404");
        assert_eq!(summary.exit_code(), 1);
        assert_eq!(summary.images_line(), "Done, success: 0/1, failure: 1/1");
    }
}
