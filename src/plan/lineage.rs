//! Numbers cwa bought for another state lineage. A number order's `customer_reference` derives
//! from the state's lineage and the address (`providers::create_reference`), which is what lets a
//! CI retry or a second checkout of the same committed state/ find an order instead of placing
//! it again. A state/ that was never committed (a first apply on a runner that died, a second
//! `cwa apply` in an empty directory) has a lineage of its own, so its references are new and
//! nothing ties its `auto` lines to what the other lineage bought: the plan would buy again.
//! cwa cannot tell such a number from a deliberate one, but it can say that it exists.

use std::collections::HashSet;

use super::{Change, Finding, Severity};
use crate::model::{Kind, Live, ProviderName};
use crate::state::State;

/// Whether `reference` has the form `providers::create_reference` gives (`cwa-` and 24 hex
/// digits), so it was cwa that placed the order.
pub fn is_cwa_reference(reference: &str) -> bool {
    reference.strip_prefix("cwa-").is_some_and(|h| {
        h.len() == 24
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// One warning per live Telnyx number that cwa bought (its reference has cwa's form) under a
/// reference this state cannot have made: not owned by state, not adopted by this plan, and not
/// the reference of any address state or the plan knows (with or without the id it replaces).
pub fn warnings(changes: &[Change], state: &State, live: &Live) -> Vec<Finding> {
    if !live.was_refreshed(ProviderName::Telnyx) {
        return Vec::new();
    }
    let lineage = &state.lineage;
    let known: HashSet<&str> = state
        .resources
        .values()
        .map(|r| r.id.as_str())
        .chain(changes.iter().filter_map(|c| c.id.as_deref()))
        .collect();
    let mut mine: HashSet<String> = HashSet::new();
    for (addr, id) in state
        .resources
        .iter()
        .map(|(a, r)| (a.clone(), Some(r.id.as_str())))
        .chain(
            changes
                .iter()
                .map(|c| (c.address.to_string(), c.id.as_deref())),
        )
    {
        mine.insert(crate::providers::create_reference(lineage, &addr, None));
        if let Some(id) = id {
            mine.insert(crate::providers::create_reference(lineage, &addr, Some(id)));
        }
    }
    live.objects
        .values()
        .filter(|o| o.kind() == Kind::TelnyxNumber && !known.contains(o.id.as_str()))
        .filter_map(|o| {
            let reference = o.extra.get("customer_reference")?;
            (is_cwa_reference(reference) && !mine.contains(reference)).then_some((o, reference))
        })
        .map(|(o, reference)| Finding {
            severity: Severity::Warning,
            code: "number-of-another-lineage".into(),
            message: format!(
                "{} (telnyx_number {}) was bought by cwa for another state (customer_reference {reference}), and this state/ does not own it: if an `auto` line here is meant to have it, this plan buys a second number",
                o.spec.label(),
                o.id
            ),
            address: None,
            help: Some(
                "run from the committed state/ that bought it (commit state/ after every apply), or write the number itself (`number = \"+1…\"`) on the line that should own it so the plan adopts it; release it if no line does".into(),
            ),
            span: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_references_of_cwas_form_are_cwas() {
        let made = crate::providers::create_reference("L1", "telnyx_number.grace", None);
        assert!(is_cwa_reference(&made));
        for other in [
            "",
            "cwa-",
            "order-42",
            "cwa-ABCDEF0123456789abcdef01",
            "cwa-0123456789abcdef0123456",
            "cwa-0123456789abcdef012345678",
            "xcwa-0123456789abcdef01234567",
        ] {
            assert!(!is_cwa_reference(other), "{other}");
        }
    }
}
