//! The plan in the format a command asks for (`--format`), and the options of its terminal
//! view: the one place `plan`, `apply`, `add` and `remove` get their plan text from.

use crate::cli::{GlobalArgs, OutputFormat};
use crate::config::Loaded;
use crate::plan::Plan;

/// The plan in `format`: the terminal view (church names from lines.toml, colors as the
/// run allows), versioned JSON, Markdown (saying where the plan was made) or dot.
pub fn view(plan: &Plan, loaded: &Loaded, format: OutputFormat, global: &GlobalArgs) -> String {
    match format {
        OutputFormat::Human => super::human(plan, &human_options(loaded, global)),
        OutputFormat::Json => super::json(plan),
        OutputFormat::Markdown => {
            super::markdown_from(plan, super::source_of(plan, global.sandbox))
        }
        OutputFormat::Dot => super::dot(plan),
    }
}

/// The terminal view's options for a run: colors as [`color_enabled`] says, each church's
/// name for its key, unchanged resources hidden, and whether the world is the sandbox.
pub fn human_options(loaded: &Loaded, global: &GlobalArgs) -> super::HumanOptions {
    super::HumanOptions {
        color: color_enabled(global),
        church_names: loaded
            .desired
            .churches
            .iter()
            .map(|c| (c.key.clone(), c.name.clone()))
            .collect(),
        show_unchanged: false,
        sandbox: global.sandbox,
    }
}

/// Colors are on unless --no-color or NO_COLOR is set, or stdout is not a terminal.
pub fn color_enabled(global: &GlobalArgs) -> bool {
    use std::io::IsTerminal;
    !global.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
}
