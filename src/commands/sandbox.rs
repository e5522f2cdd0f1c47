//! `cwa sandbox serve|reset`.

use crate::cli::{GlobalArgs, SandboxCommand};
use crate::ExitStatus;

/// Serves or resets the sandbox.
pub async fn sandbox(global: &GlobalArgs, command: SandboxCommand) -> miette::Result<ExitStatus> {
    Err(miette::miette!("sandbox {command:?} is being built ({})", global.config.display()))
}
