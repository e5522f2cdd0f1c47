//! Red-team cases for issue 12 ("Trust") and issue 16 (escaping) that broke a landed promise,
//! over the real binary and the sandbox. Each test is one class of hostile input: the cases
//! tried and what held are in RELIABILITY.md ("Hostile input and lock bypass").

use crate::common::{assert_exit, stderr, Ctx, NEW_CHURCHES};

/// Terminal control and layout characters a diagnostic must never print raw: ESC, BEL, CR
/// (alone), and the bidi overrides that reorder what a reader sees.
fn hidden_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

/// A lines.toml whose bytes carry terminal control sequences (a window title, a line erase)
/// in a comment, or a bidi override in a comment of an otherwise invalid file: the diagnostic
/// quotes the offending line of lines.toml, and that quote must show the characters, never
/// send them to the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_quote_lines_toml_without_its_control_characters() {
    let cases = [
        // A TOML syntax error whose quoted line holds an OSC title and an erase-line.
        "version = 1\n# \u{1b}]0;PWNED\u{7} \u{1b}[2K hidden\n",
        // Valid TOML (a bidi override is allowed in a comment) with an error next to it.
        "version = 1\n[church.x] # \u{202E}evil\u{202C}\nid = \"00000000-0000-4000-8000-0000000000a1\"\nname = \"X\"\nnumber = \"auto\"\narea_code = \"911\"\n",
    ];
    for text in cases {
        let ctx = Ctx::with_world("runbook", text).await;
        let out = ctx.cwa(&["validate"]).await;
        assert_exit(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("lines.toml"), "a diagnostic: {err}");
        let raw = hidden_controls(&err);
        assert!(raw.is_empty(), "raw control characters {raw:?} in:\n{err}");
    }
}

/// A symlink planted in state/ (committed by a pull request, or left by a careless operator)
/// where cwa keeps its backup or appends its audit log must never make cwa write to the file it
/// points at, outside state/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_in_state_never_redirects_a_write_outside_state() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    let outside = ctx.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let precious = "precious, not a state file\n";
    for name in ["state.json.backup", "audit.jsonl", "journal.jsonl"] {
        let victim = outside.join(name);
        std::fs::write(&victim, precious).unwrap();
        let link = ctx.path("state").join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
    }
    ctx.set_lines_toml(&format!("{}{NEW_CHURCHES}", ctx.lines_toml()));
    let _ = ctx.cwa(&["apply", "--auto-approve"]).await;
    for name in ["state.json.backup", "audit.jsonl", "journal.jsonl"] {
        let now = std::fs::read_to_string(outside.join(name)).unwrap();
        assert_eq!(
            now, precious,
            "{name}: the file a symlink in state/ points at was written"
        );
    }
}

/// A church name carrying terminal control (a window title, a line erase, a bidi override)
/// is data in every command that prints what cwa owns, not only in plan: `state list` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_list_prints_hostile_names_as_data() {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!(
        "{}{}",
        ctx.lines_toml(),
        r#"
[church.evil]
id = "00000000-0000-4000-8000-0000000000e1"
name = "Evil \u001b]0;PWNED\u0007 \u001b[2K \u202e <!-- # No changes"
number = "auto"
area_code = "734"
"#
    ));
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    for args in [&["state", "list"][..], &["check"], &["drift"], &["plan"]] {
        let out = ctx.cwa(args).await;
        let text = format!("{}{}", crate::common::stdout(&out), stderr(&out));
        if args[0] == "state" {
            assert!(text.contains("Evil"), "{args:?} names the church: {text}");
        }
        let raw = hidden_controls(&text);
        assert!(
            raw.is_empty(),
            "{args:?}: raw control characters {raw:?} in:\n{text}"
        );
    }
}
