//! Server-side validation, list updates and conflict checks, after `livekit/protocol`
//! (`livekit/sip.go`, `livekit/sip_validation.go`, `livekit/types.go`, `sip/sip.go`).
//! Every error here is Twirp `invalid_argument` with the Go server's message.

use std::collections::{BTreeSet, HashMap};

use livekit_protocol as proto;
use proto::sip_dispatch_rule::Rule;

use super::matching::normalize_number;
use super::wire::TwirpError;

type Result<T> = std::result::Result<T, TwirpError>;

fn invalid(msg: impl Into<String>) -> TwirpError {
    TwirpError::invalid_argument(msg)
}

/// `SIPInboundTrunkInfo.ValidateResult`.
pub fn inbound_trunk(t: &proto::SipInboundTrunkInfo) -> Result<()> {
    let has_auth = !t.auth_username.is_empty() || !t.auth_password.is_empty();
    if !has_auth && t.allowed_addresses.is_empty() && t.numbers.is_empty() {
        return Err(invalid(
            "for security, one of the fields must be set: AuthUsername+AuthPassword, AllowedAddresses or Numbers",
        ));
    }
    media(t.media.as_ref())?;
    let status = t.ringing_timeout_status;
    if status != 0 && !(400..=699).contains(&status) {
        return Err(invalid(format!(
            "ringing timeout status must be 4xx-6xx, got {status}"
        )));
    }
    headers(&t.headers)?;
    attributes_to_headers(&t.attributes_to_headers)?;
    headers_to_attributes(&t.headers_to_attributes)
}

/// `SIPOutboundTrunkInfo.ValidateResult`.
pub fn outbound_trunk(t: &proto::SipOutboundTrunkInfo) -> Result<()> {
    if t.numbers.is_empty() {
        return Err(invalid("no trunk numbers specified"));
    }
    if t.address.is_empty() {
        return Err(invalid("no outbound address specified"));
    }
    hostname(&t.address, "trunk address")?;
    hostname(&t.from_host, "from_host")?;
    headers(&t.headers)?;
    attributes_to_headers(&t.attributes_to_headers)?;
    headers_to_attributes(&t.headers_to_attributes)?;
    media(t.media.as_ref())
}

/// `SIPDispatchRuleInfo.Validate`.
pub fn dispatch_rule(r: &proto::SipDispatchRuleInfo) -> Result<()> {
    if r.rule.as_ref().and_then(|x| x.rule.as_ref()).is_none() {
        return Err(invalid("missing rule"));
    }
    media(r.media.as_ref())
}

fn hostname(value: &str, field: &str) -> Result<()> {
    if value.contains("transport=") {
        return Err(invalid(format!(
            "{field} should not contain transport parameter"
        )));
    }
    if value.contains(['@', ';']) || value.starts_with("sip:") || value.starts_with("sips:") {
        return Err(invalid(format!(
            "{field} should be a hostname or IP, not SIP URI"
        )));
    }
    Ok(())
}

/// `SIPMediaConfig.Validate`: codec names, and a media timeout within 0..=10 minutes.
pub fn media(m: Option<&proto::SipMediaConfig>) -> Result<()> {
    let Some(m) = m else { return Ok(()) };
    for codec in &m.codecs {
        if codec.name.is_empty() {
            return Err(invalid("missing codec name"));
        }
        if codec.name.contains([' ', '\t', '\n', '\r']) {
            return Err(invalid("invalid codec name"));
        }
        if codec.name.contains('/') {
            return Err(invalid("codec name must not contain '/'"));
        }
    }
    if let Some(timeout) = &m.media_timeout {
        if timeout.seconds < 0 || timeout.nanos < 0 {
            return Err(invalid("media_timeout must not be negative"));
        }
        if timeout.seconds > 600 || (timeout.seconds == 600 && timeout.nanos > 0) {
            return Err(invalid("media_timeout must not exceed 10m0s"));
        }
    }
    Ok(())
}

const FORBIDDEN_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "allow",
    "allow-events",
    "call-id",
    "contact",
    "content-encoding",
    "content-length",
    "content-type",
    "cseq",
    "event",
    "expires",
    "from",
    "max-forwards",
    "record-route",
    "refer-to",
    "reply-to",
    "k",
    "l",
    "m",
    "o",
    "r",
    "t",
    "u",
    "v",
];

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// `ValidateHeaderName`: an RFC 3261 token of at most 255 characters.
fn header_name(name: &str, restrict: bool) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".into());
    }
    if name.len() > 255 {
        return Err("header name too long (max 255 characters)".into());
    }
    if let Some(c) = name.chars().find(|c| !is_token_char(*c)) {
        let why = if (c as u32) < 128 {
            format!("char {} not allowed", c as u32)
        } else {
            format!(
                "char {} out of range, consider explicilty adding utf8 characters",
                c as u32
            )
        };
        return Err(format!(
            "header name {name} contains invalid characters: {why}"
        ));
    }
    if restrict && FORBIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!("header name {name} not supported"));
    }
    Ok(())
}

/// `ValidateHeaderValue`: printable ASCII (plus tab and UTF-8), at most 1024 long.
fn header_value(name: &str, value: &str) -> std::result::Result<(), String> {
    if value.len() > 1024 {
        return Err(format!(
            "header {name}: value too long (max 1024 characters)"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| (*c as u32) < 128 && *c != '\t' && !(' '..='~').contains(c))
    {
        return Err(format!(
            "header {name}: value: char {} not allowed",
            c as u32
        ));
    }
    Ok(())
}

fn headers(map: &HashMap<String, String>) -> Result<()> {
    for (name, value) in sorted(map) {
        header_name(name, true).map_err(|e| invalid(format!("invalid header name: {e}")))?;
        header_value(name, value)
            .map_err(|e| invalid(format!("invalid header value for {name}: {e}")))?;
    }
    Ok(())
}

fn attributes_to_headers(map: &HashMap<String, String>) -> Result<()> {
    for (_, header) in sorted(map) {
        header_name(header, false).map_err(|e| invalid(format!("invalid header name: {e}")))?;
    }
    Ok(())
}

fn headers_to_attributes(map: &HashMap<String, String>) -> Result<()> {
    for (header, _) in sorted(map) {
        header_name(header, false).map_err(|e| invalid(format!("invalid header name: {e}")))?;
    }
    Ok(())
}

fn sorted(map: &HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut pairs: Vec<_> = map.iter().collect();
    pairs.sort();
    pairs
}

/// `ListUpdate.Validate`: exactly one kind of change, no empty element.
pub fn list_update(u: Option<&proto::ListUpdate>) -> Result<()> {
    let Some(u) = u else { return Ok(()) };
    let changes_items = !(u.add.is_empty() && u.remove.is_empty());
    let change = !u.set.is_empty() || changes_items;
    if !u.clear && !change {
        return Err(invalid("unsupported list update operation"));
    }
    if u.clear && change {
        return Err(invalid("cannot clear and change the list at the same time"));
    }
    if !u.set.is_empty() && changes_items {
        return Err(invalid("cannot set and change the list at the same time"));
    }
    if u.set
        .iter()
        .chain(&u.add)
        .chain(&u.remove)
        .any(String::is_empty)
    {
        return Err(invalid("empty element in the list"));
    }
    Ok(())
}

/// `applyListUpdate`: clear, or set, or removes then adds (skipping duplicates).
pub fn apply_list_update(list: &mut Vec<String>, u: Option<&proto::ListUpdate>) {
    let Some(u) = u else { return };
    if u.clear {
        list.clear();
        return;
    }
    if !u.set.is_empty() {
        *list = u.set.clone();
        return;
    }
    for gone in &u.remove {
        if let Some(i) = list.iter().position(|v| v == gone) {
            list.remove(i);
        }
    }
    for new in &u.add {
        if !list.contains(new) {
            list.push(new.clone());
        }
    }
}

/// `applyMapDiff`: a key with an empty value deletes it.
pub fn apply_map_diff(map: &mut HashMap<String, String>, diff: &HashMap<String, String>) {
    for (k, v) in diff {
        if v.is_empty() {
            map.remove(k);
        } else {
            map.insert(k.clone(), v.clone());
        }
    }
}

/// `updateMediaConfig` + `Upgrade`: replace the media config when sent, merge the deprecated
/// encryption enum into it, then mirror it back into the deprecated field.
pub fn update_media(
    media: &mut Option<proto::SipMediaConfig>,
    legacy: &mut i32,
    new_media: Option<&proto::SipMediaConfig>,
    new_legacy: Option<i32>,
) {
    if let Some(m) = new_media {
        *media = Some(m.clone());
    }
    if let Some(e) = new_legacy {
        *legacy = e;
    }
    upgrade_media(media, *legacy);
    *legacy = media.as_ref().and_then(|m| m.encryption).unwrap_or(0);
}

/// `SIPMediaConfig.UpgradeWith`: the media config always exists after an update.
pub fn upgrade_media(media: &mut Option<proto::SipMediaConfig>, legacy: i32) {
    let m = media.get_or_insert_with(Default::default);
    if m.encryption.is_none() && legacy != 0 {
        m.encryption = Some(legacy);
    }
}

fn print_id(id: &str) -> &str {
    if id.is_empty() {
        "<new>"
    } else {
        id
    }
}

fn print_numbers(numbers: &[String]) -> String {
    if numbers.is_empty() {
        "<any>".into()
    } else {
        go_quoted_list(numbers)
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// `sip.ValidateTrunksIter`: two inbound trunks conflict when they share a normalized number
/// (or are both wildcards) and an allowed-number key. Auth and addresses play no part.
pub fn inbound_trunk_conflicts<'a>(
    trunks: impl IntoIterator<Item = &'a proto::SipInboundTrunkInfo>,
) -> Result<()> {
    let mut buckets: HashMap<String, HashMap<String, &proto::SipInboundTrunkInfo>> = HashMap::new();
    for t in trunks {
        let keys: Vec<String> = if t.numbers.is_empty() {
            vec![String::new()]
        } else {
            unique(t.numbers.iter().map(|n| normalize_number(n)))
        };
        for key in keys {
            check_allowed_numbers(buckets.entry(key).or_default(), t)?;
        }
    }
    Ok(())
}

fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items.filter(|k| seen.insert(k.clone())).collect()
}

fn check_allowed_numbers<'a>(
    by_inbound: &mut HashMap<String, &'a proto::SipInboundTrunkInfo>,
    t: &'a proto::SipInboundTrunkInfo,
) -> Result<()> {
    if t.allowed_numbers.is_empty() {
        if let Some(t2) = by_inbound.get("") {
            if t2.sip_trunk_id != t.sip_trunk_id {
                return Err(invalid(format!(
                    "Conflicting inbound SIP Trunks: {:?} and {:?}, using the same number(s) {} without AllowedNumbers set",
                    print_id(&t.sip_trunk_id),
                    print_id(&t2.sip_trunk_id),
                    print_numbers(&t.numbers)
                )));
            }
        }
        by_inbound.insert(String::new(), t);
        return Ok(());
    }
    let mut seen = BTreeSet::new();
    for num in &t.allowed_numbers {
        let key = normalize_number(num);
        if !seen.insert(key.clone()) {
            continue;
        }
        if let Some(t2) = by_inbound.get(&key) {
            if t2.sip_trunk_id != t.sip_trunk_id {
                return Err(invalid(format!(
                    "Conflicting inbound SIP Trunks: {:?} and {:?}, using the same number(s) {} and AllowedNumber {:?}",
                    print_id(&t.sip_trunk_id),
                    print_id(&t2.sip_trunk_id),
                    print_numbers(&t.numbers),
                    num
                )));
            }
        }
        by_inbound.insert(key, t);
    }
    Ok(())
}

/// The room name (or prefix) and the pin of a rule, as `GetPinAndRoom` reads them.
pub fn pin_and_room(r: &proto::SipDispatchRuleInfo) -> Option<(&str, &str)> {
    match r.rule.as_ref()?.rule.as_ref()? {
        Rule::DispatchRuleDirect(d) => Some((&d.room_name, &d.pin)),
        Rule::DispatchRuleIndividual(i) => Some((&i.room_prefix, &i.pin)),
        Rule::DispatchRuleCallee(c) => Some((&c.room_prefix, &c.pin)),
    }
}

/// `DispatchRuleValidator`: the key (pin, trunk, inbound number, number) of every
/// combination must be unique across rules; the rule type and room play no part.
pub fn dispatch_rule_conflicts<'a>(
    rules: impl IntoIterator<Item = &'a proto::SipDispatchRuleInfo>,
) -> Result<()> {
    let mut by_key: HashMap<(String, String, String, String), &proto::SipDispatchRuleInfo> =
        HashMap::new();
    for r in rules {
        let Some((_, pin)) = pin_and_room(r) else {
            return Err(invalid("unsupported SIP Dispatch Rule: <nil>"));
        };
        for key in dispatch_keys(r, pin) {
            if let Some(r2) = by_key.get(&key) {
                let name = if r2.name.is_empty() {
                    "<blank name>"
                } else {
                    &r2.name
                };
                return Err(invalid(format!(
                    "Dispatch rule for the same trunk, inbound number, number, and PIN combination already exists in dispatch rule {:?} {:?}",
                    print_id(&r2.sip_dispatch_rule_id),
                    name
                )));
            }
            by_key.insert(key, r);
        }
    }
    Ok(())
}

fn or_wildcard(items: &[String]) -> Vec<String> {
    if items.is_empty() {
        vec![String::new()]
    } else {
        items.to_vec()
    }
}

fn dispatch_keys(
    r: &proto::SipDispatchRuleInfo,
    pin: &str,
) -> Vec<(String, String, String, String)> {
    let mut keys = Vec::new();
    for trunk in or_wildcard(&r.trunk_ids) {
        for inbound in or_wildcard(&r.inbound_numbers) {
            for number in or_wildcard(&r.numbers) {
                keys.push((
                    pin.to_string(),
                    trunk.clone(),
                    normalize_number(&inbound),
                    normalize_number(&number),
                ));
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(id: &str, numbers: &[&str], allowed: &[&str]) -> proto::SipInboundTrunkInfo {
        proto::SipInboundTrunkInfo {
            sip_trunk_id: id.into(),
            numbers: numbers.iter().map(|s| s.to_string()).collect(),
            allowed_numbers: allowed.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn individual(id: &str, trunks: &[&str], pin: &str) -> proto::SipDispatchRuleInfo {
        proto::SipDispatchRuleInfo {
            sip_dispatch_rule_id: id.into(),
            name: format!("rule {id}"),
            trunk_ids: trunks.iter().map(|s| s.to_string()).collect(),
            rule: Some(proto::SipDispatchRule {
                rule: Some(Rule::DispatchRuleIndividual(
                    proto::SipDispatchRuleIndividual {
                        room_prefix: "call-".into(),
                        pin: pin.into(),
                        no_randomness: false,
                    },
                )),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_inbound_trunk_needs_auth_addresses_or_numbers() {
        let err = inbound_trunk(&inbound("", &[], &[])).unwrap_err();
        assert!(err
            .msg
            .starts_with("for security, one of the fields must be set"));
        assert!(inbound_trunk(&inbound("", &["+14144007103"], &[])).is_ok());
        let with_auth = proto::SipInboundTrunkInfo {
            auth_username: "u".into(),
            ..Default::default()
        };
        assert!(inbound_trunk(&with_auth).is_ok());
    }

    #[test]
    fn forbidden_and_malformed_headers_are_refused() {
        let mut t = inbound("", &["+1"], &[]);
        t.headers.insert("Call-ID".into(), "x".into());
        assert!(inbound_trunk(&t).unwrap_err().msg.contains("not supported"));
        t.headers.clear();
        t.headers.insert("X Bad".into(), "x".into());
        assert!(inbound_trunk(&t).is_err());
        t.headers.clear();
        t.headers.insert("X-Ok".into(), "value".into());
        assert!(inbound_trunk(&t).is_ok());
    }

    #[test]
    fn outbound_trunk_rules() {
        let mut t = proto::SipOutboundTrunkInfo::default();
        assert_eq!(
            outbound_trunk(&t).unwrap_err().msg,
            "no trunk numbers specified"
        );
        t.numbers = vec!["+12268830000".into()];
        assert_eq!(
            outbound_trunk(&t).unwrap_err().msg,
            "no outbound address specified"
        );
        t.address = "sip:sip.telnyx.com".into();
        assert!(outbound_trunk(&t).is_err());
        t.address = "sip.telnyx.com;transport=tcp".into();
        assert!(outbound_trunk(&t)
            .unwrap_err()
            .msg
            .contains("transport parameter"));
        t.address = "sip.telnyx.com".into();
        assert!(outbound_trunk(&t).is_ok());
    }

    #[test]
    fn list_updates_validate_and_apply_like_the_server() {
        let u = |set: &[&str], add: &[&str], remove: &[&str], clear: bool| proto::ListUpdate {
            set: set.iter().map(|s| s.to_string()).collect(),
            add: add.iter().map(|s| s.to_string()).collect(),
            remove: remove.iter().map(|s| s.to_string()).collect(),
            clear,
        };
        let msg = |x: proto::ListUpdate| list_update(Some(&x)).unwrap_err().msg;
        assert_eq!(
            msg(u(&[], &[], &[], false)),
            "unsupported list update operation"
        );
        assert_eq!(
            msg(u(&[], &["a"], &[], true)),
            "cannot clear and change the list at the same time"
        );
        assert_eq!(
            msg(u(&["a"], &["b"], &[], false)),
            "cannot set and change the list at the same time"
        );
        assert_eq!(msg(u(&[], &[""], &[], false)), "empty element in the list");

        let mut list = vec!["a".to_string(), "b".to_string()];
        apply_list_update(&mut list, Some(&u(&[], &["b", "c"], &["a"], false)));
        assert_eq!(list, vec!["b", "c"]);
        apply_list_update(&mut list, Some(&u(&["z"], &[], &[], false)));
        assert_eq!(list, vec!["z"]);
        apply_list_update(&mut list, Some(&u(&[], &[], &[], true)));
        assert!(list.is_empty());
    }

    #[test]
    fn trunks_on_the_same_number_conflict_whatever_their_auth() {
        let old = inbound("ST_old", &["+14144007103"], &[]);
        let mut new = inbound("", &["14144007103"], &[]);
        new.auth_username = "different".into();
        let err = inbound_trunk_conflicts([&old, &new]).unwrap_err();
        assert_eq!(
            err.msg,
            r#"Conflicting inbound SIP Trunks: "<new>" and "ST_old", using the same number(s) ["14144007103"] without AllowedNumbers set"#
        );
    }

    #[test]
    fn allowed_numbers_separate_trunks_on_one_number() {
        let a = inbound("ST_a", &["+1"], &["+2"]);
        let b = inbound("ST_b", &["+1"], &["+3"]);
        assert!(inbound_trunk_conflicts([&a, &b]).is_ok());
        let c = inbound("", &["+1"], &["+3"]);
        let err = inbound_trunk_conflicts([&a, &b, &c]).unwrap_err();
        assert!(
            err.msg.ends_with(r#"and AllowedNumber "+3""#),
            "{}",
            err.msg
        );
        let wildcard = inbound("ST_w", &[], &[]);
        assert!(inbound_trunk_conflicts([&a, &wildcard]).is_ok());
        let wildcard2 = inbound("", &[], &[]);
        let err = inbound_trunk_conflicts([&wildcard, &wildcard2]).unwrap_err();
        assert!(err.msg.contains("<any>"), "{}", err.msg);
    }

    #[test]
    fn dispatch_rules_conflict_on_trunk_and_pin_only() {
        let a = individual("SDR_a", &["ST_1"], "");
        let b = individual("", &["ST_1"], "");
        let err = dispatch_rule_conflicts([&a, &b]).unwrap_err();
        assert!(
            err.msg
                .ends_with(r#"in dispatch rule "SDR_a" "rule SDR_a""#),
            "{}",
            err.msg
        );
        let pinned = individual("", &["ST_1"], "1234");
        assert!(dispatch_rule_conflicts([&a, &pinned]).is_ok());
        let wildcard = individual("SDR_w", &[], "");
        assert!(dispatch_rule_conflicts([&a, &wildcard]).is_ok());
        let wildcard2 = individual("", &[], "");
        assert!(dispatch_rule_conflicts([&wildcard, &wildcard2]).is_err());
    }

    #[test]
    fn media_update_always_leaves_a_media_config() {
        let mut media = None;
        let mut legacy = 0;
        update_media(&mut media, &mut legacy, None, Some(2));
        assert_eq!(media.as_ref().unwrap().encryption, Some(2));
        assert_eq!(legacy, 2);
    }
}
