//! The one trait the planner and executor use to read and write live services. Telnyx,
//! LiveKit and Twilio types appear only inside the modules below; everything crossing this
//! boundary is a [`crate::model`] type.
//!
//! [`connect`] builds the clients a run needs from an [`Env`] and [`ClientOptions`] (timeouts,
//! retries, per-provider concurrency and request rate, the Twilio write policy and the
//! protected ids). Every call goes through [`http`]: retries with backoff on 429/5xx/lost
//! connections for idempotent calls only, `Retry-After`, the hard lock on protected ids, and
//! plain http only on loopback. A create is never blindly resent: after a lost answer the
//! provider's own [`Provider::find_created`] runs first ([`post_once`]).

mod common;
pub mod http;
pub mod livekit;
pub mod pacing;
pub mod telnyx;
pub mod twilio;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{Kind, LiveObject, ProviderName, Spec};

/// What went wrong talking to a provider. Carries the provider, the operation, the object and
/// the provider's own code and detail; never a secret.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ProviderError {
    #[error("{provider}: {operation} {object}: HTTP {status} {code}: {detail}")]
    #[diagnostic(code(cwa::provider::api))]
    Api {
        provider: ProviderName,
        operation: String,
        object: String,
        status: u16,
        code: String,
        detail: String,
    },
    #[error("{provider}: {operation} {object}: {detail}")]
    #[diagnostic(code(cwa::provider::transport), help("the call may or may not have reached the provider; cwa looks the object up before retrying a write"))]
    Transport {
        provider: ProviderName,
        operation: String,
        object: String,
        detail: String,
    },
    #[error("{provider}: {operation} {object}: unexpected answer: {detail}")]
    #[diagnostic(code(cwa::provider::decode))]
    Decode {
        provider: ProviderName,
        operation: String,
        object: String,
        detail: String,
    },
    #[error("{provider}: the environment variable {variable} is not set")]
    #[diagnostic(
        code(cwa::provider::env),
        help("export {variable}, or run the command with --sandbox")
    )]
    MissingEnv {
        provider: ProviderName,
        variable: String,
    },
    /// Several credentials missing at once: all named in one run, not one per run.
    #[error("these environment variables are not set: {variables}")]
    #[diagnostic(
        code(cwa::provider::env),
        help("export each of them, or run the command with --sandbox")
    )]
    MissingEnvs { variables: String },
    #[error("{provider}: {detail}")]
    #[diagnostic(code(cwa::provider::config))]
    Config {
        provider: ProviderName,
        detail: String,
    },
    #[error("refused to write {object} ({id}): it is protected")]
    #[diagnostic(
        code(cwa::provider::protected),
        help("protected ids are hard-locked; no command of cwa writes to them")
    )]
    Protected { object: String, id: String },
    #[error("{provider}: {operation} {object}: the write was accepted but did not take effect: {field} is {actual}, expected {expected}")]
    #[diagnostic(code(cwa::provider::ignored_write))]
    IgnoredWrite {
        provider: ProviderName,
        operation: String,
        object: String,
        field: String,
        expected: String,
        actual: String,
    },
    #[error("{provider}: {operation} {object}: {detail}")]
    #[diagnostic(code(cwa::provider::unsupported))]
    Unsupported {
        provider: ProviderName,
        operation: String,
        object: String,
        detail: String,
    },
}

impl ProviderError {
    /// True when the request may have been carried out although no readable answer arrived,
    /// so a non-idempotent write must be looked up before it is tried again.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Decode { .. } => true,
            Self::Api {
                status: 429,
                provider,
                ..
            } => !pacing::unprocessed_on_429(*provider),
            Self::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// True for a 404 from the provider.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }
}

/// A write as the executor hands it to a provider: references already translated to live ids,
/// numbers resolved, secrets resolved to values (in memory only).
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// The address the write is for, for error messages.
    pub object: String,
    pub spec: Spec,
    /// An idempotency reference recorded in the journal before the call (Telnyx
    /// `customer_reference` on number orders), so a lost answer can be found again.
    pub reference: String,
}

/// The idempotency reference of a create (sent as Telnyx `customer_reference` on a number
/// order), derived from what every machine applying this state agrees on: the state's
/// lineage, the address, and, when the create replaces an owned object, that object's id (so
/// a replacement is never taken for the object it replaces). Not from the run or the journal:
/// a CI retry on another machine, or a second checkout of the same state, derives the same
/// reference and finds the order instead of buying again. A hash, so it names no church.
pub fn create_reference(lineage: &str, address: &str, replacing: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"cwa-create\0");
    h.update(lineage.as_bytes());
    h.update(b"\0");
    h.update(address.as_bytes());
    if let Some(id) = replacing {
        h.update(b"\0replacing\0");
        h.update(id.as_bytes());
    }
    format!("cwa-{}", &hex::encode(h.finalize())[..24])
}

/// A client for one live service.
#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> ProviderName;

    /// Reads every object of the kinds this provider manages, all pages, concurrently where
    /// the service allows.
    async fn refresh(&self) -> Result<Vec<LiveObject>, ProviderError>;

    /// Reads one object back, `None` when it does not exist.
    async fn read(&self, kind: Kind, id: &str) -> Result<Option<LiveObject>, ProviderError>;

    /// Creates an object. For an `auto` number this searches, orders, waits for the order to
    /// complete and binds the number, returning the number as it is then.
    async fn create(&self, req: &WriteRequest) -> Result<LiveObject, ProviderError>;

    /// Changes an object in place to match `req.spec`; `before` is what the object was.
    async fn update(
        &self,
        id: &str,
        before: &Spec,
        req: &WriteRequest,
    ) -> Result<LiveObject, ProviderError>;

    /// Deletes an object (for a number: releases it, which is irreversible).
    async fn delete(&self, kind: Kind, id: &str) -> Result<(), ProviderError>;

    /// Finds an object created with the given idempotency reference, after a lost answer.
    /// Providers without references search by the spec's natural key instead.
    async fn find_created(&self, req: &WriteRequest) -> Result<Option<LiveObject>, ProviderError>;

    /// Whether this provider sells `number` now (one availability lookup), so that plan can
    /// refuse an order that cannot succeed; `None` for a provider cwa buys no numbers from.
    async fn sells(&self, _number: &crate::model::E164) -> Result<Option<bool>, ProviderError> {
        Ok(None)
    }

    /// What an `"auto"` number's area code offers now (one search), so that plan can say when
    /// only best-effort offers exist; `None` for a provider cwa buys no numbers from.
    async fn area_offers(
        &self,
        _country: &str,
        _area_code: &str,
    ) -> Result<Option<AreaOffers>, ProviderError> {
        Ok(None)
    }

    /// Holds a number of the area code for this account (the first reservable exact offer,
    /// friendly endings first), so it can be shown before it is bought (`cwa add --reserve`);
    /// `None` for a provider cwa reserves nothing at.
    async fn reserve(
        &self,
        _country: &str,
        _area_code: &str,
        _endings: &[String],
        _reference: &str,
    ) -> Result<Option<Reservation>, ProviderError> {
        Ok(None)
    }

    /// This account's reservations of `number`, newest first (so plan can say why a reserved
    /// number can no longer be bought); `None` for a provider cwa reserves nothing at.
    async fn reservations_of(
        &self,
        _number: &crate::model::E164,
    ) -> Result<Option<Vec<Reservation>>, ProviderError> {
        Ok(None)
    }
}

/// A number held for this account until it is ordered (Telnyx `number_reservations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub number: crate::model::E164,
    /// When the hold lapses, as the provider reports it (`expired_at`, RFC 3339).
    pub expires_at: String,
}

/// The offers of one area code search: how many are exact (in the area code, not
/// best-effort), and the best-effort ones cwa never buys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AreaOffers {
    pub exact: usize,
    pub best_effort: Vec<String>,
}

/// The three providers, as one value the planner and executor pass around.
#[derive(Clone)]
pub struct Providers {
    pub telnyx: Option<Arc<dyn Provider>>,
    pub livekit: Option<Arc<dyn Provider>>,
    pub twilio: Option<Arc<dyn Provider>>,
    /// The hard lock every client of this run shares; a refresh teaches it what live holds.
    pub lock: crate::protection::Shared,
}

impl Providers {
    pub fn get(&self, name: ProviderName) -> Option<&Arc<dyn Provider>> {
        match name {
            ProviderName::Telnyx => self.telnyx.as_ref(),
            ProviderName::Livekit => self.livekit.as_ref(),
            ProviderName::Twilio => self.twilio.as_ref(),
        }
    }

    pub fn for_kind(&self, kind: Kind) -> Option<&Arc<dyn Provider>> {
        self.get(kind.provider())
    }
}

/// A snapshot of the environment variables cwa reads (credentials and base URLs), so that the
/// embedded sandbox can point providers at itself without touching the process environment.
#[derive(Clone, Default)]
pub struct Env {
    vars: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for Env {
    /// Names only: the values are credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

/// Every variable cwa reads for providers.
pub const ENV_VARS: [&str; 9] = [
    "TELNYX_API_KEY",
    "TELNYX_BASE_URL",
    "LIVEKIT_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "TWILIO_TRUNKING_BASE_URL",
];

impl Env {
    /// Reads the provider variables from the process environment.
    pub fn from_process() -> Self {
        let vars = ENV_VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Self { vars }
    }

    /// An environment holding exactly these pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The variable, or an error naming it and the provider that needs it.
    pub fn require(&self, provider: ProviderName, name: &str) -> Result<&str, ProviderError> {
        self.get(name).ok_or_else(|| ProviderError::MissingEnv {
            provider,
            variable: name.to_string(),
        })
    }

    /// Every value, so output can be scrubbed of them.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.vars.values().map(String::as_str)
    }
}

/// One value per provider (concurrency limits, request rates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerProvider<T> {
    pub telnyx: T,
    pub livekit: T,
    pub twilio: T,
}

impl<T: Copy> PerProvider<T> {
    pub fn get(&self, name: ProviderName) -> T {
        match name {
            ProviderName::Telnyx => self.telnyx,
            ProviderName::Livekit => self.livekit,
            ProviderName::Twilio => self.twilio,
        }
    }
}

/// How the provider clients behave: timeouts, retries, limits, policy and hard locks.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of one HTTP attempt.
    pub timeout: Duration,
    /// Retries after the first attempt of a retryable call (429, 5xx, lost connection).
    pub max_retries: u32,
    /// First backoff step; it doubles per retry, with jitter, up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Calls in flight at once, per provider; for Twilio, which limits concurrency, where the
    /// pacing starts before it follows Twilio's 429s ([`pacing`]).
    pub concurrency: PerProvider<usize>,
    /// The request rate each provider starts at before its own answers move it ([`pacing`]:
    /// Telnyx's `x-ratelimit-*` figures, LiveKit's 429s); 0 switches rate pacing off. Twilio
    /// is paced by concurrency alone.
    pub rate_limit_rps: PerProvider<f64>,
    /// `[policy] twilio_writes`: Twilio objects are read-only unless this is true.
    pub twilio_writes: bool,
    /// Ids (or numbers) no write may target; refused before a request leaves the process.
    pub protected_ids: Vec<String>,
    /// The run's shared lock (built from `protected_ids` when absent), which learns from
    /// each refresh what routes and feeds the protected objects.
    pub lock: Option<crate::protection::Shared>,
    /// How long to wait for a Telnyx number order to complete: polls, and the first interval
    /// (it doubles up to 5 s).
    pub order_poll_attempts: u32,
    pub order_poll_interval: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_retries: 5,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(8),
            concurrency: PerProvider {
                telnyx: 8,
                livekit: 4,
                twilio: 4,
            },
            rate_limit_rps: PerProvider {
                telnyx: 20.0,
                livekit: 10.0,
                twilio: 20.0,
            },
            twilio_writes: false,
            protected_ids: Vec::new(),
            lock: None,
            order_poll_attempts: 30,
            order_poll_interval: Duration::from_millis(500),
        }
    }
}

/// Builds the clients for the providers asked for. A missing variable is an error only for a
/// provider in `which`.
pub fn connect(
    env: &Env,
    opts: &ClientOptions,
    which: &[ProviderName],
) -> Result<Providers, ProviderError> {
    let wanted = |p: ProviderName| which.contains(&p);
    missing_credentials(env, which)?;
    let lock = opts.lock.clone().unwrap_or_else(|| {
        crate::protection::Shared::new(crate::protection::Lock::new(&opts.protected_ids))
    });
    let opts = &ClientOptions {
        lock: Some(lock.clone()),
        ..opts.clone()
    };
    let telnyx = if wanted(ProviderName::Telnyx) {
        Some(Arc::new(telnyx::TelnyxProvider::from_env(env, opts)?) as Arc<dyn Provider>)
    } else {
        None
    };
    let livekit = if wanted(ProviderName::Livekit) {
        Some(Arc::new(livekit::LivekitProvider::from_env(env, opts)?) as Arc<dyn Provider>)
    } else {
        None
    };
    let twilio = if wanted(ProviderName::Twilio) {
        Some(Arc::new(twilio::TwilioProvider::from_env(env, opts)?) as Arc<dyn Provider>)
    } else {
        None
    };
    Ok(Providers {
        telnyx,
        livekit,
        twilio,
        lock,
    })
}

/// Every required variable of every provider in `which` that `env` lacks, as one error (a
/// single one keeps the error that names its provider).
fn missing_credentials(env: &Env, which: &[ProviderName]) -> Result<(), ProviderError> {
    let mut missing: Vec<(ProviderName, &str)> = ProviderName::ALL
        .into_iter()
        .filter(|p| which.contains(p))
        .flat_map(|p| required_env(p).iter().map(move |v| (p, *v)))
        .filter(|(_, v)| env.get(v).is_none())
        .collect();
    match missing.len() {
        0 => Ok(()),
        1 => {
            let (provider, variable) = missing.remove(0);
            Err(ProviderError::MissingEnv {
                provider,
                variable: variable.to_string(),
            })
        }
        _ => Err(ProviderError::MissingEnvs {
            variables: missing
                .iter()
                .map(|(p, v)| format!("{v} ({p})"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The variables a provider's client cannot start without.
pub fn required_env(provider: ProviderName) -> &'static [&'static str] {
    match provider {
        ProviderName::Telnyx => telnyx::REQUIRED_ENV,
        ProviderName::Livekit => livekit::REQUIRED_ENV,
        ProviderName::Twilio => twilio::REQUIRED_ENV,
    }
}

/// Sends a non-idempotent write (a create, a number order) without ever blindly repeating it:
/// when the answer is lost (a connection error or a 5xx), `find` looks for what the first
/// attempt may have made, and only if nothing is found is the write sent again. The attempts
/// go through the one retry loop ([`http::retrying`]).
pub(crate) async fn post_once<T, P, PFut, F, FFut>(
    backoff: http::Backoff,
    post: P,
    find: F,
) -> Result<T, ProviderError>
where
    P: Fn() -> PFut,
    PFut: Future<Output = Result<T, ProviderError>>,
    F: Fn() -> FFut,
    FFut: Future<Output = Result<Option<T>, ProviderError>>,
{
    /// Why an attempt did not make the object: its answer was lost and nothing was found
    /// (send again), or a final failure (the post's, or the look-up's).
    enum Missed {
        Lost(ProviderError),
        Final(ProviderError),
    }
    let (post, find) = (&post, &find);
    let attempt = || async move {
        match post().await {
            Ok(made) => Ok(made),
            Err(e) if e.outcome_unknown() => {
                tracing::debug!(error = %e, "answer to a create was lost; looking it up");
                match find().await {
                    Ok(Some(found)) => Ok(found),
                    Ok(None) => Err(Missed::Lost(e)),
                    Err(f) => Err(Missed::Final(f)),
                }
            }
            Err(e) => Err(Missed::Final(e)),
        }
    };
    let again = |m: &Missed| match m {
        Missed::Lost(_) => http::Again::After(None),
        Missed::Final(_) => http::Again::Never,
    };
    http::retrying(&backoff, "create", attempt, again)
        .await
        .map_err(|m| match m {
            Missed::Lost(e) | Missed::Final(e) => e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> http::Backoff {
        http::Backoff {
            max_retries: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
            max_wait: Duration::from_millis(4),
        }
    }

    fn lost() -> ProviderError {
        ProviderError::Transport {
            provider: ProviderName::Telnyx,
            operation: "order".into(),
            object: "n".into(),
            detail: "connection reset".into(),
        }
    }

    #[tokio::test]
    async fn post_once_finds_before_resending() {
        let posts = std::sync::atomic::AtomicU32::new(0);
        let got = post_once(
            quick(),
            || async {
                posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err::<u32, _>(lost())
            },
            || async { Ok(Some(7)) },
        )
        .await
        .unwrap();
        assert_eq!(got, 7);
        assert_eq!(posts.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn post_once_resends_only_when_nothing_was_made() {
        let posts = std::sync::atomic::AtomicU32::new(0);
        let got = post_once(
            quick(),
            || async {
                let n = posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n == 0 {
                    Err(lost())
                } else {
                    Ok(n)
                }
            },
            || async { Ok(None) },
        )
        .await
        .unwrap();
        assert_eq!(got, 1);
    }

    #[test]
    fn create_references_depend_on_lineage_address_and_replaced_id_only() {
        let a = create_reference("L1", "telnyx_number.grace", None);
        assert_eq!(a, create_reference("L1", "telnyx_number.grace", None));
        assert!(a.starts_with("cwa-") && a.len() == 28, "{a}");
        assert_ne!(a, create_reference("L2", "telnyx_number.grace", None));
        assert_ne!(a, create_reference("L1", "telnyx_number.hope", None));
        assert_ne!(
            a,
            create_reference("L1", "telnyx_number.grace", Some("123"))
        );
    }

    #[test]
    fn missing_env_only_for_needed_providers() {
        let env = Env::from_pairs([("TELNYX_API_KEY", "k")]);
        let opts = ClientOptions::default();
        let p = connect(&env, &opts, &[ProviderName::Telnyx]).unwrap();
        assert!(p.telnyx.is_some() && p.livekit.is_none());
        let err = connect(&env, &opts, &[ProviderName::Livekit])
            .err()
            .unwrap();
        assert!(
            matches!(err, ProviderError::MissingEnvs { ref variables }
                if variables == "LIVEKIT_URL (livekit), LIVEKIT_API_KEY (livekit), LIVEKIT_API_SECRET (livekit)"),
            "every missing variable is named at once: {err}"
        );
        let env = Env::from_pairs([
            ("LIVEKIT_URL", "http://127.0.0.1:9"),
            ("LIVEKIT_API_KEY", "k"),
        ]);
        let err = connect(&env, &opts, &[ProviderName::Livekit])
            .err()
            .unwrap();
        assert!(
            matches!(err, ProviderError::MissingEnv { ref variable, .. } if variable == "LIVEKIT_API_SECRET")
        );
    }
}
