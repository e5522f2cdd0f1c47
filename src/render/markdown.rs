//! The plan as a pull-request comment, readable at any size: the verdict and counts first,
//! errors and warnings, a bounded Mermaid change graph, then the details of each church folded
//! away in its own `<details>`. The whole comment stays under GitHub's 65,536-character limit
//! (a longer comment is silently dropped): details that do not fit are counted, and the
//! comment points at the full plan instead.
//!
//! Every piece of data (addresses, ids, names, values, messages) goes through
//! [`escape::markdown`]; the only markup is what this file writes around it.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::escape::{markdown as esc, markdown_code as code, mermaid as mermaid_esc};
use super::{created_fields, money, source_of, value_text, Source};
use crate::plan::{Action, Change, Finding, Plan, Severity, Tally};

/// GitHub refuses (drops) a comment longer than this many characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// What the rendered comment may use, leaving room for the marker and note CI adds around it.
const BUDGET: usize = 60_000;

/// At this many changes (or when details were cut) the comment points at the full plan.
const POINTER_AT: usize = 1_000;

/// More changes than this make the graph one node per resource kind instead of per change.
const MAX_GRAPH_NODES: usize = 40;

/// Findings listed before the rest are only counted.
const MAX_FINDINGS: usize = 50;

/// Where the reader finds what does not fit.
const FULL_PLAN: &str = "the full plan is the `plan` artifact of this run: `cwa show plan.json` prints all of it (`--json` for machines)";

/// Renders the plan as GitHub-flavoured Markdown, under [`GITHUB_COMMENT_LIMIT`].
pub fn markdown(plan: &Plan) -> String {
    markdown_from(plan, source_of(plan, false))
}

/// [`markdown`], saying the plan was made against the embedded sandbox when it was.
pub fn markdown_from(plan: &Plan, source: Source) -> String {
    let mut out = String::new();
    header(&mut out, plan, source);
    summary_table(&mut out, plan);
    irreversible(&mut out, plan);
    findings(&mut out, plan);
    unprotect(&mut out, plan);
    mermaid(&mut out, plan);
    details(&mut out, plan);
    out
}

fn header(out: &mut String, plan: &Plan, source: Source) {
    let verdict = if plan.is_error() {
        "❌ **Plan refused**"
    } else if plan.has_changes() {
        "📝 **Changes planned**"
    } else {
        "✅ **No changes**"
    };
    let source = match source {
        Source::Live => "live services",
        Source::Sandbox => "the local sandbox (`--sandbox`), not the real services",
        Source::StateOnly => "state/ only (no credentials: `--refresh=false`)",
    };
    let _ = writeln!(
        out,
        "### cwa plan\n\n{verdict}, planned against {source}. Monthly cost: {}.\n",
        money(plan.monthly_cost_delta_cents)
    );
}

fn summary_table(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "| action | count |\n|---|---:|");
    for tally in Tally::ALL {
        if let Some(n) = plan.summary.get(&tally).filter(|n| **n > 0) {
            let _ = writeln!(out, "| `{}` {} | {n} |", tally.symbol(), tally.as_str());
        }
    }
    out.push('\n');
}

fn irreversible(out: &mut String, plan: &Plan) {
    let released: Vec<&Change> = plan.changes.iter().filter(|c| c.irreversible).collect();
    if released.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "**Irreversible: {} number(s) to RELEASE** (anyone can buy them afterwards):\n",
        released.len()
    );
    for c in released.iter().take(MAX_FINDINGS) {
        let _ = writeln!(
            out,
            "- {} {}",
            code(&c.address.to_string()),
            c.id.as_deref().map(code).unwrap_or_default()
        );
    }
    more(out, released.len(), MAX_FINDINGS, "numbers to release");
    out.push('\n');
}

fn findings(out: &mut String, plan: &Plan) {
    let all: Vec<&Finding> = plan.errors.iter().chain(&plan.checks).collect();
    for f in all.iter().take(MAX_FINDINGS) {
        let icon = if f.severity == Severity::Error {
            "❌"
        } else {
            "⚠️"
        };
        let _ = writeln!(out, "- {icon} {} {}", code(&f.code), esc(&f.message));
    }
    more(out, all.len(), MAX_FINDINGS, "errors and warnings");
    if !all.is_empty() {
        out.push('\n');
    }
}

/// Ids leaving the hard lock, in a section of their own for the reviewer.
fn unprotect(out: &mut String, plan: &Plan) {
    if plan.unprotect.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "#### 🔓 Unprotect (still locked; applied only with `--unprotect ID`)\n"
    );
    for u in &plan.unprotect {
        let _ = writeln!(
            out,
            "- `unprotect` {} (remembered in: {}; was: {})",
            code(&u.id),
            esc(&u.remembered_in.join(", ")),
            esc(&u.reason)
        );
    }
    out.push('\n');
}

fn more(out: &mut String, total: usize, shown: usize, what: &str) {
    if total > shown {
        let _ = writeln!(out, "- … and {} more {what}", total - shown);
    }
}

/// The change graph: one node per change when there are few, otherwise one node per resource
/// kind (with its count) and the edges between kinds, so it stays readable and small.
fn mermaid(out: &mut String, plan: &Plan) {
    let shown: Vec<usize> = (0..plan.changes.len())
        .filter(|i| plan.changes[*i].action.changes_anything())
        .collect();
    if shown.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<details><summary>Change graph ({} changes)</summary>\n\n```mermaid\nflowchart LR",
        shown.len()
    );
    if shown.len() <= MAX_GRAPH_NODES {
        graph_of_changes(out, plan, &shown);
    } else {
        graph_of_kinds(out, plan, &shown);
    }
    let _ = writeln!(out, "```\n\n</details>\n");
}

fn graph_of_changes(out: &mut String, plan: &Plan, shown: &[usize]) {
    for &i in shown {
        let c = &plan.changes[i];
        let _ = writeln!(
            out,
            "  n{i}[\"{} {}\"]",
            mermaid_esc(c.action.symbol()),
            mermaid_esc(&c.address.to_string())
        );
    }
    for (from, to) in &plan.edges {
        if shown.contains(from) && shown.contains(to) {
            let _ = writeln!(out, "  n{from} --> n{to}");
        }
    }
}

fn graph_of_kinds(out: &mut String, plan: &Plan, shown: &[usize]) {
    let mut kinds: BTreeMap<String, BTreeMap<Action, usize>> = BTreeMap::new();
    for &i in shown {
        let c = &plan.changes[i];
        *kinds
            .entry(c.kind.to_string())
            .or_default()
            .entry(c.action)
            .or_default() += 1;
    }
    let index: BTreeMap<&String, usize> = kinds.keys().enumerate().map(|(i, k)| (k, i)).collect();
    for (kind, counts) in &kinds {
        let counts: Vec<String> = counts
            .iter()
            .map(|(a, n)| format!("{} {n}", a.symbol()))
            .collect();
        let _ = writeln!(
            out,
            "  k{}[\"{} {}\"]",
            index[kind],
            mermaid_esc(kind),
            mermaid_esc(&counts.join(", "))
        );
    }
    let mut edges: Vec<(usize, usize)> = plan
        .edges
        .iter()
        .filter(|(f, t)| shown.contains(f) && shown.contains(t))
        .map(|(f, t)| {
            let k = |i: &usize| index[&plan.changes[*i].kind.to_string()];
            (k(f), k(t))
        })
        .filter(|(f, t)| f != t)
        .collect();
    edges.sort();
    edges.dedup();
    for (from, to) in edges {
        let _ = writeln!(out, "  k{from} --> k{to}");
    }
}

/// Per-church sections, each folded, as many as fit the budget; what does not fit is counted.
fn details(out: &mut String, plan: &Plan) {
    let groups = groups(plan);
    if groups.is_empty() && plan.unmanaged.is_empty() {
        return;
    }
    let (mut cut_groups, mut cut_changes) = (0usize, 0usize);
    for (group, changes) in &groups {
        let room = BUDGET.saturating_sub(out.len());
        let (text, shown) = if cut_groups > 0 {
            (String::new(), 0)
        } else {
            section(group, changes, room)
        };
        out.push_str(&text);
        if shown < changes.len() {
            cut_groups += 1;
            cut_changes += changes.len() - shown;
        }
    }
    let unmanaged = unmanaged(plan);
    if cut_groups == 0 && out.len() + unmanaged.len() <= BUDGET {
        out.push_str(&unmanaged);
    } else if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "{} unmanaged live object(s) are not listed here.\n",
            plan.unmanaged.len()
        );
    }
    if cut_groups > 0 {
        let _ = writeln!(
            out,
            "**{cut_changes} more change(s) in {cut_groups} group(s) are not shown** (a GitHub comment holds {GITHUB_COMMENT_LIMIT} characters); {FULL_PLAN}."
        );
    } else if plan.changes.len() >= POINTER_AT {
        let _ = writeln!(out, "For machines and archives, {FULL_PLAN}.");
    }
}

/// Changes that do something (and numbers kept), by church; account-level objects last.
fn groups(plan: &Plan) -> Vec<(String, Vec<&Change>)> {
    let mut by: BTreeMap<(u8, String), Vec<&Change>> = BTreeMap::new();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.action.changes_anything() || c.action == Action::Retain)
    {
        let key = match &c.church {
            Some(church) => (0, format!("Church {}", code(church))),
            None => (1, "Account and shared objects".to_string()),
        };
        by.entry(key).or_default().push(c);
    }
    by.into_iter().map(|((_, name), v)| (name, v)).collect()
}

/// One group folded in `<details>`, with as many of its changes as fit in `room` bytes (and
/// a count of the rest); returns the text and how many changes it shows.
fn section(group: &str, changes: &[&Change], room: usize) -> (String, usize) {
    const TAIL: usize = 120;
    let mut counts: BTreeMap<Action, usize> = BTreeMap::new();
    for c in changes {
        *counts.entry(c.action).or_default() += 1;
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(a, n)| format!("{n} {}", a.as_str()))
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<details><summary>{group}: {}</summary>\n",
        counts.join(", ")
    );
    let mut shown = 0;
    for c in changes {
        let mut line = String::new();
        change(&mut line, c);
        if s.len() + line.len() + TAIL > room {
            break;
        }
        s.push_str(&line);
        shown += 1;
    }
    if shown == 0 {
        return (String::new(), 0);
    }
    if shown < changes.len() {
        let _ = writeln!(s, "- … and {} more, not shown", changes.len() - shown);
    }
    s.push_str("\n</details>\n\n");
    (s, shown)
}

fn change(s: &mut String, c: &Change) {
    let id =
        c.id.as_deref()
            .map(|i| format!(" ({})", code(i)))
            .unwrap_or_default();
    let irreversible = if c.irreversible {
        " **irreversible**"
    } else {
        ""
    };
    let _ = writeln!(
        s,
        "- `{}` {}{id}{irreversible}: {}",
        c.action.symbol(),
        code(&c.address.to_string()),
        esc(&c.reason.to_string())
    );
    if c.action == Action::Create {
        for (key, value) in created_fields(c) {
            let _ = writeln!(s, "  - {} = {}", code(&key), code(&value));
        }
    }
    for f in &c.fields {
        let _ = writeln!(
            s,
            "  - {}: {} → {}",
            code(&super::toml_key(c.kind, &f.path)),
            code(&value_text(&f.before)),
            code(&value_text(&f.after))
        );
    }
}

fn unmanaged(plan: &Plan) -> String {
    let mut s = String::new();
    if plan.unmanaged.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "<details><summary>Unmanaged: {} live object(s), neither declared nor owned; never touched</summary>\n",
        plan.unmanaged.len()
    );
    for u in &plan.unmanaged {
        let ignored = u
            .ignored
            .as_deref()
            .map(|why| format!(" (ignored: {})", esc(why)));
        let _ = writeln!(
            s,
            "- {} {} {}{}",
            code(&u.kind.to_string()),
            code(&u.id),
            esc(&u.label),
            ignored.unwrap_or_default()
        );
    }
    s.push_str("\n</details>\n\n");
    s
}
