//! `cwa validate` on LiveKit and Twilio values the servers refuse or silently drop (issue 13):
//! `allowed_addresses` masks read as livekit/protocol `sip/sip.go` reads them, trunk number
//! conflicts as `ValidateTrunksIter` decides them, Twilio origination URL weights.

use assert_cmd::Command;

const BASE: &str = r#"version = 1

[defaults]
agent = "churchwiseai-voice"

[livekit]
project_id = "p_5u9xu5ysoly"

[telnyx.fqdn_connection.livekit]
name = "LiveKit ChurchWiseAI"
transport = "TCP"

[telnyx.fqdn.livekit]
connection = "livekit"
fqdn = "5u9xu5ysoly.sip.livekit.cloud"
default_primary = true

[church.grace]
id = "00000000-0000-4000-8000-00000000000a"
name = "Grace Chapel"
number = "+14144007103"
"#;

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

fn validate(extra: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines.toml");
    std::fs::write(&path, format!("{BASE}{extra}")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cwa"))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("CWA_LOG")
        .args(["--config", "lines.toml", "validate"])
        .output()
        .expect("cwa runs");
    Outcome {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `line:col` of the first occurrence of `needle` in the file `validate` writes.
fn at(extra: &str, needle: &str) -> String {
    let text = format!("{BASE}{extra}");
    let offset = text.find(needle).unwrap();
    let line = text[..offset].matches('\n').count() + 1;
    let col = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("lines.toml:{line}:{col}]")
}

#[test]
fn allowed_address_masks_livekit_drops_are_refused_at_the_entry() {
    for bad in [
        "192.76.120.0/24, 10.0.0.0/8",
        "sip://sip.telnyx.com",
        "10.0.0.*",
        "10.0.0.0/33",
        "not-an-ip/24",
    ] {
        let extra = format!(
            "\n[livekit.inbound_trunk.carrier]\nname = \"Carrier\"\nallowed_addresses = [\"203.0.113.5\", \"{bad}\"]\n"
        );
        let out = validate(&extra);
        assert_eq!(out.code, Some(1), "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("cwa::config::invalid_value"),
            "{bad}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&at(&extra, &format!("\"{bad}\""))),
            "{bad}: {}",
            out.stderr
        );
    }
}

#[test]
fn a_trunk_left_with_no_usable_mask_is_said_to_accept_anyone() {
    let extra = "\n[livekit.inbound_trunk.carrier]\nname = \"Carrier\"\nallowed_addresses = [\"10.0.0.*\"]\n";
    let out = validate(extra);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("accepts calls from any address"),
        "{}",
        out.stderr
    );
}

#[test]
fn valid_masks_ips_cidrs_and_hosts_pass() {
    let extra = "\n[livekit.inbound_trunk.carrier]\nname = \"Carrier\"\nallowed_addresses = [\"203.0.113.5\", \"192.76.120.0/24\", \"2001:db8::/32\", \"sip.telnyx.com\"]\n\n[livekit.dispatch_rule.carrier]\nname = \"Carrier Dispatch\"\ntrunks = [\"carrier\"]\n";
    let out = validate(extra);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn trunks_split_by_allowed_numbers_may_share_a_number() {
    let split = "\n[livekit.inbound_trunk.vip]\nname = \"VIP callers\"\nnumbers = [\"+14144007103\"]\nallowed_numbers = [\"+13126647100\"]\n\n[livekit.dispatch_rule.vip]\nname = \"VIP Dispatch\"\ntrunks = [\"vip\"]\n";
    let out = validate(split);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let overlapping = "\n[livekit.inbound_trunk.a]\nname = \"A\"\nnumbers = [\"+14144007103\"]\nallowed_numbers = [\"+13126647100\"]\n\
\n[livekit.inbound_trunk.b]\nname = \"B\"\nnumbers = [\"+14144007103\"]\nallowed_numbers = [\"+1 (312) 664-7100\"]\n";
    let out = validate(overlapping);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("cwa::config::number_on_two_trunks"),
        "{}",
        out.stderr
    );
}

#[test]
fn origination_url_weight_zero_is_refused_at_the_weight() {
    let extra = "\n[policy]\ntwilio = \"read-write\"\n\n[twilio.trunk.origination]\nname = \"Origination\"\norigination_urls = [{ name = \"LiveKit\", sip_url = \"sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp\", priority = 10, weight = 0, enabled = true }]\n";
    let out = validate(extra);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("has weight 0"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&at(extra, "0, enabled")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_trunk_without_a_domain_is_valid() {
    let extra = "\n[policy]\ntwilio = \"read-write\"\n\n[twilio.trunk.origination]\nname = \"Origination\"\norigination_urls = [{ name = \"LiveKit\", sip_url = \"sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp\", priority = 10, weight = 10, enabled = true }]\n";
    let out = validate(extra);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}
