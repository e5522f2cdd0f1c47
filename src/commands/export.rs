//! `cwa export registry`: the number -> church id map the voice agent routes calls with,
//! generated from lines.toml (and the numbers state pinned for `"auto"` lines), no network.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::cli::{ExportCommand, GlobalArgs, RegistryFormat};
use crate::config;
use crate::model::{Desired, Kind, Spec, E164};
use crate::state::{State, StateStore};
use crate::ExitStatus;

/// One registry entry: the church id and the church name (for the Python comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub church_id: uuid::Uuid,
    pub church_name: String,
}

/// Runs `cwa export …`.
pub fn export(global: &GlobalArgs, command: &ExportCommand) -> miette::Result<ExitStatus> {
    let ExportCommand::Registry {
        format,
        to,
        table,
        church_column,
        number_column,
        dry_run,
    } = command;
    let loaded = config::load(&global.config)?;
    for warning in &loaded.warnings {
        crate::errln!("{warning:?}");
    }
    let state = StateStore::open(&global.state_dir, global.workspace.as_deref())?.load()?;
    let (registry, unpinned) = registry(&loaded.desired, &state);
    for addr in unpinned {
        crate::errln!(
            "note: {addr} is an \"auto\" number not bought yet; it is not in the registry"
        );
    }
    if let Some(url) = to {
        let spec = crate::state::registry::RegistryTable {
            table: table.clone(),
            church_column: church_column.clone(),
            number_column: number_column.clone(),
        };
        return to_table(url, &spec, &registry, *dry_run);
    }
    crate::out!(
        "{}",
        match format {
            RegistryFormat::Json => json(&registry),
            RegistryFormat::Python => python(&registry),
        }
    );
    Ok(ExitStatus::Success)
}

/// `--to URL`: the church -> number rows (a church's first number when it has several), the
/// diff printed, then written unless `dry_run`.
fn to_table(
    url: &std::path::Path,
    spec: &crate::state::registry::RegistryTable,
    registry: &BTreeMap<E164, RegistryEntry>,
    dry_run: bool,
) -> miette::Result<ExitStatus> {
    use crate::state::location::{self, Location};
    use crate::state::registry::RegistryChange;
    let Location::Postgres(target) = location::parse(url, None)? else {
        return Err(miette::miette!(
            help = "give a postgres://USER@HOST/DB URL",
            "--to takes a PostgreSQL URL"
        ));
    };
    let mut wanted = BTreeMap::new();
    for (number, e) in registry {
        wanted
            .entry(e.church_id.to_string())
            .or_insert_with(|| number.to_string());
    }
    let changes = crate::state::registry::export(&target, spec, wanted, dry_run)?;
    for c in &changes {
        match c {
            RegistryChange::Insert { church, number } => {
                crate::outln!("+ {church}: {number} (new row)")
            }
            RegistryChange::Set { church, from, to } => crate::outln!(
                "~ {church}: {} -> {to}",
                from.as_deref().unwrap_or("(none)")
            ),
            RegistryChange::Clear { church, number } => {
                crate::outln!("- {church}: {number} -> (none) (no longer routed by cwa)")
            }
        }
    }
    crate::outln!(
        "{} change(s) to {}.{} in {}{}",
        changes.len(),
        spec.table,
        spec.number_column,
        location::redact(&target.url),
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    Ok(ExitStatus::Success)
}

/// Every church number with its church, sorted by number; and the addresses of `"auto"`
/// numbers that state has not pinned yet.
pub fn registry(desired: &Desired, state: &State) -> (BTreeMap<E164, RegistryEntry>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut unpinned = Vec::new();
    for r in desired.resources.values() {
        let (Some(key), Spec::TelnyxNumber(n)) = (&r.church, &r.spec) else {
            continue;
        };
        let Some(church) = desired.churches.iter().find(|c| &c.key == key) else {
            continue;
        };
        let number = n.number.fixed().cloned().or_else(|| pinned(state, &r.addr));
        match number {
            Some(number) => {
                out.insert(
                    number,
                    RegistryEntry {
                        church_id: church.id,
                        church_name: church.name.clone(),
                    },
                );
            }
            None => unpinned.push(r.addr.to_string()),
        }
    }
    (out, unpinned)
}

fn pinned(state: &State, addr: &crate::model::Address) -> Option<E164> {
    debug_assert_eq!(addr.kind, Kind::TelnyxNumber);
    match state.get(addr).map(|r| &r.spec) {
        Some(Spec::TelnyxNumber(n)) => n.number.fixed().cloned(),
        _ => None,
    }
}

/// `{"+1…": "<uuid>", …}`.
pub fn json(registry: &BTreeMap<E164, RegistryEntry>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = registry
        .iter()
        .map(|(n, e)| (n.to_string(), e.church_id.to_string().into()))
        .collect();
    let mut out = serde_json::to_string_pretty(&map).unwrap_or_else(|_| "{}".into());
    out.push('\n');
    out
}

/// A Python dict literal to paste into the agent's session.py, church names in comments.
pub fn python(registry: &BTreeMap<E164, RegistryEntry>) -> String {
    let mut out = String::from(
        "# Generated by `cwa export registry --format python` from lines.toml: do not edit.\nPHONE_REGISTRY = {\n",
    );
    for (number, e) in registry {
        let _ = writeln!(
            out,
            "    \"{number}\": \"{}\",  # {}",
            e.church_id,
            e.church_name.replace('\n', " ")
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const LINES: &str = r#"
version = 1
[defaults]
agent = "a"
[livekit]
project_id = "p_abc"
[telnyx.fqdn_connection.lk]
name = "LK"
[telnyx.fqdn.lk]
connection = "lk"
fqdn = "abc.sip.livekit.cloud"
default_primary = true
[church.b]
id = "00000000-0000-4000-8000-000000000002"
name = "Beta"
number = "+17473897673"
[church.a]
id = "00000000-0000-4000-8000-000000000001"
name = "Alpha"
number = "+14144007103"
[church.c]
id = "00000000-0000-4000-8000-000000000003"
name = "Gamma"
number = "auto"
area_code = "734"
"#;

    #[test]
    fn numbers_are_sorted_and_auto_numbers_wait_for_state() {
        let loaded = config::parse(Path::new("t.toml"), LINES).unwrap();
        let (reg, unpinned) = registry(&loaded.desired, &State::new());
        let numbers: Vec<&str> = reg.keys().map(E164::as_str).collect();
        assert_eq!(numbers, ["+14144007103", "+17473897673"]);
        assert_eq!(unpinned, ["telnyx_number.c"]);
        let py = python(&reg);
        assert!(py.contains("\"+14144007103\": \"00000000-0000-4000-8000-000000000001\",  # Alpha"));
        let parsed: serde_json::Value = serde_json::from_str(&json(&reg)).unwrap();
        assert_eq!(
            parsed["+17473897673"],
            "00000000-0000-4000-8000-000000000002"
        );
    }
}
