//! Async mode's worker: one Downloader per Arbiter (one thread, one event loop), owning its
//! own `awc::Client` and keeping up to `CONCURRENCY` requests in flight.
//!
//! `awc::Client` is `!Send`, so it is built inside the Arbiter by
//! `Actor::start_in_arbiter` and never leaves it.

use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use awc::error::{PayloadError, SendRequestError};
use awc::http::header;
use futures_util::future::{Either, select};
use futures_util::{FutureExt, StreamExt};
use rustls::ClientConfig;
use slog::{Logger, debug, trace};
use url::Url;

use crate::download::{Body, Capped, ImageSink};
use crate::html::Extractor;
use crate::robots::{MAX_ROBOTS_BYTES, ROBOTS_REDIRECTS, Rules};
use crate::work::{
    Done, FetchOptions, ImageTask, RunTask, Task, TaskError, TaskFinished, check_status, host_of,
    plain_length, plan_retry, redirect_target,
};

pub struct Downloader {
    client: awc::Client,
    /// Shared with the in-flight futures this actor spawns.
    shared: Rc<Shared>,
    report: Recipient<TaskFinished>,
    log: Logger,
}

/// What every request future of one Downloader reads.
struct Shared {
    opts: Arc<FetchOptions>,
    extractor: Extractor,
}

/// TLS settings for every Downloader: rustls on ring with the webpki roots, HTTP/2 offered.
/// Built once; building it per client would repeat the root-store parsing.
pub fn tls_config() -> Arc<ClientConfig> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Downloader {
    /// Must run on the Arbiter that will host the actor (inside `start_in_arbiter`).
    pub fn new(
        opts: Arc<FetchOptions>,
        tls: Arc<ClientConfig>,
        report: Recipient<TaskFinished>,
        log: Logger,
    ) -> Self {
        let connector = awc::Connector::new().timeout(opts.timeout).limit(opts.concurrency).rustls_0_23(tls);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(opts.timeout)
            // Redirects go back to the Coordinator (Done::Moved), which checks the target.
            .disable_redirects()
            .add_default_header((header::USER_AGENT, opts.user_agent.as_str()))
            .finish();
        let extractor = Extractor::new(&opts.extract).expect("extraction rules validated in settings");
        Self { client, shared: Rc::new(Shared { opts, extractor }), report, log }
    }
}

impl Actor for Downloader {
    type Context = Context<Self>;
}

impl Handler<RunTask> for Downloader {
    type Result = ();

    /// Starts the task and returns at once: the Coordinator's capacity accounting, not
    /// this mailbox, bounds how many run together.
    fn handle(&mut self, msg: RunTask, ctx: &mut Context<Self>) {
        trace!(self.log, "task"; "id" => msg.id, "task" => ?msg.task);
        let client = self.client.clone();
        let shared = Rc::clone(&self.shared);
        let report = self.report.clone();
        let log = self.log.clone();
        let work = async move {
            let cancel = shared.opts.cancel.clone();
            let task =
                AssertUnwindSafe(perform_with_retries(&client, &shared, &msg.task, &log)).catch_unwind();
            // Dropping the request on cancel drops its temporary file with it.
            let (outcome, attempts) = match select(pin!(task), pin!(cancel.cancelled())).await {
                Either::Left((Ok(finished), _)) => finished,
                Either::Left((Err(_panic), _)) => (Err(TaskError::Worker("panicked".into())), 1),
                Either::Right(((), _)) => (Err(TaskError::Interrupted), 1),
            };
            report.do_send(TaskFinished { id: msg.id, outcome, attempts });
        };
        ctx.spawn(work.into_actor(self));
    }
}

/// Performs `task` when the host's gate allows, retrying what may succeed on another
/// try; returns the outcome and the number of attempts. Cancellation is the caller's:
/// it drops this future.
async fn perform_with_retries(
    client: &awc::Client,
    shared: &Shared,
    task: &Task,
    log: &Logger,
) -> (Result<Done, TaskError>, u32) {
    let opts = &shared.opts;
    let host = host_of(task.url());
    let mut delays = opts.retries.delays();
    let mut attempts = 0;
    loop {
        loop {
            let wait = opts.gate.wait_for(host);
            if wait.is_zero() {
                break;
            }
            actix_rt::time::sleep(wait).await;
        }
        attempts += 1;
        let err = match perform(client, shared, task).await {
            Err(e) => e,
            done => return (done, attempts),
        };
        let Some(wait) = plan_retry(opts, host, &err, &mut delays) else {
            return (Err(err.settle(opts.retries.max_wait)), attempts);
        };
        debug!(log, "retrying";
            "url" => %task.url(), "error" => %err, "wait_ms" => wait.as_millis(), "attempt" => attempts);
        actix_rt::time::sleep(wait).await;
    }
}

async fn perform(client: &awc::Client, shared: &Shared, task: &Task) -> Result<Done, TaskError> {
    match task {
        Task::Robots { url } => fetch_robots(client, shared, url, task).await,
        Task::Page { url, .. } => fetch_page(client, shared, url, task).await,
        Task::Image(image) => fetch_image(client, shared, image, task).await,
    }
}

/// Built without awc's compress features, so its payload is the body as sent; the
/// `download::Body` decodes it.
type Response = awc::ClientResponse;

/// What one request got: a body to read, or a redirect.
enum Answer {
    Body(Response),
    Moved(Url),
}

/// One request; a redirect comes back as where it points, not followed (awc's own
/// redirect handling is off: it followed `ftp:` targets by speaking HTTP to them).
async fn get(client: &awc::Client, shared: &Shared, url: &Url, task: &Task) -> Result<Answer, TaskError> {
    let mut request = client.get(url.as_str());
    for (name, value) in shared.opts.headers_for(task) {
        request = request.insert_header((name, value));
    }
    let response = request.send().await.map_err(|e| classify_send(e, shared))?;
    let status = response.status().as_u16();
    if let Some(to) = redirect_target(url, status, header(&response, header::LOCATION))? {
        return Ok(Answer::Moved(to));
    }
    check_status(status, header(&response, header::RETRY_AFTER))?;
    Ok(Answer::Body(response))
}

/// Streams the body through its Content-Encoding into `sink`. The request timeout
/// covers the headers only; this bounds each wait for the next chunk, so a server that
/// stalls mid-body cannot hang the run.
async fn read_into(
    mut response: Response,
    shared: &Shared,
    sink: &mut impl std::io::Write,
) -> Result<(), TaskError> {
    let opts = &shared.opts;
    let encoding = content_encoding(&response);
    let mut body = Body::new(encoding.as_deref(), sink)?;
    loop {
        let next = actix_rt::time::timeout(opts.timeout, response.next())
            .await
            .map_err(|_| TaskError::Timeout(opts.timeout))?;
        match next {
            None => break,
            Some(Ok(chunk)) => body.write(&chunk)?,
            Some(Err(e)) => return Err(classify_payload(e, shared)),
        }
    }
    body.finish()
}

/// robots.txt follows its own redirects (RFC 9309 2.3.1.2: at least five, across hosts
/// too, its rules still those of the first origin); more means unavailable.
async fn fetch_robots(
    client: &awc::Client,
    shared: &Shared,
    url: &Url,
    task: &Task,
) -> Result<Done, TaskError> {
    let mut url = url.clone();
    for _ in 0..=ROBOTS_REDIRECTS {
        let response = match get(client, shared, &url, task).await {
            Err(TaskError::Status { code: 400..=499, .. }) => return Ok(Done::Robots(Rules::AllowAll)),
            Err(e) => return Err(e),
            Ok(Answer::Moved(to)) => {
                url = to;
                continue;
            }
            Ok(Answer::Body(response)) => response,
        };
        let mut body = Capped::new(MAX_ROBOTS_BYTES);
        read_into(response, shared, &mut body).await?;
        return Ok(Done::Robots(Rules::parse(&body.bytes)));
    }
    Ok(Done::Robots(Rules::AllowAll))
}

async fn fetch_page(
    client: &awc::Client,
    shared: &Shared,
    url: &Url,
    task: &Task,
) -> Result<Done, TaskError> {
    let response = match get(client, shared, url, task).await? {
        Answer::Moved(to) => return Ok(Done::Moved(to)),
        Answer::Body(response) => response,
    };
    let mut body = Capped::new(shared.opts.max_page_bytes);
    read_into(response, shared, &mut body).await?;
    let html = String::from_utf8_lossy(&body.bytes);
    Ok(Done::Page(shared.extractor.scan(&html, url)))
}

/// Streams the body through an [`ImageSink`] chunk by chunk: memory per download is one
/// chunk, whatever the image size.
async fn fetch_image(
    client: &awc::Client,
    shared: &Shared,
    image: &ImageTask,
    task: &Task,
) -> Result<Done, TaskError> {
    let opts = &shared.opts;
    let response = match get(client, shared, &image.url, task).await? {
        Answer::Moved(to) => return Ok(Done::Moved(to)),
        Answer::Body(response) => response,
    };
    let encoding = content_encoding(&response);
    let plain_length = plain_length(encoding.as_deref(), header(&response, header::CONTENT_LENGTH));
    let content_type = header(&response, header::CONTENT_TYPE).map(str::to_string);
    let mut sink = ImageSink::start(opts, image, content_type.as_deref(), plain_length)?;
    read_into(response, shared, &mut sink).await?;
    sink.finish()
}

fn header(response: &Response, name: header::HeaderName) -> Option<&str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Every Content-Encoding line, joined: a server may send one coding per line.
fn content_encoding(response: &Response) -> Option<String> {
    let values: Vec<&str> =
        response.headers().get_all(header::CONTENT_ENCODING).filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn classify_send(err: SendRequestError, shared: &Shared) -> TaskError {
    match err {
        SendRequestError::Timeout => TaskError::Timeout(shared.opts.timeout),
        SendRequestError::Connect(awc::error::ConnectError::Timeout) => {
            TaskError::Timeout(shared.opts.timeout)
        }
        // awc's word for a server that closed the connection without answering.
        SendRequestError::Connect(awc::error::ConnectError::Disconnected) => {
            TaskError::Transfer("the server closed the connection without answering".into())
        }
        SendRequestError::Connect(e) => TaskError::Connect(e.to_string()),
        e => TaskError::Transfer(e.to_string()),
    }
}

/// awc no longer decodes or caps bodies (the sinks do), so what is left is the
/// connection: a stall or a break.
fn classify_payload(err: PayloadError, shared: &Shared) -> TaskError {
    match err {
        PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            TaskError::Timeout(shared.opts.timeout)
        }
        e => TaskError::Transfer(e.to_string()),
    }
}
