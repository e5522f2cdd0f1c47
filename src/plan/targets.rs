//! `--target`: which part of a plan to keep. A target is an address lines.toml declares or
//! state owns, or `church.KEY` for a church's whole chain (its number, trunk and rule, declared
//! or owned). A target that names nothing is an error with a did-you-mean: a typo must never
//! quietly target nothing and report "No changes".

use std::collections::BTreeSet;

use super::{Change, Finding, Severity};
use crate::model::{Address, Desired};
use crate::render::escape::terminal;
use crate::state::State;

/// The prefix that targets a church's whole chain.
const CHURCH: &str = "church.";

/// Targets that name nothing.
#[derive(Debug, thiserror::Error)]
#[error("{} --target name(s) nothing lines.toml declares or state owns: {}", .unknown.len(), .unknown.iter().map(|u| terminal(&u.given)).collect::<Vec<_>>().join(", "))]
pub struct TargetError {
    pub unknown: Vec<UnknownTarget>,
}

/// One target that names nothing, and the closest one that exists.
#[derive(Debug, Clone)]
pub struct UnknownTarget {
    pub given: String,
    pub problem: String,
    pub suggestion: Option<String>,
}

impl miette::Diagnostic for TargetError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("cwa::plan::target"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        let lines: Vec<String> = self
            .unknown
            .iter()
            // What was typed is shown escaped: a target holding U+202E or ESC must not
            // reorder or rewrite the line a reader sees.
            .map(|u| {
                let (given, problem) = (terminal(&u.given), terminal(&u.problem));
                match &u.suggestion {
                    Some(s) => format!("--target {given}: {problem}; did you mean `{}`?", terminal(s)),
                    None => format!("--target {given}: {problem}"),
                }
            })
            .chain(std::iter::once(
                "a target is an address (livekit_inbound_trunk.medhanialem) or church.KEY for a church's whole chain".to_string(),
            ))
            .collect();
        Some(Box::new(lines.join("\n")))
    }
}

/// What the user typed, as addresses: every unknown target is reported at once.
pub fn resolve(
    raw: &[String],
    desired: &Desired,
    state: &State,
) -> Result<Vec<Address>, TargetError> {
    let known: BTreeSet<Address> = desired
        .resources
        .keys()
        .cloned()
        .chain(state.owned().map(|(a, _)| a))
        .collect();
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for given in raw {
        match resolve_one(given, desired, state, &known) {
            Ok(addrs) => out.extend(addrs),
            Err(u) => unknown.push(u),
        }
    }
    if !unknown.is_empty() {
        return Err(TargetError { unknown });
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn resolve_one(
    given: &str,
    desired: &Desired,
    state: &State,
    known: &BTreeSet<Address>,
) -> Result<Vec<Address>, UnknownTarget> {
    if let Some(key) = given.strip_prefix(CHURCH) {
        let chain: Vec<Address> = desired
            .resources
            .values()
            .filter(|r| r.church.as_deref() == Some(key))
            .map(|r| r.addr.clone())
            .chain(
                state
                    .owned()
                    .filter(|(_, r)| r.church.as_deref() == Some(key))
                    .map(|(a, _)| a),
            )
            .collect();
        if chain.is_empty() {
            let churches: BTreeSet<String> = desired
                .churches
                .iter()
                .map(|c| format!("{CHURCH}{}", c.key))
                .chain(
                    state
                        .owned()
                        .filter_map(|(_, r)| r.church.as_ref().map(|k| format!("{CHURCH}{k}"))),
                )
                .collect();
            return Err(unknown(given, "no church has this key", &churches));
        }
        return Ok(chain);
    }
    let names: BTreeSet<String> = known.iter().map(Address::to_string).collect();
    match given.parse::<Address>() {
        Ok(addr) if known.contains(&addr) => Ok(vec![addr]),
        Ok(_) => Err(unknown(
            given,
            "lines.toml declares no such address and state owns none",
            &names,
        )),
        Err(e) => Err(unknown(given, &e, &names)),
    }
}

fn unknown(given: &str, problem: &str, candidates: &BTreeSet<String>) -> UnknownTarget {
    let list: Vec<&str> = candidates.iter().map(String::as_str).collect();
    UnknownTarget {
        given: given.to_string(),
        problem: problem.to_string(),
        suggestion: crate::config::raw::suggest(given, &list).map(str::to_string),
    }
}

/// Keeps only the targets and everything they depend on (transitively); undeclared targets
/// (removals) are kept when named. Returns the kept changes and how many that do something
/// were left out. A dependency outside the targets that has a provider write of its own
/// pending is not applied on the side: [`dependency_refusals`] names it as a plan error.
pub fn restrict(
    changes: Vec<Change>,
    targets: &[Address],
    desired: &Desired,
) -> (Vec<Change>, usize) {
    if targets.is_empty() {
        return (changes, 0);
    }
    let mut keep: BTreeSet<Address> = BTreeSet::new();
    let mut todo: Vec<Address> = targets.to_vec();
    while let Some(addr) = todo.pop() {
        if !keep.insert(addr.clone()) {
            continue;
        }
        if let Some(r) = desired.get(&addr) {
            todo.extend(r.dependencies());
        }
    }
    let (kept, dropped): (Vec<Change>, Vec<Change>) =
        changes.into_iter().partition(|c| keep.contains(&c.address));
    let left_out = dropped
        .iter()
        .filter(|c| c.action.changes_anything())
        .count();
    (kept, left_out)
}

/// The warning every targeted plan carries: it is not the whole truth.
pub fn warning(targets: &[Address], left_out: usize) -> Option<Finding> {
    if targets.is_empty() {
        return None;
    }
    Some(Finding {
        severity: Severity::Warning,
        code: "targeting".into(),
        message: format!(
            "targeting in effect: this plan covers only {} and what it depends on; {left_out} other change(s) are left out",
            targets
                .iter()
                .map(Address::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        address: None,
        help: Some(
            "--target is for exceptional cases (repairing one line); run without it to see and apply everything"
                .into(),
        ),
        span: None,
    })
}

/// A plain adopt records a live object in state and writes nothing to the provider.
fn writes_provider(c: &Change) -> bool {
    c.action.changes_anything() && !(c.action == super::Action::Adopt && c.fields.is_empty())
}

/// The plan errors of a targeted plan: every dependency outside the targets whose own change
/// writes to a provider (issue 23: `apply --target church.KEY` applies that church's chain and
/// nothing on the side). `kept` is the restricted plan.
pub fn dependency_refusals(kept: &[Change], targets: &[Address]) -> Vec<Finding> {
    if targets.is_empty() {
        return Vec::new();
    }
    kept.iter()
        .filter(|c| !targets.contains(&c.address) && writes_provider(c))
        .map(|c| Finding {
            severity: Severity::Error,
            code: "target-dependency".into(),
            message: format!(
                "{} has a change of its own pending ({}); --target applies only the targets, never a dependency's change on the side",
                c.address,
                c.action.as_str()
            ),
            address: Some(c.address.to_string()),
            help: Some(format!(
                "apply that first (cwa apply --target {}) or without --target, then rerun",
                c.address
            )),
            span: None,
        })
        .collect()
}

/// The plan errors of an auto-approved apply whose targets are `church.KEY` chains (the
/// provisioning workflow's, issue 23): anything but creating those chains. An approver who
/// reviews the plan (no `--auto-approve`, or a saved plan file) may do more.
pub fn auto_approved_refusals(plan: &[Change], raw_targets: &[String]) -> Vec<Finding> {
    let churches: Vec<&str> = raw_targets
        .iter()
        .filter_map(|t| t.strip_prefix(CHURCH))
        .collect();
    if churches.is_empty() {
        return Vec::new();
    }
    plan.iter()
        .filter(|c| writes_provider(c))
        .filter(|c| c.action != super::Action::Create || !c.church.as_deref().is_some_and(|k| churches.contains(&k)))
        .map(|c| Finding {
            severity: Severity::Error,
            code: "auto-approved-target".into(),
            message: format!(
                "{}: an auto-approved --target church.KEY apply only creates that church's chain, and this is a {}",
                c.address,
                c.action.as_str()
            ),
            address: Some(c.address.to_string()),
            help: Some("review it: run without --auto-approve, or save the plan (cwa plan --out plan.json) and apply that file".into()),
            span: None,
        })
        .collect()
}
