//! Thin: flags, settings, logging, run, exit status.

use anyhow::Context;
use clap::Parser;
use slog::{Logger, info};

use image_scraper::cli::Cli;
use image_scraper::demo::{DemoServer, Gallery};
use image_scraper::settings::{Config, Settings};

/// Usage or settings error, as clap's own usage errors.
const EXIT_USAGE: i32 = 2;

fn main() {
    let cli = Cli::parse();
    let (log, guard) = image_scraper::logging::root(cli.verbosity());
    let code = match run(&cli, &log) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_USAGE
        }
    };
    drop(log);
    drop(guard);
    std::process::exit(code);
}

fn run(cli: &Cli, log: &Logger) -> anyhow::Result<i32> {
    let settings = Settings::load(cli.config.as_deref())?;
    let demo = match cli.demo {
        true => Some(DemoServer::start(Gallery::default()).context("cannot start the demo gallery")?),
        false => None,
    };
    let config = Config::resolve(settings, cli, demo.as_ref().map(DemoServer::url).as_ref())?;
    if let Some(demo) = &demo {
        info!(log, "demo gallery is up"; "url" => %demo.url());
    }
    let outcome = image_scraper::run(&config, log)?;
    Ok(outcome.exit_code())
}
