//! Carries out a plan: the change graph as a pipeline (each change starts when its own
//! dependencies are done) with bounded parallelism per provider; every mutating call journaled before it is made and after it returns; every
//! write read back and compared; state saved as steps complete; hard locks enforced again.
//!
//! One job a file: `pipeline` walks the graph and decides what runs when and what is
//! skipped; [`executor`] carries out each change's action and the rollback; `writes` makes each provider call and verifies it; `journal` records intents,
//! results, the audit log and state saves; [`reconcile`] settles what a killed run left.

mod error;
mod executor;
mod hooks;
mod journal;
mod pipeline;
mod reconcile;
mod secrets;
mod writes;

pub use error::ApplyError;
pub use executor::Executor;
pub use hooks::{Applied, Hook, Silent};
pub use reconcile::{rebind_fingerprints, reconcile};
pub use secrets::with_secret_names;

use crate::model::Address;
use crate::plan::Action;

/// How to run.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Changes of one provider in flight at once (each provider has its own queue, so a slow
    /// one never holds up another's; the clients bound requests per provider as well).
    pub parallelism: usize,
    /// On failure, delete what this run created for the failed chains (never numbers).
    pub rollback_on_failure: bool,
}

/// What happened to one change.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub address: Address,
    pub action: Action,
    pub id: Option<String>,
    /// Why it failed, in words (never a Debug dump).
    pub error: Option<String>,
    /// What to do about the failure.
    pub fix: Option<String>,
    /// Whether running apply again, with nothing changed, can succeed.
    pub rerun_helps: bool,
}

/// A change not attempted because a change it depends on failed (or was itself skipped):
/// independent chains go on, this one waits for the next run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub address: Address,
    pub action: Action,
    /// The change it waited for.
    pub waits_for: Address,
    pub reason: String,
}

/// What a run did and did not do.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub done: Vec<Outcome>,
    pub failed: Vec<Outcome>,
    /// Not attempted because of a failure they depend on.
    pub skipped: Vec<Skipped>,
    /// Not started because the run was interrupted.
    pub not_started: Vec<Address>,
    pub rolled_back: Vec<Address>,
    pub interrupted: bool,
    /// State saves that failed (the journal still holds what was done).
    pub state_not_saved: Vec<StateNotSaved>,
}

/// State could not be saved. It is no change of the plan, so it is an outcome of its own,
/// never reported under an address.
#[derive(Debug, Clone)]
pub struct StateNotSaved {
    /// When: `before the first write`, `during the run` or `at the end of the run`.
    pub when: String,
    pub error: String,
    /// What to do about it.
    pub fix: String,
}

impl StateNotSaved {
    fn new(when: &str, e: crate::state::StateError) -> Self {
        let e = ApplyError::from(e);
        Self {
            when: when.to_string(),
            error: e.to_string(),
            fix: e.fix(),
        }
    }
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
            && self.state_not_saved.is_empty()
            && self.skipped.is_empty()
            && self.not_started.is_empty()
            && !self.interrupted
    }

    /// Whether a plain rerun can finish the job: some failure was transient, or the run was
    /// interrupted. False when every failure needs a fix first.
    pub fn rerun_helps(&self) -> bool {
        self.interrupted
            || !self.not_started.is_empty()
            || self.failed.iter().any(|f| f.rerun_helps)
    }
}

/// Whether an apply of `plan` has anything to do: a change, a reviewed unprotect, or a
/// protected object or kept number whose id state does not record yet (recorded even when
/// nothing else changes, so its protection survives the deletion of its declaration).
pub fn has_work(
    plan: &crate::plan::Plan,
    state: &crate::state::State,
    unprotect: &[String],
) -> bool {
    plan.has_changes()
        || !unprotect.is_empty()
        || plan.changes.iter().any(|c| {
            executor::needs_recording(c) && state.get(&c.address).map(|r| &r.id) != c.id.as_ref()
        })
}
