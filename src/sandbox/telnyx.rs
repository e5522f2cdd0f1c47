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
    /// When each pending order completes by itself.
    pub order_due: BTreeMap<String, DateTime<Utc>>,
    /// How long a number order stays pending unless it is read again first.
    #[serde(default = "default_order_completion_ms")]
    pub order_completion_ms: u64,
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

fn default_order_completion_ms() -> u64 {
    DEFAULT_ORDER_COMPLETION_MS
}

/// The configuration objects that share one create/read/update/delete shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    FqdnConnections,
    Fqdns,
    CredentialConnections,
    OutboundVoiceProfiles,
    TexmlApplications,
}

const CONNECTION_KEYS: &[&str] = &[
    "connection_name",
    "active",
    "anchorsite_override",
    "dtmf_type",
    "encrypted_media",
    "webhook_event_url",
    "webhook_event_failover_url",
    "webhook_api_version",
    "webhook_timeout_secs",
    "tags",
    "user_name",
    "password",
    "default_on_hold_comfort_noise_enabled",
    "encode_contact_header_enabled",
    "onnet_t38_passthrough_enabled",
    "ios_push_credential_id",
    "android_push_credential_id",
    "call_cost_in_webhooks",
    "noise_suppression",
    "jitter_buffer",
    "rtcp_settings",
    "transport_protocol",
    "microsoft_teams_sbc",
    "sip_uri_calling_preference",
];

const FQDN_INBOUND_KEYS: &[&str] = &[
    "ani_number_format",
    "dnis_number_format",
    "default_primary_fqdn_id",
    "default_secondary_fqdn_id",
    "default_tertiary_fqdn_id",
    "default_routing_method",
    "channel_limit",
    "codecs",
    "generate_ringback_tone",
    "isup_headers_enabled",
    "prack_enabled",
    "shaken_stir_enabled",
    "sip_compact_headers_enabled",
    "sip_region",
    "sip_subdomain",
    "sip_subdomain_receive_settings",
    "timeout_1xx_secs",
    "timeout_2xx_secs",
];

const FQDN_OUTBOUND_KEYS: &[&str] = &[
    "outbound_voice_profile_id",
    "ani_override",
    "ani_override_type",
    "call_parking_enabled",
    "channel_limit",
    "encrypted_media",
    "generate_ringback_tone",
    "instant_ringback_enabled",
    "ip_authentication_method",
    "ip_authentication_token",
    "localization",
    "t38_reinvite_source",
    "tech_prefix",
    "timeout_1xx_secs",
    "timeout_2xx_secs",
];

const CREDENTIAL_INBOUND_KEYS: &[&str] = &[
    "ani_number_format",
    "dnis_number_format",
    "channel_limit",
    "codecs",
    "default_routing_method",
    "generate_ringback_tone",
    "isup_headers_enabled",
    "prack_enabled",
    "shaken_stir_enabled",
    "simultaneous_ringing",
    "sip_compact_headers_enabled",
    "timeout_1xx_secs",
    "timeout_2xx_secs",
];

const CREDENTIAL_OUTBOUND_KEYS: &[&str] = &[
    "outbound_voice_profile_id",
    "ani_override",
    "ani_override_type",
    "call_parking_enabled",
    "channel_limit",
    "generate_ringback_tone",
    "instant_ringback_enabled",
    "localization",
    "t38_reinvite_source",
];

const FQDN_KEYS: &[&str] = &["connection_id", "fqdn", "port", "dns_record_type"];

const OVP_KEYS: &[&str] = &[
    "name",
    "enabled",
    "whitelisted_destinations",
    "traffic_type",
    "service_plan",
    "usage_payment_method",
    "concurrent_call_limit",
    "daily_spend_limit",
    "daily_spend_limit_enabled",
    "max_destination_rate",
    "call_recording",
    "calling_window",
    "billing_group_id",
    "tags",
];

const TEXML_KEYS: &[&str] = &[
    "friendly_name",
    "voice_url",
    "voice_method",
    "voice_fallback_url",
    "status_callback",
    "status_callback_method",
    "active",
    "anchorsite_override",
    "dtmf_type",
    "first_command_timeout",
    "first_command_timeout_secs",
    "call_cost_in_webhooks",
    "tags",
];
const TEXML_INBOUND_KEYS: &[&str] = &[
    "channel_limit",
    "shaken_stir_enabled",
    "sip_subdomain",
    "sip_subdomain_receive_settings",
];
const TEXML_OUTBOUND_KEYS: &[&str] = &["channel_limit", "outbound_voice_profile_id"];

const NUMBER_PATCH_KEYS: &[&str] = &[
    "connection_id",
    "tags",
    "customer_reference",
    "billing_group_id",
    "external_pin",
    "hd_voice_enabled",
    "address_id",
];

const ANI_FORMATS: &[&str] = &["+E.164", "E.164", "+E.164-national", "E.164-national"];
const DNIS_FORMATS: &[&str] = &["+e164", "e164", "national", "sip_username"];

impl Collection {
    fn from_path(segment: &str) -> Option<Self> {
        Some(match segment {
            "fqdn_connections" => Self::FqdnConnections,
            "fqdns" => Self::Fqdns,
            "credential_connections" => Self::CredentialConnections,
            "outbound_voice_profiles" => Self::OutboundVoiceProfiles,
            "texml_applications" => Self::TexmlApplications,
            _ => return None,
        })
    }

    fn record_type(self) -> &'static str {
        match self {
            Self::FqdnConnections => "fqdn_connection",
            Self::Fqdns => "fqdn",
            Self::CredentialConnections => "credential_connection",
            Self::OutboundVoiceProfiles => "outbound_voice_profile",
            Self::TexmlApplications => "texml_application",
        }
    }

    fn top_level_keys(self) -> &'static [&'static str] {
        match self {
            Self::FqdnConnections | Self::CredentialConnections => CONNECTION_KEYS,
            Self::Fqdns => FQDN_KEYS,
            Self::OutboundVoiceProfiles => OVP_KEYS,
            Self::TexmlApplications => TEXML_KEYS,
        }
    }

    /// The nested objects and the keys each accepts; anything else is dropped silently.
    fn nested_keys(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Self::FqdnConnections => &[
                ("inbound", FQDN_INBOUND_KEYS),
                ("outbound", FQDN_OUTBOUND_KEYS),
            ],
            Self::CredentialConnections => &[
                ("inbound", CREDENTIAL_INBOUND_KEYS),
                ("outbound", CREDENTIAL_OUTBOUND_KEYS),
            ],
            Self::TexmlApplications => &[
                ("inbound", TEXML_INBOUND_KEYS),
                ("outbound", TEXML_OUTBOUND_KEYS),
            ],
            Self::Fqdns | Self::OutboundVoiceProfiles => &[],
        }
    }

    fn required_on_create(self) -> &'static [&'static str] {
        match self {
            Self::FqdnConnections => &["connection_name"],
            Self::Fqdns => &["connection_id", "fqdn", "dns_record_type"],
            Self::CredentialConnections => &["connection_name", "user_name", "password"],
            Self::OutboundVoiceProfiles => &["name"],
            Self::TexmlApplications => &["friendly_name", "voice_url"],
        }
    }

    fn required_on_patch(self) -> &'static [&'static str] {
        match self {
            Self::OutboundVoiceProfiles => &["name"],
            Self::TexmlApplications => &["friendly_name", "voice_url"],
            _ => &[],
        }
    }

    /// Whether its objects can be a phone number's `connection_id`.
    fn is_connection(self) -> bool {
        matches!(
            self,
            Self::FqdnConnections | Self::CredentialConnections | Self::TexmlApplications
        )
    }
}

/// A Telnyx error answer: `{"errors":[{code,title,detail,source?,meta:{url}}]}`.
fn error(status: u16, code: &str, title: &str, detail: &str, source: Option<Value>) -> ApiResponse {
    let mut item = json!({"code": code, "title": title, "detail": detail});
    if let Some(source) = source {
        item["source"] = source;
    }
    item["meta"] = json!({"url": format!("{ERROR_DOCS}/{code}")});
    ApiResponse::json(status, &json!({"errors": [item]}))
}

fn not_found(what: &str) -> ApiResponse {
    error(
        404,
        "10005",
        "Resource not found",
        &format!("The requested {what} could not be found."),
        None,
    )
}

fn invalid(pointer: &str, detail: &str) -> ApiResponse {
    error(
        422,
        "10015",
        "Bad Request",
        detail,
        Some(json!({"pointer": pointer})),
    )
}

fn missing(pointer: &str) -> ApiResponse {
    error(
        422,
        "10004",
        "Missing required parameter",
        &format!(
            "The '{}' parameter is required.",
            pointer.trim_start_matches('/')
        ),
        Some(json!({"pointer": pointer})),
    )
}

fn bad_parameter(parameter: &str, detail: &str) -> ApiResponse {
    error(
        400,
        "10015",
        "Bad Request",
        detail,
        Some(json!({"parameter": parameter})),
    )
}

fn in_use(detail: &str) -> ApiResponse {
    error(422, "10021", "Resource in use", detail, None)
}

/// The 401 every request without the right Bearer key gets.
pub fn unauthorized() -> ApiResponse {
    error(
        401,
        "10009",
        "Authentication failed",
        "The API key provided was missing or invalid.",
        None,
    )
}

/// The 429 body of Telnyx's rate limiter (code 10011).
pub fn too_many_requests() -> ApiResponse {
    error(
        429,
        "10011",
        "Too many requests",
        "You have exceeded the rate limit for this resource.",
        None,
    )
}

/// A Telnyx-shaped 5xx for injected faults.
pub fn server_error(status: u16) -> ApiResponse {
    let title = if status == 503 {
        "Service unavailable"
    } else {
        "Unexpected error"
    };
    error(
        status,
        "10007",
        title,
        "An unexpected error occurred.",
        None,
    )
}

/// Telnyx timestamps: ISO-8601 with milliseconds, UTC.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn data(status: u16, object: Value) -> ApiResponse {
    ApiResponse::json(status, &json!({ "data": object }))
}

fn str_field<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

fn nested_str<'a>(object: &'a Value, outer: &str, key: &str) -> Option<&'a str> {
    object
        .get(outer)
        .and_then(|o| o.get(key))
        .and_then(Value::as_str)
}

/// Whether a JSON value counts as given (present, not null, not an empty string).
fn is_given(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// Deep-merges the accepted keys of `patch` into `target`: top-level keys replace, nested
/// `inbound`/`outbound` objects merge key by key; unknown keys are dropped without error.
fn merge_accepted(target: &mut Value, patch: &Map<String, Value>, collection: Collection) {
    for key in collection.top_level_keys() {
        if let Some(value) = patch.get(*key) {
            target[*key] = value.clone();
        }
    }
    for (outer, keys) in collection.nested_keys() {
        let Some(Value::Object(nested)) = patch.get(*outer) else {
            continue;
        };
        if !target.get(*outer).is_some_and(Value::is_object) {
            target[*outer] = json!({});
        }
        for key in *keys {
            if let Some(value) = nested.get(*key) {
                target[*outer][*key] = value.clone();
            }
        }
    }
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
        match (method, rest) {
            ("GET", []) => self.list_collection(collection, req),
            ("POST", []) => self.create_object(collection, req),
            ("GET", [id]) => match self.table(collection).get(*id) {
                Some(object) => data(200, object.clone()),
                None => not_found(collection.record_type()),
            },
            ("PATCH", [id]) => self.patch_object(collection, id, req),
            ("DELETE", [id]) => self.delete_object(collection, id),
            _ => not_found("URL"),
        }
    }

    // ---- configuration objects -------------------------------------------------------------

    fn create_object(&mut self, collection: Collection, req: &ApiRequest) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        if let Some(key) = collection
            .required_on_create()
            .iter()
            .find(|k| !is_given(body.get(**k)))
        {
            return missing(&format!("/{key}"));
        }
        let id = self.peek_id();
        let mut object = defaults(collection, &id, req.now);
        merge_accepted(&mut object, &body, collection);
        if collection == Collection::Fqdns && !body.contains_key("port") {
            object["port"] = default_port(str_field(&object, "dns_record_type"));
        }
        if let Err(response) = self.validate(collection, &id, &object) {
            return response;
        }
        let id = self.next_id();
        self.table_mut(collection)
            .insert(id.clone(), object.clone());
        self.touch();
        data(201, object).with_resource(Some(id))
    }

    /// The id the next create will get, so validation can see it before it is taken.
    fn peek_id(&self) -> String {
        (2_960_000_000_000_000_000u64 + (self.next_seq + 1) * 7).to_string()
    }

    fn patch_object(&mut self, collection: Collection, id: &str, req: &ApiRequest) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let Some(current) = self.table(collection).get(id) else {
            return not_found(collection.record_type());
        };
        if let Some(key) = collection
            .required_on_patch()
            .iter()
            .find(|k| !is_given(body.get(**k)))
        {
            return missing(&format!("/{key}"));
        }
        let mut object = current.clone();
        merge_accepted(&mut object, &body, collection);
        if let Err(response) = self.validate(collection, id, &object) {
            return response;
        }
        if object != *current {
            object["updated_at"] = json!(timestamp(req.now));
            self.table_mut(collection)
                .insert(id.to_string(), object.clone());
            self.touch();
        }
        data(200, object)
    }

    fn delete_object(&mut self, collection: Collection, id: &str) -> ApiResponse {
        if !self.table(collection).contains_key(id) {
            return not_found(collection.record_type());
        }
        if collection.is_connection() && self.numbers_on(id) > 0 {
            return in_use(&format!(
                "The connection {id} still has {} phone number(s) assigned.",
                self.numbers_on(id)
            ));
        }
        if collection == Collection::OutboundVoiceProfiles {
            let users = self.connections_using_profile(id);
            if users > 0 {
                return in_use(&format!(
                    "The outbound voice profile {id} is used by {users} connection(s)."
                ));
            }
        }
        let object = self
            .table_mut(collection)
            .remove(id)
            .expect("checked above");
        match collection {
            Collection::FqdnConnections => self
                .fqdns
                .retain(|_, f| str_field(f, "connection_id") != Some(id)),
            Collection::Fqdns => self.forget_fqdn(id),
            _ => {}
        }
        self.touch();
        data(200, object)
    }

    fn forget_fqdn(&mut self, fqdn_id: &str) {
        for connection in self.fqdn_connections.values_mut() {
            for slot in [
                "default_primary_fqdn_id",
                "default_secondary_fqdn_id",
                "default_tertiary_fqdn_id",
            ] {
                if nested_str(connection, "inbound", slot) == Some(fqdn_id) {
                    connection["inbound"][slot] = Value::Null;
                }
            }
        }
    }

    fn numbers_on(&self, connection_id: &str) -> usize {
        self.phone_numbers
            .values()
            .filter(|n| str_field(n, "connection_id") == Some(connection_id))
            .count()
    }

    fn connections_using_profile(&self, ovp_id: &str) -> usize {
        self.fqdn_connections
            .values()
            .chain(self.credential_connections.values())
            .chain(self.texml_applications.values())
            .filter(|c| nested_str(c, "outbound", "outbound_voice_profile_id") == Some(ovp_id))
            .count()
    }

    fn validate(
        &self,
        collection: Collection,
        id: &str,
        object: &Value,
    ) -> Result<(), ApiResponse> {
        match collection {
            Collection::FqdnConnections => {
                self.validate_connection_common(object)?;
                self.validate_fqdn_defaults(id, object)?;
                self.validate_unique_user(id, object)
            }
            Collection::CredentialConnections => {
                self.validate_connection_common(object)?;
                validate_credentials(object)?;
                self.validate_unique_user(id, object)
            }
            Collection::Fqdns => self.validate_fqdn(object),
            Collection::OutboundVoiceProfiles => validate_profile(object),
            Collection::TexmlApplications => {
                validate_texml(object)?;
                self.validate_profile_link(object)
            }
        }
    }

    fn validate_connection_common(&self, object: &Value) -> Result<(), ApiResponse> {
        if !object.get("connection_name").is_some_and(Value::is_string) {
            return Err(invalid(
                "/connection_name",
                "connection_name must be a string.",
            ));
        }
        if let Some(t) = object.get("transport_protocol") {
            if !matches!(t.as_str(), Some("UDP" | "TCP" | "TLS")) {
                return Err(invalid(
                    "/transport_protocol",
                    "transport_protocol must be one of UDP, TCP, TLS.",
                ));
            }
        }
        if let Some(f) = object
            .get("inbound")
            .and_then(|i| i.get("ani_number_format"))
        {
            if !f.as_str().is_some_and(|f| ANI_FORMATS.contains(&f)) {
                return Err(invalid(
                    "/inbound/ani_number_format",
                    "ani_number_format must be one of +E.164, E.164, +E.164-national, E.164-national.",
                ));
            }
        }
        if let Some(f) = object
            .get("inbound")
            .and_then(|i| i.get("dnis_number_format"))
        {
            if !f.as_str().is_some_and(|f| DNIS_FORMATS.contains(&f)) {
                return Err(invalid(
                    "/inbound/dnis_number_format",
                    "dnis_number_format must be one of +e164, e164, national, sip_username.",
                ));
            }
        }
        if let Some(active) = object.get("active") {
            if !active.is_boolean() {
                return Err(invalid("/active", "active must be a boolean."));
            }
        }
        self.validate_profile_link(object)
    }

    fn validate_profile_link(&self, object: &Value) -> Result<(), ApiResponse> {
        match object
            .get("outbound")
            .and_then(|o| o.get("outbound_voice_profile_id"))
        {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(id)) if self.outbound_voice_profiles.contains_key(id) => Ok(()),
            Some(_) => Err(invalid(
                "/outbound/outbound_voice_profile_id",
                "outbound_voice_profile_id must be the id of an existing outbound voice profile.",
            )),
        }
    }

    fn validate_fqdn_defaults(
        &self,
        connection_id: &str,
        object: &Value,
    ) -> Result<(), ApiResponse> {
        for slot in [
            "default_primary_fqdn_id",
            "default_secondary_fqdn_id",
            "default_tertiary_fqdn_id",
        ] {
            match object.get("inbound").and_then(|i| i.get(slot)) {
                None | Some(Value::Null) => {}
                Some(Value::String(fqdn_id))
                    if self
                        .fqdns
                        .get(fqdn_id)
                        .is_some_and(|f| str_field(f, "connection_id") == Some(connection_id)) => {}
                Some(_) => {
                    return Err(invalid(
                        &format!("/inbound/{slot}"),
                        &format!("{slot} must be the id of an FQDN of this connection."),
                    ))
                }
            }
        }
        Ok(())
    }

    fn validate_unique_user(&self, id: &str, object: &Value) -> Result<(), ApiResponse> {
        let Some(user) = str_field(object, "user_name").filter(|u| !u.is_empty()) else {
            return Ok(());
        };
        let clash = self
            .fqdn_connections
            .iter()
            .chain(self.credential_connections.iter())
            .any(|(other, c)| {
                other != id
                    && str_field(c, "user_name").is_some_and(|u| u.eq_ignore_ascii_case(user))
            });
        if clash {
            return Err(error(
                422,
                "10012",
                "Duplicate resource",
                "user_name is already taken by another connection.",
                Some(json!({"pointer": "/user_name"})),
            ));
        }
        Ok(())
    }

    fn validate_fqdn(&self, object: &Value) -> Result<(), ApiResponse> {
        let connection_ok = str_field(object, "connection_id")
            .is_some_and(|c| self.fqdn_connections.contains_key(c));
        if !connection_ok {
            return Err(invalid(
                "/connection_id",
                "connection_id must be the id of an existing FQDN connection.",
            ));
        }
        let fqdn_ok = str_field(object, "fqdn").is_some_and(is_hostname);
        if !fqdn_ok {
            return Err(invalid("/fqdn", "fqdn must be a valid host name."));
        }
        if !matches!(str_field(object, "dns_record_type"), Some("a" | "srv")) {
            return Err(invalid(
                "/dns_record_type",
                "dns_record_type must be a or srv.",
            ));
        }
        match object.get("port") {
            None | Some(Value::Null) => Ok(()),
            Some(p) if p.as_u64().is_some_and(|p| (1..=65535).contains(&p)) => Ok(()),
            Some(_) => Err(invalid("/port", "port must be between 1 and 65535.")),
        }
    }

    fn list_collection(&self, collection: Collection, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let mut items: Vec<&Value> = self
            .table(collection)
            .values()
            .filter(|o| {
                req.query
                    .iter()
                    .all(|(k, v)| self.object_matches(collection, o, k, v))
            })
            .collect();
        sort_objects(&mut items, req.query_value("sort"), "created_at", sort_key);
        paging.respond(items, Value::clone)
    }

    fn object_matches(
        &self,
        collection: Collection,
        object: &Value,
        key: &str,
        value: &str,
    ) -> bool {
        match key {
            "filter[connection_name][contains]" => str_field(object, "connection_name")
                .is_some_and(|n| n.to_lowercase().contains(&value.to_lowercase())),
            "filter[connection_name]" => str_field(object, "connection_name") == Some(value),
            "filter[outbound_voice_profile_id]" => {
                nested_str(object, "outbound", "outbound_voice_profile_id") == Some(value)
            }
            "filter[name][contains]" => str_field(object, "name")
                .is_some_and(|n| n.to_lowercase().contains(&value.to_lowercase())),
            "filter[friendly_name]" => str_field(object, "friendly_name")
                .is_some_and(|n| n.to_lowercase().contains(&value.to_lowercase())),
            "filter[connection_id]" => str_field(object, "connection_id") == Some(value),
            "filter[dns_record_type]" => str_field(object, "dns_record_type") == Some(value),
            "filter[port]" => object.get("port").map(Value::to_string).as_deref() == Some(value),
            "filter[fqdn]" if collection == Collection::Fqdns => {
                str_field(object, "fqdn") == Some(value)
            }
            "filter[fqdn]" => {
                let id = str_field(object, "id").unwrap_or_default();
                self.fqdns.values().any(|f| {
                    str_field(f, "connection_id") == Some(id) && str_field(f, "fqdn") == Some(value)
                })
            }
            _ => true,
        }
    }

    // ---- available numbers and orders ------------------------------------------------------

    fn search_numbers(&mut self, req: &ApiRequest) -> ApiResponse {
        let query = |k: &str| req.query_value(k).filter(|v| !v.is_empty());
        let country = query("filter[country_code]");
        if country.is_some_and(|c| !matches!(c, "US" | "CA")) {
            return search_result(Vec::new());
        }
        let limit = match query("filter[limit]").map(str::parse::<usize>) {
            None => DEFAULT_SEARCH_LIMIT,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => {
                return bad_parameter("filter[limit]", "filter[limit] must be a positive integer.")
            }
        };
        let ndc = query("filter[national_destination_code]");
        let area_codes: Vec<&str> = match (ndc, country) {
            (Some(code), _) => vec![code],
            (None, Some("CA")) => inventory::DEFAULT_CANADIAN_AREA_CODES.to_vec(),
            (None, _) => inventory::DEFAULT_AREA_CODES.to_vec(),
        };
        let starts = query("filter[phone_number][starts_with]");
        let ends = query("filter[phone_number][ends_with]");
        let contains = query("filter[phone_number][contains]");
        let features: Vec<&str> = query("filter[features]")
            .map(|f| f.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let wanted_type = query("filter[phone_number_type]");
        let owned: BTreeSet<&str> = self
            .phone_numbers
            .values()
            .filter_map(|n| str_field(n, "phone_number"))
            .collect();
        let mut found = Vec::new();
        for npa in area_codes {
            if country.is_some_and(|c| c != inventory::country_of(npa)) {
                continue;
            }
            let kind = if inventory::is_toll_free(npa) {
                "toll_free"
            } else {
                "local"
            };
            if wanted_type.is_some_and(|t| t != kind) {
                continue;
            }
            for number in inventory::numbers_in(npa) {
                let national = &number[2..];
                let pattern_part = if ndc.is_some() {
                    &national[3..]
                } else {
                    national
                };
                let fits = starts.is_none_or(|s| pattern_part.starts_with(s))
                    && ends.is_none_or(|e| national.ends_with(e))
                    && contains.is_none_or(|c| pattern_part.contains(c))
                    && features
                        .iter()
                        .all(|f| number_features(&number).contains(f))
                    && !self.taken.contains(&number)
                    && !owned.contains(number.as_str());
                if fits {
                    found.push(number);
                }
                if found.len() >= limit {
                    break;
                }
            }
        }
        found.truncate(limit);
        let fresh: Vec<String> = found
            .iter()
            .filter(|n| !self.offered.contains(*n))
            .cloned()
            .collect();
        if !fresh.is_empty() {
            self.offered.extend(fresh);
            self.touch();
        }
        search_result(found)
    }

    fn create_order(&mut self, req: &ApiRequest) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let numbers = match self.orderable_numbers(&body) {
            Ok(numbers) => numbers,
            Err(response) => return response,
        };
        let connection_id = match body.get("connection_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if self.connection(id).is_some() => Some(id.clone()),
            Some(_) => {
                return invalid(
                    "/connection_id",
                    "connection_id must be the id of an existing connection.",
                )
            }
        };
        let customer_reference =
            str_field(&Value::Object(body.clone()), "customer_reference").map(str::to_string);
        let order_id = self.next_uuid();
        let mut lines = Vec::new();
        for number in &numbers {
            let line_id = self.next_uuid();
            lines.push(json!({
                "id": line_id,
                "record_type": "number_order_phone_number",
                "phone_number": number,
                "status": "pending",
                "requirements_met": true,
                "requirements_status": "approved",
                "regulatory_requirements": [],
                "bundle_id": null,
                "country_code": inventory::country_of(&number[2..5]),
                "country_iso_alpha2": inventory::country_of(&number[2..5]),
                "phone_number_type": number_type(number),
            }));
            let number_id = self.next_id();
            let mut object = phone_number_object(
                &number_id,
                number,
                "purchase-pending",
                connection_id.as_deref(),
                req.now,
            );
            object["customer_reference"] = json!(customer_reference);
            object["activated_at"] = Value::Null;
            self.phone_numbers.insert(number_id, object);
            self.taken.insert(number.clone());
            self.offered.remove(number);
        }
        let order = json!({
            "id": order_id,
            "record_type": "number_order",
            "status": "pending",
            "phone_numbers": lines,
            "phone_numbers_count": numbers.len(),
            "connection_id": connection_id,
            "messaging_profile_id": body.get("messaging_profile_id").cloned().unwrap_or(Value::Null),
            "billing_group_id": body.get("billing_group_id").cloned().unwrap_or(Value::Null),
            "customer_reference": customer_reference,
            "requirements_met": true,
            "sub_number_orders_ids": [],
            "created_at": timestamp(req.now),
            "updated_at": timestamp(req.now),
        });
        let due = req.now + chrono::Duration::milliseconds(self.order_completion_ms as i64);
        self.order_due.insert(order_id.clone(), due);
        self.number_orders.insert(order_id.clone(), order.clone());
        self.touch();
        data(200, order).with_resource(Some(order_id))
    }

    fn orderable_numbers(&self, body: &Map<String, Value>) -> Result<Vec<String>, ApiResponse> {
        let Some(Value::Array(items)) = body.get("phone_numbers") else {
            return Err(missing("/phone_numbers"));
        };
        if items.is_empty() {
            return Err(missing("/phone_numbers"));
        }
        let mut numbers: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let pointer = format!("/phone_numbers/{i}/phone_number");
            let Some(number) = str_field(item, "phone_number") else {
                return Err(missing(&pointer));
            };
            if crate::model::E164::parse(number).is_err() {
                return Err(error(
                    422,
                    "10016",
                    "Phone number must be in +E.164 format",
                    &format!("{number} is not in +E.164 format."),
                    Some(json!({"pointer": pointer})),
                ));
            }
            if numbers.iter().any(|n| n == number) {
                return Err(invalid(
                    &pointer,
                    &format!("{number} appears twice in the order."),
                ));
            }
            if self.taken.contains(number) || self.number_by_e164(number).is_some() {
                return Err(invalid(
                    &pointer,
                    &format!("{number} is no longer available."),
                ));
            }
            if !self.offered.contains(number) {
                return Err(invalid(
                    &pointer,
                    &format!(
                        "{number} was not returned by an available phone number search; only searched numbers can be ordered."
                    ),
                ));
            }
            numbers.push(number.to_string());
        }
        Ok(numbers)
    }

    fn get_order(&mut self, id: &str, now: DateTime<Utc>) -> ApiResponse {
        if !self.number_orders.contains_key(id) {
            return not_found("number order");
        }
        self.complete_due_orders(now, Some(id));
        data(200, self.number_orders[id].clone())
    }

    fn list_orders(&mut self, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let matching: Vec<String> = self
            .number_orders
            .iter()
            .filter(|(_, o)| req.query.iter().all(|(k, v)| order_matches(o, k, v)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &matching {
            self.complete_due_orders(req.now, Some(id));
        }
        let mut items: Vec<&Value> = matching.iter().map(|id| &self.number_orders[id]).collect();
        sort_objects(&mut items, Some("-created_at"), "created_at", sort_key);
        paging.respond(items, Value::clone)
    }

    fn patch_order(&mut self, id: &str, req: &ApiRequest) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let Some(order) = self.number_orders.get_mut(id) else {
            return not_found("number order");
        };
        if let Some(reference) = body.get("customer_reference") {
            order["customer_reference"] = reference.clone();
            order["updated_at"] = json!(timestamp(req.now));
            let order = order.clone();
            self.touch();
            return data(200, order);
        }
        data(200, order.clone())
    }

    /// Completes pending orders that are due, or the one named `force` whatever its due time:
    /// the order and its lines turn `success`, its numbers `active`.
    fn complete_due_orders(&mut self, now: DateTime<Utc>, force: Option<&str>) {
        let ready: Vec<String> = self
            .order_due
            .iter()
            .filter(|(id, due)| **due <= now || force == Some(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ready {
            self.order_due.remove(&id);
            self.complete_order(&id, now);
        }
    }

    fn complete_order(&mut self, id: &str, now: DateTime<Utc>) {
        let stamp = json!(timestamp(now));
        let Some(order) = self.number_orders.get_mut(id) else {
            return;
        };
        order["status"] = json!("success");
        order["updated_at"] = stamp.clone();
        let mut numbers = Vec::new();
        if let Some(Value::Array(lines)) = order.get_mut("phone_numbers") {
            for line in lines {
                line["status"] = json!("success");
                if let Some(n) = str_field(line, "phone_number") {
                    numbers.push(n.to_string());
                }
            }
        }
        for number in self.phone_numbers.values_mut() {
            let ordered =
                str_field(number, "phone_number").is_some_and(|n| numbers.iter().any(|o| o == n));
            if ordered && str_field(number, "status") == Some("purchase-pending") {
                number["status"] = json!("active");
                number["activated_at"] = stamp.clone();
                number["updated_at"] = stamp.clone();
            }
        }
        self.touch();
    }

    // ---- phone numbers ---------------------------------------------------------------------

    fn render_number(&self, number: &Value) -> Value {
        let mut out = number.clone();
        out["connection_name"] =
            json!(str_field(number, "connection_id").and_then(|c| self.connection_name(c)));
        out
    }

    fn list_numbers(&self, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let names = self.connection_names();
        let name_of = |n: &Value| {
            str_field(n, "connection_id")
                .and_then(|id| names.get(id))
                .map_or("", String::as_str)
        };
        let mut items: Vec<&Value> = self
            .phone_numbers
            .values()
            .filter(|n| {
                req.query
                    .iter()
                    .all(|(k, v)| number_matches(n, name_of(n), k, v))
            })
            .collect();
        sort_objects(
            &mut items,
            req.query_value("sort"),
            "-created_at",
            |n, field| match field {
                "connection_name" => name_of(n).to_string(),
                _ => sort_key(n, field),
            },
        );
        paging.respond(items, |n| self.render_number(n))
    }

    /// Every connection's display name by id, for rendering and filtering numbers.
    fn connection_names(&self) -> BTreeMap<&str, String> {
        self.fqdn_connections
            .keys()
            .chain(self.credential_connections.keys())
            .chain(self.texml_applications.keys())
            .filter_map(|id| Some((id.as_str(), self.connection_name(id)?)))
            .collect()
    }

    fn get_number(&self, id: &str) -> ApiResponse {
        match self.phone_numbers.get(id) {
            Some(n) => data(200, self.render_number(n)),
            None => not_found("phone number"),
        }
    }

    fn patch_number(&mut self, id: &str, req: &ApiRequest) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let Some(current) = self.phone_numbers.get(id) else {
            return not_found("phone number");
        };
        if str_field(current, "status") != Some("active") {
            return error(
                422,
                "10015",
                "Bad Request",
                &format!(
                    "The phone number is {} and cannot be updated until its order completes.",
                    str_field(current, "status").unwrap_or("not active")
                ),
                None,
            );
        }
        if let Err(response) = self.validate_number_patch(&body) {
            return response;
        }
        let mut number = current.clone();
        for key in NUMBER_PATCH_KEYS {
            if let Some(value) = body.get(*key) {
                number[*key] = match (*key, value) {
                    ("connection_id", Value::String(s)) if s.is_empty() => Value::Null,
                    _ => value.clone(),
                };
            }
        }
        if number != *current {
            number["updated_at"] = json!(timestamp(req.now));
            self.phone_numbers.insert(id.to_string(), number.clone());
            self.touch();
        }
        data(200, self.render_number(&number))
    }

    fn validate_number_patch(&self, body: &Map<String, Value>) -> Result<(), ApiResponse> {
        match body.get("connection_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() || self.connection(s).is_some() => {}
            Some(_) => {
                return Err(invalid(
                    "/connection_id",
                    "connection_id must be the id of an existing connection or application.",
                ))
            }
        }
        if let Some(tags) = body.get("tags") {
            let ok = tags
                .as_array()
                .is_some_and(|t| t.iter().all(Value::is_string));
            if !ok {
                return Err(invalid("/tags", "tags must be an array of strings."));
            }
        }
        Ok(())
    }

    fn release_number(&mut self, id: &str, now: DateTime<Utc>) -> ApiResponse {
        let Some(number) = self.phone_numbers.get(id) else {
            return not_found("phone number");
        };
        if number.get("deletion_lock_enabled") == Some(&Value::Bool(true)) {
            return error(
                422,
                "10015",
                "Bad Request",
                "The phone number has deletion lock enabled.",
                None,
            );
        }
        let mut released = self.render_number(number);
        self.phone_numbers.remove(id);
        released["status"] = json!("deleted");
        released["updated_at"] = json!(timestamp(now));
        self.touch();
        data(200, released)
    }

    // ---- call path ----------------------------------------------------------------------------

    /// The SIP INVITE Telnyx sends for a call from `from` to `to`, or why it sends none.
    /// Numbers are formatted the way the connection's number formats say, so a connection
    /// left at `E.164`/`e164` delivers them without `+` (the runbooks' lookup failures).
    pub fn inbound_invite(&self, to: &str, from: &str) -> Result<InboundInvite, InboundFailure> {
        let number = self
            .number_by_e164(to)
            .ok_or_else(|| InboundFailure::NotAssigned(to.to_string()))?;
        if str_field(number, "status") != Some("active") {
            return Err(InboundFailure::NotAssigned(to.to_string()));
        }
        let connection_id = str_field(number, "connection_id")
            .ok_or_else(|| InboundFailure::NoConnection(to.to_string()))?
            .to_string();
        if let Some(app) = self.texml_applications.get(&connection_id) {
            return Ok(InboundInvite::texml(&connection_id, app, to, from));
        }
        let connection = self
            .connection(&connection_id)
            .ok_or_else(|| InboundFailure::NoConnection(to.to_string()))?;
        if connection.get("active") == Some(&Value::Bool(false)) {
            return Err(InboundFailure::ConnectionInactive(connection_id));
        }
        let inbound = connection.get("inbound").cloned().unwrap_or(json!({}));
        let user_name = str_field(connection, "user_name").map(str::to_string);
        let to_user = format_dnis(
            str_field(&inbound, "dnis_number_format").unwrap_or("e164"),
            to,
            user_name.as_deref(),
        );
        let from_user = format_ani(
            str_field(&inbound, "ani_number_format").unwrap_or("E.164"),
            from,
            to,
        );
        let target = str_field(&inbound, "default_primary_fqdn_id")
            .and_then(|id| self.fqdns.get(id))
            .map(|f| {
                let port = f.get("port").and_then(Value::as_u64);
                match port {
                    Some(port) => format!("{}:{port}", str_field(f, "fqdn").unwrap_or_default()),
                    None => str_field(f, "fqdn").unwrap_or_default().to_string(),
                }
            });
        Ok(InboundInvite {
            number_id: str_field(number, "id").unwrap_or_default().to_string(),
            connection_id,
            connection_kind: if self
                .fqdn_connections
                .contains_key(str_field(connection, "id").unwrap_or_default())
            {
                "fqdn_connection".into()
            } else {
                "credential_connection".into()
            },
            connection_name: str_field(connection, "connection_name")
                .unwrap_or_default()
                .into(),
            transport: str_field(connection, "transport_protocol")
                .unwrap_or("UDP")
                .into(),
            target,
            to_user,
            from_user,
            auth_user_name: user_name,
            has_password: str_field(connection, "password").is_some_and(|p| !p.is_empty()),
            texml_voice_url: None,
        })
    }

    // ---- seeds -------------------------------------------------------------------------------

    /// `docs/runbook-world.md`, Telnyx table, known-broken states included.
    pub fn seed_runbook(&mut self) {
        self.seed_account_objects();
        let t = |minute: u32| seed_time(minute);
        let mut v2 = defaults(Collection::FqdnConnections, "2925216093662349036", t(5));
        v2["connection_name"] = json!("LiveKit Inbound v2");
        v2["transport_protocol"] = json!("TCP");
        v2["inbound"]["ani_number_format"] = json!("+E.164");
        v2["inbound"]["dnis_number_format"] = json!("+e164");
        self.fqdn_connections
            .insert("2925216093662349036".into(), v2);

        let mut cred = defaults(
            Collection::CredentialConnections,
            "2948197312620398250",
            t(6),
        );
        cred["connection_name"] = json!("CWA Verticals Platform Outbound");
        cred["user_name"] = json!("cwaoutbound");
        cred["password"] = json!(TELNYX_OUTBOUND_SIP_PASSWORD);
        cred["outbound"]["outbound_voice_profile_id"] = Value::Null;
        self.credential_connections
            .insert("2948197312620398250".into(), cred);

        let mut app = defaults(Collection::TexmlApplications, "2927180743153026408", t(7));
        app["friendly_name"] = json!("ChurchWiseAI Fallback Greeting");
        app["voice_url"] = json!("https://churchwiseai.com/api/voice/fallback");
        app["voice_method"] = json!("post");
        self.texml_applications
            .insert("2927180743153026408".into(), app);

        for (minute, id, number, connection) in [
            (
                10,
                "2926113000000000001",
                "+14144007103",
                RUNBOOK_FQDN_CONNECTION_ID,
            ),
            (
                11,
                "2926113000000000002",
                "+17473897673",
                RUNBOOK_FQDN_CONNECTION_ID,
            ),
            (
                12,
                "2927180561589994835",
                "+14697288326",
                "2927180743153026408",
            ),
            (
                13,
                "2948197312620400001",
                "+12268830000",
                "2948197312620398250",
            ),
        ] {
            let object = phone_number_object(id, number, "active", Some(connection), t(minute));
            self.phone_numbers.insert(id.into(), object);
            self.taken.insert(number.into());
        }
        self.touch();
    }

    /// The account-level objects every world but `empty` shares: the inbound FQDN connection,
    /// its FQDN record and the outbound voice profile.
    pub fn seed_account_objects(&mut self) {
        let mut ovp = defaults(
            Collection::OutboundVoiceProfiles,
            RUNBOOK_OVP_ID,
            seed_time(0),
        );
        ovp["name"] = json!("ChurchWiseAI");
        ovp["whitelisted_destinations"] = json!(["CA", "US"]);
        self.outbound_voice_profiles
            .insert(RUNBOOK_OVP_ID.into(), ovp);

        let mut connection = defaults(
            Collection::FqdnConnections,
            RUNBOOK_FQDN_CONNECTION_ID,
            seed_time(1),
        );
        connection["connection_name"] = json!("LiveKit ChurchWiseAI");
        connection["transport_protocol"] = json!("TCP");
        connection["user_name"] = json!("churchwiseai");
        connection["password"] = json!(TELNYX_FQDN_PASSWORD);
        connection["inbound"]["ani_number_format"] = json!("+E.164");
        connection["inbound"]["dnis_number_format"] = json!("+e164");
        connection["inbound"]["default_primary_fqdn_id"] = json!(RUNBOOK_FQDN_ID);
        connection["outbound"]["outbound_voice_profile_id"] = json!(RUNBOOK_OVP_ID);
        self.fqdn_connections
            .insert(RUNBOOK_FQDN_CONNECTION_ID.into(), connection);

        let mut fqdn = defaults(Collection::Fqdns, RUNBOOK_FQDN_ID, seed_time(2));
        fqdn["connection_id"] = json!(RUNBOOK_FQDN_CONNECTION_ID);
        fqdn["fqdn"] = json!(LIVEKIT_SIP_HOST);
        fqdn["port"] = json!(5060);
        fqdn["dns_record_type"] = json!("a");
        self.fqdns.insert(RUNBOOK_FQDN_ID.into(), fqdn);
        self.touch();
    }

    /// One active number per synthetic line, bound to the inbound FQDN connection.
    pub fn seed_synthetic(&mut self, lines: &[SyntheticLine]) {
        for line in lines {
            let id = self.next_id();
            let object = phone_number_object(
                &id,
                line.number.as_str(),
                "active",
                Some(RUNBOOK_FQDN_CONNECTION_ID),
                seed_time(20),
            );
            self.phone_numbers.insert(id, object);
            self.taken.insert(line.number.to_string());
        }
        self.touch();
    }
}

/// What Telnyx sends towards the SIP side for one inbound call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundInvite {
    pub number_id: String,
    pub connection_id: String,
    /// `fqdn_connection`, `credential_connection` or `texml_application`.
    pub connection_kind: String,
    pub connection_name: String,
    pub transport: String,
    /// `host:port` of the connection's primary FQDN; `None` means Telnyx has nowhere to send.
    pub target: Option<String>,
    /// The dialed number as the Request-URI / To user carries it (per `dnis_number_format`).
    pub to_user: String,
    /// The caller as the From user carries it (per `ani_number_format`).
    pub from_user: String,
    /// The user name Telnyx answers a digest challenge with.
    pub auth_user_name: Option<String>,
    pub has_password: bool,
    /// For numbers routed to a TeXML application: the URL Telnyx fetches instead.
    pub texml_voice_url: Option<String>,
}

impl InboundInvite {
    fn texml(id: &str, app: &Value, to: &str, from: &str) -> Self {
        Self {
            number_id: String::new(),
            connection_id: id.to_string(),
            connection_kind: "texml_application".into(),
            connection_name: str_field(app, "friendly_name").unwrap_or_default().into(),
            transport: "HTTPS".into(),
            target: None,
            to_user: to.to_string(),
            from_user: from.to_string(),
            auth_user_name: None,
            has_password: false,
            texml_voice_url: str_field(app, "voice_url").map(str::to_string),
        }
    }
}

/// Why Telnyx would not deliver a call to any SIP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum InboundFailure {
    #[error("number not assigned: {0} is not an active number of this account")]
    NotAssigned(String),
    #[error("{0} has no connection: Telnyx answers \"not in service\"")]
    NoConnection(String),
    #[error("connection {0} is inactive")]
    ConnectionInactive(String),
}

/// The dialed number in a connection's `dnis_number_format`.
pub fn format_dnis(format: &str, e164: &str, user_name: Option<&str>) -> String {
    let digits = e164.trim_start_matches('+');
    match format {
        "+e164" => format!("+{digits}"),
        "national" => national(digits).to_string(),
        "sip_username" => user_name.unwrap_or(digits).to_string(),
        _ => digits.to_string(),
    }
}

/// The caller's number in a connection's `ani_number_format`; the `-national` forms drop the
/// country code when caller and callee share it.
pub fn format_ani(format: &str, from: &str, to: &str) -> String {
    let digits = from.trim_start_matches('+');
    let domestic = digits.starts_with('1') && to.trim_start_matches('+').starts_with('1');
    match format {
        "+E.164" => format!("+{digits}"),
        "+E.164-national" if domestic => national(digits).to_string(),
        "+E.164-national" => format!("+{digits}"),
        "E.164-national" if domestic => national(digits).to_string(),
        _ => digits.to_string(),
    }
}

fn national(digits: &str) -> &str {
    if digits.len() == 11 && digits.starts_with('1') {
        &digits[1..]
    } else {
        digits
    }
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn default_port(record_type: Option<&str>) -> Value {
    match record_type {
        Some("srv") => Value::Null,
        _ => json!(5060),
    }
}

fn validate_credentials(object: &Value) -> Result<(), ApiResponse> {
    let user_ok = str_field(object, "user_name").is_some_and(|u| {
        (4..=32).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !user_ok {
        return Err(invalid(
            "/user_name",
            "user_name must be 4 to 32 alphanumeric characters.",
        ));
    }
    let password_ok =
        str_field(object, "password").is_some_and(|p| (8..=128).contains(&p.chars().count()));
    if !password_ok {
        return Err(invalid(
            "/password",
            "password must be 8 to 128 characters.",
        ));
    }
    Ok(())
}

fn validate_profile(object: &Value) -> Result<(), ApiResponse> {
    if str_field(object, "name").is_none_or(|n| n.trim().is_empty()) {
        return Err(invalid("/name", "name must be a non-empty string."));
    }
    let destinations_ok = object
        .get("whitelisted_destinations")
        .and_then(Value::as_array)
        .is_some_and(|d| {
            d.iter().all(|c| {
                c.as_str()
                    .is_some_and(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
            })
        });
    if !destinations_ok {
        return Err(invalid(
            "/whitelisted_destinations",
            "whitelisted_destinations must be an array of ISO 3166-1 alpha-2 codes.",
        ));
    }
    if !object.get("enabled").is_some_and(Value::is_boolean) {
        return Err(invalid("/enabled", "enabled must be a boolean."));
    }
    Ok(())
}

fn validate_texml(object: &Value) -> Result<(), ApiResponse> {
    if str_field(object, "friendly_name").is_none_or(|n| n.trim().is_empty()) {
        return Err(invalid(
            "/friendly_name",
            "friendly_name must be a non-empty string.",
        ));
    }
    let url_ok = str_field(object, "voice_url")
        .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
    if !url_ok {
        return Err(invalid("/voice_url", "voice_url must be an http(s) URL."));
    }
    if !matches!(str_field(object, "voice_method"), Some("get" | "post")) {
        return Err(invalid(
            "/voice_method",
            "voice_method must be get or post.",
        ));
    }
    Ok(())
}

fn object_body(req: &ApiRequest) -> Result<Map<String, Value>, ApiResponse> {
    match req.json_body() {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(error(
            400,
            "10015",
            "Bad Request",
            "The request body must be a JSON object.",
            None,
        )),
        Err(e) => Err(error(
            400,
            "10015",
            "Bad Request",
            &format!("The request body is not valid JSON: {e}"),
            None,
        )),
    }
}

/// Fixed creation times for seeded objects: 2026-03-01 12:MM UTC.
fn seed_time(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, minute.min(59), 0)
        .single()
        .expect("a valid seed time")
}

fn defaults(collection: Collection, id: &str, now: DateTime<Utc>) -> Value {
    let stamp = timestamp(now);
    let mut object = match collection {
        Collection::FqdnConnections | Collection::CredentialConnections => {
            connection_defaults(collection)
        }
        Collection::Fqdns => json!({
            "connection_id": null, "fqdn": null, "port": 5060, "dns_record_type": "a",
        }),
        Collection::OutboundVoiceProfiles => json!({
            "name": null, "enabled": true, "whitelisted_destinations": ["US"],
            "traffic_type": "conversational", "service_plan": "global",
            "usage_payment_method": "rate-deck", "concurrent_call_limit": null,
            "daily_spend_limit": "100.00", "daily_spend_limit_enabled": false,
            "max_destination_rate": null,
            "call_recording": {
                "call_recording_type": "none", "call_recording_caller_phone_numbers": [],
                "call_recording_channels": "single", "call_recording_format": "wav",
            },
            "calling_window": {"start_time": null, "end_time": null, "calls_per_cld": null},
            "billing_group_id": null, "connections_count": 0, "tags": [],
        }),
        Collection::TexmlApplications => json!({
            "friendly_name": null, "voice_url": null, "voice_method": "post",
            "voice_fallback_url": null, "status_callback": null, "status_callback_method": "post",
            "active": true, "anchorsite_override": "Latency", "dtmf_type": "RFC 2833",
            "first_command_timeout": false, "first_command_timeout_secs": 30,
            "call_cost_in_webhooks": false, "tags": [],
            "inbound": {"channel_limit": null, "shaken_stir_enabled": false,
                        "sip_subdomain": null, "sip_subdomain_receive_settings": "only_my_connections"},
            "outbound": {"channel_limit": null, "outbound_voice_profile_id": null},
        }),
    };
    object["id"] = json!(id);
    object["record_type"] = json!(collection.record_type());
    object["created_at"] = json!(stamp);
    object["updated_at"] = json!(stamp);
    object
}

fn connection_defaults(collection: Collection) -> Value {
    let mut object = json!({
        "connection_name": null, "active": true, "anchorsite_override": "Latency",
        "dtmf_type": "RFC 2833", "encrypted_media": null, "webhook_event_url": null,
        "webhook_event_failover_url": null, "webhook_api_version": "1",
        "webhook_timeout_secs": null, "tags": [], "user_name": null, "password": null,
        "default_on_hold_comfort_noise_enabled": false, "encode_contact_header_enabled": false,
        "onnet_t38_passthrough_enabled": false, "ios_push_credential_id": null,
        "android_push_credential_id": null, "call_cost_in_webhooks": false,
        "noise_suppression": "disabled",
        "rtcp_settings": {"capture_enabled": false, "port": "rtp+1", "report_frequency_secs": 5},
        "inbound": {
            "ani_number_format": "E.164", "dnis_number_format": "e164",
            "channel_limit": null, "codecs": ["G722", "G711U", "G711A", "G729", "OPUS"],
            "default_routing_method": "sequential", "generate_ringback_tone": false,
            "isup_headers_enabled": false, "prack_enabled": false, "shaken_stir_enabled": false,
            "sip_compact_headers_enabled": true, "timeout_1xx_secs": 3, "timeout_2xx_secs": 90,
        },
        "outbound": {
            "outbound_voice_profile_id": null, "ani_override": "", "ani_override_type": "always",
            "call_parking_enabled": false, "channel_limit": null, "generate_ringback_tone": false,
            "instant_ringback_enabled": true, "localization": "US", "t38_reinvite_source": "customer",
        },
    });
    if collection == Collection::FqdnConnections {
        object["transport_protocol"] = json!("UDP");
        object["microsoft_teams_sbc"] = json!(false);
        let inbound = &mut object["inbound"];
        inbound["default_primary_fqdn_id"] = Value::Null;
        inbound["default_secondary_fqdn_id"] = Value::Null;
        inbound["default_tertiary_fqdn_id"] = Value::Null;
        inbound["sip_region"] = json!("US");
        inbound["sip_subdomain"] = Value::Null;
        inbound["sip_subdomain_receive_settings"] = json!("only_my_connections");
        let outbound = &mut object["outbound"];
        outbound["encrypted_media"] = Value::Null;
        outbound["ip_authentication_method"] = json!("credential-authentication");
        outbound["ip_authentication_token"] = Value::Null;
        outbound["tech_prefix"] = Value::Null;
        outbound["timeout_1xx_secs"] = json!(3);
        outbound["timeout_2xx_secs"] = json!(90);
    } else {
        object["sip_uri_calling_preference"] = json!("disabled");
        object["inbound"]["simultaneous_ringing"] = json!("disabled");
    }
    object
}

fn number_type(number: &str) -> &'static str {
    if inventory::is_toll_free(&number[2..5]) {
        "toll_free"
    } else {
        "local"
    }
}

fn number_features(number: &str) -> &'static [&'static str] {
    if inventory::is_toll_free(&number[2..5]) {
        &["sms", "voice", "fax", "hd_voice"]
    } else {
        &[
            "sms",
            "mms",
            "voice",
            "fax",
            "emergency",
            "hd_voice",
            "local_calling",
        ]
    }
}

fn phone_number_object(
    id: &str,
    number: &str,
    status: &str,
    connection_id: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let stamp = timestamp(now);
    json!({
        "id": id,
        "record_type": "phone_number",
        "phone_number": number,
        "status": status,
        "connection_id": connection_id,
        "connection_name": null,
        "tags": [],
        "external_pin": null,
        "customer_reference": null,
        "billing_group_id": null,
        "messaging_profile_id": null,
        "messaging_profile_name": null,
        "emergency_enabled": false,
        "emergency_address_id": null,
        "emergency_status": "disabled",
        "call_forwarding_enabled": true,
        "call_recording_enabled": false,
        "caller_id_name_enabled": false,
        "cnam_listing_enabled": false,
        "t38_fax_gateway_enabled": false,
        "hd_voice_enabled": false,
        "deletion_lock_enabled": false,
        "phone_number_type": number_type(number),
        "country_iso_alpha2": inventory::country_of(&number[2..5]),
        "source_type": "number_order",
        "inbound_call_screening": "disabled",
        "purchased_at": stamp,
        "activated_at": stamp,
        "created_at": stamp,
        "updated_at": stamp,
    })
}

fn search_result(numbers: Vec<String>) -> ApiResponse {
    let items: Vec<Value> = numbers.iter().map(|n| available_number(n)).collect();
    let meta = json!({"total_results": items.len(), "best_effort_results": 0});
    ApiResponse::json(200, &json!({"data": items, "meta": meta, "metadata": meta}))
}

fn available_number(number: &str) -> Value {
    let npa = &number[2..5];
    let mut regions =
        vec![json!({"region_type": "country_code", "region_name": inventory::country_of(npa)})];
    if let Some((rate_center, state)) = inventory::region_of(npa) {
        regions.push(json!({"region_type": "rate_center", "region_name": rate_center}));
        regions.push(json!({"region_type": "state", "region_name": state}));
        regions.push(
            json!({"region_type": "location", "region_name": format!("{rate_center}, {state}")}),
        );
    }
    let features: Vec<Value> = number_features(number)
        .iter()
        .map(|f| json!({"name": f}))
        .collect();
    json!({
        "record_type": "available_phone_number",
        "phone_number": number,
        "best_effort": false,
        "quickship": true,
        "reservable": true,
        "vanity_format": "",
        "features": features,
        "region_information": regions,
        "cost_information": {"currency": "USD", "monthly_cost": "1.00", "upfront_cost": "1.00"},
    })
}

fn order_matches(order: &Value, key: &str, value: &str) -> bool {
    match key {
        "filter[customer_reference]" => str_field(order, "customer_reference") == Some(value),
        "filter[status]" => str_field(order, "status") == Some(value),
        "filter[phone_numbers.phone_number]" | "filter[phone_numbers][phone_number]" => order
            .get("phone_numbers")
            .and_then(Value::as_array)
            .is_some_and(|lines| {
                lines
                    .iter()
                    .any(|l| str_field(l, "phone_number") == Some(value))
            }),
        _ => true,
    }
}

fn number_matches(number: &Value, connection_name: &str, key: &str, value: &str) -> bool {
    match key {
        "filter[phone_number]" => {
            let digits = str_field(number, "phone_number")
                .unwrap_or_default()
                .trim_start_matches('+');
            value.len() >= 3 && value.bytes().all(|b| b.is_ascii_digit()) && digits.contains(value)
        }
        "filter[tag]" => number
            .get("tags")
            .and_then(Value::as_array)
            .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(value))),
        "filter[status]" => str_field(number, "status") == Some(&value.replace('_', "-")),
        "filter[connection_id]" => str_field(number, "connection_id") == Some(value),
        "filter[voice.connection_name][contains]" => connection_name.contains(value),
        "filter[voice.connection_name][starts_with]" => connection_name.starts_with(value),
        "filter[voice.connection_name][ends_with]" => connection_name.ends_with(value),
        "filter[voice.connection_name][eq]" => connection_name == value,
        "filter[country_iso_alpha2]" => str_field(number, "country_iso_alpha2") == Some(value),
        "filter[customer_reference]" => str_field(number, "customer_reference") == Some(value),
        "filter[billing_group_id]" => str_field(number, "billing_group_id") == Some(value),
        "filter[number_type][eq]" => str_field(number, "phone_number_type") == Some(value),
        "filter[source]" => match value {
            "purchased" => str_field(number, "source_type") == Some("number_order"),
            "ported" => str_field(number, "source_type") == Some("port_request"),
            _ => false,
        },
        _ => true,
    }
}

/// Sorts by `sort` (`field` ascending, `-field` descending), ids breaking ties.
fn sort_objects(
    items: &mut [&Value],
    sort: Option<&str>,
    default: &str,
    key_of: impl Fn(&Value, &str) -> String,
) {
    let sort = sort.filter(|s| !s.is_empty()).unwrap_or(default);
    let (descending, field) = match sort.strip_prefix('-') {
        Some(field) => (true, field),
        None => (false, sort),
    };
    let field = match field {
        "connection_name"
        | "phone_number"
        | "active"
        | "purchased_at"
        | "created_at"
        | "usage_payment_method"
        | "name" => field,
        _ => "created_at",
    };
    items.sort_by_cached_key(|v| (key_of(v, field), numeric_id(v)));
    if descending {
        items.reverse();
    }
}

/// A field's value as a sortable string.
fn sort_key(object: &Value, field: &str) -> String {
    match object.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn numeric_id(object: &Value) -> (usize, String) {
    let id = str_field(object, "id").unwrap_or_default();
    (id.len(), id.to_string())
}

/// `page[number]` and `page[size]` of a list request.
struct Paging {
    number: usize,
    size: usize,
}

impl Paging {
    fn from_request(req: &ApiRequest) -> Result<Self, ApiResponse> {
        let number = match req.query_value("page[number]").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => {
                return Err(bad_parameter(
                    "page[number]",
                    "page[number] must be an integer of at least 1.",
                ))
            }
        };
        let size = match req.query_value("page[size]").map(str::parse::<usize>) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            Some(_) => {
                return Err(bad_parameter(
                    "page[size]",
                    "page[size] must be between 1 and 250.",
                ))
            }
        };
        Ok(Self { number, size })
    }

    fn respond(&self, items: Vec<&Value>, render: impl Fn(&Value) -> Value) -> ApiResponse {
        let page = page_of(items, (self.number - 1) * self.size, self.size);
        let total_pages = page.total.div_ceil(self.size);
        let data: Vec<Value> = page.items.into_iter().map(render).collect();
        ApiResponse::json(
            200,
            &json!({
                "data": data,
                "meta": {
                    "page_number": self.number,
                    "page_size": self.size,
                    "total_pages": total_pages,
                    "total_results": page.total,
                }
            }),
        )
    }
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
