//! Issue 12 ("Trust"), classes 5 to 8, over the real binary and the sandbox: no number bought
//! twice whatever crashes and whichever machine reruns; an audit log that outlives the machine
//! and records recoveries and unknown outcomes; `*_env` names that cannot reach cwa's own
//! credentials; fingerprints that cannot be guessed offline; state files that survive symlinks,
//! an exhausted serial, invalid input and a dead or reused lock holder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::sandbox::TestSandbox;
use crate::common::{assert_exit, repo_root, stderr, stdout, Ctx, NEW_CHURCHES};
use cwa::model::{Kind, ProviderName};
use cwa::providers::{self, ClientOptions, Env};
use cwa::sandbox::{FaultConfig, FaultKind, FaultRule};
use cwa::state::{Journal, State, StateStore};

const ORDERS: &str = "/v2/number_orders";

/// Commands that read state first: each refuses a state it cannot read whole.
const STATE_READERS: [&[&str]; 5] = [
    &["apply", "--auto-approve"],
    &["plan"],
    &["plan", "--refresh=false"],
    &["state", "list"],
    &["drift"],
];

// ---------------------------------------------------------------------------------------------
// helpers

/// Runs the cwa binary in `dir` against `sb`, like `Ctx::cwa_env`, for tests with more than one
/// working directory (checkouts) on one sandbox.
async fn cwa_in(sb: &TestSandbox, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cwa"));
    cmd.current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("CWA_OPERATOR", "test@cwa");
    for (k, v) in sb.sandbox.env() {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("cwa runs"))
        .await
        .expect("the cwa process is waited for")
}

/// A small world for the kill campaign: the synthetic account with no lines, plus two churches
/// whose numbers are bought by area code (two orders, two trunks, two rules).
fn small_declaration() -> String {
    cwa::synthetic::lines_toml_with_new(0, 2)
}

/// A committed state/ of an account: a saved, empty state (so it has a lineage, as every
/// repository's state/ does once cwa has run once).
fn committed_state() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::new(dir.path());
    store.save(&mut State::new()).unwrap();
    dir
}

/// Replaces `work/state` by a fresh copy of the committed state/ (the manifest and its shards
/// only: no journal, no lock, no backup), as a CI retry on another machine checks it out.
fn fresh_checkout(committed: &Path, work: &Path) {
    let state = work.join("state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(state.join("shards")).unwrap();
    std::fs::copy(committed.join("state.json"), state.join("state.json")).unwrap();
    for entry in std::fs::read_dir(committed.join("shards"))
        .into_iter()
        .flatten()
    {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), state.join("shards").join(entry.file_name())).unwrap();
    }
}

/// A fresh sandbox of the synthetic account and a work directory declaring
/// [`small_declaration`].
async fn fresh_world() -> (TestSandbox, tempfile::TempDir) {
    let sb = TestSandbox::start("synthetic:0").await;
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("lines.toml"), small_declaration()).unwrap();
    (sb, work)
}

/// `cwa apply` in `dir`, aborted at `crash` (`CWA_TEST_CRASH_AT`).
async fn apply_crashing_at(sb: &TestSandbox, dir: &Path, crash: &str) -> Output {
    cwa_in(
        sb,
        dir,
        &["apply", "--auto-approve"],
        &[("CWA_TEST_CRASH_AT", crash)],
    )
    .await
}

fn committed_orders(sb: &TestSandbox) -> usize {
    sb.log()
        .iter()
        .filter(|w| w.write && w.method == "POST" && w.path == ORDERS)
        .filter(|w| (200..300).contains(&w.status) || (w.status == 0 && w.resource_id.is_some()))
        .count()
}

/// Every live object as (kind, id), read with cwa's own clients.
async fn live_ids(sb: &TestSandbox) -> BTreeSet<(Kind, String)> {
    let env = Env::from_pairs(sb.sandbox.env());
    let clients = providers::connect(&env, &ClientOptions::default(), &ProviderName::ALL)
        .expect("clients for the sandbox");
    let mut ids = BTreeSet::new();
    for name in ProviderName::ALL {
        for object in clients.get(name).unwrap().refresh().await.unwrap() {
            ids.insert((object.spec.kind(), object.id));
        }
    }
    ids
}

fn load(dir: &Path) -> State {
    StateStore::new(dir).load().expect("a readable state")
}

/// Objects created since `before` that the state in `state_dir` does not own.
async fn orphans(
    sb: &TestSandbox,
    before: &BTreeSet<(Kind, String)>,
    state: &State,
) -> Vec<String> {
    let owned: BTreeSet<&str> = state.resources.values().map(|r| r.id.as_str()).collect();
    live_ids(sb)
        .await
        .difference(before)
        .filter(|(_, id)| !owned.contains(id.as_str()))
        .map(|(k, id)| format!("{k} {id}"))
        .collect()
}

fn count_kind(ids: &BTreeSet<(Kind, String)>, kind: Kind) -> usize {
    ids.iter().filter(|(k, _)| *k == kind).count()
}

// ---------------------------------------------------------------------------------------------
// class 5: buying again after a crash on another machine

/// Kills an apply at every mutating step (just before the call, and just after it returns but
/// before its result is journaled), then reruns from a fresh copy of the committed state/ (no
/// journal, as a CI retry on another runner does): each number is ordered exactly once and
/// nothing created is left unowned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_at_any_step_rerun_from_a_fresh_clone_buys_each_number_once() {
    let committed = committed_state();
    let mut steps_seen = 0;
    for moment in ["before", "after"] {
        for step in 1..=12 {
            let (sb, work) = fresh_world().await;
            fresh_checkout(committed.path(), work.path());
            let before = live_ids(&sb).await;
            let crash = format!("{moment}:{step}");
            let killed = apply_crashing_at(&sb, work.path(), &crash).await;
            let crashed = killed.status.code() != Some(0);
            // A CI retry on another machine: the committed state/ only.
            fresh_checkout(committed.path(), work.path());
            let rerun = cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await;
            assert_exit(&rerun, 0);
            let plan = cwa_in(&sb, work.path(), &["plan", "--detailed-exitcode"], &[]).await;
            assert_exit(&plan, 0);
            assert_eq!(
                committed_orders(&sb),
                2,
                "crash at {crash}: one order per declared number\n{}",
                stdout(&rerun)
            );
            let state = load(&work.path().join("state"));
            let orphaned = orphans(&sb, &before, &state).await;
            assert!(
                orphaned.is_empty(),
                "crash at {crash}: orphaned {orphaned:?}"
            );
            let created: BTreeSet<_> = live_ids(&sb).await.difference(&before).cloned().collect();
            for kind in [
                Kind::TelnyxNumber,
                Kind::LivekitInboundTrunk,
                Kind::LivekitDispatchRule,
            ] {
                assert_eq!(count_kind(&created, kind), 2, "crash at {crash}: {kind}");
            }
            if !crashed {
                steps_seen = steps_seen.max(step);
                break;
            }
        }
    }
    assert!(steps_seen >= 6, "the run has at least 6 mutating steps");
}

/// Provider writes the sandbox carried out (answered 2xx, or committed with the answer lost).
fn committed_writes(sb: &TestSandbox) -> usize {
    sb.log()
        .iter()
        .filter(|w| w.write && w.provider != "sandbox")
        .filter(|w| (200..300).contains(&w.status) || (w.status == 0 && w.resource_id.is_some()))
        .count()
}

/// Latency on every provider request while an apply runs to be killed: the next request waits
/// this long before anything is decided, ample time to freeze the sandbox after a write.
const KILL_LATENCY_MS: u64 = 400;

/// `cwa apply` in `dir`, killed (SIGKILL) right after the `n`-th provider write the sandbox
/// carried out: as soon as the request log shows it, every later request is made to hang
/// (committing nothing) and the process is killed, so exactly `n` writes happened, including
/// writes in the middle of one create (an order placed, its number not yet read back; a trunk
/// made, its origination URL not yet). The apply runs one call at a time per provider
/// (`--parallelism 1`): two writes in flight at once commit together, and no kill falls between
/// them. Returns the writes committed at the kill, or `None` when the apply finished before its
/// `n`-th write.
async fn apply_killed_after_write(sb: &TestSandbox, dir: &Path, n: usize) -> Option<usize> {
    let base = committed_writes(sb);
    sb.sandbox.set_faults(FaultConfig {
        latency_ms: KILL_LATENCY_MS,
        ..FaultConfig::default()
    });
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cwa"));
    cmd.current_dir(dir)
        .args(["apply", "--auto-approve", "--parallelism", "1"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("CWA_OPERATOR", "test@cwa")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in sb.sandbox.env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cwa starts");
    let killed = loop {
        if committed_writes(sb) - base >= n {
            sb.sandbox.set_faults(FaultConfig {
                latency_ms: KILL_LATENCY_MS,
                rules: vec![FaultRule {
                    kind: FaultKind::Hang,
                    method: None,
                    path_prefix: String::new(),
                    count: None,
                    probability: None,
                    seconds: Some(120),
                    status: None,
                }],
                ..FaultConfig::default()
            });
            child.kill().expect("the apply is killed");
            break true;
        }
        if child.try_wait().expect("the apply is waited for").is_some() {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    };
    let _ = child.wait();
    // Let anything still in flight settle before counting and before the rerun.
    tokio::time::sleep(std::time::Duration::from_millis(2 * KILL_LATENCY_MS)).await;
    sb.sandbox.set_faults(FaultConfig::default());
    killed.then(|| committed_writes(sb) - base)
}

/// Kills a clean apply after each of its mutating requests in turn (not only between the
/// executor's steps: between a number order and the PATCH that binds the number, between a
/// Twilio trunk and its origination URL), then reruns from a fresh copy of the committed state/
/// with no journal, as a CI retry on another runner does: exactly one order per declared number,
/// one trunk and one rule per church (adopted by their natural keys), nothing orphaned, and the
/// plan converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_every_mutating_request_rerun_from_a_fresh_clone_buys_each_number_once() {
    let committed = committed_state();
    let mut killed_at = BTreeSet::new();
    let mut total = None;
    // A write already in flight when write n is seen can land before the kill, so a kill
    // meant for n may fall after n + 1: n is tried again (up to 3 times) until it is covered.
    let (mut n, mut retries) = (1, 0);
    while n <= 40 {
        let (sb, work) = fresh_world().await;
        fresh_checkout(committed.path(), work.path());
        let before = live_ids(&sb).await;
        let Some(at) = apply_killed_after_write(&sb, work.path(), n).await else {
            total = Some(committed_writes(&sb));
            break;
        };
        killed_at.insert(at);
        fresh_checkout(committed.path(), work.path());
        assert!(
            !work.path().join("state/journal.jsonl").exists(),
            "the rerun has no journal"
        );
        let rerun = cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await;
        assert_exit(&rerun, 0);
        let plan = cwa_in(&sb, work.path(), &["plan", "--detailed-exitcode"], &[]).await;
        assert_exit(&plan, 0);
        assert_eq!(
            committed_orders(&sb),
            2,
            "killed after write {at}: one order per declared number\n{}",
            stdout(&rerun)
        );
        let state = load(&work.path().join("state"));
        let orphaned = orphans(&sb, &before, &state).await;
        assert!(
            orphaned.is_empty(),
            "killed after write {at}: orphaned {orphaned:?}"
        );
        let created: BTreeSet<_> = live_ids(&sb).await.difference(&before).cloned().collect();
        for kind in [
            Kind::TelnyxNumber,
            Kind::LivekitInboundTrunk,
            Kind::LivekitDispatchRule,
        ] {
            assert_eq!(
                count_kind(&created, kind),
                2,
                "killed after write {at}: {kind}"
            );
        }
        if killed_at.contains(&n) || retries == 3 {
            (n, retries) = (n + 1, 0);
        } else {
            retries += 1;
        }
    }
    let total = total.expect("the clean apply finishes within 40 writes");
    assert!(
        total >= 6,
        "a clean apply makes at least 6 writes, made {total}"
    );
    let every: BTreeSet<usize> = (1..=total).collect();
    assert!(
        every.is_subset(&killed_at),
        "killed after writes {killed_at:?}, the clean apply makes {total}"
    );
}

/// What a checkout commits of `work/state`: the manifest and its shards (no journal, no lock),
/// copied aside so that [`fresh_checkout`] can restore it.
fn commit_state(work: &Path) -> tempfile::TempDir {
    let committed = tempfile::tempdir().unwrap();
    let state = work.join("state");
    std::fs::create_dir_all(committed.path().join("shards")).unwrap();
    std::fs::copy(
        state.join("state.json"),
        committed.path().join("state.json"),
    )
    .unwrap();
    for entry in std::fs::read_dir(state.join("shards"))
        .into_iter()
        .flatten()
    {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            committed.path().join("shards").join(entry.file_name()),
        )
        .unwrap();
    }
    committed
}

/// How a run is killed: at an executor step (`CWA_TEST_CRASH_AT`), or after the sandbox
/// carried out its n-th write.
#[derive(Debug, Clone, Copy)]
enum Kill {
    Step(&'static str),
    Write(usize),
}

/// A Twilio trunk created by a run killed after the create and before the state save (and in
/// the middle of the create: the trunk made, its origination URL not yet) is adopted by its
/// domain by a rerun from a fresh copy of the committed state/ with no journal: never a second
/// trunk (Twilio would refuse the domain anyway, so a retry would fail for ever), nothing
/// orphaned, and the plan converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_trunk_made_by_a_killed_run_is_adopted_by_its_domain() {
    const DOMAIN: &str = "churchwiseai-spare.pstn.twilio.com";
    let spare = format!(
        "\n[twilio.trunk.spare]\nname = \"LiveKit Spare\"\ndomain_name = \"{DOMAIN}\"\norigination_urls = [\n  {{ name = \"LiveKit\", sip_url = \"sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp\", priority = 10, weight = 10, enabled = true }},\n]\n"
    );
    let base = std::fs::read_to_string(repo_root().join("lines.toml"))
        .unwrap()
        .replacen("twilio = \"read-only\"", "twilio = \"read-write\"", 1);
    for kill in [Kill::Step("after:1"), Kill::Write(1), Kill::Write(2)] {
        let sb = TestSandbox::start("runbook").await;
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("lines.toml"), &base).unwrap();
        let converge = cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await;
        assert_exit(&converge, 0);
        let committed = commit_state(work.path());
        std::fs::write(work.path().join("lines.toml"), format!("{base}{spare}")).unwrap();
        let before = live_ids(&sb).await;
        match kill {
            Kill::Step(at) => {
                let out = apply_crashing_at(&sb, work.path(), at).await;
                assert_ne!(out.status.code(), Some(0), "{kill:?}: the run was killed");
            }
            Kill::Write(n) => {
                let at = apply_killed_after_write(&sb, work.path(), n).await;
                assert_eq!(at, Some(n), "{kill:?}");
            }
        }
        let made: Vec<String> = twilio_trunks_on(&sb, DOMAIN).await;
        assert_eq!(made.len(), 1, "{kill:?}: the killed run made the trunk");
        fresh_checkout(committed.path(), work.path());
        let rerun = cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await;
        assert_exit(&rerun, 0);
        assert_exit(
            &cwa_in(&sb, work.path(), &["plan", "--detailed-exitcode"], &[]).await,
            0,
        );
        assert_eq!(
            twilio_trunks_on(&sb, DOMAIN).await,
            made,
            "{kill:?}: adopted, not made again\n{}",
            stdout(&rerun)
        );
        let state = load(&work.path().join("state"));
        assert_eq!(
            state
                .resources
                .get("twilio_trunk.spare")
                .map(|r| r.id.clone()),
            made.first().cloned(),
            "{kill:?}: state owns the trunk"
        );
        let orphaned = orphans(&sb, &before, &state).await;
        assert!(orphaned.is_empty(), "{kill:?}: orphaned {orphaned:?}");
    }
}

/// The ids of the live Twilio trunks on `domain`.
async fn twilio_trunks_on(sb: &TestSandbox, domain: &str) -> Vec<String> {
    let env = Env::from_pairs(sb.sandbox.env());
    let clients = providers::connect(&env, &ClientOptions::default(), &[ProviderName::Twilio])
        .expect("a Twilio client for the sandbox");
    clients
        .get(ProviderName::Twilio)
        .unwrap()
        .refresh()
        .await
        .unwrap()
        .into_iter()
        .filter(|o| matches!(&o.spec, cwa::model::Spec::TwilioTrunk(t) if t.domain_name.eq_ignore_ascii_case(domain)))
        .map(|o| o.id)
        .collect()
}

/// Two checkouts of the same (stale) state apply one after the other: the second finds what the
/// first bought by its reference and adopts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_checkouts_of_the_same_stale_state_buy_each_number_once() {
    let committed = committed_state();
    let sb = TestSandbox::start("synthetic:0").await;
    let before = live_ids(&sb).await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [a.path(), b.path()] {
        std::fs::write(dir.join("lines.toml"), small_declaration()).unwrap();
        fresh_checkout(committed.path(), dir);
    }
    assert_exit(
        &cwa_in(&sb, a.path(), &["apply", "--auto-approve"], &[]).await,
        0,
    );
    let second = cwa_in(&sb, b.path(), &["apply", "--auto-approve"], &[]).await;
    assert_exit(&second, 0);
    assert_eq!(committed_orders(&sb), 2, "{}", stdout(&second));
    assert!(
        stdout(&second).contains("adopt"),
        "the second checkout adopts: {}",
        stdout(&second)
    );
    for dir in [a.path(), b.path()] {
        assert_exit(
            &cwa_in(&sb, dir, &["plan", "--detailed-exitcode"], &[]).await,
            0,
        );
    }
    let (sa, sb_state) = (load(&a.path().join("state")), load(&b.path().join("state")));
    assert_eq!(
        sa.resources.get("telnyx_number.new_00000").map(|r| &r.id),
        sb_state
            .resources
            .get("telnyx_number.new_00000")
            .map(|r| &r.id),
        "both checkouts own the same number"
    );
    assert!(orphans(&sb, &before, &sb_state).await.is_empty());
}

/// A state/ that was never committed has a lineage of its own, so its references are new and it
/// cannot find what another lineage bought: its plan warns, naming each number cwa bought for
/// another state that this one does not own (the possible duplicates). A checkout of the state
/// that bought them gets no such warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_warns_of_numbers_cwa_bought_for_another_lineage() {
    let sb = TestSandbox::start("synthetic:0").await;
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [first.path(), second.path()] {
        std::fs::write(dir.join("lines.toml"), small_declaration()).unwrap();
    }
    assert_exit(
        &cwa_in(&sb, first.path(), &["apply", "--auto-approve"], &[]).await,
        0,
    );
    let bought: Vec<String> = load(&first.path().join("state"))
        .resources
        .values()
        .filter(|r| r.kind() == Kind::TelnyxNumber)
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(bought.len(), 2);

    let warnings = |out: &Output| -> Vec<serde_json::Value> {
        let plan: serde_json::Value =
            serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)));
        plan["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "number-of-another-lineage")
            .cloned()
            .collect()
    };
    // A second, never committed state/: a lineage of its own.
    let out = cwa_in(&sb, second.path(), &["plan", "--json"], &[]).await;
    let found = warnings(&out);
    assert_eq!(found.len(), 2, "{found:#?}");
    for id in &bought {
        assert!(
            found.iter().any(|f| f["severity"] == "warning"
                && f["message"].as_str().unwrap().contains(id.as_str())),
            "{id} not named: {found:#?}"
        );
    }
    let human = cwa_in(&sb, second.path(), &["plan"], &[]).await;
    assert!(
        stdout(&human).contains("bought by cwa for another state")
            || stderr(&human).contains("bought by cwa for another state"),
        "{}{}",
        stdout(&human),
        stderr(&human)
    );
    // The state that bought them, checked out fresh: nothing to warn of.
    let committed = commit_state(first.path());
    let third = tempfile::tempdir().unwrap();
    std::fs::write(third.path().join("lines.toml"), small_declaration()).unwrap();
    fresh_checkout(committed.path(), third.path());
    let out = cwa_in(&sb, third.path(), &["plan", "--json"], &[]).await;
    assert!(warnings(&out).is_empty(), "{}", stdout(&out));
    // Its own lineage, even with its state of the numbers lost (a killed first run): the plan
    // adopts them by reference and warns of nothing.
    fresh_checkout(
        committed_state_of(&load(committed.path()).lineage).path(),
        third.path(),
    );
    let out = cwa_in(&sb, third.path(), &["plan", "--json"], &[]).await;
    assert!(warnings(&out).is_empty(), "{}", stdout(&out));
}

/// An empty, saved state of `lineage` (what a first apply writes before its first provider
/// write).
fn committed_state_of(lineage: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut state = State::new();
    state.lineage = lineage.to_string();
    StateStore::new(dir.path()).save(&mut state).unwrap();
    dir
}

/// Number orders carry a reference derived from the lineage and the address only: the same in
/// every run and on every machine, and nothing of the journal's run id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_orders_carry_a_reference_of_lineage_and_address() {
    let committed = committed_state();
    let lineage = load(committed.path()).lineage;
    let sb = TestSandbox::start("synthetic:0").await;
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("lines.toml"), small_declaration()).unwrap();
    fresh_checkout(committed.path(), work.path());
    assert_exit(
        &cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await,
        0,
    );
    let world = sb.world_json().await.to_string();
    for addr in ["telnyx_number.new_00000", "telnyx_number.new_00001"] {
        let reference = providers::create_reference(&lineage, addr, None);
        assert!(
            world.contains(&format!("\"customer_reference\":\"{reference}\"")),
            "{addr}: no order with {reference}"
        );
    }
}

/// A save that finds state changed under the lock (here: another copy of it written in while
/// the apply runs) stops the run, keeps the journal, leaves the edit in place and names what changed; the
/// next run reconciles and converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_edited_during_apply_is_never_overwritten() {
    let committed = committed_state();
    let sb = TestSandbox::start("synthetic:0").await;
    sb.sandbox.set_faults(FaultConfig {
        latency_ms: 150,
        ..FaultConfig::default()
    });
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("lines.toml"), small_declaration()).unwrap();
    fresh_checkout(committed.path(), work.path());
    let state_path = work.path().join("state/state.json");
    let editor = {
        let state_path = state_path.clone();
        let journal = work.path().join("state/journal.jsonl");
        std::thread::spawn(move || {
            for _ in 0..4_000 {
                // A create has completed: the apply is running, holds the lock, and has a
                // journal that the next run needs.
                let created = std::fs::read_to_string(&journal)
                    .is_ok_and(|j| j.contains("\"phase\":\"done\""));
                if created {
                    // Shards are never edited by hand (that is a corrupt state): the edit is
                    // another copy of the state written in, as by another checkout.
                    let store = StateStore::new(state_path.parent().unwrap());
                    let mut edited = store.load().unwrap();
                    let first = edited
                        .resources
                        .values_mut()
                        .next()
                        .expect("an owned resource");
                    first.church = Some("edited-by-hand".into());
                    store.save_copy(&mut edited).unwrap();
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            false
        })
    };
    let out = cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await;
    assert!(editor.join().unwrap(), "the apply never created anything");
    assert_exit(&out, 1);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let on_disk = load(&work.path().join("state"));
    let (edited, _) = on_disk
        .resources
        .iter()
        .find(|(_, r)| r.church.as_deref() == Some("edited-by-hand"))
        .expect("the hand edit was overwritten");
    assert!(
        text.contains("changed since this apply read it")
            && text.contains(&format!("{edited} changed")),
        "{text}"
    );
    assert!(
        work.path().join("state/journal.jsonl").exists(),
        "the journal is kept"
    );
    sb.sandbox.set_faults(FaultConfig::default());
    let rerun = cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await;
    assert_exit(&rerun, 0);
    assert_exit(
        &cwa_in(&sb, work.path(), &["plan", "--detailed-exitcode"], &[]).await,
        0,
    );
    assert_eq!(committed_orders(&sb), 2);
}

// ---------------------------------------------------------------------------------------------
// class 6: audit gaps

/// Objects reconcile recovers from a killed run's journal, and writes whose outcome the killed
/// run never learned, get audit entries: every object created has an audited create or adopt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_recoveries_and_unknown_outcomes_are_audited() {
    let committed = committed_state();
    for step in 1..=6 {
        let sb = TestSandbox::start("synthetic:0").await;
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("lines.toml"), small_declaration()).unwrap();
        fresh_checkout(committed.path(), work.path());
        let before = live_ids(&sb).await;
        let crash = format!("after:{step}");
        let killed = cwa_in(
            &sb,
            work.path(),
            &["apply", "--auto-approve"],
            &[("CWA_TEST_CRASH_AT", &crash)],
        )
        .await;
        assert_ne!(killed.status.code(), Some(0), "step {step} exists");
        let rerun = cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await;
        assert_exit(&rerun, 0);
        assert!(
            stdout(&rerun).contains("interrupted run"),
            "{}",
            stdout(&rerun)
        );
        let audit = Journal::new(&StateStore::new(work.path().join("state")))
            .audit_entries()
            .unwrap();
        let created: Vec<_> = live_ids(&sb).await.difference(&before).cloned().collect();
        for (kind, id) in &created {
            let audited = audit.iter().any(|e| {
                e.id.as_deref() == Some(id.as_str())
                    && (e.action == "create" || e.action == "adopt")
                    && e.outcome.starts_with("ok")
            });
            assert!(
                audited,
                "step {step}: {kind} {id} has no audited create: {audit:#?}"
            );
        }
        assert!(
            audit.iter().any(|e| e.outcome.contains("interrupted run")),
            "step {step}: the recovery is audited: {audit:#?}"
        );
    }
}

/// An update killed after it was sent but before its answer was recorded has an outcome no one
/// knows; the rerun audits it as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_with_unknown_outcome_is_audited() {
    let ctx = Ctx::runbook().await;
    std::fs::create_dir_all(ctx.path("state")).unwrap();
    std::fs::copy(
        repo_root().join("state/state.json"),
        ctx.path("state/state.json"),
    )
    .unwrap();
    // A dispatch-rule update whose answer never comes: outcome unknown, within one run.
    ctx.sb.sandbox.set_faults(FaultConfig {
        rules: vec![FaultRule {
            kind: FaultKind::LostResponse,
            method: Some("POST".into()),
            path_prefix: "/twirp/livekit.SIP/UpdateSIPDispatchRule".into(),
            count: None,
            probability: None,
            seconds: None,
            status: None,
        }],
        ..FaultConfig::default()
    });
    let out = ctx
        .cwa_env(
            &["apply", "--auto-approve"],
            &[("CWA_HTTP_TIMEOUT_MS", "1500")],
        )
        .await;
    assert_exit(&out, 1);
    let audit = Journal::new(&StateStore::new(ctx.path("state")))
        .audit_entries()
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.address.starts_with("livekit_dispatch_rule.")
                && e.outcome.starts_with("unknown")),
        "{audit:#?}"
    );
}

/// The audit log is committed beside state.json (a runner's record outlives the runner) and is
/// rotated append-only: a rotated file never changes again and every entry reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_committed_and_rotated_append_only() {
    let ignored = |path: &str| {
        std::process::Command::new("git")
            .args(["check-ignore", "-q", path])
            .current_dir(repo_root())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    assert!(
        !ignored("state/audit.jsonl"),
        "audit.jsonl must be committed"
    );
    assert!(!ignored("state/audit-20260101T000000Z-000001.jsonl"));
    assert!(ignored("state/journal.jsonl") && ignored("state/lock.json"));
    let workflow =
        std::fs::read_to_string(repo_root().join(".github/workflows/apply.yml")).unwrap();
    assert!(
        workflow.contains("git add state/\n"),
        "the apply workflow commits all of state/ (its .gitignore picks the files)"
    );

    let committed = committed_state();
    let sb = TestSandbox::start("synthetic:0").await;
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("lines.toml"), small_declaration()).unwrap();
    fresh_checkout(committed.path(), work.path());
    let small = [("CWA_AUDIT_ROTATE_BYTES", "300")];
    assert_exit(
        &cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &small).await,
        0,
    );
    let rotated = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir.join("state"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("audit-")
            })
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        files.sort();
        files
    };
    let first = rotated(work.path());
    assert!(first.len() >= 2, "rotated: {first:?}");
    let entries_before = Journal::new(&StateStore::new(work.path().join("state")))
        .audit_entries()
        .unwrap()
        .len();
    let mut text = small_declaration();
    text.push_str(
        "\n[church.late]\nid = \"00000000-0000-4000-8000-0000000000c1\"\nname = \"Late Church\"\nnumber = \"auto\"\narea_code = \"734\"\n",
    );
    std::fs::write(work.path().join("lines.toml"), text).unwrap();
    assert_exit(
        &cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &small).await,
        0,
    );
    let second = rotated(work.path());
    assert_eq!(
        &second[..first.len()],
        &first[..],
        "rotated files never change"
    );
    let entries_after = Journal::new(&StateStore::new(work.path().join("state")))
        .audit_entries()
        .unwrap();
    assert!(entries_after.len() > entries_before);
    assert!(entries_after
        .iter()
        .any(|e| e.address == "telnyx_number.late" && e.action == "create"));
}

// ---------------------------------------------------------------------------------------------
// class 7: secrets

/// `*_env` names that would hand cwa's own credentials (or an ordinary variable) to a provider
/// are refused at validate, at their line, with nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_names_of_provider_credentials_and_ordinary_variables_are_refused() {
    let ctx = Ctx::runbook().await;
    let original = ctx.lines_toml();
    let line_of = |text: &str, needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap()
    };
    for name in [
        "LIVEKIT_API_SECRET",
        "LIVEKIT_API_KEY",
        "LIVEKIT_URL",
        "TELNYX_API_KEY",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_ACCOUNT_SID",
        "PATH",
        "HOME",
        "CI",
        "GITHUB_TOKEN",
        "RUNNER_TEMP",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "CWA_FINGERPRINT_KEY",
        "livekit_api_secret",
    ] {
        let edited = original.replacen(
            "password_env = \"TELNYX_FQDN_PASSWORD\"",
            &format!("password_env = \"{name}\""),
            1,
        );
        ctx.set_lines_toml(&edited);
        for args in [&["validate"][..], &["apply", "--auto-approve"][..]] {
            let out = ctx.cwa(args).await;
            assert_exit(&out, 1);
            let err = stderr(&out);
            assert!(
                err.contains("cwa::config::secret_env_name"),
                "{name}: {err}"
            );
            let line = line_of(&edited, &format!("password_env = \"{name}\""));
            assert!(
                err.contains(&format!(":{line}:")),
                "{name}: not at line {line}: {err}"
            );
        }
        assert!(!ctx.path("state").exists(), "{name}: state/ created");
    }
    assert!(ctx.writes().is_empty(), "{:?}", ctx.writes());
    let docs = std::fs::read_to_string(repo_root().join("docs/lines-toml.md")).unwrap();
    for name in [
        "LIVEKIT_API_SECRET",
        "TWILIO_AUTH_TOKEN",
        "GITHUB_*",
        "RUNNER_*",
        "PATH",
    ] {
        assert!(docs.contains(name), "docs/lines-toml.md lists {name}");
    }
}

/// A SIP secret whose value is a credential cwa runs with (a provider's, the state backend's
/// password, the fingerprint key), under whatever name, is refused at apply before any write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_whose_value_is_a_provider_credential_is_never_sent() {
    // The sandbox's own credentials are set by the context; the state backend's password and
    // the fingerprint key are set here, to a value the SIP secret then shares.
    for (variable, credential) in [
        ("LIVEKIT_API_SECRET", cwa::sandbox::LIVEKIT_API_SECRET),
        ("TELNYX_API_KEY", cwa::sandbox::TELNYX_API_KEY),
        ("TWILIO_AUTH_TOKEN", cwa::sandbox::TWILIO_AUTH_TOKEN),
        ("PGPASSWORD", "the-state-databases-password-1"),
        ("CWA_FINGERPRINT_KEY", "the-fingerprint-key-of-this-repo-1"),
    ] {
        let ctx = Ctx::runbook().await;
        let out = ctx
            .cwa_env(
                &["apply", "--auto-approve"],
                &[(variable, credential), ("TELNYX_FQDN_PASSWORD", credential)],
            )
            .await;
        assert_exit(&out, 1);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            text.contains("is the value of")
                && text.contains(&format!("{variable}, a credential cwa uses")),
            "{variable}: {text}"
        );
        assert!(!text.contains(credential), "the value is never shown");
        let writes: Vec<_> = ctx
            .writes()
            .into_iter()
            .filter(|w| !w.path.starts_with("/twirp/livekit.SIP/List"))
            .collect();
        assert!(writes.is_empty(), "nothing is written: {writes:?}");
    }
}

/// Every secret fingerprint state holds, by address.
fn state_secrets(state: &State) -> Vec<(String, String)> {
    state
        .resources
        .iter()
        .flat_map(|(addr, r)| {
            r.spec
                .secrets()
                .into_iter()
                .filter_map(move |(_, s)| match s {
                    cwa::model::SecretRef::Fingerprint(f) => Some((addr.clone(), f.clone())),
                    _ => None,
                })
        })
        .collect()
}

/// Fingerprints in state are keyed MACs bound to their address: no one without the key can test
/// a guess (the sandbox's known passwords, hashed the old way, are nowhere), the password the
/// credential connection and the outbound trunk share shows as two different values, and the
/// key id is recorded. Rotating the key shows no change in a plan; the next apply rewrites
/// every fingerprint under the new key. A `--refresh=false` plan needs no key at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprints_are_keyed_bound_to_their_address_and_rotate_without_a_change() {
    let ctx = Ctx::runbook().await;
    let k1 = [("CWA_FINGERPRINT_KEY", "first key of this test")];
    let k2 = [("CWA_FINGERPRINT_KEY", "second key of this test")];
    assert_exit(&ctx.cwa_env(&["apply", "--auto-approve"], &k1).await, 0);
    let text = std::fs::read_to_string(ctx.path("state/state.json")).unwrap();
    for known in [
        cwa::sandbox::TELNYX_FQDN_PASSWORD,
        cwa::sandbox::TELNYX_OUTBOUND_SIP_PASSWORD,
    ] {
        let unkeyed = cwa::model::fingerprint_v1(known);
        assert!(
            !text.contains(&unkeyed[7..]),
            "an unkeyed fingerprint of {known}"
        );
    }
    let first = load(&ctx.path("state"));
    let secrets = state_secrets(&first);
    assert!(secrets.len() >= 3, "{secrets:?}");
    let kid = first.fingerprint_key_id.clone().expect("a key id in state");
    for (addr, f) in &secrets {
        assert!(f.starts_with(&format!("mac:{kid}:")), "{addr}: {f}");
    }
    let distinct: BTreeSet<&String> = secrets.iter().map(|(_, f)| f).collect();
    assert_eq!(
        distinct.len(),
        secrets.len(),
        "equal fingerprints reveal reuse: {secrets:?}"
    );

    assert_exit(&ctx.cwa_env(&["plan", "--detailed-exitcode"], &k1).await, 0);
    let rotated = ctx.cwa_env(&["plan", "--detailed-exitcode"], &k2).await;
    assert_exit(&rotated, 0);
    let writes_before = ctx.writes().len();
    assert_exit(&ctx.cwa_env(&["apply", "--auto-approve"], &k2).await, 0);
    assert_eq!(
        ctx.writes().len(),
        writes_before,
        "re-fingerprinting writes no provider"
    );
    let second = load(&ctx.path("state"));
    let kid2 = second.fingerprint_key_id.clone().unwrap();
    assert_ne!(kid, kid2);
    let after = state_secrets(&second);
    assert_eq!(after.len(), secrets.len());
    for ((addr, old), (_, new)) in secrets.iter().zip(&after) {
        assert_ne!(old, new, "{addr} kept its old fingerprint");
        assert!(new.starts_with(&format!("mac:{kid2}:")), "{addr}: {new}");
    }
    assert_exit(&ctx.cwa_env(&["plan", "--detailed-exitcode"], &k2).await, 0);

    // No key, no credential, secrets in the environment or not: a plan against state alone.
    for extra in [
        &[][..],
        &[("TELNYX_FQDN_PASSWORD", "a value nobody declared")][..],
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cwa"));
        cmd.current_dir(ctx.work.path())
            .args(["plan", "--refresh=false", "--detailed-exitcode"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .envs(extra.iter().copied());
        let out = cmd.output().unwrap();
        assert_exit(&out, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// class 8: state files

/// A state/state.json that is a symlink stays one: the write goes to the file it points to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_state_file_is_written_through() {
    let ctx = Ctx::runbook().await;
    let shared = ctx.path("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::copy(
        repo_root().join("state/state.json"),
        shared.join("state.json"),
    )
    .unwrap();
    std::fs::create_dir_all(ctx.path("state")).unwrap();
    std::os::unix::fs::symlink("../shared/state.json", ctx.path("state/state.json")).unwrap();
    ctx.set_lines_toml(&format!("{}{NEW_CHURCHES}", ctx.lines_toml()));
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let meta = std::fs::symlink_metadata(ctx.path("state/state.json")).unwrap();
    assert!(meta.file_type().is_symlink(), "the symlink was replaced");
    let target = load(&shared);
    assert!(target.resources.contains_key("telnyx_number.grace"));
    assert!(target.serial > 1);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);

    // A dangling link is refused with a diagnostic, before any provider write.
    let ctx = Ctx::runbook().await;
    std::fs::create_dir_all(ctx.path("state")).unwrap();
    std::os::unix::fs::symlink("../nowhere/state.json", ctx.path("state/state.json")).unwrap();
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("cwa::state::io"), "{}", stderr(&out));
    assert!(ctx.writes().is_empty());
}

/// A serial at u64::MAX is a corrupt state, refused before any write, for every command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_at_its_maximum_is_a_corrupt_state_not_a_wrap() {
    let ctx = Ctx::runbook().await;
    std::fs::create_dir_all(ctx.path("state")).unwrap();
    let text = std::fs::read_to_string(repo_root().join("state/state.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["serial"] = u64::MAX.into();
    let maxed = serde_json::to_string_pretty(&v).unwrap();
    std::fs::write(ctx.path("state/state.json"), &maxed).unwrap();
    for args in [
        &["apply", "--auto-approve"][..],
        &["plan"][..],
        &["plan", "--refresh=false"][..],
        &["state", "list"][..],
    ] {
        let out = ctx.cwa(args).await;
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains("cwa::state::corrupt") && stderr(&out).contains("u64::MAX"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"));
    }
    assert_eq!(
        std::fs::read_to_string(ctx.path("state/state.json")).unwrap(),
        maxed
    );
    assert!(ctx.writes().is_empty());
}

/// An invalid lines.toml creates nothing on disk: no state/, no lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_declaration_creates_nothing_on_disk() {
    let ctx = Ctx::runbook().await;
    for bad in [
        "version = 1\n[church.x]\nid = \"not-a-uuid\"\n",
        "not toml at all [",
    ] {
        ctx.set_lines_toml(bad);
        for args in [
            &["apply", "--auto-approve"][..],
            &["plan"][..],
            &["plan", "--refresh=false"][..],
            &["validate"][..],
        ] {
            let out = ctx.cwa(args).await;
            assert_exit(&out, 1);
            assert!(!ctx.path("state").exists(), "{args:?} created state/");
        }
    }
    assert!(ctx.requests().iter().all(|r| !r.write));
}

/// A lock whose holder is a zombie (exited, not reaped), or whose pid now belongs to another
/// process, is taken over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_zombie_or_a_reused_pid_is_taken_over() {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    // A zombie: a child that exits and is not waited for (until the end of the test).
    let mut zombie = std::process::Command::new("true").spawn().unwrap();
    let zombie_pid = zombie.id();
    for _ in 0..500 {
        let stat = std::fs::read_to_string(format!("/proc/{zombie_pid}/stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let me = std::process::id();
    let my_start = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
    let ticks: u64 = my_start
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let locks = [
        serde_json::json!({"holder": format!("test@cwa@{host}"), "pid": zombie_pid,
            "time": "2026-01-01T00:00:00Z", "operation": "apply"}),
        // This test process is alive, but it is not the process that took the lock: that one
        // started at another instant.
        serde_json::json!({"holder": format!("test@cwa@{host}"), "pid": me,
            "time": "2026-01-01T00:00:00Z", "operation": "apply",
            "started": {"boot_id": boot.trim(), "ticks": ticks + 1}}),
    ];
    for lock in locks {
        let ctx = Ctx::runbook().await;
        std::fs::create_dir_all(ctx.path("state")).unwrap();
        std::fs::write(ctx.path("state/lock.json"), lock.to_string()).unwrap();
        let out = ctx.cwa(&["apply", "--auto-approve"]).await;
        assert_exit(&out, 0);
        assert!(
            stderr(&out).contains("taking over the lock"),
            "{}",
            stderr(&out)
        );
        assert!(!ctx.path("state/lock.json").exists());
    }
    zombie.wait().unwrap();
}

/// One format_version policy: a newer state is refused clearly by every command; read-only
/// commands never rewrite an older state to migrate it; apply migrates it and keeps its
/// lineage (purchase references derive from it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_version_is_one_policy_and_the_lineage_survives_migration() {
    let ctx = Ctx::runbook().await;
    std::fs::create_dir_all(ctx.path("state")).unwrap();
    let text = std::fs::read_to_string(repo_root().join("state/state.json")).unwrap();
    let mut newer: serde_json::Value = serde_json::from_str(&text).unwrap();
    newer["format_version"] = (cwa::state::FORMAT_VERSION + 1).into();
    let newer = serde_json::to_string_pretty(&newer).unwrap();
    std::fs::write(ctx.path("state/state.json"), &newer).unwrap();
    for args in STATE_READERS {
        let out = ctx.cwa(args).await;
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains("cwa::state::newer"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(ctx.path("state/state.json")).unwrap(),
        newer
    );

    // The repository's state as an older cwa wrote it (format 1, unkeyed fingerprints).
    let mut older: serde_json::Value = serde_json::from_str(&text).unwrap();
    older["format_version"] = 1.into();
    let older = serde_json::to_string_pretty(&older).unwrap() + "\n";
    std::fs::write(ctx.path("state/state.json"), &older).unwrap();
    let lineage = load(&ctx.path("state")).lineage;
    for args in [
        &["plan"][..],
        &["plan", "--refresh=false"][..],
        &["state", "list"][..],
        &["drift"][..],
        &["check"][..],
        &["validate"][..],
    ] {
        let _ = ctx.cwa(args).await;
        assert_eq!(
            std::fs::read_to_string(ctx.path("state/state.json")).unwrap(),
            older,
            "{args:?} rewrote state"
        );
    }
    ctx.set_lines_toml(&format!("{}{NEW_CHURCHES}", ctx.lines_toml()));
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let migrated = load(&ctx.path("state"));
    assert_eq!(migrated.format_version, cwa::state::FORMAT_VERSION);
    assert_eq!(
        migrated.lineage, lineage,
        "the lineage survives the migration"
    );
    // The unkeyed fingerprints of format 1 (two of them equal: a shared password) are gone.
    let secrets = state_secrets(&migrated);
    assert!(secrets.len() >= 3, "{secrets:?}");
    assert!(
        secrets.iter().all(|(_, f)| f.starts_with("mac:")),
        "not migrated: {secrets:?}"
    );
    let distinct: BTreeSet<&String> = secrets.iter().map(|(_, f)| f).collect();
    assert_eq!(distinct.len(), secrets.len());
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

// ---------------------------------------------------------------------------------------------
// issue 17: state that scales in git (a manifest of content-addressed shards)

/// The shard files state.json names, relative to the state directory.
fn named_shards(state_dir: &Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(state_dir.join("state.json")) else {
        return BTreeSet::new();
    };
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    manifest["shards"]
        .as_array()
        .expect("state.json is a manifest of shards")
        .iter()
        .map(|s| s["file"].as_str().unwrap().to_string())
        .collect()
}

/// Every file in `state/shards/`, as `shards/NAME`.
fn shard_files(state_dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(state_dir.join("shards"))
        .into_iter()
        .flatten()
        .map(|e| format!("shards/{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

/// A work directory whose apply of two new churches went through, on a fresh sandbox.
async fn applied_checkout() -> (TestSandbox, tempfile::TempDir) {
    let (sb, work) = fresh_world().await;
    assert_exit(
        &cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await,
        0,
    );
    (sb, work)
}

/// A save killed at each of its steps (after the first new shard, after all of them, after the
/// backup, after the manifest's rename, in the middle of collecting old shards) leaves a state
/// that reads whole: the previous one before the manifest's rename, the new one after it. The
/// rerun converges, buys nothing twice, and leaves in shards/ exactly what the manifest names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_killed_at_each_step_leaves_the_previous_or_the_new_state_whole() {
    let mut seen = BTreeSet::new();
    for moment in [
        "save-shard",
        "save-shards-written",
        "save-backup",
        "save-manifest",
        "save-gc",
    ] {
        for nth in [1, 3] {
            let (sb, work) = fresh_world().await;
            let state_dir = work.path().join("state");
            let before = live_ids(&sb).await;
            let crash = format!("{moment}:{nth}");
            let killed = apply_crashing_at(&sb, work.path(), &crash).await;
            if killed.status.code() == Some(0) {
                continue;
            }
            assert!(
                stderr(&killed).contains("aborting"),
                "{crash}: {}",
                stderr(&killed)
            );
            seen.insert(moment);
            let after_crash = StateStore::new(&state_dir)
                .load()
                .unwrap_or_else(|e| panic!("crash at {crash}: the state does not read whole: {e}"));
            let backup: Option<serde_json::Value> =
                std::fs::read_to_string(state_dir.join("state.json.backup"))
                    .ok()
                    .map(|t| serde_json::from_str(&t).unwrap());
            let backup_serial = backup.as_ref().map(|b| b["serial"].as_u64().unwrap());
            let one_on = backup_serial.map(|s| s + 1);
            match moment {
                // Between the backup and the manifest's rename: state.json is still the
                // previous state, and the backup holds it too.
                "save-backup" => {
                    if state_dir.join("state.json").exists() {
                        assert_eq!(backup_serial, Some(after_crash.serial), "{crash}");
                    }
                }
                // Before the backup: state.json and the backup are the last save's.
                "save-shard" | "save-shards-written" => {
                    if backup_serial.is_some() {
                        assert_eq!(one_on, Some(after_crash.serial), "{crash}");
                    }
                    if moment == "save-shard" {
                        let stray = shard_files(&state_dir)
                            .difference(&named_shards(&state_dir))
                            .count();
                        assert!(stray >= 1, "{crash}: the new shards are written first");
                    }
                }
                // After the rename: the new state, one serial on from the backup.
                _ => assert_eq!(one_on.unwrap_or(1), after_crash.serial, "{crash}"),
            }
            let rerun = cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await;
            assert_exit(&rerun, 0);
            assert_exit(
                &cwa_in(&sb, work.path(), &["plan", "--detailed-exitcode"], &[]).await,
                0,
            );
            let created: BTreeSet<_> = live_ids(&sb).await.difference(&before).cloned().collect();
            assert_eq!(
                count_kind(&created, Kind::TelnyxNumber),
                2,
                "crash at {crash}: each number bought once"
            );
            let orphaned = orphans(&sb, &before, &load(&state_dir)).await;
            assert!(
                orphaned.is_empty(),
                "crash at {crash}: orphaned {orphaned:?}"
            );
            assert_eq!(
                shard_files(&state_dir),
                named_shards(&state_dir),
                "crash at {crash}: shards/ holds exactly what the manifest names"
            );
        }
    }
    assert_eq!(
        seen.len(),
        5,
        "every step of a save was crashed at: {seen:?}"
    );
}

/// A shard edited by hand or missing is a corrupt state, named, for every command, before any
/// provider write: its resources are never silently dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_or_missing_shard_is_a_corrupt_state() {
    let (sb, work) = applied_checkout().await;
    let state_dir = work.path().join("state");
    let shard = named_shards(&state_dir).into_iter().next().unwrap();
    let path = state_dir.join(&shard);
    let original = std::fs::read_to_string(&path).unwrap();
    let writes_before = sb.log().iter().filter(|w| w.write).count();
    let edited = original.replacen("\"church\": \"", "\"church\": \"x", 1);
    assert_ne!(edited, original);
    for (case, content) in [("edited", Some(edited)), ("missing", None)] {
        match &content {
            Some(text) => std::fs::write(&path, text).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        for args in STATE_READERS {
            let out = cwa_in(&sb, work.path(), args, &[]).await;
            assert_exit(&out, 1);
            let err = stderr(&out);
            assert!(
                err.contains("cwa::state::corrupt") && err.contains(&shard),
                "{case} {args:?}: {err}"
            );
            let said = if case == "edited" {
                "was edited"
            } else {
                "is missing"
            };
            assert!(err.contains(said), "{case} {args:?}: {err}");
        }
    }
    assert_eq!(sb.log().iter().filter(|w| w.write).count(), writes_before);
    assert!(!state_dir.join("lock.json").exists());
    std::fs::write(&path, &original).unwrap();
    assert_exit(
        &cwa_in(&sb, work.path(), &["plan", "--detailed-exitcode"], &[]).await,
        0,
    );
}

/// A symlinked shard follows the state files' rule: read through; never written through (a
/// save that changes it writes a new regular file and removes the link, not its target); a
/// dangling one is refused before any write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_shard_is_read_through_and_never_written_through() {
    let (sb, work) = applied_checkout().await;
    let state_dir = work.path().join("state");
    let shard = named_shards(&state_dir).into_iter().next().unwrap();
    let elsewhere = work.path().join("elsewhere.json");
    std::fs::rename(state_dir.join(&shard), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, state_dir.join(&shard)).unwrap();
    let target_bytes = std::fs::read(&elsewhere).unwrap();
    let owned_before = load(&state_dir).resources.len();
    assert_exit(
        &cwa_in(&sb, work.path(), &["plan", "--detailed-exitcode"], &[]).await,
        0,
    );
    // A change to the churches of that shard: the save writes a new shard.
    std::fs::write(
        work.path().join("lines.toml"),
        cwa::synthetic::lines_toml_with_new(0, 3),
    )
    .unwrap();
    assert_exit(
        &cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await,
        0,
    );
    assert_eq!(
        std::fs::read(&elsewhere).unwrap(),
        target_bytes,
        "written through"
    );
    assert!(!named_shards(&state_dir).contains(&shard));
    assert!(
        std::fs::symlink_metadata(state_dir.join(&shard)).is_err(),
        "the link is collected"
    );
    assert!(load(&state_dir).resources.len() > owned_before);

    // A dangling link in place of a named shard: an I/O diagnostic, nothing written.
    let shard = named_shards(&state_dir).into_iter().next().unwrap();
    std::fs::remove_file(state_dir.join(&shard)).unwrap();
    std::os::unix::fs::symlink("../nowhere.json", state_dir.join(&shard)).unwrap();
    let writes_before = sb.log().iter().filter(|w| w.write).count();
    let out = cwa_in(&sb, work.path(), &["apply", "--auto-approve"], &[]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("cwa::state::io"), "{}", stderr(&out));
    assert_eq!(sb.log().iter().filter(|w| w.write).count(), writes_before);
}

/// A state of one state.json (as cwa wrote it before shards, the repository's own) is read as
/// is, becomes a manifest and shards on the next write with its lineage, and plans the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_file_state_migrates_on_the_next_write_with_its_lineage_and_plan() {
    let ctx = Ctx::runbook().await;
    std::fs::create_dir_all(ctx.path("state")).unwrap();
    let legacy = std::fs::read_to_string(repo_root().join("state/state.json")).unwrap();
    assert!(
        legacy.contains("\"resources\""),
        "the repository's state is one file"
    );
    std::fs::write(ctx.path("state/state.json"), &legacy).unwrap();
    let before = load(&ctx.path("state"));
    let plan_of = |out: &Output| {
        assert!(
            out.status.code().is_some_and(|c| c == 0 || c == 2),
            "{}",
            stderr(out)
        );
        stdout(out)
    };
    let plan_before = plan_of(
        &ctx.cwa(&["plan", "--refresh=false", "--detailed-exitcode"])
            .await,
    );
    let live_plan_before = plan_of(&ctx.cwa(&["plan", "--detailed-exitcode"]).await);
    assert_eq!(
        std::fs::read_to_string(ctx.path("state/state.json")).unwrap(),
        legacy,
        "a plan rewrote state"
    );
    // A write that changes nothing owned: a lossless copy into another directory.
    let out = ctx.cwa(&["state", "migrate", "--to", "copied"]).await;
    assert_exit(&out, 0);
    let copied = load(&ctx.path("copied"));
    assert_eq!(copied.lineage, before.lineage);
    assert_eq!(copied.resources, before.resources);
    assert_eq!(copied.protected, before.protected);
    assert!(!named_shards(&ctx.path("copied")).is_empty());
    for (args, expected) in [
        (
            &[
                "--state",
                "copied",
                "plan",
                "--refresh=false",
                "--detailed-exitcode",
            ][..],
            &plan_before,
        ),
        (
            &["--state", "copied", "plan", "--detailed-exitcode"][..],
            &live_plan_before,
        ),
    ] {
        assert_eq!(&plan_of(&ctx.cwa(args).await), expected, "{args:?}");
    }
    // In place: the next apply writes the manifest and shards; the old file is the backup.
    ctx.set_lines_toml(&format!("{}{NEW_CHURCHES}", ctx.lines_toml()));
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let migrated = load(&ctx.path("state"));
    assert_eq!(migrated.lineage, before.lineage);
    assert!(migrated.serial > before.serial);
    assert!(!named_shards(&ctx.path("state")).is_empty());
    assert_eq!(
        shard_files(&ctx.path("state")),
        named_shards(&ctx.path("state"))
    );
    for (addr, r) in &before.resources {
        assert_eq!(
            migrated.resources.get(addr).map(|m| &m.id),
            Some(&r.id),
            "{addr} kept"
        );
    }
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

// ---------------------------------------------------------------------------------------------
// `cwa state show` and `cwa state rm` print data from state: never as terminal control

/// Characters a terminal or a viewer acts on, which no output of cwa carries raw.
const HIDDEN: [char; 6] = [
    '\u{1b}', '\u{7}', '\u{7f}', '\u{85}', '\u{2028}', '\u{202e}',
];

/// The repository's state with `edit` applied, written into the context's state/ as it is.
fn state_with(ctx: &Ctx, edit: impl FnOnce(&mut State)) -> State {
    let mut state = load(&repo_root().join("state"));
    edit(&mut state);
    StateStore::new(ctx.path("state"))
        .save_copy(&mut state)
        .unwrap();
    load(&ctx.path("state"))
}

/// `state show` prints valid JSON whose strings escape bidi overrides, line separators, DEL
/// and C1 controls as `\uXXXX` (serde_json leaves them raw), and the value is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_show_escapes_bidi_and_control_characters_in_its_json() {
    let ctx = Ctx::runbook().await;
    let addr = "livekit_dispatch_rule.medhanialem";
    let hostile: String = HIDDEN.iter().collect::<String>() + "Dispatch";
    let state = state_with(&ctx, |s| {
        let r = s.resources.get_mut(addr).unwrap();
        let mut spec = serde_json::to_value(&r.spec).unwrap();
        spec["name"] = hostile.clone().into();
        r.spec = serde_json::from_value(spec).unwrap();
        r.church = Some(format!("church{}", '\u{202e}'));
    });
    let out = ctx.cwa(&["state", "show", addr]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    for c in HIDDEN {
        assert!(!text.contains(c), "{:?} raw in {text:?}", c);
    }
    assert!(text.to_lowercase().contains("\\u202e"), "{text}");
    let json = text.split_once('\n').unwrap().1;
    let shown: cwa::state::StateResource = serde_json::from_str(json).expect("valid JSON");
    assert_eq!(&shown, &state.resources[addr], "the same value");
}

/// `state rm` prints the address and id it forgot escaped for the terminal, and keeps the
/// fingerprints and their key id as they are (it opens no session: rebinding under a random
/// key of its own would make the next plan see every secret as changed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_rm_escapes_its_output_and_keeps_the_fingerprint_key() {
    let ctx = Ctx::runbook().await;
    let addr = "livekit_dispatch_rule.melvindale";
    let hostile_id = format!("SDR_{}]0;owned{}x{}", '\u{1b}', '\u{7}', '\u{202e}');
    let before = state_with(&ctx, |s| {
        s.resources.get_mut(addr).unwrap().id = hostile_id.clone();
        s.fingerprint_key_id = Some("0123456789ab".into());
    });
    let out = ctx.cwa(&["state", "rm", addr]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    for c in HIDDEN {
        assert!(!text.contains(c), "{:?} raw in {text:?}", c);
    }
    assert!(
        text.contains("Stopped managing") && text.contains("\\u{1b}"),
        "{text}"
    );
    let after = load(&ctx.path("state"));
    assert_eq!(after.fingerprint_key_id.as_deref(), Some("0123456789ab"));
    let mut expected = before.resources.clone();
    expected.remove(addr);
    assert_eq!(
        after.resources, expected,
        "every other resource, fingerprints included, kept"
    );
}
