//! Independent audit of issue 12 ("Trust"): hostile variants the earlier tests did not try,
//! over the real binary and the sandbox. Each case failed on the code before its fix, or is
//! `#[ignore]`d with the reason when the fix belongs to another part of the code.

use crate::common::{assert_exit, repo_root, stderr, Ctx};

/// Class 7 variant: `PGPASSWORD` is a credential cwa itself reads (the PostgreSQL state
/// backend's password, `state::pg`), so `password_env = "PGPASSWORD"` would send the state
/// database's password to Telnyx as a SIP password. Refused at validate and apply, at its
/// line, with nothing on disk and no write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_backends_password_is_never_a_sip_password() {
    let ctx = Ctx::runbook().await;
    let edited = ctx.lines_toml().replacen(
        "password_env = \"TELNYX_FQDN_PASSWORD\"",
        "password_env = \"PGPASSWORD\"",
        1,
    );
    ctx.set_lines_toml(&edited);
    let line = edited
        .lines()
        .position(|l| l.contains("password_env = \"PGPASSWORD\""))
        .map(|i| i + 1)
        .unwrap();
    for args in [&["validate"][..], &["apply", "--auto-approve"][..]] {
        let out = ctx
            .cwa_env(args, &[("PGPASSWORD", "state-db-password-xyz")])
            .await;
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("cwa::config::secret_env_name"), "{err}");
        assert!(
            err.contains(&format!(":{line}:")),
            "not at line {line}: {err}"
        );
        assert!(!err.contains("state-db-password-xyz"), "{err}");
    }
    assert!(!ctx.path("state").exists(), "state/ created");
    assert!(ctx.writes().is_empty(), "{:?}", ctx.writes());
    let docs = std::fs::read_to_string(repo_root().join("docs/lines-toml.md")).unwrap();
    assert!(
        docs.contains("`PGPASSWORD`"),
        "docs/lines-toml.md lists PGPASSWORD"
    );
}

/// Class 9 variant: area codes that are three digits and pass N11/0xx/1xx/555, but that no
/// place has (N9X and 37X/96X, reserved for expansion; N00, non-geographic; 8YY, toll-free):
/// a search by area code finds no local number, so the line validated and then bought nothing
/// at apply. A validate diagnostic at the line, and apply writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn area_codes_no_place_has_are_validate_diagnostics_at_their_line() {
    let ctx = Ctx::runbook().await;
    let base = ctx.lines_toml();
    for area in ["299", "370", "960", "800", "888", "900"] {
        let text = format!(
            "{base}\n[church.newone]\nid = \"00000000-0000-4000-8000-0000000000b1\"\nname = \"New One\"\nnumber = \"auto\"\narea_code = \"{area}\"\n"
        );
        ctx.set_lines_toml(&text);
        let line = text.lines().count();
        for args in [&["validate"][..], &["apply", "--auto-approve"][..]] {
            let out = ctx.cwa(args).await;
            assert_exit(&out, 1);
            let err = stderr(&out);
            assert!(err.contains("provider_limit"), "{area}: {err}");
            assert!(
                err.contains(&format!(":{line}:")),
                "{area}: not at line {line}: {err}"
            );
        }
    }
    assert!(ctx.writes().is_empty(), "{:?}", ctx.writes());
}

/// Class 8 variant: `cwa import` into an existing lines.toml that does not parse took the
/// state lock (creating state/) before it read the declaration, and left an empty state/
/// behind. Nothing may be created on disk before lines.toml parses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_into_an_invalid_declaration_creates_nothing_on_disk() {
    let ctx = Ctx::runbook().await;
    for invalid in [
        "version = 1\n[church.x\n",
        "version = 1\n[church.x]\nid = \"not-a-uuid\"\n",
    ] {
        ctx.set_lines_toml(invalid);
        let out = ctx.cwa(&["import"]).await;
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains("cwa::import::base_invalid"),
            "{}",
            stderr(&out)
        );
        assert_eq!(ctx.lines_toml(), invalid, "lines.toml rewritten");
        assert!(
            !ctx.path("state").exists(),
            "state/ created for {invalid:?}"
        );
    }
    assert!(ctx.requests().is_empty(), "{:?}", ctx.requests());
}
