//! `cwa export registry`: the number -> church id map the voice agent routes calls with,
//! generated from lines.toml (and the numbers state pinned for `"auto"` lines), no network.

use std::collections::BTreeMap;

use crate::cli::{ExportCommand, GlobalArgs, RegistryFormat};
use crate::config;
use crate::model::E164;
use crate::registry::{self, RegistryEntry};
use crate::render;
use crate::state::StateStore;
use crate::ExitStatus;

/// Runs `cwa export …`.
pub fn export(global: &GlobalArgs, command: &ExportCommand) -> miette::Result<ExitStatus> {
    let ExportCommand::Registry {
        format,
        to,
        table,
        church_column,
        number_column,
        dry_run,
    } = command
    else {
        return auto_add(global);
    };
    let loaded = config::load(&global.config)?;
    crate::output::stderr(&crate::render::lint_warnings(&loaded.warnings));
    let state = StateStore::open(&global.state_dir, global.workspace.as_deref())?.load()?;
    let (registry, unpinned) = registry::registry(&loaded.desired, &state);
    for addr in unpinned {
        crate::errln!("{}", render::registry::unpinned(&addr));
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
            RegistryFormat::Json => render::registry::json(&registry),
            RegistryFormat::Python => render::registry::python(&registry),
        }
    );
    Ok(ExitStatus::Success)
}

/// `--to URL`: the church -> number rows (a church's first number when it has several), the
/// diff printed first, then written unless `dry_run`.
fn to_table(
    url: &std::path::Path,
    spec: &crate::state::registry::RegistryTable,
    registry: &BTreeMap<E164, RegistryEntry>,
    dry_run: bool,
) -> miette::Result<ExitStatus> {
    use crate::state::location::{self, Location};
    let Location::Postgres(target) = location::parse(url, None)? else {
        return Err(miette::miette!(
            help = "give a postgres://USER@HOST/DB URL",
            "--to takes a PostgreSQL URL"
        ));
    };
    let (shown_spec, url) = (spec.clone(), location::redact(&target.url));
    let show = Box::new(move |changes: &[crate::state::registry::RegistryChange]| {
        crate::out!(
            "{}",
            render::registry::table_changes(changes, &shown_spec, &url, dry_run)
        );
    });
    crate::state::registry::export(&target, spec, registry::table_rows(registry), dry_run, show)?;
    Ok(ExitStatus::Success)
}

/// `cwa export auto-add`: `[policy] auto_add` of a valid lines.toml (`pr` or `apply`), for the
/// provisioning workflow to choose its path by.
fn auto_add(global: &GlobalArgs) -> miette::Result<ExitStatus> {
    let loaded = config::load(&global.config)?;
    crate::outln!("{}", loaded.desired.policy.auto_add.as_str());
    Ok(ExitStatus::Success)
}
