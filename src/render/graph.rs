//! Views of the desired resource graph (`cwa graph`): text, Graphviz dot and Mermaid. The
//! graph and its creation order are computed by [`crate::config::graph`]; these only print.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape::{dot as dot_escape, mermaid as mermaid_escape, mermaid_id, terminal};
use crate::config::graph::{DesiredGraph, EdgeKind};
use crate::model::{Address, Desired, DesiredResource};

/// One line per resource in creation order, each followed by what it needs.
pub fn text(graph: &DesiredGraph, desired: &Desired) -> String {
    let mut out = format!(
        "# {} resources in creation order; each line after what it needs\n",
        graph.order().len()
    );
    for addr in graph.order() {
        let _ = writeln!(
            out,
            "{}{}",
            terminal(&addr.to_string()),
            annotation(desired.get(addr))
        );
        for (dep, kind) in graph.needs(addr) {
            let why = match kind {
                EdgeKind::Reference => "refers to",
                EdgeKind::Holds => "holds the number of",
                EdgeKind::DependsOn => "depends_on",
            };
            let _ = writeln!(out, "    {why} {}", terminal(&dep.to_string()));
        }
    }
    out
}

/// Graphviz dot, one cluster per church.
pub fn dot(graph: &DesiredGraph, desired: &Desired) -> String {
    let mut out = String::from("digraph desired {\n  rankdir=LR;\n  node [shape=box];\n");
    let (by_church, shared) = graph.grouped(desired);
    for (church, addrs) in &by_church {
        let _ = writeln!(out, "  subgraph \"cluster_{}\" {{", dot_escape(church));
        let _ = writeln!(out, "    label=\"church {}\";", dot_escape(church));
        for a in addrs {
            let _ = writeln!(out, "    {}", dot_node(a, desired));
        }
        out.push_str("  }\n");
    }
    for a in shared {
        let _ = writeln!(out, "  {}", dot_node(a, desired));
    }
    for (from, to, kind) in graph.edges_in_order() {
        let style = if kind == EdgeKind::DependsOn {
            " [style=dashed]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\"{style};",
            dot_escape(&from.to_string()),
            dot_escape(&to.to_string())
        );
    }
    out.push_str("}\n");
    out
}

/// A Mermaid flowchart (renders in GitHub pull requests), one subgraph per church.
pub fn mermaid(graph: &DesiredGraph, desired: &Desired) -> String {
    let ids: BTreeMap<&Address, String> = graph
        .order()
        .into_iter()
        .enumerate()
        .map(|(i, a)| (a, format!("n{i}")))
        .collect();
    let node = |a: &Address| format!("{}[\"{}\"]", ids[a], mermaid_label(a, desired));
    let mut out = String::from("flowchart LR\n");
    let (by_church, shared) = graph.grouped(desired);
    for (church, addrs) in &by_church {
        let _ = writeln!(
            out,
            "  subgraph church_{}[\"church {}\"]",
            mermaid_id(church),
            mermaid_escape(church)
        );
        for a in addrs {
            let _ = writeln!(out, "    {}", node(a));
        }
        out.push_str("  end\n");
    }
    for a in shared {
        let _ = writeln!(out, "  {}", node(a));
    }
    for (from, to, kind) in graph.edges_in_order() {
        let arrow = if kind == EdgeKind::DependsOn {
            "-.->"
        } else {
            "-->"
        };
        let _ = writeln!(out, "  {} {arrow} {}", ids[from], ids[to]);
    }
    out
}

fn annotation(res: Option<&DesiredResource>) -> String {
    let Some(r) = res else { return String::new() };
    let mut out = format!("  \"{}\"", terminal(&r.spec.label()));
    if let Some(c) = &r.church {
        let _ = write!(out, "  [church {}]", terminal(c));
    }
    if r.read_only {
        out.push_str("  (read-only)");
    }
    out
}

/// A node's label as lines: its address, its object's label, `(read-only)`. Each renderer
/// escapes every line for its language and joins them with its own line break.
fn node_label(a: &Address, desired: &Desired) -> Vec<String> {
    let mut lines = vec![a.to_string()];
    if let Some(r) = desired.get(a) {
        lines.push(r.spec.label());
        if r.read_only {
            lines.push("(read-only)".into());
        }
    }
    lines
}

fn dot_node(a: &Address, desired: &Desired) -> String {
    let label: Vec<String> = node_label(a, desired)
        .iter()
        .map(|l| dot_escape(l))
        .collect();
    format!(
        "\"{}\" [label=\"{}\"];",
        dot_escape(&a.to_string()),
        label.join("\\n")
    )
}

fn mermaid_label(a: &Address, desired: &Desired) -> String {
    let label: Vec<String> = node_label(a, desired)
        .iter()
        .map(|l| mermaid_escape(l))
        .collect();
    label.join("<br/>")
}
