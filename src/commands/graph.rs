//! `cwa graph`.

use crate::cli::{GlobalArgs, GraphArgs};
use crate::ExitStatus;

/// Prints the desired resource graph.
pub fn graph(global: &GlobalArgs, args: &GraphArgs) -> miette::Result<ExitStatus> {
    Err(miette::miette!("graph of {} as {:?} is being built", global.config.display(), args.format))
}
