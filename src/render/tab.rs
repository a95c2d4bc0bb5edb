//! One render, in a tab of its own: load the page with the browser's own image, media
//! and font downloads refused (the workers download each image once), wait for the
//! network to settle, scroll to the bottom again and again (and click
//! `LOAD_MORE_SELECTOR`) until nothing new appears, then serialise the live DOM.
//!
//! Every step has a deadline (the render's, and a shorter one per command), so a page
//! whose script never yields, never stops polling or never stops growing ends the
//! render instead of hanging it; dialogs and pop-ups are disarmed before any script runs;
//! navigations away from the page once it has loaded are refused.

use std::cell::RefCell;
use std::rc::Rc;
// The system's clock, not tokio's: these are the deadlines of a real browser, which
// runs in real time whatever a test does to tokio's clock.
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use url::Url;

use super::cdp::{Cdp, Event};
use super::scroll::{Signature, Watch};
use super::{Cap, RenderError, RenderOptions, Rendered};

/// The longest a single command may take: a page busy longer is not coming back.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The network counts as settled after this long with no request in flight...
const NETWORK_QUIET: Duration = Duration::from_millis(500);
/// ...or after this long anyway (a page that polls is never quiet).
const NETWORK_WAIT_MAX: Duration = Duration::from_secs(5);
/// The longest wait for the load event: a slow subresource must not hold a render for
/// the whole of `RENDER_TIMEOUT_SECS` before it even scrolls.
const LOAD_WAIT_MAX: Duration = Duration::from_secs(20);
/// How often a waiting render looks at the page.
const POLL: Duration = Duration::from_millis(100);
/// Document loads allowed before the page has loaded: its redirects, its frames. More is
/// a redirect loop.
const MAX_DOCUMENTS: u32 = 10;

/// Runs before any of the page's scripts: a dialog would stop them, a pop-up would open
/// a tab no one closes.
const DISARM: &str = r#"(() => {
  const noop = () => undefined;
  window.alert = noop; window.print = noop;
  window.confirm = () => true; window.prompt = () => null;
  window.open = () => null;
})();"#;

/// Scrolls one viewport at a time to the bottom, pausing for lazy loaders (an
/// IntersectionObserver sees only what crosses the viewport: a jump to the bottom would
/// skip the middle).
const SCROLL_TO_BOTTOM: &str = r#"(async () => {
  const page = document.scrollingElement || document.documentElement;
  const pause = ms => new Promise(r => setTimeout(r, ms));
  // Bounded in time, well inside a command's deadline: a page that grows as fast as it
  // is scrolled has no bottom, and the next step measures and scrolls again.
  const until = performance.now() + 4000;
  while (performance.now() < until) {
    const before = window.scrollY;
    window.scrollBy(0, Math.max(window.innerHeight * 0.9, 200));
    await pause(40);
    if (window.scrollY === before || window.scrollY + window.innerHeight >= page.scrollHeight - 2) break;
  }
  // A page shorter than the window cannot scroll, so its infinite-scroll listener never
  // hears of the bottom: tell it, as a scroll there would.
  document.dispatchEvent(new Event('scroll', { bubbles: true }));
  return true;
})()"#;

/// What the page shows: see [`Signature`].
const SIGNATURE: &str = r#"(() => {
  let real = 0;
  for (const i of document.images) {
    const s = i.getAttribute('src') || i.getAttribute('srcset') || '';
    if (s && !s.startsWith('data:')) real++;
  }
  const sources = document.querySelectorAll('source[srcset], [style*="url("]').length;
  const page = document.scrollingElement || document.documentElement;
  return [document.images.length, real, sources, page ? page.scrollHeight : 0];
})()"#;

/// The live DOM with its doctype, and where the document is now.
const SERIALISE: &str = r#"(() => {
  const d = document.doctype ? '<!DOCTYPE ' + document.doctype.name + '>' : '';
  return [location.href, d + (document.documentElement ? document.documentElement.outerHTML : '')];
})()"#;

/// What the event pump learns about the tab.
#[derive(Debug, Default)]
struct Seen {
    loaded: bool,
    /// The tab's renderer died: this page fails.
    crashed: bool,
    /// The whole browser went: the page may go again on a fresh one.
    browser_gone: bool,
    /// Once set, documents are no longer loaded: the page is what we render.
    settled: bool,
    documents: u32,
    navigations_blocked: u32,
    in_flight: usize,
    last_network: Option<Instant>,
    images: Vec<String>,
}

impl Seen {
    fn alive(&self) -> Result<(), RenderError> {
        match (self.browser_gone, self.crashed) {
            (true, _) => Err(RenderError::BrowserGone),
            (false, true) => Err(RenderError::PageCrashed),
            (false, false) => Ok(()),
        }
    }
}

/// Closes the tab however the render ends.
struct Tab<'c> {
    cdp: &'c Cdp,
    target: String,
    session: Option<String>,
    pump: Option<actix_rt::task::JoinHandle<()>>,
}

impl Drop for Tab<'_> {
    fn drop(&mut self) {
        if let Some(pump) = self.pump.take() {
            pump.abort();
        }
        if let Some(session) = &self.session {
            self.cdp.forget(session);
        }
        self.cdp.tell(None, "Target.closeTarget", json!({ "targetId": self.target }));
    }
}

/// Renders `page` in a new tab of the browser behind `cdp`.
pub async fn render(cdp: &Rc<Cdp>, page: &Url, opts: &RenderOptions) -> Result<Rendered, RenderError> {
    let started = Instant::now();
    let deadline = started + opts.timeout;
    let created = call(cdp, None, "Target.createTarget", json!({ "url": "about:blank" }), deadline).await?;
    let target = text(&created, "targetId")?;
    let mut tab = Tab { cdp, target: target.clone(), session: None, pump: None };
    let attached =
        call(cdp, None, "Target.attachToTarget", json!({ "targetId": target, "flatten": true }), deadline)
            .await?;
    let session = text(&attached, "sessionId")?;
    tab.session = Some(session.clone());
    let seen = Rc::new(RefCell::new(Seen::default()));
    tab.pump =
        Some(actix_rt::spawn(pump(Rc::clone(cdp), session.clone(), cdp.events(&session), Rc::clone(&seen))));
    let s = Some(session.as_str());

    call(cdp, s, "Page.enable", json!({}), deadline).await?;
    call(cdp, s, "Network.enable", json!({}), deadline).await?;
    call(
        cdp,
        s,
        "Fetch.enable",
        json!({ "patterns": [{ "urlPattern": "*", "requestStage": "Request" }] }),
        deadline,
    )
    .await?;
    call(cdp, s, "Page.addScriptToEvaluateOnNewDocument", json!({ "source": DISARM }), deadline).await?;
    // Timers and observers run at full speed in a tab no one looks at.
    call(cdp, s, "Emulation.setFocusEmulationEnabled", json!({ "enabled": true }), deadline).await?;
    let headers: serde_json::Map<String, Value> = opts
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("accept-encoding"))
        .map(|(name, value)| (name.clone(), Value::from(value.as_str())))
        .collect();
    if !headers.is_empty() {
        call(cdp, s, "Network.setExtraHTTPHeaders", json!({ "headers": headers }), deadline).await?;
    }

    let navigated = call(cdp, s, "Page.navigate", json!({ "url": page.as_str() }), deadline).await?;
    if let Some(error) = navigated.get("errorText").and_then(Value::as_str).filter(|e| !e.is_empty()) {
        return Err(RenderError::Load(error.to_string()));
    }
    // A page that keeps navigating never fires its load event: once one of its
    // navigations is refused, or after a while anyway, the render goes on with what the
    // tab holds.
    let loaded_by = deadline.min(Instant::now() + LOAD_WAIT_MAX);
    wait(&seen, loaded_by, |seen| seen.loaded || seen.navigations_blocked > 0).await?;
    seen.borrow_mut().settled = true;
    let quiet_by = deadline.min(Instant::now() + NETWORK_WAIT_MAX);
    wait(&seen, quiet_by, |seen| {
        seen.in_flight == 0 && seen.last_network.is_none_or(|at| at.elapsed() >= NETWORK_QUIET)
    })
    .await?;

    let (steps, capped) = scroll(cdp, s, &seen, opts, deadline).await?;
    let serialised =
        evaluate(cdp, s, SERIALISE, deadline.max(Instant::now() + COMMAND_TIMEOUT), "serialising").await?;
    seen.borrow().alive()?;
    let url = serialised
        .get(0)
        .and_then(Value::as_str)
        .and_then(|u| Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .unwrap_or_else(|| page.clone());
    let mut html = serialised.get(1).and_then(Value::as_str).unwrap_or_default().to_string();
    truncate(&mut html, opts.max_page_bytes);
    let seen = seen.borrow();
    let mut distinct = std::collections::HashSet::new();
    let network_images: Vec<Url> = seen
        .images
        .iter()
        .filter_map(|u| Url::parse(u).ok())
        .filter(|image| distinct.insert(image.clone()))
        .collect();
    Ok(Rendered {
        url,
        html,
        steps,
        elapsed: started.elapsed(),
        network_images,
        capped,
        navigations_blocked: seen.navigations_blocked,
    })
}

/// Scrolls to the bottom until the page stops growing, clicking the load-more button
/// when it does; the steps taken and why it stopped early, if it did.
async fn scroll(
    cdp: &Cdp,
    s: Option<&str>,
    seen: &Rc<RefCell<Seen>>,
    opts: &RenderOptions,
    deadline: Instant,
) -> Result<(u32, Option<Cap>), RenderError> {
    let measure = || async {
        let value = evaluate(cdp, s, SIGNATURE, deadline, "measuring").await?;
        Ok::<Signature, RenderError>(
            value.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default(),
        )
    };
    let mut watch = Watch::new(opts.scroll_idle, measure().await?, Instant::now());
    let mut steps = 0;
    'step: loop {
        if steps >= opts.scroll_max {
            return Ok((steps, Some(Cap::Steps)));
        }
        if Instant::now() >= deadline {
            return Ok((steps, Some(Cap::Time)));
        }
        evaluate(cdp, s, SCROLL_TO_BOTTOM, deadline, "scrolling").await?;
        steps += 1;
        loop {
            tokio::time::sleep(POLL).await;
            seen.borrow().alive()?;
            if Instant::now() >= deadline {
                return Ok((steps, Some(Cap::Time)));
            }
            let now = Instant::now();
            if watch.observe(measure().await?, now) {
                continue 'step;
            }
            if watch.is_idle(now) {
                break;
            }
        }
        let Some(selector) = &opts.load_more else {
            return Ok((steps, None));
        };
        let click = format!(
            r#"(() => {{
  const b = document.querySelector({});
  if (!b || b.disabled || !b.getClientRects().length) return false;
  b.scrollIntoView({{block: 'center'}}); b.click(); return true;
}})()"#,
            serde_json::to_string(selector).unwrap_or_default()
        );
        if evaluate(cdp, s, &click, deadline, "clicking LOAD_MORE_SELECTOR").await? != Value::Bool(true) {
            return Ok((steps, None));
        }
        watch.touch(Instant::now());
    }
}

/// Answers the tab's events as they come: paused requests (images, media and fonts
/// refused and noted, navigations after the load refused), dialogs, crashes, and the
/// network's comings and goings for the idle wait.
async fn pump(
    cdp: Rc<Cdp>,
    session: String,
    mut events: mpsc::UnboundedReceiver<Event>,
    seen: Rc<RefCell<Seen>>,
) {
    let s = Some(session.as_str());
    while let Some(Event { method, params }) = events.recv().await {
        let mut seen = seen.borrow_mut();
        match method.as_str() {
            "Fetch.requestPaused" => {
                let id = params["requestId"].clone();
                let refuse = |reason: &str| {
                    cdp.tell(s, "Fetch.failRequest", json!({ "requestId": id, "errorReason": reason }))
                };
                match params["resourceType"].as_str().unwrap_or_default() {
                    "Image" => {
                        if let Some(url) = params["request"]["url"].as_str().filter(|u| u.starts_with("http"))
                        {
                            seen.images.push(url.to_string());
                        }
                        refuse("BlockedByClient");
                    }
                    "Media" | "Font" => refuse("BlockedByClient"),
                    // Aborted, not blocked: an aborted navigation commits no error page,
                    // so the page stays what it was.
                    "Document" if seen.settled || seen.documents >= MAX_DOCUMENTS => {
                        seen.navigations_blocked += 1;
                        refuse("Aborted");
                    }
                    "Document" => {
                        seen.documents += 1;
                        cdp.tell(s, "Fetch.continueRequest", json!({ "requestId": id }));
                    }
                    _ => cdp.tell(s, "Fetch.continueRequest", json!({ "requestId": id })),
                }
            }
            "Network.requestWillBeSent" => {
                seen.in_flight += 1;
                seen.last_network = Some(Instant::now());
            }
            "Network.loadingFinished" | "Network.loadingFailed" => {
                seen.in_flight = seen.in_flight.saturating_sub(1);
                seen.last_network = Some(Instant::now());
            }
            "Page.loadEventFired" => seen.loaded = true,
            "Page.javascriptDialogOpening" => {
                cdp.tell(s, "Page.handleJavaScriptDialog", json!({ "accept": true }));
            }
            "Inspector.targetCrashed" => seen.crashed = true,
            _ => {}
        }
    }
    // The stream ended: the browser is gone.
    seen.borrow_mut().browser_gone = true;
}

/// Waits until `ready` holds or `by` passes (not an error: the caller goes on with what
/// the page has); a crash is.
async fn wait(seen: &RefCell<Seen>, by: Instant, ready: impl Fn(&Seen) -> bool) -> Result<(), RenderError> {
    loop {
        {
            let seen = seen.borrow();
            seen.alive()?;
            if ready(&seen) || Instant::now() >= by {
                return Ok(());
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Sends `method` and waits for its answer, at most [`COMMAND_TIMEOUT`] and never past
/// `deadline` (but a second at least); a page that does not answer in time was busy
/// `doing` that.
async fn command(
    cdp: &Cdp,
    session: Option<&str>,
    method: &str,
    params: Value,
    deadline: Instant,
    doing: &'static str,
) -> Result<Value, RenderError> {
    let limit =
        COMMAND_TIMEOUT.min(deadline.saturating_duration_since(Instant::now())).max(Duration::from_secs(1));
    match tokio::time::timeout(limit, cdp.call(session, method, params)).await {
        Ok(answer) => Ok(answer?),
        Err(_) if cdp.is_gone() => Err(RenderError::BrowserGone),
        Err(_) => Err(RenderError::Unresponsive(doing)),
    }
}

/// A command of the load and set-up steps.
async fn call(
    cdp: &Cdp,
    session: Option<&str>,
    method: &str,
    params: Value,
    deadline: Instant,
) -> Result<Value, RenderError> {
    command(cdp, session, method, params, deadline, "loading").await
}

/// Runs `expression` in the page (awaiting a promise), its value by value.
async fn evaluate(
    cdp: &Cdp,
    session: Option<&str>,
    expression: &str,
    deadline: Instant,
    doing: &'static str,
) -> Result<Value, RenderError> {
    let params = json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
    let mut answer = command(cdp, session, "Runtime.evaluate", params, deadline, doing).await?;
    Ok(answer.get_mut("result").and_then(|r| r.get_mut("value")).map(Value::take).unwrap_or(Value::Null))
}

fn text(value: &Value, field: &str) -> Result<String, RenderError> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| RenderError::Protocol(format!("no {field} in the browser's answer")))
}

/// Cuts `html` to at most `max` bytes, at a character boundary.
fn truncate(html: &mut String, max: u64) {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if html.len() > max {
        let mut at = max;
        while !html.is_char_boundary(at) {
            at -= 1;
        }
        html.truncate(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dom_over_the_cap_is_cut_at_a_character_boundary() {
        let mut html = "ab\u{e9}cd".to_string();
        truncate(&mut html, 3);
        assert_eq!(html, "ab");
        let mut short = "abc".to_string();
        truncate(&mut short, 10);
        assert_eq!(short, "abc");
    }
}
