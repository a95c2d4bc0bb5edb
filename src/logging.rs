//! The root logger: slog to stderr through an async drain, as text for people (above the
//! progress bar when there is one) or as JSON lines for machines.

use std::io::{self, Write};
use std::sync::Mutex;

use slog::{Drain, Level, Logger, o};
use slog_async::AsyncGuard;

use crate::cli::LogFormat;
use crate::progress::Progress;

/// A root logger at `verbosity` (-2 errors only .. 0 info .. 2 trace), and the guard that
/// flushes the async drain when dropped: keep it until the actor system has stopped, or
/// the last lines (the summary among them) are lost.
pub fn root(verbosity: i8, format: LogFormat, progress: Option<Progress>) -> (Logger, AsyncGuard) {
    let level = match verbosity {
        i8::MIN..=-2 => Level::Error,
        -1 => Level::Warning,
        0 => Level::Info,
        1 => Level::Debug,
        _ => Level::Trace,
    };
    let (drain, guard) = match (format, progress) {
        (LogFormat::Json, _) => {
            let json = slog_json::Json::new(io::stderr()).add_default_keys().build();
            async_drain(Mutex::new(json).ignore_res())
        }
        (LogFormat::Text, Some(progress)) => {
            let decorator = slog_term::PlainSyncDecorator::new(AboveBar { progress, line: Vec::new() });
            async_drain(slog_term::FullFormat::new(decorator).build().ignore_res())
        }
        (LogFormat::Text, None) => {
            let decorator = slog_term::TermDecorator::new().stderr().build();
            async_drain(slog_term::FullFormat::new(decorator).build().ignore_res())
        }
    };
    // A line that cannot be written is dropped, not a panic (`fuse` panics): stderr may
    // be a pipe whose reader has gone (`image-scraper ... 2>&1 | head`), and the run, its
    // files and its exit status must not depend on that.
    (Logger::root(drain.filter_level(level).ignore_res(), o!()), guard)
}

fn async_drain<D>(drain: D) -> (slog_async::Async, AsyncGuard)
where
    D: Drain<Ok = (), Err = slog::Never> + Send + 'static,
{
    slog_async::Async::new(drain)
        .chan_size(4096)
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .thread_name("log".into())
        .build_with_guard()
}

/// Writes whole lines above the progress bar instead of through it.
struct AboveBar {
    progress: Progress,
    line: Vec<u8>,
}

impl Write for AboveBar {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        while let Some(end) = self.line.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.line.drain(..=end).collect();
            self.progress.println(String::from_utf8_lossy(&line[..end]).as_ref());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
