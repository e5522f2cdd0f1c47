//! `cwa state list|show|rm|unlock`.

use crate::cli::{GlobalArgs, StateCommand};
use crate::model::Address;
use crate::render;
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
    crate::out!("{}", render::state::list(&store.load()?));
    Ok(ExitStatus::Success)
}

fn show(store: &StateStore, address: &str) -> miette::Result<ExitStatus> {
    let addr = parse_address(address, "livekit_inbound_trunk.medhanialem")?;
    let state = store.load()?;
    let r = state
        .get(&addr)
        .ok_or_else(|| StateError::Unknown(addr.to_string()))?;
    let text = render::state::show(&addr, r).map_err(|e| miette::miette!("{e}"))?;
    crate::out!("{text}");
    Ok(ExitStatus::Success)
}

/// An address given on the command line, with an example of one when it does not parse.
fn parse_address(address: &str, example: &str) -> miette::Result<Address> {
    address
        .parse()
        .map_err(|e| miette::miette!(help = format!("an address looks like {example}"), "{e}"))
}

/// `cwa state rm ADDR`: forgets one owned address under the state lock, audited; live is
/// not touched. Protected objects are refused ([`crate::state::State::forget_address`]).
fn rm(global: &GlobalArgs, store: &StateStore, address: &str) -> miette::Result<ExitStatus> {
    let addr = parse_address(address, "livekit_dispatch_rule.medhanialem")?;
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
    crate::out!("{}", render::state::forgotten(&addr, &removed.id));
    Ok(ExitStatus::Success)
}

fn unlock(store: &StateStore, force: bool) -> miette::Result<ExitStatus> {
    let info = StateLock::force_unlock(store, force)?;
    crate::out!("{}", render::state::unlocked(&store.describe(), &info));
    Ok(ExitStatus::Success)
}

/// `cwa state migrate --to`: copies state to another backend ([`crate::state::migrate`]).
fn migrate(from: &StateStore, to: &StateStore) -> miette::Result<ExitStatus> {
    let done = crate::state::migrate(from, to)?;
    let (from, to) = (from.describe(), to.describe());
    crate::out!("{}", render::state::migrated(&done, &from, &to));
    Ok(ExitStatus::Success)
}
