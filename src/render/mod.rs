//! Views of a plan (and of the check report, [`check`]). Each takes computed data and returns
//! text; none decides anything.

mod apply;
pub mod check;
mod dot;
pub mod drift;
pub mod escape;
pub mod graph;
mod human;
pub mod import;
mod markdown;
pub mod plan;
pub mod progress;
pub mod provision;
pub mod registry;
pub mod sandbox;
pub mod state;

use crate::plan::{Change, Plan, SENSITIVE};

pub use apply::{apply_json, APPLY_FORMAT_VERSION};
pub use dot::dot;
pub use human::{human, HumanOptions};
pub use markdown::{markdown, markdown_from, GITHUB_COMMENT_LIMIT};

/// Where a plan was made, as every view says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// The real services.
    #[default]
    Live,
    /// The embedded or a served sandbox (`--sandbox`), standing in for them.
    Sandbox,
    /// state/ alone (`--refresh=false`).
    StateOnly,
}

/// Where `plan` was made: live services (or the sandbox standing in for them), or state alone.
pub fn source_of(plan: &Plan, sandbox: bool) -> Source {
    match (plan.refreshed, sandbox) {
        (false, _) => Source::StateOnly,
        (true, true) => Source::Sandbox,
        (true, false) => Source::Live,
    }
}

/// The plan as versioned JSON (`format_version` at the top). The same document is the plan
/// file `cwa apply PLANFILE` reads.
pub fn json(plan: &Plan) -> String {
    let mut out =
        serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    out.push('\n');
    out
}

/// lines.toml's lint warnings, each a diagnostic as miette draws it, one after the other
/// (what `validate`, `export` and every session print on stderr before their own output).
pub fn lint_warnings(warnings: &[miette::Report]) -> String {
    warnings.iter().map(|w| format!("{w:?}\n")).collect()
}

/// `cwa validate`'s summary of a valid file: "lines.toml: 2 churches, 21 resources
/// (telnyx_number 4, …), 2 protected ids, twilio read-only".
pub fn validated(loaded: &crate::config::Loaded) -> String {
    let d = &loaded.desired;
    let counts: Vec<String> = crate::model::Kind::ALL
        .iter()
        .filter_map(|k| {
            let n = d.resources.keys().filter(|a| a.kind == *k).count();
            (n > 0).then(|| format!("{k} {n}"))
        })
        .collect();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let twilio = if d.policy.twilio_writes {
        "read-write"
    } else {
        "read-only"
    };
    format!(
        "{}: {}, {} ({}), {}, twilio {twilio}",
        loaded.path.display(),
        plural(d.churches.len(), "church", "churches"),
        plural(d.resources.len(), "resource", "resources"),
        counts.join(", "),
        plural(d.protected.len(), "protected id", "protected ids"),
    )
}

/// `cwa version`: this cwa's version and the version of each format it reads and writes,
/// with the commands that write it.
pub fn version() -> String {
    format!(
        "cwa {}\nplan format {} (cwa plan --json, cwa show --json, cwa add church --json, cwa remove church --json, plan files)\napply report format {} (cwa apply --json)\ndrift report format {} (cwa drift --json)\ncheck report format {} (cwa check --json)\nstate format {}",
        env!("CARGO_PKG_VERSION"),
        crate::plan::FORMAT_VERSION,
        APPLY_FORMAT_VERSION,
        crate::drift::FORMAT_VERSION,
        check::CHECK_FORMAT_VERSION,
        crate::state::FORMAT_VERSION
    )
}

/// `cwa fmt` on a file already in canonical layout.
pub fn fmt_formatted(path: &std::path::Path) -> String {
    format!("{} is formatted.", path.display())
}

/// `cwa fmt --check` on a file that is not in canonical layout (after its diff).
pub fn fmt_not_formatted(path: &std::path::Path) -> String {
    format!(
        "{} is not formatted; run `cwa fmt` to rewrite it.",
        path.display()
    )
}

/// `cwa fmt --check`: a unified diff of the change `cwa fmt` would make to the file `name`.
pub fn fmt_diff(before: &str, after: &str, name: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(2)
        .header(name, &format!("{name} (formatted)"))
        .to_string()
}

/// A compact line of counts, e.g. `2 to create, 1 to update, 0 to delete`: every write
/// (see [`crate::plan::Tally`]).
pub fn summary_line(plan: &Plan) -> String {
    use crate::plan::Tally;
    let n = |a: Tally| plan.summary.get(&a).copied().unwrap_or(0);
    let mut parts = vec![
        format!("{} to create", n(Tally::Create)),
        format!("{} to adopt", n(Tally::Adopt)),
        format!("{} to update", n(Tally::Update)),
        format!("{} to replace", n(Tally::Replace)),
        format!("{} to delete", n(Tally::Delete)),
    ];
    for (action, label) in [
        (Tally::Move, "to move"),
        (Tally::Forget, "to forget"),
        (Tally::Retain, "kept"),
        (Tally::Verify, "verified"),
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

/// What a create sets, as `(key, value)` pairs in declaration order: every attribute of the
/// declared object except its kind and those left unset (null), nested ones as dotted keys
/// (`rule.room_prefix`), secrets as `(sensitive)`. Both the terminal and the Markdown views
/// list these under a create, so a reviewer sees what will exist.
pub fn created_fields(change: &Change) -> Vec<(String, String)> {
    let Some(after) = &change.after else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(after) else {
        return Vec::new();
    };
    let secrets: Vec<&str> = after.secrets().into_iter().map(|(n, _)| n).collect();
    let mut out = Vec::new();
    for (key, value) in map.iter().filter(|(k, _)| k.as_str() != "kind") {
        if secrets.contains(&key.as_str()) {
            if !value.is_null() {
                out.push((key.clone(), SENSITIVE.to_string()));
            }
            continue;
        }
        flatten(key, value, &mut out);
    }
    out.into_iter()
        .map(|(k, v)| (toml_key(change.kind, &k), v))
        .collect()
}

fn flatten(path: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&format!("{path}.{k}"), v, out);
            }
        }
        other => out.push((path.to_string(), value_text(other))),
    }
}

/// A field of a resource's spec under the key lines.toml gives it, so a diff names what the
/// reader edits (`krisp`, not LiveKit's `krisp_enabled`; `password_env`, not `password`).
/// Paths without a lines.toml spelling of their own (ids, numbers) are returned as they are.
pub fn toml_key(kind: crate::model::Kind, path: &str) -> String {
    use crate::model::Kind;
    let renames: &[(&str, &str)] = match kind {
        Kind::TelnyxFqdnConnection => &[
            ("connection_name", "name"),
            ("transport_protocol", "transport"),
            ("password", "password_env"),
        ],
        Kind::TelnyxCredentialConnection => {
            &[("connection_name", "name"), ("password", "password_env")]
        }
        Kind::TelnyxTexmlApplication | Kind::TwilioNumber | Kind::TwilioTrunk => {
            &[("friendly_name", "name")]
        }
        Kind::TelnyxNumber => &[
            ("number.mode", "number"),
            ("number.country", "country"),
            ("number.area_code", "area_code"),
            ("number.endings", "friendly_endings"),
        ],
        Kind::LivekitInboundTrunk => &[
            ("krisp_enabled", "krisp"),
            ("auth_password", "auth_password_env"),
        ],
        Kind::LivekitOutboundTrunk => &[("auth_password", "auth_password_env")],
        Kind::LivekitDispatchRule => &[
            ("rule.type", "type"),
            ("rule.room_prefix", "room_prefix"),
            ("rule.pin", "pin"),
            ("rule.randomize", "randomize"),
        ],
        _ => &[],
    };
    for (spec, key) in renames {
        if path == *spec {
            return (*key).to_string();
        }
        if let Some(rest) = path.strip_prefix(&format!("{spec}.")) {
            return format!("{key}.{rest}");
        }
    }
    path.to_string()
}
