//! Preconditions a plan must meet before apply writes anything: what would otherwise fail
//! half-way through an apply (issue 15 finding 4), found all at once and reported together
//! as plan errors, each at the line of lines.toml responsible.
//!
//! - every `*_env` variable a write will send is set (no request);
//! - no connection a number keeps using is deleted (Telnyx answers 422 on every rerun;
//!   no request: the refresh already read every number);
//! - every fixed number the plan orders is one Telnyx sells: one availability lookup per such
//!   number, at most [`MAX_AVAILABILITY_LOOKUPS`] per plan, [`LOOKUP_PARALLELISM`] at a time.
//!
//! And one note, a warning rather than an error (apply still buys every other number): an
//! `"auto"` number whose area code offers only best-effort numbers, or none, gets
//! [`BEST_EFFORT_ONLY`] at its line of the plan, since cwa never buys outside the declared
//! area code (issue 13). One search per distinct area code, bounded like the lookups above.

use futures::stream::{self, StreamExt};

use crate::model::{
    Address, Desired, Kind, Live, NumberSpec, Ref, SecretRef, SecretSource, Spec, E164,
};
use crate::plan::{Action, Change, Finding, Plan, Severity};
use crate::providers::{AreaOffers, Providers};

/// The most availability lookups one plan makes; fixed numbers beyond it are checked by the
/// order itself, as before.
pub const MAX_AVAILABILITY_LOOKUPS: usize = 25;

/// How many availability lookups run at once.
pub const LOOKUP_PARALLELISM: usize = 4;

/// The code of the plan note of an `"auto"` number whose area code offers no exact number.
pub const BEST_EFFORT_ONLY: &str = "best-effort-only";

/// The precondition errors of a plan computed against live, and its notes (warnings).
pub async fn check(
    plan: &Plan,
    desired: &Desired,
    live: &Live,
    secrets: &SecretSource,
    providers: &Providers,
) -> Vec<Finding> {
    let mut found = missing_secrets(plan, desired, secrets);
    found.extend(connections_in_use(plan, live));
    found.extend(unsellable_numbers(plan, desired, live, providers).await);
    found.extend(best_effort_only(plan, desired, providers).await);
    found
}

/// Writing changes: what apply sends to a provider.
fn writes(change: &Change) -> bool {
    matches!(
        change.action,
        Action::Create | Action::Update | Action::Replace
    ) || (change.action == Action::Adopt && !change.fields.is_empty())
}

fn error(
    code: &str,
    address: &Address,
    desired: Option<&Desired>,
    message: String,
    help: String,
) -> Finding {
    Finding {
        severity: Severity::Error,
        code: code.into(),
        message,
        address: Some(address.to_string()),
        help: Some(help),
        span: desired.and_then(|d| d.get(address)).map(|r| r.span),
    }
}

/// Every secret variable a write will send that is not set, one finding each.
pub fn missing_secrets(plan: &Plan, desired: &Desired, secrets: &SecretSource) -> Vec<Finding> {
    let mut out = Vec::new();
    for change in plan.changes.iter().filter(|c| writes(c)) {
        let Some(after) = &change.after else {
            continue;
        };
        for (field, secret) in after.secrets() {
            let SecretRef::Env(variable) = secret else {
                continue;
            };
            if secrets.get(variable).is_some() {
                continue;
            }
            out.push(error(
                "missing-secret",
                &change.address,
                Some(desired),
                format!(
                    "{}: the environment variable {variable} ({field}, a secret lines.toml names) is not set; apply would {} it without one",
                    change.address,
                    change.action.as_str()
                ),
                format!("export {variable} before `cwa apply` (every missing variable is listed here at once)"),
            ));
        }
    }
    out
}

/// Kinds a Telnyx number is assigned to; Telnyx refuses to delete one that still has numbers.
fn is_connection(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::TelnyxFqdnConnection
            | Kind::TelnyxCredentialConnection
            | Kind::TelnyxTexmlApplication
    )
}

/// Deletes of a connection a live number still uses after the plan: the number stays (kept,
/// unmanaged or unchanged) and nothing in the plan moves it off or releases it.
pub fn connections_in_use(plan: &Plan, live: &Live) -> Vec<Finding> {
    let mut out = Vec::new();
    for del in plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete && is_connection(c.kind))
    {
        let Some(id) = &del.id else {
            continue;
        };
        let users: Vec<String> = live
            .of_kind(Kind::TelnyxNumber)
            .filter(|n| number_connection(&n.spec).is_some_and(|r| refers(r, id, &del.address)))
            .filter(|n| stays_on(plan, &n.id, id, &del.address))
            .map(|n| n.spec.label())
            .collect();
        if users.is_empty() {
            continue;
        }
        out.push(error(
            "connection-in-use",
            &del.address,
            None,
            format!(
                "{} ({id}) cannot be deleted: the number(s) {} still use it, and Telnyx refuses the delete (422) on every run until none does",
                del.address,
                users.join(", ")
            ),
            format!(
                "keep {} declared in lines.toml, or declare the number(s) on another connection (or release them with --release-numbers) in the same change",
                del.address
            ),
        ));
    }
    out
}

fn number_connection(spec: &Spec) -> Option<&Ref> {
    match spec {
        Spec::TelnyxNumber(n) => n.connection.as_ref(),
        _ => None,
    }
}

fn refers(r: &Ref, id: &str, addr: &Address) -> bool {
    match r {
        Ref::Id(i) => i == id,
        Ref::Addr(a) => a == addr,
    }
}

/// Whether the live number `number_id` is still on the connection after the plan.
fn stays_on(plan: &Plan, number_id: &str, id: &str, addr: &Address) -> bool {
    let Some(change) = plan
        .changes
        .iter()
        .find(|c| c.kind == Kind::TelnyxNumber && c.id.as_deref() == Some(number_id))
    else {
        return true;
    };
    if change.action == Action::Delete {
        return false;
    }
    if !writes(change) {
        return true;
    }
    change
        .after
        .as_ref()
        .and_then(number_connection)
        .is_some_and(|r| refers(r, id, addr))
}

/// Fixed numbers the plan orders from Telnyx that Telnyx does not sell (one lookup each,
/// bounded). A lookup that fails says nothing: the order reports it, as before.
pub async fn unsellable_numbers(
    plan: &Plan,
    desired: &Desired,
    live: &Live,
    providers: &Providers,
) -> Vec<Finding> {
    let Some(telnyx) = providers.for_kind(Kind::TelnyxNumber) else {
        return Vec::new();
    };
    let ordered: Vec<(&Address, &E164)> = ordered_numbers(plan)
        .filter_map(|(addr, n)| match n {
            NumberSpec::Fixed { number } => Some((addr, number)),
            NumberSpec::Auto { .. } => None,
        })
        .filter(|(_, number)| !owned_anywhere(live, number))
        .take(MAX_AVAILABILITY_LOOKUPS)
        .collect();
    let answers: Vec<_> = stream::iter(ordered)
        .map(|(addr, number)| async move { (addr, number, telnyx.sells(number).await) })
        .buffered(LOOKUP_PARALLELISM)
        .collect()
        .await;
    let mut found = Vec::new();
    for (addr, number, _) in answers
        .into_iter()
        .filter(|(_, _, sold)| matches!(sold, Ok(Some(false))))
    {
        // A number cwa add --reserve held: say that the hold lapsed (issue 23).
        let lapsed = crate::provision::lapsed_reservation(telnyx.as_ref(), number).await;
        let why = lapsed.map(|l| format!(": {l}")).unwrap_or_default();
        found.push(error(
            "number-not-for-sale",
            addr,
            Some(desired),
            format!(
                "{addr}: {number} is owned by no account cwa reads and Telnyx does not sell it, so it cannot be ordered{why}"
            ),
            "check the number in lines.toml (a typo?), port it in first, or use `number = \"auto\"` with an `area_code` (cwa add --reserve again holds a new one)".into(),
        ));
    }
    found
}

/// The Telnyx numbers the plan orders (creates), with their declared number.
fn ordered_numbers(plan: &Plan) -> impl Iterator<Item = (&Address, &NumberSpec)> {
    plan.changes
        .iter()
        .filter(|c| c.kind == Kind::TelnyxNumber && c.action == Action::Create)
        .filter_map(|c| match c.after.as_ref() {
            Some(Spec::TelnyxNumber(n)) => Some((&c.address, &n.number)),
            _ => None,
        })
}

/// Whether a provider cwa reads already has this number (Telnyx or Twilio): then it is
/// someone's, and not for sale by construction.
fn owned_anywhere(live: &Live, number: &E164) -> bool {
    let shown = number.to_string();
    [Kind::TelnyxNumber, Kind::TwilioNumber]
        .into_iter()
        .flat_map(|k| live.of_kind(k))
        .any(|o| o.spec.label() == shown)
}

/// `"auto"` numbers the plan orders in an area code that offers no exact number now: a
/// warning at each, naming the best-effort offers cwa will not buy. A search that fails says
/// nothing: the order reports it, as before.
pub async fn best_effort_only(
    plan: &Plan,
    desired: &Desired,
    providers: &Providers,
) -> Vec<Finding> {
    let Some(telnyx) = providers.for_kind(Kind::TelnyxNumber) else {
        return Vec::new();
    };
    let autos: Vec<(&Address, &str, &str)> = ordered_numbers(plan)
        .filter_map(|(addr, n)| match n {
            NumberSpec::Auto {
                country, area_code, ..
            } => Some((addr, country.as_str(), area_code.as_str())),
            NumberSpec::Fixed { .. } => None,
        })
        .collect();
    let mut areas: Vec<(&str, &str)> = autos.iter().map(|(_, c, a)| (*c, *a)).collect();
    areas.sort_unstable();
    areas.dedup();
    areas.truncate(MAX_AVAILABILITY_LOOKUPS);
    let answers: Vec<((&str, &str), AreaOffers)> = stream::iter(areas)
        .map(|area| async move { (area, telnyx.area_offers(area.0, area.1).await) })
        .buffered(LOOKUP_PARALLELISM)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .filter_map(|(area, found)| Some((area, found.ok().flatten()?)))
        .filter(|(_, offers)| offers.exact == 0)
        .collect();
    autos
        .into_iter()
        .filter_map(|(addr, country, area_code)| {
            let (_, offers) = answers.iter().find(|(a, _)| *a == (country, area_code))?;
            Some(best_effort_note(addr, desired, country, area_code, offers))
        })
        .collect()
}

fn best_effort_note(
    addr: &Address,
    desired: &Desired,
    country: &str,
    area_code: &str,
    offers: &AreaOffers,
) -> Finding {
    let offered = if offers.best_effort.is_empty() {
        "no number at all".to_string()
    } else {
        format!(
            "only best-effort numbers outside it ({})",
            offers.best_effort.join(", ")
        )
    };
    Finding {
        severity: Severity::Warning,
        code: BEST_EFFORT_ONLY.into(),
        message: format!(
            "{addr}: {country} area code {area_code} offers {offered} now; cwa never buys outside the declared area code, so apply will buy no number for this line"
        ),
        address: Some(addr.to_string()),
        help: Some("apply later (Telnyx restocks), or declare another area_code".into()),
        span: desired.get(addr).map(|r| r.span),
    }
}
