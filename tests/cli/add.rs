//! Issue 23, provisioning on purchase: `cwa add church`, `cwa remove church`, `cwa apply
//! --target church.KEY` and `--reserve`, through the real binary against the sandbox.

use serde_json::{json, Value};

use crate::common::{assert_exit, repo_lines_toml, stderr, stdout, Ctx};

const GRACE_ID: &str = "00000000-0000-4000-8000-0000000000a1";

/// `cwa add church grace …` with these extra arguments.
fn add_grace<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "add",
        "church",
        "grace",
        "--id",
        GRACE_ID,
        "--name",
        "Grace Chapel",
    ];
    args.extend_from_slice(extra);
    args
}

const GRACE_BLOCK: &str = "[church.grace]\nid = \"00000000-0000-4000-8000-0000000000a1\"\nname = \"Grace Chapel\"\nnumber = \"auto\"\narea_code = \"734\"\n";

/// The runbook world with everything applied, so dependencies have nothing pending.
async fn applied_runbook() -> Ctx {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    ctx
}

fn pinned_number(ctx: &Ctx, addr: &str) -> String {
    match &ctx.state().resources[addr].spec {
        cwa::model::Spec::TelnyxNumber(n) => n.number.fixed().expect("pinned").to_string(),
        other => panic!("{addr} is {other:?}"),
    }
}

async fn control(ctx: &Ctx, route: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(ctx.sb.url(&format!("/sandbox/telnyx/{route}")))
        .body(body.to_string())
        .send()
        .await
        .expect("the control route answers");
    crate::common::sandbox::json_of(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_into_the_repository_lines_toml_changes_only_the_new_block() {
    let ctx = Ctx::runbook().await;
    let before = ctx.lines_toml();
    let out = ctx.cwa(&add_grace(&["--area-code", "734"])).await;
    assert_exit(&out, 0);
    let after = ctx.lines_toml();
    assert_eq!(
        after.replacen(&format!("\n{GRACE_BLOCK}"), "", 1),
        before,
        "the diff is the new block and nothing else:\n{after}"
    );
    assert!(
        after.find("number = \"+17473897673\"").unwrap() < after.find("[church.grace]").unwrap()
            && after.find("[church.grace]").unwrap() < after.find("# Telnyx").unwrap(),
        "after the last church, before the next section"
    );
    // In the layout `cwa fmt` leaves unchanged: formatting adds nothing to the block.
    let fmt = |t: &str| cwa::config::fmt::format(t).unwrap();
    assert_eq!(
        fmt(&after).replacen(&format!("\n{GRACE_BLOCK}"), "", 1),
        fmt(&before)
    );
    // It prints that church's plan, and only it.
    let plan = stdout(&out);
    for a in [
        "telnyx_number.grace",
        "livekit_inbound_trunk.grace",
        "livekit_dispatch_rule.grace",
    ] {
        assert!(plan.contains(a), "{a}: {plan}");
    }
    assert!(!plan.contains("livekit_dispatch_rule.melvindale"), "{plan}");
    assert!(ctx.writes().is_empty(), "add writes nothing live");
    // --json is the plan document.
    let json = ctx.cwa(&add_grace(&["--area-code", "734", "--json"])).await;
    assert_exit(&json, 0);
    let doc: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert!(doc["format_version"].is_string(), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_add_twice_is_a_no_op_and_any_difference_is_refused_at_the_existing_line() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&add_grace(&["--area-code", "734"])).await, 0);
    let once = ctx.lines_toml();
    let again = ctx.cwa(&add_grace(&["--area-code", "734"])).await;
    assert_exit(&again, 0);
    assert!(
        stderr(&again).contains("nothing was written"),
        "{}",
        stderr(&again)
    );
    assert_eq!(ctx.lines_toml(), once);

    let grace_line = once[..once.find("[church.grace]").unwrap()]
        .matches('\n')
        .count()
        + 1;
    let cases: Vec<(Vec<&str>, String)> = vec![
        // Same key, another name or area code.
        (
            vec![
                "add",
                "church",
                "grace",
                "--id",
                GRACE_ID,
                "--name",
                "Grace",
                "--area-code",
                "734",
            ],
            format!("lines.toml:{grace_line}"),
        ),
        (
            add_grace(&["--area-code", "414"]),
            format!("lines.toml:{grace_line}"),
        ),
        // Another key, the same id (case does not hide it).
        (
            vec![
                "add",
                "church",
                "grace2",
                "--id",
                "00000000-0000-4000-8000-0000000000A1",
                "--name",
                "G",
                "--area-code",
                "734",
            ],
            format!("lines.toml:{}", grace_line + 1),
        ),
        // Another key, a number another church (or a plain number block) declares.
        (
            vec![
                "add",
                "church",
                "g3",
                "--id",
                "00000000-0000-4000-8000-0000000000b3",
                "--name",
                "G",
                "--number",
                "+14144007103",
            ],
            "lines.toml:63".into(),
        ),
        (
            vec![
                "add",
                "church",
                "g4",
                "--id",
                "00000000-0000-4000-8000-0000000000b4",
                "--name",
                "G",
                "--number",
                "+14697288326",
            ],
            "lines.toml:".into(),
        ),
        // The same id as a repository church.
        (
            vec![
                "add",
                "church",
                "g5",
                "--id",
                "00000000-0000-4000-8000-000000000001",
                "--name",
                "G",
                "--area-code",
                "734",
            ],
            "lines.toml:61".into(),
        ),
    ];
    for (args, at) in cases {
        let out = ctx.cwa(&args).await;
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(
            err.contains("cwa::add::duplicate") && err.contains(&at),
            "{args:?}: {err}"
        );
        assert_eq!(ctx.lines_toml(), once, "{args:?} wrote");
    }
    assert!(ctx.writes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_and_names_never_break_the_file_and_always_get_a_diagnostic() {
    let ctx = Ctx::runbook().await;
    let before = ctx.lines_toml();
    let long = "x".repeat(100_000);
    let keys = [
        "a\"b",
        "a]b",
        "a\nb",
        "a\u{202e}b",
        "Grace",
        "",
        "a.b",
        "a b",
        &long,
    ];
    for key in keys {
        let out = ctx
            .cwa(&[
                "add",
                "church",
                key,
                "--id",
                GRACE_ID,
                "--name",
                "G",
                "--area-code",
                "734",
            ])
            .await;
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains("cwa::add::key"),
            "{key:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains('\u{202e}'), "bidi shown raw");
    }
    let names = [
        "Grace \"Chapel\"",
        "x]\n[church.evil]\nid = \"1\"",
        "Grace\r\nChapel",
        "Grace \u{202e}lepahC",
        "Grace\u{2066}",
        "   ",
        &long,
    ];
    for name in names {
        let out = ctx
            .cwa(&[
                "add",
                "church",
                "hostile",
                "--id",
                GRACE_ID,
                "--name",
                name,
                "--area-code",
                "734",
            ])
            .await;
        let code = out.status.code();
        let text = ctx.lines_toml();
        // Either refused with a diagnostic and nothing written, or written as one string that
        // the file reads back exactly.
        if code == Some(0) {
            let loaded = cwa::config::parse(std::path::Path::new("lines.toml"), &text).unwrap();
            let church = loaded
                .desired
                .churches
                .iter()
                .find(|c| c.key == "hostile")
                .unwrap();
            assert_eq!(church.name, name);
            assert_exit(&ctx.cwa(&["remove", "church", "hostile"]).await, 0);
        } else {
            assert_exit(&out, 1);
            assert!(
                stderr(&out).contains("cwa::add::"),
                "{name:?}: {}",
                stderr(&out)
            );
            assert_eq!(text, before, "{name:?} wrote");
        }
        assert!(!stderr(&out).contains('\u{202e}'), "bidi shown raw");
    }
    assert_eq!(ctx.lines_toml(), before);
    // Flags for what is not built, and the refused combination.
    for (extra, what) in [
        (vec!["--provider", "livekit"], "issue 20"),
        (
            vec![
                "--provider",
                "livekit",
                "--trunk",
                "livekit_inbound_trunk.twilio_main",
            ],
            "--trunk cannot be combined",
        ),
        (vec!["--emergency-address", "1 Main St"], "issue 21"),
    ] {
        let mut args = add_grace(&["--area-code", "734"]);
        args.extend(extra);
        let out = ctx.cwa(&args).await;
        assert_exit(&out, 1);
        assert!(stderr(&out).contains(what), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(ctx.lines_toml(), before);
    assert!(ctx.writes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_and_a_targeted_apply_converge_and_check_certifies_the_new_line() {
    let ctx = applied_runbook().await;
    assert_exit(&ctx.cwa(&add_grace(&["--area-code", "734"])).await, 0);
    let out = ctx
        .cwa(&["apply", "--target", "church.grace", "--auto-approve"])
        .await;
    assert_exit(&out, 0);
    let number = pinned_number(&ctx, "telnyx_number.grace");
    assert!(number.starts_with("+1734"), "{number}");
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    let check = ctx.cwa(&["check", "--json"]).await;
    assert_exit(&check, 0);
    let report: Value = serde_json::from_str(&stdout(&check)).unwrap();
    let mine: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.to_string().contains(&number))
        .collect();
    assert!(!mine.is_empty(), "the new line is checked: {report:#}");
    assert!(mine.iter().all(|c| c["passed"] == json!(true)), "{mine:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targeted_apply_refuses_a_dependency_with_a_pending_change_and_names_it() {
    let ctx = applied_runbook().await;
    ctx.edit_lines_toml(
        "whitelisted_destinations = [\"CA\", \"US\"]",
        "whitelisted_destinations = [\"CA\", \"US\", \"MX\"]",
    );
    assert_exit(&ctx.cwa(&add_grace(&["--area-code", "734"])).await, 1);
    let writes = ctx.writes().len();
    // The add was refused (its plan has the dependency's change): write the block by hand.
    let text = ctx.lines_toml();
    ctx.set_lines_toml(&cwa::config::edit::insert_church(&text, GRACE_BLOCK).unwrap());
    let out = ctx
        .cwa(&["apply", "--target", "church.grace", "--auto-approve"])
        .await;
    assert_exit(&out, 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(
        err.contains("telnyx_outbound_voice_profile.churchwiseai")
            && err.contains("target-dependency"),
        "{err}"
    );
    assert_eq!(
        ctx.writes().len(),
        writes,
        "nothing applied, on the side or not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_approved_church_target_does_nothing_but_create_that_chain() {
    let ctx = applied_runbook().await;
    ctx.edit_lines_toml(
        "name = \"Melvindale Church of God\"",
        "name = \"Melvindale Church\"",
    );
    let writes = ctx.writes().len();
    let out = ctx
        .cwa(&["apply", "--target", "church.melvindale", "--auto-approve"])
        .await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("auto-approved-target"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ctx.writes().len(), writes, "no update sent");
    // Reviewed (a saved plan file), the same targeted change is applied.
    assert_exit(
        &ctx.cwa(&["plan", "--target", "church.melvindale", "--out", "p.json"])
            .await,
        0,
    );
    assert_exit(
        &ctx.cwa(&["apply", "p.json", "--target", "church.melvindale"])
            .await,
        0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_and_apply_keep_the_number_declared_with_plan_and_drift_clean() {
    let ctx = applied_runbook().await;
    assert_exit(&ctx.cwa(&add_grace(&["--area-code", "734"])).await, 0);
    assert_exit(
        &ctx.cwa(&["apply", "--target", "church.grace", "--auto-approve"])
            .await,
        0,
    );
    let number = pinned_number(&ctx, "telnyx_number.grace");
    let before_add = ctx
        .lines_toml()
        .replacen(&format!("\n{GRACE_BLOCK}"), "", 1);
    let out = ctx.cwa(&["remove", "church", "grace"]).await;
    assert_exit(&out, 0);
    let text = ctx.lines_toml();
    assert!(!text.contains("[church.grace]"), "{text}");
    assert!(
        text.contains(&format!(
            "[kept]\n\"{number}\" = \"Grace Chapel (grace) removed by cwa remove on "
        )),
        "{text}"
    );
    assert!(
        text.starts_with(&before_add),
        "every other byte stays:\n{text}"
    );
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
    let drift = ctx.cwa(&["drift"]).await;
    assert_exit(&drift, 0);
    let world = ctx.sb.world_json().await;
    assert!(
        world["telnyx"]["phone_numbers"]
            .to_string()
            .contains(&number),
        "still ours"
    );
    assert!(
        !world["livekit"].to_string().contains("Grace Chapel\""),
        "trunk and rule gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_with_release_number_declares_nothing_and_apply_release_numbers_releases_it() {
    let ctx = applied_runbook().await;
    assert_exit(&ctx.cwa(&add_grace(&["--area-code", "734"])).await, 0);
    assert_exit(
        &ctx.cwa(&["apply", "--target", "church.grace", "--auto-approve"])
            .await,
        0,
    );
    let number = pinned_number(&ctx, "telnyx_number.grace");
    let out = ctx
        .cwa(&["remove", "church", "grace", "--release-number"])
        .await;
    assert_exit(&out, 0);
    assert!(!ctx.lines_toml().contains("\n[kept]\n"));
    assert!(
        stderr(&out).contains("--release-numbers"),
        "{}",
        stderr(&out)
    );
    assert_exit(
        &ctx.cwa(&["apply", "--auto-approve", "--release-numbers"])
            .await,
        0,
    );
    let world = ctx.sb.world_json().await;
    assert!(
        !world["telnyx"]["phone_numbers"]
            .to_string()
            .contains(&number),
        "released"
    );
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

/// `add --reserve` and the reservation it made (its id from the comment in lines.toml).
async fn add_reserved(ctx: &Ctx) -> (String, String) {
    let out = ctx
        .cwa(&add_grace(&["--area-code", "734", "--reserve"]))
        .await;
    assert_exit(&out, 0);
    let text = ctx.lines_toml();
    let comment = text
        .lines()
        .find(|l| l.starts_with("# Reserved at Telnyx"))
        .unwrap_or_else(|| panic!("no reservation comment: {text}"));
    let id = comment
        .split("reservation ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let block = &text[text.find("[church.grace]").unwrap()..];
    let number = block.lines().find(|l| l.starts_with("number = ")).unwrap();
    let number = number
        .trim_start_matches("number = ")
        .trim_matches('"')
        .to_string();
    assert!(number.starts_with("+1734"), "{number}");
    assert!(comment.contains("held until 20"), "{comment}");
    (id.to_string(), number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_number_is_the_one_bought_and_no_one_else_can_buy_it_meanwhile() {
    let ctx = applied_runbook().await;
    let (_, number) = add_reserved(&ctx).await;
    let reservations = |ctx: &Ctx| {
        ctx.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/number_reservations"))
            .count()
    };
    assert_eq!(reservations(&ctx), 1);
    assert_exit(&ctx.cwa(&["plan"]).await, 0);
    assert_eq!(reservations(&ctx), 1, "plain plan never reserves");
    let (status, body) = control(&ctx, "sell_elsewhere", json!({"phone_number": number})).await;
    assert_eq!(status, 409, "held for this account: {body}");
    assert_exit(
        &ctx.cwa(&["apply", "--target", "church.grace", "--auto-approve"])
            .await,
        0,
    );
    assert_eq!(pinned_number(&ctx, "telnyx_number.grace"), number);
    assert_exit(&ctx.cwa(&["plan", "--detailed-exitcode"]).await, 0);
}

/// The payment webhook retries a request it saw no answer to: the same `--reserve` again finds
/// the block it wrote, with its reservation, and is a no-op (exit 0, nothing reserved, the
/// file unchanged). A retry that differs in anything (the name, the area code, no
/// `--reserve`) is the usual duplicate, refused at the church's line, reserving nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_reserve_is_a_no_op_and_a_different_one_is_refused_reserving_nothing() {
    let ctx = applied_runbook().await;
    let reservations = |ctx: &Ctx| {
        ctx.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/number_reservations"))
            .count()
    };
    let (_, number) = add_reserved(&ctx).await;
    let once = ctx.lines_toml();
    assert_eq!(reservations(&ctx), 1);
    let again = ctx
        .cwa(&add_grace(&["--area-code", "734", "--reserve"]))
        .await;
    assert_exit(&again, 0);
    assert!(
        stderr(&again).contains("nothing was written"),
        "{}",
        stderr(&again)
    );
    assert!(stdout(&again).contains("telnyx_number.grace"), "its plan");
    assert_eq!(ctx.lines_toml(), once);
    assert_eq!(reservations(&ctx), 1, "a retry reserves nothing more");
    let line = once[..once.find("[church.grace]").unwrap()]
        .matches('\n')
        .count()
        + 1;
    for args in [
        vec![
            "add",
            "church",
            "grace",
            "--id",
            GRACE_ID,
            "--name",
            "Grace",
            "--area-code",
            "734",
            "--reserve",
        ],
        add_grace(&["--area-code", "313", "--reserve"]),
        add_grace(&["--area-code", "734"]),
    ] {
        let out = ctx.cwa(&args).await;
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(
            err.contains("cwa::add::duplicate") && err.contains(&format!("lines.toml:{line}")),
            "{args:?}: {err}"
        );
        assert_eq!(ctx.lines_toml(), once, "{args:?} wrote");
        assert_eq!(reservations(&ctx), 1, "{args:?} reserved");
    }
    // The retried request then applies as the first one would have.
    assert_exit(
        &ctx.cwa(&["apply", "--target", "church.grace", "--auto-approve"])
            .await,
        0,
    );
    assert_eq!(pinned_number(&ctx, "telnyx_number.grace"), number);
    // The block's number edited by hand to one outside the area code: no longer the earlier
    // reservation, so the retry is the usual duplicate.
    ctx.edit_lines_toml(
        &format!("number = \"{number}\""),
        "number = \"+13134567890\"",
    );
    let edited = ctx.lines_toml();
    let out = ctx
        .cwa(&add_grace(&["--area-code", "734", "--reserve"]))
        .await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("cwa::add::duplicate"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ctx.lines_toml(), edited);
    assert_eq!(reservations(&ctx), 1);
}

/// Church keys (and line keys) are 1 to 64 lower-case ASCII letters, digits, `_` or `-`: `cwa
/// validate` refuses any other at the key itself, and a control or bidi character quoted in a
/// diagnostic (a key, a name, a value) is shown escaped, never raw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_refuses_a_church_key_that_is_not_a_slug_at_the_key_and_escapes_bidi() {
    let ctx = Ctx::runbook().await;
    let base = ctx.lines_toml();
    let block = |header: &str| {
        format!(
            "{base}\n[{header}]\nid = \"00000000-0000-4000-8000-0000000000c1\"\nname = \"Grace\"\nnumber = \"auto\"\narea_code = \"734\"\n"
        )
    };
    let long = "x".repeat(65);
    let cases = [
        ("church.Grace".to_string(), "church.".len()),
        ("church.\"a b\"".to_string(), "church.".len()),
        ("church.\"a.b\"".to_string(), "church.".len()),
        // U+202E written raw, and as a TOML escape (the file has no hidden byte, the key does).
        ("church.\"a\u{202e}b\"".to_string(), "church.".len()),
        ("church.\"a\\u202Eb\"".to_string(), "church.".len()),
        (format!("church.{long}"), "church.".len()),
        ("church.\"\"".to_string(), "church.".len()),
    ];
    for (header, col) in cases {
        let text = block(&header);
        ctx.set_lines_toml(&text);
        let out = ctx.cwa(&["validate"]).await;
        assert_exit(&out, 1);
        let err = stderr(&out);
        let line = text[..text.find(&format!("[{header}]")).unwrap()]
            .matches('\n')
            .count()
            + 1;
        assert!(
            err.contains("cwa::config::church_key")
                && err.contains(&format!("lines.toml:{line}:{}", col + 2)),
            "{header:?}: {err}"
        );
        assert!(
            !err.contains('\u{202e}') && !stdout(&out).contains('\u{202e}'),
            "bidi shown raw: {err}"
        );
        if header.contains("202") {
            assert!(err.contains("\\u{202e}"), "escaped, visibly: {err}");
        }
    }
    // A line key is held to the same rule.
    let text = format!(
        "{base}\n[church.grace]\nid = \"00000000-0000-4000-8000-0000000000c1\"\nname = \"Grace\"\n\n[church.grace.lines.Main]\nnumber = \"auto\"\narea_code = \"734\"\n"
    );
    ctx.set_lines_toml(&text);
    let out = ctx.cwa(&["validate"]).await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("cwa::config::church_key") && stderr(&out).contains("line key"),
        "{}",
        stderr(&out)
    );
    // A name or value with U+202E quoted by another diagnostic: escaped too.
    for (from, to) in [
        ("name = \"ChurchWiseAI\"", "name = \"\u{202e}a\""),
        ("area_code = \"734\"", "area_code = \"9\u{202e}11\""),
    ] {
        let text = block("church.grace").replacen(from, to, 1);
        assert_ne!(text, block("church.grace"), "{from}");
        ctx.set_lines_toml(&text);
        let out = ctx.cwa(&["validate"]).await;
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("\\u{202e}"), "{to}: {err}");
        assert!(!err.contains('\u{202e}'), "{to}: bidi shown raw: {err}");
    }
    // And a --target that names nothing.
    ctx.set_lines_toml(&base);
    let out = ctx.cwa(&["plan", "--target", "church.a\u{202e}b"]).await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("\\u{202e}") && !stderr(&out).contains('\u{202e}'),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_reservation_whose_number_was_sold_is_refused_with_its_reason() {
    let ctx = applied_runbook().await;
    let (id, number) = add_reserved(&ctx).await;
    let (status, body) = control(&ctx, "lapse", json!({"id": id})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = control(&ctx, "sell_elsewhere", json!({"phone_number": number})).await;
    assert_eq!(status, 200, "lapsed, so sold: {body}");
    let writes = ctx.writes().len();
    let out = ctx
        .cwa(&["apply", "--target", "church.grace", "--auto-approve"])
        .await;
    assert_exit(&out, 1);
    let err = stderr(&out) + &stdout(&out);
    assert!(
        err.contains(&format!("reservation {id} lapsed")) && err.contains(&number),
        "{err}"
    );
    assert_eq!(ctx.writes().len(), writes, "refused before any write");
}

#[test]
fn a_fifty_megabyte_name_is_a_diagnostic_before_any_edit() {
    // Too large for a command line (Linux caps one argument at 128 KiB), so through the library
    // `cwa add` calls, as a webhook's JSON would reach it.
    let name = "n".repeat(50 * 1024 * 1024);
    let new = cwa::provision::NewChurch {
        key: "big".into(),
        id: GRACE_ID.into(),
        name,
        number: cwa::provision::NumberChoice::AreaCode("734".into()),
        agent: None,
        trunk: None,
        provider: cwa::provision::NumberProvider::Telnyx,
        emergency_address: None,
        reserve: false,
    };
    let started = std::time::Instant::now();
    let text = repo_lines_toml();
    let err = cwa::provision::add(std::path::Path::new("lines.toml"), &text, &new, None)
        .expect_err("refused");
    assert!(err.to_string().contains("longer than 255"), "{err}");
    // Refused on its size, before it is read character by character or parsed: well under a
    // second even in a debug build on a loaded machine.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auto_add_policy_is_pr_by_default_apply_when_declared_and_checked() {
    let ctx = Ctx::runbook().await;
    let out = ctx.cwa(&["export", "auto-add"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "pr\n");
    ctx.edit_lines_toml(
        "max_delete_share = 0.25",
        "max_delete_share = 0.25\nauto_add = \"apply\"",
    );
    assert_eq!(stdout(&ctx.cwa(&["export", "auto-add"]).await), "apply\n");
    ctx.edit_lines_toml("auto_add = \"apply\"", "auto_add = \"yes\"");
    let out = ctx.cwa(&["export", "auto-add"]).await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("cwa::config::policy") && stderr(&out).contains("auto_add = \"yes\""),
        "{}",
        stderr(&out)
    );
}
