//! The executor: what a run works with, each change's action, the hard lock, rollback. The
//! walk of the change graph (what runs when, what a failure blocks) is `pipeline`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::model::{Address, Kind, SecretSource, Spec};
use crate::plan::{Action, Change, Plan};
use crate::protection::Write;
use crate::providers::{Provider, Providers};
use crate::state::{AuditEntry, Journal, State, StateError, StateStore};

use super::hooks::{Hook, Silent};
use super::journal::now;
use super::{ApplyError, ApplyOptions, ApplyReport, Outcome, Skipped, StateNotSaved};

/// Everything the executor works with.
pub struct Executor {
    pub(super) providers: Providers,
    pub(super) store: StateStore,
    pub(super) journal: Journal,
    pub(super) secrets: SecretSource,
    pub(super) protected: Vec<String>,
    pub(super) run: String,
    pub(super) operator: String,
    pub(super) shared: Mutex<Shared>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) options: ApplyOptions,
    pub(super) hook: Arc<dyn Hook>,
}

pub(super) struct Shared {
    pub(super) state: State,
    /// State as this run last read or wrote it: a save finding anything else on disk stops.
    pub(super) on_disk: State,
    pub(super) ids: BTreeMap<Address, String>,
    pub(super) created: Vec<(Address, Kind, String)>,
    pub(super) steps_since_save: usize,
}

impl Executor {
    pub fn new(
        providers: Providers,
        store: StateStore,
        state: State,
        secrets: SecretSource,
        protected: Vec<String>,
        options: ApplyOptions,
    ) -> Self {
        let ids = state.owned().map(|(a, r)| (a, r.id.clone())).collect();
        Self {
            providers,
            journal: Journal::new(&store),
            store,
            secrets,
            protected,
            run: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            operator: crate::state::operator(),
            shared: Mutex::new(Shared {
                on_disk: state.clone(),
                state,
                ids,
                created: Vec::new(),
                steps_since_save: 0,
            }),
            stop: Arc::new(AtomicBool::new(false)),
            options,
            hook: Arc::new(Silent),
        }
    }

    /// Sends the run's events to `hook` (a progress view); without one the run is silent.
    pub fn with_hook(mut self, hook: Arc<dyn Hook>) -> Self {
        self.hook = hook;
        self
    }

    /// A flag that, once set, stops scheduling new changes (the first Ctrl-C sets it).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The state as it is now.
    pub async fn state(&self) -> State {
        self.shared.lock().await.state.clone()
    }

    /// Runs the plan's changes, each as soon as the changes it depends on are done (a
    /// church's trunk starts when its own number is bound, not when every number is). A
    /// failure stops only what depends on it: each change whose dependency failed (or was
    /// skipped) is skipped with the reason, and independent chains go on. An interrupt stops scheduling; in-flight calls finish; state
    /// is saved; the report says what was done, failed, skipped and not started. Progress
    /// goes to the hook ([`Executor::with_hook`]); nothing is printed.
    pub async fn execute(&self, plan: &Plan) -> ApplyReport {
        let mut report = ApplyReport::default();
        if let Some(refused) = self.preflight_secrets(plan) {
            report.failed.push(refused);
            report.not_started = plan.actionable().map(|c| c.address.clone()).collect();
            return report;
        }
        if let Err(e) = self.save_lineage_first().await {
            self.state_not_saved(&mut report, "before the first write", e);
            report.not_started = plan.actionable().map(|c| c.address.clone()).collect();
            return report;
        }
        self.record_displaced(plan).await;
        let walk = self.pipeline(plan, &mut report).await;
        self.save_at_end(&mut report).await;
        report.interrupted |= self.stop.load(Ordering::SeqCst);
        if !report.failed.is_empty() && self.options.rollback_on_failure {
            let chain = walk.failed_chain(plan, &report);
            report.rolled_back = self.rollback(&chain).await;
        }
        if report.succeeded() {
            let _ = self.journal.clear();
        }
        report
    }

    /// A failed state save, as its own outcome (it is no change of the plan).
    pub(super) fn state_not_saved(&self, report: &mut ApplyReport, when: &str, e: StateError) {
        let failure = StateNotSaved::new(when, e);
        self.hook.state_not_saved(&failure);
        report.state_not_saved.push(failure);
    }

    /// Objects whose address now stands for something else keep being owned, under their
    /// new address, before the old address is given to the replacement.
    pub(super) async fn record_displaced(&self, plan: &Plan) {
        let mut shared = self.shared.lock().await;
        for c in &plan.changes {
            let (Some(from), Some(id)) = (&c.displaced_from, &c.id) else {
                continue;
            };
            let Some(owned) = shared.state.get(from).filter(|r| &r.id == id).cloned() else {
                continue;
            };
            shared.state.upsert(&c.address, owned);
            shared.ids.insert(c.address.clone(), id.clone());
            shared.steps_since_save += 1;
        }
    }

    /// The number a number address stands for now (for an `auto` line, the number just
    /// bought), for the progress view.
    pub(super) async fn number_of(&self, addr: &Address) -> Option<String> {
        match self.shared.lock().await.state.get(addr).map(|r| &r.spec) {
            Some(Spec::TelnyxNumber(n)) => n.number.fixed().map(ToString::to_string),
            Some(Spec::TwilioNumber(n)) => Some(n.number.to_string()),
            _ => None,
        }
    }

    pub(super) async fn run_change(&self, change: &Change) -> Result<Option<String>, ApplyError> {
        self.refuse_protected(change)?;
        match change.action {
            Action::NoOp => Ok(change.id.clone()),
            Action::Verify | Action::Retain => self.record_verified(change).await,
            Action::Forget => self.forget(change).await,
            Action::Adopt => self.adopt(change).await,
            Action::Create => self.create(change, &change.address).await.map(Some),
            Action::Update => self.update(change).await.map(Some),
            Action::Replace => self.replace(change).await.map(Some),
            Action::Delete => self.delete(change).await.map(|_| change.id.clone()),
        }
    }

    /// The executor's own hard lock: whatever the plan says, no write to a protected id or
    /// to anything on a protected trunk's path. Request bodies are checked again in
    /// [`Executor::check_lock`], once their references are live ids.
    pub(super) fn refuse_protected(&self, change: &Change) -> Result<(), ApplyError> {
        let writes = match change.action {
            Action::Update | Action::Replace | Action::Delete => true,
            Action::Adopt => !change.fields.is_empty(),
            _ => false,
        };
        let id = change.id.clone().unwrap_or_default();
        let locked =
            self.protected.iter().any(|p| p.trim() == id) || self.providers.lock.is_locked(&id);
        if writes && (change.protected || locked) {
            return Err(ApplyError::Protected {
                address: change.address.to_string(),
                id,
            });
        }
        Ok(())
    }

    /// The one protection check ([`crate::protection`]) on a write about to be sent.
    pub(super) fn check_lock(&self, addr: &Address, write: &Write<'_>) -> Result<(), ApplyError> {
        self.providers
            .lock
            .check(write)
            .map_err(|v| ApplyError::Protected {
                address: format!("{addr} ({})", v.detail),
                id: v.protected,
            })
    }

    /// Carries out a reviewed `unprotect` entry: the id leaves every protection memory
    /// (state's map, resource flags, the audit memory), audited. False when nothing held it.
    pub async fn unprotect(&self, id: &str) -> Result<bool, StateError> {
        let mut shared = self.shared.lock().await;
        let id = id.trim();
        let address = shared
            .state
            .resources
            .iter()
            .find(|(_, r)| r.id == id)
            .map_or_else(|| "[protected]".to_string(), |(a, _)| a.clone());
        if !shared.state.unprotect(id) {
            return Ok(false);
        }
        shared.steps_since_save += 1;
        drop(shared);
        self.journal.audit(&AuditEntry {
            time: now(),
            operator: self.operator.clone(),
            address,
            id: Some(id.to_string()),
            action: "unprotect".into(),
            outcome: "ok".into(),
        })?;
        self.save(true).await?;
        Ok(true)
    }

    pub(super) fn provider(&self, addr: &Address) -> Result<&Arc<dyn Provider>, ApplyError> {
        self.providers
            .for_kind(addr.kind)
            .ok_or_else(|| ApplyError::NoProvider {
                address: addr.to_string(),
                provider: addr.kind.provider().to_string(),
            })
    }

    /// Deletes configuration objects this run created for the failed chains, newest first;
    /// what independent chains created (and what they still use) stays. Numbers are never
    /// released by a rollback.
    pub(super) async fn rollback(&self, chain: &BTreeSet<Address>) -> Vec<Address> {
        let created = self.shared.lock().await.created.clone();
        let mut undone = Vec::new();
        for (addr, kind, id) in created.into_iter().rev() {
            if matches!(kind, Kind::TelnyxNumber | Kind::TwilioNumber) || !chain.contains(&addr) {
                continue;
            }
            let Ok(provider) = self.provider(&addr) else {
                continue;
            };
            if provider.delete(kind, &id).await.is_ok() {
                self.audit(&addr, Some(&id), "rollback delete", "ok");
                let mut shared = self.shared.lock().await;
                shared.state.remove(&addr);
                shared.ids.remove(&addr);
                shared.steps_since_save += 1;
                undone.push(addr);
            }
        }
        let _ = self.save(true).await;
        undone
    }
}

/// Protected objects matched by natural key still get their id recorded in state, so their
/// protection survives the deletion of their declaration.
pub(super) fn needs_recording(change: &Change) -> bool {
    matches!(change.action, Action::Verify | Action::Retain) && change.id.is_some()
}

pub(super) fn outcome(change: &Change, id: Option<String>, error: Option<&ApplyError>) -> Outcome {
    Outcome {
        address: change.address.clone(),
        action: change.action,
        id,
        error: error.map(ToString::to_string),
        fix: error.map(ApplyError::fix),
        rerun_helps: error.is_some_and(ApplyError::rerun_helps),
    }
}

pub(super) fn skipped(change: &Change, blocker: &Change, root: &Address) -> Skipped {
    let reason = if &blocker.address == root {
        format!("it depends on {}, which failed", blocker.address)
    } else {
        format!(
            "it depends on {}, which was skipped because {root} failed",
            blocker.address
        )
    };
    Skipped {
        address: change.address.clone(),
        action: change.action,
        waits_for: blocker.address.clone(),
        reason,
    }
}
