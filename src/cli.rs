//! The command line. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use url::Url;

use crate::demo::Shape;
use crate::settings::{Mode, parse_site_url};

const EXAMPLES: &str = "\
Examples:
  image-scraper --demo                      try it on the built-in gallery
  image-scraper --demo details              ... or on one whose thumbnails lead to a page each
  image-scraper -m sync -p 6                settings.yaml, six blocking workers
  image-scraper -m async -p 8 --report run.json
  image-scraper --url https://example.com/gallery/ --item cats --pages 3 -o cats
  image-scraper --dry-run > urls.txt        list the image URLs, download nothing
  image-scraper --failed failed.txt; image-scraper --urls failed.txt   retry just the failures
  image-scraper completions bash > /etc/bash_completion.d/image-scraper

Settings come from flags, then IMAGE_SCRAPER_<KEY> environment variables, then
settings.yaml (key SCRAPER), then defaults; the run's first line names the file read.
Paths in settings (OUT_DIR, CA_CERT) expand ~ and $VAR. Keys: image-scraper man (section
SETTINGS) and docs/settings.md.

Exit status: 0 every page and image succeeded (or was skipped), 1 some failed, 2 usage or
settings error, 130/143 interrupted by SIGINT/SIGTERM.";

/// Download every image of a paginated web gallery, with every core.
///
/// Fetches the listing pages URL + PAGE_PATH (default `p{page}/{item}.html`), finds the
/// images on them and downloads each once into the out dir, politely: robots.txt is
/// obeyed, requests per host are capped, a host that answers 429 is given a rest. A re-run
/// into the same out dir skips what is already there.
#[derive(Debug, Parser)]
#[command(name = "image-scraper", version, after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// async: one event loop per worker, many requests in flight on each; sync: one
    /// thread per worker, one blocking request at a time.
    #[arg(short, long, value_enum, default_value_t = Mode::Async)]
    pub mode: Mode,

    /// Number of workers [default: the number of cores]
    #[arg(short = 'p', long = "process", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub process: Option<u32>,

    /// Settings file [default: settings.yaml, if present; none with --demo]
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Gallery URL (overrides SCRAPER.URL)
    #[arg(long, value_name = "URL", value_parser = parse_site_url)]
    pub url: Option<Url>,

    /// Gallery item, the `{item}` of the page path (overrides SCRAPER.ITEM)
    #[arg(long, value_name = "ITEM")]
    pub item: Option<String>,

    /// Fetch at most N pages, or pages A to B with A-B (overrides SCRAPER.AMOUNT_PAGES);
    /// fewer if the site says it has fewer
    #[arg(long, value_name = "N|A-B")]
    pub pages: Option<String>,

    /// Download the image URLs listed in FILE (`-` for stdin), or in every list in a
    /// folder, instead of scraping pages: feed it a --failed or --dry-run list. Plain text
    /// has one URL per line (blank lines and `#` comments skipped); .csv/.tsv (with a
    /// header row), .jsonl and .parquet lists take the URL from --url-column and carry
    /// the other columns into the manifest
    #[arg(long, value_name = "FILE|DIR", conflicts_with_all = ["url", "pages", "demo"])]
    pub urls: Option<PathBuf>,

    /// The column of a CSV, TSV, JSON Lines or Parquet --urls list that holds the URL
    /// [default: url]
    #[arg(long, value_name = "NAME")]
    pub url_column: Option<String>,

    /// The format of the --urls list, when its extension does not say it (stdin is read
    /// as text without it)
    #[arg(long, value_name = "FORMAT", value_parser = clap::builder::PossibleValuesParser::new(crate::urllist::Format::NAMES))]
    pub list_format: Option<String>,

    /// Folder the images go to, or S3-compatible storage as s3://bucket/prefix (endpoint,
    /// region and keys from the AWS_* variables or ~/.aws) (overrides SCRAPER.OUT_DIR)
    #[arg(short, long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Write a report of the run to FILE: JSON (counts and one item per image), or a
    /// manifest of one line per image with its sha256 and a list's columns when FILE ends
    /// in .jsonl (JSON lines) or .parquet
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write the URLs of the images that failed to FILE, one per line (for --urls); failed
    /// pages come first as `# page N failed: REASON: URL` comments, which --urls skips
    #[arg(long, value_name = "FILE")]
    pub failed: Option<PathBuf>,

    /// Print the URLs of the images it would download, one per line, and download nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Render every listing and detail page in headless Chromium (RENDER: always):
    /// scroll it to the end, click LOAD_MORE_SELECTOR, and take the images from the live
    /// page. Without it, RENDER: auto renders only pages whose HTML has no image but has
    /// scripts, or looks like an app shell or an infinite scroll
    #[arg(long)]
    pub render: bool,

    /// The Chromium to render with (else BROWSER in the settings, the CHROMIUM variable,
    /// then chromium, chromium-browser or google-chrome on PATH)
    #[arg(long, value_name = "PATH")]
    pub browser: Option<PathBuf>,

    /// Share one job between processes (on one machine or many) through Redis, e.g.
    /// redis://10.0.0.5:6379/0: every process runs the same command with the same --job
    /// (see docs/DISTRIBUTED.md)
    #[arg(long, value_name = "URL", requires = "job")]
    pub frontier: Option<String>,

    /// The shared job's name (letters, digits, '.', '_', '-'), with --frontier
    #[arg(long, value_name = "NAME", requires = "frontier")]
    pub job: Option<String>,

    /// With --frontier: seconds a task stays leased to a process that stops renewing it
    /// (it died) before another process takes it over
    #[arg(long, value_name = "SECS", default_value_t = 30, requires = "frontier")]
    pub lease: u64,

    /// With --frontier: seconds a finished job stays in Redis (its counts, its record of
    /// what was done; a re-run meanwhile says it is finished and exits at once, and `job
    /// retry` queues its failures again) before its keys expire; 0 keeps it until
    /// deleted. Set by the process that starts the job
    #[arg(long, value_name = "SECS", default_value_t = 604_800, requires = "frontier")]
    pub job_ttl: u64,

    /// Download again the images an earlier run into the same out dir completed
    /// (normally they are skipped)
    #[arg(long)]
    pub force: bool,

    /// Keep only images whose URL ends in one of these extensions, e.g. jpg,png
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub ext: Vec<String>,

    /// Skip images smaller than SIZE (bytes, or with K, M, G: 20K, 1.5M)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub min_size: Option<u64>,

    /// Skip images larger than SIZE (bytes, or with K, M, G)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,

    /// Skip images narrower than PX pixels, judged from their first bytes (MIN_WIDTH)
    #[arg(long, value_name = "PX")]
    pub min_width: Option<u32>,

    /// Skip images lower than PX pixels, judged from their first bytes (MIN_HEIGHT)
    #[arg(long, value_name = "PX")]
    pub min_height: Option<u32>,

    /// Skip images whose long side is more than RATIO times their short side, e.g. 3
    /// (MAX_ASPECT)
    #[arg(long, value_name = "RATIO")]
    pub max_aspect: Option<f64>,

    /// Name each image by a template instead of its URL's file name, e.g. '{host}/{path}',
    /// '{shard}/{index}.{ext}' or '{key}.{ext}' (NAME; see docs/settings.md)
    #[arg(long = "name", value_name = "TEMPLATE")]
    pub name: Option<String>,

    /// What makes two images the same: 'url' (default: one file per URL) or 'content':
    /// bytes already stored under another URL are not stored again (DEDUPE)
    #[arg(long, value_name = "url|content")]
    pub dedupe: Option<String>,

    /// Trust the resume record alone: an image it records as complete is not fetched
    /// again even when its file has been moved out of the out dir (a damaged file still
    /// is). For datasets whose finished files are shipped elsewhere as the run goes
    #[arg(long)]
    pub archive: bool,

    /// Send every request through this proxy (http://, socks5:// or socks5h://
    /// [user:password@]host[:port]), instead of what http_proxy, https_proxy and
    /// all_proxy say; '' for no proxy at all
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Hosts, domains (.example.com), addresses and ranges (10.0.0.0/8), comma-separated,
    /// that are fetched without the proxy ('*': all), instead of what no_proxy says
    #[arg(long, value_name = "LIST")]
    pub noproxy: Option<String>,

    /// Do not read or obey robots.txt
    #[arg(long)]
    pub ignore_robots: bool,

    /// Also trust the CA certificates in FILE (PEM), on top of the system's roots: a
    /// company proxy's or a self-hosted gallery's CA. Repeatable (overrides SCRAPER.CA_CERT)
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,

    /// Do not check any server's certificate. Only for a host you know; anyone on the way
    /// can then read and change what is downloaded. Logged as a warning and in the report
    #[arg(long)]
    pub insecure: bool,

    /// No progress bar (it is shown only when stderr is a terminal anyway)
    #[arg(long)]
    pub no_progress: bool,

    /// Log lines as text for people or JSON for machines
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Start the built-in demo gallery on 127.0.0.1 and scrape it; SHAPE picks how its
    /// pages are laid out and linked
    #[arg(long, value_enum, value_name = "SHAPE", num_args = 0..=1, require_equals = false,
          default_missing_value = "counted", conflicts_with = "url")]
    pub demo: Option<Shape>,

    /// More logging (-v debug, -vv trace)
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Less logging (-q warnings and the summary on failure, -qq errors only)
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a shell completion script: image-scraper completions bash > ~/.local/share/bash-completion/completions/image-scraper
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): image-scraper man > image-scraper.1
    Man,
    /// A job shared through Redis: image-scraper job status NAME --frontier redis://host:6379/0
    Job {
        #[command(subcommand)]
        action: JobAction,
    },
}

/// What to do with a shared job. Subcommands, not a value, so that every shell's
/// completion offers them.
#[derive(Debug, Subcommand)]
pub enum JobAction {
    /// The job's counts, the same any process would log, and whether it is done
    Status(JobTarget),
    /// Stop handing out the job's work: every process ends once what it holds is done
    Cancel(JobTarget),
    /// Put the job's failed images and detail pages back in its queue and reopen it (a
    /// cancelled one too); the next run of the job fetches them
    Retry(JobTarget),
}

impl JobAction {
    pub fn target(&self) -> &JobTarget {
        match self {
            JobAction::Status(target) | JobAction::Cancel(target) | JobAction::Retry(target) => target,
        }
    }
}

/// Which job: its Redis and its name.
#[derive(Debug, Args)]
pub struct JobTarget {
    /// The job's Redis, as given to the processes (--frontier)
    #[arg(long, value_name = "URL")]
    pub frontier: String,
    #[command(flatten)]
    name: JobName,
}

/// The job's name, as an argument or as the processes' own flag (`--job`), which older
/// scripts pass.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct JobName {
    /// The job's name (--job of its processes)
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// The same, as a flag
    #[arg(long = "job", value_name = "NAME")]
    flag: Option<String>,
}

impl JobTarget {
    pub fn job(&self) -> &str {
        self.name.name.as_deref().or(self.name.flag.as_deref()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    /// -2 (errors only) to 2 (trace); 0 is info.
    pub fn verbosity(&self) -> i8 {
        self.verbose.min(2) as i8 - self.quiet.min(2) as i8
    }
}

impl Command {
    /// Prints what the subcommand makes to `out`.
    pub fn run(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use clap::CommandFactory;
        let mut command = Cli::command();
        match self {
            Command::Completions { shell } => {
                // clap_complete panics on a write error (`| head`): generate in memory.
                let mut script = Vec::new();
                clap_complete::generate(*shell, &mut command, "image-scraper", &mut script);
                out.write_all(&script)
            }
            Command::Man => {
                clap_mangen::Man::new(command).render(out)?;
                out.write_all(settings_section().as_bytes())
            }
            // Needs Redis: `main` runs it through `image_scraper::job::status`.
            Command::Job { .. } => Ok(()),
        }
    }
}

/// The man page's list of settings keys, from the list the settings loader accepts
/// (`settings::keys`), so a key added there is listed here.
fn settings_section() -> String {
    let mut roff = String::from(".SH SETTINGS\n");
    roff.push_str(&format!(
        "Keys under SCRAPER: in the settings file ({}, or \\fB\\-c\\fR FILE), each also an environment variable {}KEY; flags win over the environment, which wins over the file. Each is described in docs/settings.md.\n",
        crate::settings::DEFAULT_SETTINGS_FILE,
        crate::settings::ENV_PREFIX,
    ));
    for key in crate::settings::keys() {
        roff.push_str(&format!(".TP\n\\fB{key}\\fR\n{}{key}\n", crate::settings::ENV_PREFIX));
    }
    roff
}

/// `20000`, `20K`, `1.5M`, `2G`, `300KB`, `1MiB` -> bytes (K = 1024).
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let text = raw.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{raw:?} is not a size (try 20K or 1.5M)"))?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(format!("{raw:?}: unknown unit {unit:?} (use K, M or G)")),
    };
    let bytes = number * factor as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{raw:?} is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("20K"), Ok(20 * 1024));
        assert_eq!(parse_size("1.5M"), Ok(1024 * 1024 * 3 / 2));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        assert_eq!(parse_size(" 300 KB "), Ok(300 * 1024));
        assert!(parse_size("many").is_err());
        assert!(parse_size("5T").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn completions_and_man_page_generate() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let mut out = Vec::new();
            Command::Completions { shell }.run(&mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("dry-run") && text.contains("ignore-robots"), "{shell:?}");
            for action in ["status", "cancel", "retry"] {
                assert!(text.contains(action), "{shell:?} completes job {action}");
            }
        }
        let mut out = Vec::new();
        Command::Man.run(&mut out).unwrap();
        let man = String::from_utf8(out).unwrap();
        assert!(man.starts_with(".ie") || man.contains(".TH image-scraper"), "{}", &man[..200]);
        assert!(man.contains("robots"));
        let settings = &man[man.find(".SH SETTINGS").expect("a settings section")..];
        for key in crate::settings::keys() {
            assert!(settings.contains(&format!("\\fB{key}\\fR")), "{key} is listed");
        }
        assert!(crate::settings::keys().len() > 30 && settings.contains("IMAGE_SCRAPER_IMAGE_HOST"));
    }

    #[test]
    fn a_job_is_named_by_an_argument_or_by_its_flag() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["image-scraper"], args].concat());
        for args in [
            &["job", "retry", "cats", "--frontier", "redis://r/0"][..],
            &["job", "status", "--frontier", "redis://r/0", "--job", "cats"],
        ] {
            let Some(Command::Job { action }) = parse(args).unwrap().command else { panic!("{args:?}") };
            assert_eq!(action.target().job(), "cats");
        }
        assert!(parse(&["job", "cancel", "--frontier", "redis://r/0"]).is_err(), "no name");
        assert!(
            parse(&["job", "cancel", "a", "--job", "b", "--frontier", "redis://r/0"]).is_err(),
            "two names"
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
