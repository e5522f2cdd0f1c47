//! The pipeline every command runs: load lines.toml -> load state -> refresh live -> plan.
//!
//! A [`Session`] is one command's connection to the world: the environment (or the embedded
//! sandbox standing in for it), lines.toml, state and the provider clients. [`pipeline`]
//! turns them into a plan; plan, apply, drift and check call it, and so do the benchmarks,
//! so what is measured and what is run are the same code. Nothing here prints: lines.toml's
//! lint warnings are handed, once per session, to the view `commands` installs
//! ([`on_lint_warnings`]).

mod applying;
mod pipeline;
pub mod preconditions;
mod refused;

pub use applying::{not_applied, Certified, ToApply};
pub use pipeline::{plan_against, refresh, Planned};
pub use refused::{plan_errors, PlanErrors};

use miette::{miette, IntoDiagnostic, WrapErr};

use crate::cli::GlobalArgs;
use crate::config::{self, Loaded};
use crate::model::{Desired, Kind, ProviderName, SecretSource};
use crate::providers::{self, ClientOptions, Env, Providers};
use crate::sandbox::{self, Sandbox, SandboxOptions};
use crate::state::{State, StateStore};

/// One command's connection to the world.
pub struct Session {
    pub global: GlobalArgs,
    pub env: Env,
    pub secrets: SecretSource,
    sandbox: Option<Sandbox>,
    store: StateStore,
    /// Whether lines.toml's warnings were printed already.
    warned: std::sync::atomic::AtomicBool,
}

impl Session {
    /// Reads the environment; with `--sandbox`, starts the embedded sandbox (seeded with the
    /// runbook world on first use) and points everything at it. lines.toml must parse first:
    /// starting the sandbox creates its directory, and nothing is created on disk for a
    /// declaration that does not parse.
    pub async fn open(global: &GlobalArgs) -> miette::Result<Session> {
        if global.sandbox {
            config::load(&global.config)?;
        }
        Self::open_for_import(global).await
    }

    /// [`Session::open`] for `import`, whose declaration may not exist yet: it checks the file
    /// it will write before opening the session.
    pub async fn open_for_import(global: &GlobalArgs) -> miette::Result<Session> {
        let session = Self::connect_env(global).await?;
        crate::state::fingerprint::install(|name| session.secrets.get(name));
        Ok(session)
    }

    async fn connect_env(global: &GlobalArgs) -> miette::Result<Session> {
        let store = StateStore::open(&global.state_dir, global.workspace.as_deref())?;
        if !global.sandbox {
            return Ok(Session {
                global: global.clone(),
                env: Env::from_process(),
                secrets: SecretSource::default(),
                sandbox: None,
                store: store.clone(),
                warned: Default::default(),
            });
        }
        let dir = sandbox::embedded_dir(&global.config);
        if let Some(url) = sandbox::serving_url(&dir) {
            tracing::info!(%url, "using the sandbox already serving this directory");
            let vars = sandbox::env_for(&url);
            return Ok(Session {
                global: global.clone(),
                env: Env::from_pairs(vars.clone()),
                secrets: SecretSource::with_overrides(vars),
                sandbox: None,
                store: store.clone(),
                warned: Default::default(),
            });
        }
        let started = Sandbox::start(SandboxOptions::new(&dir, "runbook"))
            .await
            .map_err(|e| {
                miette!(
                    "cannot start the embedded sandbox in {}: {e}",
                    dir.display()
                )
            })?;
        tracing::info!(url = %started.base_url(), dir = %dir.display(), "embedded sandbox started");
        let vars = started.env();
        Ok(Session {
            global: global.clone(),
            env: Env::from_pairs(vars.clone()),
            secrets: SecretSource::with_overrides(vars),
            sandbox: Some(started),
            store,
            warned: Default::default(),
        })
    }

    /// Stops the embedded sandbox, if any, persisting its world.
    pub async fn close(self) -> miette::Result<()> {
        if let Some(sb) = self.sandbox {
            sb.shutdown()
                .await
                .map_err(|e| miette!("cannot stop the embedded sandbox: {e}"))?;
        }
        Ok(())
    }

    /// The state lock for a command that rewrites lines.toml (`add`, `remove`), taken only once
    /// lines.toml parses and validates: bad input writes nothing, not even the state directory
    /// the lock lives in; concurrent edits (a webhook's retries) queue for up to two minutes
    /// instead of writing over each other's block.
    pub fn lock_for_edit(&self, operation: &str) -> miette::Result<crate::state::StateLock> {
        self.load_config()?;
        let wait = std::time::Duration::from_secs(120);
        Ok(crate::state::StateLock::acquire(
            &self.store(),
            operation,
            wait,
        )?)
    }

    /// Loads lines.toml; its lint warnings go to the lint view ([`on_lint_warnings`]) the
    /// first time only, however many steps of the command read the file (apply reads it to
    /// reconcile, then to plan), at the moment they are found.
    pub fn load_config(&self) -> miette::Result<Loaded> {
        let loaded = config::load(&self.global.config)?;
        if !self.warned.swap(true, std::sync::atomic::Ordering::SeqCst) {
            match LINT_VIEW.get() {
                Some(view) => view(&loaded.warnings),
                None => loaded.warnings.iter().for_each(|w| tracing::warn!("{w:?}")),
            }
        }
        Ok(loaded)
    }

    /// Where state is (one store per session: a PostgreSQL state's lease is held on it).
    pub fn store(&self) -> StateStore {
        self.store.clone()
    }

    /// State, with the protections its audit log remembers (protection memory).
    pub fn load_state(&self) -> miette::Result<State> {
        let store = self.store();
        let mut state = store.load()?;
        state.remember_audit(&crate::state::Journal::new(&store).audit_entries()?);
        Ok(state)
    }

    /// Client options from lines.toml's policy and every protected id (declared or in state).
    pub fn client_options(&self, desired: &Desired, state: &State) -> ClientOptions {
        let protected: Vec<String> = crate::protection::entries(desired, state)
            .into_keys()
            .collect();
        let defaults = ClientOptions::default();
        ClientOptions {
            twilio_writes: desired.policy.twilio_writes,
            protected_ids: protected,
            timeout: http_timeout_override().unwrap_or(defaults.timeout),
            ..defaults
        }
    }

    /// Clients for every provider lines.toml or state involves.
    pub fn connect(&self, desired: &Desired, state: &State) -> miette::Result<Providers> {
        let needed = needed_providers(desired, state);
        let opts = self.client_options(desired, state);
        Ok(providers::connect(&self.env, &opts, &needed)?)
    }

    /// What `cwa import` reads: the whole account of every provider whose credentials are
    /// present (not only what lines.toml mentions), refreshed, and which providers those were.
    /// No credentials at all is an error: there is no account to import.
    pub async fn read_account(
        &self,
        state: &State,
    ) -> miette::Result<(crate::model::Live, Vec<ProviderName>)> {
        let readable: Vec<ProviderName> = ProviderName::ALL
            .into_iter()
            .filter(|p| {
                providers::required_env(*p)
                    .iter()
                    .all(|n| self.env.get(n).is_some())
            })
            .collect();
        if readable.is_empty() {
            return Err(miette!(
                help = "set TELNYX_API_KEY, LIVEKIT_URL with LIVEKIT_API_KEY/LIVEKIT_API_SECRET, or TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN (or run with --sandbox)",
                "no provider credentials: there is no live account to import"
            ));
        }
        let opts = self.client_options(&Desired::default(), state);
        let clients = providers::connect(&self.env, &opts, &readable)?;
        Ok((refresh(&clients).await?, readable))
    }
}

/// Where a session's lint warnings go. Unset (the library used without a command), they
/// are logged.
static LINT_VIEW: std::sync::OnceLock<fn(&[miette::Report])> = std::sync::OnceLock::new();

/// Sends the lint warnings of every later session of this process to `view`, once per
/// session (the first call wins: one process, one view). The session decides when lines.toml
/// was first read; the view says what it warns about.
pub fn on_lint_warnings(view: fn(&[miette::Report])) {
    let _ = LINT_VIEW.set(view);
}

/// `CWA_HTTP_TIMEOUT_MS`: the timeout of one HTTP attempt, for runs that must give up on a
/// silent provider sooner than the default (the fault tests use it to trip timeouts quickly).
fn http_timeout_override() -> Option<std::time::Duration> {
    let raw = std::env::var("CWA_HTTP_TIMEOUT_MS").ok()?;
    match raw.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Some(std::time::Duration::from_millis(ms)),
        _ => {
            tracing::warn!(
                "ignoring CWA_HTTP_TIMEOUT_MS={raw:?}: not a positive number of milliseconds"
            );
            None
        }
    }
}

/// The providers whose objects lines.toml declares or state owns.
pub fn needed_providers(desired: &Desired, state: &State) -> Vec<ProviderName> {
    let kinds = desired
        .resources
        .keys()
        .map(|a| a.kind)
        .chain(state.owned().map(|(a, _)| a.kind));
    let mut needed: Vec<ProviderName> = kinds.map(Kind::provider).collect();
    needed.sort();
    needed.dedup();
    needed
}

/// A fingerprint of lines.toml's exact text.
pub fn config_fingerprint(text: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// Writes text to a file atomically.
pub fn write_file(path: &std::path::Path, text: &str) -> miette::Result<()> {
    crate::state::write_atomic(path, text.as_bytes())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", path.display()))
}

/// `cwa` + the global options that choose the world (`--sandbox`, `-C`, `--config`,
/// `--state`) + `rest`: a hint the user can paste and land on the same world and files.
pub fn same_world_command(global: &GlobalArgs, rest: &str) -> String {
    let mut words = vec!["cwa".to_string()];
    if let Some(dir) = &global.chdir {
        words.push(format!("-C {}", dir.display()));
    }
    if global.sandbox {
        words.push("--sandbox".into());
    }
    if global.config != std::path::Path::new("lines.toml") {
        words.push(format!("--config {}", global.config.display()));
    }
    if global.state_dir != std::path::Path::new("state") {
        words.push(format!(
            "--state {}",
            crate::state::location::redact(&global.state_dir.to_string_lossy())
        ));
    }
    words.push(rest.to_string());
    words.join(" ")
}
