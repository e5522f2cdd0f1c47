//! Independent audit of issue 16 ("Review exactly what is applied"): hostile variants the
//! earlier tests did not try, over the real binary and the sandbox. Every case asserts that
//! what an approver reads (`cwa show PLANFILE`) is what `cwa apply PLANFILE` runs.

use crate::common::{assert_exit, stderr, stdout, Ctx};
use serde_json::Value;

/// A fresh runbook world with a saved plan (`p.json`) that has updates to show.
async fn saved_plan() -> (Ctx, Value) {
    let ctx = Ctx::runbook().await;
    let out = ctx.cwa(&["plan", "--out", "p.json"]).await;
    assert_exit(&out, 0);
    let text = std::fs::read_to_string(ctx.path("p.json")).expect("plan --out writes p.json");
    let plan: Value = serde_json::from_str(&text).expect("a JSON plan file");
    (ctx, plan)
}

fn write_forged(ctx: &Ctx, plan: &Value) {
    std::fs::write(
        ctx.path("forged.json"),
        serde_json::to_string_pretty(plan).unwrap(),
    )
    .unwrap();
}

/// The parts of a plan file that are derived from its changes or computed from live, yet are
/// what the approver reads first: the counts, the monthly cost, the warnings and the
/// unmanaged objects. Each edit must make `apply` refuse the file; `show` (which reads the
/// file alone) must also refuse the ones derived from the file's own changes (flag `true`).
fn forgeries(plan: &Value) -> Vec<(&'static str, bool, Value)> {
    let mut out = Vec::new();
    let mut p = plan.clone();
    for v in p["summary"].as_object_mut().unwrap().values_mut() {
        *v = Value::from(0);
    }
    out.push(("every count in `summary` set to 0", true, p));
    let mut p = plan.clone();
    p["summary"].as_object_mut().unwrap().remove("update");
    out.push(("the `update` count removed from `summary`", true, p));
    let mut p = plan.clone();
    p["monthly_cost_delta_cents"] = Value::from(-100_000);
    out.push(("`monthly_cost_delta_cents` changed", true, p));
    let mut p = plan.clone();
    assert!(
        !p["checks"].as_array().unwrap().is_empty(),
        "the runbook world's plan has warnings to delete"
    );
    p["checks"] = Value::Array(Vec::new());
    out.push(("the warnings (`checks`) deleted", false, p));
    let mut p = plan.clone();
    assert!(!p["unmanaged"].as_array().unwrap().is_empty());
    p["unmanaged"] = Value::Array(Vec::new());
    out.push(("the unmanaged objects deleted", false, p));
    out
}

/// Issue 16 finding 2 and issue 12's "a plan file is evidence, never authority": `show`
/// renders the file's own `summary` and cost, which `apply` never compared, so a file whose
/// counts say "0 to update" was approved and then applied four updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_file_whose_counts_cost_or_warnings_were_edited_is_neither_shown_nor_applied() {
    let (ctx, plan) = saved_plan().await;
    assert!(
        plan["summary"]["update"].as_u64().unwrap_or(0) > 0,
        "the runbook plan has updates: {}",
        plan["summary"]
    );
    for (case, derived, forged) in forgeries(&plan) {
        write_forged(&ctx, &forged);
        let formats: &[Option<&str>] = if derived {
            &[None, Some("--markdown"), Some("--json")]
        } else {
            &[]
        };
        for format in formats {
            let mut args = vec!["show", "forged.json"];
            args.extend(*format);
            let out = ctx.cwa(&args).await;
            assert_eq!(
                out.status.code(),
                Some(1),
                "{case}: `cwa {}` must refuse the file, not render it\n--- stdout\n{}\n--- stderr\n{}",
                args.join(" "),
                stdout(&out),
                stderr(&out)
            );
        }
        let before = ctx.writes().len();
        let out = ctx.cwa(&["apply", "forged.json"]).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "{case}: apply must refuse the file\n--- stdout\n{}\n--- stderr\n{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(ctx.writes().len(), before, "{case}: a refused apply wrote");
    }
    // The untouched file is still shown and applied.
    let out = ctx.cwa(&["show", "p.json"]).await;
    assert_exit(&out, 0);
    let out = ctx.cwa(&["apply", "p.json"]).await;
    assert_exit(&out, 0);
}
