//! What the executor tells the world while it runs, as OpenTofu's `Hook` does: the executor
//! never prints; a view (`render::progress`) implements this trait to draw bars or lines, and
//! a library caller that wants silence passes [`Silent`].
//!
//! Every method has an empty default, so a hook implements only what it shows. Events arrive
//! as the pipeline produces them: in-flight events (`pre_apply`, `post_apply`) from
//! concurrent changes in any order, and each change's outcome (`applied`, `failed`,
//! `skipped`) as soon as it is known, so independent chains interleave. The run's report puts
//! the outcomes back in plan order.

use super::{ApplyError, Skipped, StateNotSaved};
use crate::plan::Change;

/// A change carried out, with what a progress line names it by.
pub struct Applied<'a> {
    pub change: &'a Change,
    /// The live id the change left.
    pub id: Option<&'a str>,
    /// For a number, the number it is (for an `auto` line, the number just bought).
    pub number: Option<String>,
    /// How many writing changes are done so far, and how many the plan has.
    pub finished: usize,
    pub total: usize,
}

/// Receives the executor's events.
pub trait Hook: Send + Sync {
    /// Refused before anything was written (a secret whose value is a provider credential).
    fn refused(&self, _change: &Change, _error: &ApplyError) {}
    /// The run starts with `changes` changes to run (the length of a progress bar). By
    /// default it is shown as the one wave of a run, to views written for waves.
    fn run_started(&self, changes: usize) {
        self.wave_started(1, 1, changes);
    }
    /// Every change is over (done, failed, skipped or not started).
    fn run_finished(&self) {
        self.wave_finished();
    }
    /// Wave `n` of `of` starts with `changes` changes to run. The pipeline has one wave: the
    /// whole run ([`Hook::run_started`]).
    fn wave_started(&self, _n: usize, _of: usize, _changes: usize) {}
    /// A change is about to be carried out.
    fn pre_apply(&self, _change: &Change) {}
    /// A change returned (done or failed); its outcome follows.
    fn post_apply(&self, _change: &Change) {}
    /// A writing change succeeded.
    fn applied(&self, _applied: &Applied<'_>) {}
    /// A change failed.
    fn failed(&self, _change: &Change, _error: &ApplyError) {}
    /// A change was not attempted because something it depends on failed.
    fn skipped(&self, _skipped: &Skipped) {}
    /// The wave ended and its results are recorded.
    fn wave_finished(&self) {}
    /// State was saved (while the run goes on, and at its end).
    fn state_saved(&self) {}
    /// State could not be saved.
    fn state_not_saved(&self, _failure: &StateNotSaved) {}
}

/// A hook that shows nothing: library callers, tests, `--json` runs that print only data.
pub struct Silent;

impl Hook for Silent {}
