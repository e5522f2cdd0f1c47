//! Inbound trunks: every routed number on exactly one trunk, and no authentication that the
//! carrier never sends.
//!
//! "One trunk" is LiveKit's rule as `ValidateTrunksIter` decides it: two trunks on one number
//! conflict only when their caller keys (`allowed_numbers`, normalized; none = the empty key)
//! overlap, so trunks split by `allowed_numbers` are valid ([`trunks_conflict`]).

use std::collections::{BTreeMap, BTreeSet};

use super::declared::Declared;
use super::live::{Index, Results};
use super::{CheckResult, Rule};
use crate::config::{Problem, ProblemKind};
use crate::model::{
    DesiredResource, InboundTrunkSpec, Kind, LiveObject, NumberRef, SourceSpan, Spec, E164,
};

/// Not exactly one inbound trunk holds the number: "404 No trunk found", or a conflict.
pub const ONE_TRUNK: Rule = Rule {
    code: "cwa::trunk::not-one-trunk",
    check: "one-inbound-trunk",
    hop: "trunk",
};
/// The trunk asks for authentication the carrier never sends: 407, every call rejected.
pub const AUTH_MISMATCH: Rule = Rule {
    code: "cwa::trunk::auth-mismatch",
    check: "trunk-auth",
    hop: "trunk",
};

/// The inbound trunks that hold a routed number: one per caller (LiveKit's rule, the one
/// validate applies: [`trunks_conflict`]), each asking for no authentication a Telnyx FQDN
/// connection never sends. Returns the trunks a call may land on (several when they are
/// split by `allowed_numbers`; none when the number is on no trunk or on conflicting ones).
pub(super) fn live<'a>(
    index: &Index<'a>,
    number: &E164,
    from_telnyx: bool,
    out: &mut Results,
) -> Vec<&'a LiveObject> {
    let subject = number.as_str();
    let trunks = index
        .trunks_by_number
        .get(number)
        .map_or(&[][..], Vec::as_slice);
    let (one_per_caller, message) = one_trunk_per_caller(trunks);
    out.push(CheckResult::new(
        &ONE_TRUNK,
        subject,
        one_per_caller,
        message,
    ));
    let Some(first) = trunks.first() else {
        return Vec::new();
    };
    // Conflicting trunks: as before, the call's path is followed through the first.
    let landing = if one_per_caller {
        trunks.to_vec()
    } else {
        vec![*first]
    };
    for trunk in &landing {
        if let Spec::LivekitInboundTrunk(t) = &trunk.spec {
            out.push(CheckResult::new(
                &AUTH_MISMATCH,
                &format!("{subject} on {}", trunk.id),
                !asks_auth(&t.auth_username, t.auth_password.is_some()) || !from_telnyx,
                "the trunk asks for authentication the Telnyx FQDN connection never sends: 407, every call rejected".into(),
            ));
        }
    }
    landing
}

/// Whether the live trunks holding one number give every caller exactly one of them, and
/// what the check says: none is "404 No trunk found"; two that one caller could both reach
/// conflict; trunks split by `allowed_numbers` are one trunk per caller, as in validate.
fn one_trunk_per_caller(trunks: &[&LiveObject]) -> (bool, String) {
    let specs: Vec<&InboundTrunkSpec> = trunks
        .iter()
        .filter_map(|t| match &t.spec {
            Spec::LivekitInboundTrunk(s) => Some(s),
            _ => None,
        })
        .collect();
    let conflict = specs
        .iter()
        .enumerate()
        .any(|(i, a)| specs[i + 1..].iter().any(|b| trunks_conflict(a, b)));
    let count = format!(
        "{} inbound trunks hold the number (want exactly 1; none gives 404 No trunk found)",
        trunks.len()
    );
    match trunks.len() {
        0 | 1 => (trunks.len() == 1, count),
        n if !conflict => (
            true,
            format!(
                "{n} inbound trunks hold the number, split by allowed_numbers: each caller reaches exactly one"
            ),
        ),
        _ => (false, count),
    }
}

/// Whether an inbound trunk challenges callers for credentials.
pub fn asks_auth(username: &str, has_password: bool) -> bool {
    !username.is_empty() || has_password
}

/// LiveKit's `NormalizeNumber`: a string of digits, `+`, `-`, spaces and parentheses loses
/// the separators and gains a leading `+`; anything else is kept as it is.
pub fn normalize_number(n: &str) -> String {
    let rest = n.strip_prefix('+').unwrap_or(n);
    let number_like = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ' ' | '(' | ')'));
    if !number_like {
        return n.to_string();
    }
    let kept: String = rest
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    format!("+{kept}")
}

/// The caller keys LiveKit files a trunk under: its normalized `allowed_numbers`, or the
/// empty key when it takes any caller.
fn caller_keys(t: &InboundTrunkSpec) -> BTreeSet<String> {
    if t.allowed_numbers.is_empty() {
        return BTreeSet::from([String::new()]);
    }
    t.allowed_numbers
        .iter()
        .map(|n| normalize_number(n))
        .collect()
}

/// Whether LiveKit would refuse two inbound trunks that share a number: only when one
/// caller could reach both (`ValidateTrunksIter`).
pub fn trunks_conflict(a: &InboundTrunkSpec, b: &InboundTrunkSpec) -> bool {
    !caller_keys(a).is_disjoint(&caller_keys(b))
}

/// The first two trunks on one number that LiveKit would refuse together
/// ([`trunks_conflict`]).
type Holder<'a> = (&'a DesiredResource, SourceSpan);

fn conflicting_pair<'a, 'b>(trunks: &'b [Holder<'a>]) -> Option<(&'b Holder<'a>, &'b Holder<'a>)> {
    let spec = |r: &DesiredResource| match &r.spec {
        Spec::LivekitInboundTrunk(s) => Some(s.clone()),
        _ => None,
    };
    trunks.iter().enumerate().find_map(|(i, a)| {
        trunks[i + 1..].iter().find_map(|b| {
            let (sa, sb) = (spec(a.0)?, spec(b.0)?);
            trunks_conflict(&sa, &sb).then_some((a, b))
        })
    })
}

impl Declared<'_> {
    pub(super) fn inbound_trunks(&mut self) {
        let routed: BTreeMap<NumberRef, String> = self
            .routed_numbers()
            .into_iter()
            .map(|(_, k, via)| (k, via))
            .collect();
        let mut found = Vec::new();
        for t in self.of_kind(Kind::LivekitInboundTrunk) {
            let Spec::LivekitInboundTrunk(s) = &t.spec else {
                continue;
            };
            let has_auth = asks_auth(&s.auth_username, s.auth_password.is_some());
            if s.numbers.is_empty() && !has_auth && s.allowed_addresses.is_empty() {
                found.push(
                    Problem::error(ProblemKind::Routing, t.span, "no numbers", format!("{} holds no numbers", t.addr))
                        .with_help("LiveKit refuses an inbound trunk with no numbers, no auth and no allowed addresses; list its numbers"),
                );
            }
            if !has_auth {
                continue;
            }
            let via = s.numbers.iter().find_map(|n| routed.get(n));
            if let Some(via) = via {
                let span = self
                    .x
                    .spans
                    .get(&t.addr, "auth_username")
                    .or_else(|| self.x.spans.get(&t.addr, "auth_password_env"))
                    .unwrap_or(t.span);
                found.push(
                    Problem::error(
                        ProblemKind::TrunkAuth,
                        span,
                        "authentication set here",
                        format!("{} asks callers for credentials, but {via} sends none", t.addr),
                    )
                    .with_help("LiveKit challenges every INVITE with 407 that is never answered, so every call is rejected and callers hear \"not assigned\"; remove auth_username and auth_password_env from the inbound trunk (security comes from Telnyx owning the DID)"),
                );
            }
        }
        self.extend(found);
    }

    pub(super) fn routing(&mut self) {
        let holders = self.holders();
        let mut found = Vec::new();
        for (number, trunks) in &holders {
            if let Some((&(first, first_span), &(second, second_span))) = conflicting_pair(trunks) {
                found.push(
                    Problem::error(
                        ProblemKind::NumberOnTwoTrunks,
                        second_span,
                        format!("also on {}", second.addr),
                        format!("{number} is on two inbound trunks: {} and {}", first.addr, second.addr),
                    )
                    .with_label(first_span, format!("on {}", first.addr))
                    .with_help("LiveKit refuses two inbound trunks with the same number (\"Conflicting inbound SIP Trunks\") and a call can match only one; keep it on one trunk"),
                );
            }
        }
        for (number, key, via) in self.routed_numbers() {
            if holders.contains_key(&key) {
                continue;
            }
            found.push(
                Problem::error(
                    ProblemKind::Routing,
                    self.at(number, "number"),
                    "no inbound trunk holds this number",
                    format!("{} reaches LiveKit through {via}, but no inbound trunk holds it", number.addr),
                )
                .with_help("LiveKit answers \"404 No trunk found\"; add the number to a [livekit.inbound_trunk.<name>] (a church line gets its own trunk by itself)"),
            );
        }
        self.extend(found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalize_like_livekit() {
        assert_eq!(normalize_number("1 (414) 400-7103"), "+14144007103");
        assert_eq!(normalize_number("+14144007103"), "+14144007103");
        assert_eq!(normalize_number("anonymous"), "anonymous");
    }

    fn trunk(allowed: &[&str]) -> InboundTrunkSpec {
        InboundTrunkSpec {
            allowed_numbers: allowed.iter().map(|s| s.to_string()).collect(),
            ..InboundTrunkSpec::holding("t", Vec::new())
        }
    }

    fn live_trunk(id: &str, allowed: &[&str]) -> LiveObject {
        LiveObject {
            id: id.into(),
            spec: Spec::LivekitInboundTrunk(trunk(allowed)),
            extra: Default::default(),
        }
    }

    /// The live rule is validate's: one trunk per caller, not one trunk per number.
    #[test]
    fn one_trunk_per_caller_is_the_live_rule_too() {
        let (open, vip, other) = (
            live_trunk("ST_open", &[]),
            live_trunk("ST_vip", &["+15550001"]),
            live_trunk("ST_other", &["+1 555 0001"]),
        );
        assert!(!one_trunk_per_caller(&[]).0, "no trunk: 404");
        assert!(one_trunk_per_caller(&[&open]).0);
        assert!(
            one_trunk_per_caller(&[&open, &vip]).0,
            "split by allowed_numbers"
        );
        assert!(
            !one_trunk_per_caller(&[&open, &open]).0,
            "any caller reaches both"
        );
        assert!(
            !one_trunk_per_caller(&[&open, &vip, &other]).0,
            "+15550001 reaches two"
        );
    }

    #[test]
    fn trunks_split_by_allowed_numbers_do_not_conflict() {
        assert!(trunks_conflict(&trunk(&[]), &trunk(&[])));
        assert!(!trunks_conflict(&trunk(&["+15550001"]), &trunk(&[])));
        assert!(!trunks_conflict(
            &trunk(&["+15550001"]),
            &trunk(&["+15550002"])
        ));
        assert!(trunks_conflict(
            &trunk(&["+1 555 0001"]),
            &trunk(&["+15550001", "+15550003"])
        ));
    }
}
