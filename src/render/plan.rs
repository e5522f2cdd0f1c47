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

/// What `cwa plan --out FILE` says once the file is written: the commands that review and
/// apply exactly it, on the same world ([`crate::session::same_world_command`]).
pub fn saved(file: &std::path::Path, global: &GlobalArgs) -> String {
    let world = |rest: &str| crate::session::same_world_command(global, rest);
    format!(
        "Saved the plan to {}. Review it with: {}\nApply exactly it with: {}",
        file.display(),
        world(&format!("show {}", file.display())),
        world(&format!("apply {}", file.display()))
    )
}

/// A plan file's warning (a live object that moved since it was saved, which the plan does
/// not write), as `cwa apply PLANFILE` says it on stderr.
pub fn saved_plan_warning(warning: &str) -> String {
    format!("warning: {warning}")
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn global(args: &[&str]) -> GlobalArgs {
        let mut line = vec!["cwa"];
        line.extend(args);
        line.push("plan");
        crate::cli::Cli::try_parse_from(line).unwrap().global
    }

    /// The saved-plan hint names the options that choose the world, and never a password.
    #[test]
    fn the_saved_plan_hint_lands_on_the_same_world() {
        let file = std::path::Path::new("plan.json");
        assert_eq!(
            saved(file, &global(&[])),
            "Saved the plan to plan.json. Review it with: cwa show plan.json\nApply exactly it with: cwa apply plan.json"
        );
        let text = saved(
            file,
            &global(&[
                "-C",
                "ops",
                "--sandbox",
                "--config",
                "other.toml",
                "--state",
                "postgres://cwa:hunter2@db/cwa",
            ]),
        );
        assert!(
            text.contains("Apply exactly it with: cwa -C ops --sandbox --config other.toml --state postgres://cwa"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
