//! The HTTP side of the sandbox: a loopback listener whose connections can be dropped on
//! purpose (lost responses), the one catch-all handler, journaling, replay and the request log.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::faults::{truncate_body, Decision, FaultConfig, Faults};
use super::http::{parse_query, ApiRequest, ApiResponse};
use super::livekit::{TwirpRequest, TwirpResponse, PHONE_NUMBER_SERVICE, SIP_SERVICE};
use super::store::{JournalEntry, Store};
use super::world::{World, WorldSpec};
use super::{
    calls, telnyx, twilio, RequestLogEntry, SandboxError, LIVEKIT_API_KEY, LIVEKIT_API_SECRET,
    REQUEST_LOG,
};

mod control;
mod listener;
mod replay;
mod strict;

use super::limits::{telnyx_headers, LimitConfig, Limits, Refusal};
use control::*;
use listener::*;
use replay::*;

const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const TWIRP_PREFIX: &str = "/twirp/";

/// Which emulator a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Telnyx,
    Livekit,
    Twilio,
    Control,
    Unknown,
}

impl Provider {
    fn of(path: &str) -> Self {
        let first = path.split('/').find(|s| !s.is_empty()).unwrap_or_default();
        match first {
            "v2" => Self::Telnyx,
            "twirp" => Self::Livekit,
            "2010-04-01" | "v1" => Self::Twilio,
            "sandbox" => Self::Control,
            _ => Self::Unknown,
        }
    }

    fn parse(name: &str) -> Self {
        match name {
            "telnyx" => Self::Telnyx,
            "livekit" => Self::Livekit,
            "twilio" => Self::Twilio,
            "sandbox" => Self::Control,
            _ => Self::Unknown,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Telnyx => "telnyx",
            Self::Livekit => "livekit",
            Self::Twilio => "twilio",
            Self::Control => "sandbox",
            Self::Unknown => "unknown",
        }
    }

    /// The provider's 429, with `Retry-After` (and Telnyx's `x-ratelimit-*`).
    fn rate_limited(self, limit: u64, reset_secs: u64) -> ApiResponse {
        let response = match self {
            Self::Telnyx => telnyx::too_many_requests()
                .with_header("x-ratelimit-limit", limit.to_string())
                .with_header("x-ratelimit-remaining", "0")
                .with_header("x-ratelimit-reset", reset_secs.to_string()),
            Self::Twilio => twilio::too_many_requests(),
            _ => twirp_error(429, "resource_exhausted", "rate limit exceeded"),
        };
        response.with_header("retry-after", reset_secs.to_string())
    }

    /// The provider's own answer to a request over its limit ([`super::limits`]).
    fn over_limit(self, refusal: Refusal) -> ApiResponse {
        match refusal {
            Refusal::Telnyx { limit, reset_secs } => telnyx_headers(limit, 0, reset_secs)
                .into_iter()
                .fold(telnyx::too_many_requests(), |r, (k, v)| {
                    r.with_header(&k, v)
                }),
            Refusal::Twilio { concurrent } => twilio::too_many_requests()
                .with_header("twilio-concurrent-requests", concurrent.to_string()),
            Refusal::Livekit => twirp_error(429, "resource_exhausted", "rate limit exceeded"),
        }
    }

    /// The provider's 5xx.
    fn server_error(self, status: u16) -> ApiResponse {
        match self {
            Self::Telnyx => telnyx::server_error(status),
            Self::Twilio => twilio::server_error(status),
            _ if status == 503 => twirp_error(503, "unavailable", "service unavailable"),
            _ => twirp_error(status, "internal", "internal error"),
        }
    }
}

fn twirp_error(status: u16, code: &str, msg: &str) -> ApiResponse {
    ApiResponse::json(status, &json!({"code": code, "msg": msg}))
}

/// One request as received, owned, so it can move to a blocking task.
#[derive(Debug, Clone)]
struct Incoming {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Vec<u8>,
}

impl Incoming {
    fn api_request<'a>(&'a self, now: DateTime<Utc>, base_url: &'a str) -> ApiRequest<'a> {
        ApiRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            content_type: self.content_type.as_deref(),
            authorization: self.authorization.as_deref(),
            body: &self.body,
            now,
            base_url,
        }
    }
}

/// What the handler ends with: an answer, or a dropped connection.
enum Outcome {
    Answer(ApiResponse),
    Drop {
        resource_id: Option<String>,
        write: bool,
    },
}

/// State shared by every request.
struct Shared {
    world: Arc<Mutex<World>>,
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    /// The providers' own limits, per run ([`super::limits`]).
    limits: Limits,
    log: Mutex<File>,
    base_url: String,
    stop: watch::Receiver<bool>,
    /// Strict mode: requests and answers checked against `tests/contracts/` ([`strict`]).
    strict: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A world read from DIR (or seeded), with its journal, ready to serve.
pub(super) struct Loaded {
    world: World,
    store: Store,
}

/// Opens DIR: snapshot plus replayed journal, or a fresh `seed` world; then compacts.
pub(super) fn load_world(dir: &Path, seed: &str) -> Result<Loaded, SandboxError> {
    WorldSpec::parse(seed)?;
    let (mut store, snapshot, entries) = Store::open(dir)?;
    let mut world = match snapshot {
        Some(world) => world,
        None => World::seeded(seed)?,
    };
    replay(&mut world, &entries);
    store.compact(&world)?;
    Ok(Loaded { world, store })
}

/// The server task and what it shares, for the [`super::Sandbox`] handle.
pub(super) struct Running {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
}

pub(super) fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    dir: &Path,
    loaded: Loaded,
    (faults, limits): (FaultConfig, LimitConfig),
    strict: bool,
) -> Result<Running, SandboxError> {
    let log_path = dir.join(REQUEST_LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| SandboxError::io(&log_path, e))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    loaded.store.advertise(&format!("http://{addr}"))?;
    let shared = Arc::new(Shared {
        world: Arc::new(Mutex::new(loaded.world)),
        store: Mutex::new(loaded.store),
        faults: Mutex::new(Faults::new(faults)),
        limits: Limits::new(limits),
        log: Mutex::new(log),
        base_url: format!("http://{addr}"),
        stop: stop_rx.clone(),
        strict,
    });
    let app = Router::new()
        .fallback(handle)
        .with_state(shared.clone())
        .into_make_service_with_connect_info::<ConnHandle>();
    let mut stop = stop_rx;
    let server = axum::serve(KillableListener(listener), app).with_graceful_shutdown(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    });
    let task = tokio::spawn(async move { server.await });
    Ok(Running {
        shared,
        stop: stop_tx,
        task: Some(task),
    })
}

impl Running {
    pub(super) fn world(&self) -> Arc<Mutex<World>> {
        self.shared.world.clone()
    }

    pub(super) fn faults(&self) -> FaultConfig {
        lock(&self.shared.faults).config().clone()
    }

    pub(super) fn set_faults(&self, config: FaultConfig) {
        lock(&self.shared.faults).set(config);
    }

    /// Stops accepting, lets in-flight requests finish, then compacts the world on disk.
    pub(super) async fn stop(mut self) -> Result<(), SandboxError> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await
                .map_err(|e| SandboxError::Server(e.to_string()))?
                .map_err(|e| SandboxError::Server(e.to_string()))?;
        }
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let world = lock(&shared.world);
            lock(&shared.store).compact(&world)
        })
        .await
        .map_err(|e| SandboxError::Server(e.to_string()))?
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

// ---- the handler -------------------------------------------------------------------------

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return respond(ApiResponse::json(
            413,
            &json!({"error": "request body too large"}),
        ));
    };
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let incoming = Incoming {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parse_query(parts.uri.query()),
        content_type: header(CONTENT_TYPE),
        authorization: header(AUTHORIZATION),
        body: body.to_vec(),
    };
    let provider = Provider::of(&incoming.path);
    let outcome = match provider {
        Provider::Control => Outcome::Answer(control(&shared, &incoming)),
        Provider::Unknown => Outcome::Answer(ApiResponse::json(
            404,
            &json!({"error": format!("no emulated service serves {}", incoming.path)}),
        )),
        _ => provider_request(&shared, provider, incoming.clone()).await,
    };
    log_request(&shared, provider, &incoming, &outcome);
    match outcome {
        Outcome::Answer(response) => respond(response),
        Outcome::Drop { .. } => {
            conn.kill();
            respond(ApiResponse::empty(500))
        }
    }
}

/// A provider request within the run's limits: admitted (its answer carries what the
/// provider reports, a Twilio request counts as in flight until answered) or refused with the
/// provider's own 429, nothing committed.
async fn provider_request(shared: &Arc<Shared>, provider: Provider, incoming: Incoming) -> Outcome {
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
    let admitted = shared.limits.admit(provider.name(), now_ms);
    let latency = lock(&shared.faults).latency_ms();
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let ticket = match admitted {
        Ok(ticket) => ticket,
        Err(refusal) => {
            let write = !matches!(incoming.method.as_str(), "GET" | "HEAD");
            return Outcome::Answer(provider.over_limit(refusal).with_write(write));
        }
    };
    match faulted_request(shared, provider, incoming).await {
        Outcome::Answer(mut response) => {
            response.headers.extend(ticket.headers.iter().cloned());
            Outcome::Answer(response)
        }
        dropped => dropped,
    }
}

async fn faulted_request(shared: &Arc<Shared>, provider: Provider, incoming: Incoming) -> Outcome {
    let now = Utc::now();
    let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or_default();
    let decision =
        lock(&shared.faults).decide(provider.name(), &incoming.method, &incoming.path, now_ms);
    let write = !matches!(incoming.method.as_str(), "GET" | "HEAD");
    match decision {
        Decision::RateLimited { limit, reset_secs } => {
            Outcome::Answer(provider.rate_limited(limit, reset_secs).with_write(write))
        }
        Decision::Error(status) => Outcome::Answer(provider.server_error(status).with_write(write)),
        Decision::Hang(seconds) => {
            let mut stop = shared.stop.clone();
            let _ = tokio::time::timeout(
                Duration::from_secs(seconds),
                stop.wait_for(|stopped| *stopped),
            )
            .await;
            Outcome::Drop {
                resource_id: None,
                write,
            }
        }
        Decision::Pass | Decision::LostResponse | Decision::Malformed => {
            let worker = shared.clone();
            let response =
                tokio::task::spawn_blocking(move || process(&worker, provider, &incoming, now))
                    .await
                    .unwrap_or_else(|e| {
                        ApiResponse::json(
                            500,
                            &json!({"error": format!("sandbox handler failed: {e}")}),
                        )
                    });
            match decision {
                Decision::LostResponse => Outcome::Drop {
                    resource_id: response.resource_id,
                    write: response.write,
                },
                Decision::Malformed => Outcome::Answer(ApiResponse {
                    status: 200,
                    body: truncate_body(&response.body),
                    ..response
                }),
                _ => Outcome::Answer(with_rate_headers(shared, provider, response, now_ms)),
            }
        }
    }
}

/// Telnyx reports its rate-limit figures on ordinary answers too.
fn with_rate_headers(
    shared: &Shared,
    provider: Provider,
    response: ApiResponse,
    now_ms: u64,
) -> ApiResponse {
    if provider != Provider::Telnyx {
        return response;
    }
    match lock(&shared.faults).rate_headers(provider.name(), now_ms) {
        Some((limit, remaining, reset)) => response
            .with_header("x-ratelimit-limit", limit.to_string())
            .with_header("x-ratelimit-remaining", remaining.to_string())
            .with_header("x-ratelimit-reset", reset.to_string()),
        None => response,
    }
}

/// Runs one provider request against the world and journals it if it changed anything,
/// before the answer leaves.
fn process(
    shared: &Shared,
    provider: Provider,
    incoming: &Incoming,
    now: DateTime<Utc>,
) -> ApiResponse {
    if shared.strict {
        let newer = lock(&shared.world).livekit.newer_field_names();
        if let Some(refused) = strict::check_request(provider, incoming, &newer) {
            return refused;
        }
    }
    let mut world = lock(&shared.world);
    let before = revisions(&world);
    let req = incoming.api_request(now, &shared.base_url);
    let response = dispatch(&mut world, provider, &req, Auth::Check);
    let response = if shared.strict {
        strict::check_response(provider, incoming, response)
    } else {
        response
    };
    let changed = match provider {
        Provider::Livekit => response.write && response.is_success(),
        _ => revisions(&world) != before,
    };
    if changed {
        let entry = JournalEntry {
            seq: 0,
            time: now,
            provider: provider.name().to_string(),
            method: incoming.method.clone(),
            path: incoming.path.clone(),
            query: incoming.query.clone(),
            content_type: incoming.content_type.clone(),
            body: JournalEntry::encode_body(&incoming.body),
            resource_id: response.resource_id.clone(),
        };
        let mut store = lock(&shared.store);
        if let Err(e) = store.append(entry) {
            tracing::error!("sandbox: cannot journal a write: {e}");
            return ApiResponse::json(
                500,
                &json!({"error": "the sandbox could not persist this write"}),
            );
        }
        if store.wants_compaction() {
            if let Err(e) = store.compact(&world) {
                tracing::warn!("sandbox: cannot compact the journal (it keeps growing): {e}");
            }
        }
    }
    response
}

fn revisions(world: &World) -> (u64, u64) {
    (world.telnyx.revision(), world.twilio.revision())
}

/// Whether to check credentials (live traffic) or not (replaying the journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Check,
    Replay,
}

fn dispatch(world: &mut World, provider: Provider, req: &ApiRequest, auth: Auth) -> ApiResponse {
    match (provider, auth) {
        (Provider::Telnyx, Auth::Check) => world.telnyx.handle(req),
        (Provider::Telnyx, Auth::Replay) => world.telnyx.handle_authenticated(req),
        (Provider::Twilio, Auth::Check) => world.twilio.handle(req),
        (Provider::Twilio, Auth::Replay) => world.twilio.handle_authenticated(req),
        (Provider::Livekit, _) => livekit_call(world, req),
        _ => ApiResponse::json(404, &json!({"error": "no such route"})),
    }
}

fn livekit_call(world: &mut World, req: &ApiRequest) -> ApiResponse {
    let Some((service, method)) = req
        .path
        .strip_prefix(TWIRP_PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .filter(|(service, _)| [SIP_SERVICE, PHONE_NUMBER_SERVICE].contains(service))
    else {
        return twirp_bad_route(req);
    };
    let call = TwirpRequest {
        service,
        method,
        http_method: req.method,
        content_type: req.content_type,
        authorization: req.authorization,
        body: req.body,
        api_key: LIVEKIT_API_KEY,
        api_secret: LIVEKIT_API_SECRET,
    };
    from_twirp(world.livekit.handle(&call))
}

fn twirp_bad_route(req: &ApiRequest) -> ApiResponse {
    ApiResponse::json(
        404,
        &json!({
            "code": "bad_route",
            "msg": format!("no handler for path {:?}", req.path),
            "meta": {"twirp_invalid_route": format!("{} {}", req.method, req.path)},
        }),
    )
}

fn from_twirp(response: TwirpResponse) -> ApiResponse {
    ApiResponse {
        status: response.status,
        content_type: response.content_type,
        headers: Vec::new(),
        body: response.body,
        resource_id: response.resource_id,
        write: response.write,
    }
}

fn respond(response: ApiResponse) -> Response {
    let mut builder = Response::builder().status(response.status);
    if !(response.status == 204 && response.body.is_empty()) {
        builder = builder.header(CONTENT_TYPE, response.content_type);
    }
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Body::from(response.body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn log_request(shared: &Shared, provider: Provider, incoming: &Incoming, outcome: &Outcome) {
    let (status, resource_id, write) = match outcome {
        Outcome::Answer(r) => (r.status, r.resource_id.clone(), r.write),
        Outcome::Drop { resource_id, write } => (0, resource_id.clone(), *write),
    };
    let entry = RequestLogEntry {
        time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        provider: provider.name().to_string(),
        method: incoming.method.clone(),
        path: incoming.path.clone(),
        status,
        resource_id,
        write,
    };
    let Ok(mut line) = serde_json::to_vec(&entry) else {
        return;
    };
    line.push(b'\n');
    if let Err(e) = lock(&shared.log).write_all(&line) {
        tracing::warn!("sandbox: cannot append to the request log: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_length_replacement_rewrites_every_occurrence() {
        let mut body = b"{\"a\":\"ST_aaaaaaaaaaaa\",\"b\":[\"ST_aaaaaaaaaaaa\"]}".to_vec();
        replace_same_length(&mut body, b"ST_aaaaaaaaaaaa", b"ST_bbbbbbbbbbbb");
        assert_eq!(
            body,
            b"{\"a\":\"ST_bbbbbbbbbbbb\",\"b\":[\"ST_bbbbbbbbbbbb\"]}".to_vec()
        );
    }

    #[test]
    fn providers_route_by_first_segment() {
        assert_eq!(Provider::of("/v2/phone_numbers"), Provider::Telnyx);
        assert_eq!(
            Provider::of("/twirp/livekit.SIP/ListSIPInboundTrunk"),
            Provider::Livekit
        );
        assert_eq!(
            Provider::of("/2010-04-01/Accounts/AC/IncomingPhoneNumbers.json"),
            Provider::Twilio
        );
        assert_eq!(Provider::of("/v1/Trunks"), Provider::Twilio);
        assert_eq!(Provider::of("/sandbox/world"), Provider::Control);
        assert_eq!(Provider::of("/"), Provider::Unknown);
    }
}
