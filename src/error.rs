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

impl ExitStatus {
    /// How a command line clap refused ends: 0 for `--help` and `--version`, 1 for every
    /// usage error. clap's own code for a usage error is 2, which cwa keeps for "changes or
    /// drift present" alone, so CI never reads a mistyped flag as a plan with changes.
    pub fn of_usage_error(kind: clap::error::ErrorKind) -> ExitStatus {
        use clap::error::ErrorKind;
        match kind {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitStatus::Success,
            _ => ExitStatus::Failure,
        }
    }
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
