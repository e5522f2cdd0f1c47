//! A saved plan (`cwa plan --out FILE`) is evidence of what was reviewed, never authority.
//!
//! `cwa apply FILE` recomputes the plan from the current lines.toml, state and live, with
//! every refusal (protected writes, mass change, irreversible releases) derived again, and
//! carries out the recomputed plan only. The file is compared with it: any difference in the
//! actions, addresses, ids, field changes, declared values, order, refusals or unprotect
//! entries refuses the apply, so a file whose `errors` were deleted, whose changes were
//! edited or added, or whose refusals were removed never writes anything. A live object that
//! changed since the plan was made refuses the apply when the plan writes it, and is only a
//! warning when the plan does not.
//!
//! What the approver reads first is checked too: a file whose counts (`summary`) or monthly
//! cost are not those of its own changes is not a plan file (`cwa show` renders those fields
//! as they are, so they must not be editable), and its warnings (`checks`) and unmanaged
//! objects must be those computed now unless live moved since.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{Change, Finding, Plan};

/// Why a saved plan cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// What the plan was computed from moved on.
    #[error("{what} changed since it was made")]
    Stale { what: String },
    /// The file says something the plan computed now does not.
    #[error("the file differs from the plan computed now: {difference}")]
    Differs { difference: String },
}

/// Why a plan file cannot be applied (or shown), as the operator is told.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FileError {
    #[error("cannot read the plan file {path}: {source}")]
    #[diagnostic(code(cwa::plan_file::unreadable))]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a cwa plan file: {detail}")]
    #[diagnostic(
        code(cwa::plan_file::not_a_plan),
        help("a plan file is what `cwa plan --out FILE` writes; make a new one with it")
    )]
    NotAPlan { path: String, detail: String },
    #[error("the saved plan {path} is stale: {mismatch}")]
    #[diagnostic(
        code(cwa::apply::stale_plan),
        help("run `cwa plan --out FILE` again, review it, and apply the new file; nothing was changed")
    )]
    Stale { path: String, mismatch: Mismatch },
}

/// Reads a plan file (`cwa plan --out FILE`) to show it, refusing anything that is not one,
/// and a file whose counts or cost are not those of its changes.
pub fn read(path: &Path) -> Result<Plan, FileError> {
    let plan = read_file(path)?;
    derived_values_agree(&plan).map_err(|detail| FileError::NotAPlan {
        path: path.display().to_string(),
        detail,
    })?;
    Ok(plan)
}

fn read_file(path: &Path) -> Result<Plan, FileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Unreadable {
        path: shown.clone(),
        source,
    })?;
    Plan::from_json(&text).map_err(|e| FileError::NotAPlan {
        path: shown,
        detail: e.to_string(),
    })
}

/// The counts and the monthly cost of a plan are derived from its changes; a file where they
/// differ was edited by hand, and the approver would read counts that are not what runs.
fn derived_values_agree(plan: &Plan) -> Result<(), String> {
    let mut summary = BTreeMap::new();
    for tally in plan.changes.iter().flat_map(super::Tally::of) {
        *summary.entry(tally).or_insert(0usize) += 1;
    }
    if summary != plan.summary {
        return Err("its summary does not count its changes (edited by hand?)".into());
    }
    let cost: i64 = plan
        .changes
        .iter()
        .map(|c| c.monthly_cost_delta_cents)
        .sum();
    if cost != plan.monthly_cost_delta_cents {
        return Err("its monthly cost is not the sum of its changes' (edited by hand?)".into());
    }
    Ok(())
}

/// Reads a plan file and compares it with the plan computed now ([`check`]). Ok carries the
/// warnings: live objects that moved but are not written.
pub fn check_file(path: &Path, now: &Plan) -> Result<Vec<String>, FileError> {
    let saved = read_file(path)?;
    check(&saved, now).map_err(|mismatch| FileError::Stale {
        path: path.display().to_string(),
        mismatch,
    })
}

/// Compares a saved plan with the plan computed now. Ok carries warnings: live objects
/// that changed although the plan does not write them.
pub fn check(saved: &Plan, now: &Plan) -> Result<Vec<String>, Mismatch> {
    if saved.fingerprints.config != now.fingerprints.config {
        return Err(stale("lines.toml"));
    }
    if saved.fingerprints.state != now.fingerprints.state {
        return Err(stale("state/"));
    }
    let mut warnings = live_changes(saved, now)?;
    compare_changes(&saved.changes, &now.changes)?;
    compare_shown(saved, now, &mut warnings)?;
    if saved.edges != now.edges {
        return Err(differs("the order of the changes (edges)".into()));
    }
    compare_refusals(&saved.errors, &now.errors)?;
    if saved.unprotect != now.unprotect {
        return Err(differs("the unprotect entries".into()));
    }
    derived_values_agree(saved).map_err(differs)?;
    Ok(warnings)
}

fn stale(what: &str) -> Mismatch {
    Mismatch::Stale {
        what: what.to_string(),
    }
}

fn differs(difference: String) -> Mismatch {
    Mismatch::Differs { difference }
}

/// Live objects whose fingerprint moved: a refusal when the plan writes the object, a
/// warning otherwise.
fn live_changes(saved: &Plan, now: &Plan) -> Result<Vec<String>, Mismatch> {
    let written: BTreeSet<String> = now
        .actionable()
        .filter_map(|c| c.id.as_ref().map(|id| format!("{}/{id}", c.kind)))
        .collect();
    let (a, b) = (&saved.fingerprints.live, &now.fingerprints.live);
    let moved = a
        .keys()
        .chain(b.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k));
    let mut warnings = Vec::new();
    for key in moved {
        let how = match (a.get(key), b.get(key)) {
            (Some(_), None) => "is gone",
            (None, Some(_)) => "appeared",
            _ => "changed",
        };
        if written.contains(key) {
            return Err(stale(&format!(
                "the live object {key}, which the plan writes,"
            )));
        }
        warnings.push(format!(
            "the live object {key} {how} since the plan was made; the plan does not write it"
        ));
    }
    Ok(warnings)
}

/// The warnings and unmanaged objects the file shows are computed from live: with live as it
/// was, they must be the ones computed now (a file whose warnings were deleted hid them from
/// the approver); after live moved, a difference is only a warning.
fn compare_shown(saved: &Plan, now: &Plan, warnings: &mut Vec<String>) -> Result<(), Mismatch> {
    let parts = [
        ("warnings (checks)", saved.checks != now.checks),
        ("unmanaged objects", saved.unmanaged != now.unmanaged),
    ];
    for (what, differ) in parts {
        match (differ, warnings.is_empty()) {
            (false, _) => {}
            (true, true) => return Err(differs(format!("the {what} differ"))),
            (true, false) => warnings.push(format!(
                "the {what} differ from the file's, since live moved; review them again"
            )),
        }
    }
    Ok(())
}

/// The first difference between two lists of changes, described for the operator.
fn compare_changes(saved: &[Change], now: &[Change]) -> Result<(), Mismatch> {
    if saved.len() != now.len() {
        return Err(differs(format!(
            "the file has {} changes, the plan computed now {}",
            saved.len(),
            now.len()
        )));
    }
    for (i, (s, n)) in saved.iter().zip(now).enumerate() {
        let what = if s.address != n.address {
            format!("change {i} is {} in the file, {} now", s.address, n.address)
        } else if s.action != n.action {
            format!(
                "{}: {} in the file, {} now",
                s.address,
                s.action.as_str(),
                n.action.as_str()
            )
        } else if s.id != n.id {
            format!("{}: the live id differs", s.address)
        } else if s.fields != n.fields {
            format!("{}: the field changes differ", s.address)
        } else if s != n {
            format!(
                "{}: its declared values, flags or dependencies differ",
                s.address
            )
        } else {
            continue;
        };
        return Err(differs(what));
    }
    Ok(())
}

/// Refusals are compared as a set of (code, address, message): any one removed, added or
/// reworded refuses the file.
fn compare_refusals(saved: &[Finding], now: &[Finding]) -> Result<(), Mismatch> {
    let key = |f: &Finding| (f.code.clone(), f.address.clone(), f.message.clone());
    let count = |list: &[Finding]| {
        let mut m: BTreeMap<_, usize> = BTreeMap::new();
        for f in list {
            *m.entry(key(f)).or_default() += 1;
        }
        m
    };
    let (s, n) = (count(saved), count(now));
    if let Some(((code, address, _), _)) = n.iter().find(|(k, v)| s.get(*k) != Some(*v)) {
        return Err(differs(format!(
            "the plan computed now refuses `{code}`{}, which the file does not show",
            address
                .as_ref()
                .map(|a| format!(" at {a}"))
                .unwrap_or_default()
        )));
    }
    if let Some(((code, _, _), _)) = s.iter().find(|(k, v)| n.get(*k) != Some(*v)) {
        return Err(differs(format!(
            "the file shows a refusal `{code}` the plan computed now does not have"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Kind};
    use crate::plan::{Action, Fingerprints, Severity};

    fn change(name: &str, action: Action, id: &str) -> Change {
        Change {
            address: Address::new(Kind::LivekitDispatchRule, name),
            kind: Kind::LivekitDispatchRule,
            action,
            id: (!id.is_empty()).then(|| id.to_string()),
            church: None,
            protected: false,
            irreversible: false,
            reason: crate::plan::Reason::Unchanged,
            fields: Vec::new(),
            before: None,
            after: None,
            depends_on: Vec::new(),
            monthly_cost_delta_cents: 0,
            displaced_from: None,
        }
    }

    fn plan(changes: Vec<Change>, errors: Vec<Finding>) -> Plan {
        let mut summary = BTreeMap::new();
        for tally in changes.iter().flat_map(crate::plan::Tally::of) {
            *summary.entry(tally).or_insert(0) += 1;
        }
        let mut live = BTreeMap::new();
        live.insert("livekit_dispatch_rule/SDR_a".to_string(), "f1".to_string());
        live.insert("livekit_inbound_trunk/ST_b".to_string(), "f2".to_string());
        Plan {
            format_version: crate::plan::FORMAT_VERSION.into(),
            refreshed: true,
            changes,
            edges: Vec::new(),
            unmanaged: Vec::new(),
            checks: Vec::new(),
            errors,
            unprotect: Vec::new(),
            summary,
            monthly_cost_delta_cents: 0,
            fingerprints: Fingerprints {
                config: "c".into(),
                state: "s".into(),
                live,
            },
        }
    }

    fn refusal(code: &str) -> Finding {
        Finding {
            severity: Severity::Error,
            code: code.into(),
            message: format!("{code} happened"),
            address: None,
            help: None,
            span: None,
        }
    }

    #[test]
    fn an_identical_file_passes() {
        let p = plan(vec![change("a", Action::Update, "SDR_a")], vec![]);
        assert_eq!(check(&p, &p), Ok(vec![]));
    }

    #[test]
    fn deleted_errors_are_refused() {
        let now = plan(
            vec![change("a", Action::Create, "")],
            vec![refusal("protected-write")],
        );
        let mut saved = now.clone();
        saved.errors.clear();
        assert!(matches!(check(&saved, &now), Err(Mismatch::Differs { .. })));
        let now = plan(vec![], vec![refusal("mass-change")]);
        let saved = plan(vec![], vec![]);
        assert!(check(&saved, &now).is_err());
    }

    #[test]
    fn injected_or_edited_changes_are_refused() {
        let now = plan(vec![change("a", Action::NoOp, "SDR_a")], vec![]);
        let mut saved = now.clone();
        saved.changes.push(change("b", Action::Create, ""));
        assert!(check(&saved, &now).is_err());
        let mut saved = now.clone();
        saved.changes[0].action = Action::Delete;
        assert!(check(&saved, &now).is_err());
        let mut saved = now.clone();
        saved.changes[0].id = Some("ST_b".into());
        assert!(check(&saved, &now).is_err());
    }

    #[test]
    fn a_moved_object_the_plan_does_not_write_is_a_warning_only() {
        let saved = plan(vec![change("a", Action::Update, "SDR_a")], vec![]);
        let mut now = saved.clone();
        now.fingerprints
            .live
            .insert("livekit_inbound_trunk/ST_b".into(), "f3".into());
        let warnings = check(&saved, &now).expect("only a warning");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let mut now = saved.clone();
        now.fingerprints
            .live
            .insert("livekit_dispatch_rule/SDR_a".into(), "f3".into());
        assert!(matches!(check(&saved, &now), Err(Mismatch::Stale { .. })));
    }

    #[test]
    fn edited_counts_cost_or_warnings_are_refused() {
        let now = plan(vec![change("a", Action::Update, "SDR_a")], vec![]);
        let mut saved = now.clone();
        saved.summary.clear();
        assert!(derived_values_agree(&saved).is_err());
        assert!(matches!(check(&saved, &now), Err(Mismatch::Differs { .. })));
        let mut saved = now.clone();
        saved.monthly_cost_delta_cents = -5;
        assert!(check(&saved, &now).is_err());
        let mut now_warned = now.clone();
        now_warned.checks.push(refusal("dispatch-agent"));
        assert!(matches!(
            check(&now, &now_warned),
            Err(Mismatch::Differs { .. })
        ));
    }

    #[test]
    fn warnings_that_differ_after_live_moved_are_only_a_warning() {
        let saved = plan(vec![change("a", Action::Update, "SDR_a")], vec![]);
        let mut now = saved.clone();
        now.fingerprints
            .live
            .insert("livekit_inbound_trunk/ST_b".into(), "f3".into());
        now.checks.push(refusal("dispatch-agent"));
        let warnings = check(&saved, &now).expect("only warnings");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}
