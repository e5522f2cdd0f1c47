//! The plan as a pull-request comment: a summary table, the change graph in Mermaid, and the
//! details of each change folded away.

use std::fmt::Write;

use super::{money, value_text};
use crate::plan::{Action, Change, Plan, Severity};

/// Renders the plan as GitHub-flavoured Markdown.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let verdict = if plan.is_error() {
        "❌ **Plan refused**"
    } else if plan.has_changes() {
        "📝 **Changes planned**"
    } else {
        "✅ **No changes**"
    };
    let source = if plan.refreshed {
        "live services"
    } else {
        "state/ only (no credentials: `--refresh=false`)"
    };
    let _ = writeln!(
        out,
        "### cwa plan\n\n{verdict}, planned against {source}. Monthly cost: {}.\n",
        money(plan.monthly_cost_delta_cents)
    );
    summary_table(&mut out, plan);
    errors(&mut out, plan);
    mermaid(&mut out, plan);
    details(&mut out, plan);
    out
}

fn summary_table(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "| action | count |\n|---|---:|");
    for action in Action::ALL {
        if let Some(n) = plan.summary.get(&action).filter(|n| **n > 0) {
            let _ = writeln!(out, "| `{}` {} | {n} |", action.symbol(), action.as_str());
        }
    }
    out.push('\n');
}

fn errors(out: &mut String, plan: &Plan) {
    for f in plan.errors.iter().chain(&plan.checks) {
        let icon = if f.severity == Severity::Error {
            "❌"
        } else {
            "⚠️"
        };
        let _ = writeln!(out, "- {icon} `{}` {}", f.code, f.message);
    }
    if !plan.errors.is_empty() || !plan.checks.is_empty() {
        out.push('\n');
    }
}

fn mermaid(out: &mut String, plan: &Plan) {
    let shown: Vec<usize> = (0..plan.changes.len())
        .filter(|i| plan.changes[*i].action.changes_anything())
        .collect();
    if shown.is_empty() {
        return;
    }
    let _ = writeln!(out, "```mermaid\nflowchart LR");
    for &i in &shown {
        let c = &plan.changes[i];
        let _ = writeln!(
            out,
            "  n{i}[\"{} {}\"]",
            c.action.symbol().replace('<', "&lt;"),
            c.address
        );
    }
    for (from, to) in &plan.edges {
        if shown.contains(from) && shown.contains(to) {
            let _ = writeln!(out, "  n{from} --> n{to}");
        }
    }
    let _ = writeln!(out, "```\n");
}

fn details(out: &mut String, plan: &Plan) {
    let changes: Vec<&Change> = plan
        .actionable()
        .chain(plan.changes.iter().filter(|c| c.action == Action::Retain))
        .collect();
    if changes.is_empty() && plan.unmanaged.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<details><summary>Details ({} changes)</summary>\n",
        changes.len()
    );
    for c in changes {
        let id =
            c.id.as_deref()
                .map(|i| format!(" (`{i}`)"))
                .unwrap_or_default();
        let irreversible = if c.irreversible {
            " **irreversible**"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "- `{}` **{}**{id}{irreversible}: {}",
            c.action.symbol(),
            c.address,
            c.reason
        );
        for f in &c.fields {
            let _ = writeln!(
                out,
                "  - `{}`: `{}` → `{}`",
                f.path,
                value_text(&f.before),
                value_text(&f.after)
            );
        }
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "\n**Unmanaged** (live, neither declared nor owned; never touched):\n"
        );
        for u in &plan.unmanaged {
            let _ = writeln!(out, "- `{}` `{}` {}", u.kind, u.id, u.label);
        }
    }
    let _ = writeln!(out, "\n</details>");
}
