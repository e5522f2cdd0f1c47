//! The progress view of `cwa apply`: a bar per wave on a terminal, one plain line per change
//! otherwise (CI logs, pipes). It implements the executor's [`Hook`]; the executor itself
//! never prints. The summary and the certification that end an apply are here too.

use std::fmt::Write;
use std::sync::Mutex;

use crate::apply::{Applied, ApplyError, ApplyReport, Hook, StateNotSaved};
use crate::config::Loaded;
use crate::plan::{Action, Change};
use crate::render::escape;
use crate::session::{not_applied, Certified};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bar per wave, and the lines (terminals).
    Bars,
    /// One plain line per action (CI logs, pipes).
    Lines,
}

/// The progress view.
pub struct Progress {
    mode: Mode,
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Progress {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            bar: Mutex::new(None),
        }
    }

    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn for_stderr() -> Self {
        use std::io::IsTerminal;
        Self::new(if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        })
    }

    fn with_bar(&self, f: impl FnOnce(&mut Option<indicatif::ProgressBar>)) {
        if let Ok(mut bar) = self.bar.lock() {
            f(&mut bar);
        }
    }
}

impl Hook for Progress {
    fn refused(&self, change: &Change, error: &ApplyError) {
        crate::outln!("REFUSED {}: {error}", change.address);
    }

    fn wave_started(&self, n: usize, of: usize, changes: usize) {
        if self.mode != Mode::Bars {
            return;
        }
        let bar = indicatif::ProgressBar::new(changes as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("wave {msg} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(format!("{n}/{of}"));
        self.with_bar(|b| *b = Some(bar));
    }

    fn post_apply(&self, _change: &Change) {
        self.with_bar(|b| {
            if let Some(bar) = b {
                bar.inc(1);
            }
        });
    }

    fn applied(&self, a: &Applied<'_>) {
        crate::outln!(
            "[{}/{}] {} {} {}",
            a.finished,
            a.total,
            a.change.action.symbol(),
            past(a.change.action),
            described(a)
        );
    }

    fn failed(&self, change: &Change, error: &ApplyError) {
        crate::outln!(
            "FAILED {} {}: {}",
            change.action.as_str(),
            change.address,
            escape::terminal(&error.to_string())
        );
    }

    fn wave_finished(&self) {
        self.with_bar(|b| {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
            }
        });
    }

    fn state_not_saved(&self, failure: &StateNotSaved) {
        crate::outln!("STATE NOT SAVED {}: {}", failure.when, failure.error);
    }
}

/// A done change as its progress line names it: a number by the number it is (for an `auto`
/// line, the number just bought), then the provider's id.
fn described(a: &Applied<'_>) -> String {
    let addr = &a.change.address;
    match (&a.number, a.id) {
        (Some(n), Some(id)) => format!("{addr} {n} ({id})"),
        (Some(n), None) => format!("{addr} {n}"),
        (None, Some(id)) => format!("{addr} ({id})"),
        (None, None) => addr.to_string(),
    }
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "deleted",
        Action::Adopt => "adopted",
        Action::Forget => "forgot",
        Action::Verify => "verified",
        Action::Retain => "kept",
        Action::NoOp => "unchanged",
    }
}

/// The summary at the end of an apply: counts, then each failure with where it is declared,
/// why and the fix, what was skipped, not started, not saved or rolled back, and whether a
/// plain rerun can help.
pub fn summary(report: &ApplyReport, loaded: &Loaded) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
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
        let _ = writeln!(out, "  FAILED {} {}{at}", f.action.as_str(), f.address);
        let why = f.error.as_deref().unwrap_or("unknown");
        let _ = writeln!(out, "    why: {}", escape::terminal(why));
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "    fix: {}", escape::terminal(fix));
        }
    }
    for s in &report.skipped {
        let _ = writeln!(
            out,
            "  skipped: {} {}: {}",
            s.action.as_str(),
            s.address,
            escape::terminal(&s.reason)
        );
    }
    for a in &report.not_started {
        let _ = writeln!(out, "  not started: {a} (interrupted)");
    }
    for s in &report.state_not_saved {
        let _ = writeln!(out, "  STATE NOT SAVED {}", s.when);
        let _ = writeln!(out, "    why: {}", escape::terminal(&s.error));
        let _ = writeln!(out, "    fix: {}", s.fix);
    }
    for a in &report.rolled_back {
        let _ = writeln!(out, "  rolled back: {a}");
    }
    if report.succeeded() {
        return out;
    }
    if report.rerun_helps() {
        let _ = writeln!(
            out,
            "State holds everything that was done. Run `cwa apply` again to converge."
        );
    } else {
        let _ = writeln!(
            out,
            "State holds everything that was done. A rerun alone will fail the same way: apply each fix above first."
        );
    }
    out
}

/// Said on the first Ctrl-C of an apply: in-flight calls finish, nothing new starts.
pub const INTERRUPTED: &str =
    "\nInterrupted: finishing calls in flight, then stopping. Ctrl-C again to abort at once.";

/// Said before a killed run's journal is settled against live, ahead of the plan.
pub const RECONCILING: &str =
    "An earlier apply did not finish; reconciling its journal against live first.\n";

/// What settling the journal found (`notes` as [`crate::apply::reconcile`] says them).
pub fn reconciled(notes: &[String]) -> String {
    notes.iter().map(|note| format!("  {note}\n")).collect()
}

/// `--unprotect ID`, done before the run.
pub fn unprotected(id: &str) -> String {
    format!("Unprotected {id}: it is no longer hard-locked from the next plan on.\n")
}

/// The certification after an apply, as the operator reads it.
pub fn certification(certified: &Certified) -> String {
    let mut out = String::new();
    let c = match certified {
        Certified::NotNeeded => return out,
        Certified::Unchecked(e) => {
            let _ = writeln!(
                out,
                "\nCertification FAILED: the lines could not be checked: {e}"
            );
            return out;
        }
        Certified::Ran(c) => c,
    };
    let failed: Vec<_> = c.failures().collect();
    let _ = writeln!(
        out,
        "\nCertification: {} checks, {} failed, {} pending.",
        c.checks.len(),
        failed.len(),
        c.pending.len()
    );
    for r in &failed {
        let _ = writeln!(
            out,
            "  FAIL [{}] {} at {}: {}",
            r.check, r.subject, r.hop, r.message
        );
    }
    for p in not_applied(c) {
        let _ = writeln!(
            out,
            "  FAIL [pending] {} ({}): still not applied",
            p.line, p.number
        );
    }
    for p in c.pending.iter().filter(|p| p.activating) {
        let _ = writeln!(out, "  activating: {} ({}): {}", p.line, p.number, p.reason);
    }
    if !certified.passed() {
        let _ = writeln!(out, "The apply is not done until its lines are certified: `cwa plan` shows what another `cwa apply` would fix.");
    }
    out
}
