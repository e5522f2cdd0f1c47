//! Views of `cwa state list|show|rm|unlock|migrate`. Addresses, ids and labels come from
//! state/ and the live account: data, passed through [`escape`](super::escape), never terminal
//! control.

use std::fmt::Write;

use super::escape::{json_visible, terminal};
use crate::model::Address;
use crate::state::{LockInfo, Migrated, State, StateResource};

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
