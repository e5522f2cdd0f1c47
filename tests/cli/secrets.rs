//! Secret hygiene: every command runs with known, distinctive secret values in its
//! environment, and none of them may appear in stdout, stderr, plan files, the journal, the
//! audit log, state, or the sandbox's request log.
//!
//! The sandbox authenticates only its own fixed fake credentials, so commands that talk to it
//! use those (and they must not leak either: they are the credentials in use), while the SIP
//! passwords named by lines.toml's `*_env` keys get distinctive values that apply really sends.
//! Commands that need no network run with distinctive provider keys, and a plan with wrong,
//! distinctive provider keys (refused by the sandbox with 401) must not echo them in its error.
//! `cwa sandbox serve` is left out on purpose: it prints `export` lines with the sandbox's fake
//! keys for other programs to use; that is its job. The sandbox's world files are left out too:
//! the sandbox plays the provider, which must store the SIP passwords it is given.

use std::path::Path;
use std::process::Output;

use crate::common::{assert_exit, stderr, stdout, Ctx};
use base64::Engine;

const FQDN_PASSWORD: &str = "distinct-fqdn-pw-W7yT3bQx";
const OUTBOUND_PASSWORD: &str = "distinct-outbound-pw-H9cJ6nLs";
const ROTATED_FQDN_PASSWORD: &str = "distinct-rotated-pw-P4vN8kZd";
const ROTATED_OUTBOUND_PASSWORD: &str = "distinct-rotated-out-T3mQ7wXe";
const TELNYX_KEY: &str = "KEYdistinctTelnyx7Q4vX9mB2";
const LIVEKIT_SECRET: &str = "distinct-livekit-secret-R2d8FhUa";
const TWILIO_TOKEN: &str = "distinct-twilio-token-M5kP1zEe";

/// Every value that must never be written anywhere, with its base64 forms (as Basic auth
/// would carry them).
fn forbidden() -> Vec<(String, String)> {
    let mut values: Vec<(String, String)> = [
        ("TELNYX_FQDN_PASSWORD", FQDN_PASSWORD),
        ("TELNYX_OUTBOUND_SIP_PASSWORD", OUTBOUND_PASSWORD),
        ("rotated TELNYX_FQDN_PASSWORD", ROTATED_FQDN_PASSWORD),
        (
            "rotated TELNYX_OUTBOUND_SIP_PASSWORD",
            ROTATED_OUTBOUND_PASSWORD,
        ),
        ("distinct TELNYX_API_KEY", TELNYX_KEY),
        ("distinct LIVEKIT_API_SECRET", LIVEKIT_SECRET),
        ("distinct TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
        ("sandbox TELNYX_API_KEY", cwa::sandbox::TELNYX_API_KEY),
        (
            "sandbox LIVEKIT_API_SECRET",
            cwa::sandbox::LIVEKIT_API_SECRET,
        ),
        ("sandbox TWILIO_AUTH_TOKEN", cwa::sandbox::TWILIO_AUTH_TOKEN),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let basic = |token: &str| b64(&format!("{}:{token}", cwa::sandbox::TWILIO_ACCOUNT_SID));
    values.push((
        "Twilio Basic credentials (sandbox)".into(),
        basic(cwa::sandbox::TWILIO_AUTH_TOKEN),
    ));
    values.push(("Twilio Basic credentials".into(), basic(TWILIO_TOKEN)));
    for (name, value) in [
        ("FQDN password", FQDN_PASSWORD),
        ("outbound password", OUTBOUND_PASSWORD),
    ] {
        values.push((format!("{name}, base64"), b64(value)));
    }
    values
}

/// Everything a command printed, by command line.
#[derive(Default)]
struct Transcript {
    outputs: Vec<(String, String)>,
}

impl Transcript {
    fn record(&mut self, args: &[&str], env: &str, out: &Output) {
        let text = format!("{}\n{}", stdout(out), stderr(out));
        self.outputs
            .push((format!("cwa {} [{env}]", args.join(" ")), text));
    }
}

fn sip_passwords(fqdn: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("TELNYX_FQDN_PASSWORD", fqdn),
        ("TELNYX_OUTBOUND_SIP_PASSWORD", OUTBOUND_PASSWORD),
    ]
}

/// Runs a command against the sandbox with distinctive SIP passwords, expecting `code`.
async fn run(ctx: &Ctx, t: &mut Transcript, args: &[&str], extra: &[(&str, &str)], code: i32) {
    let mut env = sip_passwords(FQDN_PASSWORD);
    env.extend_from_slice(extra);
    let out = ctx.cwa_env(args, &env).await;
    assert_exit(&out, code);
    t.record(args, "sandbox keys", &out);
}

/// Runs a command with distinctive provider keys that the sandbox refuses.
async fn run_with_distinct_keys(ctx: &Ctx, t: &mut Transcript, args: &[&str]) -> Output {
    let mut env = sip_passwords(FQDN_PASSWORD);
    env.extend([
        ("TELNYX_API_KEY", TELNYX_KEY),
        ("LIVEKIT_API_SECRET", LIVEKIT_SECRET),
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN),
    ]);
    let out = ctx.cwa_env(args, &env).await;
    t.record(args, "distinct keys", &out);
    out
}

/// Every file under `dir` except the sandbox's world (the provider's own store).
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files
}

fn assert_clean(what: &str, text: &[u8], leaks: &mut Vec<String>) {
    let text = String::from_utf8_lossy(text);
    for (name, value) in forbidden() {
        if text.contains(&value) {
            leaks.push(format!("{name} appears in {what}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_appears_in_any_output_or_file() {
    let ctx = Ctx::runbook().await;
    ctx.set_lines_toml(&format!(
        "{}\n[church.grace]\nid = \"00000000-0000-4000-8000-0000000000a1\"\nname = \"Grace Chapel\"\nnumber = \"auto\"\narea_code = \"734\"\n",
        ctx.lines_toml()
    ));
    let mut t = Transcript::default();
    let mut journals = Vec::new();

    for args in [
        &["validate"][..],
        &["graph"],
        &["graph", "--format", "dot"],
        &["graph", "--format", "mermaid"],
        &["plan"],
        &["plan", "--json"],
        &["plan", "--markdown"],
        &["plan", "--dot"],
        &["-vvv", "plan", "--out", "plan.json"],
    ] {
        run(&ctx, &mut t, args, &[], 0).await;
    }

    // A run killed after its second write leaves its journal (intents with specs) behind.
    let crashed = ctx
        .cwa_env(
            &["-vvv", "apply", "--auto-approve"],
            &[
                ("TELNYX_FQDN_PASSWORD", FQDN_PASSWORD),
                ("TELNYX_OUTBOUND_SIP_PASSWORD", OUTBOUND_PASSWORD),
                ("CWA_TEST_CRASH_AT", "after:2"),
            ],
        )
        .await;
    t.record(
        &["apply", "(killed after 2 writes)"],
        "sandbox keys",
        &crashed,
    );
    let journal = std::fs::read(ctx.path("state/journal.jsonl")).expect("a journal left behind");
    journals.push(journal);

    // The rerun with every crate's trace logging on (HTTP client, TLS, JWT): no secret either.
    run(
        &ctx,
        &mut t,
        &["apply", "--auto-approve"],
        &[("CWA_LOG", "trace")],
        0,
    )
    .await;
    let traced = &t.outputs.last().expect("the traced run").1;
    assert!(
        traced.contains("TRACE") && traced.contains("hyper"),
        "the HTTP client logged at trace level"
    );
    run(&ctx, &mut t, &["plan", "--out", "plan2.json"], &[], 0).await;
    run(&ctx, &mut t, &["apply", "plan2.json"], &[], 0).await;
    run(&ctx, &mut t, &["plan", "--refresh=false"], &[], 0).await;

    // Rotating the passwords: the plan shows them as sensitive, apply sends the new values.
    let rotated_env = [
        ("TELNYX_FQDN_PASSWORD", ROTATED_FQDN_PASSWORD),
        ("TELNYX_OUTBOUND_SIP_PASSWORD", ROTATED_OUTBOUND_PASSWORD),
    ];
    let plan = ctx.cwa_env(&["plan", "--json"], &rotated_env).await;
    t.record(&["plan", "--json"], "rotated passwords", &plan);
    let rotate = ctx
        .cwa_env(&["-vvv", "apply", "--auto-approve"], &rotated_env)
        .await;
    assert_exit(&rotate, 0);
    for address in [
        "telnyx_fqdn_connection.livekit",
        "telnyx_credential_connection.outbound",
        "livekit_outbound_trunk.telnyx",
    ] {
        assert!(
            stdout(&rotate).contains(&format!("updated {address}")),
            "the rotated password of {address} is written: {}",
            stdout(&rotate)
        );
    }
    t.record(&["apply", "(rotated passwords)"], "sandbox keys", &rotate);
    let converged = ctx
        .cwa_env(&["plan", "--detailed-exitcode"], &rotated_env)
        .await;
    assert_exit(&converged, 0);

    let state = ctx.state();
    run(&ctx, &mut t, &["state", "list"], &[], 0).await;
    for address in state.resources.keys() {
        run(&ctx, &mut t, &["state", "show", address], &[], 0).await;
    }
    for args in [
        &["drift"][..],
        &["drift", "--json"],
        &["drift", "--markdown"],
        &["check"],
        &["check", "--json"],
        &["check", "--ring", "+14144007103"],
        &["export", "registry"],
        &["export", "registry", "--format", "python"],
    ] {
        let out = ctx.cwa_env(args, &rotated_env).await;
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "cwa {args:?}: {}",
            stderr(&out)
        );
        t.record(args, "sandbox keys", &out);
    }
    let imported = ctx
        .cwa_env(
            &[
                "--state",
                "imported-state",
                "import",
                "--out",
                "imported.toml",
            ],
            &rotated_env,
        )
        .await;
    t.record(&["import"], "sandbox keys", &imported);

    // Distinctive provider keys: the sandbox refuses them, and the error must not echo them.
    let refused = run_with_distinct_keys(&ctx, &mut t, &["-vvv", "plan"]).await;
    assert_exit(&refused, 1);
    for args in [
        &["validate"][..],
        &["graph"],
        &["plan", "--refresh=false"],
        &["state", "list"],
        &["export", "registry"],
    ] {
        let out = run_with_distinct_keys(&ctx, &mut t, args).await;
        assert_exit(&out, 0);
    }

    let mut leaks = Vec::new();
    for (command, text) in &t.outputs {
        assert_clean(command, text.as_bytes(), &mut leaks);
    }
    for journal in &journals {
        assert_clean("the journal of the killed run", journal, &mut leaks);
    }
    for (path, bytes) in files_under(ctx.work.path()) {
        assert_clean(&path, &bytes, &mut leaks);
    }
    let log = std::fs::read(ctx.sb.dir().join(cwa::sandbox::REQUEST_LOG)).unwrap();
    assert_clean("the sandbox's request log", &log, &mut leaks);
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));

    assert!(
        ctx.path("state/audit.jsonl").exists() && ctx.path("plan.json").exists(),
        "the scan covered the audit log and the plan files"
    );
    let fqdn = ctx
        .state()
        .resources
        .get("telnyx_fqdn_connection.livekit")
        .map(|r| serde_json::to_string(&r.spec).unwrap())
        .expect("the connection is in state");
    assert!(
        fqdn.contains("\"password\":\"mac:"),
        "state keeps a fingerprint of the password: {fqdn}"
    );
}
