//! Red team (this session): a reader that goes away (`cwa … | head -1`, a CI log collector
//! that died) on the commands and paths the earlier closed-pipe test did not reach. Every
//! command ends with the status it would have had, never 101 with a backtrace, and what it
//! does besides printing (state, the audit log, live writes) is carried out in full.

use std::process::{Command, Output, Stdio};

use crate::common::{assert_exit, stderr, Ctx, NEW_CHURCHES, PROTECTED_TRUNK};

/// Which of the child's streams have no reader.
#[derive(Clone, Copy, Debug)]
enum Closed {
    Stdout,
    Both,
}

/// Runs cwa in `ctx` with the sandbox's environment and `closed` streams whose reader has
/// already gone.
async fn cwa_unread(ctx: &Ctx, args: &[&str], closed: Closed) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwa"));
    cmd.current_dir(ctx.work.path())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CWA_OPERATOR", "test@cwa")
        .envs(ctx.sb.sandbox.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("cwa starts");
        drop(child.stdout.take());
        if matches!(closed, Closed::Both) {
            drop(child.stderr.take());
        }
        child.wait_with_output().expect("cwa ends")
    })
    .await
    .expect("the cwa process is waited for")
}

fn assert_quiet(out: &Output, code: i32, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{what}: exit status\n{err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

/// The read-only commands and output forms the earlier test left out, each with stdout and
/// then both streams closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_only_command_ends_quietly_into_a_closed_pipe() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--out", "saved.json"]).await, 0);
    let cases: &[&[&str]] = &[
        &["state", "list"],
        &["state", "show", "livekit_inbound_trunk.twilio_main"],
        &["show", "saved.json"],
        &["show", "saved.json", "--markdown"],
        &["show", "saved.json", "--json"],
        &["drift", "--markdown"],
        &["drift"],
        &["graph", "--format", "mermaid"],
        &["graph"],
        &["check", "--json"],
        &["check", "--failures-only"],
        &["export", "registry", "--format", "python"],
        &["version"],
        &["fmt", "--check"],
        &["-vv", "plan"],
        &["-vvv", "drift", "--json"],
        &["plan", "--no-such-flag"],
        &["state", "show", "livekit_inbound_trunk.nowhere"],
    ];
    for args in cases {
        // The status it would have had with a reader.
        let code = ctx.cwa(args).await.status.code().expect("an exit code");
        for closed in [Closed::Stdout, Closed::Both] {
            let out = cwa_unread(&ctx, args, closed).await;
            assert_quiet(&out, code, &format!("cwa {args:?} ({closed:?} closed)"));
        }
    }
    assert!(ctx.writes().len() < 30, "read-only commands wrote");
}

/// `apply --unprotect ID` printed its confirmation with `println!`: with stdout closed it
/// panicked (exit 101) after the unprotect was recorded and before the rest of the plan ran.
/// `apply PLANFILE` printed its stale-object warning with `eprintln!`, which panics the same
/// way with stderr closed. Both must finish the apply and exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_finishes_its_work_whatever_reads_its_output() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    ctx.edit_lines_toml(&format!("\"{PROTECTED_TRUNK}\" = "), "# ");
    ctx.set_lines_toml(&format!("{}{NEW_CHURCHES}", ctx.lines_toml()));
    let out = cwa_unread(
        &ctx,
        &["apply", "--auto-approve", "--unprotect", PROTECTED_TRUNK],
        Closed::Stdout,
    )
    .await;
    assert_quiet(&out, 0, "apply --unprotect, stdout closed");
    assert!(
        ctx.state().resources.contains_key("telnyx_number.grace"),
        "the rest of the plan was carried out after the unprotect"
    );

    // A plan file, then live changes under it (an object the plan does not write): apply
    // warns and goes on.
    ctx.set_lines_toml(&format!(
        "{}\n[church.faith]\nid = \"00000000-0000-4000-8000-0000000000a3\"\nname = \"Faith\"\nnumber = \"auto\"\narea_code = \"313\"\n",
        ctx.lines_toml()
    ));
    assert_exit(&ctx.cwa(&["plan", "--out", "p.json"]).await, 0);
    let (status, body) = crate::common::sandbox::send(ctx.sb.twirp_json(
        "CreateSIPInboundTrunk",
        &serde_json::json!({"trunk": {"name": "made by hand", "numbers": ["+13125550199"]}}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let out = cwa_unread(&ctx, &["apply", "p.json"], Closed::Both).await;
    assert_quiet(&out, 0, "apply PLANFILE with a warning, both closed");
    assert!(
        ctx.state().resources.contains_key("telnyx_number.faith"),
        "applied"
    );
}
