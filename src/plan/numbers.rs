//! Rules about `number = "auto"` lines once their number is bought.

use super::{Finding, Severity};
use crate::model::{Address, DesiredResource, NumberSpec, Ref, Spec};

/// Countries whose numbers carry the area code in digits 2-4 after `+1` (NANP).
const NANP: [&str; 2] = ["US", "CA"];

/// An `auto` line is pinned to the number it bought: a later change of its `area_code` would
/// otherwise be silently ignored (the number is never bought twice). It is a plan error that
/// says how to re-number on purpose.
pub fn area_code_moved(
    resource: &DesiredResource,
    declared: &Spec,
    live: &Spec,
) -> Option<Finding> {
    let (Spec::TelnyxNumber(want), Spec::TelnyxNumber(have)) = (declared, live) else {
        return None;
    };
    let NumberSpec::Auto {
        country, area_code, ..
    } = &want.number
    else {
        return None;
    };
    let pinned = have.number.fixed()?;
    if !NANP.contains(&country.as_str()) {
        return None;
    }
    let live_area = pinned.as_str().strip_prefix("+1")?.get(..3)?;
    if live_area == area_code {
        return None;
    }
    Some(Finding {
        severity: Severity::Error,
        code: "auto-number-pinned".into(),
        message: format!(
            "{} is pinned to {pinned} (area code {live_area}), but lines.toml now asks for area code {area_code}: an auto number is bought once and a changed area_code never re-numbers it",
            resource.addr
        ),
        address: Some(resource.addr.to_string()),
        help: Some(format!(
            "set `number` to re-number: number = \"+1{area_code}…\" (the old one, {pinned}, is kept, not released), or put area_code back to \"{live_area}\""
        )),
        span: Some(resource.span),
    })
}

/// A kept Telnyx number (its line removed, never released) parked on `[defaults] park`: the
/// spec it moves to. `None` when no target is declared, the number is not a Telnyx one, or it
/// is on the target already. Never `connection: None`: the spec types `connection_id` as a
/// string, and a number is never unbound with `null`.
pub fn parked(live: &Spec, park: Option<&Address>) -> Option<Spec> {
    let (Spec::TelnyxNumber(number), Some(park)) = (live, park) else {
        return None;
    };
    let target = Ref::Addr(park.clone());
    if number.connection.as_ref() == Some(&target) {
        return None;
    }
    let mut after = number.clone();
    after.connection = Some(target);
    Some(Spec::TelnyxNumber(after))
}
