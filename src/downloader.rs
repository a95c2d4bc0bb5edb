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

use crate::coordinator::TaskFinished;
use crate::download::ImageSink;
use crate::html::Extractor;
use crate::robots::{MAX_ROBOTS_BYTES, Rules};
use crate::work::{
    Done, FetchOptions, ImageTask, RunTask, Task, TaskError, check_status, host_of, plain_length, plan_retry,
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
            .max_redirects(10)
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
            return (Err(err), attempts);
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

type Response = awc::ClientResponse<actix_http::encoding::Decoder<actix_http::Payload>>;

async fn get(client: &awc::Client, shared: &Shared, url: &Url, task: &Task) -> Result<Response, TaskError> {
    let mut request = client.get(url.as_str());
    for (name, value) in shared.opts.headers_for(task) {
        request = request.insert_header((name, value));
    }
    let response = request.send().await.map_err(|e| classify_send(e, shared))?;
    check_status(response.status().as_u16(), header(&response, header::RETRY_AFTER))?;
    Ok(response)
}

/// A whole body, up to `limit` bytes, within the timeout.
async fn read_body(
    response: Response,
    shared: &Shared,
    limit: u64,
) -> Result<actix_web::web::Bytes, TaskError> {
    response
        .timeout(shared.opts.timeout)
        .body()
        .limit(usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|e| classify_payload(e, shared, limit))
}

async fn fetch_robots(
    client: &awc::Client,
    shared: &Shared,
    url: &Url,
    task: &Task,
) -> Result<Done, TaskError> {
    let response = match get(client, shared, url, task).await {
        Err(TaskError::Status { code: 400..=499, .. }) => return Ok(Done::Robots(Rules::AllowAll)),
        other => other?,
    };
    let body = read_body(response, shared, MAX_ROBOTS_BYTES).await?;
    Ok(Done::Robots(Rules::parse(&body)))
}

async fn fetch_page(
    client: &awc::Client,
    shared: &Shared,
    url: &Url,
    task: &Task,
) -> Result<Done, TaskError> {
    let response = get(client, shared, url, task).await?;
    let body = read_body(response, shared, shared.opts.max_page_bytes).await?;
    let html = String::from_utf8_lossy(&body);
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
    let mut response = get(client, shared, &image.url, task).await?;
    let plain_length =
        plain_length(header(&response, header::CONTENT_ENCODING), header(&response, header::CONTENT_LENGTH));
    let content_type = header(&response, header::CONTENT_TYPE).map(str::to_string);
    let mut sink = ImageSink::start(opts, image, content_type.as_deref(), plain_length)?;
    loop {
        // The request timeout covers the headers only; this bounds each wait for the
        // next chunk, so a server that stalls mid-body cannot hang the run.
        let next = actix_rt::time::timeout(opts.timeout, response.next())
            .await
            .map_err(|_| TaskError::Timeout(opts.timeout))?;
        match next {
            None => break,
            Some(Ok(chunk)) => sink.write(&chunk)?,
            Some(Err(e)) => return Err(classify_payload(e, shared, opts.max_image_bytes)),
        }
    }
    sink.finish()
}

fn header(response: &Response, name: header::HeaderName) -> Option<&str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
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

fn classify_payload(err: PayloadError, shared: &Shared, limit: u64) -> TaskError {
    match err {
        PayloadError::Overflow => TaskError::TooLarge(limit),
        PayloadError::EncodingCorrupted => TaskError::Decode("corrupt content encoding".into()),
        // A decoder (gzip, brotli) that fails reports it as an early end of the body.
        PayloadError::Incomplete(Some(e))
            if matches!(e.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData) =>
        {
            TaskError::Decode(e.to_string())
        }
        PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            TaskError::Timeout(shared.opts.timeout)
        }
        e => TaskError::Transfer(e.to_string()),
    }
}
