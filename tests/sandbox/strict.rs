//! Strict mode over real HTTP: requests the providers' published specs do not allow are refused
//! in each provider's own error shape, answers are held to the response schemas, and the
//! extracts in tests/contracts/ cover every route cwa's clients use. Also the Telnyx realism
//! switches (best-effort offers, failed and requirement-pending orders, masked passwords,
//! rate-limit headers), each exercised here.

use crate::common::sandbox::{send, telnyx_code, TestSandbox};
use cwa::sandbox::contract;
use reqwest::Method;
use serde_json::{json, Value};

const FQDN_CONNECTION: &str = "2925081061861885519";
const CREDENTIAL_CONNECTION: &str = "2948197312620398250";

#[tokio::test]
async fn an_undeclared_key_is_refused_in_telnyx_error_shape() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(
        sb.telnyx(
            Method::PATCH,
            &format!("/fqdn_connections/{FQDN_CONNECTION}"),
        )
        .json(&json!({"user_name": "someone", "password": "secret-123"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(telnyx_code(&body), "10015");
    let detail = body["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("UpdateFqdnConnection"), "{detail}");
    assert!(body["errors"][0]["title"].is_string());
}

#[tokio::test]
async fn a_null_where_the_spec_types_an_integer_is_refused() {
    let sb = TestSandbox::start("runbook").await;
    for body in [
        json!({"outbound": {"channel_limit": null}}),
        json!({"outbound": {"tech_prefix": null}}),
        json!({"outbound": {"ip_authentication_token": null}}),
        json!({"outbound": {"outbound_voice_profile_id": null}}),
    ] {
        let (status, answer) = send(
            sb.telnyx(
                Method::PATCH,
                &format!("/fqdn_connections/{FQDN_CONNECTION}"),
            )
            .json(&body),
        )
        .await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(
            answer["errors"][0]["source"]["pointer"]
                .as_str()
                .unwrap()
                .split('/')
                .nth(1),
            Some("outbound"),
            "{answer}"
        );
    }
    let (status, answer) = send(
        sb.telnyx(Method::PATCH, "/phone_numbers/2926113000000000001")
            .json(&json!({"connection_id": null})),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
}

#[tokio::test]
async fn out_of_range_query_values_and_undeclared_filters_are_refused() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("page[size]", "251")]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["source"]["parameter"], "page[size]");
    let (status, _) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[made_up]", "1")]),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("page[size]", "250")]),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_route_no_contract_declares_is_refused() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(sb.telnyx(Method::GET, "/messaging_profiles")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("tests/contracts"));
}

#[tokio::test]
async fn twilio_form_values_are_typed_and_ranged_by_the_spec() {
    let sb = TestSandbox::start("runbook").await;
    let trunks = sb.world_json().await;
    let trunk = trunks["twilio"]["trunks"]
        .as_object()
        .and_then(|t| t.keys().next().cloned())
        .expect("the runbook world has a Twilio trunk");
    let create = |weight: &str| {
        sb.twilio(Method::POST, &format!("/v1/Trunks/{trunk}/OriginationUrls"))
            .form(&[
                ("FriendlyName", "strict"),
                ("SipUrl", "sip:strict.example.com"),
                ("Priority", "10"),
                ("Weight", weight),
                ("Enabled", "true"),
            ])
    };
    let (status, body) = send(create("heavy")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 20001);
    assert!(
        body["message"].as_str().unwrap().contains("Weight"),
        "{body}"
    );
    let (status, body) = send(create("70000")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(create("10")).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn strict_mode_can_be_turned_off_to_see_the_real_quirks() {
    let sb = TestSandbox::start_with("runbook", |o| o.strict = false).await;
    let (status, _) = send(
        sb.telnyx(
            Method::PATCH,
            &format!("/fqdn_connections/{FQDN_CONNECTION}"),
        )
        .json(&json!({"outbound_voice_profile_id": "x"})),
    )
    .await;
    assert_eq!(
        status, 200,
        "lenient: an unknown key is ignored, as Telnyx does"
    );
}

/// Every route the Telnyx and Twilio clients of cwa can call is declared by a contract: the
/// list below is what `src/providers/{telnyx,twilio}.rs` build (and the count is what
/// tests/contracts/README.md states).
#[test]
fn the_contracts_cover_every_route_cwa_calls() {
    let telnyx = contract::for_provider("telnyx").unwrap();
    let calls = [
        ("GET", "/v2/available_phone_numbers"),
        ("POST", "/v2/number_orders"),
        ("GET", "/v2/number_orders"),
        ("GET", "/v2/number_orders/1"),
        ("GET", "/v2/phone_numbers"),
        ("GET", "/v2/phone_numbers/1"),
        ("PATCH", "/v2/phone_numbers/1"),
        ("DELETE", "/v2/phone_numbers/1"),
        ("PATCH", "/v2/fqdn_connections/1/fqdn_authentication"),
        ("POST", "/v2/number_reservations"),
        ("GET", "/v2/number_reservations"),
        ("GET", "/v2/addresses"),
        ("POST", "/v2/addresses"),
        ("GET", "/v2/addresses/1"),
        ("DELETE", "/v2/addresses/1"),
        ("POST", "/v2/phone_numbers/1/actions/enable_emergency"),
    ];
    for (m, p) in calls {
        assert!(telnyx.covers(m, p), "{m} {p}");
    }
    for c in [
        "fqdn_connections",
        "fqdns",
        "credential_connections",
        "outbound_voice_profiles",
        "texml_applications",
    ] {
        for (m, p) in [
            ("GET", format!("/v2/{c}")),
            ("POST", format!("/v2/{c}")),
            ("GET", format!("/v2/{c}/1")),
            ("PATCH", format!("/v2/{c}/1")),
            ("DELETE", format!("/v2/{c}/1")),
        ] {
            assert!(telnyx.covers(m, &p), "{m} {p}");
        }
    }
    let twilio = contract::for_provider("twilio").unwrap();
    let acct = "/2010-04-01/Accounts/AC1";
    for (m, p) in [
        ("GET", format!("{acct}/IncomingPhoneNumbers.json")),
        ("GET", format!("{acct}/IncomingPhoneNumbers/PN1.json")),
        ("POST", format!("{acct}/IncomingPhoneNumbers/PN1.json")),
        ("DELETE", format!("{acct}/IncomingPhoneNumbers/PN1.json")),
        ("GET", "/v1/Trunks".into()),
        ("POST", "/v1/Trunks".into()),
        ("GET", "/v1/Trunks/TK1".into()),
        ("POST", "/v1/Trunks/TK1".into()),
        ("DELETE", "/v1/Trunks/TK1".into()),
        ("GET", "/v1/Trunks/TK1/PhoneNumbers".into()),
        ("POST", "/v1/Trunks/TK1/PhoneNumbers".into()),
        ("DELETE", "/v1/Trunks/TK1/PhoneNumbers/PN1".into()),
        ("GET", "/v1/Trunks/TK1/OriginationUrls".into()),
        ("POST", "/v1/Trunks/TK1/OriginationUrls".into()),
        ("POST", "/v1/Trunks/TK1/OriginationUrls/OU1".into()),
        ("DELETE", "/v1/Trunks/TK1/OriginationUrls/OU1".into()),
    ] {
        assert!(twilio.covers(m, &p), "{m} {p}");
    }
    assert_eq!(
        telnyx.len(),
        45,
        "update tests/contracts/README.md with the new count"
    );
    assert_eq!(
        twilio.len(),
        18,
        "update tests/contracts/README.md with the new count"
    );
}

// ---- Telnyx realism switches ------------------------------------------------------------

#[tokio::test]
async fn best_effort_offers_come_from_a_neighbouring_area_code() {
    let sb = TestSandbox::start("runbook").await;
    sb.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .best_effort_area_codes
        .insert("734".into());
    let (status, body) = send(sb.telnyx(Method::GET, "/available_phone_numbers").query(&[
        ("filter[national_destination_code]", "734"),
        ("filter[limit]", "3"),
    ]))
    .await;
    assert_eq!(status, 200, "{body}");
    let offers = body["data"].as_array().unwrap();
    assert!(!offers.is_empty());
    for o in offers {
        assert_eq!(o["best_effort"], true);
        assert!(!o["phone_number"].as_str().unwrap().starts_with("+1734"));
    }
    assert_eq!(body["meta"]["best_effort_results"], offers.len());
}

async fn order_in(sb: &TestSandbox, npa: &str) -> (Value, String) {
    let (_, found) = send(sb.telnyx(Method::GET, "/available_phone_numbers").query(&[
        ("filter[national_destination_code]", npa),
        ("filter[limit]", "1"),
    ]))
    .await;
    let number = found["data"][0]["phone_number"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, order) = send(sb.telnyx(Method::POST, "/number_orders").json(&json!({
        "phone_numbers": [{"phone_number": number}],
        "customer_reference": "realism",
    })))
    .await;
    assert_eq!(status, 200, "{order}");
    (order["data"].clone(), number)
}

async fn number_status(sb: &TestSandbox, number: &str) -> String {
    let (_, listed) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[phone_number]", number.trim_start_matches('+'))]),
    )
    .await;
    listed["data"][0]["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn failed_orders_leave_purchase_failed_numbers() {
    let sb = TestSandbox::start("runbook").await;
    sb.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .fail_orders = true;
    let (order, number) = order_in(&sb, "414").await;
    let id = order["id"].as_str().unwrap();
    let (_, again) = send(sb.telnyx(Method::GET, &format!("/number_orders/{id}"))).await;
    assert_eq!(again["data"]["status"], "failure");
    assert_eq!(again["data"]["phone_numbers"][0]["status"], "failure");
    assert_eq!(number_status(&sb, &number).await, "purchase-failed");
}

#[tokio::test]
async fn requirement_pending_orders_never_complete_by_themselves() {
    let sb = TestSandbox::start("runbook").await;
    sb.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .requirement_info_pending = true;
    let (order, number) = order_in(&sb, "414").await;
    let id = order["id"].as_str().unwrap();
    for _ in 0..2 {
        let (_, again) = send(sb.telnyx(Method::GET, &format!("/number_orders/{id}"))).await;
        assert_eq!(again["data"]["status"], "pending");
        assert_eq!(again["data"]["requirements_met"], false);
        assert_eq!(
            again["data"]["phone_numbers"][0]["requirements_status"],
            "requirement-info-pending"
        );
    }
    assert_eq!(
        number_status(&sb, &number).await,
        "requirement-info-pending"
    );
}

#[tokio::test]
async fn masked_passwords_are_never_shown() {
    let sb = TestSandbox::start("runbook").await;
    sb.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .mask_passwords = true;
    for path in [
        format!("/fqdn_connections/{FQDN_CONNECTION}"),
        format!("/credential_connections/{CREDENTIAL_CONNECTION}"),
    ] {
        let (status, body) = send(sb.telnyx(Method::GET, &path)).await;
        assert_eq!(status, 200);
        let pw = body["data"]["password"].as_str().unwrap_or("");
        assert!(
            pw.is_empty() || pw.chars().all(|c| c == '*'),
            "{path}: {pw}"
        );
    }
    let (_, list) = send(sb.telnyx(Method::GET, "/fqdn_connections")).await;
    assert!(!list
        .to_string()
        .contains(cwa::sandbox::TELNYX_FQDN_PASSWORD));
}

#[tokio::test]
async fn rate_limits_report_headers_and_answer_429_with_10011() {
    let sb = TestSandbox::start_with("runbook", |o| o.rate_limit = Some(2.0)).await;
    let mut limited = None;
    let mut saw_headers = false;
    for _ in 0..20 {
        let r = sb
            .telnyx(Method::GET, "/phone_numbers")
            .send()
            .await
            .unwrap();
        let h = r.headers().clone();
        if r.status().as_u16() == 429 {
            limited = Some((h, r.json::<Value>().await.unwrap()));
            break;
        }
        saw_headers |= h.contains_key("x-ratelimit-limit")
            && h.contains_key("x-ratelimit-remaining")
            && h.contains_key("x-ratelimit-reset");
    }
    assert!(saw_headers, "ordinary answers carry x-ratelimit-*");
    let (headers, body) = limited.expect("a 429 within 20 requests at 2/s");
    assert_eq!(telnyx_code(&body), "10011");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(headers["x-ratelimit-remaining"], "0");
}

// ---- LiveKit: the SIP protos -----------------------------------------------------------

/// A raw protobuf Twirp call, built by hand (never from the Rust structs the clients use).
fn twirp_protobuf(sb: &TestSandbox, method: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(sb.url(&format!("/twirp/livekit.SIP/{method}")))
        .bearer_auth(crate::common::sandbox::livekit_admin_token())
        .header("content-type", "application/protobuf")
        .body(body)
}

/// A length-delimited protobuf field.
fn pb_bytes(field: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn livekit_json_with_an_undeclared_field_or_a_wrong_type_is_malformed() {
    let sb = TestSandbox::start("runbook").await;
    let create = |trunk: Value| sb.twirp_json("CreateSIPInboundTrunk", &json!({ "trunk": trunk }));
    for (trunk, pointer) in [
        (
            json!({"name": "x", "numbers": ["+14155550100"], "krisp": true}),
            "krisp",
        ),
        (json!({"name": "x", "numbers": "+14155550100"}), "numbers"),
        (
            json!({"name": "x", "numbers": ["+14155550100"], "krisp_enabled": "yes"}),
            "krisp_enabled",
        ),
        (
            json!({"name": "x", "numbers": ["+14155550100"], "include_headers": "SIP_SOME"}),
            "include_headers",
        ),
        (
            json!({"name": "x", "numbers": ["+14155550100"], "ringing_timeout": 30}),
            "ringing_timeout",
        ),
    ] {
        let (status, body) = send(create(trunk.clone())).await;
        assert_eq!(status, 400, "{trunk} -> {body}");
        assert_eq!(body["code"], "malformed", "{body}");
        let msg = body["msg"].as_str().unwrap();
        assert!(
            msg.contains("CreateSIPInboundTrunk") && msg.contains(pointer),
            "{msg}"
        );
    }
    // Both field-name forms protojson reads, enums by name, durations as strings: accepted.
    let (status, body) = send(create(json!({
        "name": "strict", "numbers": ["+14155550111"], "allowedAddresses": ["203.0.113.0/24"],
        "include_headers": "SIP_X_HEADERS", "ringingTimeout": "30s", "krispEnabled": true,
    })))
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn livekit_oneof_members_are_exclusive() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(sb.twirp_json(
        "UpdateSIPInboundTrunk",
        &json!({"sip_trunk_id": "ST_x", "replace": {"name": "a"}, "update": {"name": "b"}}),
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "malformed");
}

#[tokio::test]
async fn livekit_protobuf_is_read_against_the_protos_field_numbers() {
    let sb = TestSandbox::start("runbook").await;
    let trunk = pb_bytes(1, b"ST_doesnotexist");
    // Declared: field 1 (sip_trunk_id) of GetSIPInboundTrunkRequest; the id is unknown.
    let (status, body) = send(twirp_protobuf(&sb, "GetSIPInboundTrunk", trunk.clone())).await;
    assert_eq!(status, 404, "{body}");
    // Field 9 is in no version of the message.
    let mut extra = trunk.clone();
    extra.extend([9 << 3, 1]);
    let (status, body) = send(twirp_protobuf(&sb, "GetSIPInboundTrunk", extra)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "malformed");
    assert!(
        body["msg"].as_str().unwrap().contains("field number 9"),
        "{body}"
    );
    // sip_trunk_id sent as a varint: the wire type does not fit a string.
    let (status, body) = send(twirp_protobuf(&sb, "GetSIPInboundTrunk", vec![1 << 3, 7])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "malformed");
    // A nested message is read too: CreateSIPInboundTrunkRequest.trunk (1) with an unknown
    // field 99 inside SIPInboundTrunkInfo.
    let inner = [pb_bytes(2, b"x"), vec![0x98, 0x06, 1]].concat();
    let (status, body) = send(twirp_protobuf(
        &sb,
        "CreateSIPInboundTrunk",
        pb_bytes(1, &inner),
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("SIPInboundTrunkInfo"),
        "{body}"
    );
}

/// The class: for every method of the LiveKit extract, a JSON body carrying a key the protos
/// do not declare is refused, so the sandbox can never accept what the spec does not.
#[tokio::test]
async fn no_livekit_method_accepts_an_undeclared_key() {
    let sb = TestSandbox::start("runbook").await;
    let livekit = contract::for_provider("livekit").unwrap();
    for op in livekit.operations() {
        // Both services: `POST /twirp/livekit.SIP/…` and `…/livekit.PhoneNumberService/…`.
        let path = op.split_once(' ').unwrap().1;
        let request = sb
            .http
            .post(sb.url(path))
            .bearer_auth(crate::common::sandbox::livekit_admin_token())
            .header("content-type", "application/json")
            .body(json!({"cwa_undeclared_key": true}).to_string());
        let (status, body) = send(request).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("malformed")),
            "{op}: {body}"
        );
    }
    // And the lenient sandbox shows the real server's behaviour: the key is dropped.
    let lenient = TestSandbox::start_with("runbook", |o| o.strict = false).await;
    let (status, body) =
        send(lenient.twirp_json("ListSIPInboundTrunk", &json!({"cwa_undeclared_key": true}))).await;
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_livekit_contract_covers_every_method_cwa_calls_and_names_its_commit() {
    let livekit = contract::for_provider("livekit").unwrap();
    for method in [
        "CreateSIPInboundTrunk",
        "UpdateSIPInboundTrunk",
        "GetSIPInboundTrunk",
        "ListSIPInboundTrunk",
        "CreateSIPOutboundTrunk",
        "UpdateSIPOutboundTrunk",
        "GetSIPOutboundTrunk",
        "ListSIPOutboundTrunk",
        "DeleteSIPTrunk",
        "CreateSIPDispatchRule",
        "UpdateSIPDispatchRule",
        "ListSIPDispatchRule",
        "DeleteSIPDispatchRule",
        "CreateSIPTrunk",
        "ListSIPTrunk",
    ] {
        assert!(
            livekit.covers("POST", &format!("/twirp/livekit.SIP/{method}")),
            "{method}"
        );
    }
    assert_eq!(
        livekit.len(),
        23,
        "update tests/contracts/README.md with the new count"
    );
    let sources = livekit.sources();
    assert!(sources
        .iter()
        .all(|s| s.repository == "github:livekit/protocol"
            && s.commit == "d74e7cdb9835928ffa9c6bc6b3e4c7f07de61c43"));
    assert!(sources
        .iter()
        .any(|s| s.file == "protobufs/livekit_sip.proto"));
    for method in [
        "SearchPhoneNumbers",
        "PurchasePhoneNumber",
        "ListPhoneNumbers",
        "GetPhoneNumber",
        "UpdatePhoneNumber",
        "ReleasePhoneNumbers",
    ] {
        assert!(
            livekit.covers(
                "POST",
                &format!("/twirp/livekit.PhoneNumberService/{method}")
            ),
            "{method}"
        );
    }
    assert!(sources
        .iter()
        .any(|s| s.file == "protobufs/livekit_phone_number.proto"));
}
