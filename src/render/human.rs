//! The plan as a reviewer reads it in a terminal: grouped by church, field diffs, secrets as
//! `(sensitive)`, multi-line values diffed line by line, the monthly cost delta.
//!
//! Every piece of data goes through [`escape::terminal`] (as `t`) before it is colored: a name
//! carrying an escape sequence, a window-title change or a line erase prints as visible text.

use std::collections::BTreeMap;
use std::fmt::Write;

use owo_colors::OwoColorize;
use serde_json::Value;

use super::escape::terminal as t;
use super::{created_fields, money, summary_line, value_text, Source};
use crate::model::Kind;
use crate::plan::{Action, Change, FieldChange, Finding, Plan, Severity};

/// How to print.
#[derive(Debug, Clone, Default)]
pub struct HumanOptions {
    pub color: bool,
    /// Church key -> church name, for group headings.
    pub church_names: BTreeMap<String, String>,
    /// Show unchanged resources too.
    pub show_unchanged: bool,
    /// Whether the live side was the sandbox (said in the heading, instead of "live services").
    pub sandbox: bool,
}

/// Renders the plan for a terminal.
pub fn human(plan: &Plan, opts: &HumanOptions) -> String {
    let mut out = String::new();
    let source = match super::source_of(plan, opts.sandbox) {
        Source::Live => "live services",
        Source::Sandbox => "the local sandbox (--sandbox), not the real services",
        Source::StateOnly => "state/ only (--refresh=false)",
    };
    let _ = writeln!(out, "cwa plan against {source}\n");
    for (group, changes) in groups(plan, opts) {
        let _ = writeln!(out, "{}", paint(&t(&group), Style::Heading, opts.color));
        for change in changes {
            render_change(&mut out, change, opts);
            render_notes(&mut out, plan, change, opts);
        }
        out.push('\n');
    }
    render_removals(&mut out, plan, opts);
    render_unprotect(&mut out, plan, opts);
    render_unmanaged(&mut out, plan, opts);
    render_findings(&mut out, "Checks", &plan.checks, opts);
    render_findings(&mut out, "Errors", &plan.errors, opts);
    let _ = writeln!(
        out,
        "Monthly cost: {}",
        money(plan.monthly_cost_delta_cents)
    );
    let verdict = if plan.is_error() {
        paint(
            "Plan refused: fix the errors above.",
            Style::Delete,
            opts.color,
        )
    } else if plan.has_changes() {
        format!("Plan: {}.", summary_line(plan))
    } else {
        paint(
            "No changes. Live matches lines.toml.",
            Style::Create,
            opts.color,
        )
    };
    let _ = writeln!(out, "{verdict}");
    out
}

/// Changes grouped under "Church <name>" headings, account-level objects last.
fn groups<'a>(plan: &'a Plan, opts: &HumanOptions) -> Vec<(String, Vec<&'a Change>)> {
    let mut by_group: BTreeMap<(u8, String), Vec<&Change>> = BTreeMap::new();
    for change in plan.changes.iter().filter(|c| shown(c, opts)) {
        let key = match &change.church {
            Some(key) => {
                let name = opts
                    .church_names
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| key.clone());
                (0, format!("Church {name} ({key})"))
            }
            None => (1, "Account and shared objects".to_string()),
        };
        by_group.entry(key).or_default().push(change);
    }
    by_group
        .into_iter()
        .map(|((_, name), v)| (name, v))
        .collect()
}

fn shown(change: &Change, opts: &HumanOptions) -> bool {
    if change.irreversible || change.action == Action::Retain {
        return false;
    }
    match change.action {
        Action::NoOp => opts.show_unchanged,
        Action::Verify => !change.fields.is_empty() || opts.show_unchanged || change.protected,
        _ => true,
    }
}

fn style_of(action: Action) -> Style {
    match action {
        Action::Create | Action::Adopt => Style::Create,
        Action::Update | Action::Replace => Style::Update,
        Action::Delete | Action::Forget => Style::Delete,
        _ => Style::Dim,
    }
}

fn render_change(out: &mut String, change: &Change, opts: &HumanOptions) {
    let id = change
        .id
        .as_deref()
        .map(|id| format!(" ({})", t(id)))
        .unwrap_or_default();
    let lock = if change.protected { " [protected]" } else { "" };
    let head = format!(
        "{:>3} {}{id}{lock}",
        change.action.symbol(),
        t(&change.address.to_string())
    );
    let _ = writeln!(
        out,
        "{}  {}",
        paint(&head, style_of(change.action), opts.color),
        paint(
            &format!(
                "# {}: {}",
                change.action.as_str(),
                t(&change.reason.to_string())
            ),
            Style::Dim,
            opts.color
        )
    );
    if change.action == Action::Create {
        render_created(out, change, opts);
    }
    for field in &change.fields {
        render_field(out, change.kind, field, opts);
    }
}

/// The plan's notes about this change, at its line (an `"auto"` number its area code cannot
/// fill now); they are listed under Checks as well.
fn render_notes(out: &mut String, plan: &Plan, change: &Change, opts: &HumanOptions) {
    let address = change.address.to_string();
    for f in plan.checks.iter().filter(|f| {
        f.code == crate::session::preconditions::BEST_EFFORT_ONLY
            && f.address.as_deref() == Some(&address)
    }) {
        let _ = writeln!(
            out,
            "      {}",
            paint(
                &format!("note: {}", t(&f.message)),
                Style::Update,
                opts.color
            )
        );
    }
}

fn render_created(out: &mut String, change: &Change, opts: &HumanOptions) {
    for (key, value) in created_fields(change) {
        let _ = writeln!(
            out,
            "      {} = {}",
            t(&key),
            paint(&t(&value), Style::Create, opts.color)
        );
    }
}

fn render_field(out: &mut String, kind: Kind, field: &FieldChange, opts: &HumanOptions) {
    let (before, after) = (pretty(&field.before), pretty(&field.after));
    let path = super::toml_key(kind, &field.path);
    if before.contains('\n') || after.contains('\n') {
        let _ = writeln!(out, "      {}:", t(&path));
        let diff = similar::TextDiff::from_lines(&before, &after);
        for change in diff.iter_all_changes() {
            let (sign, style) = match change.tag() {
                similar::ChangeTag::Delete => ("-", Style::Delete),
                similar::ChangeTag::Insert => ("+", Style::Create),
                similar::ChangeTag::Equal => (" ", Style::Dim),
            };
            let line = format!(
                "        {sign} {}",
                t(change.value().trim_end_matches('\n'))
            );
            let _ = writeln!(out, "{}", paint(&line, style, opts.color));
        }
    } else {
        let _ = writeln!(
            out,
            "      {}: {} -> {}",
            t(&path),
            paint(&t(&before), Style::Delete, opts.color),
            paint(&t(&after), Style::Create, opts.color)
        );
    }
}

/// Compound values print as indented JSON so that a change inside them diffs by line.
fn pretty(v: &Value) -> String {
    match v {
        Value::Array(a) if a.iter().any(|x| x.is_object() || x.is_array()) => {
            serde_json::to_string_pretty(v).unwrap_or_default()
        }
        Value::Object(_) => serde_json::to_string_pretty(v).unwrap_or_default(),
        other => value_text(other),
    }
}

fn render_removals(out: &mut String, plan: &Plan, opts: &HumanOptions) {
    let released: Vec<&Change> = plan.changes.iter().filter(|c| c.irreversible).collect();
    if !released.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            paint(
                "Irreversible: numbers to RELEASE (anyone can buy them afterwards)",
                Style::Delete,
                opts.color
            )
        );
        for c in released {
            let _ = writeln!(
                out,
                "  - {} ({})  {}",
                t(&c.address.to_string()),
                t(c.id.as_deref().unwrap_or("")),
                t(&label(c))
            );
        }
        out.push('\n');
    }
    let kept: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Retain)
        .collect();
    if !kept.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            paint(
                "Numbers kept, not released (pass --release-numbers to release)",
                Style::Heading,
                opts.color
            )
        );
        for c in kept {
            let _ = writeln!(
                out,
                "  = {} ({})  {}",
                t(&c.address.to_string()),
                t(c.id.as_deref().unwrap_or("")),
                t(&label(c))
            );
        }
        out.push('\n');
    }
}

/// Ids leaving the hard lock: their own section, carried out only with `--unprotect ID`.
fn render_unprotect(out: &mut String, plan: &Plan, opts: &HumanOptions) {
    if plan.unprotect.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{}",
        paint(
            "Unprotect (still locked; apply carries this out only with --unprotect ID)",
            Style::Delete,
            opts.color
        )
    );
    for u in &plan.unprotect {
        let _ = writeln!(
            out,
            "  unprotect {}  (remembered in: {}; was: {})",
            u.id,
            u.remembered_in.join(", "),
            u.reason
        );
    }
    out.push('\n');
}

fn label(change: &Change) -> String {
    change
        .before
        .as_ref()
        .map(|s| s.label())
        .unwrap_or_default()
}

fn render_unmanaged(out: &mut String, plan: &Plan, opts: &HumanOptions) {
    if plan.unmanaged.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{}",
        paint(
            "Unmanaged (live, neither declared nor owned; never touched)",
            Style::Heading,
            opts.color
        )
    );
    for u in &plan.unmanaged {
        let ignored = u
            .ignored
            .as_deref()
            .map(|why| format!("  (ignored: {})", t(why)));
        let ignored = ignored.unwrap_or_default();
        let _ = writeln!(out, "  {} {}  {}{ignored}", u.kind, t(&u.id), t(&u.label));
    }
    out.push('\n');
}

fn render_findings(out: &mut String, title: &str, findings: &[Finding], opts: &HumanOptions) {
    if findings.is_empty() {
        return;
    }
    let _ = writeln!(out, "{}", paint(title, Style::Heading, opts.color));
    for f in findings {
        let (tag, style) = match f.severity {
            Severity::Error => ("error", Style::Delete),
            Severity::Warning => ("warning", Style::Update),
        };
        let _ = writeln!(
            out,
            "  {} [{}] {}",
            paint(tag, style, opts.color),
            t(&f.code),
            t(&f.message)
        );
        if let Some(help) = &f.help {
            let _ = writeln!(out, "      help: {}", t(help));
        }
    }
    out.push('\n');
}

#[derive(Clone, Copy)]
enum Style {
    Heading,
    Create,
    Update,
    Delete,
    Dim,
}

fn paint(text: &str, style: Style, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    match style {
        Style::Heading => text.bold().to_string(),
        Style::Create => text.green().to_string(),
        Style::Update => text.yellow().to_string(),
        Style::Delete => text.red().to_string(),
        Style::Dim => text.dimmed().to_string(),
    }
}
