//! `cwa plan`.

use crate::cli::{GlobalArgs, PlanArgs};
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
        render::plan::view(plan, &planned.loaded, args.format.format(), &session.global)
    );
    if plan.is_error() {
        return Err(session::plan_errors(plan, &planned.loaded).into());
    }
    if let Some(out) = &args.out {
        session::write_file(out, &render::json(plan))?;
        crate::errln!("{}", render::plan::saved(out, &session.global));
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
