//! The Twilio emulator: Core v2010 IncomingPhoneNumbers and Elastic SIP Trunking v1, following
//! `reference/twilio.md`. HTTP Basic auth on every path (401 / 20003), PascalCase form bodies
//! in, snake_case JSON out, `DELETE` answers 204 with no body.
//!
//! | Method | Path | Notes |
//! |---|---|---|
//! | GET | `/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json` | `PhoneNumber` (partial, `*` = any digit), `FriendlyName`; `PageSize`/`Page`, relative `next_page_uri` |
//! | GET, POST, DELETE | `/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}.json` | update takes `TrunkSid`, `VoiceUrl`, …; delete releases |
//! | GET, POST | `/v1/Trunks` | create answers 201 |
//! | GET, POST, DELETE | `/v1/Trunks/{TK}` | `DomainName` optional (origination-only trunks; twilio-oai); a deleted trunk's domain stays reserved for [`TwilioState::domain_reservation_days`] (400 / 21248; support article) |
//! | GET, POST | `/v1/Trunks/{TK}/PhoneNumbers` | attach with `PhoneNumberSid`; 21223 while the number is on another trunk (a number has one `trunk_sid`: twilio-oai) |
//! | GET, DELETE | `/v1/Trunks/{TK}/PhoneNumbers/{PN}` | delete detaches, never releases |
//! | GET, POST | `/v1/Trunks/{TK}/OriginationUrls` | all five keys required on create |
//! | GET, POST, DELETE | `/v1/Trunks/{TK}/OriginationUrls/{OU}` | |
//!
//! v2010 paths need the `.json` suffix; without it the real API answers XML, which the sandbox
//! does not speak: it answers 404 there. Buying numbers (`POST IncomingPhoneNumbers.json`) is
//! not emulated: cwa only reads and rewires the legacy Twilio numbers. Missing required parameters answer 400 / 20001,
//! invalid values 400 / 21xxx, unknown objects 404 / 20404.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::http::{page_of, ApiRequest, ApiResponse};
use super::world::hex_digest;
use super::{TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN};

mod incoming;
mod seeds;
mod trunking;
mod wire;

use incoming::*;
use wire::*;
pub use wire::{contract_violation, server_error, too_many_requests, unauthorized};

const API_VERSION: &str = "2010-04-01";
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;
const LIVEKIT_ORIGINATION: &str = "sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp";

/// An IncomingPhoneNumber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingNumber {
    pub sid: String,
    pub phone_number: String,
    pub friendly_name: String,
    pub trunk_sid: Option<String>,
    pub voice_url: String,
    pub voice_method: String,
    pub voice_fallback_url: String,
    pub voice_fallback_method: String,
    pub voice_application_sid: Option<String>,
    pub voice_caller_id_lookup: bool,
    pub voice_receive_mode: String,
    pub sms_url: String,
    pub sms_method: String,
    pub status_callback: String,
    pub status_callback_method: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// An Elastic SIP trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trunk {
    pub sid: String,
    pub friendly_name: Option<String>,
    pub domain_name: Option<String>,
    pub disaster_recovery_url: Option<String>,
    pub disaster_recovery_method: Option<String>,
    pub transfer_mode: String,
    pub transfer_caller_id: String,
    pub secure: bool,
    pub cnam_lookup_enabled: bool,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// Where a trunk sends the calls it receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginationUrl {
    pub sid: String,
    pub trunk_sid: String,
    pub friendly_name: String,
    pub sip_url: String,
    pub priority: u32,
    pub weight: u32,
    pub enabled: bool,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// The Twilio account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TwilioState {
    pub numbers: BTreeMap<String, IncomingNumber>,
    pub trunks: BTreeMap<String, Trunk>,
    pub origination_urls: BTreeMap<String, OriginationUrl>,
    /// Domains of deleted trunks (lower-case) and until when no trunk may take them: Twilio
    /// keeps a deleted trunk's domain for up to 30 days (support article; error 21248).
    #[serde(default)]
    pub reserved_domains: BTreeMap<String, DateTime<Utc>>,
    /// Realism switch: how many days a deleted trunk's domain stays reserved (30, the
    /// documented maximum, unless a test sets it; 0 switches reservations off).
    #[serde(default = "default_reservation_days")]
    pub domain_reservation_days: u32,
    next_seq: u64,
    #[serde(skip)]
    revision: u64,
}

fn default_reservation_days() -> u32 {
    30
}

impl Default for TwilioState {
    fn default() -> Self {
        Self {
            numbers: BTreeMap::new(),
            trunks: BTreeMap::new(),
            origination_urls: BTreeMap::new(),
            reserved_domains: BTreeMap::new(),
            domain_reservation_days: default_reservation_days(),
            next_seq: 0,
            revision: 0,
        }
    }
}

impl TwilioState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bumped by every change, so the server knows a request must be journaled.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn touch(&mut self) {
        self.revision += 1;
    }

    fn next_sid(&mut self, prefix: &str) -> String {
        self.next_seq += 1;
        format!(
            "{prefix}{}",
            hex_digest(&format!("sandbox:{prefix}:{}", self.next_seq), 32)
        )
    }

    /// Answers one request under `/2010-04-01` or `/v1`, checking Basic auth first.
    pub fn handle(&mut self, req: &ApiRequest) -> ApiResponse {
        if !is_authorized(req.authorization) {
            return unauthorized().with_write(req.is_write());
        }
        self.handle_authenticated(req)
    }

    /// Answers a request whose credentials were already checked (or that is being replayed).
    pub fn handle_authenticated(&mut self, req: &ApiRequest) -> ApiResponse {
        let segments = req.segments();
        let response = match segments.first() {
            Some(&API_VERSION) => self.core(req, &segments[1..]),
            Some(&"v1") => self.trunking(req, &segments[1..]),
            _ => not_found(req.path),
        };
        response.with_write(req.is_write())
    }

    /// The incoming number holding `e164`, if the account owns it.
    pub fn number_by_e164(&self, e164: &str) -> Option<&IncomingNumber> {
        self.numbers.values().find(|n| n.phone_number == e164)
    }
}

/// The SID a runbook object gets: prefix + first 32 hex digits of sha256(`runbook:<key>`).
pub fn runbook_sid(prefix: &str, natural_key: &str) -> String {
    format!(
        "{prefix}{}",
        hex_digest(&format!("runbook:{natural_key}"), 32)
    )
}

fn is_authorized(authorization: Option<&str>) -> bool {
    let Some(encoded) = authorization.and_then(|a| a.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("{TWILIO_ACCOUNT_SID}:{TWILIO_AUTH_TOKEN}").as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runbook_sids_follow_the_documented_rule() {
        let sid = runbook_sid("PN", "+18886030316");
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("PN"));
        let mut state = TwilioState::new();
        state.seed_runbook();
        assert_eq!(state.numbers.len(), 4);
        assert_eq!(state.trunks.len(), 2);
        assert!(state.numbers.contains_key(&sid));
    }

    #[test]
    fn phone_filter_takes_wildcards() {
        assert!(phone_matches("+18886030316", "888"));
        assert!(phone_matches("+18886030316", "+1888*03"));
        assert!(!phone_matches("+18886030316", "999"));
    }
}
