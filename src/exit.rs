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
