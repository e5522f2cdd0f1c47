//! Every `--json` output of cwa is a versioned document (issue 14 finding 8): it names its
//! `format_version` at the top, and `cwa version` names the same version, so a machine
//! reading it can tell which shape it holds. The test walks cwa's own command-line parser,
//! so a new `--json` flag without a versioned document (and a case here) fails it.

use clap::CommandFactory;
use serde_json::Value;

use crate::common::{assert_exit, stdout, Ctx};

/// Each command line with `--json`, and the version its document must carry.
fn cases() -> Vec<(&'static str, Vec<&'static str>, &'static str)> {
    vec![
        ("plan", vec!["plan", "--json"], cwa::plan::FORMAT_VERSION),
        (
            "show",
            vec!["show", "--json", "p.json"],
            cwa::plan::FORMAT_VERSION,
        ),
        ("drift", vec!["drift", "--json"], cwa::drift::FORMAT_VERSION),
        (
            "check",
            vec!["check", "--json"],
            cwa::render::check::CHECK_FORMAT_VERSION,
        ),
        (
            "apply",
            vec!["apply", "--auto-approve", "--json"],
            cwa::render::APPLY_FORMAT_VERSION,
        ),
        // Issue 23: the church's plan (after the apply above, so its removal has a plan).
        (
            "add church",
            vec![
                "add",
                "church",
                "grace",
                "--id",
                "00000000-0000-4000-8000-0000000000a1",
                "--name",
                "Grace Chapel",
                "--area-code",
                "734",
                "--json",
            ],
            cwa::plan::FORMAT_VERSION,
        ),
        (
            "remove church",
            vec!["remove", "church", "melvindale", "--json"],
            cwa::plan::FORMAT_VERSION,
        ),
    ]
}

/// The subcommands (by path, `state show`) that take `--json`, from the parser itself.
fn commands_with_json(command: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for sub in command.get_subcommands() {
        let path = format!("{prefix}{}", sub.get_name());
        if sub.get_arguments().any(|a| a.get_long() == Some("json")) {
            out.push(path.clone());
        }
        commands_with_json(sub, &format!("{path} "), out);
    }
}

#[test]
fn every_command_with_json_is_a_case_here() {
    let mut with_json = Vec::new();
    commands_with_json(&cwa::cli::Cli::command(), "", &mut with_json);
    with_json.sort();
    let mut covered: Vec<String> = cases().iter().map(|c| c.0.to_string()).collect();
    covered.sort();
    assert_eq!(
        with_json, covered,
        "a --json output without a versioned-document case in tests/cli/json_versions.rs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_document_names_its_format_version_and_cwa_version_names_it_too() {
    let ctx = Ctx::runbook().await;
    assert_exit(&ctx.cwa(&["plan", "--out", "p.json"]).await, 0);
    let version = ctx.cwa(&["version"]).await;
    assert_exit(&version, 0);
    let version = stdout(&version);
    for (name, args, expected) in cases() {
        let out = ctx.cwa(&args).await;
        let doc: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("cwa {name} --json is not one JSON document ({e})"));
        assert_eq!(
            doc["format_version"], expected,
            "cwa {name} --json: format_version"
        );
        assert!(
            version
                .lines()
                .any(|l| l.contains(&format!("format {expected}")) && l.contains(name)),
            "cwa version does not name the {name} --json format {expected}:\n{version}"
        );
    }
}
