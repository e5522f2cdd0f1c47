//! How LiveKit routes an inbound call: which trunk takes it (`MatchTrunkDetailed`), which
//! dispatch rule wins (`MatchDispatchRuleIter`) and what the room is called
//! (`EvaluateDispatchRule`), after `livekit/protocol` `sip/sip.go`. The call simulation uses
//! these so a simulated call fails exactly where a real one would.

use std::net::IpAddr;

use livekit_protocol as proto;
use proto::sip_dispatch_rule::Rule;
use sha2::{Digest, Sha256};

use super::rules::{dispatch_rule_conflicts, pin_and_room};

/// `NormalizeNumber`: a string of digits, spaces, `-`, `(`, `)` with an optional leading `+`
/// loses its punctuation and gains a `+`; anything else is returned unchanged.
pub fn normalize_number(num: &str) -> String {
    if num.is_empty() {
        return String::new();
    }
    let body = num.strip_prefix('+').unwrap_or(num);
    let looks_like_number = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ' ' | '(' | ')'));
    if !looks_like_number {
        return num.to_string();
    }
    let digits: String = num
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    if digits.starts_with('+') {
        digits
    } else {
        format!("+{digits}")
    }
}

/// The parts of an INVITE the trunk matcher reads.
#[derive(Debug, Clone, Copy)]
pub struct InboundCall<'a> {
    /// The From user: the caller's number as the carrier formats it.
    pub from_user: &'a str,
    /// The From host.
    pub from_host: &'a str,
    /// The IP address the INVITE came from.
    pub source_ip: &'a str,
    /// The To user: the called number as the carrier formats it.
    pub to_user: &'a str,
}

/// Why no single trunk or rule could take the call; the text is LiveKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("Multiple SIP Trunks matched for {0:?}")]
    MultipleTrunks(String),
    #[error("Multiple default SIP Trunks matched for {0:?}")]
    MultipleDefaultTrunks(String),
    #[error("No SIP Dispatch Rules defined")]
    NoRulesDefined,
    #[error("No SIP Trunk or Dispatch Rules matched for {0:?}")]
    NoTrunkOrRules(String),
    #[error("No SIP Dispatch Rules matched for {0:?}")]
    NoRulesMatched(String),
    #[error("{0}")]
    Conflict(String),
}

/// How a trunk was chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrunkMatch<'a> {
    /// A trunk listing the called number.
    Specific(&'a proto::SipInboundTrunkInfo),
    /// The single wildcard trunk (no numbers).
    Default(&'a proto::SipInboundTrunkInfo),
    /// Trunks exist, none accepts the call: LiveKit answers "404 No trunk found".
    None,
    /// No inbound trunk exists at all.
    Empty,
}

impl<'a> TrunkMatch<'a> {
    pub fn trunk(self) -> Option<&'a proto::SipInboundTrunkInfo> {
        match self {
            Self::Specific(t) | Self::Default(t) => Some(t),
            Self::None | Self::Empty => None,
        }
    }
}

/// `MatchTrunkDetailed`: filter by allowed caller numbers and source addresses, then prefer
/// a trunk listing the called number over the wildcard one. Credentials are not inputs.
pub fn match_trunk<'a>(
    trunks: impl IntoIterator<Item = &'a proto::SipInboundTrunkInfo>,
    call: &InboundCall<'_>,
) -> Result<TrunkMatch<'a>, MatchError> {
    let called = normalize_number(call.to_user);
    let mut any = false;
    let mut specific = None;
    let mut defaults = Vec::new();
    for t in trunks {
        any = true;
        if !matches_number(call.from_user, &t.allowed_numbers)
            || !matches_address(call.source_ip, call.from_host, &t.allowed_addresses)
        {
            continue;
        }
        if t.numbers.is_empty() {
            defaults.push(t);
            continue;
        }
        let lists_called = t
            .numbers
            .iter()
            .any(|n| n == call.to_user || normalize_number(n) == called);
        if lists_called {
            if specific.is_some() {
                return Err(MatchError::MultipleTrunks(call.to_user.to_string()));
            }
            specific = Some(t);
        }
    }
    if let Some(t) = specific {
        return Ok(TrunkMatch::Specific(t));
    }
    match defaults.as_slice() {
        [] if any => Ok(TrunkMatch::None),
        [] => Ok(TrunkMatch::Empty),
        [only] => Ok(TrunkMatch::Default(only)),
        _ => Err(MatchError::MultipleDefaultTrunks(call.to_user.to_string())),
    }
}

fn matches_number(num: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let norm = normalize_number(num);
    allowed
        .iter()
        .any(|a| a == num || normalize_number(a) == norm)
}

fn is_valid_mask(mask: &str) -> bool {
    !mask.contains(['(', ')', '+', '*', ';', ',', ' ', '\t', '\n', '\r']) && !mask.contains("://")
}

fn matches_address(source_ip: &str, host: &str, masks: &[String]) -> bool {
    let Ok(ip) = source_ip.parse::<IpAddr>() else {
        return true;
    };
    let masks: Vec<&String> = masks.iter().filter(|m| is_valid_mask(m)).collect();
    if masks.is_empty() {
        return true;
    }
    masks.iter().any(|m| *m == host || mask_contains(m, ip))
}

fn mask_contains(mask: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = mask.split_once('/') else {
        return mask.parse::<IpAddr>() == Ok(ip);
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let shift = 32 - bits;
            let (n, a) = (u32::from(n), u32::from(a));
            shift == 32 || (n >> shift) == (a >> shift)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let shift = 128 - bits;
            let (n, a) = (u128::from(n), u128::from(a));
            shift == 128 || (n >> shift) == (a >> shift)
        }
        _ => false,
    }
}

/// What the caller has said about a PIN so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin<'a> {
    /// Nothing yet: pin rules stay eligible (the call would be asked for the PIN).
    NotSent,
    /// The caller opted out of PINs: pin rules are skipped.
    NoPin,
    /// A PIN was entered: only rules with that PIN remain.
    Sent(&'a str),
}

/// `MatchDispatchRuleIter`: caller/called filters (exact strings), PIN logic, then a rule
/// naming the matched trunk beats any wildcard rule; ties go to the higher priority.
pub fn match_dispatch_rule<'a>(
    trunk: Option<&proto::SipInboundTrunkInfo>,
    rules: impl IntoIterator<Item = &'a proto::SipDispatchRuleInfo>,
    calling: &str,
    called: &str,
    pin: Pin<'_>,
) -> Result<&'a proto::SipDispatchRuleInfo, MatchError> {
    let rules: Vec<&proto::SipDispatchRuleInfo> = rules.into_iter().collect();
    dispatch_rule_conflicts(rules.iter().copied()).map_err(|e| MatchError::Conflict(e.msg))?;
    let mut specific: Option<&proto::SipDispatchRuleInfo> = None;
    let mut default: Option<&proto::SipDispatchRuleInfo> = None;
    for r in rules {
        if !accepts(r, calling, called, pin) {
            continue;
        }
        let slot = if r.trunk_ids.is_empty() {
            &mut default
        } else if trunk.is_some_and(|t| r.trunk_ids.contains(&t.sip_trunk_id)) {
            &mut specific
        } else {
            continue;
        };
        if slot.is_none_or(|best| has_higher_priority(r, best)) {
            *slot = Some(r);
        }
    }
    specific.or(default).ok_or_else(|| {
        if trunk.is_none() {
            MatchError::NoTrunkOrRules(called.to_string())
        } else {
            MatchError::NoRulesMatched(called.to_string())
        }
    })
}

fn accepts(r: &proto::SipDispatchRuleInfo, calling: &str, called: &str, pin: Pin<'_>) -> bool {
    if !r.inbound_numbers.is_empty() && !r.inbound_numbers.iter().any(|n| n == calling) {
        return false;
    }
    if !r.numbers.is_empty() && !r.numbers.iter().any(|n| n == called) {
        return false;
    }
    let Some((_, rule_pin)) = pin_and_room(r) else {
        return false;
    };
    match pin {
        Pin::NotSent => true,
        Pin::NoPin => rule_pin.is_empty(),
        Pin::Sent(sent) => !rule_pin.is_empty() && rule_pin == sent,
    }
}

/// `DispatchRulePriority`: lower wins. Pin rules first, then direct, individual, callee;
/// +1000 each for an empty caller filter and an empty called filter.
pub fn priority(r: &proto::SipDispatchRuleInfo) -> i32 {
    let base = match r.rule.as_ref().and_then(|x| x.rule.as_ref()) {
        None => return i32::MAX,
        Some(Rule::DispatchRuleDirect(d)) => pinned_or(&d.pin, 0, 100),
        Some(Rule::DispatchRuleIndividual(i)) => pinned_or(&i.pin, 1, 101),
        Some(Rule::DispatchRuleCallee(c)) => pinned_or(&c.pin, 2, 102),
    };
    let caller_penalty = if r.inbound_numbers.is_empty() {
        1000
    } else {
        0
    };
    let called_penalty = if r.numbers.is_empty() { 1000 } else { 0 };
    base + caller_penalty + called_penalty
}

fn pinned_or(pin: &str, pinned: i32, open: i32) -> i32 {
    if pin.is_empty() {
        open
    } else {
        pinned
    }
}

fn has_higher_priority(a: &proto::SipDispatchRuleInfo, b: &proto::SipDispatchRuleInfo) -> bool {
    let (pa, pb) = (priority(a), priority(b));
    if pa != pb {
        return pa < pb;
    }
    let room = |r| pin_and_room(r).map(|(room, _)| room).unwrap_or("");
    room(a) < room(b)
}

/// Who the caller becomes in the room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Admission {
    pub room_name: String,
    pub participant_identity: String,
    pub participant_name: String,
}

/// `EvaluateDispatchRule`'s naming: direct uses the room name; individual is
/// `<prefix>_<from>` plus `_<random>` unless `no_randomness`; callee is `<prefix>_<to>` plus
/// `_<random>` only with `randomize`. With `hide_phone_number` the caller shows as its last
/// four digits and its identity is a hash.
pub fn admit(rule: &proto::SipDispatchRuleInfo, from: &str, to: &str, random: &str) -> Admission {
    let (from_shown, identity) = if rule.hide_phone_number {
        let hash = Sha256::digest(from.as_bytes());
        let keep = if from.len() <= 4 {
            from.len().min(1)
        } else {
            4
        };
        (
            from[from.len() - keep..].to_string(),
            format!("sip_{}", hex::encode(&hash[..8])),
        )
    } else {
        (from.to_string(), format!("sip_{from}"))
    };
    let room_name = match rule.rule.as_ref().and_then(|x| x.rule.as_ref()) {
        Some(Rule::DispatchRuleDirect(d)) => d.room_name.clone(),
        Some(Rule::DispatchRuleIndividual(i)) => suffixed(
            prefixed(&i.room_prefix, &from_shown),
            !i.no_randomness,
            random,
        ),
        Some(Rule::DispatchRuleCallee(c)) => {
            suffixed(prefixed(&c.room_prefix, to), c.randomize, random)
        }
        None => String::new(),
    };
    Admission {
        room_name,
        participant_identity: identity,
        participant_name: format!("Phone {from_shown}"),
    }
}

/// The random part LiveKit appends to individual rooms (`guid.New("")`).
pub fn random_suffix() -> String {
    super::ids::random("")
}

fn prefixed(prefix: &str, tail: &str) -> String {
    if prefix.is_empty() {
        tail.to_string()
    } else {
        format!("{prefix}_{tail}")
    }
}

fn suffixed(room: String, random: bool, suffix: &str) -> String {
    if random {
        format!("{room}_{suffix}")
    } else {
        room
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(id: &str, numbers: &[&str]) -> proto::SipInboundTrunkInfo {
        proto::SipInboundTrunkInfo {
            sip_trunk_id: id.into(),
            numbers: numbers.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn call<'a>(from: &'a str, to: &'a str) -> InboundCall<'a> {
        InboundCall {
            from_user: from,
            from_host: "sip.telnyx.com",
            source_ip: "192.76.120.10",
            to_user: to,
        }
    }

    fn rule(id: &str, trunks: &[&str], r: Rule) -> proto::SipDispatchRuleInfo {
        proto::SipDispatchRuleInfo {
            sip_dispatch_rule_id: id.into(),
            trunk_ids: trunks.iter().map(|s| s.to_string()).collect(),
            rule: Some(proto::SipDispatchRule { rule: Some(r) }),
            ..Default::default()
        }
    }

    fn individual(prefix: &str, pin: &str) -> Rule {
        Rule::DispatchRuleIndividual(proto::SipDispatchRuleIndividual {
            room_prefix: prefix.into(),
            pin: pin.into(),
            no_randomness: false,
        })
    }

    #[test]
    fn numbers_are_normalized_like_livekit() {
        assert_eq!(normalize_number("14144007103"), "+14144007103");
        assert_eq!(normalize_number("+1 (414) 400-7103"), "+14144007103");
        assert_eq!(normalize_number("sip-user"), "sip-user");
        assert_eq!(normalize_number(""), "");
    }

    #[test]
    fn a_number_without_plus_still_finds_its_trunk() {
        let trunks = [
            trunk("ST_a", &["+14144007103"]),
            trunk("ST_b", &["+17473897673"]),
        ];
        let m = match_trunk(&trunks, &call("+15550100", "14144007103")).unwrap();
        assert_eq!(m, TrunkMatch::Specific(&trunks[0]));
    }

    #[test]
    fn no_trunk_for_the_number_is_none_and_no_trunks_is_empty() {
        let trunks = [trunk("ST_a", &["+14144007103"])];
        assert_eq!(
            match_trunk(&trunks, &call("+1", "+19999999999")).unwrap(),
            TrunkMatch::None
        );
        assert_eq!(
            match_trunk([], &call("+1", "+1")).unwrap(),
            TrunkMatch::Empty
        );
    }

    #[test]
    fn specific_beats_wildcard_and_two_wildcards_are_an_error() {
        let trunks = [trunk("ST_w", &[]), trunk("ST_a", &["+1414"])];
        assert_eq!(
            match_trunk(&trunks, &call("+1", "+1414")).unwrap(),
            TrunkMatch::Specific(&trunks[1])
        );
        assert_eq!(
            match_trunk(&trunks, &call("+1", "+1999")).unwrap(),
            TrunkMatch::Default(&trunks[0])
        );
        let two = [trunk("ST_w", &[]), trunk("ST_v", &[])];
        assert!(matches!(
            match_trunk(&two, &call("+1", "+1999")),
            Err(MatchError::MultipleDefaultTrunks(_))
        ));
    }

    #[test]
    fn allowed_numbers_and_addresses_filter_trunks() {
        let mut t = trunk("ST_a", &["+1414"]);
        t.allowed_numbers = vec!["+1222".into()];
        assert_eq!(
            match_trunk([&t], &call("+1333", "+1414")).unwrap(),
            TrunkMatch::None
        );
        t.allowed_numbers.clear();
        t.allowed_addresses = vec!["10.0.0.0/8".into()];
        assert_eq!(
            match_trunk([&t], &call("+1333", "+1414")).unwrap(),
            TrunkMatch::None
        );
        t.allowed_addresses = vec!["192.76.120.0/24".into()];
        assert!(match_trunk([&t], &call("+1333", "+1414"))
            .unwrap()
            .trunk()
            .is_some());
        t.allowed_addresses = vec!["*".into()];
        assert!(match_trunk([&t], &call("+1333", "+1414"))
            .unwrap()
            .trunk()
            .is_some());
    }

    #[test]
    fn a_rule_for_the_trunk_beats_a_wildcard_rule() {
        let t = trunk("ST_a", &["+1414"]);
        let rules = [
            rule("SDR_w", &[], individual("any", "")),
            rule("SDR_a", &["ST_a"], individual("call-", "")),
            rule("SDR_b", &["ST_b"], individual("other", "")),
        ];
        let picked = match_dispatch_rule(Some(&t), &rules, "+1", "+1414", Pin::NotSent).unwrap();
        assert_eq!(picked.sip_dispatch_rule_id, "SDR_a");
        let other = trunk("ST_c", &["+1999"]);
        let picked =
            match_dispatch_rule(Some(&other), &rules, "+1", "+1999", Pin::NotSent).unwrap();
        assert_eq!(picked.sip_dispatch_rule_id, "SDR_w");
    }

    #[test]
    fn no_rule_for_the_trunk_is_the_livekit_error() {
        let t = trunk("ST_a", &["+1414"]);
        let rules = [rule("SDR_b", &["ST_b"], individual("x", ""))];
        let err = match_dispatch_rule(Some(&t), &rules, "+1", "+1414", Pin::NotSent).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"No SIP Dispatch Rules matched for "+1414""#
        );
    }

    #[test]
    fn pins_filter_rules() {
        let t = trunk("ST_a", &["+1414"]);
        let rules = [
            rule("SDR_p", &["ST_a"], individual("pin", "1234")),
            rule("SDR_o", &["ST_a"], individual("open", "")),
        ];
        let pick = |pin| match_dispatch_rule(Some(&t), &rules, "+1", "+1414", pin);
        assert_eq!(pick(Pin::NotSent).unwrap().sip_dispatch_rule_id, "SDR_p");
        assert_eq!(pick(Pin::NoPin).unwrap().sip_dispatch_rule_id, "SDR_o");
        assert_eq!(
            pick(Pin::Sent("1234")).unwrap().sip_dispatch_rule_id,
            "SDR_p"
        );
        assert!(pick(Pin::Sent("0000")).is_err());
    }

    #[test]
    fn caller_filtered_rules_outrank_open_ones() {
        let t = trunk("ST_a", &["+1414"]);
        let mut filtered = rule("SDR_f", &["ST_a"], individual("z", ""));
        filtered.inbound_numbers = vec!["+1222".into()];
        let open = rule("SDR_o", &[], individual("a", ""));
        let mut direct = rule(
            "SDR_d",
            &["ST_a"],
            Rule::DispatchRuleDirect(Default::default()),
        );
        direct.numbers = vec!["+1999".into()];
        let rules = [filtered, open, direct];
        let picked = match_dispatch_rule(Some(&t), &rules, "+1222", "+1414", Pin::NotSent).unwrap();
        assert_eq!(picked.sip_dispatch_rule_id, "SDR_f");
        assert_eq!(priority(&rules[0]), 1101);
        assert_eq!(priority(&rules[1]), 2101);
    }

    #[test]
    fn rooms_are_named_per_rule_type() {
        let r = rule("SDR_a", &[], individual("call-", ""));
        let a = admit(&r, "+15551234567", "+1414", "RAND");
        assert_eq!(a.room_name, "call-_+15551234567_RAND");
        assert_eq!(a.participant_identity, "sip_+15551234567");
        assert_eq!(a.participant_name, "Phone +15551234567");

        let mut quiet = rule(
            "SDR_b",
            &[],
            Rule::DispatchRuleCallee(proto::SipDispatchRuleCallee {
                room_prefix: String::new(),
                pin: String::new(),
                randomize: false,
            }),
        );
        assert_eq!(admit(&quiet, "+1", "+1414", "R").room_name, "+1414");
        quiet.hide_phone_number = true;
        let hidden = admit(&quiet, "+15551234567", "+1414", "R");
        assert_eq!(hidden.participant_name, "Phone 4567");
        assert_eq!(hidden.participant_identity.len(), "sip_".len() + 16);
    }
}
