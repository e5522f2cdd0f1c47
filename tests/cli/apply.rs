//! `cwa apply` end to end: the real binary against the sandbox over HTTP, including crashes at
//! every mutating step, lost answers and injected faults.

use crate::common::{assert_exit, stderr, stdout, Ctx, NEW_CHURCHES};
use cwa::sandbox::{FaultConfig, FaultKind, FaultRule};

/// Number orders the sandbox holds (its world, not its request log: a request whose client
/// was killed while the sandbox handled it is carried out but never logged).
async fn number_orders(ctx: &Ctx) -> usize {
    ctx.sb.world_json().await["telnyx"]["number_orders"]
        .as_object()
        .map_or(0, serde_json::Map::len)
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
    assert_eq!(number_orders(&ctx).await, 2);
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
    assert_eq!(number_orders(&ctx).await, 2, "a second apply buys nothing");
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
                number_orders(&ctx).await,
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
    assert_eq!(number_orders(&ctx).await, 2, "the rerun buys nothing new");
}

// ---- issue 17: apply as a pipeline ---------------------------------------------------------

/// One fault rule of `kind` on `method` + `path_prefix` that fires `count` times.
fn fault(kind: FaultKind, method: &str, path_prefix: &str, count: u32) -> FaultRule {
    FaultRule {
        kind,
        method: Some(method.into()),
        path_prefix: path_prefix.into(),
        count: Some(count),
        probability: None,
        seconds: None,
        status: None,
    }
}

/// Where in the sandbox's request log (the order it answered in) each new church's trunk
/// and dispatch rule were created, by the ids state recorded for them.
fn created_at(
    ctx: &Ctx,
    log: &[cwa::sandbox::RequestLogEntry],
    church: &str,
) -> (Option<usize>, Option<usize>) {
    let state = ctx.state();
    let position = |addr: &str, path: &str| {
        let id = &state.resources.get(addr)?.id;
        log.iter().position(|r| {
            r.path == path && r.status == 200 && r.resource_id.as_deref() == Some(id.as_str())
        })
    };
    (
        position(
            &format!("livekit_inbound_trunk.{church}"),
            "/twirp/livekit.SIP/CreateSIPInboundTrunk",
        ),
        position(
            &format!("livekit_dispatch_rule.{church}"),
            "/twirp/livekit.SIP/CreateSIPDispatchRule",
        ),
    )
}

/// The first poll of a number order hangs for seconds (the sandbox then drops it and the
/// client asks again): the other new church's trunk and dispatch rule are created while that
/// order is still pending, and the slow church's trunk only after its own order completed.
/// Asserted on the order in which the sandbox answered, never on wall time. With waves (every
/// number, then every trunk) both trunks came after the slow order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_number_order_delays_only_its_own_church() {
    let ctx = ctx_with_new_churches().await;
    ctx.sb.sandbox.set_faults(FaultConfig {
        rules: vec![FaultRule {
            seconds: Some(4),
            ..fault(FaultKind::Hang, "GET", "/v2/number_orders/", 1)
        }],
        ..FaultConfig::default()
    });
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 0);
    let log = ctx.requests();
    let slow = log
        .iter()
        .position(|r| r.path.starts_with("/v2/number_orders/") && r.status == 0)
        .expect("the sandbox held one order poll and dropped it");
    let grace = created_at(&ctx, &log, "grace");
    let hope = created_at(&ctx, &log, "hope");
    let before = |(trunk, rule): (Option<usize>, Option<usize>)| {
        let trunk = trunk.expect("the trunk was created");
        let rule = rule.expect("the dispatch rule was created");
        assert!(trunk < rule, "a church's rule waits for its trunk");
        rule < slow
    };
    let after = |(trunk, _): (Option<usize>, Option<usize>)| trunk.is_some_and(|t| t > slow);
    assert!(
        (before(grace) && after(hope)) || (before(hope) && after(grace)),
        "one church's chain ran to its rule while the other's order was slow, and the slow \
         church's trunk waited for its own order: grace {grace:?}, hope {hope:?}, slow poll \
         answered at {slow}"
    );
    assert_eq!(number_orders(&ctx).await, 2, "each number ordered once");
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

/// One of the two new number orders is refused: that church's trunk and rule are skipped,
/// naming the failure; the other church's chain and every independent change go on; a
/// rerun without the fault buys only the missing number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_number_order_stops_only_its_own_chain() {
    let ctx = ctx_with_new_churches().await;
    ctx.sb.sandbox.set_faults(FaultConfig {
        rules: vec![FaultRule {
            status: Some(422),
            ..fault(FaultKind::Error, "POST", "/v2/number_orders", 1)
        }],
        ..FaultConfig::default()
    });
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    let failed: Vec<&str> = ["grace", "hope"]
        .into_iter()
        .filter(|c| text.contains(&format!("FAILED create telnyx_number.{c} (declared at")))
        .collect();
    let [failed] = failed[..] else {
        panic!("exactly one order failed: {failed:?}\n{text}");
    };
    let other = if failed == "grace" { "hope" } else { "grace" };
    assert!(
        text.contains(&format!(
            "skipped: create livekit_inbound_trunk.{failed}: it depends on telnyx_number.{failed}, which failed"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "skipped: create livekit_dispatch_rule.{failed}: it depends on livekit_inbound_trunk.{failed}, which was skipped because telnyx_number.{failed} failed"
        )),
        "{text}"
    );
    let state = ctx.state();
    for kind in [
        "telnyx_number",
        "livekit_inbound_trunk",
        "livekit_dispatch_rule",
    ] {
        assert!(
            state.resources.contains_key(&format!("{kind}.{other}")),
            "the other church's {kind} was created: {text}"
        );
        assert!(
            !state.resources.contains_key(&format!("{kind}.{failed}")),
            "nothing of the failed chain: {text}"
        );
    }
    assert!(
        state
            .resources
            .contains_key("livekit_dispatch_rule.melvindale"),
        "independent changes went on"
    );
    let trunks = |ctx: &Ctx| {
        ctx.requests()
            .iter()
            .filter(|r| r.path == "/twirp/livekit.SIP/CreateSIPInboundTrunk")
            .count()
    };
    assert_eq!(
        trunks(&ctx),
        1,
        "no trunk was attempted for the failed number"
    );

    ctx.sb.sandbox.set_faults(FaultConfig::default());
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    assert_eq!(number_orders(&ctx).await, 2, "one order per new number");
}
