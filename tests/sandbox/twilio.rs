//! The Twilio emulator over real HTTP: Basic auth, v2010 IncomingPhoneNumbers with relative
//! paging, Elastic SIP Trunking v1 with absolute paging, form-encoded PascalCase writes.

use crate::common::sandbox::{send, TestSandbox};
use cwa::sandbox::twilio::runbook_sid;
use cwa::sandbox::TWILIO_ACCOUNT_SID;
use reqwest::Method;
use serde_json::Value;

fn numbers_path() -> String {
    TestSandbox::twilio_account_path("/IncomingPhoneNumbers.json")
}

fn number_path(sid: &str) -> String {
    TestSandbox::twilio_account_path(&format!("/IncomingPhoneNumbers/{sid}.json"))
}

fn main_trunk() -> String {
    runbook_sid("TK", "churchwiseai.pstn.twilio.com")
}

fn test_trunk() -> String {
    runbook_sid("TK", "churchwiseai-test.pstn.twilio.com")
}

fn assert_twilio_error(body: &Value, status: u16, code: u64) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn every_path_needs_the_account_credentials() {
    let sb = TestSandbox::start("runbook").await;
    let (status, body) = send(sb.http.get(sb.url(&numbers_path()))).await;
    assert_eq!(status, 401);
    assert_twilio_error(&body, 401, 20003);
    assert_eq!(body["message"], "Authenticate");
    let (status, _) = send(
        sb.http
            .get(sb.url("/v1/Trunks"))
            .basic_auth(TWILIO_ACCOUNT_SID, Some("wrong-token")),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = send(sb.twilio(
        Method::GET,
        "/2010-04-01/Accounts/AC00000000000000000000000000000000/IncomingPhoneNumbers.json",
    ))
    .await;
    assert_eq!(
        status, 401,
        "the path's account must be the authenticated one"
    );
    assert_twilio_error(&body, 401, 20003);
    let (status, _) = send(
        sb.http
            .post(sb.url(&format!("/v1/Trunks/{}", main_trunk())))
            .form(&[("FriendlyName", "hijack")]),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn incoming_numbers_page_with_relative_next_page_uri() {
    let sb = TestSandbox::start("runbook").await;
    let (status, first) = send(
        sb.twilio(Method::GET, &numbers_path())
            .query(&[("PageSize", "3")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first["incoming_phone_numbers"].as_array().unwrap().len(), 3);
    assert_eq!(first["page"], 0);
    assert_eq!(first["page_size"], 3);
    assert_eq!(first["start"], 0);
    assert_eq!(first["end"], 2);
    assert_eq!(first["previous_page_uri"], Value::Null);
    let next = first["next_page_uri"].as_str().unwrap();
    assert!(next.starts_with(&numbers_path()), "relative: {next}");
    assert!(next.contains("Page=1") && next.contains("PageToken=PA"));

    let (_, second) = send(sb.twilio(Method::GET, next)).await;
    let rest = second["incoming_phone_numbers"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(second["next_page_uri"], Value::Null);
    assert!(second["previous_page_uri"]
        .as_str()
        .unwrap()
        .contains("Page=0"));

    let n = &first["incoming_phone_numbers"][0];
    assert_eq!(n["phone_number"], "+18886030316");
    assert_eq!(n["sid"], runbook_sid("PN", "+18886030316"));
    assert_eq!(n["account_sid"], TWILIO_ACCOUNT_SID);
    assert_eq!(n["friendly_name"], "Sales (toll-free)");
    assert_eq!(n["trunk_sid"], main_trunk());
    assert_eq!(n["capabilities"]["voice"], true);
    assert_eq!(n["api_version"], "2010-04-01");
    assert!(
        n["date_created"].as_str().unwrap().ends_with("+0000"),
        "RFC 2822 dates"
    );
    assert!(n["uri"].as_str().unwrap().ends_with(".json"));

    let (_, filtered) = send(
        sb.twilio(Method::GET, &numbers_path())
            .query(&[("PhoneNumber", "+1365825*")]),
    )
    .await;
    assert_eq!(
        filtered["incoming_phone_numbers"].as_array().unwrap().len(),
        2
    );
    let (_, named) = send(
        sb.twilio(Method::GET, &numbers_path())
            .query(&[("FriendlyName", "Demo (US)")]),
    )
    .await;
    assert_eq!(
        named["incoming_phone_numbers"][0]["phone_number"],
        "+14696152221"
    );

    let (status, body) = send(sb.twilio(
        Method::GET,
        &TestSandbox::twilio_account_path("/IncomingPhoneNumbers"),
    ))
    .await;
    assert_eq!(status, 404, "v2010 paths need .json");
    assert_twilio_error(&body, 404, 20404);
    let (status, _) = send(
        sb.twilio(Method::GET, &numbers_path())
            .query(&[("PageSize", "1001")]),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn incoming_numbers_fetch_update_and_release() {
    let sb = TestSandbox::start("runbook").await;
    let spare = runbook_sid("PN", "+13658253552");
    let (status, fetched) = send(sb.twilio(Method::GET, &number_path(&spare))).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["trunk_sid"], test_trunk());

    let (status, updated) = send(sb.twilio(Method::POST, &number_path(&spare)).form(&[
        ("FriendlyName", "Spare (moved)"),
        ("TrunkSid", &main_trunk()),
    ]))
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["friendly_name"], "Spare (moved)");
    assert_eq!(updated["trunk_sid"], main_trunk());

    let (status, body) = send(
        sb.twilio(Method::POST, &number_path(&spare))
            .form(&[("TrunkSid", "TK00000000000000000000000000000000")]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], 400);

    let (status, body) = send(
        sb.twilio(Method::POST, &number_path(&spare))
            .form(&[("VoiceMethod", "PUT")]),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (status, cleared) = send(
        sb.twilio(Method::POST, &number_path(&spare))
            .form(&[("TrunkSid", "")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(cleared["trunk_sid"], Value::Null);

    let response = sb
        .twilio(Method::DELETE, &number_path(&spare))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
    let (status, body) = send(sb.twilio(Method::GET, &number_path(&spare))).await;
    assert_eq!(status, 404);
    assert_twilio_error(&body, 404, 20404);
}

#[tokio::test]
async fn trunks_list_with_absolute_meta_urls_and_crud() {
    let sb = TestSandbox::start("runbook").await;
    let (status, first) = send(
        sb.twilio(Method::GET, "/v1/Trunks")
            .query(&[("PageSize", "1")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first["meta"]["key"], "trunks");
    assert_eq!(first["meta"]["page"], 0);
    assert_eq!(first["meta"]["previous_page_url"], Value::Null);
    let base = sb.sandbox.base_url();
    let next = first["meta"]["next_page_url"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{base}/v1/Trunks?")),
        "absolute: {next}"
    );
    assert_eq!(
        first["trunks"][0]["domain_name"],
        "churchwiseai.pstn.twilio.com"
    );
    assert_eq!(first["trunks"][0]["friendly_name"], "LiveKit Main");
    assert!(first["trunks"][0]["date_created"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(
        first["trunks"][0]["links"]["phone_numbers"],
        format!("{base}/v1/Trunks/{}/PhoneNumbers", main_trunk())
    );
    let (_, second) = send(sb.twilio(Method::GET, next.strip_prefix(&base).unwrap())).await;
    assert_eq!(
        second["trunks"][0]["domain_name"],
        "churchwiseai-test.pstn.twilio.com"
    );
    assert_eq!(second["meta"]["next_page_url"], Value::Null);

    let (status, created) = send(sb.twilio(Method::POST, "/v1/Trunks").form(&[
        ("FriendlyName", "Staging"),
        ("DomainName", "cwa-staging.pstn.twilio.com"),
        ("Secure", "true"),
    ]))
    .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("TK") && sid.len() == 34);
    assert_eq!(created["secure"], true);
    let (status, _) = send(
        sb.twilio(Method::POST, "/v1/Trunks")
            .form(&[("DomainName", "cwa-staging.pstn.twilio.com")]),
    )
    .await;
    assert_eq!(status, 400, "domain names are unique");
    let (status, _) = send(
        sb.twilio(Method::POST, "/v1/Trunks")
            .form(&[("DomainName", "cwa_bad.example.com")]),
    )
    .await;
    assert_eq!(status, 400, "domain names end in pstn.twilio.com");

    let (status, updated) = send(
        sb.twilio(Method::POST, &format!("/v1/Trunks/{sid}"))
            .form(&[("FriendlyName", "Staging 2")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(updated["friendly_name"], "Staging 2");
    let (status, _) = send(sb.twilio(Method::DELETE, &format!("/v1/Trunks/{sid}"))).await;
    assert_eq!(status, 204);
    let (status, body) = send(sb.twilio(Method::GET, &format!("/v1/Trunks/{sid}"))).await;
    assert_eq!(status, 404);
    assert_twilio_error(&body, 404, 20404);
}

#[tokio::test]
async fn trunk_phone_numbers_attach_and_detach() {
    let sb = TestSandbox::start("runbook").await;
    let main = main_trunk();
    let numbers = format!("/v1/Trunks/{main}/PhoneNumbers");
    let (_, listed) = send(sb.twilio(Method::GET, &numbers)).await;
    assert_eq!(listed["meta"]["key"], "phone_numbers");
    assert_eq!(listed["phone_numbers"].as_array().unwrap().len(), 3);
    assert_eq!(listed["phone_numbers"][0]["trunk_sid"], main.as_str());

    let (status, body) = send(
        sb.twilio(Method::POST, &numbers)
            .form(&[("Nothing", "here")]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 20001);
    assert!(body["message"].as_str().unwrap().contains("PhoneNumberSid"));

    let spare = runbook_sid("PN", "+13658253552");
    let (status, _) = send(
        sb.twilio(Method::POST, &numbers)
            .form(&[("PhoneNumberSid", spare.as_str())]),
    )
    .await;
    assert_eq!(status, 400, "the spare number is still on the test trunk");
    let test_numbers = format!("/v1/Trunks/{}/PhoneNumbers", test_trunk());
    let (status, _) = send(sb.twilio(Method::DELETE, &format!("{test_numbers}/{spare}"))).await;
    assert_eq!(status, 204);
    let (_, incoming) = send(sb.twilio(Method::GET, &number_path(&spare))).await;
    assert_eq!(
        incoming["trunk_sid"],
        Value::Null,
        "detaching keeps the number"
    );

    let (status, attached) = send(
        sb.twilio(Method::POST, &numbers)
            .form(&[("PhoneNumberSid", spare.as_str())]),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(attached["sid"], spare.as_str());
    assert_eq!(attached["phone_number"], "+13658253552");
    let (_, incoming) = send(sb.twilio(Method::GET, &number_path(&spare))).await;
    assert_eq!(incoming["trunk_sid"], main.as_str());
    let (status, one) = send(sb.twilio(Method::GET, &format!("{numbers}/{spare}"))).await;
    assert_eq!(status, 200);
    assert_eq!(one["trunk_sid"], main.as_str());
    let (status, _) = send(
        sb.twilio(Method::POST, &numbers)
            .form(&[("PhoneNumberSid", "PN0000")]),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn origination_urls_need_all_five_keys() {
    let sb = TestSandbox::start("runbook").await;
    let urls = format!("/v1/Trunks/{}/OriginationUrls", test_trunk());
    let (_, listed) = send(sb.twilio(Method::GET, &urls)).await;
    let seeded = &listed["origination_urls"][0];
    assert_eq!(listed["meta"]["key"], "origination_urls");
    assert_eq!(
        seeded["sip_url"],
        "sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp"
    );
    assert_eq!(
        (seeded["priority"].as_u64(), seeded["weight"].as_u64()),
        (Some(10), Some(10))
    );
    assert_eq!(seeded["enabled"], true);

    let full = [
        ("FriendlyName", "Backup"),
        ("SipUrl", "sip:backup.sip.livekit.cloud;transport=tcp"),
        ("Priority", "20"),
        ("Weight", "5"),
        ("Enabled", "false"),
    ];
    for skipped in 0..full.len() {
        let partial: Vec<_> = full
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skipped)
            .map(|(_, kv)| *kv)
            .collect();
        let (status, body) = send(sb.twilio(Method::POST, &urls).form(&partial)).await;
        assert_eq!(status, 400, "missing {}", full[skipped].0);
        assert!(body["message"].as_str().unwrap().contains(full[skipped].0));
    }
    let mut bad = full;
    bad[1] = ("SipUrl", "https://backup.example.com");
    let (status, _) = send(sb.twilio(Method::POST, &urls).form(&bad)).await;
    assert_eq!(status, 400, "sip: scheme only");
    let mut bad = full;
    bad[3] = ("Weight", "0");
    let (status, _) = send(sb.twilio(Method::POST, &urls).form(&bad)).await;
    assert_eq!(status, 400, "weight is at least 1");

    let (status, created) = send(sb.twilio(Method::POST, &urls).form(&full)).await;
    assert_eq!(status, 201, "{created}");
    let sid = created["sid"].as_str().unwrap().to_string();
    assert!(sid.starts_with("OU"));
    assert_eq!(created["enabled"], false);
    assert_eq!(created["priority"], 20);
    let (status, updated) = send(
        sb.twilio(Method::POST, &format!("{urls}/{sid}"))
            .form(&[("Priority", "5"), ("Enabled", "true")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (updated["priority"].as_u64(), updated["enabled"].as_bool()),
        (Some(5), Some(true))
    );
    let (status, _) = send(sb.twilio(Method::DELETE, &format!("{urls}/{sid}"))).await;
    assert_eq!(status, 204);
    let (_, listed) = send(sb.twilio(Method::GET, &urls)).await;
    assert_eq!(listed["origination_urls"].as_array().unwrap().len(), 1);
}

/// Issue 13: a deleted trunk's domain stays reserved (Twilio support: up to 30 days, error
/// 21248); the switch `domain_reservation_days = 0` turns the reservation off.
#[tokio::test]
async fn a_deleted_trunks_domain_stays_reserved() {
    let sb = TestSandbox::start("runbook").await;
    let create = |domain: &'static str| {
        sb.twilio(Method::POST, "/v1/Trunks")
            .form(&[("FriendlyName", "Reserved"), ("DomainName", domain)])
    };
    let (status, made) = send(create("cwa-reserved.pstn.twilio.com")).await;
    assert_eq!(status, 201, "{made}");
    let sid = made["sid"].as_str().unwrap().to_string();
    let (status, _) = send(sb.twilio(Method::DELETE, &format!("/v1/Trunks/{sid}"))).await;
    assert_eq!(status, 204);
    let (status, body) = send(create("cwa-reserved.pstn.twilio.com")).await;
    assert_eq!(status, 400);
    assert_twilio_error(&body, 400, 21248);
    let (status, body) = send(create("CWA-Reserved.pstn.twilio.com")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (400, 21248.into()),
        "case does not matter"
    );

    sb.sandbox
        .world()
        .lock()
        .unwrap()
        .twilio
        .domain_reservation_days = 0;
    let (status, made) = send(create("cwa-other.pstn.twilio.com")).await;
    assert_eq!(status, 201);
    let sid = made["sid"].as_str().unwrap().to_string();
    send(sb.twilio(Method::DELETE, &format!("/v1/Trunks/{sid}"))).await;
    let (status, _) = send(create("cwa-other.pstn.twilio.com")).await;
    assert_eq!(status, 201, "no reservation with the switch off");
}

/// Issue 13: `DomainName` is optional (twilio-oai trunking v1): origination-only trunks.
#[tokio::test]
async fn a_trunk_without_a_domain_is_origination_only() {
    let sb = TestSandbox::start("runbook").await;
    let (status, made) = send(
        sb.twilio(Method::POST, "/v1/Trunks")
            .form(&[("FriendlyName", "Origination only")]),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["domain_name"], Value::Null);
}
