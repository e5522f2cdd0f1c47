//! One canonical form per field, used by config, plan, verify and drift alike.
//!
//! Some list fields are sets: the provider keeps no order (Telnyx sorts tags, LiveKit compares
//! trunk numbers as a set), so `["zeta", "alpha"]` and `["alpha", "zeta"]` are the same value and
//! must never show as a diff or fail a read-back. Others are ordered: their order means
//! something (the endings an `"auto"` number tries first, a Twilio trunk's origination URLs, the
//! agents a rule dispatches). [`FIELDS`] is the table of both (docs/lines-toml.md shows it);
//! [`Spec::canonicalize`] puts every set field of a spec in its canonical form (sorted,
//! deduplicated; country codes upper-case), and is applied where specs are made: when
//! lines.toml is expanded and when a provider's object enters [`super::Live`]. Anything that
//! builds a spec elsewhere calls it too (or [`set`] on the one field it builds).

use std::collections::BTreeMap;

use super::{FqdnSpec, Kind, OutboundVoiceProfileSpec, SecretRef, Spec};

/// Whether a list field's order carries meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Order and duplicates carry no meaning: sorted and deduplicated.
    Set,
    /// Order is part of the value: kept exactly as declared.
    Ordered,
}

/// One list field of a kind and whether it is a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub kind: Kind,
    /// The field as lines.toml names it.
    pub field: &'static str,
    pub order: Order,
}

const fn field(kind: Kind, field: &'static str, order: Order) -> Field {
    Field { kind, field, order }
}

/// Every list field cwa compares, sets first.
pub const FIELDS: &[Field] = &[
    field(Kind::TelnyxNumber, "tags", Order::Set),
    field(
        Kind::TelnyxOutboundVoiceProfile,
        "whitelisted_destinations",
        Order::Set,
    ),
    field(Kind::LivekitInboundTrunk, "numbers", Order::Set),
    field(Kind::LivekitInboundTrunk, "allowed_addresses", Order::Set),
    field(Kind::LivekitInboundTrunk, "allowed_numbers", Order::Set),
    field(Kind::LivekitOutboundTrunk, "numbers", Order::Set),
    field(Kind::LivekitDispatchRule, "trunks", Order::Set),
    field(Kind::LivekitDispatchRule, "numbers", Order::Set),
    field(Kind::TelnyxNumber, "endings", Order::Ordered),
    field(Kind::TwilioTrunk, "origination_urls", Order::Ordered),
    field(Kind::LivekitDispatchRule, "agents", Order::Ordered),
];

/// Whether `field` of `kind` is a set (a field not in [`FIELDS`] is not a list cwa compares).
pub fn order_of(kind: Kind, field: &str) -> Option<Order> {
    FIELDS
        .iter()
        .find(|f| f.kind == kind && f.field == field)
        .map(|f| f.order)
}

/// The canonical form of a set field: sorted, each value once.
pub fn set<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    values.dedup();
    values
}

/// The canonical form of a set of ISO 3166-1 alpha-2 codes: upper-case, sorted, each once.
pub fn countries(values: Vec<String>) -> Vec<String> {
    set(values
        .into_iter()
        .map(|c| c.trim().to_ascii_uppercase())
        .collect())
}

/// Whether two values of a set field are the same set.
pub fn same_set<T: Ord + Clone>(a: &[T], b: &[T]) -> bool {
    set(a.to_vec()) == set(b.to_vec())
}

impl Spec {
    /// Puts every set field of this spec ([`FIELDS`]) in its canonical form; ordered fields are
    /// left as they are.
    pub fn canonicalize(&mut self) {
        match self {
            Spec::TelnyxNumber(s) => s.tags = set(std::mem::take(&mut s.tags)),
            Spec::TelnyxOutboundVoiceProfile(s) => {
                s.whitelisted_destinations =
                    countries(std::mem::take(&mut s.whitelisted_destinations))
            }
            Spec::LivekitInboundTrunk(s) => {
                s.numbers = set(std::mem::take(&mut s.numbers));
                s.allowed_addresses = set(std::mem::take(&mut s.allowed_addresses));
                s.allowed_numbers = set(std::mem::take(&mut s.allowed_numbers));
            }
            Spec::LivekitOutboundTrunk(s) => s.numbers = set(std::mem::take(&mut s.numbers)),
            Spec::LivekitDispatchRule(s) => s.trunks = set(std::mem::take(&mut s.trunks)),
            _ => {}
        }
    }

    /// This spec with its set fields in canonical form.
    pub fn canonical(mut self) -> Self {
        self.canonicalize();
        self
    }
}

/// SIP header names compare case-insensitively (RFC 3261 section 7.3.1) and are written as
/// declared: `live`'s headers with each name that matches a declared one in all but case
/// spelled as declared, so a header differing only in case is no change, and a changed value
/// shows once, under the declared name.
pub fn headers_named_as(
    declared: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    live.iter()
        .map(|(name, value)| {
            let spelled = declared
                .keys()
                .find(|d| d.eq_ignore_ascii_case(name))
                .unwrap_or(name);
            (spelled.clone(), value.clone())
        })
        .collect()
}

impl Spec {
    /// This live spec compared against `declared`: fields that compare by a rule other than
    /// equality ([`headers_named_as`]) take the declared spelling where the rule says they are
    /// the same. Every other field is left as it is.
    pub fn compared_with(&self, declared: &Spec) -> std::borrow::Cow<'_, Spec> {
        use std::borrow::Cow;
        match (self, declared) {
            (Spec::LivekitOutboundTrunk(live), Spec::LivekitOutboundTrunk(want))
                if live.headers != want.headers =>
            {
                let mut aligned = live.clone();
                aligned.headers = headers_named_as(&want.headers, &live.headers);
                Cow::Owned(Spec::LivekitOutboundTrunk(aligned))
            }
            // A number's settings lines.toml does not declare are left as they are live
            // (issue 21): compared as the declaration's, they never show as a change.
            (Spec::TelnyxNumber(live), Spec::TelnyxNumber(want))
                if live.settings.as_declared_by(&want.settings) != live.settings =>
            {
                let mut aligned = live.clone();
                aligned.settings = live.settings.as_declared_by(&want.settings);
                Cow::Owned(Spec::TelnyxNumber(aligned))
            }
            _ => Cow::Borrowed(self),
        }
    }
}

/// What a provider's hidden secret reads as (a password its GET masks or omits): not a
/// fingerprint of anything, so it can never equal a declared secret, and the plan treats it as
/// unknown rather than changed ([`SecretRef::is_hidden`]).
pub const HIDDEN_SECRET: &str = "hidden:by-provider";

impl SecretRef {
    /// A secret the provider holds but does not show.
    pub fn hidden() -> Self {
        Self::Fingerprint(HIDDEN_SECRET.to_string())
    }

    /// Whether this is a secret the provider does not show: compared with a declared secret it
    /// is unknown, never a change (a masked password must not churn every plan).
    pub fn is_hidden(&self) -> bool {
        matches!(self, Self::Fingerprint(f) if f == HIDDEN_SECRET)
    }
}

impl FqdnSpec {
    /// The port a record has when none is declared: Telnyx's 5060 for an `a` record; none
    /// (0) for an `srv` record, whose port comes from DNS (spec3.yml, CreateFqdnRequest: "For
    /// cases where a port is not set, the DNS record type must be 'srv'").
    pub fn default_port(dns_record_type: &str) -> u16 {
        if dns_record_type.eq_ignore_ascii_case("srv") {
            0
        } else {
            5060
        }
    }
}

impl OutboundVoiceProfileSpec {
    /// What Telnyx whitelists when a profile names no destinations (spec3.yml,
    /// CreateOutboundVoiceProfileRequest: `default: ["US", "CA"]`), in canonical form.
    pub fn default_destinations() -> Vec<String> {
        countries(vec!["US".into(), "CA".into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NumberSpec, OutboundVoiceProfileSpec, TelnyxNumberSpec, E164};

    #[test]
    fn header_names_take_the_declared_spelling_and_keep_live_values() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let declared = map(&[("X-Telnyx-Username", "cwaoutbound")]);
        let live = map(&[("x-TELNYX-username", "stale"), ("X-Other", "kept")]);
        assert_eq!(
            headers_named_as(&declared, &live),
            map(&[("X-Telnyx-Username", "stale"), ("X-Other", "kept")])
        );
    }

    #[test]
    fn tags_in_any_order_are_one_value() {
        let spec = |tags: &[&str]| {
            Spec::TelnyxNumber(TelnyxNumberSpec {
                number: NumberSpec::Fixed {
                    number: E164::parse("+14144007103").unwrap(),
                },
                connection: None,
                tags: tags.iter().map(|t| t.to_string()).collect(),
                settings: Default::default(),
            })
            .canonical()
        };
        assert_eq!(spec(&["zeta", "alpha"]), spec(&["alpha", "zeta", "alpha"]));
    }

    #[test]
    fn destinations_are_upper_case_sets() {
        let Spec::TelnyxOutboundVoiceProfile(p) =
            Spec::TelnyxOutboundVoiceProfile(OutboundVoiceProfileSpec {
                name: "ChurchWiseAI".into(),
                enabled: true,
                whitelisted_destinations: vec!["us".into(), "CA".into(), "US".into()],
            })
            .canonical()
        else {
            unreachable!()
        };
        assert_eq!(p.whitelisted_destinations, vec!["CA", "US"]);
    }

    #[test]
    fn every_field_is_listed_once() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(
                FIELDS[i + 1..]
                    .iter()
                    .all(|g| (g.kind, g.field) != (f.kind, f.field)),
                "{:?} {} twice",
                f.kind,
                f.field
            );
        }
        assert_eq!(order_of(Kind::TelnyxNumber, "tags"), Some(Order::Set));
        assert_eq!(
            order_of(Kind::TwilioTrunk, "origination_urls"),
            Some(Order::Ordered)
        );
    }
}
