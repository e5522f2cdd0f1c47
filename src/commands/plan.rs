//! `cwa plan`.

use crate::cli::{GlobalArgs, OutputFormat, PlanArgs};
use crate::config::Loaded;
use crate::plan::Plan;
use crate::render;
use crate::session::{self, Session};
use crate::ExitStatus;

/// Runs `cwa plan`.
pub async fn plan(global: &GlobalArgs, args: &PlanArgs) -> miette::Result<ExitStatus> {
    let session = Session::open(global).await?;
    let result = run(&session, args).await;
    session.close().await?;
    result
}

async fn run(session: &Session, args: &PlanArgs) -> miette::Result<ExitStatus> {
    let planned = session.plan_checked(&args.planning).await?;
    let plan = &planned.plan;
    crate::out!(
        "{}",
        render_plan(plan, &planned.loaded, args.format.format(), &session.global)
    );
    if plan.is_error() {
        return Err(session::plan_errors(plan, &planned.loaded).into());
    }
    if let Some(out) = &args.out {
        session::write_file(out, &render::json(plan))?;
        crate::errln!(
            "Saved the plan to {}. Review it with: {}\nApply exactly it with: {}",
            out.display(),
            same_world_command(&session.global, &format!("show {}", out.display())),
            same_world_command(&session.global, &format!("apply {}", out.display()))
        );
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// The plan in the format asked for.
pub fn render_plan(
    plan: &Plan,
    loaded: &Loaded,
    format: OutputFormat,
    global: &GlobalArgs,
) -> String {
    match format {
        OutputFormat::Human => render::human(plan, &human_options(loaded, global)),
        OutputFormat::Json => render::json(plan),
        OutputFormat::Markdown => {
            render::markdown_from(plan, render::source_of(plan, global.sandbox))
        }
        OutputFormat::Dot => render::dot(plan),
    }
}

pub fn human_options(loaded: &Loaded, global: &GlobalArgs) -> render::HumanOptions {
    render::HumanOptions {
        color: super::color_enabled(global),
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

/// `cwa` + the global options that choose the world (`--sandbox`, `-C`, `--config`,
/// `--state`) + `rest`: a hint the user can paste and land on the same world and files.
pub fn same_world_command(global: &GlobalArgs, rest: &str) -> String {
    let mut words = vec!["cwa".to_string()];
    if let Some(dir) = &global.chdir {
        words.push(format!("-C {}", dir.display()));
    }
    if global.sandbox {
        words.push("--sandbox".into());
    }
    if global.config != std::path::Path::new("lines.toml") {
        words.push(format!("--config {}", global.config.display()));
    }
    if global.state_dir != std::path::Path::new("state") {
        words.push(format!(
            "--state {}",
            crate::state::location::redact(&global.state_dir.to_string_lossy())
        ));
    }
    words.push(rest.to_string());
    words.join(" ")
}
