//! Why a change failed, what to do about it, and whether a rerun can help.

use crate::providers::ProviderError;
use crate::state::StateError;

/// Why a change failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ApplyError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Provider(Box<ProviderError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error("refused to write {address} ({id}): it is protected")]
    #[diagnostic(
        code(cwa::apply::protected),
        help("protected ids are hard-locked; the plan file may have been edited")
    )]
    Protected { address: String, id: String },
    #[error(
        "{address}: the environment variable {variable} (a secret lines.toml names) is not set"
    )]
    #[diagnostic(
        code(cwa::apply::secret),
        help("export {variable} and run apply again")
    )]
    MissingSecret { address: String, variable: String },
    #[error("{address}: the value of {variable} is the value of {credential}, a credential cwa uses; refused to send it as a SIP secret")]
    #[diagnostic(
        code(cwa::apply::credential_as_secret),
        help("give {variable} a SIP password of its own; if it was ever sent anywhere, rotate {credential}")
    )]
    CredentialAsSecret {
        address: String,
        variable: String,
        credential: String,
    },
    #[error("{address}: depends on {missing}, which has no live id yet")]
    #[diagnostic(code(cwa::apply::unresolved))]
    Unresolved { address: String, missing: String },
    #[error("{address}: no client for {provider}")]
    #[diagnostic(code(cwa::apply::no_provider))]
    NoProvider { address: String, provider: String },
    #[error("{address}: the provider accepted the write but did not perform it: {field} is {actual}, expected {expected}")]
    #[diagnostic(
        code(cwa::apply::ignored_write),
        help(
            "the provider silently ignored part of the request; cwa recorded what is really live"
        )
    )]
    IgnoredWrite {
        address: String,
        field: String,
        expected: String,
        actual: String,
    },
}

impl ApplyError {
    /// What the operator should do about this failure, in one sentence.
    pub fn fix(&self) -> String {
        match self {
            Self::Provider(e) => provider_fix(e),
            Self::State(_) => "make state/ writable (or the state backend reachable); the journal keeps what was done, so the next run converges".into(),
            Self::Protected { .. } => "protected ids are never written: declare the object exactly as it is live, or leave it out of lines.toml".into(),
            Self::MissingSecret { variable, .. } => format!("export {variable} (lines.toml names it in a `*_env` key), then run `cwa apply` again"),
            Self::CredentialAsSecret { variable, credential, .. } => format!("give {variable} a SIP password of its own; if it was ever sent anywhere, rotate {credential}"),
            Self::Unresolved { missing, .. } => format!("{missing} must exist first; fix what failed for it, then run `cwa apply` again"),
            Self::NoProvider { provider, .. } => format!("set the {provider} credentials (or run with --sandbox), then run `cwa apply` again"),
            Self::IgnoredWrite { .. } => "the provider does not honour this field through its API: set it by hand in the provider's console, or change lines.toml to what is live".into(),
        }
    }

    /// Whether running apply again, with nothing changed, can succeed.
    pub fn rerun_helps(&self) -> bool {
        match self {
            Self::Provider(e) => provider_transient(e),
            _ => false,
        }
    }
}

/// A provider failure a plain rerun can get past: no answer (the journal looks the object up
/// again), a server error, rate limiting, or an object that disappeared (the next plan sees it).
fn provider_transient(e: &ProviderError) -> bool {
    match e {
        ProviderError::Api { status, .. } => *status >= 500 || *status == 429 || *status == 404,
        ProviderError::Transport { .. } | ProviderError::Decode { .. } => true,
        _ => false,
    }
}

fn provider_fix(e: &ProviderError) -> String {
    match e {
        ProviderError::Api { status, .. } if *status == 401 || *status == 403 => format!(
            "{} refused the credentials: check its API key (or account permissions), then run `cwa apply` again",
            provider_of(e)
        ),
        ProviderError::Api { status: 404, .. } => {
            "the object is gone from live: run `cwa apply` again, and the new plan re-creates it".into()
        }
        ProviderError::Api { status: 429, .. } => {
            "the provider is rate limiting: run `cwa apply` again later (or with a lower --parallelism)".into()
        }
        ProviderError::Api { status, .. } if *status >= 500 => {
            "the provider failed on its side: run `cwa apply` again; what was done is recorded".into()
        }
        ProviderError::Api { .. } => format!(
            "{} refused the request as declared: change the declaration in lines.toml so that it accepts it (its answer is above); a rerun unchanged fails the same way",
            provider_of(e)
        ),
        ProviderError::Transport { .. } | ProviderError::Decode { .. } => {
            "no usable answer arrived: run `cwa apply` again; the journal looks the object up before writing again".into()
        }
        ProviderError::MissingEnv { variable, .. } => format!("export {variable}, then run `cwa apply` again"),
        ProviderError::MissingEnvs { variables } => format!("export {variables}, then run `cwa apply` again"),
        ProviderError::Protected { .. } => "protected ids are never written: declare the object exactly as it is live".into(),
        ProviderError::IgnoredWrite { .. } => "the provider does not honour this field through its API: set it by hand, or declare what is live".into(),
        ProviderError::Config { .. } | ProviderError::Unsupported { .. } => {
            "change lines.toml (or the provider settings) as the message says, then run `cwa apply` again".into()
        }
    }
}

fn provider_of(e: &ProviderError) -> String {
    match e {
        ProviderError::Api { provider, .. }
        | ProviderError::Transport { provider, .. }
        | ProviderError::Decode { provider, .. }
        | ProviderError::MissingEnv { provider, .. }
        | ProviderError::Config { provider, .. }
        | ProviderError::IgnoredWrite { provider, .. }
        | ProviderError::Unsupported { provider, .. } => provider.to_string(),
        ProviderError::Protected { .. } | ProviderError::MissingEnvs { .. } => {
            "the provider".into()
        }
    }
}

impl From<ProviderError> for ApplyError {
    fn from(e: ProviderError) -> Self {
        Self::Provider(Box::new(e))
    }
}
