//! Views of a plan. Each takes a computed [`Plan`] and returns text; none decides anything.

mod dot;
mod human;
mod markdown;

use crate::plan::Plan;

pub use dot::dot;
pub use human::{human, HumanOptions};
pub use markdown::markdown;

/// The plan as versioned JSON (`format_version` at the top). The same document is the plan
/// file `cwa apply PLANFILE` reads.
pub fn json(plan: &Plan) -> String {
    let mut out =
        serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    out.push('\n');
    out
}

/// A compact line of counts, e.g. `2 to create, 1 to update, 0 to delete`.
pub fn summary_line(plan: &Plan) -> String {
    use crate::plan::Action;
    let n = |a: Action| plan.summary.get(&a).copied().unwrap_or(0);
    let mut parts = vec![
        format!("{} to create", n(Action::Create)),
        format!("{} to adopt", n(Action::Adopt)),
        format!("{} to update", n(Action::Update)),
        format!("{} to replace", n(Action::Replace)),
        format!("{} to delete", n(Action::Delete)),
    ];
    for (action, label) in [
        (Action::Forget, "to forget"),
        (Action::Retain, "kept"),
        (Action::Verify, "verified"),
    ] {
        if n(action) > 0 {
            parts.push(format!("{} {label}", n(action)));
        }
    }
    parts.join(", ")
}

/// `+$1.00/month`, `-$2.15/month`, `$0.00/month`.
pub fn money(cents: i64) -> String {
    let sign = match cents.signum() {
        1 => "+",
        -1 => "-",
        _ => "",
    };
    format!(
        "{sign}${}.{:02}/month",
        cents.abs() / 100,
        cents.abs() % 100
    )
}

/// A JSON value as a reviewer reads it: strings bare, null as `(none)`.
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "(none)".into(),
        serde_json::Value::String(s) if s.is_empty() => "\"\"".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
