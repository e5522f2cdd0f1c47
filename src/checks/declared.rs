//! The runbooks' rules applied to what lines.toml declares, with no network: each failure is
//! a diagnostic at the value that breaks the call, naming the symptom a caller would meet.

use std::collections::BTreeMap;

use crate::config::expand::Expanded;
use crate::config::Problem;
use crate::model::{Address, DesiredResource, Kind, NumberRef, NumberSpec, Ref, SourceSpan, Spec};

/// Applies every rule to the expanded declaration, appending errors and warnings.
pub fn validate(x: &Expanded, problems: &mut Vec<Problem>) {
    let mut d = Declared { x, problems };
    d.livekit_project();
    d.fqdn_connections();
    d.transport();
    d.fqdn_hosts();
    d.twilio_origination_hosts();
    d.default_primary();
    d.inbound_trunks();
    d.routing();
    d.dispatch_rules();
    d.credential_connections();
    d.outbound_profiles();
    d.outbound_trunks();
    d.emergency_addresses();
}

/// The declaration being checked and where its problems go; each family adds its rules as
/// methods in its own module.
pub(super) struct Declared<'a> {
    pub(super) x: &'a Expanded,
    problems: &'a mut Vec<Problem>,
}

impl Declared<'_> {
    pub(super) fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &'_ DesiredResource> + '_ {
        self.x
            .desired
            .resources
            .values()
            .filter(move |r| r.addr.kind == kind)
    }

    /// The span of one value of a resource, or of its block.
    pub(super) fn at(&self, res: &DesiredResource, field: &str) -> SourceSpan {
        self.x.spans.get(&res.addr, field).unwrap_or(res.span)
    }

    pub(super) fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    pub(super) fn extend(&mut self, found: Vec<Problem>) {
        self.problems.extend(found);
    }

    pub(super) fn sip_host(&self) -> &str {
        &self.x.desired.settings.livekit_sip_host
    }

    /// Numbers bound to an FQDN connection: the ones Telnyx sends to LiveKit.
    pub(super) fn fqdn_bound_numbers(&self) -> Vec<(&DesiredResource, &Address)> {
        self.of_kind(Kind::TelnyxNumber)
            .filter_map(|r| {
                let Spec::TelnyxNumber(s) = &r.spec else {
                    return None;
                };
                let conn = s.connection.as_ref().and_then(Ref::addr)?;
                (conn.kind == Kind::TelnyxFqdnConnection).then_some((r, conn))
            })
            .collect()
    }

    /// The key a trunk uses to hold a number resource's number.
    pub(super) fn number_key(r: &DesiredResource) -> Option<NumberRef> {
        match &r.spec {
            Spec::TelnyxNumber(s) => Some(match &s.number {
                NumberSpec::Fixed { number } => NumberRef::Number(number.clone()),
                NumberSpec::Auto { .. } => NumberRef::Of(r.addr.clone()),
            }),
            Spec::TwilioNumber(s) => Some(NumberRef::Number(s.number.clone())),
            _ => None,
        }
    }

    /// Trunks (and the span of the entry) holding each number.
    pub(super) fn holders(&self) -> BTreeMap<NumberRef, Vec<(&DesiredResource, SourceSpan)>> {
        let mut out: BTreeMap<NumberRef, Vec<(&DesiredResource, SourceSpan)>> = BTreeMap::new();
        for t in self.of_kind(Kind::LivekitInboundTrunk) {
            let Spec::LivekitInboundTrunk(s) = &t.spec else {
                continue;
            };
            for (i, n) in s.numbers.iter().enumerate() {
                out.entry(n.clone())
                    .or_default()
                    .push((t, self.at(t, &format!("numbers.{i}"))));
            }
        }
        out
    }

    /// Numbers that reach LiveKit (Telnyx via an FQDN connection, Twilio via a trunk), and
    /// what carries them there.
    pub(super) fn routed_numbers(&self) -> Vec<(&DesiredResource, NumberRef, String)> {
        let mut out: Vec<(&DesiredResource, NumberRef, String)> = self
            .fqdn_bound_numbers()
            .into_iter()
            .filter_map(|(r, c)| Some((r, Self::number_key(r)?, c.to_string())))
            .collect();
        for tn in self.of_kind(Kind::TwilioTrunkNumber) {
            let Spec::TwilioTrunkNumber(s) = &tn.spec else {
                continue;
            };
            let Some(number) = s.number.addr().and_then(|a| self.x.desired.get(a)) else {
                continue;
            };
            if let (Some(key), Some(trunk)) = (Self::number_key(number), s.trunk.addr()) {
                out.push((number, key, trunk.to_string()));
            }
        }
        out
    }
}
