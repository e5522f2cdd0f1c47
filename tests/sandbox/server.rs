//! The sandbox as a whole: environment, routing, control routes, persistence across clean and
//! unclean restarts (LiveKit's random ids included), the request log, worlds, and the
//! `cwa sandbox` command.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::sandbox::{send, TestSandbox};
use cwa::sandbox::{self, read_request_log, Sandbox, SandboxOptions};
use reqwest::Method;
use serde_json::{json, Value};

const PROTECTED_TRUNK: &str = "ST_Xa3Bp9aixRFP";
const NUMBER_ID: &str = "2926113000000000001";

async fn create_trunk(sb: &TestSandbox, name: &str, number: &str) -> String {
    let (status, body) = send(sb.twirp_json(
        "CreateSIPInboundTrunk",
        &json!({"trunk": {"name": name, "numbers": [number], "krisp_enabled": true}}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    body["sip_trunk_id"].as_str().unwrap().to_string()
}

async fn rename_trunk(sb: &TestSandbox, id: &str, name: &str) {
    let (status, body) = send(sb.twirp_json(
        "UpdateSIPInboundTrunk",
        &json!({"sip_trunk_id": id, "update": {"name": name}}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
}

fn inbound_trunk_name(world: &Value, id: &str) -> Option<String> {
    world["livekit"]["inbound_trunks"][id]["name"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test]
async fn env_points_every_client_at_the_sandbox() {
    let sb = TestSandbox::start("empty").await;
    let base = sb.sandbox.base_url();
    assert_eq!(base, format!("http://{}", sb.sandbox.addr()));
    assert!(sb.sandbox.addr().ip().is_loopback());
    let env: std::collections::BTreeMap<String, String> = sb.sandbox.env().into_iter().collect();
    assert_eq!(env["TELNYX_BASE_URL"], format!("{base}/v2"));
    assert_eq!(env["TELNYX_API_KEY"], "KEYsandbox0000000000000000000000");
    assert_eq!(env["LIVEKIT_URL"], base);
    assert_eq!(env["LIVEKIT_API_KEY"], "APIsandbox");
    assert_eq!(
        env["LIVEKIT_API_SECRET"],
        "sandbox-livekit-secret-0123456789abcdef"
    );
    assert_eq!(
        env["TWILIO_ACCOUNT_SID"],
        "AC0c5a3f6e2b8d4e7f9a1b3c5d7e9f0a2b"
    );
    assert_eq!(env["TWILIO_AUTH_TOKEN"], "sandbox-twilio-token");
    assert_eq!(env["TWILIO_API_BASE_URL"], base);
    assert_eq!(env["TWILIO_TRUNKING_BASE_URL"], base);
    assert_eq!(env["TELNYX_FQDN_PASSWORD"], "sandbox-fqdn-secret");
    assert_eq!(
        env["TELNYX_OUTBOUND_SIP_PASSWORD"],
        "sandbox-outbound-secret"
    );
    assert_eq!(env.len(), 11);
    assert_eq!(sandbox::env_for(&format!("{base}/")), sb.sandbox.env());
}

#[tokio::test]
async fn routes_and_control_routes() {
    let sb = TestSandbox::start("runbook").await;
    let world = sb.world_json().await;
    assert_eq!(world["seed"], "runbook");
    assert!(world["livekit"]["inbound_trunks"][PROTECTED_TRUNK].is_object());
    assert!(world["telnyx"]["phone_numbers"][NUMBER_ID].is_object());
    assert_eq!(world["twilio"]["numbers"].as_object().unwrap().len(), 4);

    let (status, call) = send(
        sb.http
            .post(sb.url("/sandbox/calls"))
            .json(&json!({"from": "+13125550000", "to": "+14144007103"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(call.is_object(), "{call}");
    let (status, _) = send(
        sb.http
            .post(sb.url("/sandbox/calls"))
            .json(&json!({"to": 1})),
    )
    .await;
    assert_eq!(status, 400);

    let (status, _) = send(sb.http.get(sb.url("/nothing/here"))).await;
    assert_eq!(status, 404);
    let (status, body) = send(
        sb.http
            .post(sb.url("/twirp/livekit.RoomService/ListRooms"))
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "bad_route");
    let (status, _) = send(sb.http.get(sb.url("/sandbox/nothing"))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_world_survives_a_clean_restart() {
    let sb = TestSandbox::start("runbook").await;
    send(
        sb.telnyx(Method::PATCH, &format!("/phone_numbers/{NUMBER_ID}"))
            .json(&json!({"tags": ["kept"]})),
    )
    .await;
    let trunk = create_trunk(&sb, "Restart Church", "+15126001234").await;
    let (status, _) = send(
        sb.twilio(Method::POST, "/v1/Trunks")
            .form(&[("FriendlyName", "Kept")]),
    )
    .await;
    assert_eq!(status, 201);

    let sb = sb.restart().await;
    let world = sb.world_json().await;
    assert_eq!(
        world["seed"], "runbook",
        "the stored world wins over the seed asked for"
    );
    assert_eq!(
        world["telnyx"]["phone_numbers"][NUMBER_ID]["tags"],
        json!(["kept"])
    );
    assert_eq!(
        inbound_trunk_name(&world, &trunk).as_deref(),
        Some("Restart Church")
    );
    let (_, trunks) = send(sb.twilio(Method::GET, "/v1/Trunks")).await;
    assert_eq!(trunks["trunks"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn every_answered_write_survives_a_crash_with_livekit_ids_intact() {
    let sb = TestSandbox::start("runbook").await;
    let first = create_trunk(&sb, "Crash One", "+15126001111").await;
    let second = create_trunk(&sb, "Crash Two", "+15126002222").await;
    rename_trunk(&sb, &first, "Crash One Renamed").await;
    let (status, rule) = send(sb.twirp_json(
        "CreateSIPDispatchRule",
        &json!({"dispatch_rule": {
            "name": "Crash Two Dispatch",
            "trunk_ids": [second],
            "rule": {"dispatch_rule_individual": {"room_prefix": "call-"}},
        }}),
    ))
    .await;
    assert_eq!(status, 200, "{rule}");
    let rule_id = rule["sip_dispatch_rule_id"].as_str().unwrap().to_string();
    send(
        sb.telnyx(Method::PATCH, &format!("/phone_numbers/{NUMBER_ID}"))
            .json(&json!({"customer_reference": "crash"})),
    )
    .await;

    let sb = sb.crash_and_restart().await;
    let world = sb.world_json().await;
    assert_eq!(
        inbound_trunk_name(&world, &first).as_deref(),
        Some("Crash One Renamed")
    );
    assert_eq!(
        inbound_trunk_name(&world, &second).as_deref(),
        Some("Crash Two")
    );
    let rule = &world["livekit"]["dispatch_rules"][&rule_id];
    assert_eq!(
        rule["trunkIds"],
        json!([second]),
        "references follow the original ids"
    );
    assert_eq!(
        world["telnyx"]["phone_numbers"][NUMBER_ID]["customer_reference"],
        "crash"
    );

    let sb = sb.crash_and_restart().await;
    let again = sb.world_json().await;
    assert_eq!(
        again["livekit"], world["livekit"],
        "a second start changes nothing"
    );
}

#[tokio::test]
async fn a_pending_order_completes_after_a_restart() {
    let sb = TestSandbox::start("runbook").await;
    sb.sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .order_completion_ms = 3_600_000;
    let (_, found) = send(sb.telnyx(Method::GET, "/available_phone_numbers").query(&[
        ("filter[national_destination_code]", "512"),
        ("filter[limit]", "1"),
    ]))
    .await;
    let number = found["data"][0]["phone_number"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, order) = send(sb.telnyx(Method::POST, "/number_orders").json(&json!({
        "phone_numbers": [{"phone_number": number}], "customer_reference": "restart-order",
    })))
    .await;
    let order_id = order["data"]["id"].as_str().unwrap().to_string();
    let sb = sb.crash_and_restart().await;
    let (_, listed) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[customer_reference]", "restart-order")]),
    )
    .await;
    assert_eq!(listed["data"][0]["status"], "purchase-pending");
    let (_, polled) = send(sb.telnyx(Method::GET, &format!("/number_orders/{order_id}"))).await;
    assert_eq!(polled["data"]["status"], "success");
    let sb = sb.crash_and_restart().await;
    let (_, listed) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[customer_reference]", "restart-order")]),
    )
    .await;
    assert_eq!(
        listed["data"][0]["status"], "active",
        "a completion seen by a GET is durable"
    );
}

#[tokio::test]
async fn the_request_log_names_targets_and_never_secrets_or_bodies() {
    let sb = TestSandbox::start("runbook").await;
    send(
        sb.telnyx(Method::PATCH, &format!("/phone_numbers/{NUMBER_ID}"))
            .json(&json!({"tags": ["body-marker-7731"]})),
    )
    .await;
    send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("page[size]", "2")]),
    )
    .await;
    send(sb.http.get(sb.url("/v2/phone_numbers"))).await;
    rename_trunk(
        &sb,
        "ST_LWgmiBSwTk7P",
        "Medhanialem Ethiopian Evangelical Church",
    )
    .await;
    let spare = cwa::sandbox::twilio::runbook_sid("PN", "+13658253552");
    let test_trunk = cwa::sandbox::twilio::runbook_sid("TK", "churchwiseai-test.pstn.twilio.com");
    send(sb.twilio(
        Method::DELETE,
        &format!("/v1/Trunks/{test_trunk}/PhoneNumbers/{spare}"),
    ))
    .await;
    send(sb.http.get(sb.url("/sandbox/world"))).await;

    let log = sb.log();
    let patch = &log[0];
    assert_eq!(
        (
            patch.provider.as_str(),
            patch.method.as_str(),
            patch.path.as_str()
        ),
        ("telnyx", "PATCH", "/v2/phone_numbers/2926113000000000001")
    );
    assert_eq!((patch.status, patch.write), (200, true));
    assert_eq!(patch.resource_id.as_deref(), Some(NUMBER_ID));
    assert!(patch.time.ends_with('Z'));
    let list = &log[1];
    assert_eq!(
        (list.path.as_str(), list.status, list.write),
        ("/v2/phone_numbers", 200, false)
    );
    assert_eq!(log[2].status, 401);
    let twirp = &log[3];
    assert_eq!(twirp.provider, "livekit");
    assert_eq!(twirp.resource_id.as_deref(), Some("ST_LWgmiBSwTk7P"));
    assert!(twirp.write);
    let twilio = &log[4];
    assert_eq!(
        (twilio.provider.as_str(), twilio.status, twilio.write),
        ("twilio", 204, true)
    );
    assert_eq!(twilio.resource_id.as_deref(), Some(test_trunk.as_str()));
    assert_eq!((log[5].provider.as_str(), log[5].write), ("sandbox", false));
    assert_eq!(log.len(), 6);

    assert!(
        !log.iter()
            .any(|e| e.write && e.resource_id.as_deref() == Some(PROTECTED_TRUNK)),
        "zero writes to the protected trunk"
    );
    let raw = std::fs::read_to_string(sb.dir().join("requests.jsonl")).unwrap();
    for secret in [
        "KEYsandbox",
        "Bearer",
        "Basic",
        "sandbox-twilio-token",
        "sandbox-livekit-secret",
        "body-marker-7731",
        "page[size]",
    ] {
        assert!(!raw.contains(secret), "the request log holds {secret}");
    }
}

#[tokio::test]
async fn synthetic_worlds_seed_and_reload() {
    let sb = TestSandbox::start("synthetic:10000").await;
    {
        let world = sb.sandbox.world();
        let world = world.lock().unwrap();
        assert_eq!(world.telnyx.phone_numbers.len(), 10_000);
        assert_eq!(world.livekit.inbound_trunks.0.len(), 10_000);
        assert_eq!(world.livekit.dispatch_rules.0.len(), 10_000);
        assert!(world.twilio.numbers.is_empty());
    }
    let lines = sandbox::synthetic_lines(10_000);
    let (_, found) = send(
        sb.telnyx(Method::GET, "/phone_numbers")
            .query(&[("filter[phone_number]", lines[9_999].number.digits())]),
    )
    .await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    let sb = sb.restart().await;
    let world = sb.sandbox.world();
    assert_eq!(world.lock().unwrap().telnyx.phone_numbers.len(), 10_000);
}

#[tokio::test]
async fn synthetic_numbers_never_meet_the_inventory() {
    let sb = TestSandbox::start("synthetic:40").await;
    let lines = sandbox::synthetic_lines(40);
    for npa in ["212", "312", "747", "972"] {
        let (_, found) = send(sb.telnyx(Method::GET, "/available_phone_numbers").query(&[
            ("filter[national_destination_code]", npa),
            ("filter[limit]", "100"),
        ]))
        .await;
        for n in found["data"].as_array().unwrap() {
            let n = n["phone_number"].as_str().unwrap();
            assert!(
                lines.iter().all(|l| l.number.as_str() != n),
                "{n} is a synthetic line"
            );
        }
    }
}

#[tokio::test]
async fn reset_reseeds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let sb = Sandbox::start(SandboxOptions::new(dir.path(), "runbook"))
        .await
        .unwrap();
    reqwest::get(format!("{}/sandbox/world", sb.base_url()))
        .await
        .unwrap();
    sb.shutdown().await.unwrap();
    assert!(!read_request_log(dir.path()).unwrap().is_empty());
    sandbox::reset(dir.path(), "empty").unwrap();
    assert!(read_request_log(dir.path()).unwrap().is_empty());
    let sb = Sandbox::start(SandboxOptions::new(dir.path(), "runbook"))
        .await
        .unwrap();
    let world = sb.world();
    let world = world.lock().unwrap();
    assert_eq!(world.seed, "empty");
    assert!(world.telnyx.phone_numbers.is_empty());
    assert!(sandbox::reset(dir.path(), "production").is_err());
}

#[test]
fn cwa_sandbox_serve_prints_exports_and_reset_reseeds() {
    let dir = tempfile::tempdir().unwrap();
    let world_dir = dir.path().join("world");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cwa"))
        .args(["sandbox", "serve", "--world", "synthetic:3", "--dir"])
        .arg(&world_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(11)
        .map(Result::unwrap)
        .collect();
    let base = lines
        .iter()
        .find_map(|l| l.strip_prefix("export LIVEKIT_URL="))
        .expect("LIVEKIT_URL is exported")
        .to_string();
    assert!(lines.iter().all(|l| l.starts_with("export ")), "{lines:?}");
    assert!(lines.contains(&format!("export TELNYX_BASE_URL={base}/v2")));
    let answer = get_json_blocking(&format!("{base}/sandbox/world"));
    assert_eq!(answer["seed"], "synthetic:3");
    let number_id = answer["telnyx"]["phone_numbers"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let status = patch_tags_blocking(&format!("{base}/v2/phone_numbers/{number_id}"));
    assert_eq!(status, 200);
    let busy = tokio::runtime::Runtime::new().unwrap().block_on(async {
        Sandbox::start(SandboxOptions::new(&world_dir, "empty"))
            .await
            .err()
    });
    match busy {
        Some(sandbox::SandboxError::Busy { url, .. }) => {
            assert_eq!(
                url.as_deref(),
                Some(base.as_str()),
                "the refusal says where it serves"
            )
        }
        other => panic!("a directory served by another process is refused: {other:?}"),
    }
    assert_eq!(
        sandbox::serving_url(&world_dir).as_deref(),
        Some(base.as_str())
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        sandbox::serving_url(&world_dir),
        None,
        "nobody serves it any more"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let sandbox = Sandbox::start(SandboxOptions::new(&world_dir, "empty"))
            .await
            .unwrap();
        let world = sandbox.world();
        let tags = world.lock().unwrap().telnyx.phone_numbers[&number_id]["tags"].clone();
        assert_eq!(
            tags,
            json!(["after-kill"]),
            "a write answered before SIGKILL survives"
        );
        sandbox.shutdown().await.unwrap();
    });

    let status = Command::new(env!("CARGO_BIN_EXE_cwa"))
        .args(["sandbox", "reset", "--world", "empty"])
        .env("CWA_SANDBOX_DIR", &world_dir)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let snapshot: Value =
        serde_json::from_slice(&std::fs::read(world_dir.join("world.json")).unwrap()).unwrap();
    assert_eq!(snapshot["world"]["seed"], "empty");
}

/// A Telnyx PATCH from synchronous test code, on a runtime of its own.
fn patch_tags_blocking(url: &str) -> u16 {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .patch(url)
            .bearer_auth(cwa::sandbox::TELNYX_API_KEY)
            .json(&json!({"tags": ["after-kill"]}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// A GET from synchronous test code, on a runtime of its own.
fn get_json_blocking(url: &str) -> Value {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

#[test]
fn cwa_sandbox_serve_defaults_to_the_embedded_directory() {
    let embedded = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cwa"))
        .args(["sandbox", "serve", "--world", "empty"])
        .env("CWA_SANDBOX_DIR", embedded.path())
        .current_dir(cwd.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with("export TELNYX_BASE_URL=http://127.0.0.1:"),
        "{first}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(embedded.path().join("world.json").exists());
    assert!(!cwd.path().join(".cwa").exists());
}
