//! `cwa export registry`: the number -> church id map, from lines.toml alone, with no
//! credentials and no network.

use std::path::Path;
use std::process::{Command, Output};

const REGISTRY_LINES: &str = r#"
version = 1

[defaults]
agent = "churchwiseai-voice"

[livekit]
project_id = "p_5u9xu5ysoly"

[telnyx.fqdn_connection.livekit]
name = "LiveKit ChurchWiseAI"

[telnyx.fqdn.livekit]
connection = "livekit"
fqdn = "5u9xu5ysoly.sip.livekit.cloud"
default_primary = true

[church.zion]
id = "00000000-0000-4000-8000-00000000000b"
name = "Zion Chapel"

[church.zion.lines.main]
number = "+17473897673"

[church.zion.lines.youth]
number = "+13126060100"

[church.abide]
id = "00000000-0000-4000-8000-00000000000a"
name = "Abide \"Downtown\""
number = "+14144007103"

[church.grace]
id = "00000000-0000-4000-8000-00000000000c"
name = "Grace"
number = "auto"
area_code = "734"
"#;

/// Runs cwa in `dir` with an empty environment: no credentials, no sandbox.
fn cwa(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cwa"))
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .output()
        .expect("cwa runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn workdir(lines: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lines.toml"), lines).unwrap();
    dir
}

#[test]
fn json_registry_is_sorted_e164_to_church_id() {
    let dir = workdir(REGISTRY_LINES);
    let out = cwa(dir.path(), &["export", "registry"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    let numbers: Vec<&String> = map.keys().collect();
    assert_eq!(numbers, ["+13126060100", "+14144007103", "+17473897673"]);
    assert_eq!(map["+14144007103"], "00000000-0000-4000-8000-00000000000a");
    assert_eq!(map["+17473897673"], "00000000-0000-4000-8000-00000000000b");
    assert!(String::from_utf8_lossy(&out.stderr).contains("telnyx_number.grace"));
}

#[test]
fn python_registry_is_a_dict_literal_with_church_names() {
    let dir = workdir(REGISTRY_LINES);
    let out = cwa(dir.path(), &["export", "registry", "--format", "python"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("PHONE_REGISTRY = {\n"), "{text}");
    assert!(
        text.contains("    \"+14144007103\": \"00000000-0000-4000-8000-00000000000a\",  # Abide \"Downtown\"\n"),
        "{text}"
    );
    let first = text.find("+13126060100").unwrap();
    let last = text.find("+17473897673").unwrap();
    assert!(first < last, "sorted by number");
    assert!(text.trim_end().ends_with('}'));
}

#[test]
fn the_repository_registry_lists_both_churches() {
    let lines =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("lines.toml")).unwrap();
    let dir = workdir(&lines);
    let out = cwa(dir.path(), &["export", "registry"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let map: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        map,
        serde_json::json!({
            "+14144007103": "00000000-0000-4000-8000-000000000001",
            "+17473897673": "00000000-0000-4000-8000-000000000002",
        })
    );
}

#[test]
fn an_invalid_declaration_exports_nothing() {
    let dir = workdir(
        "version = 1\n[church.x]\nid = \"nope\"\nname = \"X\"\nnumber = \"+14144007103\"\n",
    );
    let out = cwa(dir.path(), &["export", "registry"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
}
