//! The Telnyx API v2 emulator (`/v2/...`), following `reference/telnyx.md` to the letter.
//!
//! | Method | Path | Notes |
//! |---|---|---|
//! | GET | `/v2/available_phone_numbers` | inventory search; offered numbers become orderable |
//! | POST, GET | `/v2/number_orders` | create answers 200; `filter[customer_reference]`, `filter[status]` |
//! | GET, PATCH | `/v2/number_orders/{id}` | a GET completes a pending order |
//! | GET | `/v2/phone_numbers` | filters, `sort`, `page[number]`/`page[size]` ≤ 250 |
//! | GET, PATCH, DELETE | `/v2/phone_numbers/{id}` | DELETE releases the number |
//! | GET, POST | `/v2/{fqdn_connections,fqdns,credential_connections,outbound_voice_profiles,texml_applications}` | create answers 201 |
//! | GET, PATCH, DELETE | `/v2/{collection}/{id}` | nested `inbound`/`outbound` deep-merged |
//! | GET, PATCH | `/v2/fqdn_connections/{id}/fqdn_authentication` | an FQDN connection's credentials (SDK) |
//! | POST, GET | `/v2/number_reservations` | a 30-minute hold of searched numbers; `filter[phone_numbers.phone_number]`, `filter[status]` |
//! | GET | `/v2/number_reservations/{id}` | |
//! | POST | `/v2/number_reservations/{id}/actions/extend` | another 30 minutes, unless expired |
//! | GET, POST | `/v2/addresses` | E911 addresses (issue 21); no update |
//! | GET, DELETE | `/v2/addresses/{id}` | a delete is refused while a number's emergency service uses it |
//! | POST | `/v2/phone_numbers/{id}/actions/enable_emergency` | 202, `emergency_status` `provisioning` until it is `active` |
//!
//! Which behaviour comes from which source: routes, request and answer shapes from spec3.yml
//! of github:team-telnyx/openapi (held to it in strict mode, see [`super::contract`]); the
//! `fqdn_authentication` sub-resource from github:team-telnyx/telnyx-python; nested-object
//! deep merge, ignored unknown keys and `purchase-pending` from `reference/telnyx.md` (marked
//! there as assumptions); the runbook world from the runbooks; [`Realism`] switches each name
//! theirs.
//!
//! Quirks reproduced on purpose:
//! * a flat `outbound_voice_profile_id` (or any other unknown top-level key) in a PATCH is
//!   ignored: 200, nothing changes. Only the nested `outbound` object links a profile;
//! * an ordered number is `purchase-pending` until its order completes (after
//!   `order_completion_ms`, or at once when the order is read again); until then a PATCH of the
//!   number is refused with 422 and the call path finds the number not assigned;
//! * numbers reach the SIP side without `+` when the connection's `ani_number_format` /
//!   `dnis_number_format` say so ([`TelnyxState::inbound_invite`]); new connections default to
//!   `E.164` / `e164`, the forms without `+`, which is why the runbooks set both explicitly.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::http::{page_of, ApiRequest, ApiResponse};
use super::inventory;
use super::world::{uuid_from, SyntheticLine};
use super::{TELNYX_API_KEY, TELNYX_FQDN_PASSWORD, TELNYX_OUTBOUND_SIP_PASSWORD};

mod emergency;
mod invite;
mod listing;
mod numbers;
mod objects;
mod reservations;
mod schema;
mod seeds;
mod wire;

pub use invite::{format_ani, format_dnis, InboundFailure, InboundInvite};
use listing::*;
pub use reservations::RESERVATION_MINUTES;
use schema::*;
use wire::*;
pub use wire::{contract_violation, server_error, timestamp, too_many_requests, unauthorized};

/// The runbook's inbound FQDN connection, which every church number is bound to.
pub const RUNBOOK_FQDN_CONNECTION_ID: &str = "2925081061861885519";
const RUNBOOK_FQDN_ID: &str = "2925083349418510207";
const RUNBOOK_OVP_ID: &str = "2925086295615079772";
const LIVEKIT_SIP_HOST: &str = "5u9xu5ysoly.sip.livekit.cloud";
const MAX_PAGE_SIZE: usize = 250;
const DEFAULT_PAGE_SIZE: usize = 20;
const DEFAULT_SEARCH_LIMIT: usize = 20;
const DEFAULT_ORDER_COMPLETION_MS: u64 = 2_000;
const ERROR_DOCS: &str = "https://developers.telnyx.com/docs/overview/errors";

/// The whole Telnyx account: every object as the API renders it, keyed by id.
/// `Debug` shows counts only: connections hold SIP passwords.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct TelnyxState {
    pub phone_numbers: BTreeMap<String, Value>,
    pub number_orders: BTreeMap<String, Value>,
    pub fqdn_connections: BTreeMap<String, Value>,
    pub fqdns: BTreeMap<String, Value>,
    pub credential_connections: BTreeMap<String, Value>,
    pub outbound_voice_profiles: BTreeMap<String, Value>,
    pub texml_applications: BTreeMap<String, Value>,
    /// Numbers an earlier search returned: only these may be ordered.
    pub offered: BTreeSet<String>,
    /// Numbers that left the inventory for good.
    pub taken: BTreeSet<String>,
    /// Number reservations (holds for this account) by id, as the API renders them.
    #[serde(default)]
    pub number_reservations: BTreeMap<String, Value>,
    /// When each pending order completes by itself.
    pub order_due: BTreeMap<String, DateTime<Utc>>,
    /// E911 addresses (issue 21) by id, as the API renders them.
    #[serde(default)]
    pub addresses: BTreeMap<String, Value>,
    /// When each number's emergency request (provisioning or deprovisioning) is done.
    #[serde(default)]
    pub emergency_due: BTreeMap<String, DateTime<Utc>>,
    /// How long an emergency request stays `provisioning`: 0, the default, means it is
    /// `active` by the next request.
    #[serde(default)]
    pub emergency_provisioning_ms: u64,
    /// How long a number order stays pending unless it is read again first.
    #[serde(default = "default_order_completion_ms")]
    pub order_completion_ms: u64,
    /// What real accounts do that a plain sandbox does not ([`Realism`]); all off by default.
    #[serde(default)]
    pub realism: Realism,
    next_seq: u64,
    #[serde(skip)]
    revision: u64,
}

impl std::fmt::Debug for TelnyxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelnyxState")
            .field("phone_numbers", &self.phone_numbers.len())
            .field("number_orders", &self.number_orders.len())
            .field("fqdn_connections", &self.fqdn_connections.len())
            .field("fqdns", &self.fqdns.len())
            .field("credential_connections", &self.credential_connections.len())
            .field(
                "outbound_voice_profiles",
                &self.outbound_voice_profiles.len(),
            )
            .field("texml_applications", &self.texml_applications.len())
            .finish_non_exhaustive()
    }
}

/// Switches for what real Telnyx accounts do and a plain sandbox never did. Each says where the
/// behaviour comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Realism {
    /// Area codes Telnyx has no exact number in: a search there answers best-effort offers
    /// from a neighbouring area code, flagged `best_effort: true` and counted in
    /// `meta.best_effort_results` (spec3.yml, AvailablePhoneNumber and the `best_effort` filter:
    /// "Filter to determine if best effort results should be included").
    pub best_effort_area_codes: BTreeSet<String>,
    /// Orders complete as `failure`, their numbers `purchase-failed` (spec3.yml,
    /// NumberOrderWithPhoneNumbers.status and PhoneNumberDetailed.status enums).
    pub fail_orders: bool,
    /// Orders stay `pending` with their numbers `requirement-info-pending` until documents
    /// are provided: they never complete on their own (spec3.yml, PhoneNumber.requirements_status).
    pub requirement_info_pending: bool,
    /// Connection GETs show passwords masked as `********` (an assumption: the spec types
    /// `password` as a string and does not say whether it is returned in clear).
    pub mask_passwords: bool,
    /// Emergency requests stay `provisioning` for good (issue 21: a number's E911 service
    /// Telnyx never finishes; spec3.yml EmergencySettings.emergency_status).
    pub emergency_stuck: bool,
    /// Emergency requests end `provisioning-failed` (the same enum).
    pub emergency_fails: bool,
}

fn default_order_completion_ms() -> u64 {
    DEFAULT_ORDER_COMPLETION_MS
}

impl TelnyxState {
    /// An empty account.
    pub fn new() -> Self {
        Self {
            order_completion_ms: DEFAULT_ORDER_COMPLETION_MS,
            ..Self::default()
        }
    }

    /// Bumped by every change, so the server knows a request must be journaled.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn touch(&mut self) {
        self.revision += 1;
    }

    /// A fresh numeric-string id in Telnyx's 19-digit shape.
    fn next_id(&mut self) -> String {
        self.next_seq += 1;
        (2_960_000_000_000_000_000u64 + self.next_seq * 7).to_string()
    }

    fn next_uuid(&mut self) -> String {
        self.next_seq += 1;
        uuid_from(&format!("telnyx:{}", self.next_seq)).to_string()
    }

    fn table(&self, collection: Collection) -> &BTreeMap<String, Value> {
        match collection {
            Collection::FqdnConnections => &self.fqdn_connections,
            Collection::Fqdns => &self.fqdns,
            Collection::CredentialConnections => &self.credential_connections,
            Collection::OutboundVoiceProfiles => &self.outbound_voice_profiles,
            Collection::TexmlApplications => &self.texml_applications,
        }
    }

    fn table_mut(&mut self, collection: Collection) -> &mut BTreeMap<String, Value> {
        match collection {
            Collection::FqdnConnections => &mut self.fqdn_connections,
            Collection::Fqdns => &mut self.fqdns,
            Collection::CredentialConnections => &mut self.credential_connections,
            Collection::OutboundVoiceProfiles => &mut self.outbound_voice_profiles,
            Collection::TexmlApplications => &mut self.texml_applications,
        }
    }

    /// The connection (FQDN, credential or TeXML application) with this id.
    pub fn connection(&self, id: &str) -> Option<&Value> {
        self.fqdn_connections
            .get(id)
            .or_else(|| self.credential_connections.get(id))
            .or_else(|| self.texml_applications.get(id))
    }

    /// The phone number object holding `e164` (`+` form), if the account owns it.
    pub fn number_by_e164(&self, e164: &str) -> Option<&Value> {
        self.phone_numbers
            .values()
            .find(|n| str_field(n, "phone_number") == Some(e164))
    }

    fn connection_name(&self, id: &str) -> Option<String> {
        let connection = self.connection(id)?;
        str_field(connection, "connection_name")
            .or_else(|| str_field(connection, "friendly_name"))
            .map(str::to_string)
    }

    /// Answers one authenticated-or-not request under `/v2`.
    pub fn handle(&mut self, req: &ApiRequest) -> ApiResponse {
        let expected = format!("Bearer {TELNYX_API_KEY}");
        if req.authorization != Some(expected.as_str()) {
            return unauthorized().with_write(req.is_write());
        }
        self.handle_authenticated(req)
    }

    /// Answers a request whose credentials were already checked (or that is being replayed).
    pub fn handle_authenticated(&mut self, req: &ApiRequest) -> ApiResponse {
        self.complete_due_orders(req.now, None);
        self.complete_due_emergency(req.now);
        let segments = req.segments();
        let route: Vec<&str> = segments.iter().skip(1).copied().collect();
        let response = match (req.method, route.as_slice()) {
            ("GET", ["available_phone_numbers"]) => self.search_numbers(req),
            ("POST", ["number_orders"]) => self.create_order(req),
            ("GET", ["number_orders"]) => self.list_orders(req),
            ("GET", ["number_orders", id]) => self.get_order(id, req.now),
            ("PATCH", ["number_orders", id]) => self.patch_order(id, req),
            ("GET", ["phone_numbers"]) => self.list_numbers(req),
            ("GET", ["phone_numbers", id]) => self.get_number(id),
            ("PATCH", ["phone_numbers", id]) => self.patch_number(id, req),
            ("DELETE", ["phone_numbers", id]) => self.release_number(id, req.now),
            ("POST", ["phone_numbers", id, "actions", "enable_emergency"]) => {
                self.enable_emergency(id, req)
            }
            ("GET", ["addresses"]) => self.list_addresses(req),
            ("POST", ["addresses"]) => self.create_address(req),
            ("GET", ["addresses", id]) => self.get_address(id),
            ("DELETE", ["addresses", id]) => self.delete_address(id),
            ("POST", ["number_reservations"]) => self.create_reservation(req),
            ("GET", ["number_reservations"]) => self.list_reservations(req),
            ("GET", ["number_reservations", id]) => self.get_reservation(id),
            ("POST", ["number_reservations", id, "actions", "extend"]) => {
                self.extend_reservation(id, req.now)
            }
            ("GET" | "PATCH", ["fqdn_connections", id, "fqdn_authentication"]) => {
                self.fqdn_authentication(id, req)
            }
            (method, [collection, rest @ ..]) => match Collection::from_path(collection) {
                Some(c) => self.crud(c, method, rest, req),
                None => not_found("URL"),
            },
            _ => not_found("URL"),
        };
        let target = route.get(1).map(|id| id.to_string());
        response.with_resource(target).with_write(req.is_write())
    }

    fn crud(
        &mut self,
        collection: Collection,
        method: &str,
        rest: &[&str],
        req: &ApiRequest,
    ) -> ApiResponse {
        let response = match (method, rest) {
            ("GET", []) => self.list_collection(collection, req),
            ("POST", []) => self.create_object(collection, req),
            ("GET", [id]) => match self.table(collection).get(*id) {
                Some(object) => data(200, object.clone()),
                None => not_found(collection.record_type()),
            },
            ("PATCH", [id]) => self.patch_object(collection, id, req),
            ("DELETE", [id]) => self.delete_object(collection, id),
            _ => not_found("URL"),
        };
        if self.realism.mask_passwords && collection.has_credentials() {
            return mask_passwords(response);
        }
        response
    }
}

/// The answer with every `password` of its `data` shown as `********` ([`Realism::mask_passwords`]).
fn mask_passwords(mut response: ApiResponse) -> ApiResponse {
    let Ok(mut body) = serde_json::from_slice::<Value>(&response.body) else {
        return response;
    };
    let mask = |o: &mut Value| {
        if o.get("password")
            .and_then(Value::as_str)
            .is_some_and(|p| !p.is_empty())
        {
            o["password"] = json!("********");
        }
    };
    match body.get_mut("data") {
        Some(Value::Array(items)) => items.iter_mut().for_each(mask),
        Some(object @ Value::Object(_)) => mask(object),
        _ => return response,
    }
    response.body = serde_json::to_vec(&body).unwrap_or_default();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats_drop_the_plus_where_configured() {
        assert_eq!(format_dnis("+e164", "+14144007103", None), "+14144007103");
        assert_eq!(format_dnis("e164", "+14144007103", None), "14144007103");
        assert_eq!(format_dnis("national", "+14144007103", None), "4144007103");
        assert_eq!(
            format_dnis("sip_username", "+14144007103", Some("abc")),
            "abc"
        );
        assert_eq!(
            format_ani("+E.164", "+13125550000", "+14144007103"),
            "+13125550000"
        );
        assert_eq!(
            format_ani("E.164", "+13125550000", "+14144007103"),
            "13125550000"
        );
        assert_eq!(
            format_ani("E.164-national", "+13125550000", "+14144007103"),
            "3125550000"
        );
        assert_eq!(
            format_ani("+E.164-national", "+442071234567", "+14144007103"),
            "+442071234567"
        );
    }

    #[test]
    fn debug_never_shows_passwords() {
        let mut state = TelnyxState::new();
        state.seed_runbook();
        let shown = format!("{state:?}");
        assert!(!shown.contains(TELNYX_FQDN_PASSWORD));
        assert!(!shown.contains(TELNYX_OUTBOUND_SIP_PASSWORD));
        assert!(shown.contains("phone_numbers: 4"));
    }

    #[test]
    fn runbook_invite_carries_plus_and_targets_livekit() {
        let mut state = TelnyxState::new();
        state.seed_runbook();
        let invite = state
            .inbound_invite("+14144007103", "+13125550000")
            .unwrap();
        assert_eq!(invite.to_user, "+14144007103");
        assert_eq!(invite.from_user, "+13125550000");
        assert_eq!(
            invite.target.as_deref(),
            Some("5u9xu5ysoly.sip.livekit.cloud:5060")
        );
        assert_eq!(invite.transport, "TCP");
        assert!(matches!(
            state.inbound_invite("+19995550000", "+13125550000"),
            Err(InboundFailure::NotAssigned(_))
        ));
    }
}
