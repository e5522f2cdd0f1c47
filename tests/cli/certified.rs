//! Issue 15, "Every line certified, every failure caught at plan time", over the real binary
//! against a sandbox on 127.0.0.1: certification of `auto` lines and pending ones, `--target`,
//! readable auto numbers, apply errors, keep-going, preconditions at plan time, drift, import
//! protection, and honest counts.

use crate::common::{assert_exit, stderr, stdout, Ctx};
use serde_json::{json, Value};

/// `n` churches whose numbers are bought by area code (734), after the account-level objects
/// every synthetic world declares: applied into an empty world, everything is created.
fn auto_churches(n: usize) -> String {
    let mut text =
        cwa::synthetic::lines_toml(0).replace("max_delete_share = 0.25", "max_delete_share = 1.0");
    for i in 0..n {
        text.push_str(&format!(
            "\n[church.auto{i}]\nid = \"00000000-0000-4000-8000-{i:012}\"\nname = \"Auto Church {i}\"\nnumber = \"auto\"\narea_code = \"734\"\n"
        ));
    }
    text
}

async fn check_json(ctx: &Ctx, code: i32) -> Value {
    let out = ctx.cwa(&["check", "--json"]).await;
    assert_exit(&out, code);
    serde_json::from_str(&stdout(&out)).expect("a JSON check report")
}

fn failed_checks(report: &Value) -> Vec<Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["passed"] == json!(false))
        .cloned()
        .collect()
}

/// A diagnostic with its line wrapping undone.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The number state pins for `addr`.
fn pinned(ctx: &Ctx, addr: &str) -> String {
    ctx.state().resources[addr].spec.label()
}

// ---- finding 1: certification covers auto lines; pending; uncheckable is a failure --------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_lines_are_pending_before_apply_and_certified_after() {
    let ctx = Ctx::with_world("empty", &auto_churches(3)).await;

    let before = check_json(&ctx, 0).await;
    let pending: Vec<&str> = before["pending"]
        .as_array()
        .expect("pending lines")
        .iter()
        .map(|p| p["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        pending,
        [
            "telnyx_number.auto0",
            "telnyx_number.auto1",
            "telnyx_number.auto2"
        ],
        "{before:#}"
    );
    let human = ctx.cwa(&["check"]).await;
    assert_exit(&human, 0);
    assert!(
        stdout(&human).contains("3 pending (not applied yet"),
        "{}",
        stdout(&human)
    );

    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        !text.contains("Certification: 0 checks"),
        "auto lines must be certified: {text}"
    );
    assert!(text.contains(", 0 failed, 0 pending."), "{text}");

    let after = check_json(&ctx, 0).await;
    assert_eq!(after["pending"], json!([]), "{after:#}");
    for i in 0..3 {
        let number = pinned(&ctx, &format!("telnyx_number.auto{i}"));
        let checked: Vec<&str> = after["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["subject"].as_str().unwrap().contains(&number))
            .map(|c| c["check"].as_str().unwrap())
            .collect();
        for check in ["number-active", "one-inbound-trunk", "dispatch-agent"] {
            assert!(
                checked.contains(&check),
                "{number}: {check} not run: {checked:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_line_that_cannot_be_checked_fails() {
    let ctx = Ctx::with_world("empty", &auto_churches(1)).await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let id = ctx.state().resources["telnyx_number.auto0"].id.clone();
    let (status, body) = crate::common::sandbox::send(
        ctx.sb
            .telnyx(reqwest::Method::DELETE, &format!("/phone_numbers/{id}")),
    )
    .await;
    assert!(status < 300, "{status} {body}");

    let report = check_json(&ctx, 1).await;
    assert_eq!(report["pending"], json!([]), "applied, so not pending");
    let failed = failed_checks(&report);
    assert!(
        failed.iter().any(|c| c["check"] == json!("number-owned")),
        "{failed:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certification_after_apply_fails_when_a_touched_line_is_not_routed() {
    // The account objects are live (synthetic:0): a target never creates its dependencies on
    // the side (issue 23), so the number's connection must exist already.
    let ctx = Ctx::with_world("synthetic:0", &auto_churches(1)).await;
    let out = ctx
        .cwa(&["apply", "--auto-approve", "--target", "telnyx_number.auto0"])
        .await;
    let text = stdout(&out);
    assert_exit(&out, 1);
    assert!(text.contains("Apply complete"), "{text}");
    assert!(
        text.contains("FAIL [one-inbound-trunk]"),
        "the bought number has no trunk yet: {text}"
    );
}

// ---- finding 8: --target ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_target_is_an_error_with_a_suggestion() {
    let ctx = Ctx::runbook().await;
    for (typo, suggestion) in [
        (
            "livekit_inbound_trunk.medhanailem",
            "livekit_inbound_trunk.medhanialem",
        ),
        ("church.melvindal", "church.melvindale"),
        (
            "livekit_trunk.melvindale",
            "livekit_inbound_trunk.melvindale",
        ),
    ] {
        let out = ctx.cwa(&["plan", "--target", typo]).await;
        assert_exit(&out, 1);
        let err = one_line(&stderr(&out));
        assert!(err.contains(typo), "{err}");
        assert!(
            err.contains(&format!("did you mean `{suggestion}`")),
            "{typo}: {err}"
        );
        assert!(!stdout(&out).contains("No changes"), "{}", stdout(&out));
    }
    assert!(ctx.writes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_church_target_selects_its_whole_chain_and_warns() {
    let ctx = Ctx::runbook().await;
    let out = ctx
        .cwa(&["plan", "--json", "--target", "church.melvindale"])
        .await;
    assert_exit(&out, 0);
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let addresses: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    for a in [
        "telnyx_number.melvindale",
        "livekit_inbound_trunk.melvindale",
        "livekit_dispatch_rule.melvindale",
    ] {
        assert!(addresses.contains(&a), "{a} not in {addresses:?}");
    }
    assert!(
        !addresses.iter().any(|a| a.ends_with(".medhanialem")),
        "{addresses:?}"
    );
    assert!(
        plan["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == json!("targeting")),
        "{:#}",
        plan["checks"]
    );
    let human = ctx.cwa(&["plan", "--target", "church.melvindale"]).await;
    assert_exit(&human, 0);
    assert!(
        stdout(&human).contains("targeting in effect"),
        "{}",
        stdout(&human)
    );
}

// ---- finding 9: auto numbers are readable -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_numbers_read_as_numbers_in_plan_and_apply() {
    let ctx = Ctx::with_world("empty", &auto_churches(1)).await;
    let plan = ctx.cwa(&["plan"]).await;
    assert_exit(&plan, 0);
    let text = stdout(&plan);
    assert!(
        text.contains("number = auto") && text.contains("area_code = 734"),
        "{text}"
    );
    assert!(!text.contains("\"mode\""), "no raw JSON: {text}");

    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 0);
    let number = pinned(&ctx, "telnyx_number.auto0");
    assert!(number.starts_with("+1734"), "{number}");
    assert!(
        stdout(&out).contains(&format!("created telnyx_number.auto0 {number} (")),
        "apply names the number it bought: {}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_area_code_of_a_pinned_auto_line_is_a_plan_error() {
    let ctx = Ctx::with_world("empty", &auto_churches(1)).await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let number = pinned(&ctx, "telnyx_number.auto0");
    ctx.edit_lines_toml("area_code = \"734\"", "area_code = \"313\"");
    let out = ctx.cwa(&["plan"]).await;
    assert_exit(&out, 1);
    let err = one_line(&stderr(&out));
    assert!(err.contains(&format!("pinned to {number}")), "{err}");
    assert!(err.contains("set `number` to re-number"), "{err}");
    assert!(err.contains("is kept"), "{err}");
    let writes = ctx.writes().len();
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 1);
    assert_eq!(ctx.writes().len(), writes, "nothing written");
}

// ---- findings 2 and 3: apply errors in words; independent chains go on --------------------

/// Every inbound trunk create fails (the sandbox answers 500): the new churches' chains stop
/// at their trunks, every independent change goes on; the report says what failed, where, why
/// and the fix, what was skipped and why, and advises a rerun because a server error is one
/// a rerun can get past. `--rollback-on-failure` keeps what independent chains did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_create_stops_only_its_chain_and_says_how_to_fix_it() {
    use cwa::sandbox::{FaultConfig, FaultKind, FaultRule};
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!(
        "{}{}",
        ctx.lines_toml(),
        crate::common::NEW_CHURCHES
    ));
    ctx.sb.sandbox.set_faults(FaultConfig {
        rules: vec![FaultRule {
            kind: FaultKind::Error,
            method: Some("POST".into()),
            path_prefix: "/twirp/livekit.SIP/CreateSIPInboundTrunk".into(),
            count: None,
            probability: None,
            seconds: None,
            status: Some(500),
        }],
        ..FaultConfig::default()
    });
    let out = ctx
        .cwa(&["apply", "--auto-approve", "--rollback-on-failure"])
        .await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    for church in ["grace", "hope"] {
        assert!(
            text.contains(&format!(
                "FAILED create livekit_inbound_trunk.{church} (declared at lines.toml:"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "skipped: create livekit_dispatch_rule.{church}: it depends on livekit_inbound_trunk.{church}, which failed"
            )),
            "{text}"
        );
    }
    assert!(text.contains("    why: "), "{text}");
    assert!(text.contains("    fix: "), "{text}");
    assert!(
        !text.contains("Api {") && !text.contains("Provider("),
        "no Debug dumps: {text}"
    );
    assert!(
        text.contains("updated livekit_dispatch_rule.melvindale")
            || text.contains("adopted livekit_dispatch_rule.melvindale"),
        "the independent chain went on: {text}"
    );
    assert!(
        text.contains("fix: the provider failed on its side: run `cwa apply` again"),
        "{text}"
    );
    assert!(
        text.contains("Run `cwa apply` again to converge"),
        "a rerun can get past a server error: {text}"
    );
    let state = ctx.state();
    assert!(state
        .resources
        .contains_key("livekit_dispatch_rule.melvindale"));
    assert!(state.resources.contains_key("telnyx_number.grace"));

    ctx.sb.sandbox.set_faults(FaultConfig::default());
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

// ---- finding 7: reasons tell the truth ----------------------------------------------------

/// Swapping two churches' numbers moves objects state already owns: no change may call them
/// "not yet in state".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_numbers_are_not_called_new_to_state() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let owned: Vec<String> = ctx
        .state()
        .resources
        .values()
        .map(|r| r.id.clone())
        .collect();
    let text = ctx
        .lines_toml()
        .replace("number = \"+14144007103\"", "number = \"SWAP\"")
        .replace("number = \"+17473897673\"", "number = \"+14144007103\"")
        .replace("number = \"SWAP\"", "number = \"+17473897673\"");
    ctx.set_lines_toml(&text);
    let out = ctx.cwa(&["plan", "--json"]).await;
    assert_exit(&out, 0);
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for c in plan["changes"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap_or_default().to_string();
        let reason = c["reason"].as_str().unwrap_or_default();
        assert!(
            !(owned.contains(&id) && reason.contains("not yet in state")),
            "{} ({id}) is in state, but the plan says: {reason}",
            c["address"]
        );
    }
}

/// `cwa apply` is refused (exit 1) and sends no write beyond the `already` ones.
async fn apply_writes_nothing(ctx: &Ctx, already: usize) {
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    let writes = ctx.writes();
    assert_eq!(
        writes.len(),
        already,
        "apply wrote: {:?}",
        &writes[already.min(writes.len())..]
    );
}

/// Issue 15 finding 4: every `*_env` variable a write would send is checked by plan, all at
/// once: two unset variables are both named in one run, and apply writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_missing_secret_variable_is_a_plan_error_reported_together() {
    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml(
        "password_env = \"TELNYX_OUTBOUND_SIP_PASSWORD\"",
        "password_env = \"SIP_UNSET_CREDENTIAL_PASSWORD\"",
    );
    ctx.edit_lines_toml(
        "auth_password_env = \"TELNYX_OUTBOUND_SIP_PASSWORD\"",
        "auth_password_env = \"SIP_UNSET_TRUNK_PASSWORD\"",
    );
    let out = ctx.cwa(&["plan"]).await;
    assert_exit(&out, 1);
    let text = one_line(&stderr(&out));
    for (variable, address) in [
        (
            "SIP_UNSET_CREDENTIAL_PASSWORD",
            "telnyx_credential_connection.outbound",
        ),
        ("SIP_UNSET_TRUNK_PASSWORD", "livekit_outbound_trunk.telnyx"),
    ] {
        assert!(
            text.contains(&format!("{address}: the environment variable {variable}")),
            "{variable} is reported by plan: {text}"
        );
    }
    assert!(text.contains("cwa::plan::missing-secret"), "{text}");
    apply_writes_nothing(&ctx, 0).await;
}

/// Issue 15 finding 4: deleting a connection a kept number still uses (the fallback TeXML
/// application, whose number is kept when its line is removed) is refused by plan, before
/// apply meets Telnyx's 422 on every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_texml_application_a_kept_number_uses_is_a_plan_error() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let text = ctx.lines_toml();
    let start = text
        .find("[telnyx.texml_application.fallback]")
        .expect("the fallback app");
    let end = text[start..]
        .find("# ----")
        .map(|i| start + i)
        .expect("the next section");
    ctx.set_lines_toml(&format!("{}{}", &text[..start], &text[end..]));
    let writes_before = ctx.writes().len();
    let out = ctx.cwa(&["plan"]).await;
    assert_exit(&out, 1);
    let text = one_line(&stderr(&out));
    assert!(
        text.contains("telnyx_texml_application.fallback")
            && text.contains("+14697288326")
            && text.contains("cwa::plan::connection-in-use"),
        "{text}"
    );
    apply_writes_nothing(&ctx, writes_before).await;
}

/// Issue 15 finding 4: a fixed number that no account cwa reads owns and Telnyx does not sell
/// is a plan error; one the inventory offers is not. Each costs one availability lookup, no
/// more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_number_nobody_owns_and_nobody_sells_is_a_plan_error() {
    let ctx = Ctx::runbook().await;
    let sold = cwa::sandbox::inventory::numbers_in("734")
        .into_iter()
        .next()
        .expect("the inventory sells 734 numbers");
    let unsold = "+17349876543";
    const FALLBACK: &str = "telnyx_texml_application.fallback";
    assert!(!cwa::sandbox::inventory::numbers_in("734").contains(&unsold.to_string()));
    ctx.set_lines_toml(&format!(
        "{}\n[telnyx.number.sold]\nnumber = \"{sold}\"\nconnection = \"{FALLBACK}\"\n\n[telnyx.number.unsold]\nnumber = \"{unsold}\"\nconnection = \"{FALLBACK}\"\n",
        ctx.lines_toml()
    ));
    let out = ctx.cwa(&["plan"]).await;
    assert_exit(&out, 1);
    let text = one_line(&stderr(&out));
    assert!(
        text.contains(&format!("telnyx_number.unsold: {unsold}"))
            && text.contains("cwa::plan::number-not-for-sale"),
        "{text}"
    );
    assert!(!text.contains("telnyx_number.sold:"), "{text}");
    let lookups = ctx
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/available_phone_numbers"))
        .count();
    assert_eq!(
        lookups, 2,
        "one availability lookup per fixed number ordered"
    );
    apply_writes_nothing(&ctx, 0).await;
}

/// Issue 15 finding 4: every provider credential a run needs and the environment lacks is
/// named at once, not one per run; nothing is written.
#[test]
fn every_missing_provider_credential_is_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        crate::common::repo_root().join("lines.toml"),
        dir.path().join("lines.toml"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cwa"))
        .arg("plan")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LIVEKIT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_exit(&out, 1);
    let text = one_line(&stderr(&out));
    for variable in [
        "TELNYX_API_KEY",
        "LIVEKIT_API_KEY",
        "LIVEKIT_API_SECRET",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
    ] {
        assert!(text.contains(variable), "{variable} is named: {text}");
    }
    assert!(
        !text.contains("LIVEKIT_URL"),
        "a variable that is set is not named: {text}"
    );
    assert!(text.contains("cwa::provider::env"), "{text}");
    assert!(
        !dir.path().join("state").exists(),
        "nothing is written when credentials are missing"
    );
}
