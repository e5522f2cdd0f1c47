//! The walk over the live world: the lookups every rule needs, built once so that checking N
//! lines stays linear, and the order in which the families' live checks run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Certification, CheckResult, Pending, Request, Rule};
use crate::model::{Address, Desired, Live, LiveObject, NumberRef, Ref, Spec, E164};
use crate::state::State;

/// A line that cannot be checked: applied, yet state pins no number for it.
pub(super) const LINE_CHECKABLE: Rule = Rule {
    code: "cwa::number::line-uncheckable",
    check: "line-checkable",
    hop: "number",
};

pub(super) fn run(
    desired: &Desired,
    state: &State,
    live: &Live,
    request: &Request,
) -> Certification {
    let mut out = Results {
        keep_passed: request.passes,
        items: Vec::new(),
        activating: Vec::new(),
    };
    let scope = &request.scope;
    let index = Index::new(desired, state, live);
    let lines = routed_lines(desired, state, &index);
    for line in lines.routed.iter().filter(|l| scope.covers(&l.addresses())) {
        super::number::live(desired, live, &index, &line.number, &mut out);
        super::emergency::live(desired, &index, line.owner, &line.number, &mut out);
    }
    for (addr, why) in lines.uncheckable.iter().filter(|(a, _)| scope.covers(&[a])) {
        out.push(CheckResult::new(
            &LINE_CHECKABLE,
            &addr.to_string(),
            false,
            why.clone(),
        ));
    }
    for r in desired.resources.values() {
        if !scope.covers(&[&r.addr]) {
            continue;
        }
        if let Spec::TelnyxCredentialConnection(c) = &r.spec {
            super::credential::live(desired, live, &r.addr, c, &mut out);
        }
        if let Spec::LivekitOutboundTrunk(t) = &r.spec {
            super::outbound::live(desired, live, &r.spec, t, &mut out);
        }
    }
    if request.headers {
        for r in desired.resources.values() {
            super::headers::live(live, &r.spec, &mut out);
        }
    }
    let mut pending: Vec<Pending> = lines
        .pending
        .into_iter()
        .filter(|p| p.line.parse::<Address>().is_ok_and(|a| scope.covers(&[&a])))
        .collect();
    pending.append(&mut out.activating);
    Certification {
        checks: out.items,
        pending,
    }
}

/// Where results go: all of them, or failures only.
pub(super) struct Results {
    keep_passed: bool,
    items: Vec<CheckResult>,
    /// Applied lines the provider is still activating.
    pub(super) activating: Vec<Pending>,
}

impl Results {
    pub(super) fn push(&mut self, result: CheckResult) {
        if self.keep_passed || !result.passed {
            self.items.push(result);
        }
    }
}

/// Lookups every routed number needs, built once so that checking N lines stays linear.
pub(super) struct Index<'a> {
    /// Live Telnyx numbers by number (the first by id when several hold one).
    pub(super) telnyx_numbers: HashMap<&'a E164, &'a LiveObject>,
    pub(super) twilio_numbers: HashMap<&'a E164, &'a LiveObject>,
    /// Live inbound trunks holding each number, in id order.
    pub(super) trunks_by_number: HashMap<&'a E164, Vec<&'a LiveObject>>,
    /// The first live dispatch rule (by id) naming each trunk id.
    pub(super) rule_by_trunk: HashMap<&'a str, &'a LiveObject>,
    /// Live FQDN records by their connection id.
    pub(super) fqdns_by_connection: HashMap<&'a str, Vec<&'a LiveObject>>,
    /// The connection each declared number (an `auto` one: the number state pins) is bound to.
    pub(super) declared_connection: HashMap<E164, &'a Address>,
    /// Declared number resources by the number they own, of any provider
    /// ([`Desired::number_owners`], the planner's map too).
    pub(super) number_owners: BTreeMap<&'a E164, &'a Address>,
    /// The agents lines.toml names on each declared dispatch rule, by the rule's name: built
    /// once, so a check of every line stays linear in the number of lines.
    pub(super) declared_agents: HashMap<&'a str, Vec<&'a str>>,
}

impl<'a> Index<'a> {
    fn new(desired: &'a Desired, state: &State, live: &'a Live) -> Self {
        let mut ix = Index {
            telnyx_numbers: HashMap::new(),
            twilio_numbers: HashMap::new(),
            trunks_by_number: HashMap::new(),
            rule_by_trunk: HashMap::new(),
            fqdns_by_connection: HashMap::new(),
            declared_connection: HashMap::new(),
            number_owners: desired.number_owners(),
            declared_agents: HashMap::new(),
        };
        for o in live.objects.values() {
            ix.add_live(o);
        }
        for r in desired.resources.values() {
            if let Spec::LivekitDispatchRule(d) = &r.spec {
                ix.declared_agents
                    .entry(d.name.as_str())
                    .or_default()
                    .extend(d.agents.iter().map(|a| a.agent_name.as_str()));
            }
            let Spec::TelnyxNumber(n) = &r.spec else {
                continue;
            };
            let number = n
                .number
                .fixed()
                .cloned()
                .or_else(|| pinned_number(state, &r.addr));
            if let (Some(number), Some(addr)) = (number, n.connection.as_ref().and_then(Ref::addr))
            {
                ix.declared_connection.entry(number).or_insert(addr);
            }
        }
        ix
    }

    fn is_live(&self, number: &E164) -> bool {
        self.telnyx_numbers.contains_key(number) || self.twilio_numbers.contains_key(number)
    }

    fn add_live(&mut self, o: &'a LiveObject) {
        match &o.spec {
            Spec::TelnyxNumber(n) => {
                if let Some(number) = n.number.fixed() {
                    self.telnyx_numbers.entry(number).or_insert(o);
                }
            }
            Spec::TwilioNumber(t) => {
                self.twilio_numbers.entry(&t.number).or_insert(o);
            }
            Spec::LivekitInboundTrunk(s) => {
                for n in &s.numbers {
                    if let NumberRef::Number(n) = n {
                        let holders = self.trunks_by_number.entry(n).or_default();
                        if holders.last().is_none_or(|t| !std::ptr::eq(*t, o)) {
                            holders.push(o);
                        }
                    }
                }
            }
            Spec::LivekitDispatchRule(s) => {
                for t in s.trunks.iter().filter_map(Ref::id) {
                    self.rule_by_trunk.entry(t).or_insert(o);
                }
            }
            Spec::TelnyxFqdn(s) => {
                if let Some(c) = s.connection.id() {
                    self.fqdns_by_connection.entry(c).or_default().push(o);
                }
            }
            _ => {}
        }
    }
}

/// The number state pins for a number resource (an `auto` line once bought).
pub(super) fn pinned_number(state: &State, addr: &Address) -> Option<E164> {
    match state.get(addr).map(|r| &r.spec) {
        Some(Spec::TelnyxNumber(n)) => n.number.fixed().cloned(),
        Some(Spec::TwilioNumber(n)) => Some(n.number.clone()),
        _ => None,
    }
}

/// A line that must reach the agent: a number a declared inbound trunk holds.
struct Line<'a> {
    number: E164,
    /// The declared trunk holding it, and the number resource declaring it (if any).
    trunk: &'a Address,
    owner: Option<&'a Address>,
}

impl Line<'_> {
    fn addresses(&self) -> Vec<&Address> {
        std::iter::once(self.trunk).chain(self.owner).collect()
    }
}

/// Every line lines.toml routes, sorted into those to check, those not applied yet, and
/// those applied but impossible to check (each a failure, never a silent pass).
struct Lines<'a> {
    routed: Vec<Line<'a>>,
    pending: Vec<Pending>,
    uncheckable: Vec<(Address, String)>,
}

fn routed_lines<'a>(desired: &'a Desired, state: &State, index: &Index<'a>) -> Lines<'a> {
    let mut lines = Lines {
        routed: Vec::new(),
        pending: Vec::new(),
        uncheckable: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    for r in desired.resources.values() {
        let Spec::LivekitInboundTrunk(t) = &r.spec else {
            continue;
        };
        for n in &t.numbers {
            let (number, owner) = match n {
                NumberRef::Number(n) => (Some(n.clone()), index.number_owners.get(n).copied()),
                NumberRef::Of(a) => (pinned_number(state, a), desired.get(a).map(|d| &d.addr)),
            };
            let applied = owner.is_some_and(|a| state.get(a).is_some());
            match (number, owner) {
                (Some(number), owner) if applied || index.is_live(&number) || owner.is_none() => {
                    if seen.insert(number.clone()) {
                        lines.routed.push(Line {
                            number,
                            trunk: &r.addr,
                            owner,
                        });
                    }
                }
                (_, Some(owner)) if !applied => lines.pending.push(Pending {
                    line: owner.to_string(),
                    number: declared_number(desired, owner),
                    reason: "not applied yet: `cwa apply` buys and routes it; it is certified once state pins its number".into(),
                    activating: false,
                }),
                (_, owner) => {
                    let addr = owner.cloned().unwrap_or_else(|| r.addr.clone());
                    lines.uncheckable.push((
                        addr.clone(),
                        format!("{addr} is applied (state owns it) but state pins no number for it: it cannot be checked"),
                    ));
                }
            }
        }
    }
    lines.pending.sort_by(|a, b| a.line.cmp(&b.line));
    lines.pending.dedup();
    lines
}

/// The number a number resource declares, as a reader would write it.
fn declared_number(desired: &Desired, addr: &Address) -> String {
    match desired.get(addr).map(|r| &r.spec) {
        Some(Spec::TelnyxNumber(n)) => n.number.to_string(),
        Some(Spec::TwilioNumber(n)) => n.number.to_string(),
        _ => String::new(),
    }
}

/// Whether a live object is the declared one, by the natural key of its kind (a credential
/// connection: [`super::credential::same_identity`], as plan matching uses).
pub(super) fn same_name(live: &Spec, declared: &Spec) -> bool {
    match (live, declared) {
        (Spec::TelnyxFqdnConnection(l), Spec::TelnyxFqdnConnection(d)) => {
            l.connection_name == d.connection_name
        }
        (Spec::TelnyxCredentialConnection(l), Spec::TelnyxCredentialConnection(d)) => {
            super::credential::same_identity(d, l)
        }
        (Spec::TelnyxTexmlApplication(l), Spec::TelnyxTexmlApplication(d)) => {
            l.friendly_name == d.friendly_name
        }
        (Spec::LivekitOutboundTrunk(l), Spec::LivekitOutboundTrunk(d)) => l.name == d.name,
        _ => false,
    }
}
