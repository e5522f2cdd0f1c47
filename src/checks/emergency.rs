//! E911 (issue 21): every church line names the address 911 sends help to, and its number's
//! emergency service is active at Telnyx.
//!
//! The address is per church, with no default: a shared default would send help to the wrong
//! building. A line without one is a warning, an error under `[policy]
//! require_emergency_address = true`. Live, Telnyx enables emergency service asynchronously
//! (spec3.yml, `POST /phone_numbers/{id}/actions/enable_emergency` answers 202 "Phone number
//! emergency requested"; EmergencySettings.emergency_status is one of `disabled`, `active`,
//! `provisioning`, `deprovisioning`, `provisioning-failed`): a status other than `active` is
//! shown, never hidden, and a rerun converges once Telnyx is done.

use super::declared::Declared;
use super::live::{Index, Results};
use super::{CheckResult, Finding, Pending, Rule, Severity};
use crate::config::{Problem, ProblemKind};
use crate::model::{Address, Desired, Kind, LiveObject, Spec, E164};

pub use crate::model::EMERGENCY_STATUS;

/// A declared emergency address is not active on the number yet (or its provisioning failed).
pub const EMERGENCY_ACTIVE: Rule = Rule {
    code: "cwa::number::emergency-inactive",
    check: "emergency-active",
    hop: "number",
};

/// What a live number's emergency status means for a caller dialling 911 from it.
pub fn status_meaning(status: &str) -> String {
    match status {
        "active" => "emergency service is active".into(),
        "provisioning" => "Telnyx is still provisioning emergency service (911 calls may not carry the address yet); run `cwa check` again later".into(),
        "provisioning-failed" => "Telnyx could not provision emergency service; `cwa apply` requests it again (check the address with Telnyx if it fails again)".into(),
        "deprovisioning" => "Telnyx is removing emergency service from this number; `cwa apply` requests it again once that is done".into(),
        other => format!("emergency service is {other}; `cwa apply` enables it"),
    }
}

impl Declared<'_> {
    /// Every church line names an emergency address: a warning without one, an error under
    /// `[policy] require_emergency_address = true`.
    pub(super) fn emergency_addresses(&mut self) {
        let required = self.x.desired.policy.require_emergency_address;
        let missing: Vec<(Address, String, crate::model::SourceSpan)> = self
            .of_kind(Kind::TelnyxNumber)
            .filter_map(|r| {
                let church = r.church.as_ref()?;
                let Spec::TelnyxNumber(n) = &r.spec else {
                    return None;
                };
                n.settings
                    .emergency_address
                    .is_none()
                    .then(|| (r.addr.clone(), church.clone(), r.span))
            })
            .collect();
        for (addr, church, span) in missing {
            let p = Problem::error(
                ProblemKind::EmergencyAddress,
                span,
                "no emergency address",
                format!(
                    "church line {addr} has no emergency_address: a 911 call from it carries no address for help to go to"
                ),
            )
            .with_help(format!(
                "declare [telnyx.emergency_address.<name>] (the church's street address) and add emergency_address = \"<name>\" to [church.{church}]{}",
                if required {
                    ""
                } else {
                    "; [policy] require_emergency_address = true makes this an error"
                }
            ));
            self.push(if required { p } else { p.as_warning() });
        }
    }
}

/// The plan's note on a number whose emergency service lines.toml declares and Telnyx is
/// still provisioning: the plan has nothing to change (the request is in), and says so.
pub fn provisioning_note(address: &Address, declared: &Spec, live: &LiveObject) -> Option<Finding> {
    let Spec::TelnyxNumber(d) = declared else {
        return None;
    };
    d.settings.emergency_address.as_ref()?;
    let status = live.extra.get(EMERGENCY_STATUS)?;
    (status == "provisioning").then(|| Finding {
        severity: Severity::Warning,
        code: EMERGENCY_ACTIVE.check.into(),
        message: format!(
            "live now: emergency status provisioning: {} ({})",
            status_meaning(status),
            live.spec.label()
        ),
        address: Some(address.to_string()),
        help: None,
        span: None,
    })
}

/// The emergency check of one routed line: when lines.toml declares its emergency address,
/// the live number's emergency status is `active`.
pub(super) fn live(
    desired: &Desired,
    index: &Index,
    owner: Option<&Address>,
    number: &E164,
    out: &mut Results,
) {
    let declared = owner
        .and_then(|a| desired.get(a))
        .and_then(|r| match &r.spec {
            Spec::TelnyxNumber(n) => n.settings.emergency_address.as_ref(),
            _ => None,
        });
    let (Some(address), Some(live)) = (declared, index.telnyx_numbers.get(number)) else {
        return;
    };
    let Spec::TelnyxNumber(spec) = &live.spec else {
        return;
    };
    let status = live
        .extra
        .get(EMERGENCY_STATUS)
        .map(String::as_str)
        .unwrap_or("disabled");
    let enabled = spec.settings.emergency_address.is_some();
    if enabled && status == "provisioning" {
        // Like a number still activating: Telnyx is carrying the request out; nothing for
        // cwa to do, and not a failure of the line.
        out.activating.push(Pending {
            line: owner.map_or_else(|| number.to_string(), ToString::to_string),
            number: number.to_string(),
            reason: status_meaning(status),
            activating: true,
        });
        return;
    }
    let message = if enabled || status != "disabled" {
        format!("emergency status {status}: {}", status_meaning(status))
    } else {
        format!("emergency service is off; lines.toml gives it {address}: `cwa apply` enables it")
    };
    out.push(CheckResult::new(
        &EMERGENCY_ACTIVE,
        number.as_str(),
        enabled && status == "active",
        message,
    ));
}
