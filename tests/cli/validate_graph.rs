//! The repository's own lines.toml validates, and `cwa graph` prints its resource graph in
//! every format (snapshotted: the graph is part of what a reviewer reads).

use assert_cmd::Command;

fn cwa(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cwa"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("CWA_LOG")
        .args(args)
        .output()
        .expect("cwa runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn repository_lines_toml_is_valid() {
    let (code, stdout, stderr) = cwa(&["--config", "lines.toml", "validate"]);
    assert_eq!(code, Some(0), "{stderr}");
    // The one warning the real declaration has on purpose: its churches' street addresses
    // are not known, and a placeholder E911 address would send help to the wrong building
    // (issue 21), so each church line is flagged until its real address is declared.
    let codes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("cwa::") || l.starts_with("Warning: cwa::"))
        .collect();
    assert!(
        codes
            .iter()
            .all(|c| c.trim_start_matches("Warning: ") == "cwa::config::emergency_address"),
        "warnings on the real declaration:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("has no emergency_address").count(),
        2,
        "one per church line:\n{stderr}"
    );
    cwa_snapshot!(stdout);
}

#[test]
fn graph_text() {
    let (code, stdout, stderr) = cwa(&["--config", "lines.toml", "graph"]);
    assert_eq!(code, Some(0), "{stderr}");
    cwa_snapshot!(stdout);
}

#[test]
fn graph_dot() {
    let (code, stdout, stderr) = cwa(&["--config", "lines.toml", "graph", "--format", "dot"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("digraph desired {"));
    cwa_snapshot!(stdout);
}

#[test]
fn graph_mermaid() {
    let (code, stdout, stderr) = cwa(&["--config", "lines.toml", "graph", "--format", "mermaid"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("flowchart LR"));
    cwa_snapshot!(stdout);
}

#[test]
fn graph_orders_each_church_line_number_trunk_rule() {
    let (_, stdout, _) = cwa(&["--config", "lines.toml", "graph"]);
    let pos = |needle: &str| {
        stdout
            .lines()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle} not in graph:\n{stdout}"))
    };
    for church in ["medhanialem", "melvindale"] {
        let number = pos(&format!("telnyx_number.{church} "));
        let trunk = pos(&format!("livekit_inbound_trunk.{church} "));
        let rule = pos(&format!("livekit_dispatch_rule.{church} "));
        assert!(
            number < trunk && trunk < rule,
            "{church}: {number} {trunk} {rule}"
        );
    }
    assert!(
        pos("telnyx_outbound_voice_profile.churchwiseai")
            < pos("telnyx_credential_connection.outbound ")
    );
}

#[test]
fn graph_of_a_cycle_fails_naming_its_members() {
    let (code, stdout, stderr) = cwa(&["--config", "tests/fixtures/config/cycle.toml", "graph"]);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.contains("cwa::config::cycle"), "{stderr}");
    assert!(
        stderr.contains(
            "dependency cycle among livekit_inbound_trunk.grace, livekit_dispatch_rule.grace"
        ),
        "{stderr}"
    );
}
