//! `cwa version` and `cwa completions SHELL`.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::ExitStatus;

/// The version, and the versions of the formats this cwa reads and writes, so a CI log says
/// which plan files and states it can take.
pub fn version() -> ExitStatus {
    crate::outln!("{}", crate::render::version());
    ExitStatus::Success
}

/// Writes the completion script of `shell` to stdout, generated from the same clap types the
/// parser uses, so it never falls behind a flag.
pub fn completions(args: &CompletionsArgs) -> ExitStatus {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "cwa", &mut script);
    crate::output::stdout(&String::from_utf8_lossy(&script));
    ExitStatus::Success
}
