//! The progress bar: one line, on a terminal only, with log lines printed above it (the
//! log drain goes through [`Progress::println`]). The Coordinator feeds it the counts.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{ImageCounts, PageCounts, human_bytes};

/// Cheap to clone; every clone draws the same bar.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
}

/// What the bar shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub pages: PageCounts,
    /// Pages the run will fetch, as far as it knows yet.
    pub pages_planned: u64,
    pub images: ImageCounts,
}

impl Progress {
    /// A bar on stderr when it is a terminal and `enabled`; `None` otherwise.
    pub fn for_stderr(enabled: bool) -> Option<Self> {
        (enabled && std::io::stderr().is_terminal()).then(|| Self::new(ProgressDrawTarget::stderr()))
    }

    fn new(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{wide_bar}] {pos}/{len} images  {msg}  eta {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar, started: Instant::now() }
    }

    pub fn update(&self, snapshot: &Snapshot) {
        let images = &snapshot.images;
        // The total grows as pages reveal images; estimate the rest from the pages left.
        let done_pages = snapshot.pages.ok + snapshot.pages.failed + snapshot.pages.skipped;
        let per_page = images.total.checked_div(snapshot.pages.ok).unwrap_or(0);
        let expected = images.total + snapshot.pages_planned.saturating_sub(done_pages) * per_page;
        self.bar.set_length(expected.max(images.total));
        self.bar.set_position(images.ok + images.failed + images.skipped);
        self.bar.set_message(line(snapshot, self.started.elapsed()));
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The bar's message: pages, bytes and rate, and failures and skips when there are any.
/// Short, so bar and message fit an 80-column terminal.
pub fn line(s: &Snapshot, elapsed: Duration) -> String {
    let i = &s.images;
    let rate = i.bytes as f64 / elapsed.as_secs_f64().max(0.001);
    let pages_done = s.pages.ok + s.pages.failed + s.pages.skipped;
    let mut text = format!(
        "pages {pages_done}/{}  {}  {}/s",
        s.pages_planned,
        human_bytes(i.bytes as f64),
        human_bytes(rate)
    );
    for (count, what) in [(i.failed + s.pages.failed, "failed"), (i.skipped + s.pages.skipped, "skipped")] {
        if count > 0 {
            text.push_str(&format!("  {count} {what}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_pages_outcomes_bytes_and_rate() {
        let s = Snapshot {
            pages: PageCounts { total: 3, ok: 2, failed: 1, skipped: 0, ..PageCounts::default() },
            pages_planned: 10,
            images: ImageCounts { total: 80, ok: 50, failed: 2, skipped: 3, bytes: 3 * 1024 * 1024 },
        };
        let text = line(&s, Duration::from_secs(2));
        assert_eq!(text, "pages 3/10  3.0 MiB  1.5 MiB/s  3 failed  3 skipped");
        let clean =
            Snapshot { images: ImageCounts { bytes: 1024, ..ImageCounts::default() }, ..Snapshot::default() };
        assert_eq!(line(&clean, Duration::from_secs(1)), "pages 0/0  1.0 KiB  1.0 KiB/s");
    }

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(812.0), "812 B");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(5.0 * 1024.0 * 1024.0 * 1024.0), "5.0 GiB");
    }

    #[test]
    fn the_bar_estimates_the_total_from_the_pages_left() {
        let progress = Progress::new(ProgressDrawTarget::hidden());
        let s = Snapshot {
            pages: PageCounts { total: 2, ok: 2, failed: 0, skipped: 0, ..PageCounts::default() },
            pages_planned: 10,
            images: ImageCounts { total: 80, ok: 30, failed: 0, skipped: 10, bytes: 0 },
        };
        progress.update(&s);
        assert_eq!(progress.bar.length(), Some(80 + 8 * 40));
        assert_eq!(progress.bar.position(), 40);
    }

    #[test]
    fn no_bar_when_stderr_is_not_a_terminal_or_it_is_turned_off() {
        assert!(Progress::for_stderr(false).is_none());
        if !std::io::stderr().is_terminal() {
            assert!(Progress::for_stderr(true).is_none());
        }
    }
}
