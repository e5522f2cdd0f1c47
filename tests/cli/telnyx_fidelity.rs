//! Issue 13's Telnyx findings through the real binary against the strict sandbox: set-like
//! fields in any order, masked passwords and Telnyx's defaults never churn a plan, provider
//! limits are validate diagnostics at their line, an `"auto"` number is never bought outside
//! its area code (and the plan says so when only best-effort offers exist), failed and
//! requirement-pending orders stop their line, a deletion-locked number is kept, a kept number
//! is parked on `[defaults] park`, and a shared LiveKit trunk's numbers verify in any order.

use crate::common::{assert_exit, stderr, stdout, Ctx};

/// `tags = ["zeta", "alpha"]`: the wire sorts, the declaration did not, so every apply failed
/// its read-back and every plan showed a diff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_in_any_order_converge() {
    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml(
        "[telnyx.number.fallback]\nnumber = \"+14697288326\"\n",
        "[telnyx.number.fallback]\nnumber = \"+14697288326\"\ntags = [\"zeta\", \"alpha\", \"zeta\"]\n",
    );
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 0);
    let plan = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
    assert_exit(&plan, 0);
    ctx.edit_lines_toml(
        "tags = [\"zeta\", \"alpha\", \"zeta\"]",
        "tags = [\"alpha\", \"zeta\"]",
    );
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

/// A profile that names no destinations is what Telnyx makes by default: [US, CA].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_without_destinations_is_telnyx_default() {
    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml("whitelisted_destinations = [\"CA\", \"US\"]\n", "");
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let plan = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
    assert_exit(&plan, 0);
    let world = ctx.sb.world_json().await;
    let profile = &world["telnyx"]["outbound_voice_profiles"]["2925086295615079772"];
    let mut got: Vec<&str> = profile["whitelisted_destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, ["CA", "US"]);
}

/// A password Telnyx masks in its answers must not make every plan show a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_passwords_do_not_churn_plans() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    ctx.sb
        .sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .mask_passwords = true;
    let plan = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
    assert_exit(&plan, 0);
    let drift = ctx.cwa(&["drift"]).await;
    let shown = stdout(&drift);
    assert_exit(&drift, 0);
    assert!(shown.contains("No drift"), "{shown}");
}

/// Only best-effort offers outside the declared area code: nothing is bought, and the error
/// says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_numbers_are_never_bought_outside_their_area_code() {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!(
        "{}{}",
        ctx.lines_toml(),
        crate::common::NEW_CHURCHES
    ));
    ctx.sb
        .sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .realism
        .best_effort_area_codes
        .insert("734".into());
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("best-effort"), "{text}");
    let world = ctx.sb.world_json().await;
    let bought: Vec<String> = world["telnyx"]["phone_numbers"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|n| n["phone_number"].as_str().map(str::to_string))
        .filter(|n| !n.starts_with("+1414") || n == "+14144007103")
        .filter(|n| {
            ![
                "+14144007103",
                "+17473897673",
                "+14697288326",
                "+12268830000",
            ]
            .contains(&n.as_str())
        })
        .collect();
    assert!(bought.is_empty(), "bought outside 414: {bought:?}");
}

async fn validate_problems(ctx: &Ctx) -> (i32, String) {
    let out = ctx.cwa(&["validate"]).await;
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

/// The limits providers enforce are validate diagnostics at the line in lines.toml, before
/// any provider is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_limits_are_validate_diagnostics() {
    let ctx = Ctx::runbook().await;
    let base = ctx.lines_toml();
    let cases: &[(&str, &str, &str)] = &[
        (
            "user_name = \"cwaoutbound\"",
            "user_name = \"cwa_out\"",
            "user_name",
        ),
        (
            "user_name = \"cwaoutbound\"",
            "user_name = \"abc\"",
            "4 to 32",
        ),
        (
            "name = \"ChurchWiseAI\"\nenabled",
            "name = \"CW\"\nenabled",
            "3 characters",
        ),
    ];
    for (from, to, needle) in cases {
        ctx.set_lines_toml(&base.replacen(from, to, 1));
        let (code, text) = validate_problems(&ctx).await;
        assert_eq!(code, 1, "{to}: {text}");
        assert!(text.contains("provider_limit"), "{to}: {text}");
        assert!(text.contains(needle), "{to}: {text}");
        assert!(text.contains("lines.toml:"), "points at the line: {text}");
    }
    for area in ["911", "411", "011", "100", "000", "555"] {
        ctx.set_lines_toml(&format!(
            "{base}\n[church.newone]\nid = \"00000000-0000-4000-8000-0000000000b1\"\nname = \"New One\"\nnumber = \"auto\"\narea_code = \"{area}\"\n"
        ));
        let (code, text) = validate_problems(&ctx).await;
        assert_eq!(code, 1, "{area}: {text}");
        assert!(text.contains("provider_limit"), "{area}: {text}");
        assert!(text.contains(area), "{area}: {text}");
    }
    let huge = "x".repeat(50 * 1024 * 1024);
    ctx.set_lines_toml(&format!(
        "{base}\n[church.huge]\nid = \"00000000-0000-4000-8000-0000000000b2\"\nname = \"{huge}\"\nnumber = \"auto\"\narea_code = \"414\"\n"
    ));
    let (code, text) = validate_problems(&ctx).await;
    assert_eq!(code, 1);
    assert!(
        text.contains("provider_limit") && text.contains("at most 255"),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(ctx.writes().is_empty(), "nothing written anywhere");
}

/// A number with Telnyx's deletion lock on is kept when its line is removed, even with
/// `--release-numbers`, and the plan says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_locked_numbers_are_kept_with_the_reason() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    ctx.sb
        .sandbox
        .world()
        .lock()
        .unwrap()
        .telnyx
        .phone_numbers
        .get_mut("2927180561589994835")
        .unwrap()["deletion_lock_enabled"] = serde_json::json!(true);
    let text = ctx.lines_toml();
    let start = text.find("[telnyx.number.fallback]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    ctx.set_lines_toml(&format!("{}{}", &text[..start], &text[end..]));
    let plan = ctx.cwa(&["plan", "--release-numbers", "--json"]).await;
    let shown = stdout(&plan);
    assert!(shown.contains("deletion lock"), "{shown}{}", stderr(&plan));
    let apply = ctx
        .cwa(&["apply", "--auto-approve", "--release-numbers"])
        .await;
    let _ = apply;
    assert!(!ctx
        .requests()
        .iter()
        .any(|r| r.method == "DELETE" && r.path.ends_with("2927180561589994835")));
}

/// Sets one of the Telnyx sandbox's realism switches.
fn telnyx_realism(ctx: &Ctx, set: impl FnOnce(&mut cwa::sandbox::telnyx::Realism)) {
    set(&mut ctx.sb.sandbox.world().lock().unwrap().telnyx.realism);
}

/// The Telnyx numbers of the sandbox world.
async fn telnyx_numbers(ctx: &Ctx) -> Vec<serde_json::Value> {
    let world = ctx.sb.world_json().await;
    world["telnyx"]["phone_numbers"]
        .as_object()
        .unwrap()
        .values()
        .cloned()
        .collect()
}

/// An area code with only best-effort offers: the plan says so at the number's line (and in
/// its JSON, as data), names the offers it will not buy, and is not refused; an area code
/// with exact offers gets no note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_notes_an_area_code_with_only_best_effort_offers() {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!(
        "{}{}",
        ctx.lines_toml(),
        crate::common::NEW_CHURCHES
    ));
    telnyx_realism(&ctx, |r| {
        r.best_effort_area_codes.insert("734".into());
    });
    let plan = ctx.cwa(&["plan", "--detailed-exitcode"]).await;
    assert_exit(&plan, 2);
    let shown = stdout(&plan);
    let at = shown.find("telnyx_number.grace").expect("grace is planned");
    let line_end = at + shown[at..].find("\n  + ").unwrap_or(shown.len() - at);
    let block = &shown[at..line_end];
    assert!(
        block.contains("note:") && block.contains("area code 734") && block.contains("best-effort"),
        "the note is at grace's line: {shown}"
    );
    assert!(!shown.contains("area code 414 offers"), "{shown}");
    let json = ctx.cwa(&["plan", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let notes: Vec<&serde_json::Value> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["code"] == "best-effort-only")
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["address"], "telnyx_number.grace");
    assert_eq!(notes[0]["severity"], "warning");
    assert!(
        v["errors"].as_array().unwrap().is_empty(),
        "{}",
        v["errors"]
    );
}

/// A failed order (`failure`, its numbers `purchase-failed`): apply stops that line with
/// exit 1 and says the order failed, and no failed number is bound or recorded as owned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_order_fails_its_line_and_owns_nothing() {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!(
        "{}{}",
        ctx.lines_toml(),
        crate::common::NEW_CHURCHES
    ));
    telnyx_realism(&ctx, |r| r.fail_orders = true);
    let out = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&out, 1);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("failed"), "{text}");
    let failed: Vec<String> = telnyx_numbers(&ctx)
        .await
        .iter()
        .filter(|n| n["status"] == "purchase-failed")
        .map(|n| n["phone_number"].as_str().unwrap().to_string())
        .collect();
    assert!(!failed.is_empty(), "the sandbox failed the orders");
    let state = serde_json::to_string(&ctx.state()).unwrap();
    for number in &failed {
        assert!(
            !state.contains(number.as_str()),
            "{number} is not owned: {state}"
        );
    }
}

/// An order held in `requirement-info-pending`: apply stops with exit 1 and says documents
/// are needed; a second apply finds the same order by its reference and buys nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requirement_pending_order_is_reported_and_never_bought_twice() {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!(
        "{}{}",
        ctx.lines_toml(),
        crate::common::NEW_CHURCHES
    ));
    telnyx_realism(&ctx, |r| r.requirement_info_pending = true);
    let orders = |ctx: &Ctx| {
        ctx.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/v2/number_orders")
            .count()
    };
    let first = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&first, 1);
    let text = format!("{}{}", stdout(&first), stderr(&first));
    assert!(text.contains("requirement-info-pending"), "{text}");
    assert!(text.contains("regulatory documents"), "{text}");
    let ordered = orders(&ctx);
    assert_eq!(ordered, 2, "one order per new church");
    let second = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&second, 1);
    let again = format!("{}{}", stdout(&second), stderr(&second));
    assert!(again.contains("requirement-info-pending"), "{again}");
    assert_eq!(orders(&ctx), ordered, "no second order");
    let pending = telnyx_numbers(&ctx)
        .await
        .iter()
        .filter(|n| n["status"] == "requirement-info-pending")
        .count();
    assert_eq!(pending, 2);
}

/// The Telnyx number object of the sandbox world for `number`.
async fn telnyx_number(ctx: &Ctx, number: &str) -> serde_json::Value {
    telnyx_numbers(ctx)
        .await
        .into_iter()
        .find(|n| n["phone_number"] == number)
        .unwrap_or_else(|| panic!("{number} is in the sandbox"))
}

/// Removes a church's block (from its header to the next blank line) from lines.toml.
fn remove_block(ctx: &Ctx, header: &str) {
    let text = ctx.lines_toml();
    let start = text.find(header).expect("the block");
    let end = start + text[start..].find("\n\n").expect("its end");
    ctx.set_lines_toml(&format!("{}{}", &text[..start], &text[end..]));
}

/// With `[defaults] park`, the number of a removed church line is kept and moved to the
/// declared target (the fallback greeting, so callers hear the company's message rather than
/// LiveKit's "no trunk found"); it is never unbound, and once parked plans and drift are
/// quiet. Without `park` it stays where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_number_is_parked_on_the_declared_target() {
    const FALLBACK_APP: &str = "2927180743153026408";
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let before = telnyx_number(&ctx, "+17473897673").await["connection_id"].clone();
    remove_block(&ctx, "[church.melvindale]");
    let unparked = ctx.cwa(&["plan", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&stdout(&unparked)).unwrap();
    let change = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "telnyx_number.melvindale")
        .expect("the kept number is planned");
    assert_eq!(change["action"], "retain", "no park: {change}");
    ctx.edit_lines_toml(
        "connection = \"telnyx_fqdn_connection.livekit\"\n",
        "connection = \"telnyx_fqdn_connection.livekit\"\n# Kept numbers play the fallback greeting.\npark = \"telnyx_texml_application.fallback\"\n",
    );
    let plan = ctx.cwa(&["plan"]).await;
    let shown = stdout(&plan);
    assert_exit(&plan, 0);
    assert!(
        shown.contains("telnyx_number.melvindale")
            && shown.contains("parked on telnyx_texml_application.fallback"),
        "{shown}"
    );
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let parked = telnyx_number(&ctx, "+17473897673").await;
    assert_eq!(parked["connection_id"], FALLBACK_APP, "parked: {parked}");
    assert_ne!(parked["connection_id"], before);
    assert_eq!(parked["status"], "active");
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    let drift = ctx.cwa(&["drift", "--json"]).await;
    assert_exit(&drift, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout(&drift)).unwrap();
    assert_eq!(report["kept"][0]["number"], "+17473897673", "{report}");
    assert!(
        !ctx.requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.path.contains("phone_numbers")),
        "never released"
    );
}

/// The class: a kept number whose connection is deleted in the same change is parked first,
/// so the delete is no longer refused (it was `connection-in-use`) and the number is never
/// left on nothing. A park target that is not declared is a validate diagnostic at its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parking_lets_the_connection_of_a_kept_number_go() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let text = ctx.lines_toml();
    let start = text.find("[telnyx.texml_application.fallback]").unwrap();
    let end = start + text[start..].find("# ----").unwrap();
    let without_fallback = format!("{}{}", &text[..start], &text[end..]);
    ctx.set_lines_toml(&without_fallback.replacen(
        "connection = \"telnyx_fqdn_connection.livekit\"\n",
        "connection = \"telnyx_fqdn_connection.livekit\"\npark = \"telnyx_texml_application.gone\"\n",
        1,
    ));
    let bad = ctx.cwa(&["validate"]).await;
    assert_exit(&bad, 1);
    let why = format!("{}{}", stdout(&bad), stderr(&bad));
    assert!(why.contains("park") && why.contains("lines.toml:"), "{why}");
    ctx.set_lines_toml(&without_fallback.replacen(
        "connection = \"telnyx_fqdn_connection.livekit\"\n",
        "connection = \"telnyx_fqdn_connection.livekit\"\npark = \"telnyx_fqdn_connection.livekit\"\n",
        1,
    ));
    let plan = ctx.cwa(&["plan"]).await;
    assert_exit(&plan, 0);
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let parked = telnyx_number(&ctx, "+14697288326").await;
    assert_eq!(parked["connection_id"], "2925081061861885519", "{parked}");
    let world = ctx.sb.world_json().await;
    assert!(
        world["telnyx"]["texml_applications"]
            .get("2927180743153026408")
            .is_none(),
        "the app is deleted once nothing uses it"
    );
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

/// The numbers of the sandbox's LiveKit inbound trunk named `name`, in the order it holds them.
fn livekit_trunk_numbers(ctx: &Ctx, name: &str) -> Vec<String> {
    let world = ctx.sb.sandbox.world();
    let world = world.lock().unwrap();
    world
        .livekit
        .inbound_trunks
        .0
        .values()
        .find(|t| t.name == name)
        .map(|t| t.numbers.clone())
        .unwrap_or_else(|| panic!("trunk {name} is in the sandbox"))
}

/// Issue 13: adding a number to a shared LiveKit trunk failed its read-back ("numbers is
/// [a, b], expected [b, a]"): the declaration lists the trunk's numbers in the order its
/// churches attach them, live in its own order. Trunk numbers are a set, in apply's verify,
/// plan and drift alike, and in whichever order live holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_number_to_a_shared_livekit_trunk_verifies_in_any_order() {
    const SHARED: &str = "Shared Churches";
    let high = cwa::sandbox::inventory::numbers_in("734")[0].clone();
    let low = cwa::sandbox::inventory::numbers_in("212")[0].clone();
    assert!(low < high);
    let ctx = Ctx::runbook().await;
    let church = |key: &str, n: u32, number: &str| {
        format!(
            "\n[church.{key}]\nid = \"00000000-0000-4000-8000-0000000000c{n}\"\nname = \"{key}\"\nnumber = \"{number}\"\ntrunk = \"livekit_inbound_trunk.shared\"\n"
        )
    };
    let shared = format!(
        "{}\n[livekit.inbound_trunk.shared]\nname = \"{SHARED}\"\n\n[livekit.dispatch_rule.shared]\nname = \"Shared Dispatch\"\ntrunks = [\"livekit_inbound_trunk.shared\"]\n{}",
        ctx.lines_toml(),
        church("alpha", 1, &high)
    );
    ctx.set_lines_toml(&shared);
    let first = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&first, 0);
    assert_eq!(
        livekit_trunk_numbers(&ctx, SHARED),
        std::slice::from_ref(&high)
    );
    ctx.set_lines_toml(&format!("{shared}{}", church("beta", 2, &low)));
    let second = ctx.cwa(&["apply", "--auto-approve"]).await;
    let said = format!("{}{}", stdout(&second), stderr(&second));
    assert_exit(&second, 0);
    assert!(!said.contains("expected"), "{said}");
    // Declared in church order, [high, low]: not the order of the set's canonical form.
    let mut live = livekit_trunk_numbers(&ctx, SHARED);
    let mut sorted = live.clone();
    sorted.sort();
    assert_eq!(sorted, [low.clone(), high.clone()]);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    // Whichever order live holds them in: the other one too.
    live.reverse();
    {
        let world = ctx.sb.sandbox.world();
        let mut world = world.lock().unwrap();
        let trunk = world
            .livekit
            .inbound_trunks
            .0
            .values_mut()
            .find(|t| t.name == SHARED)
            .unwrap();
        trunk.numbers = live;
    }
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    assert_exit(&ctx.cwa(&["drift"]).await, 0);
}

/// Issue 13: import refused accounts LiveKit and Twilio accept: two inbound trunks on one
/// number split by `allowed_numbers` (the server's conflict rule), and a Twilio trunk with no
/// domain (origination only; `DomainName` is optional in twilio-oai). Both import, and the
/// declaration import writes validates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_takes_split_trunks_and_origination_only_trunks() {
    let ctx = Ctx::with_world("runbook", "").await;
    {
        let world = ctx.sb.sandbox.world();
        let mut world = world.lock().unwrap();
        let test = world
            .livekit
            .inbound_trunks
            .0
            .values_mut()
            .find(|t| t.name == "Twilio Test")
            .expect("the test trunk");
        test.allowed_numbers = vec!["+14142220101".into()];
        let mut split = test.clone();
        split.sip_trunk_id = "ST_splitTrunk0001".into();
        split.name = "Twilio Test Split".into();
        split.allowed_numbers = vec!["+14142220102".into()];
        world
            .livekit
            .inbound_trunks
            .0
            .insert(split.sip_trunk_id.clone(), split);
        world
            .livekit
            .dispatch_rules
            .0
            .values_mut()
            .find(|r| r.name == "Test Dispatch")
            .expect("the test rule")
            .trunk_ids
            .push("ST_splitTrunk0001".into());
        let trunk = world
            .twilio
            .trunks
            .values_mut()
            .find(|t| t.domain_name.as_deref() == Some("churchwiseai-test.pstn.twilio.com"))
            .expect("the Twilio test trunk");
        trunk.domain_name = None;
    }
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 0);
    let text = ctx.lines_toml();
    assert!(text.contains("Twilio Test Split"), "{text}");
    let validated = ctx.cwa(&["validate"]).await;
    assert_exit(&validated, 0);
}
