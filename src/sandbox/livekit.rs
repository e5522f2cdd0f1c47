//! The LiveKit SIP service (Twirp), emulated over a [`LivekitState`].
//!
//! Every call is `POST /twirp/livekit.SIP/{Method}`; the framework hands it to
//! [`LivekitState::handle`], which is pure over the state (it reads the clock only to check
//! token expiry). Bodies are protobuf (`application/protobuf`, what the official SDKs send)
//! or protobuf-JSON (`application/json`); answers use the request's encoding.
//!
//! | Method | Behaviour |
//! |---|---|
//! | `CreateSIPInboundTrunk` | security rule + header/media validation, number conflict check, assigns `ST_…` |
//! | `ListSIPInboundTrunk` | `trunk_ids`, `numbers` (normalized; wildcard trunks always kept), `page.after_id`; `page.limit` only with [`LivekitState::list_page_cap`] |
//! | `GetSIPInboundTrunk` | `{trunk}`; `not_found` `requested sip trunk does not exist` |
//! | `UpdateSIPInboundTrunk` | `replace` or `update` (ListUpdate lists, optional scalars, media), re-validated and conflict-checked |
//! | `CreateSIPOutboundTrunk` / `List…` / `Get…` / `Update…` | numbers + address rules, exact `numbers` filter, no conflict check |
//! | `DeleteSIPTrunk` | either kind; 200 even for an unknown id (as the OSS server) |
//! | `CreateSIPDispatchRule` | `dispatch_rule` wrapper, or the deprecated top-level fields (room_config kept, as the current server; server source) |
//! | `ListSIPDispatchRule` | `dispatch_rule_ids`, `trunk_ids` (wildcard rules always kept), `page.after_id` |
//! | `UpdateSIPDispatchRule` | `replace` or `update` (trunk_ids ListUpdate, rule, name, metadata, attributes diff, media) |
//! | `DeleteSIPDispatchRule` | returns the deleted rule; `not_found` for an unknown id |
//! | `ListSIPTrunk` | deprecated: every trunk as the legacy `SIPTrunkInfo` |
//! | `CreateSIPTrunk` | deprecated: a legacy trunk, listed and read as inbound *and* outbound under one id (server source) |
//! | `CreateSIPParticipant`, `TransferSIPParticipant` | `unimplemented` (501): cwa places no calls |
//! | anything else | `bad_route` (404) |
//!
//! `POST /twirp/livekit.PhoneNumberService/{Method}` (LiveKit's own numbers: search,
//! purchase, list, get, update, release) is [`numbers`], under the same auth and grant.
//!
//! Auth: `Authorization: Bearer <HS256 JWT>` signed with the sandbox secret, `iss` = the
//! sandbox key, `exp` required, 60 s leeway; failures are 401 plain text. Management calls
//! need the `sip.admin` grant, else Twirp `unauthenticated` `permissions denied`.

mod auth;
mod ids;
pub mod matching;
mod newer;
pub mod numbers;
mod rules;
mod seed;
mod synthetic;
mod wire;

use std::collections::BTreeMap;
use std::fmt;

use livekit_protocol as proto;
use prost::Message;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use auth::SipGrants;
use wire::{Encoding, TwirpError};

pub use ids::{RULE_PREFIX, TRUNK_PREFIX};

/// The LiveKit project the runbooks describe: project id, SIP host and the agent.
pub const RUNBOOK_PROJECT_ID: &str = "p_5u9xu5ysoly";
/// The SIP host of the runbook project: the one host inbound carriers must point at.
pub const RUNBOOK_SIP_HOST: &str = "5u9xu5ysoly.sip.livekit.cloud";
/// The multi-tenant voice agent every rule should dispatch.
pub const RUNBOOK_AGENT: &str = "churchwiseai-voice";
/// The fake outbound SIP password the sandbox seeds (never a real one).
const SANDBOX_OUTBOUND_PASSWORD: &str = "sandbox-outbound-secret";

/// Objects of one kind by id, sorted so lists come out in LiveKit's id order.
/// `Debug` prints ids only: trunks hold SIP passwords.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Table<T>(pub BTreeMap<String, T>);

impl<T> fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Every SIP object of the emulated LiveKit project. Persisted as JSON (the prost messages'
/// pbjson form), so a world survives between commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LivekitState {
    #[serde(default)]
    pub inbound_trunks: Table<proto::SipInboundTrunkInfo>,
    #[serde(default)]
    pub outbound_trunks: Table<proto::SipOutboundTrunkInfo>,
    #[serde(default)]
    pub dispatch_rules: Table<proto::SipDispatchRuleInfo>,
    /// Trunks made with the deprecated `CreateSIPTrunk`: listed and read as inbound *and* as
    /// outbound trunks under one id (livekit/livekit `redisstore_sip.go`, livekit/protocol
    /// `SIPTrunkInfo.AsInbound`/`AsOutbound`); `DeleteSIPTrunk` removes both sides.
    #[serde(default, skip_serializing_if = "table_is_empty")]
    pub legacy_trunks: Table<proto::SipTrunkInfo>,
    /// Realism switch: the most items one list answer holds. `None` is the open-source
    /// server, which drains every page into one answer whatever `page.limit` says (server
    /// source); `Some(n)` is what LiveKit Cloud may do with large lists (undocumented: an
    /// assumption), answering at most `min(n, page.limit)` items after `page.after_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_page_cap: Option<usize>,
    /// Fields of a newer LiveKit release that `livekit-protocol` 0.8.2 does not know, by
    /// object id (snake_case name -> JSON value). LiveKit adds fields every few months; a
    /// client built from older protos cannot see them, and a `replace` it builds from its own
    /// structs wipes them (the server stores exactly what a replace carries). See
    /// [`newer`] for how each call treats them. Tests inject them through
    /// [`super::Sandbox::world`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub newer_fields: BTreeMap<String, Map<String, Value>>,
    /// LiveKit's own numbers this project holds or held (`PhoneNumberService`), by `PN_…` id;
    /// released ones stay, as `RELEASED`.
    #[serde(default, skip_serializing_if = "table_is_empty")]
    pub phone_numbers: Table<proto::PhoneNumber>,
    /// Inventory numbers another LiveKit customer bought: search no longer offers them and a
    /// purchase is refused (tests set it to race a fixed number away).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub numbers_taken_elsewhere: std::collections::BTreeSet<String>,
}

fn table_is_empty<T>(t: &Table<T>) -> bool {
    t.0.is_empty()
}

/// One Twirp call as the HTTP layer received it.
pub struct TwirpRequest<'a> {
    /// The Twirp service: `livekit.SIP` or `livekit.PhoneNumberService`.
    pub service: &'a str,
    /// The last path segment: `CreateSIPInboundTrunk`, …
    pub method: &'a str,
    /// `POST`, `GET`, …
    pub http_method: &'a str,
    pub content_type: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
    /// The sandbox's key and secret, the only pair tokens may be signed with.
    pub api_key: &'a str,
    pub api_secret: &'a str,
}

/// What to answer. `write` says the state changed (persist it); `resource_id` is the id the
/// call created or addressed, for the request log.
pub struct TwirpResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub resource_id: Option<String>,
    pub write: bool,
}

impl TwirpResponse {
    fn error(e: &TwirpError) -> Self {
        Self {
            status: e.status(),
            content_type: "application/json",
            body: e.body(),
            resource_id: None,
            write: false,
        }
    }

    fn unauthorized(text: &str) -> Self {
        Self {
            status: 401,
            content_type: "text/plain; charset=utf-8",
            body: format!("{text}\n").into_bytes(),
            resource_id: None,
            write: false,
        }
    }
}

/// The outcome of a successful operation besides its response message.
struct Effect {
    resource_id: Option<String>,
    write: bool,
}

impl Effect {
    fn read(id: Option<String>) -> Self {
        Self {
            resource_id: id,
            write: false,
        }
    }

    fn wrote(id: String) -> Self {
        Self {
            resource_id: Some(id),
            write: true,
        }
    }
}

type Outcome<T> = Result<(T, Effect), TwirpError>;

const TRUNK_NOT_FOUND: &str = "requested sip trunk does not exist";
const RULE_NOT_FOUND: &str = "requested sip dispatch rule does not exist";

impl LivekitState {
    /// The names of every newer field some object holds (what a JSON write may carry beyond
    /// the protos of the contract extract: this emulated server is newer than they are).
    pub fn newer_field_names(&self) -> std::collections::BTreeSet<String> {
        self.newer_fields
            .values()
            .flat_map(|fields| fields.keys().cloned())
            .collect()
    }

    /// Answers one Twirp call: auth middleware, Twirp routing, then the method.
    pub fn handle(&mut self, req: &TwirpRequest<'_>) -> TwirpResponse {
        let grants = match auth::verify(req.authorization, req.api_key, req.api_secret) {
            Ok(grants) => grants,
            Err(rejected) => return TwirpResponse::unauthorized(&rejected.0),
        };
        match self.route(req, grants) {
            Ok((body, encoding, effect)) => TwirpResponse {
                status: 200,
                content_type: encoding.content_type(),
                body,
                resource_id: effect.resource_id,
                write: effect.write,
            },
            Err(e) => TwirpResponse::error(&e),
        }
    }

    fn route(
        &mut self,
        req: &TwirpRequest<'_>,
        grants: Option<SipGrants>,
    ) -> Result<(Vec<u8>, Encoding, Effect), TwirpError> {
        let path = format!("/twirp/{}/{}", req.service, req.method);
        if req.http_method != "POST" {
            let msg = format!(
                "unsupported method {:?} (only POST is allowed)",
                req.http_method
            );
            return Err(TwirpError::bad_route(msg, req.http_method, &path));
        }
        let known = match req.service {
            SIP_SERVICE => KNOWN_METHODS,
            PHONE_NUMBER_SERVICE => numbers::METHODS,
            _ => &[],
        };
        if !known.contains(&req.method) {
            let msg = format!("no handler for path {path:?}");
            return Err(TwirpError::bad_route(msg, req.http_method, &path));
        }
        let Some(encoding) = Encoding::from_content_type(req.content_type) else {
            let msg = format!(
                "unexpected Content-Type: {:?}",
                req.content_type.unwrap_or("")
            );
            return Err(TwirpError::bad_route(msg, req.http_method, &path));
        };
        let call = Call {
            encoding,
            body: req.body,
            grants,
        };
        if req.service == PHONE_NUMBER_SERVICE {
            let (body, effect) = self.dispatch_numbers(req.method, &call)?;
            return Ok((body, encoding, effect));
        }
        let carried = newer::carried(req.method, &call);
        let (mut body, effect) = self.dispatch(req.method, &call)?;
        newer::settle(&mut self.newer_fields, req.method, carried, &effect);
        if encoding == Encoding::Json && !self.newer_fields.is_empty() {
            body = newer::merged(&body, &self.newer_fields);
        }
        Ok((body, encoding, effect))
    }

    fn dispatch(&mut self, method: &str, c: &Call<'_>) -> Result<(Vec<u8>, Effect), TwirpError> {
        match method {
            "CreateSIPInboundTrunk" => c.run(method, |r| self.create_inbound(r)),
            "ListSIPInboundTrunk" => c.run(method, |r| self.list_inbound(r)),
            "GetSIPInboundTrunk" => c.run(method, |r| self.get_inbound(r)),
            "UpdateSIPInboundTrunk" => c.run(method, |r| self.update_inbound(r)),
            "CreateSIPOutboundTrunk" => c.run(method, |r| self.create_outbound(r)),
            "ListSIPOutboundTrunk" => c.run(method, |r| self.list_outbound(r)),
            "GetSIPOutboundTrunk" => c.run(method, |r| self.get_outbound(r)),
            "UpdateSIPOutboundTrunk" => c.run(method, |r| self.update_outbound(r)),
            "DeleteSIPTrunk" => c.run(method, |r| self.delete_trunk(r)),
            "CreateSIPTrunk" => c.run(method, |r| self.create_legacy(r)),
            "ListSIPTrunk" => c.run(method, |r| self.list_legacy(r)),
            "CreateSIPDispatchRule" => c.run(method, |r| self.create_rule(r)),
            "ListSIPDispatchRule" => c.run(method, |r| self.list_rules(r)),
            "UpdateSIPDispatchRule" => c.run(method, |r| self.update_rule(r)),
            "DeleteSIPDispatchRule" => c.run(method, |r| self.delete_rule(r)),
            other => Err(TwirpError::new(
                "unimplemented",
                format!("the sandbox does not emulate {other}"),
            )),
        }
    }

    fn dispatch_numbers(
        &mut self,
        method: &str,
        c: &Call<'_>,
    ) -> Result<(Vec<u8>, Effect), TwirpError> {
        match method {
            "SearchPhoneNumbers" => c.run(method, |r| self.search_numbers(r)),
            "PurchasePhoneNumber" => c.run(method, |r| self.purchase_numbers(r)),
            "ListPhoneNumbers" => c.run(method, |r| self.list_numbers(r)),
            "GetPhoneNumber" => c.run(method, |r| self.get_number(r)),
            "UpdatePhoneNumber" => c.run(method, |r| self.update_number(r)),
            "ReleasePhoneNumbers" => c.run(method, |r| self.release_numbers(r)),
            other => Err(TwirpError::new(
                "unimplemented",
                format!("the sandbox does not emulate {other}"),
            )),
        }
    }

    /// A trunk id no object of either kind uses yet.
    fn fresh_trunk_id(&self) -> String {
        loop {
            let id = ids::random(TRUNK_PREFIX);
            if !self.inbound_trunks.0.contains_key(&id)
                && !self.outbound_trunks.0.contains_key(&id)
                && !self.legacy_trunks.0.contains_key(&id)
            {
                return id;
            }
        }
    }

    fn fresh_rule_id(&self) -> String {
        loop {
            let id = ids::random(RULE_PREFIX);
            if !self.dispatch_rules.0.contains_key(&id) {
                return id;
            }
        }
    }

    /// Checks the inbound trunks for number conflicts with `candidate` swapped in (same id)
    /// or appended (new).
    fn check_inbound_conflicts(
        &self,
        candidate: &proto::SipInboundTrunkInfo,
    ) -> Result<(), TwirpError> {
        let stored = self.all_inbound();
        let mut all: Vec<&proto::SipInboundTrunkInfo> = stored
            .iter()
            .map(|t| {
                if t.sip_trunk_id == candidate.sip_trunk_id {
                    candidate
                } else {
                    t
                }
            })
            .collect();
        if !stored
            .iter()
            .any(|t| t.sip_trunk_id == candidate.sip_trunk_id)
        {
            all.push(candidate);
        }
        rules::inbound_trunk_conflicts(all)
    }

    fn check_rule_conflicts(
        &self,
        candidate: &proto::SipDispatchRuleInfo,
    ) -> Result<(), TwirpError> {
        let mut all: Vec<&proto::SipDispatchRuleInfo> = self
            .dispatch_rules
            .0
            .values()
            .map(|r| {
                if r.sip_dispatch_rule_id == candidate.sip_dispatch_rule_id {
                    candidate
                } else {
                    r
                }
            })
            .collect();
        if !self
            .dispatch_rules
            .0
            .contains_key(&candidate.sip_dispatch_rule_id)
        {
            all.push(candidate);
        }
        rules::dispatch_rule_conflicts(all)
    }

    /// Every inbound trunk, legacy ones read as inbound, in id order.
    pub fn all_inbound(&self) -> Vec<proto::SipInboundTrunkInfo> {
        let mut all: Vec<proto::SipInboundTrunkInfo> = self
            .inbound_trunks
            .0
            .values()
            .cloned()
            .chain(self.legacy_trunks.0.values().filter_map(as_inbound))
            .collect();
        all.sort_by(|a, b| a.sip_trunk_id.cmp(&b.sip_trunk_id));
        all
    }

    /// Every outbound trunk, legacy ones read as outbound, in id order.
    pub fn all_outbound(&self) -> Vec<proto::SipOutboundTrunkInfo> {
        let mut all: Vec<proto::SipOutboundTrunkInfo> = self
            .outbound_trunks
            .0
            .values()
            .cloned()
            .chain(self.legacy_trunks.0.values().filter_map(as_outbound))
            .collect();
        all.sort_by(|a, b| a.sip_trunk_id.cmp(&b.sip_trunk_id));
        all
    }

    /// The inbound trunk `id`, or the legacy trunk `id` read as inbound.
    fn inbound(&self, id: &str) -> Option<proto::SipInboundTrunkInfo> {
        self.inbound_trunks
            .0
            .get(id)
            .cloned()
            .or_else(|| self.legacy_trunks.0.get(id).and_then(as_inbound))
    }

    fn outbound(&self, id: &str) -> Option<proto::SipOutboundTrunkInfo> {
        self.outbound_trunks
            .0
            .get(id)
            .cloned()
            .or_else(|| self.legacy_trunks.0.get(id).and_then(as_outbound))
    }

    /// Items (already in id order) with ids after `page.after_id`. Without a
    /// [`Self::list_page_cap`] the answer drains every page, as the OSS handler does, so
    /// `limit` does not cap it; with one, at most `min(cap, limit)` items come back.
    fn page<'a, T: Clone + 'a>(
        &self,
        items: impl Iterator<Item = &'a T>,
        page: Option<&proto::Pagination>,
        id: impl Fn(&T) -> &String,
    ) -> Vec<T> {
        let after = page.map(|p| p.after_id.clone()).unwrap_or_default();
        let limit = page
            .and_then(|p| usize::try_from(p.limit).ok())
            .filter(|l| *l > 0);
        let take = match (self.list_page_cap, limit) {
            (Some(cap), Some(limit)) => cap.min(limit),
            (Some(cap), None) => cap,
            (None, _) => usize::MAX,
        };
        items
            .filter(|t| after.is_empty() || id(t).as_str() > after.as_str())
            .take(take)
            .cloned()
            .collect()
    }

    /// The deprecated `CreateSIPTrunk`: refuses `inbound_numbers_regex`, checks the trunk as
    /// inbound for number conflicts, stores it as a legacy trunk (livekit/livekit
    /// `pkg/service/sip.go`).
    #[allow(deprecated)]
    fn create_legacy(&mut self, req: proto::CreateSipTrunkRequest) -> Outcome<proto::SipTrunkInfo> {
        if !req.inbound_numbers_regex.is_empty() {
            return Err(TwirpError::invalid_argument(
                "Trunks with InboundNumbersRegex are deprecated. Use InboundNumbers instead.",
            ));
        }
        let mut info = proto::SipTrunkInfo {
            inbound_addresses: req.inbound_addresses,
            outbound_address: req.outbound_address,
            outbound_number: req.outbound_number,
            inbound_numbers: req.inbound_numbers,
            inbound_username: req.inbound_username,
            inbound_password: req.inbound_password,
            outbound_username: req.outbound_username,
            outbound_password: req.outbound_password,
            name: req.name,
            metadata: req.metadata,
            ..Default::default()
        };
        if let Some(inbound) = as_inbound(&info) {
            self.check_inbound_conflicts(&inbound)?;
        }
        info.sip_trunk_id = self.fresh_trunk_id();
        let id = info.sip_trunk_id.clone();
        self.legacy_trunks.0.insert(id.clone(), info.clone());
        Ok((info, Effect::wrote(id)))
    }

    fn create_inbound(
        &mut self,
        req: proto::CreateSipInboundTrunkRequest,
    ) -> Outcome<proto::SipInboundTrunkInfo> {
        let mut trunk = req
            .trunk
            .ok_or_else(|| TwirpError::invalid_argument("missing trunk"))?;
        if !trunk.sip_trunk_id.is_empty() {
            return Err(TwirpError::invalid_argument("trunk id must not be set"));
        }
        rules::inbound_trunk(&trunk)?;
        self.check_inbound_conflicts(&trunk)?;
        trunk.sip_trunk_id = self.fresh_trunk_id();
        let id = trunk.sip_trunk_id.clone();
        self.inbound_trunks.0.insert(id.clone(), trunk.clone());
        Ok((trunk, Effect::wrote(id)))
    }

    fn list_inbound(
        &mut self,
        req: proto::ListSipInboundTrunkRequest,
    ) -> Outcome<proto::ListSipInboundTrunkResponse> {
        let wanted: Vec<String> = req
            .numbers
            .iter()
            .map(|n| matching::normalize_number(n))
            .collect();
        let all = self.all_inbound();
        let matching = all
            .iter()
            .filter(|t| req.trunk_ids.is_empty() || req.trunk_ids.contains(&t.sip_trunk_id))
            .filter(|t| {
                wanted.is_empty()
                    || t.numbers.is_empty()
                    || t.numbers.iter().any(|n| {
                        req.numbers.contains(n) || wanted.contains(&matching::normalize_number(n))
                    })
            });
        let items = self.page(matching, req.page.as_ref(), |t| &t.sip_trunk_id);
        Ok((
            proto::ListSipInboundTrunkResponse { items },
            Effect::read(None),
        ))
    }

    fn get_inbound(
        &mut self,
        req: proto::GetSipInboundTrunkRequest,
    ) -> Outcome<proto::GetSipInboundTrunkResponse> {
        if req.sip_trunk_id.is_empty() {
            return Err(TwirpError::invalid_argument("trunk ID is required"));
        }
        let trunk = self
            .inbound(&req.sip_trunk_id)
            .ok_or_else(|| TwirpError::not_found(TRUNK_NOT_FOUND))?;
        let effect = Effect::read(Some(req.sip_trunk_id));
        Ok((
            proto::GetSipInboundTrunkResponse { trunk: Some(trunk) },
            effect,
        ))
    }

    fn update_inbound(
        &mut self,
        req: proto::UpdateSipInboundTrunkRequest,
    ) -> Outcome<proto::SipInboundTrunkInfo> {
        use proto::update_sip_inbound_trunk_request::Action;
        let id = req.sip_trunk_id;
        if id.is_empty() {
            return Err(TwirpError::invalid_argument("trunk id must be set"));
        }
        let action = req
            .action
            .ok_or_else(|| TwirpError::invalid_argument("missing or unsupported update action"))?;
        match &action {
            Action::Replace(info) => {
                check_embedded_id(&info.sip_trunk_id, &id, "trunk")?;
                rules::inbound_trunk(info)?;
            }
            Action::Update(diff) => validate_inbound_diff(diff)?,
        }
        // A legacy trunk is read as inbound and the result stored as an inbound trunk, the
        // legacy record staying (as the OSS server's `LoadSIPInboundTrunk` + `Store…`).
        let current = self
            .inbound(&id)
            .ok_or_else(|| TwirpError::not_found(TRUNK_NOT_FOUND))?;
        let updated = match action {
            Action::Replace(info) => proto::SipInboundTrunkInfo {
                sip_trunk_id: id.clone(),
                ..info
            },
            Action::Update(diff) => apply_inbound_diff(current, &diff),
        };
        rules::inbound_trunk(&updated)?;
        self.check_inbound_conflicts(&updated)?;
        self.inbound_trunks.0.insert(id.clone(), updated.clone());
        Ok((updated, Effect::wrote(id)))
    }

    fn create_outbound(
        &mut self,
        req: proto::CreateSipOutboundTrunkRequest,
    ) -> Outcome<proto::SipOutboundTrunkInfo> {
        let mut trunk = req
            .trunk
            .ok_or_else(|| TwirpError::invalid_argument("missing trunk"))?;
        if !trunk.sip_trunk_id.is_empty() {
            return Err(TwirpError::invalid_argument("trunk id must not be set"));
        }
        rules::outbound_trunk(&trunk)?;
        trunk.sip_trunk_id = self.fresh_trunk_id();
        let id = trunk.sip_trunk_id.clone();
        self.outbound_trunks.0.insert(id.clone(), trunk.clone());
        Ok((trunk, Effect::wrote(id)))
    }

    fn list_outbound(
        &mut self,
        req: proto::ListSipOutboundTrunkRequest,
    ) -> Outcome<proto::ListSipOutboundTrunkResponse> {
        let all = self.all_outbound();
        let matching = all
            .iter()
            .filter(|t| req.trunk_ids.is_empty() || req.trunk_ids.contains(&t.sip_trunk_id))
            .filter(|t| {
                req.numbers.is_empty()
                    || t.numbers.is_empty()
                    || t.numbers.iter().any(|n| req.numbers.contains(n))
            });
        let items = self.page(matching, req.page.as_ref(), |t| &t.sip_trunk_id);
        Ok((
            proto::ListSipOutboundTrunkResponse { items },
            Effect::read(None),
        ))
    }

    fn get_outbound(
        &mut self,
        req: proto::GetSipOutboundTrunkRequest,
    ) -> Outcome<proto::GetSipOutboundTrunkResponse> {
        if req.sip_trunk_id.is_empty() {
            return Err(TwirpError::invalid_argument("trunk ID is required"));
        }
        let trunk = self
            .outbound(&req.sip_trunk_id)
            .ok_or_else(|| TwirpError::not_found(TRUNK_NOT_FOUND))?;
        let effect = Effect::read(Some(req.sip_trunk_id));
        Ok((
            proto::GetSipOutboundTrunkResponse { trunk: Some(trunk) },
            effect,
        ))
    }

    fn update_outbound(
        &mut self,
        req: proto::UpdateSipOutboundTrunkRequest,
    ) -> Outcome<proto::SipOutboundTrunkInfo> {
        use proto::update_sip_outbound_trunk_request::Action;
        let id = req.sip_trunk_id;
        if id.is_empty() {
            return Err(TwirpError::invalid_argument("trunk id must be set"));
        }
        let action = req
            .action
            .ok_or_else(|| TwirpError::invalid_argument("missing or unsupported update action"))?;
        match &action {
            Action::Replace(info) => {
                check_embedded_id(&info.sip_trunk_id, &id, "trunk")?;
                rules::outbound_trunk(info)?;
            }
            Action::Update(diff) => {
                rules::list_update(diff.numbers.as_ref())?;
                rules::media(diff.media.as_ref())?;
            }
        }
        let current = self
            .outbound(&id)
            .ok_or_else(|| TwirpError::not_found(TRUNK_NOT_FOUND))?;
        let updated = match action {
            Action::Replace(info) => proto::SipOutboundTrunkInfo {
                sip_trunk_id: id.clone(),
                ..info
            },
            Action::Update(diff) => apply_outbound_diff(current, &diff),
        };
        rules::outbound_trunk(&updated)?;
        self.outbound_trunks.0.insert(id.clone(), updated.clone());
        Ok((updated, Effect::wrote(id)))
    }

    fn delete_trunk(&mut self, req: proto::DeleteSipTrunkRequest) -> Outcome<proto::SipTrunkInfo> {
        let id = req.sip_trunk_id;
        if id.is_empty() {
            return Err(TwirpError::invalid_argument("trunk ID is required"));
        }
        let removed = self.inbound_trunks.0.remove(&id).is_some()
            | self.outbound_trunks.0.remove(&id).is_some()
            | self.legacy_trunks.0.remove(&id).is_some();
        let info = proto::SipTrunkInfo {
            sip_trunk_id: id.clone(),
            ..Default::default()
        };
        let effect = Effect {
            resource_id: Some(id),
            write: removed,
        };
        Ok((info, effect))
    }

    fn list_legacy(
        &mut self,
        _req: proto::ListSipTrunkRequest,
    ) -> Outcome<proto::ListSipTrunkResponse> {
        let inbound = self.inbound_trunks.0.values().map(legacy_inbound);
        let outbound = self.outbound_trunks.0.values().map(legacy_outbound);
        let legacy = self.legacy_trunks.0.values().cloned();
        let mut items: Vec<proto::SipTrunkInfo> = inbound.chain(outbound).chain(legacy).collect();
        items.sort_by(|a, b| a.sip_trunk_id.cmp(&b.sip_trunk_id));
        Ok((proto::ListSipTrunkResponse { items }, Effect::read(None)))
    }

    fn create_rule(
        &mut self,
        req: proto::CreateSipDispatchRuleRequest,
    ) -> Outcome<proto::SipDispatchRuleInfo> {
        let mut rule = match req.dispatch_rule {
            Some(info) => {
                if !info.sip_dispatch_rule_id.is_empty() {
                    return Err(TwirpError::invalid_argument("rule id must not be set"));
                }
                info
            }
            None => rule_from_deprecated_fields(req),
        };
        rules::dispatch_rule(&rule)?;
        self.check_rule_conflicts(&rule)?;
        rule.sip_dispatch_rule_id = self.fresh_rule_id();
        let id = rule.sip_dispatch_rule_id.clone();
        self.dispatch_rules.0.insert(id.clone(), rule.clone());
        Ok((rule, Effect::wrote(id)))
    }

    fn list_rules(
        &mut self,
        req: proto::ListSipDispatchRuleRequest,
    ) -> Outcome<proto::ListSipDispatchRuleResponse> {
        let matching = self
            .dispatch_rules
            .0
            .values()
            .filter(|r| {
                req.dispatch_rule_ids.is_empty()
                    || req.dispatch_rule_ids.contains(&r.sip_dispatch_rule_id)
            })
            .filter(|r| {
                req.trunk_ids.is_empty()
                    || r.trunk_ids.is_empty()
                    || r.trunk_ids.iter().any(|t| req.trunk_ids.contains(t))
            });
        let items = self.page(matching, req.page.as_ref(), |r| &r.sip_dispatch_rule_id);
        Ok((
            proto::ListSipDispatchRuleResponse { items },
            Effect::read(None),
        ))
    }

    fn update_rule(
        &mut self,
        req: proto::UpdateSipDispatchRuleRequest,
    ) -> Outcome<proto::SipDispatchRuleInfo> {
        use proto::update_sip_dispatch_rule_request::Action;
        let id = req.sip_dispatch_rule_id;
        if id.is_empty() {
            return Err(TwirpError::invalid_argument("rule id must be set"));
        }
        let action = req
            .action
            .ok_or_else(|| TwirpError::invalid_argument("missing or unsupported update action"))?;
        match &action {
            Action::Replace(info) => {
                check_embedded_id(&info.sip_dispatch_rule_id, &id, "rule")?;
                rules::dispatch_rule(info)?;
            }
            Action::Update(diff) => {
                rules::list_update(diff.trunk_ids.as_ref())?;
                rules::media(diff.media.as_ref())?;
            }
        }
        let current = self
            .dispatch_rules
            .0
            .get(&id)
            .ok_or_else(|| TwirpError::not_found(RULE_NOT_FOUND))?;
        let updated = match action {
            Action::Replace(info) => proto::SipDispatchRuleInfo {
                sip_dispatch_rule_id: id.clone(),
                ..info
            },
            Action::Update(diff) => apply_rule_diff(current.clone(), &diff),
        };
        rules::dispatch_rule(&updated)?;
        self.check_rule_conflicts(&updated)?;
        self.dispatch_rules.0.insert(id.clone(), updated.clone());
        Ok((updated, Effect::wrote(id)))
    }

    fn delete_rule(
        &mut self,
        req: proto::DeleteSipDispatchRuleRequest,
    ) -> Outcome<proto::SipDispatchRuleInfo> {
        let id = req.sip_dispatch_rule_id;
        if id.is_empty() {
            return Err(TwirpError::invalid_argument("dispatch rule ID is required"));
        }
        let rule = self
            .dispatch_rules
            .0
            .remove(&id)
            .ok_or_else(|| TwirpError::not_found(RULE_NOT_FOUND))?;
        self.forget_rule(&id);
        Ok((rule, Effect::wrote(id)))
    }
}

/// The Twirp service of SIP trunks, dispatch rules and participants.
pub const SIP_SERVICE: &str = "livekit.SIP";
/// The Twirp service of LiveKit's own numbers ([`numbers`]).
pub const PHONE_NUMBER_SERVICE: &str = "livekit.PhoneNumberService";

/// Every method name of `livekit.SIP`; others are `bad_route`.
const KNOWN_METHODS: &[&str] = &[
    "ListSIPTrunk",
    "CreateSIPInboundTrunk",
    "CreateSIPOutboundTrunk",
    "UpdateSIPInboundTrunk",
    "UpdateSIPOutboundTrunk",
    "GetSIPInboundTrunk",
    "GetSIPOutboundTrunk",
    "ListSIPInboundTrunk",
    "ListSIPOutboundTrunk",
    "DeleteSIPTrunk",
    "CreateSIPDispatchRule",
    "UpdateSIPDispatchRule",
    "ListSIPDispatchRule",
    "DeleteSIPDispatchRule",
    "CreateSIPParticipant",
    "TransferSIPParticipant",
    "CreateSIPTrunk",
];

/// One decoded call: its encoding, body and the grants its token carried.
struct Call<'a> {
    encoding: Encoding,
    body: &'a [u8],
    grants: Option<SipGrants>,
}

impl Call<'_> {
    /// Decodes the request, checks the `sip.admin` grant, runs `op`, encodes its answer.
    fn run<Req, Resp>(
        &self,
        method: &str,
        op: impl FnOnce(Req) -> Outcome<Resp>,
    ) -> Result<(Vec<u8>, Effect), TwirpError>
    where
        Req: Message + Default + DeserializeOwned,
        Resp: Message,
    {
        let req: Req = wire::decode(self.encoding, self.body)?;
        if !self.grants.is_some_and(|g| g.admin) {
            return Err(TwirpError::new("unauthenticated", "permissions denied"));
        }
        let (resp, effect) = op(req)?;
        Ok((wire::encode(self.encoding, &resp, method)?, effect))
    }
}

fn check_embedded_id(embedded: &str, id: &str, what: &str) -> Result<(), TwirpError> {
    if embedded.is_empty() || embedded == id {
        Ok(())
    } else {
        Err(TwirpError::invalid_argument(format!(
            "{what} id in the info must be empty or match the id in the update"
        )))
    }
}

fn validate_inbound_diff(diff: &proto::SipInboundTrunkUpdate) -> Result<(), TwirpError> {
    rules::list_update(diff.numbers.as_ref())?;
    rules::list_update(diff.allowed_addresses.as_ref())?;
    rules::list_update(diff.allowed_numbers.as_ref())?;
    rules::media(diff.media.as_ref())
}

#[allow(deprecated)]
fn apply_inbound_diff(
    mut t: proto::SipInboundTrunkInfo,
    d: &proto::SipInboundTrunkUpdate,
) -> proto::SipInboundTrunkInfo {
    rules::apply_list_update(&mut t.numbers, d.numbers.as_ref());
    rules::apply_list_update(&mut t.allowed_addresses, d.allowed_addresses.as_ref());
    rules::apply_list_update(&mut t.allowed_numbers, d.allowed_numbers.as_ref());
    set_if_some(&mut t.auth_username, &d.auth_username);
    set_if_some(&mut t.auth_password, &d.auth_password);
    set_if_some(&mut t.auth_realm, &d.auth_realm);
    set_if_some(&mut t.name, &d.name);
    set_if_some(&mut t.metadata, &d.metadata);
    rules::update_media(
        &mut t.media,
        &mut t.media_encryption,
        d.media.as_ref(),
        d.media_encryption,
    );
    t
}

#[allow(deprecated)]
fn apply_outbound_diff(
    mut t: proto::SipOutboundTrunkInfo,
    d: &proto::SipOutboundTrunkUpdate,
) -> proto::SipOutboundTrunkInfo {
    set_if_some(&mut t.address, &d.address);
    if let Some(transport) = d.transport {
        t.transport = transport;
    }
    set_if_some(&mut t.destination_country, &d.destination_country);
    rules::apply_list_update(&mut t.numbers, d.numbers.as_ref());
    set_if_some(&mut t.auth_username, &d.auth_username);
    set_if_some(&mut t.auth_password, &d.auth_password);
    set_if_some(&mut t.name, &d.name);
    set_if_some(&mut t.metadata, &d.metadata);
    set_if_some(&mut t.from_host, &d.from_host);
    rules::update_media(
        &mut t.media,
        &mut t.media_encryption,
        d.media.as_ref(),
        d.media_encryption,
    );
    t
}

#[allow(deprecated)]
fn apply_rule_diff(
    mut r: proto::SipDispatchRuleInfo,
    d: &proto::SipDispatchRuleUpdate,
) -> proto::SipDispatchRuleInfo {
    rules::apply_list_update(&mut r.trunk_ids, d.trunk_ids.as_ref());
    if let Some(rule) = &d.rule {
        r.rule = Some(rule.clone());
    }
    set_if_some(&mut r.name, &d.name);
    set_if_some(&mut r.metadata, &d.metadata);
    rules::apply_map_diff(&mut r.attributes, &d.attributes);
    rules::update_media(
        &mut r.media,
        &mut r.media_encryption,
        d.media.as_ref(),
        d.media_encryption,
    );
    r
}

fn set_if_some(field: &mut String, value: &Option<String>) {
    if let Some(v) = value {
        field.clone_from(v);
    }
}

/// The deprecated create path: top-level fields copied into an Info, `room_config` included,
/// as the current server does (livekit/protocol `CreateSIPDispatchRuleRequest.DispatchRuleInfo`,
/// kept since livekit/livekit 30669722c, 2025-01-26). The runbooks' "calls connect, the agent
/// never joins" came from older servers that dropped it; cwa still writes through the
/// `dispatch_rule` wrapper and refuses rules that name no agent.
#[allow(deprecated)]
fn rule_from_deprecated_fields(
    req: proto::CreateSipDispatchRuleRequest,
) -> proto::SipDispatchRuleInfo {
    proto::SipDispatchRuleInfo {
        rule: req.rule,
        trunk_ids: req.trunk_ids,
        inbound_numbers: req.inbound_numbers,
        hide_phone_number: req.hide_phone_number,
        name: req.name,
        metadata: req.metadata,
        attributes: req.attributes,
        room_preset: req.room_preset,
        room_config: req.room_config,
        ..Default::default()
    }
}

/// A legacy trunk's one number as a list (none when unset).
fn legacy_numbers(p: &proto::SipTrunkInfo) -> Vec<String> {
    p.outbound_number
        .is_empty()
        .then(Vec::new)
        .unwrap_or_else(|| vec![p.outbound_number.clone()])
}

/// livekit/protocol `SIPTrunkInfo.AsInbound`: `None` for an outbound-only legacy trunk.
#[allow(deprecated)]
fn as_inbound(p: &proto::SipTrunkInfo) -> Option<proto::SipInboundTrunkInfo> {
    if p.kind == proto::sip_trunk_info::TrunkKind::TrunkOutbound as i32 {
        return None;
    }
    Some(proto::SipInboundTrunkInfo {
        sip_trunk_id: p.sip_trunk_id.clone(),
        name: p.name.clone(),
        metadata: p.metadata.clone(),
        numbers: legacy_numbers(p),
        allowed_addresses: p.inbound_addresses.clone(),
        allowed_numbers: p.inbound_numbers.clone(),
        auth_username: p.inbound_username.clone(),
        auth_password: p.inbound_password.clone(),
        ..Default::default()
    })
}

/// livekit/protocol `SIPTrunkInfo.AsOutbound`: `None` for an inbound-only legacy trunk.
#[allow(deprecated)]
fn as_outbound(p: &proto::SipTrunkInfo) -> Option<proto::SipOutboundTrunkInfo> {
    if p.kind == proto::sip_trunk_info::TrunkKind::TrunkInbound as i32 {
        return None;
    }
    Some(proto::SipOutboundTrunkInfo {
        sip_trunk_id: p.sip_trunk_id.clone(),
        name: p.name.clone(),
        metadata: p.metadata.clone(),
        address: p.outbound_address.clone(),
        transport: p.transport,
        numbers: legacy_numbers(p),
        auth_username: p.outbound_username.clone(),
        auth_password: p.outbound_password.clone(),
        ..Default::default()
    })
}

fn legacy_inbound(t: &proto::SipInboundTrunkInfo) -> proto::SipTrunkInfo {
    proto::SipTrunkInfo {
        sip_trunk_id: t.sip_trunk_id.clone(),
        kind: proto::sip_trunk_info::TrunkKind::TrunkInbound as i32,
        name: t.name.clone(),
        metadata: t.metadata.clone(),
        outbound_number: t.numbers.first().cloned().unwrap_or_default(),
        inbound_addresses: t.allowed_addresses.clone(),
        inbound_numbers: t.allowed_numbers.clone(),
        inbound_username: t.auth_username.clone(),
        inbound_password: t.auth_password.clone(),
        ..Default::default()
    }
}

fn legacy_outbound(t: &proto::SipOutboundTrunkInfo) -> proto::SipTrunkInfo {
    proto::SipTrunkInfo {
        sip_trunk_id: t.sip_trunk_id.clone(),
        kind: proto::sip_trunk_info::TrunkKind::TrunkOutbound as i32,
        name: t.name.clone(),
        metadata: t.metadata.clone(),
        outbound_address: t.address.clone(),
        transport: t.transport,
        outbound_number: t.numbers.first().cloned().unwrap_or_default(),
        outbound_username: t.auth_username.clone(),
        outbound_password: t.auth_password.clone(),
        ..Default::default()
    }
}
