//! Settling a journal a killed run left, and re-fingerprinting state after a key change.

use crate::model::Address;
use crate::plan::Plan;
use crate::providers::{Providers, WriteRequest};
use crate::state::{
    AuditEntry, Journal, JournalPhase, State, StateError, StateResource, StateStore,
};

use super::journal::now;
use super::ApplyError;

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
