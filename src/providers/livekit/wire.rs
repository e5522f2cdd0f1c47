//! LiveKit SIP wire mapping: the Twirp error form, the protobuf and Twirp-JSON shapes of
//! trunks and rules, and their normalization into model specs (and back).
//!
//! Canonical forms: numbers E.164 with `+`, sorted; allowed addresses and numbers sorted;
//! transport lower-case `auto`/`udp`/`tcp`/`tls`; outbound address without `sip:`;
//! `destination_country` upper-case; trunk ids and agents sorted; an empty auth password is
//! `None`, any other is the fingerprint of the value LiveKit returns.

use std::collections::{BTreeMap, HashMap};

use livekit_api::services::{ServerError, ServiceError};
use livekit_protocol as proto;
use serde_json::{json, Value};

use super::P;
use crate::model::canonical;
use crate::model::{
    fingerprint, AgentDispatch, DispatchKind, DispatchRuleSpec, InboundTrunkSpec, LiveObject,
    NumberRef, OutboundTrunkSpec, Preserved, Ref, SecretRef, Spec, E164,
};
use crate::providers::common::{live_ids, shown_secret};
use crate::providers::ProviderError;

/// Twirp error body `{"code","msg"}` → (code, msg).
pub(super) fn decode_twirp_error(body: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct TwirpError {
        code: String,
        #[serde(default)]
        msg: String,
    }
    let e: TwirpError = serde_json::from_slice(body).ok()?;
    Some((e.code, e.msg))
}

/// The HTTP status twirp v8 gives each error code.
pub fn twirp_status(code: &str) -> u16 {
    match code {
        "canceled" | "deadline_exceeded" => 408,
        "invalid_argument" | "malformed" | "out_of_range" => 400,
        "not_found" | "bad_route" => 404,
        "already_exists" | "aborted" => 409,
        "permission_denied" => 403,
        "unauthenticated" => 401,
        "resource_exhausted" => 429,
        "failed_precondition" => 412,
        "unimplemented" => 501,
        "unavailable" => 503,
        _ => 500,
    }
}

pub(super) fn service_error(e: ServiceError, operation: &str, object: &str) -> ProviderError {
    let (operation, object) = (operation.to_string(), object.to_string());
    match e {
        ServiceError::Twirp(ServerError::Twirp(t)) => ProviderError::Api {
            provider: P,
            operation,
            object,
            status: twirp_status(&t.code),
            code: t.code,
            detail: t.msg,
        },
        ServiceError::Twirp(ServerError::Request(r)) => ProviderError::Transport {
            provider: P,
            operation,
            object,
            detail: match r.status() {
                Some(s) => format!("HTTP {s} with an unreadable body"),
                None if r.is_timeout() => "timed out".to_string(),
                None if r.is_connect() => "could not connect".to_string(),
                None if r.is_decode() => "an error answer without a Twirp error body (LiveKit answers a bad API key or secret with a plain-text 401)".to_string(),
                None => "the request failed".to_string(),
            },
        },
        ServiceError::Twirp(ServerError::Prost(d)) => ProviderError::Decode {
            provider: P,
            operation,
            object,
            detail: d.to_string(),
        },
        other => ProviderError::Config {
            provider: P,
            detail: format!("{operation} {object}: {other}"),
        },
    }
}

/// A trunk or rule in LiveKit's Twirp JSON form, every field it answered kept.
pub(super) type Wire = serde_json::Map<String, Value>;

/// A string field of a JSON object, in either protobuf-JSON spelling.
pub(super) fn wire_str<'a>(v: &'a Value, snake: &str) -> Option<&'a str> {
    v.get(snake)
        .or_else(|| v.get(lower_camel(snake)))
        .and_then(Value::as_str)
}

/// `sip_trunk_id` -> `sipTrunkId`, protobuf's JSON name.
pub(super) fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Sets one field of a JSON object under its proto name, dropping the other spelling.
pub(super) fn put(wire: &mut Wire, snake: &str, value: Value) {
    wire.remove(&lower_camel(snake));
    wire.insert(snake.to_string(), value);
}

/// The object LiveKit answered with cwa's fields set from `info` (everything else as it was).
pub(super) fn inbound_wire(mut wire: Wire, info: &proto::SipInboundTrunkInfo) -> Wire {
    put(&mut wire, "name", json!(info.name));
    put(&mut wire, "metadata", json!(info.metadata));
    put(&mut wire, "numbers", json!(info.numbers));
    put(
        &mut wire,
        "allowed_addresses",
        json!(info.allowed_addresses),
    );
    put(&mut wire, "allowed_numbers", json!(info.allowed_numbers));
    put(&mut wire, "auth_username", json!(info.auth_username));
    put(&mut wire, "auth_password", json!(info.auth_password));
    put(&mut wire, "krisp_enabled", json!(info.krisp_enabled));
    wire
}

pub(super) fn outbound_wire(mut wire: Wire, info: &proto::SipOutboundTrunkInfo) -> Wire {
    put(&mut wire, "name", json!(info.name));
    put(&mut wire, "metadata", json!(info.metadata));
    put(&mut wire, "address", json!(info.address));
    put(&mut wire, "transport", json!(info.transport));
    put(&mut wire, "numbers", json!(info.numbers));
    put(&mut wire, "auth_username", json!(info.auth_username));
    put(&mut wire, "auth_password", json!(info.auth_password));
    put(&mut wire, "headers", json!(info.headers));
    put(
        &mut wire,
        "destination_country",
        json!(info.destination_country),
    );
    wire
}

/// The rule LiveKit answered with cwa's fields set: the rule kind (its other settings kept
/// when the kind is the same), trunks, name, metadata, `hide_phone_number`, and the agents
/// in `room_config.agents` (an agent kept keeps every setting cwa does not manage, such as
/// `deployment`; the rest of `room_config` is untouched).
pub(super) fn rule_wire(
    spec: &DispatchRuleSpec,
    mut wire: Wire,
    current: &proto::SipDispatchRuleInfo,
    object: &str,
) -> Result<Wire, ProviderError> {
    let info = rule_info(spec, Some(current.clone()), object)?;
    let rule = info.rule.as_ref().and_then(|r| r.rule.as_ref());
    let previous = wire.get("rule").cloned();
    put(&mut wire, "rule", rule_kind_wire(rule, previous.as_ref()));
    put(&mut wire, "trunk_ids", json!(info.trunk_ids));
    put(&mut wire, "name", json!(info.name));
    put(&mut wire, "metadata", json!(info.metadata));
    put(
        &mut wire,
        "hide_phone_number",
        json!(info.hide_phone_number),
    );
    put(&mut wire, "krisp_enabled", json!(info.krisp_enabled));
    let mut config = wire
        .get("room_config")
        .or_else(|| wire.get("roomConfig"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let before: Vec<Value> = config
        .get("agents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let agents: Vec<Value> = spec
        .agents
        .iter()
        .map(|a| {
            let mut agent = before
                .iter()
                .find(|p| wire_str(p, "agent_name") == Some(a.agent_name.as_str()))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            put(&mut agent, "agent_name", json!(a.agent_name));
            put(&mut agent, "metadata", json!(a.metadata));
            Value::Object(agent)
        })
        .collect();
    put(&mut config, "agents", Value::Array(agents));
    put(&mut wire, "room_config", Value::Object(config));
    Ok(wire)
}

/// The `rule` oneof in JSON: the new kind's fields over the previous kind's object when the
/// kind is the same.
pub(super) fn rule_kind_wire(
    rule: Option<&proto::sip_dispatch_rule::Rule>,
    previous: Option<&Value>,
) -> Value {
    use proto::sip_dispatch_rule::Rule;
    let (key, fields) = match rule {
        Some(Rule::DispatchRuleDirect(d)) => (
            "dispatch_rule_direct",
            json!({"room_name": d.room_name, "pin": d.pin}),
        ),
        Some(Rule::DispatchRuleCallee(c)) => (
            "dispatch_rule_callee",
            json!({"room_prefix": c.room_prefix, "pin": c.pin, "randomize": c.randomize}),
        ),
        Some(Rule::DispatchRuleIndividual(i)) => (
            "dispatch_rule_individual",
            json!({"room_prefix": i.room_prefix, "pin": i.pin, "no_randomness": i.no_randomness}),
        ),
        None => return previous.cloned().unwrap_or(Value::Null),
    };
    let mut kind = previous
        .and_then(|p| p.get(key).or_else(|| p.get(lower_camel(key))))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in fields.as_object().into_iter().flatten() {
        put(&mut kind, k, v.clone());
    }
    json!({ key: Value::Object(kind) })
}

/// A list as `ListUpdate`: `set` to the wanted items, or `clear` when none are wanted (an
/// empty `set` is refused as "unsupported list update operation").
pub(super) fn list_set(want: Vec<String>) -> proto::ListUpdate {
    proto::ListUpdate {
        clear: want.is_empty(),
        set: want,
        ..Default::default()
    }
}

/// The list update for `want` when it differs from `have` as a set.
pub(super) fn list_change(want: &[String], have: &[String]) -> Option<proto::ListUpdate> {
    (canonical::set(want.to_vec()) != canonical::set(have.to_vec()))
        .then(|| list_set(want.to_vec()))
}

pub(super) fn changed(want: &str, have: &str) -> Option<String> {
    (want != have).then(|| want.to_string())
}

/// The `update` action that brings `current` to `spec`, or `None` when a field without an
/// update field changes (`krisp_enabled`).
pub fn inbound_update(
    spec: &InboundTrunkSpec,
    current: &proto::SipInboundTrunkInfo,
    object: &str,
) -> Result<Option<proto::SipInboundTrunkUpdate>, ProviderError> {
    if spec.krisp_enabled != current.krisp_enabled {
        return Ok(None);
    }
    let want = inbound_info(spec, Some(current.clone()), object)?;
    Ok(Some(proto::SipInboundTrunkUpdate {
        numbers: list_change(&want.numbers, &normalize_all(&current.numbers)),
        allowed_addresses: list_change(&want.allowed_addresses, &current.allowed_addresses),
        allowed_numbers: list_change(&want.allowed_numbers, &current.allowed_numbers),
        auth_username: changed(&want.auth_username, &current.auth_username),
        auth_password: changed(&want.auth_password, &current.auth_password),
        name: changed(&want.name, &current.name),
        metadata: changed(&want.metadata, &current.metadata),
        ..Default::default()
    }))
}

/// As [`inbound_update`]; `headers` has no update field.
pub fn outbound_update(
    spec: &OutboundTrunkSpec,
    current: &proto::SipOutboundTrunkInfo,
    object: &str,
) -> Result<Option<proto::SipOutboundTrunkUpdate>, ProviderError> {
    let want = outbound_info(spec, Some(current.clone()), object)?;
    if want.headers != current.headers {
        return Ok(None);
    }
    Ok(Some(proto::SipOutboundTrunkUpdate {
        address: changed(&want.address, &current.address),
        transport: (want.transport != current.transport).then_some(want.transport),
        destination_country: changed(&want.destination_country, &current.destination_country),
        numbers: list_change(&want.numbers, &normalize_all(&current.numbers)),
        auth_username: changed(&want.auth_username, &current.auth_username),
        auth_password: changed(&want.auth_password, &current.auth_password),
        name: changed(&want.name, &current.name),
        metadata: changed(&want.metadata, &current.metadata),
        ..Default::default()
    }))
}

/// As [`inbound_update`]; agents, `hide_phone_number` and `krisp_enabled` have no update
/// field.
pub fn rule_update(
    spec: &DispatchRuleSpec,
    current: &proto::SipDispatchRuleInfo,
    object: &str,
) -> Result<Option<proto::SipDispatchRuleUpdate>, ProviderError> {
    let want = rule_info(spec, Some(current.clone()), object)?;
    if want.hide_phone_number != current.hide_phone_number
        || want.krisp_enabled != current.krisp_enabled
        || want.room_config != current.room_config
    {
        return Ok(None);
    }
    Ok(Some(proto::SipDispatchRuleUpdate {
        trunk_ids: list_change(&want.trunk_ids, &current.trunk_ids),
        rule: (want.rule != current.rule)
            .then(|| want.rule.clone())
            .flatten(),
        name: changed(&want.name, &current.name),
        metadata: changed(&want.metadata, &current.metadata),
        ..Default::default()
    }))
}

pub(super) fn gone(object: &str, id: &str) -> ProviderError {
    ProviderError::Api {
        provider: P,
        operation: "update".into(),
        object: object.to_string(),
        status: 404,
        code: "not_found".into(),
        detail: format!("{id} does not exist"),
    }
}

pub(super) fn normalize_all(numbers: &[String]) -> Vec<String> {
    numbers
        .iter()
        .map(|n| {
            E164::normalize(n)
                .map(String::from)
                .unwrap_or_else(|_| n.clone())
        })
        .collect()
}

pub(super) fn strip_sip(address: &str) -> String {
    address
        .trim()
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .to_ascii_lowercase()
}

/// Numbers a trunk holds, as LiveKit takes them; each must already be a number.
pub(super) fn number_strings(
    numbers: &[NumberRef],
    object: &str,
) -> Result<Vec<String>, ProviderError> {
    numbers
        .iter()
        .map(|n| match n {
            NumberRef::Number(e) => Ok(e.as_str().to_string()),
            NumberRef::Of(a) => Err(ProviderError::Config {
                provider: P,
                detail: format!("{object}: the number of {a} was not resolved"),
            }),
        })
        .collect()
}

/// The password to send: the resolved value; none wanted means empty; a secret known only by
/// fingerprint keeps what the trunk has.
pub(super) fn password_to_send(
    want: &Option<SecretRef>,
    current: &str,
    object: &str,
) -> Result<String, ProviderError> {
    match want {
        None => Ok(String::new()),
        Some(SecretRef::Value(v)) => Ok(v.expose().to_string()),
        Some(SecretRef::Fingerprint(f)) if !current.is_empty() && fingerprint(current) == *f => {
            Ok(current.to_string())
        }
        Some(_) => Err(ProviderError::Config {
            provider: P,
            detail: format!("{object}: the auth password must be resolved from its environment variable before writing"),
        }),
    }
}

/// Splits trunk numbers into E.164 numbers and anything else (kept in `extra`).
pub(super) fn split_numbers(numbers: &[String]) -> (Vec<NumberRef>, Vec<String>) {
    let mut ok = Vec::new();
    let mut other = Vec::new();
    for n in numbers {
        match E164::normalize(n) {
            Ok(e) => ok.push(e),
            Err(_) => other.push(n.clone()),
        }
    }
    ok.sort();
    ok.dedup();
    (ok.into_iter().map(NumberRef::Number).collect(), other)
}

pub fn transport_name(t: i32) -> &'static str {
    match proto::SipTransport::try_from(t) {
        Ok(proto::SipTransport::Udp) => "udp",
        Ok(proto::SipTransport::Tcp) => "tcp",
        Ok(proto::SipTransport::Tls) => "tls",
        _ => "auto",
    }
}

pub fn transport_value(name: &str, object: &str) -> Result<i32, ProviderError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "" | "auto" => proto::SipTransport::Auto,
        "udp" => proto::SipTransport::Udp,
        "tcp" => proto::SipTransport::Tcp,
        "tls" => proto::SipTransport::Tls,
        other => {
            return Err(ProviderError::Config {
                provider: P,
                detail: format!("{object}: unknown transport `{other}` (auto, udp, tcp or tls)"),
            })
        }
    } as i32)
}

pub fn inbound_object(t: &proto::SipInboundTrunkInfo) -> LiveObject {
    let (numbers, unparsed) = split_numbers(&t.numbers);
    let mut extra = BTreeMap::new();
    if !unparsed.is_empty() {
        extra.insert("unparsed_numbers".to_string(), unparsed.join(","));
    }
    if !t.auth_realm.is_empty() {
        extra.insert("auth_realm".to_string(), t.auth_realm.clone());
    }
    extra.insert("record_type".to_string(), "sip_inbound_trunk".to_string());
    LiveObject {
        id: t.sip_trunk_id.clone(),
        spec: Spec::LivekitInboundTrunk(InboundTrunkSpec {
            name: t.name.clone(),
            metadata: t.metadata.clone(),
            numbers,
            allowed_addresses: canonical::set(t.allowed_addresses.clone()),
            allowed_numbers: canonical::set(t.allowed_numbers.clone()),
            auth_username: t.auth_username.clone(),
            auth_password: shown_secret(Some(&t.auth_password)),
            krisp_enabled: t.krisp_enabled,
            preserved: Preserved::read(inbound_preserved(t)),
        }),
        extra,
    }
}

/// A field's value when it is set (not its zero value), for [`InboundTrunkSpec::preserved`]
/// and the like.
pub(super) fn set_value(out: &mut BTreeMap<String, String>, path: &str, value: String) {
    if !value.is_empty() && value != "0" && value != "0s" {
        out.insert(path.to_string(), value);
    }
}

/// A protobuf Duration's whole seconds as `"30s"`, or empty when unset.
pub(super) fn duration_text(seconds: Option<i64>) -> String {
    seconds.map(|s| format!("{s}s")).unwrap_or_default()
}

#[allow(deprecated)]
pub(super) fn media_preserved(
    out: &mut BTreeMap<String, String>,
    media: Option<&proto::SipMediaConfig>,
    legacy: i32,
) {
    let name = |e: i32| {
        proto::SipMediaEncryption::try_from(e)
            .map(|e| e.as_str_name().to_string())
            .unwrap_or_else(|_| e.to_string())
    };
    let encryption = media.and_then(|m| m.encryption).unwrap_or(legacy);
    if encryption != 0 {
        set_value(out, "media.encryption", name(encryption));
    }
    if let Some(m) = media {
        let codecs: Vec<String> = m.codecs.iter().map(|c| c.name.clone()).collect();
        set_value(out, "media.codecs", codecs.join(","));
        if m.only_listed_codecs {
            set_value(out, "media.only_listed_codecs", "true".into());
        }
        set_value(
            out,
            "media.media_timeout",
            duration_text(m.media_timeout.as_ref().map(|d| d.seconds)),
        );
    }
}

/// The inbound settings cwa keeps but does not declare: auth realm, media, timeouts.
#[allow(deprecated)]
pub(super) fn inbound_preserved(t: &proto::SipInboundTrunkInfo) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    set_value(&mut out, "auth_realm", t.auth_realm.clone());
    media_preserved(&mut out, t.media.as_ref(), t.media_encryption);
    set_value(
        &mut out,
        "ringing_timeout",
        duration_text(t.ringing_timeout.as_ref().map(|d| d.seconds)),
    );
    set_value(
        &mut out,
        "max_call_duration",
        duration_text(t.max_call_duration.as_ref().map(|d| d.seconds)),
    );
    out
}

/// The outbound settings cwa keeps but does not declare: media, `from_host`.
#[allow(deprecated)]
pub(super) fn outbound_preserved(t: &proto::SipOutboundTrunkInfo) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    media_preserved(&mut out, t.media.as_ref(), t.media_encryption);
    set_value(&mut out, "from_host", t.from_host.clone());
    out
}

/// The rule settings cwa keeps but does not declare: each agent's deployment, the room's
/// timeouts and size, the room preset, media.
#[allow(deprecated)]
pub(super) fn rule_preserved(r: &proto::SipDispatchRuleInfo) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(c) = &r.room_config {
        for a in &c.agents {
            set_value(
                &mut out,
                &format!("agents.{}.deployment", a.agent_name),
                a.deployment.clone(),
            );
        }
        set_value(
            &mut out,
            "room_config.empty_timeout",
            c.empty_timeout.to_string(),
        );
        set_value(
            &mut out,
            "room_config.departure_timeout",
            c.departure_timeout.to_string(),
        );
        set_value(
            &mut out,
            "room_config.max_participants",
            c.max_participants.to_string(),
        );
    }
    set_value(&mut out, "room_preset", r.room_preset.clone());
    media_preserved(&mut out, r.media.as_ref(), r.media_encryption);
    out
}

pub fn outbound_object(t: &proto::SipOutboundTrunkInfo) -> LiveObject {
    let (numbers, unparsed) = split_numbers(&t.numbers);
    let mut extra = BTreeMap::new();
    if !unparsed.is_empty() {
        extra.insert("unparsed_numbers".to_string(), unparsed.join(","));
    }
    if !t.from_host.is_empty() {
        extra.insert("from_host".to_string(), t.from_host.clone());
    }
    extra.insert("record_type".to_string(), "sip_outbound_trunk".to_string());
    LiveObject {
        id: t.sip_trunk_id.clone(),
        spec: Spec::LivekitOutboundTrunk(OutboundTrunkSpec {
            name: t.name.clone(),
            metadata: t.metadata.clone(),
            address: strip_sip(&t.address),
            transport: transport_name(t.transport).to_string(),
            numbers,
            auth_username: t.auth_username.clone(),
            auth_password: shown_secret(Some(&t.auth_password)),
            headers: t
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            destination_country: t.destination_country.to_ascii_uppercase(),
            preserved: Preserved::read(outbound_preserved(t)),
        }),
        extra,
    }
}

pub(super) fn dispatch_kind(rule: Option<&proto::SipDispatchRule>) -> DispatchKind {
    use proto::sip_dispatch_rule::Rule;
    match rule.and_then(|r| r.rule.as_ref()) {
        Some(Rule::DispatchRuleDirect(d)) => DispatchKind::Direct {
            room_name: d.room_name.clone(),
            pin: d.pin.clone(),
        },
        Some(Rule::DispatchRuleCallee(c)) => DispatchKind::Callee {
            room_prefix: c.room_prefix.clone(),
            pin: c.pin.clone(),
            randomize: c.randomize,
        },
        Some(Rule::DispatchRuleIndividual(i)) => DispatchKind::Individual {
            room_prefix: i.room_prefix.clone(),
            pin: i.pin.clone(),
        },
        None => DispatchKind::Individual {
            room_prefix: String::new(),
            pin: String::new(),
        },
    }
}

pub fn rule_object(r: &proto::SipDispatchRuleInfo) -> LiveObject {
    let mut agents: Vec<AgentDispatch> = r
        .room_config
        .as_ref()
        .map(|c| {
            c.agents
                .iter()
                .map(|a| AgentDispatch {
                    agent_name: a.agent_name.clone(),
                    metadata: a.metadata.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    agents.sort();
    let mut trunks = canonical::set(r.trunk_ids.clone());
    trunks.retain(|t| !t.is_empty());
    let mut extra = BTreeMap::new();
    extra.insert("record_type".to_string(), "sip_dispatch_rule".to_string());
    if r.rule.as_ref().and_then(|x| x.rule.as_ref()).is_none() {
        extra.insert("rule".to_string(), "missing".to_string());
    }
    for (key, list) in [
        ("inbound_numbers", &r.inbound_numbers),
        ("numbers", &r.numbers),
    ] {
        if !list.is_empty() {
            extra.insert(key.to_string(), canonical::set(list.clone()).join(","));
        }
    }
    if !r.room_preset.is_empty() {
        extra.insert("room_preset".to_string(), r.room_preset.clone());
    }
    LiveObject {
        id: r.sip_dispatch_rule_id.clone(),
        spec: Spec::LivekitDispatchRule(DispatchRuleSpec {
            name: r.name.clone(),
            metadata: r.metadata.clone(),
            trunks: trunks.into_iter().map(Ref::Id).collect(),
            rule: dispatch_kind(r.rule.as_ref()),
            agents,
            hide_phone_number: r.hide_phone_number,
            krisp_enabled: r.krisp_enabled,
            preserved: Preserved::read(rule_preserved(r)),
        }),
        extra,
    }
}

/// The full trunk to create, or to replace `current` with: the spec's fields over what the
/// trunk has (headers, media, timeouts… that cwa does not manage are kept).
pub fn inbound_info(
    spec: &InboundTrunkSpec,
    current: Option<proto::SipInboundTrunkInfo>,
    object: &str,
) -> Result<proto::SipInboundTrunkInfo, ProviderError> {
    let mut t = current.unwrap_or_default();
    t.auth_password = password_to_send(&spec.auth_password, &t.auth_password, object)?;
    t.name = spec.name.clone();
    t.metadata = spec.metadata.clone();
    t.numbers = number_strings(&spec.numbers, object)?;
    t.allowed_addresses = spec.allowed_addresses.clone();
    t.allowed_numbers = spec.allowed_numbers.clone();
    t.auth_username = spec.auth_username.clone();
    t.krisp_enabled = spec.krisp_enabled;
    Ok(t)
}

pub fn outbound_info(
    spec: &OutboundTrunkSpec,
    current: Option<proto::SipOutboundTrunkInfo>,
    object: &str,
) -> Result<proto::SipOutboundTrunkInfo, ProviderError> {
    let mut t = current.unwrap_or_default();
    t.auth_password = password_to_send(&spec.auth_password, &t.auth_password, object)?;
    t.name = spec.name.clone();
    t.metadata = spec.metadata.clone();
    t.address = strip_sip(&spec.address);
    t.transport = transport_value(&spec.transport, object)?;
    t.numbers = number_strings(&spec.numbers, object)?;
    t.auth_username = spec.auth_username.clone();
    t.headers = spec
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<HashMap<_, _>>();
    t.destination_country = spec.destination_country.to_ascii_uppercase();
    Ok(t)
}

pub(super) fn proto_rule(
    kind: &DispatchKind,
    current: Option<&proto::SipDispatchRule>,
) -> proto::SipDispatchRule {
    use proto::sip_dispatch_rule::Rule;
    let keep_no_randomness = match current.and_then(|r| r.rule.as_ref()) {
        Some(Rule::DispatchRuleIndividual(i)) => i.no_randomness,
        _ => false,
    };
    let rule = match kind {
        DispatchKind::Individual { room_prefix, pin } => {
            Rule::DispatchRuleIndividual(proto::SipDispatchRuleIndividual {
                room_prefix: room_prefix.clone(),
                pin: pin.clone(),
                no_randomness: keep_no_randomness,
            })
        }
        DispatchKind::Direct { room_name, pin } => {
            Rule::DispatchRuleDirect(proto::SipDispatchRuleDirect {
                room_name: room_name.clone(),
                pin: pin.clone(),
            })
        }
        DispatchKind::Callee {
            room_prefix,
            pin,
            randomize,
        } => Rule::DispatchRuleCallee(proto::SipDispatchRuleCallee {
            room_prefix: room_prefix.clone(),
            pin: pin.clone(),
            randomize: *randomize,
        }),
    };
    proto::SipDispatchRule { rule: Some(rule) }
}

/// The full rule to create or replace with, agents always in `room_config.agents` (an
/// existing agent keeps the settings cwa does not manage).
pub fn rule_info(
    spec: &DispatchRuleSpec,
    current: Option<proto::SipDispatchRuleInfo>,
    object: &str,
) -> Result<proto::SipDispatchRuleInfo, ProviderError> {
    let mut r = current.unwrap_or_default();
    r.rule = Some(proto_rule(&spec.rule, r.rule.as_ref()));
    r.name = spec.name.clone();
    r.metadata = spec.metadata.clone();
    r.trunk_ids = live_ids(P, &spec.trunks, object)?;
    r.hide_phone_number = spec.hide_phone_number;
    r.krisp_enabled = spec.krisp_enabled;
    let mut config = r.room_config.take().unwrap_or_default();
    let previous = std::mem::take(&mut config.agents);
    config.agents = spec
        .agents
        .iter()
        .map(|a| {
            let mut agent = previous
                .iter()
                .find(|p| p.agent_name == a.agent_name)
                .cloned()
                .unwrap_or_default();
            agent.agent_name = a.agent_name.clone();
            agent.metadata = a.metadata.clone();
            agent
        })
        .collect();
    r.room_config = Some(config);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SecretValue;

    fn agent(name: &str, metadata: &str) -> AgentDispatch {
        AgentDispatch {
            agent_name: name.into(),
            metadata: metadata.into(),
        }
    }

    fn rule_spec() -> DispatchRuleSpec {
        DispatchRuleSpec {
            name: "Melvindale Church of God Dispatch".into(),
            metadata: String::new(),
            trunks: vec![Ref::Id("ST_3KMJ5YEjF2fF".into())],
            rule: DispatchKind::Individual {
                room_prefix: "call-".into(),
                pin: String::new(),
            },
            agents: vec![agent("churchwiseai-voice", r#"{"source": "phone"}"#)],
            hide_phone_number: false,
            krisp_enabled: false,
            preserved: Default::default(),
        }
    }

    #[test]
    fn rule_info_sets_agents_in_room_config_and_keeps_the_rest() {
        let current = proto::SipDispatchRuleInfo {
            sip_dispatch_rule_id: "SDR_9vRb2XcLeY7s".into(),
            room_preset: "preset".into(),
            room_config: Some(proto::RoomConfiguration {
                empty_timeout: 30,
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = rule_info(&rule_spec(), Some(current), "x").unwrap();
        let config = info.room_config.unwrap();
        assert_eq!(config.empty_timeout, 30);
        assert_eq!(config.agents.len(), 1);
        assert_eq!(config.agents[0].agent_name, "churchwiseai-voice");
        assert_eq!(info.room_preset, "preset");
        assert_eq!(info.trunk_ids, vec!["ST_3KMJ5YEjF2fF"]);
    }

    #[test]
    fn rule_round_trips_through_the_wire_form() {
        let info = rule_info(&rule_spec(), None, "x").unwrap();
        let obj = rule_object(&info);
        assert_eq!(obj.spec, Spec::LivekitDispatchRule(rule_spec()));
    }

    #[test]
    fn inbound_normalizes_and_clears_auth() {
        let t = proto::SipInboundTrunkInfo {
            sip_trunk_id: "ST_1".into(),
            name: "n".into(),
            numbers: vec!["+17473897673".into(), "14144007103".into()],
            auth_username: "churchwiseai".into(),
            auth_password: "pw".into(),
            krisp_enabled: true,
            ..Default::default()
        };
        let obj = inbound_object(&t);
        let Spec::LivekitInboundTrunk(s) = &obj.spec else {
            panic!()
        };
        assert_eq!(
            s.numbers,
            vec![
                NumberRef::Number(E164::parse("+14144007103").unwrap()),
                NumberRef::Number(E164::parse("+17473897673").unwrap())
            ]
        );
        assert_eq!(
            s.auth_password,
            Some(SecretRef::Fingerprint(fingerprint("pw")))
        );
        let mut cleared = s.clone();
        cleared.auth_username = String::new();
        cleared.auth_password = None;
        let info = inbound_info(&cleared, Some(t), "x").unwrap();
        assert_eq!(info.auth_username, "");
        assert_eq!(info.auth_password, "");
        assert!(info.krisp_enabled);
    }

    #[test]
    fn unchanged_fingerprint_keeps_the_password() {
        assert_eq!(
            password_to_send(&Some(SecretRef::Fingerprint(fingerprint("pw"))), "pw", "x").unwrap(),
            "pw"
        );
        assert!(password_to_send(&Some(SecretRef::Env("X".into())), "pw", "x").is_err());
    }

    #[test]
    fn outbound_transport_and_headers() {
        let spec = OutboundTrunkSpec {
            name: "Telnyx Outbound".into(),
            metadata: String::new(),
            address: "sip:sip.telnyx.com".into(),
            transport: "TCP".into(),
            numbers: vec![NumberRef::Number(E164::parse("+12268830000").unwrap())],
            auth_username: "cwaoutbound".into(),
            auth_password: Some(SecretRef::Value(SecretValue::new("s3cret"))),
            headers: [("X-Telnyx-Username".to_string(), "cwaoutbound".to_string())].into(),
            destination_country: "us".into(),
            preserved: Default::default(),
        };
        let info = outbound_info(&spec, None, "x").unwrap();
        assert_eq!(info.transport, proto::SipTransport::Tcp as i32);
        assert_eq!(info.address, "sip.telnyx.com");
        assert_eq!(info.destination_country, "US");
        assert_eq!(
            info.headers.get("X-Telnyx-Username").unwrap(),
            "cwaoutbound"
        );
        let obj = outbound_object(&info);
        let Spec::LivekitOutboundTrunk(s) = obj.spec else {
            panic!()
        };
        assert_eq!(s.transport, "tcp");
        assert_eq!(
            s.auth_password,
            Some(SecretRef::Fingerprint(fingerprint("s3cret")))
        );
    }

    #[test]
    fn twirp_codes_map_to_statuses() {
        assert_eq!(twirp_status("not_found"), 404);
        assert_eq!(twirp_status("resource_exhausted"), 429);
        assert_eq!(twirp_status("unavailable"), 503);
        assert_eq!(
            decode_twirp_error(
                br#"{"code":"not_found","msg":"requested sip trunk does not exist"}"#
            ),
            Some((
                "not_found".into(),
                "requested sip trunk does not exist".into()
            ))
        );
    }
}
