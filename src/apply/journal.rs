//! What the executor records: journal intents and results, the audit log, state saves.

use crate::model::{Address, LiveObject, Spec};
use crate::providers::ProviderError;
use crate::state::{AuditEntry, JournalEntry, JournalPhase, StateError};

use super::executor::Shared;
use super::{ApplyError, Executor};

impl Executor {
    /// Saves state now when it is small; a large state is saved per wave (the journal holds
    /// every result in between, so nothing is lost if the run dies).
    pub(super) async fn save(&self, force: bool) -> Result<(), StateError> {
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
    pub(super) async fn save_lineage_first(&self) -> Result<(), StateError> {
        let mut shared = self.shared.lock().await;
        if shared.state.serial > 0 {
            return Ok(());
        }
        shared.steps_since_save += 1;
        drop(shared);
        self.save(true).await
    }

    /// One journal entry of this run: every phase of a call is recorded the same way.
    fn entry(
        &self,
        addr: &Address,
        op: &str,
        phase: JournalPhase,
        reference: &str,
        id: Option<String>,
    ) -> JournalEntry {
        JournalEntry {
            run: self.run.clone(),
            time: now(),
            address: addr.to_string(),
            operation: op.into(),
            phase,
            reference: reference.into(),
            id,
            detail: None,
            spec: None,
        }
    }

    pub(super) fn intent(
        &self,
        addr: &Address,
        op: &str,
        reference: &str,
        id: Option<&str>,
        spec: Option<&Spec>,
    ) -> Result<(), StateError> {
        self.journal.record(&JournalEntry {
            spec: spec.cloned(),
            ..self.entry(
                addr,
                op,
                JournalPhase::Intent,
                reference,
                id.map(str::to_string),
            )
        })
    }

    pub(super) fn result(
        &self,
        addr: &Address,
        op: &str,
        reference: &str,
        obj: &LiveObject,
    ) -> Result<(), StateError> {
        self.journal.record(&JournalEntry {
            spec: Some(obj.spec.clone()),
            ..self.entry(
                addr,
                op,
                JournalPhase::Done,
                reference,
                Some(obj.id.clone()),
            )
        })
    }

    pub(super) fn done(
        &self,
        addr: &Address,
        op: &str,
        reference: &str,
        id: &str,
    ) -> Result<(), StateError> {
        self.journal
            .record(&self.entry(addr, op, JournalPhase::Done, reference, Some(id.into())))
    }

    /// Records a failed call. When the provider may have carried it out (no answer), the
    /// intent is left open so the next run looks it up before doing anything.
    pub(super) fn failed(
        &self,
        addr: &Address,
        op: &str,
        reference: &str,
        id: Option<&str>,
        e: ProviderError,
    ) -> ApplyError {
        if !e.outcome_unknown() {
            let _ = self.journal.record(&JournalEntry {
                detail: Some(e.to_string()),
                ..self.entry(
                    addr,
                    op,
                    JournalPhase::Failed,
                    reference,
                    id.map(str::to_string),
                )
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

    pub(super) fn audit(&self, addr: &Address, id: Option<&str>, action: &str, outcome: &str) {
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
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
