//! Red team (this session): a saved plan carried to where it was not made: from another
//! lines.toml (a branch that adds churches), from a state of another lineage (another
//! repository's checkout), or from the same files after state moved on. Applied there, each
//! is refused as stale before any provider write, and the working directory is unchanged.

use crate::common::{assert_exit, stderr, Ctx, NEW_CHURCHES};

/// Applies `plan.json` in `ctx` and asserts it is refused as stale with no write.
async fn assert_stale(ctx: &Ctx, case: &str) {
    let writes = ctx.writes().len();
    let before = std::fs::read(ctx.path("state/state.json")).ok();
    let out = ctx.cwa(&["apply", "plan.json"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("stale") || err.contains("changed since"),
        "{case}: {err}"
    );
    assert_eq!(ctx.writes().len(), writes, "{case}: a write");
    let after = std::fs::read(ctx.path("state/state.json")).ok();
    assert_eq!(before, after, "{case}: state/ rewritten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_file_applied_where_it_was_not_made_is_stale() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let base = ctx.lines_toml();

    // Made on a branch that adds two churches, applied on the base branch.
    ctx.set_lines_toml(&format!("{base}{NEW_CHURCHES}"));
    assert_exit(&ctx.cwa(&["plan", "--out", "plan.json"]).await, 0);
    ctx.set_lines_toml(&base);
    assert_stale(&ctx, "another lines.toml").await;

    // Made against a state of another lineage with the same resources.
    ctx.set_lines_toml(&format!("{base}{NEW_CHURCHES}"));
    let manifest = std::fs::read_to_string(ctx.path("state/state.json")).unwrap();
    let mut other: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    other["lineage"] = "00000000-0000-4000-8000-00000000dead".into();
    std::fs::write(ctx.path("state/state.json"), other.to_string()).unwrap();
    assert_exit(&ctx.cwa(&["plan", "--out", "plan.json"]).await, 0);
    std::fs::write(ctx.path("state/state.json"), &manifest).unwrap();
    assert_stale(&ctx, "another lineage").await;

    // Made here, then state moved on (another apply ran in between).
    assert_exit(&ctx.cwa(&["plan", "--out", "plan.json"]).await, 0);
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_stale(&ctx, "state moved on").await;
}
