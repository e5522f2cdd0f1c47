//! The LiveKit half of a synthetic world: each line provisioned the way cwa's convention
//! does it (one inbound trunk named after the church, one individual `call-` rule
//! dispatching the agent with the church id in its job metadata).

use super::ids::{self, RULE_PREFIX, TRUNK_PREFIX};
use super::seed::{inbound, individual_rule};
use super::LivekitState;
use crate::sandbox::world::SyntheticLine;

/// The job metadata cwa's convention gives a church's dispatch (see `config::expand`).
fn church_metadata(church_id: &uuid::Uuid) -> String {
    format!(r#"{{"church_id":"{church_id}","source":"phone"}}"#)
}

impl LivekitState {
    /// Adds one trunk and one rule per line; ids derive from the line key, so the same
    /// synthetic world always has the same ids.
    pub fn seed_synthetic(&mut self, lines: &[SyntheticLine], agent: &str) {
        for line in lines {
            let trunk_id = ids::derived(TRUNK_PREFIX, &format!("synthetic:{}:trunk", line.key));
            let rule_id = ids::derived(RULE_PREFIX, &format!("synthetic:{}:rule", line.key));
            let trunk = inbound(&trunk_id, &line.church_name, &[line.number.as_str()], true);
            let metadata = church_metadata(&line.church_id);
            let rule = individual_rule(
                &rule_id,
                &format!("{} Dispatch", line.church_name),
                &trunk_id,
                "call-",
                Some((agent, metadata.as_str())),
            );
            self.inbound_trunks.0.insert(trunk_id, trunk);
            self.dispatch_rules.0.insert(rule_id, rule);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::livekit::{matching, rules};
    use crate::sandbox::world::synthetic_lines;

    #[test]
    fn every_synthetic_line_routes_to_the_agent() {
        let lines = synthetic_lines(50);
        let mut s = LivekitState::default();
        s.seed_synthetic(&lines, "churchwiseai-voice");
        assert_eq!(s.inbound_trunks.0.len(), 50);
        rules::inbound_trunk_conflicts(s.inbound_trunks.0.values()).unwrap();
        for line in &lines {
            let call = matching::InboundCall {
                from_user: "+13125550100",
                from_host: "sip.telnyx.com",
                source_ip: "192.76.120.10",
                to_user: line.number.as_str(),
            };
            let trunk = matching::match_trunk(s.inbound_trunks.0.values(), &call)
                .unwrap()
                .trunk()
                .unwrap();
            let rule = matching::match_dispatch_rule(
                Some(trunk),
                s.dispatch_rules.0.values(),
                call.from_user,
                call.to_user,
                matching::Pin::NotSent,
            )
            .unwrap();
            let agent = &rule.room_config.as_ref().unwrap().agents[0];
            assert!(agent.metadata.contains(&line.church_id.to_string()));
        }
        let mut again = LivekitState::default();
        again.seed_synthetic(&lines, "churchwiseai-voice");
        assert_eq!(
            s.inbound_trunks.0.keys().collect::<Vec<_>>(),
            again.inbound_trunks.0.keys().collect::<Vec<_>>()
        );
    }
}
