//! desired × state × live → plan.

use std::collections::{BTreeMap, HashSet};

use super::fields::{self, FieldChange};
use super::matching::{self, Index};
use super::{
    graph, numbers, safety, targets, Action, Change, Finding, Fingerprints, Found, Plan, Reason,
    Severity, Unmanaged,
};
use crate::model::{
    Address, Desired, DesiredResource, Kind, Live, LiveObject, NumberRef, NumberSpec, ProviderName,
    SecretRef, Spec,
};
use crate::state::State;

/// Choices the user makes on the command line.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub allow_mass_change: bool,
    pub release_numbers: bool,
    /// Limit the plan to these addresses and what they depend on.
    pub targets: Vec<Address>,
}

/// Everything a plan is computed from.
pub struct PlanInput<'a> {
    pub desired: &'a Desired,
    pub state: &'a State,
    pub live: &'a Live,
    /// Whether `live` came from the providers (false: it is state itself).
    pub refreshed: bool,
    pub config_fingerprint: String,
    pub options: PlanOptions,
    /// Where the values of secrets named in lines.toml come from, to compare fingerprints.
    pub secrets: &'a crate::model::SecretSource,
}

/// Computes the plan. Pure: reads its inputs and the environment variables that name secrets
/// (to compare fingerprints), never prints, never calls a provider.
pub fn compute(input: &PlanInput<'_>) -> Plan {
    let mut planner = Planner::new(input);
    planner.plan_declared();
    planner.plan_undeclared();
    planner.find_unmanaged();
    planner.guard_protected();
    let reserved = super::twilio_domains::warnings(&planner.changes, input.state, input.live);
    planner.checks.extend(reserved);
    let foreign = super::lineage::warnings(&planner.changes, input.state, input.live);
    planner.checks.extend(foreign);
    planner.finish()
}

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    index: Index,
    changes: Vec<Change>,
    errors: Vec<Finding>,
    checks: Vec<Finding>,
    unmanaged: Vec<Unmanaged>,
    protected: BTreeMap<String, String>,
    /// The hard lock on `protected`, taught what live holds.
    lock: crate::protection::Lock,
    natural: matching::NaturalIndex,
    /// Declared numbers of every provider by their number (`Desired::number_owners`).
    number_owners: BTreeMap<&'a crate::model::E164, &'a Address>,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput<'a>) -> Self {
        let mut index = Index::default();
        for (addr, r) in input.state.owned() {
            if input.live.get(r.kind(), &r.id).is_some() || !provider_read(input, addr.kind) {
                index.insert(addr, r.id.clone());
            }
        }
        let protected = crate::protection::entries(input.desired, input.state);
        let mut lock = crate::protection::Lock::new(protected.keys());
        lock.learn(input.live.objects.values());
        Self {
            input,
            index,
            changes: Vec::new(),
            errors: Vec::new(),
            checks: Vec::new(),
            unmanaged: Vec::new(),
            protected,
            lock,
            natural: matching::NaturalIndex::build(input.live),
            number_owners: input.desired.number_owners(),
        }
    }

    fn desired(&self) -> &'a Desired {
        self.input.desired
    }

    /// A resource's dependencies, plus the number resources whose literal numbers a trunk
    /// holds (so a number is bought and bound before the trunk that serves it).
    fn dependencies(&self, resource: &DesiredResource) -> Vec<Address> {
        let mut deps = resource.dependencies();
        for n in resource.spec.number_refs() {
            if let NumberRef::Number(number) = n {
                deps.extend(self.number_owners.get(number).map(|a| (*a).clone()));
            }
        }
        deps.sort();
        deps.dedup();
        deps
    }

    /// Declared resources, in an order where references are matched before their users.
    fn plan_declared(&mut self) {
        let mut declared: Vec<&DesiredResource> = self.desired().resources.values().collect();
        declared.sort_by_key(|r| (r.addr.kind.rank(), r.addr.clone()));
        let mut taken = HashSet::new();
        for resource in declared {
            let change = self.plan_one(resource, &mut taken);
            self.changes.push(change);
        }
        self.plan_displaced();
    }

    /// Objects whose declaration now names another object (a line's new number, the trunk
    /// and rule of a number that moved): a number is kept under a `_retired_` address, never
    /// released; anything else is removed once its replacement is in place.
    fn plan_displaced(&mut self) {
        let claimed: HashSet<String> = self.changes.iter().filter_map(|c| c.id.clone()).collect();
        let displaced: Vec<(Address, Address, crate::state::StateResource)> = self
            .input
            .state
            .owned()
            .filter(|(addr, r)| {
                self.desired().get(addr).is_some()
                    && !claimed.contains(&r.id)
                    && self.input.live.get(r.kind(), &r.id).is_some()
            })
            .map(|(addr, r)| {
                let is_number = matches!(addr.kind, Kind::TelnyxNumber | Kind::TwilioNumber);
                let tag: String = if is_number {
                    format!(
                        "retired_{}",
                        r.spec
                            .label()
                            .chars()
                            .filter(char::is_ascii_digit)
                            .collect::<String>()
                    )
                } else {
                    format!("replaced_{}", r.id)
                };
                (
                    Address::new(addr.kind, format!("{}_{tag}", addr.name)),
                    addr,
                    r.clone(),
                )
            })
            .collect();
        for (new, _, r) in &displaced {
            self.index.insert(new.clone(), r.id.clone());
        }
        self.name_displaced_addresses(&displaced);
        for (address, from, r) in displaced {
            let is_number = matches!(address.kind, Kind::TelnyxNumber | Kind::TwilioNumber);
            let live = self
                .input
                .live
                .get(r.kind(), &r.id)
                .map(|o| matching::to_addresses(&o.spec, &self.index));
            let users = if address.kind == Kind::TelnyxEmergencyAddress {
                self.address_users(&r.id)
            } else {
                Vec::new()
            };
            let (action, reason) = if is_number {
                (Action::Retain, Reason::Retired { from: from.clone() })
            } else if !users.is_empty() {
                // A retired number keeps its emergency service, and so its address.
                (Action::Retain, Reason::AddressInUse { numbers: users })
            } else {
                (Action::Delete, Reason::Superseded { from: from.clone() })
            };
            self.changes.push(Change {
                protected: self.is_protected(&r.id, &r.spec),
                address,
                kind: from.kind,
                action,
                id: Some(r.id.clone()),
                church: r.church.clone(),
                irreversible: false,
                reason,
                fields: Vec::new(),
                before: live,
                after: None,
                depends_on: Vec::new(),
                monthly_cost_delta_cents: 0,
                displaced_from: Some(from),
            });
        }
    }

    /// A number planned before its E911 address was displaced (issue 21) still names the old
    /// address by its live id: named by its `_replaced_` address instead, the number's change
    /// shows what it switches from, and the old address's removal waits for it (the change
    /// graph orders a removal after every change whose `before` refers to it), so Telnyx never
    /// sees the old address deleted while a number still uses it.
    fn name_displaced_addresses(
        &mut self,
        displaced: &[(Address, Address, crate::state::StateResource)],
    ) {
        if !displaced
            .iter()
            .any(|(a, _, _)| a.kind == Kind::TelnyxEmergencyAddress)
        {
            return;
        }
        for change in &mut self.changes {
            let (Some(before), Some(after)) = (&change.before, &change.after) else {
                continue;
            };
            if before.kind() != Kind::TelnyxNumber {
                continue;
            }
            let named = matching::to_addresses(before, &self.index);
            if &named != before {
                change.fields = fields::diff(&named, after);
                change.before = Some(named);
            }
        }
    }

    fn plan_one(&mut self, resource: &DesiredResource, taken: &mut HashSet<String>) -> Change {
        let after = self.resolve_desired(resource);
        let (live, found) = self.find_live(resource, &after, taken);
        let Some(live) = live else {
            self.index.forget(&resource.addr);
            return self.create_change(resource, after, found);
        };
        taken.insert(live.id.clone());
        let adopted = self.index.id(&resource.addr) != Some(live.id.as_str());
        self.index.insert(resource.addr.clone(), live.id.clone());
        let before = matching::to_addresses(&live.spec, &self.index);
        self.errors
            .extend(numbers::area_code_moved(resource, &after, &before));
        let after = pin_auto_number(after, &before);
        let changed = fields::diff(&before, &after);
        let protected = self.is_protected(&live.id, &before);
        let action = self.existing_action(resource, adopted, protected, &changed);
        let reason = match self.owned_elsewhere(action, &live.id, &resource.addr) {
            Some(from) => Reason::OwnedAs {
                from,
                to: resource.addr.clone(),
            },
            None => existing_reason(action, resource.addr.kind, protected, &changed, found),
        };
        if resource.read_only && !changed.is_empty() {
            self.checks.push(read_only_drift(resource, &changed));
        }
        self.checks
            .extend(crate::checks::emergency::provisioning_note(
                &resource.addr,
                &resource.spec,
                live,
            ));
        Change {
            address: resource.addr.clone(),
            kind: resource.addr.kind,
            action,
            id: Some(live.id.clone()),
            church: resource.church.clone(),
            protected,
            irreversible: false,
            reason,
            fields: changed,
            before: Some(before),
            after: Some(after),
            depends_on: self.dependencies(resource),
            monthly_cost_delta_cents: 0,
            displaced_from: None,
        }
    }

    /// The address state owns an adopted object under, when it is not this one: such an
    /// object is not new to state, it moves.
    fn owned_elsewhere(&self, action: Action, id: &str, addr: &Address) -> Option<Address> {
        if action != Action::Adopt {
            return None;
        }
        self.input
            .state
            .owned()
            .find(|(a, r)| r.id == id && a != addr)
            .map(|(a, _)| a)
    }

    fn existing_action(
        &self,
        resource: &DesiredResource,
        adopted: bool,
        protected: bool,
        changed: &[FieldChange],
    ) -> Action {
        let kind = resource.addr.kind;
        if protected || resource.read_only {
            Action::Verify
        } else if changed
            .iter()
            .any(|c| fields::requires_replace(kind, &c.path))
        {
            Action::Replace
        } else if adopted {
            Action::Adopt
        } else if changed.is_empty() {
            Action::NoOp
        } else {
            Action::Update
        }
    }

    fn create_change(&mut self, resource: &DesiredResource, after: Spec, found: Lookup) -> Change {
        let kind = resource.addr.kind;
        if resource.read_only {
            self.errors.push(Finding {
                severity: Severity::Error,
                code: "read-only-create".into(),
                message: format!(
                    "{} is not live, and cwa may not create it: {} is read-only by policy",
                    resource.addr,
                    kind.provider()
                ),
                address: Some(resource.addr.to_string()),
                help: Some(
                    "declare the object as it is live, or allow writes in [policy] of lines.toml"
                        .into(),
                ),
                span: Some(resource.span),
            });
        }
        let number = match &after {
            Spec::TelnyxNumber(n) => n.number.fixed().cloned(),
            Spec::TwilioNumber(n) => Some(n.number.clone()),
            _ => None,
        };
        let cost = match kind {
            Kind::TelnyxNumber | Kind::TwilioNumber => kind.monthly_cost_cents(number.as_ref()),
            _ => 0,
        };
        Change {
            address: resource.addr.clone(),
            kind,
            action: if resource.read_only {
                Action::Verify
            } else {
                Action::Create
            },
            id: None,
            church: resource.church.clone(),
            protected: false,
            irreversible: false,
            reason: match found {
                Lookup::Gone { id, provider } => Reason::OwnedButGone { id, provider },
                _ => Reason::NotLive,
            },
            fields: Vec::new(),
            before: None,
            after: Some(after),
            depends_on: self.dependencies(resource),
            monthly_cost_delta_cents: cost,
            displaced_from: None,
        }
    }

    /// The live object behind a declared address: by state id, else by natural key.
    fn find_live(
        &self,
        resource: &DesiredResource,
        after: &Spec,
        taken: &HashSet<String>,
    ) -> (Option<&'a LiveObject>, Lookup) {
        let live = self.input.live;
        if let Some(r) = self.input.state.get(&resource.addr) {
            match live.get(r.kind(), &r.id) {
                Some(obj)
                    if !matching::identity_differs(
                        &matching::to_ids(after, &self.index),
                        &obj.spec,
                    ) =>
                {
                    return (Some(obj), Lookup::InState);
                }
                Some(_) => {}
                None if provider_read(self.input, resource.addr.kind) => {
                    return (
                        None,
                        Lookup::Gone {
                            id: r.id.clone(),
                            provider: resource.addr.kind.provider(),
                        },
                    );
                }
                None => {}
            }
        }
        let wanted = matching::to_ids(after, &self.index);
        let free = |id: &str| {
            !taken.contains(id)
                && self.index.addr(id).is_none_or(|owner| {
                    self.desired().get(owner).is_none_or(|declared| {
                        let declared =
                            matching::to_ids(&self.resolve_desired(declared), &self.index);
                        live.get(owner.kind, id)
                            .is_some_and(|o| matching::identity_differs(&declared, &o.spec))
                    })
                })
        };
        let lost_order = |o: &&LiveObject| {
            self.index.addr(&o.id).is_none() && !matching::identity_differs(&wanted, &o.spec)
        };
        if let Some(obj) = self
            .bought_earlier(&resource.addr)
            .filter(lost_order)
            .filter(|o| free(&o.id))
        {
            return (Some(obj), Lookup::Found(Found::EarlierRun));
        }
        match matching::natural_match(&wanted, live, &self.natural, &free) {
            Some(obj) => match self.index.addr(&obj.id) {
                Some(old) => (
                    Some(obj),
                    Lookup::Found(Found::MovedFrom { from: old.clone() }),
                ),
                None => (Some(obj), Lookup::Found(Found::NaturalKey)),
            },
            None => (None, Lookup::NotLive),
        }
    }

    /// The declared spec with numbers of bought `auto` numbers filled in and secrets reduced
    /// to fingerprints, ready to compare with live.
    fn resolve_desired(&self, resource: &DesiredResource) -> Spec {
        let mut spec = resource.spec.clone();
        for n in spec.number_refs_mut() {
            if let NumberRef::Of(addr) = n {
                if let Some(number) = self.known_number(addr) {
                    *n = NumberRef::Number(number);
                }
            }
        }
        // Without refresh, live is state, whose fingerprints are bound to their address under
        // a key such a plan need not have: secrets stay unknown there and never differ.
        for secret in spec
            .secrets_mut()
            .into_iter()
            .filter(|_| self.input.refreshed)
        {
            if let Ok(SecretRef::Value(v)) = self.input.secrets.resolve(secret) {
                *secret = SecretRef::Fingerprint(v.fingerprint());
            }
        }
        matching::normalize(&mut spec);
        spec
    }

    /// A number an earlier run of this state ordered for `addr` (killed before it saved state,
    /// on this machine or another): found by the order's `customer_reference`, which derives
    /// from the lineage and the address alone.
    fn bought_earlier(&self, addr: &Address) -> Option<&'a LiveObject> {
        if addr.kind != Kind::TelnyxNumber || self.input.state.get(addr).is_some() {
            return None;
        }
        let reference =
            crate::providers::create_reference(&self.input.state.lineage, &addr.to_string(), None);
        let id = self.natural.by_reference(&reference)?;
        self.input.live.get(Kind::TelnyxNumber, id)
    }

    fn known_number(&self, addr: &Address) -> Option<crate::model::E164> {
        let declared = self.desired().get(addr).and_then(|r| match &r.spec {
            Spec::TelnyxNumber(n) => n.number.fixed().cloned(),
            _ => None,
        });
        let owned = || match self.input.state.get(addr).map(|r| &r.spec) {
            Some(Spec::TelnyxNumber(n)) => n.number.fixed().cloned(),
            _ => None,
        };
        let bought = || match self.bought_earlier(addr).map(|o| &o.spec) {
            Some(Spec::TelnyxNumber(n)) => n.number.fixed().cloned(),
            _ => None,
        };
        declared.or_else(owned).or_else(bought)
    }

    /// Owned addresses lines.toml no longer declares.
    fn plan_undeclared(&mut self) {
        let owned: Vec<(Address, crate::state::StateResource)> = self
            .input
            .state
            .owned()
            .filter(|(a, _)| self.desired().get(a).is_none())
            .map(|(a, r)| (a, r.clone()))
            .collect();
        for (addr, owned) in owned {
            let change = self.plan_removal(&addr, &owned);
            self.changes.push(change);
        }
    }

    fn plan_removal(&mut self, addr: &Address, owned: &crate::state::StateResource) -> Change {
        let live = self.input.live.get(owned.kind(), &owned.id);
        let before = live.map(|o| matching::to_addresses(&o.spec, &self.index));
        let protected = self.is_protected(&owned.id, &owned.spec);
        let is_number = addr.kind == Kind::TelnyxNumber || addr.kind == Kind::TwilioNumber;
        let read_only =
            addr.kind.provider() == ProviderName::Twilio && !self.desired().policy.twilio_writes;
        let moved_to = self.index.addr(&owned.id).filter(|a| *a != addr).cloned();
        let (action, reason) = match live {
            _ if moved_to.is_some() => (
                Action::Forget,
                Reason::MovedTo {
                    to: moved_to.unwrap_or_else(|| addr.clone()),
                },
            ),
            None => (Action::Forget, Reason::GoneFromLive),
            Some(_) if read_only => (Action::Forget, Reason::ReadOnlyUndeclared),
            Some(o)
                if is_number
                    && o.extra
                        .get("deletion_lock_enabled")
                        .is_some_and(|v| v == "true") =>
            {
                (Action::Retain, Reason::KeptLocked)
            }
            Some(_) if is_number && !self.input.options.release_numbers => {
                (Action::Retain, Reason::KeptNumber)
            }
            Some(_) if addr.kind == Kind::TelnyxEmergencyAddress => {
                match self.address_users(&owned.id) {
                    numbers if numbers.is_empty() => (Action::Delete, Reason::NotDeclared),
                    numbers => (Action::Retain, Reason::AddressInUse { numbers }),
                }
            }
            Some(_) => (Action::Delete, Reason::NotDeclared),
        };
        let number = match &owned.spec {
            Spec::TelnyxNumber(n) => n.number.fixed().cloned(),
            Spec::TwilioNumber(n) => Some(n.number.clone()),
            _ => None,
        };
        let park = self.desired().policy.park.as_ref();
        let parked = matches!(reason, Reason::KeptNumber | Reason::KeptLocked)
            .then(|| before.as_ref().and_then(|b| numbers::parked(b, park)))
            .flatten()
            .filter(|_| !protected);
        if let (Some(after), Some(at)) = (parked, park) {
            return self.park_change(addr, owned, before, after, at.clone());
        }
        let cost = if action == Action::Delete && is_number {
            -addr.kind.monthly_cost_cents(number.as_ref())
        } else {
            0
        };
        Change {
            address: addr.clone(),
            kind: addr.kind,
            action,
            id: Some(owned.id.clone()),
            church: owned.church.clone(),
            protected,
            irreversible: action == Action::Delete && is_number,
            reason,
            fields: Vec::new(),
            before,
            after: None,
            depends_on: Vec::new(),
            monthly_cost_delta_cents: cost,
            displaced_from: None,
        }
    }

    /// The live numbers whose emergency service will still use address `id` after this plan:
    /// those that name it and are neither released nor switched to another address by a
    /// change planned already (numbers are planned before addresses: lower rank, and
    /// `telnyx_number` sorts before `telnyx_emergency_address`).
    fn address_users(&self, id: &str) -> Vec<String> {
        let uses = |spec: &Spec| match spec {
            Spec::TelnyxNumber(n) => n.settings.emergency_address.as_ref().is_some_and(|r| {
                r.id() == Some(id) || r.addr().and_then(|a| self.index.id(a)) == Some(id)
            }),
            _ => false,
        };
        self.input
            .live
            .of_kind(Kind::TelnyxNumber)
            .filter(|o| uses(&o.spec))
            .filter(|o| {
                match self.changes.iter().find(|c| c.id.as_deref() == Some(o.id.as_str())) {
                    Some(c) if c.action == Action::Delete => false,
                    Some(c) => c.after.as_ref().is_none_or(|a| {
                        !matches!(a, Spec::TelnyxNumber(n) if n.settings.emergency_address.is_some())
                            || uses(&matching::to_ids(a, &self.index))
                    }),
                    None => true,
                }
            })
            .map(|o| o.spec.label())
            .collect()
    }

    /// A kept number moved to the park target (an update of its connection only).
    fn park_change(
        &self,
        addr: &Address,
        owned: &crate::state::StateResource,
        before: Option<Spec>,
        after: Spec,
        at: Address,
    ) -> Change {
        let changed = before
            .as_ref()
            .map(|b| fields::diff(b, &after))
            .unwrap_or_default();
        Change {
            address: addr.clone(),
            kind: addr.kind,
            action: Action::Update,
            id: Some(owned.id.clone()),
            church: owned.church.clone(),
            protected: false,
            irreversible: false,
            reason: Reason::Parked { at: at.clone() },
            fields: changed,
            before,
            after: Some(after),
            depends_on: vec![at],
            monthly_cost_delta_cents: 0,
            displaced_from: None,
        }
    }

    fn find_unmanaged(&mut self) {
        let policy = &self.desired().policy;
        let claimed: HashSet<&str> = self
            .changes
            .iter()
            .filter_map(|c| c.id.as_deref())
            .collect();
        let unmanaged: Vec<Unmanaged> = self
            .input
            .live
            .objects
            .values()
            .filter(|o| !claimed.contains(o.id.as_str()))
            .map(|o| Unmanaged::new(o.kind(), o.id.clone(), o.spec.label(), policy))
            .collect();
        self.unmanaged = unmanaged;
    }

    fn is_protected(&self, id: &str, spec: &Spec) -> bool {
        self.protected.contains_key(id)
            || match spec {
                Spec::TelnyxNumber(n) => n
                    .number
                    .fixed()
                    .is_some_and(|n| self.protected.contains_key(n.as_str())),
                Spec::TwilioNumber(n) => self.protected.contains_key(n.number.as_str()),
                _ => false,
            }
    }

    /// Any write that touches a protected object, directly or through what points at it, is an
    /// error that names the line of lines.toml responsible; so is a protected entry that
    /// matches nothing live.
    fn guard_protected(&mut self) {
        let mut errors: Vec<Finding> = self
            .changes
            .iter()
            .filter_map(|change| self.protected_violation(change))
            .collect();
        if self.input.refreshed {
            errors.extend(self.unmatched_protected_ids());
        }
        self.errors.extend(errors);
    }

    fn protected_violation(&self, change: &Change) -> Option<Finding> {
        let id = change.id.clone().unwrap_or_default();
        let message = if change.protected && !change.fields.is_empty() {
            Some(format!(
                "lines.toml declares {} differently from the protected object {id} ({}); applying would write to it",
                change.address,
                change
                    .fields
                    .iter()
                    .map(|f| f.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else if change.protected && change.action == Action::Delete {
            Some(format!(
                "{} ({id}) is protected and would be deleted",
                change.address
            ))
        } else {
            self.lock_violation(change)
        }?;
        Some(Finding {
            severity: Severity::Error,
            code: "protected-write".into(),
            message,
            address: Some(change.address.to_string()),
            help: Some(format!(
                "protected ids are hard-locked ({}); declare the object exactly as it is live, or leave it out",
                self.lock.ids().collect::<Vec<_>>().join(", ")
            )),
            span: self.span_for(change, &id),
        })
    }

    /// What the one protection check says about the writes this change would make.
    fn lock_violation(&self, change: &Change) -> Option<String> {
        let after = change
            .after
            .as_ref()
            .map(|a| matching::to_ids(a, &self.index));
        let writes = crate::protection::writes(change, after.as_ref());
        writes
            .iter()
            .find_map(|w| self.lock.check(w).err())
            .map(|v| format!("{}: {}", change.address, v.detail))
    }

    /// Protected entries that match no live object exactly: an error each, with the near
    /// misses (case, lookalike characters, an address given instead of an id) as help.
    fn unmatched_protected_ids(&self) -> Vec<Finding> {
        let live = self.input.live;
        let candidates: Vec<String> = live
            .objects
            .values()
            .flat_map(|o| [o.id.clone(), o.spec.label()])
            .collect();
        self.desired()
            .protected
            .iter()
            .filter(|p| !self.lock.is_placed(p.id.trim()))
            .map(|p| {
                let entry = p.id.trim();
                let mut near =
                    crate::protection::near_misses(entry, candidates.iter().map(String::as_str));
                if let Some(id) = entry.parse::<Address>().ok().and_then(|a| self.index.id(&a)) {
                    near.insert(0, format!("{id} (the live id of the address {entry})"));
                }
                let unread: Vec<&str> = ProviderName::ALL
                    .iter()
                    .filter(|n| !live.was_refreshed(**n))
                    .map(|n| n.as_str())
                    .collect();
                Finding {
                    severity: Severity::Error,
                    code: "protected-unknown".into(),
                    message: format!(
                        "the protected id `{entry}` matches no live object{}",
                        if unread.is_empty() {
                            String::new()
                        } else {
                            format!(" (not read: {})", unread.join(", "))
                        }
                    ),
                    address: None,
                    help: Some(if near.is_empty() {
                        "a protected id must be a live id (or number) exactly as the provider reports it; nothing live is close".to_string()
                    } else {
                        format!(
                            "near misses are never matched; did you mean {}? Write the id exactly as live reports it",
                            near.join(" or ")
                        )
                    }),
                    span: p.span,
                }
            })
            .collect()
    }

    fn span_for(&self, change: &Change, id: &str) -> Option<crate::model::SourceSpan> {
        self.desired()
            .get(&change.address)
            .map(|r| r.span)
            .or_else(|| {
                self.desired()
                    .protected
                    .iter()
                    .find(|p| p.id.trim() == id)
                    .and_then(|p| p.span)
            })
    }

    fn finish(self) -> Plan {
        let Planner {
            input,
            mut changes,
            mut errors,
            mut checks,
            unmanaged,
            ..
        } = self;
        let left_out;
        (changes, left_out) = targets::restrict(changes, &input.options.targets, input.desired);
        checks.extend(targets::warning(&input.options.targets, left_out));
        errors.extend(targets::dependency_refusals(
            &changes,
            &input.options.targets,
        ));
        errors.extend(safety::mass_change(
            &changes,
            input.state,
            input.desired,
            &input.options,
        ));
        let (changes, edges) = match graph::order(changes) {
            Ok(ordered) => ordered,
            Err((changes, cycle)) => {
                errors.push(Finding {
                    severity: Severity::Error,
                    code: "cycle".into(),
                    message: cycle.to_string(),
                    address: cycle.members.first().map(ToString::to_string),
                    help: Some("remove one of the depends_on or references between them".into()),
                    span: None,
                });
                (changes, Vec::new())
            }
        };
        let mut summary = BTreeMap::new();
        for tally in changes.iter().flat_map(super::Tally::of) {
            *summary.entry(tally).or_insert(0) += 1;
        }
        let fingerprints = Fingerprints {
            config: input.config_fingerprint.clone(),
            state: input.state.fingerprint(),
            live: input
                .live
                .objects
                .values()
                .map(|o| (format!("{}/{}", o.kind(), o.id), o.fingerprint()))
                .collect(),
        };
        Plan {
            format_version: super::FORMAT_VERSION.to_string(),
            refreshed: input.refreshed,
            monthly_cost_delta_cents: changes.iter().map(|c| c.monthly_cost_delta_cents).sum(),
            changes,
            edges,
            unmanaged,
            checks,
            errors,
            unprotect: crate::protection::unprotect_entries(input.desired, input.state),
            summary,
            fingerprints,
        }
    }
}

/// Whether the plan read this kind's provider (false: its objects are unknown, not absent).
fn provider_read(input: &PlanInput<'_>, kind: Kind) -> bool {
    input.live.was_refreshed(kind.provider())
}

/// An `auto` number that is already bought compares as the number it became.
fn pin_auto_number(after: Spec, before: &Spec) -> Spec {
    match (after, before) {
        (Spec::TelnyxNumber(mut a), Spec::TelnyxNumber(b)) => {
            if let (NumberSpec::Auto { .. }, Some(n)) = (&a.number, b.number.fixed()) {
                a.number = NumberSpec::Fixed { number: n.clone() };
            }
            Spec::TelnyxNumber(a)
        }
        (after, _) => after,
    }
}

/// How [`Planner::find_live`] came to its answer.
enum Lookup {
    /// The id state owns for this address, live and still the declared object.
    InState,
    /// Not owned under this address; found live this way.
    Found(Found),
    /// Owned by this id, gone from the provider (which was read).
    Gone { id: String, provider: ProviderName },
    /// Nothing live, nothing owned.
    NotLive,
}

/// Why a declared, live object gets `action`.
fn existing_reason(
    action: Action,
    kind: Kind,
    protected: bool,
    changed: &[FieldChange],
    found: Lookup,
) -> Reason {
    match action {
        Action::Verify if protected => Reason::Protected,
        Action::Verify => Reason::ReadOnly,
        Action::Replace => Reason::ReplaceBecause {
            fields: changed
                .iter()
                .filter(|c| fields::requires_replace(kind, &c.path))
                .map(|c| c.path.clone())
                .collect(),
        },
        Action::Adopt => Reason::NotInState {
            found: match found {
                Lookup::Found(found) => found,
                _ => Found::NaturalKey,
            },
        },
        Action::Update => Reason::LiveDiffers,
        _ => Reason::Unchanged,
    }
}

fn read_only_drift(resource: &DesiredResource, changed: &[FieldChange]) -> Finding {
    Finding {
        severity: Severity::Warning,
        code: "read-only-drift".into(),
        message: format!(
            "{} differs from lines.toml in {}, but {} is read-only by policy: nothing will be written",
            resource.addr,
            changed.iter().map(|c| c.path.as_str()).collect::<Vec<_>>().join(", "),
            resource.addr.kind.provider()
        ),
        address: Some(resource.addr.to_string()),
        help: Some("declare the object as it is live, or fix it by hand".into()),
        span: Some(resource.span),
    }
}
