//! The hard lock under hostile input (issue 12, classes 1-4): edited plan files, a protected
//! trunk that is not declared, protected ids that are near misses, protection memory edited
//! by hand, and the Twilio path upstream of the protected trunk. The real binary against the
//! sandbox over HTTP; every case asserts that nothing was written.

use std::process::Output;

use crate::common::{assert_exit, stderr, stdout, Ctx, PROTECTED_TRUNK};
use cwa::model::{Kind, ProviderName, Ref, Spec};
use cwa::providers::{connect, ClientOptions, Env, ProviderError, WriteRequest};
use cwa::state::StateStore;
use serde_json::Value;

const PROTECTED_RULE: &str = "SDR_cYzx7sAkUTvx";
const PROTECTED_LINE: &str = "\"ST_Xa3Bp9aixRFP\" = \"Main Twilio trunk";

/// A rule whose callers would hear a PIN prompt, on the protected trunk.
const PIN_RULE: &str = "\n[livekit.dispatch_rule.zz_pin]\nname = \"PIN Sales\"\n\
    trunks = [\"livekit_inbound_trunk.twilio_main\"]\ntype = \"direct\"\nroom_name = \"pin-room\"\n\
    pin = \"1234\"\nagents = [{ name = \"churchwiseai-voice\" }]\n";

/// A rule naming no trunk: it routes every trunk, the protected one included.
const WILDCARD_RULE: &str = "\n[livekit.dispatch_rule.zz_everyone]\nname = \"Catch-all\"\n\
    trunks = []\ntype = \"individual\"\nroom_prefix = \"any-\"\n\
    agents = [{ name = \"churchwiseai-voice\" }]\n";

fn append(ctx: &Ctx, text: &str) {
    ctx.set_lines_toml(&format!("{}{text}", ctx.lines_toml()));
}

/// Runs `args`, expects exit 1 and that the sandbox saw no write at all.
async fn refused_without_writes(ctx: &Ctx, case: &str, args: &[&str]) -> Output {
    let before = ctx.writes().len();
    let out = ctx.cwa(args).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{case}: `cwa {}` must be refused\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        stdout(&out),
        stderr(&out)
    );
    let writes = ctx.writes();
    assert_eq!(
        writes.len(),
        before,
        "{case}: a refused command wrote: {:?}",
        &writes[before..]
    );
    out
}

/// The plan as `cwa plan --json` prints it (refused or not).
async fn plan_json(ctx: &Ctx, extra: &[&str]) -> Value {
    let mut args = vec!["plan", "--json"];
    args.extend_from_slice(extra);
    let out = ctx.cwa(&args).await;
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "plan --json prints a plan ({e})\n--- stdout\n{}\n--- stderr\n{}",
            stdout(&out),
            stderr(&out)
        )
    })
}

fn write_plan(ctx: &Ctx, plan: &Value) {
    std::fs::write(
        ctx.path("p.json"),
        serde_json::to_string_pretty(plan).unwrap(),
    )
    .unwrap();
}

/// Every dispatch rule live in the sandbox, as (id, trunk ids).
async fn live_rules(ctx: &Ctx) -> Vec<(String, Vec<String>)> {
    let (status, body) = crate::common::sandbox::send(
        ctx.sb
            .twirp_json("ListSIPDispatchRule", &serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let trunks = r["trunk_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
            (
                r["sip_dispatch_rule_id"].as_str().unwrap_or("").to_string(),
                trunks,
            )
        })
        .collect()
}

/// No rule but the protected one routes the protected trunk (by naming it or naming none).
async fn assert_protected_routing_unchanged(ctx: &Ctx) {
    let routing: Vec<_> = live_rules(ctx)
        .await
        .into_iter()
        .filter(|(_, trunks)| trunks.is_empty() || trunks.iter().any(|t| t == PROTECTED_TRUNK))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(routing, vec![PROTECTED_RULE.to_string()]);
}

// ----- class 1: a saved plan is trusted -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_file_whose_errors_were_deleted_writes_nothing() {
    let ctx = Ctx::runbook().await;
    append(&ctx, PIN_RULE);
    append(&ctx, WILDCARD_RULE);
    let mut plan = plan_json(&ctx, &[]).await;
    assert!(
        !plan["errors"].as_array().unwrap().is_empty(),
        "the plan is refused"
    );
    plan["errors"] = Value::Array(vec![]);
    write_plan(&ctx, &plan);
    let out = refused_without_writes(&ctx, "errors deleted", &["apply", "p.json"]).await;
    assert!(stderr(&out).contains("protected"), "{}", stderr(&out));
    assert_protected_routing_unchanged(&ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_injected_into_a_plan_file_writes_nothing() {
    let ctx = Ctx::runbook().await;
    let mut plan = plan_json(&ctx, &[]).await;
    assert!(plan["errors"].as_array().unwrap().is_empty());
    let rule = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "livekit_dispatch_rule.medhanialem")
        .cloned()
        .expect("the church's rule is planned");
    let mut injected = rule.clone();
    injected["address"] = "livekit_dispatch_rule.zz_injected".into();
    injected["action"] = "create".into();
    injected["id"] = Value::Null;
    injected["before"] = Value::Null;
    injected["after"]["trunks"] = serde_json::json!([PROTECTED_TRUNK]);
    plan["changes"].as_array_mut().unwrap().push(injected);
    write_plan(&ctx, &plan);
    let out = refused_without_writes(&ctx, "change injected", &["apply", "p.json"]).await;
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));
    assert_protected_routing_unchanged(&ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_change_refusal_removed_from_a_plan_file_writes_nothing() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    // Dropping both churches deletes their trunks and rules: more than 5% of what cwa owns.
    ctx.edit_lines_toml("max_delete_share = 0.25", "max_delete_share = 0.05");
    let text = ctx.lines_toml();
    let start = text.find("[church.medhanialem]").unwrap();
    let end = start + text[start..].find("# ----").unwrap();
    ctx.set_lines_toml(&format!("{}{}", &text[..start], &text[end..]));

    let mut plan = plan_json(&ctx, &[]).await;
    let codes: Vec<&str> = plan["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert!(codes.contains(&"mass-change"), "{codes:?}");
    plan["errors"] = Value::Array(vec![]);
    write_plan(&ctx, &plan);
    refused_without_writes(&ctx, "mass-change refusal removed", &["apply", "p.json"]).await;

    // A plan saved with --allow-mass-change is no authority for an apply without it.
    let out = ctx
        .cwa(&["plan", "--allow-mass-change", "--out", "p.json"])
        .await;
    assert_exit(&out, 0);
    refused_without_writes(
        &ctx,
        "threshold flag only at plan time",
        &["apply", "p.json"],
    )
    .await;
    let rules = live_rules(&ctx).await.len();
    assert_exit(
        &ctx.cwa(&["apply", "--allow-mass-change", "p.json"]).await,
        0,
    );
    assert!(
        live_rules(&ctx).await.len() < rules,
        "with the flag at apply, it runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_object_the_plan_does_not_write_that_moved_is_a_warning_not_a_refusal() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["plan", "--out", "p.json"]).await, 0);
    let (status, body) = crate::common::sandbox::send(ctx.sb.twirp_json(
        "CreateSIPInboundTrunk",
        &serde_json::json!({"trunk": {"name": "made by hand", "numbers": ["+13125550199"]}}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let out = ctx.cwa(&["apply", "p.json"]).await;
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains("the plan does not write it"),
        "{err}"
    );
}

// ----- class 2: the indirect guard needs an address -------------------------------------

/// The runbook's lines.toml without the protected trunk, its rule and the Twilio numbers
/// that feed it declared.
fn undeclared_protected_trunk(text: &str) -> String {
    let cut = |text: &str, from: &str, to: &str| {
        let start = text.find(from).unwrap();
        let end = start + text[start..].find(to).unwrap();
        format!("{}{}", &text[..start], &text[end..])
    };
    let text = cut(
        text,
        "[livekit.inbound_trunk.twilio_main]",
        "[livekit.inbound_trunk.twilio_test]",
    );
    let text = cut(
        &text,
        "[livekit.dispatch_rule.twilio_main]",
        "[livekit.dispatch_rule.twilio_test]",
    );
    // The legacy Twilio numbers reach LiveKit only through the protected trunk.
    text[..text.find("[twilio.trunk.main]").unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeclared_protected_trunk_is_routed_by_no_new_rule_on_a_fresh_account() {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&undeclared_protected_trunk(&ctx.lines_toml()));
    append(&ctx, WILDCARD_RULE);
    assert!(!ctx.path("state/state.json").exists(), "a fresh account");
    for args in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let out = refused_without_writes(&ctx, "trunks = []", args).await;
        let err = stderr(&out);
        assert!(
            err.contains("routes every trunk") && err.contains("zz_everyone"),
            "{err}"
        );
    }
    assert_protected_routing_unchanged(&ctx).await;
}

/// The HTTP layer's guard decides from the request alone, with nothing declared: after a
/// refresh, a create of a rule naming no trunk or the protected trunk never leaves the
/// process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_guard_refuses_routing_the_protected_trunk_before_any_request() {
    let ctx = Ctx::runbook().await;
    let env = Env::from_pairs(ctx.sb.sandbox.env());
    let opts = ClientOptions {
        protected_ids: vec![format!(" {PROTECTED_TRUNK} ")],
        twilio_writes: true,
        ..ClientOptions::default()
    };
    let providers = connect(&env, &opts, &ProviderName::ALL).unwrap();
    let lk = providers.livekit.clone().unwrap();
    let live = lk.refresh().await.unwrap();
    providers.lock.learn(&live);
    let mut rule = live
        .iter()
        .find(|o| o.id == "SDR_Wpyno7GDNQqg")
        .unwrap()
        .spec
        .clone();
    let before = ctx.writes().len();
    for trunks in [vec![], vec![Ref::Id(PROTECTED_TRUNK.into())]] {
        if let Spec::LivekitDispatchRule(r) = &mut rule {
            r.trunks = trunks;
        }
        let req = WriteRequest {
            object: "livekit_dispatch_rule.x".into(),
            spec: rule.clone(),
            reference: "cwa-test".into(),
        };
        let err = lk.create(&req).await.expect_err("refused");
        assert!(matches!(err, ProviderError::Protected { .. }), "{err}");
        let err = lk
            .update("SDR_Wpyno7GDNQqg", &rule, &req)
            .await
            .expect_err("refused");
        assert!(matches!(err, ProviderError::Protected { .. }), "{err}");
    }
    let err = lk
        .delete(Kind::LivekitDispatchRule, PROTECTED_RULE)
        .await
        .expect_err("the rule that routes the protected trunk is locked with it");
    assert!(matches!(err, ProviderError::Protected { .. }), "{err}");
    assert_eq!(ctx.writes().len(), before, "{:?}", ctx.writes());
}

// ----- class 3: a protected id that matches nothing -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_id_that_matches_nothing_live_is_an_error_with_its_near_misses() {
    let cases = [
        ("case changed", "st_xa3bp9aixrfp"),
        ("Cyrillic a", "ST_X\u{0430}3Bp9aixRFP"),
        ("Greek capital chi", "ST_\u{03A7}a3Bp9aixRFP"),
        ("zero-width space", "ST_Xa3Bp9\u{200B}aixRFP"),
        (
            "an address instead of the id",
            "livekit_inbound_trunk.twilio_main",
        ),
    ];
    for (case, id) in cases {
        let ctx = Ctx::runbook().await;
        ctx.edit_lines_toml("\"ST_Xa3Bp9aixRFP\" = ", &format!("\"{id}\" = "));
        ctx.edit_lines_toml("name = \"Twilio Main\"", "name = \"Twilio Main (renamed)\"");
        for args in [&["plan"][..], &["apply", "--auto-approve"][..]] {
            let out = refused_without_writes(&ctx, case, args).await;
            let err = stderr(&out);
            assert!(err.contains("matches no live object"), "{case}: {err}");
            assert!(
                err.contains(PROTECTED_TRUNK),
                "{case}: the help names the near miss: {err}"
            );
        }
        let out = ctx.cwa(&["validate"]).await;
        assert_exit(&out, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_id_with_surrounding_whitespace_is_trimmed_at_plan_time() {
    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml("\"ST_Xa3Bp9aixRFP\" = ", "\"  ST_Xa3Bp9aixRFP\\t\" = ");
    // The plan itself sees the lock: no plan that apply would refuse halfway.
    let plan = plan_json(&ctx, &[]).await;
    let trunk = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == PROTECTED_TRUNK)
        .unwrap()
        .clone();
    assert_eq!(trunk["action"], "verify", "{trunk}");
    assert!(
        plan["errors"].as_array().unwrap().is_empty(),
        "{}",
        plan["errors"]
    );
    ctx.edit_lines_toml("name = \"Twilio Main\"", "name = \"Twilio Main (renamed)\"");
    let out = refused_without_writes(&ctx, "whitespace", &["apply", "--auto-approve"]).await;
    assert!(stderr(&out).contains("protected"), "{}", stderr(&out));
}

// ----- class 4: protection memory -------------------------------------------------------

fn edit_state(ctx: &Ctx, edit: impl FnOnce(&mut cwa::state::State)) {
    let store = StateStore::new(ctx.path("state"));
    let mut state = store.load().unwrap();
    edit(&mut state);
    store.save(&mut state).unwrap();
}

async fn applied_runbook() -> Ctx {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_declaration_and_states_map_leaves_the_flags_locked() {
    let ctx = applied_runbook().await;
    ctx.edit_lines_toml(PROTECTED_LINE, &format!("# {PROTECTED_LINE}"));
    edit_state(&ctx, |s| s.protected.clear());
    assert!(
        ctx.state().resources["livekit_inbound_trunk.twilio_main"].protected,
        "the flag is left"
    );
    let plan = plan_json(&ctx, &[]).await;
    let unprotect: Vec<&str> = plan["unprotect"]
        .as_array()
        .expect("an unprotect section")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(unprotect, vec![PROTECTED_TRUNK]);
    let human = stdout(&ctx.cwa(&["plan"]).await);
    assert!(
        human.contains("Unprotect") && human.contains(PROTECTED_TRUNK),
        "{human}"
    );

    ctx.edit_lines_toml("name = \"Twilio Main\"", "name = \"Twilio Main (renamed)\"");
    for args in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let out = refused_without_writes(&ctx, "flags left", args).await;
        assert!(stderr(&out).contains("protected"), "{}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_alone_keeps_an_id_locked_until_an_explicit_unprotect() {
    let ctx = applied_runbook().await;
    ctx.edit_lines_toml(PROTECTED_LINE, &format!("# {PROTECTED_LINE}"));
    edit_state(&ctx, |s| {
        s.protected.remove(PROTECTED_TRUNK);
        for r in s.resources.values_mut() {
            if r.id == PROTECTED_TRUNK {
                r.protected = false;
            }
        }
    });
    ctx.edit_lines_toml("name = \"Twilio Main\"", "name = \"Twilio Main (renamed)\"");
    let out = refused_without_writes(&ctx, "audit memory", &["apply", "--auto-approve"]).await;
    assert!(stderr(&out).contains("protected"), "{}", stderr(&out));

    // Unprotecting is its own change: not an entry of this plan -> refused; the entry -> done.
    ctx.edit_lines_toml("name = \"Twilio Main (renamed)\"", "name = \"Twilio Main\"");
    refused_without_writes(
        &ctx,
        "--unprotect of an id the plan does not list",
        &["apply", "--auto-approve", "--unprotect", PROTECTED_RULE],
    )
    .await;
    let writes = ctx.writes().len();
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 0);
    let plan = plan_json(&ctx, &[]).await;
    assert_eq!(
        plan["unprotect"][0]["id"], PROTECTED_TRUNK,
        "still listed, still locked"
    );
    let out = ctx
        .cwa(&["apply", "--auto-approve", "--unprotect", PROTECTED_TRUNK])
        .await;
    assert_exit(&out, 0);
    assert_eq!(
        ctx.writes().len(),
        writes,
        "unprotecting writes nothing live"
    );
    let plan = plan_json(&ctx, &[]).await;
    assert!(plan.get("unprotect").is_none(), "{}", plan["unprotect"]);
    let audit = std::fs::read_to_string(ctx.path("state/audit.jsonl")).unwrap();
    assert!(audit.contains("\"action\":\"unprotect\""), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_rm_forgets_an_address_but_never_a_protected_one() {
    let ctx = applied_runbook().await;
    let owned = ctx.state().resources.len();
    for addr in [
        "livekit_inbound_trunk.twilio_main",
        "livekit_dispatch_rule.twilio_main",
    ] {
        let out = ctx.cwa(&["state", "rm", addr]).await;
        assert_exit(&out, 1);
        assert!(stderr(&out).contains("protected"), "{}", stderr(&out));
    }
    // Memory alone (declaration and map gone, flags left) still refuses.
    ctx.edit_lines_toml(PROTECTED_LINE, &format!("# {PROTECTED_LINE}"));
    edit_state(&ctx, |s| s.protected.clear());
    let out = ctx
        .cwa(&["state", "rm", "livekit_inbound_trunk.twilio_main"])
        .await;
    assert_exit(&out, 1);
    assert_eq!(ctx.state().resources.len(), owned);

    let writes = ctx.writes().len();
    let out = ctx
        .cwa(&["state", "rm", "livekit_dispatch_rule.medhanialem"])
        .await;
    assert_exit(&out, 0);
    assert_eq!(ctx.state().resources.len(), owned - 1);
    assert_eq!(ctx.writes().len(), writes, "state rm touches nothing live");
    let audit = std::fs::read_to_string(ctx.path("state/audit.jsonl")).unwrap();
    assert!(audit.contains("\"action\":\"state rm\""), "{audit}");
    let out = ctx
        .cwa(&["state", "rm", "livekit_dispatch_rule.nothing"])
        .await;
    assert_exit(&out, 1);
}

// ----- class 4: the Twilio path upstream of the protected trunk --------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_twilio_read_write_the_numbers_feeding_the_protected_trunk_are_locked() {
    let edits: [(&str, &str, &str); 3] = [
        (
            "renamed",
            "name = \"Sales (toll-free)\"",
            "name = \"Sales (renamed)\"",
        ),
        (
            "moved to the test trunk",
            "name = \"Demo (US)\"\ntrunk = \"main\"",
            "name = \"Demo (US)\"\ntrunk = \"test\"",
        ),
        (
            "the main Twilio trunk's origination changed",
            "priority = 10, weight = 10, enabled = true },\n]\n\n[twilio.trunk.test]",
            "priority = 10, weight = 20, enabled = true },\n]\n\n[twilio.trunk.test]",
        ),
    ];
    for (case, from, to) in edits {
        let ctx = Ctx::runbook().await;
        ctx.edit_lines_toml("twilio = \"read-only\"", "twilio = \"read-write\"");
        assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 2);
        ctx.edit_lines_toml(from, to);
        for args in [&["plan"][..], &["apply", "--auto-approve"][..]] {
            let out = refused_without_writes(&ctx, case, args).await;
            assert!(
                stderr(&out).contains(PROTECTED_TRUNK),
                "{case}: {}",
                stderr(&out)
            );
        }
        let twilio_writes: Vec<_> = ctx
            .writes()
            .into_iter()
            .filter(|w| w.provider == "twilio")
            .collect();
        assert!(twilio_writes.is_empty(), "{case}: {twilio_writes:?}");
    }
}
