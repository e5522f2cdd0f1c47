//! The Telnyx v2 emulator over real HTTP, with requests shaped as `reference/telnyx.md` says:
//! envelopes, errors, paging, the number order flow, every configuration object, the quirks.

use std::collections::BTreeSet;

use crate::common::sandbox::{send, telnyx_code, TestSandbox};
use reqwest::Method;
use serde_json::{json, Value};

const FQDN_CONNECTION: &str = "2925081061861885519";
const FQDN_RECORD: &str = "2925083349418510207";
const OVP: &str = "2925086295615079772";
const CREDENTIAL_CONNECTION: &str = "2948197312620398250";
const TEXML_APP: &str = "2927180743153026408";
const MEDHANIALEM_NUMBER_ID: &str = "2926113000000000001";

async fn search(sb: &TestSandbox, query: &[(&str, &str)]) -> Vec<String> {
    let (status, body) = send(
        sb.telnyx(Method::GET, "/available_phone_numbers")
            .query(query),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["phone_number"].as_str().unwrap().to_string())
        .collect()
}

/// Searches area code `npa`, orders the first number found onto `connection`, and returns
/// (order, the number, its /phone_numbers id).
async fn order_one(
    sb: &TestSandbox,
    npa: &str,
    connection: &str,
    reference: &str,
) -> (Value, String, String) {
    let found = search(
        sb,
        &[
            ("filter[national_destination_code]", npa),
            ("filter[limit]", "1"),
        ],
    )
    .await;
    let number = found[0].clone();
    let (status, order) = send(sb.telnyx(Method::POST, "/number_orders").json(&json!({
        "phone_numbers": [{"phone_number": number}],
        "connection_id": connection,
        "customer_reference": reference,
    })))
    .await;
    assert_eq!(status, 200, "{order}");
    let (_, listed) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[phone_number]", &number[1..])]),
    )
    .await;
    let id = listed["data"][0]["id"].as_str().unwrap().to_string();
    (order["data"].clone(), number, id)
}

#[tokio::test]
async fn every_request_needs_the_bearer_key() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(sb.http.get(sb.url("/v2/phone_numbers"))).await;
    assert_eq!(status, 401);
    assert_eq!(telnyx_code(&body), "10009");
    assert_eq!(body["errors"][0]["title"], "Authentication failed");
    let (status, body) = send(
        sb.http
            .get(sb.url("/v2/phone_numbers"))
            .bearer_auth("KEYwrong"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(telnyx_code(&body), "10009");
    let (status, _) = send(
        sb.http
            .patch(sb.url(&format!("/v2/phone_numbers/{MEDHANIALEM_NUMBER_ID}")))
            .json(&json!({"tags": ["x"]})),
    )
    .await;
    assert_eq!(status, 401);
    let (_, number) = send(sb.telnyx(
        Method::GET,
        &format!("/phone_numbers/{MEDHANIALEM_NUMBER_ID}"),
    ))
    .await;
    assert_eq!(
        number["data"]["tags"],
        json!([]),
        "an unauthenticated PATCH changed nothing"
    );
}

#[tokio::test]
async fn the_runbook_world_is_seeded_exactly() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(sb.telnyx(Method::GET, "/phone_numbers")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["meta"],
        json!({"page_number": 1, "page_size": 20, "total_pages": 1, "total_results": 4})
    );
    let numbers: BTreeSet<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["phone_number"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        BTreeSet::from([
            "+14144007103",
            "+17473897673",
            "+14697288326",
            "+12268830000"
        ])
    );

    let (_, number) = send(sb.telnyx(
        Method::GET,
        &format!("/phone_numbers/{MEDHANIALEM_NUMBER_ID}"),
    ))
    .await;
    let number = &number["data"];
    assert_eq!(number["record_type"], "phone_number");
    assert_eq!(number["status"], "active");
    assert_eq!(number["connection_id"], FQDN_CONNECTION);
    assert_eq!(number["connection_name"], "LiveKit ChurchWiseAI");

    let (_, connection) =
        send(sb.telnyx(Method::GET, &format!("/fqdn_connections/{FQDN_CONNECTION}"))).await;
    let c = &connection["data"];
    assert_eq!(c["record_type"], "fqdn_connection");
    assert_eq!(c["transport_protocol"], "TCP");
    assert_eq!(c["user_name"], "churchwiseai");
    assert_eq!(c["inbound"]["ani_number_format"], "+E.164");
    assert_eq!(c["inbound"]["dnis_number_format"], "+e164");
    assert_eq!(c["inbound"]["default_primary_fqdn_id"], FQDN_RECORD);
    assert_eq!(c["outbound"]["outbound_voice_profile_id"], OVP);

    let (_, fqdn) = send(sb.telnyx(Method::GET, &format!("/fqdns/{FQDN_RECORD}"))).await;
    assert_eq!(fqdn["data"]["fqdn"], "5u9xu5ysoly.sip.livekit.cloud");
    assert_eq!(fqdn["data"]["port"], 5060);
    assert_eq!(fqdn["data"]["dns_record_type"], "a");

    let (_, credential) = send(sb.telnyx(
        Method::GET,
        &format!("/credential_connections/{CREDENTIAL_CONNECTION}"),
    ))
    .await;
    assert_eq!(credential["data"]["user_name"], "cwaoutbound");
    assert_eq!(
        credential["data"]["outbound"]["outbound_voice_profile_id"],
        Value::Null,
        "the runbook's silent-drop incident is seeded as it is"
    );

    let (_, ovp) = send(sb.telnyx(Method::GET, &format!("/outbound_voice_profiles/{OVP}"))).await;
    assert_eq!(ovp["data"]["whitelisted_destinations"], json!(["CA", "US"]));
    let (_, app) = send(sb.telnyx(Method::GET, &format!("/texml_applications/{TEXML_APP}"))).await;
    assert_eq!(
        app["data"]["friendly_name"],
        "ChurchWiseAI Fallback Greeting"
    );
    let (_, v2) = send(
        sb.telnyx(Method::GET, "/fqdn_connections")
            .query(&[("filter[connection_name][contains]", "inbound v2")]),
    )
    .await;
    assert_eq!(v2["data"][0]["id"], "2925216093662349036");
}

#[tokio::test]
async fn phone_numbers_filter_like_the_reference() {
    let sb = TestSandbox::start("runbook").await;
    let count = |body: &Value| body["data"].as_array().unwrap().len();
    let (_, body) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[phone_number]", "14144007103")]),
    )
    .await;
    assert_eq!(count(&body), 1);
    let (_, body) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[phone_number]", "414400")]),
    )
    .await;
    assert_eq!(count(&body), 1, "a partial digit match");
    let (_, body) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[phone_number]", "+14144007103")]),
    )
    .await;
    assert_eq!(count(&body), 0, "non-digits match nothing");
    let (_, body) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[connection_id]", FQDN_CONNECTION)]),
    )
    .await;
    assert_eq!(count(&body), 2);
    let (_, body) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[voice.connection_name][contains]", "Fallback")]),
    )
    .await;
    assert_eq!(body["data"][0]["phone_number"], "+14697288326");
    let (_, body) = send(sb.telnyx(Method::GET, "/phone_numbers").query(&[
        ("filter[status]", "active"),
        ("filter[country_iso_alpha2]", "CA"),
    ]))
    .await;
    assert_eq!(body["data"][0]["phone_number"], "+12268830000");
    let (_, body) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("sort", "phone_number")]),
    )
    .await;
    assert_eq!(body["data"][0]["phone_number"], "+12268830000");
    let (status, body) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("page[size]", "251")]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["source"]["parameter"], "page[size]");
    let (status, body) = send(sb.telnyx(Method::GET, "/phone_numbers/9999")).await;
    assert_eq!(status, 404);
    assert_eq!(telnyx_code(&body), "10005");
}

#[tokio::test]
async fn synthetic_10000_pages_with_correct_meta() {
    let sb = TestSandbox::start("synthetic:10000").await;
    let mut seen = BTreeSet::new();
    let mut page = 1;
    loop {
        let (status, body) = send(sb.telnyx(Method::GET, "/phone_numbers").query(&[
            ("page[number]", page.to_string()),
            ("page[size]", "250".to_string()),
        ]))
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["meta"]["total_results"], 10_000);
        assert_eq!(body["meta"]["total_pages"], 40);
        assert_eq!(body["meta"]["page_number"], page);
        let data = body["data"].as_array().unwrap();
        if data.is_empty() {
            break;
        }
        assert_eq!(data.len(), 250);
        for n in data {
            assert_eq!(n["status"], "active");
            assert_eq!(n["connection_id"], FQDN_CONNECTION);
            seen.insert(n["id"].as_str().unwrap().to_string());
        }
        page += 1;
    }
    assert_eq!(page, 41, "the pager stops after page 40");
    assert_eq!(seen.len(), 10_000, "pages neither overlap nor skip");
    let (_, fqdn) = send(sb.telnyx(Method::GET, &format!("/fqdns/{FQDN_RECORD}"))).await;
    assert_eq!(fqdn["data"]["connection_id"], FQDN_CONNECTION);
    let (_, credentials) = send(sb.telnyx(Method::GET, "/credential_connections")).await;
    assert_eq!(
        credentials["meta"]["total_results"], 0,
        "synthetic worlds carry no broken or extra objects"
    );
}

#[tokio::test]
async fn available_numbers_answer_in_the_documented_shape() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(sb.telnyx(Method::GET, "/available_phone_numbers").query(&[
        ("filter[country_code]", "US"),
        ("filter[national_destination_code]", "312"),
        ("filter[phone_number][ends_with]", "0000"),
        ("filter[features]", "voice,sms"),
        ("filter[limit]", "5"),
    ]))
    .await;
    assert_eq!(status, 200);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    let n = &data[0];
    let number = n["phone_number"].as_str().unwrap();
    assert!(
        number.starts_with("+1312") && number.ends_with("0000"),
        "{number}"
    );
    assert_ne!(&number[5..8], "555");
    assert_eq!(n["record_type"], "available_phone_number");
    assert_eq!(n["best_effort"], false);
    assert!(n["features"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "voice"})));
    assert_eq!(
        n["cost_information"],
        json!({"currency": "USD", "monthly_cost": "1.00", "upfront_cost": "1.00"})
    );
    assert_eq!(
        n["region_information"][0],
        json!({"region_type": "country_code", "region_name": "US"})
    );
    assert_eq!(
        body["meta"],
        json!({"total_results": 1, "best_effort_results": 0})
    );
    assert_eq!(body["metadata"], body["meta"]);

    let limited = search(
        &sb,
        &[
            ("filter[national_destination_code]", "414"),
            ("filter[limit]", "3"),
        ],
    )
    .await;
    assert_eq!(limited.len(), 3);
    assert!(limited.iter().all(|n| n.starts_with("+1414")));
    let exchange = &limited[0][5..8];
    let starts = search(
        &sb,
        &[
            ("filter[national_destination_code]", "414"),
            ("filter[phone_number][starts_with]", exchange),
        ],
    )
    .await;
    assert!(!starts.is_empty());
    assert!(
        starts.iter().all(|n| &n[5..8] == exchange),
        "starts_with applies after the NDC: {starts:?}"
    );
    let none = search(
        &sb,
        &[
            ("filter[national_destination_code]", "414"),
            ("filter[phone_number][starts_with]", "414"),
        ],
    )
    .await;
    assert!(
        none.iter().all(|n| &n[5..8] == "414"),
        "the NDC itself is not part of the pattern: {none:?}"
    );
    assert_eq!(
        search(&sb, &[("filter[country_code]", "GB")]).await,
        Vec::<String>::new()
    );
    let again = search(
        &sb,
        &[
            ("filter[national_destination_code]", "414"),
            ("filter[limit]", "3"),
        ],
    )
    .await;
    assert_eq!(limited, again, "the inventory is deterministic");
}

#[tokio::test]
async fn a_number_order_goes_from_pending_to_success_and_the_number_becomes_usable() {
    let sb = TestSandbox::start("runbook").await;
    sb.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .order_completion_ms = 3_600_000;
    let (order, number, number_id) = order_one(&sb, "414", FQDN_CONNECTION, "cwa-ref-1").await;
    assert_eq!(order["record_type"], "number_order");
    assert_eq!(order["status"], "pending");
    assert_eq!(order["customer_reference"], "cwa-ref-1");
    assert_eq!(
        order["phone_numbers"][0]["record_type"],
        "number_order_phone_number"
    );
    assert_eq!(order["phone_numbers"][0]["phone_number"], number.as_str());
    assert_ne!(
        order["phone_numbers"][0]["id"],
        number_id.as_str(),
        "the order line id is not the number id"
    );

    let (_, by_reference) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[customer_reference]", "cwa-ref-1")]),
    )
    .await;
    let pending = &by_reference["data"][0];
    assert_eq!(pending["status"], "purchase-pending");
    assert_eq!(pending["connection_id"], FQDN_CONNECTION);
    assert_eq!(pending["source_type"], "number_order");

    let (status, body) = send(
        sb.telnyx(Method::PATCH, &format!("/phone_numbers/{number_id}"))
            .json(&json!({"tags": ["church"]})),
    )
    .await;
    assert_eq!(
        status, 422,
        "a purchase-pending number cannot be updated: {body}"
    );
    let (_, invite) = send(
        sb.http
            .post(sb.url("/sandbox/telnyx/invite"))
            .json(&json!({"from": "+13125550000", "to": number})),
    )
    .await;
    assert_eq!(invite["delivered"], false);
    assert!(
        invite["reason"]
            .as_str()
            .unwrap()
            .contains("number not assigned"),
        "{invite}"
    );

    let order_id = order["id"].as_str().unwrap();
    let (_, polled) = send(sb.telnyx(Method::GET, &format!("/number_orders/{order_id}"))).await;
    assert_eq!(polled["data"]["status"], "success");
    assert_eq!(polled["data"]["phone_numbers"][0]["status"], "success");
    let (_, listed) = send(
        sb.telnyx(Method::GET, "/number_orders")
            .query(&[("filter[customer_reference]", "cwa-ref-1")]),
    )
    .await;
    assert_eq!(listed["meta"]["total_results"], 1);
    assert_eq!(listed["data"][0]["id"], order_id);

    let (status, patched) = send(
        sb.telnyx(Method::PATCH, &format!("/phone_numbers/{number_id}"))
            .json(&json!({"tags": ["church"], "customer_reference": "church_x"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(patched["data"]["status"], "active");
    assert_eq!(patched["data"]["tags"], json!(["church"]));
    assert_eq!(patched["data"]["customer_reference"], "church_x");

    let again = search(
        &sb,
        &[
            ("filter[national_destination_code]", "414"),
            ("filter[limit]", "50"),
        ],
    )
    .await;
    assert!(
        !again.contains(&number),
        "an ordered number leaves the inventory"
    );
}

#[tokio::test]
async fn only_searched_and_still_available_numbers_can_be_ordered() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(sb.telnyx(Method::POST, "/number_orders").json(&json!({
        "phone_numbers": [{"phone_number": "+14146001234"}],
    })))
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["errors"][0]["source"]["pointer"],
        "/phone_numbers/0/phone_number"
    );

    let (_, number, _) = order_one(&sb, "720", FQDN_CONNECTION, "ref-a").await;
    let (status, _) = send(sb.telnyx(Method::POST, "/number_orders").json(&json!({
        "phone_numbers": [{"phone_number": number}],
    })))
    .await;
    assert_eq!(status, 422, "a number cannot be bought twice");

    let (status, body) = send(sb.telnyx(Method::POST, "/number_orders").json(&json!({
        "phone_numbers": [{"phone_number": "14145550123"}],
    })))
    .await;
    assert_eq!(status, 422);
    assert_eq!(telnyx_code(&body), "10016");

    let (status, body) = send(sb.telnyx(Method::POST, "/number_orders").json(&json!({}))).await;
    assert_eq!(status, 422);
    assert_eq!(telnyx_code(&body), "10004");

    let found = search(
        &sb,
        &[
            ("filter[national_destination_code]", "720"),
            ("filter[limit]", "1"),
        ],
    )
    .await;
    let (status, _) = send(sb.telnyx(Method::POST, "/number_orders").json(&json!({
        "phone_numbers": [{"phone_number": found[0]}],
        "connection_id": "123",
    })))
    .await;
    assert_eq!(status, 422, "the order's connection must exist");
}

#[tokio::test]
async fn releasing_a_number_deletes_it() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(sb.telnyx(
        Method::DELETE,
        &format!("/phone_numbers/{MEDHANIALEM_NUMBER_ID}"),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["status"], "deleted");
    assert_eq!(body["data"]["phone_number"], "+14144007103");
    let (status, _) = send(sb.telnyx(
        Method::GET,
        &format!("/phone_numbers/{MEDHANIALEM_NUMBER_ID}"),
    ))
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn fqdn_connections_and_fqdns_round_trip() {
    // Lenient: this test sends keys the spec does not declare, to see them ignored.
    let sb = TestSandbox::start_with("runbook", |o| o.strict = false).await;
    let (status, created) = send(sb.telnyx(Method::POST, "/fqdn_connections").json(&json!({
        "connection_name": "LiveKit Test",
        "transport_protocol": "TCP",
        "user_name": "lktest",
        "password": "sandbox-pass-1",
        "inbound": {"ani_number_format": "+E.164", "not_a_field": 1},
        "made_up_top_level": true,
    })))
    .await;
    assert_eq!(status, 201, "{created}");
    let c = &created["data"];
    let id = c["id"].as_str().unwrap();
    assert!(
        id.len() >= 18 && id.bytes().all(|b| b.is_ascii_digit()),
        "numeric-string id {id}"
    );
    assert_eq!(c["record_type"], "fqdn_connection");
    assert_eq!(c["active"], true);
    assert!(
        c["user_name"].is_null(),
        "an FQDN connection's credentials go through fqdn_authentication; top-level ones are dropped"
    );
    assert_eq!(c["inbound"]["ani_number_format"], "+E.164");
    assert_eq!(
        c["inbound"]["dnis_number_format"], "e164",
        "the default has no +"
    );
    assert!(c.get("made_up_top_level").is_none());
    assert!(c["inbound"].get("not_a_field").is_none());
    assert!(c["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, fqdn) = send(sb.telnyx(Method::POST, "/fqdns").json(&json!({
        "connection_id": id, "fqdn": "test.sip.livekit.cloud", "dns_record_type": "a",
    })))
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        fqdn["data"]["port"], 5060,
        "port defaults to 5060 for A records"
    );
    let fqdn_id = fqdn["data"]["id"].as_str().unwrap();
    let (status, _) = send(sb.telnyx(Method::POST, "/fqdns").json(&json!({
        "connection_id": "42", "fqdn": "x.example.com", "dns_record_type": "a",
    })))
    .await;
    assert_eq!(status, 422, "an FQDN needs an existing FQDN connection");
    let (status, body) = send(
        sb.telnyx(Method::POST, "/fqdns")
            .json(&json!({"connection_id": id, "fqdn": "x.example.com"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["source"]["pointer"], "/dns_record_type");

    let (status, patched) = send(
        sb.telnyx(Method::PATCH, &format!("/fqdn_connections/{id}"))
            .json(&json!({"inbound": {"dnis_number_format": "+e164", "default_primary_fqdn_id": fqdn_id}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    let inbound = &patched["data"]["inbound"];
    assert_eq!(inbound["dnis_number_format"], "+e164");
    assert_eq!(
        inbound["ani_number_format"], "+E.164",
        "nested objects are deep-merged"
    );
    assert_eq!(inbound["default_primary_fqdn_id"], fqdn_id);
    let (status, _) = send(
        sb.telnyx(Method::PATCH, &format!("/fqdn_connections/{id}"))
            .json(&json!({"inbound": {"default_primary_fqdn_id": FQDN_RECORD}})),
    )
    .await;
    assert_eq!(
        status, 422,
        "the primary FQDN must belong to this connection"
    );
    let (status, _) = send(
        sb.telnyx(Method::PATCH, &format!("/fqdn_connections/{id}"))
            .json(&json!({"transport_protocol": "SCTP"})),
    )
    .await;
    assert_eq!(status, 422);

    let (_, listed) = send(
        sb.telnyx(Method::GET, "/fqdns")
            .query(&[("filter[connection_id]", id)]),
    )
    .await;
    assert_eq!(listed["meta"]["total_results"], 1);
    let (_, listed) = send(
        sb.telnyx(Method::GET, "/fqdn_connections")
            .query(&[("filter[fqdn]", "test.sip.livekit.cloud")]),
    )
    .await;
    assert_eq!(listed["data"][0]["id"], id);

    let (status, body) = send(sb.telnyx(
        Method::DELETE,
        &format!("/fqdn_connections/{FQDN_CONNECTION}"),
    ))
    .await;
    assert_eq!(status, 422, "a connection with numbers is in use");
    assert_eq!(telnyx_code(&body), "10021");
    let (status, deleted) =
        send(sb.telnyx(Method::DELETE, &format!("/fqdn_connections/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["data"]["id"], id);
    let (status, _) = send(sb.telnyx(Method::GET, &format!("/fqdns/{fqdn_id}"))).await;
    assert_eq!(status, 404, "a deleted connection takes its FQDNs along");
}

#[tokio::test]
async fn credential_connections_validate_user_names_and_passwords() {
    let sb = TestSandbox::start("runbook").await;
    let create = |user: &str, password: &str| {
        sb.telnyx(Method::POST, "/credential_connections")
            .json(&json!({
                "connection_name": "Outbound 2", "user_name": user, "password": password,
            }))
    };
    let (status, body) = send(create("abc", "long-enough-1")).await;
    assert_eq!(
        (status, body["errors"][0]["source"]["pointer"].as_str()),
        (422, Some("/user_name"))
    );
    let (status, _) = send(create("has_underscore", "long-enough-1")).await;
    assert_eq!(status, 422);
    let (status, _) = send(create(&"a".repeat(33), "long-enough-1")).await;
    assert_eq!(status, 422);
    let (status, body) = send(create("CWAOUTBOUND", "long-enough-1")).await;
    assert_eq!(status, 422, "user names are unique, case-insensitively");
    assert_eq!(telnyx_code(&body), "10012");
    let (status, body) = send(create("outbound2", "short")).await;
    assert_eq!(
        (status, body["errors"][0]["source"]["pointer"].as_str()),
        (422, Some("/password"))
    );
    let (status, body) = send(
        sb.telnyx(Method::POST, "/credential_connections")
            .json(&json!({"user_name": "outbound2"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(telnyx_code(&body), "10004");
    let (status, created) = send(create("outbound2", "long-enough-1")).await;
    assert_eq!(status, 201);
    assert_eq!(created["data"]["record_type"], "credential_connection");
}

#[tokio::test]
async fn a_flat_outbound_voice_profile_id_is_silently_ignored() {
    // Lenient: strict mode refuses the undeclared key; real Telnyx ignores it.
    let sb = TestSandbox::start_with("runbook", |o| o.strict = false).await;
    let path = format!("/credential_connections/{CREDENTIAL_CONNECTION}");
    let (status, body) = send(
        sb.telnyx(Method::PATCH, &path)
            .json(&json!({"outbound_voice_profile_id": OVP})),
    )
    .await;
    assert_eq!(status, 200, "no error: {body}");
    assert_eq!(
        body["data"]["outbound"]["outbound_voice_profile_id"],
        Value::Null
    );
    let (_, fetched) = send(sb.telnyx(Method::GET, &path)).await;
    assert_eq!(
        fetched["data"]["outbound"]["outbound_voice_profile_id"],
        Value::Null,
        "and nothing changed"
    );

    let (status, body) = send(
        sb.telnyx(Method::PATCH, &path)
            .json(&json!({"outbound": {"outbound_voice_profile_id": OVP}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["outbound"]["outbound_voice_profile_id"], OVP);
    assert_eq!(
        body["data"]["outbound"]["localization"], "US",
        "the rest of outbound is kept"
    );
    let (status, _) = send(
        sb.telnyx(Method::PATCH, &path)
            .json(&json!({"outbound": {"outbound_voice_profile_id": "777"}})),
    )
    .await;
    assert_eq!(status, 422, "the profile must exist");
}

#[tokio::test]
async fn outbound_voice_profile_and_texml_patches_require_their_names() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(
        sb.telnyx(Method::PATCH, &format!("/outbound_voice_profiles/{OVP}"))
            .json(&json!({"whitelisted_destinations": ["US"]})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(telnyx_code(&body), "10004");
    assert_eq!(body["errors"][0]["source"]["pointer"], "/name");
    let (status, body) = send(
        sb.telnyx(Method::PATCH, &format!("/outbound_voice_profiles/{OVP}"))
            .json(&json!({"name": "ChurchWiseAI", "whitelisted_destinations": ["US", "CA", "MX"]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["whitelisted_destinations"],
        json!(["US", "CA", "MX"])
    );
    let (status, _) =
        send(sb.telnyx(Method::DELETE, &format!("/outbound_voice_profiles/{OVP}"))).await;
    assert_eq!(status, 422, "a profile used by a connection is in use");
    let (status, created) = send(
        sb.telnyx(Method::POST, "/outbound_voice_profiles")
            .json(&json!({"name": "Spare"})),
    )
    .await;
    assert_eq!(status, 200, "spec3.yml: CreateVoiceProfile answers 200");
    assert_eq!(created["data"]["record_type"], "outbound_voice_profile");

    let app = format!("/texml_applications/{TEXML_APP}");
    let (status, body) = send(
        sb.telnyx(Method::PATCH, &app)
            .json(&json!({"friendly_name": "Renamed"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["source"]["pointer"], "/voice_url");
    let (status, body) = send(sb.telnyx(Method::PATCH, &app).json(&json!({
        "friendly_name": "Renamed", "voice_url": "https://churchwiseai.com/api/voice/fallback2",
    })))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["voice_url"],
        "https://churchwiseai.com/api/voice/fallback2"
    );
    let (status, _) = send(
        sb.telnyx(Method::POST, "/texml_applications")
            .json(&json!({"friendly_name": "x"})),
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn numbers_reach_sip_without_plus_when_the_connection_says_so() {
    let sb = TestSandbox::start("runbook").await;
    let (_, runbook) = send(
        sb.http
            .post(sb.url("/sandbox/telnyx/invite"))
            .json(&json!({"from": "+13125550000", "to": "+14144007103"})),
    )
    .await;
    assert_eq!(runbook["delivered"], true);
    assert_eq!(runbook["invite"]["to_user"], "+14144007103");
    assert_eq!(
        runbook["invite"]["target"],
        "5u9xu5ysoly.sip.livekit.cloud:5060"
    );

    let (_, created) = send(
        sb.telnyx(Method::POST, "/fqdn_connections")
            .json(&json!({"connection_name": "Defaults", "transport_protocol": "TCP"})),
    )
    .await;
    let id = created["data"]["id"].as_str().unwrap().to_string();
    let (order, _, number_id) = order_one(&sb, "312", &id, "fmt").await;
    let order_id = order["id"].as_str().unwrap();
    send(sb.telnyx(Method::GET, &format!("/number_orders/{order_id}"))).await;
    let (_, number) = send(sb.telnyx(Method::GET, &format!("/phone_numbers/{number_id}"))).await;
    let number = number["data"]["phone_number"].as_str().unwrap().to_string();
    let (_, invite) = send(
        sb.http
            .post(sb.url("/sandbox/telnyx/invite"))
            .json(&json!({"from": "+13125550000", "to": number})),
    )
    .await;
    assert_eq!(invite["delivered"], true, "{invite}");
    assert_eq!(invite["invite"]["to_user"], number.trim_start_matches('+'));
    assert_eq!(invite["invite"]["from_user"], "13125550000");
    assert_eq!(
        invite["invite"]["target"],
        Value::Null,
        "no FQDN record: nowhere to send"
    );
}

#[tokio::test]
async fn remaining_filters_and_deletes() {
    let sb = TestSandbox::start("runbook").await;
    sb.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .order_completion_ms = 0;
    let (order, _, number_id) = order_one(&sb, "213", FQDN_CONNECTION, "ref-old").await;
    let order_id = order["id"].as_str().unwrap();
    let (status, patched) = send(
        sb.telnyx(Method::PATCH, &format!("/number_orders/{order_id}"))
            .json(&json!({"customer_reference": "ref-new"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(patched["data"]["customer_reference"], "ref-new");
    let (_, by_new) = send(
        sb.telnyx(Method::GET, "/number_orders")
            .query(&[("filter[customer_reference]", "ref-new")]),
    )
    .await;
    assert_eq!(by_new["meta"]["total_results"], 1);
    assert_eq!(
        by_new["data"][0]["status"], "success",
        "due orders complete"
    );

    let (status, _) = send(
        sb.telnyx(Method::PATCH, &format!("/phone_numbers/{number_id}"))
            .json(&json!({"tags": ["alpha", "beta"]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, tagged) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[tag]", "beta")]),
    )
    .await;
    assert_eq!(tagged["meta"]["total_results"], 1);
    assert_eq!(tagged["data"][0]["id"], number_id.as_str());
    let (status, _) = send(
        sb.telnyx(Method::PATCH, &format!("/phone_numbers/{number_id}"))
            .json(&json!({"tags": "beta"})),
    )
    .await;
    assert_eq!(status, 422, "tags must be an array");
    let (status, unbound) = send(
        sb.telnyx(Method::PATCH, &format!("/phone_numbers/{number_id}"))
            .json(&json!({"connection_id": TEXML_APP})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        unbound["data"]["connection_name"],
        "ChurchWiseAI Fallback Greeting"
    );

    let (_, profiles) = send(
        sb.telnyx(Method::GET, "/outbound_voice_profiles")
            .query(&[("filter[name][contains]", "churchwise")]),
    )
    .await;
    assert_eq!(profiles["data"][0]["id"], OVP);
    let (_, apps) = send(
        sb.telnyx(Method::GET, "/texml_applications")
            .query(&[("filter[friendly_name]", "Fallback")]),
    )
    .await;
    assert_eq!(apps["data"][0]["id"], TEXML_APP);
    let (_, by_profile) = send(
        sb.telnyx(Method::GET, "/fqdn_connections")
            .query(&[("filter[outbound_voice_profile_id]", OVP)]),
    )
    .await;
    assert_eq!(by_profile["meta"]["total_results"], 1);
    let (_, sorted) = send(
        sb.telnyx(Method::GET, "/fqdn_connections")
            .query(&[("sort", "-connection_name")]),
    )
    .await;
    assert_eq!(sorted["data"][0]["connection_name"], "LiveKit Inbound v2");
    let (_, paged) = send(
        sb.telnyx(Method::GET, "/fqdn_connections")
            .query(&[("page[number]", "2"), ("page[size]", "1")]),
    )
    .await;
    assert_eq!(
        paged["meta"],
        json!({"page_number": 2, "page_size": 1, "total_pages": 2, "total_results": 2})
    );

    let (status, _) = send(sb.telnyx(Method::DELETE, &format!("/fqdns/{FQDN_RECORD}"))).await;
    assert_eq!(status, 200);
    let (_, connection) =
        send(sb.telnyx(Method::GET, &format!("/fqdn_connections/{FQDN_CONNECTION}"))).await;
    assert_eq!(
        connection["data"]["inbound"]["default_primary_fqdn_id"],
        Value::Null,
        "a deleted FQDN is no longer the primary"
    );
    let (status, body) = send(sb.telnyx(
        Method::DELETE,
        &format!("/credential_connections/{CREDENTIAL_CONNECTION}"),
    ))
    .await;
    assert_eq!(status, 422, "the outbound DID is still on it: {body}");
    for path in [
        "/fqdn_connections/1",
        "/fqdns/1",
        "/credential_connections/1",
        "/outbound_voice_profiles/1",
        "/texml_applications/1",
        "/number_orders/00000000-0000-0000-0000-000000000000",
    ] {
        let (status, body) = send(sb.telnyx(Method::GET, path)).await;
        assert_eq!((status, telnyx_code(&body)), (404, "10005"), "{path}");
    }
    let (status, body) = send(
        sb.telnyx(Method::POST, "/fqdn_connections")
            .body("{not json"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}
