//! Red team (this session): hostile lines.toml over the real binary and the sandbox. Each test
//! is one class; the cases tried and what held are in RELIABILITY.md ("Red team, session 5").

use crate::common::{assert_exit, stderr, stdout, Ctx};

/// Controls a terminal must never receive from data: every hidden control of
/// `render::escape` except the newline and tab that lay a diagnostic out.
pub fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c != '\n' && c != '\t' && cwa::render::escape::is_hidden_control(c))
        .collect()
}

/// A church block with the given key, id suffix and extra lines.
fn church(key: &str, n: u32, body: &str) -> String {
    format!("\n[church.{key}]\nid = \"00000000-0000-4000-8000-0000000000{n:02x}\"\nname = \"Church {key}\"\n{body}\n")
}

/// Asserts exit 1 for `validate` and `apply`, with `code` on stderr, no state/ on disk and no
/// write in the sandbox.
async fn assert_refused_everywhere(ctx: &Ctx, code: &str, case: &str) -> String {
    let mut seen = String::new();
    for args in [&["validate"][..], &["apply", "--auto-approve"][..]] {
        let out = ctx.cwa(args).await;
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{case}: cwa {args:?}\n{}\n{err}",
            stdout(&out)
        );
        assert!(err.contains(code), "{case}: expected {code}:\n{err}");
        seen.push_str(&err);
    }
    assert!(!ctx.path("state").exists(), "{case}: state/ created");
    assert!(ctx.writes().is_empty(), "{case}: {:?}", ctx.writes());
    seen
}

/// Two church lines whose resource names are the same once the convention joins key and line
/// (`<key>_<line>`): `[church.grace_main]` and `[church.grace.lines.main]`, or
/// `[church.a.lines.b_c]` and `[church.a_b.lines.c]`. One of them silently replaced the other:
/// a church vanished from the plan, or (when the survivor's line was already applied) the
/// other church's dispatch metadata was written onto its number, sending its callers to
/// another church's agent. It is a diagnostic naming the address, at both places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn church_lines_whose_names_collide_are_refused_at_both_places() {
    let auto = |area: &str| format!("number = \"auto\"\narea_code = \"{area}\"");
    let cases = [
        (
            "grace_main",
            format!(
                "{}{}",
                church("grace_main", 0xc1, &auto("734")),
                church(
                    "grace",
                    0xc2,
                    &format!("[church.grace.lines.main]\n{}", auto("414"))
                )
            ),
        ),
        (
            "a_b_c",
            format!(
                "{}{}",
                church("a", 0xc3, &format!("[church.a.lines.b_c]\n{}", auto("734"))),
                church(
                    "a_b",
                    0xc4,
                    &format!("[church.a_b.lines.c]\n{}", auto("414"))
                )
            ),
        ),
    ];
    for (name, extra) in cases {
        let ctx = Ctx::runbook().await;
        ctx.set_lines_toml(&format!("{}{extra}", ctx.lines_toml()));
        let err = assert_refused_everywhere(&ctx, "cwa::config::duplicate_church", name).await;
        assert!(
            err.contains(&format!("telnyx_number.{name}")),
            "{name}: the diagnostic names the address:\n{err}"
        );
    }
}

/// Values that diagnostics quote in their message (a number, an id, an area code, a variable
/// name, an unknown key, a reference, a protected id) carrying terminal control: a window
/// title (OSC), BEL, a line erase, a bidi override. The quoted source line was already masked;
/// the message, label and help must not send them to the terminal either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_show_control_characters_of_values_as_data() {
    const EVIL: &str = r"\u001b]0;PWNED\u0007\u001b[2K\u202e";
    let cases = [
        church("x", 0xd1, &format!("number = \"+1414{EVIL}4007199\"")),
        format!("\n[church.x]\nid = \"not-a-uuid{EVIL}\"\nname = \"X\"\nnumber = \"auto\"\narea_code = \"734\"\n"),
        church("x", 0xd2, &format!("number = \"auto\"\narea_code = \"7{EVIL}\"")),
        church("x", 0xd3, &format!("number = \"auto\"\narea_code = \"734\"\n\"k{EVIL}\" = 1")),
        format!("\n[telnyx.number.x]\nnumber = \"+14144007199\"\nconnection = \"telnyx_fqdn_connection.{EVIL}\"\n"),
        format!("\n[telnyx.credential_connection.x]\nname = \"X\"\nuser_name = \"abcdabcd\"\npassword_env = \"P{EVIL}\"\n"),
    ];
    for (i, extra) in cases.iter().enumerate() {
        let ctx = Ctx::runbook().await;
        ctx.set_lines_toml(&format!("{}{extra}", ctx.lines_toml()));
        let out = ctx.cwa(&["validate"]).await;
        assert_exit(&out, 1);
        let err = stderr(&out);
        let raw = raw_controls(&err);
        assert!(raw.is_empty(), "case {i}: raw {raw:?} in:\n{err}");
    }
    // A protected id is checked against live at plan time, by another path.
    let ctx = Ctx::runbook().await;
    ctx.edit_lines_toml(
        "\"SDR_cYzx7sAkUTvx\" = ",
        &format!("\"SDR_cYzx7sAkUTvx{EVIL}\" = "),
    );
    let out = ctx.cwa(&["plan"]).await;
    assert_exit(&out, 1);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let raw = raw_controls(&text);
    assert!(raw.is_empty(), "protected id: raw {raw:?} in:\n{text}");
}

/// A phone number written in any form but E.164 with its `+` (spaces, dashes, parentheses, a
/// leading 00, fullwidth or Arabic-Indic digits, a zero-width space, surrounding blanks): a
/// validate diagnostic at its line, refused by apply before anything is on disk or written.
/// Held: kept as a guard over the class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_in_other_forms_are_refused_before_anything_is_written() {
    let forms = [
        "+1 (414) 400-7199",
        "+1 414 400 7199",
        "+1-414-400-7199",
        "0014144007199",
        "14144007199",
        "+\u{FF11}\u{FF14}\u{FF11}\u{FF14}\u{FF14}\u{FF10}\u{FF10}\u{FF17}\u{FF11}\u{FF19}\u{FF19}",
        "+1414400719\u{0669}",
        "+14144007199\u{200B}",
        " +14144007199",
        "+14144007199 ",
        "+1414400719",
        "+141440071999",
    ];
    let ctx = Ctx::runbook().await;
    let base = ctx.lines_toml();
    for form in forms {
        let extra = church("x", 0xe1, &format!("number = \"{form}\""));
        let text = format!("{base}{extra}");
        ctx.set_lines_toml(&text);
        let line = 1 + text
            .lines()
            .position(|l| l.starts_with("number = \"") && l.contains(form))
            .unwrap();
        let err = assert_refused_everywhere(&ctx, "cwa::config::e164", form).await;
        assert!(
            err.contains(&format!(":{line}:")),
            "{form}: not at line {line}:\n{err}"
        );
    }
}

/// Every file under `dir`, as (path, bytes).
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

/// A SIP password with a newline (a secret store that kept `echo`'s), with CR LF, or equal to
/// the other SIP password: applied with `-vv`, the value is in no output, no file of the
/// working directory (state, audit, journal) and no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_secret_values_never_leave_the_environment() {
    let values = [
        "rotated-secret-1\nX-Injected: yes",
        "rotated-secret-2\r\n",
        cwa::sandbox::TELNYX_OUTBOUND_SIP_PASSWORD,
    ];
    for value in values {
        let ctx = Ctx::runbook().await;
        assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
        let out = ctx
            .cwa_env(
                &["-vv", "apply", "--auto-approve"],
                &[("TELNYX_FQDN_PASSWORD", value)],
            )
            .await;
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_exit(&out, 0);
        let needle = value.trim_end();
        assert!(!text.contains(needle), "{value:?} printed:\n{text}");
        for (path, bytes) in files_under(ctx.work.path()) {
            let shown = String::from_utf8_lossy(&bytes);
            assert!(!shown.contains(needle), "{value:?} in {}", path.display());
        }
        assert_exit(
            &ctx.cwa_env(
                &["plan", "--detailed-exitcode"],
                &[("TELNYX_FQDN_PASSWORD", value)],
            )
            .await,
            0,
        );
    }
}

/// A SIP password whose value is the fingerprint key (`CWA_FINGERPRINT_KEY`) or the state
/// database's password (`PGPASSWORD`): refused at apply like a provider credential, before
/// any write. With the fingerprint key as the password, the password is the MAC's own key, so
/// its fingerprint in the committed state can be checked offline against guesses. Broke at
/// the start of this session; fixed by helper trust (`config::secrets::secrets_cwa_holds`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_equal_to_the_fingerprint_key_or_the_state_password_is_refused() {
    for credential in ["CWA_FINGERPRINT_KEY", "PGPASSWORD"] {
        let ctx = Ctx::runbook().await;
        let value = "the-same-value-0123456789";
        let out = ctx
            .cwa_env(
                &["apply", "--auto-approve"],
                &[("TELNYX_FQDN_PASSWORD", value), (credential, value)],
            )
            .await;
        assert_exit(&out, 1);
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(text.contains("is the value of"), "{credential}: {text}");
        assert!(!text.contains(value), "{credential}: the value is shown");
        let writes: Vec<_> = ctx
            .writes()
            .into_iter()
            .filter(|w| !w.path.starts_with("/twirp/livekit.SIP/List"))
            .collect();
        assert!(writes.is_empty(), "{credential}: {writes:?}");
    }
}
