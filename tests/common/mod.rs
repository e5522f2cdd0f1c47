//! What every test binary shares: the test context ([`Ctx`]: a sandbox, a scratch directory
//! with lines.toml and state/, and the `cwa` command run there), the sandbox helpers
//! ([`sandbox`]), a throwaway PostgreSQL ([`postgres`]) and [`cwa_snapshot!`], insta with the
//! filters that make output stable across runs. Each binary (`tests/<area>/main.rs`) declares
//! it once, as `#[macro_use] #[path = "../common/mod.rs"] mod common;`.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod context;
pub mod postgres;
pub mod sandbox;

pub use context::*;

/// The filters every `cwa_snapshot!` applies, as (regex, replacement): what differs between
/// two runs of the same test and is never what the snapshot is about.
pub fn snapshot_filters() -> Vec<(String, String)> {
    let temp = std::env::temp_dir();
    let temp = escape_regex(temp.to_string_lossy().trim_end_matches('/'));
    vec![
        // A temporary directory (tempfile's `.tmpXXXXXX`, the PostgreSQL `cwa-pg-XXXXXX`).
        (
            format!(r"{temp}/(\.tmp|cwa-pg-)[A-Za-z0-9]+"),
            "[TEMP]".to_string(),
        ),
        // The sandbox's (or any local server's) port.
        (
            r"127\.0\.0\.1:\d+".to_string(),
            "127.0.0.1:[PORT]".to_string(),
        ),
        // Timestamps (RFC 3339, as state, the journal and the audit log write them).
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?".to_string(),
            "[TIME]".to_string(),
        ),
        // Durations as cwa prints them (`in 1.2s`, `350ms`).
        (
            r"\b\d+(\.\d+)?(ns|µs|us|ms|s)\b".to_string(),
            "[DURATION]".to_string(),
        ),
    ]
}

/// `text` as a regex matching itself literally, for filters built from ids and paths.
pub fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Insta settings with [`snapshot_filters`] and one literal filter per `(id, label)`: ids a
/// provider (or the sandbox) minted during the test, which a snapshot shows by role.
pub fn snapshot_settings(ids: &[(&str, &str)]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (regex, replacement) in snapshot_filters() {
        settings.add_filter(&regex, replacement);
    }
    for (id, label) in ids {
        settings.add_filter(&escape_regex(id), label.to_string());
    }
    settings
}

/// `insta::assert_snapshot!` with [`snapshot_filters`]: temporary paths, ports, times and
/// durations are replaced by placeholders, and each `id => "[label]"` pair after the value
/// replaces a minted provider id; with the value alone the snapshot is named after the test
/// function, as insta names it. `cwa_snapshot!(json "name", value)` snapshots a
/// `serde_json::Value` (or anything `Serialize`) as pretty JSON under the same filters.
///
/// ```ignore
/// cwa_snapshot!("hostile_markdown", md, &unmanaged_id => "[unmanaged-id]");
/// ```
macro_rules! cwa_snapshot {
    (json $name:expr, $value:expr $(, $id:expr => $label:expr)* $(,)?) => {
        $crate::common::snapshot_settings(&[$(($id, $label)),*])
            .bind(|| insta::assert_json_snapshot!($name, $value))
    };
    ($value:expr $(,)?) => {
        $crate::common::snapshot_settings(&[]).bind(|| insta::assert_snapshot!($value))
    };
    ($name:expr, $value:expr $(, $id:expr => $label:expr)* $(,)?) => {
        $crate::common::snapshot_settings(&[$(($id, $label)),*])
            .bind(|| insta::assert_snapshot!($name, $value))
    };
}
