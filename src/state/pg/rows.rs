//! State, journal and audit log as rows. Reads need no lease; every write begins with the
//! fence ([`begin_fenced`]).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_postgres::Transaction;

use super::super::{AuditEntry, JournalEntry, State, StateError, StateResource, FORMAT_VERSION};
use super::Inner;

/// A boxed write, run on the PostgreSQL runtime.
pub type BoxFut<'a> = Pin<Box<dyn Future<Output = Result<(), StateError>> + Send + 'a>>;

/// How many resource rows go in one statement.
const BATCH: usize = 5_000;

/// Opens a transaction that goes on only while `generation` is the workspace's current lease
/// generation: the lease row is locked `FOR UPDATE` for the rest of the transaction, so a
/// take-over waits for this write to commit, and a write after a take-over is refused. The
/// one place every write to state, journal and audit is fenced.
pub async fn begin_fenced<'a>(
    client: &'a mut tokio_postgres::Client,
    inner: &Inner,
    generation: i64,
) -> Result<Transaction<'a>, StateError> {
    let fail = inner.error("write to");
    let tx = client.transaction().await.map_err(&fail)?;
    let current: Option<i64> = tx
        .query_opt(
            "SELECT generation FROM cwa_leases WHERE workspace = $1 FOR UPDATE",
            &[&inner.target.workspace],
        )
        .await
        .map_err(&fail)?
        .map(|r| r.get(0));
    if current != Some(generation) {
        return Err(StateError::Fenced {
            target: inner.target.shown(),
            generation,
            current: current.unwrap_or_default(),
        });
    }
    Ok(tx)
}

/// The workspace's state; none saved yet is an empty state with a fresh lineage.
pub async fn load(inner: &Arc<Inner>) -> Result<State, StateError> {
    let guard = inner.client().await?;
    let client = guard.as_ref().expect("connected");
    let fail = inner.error("read state from");
    let ws = &inner.target.workspace;
    let Some(head) = client
        .query_opt(
            "SELECT format_version, lineage, serial, fingerprint_key_id, protected::text \
             FROM cwa_states WHERE workspace = $1",
            &[ws],
        )
        .await
        .map_err(&fail)?
    else {
        return Ok(State::new());
    };
    let corrupt = |detail: String| StateError::Corrupt {
        path: inner.target.shown(),
        detail,
    };
    let found: i32 = head.get(0);
    if found > FORMAT_VERSION as i32 {
        return Err(StateError::NewerFormat {
            path: inner.target.shown(),
            found: found as u32,
            supported: FORMAT_VERSION,
        });
    }
    let serial: i64 = head.get(2);
    let mut state = State {
        format_version: found as u32,
        lineage: head.get(1),
        serial: serial as u64,
        resources: BTreeMap::new(),
        protected: serde_json::from_str(head.get(4))
            .map_err(|e| corrupt(format!("protected: {e}")))?,
        remembered: BTreeMap::new(),
        fingerprint_key_id: head.get(3),
    };
    if state.lineage.trim().is_empty() {
        return Err(corrupt("the lineage is empty".into()));
    }
    let rows = client
        .query(
            "SELECT address, id, spec::text, church, protected FROM cwa_resources WHERE workspace = $1",
            &[ws],
        )
        .await
        .map_err(&fail)?;
    for r in rows {
        let address: String = r.get(0);
        let spec = serde_json::from_str(r.get(2))
            .map_err(|e| corrupt(format!("resource {address}: {e}")))?;
        state.resources.insert(
            address,
            StateResource {
                id: r.get(1),
                spec,
                church: r.get(3),
                protected: r.get(4),
            },
        );
    }
    Ok(state)
}

/// A resource row as written: its address, the resource, its spec as JSON and its digest.
type Prepared<'a> = (&'a String, &'a StateResource, String, String);

/// Writes state in one fenced transaction: the head row, then only the resource rows that
/// changed (compared by digest) and the deletion of those gone. With `expected`, the stored
/// lineage and serial must still be those (nobody wrote in between), or nothing is written.
///
/// Everything that is not a write happens before the transaction: the rows' JSON and digests
/// are computed, and the stored digests read (the only large answer; inside the transaction
/// a holder stopped while receiving it would leave the server blocked sending, not idle, and
/// the lease row locked past any idle timeout). Reading them first is safe: only the holder
/// of the current generation writes rows, and the fence below checks that it is this one.
pub async fn save(
    inner: &Arc<Inner>,
    generation: i64,
    state: &State,
    expected: Option<(String, u64)>,
) -> Result<(), StateError> {
    let rows: Vec<Prepared<'_>> = state
        .resources
        .iter()
        .filter_map(|(addr, r)| {
            let spec = serde_json::to_string(&r.spec).ok()?;
            let digest = digest(r, &spec);
            Some((addr, r, spec, digest))
        })
        .collect();
    let mut guard = inner.client().await?;
    let client = guard.as_mut().expect("connected");
    let fail = inner.error("save state to");
    let ws = &inner.target.workspace;
    let digests: HashMap<String, String> = client
        .query(
            "SELECT address, digest FROM cwa_resources WHERE workspace = $1",
            &[ws],
        )
        .await
        .map_err(&fail)?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let gone: Vec<&String> = digests
        .keys()
        .filter(|a| !state.resources.contains_key(*a))
        .collect();
    let changed: Vec<&Prepared<'_>> = rows
        .iter()
        .filter(|(addr, _, _, digest)| digests.get(*addr) != Some(digest))
        .collect();
    let tx = begin_fenced(client, inner, generation).await?;
    check_expected(&tx, inner, expected).await?;
    let protected = serde_json::to_string(&state.protected).unwrap_or_else(|_| "{}".into());
    tx.execute(
        "INSERT INTO cwa_states (workspace, format_version, lineage, serial, fingerprint_key_id, protected, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, now(), $7) \
         ON CONFLICT (workspace) DO UPDATE SET format_version = EXCLUDED.format_version, \
         lineage = EXCLUDED.lineage, serial = EXCLUDED.serial, fingerprint_key_id = EXCLUDED.fingerprint_key_id, \
         protected = EXCLUDED.protected, updated_at = now(), updated_by = EXCLUDED.updated_by",
        &[
            ws,
            &(state.format_version as i32),
            &state.lineage,
            &(state.serial as i64),
            &state.fingerprint_key_id,
            &protected,
            &super::super::operator(),
        ],
    )
    .await
    .map_err(&fail)?;
    for chunk in gone.chunks(BATCH) {
        tx.execute(
            "DELETE FROM cwa_resources WHERE workspace = $1 AND address = ANY($2)",
            &[ws, &chunk],
        )
        .await
        .map_err(&fail)?;
    }
    for chunk in changed.chunks(BATCH) {
        upsert(&tx, ws, chunk).await.map_err(&fail)?;
    }
    super::super::test_hooks::stop_point("pg-save");
    tx.commit().await.map_err(&fail)
}

/// With `expected` (lineage, serial), refuses a save when the stored state is no longer that
/// one (someone wrote in between); read under the transaction's row lock.
async fn check_expected(
    tx: &Transaction<'_>,
    inner: &Inner,
    expected: Option<(String, u64)>,
) -> Result<(), StateError> {
    let Some((lineage, serial)) = expected else {
        return Ok(());
    };
    let stored: Option<(String, i64)> = tx
        .query_opt(
            "SELECT lineage, serial FROM cwa_states WHERE workspace = $1 FOR UPDATE",
            &[&inner.target.workspace],
        )
        .await
        .map_err(inner.error("save state to"))?
        .map(|r| (r.get(0), r.get(1)));
    let what = match &stored {
        Some((l, s)) if l == &lineage && *s as u64 == serial => return Ok(()),
        None if serial == 0 => return Ok(()),
        Some((l, _)) if l != &lineage => format!("lineage {lineage} -> {l} (another state)"),
        Some((_, s)) => format!("serial {serial} -> {s}"),
        None => "the state was removed".into(),
    };
    Err(StateError::ChangedSinceRead {
        path: inner.target.shown(),
        what,
    })
}

/// One statement for a batch of resource rows.
async fn upsert(
    tx: &Transaction<'_>,
    ws: &str,
    rows: &[&Prepared<'_>],
) -> Result<(), tokio_postgres::Error> {
    let address: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let kind: Vec<&str> = rows
        .iter()
        .map(|r| r.0.split_once('.').map_or(r.0.as_str(), |(k, _)| k))
        .collect();
    let id: Vec<&str> = rows.iter().map(|r| r.1.id.as_str()).collect();
    let church: Vec<Option<&str>> = rows.iter().map(|r| r.1.church.as_deref()).collect();
    let protected: Vec<bool> = rows.iter().map(|r| r.1.protected).collect();
    let spec: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    let digest: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    tx.execute(
        "INSERT INTO cwa_resources (workspace, address, kind, id, church, protected, spec, digest) \
         SELECT $1, a, k, i, c, p, s::jsonb, d \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::text[], $8::text[]) AS u(a, k, i, c, p, s, d) \
         ON CONFLICT (workspace, address) DO UPDATE SET kind = EXCLUDED.kind, id = EXCLUDED.id, \
         church = EXCLUDED.church, protected = EXCLUDED.protected, spec = EXCLUDED.spec, digest = EXCLUDED.digest",
        &[&ws, &address, &kind, &id, &church, &protected, &spec, &digest],
    )
    .await
    .map(|_| ())
}

/// What a resource row holds, hashed: a save rewrites only rows whose digest changed.
fn digest(r: &StateResource, spec: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        r.id.as_str(),
        r.church.as_deref().unwrap_or("\u{0}"),
        if r.protected { "p" } else { "-" },
        spec,
    ] {
        h.update(part.len().to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

pub async fn record(
    inner: &Arc<Inner>,
    generation: i64,
    entry: &JournalEntry,
) -> Result<(), StateError> {
    let mut guard = inner.client().await?;
    let client = guard.as_mut().expect("connected");
    let fail = inner.error("write the journal of");
    let text = serde_json::to_string(entry).map_err(|e| StateError::Corrupt {
        path: inner.target.shown(),
        detail: e.to_string(),
    })?;
    let phase = serde_json::to_value(entry.phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let tx = begin_fenced(client, inner, generation).await?;
    tx.execute(
        "INSERT INTO cwa_journal (workspace, generation, address, phase, reference, entry) \
         VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)",
        &[
            &inner.target.workspace,
            &generation,
            &entry.address,
            &phase,
            &entry.reference,
            &text,
        ],
    )
    .await
    .map_err(&fail)?;
    tx.commit().await.map_err(&fail)
}

pub async fn clear_journal(inner: &Arc<Inner>, generation: i64) -> Result<(), StateError> {
    let mut guard = inner.client().await?;
    let client = guard.as_mut().expect("connected");
    let fail = inner.error("clear the journal of");
    let tx = begin_fenced(client, inner, generation).await?;
    tx.execute(
        "DELETE FROM cwa_journal WHERE workspace = $1",
        &[&inner.target.workspace],
    )
    .await
    .map_err(&fail)?;
    tx.commit().await.map_err(&fail)
}

/// Appends audit entries in order, in one fenced transaction (a migration copies a whole log
/// at once): one statement per [`BATCH`] entries, their `seq` in the order given.
pub async fn audit(
    inner: &Arc<Inner>,
    generation: i64,
    entries: &[AuditEntry],
) -> Result<(), StateError> {
    let mut guard = inner.client().await?;
    let client = guard.as_mut().expect("connected");
    let fail = inner.error("write the audit log of");
    let tx = begin_fenced(client, inner, generation).await?;
    for chunk in entries.chunks(BATCH) {
        let column = |f: fn(&AuditEntry) -> Option<&str>| -> Vec<Option<&str>> {
            chunk.iter().map(f).collect()
        };
        tx.execute(
            "INSERT INTO cwa_audit (workspace, generation, time, operator, address, id, action, outcome) \
             SELECT $1, $2, t, o, a, i, c, r \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
             WITH ORDINALITY AS u(t, o, a, i, c, r, n) ORDER BY n",
            &[
                &inner.target.workspace,
                &generation,
                &column(|e| Some(e.time.as_str())),
                &column(|e| Some(e.operator.as_str())),
                &column(|e| Some(e.address.as_str())),
                &column(|e| e.id.as_deref()),
                &column(|e| Some(e.action.as_str())),
                &column(|e| Some(e.outcome.as_str())),
            ],
        )
        .await
        .map_err(&fail)?;
    }
    tx.commit().await.map_err(&fail)
}

pub async fn journal_entries(inner: &Arc<Inner>) -> Result<Vec<JournalEntry>, StateError> {
    let guard = inner.client().await?;
    let client = guard.as_ref().expect("connected");
    let rows = client
        .query(
            "SELECT entry::text FROM cwa_journal WHERE workspace = $1 ORDER BY seq",
            &[&inner.target.workspace],
        )
        .await
        .map_err(inner.error("read the journal of"))?;
    rows.iter()
        .map(|r| {
            serde_json::from_str(r.get(0)).map_err(|e| StateError::Corrupt {
                path: inner.target.shown(),
                detail: format!("a journal row: {e}"),
            })
        })
        .collect()
}

pub async fn audit_entries(inner: &Arc<Inner>) -> Result<Vec<AuditEntry>, StateError> {
    let guard = inner.client().await?;
    let client = guard.as_ref().expect("connected");
    let rows = client
        .query(
            "SELECT time, operator, address, id, action, outcome FROM cwa_audit \
             WHERE workspace = $1 ORDER BY seq",
            &[&inner.target.workspace],
        )
        .await
        .map_err(inner.error("read the audit log of"))?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            time: r.get(0),
            operator: r.get(1),
            address: r.get(2),
            id: r.get(3),
            action: r.get(4),
            outcome: r.get(5),
        })
        .collect())
}
