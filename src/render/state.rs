//! Views of `cwa state list|show|rm|unlock|migrate`. Addresses, ids and labels come from
//! state/ and the live account: data, passed through [`escape`](super::escape), never terminal
//! control.

use std::fmt::Write;

use super::escape::{json_visible, terminal};
use crate::model::Address;
use crate::state::{LockInfo, LockNotice, Migrated, State, StateResource};

/// `cwa state list`: one line per owned address (`[protected]` when hard-locked), then the
/// count, serial and lineage.
pub fn list(state: &State) -> String {
    let mut out = String::new();
    for (addr, r) in &state.resources {
        let lock = if r.protected || state.is_protected(&r.id) {
            "  [protected]"
        } else {
            ""
        };
        let (addr, id, label) = (terminal(&addr.to_string()), terminal(&r.id), r.spec.label());
        let _ = writeln!(out, "{addr}  {id}  {}{lock}", terminal(&label));
    }
    let (count, serial, lineage) = (state.resources.len(), state.serial, &state.lineage);
    let _ = writeln!(out, "{count} resources, serial {serial}, lineage {lineage}");
    out
}

/// `cwa state show ADDR`: the address, then its state entry as pretty JSON with no hidden
/// control character in it ([`json_visible`]).
pub fn show(addr: &Address, resource: &StateResource) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string_pretty(resource)?;
    Ok(format!(
        "{}\n{}\n",
        terminal(&addr.to_string()),
        json_visible(&json)
    ))
}

/// `cwa state rm ADDR`: what stopped being managed.
pub fn forgotten(addr: &Address, id: &str) -> String {
    format!(
        "Stopped managing {} ({}); it is still live and now shows as unmanaged.\n",
        terminal(&addr.to_string()),
        terminal(id)
    )
}

/// `cwa state unlock`: whose lock was removed, on which state.
pub fn unlocked(state: &str, info: &LockInfo) -> String {
    format!(
        "Removed the lock on {state} held by {} (pid {}, {} since {}).\n",
        info.holder, info.pid, info.operation, info.time
    )
}

/// `cwa state migrate --to`: what was copied and checked.
pub fn migrated(done: &Migrated, from: &str, to: &str) -> String {
    format!(
        "Copied {} resources and {} audit entries from {from} to {to} (lineage {}, serial {}); read back and identical. {from} is unchanged.\n",
        done.resources, done.audit_entries, done.lineage, done.serial
    )
}

/// A lock or lease notice (`state::LockNotice`), as the warning line cwa prints on stderr.
pub fn lock_notice(notice: &LockNotice) -> String {
    match notice {
        LockNotice::LockTakenOver { stale } => format!(
            "warning: taking over the lock left by {} (pid {}, since {}): that process is no longer running on this machine",
            stale.holder, stale.pid, stale.time
        ),
        LockNotice::LeaseTakenOver {
            target,
            previous,
            expired_at,
            from,
            to,
        } => format!(
            "warning: taking over the lease on {target} held by {} (pid {}, {} since {}), which expired at {expired_at}; generation {from} -> {to}. What it sent is reconciled from the journal before planning",
            previous.holder, previous.pid, previous.operation, previous.time
        ),
        LockNotice::LeaseLost { target, generation } => format!(
            "warning: the lease on {target} was taken over by another cwa (this process held generation {generation}); nothing more this run does is written"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> LockInfo {
        LockInfo {
            holder: "ci@build-7".into(),
            pid: 4242,
            time: "2026-12-02T10:00:00Z".into(),
            operation: "apply".into(),
            started: None,
        }
    }

    /// The words of each lock notice, as cwa has always printed them (tests and people grep
    /// for them): the lock now decides, this view says.
    #[test]
    fn lock_notices_read_as_they_always_did() {
        assert_eq!(
            lock_notice(&LockNotice::LockTakenOver { stale: info() }),
            "warning: taking over the lock left by ci@build-7 (pid 4242, since 2026-12-02T10:00:00Z): that process is no longer running on this machine"
        );
        assert_eq!(
            lock_notice(&LockNotice::LeaseTakenOver {
                target: "postgres://cwa@db/cwa workspace main".into(),
                previous: info(),
                expired_at: "2026-12-02 10:01:00+00".into(),
                from: 6,
                to: 7,
            }),
            "warning: taking over the lease on postgres://cwa@db/cwa workspace main held by ci@build-7 (pid 4242, apply since 2026-12-02T10:00:00Z), which expired at 2026-12-02 10:01:00+00; generation 6 -> 7. What it sent is reconciled from the journal before planning"
        );
        assert_eq!(
            lock_notice(&LockNotice::LeaseLost {
                target: "postgres://cwa@db/cwa workspace main".into(),
                generation: 6,
            }),
            "warning: the lease on postgres://cwa@db/cwa workspace main was taken over by another cwa (this process held generation 6); nothing more this run does is written"
        );
    }
}
