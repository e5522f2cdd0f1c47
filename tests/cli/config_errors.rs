//! `cwa validate` on broken variants of lines.toml (tests/fixtures/config/): each must exit 1,
//! name the problem's code, and point at the exact line:column of the mistake. The whole
//! rendered diagnostic is snapshotted, so a reviewer sees what a user would.

use std::path::Path;

use assert_cmd::Command;

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn validate(config: &str) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_cwa"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("CWA_LOG")
        .args(["--config", config, "validate"])
        .output()
        .expect("cwa runs");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cwa validate` on the fixture, checks exit 1, every code and every `line:col`, and
/// snapshots the rendered diagnostic.
fn assert_invalid(fixture: &str, codes: &[&str], locations: &[&str]) -> String {
    let path = format!("tests/fixtures/config/{fixture}.toml");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(&path).exists(),
        "{path} is missing"
    );
    let out = validate(&path);
    assert_eq!(out.code, Some(1), "{fixture}: stderr was\n{}", out.stderr);
    assert!(
        out.stdout.is_empty(),
        "{fixture}: printed to stdout: {}",
        out.stdout
    );
    for code in codes {
        assert!(
            out.stderr.contains(&format!("Error: {code}")),
            "{fixture}: no `{code}` in\n{}",
            out.stderr
        );
    }
    for at in locations {
        let needle = format!("{fixture}.toml:{at}]");
        assert!(
            out.stderr.contains(&needle),
            "{fixture}: no `{needle}` in\n{}",
            out.stderr
        );
    }
    cwa_snapshot!(fixture, out.stderr);
    out.stderr
}

#[test]
fn number_without_plus_is_not_e164() {
    assert_invalid("bad_e164", &["cwa::config::e164"], &["22:10"]);
}

#[test]
fn fiction_555_number_is_refused_for_a_real_line() {
    assert_invalid(
        "fiction_number",
        &["cwa::config::fiction_number"],
        &["22:10"],
    );
}

#[test]
fn dangling_reference_suggests_the_declared_name() {
    let err = assert_invalid(
        "dangling_reference",
        &["cwa::config::reference"],
        &["26:11"],
    );
    assert!(err.contains("did you mean `livekit_inbound_trunk.grace`?"));
}

#[test]
fn duplicate_number_points_at_both_declarations() {
    let err = assert_invalid(
        "duplicate_number",
        &["cwa::config::duplicate_number"],
        &["25:10"],
    );
    assert!(err.contains("first declared here"));
}

#[test]
fn number_on_two_trunks() {
    assert_invalid(
        "number_on_two_trunks",
        &["cwa::config::number_on_two_trunks"],
        &["26:12"],
    );
}

#[test]
fn unknown_key_suggests_the_closest() {
    let err = assert_invalid("unknown_key", &["cwa::config::unknown_key"], &["22:1"]);
    assert!(err.contains("did you mean `number`?"));
}

#[test]
fn unknown_section_suggests_the_closest() {
    let err = assert_invalid("unknown_section", &["cwa::config::unknown_key"], &["24:9"]);
    assert!(err.contains("did you mean `fqdn_connection`?"));
}

#[test]
fn udp_transport_is_refused() {
    assert_invalid("udp_transport", &["cwa::config::transport"], &["11:13"]);
}

#[test]
fn project_name_sip_host_explains_404() {
    let err = assert_invalid("project_name_host", &["cwa::config::sip_host"], &["15:8"]);
    assert!(err.contains("404 No trunk found"));
}

#[test]
fn trunk_auth_inconsistent_with_the_connection() {
    let err = assert_invalid("trunk_auth", &["cwa::config::trunk_auth"], &["26:17"]);
    assert!(err.contains("407"));
}

#[test]
fn dispatch_rule_without_agent() {
    let err = assert_invalid("missing_agent", &["cwa::config::no_agent"], &["25:10"]);
    assert!(err.contains("agent never joins"));
}

#[test]
fn inline_secret_is_refused_and_never_shown() {
    let err = assert_invalid("inline_secret", &["cwa::config::inline_secret"], &["13:1"]);
    assert!(err.contains("password_env"));
    assert!(
        !err.contains("not-a-real-secret"),
        "the secret leaked:\n{err}"
    );
}

#[test]
fn dependency_cycle_names_its_members() {
    let err = assert_invalid("cycle", &["cwa::config::cycle"], &["28:14"]);
    assert!(err.contains("livekit_inbound_trunk.grace"));
    assert!(err.contains("livekit_dispatch_rule.grace"));
}

#[test]
fn connection_with_numbers_needs_a_default_primary_fqdn() {
    assert_invalid(
        "missing_default_primary",
        &["cwa::config::default_primary_fqdn"],
        &["9:25"],
    );
}

#[test]
fn outbound_profile_must_whitelist_the_trunk_country() {
    assert_invalid(
        "ovp_not_whitelisting",
        &["cwa::config::outbound_voice_profile"],
        &["26:28"],
    );
}

#[test]
fn credential_connection_without_outbound_profile() {
    let err = assert_invalid(
        "credential_without_ovp",
        &["cwa::config::outbound_voice_profile"],
        &["28:31"],
    );
    assert!(err.contains("D35"));
}

#[test]
fn outbound_did_bound_to_another_connection() {
    assert_invalid(
        "outbound_did_wrong_connection",
        &["cwa::config::outbound_number", "cwa::config::routing"],
        &["41:12", "35:10"],
    );
}

#[test]
fn number_formats_must_keep_the_plus() {
    assert_invalid("number_format", &["cwa::config::number_format"], &["12:21"]);
}

#[test]
fn routed_number_without_inbound_trunk() {
    assert_invalid("no_inbound_trunk", &["cwa::config::routing"], &["25:10"]);
}

#[test]
fn telnyx_username_header_must_match_the_credential_user() {
    assert_invalid(
        "header_mismatch",
        &["cwa::config::outbound_trunk"],
        &["45:11"],
    );
}

#[test]
fn auto_number_needs_an_area_code() {
    assert_invalid(
        "auto_without_area_code",
        &["cwa::config::missing_field"],
        &["27:10"],
    );
}

#[test]
fn toml_syntax_error_points_at_the_line() {
    assert_invalid("toml_syntax", &["cwa::config::syntax"], &["21:21"]);
}

#[test]
fn one_run_reports_every_problem() {
    let err = assert_invalid(
        "many_problems",
        &[
            "cwa::config::transport",
            "cwa::config::invalid_value",
            "cwa::config::e164",
            "cwa::config::unknown_key",
        ],
        &["11:13", "20:6", "22:10", "28:1"],
    );
    assert!(err.contains("4 errors"));
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = validate("tests/fixtures/config/does-not-exist.toml");
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("cwa::config::read"), "{}", out.stderr);
    assert!(out.stderr.contains("does-not-exist.toml"), "{}", out.stderr);
}

#[test]
fn minimal_valid_file_passes() {
    let out = validate("tests/fixtures/config/valid_minimal.toml");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("valid: "), "{}", out.stdout);
}
