//! The LiveKit SIP client: inbound trunks, outbound trunks and dispatch rules.
//!
//! Creates, updates, lists and deletes go through the official
//! `livekit_api::services::sip::SIPClient`, which signs a fresh token with only the SIP admin
//! grant for every request. Its region failover is switched off: it replays a request on a
//! 5xx, which for a create could make a second trunk; cwa's own retry loop below retries
//! only idempotent calls and looks a lost create up first ([`super::post_once`]).
//!
//! A thin Twirp call of cwa's own (prost body, a 10-minute JWT with only `sip.admin`), through
//! the shared HTTP layer, covers what the crate lacks:
//! - `GetSIPInboundTrunk` / `GetSIPOutboundTrunk`: the crate has no Get wrappers, and `read`
//!   must be exact and cheap;
//! - filtered lists (`ListSIPDispatchRule` by id or trunk, `ListSIPInboundTrunk` by number):
//!   the crate always sends an empty filter;
//! - `CreateSIPOutboundTrunk`: the crate's wrapper drops `destination_country` (and
//!   `media`, `from_host`, `include_headers`).
//!
//! Dispatch rules are always written through the `dispatch_rule` wrapper with
//! `room_config.agents` set (older servers dropped the agents on the deprecated top-level
//! fields). Trunks and rules are changed in place, never deleted and created again:
//! - with the `update` action (optional scalars, `ListUpdate` lists) when it covers every
//!   changed field, so LiveKit leaves everything else alone;
//! - otherwise (inbound `krisp_enabled`, outbound `headers`, a rule's agents,
//!   `hide_phone_number` and `krisp_enabled`) with a replace in the Twirp JSON form: the
//!   object as LiveKit answered it, cwa's fields set and every other key passed through
//!   untouched, so fields the pinned `livekit-protocol` does not know are never wiped
//!   (LiveKit stores exactly what a replace carries: livekit/livekit `pkg/service/sip.go`).
//!
//! Lists are paged with `page {after_id, limit}` ([`PAGE_LIMIT`]; an assumption about LiveKit
//! Cloud, see [`LivekitProvider::list_paged`]). Trunks made with the deprecated
//! `CreateSIPTrunk` list as inbound and outbound under one id; cwa marks them and never
//! writes to them.
//!
//! The wire mapping (Twirp errors, the protobuf and JSON shapes, normalization into specs)
//! lives in [`wire`].
//!
//! LiveKit's own numbers (`livekit.PhoneNumberService`: search, purchase, list, attach,
//! release) are [`numbers`], on the same Twirp path and token.

pub mod numbers;
mod wire;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use livekit_api::access_token::{AccessToken, SIPGrants};
use livekit_api::services::sip::{
    CreateSIPDispatchRuleOptions, CreateSIPInboundTrunkOptions, SIPClient,
};
use livekit_api::services::ServiceError;
use livekit_protocol as proto;
use prost::Message;
use reqwest::{Method, Url};
use serde_json::{json, Value};

use super::common::{from_json, gone_is_done, live_ids, not_mine, Pages};
use super::http::{self, Auth, Body, Call, Gate, HttpClient, Retry, WriteGuard};
use super::{post_once, ClientOptions, Env, Provider, ProviderError, WriteRequest};
use crate::model::canonical;
use crate::model::{
    DispatchRuleSpec, InboundTrunkSpec, Kind, LiveObject, OutboundTrunkSpec, ProviderName,
    SecretValue, Spec,
};
use wire::{
    decode_twirp_error, gone, inbound_wire, normalize_all, number_strings, outbound_wire,
    rule_wire, service_error, strip_sip, wire_str, Wire,
};
pub use wire::{
    inbound_info, inbound_object, inbound_update, outbound_info, outbound_object, outbound_update,
    rule_info, rule_object, rule_update, transport_name, transport_value, twirp_status,
};

const P: ProviderName = ProviderName::Livekit;
const URL_ENV: &str = "LIVEKIT_URL";
const API_KEY_ENV: &str = "LIVEKIT_API_KEY";
const API_SECRET_ENV: &str = "LIVEKIT_API_SECRET";
/// The settings and credentials a LiveKit client cannot start without.
pub const REQUIRED_ENV: &[&str] = &[URL_ENV, API_KEY_ENV, API_SECRET_ENV];
/// Items per list page cwa asks for ([`LivekitProvider::list_paged`]).
pub const PAGE_LIMIT: i32 = 500;
/// The `extra` key marking a trunk made with the deprecated `CreateSIPTrunk`.
pub const LEGACY_TRUNK: &str = "legacy_trunk";
/// Lifetime of the tokens cwa mints for its own Twirp calls.
const TOKEN_TTL: Duration = Duration::from_secs(600);

/// The LiveKit provider. Debug shows the API key, never the secret.
pub struct LivekitProvider {
    /// The official client with a token minted for it; replaced before the token is half
    /// through its life, so every call carries a short-lived token.
    sip: std::sync::Mutex<(std::time::Instant, Arc<SIPClient>)>,
    api_secret: SecretValue,
    timeout: Duration,
    twirp: HttpClient,
    base: Url,
    api_key: String,
}

impl fmt::Debug for LivekitProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LivekitProvider")
            .field("base", &self.base.as_str())
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

/// `wss://` and `ws://` project URLs name the same host as `https://` and `http://`.
pub fn http_url(raw: &str) -> String {
    if let Some(rest) = raw.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = raw.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        raw.to_string()
    }
}

/// A JWT with only the SIP admin grant, valid for ten minutes.
fn mint(api_key: &str, api_secret: &SecretValue) -> Result<String, ProviderError> {
    AccessToken::with_api_key(api_key, api_secret.expose())
        .with_ttl(TOKEN_TTL)
        .with_sip_grants(SIPGrants {
            admin: true,
            call: false,
        })
        .to_jwt()
        .map_err(|e| ProviderError::Config {
            provider: P,
            detail: format!("cannot sign a LiveKit token: {e}"),
        })
}

/// The official SIP client with a token of cwa's own: ten minutes, only `sip.admin`. (The
/// crate's `with_api_key` also signs only the SIP admin grant, but for six hours.) Region
/// failover is off: it would replay creates.
fn sip_client(
    base: &Url,
    api_key: &str,
    api_secret: &SecretValue,
    timeout: Duration,
) -> Result<SIPClient, ProviderError> {
    let token = mint(api_key, api_secret)?;
    Ok(SIPClient::with_token(base.as_str(), &token)
        .with_failover(false)
        .with_request_timeout(timeout))
}

/// What an SDK call's outcome tells the pacing: a 429 (`resource_exhausted`), or an answer.
fn sdk_seen<T>(answer: &Result<T, ProviderError>) -> http::Seen<'static> {
    match answer {
        Err(ProviderError::Api { status: 429, .. }) => http::Seen::Refused,
        Err(ProviderError::Transport { .. }) => http::Seen::Lost,
        _ => http::Seen::Answered,
    }
}

/// Whether a failed SDK call may be sent again, by the one rule of [`Retry::allows`].
fn retryable(e: &ProviderError, retry: Retry) -> bool {
    match e {
        ProviderError::Api { status, .. } => {
            reqwest::StatusCode::from_u16(*status).is_ok_and(|s| retry.allows(P, Some(s)))
        }
        ProviderError::Transport { .. } | ProviderError::Decode { .. } => retry.allows(P, None),
        _ => false,
    }
}

impl LivekitProvider {
    /// Reads `LIVEKIT_URL` (required; `wss://` becomes `https://`; plain http only on
    /// loopback), `LIVEKIT_API_KEY` and `LIVEKIT_API_SECRET`.
    pub fn from_env(env: &Env, opts: &ClientOptions) -> Result<Self, ProviderError> {
        let raw_url = env.require(P, URL_ENV)?;
        let api_key = env.require(P, API_KEY_ENV)?.to_string();
        let api_secret = SecretValue::new(env.require(P, API_SECRET_ENV)?);
        let base = http::check_base_url(P, &http_url(raw_url))?;
        let sip = sip_client(&base, &api_key, &api_secret, opts.timeout)?;
        let (key, secret) = (api_key.clone(), api_secret.clone());
        let auth = Auth::Minted(Arc::new(move || mint(&key, &secret)));
        let guard = Arc::new(WriteGuard::from_options(opts));
        let twirp = HttpClient::new(P, opts, auth, guard, decode_twirp_error)?;
        Ok(Self {
            sip: std::sync::Mutex::new((std::time::Instant::now(), Arc::new(sip))),
            api_secret,
            timeout: opts.timeout,
            twirp,
            base,
            api_key,
        })
    }

    /// The official client, rebuilt with a fresh token once the current one is half spent.
    fn sip(&self) -> Result<Arc<SIPClient>, ProviderError> {
        let mut current = self.sip.lock().unwrap_or_else(|e| e.into_inner());
        if current.0.elapsed() >= TOKEN_TTL / 2 {
            let fresh = sip_client(&self.base, &self.api_key, &self.api_secret, self.timeout)?;
            *current = (std::time::Instant::now(), Arc::new(fresh));
        }
        Ok(current.1.clone())
    }

    fn gate(&self) -> &Arc<Gate> {
        self.twirp.gate()
    }

    fn guard(&self) -> &WriteGuard {
        self.twirp.guard()
    }

    /// One call of the official client, under the gate, retried as `retry` allows through the
    /// shared retry path ([`http::retrying`]), never a loop of its own.
    async fn sdk<T, F, Fut>(
        &self,
        operation: &str,
        object: &str,
        retry: Retry,
        call: F,
    ) -> Result<T, ProviderError>
    where
        F: Fn(Arc<SIPClient>) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>>,
    {
        let call = &call;
        http::retrying(
            &self.twirp.backoff(),
            operation,
            || async move {
                let sip = self.sip()?;
                let _permit = self.gate().enter().await;
                let answer = call(sip)
                    .await
                    .map_err(|e| service_error(e, operation, object));
                self.gate().observe(sdk_seen(&answer), None);
                answer
            },
            |err| {
                if retryable(err, retry) {
                    http::Again::After(None)
                } else {
                    http::Again::Never
                }
            },
        )
        .await
    }

    /// cwa's own Twirp call (protobuf) to `livekit.SIP`, for what the crate lacks.
    async fn twirp<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        req: &Req,
        object: &str,
        write: Option<&str>,
    ) -> Result<Resp, ProviderError> {
        let creates = method.starts_with("Create");
        self.twirp_call("livekit.SIP", method, req, object, write, creates)
            .await
    }

    /// One Twirp call (protobuf) to `service`. `write` names the object a write addresses
    /// (checked against the protected ids by the write guard); a call that `creates` is never
    /// repeated by the retry loop (its recovery is the caller's look-up of what it made).
    pub(super) async fn twirp_call<Req: Message, Resp: Message + Default>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
        object: &str,
        write: Option<&str>,
        creates: bool,
    ) -> Result<Resp, ProviderError> {
        let url = http::join(&self.base, &format!("/twirp/{service}/{method}"));
        let mut call = Call::write(
            Method::POST,
            url,
            Body::Protobuf(req.encode_to_vec()),
            method,
            object,
        );
        call.write = write.is_some();
        call.retry = if creates {
            Retry::RejectedOnly
        } else {
            Retry::Idempotent
        };
        if let Some(id) = write.filter(|id| !id.is_empty()) {
            call = call.target(id);
        }
        self.twirp
            .decoded(call, |body| Resp::decode(body).map_err(|e| e.to_string()))
            .await
    }

    async fn get_inbound(
        &self,
        id: &str,
    ) -> Result<Option<proto::SipInboundTrunkInfo>, ProviderError> {
        let req = proto::GetSipInboundTrunkRequest {
            sip_trunk_id: id.to_string(),
        };
        match self
            .twirp::<_, proto::GetSipInboundTrunkResponse>("GetSIPInboundTrunk", &req, id, None)
            .await
        {
            Ok(r) => Ok(r.trunk),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_outbound(
        &self,
        id: &str,
    ) -> Result<Option<proto::SipOutboundTrunkInfo>, ProviderError> {
        let req = proto::GetSipOutboundTrunkRequest {
            sip_trunk_id: id.to_string(),
        };
        match self
            .twirp::<_, proto::GetSipOutboundTrunkResponse>("GetSIPOutboundTrunk", &req, id, None)
            .await
        {
            Ok(r) => Ok(r.trunk),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_rules(
        &self,
        ids: Vec<String>,
        trunk_ids: Vec<String>,
        object: &str,
    ) -> Result<Vec<proto::SipDispatchRuleInfo>, ProviderError> {
        let req = proto::ListSipDispatchRuleRequest {
            page: None,
            dispatch_rule_ids: ids,
            trunk_ids,
        };
        let resp: proto::ListSipDispatchRuleResponse = self
            .twirp("ListSIPDispatchRule", &req, object, None)
            .await?;
        Ok(resp.items)
    }

    async fn get_rule(
        &self,
        id: &str,
    ) -> Result<Option<proto::SipDispatchRuleInfo>, ProviderError> {
        let rules = self
            .list_rules(vec![id.to_string()], Vec::new(), id)
            .await?;
        Ok(rules.into_iter().find(|r| r.sip_dispatch_rule_id == id))
    }

    /// Every item of a list, page by page with `page {after_id, limit}`. The open-source
    /// server ignores `limit` and drains every page into one answer; whether LiveKit Cloud
    /// caps large answers is not documented (Twirp caps a message at 4 MB), so cwa asks for
    /// [`PAGE_LIMIT`] items at a time (an assumption: Cloud honours a limit this size). An
    /// answer of exactly `limit` items may have more after it; fewer is the end, and more
    /// means the server drained every page.
    async fn list_paged<Req, Resp, T>(
        &self,
        method: &str,
        object: &str,
        request: impl Fn(proto::Pagination) -> Req,
        items: impl Fn(Resp) -> Vec<T>,
        id: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, ProviderError>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let mut out = Vec::new();
        let mut after = String::new();
        let mut pages = Pages::new(ProviderName::Livekit, format!("list {object}"));
        loop {
            pages.read(&after)?;
            let page = proto::Pagination {
                after_id: after.clone(),
                limit: PAGE_LIMIT,
            };
            let resp: Resp = self.twirp(method, &request(page), object, None).await?;
            let got = items(resp);
            let full = got.len() == PAGE_LIMIT as usize;
            match got.last().map(&id) {
                Some(last) if full && last > after => after = last,
                _ => {
                    out.extend(got);
                    return Ok(out);
                }
            }
            out.extend(got);
        }
    }

    async fn list_inbound(&self) -> Result<Vec<proto::SipInboundTrunkInfo>, ProviderError> {
        self.list_paged(
            "ListSIPInboundTrunk",
            "inbound trunks",
            |page| proto::ListSipInboundTrunkRequest {
                page: Some(page),
                ..Default::default()
            },
            |r: proto::ListSipInboundTrunkResponse| r.items,
            |t| t.sip_trunk_id.clone(),
        )
        .await
    }

    async fn list_outbound(&self) -> Result<Vec<proto::SipOutboundTrunkInfo>, ProviderError> {
        self.list_paged(
            "ListSIPOutboundTrunk",
            "outbound trunks",
            |page| proto::ListSipOutboundTrunkRequest {
                page: Some(page),
                ..Default::default()
            },
            |r: proto::ListSipOutboundTrunkResponse| r.items,
            |t| t.sip_trunk_id.clone(),
        )
        .await
    }

    async fn list_all_rules(&self) -> Result<Vec<proto::SipDispatchRuleInfo>, ProviderError> {
        self.list_paged(
            "ListSIPDispatchRule",
            "dispatch rules",
            |page| proto::ListSipDispatchRuleRequest {
                page: Some(page),
                ..Default::default()
            },
            |r: proto::ListSipDispatchRuleResponse| r.items,
            |r| r.sip_dispatch_rule_id.clone(),
        )
        .await
    }

    /// Inbound trunks, outbound trunks and rules, listed at once. A trunk made with the
    /// deprecated `CreateSIPTrunk` lists as inbound *and* outbound under one id: both sides
    /// say so in `extra` (`legacy_trunk`), and cwa refuses to change or delete either
    /// ([`Self::refuse_legacy`]).
    async fn refresh_all(&self) -> Result<Vec<LiveObject>, ProviderError> {
        let (inbound, outbound, rules) = futures::try_join!(
            self.list_inbound(),
            self.list_outbound(),
            self.list_all_rules(),
        )?;
        let inbound_ids: std::collections::BTreeSet<&str> =
            inbound.iter().map(|t| t.sip_trunk_id.as_str()).collect();
        let legacy: std::collections::BTreeSet<String> = outbound
            .iter()
            .map(|t| t.sip_trunk_id.as_str())
            .filter(|id| inbound_ids.contains(id))
            .map(str::to_string)
            .collect();
        let mark = |mut o: LiveObject| {
            if legacy.contains(&o.id) {
                o.extra.insert(LEGACY_TRUNK.to_string(), "true".to_string());
            }
            o
        };
        let mut out = Vec::with_capacity(inbound.len() + outbound.len() + rules.len());
        out.extend(inbound.iter().map(inbound_object).map(&mark));
        out.extend(outbound.iter().map(outbound_object).map(&mark));
        out.extend(rules.iter().map(rule_object));
        Ok(out)
    }

    /// Refuses a write to a trunk made with the deprecated `CreateSIPTrunk`: it is inbound
    /// and outbound at once, `DeleteSIPTrunk` removes both sides, and an update stores a
    /// second, inbound-only copy next to it (livekit/livekit `pkg/service/sip.go`,
    /// `redisstore_sip.go`).
    async fn refuse_legacy(&self, id: &str, object: &str) -> Result<(), ProviderError> {
        let (inbound, outbound) = futures::try_join!(self.get_inbound(id), self.get_outbound(id))?;
        if inbound.is_some() && outbound.is_some() {
            return Err(ProviderError::Unsupported {
                provider: P,
                operation: "write".into(),
                object: object.to_string(),
                detail: format!("{id} was made with the deprecated CreateSIPTrunk and is an inbound and an outbound trunk at once; changing or deleting one side changes the other. Create separate inbound and outbound trunks, move the lines to them, then delete {id} by hand"),
            });
        }
        Ok(())
    }

    async fn create_inbound(
        &self,
        req: &WriteRequest,
        spec: &InboundTrunkSpec,
    ) -> Result<LiveObject, ProviderError> {
        let object = req.object.as_str();
        let info = &inbound_info(spec, None, object)?;
        let made = post_once(
            self.twirp.backoff(),
            || {
                self.sdk(
                    "CreateSIPInboundTrunk",
                    object,
                    Retry::RejectedOnly,
                    |sip: Arc<SIPClient>| async move {
                        sip.create_sip_inbound_trunk(
                            info.name.clone(),
                            info.numbers.clone(),
                            CreateSIPInboundTrunkOptions {
                                metadata: Some(info.metadata.clone()),
                                allowed_addresses: Some(info.allowed_addresses.clone()),
                                allowed_numbers: Some(info.allowed_numbers.clone()),
                                auth_username: Some(info.auth_username.clone()),
                                auth_password: Some(info.auth_password.clone()),
                                krisp_enabled: Some(info.krisp_enabled),
                                ..Default::default()
                            },
                        )
                        .await
                    },
                )
            },
            || self.find_inbound(spec, object),
        )
        .await?;
        Ok(inbound_object(&made))
    }

    async fn find_inbound(
        &self,
        spec: &InboundTrunkSpec,
        object: &str,
    ) -> Result<Option<proto::SipInboundTrunkInfo>, ProviderError> {
        let numbers = number_strings(&spec.numbers, object)?;
        let req = proto::ListSipInboundTrunkRequest {
            page: None,
            trunk_ids: Vec::new(),
            numbers: numbers.clone(),
        };
        let resp: proto::ListSipInboundTrunkResponse = self
            .twirp("ListSIPInboundTrunk", &req, object, None)
            .await?;
        let want = canonical::set(numbers);
        Ok(resp
            .items
            .into_iter()
            .find(|t| t.name == spec.name && canonical::set(normalize_all(&t.numbers)) == want))
    }

    async fn create_outbound(
        &self,
        req: &WriteRequest,
        spec: &OutboundTrunkSpec,
    ) -> Result<LiveObject, ProviderError> {
        let object = req.object.as_str();
        let info = outbound_info(spec, None, object)?;
        let made = post_once(
            self.twirp.backoff(),
            || async {
                let r = proto::CreateSipOutboundTrunkRequest {
                    trunk: Some(info.clone()),
                };
                self.twirp::<_, proto::SipOutboundTrunkInfo>(
                    "CreateSIPOutboundTrunk",
                    &r,
                    object,
                    Some(""),
                )
                .await
            },
            || self.find_outbound(spec),
        )
        .await?;
        Ok(outbound_object(&made))
    }

    async fn find_outbound(
        &self,
        spec: &OutboundTrunkSpec,
    ) -> Result<Option<proto::SipOutboundTrunkInfo>, ProviderError> {
        let all = self.list_outbound().await?;
        Ok(all
            .into_iter()
            .find(|t| t.name == spec.name && strip_sip(&t.address) == strip_sip(&spec.address)))
    }

    async fn create_rule(
        &self,
        req: &WriteRequest,
        spec: &DispatchRuleSpec,
    ) -> Result<LiveObject, ProviderError> {
        let object = req.object.as_str();
        let info = &rule_info(spec, None, object)?;
        let rule = &info
            .rule
            .clone()
            .and_then(|r| r.rule)
            .expect("rule_info always sets the rule");
        let made = post_once(
            self.twirp.backoff(),
            || {
                self.sdk(
                    "CreateSIPDispatchRule",
                    object,
                    Retry::RejectedOnly,
                    |sip: Arc<SIPClient>| async move {
                        sip.create_sip_dispatch_rule(
                            rule.clone(),
                            CreateSIPDispatchRuleOptions {
                                name: info.name.clone(),
                                metadata: info.metadata.clone(),
                                trunk_ids: info.trunk_ids.clone(),
                                hide_phone_number: info.hide_phone_number,
                                room_config: info.room_config.clone(),
                                ..Default::default()
                            },
                        )
                        .await
                    },
                )
            },
            || self.find_rule(spec, object),
        )
        .await?;
        Ok(rule_object(&made))
    }

    async fn find_rule(
        &self,
        spec: &DispatchRuleSpec,
        object: &str,
    ) -> Result<Option<proto::SipDispatchRuleInfo>, ProviderError> {
        let trunks = live_ids(P, &spec.trunks, object)?;
        let want = canonical::set(trunks.clone());
        let rules = self.list_rules(Vec::new(), trunks, object).await?;
        Ok(rules
            .into_iter()
            .find(|r| r.name == spec.name && canonical::set(r.trunk_ids.clone()) == want))
    }

    /// cwa's own Twirp call in the JSON form, for objects that must travel whole: a replace
    /// carries every field LiveKit answered, the ones this build's protos lack included.
    async fn twirp_json(
        &self,
        method: &str,
        body: Value,
        object: &str,
        write: Option<&str>,
    ) -> Result<Value, ProviderError> {
        let url = http::join(&self.base, &format!("/twirp/livekit.SIP/{method}"));
        let mut call = Call::write(Method::POST, url, Body::Json(body), method, object);
        call.write = write.is_some();
        call.retry = Retry::Idempotent;
        if let Some(id) = write.filter(|id| !id.is_empty()) {
            call = call.target(id);
        }
        self.twirp
            .decoded(call, |body| {
                serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
            })
            .await
    }

    /// The trunk or rule as LiveKit answers it in JSON: the whole object, and the fields
    /// this build knows decoded from it.
    async fn get_wire<T: serde::de::DeserializeOwned>(
        &self,
        kind: Kind,
        id: &str,
        object: &str,
    ) -> Result<(Wire, T), ProviderError> {
        let (method, body) = match kind {
            Kind::LivekitInboundTrunk => ("GetSIPInboundTrunk", json!({"sip_trunk_id": id})),
            Kind::LivekitOutboundTrunk => ("GetSIPOutboundTrunk", json!({"sip_trunk_id": id})),
            _ => ("ListSIPDispatchRule", json!({"dispatch_rule_ids": [id]})),
        };
        let answer = match self.twirp_json(method, body, object, None).await {
            Err(e) if e.is_not_found() => return Err(gone(object, id)),
            other => other?,
        };
        let found = match kind {
            Kind::LivekitDispatchRule => answer
                .get("items")
                .and_then(Value::as_array)
                .and_then(|items| {
                    items.iter().find(|r| {
                        wire_str(r, "sip_dispatch_rule_id").is_some_and(|found| found == id)
                    })
                })
                .cloned(),
            _ => answer.get("trunk").cloned(),
        };
        let wire = found
            .and_then(|v| v.as_object().cloned())
            .ok_or_else(|| gone(object, id))?;
        let known = from_json(P, Value::Object(wire.clone()), method, object)?;
        Ok((wire, known))
    }

    /// A JSON replace of the whole object, answered in JSON.
    async fn replace_wire<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        id_key: &str,
        id: &str,
        wire: Wire,
        object: &str,
    ) -> Result<T, ProviderError> {
        let body = json!({ id_key: id, "replace": Value::Object(wire) });
        let answer = self.twirp_json(method, body, object, Some(id)).await?;
        from_json(P, answer, method, object)
    }

    /// Changes a trunk in place: the `update` action when it covers every changed field
    /// (`krisp_enabled` has no update field), else a JSON replace of the object as LiveKit
    /// answered it, so fields cwa's protos do not know survive.
    async fn update_inbound(
        &self,
        id: &str,
        spec: &InboundTrunkSpec,
        object: &str,
    ) -> Result<LiveObject, ProviderError> {
        self.guard().check(object, [id])?;
        self.refuse_legacy(id, object).await?;
        let (wire, current) = self
            .get_wire::<proto::SipInboundTrunkInfo>(Kind::LivekitInboundTrunk, id, object)
            .await?;
        let updated = match inbound_update(spec, &current, object)? {
            Some(update) => {
                let req = proto::UpdateSipInboundTrunkRequest {
                    sip_trunk_id: id.to_string(),
                    action: Some(proto::update_sip_inbound_trunk_request::Action::Update(
                        update,
                    )),
                };
                self.twirp("UpdateSIPInboundTrunk", &req, object, Some(id))
                    .await?
            }
            None => {
                let info = inbound_info(spec, Some(current), object)?;
                let wire = inbound_wire(wire, &info);
                self.replace_wire("UpdateSIPInboundTrunk", "sip_trunk_id", id, wire, object)
                    .await?
            }
        };
        Ok(inbound_object(&updated))
    }

    /// As [`Self::update_inbound`]; only `headers` needs the replace.
    async fn update_outbound(
        &self,
        id: &str,
        spec: &OutboundTrunkSpec,
        object: &str,
    ) -> Result<LiveObject, ProviderError> {
        self.guard().check(object, [id])?;
        self.refuse_legacy(id, object).await?;
        let (wire, current) = self
            .get_wire::<proto::SipOutboundTrunkInfo>(Kind::LivekitOutboundTrunk, id, object)
            .await?;
        let updated = match outbound_update(spec, &current, object)? {
            Some(update) => {
                let req = proto::UpdateSipOutboundTrunkRequest {
                    sip_trunk_id: id.to_string(),
                    action: Some(proto::update_sip_outbound_trunk_request::Action::Update(
                        update,
                    )),
                };
                self.twirp("UpdateSIPOutboundTrunk", &req, object, Some(id))
                    .await?
            }
            None => {
                let info = outbound_info(spec, Some(current), object)?;
                let wire = outbound_wire(wire, &info);
                self.replace_wire("UpdateSIPOutboundTrunk", "sip_trunk_id", id, wire, object)
                    .await?
            }
        };
        Ok(outbound_object(&updated))
    }

    /// As [`Self::update_inbound`]; agents (`room_config`) and `hide_phone_number` need the
    /// replace.
    async fn update_rule(
        &self,
        id: &str,
        spec: &DispatchRuleSpec,
        object: &str,
    ) -> Result<LiveObject, ProviderError> {
        self.guard().check(object, [id])?;
        let (wire, current) = self
            .get_wire::<proto::SipDispatchRuleInfo>(Kind::LivekitDispatchRule, id, object)
            .await?;
        let updated = match rule_update(spec, &current, object)? {
            Some(update) => {
                let req = proto::UpdateSipDispatchRuleRequest {
                    sip_dispatch_rule_id: id.to_string(),
                    action: Some(proto::update_sip_dispatch_rule_request::Action::Update(
                        update,
                    )),
                };
                self.twirp("UpdateSIPDispatchRule", &req, object, Some(id))
                    .await?
            }
            None => {
                let wire = rule_wire(spec, wire, &current, object)?;
                self.replace_wire(
                    "UpdateSIPDispatchRule",
                    "sip_dispatch_rule_id",
                    id,
                    wire,
                    object,
                )
                .await?
            }
        };
        Ok(rule_object(&updated))
    }
}

#[async_trait]
impl Provider for LivekitProvider {
    fn name(&self) -> ProviderName {
        P
    }

    async fn refresh(&self) -> Result<Vec<LiveObject>, ProviderError> {
        self.refresh_all().await
    }

    async fn read(&self, kind: Kind, id: &str) -> Result<Option<LiveObject>, ProviderError> {
        Ok(match kind {
            Kind::LivekitInboundTrunk => self.get_inbound(id).await?.map(|t| inbound_object(&t)),
            Kind::LivekitOutboundTrunk => self.get_outbound(id).await?.map(|t| outbound_object(&t)),
            Kind::LivekitDispatchRule => self.get_rule(id).await?.map(|r| rule_object(&r)),
            _ => None,
        })
    }

    async fn create(&self, req: &WriteRequest) -> Result<LiveObject, ProviderError> {
        self.guard().check_create(req)?;
        match &req.spec {
            Spec::LivekitInboundTrunk(s) => self.create_inbound(req, s).await,
            Spec::LivekitOutboundTrunk(s) => self.create_outbound(req, s).await,
            Spec::LivekitDispatchRule(s) => self.create_rule(req, s).await,
            other => Err(not_mine(P, other.kind(), "create", &req.object)),
        }
    }

    async fn update(
        &self,
        id: &str,
        _before: &Spec,
        req: &WriteRequest,
    ) -> Result<LiveObject, ProviderError> {
        self.guard().check_update(id, req)?;
        let object = req.object.as_str();
        match &req.spec {
            Spec::LivekitInboundTrunk(s) => self.update_inbound(id, s, object).await,
            Spec::LivekitOutboundTrunk(s) => self.update_outbound(id, s, object).await,
            Spec::LivekitDispatchRule(s) => self.update_rule(id, s, object).await,
            other => Err(not_mine(P, other.kind(), "update", object)),
        }
    }

    async fn delete(&self, kind: Kind, id: &str) -> Result<(), ProviderError> {
        self.guard().check_delete(kind, id)?;
        self.guard().check(id, [id])?;
        match kind {
            Kind::LivekitInboundTrunk | Kind::LivekitOutboundTrunk => {
                self.refuse_legacy(id, id).await?;
                gone_is_done(
                    self.sdk(
                        "DeleteSIPTrunk",
                        id,
                        Retry::Idempotent,
                        |sip: Arc<SIPClient>| async move { sip.delete_sip_trunk(id).await },
                    )
                    .await,
                )
            }
            Kind::LivekitDispatchRule => gone_is_done(
                self.sdk(
                    "DeleteSIPDispatchRule",
                    id,
                    Retry::Idempotent,
                    |sip: Arc<SIPClient>| async move { sip.delete_sip_dispatch_rule(id).await },
                )
                .await,
            ),
            other => Err(not_mine(P, other, "delete", id)),
        }
    }

    async fn find_created(&self, req: &WriteRequest) -> Result<Option<LiveObject>, ProviderError> {
        let object = req.object.as_str();
        Ok(match &req.spec {
            Spec::LivekitInboundTrunk(s) => self
                .find_inbound(s, object)
                .await?
                .map(|t| inbound_object(&t)),
            Spec::LivekitOutboundTrunk(s) => {
                self.find_outbound(s).await?.map(|t| outbound_object(&t))
            }
            Spec::LivekitDispatchRule(s) => {
                self.find_rule(s, object).await?.map(|r| rule_object(&r))
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_short_lived_with_only_the_sip_admin_grant() {
        use base64::Engine;
        let token = mint("APIkey", &SecretValue::new("secret-0123456789")).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["iss"], "APIkey");
        assert_eq!(claims["sip"], serde_json::json!({"admin": true}));
        let lifetime = claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap();
        assert!(lifetime <= 600, "{lifetime} s");
        let video = claims.get("video").cloned().unwrap_or_default();
        assert!(
            video
                .as_object()
                .is_none_or(|v| v.values().all(|x| x != &serde_json::json!(true))),
            "no video grant: {video}"
        );
    }

    #[test]
    fn plain_ws_is_refused_off_loopback() {
        let env = |url: &str| {
            Env::from_pairs([
                ("LIVEKIT_URL", url),
                ("LIVEKIT_API_KEY", "k"),
                ("LIVEKIT_API_SECRET", "s"),
            ])
        };
        let opts = ClientOptions::default();
        assert!(LivekitProvider::from_env(&env("ws://127.0.0.1:7880"), &opts).is_ok());
        assert!(matches!(
            LivekitProvider::from_env(&env("ws://lk.example.com"), &opts),
            Err(ProviderError::Config { .. })
        ));
    }

    #[test]
    fn wss_becomes_https() {
        assert_eq!(http_url("wss://x.livekit.cloud"), "https://x.livekit.cloud");
        assert_eq!(http_url("ws://127.0.0.1:7880"), "http://127.0.0.1:7880");
        assert_eq!(http_url("https://x"), "https://x");
    }

    #[test]
    fn debug_hides_the_secret() {
        let env = Env::from_pairs([
            ("LIVEKIT_URL", "wss://x.livekit.cloud"),
            ("LIVEKIT_API_KEY", "APIkey"),
            ("LIVEKIT_API_SECRET", "very-secret-value"),
        ]);
        let p = LivekitProvider::from_env(&env, &ClientOptions::default()).unwrap();
        let debug = format!("{p:?}");
        assert!(!debug.contains("very-secret-value"));
        assert!(debug.contains("https://x.livekit.cloud"));
    }
}
