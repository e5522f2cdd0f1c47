//! What a reviewer reads is what runs, readable at any size and safe to render (issue 16), and
//! the process edges a pipeline meets (issue 12, class 10): the real binary, against a sandbox
//! on 127.0.0.1 where a provider is involved.

#[path = "common/cwa.rs"]
mod cwa_ctx;
#[path = "common/sandbox.rs"]
mod sandbox_helper;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use cwa_ctx::{assert_exit, repo_lines_toml, stderr, stdout, Ctx, NEW_CHURCHES};

/// The binary with a clean environment, in `dir`.
fn cwa_in(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwa"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1");
    cmd
}

fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("lines.toml"), repo_lines_toml()).expect("lines.toml");
    dir
}

// ---------------------------------------------------------------------------------------------
// Finding 1: usage errors exit 1; 2 means changes and nothing else.

#[test]
fn every_usage_error_exits_1_never_2() {
    let dir = scratch();
    let cases: &[&[&str]] = &[
        &["plan", "--no-such-flag"],
        &["plan", "--refresh=maybe"],
        &["plan", "--json", "--markdown"],
        &["apply", "--parallelism", "many"],
        &["no-such-command"],
        &[],
        &["state"],
        &["show"],
        &["completions", "tcsh"],
        &["check", "--ring"],
    ];
    for args in cases {
        let out = cwa_in(dir.path()).args(*args).output().expect("cwa runs");
        assert_eq!(out.status.code(), Some(1), "cwa {args:?}\n{}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "cwa {args:?} says nothing");
    }
    for args in [
        &["--help"][..],
        &["--version"],
        &["plan", "--help"],
        &["help"],
    ] {
        let out = cwa_in(dir.path()).args(args).output().expect("cwa runs");
        assert_exit(&out, 0);
        assert!(!stdout(&out).is_empty(), "cwa {args:?} prints to stdout");
    }
}

#[test]
fn the_readme_documents_the_exit_codes() {
    let readme = std::fs::read_to_string(cwa_ctx::repo_root().join("README.md")).unwrap();
    for row in [
        "| 0 |",
        "| 1 |",
        "| 2 |",
        "usage error",
        "--detailed-exitcode",
    ] {
        assert!(
            readme.contains(row),
            "README.md has no {row:?} in its exit codes"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 12, class 10: a closed pipe ends quietly with the status the command would have had.

/// Runs `cmd` with its stdout (and with `close_stderr`, its stderr) a pipe whose reader is
/// already gone, as `cwa … | head -1` is once head has exited.
fn with_closed_pipe(mut cmd: Command, close_stderr: bool) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cwa starts");
    drop(child.stdout.take());
    if close_stderr {
        drop(child.stderr.take());
    }
    child.wait_with_output().expect("cwa ends")
}

fn assert_quiet_end(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit status with a closed pipe\n{}",
        stderr(out)
    );
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{what}: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_quietly_with_the_status_of_the_command() {
    let ctx = Ctx::with_world("runbook", &format!("{}{NEW_CHURCHES}", repo_lines_toml())).await;
    let cases: &[(&[&str], i32)] = &[
        (&["plan", "--json"], 0),
        (&["plan", "--json", "--detailed-exitcode"], 2),
        (&["plan", "--markdown", "--detailed-exitcode"], 2),
        (&["plan", "--detailed-exitcode", "--out", "saved.json"], 2),
        (&["drift", "--json"], 2),
        (&["check"], 1),
        (&["validate"], 0),
        (&["graph", "--format", "dot"], 0),
        (&["export", "registry"], 0),
        (&["version"], 0),
        (&["completions", "bash"], 0),
        (&["--help"], 0),
    ];
    for (args, code) in cases {
        for close_stderr in [false, true] {
            let mut cmd = cwa_in(ctx.work.path());
            cmd.args(*args).env("CWA_OPERATOR", "test@cwa");
            for (k, v) in ctx.sb.sandbox.env() {
                cmd.env(k, v);
            }
            let out = tokio::task::spawn_blocking(move || with_closed_pipe(cmd, close_stderr))
                .await
                .unwrap();
            assert_quiet_end(
                &out,
                *code,
                &format!("cwa {args:?} (stderr closed: {close_stderr})"),
            );
        }
    }
    let saved = std::fs::read_to_string(ctx.path("saved.json")).expect("--out still saved");
    assert!(saved.contains("\"format_version\""), "{saved}");
    assert!(ctx.writes().is_empty(), "{:?}", ctx.writes());
}

// ---------------------------------------------------------------------------------------------
// Finding 3: names are data in every output language, never markup or terminal control.

/// A church whose name tries everything: a heading, a fake verdict, an HTML comment that hides
/// the rest of the review, a link, an image, a table cell, a code fence, an emoji, a mention,
/// math, an autolink, and terminal control (conceal, window title, line erase, carriage
/// return, a bidi override).
const HOSTILE_CHURCH: &str = r##"
[church.hostile]
id = "00000000-0000-4000-8000-0000000000b1"
name = "# ✅ No changes\n\n<!-- everything below is hidden [x](https://e.vil) ![i](https://e.vil/i.png) | cell ``` fence :white_check_mark: @owner $x$ www.e.vil \u001b[8m\u001b]0;owned\u0007\u001b[2K\rNo changes\u202e"
number = "auto"
area_code = "734"
"##;

/// What no view may contain whatever the names: terminal control characters.
fn assert_no_control(text: &str, what: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| {
            (c.is_control() && *c != '\n')
                || matches!(*c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what} prints raw control characters {bad:?}"
    );
}

/// Markdown lines the renderer did not write itself: a name that became markup.
fn assert_no_markup_from_names(md: &str) {
    assert!(!md.contains("<!--"), "an HTML comment opened:\n{md}");
    assert!(!md.contains("]("), "a link or image opened:\n{md}");
    assert!(!md.contains("**No changes**"), "a fake verdict:\n{md}");
    assert!(
        !md.lines()
            .any(|l| l.trim_start().starts_with("No changes") || l.starts_with('✅')),
        "a fake verdict line:\n{md}"
    );
    assert!(!md.contains(":white_check_mark:"), "an emoji:\n{md}");
    assert!(!md.contains("www.e.vil"), "an autolink:\n{md}");
    assert!(!md.contains("@owner"), "a mention:\n{md}");
    let headings: Vec<&str> = md
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(headings, ["### cwa plan"], "headings:\n{md}");
    let fences = md.lines().filter(|l| l.contains("```")).count();
    assert_eq!(fences, 2, "only the Mermaid block's own fences:\n{md}");
    let mut in_mermaid = false;
    for line in md.lines() {
        if line.starts_with("```") {
            in_mermaid = !in_mermaid;
            continue;
        }
        if in_mermaid && line.contains('[') {
            let label = line
                .split_once("[\"")
                .and_then(|(_, l)| l.strip_suffix("\"]"));
            assert!(
                label.is_some_and(|l| !l.contains(['"', '[', ']', '<', '>', '`'])),
                "a Mermaid label escaped its node: {line}"
            );
        }
    }
    assert_no_control(md, "plan --markdown");
}

async fn hostile_ctx() -> (Ctx, String) {
    let ctx = Ctx::with_world("runbook", &format!("{}{HOSTILE_CHURCH}", repo_lines_toml())).await;
    let (status, body) = sandbox_helper::send(ctx.sb.twirp_json(
        "CreateSIPInboundTrunk",
        &serde_json::json!({"trunk": {
            "name": "<!-- \u{1b}]0;pwned\u{7} # No changes [x](https://e.vil)",
            "numbers": ["+13125550199"]
        }}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["sip_trunk_id"].as_str().unwrap().to_string();
    (ctx, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_data_in_markdown_terminal_mermaid_and_dot() {
    let (ctx, unmanaged_id) = hostile_ctx().await;

    let md = ctx.cwa(&["plan", "--markdown"]).await;
    assert_exit(&md, 0);
    let md = stdout(&md);
    assert!(
        md.contains("hostile"),
        "the hostile church is planned:\n{md}"
    );
    assert_no_markup_from_names(&md);
    insta::assert_snapshot!(
        "hostile_markdown",
        md.replace(&unmanaged_id, "[unmanaged-id]")
    );

    let human = ctx.cwa(&["plan"]).await;
    assert_exit(&human, 0);
    let human = stdout(&human);
    assert!(
        human.contains("\\u{1b}]0;owned"),
        "the title escape is shown as text:\n{human}"
    );
    assert_no_control(&human, "plan");
    assert_no_control(&stderr(&ctx.cwa(&["plan"]).await), "plan's stderr");

    let dot = ctx.cwa(&["plan", "--dot"]).await;
    assert_no_control(&stdout(&dot), "plan --dot");
    for args in [
        &["graph"][..],
        &["graph", "--format", "dot"],
        &["graph", "--format", "mermaid"],
        &["drift"],
        &["check"],
        &["export", "registry"],
        &["export", "registry", "--format", "python"],
    ] {
        let out = ctx.cwa(args).await;
        assert_no_control(&stdout(&out), &format!("cwa {args:?}"));
    }
    let mermaid = stdout(&ctx.cwa(&["graph", "--format", "mermaid"]).await);
    assert!(!mermaid.contains("<!--"), "{mermaid}");
    let dot = stdout(&ctx.cwa(&["graph", "--format", "dot"]).await);
    for line in dot.lines().filter(|l| l.contains("label=")) {
        let inner = line.split_once("label=\"").unwrap().1;
        let unescaped_quotes = inner
            .char_indices()
            .filter(|(i, c)| *c == '"' && !inner[..*i].ends_with('\\'))
            .count();
        assert!(unescaped_quotes <= 1, "a DOT label ended early: {line}");
    }
}

/// README's command table lists every command and every flag the parser has (flags by their
/// long name), so a new flag cannot ship undocumented; and every flag has help text.
#[test]
fn the_readme_lists_every_command_and_flag_and_each_has_help() {
    use clap::CommandFactory;
    let readme = std::fs::read_to_string(cwa_ctx::repo_root().join("README.md")).unwrap();
    let mut missing = Vec::new();
    let mut undocumented = Vec::new();
    fn walk(
        cmd: &clap::Command,
        path: &str,
        readme: &str,
        missing: &mut Vec<String>,
        undocumented: &mut Vec<String>,
    ) {
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            if !readme.contains(&format!("--{long}")) {
                missing.push(format!("{path} --{long}"));
            }
            if arg.get_help().is_none() {
                undocumented.push(format!("{path} --{long}"));
            }
        }
        for arg in cmd.get_positionals() {
            if arg.get_help().is_none() {
                undocumented.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() {
                undocumented.push(path.clone());
            }
            if !readme.contains(&format!("`{path}")) && !readme.contains(&format!("{path}\\|")) {
                let words: Vec<&str> = path.split(' ').collect();
                let parent = words[..words.len() - 1].join(" ");
                let alt = format!("{parent} ");
                let listed = readme
                    .lines()
                    .any(|l| l.contains(&format!("`{alt}")) && l.contains(sub.get_name()));
                if !listed {
                    missing.push(path.clone());
                }
            }
            walk(sub, &path, readme, missing, undocumented);
        }
    }
    walk(
        &cwa::cli::Cli::command(),
        "cwa",
        &readme,
        &mut missing,
        &mut undocumented,
    );
    assert!(missing.is_empty(), "README.md does not list: {missing:?}");
    assert!(undocumented.is_empty(), "no help text: {undocumented:?}");
}
