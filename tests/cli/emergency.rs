//! Issue 21 (a): E911 addresses and a church number's emergency service, end to end through
//! the real binary against the strict sandbox: create, update (an address is replaced: the
//! new one created, the number switched, the old one deleted), verify, drift, import, the
//! validate warning and its policy error, and the asynchronous emergency status (stuck in
//! provisioning, failed) reported and converging on a rerun.

use crate::common::{assert_exit, stderr, stdout, Ctx};
use serde_json::{json, Value};

const MEDHANIALEM_NUMBER_ID: &str = "2926113000000000001";

const ADDRESS: &str = r#"
[telnyx.emergency_address.medhanialem]
business_name = "Medhanialem Church"
first_name = "Abebe"
last_name = "Kebede"
street_address = "2500 W Wisconsin Ave"
locality = "Milwaukee"
administrative_area = "WI"
postal_code = "53233"
country_code = "US"
"#;

/// The repository's declaration, imported and applied, then given an E911 address for
/// Medhanialem (not applied yet).
async fn with_address() -> Ctx {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["import"]).await, 0);
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    declare_address(&ctx);
    ctx
}

fn declare_address(ctx: &Ctx) {
    let text = ctx.lines_toml();
    let church = "[church.medhanialem]\n";
    assert!(text.contains(church), "{text}");
    let text = text.replacen(
        church,
        "[church.medhanialem]\nemergency_address = \"medhanialem\"\n",
        1,
    );
    ctx.set_lines_toml(&format!("{text}{ADDRESS}"));
}

async fn plan_json(ctx: &Ctx) -> Value {
    let out = ctx.cwa(&["plan", "--json"]).await;
    assert_exit(&out, 0);
    serde_json::from_str(&stdout(&out)).expect("a plan document")
}

/// `(address, action)` of every change that does something.
fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| !matches!(c["action"].as_str(), Some("no-op" | "noop" | "verify")))
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default().to_string(),
                c["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn number(ctx: &Ctx, id: &str) -> Value {
    ctx.sb.sandbox.world().lock().unwrap().telnyx.phone_numbers[id].clone()
}

fn addresses(ctx: &Ctx) -> Vec<Value> {
    let world = ctx.sb.sandbox.world();
    let world = world.lock().unwrap();
    world.telnyx.addresses.values().cloned().collect()
}

/// The writes of this test's sandbox as `METHOD /path`, in order.
fn write_lines(ctx: &Ctx) -> Vec<String> {
    ctx.writes()
        .iter()
        .map(|w| format!("{} {}", w.method, w.path))
        .collect()
}

#[tokio::test]
async fn an_address_is_created_the_number_enabled_and_a_second_plan_is_clean() {
    let ctx = with_address().await;
    let plan = plan_json(&ctx).await;
    let acts = actions(&plan);
    assert!(
        acts.contains(&(
            "telnyx_emergency_address.medhanialem".into(),
            "create".into()
        )),
        "{acts:?}"
    );
    assert!(
        acts.contains(&("telnyx_number.medhanialem".into(), "update".into())),
        "{acts:?}"
    );
    let number_change = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "telnyx_number.medhanialem")
        .unwrap();
    let fields: Vec<&str> = number_change["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(fields, ["emergency_address"], "{number_change}");

    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 0);
    let made = addresses(&ctx);
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["street_address"], "2500 W Wisconsin Ave");
    assert_eq!(made[0]["first_name"], "Abebe");
    let n = number(&ctx, MEDHANIALEM_NUMBER_ID);
    assert_eq!(n["emergency_enabled"], true);
    assert_eq!(n["emergency_address_id"], made[0]["id"]);
    let state = ctx.state();
    let owned = state
        .get(&"telnyx_emergency_address.medhanialem".parse().unwrap())
        .expect("state owns the address");
    assert_eq!(Some(owned.id.as_str()), made[0]["id"].as_str());

    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    // By now Telnyx has finished provisioning: the check passes.
    let out = ctx.cwa(&["check", "--json"]).await;
    let report: Value = serde_json::from_str(&stdout(&out)).expect("a check report");
    let emergency: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["code"] == "cwa::number::emergency-inactive")
        .collect();
    assert_eq!(emergency.len(), 1, "{report}");
    assert_eq!(emergency[0]["passed"], true, "{report}");
    assert_eq!(emergency[0]["subject"], "+14144007103");
}

#[tokio::test]
async fn a_changed_address_is_created_then_switched_then_the_old_one_deleted() {
    let ctx = with_address().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let old = addresses(&ctx)[0]["id"].as_str().unwrap().to_string();
    ctx.edit_lines_toml(
        "street_address = \"2500 W Wisconsin Ave\"",
        "street_address = \"2510 W Wisconsin Ave\"",
    );
    let plan = plan_json(&ctx).await;
    let acts = actions(&plan);
    assert!(
        acts.contains(&(
            "telnyx_emergency_address.medhanialem".into(),
            "create".into()
        )),
        "{acts:?}"
    );
    assert!(
        acts.contains(&(
            format!("telnyx_emergency_address.medhanialem_replaced_{old}"),
            "delete".into()
        )),
        "{acts:?}"
    );
    assert!(
        acts.contains(&("telnyx_number.medhanialem".into(), "update".into())),
        "{acts:?}"
    );
    let before = ctx.writes().len();
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let writes: Vec<String> = write_lines(&ctx).split_off(before);
    let pos = |needle: &str| {
        writes
            .iter()
            .position(|w| w.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {writes:?}"))
    };
    let create = pos("POST /v2/addresses");
    let switch = pos("actions/enable_emergency");
    let delete = pos(&format!("DELETE /v2/addresses/{old}"));
    assert!(create < switch && switch < delete, "{writes:?}");
    let now = addresses(&ctx);
    assert_eq!(now.len(), 1, "the old address is gone: {now:?}");
    assert_eq!(now[0]["street_address"], "2510 W Wisconsin Ave");
    assert_eq!(
        number(&ctx, MEDHANIALEM_NUMBER_ID)["emergency_address_id"],
        now[0]["id"]
    );
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

#[tokio::test]
async fn drift_reports_a_number_switched_to_another_address_and_apply_fixes_it() {
    let ctx = with_address().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["drift"]).await, 0);
    // Someone creates another address in the portal and moves the number to it.
    let (status, made) =
        crate::common::sandbox::send(ctx.sb.telnyx(reqwest::Method::POST, "/addresses").json(
            &json!({
                "business_name": "Elsewhere", "first_name": "A", "last_name": "B",
                "street_address": "1 Main St", "locality": "Detroit", "administrative_area": "MI",
                "postal_code": "48201", "country_code": "US"
            }),
        ))
        .await;
    assert_eq!(status, 200, "{made}");
    let other = made["data"]["id"].as_str().unwrap().to_string();
    let (status, body) = crate::common::sandbox::send(
        ctx.sb
            .telnyx(
                reqwest::Method::POST,
                &format!("/phone_numbers/{MEDHANIALEM_NUMBER_ID}/actions/enable_emergency"),
            )
            .json(&json!({"emergency_enabled": true, "emergency_address_id": other})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let out = ctx.cwa(&["drift"]).await;
    assert_exit(&out, 2);
    let text = stdout(&out);
    assert!(text.contains("telnyx_number.medhanialem"), "{text}");
    assert!(text.contains("emergency_address"), "{text}");
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let n = number(&ctx, MEDHANIALEM_NUMBER_ID);
    assert_ne!(n["emergency_address_id"], json!(other));
    // What is left is the portal's address, unmanaged: no field drifts any more.
    let out = ctx.cwa(&["drift"]).await;
    assert_exit(&out, 2);
    assert!(
        stdout(&out).contains("0 changed field(s)"),
        "{}",
        stdout(&out)
    );
    let (status, _) = crate::common::sandbox::send(
        ctx.sb
            .telnyx(reqwest::Method::DELETE, &format!("/addresses/{other}")),
    )
    .await;
    assert_eq!(status, 200, "no number uses it any more");
    assert_exit(&ctx.cwa(&["drift"]).await, 0);
}

#[tokio::test]
async fn import_declares_the_address_and_the_church_names_it() {
    let ctx = with_address().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    // A fresh directory with no declaration and no state: import writes every church.
    let fresh = Ctx::with_world("runbook", "").await;
    {
        let src = ctx.sb.sandbox.world();
        let src = src.lock().unwrap();
        let dst = fresh.sb.sandbox.world();
        let mut dst = dst.lock().unwrap();
        dst.telnyx.addresses = src.telnyx.addresses.clone();
        dst.telnyx.phone_numbers = src.telnyx.phone_numbers.clone();
    }
    let out = fresh.cwa(&["import"]).await;
    assert_exit(&out, 0);
    let text = fresh.lines_toml();
    assert!(
        text.contains("[telnyx.emergency_address."),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        text.contains("street_address = \"2500 W Wisconsin Ave\""),
        "{text}"
    );
    // The church whose number has the address names it; the other one has none (a warning).
    let church = text
        .split("\n[")
        .find(|b| b.contains("number = \"+14144007103\"") && b.starts_with("church."))
        .unwrap_or_else(|| panic!("no church block for +14144007103 in {text}"));
    assert!(
        church.contains("emergency_address = \"telnyx_emergency_address."),
        "{church}"
    );
    // The runbook world's known-broken objects are still planned; nothing of the E911 part.
    let plan = plan_json(&fresh).await;
    let touched: Vec<(String, String)> = actions(&plan)
        .into_iter()
        .filter(|(a, _)| {
            a.starts_with("telnyx_emergency_address") || a.starts_with("telnyx_number")
        })
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    let out = fresh.cwa(&["validate"]).await;
    assert_exit(&out, 0);
    let warned = stderr(&out)
        .matches("cwa::config::emergency_address")
        .count();
    assert_eq!(warned, 1, "only the church without one: {}", stderr(&out));
}

#[tokio::test]
async fn provisioning_that_never_finishes_is_reported_and_converges_when_it_does() {
    let ctx = with_address().await;
    ctx.sb
        .sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .emergency_stuck = true;
    // Accepted (202) and still provisioning: like a number still activating, the apply is
    // done and says what Telnyx is still doing.
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("still provisioning"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        number(&ctx, MEDHANIALEM_NUMBER_ID)["emergency_status"],
        "provisioning"
    );
    // Nothing to change (the request is in), but the plan and check say it is not active.
    let out = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
    assert_exit(&out, 0);
    let shown = stdout(&out);
    assert!(shown.contains("[emergency-active]"), "{shown}");
    assert!(shown.contains("emergency status provisioning"), "{shown}");
    let out = ctx.cwa(&["check"]).await;
    assert_exit(&out, 0);
    let shown = stdout(&out);
    assert!(shown.contains("activating"), "{shown}");
    assert!(shown.contains("still provisioning"), "{shown}");
    // Telnyx finishes: the rerun is clean.
    ctx.sb
        .sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .emergency_stuck = false;
    let out = ctx.cwa(&["check"]).await;
    assert_exit(&out, 0);
    assert!(
        !stdout(&out).contains("still provisioning"),
        "{}",
        stdout(&out)
    );
    let out = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
    assert_exit(&out, 0);
    assert!(
        !stdout(&out).contains("emergency-active"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn failed_provisioning_is_reported_and_the_rerun_requests_it_again() {
    let ctx = with_address().await;
    ctx.sb
        .sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .emergency_fails = true;
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    let shown = format!("{}{}", stdout(&out), stderr(&out));
    assert!(shown.contains("provisioning-failed"), "{shown}");
    assert!(
        shown.contains("could not provision emergency service"),
        "{shown}"
    );
    let out = ctx.cwa(&["check"]).await;
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("provisioning-failed"),
        "{}",
        stdout(&out)
    );
    let plan = plan_json(&ctx).await;
    assert!(
        actions(&plan).contains(&("telnyx_number.medhanialem".into(), "update".into())),
        "a failed provisioning is planned again: {:?}",
        actions(&plan)
    );
    ctx.sb
        .sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .emergency_fails = false;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["check"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

#[tokio::test]
async fn a_church_line_without_an_address_warns_and_the_policy_makes_it_an_error() {
    let ctx = Ctx::runbook().await;
    let out = ctx.cwa(&["validate"]).await;
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("cwa::config::emergency_address"), "{err}");
    assert!(err.contains("telnyx_number.medhanialem"), "{err}");
    assert!(err.contains("[church.melvindale]"), "{err}");

    ctx.edit_lines_toml("[policy]\n", "[policy]\nrequire_emergency_address = true\n");
    let out = ctx.cwa(&["validate"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("cwa::config::emergency_address"), "{err}");
    assert!(!err.contains("makes this an error"), "{err}");
    // Nothing was written anywhere.
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    assert!(ctx.writes().is_empty(), "{:?}", write_lines(&ctx));

    // Both churches given an address: valid again, and no warning.
    declare_address(&ctx);
    ctx.edit_lines_toml(
        "[church.melvindale]\n",
        "[church.melvindale]\nemergency_address = \"medhanialem\"\n",
    );
    let out = ctx.cwa(&["validate"]).await;
    assert_exit(&out, 0);
    assert!(
        !stderr(&out).contains("emergency_address"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_bad_address_block_is_refused_before_any_write() {
    let ctx = Ctx::runbook().await;
    declare_address(&ctx);
    ctx.edit_lines_toml("country_code = \"US\"\n", "country_code = \"USA\"\n");
    ctx.edit_lines_toml("first_name = \"Abebe\"\n", "");
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("first_name"), "{err}");
    assert!(err.contains("USA"), "{err}");
    assert!(ctx.writes().is_empty(), "{:?}", write_lines(&ctx));
    ctx.edit_lines_toml(
        "emergency_address = \"medhanialem\"",
        "emergency_address = \"nowhere\"",
    );
    let out = ctx.cwa(&["validate"]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
}

#[tokio::test]
async fn an_address_a_kept_number_still_uses_is_kept_not_deleted() {
    let ctx = with_address().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let address = addresses(&ctx)[0]["id"].as_str().unwrap().to_string();
    // The church goes, and its address with it: the number is kept (never released by
    // default), so its emergency service keeps its address too.
    let out = ctx.cwa(&["remove", "church", "medhanialem"]).await;
    assert_exit(&out, 0);
    ctx.edit_lines_toml(ADDRESS, "");
    let plan = plan_json(&ctx).await;
    let kept = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "telnyx_emergency_address.medhanialem")
        .expect("the address is in the plan");
    assert_eq!(kept["action_reason"]["code"], "address-in-use", "{kept}");
    assert!(
        kept["reason"].as_str().unwrap().contains("+14144007103"),
        "{kept}"
    );
    let before = ctx.writes().len();
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let writes: Vec<String> = write_lines(&ctx).split_off(before);
    assert!(
        !writes.iter().any(|w| w.contains("/addresses")),
        "{writes:?}"
    );
    assert_eq!(addresses(&ctx).len(), 1);
    assert_eq!(
        number(&ctx, MEDHANIALEM_NUMBER_ID)["emergency_address_id"],
        json!(address)
    );
}
