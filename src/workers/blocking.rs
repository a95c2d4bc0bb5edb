//! Sync mode's worker: a blocking actor, one per `SyncArbiter` thread, doing one HTTP
//! request at a time with ureq. The policy is the fetch core's ([`crate::fetch`]); this
//! file is only what ureq needs.
//!
//! Through an HTTP proxy, an `https://` target is tunnelled (ureq's own CONNECT) and an
//! `http://` one is forwarded: sent to the proxy in the absolute form, as curl and async
//! mode do, by an agent of our own ([`crate::net::ureq_forward`]), since ureq has none.
//! Through a SOCKS5 proxy, both go through ureq's own SOCKS connector (its
//! `socks-proxy` feature): the handshake, RFC 1929 credentials, and the target's name
//! sent (`socks5h`) or resolved here first (`socks5`).

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use slog::{Logger, trace};
use ureq::http::Response;
use url::Url;

use crate::fetch::options::FetchOptions;
use crate::fetch::{Client, Core, Header, Job, run_blocking};
use crate::net::proxy::{Kind, Proxy, connect_authority};
use crate::net::ureq_forward;
use crate::render::{RenderFuture, Rendered};
use crate::store::Backlog;
use crate::work::{RunTask, TaskError, TaskFinished};
use crate::workers::finish;
use crate::workers::response::{header_name, unless_proxy_refused};

pub struct Blocking {
    core: Core<Ureq>,
    report: Recipient<TaskFinished>,
    log: Logger,
}

impl Blocking {
    /// The ureq agents for a pool of `threads` workers, built once and cloned into each.
    /// `tls` is the run's trust (`Trust::ureq_config`); ureq offers no ALPN, so this
    /// mode speaks HTTP/1.1, with keep-alive.
    pub fn agents(opts: &FetchOptions, threads: usize, tls: ureq::tls::TlsConfig) -> Result<Agents, String> {
        let config = |proxy: Option<ureq::Proxy>| -> ureq::config::Config {
            ureq::Agent::config_builder()
                .tls_config(tls.clone())
                .http_status_as_error(false)
                .timeout_connect(Some(opts.timeout))
                .timeout_recv_response(Some(opts.timeout))
                .timeout_per_read(Some(opts.timeout))
                .user_agent(opts.user_agent.as_str())
                // Redirects go back to the Coordinator (Done::Moved), which checks the target.
                .max_redirects(0)
                .max_idle_connections(threads.max(10))
                .max_idle_connections_per_host(threads.max(3))
                // Always set: ureq's default reads the proxy variables by rules of its own
                // (ALL_PROXY first, HTTP_PROXY for https, its own NO_PROXY), and ours are
                // curl's, the same in both modes (crate::net::proxy).
                .proxy(proxy)
                .build()
        };
        let mut proxied = Vec::new();
        for proxy in opts.proxies.distinct() {
            let routes = match proxy.kind {
                Kind::Http => {
                    let tunnel = ureq_forward::ureq_proxy(proxy)?;
                    Routes {
                        proxy: proxy.clone(),
                        tunnel: config(Some(tunnel)).into(),
                        // No ureq::Proxy: it would tunnel. ureq_forward sends to the proxy itself.
                        forward: ureq_forward::agent(config(None), proxy)?,
                    }
                }
                Kind::Socks5 | Kind::Socks5h => {
                    // One agent for both schemes: under TLS or not, the same SOCKS connection.
                    let agent: ureq::Agent = config(Some(ureq_forward::ureq_proxy(proxy)?)).into();
                    Routes { proxy: proxy.clone(), tunnel: agent.clone(), forward: agent }
                }
            };
            proxied.push(routes);
        }
        Ok(Agents { direct: config(None).into(), proxied })
    }

    pub fn new(
        agents: Agents,
        opts: Arc<FetchOptions>,
        report: Recipient<TaskFinished>,
        log: Logger,
    ) -> Self {
        let client = Ureq { agents, opts: Arc::clone(&opts), buf: RefCell::new(vec![0; 64 * 1024]) };
        Self { core: Core::new(client, opts, log.clone()), report, log }
    }
}

/// A sync pool's ureq agents, one connection pool each, shared by the pool's threads.
/// ureq's proxy is per agent and its NO_PROXY rules are not curl's (no ranges, no
/// ports), so the choice is ours, per request ([`crate::net::proxy::Proxies::for_url`]).
#[derive(Clone)]
pub struct Agents {
    /// No proxy: the targets that go direct.
    direct: ureq::Agent,
    /// Two agents per proxy, so a pooled connection never crosses from one route to
    /// another.
    proxied: Vec<Routes>,
}

/// The ways through one proxy.
#[derive(Clone)]
struct Routes {
    proxy: Proxy,
    /// `https://` targets: ureq's CONNECT tunnel (SOCKS: its SOCKS connector).
    tunnel: ureq::Agent,
    /// `http://` targets: forwarded in the absolute form ([`crate::net::ureq_forward`]); for
    /// a SOCKS proxy the same agent as `tunnel`.
    forward: ureq::Agent,
}

impl Agents {
    /// The agent for `url`, which goes through `proxy` (`Proxies::for_url`), if any.
    fn route(&self, url: &Url, proxy: Option<&Proxy>) -> &ureq::Agent {
        let Some(routes) = proxy.and_then(|proxy| self.proxied.iter().find(|r| r.proxy == *proxy)) else {
            return &self.direct;
        };
        match url.scheme() {
            "http" => &routes.forward,
            _ => &routes.tunnel,
        }
    }
}

/// ureq, as the fetch core uses it: every future it returns is finished on its first
/// poll, since ureq blocks this thread instead of waiting.
struct Ureq {
    agents: Agents,
    opts: Arc<FetchOptions>,
    /// The body read buffer, reused: allocating and zeroing 64 KiB for every image was a
    /// fifth of sync mode's instructions.
    buf: RefCell<Vec<u8>>,
}

impl Client for Ureq {
    type Response = Response<ureq::Body>;

    /// Through a proxy, an https target is tunnelled and an http one forwarded
    /// ([`Agents::route`]).
    async fn send(
        &self,
        url: &Url,
        headers: Vec<(&str, &str)>,
        head: bool,
    ) -> Result<Self::Response, TaskError> {
        let proxy = self.opts.proxies.for_url(url);
        let agent = self.agents.route(url, proxy);
        let mut request = if head { agent.head(url.as_str()) } else { agent.get(url.as_str()) };
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.call().map_err(|e| match (crate::net::tls::ureq_refusal(&e), proxy) {
            // A refused certificate is the same on every try: not a connection error to retry.
            (Some(reason), _) => TaskError::tls(url, reason),
            (None, Some(proxy)) => self.classify_proxied(e, proxy, url),
            (None, None) => self.classify(e),
        })?;
        let status = response.status().as_u16();
        unless_proxy_refused(response, status, proxy, url)
    }

    fn status(&self, response: &Self::Response) -> u16 {
        response.status().as_u16()
    }

    fn header_lines<'r>(&self, response: &'r Self::Response, name: Header) -> impl Iterator<Item = &'r str> {
        let name = header_name!(name, ureq::http::header);
        response.headers().get_all(name).iter().filter_map(|v| v.to_str().ok())
    }

    /// A backlog is waited for on this thread, which may block: it is the worker's own.
    async fn read(
        &self,
        mut response: Self::Response,
        body: &mut dyn FnMut(&[u8]) -> Result<(), TaskError>,
        backlog: Option<&dyn Backlog>,
    ) -> Result<(), TaskError> {
        let mut reader = response.body_mut().as_reader();
        let mut buf = self.buf.borrow_mut();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => body(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify_io(e)),
            }
            if let Some(backlog) = backlog {
                crate::fetch::wait_blocking(backlog.room(), &self.opts.cancel)
                    .ok_or(TaskError::Interrupted)??;
            }
        }
    }

    async fn pause(&self, wait: Duration) -> bool {
        self.opts.cancel.sleep_blocking(wait)
    }

    /// This thread may block: it is the worker's own.
    async fn offload(&self, job: Job) -> Result<String, TaskError> {
        job()
    }

    /// This thread may block: it is the worker's own.
    async fn rendered(&self, render: RenderFuture) -> Result<Rendered, TaskError> {
        match crate::fetch::wait_blocking(render, &self.opts.cancel) {
            Some(rendered) => rendered.map_err(|e| TaskError::Render(e.to_string())),
            None => Err(TaskError::Interrupted),
        }
    }
}

impl Ureq {
    /// As [`Ureq::classify`], naming the proxy when it is the proxy that failed.
    fn classify_proxied(&self, err: ureq::Error, proxy: &Proxy, url: &Url) -> TaskError {
        match err {
            ureq::Error::ConnectProxyFailed(why) => {
                TaskError::Connect(proxy.failure(format!("CONNECT {} failed: {why}", connect_authority(url))))
            }
            // Before a response, an I/O error through SOCKS is the handshake's (refused
            // credentials, a target the proxy cannot reach): the proxy's failure.
            ureq::Error::Io(e)
                if proxy.kind != Kind::Http
                    && !matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) =>
            {
                TaskError::Connect(proxy.failure(format!("SOCKS5 to {} failed: {e}", connect_authority(url))))
            }
            err => match self.classify(err) {
                TaskError::Connect(why) => TaskError::Connect(proxy.failure(why)),
                other => other,
            },
        }
    }

    fn classify(&self, err: ureq::Error) -> TaskError {
        match err {
            ureq::Error::Timeout(_) => TaskError::Timeout(self.opts.timeout),
            ureq::Error::Io(e) => self.classify_io(e),
            ureq::Error::StatusCode(code) => TaskError::status(code),
            ureq::Error::BodyExceedsLimit(limit) => TaskError::TooLarge(limit),
            ureq::Error::TooManyRedirects => TaskError::Redirects,
            e @ (ureq::Error::HostNotFound | ureq::Error::ConnectionFailed) => {
                TaskError::Connect(e.to_string())
            }
            e => TaskError::Transfer(e.to_string()),
        }
    }

    fn classify_io(&self, err: io::Error) -> TaskError {
        if crate::limits::is_too_many_open_files(&err) {
            return TaskError::too_many_open_files();
        }
        // ureq reports its own errors while reading a body as io::Error wrapping them.
        if err.get_ref().is_some_and(|inner| inner.is::<ureq::Error>()) {
            if let Some(Ok(e)) = err.into_inner().map(|inner| inner.downcast::<ureq::Error>()) {
                return self.classify(*e);
            }
            return TaskError::Transfer("unreadable body".into());
        }
        match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TaskError::Timeout(self.opts.timeout),
            io::ErrorKind::ConnectionRefused => TaskError::Connect(err.to_string()),
            io::ErrorKind::InvalidData => TaskError::Decode(err.to_string()),
            _ => TaskError::Transfer(err.to_string()),
        }
    }
}

impl Actor for Blocking {
    type Context = SyncContext<Self>;
}

impl Handler<RunTask> for Blocking {
    type Result = ();

    fn handle(&mut self, msg: RunTask, _: &mut SyncContext<Self>) {
        trace!(self.log, "task"; "id" => msg.id, "task" => ?msg.task);
        let attempts = Cell::new(0);
        let caught = catch_unwind(AssertUnwindSafe(|| run_blocking(self.core.run(&msg.task, &attempts))));
        finish::report(&self.report, msg.id, caught, attempts.get());
    }
}
