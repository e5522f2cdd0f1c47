//! load lines.toml -> load state -> refresh live -> plan, once for every command.

use std::time::Instant;

use futures::future::join_all;
use miette::WrapErr;

use super::Session;
use crate::cli::PlanningArgs;
use crate::config::Loaded;
use crate::model::{Live, ProviderName, SecretSource};
use crate::plan::{self, Plan, PlanInput, PlanOptions};
use crate::providers::Providers;
use crate::state::State;

/// Everything a plan was computed from, for apply to carry on with.
pub struct Planned {
    pub loaded: Loaded,
    pub state: State,
    pub plan: Plan,
    /// The clients the refresh used (none for `--refresh=false`).
    pub providers: Option<Providers>,
    /// What the plan was computed against: live as read, or state standing in for it.
    pub live: Live,
}

impl Session {
    /// Loads lines.toml and state, refreshes live (unless `--refresh=false`, which plans
    /// against state alone) and plans.
    pub async fn plan(&self, args: &PlanningArgs) -> miette::Result<Planned> {
        self.plan_of(self.load_config()?, args).await
    }

    /// [`Session::plan`] of a declaration already loaded (`cwa add` plans the file it is
    /// about to write, so a refused plan writes nothing).
    pub async fn plan_of(&self, loaded: Loaded, args: &PlanningArgs) -> miette::Result<Planned> {
        let state = self.load_state()?;
        let targets = plan::targets::resolve(&args.targets, &loaded.desired, &state)?;
        let (live, providers) = if args.refresh {
            let providers = self.connect(&loaded.desired, &state)?;
            (refresh(&providers).await?, Some(providers))
        } else {
            (state.as_live(), None)
        };
        let options = PlanOptions {
            allow_mass_change: args.allow_mass_change,
            release_numbers: args.release_numbers,
            targets,
        };
        let plan = plan_against(&loaded, &state, &live, args.refresh, options, &self.secrets);
        Ok(Planned {
            loaded,
            state,
            plan,
            providers,
            live,
        })
    }

    /// [`Session::plan`], then the preconditions apply would otherwise meet half-way
    /// ([`super::preconditions`]) as plan errors, all found in one run: what `cwa plan` and
    /// `cwa apply` compute. A plan against state alone (`--refresh=false`, a fork's CI with
    /// no secrets) has no live to check them against and is left as it is.
    pub async fn plan_checked(&self, args: &PlanningArgs) -> miette::Result<Planned> {
        self.plan_checked_of(self.load_config()?, args).await
    }

    /// [`Session::plan_checked`] of a declaration already loaded.
    pub async fn plan_checked_of(
        &self,
        loaded: Loaded,
        args: &PlanningArgs,
    ) -> miette::Result<Planned> {
        let mut planned = self.plan_of(loaded, args).await?;
        if let Some(providers) = &planned.providers {
            let found = super::preconditions::check(
                &planned.plan,
                &planned.loaded.desired,
                &planned.live,
                &self.secrets,
                providers,
            )
            .await;
            let (errors, notes): (Vec<_>, Vec<_>) = found
                .into_iter()
                .partition(|f| f.severity == crate::plan::Severity::Error);
            planned.plan.errors.extend(errors);
            planned.plan.checks.extend(notes);
        }
        Ok(planned)
    }
}

/// The pure step of the pipeline: the plan of lines.toml against state and live, with the
/// certification findings of the live lines when live was read (not state standing in).
/// The benchmarks measure exactly this.
pub fn plan_against(
    loaded: &Loaded,
    state: &State,
    live: &Live,
    refreshed: bool,
    options: PlanOptions,
    secrets: &SecretSource,
) -> Plan {
    let mut plan = plan::compute(&PlanInput {
        desired: &loaded.desired,
        state,
        live,
        refreshed,
        config_fingerprint: super::config_fingerprint(&loaded.text),
        options,
        secrets,
    });
    if refreshed {
        plan.checks.extend(
            crate::checks::certify(
                &loaded.desired,
                state,
                live,
                &crate::checks::Request::plan(),
            )
            .checks
            .into_iter()
            .map(|c| c.into_finding()),
        );
    }
    plan
}

/// Reads every provider at once.
pub async fn refresh(providers: &Providers) -> miette::Result<Live> {
    let started = Instant::now();
    let reads = ProviderName::ALL.into_iter().filter_map(|name| {
        providers.get(name).map(|p| {
            let p = p.clone();
            async move { (name, p.refresh().await) }
        })
    });
    let mut live = Live::default();
    for (name, result) in join_all(reads).await {
        let objects = result.wrap_err_with(|| format!("refreshing {name} failed"))?;
        for o in objects {
            live.insert(o);
        }
        live.refreshed.push(name);
    }
    providers.lock.learn(live.objects.values());
    tracing::info!(
        objects = live.objects.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "refreshed"
    );
    Ok(live)
}
