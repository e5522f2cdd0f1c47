//! Red team (this session): the state lock file as a careless operator or a pull request can
//! leave it. A symbolic link at `state/lock.json` pointing nowhere made every command that
//! takes the lock retry for ever: a stack overflow (exit 134) before any diagnostic.

use crate::common::{assert_exit, stderr, Ctx};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_file_linked_to_nothing_is_a_diagnostic_for_every_command_that_locks() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let writes = ctx.writes().len();
    std::os::unix::fs::symlink("/nonexistent/cwa-lock", ctx.path("state/lock.json")).unwrap();
    for args in [
        &["apply", "--auto-approve"][..],
        &["state", "rm", "livekit_dispatch_rule.twilio_test"],
        &["state", "unlock"],
        &["state", "unlock", "--force"],
    ] {
        let out = ctx.cwa(args).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("lock.json"), "{args:?}: names the file: {err}");
        assert!(
            !err.contains("overflow") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ctx.writes().len(), writes, "{:?}", ctx.writes());
    assert!(
        ctx.state()
            .resources
            .contains_key("livekit_dispatch_rule.twilio_test"),
        "state rm went ahead"
    );
}
