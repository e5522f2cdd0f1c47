//! The runbooks' certification checks, run on the live world: each incident in the runbooks
//! becomes a check that names the hop where a call would fail.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::model::{Address, Desired, Kind, Live, LiveObject, NumberRef, Ref, Spec, E164};
use crate::plan::{Finding, Severity};
use crate::state::State;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Stable name, e.g. `trunk-auth`.
    pub check: String,
    /// The hop of the call path it concerns: number, connection, fqdn, trunk, dispatch, outbound.
    pub hop: String,
    /// What was checked (a number, a connection name).
    pub subject: String,
    pub passed: bool,
    pub message: String,
}

impl CheckResult {
    fn new(check: &str, hop: &str, subject: &str, passed: bool, message: String) -> Self {
        Self {
            check: check.into(),
            hop: hop.into(),
            subject: subject.into(),
            passed,
            message,
        }
    }

    /// A failed check as a plan warning (the plan may be what fixes it).
    pub fn into_finding(self) -> Finding {
        Finding {
            severity: Severity::Warning,
            code: self.check,
            message: format!("live now: {} ({})", self.message, self.subject),
            address: None,
            help: None,
            span: None,
        }
    }
}

/// A declared line that is not applied yet: there is nothing live to certify until apply
/// creates it. Listed by `cwa check`, never a failure of it; after an apply that should have
/// created it, it is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// The address of the line's number, e.g. `telnyx_number.grace`.
    pub line: String,
    /// The number as declared: `+1…`, or `auto (US, area code 734)`.
    pub number: String,
    pub reason: String,
    /// Applied, and the provider is still activating it (a number's `purchase-pending`):
    /// nothing cwa can do; it rings once the provider is done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub activating: bool,
}

/// What certification found: every check that ran, and the lines it could not check yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Certification {
    pub checks: Vec<CheckResult>,
    pub pending: Vec<Pending>,
}

impl Certification {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|r| !r.passed)
    }

    /// No check failed (pending lines are not failures of `cwa check`).
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }
}

/// Which lines to certify: all of them, or only those an apply touched.
#[derive(Debug, Clone, Default)]
pub enum Scope {
    #[default]
    All,
    /// Lines whose number or inbound trunk is one of these addresses; account-level checks
    /// (outbound trunks, credential connections) when one of them is named.
    Touched(BTreeSet<Address>),
}

impl Scope {
    /// What an apply of `plan` touched: every address it changes, and every resource of a
    /// church it changes (a fixed dispatch rule re-certifies its church's whole line).
    /// Without targets, a whole plan: every line.
    pub fn of_plan(plan: &crate::plan::Plan, desired: &Desired, targeted: bool) -> Scope {
        if !targeted {
            return Scope::All;
        }
        let changed = || plan.changes.iter().filter(|c| c.action.changes_anything());
        let churches: BTreeSet<&str> = changed().filter_map(|c| c.church.as_deref()).collect();
        let mut set: BTreeSet<Address> = changed().map(|c| c.address.clone()).collect();
        set.extend(
            desired
                .resources
                .values()
                .filter(|r| r.church.as_deref().is_some_and(|k| churches.contains(k)))
                .map(|r| r.addr.clone()),
        );
        Scope::Touched(set)
    }

    fn covers(&self, addrs: &[&Address]) -> bool {
        match self {
            Scope::All => true,
            Scope::Touched(set) => addrs.iter().any(|a| set.contains(*a)),
        }
    }
}

/// Runs every check on what lines.toml routes; returns the failures only (passes are
/// dropped as they come: at 10,000 lines they would be some 100,000 results). Lines not
/// applied yet are left out: the plan shows what creates them.
pub fn certify(desired: &Desired, state: &State, live: &Live) -> Vec<CheckResult> {
    let mut out = Results::failures_only();
    run_into(desired, state, live, &Scope::All, &mut out);
    out.items
}

/// Everything `cwa check` certifies: [`run_all`], plus the outbound trunk's
/// `X-Telnyx-Username` header where lines.toml declares it (a plan already shows a missing
/// header as the field change that adds it, so plans do not repeat it as a warning).
pub fn certification(desired: &Desired, state: &State, live: &Live) -> Certification {
    let mut out = Results::all();
    let pending = run_into(desired, state, live, &Scope::All, &mut out);
    for r in desired.resources.values() {
        check_outbound_header(live, &r.spec, &mut out);
    }
    Certification {
        checks: out.items,
        pending,
    }
}

/// Runs every check of the lines in `scope` and returns passes, failures and pending lines:
/// the certification that ends an apply.
pub fn run_all(desired: &Desired, state: &State, live: &Live, scope: &Scope) -> Certification {
    let mut out = Results::all();
    let pending = run_into(desired, state, live, scope, &mut out);
    Certification {
        checks: out.items,
        pending,
    }
}

/// Where results go: all of them, or failures only.
struct Results {
    keep_passed: bool,
    items: Vec<CheckResult>,
    /// Applied lines the provider is still activating.
    activating: Vec<Pending>,
}

impl Results {
    fn all() -> Self {
        Self {
            keep_passed: true,
            items: Vec::new(),
            activating: Vec::new(),
        }
    }

    fn failures_only() -> Self {
        Self {
            keep_passed: false,
            items: Vec::new(),
            activating: Vec::new(),
        }
    }

    fn push(&mut self, result: CheckResult) {
        if self.keep_passed || !result.passed {
            self.items.push(result);
        }
    }
}

fn run_into(
    desired: &Desired,
    state: &State,
    live: &Live,
    scope: &Scope,
    out: &mut Results,
) -> Vec<Pending> {
    let index = Index::new(desired, state, live);
    let lines = routed_lines(desired, state, &index);
    for line in lines.routed.iter().filter(|l| scope.covers(&l.addresses())) {
        check_inbound_number(desired, live, &index, &line.number, out);
    }
    for (addr, why) in lines.uncheckable.iter().filter(|(a, _)| scope.covers(&[a])) {
        out.push(CheckResult::new(
            "line-checkable",
            "number",
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
            check_credential_connection(live, &c.connection_name, out);
        }
        if let Spec::LivekitOutboundTrunk(t) = &r.spec {
            check_outbound_trunk_auth(desired, live, &r.spec, out);
            check_outbound_dids(desired, live, t, out);
        }
    }
    let mut pending: Vec<Pending> = lines
        .pending
        .into_iter()
        .filter(|p| p.line.parse::<Address>().is_ok_and(|a| scope.covers(&[&a])))
        .collect();
    pending.append(&mut out.activating);
    pending
}

/// Lookups every routed number needs, built once so that checking N lines stays linear.
struct Index<'a> {
    /// Live Telnyx numbers by number (the first by id when several hold one).
    telnyx_numbers: HashMap<&'a E164, &'a LiveObject>,
    twilio_numbers: HashMap<&'a E164, &'a LiveObject>,
    /// Live inbound trunks holding each number, in id order.
    trunks_by_number: HashMap<&'a E164, Vec<&'a LiveObject>>,
    /// The first live dispatch rule (by id) naming each trunk id.
    rule_by_trunk: HashMap<&'a str, &'a LiveObject>,
    /// Live FQDN records by their connection id.
    fqdns_by_connection: HashMap<&'a str, Vec<&'a LiveObject>>,
    /// The connection each declared number (an `auto` one: the number state pins) is bound to.
    declared_connection: HashMap<E164, &'a Address>,
    /// Declared number resources by their fixed number.
    number_owners: HashMap<&'a E164, &'a Address>,
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
            number_owners: HashMap::new(),
        };
        for o in live.objects.values() {
            ix.add_live(o);
        }
        for r in desired.resources.values() {
            match &r.spec {
                Spec::TelnyxNumber(n) => {
                    if let Some(number) = n.number.fixed() {
                        ix.number_owners.entry(number).or_insert(&r.addr);
                    }
                    let number = n
                        .number
                        .fixed()
                        .cloned()
                        .or_else(|| pinned_number(state, &r.addr));
                    if let (Some(number), Some(addr)) =
                        (number, n.connection.as_ref().and_then(Ref::addr))
                    {
                        ix.declared_connection.entry(number).or_insert(addr);
                    }
                }
                Spec::TwilioNumber(n) => {
                    ix.number_owners.entry(&n.number).or_insert(&r.addr);
                }
                _ => {}
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
fn pinned_number(state: &State, addr: &Address) -> Option<E164> {
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

fn check_inbound_number(
    desired: &Desired,
    live: &Live,
    index: &Index,
    number: &E164,
    out: &mut Results,
) {
    let subject = number.as_str();
    let telnyx = index.telnyx_numbers.get(number).copied();
    let twilio = index.twilio_numbers.get(number).copied();
    match (telnyx, twilio) {
        (Some(n), _) => check_telnyx_number(desired, live, index, n, subject, out),
        (None, Some(_)) => out.push(CheckResult::new(
            "number-owned",
            "number",
            subject,
            true,
            "a Twilio number".into(),
        )),
        (None, None) => {
            out.push(CheckResult::new(
                "number-owned",
                "number",
                subject,
                false,
                "no provider owns this number: callers hear \"not assigned\"".into(),
            ));
            return;
        }
    }
    check_trunk_and_dispatch(desired, index, number, telnyx.is_some(), out);
}

/// The status of a Telnyx number bought but not yet active.
const ACTIVATING: &str = "purchase-pending";

fn live_number(o: &LiveObject) -> Option<&E164> {
    match &o.spec {
        Spec::TelnyxNumber(n) => n.number.fixed(),
        _ => None,
    }
}

fn check_telnyx_number(
    desired: &Desired,
    live: &Live,
    index: &Index,
    n: &LiveObject,
    subject: &str,
    out: &mut Results,
) {
    let status = n
        .extra
        .get("status")
        .map(String::as_str)
        .unwrap_or("active");
    if status == ACTIVATING {
        let line = index
            .number_owners
            .iter()
            .find(|(n, _)| n.as_str() == subject)
            .map_or_else(|| subject.to_string(), |(_, a)| a.to_string());
        out.activating.push(Pending {
            line,
            number: subject.to_string(),
            reason: format!(
                "bought; telnyx is still activating it (status {status}): it rings once active, check again later"
            ),
            activating: true,
        });
    } else {
        out.push(CheckResult::new(
            "number-active",
            "number",
            subject,
            status == "active",
            format!("number status is {status}"),
        ));
    }
    let Spec::TelnyxNumber(spec) = &n.spec else {
        return;
    };
    let Some(conn_id) = spec.connection.as_ref().and_then(Ref::id) else {
        out.push(CheckResult::new(
            "number-bound",
            "connection",
            subject,
            false,
            "the number is bound to no connection: calls go nowhere".into(),
        ));
        return;
    };
    if let Some((addr, wanted)) = declared_connection(desired, live, index, subject) {
        out.push(CheckResult::new(
            "number-connection",
            "connection",
            subject,
            wanted == conn_id,
            format!("the number is bound to {conn_id}; lines.toml binds it to {addr} ({wanted})"),
        ));
    }
    match live.get(Kind::TelnyxFqdnConnection, conn_id) {
        Some(conn) => check_fqdn_connection(desired, index, conn, subject, out),
        None => out.push(CheckResult::new(
            "number-bound",
            "connection",
            subject,
            false,
            format!("bound to {conn_id}, which is not an FQDN connection to LiveKit"),
        )),
    }
}

fn check_fqdn_connection(
    desired: &Desired,
    index: &Index,
    conn: &LiveObject,
    subject: &str,
    out: &mut Results,
) {
    let Spec::TelnyxFqdnConnection(c) = &conn.spec else {
        return;
    };
    let name = format!("{subject} via {} ({})", c.connection_name, conn.id);
    out.push(CheckResult::new(
        "connection-active",
        "connection",
        &name,
        c.active,
        "the connection must be active".into(),
    ));
    out.push(CheckResult::new(
        "connection-transport",
        "connection",
        &name,
        c.transport_protocol.eq_ignore_ascii_case("TCP"),
        format!(
            "transport is {} (LiveKit needs TCP; UDP does not work)",
            c.transport_protocol
        ),
    ));
    let formats_ok = c.ani_number_format == "+E.164" && c.dnis_number_format == "+e164";
    out.push(CheckResult::new(
        "number-format",
        "connection",
        &name,
        formats_ok,
        format!(
            "number formats are {}/{} (want +E.164/+e164, or numbers arrive without +)",
            c.ani_number_format, c.dnis_number_format
        ),
    ));
    let fqdns = index
        .fqdns_by_connection
        .get(conn.id.as_str())
        .map_or(&[][..], Vec::as_slice);
    let primary = fqdns
        .iter()
        .find(|f| matches!(&f.spec, Spec::TelnyxFqdn(s) if s.default_primary));
    out.push(CheckResult::new(
        "default-primary-fqdn",
        "fqdn",
        &name,
        primary.is_some(),
        "default_primary_fqdn_id must be set, or callers hear \"not assigned\"".into(),
    ));
    if let Some(Spec::TelnyxFqdn(f)) = primary.map(|p| &p.spec) {
        let host = &desired.settings.livekit_sip_host;
        out.push(CheckResult::new(
            "sip-host",
            "fqdn",
            &name,
            host.is_empty() || &f.fqdn == host,
            format!("the FQDN is {} (want the project-id host {host}; a project-name host gives 404 No trunk found)", f.fqdn),
        ));
    }
}

fn check_trunk_and_dispatch(
    desired: &Desired,
    index: &Index,
    number: &E164,
    from_telnyx: bool,
    out: &mut Results,
) {
    let subject = number.as_str();
    let trunks = index
        .trunks_by_number
        .get(number)
        .map_or(&[][..], Vec::as_slice);
    out.push(CheckResult::new(
        "one-inbound-trunk",
        "trunk",
        subject,
        trunks.len() == 1,
        format!(
            "{} inbound trunks hold the number (want exactly 1; none gives 404 No trunk found)",
            trunks.len()
        ),
    ));
    let Some(trunk) = trunks.first() else { return };
    if let Spec::LivekitInboundTrunk(t) = &trunk.spec {
        let no_auth = t.auth_username.is_empty() && t.auth_password.is_none();
        out.push(CheckResult::new(
            "trunk-auth",
            "trunk",
            &format!("{subject} on {}", trunk.id),
            no_auth || !from_telnyx,
            "the trunk asks for authentication the Telnyx FQDN connection never sends: 407, every call rejected".into(),
        ));
    }
    let agent = &desired.settings.agent_name;
    let rule = index.rule_by_trunk.get(trunk.id.as_str());
    let Some(rule) = rule else {
        out.push(CheckResult::new(
            "dispatch-rule",
            "dispatch",
            subject,
            false,
            "no dispatch rule for the trunk: No SIP Dispatch Rules matched".into(),
        ));
        return;
    };
    let Spec::LivekitDispatchRule(r) = &rule.spec else {
        return;
    };
    let declared = declared_agents(desired, &r.name);
    let agent = declared.first().unwrap_or(agent);
    let names_agent = r
        .agents
        .iter()
        .any(|a| agent.is_empty() || &a.agent_name == agent || declared.contains(&a.agent_name));
    out.push(CheckResult::new(
        "dispatch-agent",
        "dispatch",
        &format!("{subject} via {}", rule.id),
        !r.agents.is_empty() && names_agent,
        format!(
            "the rule dispatches {:?} (want {agent}; none means the agent never joins)",
            r.agents
                .iter()
                .map(|a| a.agent_name.as_str())
                .collect::<Vec<_>>()
        ),
    ));
}

/// The agents lines.toml names on the dispatch rule called `name` (a rule may name another
/// agent than `[defaults] agent`: validate warns, the line is still served).
fn declared_agents(desired: &Desired, name: &str) -> Vec<String> {
    desired
        .resources
        .values()
        .filter_map(|r| match &r.spec {
            Spec::LivekitDispatchRule(d) if d.name == name => Some(d),
            _ => None,
        })
        .flat_map(|d| d.agents.iter().map(|a| a.agent_name.clone()))
        .collect()
}

/// The connection lines.toml binds `number` to, and that connection's live id (found by its
/// name, the natural key of connections and TeXML applications).
fn declared_connection<'a>(
    desired: &Desired,
    live: &'a Live,
    index: &Index,
    number: &str,
) -> Option<(String, &'a str)> {
    let addr = *index.declared_connection.get(&E164::parse(number).ok()?)?;
    let declared = desired.get(addr)?;
    let found = live
        .of_kind(addr.kind)
        .find(|o| same_name(&o.spec, &declared.spec))?;
    Some((addr.to_string(), found.id.as_str()))
}

fn same_name(live: &Spec, declared: &Spec) -> bool {
    match (live, declared) {
        (Spec::TelnyxFqdnConnection(l), Spec::TelnyxFqdnConnection(d)) => {
            l.connection_name == d.connection_name
        }
        (Spec::TelnyxCredentialConnection(l), Spec::TelnyxCredentialConnection(d)) => {
            l.connection_name == d.connection_name
        }
        (Spec::TelnyxTexmlApplication(l), Spec::TelnyxTexmlApplication(d)) => {
            l.friendly_name == d.friendly_name
        }
        (Spec::LivekitOutboundTrunk(l), Spec::LivekitOutboundTrunk(d)) => l.name == d.name,
        _ => false,
    }
}

/// The outbound trunk authenticates to Telnyx as the credential connection's user, and
/// carries the `X-Telnyx-Username` header when lines.toml asks for it.
fn check_outbound_trunk_auth(desired: &Desired, live: &Live, declared: &Spec, out: &mut Results) {
    let Spec::LivekitOutboundTrunk(want) = declared else {
        return;
    };
    let Some(trunk) = live
        .of_kind(Kind::LivekitOutboundTrunk)
        .find(|o| same_name(&o.spec, declared))
    else {
        out.push(CheckResult::new(
            "outbound-trunk",
            "outbound",
            &want.name,
            false,
            "the outbound trunk does not exist: no call can be placed".into(),
        ));
        return;
    };
    let Spec::LivekitOutboundTrunk(t) = &trunk.spec else {
        return;
    };
    let subject = format!("{} ({})", t.name, trunk.id);
    let users: Vec<String> = desired
        .resources
        .values()
        .filter_map(|r| match &r.spec {
            Spec::TelnyxCredentialConnection(_) => live
                .of_kind(Kind::TelnyxCredentialConnection)
                .find(|o| same_name(&o.spec, &r.spec))
                .and_then(|o| match &o.spec {
                    Spec::TelnyxCredentialConnection(c) => Some(c.user_name.clone()),
                    _ => None,
                }),
            _ => None,
        })
        .collect();
    if !users.is_empty() {
        out.push(CheckResult::new(
            "outbound-trunk-auth",
            "outbound",
            &subject,
            users.contains(&t.auth_username) && t.auth_password.is_some(),
            format!(
                "the trunk authenticates as {:?} (want the credential connection's user {:?} and a password, or Telnyx rejects the INVITE)",
                t.auth_username, users
            ),
        ));
    }
}

/// The `X-Telnyx-Username` header lines.toml asks for is live on the outbound trunk.
fn check_outbound_header(live: &Live, declared: &Spec, out: &mut Results) {
    let Spec::LivekitOutboundTrunk(want) = declared else {
        return;
    };
    let Some(Spec::LivekitOutboundTrunk(t)) = live
        .of_kind(Kind::LivekitOutboundTrunk)
        .find(|o| same_name(&o.spec, declared))
        .map(|o| &o.spec)
    else {
        return;
    };
    if let Some(header) = want.headers.get(TELNYX_USERNAME_HEADER) {
        let live_header = t.headers.get(TELNYX_USERNAME_HEADER);
        out.push(CheckResult::new(
            "outbound-header",
            "outbound",
            &t.name,
            live_header == Some(header),
            format!(
                "{TELNYX_USERNAME_HEADER} is {} (want {header}; without it Telnyx authenticates by IP allowlist only)",
                live_header.map_or("not set", String::as_str)
            ),
        ));
    }
}

/// The header that makes Telnyx authenticate LiveKit's outbound INVITE by credential.
const TELNYX_USERNAME_HEADER: &str = "X-Telnyx-Username";

fn check_credential_connection(live: &Live, name: &str, out: &mut Results) {
    let Some(conn) = live.of_kind(Kind::TelnyxCredentialConnection).find(
        |c| matches!(&c.spec, Spec::TelnyxCredentialConnection(s) if s.connection_name == name),
    ) else {
        out.push(CheckResult::new(
            "credential-connection",
            "outbound",
            name,
            false,
            "the credential connection does not exist".into(),
        ));
        return;
    };
    let Spec::TelnyxCredentialConnection(c) = &conn.spec else {
        return;
    };
    out.push(CheckResult::new(
        "credential-active",
        "outbound",
        name,
        c.active && !c.user_name.is_empty(),
        "the connection must be active with a user name".into(),
    ));
    let ovp = c
        .outbound_voice_profile
        .as_ref()
        .and_then(Ref::id)
        .and_then(|id| live.get(Kind::TelnyxOutboundVoiceProfile, id));
    out.push(CheckResult::new(
        "outbound-profile-bound",
        "outbound",
        name,
        ovp.is_some(),
        "no outbound voice profile is bound: Telnyx silently rejects every INVITE (403/D35)".into(),
    ));
    if let Some(Spec::TelnyxOutboundVoiceProfile(p)) = ovp.map(|o| &o.spec) {
        let countries = ["US", "CA"]
            .iter()
            .all(|c| p.whitelisted_destinations.iter().any(|d| d == c));
        out.push(CheckResult::new(
            "outbound-profile-ready",
            "outbound",
            name,
            p.enabled && countries,
            format!(
                "profile {} enabled={} whitelists {:?} (want enabled, US and CA)",
                p.name, p.enabled, p.whitelisted_destinations
            ),
        ));
    }
}

fn check_outbound_dids(
    desired: &Desired,
    live: &Live,
    trunk: &crate::model::OutboundTrunkSpec,
    out: &mut Results,
) {
    let cred_ids: Vec<&str> = desired
        .resources
        .values()
        .filter_map(|r| match &r.spec {
            Spec::TelnyxCredentialConnection(c) => live
                .of_kind(Kind::TelnyxCredentialConnection)
                .find(|o| matches!(&o.spec, Spec::TelnyxCredentialConnection(s) if s.connection_name == c.connection_name))
                .map(|o| o.id.as_str()),
            _ => None,
        })
        .collect();
    for n in trunk.numbers.iter().filter_map(|n| match n {
        NumberRef::Number(n) => Some(n),
        NumberRef::Of(_) => None,
    }) {
        let bound = live
            .of_kind(Kind::TelnyxNumber)
            .find(|o| live_number(o) == Some(n))
            .and_then(|o| match &o.spec {
                Spec::TelnyxNumber(s) => {
                    s.connection.as_ref().and_then(Ref::id).map(str::to_string)
                }
                _ => None,
            });
        out.push(CheckResult::new(
            "outbound-did-bound",
            "outbound",
            n.as_str(),
            bound.as_deref().is_some_and(|b| cred_ids.contains(&b)),
            format!("the outbound DID is bound to {} (want the credential connection, or Telnyx D35-rejects the INVITE)", bound.as_deref().unwrap_or("nothing")),
        ));
    }
}
