//! A sandbox started for one test, and requests shaped the way each provider's clients send
//! them. Reached as `crate::common::sandbox`.
#![allow(dead_code)]

use std::path::Path;

use cwa::sandbox::{
    read_request_log, RequestLogEntry, Sandbox, SandboxOptions, LIVEKIT_API_KEY,
    LIVEKIT_API_SECRET, TELNYX_API_KEY, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

/// A running sandbox in its own temporary directory, with an HTTP client.
pub struct TestSandbox {
    pub dir: tempfile::TempDir,
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
}

impl TestSandbox {
    /// Starts `world` (`runbook`, `empty`, `synthetic:N`) with no faults.
    pub async fn start(world: &str) -> Self {
        Self::start_with(world, |_| {}).await
    }

    /// Starts `world` with options adjusted by `adjust` (faults, latency, seed, …), in strict
    /// mode (every request and answer held to `tests/contracts/`) unless `adjust` turns it off.
    pub async fn start_with(world: &str, adjust: impl FnOnce(&mut SandboxOptions)) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut options = strict_options(dir.path(), world);
        adjust(&mut options);
        let sandbox = Sandbox::start(options).await.expect("the sandbox starts");
        Self {
            dir,
            sandbox,
            http: reqwest::Client::new(),
        }
    }

    /// Stops the sandbox cleanly and starts a new one on the same directory.
    pub async fn restart(self) -> Self {
        let Self { dir, sandbox, http } = self;
        sandbox.shutdown().await.expect("a clean shutdown");
        let sandbox = Sandbox::start(strict_options(dir.path(), "empty"))
            .await
            .expect("the sandbox restarts");
        Self { dir, sandbox, http }
    }

    /// Abandons the sandbox without a clean shutdown (no snapshot), as a killed process
    /// would, and starts a new one on the same directory.
    pub async fn crash_and_restart(self) -> Self {
        let Self { dir, sandbox, http } = self;
        drop(sandbox);
        let sandbox = Sandbox::start(strict_options(dir.path(), "empty"))
            .await
            .expect("the sandbox restarts");
        Self { dir, sandbox, http }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    /// A Telnyx request (`path` under `/v2`) with the sandbox's Bearer key.
    pub fn telnyx(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(&format!("/v2{path}")))
            .bearer_auth(TELNYX_API_KEY)
    }

    /// A Twilio request (full path) with the account's Basic credentials.
    pub fn twilio(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(path))
            .basic_auth(TWILIO_ACCOUNT_SID, Some(TWILIO_AUTH_TOKEN))
    }

    /// `/2010-04-01/Accounts/{AC}` + `rest`.
    pub fn twilio_account_path(rest: &str) -> String {
        format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}{rest}")
    }

    /// A LiveKit Twirp call in protobuf-JSON with a fresh admin token.
    pub fn twirp_json(&self, method: &str, body: &Value) -> RequestBuilder {
        self.http
            .post(self.url(&format!("/twirp/livekit.SIP/{method}")))
            .bearer_auth(livekit_admin_token())
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// `GET /sandbox/world`.
    pub async fn world_json(&self) -> Value {
        self.http
            .get(self.url("/sandbox/world"))
            .send()
            .await
            .expect("the world answers")
            .json()
            .await
            .expect("the world is JSON")
    }

    pub fn log(&self) -> Vec<RequestLogEntry> {
        read_request_log(self.dir()).expect("a readable request log")
    }
}

/// Sandbox options for `dir` and `world` with strict mode on: the whole suite talks to a
/// sandbox that refuses any request its provider's published spec does not allow.
pub fn strict_options(dir: &Path, world: &str) -> SandboxOptions {
    let mut options = SandboxOptions::new(dir, world);
    options.strict = true;
    options
}

/// An HS256 token with the `sip.admin` grant, as LiveKit's SDKs mint them.
pub fn livekit_admin_token() -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": LIVEKIT_API_KEY,
        "nbf": now,
        "exp": now + 600,
        "sip": {"admin": true},
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(LIVEKIT_API_SECRET.as_bytes()),
    )
    .expect("a signed token")
}

/// The status and JSON body of an answer (`Value::Null` for an empty body).
pub async fn json_of(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a readable body");
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {bytes:?}"));
    (status, body)
}

/// Sends and returns status and JSON body.
pub async fn send(request: RequestBuilder) -> (u16, Value) {
    json_of(request.send().await.expect("an answer")).await
}

/// The first Telnyx error code of an error body.
pub fn telnyx_code(body: &Value) -> &str {
    body["errors"][0]["code"].as_str().unwrap_or_default()
}
