//! `cwa state migrate --to`: copies state from one backend to another (a directory, a
//! PostgreSQL workspace) losslessly: the same resources, protections, lineage (purchase
//! references derive from it) and fingerprints, and the audit log; checked by reading the
//! copy back. Both sides are locked while it runs; a state with an unfinished journal is
//! refused (an interrupted apply must be reconciled where it ran first).

use std::collections::HashSet;
use std::time::Duration;

use super::{Journal, StateError, StateLock, StateStore};

/// What a migration copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub resources: usize,
    pub audit_entries: usize,
    pub lineage: String,
    pub serial: u64,
}

/// Copies `from` into `to`. The destination must be empty or hold an earlier copy of the
/// same state (same lineage): another state there is never overwritten.
pub fn migrate(from: &StateStore, to: &StateStore) -> Result<Migrated, StateError> {
    let _from_lock = StateLock::acquire(from, "state migrate", Duration::ZERO)?;
    let _to_lock = StateLock::acquire(to, "state migrate", Duration::ZERO)?;
    let source_journal = Journal::new(from);
    let pending = source_journal.entries()?.len();
    if pending > 0 {
        return Err(StateError::JournalPending {
            store: from.describe(),
            entries: pending,
        });
    }
    let state = from.load()?;
    let existing = to.load()?;
    if existing.serial > 0 && existing.lineage != state.lineage {
        return Err(StateError::DestinationHoldsState {
            store: to.describe(),
            lineage: existing.lineage,
            serial: existing.serial,
        });
    }
    let mut copy = state.clone();
    copy.serial = state.serial.max(existing.serial);
    to.save_copy(&mut copy)?;
    let target_journal = Journal::new(to);
    let audit_entries = copy_audit(&source_journal, &target_journal)?;
    let back = to.load()?;
    let same = back.lineage == state.lineage
        && back.resources == state.resources
        && back.protected == state.protected
        && back.fingerprint_key_id == state.fingerprint_key_id;
    if !same {
        return Err(StateError::Corrupt {
            path: to.describe(),
            detail: "the copy read back differs from the source; the source is unchanged".into(),
        });
    }
    Ok(Migrated {
        resources: back.resources.len(),
        audit_entries,
        lineage: back.lineage,
        serial: back.serial,
    })
}

/// Appends to the destination's audit log the source's entries it does not hold yet, in
/// order, in one batch (one transaction in PostgreSQL, not one per entry); a second
/// migration of the same state adds only what is new.
fn copy_audit(from: &Journal, to: &Journal) -> Result<usize, StateError> {
    let key = |e: &super::AuditEntry| serde_json::to_string(e).unwrap_or_default();
    let held: HashSet<String> = to.audit_entries()?.iter().map(key).collect();
    let new: Vec<super::AuditEntry> = from
        .audit_entries()?
        .into_iter()
        .filter(|e| !held.contains(&key(e)))
        .collect();
    to.audit_all(&new)?;
    Ok(new.len())
}
