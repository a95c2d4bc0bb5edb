//! What the tests of every concern share: a `Cli` from arguments, a `Config` from a YAML
//! text, the one-line error, and the original seed's settings.

use super::{Config, PageUrls, Source};
use crate::cli::Cli;
use crate::settings::Settings;
use clap::Parser;

pub(super) fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("image-scraper").chain(args.iter().copied())).unwrap()
}

pub(super) fn resolve(yaml: &str, args: &[&str]) -> anyhow::Result<Config> {
    Config::resolve(Settings::parse_for_test(yaml)?, &cli(args), None)
}

pub(super) fn error(yaml: &str, args: &[&str]) -> String {
    format!("{:#}", resolve(yaml, args).unwrap_err())
}

pub(super) fn pages(c: &Config) -> (&PageUrls, Option<u32>) {
    match &c.source {
        Source::Pages { pages, max_pages, .. } => (pages, *max_pages),
        Source::Urls(_) => panic!("not pages"),
    }
}

pub(super) const ORIGINAL: &str = "SCRAPER:\n  URL: https://www.stockfreeimages.com/\n  ITEM: cats\n  OUT_DIR: images\n  AMOUNT_PAGES: 10\n";
