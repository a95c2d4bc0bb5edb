//! Sync mode's worker: a blocking actor, one per `SyncArbiter` thread, doing one HTTP
//! request at a time with ureq.

use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use actix::prelude::*;
use slog::{Logger, trace};
use url::Url;

use crate::coordinator::TaskFinished;
use crate::html::Extractor;
use crate::storage::{self, PartialFile};
use crate::work::{Done, FetchOptions, RunTask, Task, TaskError, check_status};

pub struct Blocking {
    /// Shared by the pool's threads: one connection pool for all of them.
    agent: ureq::Agent,
    opts: Arc<FetchOptions>,
    /// Each thread parses the selectors once, not per page.
    extractor: Extractor,
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
        Self {
            agent,
            opts,
            extractor,
            report,
            log,
        }
    }

    fn perform(&self, task: &Task) -> Result<Done, TaskError> {
        match task {
            Task::Page { url, .. } => self.fetch_page(url),
            Task::Image { url, name } => self.fetch_image(url, name),
        }
    }

    fn get(&self, url: &Url) -> Result<ureq::http::Response<ureq::Body>, TaskError> {
        let response = self
            .agent
            .get(url.as_str())
            .call()
            .map_err(|e| self.classify(e))?;
        check_status(response.status().as_u16())?;
        Ok(response)
    }

    fn fetch_page(&self, url: &Url) -> Result<Done, TaskError> {
        let mut response = self.get(url)?;
        let html = response
            .body_mut()
            .with_config()
            .limit(self.opts.max_page_bytes)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| self.classify(e))?;
        Ok(Done::Page(self.extractor.scan(&html, url)))
    }

    fn fetch_image(&self, url: &Url, name: &str) -> Result<Done, TaskError> {
        let mut response = self.get(url)?;
        let mut body = response.body_mut().as_reader();
        let mut file = PartialFile::create(&self.opts.out_dir).map_err(TaskError::write)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.classify_io(e)),
            };
            file.write(&buf[..n]).map_err(TaskError::write)?;
        }
        let bytes = file
            .commit(&storage::destination(&self.opts.out_dir, name))
            .map_err(TaskError::write)?;
        Ok(Done::Image { bytes })
    }

    fn classify(&self, err: ureq::Error) -> TaskError {
        match err {
            ureq::Error::Timeout(_) => TaskError::Timeout(self.opts.timeout),
            ureq::Error::Io(e) => self.classify_io(e),
            ureq::Error::StatusCode(code) => TaskError::Status(code),
            ureq::Error::BodyExceedsLimit(limit) => TaskError::TooLarge(limit),
            e @ (ureq::Error::HostNotFound | ureq::Error::ConnectionFailed) => {
                TaskError::Connect(e.to_string())
            }
            e => TaskError::Transfer(e.to_string()),
        }
    }

    fn classify_io(&self, err: io::Error) -> TaskError {
        // ureq reports its own errors while reading a body as io::Error wrapping them.
        if err.get_ref().is_some_and(|inner| inner.is::<ureq::Error>()) {
            let inner = err.into_inner().expect("checked above");
            if let Ok(e) = inner.downcast::<ureq::Error>() {
                return self.classify(*e);
            }
            return TaskError::Transfer("unreadable body".into());
        }
        match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TaskError::Timeout(self.opts.timeout),
            io::ErrorKind::ConnectionRefused => TaskError::Connect(err.to_string()),
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
        // A panic would kill this thread and leave the task unacknowledged forever;
        // turn it into a failure the Coordinator can count.
        let outcome = catch_unwind(AssertUnwindSafe(|| self.perform(&msg.task)))
            .unwrap_or_else(|_| Err(TaskError::Worker("panicked".into())));
        self.report.do_send(TaskFinished { id: msg.id, outcome });
    }
}
