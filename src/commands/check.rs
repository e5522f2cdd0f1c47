//! `cwa check [--ring NUMBER] [--json]`: the runbooks' certification checks on the live world,
//! and optionally a test call that reports each hop ([`crate::ring`]). Exit 1 when anything
//! fails. Orchestration only: the checks live in [`crate::checks`], the views in
//! [`crate::render::check`].

use crate::checks;
use crate::cli::{CheckArgs, GlobalArgs};
use crate::render::check::{check_human, check_json};
use crate::session::{self, Session};
use crate::ExitStatus;

/// Runs `cwa check`.
pub async fn check(global: &GlobalArgs, args: &CheckArgs) -> miette::Result<ExitStatus> {
    let session = Session::open(global).await?;
    let result = run(&session, args).await;
    session.close().await?;
    result
}

async fn run(session: &Session, args: &CheckArgs) -> miette::Result<ExitStatus> {
    let ring_to = args.ring.as_deref().map(crate::ring::target).transpose()?;
    let loaded = session.load_config()?;
    let state = session.load_state()?;
    let providers = session.connect(&loaded.desired, &state)?;
    let live = session::refresh(&providers).await?;
    let results = checks::certify(&loaded.desired, &state, &live, &checks::Request::check());
    let ring = match ring_to {
        Some(to) => Some(crate::ring::ring(&session.env, &loaded.desired, &live, &to).await?),
        None => None,
    };
    if args.json {
        crate::out!("{}", check_json(&results, ring.as_ref()));
    } else {
        crate::out!(
            "{}",
            check_human(&results, ring.as_ref(), args.failures_only)
        );
    }
    let failed = !results.passed() || ring.as_ref().is_some_and(|r| !r.passed);
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
