//! LiveKit's own numbers (`livekit.PhoneNumberService`, issue 20) over real HTTP in strict
//! mode: raw Twirp JSON with a `sip.admin` token, as LiveKit's docs call it (no SDK has a
//! client), and one protobuf round trip with `livekit-protocol`'s types.

use cwa::sandbox::{LIVEKIT_API_KEY, LIVEKIT_API_SECRET};
use livekit_protocol as proto;
use prost::Message;
use serde_json::{json, Value};

use crate::common::sandbox::{livekit_admin_token, TestSandbox};

const SERVICE: &str = "/twirp/livekit.PhoneNumberService";

async fn call(sb: &TestSandbox, method: &str, body: Value) -> (u16, Value) {
    call_with(sb, method, body, &livekit_admin_token()).await
}

async fn call_with(sb: &TestSandbox, method: &str, body: Value, token: &str) -> (u16, Value) {
    let res = sb
        .http
        .post(sb.url(&format!("{SERVICE}/{method}")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A dispatch rule that names no trunk and filters on `number`, as a LiveKit-number line has.
async fn rule_for(sb: &TestSandbox, number: &str) -> String {
    let (status, rule) = sb
        .http
        .post(sb.url("/twirp/livekit.SIP/CreateSIPDispatchRule"))
        .bearer_auth(livekit_admin_token())
        .header("content-type", "application/json")
        .body(
            json!({"dispatch_rule": {
                "name": format!("line {number}"),
                "numbers": [number],
                "rule": {"dispatchRuleIndividual": {"roomPrefix": "call-"}},
                "roomConfig": {"agents": [{"agentName": "churchwiseai-voice"}]},
            }})
            .to_string(),
        )
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 200);
    let rule: Value = rule.json().await.unwrap();
    rule["sip_dispatch_rule_id"].as_str().unwrap().to_string()
}

fn statuses(list: &Value) -> Vec<(String, String)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["e164_format"].as_str().unwrap().to_string(),
                n["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn search_purchase_list_get_update_release_round_trip() {
    let sb = TestSandbox::start("empty").await;
    let (status, found) = call(
        &sb,
        "SearchPhoneNumbers",
        json!({"country_code": "US", "area_code": "415", "limit": 3}),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let offered: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["e164_format"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["+14155550100", "+14155550101", "+14155550102"]);
    assert_eq!(found["items"][0]["area_code"], "415");

    let rule = rule_for(&sb, "+14155550100").await;
    let (status, bought) = call(
        &sb,
        "PurchasePhoneNumber",
        json!({"phone_numbers": ["+14155550100"], "sip_dispatch_rule_id": rule}),
    )
    .await;
    assert_eq!(status, 200, "{bought}");
    let number = &bought["phone_numbers"][0];
    let id = number["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("PN_"), "{id}");
    assert_eq!(number["status"], "PHONE_NUMBER_STATUS_ACTIVE");
    assert_eq!(number["sip_dispatch_rule_ids"], json!([rule]));

    // Bought once: search no longer offers it and a second purchase is refused.
    let (_, found) = call(
        &sb,
        "SearchPhoneNumbers",
        json!({"country_code": "US", "area_code": "415", "limit": 1}),
    )
    .await;
    assert_eq!(found["items"][0]["e164_format"], "+14155550101");
    let (status, again) = call(
        &sb,
        "PurchasePhoneNumber",
        json!({"phone_numbers": ["+14155550100"]}),
    )
    .await;
    assert_eq!(status, 412, "{again}");
    assert_eq!(again["code"], "failed_precondition");

    // The lost-answer look-up: ListPhoneNumbers filtered to the rule finds exactly it.
    let (status, by_rule) = call(
        &sb,
        "ListPhoneNumbers",
        json!({"sipDispatchRuleId": rule, "statuses": ["PHONE_NUMBER_STATUS_ACTIVE"]}),
    )
    .await;
    assert_eq!(status, 200, "{by_rule}");
    assert_eq!(by_rule["items"][0]["id"], id.as_str());
    assert_eq!(by_rule["total_count"], 1);

    let (status, got) = call(
        &sb,
        "GetPhoneNumber",
        json!({"phone_number": "+14155550100"}),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["phone_number"]["id"], id.as_str());

    // Detached from its rule it is OFFLINE (protocol 1.50.4's meaning).
    let (status, updated) = call(
        &sb,
        "UpdatePhoneNumber",
        json!({"id": id, "sip_dispatch_rule_id": ""}),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["phone_number"]["status"],
        "PHONE_NUMBER_STATUS_OFFLINE"
    );
    assert_eq!(updated["phone_number"]["sip_dispatch_rule_ids"], json!([]));
    let (_, list) = call(&sb, "ListPhoneNumbers", json!({})).await;
    assert_eq!(list["offline_count"], 1);

    let (status, released) = call(&sb, "ReleasePhoneNumbers", json!({"ids": [id]})).await;
    assert_eq!(status, 200, "{released}");
    let (_, list) = call(&sb, "ListPhoneNumbers", json!({})).await;
    assert_eq!(
        statuses(&list),
        [(
            "+14155550100".to_string(),
            "PHONE_NUMBER_STATUS_RELEASED".to_string()
        )]
    );
    // Released is final: a second release or an update finds nothing held.
    let (status, twice) = call(&sb, "ReleasePhoneNumbers", json!({"ids": [id]})).await;
    assert_eq!((status, twice["code"].clone()), (404, json!("not_found")));
    let (status, _) = call(&sb, "UpdatePhoneNumber", json!({"id": id})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_purchase_is_all_or_nothing_and_its_rule_must_exist() {
    let sb = TestSandbox::start("empty").await;
    let (status, bad) = call(
        &sb,
        "PurchasePhoneNumber",
        json!({"phone_numbers": ["+15105550100", "+15105559999"]}),
    )
    .await;
    assert_eq!(
        (status, bad["code"].clone()),
        (412, json!("failed_precondition"))
    );
    let (status, ghost) = call(
        &sb,
        "PurchasePhoneNumber",
        json!({"phone_numbers": ["+15105550100"], "sip_dispatch_rule_id": "SDR_nope"}),
    )
    .await;
    assert_eq!((status, ghost["code"].clone()), (404, json!("not_found")));
    let (_, list) = call(&sb, "ListPhoneNumbers", json!({})).await;
    assert_eq!(list["items"], json!([]), "nothing was bought");

    let (status, two) = call(
        &sb,
        "PurchasePhoneNumber",
        json!({"phone_numbers": ["+15105550100", "+15105550101"]}),
    )
    .await;
    assert_eq!(status, 200, "{two}");
    assert_eq!(
        two["phone_numbers"][0]["status"], "PHONE_NUMBER_STATUS_OFFLINE",
        "no rule: offline"
    );
    // Release is all or nothing too.
    let (status, _) = call(
        &sb,
        "ReleasePhoneNumbers",
        json!({"phone_numbers": ["+15105550100", "+15105550177"]}),
    )
    .await;
    assert_eq!(status, 404);
    let (_, list) = call(
        &sb,
        "ListPhoneNumbers",
        json!({"statuses": ["PHONE_NUMBER_STATUS_OFFLINE"]}),
    )
    .await;
    assert_eq!(list["total_count"], 2);
}

#[tokio::test]
async fn deleting_the_rule_takes_the_number_offline() {
    let sb = TestSandbox::start("empty").await;
    let rule = rule_for(&sb, "+12125550100").await;
    let (status, _) = call(
        &sb,
        "PurchasePhoneNumber",
        json!({"phone_numbers": ["+12125550100"], "sip_dispatch_rule_id": rule}),
    )
    .await;
    assert_eq!(status, 200);
    let res = sb
        .twirp_json(
            "DeleteSIPDispatchRule",
            &json!({"sip_dispatch_rule_id": rule}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (_, got) = call(
        &sb,
        "GetPhoneNumber",
        json!({"phone_number": "+12125550100"}),
    )
    .await;
    assert_eq!(got["phone_number"]["status"], "PHONE_NUMBER_STATUS_OFFLINE");
    assert_eq!(got["phone_number"]["sip_dispatch_rule_ids"], json!([]));
}

#[tokio::test]
async fn paging_walks_every_number_once() {
    let sb = TestSandbox::start("empty").await;
    let numbers: Vec<String> = (0..5).map(|i| format!("+14155550{}", 110 + i)).collect();
    let (status, _) = call(
        &sb,
        "PurchasePhoneNumber",
        json!({"phone_numbers": numbers}),
    )
    .await;
    assert_eq!(status, 200);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"limit": 2});
        if let Some(t) = &token {
            body["page_token"] = json!({"token": t});
        }
        let (status, page) = call(&sb, "ListPhoneNumbers", body).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 2);
        seen.extend(statuses(&page).into_iter().map(|(n, _)| n));
        match page["next_page_token"]["token"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    seen.sort();
    assert_eq!(seen, numbers);
}

#[tokio::test]
async fn the_same_auth_as_the_sip_service() {
    let sb = TestSandbox::start("empty").await;
    // No sip.admin grant (only sip.call): Twirp unauthenticated, as the SIP service answers.
    let now = chrono::Utc::now().timestamp();
    let call_only = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"iss": LIVEKIT_API_KEY, "nbf": now, "exp": now + 600, "sip": {"call": true}}),
        &jsonwebtoken::EncodingKey::from_secret(LIVEKIT_API_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, denied) = call_with(&sb, "ListPhoneNumbers", json!({}), &call_only).await;
    assert_eq!(
        (status, denied["code"].clone()),
        (401, json!("unauthenticated"))
    );
    // A token signed with another secret: the middleware's plain-text 401.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"iss": LIVEKIT_API_KEY, "nbf": now, "exp": now + 600, "sip": {"admin": true}}),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-secret"),
    )
    .unwrap();
    let (status, _) = call_with(&sb, "ListPhoneNumbers", json!({}), &forged).await;
    assert_eq!(status, 401);
    // A method the service does not have, and an undeclared key (strict: the contract).
    let (status, route) = call(&sb, "BuyEverything", json!({})).await;
    assert_eq!((status, route["code"].clone()), (404, json!("bad_route")));
    let (status, _) = call(&sb, "ListPhoneNumbers", json!({"area_code": "415"})).await;
    assert_eq!(status, 400, "ListPhoneNumbersRequest has no area_code");
}

#[tokio::test]
async fn a_protobuf_purchase_answers_protobuf() {
    let sb = TestSandbox::start("empty").await;
    let req = proto::PurchasePhoneNumberRequest {
        phone_numbers: vec!["+12125550142".into()],
        sip_dispatch_rule_id: None,
    };
    let res = sb
        .http
        .post(sb.url(&format!("{SERVICE}/PurchasePhoneNumber")))
        .bearer_auth(livekit_admin_token())
        .header("content-type", "application/protobuf")
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let answer = proto::PurchasePhoneNumberResponse::decode(res.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.phone_numbers[0].e164_format, "+12125550142");
    assert_eq!(
        answer.phone_numbers[0].status,
        proto::PhoneNumberStatus::Offline as i32
    );
}
