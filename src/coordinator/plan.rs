//! What a run is to do, fixed before it starts: the Coordinator's one argument.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use super::feed::Feed;
use crate::counts::{CountsWatch, ItemSink};
use crate::frontier::{Filters, Source};
use crate::name_template::NameTemplate;
use crate::net::politeness::HostGate;
use crate::store::Store;
use crate::work::Cancel;

/// What to fetch, where it goes and how, fixed before the run starts.
pub struct Plan {
    pub source: Source,
    /// Where each image's [`Item`](crate::counts::Item) goes as it ends (the report and
    /// the failed list); `None` when neither was asked for.
    pub items: Option<Box<dyn ItemSink>>,
    /// A `--urls` list's rows, read while the run goes; `None` for listing pages.
    pub list: Option<Feed>,
    /// Where images go: asked what earlier runs stored, told what this one stores.
    pub store: Arc<dyn Store>,
    /// Download again what the resume record says is complete (`--force`).
    pub force: bool,
    /// `NAME`: how images are named; `None`, the URL's own file name.
    pub name: Option<Arc<NameTemplate>>,
    /// Requests in flight per host, across all workers.
    pub per_host_concurrency: usize,
    /// Fetch each origin's robots.txt first and obey it.
    pub obey_robots: bool,
    /// Told each origin's Crawl-delay.
    pub gate: Arc<HostGate>,
    /// Which images are wanted at all (`--ext`), like the host filter.
    pub filters: Filters,
    /// `--dry-run`: write the URLs here instead of downloading.
    pub listing: Option<Box<dyn Write>>,
    /// Told the counts as they change (the progress bar).
    pub watch: Option<Box<dyn CountsWatch>>,
    /// `IMAGE_HOST`, lower-cased: where an image found on a page may be redirected to
    /// (the extractor applies it to the URLs on the page). Empty takes any host.
    pub image_host: String,
    /// `PAGE_HOST`, lower-cased: where a next link or a detail link may lead. Empty takes
    /// any host.
    pub page_host: String,
    /// The longest wait a server may ask for (`RETRY_MAX_WAIT_SECS`): a longer
    /// Crawl-delay is clamped to it.
    pub max_server_wait: Duration,
    /// A job shared with other processes: how often to renew this process's leases, and
    /// counts of this process's share. `None`: the run is this process's alone.
    pub shared: Option<Duration>,
    /// Where the per-URL sets of a long list or walk write what memory need not hold
    /// (`keyset`); `None`: memory only.
    pub spill: Option<std::path::PathBuf>,
    /// Tripped when the run must stop (a full disk): workers drop what they are doing.
    pub cancel: Cancel,
}

impl Plan {
    /// The plan for `source` with everything else at its simplest: no robots, no limits
    /// beyond `per_host_concurrency`, no listing, no bar. The tests' starting point.
    #[cfg(test)]
    pub fn new(source: Source, store: Arc<dyn Store>) -> Self {
        Self {
            source,
            items: Some(Box::new(crate::counts::testing::Kept::install())),
            list: None,
            store,
            force: false,
            name: None,
            per_host_concurrency: usize::MAX,
            obey_robots: false,
            gate: Arc::new(HostGate::open()),
            filters: Filters::default(),
            listing: None,
            watch: None,
            image_host: String::new(),
            page_host: String::new(),
            max_server_wait: Duration::from_secs(60),
            shared: None,
            cancel: Cancel::default(),
            spill: None,
        }
    }
}
