//! State in PostgreSQL, against a real server: a throwaway cluster per test
//! (tests/common/postgres.rs), the real binary, the sandbox on 127.0.0.1.
//!
//! Where the PostgreSQL binaries are absent each test prints a loud notice and passes
//! without running (a failure when `CI` is set).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::postgres::PgCluster;
use crate::common::{assert_exit, stderr, stdout, Ctx, NEW_CHURCHES};
use cwa::model::{Address, Kind};
use cwa::sandbox::FaultConfig;
use cwa::state::{
    AuditEntry, Journal, JournalEntry, JournalPhase, State, StateError, StateLock, StateStore,
};

/// The runbook world with two `auto` churches to buy numbers for, and a cluster.
async fn setup() -> Option<(Ctx, PgCluster)> {
    let pg = PgCluster::start()?;
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!("{}{NEW_CHURCHES}", ctx.lines_toml()));
    Some((ctx, pg))
}

/// Runs cwa against the PostgreSQL state at `url`.
async fn cwa_pg(ctx: &Ctx, url: &str, args: &[&str]) -> std::process::Output {
    cwa_pg_env(ctx, url, args, &[]).await
}

async fn cwa_pg_env(
    ctx: &Ctx,
    url: &str,
    args: &[&str],
    extra: &[(&str, &str)],
) -> std::process::Output {
    let mut env = vec![("CWA_STATE_URL", url)];
    env.extend_from_slice(extra);
    ctx.cwa_env(args, &env).await
}

/// Starts `cwa apply` in the background (a second machine's process), its output kept.
fn spawn_apply(ctx: &Ctx, url: &str, ttl: &str, dir: &std::path::Path) -> Child {
    spawn_apply_env(ctx, url, ttl, dir, &[])
}

fn spawn_apply_env(
    ctx: &Ctx,
    url: &str,
    ttl: &str,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwa"));
    cmd.current_dir(dir)
        .args(["apply", "--auto-approve"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("CWA_OPERATOR", "first@cwa")
        .env("CWA_STATE_URL", url)
        .env("CWA_LEASE_TTL", ttl)
        .env(cwa::sandbox::STRICT_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in ctx
        .sb
        .sandbox
        .env()
        .into_iter()
        .chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    {
        cmd.env(k, v);
    }
    cmd.spawn().expect("cwa starts")
}

/// Waits until `sql` (a count) is positive, or fails after 60 s.
async fn wait_for(pg: &PgCluster, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = pg
            .try_psql(sql)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if n > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "never true: {sql}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn number_orders(ctx: &Ctx) -> usize {
    ctx.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/number_orders")
        .count()
}

fn slow(ctx: &Ctx, ms: u64) {
    ctx.sb.sandbox.set_faults(FaultConfig {
        latency_ms: ms,
        ..FaultConfig::default()
    });
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} {}", child.id());
}

/// Starts a slow apply of workspace `ws` and returns once it journaled a create intent.
async fn apply_until_intent(ctx: &Ctx, pg: &PgCluster, ws: &str) -> (String, Child) {
    let url = pg.url(&format!("workspace={ws}"));
    slow(ctx, 300);
    let first = spawn_apply(ctx, &url, "2", ctx.work.path());
    wait_for(
        pg,
        "SELECT count(*) FROM cwa_journal WHERE phase = 'intent' AND entry->>'operation' = 'create'",
    )
    .await;
    (url, first)
}

/// `cwa apply` waiting up to 30 s for the lease, with a lease of `ttl` seconds.
async fn apply_waiting(ctx: &Ctx, url: &str, ttl: &str) -> std::process::Output {
    cwa_pg_env(
        ctx,
        url,
        &["apply", "--auto-approve", "--lock-timeout", "30"],
        &[("CWA_LEASE_TTL", ttl)],
    )
    .await
}

/// A rerun (waiting out a lease of 2 s) succeeds, and then nothing is left to do.
async fn rerun_converges(ctx: &Ctx, url: &str) -> std::process::Output {
    slow(ctx, 0);
    let rerun = apply_waiting(ctx, url, "2").await;
    assert_exit(&rerun, 0);
    assert_converged(ctx, url).await;
    rerun
}

/// No change left, and each number bought once.
async fn assert_converged(ctx: &Ctx, url: &str) {
    assert_exit(&cwa_pg(ctx, url, &["plan", "--detailed-exitcode"]).await, 0);
    assert_eq!(number_orders(ctx), 2, "nothing bought twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_planfile_drift_and_audit_work_on_postgres_and_leave_no_state_dir() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let url = pg.url("workspace=prod");
    let plan = cwa_pg(&ctx, &url, &["plan", "--out", "plan.json"]).await;
    assert_exit(&plan, 0);
    let apply = cwa_pg(&ctx, &url, &["apply", "plan.json"]).await;
    assert_exit(&apply, 0);
    assert!(
        !ctx.path("state").exists(),
        "a PostgreSQL state writes no state/ directory"
    );
    let resources: i64 = pg
        .psql("SELECT count(*) FROM cwa_resources WHERE workspace = 'prod'")
        .parse()
        .unwrap();
    assert!(resources > 10, "resources are rows: {resources}");
    assert_eq!(
        pg.psql("SELECT count(*) FROM cwa_journal"),
        "0",
        "a finished apply leaves no journal"
    );
    let audited: i64 = pg
        .psql("SELECT count(*) FROM cwa_audit WHERE workspace = 'prod' AND action = 'create' AND outcome = 'ok'")
        .parse()
        .unwrap();
    assert!(audited >= 2, "every create is audited: {audited}");
    assert_eq!(
        pg.psql("SELECT holder IS NULL FROM cwa_leases WHERE workspace = 'prod'"),
        "t",
        "the lease is given back"
    );
    assert_eq!(number_orders(&ctx), 2);
    // The same state, read back: nothing to do, no drift, and the plan file is now stale.
    assert_exit(
        &cwa_pg(&ctx, &url, &["plan", "--detailed-exitcode"]).await,
        0,
    );
    let drift = cwa_pg(&ctx, &url, &["drift"]).await;
    assert_exit(&drift, 0);
    assert!(stdout(&drift).contains("No drift"), "{}", stdout(&drift));
    let stale = cwa_pg(&ctx, &url, &["apply", "plan.json"]).await;
    assert_exit(&stale, 1);
    assert!(stderr(&stale).contains("stale"), "{}", stderr(&stale));
    let list = cwa_pg(&ctx, &url, &["state", "list"]).await;
    assert_exit(&list, 0);
    assert!(stdout(&list).contains("telnyx_number.grace"));
    // Another workspace in the same database is another, empty state.
    let other = cwa_pg(&ctx, &pg.url("workspace=staging"), &["state", "list"]).await;
    assert_exit(&other, 0);
    assert!(stdout(&other).contains("0 resources"), "{}", stdout(&other));
    assert_eq!(number_orders(&ctx), 2, "nothing bought twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flag_wins_over_cwa_state_url_and_a_password_is_never_printed() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    // A URL in the environment, a directory on the command line: the directory is used.
    let out = cwa_pg(&ctx, &pg.url(""), &["--state", "local", "state", "list"]).await;
    assert_exit(&out, 0);
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'cwa_states'"),
        "0"
    );
    // A server that is not there: a clear error naming the URL without its password.
    let down = "postgresql://cwa:hunter2-secret@127.0.0.1:1/cwa";
    let out = ctx.cwa_env(&["--state", down, "plan"], &[]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("cwa::state::postgres"), "{err}");
    assert!(err.contains("postgresql://cwa@127.0.0.1:1/cwa"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    assert!(!stdout(&out).contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_after_the_lease_was_taken_is_refused() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let url = pg.url("workspace=fence");
    let store = StateStore::open(std::path::Path::new(&url), None).unwrap();
    let lock = StateLock::acquire(&store, "test", Duration::ZERO).unwrap();
    let journal = Journal::new(&store);
    let mut state = State::new();
    store.save(&mut state).expect("the holder writes");
    let taken = cwa_pg(&ctx, &url, &["state", "unlock"]).await;
    assert_exit(&taken, 1);
    assert!(
        stderr(&taken).contains("cwa::state::leased"),
        "an unexpired lease is not unlocked without --force: {}",
        stderr(&taken)
    );
    assert_exit(
        &cwa_pg(&ctx, &url, &["state", "unlock", "--force"]).await,
        0,
    );
    let serial = pg.psql("SELECT serial FROM cwa_states WHERE workspace = 'fence'");
    let fenced = |r: Result<(), StateError>| {
        assert!(matches!(r, Err(StateError::Fenced { .. })), "{r:?}");
    };
    fenced(store.save(&mut state.clone()));
    fenced(journal.record(&JournalEntry {
        run: "r".into(),
        time: "t".into(),
        address: Address::new(Kind::TelnyxNumber, "x").to_string(),
        operation: "create".into(),
        phase: JournalPhase::Intent,
        reference: "ref".into(),
        id: None,
        detail: None,
        spec: None,
    }));
    fenced(journal.audit(&AuditEntry {
        time: "t".into(),
        operator: "o".into(),
        address: "telnyx_number.x".into(),
        id: None,
        action: "create".into(),
        outcome: "ok".into(),
    }));
    fenced(journal.clear());
    drop(lock);
    assert_eq!(
        pg.psql("SELECT serial FROM cwa_states WHERE workspace = 'fence'"),
        serial
    );
    assert_eq!(pg.psql("SELECT count(*) FROM cwa_journal"), "0");
    assert_eq!(pg.psql("SELECT count(*) FROM cwa_audit"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_from_two_machines_one_is_refused_naming_the_holder_and_nothing_is_bought_twice(
) {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let url = pg.url("workspace=shared");
    let second_machine = tempfile::tempdir().unwrap();
    std::fs::write(second_machine.path().join("lines.toml"), ctx.lines_toml()).unwrap();
    slow(&ctx, 150);
    let mut first = spawn_apply(&ctx, &url, "30", ctx.work.path());
    wait_for(
        &pg,
        "SELECT count(*) FROM cwa_leases WHERE holder IS NOT NULL",
    )
    .await;
    let dir = second_machine.path().display().to_string();
    let refused = cwa_pg(&ctx, &url, &["-C", &dir, "apply", "--auto-approve"]).await;
    assert_exit(&refused, 1);
    let err = stderr(&refused);
    assert!(
        err.contains("cwa::state::leased") && err.contains("first@cwa@"),
        "refused, naming the holder: {err}"
    );
    let waited = cwa_pg(
        &ctx,
        &url,
        &[
            "-C",
            &dir,
            "apply",
            "--auto-approve",
            "--lock-timeout",
            "120",
        ],
    )
    .await;
    let first = first.wait().expect("the first apply ends");
    assert!(first.success());
    assert_exit(&waited, 0);
    assert_eq!(number_orders(&ctx), 2, "each number bought once");
    assert_exit(
        &cwa_pg(&ctx, &url, &["-C", &dir, "plan", "--detailed-exitcode"]).await,
        0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_killed_with_sigkill_is_taken_over_after_its_lease_and_reconciled() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let (url, mut first) = apply_until_intent(&ctx, &pg, "killed").await;
    signal(&first, "-KILL");
    let _ = first.wait();
    let refused = cwa_pg_env(
        &ctx,
        &url,
        &["apply", "--auto-approve"],
        &[("CWA_LEASE_TTL", "2")],
    )
    .await;
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("first@cwa@"),
        "{}",
        stderr(&refused)
    );
    let rerun = rerun_converges(&ctx, &url).await;
    let err = stderr(&rerun);
    assert!(err.contains("taking over the lease"), "{err}");
    assert!(
        stdout(&rerun).contains("reconciling its journal"),
        "{}",
        stdout(&rerun)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_stopped_past_its_lease_writes_nothing_after_another_took_over() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let url = pg.url("workspace=paused");
    slow(&ctx, 300);
    let first = spawn_apply(&ctx, &url, "2", ctx.work.path());
    // Stopped once its orders were sent: calls already sent cannot be fenced, the next
    // holder finds them by their references.
    let deadline = Instant::now() + Duration::from_secs(60);
    while number_orders(&ctx) < 2 {
        assert!(Instant::now() < deadline, "the first apply never ordered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // At whatever instant that is: between writes, or inside a save's or a journal write's
    // transaction (the lease row locked FOR UPDATE).
    signal(&first, "-STOP");
    slow(&ctx, 0);
    take_over_after_its_lease(&ctx, &url).await;
    let before = state_snapshot(&pg);
    signal(&first, "-CONT");
    let out = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        format!("{said}{err}").contains("was taken over"),
        "the paused holder says its lease was taken: {said}\n{err}"
    );
    assert_eq!(
        state_snapshot(&pg),
        before,
        "nothing the paused holder did landed"
    );
    assert_converged(&ctx, &url).await;
}

/// Once a stopped holder's lease (2 s) has run out, another apply takes it over and succeeds,
/// within 90 s (a take-over that waits on the stopped holder fails the test, not hangs it).
async fn take_over_after_its_lease(ctx: &Ctx, url: &str) {
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let second = spawn_apply_env(
        ctx,
        url,
        "30",
        ctx.work.path(),
        &[("CWA_OPERATOR", "second@cwa")],
    );
    let pid = second.id().to_string();
    let Ok((code, said)) = tokio::time::timeout(Duration::from_secs(90), finished(second)).await
    else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("the take-over was still waiting after 90 s (on the stopped holder?)");
    };
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("taking over the lease"), "{said}");
}

/// Waits for a background cwa to end: its exit code and its stdout and stderr together.
async fn finished(child: Child) -> (Option<i32>, String) {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), said)
}

/// Whether process `pid` is stopped (`T` in /proc/PID/stat).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('T'))
    })
}

/// Issue 19 gap (a): a holder paused between journaling a number order and sending it, past
/// its lease, while another apply took over and bought the number, must not send the order
/// when it resumes: the lease is checked right before every provider write that cannot be
/// undone, and refused once lost. (Without the check it buys a third number.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_before_its_number_order_never_sends_it_after_a_take_over() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let url = pg.url("workspace=ordering");
    let first = spawn_apply_env(
        &ctx,
        &url,
        "2",
        ctx.work.path(),
        &[("CWA_TEST_STOP_AT", "irreversible:1")],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !is_stopped(first.id()) {
        assert!(
            Instant::now() < deadline,
            "the first apply never reached its order"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(number_orders(&ctx), 0, "stopped before its first order");
    take_over_after_its_lease(&ctx, &url).await;
    assert_eq!(number_orders(&ctx), 2);
    signal(&first, "-CONT");
    let (code, said) = finished(first).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("cwa::state::fenced") || said.contains("was taken over"),
        "{said}"
    );
    assert_eq!(
        number_orders(&ctx),
        2,
        "the paused holder sent no order: {said}"
    );
    assert_converged(&ctx, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_apply_is_a_clear_error_and_a_rerun_converges() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let (url, first) = apply_until_intent(&ctx, &pg, "restart").await;
    pg.stop();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (code, said) = finished(first).await;
    pg.start_server();
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("PostgreSQL state at"),
        "a clear error: {said}"
    );
    rerun_converges(&ctx, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_local_to_postgres_and_back_keeps_lineage_and_plans() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let local = ctx.state();
    let plan_local = ctx.cwa(&["plan", "--json"]).await;
    assert_exit(&plan_local, 0);
    let url = pg.url("workspace=moved");
    let to_pg = ctx.cwa(&["state", "migrate", "--to", &url]).await;
    assert_exit(&to_pg, 0);
    assert!(!stdout(&to_pg).contains("hunter2"));
    // Issue 19 gap (b): the audit log is copied in one transaction (its rows share one xmin),
    // not one transaction per entry.
    let copied: Vec<String> = pg
        .psql(
            "SELECT count(*), count(DISTINCT xmin::text) FROM cwa_audit WHERE workspace = 'moved'",
        )
        .split('|')
        .map(|v| v.trim().to_string())
        .collect();
    let entries: usize = copied[0].parse().unwrap();
    assert!(
        entries >= 6,
        "the applies' audit entries were copied: {copied:?}"
    );
    assert_eq!(
        copied[1], "1",
        "one transaction for {entries} audit entries"
    );
    let plan_pg = cwa_pg(&ctx, &url, &["plan", "--json"]).await;
    assert_exit(&plan_pg, 0);
    assert_eq!(
        plan_summary(&stdout(&plan_local)),
        plan_summary(&stdout(&plan_pg))
    );
    assert_exit(
        &cwa_pg(&ctx, &url, &["plan", "--detailed-exitcode"]).await,
        0,
    );
    let back = ctx.path("back");
    let to_dir = cwa_pg(
        &ctx,
        &url,
        &["state", "migrate", "--to", &back.display().to_string()],
    )
    .await;
    assert_exit(&to_dir, 0);
    let returned = StateStore::new(&back).load().unwrap();
    assert_eq!(returned.lineage, local.lineage);
    assert_eq!(returned.resources, local.resources);
    assert_eq!(returned.protected, local.protected);
    assert_eq!(returned.fingerprint_key_id, local.fingerprint_key_id);
    let audit_local = Journal::new(&StateStore::new(ctx.path("state")))
        .audit_entries()
        .unwrap();
    let audit_back = Journal::new(&StateStore::new(&back))
        .audit_entries()
        .unwrap();
    assert_eq!(audit_back, audit_local, "the audit log moves too");
    let plan_back = ctx
        .cwa(&[
            "--state",
            &back.display().to_string(),
            "plan",
            "--detailed-exitcode",
        ])
        .await;
    assert_exit(&plan_back, 0);
    // With a change pending, the three states give the same plan (not only three empty ones).
    ctx.edit_lines_toml("Grace Chapel", "Grace Chapel Renamed");
    let back_dir = back.display().to_string();
    let changed = [
        ctx.cwa(&["plan", "--json"]).await,
        cwa_pg(&ctx, &url, &["plan", "--json"]).await,
        ctx.cwa(&["--state", &back_dir, "plan", "--json"]).await,
    ];
    let plans: Vec<_> = changed
        .iter()
        .map(|out| {
            assert_exit(out, 0);
            plan_summary(&stdout(out))
        })
        .collect();
    assert!(
        plans[0].iter().any(|(_, action)| action == "update"),
        "the rename is an update: {:?}",
        plans[0]
    );
    assert_eq!(plans[1], plans[0], "postgres plans as local does");
    assert_eq!(
        plans[2], plans[0],
        "the state moved back plans as local does"
    );
    // Another state is never overwritten.
    let other = ctx.path("other");
    assert_exit(
        &ctx.cwa(&["--state", &other.display().to_string(), "state", "list"])
            .await,
        0,
    );
    let mut foreign = State::new();
    StateStore::new(&other).save(&mut foreign).unwrap();
    let refused = cwa_pg(
        &ctx,
        &url,
        &["state", "migrate", "--to", &other.display().to_string()],
    )
    .await;
    assert_exit(&refused, 1);
    assert!(stderr(&refused).contains("cwa::state::destination_taken"));
}

/// The changes of a JSON plan as (address, action): what must be identical across backends.
fn plan_summary(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).expect("a JSON plan");
    let mut out: Vec<(String, String)> = v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_string(),
                c["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The first (number, church id) of `cwa export registry`, the row the export tests edit.
async fn first_registry_entry(ctx: &Ctx) -> (String, String) {
    let listed = ctx.cwa(&["export", "registry"]).await;
    assert_exit(&listed, 0);
    let numbers: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&stdout(&listed)).unwrap();
    numbers
        .iter()
        .next()
        .map(|(n, c)| (n.clone(), c.as_str().unwrap().to_string()))
        .expect("the runbook world routes a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_export_upserts_clears_only_its_own_values_and_dry_runs() {
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let ctx = Ctx::runbook().await;
    let original = ctx.lines_toml();
    let extra = r#"
[church.extra]
id = "00000000-0000-4000-8000-0000000000e1"
name = "Extra Church"
number = "+14149990123"
"#;
    ctx.set_lines_toml(&format!("{original}{extra}"));
    let (n1, c1) = first_registry_entry(&ctx).await;
    pg.psql(&format!(
        "CREATE TABLE church_voice_agents (church_id uuid PRIMARY KEY, name text NOT NULL DEFAULT '', twilio_phone_number text); \
         INSERT INTO church_voice_agents VALUES ('{c1}', 'Alpha', '+10000000000'), \
         ('00000000-0000-4000-8000-00000000ffff', 'Theirs', '+13125550000');"
    ));
    let url = pg.url("");
    let table = |pg: &PgCluster| {
        pg.psql("SELECT church_id, name, coalesce(twilio_phone_number, '-') FROM church_voice_agents ORDER BY church_id")
    };
    let before = table(&pg);
    let dry = ctx
        .cwa(&["export", "registry", "--to", &url, "--dry-run"])
        .await;
    assert_exit(&dry, 0);
    assert!(
        stdout(&dry).contains(&format!("~ {c1}: +10000000000 -> {n1}")),
        "{}",
        stdout(&dry)
    );
    assert!(stdout(&dry).contains("+ 00000000-0000-4000-8000-0000000000e1: +14149990123 (new row)"));
    assert_eq!(table(&pg), before, "a dry run writes nothing");
    assert_exit(&ctx.cwa(&["export", "registry", "--to", &url]).await, 0);
    let number_of = |pg: &PgCluster, church: &str| {
        pg.psql(&format!("SELECT coalesce(twilio_phone_number, '-') || '|' || name FROM church_voice_agents WHERE church_id = '{church}'"))
    };
    assert_eq!(
        number_of(&pg, &c1),
        format!("{n1}|Alpha"),
        "other columns untouched"
    );
    assert_eq!(
        number_of(&pg, "00000000-0000-4000-8000-0000000000e1"),
        "+14149990123|"
    );
    let again = ctx.cwa(&["export", "registry", "--to", &url]).await;
    assert!(stdout(&again).contains("0 change(s)"), "{}", stdout(&again));
    // The extra church leaves lines.toml: its number (cwa's) is cleared, the row kept; the
    // row cwa never wrote keeps its value.
    ctx.set_lines_toml(&original);
    assert_exit(&ctx.cwa(&["export", "registry", "--to", &url]).await, 0);
    assert_eq!(number_of(&pg, "00000000-0000-4000-8000-0000000000e1"), "-|");
    assert_eq!(
        number_of(&pg, "00000000-0000-4000-8000-00000000ffff"),
        "+13125550000|Theirs"
    );
}

/// What the workspace holds (serial, audit and journal counts, a digest of the resource
/// rows): unchanged by anything a fenced holder does.
fn state_snapshot(pg: &PgCluster) -> String {
    pg.psql(
        "SELECT (SELECT serial FROM cwa_states), (SELECT count(*) FROM cwa_audit), \
         (SELECT count(*) FROM cwa_journal), (SELECT md5(string_agg(address || id || spec::text, ',' ORDER BY address)) FROM cwa_resources)",
    )
}

/// How many sessions are idle inside an open transaction.
fn idle_in_transaction(pg: &PgCluster) -> i64 {
    pg.psql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")
        .parse()
        .unwrap()
}

/// A holder stopped (SIGSTOP) inside a state save's transaction, its rows written but not
/// committed and the lease row locked `FOR UPDATE`, past its lease: the take-over still
/// proceeds (the server ends a session idle in a transaction for longer than half a lease,
/// which aborts the save), and once resumed the holder is refused: its save never lands, nor
/// anything after it. (Before, the take-over waited on the row lock for as long as the holder
/// stayed stopped.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_stopped_inside_a_save_is_taken_over_and_its_save_never_lands() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let url = pg.url("workspace=insave");
    let first = spawn_apply_env(
        &ctx,
        &url,
        "2",
        ctx.work.path(),
        &[("CWA_TEST_STOP_AT", "pg-save:1")],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !is_stopped(first.id()) {
        assert!(
            Instant::now() < deadline,
            "the first apply never reached its first save"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        idle_in_transaction(&pg),
        1,
        "stopped inside the save's transaction"
    );
    take_over_after_its_lease(&ctx, &url).await;
    assert_eq!(
        idle_in_transaction(&pg),
        0,
        "the stopped save's transaction was ended"
    );
    let before = state_snapshot(&pg);
    signal(&first, "-CONT");
    let (code, said) = finished(first).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("was taken over (it held generation"),
        "the resumed holder is refused (Fenced): {said}"
    );
    assert_eq!(
        state_snapshot(&pg),
        before,
        "nothing the stopped holder did landed"
    );
    assert_converged(&ctx, &url).await;
}

/// `url` connecting as `role` instead of the cluster's superuser.
fn as_role(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (_, host) = rest.split_once('@').expect("a user in the URL");
    format!("{scheme}://{role}@{host}")
}

/// The SQL of README's "What to grant", read from the README itself (so the test runs exactly
/// what it tells an operator to run): its ```sql blocks in order (the schema and owner, the
/// runner's grants, the export's grants) and the optional `GRANT INSERT` for the agent's table.
fn readme_grants() -> (Vec<String>, String) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("**What to grant.**")
        .expect("README has What to grant");
    let end = start
        + readme[start..]
            .find("Locking is a **lease**")
            .expect("the paragraph after it");
    let section = &readme[start..end];
    let blocks = section
        .split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default().to_string())
        .collect();
    let insert = section
        .split("(`GRANT INSERT")
        .nth(1)
        .and_then(|rest| rest.split("`)").next())
        .map(|g| format!("GRANT INSERT{}", g.replace('\n', " ")))
        .expect("README names the optional GRANT INSERT");
    (blocks, insert)
}

/// README, "What to grant", for real: the owner role creates the tables in its own schema on
/// the first run; then a role with exactly the README's grants (no `CREATE` anywhere) plans,
/// applies, plans clean, migrates out and in, unlocks, and exports the registry into the
/// agent's table (refused, writing nothing, for a church with no row until the optional
/// `INSERT` is granted). What those grants do not allow stays impossible: creating a table,
/// changing or deleting audit entries, writing another column of the agent's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_with_exactly_the_readmes_grants_plans_applies_and_exports() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let (blocks, insert) = readme_grants();
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    pg.psql(&blocks[0]);
    let owner = as_role(&pg.url("options=-csearch_path%3Dcwa"), "cwa_owner");
    assert_exit(&cwa_pg(&ctx, &owner, &["state", "list"]).await, 0);
    assert_eq!(
        pg.psql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'cwa' AND tablename LIKE 'cwa\\_%'"
        ),
        "7",
        "the first run created cwa's tables in the owner's schema"
    );
    pg.psql(&blocks[1]);
    let url = as_role(
        &pg.url("options=-csearch_path%3Dcwa&workspace=prod"),
        "cwa_runner",
    );
    let denied = |out: &std::process::Output| {
        let err = stderr(out);
        assert!(!err.contains("permission denied"), "{err}");
    };
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["plan", "--detailed-exitcode"],
        &["drift"],
    ] {
        let out = cwa_pg(&ctx, &url, args).await;
        denied(&out);
        assert_exit(&out, 0);
    }
    assert_eq!(number_orders(&ctx), 2);
    assert_eq!(
        pg.psql("SELECT count(*) > 10 FROM cwa.cwa_resources WHERE workspace = 'prod'"),
        "t"
    );
    // The lease taken and forced open by the role.
    let store = StateStore::open(std::path::Path::new(&url), None).unwrap();
    let lock = StateLock::acquire(&store, "held by the test", Duration::ZERO).unwrap();
    let forced = cwa_pg(&ctx, &url, &["state", "unlock", "--force"]).await;
    denied(&forced);
    assert_exit(&forced, 0);
    drop(lock);
    // Out to a directory and into a new workspace, audit log and all.
    let out_dir = ctx.path("copy").display().to_string();
    let out = cwa_pg(&ctx, &url, &["state", "migrate", "--to", &out_dir]).await;
    denied(&out);
    assert_exit(&out, 0);
    let copy_url = url.replace("workspace=prod", "workspace=copy");
    let back = ctx
        .cwa(&["--state", &out_dir, "state", "migrate", "--to", &copy_url])
        .await;
    denied(&back);
    assert_exit(&back, 0);
    assert_exit(
        &cwa_pg(&ctx, &copy_url, &["plan", "--detailed-exitcode"]).await,
        0,
    );
    // The registry: every church but Hope has a row.
    let registry = cwa_pg(&ctx, &url, &["export", "registry"]).await;
    assert_exit(&registry, 0);
    let numbers: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&stdout(&registry)).unwrap();
    let hope = "00000000-0000-4000-8000-0000000000a2";
    let rows: Vec<String> = numbers
        .values()
        .filter_map(|c| c.as_str())
        .filter(|c| *c != hope)
        .map(|c| format!("('{c}', 'kept')"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(rows.len() >= 2, "{numbers:?}");
    pg.psql(&format!(
        "CREATE TABLE public.church_voice_agents (church_id uuid PRIMARY KEY, name text NOT NULL DEFAULT '', twilio_phone_number text); \
         INSERT INTO public.church_voice_agents (church_id, name) VALUES {};",
        rows.join(", ")
    ));
    pg.psql(&blocks[2]);
    let agents = |pg: &PgCluster| {
        pg.psql("SELECT church_id, name, coalesce(twilio_phone_number, '-') FROM public.church_voice_agents ORDER BY church_id")
    };
    let to = as_role(&pg.url("options=-csearch_path%3Dcwa"), "cwa_runner");
    let before = agents(&pg);
    let dry = export_registry(&ctx, &url, &to, true).await;
    assert_exit(&dry, 0);
    assert!(
        stdout(&dry).contains(&format!("+ {hope}: ")),
        "{}",
        stdout(&dry)
    );
    let refused = export_registry(&ctx, &url, &to, false).await;
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("permission denied"),
        "a church with no row needs INSERT: {}",
        stderr(&refused)
    );
    assert_eq!(agents(&pg), before, "a refused export writes nothing");
    assert_eq!(pg.psql("SELECT count(*) FROM cwa.cwa_registry_writes"), "0");
    pg.psql(&insert);
    let out = export_registry(&ctx, &url, &to, false).await;
    denied(&out);
    assert_exit(&out, 0);
    let after = agents(&pg);
    assert!(
        !after.contains("|-"),
        "every church has its number: {after}"
    );
    assert_eq!(
        after.matches("|kept|").count(),
        rows.len(),
        "the name column untouched: {after}"
    );
    assert_exit(&export_registry(&ctx, &url, &to, false).await, 0);
    // What the grants do not allow.
    for sql in [
        "CREATE TABLE cwa.cwa_extra (a int)",
        "CREATE TABLE public.cwa_extra (a int)",
        "UPDATE cwa.cwa_audit SET outcome = 'rewritten'",
        "DELETE FROM cwa.cwa_audit",
        "UPDATE public.church_voice_agents SET name = 'x'",
        "DELETE FROM public.church_voice_agents",
        "DELETE FROM cwa.cwa_states",
    ] {
        let err = pg
            .try_psql(&format!("SET ROLE cwa_runner; {sql}"))
            .expect_err(sql);
        assert!(err.contains("permission denied"), "{sql}: {err}");
    }
}

/// `cwa export registry --to TO --table public.church_voice_agents`, state read from `url`.
async fn export_registry(ctx: &Ctx, url: &str, to: &str, dry_run: bool) -> std::process::Output {
    let mut args = vec![
        "export",
        "registry",
        "--to",
        to,
        "--table",
        "public.church_voice_agents",
    ];
    if dry_run {
        args.push("--dry-run");
    }
    cwa_pg(ctx, url, &args).await
}

/// README, "Pull requests from forks": after an apply to PostgreSQL the workflow writes a
/// secret-free snapshot (`cwa state migrate --to state`); a fork's pull request, with neither
/// the database URL nor any provider credential, plans against it (`--refresh=false`) and
/// sees no change; the next apply's snapshot replaces it (same lineage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forks_pull_request_plans_against_the_snapshot_without_the_database() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let url = pg.url("workspace=forked");
    let fork_plan = || {
        let out = Command::new(env!("CARGO_BIN_EXE_cwa"))
            .current_dir(ctx.work.path())
            .args(["plan", "--refresh=false", "--detailed-exitcode"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .output()
            .expect("cwa runs");
        (
            out.status.code(),
            format!("{}{}", stdout(&out), stderr(&out)),
        )
    };
    let secrets: Vec<String> = ctx
        .sb
        .sandbox
        .env()
        .into_iter()
        .filter(|(k, _)| !k.ends_with("_URL") && !k.ends_with("_SID"))
        .map(|(_, v)| v)
        .collect();
    for round in 0..2 {
        if round == 1 {
            ctx.set_lines_toml(
                &ctx.lines_toml()
                    .replace("Grace Chapel", "Grace Chapel Renamed"),
            );
        }
        assert_exit(&cwa_pg(&ctx, &url, &["apply", "--auto-approve"]).await, 0);
        assert_exit(
            &cwa_pg(&ctx, &url, &["state", "migrate", "--to", "state"]).await,
            0,
        );
        let (code, said) = fork_plan();
        assert_eq!(code, Some(0), "round {round}: {said}");
        for file in walk(&ctx.path("state")) {
            let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{} holds a credential",
                    file.display()
                );
            }
        }
    }
    let snapshot = StateStore::new(ctx.path("state")).load().unwrap();
    let remote = StateStore::open(std::path::Path::new(&url), None)
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(snapshot.lineage, remote.lineage);
    assert_eq!(snapshot.resources, remote.resources);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `cwa import` into a PostgreSQL workspace: refused while another holds the lease, naming
/// it; then it writes the rows (no state/ directory) and a plan against them has no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_into_postgres_waits_for_the_lease_then_plans_clean() {
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let ctx = Ctx::with_world("synthetic:6", "version = 1\n").await;
    let url = pg.url("workspace=imported");
    let store = StateStore::open(std::path::Path::new(&url), None).unwrap();
    let lock = StateLock::acquire(&store, "held by the test", Duration::ZERO).unwrap();
    let refused = cwa_pg(&ctx, &url, &["import"]).await;
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("cwa::state::leased"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(ctx.lines_toml(), "version = 1\n", "nothing written");
    drop(lock);
    let out = cwa_pg(&ctx, &url, &["import"]).await;
    assert_exit(&out, 0);
    assert!(ctx.writes().is_empty(), "import wrote: {:?}", ctx.writes());
    assert!(!ctx.path("state").exists(), "no state/ directory");
    assert_eq!(
        pg.psql("SELECT count(*) FROM cwa_resources WHERE workspace = 'imported'"),
        (6 * 3 + 3).to_string()
    );
    assert_exit(
        &cwa_pg(&ctx, &url, &["plan", "--detailed-exitcode"]).await,
        0,
    );
}

/// A database whose schema a newer cwa migrated is refused before anything is read or
/// written, as a newer state file is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_migrated_by_a_newer_cwa_is_refused() {
    let Some((ctx, pg)) = setup().await else {
        return;
    };
    let url = pg.url("workspace=newer");
    assert_exit(&cwa_pg(&ctx, &url, &["state", "list"]).await, 0);
    pg.psql("INSERT INTO cwa_schema (version) VALUES (999)");
    let refused = cwa_pg(&ctx, &url, &["apply", "--auto-approve"]).await;
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("cwa::state::newer_schema"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(number_orders(&ctx), 0, "nothing bought");
    assert_eq!(pg.psql("SELECT count(*) FROM cwa_states"), "0");
}

/// The issue says "showing the diff first": the diff is printed before the write, so an export
/// whose commit fails (here a deferred unique constraint, checked only at COMMIT) still shows
/// what it meant to change, says that none of it was written, exits 1, and leaves the table as
/// it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_export_shows_its_diff_before_a_commit_that_fails_and_writes_nothing() {
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let ctx = Ctx::runbook().await;
    let (n1, c1) = first_registry_entry(&ctx).await;
    pg.psql(&format!(
        "CREATE TABLE church_voice_agents (church_id uuid PRIMARY KEY, twilio_phone_number text, \
           CONSTRAINT one_church_per_number UNIQUE (twilio_phone_number) DEFERRABLE INITIALLY DEFERRED); \
         INSERT INTO church_voice_agents VALUES ('{c1}', '+10000000000'), \
         ('00000000-0000-4000-8000-00000000ffff', '{n1}');"
    ));
    let table = |pg: &PgCluster| {
        pg.psql("SELECT church_id, coalesce(twilio_phone_number, '-') FROM church_voice_agents ORDER BY church_id")
    };
    let before = table(&pg);
    let out = ctx.cwa(&["export", "registry", "--to", &pg.url("")]).await;
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains(&format!("~ {c1}: +10000000000 -> {n1}")),
        "the diff is shown before the failed commit: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("none of them was written"),
        "{}",
        stderr(&out)
    );
    assert_eq!(table(&pg), before, "a failed commit writes nothing");
}
