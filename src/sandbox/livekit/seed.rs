//! The LiveKit objects of the seeded worlds (`docs/runbook-world.md`, synthetic lines).

use livekit_protocol as proto;
use proto::sip_dispatch_rule::Rule;

use super::{LivekitState, RUNBOOK_AGENT, SANDBOX_OUTBOUND_PASSWORD};

/// An inbound trunk for `numbers`, no auth (Telnyx FQDN and Twilio send no credentials).
pub(super) fn inbound(
    id: &str,
    name: &str,
    numbers: &[&str],
    krisp: bool,
) -> proto::SipInboundTrunkInfo {
    proto::SipInboundTrunkInfo {
        sip_trunk_id: id.into(),
        name: name.into(),
        numbers: numbers.iter().map(|n| n.to_string()).collect(),
        krisp_enabled: krisp,
        ..Default::default()
    }
}

/// An individual rule (`<prefix>_<caller>_<random>` rooms) for one trunk; `agent` is the
/// dispatched agent and its job metadata, `None` for a rule that dispatches nobody.
pub(super) fn individual_rule(
    id: &str,
    name: &str,
    trunk: &str,
    prefix: &str,
    agent: Option<(&str, &str)>,
) -> proto::SipDispatchRuleInfo {
    proto::SipDispatchRuleInfo {
        sip_dispatch_rule_id: id.into(),
        name: name.into(),
        trunk_ids: vec![trunk.into()],
        rule: Some(proto::SipDispatchRule {
            rule: Some(Rule::DispatchRuleIndividual(
                proto::SipDispatchRuleIndividual {
                    room_prefix: prefix.into(),
                    pin: String::new(),
                    no_randomness: false,
                },
            )),
        }),
        room_config: agent.map(|(agent_name, metadata)| proto::RoomConfiguration {
            agents: vec![proto::RoomAgentDispatch {
                agent_name: agent_name.into(),
                metadata: metadata.into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

const PHONE_SOURCE: &str = r#"{"source": "phone"}"#;

impl LivekitState {
    /// The runbook project exactly as `docs/runbook-world.md` pins it down, including its
    /// known-broken rule (Melvindale: created through the deprecated fields, no agent).
    pub fn seed_runbook(&mut self) {
        for trunk in [
            inbound(
                "ST_LWgmiBSwTk7P",
                "Medhanialem Ethiopian Evangelical Church",
                &["+14144007103"],
                true,
            ),
            inbound(
                "ST_3KMJ5YEjF2fF",
                "Melvindale Church of God",
                &["+17473897673"],
                true,
            ),
            inbound(
                "ST_Xa3Bp9aixRFP",
                "Twilio Main",
                &["+18886030316", "+14696152221", "+13658254095"],
                true,
            ),
            inbound("ST_hvf5m2RXfEiS", "Twilio Test", &["+13658253552"], false),
        ] {
            self.inbound_trunks
                .0
                .insert(trunk.sip_trunk_id.clone(), trunk);
        }
        let outbound = proto::SipOutboundTrunkInfo {
            sip_trunk_id: "ST_X3n9jxR55VrB".into(),
            name: "Telnyx Outbound".into(),
            address: "sip.telnyx.com".into(),
            transport: proto::SipTransport::Tcp as i32,
            numbers: vec!["+12268830000".into()],
            auth_username: "cwaoutbound".into(),
            auth_password: SANDBOX_OUTBOUND_PASSWORD.into(),
            destination_country: "US".into(),
            ..Default::default()
        };
        self.outbound_trunks
            .0
            .insert(outbound.sip_trunk_id.clone(), outbound);
        for rule in [
            individual_rule(
                "SDR_cYzx7sAkUTvx",
                "Main Dispatch",
                "ST_Xa3Bp9aixRFP",
                "call-",
                Some((RUNBOOK_AGENT, PHONE_SOURCE)),
            ),
            individual_rule(
                "SDR_Wpyno7GDNQqg",
                "Test Dispatch",
                "ST_hvf5m2RXfEiS",
                "test-call-",
                Some((RUNBOOK_AGENT, "")),
            ),
            individual_rule(
                "SDR_4hTq8WnZpK3m",
                "Medhanialem Ethiopian Evangelical Church Dispatch",
                "ST_LWgmiBSwTk7P",
                "call-",
                Some((RUNBOOK_AGENT, PHONE_SOURCE)),
            ),
            individual_rule(
                "SDR_9vRb2XcLeY7s",
                "Melvindale Church of God Dispatch",
                "ST_3KMJ5YEjF2fF",
                "call-",
                None,
            ),
        ] {
            self.dispatch_rules
                .0
                .insert(rule.sip_dispatch_rule_id.clone(), rule);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::livekit::rules;

    #[test]
    fn the_runbook_world_is_valid_and_conflict_free() {
        let mut s = LivekitState::default();
        s.seed_runbook();
        assert_eq!(s.inbound_trunks.0.len(), 4);
        assert_eq!(s.outbound_trunks.0.len(), 1);
        assert_eq!(s.dispatch_rules.0.len(), 4);
        for t in s.inbound_trunks.0.values() {
            rules::inbound_trunk(t).unwrap();
        }
        rules::inbound_trunk_conflicts(s.inbound_trunks.0.values()).unwrap();
        rules::dispatch_rule_conflicts(s.dispatch_rules.0.values()).unwrap();
        assert!(s.dispatch_rules.0["SDR_9vRb2XcLeY7s"].room_config.is_none());
    }
}
