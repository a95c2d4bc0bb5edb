//! The progress bar: one line, on a terminal only, with log lines printed above it (the
//! log drain goes through [`Progress::println`]). The Coordinator feeds it the counts.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::counts::CountsWatch;
pub use crate::counts::{PagesPlanned, Snapshot};
use crate::report::human_bytes;

/// Cheap to clone; every clone draws the same bar.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    /// Read at every redraw (the bar ticks on its own), so a pause counts down and the
    /// ETA appears only once the total is known, between two of the Coordinator's updates.
    shown: Arc<Mutex<Shown>>,
}

#[derive(Debug, Default)]
struct Shown {
    /// The image total is known (the page count is), so a bar and an ETA mean something.
    total_known: bool,
    /// The host paused longest, and until when: shown instead of an ETA that would only
    /// freeze while nothing can move.
    pause: Option<(String, Instant)>,
}

const KNOWN: &str = "{spinner} [{wide_bar}] {pos}/{len} images  {msg}  {tail}";
const UNKNOWN: &str = "{spinner} {pos} done of {len} images found so far  {msg}  {tail}";

impl Progress {
    /// A bar on stderr when it is a terminal and `enabled`; `None` otherwise.
    pub fn for_stderr(enabled: bool) -> Option<Self> {
        (enabled && std::io::stderr().is_terminal()).then(|| Self::new(ProgressDrawTarget::stderr()))
    }

    fn new(target: ProgressDrawTarget) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let progress = Self { bar, started: Instant::now(), shown: Arc::default() };
        progress.bar.set_style(progress.style(UNKNOWN));
        progress.bar.enable_steady_tick(Duration::from_millis(200));
        progress
    }

    fn style(&self, template: &str) -> ProgressStyle {
        let shown = self.shown.clone();
        ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> ").with_key(
            "tail",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let shown = shown.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let pause = shown.pause.as_ref().filter(|(_, until)| *until > now);
                let eta = shown.total_known.then(|| state.eta());
                let _ = w.write_str(&tail(eta, pause.map(|(host, until)| (host.as_str(), *until - now))));
            },
        )
    }

    pub fn update(&self, snapshot: &Snapshot) {
        let images = &snapshot.images;
        let known = matches!(snapshot.pages_planned, PagesPlanned::Known(_) | PagesPlanned::List(_));
        let expected = match snapshot.pages_planned {
            // The total grows as pages reveal images; estimate the rest from the pages left.
            PagesPlanned::Known(planned) => {
                let done_pages = snapshot.pages.ok + snapshot.pages.failed + snapshot.pages.skipped;
                let per_page = images.total.checked_div(snapshot.pages.ok).unwrap_or(0);
                images.total + planned.saturating_sub(done_pages) * per_page
            }
            // The list is read as the run goes: its rows, not what was read so far.
            PagesPlanned::List(rows) => rows,
            PagesPlanned::NoPages | PagesPlanned::Unknown => images.total,
        };
        let was_known = std::mem::replace(&mut self.lock().total_known, known);
        if was_known != known {
            self.bar.set_style(self.style(if known { KNOWN } else { UNKNOWN }));
        }
        self.bar.set_length(expected.max(images.total));
        self.bar.set_position(images.ok + images.failed + images.skipped);
        self.bar.set_message(line(snapshot, self.started.elapsed()));
    }

    /// `host` answered 429 or 503: nothing goes to it for `wait`. The bar says so until
    /// then (the longest pause shows when several hosts are paused).
    pub fn paused(&self, host: &str, wait: Duration) {
        let until = Instant::now() + wait;
        let mut shown = self.lock();
        if shown.pause.as_ref().is_none_or(|(_, longest)| until > *longest) {
            shown.pause = Some((host.to_string(), until));
        }
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shown> {
        self.shown.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The bar's message: pages, bytes and rate, and failures and skips when there are any.
/// Short, so bar and message fit an 80-column terminal.
pub fn line(s: &Snapshot, elapsed: Duration) -> String {
    let i = &s.images;
    let rate = i.bytes as f64 / elapsed.as_secs_f64().max(0.001);
    let pages_done = s.pages.ok + s.pages.failed + s.pages.skipped;
    let mut text = match s.pages_planned {
        PagesPlanned::NoPages | PagesPlanned::List(_) => String::new(),
        PagesPlanned::Unknown => format!("pages {pages_done} so far  "),
        PagesPlanned::Known(planned) => format!("pages {pages_done}/{planned}  "),
    };
    text.push_str(&format!("{}  {}/s", human_bytes(i.bytes as f64), human_bytes(rate)));
    for (count, what) in [(i.failed + s.pages.failed, "failed"), (i.skipped + s.pages.skipped, "skipped")] {
        if count > 0 {
            text.push_str(&format!("  {count} {what}"));
        }
    }
    text
}

/// The bar's end: a paused host and how long it still waits, else the ETA when the total
/// is known, else nothing (an ETA for a total that is only a guess is a fake).
pub fn tail(eta: Option<Duration>, pause: Option<(&str, Duration)>) -> String {
    match (pause, eta) {
        (Some((host, left)), _) => format!("paused: {host} {}s", left.as_secs_f64().ceil() as u64),
        (None, Some(eta)) => format!("eta {:#}", HumanDuration(eta)),
        (None, None) => String::new(),
    }
}

/// The Coordinator's view of the bar.
impl CountsWatch for Progress {
    fn update(&self, snapshot: &Snapshot) {
        Progress::update(self, snapshot);
    }

    fn finish(&self) {
        Progress::finish(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counts::{ImageCounts, PageCounts};

    #[test]
    fn the_line_says_pages_outcomes_bytes_and_rate() {
        let s = Snapshot {
            pages: PageCounts { total: 3, ok: 2, failed: 1, skipped: 0, ..PageCounts::default() },
            pages_planned: PagesPlanned::Known(10),
            images: ImageCounts { total: 80, ok: 50, failed: 2, skipped: 3, bytes: 3 * 1024 * 1024 },
        };
        let text = line(&s, Duration::from_secs(2));
        assert_eq!(text, "pages 3/10  3.0 MiB  1.5 MiB/s  3 failed  3 skipped");
    }

    #[test]
    fn a_page_count_not_known_yet_is_not_shown_as_one() {
        let s = Snapshot {
            pages: PageCounts { total: 1, ok: 1, ..PageCounts::default() },
            pages_planned: PagesPlanned::Unknown,
            images: ImageCounts { total: 3, ok: 1, bytes: 1024, ..ImageCounts::default() },
        };
        assert_eq!(line(&s, Duration::from_secs(1)), "pages 1 so far  1.0 KiB  1.0 KiB/s");
        assert_eq!(tail(None, None), "", "no ETA for a total that is a guess");
        let progress = Progress::new(ProgressDrawTarget::hidden());
        progress.update(&s);
        assert_eq!(progress.bar.length(), Some(3), "the images found so far, no estimate");
    }

    #[test]
    fn a_url_list_shows_no_pages() {
        let clean =
            Snapshot { images: ImageCounts { bytes: 1024, ..ImageCounts::default() }, ..Snapshot::default() };
        assert_eq!(clean.pages_planned, PagesPlanned::NoPages);
        assert_eq!(line(&clean, Duration::from_secs(1)), "1.0 KiB  1.0 KiB/s");
    }

    #[test]
    fn a_counted_list_shows_its_rows_as_the_total_before_they_are_read() {
        let s = Snapshot {
            pages_planned: PagesPlanned::List(1000),
            images: ImageCounts { total: 40, ok: 10, ..ImageCounts::default() },
            ..Snapshot::default()
        };
        let progress = Progress::new(ProgressDrawTarget::hidden());
        progress.update(&s);
        assert_eq!(progress.bar.length(), Some(1000), "the list's rows, not the rows read so far");
        assert!(progress.lock().total_known, "an ETA can be told");
        let piped = Snapshot { pages_planned: PagesPlanned::NoPages, ..s };
        progress.update(&piped);
        assert!(!progress.lock().total_known, "a pipe's length is not known until its end");
    }

    #[test]
    fn a_paused_host_shows_instead_of_the_eta() {
        assert_eq!(tail(Some(Duration::from_secs(65)), None), "eta 65s");
        let pause = Some(("127.0.0.1", Duration::from_millis(57_200)));
        assert_eq!(tail(Some(Duration::ZERO), pause), "paused: 127.0.0.1 58s");
        assert_eq!(tail(None, pause), "paused: 127.0.0.1 58s");
        let progress = Progress::new(ProgressDrawTarget::hidden());
        progress.paused("a.example", Duration::from_secs(60));
        progress.paused("b.example", Duration::from_secs(5));
        assert_eq!(progress.lock().pause.as_ref().unwrap().0, "a.example", "the longest pause shows");
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
            pages_planned: PagesPlanned::Known(10),
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
