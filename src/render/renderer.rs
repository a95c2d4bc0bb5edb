//! The Renderer actor: one browser per process, started at the first page that needs
//! it, `RENDER_TABS` pages rendered at once; when the browser dies, a fresh one takes the
//! pages it held, once.
//!
//! Lives on an Arbiter of its own: the browser's pipe and its `Rc`s never leave it, and
//! a render's waits stall no download.

use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use slog::{Logger, debug, info, warn};
use tokio::sync::{Mutex, Semaphore};
use url::Url;

use super::browser::{Browser, StartError};
use super::{Render, RenderError, RenderFuture, RenderOptions, Rendered, Why, tab};

/// Command: render this page and answer with its live DOM.
#[derive(Debug, Clone)]
pub struct RenderPage {
    pub url: Url,
    /// Why it is rendered, for the log.
    pub why: Why,
}

impl Message for RenderPage {
    type Result = Result<Rendered, RenderError>;
}

pub struct Renderer {
    opts: Arc<RenderOptions>,
    /// The browser, started when first needed; replaced when it died. Async: starting
    /// one takes a while, and the tabs waiting meanwhile must share it, not each start one.
    browser: Rc<Mutex<Held>>,
    /// Bounds the tabs open at once (`RENDER_TABS`): an actor runs every future it spawns.
    tabs: Rc<Semaphore>,
    log: Logger,
}

impl Renderer {
    pub fn new(opts: Arc<RenderOptions>, log: Logger) -> Self {
        let tabs = Rc::new(Semaphore::new(opts.tabs.max(1)));
        Self { opts, browser: Rc::default(), tabs, log }
    }
}

impl Actor for Renderer {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        // Dropping the last handle kills the browser's process group and deletes its
        // profile; a tab still holding one is dropped with the Arbiter.
        if let Ok(mut held) = self.browser.try_lock() {
            held.browser.take();
        }
    }
}

impl Handler<RenderPage> for Renderer {
    type Result = ResponseFuture<Result<Rendered, RenderError>>;

    fn handle(&mut self, page: RenderPage, _: &mut Self::Context) -> Self::Result {
        let (opts, slot, tabs, log) =
            (Arc::clone(&self.opts), Rc::clone(&self.browser), Rc::clone(&self.tabs), self.log.clone());
        Box::pin(async move {
            let _tab = tabs.acquire().await.map_err(|_| RenderError::BrowserGone)?;
            for attempt in 0..2 {
                let browser = running(&slot, &opts, &log).await?;
                match tab::render(&browser.cdp, &page.url, &opts).await {
                    Err(RenderError::BrowserGone) if attempt == 0 => {
                        warn!(log, "the browser went away; rendering again on a fresh one"; "url" => %page.url);
                        let mut held = slot.lock().await;
                        if held.browser.as_ref().is_some_and(|b| Rc::ptr_eq(b, &browser)) {
                            held.browser.take();
                        }
                    }
                    Ok(rendered) => {
                        debug!(log, "page rendered"; "url" => %page.url, "why" => %page.why,
                            "ms" => rendered.elapsed.as_millis() as u64, "steps" => rendered.steps,
                            "capped" => rendered.capped.map(|c| c.as_str()));
                        return Ok(rendered);
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(RenderError::BrowserGone)
        })
    }
}

/// The running browser, started (or started again) if there is none.
async fn running(slot: &Mutex<Held>, opts: &RenderOptions, log: &Logger) -> Result<Rc<Browser>, RenderError> {
    let mut held = slot.lock().await;
    if let Some(browser) = held.browser.as_ref().filter(|b| !b.is_gone()) {
        return Ok(Rc::clone(browser));
    }
    if let Some(failed) = &held.failed {
        return Err(RenderError::Start(failed.clone()));
    }
    let launch = opts.launch.as_ref().ok_or(RenderError::NoBrowser)?;
    let browser = match Browser::launch(launch).await {
        Ok(browser) => Rc::new(browser),
        Err(e) => {
            warn!(log, "cannot start the browser: pages to render fail"; "error" => %e);
            held.failed = Some(e.clone());
            return Err(RenderError::Start(e));
        }
    };
    info!(log, "browser started"; "program" => %launch.program.display(), "pid" => browser.pid());
    held.browser = Some(Rc::clone(&browser));
    Ok(browser)
}

/// The browser as the renderer holds it.
#[derive(Default)]
struct Held {
    browser: Option<Rc<Browser>>,
    /// Why the browser could not be started: every later page fails with it at once,
    /// instead of waiting out another start (up to 30 s) that fails the same way.
    failed: Option<StartError>,
}

/// The renderer as workers see it: its address, behind [`Render`].
#[derive(Debug, Clone)]
pub struct RendererHandle(pub Addr<Renderer>);

impl Render for RendererHandle {
    fn render(&self, page: RenderPage) -> RenderFuture {
        let request = self.0.send(page);
        Box::pin(async move { request.await.unwrap_or(Err(RenderError::BrowserGone)) })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;
    use crate::render::{Launch, Policy, locate};

    /// One page, served to every request on 127.0.0.1 by a thread; its address.
    fn serve(html: &'static str) -> Url {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    html.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(html.as_bytes());
            }
        });
        Url::parse(&format!("http://{addr}/")).unwrap()
    }

    pub(crate) fn options() -> Option<RenderOptions> {
        let program = locate(None, std::env::var_os("CHROMIUM"), std::env::var_os("PATH"))?;
        Some(RenderOptions {
            policy: Policy::Always,
            launch: Some(Launch {
                program,
                user_agent: "image-scraper-test".into(),
                start_timeout: Duration::from_secs(30),
                ..Launch::default()
            }),
            tabs: 2,
            scroll_idle: Duration::from_millis(800),
            scroll_max: 20,
            timeout: Duration::from_secs(30),
            load_more: None,
            headers: Vec::new(),
            max_page_bytes: 32 << 20,
        })
    }

    #[actix::test]
    async fn a_page_built_by_its_script_comes_back_with_its_images() {
        let Some(opts) = options() else {
            assert!(std::env::var_os("CI").is_none(), "no Chromium under CI");
            return;
        };
        let page = serve(
            "<!doctype html><body><div id=app></div><script>\
             for (let i = 0; i < 3; i++) { const img = document.createElement('img'); img.src = '/a' + i + '.png'; document.getElementById('app').append(img); }\
             alert('hi');</script>",
        );
        let renderer = Renderer::new(Arc::new(opts), slog::Logger::root(slog::Discard, slog::o!())).start();
        let rendered =
            renderer.send(RenderPage { url: page.clone(), why: Why::Always }).await.unwrap().unwrap();
        assert!(rendered.html.contains("src=\"/a2.png\""), "{}", rendered.html);
        assert_eq!(rendered.network_images.len(), 3, "the browser asked for the images, and was refused");
        assert!(rendered.steps >= 1);
    }
}
