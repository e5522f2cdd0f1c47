//! `cwa drift` end to end: hand edits made through the sandbox's real endpoints are reported
//! with the right class and exit 2, and `cwa apply` fixes them (drift then exits 0).

use crate::common::{assert_exit, stderr, stdout, Ctx};
use cwa::drift::DriftReport;
use cwa::sandbox::{LIVEKIT_API_KEY, LIVEKIT_API_SECRET};
use livekit_api::services::sip::{ListSIPDispatchRuleFilter, SIPClient};
use livekit_protocol as proto;
use serde_json::{json, Value};

const MEDHANIALEM_TRUNK: &str = "ST_LWgmiBSwTk7P";
const MEDHANIALEM_RULE: &str = "SDR_4hTq8WnZpK3m";
const TEST_RULE: &str = "SDR_Wpyno7GDNQqg";
const MELVINDALE_NUMBER_ID: &str = "2926113000000000002";
const INBOUND_V2: &str = "2925216093662349036";

fn sip(ctx: &Ctx) -> SIPClient {
    SIPClient::with_api_key(
        &ctx.sb.sandbox.base_url(),
        LIVEKIT_API_KEY,
        LIVEKIT_API_SECRET,
    )
}

/// The repository's declaration, imported and applied: live matches lines.toml and state.
async fn converged() -> Ctx {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["import"]).await, 0);
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    ctx
}

async fn drift(ctx: &Ctx, code: i32) -> DriftReport {
    let out = ctx.cwa(&["drift", "--json"]).await;
    assert_exit(&out, code);
    serde_json::from_str(&stdout(&out)).expect("a drift report")
}

async fn set_trunk_auth(ctx: &Ctx) {
    sip(ctx)
        .update_sip_inbound_trunk(
            MEDHANIALEM_TRUNK.into(),
            proto::SipInboundTrunkUpdate {
                auth_username: Some("someone".into()),
                auth_password: Some("else".into()),
                ..Default::default()
            },
        )
        .await
        .expect("the trunk takes auth");
}

async fn remove_rule_agents(ctx: &Ctx, rule_id: &str) {
    let client = sip(ctx);
    let mut rule = client
        .list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All)
        .await
        .expect("rules list")
        .into_iter()
        .find(|r| r.sip_dispatch_rule_id == rule_id)
        .expect("the rule is live");
    rule.room_config = None;
    client
        .update_sip_dispatch_rule_replace(rule_id.into(), rule)
        .await
        .expect("the rule is replaced");
}

async fn move_number(ctx: &Ctx, number_id: &str, connection: &str) {
    let (status, body) = crate::common::sandbox::send(
        ctx.sb
            .telnyx(
                reqwest::Method::PATCH,
                &format!("/phone_numbers/{number_id}"),
            )
            .json(&json!({"connection_id": connection})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn changed<'a>(report: &'a DriftReport, address: &str, field: &str) -> &'a cwa::drift::Changed {
    report
        .changed
        .iter()
        .find(|c| c.address.to_string() == address && c.field == field)
        .unwrap_or_else(|| panic!("no change of {address} {field} in {report:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edits_are_changed_drift_and_apply_fixes_them() {
    let ctx = converged().await;
    let clean = drift(&ctx, 0).await;
    assert!(!clean.drift, "{clean:#?}");

    set_trunk_auth(&ctx).await;
    remove_rule_agents(&ctx, MEDHANIALEM_RULE).await;
    move_number(&ctx, MELVINDALE_NUMBER_ID, INBOUND_V2).await;

    let report = drift(&ctx, 2).await;
    assert!(
        report.missing.is_empty() && report.unmanaged.is_empty(),
        "{report:#?}"
    );
    let auth = changed(
        &report,
        "livekit_inbound_trunk.medhanialem",
        "auth_username",
    );
    assert_eq!(auth.declared, json!(""));
    assert_eq!(auth.live, json!("someone"));
    assert_eq!(auth.id.as_deref(), Some(MEDHANIALEM_TRUNK));
    let password = changed(
        &report,
        "livekit_inbound_trunk.medhanialem",
        "auth_password",
    );
    assert!(password.sensitive);
    assert!(!serde_json::to_string(&report).unwrap().contains("\"else\""));
    let agents = changed(&report, "livekit_dispatch_rule.medhanialem", "agents");
    assert_eq!(agents.live, json!([]));
    assert_eq!(
        agents.declared[0]["agent_name"],
        json!("churchwiseai-voice")
    );
    let moved = changed(&report, "telnyx_number.melvindale", "connection");
    assert_eq!(moved.declared, json!("telnyx_fqdn_connection.livekit"));
    assert_eq!(
        moved.live,
        json!("telnyx_fqdn_connection.livekit_inbound_v2")
    );

    let human = ctx.cwa(&["drift"]).await;
    assert_exit(&human, 2);
    let text = stdout(&human);
    assert!(text.contains("auth_username: \"\" -> someone"), "{text}");
    assert!(
        text.contains("auth_password_env: (none) -> (sensitive)"),
        "{text}"
    );

    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let after = drift(&ctx, 0).await;
    assert!(!after.drift, "{after:#?}");
    ctx.assert_protected_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_owned_rule_is_missing_and_a_hand_made_trunk_is_unmanaged() {
    let ctx = converged().await;
    sip(&ctx)
        .delete_sip_dispatch_rule(TEST_RULE)
        .await
        .expect("the rule is deleted");
    let made = sip(&ctx)
        .create_sip_inbound_trunk(
            "Hand made".into(),
            vec!["+13125550199".into()],
            Default::default(),
        )
        .await
        .expect("a trunk is made by hand");

    let report = drift(&ctx, 2).await;
    assert_eq!(report.missing.len(), 1, "{report:#?}");
    let missing = &report.missing[0];
    assert_eq!(
        missing.address.to_string(),
        "livekit_dispatch_rule.twilio_test"
    );
    assert!(missing.owned, "state owned it: {missing:?}");
    assert_eq!(report.unmanaged.len(), 1, "{report:#?}");
    assert_eq!(report.unmanaged[0].id, made.sip_trunk_id);
    assert!(report.changed.is_empty(), "{report:#?}");

    let md = ctx.cwa(&["drift", "--markdown"]).await;
    assert_exit(&md, 2);
    let text = stdout(&md);
    assert!(
        text.contains("#### Missing") && text.contains("#### Unmanaged"),
        "{text}"
    );
    assert!(text.contains(&made.sip_trunk_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_on_an_invalid_declaration_is_an_error() {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml("version = 1\n[church.x]\nname = 1\n");
    let out = ctx.cwa(&["drift"]).await;
    assert_exit(&out, 1);
    let json: Result<Value, _> = serde_json::from_str(&stdout(&out));
    assert!(json.is_err(), "no report is printed on error");
}

/// Issue 15 finding 5: on the repository's own lines.toml, applied, drift is clean: the
/// connection left out on purpose is named under `[ignore]`, and the report says so. Without
/// the entry, the same object is unmanaged drift again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_lines_toml_drifts_clean_once_applied() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    let report = drift(&ctx, 0).await;
    assert!(!report.drift, "{report:#?}");
    assert_eq!(report.ignored.len(), 1, "{report:#?}");
    assert_eq!(report.ignored[0].key, INBOUND_V2);
    let human = stdout(&ctx.cwa(&["drift"]).await);
    assert!(human.starts_with("No drift"), "{human}");
    assert!(
        human.contains("ignored ([ignore] in lines.toml)"),
        "{human}"
    );

    remove_the_ignore_entry(&ctx);
    let report = drift(&ctx, 2).await;
    assert_eq!(report.unmanaged.len(), 1, "{report:#?}");
    assert_eq!(report.unmanaged[0].id, INBOUND_V2);
    assert!(report.changed.is_empty() && report.missing.is_empty());
}

/// Issue 15 finding 5: a church removed keeps its number (never released); plan says "No
/// changes" afterwards, and drift agrees: the number is listed as kept, not as drift, with
/// the reason `[kept]` gives once lines.toml declares it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_number_is_not_drift_and_kept_declares_why() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let text = ctx.lines_toml();
    let start = text.find("[church.melvindale]").unwrap();
    let end = start + text[start..].find("\n# ---").unwrap();
    ctx.set_lines_toml(&format!("{}{}", &text[..start], &text[end..]));
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let plan = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
    assert_exit(&plan, 0);
    assert!(stdout(&plan).contains("No changes"), "{}", stdout(&plan));
    let report = drift(&ctx, 0).await;
    assert_eq!(report.kept.len(), 1, "{report:#?}");
    assert_eq!(report.kept[0].number, "+17473897673");
    assert_eq!(report.kept[0].declared, None);

    let text = ctx.lines_toml();
    ctx.set_lines_toml(&text.replace(
        "[ignore]\n",
        "[kept]\n\"+17473897673\" = \"Melvindale left; the number stays ours\"\n\n[ignore]\n",
    ));
    let report = drift(&ctx, 0).await;
    assert_eq!(
        report.kept[0].declared.as_deref(),
        Some("Melvindale left; the number stays ours")
    );
    let human = stdout(&ctx.cwa(&["drift"]).await);
    assert!(human.contains("[kept]: Melvindale left"), "{human}");
}

/// An `[ignore]` entry must say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignore_entry_without_a_reason_is_refused() {
    let ctx = Ctx::runbook().await;
    let text = ctx.lines_toml();
    ctx.set_lines_toml(&text.replace("[ignore]\n", "[ignore]\n\"ST_nothing\" = \"\"\n"));
    let out = ctx.cwa(&["drift"]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("[ignore]"), "{}", stderr(&out));
}

/// Issue 14 (views): `cwa plan` lists an unmanaged object that `[ignore]` names as ignored,
/// with the entry's reason, in every view (human, Markdown, JSON `unmanaged[].ignored`); an
/// unmanaged object no entry names carries no mark. Decided: the mark rides on the plan value
/// (`plan::Unmanaged::ignored`), set by the planner with the keys drift leaves out by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_marks_an_ignored_unmanaged_object_as_ignored() {
    let ctx = Ctx::runbook().await;
    let reason = "LiveKit Inbound v2: seed 001's 'working connection'";
    let human = stdout(&ctx.cwa(&["plan"]).await);
    let line = human
        .lines()
        .find(|l| l.contains(INBOUND_V2))
        .unwrap_or_else(|| panic!("{INBOUND_V2} is listed as unmanaged: {human}"));
    assert!(line.contains(&format!("(ignored: {reason}")), "{line}");
    let md = stdout(&ctx.cwa(&["plan", "--markdown"]).await);
    let line = md.lines().find(|l| l.contains(INBOUND_V2)).expect("listed");
    assert!(line.contains("(ignored: LiveKit Inbound v2"), "{line}");
    let json: Value = serde_json::from_str(&stdout(&ctx.cwa(&["plan", "--json"]).await)).unwrap();
    let unmanaged = json["unmanaged"].as_array().expect("unmanaged");
    let entry = unmanaged
        .iter()
        .find(|u| u["id"] == INBOUND_V2)
        .expect("listed");
    assert!(
        entry["ignored"]
            .as_str()
            .is_some_and(|r| r.starts_with(reason)),
        "{entry}"
    );

    remove_the_ignore_entry(&ctx);
    let human = stdout(&ctx.cwa(&["plan"]).await);
    let line = human
        .lines()
        .find(|l| l.contains(INBOUND_V2))
        .expect("listed");
    assert!(!line.contains("ignored"), "{line}");
    let json: Value = serde_json::from_str(&stdout(&ctx.cwa(&["plan", "--json"]).await)).unwrap();
    let unmanaged = json["unmanaged"].as_array().expect("unmanaged");
    let entry = unmanaged
        .iter()
        .find(|u| u["id"] == INBOUND_V2)
        .expect("listed");
    assert!(entry.get("ignored").is_none(), "{entry}");
}

/// Takes the repository's `[ignore]` entry for LiveKit Inbound v2 out of lines.toml.
fn remove_the_ignore_entry(ctx: &Ctx) {
    let text = ctx.lines_toml();
    let entry = text
        .lines()
        .find(|l| l.starts_with(&format!("\"{INBOUND_V2}\"")))
        .expect("the [ignore] entry");
    ctx.set_lines_toml(&text.replace(entry, ""));
}
