//! The command line. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{ArgAction, Parser};
use url::Url;

use crate::settings::{Mode, parse_site_url};

const EXAMPLES: &str = "\
Examples:
  image-scraper --demo                      try it on the built-in gallery
  image-scraper -m sync -p 6                settings.yaml, six blocking workers
  image-scraper -m async -p 8 --report run.json
  image-scraper --url https://example.com/gallery/ --item cats --pages 3 -o cats

Exit status: 0 every page and image succeeded, 1 some failed, 2 usage or settings error.";

/// Download every image of a paginated web gallery, with every core.
///
/// Fetches the listing pages URL + PAGE_PATH (default `p{page}/{item}.html`), finds the
/// images on them and downloads each once into the out dir. Settings come from
/// settings.yaml (key SCRAPER); flags override them.
#[derive(Debug, Parser)]
#[command(name = "image-scraper", version, after_help = EXAMPLES)]
pub struct Cli {
    /// async: one event loop per worker, many requests in flight on each; sync: one
    /// thread per worker, one blocking request at a time.
    #[arg(short, long, value_enum, default_value_t = Mode::Async)]
    pub mode: Mode,

    /// Number of workers [default: the number of cores]
    #[arg(short = 'p', long = "process", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub process: Option<u32>,

    /// Settings file [default: settings.yaml, if present]
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Gallery URL (overrides SCRAPER.URL)
    #[arg(long, value_name = "URL", value_parser = parse_site_url)]
    pub url: Option<Url>,

    /// Gallery item, the `{item}` of the page path (overrides SCRAPER.ITEM)
    #[arg(long, value_name = "ITEM")]
    pub item: Option<String>,

    /// Fetch at most N pages (overrides SCRAPER.AMOUNT_PAGES); fewer if the site says
    /// it has fewer
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub pages: Option<u32>,

    /// Folder the images go to (overrides SCRAPER.OUT_DIR)
    #[arg(short, long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Write a JSON report of the run, one item per image, to FILE
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Download again the images an earlier run into the same out dir completed
    /// (normally they are skipped)
    #[arg(long)]
    pub force: bool,

    /// Start the built-in demo gallery on 127.0.0.1 and scrape it
    #[arg(long, conflicts_with = "url")]
    pub demo: bool,

    /// More logging (-v debug, -vv trace)
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Less logging (-q warnings and the summary on failure, -qq errors only)
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

impl Cli {
    /// -2 (errors only) to 2 (trace); 0 is info.
    pub fn verbosity(&self) -> i8 {
        self.verbose.min(2) as i8 - self.quiet.min(2) as i8
    }
}
