//! The test call of `cwa check --ring NUMBER`: one call placed through the line, reported hop
//! by hop, so a reader learns where a call fails rather than only that it does.
//!
//! The call goes through the sandbox's call-path simulation when LiveKit is on loopback
//! (the sandbox: a LiveKit Cloud project never is), and otherwise through LiveKit itself: an
//! outbound SIP participant on the declared outbound trunk dials the number, and cwa waits
//! (bounded) for the inbound leg's room to appear and the agent to join it. Nothing here
//! prints: [`crate::render::check`] draws the report.

use std::time::{Duration, Instant};

use livekit_api::services::room::RoomClient;
use livekit_api::services::sip::{CreateSIPParticipantOptions, SIPClient};
use livekit_protocol as proto;
use miette::{miette, IntoDiagnostic, WrapErr};
use serde::Serialize;
use serde_json::{json, Value};

use crate::model::{Desired, Kind, Live, NumberRef, ProviderName, Spec, E164};
use crate::providers::Env;

/// How long a live test call may ring, and how long cwa then waits for the agent.
const RING_TIMEOUT: Duration = Duration::from_secs(30);
const AGENT_TIMEOUT: Duration = Duration::from_secs(45);
const POLL_EVERY: Duration = Duration::from_secs(2);
/// Who calls on the sandbox when lines.toml declares no outbound DID.
const SANDBOX_CALLER: &str = "+13125550142";

/// One hop of a test call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingHop {
    /// `number`, `connection`, `trunk`, `dispatch`, `agent` (sandbox) or `outbound_call`,
    /// `inbound_room`, `agent` (a real call).
    pub stage: String,
    pub ok: bool,
    pub id: Option<String>,
    pub detail: String,
}

/// The whole test call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingReport {
    pub from: String,
    pub to: String,
    /// `sandbox` (call-path simulation) or `livekit` (a real call).
    pub via: String,
    pub hops: Vec<RingHop>,
    pub outcome: String,
    pub passed: bool,
}

impl RingReport {
    /// The first hop that failed, where the call stopped.
    pub fn failed_hop(&self) -> Option<&RingHop> {
        self.hops.iter().find(|h| !h.ok)
    }
}

/// The number `--ring` names, in E.164 (a wrong one is the user's to fix before any call).
pub fn target(number: &str) -> miette::Result<E164> {
    E164::normalize(number).map_err(|e| {
        miette!(
            help = "give the number in E.164, e.g. +14144007103",
            "--ring {number}: {e}"
        )
    })
}

/// Places the test call, on the sandbox or for real.
pub async fn ring(
    env: &Env,
    desired: &Desired,
    live: &Live,
    to: &E164,
) -> miette::Result<RingReport> {
    let livekit_url = env
        .require(ProviderName::Livekit, "LIVEKIT_URL")
        .map_err(|e| miette!("{e}"))?
        .to_string();
    if is_loopback(&livekit_url) {
        ring_sandbox(&livekit_url, desired, to).await
    } else {
        ring_livekit(env, &livekit_url, desired, live, to).await
    }
}

fn is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "localhost" || h == "[::1]" || h.starts_with("127."))
}

/// The number the outbound trunk calls from: its first declared number.
fn outbound_caller(desired: &Desired) -> Option<(String, E164)> {
    desired.resources.values().find_map(|r| match &r.spec {
        Spec::LivekitOutboundTrunk(t) => t.numbers.iter().find_map(|n| match n {
            NumberRef::Number(n) => Some((t.name.clone(), n.clone())),
            NumberRef::Of(_) => None,
        }),
        _ => None,
    })
}

/// The sandbox's call-path simulation, hop by hop.
async fn ring_sandbox(base: &str, desired: &Desired, to: &E164) -> miette::Result<RingReport> {
    let from = outbound_caller(desired)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| SANDBOX_CALLER.to_string());
    let url = format!("{}/sandbox/calls", base.trim_end_matches('/'));
    let answer = reqwest::Client::new()
        .post(&url)
        .json(&json!({"from": from, "to": to.as_str()}))
        .send()
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot reach the sandbox's call simulation at {url}"))?;
    let status = answer.status();
    let body: Value = answer
        .json()
        .await
        .into_diagnostic()
        .wrap_err("the sandbox's call report is not JSON")?;
    if !status.is_success() {
        return Err(miette!(
            "the sandbox refused the test call ({status}): {body}; is LIVEKIT_URL a cwa sandbox?"
        ));
    }
    Ok(sandbox_report(&body, from, to))
}

fn sandbox_report(body: &Value, from: String, to: &E164) -> RingReport {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let hops = body["hops"]
        .as_array()
        .map(|hops| {
            hops.iter()
                .map(|h| RingHop {
                    stage: text(&h["stage"]).unwrap_or_default(),
                    ok: h["ok"].as_bool().unwrap_or(false),
                    id: text(&h["id"]),
                    detail: text(&h["detail"]).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let outcome = text(&body["outcome"]).unwrap_or_else(|| "unknown".into());
    let hears = text(&body["caller_hears"]).unwrap_or_default();
    RingReport {
        from,
        to: to.to_string(),
        via: "sandbox".into(),
        hops,
        passed: outcome == "agent_answered",
        outcome: format!("{outcome} (the caller hears {hears})"),
    }
}

/// A real test call: LiveKit dials `to` from the declared outbound trunk into a probe room;
/// the call comes back in through the carrier and LiveKit's inbound trunk, whose dispatch
/// rule creates a room and sends the agent. cwa waits for that room and for the agent.
async fn ring_livekit(
    env: &Env,
    url: &str,
    desired: &Desired,
    live: &Live,
    to: &E164,
) -> miette::Result<RingReport> {
    let (trunk_name, from) = outbound_caller(desired).ok_or_else(|| {
        miette!(
            help = "declare a [livekit.outbound_trunk.<name>] with the outbound DID in numbers",
            "a live test call needs an outbound trunk to call from"
        )
    })?;
    let trunk_id = live
        .of_kind(Kind::LivekitOutboundTrunk)
        .find(|o| matches!(&o.spec, Spec::LivekitOutboundTrunk(t) if t.name == trunk_name))
        .map(|o| o.id.clone())
        .ok_or_else(|| miette!("the outbound trunk {trunk_name:?} is not live"))?;
    let key = env
        .require(ProviderName::Livekit, "LIVEKIT_API_KEY")
        .map_err(|e| miette!("{e}"))?;
    let secret = env
        .require(ProviderName::Livekit, "LIVEKIT_API_SECRET")
        .map_err(|e| miette!("{e}"))?;
    let sip = SIPClient::with_api_key(url, key, secret);
    let rooms = RoomClient::with_api_key(url, key, secret);
    let probe = format!(
        "cwa-ring-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut report = RingReport {
        from: from.to_string(),
        to: to.to_string(),
        via: "livekit".into(),
        hops: Vec::new(),
        outcome: String::new(),
        passed: false,
    };
    let dialled = dial(&sip, &trunk_id, to, &probe).await;
    let answered = dialled.is_ok();
    report.hops.push(match dialled {
        Ok(p) => RingHop {
            stage: "outbound_call".into(),
            ok: true,
            id: Some(trunk_id.clone()),
            detail: format!("answered; SIP participant {} in room {probe}", p.participant_id),
        },
        Err(e) => RingHop {
            stage: "outbound_call".into(),
            ok: false,
            id: Some(trunk_id.clone()),
            detail: format!("LiveKit could not place the call through the outbound trunk: {e} (check the Telnyx credential connection, its outbound voice profile and the DID binding)"),
        },
    });
    if answered {
        let inbound = wait_for_inbound_room(&rooms, &probe, &from).await;
        report.hops.push(inbound.clone());
        if inbound.ok {
            let room = inbound.id.clone().unwrap_or_default();
            report
                .hops
                .push(wait_for_agent(&rooms, &room, &desired.settings.agent_name).await);
        }
    }
    let _ = rooms.delete_room(&probe).await;
    report.passed = report.hops.iter().all(|h| h.ok) && report.hops.len() == 3;
    report.outcome = match report.failed_hop() {
        None => "agent_answered".into(),
        Some(h) => format!("failed at {}", h.stage),
    };
    Ok(report)
}

async fn dial(
    sip: &SIPClient,
    trunk_id: &str,
    to: &E164,
    room: &str,
) -> Result<proto::SipParticipantInfo, String> {
    sip.create_sip_participant(
        trunk_id.to_string(),
        to.to_string(),
        room.to_string(),
        CreateSIPParticipantOptions {
            participant_identity: "cwa-ring".into(),
            participant_name: Some("cwa check --ring".into()),
            wait_until_answered: Some(true),
            ringing_timeout: Some(RING_TIMEOUT),
            max_call_duration: Some(AGENT_TIMEOUT + RING_TIMEOUT),
            ..Default::default()
        },
        None,
    )
    .await
    .map_err(|e| e.to_string())
}

/// The room the inbound leg landed in: not the probe room, and holding a SIP participant
/// that calls from the outbound DID (individual rules also name the room after the caller).
async fn wait_for_inbound_room(rooms: &RoomClient, probe: &str, from: &E164) -> RingHop {
    let started = Instant::now();
    let mut last_error = String::new();
    while started.elapsed() < AGENT_TIMEOUT {
        match rooms.list_rooms(Vec::new()).await {
            Ok(list) => {
                for room in list.iter().filter(|r| r.name != probe) {
                    if room.name.contains(from.as_str())
                        || has_caller(rooms, &room.name, from).await
                    {
                        return RingHop {
                            stage: "inbound_room".into(),
                            ok: true,
                            id: Some(room.name.clone()),
                            detail: "the call came back in through the inbound trunk and its dispatch rule made this room".into(),
                        };
                    }
                }
            }
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    RingHop {
        stage: "inbound_room".into(),
        ok: false,
        id: None,
        detail: format!(
            "no room received the call within {}s: the number, its connection or the inbound trunk did not route it{}",
            AGENT_TIMEOUT.as_secs(),
            if last_error.is_empty() { String::new() } else { format!(" (last error: {last_error})") }
        ),
    }
}

async fn has_caller(rooms: &RoomClient, room: &str, from: &E164) -> bool {
    rooms.list_participants(room).await.is_ok_and(|ps| {
        ps.iter().any(|p| {
            p.kind == proto::participant_info::Kind::Sip as i32
                && (p.identity.contains(from.as_str())
                    || p.attributes.values().any(|v| v == from.as_str()))
        })
    })
}

async fn wait_for_agent(rooms: &RoomClient, room: &str, agent: &str) -> RingHop {
    let started = Instant::now();
    while started.elapsed() < AGENT_TIMEOUT {
        if let Ok(ps) = rooms.list_participants(room).await {
            if let Some(a) = ps
                .iter()
                .find(|p| p.kind == proto::participant_info::Kind::Agent as i32)
            {
                return RingHop {
                    stage: "agent".into(),
                    ok: true,
                    id: Some(a.identity.clone()),
                    detail: format!("an agent joined the room (want {agent})"),
                };
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    RingHop {
        stage: "agent".into(),
        ok: false,
        id: Some(room.to_string()),
        detail: format!(
            "no agent joined within {}s: the dispatch rule names no agent, or {agent} is not running",
            AGENT_TIMEOUT.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_means_the_sandbox() {
        assert!(is_loopback("http://127.0.0.1:8787"));
        assert!(is_loopback("http://localhost:7880"));
        assert!(!is_loopback("https://cwa-voice-9x077mph.livekit.cloud"));
    }

    #[test]
    fn a_sandbox_report_fails_at_its_first_bad_hop() {
        let body = json!({
            "outcome": "agent_never_joins",
            "caller_hears": "silence",
            "hops": [
                {"stage": "number", "ok": true, "id": "1", "detail": "active"},
                {"stage": "agent", "ok": false, "id": null, "detail": "no agent"}
            ]
        });
        let to = E164::parse("+17473897673").unwrap();
        let r = sandbox_report(&body, "+12268830000".into(), &to);
        assert!(!r.passed);
        assert_eq!(r.failed_hop().unwrap().stage, "agent");
    }
}
