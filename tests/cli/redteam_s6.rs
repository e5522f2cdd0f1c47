//! Red team, session 6: what the other helpers landed this session (`cwa add` / `cwa remove`,
//! `--reserve`, `--target`, orders looked up by reference, adoption by natural key), attacked
//! through the real binary against the sandbox, as an attacker and as a careless operator
//! would. RELIABILITY.md section 8 lists every case and its result.

use std::time::{Duration, Instant};

use crate::common::{assert_exit, stderr, stdout, Ctx};
use cwa::sandbox::SandboxOptions;

const ID: &str = "00000000-0000-4000-8000-0000000000f6";

fn add_args<'a>(key: &'a str, id: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["add", "church", key, "--id", id, "--name", "Red Team"];
    args.extend_from_slice(extra);
    args
}

fn reservations(ctx: &Ctx) -> usize {
    ctx.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/number_reservations"))
        .count()
}

fn number_orders(ctx: &Ctx) -> usize {
    ctx.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v2/number_orders")
        .count()
}

async fn applied_runbook() -> Ctx {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    ctx
}

/// The webhook fires for two payments at once (or a shell loop adds churches in parallel):
/// six `cwa add church` of six different churches, each answered exit 0. Every one must be in
/// lines.toml afterwards; a church whose add said "Added" and is not in the file is a paid
/// church with no line, and with `--reserve` a held number nobody will buy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_adds_of_different_churches_all_land_in_lines_toml() {
    let ctx = applied_runbook().await;
    let ids: Vec<String> = (0..6)
        .map(|i| format!("00000000-0000-4000-8000-00000000016{i}"))
        .collect();
    let keys: Vec<String> = (0..6).map(|i| format!("par{i}")).collect();
    let ctx_ref = &ctx;
    let runs = keys.iter().zip(&ids).map(|(k, id)| async move {
        ctx_ref
            .cwa(&add_args(k, id, &["--area-code", "734", "--refresh=false"]))
            .await
    });
    let outs = futures::future::join_all(runs).await;
    let ok = outs.iter().filter(|o| o.status.code() == Some(0)).count();
    let text = ctx.lines_toml();
    let landed = keys
        .iter()
        .filter(|k| text.contains(&format!("[church.{k}]")))
        .count();
    assert_eq!(
        landed, ok,
        "{ok} adds said exit 0, {landed} blocks are in lines.toml"
    );
}

/// A church key that names an explicit block's address: `[church.fallback]` expands to
/// `telnyx_number.fallback`, which is the company fallback number's own block
/// (`[telnyx.number.fallback]`); `outbound_did` likewise. An explicit block overrides the
/// convention field by field (by design, for a hand-written church), so the add validates: the
/// "new church" gets no number of its own (its `area_code` is dropped) and a LiveKit trunk and
/// rule are planned on the company's fallback number (or the outbound DID). `cwa add` must
/// refuse a key whose addresses are already declared, naming the block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_key_naming_an_explicit_blocks_address_is_refused() {
    let ctx = applied_runbook().await;
    let before = ctx.lines_toml();
    for key in ["fallback", "outbound_did"] {
        let out = ctx
            .cwa(&add_args(
                key,
                ID,
                &["--area-code", "734", "--refresh=false"],
            ))
            .await;
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains(&format!("telnyx.number.{key}")),
            "{key}: {}",
            stderr(&out)
        );
        assert_eq!(ctx.lines_toml(), before, "{key}: lines.toml written");
    }
}

/// The same siblings that already held: keys naming the protected trunk's and the test
/// trunk's addresses are refused by the config pipeline (a routing diagnostic); keys that
/// only share a name with another kind (`livekit`: `telnyx_fqdn_connection.livekit`) are fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_keys_naming_protected_or_shared_trunks_are_refused() {
    let ctx = applied_runbook().await;
    let before = ctx.lines_toml();
    for key in ["twilio_main", "twilio_test"] {
        let out = ctx
            .cwa(&add_args(
                key,
                ID,
                &["--area-code", "734", "--refresh=false"],
            ))
            .await;
        assert_exit(&out, 1);
        assert_eq!(ctx.lines_toml(), before, "{key}: lines.toml written");
    }
    let writes = ctx.writes().len();
    for key in ["twilio_main", "twilio_test"] {
        let out = ctx
            .cwa(&add_args(key, ID, &["--area-code", "734", "--reserve"]))
            .await;
        assert_exit(&out, 1);
        assert_eq!(ctx.lines_toml(), before, "{key}: lines.toml written");
    }
    assert_eq!(reservations(&ctx), 0, "reserved for a refused key");
    assert_eq!(ctx.writes().len(), writes);
}

/// The protected trunk's numbers (and the other declared ones) given to `--number`, in the
/// form E.164 wants and in others; the protected trunk given to `--trunk` as its address, its
/// id and its short name: refused, file unchanged, no provider write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_numbers_and_trunks_given_to_add_are_refused() {
    let ctx = applied_runbook().await;
    let before = ctx.lines_toml();
    let writes = ctx.writes().len();
    for number in [
        "+18886030316",
        "+14696152221",
        "+13658254095",
        "+13658253552",
        "+12268830000",
        "+14697288326",
        "+1 888 603 0316",
        "18886030316",
        "+1888603031\u{FF16}",
    ] {
        let out = ctx
            .cwa(&add_args(
                "pz",
                ID,
                &["--number", number, "--refresh=false"],
            ))
            .await;
        assert_exit(&out, 1);
        assert_eq!(ctx.lines_toml(), before, "{number}: lines.toml written");
    }
    for trunk in [
        "livekit_inbound_trunk.twilio_main",
        "ST_Xa3Bp9aixRFP",
        "twilio_main",
        " livekit_inbound_trunk.twilio_main",
    ] {
        let out = ctx
            .cwa(&add_args(
                "pz",
                ID,
                &["--number", "+13132040177", "--trunk", trunk],
            ))
            .await;
        assert_exit(&out, 1);
        assert_eq!(ctx.lines_toml(), before, "{trunk}: lines.toml written");
    }
    assert_eq!(ctx.writes().len(), writes, "{:?}", ctx.writes());
}

/// Area codes a provider refuses or that try to inject TOML or query parameters, with and
/// without `--reserve`: a diagnostic, the file unchanged, nothing searched for or reserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_area_codes_are_refused_before_anything_is_searched_or_written() {
    let ctx = applied_runbook().await;
    let before = ctx.lines_toml();
    let writes = ctx.writes().len();
    let searches = |ctx: &Ctx| {
        ctx.requests()
            .iter()
            .filter(|r| r.path.contains("available_phone_numbers"))
            .count()
    };
    let searched = searches(&ctx);
    for area in [
        "000",
        "911",
        "555",
        "100",
        "\u{FF17}\u{FF13}\u{FF14}",
        "734\n",
        "73",
        "7345",
        " 734",
        "",
        "734\"\nnumber = \"+18886030316",
        "734&filter[phone_number][contains]=0316",
        "7\u{202E}34",
    ] {
        for reserve in [false, true] {
            let mut args = add_args("pz", ID, &["--area-code", area]);
            if reserve {
                args.push("--reserve");
            }
            let out = ctx.cwa(&args).await;
            assert!(
                matches!(out.status.code(), Some(1) | Some(2)),
                "{area:?}: {:?}\n{}",
                out.status,
                stderr(&out)
            );
            assert_eq!(ctx.lines_toml(), before, "{area:?}: lines.toml written");
        }
    }
    assert_eq!(reservations(&ctx), 0);
    assert_eq!(searches(&ctx), searched, "searched for a refused area code");
    assert_eq!(ctx.writes().len(), writes);
}

/// The webhook retries while the first `add --reserve` is still running (two identical
/// requests at once): one number held, the block names it, and a targeted apply buys it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_identical_reserves_hold_one_number() {
    let ctx = applied_runbook().await;
    let args = add_args("race", ID, &["--area-code", "734", "--reserve"]);
    let (a, b) = tokio::join!(ctx.cwa(&args), ctx.cwa(&args));
    let ok = [&a, &b]
        .iter()
        .filter(|o| o.status.code() == Some(0))
        .count();
    assert!(ok >= 1, "{}\n{}", stderr(&a), stderr(&b));
    assert_eq!(
        reservations(&ctx),
        1,
        "two identical adds reserved twice\n{}\n{}",
        stderr(&a),
        stderr(&b)
    );
    assert_exit(
        &ctx.cwa(&["apply", "--target", "church.race", "--auto-approve"])
            .await,
        0,
    );
    assert_eq!(number_orders(&ctx), 1);
}

/// SIGKILL of `cwa add --reserve` once its reservation was sent (before lines.toml names it),
/// then the webhook's retry: the retry must find the hold it made (the reservation carries the
/// church's customer_reference) and not hold a second number.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_reserve_retried_holds_one_number() {
    let sb =
        crate::common::sandbox::TestSandbox::start_with("runbook", |o: &mut SandboxOptions| {
            o.latency_ms = 400;
        })
        .await;
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("lines.toml"),
        crate::common::repo_lines_toml(),
    )
    .unwrap();
    let ctx = Ctx { sb, work };
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let before = ctx.lines_toml();
    let args = add_args("killed", ID, &["--area-code", "734", "--reserve"]);
    let mut child = cwa_command(&ctx, &args).spawn().expect("cwa starts");
    let start = Instant::now();
    while reservations(&ctx) == 0 && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(reservations(&ctx), 1, "the reservation was sent");
    if ctx.lines_toml() != before {
        // Killed after the write: the retry is the no-op of an identical add.
        eprintln!("killed after lines.toml was written");
    }
    let out = ctx.cwa(&args).await;
    assert_exit(&out, 0);
    assert_eq!(
        reservations(&ctx),
        1,
        "the retry held a second number\n{}",
        stderr(&out)
    );
}

/// Every state file truncated, emptied, removed or prefixed with a BOM: a corrupt-state
/// diagnostic and no provider write; a removed manifest (a fresh checkout that lost it)
/// adopts every object by its natural key and buys nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_files_truncated_or_removed_write_nothing() {
    let ctx = applied_runbook().await;
    let state = ctx.path("state");
    let good = tempfile::tempdir().unwrap();
    copy_dir(&state, good.path());
    let manifest = state.join("state.json");
    let text = std::fs::read(&manifest).unwrap();
    let shard = std::fs::read_dir(state.join("shards"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let restore = || {
        std::fs::remove_dir_all(&state).unwrap();
        copy_dir(good.path(), &state);
    };
    type Edit<'a> = (&'a str, Box<dyn Fn() + 'a>, i32);
    let edits: Vec<Edit> = vec![
        (
            "manifest emptied",
            Box::new(|| std::fs::write(&manifest, b"").unwrap()),
            1,
        ),
        (
            "manifest cut in half",
            Box::new(|| std::fs::write(&manifest, &text[..text.len() / 2]).unwrap()),
            1,
        ),
        (
            "manifest with a BOM",
            Box::new(|| {
                let mut t = b"\xEF\xBB\xBF".to_vec();
                t.extend_from_slice(&text);
                std::fs::write(&manifest, t).unwrap()
            }),
            1,
        ),
        (
            "a shard emptied",
            Box::new(|| std::fs::write(&shard, b"").unwrap()),
            1,
        ),
        (
            "a shard removed",
            Box::new(|| std::fs::remove_file(&shard).unwrap()),
            1,
        ),
        (
            "the shards directory removed",
            Box::new(|| std::fs::remove_dir_all(state.join("shards")).unwrap()),
            1,
        ),
        (
            "the manifest and its backup removed",
            Box::new(|| {
                std::fs::remove_file(&manifest).unwrap();
                let _ = std::fs::remove_file(state.join("state.json.backup"));
            }),
            0,
        ),
    ];
    for (what, edit, code) in edits {
        edit();
        let writes = ctx.writes().len();
        let orders = number_orders(&ctx);
        let out = ctx.cwa(&["apply", "--auto-approve"]).await;
        assert_exit(&out, code);
        assert_eq!(
            ctx.writes().len(),
            writes,
            "{what}: written\n{}",
            stderr(&out)
        );
        assert_eq!(number_orders(&ctx), orders, "{what}: bought again");
        restore();
    }
}

/// The command `Ctx::cwa` runs, for a test that must kill it mid-way.
fn cwa_command(ctx: &Ctx, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cwa"));
    cmd.current_dir(ctx.work.path())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("CWA_OPERATOR", "test@cwa")
        .env(cwa::sandbox::STRICT_ENV, "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in ctx.sb.sandbox.env() {
        cmd.env(k, v);
    }
    cmd
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A plan saved with `--target church.grace`, then lines.toml edited to put grace on the
/// protected trunk: the saved plan is stale (no write); applied as saved it writes only the
/// three objects of grace's chain, though another change is pending outside the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targeted_saved_plan_applies_only_its_chain_and_is_stale_after_an_edit() {
    let ctx = applied_runbook().await;
    let out = ctx
        .cwa(&add_args(
            "grace",
            ID,
            &["--area-code", "734", "--refresh=false"],
        ))
        .await;
    assert_exit(&out, 0);
    ctx.edit_lines_toml("name = \"Twilio Test\"", "name = \"Twilio Test X\"");
    assert_exit(
        &ctx.cwa(&["plan", "--target", "church.grace", "--out", "p.json"])
            .await,
        0,
    );
    let clean = ctx.lines_toml();
    ctx.edit_lines_toml(
        "area_code = \"734\"\n",
        "area_code = \"734\"\ntrunk = \"livekit_inbound_trunk.twilio_main\"\n",
    );
    let writes = ctx.writes().len();
    for extra in [&[][..], &["--target", "church.grace"][..]] {
        let mut args = vec!["apply", "p.json", "--auto-approve"];
        args.extend_from_slice(extra);
        let out = ctx.cwa(&args).await;
        assert_exit(&out, 1);
    }
    assert_eq!(ctx.writes().len(), writes);
    ctx.set_lines_toml(&clean);
    let out = ctx
        .cwa(&[
            "apply",
            "p.json",
            "--target",
            "church.grace",
            "--auto-approve",
        ])
        .await;
    assert_exit(&out, 0);
    assert_eq!(ctx.writes().len() - writes, 3, "{:?}", ctx.writes());
    let out = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
    assert_exit(&out, 2);
    assert!(stdout(&out).contains("twilio_test"), "{}", stdout(&out));
}

/// `cwa apply --target church.grace` killed just before and just after each of its writes
/// (the number order, the trunk, the rule), rerun from state/ without its journal (a CI
/// retry on a fresh checkout): converges, one order for the number, nothing orphaned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targeted_apply_killed_at_each_write_converges_buying_once() {
    for moment in ["before", "after"] {
        for n in 1..=3 {
            let ctx = applied_runbook().await;
            let out = ctx
                .cwa(&add_args(
                    "grace",
                    ID,
                    &["--area-code", "734", "--refresh=false"],
                ))
                .await;
            assert_exit(&out, 0);
            let spec = format!("{moment}:{n}");
            let out = ctx
                .cwa_env(
                    &["apply", "--target", "church.grace", "--auto-approve"],
                    &[("CWA_TEST_CRASH_AT", &spec)],
                )
                .await;
            assert_ne!(out.status.code(), Some(0), "{spec}: not killed");
            for entry in std::fs::read_dir(ctx.path("state")).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                if name.contains("journal") || name == "lock.json" {
                    let _ = std::fs::remove_file(&path);
                }
            }
            let out = ctx
                .cwa(&["apply", "--target", "church.grace", "--auto-approve"])
                .await;
            assert_exit(&out, 0);
            let out = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
            assert_exit(&out, 0);
            assert_eq!(number_orders(&ctx), 1, "{spec}: bought twice");
            let world = ctx.sb.world_json().await.to_string();
            assert_eq!(
                world.matches("Red Team Dispatch").count(),
                1,
                "{spec}: rules"
            );
        }
    }
}
