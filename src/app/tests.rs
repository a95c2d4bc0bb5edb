//! A whole run in-process, told to stop by a stream of signals instead of the OS's.

use futures_util::stream::{self, StreamExt};
use slog::Logger;

use super::*;
use crate::cli::Cli;
use crate::demo::{DemoServer, Gallery, Shape};
use crate::settings::Settings;
use clap::Parser;

fn never(_: i32) -> ! {
    panic!("a test's run must not end the process")
}

fn demo_run(out: &std::path::Path, shutdown: Shutdown) -> Outcome {
    let demo = DemoServer::start(Gallery::shaped(Shape::Counted)).unwrap();
    let args = ["image-scraper", "--demo", "-o", out.to_str().unwrap(), "-p", "2"];
    let cli = Cli::try_parse_from(args).unwrap();
    let settings = Settings::without_file(std::iter::empty()).unwrap();
    let config = Config::resolve(settings, &cli, Some(&demo.url())).unwrap();
    run(&config, &Logger::root(slog::Discard, slog::o!()), None, shutdown).unwrap()
}

#[test]
fn a_run_no_one_stops_ends_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = demo_run(dir.path(), Shutdown::new(|| Some(stream::pending().boxed_local()), never));
    assert_eq!(outcome.exit_code(), ExitCode::Success);
    assert!(outcome.summary.images.ok > 0);
}

#[test]
fn a_signal_from_the_shutdown_stream_stops_the_run_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let sigterm =
        || Some(stream::once(async { crate::exit::SIGTERM }).chain(stream::pending()).boxed_local());
    let outcome = demo_run(dir.path(), Shutdown::new(sigterm, never));
    assert_eq!(outcome.interrupted, Some(crate::exit::SIGTERM));
    assert_eq!(outcome.exit_code(), ExitCode::Signal(crate::exit::SIGTERM));
    let stopped = outcome.summary.stopped_line().unwrap_or_default();
    assert!(stopped.contains("interrupted"), "the summary says why it stopped: {stopped:?}");
}
