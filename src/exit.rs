//! Every exit status the tool gives, in one place (as fd's `exit_codes.rs`): scripts and
//! cron jobs branch on them, so they are part of the interface.

/// How a run ended, as the shell sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Every page and image succeeded or was skipped on purpose.
    Success,
    /// Something failed (counted in the summary and the report); the rest was done.
    Failure,
    /// A usage or settings error: one line on stderr, nothing fetched or created.
    Usage,
    /// Stopped by a signal: 128 + its number, as a shell reports a process it killed
    /// (130 for SIGINT, 143 for SIGTERM).
    Signal(i32),
}

/// SIGINT and SIGTERM's numbers on every Unix this runs on.
pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Signal(signal) => 128 + signal,
        }
    }

    /// Ends the process with this status, and any browser it started with it (an exit
    /// skips the destructors that would). Called by `main` once, and by [`at_once`]: no
    /// other code ends the process, so none can skip that kill.
    pub fn exit(self) -> ! {
        crate::render::kill_all();
        std::process::exit(self.code())
    }
}

/// A second SIGINT or SIGTERM: the one exit not made by `main`. Returning to it would
/// mean winding the actor system down first: joining Arbiters and a `SyncArbiter` whose
/// threads may sit in a blocking read until its timeout, then the summary and the
/// outputs. A second signal is the user refusing that wait, so the process ends here, at
/// once and without a summary, with the status of the first signal.
pub fn at_once(signal: i32) -> ! {
    ExitCode::Signal(signal).exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_scripts_rely_on() {
        let codes = [ExitCode::Success, ExitCode::Failure, ExitCode::Usage];
        assert_eq!(codes.map(ExitCode::code), [0, 1, 2]);
        assert_eq!(ExitCode::Signal(SIGINT).code(), 130);
        assert_eq!(ExitCode::Signal(SIGTERM).code(), 143);
    }
}
