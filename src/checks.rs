//! The runbooks' certification checks, run on the live world: each incident in the runbooks
//! becomes a check that names the hop where a call would fail.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{Address, Desired, Kind, Live, LiveObject, NumberRef, Ref, Spec, E164};
use crate::plan::{Finding, Severity};

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

/// Runs every check on what lines.toml routes; returns the failures only (passes are
/// dropped as they come: at 10,000 lines they would be some 100,000 results).
pub fn certify(desired: &Desired, live: &Live) -> Vec<CheckResult> {
    let mut out = Results::failures_only();
    run_into(desired, live, &mut out);
    out.items
}

/// Everything `cwa check` certifies: [`run_all`], plus the outbound trunk's
/// `X-Telnyx-Username` header where lines.toml declares it (a plan already shows a missing
/// header as the field change that adds it, so plans do not repeat it as a warning).
pub fn certification(desired: &Desired, live: &Live) -> Vec<CheckResult> {
    let mut out = Results::all();
    run_into(desired, live, &mut out);
    for r in desired.resources.values() {
        check_outbound_header(live, &r.spec, &mut out);
    }
    out.items
}

/// Runs every check and returns passes and failures.
pub fn run_all(desired: &Desired, live: &Live) -> Vec<CheckResult> {
    let mut out = Results::all();
    run_into(desired, live, &mut out);
    out.items
}

/// Where results go: all of them, or failures only.
struct Results {
    keep_passed: bool,
    items: Vec<CheckResult>,
}

impl Results {
    fn all() -> Self {
        Self {
            keep_passed: true,
            items: Vec::new(),
        }
    }

    fn failures_only() -> Self {
        Self {
            keep_passed: false,
            items: Vec::new(),
        }
    }

    fn push(&mut self, result: CheckResult) {
        if self.keep_passed || !result.passed {
            self.items.push(result);
        }
    }
}

fn run_into(desired: &Desired, live: &Live, out: &mut Results) {
    let index = Index::new(desired, live);
    for number in routed_numbers(desired) {
        check_inbound_number(desired, live, &index, &number, out);
    }
    for r in desired.resources.values() {
        if let Spec::TelnyxCredentialConnection(c) = &r.spec {
            check_credential_connection(live, &c.connection_name, out);
        }
        if let Spec::LivekitOutboundTrunk(t) = &r.spec {
            check_outbound_trunk_auth(desired, live, &r.spec, out);
            check_outbound_dids(desired, live, t, out);
        }
    }
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
    /// The connection each declared fixed number is bound to.
    declared_connection: HashMap<&'a str, &'a Address>,
}

impl<'a> Index<'a> {
    fn new(desired: &'a Desired, live: &'a Live) -> Self {
        let mut ix = Index {
            telnyx_numbers: HashMap::new(),
            twilio_numbers: HashMap::new(),
            trunks_by_number: HashMap::new(),
            rule_by_trunk: HashMap::new(),
            fqdns_by_connection: HashMap::new(),
            declared_connection: HashMap::new(),
        };
        for o in live.objects.values() {
            ix.add_live(o);
        }
        for r in desired.resources.values() {
            if let Spec::TelnyxNumber(n) = &r.spec {
                if let (Some(number), Some(addr)) =
                    (n.number.fixed(), n.connection.as_ref().and_then(Ref::addr))
                {
                    ix.declared_connection
                        .entry(number.as_str())
                        .or_insert(addr);
                }
            }
        }
        ix
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

/// Numbers that a declared inbound trunk holds: the lines that must reach the agent.
fn routed_numbers(desired: &Desired) -> Vec<E164> {
    let mut numbers: Vec<E164> = desired
        .resources
        .values()
        .filter_map(|r| match &r.spec {
            Spec::LivekitInboundTrunk(t) => Some(t.numbers.iter().filter_map(|n| match n {
                NumberRef::Number(n) => Some(n.clone()),
                NumberRef::Of(_) => None,
            })),
            _ => None,
        })
        .flatten()
        .collect();
    numbers.sort();
    numbers.dedup();
    numbers
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
    out.push(CheckResult::new(
        "number-active",
        "number",
        subject,
        status == "active",
        format!("number status is {status}"),
    ));
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
    let names_agent = r
        .agents
        .iter()
        .any(|a| agent.is_empty() || &a.agent_name == agent);
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

/// The connection lines.toml binds `number` to, and that connection's live id (found by its
/// name, the natural key of connections and TeXML applications).
fn declared_connection<'a>(
    desired: &Desired,
    live: &'a Live,
    index: &Index,
    number: &str,
) -> Option<(String, &'a str)> {
    let addr = *index.declared_connection.get(number)?;
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
