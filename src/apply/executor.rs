//! The walk of the change graph: waves in dependency order, what a failure blocks, rollback.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::{Mutex, Semaphore};

use crate::model::{Address, Kind, SecretSource, Spec};
use crate::plan::{graph_waves, Action, Change, Plan};
use crate::protection::Write;
use crate::providers::{Provider, Providers};
use crate::state::{AuditEntry, Journal, State, StateError, StateStore};

use super::hooks::{Applied, Hook, Silent};
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

    /// Runs the plan's changes wave by wave. A failure stops only what depends on it: each
    /// change whose dependency failed (or was skipped) is skipped with the reason, and
    /// independent chains go on. An interrupt stops scheduling; in-flight calls finish; state
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
        let waves = graph_waves(plan.changes.len(), &plan.edges);
        let mut walk = Walk {
            chains: Chains::new(plan.changes.len(), &plan.edges),
            failed: BTreeMap::new(),
            finished: 0,
            total: plan.actionable().count(),
        };
        for (n, wave) in waves.iter().enumerate() {
            let runnable = self.schedule(plan, wave, &mut walk, &mut report);
            if runnable.is_empty() {
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                report.interrupted = true;
                report
                    .not_started
                    .extend(runnable.iter().map(|(_, c)| c.address.clone()));
                continue;
            }
            self.hook.wave_started(n + 1, waves.len(), runnable.len());
            let results = self.run_wave(&runnable).await;
            self.record_wave(results, &mut walk, &mut report).await;
            self.hook.wave_finished();
            match self.save(true).await {
                Ok(()) => self.hook.state_saved(),
                Err(e) => self.state_not_saved(&mut report, &format!("after wave {}", n + 1), e),
            }
        }
        report.interrupted |= self.stop.load(Ordering::SeqCst);
        if !report.failed.is_empty() && self.options.rollback_on_failure {
            let chain = walk.chains.failed_chain(plan, &walk.failed, &report);
            report.rolled_back = self.rollback(&chain).await;
        }
        if report.succeeded() {
            let _ = self.journal.clear();
        }
        report
    }

    /// The changes of a wave that run: those that write (or record a protected id) and whose
    /// dependencies did not fail; the others are skipped with the reason.
    fn schedule<'p>(
        &self,
        plan: &'p Plan,
        wave: &[usize],
        walk: &mut Walk,
        report: &mut ApplyReport,
    ) -> Vec<(usize, &'p Change)> {
        let mut runnable = Vec::new();
        for &i in wave {
            let change = &plan.changes[i];
            if !(change.action.changes_anything() || needs_recording(change)) {
                continue;
            }
            match walk.chains.blocker(i, &walk.failed) {
                Some(b) => {
                    let root = walk.failed[&b].clone();
                    let s = skipped(change, &plan.changes[b], &root);
                    self.hook.skipped(&s);
                    report.skipped.push(s);
                    walk.failed.insert(i, root);
                }
                None => runnable.push((i, change)),
            }
        }
        runnable
    }

    /// Runs a wave's changes, at most `parallelism` at once; `None` for a change the stop
    /// flag kept from starting.
    async fn run_wave<'p>(&self, runnable: &[(usize, &'p Change)]) -> Vec<WaveResult<'p>> {
        let limit = Semaphore::new(self.options.parallelism.max(1));
        let runs = runnable.iter().map(|&(i, change)| {
            let limit = &limit;
            async move {
                let _permit = limit.acquire().await;
                if self.stop.load(Ordering::SeqCst) {
                    return (i, change, None);
                }
                self.hook.pre_apply(change);
                let result = self.run_change(change).await;
                self.hook.post_apply(change);
                (i, change, Some(result))
            }
        });
        join_all(runs).await
    }

    /// Records a wave's results in the report, in plan order, and tells the hook.
    async fn record_wave(
        &self,
        results: Vec<WaveResult<'_>>,
        walk: &mut Walk,
        report: &mut ApplyReport,
    ) {
        for (i, change, result) in results {
            match result {
                None => report.not_started.push(change.address.clone()),
                Some(Ok(id)) => {
                    if change.action.changes_anything() {
                        walk.finished += 1;
                        self.hook.applied(&Applied {
                            change,
                            id: id.as_deref(),
                            number: self.number_of(&change.address).await,
                            finished: walk.finished,
                            total: walk.total,
                        });
                    }
                    report.done.push(outcome(change, id, None));
                }
                Some(Err(e)) => {
                    self.hook.failed(change, &e);
                    walk.failed.insert(i, change.address.clone());
                    report
                        .failed
                        .push(outcome(change, change.id.clone(), Some(&e)));
                }
            }
        }
    }

    /// A failed state save, as its own outcome (it is no change of the plan).
    fn state_not_saved(&self, report: &mut ApplyReport, when: &str, e: StateError) {
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
    async fn number_of(&self, addr: &Address) -> Option<String> {
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

/// What a walk of the graph keeps between waves.
struct Walk {
    chains: Chains,
    /// Changes that failed or were skipped, each with the failure at the root.
    failed: BTreeMap<usize, Address>,
    finished: usize,
    total: usize,
}

/// A change of a wave and what running it gave (`None`: not started).
type WaveResult<'p> = (
    usize,
    &'p Change,
    Option<Result<Option<String>, ApplyError>>,
);

/// The change graph as chains of dependencies: which change a failure blocks, and which
/// creates belong to a failed chain (the only ones `--rollback-on-failure` undoes).
struct Chains {
    /// For each change, the changes it waits for.
    preds: Vec<Vec<usize>>,
}

impl Chains {
    fn new(count: usize, edges: &[(usize, usize)]) -> Self {
        let mut preds = vec![Vec::new(); count];
        for &(from, to) in edges {
            if from < count && to < count {
                preds[to].push(from);
            }
        }
        Self { preds }
    }

    /// A dependency of `i` that failed or was skipped, if any.
    fn blocker(&self, i: usize, failed: &BTreeMap<usize, Address>) -> Option<usize> {
        self.preds[i]
            .iter()
            .copied()
            .find(|p| failed.contains_key(p))
    }

    /// Every change the given ones wait for, transitively, and themselves.
    fn ancestors(&self, start: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<usize> = start.into_iter().collect();
        while let Some(i) = todo.pop() {
            if seen.insert(i) {
                todo.extend(self.preds[i].iter().copied());
            }
        }
        seen
    }

    /// The addresses of the failed chains: what the failed changes waited for, minus what a
    /// change that succeeded (outside those chains) also waits for.
    fn failed_chain(
        &self,
        plan: &Plan,
        failed: &BTreeMap<usize, Address>,
        report: &ApplyReport,
    ) -> BTreeSet<Address> {
        let chain = self.ancestors(failed.keys().copied());
        let done: BTreeSet<&Address> = report.done.iter().map(|o| &o.address).collect();
        let outside = plan
            .changes
            .iter()
            .enumerate()
            .filter(|(i, c)| !chain.contains(i) && done.contains(&c.address))
            .map(|(i, _)| i);
        let needed = self.ancestors(outside);
        chain
            .difference(&needed)
            .map(|&i| plan.changes[i].address.clone())
            .collect()
    }
}
