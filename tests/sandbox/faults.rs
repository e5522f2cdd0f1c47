//! Fault injection over real HTTP: latency, a share of 5xx, 429 with Retry-After, lost
//! responses whose writes were committed, hangs, malformed bodies; set at start, at runtime
//! and from DIR/faults.json; never on control routes.

use std::time::Duration;

use crate::common::sandbox::{json_of, send, telnyx_code, TestSandbox};
use cwa::sandbox::{FaultConfig, FaultKind, FaultRule, Sandbox, SandboxOptions};
use reqwest::Method;
use serde_json::{json, Value};

const NUMBER_ID: &str = "2926113000000000001";

fn rule(kind: FaultKind, method: &str, prefix: &str, count: u32) -> FaultRule {
    FaultRule {
        kind,
        method: Some(method.into()),
        path_prefix: prefix.into(),
        count: Some(count),
        probability: None,
        seconds: None,
        status: None,
    }
}

async fn statuses(sb: &TestSandbox, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        let response = sb
            .telnyx(Method::GET, "/fqdn_connections")
            .send()
            .await
            .unwrap();
        out.push(response.status().as_u16());
    }
    out
}

#[tokio::test]
async fn latency_delays_every_provider_answer() {
    let sb = TestSandbox::start_with("runbook", |o| o.latency_ms = 5_000).await;
    let err = sb
        .telnyx(Method::GET, "/phone_numbers")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(sb.sandbox.faults().latency_ms, 5_000);
    let (status, _) = send(
        sb.http
            .get(sb.url("/sandbox/world"))
            .timeout(Duration::from_secs(4)),
    )
    .await;
    assert_eq!(status, 200, "control routes are never delayed");
}

#[tokio::test]
async fn a_share_of_requests_fail_with_5xx_reproducibly_and_commit_nothing() {
    let seeded = |o: &mut SandboxOptions| {
        o.fault_rate = 0.5;
        o.seed = 42;
    };
    let a = TestSandbox::start_with("runbook", seeded).await;
    let b = TestSandbox::start_with("runbook", seeded).await;
    let first = statuses(&a, 40).await;
    assert_eq!(first, statuses(&b, 40).await, "same seed, same faults");
    let failed = first.iter().filter(|s| matches!(s, 500 | 503)).count();
    assert!(failed > 5 && failed < 35, "about half fail: {first:?}");
    assert!(first.iter().all(|s| matches!(s, 200 | 500 | 503)));

    let all = TestSandbox::start_with("runbook", |o| o.fault_rate = 1.0).await;
    let (status, body) = send(
        all.telnyx(Method::PATCH, &format!("/phone_numbers/{NUMBER_ID}"))
            .json(&json!({"tags": ["x"]})),
    )
    .await;
    assert!(matches!(status, 500 | 503));
    assert_eq!(telnyx_code(&body), "10007");
    let tags = all.sandbox.world().lock().unwrap().telnyx.phone_numbers[NUMBER_ID]["tags"].clone();
    assert_eq!(tags, json!([]), "a faulted write is not committed");
    let (status, _) = send(all.http.get(all.url("/sandbox/world"))).await;
    assert_eq!(status, 200, "faults never apply to control routes");
}

#[tokio::test]
async fn above_the_rate_limit_each_provider_answers_429_with_retry_after() {
    let sb = TestSandbox::start_with("runbook", |o| o.rate_limit = Some(2.0)).await;
    let ordinary = sb
        .telnyx(Method::GET, "/phone_numbers")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ordinary.status().as_u16(),
        200,
        "the first request of a window passes"
    );
    assert_eq!(
        ordinary.headers()["x-ratelimit-limit"],
        "2",
        "Telnyx reports its limit on ordinary answers too"
    );
    let mut telnyx = Vec::new();
    for _ in 0..10 {
        telnyx.push(
            sb.telnyx(Method::GET, "/phone_numbers")
                .send()
                .await
                .unwrap(),
        );
    }
    let limited = telnyx
        .into_iter()
        .find(|r| r.status().as_u16() == 429)
        .expect("some Telnyx answers are 429");
    for header in [
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(limited.headers().contains_key(header), "missing {header}");
    }
    assert_eq!(limited.headers()["x-ratelimit-limit"], "2");
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    let (_, body) = json_of(limited).await;
    assert_eq!(telnyx_code(&body), "10011");

    let mut twilio = Vec::new();
    for _ in 0..10 {
        twilio.push(sb.twilio(Method::GET, "/v1/Trunks").send().await.unwrap());
    }
    let limited = twilio
        .into_iter()
        .find(|r| r.status().as_u16() == 429)
        .expect("some Twilio answers are 429");
    assert!(limited.headers().contains_key("retry-after"));
    let (_, body) = json_of(limited).await;
    assert_eq!(body["code"], 20429);

    let mut livekit = Vec::new();
    for _ in 0..10 {
        livekit.push(
            sb.twirp_json("ListSIPInboundTrunk", &json!({}))
                .send()
                .await
                .unwrap(),
        );
    }
    let limited = livekit
        .into_iter()
        .find(|r| r.status().as_u16() == 429)
        .expect("some LiveKit answers are 429");
    assert!(limited.headers().contains_key("retry-after"));
    let (_, body) = json_of(limited).await;
    assert_eq!(body["code"], "resource_exhausted");
}

#[tokio::test]
async fn a_lost_response_still_commits_and_persists_the_write() {
    let sb = TestSandbox::start_with("runbook", |o| {
        o.faults = vec![rule(
            FaultKind::LostResponse,
            "PATCH",
            "/v2/phone_numbers",
            1,
        )];
    })
    .await;
    let path = format!("/phone_numbers/{NUMBER_ID}");
    let err = sb
        .telnyx(Method::PATCH, &path)
        .json(&json!({"tags": ["lost"]}))
        .send()
        .await
        .expect_err("no answer at all");
    assert!(!err.is_status(), "{err}");
    let (_, fetched) = send(sb.telnyx(Method::GET, &path)).await;
    assert_eq!(
        fetched["data"]["tags"],
        json!(["lost"]),
        "the write was committed"
    );
    let entry = sb.log().into_iter().find(|e| e.method == "PATCH").unwrap();
    assert_eq!((entry.status, entry.write), (0, true));
    assert_eq!(entry.resource_id.as_deref(), Some(NUMBER_ID));

    let sb = sb.crash_and_restart().await;
    let (_, fetched) = send(sb.telnyx(Method::GET, &path)).await;
    assert_eq!(
        fetched["data"]["tags"],
        json!(["lost"]),
        "and persisted before the drop"
    );
    assert_eq!(
        sb.sandbox.faults().rules.len(),
        0,
        "runtime rules are not persisted"
    );
}

#[tokio::test]
async fn a_hang_trips_the_client_timeout_and_commits_nothing() {
    let sb = TestSandbox::start("runbook").await;
    let mut hang = rule(FaultKind::Hang, "PATCH", "/v2/phone_numbers", 1);
    hang.seconds = Some(30);
    sb.sandbox.set_faults(FaultConfig {
        rules: vec![hang],
        ..FaultConfig::default()
    });
    let path = format!("/phone_numbers/{NUMBER_ID}");
    let err = sb
        .telnyx(Method::PATCH, &path)
        .json(&json!({"tags": ["hung"]}))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let (status, fetched) = send(sb.telnyx(Method::GET, &path)).await;
    assert_eq!(status, 200, "the rule fired once");
    assert_eq!(fetched["data"]["tags"], json!([]));
    assert_eq!(sb.sandbox.faults().rules[0].count, Some(0));
}

#[tokio::test]
async fn a_malformed_answer_is_a_200_with_a_truncated_body() {
    let sb = TestSandbox::start("runbook").await;
    let config = json!({"rules": [{"kind": "malformed", "method": "GET", "path_prefix": "/v2/fqdn_connections", "count": 1}]});
    let (status, echoed) = send(sb.http.post(sb.url("/sandbox/faults")).json(&config)).await;
    assert_eq!(status, 200);
    assert_eq!(echoed["rules"][0]["kind"], "malformed");
    let response = sb
        .telnyx(Method::GET, "/fqdn_connections")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response.bytes().await.unwrap();
    assert!(!bytes.is_empty());
    assert!(
        serde_json::from_slice::<Value>(&bytes).is_err(),
        "truncated JSON"
    );
    let (status, body) = send(sb.telnyx(Method::GET, "/fqdn_connections")).await;
    assert_eq!(status, 200);
    assert!(body["data"].is_array(), "the next answer is whole");
    let (_, now) = send(sb.http.get(sb.url("/sandbox/faults"))).await;
    assert_eq!(now["rules"][0]["count"], 0);

    let (status, _) = send(
        sb.http
            .post(sb.url("/sandbox/faults"))
            .json(&json!({"rules": [{"kind": "explode"}]})),
    )
    .await;
    assert_eq!(status, 400, "an unknown fault kind is refused");
}

#[tokio::test]
async fn an_error_rule_answers_its_status_in_the_provider_shape() {
    let mut error = rule(FaultKind::Error, "POST", "/v1/Trunks", 1);
    error.status = Some(503);
    let sb = TestSandbox::start_with("runbook", |o| o.faults = vec![error]).await;
    let (status, body) = send(
        sb.twilio(Method::POST, "/v1/Trunks")
            .form(&[("FriendlyName", "x")]),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], 503);
    let (status, _) = send(
        sb.twilio(Method::POST, "/v1/Trunks")
            .form(&[("FriendlyName", "x")]),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn faults_json_in_the_directory_is_read_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("faults.json"),
        json!({"rules": [{"kind": "error", "method": "GET", "path_prefix": "/v2/phone_numbers", "status": 500}]}).to_string(),
    )
    .unwrap();
    let sandbox = Sandbox::start(SandboxOptions::new(dir.path(), "runbook"))
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .get(format!("{}/v2/phone_numbers", sandbox.base_url()))
        .bearer_auth(cwa::sandbox::TELNYX_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 500);
    assert_eq!(sandbox.faults().rules.len(), 1);
    sandbox.shutdown().await.unwrap();
}
