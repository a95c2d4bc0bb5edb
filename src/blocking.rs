//! Sync mode's worker: a blocking actor, one per `SyncArbiter` thread, doing one HTTP
//! request at a time with ureq.

use std::cell::RefCell;
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use actix::prelude::*;
use slog::{Logger, debug, trace};
use ureq::http::Response;
use url::Url;

use crate::coordinator::TaskFinished;
use crate::download::ImageSink;
use crate::html::Extractor;
use crate::robots::{MAX_ROBOTS_BYTES, Rules};
use crate::work::{
    Done, FetchOptions, ImageTask, RunTask, Task, TaskError, check_status, host_of, plain_length, plan_retry,
};

pub struct Blocking {
    /// Shared by the pool's threads: one connection pool for all of them.
    agent: ureq::Agent,
    opts: Arc<FetchOptions>,
    /// Each thread parses the selectors once, not per page.
    extractor: Extractor,
    /// The body read buffer, reused: allocating and zeroing 64 KiB for every image was a
    /// fifth of sync mode's instructions.
    buf: RefCell<Vec<u8>>,
    report: Recipient<TaskFinished>,
    log: Logger,
}

impl Blocking {
    /// A ureq agent for a pool of `threads` workers, built once and cloned into each.
    pub fn agent(opts: &FetchOptions, threads: usize) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(opts.timeout))
            .timeout_recv_response(Some(opts.timeout))
            .timeout_per_read(Some(opts.timeout))
            .user_agent(opts.user_agent.as_str())
            .max_redirects(10)
            .max_idle_connections(threads.max(10))
            .max_idle_connections_per_host(threads.max(3))
            .build()
            .into()
    }

    pub fn new(
        agent: ureq::Agent,
        opts: Arc<FetchOptions>,
        report: Recipient<TaskFinished>,
        log: Logger,
    ) -> Self {
        // The rules were validated when settings were resolved.
        let extractor = Extractor::new(&opts.extract).expect("extraction rules validated in settings");
        Self { agent, opts, extractor, buf: RefCell::new(vec![0; 64 * 1024]), report, log }
    }

    /// Performs `task` when the host's gate allows, retrying what may succeed on another
    /// try; returns the outcome and the number of attempts.
    fn perform_with_retries(&self, task: &Task) -> (Result<Done, TaskError>, u32) {
        let host = host_of(task.url());
        let mut delays = self.opts.retries.delays();
        let mut attempts = 0;
        loop {
            if !self.wait_for_gate(host) {
                return (Err(TaskError::Interrupted), attempts.max(1));
            }
            attempts += 1;
            let err = match self.perform(task) {
                Err(e) => e,
                done => return (done, attempts),
            };
            let Some(wait) = plan_retry(&self.opts, host, &err, &mut delays) else {
                return (Err(err), attempts);
            };
            debug!(self.log, "retrying";
                "url" => %task.url(), "error" => %err, "wait_ms" => wait.as_millis(), "attempt" => attempts);
            if !self.opts.cancel.sleep_blocking(wait) {
                return (Err(TaskError::Interrupted), attempts);
            }
        }
    }

    /// Sleeps until the host's rate and pause allow a request; false if cancelled.
    fn wait_for_gate(&self, host: &str) -> bool {
        loop {
            let wait = self.opts.gate.wait_for(host);
            if wait.is_zero() {
                return true;
            }
            if !self.opts.cancel.sleep_blocking(wait) {
                return false;
            }
        }
    }

    fn perform(&self, task: &Task) -> Result<Done, TaskError> {
        match task {
            Task::Robots { url } => self.fetch_robots(url, task),
            Task::Page { url, .. } => self.fetch_page(url, task),
            Task::Image(image) => self.fetch_image(image, task),
        }
    }

    fn get(&self, url: &Url, task: &Task) -> Result<Response<ureq::Body>, TaskError> {
        let mut request = self.agent.get(url.as_str());
        for (name, value) in self.opts.headers_for(task) {
            request = request.header(name, value);
        }
        let response = request.call().map_err(|e| self.classify(e))?;
        let retry_after = header(&response, "retry-after");
        check_status(response.status().as_u16(), retry_after)?;
        Ok(response)
    }

    fn fetch_robots(&self, url: &Url, task: &Task) -> Result<Done, TaskError> {
        let mut response = match self.get(url, task) {
            Err(TaskError::Status { code: 400..=499, .. }) => return Ok(Done::Robots(Rules::AllowAll)),
            other => other?,
        };
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ROBOTS_BYTES)
            .read_to_vec()
            .map_err(|e| self.classify(e))?;
        Ok(Done::Robots(Rules::parse(&body)))
    }

    fn fetch_page(&self, url: &Url, task: &Task) -> Result<Done, TaskError> {
        let mut response = self.get(url, task)?;
        let html = response
            .body_mut()
            .with_config()
            .limit(self.opts.max_page_bytes)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| self.classify(e))?;
        Ok(Done::Page(self.extractor.scan(&html, url)))
    }

    fn fetch_image(&self, image: &ImageTask, task: &Task) -> Result<Done, TaskError> {
        let mut response = self.get(&image.url, task)?;
        let content_type = header(&response, "content-type").map(str::to_string);
        let length = plain_length(header(&response, "content-encoding"), header(&response, "content-length"));
        let mut sink = ImageSink::start(&self.opts, image, content_type.as_deref(), length)?;
        let mut body = response.body_mut().as_reader();
        let mut buf = self.buf.borrow_mut();
        loop {
            match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => sink.write(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify_io(e)),
            }
        }
        sink.finish()
    }

    fn classify(&self, err: ureq::Error) -> TaskError {
        match err {
            ureq::Error::Timeout(_) => TaskError::Timeout(self.opts.timeout),
            ureq::Error::Io(e) => self.classify_io(e),
            ureq::Error::StatusCode(code) => TaskError::status(code),
            ureq::Error::BodyExceedsLimit(limit) => TaskError::TooLarge(limit),
            ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => TaskError::Redirects,
            ureq::Error::Decompress(_, e) => TaskError::Decode(e.to_string()),
            e @ (ureq::Error::HostNotFound | ureq::Error::ConnectionFailed) => {
                TaskError::Connect(e.to_string())
            }
            e => TaskError::Transfer(e.to_string()),
        }
    }

    fn classify_io(&self, err: io::Error) -> TaskError {
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

fn header<'r>(response: &'r Response<ureq::Body>, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Actor for Blocking {
    type Context = SyncContext<Self>;
}

impl Handler<RunTask> for Blocking {
    type Result = ();

    fn handle(&mut self, msg: RunTask, _: &mut SyncContext<Self>) {
        trace!(self.log, "task"; "id" => msg.id, "task" => ?msg.task);
        // A panic would kill this thread and leave the task unacknowledged forever;
        // turn it into a failure the Coordinator can count.
        let (outcome, attempts) = catch_unwind(AssertUnwindSafe(|| self.perform_with_retries(&msg.task)))
            .unwrap_or_else(|_| (Err(TaskError::Worker("panicked".into())), 1));
        self.report.do_send(TaskFinished { id: msg.id, outcome, attempts });
    }
}
