//! Bad input (tests/fixtures/bad_input/): broken lines.toml files, broken, truncated and
//! newer state files, plan files truncated, from a newer format or edited by hand, a journal
//! with a torn middle line, and locks left by dead or unknown processes. Every case must end
//! in a clear diagnostic (its code on stderr), exit 1, no panic, and no write anywhere: the
//! working directory (lines.toml, state/, plan files) is byte-for-byte and mtime-for-mtime
//! the same afterwards, and the sandbox saw no write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::SystemTime;

use crate::common::{repo_root, stderr, stdout, Ctx};
use serde_json::Value;

/// Every file under a directory: contents and modification time.
type Snapshot = BTreeMap<PathBuf, (Vec<u8>, SystemTime)>;

fn snapshot(dir: &Path) -> Snapshot {
    let mut files = Snapshot::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("a readable directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let meta = std::fs::metadata(&path).expect("file metadata");
            let bytes = std::fs::read(&path).expect("a readable file");
            let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
            files.insert(rel, (bytes, meta.modified().expect("an mtime")));
        }
    }
    files
}

fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures/bad_input").join(rel)
}

fn fixture_bytes(rel: &str) -> Vec<u8> {
    std::fs::read(fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// A runbook sandbox and a working directory holding the repository's lines.toml and state/
/// (which describe that world).
async fn ctx() -> Ctx {
    let ctx = Ctx::runbook().await;
    std::fs::create_dir_all(ctx.path("state")).unwrap();
    std::fs::copy(
        repo_root().join("state/state.json"),
        ctx.path("state/state.json"),
    )
    .unwrap();
    ctx
}

/// Runs cwa and asserts: exit 1, the expected diagnostic code on stderr, no panic, nothing in
/// the working directory changed, and no write (or, when `no_requests`, no request at all)
/// reached the sandbox.
async fn assert_refused(
    ctx: &Ctx,
    case: &str,
    args: &[&str],
    code: &str,
    no_requests: bool,
) -> Output {
    let before = snapshot(ctx.work.path());
    let requests_before = ctx.requests().len();
    let writes_before = ctx.writes().len();
    let out = ctx.cwa(args).await;
    let context = describe(case, args, &out);
    assert_eq!(out.status.code(), Some(1), "{context}");
    let err = stderr(&out);
    assert!(err.contains(code), "expected {code}: {context}");
    assert!(!err.contains("panicked"), "{context}");
    let after = snapshot(ctx.work.path());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files appeared or vanished: {context}"
    );
    for (path, (bytes, mtime)) in &before {
        let (bytes_after, mtime_after) = &after[path];
        assert!(
            bytes == bytes_after && mtime == mtime_after,
            "{} was written: {context}",
            path.display()
        );
    }
    assert_eq!(ctx.writes().len(), writes_before, "a write: {context}");
    if no_requests {
        assert_eq!(
            ctx.requests().len(),
            requests_before,
            "a request was sent: {context}"
        );
    }
    out
}

fn describe(case: &str, args: &[&str], out: &Output) -> String {
    format!(
        "case {case}, cwa {}\n--- exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// Broken lines.toml files and the diagnostic code each must produce.
const CONFIGS: &[(&str, &str)] = &[
    ("bad_transport_type", "cwa::config::invalid_value"),
    ("church_id_not_uuid", "cwa::config::invalid_value"),
    ("deeply_nested", "cwa::config::syntax"),
    ("delete_share_out_of_range", "cwa::config::policy"),
    ("duplicate_church_id", "cwa::config::duplicate_church"),
    ("duplicate_table", "cwa::config::syntax"),
    ("empty", "cwa::config::version"),
    ("huge_number", "cwa::config::e164"),
    ("missing_version", "cwa::config::version"),
    ("newer_version", "cwa::config::version"),
    ("not_utf8", "cwa::config::read"),
    ("number_not_a_string", "cwa::config::invalid_value"),
    ("reference_to_wrong_kind", "cwa::config::reference"),
    ("same_number_twice", "cwa::config::duplicate_number"),
    ("short_area_code", "cwa::config::invalid_value"),
    ("unterminated_string", "cwa::config::syntax"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_lines_toml_files_are_refused_without_a_write() {
    let ctx = ctx().await;
    let listed: Vec<&str> = CONFIGS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        listed,
        fixture_names("config", ".toml"),
        "every config fixture has an expected code"
    );
    for (name, code) in CONFIGS {
        std::fs::write(
            ctx.path("lines.toml"),
            fixture_bytes(&format!("config/{name}.toml")),
        )
        .unwrap();
        for args in [
            &["validate"][..],
            &["graph"],
            &["plan"],
            &["plan", "--refresh=false"],
            &["apply", "--auto-approve"],
        ] {
            assert_refused(&ctx, name, args, code, true).await;
        }
    }
}

fn fixture_names(dir: &str, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Broken state files and the diagnostic code each must produce.
const STATES: &[(&str, &str)] = &[
    ("array", "cwa::state::corrupt"),
    ("empty", "cwa::state::corrupt"),
    ("merge_conflict", "cwa::state::corrupt"),
    ("missing_format_version", "cwa::state::corrupt"),
    ("negative_serial", "cwa::state::corrupt"),
    ("newer_format", "cwa::state::newer"),
    ("not_json", "cwa::state::corrupt"),
    ("not_utf8", "cwa::state::io"),
    ("serial_not_a_number", "cwa::state::corrupt"),
    ("truncated", "cwa::state::corrupt"),
    ("unknown_kind", "cwa::state::corrupt"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_truncated_and_newer_state_files_are_refused_without_a_write() {
    let ctx = ctx().await;
    let listed: Vec<&str> = STATES.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, fixture_names("state", ".json"));
    for (name, code) in STATES {
        std::fs::write(
            ctx.path("state/state.json"),
            fixture_bytes(&format!("state/{name}.json")),
        )
        .unwrap();
        for args in [
            &["state", "list"][..],
            &["state", "show", "livekit_inbound_trunk.medhanialem"],
            &["plan"],
            &["plan", "--refresh=false"],
            &["plan", "--out", "plan.json"],
            &["apply", "--auto-approve"],
        ] {
            assert_refused(&ctx, name, args, code, true).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_files_truncated_foreign_or_from_a_newer_format_are_refused() {
    let ctx = ctx().await;
    for name in fixture_names("plan", ".json") {
        std::fs::write(
            ctx.path("plan.json"),
            fixture_bytes(&format!("plan/{name}.json")),
        )
        .unwrap();
        assert_refused(
            &ctx,
            &name,
            &["apply", "plan.json"],
            "is not a cwa plan file",
            false,
        )
        .await;
    }
    std::fs::write(
        ctx.path("plan.json"),
        fixture_bytes("plan/newer_format_version.json"),
    )
    .unwrap();
    let out = ctx.cwa(&["apply", "plan.json"]).await;
    assert!(
        stderr(&out).contains("format_version 2.0 is not readable by this cwa"),
        "{}",
        stderr(&out)
    );
}

/// A fresh plan file of the runbook world, as JSON to edit.
async fn saved_plan(ctx: &Ctx) -> Value {
    let out = ctx.cwa(&["plan", "--out", "plan.json"]).await;
    crate::common::assert_exit(&out, 0);
    serde_json::from_slice(&std::fs::read(ctx.path("plan.json")).unwrap()).unwrap()
}

fn write_plan(ctx: &Ctx, plan: &Value) {
    std::fs::write(
        ctx.path("plan.json"),
        serde_json::to_string_pretty(plan).unwrap(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_files_edited_by_hand_are_refused() {
    let ctx = ctx().await;
    let plan = saved_plan(&ctx).await;
    let changes = plan["changes"].as_array().unwrap();
    let update = changes
        .iter()
        .position(|c| c["action"] == "update")
        .expect("the runbook plan updates something");
    let number = changes
        .iter()
        .position(|c| c["address"] == "telnyx_number.medhanialem")
        .expect("the plan has the church's number");
    let protected = changes
        .iter()
        .position(|c| c["id"] == crate::common::PROTECTED_TRUNK)
        .expect("the plan verifies the protected trunk");

    let mut edits: Vec<(&str, Value)> = Vec::new();
    let mut e = plan.clone();
    e["changes"][update]["action"] = "create".into();
    edits.push(("an update turned into a create", e));
    let mut e = plan.clone();
    e["changes"][number]["action"] = "delete".into();
    e["changes"][number]["irreversible"] = true.into();
    edits.push(("a number release slipped in", e));
    let mut e = plan.clone();
    e["changes"][protected]["action"] = "delete".into();
    edits.push(("a delete of the protected trunk", e));
    let mut e = plan.clone();
    e["changes"][update]["id"] = crate::common::PROTECTED_TRUNK.into();
    edits.push(("an update retargeted at the protected trunk", e));
    let mut e = plan.clone();
    e["fingerprints"]["state"] = "sha256:0000".into();
    edits.push(("a forged state fingerprint", e));
    let mut e = plan.clone();
    e["edges"] = Value::Array(vec![]);
    edits.push(("the change graph emptied (no ordering)", e));
    let mut e = plan.clone();
    e["edges"] = serde_json::json!([[0, 9999]]);
    edits.push(("a change graph edge out of range", e));
    let mut e = plan.clone();
    let edges = e["edges"].as_array_mut().unwrap();
    let first = edges[0].clone();
    edges[0] = serde_json::json!([first[1], first[0]]);
    edits.push(("a change graph edge reversed", e));

    for (case, edited) in edits {
        write_plan(&ctx, &edited);
        let out = assert_refused(&ctx, case, &["apply", "plan.json"], "plan", false).await;
        let text = stderr(&out);
        assert!(
            text.contains("stale") || text.contains("not a cwa plan file"),
            "{case}: the diagnostic says why: {text}"
        );
    }
    ctx.assert_protected_untouched();
}

fn lock_json(holder: &str, pid: u32) -> String {
    serde_json::json!({
        "holder": holder, "pid": pid,
        "time": "2026-11-21T00:00:00Z", "operation": "apply"
    })
    .to_string()
}

fn this_host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// A pid no process has (above the kernel's pid_max).
const DEAD_PID: u32 = 4_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_left_by_dead_or_unknown_processes() {
    let ctx = ctx().await;
    for name in fixture_names("lock", ".json") {
        std::fs::write(
            ctx.path("state/lock.json"),
            fixture_bytes(&format!("lock/{name}.json")),
        )
        .unwrap();
        let code = if name.starts_with("corrupt") {
            "cwa::state::corrupt"
        } else {
            "cwa::state::stale_lock"
        };
        assert_refused(&ctx, &name, &["apply", "--auto-approve"], code, true).await;
        assert!(ctx.path("state/lock.json").exists(), "{name}: lock kept");
    }
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert!(
        stderr(&out).contains("no longer running") && stderr(&out).contains("cwa state unlock"),
        "the stale lock diagnostic says what to do: {}",
        stderr(&out)
    );

    // A live holder (this test's own pid) elsewhere: refused, and it says who holds it.
    std::fs::write(
        ctx.path("state/lock.json"),
        lock_json("someone@elsewhere", std::process::id()),
    )
    .unwrap();
    assert_refused(
        &ctx,
        "live holder",
        &["apply", "--auto-approve"],
        "locked by someone@elsewhere",
        true,
    )
    .await;

    // A dead process on this machine cannot be applying: its lock is taken over, with a warning.
    let here = format!("ci@{}", this_host());
    std::fs::write(ctx.path("state/lock.json"), lock_json(&here, DEAD_PID)).unwrap();
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    crate::common::assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("warning: taking over the lock left by"),
        "{}",
        stderr(&out)
    );
    assert!(
        !ctx.path("state/lock.json").exists(),
        "the lock is released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_with_a_torn_middle_line_stops_apply_before_any_write() {
    let ctx = ctx().await;
    std::fs::write(
        ctx.path("state/journal.jsonl"),
        fixture_bytes("journal/torn_middle_line.jsonl"),
    )
    .unwrap();
    assert_refused(
        &ctx,
        "torn journal",
        &["apply", "--auto-approve"],
        "cwa::state::corrupt",
        true,
    )
    .await;
}

#[test]
fn the_plan_reader_refuses_a_change_graph_pointing_outside_the_plan() {
    let text = String::from_utf8(fixture_bytes("plan/edge_out_of_range.json")).unwrap();
    let err = cwa::plan::Plan::from_json(&text).expect_err("an edge to change 999 is refused");
    assert!(err.contains("999"), "{err}");
}
