//! `cwa validate`.

use crate::cli::GlobalArgs;
use crate::config;
use crate::ExitStatus;

/// Parses and checks lines.toml without the network: prints warnings and a one-line summary
/// and exits 0 when valid; a failed validation returns the diagnostic (every problem, each
/// pointing at its line) so main prints it and exits 1.
pub fn validate(global: &GlobalArgs) -> miette::Result<ExitStatus> {
    let loaded = config::load(&global.config)?;
    crate::output::stderr(&crate::render::lint_warnings(&loaded.warnings));
    crate::outln!("valid: {}", crate::render::validated(&loaded));
    Ok(ExitStatus::Success)
}
