//! What an apply needs from the session besides the plan: the journal of a killed run
//! settled first, the executor wired to the clients and state, and the certification after
//! it (the checks of the lines it touched, on the world as it is now and with the numbers
//! state now pins, an `auto` line's bought number included).

use miette::miette;

use super::{refresh, Planned, Session};
use crate::apply::{ApplyOptions, ApplyReport, Executor};
use crate::checks::{Certification, Pending, Request, Scope};
use crate::cli::ApplyArgs;
use crate::plan::Plan;
use crate::state::Journal;

/// What the certification after an apply found.
pub enum Certified {
    /// Nothing was done, or nothing was read live: there is nothing to certify.
    NotNeeded,
    /// The lines could not be checked (state or live could not be read): a failure.
    Unchecked(String),
    Ran(Certification),
}

impl Certified {
    /// An apply is not done until its lines are certified: false when a check failed, a
    /// touched line is not applied, or the checks could not run. A number the provider is
    /// still activating does not fail it.
    pub fn passed(&self) -> bool {
        match self {
            Self::NotNeeded => true,
            Self::Unchecked(_) => false,
            Self::Ran(c) => c.failures().next().is_none() && not_applied(c).next().is_none(),
        }
    }
}

/// Touched lines that are still not applied after the apply.
pub fn not_applied(c: &Certification) -> impl Iterator<Item = &Pending> {
    c.pending.iter().filter(|p| !p.activating)
}

/// The plan `cwa apply` carries out, and what the command says about it.
pub struct ToApply {
    pub planned: Planned,
    /// What a plan file's comparison with the plan computed now found worth saying: live
    /// objects that moved since it was saved and that the plan does not write.
    pub warnings: Vec<String>,
    /// The protected ids `--unprotect` releases, each one the plan lists as unprotectable.
    pub unprotect: Vec<String>,
}

impl Session {
    /// The plan `cwa apply` carries out: always the one computed now, live read. A plan file
    /// is evidence, never authority: it is compared with this one (refused when stale,
    /// [`crate::plan::saved`]). `--auto-approve` without a reviewed plan file refuses what
    /// needs one; `--unprotect` may name only what the plan lists as unprotectable.
    pub async fn plan_to_apply(&self, args: &ApplyArgs) -> miette::Result<ToApply> {
        let mut planning = args.planning.clone();
        planning.refresh = true;
        let mut planned = self.plan_checked(&planning).await?;
        if args.auto_approve && args.plan_file.is_none() {
            let refused = crate::plan::targets::auto_approved_refusals(
                &planned.plan.changes,
                &planning.targets,
            );
            planned.plan.errors.extend(refused);
        }
        let warnings = match &args.plan_file {
            Some(path) => crate::plan::saved::check_file(path, &planned.plan)?,
            None => Vec::new(),
        };
        let unprotect = crate::protection::unprotect_requests(&planned.plan, &args.unprotect)
            .map_err(|e| {
                miette!(
                    help = "the plan lists what may be unprotected in its Unprotect section",
                    "{e}"
                )
            })?;
        Ok(ToApply {
            planned,
            warnings,
            unprotect,
        })
    }

    /// Whether a killed run left entries in the journal.
    pub fn journal_unsettled(&self) -> miette::Result<bool> {
        Ok(!Journal::new(&self.store()).entries()?.is_empty())
    }

    /// Settles what a killed run left in the journal against live
    /// ([`crate::apply::reconcile`]), before planning; says what it found.
    pub async fn settle_journal(&self) -> miette::Result<Vec<String>> {
        let store = self.store();
        let loaded = self.load_config()?;
        let mut state = self.load_state()?;
        let providers = self.connect(&loaded.desired, &state)?;
        Ok(crate::apply::reconcile(&Journal::new(&store), &store, &mut state, &providers).await?)
    }

    /// The executor for a plan: the refresh's clients, state as planned, the protected ids.
    pub fn executor(&self, planned: &Planned, options: ApplyOptions) -> miette::Result<Executor> {
        let providers = match &planned.providers {
            Some(p) => p.clone(),
            None => self.connect(&planned.loaded.desired, &planned.state)?,
        };
        let opts = self.client_options(&planned.loaded.desired, &planned.state);
        Ok(Executor::new(
            providers,
            self.store(),
            planned.state.clone(),
            self.secrets.clone(),
            opts.protected_ids,
            options,
        ))
    }

    /// Certifies the lines `plan` touched (all lines unless `targeted`), after `report`.
    pub async fn certify_applied(
        &self,
        planned: &Planned,
        plan: &Plan,
        targeted: bool,
        report: &ApplyReport,
    ) -> Certified {
        let Some(providers) = planned
            .providers
            .as_ref()
            .filter(|_| !report.done.is_empty())
        else {
            return Certified::NotNeeded;
        };
        let desired = &planned.loaded.desired;
        let (state, live) = match (self.load_state(), refresh(providers).await) {
            (Ok(state), Ok(live)) => (state, live),
            (Err(e), _) | (_, Err(e)) => return Certified::Unchecked(e.to_string()),
        };
        let scope = touched_scope(plan, desired, targeted);
        Certified::Ran(crate::checks::certify(
            desired,
            &state,
            &live,
            &Request::after_apply(scope),
        ))
    }
}

/// What an apply of `plan` touched: every address it changes, and every resource of a
/// church it changes (a fixed dispatch rule re-certifies its church's whole line).
/// Without targets, a whole plan: every line.
fn touched_scope(
    plan: &crate::plan::Plan,
    desired: &crate::model::Desired,
    targeted: bool,
) -> Scope {
    if !targeted {
        return Scope::All;
    }
    let changed = || plan.changes.iter().filter(|c| c.action.changes_anything());
    let churches: std::collections::BTreeSet<&str> =
        changed().filter_map(|c| c.church.as_deref()).collect();
    let mut set: std::collections::BTreeSet<crate::model::Address> =
        changed().map(|c| c.address.clone()).collect();
    set.extend(
        desired
            .resources
            .values()
            .filter(|r| r.church.as_deref().is_some_and(|k| churches.contains(k)))
            .map(|r| r.addr.clone()),
    );
    Scope::Touched(set)
}
