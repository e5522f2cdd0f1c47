//! The fault matrix: `cwa plan` and `cwa apply` under every fault the sandbox can inject (429
//! with Retry-After, 500/503, hangs past the client timeout, dropped connections, answers lost
//! after the write committed, malformed bodies) and an object deleted by hand between plan and
//! apply or during apply.
//!
//! Every case must end in success or a clear error (exit 1, naming the provider and what it was
//! doing), leave state consistent with live (every id in state exists live; every object cwa
//! created is in state), and a rerun without faults must converge (`plan --detailed-exitcode`
//! exits 0) with nothing bought or created twice. The test prints a table of the cases (run
//! with `--nocapture`); RELIABILITY.md records it.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use crate::common::{repo_root, stderr, stdout, Ctx, NEW_CHURCHES};
use cwa::model::{Kind, ProviderName};
use cwa::providers::{self, ClientOptions, Env};
use cwa::sandbox::{FaultConfig, FaultKind, FaultRule};
use serde_json::json;

/// The per-attempt HTTP timeout for every run, so a hang trips it quickly.
const TIMEOUT_MS: &str = "1500";

/// How long a hang holds the connection: well past the timeout.
const HANG_SECONDS: u64 = 4;

/// A live object deleted by hand: its kind and id.
type Victim = (Kind, &'static str);

/// The Melvindale dispatch rule, which the repository's declaration updates.
const MELVINDALE_RULE: Victim = (Kind::LivekitDispatchRule, "SDR_9vRb2XcLeY7s");

/// Medhanialem's inbound trunk, which its dispatch rule (updated by the declaration) names.
const MEDHANIALEM_TRUNK: Victim = (Kind::LivekitInboundTrunk, "ST_LWgmiBSwTk7P");

/// What disturbs a run.
enum Disturbance {
    Faults(FaultConfig),
    /// The object is deleted by hand after `plan --out`, and the saved plan applied.
    DeletedBetweenPlanAndApply(Victim),
    /// The object is deleted by hand as soon as apply's first write reaches the sandbox.
    DeletedDuringApply(Victim),
}

struct Case {
    name: &'static str,
    disturbance: Disturbance,
}

fn rule(kind: FaultKind, method: &str, path: &str, count: Option<u32>) -> FaultRule {
    FaultRule {
        kind,
        method: Some(method.into()),
        path_prefix: path.into(),
        count,
        probability: None,
        seconds: (kind == FaultKind::Hang).then_some(HANG_SECONDS),
        status: None,
    }
}

fn rules(rules: Vec<FaultRule>) -> Disturbance {
    Disturbance::Faults(FaultConfig {
        rules,
        ..FaultConfig::default()
    })
}

/// A hang of zero seconds: the connection is dropped at once, nothing committed.
fn dropped(method: &str, path: &str) -> FaultRule {
    FaultRule {
        seconds: Some(0),
        ..rule(FaultKind::Hang, method, path, Some(1))
    }
}

fn status(code: u16, method: &str, path: &str, count: Option<u32>) -> FaultRule {
    FaultRule {
        status: Some(code),
        ..rule(FaultKind::Error, method, path, count)
    }
}

fn rate_limited() -> Disturbance {
    Disturbance::Faults(FaultConfig {
        rate_limit: Some(4.0),
        ..FaultConfig::default()
    })
}

fn server_errors(seed: u64) -> Disturbance {
    Disturbance::Faults(FaultConfig {
        error_rate: 0.25,
        seed,
        ..FaultConfig::default()
    })
}

const TRUNK_CREATE: &str = "/twirp/livekit.SIP/CreateSIPInboundTrunk";
const RULE_UPDATE: &str = "/twirp/livekit.SIP/UpdateSIPDispatchRule";
const ORDERS: &str = "/v2/number_orders";

fn plan_cases() -> Vec<Case> {
    use FaultKind::*;
    vec![
        Case {
            name: "429 with Retry-After (4 req/s per provider)",
            disturbance: rate_limited(),
        },
        Case {
            name: "500/503 on 25% of requests",
            disturbance: server_errors(3),
        },
        Case {
            name: "503 on every Telnyx number list",
            disturbance: rules(vec![status(503, "GET", "/v2/phone_numbers", None)]),
        },
        Case {
            name: "timeout (hang past the client timeout)",
            disturbance: rules(vec![
                rule(Hang, "GET", "/v2/phone_numbers", Some(1)),
                rule(
                    Hang,
                    "POST",
                    "/twirp/livekit.SIP/ListSIPInboundTrunk",
                    Some(1),
                ),
            ]),
        },
        Case {
            name: "dropped connections",
            disturbance: rules(vec![
                dropped("GET", "/v2/fqdn_connections"),
                dropped("POST", "/twirp/livekit.SIP/ListSIPDispatchRule"),
                dropped("GET", "/v1/Trunks"),
            ]),
        },
        Case {
            name: "malformed JSON (Telnyx) and protobuf (LiveKit), once",
            disturbance: rules(vec![
                rule(Malformed, "GET", "/v2/phone_numbers", Some(1)),
                rule(
                    Malformed,
                    "POST",
                    "/twirp/livekit.SIP/ListSIPOutboundTrunk",
                    Some(1),
                ),
            ]),
        },
        Case {
            name: "malformed JSON on every Telnyx connection list",
            disturbance: rules(vec![rule(Malformed, "GET", "/v2/fqdn_connections", None)]),
        },
    ]
}

fn apply_cases() -> Vec<Case> {
    use FaultKind::*;
    vec![
        Case {
            name: "429 with Retry-After (4 req/s per provider)",
            disturbance: rate_limited(),
        },
        Case {
            name: "500/503 on 25% of requests",
            disturbance: server_errors(7),
        },
        Case {
            name: "503 on every dispatch-rule update",
            disturbance: rules(vec![status(503, "POST", RULE_UPDATE, None)]),
        },
        Case {
            name: "timeout on a number order and a trunk create",
            disturbance: rules(vec![
                rule(Hang, "POST", ORDERS, Some(1)),
                rule(Hang, "POST", TRUNK_CREATE, Some(1)),
            ]),
        },
        Case {
            name: "dropped connections (order, create, PATCH)",
            disturbance: rules(vec![
                dropped("POST", ORDERS),
                dropped("POST", TRUNK_CREATE),
                dropped("PATCH", "/v2/credential_connections"),
            ]),
        },
        Case {
            name: "answer lost after commit: number order",
            disturbance: rules(vec![rule(LostResponse, "POST", ORDERS, Some(1))]),
        },
        Case {
            name: "answer lost after commit: trunk create",
            disturbance: rules(vec![rule(LostResponse, "POST", TRUNK_CREATE, Some(1))]),
        },
        Case {
            name: "answer lost after commit: dispatch-rule update",
            disturbance: rules(vec![rule(LostResponse, "POST", RULE_UPDATE, Some(1))]),
        },
        Case {
            name: "answer lost after commit: every number order",
            disturbance: rules(vec![rule(LostResponse, "POST", ORDERS, None)]),
        },
        Case {
            name: "malformed answer to a committed order and create",
            disturbance: rules(vec![
                rule(Malformed, "POST", ORDERS, Some(1)),
                rule(Malformed, "POST", TRUNK_CREATE, Some(1)),
            ]),
        },
        Case {
            name: "dispatch rule deleted by hand between plan and apply",
            disturbance: Disturbance::DeletedBetweenPlanAndApply(MELVINDALE_RULE),
        },
        Case {
            name: "dispatch rule deleted by hand during apply",
            disturbance: Disturbance::DeletedDuringApply(MELVINDALE_RULE),
        },
        Case {
            name: "inbound trunk deleted by hand between plan and apply",
            disturbance: Disturbance::DeletedBetweenPlanAndApply(MEDHANIALEM_TRUNK),
        },
        Case {
            name: "inbound trunk deleted by hand during apply",
            disturbance: Disturbance::DeletedDuringApply(MEDHANIALEM_TRUNK),
        },
    ]
}

/// One line of the printed table.
struct Row {
    command: &'static str,
    case: &'static str,
    first_run: String,
    rerun: String,
    bought: String,
    lost: String,
}

/// Every live object as (kind, id), read with cwa's own clients.
async fn live_ids(ctx: &Ctx) -> BTreeSet<(Kind, String)> {
    let env = Env::from_pairs(ctx.sb.sandbox.env());
    let clients = providers::connect(&env, &ClientOptions::default(), &ProviderName::ALL)
        .expect("clients for the sandbox");
    let mut ids = BTreeSet::new();
    for name in ProviderName::ALL {
        let provider = clients.get(name).expect("a client");
        for object in provider.refresh().await.expect("a clean refresh") {
            ids.insert((object.spec.kind(), object.id));
        }
    }
    ids
}

fn per_kind(ids: &BTreeSet<(Kind, String)>) -> BTreeMap<Kind, usize> {
    let mut counts = BTreeMap::new();
    for (kind, _) in ids {
        *counts.entry(*kind).or_default() += 1;
    }
    counts
}

async fn cwa(ctx: &Ctx, args: &[&str]) -> Output {
    ctx.cwa_env(args, &[("CWA_HTTP_TIMEOUT_MS", TIMEOUT_MS)])
        .await
}

/// The line that names the provider, the call and the object (the ProviderError form
/// `provider: operation object: …`), or else the line saying why the run stopped (a stale
/// plan, or a failed certification of the lines the apply touched).
fn diagnostic(out: &Output) -> Option<String> {
    let text = format!("{}\n{}", stdout(out), stderr(out));
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_start_matches(['x', '|', '-', '>', '`', ' ']))
        .collect();
    let names_call = |l: &&&str| {
        ["telnyx", "livekit", "twilio"]
            .iter()
            .any(|p| l.contains(&format!("{p}: ")))
    };
    lines
        .iter()
        .find(names_call)
        .or_else(|| lines.iter().find(|l| l.contains("is stale")))
        .or_else(|| lines.iter().find(|l| l.starts_with("FAIL [")))
        .map(|l| l.chars().take(120).collect())
}

/// Ends in success, or in exit 1 with a diagnostic naming the provider and the call.
fn first_outcome(out: &Output, failures: &mut Vec<String>, case: &str) -> String {
    match out.status.code() {
        Some(0) => "success".into(),
        Some(1) => match diagnostic(out) {
            Some(line) => format!("exit 1: {line}"),
            None => {
                failures.push(format!(
                    "{case}: exit 1 without a diagnostic naming the provider\n{}\n{}",
                    stdout(out),
                    stderr(out)
                ));
                "exit 1, unclear".into()
            }
        },
        other => {
            failures.push(format!(
                "{case}: exit {other:?}\n{}\n{}",
                stdout(out),
                stderr(out)
            ));
            format!("exit {other:?}")
        }
    }
}

fn repo_state() -> cwa::state::State {
    cwa::state::StateStore::new(repo_root().join("state"))
        .load()
        .expect("the repository's state")
}

async fn runbook_with_state(extra: &str) -> Ctx {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!("{}{extra}", ctx.lines_toml()));
    std::fs::create_dir_all(ctx.path("state")).unwrap();
    std::fs::copy(
        repo_root().join("state/state.json"),
        ctx.path("state/state.json"),
    )
    .unwrap();
    ctx
}

async fn plan_case(case: &Case, failures: &mut Vec<String>) -> Row {
    let ctx = runbook_with_state("").await;
    let clean = cwa(&ctx, &["plan", "--json"]).await;
    let state_before = std::fs::read(ctx.path("state/state.json")).unwrap();
    let Disturbance::Faults(faults) = &case.disturbance else {
        unreachable!("plan cases only inject faults")
    };
    let seen = ctx.requests().len();
    ctx.sb.sandbox.set_faults(faults.clone());
    let out = cwa(&ctx, &["plan", "--json"]).await;
    assert_fired(&ctx, case.name, seen, failures);
    ctx.sb.sandbox.set_faults(FaultConfig::default());
    let first_run = first_outcome(&out, failures, case.name);
    if out.status.code() == Some(0) && stdout(&out) != stdout(&clean) {
        let same_changes = |o: &Output| {
            let v: serde_json::Value = serde_json::from_str(&stdout(o)).unwrap();
            v["changes"].clone()
        };
        if same_changes(&out) != same_changes(&clean) {
            failures.push(format!("{}: the faulted plan differs", case.name));
        }
    }
    let rerun = cwa(&ctx, &["plan", "--detailed-exitcode"]).await;
    let rerun_text = match rerun.status.code() {
        Some(2) => "same plan as without faults".to_string(),
        other => {
            failures.push(format!("{}: rerun exit {other:?}", case.name));
            format!("exit {other:?}")
        }
    };
    let mut lost = Vec::new();
    let writes = real_writes(&ctx);
    if !writes.is_empty() {
        lost.push(format!("writes: {writes:?}"));
    }
    if std::fs::read(ctx.path("state/state.json")).unwrap() != state_before {
        lost.push("state rewritten".into());
    }
    if !lost.is_empty() {
        failures.push(format!("{}: plan wrote: {lost:?}", case.name));
    }
    Row {
        command: "plan",
        case: case.name,
        first_run,
        rerun: rerun_text,
        bought: "0".into(),
        lost: if lost.is_empty() {
            "no (no write at all)".into()
        } else {
            lost.join(", ")
        },
    }
}

/// Checks that the faults really happened during the run (`seen`: requests logged before it):
/// every counted rule used up, and an answer of the injected kind in the log.
fn assert_fired(ctx: &Ctx, case: &str, seen: usize, failures: &mut Vec<String>) {
    let config = ctx.sb.sandbox.faults();
    let log: Vec<_> = ctx.requests().into_iter().skip(seen).collect();
    let answered = |status: u16| log.iter().any(|r| r.status == status);
    let mut missing = Vec::new();
    if config.rate_limit.is_some() && !answered(429) {
        missing.push("no 429".to_string());
    }
    if config.error_rate > 0.0 && !(answered(500) || answered(503)) {
        missing.push("no 500/503".to_string());
    }
    for rule in &config.rules {
        let fired = match rule.count {
            Some(left) => left == 0,
            None => log.iter().any(|r| {
                r.path.starts_with(&rule.path_prefix)
                    && match rule.kind {
                        FaultKind::Error => r.status == rule.status.unwrap_or(500),
                        FaultKind::LostResponse | FaultKind::Hang => r.status == 0,
                        FaultKind::Malformed => r.status == 200,
                    }
            }),
        };
        if !fired {
            missing.push(format!("{:?} {} never fired", rule.kind, rule.path_prefix));
        }
    }
    if !missing.is_empty() {
        failures.push(format!("{case}: the fault did not happen: {missing:?}"));
    }
}

/// Writes in the request log, leaving out LiveKit's reads: Twirp reads are POSTs, which the
/// sandbox logs as writes when it faults them before routing.
fn real_writes(ctx: &Ctx) -> Vec<String> {
    ctx.writes()
        .into_iter()
        .filter(|w| {
            !(w.path.starts_with("/twirp/livekit.SIP/List")
                || w.path.starts_with("/twirp/livekit.SIP/Get"))
        })
        .map(|w| format!("{} {}", w.method, w.path))
        .collect()
}

/// Number orders the sandbox carried out: answered 2xx, or handled and then left unanswered
/// (a lost answer names what it made; a hang, which commits nothing, names nothing).
fn committed_orders(ctx: &Ctx) -> usize {
    ctx.writes()
        .iter()
        .filter(|w| w.method == "POST" && w.path == ORDERS)
        .filter(|w| (200..300).contains(&w.status) || (w.status == 0 && w.resource_id.is_some()))
        .count()
}

/// What a clean apply creates, per kind: every faulted run must end with exactly this.
async fn baseline_created() -> BTreeMap<Kind, usize> {
    let ctx = runbook_with_state(NEW_CHURCHES).await;
    let before = live_ids(&ctx).await;
    let out = cwa(&ctx, &["apply", "--auto-approve"]).await;
    crate::common::assert_exit(&out, 0);
    let after = live_ids(&ctx).await;
    per_kind(&after.difference(&before).cloned().collect())
}

/// Deletes a LiveKit object through the sandbox's Twirp API, as someone in the console would.
async fn delete_by_hand(sb: &crate::common::sandbox::TestSandbox, (kind, id): Victim) {
    let (method, body) = match kind {
        Kind::LivekitDispatchRule => (
            "DeleteSIPDispatchRule",
            json!({ "sip_dispatch_rule_id": id }),
        ),
        _ => ("DeleteSIPTrunk", json!({ "sip_trunk_id": id })),
    };
    let (status, answer) = crate::common::sandbox::send(sb.twirp_json(method, &body)).await;
    assert_eq!(status, 200, "the sandbox deleted {id}: {answer}");
}

/// Deletes the object once the first write of the run reaches the sandbox.
async fn delete_at_first_write(ctx: &Ctx, victim: Victim) {
    let writes_before = ctx.writes().len();
    for _ in 0..3_000 {
        if ctx.writes().len() > writes_before {
            delete_by_hand(&ctx.sb, victim).await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("apply made no write");
}

async fn disturbed_apply(
    ctx: &Ctx,
    name: &str,
    disturbance: &Disturbance,
    failures: &mut Vec<String>,
) -> Output {
    match disturbance {
        Disturbance::Faults(faults) => {
            let seen = ctx.requests().len();
            ctx.sb.sandbox.set_faults(faults.clone());
            let out = cwa(ctx, &["apply", "--auto-approve"]).await;
            assert_fired(ctx, name, seen, failures);
            ctx.sb.sandbox.set_faults(FaultConfig::default());
            out
        }
        Disturbance::DeletedBetweenPlanAndApply(victim) => {
            crate::common::assert_exit(&cwa(ctx, &["plan", "--out", "plan.json"]).await, 0);
            delete_by_hand(&ctx.sb, *victim).await;
            cwa(ctx, &["apply", "plan.json"]).await
        }
        Disturbance::DeletedDuringApply(victim) => {
            ctx.sb.sandbox.set_faults(FaultConfig {
                latency_ms: 100,
                ..FaultConfig::default()
            });
            let (out, ()) = tokio::join!(
                cwa(ctx, &["apply", "--auto-approve"]),
                delete_at_first_write(ctx, *victim)
            );
            ctx.sb.sandbox.set_faults(FaultConfig::default());
            out
        }
    }
}

async fn apply_case(
    case: &Case,
    expected: &BTreeMap<Kind, usize>,
    failures: &mut Vec<String>,
) -> Row {
    let ctx = runbook_with_state(NEW_CHURCHES).await;
    let before = live_ids(&ctx).await;
    let out = disturbed_apply(&ctx, case.name, &case.disturbance, failures).await;
    let first_run = first_outcome(&out, failures, case.name);
    if let Err(e) = cwa::state::StateStore::new(ctx.path("state")).load() {
        failures.push(format!(
            "{}: state unreadable after the run: {e}",
            case.name
        ));
    }

    let rerun = cwa(&ctx, &["apply", "--auto-approve"]).await;
    let converged = cwa(&ctx, &["plan", "--detailed-exitcode"]).await;
    let rerun_text = match (rerun.status.code(), converged.status.code()) {
        (Some(0), Some(0)) => "converged (plan exit 0)".to_string(),
        (a, b) => {
            failures.push(format!(
                "{}: rerun apply exit {a:?}, plan exit {b:?}\n{}\n{}\n{}",
                case.name,
                stdout(&rerun),
                stderr(&rerun),
                stdout(&converged)
            ));
            format!("apply exit {a:?}, plan exit {b:?}")
        }
    };

    let mut expected = expected.clone();
    if let Disturbance::DeletedBetweenPlanAndApply((kind, _))
    | Disturbance::DeletedDuringApply((kind, _)) = case.disturbance
    {
        *expected.entry(kind).or_default() += 1;
        if kind == Kind::LivekitInboundTrunk {
            // The trunk's dispatch rule names the old trunk id: it is replaced too.
            *expected.entry(Kind::LivekitDispatchRule).or_default() += 1;
        }
    }
    let live = live_ids(&ctx).await;
    let bought = live
        .difference(&before)
        .filter(|(k, _)| *k == Kind::TelnyxNumber)
        .count();
    let orders = committed_orders(&ctx);
    let mut lost = inconsistencies(&ctx, &before, &expected).await;
    if orders != 2 {
        lost.push(format!(
            "{orders} number orders committed for 2 new numbers"
        ));
    }
    if !lost.is_empty() {
        failures.push(format!("{}: {}", case.name, lost.join("; ")));
    }
    Row {
        command: "apply",
        case: case.name,
        first_run,
        rerun: rerun_text,
        bought: format!("{orders} orders committed, {bought} numbers live (2 declared)"),
        lost: if lost.is_empty() {
            "no".into()
        } else {
            lost.join("; ")
        },
    }
}

/// State ids missing live, objects created but not in state, and anything created twice.
async fn inconsistencies(
    ctx: &Ctx,
    before: &BTreeSet<(Kind, String)>,
    expected: &BTreeMap<Kind, usize>,
) -> Vec<String> {
    let live = live_ids(ctx).await;
    let state = ctx.state();
    let in_state: BTreeSet<(Kind, String)> =
        state.owned().map(|(a, r)| (a.kind, r.id.clone())).collect();
    let mut problems = Vec::new();
    for (kind, id) in in_state.difference(&live) {
        problems.push(format!("state holds {kind} {id}, which is not live"));
    }
    let owned_before: BTreeSet<(Kind, String)> = repo_state()
        .owned()
        .map(|(a, r)| (a.kind, r.id.clone()))
        .collect();
    for (kind, id) in owned_before.intersection(&live) {
        if !in_state.contains(&(*kind, id.clone())) {
            problems.push(format!(
                "{kind} {id} was owned, is still live, and is no longer in state"
            ));
        }
    }
    let created: BTreeSet<(Kind, String)> = live.difference(before).cloned().collect();
    for (kind, id) in created.difference(&in_state) {
        problems.push(format!("{kind} {id} was created but is not in state"));
    }
    let counts = per_kind(&created);
    if &counts != expected {
        problems.push(format!(
            "created {counts:?}, a clean run creates {expected:?}"
        ));
    }
    problems
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| command | case | first run | rerun | number orders committed, numbers bought | anything lost or doubled |"
    );
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.command,
            r.case,
            r.first_run.replace('|', "/"),
            r.rerun,
            r.bought,
            r.lost
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_apply_under_every_fault_end_clean_and_converge() {
    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for case in plan_cases() {
        rows.push(plan_case(&case, &mut failures).await);
    }
    let expected = baseline_created().await;
    assert!(
        expected.get(&Kind::TelnyxNumber) == Some(&2),
        "a clean run buys the two numbers: {expected:?}"
    );
    for case in apply_cases() {
        rows.push(apply_case(&case, &expected, &mut failures).await);
    }
    print_table(&rows);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every committed write that reached the sandbox (an answer of 2xx, or a lost answer whose
/// write was carried out) appears in state/audit.jsonl with the object's id, an action and
/// an outcome, the time and the operator; a number order appears as the create of a number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_write_of_an_apply_is_in_the_audit_log() {
    use FaultKind::LostResponse;
    let ctx = runbook_with_state(NEW_CHURCHES).await;
    ctx.sb.sandbox.set_faults(FaultConfig {
        rules: vec![
            rule(LostResponse, "POST", ORDERS, Some(1)),
            rule(LostResponse, "POST", TRUNK_CREATE, Some(1)),
            rule(LostResponse, "POST", RULE_UPDATE, Some(1)),
        ],
        ..FaultConfig::default()
    });
    let first = cwa(&ctx, &["apply", "--auto-approve"]).await;
    ctx.sb.sandbox.set_faults(FaultConfig::default());
    if first.status.code() != Some(0) {
        crate::common::assert_exit(&cwa(&ctx, &["apply", "--auto-approve"]).await, 0);
    }
    let audit = cwa::state::Journal::new(&cwa::state::StateStore::new(ctx.path("state")))
        .audit_entries()
        .expect("a readable audit log");
    for entry in &audit {
        assert!(
            !entry.time.is_empty() && entry.operator.starts_with("test@cwa@"),
            "{entry:?}"
        );
    }
    let mutations: Vec<_> = audit.iter().filter(|e| e.action != "adopt").collect();
    let committed: Vec<_> = ctx
        .writes()
        .into_iter()
        .filter(|w| (200..300).contains(&w.status) || (w.status == 0 && w.resource_id.is_some()))
        .collect();
    assert!(committed.len() >= 7, "the run wrote: {committed:?}");
    let mut missing = Vec::new();
    for write in &committed {
        let found = if write.path == ORDERS {
            true
        } else {
            mutations
                .iter()
                .any(|e| e.id.is_some() && e.id == write.resource_id)
        };
        if !found {
            missing.push(format!(
                "{} {} ({:?})",
                write.method, write.path, write.resource_id
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "writes missing from the audit log: {missing:?}\naudit: {mutations:?}"
    );
    let orders = committed.iter().filter(|w| w.path == ORDERS).count();
    let number_creates = mutations
        .iter()
        .filter(|e| {
            e.action == "create" && e.address.starts_with("telnyx_number.") && e.outcome == "ok"
        })
        .count();
    assert_eq!(
        orders, number_creates,
        "one audited create per committed order"
    );
    for entry in &mutations {
        let id = entry.id.as_deref().unwrap_or_default();
        let in_log = entry.address.starts_with("telnyx_number.")
            || committed
                .iter()
                .any(|w| w.resource_id.as_deref() == Some(id));
        assert!(in_log, "audited but never sent: {entry:?}");
    }
}

/// Replacing a dispatch rule (its trunk was deleted by hand, so it names a trunk that no longer
/// exists) creates the new rule before it deletes the old one: calls are never left without a
/// rule in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_displaced_dispatch_rule_is_deleted_after_its_replacement_is_created() {
    let ctx = runbook_with_state("").await;
    delete_by_hand(&ctx.sb, MEDHANIALEM_TRUNK).await;
    let out = cwa(&ctx, &["apply", "--auto-approve"]).await;
    crate::common::assert_exit(&out, 0);
    let writes = ctx.writes();
    let created = writes
        .iter()
        .position(|w| w.path == "/twirp/livekit.SIP/CreateSIPDispatchRule")
        .expect("a new rule for the recreated trunk");
    let deleted = writes
        .iter()
        .position(|w| {
            w.path == "/twirp/livekit.SIP/DeleteSIPDispatchRule"
                && w.resource_id.as_deref() == Some("SDR_4hTq8WnZpK3m")
        })
        .expect("the old rule is deleted");
    assert!(
        created < deleted,
        "the old rule went first: {:?}",
        writes.iter().map(|w| &w.path).collect::<Vec<_>>()
    );
    crate::common::assert_exit(&cwa(&ctx, &["plan", "--detailed-exitcode"]).await, 0);
}
