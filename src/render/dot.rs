//! The change graph as Graphviz dot.

use super::escape::dot as esc;
use crate::plan::{Action, Plan};

/// One node per change that does something (plus verified protected objects), edges as the
/// graph has them.
pub fn dot(plan: &Plan) -> String {
    let mut out = String::from(
        "digraph plan {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    for (i, c) in plan.changes.iter().enumerate() {
        if c.action == Action::NoOp {
            continue;
        }
        let color = match c.action {
            Action::Create | Action::Adopt => "green",
            Action::Update | Action::Replace => "orange",
            Action::Delete | Action::Forget => "red",
            _ => "gray",
        };
        out.push_str(&format!(
            "  n{i} [label=\"{} {}\", color={color}];\n",
            esc(c.action.symbol()),
            esc(&c.address.to_string())
        ));
    }
    for (from, to) in &plan.edges {
        let shown = |i: &usize| plan.changes[*i].action != Action::NoOp;
        if shown(from) && shown(to) {
            out.push_str(&format!("  n{from} -> n{to};\n"));
        }
    }
    out.push_str("}\n");
    out
}
