//! `cwa apply --json`: what a run did, for machines (a deploy bot, a dashboard, the next CI
//! step). Versioned like the plan: readers check `format_version`.

use serde::Serialize;

use crate::apply::{ApplyReport, Outcome};
use crate::model::Kind;
use crate::plan::Action;
use crate::state::State;

/// The version of the apply report schema; bumped on any incompatible change.
pub const APPLY_FORMAT_VERSION: &str = "1.0";

#[derive(Serialize)]
struct Report<'a> {
    format_version: &'a str,
    /// Every change was made, nothing failed or was left out, the run was not interrupted.
    succeeded: bool,
    interrupted: bool,
    /// Changes made, in the order they finished.
    done: Vec<Done>,
    /// Numbers ordered by this run: the address, the number bought and its provider id.
    numbers_bought: Vec<Bought>,
    failed: Vec<Failed>,
    /// Addresses not attempted because something they depend on failed (or the run stopped).
    not_started: Vec<String>,
    /// The changes a failure blocked, each with the change it waited for and why.
    skipped: Vec<Skipped>,
    /// Objects this run created and then deleted again (`--rollback-on-failure`).
    rolled_back: Vec<String>,
    /// State saves that failed: when, why, and what to do.
    state_not_saved: Vec<StateNotSaved>,
}

#[derive(Serialize)]
struct StateNotSaved {
    when: String,
    error: String,
    fix: String,
}

#[derive(Serialize)]
struct Done {
    address: String,
    action: Action,
    id: Option<String>,
}

#[derive(Serialize)]
struct Bought {
    address: String,
    number: String,
    id: Option<String>,
}

#[derive(Serialize)]
struct Failed {
    address: String,
    action: Action,
    error: String,
    /// What to do about it.
    fix: Option<String>,
    /// Whether a plain rerun can succeed.
    rerun_helps: bool,
}

#[derive(Serialize)]
struct Skipped {
    address: String,
    action: Action,
    waits_for: String,
    reason: String,
}

/// The report as pretty JSON, with the numbers bought read from the state the run saved.
pub fn apply_json(report: &ApplyReport, state: &State) -> String {
    let done: Vec<&Outcome> = report
        .done
        .iter()
        .filter(|o| o.action.changes_anything())
        .collect();
    let doc = Report {
        format_version: APPLY_FORMAT_VERSION,
        succeeded: report.succeeded(),
        interrupted: report.interrupted,
        done: done
            .iter()
            .map(|o| Done {
                address: o.address.to_string(),
                action: o.action,
                id: o.id.clone(),
            })
            .collect(),
        numbers_bought: done
            .iter()
            .filter(|o| o.action == Action::Create && is_number(o.address.kind))
            .map(|o| Bought {
                address: o.address.to_string(),
                number: state
                    .get(&o.address)
                    .map(|r| r.spec.label())
                    .unwrap_or_default(),
                id: o.id.clone(),
            })
            .collect(),
        failed: report
            .failed
            .iter()
            .map(|o| Failed {
                address: o.address.to_string(),
                action: o.action,
                error: o.error.clone().unwrap_or_default(),
                fix: o.fix.clone(),
                rerun_helps: o.rerun_helps,
            })
            .collect(),
        not_started: report
            .skipped
            .iter()
            .map(|s| &s.address)
            .chain(&report.not_started)
            .map(|a| a.to_string())
            .collect(),
        skipped: report
            .skipped
            .iter()
            .map(|s| Skipped {
                address: s.address.to_string(),
                action: s.action,
                waits_for: s.waits_for.to_string(),
                reason: s.reason.clone(),
            })
            .collect(),
        rolled_back: report.rolled_back.iter().map(|a| a.to_string()).collect(),
        state_not_saved: report
            .state_not_saved
            .iter()
            .map(|s| StateNotSaved {
                when: s.when.clone(),
                error: s.error.clone(),
                fix: s.fix.clone(),
            })
            .collect(),
    };
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_default();
    out.push('\n');
    out
}

/// Kinds whose create buys a number.
fn is_number(kind: Kind) -> bool {
    matches!(kind, Kind::TelnyxNumber | Kind::TwilioNumber)
}
