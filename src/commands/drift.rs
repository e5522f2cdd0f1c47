//! `cwa drift`: what is live but differs from lines.toml and state. Exit 2 on drift.

use crate::cli::{DriftArgs, GlobalArgs, OutputFormat, PlanningArgs};
use crate::drift;
use crate::render;
use crate::session::Session;
use crate::ExitStatus;

/// Runs `cwa drift`.
pub async fn drift(global: &GlobalArgs, args: &DriftArgs) -> miette::Result<ExitStatus> {
    let session = Session::open(global).await?;
    let result = run(&session, args).await;
    session.close().await?;
    result
}

async fn run(session: &Session, args: &DriftArgs) -> miette::Result<ExitStatus> {
    let planned = session.plan(&read_everything()).await?;
    let report = drift::report(
        &planned.plan,
        &planned.state,
        &planned.loaded.desired.policy,
    );
    let text = match args.format.format() {
        OutputFormat::Json => render::drift::json(&report),
        OutputFormat::Markdown => render::drift::markdown(&report),
        OutputFormat::Human | OutputFormat::Dot => render::drift::human(&report),
    };
    crate::out!("{text}");
    Ok(if report.has_drift() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// Drift always reads live and never plans for a subset: it reports, it does not apply, so
/// the mass-change guard has nothing to protect.
fn read_everything() -> PlanningArgs {
    PlanningArgs {
        refresh: true,
        targets: Vec::new(),
        allow_mass_change: true,
        release_numbers: false,
    }
}
