//! The open-files limit (issue 23, item 4): the real binary run with `RLIMIT_NOFILE` set
//! in the child before it starts (`pre_exec`), against a local gallery. A `-p` whose
//! sockets cannot fit is refused in one line naming what fits, before any request; a
//! soft limit below what the run needs is raised to the hard one; a tight limit that
//! fits runs to the end, never a panic.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;

use rustix::process::{Resource, Rlimit, setrlimit};

use crate::helpers::{
    Reply, Run, TestServer, gallery_html, image_paths, images, jpeg, run_command, write_settings,
};

const MODES: [&str; 2] = ["async", "sync"];
const IMAGES: usize = 40;

fn gallery() -> TestServer {
    let paths = image_paths(IMAGES);
    let bodies: Vec<Vec<u8>> = (0..IMAGES).map(|i| jpeg(i as u8, 2000 + i * 10)).collect();
    let mut routes = vec![("/p1/cats.html", Reply::html(gallery_html(&paths, 1)))];
    routes.extend(paths.iter().map(String::as_str).zip(bodies.iter().map(|b| Reply::image(b))));
    TestServer::start(routes)
}

/// The binary with `args`, its open-files limit `soft`/`hard` from its first
/// instruction.
fn scrape_limited(dir: &Path, soft: u64, hard: u64, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_image-scraper"));
    command.args(["--no-progress"]).args(args);
    // SAFETY: setrlimit is a plain system call, async-signal-safe: nothing here
    // allocates or takes a lock between fork and exec.
    unsafe {
        command.pre_exec(move || {
            setrlimit(Resource::Nofile, Rlimit { current: Some(soft), maximum: Some(hard) })
                .map_err(std::io::Error::from)
        });
    }
    run_command(&mut command, dir, &[])
}

#[test]
fn a_p_beyond_the_open_files_limit_is_refused_in_one_line() {
    let server = gallery();
    for (mode, p, asked) in [("async", "300", "-p 300 with CONCURRENCY 16"), ("sync", "400", "-p 400")] {
        let dir = tempfile::tempdir().unwrap();
        write_settings(dir.path(), &server.origin(), "");
        // Soft and hard alike: raising cannot help.
        let run = scrape_limited(dir.path(), 1024, 1024, &["-m", mode, "-p", p]);
        assert_eq!(run.code, 2, "{mode}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{mode}: one line: {}", run.stderr);
        run.assert_line(&format!("{asked} needs up to"));
        run.assert_line("over this process's limit of 1024");
        run.assert_line(" fits, or raise the hard limit (ulimit -Hn)");
        assert!(!run.stderr.contains("panicked") && !run.stderr.contains("--ignore-robots"), "{mode}");
        assert_eq!(server.hits("/robots.txt"), 0, "{mode}: refused before any request");
    }
}

/// A soft limit too low for the run, under a hard one high enough: raised, and the run
/// completes. Then a tight limit that fits (soft = hard): every image, no panic.
#[test]
fn the_soft_limit_is_raised_and_a_tight_fit_runs_to_the_end() {
    let server = gallery();
    for mode in MODES {
        for (soft, hard, p) in [(80, 1024, "24"), (200, 200, "8")] {
            let dir = tempfile::tempdir().unwrap();
            write_settings(dir.path(), &server.origin(), "  CONCURRENCY: 4\n");
            let run = scrape_limited(dir.path(), soft, hard, &["-m", mode, "-p", p]);
            let what = format!("{mode} -p {p} soft {soft} hard {hard}");
            assert_eq!(run.code, 0, "{what}: {}", run.stderr);
            run.assert_line(&format!("Done, success: {IMAGES}/{IMAGES}, failure: 0/{IMAGES}"));
            assert_eq!(images(&dir.path().join("images")).len(), IMAGES, "{what}");
            assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
        }
    }
}

/// Without `-p` the worker count is the cores': under a limit too tight for all of
/// them, as many as fit run (here one), not a refusal the user never asked for.
#[test]
fn without_p_the_workers_are_lowered_to_what_fits() {
    let server = gallery();
    // One async worker with CONCURRENCY 4 needs 64 + 3 + 4 x 3 = 79; two need 94.
    let dir = tempfile::tempdir().unwrap();
    write_settings(dir.path(), &server.origin(), "  CONCURRENCY: 4\n");
    let run = scrape_limited(dir.path(), 90, 90, &["-m", "async"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.assert_line(&format!("Done, success: {IMAGES}/{IMAGES}, failure: 0/{IMAGES}"));
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        run.assert_line("fewer workers than cores");
    }
}
