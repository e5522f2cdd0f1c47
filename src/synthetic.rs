//! The lines.toml that declares a `synthetic:N` sandbox world exactly as it is seeded, for
//! benchmarks and tests at scale (a plan of it against that world has no changes).

use std::fmt::Write;

use crate::sandbox::world::synthetic_lines;

/// The account-level objects every synthetic world has (the runbook's Telnyx connection,
/// its FQDN record and the outbound voice profile).
const ACCOUNT: &str = r#"version = 1

[policy]
twilio = "read-only"
max_delete_share = 0.25

[defaults]
agent = "churchwiseai-voice"
room_prefix = "call-"
krisp = true
country = "US"
connection = "telnyx_fqdn_connection.livekit"

[livekit]
project_id = "p_5u9xu5ysoly"
sip_host = "5u9xu5ysoly.sip.livekit.cloud"

[telnyx.fqdn_connection.livekit]
name = "LiveKit ChurchWiseAI"
transport = "TCP"
user_name = "churchwiseai"
password_env = "TELNYX_FQDN_PASSWORD"
ani_number_format = "+E.164"
dnis_number_format = "+e164"
outbound_voice_profile = "telnyx_outbound_voice_profile.churchwiseai"

[telnyx.fqdn.livekit]
connection = "telnyx_fqdn_connection.livekit"
fqdn = "5u9xu5ysoly.sip.livekit.cloud"
port = 5060
dns_record_type = "a"
default_primary = true

[telnyx.outbound_voice_profile.churchwiseai]
name = "ChurchWiseAI"
enabled = true
whitelisted_destinations = ["CA", "US"]
"#;

/// lines.toml for the first `n` synthetic lines.
pub fn lines_toml(n: usize) -> String {
    let mut out = String::with_capacity(ACCOUNT.len() + n * 110);
    out.push_str(ACCOUNT);
    for line in synthetic_lines(n) {
        let _ = write!(
            out,
            "\n[church.{}]\nid = \"{}\"\nname = \"{}\"\nnumber = \"{}\"\n",
            line.key, line.church_id, line.church_name, line.number
        );
    }
    out
}

/// lines.toml for the first `n` synthetic lines plus `new` more churches whose numbers are
/// bought by area code (for apply benchmarks).
pub fn lines_toml_with_new(n: usize, new: usize) -> String {
    let mut out = lines_toml(n);
    const AREAS: [&str; 4] = ["734", "414", "312", "469"];
    for i in 0..new {
        let _ = write!(
            out,
            "\n[church.new_{i:05}]\nid = \"{}\"\nname = \"New Church {i:05}\"\nnumber = \"auto\"\narea_code = \"{}\"\n",
            crate::sandbox::world::uuid_from(&format!("new-church:{i}")),
            AREAS[i % AREAS.len()]
        );
    }
    out
}
