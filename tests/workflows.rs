//! The CI workflows are valid YAML, and every `cwa …` they run is a subcommand with flags
//! that cwa's own command-line parser accepts.

use std::path::{Path, PathBuf};

use clap::Parser;
use cwa::cli::Cli;
use serde_norway::Value;

fn workflows() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the workflows directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

fn parse(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("a readable workflow");
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `run:` script of every step.
fn scripts(workflow: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(jobs) = workflow.get("jobs").and_then(Value::as_mapping) else {
        return out;
    };
    for job in jobs.values() {
        for step in job
            .get("steps")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            if let Some(run) = step.get("run").and_then(Value::as_str) {
                out.push(run.to_string());
            }
        }
    }
    out
}

/// Words that end a command in a shell line.
const BOUNDARIES: [&str; 10] = [
    ";", "&&", "||", "|", ">", ">>", "2>", "2>&1", "then", "else",
];

/// The argument lists of every `cwa` command in a script (shell words after `cwa` up to the
/// end of the command).
fn cwa_invocations(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = line.split(" #").next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            let starts_command = i == 0
                || BOUNDARIES.contains(&words[i - 1])
                || ["if", "!", "then", "do"].contains(&words[i - 1]);
            if *w != "cwa" || !starts_command {
                continue;
            }
            let args: Vec<String> = words[i + 1..]
                .iter()
                .take_while(|a| !BOUNDARIES.contains(a) && !a.starts_with('>'))
                .map(|a| a.trim_matches('"').trim_matches('\'').to_string())
                .collect();
            out.push(args);
        }
    }
    out
}

#[test]
fn every_workflow_is_valid_yaml_with_triggers_and_jobs() {
    let files = workflows();
    assert!(files.len() >= 3, "{files:?}");
    for path in &files {
        let w = parse(path);
        assert!(w.get("on").is_some(), "{}: no `on`", path.display());
        let jobs = w.get("jobs").and_then(Value::as_mapping);
        assert!(
            jobs.is_some_and(|j| !j.is_empty()),
            "{}: no jobs",
            path.display()
        );
    }
}

#[test]
fn every_cwa_invocation_parses_with_cwas_own_cli() {
    let mut seen = 0;
    for path in workflows() {
        for script in scripts(&parse(&path)) {
            for args in cwa_invocations(&script) {
                seen += 1;
                let argv = std::iter::once("cwa".to_string()).chain(args.iter().cloned());
                if let Err(e) = Cli::try_parse_from(argv) {
                    panic!(
                        "{}: `cwa {}` is refused:\n{e}",
                        path.display(),
                        args.join(" ")
                    );
                }
            }
        }
    }
    assert!(seen >= 8, "only {seen} cwa invocations found");
}

#[test]
fn the_three_jobs_run_what_docs_ci_md_promises() {
    let commands: Vec<(String, String)> = workflows()
        .iter()
        .flat_map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            scripts(&parse(p))
                .into_iter()
                .flat_map(|s| cwa_invocations(&s))
                .map(move |args| (name.clone(), args.join(" ")))
        })
        .collect();
    let has = |file: &str, cmd: &str| {
        commands
            .iter()
            .any(|(f, c)| f == file && c.starts_with(cmd))
    };
    assert!(
        has("plan.yml", "plan --markdown --detailed-exitcode"),
        "{commands:?}"
    );
    assert!(
        has("plan.yml", "plan --markdown --refresh=false"),
        "{commands:?}"
    );
    assert!(has("apply.yml", "plan --out plan.json"), "{commands:?}");
    assert!(has("apply.yml", "apply plan.json"), "{commands:?}");
    assert!(has("drift.yml", "drift --markdown"), "{commands:?}");
}

#[test]
fn the_extractor_finds_commands_and_stops_at_redirections() {
    let found = cwa_invocations(
        "set +e\nif true; then cwa plan --markdown > plan.md\nfi\necho cwa is fine | cat\n",
    );
    assert_eq!(
        found,
        vec![vec!["plan".to_string(), "--markdown".to_string()]]
    );
    let argv = ["cwa", "plan", "--no-such-flag"];
    assert!(
        Cli::try_parse_from(argv).is_err(),
        "the parser refuses unknown flags"
    );
}
