//! Call-path simulation: what happens when someone dials a number of the world.
//!
//! The path is walked hop by hop the way the carriers and LiveKit would: who owns the number
//! (Telnyx or Twilio) and whether it is assigned; the Telnyx connection (TeXML fallback,
//! active, FQDN record, transport, SIP host) or the Twilio trunk and its origination URL;
//! LiveKit's trunk match, its digest challenge, the dispatch rule, the room and the agent.
//! The first hop that fails decides the outcome and what the caller hears, reproducing the
//! runbooks' incidents ("404 No trunk found", "407 Proxy Authentication Required", "No SIP
//! Dispatch Rules matched", the agent that never joins).

use serde::Serialize;
use serde_json::Value;

use super::livekit::matching::{self, InboundCall, MatchError, Pin, TrunkMatch};
use super::livekit::RUNBOOK_SIP_HOST;
use super::telnyx::{InboundFailure, InboundInvite};
use super::twilio::{IncomingNumber, OriginationUrl};
use super::World;

/// Where Telnyx's SIP signalling comes from (its documented US signalling range).
const TELNYX_SOURCE_IP: &str = "192.76.120.10";
const TELNYX_FROM_HOST: &str = "sip.telnyx.com";
/// Where Twilio's Elastic SIP Trunking signalling comes from (us1).
const TWILIO_SOURCE_IP: &str = "54.172.60.0";
/// The SIP domain every LiveKit Cloud project host ends with.
const LIVEKIT_SIP_DOMAIN: &str = ".sip.livekit.cloud";

/// How a simulated call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The agent joined the room and answers.
    AgentAnswered,
    /// The number is not an active number of any account (unknown, or purchase pending),
    /// or its connection has nowhere to send the call.
    NumberNotAssigned,
    /// The number is owned but bound to nothing.
    NotInService,
    /// The number is bound to the TeXML fallback application.
    FallbackGreeting,
    /// A Twilio number on no SIP trunk: Twilio fetches TwiML from its voice URL instead.
    TwimlWebhook,
    /// The connection is switched off.
    ConnectionInactive,
    /// The carrier sends over UDP, which LiveKit's SIP endpoint does not reliably accept.
    TransportFailed,
    /// The carrier sends the INVITE to a host that is not a LiveKit SIP endpoint.
    Unreachable,
    /// LiveKit found no inbound trunk for the call: SIP 404.
    NoTrunkFound,
    /// Two trunks claim the call: LiveKit refuses it.
    TrunkConflict,
    /// The trunk has credentials the carrier does not answer: SIP 407, call rejected.
    ProxyAuthRequired,
    /// No dispatch rule takes the call.
    NoDispatchRule,
    /// The chosen rule wants a PIN first.
    PinRequested,
    /// The room is created but the rule dispatches no agent.
    AgentNeverJoins,
}

impl Outcome {
    /// What the person dialling hears.
    pub fn caller_hears(self) -> &'static str {
        match self {
            Self::AgentAnswered => "the agent's greeting",
            Self::NumberNotAssigned | Self::NoTrunkFound | Self::TrunkConflict => {
                "\"the number you have dialed is not assigned\""
            }
            Self::NotInService => "\"the number you have dialed is not in service\"",
            Self::FallbackGreeting => "the fallback greeting, then the call ends",
            Self::TwimlWebhook => "whatever the number's TwiML webhook answers",
            Self::ConnectionInactive => "a fast busy tone",
            Self::TransportFailed | Self::Unreachable => {
                "ringing, then silence until the call drops"
            }
            Self::ProxyAuthRequired => "silence or \"not assigned\": the call is rejected",
            Self::NoDispatchRule => "the call is rejected before it is answered",
            Self::PinRequested => "a prompt for a PIN",
            Self::AgentNeverJoins => "silence, then \"customer unavailable\"",
        }
    }
}

/// One stage of the call path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Number,
    TelnyxConnection,
    TelnyxFqdn,
    TexmlApplication,
    TwilioTrunk,
    TwilioOrigination,
    LivekitTrunk,
    SipAuth,
    DispatchRule,
    Room,
    Agent,
}

/// What one stage did with the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    pub stage: Stage,
    pub ok: bool,
    /// The object that handled the call at this stage.
    pub id: Option<String>,
    pub detail: String,
}

/// The whole simulated call: every hop, the outcome and what the caller hears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallReport {
    pub from: String,
    pub to: String,
    /// `telnyx` or `twilio`; `None` when no account owns the number.
    pub provider: Option<&'static str>,
    pub hops: Vec<Hop>,
    pub outcome: Outcome,
    pub connected: bool,
    pub caller_hears: String,
    /// The SIP status LiveKit answered with when it refused the call.
    pub sip_status: Option<u16>,
    /// LiveKit's own words when it refused the call.
    pub livekit_error: Option<String>,
    pub room_name: Option<String>,
    pub participant_identity: Option<String>,
    pub agents: Vec<String>,
}

/// Walks a call from `from` to `to` through the world without changing it.
pub fn simulate(world: &World, from: &str, to: &str) -> CallReport {
    let from = matching::normalize_number(from.trim());
    let to = matching::normalize_number(to.trim());
    let mut trace = Trace::new(&from, &to);
    let delivery = if world.telnyx.number_by_e164(&to).is_some() {
        trace.provider = Some("telnyx");
        via_telnyx(world, &from, &to, &mut trace)
    } else if let Some(number) = world.twilio.number_by_e164(&to) {
        trace.provider = Some("twilio");
        via_twilio(world, number, &from, &mut trace)
    } else {
        trace.fail(
            Stage::Number,
            None,
            format!("{to} is a number of neither the Telnyx nor the Twilio account"),
        );
        Err(Outcome::NumberNotAssigned)
    };
    match delivery {
        Ok(invite) => livekit_leg(world, &invite, trace),
        Err(outcome) => trace.finish(outcome),
    }
}

/// The INVITE as it reaches LiveKit.
struct SipInvite {
    from_user: String,
    from_host: String,
    source_ip: &'static str,
    to_user: String,
    /// Digest credentials the carrier answers a challenge with.
    credentials: Option<(String, String)>,
}

/// The report under construction.
struct Trace {
    report: CallReport,
    provider: Option<&'static str>,
}

impl Trace {
    fn new(from: &str, to: &str) -> Self {
        Self {
            report: CallReport {
                from: from.to_string(),
                to: to.to_string(),
                provider: None,
                hops: Vec::new(),
                outcome: Outcome::NumberNotAssigned,
                connected: false,
                caller_hears: String::new(),
                sip_status: None,
                livekit_error: None,
                room_name: None,
                participant_identity: None,
                agents: Vec::new(),
            },
            provider: None,
        }
    }

    fn hop(&mut self, stage: Stage, ok: bool, id: Option<&str>, detail: String) {
        self.report.hops.push(Hop {
            stage,
            ok,
            id: id.map(str::to_string),
            detail,
        });
    }

    fn pass(&mut self, stage: Stage, id: Option<&str>, detail: String) {
        self.hop(stage, true, id, detail);
    }

    fn fail(&mut self, stage: Stage, id: Option<&str>, detail: String) {
        self.hop(stage, false, id, detail);
    }

    fn refused_by_livekit(&mut self, status: Option<u16>, error: String) {
        self.report.sip_status = status;
        self.report.livekit_error = Some(error);
    }

    fn finish(mut self, outcome: Outcome) -> CallReport {
        self.report.provider = self.provider;
        self.report.outcome = outcome;
        self.report.connected = outcome == Outcome::AgentAnswered;
        self.report.caller_hears = outcome.caller_hears().to_string();
        self.report
    }
}

fn via_telnyx(
    world: &World,
    from: &str,
    to: &str,
    trace: &mut Trace,
) -> Result<SipInvite, Outcome> {
    let number = world.telnyx.number_by_e164(to);
    let number_id = number.and_then(|n| n.get("id")).and_then(Value::as_str);
    let status = number
        .and_then(|n| n.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let invite = match world.telnyx.inbound_invite(to, from) {
        Ok(invite) => invite,
        Err(failure) => return Err(telnyx_refusal(&failure, number_id, status, trace)),
    };
    // Issue 21: the called number's emergency status (spec3.yml EmergencySettings), shown
    // once its emergency service has been asked for; a number that never had it reads as
    // before.
    let emergency = number
        .and_then(|n| n.get("emergency_status"))
        .and_then(Value::as_str)
        .filter(|s| *s != "disabled")
        .map(|s| {
            let address = number
                .and_then(|n| n.get("emergency_address_id"))
                .and_then(Value::as_str)
                .unwrap_or("none");
            format!("; emergency service {s} (address {address})")
        })
        .unwrap_or_default();
    trace.pass(
        Stage::Number,
        number_id,
        format!(
            "Telnyx number {to} is {status}, on connection {}{emergency}",
            invite.connection_id
        ),
    );
    if invite.connection_kind == "texml_application" {
        let url = invite.texml_voice_url.clone().unwrap_or_default();
        trace.pass(
            Stage::TexmlApplication,
            Some(&invite.connection_id),
            format!(
                "TeXML application \"{}\" answers: Telnyx fetches {url} and plays the fallback greeting",
                invite.connection_name
            ),
        );
        return Err(Outcome::FallbackGreeting);
    }
    telnyx_connection_leg(world, &invite, trace)
}

fn telnyx_refusal(
    failure: &InboundFailure,
    id: Option<&str>,
    status: &str,
    trace: &mut Trace,
) -> Outcome {
    let (stage, outcome) = match failure {
        InboundFailure::NotAssigned(_) => (Stage::Number, Outcome::NumberNotAssigned),
        InboundFailure::NoConnection(_) => (Stage::Number, Outcome::NotInService),
        InboundFailure::ConnectionInactive(_) => {
            (Stage::TelnyxConnection, Outcome::ConnectionInactive)
        }
    };
    trace.fail(stage, id, format!("{failure} (number status: {status})"));
    outcome
}

fn telnyx_connection_leg(
    world: &World,
    invite: &InboundInvite,
    trace: &mut Trace,
) -> Result<SipInvite, Outcome> {
    let connection = Some(invite.connection_id.as_str());
    if invite.connection_kind != "fqdn_connection" {
        trace.fail(
            Stage::TelnyxConnection,
            connection,
            format!(
                "\"{}\" is a {}: it has no FQDN to deliver inbound calls to",
                invite.connection_name, invite.connection_kind
            ),
        );
        return Err(Outcome::NumberNotAssigned);
    }
    let Some(target) = &invite.target else {
        trace.fail(
            Stage::TelnyxConnection,
            connection,
            format!(
                "\"{}\" has no inbound.default_primary_fqdn_id: Telnyx has nowhere to send the call",
                invite.connection_name
            ),
        );
        return Err(Outcome::NumberNotAssigned);
    };
    if invite.transport.eq_ignore_ascii_case("UDP") {
        trace.fail(
            Stage::TelnyxConnection,
            connection,
            format!(
                "\"{}\" sends over UDP, which LiveKit's SIP endpoint does not reliably accept; use TCP",
                invite.connection_name
            ),
        );
        return Err(Outcome::TransportFailed);
    }
    trace.pass(
        Stage::TelnyxConnection,
        connection,
        format!(
            "\"{}\" is active and sends over {} (To user {:?}, From user {:?})",
            invite.connection_name, invite.transport, invite.to_user, invite.from_user
        ),
    );
    let host = target.rsplit_once(':').map_or(target.as_str(), |(h, _)| h);
    check_sip_host(host, Stage::TelnyxFqdn, target, trace)?;
    Ok(SipInvite {
        from_user: invite.from_user.clone(),
        from_host: TELNYX_FROM_HOST.to_string(),
        source_ip: TELNYX_SOURCE_IP,
        to_user: invite.to_user.clone(),
        credentials: telnyx_credentials(world, invite),
    })
}

/// The user name and password a Telnyx connection answers a digest challenge with.
fn telnyx_credentials(world: &World, invite: &InboundInvite) -> Option<(String, String)> {
    let user = invite.auth_user_name.clone().filter(|u| !u.is_empty())?;
    let password = world
        .telnyx
        .connection(&invite.connection_id)?
        .get("password")?
        .as_str()
        .filter(|p| !p.is_empty())?
        .to_string();
    Some((user, password))
}

/// The carrier's target must be this project's SIP host. Another LiveKit host (the project
/// *name* host) belongs to no project with our trunks: LiveKit answers 404.
fn check_sip_host(
    host: &str,
    stage: Stage,
    target: &str,
    trace: &mut Trace,
) -> Result<(), Outcome> {
    if host.eq_ignore_ascii_case(RUNBOOK_SIP_HOST) {
        trace.pass(
            stage,
            None,
            format!("the INVITE goes to {target}, the project's SIP host"),
        );
        return Ok(());
    }
    if host.to_ascii_lowercase().ends_with(LIVEKIT_SIP_DOMAIN) {
        trace.fail(
            stage,
            None,
            format!(
                "the INVITE goes to {target}, not the project-id host {RUNBOOK_SIP_HOST}: no project there has a trunk for it"
            ),
        );
        trace.refused_by_livekit(Some(404), "404 No trunk found".into());
        return Err(Outcome::NoTrunkFound);
    }
    trace.fail(
        stage,
        None,
        format!("the INVITE goes to {target}, which is not a LiveKit SIP endpoint"),
    );
    Err(Outcome::Unreachable)
}

fn via_twilio(
    world: &World,
    number: &IncomingNumber,
    from: &str,
    trace: &mut Trace,
) -> Result<SipInvite, Outcome> {
    let Some(trunk_sid) = number.trunk_sid.as_deref() else {
        if number.voice_url.is_empty() {
            trace.fail(
                Stage::Number,
                Some(&number.sid),
                format!(
                    "Twilio number {} is on no trunk and has no voice URL",
                    number.phone_number
                ),
            );
            return Err(Outcome::NotInService);
        }
        trace.pass(
            Stage::Number,
            Some(&number.sid),
            format!(
                "Twilio number {} is on no SIP trunk: Twilio fetches TwiML from {}",
                number.phone_number, number.voice_url
            ),
        );
        return Err(Outcome::TwimlWebhook);
    };
    trace.pass(
        Stage::Number,
        Some(&number.sid),
        format!(
            "Twilio number {} is on trunk {trunk_sid}",
            number.phone_number
        ),
    );
    let Some(trunk) = world.twilio.trunks.get(trunk_sid) else {
        trace.fail(
            Stage::TwilioTrunk,
            Some(trunk_sid),
            "the trunk does not exist".into(),
        );
        return Err(Outcome::NotInService);
    };
    let domain = trunk.domain_name.clone().unwrap_or_default();
    trace.pass(
        Stage::TwilioTrunk,
        Some(&trunk.sid),
        format!("trunk {domain}"),
    );
    let Some(url) = first_origination(world, trunk_sid) else {
        trace.fail(
            Stage::TwilioOrigination,
            Some(trunk_sid),
            "the trunk has no enabled origination URL: Twilio has nowhere to send the call".into(),
        );
        return Err(Outcome::NumberNotAssigned);
    };
    let host = sip_uri_host(&url.sip_url);
    check_sip_host(&host, Stage::TwilioOrigination, &url.sip_url, trace)?;
    Ok(SipInvite {
        from_user: from.to_string(),
        from_host: if domain.is_empty() {
            "pstn.twilio.com".into()
        } else {
            domain
        },
        source_ip: TWILIO_SOURCE_IP,
        to_user: number.phone_number.clone(),
        credentials: None,
    })
}

/// The origination URL Twilio tries first: enabled, lowest priority, highest weight.
fn first_origination<'a>(world: &'a World, trunk_sid: &str) -> Option<&'a OriginationUrl> {
    world
        .twilio
        .origination_urls
        .values()
        .filter(|u| u.trunk_sid == trunk_sid && u.enabled)
        .min_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)))
}

/// `sip:host:port;transport=tcp` -> `host`.
fn sip_uri_host(uri: &str) -> String {
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .unwrap_or(uri);
    let hostport = rest.split(';').next().unwrap_or_default();
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    hostport.split(':').next().unwrap_or_default().to_string()
}

fn livekit_leg(world: &World, invite: &SipInvite, mut trace: Trace) -> CallReport {
    let call = InboundCall {
        from_user: &invite.from_user,
        from_host: &invite.from_host,
        source_ip: invite.source_ip,
        to_user: &invite.to_user,
    };
    let trunks = world.livekit.inbound_trunks.0.values();
    let trunk = match matching::match_trunk(trunks, &call) {
        Ok(m) => m.trunk().map(|t| (t, m)),
        Err(e) => return trunk_conflict(trace, &e),
    };
    let Some((trunk, how)) = trunk else {
        trace.fail(
            Stage::LivekitTrunk,
            None,
            format!(
                "no inbound trunk lists {:?} and no wildcard trunk accepts the call",
                invite.to_user
            ),
        );
        trace.refused_by_livekit(Some(404), "404 No trunk found".into());
        return trace.finish(Outcome::NoTrunkFound);
    };
    trace.pass(
        Stage::LivekitTrunk,
        Some(&trunk.sip_trunk_id),
        trunk_detail(trunk, how, &invite.to_user),
    );
    if let Err(outcome) = digest_challenge(trunk, invite, &mut trace) {
        return trace.finish(outcome);
    }
    dispatch(world, trunk, invite, trace)
}

fn trunk_conflict(mut trace: Trace, e: &MatchError) -> CallReport {
    trace.fail(Stage::LivekitTrunk, None, e.to_string());
    trace.refused_by_livekit(None, e.to_string());
    trace.finish(Outcome::TrunkConflict)
}

fn trunk_detail(
    trunk: &livekit_protocol::SipInboundTrunkInfo,
    how: TrunkMatch<'_>,
    to_user: &str,
) -> String {
    let normalized = matching::normalize_number(to_user);
    let kind = match how {
        TrunkMatch::Default(_) => "the wildcard trunk",
        _ => "the trunk for the number",
    };
    let mut detail = format!("\"{}\" is {kind}", trunk.name);
    if normalized != to_user {
        detail.push_str(&format!(
            " (LiveKit normalized {to_user:?} to {normalized:?})"
        ));
    }
    detail
}

/// LiveKit challenges for digest auth when the trunk has credentials; the carrier must
/// answer with the same user name and password.
fn digest_challenge(
    trunk: &livekit_protocol::SipInboundTrunkInfo,
    invite: &SipInvite,
    trace: &mut Trace,
) -> Result<(), Outcome> {
    if trunk.auth_username.is_empty() && trunk.auth_password.is_empty() {
        return Ok(());
    }
    let answered = invite
        .credentials
        .as_ref()
        .is_some_and(|(u, p)| *u == trunk.auth_username && *p == trunk.auth_password);
    let id = Some(trunk.sip_trunk_id.as_str());
    if answered {
        trace.pass(
            Stage::SipAuth,
            id,
            "LiveKit challenged and the carrier answered with the trunk's credentials".into(),
        );
        return Ok(());
    }
    let why = if invite.credentials.is_some() {
        "the carrier's credentials do not match the trunk's"
    } else {
        "the carrier sends no credentials"
    };
    trace.fail(
        Stage::SipAuth,
        id,
        format!("the trunk has auth_username/auth_password set and {why}: every INVITE is challenged and rejected"),
    );
    trace.refused_by_livekit(Some(407), "407 Proxy Authentication Required".into());
    Err(Outcome::ProxyAuthRequired)
}

fn dispatch(
    world: &World,
    trunk: &livekit_protocol::SipInboundTrunkInfo,
    invite: &SipInvite,
    mut trace: Trace,
) -> CallReport {
    let rules = world.livekit.dispatch_rules.0.values();
    let rule = match matching::match_dispatch_rule(
        Some(trunk),
        rules,
        &invite.from_user,
        &invite.to_user,
        Pin::NotSent,
    ) {
        Ok(rule) => rule,
        Err(e) => {
            trace.fail(Stage::DispatchRule, None, e.to_string());
            trace.refused_by_livekit(None, e.to_string());
            return trace.finish(Outcome::NoDispatchRule);
        }
    };
    let rule_id = Some(rule.sip_dispatch_rule_id.as_str());
    trace.pass(
        Stage::DispatchRule,
        rule_id,
        format!("\"{}\" takes the call", rule.name),
    );
    if rule_pin(rule).is_some_and(|pin| !pin.is_empty()) {
        trace.fail(
            Stage::Room,
            rule_id,
            "the rule is PIN-protected: the caller is asked for a PIN".into(),
        );
        return trace.finish(Outcome::PinRequested);
    }
    let admission = matching::admit(
        rule,
        &invite.from_user,
        &invite.to_user,
        &matching::random_suffix(),
    );
    trace.pass(
        Stage::Room,
        None,
        format!(
            "room {} as {}",
            admission.room_name, admission.participant_identity
        ),
    );
    trace.report.room_name = Some(admission.room_name);
    trace.report.participant_identity = Some(admission.participant_identity);
    let agents: Vec<String> = rule
        .room_config
        .iter()
        .flat_map(|c| c.agents.iter().map(|a| a.agent_name.clone()))
        .collect();
    if agents.is_empty() {
        trace.fail(
            Stage::Agent,
            rule_id,
            "the rule's room_config names no agent: the caller waits in an empty room".into(),
        );
        return trace.finish(Outcome::AgentNeverJoins);
    }
    trace.pass(
        Stage::Agent,
        rule_id,
        format!("dispatched: {}", agents.join(", ")),
    );
    trace.report.agents = agents;
    trace.finish(Outcome::AgentAnswered)
}

fn rule_pin(rule: &livekit_protocol::SipDispatchRuleInfo) -> Option<&str> {
    use livekit_protocol::sip_dispatch_rule::Rule;
    match rule.rule.as_ref()?.rule.as_ref()? {
        Rule::DispatchRuleDirect(d) => Some(&d.pin),
        Rule::DispatchRuleIndividual(i) => Some(&i.pin),
        Rule::DispatchRuleCallee(c) => Some(&c.pin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runbook() -> World {
        World::seeded("runbook").unwrap()
    }

    const CALLER: &str = "+13125550142";

    #[test]
    fn medhanialem_reaches_the_agent() {
        let report = simulate(&runbook(), CALLER, "+14144007103");
        assert_eq!(report.outcome, Outcome::AgentAnswered, "{report:#?}");
        assert_eq!(report.provider, Some("telnyx"));
        assert_eq!(report.agents, vec!["churchwiseai-voice"]);
        assert!(report.room_name.unwrap().starts_with("call-_+13125550142_"));
    }

    #[test]
    fn melvindale_connects_but_the_agent_never_joins() {
        let report = simulate(&runbook(), CALLER, "+17473897673");
        assert_eq!(report.outcome, Outcome::AgentNeverJoins, "{report:#?}");
        assert!(report.caller_hears.contains("customer unavailable"));
    }

    #[test]
    fn the_fallback_number_plays_the_greeting() {
        let report = simulate(&runbook(), CALLER, "+14697288326");
        assert_eq!(report.outcome, Outcome::FallbackGreeting, "{report:#?}");
    }

    #[test]
    fn twilio_numbers_reach_the_agent_through_the_locked_trunk() {
        let report = simulate(&runbook(), CALLER, "+14696152221");
        assert_eq!(report.outcome, Outcome::AgentAnswered, "{report:#?}");
        assert_eq!(report.provider, Some("twilio"));
        let trunk_hop = report
            .hops
            .iter()
            .find(|h| h.stage == Stage::LivekitTrunk)
            .unwrap();
        assert_eq!(trunk_hop.id.as_deref(), Some("ST_Xa3Bp9aixRFP"));
    }

    #[test]
    fn an_unknown_number_is_not_assigned() {
        let report = simulate(&runbook(), CALLER, "+19998887777");
        assert_eq!(report.outcome, Outcome::NumberNotAssigned);
        assert_eq!(report.provider, None);
    }

    #[test]
    fn sip_uri_hosts_are_parsed() {
        assert_eq!(
            sip_uri_host("sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp"),
            RUNBOOK_SIP_HOST
        );
        assert_eq!(sip_uri_host("sips:user@host.example:5061"), "host.example");
    }
}
