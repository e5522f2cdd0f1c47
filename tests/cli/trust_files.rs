//! Issue 12's files: nothing is created on disk before lines.toml parses, whatever the
//! command, with or without `--sandbox` (whose embedded sandbox keeps its world in
//! `.cwa/sandbox/` beside lines.toml); and the repository's own lines.toml is as `cwa fmt`
//! writes it.

use std::path::Path;
use std::process::Command;

use crate::common::{assert_exit, repo_root, stderr, stdout};

/// Every file and directory under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                todo.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Runs cwa in `dir` with no provider credentials and no sandbox directory override.
fn cwa(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cwa"))
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("CWA_OPERATOR", "test@cwa")
        .output()
        .expect("cwa runs")
}

/// Every command that reads lines.toml, as it would be run.
const COMMANDS: &[&[&str]] = &[
    &["validate"],
    &["graph"],
    &["fmt", "--check"],
    &["plan"],
    &["plan", "--refresh=false"],
    &["plan", "--out", "p.json"],
    &["plan", "--json"],
    &["apply", "--auto-approve"],
    &["apply", "p.json"],
    &["show", "p.json"],
    &["drift"],
    &["check"],
    &["import"],
    &["export", "registry"],
    &["export", "auto-add"],
    &[
        "add",
        "church",
        "grace",
        "--id",
        "00000000-0000-4000-8000-0000000000a1",
        "--name",
        "Grace",
        "--area-code",
        "734",
    ],
    &["remove", "church", "melvindale"],
];

#[test]
fn no_command_creates_anything_on_disk_before_lines_toml_parses_with_or_without_the_sandbox() {
    let invalid = [
        Some("version = 1\n[church.x\n"),
        Some("version = 1\n[church.x]\nid = \"not-a-uuid\"\n"),
        None,
    ];
    let mut created = Vec::new();
    for declaration in invalid {
        for args in COMMANDS {
            // An import writes a new lines.toml where there is none: that is its job.
            if declaration.is_none() && args[0] == "import" {
                continue;
            }
            for sandbox in [true, false] {
                let dir = tempfile::tempdir().unwrap();
                if let Some(text) = declaration {
                    std::fs::write(dir.path().join("lines.toml"), text).unwrap();
                }
                std::fs::write(dir.path().join("p.json"), "{}").unwrap();
                let before = tree(dir.path());
                let mut full: Vec<&str> = if sandbox { vec!["--sandbox"] } else { vec![] };
                full.extend_from_slice(args);
                let out = cwa(dir.path(), &full);
                assert_ne!(out.status.code(), Some(0), "{full:?} succeeded");
                assert!(
                    !stderr(&out).contains("panicked"),
                    "{full:?}: {}",
                    stderr(&out)
                );
                let after = tree(dir.path());
                if after != before {
                    created.push(format!("{full:?} on {declaration:?}: {after:?}"));
                }
            }
        }
    }
    assert!(
        created.is_empty(),
        "created on disk:\n{}",
        created.join("\n")
    );
}

/// The customer's lines.toml in this repository is what `cwa fmt` writes, so `cwa fmt --check`
/// in CI (and the examples the docs take from it) agree with the formatter.
#[test]
fn the_repositorys_lines_toml_is_formatted() {
    let out = cwa(repo_root(), &["fmt", "--check"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("is formatted"), "{}", stdout(&out));
}
