//! `cwa graph`.

use crate::cli::{GlobalArgs, GraphArgs, GraphFormat};
use crate::config;
use crate::render;
use crate::ExitStatus;

/// Prints the desired resource graph (what each resource waits for) as text, dot or Mermaid.
/// A file with a dependency cycle fails validation, which names the cycle's members.
pub fn graph(global: &GlobalArgs, args: &GraphArgs) -> miette::Result<ExitStatus> {
    let loaded = config::load(&global.config)?;
    let graph = config::graph::build(&loaded.desired).map_err(|e| miette::miette!("{e}"))?;
    let out = match args.format {
        GraphFormat::Text => render::graph::text(&graph, &loaded.desired),
        GraphFormat::Dot => render::graph::dot(&graph, &loaded.desired),
        GraphFormat::Mermaid => render::graph::mermaid(&graph, &loaded.desired),
    };
    crate::out!("{out}");
    Ok(ExitStatus::Success)
}
