//! The fetch core: the policy every worker kind shares, written once. Wait at the host's
//! gate, attempt, plan a retry, count attempts; what a robots.txt status means; a page
//! into the extractor; an image through its Content-Encoding into an [`ImageSink`]; a
//! redirect handed back as [`Done::Moved`]. A worker keeps only what its HTTP client
//! needs, behind [`Client`]: one request, reading a body, classifying its errors,
//! waiting.
//!
//! Written as async code: the async worker awaits it on its Arbiter; the blocking worker
//! drives it with [`run_blocking`], its client's futures finishing on their first poll
//! (ureq blocks inside them). Never imports actix.

pub mod checks;
pub mod decode;
pub mod dimensions;
pub mod download;
pub mod opt_out;
pub mod options;
pub mod validate;

pub use options::{FetchOptions, Retries};

use checks::{check_status, plain_length, redirect_target};
use options::plan_retry;

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use slog::{Logger, debug};
use url::Url;

use crate::counts::{ImageInfo, RenderNote, SkipReason};
use crate::fetch::download::{Capped, ImageSink};
use crate::html::{Extractor, PageScan};
use crate::render::{RenderFuture, RenderPage, Rendered, decide};
use crate::robots::{MAX_ROBOTS_BYTES, ROBOTS_AGENT, ROBOTS_REDIRECTS, Rules};
use crate::store::{Backlog, Commit};
use crate::work::{Done, ImageTask, PageKind, Task, TaskError, host_of};

/// What a worker's HTTP client does for the core. Crate-private: both implementations
/// live on one thread each, so their futures need not be `Send`.
pub(crate) trait Client {
    type Response;

    /// One request (`head`: a HEAD, else a GET) of `url` with these headers (besides the
    /// User-Agent), following no redirect.
    async fn send(
        &self,
        url: &Url,
        headers: Vec<(&str, &str)>,
        head: bool,
    ) -> Result<Self::Response, TaskError>;

    fn status(&self, response: &Self::Response) -> u16;

    /// Every line of header `name`, each on its own: X-Robots-Tag's `agent:` prefix holds
    /// to the end of its line, which joining the lines would blur.
    fn header_lines<'r>(&self, response: &'r Self::Response, name: Header) -> impl Iterator<Item = &'r str>;

    /// Every line of header `name`, joined with `, ` (see [`joined`]); `None` when absent.
    fn header<'r>(&self, response: &'r Self::Response, name: Header) -> Option<Cow<'r, str>> {
        joined(self.header_lines(response, name))
    }

    /// Reads the body as it comes off the wire into `body`, each wait for the next piece
    /// bounded by the run's timeout. With a `backlog` (a writer's parts going up), waits
    /// for its room after each piece, as this client waits.
    async fn read(
        &self,
        response: Self::Response,
        body: &mut dyn FnMut(&[u8]) -> Result<(), TaskError>,
        backlog: Option<&dyn Backlog>,
    ) -> Result<(), TaskError>;

    /// Waits `wait`; false when the run was cancelled meanwhile.
    async fn pause(&self, wait: Duration) -> bool;

    /// Runs blocking work (a store's commit that uploads) where blocking is allowed.
    async fn offload(&self, job: Job) -> Result<String, TaskError>;

    /// Waits for the renderer's answer (on the renderer's Arbiter), as this client waits:
    /// awaited on an event loop, or blocking a worker's own thread; `Interrupted` when the
    /// run is cancelled meanwhile.
    async fn rendered(&self, render: RenderFuture) -> Result<Rendered, TaskError>;
}

/// A store's blocking last step (see `store::Commit`).
pub(crate) type Job = Box<dyn FnOnce() -> Result<String, TaskError> + Send>;

/// The response headers the core reads: named by the client with its own constant, so
/// no header name is parsed per response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    Location,
    RetryAfter,
    ContentEncoding,
    ContentLength,
    ContentType,
    XRobotsTag,
}

/// What one request got: a body to read, or a redirect to hand back.
enum BodyOrRedirect<R> {
    Body(R),
    Moved(Url),
}

pub(crate) struct Core<C> {
    pub client: C,
    pub opts: Arc<FetchOptions>,
    /// Parsed selectors, once per worker rather than per page.
    extractor: Extractor,
    log: Logger,
}

impl<C: Client> Core<C> {
    pub fn new(client: C, opts: Arc<FetchOptions>, log: Logger) -> Self {
        // The rules were validated when settings were resolved.
        let extractor = Extractor::new(&opts.extract).expect("extraction rules validated in settings");
        Self { client, opts, extractor, log }
    }

    /// Performs `task` when the host's gate allows, retrying what may succeed on another
    /// try. `attempts` counts requests as they are made, so a caller that gives up on
    /// this future (a cancel) still reports how many there were.
    pub async fn run(&self, task: &Task, attempts: &Cell<u32>) -> Result<Done, TaskError> {
        let host = host_of(task.url());
        let mut delays = self.opts.retries.delays();
        loop {
            if !self.wait_for_gate(host).await {
                return Err(TaskError::Interrupted);
            }
            attempts.set(attempts.get() + 1);
            let err = match self.perform(task).await {
                Err(e) => e,
                done => return done,
            };
            let Some(wait) = plan_retry(&self.opts, host, &err, &mut delays) else {
                return Err(err.settle(self.opts.retries.max_wait));
            };
            debug!(self.log, "retrying";
                "url" => %task.url(), "error" => %err, "wait_ms" => wait.as_millis(), "attempt" => attempts.get());
            if !self.client.pause(wait).await {
                return Err(TaskError::Interrupted);
            }
        }
    }

    /// Waits until the host's rate and pause allow a request; false if cancelled.
    async fn wait_for_gate(&self, host: &str) -> bool {
        loop {
            let wait = self.opts.gate.wait_for(host).await;
            if wait.is_zero() {
                return true;
            }
            if !self.client.pause(wait).await {
                return false;
            }
        }
    }

    async fn perform(&self, task: &Task) -> Result<Done, TaskError> {
        match task {
            Task::Robots { url } => self.fetch_robots(url, task).await,
            Task::Page { url, kind, .. } => self.fetch_page(url, *kind, task).await,
            Task::Image(image) => self.fetch_image(image, task).await,
            Task::Probe { url } => self.probe(url, task).await,
        }
    }

    async fn get(&self, url: &Url, task: &Task) -> Result<BodyOrRedirect<C::Response>, TaskError> {
        self.request(url, task, false).await
    }

    async fn request(
        &self,
        url: &Url,
        task: &Task,
        head: bool,
    ) -> Result<BodyOrRedirect<C::Response>, TaskError> {
        // Here, once for both clients: a client asked for an unusable proxy's URL would
        // go direct.
        self.opts.proxies.check(url).map_err(|unusable| TaskError::Proxy(unusable.to_string()))?;
        let response = self.client.send(url, self.opts.headers_for(task).collect(), head).await?;
        let status = self.client.status(&response);
        if let Some(to) =
            redirect_target(url, status, self.client.header(&response, Header::Location).as_deref())?
        {
            return Ok(BodyOrRedirect::Moved(to));
        }
        check_status(status, self.client.header(&response, Header::RetryAfter).as_deref())?;
        Ok(BodyOrRedirect::Body(response))
    }

    /// The body through its Content-Encoding into `sink`, waiting for its writer's
    /// `backlog` between pieces.
    async fn read_into(
        &self,
        response: C::Response,
        sink: &mut impl Write,
        backlog: Option<&dyn Backlog>,
    ) -> Result<(), TaskError> {
        let mut body = crate::fetch::download::Body::new(
            self.client.header(&response, Header::ContentEncoding).as_deref(),
            sink,
        )?;
        self.client.read(response, &mut |chunk| body.write(chunk), backlog).await?;
        body.finish()
    }

    /// robots.txt follows its own redirects (RFC 9309 2.3.1.2: at least five, across
    /// hosts too, its rules still those of the first origin); more means unavailable. A
    /// 4xx allows everything; anything else that fails is the caller's to count.
    async fn fetch_robots(&self, url: &Url, task: &Task) -> Result<Done, TaskError> {
        let mut url = url.clone();
        for _ in 0..=ROBOTS_REDIRECTS {
            let response = match self.get(&url, task).await {
                Err(TaskError::Status { code: 400..=499, .. }) => return Ok(Done::Robots(Rules::AllowAll)),
                Err(e) => return Err(e),
                Ok(BodyOrRedirect::Moved(to)) => {
                    url = to;
                    continue;
                }
                Ok(BodyOrRedirect::Body(response)) => response,
            };
            let mut body = Capped::new(MAX_ROBOTS_BYTES);
            self.read_into(response, &mut body, None).await?;
            return Ok(Done::Robots(Rules::parse(&body.bytes)));
        }
        Ok(Done::Robots(Rules::AllowAll))
    }

    async fn fetch_page(&self, url: &Url, kind: PageKind, task: &Task) -> Result<Done, TaskError> {
        let response = match self.get(url, task).await? {
            BodyOrRedirect::Moved(to) => return Ok(Done::Moved(to)),
            BodyOrRedirect::Body(response) => response,
        };
        let mut body = Capped::new(self.opts.max_page_bytes);
        self.read_into(response, &mut body, None).await?;
        let html = String::from_utf8_lossy(&body.bytes);
        let scan = self.scan(kind, &html, url);
        let found = scan.images.len() + scan.details.len();
        let Some(why) = decide(self.opts.render, &html, found) else {
            return Ok(Done::Page(scan, None));
        };
        drop(body);
        let Some(renderer) = &self.opts.renderer else {
            let why = why.to_string();
            let note = RenderNote { why, images_static: found, ..RenderNote::default() };
            return Ok(Done::Page(scan, Some(Box::new(note))));
        };
        // The browser's request for the page is one more request to its host.
        if !self.wait_for_gate(host_of(url)).await {
            return Err(TaskError::Interrupted);
        }
        debug!(self.log, "rendering"; "url" => %url, "why" => %why);
        let render = renderer.render(RenderPage { url: url.clone(), why: why.clone() });
        let rendered = self.client.rendered(render).await?;
        let scan = self.scan(kind, &rendered.html, &rendered.url);
        let listed: HashSet<&Url> =
            scan.images.iter().flat_map(|f| std::iter::once(&f.url).chain(&f.fallback)).collect();
        let network_only = rendered.network_images.iter().filter(|u| !listed.contains(u)).count();
        let note = RenderNote {
            rendered: true,
            why: why.to_string(),
            render_ms: rendered.elapsed.as_millis() as u64,
            scroll_steps: rendered.steps,
            images_static: found,
            images_rendered: scan.images.len() + scan.details.len(),
            network_images: rendered.network_images.len(),
            network_only,
            capped: rendered.capped.map(|cap| cap.as_str().to_string()),
            navigations_blocked: rendered.navigations_blocked,
        };
        Ok(Done::Page(scan, Some(Box::new(note))))
    }

    fn scan(&self, kind: PageKind, html: &str, url: &Url) -> PageScan {
        match kind {
            PageKind::Listing => self.extractor.scan(html, url),
            PageKind::Detail => self.extractor.scan_detail(html, url),
        }
    }

    /// A HEAD of a link target: an image unless the server labels it otherwise. A
    /// redirect or a missing Content-Type keeps it (a real run decides by its bytes); a
    /// HEAD refused (405, 501) is asked again with a GET whose body is never read.
    async fn probe(&self, url: &Url, task: &Task) -> Result<Done, TaskError> {
        let response = match self.request(url, task, true).await {
            Err(TaskError::Status { code: 405 | 501, .. }) => self.get(url, task).await?,
            other => other?,
        };
        let BodyOrRedirect::Body(response) = response else {
            return Ok(Done::Probed { image: true });
        };
        let kind = self.client.header(&response, Header::ContentType);
        let image = kind.is_none_or(|kind| {
            let kind = kind.trim().to_ascii_lowercase();
            kind.starts_with("image/") || kind.starts_with("application/octet-stream")
        });
        Ok(Done::Probed { image })
    }

    /// Streams the body through an [`ImageSink`]: memory per download is one chunk,
    /// whatever the image size.
    async fn fetch_image(&self, image: &ImageTask, task: &Task) -> Result<Done, TaskError> {
        let response = match self.get(&image.url, task).await? {
            BodyOrRedirect::Moved(to) => return Ok(Done::Moved(to)),
            BodyOrRedirect::Body(response) => response,
        };
        self.check_opt_out(&response)?;
        let header = |name| self.client.header(&response, name);
        let length = plain_length(
            header(Header::ContentEncoding).as_deref(),
            header(Header::ContentLength).as_deref(),
        );
        let mut sink =
            ImageSink::start(&self.opts, image, header(Header::ContentType).as_deref(), length).await?;
        let backlog = sink.backlog();
        self.read_into(response, &mut sink, backlog.as_deref()).await?;
        let checked = sink.finish()?;
        let name = match checked.commit {
            Commit::Done(name) => name?,
            Commit::Blocking(job) => self.client.offload(job).await?,
            Commit::Pending(answer) => answer.await?,
        };
        let info = ImageInfo {
            final_url: Some(image.url.to_string()),
            content_type: checked.content_type,
            width: checked.width,
            height: checked.height,
        };
        Ok(Done::Image { bytes: checked.bytes, name, sha256: checked.sha256, info })
    }

    /// Refuses an image whose server opted it out for us or for all (`X-Robots-Tag:
    /// noai`...), from the headers alone: nothing of it is stored, its body is not read.
    fn check_opt_out(&self, response: &C::Response) -> Result<(), TaskError> {
        if !self.opts.obey_opt_outs {
            return Ok(());
        }
        let lines = self.client.header_lines(response, Header::XRobotsTag);
        match opt_out::opt_out(lines, ROBOTS_AGENT) {
            Some(directive) => {
                Err(TaskError::Unwanted(SkipReason::OptOut, format!("X-Robots-Tag: {directive}")))
            }
            None => Ok(()),
        }
    }
}

/// Header lines as one value, the way HTTP joins repeated fields: borrowed when there is
/// one line (nearly always), so a response's headers cost no allocation.
fn joined<'r>(mut values: impl Iterator<Item = &'r str>) -> Option<Cow<'r, str>> {
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(Cow::Borrowed(first));
    };
    let mut all = format!("{first}, {second}");
    for value in values {
        all.push_str(", ");
        all.push_str(value);
    }
    Some(Cow::Owned(all))
}

/// Drives `future` on this thread, parked while it waits (the renderer answers from its
/// own Arbiter), looking at `cancel` every tenth of a second; `None` when cancelled. For
/// the blocking worker, whose thread is its own to block.
pub(crate) fn wait_blocking<F: Future>(future: F, cancel: &crate::work::Cancel) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return Some(output);
        }
        if cancel.is_cancelled() {
            return None;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// Drives a future whose every await finishes at once (a blocking client's), on this
/// thread, without a runtime.
pub(crate) fn run_blocking<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        // A blocking client never returns Pending: its waits block the thread instead.
        Poll::Pending => unreachable!("a blocking client's future waited"),
    }
}

/// The least rules a core compiles: `<img src>`, nothing else (the fetch tests').
#[cfg(test)]
pub(crate) fn image_rules() -> crate::html::ExtractRules {
    crate::html::ExtractRules {
        image_selector: "img".into(),
        attributes: vec!["src".into()],
        image_host: String::new(),
        page_count_selector: String::new(),
        linked_images: Default::default(),
        link_selector: String::new(),
        next_selector: Some(String::new()),
        detail: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::folder::FolderStore;

    #[test]
    fn header_lines_join_and_one_line_is_borrowed() {
        assert_eq!(joined(std::iter::empty()), None);
        assert!(matches!(joined(["gzip"].into_iter()), Some(Cow::Borrowed("gzip"))));
        assert_eq!(joined(["gzip", "br", "deflate"].into_iter()).as_deref(), Some("gzip, br, deflate"));
    }

    #[test]
    fn a_blocking_future_is_driven_to_its_end_on_the_spot() {
        assert_eq!(run_blocking(async { 40 + 2 }), 42);
    }

    /// A client that answers from a script and notes when each request went, on tokio's
    /// clock: the core's waits (the gate, Retry-After, backoff) measured on a paused
    /// clock, exactly, with no server and no real wait.
    struct Scripted {
        /// Each request's answer in turn: a status and its Retry-After; a 404 once done.
        answers: std::cell::RefCell<std::collections::VecDeque<(u16, Option<&'static str>)>>,
        /// Each request's host and when it went, in order.
        sent: std::cell::RefCell<Vec<(String, tokio::time::Instant)>>,
    }

    impl Client for &Scripted {
        type Response = (u16, Option<&'static str>);

        async fn send(&self, url: &Url, _: Vec<(&str, &str)>, _: bool) -> Result<Self::Response, TaskError> {
            self.sent.borrow_mut().push((host_of(url).to_string(), tokio::time::Instant::now()));
            Ok(self.answers.borrow_mut().pop_front().unwrap_or((404, None)))
        }

        fn status(&self, response: &Self::Response) -> u16 {
            response.0
        }

        fn header_lines<'r>(
            &self,
            response: &'r Self::Response,
            name: Header,
        ) -> impl Iterator<Item = &'r str> {
            response.1.filter(|_| name == Header::RetryAfter).into_iter()
        }

        async fn read(
            &self,
            _: Self::Response,
            _: &mut dyn FnMut(&[u8]) -> Result<(), TaskError>,
            _: Option<&dyn Backlog>,
        ) -> Result<(), TaskError> {
            Ok(())
        }

        async fn pause(&self, wait: Duration) -> bool {
            tokio::time::sleep(wait).await;
            true
        }

        async fn offload(&self, job: Job) -> Result<String, TaskError> {
            job()
        }

        async fn rendered(&self, _: RenderFuture) -> Result<Rendered, TaskError> {
            unreachable!("no page is rendered here")
        }
    }

    /// Runs listing-page tasks for `urls` at once through one core on a paused clock,
    /// the client answering `answers` in turn (empty bodies); each request's host and
    /// when it went, in seconds from the start.
    fn sent_at(
        change: impl FnOnce(&mut FetchOptions),
        answers: &[(u16, Option<&'static str>)],
        urls: &[&str],
    ) -> Vec<(String, f64)> {
        let dir = tempfile::tempdir().unwrap();
        let out = crate::outdir::OutDir::open(dir.path()).unwrap();
        let mut opts = FetchOptions::new(Arc::new(FolderStore::fresh(out.clone())), image_rules());
        change(&mut opts);
        let client = Scripted {
            answers: std::cell::RefCell::new(answers.iter().copied().collect()),
            sent: Default::default(),
        };
        let core = Core::new(&client, Arc::new(opts), Logger::root(slog::Discard, slog::o!()));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build();
        let start = runtime.unwrap().block_on(async {
            let start = tokio::time::Instant::now();
            futures_util::future::join_all(urls.iter().map(|url| async {
                let task = Task::Page { number: 1, url: Url::parse(url).unwrap(), kind: PageKind::Listing };
                core.run(&task, &Cell::new(0)).await
            }))
            .await;
            start
        });
        let sent = client.sent.take();
        sent.into_iter().map(|(host, at)| (host, (at - start).as_secs_f64())).collect()
    }

    fn at(host: &str, seconds: f64) -> (String, f64) {
        (host.to_string(), seconds)
    }

    /// `times` retries, the first after a second and up to one more, a minute at most.
    fn retries(times: u32) -> crate::fetch::options::Retries {
        crate::fetch::options::Retries {
            times,
            base: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_gate_spaces_requests_to_a_host_by_its_interval_exactly() {
        let gate =
            Arc::new(crate::net::politeness::HostGate::new(Some(Duration::from_secs(2)), Duration::ZERO));
        let urls = ["http://a.test/1", "http://a.test/2", "http://b.test/1", "http://a.test/3"];
        let sent = sent_at(|o| o.gate = gate, &[], &urls);
        // Four tasks at once: one host's three go one interval apart, the other's at once.
        assert_eq!(sent, [at("a.test", 0.0), at("b.test", 0.0), at("a.test", 2.0), at("a.test", 4.0)]);
    }

    #[test]
    fn a_429_holds_every_task_to_the_host_for_its_retry_after() {
        let urls = ["http://a.test/1", "http://a.test/2", "http://b.test/1"];
        let sent = sent_at(|o| o.retries = retries(1), &[(429, Some("7"))], &urls);
        // The first is told to wait 7 s: the other task to its host waits too, not the
        // backoff's second; the other host does not.
        assert_eq!(sent, [at("a.test", 0.0), at("b.test", 0.0), at("a.test", 7.0), at("a.test", 7.0)]);
    }

    #[test]
    fn a_retry_waits_its_backoff_doubling_with_jitter() {
        let sent = sent_at(|o| o.retries = retries(2), &[(500, None), (500, None)], &["http://a.test/1"]);
        let times: Vec<f64> = sent.iter().map(|(_, at)| *at).collect();
        assert_eq!(times.len(), 3, "two retries: {times:?}");
        // Each backoff is its base doubled per retry plus up to as much again at random.
        let (first, second) = (times[1] - times[0], times[2] - times[1]);
        assert!((1.0..2.0).contains(&first), "{times:?}");
        assert!((2.0..4.0).contains(&second), "{times:?}");
    }

    #[test]
    fn a_thread_waits_for_another_threads_answer_unless_cancelled() {
        let cancel = crate::work::Cancel::default();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let answer = std::thread::spawn(move || tx.send(42));
        assert_eq!(wait_blocking(rx, &cancel), Some(Ok(42)));
        answer.join().unwrap().unwrap();
        let (_tx, never) = tokio::sync::oneshot::channel::<u32>();
        cancel.cancel();
        assert_eq!(wait_blocking(never, &cancel), None);
    }
}
