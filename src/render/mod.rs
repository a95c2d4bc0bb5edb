//! Rendering pages built by JavaScript in the machine's headless Chromium.
//!
//! # Layout
//!
//! - `decide.rs`: pure: `RENDER` ([`Policy`]) and whether a page's static HTML needs a
//!   render ([`decide`], [`Why`]).
//! - `scroll.rs`: pure: when scrolling has found everything ([`scroll::Watch`]).
//! - `browser.rs`: the browser process: found ([`locate`]), started on a private
//!   profile with the DevTools pipe, killed on every way out ([`kill_all`]).
//! - `cdp.rs`: the DevTools protocol over that pipe.
//! - `tab.rs`: one render: load, block the browser's own image downloads, wait for the
//!   network, scroll and click until nothing new appears, serialise the DOM.
//! - `renderer.rs`: the `Renderer` actor: one browser per process, `RENDER_TABS` tabs at
//!   once, a fresh browser when one dies (the pages it held tried once more).
//!
//! Workers see only [`Render`] (in `FetchOptions`): they fetch a page as always, and hand
//! it to the renderer when [`decide`] says so; the rendered DOM goes to the same
//! extractor as static HTML.

mod browser;
mod cdp;
mod decide;
mod renderer;
pub mod scroll;
mod tab;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use url::Url;

pub use browser::{CANDIDATES, CHROMIUM_VARIABLE, INSTALL_HINT, Launch, kill_all, locate};
pub use decide::{Policy, Why, decide};
pub use renderer::{RenderPage, Renderer, RendererHandle};

/// A render's answer, to be awaited where the worker waits.
pub type RenderFuture = Pin<Box<dyn Future<Output = Result<Rendered, RenderError>>>>;

/// What a worker sees of the renderer: hand it a page, get its live DOM back.
pub trait Render: Send + Sync + std::fmt::Debug {
    fn render(&self, page: RenderPage) -> RenderFuture;
}

/// How pages are rendered: the settings, resolved.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub policy: Policy,
    /// How to start the browser; `None`: there is none on this machine (`auto` then
    /// stays static and says so).
    pub launch: Option<Launch>,
    /// `RENDER_TABS`: pages rendered at once.
    pub tabs: usize,
    /// `SCROLL_IDLE_MS`: scrolling stops once nothing new appeared for this long.
    pub scroll_idle: Duration,
    /// `SCROLL_MAX`: scroll steps (and clicks) at most per page.
    pub scroll_max: u32,
    /// `RENDER_TIMEOUT_SECS`: a render's whole time, load to serialised DOM.
    pub timeout: Duration,
    /// `LOAD_MORE_SELECTOR`: clicked while it matches a visible element.
    pub load_more: Option<String>,
    /// Sent with the browser's requests too (`HEADERS`, cookies).
    pub headers: Vec<(String, String)>,
    /// The serialised DOM is cut at this size, as a static page is.
    pub max_page_bytes: u64,
}

/// Why scrolling stopped before the page was idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// `SCROLL_MAX` steps taken and the page still grew.
    Steps,
    /// `RENDER_TIMEOUT_SECS` ran out.
    Time,
}

impl Cap {
    pub fn as_str(self) -> &'static str {
        match self {
            Cap::Steps => "SCROLL_MAX",
            Cap::Time => "RENDER_TIMEOUT_SECS",
        }
    }
}

/// A rendered page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Where the document ended up (a script may have changed it with `pushState`):
    /// relative URLs in the DOM resolve against it.
    pub url: Url,
    /// The live DOM, serialised.
    pub html: String,
    /// Scroll steps and clicks taken.
    pub steps: u32,
    pub elapsed: Duration,
    /// Distinct images the page asked the network for (blocked): the report's
    /// cross-check of what the extractor found.
    pub network_images: Vec<Url>,
    /// Why scrolling stopped early, if it did.
    pub capped: Option<Cap>,
    /// Navigations away from the page that were refused (a script's redirect, a link).
    pub navigations_blocked: u32,
}

/// Why a render failed. The page fails with it; the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("no browser to render with: {INSTALL_HINT}")]
    NoBrowser,
    #[error("{0}")]
    Start(#[from] browser::StartError),
    /// The browser exited or was killed, on a fresh one too.
    #[error("the browser went away while rendering, twice")]
    BrowserGone,
    /// The tab's renderer process died (out of memory, most often).
    #[error("the page crashed its browser tab (out of memory?)")]
    PageCrashed,
    /// A script kept the page busy past its deadline.
    #[error("the page did not answer while {0} (a script that never yields?)")]
    Unresponsive(&'static str),
    #[error("the browser could not load the page: {0}")]
    Load(String),
    #[error("the browser refused a command: {0}")]
    Protocol(String),
}

impl From<cdp::CdpError> for RenderError {
    fn from(err: cdp::CdpError) -> Self {
        match err {
            cdp::CdpError::Gone => RenderError::BrowserGone,
            failed => RenderError::Protocol(failed.to_string()),
        }
    }
}
