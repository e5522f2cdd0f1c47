//! `cwa show PLANFILE [--json|--markdown]`: a saved plan rendered for the approver, from the
//! file alone (no lines.toml, state or credentials needed), so what is read is exactly what
//! `cwa apply PLANFILE` is given.

use crate::cli::{GlobalArgs, ShowArgs};
use crate::render;
use crate::ExitStatus;

/// Reads the plan file and prints it in the format asked for.
pub fn show(global: &GlobalArgs, args: &ShowArgs) -> miette::Result<ExitStatus> {
    let plan = crate::plan::saved::read(&args.plan_file)?;
    let out = if args.format.json {
        render::json(&plan)
    } else if args.format.markdown {
        render::markdown(&plan)
    } else {
        render::human(
            &plan,
            &render::HumanOptions {
                color: super::color_enabled(global),
                ..Default::default()
            },
        )
    };
    crate::output::data(&out);
    Ok(ExitStatus::Success)
}
