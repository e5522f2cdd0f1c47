//! How a run ends: the one place exit codes are chosen.

use std::process::ExitCode;

/// The outcome of a command, mapped to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done, and (with --detailed-exitcode) nothing to change.
    Success,
    /// 1: an error, or a check that failed.
    Failure,
    /// 2: with --detailed-exitcode (and for drift): changes or drift present.
    Changes,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => ExitCode::from(0),
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Changes => ExitCode::from(2),
        }
    }
}
