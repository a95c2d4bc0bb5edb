//! Thin: flags, settings, logging, run, exit status. The only place the process exits:
//! a run ends by returning here, and a second Ctrl-C through the [`exit`] it is handed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use slog::{Logger, debug, info};

use image_scraper::Shutdown;
use image_scraper::cli::{Cli, Command, JobAction, LogFormat};
use image_scraper::config::Config;
use image_scraper::demo::{DEMO_PORT, DemoServer, Gallery};
use image_scraper::exit::ExitCode;
use image_scraper::limits::{OpenFiles, RunShape};
use image_scraper::progress::Progress;
use image_scraper::settings::{DEFAULT_SETTINGS_FILE, Mode, Settings};

fn main() {
    exit(status())
}

/// Ends the process with `code`, and any browser it started with it (an exit skips the
/// destructors that would). Every way out goes through here: a run that ends returns its
/// status to `main`, and a second Ctrl-C, which cannot wait for the actor system to wind
/// down (see `Shutdown`), is handed this function.
fn exit(code: ExitCode) -> ! {
    image_scraper::render::kill_all();
    std::process::exit(code.code())
}

/// A second SIGINT or SIGTERM: at once, with the first signal's status.
fn exit_at_once(signal: i32) -> ! {
    exit(ExitCode::Signal(signal))
}

/// Everything `main` does, down to the status it exits with.
fn status() -> ExitCode {
    // First: every later socket, thread and runtime counts against it.
    let open_files = image_scraper::limits::raise_open_files();
    let cli = Cli::parse();
    if let Some(Command::Job { action }) = &cli.command {
        return job(action);
    }
    if let Some(command) = &cli.command {
        return match command.run(&mut std::io::stdout().lock()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => ExitCode::Failure,
            _ => ExitCode::Success,
        };
    }
    let for_people = cli.verbosity() >= 0 && cli.log_format == LogFormat::Text;
    let progress = Progress::for_stderr(for_people && !cli.no_progress);
    let (log, guard) = image_scraper::logging::root(cli.verbosity(), cli.log_format, progress.clone());
    let outcome = run(&cli, &log, progress, open_files);
    // Flushes the log, so the table comes after the last line.
    drop(log);
    drop(guard);
    match outcome {
        Ok(outcome) => {
            let code = outcome.exit_code();
            // `-q` hides the table only when all went well: a failure is what it is for.
            let table = cli.log_format == LogFormat::Text && (for_people || code != ExitCode::Success);
            if table {
                let _ = writeln!(std::io::stderr(), "{}", outcome.summary.table(outcome.elapsed));
            }
            code
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            // A usage or settings error, as clap's own usage errors.
            ExitCode::Usage
        }
    }
}

/// `job status`, `job cancel`, `job retry`: the answer on stdout, or one line on stderr
/// and the usage status (a job or a Redis that cannot be reached is the settings' fault).
fn job(action: &JobAction) -> ExitCode {
    let (frontier, job) = (&action.target().frontier, action.target().job());
    let done = match action {
        JobAction::Status(_) => image_scraper::job::status(frontier, job),
        JobAction::Cancel(_) => image_scraper::job::cancel(frontier, job),
        JobAction::Retry(_) => image_scraper::job::retry(frontier, job),
    };
    match done {
        Ok(text) => {
            print!("{text}");
            ExitCode::Success
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::Usage
        }
    }
}

fn run(
    cli: &Cli,
    log: &Logger,
    progress: Option<Progress>,
    open_files: OpenFiles,
) -> anyhow::Result<image_scraper::Outcome> {
    // The demo gallery is a site of its own: a `settings.yaml` in the current folder
    // describes another one (its ITEM, its OUT_DIR), so only a file named with `-c` counts.
    let settings = match (&cli.demo, &cli.config) {
        (Some(_), None) => Settings::without_file(std::env::vars())?,
        (_, config) => Settings::load(config.as_deref())?,
    };
    // A shared job's processes must fetch the same URLs: the first serves the demo
    // gallery on its port, and the others use that one.
    let shared_demo = (cli.frontier.is_some() || settings.section.frontier.is_some()) && cli.demo.is_some();
    let demo = match cli.demo {
        Some(shape) if shared_demo => DemoServer::start_exactly(Gallery::shaped(shape), DEMO_PORT).ok(),
        Some(shape) => Some(
            DemoServer::start_on(Gallery::shaped(shape), DEMO_PORT)
                .context("cannot start the demo gallery")?,
        ),
        None => None,
    };
    let served_elsewhere = (shared_demo && demo.is_none()).then(DemoServer::url_on);
    let demo_url = demo.as_ref().map(DemoServer::url).or(served_elsewhere.clone());
    // Said once the settings are known to be good, so a bad one stays a one-line error.
    let read = settings.file_read().map(absolute);
    // As expanded (`~`, `$VAR`), so a path that came out wrong can be seen.
    let ca_files = settings.section.ca_cert.clone().filter(|_| cli.ca_cert.is_empty());
    let mut config = Config::resolve(settings, cli, demo_url.as_ref())?;
    // Before any line is logged: a run that cannot fit is a one-line error too.
    let mut shape = RunShape {
        async_mode: config.mode == Mode::Async,
        workers: config.workers,
        concurrency: config.requests.concurrency,
        demo: demo.is_some(),
    };
    // Without -p the worker count is the cores': fewer that fit beat a refusal the user
    // never asked for. A -p given is refused instead, with what fits.
    let cores = config.workers;
    if cli.process.is_none()
        && let Some(fit) = shape.most_workers(open_files.limit)
    {
        (config.workers, shape.workers) = (fit, fit);
    }
    shape.check(open_files.limit).map_err(anyhow::Error::msg)?;
    match read {
        Some(path) => info!(log, "settings file read"; "path" => %path.display()),
        None if cli.demo.is_some() && cli.config.is_none() => {
            info!(log, "no settings file: --demo reads only one named with -c")
        }
        None => {
            info!(log, "no settings file"; "looked_for" => %absolute(Path::new(DEFAULT_SETTINGS_FILE)).display())
        }
    }
    if let Some(files) = ca_files {
        info!(log, "trusting the CA_CERT files too"; "files" => files.into_vec().join(", "));
    }
    if config.workers < cores {
        info!(log, "fewer workers than cores: more would not fit under the open-files limit (ulimit -Hn)";
            "workers" => config.workers, "cores" => cores, "limit" => open_files.limit);
    }
    if let (Some(from), Some(to)) = (open_files.raised_from, open_files.limit) {
        debug!(log, "raised the open-files limit"; "from" => from, "to" => to, "needed_at_most" => shape.needed());
    }
    if let Some(demo) = &demo {
        info!(log, "demo gallery is up"; "url" => %demo.url());
    }
    if let Some(url) = &served_elsewhere {
        info!(log, "demo gallery served by another process of the job"; "url" => %url);
    }
    image_scraper::run(&config, log, progress, Shutdown::os_signals(exit_at_once))
}

/// The path as a user can find it again from anywhere.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
