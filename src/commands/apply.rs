//! `cwa apply [PLANFILE]`.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use miette::{miette, IntoDiagnostic};

use crate::apply::{self, ApplyOptions, ApplyReport};
use crate::cli::{ApplyArgs, GlobalArgs, OutputFormat};
use crate::plan::Plan;
use crate::render;
use crate::session::{self, Planned, Session, ToApply};
use crate::state::StateLock;
use crate::ExitStatus;

/// Runs `cwa apply`.
pub async fn apply(global: &GlobalArgs, args: &ApplyArgs) -> miette::Result<ExitStatus> {
    let session = Session::open(global).await?;
    let result = run(&session, args).await;
    session.close().await?;
    result
}

async fn run(session: &Session, args: &ApplyArgs) -> miette::Result<ExitStatus> {
    if args.json {
        crate::output::human_to_stderr();
    }
    let store = session.store();
    // Nothing is created on disk (state/, its lock) for a lines.toml that does not validate.
    crate::config::load(&session.global.config)?;
    let _lock = StateLock::acquire(&store, "apply", Duration::from_secs(args.lock_timeout))?;
    if session.journal_unsettled()? {
        crate::out!("{}", render::progress::RECONCILING);
        crate::out!(
            "{}",
            render::progress::reconciled(&session.settle_journal().await?)
        );
    }
    let ToApply {
        mut planned,
        warnings,
        unprotect,
    } = session.plan_to_apply(args).await?;
    for warning in warnings {
        crate::errln!("{}", render::plan::saved_plan_warning(&warning));
    }
    let plan = planned.plan.clone();
    crate::out!(
        "{}",
        render::plan::view(&plan, &planned.loaded, OutputFormat::Human, &session.global)
    );
    if plan.is_error() {
        return Err(session::plan_errors(&plan, &planned.loaded).into());
    }
    apply::rebind_fingerprints(&store, &mut planned.state, &planned.plan)?;
    if !apply::has_work(&plan, &planned.state, &unprotect) {
        if args.json {
            crate::output::data(&render::apply_json(&ApplyReport::default(), &planned.state));
        }
        return Ok(ExitStatus::Success);
    }
    if args.plan_file.is_none() && !args.auto_approve && !confirmed()? {
        return Err(miette!("apply cancelled; nothing was changed"));
    }
    let report = execute(session, &planned, &plan, args, &unprotect).await?;
    crate::out!("{}", render::progress::summary(&report, &planned.loaded));
    if args.json {
        crate::output::data(&render::apply_json(&report, &session.load_state()?));
    }
    let targeted = !args.planning.targets.is_empty();
    let certified = session
        .certify_applied(&planned, &plan, targeted, &report)
        .await;
    crate::out!("{}", render::progress::certification(&certified));
    Ok(if report.succeeded() && certified.passed() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Asks for `yes` on a terminal; refuses without one.
fn confirmed() -> miette::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(miette!(
            help = "pass --auto-approve, or apply a reviewed plan file: cwa plan --out plan.json && cwa apply plan.json",
            "apply needs confirmation, and there is no terminal to ask on"
        ));
    }
    crate::out!("\nApply these changes? Only 'yes' is accepted: ");
    std::io::stdout().flush().into_diagnostic()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .into_diagnostic()?;
    Ok(answer.trim() == "yes")
}

async fn execute(
    session: &Session,
    planned: &Planned,
    plan: &Plan,
    args: &ApplyArgs,
    unprotect: &[String],
) -> miette::Result<ApplyReport> {
    let options = ApplyOptions {
        parallelism: args.parallelism,
        rollback_on_failure: args.rollback_on_failure,
    };
    let executor = session
        .executor(planned, options)?
        .with_hook(std::sync::Arc::new(render::progress::Progress::for_stderr()));
    for id in unprotect {
        executor.unprotect(id).await?;
        crate::out!("{}", render::progress::unprotected(id));
    }
    watch_interrupts(executor.stop_flag());
    crate::outln!();
    let plan = apply::with_secret_names(plan.clone(), &planned.loaded.desired, &session.secrets);
    Ok(executor.execute(&plan).await)
}

/// First Ctrl-C: stop scheduling and let in-flight calls finish. Second: abort now (the
/// journal still lets the next run converge).
fn watch_interrupts(stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            crate::errln!("{}", render::progress::INTERRUPTED);
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}
