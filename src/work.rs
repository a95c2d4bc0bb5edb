//! The contract between the Coordinator and any worker actor: the messages
//! ([`RegisterWorker`], [`RunTask`], and [`TaskFinished`] carrying [`Done`] or
//! [`TaskError`]; the one file of the contract that names actix) and how a run is
//! cancelled ([`Cancel`]). Workers and the Coordinator depend on this, never on each
//! other; what a worker needs to know about the run is the fetch core's
//! (`fetch::FetchOptions`).
//!
//! A new kind of worker implements `Handler<RunTask>`, reports through a
//! `Recipient<TaskFinished>`, and is registered with [`RegisterWorker`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use actix::{Message, Recipient};

// The task types are pure (no actix): the frontier and the stores use them from there.
pub use crate::task::{Done, ImageTask, PageKind, TOO_MANY_OPEN_FILES, Task, TaskError, TaskId, host_of};

/// Command: do this task, then report `TaskFinished` with the same id.
#[derive(Debug)]
pub struct RunTask {
    pub id: TaskId,
    pub task: Task,
}

impl Message for RunTask {
    type Result = ();
}

/// Command: add a worker that can hold `capacity` tasks at once. For a `SyncArbiter` pool
/// that is its thread count (its threads share one mailbox); for an async worker it is
/// how many requests it may keep in flight.
pub struct RegisterWorker {
    pub tasks: Recipient<RunTask>,
    pub capacity: usize,
}

impl Message for RegisterWorker {
    type Result = ();
}

/// Event: a worker finished the task it was handed as `id`.
#[derive(Debug)]
pub struct TaskFinished {
    pub id: TaskId,
    pub outcome: Result<Done, TaskError>,
    /// Requests made, retries included.
    pub attempts: u32,
}

impl Message for TaskFinished {
    type Result = ();
}

/// A run-wide cancellation flag both worker kinds can wait on: blocking threads through
/// a condition variable, async tasks through a `Notify`.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    flag: AtomicBool,
    /// Threads inside `sleep_blocking`'s wait, counted under `lock` (so a test can tell
    /// a sleeper is really asleep).
    lock: Mutex<usize>,
    condvar: Condvar,
    notify: tokio::sync::Notify,
}

impl Cancel {
    pub fn cancel(&self) {
        let inner = &self.0;
        inner.flag.store(true, Ordering::SeqCst);
        let _guard = inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        inner.condvar.notify_all();
        inner.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst)
    }

    /// Sleeps `duration` on this thread; returns false (early) if cancelled.
    pub fn sleep_blocking(&self, duration: Duration) -> bool {
        self.sleep_blocking_for(duration).0
    }

    /// `sleep_blocking`, also telling whether the whole `duration` passed.
    fn sleep_blocking_for(&self, duration: Duration) -> (bool, bool) {
        let inner = &self.0;
        let mut guard = inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        *guard += 1;
        let (mut guard, result) = inner
            .condvar
            .wait_timeout_while(guard, duration, |_| !inner.flag.load(Ordering::SeqCst))
            .unwrap_or_else(|e| e.into_inner());
        *guard -= 1;
        (!self.is_cancelled(), result.timed_out())
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        let notified = self.0.notify.notified();
        let mut notified = std::pin::pin!(notified);
        // Register before checking the flag, so a cancel in between is not missed.
        notified.as_mut().enable();
        if self.is_cancelled() {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wakes_a_sleeping_thread() {
        let cancel = Cancel::default();
        let sleeper = {
            let cancel = cancel.clone();
            std::thread::spawn(move || cancel.sleep_blocking_for(Duration::from_secs(3600)))
        };
        // Only once the thread is inside the wait (it counts itself under the lock) does
        // the cancel go: a cancel landing before the sleep would prove nothing.
        while *cancel.0.lock.lock().unwrap() == 0 {
            std::thread::yield_now();
        }
        cancel.cancel();
        let (running, timed_out) = sleeper.join().unwrap();
        assert!(!timed_out, "woken by the cancel, not by the end of its hour");
        assert!(!running, "and told it was cancelled");
        assert_eq!(
            cancel.sleep_blocking_for(Duration::from_secs(3600)),
            (false, false),
            "already cancelled: no wait"
        );
    }

    #[actix::test]
    async fn cancel_wakes_a_waiting_task() {
        let cancel = Cancel::default();
        let waiter = actix_rt::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        actix_rt::task::yield_now().await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(10), cancel.cancelled()).await.unwrap();
    }
}
