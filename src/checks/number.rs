//! Numbers: a routed number is owned by a provider, active, and bound to the connection
//! lines.toml binds it to.

use super::live::{same_name, Index, Results};
use super::{CheckResult, Pending, Rule};
use crate::model::{Desired, Kind, Live, LiveObject, Ref, Spec, E164};

/// No provider owns the number: callers hear "not assigned".
pub const NUMBER_OWNED: Rule = Rule {
    code: "cwa::number::not-owned",
    check: "number-owned",
    hop: "number",
};
/// The number is not active.
pub const NUMBER_ACTIVE: Rule = Rule {
    code: "cwa::number::inactive",
    check: "number-active",
    hop: "number",
};
/// The number is bound to no connection, or to one that does not reach LiveKit.
pub const NUMBER_BOUND: Rule = Rule {
    code: "cwa::number::unbound",
    check: "number-bound",
    hop: "connection",
};
/// The number is bound to another connection than lines.toml binds it to.
pub const NUMBER_CONNECTION: Rule = Rule {
    code: "cwa::number::wrong-connection",
    check: "number-connection",
    hop: "connection",
};

/// The checks of one routed number, hop by hop from the number to the agent.
pub(super) fn live(
    desired: &Desired,
    live: &Live,
    index: &Index,
    number: &E164,
    out: &mut Results,
) {
    let subject = number.as_str();
    let telnyx = index.telnyx_numbers.get(number).copied();
    let twilio = index.twilio_numbers.get(number).copied();
    match (telnyx, twilio) {
        (Some(n), _) => check_telnyx_number(desired, live, index, n, subject, out),
        (None, Some(_)) => out.push(CheckResult::new(
            &NUMBER_OWNED,
            subject,
            true,
            "a Twilio number".into(),
        )),
        (None, None) => {
            out.push(CheckResult::new(
                &NUMBER_OWNED,
                subject,
                false,
                "no provider owns this number: callers hear \"not assigned\"".into(),
            ));
            return;
        }
    }
    for trunk in super::trunk::live(index, number, telnyx.is_some(), out) {
        super::dispatch::live(desired, index, number, trunk, out);
    }
}

/// The status of a Telnyx number bought but not yet active.
const ACTIVATING: &str = "purchase-pending";

pub(super) fn live_number(o: &LiveObject) -> Option<&E164> {
    match &o.spec {
        Spec::TelnyxNumber(n) => n.number.fixed(),
        _ => None,
    }
}

fn check_telnyx_number(
    desired: &Desired,
    live: &Live,
    index: &Index,
    n: &LiveObject,
    subject: &str,
    out: &mut Results,
) {
    let status = n
        .extra
        .get("status")
        .map(String::as_str)
        .unwrap_or("active");
    if status == ACTIVATING {
        let line = index
            .number_owners
            .iter()
            .find(|(n, _)| n.as_str() == subject)
            .map_or_else(|| subject.to_string(), |(_, a)| a.to_string());
        out.activating.push(Pending {
            line,
            number: subject.to_string(),
            reason: format!(
                "bought; telnyx is still activating it (status {status}): it rings once active, check again later"
            ),
            activating: true,
        });
    } else {
        out.push(CheckResult::new(
            &NUMBER_ACTIVE,
            subject,
            status == "active",
            format!("number status is {status}"),
        ));
    }
    let Spec::TelnyxNumber(spec) = &n.spec else {
        return;
    };
    let Some(conn_id) = spec.connection.as_ref().and_then(Ref::id) else {
        out.push(CheckResult::new(
            &NUMBER_BOUND,
            subject,
            false,
            "the number is bound to no connection: calls go nowhere".into(),
        ));
        return;
    };
    if let Some((addr, wanted)) = declared_connection(desired, live, index, subject) {
        out.push(CheckResult::new(
            &NUMBER_CONNECTION,
            subject,
            wanted == conn_id,
            format!("the number is bound to {conn_id}; lines.toml binds it to {addr} ({wanted})"),
        ));
    }
    match live.get(Kind::TelnyxFqdnConnection, conn_id) {
        Some(conn) => super::connection::live(desired, index, conn, subject, out),
        None => out.push(CheckResult::new(
            &NUMBER_BOUND,
            subject,
            false,
            format!("bound to {conn_id}, which is not an FQDN connection to LiveKit"),
        )),
    }
}

/// The connection lines.toml binds `number` to, and that connection's live id (found by its
/// name, the natural key of connections and TeXML applications).
fn declared_connection<'a>(
    desired: &Desired,
    live: &'a Live,
    index: &Index,
    number: &str,
) -> Option<(String, &'a str)> {
    let addr = *index.declared_connection.get(&E164::parse(number).ok()?)?;
    let declared = desired.get(addr)?;
    let found = live
        .of_kind(addr.kind)
        .find(|o| same_name(&o.spec, &declared.spec))?;
    Some((addr.to_string(), found.id.as_str()))
}
