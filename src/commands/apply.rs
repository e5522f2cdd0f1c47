//! `cwa apply [PLANFILE]`.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use miette::{miette, IntoDiagnostic};

use super::plan as plan_cmd;
use crate::apply::{self, ApplyOptions, ApplyReport, Executor};
use crate::cli::{ApplyArgs, GlobalArgs, OutputFormat};
use crate::plan::Plan;
use crate::render;
use crate::session::{self, Planned, Session};
use crate::state::{Journal, StateLock};
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
    recover_interrupted_run(session).await?;
    let mut planning = args.planning.clone();
    planning.refresh = true;
    let mut planned = session.plan_checked(&planning).await?;
    // A plan file is evidence, never authority: what runs is always the plan computed now.
    let plan = planned.plan.clone();
    if let Some(path) = &args.plan_file {
        for warning in crate::plan::saved::check_file(path, &plan)? {
            eprintln!("warning: {warning}");
        }
    }
    let unprotect = crate::protection::unprotect_requests(&plan, &args.unprotect).map_err(|e| {
        miette!(
            help = "the plan lists what may be unprotected in its Unprotect section",
            "{e}"
        )
    })?;
    crate::out!(
        "{}",
        plan_cmd::render_plan(&plan, &planned.loaded, OutputFormat::Human, &session.global)
    );
    if plan.is_error() {
        return Err(session::plan_errors(&plan, &planned.loaded).into());
    }
    apply::rebind_fingerprints(&store, &mut planned.state, &planned.plan)?;
    if !plan.has_changes()
        && unprotect.is_empty()
        && !plan
            .changes
            .iter()
            .any(|c| needs_state_only(c, &planned.state))
    {
        if args.json {
            crate::output::data(&render::apply_json(&ApplyReport::default(), &planned.state));
        }
        return Ok(ExitStatus::Success);
    }
    if args.plan_file.is_none() && !args.auto_approve && !confirmed()? {
        return Err(miette!("apply cancelled; nothing was changed"));
    }
    let report = execute(session, &planned, &plan, args, &unprotect).await?;
    print_report(&report, &planned.loaded);
    if args.json {
        crate::output::data(&render::apply_json(&report, &session.load_state()?));
    }
    let certified = certify(session, &planned, &plan, args, &report).await;
    Ok(if report.succeeded() && certified {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Protected objects and kept numbers are recorded in state even when nothing else changes.
fn needs_state_only(change: &crate::plan::Change, state: &crate::state::State) -> bool {
    use crate::plan::Action;
    matches!(change.action, Action::Verify | Action::Retain)
        && change.id.is_some()
        && state.get(&change.address).map(|r| &r.id) != change.id.as_ref()
}

/// Before planning, settle what a killed run left in the journal.
async fn recover_interrupted_run(session: &Session) -> miette::Result<()> {
    let store = session.store();
    let journal = Journal::new(&store);
    if journal.entries()?.is_empty() {
        return Ok(());
    }
    crate::outln!("An earlier apply did not finish; reconciling its journal against live first.");
    let loaded = session.load_config()?;
    let mut state = session.load_state()?;
    let providers = session.connect(&loaded.desired, &state)?;
    for note in apply::reconcile(&journal, &store, &mut state, &providers).await? {
        crate::outln!("  {note}");
    }
    Ok(())
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
    let providers = match &planned.providers {
        Some(p) => p.clone(),
        None => session.connect(&planned.loaded.desired, &planned.state)?,
    };
    let opts = session.client_options(&planned.loaded.desired, &planned.state);
    let executor = Executor::new(
        providers,
        session.store(),
        planned.state.clone(),
        session.secrets.clone(),
        opts.protected_ids,
        ApplyOptions {
            parallelism: args.parallelism,
            rollback_on_failure: args.rollback_on_failure,
        },
    )
    .with_hook(std::sync::Arc::new(render::progress::Progress::for_stderr()));
    for id in unprotect {
        executor.unprotect(id).await?;
        println!("Unprotected {id}: it is no longer hard-locked from the next plan on.");
    }
    watch_interrupts(executor.stop_flag());
    crate::outln!();
    let plan = with_secret_names(plan.clone(), &planned.loaded.desired, &session.secrets);
    Ok(executor.execute(&plan).await)
}

/// A plan carries secrets as fingerprints (it is printed and saved), but a new or changed
/// secret must be written as its value. Each such fingerprint that is the current value of the
/// variable lines.toml names goes back to that name, which the executor resolves just before
/// the write; a secret the live object already has stays a fingerprint and is not resent.
fn with_secret_names(
    mut plan: Plan,
    desired: &crate::model::Desired,
    secrets: &crate::model::SecretSource,
) -> Plan {
    use crate::model::{fingerprint, SecretRef};
    for change in &mut plan.changes {
        let (Some(after), Some(declared)) = (change.after.as_mut(), desired.get(&change.address))
        else {
            continue;
        };
        let mut declared = declared.spec.clone();
        let mut before = change.before.clone();
        let live: Vec<Option<String>> = before
            .iter_mut()
            .flat_map(|b| b.secrets_mut())
            .map(|s| s.known_fingerprint())
            .collect();
        for (secret, named) in after.secrets_mut().into_iter().zip(declared.secrets_mut()) {
            let (SecretRef::Fingerprint(f), SecretRef::Env(var)) = (&*secret, &*named) else {
                continue;
            };
            if !live.contains(&Some(f.clone()))
                && secrets
                    .get(var)
                    .is_some_and(|value| fingerprint(&value) == *f)
            {
                *secret = named.clone();
            }
        }
    }
    plan
}

/// First Ctrl-C: stop scheduling and let in-flight calls finish. Second: abort now (the
/// journal still lets the next run converge).
fn watch_interrupts(stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            crate::errln!("\nInterrupted: finishing calls in flight, then stopping. Ctrl-C again to abort at once.");
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
}

fn print_report(report: &ApplyReport, loaded: &crate::config::Loaded) {
    crate::outln!(
        "\nApply {}: {} done, {} failed, {} skipped, {} not started{}.",
        if report.succeeded() {
            "complete"
        } else {
            "stopped"
        },
        report
            .done
            .iter()
            .filter(|o| o.action.changes_anything())
            .count(),
        report.failed.len(),
        report.skipped.len(),
        report.not_started.len(),
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    for f in &report.failed {
        let at = loaded
            .location(&f.address)
            .map(|l| format!(" (declared at {l})"))
            .unwrap_or_default();
        crate::outln!("  FAILED {} {}{at}", f.action.as_str(), f.address);
        crate::outln!("    why: {}", f.error.as_deref().unwrap_or("unknown"));
        if let Some(fix) = &f.fix {
            crate::outln!("    fix: {fix}");
        }
    }
    for s in &report.skipped {
        crate::outln!(
            "  skipped: {} {}: {}",
            s.action.as_str(),
            s.address,
            s.reason
        );
    }
    for a in &report.not_started {
        crate::outln!("  not started: {a} (interrupted)");
    }
    for s in &report.state_not_saved {
        crate::outln!("  STATE NOT SAVED {}", s.when);
        crate::outln!("    why: {}", s.error);
        crate::outln!("    fix: {}", s.fix);
    }
    for a in &report.rolled_back {
        crate::outln!("  rolled back: {a}");
    }
    if report.succeeded() {
        return;
    }
    if report.rerun_helps() {
        crate::outln!("State holds everything that was done. Run `cwa apply` again to converge.");
    } else {
        crate::outln!(
            "State holds everything that was done. A rerun alone will fail the same way: apply each fix above first."
        );
    }
}

/// The certification checks of the lines the apply touched, on the world as it is now and
/// with the numbers state now pins (an `auto` line's bought number included). False when any
/// check failed, a touched line is not applied, or the checks could not run: an apply is not
/// done until its lines are certified. A number the provider is still activating is listed,
/// not failed.
async fn certify(
    session: &Session,
    planned: &Planned,
    plan: &Plan,
    args: &ApplyArgs,
    report: &ApplyReport,
) -> bool {
    if report.done.is_empty() {
        return true;
    }
    let Some(providers) = &planned.providers else {
        return true;
    };
    let desired = &planned.loaded.desired;
    let (state, live) = match (session.load_state(), session::refresh(providers).await) {
        (Ok(state), Ok(live)) => (state, live),
        (Err(e), _) | (_, Err(e)) => {
            crate::outln!("\nCertification FAILED: the lines could not be checked: {e}");
            return false;
        }
    };
    let scope = crate::checks::Scope::of_plan(plan, desired, !args.planning.targets.is_empty());
    let certified = crate::checks::certify(
        desired,
        &state,
        &live,
        &crate::checks::Request::after_apply(scope),
    );
    let failed: Vec<_> = certified.failures().collect();
    crate::outln!(
        "\nCertification: {} checks, {} failed, {} pending.",
        certified.checks.len(),
        failed.len(),
        certified.pending.len()
    );
    for r in &failed {
        crate::outln!(
            "  FAIL [{}] {} at {}: {}",
            r.check,
            r.subject,
            r.hop,
            r.message
        );
    }
    let (activating, not_applied): (Vec<_>, Vec<_>) =
        certified.pending.iter().partition(|p| p.activating);
    for p in &not_applied {
        crate::outln!(
            "  FAIL [pending] {} ({}): still not applied",
            p.line,
            p.number
        );
    }
    for p in &activating {
        crate::outln!("  activating: {} ({}): {}", p.line, p.number, p.reason);
    }
    let passed = failed.is_empty() && not_applied.is_empty();
    if !passed {
        crate::outln!("The apply is not done until its lines are certified: `cwa plan` shows what another `cwa apply` would fix.");
    }
    passed
}
