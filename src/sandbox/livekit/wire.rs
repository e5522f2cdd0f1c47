//! Twirp framing: request decoding, response encoding and the error body.
//!
//! Protobuf uses the prost types of `livekit-protocol` (what the official SDKs send). JSON
//! requests go through the crate's pbjson deserializers, which accept lowerCamel and snake
//! names and drop unknown fields, like the Go server's `protojson` with `DiscardUnknown`.
//! JSON responses imitate the Go server (`UseProtoNames`, `EmitUnpopulated`): snake_case
//! names and every zero value present. pbjson writes sparse lowerCamel JSON, so each response
//! message has a [`Field`] table that renames and fills it.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// The two encodings Twirp speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// Reads a `Content-Type` the way the generated Twirp server does: parameters after `;`
    /// are ignored and the comparison is case-insensitive.
    pub fn from_content_type(content_type: Option<&str>) -> Option<Self> {
        let raw = content_type.unwrap_or("");
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/protobuf" => Some(Self::Protobuf),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/protobuf",
            Self::Json => "application/json",
        }
    }
}

/// A Twirp error: the JSON body `{"code","msg","meta"}` and the status its code maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwirpError {
    pub code: &'static str,
    pub msg: String,
    pub meta: BTreeMap<String, String>,
}

impl TwirpError {
    pub fn new(code: &'static str, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            meta: BTreeMap::new(),
        }
    }

    pub fn invalid_argument(msg: impl Into<String>) -> Self {
        Self::new("invalid_argument", msg)
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new("not_found", msg)
    }

    pub fn with_meta(mut self, key: &str, value: impl Into<String>) -> Self {
        self.meta.insert(key.to_string(), value.into());
        self
    }

    /// `bad_route` for a request Twirp cannot route (method, path or content type).
    pub fn bad_route(msg: impl Into<String>, http_method: &str, path: &str) -> Self {
        Self::new("bad_route", msg)
            .with_meta("twirp_invalid_route", format!("{http_method} {path}"))
    }

    /// The HTTP status twirp v8.1.3 maps each code to.
    pub fn status(&self) -> u16 {
        match self.code {
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

    /// The JSON body; `meta` is omitted when empty, as twirp's `omitempty` does.
    pub fn body(&self) -> Vec<u8> {
        let mut body = Map::new();
        body.insert("code".into(), Value::from(self.code));
        body.insert("msg".into(), Value::from(self.msg.clone()));
        if !self.meta.is_empty() {
            let meta = self
                .meta
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect();
            body.insert("meta".into(), Value::Object(meta));
        }
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
    }
}

/// Decodes a request body; a body that does not parse is Twirp `malformed`.
pub fn decode<M>(encoding: Encoding, body: &[u8]) -> Result<M, TwirpError>
where
    M: prost::Message + Default + DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => M::decode(body)
            .map_err(|_| TwirpError::new("malformed", "the protobuf request could not be decoded")),
        Encoding::Json => serde_json::from_slice(body)
            .map_err(|_| TwirpError::new("malformed", "the json request could not be decoded")),
    }
}

/// Encodes a response message; JSON is reshaped by `fields` into the Go server's form.
pub fn encode<M>(encoding: Encoding, message: &M, fields: &[Field]) -> Vec<u8>
where
    M: prost::Message + Serialize,
{
    match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => {
            let sparse = serde_json::to_value(message).unwrap_or(Value::Null);
            serde_json::to_vec(&shape(&sparse, fields)).unwrap_or_default()
        }
    }
}

/// One field of a response message, in declaration order, by its proto (snake_case) name.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
}

/// How a field is emitted when absent from pbjson's sparse output, and how to recurse into it.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    Bool,
    Num,
    /// An enum, emitted by name; the payload is the name of its zero value.
    Enum(&'static str),
    List,
    Map,
    /// A singular message with a known table: `null` when unset.
    Msg(&'static [Field]),
    /// A repeated message.
    Msgs(&'static [Field]),
    /// A singular message without a table (well-known types, egress): `null` when unset,
    /// keys renamed to snake_case when set.
    Opaque,
    /// A oneof member or a proto3 `optional` scalar: left out when unset, as protojson does.
    Oneof(Option<&'static [Field]>),
}

const fn f(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

/// Renames and fills pbjson's sparse lowerCamel object into protojson's full snake_case one.
pub fn shape(sparse: &Value, fields: &[Field]) -> Value {
    let object = sparse.as_object();
    let mut out = Map::new();
    for field in fields {
        let present = object.and_then(|o| o.get(&lower_camel(field.name)).or(o.get(field.name)));
        if let Some(value) = emit(field.kind, present) {
            out.insert(field.name.to_string(), value);
        }
    }
    Value::Object(out)
}

fn emit(kind: Kind, present: Option<&Value>) -> Option<Value> {
    let Some(value) = present else {
        return zero(kind);
    };
    Some(match kind {
        Kind::Msg(fields) | Kind::Oneof(Some(fields)) => shape(value, fields),
        Kind::Msgs(fields) => Value::Array(
            value
                .as_array()
                .map(|items| items.iter().map(|v| shape(v, fields)).collect())
                .unwrap_or_default(),
        ),
        Kind::Opaque => snake_keys(value),
        _ => value.clone(),
    })
}

fn zero(kind: Kind) -> Option<Value> {
    Some(match kind {
        Kind::Str => Value::from(""),
        Kind::Bool => Value::from(false),
        Kind::Num => Value::from(0),
        Kind::Enum(name) => Value::from(name),
        Kind::List | Kind::Msgs(_) => Value::Array(Vec::new()),
        Kind::Map => Value::Object(Map::new()),
        Kind::Msg(_) | Kind::Opaque => Value::Null,
        Kind::Oneof(_) => return None,
    })
}

/// `sip_trunk_id` -> `sipTrunkId`, protobuf's JSON name rule.
pub fn lower_camel(snake: &str) -> String {
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

fn camel_to_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn snake_keys(value: &Value) -> Value {
    match value {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (camel_to_snake(k), snake_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(snake_keys).collect()),
        other => other.clone(),
    }
}

/// The field tables of every message a SIP management RPC returns.
pub mod shapes {
    use super::{f, Field, Kind::*};

    const MEDIA_ENCRYPTION_ZERO: &str = "SIP_MEDIA_ENCRYPT_DISABLE";
    const HEADERS_ZERO: &str = "SIP_NO_HEADERS";

    pub const CODEC: &[Field] = &[f("name", Str), f("rate", Num)];

    pub const MEDIA: &[Field] = &[
        f("only_listed_codecs", Bool),
        f("codecs", Msgs(CODEC)),
        f("encryption", Oneof(None)),
        f("media_timeout", Opaque),
    ];

    pub const INBOUND_TRUNK: &[Field] = &[
        f("sip_trunk_id", Str),
        f("name", Str),
        f("metadata", Str),
        f("numbers", List),
        f("allowed_addresses", List),
        f("allowed_numbers", List),
        f("auth_username", Str),
        f("auth_password", Str),
        f("auth_realm", Str),
        f("headers", Map),
        f("headers_to_attributes", Map),
        f("attributes_to_headers", Map),
        f("include_headers", Enum(HEADERS_ZERO)),
        f("ringing_timeout", Opaque),
        // Not `ringing_timeout_status`: livekit-protocol 0.8.2 has it (tag 21), the published
        // protos (tests/contracts/livekit.json, d74e7cd) do not, so the server does not send it.
        f("max_call_duration", Opaque),
        f("krisp_enabled", Bool),
        f("media_encryption", Enum(MEDIA_ENCRYPTION_ZERO)),
        f("media", Msg(MEDIA)),
        f("created_at", Opaque),
        f("updated_at", Opaque),
    ];

    pub const OUTBOUND_TRUNK: &[Field] = &[
        f("sip_trunk_id", Str),
        f("name", Str),
        f("metadata", Str),
        f("address", Str),
        f("destination_country", Str),
        f("transport", Enum("SIP_TRANSPORT_AUTO")),
        f("numbers", List),
        f("auth_username", Str),
        f("auth_password", Str),
        f("headers", Map),
        f("headers_to_attributes", Map),
        f("attributes_to_headers", Map),
        f("include_headers", Enum(HEADERS_ZERO)),
        f("media_encryption", Enum(MEDIA_ENCRYPTION_ZERO)),
        f("media", Msg(MEDIA)),
        f("from_host", Str),
        f("created_at", Opaque),
        f("updated_at", Opaque),
    ];

    const DIRECT: &[Field] = &[f("room_name", Str), f("pin", Str)];
    const INDIVIDUAL: &[Field] = &[
        f("room_prefix", Str),
        f("pin", Str),
        f("no_randomness", Bool),
    ];
    const CALLEE: &[Field] = &[f("room_prefix", Str), f("pin", Str), f("randomize", Bool)];

    pub const DISPATCH_RULE: &[Field] = &[
        f("dispatch_rule_direct", Oneof(Some(DIRECT))),
        f("dispatch_rule_individual", Oneof(Some(INDIVIDUAL))),
        f("dispatch_rule_callee", Oneof(Some(CALLEE))),
    ];

    const AGENT: &[Field] = &[
        f("agent_name", Str),
        f("metadata", Str),
        f("restart_policy", Enum("JRP_ON_FAILURE")),
        f("deployment", Str),
        f("attributes", Map),
    ];

    pub const ROOM_CONFIG: &[Field] = &[
        f("name", Str),
        f("empty_timeout", Num),
        f("departure_timeout", Num),
        f("max_participants", Num),
        f("metadata", Str),
        f("egress", Opaque),
        f("min_playout_delay", Num),
        f("max_playout_delay", Num),
        f("sync_streams", Bool),
        f("agents", Msgs(AGENT)),
        f("tags", Map),
    ];

    pub const DISPATCH_RULE_INFO: &[Field] = &[
        f("sip_dispatch_rule_id", Str),
        f("rule", Msg(DISPATCH_RULE)),
        f("trunk_ids", List),
        f("hide_phone_number", Bool),
        f("inbound_numbers", List),
        f("numbers", List),
        f("name", Str),
        f("metadata", Str),
        f("attributes", Map),
        f("room_preset", Str),
        f("room_config", Msg(ROOM_CONFIG)),
        f("media", Msg(MEDIA)),
        f("krisp_enabled", Bool),
        f("media_encryption", Enum(MEDIA_ENCRYPTION_ZERO)),
        f("created_at", Opaque),
        f("updated_at", Opaque),
    ];

    /// The deprecated `SIPTrunkInfo` that `DeleteSIPTrunk` still returns.
    pub const LEGACY_TRUNK: &[Field] = &[
        f("sip_trunk_id", Str),
        f("kind", Enum("TRUNK_LEGACY")),
        f("inbound_addresses", List),
        f("outbound_address", Str),
        f("outbound_number", Str),
        f("transport", Enum("SIP_TRANSPORT_AUTO")),
        f("inbound_numbers_regex", List),
        f("inbound_numbers", List),
        f("inbound_username", Str),
        f("inbound_password", Str),
        f("outbound_username", Str),
        f("outbound_password", Str),
        f("name", Str),
        f("metadata", Str),
    ];

    pub const LIST_INBOUND: &[Field] = &[f("items", Msgs(INBOUND_TRUNK))];
    pub const LIST_OUTBOUND: &[Field] = &[f("items", Msgs(OUTBOUND_TRUNK))];
    pub const LIST_DISPATCH: &[Field] = &[f("items", Msgs(DISPATCH_RULE_INFO))];
    pub const GET_INBOUND: &[Field] = &[f("trunk", Msg(INBOUND_TRUNK))];
    pub const GET_OUTBOUND: &[Field] = &[f("trunk", Msg(OUTBOUND_TRUNK))];
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_protocol as proto;
    use serde_json::json;

    #[test]
    fn content_types_are_matched_like_twirp() {
        assert_eq!(
            Encoding::from_content_type(Some("Application/JSON; charset=utf-8")),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::from_content_type(Some("application/protobuf")),
            Some(Encoding::Protobuf)
        );
        assert_eq!(Encoding::from_content_type(Some("text/plain")), None);
        assert_eq!(Encoding::from_content_type(None), None);
    }

    #[test]
    fn json_requests_accept_both_spellings_and_drop_unknown_fields() {
        let camel: proto::CreateSipInboundTrunkRequest = decode(
            Encoding::Json,
            br#"{"trunk":{"name":"a","allowedNumbers":["+1"],"bogus":1}}"#,
        )
        .unwrap();
        let snake: proto::CreateSipInboundTrunkRequest = decode(
            Encoding::Json,
            br#"{"trunk":{"name":"a","allowed_numbers":["+1"]}}"#,
        )
        .unwrap();
        assert_eq!(camel, snake);
        assert_eq!(camel.trunk.unwrap().allowed_numbers, vec!["+1".to_string()]);
    }

    #[test]
    fn json_requests_take_enums_by_number_and_durations_as_strings() {
        let req: proto::CreateSipOutboundTrunkRequest = decode(
            Encoding::Json,
            br#"{"trunk":{"transport":2,"numbers":["+1"],"address":"a"}}"#,
        )
        .unwrap();
        assert_eq!(
            req.trunk.unwrap().transport,
            proto::SipTransport::Tcp as i32
        );
        let req: proto::CreateSipInboundTrunkRequest = decode(
            Encoding::Json,
            br#"{"trunk":{"ringingTimeout":"30s","includeHeaders":"SIP_X_HEADERS"}}"#,
        )
        .unwrap();
        let trunk = req.trunk.unwrap();
        assert_eq!(trunk.ringing_timeout.unwrap().seconds, 30);
        assert_eq!(
            trunk.include_headers,
            proto::SipHeaderOptions::SipXHeaders as i32
        );
    }

    #[test]
    fn malformed_bodies_are_twirp_malformed() {
        let err = decode::<proto::CreateSipInboundTrunkRequest>(Encoding::Json, b"{").unwrap_err();
        assert_eq!((err.code, err.status()), ("malformed", 400));
        let err = decode::<proto::CreateSipInboundTrunkRequest>(Encoding::Protobuf, &[0xff, 0xff])
            .unwrap_err();
        assert_eq!(err.msg, "the protobuf request could not be decoded");
    }

    #[test]
    fn json_responses_are_snake_case_with_zero_values() {
        let trunk = proto::SipOutboundTrunkInfo {
            sip_trunk_id: "ST_x".into(),
            transport: proto::SipTransport::Tcp as i32,
            ..Default::default()
        };
        let body: Value =
            serde_json::from_slice(&encode(Encoding::Json, &trunk, shapes::OUTBOUND_TRUNK))
                .unwrap();
        assert_eq!(body["sip_trunk_id"], json!("ST_x"));
        assert_eq!(body["transport"], json!("SIP_TRANSPORT_TCP"));
        assert_eq!(body["numbers"], json!([]));
        assert_eq!(body["headers"], json!({}));
        assert_eq!(body["include_headers"], json!("SIP_NO_HEADERS"));
        assert_eq!(body["media"], Value::Null);
        assert!(body.get("sipTrunkId").is_none());
    }

    #[test]
    fn nested_rules_and_agents_are_reshaped() {
        let rule = proto::SipDispatchRuleInfo {
            rule: Some(proto::SipDispatchRule {
                rule: Some(proto::sip_dispatch_rule::Rule::DispatchRuleIndividual(
                    proto::SipDispatchRuleIndividual {
                        room_prefix: "call-".into(),
                        ..Default::default()
                    },
                )),
            }),
            room_config: Some(proto::RoomConfiguration {
                agents: vec![proto::RoomAgentDispatch {
                    agent_name: "a".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let body: Value =
            serde_json::from_slice(&encode(Encoding::Json, &rule, shapes::DISPATCH_RULE_INFO))
                .unwrap();
        assert_eq!(
            body["rule"],
            json!({"dispatch_rule_individual": {"room_prefix": "call-", "pin": "", "no_randomness": false}})
        );
        assert_eq!(body["room_config"]["agents"][0]["agent_name"], json!("a"));
        assert_eq!(
            body["room_config"]["agents"][0]["restart_policy"],
            json!("JRP_ON_FAILURE")
        );
        assert_eq!(body["room_config"]["egress"], Value::Null);
    }

    #[test]
    fn errors_carry_code_msg_and_meta() {
        let err = TwirpError::bad_route("no handler", "GET", "/twirp/livekit.SIP/X");
        assert_eq!(err.status(), 404);
        let body: Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(
            body,
            json!({"code": "bad_route", "msg": "no handler", "meta": {"twirp_invalid_route": "GET /twirp/livekit.SIP/X"}})
        );
        let plain: Value = serde_json::from_slice(&TwirpError::not_found("x").body()).unwrap();
        assert!(plain.get("meta").is_none());
        assert_eq!(TwirpError::new("resource_exhausted", "x").status(), 429);
    }
}
