//! `cwa apply` end to end: the real binary against the sandbox over HTTP, including crashes at
//! every mutating step, lost answers and injected faults.

use crate::common::{assert_exit, stderr, stdout, Ctx, NEW_CHURCHES};
use cwa::sandbox::{FaultConfig, FaultKind, FaultRule};

fn number_orders(ctx: &Ctx) -> usize {
    ctx.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/number_orders")
        .count()
}

async fn ctx_with_new_churches() -> Ctx {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!("{}{NEW_CHURCHES}", ctx.lines_toml()));
    ctx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_of_the_repository_declaration_converges() {
    let ctx = Ctx::runbook().await;
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("Apply complete"), "{text}");
    assert!(
        text.contains("Certification:") && text.contains("0 failed"),
        "{text}"
    );
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    ctx.assert_protected_untouched();

    let state = ctx.state();
    assert!(state.is_protected("ST_Xa3Bp9aixRFP"));
    let audit = std::fs::read_to_string(ctx.path("state/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"operator\":\"test@cwa@")
            && audit.contains("livekit_dispatch_rule.melvindale")
    );
    assert!(
        !ctx.path("state/journal.jsonl").exists(),
        "a finished run leaves no journal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_numbers_are_bought_once_with_a_friendly_ending_and_pinned() {
    let ctx = ctx_with_new_churches().await;
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 0);
    assert_eq!(number_orders(&ctx), 2);
    let state = ctx.state();
    let grace = &state.resources["telnyx_number.grace"];
    let number = grace.spec.label();
    assert!(number.starts_with("+1734"), "{number}");
    assert!(
        ["0000", "5000", "4000", "000", "500", "400", "200", "100"]
            .iter()
            .any(|e| number.ends_with(e)),
        "not a friendly number: {number}"
    );
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_eq!(number_orders(&ctx), 2, "a second apply buys nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_at_any_mutating_step_converges_on_rerun() {
    for moment in ["before", "after"] {
        for step in 1.. {
            let ctx = ctx_with_new_churches().await;
            let crash = format!("{moment}:{step}");
            let first = ctx
                .cwa_env(
                    &["apply", "--auto-approve"],
                    &[("CWA_TEST_CRASH_AT", &crash)],
                )
                .await;
            let crashed = first.status.code() != Some(0);
            let rerun = ctx.cwa(&["apply", "--auto-approve"]).await;
            assert_exit(&rerun, 0);
            let clean = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
            assert_exit(&clean, 0);
            assert_eq!(
                number_orders(&ctx),
                2,
                "crash at {crash}: each new number ordered exactly once"
            );
            ctx.assert_protected_untouched();
            if !crashed {
                assert!(
                    step > 5,
                    "the run has more than a handful of mutating steps"
                );
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_and_faults_still_converge_without_a_duplicate_order() {
    let ctx = ctx_with_new_churches().await;
    ctx.sb.sandbox.set_faults(FaultConfig {
        error_rate: 0.2,
        seed: 7,
        rules: vec![FaultRule {
            kind: FaultKind::LostResponse,
            method: Some("POST".into()),
            path_prefix: "/v2/number_orders".into(),
            count: Some(1),
            probability: None,
            seconds: None,
            status: None,
        }],
        ..FaultConfig::default()
    });
    let first = ctx.cwa(&["apply", "--auto-approve"]).await;
    if first.status.code() != Some(0) {
        ctx.sb.sandbox.set_faults(FaultConfig::default());
        assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    }
    ctx.sb.sandbox.set_faults(FaultConfig::default());
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    let world = ctx.sb.world_json().await.to_string();
    for church in ["Grace Chapel", "Hope Fellowship"] {
        assert_eq!(
            world.matches(&format!("\"{church}\"")).count(),
            1,
            "one trunk for {church}"
        );
    }
    let orders = ctx
        .requests()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path == "/v2/number_orders"
                && (r.status == 200 || r.status == 0)
        })
        .count();
    assert_eq!(orders, 2, "exactly one committed order per new number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_apply_is_refused_while_the_first_holds_the_lock() {
    let ctx = Ctx::runbook().await;
    std::fs::create_dir_all(ctx.path("state")).unwrap();
    let holder = serde_json::json!({
        "holder": "someone@elsewhere", "pid": std::process::id(),
        "time": "2026-11-21T00:00:00Z", "operation": "apply"
    });
    std::fs::write(ctx.path("state/lock.json"), holder.to_string()).unwrap();
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("locked by someone@elsewhere"),
        "{}",
        stderr(&out)
    );
    assert!(ctx.writes().is_empty());

    // A lock left by a dead process is reported as such and can be removed.
    let dead = serde_json::json!({
        "holder": "ci@another-machine", "pid": 4_000_000_000u32,
        "time": "2026-11-21T00:00:00Z", "operation": "apply"
    });
    std::fs::write(ctx.path("state/lock.json"), dead.to_string()).unwrap();
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("no longer running"),
        "{}",
        stderr(&out)
    );
    assert_exit(&ctx.cwa(&["state", "unlock"]).await, 0);
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_without_a_terminal_or_approval_refuses() {
    let ctx = Ctx::runbook().await;
    let out = ctx.cwa(&["apply"]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("--auto-approve"), "{}", stderr(&out));
    assert!(ctx.writes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_on_failure_removes_created_configuration_but_keeps_bought_numbers() {
    let ctx = ctx_with_new_churches().await;
    ctx.sb.sandbox.set_faults(FaultConfig {
        rules: vec![FaultRule {
            kind: FaultKind::Error,
            method: Some("POST".into()),
            path_prefix: "/twirp/livekit.SIP/CreateSIPDispatchRule".into(),
            count: None,
            probability: None,
            seconds: None,
            status: Some(400),
        }],
        ..FaultConfig::default()
    });
    let out = ctx
        .cwa(&["apply", "--auto-approve", "--rollback-on-failure"])
        .await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("rolled back: livekit_inbound_trunk.grace"),
        "{text}"
    );
    let state = ctx.state();
    assert!(
        state.resources.contains_key("telnyx_number.grace"),
        "a bought number is never rolled back"
    );
    assert!(!state.resources.contains_key("livekit_inbound_trunk.grace"));
    let world = ctx.sb.world_json().await.to_string();
    assert!(
        !world.contains("\"Grace Chapel\""),
        "the created trunk was deleted"
    );

    ctx.sb.sandbox.set_faults(FaultConfig::default());
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    assert_eq!(number_orders(&ctx), 2, "the rerun buys nothing new");
}
