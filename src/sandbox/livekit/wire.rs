//! Twirp framing: request decoding, response encoding and the error body.
//!
//! Protobuf requests decode into the prost types of `livekit-protocol` (what the official
//! SDKs send); JSON requests through the crate's pbjson deserializers, which accept lowerCamel
//! and snake names and drop unknown fields, like the Go server's `protojson` with
//! `DiscardUnknown`. Answers are written from the protos, not from those types' serde: JSON
//! answers imitate the Go server (`UseProtoNames`, `EmitUnpopulated`: snake_case names, every
//! zero value present, unset oneof members and `optional` fields left out), derived from the
//! field numbers, names and types of the contract extract (`tests/contracts/livekit.json`,
//! livekit/protocol d74e7cd) by [`crate::sandbox::contract::ContractSet::twirp_answer`].

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
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

/// Encodes the success answer of the Twirp method `method`. JSON is what the Go server's
/// protojson writes for the message the protos declare as that method's answer, read from its
/// protobuf encoding against the contract extract (`tests/contracts/livekit.json`), never from
/// the Rust structs' serde: a field's name, JSON spelling and zero value are the protos'. An
/// answer the protos cannot read is a sandbox bug, answered `internal`.
pub fn encode<M: prost::Message>(
    encoding: Encoding,
    message: &M,
    method: &str,
) -> Result<Vec<u8>, TwirpError> {
    let bytes = message.encode_to_vec();
    if encoding == Encoding::Protobuf {
        return Ok(bytes);
    }
    crate::sandbox::contract::for_provider("livekit")
        .ok_or_else(|| "no LiveKit extract".to_string())
        .and_then(|contract| contract.twirp_answer(method, &bytes))
        .map(|value| serde_json::to_vec(&value).unwrap_or_default())
        .map_err(|e| TwirpError::new("internal", format!("the sandbox's {method} answer: {e}")))
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
        let body: Value = serde_json::from_slice(
            &encode(Encoding::Json, &trunk, "CreateSIPOutboundTrunk").unwrap(),
        )
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
        let body: Value = serde_json::from_slice(
            &encode(Encoding::Json, &rule, "CreateSIPDispatchRule").unwrap(),
        )
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

    /// The answer's fields are the protos' (the extract), not a table of this file: every
    /// declared field of an inbound trunk is there, by its proto name, and a proto3
    /// `optional` one only when set.
    #[test]
    fn json_answers_carry_exactly_the_fields_the_protos_declare() {
        let contract = crate::sandbox::contract::for_provider("livekit").unwrap();
        let declared = contract.message_fields("livekit.SIPInboundTrunkInfo");
        assert!(declared.len() >= 20, "{declared:?}");
        let trunk = proto::SipInboundTrunkInfo {
            sip_trunk_id: "ST_x".into(),
            media: Some(proto::SipMediaConfig::default()),
            // Tag 21 in livekit-protocol 0.8.2, not in the published protos: never answered.
            ringing_timeout_status: 486,
            ..Default::default()
        };
        let body: Value = serde_json::from_slice(
            &encode(Encoding::Json, &trunk, "CreateSIPInboundTrunk").unwrap(),
        )
        .unwrap();
        let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        keys.sort();
        let mut want: Vec<&String> = declared.iter().collect();
        want.sort();
        assert_eq!(keys, want);
        assert!(body["media"].get("encryption").is_none(), "{body}");
        assert_eq!(body["media"]["codecs"], json!([]));
        let encrypted = proto::SipInboundTrunkInfo {
            media: Some(proto::SipMediaConfig {
                encryption: Some(proto::SipMediaEncryption::SipMediaEncryptRequire as i32),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body: Value = serde_json::from_slice(
            &encode(Encoding::Json, &encrypted, "CreateSIPInboundTrunk").unwrap(),
        )
        .unwrap();
        assert_eq!(
            body["media"]["encryption"],
            json!("SIP_MEDIA_ENCRYPT_REQUIRE")
        );
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
