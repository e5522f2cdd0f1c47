//! `cwa show PLANFILE [--json|--markdown]`: a saved plan rendered for the approver, from the
//! file alone (no lines.toml, state or credentials needed), so what is read is exactly what
//! `cwa apply PLANFILE` is given.

use miette::{miette, IntoDiagnostic, WrapErr};

use crate::cli::{GlobalArgs, ShowArgs};
use crate::plan::Plan;
use crate::render;
use crate::ExitStatus;

/// Reads the plan file and prints it in the format asked for.
pub fn show(global: &GlobalArgs, args: &ShowArgs) -> miette::Result<ExitStatus> {
    let path = &args.plan_file;
    let text = std::fs::read_to_string(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read the plan file {}", path.display()))?;
    let plan = Plan::from_json(&text).map_err(|e| {
        miette!(
            help = "a plan file is what `cwa plan --out FILE` writes",
            "{} is not a cwa plan file: {e}",
            path.display()
        )
    })?;
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
