//! `cwa fmt [--check]`.

use miette::{IntoDiagnostic, LabeledSpan, NamedSource, WrapErr};

use crate::cli::{FmtArgs, GlobalArgs};
use crate::config::fmt;
use crate::ExitStatus;

/// Rewrites lines.toml in canonical layout (atomically, only when it changes), or with
/// `--check` prints the difference and exits 1 when it is not canonical, writing nothing.
pub fn fmt(global: &GlobalArgs, args: &FmtArgs) -> miette::Result<ExitStatus> {
    let path = &global.config;
    let text = std::fs::read_to_string(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let formatted = fmt::format(&text).map_err(|e| {
        let labels = e
            .span
            .clone()
            .map(|s| LabeledSpan::new_with_span(Some("here".into()), s));
        miette::miette!(
            labels = labels.into_iter().collect::<Vec<_>>(),
            code = "cwa::fmt::syntax",
            help = "fix the TOML syntax first; `cwa validate` reports every problem",
            "{} is not valid TOML: {}",
            path.display(),
            e.message.trim()
        )
        .with_source_code(NamedSource::new(path.display().to_string(), text.clone()))
    })?;
    if formatted == text {
        if args.check {
            crate::outln!("{}", crate::render::fmt_formatted(path));
        }
        return Ok(ExitStatus::Success);
    }
    if args.check {
        let name = path.display().to_string();
        crate::out!("{}", crate::render::fmt_diff(&text, &formatted, &name));
        crate::errln!("{}", crate::render::fmt_not_formatted(path));
        return Ok(ExitStatus::Failure);
    }
    crate::session::write_file(path, &formatted)?;
    crate::outln!("{}", path.display());
    Ok(ExitStatus::Success)
}
