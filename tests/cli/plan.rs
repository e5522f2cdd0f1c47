//! `cwa plan` end to end: the real binary against the sandbox's runbook world over HTTP.

use crate::common::{assert_exit, stderr, stdout, Ctx, PROTECTED_TRUNK};
use serde_json::{json, Value};

fn redact_json(mut plan: Value) -> Value {
    plan["fingerprints"] = json!("[fingerprints]");
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_output_format_of_the_runbook_world() {
    let ctx = Ctx::runbook().await;
    let human = ctx.cwa(&["plan"]).await;
    assert_exit(&human, 0);
    cwa_snapshot!("runbook_human", stdout(&human));

    let json = ctx.cwa(&["plan", "--json"]).await;
    assert_exit(&json, 0);
    let plan: Value = serde_json::from_str(&stdout(&json)).expect("plan --json is JSON");
    assert_eq!(plan["format_version"], "1.1");
    for key in ["changes", "unmanaged", "checks", "summary", "errors"] {
        assert!(plan.get(key).is_some(), "plan --json has no {key}");
    }
    let change = &plan["changes"][0];
    for key in [
        "address",
        "kind",
        "action",
        "id",
        "church",
        "protected",
        "fields",
    ] {
        assert!(change.get(key).is_some(), "a change has no {key}");
    }
    cwa_snapshot!(json "runbook_json", redact_json(plan));

    let markdown = ctx.cwa(&["plan", "--markdown"]).await;
    assert_exit(&markdown, 0);
    let md = stdout(&markdown);
    assert!(
        md.contains("| action | count |") && md.contains("```mermaid") && md.contains("<details>")
    );
    cwa_snapshot!("runbook_markdown", md);

    let dot = ctx.cwa(&["plan", "--dot"]).await;
    assert_exit(&dot, 0);
    cwa_snapshot!("runbook_dot", stdout(&dot));
    assert!(ctx.writes().is_empty(), "plan wrote: {:?}", ctx.writes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_trunk_holding_a_declared_number_is_adopted_not_duplicated() {
    let ctx = Ctx::runbook().await;
    let out = ctx.cwa(&["plan", "--json"]).await;
    assert_exit(&out, 0);
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let trunk = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "livekit_inbound_trunk.medhanialem")
        .expect("the church's trunk is planned");
    assert_eq!(trunk["action"], "adopt");
    assert_eq!(trunk["id"], "ST_LWgmiBSwTk7P");
    assert_eq!(
        plan["summary"].get("create"),
        None,
        "nothing is created: {}",
        plan["summary"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detailed_exitcode_and_refresh_false() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 2);
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);

    // A pull request from a fork has no credentials: plan against state alone.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cwa"));
    cmd.current_dir(ctx.work.path())
        .args(["plan", "--refresh=false", "--detailed-exitcode"])
        .env_clear()
        .env("NO_COLOR", "1");
    let out = cmd.output().unwrap();
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("state/ only"));
}

/// Each way lines.toml could write to the protected trunk is refused: exit 1, a diagnostic at
/// the responsible line, and no write request at all.
async fn assert_refused(ctx: &Ctx, line_hint: &str) {
    let writes_before = ctx.writes().len();
    for args in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let out = ctx.cwa(args).await;
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("protected"), "no protected diagnostic:\n{err}");
        assert!(
            err.contains(line_hint),
            "diagnostic does not point at {line_hint:?}:\n{err}"
        );
    }
    assert_eq!(
        ctx.writes().len(),
        writes_before,
        "a refused plan wrote: {:?}",
        ctx.writes()
    );
    ctx.assert_protected_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_the_protected_trunk_is_refused() {
    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml("name = \"Twilio Main\"", "name = \"Twilio Main (renamed)\"");
    assert_refused(&ctx, "[livekit.inbound_trunk.twilio_main]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_number_onto_or_off_the_protected_trunk_is_refused() {
    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml(
        "numbers = [\"+18886030316\", \"+14696152221\", \"+13658254095\"]",
        "numbers = [\"+18886030316\", \"+13658254095\"]",
    );
    ctx.edit_lines_toml(
        "numbers = [\"+13658253552\"]",
        "numbers = [\"+13658253552\", \"+14696152221\"]",
    );
    assert_refused(&ctx, "lines.toml:").await;

    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml(
        "numbers = [\"+13658253552\"]",
        "numbers = [\"+14149990002\"]",
    );
    ctx.edit_lines_toml(
        "numbers = [\"+18886030316\", \"+14696152221\", \"+13658254095\"]",
        "numbers = [\"+18886030316\", \"+14696152221\", \"+13658254095\", \"+13658253552\"]",
    );
    assert_refused(&ctx, "[livekit.inbound_trunk.twilio_main]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repointing_a_dispatch_rule_away_from_the_protected_trunk_is_refused() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    // Even with the rule itself no longer locked, moving it off the locked trunk is a write
    // that breaks the locked trunk's routing.
    ctx.edit_lines_toml(
        "\"SDR_cYzx7sAkUTvx\" = \"Dispatch rule",
        "# \"SDR_cYzx7sAkUTvx\" = \"Dispatch rule",
    );
    ctx.edit_lines_toml(
        "trunks = [\"livekit_inbound_trunk.twilio_main\"]",
        "trunks = [\"livekit_inbound_trunk.overflow\"]",
    );
    let text = ctx.lines_toml();
    ctx.set_lines_toml(&format!(
        "{text}\n[livekit.inbound_trunk.overflow]\nname = \"Overflow\"\nnumbers = [\"+14149990001\"]\n\n\
         [livekit.dispatch_rule.main_new]\nname = \"New Main Dispatch\"\ntrunks = [\"livekit_inbound_trunk.twilio_main\"]\n\
         type = \"individual\"\nroom_prefix = \"call-\"\nagents = [{{ name = \"churchwiseai-voice\" }}]\n"
    ));
    // The rule that now serves the locked trunk is `main_new`: identity follows the trunk,
    // so the diagnostic points at whichever declaration would write to the locked rule.
    assert_refused(&ctx, "[livekit.dispatch_rule.main_new]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_protection_from_lines_toml_does_not_unlock() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert!(
        ctx.state().is_protected(PROTECTED_TRUNK),
        "state remembers the protection"
    );

    ctx.edit_lines_toml(
        "\"ST_Xa3Bp9aixRFP\" = \"Main Twilio trunk",
        "# \"ST_Xa3Bp9aixRFP\" = \"Main Twilio trunk",
    );
    ctx.edit_lines_toml("name = \"Twilio Main\"", "name = \"Renamed\"");
    assert_refused(&ctx, "[livekit.inbound_trunk.twilio_main]").await;

    // Deleting the whole declaration: the owned, protected trunk would be deleted. Refused.
    let text = ctx.lines_toml();
    let start = text.find("[livekit.inbound_trunk.twilio_main]").unwrap();
    let end = text.find("[livekit.inbound_trunk.twilio_test]").unwrap();
    ctx.set_lines_toml(&format!("{}{}", &text[..start], &text[end..]).replace(
        "trunks = [\"livekit_inbound_trunk.twilio_main\"]",
        "trunks = [\"livekit_inbound_trunk.twilio_test\"]\nnumbers = [\"+10000000000\"]",
    ));
    let out = ctx.cwa(&["plan"]).await;
    assert_exit(&out, 1);
    ctx.assert_protected_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_made_by_hand_is_unmanaged_and_never_deleted() {
    let ctx = Ctx::runbook().await;
    let (status, body) = crate::common::sandbox::send(ctx.sb.twirp_json(
        "CreateSIPInboundTrunk",
        &json!({"trunk": {"name": "made by hand", "numbers": ["+13125550199"]}}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["sip_trunk_id"].as_str().unwrap().to_string();

    let out = ctx.cwa(&["plan", "--json"]).await;
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        plan["unmanaged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == id.as_str()),
        "{id} is not reported unmanaged: {}",
        plan["unmanaged"]
    );
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let writes_to_it: Vec<_> = ctx
        .writes()
        .into_iter()
        .filter(|w| w.resource_id.as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(
        writes_to_it.len(),
        1,
        "only its creation by hand: {writes_to_it:?}"
    );
    let world = ctx.sb.world_json().await;
    assert!(
        world.to_string().contains(&id),
        "the unmanaged trunk is still live"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_is_applied_exactly_or_refused_when_stale() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["plan", "--out", "plan.json"]).await, 0);
    let saved = std::fs::read_to_string(ctx.path("plan.json")).unwrap();
    assert!(
        !saved.contains("sandbox-outbound-secret"),
        "a secret leaked into the plan file"
    );

    // The world moves: someone edits a trunk by hand.
    let (status, _) = crate::common::sandbox::send(ctx.sb.twirp_json(
        "UpdateSIPInboundTrunk",
        &json!({"sip_trunk_id": "ST_LWgmiBSwTk7P", "update": {"name": "edited by hand"}}),
    ))
    .await;
    assert_eq!(status, 200);
    let out = ctx.cwa(&["apply", "plan.json"]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));

    assert_exit(&ctx.cwa(&["plan", "--out", "plan.json"]).await, 0);
    assert_exit(&ctx.cwa(&["apply", "plan.json"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);

    // A plan file edited by hand is refused.
    assert_exit(&ctx.cwa(&["plan", "--out", "plan.json"]).await, 0);
    let edited = std::fs::read_to_string(ctx.path("plan.json"))
        .unwrap()
        .replace("\"no-op\"", "\"delete\"");
    std::fs::write(ctx.path("plan.json"), edited).unwrap();
    assert_exit(&ctx.cwa(&["apply", "plan.json"]).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_limits_the_plan_to_a_resource_and_its_dependencies() {
    let ctx = Ctx::runbook().await;
    let out = ctx
        .cwa(&[
            "plan",
            "--json",
            "--target",
            "livekit_dispatch_rule.melvindale",
        ])
        .await;
    assert_exit(&out, 0);
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut addresses: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    addresses.sort();
    assert_eq!(
        addresses,
        [
            "livekit_dispatch_rule.melvindale",
            "livekit_inbound_trunk.melvindale"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mass_deletion_needs_an_explicit_flag() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let text = ctx.lines_toml();
    let start = text.find("[church.medhanialem]").unwrap();
    let end = text.find("[church.melvindale]").unwrap();
    ctx.set_lines_toml(
        &format!("{}{}", &text[..start], &text[end..])
            .replace("max_delete_share = 0.25", "max_delete_share = 0.05"),
    );
    let out = ctx.cwa(&["plan"]).await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("--allow-mass-change"),
        "{}",
        stderr(&out)
    );
    let out = ctx.cwa(&["plan", "--allow-mass-change"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("Numbers kept, not released"),
        "the number is kept, not released:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_for_every_trunk_would_route_the_protected_trunk_and_is_refused() {
    let ctx = Ctx::runbook().await;
    let text = ctx.lines_toml();
    ctx.set_lines_toml(&format!(
        "{text}\n[livekit.dispatch_rule.everyone]\nname = \"Catch-all\"\ntrunks = []\n\
         type = \"individual\"\nroom_prefix = \"any-\"\nagents = [{{ name = \"churchwiseai-voice\" }}]\n"
    ));
    assert_refused(&ctx, "[livekit.dispatch_rule.everyone]").await;
}

/// Issue 15 finding 7: swapping two churches' numbers moves six objects state already owns
/// between addresses and renames two trunks and two rules. The summary counts every write:
/// each change that writes fields counts as an update, an object moving between addresses as
/// a move, and only objects new to state as adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_counts_every_write_when_two_churches_swap_numbers() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let text = ctx
        .lines_toml()
        .replace("number = \"+14144007103\"", "number = \"SWAP\"")
        .replace("number = \"+17473897673\"", "number = \"+14144007103\"")
        .replace("number = \"SWAP\"", "number = \"+17473897673\"");
    ctx.set_lines_toml(&text);
    let out = ctx.cwa(&["plan", "--json"]).await;
    assert_exit(&out, 0);
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let changes = plan["changes"].as_array().unwrap();
    let count = |pred: &dyn Fn(&Value) -> bool| changes.iter().filter(|c| pred(c)).count();
    let writes_fields = |c: &Value| {
        matches!(c["action"].as_str(), Some("update" | "adopt"))
            && !c["fields"].as_array().unwrap().is_empty()
    };
    let moves = |c: &Value| c["action_reason"]["code"] == "owned-as";
    let new_to_state = |c: &Value| c["action"] == "adopt" && !moves(c);
    assert_eq!(
        count(&moves),
        6,
        "two numbers, trunks and rules move: {plan}"
    );
    let renamed = count(&writes_fields);
    assert!(renamed >= 4, "two trunks and two rules are renamed: {plan}");
    assert_eq!(
        plan["summary"]["update"],
        json!(renamed),
        "{}",
        plan["summary"]
    );
    assert_eq!(plan["summary"]["move"], json!(6), "{}", plan["summary"]);
    assert_eq!(
        plan["summary"]["adopt"].as_u64().unwrap_or(0) as usize,
        count(&new_to_state),
        "{}",
        plan["summary"]
    );

    let human = stdout(&ctx.cwa(&["plan"]).await);
    let line = human.lines().find(|l| l.starts_with("Plan: ")).unwrap();
    assert!(line.contains(&format!("{renamed} to update")), "{line}");
    assert!(line.contains("6 to move"), "{line}");
    assert!(line.contains("0 to adopt"), "{line}");
    for c in changes.iter().filter(|c| moves(c)) {
        assert!(
            !c["reason"].as_str().unwrap().contains("not yet in state"),
            "{c}"
        );
    }
    let md = stdout(&ctx.cwa(&["plan", "--markdown"]).await);
    assert!(md.contains(&format!("| `~` update | {renamed} |")), "{md}");
    assert!(md.contains("move | 6 |"), "{md}");
}

/// GitHub Actions gives an empty string for an undefined secret (and a fork's pull request sees
/// every secret empty): an empty CWA_STATE_URL means the state directory, said on stderr, not a
/// usage error about a flag nobody typed; a whitespace-only one is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_cwa_state_url_means_the_state_directory() {
    let ctx = Ctx::runbook().await;
    let unset = ctx.cwa(&["plan", "--json"]).await;
    assert_exit(&unset, 0);
    for empty in ["", "  "] {
        let out = ctx
            .cwa_env(&["plan", "--json"], &[("CWA_STATE_URL", empty)])
            .await;
        assert_exit(&out, 0);
        assert!(
            stderr(&out).contains("CWA_STATE_URL is set but empty"),
            "no notice for CWA_STATE_URL={empty:?}: {}",
            stderr(&out)
        );
        let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let same: Value = serde_json::from_str(&stdout(&unset)).unwrap();
        assert_eq!(plan["changes"], same["changes"], "CWA_STATE_URL={empty:?}");
    }
}
