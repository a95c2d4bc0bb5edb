//! How a worker ends a task, whatever its client: the Coordinator counts a task only when
//! its `TaskFinished` comes, so every way out of the fetch core, a panic included, must
//! end here.

use std::any::Any;

use actix::Recipient;

use crate::work::{Done, TaskError, TaskFinished, TaskId};

/// A panic, as the failure the Coordinator counts: unreported, it would leave the task
/// unacknowledged forever (and, in sync mode, kill the pool's thread).
pub(crate) fn panicked() -> TaskError {
    TaskError::Worker("panicked".into())
}

/// Reports the task's end to the Coordinator: `caught` is the fetch core's outcome as
/// `catch_unwind` returns it, a panic turned into [`panicked`].
pub(crate) fn report(
    to: &Recipient<TaskFinished>,
    id: TaskId,
    caught: Result<Result<Done, TaskError>, Box<dyn Any + Send>>,
    attempts: u32,
) {
    let outcome = caught.unwrap_or_else(|_| Err(panicked()));
    to.do_send(TaskFinished { id, outcome, attempts });
}
