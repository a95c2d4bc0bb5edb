//! The root logger: slog to stderr through an async drain.

use slog::{Drain, Level, Logger, o};
use slog_async::AsyncGuard;

/// A root logger at `verbosity` (-2 errors only .. 0 info .. 2 trace), and the guard that
/// flushes the async drain when dropped: keep it until the actor system has stopped, or
/// the last lines (the summary among them) are lost.
pub fn root(verbosity: i8) -> (Logger, AsyncGuard) {
    let level = match verbosity {
        i8::MIN..=-2 => Level::Error,
        -1 => Level::Warning,
        0 => Level::Info,
        1 => Level::Debug,
        _ => Level::Trace,
    };
    let decorator = slog_term::TermDecorator::new().stderr().build();
    let format = slog_term::FullFormat::new(decorator).build().fuse();
    let (drain, guard) = slog_async::Async::new(format)
        .chan_size(4096)
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .thread_name("log".into())
        .build_with_guard();
    let drain = drain.filter_level(level).fuse();
    (Logger::root(drain, o!()), guard)
}
