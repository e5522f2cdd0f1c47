//! Carries out a plan: waves of the change graph in dependency order with bounded
//! parallelism; every mutating call journaled before it is made and after it returns; every
//! write read back and compared; state saved as steps complete; hard locks enforced again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::{Mutex, Semaphore};

use crate::model::{
    Address, Kind, LiveObject, NumberRef, NumberSpec, Ref, SecretRef, SecretSource, Spec,
};
use crate::plan::{graph_waves, Action, Change, FieldChange, Plan};
use crate::protection::Write;
use crate::providers::{Provider, ProviderError, Providers, WriteRequest};
use crate::state::{
    AuditEntry, Journal, JournalEntry, JournalPhase, State, StateError, StateResource, StateStore,
};

/// How to run.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub parallelism: usize,
    /// On failure, delete what this run created for the failed chains (never numbers).
    pub rollback_on_failure: bool,
    pub progress: Progress,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A bar per wave (terminals).
    Bars,
    /// One plain line per action (CI logs, pipes).
    Lines,
    Quiet,
}

/// Why a change failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ApplyError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Provider(Box<ProviderError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error("refused to write {address} ({id}): it is protected")]
    #[diagnostic(
        code(cwa::apply::protected),
        help("protected ids are hard-locked; the plan file may have been edited")
    )]
    Protected { address: String, id: String },
    #[error(
        "{address}: the environment variable {variable} (a secret lines.toml names) is not set"
    )]
    #[diagnostic(
        code(cwa::apply::secret),
        help("export {variable} and run apply again")
    )]
    MissingSecret { address: String, variable: String },
    #[error("{address}: the value of {variable} is the value of {credential}, a provider credential cwa uses; refused to send it as a SIP secret")]
    #[diagnostic(
        code(cwa::apply::credential_as_secret),
        help("give {variable} a SIP password of its own; if it was ever sent anywhere, rotate {credential}")
    )]
    CredentialAsSecret {
        address: String,
        variable: String,
        credential: String,
    },
    #[error("{address}: depends on {missing}, which has no live id yet")]
    #[diagnostic(code(cwa::apply::unresolved))]
    Unresolved { address: String, missing: String },
    #[error("{address}: no client for {provider}")]
    #[diagnostic(code(cwa::apply::no_provider))]
    NoProvider { address: String, provider: String },
    #[error("{address}: the provider accepted the write but did not perform it: {field} is {actual}, expected {expected}")]
    #[diagnostic(
        code(cwa::apply::ignored_write),
        help(
            "the provider silently ignored part of the request; cwa recorded what is really live"
        )
    )]
    IgnoredWrite {
        address: String,
        field: String,
        expected: String,
        actual: String,
    },
}

impl ApplyError {
    /// What the operator should do about this failure, in one sentence.
    pub fn fix(&self) -> String {
        match self {
            Self::Provider(e) => provider_fix(e),
            Self::State(_) => "make state/ writable (or the state backend reachable); the journal keeps what was done, so the next run converges".into(),
            Self::Protected { .. } => "protected ids are never written: declare the object exactly as it is live, or leave it out of lines.toml".into(),
            Self::MissingSecret { variable, .. } => format!("export {variable} (lines.toml names it in a `*_env` key), then run `cwa apply` again"),
            Self::CredentialAsSecret { variable, credential, .. } => format!("give {variable} a SIP password of its own; if it was ever sent anywhere, rotate {credential}"),
            Self::Unresolved { missing, .. } => format!("{missing} must exist first; fix what failed for it, then run `cwa apply` again"),
            Self::NoProvider { provider, .. } => format!("set the {provider} credentials (or run with --sandbox), then run `cwa apply` again"),
            Self::IgnoredWrite { .. } => "the provider does not honour this field through its API: set it by hand in the provider's console, or change lines.toml to what is live".into(),
        }
    }

    /// Whether running apply again, with nothing changed, can succeed.
    pub fn rerun_helps(&self) -> bool {
        match self {
            Self::Provider(e) => provider_transient(e),
            _ => false,
        }
    }
}

/// A provider failure a plain rerun can get past: no answer (the journal looks the object up
/// again), a server error, rate limiting, or an object that disappeared (the next plan sees it).
fn provider_transient(e: &ProviderError) -> bool {
    match e {
        ProviderError::Api { status, .. } => *status >= 500 || *status == 429 || *status == 404,
        ProviderError::Transport { .. } | ProviderError::Decode { .. } => true,
        _ => false,
    }
}

fn provider_fix(e: &ProviderError) -> String {
    match e {
        ProviderError::Api { status, .. } if *status == 401 || *status == 403 => format!(
            "{} refused the credentials: check its API key (or account permissions), then run `cwa apply` again",
            provider_of(e)
        ),
        ProviderError::Api { status: 404, .. } => {
            "the object is gone from live: run `cwa apply` again, and the new plan re-creates it".into()
        }
        ProviderError::Api { status: 429, .. } => {
            "the provider is rate limiting: run `cwa apply` again later (or with a lower --parallelism)".into()
        }
        ProviderError::Api { status, .. } if *status >= 500 => {
            "the provider failed on its side: run `cwa apply` again; what was done is recorded".into()
        }
        ProviderError::Api { .. } => format!(
            "{} refused the request as declared: change the declaration in lines.toml so that it accepts it (its answer is above); a rerun unchanged fails the same way",
            provider_of(e)
        ),
        ProviderError::Transport { .. } | ProviderError::Decode { .. } => {
            "no usable answer arrived: run `cwa apply` again; the journal looks the object up before writing again".into()
        }
        ProviderError::MissingEnv { variable, .. } => format!("export {variable}, then run `cwa apply` again"),
        ProviderError::Protected { .. } => "protected ids are never written: declare the object exactly as it is live".into(),
        ProviderError::IgnoredWrite { .. } => "the provider does not honour this field through its API: set it by hand, or declare what is live".into(),
        ProviderError::Config { .. } | ProviderError::Unsupported { .. } => {
            "change lines.toml (or the provider settings) as the message says, then run `cwa apply` again".into()
        }
    }
}

fn provider_of(e: &ProviderError) -> String {
    match e {
        ProviderError::Api { provider, .. }
        | ProviderError::Transport { provider, .. }
        | ProviderError::Decode { provider, .. }
        | ProviderError::MissingEnv { provider, .. }
        | ProviderError::Config { provider, .. }
        | ProviderError::IgnoredWrite { provider, .. }
        | ProviderError::Unsupported { provider, .. } => provider.to_string(),
        ProviderError::Protected { .. } => "the provider".into(),
    }
}

impl From<ProviderError> for ApplyError {
    fn from(e: ProviderError) -> Self {
        Self::Provider(Box::new(e))
    }
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
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
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

/// Everything the executor works with.
pub struct Executor {
    providers: Providers,
    store: StateStore,
    journal: Journal,
    secrets: SecretSource,
    protected: Vec<String>,
    run: String,
    operator: String,
    shared: Mutex<Shared>,
    stop: Arc<AtomicBool>,
    options: ApplyOptions,
}

struct Shared {
    state: State,
    /// State as this run last read or wrote it: a save finding anything else on disk stops.
    on_disk: State,
    ids: BTreeMap<Address, String>,
    created: Vec<(Address, Kind, String)>,
    steps_since_save: usize,
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
        }
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
    /// is saved; the report says what was done, failed, skipped and not started.
    pub async fn execute(&self, plan: &Plan) -> ApplyReport {
        let mut report = ApplyReport::default();
        if let Some(refused) = self.preflight_secrets(plan) {
            report.failed.push(refused);
            report.not_started = plan.actionable().map(|c| c.address.clone()).collect();
            return report;
        }
        if let Err(e) = self.save_lineage_first().await {
            let e = ApplyError::from(e);
            report.failed.push(Outcome {
                address: Address::new(Kind::TelnyxNumber, "state"),
                action: Action::NoOp,
                id: None,
                error: Some(e.to_string()),
                fix: Some(e.fix()),
                rerun_helps: e.rerun_helps(),
            });
            report.not_started = plan.actionable().map(|c| c.address.clone()).collect();
            return report;
        }
        self.record_displaced(plan).await;
        let waves = graph_waves(plan.changes.len(), &plan.edges);
        let chains = Chains::new(plan.changes.len(), &plan.edges);
        let mut failed: BTreeMap<usize, Address> = BTreeMap::new();
        let limit = Arc::new(Semaphore::new(self.options.parallelism.max(1)));
        let total = plan.actionable().count();
        let mut finished = 0;
        for (n, wave) in waves.iter().enumerate() {
            let mut runnable: Vec<(usize, &Change)> = Vec::new();
            for &i in wave {
                let change = &plan.changes[i];
                if !(change.action.changes_anything() || needs_recording(change)) {
                    continue;
                }
                match chains.blocker(i, &failed) {
                    Some(b) => {
                        let root = failed[&b].clone();
                        report
                            .skipped
                            .push(skipped(change, &plan.changes[b], &root));
                        failed.insert(i, root);
                    }
                    None => runnable.push((i, change)),
                }
            }
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
            let bar = self.wave_bar(n + 1, waves.len(), runnable.len());
            let runs = runnable.iter().map(|&(i, change)| {
                let limit = limit.clone();
                let bar = bar.clone();
                async move {
                    let _permit = limit.acquire().await;
                    if self.stop.load(Ordering::SeqCst) {
                        return (i, change, None);
                    }
                    let result = self.run_change(change).await;
                    if let Some(bar) = &bar {
                        bar.inc(1);
                    }
                    (i, change, Some(result))
                }
            });
            for (i, change, result) in join_all(runs).await {
                match result {
                    None => report.not_started.push(change.address.clone()),
                    Some(Ok(id)) => {
                        if change.action.changes_anything() {
                            finished += 1;
                            let what = self.describe(&change.address, id.as_deref()).await;
                            self.line(&format!(
                                "[{finished}/{total}] {} {} {what}",
                                change.action.symbol(),
                                past(change.action),
                            ));
                        }
                        report.done.push(outcome(change, id, None));
                    }
                    Some(Err(e)) => {
                        self.line(&format!(
                            "FAILED {} {}: {e}",
                            change.action.as_str(),
                            change.address
                        ));
                        failed.insert(i, change.address.clone());
                        report
                            .failed
                            .push(outcome(change, change.id.clone(), Some(&e)));
                    }
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if let Err(e) = self.save(true).await {
                let e = ApplyError::from(e);
                report.failed.push(Outcome {
                    address: Address::new(Kind::TelnyxNumber, "state"),
                    action: Action::NoOp,
                    id: None,
                    error: Some(e.to_string()),
                    fix: Some(e.fix()),
                    rerun_helps: e.rerun_helps(),
                });
            }
        }
        report.interrupted |= self.stop.load(Ordering::SeqCst);
        if !report.failed.is_empty() && self.options.rollback_on_failure {
            let chain = chains.failed_chain(plan, &failed, &report);
            report.rolled_back = self.rollback(&chain).await;
        }
        if report.succeeded() {
            let _ = self.journal.clear();
        }
        report
    }

    /// Objects whose address now stands for something else keep being owned, under their
    /// new address, before the old address is given to the replacement.
    async fn record_displaced(&self, plan: &Plan) {
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

    fn wave_bar(&self, n: usize, of: usize, len: usize) -> Option<indicatif::ProgressBar> {
        if self.options.progress != Progress::Bars {
            return None;
        }
        let bar = indicatif::ProgressBar::new(len as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("wave {msg} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(format!("{n}/{of}"));
        Some(bar)
    }

    /// A done change as its progress line names it: a number by the number it is (for an
    /// `auto` line, the number just bought), then the provider's id.
    async fn describe(&self, addr: &Address, id: Option<&str>) -> String {
        let number = match self.shared.lock().await.state.get(addr).map(|r| &r.spec) {
            Some(Spec::TelnyxNumber(n)) => n.number.fixed().map(ToString::to_string),
            Some(Spec::TwilioNumber(n)) => Some(n.number.to_string()),
            _ => None,
        };
        match (number, id) {
            (Some(n), Some(id)) => format!("{addr} {n} ({id})"),
            (Some(n), None) => format!("{addr} {n}"),
            (None, Some(id)) => format!("{addr} ({id})"),
            (None, None) => addr.to_string(),
        }
    }

    fn line(&self, text: &str) {
        if self.options.progress != Progress::Quiet {
            crate::outln!("{text}");
        }
    }

    async fn run_change(&self, change: &Change) -> Result<Option<String>, ApplyError> {
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
    fn refuse_protected(&self, change: &Change) -> Result<(), ApplyError> {
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
    fn check_lock(&self, addr: &Address, write: &Write<'_>) -> Result<(), ApplyError> {
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

    fn provider(&self, addr: &Address) -> Result<&Arc<dyn Provider>, ApplyError> {
        self.providers
            .for_kind(addr.kind)
            .ok_or_else(|| ApplyError::NoProvider {
                address: addr.to_string(),
                provider: addr.kind.provider().to_string(),
            })
    }

    async fn record_verified(&self, change: &Change) -> Result<Option<String>, ApplyError> {
        let Some(id) = change.id.clone() else {
            return Ok(None);
        };
        let known = self.shared.lock().await.ids.get(&change.address) == Some(&id);
        if !known {
            let live = self.read(&change.address, &id).await?;
            self.remember(&change.address, change, live, change.protected)
                .await?;
        }
        Ok(Some(id))
    }

    async fn forget(&self, change: &Change) -> Result<Option<String>, ApplyError> {
        let mut shared = self.shared.lock().await;
        shared.state.remove(&change.address);
        shared.ids.remove(&change.address);
        shared.steps_since_save += 1;
        Ok(change.id.clone())
    }

    async fn adopt(&self, change: &Change) -> Result<Option<String>, ApplyError> {
        let id = change.id.clone().unwrap_or_default();
        let live = self.read(&change.address, &id).await?;
        self.remember(&change.address, change, live, false).await?;
        self.audit(
            &change.address,
            Some(&id),
            "adopt",
            &format!("ok ({})", change.reason),
        );
        if change.fields.is_empty() {
            return Ok(Some(id));
        }
        self.update(change).await.map(Some)
    }

    async fn read(&self, addr: &Address, id: &str) -> Result<LiveObject, ApplyError> {
        let provider = self.provider(addr)?;
        provider.read(addr.kind, id).await?.ok_or_else(|| {
            ApplyError::from(ProviderError::Api {
                provider: addr.kind.provider(),
                operation: "read".into(),
                object: format!("{addr} ({id})"),
                status: 404,
                code: "not_found".into(),
                detail: "the object disappeared during apply".into(),
            })
        })
    }

    async fn create(&self, change: &Change, addr: &Address) -> Result<String, ApplyError> {
        let provider = self.provider(addr)?.clone();
        let spec = self.for_write(change).await?;
        self.check_lock(addr, &Write::Create(&spec))?;
        let lineage = self.shared.lock().await.state.lineage.clone();
        let replacing = (change.action == Action::Replace)
            .then_some(change.id.as_deref())
            .flatten();
        let reference = crate::providers::create_reference(&lineage, &addr.to_string(), replacing);
        let req = WriteRequest {
            object: addr.to_string(),
            spec: spec.clone(),
            reference: reference.clone(),
        };
        self.intent(addr, "create", &reference, None, Some(&spec))?;
        test_crash_point("before");
        let created = match provider.create(&req).await {
            Ok(obj) => obj,
            Err(e) => return Err(self.failed(addr, "create", &reference, None, e)),
        };
        test_crash_point("after");
        self.result(addr, "create", &reference, &created)?;
        self.audit(addr, Some(&created.id), "create", "ok");
        self.shared
            .lock()
            .await
            .created
            .push((addr.clone(), addr.kind, created.id.clone()));
        let live = self.read(addr, &created.id).await.unwrap_or(created);
        self.remember(addr, change, live.clone(), false).await?;
        verify(addr, &spec, &live.spec)?;
        Ok(live.id)
    }

    async fn update(&self, change: &Change) -> Result<String, ApplyError> {
        let addr = &change.address;
        let id = change.id.clone().unwrap_or_default();
        let provider = self.provider(addr)?.clone();
        let spec = self.for_write(change).await?;
        self.check_lock(
            addr,
            &Write::Update {
                id: &id,
                spec: &spec,
            },
        )?;
        let before = match &change.before {
            Some(b) => self.to_ids(b).await,
            None => self.read(addr, &id).await?.spec,
        };
        let reference = format!("cwa-{}-{}", self.run, short_hash(&addr.to_string()));
        let req = WriteRequest {
            object: addr.to_string(),
            spec: spec.clone(),
            reference: reference.clone(),
        };
        self.intent(addr, "update", &reference, Some(&id), Some(&spec))?;
        test_crash_point("before");
        let updated = match provider.update(&id, &before, &req).await {
            Ok(obj) => obj,
            Err(e) => return Err(self.failed(addr, "update", &reference, Some(&id), e)),
        };
        test_crash_point("after");
        self.result(addr, "update", &reference, &updated)?;
        self.audit(addr, Some(&id), "update", "ok");
        let live = self.read(addr, &id).await?;
        self.remember(addr, change, live.clone(), false).await?;
        verify(addr, &spec, &live.spec)?;
        Ok(id)
    }

    /// Create the new object first; then remove the old one, except a number, which is kept
    /// under a `_retired_` address and never released.
    async fn replace(&self, change: &Change) -> Result<String, ApplyError> {
        let old = change.id.clone().unwrap_or_default();
        let new = self.create(change, &change.address).await?;
        if matches!(change.kind, Kind::TelnyxNumber | Kind::TwilioNumber) {
            let live = self.read(&change.address, &old).await?;
            let digits = live
                .spec
                .label()
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>();
            let retired = Address::new(
                change.kind,
                format!("{}_retired_{digits}", change.address.name),
            );
            self.remember(&retired, change, live, false).await?;
        } else {
            let provider = self.provider(&change.address)?.clone();
            let reference = format!(
                "cwa-{}-{}-old",
                self.run,
                short_hash(&change.address.to_string())
            );
            self.check_lock(
                &change.address,
                &Write::Delete {
                    kind: change.kind,
                    id: &old,
                },
            )?;
            self.intent(&change.address, "delete", &reference, Some(&old), None)?;
            if let Err(e) = provider.delete(change.kind, &old).await {
                return Err(self.failed(&change.address, "delete", &reference, Some(&old), e));
            }
            self.done(&change.address, "delete", &reference, &old)?;
            self.audit(&change.address, Some(&old), "delete (replaced)", "ok");
        }
        Ok(new)
    }

    async fn delete(&self, change: &Change) -> Result<(), ApplyError> {
        let addr = &change.address;
        let id = change.id.clone().unwrap_or_default();
        let provider = self.provider(addr)?.clone();
        self.check_lock(
            addr,
            &Write::Delete {
                kind: addr.kind,
                id: &id,
            },
        )?;
        let reference = format!("cwa-{}-{}", self.run, short_hash(&addr.to_string()));
        self.intent(addr, "delete", &reference, Some(&id), None)?;
        test_crash_point("before");
        match provider.delete(addr.kind, &id).await {
            Ok(()) => test_crash_point("after"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(self.failed(addr, "delete", &reference, Some(&id), e)),
        }
        self.done(addr, "delete", &reference, &id)?;
        self.audit(
            addr,
            Some(&id),
            if change.irreversible {
                "release"
            } else {
                "delete"
            },
            "ok",
        );
        let mut shared = self.shared.lock().await;
        shared.state.remove(addr);
        shared.ids.remove(addr);
        shared.steps_since_save += 1;
        drop(shared);
        self.save(false).await?;
        Ok(())
    }

    /// The declared spec, ready to send: references as live ids, numbers of bought `auto`
    /// numbers filled in, secrets read from the environment.
    async fn for_write(&self, change: &Change) -> Result<Spec, ApplyError> {
        let addr = change.address.to_string();
        let after = change.after.clone().ok_or_else(|| ApplyError::Unresolved {
            address: addr.clone(),
            missing: "its declaration".into(),
        })?;
        let shared = self.shared.lock().await;
        let mut spec = after;
        for r in spec.refs_mut() {
            if let Ref::Addr(target) = r {
                let id = shared
                    .ids
                    .get(target)
                    .ok_or_else(|| ApplyError::Unresolved {
                        address: addr.clone(),
                        missing: target.to_string(),
                    })?;
                *r = Ref::Id(id.clone());
            }
        }
        for n in spec.number_refs_mut() {
            if let NumberRef::Of(target) = n {
                let number = match shared.state.get(target).map(|r| &r.spec) {
                    Some(Spec::TelnyxNumber(t)) => t.number.fixed().cloned(),
                    _ => None,
                };
                *n = NumberRef::Number(number.ok_or_else(|| ApplyError::Unresolved {
                    address: addr.clone(),
                    missing: target.to_string(),
                })?);
            }
        }
        drop(shared);
        for secret in spec.secrets_mut() {
            if let SecretRef::Env(name) = secret {
                let variable = name.clone();
                let resolved = self.secrets.resolve(secret);
                *secret = resolved.map_err(|_| ApplyError::MissingSecret {
                    address: addr.clone(),
                    variable: variable.clone(),
                })?;
                self.refuse_credential_value(&addr, &variable, secret)?;
            }
        }
        Ok(spec)
    }

    /// Before the first write: every secret the plan will send is checked against the
    /// provider credentials, so a refused one stops the run with nothing written.
    fn preflight_secrets(&self, plan: &Plan) -> Option<Outcome> {
        for change in plan.actionable() {
            let Some(after) = &change.after else {
                continue;
            };
            let mut after = after.clone();
            for secret in after.secrets_mut() {
                let SecretRef::Env(variable) = &*secret else {
                    continue;
                };
                let Ok(resolved) = self.secrets.resolve(secret) else {
                    continue;
                };
                let addr = change.address.to_string();
                if let Err(e) = self.refuse_credential_value(&addr, variable, &resolved) {
                    self.line(&format!("REFUSED {}: {e}", change.address));
                    return Some(outcome(change, change.id.clone(), Some(&e)));
                }
            }
        }
        None
    }

    /// A SIP secret whose value is one of the provider credentials cwa runs with (whatever
    /// the variable is called) is never sent: it would hand that credential to a provider.
    fn refuse_credential_value(
        &self,
        address: &str,
        variable: &str,
        secret: &SecretRef,
    ) -> Result<(), ApplyError> {
        let Some(value) = secret.value() else {
            return Ok(());
        };
        let same = crate::providers::ENV_VARS.iter().find(|credential| {
            self.secrets
                .get(credential)
                .is_some_and(|v| v == value.expose())
        });
        match same {
            Some(credential) => Err(ApplyError::CredentialAsSecret {
                address: address.to_string(),
                variable: variable.to_string(),
                credential: credential.to_string(),
            }),
            None => Ok(()),
        }
    }

    async fn to_ids(&self, spec: &Spec) -> Spec {
        let shared = self.shared.lock().await;
        let mut spec = spec.clone();
        for r in spec.refs_mut() {
            if let Ref::Addr(target) = r {
                if let Some(id) = shared.ids.get(target) {
                    *r = Ref::Id(id.clone());
                }
            }
        }
        spec
    }

    /// Records a live object as owned by `addr`.
    async fn remember(
        &self,
        addr: &Address,
        change: &Change,
        live: LiveObject,
        protected: bool,
    ) -> Result<(), StateError> {
        let mut shared = self.shared.lock().await;
        shared.ids.insert(addr.clone(), live.id.clone());
        shared.state.upsert(
            addr,
            StateResource {
                id: live.id,
                spec: live.spec,
                church: change.church.clone(),
                protected,
            },
        );
        let mut newly_protected = None;
        if protected {
            if let Some(id) = &change.id {
                if !shared.state.protected.contains_key(id) {
                    newly_protected = Some(id.clone());
                }
                shared
                    .state
                    .protected
                    .entry(id.clone())
                    .or_insert_with(|| "declared protected in lines.toml".into());
            }
        }
        shared.steps_since_save += 1;
        drop(shared);
        if let Some(id) = newly_protected {
            self.audit(addr, Some(&id), "protect", "ok");
        }
        self.save(false).await
    }

    /// Saves state now when it is small; a large state is saved per wave (the journal holds
    /// every result in between, so nothing is lost if the run dies).
    async fn save(&self, force: bool) -> Result<(), StateError> {
        let mut shared = self.shared.lock().await;
        if shared.steps_since_save == 0 {
            return Ok(());
        }
        if !force && shared.state.resources.len() > 2_000 {
            return Ok(());
        }
        let Shared { state, on_disk, .. } = &mut *shared;
        self.store.save_if_unchanged(state, on_disk)?;
        *on_disk = state.clone();
        shared.steps_since_save = 0;
        Ok(())
    }

    /// A state never saved has a lineage no other machine knows; purchase references derive
    /// from it, so it is written before the first provider write (a rerun from this state/
    /// then finds what this run bought).
    async fn save_lineage_first(&self) -> Result<(), StateError> {
        let mut shared = self.shared.lock().await;
        if shared.state.serial > 0 {
            return Ok(());
        }
        shared.steps_since_save += 1;
        drop(shared);
        self.save(true).await
    }

    fn intent(
        &self,
        addr: &Address,
        op: &str,
        reference: &str,
        id: Option<&str>,
        spec: Option<&Spec>,
    ) -> Result<(), StateError> {
        self.journal.record(&JournalEntry {
            run: self.run.clone(),
            time: now(),
            address: addr.to_string(),
            operation: op.into(),
            phase: JournalPhase::Intent,
            reference: reference.into(),
            id: id.map(str::to_string),
            detail: None,
            spec: spec.cloned(),
        })
    }

    fn result(
        &self,
        addr: &Address,
        op: &str,
        reference: &str,
        obj: &LiveObject,
    ) -> Result<(), StateError> {
        self.journal.record(&JournalEntry {
            run: self.run.clone(),
            time: now(),
            address: addr.to_string(),
            operation: op.into(),
            phase: JournalPhase::Done,
            reference: reference.into(),
            id: Some(obj.id.clone()),
            detail: None,
            spec: Some(obj.spec.clone()),
        })
    }

    fn done(&self, addr: &Address, op: &str, reference: &str, id: &str) -> Result<(), StateError> {
        self.journal.record(&JournalEntry {
            run: self.run.clone(),
            time: now(),
            address: addr.to_string(),
            operation: op.into(),
            phase: JournalPhase::Done,
            reference: reference.into(),
            id: Some(id.into()),
            detail: None,
            spec: None,
        })
    }

    /// Records a failed call. When the provider may have carried it out (no answer), the
    /// intent is left open so the next run looks it up before doing anything.
    fn failed(
        &self,
        addr: &Address,
        op: &str,
        reference: &str,
        id: Option<&str>,
        e: ProviderError,
    ) -> ApplyError {
        if !e.outcome_unknown() {
            let _ = self.journal.record(&JournalEntry {
                run: self.run.clone(),
                time: now(),
                address: addr.to_string(),
                operation: op.into(),
                phase: JournalPhase::Failed,
                reference: reference.into(),
                id: id.map(str::to_string),
                detail: Some(e.to_string()),
                spec: None,
            });
        }
        let outcome = if e.outcome_unknown() {
            format!("unknown (no readable answer; the next run looks it up): {e}")
        } else {
            format!("failed: {e}")
        };
        self.audit(addr, id, op, &outcome);
        ApplyError::from(e)
    }

    fn audit(&self, addr: &Address, id: Option<&str>, action: &str, outcome: &str) {
        let entry = AuditEntry {
            time: now(),
            operator: self.operator.clone(),
            address: addr.to_string(),
            id: id.map(str::to_string),
            action: action.into(),
            outcome: outcome.into(),
        };
        if let Err(e) = self.journal.audit(&entry) {
            tracing::warn!("cannot append to the audit log: {e}");
        }
    }

    /// Deletes configuration objects this run created for the failed chains, newest first;
    /// what independent chains created (and what they still use) stays. Numbers are never
    /// released by a rollback.
    async fn rollback(&self, chain: &BTreeSet<Address>) -> Vec<Address> {
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
fn needs_recording(change: &Change) -> bool {
    matches!(change.action, Action::Verify | Action::Retain) && change.id.is_some()
}

/// Compares what was asked with what was read back. Secrets a provider does not return, and
/// an `auto` number (which becomes whatever was bought), are not compared.
fn verify(addr: &Address, asked: &Spec, actual: &Spec) -> Result<(), ApplyError> {
    let asked = match (asked, actual) {
        (Spec::TelnyxNumber(a), Spec::TelnyxNumber(b))
            if matches!(a.number, NumberSpec::Auto { .. }) =>
        {
            let mut a = a.clone();
            a.number = b.number.clone();
            Spec::TelnyxNumber(a)
        }
        _ => asked.clone(),
    };
    let mismatch: Option<FieldChange> = crate::plan::diff_fields(actual, &asked)
        .into_iter()
        .find(|f| !(f.sensitive && f.before.is_null()));
    match mismatch {
        None => Ok(()),
        Some(f) => Err(ApplyError::IgnoredWrite {
            address: addr.to_string(),
            field: f.path,
            expected: crate::render::value_text(&f.after),
            actual: crate::render::value_text(&f.before),
        }),
    }
}

/// Settles a journal left by a run that died: results are written into state, and creates
/// with no result are looked up by their reference (a number order by its
/// customer_reference) so that nothing is bought twice and nothing created is forgotten.
pub async fn reconcile(
    journal: &Journal,
    store: &StateStore,
    state: &mut State,
    providers: &Providers,
) -> Result<Vec<String>, ApplyError> {
    let entries = journal.entries()?;
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut notes = Vec::new();
    let audited = journal.audit_entries().unwrap_or_default();
    for e in entries.iter().filter(|e| e.phase == JournalPhase::Done) {
        let Ok(addr) = e.address.parse::<Address>() else {
            continue;
        };
        let logged = audited.iter().any(|a| {
            a.address == e.address && a.id == e.id && a.action.starts_with(e.operation.as_str())
        });
        if !logged {
            recovery_audit(
                journal,
                &addr,
                e.id.as_deref(),
                &e.operation,
                &format!(
                    "ok (recorded from the journal of interrupted run {})",
                    e.run
                ),
            );
        }
        match (e.operation.as_str(), &e.spec, &e.id) {
            ("delete", _, _) if state.get(&addr).map(|r| &r.id) == e.id.as_ref() => {
                state.remove(&addr);
            }
            ("delete", _, _) => {}
            (_, Some(spec), Some(id)) => {
                let church = state.get(&addr).and_then(|r| r.church.clone());
                state.upsert(
                    &addr,
                    StateResource {
                        id: id.clone(),
                        spec: spec.clone(),
                        church,
                        protected: false,
                    },
                );
            }
            _ => {}
        }
    }
    for intent in journal.unfinished()? {
        let Ok(addr) = intent.address.parse::<Address>() else {
            continue;
        };
        if intent.operation != "create" {
            notes.push(format!(
                "{} {} may or may not have happened; the new plan re-reads it",
                intent.operation, addr
            ));
            recovery_audit(
                journal,
                &addr,
                intent.id.as_deref(),
                &intent.operation,
                &format!(
                    "unknown (interrupted run {} may or may not have made it; the next plan re-reads it)",
                    intent.run
                ),
            );
            continue;
        }
        let (Some(spec), Some(provider)) = (&intent.spec, providers.for_kind(addr.kind)) else {
            continue;
        };
        let req = WriteRequest {
            object: addr.to_string(),
            spec: spec.clone(),
            reference: intent.reference.clone(),
        };
        match provider.find_created(&req).await? {
            Some(found) => {
                notes.push(format!(
                    "found {} ({}) created by an interrupted run; recorded it",
                    addr, found.id
                ));
                recovery_audit(
                    journal,
                    &addr,
                    Some(&found.id),
                    "create",
                    &format!(
                        "ok (created by interrupted run {}, found by its reference {})",
                        intent.run, intent.reference
                    ),
                );
                let church = state.get(&addr).and_then(|r| r.church.clone());
                state.upsert(
                    &addr,
                    StateResource {
                        id: found.id,
                        spec: found.spec,
                        church,
                        protected: false,
                    },
                );
            }
            None => {
                notes.push(format!("{addr}: the interrupted create never took effect"));
                recovery_audit(
                    journal,
                    &addr,
                    None,
                    "create",
                    &format!("not done (interrupted run {} never made it)", intent.run),
                );
            }
        }
    }
    store.save(state)?;
    journal.clear()?;
    Ok(notes)
}

/// Re-fingerprints state from what this apply just read live: every owned object's secrets are
/// rebound under the current key (after a key rotation, or for a state whose unkeyed
/// fingerprints an older cwa wrote), and the state is saved if that changed anything. No
/// provider is written and the plan shows nothing: the secrets themselves did not change.
pub fn rebind_fingerprints(
    store: &StateStore,
    state: &mut State,
    plan: &Plan,
) -> Result<bool, StateError> {
    use crate::state::fingerprint;
    if state.serial == 0 {
        return Ok(false);
    }
    let read = state.clone();
    let key = fingerprint::key();
    let lineage = state.lineage.clone();
    let mut changed = state.fingerprint_key_id.as_deref() != Some(key.id());
    for c in &plan.changes {
        let (Some(id), Some(live)) = (&c.id, &c.before) else {
            continue;
        };
        let addr = c.address.to_string();
        let Some(owned) = state.resources.get_mut(&addr).filter(|r| &r.id == id) else {
            continue;
        };
        changed |= fingerprint::rebind_from_live(key, &lineage, &addr, &mut owned.spec, live);
    }
    if changed {
        store.save_if_unchanged(state, &read)?;
    }
    Ok(changed)
}

/// An audit entry for what reconcile learned about an interrupted run's writes: a record of
/// every write must not depend on the run that made it living to write it.
fn recovery_audit(
    journal: &Journal,
    addr: &Address,
    id: Option<&str>,
    action: &str,
    outcome: &str,
) {
    let entry = AuditEntry {
        time: now(),
        operator: crate::state::operator(),
        address: addr.to_string(),
        id: id.map(str::to_string),
        action: action.into(),
        outcome: outcome.into(),
    };
    if let Err(e) = journal.audit(&entry) {
        tracing::warn!("cannot append to the audit log: {e}");
    }
}

/// Test-only crash injection: with `CWA_TEST_CRASH_AT=before:N` (or `after:N`) the process
/// aborts just before (or just after) its N-th mutating provider call, as a kill at that
/// instant would. The crash tests use it to prove that a rerun converges from any point.
fn test_crash_point(moment: &str) {
    use std::sync::atomic::AtomicUsize;
    static CALLS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    let Ok(spec) = std::env::var("CWA_TEST_CRASH_AT") else {
        return;
    };
    let Some((at, n)) = spec.split_once(':') else {
        return;
    };
    if at != moment {
        return;
    }
    let slot = usize::from(moment == "after");
    let count = CALLS[slot].fetch_add(1, Ordering::SeqCst) + 1;
    if n.parse::<usize>().ok() == Some(count) {
        crate::errln!("CWA_TEST_CRASH_AT={spec}: aborting");
        std::process::abort();
    }
}

fn outcome(change: &Change, id: Option<String>, error: Option<&ApplyError>) -> Outcome {
    Outcome {
        address: change.address.clone(),
        action: change.action,
        id,
        error: error.map(ToString::to_string),
        fix: error.map(ApplyError::fix),
        rerun_helps: error.is_some_and(ApplyError::rerun_helps),
    }
}

fn skipped(change: &Change, blocker: &Change, root: &Address) -> Skipped {
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

fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(s.as_bytes())[..4])
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
