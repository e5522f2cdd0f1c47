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
