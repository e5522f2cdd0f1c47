//! Fields of a newer LiveKit release, which `livekit-protocol` 0.8.2 does not know
//! ([`super::LivekitState::newer_fields`]).
//!
//! The server keeps every field it knows; only the client can lose them. So:
//! - JSON answers carry them next to the known fields of the object (trunk, rule, `items`);
//!   protobuf answers do not (a prost client would drop them anyway);
//! - the `update` action leaves them alone (the server merges a diff into its own copy);
//! - a `replace` (and a create) stores exactly what it carries: in JSON, the keys the message
//!   does not declare but the newer server knows (a newer field of some object) become the
//!   object's newer fields, other unknown keys are dropped (`DiscardUnknown`), and none
//!   carried wipes them; in protobuf, nothing can carry them, so they are wiped;
//! - deleting the object drops them.
//!
//! Source: livekit/livekit `pkg/service/sip.go` (replace stores the request's Info whole,
//! update applies the diff to the stored object); the set of such fields is an assumption
//! (tests inject them).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::wire::{lower_camel, Encoding};
use super::{Call, Effect};

/// What a write carries of newer fields: `None` leaves them as they are; `Some(map)`
/// replaces them with `map` (empty: wiped).
pub(super) type Carried = Option<Map<String, Value>>;

/// The key that holds the whole object a write stores, and that object's message in the
/// protos (its fields are read from the contract extract).
fn stored_object(method: &str) -> Option<(&'static str, &'static str)> {
    Some(match method {
        "CreateSIPInboundTrunk" => ("trunk", "livekit.SIPInboundTrunkInfo"),
        "CreateSIPOutboundTrunk" => ("trunk", "livekit.SIPOutboundTrunkInfo"),
        "CreateSIPDispatchRule" => ("dispatch_rule", "livekit.SIPDispatchRuleInfo"),
        "UpdateSIPInboundTrunk" => ("replace", "livekit.SIPInboundTrunkInfo"),
        "UpdateSIPOutboundTrunk" => ("replace", "livekit.SIPOutboundTrunkInfo"),
        "UpdateSIPDispatchRule" => ("replace", "livekit.SIPDispatchRuleInfo"),
        _ => return None,
    })
}

/// The newer fields a write carries, read from its body before it is decoded.
pub(super) fn carried(method: &str, call: &Call<'_>) -> Carried {
    let (key, message) = stored_object(method)?;
    match call.encoding {
        Encoding::Json => {
            let body: Value = serde_json::from_slice(call.body).ok()?;
            let object = get(&body, key)?.as_object()?;
            let fields = crate::sandbox::contract::for_provider("livekit")?.message_fields(message);
            Some(undeclared(object, &fields))
        }
        // A protobuf replace cannot carry fields the client's protos lack; a protobuf create
        // starts with none.
        Encoding::Protobuf => {
            (key == "replace" && protobuf_replace(method, call.body)).then(Map::new)
        }
    }
}

fn protobuf_replace(method: &str, body: &[u8]) -> bool {
    use livekit_protocol as proto;
    use prost::Message;
    match method {
        "UpdateSIPInboundTrunk" => {
            proto::UpdateSipInboundTrunkRequest::decode(body).is_ok_and(|r| {
                matches!(
                    r.action,
                    Some(proto::update_sip_inbound_trunk_request::Action::Replace(_))
                )
            })
        }
        "UpdateSIPOutboundTrunk" => {
            proto::UpdateSipOutboundTrunkRequest::decode(body).is_ok_and(|r| {
                matches!(
                    r.action,
                    Some(proto::update_sip_outbound_trunk_request::Action::Replace(_))
                )
            })
        }
        "UpdateSIPDispatchRule" => {
            proto::UpdateSipDispatchRuleRequest::decode(body).is_ok_and(|r| {
                matches!(
                    r.action,
                    Some(proto::update_sip_dispatch_rule_request::Action::Replace(_))
                )
            })
        }
        _ => false,
    }
}

fn get<'a>(object: &'a Value, snake: &str) -> Option<&'a Value> {
    object.get(snake).or_else(|| object.get(lower_camel(snake)))
}

/// The keys of `object` that `fields` (proto names) do not declare, in either spelling.
fn undeclared(object: &Map<String, Value>, fields: &[String]) -> Map<String, Value> {
    object
        .iter()
        .filter(|(k, _)| {
            !fields
                .iter()
                .any(|f| f == k.as_str() || lower_camel(f) == **k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Records what a successful write did to the newer fields of the object it addressed.
pub(super) fn settle(
    newer: &mut BTreeMap<String, Map<String, Value>>,
    method: &str,
    carried: Carried,
    effect: &Effect,
) {
    let Some(id) = effect.resource_id.as_ref().filter(|_| effect.write) else {
        return;
    };
    if method.starts_with("Delete") {
        newer.remove(id);
        return;
    }
    let Some(mut fields) = carried else { return };
    // The emulated newer server knows the newer fields some object has; any other key a JSON
    // body carries is dropped, as protojson's `DiscardUnknown` does.
    let known: std::collections::BTreeSet<String> =
        newer.values().flat_map(|m| m.keys().cloned()).collect();
    fields.retain(|k, _| known.contains(k));
    if fields.is_empty() {
        newer.remove(id);
    } else {
        newer.insert(id.clone(), fields);
    }
}

/// A JSON answer with each object's newer fields added next to its known ones.
pub(super) fn merged(body: &[u8], newer: &BTreeMap<String, Map<String, Value>>) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    add(&mut value, newer);
    if let Some(trunk) = value.get_mut("trunk") {
        add(trunk, newer);
    }
    if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(|item| add(item, newer));
    }
    serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec())
}

fn add(object: &mut Value, newer: &BTreeMap<String, Map<String, Value>>) {
    let Some(o) = object.as_object_mut() else {
        return;
    };
    let id = ["sip_trunk_id", "sip_dispatch_rule_id"]
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_str))
        .map(str::to_string);
    if let Some(fields) = id.and_then(|id| newer.get(&id)) {
        for (k, v) in fields {
            o.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}
