//! The LiveKit SIP emulator over real HTTP: the official Rust SDK (`livekit-api`'s
//! `SIPClient`, protobuf) for every management method, raw protobuf-JSON requests in both
//! spellings, auth failures, validation errors, the deprecated dispatch quirk and paging.

use std::collections::HashMap;

use cwa::sandbox::{Sandbox, SandboxOptions, LIVEKIT_API_KEY, LIVEKIT_API_SECRET};
use livekit_api::services::sip::{
    CreateSIPDispatchRuleOptions, CreateSIPInboundTrunkOptions, CreateSIPOutboundTrunkOptions,
    ListSIPDispatchRuleFilter, ListSIPInboundTrunkFilter, ListSIPOutboundTrunkFilter, SIPClient,
};
use livekit_api::services::{ServerError, ServiceError};
use livekit_protocol as proto;
use proto::sip_dispatch_rule::Rule;
use serde_json::{json, Value};

const AGENT: &str = "churchwiseai-voice";

struct Fixture {
    sandbox: Sandbox,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::start(SandboxOptions::new(dir.path(), "runbook"))
            .await
            .unwrap();
        Self { sandbox, _dir: dir }
    }

    fn sip(&self) -> SIPClient {
        SIPClient::with_api_key(
            &self.sandbox.base_url(),
            LIVEKIT_API_KEY,
            LIVEKIT_API_SECRET,
        )
    }

    fn url(&self, method: &str) -> String {
        format!("{}/twirp/livekit.SIP/{method}", self.sandbox.base_url())
    }

    /// A raw JSON call with a token carrying `sip.admin`.
    async fn json(&self, method: &str, body: Value) -> (u16, Value) {
        let res = reqwest::Client::new()
            .post(self.url(method))
            .header("Authorization", format!("Bearer {}", token(admin_claims())))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    async fn raw(
        &self,
        method: &str,
        auth: Option<String>,
        content_type: &str,
        body: &str,
    ) -> (u16, String, String) {
        let mut req = reqwest::Client::new()
            .post(self.url(method))
            .header("Content-Type", content_type)
            .body(body.to_string());
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ct, res.text().await.unwrap())
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn admin_claims() -> Value {
    json!({"iss": LIVEKIT_API_KEY, "exp": now() + 600, "nbf": now(), "sip": {"admin": true}})
}

fn token(claims: Value) -> String {
    token_signed(claims, LIVEKIT_API_SECRET)
}

fn token_signed(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// The Twirp code and status of an SDK failure.
fn twirp_code(err: ServiceError) -> (String, String) {
    match err {
        ServiceError::Twirp(ServerError::Twirp(e)) => (e.code, e.msg),
        other => panic!("expected a Twirp error, got {other:?}"),
    }
}

fn individual(prefix: &str) -> Rule {
    Rule::DispatchRuleIndividual(proto::SipDispatchRuleIndividual {
        room_prefix: prefix.into(),
        pin: String::new(),
        no_randomness: false,
    })
}

fn agents(agent: &str) -> proto::RoomConfiguration {
    proto::RoomConfiguration {
        agents: vec![proto::RoomAgentDispatch {
            agent_name: agent.into(),
            metadata: r#"{"source":"phone"}"#.into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn list_update_add(items: &[&str]) -> Option<proto::ListUpdate> {
    Some(proto::ListUpdate {
        add: items.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

#[tokio::test]
async fn sdk_lists_the_runbook_objects() {
    let f = Fixture::start().await;
    let sip = f.sip();
    let inbound = sip
        .list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All)
        .await
        .unwrap();
    let ids: Vec<&str> = inbound.iter().map(|t| t.sip_trunk_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ST_3KMJ5YEjF2fF",
            "ST_LWgmiBSwTk7P",
            "ST_Xa3Bp9aixRFP",
            "ST_hvf5m2RXfEiS"
        ]
    );
    let locked = inbound
        .iter()
        .find(|t| t.sip_trunk_id == "ST_Xa3Bp9aixRFP")
        .unwrap();
    assert_eq!(
        locked.numbers,
        ["+18886030316", "+14696152221", "+13658254095"]
    );
    assert!(locked.auth_username.is_empty());

    let outbound = sip
        .list_sip_outbound_trunk(ListSIPOutboundTrunkFilter::All)
        .await
        .unwrap();
    assert_eq!(outbound.len(), 1);
    assert_eq!(outbound[0].address, "sip.telnyx.com");
    assert_eq!(outbound[0].transport, proto::SipTransport::Tcp as i32);
    assert!(outbound[0].headers.is_empty());

    let rules = sip
        .list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All)
        .await
        .unwrap();
    assert_eq!(rules.len(), 4);
    let melvindale = rules
        .iter()
        .find(|r| r.sip_dispatch_rule_id == "SDR_9vRb2XcLeY7s")
        .unwrap();
    assert!(
        melvindale.room_config.is_none(),
        "the known-broken rule has no agent"
    );
    let main = rules
        .iter()
        .find(|r| r.sip_dispatch_rule_id == "SDR_cYzx7sAkUTvx")
        .unwrap();
    assert_eq!(
        main.room_config.as_ref().unwrap().agents[0].agent_name,
        AGENT
    );
}

#[tokio::test]
async fn sdk_inbound_trunk_lifecycle() {
    let f = Fixture::start().await;
    let sip = f.sip();
    let created = sip
        .create_sip_inbound_trunk(
            "Grace Chapel".into(),
            vec!["+12125550123".into()],
            CreateSIPInboundTrunkOptions {
                krisp_enabled: Some(true),
                metadata: Some("m".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = created.sip_trunk_id.clone();
    assert!(id.starts_with("ST_") && id.len() == 15, "{id}");
    assert!(created.krisp_enabled);

    let updated = sip
        .update_sip_inbound_trunk(
            id.clone(),
            proto::SipInboundTrunkUpdate {
                numbers: list_update_add(&["+12125550124"]),
                name: Some("Grace Chapel (main)".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.numbers, ["+12125550123", "+12125550124"]);
    assert_eq!(updated.name, "Grace Chapel (main)");
    assert_eq!(
        updated.metadata, "m",
        "fields absent from the update are kept"
    );

    let replaced = sip
        .update_sip_inbound_trunk_replace(
            id.clone(),
            proto::SipInboundTrunkInfo {
                name: "Grace Chapel".into(),
                numbers: vec!["+12125550125".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced.sip_trunk_id, id);
    assert_eq!(replaced.numbers, ["+12125550125"]);
    assert!(
        replaced.metadata.is_empty(),
        "replace swaps the whole object"
    );

    let deleted = sip.delete_sip_trunk(&id).await.unwrap();
    assert_eq!(deleted.sip_trunk_id, id);
    let left = sip
        .list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All)
        .await
        .unwrap();
    assert!(left.iter().all(|t| t.sip_trunk_id != id));
}

#[tokio::test]
async fn sdk_outbound_trunk_lifecycle() {
    let f = Fixture::start().await;
    let sip = f.sip();
    let created = sip
        .create_sip_outbound_trunk(
            "Telnyx Outbound 2".into(),
            "sip.telnyx.com".into(),
            vec!["+12268830001".into()],
            CreateSIPOutboundTrunkOptions {
                transport: proto::SipTransport::Tcp,
                auth_username: "cwaoutbound".into(),
                auth_password: "sandbox-outbound-secret".into(),
                headers: Some(HashMap::from([(
                    "X-Telnyx-Username".into(),
                    "cwaoutbound".into(),
                )])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = created.sip_trunk_id.clone();
    assert_eq!(created.headers["X-Telnyx-Username"], "cwaoutbound");

    let updated = sip
        .update_sip_outbound_trunk(
            id.clone(),
            proto::SipOutboundTrunkUpdate {
                destination_country: Some("US".into()),
                numbers: list_update_add(&["+12268830002"]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.destination_country, "US");
    assert_eq!(updated.numbers, ["+12268830001", "+12268830002"]);
    assert_eq!(updated.transport, proto::SipTransport::Tcp as i32);

    let replaced = sip
        .update_sip_outbound_trunk_replace(
            id.clone(),
            proto::SipOutboundTrunkInfo {
                name: "Telnyx Outbound 2".into(),
                address: "sip.telnyx.com".into(),
                numbers: vec!["+12268830003".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced.numbers, ["+12268830003"]);
    assert!(replaced.headers.is_empty());

    sip.delete_sip_trunk(&id).await.unwrap();
    let left = sip
        .list_sip_outbound_trunk(ListSIPOutboundTrunkFilter::All)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
}

#[tokio::test]
async fn sdk_dispatch_rule_lifecycle() {
    let f = Fixture::start().await;
    let sip = f.sip();
    let trunk = sip
        .create_sip_inbound_trunk(
            "Grace Chapel".into(),
            vec!["+12125550130".into()],
            Default::default(),
        )
        .await
        .unwrap();
    let rule = sip
        .create_sip_dispatch_rule(
            individual("call-"),
            CreateSIPDispatchRuleOptions {
                name: "Grace Chapel Dispatch".into(),
                trunk_ids: vec![trunk.sip_trunk_id.clone()],
                room_config: Some(agents(AGENT)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = rule.sip_dispatch_rule_id.clone();
    assert!(id.starts_with("SDR_") && id.len() == 16, "{id}");
    assert_eq!(
        rule.room_config.as_ref().unwrap().agents[0].agent_name,
        AGENT
    );

    let updated = sip
        .update_sip_dispatch_rule(
            id.clone(),
            proto::SipDispatchRuleUpdate {
                name: Some("renamed".into()),
                attributes: HashMap::from([("church".into(), "grace".into())]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.attributes["church"], "grace");
    assert_eq!(updated.trunk_ids, vec![trunk.sip_trunk_id.clone()]);
    assert!(updated.room_config.is_some(), "an update keeps the agents");

    let replaced = sip
        .update_sip_dispatch_rule_replace(
            id.clone(),
            proto::SipDispatchRuleInfo {
                name: "replaced".into(),
                trunk_ids: vec![trunk.sip_trunk_id.clone()],
                rule: Some(proto::SipDispatchRule {
                    rule: Some(individual("room-")),
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced.sip_dispatch_rule_id, id);
    assert!(replaced.room_config.is_none());

    let deleted = sip.delete_sip_dispatch_rule(&id).await.unwrap();
    assert_eq!(deleted.name, "replaced");
    let err = sip.delete_sip_dispatch_rule(&id).await.unwrap_err();
    assert_eq!(
        twirp_code(err),
        (
            "not_found".into(),
            "requested sip dispatch rule does not exist".into()
        )
    );
}

#[tokio::test]
async fn sdk_sees_validation_errors() {
    let f = Fixture::start().await;
    let sip = f.sip();
    let err = sip
        .create_sip_inbound_trunk("open".into(), Vec::new(), Default::default())
        .await
        .unwrap_err();
    let (code, msg) = twirp_code(err);
    assert_eq!(code, "invalid_argument");
    assert!(
        msg.starts_with("for security, one of the fields must be set"),
        "{msg}"
    );

    let err = sip
        .create_sip_inbound_trunk(
            "dup".into(),
            vec!["+14144007103".into()],
            CreateSIPInboundTrunkOptions {
                auth_username: Some("other".into()),
                auth_password: Some("credentials".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        twirp_code(err).1,
        r#"Conflicting inbound SIP Trunks: "<new>" and "ST_LWgmiBSwTk7P", using the same number(s) ["+14144007103"] without AllowedNumbers set"#
    );

    let err = sip
        .create_sip_outbound_trunk(
            "bad".into(),
            "sip:sip.telnyx.com".into(),
            vec!["+12268830000".into()],
            Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        twirp_code(err).1,
        "trunk address should be a hostname or IP, not SIP URI"
    );

    let err = sip
        .create_sip_dispatch_rule(
            individual("other-"),
            CreateSIPDispatchRuleOptions {
                trunk_ids: vec!["ST_LWgmiBSwTk7P".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let (code, msg) = twirp_code(err);
    assert_eq!(code, "invalid_argument");
    assert!(msg.ends_with(r#"in dispatch rule "SDR_4hTq8WnZpK3m" "Medhanialem Ethiopian Evangelical Church Dispatch""#), "{msg}");

    let err = sip
        .update_sip_inbound_trunk(
            "ST_LWgmiBSwTk7P".into(),
            proto::SipInboundTrunkUpdate {
                numbers: Some(proto::ListUpdate {
                    set: vec!["+1".into()],
                    add: vec!["+2".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        twirp_code(err).1,
        "cannot set and change the list at the same time"
    );

    let err = sip
        .update_sip_inbound_trunk("ST_doesnotexist".into(), Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        twirp_code(err),
        (
            "not_found".into(),
            "requested sip trunk does not exist".into()
        )
    );
}

#[tokio::test]
async fn deleting_an_unknown_trunk_answers_200() {
    let f = Fixture::start().await;
    let deleted = f.sip().delete_sip_trunk("ST_unknown000000").await.unwrap();
    assert_eq!(deleted.sip_trunk_id, "ST_unknown000000");
}

#[tokio::test]
async fn json_accepts_camel_and_snake_and_answers_snake_with_zero_values() {
    let f = Fixture::start().await;
    let (status, camel) = f
        .json(
            "CreateSIPInboundTrunk",
            json!({"trunk": {"name": "camel", "numbers": ["+12125550140"], "krispEnabled": true, "allowedNumbers": ["+13125550100"]}}),
        )
        .await;
    assert_eq!(status, 200, "{camel}");
    assert_eq!(camel["krisp_enabled"], json!(true));
    assert_eq!(camel["allowed_numbers"], json!(["+13125550100"]));
    assert_eq!(camel["allowed_addresses"], json!([]));
    assert_eq!(camel["auth_username"], json!(""));
    assert_eq!(camel["include_headers"], json!("SIP_NO_HEADERS"));
    assert!(camel.get("krispEnabled").is_none() && camel.get("mystery").is_none());

    let (status, snake) = f
        .json(
            "CreateSIPInboundTrunk",
            json!({"trunk": {"name": "snake", "numbers": ["+12125550141"], "krisp_enabled": true}}),
        )
        .await;
    assert_eq!(status, 200, "{snake}");
    assert_eq!(snake["krisp_enabled"], json!(true));

    let id = camel["sip_trunk_id"].as_str().unwrap();
    let (status, got) = f
        .json("GetSIPInboundTrunk", json!({"sipTrunkId": id}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["trunk"]["name"], json!("camel"));

    let (status, outbound) = f
        .json(
            "CreateSIPOutboundTrunk",
            json!({"trunk": {"name": "o", "address": "sip.telnyx.com", "numbers": ["+12268830009"], "transport": "SIP_TRANSPORT_TCP"}}),
        )
        .await;
    assert_eq!(status, 200, "{outbound}");
    assert_eq!(outbound["transport"], json!("SIP_TRANSPORT_TCP"));
    assert_eq!(outbound["media"], Value::Null);
}

#[tokio::test]
async fn json_dispatch_rule_wrapper_and_deprecated_fields() {
    let f = Fixture::start().await;
    let (_, trunk) = f
        .json(
            "CreateSIPInboundTrunk",
            json!({"trunk": {"name": "t", "numbers": ["+12125550150"]}}),
        )
        .await;
    let trunk_id = trunk["sip_trunk_id"].as_str().unwrap().to_string();
    let rule = json!({"dispatchRuleIndividual": {"roomPrefix": "call-"}});
    let room_config = json!({"agents": [{"agentName": AGENT, "metadata": "{}"}]});

    let (status, wrapped) = f
        .json(
            "CreateSIPDispatchRule",
            json!({"dispatch_rule": {"rule": rule, "trunk_ids": [trunk_id], "name": "wrapped", "room_config": room_config},
                   "name": "ignored when the wrapper is set"}),
        )
        .await;
    assert_eq!(status, 200, "{wrapped}");
    assert_eq!(wrapped["name"], json!("wrapped"));
    assert_eq!(
        wrapped["room_config"]["agents"][0]["agent_name"],
        json!(AGENT)
    );
    assert_eq!(
        wrapped["rule"],
        json!({"dispatch_rule_individual": {"room_prefix": "call-", "pin": "", "no_randomness": false}})
    );

    let (_, other) = f
        .json(
            "CreateSIPInboundTrunk",
            json!({"trunk": {"name": "t2", "numbers": ["+12125550151"]}}),
        )
        .await;
    let other_id = other["sip_trunk_id"].as_str().unwrap();
    let (status, legacy) = f
        .json(
            "CreateSIPDispatchRule",
            json!({"rule": rule, "trunkIds": [other_id], "name": "legacy", "roomConfig": room_config}),
        )
        .await;
    assert_eq!(status, 200, "{legacy}");
    assert_eq!(legacy["name"], json!("legacy"));
    assert_eq!(legacy["trunk_ids"], json!([other_id]));
    assert_eq!(
        legacy["room_config"]["agents"][0]["agent_name"],
        json!(AGENT),
        "the deprecated path keeps room_config, as the current server does (livekit/livekit 2025-01-26)"
    );

    let (status, missing) = f
        .json("CreateSIPDispatchRule", json!({"name": "no rule"}))
        .await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    assert_eq!(missing["msg"], json!("missing rule"));
}

#[tokio::test]
async fn list_filters_and_after_id_paging() {
    let f = Fixture::start().await;
    let (_, wildcard) = f
        .json(
            "CreateSIPInboundTrunk",
            json!({"trunk": {"name": "any", "allowedAddresses": ["10.0.0.0/8"]}}),
        )
        .await;
    let wildcard_id = wildcard["sip_trunk_id"].as_str().unwrap().to_string();

    let (_, by_number) = f
        .json("ListSIPInboundTrunk", json!({"numbers": ["14144007103"]}))
        .await;
    let ids: Vec<&str> = by_number["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sip_trunk_id"].as_str().unwrap())
        .collect();
    let mut expected = vec!["ST_LWgmiBSwTk7P", wildcard_id.as_str()];
    expected.sort();
    assert_eq!(
        ids, expected,
        "normalized number match plus the wildcard trunk"
    );

    let (_, all) = f.json("ListSIPInboundTrunk", json!({})).await;
    let all_ids: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["sip_trunk_id"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = all_ids.clone();
    sorted.sort();
    assert_eq!(all_ids, sorted, "items come in id order");

    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let (_, page) = f
            .json(
                "ListSIPInboundTrunk",
                json!({"page": {"afterId": after, "limit": 2}}),
            )
            .await;
        let items = page["items"].as_array().unwrap().clone();
        let Some(first) = items.first() else { break };
        let first = first["sip_trunk_id"].as_str().unwrap().to_string();
        paged.push(first.clone());
        after = first;
    }
    assert_eq!(paged, all_ids, "paging by after_id visits every trunk once");

    let (_, by_trunk) = f
        .json(
            "ListSIPDispatchRule",
            json!({"trunk_ids": ["ST_Xa3Bp9aixRFP"]}),
        )
        .await;
    let rule_ids: Vec<&str> = by_trunk["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sip_dispatch_rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(rule_ids, ["SDR_cYzx7sAkUTvx"]);
}

#[tokio::test]
async fn bad_tokens_get_plain_text_401() {
    let f = Fixture::start().await;
    let (status, ct, body) = f
        .raw(
            "ListSIPInboundTrunk",
            Some("Token abc".into()),
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(status, 401);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(
        body.trim_end(),
        "invalid authorization header. Must start with Bearer"
    );

    let forged = format!("Bearer {}", token_signed(admin_claims(), "not-the-secret"));
    let (status, ct, body) = f
        .raw(
            "ListSIPInboundTrunk",
            Some(forged),
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(status, 401);
    assert!(ct.starts_with("text/plain"));
    assert!(body.starts_with("invalid authorization token: "), "{body}");

    let unknown_key = json!({"iss": "APIother", "exp": now() + 600, "sip": {"admin": true}});
    let (status, _, body) = f
        .raw(
            "ListSIPInboundTrunk",
            Some(format!("Bearer {}", token(unknown_key))),
            "application/json",
            "{}",
        )
        .await;
    assert_eq!((status, body.trim_end()), (401, "invalid API key"));

    let expired = json!({"iss": LIVEKIT_API_KEY, "exp": now() - 3600, "sip": {"admin": true}});
    let (status, _, _) = f
        .raw(
            "ListSIPInboundTrunk",
            Some(format!("Bearer {}", token(expired))),
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(status, 401);

    let no_exp = json!({"iss": LIVEKIT_API_KEY, "sip": {"admin": true}});
    let (status, _, _) = f
        .raw(
            "ListSIPInboundTrunk",
            Some(format!("Bearer {}", token(no_exp))),
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(status, 401);

    let bad_sdk = SIPClient::with_api_key(&f.sandbox.base_url(), LIVEKIT_API_KEY, "wrong");
    let err = bad_sdk
        .list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Twirp(ServerError::Request(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_grant_or_token_is_twirp_unauthenticated() {
    let f = Fixture::start().await;
    let no_grant = json!({"iss": LIVEKIT_API_KEY, "exp": now() + 600, "video": {"roomJoin": true}});
    for auth in [None, Some(format!("Bearer {}", token(no_grant)))] {
        let (status, ct, body) = f
            .raw("ListSIPInboundTrunk", auth, "application/json", "{}")
            .await;
        assert_eq!(status, 401);
        assert!(ct.starts_with("application/json"));
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"code": "unauthenticated", "msg": "permissions denied"})
        );
    }
}

#[tokio::test]
async fn twirp_routing_errors() {
    let f = Fixture::start().await;
    let auth = Some(format!("Bearer {}", token(admin_claims())));
    let (status, _, body) = f
        .raw("ListSIPInboundTrunk", auth.clone(), "text/plain", "{}")
        .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 404);
    assert_eq!(body["code"], json!("bad_route"));
    assert_eq!(
        body["msg"],
        json!(r#"unexpected Content-Type: "text/plain""#)
    );
    assert_eq!(
        body["meta"]["twirp_invalid_route"],
        json!("POST /twirp/livekit.SIP/ListSIPInboundTrunk")
    );

    let (status, _, body) = f
        .raw("NoSuchMethod", auth.clone(), "application/json", "{}")
        .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, body["code"].as_str()), (404, Some("bad_route")));

    let res = reqwest::Client::new()
        .get(f.url("ListSIPInboundTrunk"))
        .header("Authorization", auth.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["msg"],
        json!(r#"unsupported method "GET" (only POST is allowed)"#)
    );

    let (status, _, body) = f
        .raw("ListSIPInboundTrunk", auth, "application/json", "{not json")
        .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, body["code"].as_str()), (400, Some("malformed")));
}

#[tokio::test]
async fn writes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxOptions::new(dir.path(), "runbook"))
        .await
        .unwrap();
    let sip = SIPClient::with_api_key(&sandbox.base_url(), LIVEKIT_API_KEY, LIVEKIT_API_SECRET);
    let created = sip
        .create_sip_inbound_trunk(
            "Persisted".into(),
            vec!["+12125550160".into()],
            Default::default(),
        )
        .await
        .unwrap();
    sandbox.shutdown().await.unwrap();

    let again = Sandbox::start(SandboxOptions::new(dir.path(), "runbook"))
        .await
        .unwrap();
    let sip = SIPClient::with_api_key(&again.base_url(), LIVEKIT_API_KEY, LIVEKIT_API_SECRET);
    let trunks = sip
        .list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All)
        .await
        .unwrap();
    let kept = trunks
        .iter()
        .find(|t| t.sip_trunk_id == created.sip_trunk_id)
        .unwrap();
    assert_eq!(kept.name, "Persisted");
}

/// The Rust SDK has no Get wrappers: send the prost messages by hand, as it would.
async fn get_protobuf<Req: prost::Message, Resp: prost::Message + Default>(
    f: &Fixture,
    method: &str,
    req: Req,
) -> Result<Resp, (u16, Value)> {
    let res = reqwest::Client::new()
        .post(f.url(method))
        .header("Authorization", format!("Bearer {}", token(admin_claims())))
        .header("Content-Type", "application/protobuf")
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let bytes = res.bytes().await.unwrap();
    if status == 200 {
        Ok(Resp::decode(bytes.as_ref()).unwrap())
    } else {
        Err((status, serde_json::from_slice(&bytes).unwrap()))
    }
}

#[tokio::test]
async fn protobuf_get_of_both_trunk_kinds() {
    let f = Fixture::start().await;
    let inbound: proto::GetSipInboundTrunkResponse = get_protobuf(
        &f,
        "GetSIPInboundTrunk",
        proto::GetSipInboundTrunkRequest {
            sip_trunk_id: "ST_hvf5m2RXfEiS".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(inbound.trunk.unwrap().name, "Twilio Test");

    let outbound: proto::GetSipOutboundTrunkResponse = get_protobuf(
        &f,
        "GetSIPOutboundTrunk",
        proto::GetSipOutboundTrunkRequest {
            sip_trunk_id: "ST_X3n9jxR55VrB".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(outbound.trunk.unwrap().auth_username, "cwaoutbound");

    let missing = get_protobuf::<_, proto::GetSipOutboundTrunkResponse>(
        &f,
        "GetSIPOutboundTrunk",
        proto::GetSipOutboundTrunkRequest {
            sip_trunk_id: "ST_hvf5m2RXfEiS".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(missing.0, 404, "an inbound id is not an outbound trunk");
    assert_eq!(
        missing.1["msg"],
        json!("requested sip trunk does not exist")
    );

    let empty = get_protobuf::<_, proto::GetSipInboundTrunkResponse>(
        &f,
        "GetSIPInboundTrunk",
        proto::GetSipInboundTrunkRequest::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(empty.0, 400);
    assert_eq!(empty.1["msg"], json!("trunk ID is required"));
}

#[tokio::test]
#[allow(deprecated)]
async fn sdk_deprecated_list_sip_trunk_shows_both_kinds() {
    let f = Fixture::start().await;
    let trunks = f
        .sip()
        .list_sip_trunk(livekit_api::services::sip::ListSIPTrunkFilter::All)
        .await
        .unwrap();
    assert_eq!(trunks.len(), 5);
    let outbound = trunks
        .iter()
        .find(|t| t.sip_trunk_id == "ST_X3n9jxR55VrB")
        .unwrap();
    assert_eq!(
        outbound.kind,
        proto::sip_trunk_info::TrunkKind::TrunkOutbound as i32
    );
    assert_eq!(outbound.outbound_address, "sip.telnyx.com");
}

/// Issue 13: fields a newer LiveKit keeps that livekit-protocol 0.8.2 does not know. The
/// server keeps what it knows: JSON answers carry them, the update action leaves them, a JSON
/// replace stores exactly the fields it carries and a protobuf replace (which cannot carry
/// them) wipes them.
#[tokio::test]
async fn newer_fields_survive_updates_and_carrying_replaces_only() {
    let f = Fixture::start().await;
    let id = "ST_3KMJ5YEjF2fF";
    let inject = || {
        f.sandbox
            .world()
            .lock()
            .unwrap()
            .livekit
            .newer_fields
            .insert(
                id.to_string(),
                json!({"future_setting": "kept"})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
    };
    let get = || f.json("GetSIPInboundTrunk", json!({"sip_trunk_id": id}));

    inject();
    let (_, got) = get().await;
    assert_eq!(got["trunk"]["future_setting"], json!("kept"), "{got}");
    let (_, listed) = f.json("ListSIPInboundTrunk", json!({})).await;
    let item = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["sip_trunk_id"] == json!(id))
        .unwrap();
    assert_eq!(item["future_setting"], json!("kept"));

    let (status, _) = f
        .json(
            "UpdateSIPInboundTrunk",
            json!({"sip_trunk_id": id, "update": {"name": "renamed"}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        get().await.1["trunk"]["future_setting"],
        json!("kept"),
        "update leaves them"
    );

    let mut carried = get().await.1["trunk"].clone();
    carried["name"] = json!("replaced, carrying everything");
    let (status, answer) = f
        .json(
            "UpdateSIPInboundTrunk",
            json!({"sip_trunk_id": id, "replace": carried}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["future_setting"],
        json!("kept"),
        "a carrying replace keeps them"
    );

    let current = f
        .sip()
        .list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.sip_trunk_id == id)
        .unwrap();
    f.sip()
        .update_sip_inbound_trunk_replace(id.to_string(), current)
        .await
        .unwrap();
    assert_eq!(
        get().await.1["trunk"].get("future_setting"),
        None,
        "a protobuf replace built from 0.8.2's structs wipes them"
    );

    inject();
    let (status, _) = f
        .json(
            "UpdateSIPInboundTrunk",
            json!({"sip_trunk_id": id, "replace": {"name": "sparse", "numbers": ["+13135550100"]}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        get().await.1["trunk"].get("future_setting"),
        None,
        "a replace without them wipes them"
    );

    inject();
    f.sip().delete_sip_trunk(id).await.unwrap();
    assert!(!f
        .sandbox
        .world()
        .lock()
        .unwrap()
        .livekit
        .newer_fields
        .contains_key(id));
}

/// Issue 13: the deprecated `CreateSIPTrunk` makes one trunk that lists and reads as inbound
/// and as outbound (livekit/livekit `redisstore_sip.go`); `DeleteSIPTrunk` removes both.
#[tokio::test]
async fn legacy_trunks_are_inbound_and_outbound_under_one_id() {
    let f = Fixture::start().await;
    let (status, made) = f
        .json(
            "CreateSIPTrunk",
            json!({"name": "combined", "outboundAddress": "sip.telnyx.com", "outboundNumber": "+12125550123",
                   "inboundUsername": "u", "inboundPassword": "p"}),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let id = made["sip_trunk_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("ST_"));
    let inbound = f
        .sip()
        .list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All)
        .await
        .unwrap();
    let outbound = f
        .sip()
        .list_sip_outbound_trunk(ListSIPOutboundTrunkFilter::All)
        .await
        .unwrap();
    let t = inbound.iter().find(|t| t.sip_trunk_id == id).unwrap();
    assert_eq!(t.numbers, vec!["+12125550123".to_string()]);
    assert_eq!(t.auth_username, "u");
    let o = outbound.iter().find(|t| t.sip_trunk_id == id).unwrap();
    assert_eq!(o.address, "sip.telnyx.com");
    let (status, got) = f
        .json("GetSIPOutboundTrunk", json!({"sip_trunk_id": id}))
        .await;
    assert_eq!(
        (status, got["trunk"]["address"].clone()),
        (200, json!("sip.telnyx.com"))
    );

    let (status, conflict) = f
        .json(
            "CreateSIPInboundTrunk",
            json!({"trunk": {"name": "same number", "numbers": ["+12125550123"]}}),
        )
        .await;
    assert_eq!(
        (status, conflict["code"].clone()),
        (400, json!("invalid_argument")),
        "{conflict}"
    );
    let (status, regex) = f
        .json("CreateSIPTrunk", json!({"inboundNumbersRegex": ["^\\+1"]}))
        .await;
    assert_eq!(
        (status, regex["code"].clone()),
        (400, json!("invalid_argument"))
    );

    f.sip().delete_sip_trunk(&id).await.unwrap();
    let (status, _) = f
        .json("GetSIPInboundTrunk", json!({"sip_trunk_id": id}))
        .await;
    assert_eq!(status, 404, "both sides are gone");
}

/// Issue 13: with the page-cap switch on (an assumption about LiveKit Cloud), `page.limit`
/// caps an answer; without it the answer drains every page, as the open-source server does.
#[tokio::test]
async fn list_page_cap_switch_honours_limit() {
    let f = Fixture::start().await;
    let page = json!({"page": {"limit": 2}});
    let (_, drained) = f.json("ListSIPInboundTrunk", page.clone()).await;
    let all = drained["items"].as_array().unwrap().len();
    assert!(all > 2, "the OSS server ignores limit");
    f.sandbox.world().lock().unwrap().livekit.list_page_cap = Some(1000);
    let (_, first) = f.json("ListSIPInboundTrunk", page).await;
    let first = first["items"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    let after = first[1]["sip_trunk_id"].clone();
    let (_, second) = f
        .json(
            "ListSIPInboundTrunk",
            json!({"page": {"limit": 2, "afterId": after}}),
        )
        .await;
    let second = second["items"].as_array().unwrap();
    assert!(second[0]["sip_trunk_id"].as_str() > after.as_str());
}
