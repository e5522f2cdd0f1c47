//! The Twilio emulator: Core v2010 IncomingPhoneNumbers and Elastic SIP Trunking v1, following
//! `reference/twilio.md`. HTTP Basic auth on every path (401 / 20003), PascalCase form bodies
//! in, snake_case JSON out, `DELETE` answers 204 with no body.
//!
//! | Method | Path | Notes |
//! |---|---|---|
//! | GET | `/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json` | `PhoneNumber` (partial, `*` = any digit), `FriendlyName`; `PageSize`/`Page`, relative `next_page_uri` |
//! | GET, POST, DELETE | `/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}.json` | update takes `TrunkSid`, `VoiceUrl`, …; delete releases |
//! | GET, POST | `/v1/Trunks` | create answers 201 |
//! | GET, POST, DELETE | `/v1/Trunks/{TK}` | |
//! | GET, POST | `/v1/Trunks/{TK}/PhoneNumbers` | attach with `PhoneNumberSid` |
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TwilioState {
    pub numbers: BTreeMap<String, IncomingNumber>,
    pub trunks: BTreeMap<String, Trunk>,
    pub origination_urls: BTreeMap<String, OriginationUrl>,
    next_seq: u64,
    #[serde(skip)]
    revision: u64,
}

/// A Twilio error answer: `{code, message, more_info, status}`.
fn error(status: u16, code: u32, message: &str) -> ApiResponse {
    ApiResponse::json(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

fn not_found(path: &str) -> ApiResponse {
    error(
        404,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

fn missing(parameter: &str) -> ApiResponse {
    error(
        400,
        20001,
        &format!("Missing required parameter {parameter} in the post body"),
    )
}

/// The 401 of a request without the account's Basic credentials.
pub fn unauthorized() -> ApiResponse {
    error(401, 20003, "Authenticate")
}

/// The 429 of Twilio's rate limiter.
pub fn too_many_requests() -> ApiResponse {
    error(429, 20429, "Too Many Requests")
}

/// A Twilio-shaped 5xx for injected faults.
pub fn server_error(status: u16) -> ApiResponse {
    let message = if status == 503 {
        "Service Unavailable"
    } else {
        "Internal Server Error"
    };
    error(status, 20500, message)
}

fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Form fields of a write, by PascalCase key.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, key: &str) -> Result<&str, ApiResponse> {
        self.get(key).ok_or_else(|| missing(key))
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ApiResponse> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(error(400, 21200, &format!("{key} must be true or false"))),
        }
    }

    fn number(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<Option<u32>, ApiResponse> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .map(Some)
                .ok_or_else(|| {
                    error(
                        400,
                        21200,
                        &format!(
                            "{key} must be an integer from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    }

    fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, ApiResponse> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) => Ok(Some(v.to_string())),
            Some(v) => Err(error(
                400,
                21200,
                &format!("{v} is not a valid value for {key}"),
            )),
        }
    }
}

/// `PageSize` and `Page` of a list request.
struct Paging {
    size: usize,
    page: usize,
}

impl Paging {
    fn from_request(req: &ApiRequest) -> Result<Self, ApiResponse> {
        let size = match req.query_value("PageSize").map(str::parse::<usize>) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            Some(_) => {
                return Err(error(
                    400,
                    20001,
                    "PageSize must be an integer from 1 to 1000",
                ))
            }
        };
        let page = match req.query_value("Page").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return Err(error(400, 20001, "Page must be a non-negative integer")),
        };
        Ok(Self { size, page })
    }

    /// The query string of page `page`, with the list's filters kept.
    fn query(&self, filters: &[(String, String)], page: usize, token: Option<String>) -> String {
        let mut pairs: Vec<(String, String)> = filters.to_vec();
        pairs.push(("PageSize".into(), self.size.to_string()));
        pairs.push(("Page".into(), page.to_string()));
        if let Some(token) = token {
            pairs.push(("PageToken".into(), token));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
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

    // ---- v2010 -------------------------------------------------------------------------------

    fn core(&mut self, req: &ApiRequest, route: &[&str]) -> ApiResponse {
        let [accounts, account, rest @ ..] = route else {
            return not_found(req.path);
        };
        if *accounts != "Accounts" {
            return not_found(req.path);
        }
        if *account != TWILIO_ACCOUNT_SID {
            return unauthorized();
        }
        match (req.method, rest) {
            ("GET", ["IncomingPhoneNumbers.json"]) => self.list_incoming(req),
            (method, ["IncomingPhoneNumbers", file]) => match file.strip_suffix(".json") {
                Some(sid) => self.incoming(method, sid, req).with_resource(Some(sid)),
                None => not_found(req.path),
            },
            _ => not_found(req.path),
        }
    }

    fn incoming(&mut self, method: &str, sid: &str, req: &ApiRequest) -> ApiResponse {
        if !self.numbers.contains_key(sid) {
            return not_found(req.path);
        }
        match method {
            "GET" => ApiResponse::json(200, &self.render_incoming(&self.numbers[sid])),
            "POST" => self.update_incoming(sid, req),
            "DELETE" => {
                self.numbers.remove(sid);
                self.touch();
                ApiResponse::empty(204)
            }
            _ => not_found(req.path),
        }
    }

    fn list_incoming(&self, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let number_filter = req.query_value("PhoneNumber");
        let name_filter = req.query_value("FriendlyName");
        let mut matching: Vec<&IncomingNumber> = self
            .numbers
            .values()
            .filter(|n| number_filter.is_none_or(|f| phone_matches(&n.phone_number, f)))
            .filter(|n| name_filter.is_none_or(|f| n.friendly_name == f))
            .collect();
        matching.sort_by(|a, b| (a.created, &a.sid).cmp(&(b.created, &b.sid)));
        let filters: Vec<(String, String)> = [
            ("PhoneNumber", number_filter),
            ("FriendlyName", name_filter),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
        .collect();
        let page = page_of(matching, paging.page * paging.size, paging.size);
        let base =
            format!("/{API_VERSION}/Accounts/{TWILIO_ACCOUNT_SID}/IncomingPhoneNumbers.json");
        let link = |page: usize, token: Option<String>| {
            format!("{base}?{}", paging.query(&filters, page, token))
        };
        let start = paging.page * paging.size;
        let has_next = start + page.items.len() < page.total;
        let next = has_next.then(|| {
            link(
                paging.page + 1,
                page.items.last().map(|n| format!("PA{}", n.sid)),
            )
        });
        let previous = (paging.page > 0).then(|| {
            link(
                paging.page - 1,
                page.items.first().map(|n| format!("PB{}", n.sid)),
            )
        });
        let items: Vec<Value> = page.items.iter().map(|n| self.render_incoming(n)).collect();
        let end = (start + items.len()).saturating_sub(1).max(start);
        ApiResponse::json(
            200,
            &json!({
                "incoming_phone_numbers": items,
                "first_page_uri": link(0, None),
                "next_page_uri": next,
                "previous_page_uri": previous,
                "uri": link(paging.page, None),
                "page": paging.page,
                "page_size": paging.size,
                "start": start,
                "end": end,
            }),
        )
    }

    fn update_incoming(&mut self, sid: &str, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        let mut number = self.numbers[sid].clone();
        if let Err(response) = self.apply_number_form(&mut number, &form) {
            return response;
        }
        if number != self.numbers[sid] {
            number.updated = req.now;
            self.numbers.insert(sid.to_string(), number.clone());
            self.touch();
        }
        ApiResponse::json(200, &self.render_incoming(&number))
    }

    fn apply_number_form(
        &self,
        number: &mut IncomingNumber,
        form: &Form,
    ) -> Result<(), ApiResponse> {
        let methods = ["GET", "POST"];
        if let Some(trunk) = form.get("TrunkSid") {
            if trunk.is_empty() {
                number.trunk_sid = None;
            } else if self.trunks.contains_key(trunk) {
                number.trunk_sid = Some(trunk.to_string());
                number.voice_application_sid = None;
            } else {
                return Err(error(
                    400,
                    21210,
                    &format!("TrunkSid {trunk} is not a trunk of this account"),
                ));
            }
        }
        if let Some(app) = form.get("VoiceApplicationSid") {
            if app.is_empty() {
                number.voice_application_sid = None;
            } else if app.starts_with("AP") && app.len() == 34 {
                number.voice_application_sid = Some(app.to_string());
                number.trunk_sid = None;
            } else {
                return Err(error(
                    400,
                    21218,
                    &format!("VoiceApplicationSid {app} is not valid"),
                ));
            }
        }
        for (key, field) in [
            ("FriendlyName", &mut number.friendly_name),
            ("VoiceUrl", &mut number.voice_url),
            ("VoiceFallbackUrl", &mut number.voice_fallback_url),
            ("SmsUrl", &mut number.sms_url),
            ("StatusCallback", &mut number.status_callback),
        ] {
            if let Some(value) = form.get(key) {
                *field = value.to_string();
            }
        }
        for (key, field) in [
            ("VoiceMethod", &mut number.voice_method),
            ("VoiceFallbackMethod", &mut number.voice_fallback_method),
            ("SmsMethod", &mut number.sms_method),
            ("StatusCallbackMethod", &mut number.status_callback_method),
        ] {
            if let Some(value) = form.one_of(key, &methods)? {
                *field = value.to_ascii_uppercase();
            }
        }
        if let Some(mode) = form.one_of("VoiceReceiveMode", &["voice", "fax"])? {
            number.voice_receive_mode = mode;
        }
        if let Some(lookup) = form.bool("VoiceCallerIdLookup")? {
            number.voice_caller_id_lookup = lookup;
        }
        Ok(())
    }

    fn render_incoming(&self, n: &IncomingNumber) -> Value {
        json!({
            "sid": n.sid,
            "account_sid": TWILIO_ACCOUNT_SID,
            "phone_number": n.phone_number,
            "friendly_name": n.friendly_name,
            "capabilities": {"voice": true, "sms": !is_toll_free(&n.phone_number), "mms": !is_toll_free(&n.phone_number), "fax": false},
            "status": "in-use",
            "type": if is_toll_free(&n.phone_number) { "toll-free" } else { "local" },
            "origin": "twilio",
            "trunk_sid": n.trunk_sid,
            "voice_url": n.voice_url,
            "voice_method": n.voice_method,
            "voice_fallback_url": n.voice_fallback_url,
            "voice_fallback_method": n.voice_fallback_method,
            "voice_caller_id_lookup": n.voice_caller_id_lookup,
            "voice_application_sid": n.voice_application_sid.clone().unwrap_or_default(),
            "voice_receive_mode": n.voice_receive_mode,
            "sms_url": n.sms_url,
            "sms_method": n.sms_method,
            "sms_fallback_url": "",
            "sms_fallback_method": "POST",
            "sms_application_sid": "",
            "status_callback": n.status_callback,
            "status_callback_method": n.status_callback_method,
            "address_sid": null,
            "address_requirements": "none",
            "emergency_status": "Inactive",
            "emergency_address_sid": null,
            "emergency_address_status": "unregistered",
            "identity_sid": null,
            "bundle_sid": null,
            "beta": false,
            "api_version": API_VERSION,
            "date_created": rfc2822(n.created),
            "date_updated": rfc2822(n.updated),
            "uri": format!("/{API_VERSION}/Accounts/{TWILIO_ACCOUNT_SID}/IncomingPhoneNumbers/{}.json", n.sid),
        })
    }

    // ---- trunking v1 -------------------------------------------------------------------------

    fn trunking(&mut self, req: &ApiRequest, route: &[&str]) -> ApiResponse {
        match (req.method, route) {
            ("GET", ["Trunks"]) => self.list_trunks(req),
            ("POST", ["Trunks"]) => self.create_trunk(req),
            (_, ["Trunks", sid, rest @ ..]) if !self.trunks.contains_key(*sid) => {
                let _ = rest;
                not_found(req.path).with_resource(Some(*sid))
            }
            ("GET", ["Trunks", sid]) => {
                ApiResponse::json(200, &self.render_trunk(&self.trunks[*sid], req.base_url))
                    .with_resource(Some(*sid))
            }
            ("POST", ["Trunks", sid]) => self.update_trunk(sid, req).with_resource(Some(*sid)),
            ("DELETE", ["Trunks", sid]) => self.delete_trunk(sid).with_resource(Some(*sid)),
            ("GET", ["Trunks", sid, "PhoneNumbers"]) => {
                self.list_trunk_numbers(sid, req).with_resource(Some(*sid))
            }
            ("POST", ["Trunks", sid, "PhoneNumbers"]) => {
                self.attach_number(sid, req).with_resource(Some(*sid))
            }
            ("GET", ["Trunks", sid, "PhoneNumbers", pn]) => self
                .get_trunk_number(sid, pn, req)
                .with_resource(Some(*sid)),
            ("DELETE", ["Trunks", sid, "PhoneNumbers", pn]) => {
                self.detach_number(sid, pn, req).with_resource(Some(*sid))
            }
            ("GET", ["Trunks", sid, "OriginationUrls"]) => {
                self.list_origination(sid, req).with_resource(Some(*sid))
            }
            ("POST", ["Trunks", sid, "OriginationUrls"]) => {
                self.create_origination(sid, req).with_resource(Some(*sid))
            }
            (method, ["Trunks", sid, "OriginationUrls", ou]) => self
                .origination(method, sid, ou, req)
                .with_resource(Some(*sid)),
            _ => not_found(req.path),
        }
    }

    fn list_trunks(&self, req: &ApiRequest) -> ApiResponse {
        let mut trunks: Vec<&Trunk> = self.trunks.values().collect();
        trunks.sort_by(|a, b| (a.created, &a.sid).cmp(&(b.created, &b.sid)));
        let items: Vec<Value> = trunks
            .iter()
            .map(|t| self.render_trunk(t, req.base_url))
            .collect();
        v1_list(req, "/v1/Trunks", "trunks", items)
    }

    fn create_trunk(&mut self, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        let sid = self.peek_sid("TK");
        let mut trunk = Trunk {
            sid: sid.clone(),
            friendly_name: None,
            domain_name: None,
            disaster_recovery_url: None,
            disaster_recovery_method: None,
            transfer_mode: "disable-all".into(),
            transfer_caller_id: "from-transferee".into(),
            secure: false,
            cnam_lookup_enabled: false,
            created: req.now,
            updated: req.now,
        };
        if let Err(response) = self.apply_trunk_form(&mut trunk, &form) {
            return response;
        }
        let sid = self.next_sid("TK");
        trunk.sid = sid.clone();
        self.trunks.insert(sid.clone(), trunk);
        self.touch();
        ApiResponse::json(201, &self.render_trunk(&self.trunks[&sid], req.base_url))
            .with_resource(Some(sid))
    }

    fn peek_sid(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}",
            hex_digest(&format!("sandbox:{prefix}:{}", self.next_seq + 1), 32)
        )
    }

    fn update_trunk(&mut self, sid: &str, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        let mut trunk = self.trunks[sid].clone();
        if let Err(response) = self.apply_trunk_form(&mut trunk, &form) {
            return response;
        }
        if trunk != self.trunks[sid] {
            trunk.updated = req.now;
            self.trunks.insert(sid.to_string(), trunk);
            self.touch();
        }
        ApiResponse::json(200, &self.render_trunk(&self.trunks[sid], req.base_url))
    }

    fn apply_trunk_form(&self, trunk: &mut Trunk, form: &Form) -> Result<(), ApiResponse> {
        if let Some(name) = form.get("FriendlyName") {
            trunk.friendly_name = Some(name.to_string());
        }
        if let Some(domain) = form.get("DomainName") {
            if !is_trunk_domain(domain) {
                return Err(error(
                    400,
                    21245,
                    &format!("DomainName {domain} must use letters, digits and '-' and end in pstn.twilio.com"),
                ));
            }
            let taken = self.trunks.values().any(|t| {
                t.sid != trunk.sid
                    && t.domain_name
                        .as_deref()
                        .is_some_and(|d| d.eq_ignore_ascii_case(domain))
            });
            if taken {
                return Err(error(
                    400,
                    21248,
                    &format!("DomainName {domain} is already in use"),
                ));
            }
            trunk.domain_name = Some(domain.to_string());
        }
        if let Some(url) = form.get("DisasterRecoveryUrl") {
            trunk.disaster_recovery_url = (!url.is_empty()).then(|| url.to_string());
        }
        if let Some(method) = form.one_of("DisasterRecoveryMethod", &["GET", "POST"])? {
            trunk.disaster_recovery_method = Some(method.to_ascii_uppercase());
        }
        if let Some(mode) =
            form.one_of("TransferMode", &["disable-all", "enable-all", "sip-only"])?
        {
            trunk.transfer_mode = mode;
        }
        if let Some(caller) =
            form.one_of("TransferCallerId", &["from-transferee", "from-transferor"])?
        {
            trunk.transfer_caller_id = caller;
        }
        if let Some(secure) = form.bool("Secure")? {
            trunk.secure = secure;
        }
        if let Some(cnam) = form.bool("CnamLookupEnabled")? {
            trunk.cnam_lookup_enabled = cnam;
        }
        Ok(())
    }

    fn delete_trunk(&mut self, sid: &str) -> ApiResponse {
        self.trunks.remove(sid);
        self.origination_urls.retain(|_, o| o.trunk_sid != sid);
        for number in self.numbers.values_mut() {
            if number.trunk_sid.as_deref() == Some(sid) {
                number.trunk_sid = None;
            }
        }
        self.touch();
        ApiResponse::empty(204)
    }

    fn render_trunk(&self, t: &Trunk, base: &str) -> Value {
        let url = format!("{base}/v1/Trunks/{}", t.sid);
        json!({
            "sid": t.sid,
            "account_sid": TWILIO_ACCOUNT_SID,
            "friendly_name": t.friendly_name,
            "domain_name": t.domain_name,
            "disaster_recovery_url": t.disaster_recovery_url,
            "disaster_recovery_method": t.disaster_recovery_method,
            "secure": t.secure,
            "recording": {"mode": "do-not-record", "trim": "do-not-trim"},
            "transfer_mode": t.transfer_mode,
            "transfer_caller_id": t.transfer_caller_id,
            "cnam_lookup_enabled": t.cnam_lookup_enabled,
            "auth_type": "",
            "auth_type_set": [],
            "symmetric_rtp_enabled": false,
            "date_created": iso(t.created),
            "date_updated": iso(t.updated),
            "url": url,
            "links": {
                "origination_urls": format!("{url}/OriginationUrls"),
                "credential_lists": format!("{url}/CredentialLists"),
                "ip_access_control_lists": format!("{url}/IpAccessControlLists"),
                "phone_numbers": format!("{url}/PhoneNumbers"),
                "recording": format!("{url}/Recording"),
            },
        })
    }

    fn trunk_numbers(&self, trunk: &str) -> Vec<&IncomingNumber> {
        let mut numbers: Vec<&IncomingNumber> = self
            .numbers
            .values()
            .filter(|n| n.trunk_sid.as_deref() == Some(trunk))
            .collect();
        numbers.sort_by(|a, b| (a.created, &a.sid).cmp(&(b.created, &b.sid)));
        numbers
    }

    fn list_trunk_numbers(&self, trunk: &str, req: &ApiRequest) -> ApiResponse {
        let items = self
            .trunk_numbers(trunk)
            .into_iter()
            .map(|n| render_trunk_number(n, trunk, req.base_url))
            .collect();
        v1_list(
            req,
            &format!("/v1/Trunks/{trunk}/PhoneNumbers"),
            "phone_numbers",
            items,
        )
    }

    fn attach_number(&mut self, trunk: &str, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        let pn = match form.required("PhoneNumberSid") {
            Ok(pn) => pn.to_string(),
            Err(response) => return response,
        };
        let Some(number) = self.numbers.get_mut(&pn) else {
            return error(
                400,
                21421,
                &format!("PhoneNumberSid {pn} is not a phone number of this account"),
            );
        };
        match number.trunk_sid.as_deref() {
            Some(current) if current == trunk => {
                return error(
                    400,
                    21222,
                    &format!("Phone number {pn} is already associated with this trunk"),
                )
            }
            Some(other) => {
                return error(
                    400,
                    21223,
                    &format!("Phone number {pn} is already associated with trunk {other}"),
                )
            }
            None => {}
        }
        number.trunk_sid = Some(trunk.to_string());
        number.voice_application_sid = None;
        number.updated = req.now;
        let rendered = render_trunk_number(number, trunk, req.base_url);
        self.touch();
        ApiResponse::json(201, &rendered)
    }

    fn get_trunk_number(&self, trunk: &str, pn: &str, req: &ApiRequest) -> ApiResponse {
        match self
            .numbers
            .get(pn)
            .filter(|n| n.trunk_sid.as_deref() == Some(trunk))
        {
            Some(n) => ApiResponse::json(200, &render_trunk_number(n, trunk, req.base_url)),
            None => not_found(req.path),
        }
    }

    fn detach_number(&mut self, trunk: &str, pn: &str, req: &ApiRequest) -> ApiResponse {
        match self
            .numbers
            .get_mut(pn)
            .filter(|n| n.trunk_sid.as_deref() == Some(trunk))
        {
            Some(n) => {
                n.trunk_sid = None;
                n.updated = req.now;
                self.touch();
                ApiResponse::empty(204)
            }
            None => not_found(req.path),
        }
    }

    fn list_origination(&self, trunk: &str, req: &ApiRequest) -> ApiResponse {
        let mut urls: Vec<&OriginationUrl> = self
            .origination_urls
            .values()
            .filter(|o| o.trunk_sid == trunk)
            .collect();
        urls.sort_by(|a, b| (a.created, &a.sid).cmp(&(b.created, &b.sid)));
        let items = urls
            .iter()
            .map(|o| render_origination(o, req.base_url))
            .collect();
        v1_list(
            req,
            &format!("/v1/Trunks/{trunk}/OriginationUrls"),
            "origination_urls",
            items,
        )
    }

    fn create_origination(&mut self, trunk: &str, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        for key in ["FriendlyName", "SipUrl", "Priority", "Weight", "Enabled"] {
            if form.get(key).is_none() {
                return missing(key);
            }
        }
        let mut url = OriginationUrl {
            sid: String::new(),
            trunk_sid: trunk.to_string(),
            friendly_name: String::new(),
            sip_url: String::new(),
            priority: 10,
            weight: 10,
            enabled: true,
            created: req.now,
            updated: req.now,
        };
        if let Err(response) = apply_origination_form(&mut url, &form) {
            return response;
        }
        url.sid = self.next_sid("OU");
        let rendered = render_origination(&url, req.base_url);
        self.origination_urls.insert(url.sid.clone(), url);
        self.touch();
        ApiResponse::json(201, &rendered)
    }

    fn origination(
        &mut self,
        method: &str,
        trunk: &str,
        sid: &str,
        req: &ApiRequest,
    ) -> ApiResponse {
        let Some(current) = self
            .origination_urls
            .get(sid)
            .filter(|o| o.trunk_sid == trunk)
            .cloned()
        else {
            return not_found(req.path);
        };
        match method {
            "GET" => ApiResponse::json(200, &render_origination(&current, req.base_url)),
            "POST" => {
                let form = match form_of(req) {
                    Ok(form) => form,
                    Err(response) => return response,
                };
                let mut url = current.clone();
                if let Err(response) = apply_origination_form(&mut url, &form) {
                    return response;
                }
                if url != current {
                    url.updated = req.now;
                    self.origination_urls.insert(sid.to_string(), url.clone());
                    self.touch();
                }
                ApiResponse::json(200, &render_origination(&url, req.base_url))
            }
            "DELETE" => {
                self.origination_urls.remove(sid);
                self.touch();
                ApiResponse::empty(204)
            }
            _ => not_found(req.path),
        }
    }

    // ---- seeds -------------------------------------------------------------------------------

    /// `docs/runbook-world.md`, Twilio table: SIDs are the prefix plus the first 32 hex digits
    /// of sha256(`runbook:<natural key>`).
    pub fn seed_runbook(&mut self) {
        let time = |minute: u32| {
            Utc.with_ymd_and_hms(2025, 11, 3, 15, minute, 0)
                .single()
                .expect("a valid seed time")
        };
        for (minute, domain, name) in [
            (0, "churchwiseai.pstn.twilio.com", "LiveKit Main"),
            (1, "churchwiseai-test.pstn.twilio.com", "LiveKit Test"),
        ] {
            let sid = runbook_sid("TK", domain);
            self.trunks.insert(
                sid.clone(),
                Trunk {
                    sid: sid.clone(),
                    friendly_name: Some(name.into()),
                    domain_name: Some(domain.into()),
                    disaster_recovery_url: None,
                    disaster_recovery_method: None,
                    transfer_mode: "disable-all".into(),
                    transfer_caller_id: "from-transferee".into(),
                    secure: false,
                    cnam_lookup_enabled: false,
                    created: time(minute),
                    updated: time(minute),
                },
            );
            let ou = runbook_sid("OU", &format!("{domain}:LiveKit"));
            self.origination_urls.insert(
                ou.clone(),
                OriginationUrl {
                    sid: ou,
                    trunk_sid: sid,
                    friendly_name: "LiveKit".into(),
                    sip_url: LIVEKIT_ORIGINATION.into(),
                    priority: 10,
                    weight: 10,
                    enabled: true,
                    created: time(minute),
                    updated: time(minute),
                },
            );
        }
        for (minute, number, name, domain) in [
            (
                10,
                "+18886030316",
                "Sales (toll-free)",
                "churchwiseai.pstn.twilio.com",
            ),
            (
                11,
                "+14696152221",
                "Demo (US)",
                "churchwiseai.pstn.twilio.com",
            ),
            (
                12,
                "+13658254095",
                "Demo (CA)",
                "churchwiseai.pstn.twilio.com",
            ),
            (
                13,
                "+13658253552",
                "Spare (unassigned)",
                "churchwiseai-test.pstn.twilio.com",
            ),
        ] {
            let sid = runbook_sid("PN", number);
            self.numbers.insert(
                sid.clone(),
                IncomingNumber {
                    sid,
                    phone_number: number.into(),
                    friendly_name: name.into(),
                    trunk_sid: Some(runbook_sid("TK", domain)),
                    voice_url: String::new(),
                    voice_method: "POST".into(),
                    voice_fallback_url: String::new(),
                    voice_fallback_method: "POST".into(),
                    voice_application_sid: None,
                    voice_caller_id_lookup: false,
                    voice_receive_mode: "voice".into(),
                    sms_url: String::new(),
                    sms_method: "POST".into(),
                    status_callback: String::new(),
                    status_callback_method: "POST".into(),
                    created: time(minute),
                    updated: time(minute),
                },
            );
        }
        self.touch();
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

fn form_of(req: &ApiRequest) -> Result<Form, ApiResponse> {
    req.form_body().map(Form).map_err(|e| {
        error(
            400,
            20001,
            &format!("The request body is not form-encoded: {e}"),
        )
    })
}

fn apply_origination_form(url: &mut OriginationUrl, form: &Form) -> Result<(), ApiResponse> {
    if let Some(name) = form.get("FriendlyName") {
        url.friendly_name = name.to_string();
    }
    if let Some(sip) = form.get("SipUrl") {
        if !sip.starts_with("sip:") || sip.len() <= 4 {
            return Err(error(
                400,
                21204,
                &format!("SipUrl {sip} must use the sip: scheme"),
            ));
        }
        url.sip_url = sip.to_string();
    }
    if let Some(priority) = form.number("Priority", 0..=65535)? {
        url.priority = priority;
    }
    if let Some(weight) = form.number("Weight", 1..=65535)? {
        url.weight = weight;
    }
    if let Some(enabled) = form.bool("Enabled")? {
        url.enabled = enabled;
    }
    Ok(())
}

fn render_trunk_number(n: &IncomingNumber, trunk: &str, base: &str) -> Value {
    json!({
        "sid": n.sid,
        "trunk_sid": trunk,
        "account_sid": TWILIO_ACCOUNT_SID,
        "phone_number": n.phone_number,
        "friendly_name": n.friendly_name,
        "capabilities": {"voice": true, "sms": !is_toll_free(&n.phone_number), "mms": !is_toll_free(&n.phone_number), "fax": false},
        "address_requirements": "none",
        "api_version": API_VERSION,
        "beta": false,
        "voice_url": n.voice_url,
        "voice_method": n.voice_method,
        "voice_fallback_url": n.voice_fallback_url,
        "voice_fallback_method": n.voice_fallback_method,
        "voice_caller_id_lookup": n.voice_caller_id_lookup,
        "voice_application_sid": n.voice_application_sid,
        "sms_url": n.sms_url,
        "sms_method": n.sms_method,
        "sms_fallback_url": "",
        "sms_fallback_method": "POST",
        "sms_application_sid": "",
        "status_callback": n.status_callback,
        "status_callback_method": n.status_callback_method,
        "date_created": iso(n.created),
        "date_updated": iso(n.updated),
        "url": format!("{base}/v1/Trunks/{trunk}/PhoneNumbers/{}", n.sid),
        "links": {},
    })
}

fn render_origination(o: &OriginationUrl, base: &str) -> Value {
    json!({
        "sid": o.sid,
        "account_sid": TWILIO_ACCOUNT_SID,
        "trunk_sid": o.trunk_sid,
        "friendly_name": o.friendly_name,
        "sip_url": o.sip_url,
        "priority": o.priority,
        "weight": o.weight,
        "enabled": o.enabled,
        "date_created": iso(o.created),
        "date_updated": iso(o.updated),
        "url": format!("{base}/v1/Trunks/{}/OriginationUrls/{}", o.trunk_sid, o.sid),
    })
}

/// A v1 list page: `{<key>: [...], meta: {page, page_size, first_page_url, previous_page_url,
/// url, next_page_url, key}}` with absolute URLs.
fn v1_list(req: &ApiRequest, path: &str, key: &str, items: Vec<Value>) -> ApiResponse {
    let paging = match Paging::from_request(req) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let page = page_of(items, paging.page * paging.size, paging.size);
    let link = |n: usize, token: Option<String>| {
        format!("{}{path}?{}", req.base_url, paging.query(&[], n, token))
    };
    let shown = paging.page * paging.size + page.items.len();
    let token = |item: Option<&Value>, prefix: &str| {
        item.and_then(|i| i.get("sid"))
            .and_then(Value::as_str)
            .map(|s| format!("{prefix}{s}"))
    };
    let next = (shown < page.total).then(|| link(paging.page + 1, token(page.items.last(), "PA")));
    let previous =
        (paging.page > 0).then(|| link(paging.page - 1, token(page.items.first(), "PB")));
    let mut body = serde_json::Map::new();
    body.insert(key.to_string(), Value::Array(page.items));
    body.insert(
        "meta".into(),
        json!({
            "page": paging.page,
            "page_size": paging.size,
            "first_page_url": link(0, None),
            "previous_page_url": previous,
            "url": link(paging.page, None),
            "next_page_url": next,
            "key": key,
        }),
    );
    ApiResponse::json(200, &Value::Object(body))
}

/// Twilio's `PhoneNumber` filter: a partial number where `*` stands for any digit.
fn phone_matches(number: &str, filter: &str) -> bool {
    let digits = number.trim_start_matches('+');
    let pattern: Vec<char> = filter
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '*')
        .collect();
    if pattern.is_empty() {
        return true;
    }
    let digits: Vec<char> = digits.chars().collect();
    digits
        .windows(pattern.len())
        .any(|w| w.iter().zip(&pattern).all(|(d, p)| *p == '*' || d == p))
}

fn is_toll_free(number: &str) -> bool {
    number.len() == 12
        && matches!(
            &number[2..5],
            "800" | "833" | "844" | "855" | "866" | "877" | "888"
        )
}

fn is_trunk_domain(domain: &str) -> bool {
    domain.ends_with(".pstn.twilio.com")
        && domain.len() > ".pstn.twilio.com".len()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
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
