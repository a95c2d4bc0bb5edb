//! Thin: flags, settings, logging, run, exit status.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use slog::{Logger, info};

use image_scraper::cli::{Cli, Command, JobAction, LogFormat};
use image_scraper::config::Config;
use image_scraper::demo::{DEMO_PORT, DemoServer, Gallery};
use image_scraper::exit::ExitCode;
use image_scraper::progress::Progress;
use image_scraper::settings::Settings;

fn main() {
    let cli = Cli::parse();
    if let Some(Command::Job { action }) = &cli.command {
        let (frontier, job) = (&action.target().frontier, action.target().job());
        let done = match action {
            JobAction::Status(_) => image_scraper::job::status(frontier, job),
            JobAction::Cancel(_) => image_scraper::job::cancel(frontier, job),
            JobAction::Retry(_) => image_scraper::job::retry(frontier, job),
        };
        match done {
            Ok(text) => {
                print!("{text}");
                ExitCode::Success.exit()
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::Usage.exit()
            }
        }
    }
    if let Some(command) = &cli.command {
        match command.run(&mut std::io::stdout().lock()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => ExitCode::Failure.exit(),
            _ => ExitCode::Success.exit(),
        }
    }
    let for_people = cli.verbosity() >= 0 && cli.log_format == LogFormat::Text;
    let progress = Progress::for_stderr(for_people && !cli.no_progress);
    let (log, guard) = image_scraper::logging::root(cli.verbosity(), cli.log_format, progress.clone());
    let outcome = run(&cli, &log, progress);
    // Flushes the log, so the table comes after the last line.
    drop(log);
    drop(guard);
    let code = match outcome {
        Ok(outcome) => {
            if for_people {
                let _ = writeln!(std::io::stderr(), "{}", outcome.summary.table(outcome.elapsed));
            }
            outcome.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            // A usage or settings error, as clap's own usage errors.
            ExitCode::Usage
        }
    };
    code.exit()
}

fn run(cli: &Cli, log: &Logger, progress: Option<Progress>) -> anyhow::Result<image_scraper::Outcome> {
    let settings = Settings::load(cli.config.as_deref())?;
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
    let config = Config::resolve(settings, cli, demo_url.as_ref())?;
    if let Some(demo) = &demo {
        info!(log, "demo gallery is up"; "url" => %demo.url());
    }
    if let Some(url) = &served_elsewhere {
        info!(log, "demo gallery served by another process of the job"; "url" => %url);
    }
    image_scraper::run(&config, log, progress)
}
