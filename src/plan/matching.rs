//! Identity: which live object each address stands for. State ids come first; an address
//! with no state entry is matched by its natural key (the number, the trunk holding it, a
//! connection's name, a rule's trunks), so existing objects are adopted, never duplicated.

use std::collections::{BTreeMap, HashMap};

use crate::model::{Address, Kind, Live, LiveObject, NumberRef, Ref, Spec};

/// Two-way map between addresses and live ids.
#[derive(Debug, Clone, Default)]
pub struct Index {
    by_id: HashMap<String, Address>,
    by_addr: BTreeMap<Address, String>,
}

impl Index {
    /// Maps `addr` to `id`, forgetting the object `addr` stood for before.
    pub fn insert(&mut self, addr: Address, id: String) {
        if let Some(old) = self.by_addr.get(&addr) {
            if self.by_id.get(old) == Some(&addr) {
                self.by_id.remove(old);
            }
        }
        self.by_id.insert(id.clone(), addr.clone());
        self.by_addr.insert(addr, id);
    }

    /// Forgets what `addr` stood for (it is about to be created anew).
    pub fn forget(&mut self, addr: &Address) {
        if let Some(old) = self.by_addr.remove(addr) {
            if self.by_id.get(&old) == Some(addr) {
                self.by_id.remove(&old);
            }
        }
    }

    pub fn id(&self, addr: &Address) -> Option<&str> {
        self.by_addr.get(addr).map(String::as_str)
    }

    pub fn addr(&self, id: &str) -> Option<&Address> {
        self.by_id.get(id)
    }
}

/// The spec with every live-id reference the index knows replaced by its address.
pub fn to_addresses(spec: &Spec, index: &Index) -> Spec {
    let mut out = spec.clone();
    for r in out.refs_mut() {
        if let Ref::Id(id) = r {
            if let Some(addr) = index.addr(id) {
                *r = Ref::Addr(addr.clone());
            }
        }
    }
    normalize(&mut out);
    out
}

/// The spec with every address reference the index knows replaced by its live id.
pub fn to_ids(spec: &Spec, index: &Index) -> Spec {
    let mut out = spec.clone();
    for r in out.refs_mut() {
        if let Ref::Addr(addr) = r {
            if let Some(id) = index.id(addr) {
                *r = Ref::Id(id.to_string());
            }
        }
    }
    out
}

/// Lists whose order means nothing (a trunk's numbers, a rule's trunks, whitelisted
/// countries) are sorted so that order never shows as a diff.
pub fn normalize(spec: &mut Spec) {
    match spec {
        Spec::LivekitDispatchRule(rule) => rule.trunks.sort(),
        Spec::LivekitInboundTrunk(t) => {
            t.numbers.sort();
            t.allowed_addresses.sort();
            t.allowed_numbers.sort();
        }
        Spec::LivekitOutboundTrunk(t) => t.numbers.sort(),
        Spec::TelnyxOutboundVoiceProfile(p) => p.whitelisted_destinations.sort(),
        _ => {}
    }
}

/// Whether a declared spec and a live object are different objects whatever state says: a
/// number resource is the number itself, an inbound trunk is the numbers it holds, a dispatch
/// rule the trunks it serves. When a line's number moves to another church, its trunk and
/// rule follow it instead of being torn down and rebuilt. `declared` has references as ids.
pub fn identity_differs(declared: &Spec, live: &Spec) -> bool {
    let disjoint = |a: &[NumberRef], b: &[NumberRef]| {
        let fixed: Vec<&NumberRef> = a
            .iter()
            .filter(|n| matches!(n, NumberRef::Number(_)))
            .collect();
        !fixed.is_empty() && !b.is_empty() && !fixed.iter().any(|n| b.contains(n))
    };
    match (declared, live) {
        (Spec::LivekitInboundTrunk(d), Spec::LivekitInboundTrunk(l)) => {
            disjoint(&d.numbers, &l.numbers)
        }
        (Spec::LivekitDispatchRule(d), Spec::LivekitDispatchRule(l)) => {
            !d.trunks.is_empty()
                && !l.trunks.is_empty()
                && !d.trunks.iter().any(|t| l.trunks.contains(t))
        }
        (Spec::TelnyxNumber(d), Spec::TelnyxNumber(l)) => {
            d.number.fixed().is_some() && d.number.fixed() != l.number.fixed()
        }
        (Spec::TwilioNumber(d), Spec::TwilioNumber(l)) => d.number != l.number,
        // An address has no update (spec3.yml has no PATCH /addresses/{id}): a changed one is
        // another address, created before the old one is deleted (plan_displaced).
        (Spec::TelnyxEmergencyAddress(d), Spec::TelnyxEmergencyAddress(l)) => d != l,
        _ => false,
    }
}

/// Live objects by their natural keys, so matching thousands of declarations stays linear.
#[derive(Debug, Default)]
pub struct NaturalIndex {
    by_key: HashMap<(Kind, String), Vec<String>>,
    /// Telnyx numbers by the `customer_reference` of the order that bought them.
    by_reference: HashMap<String, String>,
}

impl NaturalIndex {
    pub fn build(live: &Live) -> Self {
        let mut index = Self::default();
        for obj in live.objects.values() {
            if let Some(reference) = obj.extra.get("customer_reference") {
                index.by_reference.insert(reference.clone(), obj.id.clone());
            }
            for key in natural_keys(&obj.spec) {
                index
                    .by_key
                    .entry((obj.kind(), key))
                    .or_default()
                    .push(obj.id.clone());
            }
        }
        index
    }

    /// The live object created with this idempotency reference (an `auto` number bought by
    /// a run whose answer, journal or state was lost), if any.
    pub fn by_reference(&self, reference: &str) -> Option<&str> {
        self.by_reference.get(reference).map(String::as_str)
    }

    fn candidates(&self, kind: Kind, keys: &[String]) -> Vec<&str> {
        let mut ids: Vec<&str> = keys
            .iter()
            .filter_map(|k| self.by_key.get(&(kind, k.clone())))
            .flatten()
            .map(String::as_str)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Keys under which an object can be found: every object that matches a wanted spec shares at
/// least one key with it (the precise test is [`same_natural_key`]).
fn natural_keys(spec: &Spec) -> Vec<String> {
    let numbers = |v: &[NumberRef]| -> Vec<String> {
        v.iter()
            .filter_map(|n| match n {
                NumberRef::Number(n) => Some(format!("number:{n}")),
                NumberRef::Of(_) => None,
            })
            .collect()
    };
    match spec {
        Spec::TelnyxNumber(s) => s
            .number
            .fixed()
            .map(|n| format!("number:{n}"))
            .into_iter()
            .collect(),
        Spec::TwilioNumber(s) => vec![format!("number:{}", s.number)],
        Spec::TelnyxEmergencyAddress(s) => vec![format!(
            "address:{}|{}",
            s.street_address.to_lowercase(),
            s.postal_code
        )],
        Spec::LivekitInboundTrunk(s) => numbers(&s.numbers),
        Spec::LivekitOutboundTrunk(s) => {
            let mut keys = numbers(&s.numbers);
            keys.push(format!("name:{}", s.name));
            keys
        }
        Spec::LivekitDispatchRule(s) => s
            .trunks
            .iter()
            .filter_map(|t| t.id().map(|id| format!("trunk:{id}")))
            .collect(),
        _ => vec!["all".to_string()],
    }
}

/// Finds the live object a declared resource already is, by natural key, among the objects
/// `free` allows (not claimed by a declared address). `wanted` has references translated to
/// ids where known.
pub fn natural_match<'a>(
    wanted: &Spec,
    live: &'a Live,
    natural: &NaturalIndex,
    free: &dyn Fn(&str) -> bool,
) -> Option<&'a LiveObject> {
    let kind = wanted.kind();
    natural
        .candidates(kind, &natural_keys(wanted))
        .into_iter()
        .filter(|id| free(id))
        .filter_map(|id| live.get(kind, id))
        .find(|o| same_natural_key(wanted, &o.spec))
}

fn same_natural_key(wanted: &Spec, live: &Spec) -> bool {
    match (wanted, live) {
        (Spec::TelnyxNumber(w), Spec::TelnyxNumber(l)) => {
            w.number.fixed().is_some() && w.number.fixed() == l.number.fixed()
        }
        (Spec::TelnyxFqdnConnection(w), Spec::TelnyxFqdnConnection(l)) => {
            w.connection_name == l.connection_name
        }
        (Spec::TelnyxCredentialConnection(w), Spec::TelnyxCredentialConnection(l)) => {
            crate::checks::credential::same_identity(w, l)
        }
        (Spec::TelnyxFqdn(w), Spec::TelnyxFqdn(l)) => {
            w.fqdn == l.fqdn && w.port == l.port && refs_compatible(&w.connection, &l.connection)
        }
        (Spec::TelnyxOutboundVoiceProfile(w), Spec::TelnyxOutboundVoiceProfile(l)) => {
            w.name == l.name
        }
        (Spec::TelnyxTexmlApplication(w), Spec::TelnyxTexmlApplication(l)) => {
            w.friendly_name == l.friendly_name
        }
        (Spec::LivekitInboundTrunk(w), Spec::LivekitInboundTrunk(l)) => {
            shares_number(&w.numbers, &l.numbers)
        }
        (Spec::LivekitOutboundTrunk(w), Spec::LivekitOutboundTrunk(l)) => {
            w.name == l.name || shares_number(&w.numbers, &l.numbers)
        }
        (Spec::LivekitDispatchRule(w), Spec::LivekitDispatchRule(l)) => {
            let ids = |v: &[Ref]| {
                let mut ids: Vec<String> = v
                    .iter()
                    .filter_map(|r| r.id().map(str::to_string))
                    .collect();
                ids.sort();
                ids
            };
            let wanted_ids = ids(&w.trunks);
            // A rule whose trunk is not live yet is a new rule: matching it by name would
            // leave the old rule on the old trunk, which another line may be taking over.
            let resolved = !w.trunks.is_empty() && wanted_ids.len() == w.trunks.len();
            resolved && wanted_ids == ids(&l.trunks)
        }
        (Spec::TwilioNumber(w), Spec::TwilioNumber(l)) => w.number == l.number,
        // Every field of an address is its identity: only the same address is adopted.
        (Spec::TelnyxEmergencyAddress(w), Spec::TelnyxEmergencyAddress(l)) => w == l,
        // Origination-only trunks have no domain: their name tells them apart.
        (Spec::TwilioTrunk(w), Spec::TwilioTrunk(l)) => {
            w.domain_name == l.domain_name
                && (!w.domain_name.is_empty() || w.friendly_name == l.friendly_name)
        }
        (Spec::TwilioTrunkNumber(w), Spec::TwilioTrunkNumber(l)) => {
            refs_compatible(&w.trunk, &l.trunk) && refs_compatible(&w.number, &l.number)
        }
        _ => false,
    }
}

/// A reference still written as an address (its target not live yet) cannot rule a match out
/// or in; two ids must be equal.
fn refs_compatible(wanted: &Ref, live: &Ref) -> bool {
    match (wanted, live) {
        (Ref::Id(a), Ref::Id(b)) => a == b,
        _ => false,
    }
}

fn shares_number(wanted: &[NumberRef], live: &[NumberRef]) -> bool {
    wanted
        .iter()
        .any(|w| matches!(w, NumberRef::Number(_)) && live.contains(w))
}
