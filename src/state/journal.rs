//! The write-ahead journal and the audit log.
//!
//! Before every mutating call the executor records its intent (with the idempotency reference
//! it will send); after the call, its result. A run killed between the two leaves an intent
//! with no result, which the next run reconciles against live before doing anything else.
//! The audit log is the permanent, append-only record of every mutating call cwa made. It is
//! committed beside state.json (a CI runner's record must outlive the runner), so it is kept
//! diff-friendly: lines are only ever appended, and once `audit.jsonl` reaches
//! [`AUDIT_ROTATE_BYTES`] it is renamed to `audit-<UTC time>.jsonl`, never touched again, and
//! a new `audit.jsonl` is started.

use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::pg::PgBackend;
use super::{StateError, StateStore};

/// Whether a journal line records what is about to happen or what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalPhase {
    Intent,
    Done,
    Failed,
}

/// One line of journal.jsonl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub run: String,
    pub time: String,
    pub address: String,
    /// `create`, `update`, `delete`, …
    pub operation: String,
    pub phase: JournalPhase,
    /// The idempotency reference sent with the call (e.g. Telnyx `customer_reference`).
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The object as written or found (live ids, secrets as fingerprints): an intent's spec lets
    /// a lost create be found again; a result's spec lets state be rebuilt from the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<crate::model::Spec>,
}

/// One line of audit.jsonl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: String,
    pub operator: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub action: String,
    pub outcome: String,
}

/// The size at which audit.jsonl is rotated (about 4,000 entries).
pub const AUDIT_ROTATE_BYTES: u64 = 1 << 20;

/// Appends to journal.jsonl and audit.jsonl, each line fsynced before the call it describes;
/// or, for a state in PostgreSQL, inserts rows, each committed (and fenced) before the call.
#[derive(Debug, Clone)]
pub struct Journal {
    journal: PathBuf,
    audit: PathBuf,
    remote: Option<Arc<PgBackend>>,
}

impl Journal {
    pub fn new(store: &StateStore) -> Self {
        Self {
            journal: store.journal_path(),
            audit: store.audit_path(),
            remote: store.remote().cloned(),
        }
    }

    pub fn record(&self, entry: &JournalEntry) -> Result<(), StateError> {
        match &self.remote {
            Some(pg) => pg.record(entry),
            None => append_line(&self.journal, entry),
        }
    }

    pub fn audit(&self, entry: &AuditEntry) -> Result<(), StateError> {
        self.audit_all(std::slice::from_ref(entry))
    }

    /// Appends entries to the audit log in order, at once: one transaction in PostgreSQL, one
    /// write and fsync per audit file otherwise (`cwa state migrate` copies a whole log).
    pub fn audit_all(&self, entries: &[AuditEntry]) -> Result<(), StateError> {
        if entries.is_empty() {
            return Ok(());
        }
        if let Some(pg) = &self.remote {
            return pg.audit(entries);
        }
        self.rotate_audit(rotate_bytes())?;
        append_lines(&self.audit, entries)
    }

    /// Moves a full audit.jsonl aside under a name that sorts by time, so every rotated file
    /// is immutable and the set of files reads oldest first.
    fn rotate_audit(&self, limit: u64) -> Result<(), StateError> {
        let Ok(meta) = fs::metadata(&self.audit) else {
            return Ok(());
        };
        if meta.len() < limit {
            return Ok(());
        }
        let dir = self.audit.parent().unwrap_or(Path::new("."));
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let seq = self.audit_files().len();
        let target = dir.join(format!("audit-{stamp}-{seq:06}.jsonl"));
        fs::rename(&self.audit, &target).map_err(|source| StateError::Io {
            action: "rotate",
            path: self.audit.display().to_string(),
            source,
        })
    }

    /// Every audit file, oldest first: the rotated ones by name (their names sort by time),
    /// then audit.jsonl.
    fn audit_files(&self) -> Vec<PathBuf> {
        let dir = self.audit.parent().unwrap_or(Path::new("."));
        let mut rotated: Vec<PathBuf> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
            })
            .collect();
        rotated.sort();
        rotated.push(self.audit.clone());
        rotated
    }

    /// Every journal entry, oldest first. A torn last line (a crash mid-write) is ignored:
    /// its call was never made, because the line is synced before the call.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, StateError> {
        if let Some(pg) = &self.remote {
            return pg.journal_entries();
        }
        read_lines(&self.journal)
    }

    /// Intents with no result: calls that may or may not have happened.
    pub fn unfinished(&self) -> Result<Vec<JournalEntry>, StateError> {
        let entries = self.entries()?;
        Ok(entries
            .iter()
            .filter(|e| e.phase == JournalPhase::Intent)
            .filter(|intent| {
                !entries.iter().any(|e| {
                    e.phase != JournalPhase::Intent
                        && e.reference == intent.reference
                        && e.address == intent.address
                })
            })
            .cloned()
            .collect())
    }

    /// Empties the journal once every intent in it has been settled in state.
    pub fn clear(&self) -> Result<(), StateError> {
        if let Some(pg) = &self.remote {
            return pg.clear_journal();
        }
        match fs::remove_file(&self.journal) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                action: "clear",
                path: self.journal.display().to_string(),
                source,
            }),
        }
    }

    /// Every audit entry, oldest first, across rotated files.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, StateError> {
        if let Some(pg) = &self.remote {
            return pg.audit_entries();
        }
        let mut all = Vec::new();
        for file in self.audit_files() {
            all.extend(read_lines(&file)?);
        }
        Ok(all)
    }
}

/// `CWA_AUDIT_ROTATE_BYTES` overrides the rotation size (the tests rotate after a few lines).
fn rotate_bytes() -> u64 {
    std::env::var("CWA_AUDIT_ROTATE_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(AUDIT_ROTATE_BYTES)
}

fn append_line<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    append_lines(path, std::slice::from_ref(value))
}

fn append_lines<T: Serialize>(path: &Path, values: &[T]) -> Result<(), StateError> {
    let io = |action: &'static str, source: std::io::Error| StateError::Io {
        action,
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
    }
    let mut line = String::new();
    for value in values {
        line.push_str(
            &serde_json::to_string(value).map_err(|e| StateError::Corrupt {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?,
        );
        line.push('\n');
    }
    // The journal and the audit log are cwa's own files in state/: a symlink there (committed
    // by a pull request) would make every entry land in whatever file it points at.
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io(
            "append to",
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "it is a symbolic link; cwa appends only to a regular file in state/ (remove the link)",
            ),
        ));
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io("open", e))?;
    file.write_all(line.as_bytes())
        .map_err(|e| io("append to", e))?;
    file.sync_data().map_err(|e| io("fsync", e))
}

fn read_lines<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, StateError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StateError::Io {
                action: "read",
                path: path.display().to_string(),
                source,
            })
        }
    };
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| StateError::Io {
            action: "read",
            path: path.display().to_string(),
            source,
        })?;
    let last = lines.len().saturating_sub(1);
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(_) if i == last => break,
            Err(e) => {
                return Err(StateError::Corrupt {
                    path: path.display().to_string(),
                    detail: format!("line {}: {e}", i + 1),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(phase: JournalPhase, reference: &str) -> JournalEntry {
        JournalEntry {
            run: "r1".into(),
            time: "t".into(),
            address: "telnyx_number.a".into(),
            operation: "create".into(),
            phase,
            reference: reference.into(),
            id: None,
            detail: None,
            spec: None,
        }
    }

    #[test]
    fn unfinished_are_intents_without_results() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(&StateStore::new(dir.path()));
        journal.record(&entry(JournalPhase::Intent, "a")).unwrap();
        journal.record(&entry(JournalPhase::Done, "a")).unwrap();
        journal.record(&entry(JournalPhase::Intent, "b")).unwrap();
        let open = journal.unfinished().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].reference, "b");
    }

    #[test]
    fn audit_rotates_append_only_and_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(&StateStore::new(dir.path()));
        let entry = |n: usize| AuditEntry {
            time: format!("t{n}"),
            operator: "o".into(),
            address: format!("telnyx_number.n{n}"),
            id: None,
            action: "create".into(),
            outcome: "ok".into(),
        };
        for n in 0..5 {
            journal.rotate_audit(1).unwrap();
            append_line(&journal.audit, &entry(n)).unwrap();
        }
        let rotated = journal.audit_files();
        assert_eq!(rotated.len(), 5, "{rotated:?}");
        let back: Vec<String> = journal
            .audit_entries()
            .unwrap()
            .into_iter()
            .map(|e| e.time)
            .collect();
        assert_eq!(back, ["t0", "t1", "t2", "t3", "t4"]);
    }

    #[test]
    fn torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let journal = Journal::new(&store);
        journal.record(&entry(JournalPhase::Intent, "a")).unwrap();
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(store.journal_path())
            .unwrap();
        f.write_all(b"{\"run\":\"r1\",\"ti").unwrap();
        assert_eq!(journal.entries().unwrap().len(), 1);
    }
}
