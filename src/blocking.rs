//! Sync mode's worker: a blocking actor, one per `SyncArbiter` thread, doing one HTTP
//! request at a time with ureq.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use actix::prelude::*;
use slog::{Logger, debug, trace};
use ureq::http::Response;
use url::Url;

use crate::download::{Body, Capped, ImageSink};
use crate::html::Extractor;
use crate::robots::{MAX_ROBOTS_BYTES, ROBOTS_REDIRECTS, Rules};
use crate::work::{
    Done, FetchOptions, ImageTask, RunTask, Task, TaskError, TaskFinished, check_status, host_of,
    plain_length, plan_retry, redirect_target,
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
            // Redirects go back to the Coordinator (Done::Moved), which checks the target.
            .max_redirects(0)
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
                return (Err(err.settle(self.opts.retries.max_wait)), attempts);
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

    /// One request; a redirect comes back as where it points, not followed.
    fn get(&self, url: &Url, task: &Task) -> Result<Answer, TaskError> {
        let mut request = self.agent.get(url.as_str());
        for (name, value) in self.opts.headers_for(task) {
            request = request.header(name, value);
        }
        let response = request.call().map_err(|e| self.classify(e))?;
        let status = response.status().as_u16();
        if let Some(to) = redirect_target(url, status, header(&response, "location"))? {
            return Ok(Answer::Moved(to));
        }
        check_status(status, header(&response, "retry-after"))?;
        Ok(Answer::Body(response))
    }

    /// robots.txt follows its own redirects (RFC 9309 2.3.1.2: at least five, across
    /// hosts too, its rules still those of the first origin); more means unavailable.
    fn fetch_robots(&self, url: &Url, task: &Task) -> Result<Done, TaskError> {
        let mut url = url.clone();
        for _ in 0..=ROBOTS_REDIRECTS {
            let mut response = match self.get(&url, task) {
                Err(TaskError::Status { code: 400..=499, .. }) => return Ok(Done::Robots(Rules::AllowAll)),
                Err(e) => return Err(e),
                Ok(Answer::Moved(to)) => {
                    url = to;
                    continue;
                }
                Ok(Answer::Body(response)) => response,
            };
            let mut body = Capped::new(MAX_ROBOTS_BYTES);
            self.read_into(&mut response, &mut body)?;
            return Ok(Done::Robots(Rules::parse(&body.bytes)));
        }
        Ok(Done::Robots(Rules::AllowAll))
    }

    fn fetch_page(&self, url: &Url, task: &Task) -> Result<Done, TaskError> {
        let mut response = match self.get(url, task)? {
            Answer::Moved(to) => return Ok(Done::Moved(to)),
            Answer::Body(response) => response,
        };
        let mut body = Capped::new(self.opts.max_page_bytes);
        self.read_into(&mut response, &mut body)?;
        let html = String::from_utf8_lossy(&body.bytes);
        Ok(Done::Page(self.extractor.scan(&html, url)))
    }

    fn fetch_image(&self, image: &ImageTask, task: &Task) -> Result<Done, TaskError> {
        let mut response = match self.get(&image.url, task)? {
            Answer::Moved(to) => return Ok(Done::Moved(to)),
            Answer::Body(response) => response,
        };
        let content_type = header(&response, "content-type").map(str::to_string);
        let encoding = content_encoding(&response);
        let length = plain_length(encoding.as_deref(), header(&response, "content-length"));
        let mut sink = ImageSink::start(&self.opts, image, content_type.as_deref(), length)?;
        self.read_into(&mut response, &mut sink)?;
        sink.finish()
    }

    /// Streams the body through its Content-Encoding into `sink`, one buffer at a time.
    fn read_into(&self, response: &mut Response<ureq::Body>, sink: &mut impl Write) -> Result<(), TaskError> {
        let encoding = content_encoding(response);
        let mut body = Body::new(encoding.as_deref(), sink)?;
        let mut reader = response.body_mut().as_reader();
        let mut buf = self.buf.borrow_mut();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => body.write(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify_io(e)),
            }
        }
        body.finish()
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

/// Every Content-Encoding line, joined: a server may send one coding per line.
fn content_encoding(response: &Response<ureq::Body>) -> Option<String> {
    let values: Vec<&str> =
        response.headers().get_all("content-encoding").iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// What one request got: a body to read, or a redirect.
enum Answer {
    Body(Response<ureq::Body>),
    Moved(Url),
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
