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
//! Canonical forms: numbers E.164 with `+`, sorted; allowed addresses and numbers sorted;
//! transport lower-case `auto`/`udp`/`tcp`/`tls`; outbound address without `sip:`;
//! `destination_country` upper-case; trunk ids and agents sorted; an empty auth password is
//! `None`, any other is the fingerprint of the value LiveKit returns.

use crate::protection::Write;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use livekit_api::access_token::{AccessToken, SIPGrants};
use livekit_api::services::sip::{
    CreateSIPDispatchRuleOptions, CreateSIPInboundTrunkOptions, SIPClient,
};
use livekit_api::services::{ServerError, ServiceError};
use livekit_protocol as proto;
use prost::Message;
use reqwest::{Method, Url};
use serde_json::{json, Value};

use super::http::{self, Auth, Body, Call, Gate, HttpClient, Retry, WriteGuard};
use super::{post_once, ClientOptions, Env, Provider, ProviderError, WriteRequest};
use crate::model::{
    fingerprint, AgentDispatch, DispatchKind, DispatchRuleSpec, InboundTrunkSpec, Kind, LiveObject,
    NumberRef, OutboundTrunkSpec, Preserved, ProviderName, Ref, SecretRef, SecretValue, Spec, E164,
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

/// Twirp error body `{"code","msg"}` → (code, msg).
fn decode_twirp_error(body: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct TwirpError {
        code: String,
        #[serde(default)]
        msg: String,
    }
    let e: TwirpError = serde_json::from_slice(body).ok()?;
    Some((e.code, e.msg))
}

/// The HTTP status twirp v8 gives each error code.
pub fn twirp_status(code: &str) -> u16 {
    match code {
        "canceled" | "deadline_exceeded" => 408,
        "invalid_argument" | "malformed" | "out_of_range" => 400,
        "not_found" | "bad_route" => 404,
        "already_exists" | "aborted" => 409,
        "permission_denied" => 403,
        "unauthenticated" => 401,
        "resource_exhausted" => 429,
        "failed_precondition" => 412,
        "unimplemented" => 501,
        "unavailable" => 503,
        _ => 500,
    }
}

fn service_error(e: ServiceError, operation: &str, object: &str) -> ProviderError {
    let (operation, object) = (operation.to_string(), object.to_string());
    match e {
        ServiceError::Twirp(ServerError::Twirp(t)) => ProviderError::Api {
            provider: P,
            operation,
            object,
            status: twirp_status(&t.code),
            code: t.code,
            detail: t.msg,
        },
        ServiceError::Twirp(ServerError::Request(r)) => ProviderError::Transport {
            provider: P,
            operation,
            object,
            detail: match r.status() {
                Some(s) => format!("HTTP {s} with an unreadable body"),
                None if r.is_timeout() => "timed out".to_string(),
                None if r.is_connect() => "could not connect".to_string(),
                None if r.is_decode() => "an error answer without a Twirp error body (LiveKit answers a bad API key or secret with a plain-text 401)".to_string(),
                None => "the request failed".to_string(),
            },
        },
        ServiceError::Twirp(ServerError::Prost(d)) => ProviderError::Decode {
            provider: P,
            operation,
            object,
            detail: d.to_string(),
        },
        other => ProviderError::Config {
            provider: P,
            detail: format!("{operation} {object}: {other}"),
        },
    }
}

fn retryable(e: &ProviderError, retry: Retry) -> bool {
    match (e, retry) {
        (ProviderError::Api { status: 429, .. }, _) => true,
        (ProviderError::Api { status, .. }, Retry::Idempotent) => *status >= 500,
        (ProviderError::Transport { .. } | ProviderError::Decode { .. }, Retry::Idempotent) => true,
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
                call(sip)
                    .await
                    .map_err(|e| service_error(e, operation, object))
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

    /// cwa's own Twirp call (protobuf), for what the crate lacks.
    async fn twirp<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        req: &Req,
        object: &str,
        write: Option<&str>,
    ) -> Result<Resp, ProviderError> {
        let url = http::join(&self.base, &format!("/twirp/livekit.SIP/{method}"));
        let mut call = Call::write(
            Method::POST,
            url,
            Body::Protobuf(req.encode_to_vec()),
            method,
            object,
        );
        call.write = write.is_some();
        call.retry = if method.starts_with("Create") {
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
        loop {
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
        let want = sorted(numbers);
        Ok(resp
            .items
            .into_iter()
            .find(|t| t.name == spec.name && sorted(normalize_all(&t.numbers)) == want))
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
        let trunks = ref_ids(&spec.trunks, object)?;
        let want = sorted(trunks.clone());
        let rules = self.list_rules(Vec::new(), trunks, object).await?;
        Ok(rules
            .into_iter()
            .find(|r| r.name == spec.name && sorted(r.trunk_ids.clone()) == want))
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
        let known = serde_json::from_value(Value::Object(wire.clone())).map_err(|e| {
            ProviderError::Decode {
                provider: P,
                operation: method.to_string(),
                object: object.to_string(),
                detail: e.to_string(),
            }
        })?;
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
        serde_json::from_value(answer).map_err(|e| ProviderError::Decode {
            provider: P,
            operation: method.to_string(),
            object: object.to_string(),
            detail: e.to_string(),
        })
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

/// A trunk or rule in LiveKit's Twirp JSON form, every field it answered kept.
type Wire = serde_json::Map<String, Value>;

/// A string field of a JSON object, in either protobuf-JSON spelling.
fn wire_str<'a>(v: &'a Value, snake: &str) -> Option<&'a str> {
    v.get(snake)
        .or_else(|| v.get(lower_camel(snake)))
        .and_then(Value::as_str)
}

/// `sip_trunk_id` -> `sipTrunkId`, protobuf's JSON name.
fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Sets one field of a JSON object under its proto name, dropping the other spelling.
fn put(wire: &mut Wire, snake: &str, value: Value) {
    wire.remove(&lower_camel(snake));
    wire.insert(snake.to_string(), value);
}

/// The object LiveKit answered with cwa's fields set from `info` (everything else as it was).
fn inbound_wire(mut wire: Wire, info: &proto::SipInboundTrunkInfo) -> Wire {
    put(&mut wire, "name", json!(info.name));
    put(&mut wire, "metadata", json!(info.metadata));
    put(&mut wire, "numbers", json!(info.numbers));
    put(
        &mut wire,
        "allowed_addresses",
        json!(info.allowed_addresses),
    );
    put(&mut wire, "allowed_numbers", json!(info.allowed_numbers));
    put(&mut wire, "auth_username", json!(info.auth_username));
    put(&mut wire, "auth_password", json!(info.auth_password));
    put(&mut wire, "krisp_enabled", json!(info.krisp_enabled));
    wire
}

fn outbound_wire(mut wire: Wire, info: &proto::SipOutboundTrunkInfo) -> Wire {
    put(&mut wire, "name", json!(info.name));
    put(&mut wire, "metadata", json!(info.metadata));
    put(&mut wire, "address", json!(info.address));
    put(&mut wire, "transport", json!(info.transport));
    put(&mut wire, "numbers", json!(info.numbers));
    put(&mut wire, "auth_username", json!(info.auth_username));
    put(&mut wire, "auth_password", json!(info.auth_password));
    put(&mut wire, "headers", json!(info.headers));
    put(
        &mut wire,
        "destination_country",
        json!(info.destination_country),
    );
    wire
}

/// The rule LiveKit answered with cwa's fields set: the rule kind (its other settings kept
/// when the kind is the same), trunks, name, metadata, `hide_phone_number`, and the agents
/// in `room_config.agents` (an agent kept keeps every setting cwa does not manage, such as
/// `deployment`; the rest of `room_config` is untouched).
fn rule_wire(
    spec: &DispatchRuleSpec,
    mut wire: Wire,
    current: &proto::SipDispatchRuleInfo,
    object: &str,
) -> Result<Wire, ProviderError> {
    let info = rule_info(spec, Some(current.clone()), object)?;
    let rule = info.rule.as_ref().and_then(|r| r.rule.as_ref());
    let previous = wire.get("rule").cloned();
    put(&mut wire, "rule", rule_kind_wire(rule, previous.as_ref()));
    put(&mut wire, "trunk_ids", json!(info.trunk_ids));
    put(&mut wire, "name", json!(info.name));
    put(&mut wire, "metadata", json!(info.metadata));
    put(
        &mut wire,
        "hide_phone_number",
        json!(info.hide_phone_number),
    );
    put(&mut wire, "krisp_enabled", json!(info.krisp_enabled));
    let mut config = wire
        .get("room_config")
        .or_else(|| wire.get("roomConfig"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let before: Vec<Value> = config
        .get("agents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let agents: Vec<Value> = spec
        .agents
        .iter()
        .map(|a| {
            let mut agent = before
                .iter()
                .find(|p| wire_str(p, "agent_name") == Some(a.agent_name.as_str()))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            put(&mut agent, "agent_name", json!(a.agent_name));
            put(&mut agent, "metadata", json!(a.metadata));
            Value::Object(agent)
        })
        .collect();
    put(&mut config, "agents", Value::Array(agents));
    put(&mut wire, "room_config", Value::Object(config));
    Ok(wire)
}

/// The `rule` oneof in JSON: the new kind's fields over the previous kind's object when the
/// kind is the same.
fn rule_kind_wire(
    rule: Option<&proto::sip_dispatch_rule::Rule>,
    previous: Option<&Value>,
) -> Value {
    use proto::sip_dispatch_rule::Rule;
    let (key, fields) = match rule {
        Some(Rule::DispatchRuleDirect(d)) => (
            "dispatch_rule_direct",
            json!({"room_name": d.room_name, "pin": d.pin}),
        ),
        Some(Rule::DispatchRuleCallee(c)) => (
            "dispatch_rule_callee",
            json!({"room_prefix": c.room_prefix, "pin": c.pin, "randomize": c.randomize}),
        ),
        Some(Rule::DispatchRuleIndividual(i)) => (
            "dispatch_rule_individual",
            json!({"room_prefix": i.room_prefix, "pin": i.pin, "no_randomness": i.no_randomness}),
        ),
        None => return previous.cloned().unwrap_or(Value::Null),
    };
    let mut kind = previous
        .and_then(|p| p.get(key).or_else(|| p.get(lower_camel(key))))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in fields.as_object().into_iter().flatten() {
        put(&mut kind, k, v.clone());
    }
    json!({ key: Value::Object(kind) })
}

/// A list as `ListUpdate`: `set` to the wanted items, or `clear` when none are wanted (an
/// empty `set` is refused as "unsupported list update operation").
fn list_set(want: Vec<String>) -> proto::ListUpdate {
    proto::ListUpdate {
        clear: want.is_empty(),
        set: want,
        ..Default::default()
    }
}

/// The list update for `want` when it differs from `have` as a set.
fn list_change(want: &[String], have: &[String]) -> Option<proto::ListUpdate> {
    (sorted(want.to_vec()) != sorted(have.to_vec())).then(|| list_set(want.to_vec()))
}

fn changed(want: &str, have: &str) -> Option<String> {
    (want != have).then(|| want.to_string())
}

/// The `update` action that brings `current` to `spec`, or `None` when a field without an
/// update field changes (`krisp_enabled`).
pub fn inbound_update(
    spec: &InboundTrunkSpec,
    current: &proto::SipInboundTrunkInfo,
    object: &str,
) -> Result<Option<proto::SipInboundTrunkUpdate>, ProviderError> {
    if spec.krisp_enabled != current.krisp_enabled {
        return Ok(None);
    }
    let want = inbound_info(spec, Some(current.clone()), object)?;
    Ok(Some(proto::SipInboundTrunkUpdate {
        numbers: list_change(&want.numbers, &normalize_all(&current.numbers)),
        allowed_addresses: list_change(&want.allowed_addresses, &current.allowed_addresses),
        allowed_numbers: list_change(&want.allowed_numbers, &current.allowed_numbers),
        auth_username: changed(&want.auth_username, &current.auth_username),
        auth_password: changed(&want.auth_password, &current.auth_password),
        name: changed(&want.name, &current.name),
        metadata: changed(&want.metadata, &current.metadata),
        ..Default::default()
    }))
}

/// As [`inbound_update`]; `headers` has no update field.
pub fn outbound_update(
    spec: &OutboundTrunkSpec,
    current: &proto::SipOutboundTrunkInfo,
    object: &str,
) -> Result<Option<proto::SipOutboundTrunkUpdate>, ProviderError> {
    let want = outbound_info(spec, Some(current.clone()), object)?;
    if want.headers != current.headers {
        return Ok(None);
    }
    Ok(Some(proto::SipOutboundTrunkUpdate {
        address: changed(&want.address, &current.address),
        transport: (want.transport != current.transport).then_some(want.transport),
        destination_country: changed(&want.destination_country, &current.destination_country),
        numbers: list_change(&want.numbers, &normalize_all(&current.numbers)),
        auth_username: changed(&want.auth_username, &current.auth_username),
        auth_password: changed(&want.auth_password, &current.auth_password),
        name: changed(&want.name, &current.name),
        metadata: changed(&want.metadata, &current.metadata),
        ..Default::default()
    }))
}

/// As [`inbound_update`]; agents, `hide_phone_number` and `krisp_enabled` have no update
/// field.
pub fn rule_update(
    spec: &DispatchRuleSpec,
    current: &proto::SipDispatchRuleInfo,
    object: &str,
) -> Result<Option<proto::SipDispatchRuleUpdate>, ProviderError> {
    let want = rule_info(spec, Some(current.clone()), object)?;
    if want.hide_phone_number != current.hide_phone_number
        || want.krisp_enabled != current.krisp_enabled
        || want.room_config != current.room_config
    {
        return Ok(None);
    }
    Ok(Some(proto::SipDispatchRuleUpdate {
        trunk_ids: list_change(&want.trunk_ids, &current.trunk_ids),
        rule: (want.rule != current.rule)
            .then(|| want.rule.clone())
            .flatten(),
        name: changed(&want.name, &current.name),
        metadata: changed(&want.metadata, &current.metadata),
        ..Default::default()
    }))
}

fn gone(object: &str, id: &str) -> ProviderError {
    ProviderError::Api {
        provider: P,
        operation: "update".into(),
        object: object.to_string(),
        status: 404,
        code: "not_found".into(),
        detail: format!("{id} does not exist"),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn normalize_all(numbers: &[String]) -> Vec<String> {
    numbers
        .iter()
        .map(|n| {
            E164::normalize(n)
                .map(String::from)
                .unwrap_or_else(|_| n.clone())
        })
        .collect()
}

fn strip_sip(address: &str) -> String {
    address
        .trim()
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .to_ascii_lowercase()
}

/// Numbers a trunk holds, as LiveKit takes them; each must already be a number.
fn number_strings(numbers: &[NumberRef], object: &str) -> Result<Vec<String>, ProviderError> {
    numbers
        .iter()
        .map(|n| match n {
            NumberRef::Number(e) => Ok(e.as_str().to_string()),
            NumberRef::Of(a) => Err(ProviderError::Config {
                provider: P,
                detail: format!("{object}: the number of {a} was not resolved"),
            }),
        })
        .collect()
}

fn ref_ids(refs: &[Ref], object: &str) -> Result<Vec<String>, ProviderError> {
    refs.iter()
        .map(|r| match r {
            Ref::Id(id) => Ok(id.clone()),
            Ref::Addr(a) => Err(ProviderError::Config {
                provider: P,
                detail: format!("{object}: the reference to {a} was not resolved to a live id"),
            }),
        })
        .collect()
}

/// The password to send: the resolved value; none wanted means empty; a secret known only by
/// fingerprint keeps what the trunk has.
fn password_to_send(
    want: &Option<SecretRef>,
    current: &str,
    object: &str,
) -> Result<String, ProviderError> {
    match want {
        None => Ok(String::new()),
        Some(SecretRef::Value(v)) => Ok(v.expose().to_string()),
        Some(SecretRef::Fingerprint(f)) if !current.is_empty() && fingerprint(current) == *f => {
            Ok(current.to_string())
        }
        Some(_) => Err(ProviderError::Config {
            provider: P,
            detail: format!("{object}: the auth password must be resolved from its environment variable before writing"),
        }),
    }
}

fn secret(value: &str) -> Option<SecretRef> {
    (!value.is_empty()).then(|| SecretRef::Fingerprint(fingerprint(value)))
}

/// Splits trunk numbers into E.164 numbers and anything else (kept in `extra`).
fn split_numbers(numbers: &[String]) -> (Vec<NumberRef>, Vec<String>) {
    let mut ok = Vec::new();
    let mut other = Vec::new();
    for n in numbers {
        match E164::normalize(n) {
            Ok(e) => ok.push(e),
            Err(_) => other.push(n.clone()),
        }
    }
    ok.sort();
    ok.dedup();
    (ok.into_iter().map(NumberRef::Number).collect(), other)
}

pub fn transport_name(t: i32) -> &'static str {
    match proto::SipTransport::try_from(t) {
        Ok(proto::SipTransport::Udp) => "udp",
        Ok(proto::SipTransport::Tcp) => "tcp",
        Ok(proto::SipTransport::Tls) => "tls",
        _ => "auto",
    }
}

pub fn transport_value(name: &str, object: &str) -> Result<i32, ProviderError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "" | "auto" => proto::SipTransport::Auto,
        "udp" => proto::SipTransport::Udp,
        "tcp" => proto::SipTransport::Tcp,
        "tls" => proto::SipTransport::Tls,
        other => {
            return Err(ProviderError::Config {
                provider: P,
                detail: format!("{object}: unknown transport `{other}` (auto, udp, tcp or tls)"),
            })
        }
    } as i32)
}

pub fn inbound_object(t: &proto::SipInboundTrunkInfo) -> LiveObject {
    let (numbers, unparsed) = split_numbers(&t.numbers);
    let mut extra = BTreeMap::new();
    if !unparsed.is_empty() {
        extra.insert("unparsed_numbers".to_string(), unparsed.join(","));
    }
    if !t.auth_realm.is_empty() {
        extra.insert("auth_realm".to_string(), t.auth_realm.clone());
    }
    extra.insert("record_type".to_string(), "sip_inbound_trunk".to_string());
    LiveObject {
        id: t.sip_trunk_id.clone(),
        spec: Spec::LivekitInboundTrunk(InboundTrunkSpec {
            name: t.name.clone(),
            metadata: t.metadata.clone(),
            numbers,
            allowed_addresses: sorted(t.allowed_addresses.clone()),
            allowed_numbers: sorted(t.allowed_numbers.clone()),
            auth_username: t.auth_username.clone(),
            auth_password: secret(&t.auth_password),
            krisp_enabled: t.krisp_enabled,
            preserved: Preserved::read(inbound_preserved(t)),
        }),
        extra,
    }
}

/// A field's value when it is set (not its zero value), for [`InboundTrunkSpec::preserved`]
/// and the like.
fn set_value(out: &mut BTreeMap<String, String>, path: &str, value: String) {
    if !value.is_empty() && value != "0" && value != "0s" {
        out.insert(path.to_string(), value);
    }
}

/// A protobuf Duration's whole seconds as `"30s"`, or empty when unset.
fn duration_text(seconds: Option<i64>) -> String {
    seconds.map(|s| format!("{s}s")).unwrap_or_default()
}

#[allow(deprecated)]
fn media_preserved(
    out: &mut BTreeMap<String, String>,
    media: Option<&proto::SipMediaConfig>,
    legacy: i32,
) {
    let name = |e: i32| {
        proto::SipMediaEncryption::try_from(e)
            .map(|e| e.as_str_name().to_string())
            .unwrap_or_else(|_| e.to_string())
    };
    let encryption = media.and_then(|m| m.encryption).unwrap_or(legacy);
    if encryption != 0 {
        set_value(out, "media.encryption", name(encryption));
    }
    if let Some(m) = media {
        let codecs: Vec<String> = m.codecs.iter().map(|c| c.name.clone()).collect();
        set_value(out, "media.codecs", codecs.join(","));
        if m.only_listed_codecs {
            set_value(out, "media.only_listed_codecs", "true".into());
        }
        set_value(
            out,
            "media.media_timeout",
            duration_text(m.media_timeout.as_ref().map(|d| d.seconds)),
        );
    }
}

/// The inbound settings cwa keeps but does not declare: auth realm, media, timeouts.
#[allow(deprecated)]
fn inbound_preserved(t: &proto::SipInboundTrunkInfo) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    set_value(&mut out, "auth_realm", t.auth_realm.clone());
    media_preserved(&mut out, t.media.as_ref(), t.media_encryption);
    set_value(
        &mut out,
        "ringing_timeout",
        duration_text(t.ringing_timeout.as_ref().map(|d| d.seconds)),
    );
    set_value(
        &mut out,
        "max_call_duration",
        duration_text(t.max_call_duration.as_ref().map(|d| d.seconds)),
    );
    out
}

/// The outbound settings cwa keeps but does not declare: media, `from_host`.
#[allow(deprecated)]
fn outbound_preserved(t: &proto::SipOutboundTrunkInfo) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    media_preserved(&mut out, t.media.as_ref(), t.media_encryption);
    set_value(&mut out, "from_host", t.from_host.clone());
    out
}

/// The rule settings cwa keeps but does not declare: each agent's deployment, the room's
/// timeouts and size, the room preset, media.
#[allow(deprecated)]
fn rule_preserved(r: &proto::SipDispatchRuleInfo) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(c) = &r.room_config {
        for a in &c.agents {
            set_value(
                &mut out,
                &format!("agents.{}.deployment", a.agent_name),
                a.deployment.clone(),
            );
        }
        set_value(
            &mut out,
            "room_config.empty_timeout",
            c.empty_timeout.to_string(),
        );
        set_value(
            &mut out,
            "room_config.departure_timeout",
            c.departure_timeout.to_string(),
        );
        set_value(
            &mut out,
            "room_config.max_participants",
            c.max_participants.to_string(),
        );
    }
    set_value(&mut out, "room_preset", r.room_preset.clone());
    media_preserved(&mut out, r.media.as_ref(), r.media_encryption);
    out
}

pub fn outbound_object(t: &proto::SipOutboundTrunkInfo) -> LiveObject {
    let (numbers, unparsed) = split_numbers(&t.numbers);
    let mut extra = BTreeMap::new();
    if !unparsed.is_empty() {
        extra.insert("unparsed_numbers".to_string(), unparsed.join(","));
    }
    if !t.from_host.is_empty() {
        extra.insert("from_host".to_string(), t.from_host.clone());
    }
    extra.insert("record_type".to_string(), "sip_outbound_trunk".to_string());
    LiveObject {
        id: t.sip_trunk_id.clone(),
        spec: Spec::LivekitOutboundTrunk(OutboundTrunkSpec {
            name: t.name.clone(),
            metadata: t.metadata.clone(),
            address: strip_sip(&t.address),
            transport: transport_name(t.transport).to_string(),
            numbers,
            auth_username: t.auth_username.clone(),
            auth_password: secret(&t.auth_password),
            headers: t
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            destination_country: t.destination_country.to_ascii_uppercase(),
            preserved: Preserved::read(outbound_preserved(t)),
        }),
        extra,
    }
}

fn dispatch_kind(rule: Option<&proto::SipDispatchRule>) -> DispatchKind {
    use proto::sip_dispatch_rule::Rule;
    match rule.and_then(|r| r.rule.as_ref()) {
        Some(Rule::DispatchRuleDirect(d)) => DispatchKind::Direct {
            room_name: d.room_name.clone(),
            pin: d.pin.clone(),
        },
        Some(Rule::DispatchRuleCallee(c)) => DispatchKind::Callee {
            room_prefix: c.room_prefix.clone(),
            pin: c.pin.clone(),
            randomize: c.randomize,
        },
        Some(Rule::DispatchRuleIndividual(i)) => DispatchKind::Individual {
            room_prefix: i.room_prefix.clone(),
            pin: i.pin.clone(),
        },
        None => DispatchKind::Individual {
            room_prefix: String::new(),
            pin: String::new(),
        },
    }
}

pub fn rule_object(r: &proto::SipDispatchRuleInfo) -> LiveObject {
    let mut agents: Vec<AgentDispatch> = r
        .room_config
        .as_ref()
        .map(|c| {
            c.agents
                .iter()
                .map(|a| AgentDispatch {
                    agent_name: a.agent_name.clone(),
                    metadata: a.metadata.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    agents.sort();
    let mut trunks = sorted(r.trunk_ids.clone());
    trunks.retain(|t| !t.is_empty());
    let mut extra = BTreeMap::new();
    extra.insert("record_type".to_string(), "sip_dispatch_rule".to_string());
    if r.rule.as_ref().and_then(|x| x.rule.as_ref()).is_none() {
        extra.insert("rule".to_string(), "missing".to_string());
    }
    for (key, list) in [
        ("inbound_numbers", &r.inbound_numbers),
        ("numbers", &r.numbers),
    ] {
        if !list.is_empty() {
            extra.insert(key.to_string(), sorted(list.clone()).join(","));
        }
    }
    if !r.room_preset.is_empty() {
        extra.insert("room_preset".to_string(), r.room_preset.clone());
    }
    LiveObject {
        id: r.sip_dispatch_rule_id.clone(),
        spec: Spec::LivekitDispatchRule(DispatchRuleSpec {
            name: r.name.clone(),
            metadata: r.metadata.clone(),
            trunks: trunks.into_iter().map(Ref::Id).collect(),
            rule: dispatch_kind(r.rule.as_ref()),
            agents,
            hide_phone_number: r.hide_phone_number,
            krisp_enabled: r.krisp_enabled,
            preserved: Preserved::read(rule_preserved(r)),
        }),
        extra,
    }
}

/// The full trunk to create, or to replace `current` with: the spec's fields over what the
/// trunk has (headers, media, timeouts… that cwa does not manage are kept).
pub fn inbound_info(
    spec: &InboundTrunkSpec,
    current: Option<proto::SipInboundTrunkInfo>,
    object: &str,
) -> Result<proto::SipInboundTrunkInfo, ProviderError> {
    let mut t = current.unwrap_or_default();
    t.auth_password = password_to_send(&spec.auth_password, &t.auth_password, object)?;
    t.name = spec.name.clone();
    t.metadata = spec.metadata.clone();
    t.numbers = number_strings(&spec.numbers, object)?;
    t.allowed_addresses = spec.allowed_addresses.clone();
    t.allowed_numbers = spec.allowed_numbers.clone();
    t.auth_username = spec.auth_username.clone();
    t.krisp_enabled = spec.krisp_enabled;
    Ok(t)
}

pub fn outbound_info(
    spec: &OutboundTrunkSpec,
    current: Option<proto::SipOutboundTrunkInfo>,
    object: &str,
) -> Result<proto::SipOutboundTrunkInfo, ProviderError> {
    let mut t = current.unwrap_or_default();
    t.auth_password = password_to_send(&spec.auth_password, &t.auth_password, object)?;
    t.name = spec.name.clone();
    t.metadata = spec.metadata.clone();
    t.address = strip_sip(&spec.address);
    t.transport = transport_value(&spec.transport, object)?;
    t.numbers = number_strings(&spec.numbers, object)?;
    t.auth_username = spec.auth_username.clone();
    t.headers = spec
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<HashMap<_, _>>();
    t.destination_country = spec.destination_country.to_ascii_uppercase();
    Ok(t)
}

fn proto_rule(
    kind: &DispatchKind,
    current: Option<&proto::SipDispatchRule>,
) -> proto::SipDispatchRule {
    use proto::sip_dispatch_rule::Rule;
    let keep_no_randomness = match current.and_then(|r| r.rule.as_ref()) {
        Some(Rule::DispatchRuleIndividual(i)) => i.no_randomness,
        _ => false,
    };
    let rule = match kind {
        DispatchKind::Individual { room_prefix, pin } => {
            Rule::DispatchRuleIndividual(proto::SipDispatchRuleIndividual {
                room_prefix: room_prefix.clone(),
                pin: pin.clone(),
                no_randomness: keep_no_randomness,
            })
        }
        DispatchKind::Direct { room_name, pin } => {
            Rule::DispatchRuleDirect(proto::SipDispatchRuleDirect {
                room_name: room_name.clone(),
                pin: pin.clone(),
            })
        }
        DispatchKind::Callee {
            room_prefix,
            pin,
            randomize,
        } => Rule::DispatchRuleCallee(proto::SipDispatchRuleCallee {
            room_prefix: room_prefix.clone(),
            pin: pin.clone(),
            randomize: *randomize,
        }),
    };
    proto::SipDispatchRule { rule: Some(rule) }
}

/// The full rule to create or replace with, agents always in `room_config.agents` (an
/// existing agent keeps the settings cwa does not manage).
pub fn rule_info(
    spec: &DispatchRuleSpec,
    current: Option<proto::SipDispatchRuleInfo>,
    object: &str,
) -> Result<proto::SipDispatchRuleInfo, ProviderError> {
    let mut r = current.unwrap_or_default();
    r.rule = Some(proto_rule(&spec.rule, r.rule.as_ref()));
    r.name = spec.name.clone();
    r.metadata = spec.metadata.clone();
    r.trunk_ids = ref_ids(&spec.trunks, object)?;
    r.hide_phone_number = spec.hide_phone_number;
    r.krisp_enabled = spec.krisp_enabled;
    let mut config = r.room_config.take().unwrap_or_default();
    let previous = std::mem::take(&mut config.agents);
    config.agents = spec
        .agents
        .iter()
        .map(|a| {
            let mut agent = previous
                .iter()
                .find(|p| p.agent_name == a.agent_name)
                .cloned()
                .unwrap_or_default();
            agent.agent_name = a.agent_name.clone();
            agent.metadata = a.metadata.clone();
            agent
        })
        .collect();
    r.room_config = Some(config);
    Ok(r)
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
        self.guard()
            .check_write(&req.object, &Write::Create(&req.spec))?;
        match &req.spec {
            Spec::LivekitInboundTrunk(s) => self.create_inbound(req, s).await,
            Spec::LivekitOutboundTrunk(s) => self.create_outbound(req, s).await,
            Spec::LivekitDispatchRule(s) => self.create_rule(req, s).await,
            other => Err(not_mine(other.kind(), "create", &req.object)),
        }
    }

    async fn update(
        &self,
        id: &str,
        _before: &Spec,
        req: &WriteRequest,
    ) -> Result<LiveObject, ProviderError> {
        self.guard().check_write(
            &req.object,
            &Write::Update {
                id,
                spec: &req.spec,
            },
        )?;
        let object = req.object.as_str();
        match &req.spec {
            Spec::LivekitInboundTrunk(s) => self.update_inbound(id, s, object).await,
            Spec::LivekitOutboundTrunk(s) => self.update_outbound(id, s, object).await,
            Spec::LivekitDispatchRule(s) => self.update_rule(id, s, object).await,
            other => Err(not_mine(other.kind(), "update", object)),
        }
    }

    async fn delete(&self, kind: Kind, id: &str) -> Result<(), ProviderError> {
        self.guard().check_write(id, &Write::Delete { kind, id })?;
        self.guard().check(id, [id])?;
        let result = match kind {
            Kind::LivekitInboundTrunk | Kind::LivekitOutboundTrunk => {
                self.refuse_legacy(id, id).await?;
                self.sdk(
                    "DeleteSIPTrunk",
                    id,
                    Retry::Idempotent,
                    |sip: Arc<SIPClient>| async move { sip.delete_sip_trunk(id).await },
                )
                .await
                .map(|_| ())
            }
            Kind::LivekitDispatchRule => self
                .sdk(
                    "DeleteSIPDispatchRule",
                    id,
                    Retry::Idempotent,
                    |sip: Arc<SIPClient>| async move { sip.delete_sip_dispatch_rule(id).await },
                )
                .await
                .map(|_| ()),
            other => return Err(not_mine(other, "delete", id)),
        };
        match result {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
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

fn not_mine(kind: Kind, operation: &str, object: &str) -> ProviderError {
    ProviderError::Unsupported {
        provider: P,
        operation: operation.to_string(),
        object: object.to_string(),
        detail: format!("{kind} is not a LiveKit kind"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, metadata: &str) -> AgentDispatch {
        AgentDispatch {
            agent_name: name.into(),
            metadata: metadata.into(),
        }
    }

    fn rule_spec() -> DispatchRuleSpec {
        DispatchRuleSpec {
            name: "Melvindale Church of God Dispatch".into(),
            metadata: String::new(),
            trunks: vec![Ref::Id("ST_3KMJ5YEjF2fF".into())],
            rule: DispatchKind::Individual {
                room_prefix: "call-".into(),
                pin: String::new(),
            },
            agents: vec![agent("churchwiseai-voice", r#"{"source": "phone"}"#)],
            hide_phone_number: false,
            krisp_enabled: false,
            preserved: Default::default(),
        }
    }

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
    fn rule_info_sets_agents_in_room_config_and_keeps_the_rest() {
        let current = proto::SipDispatchRuleInfo {
            sip_dispatch_rule_id: "SDR_9vRb2XcLeY7s".into(),
            room_preset: "preset".into(),
            room_config: Some(proto::RoomConfiguration {
                empty_timeout: 30,
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = rule_info(&rule_spec(), Some(current), "x").unwrap();
        let config = info.room_config.unwrap();
        assert_eq!(config.empty_timeout, 30);
        assert_eq!(config.agents.len(), 1);
        assert_eq!(config.agents[0].agent_name, "churchwiseai-voice");
        assert_eq!(info.room_preset, "preset");
        assert_eq!(info.trunk_ids, vec!["ST_3KMJ5YEjF2fF"]);
    }

    #[test]
    fn rule_round_trips_through_the_wire_form() {
        let info = rule_info(&rule_spec(), None, "x").unwrap();
        let obj = rule_object(&info);
        assert_eq!(obj.spec, Spec::LivekitDispatchRule(rule_spec()));
    }

    #[test]
    fn inbound_normalizes_and_clears_auth() {
        let t = proto::SipInboundTrunkInfo {
            sip_trunk_id: "ST_1".into(),
            name: "n".into(),
            numbers: vec!["+17473897673".into(), "14144007103".into()],
            auth_username: "churchwiseai".into(),
            auth_password: "pw".into(),
            krisp_enabled: true,
            ..Default::default()
        };
        let obj = inbound_object(&t);
        let Spec::LivekitInboundTrunk(s) = &obj.spec else {
            panic!()
        };
        assert_eq!(
            s.numbers,
            vec![
                NumberRef::Number(E164::parse("+14144007103").unwrap()),
                NumberRef::Number(E164::parse("+17473897673").unwrap())
            ]
        );
        assert_eq!(
            s.auth_password,
            Some(SecretRef::Fingerprint(fingerprint("pw")))
        );
        let mut cleared = s.clone();
        cleared.auth_username = String::new();
        cleared.auth_password = None;
        let info = inbound_info(&cleared, Some(t), "x").unwrap();
        assert_eq!(info.auth_username, "");
        assert_eq!(info.auth_password, "");
        assert!(info.krisp_enabled);
    }

    #[test]
    fn unchanged_fingerprint_keeps_the_password() {
        assert_eq!(
            password_to_send(&Some(SecretRef::Fingerprint(fingerprint("pw"))), "pw", "x").unwrap(),
            "pw"
        );
        assert!(password_to_send(&Some(SecretRef::Env("X".into())), "pw", "x").is_err());
    }

    #[test]
    fn outbound_transport_and_headers() {
        let spec = OutboundTrunkSpec {
            name: "Telnyx Outbound".into(),
            metadata: String::new(),
            address: "sip:sip.telnyx.com".into(),
            transport: "TCP".into(),
            numbers: vec![NumberRef::Number(E164::parse("+12268830000").unwrap())],
            auth_username: "cwaoutbound".into(),
            auth_password: Some(SecretRef::Value(SecretValue::new("s3cret"))),
            headers: [("X-Telnyx-Username".to_string(), "cwaoutbound".to_string())].into(),
            destination_country: "us".into(),
            preserved: Default::default(),
        };
        let info = outbound_info(&spec, None, "x").unwrap();
        assert_eq!(info.transport, proto::SipTransport::Tcp as i32);
        assert_eq!(info.address, "sip.telnyx.com");
        assert_eq!(info.destination_country, "US");
        assert_eq!(
            info.headers.get("X-Telnyx-Username").unwrap(),
            "cwaoutbound"
        );
        let obj = outbound_object(&info);
        let Spec::LivekitOutboundTrunk(s) = obj.spec else {
            panic!()
        };
        assert_eq!(s.transport, "tcp");
        assert_eq!(
            s.auth_password,
            Some(SecretRef::Fingerprint(fingerprint("s3cret")))
        );
    }

    #[test]
    fn twirp_codes_map_to_statuses() {
        assert_eq!(twirp_status("not_found"), 404);
        assert_eq!(twirp_status("resource_exhausted"), 429);
        assert_eq!(twirp_status("unavailable"), 503);
        assert_eq!(
            decode_twirp_error(
                br#"{"code":"not_found","msg":"requested sip trunk does not exist"}"#
            ),
            Some((
                "not_found".into(),
                "requested sip trunk does not exist".into()
            ))
        );
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
