//! The HTTP layer every provider call goes through (Telnyx and Twilio entirely; LiveKit's own
//! Twirp calls, and the gate and guard around the official SIP client's calls).
//!
//! One place decides, for every call:
//! - the hard lock: a write whose target id is protected is refused before it leaves the
//!   process ([`WriteGuard`]);
//! - the per-provider concurrency and request rate, learned from each provider's answers
//!   ([`Gate`], [`super::pacing`]);
//! - a timeout, and retries with exponential backoff and jitter on 429, 5xx and connection
//!   errors, honoring `Retry-After` (and Telnyx `x-ratelimit-reset`). Only idempotent calls are
//!   retried on 5xx or a lost connection; a create is retried only after a 429 (a definite
//!   refusal), because after a lost answer the provider must look the object up first
//!   ([`super::create_with_recovery`]);
//! - which base URLs are acceptable: https anywhere, plain http only on loopback.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::pacing;
pub use super::pacing::Gate;
pub use super::pacing::Seen;
use super::{ClientOptions, ProviderError};
use crate::model::{ProviderName, SecretValue};

/// Parses a base URL and refuses plain http to anything but loopback, so credentials never
/// travel in clear text over a network.
pub fn check_base_url(provider: ProviderName, raw: &str) -> Result<Url, ProviderError> {
    let url = Url::parse(raw.trim_end_matches('/')).map_err(|e| ProviderError::Config {
        provider,
        detail: format!("base URL `{raw}` is not a URL: {e}"),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ProviderError::Config {
            provider,
            detail: format!(
                "base URL `{raw}` uses plain http to a non-loopback host; use https (plain http is allowed only for 127.0.0.0/8, ::1 and localhost)"
            ),
        }),
        other => Err(ProviderError::Config {
            provider,
            detail: format!("base URL `{raw}` has unsupported scheme `{other}`"),
        }),
    }
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// Joins a path (with its query) onto a base URL that may itself carry a path (`…/v2`).
pub fn join(base: &Url, path_and_query: &str) -> Url {
    let mut s = base.as_str().trim_end_matches('/').to_string();
    if !path_and_query.starts_with('/') {
        s.push('/');
    }
    s.push_str(path_and_query);
    Url::parse(&s).unwrap_or_else(|_| base.clone())
}

/// The hard lock at the HTTP layer: the run's shared [`crate::protection::Lock`], asked about
/// every write before it leaves the process, by its URL's ids and by its request body.
#[derive(Debug, Default)]
pub struct WriteGuard {
    lock: crate::protection::Shared,
}

impl WriteGuard {
    /// A guard on these entries alone (it learns nothing from live).
    pub fn new(ids: &[String]) -> Self {
        Self::shared(crate::protection::Shared::new(
            crate::protection::Lock::new(ids),
        ))
    }

    /// A guard on the run's shared lock, which learns from each refresh.
    pub fn shared(lock: crate::protection::Shared) -> Self {
        Self { lock }
    }

    /// The guard of a client built with these options.
    pub fn from_options(opts: &ClientOptions) -> Self {
        match &opts.lock {
            Some(lock) => Self::shared(lock.clone()),
            None => Self::new(&opts.protected_ids),
        }
    }

    /// True when some protected entry is a phone number (`+…`), so number writes must look
    /// the number up before writing.
    pub fn has_numbers(&self) -> bool {
        self.lock.snapshot().ids().any(|p| p.starts_with('+'))
    }

    /// True when the id is protected or on a protected trunk's path.
    pub fn is_protected(&self, id: &str) -> bool {
        self.lock.is_locked(id)
    }

    /// Refuses a write whose targets include a protected id.
    pub fn check<'a>(
        &self,
        object: &str,
        targets: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ProviderError> {
        match targets.into_iter().find(|t| self.is_protected(t)) {
            Some(id) => Err(ProviderError::Protected {
                object: object.to_string(),
                id: id.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses a write whose request would write, route or re-number a protected object
    /// (the one rule of [`crate::protection`]).
    pub fn check_write(
        &self,
        object: &str,
        write: &crate::protection::Write<'_>,
    ) -> Result<(), ProviderError> {
        self.lock
            .check(write)
            .map_err(|v| ProviderError::Protected {
                object: format!("{object} ({})", v.detail),
                id: v.protected,
            })
    }

    /// The lock's word on a create, before any client looks at the request.
    pub fn check_create(&self, req: &super::WriteRequest) -> Result<(), ProviderError> {
        self.check_write(&req.object, &crate::protection::Write::Create(&req.spec))
    }

    /// The lock's word on an update of `id` to the request's spec.
    pub fn check_update(&self, id: &str, req: &super::WriteRequest) -> Result<(), ProviderError> {
        let write = crate::protection::Write::Update {
            id,
            spec: &req.spec,
        };
        self.check_write(&req.object, &write)
    }

    /// The lock's word on a delete of `id`.
    pub fn check_delete(&self, kind: crate::model::Kind, id: &str) -> Result<(), ProviderError> {
        self.check_write(id, &crate::protection::Write::Delete { kind, id })
    }

    /// Every path segment of a URL, without a `.json` suffix: the ids a REST write targets.
    pub fn path_ids(url: &Url) -> Vec<String> {
        url.path_segments()
            .map(|segs| {
                segs.map(|s| s.trim_end_matches(".json").to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads and idempotent writes: retried on 429, 5xx and connection errors.
    Idempotent,
    /// Creates: retried only on 429, which the service answers before doing anything.
    RejectedOnly,
}

impl Retry {
    /// Whether a failed attempt may be sent again, from its status (`None`: no readable
    /// answer arrived): a 5xx or a lost answer only for an idempotent call; a 429 for an
    /// idempotent call, and for a create only where the provider documents that a 429 was
    /// not carried out ([`pacing::unprocessed_on_429`]; elsewhere the create is looked up
    /// first, [`super::post_once`]). The one rule for plain HTTP and SDK calls.
    pub fn allows(self, provider: ProviderName, status: Option<StatusCode>) -> bool {
        match status {
            Some(StatusCode::TOO_MANY_REQUESTS) => {
                self == Self::Idempotent || pacing::unprocessed_on_429(provider)
            }
            Some(s) => s.is_server_error() && self == Self::Idempotent,
            None => self == Self::Idempotent,
        }
    }
}

/// Backoff settings shared by every retry loop.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
    /// The longest a server-supplied `Retry-After` is honored.
    pub max_wait: Duration,
}

impl Backoff {
    pub fn from_options(opts: &ClientOptions) -> Self {
        Self {
            max_retries: opts.max_retries,
            base: opts.backoff_base,
            cap: opts.backoff_cap,
            max_wait: Duration::from_secs(60),
        }
    }

    /// Exponential backoff with jitter: a random wait in [d/2, d], d = base * 2^attempt.
    pub fn delay(&self, attempt: u32) -> Duration {
        use rand::Rng;
        let exp = self.base.saturating_mul(1u32 << attempt.min(16));
        let d = exp.min(self.cap);
        let half = d / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }

    /// Whether a retry is worth waiting for: a server asking for longer than `max_wait` will
    /// not take the call within this run, so the failure is reported now (naming the
    /// provider's answer) rather than after retries that sleep and fail the same way.
    pub fn waits_for(&self, server: Option<Duration>) -> bool {
        server.is_none_or(|d| d <= self.max_wait)
    }

    /// The wait before the next attempt: the server's word if it gave one, else backoff.
    pub fn wait(&self, attempt: u32, server: Option<Duration>) -> Duration {
        match server {
            Some(d) => d.min(self.max_wait),
            None => self.delay(attempt),
        }
    }
}

/// The server's requested wait: `Retry-After` (seconds), `Retry-After-Ms`, or on a 429 Telnyx's
/// `x-ratelimit-reset` (seconds until the window resets).
pub fn server_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    let secs = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = secs("retry-after-ms") {
        return Some(reported_wait(ms / 1000.0));
    }
    if let Some(s) = secs("retry-after") {
        return Some(reported_wait(s));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return secs("x-ratelimit-reset").map(reported_wait);
    }
    None
}

/// The longest wait a server's header is read as: a day. A provider's window resets within a
/// minute; a larger figure is a broken or hostile server, and taken as is it would not even fit
/// a `Duration` or an `Instant` (cwa would panic instead of reporting the 429). The retry loop
/// gives up on any wait past its `max_wait` ([`Backoff::waits_for`]), pacing pauses at most
/// [`super::pacing::MAX_PAUSE`].
pub const MAX_REPORTED_WAIT: Duration = Duration::from_secs(86_400);

/// A wait a server reported, in seconds (finite and not negative), as a `Duration` no longer
/// than [`MAX_REPORTED_WAIT`]. Every header-reported wait goes through it: `Retry-After`,
/// `Retry-After-Ms`, Telnyx's `x-ratelimit-reset`, in the retry loop and in pacing alike.
pub fn reported_wait(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs)
        .unwrap_or(MAX_REPORTED_WAIT)
        .min(MAX_REPORTED_WAIT)
}

/// What a failed attempt allows next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    /// Give up: the failure is final (or a retry could repeat a write).
    Never,
    /// Try again, after the server's requested wait when it gave one, else backoff.
    After(Option<Duration>),
}

/// The one retry loop of every provider client: plain HTTP calls ([`HttpClient::send`]),
/// answers that could not be read ([`HttpClient::decoded`]) and the LiveKit SDK's calls all
/// go through it, so pacing and the retry budget are decided in one place. Runs `attempt`
/// until it succeeds, `again` says [`Again::Never`], or `backoff.max_retries` retries are spent.
pub async fn retrying<T, E, Fut>(
    backoff: &Backoff,
    operation: &str,
    mut attempt: impl FnMut() -> Fut,
    again: impl Fn(&E) -> Again,
) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut n = 0;
    loop {
        let outcome = attempt().await;
        let wait = match &outcome {
            Ok(_) => return outcome,
            Err(e) => match again(e) {
                Again::After(server) if n < backoff.max_retries && backoff.waits_for(server) => {
                    backoff.wait(n, server)
                }
                _ => return outcome,
            },
        };
        tracing::debug!(
            operation,
            attempt = n,
            wait_ms = wait.as_millis() as u64,
            "retrying"
        );
        tokio::time::sleep(wait).await;
        n += 1;
    }
}

/// How a client authenticates. Debug never shows the secret.
#[derive(Clone)]
pub enum Auth {
    Bearer(SecretValue),
    Basic {
        user: String,
        password: SecretValue,
    },
    /// A token minted per attempt (LiveKit's short-lived JWTs).
    Minted(Arc<dyn Fn() -> Result<String, ProviderError> + Send + Sync>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer((sensitive))"),
            Self::Basic { user, .. } => write!(f, "Basic({user}, (sensitive))"),
            Self::Minted(_) => f.write_str("Minted((sensitive))"),
        }
    }
}

impl Auth {
    fn header(&self, provider: ProviderName) -> Result<HeaderValue, ProviderError> {
        use base64::Engine;
        let raw = match self {
            Self::Bearer(key) => format!("Bearer {}", key.expose()),
            Self::Basic { user, password } => {
                let pair = format!("{user}:{}", password.expose());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
            Self::Minted(mint) => format!("Bearer {}", mint()?),
        };
        let mut value = HeaderValue::from_str(&raw).map_err(|_| ProviderError::Config {
            provider,
            detail: "a credential contains characters that cannot go in an HTTP header".to_string(),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// A request body.
#[derive(Clone)]
pub enum Body {
    Empty,
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
    Protobuf(Vec<u8>),
}

/// One call as a provider describes it.
#[derive(Clone)]
pub struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Body,
    /// What is being done, for errors (`list phone_numbers`, `PATCH credential_connection`).
    pub operation: String,
    /// The object it is done to, for errors (an address, an id, a number).
    pub object: String,
    pub retry: Retry,
    /// True when the call changes something; the hard lock applies.
    pub write: bool,
    /// Ids the write targets besides those in the path (a Twirp body id, a number).
    pub targets: Vec<String>,
}

impl Call {
    /// A read: GET, idempotent, no lock check.
    pub fn get(url: Url, operation: impl Into<String>, object: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            url,
            body: Body::Empty,
            operation: operation.into(),
            object: object.into(),
            retry: Retry::Idempotent,
            write: false,
            targets: Vec::new(),
        }
    }

    /// A write with the given method and body; PATCH, PUT and DELETE are idempotent, POST is
    /// not unless [`Call::idempotent`] says so.
    pub fn write(
        method: Method,
        url: Url,
        body: Body,
        operation: impl Into<String>,
        object: impl Into<String>,
    ) -> Self {
        let retry = if method == Method::POST {
            Retry::RejectedOnly
        } else {
            Retry::Idempotent
        };
        Self {
            method,
            url,
            body,
            operation: operation.into(),
            object: object.into(),
            retry,
            write: true,
            targets: Vec::new(),
        }
    }

    pub fn idempotent(mut self) -> Self {
        self.retry = Retry::Idempotent;
        self
    }

    pub fn target(mut self, id: impl Into<String>) -> Self {
        self.targets.push(id.into());
        self
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Reads the provider's own error code and detail out of an error body.
pub type ErrorDecoder = fn(&[u8]) -> Option<(String, String)>;

/// A provider's HTTP client: auth, gate, guard and retries around reqwest.
#[derive(Clone)]
pub struct HttpClient {
    provider: ProviderName,
    client: reqwest::Client,
    auth: Auth,
    gate: Arc<Gate>,
    guard: Arc<WriteGuard>,
    backoff: Backoff,
    decode_error: ErrorDecoder,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.provider)
            .field("auth", &self.auth)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn new(
        provider: ProviderName,
        opts: &ClientOptions,
        auth: Auth,
        guard: Arc<WriteGuard>,
        decode_error: ErrorDecoder,
    ) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cwa/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Config {
                provider,
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            provider,
            client,
            auth,
            gate: Arc::new(Gate::new(
                provider,
                opts.concurrency.get(provider),
                opts.rate_limit_rps.get(provider),
            )),
            guard,
            backoff: Backoff::from_options(opts),
            decode_error,
        })
    }

    pub fn provider(&self) -> ProviderName {
        self.provider
    }

    pub fn guard(&self) -> &WriteGuard {
        &self.guard
    }

    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Sends a call, retrying as its [`Retry`] allows; a non-2xx answer becomes
    /// [`ProviderError::Api`] with the provider's own code and detail.
    pub async fn send(&self, call: Call) -> Result<Response, ProviderError> {
        if call.write {
            let path_ids = WriteGuard::path_ids(&call.url);
            self.guard.check(
                &call.object,
                path_ids
                    .iter()
                    .map(String::as_str)
                    .chain(call.targets.iter().map(String::as_str)),
            )?;
        }
        let call_ref = &call;
        retrying(
            &self.backoff,
            &call.operation,
            || self.attempt(call_ref),
            |failure| again(self.provider, call_ref.retry, failure),
        )
        .await
        .map_err(|f| self.error(&call, f))
    }

    /// Sends a call and decodes a JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, ProviderError> {
        self.decoded(call, |body| {
            serde_json::from_slice(body).map_err(|e| e.to_string())
        })
        .await
    }

    /// Sends a call and decodes the answer with `decode`. An idempotent call whose answer
    /// cannot be read (cut off, malformed) is sent again like any other failed attempt.
    pub async fn decoded<T>(
        &self,
        call: Call,
        decode: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, ProviderError> {
        /// A sent call that failed (already retried by `send`), or an answer not readable.
        enum Read {
            Sent(ProviderError),
            Unreadable(String),
        }
        let (call_ref, decode) = (&call, &decode);
        let read = retrying(
            &self.backoff,
            &call.operation,
            || async move {
                let resp = self.send(call_ref.clone()).await.map_err(Read::Sent)?;
                decode(&resp.body).map_err(Read::Unreadable)
            },
            |e| match e {
                Read::Unreadable(_) if call_ref.retry == Retry::Idempotent => Again::After(None),
                _ => Again::Never,
            },
        )
        .await;
        read.map_err(|e| match e {
            Read::Sent(e) => e,
            Read::Unreadable(detail) => ProviderError::Decode {
                provider: self.provider,
                operation: call.operation.clone(),
                object: call.object.clone(),
                detail,
            },
        })
    }

    async fn attempt(&self, call: &Call) -> Result<Response, Failure> {
        let _permit = self.gate.enter().await;
        let auth = self.auth.header(self.provider).map_err(Failure::Local)?;
        let mut req = self
            .client
            .request(call.method.clone(), call.url.clone())
            .header(AUTHORIZATION, auth);
        req = match &call.body {
            Body::Empty => req,
            Body::Json(v) => req.json(v),
            Body::Form(pairs) => req.form(pairs),
            Body::Protobuf(bytes) => req
                .header(CONTENT_TYPE, "application/protobuf")
                .body(bytes.clone()),
        };
        let started = Instant::now();
        let answer = async {
            let resp = req
                .send()
                .await
                .map_err(|e| Failure::Transport(describe_transport(&e)))?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = read_capped(resp, self.provider, call).await?;
            Ok((status, headers, body))
        }
        .await;
        log_request(self.provider, call, &answer, started.elapsed());
        let (status, headers, body) = answer?;
        self.gate.observe(
            Seen::Answer(status, &headers),
            server_wait(status, &headers),
        );
        if status.is_success() {
            Ok(Response {
                status,
                headers,
                body,
            })
        } else {
            Err(Failure::Status {
                status,
                headers,
                body,
            })
        }
    }

    fn error(&self, call: &Call, failure: Failure) -> ProviderError {
        match failure {
            Failure::Local(e) => e,
            Failure::Transport(detail) => ProviderError::Transport {
                provider: self.provider,
                operation: call.operation.clone(),
                object: call.object.clone(),
                detail,
            },
            Failure::Status { status, body, .. } => {
                let (code, detail) = (self.decode_error)(&body).unwrap_or_else(|| {
                    (
                        status.as_u16().to_string(),
                        status.canonical_reason().unwrap_or("error").to_string(),
                    )
                });
                ProviderError::Api {
                    provider: self.provider,
                    operation: call.operation.clone(),
                    object: call.object.clone(),
                    status: status.as_u16(),
                    code,
                    detail,
                }
            }
        }
    }
}

enum Failure {
    Local(ProviderError),
    Transport(String),
    Status {
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
    },
}

/// The most one answer may hold. The largest honest answer is one page of a list (a few MB);
/// a body that never ends would otherwise be read into memory until the machine gives out.
const MAX_BODY: usize = 64 << 20;

/// The body of `resp`, read until [`MAX_BODY`]; a larger one is an undecodable answer (never
/// retried: the next attempt would be as large).
async fn read_capped(
    mut resp: reqwest::Response,
    provider: ProviderName,
    call: &Call,
) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Failure::Transport(describe_transport(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Failure::Local(ProviderError::Decode {
                provider,
                operation: call.operation.clone(),
                object: call.object.clone(),
                detail: format!("the answer is larger than {} MiB", MAX_BODY >> 20),
            }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether a failed HTTP attempt may be sent again ([`Retry::allows`]), and after how long.
fn again(provider: ProviderName, retry: Retry, failure: &Failure) -> Again {
    match failure {
        Failure::Status {
            status, headers, ..
        } if retry.allows(provider, Some(*status)) => Again::After(server_wait(*status, headers)),
        Failure::Transport(_) if retry.allows(provider, None) => Again::After(None),
        _ => Again::Never,
    }
}

/// A transport error without its URL (which may carry query values) and without any header.
/// One line per provider request at `-vv` (`CWA_LOG=cwa::http=debug`): provider, method, path,
/// status and duration. Never the query, headers or bodies, where keys and passwords travel;
/// `-vvv` adds the sizes and the rate-limit headers the pacing follows.
fn log_request(
    provider: ProviderName,
    call: &Call,
    answer: &Result<(StatusCode, HeaderMap, Vec<u8>), Failure>,
    elapsed: std::time::Duration,
) {
    let ms = elapsed.as_millis() as u64;
    let (method, path) = (call.method.as_str(), call.url.path());
    match answer {
        Ok((status, headers, body)) => {
            tracing::debug!(target: "cwa::http", "{provider} {method} {path} -> {} in {ms} ms", status.as_u16());
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string()
            };
            tracing::trace!(
                target: "cwa::http",
                bytes = body.len(),
                ratelimit_remaining = %header("x-ratelimit-remaining"),
                retry_after = %header("retry-after"),
                "{provider} {method} {path} answer"
            );
        }
        Err(_) => {
            tracing::debug!(target: "cwa::http", "{provider} {method} {path} -> no answer in {ms} ms");
        }
    }
}

fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else {
        "the request failed"
    };
    let mut detail = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(max_retries: u32) -> Backoff {
        Backoff {
            max_retries,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            max_wait: Duration::from_millis(5),
        }
    }

    /// The one retry loop: a retryable failure is tried again until the budget is spent, a
    /// final one is not, and the server's wait is honoured (capped by `max_wait`).
    #[tokio::test]
    async fn retrying_spends_the_budget_only_on_retryable_failures() {
        let tries = std::sync::atomic::AtomicU32::new(0);
        let count = || {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Err::<(), u32>(503) }
        };
        let out = retrying(&quick(3), "t", count, |_| Again::After(None)).await;
        assert_eq!(
            (out, tries.swap(0, std::sync::atomic::Ordering::SeqCst)),
            (Err(503), 4)
        );
        let out = retrying(&quick(3), "t", count, |_| Again::Never).await;
        assert_eq!(
            (out, tries.swap(0, std::sync::atomic::Ordering::SeqCst)),
            (Err(503), 1)
        );
        let server = Some(Duration::from_secs(3600));
        let started = std::time::Instant::now();
        let out = retrying(&quick(1), "t", count, |_| Again::After(server)).await;
        assert_eq!(out, Err(503));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "max_wait caps Retry-After"
        );
        let mut left = 2;
        let flaky = || {
            left -= 1;
            let ok = left == 0;
            async move {
                if ok {
                    Ok(7)
                } else {
                    Err(429u32)
                }
            }
        };
        assert_eq!(
            retrying(&quick(3), "t", flaky, |_| Again::After(None)).await,
            Ok(7)
        );
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let p = ProviderName::Telnyx;
        assert!(check_base_url(p, "https://api.telnyx.com/v2").is_ok());
        assert!(check_base_url(p, "http://127.0.0.1:8080/v2").is_ok());
        assert!(check_base_url(p, "http://127.8.9.10").is_ok());
        assert!(check_base_url(p, "http://localhost:1").is_ok());
        assert!(check_base_url(p, "http://[::1]:9/").is_ok());
        assert!(check_base_url(p, "http://api.telnyx.com/v2").is_err());
        assert!(check_base_url(p, "http://10.0.0.1").is_err());
        assert!(check_base_url(p, "ftp://127.0.0.1").is_err());
    }

    #[test]
    fn join_keeps_the_base_path() {
        let base = Url::parse("http://127.0.0.1:9/v2").unwrap();
        assert_eq!(
            join(&base, "/phone_numbers?page[size]=250").as_str(),
            "http://127.0.0.1:9/v2/phone_numbers?page[size]=250"
        );
    }

    #[test]
    fn guard_checks_path_segments_and_targets() {
        let guard = WriteGuard::new(&["ST_Xa3Bp9aixRFP".to_string(), "PN1".to_string()]);
        let url =
            Url::parse("https://x/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1.json").unwrap();
        let ids = WriteGuard::path_ids(&url);
        assert!(matches!(
            guard.check("n", ids.iter().map(String::as_str)),
            Err(ProviderError::Protected { id, .. }) if id == "PN1"
        ));
        assert!(guard.check("t", ["ST_Xa3Bp9aixRFP"]).is_err());
        assert!(guard.check("t", ["ST_other", ""]).is_ok());
    }

    #[test]
    fn a_wait_too_large_for_a_duration_is_capped() {
        for (name, value) in [
            ("retry-after", "100000000000000000000"),
            ("retry-after", "1e20"),
            ("retry-after-ms", "1e23"),
            ("x-ratelimit-reset", "1e300"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(name, value.parse().unwrap());
            assert_eq!(
                server_wait(StatusCode::TOO_MANY_REQUESTS, &headers),
                Some(MAX_REPORTED_WAIT),
                "{name}: {value}"
            );
        }
        assert_eq!(reported_wait(1.5), Duration::from_millis(1500));
        let backoff = quick(3);
        assert!(backoff.waits_for(None) && backoff.waits_for(Some(backoff.max_wait)));
        assert!(!backoff.waits_for(Some(MAX_REPORTED_WAIT)));
    }

    #[test]
    fn server_wait_prefers_retry_after() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("3"));
        assert_eq!(
            server_wait(StatusCode::TOO_MANY_REQUESTS, &h),
            Some(Duration::from_secs(3))
        );
        assert_eq!(server_wait(StatusCode::SERVICE_UNAVAILABLE, &h), None);
        h.insert("retry-after", HeaderValue::from_static("1"));
        assert_eq!(
            server_wait(StatusCode::SERVICE_UNAVAILABLE, &h),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff {
            max_retries: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(800),
            max_wait: Duration::from_secs(60),
        };
        for attempt in 0..10 {
            let d = b.delay(attempt);
            assert!(d <= Duration::from_millis(800));
            let full = Duration::from_millis(100 * (1u64 << attempt.min(16)))
                .min(Duration::from_millis(800));
            assert!(d >= full / 2);
        }
        assert_eq!(
            b.wait(0, Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let a = Auth::Basic {
            user: "AC1".into(),
            password: SecretValue::new("tok-123"),
        };
        assert!(!format!("{a:?}").contains("tok-123"));
        let b = Auth::Bearer(SecretValue::new("KEY123"));
        assert!(!format!("{b:?}").contains("KEY123"));
    }
}
