//! `cwa check` end to end: every broken state the runbooks describe, made through the
//! sandbox's real endpoints, fails naming its hop; apply fixes it and check passes. `--ring`
//! walks the sandbox's call path hop by hop.

use crate::common::{assert_exit, stdout, Ctx};
use cwa::sandbox::{LIVEKIT_API_KEY, LIVEKIT_API_SECRET};
use livekit_api::services::sip::{ListSIPDispatchRuleFilter, SIPClient};
use livekit_protocol as proto;
use serde_json::{json, Value};

const FQDN_CONNECTION: &str = "2925081061861885519";
const FQDN_RECORD: &str = "2925083349418510207";
const INBOUND_V2: &str = "2925216093662349036";
const CREDENTIAL_CONNECTION: &str = "2948197312620398250";
const MEDHANIALEM_NUMBER_ID: &str = "2926113000000000001";
const OUTBOUND_DID_ID: &str = "2948197312620400001";
const MEDHANIALEM: &str = "+14144007103";
const MELVINDALE: &str = "+17473897673";

fn sip(ctx: &Ctx) -> SIPClient {
    SIPClient::with_api_key(
        &ctx.sb.sandbox.base_url(),
        LIVEKIT_API_KEY,
        LIVEKIT_API_SECRET,
    )
}

async fn telnyx_patch(ctx: &Ctx, path: &str, body: Value) {
    let (status, answer) =
        crate::common::sandbox::send(ctx.sb.telnyx(reqwest::Method::PATCH, path).json(&body)).await;
    assert_eq!(status, 200, "{path}: {answer}");
}

/// Runs `cwa check --json` and returns the failed checks as (check, hop).
async fn failures(ctx: &Ctx, code: i32) -> Vec<(String, String)> {
    let out = ctx.cwa(&["check", "--json"]).await;
    assert_exit(&out, code);
    let report: Value = serde_json::from_str(&stdout(&out)).expect("a JSON report");
    assert_eq!(report["passed"], json!(code == 0));
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == json!(false))
        .map(|c| {
            (
                c["check"].as_str().unwrap_or_default().to_string(),
                c["hop"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Asserts that check fails naming `check` at `hop` (in JSON and in the human report), that
/// apply fixes it, and that check passes again.
async fn fails_then_apply_fixes(ctx: &Ctx, check: &str, hop: &str) {
    let failed = failures(ctx, 1).await;
    assert!(
        failed.contains(&(check.to_string(), hop.to_string())),
        "{check} at {hop} not in {failed:?}"
    );
    let human = ctx.cwa(&["check"]).await;
    assert_exit(&human, 1);
    let text = stdout(&human);
    assert!(
        text.contains(&format!("FAILED at the {hop} hop: {check}")),
        "{text}"
    );
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let after = failures(ctx, 0).await;
    assert!(after.is_empty(), "after apply: {after:?}");
}

async fn applied() -> Ctx {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_world_fails_at_dispatch_and_outbound_until_applied() {
    let ctx = Ctx::runbook().await;
    let failed = failures(&ctx, 1).await;
    for expected in [
        ("dispatch-agent", "dispatch"),
        ("outbound-profile-bound", "outbound"),
        ("outbound-header", "outbound"),
    ] {
        assert!(
            failed.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} not in {failed:?}"
        );
    }
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert!(failures(&ctx, 0).await.is_empty());
    assert!(ctx
        .writes()
        .iter()
        .all(|w| w.resource_id.as_deref() != Some("ST_Xa3Bp9aixRFP")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_breakages_fail_at_their_hop() {
    let ctx = applied().await;

    telnyx_patch(
        &ctx,
        &format!("/fqdn_connections/{FQDN_CONNECTION}"),
        json!({"transport_protocol": "UDP"}),
    )
    .await;
    fails_then_apply_fixes(&ctx, "connection-transport", "connection").await;

    telnyx_patch(
        &ctx,
        &format!("/fqdns/{FQDN_RECORD}"),
        json!({"fqdn": "cwa-voice-9x077mph.sip.livekit.cloud"}),
    )
    .await;
    fails_then_apply_fixes(&ctx, "sip-host", "fqdn").await;

    telnyx_patch(
        &ctx,
        &format!("/fqdn_connections/{FQDN_CONNECTION}"),
        json!({"inbound": {"default_primary_fqdn_id": null}}),
    )
    .await;
    fails_then_apply_fixes(&ctx, "default-primary-fqdn", "fqdn").await;

    telnyx_patch(
        &ctx,
        &format!("/phone_numbers/{MEDHANIALEM_NUMBER_ID}"),
        json!({"connection_id": INBOUND_V2}),
    )
    .await;
    fails_then_apply_fixes(&ctx, "number-connection", "connection").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livekit_breakages_fail_at_their_hop() {
    let ctx = applied().await;

    sip(&ctx)
        .update_sip_inbound_trunk(
            "ST_LWgmiBSwTk7P".into(),
            proto::SipInboundTrunkUpdate {
                auth_username: Some("churchwiseai".into()),
                auth_password: Some("anything".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    fails_then_apply_fixes(&ctx, "trunk-auth", "trunk").await;

    let client = sip(&ctx);
    let mut rule = client
        .list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.sip_dispatch_rule_id == "SDR_4hTq8WnZpK3m")
        .unwrap();
    rule.room_config = None;
    client
        .update_sip_dispatch_rule_replace("SDR_4hTq8WnZpK3m".into(), rule)
        .await
        .unwrap();
    fails_then_apply_fixes(&ctx, "dispatch-agent", "dispatch").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_breakages_fail_at_the_outbound_hop() {
    let ctx = applied().await;

    telnyx_patch(
        &ctx,
        &format!("/credential_connections/{CREDENTIAL_CONNECTION}"),
        json!({"outbound": {"outbound_voice_profile_id": ""}}),
    )
    .await;
    fails_then_apply_fixes(&ctx, "outbound-profile-bound", "outbound").await;

    telnyx_patch(
        &ctx,
        &format!("/phone_numbers/{OUTBOUND_DID_ID}"),
        json!({"connection_id": FQDN_CONNECTION}),
    )
    .await;
    fails_then_apply_fixes(&ctx, "outbound-did-bound", "outbound").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_walks_the_sandbox_call_path() {
    let ctx = Ctx::runbook().await;
    let broken = ctx.cwa(&["check", "--ring", MELVINDALE, "--json"]).await;
    assert_exit(&broken, 1);
    let report: Value = serde_json::from_str(&stdout(&broken)).unwrap();
    assert_eq!(report["ring"]["via"], json!("sandbox"));
    assert_eq!(report["ring"]["passed"], json!(false));
    assert_eq!(report["ring"]["from"], json!("+12268830000"));
    assert!(
        report["ring"]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("agent_never_joins"),
        "{report:#}"
    );

    let human = ctx.cwa(&["check", "--ring", MEDHANIALEM]).await;
    let text = stdout(&human);
    assert!(
        text.contains("Test call +12268830000 -> +14144007103 via sandbox"),
        "{text}"
    );
    assert!(text.contains("[ST_LWgmiBSwTk7P]"), "{text}");
    assert!(text.contains("Outcome: agent_answered"), "{text}");

    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let fixed = ctx.cwa(&["check", "--ring", MELVINDALE]).await;
    assert_exit(&fixed, 0);
    assert!(stdout(&fixed).contains("Outcome: agent_answered"));

    let bad = ctx.cwa(&["check", "--ring", "not-a-number"]).await;
    assert_exit(&bad, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_json_carries_a_format_version_like_the_plan() {
    let ctx = Ctx::runbook().await;
    let out = ctx.cwa(&["check", "--json"]).await;
    assert_exit(&out, 1);
    let report: Value = serde_json::from_str(&stdout(&out)).expect("a JSON report");
    assert_eq!(report["format_version"], json!("1.0"), "{report:#}");
}

/// Runs `cwa validate`, asserts it fails saying `needle`, and returns what it printed.
async fn validate_fails(ctx: &Ctx, needle: &str) -> String {
    let out = ctx.cwa(&["validate"]).await;
    assert_exit(&out, 1);
    let text = crate::common::stderr(&out);
    assert!(text.contains(needle), "{needle} not in {text}");
    text
}

/// The plan's change for `address`, from `cwa plan --json`.
async fn planned_change(ctx: &Ctx, address: &str) -> Value {
    let out = ctx.cwa(&["plan", "--json"]).await;
    assert!(
        out.status.code().is_some_and(|c| c != 1),
        "{}",
        stdout(&out)
    );
    let plan: Value = serde_json::from_str(&stdout(&out)).expect("a JSON plan");
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["address"] == json!(address))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Replaces the live outbound trunk's headers with `x-telnyx-username: value`, the declared
/// header's name in lower case, as a console edit would.
async fn set_live_username_header(ctx: &Ctx, value: &str) {
    let client = sip(ctx);
    let trunk = client
        .list_sip_outbound_trunk(livekit_api::services::sip::ListSIPOutboundTrunkFilter::All)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "Telnyx Outbound")
        .expect("the applied outbound trunk");
    let mut edited = trunk.clone();
    edited.headers = [("x-telnyx-username".to_string(), value.to_string())].into();
    client
        .update_sip_outbound_trunk_replace(trunk.sip_trunk_id.clone(), edited)
        .await
        .unwrap();
}

/// Issue 14's decision: SIP header names compare case-insensitively (RFC 3261 7.3.1), in
/// `check` as in `validate`; a header that differs from the declared one only in the case
/// of its name is no finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_name_differing_only_in_case_is_not_a_finding() {
    let ctx = applied().await;
    set_live_username_header(&ctx, "cwaoutbound").await;
    let failed = failures(&ctx, 0).await;
    assert!(failed.is_empty(), "{failed:?}");

    ctx.edit_lines_toml("\"X-Telnyx-Username\" = ", "\"X-TELNYX-USERNAME\" = ");
    let validate = ctx.cwa(&["validate"]).await;
    assert_exit(&validate, 0);
    assert!(
        !crate::common::stderr(&validate).contains("sends no X-Telnyx-Username"),
        "{}",
        crate::common::stderr(&validate)
    );
    assert!(failures(&ctx, 0).await.is_empty());
}

/// Issue 14's decision, in the plan as in `check`: a live header whose name differs from the
/// declared one only in case is the same header, so the plan shows no change for it (and
/// apply has nothing to write); a changed value still shows, once, under the declared name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_name_differing_only_in_case_plans_no_change() {
    let ctx = applied().await;
    set_live_username_header(&ctx, "cwaoutbound").await;
    let change = planned_change(&ctx, "livekit_outbound_trunk.telnyx").await;
    assert!(
        change.is_null() || change["fields"] == json!([]),
        "{change:#}"
    );

    set_live_username_header(&ctx, "stale").await;
    let change = planned_change(&ctx, "livekit_outbound_trunk.telnyx").await;
    let paths: Vec<&str> = change["fields"]
        .as_array()
        .expect("a changed header")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, ["headers.X-Telnyx-Username"], "{change:#}");
}

/// Issue 14's decision: transport compares case-insensitively and is stored upper-case: a
/// lines.toml `tcp` is valid, plans no change against Telnyx's `TCP`, and certifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_in_lower_case_is_tcp() {
    let ctx = applied().await;
    ctx.edit_lines_toml("transport = \"TCP\"", "transport = \"tcp\"");
    assert_exit(&ctx.cwa(&["validate"]).await, 0);
    let change = planned_change(&ctx, "telnyx_fqdn_connection.livekit").await;
    assert!(
        change.is_null() || change["action"] == json!("no_op") || change["fields"] == json!([]),
        "{change:#}"
    );
    assert!(failures(&ctx, 0).await.is_empty());
    ctx.edit_lines_toml("transport = \"tcp\"", "transport = \"UDP\"");
    validate_fails(&ctx, "cwa::config::transport").await;
}

/// Issue 14's decision: a credential connection's identity is its user_name (unique in a
/// Telnyx account, case-insensitively); check and plan both find it by that, renamed or not,
/// and neither takes a same-named connection with another user for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_connection_is_matched_by_user_name_in_check_and_plan() {
    let ctx = Ctx::runbook().await;
    let path = format!("/credential_connections/{CREDENTIAL_CONNECTION}");
    telnyx_patch(
        &ctx,
        &path,
        json!({"connection_name": "Renamed In The Portal"}),
    )
    .await;
    let failed = failures(&ctx, 1).await;
    assert!(
        !failed.iter().any(|(c, _)| c == "credential-connection"),
        "check lost the renamed connection: {failed:?}"
    );
    let change = planned_change(&ctx, "telnyx_credential_connection.outbound").await;
    assert_eq!(change["action"], json!("adopt"), "{change:#}");
    assert_eq!(change["id"], json!(CREDENTIAL_CONNECTION), "{change:#}");

    telnyx_patch(
        &ctx,
        &path,
        json!({"connection_name": "CWA Verticals Platform Outbound", "user_name": "someoneelse"}),
    )
    .await;
    let failed = failures(&ctx, 1).await;
    assert!(
        failed.contains(&("credential-connection".into(), "outbound".into())),
        "{failed:?}"
    );
    let change = planned_change(&ctx, "telnyx_credential_connection.outbound").await;
    assert_eq!(change["action"], json!("create"), "{change:#}");
}

/// Issue 14's decision: the countries an outbound voice profile must whitelist are its
/// trunks' destination countries and `[defaults] outbound_countries` (US and CA unless set),
/// in `validate` and in `check` alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_calling_mx_makes_its_profile_require_mx_and_the_defaults() {
    let ctx = applied().await;
    ctx.edit_lines_toml(
        "destination_country = \"US\"",
        "destination_country = \"MX\"",
    );
    let text = validate_fails(&ctx, "cwa::config::outbound_voice_profile").await;
    assert!(text.contains("does not whitelist MX"), "{text}");

    ctx.edit_lines_toml(
        "whitelisted_destinations = [\"CA\", \"US\"]",
        "whitelisted_destinations = [\"MX\"]",
    );
    let text = validate_fails(&ctx, "outbound_countries").await;
    for country in ["US", "CA"] {
        assert!(
            text.contains(&format!("does not whitelist {country}, which")),
            "{text}"
        );
    }
    assert!(!text.contains("does not whitelist MX"), "{text}");

    ctx.edit_lines_toml(
        "[defaults]\n",
        "[defaults]\noutbound_countries = [\"mx\"]\n",
    );
    assert_exit(&ctx.cwa(&["validate"]).await, 0);
    ctx.edit_lines_toml("outbound_countries = [\"mx\"]\n", "");

    ctx.edit_lines_toml(
        "whitelisted_destinations = [\"MX\"]",
        "whitelisted_destinations = [\"CA\", \"MX\", \"US\"]",
    );
    assert_exit(&ctx.cwa(&["validate"]).await, 0);
    let failed = failures(&ctx, 1).await;
    assert_eq!(
        failed,
        [("outbound-profile-ready".to_string(), "outbound".to_string())]
    );
    let out = ctx.cwa(&["check", "--json"]).await;
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let ready = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == json!("outbound-profile-ready"))
        .unwrap();
    assert_eq!(ready["code"], json!("cwa::profile::countries"));
    assert!(
        ready["message"].as_str().unwrap().contains("MX"),
        "{ready:#}"
    );
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert!(failures(&ctx, 0).await.is_empty());

    ctx.edit_lines_toml(
        "[defaults]\n",
        "[defaults]\noutbound_countries = [\"Mexico\"]\n",
    );
    validate_fails(&ctx, "not a two-letter country code").await;
}

/// Every check result carries its rule's stable code, `cwa::<family>::<rule>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_result_names_its_rule_code() {
    let ctx = Ctx::runbook().await;
    let out = ctx.cwa(&["check", "--json"]).await;
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert!(!checks.is_empty());
    for c in checks {
        let code = c["code"].as_str().unwrap_or_default();
        assert!(
            code.starts_with("cwa::") && code.matches("::").count() == 2,
            "{c:#}"
        );
    }
    let trunk_auth = checks
        .iter()
        .find(|c| c["check"] == json!("trunk-auth"))
        .unwrap();
    assert_eq!(trunk_auth["code"], json!("cwa::trunk::auth-mismatch"));
}

/// Issue 14, one rule in one place: LiveKit refuses two inbound trunks on one number only
/// when one caller could reach both (`ValidateTrunksIter`), so a number split by
/// `allowed_numbers` across two trunks is one trunk per caller. validate accepts it, apply
/// creates it, and check certifies it the same way (no `one-inbound-trunk` failure), both
/// trunks checked on to their dispatch rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_split_by_allowed_numbers_is_one_trunk_in_validate_and_check() {
    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml(
        "[livekit.dispatch_rule.twilio_main]\n",
        "[livekit.inbound_trunk.twilio_test_vip]\n\
         name = \"Twilio Test VIP\"\n\
         numbers = [\"+13658253552\"]\n\
         allowed_numbers = [\"+12064201234\"]\n\
         krisp = false\n\n\
         [livekit.dispatch_rule.twilio_test_vip]\n\
         name = \"Test VIP Dispatch\"\n\
         trunks = [\"livekit_inbound_trunk.twilio_test_vip\"]\n\
         type = \"individual\"\n\
         room_prefix = \"vip-call-\"\n\
         agents = [{ name = \"churchwiseai-voice\" }]\n\n\
         [livekit.dispatch_rule.twilio_main]\n",
    );
    assert_exit(&ctx.cwa(&["validate"]).await, 0);
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let failed = failures(&ctx, 0).await;
    assert!(failed.is_empty(), "{failed:?}");
    let out = ctx.cwa(&["check", "--json"]).await;
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let about = |check: &str| -> Vec<Value> {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["check"] == json!(check))
            .filter(|c| {
                c["subject"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("+13658253552")
            })
            .cloned()
            .collect()
    };
    let one = about("one-inbound-trunk");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["passed"], json!(true), "{one:?}");
    assert_eq!(
        about("dispatch-agent").len(),
        2,
        "each trunk on to its rule"
    );

    // The second trunk taking any caller conflicts with the first: validate refuses it.
    ctx.edit_lines_toml(
        "allowed_numbers = [\"+12064201234\"]\n",
        "allowed_numbers = []\n",
    );
    validate_fails(&ctx, "is on two inbound trunks").await;
}
