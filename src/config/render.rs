//! `RENDER` and its knobs, resolved: which policy, which browser, how it is started
//! (the run's User-Agent, headers, proxy and trust), how long and how far a render goes.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{anyhow, bail};

use super::in_range;
use url::Url;

use crate::cli::Cli;
use crate::fetch::options::MAX_PAGE_BYTES;
use crate::net::proxy::Proxies;
use crate::render::{INSTALL_HINT, Launch, Policy, RenderOptions, locate};
use crate::settings::Settings;

pub const DEFAULT_RENDER_TABS: usize = 2;
pub const DEFAULT_SCROLL_IDLE_MS: u64 = 1500;
pub const DEFAULT_SCROLL_MAX: u32 = 50;
pub const DEFAULT_RENDER_TIMEOUT_SECS: f64 = 60.0;

/// What the browser's requests share with the run's own.
pub struct Shared<'a> {
    pub user_agent: &'a str,
    pub headers: &'a [(String, String)],
    pub proxies: &'a Proxies,
    /// The first page, which picks the proxy the browser uses for the run.
    pub first_page: Option<&'a Url>,
    pub insecure: bool,
    /// `--demo` is on: its shape's keys replace the file's.
    pub demo: bool,
}

/// The render settings; `chromium_var` and `path` are `$CHROMIUM` and `$PATH`. With
/// `--render`/`always` and no browser, one line naming what to install.
pub fn resolve(
    settings: &Settings,
    cli: &Cli,
    shared: Shared<'_>,
    chromium_var: Option<OsString>,
    path: Option<OsString>,
) -> anyhow::Result<RenderOptions> {
    let s = &settings.section;
    let key = |name: &str| settings.origin(name);
    let policy = match cli.render {
        true => Policy::Always,
        false => s.render.unwrap_or_default(),
    };
    let tabs = in_range(key("RENDER_TABS"), s.render_tabs.unwrap_or(DEFAULT_RENDER_TABS), 1..=64)?;
    let idle_ms =
        in_range(key("SCROLL_IDLE_MS"), s.scroll_idle_ms.unwrap_or(DEFAULT_SCROLL_IDLE_MS), 100..=600_000)?;
    let scroll_max = in_range(key("SCROLL_MAX"), s.scroll_max.unwrap_or(DEFAULT_SCROLL_MAX), 1..=100_000)?;
    let timeout = in_range(
        key("RENDER_TIMEOUT_SECS"),
        s.render_timeout_secs.unwrap_or(DEFAULT_RENDER_TIMEOUT_SECS),
        1.0..=86_400.0,
    )?;
    // The demo's load-more gallery brings its own button, as a user would set it.
    let demo_button = cli.demo.filter(|_| shared.demo).and_then(|shape| shape.load_more_selector());
    let load_more = match demo_button {
        Some(selector) => Some(selector.to_string()),
        None => s.load_more_selector.clone().filter(|sel| !sel.trim().is_empty()),
    };
    if let Some(selector) = &load_more {
        crate::html::parse_selector(selector, "load-more selector")
            .map_err(|e| anyhow!("{}: {e}", key("LOAD_MORE_SELECTOR")))?;
    }
    let named = match (&cli.browser, &s.browser) {
        (Some(path), _) => Some((path.clone(), "--browser".to_string())),
        (None, Some(path)) => Some((path.clone(), key("BROWSER"))),
        (None, None) => None,
    };
    if let Some((path, origin)) = &named
        && policy != Policy::Never
        && !path.is_file()
    {
        bail!("{origin}: no browser at {}", path.display());
    }
    let program = match policy {
        Policy::Never => None,
        _ => locate(named.as_ref().map(|(p, _)| p.as_path()), chromium_var, path),
    };
    if policy == Policy::Always && program.is_none() {
        let by = if cli.render { "--render" } else { "RENDER: always" };
        bail!("{by} needs a browser and none was found: {INSTALL_HINT}");
    }
    let proxy = shared.first_page.and_then(|page| shared.proxies.for_url(page)).map(|proxy| {
        // Chromium's socks5 resolves names through the proxy already: socks5h is its default.
        proxy.to_string().replace("socks5h://", "socks5://")
    });
    let launch = program.map(|program| Launch {
        program,
        user_agent: shared.user_agent.to_string(),
        proxy,
        proxy_bypass: None,
        insecure: shared.insecure,
        spki_hashes: Vec::new(),
        // The start is part of a render's time: a browser that hangs on start holds the
        // first page no longer than a render may take.
        start_timeout: Duration::from_secs_f64(timeout.min(30.0)),
    });
    Ok(RenderOptions {
        policy,
        launch,
        tabs,
        scroll_idle: Duration::from_millis(idle_ms),
        scroll_max,
        timeout: Duration::from_secs_f64(timeout),
        load_more,
        headers: shared.headers.to_vec(),
        max_page_bytes: MAX_PAGE_BYTES,
    })
}
