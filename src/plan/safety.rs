//! Refuses plans that would remove too much at once.

use super::{Action, Change, Finding, PlanOptions, Severity};
use crate::model::Desired;
use crate::state::State;

/// An error when deletes and replaces exceed the policy's share of owned objects and the user
/// did not pass `--allow-mass-change`.
pub fn mass_change(
    changes: &[Change],
    state: &State,
    desired: &Desired,
    options: &PlanOptions,
) -> Option<Finding> {
    let owned = state.resources.len();
    if owned == 0 || options.allow_mass_change {
        return None;
    }
    let destructive = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .count();
    let share = destructive as f64 / owned as f64;
    let limit = desired.policy.max_delete_share;
    (share > limit).then(|| Finding {
        severity: Severity::Error,
        code: "mass-change".into(),
        message: format!(
            "this plan deletes or replaces {destructive} of {owned} owned objects ({:.0}%), more than the policy allows ({:.0}%)",
            share * 100.0,
            limit * 100.0
        ),
        address: None,
        help: Some(
            "check that lines.toml is complete; if the change is intended, pass --allow-mass-change or raise max_delete_share in [policy]"
                .into(),
        ),
        span: None,
    })
}
