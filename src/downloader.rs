//! Async mode's worker: one Downloader per Arbiter (one thread, one event loop), owning its
//! own `awc::Client` and keeping up to `CONCURRENCY` requests in flight.
//!
//! `awc::Client` is `!Send`, so it is built inside the Arbiter by
//! `Actor::start_in_arbiter` and never leaves it.

use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use awc::error::{PayloadError, SendRequestError};
use awc::http::header;
use futures_util::{FutureExt, StreamExt};
use rustls::ClientConfig;
use slog::{Logger, trace};
use url::Url;

use crate::coordinator::TaskFinished;
use crate::html::Extractor;
use crate::storage::{self, PartialFile};
use crate::work::{Done, FetchOptions, RunTask, Task, TaskError, check_length, check_status};

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
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
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
        let connector = awc::Connector::new()
            .timeout(opts.timeout)
            .limit(opts.concurrency)
            .rustls_0_23(tls);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(opts.timeout)
            .max_redirects(10)
            .add_default_header((header::USER_AGENT, opts.user_agent.as_str()))
            .finish();
        let extractor = Extractor::new(&opts.extract).expect("extraction rules validated in settings");
        Self {
            client,
            shared: Rc::new(Shared { opts, extractor }),
            report,
            log,
        }
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
        let work = async move {
            let outcome = AssertUnwindSafe(perform(&client, &shared, &msg.task))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(TaskError::Worker("panicked".into())));
            report.do_send(TaskFinished { id: msg.id, outcome });
        };
        ctx.spawn(work.into_actor(self));
    }
}

async fn perform(client: &awc::Client, shared: &Shared, task: &Task) -> Result<Done, TaskError> {
    match task {
        Task::Page { url, .. } => fetch_page(client, shared, url).await,
        Task::Image { url, name } => fetch_image(client, shared, url, name).await,
    }
}

type Response = awc::ClientResponse<actix_http::encoding::Decoder<actix_http::Payload>>;

async fn get(client: &awc::Client, shared: &Shared, url: &Url) -> Result<Response, TaskError> {
    let response = client
        .get(url.as_str())
        .send()
        .await
        .map_err(|e| classify_send(e, shared))?;
    check_status(response.status().as_u16())?;
    Ok(response)
}

async fn fetch_page(client: &awc::Client, shared: &Shared, url: &Url) -> Result<Done, TaskError> {
    let response = get(client, shared, url).await?;
    let limit = shared.opts.max_page_bytes;
    let body = response
        .timeout(shared.opts.timeout)
        .body()
        .limit(usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|e| classify_payload(e, shared))?;
    let html = String::from_utf8_lossy(&body);
    Ok(Done::Page(shared.extractor.scan(&html, url)))
}

/// Streams the body into a temporary file chunk by chunk: memory per download is one
/// chunk, whatever the image size.
async fn fetch_image(
    client: &awc::Client,
    shared: &Shared,
    url: &Url,
    name: &str,
) -> Result<Done, TaskError> {
    let opts = &shared.opts;
    let mut response = get(client, shared, url).await?;
    let expected = plain_content_length(&response);
    let mut file = PartialFile::create(&opts.out_dir).map_err(TaskError::write)?;
    loop {
        // The request timeout covers the headers only; this bounds each wait for the
        // next chunk, so a server that stalls mid-body cannot hang the run.
        let next = actix_rt::time::timeout(opts.timeout, response.next())
            .await
            .map_err(|_| TaskError::Timeout(opts.timeout))?;
        match next {
            None => break,
            Some(Ok(chunk)) => file.write(&chunk).map_err(TaskError::write)?,
            Some(Err(e)) => return Err(classify_payload(e, shared)),
        }
    }
    check_length(expected, file.written())?;
    let bytes = file
        .commit(&storage::destination(&opts.out_dir, name))
        .map_err(TaskError::write)?;
    Ok(Done::Image { bytes })
}

/// Content-Length when it counts the bytes we receive: not when the body was encoded.
fn plain_content_length(response: &Response) -> Option<u64> {
    let headers = response.headers();
    let encoded = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() != b"identity");
    if encoded {
        return None;
    }
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn classify_send(err: SendRequestError, shared: &Shared) -> TaskError {
    match err {
        SendRequestError::Timeout => TaskError::Timeout(shared.opts.timeout),
        SendRequestError::Connect(awc::error::ConnectError::Timeout) => {
            TaskError::Timeout(shared.opts.timeout)
        }
        SendRequestError::Connect(e) => TaskError::Connect(e.to_string()),
        e => TaskError::Transfer(e.to_string()),
    }
}

fn classify_payload(err: PayloadError, shared: &Shared) -> TaskError {
    match err {
        PayloadError::Overflow => TaskError::TooLarge(shared.opts.max_page_bytes),
        e => TaskError::Transfer(e.to_string()),
    }
}
