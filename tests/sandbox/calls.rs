//! The call-path simulation over HTTP (`POST /sandbox/calls`): the happy paths and every
//! failure mode of the runbooks, each broken state made through the providers' own endpoints.

use cwa::sandbox::{
    Sandbox, SandboxOptions, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, TELNYX_API_KEY,
    TELNYX_FQDN_PASSWORD, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
};
use livekit_api::services::sip::SIPClient;
use livekit_protocol as proto;
use serde_json::{json, Value};

const CALLER: &str = "+13125550142";
const MEDHANIALEM: &str = "+14144007103";
const MELVINDALE: &str = "+17473897673";
const FALLBACK: &str = "+14697288326";
const DEMO_US: &str = "+14696152221";
const SPARE: &str = "+13658253552";
const FQDN_CONNECTION: &str = "2925081061861885519";
const FQDN_RECORD: &str = "2925083349418510207";
const TEXML_APP: &str = "2927180743153026408";

struct World {
    sandbox: Sandbox,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl World {
    async fn runbook() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::start(SandboxOptions::new(dir.path(), "runbook"))
            .await
            .unwrap();
        Self {
            sandbox,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn call(&self, to: &str) -> Value {
        let res = self
            .http
            .post(format!("{}/sandbox/calls", self.sandbox.base_url()))
            .json(&json!({"from": CALLER, "to": to}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        res.json().await.unwrap()
    }

    async fn telnyx(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}/v2/{path}", self.sandbox.base_url()))
            .bearer_auth(TELNYX_API_KEY);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn telnyx_patch(&self, path: &str, body: Value) -> Value {
        self.telnyx(reqwest::Method::PATCH, path, Some(body)).await
    }

    async fn twilio(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
        let res = self
            .http
            .request(method, format!("{}{path}", self.sandbox.base_url()))
            .basic_auth(TWILIO_ACCOUNT_SID, Some(TWILIO_AUTH_TOKEN))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    fn sip(&self) -> SIPClient {
        SIPClient::with_api_key(
            &self.sandbox.base_url(),
            LIVEKIT_API_KEY,
            LIVEKIT_API_SECRET,
        )
    }

    async fn set_trunk_auth(&self, trunk: &str, user: &str, password: &str) {
        self.sip()
            .update_sip_inbound_trunk(
                trunk.into(),
                proto::SipInboundTrunkUpdate {
                    auth_username: Some(user.into()),
                    auth_password: Some(password.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
}

fn outcome(report: &Value) -> &str {
    report["outcome"].as_str().unwrap()
}

fn hop<'a>(report: &'a Value, stage: &str) -> &'a Value {
    report["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["stage"] == stage)
        .unwrap_or_else(|| panic!("no {stage} hop in {report:#}"))
}

#[tokio::test]
async fn a_telnyx_church_line_reaches_the_agent() {
    let w = World::runbook().await;
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "agent_answered", "{report:#}");
    assert_eq!(report["provider"], json!("telnyx"));
    assert_eq!(report["connected"], json!(true));
    assert_eq!(report["agents"], json!(["churchwiseai-voice"]));
    assert_eq!(
        hop(&report, "livekit_trunk")["id"],
        json!("ST_LWgmiBSwTk7P")
    );
    assert_eq!(
        hop(&report, "dispatch_rule")["id"],
        json!("SDR_4hTq8WnZpK3m")
    );
    let room = report["room_name"].as_str().unwrap();
    assert!(room.starts_with(&format!("call-_{CALLER}_")), "{room}");
    assert_eq!(
        report["participant_identity"],
        json!(format!("sip_{CALLER}"))
    );
}

#[tokio::test]
async fn a_legacy_twilio_number_reaches_the_agent_through_the_locked_trunk() {
    let w = World::runbook().await;
    let report = w.call(DEMO_US).await;
    assert_eq!(outcome(&report), "agent_answered", "{report:#}");
    assert_eq!(report["provider"], json!("twilio"));
    assert_eq!(
        hop(&report, "livekit_trunk")["id"],
        json!("ST_Xa3Bp9aixRFP")
    );
    assert_eq!(
        hop(&report, "dispatch_rule")["id"],
        json!("SDR_cYzx7sAkUTvx")
    );
}

#[tokio::test]
async fn a_rule_without_agents_connects_but_the_agent_never_joins() {
    let w = World::runbook().await;
    let report = w.call(MELVINDALE).await;
    assert_eq!(outcome(&report), "agent_never_joins", "{report:#}");
    assert_eq!(report["connected"], json!(false));
    assert!(report["caller_hears"]
        .as_str()
        .unwrap()
        .contains("customer unavailable"));
    assert!(report["room_name"].as_str().unwrap().starts_with("call-_"));
}

#[tokio::test]
async fn a_rule_recreated_through_the_deprecated_fields_keeps_its_agent_as_the_current_server() {
    let w = World::runbook().await;
    w.sip()
        .delete_sip_dispatch_rule("SDR_4hTq8WnZpK3m")
        .await
        .unwrap();
    let token =
        livekit_api::access_token::AccessToken::with_api_key(LIVEKIT_API_KEY, LIVEKIT_API_SECRET)
            .with_sip_grants(livekit_api::access_token::SIPGrants {
                admin: true,
                call: false,
            })
            .to_jwt()
            .unwrap();
    let res = w
        .http
        .post(format!(
            "{}/twirp/livekit.SIP/CreateSIPDispatchRule",
            w.sandbox.base_url()
        ))
        .bearer_auth(token)
        .json(&json!({
            "rule": {"dispatchRuleIndividual": {"roomPrefix": "call-"}},
            "trunkIds": ["ST_LWgmiBSwTk7P"],
            "name": "Medhanialem Dispatch (deprecated fields)",
            "roomConfig": {"agents": [{"agentName": "churchwiseai-voice"}]}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // Issue 13: the current server keeps room_config on the deprecated path (livekit/livekit,
    // 2025-01-26); the runbooks' "agent never joins" came from older servers.
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "agent_answered", "{report:#}");
}

#[tokio::test]
async fn the_texml_number_plays_the_fallback_greeting() {
    let w = World::runbook().await;
    let report = w.call(FALLBACK).await;
    assert_eq!(outcome(&report), "fallback_greeting", "{report:#}");
    assert!(hop(&report, "texml_application")["detail"]
        .as_str()
        .unwrap()
        .contains("https://churchwiseai.com/api/voice/fallback"));
}

#[tokio::test]
async fn a_church_number_rebound_to_the_texml_app_ends_at_the_greeting() {
    let w = World::runbook().await;
    let numbers = w
        .telnyx(
            reqwest::Method::GET,
            &format!(
                "phone_numbers?filter[phone_number]={}",
                MEDHANIALEM.trim_start_matches('+')
            ),
            None,
        )
        .await;
    let id = numbers["data"][0]["id"].as_str().unwrap().to_string();
    w.telnyx_patch(
        &format!("phone_numbers/{id}"),
        json!({"connection_id": TEXML_APP}),
    )
    .await;
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "fallback_greeting", "{report:#}");
}

#[tokio::test]
async fn an_unknown_number_is_not_assigned() {
    let w = World::runbook().await;
    let report = w.call("+19995550100").await;
    assert_eq!(outcome(&report), "number_not_assigned", "{report:#}");
    assert_eq!(report["provider"], Value::Null);
}

#[tokio::test]
async fn a_number_whose_purchase_is_pending_is_not_assigned() {
    let w = World::runbook().await;
    w.sandbox.world().lock().unwrap().telnyx.order_completion_ms = 3_600_000;
    let found = w
        .telnyx(
            reqwest::Method::GET,
            "available_phone_numbers?filter[national_destination_code]=414&filter[limit]=1",
            None,
        )
        .await;
    let number = found["data"][0]["phone_number"]
        .as_str()
        .unwrap()
        .to_string();
    w.telnyx(
        reqwest::Method::POST,
        "number_orders",
        Some(
            json!({"phone_numbers": [{"phone_number": number}], "connection_id": FQDN_CONNECTION}),
        ),
    )
    .await;
    let report = w.call(&number).await;
    assert_eq!(outcome(&report), "number_not_assigned", "{report:#}");
    assert!(hop(&report, "number")["detail"]
        .as_str()
        .unwrap()
        .contains("purchase-pending"));
}

#[tokio::test]
async fn a_project_name_sip_host_gives_404_no_trunk_found() {
    let w = World::runbook().await;
    w.telnyx_patch(
        &format!("fqdns/{FQDN_RECORD}"),
        json!({"fqdn": "cwa-voice-9x077mph.sip.livekit.cloud"}),
    )
    .await;
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "no_trunk_found", "{report:#}");
    assert_eq!(report["sip_status"], json!(404));
    assert_eq!(report["livekit_error"], json!("404 No trunk found"));
}

#[tokio::test]
async fn udp_transport_fails() {
    let w = World::runbook().await;
    w.telnyx_patch(
        &format!("fqdn_connections/{FQDN_CONNECTION}"),
        json!({"transport_protocol": "UDP"}),
    )
    .await;
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "transport_failed", "{report:#}");
    assert_eq!(hop(&report, "telnyx_connection")["ok"], json!(false));
}

#[tokio::test]
async fn a_connection_without_default_primary_fqdn_is_not_assigned() {
    let w = World::runbook().await;
    w.telnyx_patch(
        &format!("fqdn_connections/{FQDN_CONNECTION}"),
        json!({"inbound": {"default_primary_fqdn_id": null}}),
    )
    .await;
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "number_not_assigned", "{report:#}");
    assert!(hop(&report, "telnyx_connection")["detail"]
        .as_str()
        .unwrap()
        .contains("default_primary_fqdn_id"));
}

#[tokio::test]
async fn numbers_delivered_without_plus_are_normalized_by_livekit() {
    let w = World::runbook().await;
    w.telnyx_patch(
        &format!("fqdn_connections/{FQDN_CONNECTION}"),
        json!({"inbound": {"dnis_number_format": "e164", "ani_number_format": "E.164"}}),
    )
    .await;
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "agent_answered", "{report:#}");
    let trunk = hop(&report, "livekit_trunk");
    assert_eq!(trunk["id"], json!("ST_LWgmiBSwTk7P"));
    assert!(
        trunk["detail"]
            .as_str()
            .unwrap()
            .contains("normalized \"14144007103\""),
        "{trunk}"
    );
}

#[tokio::test]
async fn trunk_auth_the_carrier_does_not_answer_is_407() {
    let w = World::runbook().await;
    w.set_trunk_auth("ST_LWgmiBSwTk7P", "someone", "else").await;
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "proxy_auth_required", "{report:#}");
    assert_eq!(report["sip_status"], json!(407));
    assert!(report["caller_hears"]
        .as_str()
        .unwrap()
        .contains("not assigned"));

    w.set_trunk_auth("ST_hvf5m2RXfEiS", "twilio", "no-credentials-sent")
        .await;
    let report = w.call(SPARE).await;
    assert_eq!(outcome(&report), "proxy_auth_required", "{report:#}");
    assert!(hop(&report, "sip_auth")["detail"]
        .as_str()
        .unwrap()
        .contains("sends no credentials"));
}

#[tokio::test]
async fn trunk_auth_matching_the_connection_credentials_passes() {
    let w = World::runbook().await;
    w.set_trunk_auth("ST_LWgmiBSwTk7P", "churchwiseai", TELNYX_FQDN_PASSWORD)
        .await;
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "agent_answered", "{report:#}");
    assert_eq!(hop(&report, "sip_auth")["ok"], json!(true));
}

#[tokio::test]
async fn a_deleted_trunk_gives_404_no_trunk_found() {
    let w = World::runbook().await;
    w.sip().delete_sip_trunk("ST_LWgmiBSwTk7P").await.unwrap();
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "no_trunk_found", "{report:#}");
    assert_eq!(report["sip_status"], json!(404));
}

#[tokio::test]
async fn a_deleted_dispatch_rule_means_no_rule_matched() {
    let w = World::runbook().await;
    w.sip()
        .delete_sip_dispatch_rule("SDR_4hTq8WnZpK3m")
        .await
        .unwrap();
    let report = w.call(MEDHANIALEM).await;
    assert_eq!(outcome(&report), "no_dispatch_rule", "{report:#}");
    assert_eq!(
        report["livekit_error"],
        json!(format!(
            "No SIP Dispatch Rules matched for \"{MEDHANIALEM}\""
        ))
    );
}

#[tokio::test]
async fn a_twilio_origination_url_on_the_project_name_host_gives_404() {
    let w = World::runbook().await;
    let trunks = w.twilio(reqwest::Method::GET, "/v1/Trunks", &[]).await;
    let trunk = trunks["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["domain_name"] == "churchwiseai.pstn.twilio.com")
        .unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let urls = w
        .twilio(
            reqwest::Method::GET,
            &format!("/v1/Trunks/{trunk}/OriginationUrls"),
            &[],
        )
        .await;
    let url = urls["origination_urls"][0]["sid"]
        .as_str()
        .unwrap()
        .to_string();
    w.twilio(
        reqwest::Method::POST,
        &format!("/v1/Trunks/{trunk}/OriginationUrls/{url}"),
        &[(
            "SipUrl",
            "sip:cwa-voice-9x077mph.sip.livekit.cloud;transport=tcp",
        )],
    )
    .await;
    let report = w.call(DEMO_US).await;
    assert_eq!(outcome(&report), "no_trunk_found", "{report:#}");
    assert_eq!(hop(&report, "twilio_origination")["ok"], json!(false));
}

#[tokio::test]
async fn a_malformed_call_request_is_400() {
    let w = World::runbook().await;
    let res = w
        .http
        .post(format!("{}/sandbox/calls", w.sandbox.base_url()))
        .json(&json!({"to": MEDHANIALEM}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test]
async fn every_line_of_a_synthetic_world_reaches_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxOptions::new(dir.path(), "synthetic:5"))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for line in cwa::sandbox::synthetic_lines(5) {
        let report: Value = http
            .post(format!("{}/sandbox/calls", sandbox.base_url()))
            .json(&json!({"from": CALLER, "to": line.number.as_str()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(outcome(&report), "agent_answered", "{report:#}");
        let rule = hop(&report, "dispatch_rule");
        assert!(
            rule["detail"].as_str().unwrap().contains(&line.church_name),
            "{rule}"
        );
    }
}
