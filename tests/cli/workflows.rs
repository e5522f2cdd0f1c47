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
    // plan.yml runs cwa on the pull request's files with `-C DIR` (issue 12, class 11).
    let has = |file: &str, cmd: &str| {
        commands.iter().any(|(f, c)| {
            let c = c.strip_prefix("-C $PR_DIR ").unwrap_or(c);
            f == file && c.starts_with(cmd)
        })
    };
    assert!(
        has("plan.yml", "plan --out plan.json --detailed-exitcode"),
        "{commands:?}"
    );
    assert!(
        has("plan.yml", "plan --refresh=false --out plan.json"),
        "{commands:?}"
    );
    assert!(
        has("plan.yml", "show $PR_DIR/plan.json --markdown"),
        "{commands:?}"
    );
    assert!(has("apply.yml", "plan --out plan.json"), "{commands:?}");
    assert!(
        has("apply.yml", "show plan.json --markdown"),
        "{commands:?}"
    );
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

/// Every step of a job with its environment: the job's `env` merged under the step's.
fn steps(workflow: &Value) -> Vec<(String, Value, Value)> {
    let mut out = Vec::new();
    let Some(jobs) = workflow.get("jobs").and_then(Value::as_mapping) else {
        return out;
    };
    for (name, job) in jobs {
        let job_env = job.get("env").cloned().unwrap_or(Value::Null);
        for step in job
            .get("steps")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let mut env = serde_norway::Mapping::new();
            for e in [&job_env, step.get("env").unwrap_or(&Value::Null)] {
                if let Some(m) = e.as_mapping() {
                    for (k, v) in m {
                        env.insert(k.clone(), v.clone());
                    }
                }
            }
            out.push((
                name.as_str().unwrap_or("").to_string(),
                step.clone(),
                Value::Mapping(env),
            ));
        }
    }
    out
}

fn text(v: &Value) -> String {
    serde_norway::to_string(v).unwrap_or_default()
}

/// Issue 12, class 11: the plan workflow holds the provider secrets, so it is defined by the
/// base branch (`pull_request_target`), builds cwa only from the base branch, and reads the
/// pull request's lines.toml and state/ as data: no step that can see a secret builds or runs
/// anything from the pull request's tree.
#[test]
fn the_plan_workflow_never_runs_pull_request_code_where_a_secret_is_set() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/plan.yml");
    let w = parse(&path);
    let on = w.get("on").expect("triggers");
    assert!(on.get("pull_request_target").is_some(), "{}", text(on));
    assert!(
        on.get("pull_request").is_none(),
        "a `pull_request` run executes the pull request's own workflow file"
    );
    let all = steps(&w);
    assert!(!all.is_empty());
    for (job, step, env) in &all {
        let step_text = text(step);
        if let Some(uses) = step.get("uses").and_then(Value::as_str) {
            if uses.starts_with("actions/checkout") {
                let with = step.get("with").expect("checkout says what it checks out");
                let r = with.get("ref").and_then(Value::as_str).unwrap_or("");
                assert!(
                    r.contains("github.event.pull_request.base.sha"),
                    "{job}: checkout of {r:?}, not the base branch"
                );
                assert_eq!(
                    with.get("persist-credentials").and_then(Value::as_bool),
                    Some(false),
                    "{job}: the checkout keeps a token in .git/config"
                );
            }
        }
        let has_secret = text(env).contains("secrets.");
        if !has_secret {
            continue;
        }
        let run = step.get("run").and_then(Value::as_str).unwrap_or("");
        for forbidden in [
            "cargo", "rustup", "make", "npm", "pip", "./", "bash ", "sh ", "source ", ". $",
            "$PR_DIR/",
        ] {
            let hits: Vec<&str> = run
                .lines()
                .filter(|l| l.contains(forbidden))
                .filter(|l| {
                    !(forbidden == "$PR_DIR/" && l.contains("cwa show \"$PR_DIR/plan.json\""))
                })
                .filter(|l| {
                    !(forbidden == "$PR_DIR/" && l.contains("[ -f \"$PR_DIR/plan.json\" ]"))
                })
                .collect();
            assert!(
                hits.is_empty(),
                "{job}: a step with secrets runs {forbidden:?}: {hits:?}\n{step_text}"
            );
        }
        if step.get("uses").is_some() {
            panic!("{job}: an action runs with the provider secrets: {step_text}");
        }
    }
    let secret_steps = all
        .iter()
        .filter(|(_, _, e)| text(e).contains("secrets.TELNYX"))
        .count();
    assert_eq!(
        secret_steps, 1,
        "the provider secrets are given to one step, the plan"
    );
    let job_env: Vec<String> = w["jobs"]
        .as_mapping()
        .unwrap()
        .values()
        .map(|j| text(j.get("env").unwrap_or(&Value::Null)))
        .collect();
    assert!(
        job_env.iter().all(|e| !e.contains("secrets.")),
        "secrets at job level reach the build step: {job_env:?}"
    );
    let fetch = all
        .iter()
        .find(|(_, s, _)| text(s).contains("refs/pull/"))
        .expect("a step fetches the pull request's files");
    let fetch_run = fetch.1.get("run").and_then(Value::as_str).unwrap();
    assert!(
        fetch_run.contains("100644") && fetch_run.contains("git cat-file blob"),
        "the pull request's files are read as regular blobs only (no symlinks):\n{fetch_run}"
    );
    assert!(
        !text(&fetch.2).contains("secrets."),
        "the fetch step has secrets"
    );
}

/// The only workflow that builds a pull request's tree has no secrets.
#[test]
fn the_workflow_that_builds_pull_requests_has_no_secrets() {
    for path in workflows() {
        let w = parse(&path);
        let on = text(w.get("on").unwrap());
        let builds_pr_tree = on.contains("pull_request:") || on.contains("pull_request\n");
        if !builds_pr_tree {
            continue;
        }
        assert!(
            !text(&w).contains("secrets."),
            "{} runs on pull_request and names secrets",
            path.display()
        );
    }
}

/// provision.yml (issue 23): started by workflow_dispatch with the church's inputs, which
/// reach the shell only through `env:`; one writer at a time with apply.yml; the add, the
/// policy read, the targeted auto-approved apply, the registry export and the failure issue.
#[test]
fn the_provisioning_workflow_takes_its_inputs_through_env_only() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/provision.yml");
    let w = parse(&path);
    let inputs = w["on"]["workflow_dispatch"]["inputs"]
        .as_mapping()
        .expect("workflow_dispatch inputs");
    for name in ["key", "id", "name", "area_code", "number"] {
        assert!(
            inputs.contains_key(Value::from(name)),
            "input {name} missing"
        );
    }
    assert_eq!(w["concurrency"]["group"], Value::from("cwa-apply"));
    for script in scripts(&w) {
        assert!(
            !script.contains("${{"),
            "an expression inside run: (inputs must come through env:):\n{script}"
        );
    }
    // Every `${{ inputs.… }}` is an env value.
    let raw = std::fs::read_to_string(&path).unwrap();
    let in_env: usize = steps(&w)
        .iter()
        .map(|(_, _, env)| text(env).matches("inputs.").count())
        .max()
        .unwrap_or(0);
    assert_eq!(raw.matches("${{ inputs.").count(), in_env, "{raw}");
    let commands: Vec<String> = scripts(&w)
        .iter()
        .flat_map(|s| cwa_invocations(s))
        .map(|a| a.join(" "))
        .collect();
    for expected in [
        "add church $KEY --id $CHURCH_ID --name $CHURCH_NAME --number $NUMBER",
        "add church $KEY --id $CHURCH_ID --name $CHURCH_NAME --area-code $AREA_CODE",
        "export auto-add",
        "apply --target church.$KEY --auto-approve",
        "check",
        "export registry",
    ] {
        assert!(
            commands.iter().any(|c| c.starts_with(expected)),
            "{expected}: {commands:?}"
        );
    }
    let all = text(&w);
    assert!(
        all.contains("gh pr create") && all.contains("gh issue create"),
        "{all}"
    );
    assert!(all.contains("if: failure()"), "an issue on failure");
}

/// Issue 19, forks: a pull request (a fork's above all) never gets the database. plan.yml
/// names no `CWA_STATE_URL`, so every pull request plans against the committed `state/`;
/// apply.yml, holding the URL (`state`, the directory, when the secret is not set: cwa
/// refuses an empty `CWA_STATE_URL`),
/// writes that `state/` as the database's secret-free snapshot after every apply, before the
/// step that commits it, even after a failed apply.
#[test]
fn pull_requests_plan_against_the_snapshot_apply_writes_and_never_get_the_database() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows");
    let plan = std::fs::read_to_string(root.join("plan.yml")).unwrap();
    assert!(
        !plan.contains("CWA_STATE_URL") && !plan.contains("--state"),
        "plan.yml must never reach the database"
    );
    let w = parse(&root.join("apply.yml"));
    assert!(
        text(&w).contains("${{ secrets.CWA_STATE_URL || 'state' }}"),
        "apply.yml holds the database URL"
    );
    let apply_steps: Vec<(String, Value, Value)> = steps(&w)
        .into_iter()
        .filter(|(job, _, _)| job == "apply")
        .collect();
    let position = |what: &str| {
        apply_steps
            .iter()
            .position(|(_, s, _)| {
                s.get("run")
                    .and_then(Value::as_str)
                    .is_some_and(|r| r.contains(what))
            })
            .unwrap_or_else(|| panic!("no apply step runs {what:?}"))
    };
    let snapshot = position("cwa state migrate --to state");
    let commit = position("git add state/");
    assert!(
        snapshot < commit,
        "the snapshot is written before it is committed"
    );
    let applied = position("cwa apply plan.json");
    assert!(applied < snapshot, "the snapshot follows the apply");
    let step = &apply_steps[snapshot].1;
    let condition = step["if"].as_str().unwrap_or_default();
    assert!(
        condition.contains("always()"),
        "written after a failed apply too: {condition:?}"
    );
    let script = step["run"].as_str().unwrap_or_default();
    assert!(
        script.contains(r#"if [ "$CWA_STATE_URL" != state ]; then"#),
        "written only with state in PostgreSQL: {script:?}"
    );
}

/// provision.yml (issue 23): a secret (and the `gh` token) is set on exactly the steps that use
/// it, in the step's own `env:`, never on the workflow or the job: the build step runs every
/// dependency's build script, and git, `cwa export` and the policy read need no credential.
/// The steps that talk to the providers (`cwa add`, which plans against live, `cwa apply`,
/// `cwa check`) get the provider credentials; the steps that run `gh` get `GH_TOKEN`.
#[test]
fn the_provisioning_workflow_sets_each_secret_only_on_the_steps_that_use_it() {
    assert_each_secret_only_on_the_steps_that_use_it(
        "provision.yml",
        &["add", "apply", "check"],
        &[],
    );
}

/// apply.yml (issue 12, class 11's sibling): the same rule as provision.yml. Its build steps
/// compile and run every dependency's build script, `cwa show` and git need no credential, so
/// only the steps that run `cwa plan`, `cwa apply` and `cwa check` hold the provider secrets
/// (Twilio's too: apply.yml reads Twilio), and the state URL only where cwa reads state.
#[test]
fn the_apply_workflow_sets_each_secret_only_on_the_steps_that_use_it() {
    assert_each_secret_only_on_the_steps_that_use_it(
        "apply.yml",
        &["plan", "apply", "check"],
        &["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"],
    );
}

/// Asserts that a workflow sets no credential on the workflow or a job, the provider
/// credentials (the six every workflow needs, plus `also`) on exactly the steps that run one
/// of the `live` cwa commands, the state URL on exactly the steps whose cwa command reads
/// state, and `GH_TOKEN` on exactly the steps that run `gh`.
fn assert_each_secret_only_on_the_steps_that_use_it(
    file: &str,
    live_verbs: &[&str],
    also: &[&str],
) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".github/workflows")
        .join(file);
    let w = parse(&path);
    let credential = |v: &Value| {
        let t = text(v);
        t.contains("secrets.") || t.contains("github.token")
    };
    assert!(
        !credential(w.get("env").unwrap_or(&Value::Null)),
        "a credential at the workflow level: {}",
        text(&w["env"])
    );
    let jobs = w["jobs"].as_mapping().expect("jobs");
    for (name, job) in jobs {
        assert!(
            !credential(job.get("env").unwrap_or(&Value::Null)),
            "a credential at the level of job {name:?}"
        );
    }
    let mut talking = 0;
    for (_, step, _) in steps(&w) {
        let own_env = step.get("env").cloned().unwrap_or(Value::Null);
        let run = step.get("run").and_then(Value::as_str).unwrap_or("");
        let live = cwa_invocations(run)
            .iter()
            .any(|a| live_verbs.contains(&a.first().map_or("", String::as_str)));
        let gh = run.lines().any(|l| l.trim_start().starts_with("gh "));
        let label = step
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(a step)");
        let env = text(&own_env);
        // The state URL (a secret when state is in PostgreSQL) only where cwa reads state.
        let reads_state = cwa_invocations(run).iter().any(|a| {
            let words: Vec<&str> = a.iter().map(String::as_str).collect();
            matches!(
                words.as_slice(),
                ["add" | "apply" | "check" | "plan", ..]
                    | ["export", "registry", ..]
                    | ["state", ..]
            )
        });
        let state_url = own_env.get("CWA_STATE_URL").and_then(Value::as_str);
        if reads_state {
            assert_eq!(
                state_url,
                Some("${{ secrets.CWA_STATE_URL || 'state' }}"),
                "{label}: reads state without CWA_STATE_URL"
            );
        } else {
            assert_eq!(
                state_url, None,
                "{label}: the state URL where no state is read"
            );
        }
        if live {
            talking += 1;
            for name in [
                "TELNYX_API_KEY",
                "LIVEKIT_URL",
                "LIVEKIT_API_KEY",
                "LIVEKIT_API_SECRET",
                "TELNYX_FQDN_PASSWORD",
                "TELNYX_OUTBOUND_SIP_PASSWORD",
            ]
            .iter()
            .chain(also)
            {
                let want = format!("${{{{ secrets.{name} }}}}");
                assert!(
                    own_env.get(name).and_then(Value::as_str) == Some(want.as_str()),
                    "{label}: runs a cwa command that reads live without {name} in its env:\n{env}"
                );
            }
        } else {
            let providers = own_env
                .as_mapping()
                .into_iter()
                .flatten()
                .filter(|(k, v)| {
                    !matches!(k.as_str(), Some("CWA_STATE_URL" | "GH_TOKEN")) && credential(v)
                })
                .count();
            assert_eq!(
                providers, 0,
                "{label}: has provider secrets it never uses:\n{env}"
            );
        }
        assert_eq!(
            env.contains("github.token"),
            gh,
            "{label}: GH_TOKEN set {} the step runs gh:\n{env}",
            if gh { "only where" } else { "where not" }
        );
        for (k, v) in step.as_mapping().into_iter().flatten() {
            if k.as_str() != Some("env") {
                assert!(!credential(v), "{label}: a credential in its {k:?}");
            }
        }
    }
    assert!(
        talking >= live_verbs.len(),
        "{file}: {live_verbs:?} each talk to the providers"
    );
}
