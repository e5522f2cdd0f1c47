//! `cwa remove church KEY`: the block leaves lines.toml, its numbers stay declared under [kept].

use crate::cli::{GlobalArgs, OutputFormat, PlanningArgs, RemoveCommand};
use crate::render;
use crate::session::{self, Session};
use crate::ExitStatus;

/// Runs `cwa remove …`.
pub async fn remove(global: &GlobalArgs, cmd: &RemoveCommand) -> miette::Result<ExitStatus> {
    let RemoveCommand::Church(args) = cmd;
    let session = Session::open(global).await?;
    let result = run(&session, args).await;
    session.close().await?;
    result
}

async fn run(session: &Session, args: &crate::cli::RemoveChurchArgs) -> miette::Result<ExitStatus> {
    let _lock = session.lock_for_edit("remove")?;
    let loaded = session.load_config()?;
    let state = session.load_state()?;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let removed =
        crate::provision::remove(&loaded, &state, &args.key, args.release_number, &today)?;
    let path = session.global.config.display().to_string();
    let owned = state
        .owned()
        .any(|(_, r)| r.church.as_deref() == Some(args.key.as_str()));
    let planning = PlanningArgs {
        refresh: args.refresh,
        targets: if owned {
            vec![format!("church.{}", args.key)]
        } else {
            Vec::new()
        },
        allow_mass_change: false,
        release_numbers: args.release_number,
    };
    let candidate = crate::config::parse(&session.global.config, &removed.text)?;
    let planned = if owned {
        Some(session.plan_checked_of(candidate, &planning).await?)
    } else {
        None
    };
    let format = if args.json {
        OutputFormat::Json
    } else {
        OutputFormat::Human
    };
    if let Some(planned) = planned.as_ref().filter(|p| p.plan.is_error()) {
        crate::out!(
            "{}",
            render::plan::view(&planned.plan, &planned.loaded, format, &session.global)
        );
        return Err(session::plan_errors(&planned.plan, &planned.loaded).into());
    }
    session::write_file(&session.global.config, &removed.text)?;
    crate::output::stderr(&render::provision::removed(
        &args.key,
        &path,
        &removed.kept,
        &removed.to_release,
    ));
    match planned {
        Some(planned) => crate::out!(
            "{}",
            render::plan::view(&planned.plan, &planned.loaded, format, &session.global)
        ),
        None => crate::output::stderr(&render::provision::nothing_live(&args.key)),
    }
    Ok(ExitStatus::Success)
}
