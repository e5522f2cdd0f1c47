//! `cwa state list|show|rm|unlock`.

use crate::cli::{GlobalArgs, StateCommand};
use crate::model::Address;
use crate::state::{AuditEntry, Journal, StateError, StateLock, StateStore};
use crate::ExitStatus;

/// Runs a `cwa state` subcommand. None of them touches the network.
pub fn state(global: &GlobalArgs, command: &StateCommand) -> miette::Result<ExitStatus> {
    let store = StateStore::open(&global.state_dir, global.workspace.as_deref())?;
    match command {
        StateCommand::List => list(&store),
        StateCommand::Show { address } => show(&store, address),
        StateCommand::Rm { address } => rm(global, &store, address),
        StateCommand::Unlock { force } => unlock(&store, *force),
        StateCommand::Migrate { to, to_workspace } => {
            let to = StateStore::open(to, to_workspace.as_deref())?;
            migrate(&store, &to)
        }
    }
}

fn list(store: &StateStore) -> miette::Result<ExitStatus> {
    let state = store.load()?;
    for (addr, r) in &state.resources {
        let lock = if r.protected || state.is_protected(&r.id) {
            "  [protected]"
        } else {
            ""
        };
        // Addresses, ids and labels come from state/ and the live account: data, never
        // terminal control.
        let term = crate::render::escape::terminal;
        crate::outln!(
            "{}  {}  {}{lock}",
            term(&addr.to_string()),
            term(&r.id),
            term(&r.spec.label())
        );
    }
    crate::outln!(
        "{} resources, serial {}, lineage {}",
        state.resources.len(),
        state.serial,
        state.lineage
    );
    Ok(ExitStatus::Success)
}

fn show(store: &StateStore, address: &str) -> miette::Result<ExitStatus> {
    let addr: Address = address.parse().map_err(|e| {
        miette::miette!(
            help = "an address looks like livekit_inbound_trunk.medhanialem",
            "{e}"
        )
    })?;
    let state = store.load()?;
    let r = state
        .get(&addr)
        .ok_or_else(|| StateError::Unknown(addr.to_string()))?;
    let json = serde_json::to_string_pretty(r).map_err(|e| miette::miette!("{e}"))?;
    crate::outln!(
        "{}\n{}",
        crate::render::escape::terminal(&addr.to_string()),
        json_visible(&json)
    );
    Ok(ExitStatus::Success)
}

/// JSON whose strings carry no hidden control character: serde_json escapes C0 controls but
/// leaves DEL, C1 controls, line separators and bidi overrides (U+202E) raw, which a terminal
/// or a reviewer's viewer acts on. Each becomes `\uXXXX` (all are in the BMP), so the text is
/// still the same JSON value; the structural newlines of the pretty form are kept. Which
/// characters are hidden is `render::escape::is_hidden_control`'s rule.
fn json_visible(json: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c != '\n' && crate::render::escape::is_hidden_control(c) {
            let _ = write!(out, "\\u{:04X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `cwa state rm ADDR`: forgets one owned address under the state lock, audited; live is
/// not touched. Protected objects are refused ([`crate::state::State::forget_address`]).
fn rm(global: &GlobalArgs, store: &StateStore, address: &str) -> miette::Result<ExitStatus> {
    let addr: Address = address.parse().map_err(|e| {
        miette::miette!(
            help = "an address looks like livekit_dispatch_rule.medhanialem",
            "{e}"
        )
    })?;
    let declared: Vec<String> = if global.config.exists() {
        crate::config::load(&global.config)?
            .desired
            .protected
            .into_iter()
            .map(|p| p.id)
            .collect()
    } else {
        Vec::new()
    };
    let _lock = StateLock::acquire(store, "state rm", std::time::Duration::ZERO)?;
    let journal = Journal::new(store);
    let mut state = store.load()?;
    state.remember_audit(&journal.audit_entries()?);
    let removed = state.forget_address(&addr, &declared)?;
    // No secret changed and no session (with its fingerprint key) was opened: the
    // fingerprints and their key id are kept as they are.
    store.save_copy(&mut state)?;
    journal.audit(&AuditEntry {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        operator: crate::state::operator(),
        address: addr.to_string(),
        id: Some(removed.id.clone()),
        action: "state rm".into(),
        outcome: "ok".into(),
    })?;
    let term = crate::render::escape::terminal;
    crate::outln!(
        "Stopped managing {} ({}); it is still live and now shows as unmanaged.",
        term(&addr.to_string()),
        term(&removed.id)
    );
    Ok(ExitStatus::Success)
}

fn unlock(store: &StateStore, force: bool) -> miette::Result<ExitStatus> {
    let info = StateLock::force_unlock(store, force)?;
    crate::outln!(
        "Removed the lock on {} held by {} (pid {}, {} since {}).",
        store.describe(),
        info.holder,
        info.pid,
        info.operation,
        info.time
    );
    Ok(ExitStatus::Success)
}

/// `cwa state migrate --to`: copies state to another backend ([`crate::state::migrate`]).
fn migrate(from: &StateStore, to: &StateStore) -> miette::Result<ExitStatus> {
    let done = crate::state::migrate(from, to)?;
    crate::outln!(
        "Copied {} resources and {} audit entries from {} to {} (lineage {}, serial {}); read back and identical. {} is unchanged.",
        done.resources,
        done.audit_entries,
        from.describe(),
        to.describe(),
        done.lineage,
        done.serial,
        from.describe()
    );
    Ok(ExitStatus::Success)
}
