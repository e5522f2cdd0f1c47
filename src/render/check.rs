//! Views of `cwa check`: the terminal report and the versioned JSON. They take the computed
//! [`Certification`] and [`RingReport`] and return text; neither decides anything.

use serde_json::json;

use crate::checks::{Certification, CheckResult};
use crate::ring::RingReport;

/// The version of `cwa check --json`'s document. The major part changes only when a field
/// is removed or changes meaning, as the plan JSON's `format_version` does.
pub const CHECK_FORMAT_VERSION: &str = "1.0";

/// The check report as versioned JSON: `format_version`, `passed`, every check (with its
/// stable rule code), the pending lines and the test call when there was one.
pub fn check_json(certified: &Certification, ring: Option<&RingReport>) -> String {
    let passed = certified.passed() && ring.is_none_or(|r| r.passed);
    let mut out = serde_json::to_string_pretty(&json!({
        "format_version": CHECK_FORMAT_VERSION,
        "passed": passed,
        "checks": certified.checks,
        "pending": certified.pending,
        "ring": ring,
    }))
    .unwrap_or_default();
    out.push('\n');
    out
}

/// The terminal report: the test call's trace first (when there is one), then one line per
/// check. A passing line says only what was checked (the message of a check describes its
/// failure, and printed after PASS it read like one); a failing line says what is wrong.
/// `failures_only` leaves the passing lines out. Data is escaped for the terminal.
pub fn check_human(
    certified: &Certification,
    ring: Option<&RingReport>,
    failures_only: bool,
) -> String {
    use std::fmt::Write;
    let results = &certified.checks;
    let t = crate::render::escape::terminal;
    let mut out = String::new();
    if let Some(ring) = ring {
        let _ = writeln!(
            out,
            "Test call {} -> {} via {}:",
            t(&ring.from),
            t(&ring.to),
            ring.via
        );
        for h in &ring.hops {
            let _ = writeln!(
                out,
                "  {} {:<18} {}{}",
                if h.ok { "ok  " } else { "FAIL" },
                t(&h.stage),
                h.id.as_deref()
                    .map(|i| format!("[{}] ", t(i)))
                    .unwrap_or_default(),
                t(&h.detail)
            );
        }
        let _ = writeln!(out, "Outcome: {}", t(&ring.outcome));
        if let Some(h) = ring.failed_hop() {
            let _ = writeln!(out, "FAILED at the {} hop: {}", t(&h.stage), t(&h.detail));
        }
        let _ = writeln!(out, "\nCertification:");
    }
    for r in results.iter().filter(|r| !failures_only || !r.passed) {
        if r.passed {
            let _ = writeln!(
                out,
                "PASS {:<10} {:<24} {}",
                t(&r.hop),
                t(&r.check),
                t(&r.subject)
            );
        } else {
            let [hop, check, subject, message] = cells(r);
            let _ = writeln!(out, "FAIL {hop:<10} {check:<24} {subject}: {message}");
        }
    }
    for p in &certified.pending {
        let _ = writeln!(
            out,
            "PENDING {:<10} {:<24} {} ({}): {}",
            "line",
            if p.activating {
                "activating"
            } else {
                "not-applied"
            },
            t(&p.line),
            t(&p.number),
            t(&p.reason)
        );
    }
    let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.passed).collect();
    let _ = writeln!(
        out,
        "\n{} checks, {} passed, {} failed, {} pending (not applied yet, or still activating){}.",
        results.len(),
        results.len() - failed.len(),
        failed.len(),
        certified.pending.len(),
        if failures_only && failed.len() < results.len() {
            " (passing checks not listed: --failures-only)"
        } else {
            ""
        }
    );
    for f in &failed {
        let [hop, check, subject, message] = cells(f);
        let _ = writeln!(
            out,
            "FAILED at the {hop} hop: {check} ({subject}): {message}"
        );
    }
    out
}

/// A check result's hop, short name, subject and message, escaped for the terminal.
fn cells(r: &CheckResult) -> [String; 4] {
    [&r.hop, &r.check, &r.subject, &r.message].map(|s| crate::render::escape::terminal(s))
}
