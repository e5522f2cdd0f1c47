//! Drift: what is live but differs from lines.toml and state, as a read-only view of a plan.
//!
//! A plan already knows every difference (it is what apply would fix); drift only sorts them
//! into three classes a reviewer or a nightly job can act on:
//! - `changed`: a declared object whose live fields differ (address, field, declared, live);
//! - `missing`: an object cwa owns (or lines.toml declares) that is not live;
//! - `unmanaged`: a live object neither declared nor owned.
//!
//! There is no second diff here: [`from_plan`] reads a [`Plan`] and nothing else.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Policy;
use crate::model::{Address, Spec};
use crate::plan::{Action, Change, Plan, Reason, SENSITIVE};
use crate::state::State;

/// The version of the JSON drift report (`cwa drift --json`).
pub const FORMAT_VERSION: &str = "1.0";

/// One field of a declared object that differs live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changed {
    pub address: Address,
    pub id: Option<String>,
    /// Dotted field path, e.g. `auth_username` or `agents`. `*` when the whole object is live
    /// but no longer declared.
    pub field: String,
    /// As lines.toml declares it (`null`: not declared); for a `preserved.` field, the value
    /// state last saw.
    pub declared: Value,
    /// As it is live.
    pub live: Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// A declared or owned object that is not live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub address: Address,
    /// The id state remembers, when cwa owns it.
    pub id: Option<String>,
    /// True when state owns it (it existed and is gone); false when it was declared but never
    /// created.
    pub owned: bool,
    /// Why it is missing: `reason` (a sentence) and `action_reason` in JSON, as in plans.
    #[serde(flatten, with = "crate::plan::reason::json")]
    pub reason: Reason,
}

/// A live object neither declared nor owned: the plan's own type.
pub use crate::plan::Unmanaged as UnmanagedObject;

/// Every difference between live and lines.toml + state, by class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub format_version: String,
    pub drift: bool,
    pub changed: Vec<Changed>,
    pub missing: Vec<Missing>,
    pub unmanaged: Vec<UnmanagedObject>,
    /// Numbers cwa keeps after their line was removed (never drift: plan keeps them too).
    #[serde(default)]
    pub kept: Vec<Kept>,
    /// `[ignore]` entries that left something out of this report.
    #[serde(default)]
    pub ignored: Vec<IgnoredEntry>,
}

/// A number state owns that lines.toml no longer declares, kept rather than released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub address: Address,
    pub id: Option<String>,
    pub number: String,
    /// The reason `[kept]` gives, when lines.toml declares the number kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
}

/// An `[ignore]` entry of lines.toml that took effect, and why the operator gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredEntry {
    pub key: String,
    pub reason: String,
}

impl DriftReport {
    pub fn has_drift(&self) -> bool {
        self.drift
    }
}

/// The drift report `cwa drift` shows: the plan's differences, with preserved fields from
/// state and `[ignore]` entries of lines.toml applied.
pub fn report(plan: &Plan, state: &State, policy: &Policy) -> DriftReport {
    ignoring(with_preserved(from_plan(plan), plan, state), policy)
}

/// Sorts the differences a refreshed plan found into the three drift classes.
pub fn from_plan(plan: &Plan) -> DriftReport {
    let mut changed = Vec::new();
    let mut missing = Vec::new();
    for change in &plan.changes {
        classify(change, &mut changed, &mut missing);
    }
    let unmanaged = plan.unmanaged.clone();
    let kept = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Retain)
        .map(|c| Kept {
            address: c.address.clone(),
            id: c.id.clone(),
            number: c.before.as_ref().map(Spec::label).unwrap_or_default(),
            declared: None,
        })
        .collect();
    DriftReport {
        format_version: FORMAT_VERSION.to_string(),
        drift: !(changed.is_empty() && missing.is_empty() && unmanaged.is_empty()),
        changed,
        missing,
        unmanaged,
        kept,
        ignored: Vec::new(),
    }
}

/// Leaves out of `report` what `[ignore]` names (by id, address or label), listing each
/// entry that took effect with its reason, and decides again whether anything is drift.
pub fn ignoring(mut report: DriftReport, policy: &Policy) -> DriftReport {
    let mut hit = std::collections::BTreeMap::new();
    let mut keep = |keys: &[&str]| match policy.ignored(keys) {
        Some(entry) => {
            hit.insert(entry.key.clone(), entry.reason.clone());
            false
        }
        None => true,
    };
    report
        .changed
        .retain(|c| keep(&[&c.address.to_string(), c.id.as_deref().unwrap_or_default()]));
    report
        .missing
        .retain(|m| keep(&[&m.address.to_string(), m.id.as_deref().unwrap_or_default()]));
    report
        .unmanaged
        .retain(|u| keep(&u.keys().each_ref().map(String::as_str)));
    for k in &mut report.kept {
        let keys = [
            k.address.to_string(),
            k.id.clone().unwrap_or_default(),
            k.number.clone(),
        ];
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        k.declared = policy.kept_entry(&keys).map(|e| e.reason.clone());
    }
    report.ignored = hit
        .into_iter()
        .map(|(key, reason)| IgnoredEntry { key, reason })
        .collect();
    report.drift =
        !(report.changed.is_empty() && report.missing.is_empty() && report.unmanaged.is_empty());
    report
}

/// Adds the settings cwa keeps but does not declare ([`Spec::preserved`]: a LiveKit trunk's
/// media encryption or auth realm, an agent's deployment, a room's timeouts) whose live
/// value differs from the one state last saw: a console edit that plan cannot show, because
/// cwa never writes them. Reported as `preserved.<path>`, the last-seen value as `declared`.
/// Objects state recorded before cwa kept these are skipped (nothing to compare with).
pub fn with_preserved(mut report: DriftReport, plan: &Plan, state: &State) -> DriftReport {
    for change in &plan.changes {
        let (Some(id), Some(live)) = (
            change.id.as_ref(),
            change.before.as_ref().and_then(Spec::preserved),
        ) else {
            continue;
        };
        let Some(seen) = state
            .resources
            .get(&change.address.to_string())
            .filter(|r| &r.id == id)
            .and_then(|r| r.spec.preserved())
        else {
            continue;
        };
        let mut keys: Vec<&String> = seen.keys().chain(live.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (was, now) = (seen.get(key), live.get(key));
            if was != now {
                let text = |v: Option<&String>| v.map_or(Value::Null, |v| Value::from(v.clone()));
                report.changed.push(Changed {
                    address: change.address.clone(),
                    id: Some(id.clone()),
                    field: format!("{PRESERVED}{key}"),
                    declared: text(was),
                    live: text(now),
                    sensitive: false,
                });
            }
        }
    }
    report.drift = report.drift || !report.changed.is_empty();
    report
}

/// The field prefix of [`with_preserved`]'s findings.
const PRESERVED: &str = "preserved.";

impl Changed {
    /// The whole object differs (its live copy is not declared at all), not one field.
    pub fn is_whole_object(&self) -> bool {
        self.field == "*"
    }

    /// A field lines.toml no longer declares whose last-seen value was preserved.
    pub fn is_preserved(&self) -> bool {
        self.field.starts_with(PRESERVED)
    }
}

fn classify(change: &Change, changed: &mut Vec<Changed>, missing: &mut Vec<Missing>) {
    match change.action {
        Action::NoOp => {}
        Action::Update | Action::Replace | Action::Adopt | Action::Verify
            if change.id.is_some() =>
        {
            let secrets: Vec<&str> = [&change.before, &change.after]
                .into_iter()
                .flatten()
                .flat_map(|s| s.secrets().into_iter().map(|(name, _)| name))
                .collect();
            changed.extend(change.fields.iter().map(|f| {
                let sensitive = f.sensitive || secrets.contains(&f.path.as_str());
                Changed {
                    address: change.address.clone(),
                    id: change.id.clone(),
                    field: f.path.clone(),
                    declared: masked(&f.after, sensitive),
                    live: masked(&f.before, sensitive),
                    sensitive,
                }
            }));
        }
        Action::Create | Action::Verify => missing.push(Missing {
            address: change.address.clone(),
            id: None,
            owned: change.reason.owned(),
            reason: change.reason.clone(),
        }),
        Action::Forget => missing.push(Missing {
            address: change.address.clone(),
            id: change.id.clone(),
            owned: true,
            reason: change.reason.clone(),
        }),
        Action::Retain => {}
        Action::Delete => changed.push(Changed {
            address: change.address.clone(),
            id: change.id.clone(),
            field: "*".into(),
            declared: Value::Null,
            live: change
                .before
                .as_ref()
                .map(|s| Value::String(s.label()))
                .unwrap_or(Value::Null),
            sensitive: false,
        }),
        Action::Update | Action::Replace | Action::Adopt => {}
    }
}

fn masked(v: &Value, sensitive: bool) -> Value {
    if sensitive && !v.is_null() {
        Value::String(SENSITIVE.to_string())
    } else {
        v.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::plan::{FieldChange, Unmanaged, FORMAT_VERSION as PLAN_VERSION};
    use std::collections::BTreeMap;

    /// Built from JSON so that fields added to `Change` later (with serde defaults) need no
    /// edit here.
    fn change(
        action: Action,
        id: Option<&str>,
        reason: Reason,
        fields: Vec<FieldChange>,
    ) -> Change {
        serde_json::from_value(serde_json::json!({
            "address": "livekit_inbound_trunk.grace",
            "kind": "livekit_inbound_trunk",
            "action": action,
            "id": id,
            "church": null,
            "protected": false,
            "action_reason": reason,
            "fields": fields,
            "before": null,
            "after": null,
            "depends_on": [],
        }))
        .expect("a change")
    }

    fn plan(changes: Vec<Change>, unmanaged: Vec<Unmanaged>) -> Plan {
        Plan {
            format_version: PLAN_VERSION.into(),
            refreshed: true,
            changes,
            edges: vec![],
            unmanaged,
            checks: vec![],
            errors: vec![],
            unprotect: vec![],
            summary: BTreeMap::new(),
            monthly_cost_delta_cents: 0,
            fingerprints: Default::default(),
        }
    }

    #[test]
    fn a_changed_field_reports_declared_and_live() {
        let field = FieldChange {
            path: "auth_username".into(),
            before: Value::String("someone".into()),
            after: Value::String(String::new()),
            sensitive: false,
        };
        let report = from_plan(&plan(
            vec![change(
                Action::Update,
                Some("ST_1"),
                Reason::LiveDiffers,
                vec![field],
            )],
            vec![],
        ));
        assert!(report.drift);
        assert_eq!(report.changed.len(), 1);
        assert_eq!(report.changed[0].live, Value::String("someone".into()));
        assert_eq!(report.changed[0].declared, Value::String(String::new()));
        assert!(report.missing.is_empty() && report.unmanaged.is_empty());
    }

    #[test]
    fn owned_and_gone_is_missing_and_noops_are_not_drift() {
        let report = from_plan(&plan(
            vec![
                change(
                    Action::Create,
                    None,
                    Reason::OwnedButGone {
                        id: "ST_1".into(),
                        provider: crate::model::ProviderName::Livekit,
                    },
                    vec![],
                ),
                change(Action::NoOp, Some("ST_2"), Reason::Unchanged, vec![]),
            ],
            vec![],
        ));
        assert_eq!(report.missing.len(), 1);
        assert!(report.missing[0].owned);
        assert!(report.changed.is_empty());
        let clean = from_plan(&plan(
            vec![change(
                Action::NoOp,
                Some("ST_2"),
                Reason::Unchanged,
                vec![],
            )],
            vec![],
        ));
        assert!(!clean.drift);
        assert!(crate::render::drift::human(&clean).starts_with("No drift"));
    }

    #[test]
    fn unmanaged_objects_are_drift() {
        let report = from_plan(&plan(
            vec![],
            vec![Unmanaged {
                kind: Kind::TelnyxFqdnConnection,
                id: "29".into(),
                label: "LiveKit Inbound v2".into(),
                ignored: None,
            }],
        ));
        assert!(report.drift);
        assert!(crate::render::drift::markdown(&report).contains("LiveKit Inbound v2"));
    }
}
