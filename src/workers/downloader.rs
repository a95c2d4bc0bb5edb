//! Async mode's worker: one Downloader per Arbiter (one thread, one event loop), owning its
//! own `awc::Client` and keeping up to `CONCURRENCY` requests in flight. The policy is
//! the fetch core's ([`crate::fetch`]); this file is only what awc needs.
//!
//! `awc::Client` is `!Send`, so it is built inside the Arbiter by
//! `Actor::start_in_arbiter` and never leaves it.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use awc::error::{PayloadError, SendRequestError};
use awc::http::header;
use futures_util::future::{Either, select};
use futures_util::{FutureExt, StreamExt};
use rustls::ClientConfig;
use slog::{Logger, trace};
use url::Url;

use crate::fetch::options::FetchOptions;
use crate::fetch::{Client, Core, Header, Job};
use crate::net::awc_proxy::{ProxyConnector, forward_uri};
use crate::net::tls::Trust;
use crate::render::{RenderFuture, Rendered};
use crate::store::Backlog;
use crate::work::{RunTask, TaskError, TaskFinished};
use crate::workers::finish;
use crate::workers::response::{header_name, unless_proxy_refused};

pub struct Downloader {
    /// Shared with the in-flight futures this actor spawns.
    core: Rc<Core<Awc>>,
    report: Recipient<TaskFinished>,
    log: Logger,
}

/// TLS settings for every Downloader: the run's trust, HTTP/2 offered first (awc then
/// multiplexes a host's requests on one connection). Built once per run and shared.
pub fn tls_config(trust: &Trust) -> Arc<ClientConfig> {
    trust.client_config(&[b"h2", b"http/1.1"])
}

impl Downloader {
    /// Must run on the Arbiter that will host the actor (inside `start_in_arbiter`).
    pub fn new(
        opts: Arc<FetchOptions>,
        tls: Arc<ClientConfig>,
        report: Recipient<TaskFinished>,
        log: Logger,
    ) -> Self {
        // awc has no proxy support: the connector goes through a proxy where the rules say so.
        let connector = awc::Connector::new()
            .connector(ProxyConnector::new(Arc::clone(&opts.proxies)))
            .timeout(opts.timeout)
            .limit(opts.concurrency)
            .rustls_0_23(tls);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(opts.timeout)
            // Redirects go back to the Coordinator (Done::Moved), which checks the target:
            // awc's own redirect handling followed `ftp:` targets by speaking HTTP to them.
            .disable_redirects()
            .add_default_header((header::USER_AGENT, opts.user_agent.as_str()))
            .finish();
        let client = Awc { client, opts: Arc::clone(&opts) };
        Self { core: Rc::new(Core::new(client, opts, log.clone())), report, log }
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
        let core = Rc::clone(&self.core);
        let report = self.report.clone();
        let work = async move {
            let attempts = Cell::new(0);
            let cancel = core.opts.cancel.clone();
            let run = AssertUnwindSafe(core.run(&msg.task, &attempts)).catch_unwind();
            // Dropping the request on cancel drops its temporary file with it.
            let caught = match select(pin!(run), pin!(cancel.cancelled())).await {
                Either::Left((caught, _)) => caught,
                Either::Right(((), _)) => Ok(Err(TaskError::Interrupted)),
            };
            finish::report(&report, msg.id, caught, attempts.get());
        };
        ctx.spawn(work.into_actor(self));
    }
}

/// awc, as the fetch core uses it. Built without its compress features, so a payload is
/// the body as sent (`download::Body` decodes it), and without following redirects.
struct Awc {
    client: awc::Client,
    opts: Arc<FetchOptions>,
}

impl Client for Awc {
    type Response = awc::ClientResponse;

    async fn send(
        &self,
        url: &Url,
        headers: Vec<(&str, &str)>,
        head: bool,
    ) -> Result<Self::Response, TaskError> {
        let method = if head { awc::http::Method::HEAD } else { awc::http::Method::GET };
        // An https target through a proxy is tunnelled by the connector and sent as usual;
        // an http one is forwarded by the proxy, so it is written for the proxy.
        let forward = self.opts.proxies.for_url(url).filter(|proxy| proxy.forwards(url));
        let mut request = match forward {
            None => self.client.request(method, url.as_str()),
            Some(proxy) => {
                let uri = forward_uri(url)
                    .ok_or_else(|| TaskError::Connect(proxy.failure("cannot forward this URL")))?;
                let request = self.client.request(method, uri);
                match &proxy.authorization {
                    Some(credentials) => {
                        request.insert_header((header::PROXY_AUTHORIZATION, credentials.as_str()))
                    }
                    None => request,
                }
            }
        };
        for (name, value) in headers {
            request = request.insert_header((name, value));
        }
        let response = request.send().await.map_err(|e| classify_send(e, url, &self.opts))?;
        let status = response.status().as_u16();
        unless_proxy_refused(response, status, forward, url)
    }

    fn status(&self, response: &Self::Response) -> u16 {
        response.status().as_u16()
    }

    fn header_lines<'r>(&self, response: &'r Self::Response, name: Header) -> impl Iterator<Item = &'r str> {
        let name = header_name!(name, awc::http::header);
        response.headers().get_all(name).filter_map(|v| v.to_str().ok())
    }

    /// awc's timeout covers the headers only; this bounds each wait for the next chunk,
    /// so a server that stalls mid-body cannot hang the run. A backlog is awaited, never
    /// waited for on this thread: the Arbiter's other downloads go on meanwhile.
    async fn read(
        &self,
        mut response: Self::Response,
        body: &mut dyn FnMut(&[u8]) -> Result<(), TaskError>,
        backlog: Option<&dyn Backlog>,
    ) -> Result<(), TaskError> {
        let timeout = self.opts.timeout;
        loop {
            let next = actix_rt::time::timeout(timeout, response.next())
                .await
                .map_err(|_| TaskError::Timeout(timeout))?;
            match next {
                None => return Ok(()),
                Some(Ok(chunk)) => body(&chunk)?,
                Some(Err(e)) => return Err(classify_payload(e, &self.opts)),
            }
            if let Some(backlog) = backlog {
                backlog.room().await?;
            }
        }
    }

    async fn pause(&self, wait: Duration) -> bool {
        let cancel = self.opts.cancel.clone();
        let sleep = actix_rt::time::sleep(wait);
        matches!(select(pin!(sleep), pin!(cancel.cancelled())).await, Either::Left(_))
    }

    /// On a blocking-pool thread: this Arbiter's other downloads go on meanwhile.
    async fn offload(&self, job: Job) -> Result<String, TaskError> {
        actix_rt::task::spawn_blocking(job).await.unwrap_or_else(|_| Err(finish::panicked()))
    }

    /// Awaited here: this Arbiter's other downloads go on while the page renders.
    async fn rendered(&self, render: RenderFuture) -> Result<Rendered, TaskError> {
        let cancel = self.opts.cancel.clone();
        match select(render, pin!(cancel.cancelled())).await {
            Either::Left((rendered, _)) => rendered.map_err(|e| TaskError::Render(e.to_string())),
            Either::Right(_) => Err(TaskError::Interrupted),
        }
    }
}

fn classify_send(err: SendRequestError, url: &Url, opts: &FetchOptions) -> TaskError {
    match err {
        // A refused certificate is the same on every try: not a connection error to retry.
        SendRequestError::Connect(awc::error::ConnectError::Io(e)) => match crate::net::tls::refusal(&e) {
            Some(reason) => TaskError::tls(url, reason),
            None if crate::limits::is_too_many_open_files(&e) => TaskError::too_many_open_files(),
            None => TaskError::Connect(e.to_string()),
        },
        SendRequestError::Timeout => TaskError::Timeout(opts.timeout),
        SendRequestError::Connect(awc::error::ConnectError::Timeout) => TaskError::Timeout(opts.timeout),
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
fn classify_payload(err: PayloadError, opts: &FetchOptions) -> TaskError {
    match err {
        PayloadError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => TaskError::Timeout(opts.timeout),
        e => TaskError::Transfer(e.to_string()),
    }
}
