//! `cwa import` end to end: the real binary against the sandbox over HTTP. Import followed by
//! plan shows no changes for what it imported; existing text is left as it was; a result that
//! would not validate is never written; the shipped state/ matches a fresh runbook world.

use std::path::Path;

use crate::common::{assert_exit, repo_lines_toml, repo_root, stdout, Ctx};
use cwa::plan::{Action, Plan};
use serde_json::json;

/// The plan as JSON, after asserting it ran.
async fn plan_json(ctx: &Ctx) -> Plan {
    let out = ctx.cwa(&["plan", "--json"]).await;
    assert_exit(&out, 0);
    Plan::from_json(&stdout(&out)).expect("a plan")
}

/// Gives the test's working directory the repository's shipped state/.
fn use_shipped_state(ctx: &Ctx) {
    let state_dir = ctx.path("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::copy(
        repo_root().join("state/state.json"),
        state_dir.join("state.json"),
    )
    .unwrap();
}

fn actionable(plan: &Plan) -> Vec<(String, Action, Vec<String>)> {
    plan.actionable()
        .map(|c| {
            (
                c.address.to_string(),
                c.action,
                c.fields.iter().map(|f| f.path.clone()).collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_a_synthetic_world_then_plan_has_no_changes() {
    let ctx = Ctx::with_world("synthetic:6", "version = 1\n").await;
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 0);
    assert!(ctx.writes().is_empty(), "import wrote: {:?}", ctx.writes());

    let text = ctx.lines_toml();
    assert!(text.starts_with("version = 1\n"), "{text}");
    for line in cwa::sandbox::synthetic_lines(6) {
        assert!(text.contains(&format!("[church.{}]", line.key)), "{text}");
        assert!(
            text.contains(&format!("id = \"{}\"", line.church_id)),
            "{text}"
        );
        assert!(
            text.contains(&format!("number = \"{}\"", line.number)),
            "{text}"
        );
    }
    assert!(!text.contains("PLACEHOLDER"), "{text}");
    cwa::config::parse(Path::new("lines.toml"), &text).expect("the result validates");

    let plan = plan_json(&ctx).await;
    assert!(actionable(&plan).is_empty(), "{:?}", actionable(&plan));
    assert!(plan.unmanaged.is_empty(), "{:?}", plan.unmanaged);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    assert_eq!(ctx.state().resources.len(), 6 * 3 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_of_the_runbook_world_declares_everything_and_marks_what_is_broken() {
    let ctx = Ctx::with_world("runbook", "").await;
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 0);
    let said = stdout(&out);
    assert!(said.contains("live names no agent"), "{said}");
    assert!(said.contains("no outbound voice profile"), "{said}");
    assert!(ctx.writes().is_empty());

    let text = ctx.lines_toml();
    assert!(text.contains("[church.medhanialem_ethiopian_evangelical_church]"));
    assert!(text.contains("[church.melvindale_church_of_god]"));
    assert!(
        text.contains("PLACEHOLDER"),
        "no church_id live: the ids are marked"
    );
    assert!(text.contains("# live: this rule names NO agent"));
    assert!(text.contains("password_env = \"TELNYX_OUTBOUND_SIP_PASSWORD\""));

    let plan = plan_json(&ctx).await;
    let mut changes = actionable(&plan);
    changes.sort();
    assert_eq!(
        changes,
        vec![
            (
                "livekit_dispatch_rule.melvindale_church_of_god".to_string(),
                Action::Update,
                vec!["agents".to_string()]
            ),
            (
                "telnyx_credential_connection.cwa_verticals_platform_outbound".to_string(),
                Action::Update,
                vec!["outbound_voice_profile".to_string()]
            ),
        ],
        "only the two broken objects the import marked"
    );
    assert!(plan.unmanaged.is_empty(), "{:?}", plan.unmanaged);
    assert_eq!(ctx.state().resources.len(), 29);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_into_the_repository_declaration_adds_only_what_is_missing() {
    let ctx = Ctx::runbook().await;
    let before = ctx.lines_toml();
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 0);
    let after = ctx.lines_toml();
    assert!(after.starts_with(&before), "existing text is untouched");
    let added = &after[before.len()..];
    assert_eq!(added.matches("\n[").count(), 1, "{added}");
    assert!(
        added.contains("[telnyx.fqdn_connection.livekit_inbound_v2]"),
        "{added}"
    );
    assert!(stdout(&out).contains("Recorded 28 declared object(s)"));

    let state = ctx.state();
    assert!(state.is_protected("ST_Xa3Bp9aixRFP"));
    assert!(state.is_protected("SDR_cYzx7sAkUTvx"));
    assert_eq!(
        state.resources["livekit_dispatch_rule.melvindale"].id,
        "SDR_9vRb2XcLeY7s"
    );

    let plan = plan_json(&ctx).await;
    assert!(plan.changes.iter().all(|c| c.action != Action::Adopt));
    let mut updated: Vec<String> = plan.actionable().map(|c| c.address.to_string()).collect();
    updated.sort();
    assert_eq!(
        updated,
        [
            "livekit_dispatch_rule.medhanialem",
            "livekit_dispatch_rule.melvindale",
            "livekit_outbound_trunk.telnyx",
            "telnyx_credential_connection.outbound",
        ]
    );

    let again = ctx.cwa(&["import"]).await;
    assert_exit(&again, 0);
    assert_eq!(ctx.lines_toml(), after, "a second import adds nothing");
    assert!(stdout(&again).contains("already declared"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_that_would_not_validate_writes_nothing() {
    let ctx = Ctx::with_world("runbook", "").await;
    std::fs::remove_file(ctx.path("lines.toml")).unwrap();
    let (status, body) = crate::common::sandbox::send(
        ctx.sb
            .telnyx(
                reqwest::Method::PATCH,
                "/outbound_voice_profiles/2925086295615079772",
            )
            .json(&json!({"name": "ChurchWiseAI", "enabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 1);
    let err = crate::common::stderr(&out);
    assert!(err.contains("would not validate"), "{err}");
    assert!(!ctx.path("lines.toml").exists());
    assert!(!ctx.path("state/state.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_existing_declaration_is_not_imported_into() {
    let ctx = Ctx::with_world("runbook", "version = 1\n[church.x]\nname = \"X\"\n").await;
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 1);
    assert_eq!(ctx.lines_toml(), "version = 1\n[church.x]\nname = \"X\"\n");
}

/// The shipped state/ maps every address lines.toml declares to the id it has in a fresh
/// runbook world, which is what an import of the repository's lines.toml records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_state_matches_a_fresh_runbook_world() {
    let shipped = cwa::state::StateStore::new(repo_root().join("state"))
        .load()
        .expect("the shipped state loads");
    let loaded = cwa::config::parse(Path::new("lines.toml"), &repo_lines_toml()).unwrap();
    let mut declared: Vec<String> = loaded
        .desired
        .resources
        .keys()
        .map(|a| a.to_string())
        .collect();
    declared.sort();
    let owned: Vec<String> = shipped.resources.keys().cloned().collect();
    assert_eq!(
        owned, declared,
        "state owns exactly what lines.toml declares"
    );
    for id in ["ST_Xa3Bp9aixRFP", "SDR_cYzx7sAkUTvx"] {
        assert!(shipped.is_protected(id), "{id} is protected in state");
    }

    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["import"]).await, 0);
    let fresh = ctx.state();
    for (addr, r) in &shipped.resources {
        assert_eq!(
            fresh.resources.get(addr).map(|f| f.id.as_str()),
            Some(r.id.as_str()),
            "{addr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_from_the_shipped_state_alone_is_clean() {
    let ctx = Ctx::runbook().await;
    use_shipped_state(&ctx);
    let out = ctx.cwa(&["plan", "--refresh=false", "--json"]).await;
    assert_exit(&out, 0);
    let plan = Plan::from_json(&stdout(&out)).unwrap();
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert!(plan.changes.iter().all(|c| !matches!(
        c.action,
        Action::Adopt | Action::Create | Action::Delete | Action::Replace
    )));

    let live = ctx.cwa(&["plan", "--json"]).await;
    assert_exit(&live, 0);
    let plan = Plan::from_json(&stdout(&live)).unwrap();
    assert!(plan.changes.iter().all(|c| c.action != Action::Adopt));
    assert_eq!(
        plan.actionable().count(),
        4,
        "the runbooks' four fixes, nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_declaration_comes_back_under_the_addresses_state_owns() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let text = ctx.lines_toml();
    let from = text.find("[church.melvindale]").unwrap();
    let to = from + text[from..].find("# ----").unwrap();
    ctx.set_lines_toml(&format!("{}{}", &text[..from], &text[to..]));
    assert!(!ctx.lines_toml().contains("+17473897673"));
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 0);
    let text = ctx.lines_toml();
    assert!(text.contains("[church.melvindale]"), "{text}");
    assert!(
        text.contains("id = \"00000000-0000-4000-8000-000000000002\""),
        "the church id comes back from the dispatch metadata apply wrote: {text}"
    );
    assert!(!text.contains("# PLACEHOLDER:"), "{text}");
    let state = ctx.state();
    assert_eq!(
        state.resources["livekit_dispatch_rule.melvindale"].id,
        "SDR_9vRb2XcLeY7s"
    );
    assert_eq!(
        state.resources["livekit_dispatch_rule.melvindale"]
            .church
            .as_deref(),
        Some("melvindale")
    );
    let plan = plan_json(&ctx).await;
    let touched: Vec<String> = plan
        .actionable()
        .map(|c| c.address.to_string())
        .filter(|a| a.ends_with(".melvindale"))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
}

/// Issue 15 finding 6: an import into an empty repository locks nothing, so it must say so
/// loudly and name what to lock: the trunks carrying another provider's numbers or shared by
/// several (the main Twilio trunk ST_Xa3Bp9aixRFP among them) and the rules routing them,
/// never an ordinary church line. The commented `[protected]` block it writes is valid once
/// uncommented and locks the trunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_into_an_empty_repository_warns_that_nothing_is_locked_and_names_what_to_lock() {
    let ctx = Ctx::with_world("runbook", "").await;
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 0);
    let said = stdout(&out);
    assert!(
        said.contains("WARNING: lines.toml declares no [protected] id"),
        "{said}"
    );
    let listed: Vec<&str> = said
        .lines()
        .filter_map(|l| l.strip_prefix("  ! "))
        .collect();
    let ids: Vec<&str> = listed
        .iter()
        .filter_map(|l| l.split_once(" (").and_then(|(_, r)| r.split_once(')')))
        .map(|(id, _)| id)
        .collect();
    for id in crate::common::PROTECTED_IDS {
        assert!(ids.contains(&id), "{id} not proposed: {said}");
    }
    assert!(
        listed
            .iter()
            .any(|l| l.contains(crate::common::PROTECTED_TRUNK)
                && l.contains("holds numbers of twilio")
                && l.contains("shared by 3 numbers")),
        "{said}"
    );
    assert!(
        !listed
            .iter()
            .any(|l| l.contains("melvindale") || l.contains("medhanialem")),
        "a church's own line is not proposed: {said}"
    );

    let text = ctx.lines_toml();
    assert!(
        !text.contains("\n[protected]"),
        "nothing is locked by guess: {text}"
    );
    assert!(
        text.contains(&format!("# \"{}\" = ", crate::common::PROTECTED_TRUNK)),
        "{text}"
    );
    let uncommented = text.replace("# [protected]\n", "[protected]\n").replace(
        &format!("# \"{}\"", crate::common::PROTECTED_TRUNK),
        &format!("\"{}\"", crate::common::PROTECTED_TRUNK),
    );
    ctx.set_lines_toml(&uncommented);
    let plan = plan_json(&ctx).await;
    let trunk = plan
        .changes
        .iter()
        .find(|c| c.id.as_deref() == Some(crate::common::PROTECTED_TRUNK))
        .expect("the trunk is planned");
    assert!(trunk.protected, "uncommented, the advice locks the trunk");

    let again = ctx.cwa(&["import"]).await;
    assert_exit(&again, 0);
    assert_eq!(
        ctx.lines_toml()
            .matches("NO [protected] id is declared")
            .count(),
        1,
        "the advice is written once, never again"
    );
}

/// Issue 15 finding 6: state remembers the lock; an import into an empty lines.toml writes
/// it back to `[protected]` with state's reasons, so no plan carries an `unprotect` and the
/// trunk stays verify-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_carries_the_protection_state_remembers_into_lines_toml() {
    let ctx = Ctx::with_world("runbook", "").await;
    use_shipped_state(&ctx);
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 0);
    let said = stdout(&out);
    assert!(!said.contains("WARNING"), "{said}");

    let text = ctx.lines_toml();
    let loaded = cwa::config::parse(Path::new("lines.toml"), &text).expect("valid");
    let shipped = cwa::state::StateStore::new(repo_root().join("state"))
        .load()
        .unwrap();
    for id in crate::common::PROTECTED_IDS {
        let declared = loaded.desired.protected_id(id);
        assert_eq!(
            declared.map(|p| p.reason.as_str()),
            shipped.protected.get(id).map(String::as_str),
            "{id} is declared with state's reason: {text}"
        );
    }
    let plan = plan_json(&ctx).await;
    assert!(plan.unprotect.is_empty(), "{:?}", plan.unprotect);
    for id in crate::common::PROTECTED_IDS {
        let c = plan
            .changes
            .iter()
            .find(|c| c.id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("{id} planned"));
        assert!(c.protected && !c.action.changes_anything(), "{c:?}");
    }
    assert!(ctx.state().is_protected(crate::common::PROTECTED_TRUNK));
}
