//! `cwa graph`.

use crate::cli::{GlobalArgs, GraphArgs, GraphFormat};
use crate::config;
use crate::ExitStatus;

/// Prints the desired resource graph (what each resource waits for) as text, dot or Mermaid.
/// A file with a dependency cycle fails validation, which names the cycle's members.
pub fn graph(global: &GlobalArgs, args: &GraphArgs) -> miette::Result<ExitStatus> {
    let loaded = config::load(&global.config)?;
    let graph = config::graph::build(&loaded.desired).map_err(|e| miette::miette!("{e}"))?;
    let out = match args.format {
        GraphFormat::Text => graph.render_text(&loaded.desired),
        GraphFormat::Dot => graph.render_dot(&loaded.desired),
        GraphFormat::Mermaid => graph.render_mermaid(&loaded.desired),
    };
    crate::out!("{out}");
    Ok(ExitStatus::Success)
}
