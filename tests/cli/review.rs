//! What a reviewer reads is what runs, readable at any size and safe to render (issue 16), and
//! the process edges a pipeline meets (issue 12, class 10): the real binary, against a sandbox
//! on 127.0.0.1 where a provider is involved.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{assert_exit, repo_lines_toml, stderr, stdout, Ctx, NEW_CHURCHES};

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
    let readme = std::fs::read_to_string(crate::common::repo_root().join("README.md")).unwrap();
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
    let (status, body) = crate::common::sandbox::send(ctx.sb.twirp_json(
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
    cwa_snapshot!("hostile_markdown", md, &unmanaged_id => "[unmanaged-id]");

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
    let readme = std::fs::read_to_string(crate::common::repo_root().join("README.md")).unwrap();
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

// ---------------------------------------------------------------------------------------------
// Finding 2: `cwa show PLANFILE` renders exactly the file apply is given.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_renders_the_saved_plan_file_itself() {
    let ctx = Ctx::with_world("runbook", &format!("{}{NEW_CHURCHES}", repo_lines_toml())).await;
    let saved = ctx.cwa(&["plan", "--out", "plan.json"]).await;
    assert_exit(&saved, 0);
    assert!(
        stderr(&saved).contains("cwa show plan.json"),
        "the hint names show: {}",
        stderr(&saved)
    );
    let human = ctx.cwa(&["show", "plan.json"]).await;
    assert_exit(&human, 0);
    cwa_snapshot!("show_human", stdout(&human));
    let md = ctx.cwa(&["show", "plan.json", "--markdown"]).await;
    assert_exit(&md, 0);
    cwa_snapshot!("show_markdown", stdout(&md));
    let json = ctx.cwa(&["show", "plan.json", "--json"]).await;
    assert_exit(&json, 0);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctx.path("plan.json")).unwrap()).unwrap();
    let shown: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(file, shown, "show --json is the file");

    // The file alone decides: edit it, and show shows the edit (no lines.toml, no state).
    let edited = std::fs::read_to_string(ctx.path("plan.json"))
        .unwrap()
        .replace("\"hope\"", "\"edited-in-the-file\"");
    std::fs::write(ctx.path("plan.json"), edited).unwrap();
    std::fs::remove_file(ctx.path("lines.toml")).unwrap();
    let after = ctx.cwa(&["show", "plan.json", "--markdown"]).await;
    assert_exit(&after, 0);
    assert!(
        stdout(&after).contains("edited-in-the-file"),
        "{}",
        stdout(&after)
    );

    let bad = ctx.cwa(&["show", "lines.toml"]).await;
    assert_exit(&bad, 1);
    assert!(ctx.writes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_saved_plan_hint_keeps_the_sandbox_and_says_sandbox() {
    let dir = scratch();
    let sandbox_dir = dir.path().join("sb");
    let run = |args: &[&str]| {
        cwa_in(dir.path())
            .args(args)
            .env("CWA_SANDBOX_DIR", &sandbox_dir)
            .output()
            .expect("cwa runs")
    };
    let out = run(&["--sandbox", "plan", "--out", "p.json"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("cwa --sandbox apply p.json"),
        "{}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(!text.contains("against live services"), "{text}");
    assert!(text.contains("sandbox"), "{text}");
    let md = stdout(&run(&["--sandbox", "plan", "--markdown"]));
    assert!(
        !md.contains("against live services") && md.contains("sandbox"),
        "{md}"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding 3: the Markdown of a 1,000-change plan fits a GitHub comment and stays readable.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_change_plan_fits_one_comment_counts_first() {
    let ctx = Ctx::with_world("synthetic:0", &cwa::synthetic::lines_toml_with_new(0, 340)).await;
    let out = ctx
        .cwa(&["plan", "--markdown", "--detailed-exitcode"])
        .await;
    assert_exit(&out, 2);
    let md = stdout(&out);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&ctx.cwa(&["plan", "--json"]).await)).unwrap();
    let changes = json["changes"].as_array().unwrap().len();
    assert!(changes >= 1_000, "{changes} changes");
    assert!(
        md.chars().count() < cwa::render::GITHUB_COMMENT_LIMIT,
        "{} characters",
        md.chars().count()
    );
    let table = md.find("| action | count |").expect("counts");
    let first_details = md.find("<details>").expect("details");
    assert!(table < first_details, "counts come first");
    assert!(md.contains("| `+` create | 1020 |"), "{md}");
    let mermaid_nodes = md
        .lines()
        .skip_while(|l| !l.starts_with("```mermaid"))
        .take_while(|l| *l != "```")
        .filter(|l| l.contains("[\""))
        .count();
    assert!(
        (1..=40).contains(&mermaid_nodes),
        "{mermaid_nodes} Mermaid nodes"
    );
    assert!(
        md.contains("cwa show plan.json"),
        "a pointer to the full plan"
    );
    assert!(md.contains("more change(s)"), "what was cut is counted");
    let folded = md.matches("<details><summary>Church ").count();
    assert!(folded > 10, "{folded} churches folded");
    cwa_snapshot!("thousand_changes_markdown", md);
}

// ---------------------------------------------------------------------------------------------
// Finding 4: check output.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_pass_lines_read_as_passes_ring_trace_first_and_failures_only() {
    let ctx = Ctx::runbook().await;
    let out = ctx.cwa(&["check", "--ring", "+14144007103"]).await;
    let text = stdout(&out);
    for line in text.lines().filter(|l| l.starts_with("PASS")) {
        for failure_words in [
            "rejected",
            "never",
            "no dispatch",
            "silently",
            "want exactly",
        ] {
            assert!(
                !line.contains(failure_words),
                "a passing line reads like a failure: {line}"
            );
        }
    }
    assert!(text.lines().any(|l| l.starts_with("PASS")), "{text}");
    let trace = text.find("Test call").expect("the trace");
    let first_check = text
        .find("PASS ")
        .into_iter()
        .chain(text.find("FAIL "))
        .min()
        .expect("certification lines");
    assert!(trace < first_check, "the trace comes first:\n{text}");

    let failures = ctx.cwa(&["check", "--failures-only"]).await;
    assert_exit(&failures, 1);
    let f = stdout(&failures);
    assert!(!f.lines().any(|l| l.starts_with("PASS")), "{f}");
    assert!(f.lines().any(|l| l.starts_with("FAIL")), "{f}");
    assert!(f.contains("passed"), "the counts are still there: {f}");
}

// ---------------------------------------------------------------------------------------------
// Finding 5 and what a Terraform user expects: fmt, -C, completions, version, apply --json,
// -vv, the sandbox's place and words.

const MESSY_TOML: &str = "# The parish's lines\n\n\n  version=1\n[policy]   # who may write\ntwilio  =  \"read-only\"\n\n\n\nmax_delete_share=0.25\n[defaults]\nagent=\"churchwiseai-voice\"\nfriendly_endings=[\"0000\",\"5000\"]\n[church.grace]\n# bought by area code\nid = \"00000000-0000-4000-8000-0000000000a1\"\nname = \"Grace Chapel\"   # the name people say\nnumber = \"auto\"\narea_code = \"734\"\n";

#[test]
fn fmt_makes_lines_toml_canonical_keeps_comments_and_check_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines.toml");
    std::fs::write(&file, MESSY_TOML).unwrap();
    let check = cwa_in(dir.path())
        .args(["fmt", "--check"])
        .output()
        .unwrap();
    assert_exit(&check, 1);
    assert!(
        stdout(&check).contains("+twilio = \"read-only\""),
        "{}",
        stdout(&check)
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        MESSY_TOML,
        "--check wrote"
    );

    let fmt = cwa_in(dir.path()).arg("fmt").output().unwrap();
    assert_exit(&fmt, 0);
    let formatted = std::fs::read_to_string(&file).unwrap();
    cwa_snapshot!("fmt_canonical", formatted);
    for comment in [
        "# The parish's lines",
        "# who may write",
        "# bought by area code",
        "# the name people say",
    ] {
        assert!(formatted.contains(comment), "lost {comment:?}");
    }
    let before: toml::Value = toml::from_str(MESSY_TOML).unwrap();
    let after: toml::Value = toml::from_str(&formatted).unwrap();
    assert_eq!(before, after, "fmt changed what the file declares");
    let again = cwa_in(dir.path())
        .args(["fmt", "--check"])
        .output()
        .unwrap();
    assert_exit(&again, 0);

    std::fs::write(&file, "[church\n").unwrap();
    let broken = cwa_in(dir.path()).arg("fmt").output().unwrap();
    assert_exit(&broken, 1);
    assert!(
        stderr(&broken).contains("lines.toml"),
        "{}",
        stderr(&broken)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "[church\n");
}

#[test]
fn chdir_runs_as_if_started_there() {
    let dir = scratch();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = cwa_in(elsewhere.path())
        .args(["-C", dir.path().to_str().unwrap(), "validate"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let late = cwa_in(elsewhere.path())
        .args(["validate", "--chdir", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&late, 0);
    let missing = cwa_in(elsewhere.path())
        .args(["-C", "/no/such/dir", "validate"])
        .output()
        .unwrap();
    assert_exit(&missing, 1);
    assert!(
        stderr(&missing).contains("/no/such/dir"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn completions_and_version() {
    let dir = scratch();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = cwa_in(dir.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let script = stdout(&out);
        for word in ["plan", "show", "fmt", "detailed-exitcode", "chdir"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let v = cwa_in(dir.path()).arg("version").output().unwrap();
    assert_exit(&v, 0);
    let text = stdout(&v);
    assert!(
        text.starts_with(&format!("cwa {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("plan format {}", cwa::plan::FORMAT_VERSION)),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_json_says_what_was_done_and_which_numbers_were_bought() {
    let ctx = Ctx::with_world("runbook", &format!("{}{NEW_CHURCHES}", repo_lines_toml())).await;
    let out = ctx.cwa(&["apply", "--auto-approve", "--json"]).await;
    assert_exit(&out, 0);
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("stdout is the JSON report alone");
    assert_eq!(report["format_version"], cwa::render::APPLY_FORMAT_VERSION);
    assert_eq!(report["succeeded"], true);
    let bought = report["numbers_bought"].as_array().unwrap();
    assert_eq!(bought.len(), 2, "{report:#}");
    let state = ctx.state();
    for b in bought {
        let addr: cwa::model::Address = b["address"].as_str().unwrap().parse().unwrap();
        let owned = state.get(&addr).expect("the bought number is in state");
        assert_eq!(b["id"].as_str(), Some(owned.id.as_str()));
        assert!(b["number"].as_str().unwrap().starts_with("+1"), "{b}");
    }
    let done = report["done"].as_array().unwrap();
    assert!(done
        .iter()
        .any(|d| d["action"] == "create" && d["address"] == "livekit_dispatch_rule.grace"));
    assert!(
        stderr(&out).contains("Apply complete"),
        "the human report went to stderr"
    );

    let again = ctx.cwa(&["apply", "--auto-approve", "--json"]).await;
    assert_exit(&again, 0);
    let nothing: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(nothing["done"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vv_logs_one_line_per_provider_request_and_no_secret() {
    let ctx = Ctx::runbook().await;
    let quiet = ctx.cwa(&["plan"]).await;
    let vv = ctx.cwa(&["-vv", "plan"]).await;
    let log = stderr(&vv);
    let requests: Vec<&str> = log.lines().filter(|l| l.contains("cwa::http")).collect();
    let sent = ctx.requests().len() / 2;
    assert!(!requests.is_empty() && requests.len() >= sent / 2, "{log}");
    for line in &requests {
        assert!(line.contains(" -> ") && line.contains(" ms"), "{line}");
        assert!(
            ["GET ", "POST ", "PATCH ", "DELETE "]
                .iter()
                .any(|m| line.contains(m)),
            "{line}"
        );
    }
    assert!(!stderr(&quiet).contains("cwa::http"));
    let vvv = stderr(&ctx.cwa(&["-vvv", "plan"]).await);
    assert!(
        vvv.lines().count() > log.lines().count(),
        "-vvv adds to -vv"
    );
    let by_env = stderr(
        &ctx.cwa_env(&["plan"], &[("CWA_LOG", "cwa::http=debug")])
            .await,
    );
    assert!(by_env.contains("cwa::http"), "{by_env}");
    for (name, value) in ctx.sb.sandbox.env() {
        if name.contains("KEY") || name.contains("SECRET") || name.contains("TOKEN") {
            for log in [&log, &vvv, &by_env] {
                assert!(!log.contains(&value), "{name} in the log");
            }
        }
    }
}

#[test]
fn the_embedded_sandbox_lives_beside_lines_toml_and_lint_warnings_print_once() {
    let project = scratch();
    let elsewhere = tempfile::tempdir().unwrap();
    let config = project.path().join("lines.toml");
    let out = cwa_in(elsewhere.path())
        .args(["--sandbox", "--config", config.to_str().unwrap(), "plan"])
        .args(["--state", project.path().join("state").to_str().unwrap()])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert!(
        project.path().join(".cwa/sandbox").is_dir(),
        "not beside lines.toml"
    );
    assert!(
        !elsewhere.path().join(".cwa").exists(),
        "in the current directory"
    );
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    let mut unique = warnings.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        warnings.len(),
        unique.len(),
        "a warning printed twice: {warnings:?}"
    );
}

#[test]
fn sandbox_serve_says_it_keeps_an_existing_world() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    for (attempt, expect) in [
        (0, "seeded a fresh `empty` world"),
        (1, "already holds a world"),
    ] {
        let mut child = cwa_in(dir.path())
            .args([
                "sandbox",
                "serve",
                "--world",
                "empty",
                "--dir",
                world.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let mut seen = String::new();
        let started = std::time::Instant::now();
        while !seen.contains("serving") && started.elapsed() < std::time::Duration::from_secs(20) {
            let mut buf = [0u8; 512];
            let n = std::io::Read::read(&mut err, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let _ = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let _ = child.wait();
        assert!(seen.contains(expect), "run {attempt}: {seen}");
    }
}

/// A lint warning is printed once per command, even when a command reads lines.toml twice
/// (an apply reconciling a killed run's journal reads it, then plans).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_warnings_print_once_even_when_apply_reconciles_first() {
    let lines = format!("{}{NEW_CHURCHES}", repo_lines_toml()).replace(
        "agents = [{ name = \"churchwiseai-voice\" }]",
        "agents = [{ name = \"someone-else\" }]",
    );
    let ctx = Ctx::with_world("runbook", &lines).await;
    let crashed = ctx
        .cwa_env(
            &["apply", "--auto-approve"],
            &[("CWA_TEST_CRASH_AT", "after:1")],
        )
        .await;
    assert_ne!(crashed.status.code(), Some(0), "{}", stderr(&crashed));
    let rerun = ctx.cwa(&["apply", "--auto-approve"]).await;
    assert_exit(&rerun, 0);
    let all = format!("{}{}", stdout(&rerun), stderr(&rerun));
    assert!(
        all.contains("reconcil"),
        "the rerun reconciled first:\n{all}"
    );
    assert_eq!(
        stderr(&rerun).matches("not the default agent").count(),
        1,
        "{}",
        stderr(&rerun)
    );
}

/// A diff names the keys of lines.toml (`krisp`), not the provider's fields (`krisp_enabled`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffs_name_lines_toml_keys() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["apply", "--auto-approve"]).await, 0);
    ctx.edit_lines_toml("krisp = false", "krisp = true");
    let human = stdout(&ctx.cwa(&["plan"]).await);
    assert!(human.contains("krisp: false -> true"), "{human}");
    assert!(!human.contains("krisp_enabled"), "{human}");
    let md = stdout(&ctx.cwa(&["plan", "--markdown"]).await);
    assert!(
        md.contains("<code>krisp</code>") && !md.contains("krisp_enabled"),
        "{md}"
    );
}

/// A first import (an empty lines.toml) records what it declares; it never says "Recorded 0".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_import_counts_what_it_recorded() {
    let ctx = Ctx::with_world("synthetic:6", "version = 1\n").await;
    let out = ctx.cwa(&["import"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(!text.contains("Recorded 0"), "{text}");
    let owned = ctx.state().owned().count();
    assert!(owned > 0);
    assert!(
        text.contains(&format!("Recorded {owned} newly declared object(s)")),
        "{owned} owned:\n{text}"
    );
}
