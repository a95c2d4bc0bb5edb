//! How a run hears it must stop. `main` passes the OS's SIGINT and SIGTERM; a test
//! passes any stream of signal numbers, so an interrupt is tested in-process (as
//! mini-redis's `server::run(listener, shutdown)`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::future::{Either, select};
use futures_util::stream::{LocalBoxStream, StreamExt};
use slog::{Logger, warn};
use tokio::signal::unix::{SignalKind, signal};

use crate::coordinator::{Coordinator, Interrupt};
use crate::exit;
use crate::store::Store;
use crate::work::Cancel;

/// The stream of signals a run listens to, made inside the actor system (tokio's signal
/// streams need its runtime); `None`: it cannot listen.
type Signals = Box<dyn FnOnce() -> Option<LocalBoxStream<'static, i32>>>;

/// How a run is told to stop, and what a second telling does.
pub struct Shutdown {
    /// Each item is a signal's number: the first stops the run gently, the second at once.
    signals: Signals,
    /// Ends the process at once with a signal's status. Handed in by `main`, the one
    /// place that ends the process, so that a test's run never does.
    exit_now: fn(i32) -> !,
}

impl Shutdown {
    pub fn new(
        signals: impl FnOnce() -> Option<LocalBoxStream<'static, i32>> + 'static,
        exit_now: fn(i32) -> !,
    ) -> Self {
        Self { signals: Box::new(signals), exit_now }
    }

    /// The OS's SIGINT and SIGTERM.
    pub fn os_signals(exit_now: fn(i32) -> !) -> Self {
        Self::new(os_signals, exit_now)
    }
}

fn os_signals() -> Option<LocalBoxStream<'static, i32>> {
    let (int, term) = (signal(SignalKind::interrupt()).ok()?, signal(SignalKind::terminate()).ok()?);
    let stream = futures_util::stream::unfold((int, term), |(mut int, mut term)| async move {
        let code = match select(Box::pin(int.recv()), Box::pin(term.recv())).await {
            Either::Left(_) => exit::SIGINT,
            Either::Right(_) => exit::SIGTERM,
        };
        Some((code, (int, term)))
    });
    Some(stream.boxed_local())
}

/// What a run's stop needs to reach: the Coordinator, the workers (through `cancel`),
/// the store's partial files, and the status the run ends with.
pub(super) struct Stopping {
    pub coordinator: Addr<Coordinator>,
    pub cancel: Cancel,
    /// Set to the first signal's number: the run's exit status.
    pub interrupted: Rc<Cell<Option<i32>>>,
    pub store: Arc<dyn Store>,
    pub log: Logger,
}

/// First signal: cancel in-flight work and let the Coordinator wind down, so the summary
/// and report still come. Second: delete downloads in progress and exit at once: going
/// back to `main` would mean joining Arbiters and a `SyncArbiter` whose threads may sit
/// in a blocking read until its timeout, and a second signal is the user refusing that
/// wait. The status is the first signal's.
pub(super) async fn listen(shutdown: Shutdown, stopping: Stopping) {
    let Some(mut signals) = (shutdown.signals)() else {
        warn!(stopping.log, "cannot listen for signals: Ctrl-C will stop the run without a summary");
        return;
    };
    let Some(code) = signals.next().await else { return };
    stopping.interrupted.set(Some(code));
    warn!(stopping.log, "signal received: stopping (again to exit at once)");
    stopping.cancel.cancel();
    stopping.coordinator.do_send(Interrupt);
    if signals.next().await.is_none() {
        return;
    }
    stopping.store.remove_partials();
    eprintln!("image-scraper: interrupted twice, exiting now");
    (shutdown.exit_now)(code)
}
