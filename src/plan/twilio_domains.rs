//! Twilio keeps a deleted trunk's domain reserved for up to 30 days (support article; error
//! 21248), and two trunks never share a domain. A plan that creates a trunk on a domain that
//! another trunk holds and this plan deletes (a replace, a renamed address), or that a trunk
//! state owned and that is gone live, will fail at the create however it is ordered: warn
//! before apply.

use super::{Action, Change, Finding, Severity};
use crate::model::{Kind, Live, ProviderName, Spec};
use crate::state::State;

/// The domain of a Twilio trunk spec, lower-case; `None` for other kinds and origination-only
/// trunks.
fn domain(spec: Option<&Spec>) -> Option<String> {
    match spec {
        Some(Spec::TwilioTrunk(t)) if !t.domain_name.is_empty() => {
            Some(t.domain_name.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// One warning per trunk create whose domain is, or is about to be, reserved.
pub fn warnings(changes: &[Change], state: &State, live: &Live) -> Vec<Finding> {
    let released: Vec<(String, String)> = changes
        .iter()
        .filter(|c| c.kind == Kind::TwilioTrunk)
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .filter_map(|c| Some((domain(c.before.as_ref())?, c.address.to_string())))
        .chain(
            state
                .owned()
                .filter(|_| live.was_refreshed(ProviderName::Twilio))
                .filter(|(a, r)| a.kind == Kind::TwilioTrunk && live.get(r.kind(), &r.id).is_none())
                .filter_map(|(a, r)| Some((domain(Some(&r.spec))?, format!("{a} (deleted)")))),
        )
        .collect();
    changes
        .iter()
        .filter(|c| c.kind == Kind::TwilioTrunk)
        .filter(|c| matches!(c.action, Action::Create | Action::Replace))
        .filter_map(|c| {
            let want = domain(c.after.as_ref())?;
            let (_, holder) = released.iter().find(|(d, _)| *d == want)?;
            Some(Finding {
                severity: Severity::Warning,
                code: "twilio-domain-reserved".into(),
                message: format!(
                    "{} needs the domain {want}, which {holder} holds or held; Twilio keeps a deleted trunk's domain reserved for up to 30 days (error 21248), so the create will fail",
                    c.address
                ),
                address: Some(c.address.to_string()),
                help: Some(
                    "keep the existing trunk (declare it under the address state knows it by), or give the new trunk another domain".into(),
                ),
                span: None,
            })
        })
        .collect()
}
