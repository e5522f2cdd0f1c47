//! Views of a drift report (`cwa drift`): JSON, terminal and a GitHub issue body. The report
//! is computed by [`crate::drift`]; these only print it.

use std::fmt::Write;

use super::value_text;
use crate::drift::{Changed, DriftReport};

/// The report as versioned JSON.
pub fn json(report: &DriftReport) -> String {
    let mut out =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    out.push('\n');
    out
}

/// The report for a terminal; data escaped (see [`crate::render::escape`]).
pub fn human(report: &DriftReport) -> String {
    let t = super::escape::terminal;
    let mut out = String::new();
    if !report.drift {
        out.push_str("No drift: live matches lines.toml and state.\n");
        out.push_str(&kept_and_ignored(report, t));
        return out;
    }
    let _ = writeln!(out, "Drift: {}.\n", counts(report));
    if !report.changed.is_empty() {
        out.push_str("changed (declared -> live):\n");
        for c in &report.changed {
            let _ = writeln!(
                out,
                "  ~ {}{}",
                t(&c.address.to_string()),
                t(&id_suffix(c.id.as_deref()))
            );
            let _ = writeln!(
                out,
                "      {}: {} -> {}",
                t(&shown_key(c)),
                t(&declared_text(c)),
                t(&value_text(&c.live))
            );
        }
        out.push('\n');
    }
    if !report.missing.is_empty() {
        out.push_str("missing (not live):\n");
        for m in &report.missing {
            let _ = writeln!(
                out,
                "  - {}{}: {}",
                t(&m.address.to_string()),
                t(&id_suffix(m.id.as_deref())),
                t(&m.reason.to_string())
            );
        }
        out.push('\n');
    }
    if !report.unmanaged.is_empty() {
        out.push_str("unmanaged (live, neither declared nor owned):\n");
        for u in &report.unmanaged {
            let _ = writeln!(out, "  ? {} {} ({})", u.kind, t(&u.id), t(&u.label));
        }
        out.push('\n');
    }
    out.push_str(&kept_and_ignored(report, t));
    out.push_str(
        "`cwa plan` shows how apply would fix changed and missing objects; `cwa import` declares unmanaged ones.\n",
    );
    out
}

/// The report as a GitHub issue body.
pub fn markdown(report: &DriftReport) -> String {
    let mut out = String::from("### cwa drift\n\n");
    if !report.drift {
        out.push_str("✅ **No drift**: live matches `lines.toml` and `state/`.\n");
        return out;
    }
    let _ = writeln!(out, "⚠️ **Drift found**: {}.\n", counts(report));
    if !report.changed.is_empty() {
        out.push_str(
            "#### Changed\n\n| address | id | field | declared | live |\n|---|---|---|---|---|\n",
        );
        for c in &report.changed {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                code(&c.address.to_string()),
                c.id.as_deref().map(code).unwrap_or_default(),
                code(&shown_key(c)),
                cell(&declared_text(c)),
                cell(&value_text(&c.live))
            );
        }
        out.push('\n');
    }
    if !report.missing.is_empty() {
        out.push_str("#### Missing\n\n| address | id | why |\n|---|---|---|\n");
        for m in &report.missing {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                code(&m.address.to_string()),
                m.id.as_deref().map(code).unwrap_or_default(),
                cell(&m.reason.to_string())
            );
        }
        out.push('\n');
    }
    if !report.unmanaged.is_empty() {
        out.push_str("#### Unmanaged\n\n| kind | id | label |\n|---|---|---|\n");
        for u in &report.unmanaged {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                u.kind,
                code(&u.id),
                cell(&u.label)
            );
        }
        out.push('\n');
    }
    out.push_str("Run `cwa plan` to see how `cwa apply` would bring live back to `lines.toml`, or `cwa import` to declare unmanaged objects.\n");
    out
}

/// Numbers kept and `[ignore]` entries that took effect: listed, never drift.
fn kept_and_ignored(report: &DriftReport, t: fn(&str) -> String) -> String {
    let mut out = String::new();
    if !report.kept.is_empty() {
        out.push_str("kept (numbers whose line was removed; kept, not released; not drift):\n");
        for k in &report.kept {
            let why = k
                .declared
                .as_deref()
                .map_or("not declared under [kept] in lines.toml".to_string(), |r| {
                    format!("[kept]: {r}")
                });
            let _ = writeln!(
                out,
                "  = {}{} {}: {}",
                t(&k.address.to_string()),
                t(&id_suffix(k.id.as_deref())),
                t(&k.number),
                t(&why)
            );
        }
        out.push('\n');
    }
    if !report.ignored.is_empty() {
        out.push_str("ignored ([ignore] in lines.toml):\n");
        for i in &report.ignored {
            let _ = writeln!(out, "  {}: {}", t(&i.key), t(&i.reason));
        }
        out.push('\n');
    }
    out
}

fn counts(report: &DriftReport) -> String {
    format!(
        "{} changed field(s), {} missing, {} unmanaged",
        report.changed.len(),
        report.missing.len(),
        report.unmanaged.len()
    )
}

/// The changed field under the key lines.toml gives it (`auth_password_env`, `krisp`), as
/// plan diffs show it; the JSON report keeps the provider's field path.
fn shown_key(c: &Changed) -> String {
    super::toml_key(c.address.kind, &c.field)
}

fn declared_text(c: &Changed) -> String {
    if c.is_whole_object() {
        "(not declared)".into()
    } else if c.is_preserved() {
        format!("(not declared; last seen {})", value_text(&c.declared))
    } else {
        value_text(&c.declared)
    }
}

fn id_suffix(id: Option<&str>) -> String {
    id.map(|i| format!(" ({i})")).unwrap_or_default()
}

/// Data as inline code in Markdown, escaped (see [`crate::render::escape`]).
fn code(s: &str) -> String {
    super::escape::markdown_code(s)
}

/// Data as text in Markdown (a table cell too), escaped.
fn cell(s: &str) -> String {
    super::escape::markdown(s)
}
