//! The one dependency and ordering rule set: which kinds wait for which, who owns a
//! number, and the error a dependency loop is. The desired graph (`config::graph`), the
//! planner's matching order and the change graph (`plan::graph`) all read it from here, so a
//! new kind is placed once.

use std::collections::BTreeMap;

use petgraph::graph::DiGraph;

use super::{Address, Desired, Kind, Spec, E164};

impl Kind {
    /// The kinds a resource of this kind waits for: what its spec may refer to or hold a
    /// number of, and, for a Telnyx number, the FQDN record its connection routes through (a
    /// number routed before that record exists rings nowhere). The one ordering rule: every
    /// order of kinds below is derived from it.
    pub fn needs(self) -> &'static [Kind] {
        match self {
            Kind::TelnyxOutboundVoiceProfile
            | Kind::TelnyxTexmlApplication
            | Kind::TwilioTrunk
            | Kind::TwilioNumber
            | Kind::TelnyxEmergencyAddress => &[],
            Kind::TelnyxFqdnConnection | Kind::TelnyxCredentialConnection => {
                &[Kind::TelnyxOutboundVoiceProfile]
            }
            Kind::TelnyxFqdn => &[Kind::TelnyxFqdnConnection],
            Kind::TelnyxNumber => &[
                Kind::TelnyxFqdnConnection,
                Kind::TelnyxCredentialConnection,
                Kind::TelnyxTexmlApplication,
                Kind::TelnyxFqdn,
                Kind::TelnyxEmergencyAddress,
            ],
            Kind::TwilioTrunkNumber => &[Kind::TwilioTrunk, Kind::TwilioNumber],
            Kind::LivekitInboundTrunk | Kind::LivekitOutboundTrunk => {
                &[Kind::TelnyxNumber, Kind::TwilioNumber]
            }
            Kind::LivekitDispatchRule => &[Kind::LivekitInboundTrunk],
        }
    }

    /// How deep the kind sits in [`Kind::needs`]: 0 for kinds that wait for nothing, else one
    /// more than the deepest kind it needs. Lower ranks are matched and created first and
    /// removed last; the desired graph and the change graph break ties by it.
    pub fn rank(self) -> u8 {
        self.needs().iter().map(|k| k.rank() + 1).max().unwrap_or(0)
    }
}

impl Spec {
    /// The number this resource owns (buys, rents or keeps), of whichever provider: a fixed
    /// Telnyx number, a Twilio number. An `auto` number owns nothing until state pins it.
    pub fn owned_number(&self) -> Option<&E164> {
        match self {
            Spec::TelnyxNumber(s) => s.number.fixed(),
            Spec::TwilioNumber(s) => Some(&s.number),
            Spec::TelnyxFqdnConnection(_)
            | Spec::TelnyxFqdn(_)
            | Spec::TelnyxCredentialConnection(_)
            | Spec::TelnyxOutboundVoiceProfile(_)
            | Spec::TelnyxTexmlApplication(_)
            | Spec::LivekitInboundTrunk(_)
            | Spec::LivekitOutboundTrunk(_)
            | Spec::LivekitDispatchRule(_)
            | Spec::TwilioTrunk(_)
            | Spec::TwilioTrunkNumber(_)
            | Spec::TelnyxEmergencyAddress(_) => None,
        }
    }
}

impl Desired {
    /// Declared numbers and the resource that owns each, of every provider: a trunk holding a
    /// literal number waits for that resource. The first declaration (by address) wins; a
    /// number declared twice is a validation error of its own.
    pub fn number_owners(&self) -> BTreeMap<&E164, &Address> {
        let mut owners = BTreeMap::new();
        for r in self.resources.values() {
            if let Some(n) = r.spec.owned_number() {
                owners.entry(n).or_insert(&r.addr);
            }
        }
        owners
    }
}

/// A dependency loop: nothing on it can be created first. `members` are every address on
/// one loop, sorted; the config graph and the change graph report it alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle among {}", members.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "))]
pub struct CycleError {
    pub members: Vec<Address>,
}

impl CycleError {
    /// The first loop of `graph` (its strongly connected components of more than one node,
    /// or a node depending on itself), with each node named by `address`.
    pub fn find<N, E>(graph: &DiGraph<N, E>, address: impl Fn(&N) -> Address) -> Self {
        let mut cycles: Vec<Vec<Address>> = petgraph::algo::tarjan_scc(graph)
            .into_iter()
            .filter(|scc| scc.len() > 1 || graph.contains_edge(scc[0], scc[0]))
            .map(|scc| {
                let mut members: Vec<Address> = scc.iter().map(|ix| address(&graph[*ix])).collect();
                members.sort();
                members
            })
            .collect();
        cycles.sort();
        CycleError {
            members: cycles.into_iter().next().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_ranks_after_what_it_needs() {
        for kind in Kind::ALL {
            for need in kind.needs() {
                assert!(
                    need.rank() < kind.rank(),
                    "{kind} needs {need}, ranked later"
                );
            }
        }
        let ranks: Vec<u8> = Kind::ALL.iter().map(|k| k.rank()).collect();
        assert_eq!(ranks, [3, 1, 2, 1, 0, 0, 4, 4, 5, 0, 0, 1, 0]);
    }

    #[test]
    fn every_reference_a_spec_can_hold_is_to_a_kind_it_needs() {
        let desired = crate::config::parse(
            std::path::Path::new("lines.toml"),
            include_str!("../../lines.toml"),
        )
        .expect("the repository declaration validates");
        for r in desired.desired.resources.values() {
            for dep in r.dependencies() {
                if dep.kind == r.addr.kind {
                    continue;
                }
                let declared_dependency = r.depends_on.contains(&dep);
                assert!(
                    declared_dependency || r.addr.kind.needs().contains(&dep.kind),
                    "{} refers to {dep}, a kind it does not need",
                    r.addr
                );
            }
        }
    }
}
