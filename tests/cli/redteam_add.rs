//! Red team (this session) against `cwa add church` / `cwa remove church` (landed this
//! session): what the command line can inject into lines.toml, and what it does at the
//! provider before the new declaration is known to be acceptable.

use crate::common::{assert_exit, stderr, Ctx};

const ID: &str = "00000000-0000-4000-8000-0000000000f1";

fn reservations(ctx: &Ctx) -> usize {
    ctx.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/number_reservations"))
        .count()
}

/// `add church --reserve` whose plan is refused: lines.toml is left alone, and nothing is
/// reserved at Telnyx (a reservation is a provider write, held 30 minutes for nobody). Found by
/// this session's red team (commands/add.rs reserved before it planned); fixed by planning the
/// block with its number "auto" first. The class: every reason a plan of the new church is
/// refused (a protected write through `--trunk`; a dependency with a pending change of its
/// own), each with `--reserve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_add_reserves_nothing_at_the_provider() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let add = |extra: &'static [&'static str]| {
        let mut args = vec![
            "add",
            "church",
            "x",
            "--id",
            ID,
            "--name",
            "X",
            "--area-code",
            "734",
            "--reserve",
        ];
        args.extend_from_slice(extra);
        args
    };
    // The protected trunk.
    let before = ctx.lines_toml();
    let out = ctx
        .cwa(&add(&["--trunk", "livekit_inbound_trunk.twilio_main"]))
        .await;
    assert_exit(&out, 1);
    assert_eq!(ctx.lines_toml(), before, "lines.toml written");
    assert_eq!(reservations(&ctx), 0, "reserved for a refused add");
    // A dependency of the new chain with a change of its own pending.
    ctx.edit_lines_toml(
        "whitelisted_destinations = [\"CA\", \"US\"]",
        "whitelisted_destinations = [\"CA\", \"US\", \"MX\"]",
    );
    let before = ctx.lines_toml();
    let out = ctx.cwa(&add(&[])).await;
    assert_exit(&out, 1);
    assert!(
        (stderr(&out) + &crate::common::stdout(&out)).contains("target-dependency"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ctx.lines_toml(), before, "lines.toml written");
    assert_eq!(reservations(&ctx), 0, "reserved for a refused add");
}

/// `add church KEY` whose resources would be named like an existing church's line
/// (`[church.grace.lines.main]` is `telnyx_number.grace_main`): refused, the file unchanged,
/// nothing reserved. Held since this session's collision check (`redteam_input`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_church_named_like_another_churchs_line_is_refused() {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!(
        "{}\n[church.grace]\nid = \"00000000-0000-4000-8000-0000000000f2\"\nname = \"Grace\"\n\n[church.grace.lines.main]\nnumber = \"auto\"\narea_code = \"414\"\n",
        ctx.lines_toml()
    ));
    let before = ctx.lines_toml();
    for reserve in [false, true] {
        let mut args = vec![
            "add",
            "church",
            "grace_main",
            "--id",
            ID,
            "--name",
            "Grace Main",
            "--area-code",
            "734",
        ];
        if reserve {
            args.push("--reserve");
        }
        let out = ctx.cwa(&args).await;
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains("duplicate_church"),
            "{}",
            stderr(&out)
        );
        assert_eq!(ctx.lines_toml(), before);
    }
    assert_eq!(reservations(&ctx), 0);
    assert!(ctx.writes().is_empty(), "{:?}", ctx.writes());
}

/// Names that TOML must quote with care: both quote kinds, a trailing backslash, triple
/// quotes, a `\u0000` escape written literally, `${HOME}`, `#`, `a = "b"`: written so the
/// file reads back exactly the name given. Held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_toml_must_quote_with_care_read_back_exactly() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let writes = ctx.writes().len();
    let before = ctx.lines_toml();
    for name in [
        "It's \"x\"",
        "a\\",
        "'''",
        "\"\"\"",
        "x\\u0000y",
        "${HOME}",
        "# no comment",
        "a = \"b\"",
    ] {
        let out = ctx
            .cwa(&[
                "add",
                "church",
                "hx",
                "--id",
                ID,
                "--name",
                name,
                "--area-code",
                "734",
                "--refresh=false",
            ])
            .await;
        assert_exit(&out, 0);
        let loaded =
            cwa::config::parse(std::path::Path::new("lines.toml"), &ctx.lines_toml()).unwrap();
        let church = loaded
            .desired
            .churches
            .iter()
            .find(|c| c.key == "hx")
            .unwrap();
        assert_eq!(church.name, name);
        ctx.set_lines_toml(&before);
    }
    assert_eq!(ctx.writes().len(), writes);
}
