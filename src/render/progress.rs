//! The progress view of `cwa apply`: a bar per wave on a terminal, one plain line per change
//! otherwise (CI logs, pipes). It implements the executor's [`Hook`]; the executor itself
//! never prints.

use std::sync::Mutex;

use crate::apply::{Applied, ApplyError, Hook, StateNotSaved};
use crate::plan::{Action, Change};

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
            "FAILED {} {}: {error}",
            change.action.as_str(),
            change.address
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
