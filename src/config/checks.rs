//! The checks from the runbooks' incidents that need no network: each one names the symptom a
//! caller would have met, so the reviewer knows why the line is refused.

use std::collections::BTreeMap;

use super::error::{Problem, ProblemKind};
use super::expand::Expanded;
use crate::model::{
    Address, CredentialConnectionSpec, DesiredResource, Kind, NumberRef, NumberSpec,
    OutboundTrunkSpec, Ref, SourceSpan, Spec,
};

/// Runs every check, appending errors and warnings.
pub fn run(x: &Expanded, problems: &mut Vec<Problem>) {
    let c = Checker { x, problems };
    c.run();
    super::provider_limits::run(x, problems);
}

struct Checker<'a> {
    x: &'a Expanded,
    problems: &'a mut Vec<Problem>,
}

/// The header that makes Telnyx authenticate an outbound INVITE by credential, not by IP.
const TELNYX_USERNAME_HEADER: &str = "X-Telnyx-Username";

fn addr_ref(r: &Ref) -> Option<&Address> {
    r.addr()
}

/// The first two trunks on one number that LiveKit would refuse together
/// ([`super::provider_limits::trunks_conflict`]).
type Holder<'a> = (&'a DesiredResource, SourceSpan);

fn conflicting_pair<'a, 'b>(trunks: &'b [Holder<'a>]) -> Option<(&'b Holder<'a>, &'b Holder<'a>)> {
    let spec = |r: &DesiredResource| match &r.spec {
        Spec::LivekitInboundTrunk(s) => Some(s.clone()),
        _ => None,
    };
    trunks.iter().enumerate().find_map(|(i, a)| {
        trunks[i + 1..].iter().find_map(|b| {
            let (sa, sb) = (spec(a.0)?, spec(b.0)?);
            super::provider_limits::trunks_conflict(&sa, &sb).then_some((a, b))
        })
    })
}

impl Checker<'_> {
    fn run(mut self) {
        self.livekit_project();
        self.fqdn_connections();
        self.fqdn_hosts();
        self.twilio_origination_hosts();
        self.default_primary();
        self.inbound_trunks();
        self.routing();
        self.dispatch_rules();
        self.credential_connections();
        self.outbound_trunks();
    }

    fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &'_ DesiredResource> + '_ {
        self.x
            .desired
            .resources
            .values()
            .filter(move |r| r.addr.kind == kind)
    }

    /// The span of one value of a resource, or of its block.
    fn at(&self, res: &DesiredResource, field: &str) -> SourceSpan {
        self.x.spans.get(&res.addr, field).unwrap_or(res.span)
    }

    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn sip_host(&self) -> &str {
        &self.x.desired.settings.livekit_sip_host
    }

    fn livekit_project(&mut self) {
        if !self.x.desired.settings.livekit_project_id.is_empty() {
            return;
        }
        let needs = self.x.desired.resources.values().find(|r| {
            matches!(r.addr.kind, Kind::TelnyxFqdn)
                || r.addr.kind.provider() == crate::model::ProviderName::Livekit
        });
        if let Some(r) = needs {
            let span = r.span;
            self.push(
                Problem::error(ProblemKind::SipHost, span, "needs the LiveKit project", "[livekit] has no project_id")
                    .with_help("add [livekit] project_id = \"p_…\" (the id, not the project name); sip_host follows from it"),
            );
        }
    }

    fn fqdn_connections(&mut self) {
        let found: Vec<Problem> = self
            .of_kind(Kind::TelnyxFqdnConnection)
            .flat_map(|r| {
                let Spec::TelnyxFqdnConnection(s) = &r.spec else { return Vec::new() };
                let mut out = Vec::new();
                if s.transport_protocol != "TCP" {
                    out.push(
                        Problem::error(
                            ProblemKind::Transport,
                            self.at(r, "transport"),
                            format!("{} here", s.transport_protocol),
                            format!("{} uses transport {}; LiveKit needs TCP", r.addr, s.transport_protocol),
                        )
                        .with_help("transport = \"TCP\": LiveKit's SIP endpoint does not reliably accept UDP from Telnyx, so calls fail (\"TCP — critical, UDP will not work\")"),
                    );
                }
                if s.ani_number_format != "+E.164" {
                    out.push(number_format(self.at(r, "ani_number_format"), &r.addr, "ani_number_format", "+E.164"));
                }
                if s.dnis_number_format != "+e164" {
                    out.push(number_format(self.at(r, "dnis_number_format"), &r.addr, "dnis_number_format", "+e164"));
                }
                out
            })
            .collect();
        self.problems.extend(found);
    }

    fn fqdn_hosts(&mut self) {
        if self.sip_host().is_empty() {
            return;
        }
        let host = self.sip_host().to_string();
        let found: Vec<Problem> = self
            .of_kind(Kind::TelnyxFqdn)
            .filter_map(|r| {
                let Spec::TelnyxFqdn(s) = &r.spec else {
                    return None;
                };
                (s.fqdn != host).then(|| wrong_host(self.at(r, "fqdn"), &r.addr, &s.fqdn, &host))
            })
            .collect();
        self.problems.extend(found);
    }

    fn twilio_origination_hosts(&mut self) {
        if self.sip_host().is_empty() {
            return;
        }
        let host = self.sip_host().to_string();
        let mut found = Vec::new();
        for r in self.of_kind(Kind::TwilioTrunk) {
            let Spec::TwilioTrunk(s) = &r.spec else {
                continue;
            };
            for (i, u) in s.origination_urls.iter().enumerate() {
                let target = sip_url_host(&u.sip_url);
                if target.ends_with(".livekit.cloud") && target != host {
                    let span = self
                        .x
                        .spans
                        .get(&r.addr, &format!("origination_urls.{i}"))
                        .unwrap_or(r.span);
                    found.push(wrong_host(span, &r.addr, target, &host));
                }
            }
        }
        self.problems.extend(found);
    }

    /// Numbers bound to an FQDN connection: the ones Telnyx sends to LiveKit.
    fn fqdn_bound_numbers(&self) -> Vec<(&DesiredResource, &Address)> {
        self.of_kind(Kind::TelnyxNumber)
            .filter_map(|r| {
                let Spec::TelnyxNumber(s) = &r.spec else {
                    return None;
                };
                let conn = s.connection.as_ref().and_then(addr_ref)?;
                (conn.kind == Kind::TelnyxFqdnConnection).then_some((r, conn))
            })
            .collect()
    }

    fn default_primary(&mut self) {
        let mut bound: Vec<&Address> = self
            .fqdn_bound_numbers()
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        bound.sort();
        bound.dedup();
        let mut found = Vec::new();
        for conn in bound {
            let Some(conn_res) = self.x.desired.get(conn) else {
                continue;
            };
            let records: Vec<(&DesiredResource, bool)> = self
                .of_kind(Kind::TelnyxFqdn)
                .filter_map(|r| match &r.spec {
                    Spec::TelnyxFqdn(s) if s.connection.addr() == Some(conn) => {
                        Some((r, s.default_primary))
                    }
                    _ => None,
                })
                .collect();
            let primaries: Vec<_> = records.iter().filter(|(_, p)| *p).collect();
            if primaries.is_empty() {
                let mut p = Problem::error(
                    ProblemKind::DefaultPrimary,
                    conn_res.span,
                    "numbers bind here",
                    format!("{conn} has numbers but no FQDN record marked default_primary"),
                )
                .with_help("set default_primary = true on its [telnyx.fqdn.<name>] record: without inbound.default_primary_fqdn_id Telnyx routes calls nowhere and callers hear \"number not assigned\" (the root cause of the first setup failure)");
                for (r, _) in &records {
                    p = p.with_label(self.at(r, "default_primary"), "not the default primary");
                }
                found.push(p);
            } else if primaries.len() > 1 {
                found.push(
                    Problem::error(
                        ProblemKind::DefaultPrimary,
                        self.at(primaries[1].0, "default_primary"),
                        "second default primary",
                        format!("{conn} has more than one default_primary FQDN record"),
                    )
                    .with_label(self.at(primaries[0].0, "default_primary"), "first one")
                    .with_help("a connection has one inbound.default_primary_fqdn_id; keep default_primary = true on one record"),
                );
            }
        }
        self.problems.extend(found);
    }

    /// The key a trunk uses to hold a number resource's number.
    fn number_key(r: &DesiredResource) -> Option<NumberRef> {
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
    fn holders(&self) -> BTreeMap<NumberRef, Vec<(&DesiredResource, SourceSpan)>> {
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
    fn routed_numbers(&self) -> Vec<(&DesiredResource, NumberRef, String)> {
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

    fn inbound_trunks(&mut self) {
        let routed: BTreeMap<NumberRef, String> = self
            .routed_numbers()
            .into_iter()
            .map(|(_, k, via)| (k, via))
            .collect();
        let mut found = Vec::new();
        for t in self.of_kind(Kind::LivekitInboundTrunk) {
            let Spec::LivekitInboundTrunk(s) = &t.spec else {
                continue;
            };
            let has_auth = !s.auth_username.is_empty() || s.auth_password.is_some();
            if s.numbers.is_empty() && !has_auth && s.allowed_addresses.is_empty() {
                found.push(
                    Problem::error(ProblemKind::Routing, t.span, "no numbers", format!("{} holds no numbers", t.addr))
                        .with_help("LiveKit refuses an inbound trunk with no numbers, no auth and no allowed addresses; list its numbers"),
                );
            }
            if !has_auth {
                continue;
            }
            let via = s.numbers.iter().find_map(|n| routed.get(n));
            if let Some(via) = via {
                let span = self
                    .x
                    .spans
                    .get(&t.addr, "auth_username")
                    .or_else(|| self.x.spans.get(&t.addr, "auth_password_env"))
                    .unwrap_or(t.span);
                found.push(
                    Problem::error(
                        ProblemKind::TrunkAuth,
                        span,
                        "authentication set here",
                        format!("{} asks callers for credentials, but {via} sends none", t.addr),
                    )
                    .with_help("LiveKit challenges every INVITE with 407 that is never answered, so every call is rejected and callers hear \"not assigned\"; remove auth_username and auth_password_env from the inbound trunk (security comes from Telnyx owning the DID)"),
                );
            }
        }
        self.problems.extend(found);
    }

    fn routing(&mut self) {
        let holders = self.holders();
        let mut found = Vec::new();
        for (number, trunks) in &holders {
            if let Some((&(first, first_span), &(second, second_span))) = conflicting_pair(trunks) {
                found.push(
                    Problem::error(
                        ProblemKind::NumberOnTwoTrunks,
                        second_span,
                        format!("also on {}", second.addr),
                        format!("{number} is on two inbound trunks: {} and {}", first.addr, second.addr),
                    )
                    .with_label(first_span, format!("on {}", first.addr))
                    .with_help("LiveKit refuses two inbound trunks with the same number (\"Conflicting inbound SIP Trunks\") and a call can match only one; keep it on one trunk"),
                );
            }
        }
        for (number, key, via) in self.routed_numbers() {
            if holders.contains_key(&key) {
                continue;
            }
            found.push(
                Problem::error(
                    ProblemKind::Routing,
                    self.at(number, "number"),
                    "no inbound trunk holds this number",
                    format!("{} reaches LiveKit through {via}, but no inbound trunk holds it", number.addr),
                )
                .with_help("LiveKit answers \"404 No trunk found\"; add the number to a [livekit.inbound_trunk.<name>] (a church line gets its own trunk by itself)"),
            );
        }
        self.problems.extend(found);
    }

    fn dispatch_rules(&mut self) {
        let mut found = Vec::new();
        let mut by_trunk: BTreeMap<(Option<&Address>, String), &DesiredResource> = BTreeMap::new();
        let default_agent = &self.x.desired.settings.agent_name;
        for r in self.of_kind(Kind::LivekitDispatchRule) {
            let Spec::LivekitDispatchRule(s) = &r.spec else {
                continue;
            };
            let pin = match &s.rule {
                crate::model::DispatchKind::Individual { pin, .. }
                | crate::model::DispatchKind::Direct { pin, .. }
                | crate::model::DispatchKind::Callee { pin, .. } => pin.clone(),
            };
            let trunks: Vec<Option<&Address>> = if s.trunks.is_empty() {
                vec![None]
            } else {
                s.trunks.iter().map(|t| t.addr()).collect()
            };
            for (i, t) in trunks.into_iter().enumerate() {
                if let Some(first) = by_trunk.insert((t, pin.clone()), r) {
                    let trunk = t.map_or("every trunk".to_string(), |a| a.to_string());
                    found.push(
                        Problem::error(
                            ProblemKind::DispatchRule,
                            self.at(r, &format!("trunks.{i}")),
                            "same trunk and pin",
                            format!("{} and {} both dispatch calls on {trunk}", first.addr, r.addr),
                        )
                        .with_label(first.span, "first rule")
                        .with_help("LiveKit refuses two rules for the same trunk, numbers and pin; keep one rule per trunk (the agent tells churches apart by the called number)"),
                    );
                }
            }
            if s.agents.is_empty() || s.agents.iter().any(|a| a.agent_name.is_empty()) {
                let span = self.x.spans.get(&r.addr, "agents").unwrap_or(r.span);
                found.push(
                    Problem::error(
                        ProblemKind::NoAgent,
                        span,
                        "no agent named",
                        format!("{} dispatches calls to no agent", r.addr),
                    )
                    .with_help("the call connects and a room is created, but the agent never joins: callers hear silence, then \"customer unavailable\". Name it: agents = [{ name = \"churchwiseai-voice\" }], or set [defaults] agent"),
                );
            }
            for (i, a) in s.agents.iter().enumerate() {
                if !default_agent.is_empty()
                    && !a.agent_name.is_empty()
                    && &a.agent_name != default_agent
                {
                    found.push(
                        Problem::warning(
                            ProblemKind::AgentName,
                            self.at(r, &format!("agents.{i}")),
                            "not the default agent",
                            format!("{} dispatches to `{}`, not to the project's agent `{default_agent}`", r.addr, a.agent_name),
                        )
                        .with_help("an agent name nobody deploys means the agent never joins; check the spelling"),
                    );
                }
            }
        }
        let wildcard = by_trunk.keys().any(|(a, _)| a.is_none());
        let covered_trunks: std::collections::HashSet<&Address> =
            by_trunk.keys().filter_map(|(a, _)| *a).collect();
        for t in self.of_kind(Kind::LivekitInboundTrunk) {
            let covered = wildcard || covered_trunks.contains(&t.addr);
            if !covered {
                found.push(
                    Problem::error(
                        ProblemKind::DispatchRule,
                        t.span,
                        "no dispatch rule for this trunk",
                        format!("no dispatch rule sends calls on {} to an agent", t.addr),
                    )
                    .with_help("LiveKit rejects the call (\"No SIP Dispatch Rules matched\"); add a [livekit.dispatch_rule.<name>] with trunks = [\"…\"]"),
                );
            }
        }
        self.problems.extend(found);
    }

    fn outbound_trunks_using(&self, user: &str) -> Vec<(&DesiredResource, &OutboundTrunkSpec)> {
        self.of_kind(Kind::LivekitOutboundTrunk)
            .filter_map(|r| match &r.spec {
                Spec::LivekitOutboundTrunk(s) if s.auth_username.eq_ignore_ascii_case(user) => {
                    Some((r, s))
                }
                _ => None,
            })
            .collect()
    }

    fn credential_connections(&mut self) {
        let mut found = Vec::new();
        for r in self.of_kind(Kind::TelnyxCredentialConnection) {
            let Spec::TelnyxCredentialConnection(s) = &r.spec else {
                continue;
            };
            found.extend(self.credential_basics(r, s));
            let Some(ovp_addr) = s.outbound_voice_profile.as_ref().and_then(addr_ref) else {
                found.push(
                    Problem::error(
                        ProblemKind::OutboundProfile,
                        r.span,
                        "no outbound_voice_profile",
                        format!("{} has no outbound voice profile", r.addr),
                    )
                    .with_help("Telnyx silently rejects every outbound INVITE (internal 403/D35, no CDR) while outbound_voice_profile_id is null; add outbound_voice_profile = \"telnyx_outbound_voice_profile.<name>\""),
                );
                continue;
            };
            let Some(ovp) = self.x.desired.get(ovp_addr) else {
                continue;
            };
            let Spec::TelnyxOutboundVoiceProfile(p) = &ovp.spec else {
                continue;
            };
            if !p.enabled {
                found.push(
                    Problem::error(
                        ProblemKind::OutboundProfile,
                        self.at(ovp, "enabled"),
                        "disabled",
                        format!("{} is disabled, and {} dials through it", ovp.addr, r.addr),
                    )
                    .with_help("enabled = true: a disabled profile drops every outbound call"),
                );
            }
            for (trunk, t) in self.outbound_trunks_using(&s.user_name) {
                let country = &t.destination_country;
                if !country.is_empty() && !p.whitelisted_destinations.contains(country) {
                    found.push(
                        Problem::error(
                            ProblemKind::OutboundProfile,
                            self.at(ovp, "whitelisted_destinations"),
                            format!("{country} missing"),
                            format!("{} does not whitelist {country}, where {} calls", ovp.addr, trunk.addr),
                        )
                        .with_label(self.at(trunk, "destination_country"), "calls here")
                        .with_help(format!("add \"{country}\" to whitelisted_destinations, or Telnyx rejects the calls")),
                    );
                }
            }
        }
        self.problems.extend(found);
    }

    fn credential_basics(&self, r: &DesiredResource, s: &CredentialConnectionSpec) -> Vec<Problem> {
        let mut out = Vec::new();
        if !s.active {
            out.push(
                Problem::error(
                    ProblemKind::OutboundProfile,
                    self.at(r, "active"),
                    "inactive",
                    format!("{} is not active", r.addr),
                )
                .with_help("active = true: an inactive credential connection carries no calls"),
            );
        }
        if s.password.is_none() {
            out.push(
                Problem::error(ProblemKind::OutboundProfile, r.span, "no password_env", format!("{} has no credentials", r.addr))
                    .with_help("add password_env = \"NAME_OF_VARIABLE\": a credential connection authenticates LiveKit by user name and password"),
            );
        }
        out
    }

    fn outbound_trunks(&mut self) {
        let mut found = Vec::new();
        let creds: Vec<(&DesiredResource, &CredentialConnectionSpec)> = self
            .of_kind(Kind::TelnyxCredentialConnection)
            .filter_map(|r| match &r.spec {
                Spec::TelnyxCredentialConnection(s) => Some((r, s)),
                _ => None,
            })
            .collect();
        for r in self.of_kind(Kind::LivekitOutboundTrunk) {
            let Spec::LivekitOutboundTrunk(s) = &r.spec else {
                continue;
            };
            found.extend(self.outbound_shape(r, s));
            let to_telnyx = s.address.ends_with("telnyx.com");
            let cred = creds.iter().find(|(_, c)| {
                !s.auth_username.is_empty() && c.user_name.eq_ignore_ascii_case(&s.auth_username)
            });
            match cred {
                Some((cred_res, c)) => {
                    found.extend(self.outbound_numbers(r, s, &cred_res.addr));
                    found.extend(self.outbound_header(r, s, &c.user_name));
                }
                None if to_telnyx => found.push(
                    Problem::error(
                        ProblemKind::OutboundTrunk,
                        self.at(r, "auth_username"),
                        "no matching credential connection",
                        format!("{} dials Telnyx as `{}`, but no declared credential connection has that user_name", r.addr, s.auth_username),
                    )
                    .with_help("set auth_username to the user_name of a [telnyx.credential_connection.<name>]"),
                ),
                None => {}
            }
        }
        self.problems.extend(found);
    }

    fn outbound_shape(&self, r: &DesiredResource, s: &OutboundTrunkSpec) -> Vec<Problem> {
        let mut out = Vec::new();
        let a = &s.address;
        if a.starts_with("sip:")
            || a.starts_with("sips:")
            || a.contains(['@', ';'])
            || a.contains("transport=")
        {
            out.push(
                Problem::error(ProblemKind::OutboundTrunk, self.at(r, "address"), "host only", format!("address `{a}` is not a bare host"))
                    .with_help("LiveKit wants the host alone, e.g. address = \"sip.telnyx.com\", with transport set separately"),
            );
        }
        if s.numbers.is_empty() {
            out.push(
                Problem::error(
                    ProblemKind::OutboundTrunk,
                    self.at(r, "numbers"),
                    "no numbers",
                    format!("{} has no caller numbers", r.addr),
                )
                .with_help(
                    "list the DIDs it calls from, e.g. numbers = [\"telnyx_number.outbound\"]",
                ),
            );
        }
        if !s.auth_username.is_empty() && s.auth_password.is_none() {
            out.push(
                Problem::error(ProblemKind::OutboundTrunk, self.at(r, "auth_username"), "no password", format!("{} has a user name but no auth_password_env", r.addr))
                    .with_help("add auth_password_env = \"NAME_OF_VARIABLE\" holding the credential connection's password"),
            );
        }
        out
    }

    fn outbound_numbers(
        &self,
        r: &DesiredResource,
        s: &OutboundTrunkSpec,
        cred: &Address,
    ) -> Vec<Problem> {
        let mut out = Vec::new();
        let numbers: BTreeMap<NumberRef, &DesiredResource> = self
            .of_kind(Kind::TelnyxNumber)
            .filter_map(|n| Some((Self::number_key(n)?, n)))
            .collect();
        for (i, n) in s.numbers.iter().enumerate() {
            let span = self.at(r, &format!("numbers.{i}"));
            let Some(owner) = numbers.get(n) else {
                out.push(
                    Problem::error(
                        ProblemKind::OutboundNumber,
                        span,
                        "not a declared Telnyx number",
                        format!("{n} is not a Telnyx number declared in lines.toml"),
                    )
                    .with_help(format!(
                        "declare it as [telnyx.number.<name>] with connection = \"{cred}\""
                    )),
                );
                continue;
            };
            let Spec::TelnyxNumber(ns) = &owner.spec else {
                continue;
            };
            let bound = ns.connection.as_ref().and_then(addr_ref);
            if bound != Some(cred) {
                let on = bound.map_or("no connection".to_string(), |b| b.to_string());
                out.push(
                    Problem::error(
                        ProblemKind::OutboundNumber,
                        span,
                        format!("bound to {on}"),
                        format!("{n} is bound to {on}, not to {cred} that {} dials through", r.addr),
                    )
                    .with_label(self.at(owner, "connection"), "bound here")
                    .with_help(format!("Telnyx D35-rejects the INVITE; bind the DID to the credential connection: connection = \"{cred}\"")),
                );
            }
        }
        out
    }

    fn outbound_header(
        &self,
        r: &DesiredResource,
        s: &OutboundTrunkSpec,
        user: &str,
    ) -> Vec<Problem> {
        let header = s
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(TELNYX_USERNAME_HEADER));
        match header {
            None => vec![Problem::warning(
                ProblemKind::OutboundTrunk,
                self.at(r, "headers"),
                "no X-Telnyx-Username",
                format!("{} sends no {TELNYX_USERNAME_HEADER} header", r.addr),
            )
            .with_help(format!("add headers = {{ \"{TELNYX_USERNAME_HEADER}\" = \"{user}\" }}: without it Telnyx authenticates by IP allowlist only, which breaks when LiveKit's egress IPs shift"))],
            Some((_, v)) if v != user => vec![Problem::error(
                ProblemKind::OutboundTrunk,
                self.at(r, "headers"),
                format!("expected {user}"),
                format!("{} sends {TELNYX_USERNAME_HEADER} = `{v}`, not the credential connection's user `{user}`", r.addr),
            )
            .with_help(format!("set \"{TELNYX_USERNAME_HEADER}\" = \"{user}\""))],
            Some(_) => Vec::new(),
        }
    }
}

fn number_format(span: SourceSpan, addr: &Address, key: &str, want: &str) -> Problem {
    Problem::error(
        ProblemKind::NumberFormat,
        span,
        format!("expected {want}"),
        format!("{addr} sends numbers with {key} other than {want}"),
    )
    .with_help(format!("{key} = \"{want}\": otherwise Telnyx sends numbers without the +, and the agent cannot look the church up"))
}

fn wrong_host(span: SourceSpan, addr: &Address, got: &str, want: &str) -> Problem {
    let help = if got.ends_with(".livekit.cloud") {
        format!("`{got}` is not the project-id SIP host: LiveKit answers \"404 No trunk found\" on a project-NAME host; use \"{want}\"")
    } else {
        format!("calls must reach LiveKit's SIP endpoint: use \"{want}\"")
    };
    Problem::error(
        ProblemKind::SipHost,
        span,
        format!("expected {want}"),
        format!("{addr} sends calls to {got}, not to the project's SIP host"),
    )
    .with_help(help)
}

/// The host part of `sip:host[:port][;params]`.
fn sip_url_host(url: &str) -> &str {
    let rest = url.strip_prefix("sip:").unwrap_or(url);
    let end = rest.find([';', ':']).unwrap_or(rest.len());
    &rest[..end]
}
