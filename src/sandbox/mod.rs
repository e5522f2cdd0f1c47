//! The sandbox: a faithful, stateful local emulator of the Telnyx v2, LiveKit SIP (Twirp) and
//! Twilio endpoints cwa uses, served on loopback. It is the embedded default (`cwa --sandbox`),
//! what `cwa sandbox serve` exposes to other programs, and what every test talks to over real
//! HTTP.
//!
//! One axum server with a single catch-all handler routes on (method, path segments):
//!
//! | Prefix | Goes to | Auth |
//! |---|---|---|
//! | `/v2/...` | [`telnyx::TelnyxState::handle`] (Telnyx API v2) | `Bearer` API key, else 401 / 10009 |
//! | `/twirp/livekit.SIP/{Method}` (any HTTP method) | [`livekit::LivekitState::handle`] | HS256 JWT |
//! | `/twirp/livekit.PhoneNumberService/{Method}` | [`livekit::LivekitState::handle`] ([`livekit::numbers`]) | HS256 JWT, `sip.admin` |
//! | `/2010-04-01/...`, `/v1/...` | [`twilio::TwilioState::handle`] (Core v2010, Trunking v1) | Basic, else 401 / 20003 |
//! | `GET /sandbox/world` | the whole world as JSON | none |
//! | `POST /sandbox/calls` `{"from","to"}` | [`calls::simulate`]: the call path, hop by hop | none |
//! | `GET`, `POST /sandbox/faults` | read or replace the [`faults::FaultConfig`] | none |
//! | `POST /sandbox/telnyx/invite` `{"from","to"}` | the SIP INVITE Telnyx would send ([`telnyx::TelnyxState::inbound_invite`]) | none |
//!
//! Every request is appended to `DIR/requests.jsonl` ([`RequestLogEntry`]: time, provider,
//! method, path without query, status, the id it targets, write flag; never bodies or
//! credentials). A request that changed the world is journaled and fsynced before it is
//! answered ([`store`]). Faults ([`faults`]) apply to provider routes only. Any other path
//! answers 404.
//!
//! Files in DIR (`.cwa/sandbox` or `$CWA_SANDBOX_DIR` for the embedded sandbox):
//!
//! | File | Holds |
//! |---|---|
//! | `world.json` | the last snapshot of the [`World`] |
//! | `journal.jsonl` | every write since that snapshot, replayed on start |
//! | `requests.jsonl` | the request log ([`read_request_log`]) |
//! | `faults.json` | optional [`FaultConfig`] read at start |
//! | `sandbox.lock` | the process serving DIR, and where ([`serving_url`]) |
//!
//! The providers' quirks the sandbox reproduces on purpose are listed in [`telnyx`] (flat
//! `outbound_voice_profile_id` ignored, purchase-pending numbers, numbers without `+` on the
//! SIP side) and in [`livekit`].

pub mod calls;
pub mod contract;
pub mod faults;
pub mod http;
pub mod inventory;
pub mod limits;
pub mod livekit;
mod server;
pub mod store;
pub mod telnyx;
pub mod twilio;
pub mod world;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use faults::{FaultConfig, FaultKind, FaultRule};
pub use store::{has_world, serving_url};
pub use world::{synthetic_lines, SyntheticLine, World};

/// The sandbox's fake Telnyx API key.
pub const TELNYX_API_KEY: &str = "KEYsandbox0000000000000000000000";
/// The sandbox's fake LiveKit key and secret.
pub const LIVEKIT_API_KEY: &str = "APIsandbox";
pub const LIVEKIT_API_SECRET: &str = "sandbox-livekit-secret-0123456789abcdef";
/// The runbook's Twilio account and the sandbox's fake token.
pub const TWILIO_ACCOUNT_SID: &str = "AC0c5a3f6e2b8d4e7f9a1b3c5d7e9f0a2b";
pub const TWILIO_AUTH_TOKEN: &str = "sandbox-twilio-token";
/// Fake SIP passwords the seeded connections and trunks carry.
pub const TELNYX_FQDN_PASSWORD: &str = "sandbox-fqdn-secret";
pub const TELNYX_OUTBOUND_SIP_PASSWORD: &str = "sandbox-outbound-secret";

/// The request log's file name in DIR.
pub const REQUEST_LOG: &str = "requests.jsonl";
/// Fault rules read at start from DIR.
pub const FAULTS_FILE: &str = "faults.json";

/// What went wrong starting, running or stopping the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("unknown world `{0}`: expected runbook, empty or synthetic:N")]
    UnknownWorld(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot encode the world: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox server failed: {0}")]
    Server(String),
    #[error("{dir} is in use by another sandbox (pid {pid}{}); stop it first", url.as_deref().map(|u| format!(", serving {u}")).unwrap_or_default())]
    Busy {
        dir: PathBuf,
        pid: u32,
        /// Where that sandbox serves, when it says.
        url: Option<String>,
    },
}

impl SandboxError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    pub listen: SocketAddr,
    /// `runbook`, `empty` or `synthetic:N`: used only when DIR holds no world yet.
    pub world: String,
    /// Where the world, its journal and the request log live.
    pub dir: PathBuf,
    pub latency_ms: u64,
    /// Share of provider requests answered 500/503.
    pub fault_rate: f64,
    /// Requests per second per provider above which 429 is answered.
    pub rate_limit: Option<f64>,
    /// Seed of the fault RNG.
    pub seed: u64,
    /// Targeted faults (lost response, hang, malformed, error), added to DIR/faults.json's.
    pub faults: Vec<FaultRule>,
    /// Strict mode ([`contract`]): every request and answer held to the providers' spec
    /// extracts in `tests/contracts/`. On when `CWA_SANDBOX_STRICT=1`; the test suite turns it on.
    pub strict: bool,
    /// The providers' own limits ([`limits`]); from `CWA_SANDBOX_LIMITS` when `None`.
    pub limits: Option<limits::LimitConfig>,
}

impl SandboxOptions {
    /// Loopback on a free port, no faults.
    pub fn new(dir: impl Into<PathBuf>, world: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            world: world.to_string(),
            dir: dir.into(),
            latency_ms: 0,
            fault_rate: 0.0,
            rate_limit: None,
            seed: 0,
            faults: Vec::new(),
            strict: strict_from_env(),
            limits: None,
        }
    }

    /// The fault configuration these options ask for, over DIR/faults.json's when present.
    fn fault_config(&self) -> Result<FaultConfig, SandboxError> {
        let path = self.dir.join(FAULTS_FILE);
        let mut config = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<FaultConfig>(&bytes).map_err(|e| {
                SandboxError::Corrupt {
                    path: path.clone(),
                    detail: e.to_string(),
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FaultConfig::default(),
            Err(e) => return Err(SandboxError::io(&path, e)),
        };
        if self.latency_ms > 0 {
            config.latency_ms = self.latency_ms;
        }
        if self.fault_rate > 0.0 {
            config.error_rate = self.fault_rate;
        }
        if self.rate_limit.is_some() {
            config.rate_limit = self.rate_limit;
        }
        if self.seed != 0 {
            config.seed = self.seed;
        }
        config.rules.extend(self.faults.iter().cloned());
        Ok(config)
    }
}

/// The environment variable that turns strict mode on for every sandbox this process starts
/// (the embedded one, `cwa sandbox serve`).
pub const STRICT_ENV: &str = "CWA_SANDBOX_STRICT";

/// Whether [`STRICT_ENV`] asks for strict mode (`1`, `true`, `yes`).
pub fn strict_from_env() -> bool {
    std::env::var(STRICT_ENV)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// A running sandbox. Stop it with [`Sandbox::shutdown`] to compact its world on disk
/// (dropping it instead is safe too: every write is already journaled).
pub struct Sandbox {
    addr: SocketAddr,
    server: server::Running,
}

impl Sandbox {
    /// Loads the world kept in DIR (snapshot plus journal) or seeds `opts.world`, then serves.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let faults = opts.fault_config()?;
        let limits = match opts.limits.clone() {
            Some(limits) => limits,
            None => limits::LimitConfig::from_env().map_err(SandboxError::Server)?,
        };
        let dir = opts.dir.clone();
        let seed = opts.world.clone();
        let loaded = tokio::task::spawn_blocking(move || server::load_world(&dir, &seed))
            .await
            .map_err(|e| SandboxError::Server(e.to_string()))??;
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: opts.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: opts.listen,
            source,
        })?;
        let server = server::serve(
            listener,
            addr,
            &opts.dir,
            loaded,
            (faults, limits),
            opts.strict,
        )?;
        Ok(Sandbox { addr, server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The environment that points cwa (or an SDK) at this sandbox, with its fake credentials.
    pub fn env(&self) -> Vec<(String, String)> {
        env_for(&self.base_url())
    }

    /// The live world, for tests and the embedded mode. Hold the lock briefly: requests wait
    /// on it. Changes made through it are not journaled.
    pub fn world(&self) -> Arc<Mutex<World>> {
        self.server.world()
    }

    /// The fault configuration in force now (rule counts reflect what was used).
    pub fn faults(&self) -> FaultConfig {
        self.server.faults()
    }

    /// Replaces the fault configuration, as `POST /sandbox/faults` does.
    pub fn set_faults(&self, config: FaultConfig) {
        self.server.set_faults(config);
    }

    /// Stops serving, waits for in-flight requests, and compacts the world into a snapshot.
    pub async fn shutdown(self) -> Result<(), SandboxError> {
        self.server.stop().await
    }
}

/// The environment that points cwa (or an SDK) at a sandbox serving `base_url`
/// (`http://127.0.0.1:PORT`), e.g. one another process serves ([`serving_url`]).
pub fn env_for(base_url: &str) -> Vec<(String, String)> {
    let base = base_url.trim_end_matches('/').to_string();
    [
        ("TELNYX_BASE_URL", format!("{base}/v2")),
        ("TELNYX_API_KEY", TELNYX_API_KEY.to_string()),
        ("LIVEKIT_URL", base.clone()),
        ("LIVEKIT_API_KEY", LIVEKIT_API_KEY.to_string()),
        ("LIVEKIT_API_SECRET", LIVEKIT_API_SECRET.to_string()),
        ("TWILIO_ACCOUNT_SID", TWILIO_ACCOUNT_SID.to_string()),
        ("TWILIO_AUTH_TOKEN", TWILIO_AUTH_TOKEN.to_string()),
        ("TWILIO_API_BASE_URL", base.clone()),
        ("TWILIO_TRUNKING_BASE_URL", base),
        ("TELNYX_FQDN_PASSWORD", TELNYX_FQDN_PASSWORD.to_string()),
        (
            "TELNYX_OUTBOUND_SIP_PASSWORD",
            TELNYX_OUTBOUND_SIP_PASSWORD.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One line of `DIR/requests.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    /// RFC 3339, milliseconds, UTC.
    pub time: String,
    /// `telnyx`, `livekit`, `twilio`, `sandbox` (control routes) or `unknown`.
    pub provider: String,
    pub method: String,
    /// The path without its query string.
    pub path: String,
    /// The status sent; 0 when no answer was sent (lost response, hang).
    pub status: u16,
    /// The object the request addressed or created: a path id, a created id, or the Twirp
    /// body's `sip_trunk_id` / `sip_dispatch_rule_id`. Twilio sub-resources name their trunk.
    pub resource_id: Option<String>,
    /// Whether the request was a write (whatever its outcome).
    pub write: bool,
}

/// Reads every entry of `DIR/requests.jsonl` (none if it does not exist yet). A last line
/// still being written is skipped.
pub fn read_request_log(dir: &Path) -> Result<Vec<RequestLogEntry>, SandboxError> {
    let path = dir.join(REQUEST_LOG);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SandboxError::io(&path, e)),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut entries = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(entry) => entries.push(entry),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => {
                return Err(SandboxError::Corrupt {
                    path: path.clone(),
                    detail: format!("line {}: {e}", i + 1),
                })
            }
        }
    }
    Ok(entries)
}

/// Where the embedded sandbox keeps its world: `$CWA_SANDBOX_DIR`, else `.cwa/sandbox` in the
/// directory of lines.toml (`config`), so every command run on that file, from wherever,
/// shares one world.
pub fn embedded_dir(config: &Path) -> PathBuf {
    std::env::var_os("CWA_SANDBOX_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let beside = config.parent().filter(|p| !p.as_os_str().is_empty());
            beside.unwrap_or(Path::new(".")).join(".cwa/sandbox")
        })
}

/// Throws away the world kept in `dir` and seeds `world` there instead.
pub fn reset(dir: &Path, world: &str) -> Result<(), SandboxError> {
    let fresh = World::seeded(world)?;
    store::replace_world(dir, &fresh)
}
