//! Passes over the whole expansion once every block is in: shared-trunk numbers attached,
//! number references made literal, numbers declared twice, sets in canonical form.

use super::*;

impl Expander<'_> {
    pub(super) fn attach_shared_trunk_numbers(&mut self) {
        for (trunk, number, span) in std::mem::take(&mut self.shared) {
            let Some(res) = self.resources.get_mut(&trunk) else {
                continue;
            };
            if let Spec::LivekitInboundTrunk(spec) = &mut res.spec {
                let entry = NumberRef::Of(number);
                if !spec.numbers.contains(&entry) {
                    self.spans
                        .insert(&trunk, format!("numbers.{}", spec.numbers.len()), span);
                    spec.numbers.push(entry);
                }
            }
        }
    }

    /// A trunk naming a number resource whose number is fixed holds that literal number, as
    /// the provider reports it; only `"auto"` numbers stay `(number of …)`.
    pub(super) fn normalize_number_refs(&mut self) {
        let fixed: BTreeMap<Address, E164> = self
            .resources
            .values()
            .filter_map(|r| match &r.spec {
                Spec::TelnyxNumber(s) => s.number.fixed().map(|n| (r.addr.clone(), n.clone())),
                Spec::TwilioNumber(s) => Some((r.addr.clone(), s.number.clone())),
                _ => None,
            })
            .collect();
        for res in self.resources.values_mut() {
            for n in res.spec.number_refs_mut() {
                if let NumberRef::Of(a) = n {
                    if let Some(number) = fixed.get(a) {
                        *n = NumberRef::Number(number.clone());
                    }
                }
            }
        }
    }

    pub(super) fn duplicate_numbers(&mut self) {
        let mut seen: BTreeMap<E164, (Address, SourceSpan)> = BTreeMap::new();
        let mut found = Vec::new();
        for res in self.resources.values() {
            let number = match &res.spec {
                Spec::TelnyxNumber(s) => s.number.fixed(),
                Spec::TwilioNumber(s) => Some(&s.number),
                _ => None,
            };
            let Some(number) = number else { continue };
            let span = self.spans.get(&res.addr, "number").unwrap_or(res.span);
            match seen.get(number) {
                Some((first, first_span)) => found.push(
                    Problem::error(
                        ProblemKind::DuplicateNumber,
                        span,
                        format!("{number} again"),
                        format!("{number} is declared twice: by {first} and by {}", res.addr),
                    )
                    .with_label(*first_span, "first declared here")
                    .with_help("a number is owned once; share a trunk instead (trunk = \"…\" on the church) or remove one"),
                ),
                None => {
                    seen.insert(number.clone(), (res.addr.clone(), span));
                }
            }
        }
        self.problems.extend(found);
    }
    /// Every set field in its one canonical form ([`crate::model::canonical`]), so a
    /// declaration in any order compares equal to what the provider reports. LiveKit trunk
    /// numbers keep their declared order here: checks point at `numbers.N` by position.
    pub(super) fn canonical_sets(&mut self) {
        for r in self.resources.values_mut() {
            if r.addr.kind.provider() == crate::model::ProviderName::Telnyx {
                r.spec.canonicalize();
            }
        }
    }
}
