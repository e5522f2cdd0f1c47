//! Protection at import: an import never leaves the lock behind. Ids state remembers as
//! protected are written back to `[protected]` (so lines.toml says what cwa never writes and
//! no plan carries an `unprotect`); the objects that look like they deserve a lock (trunks
//! and rules carrying numbers of another provider, shared trunks) are listed, and when
//! nothing at all is declared they are written as a commented `[protected]` block and the
//! import warns.

use std::collections::{BTreeMap, BTreeSet};

use toml_edit::{DocumentMut, Item, Value};

use super::{Block, Importer};
use crate::model::{Address, Kind, LiveObject, NumberRef, ProviderName, Spec};
use crate::render::escape::terminal;

/// The first line of the commented `[protected]` advice, so a second import does not repeat it.
const ADVICE_MARK: &str = "# cwa import: NO [protected] id is declared";

/// What an import found about locks, for the user.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Protection {
    /// Ids the result declares in `[protected]`.
    pub declared: usize,
    /// Ids state remembered as protected that the import wrote into `[protected]`.
    pub carried: Vec<String>,
    /// Objects not protected that an operator should consider locking.
    pub candidates: Vec<Candidate>,
}

impl Protection {
    /// True when the result declares no lock at all: every object may be written.
    pub fn none_declared(&self) -> bool {
        self.declared == 0
    }

    /// What the user is told about locks, one line each (terminal-escaped: ids and names
    /// come from live): the ids carried from state, a warning when nothing is locked, and
    /// the objects to consider locking.
    pub fn report(&self, file: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !self.carried.is_empty() {
            out.push(format!(
                "Declared {} id(s) state keeps protected in [protected] of {file}: {}",
                self.carried.len(),
                self.carried.join(", ")
            ));
        }
        if self.none_declared() {
            out.push(format!(
                "WARNING: {file} declares no [protected] id: `cwa apply` may write to every object imported here"
            ));
        }
        if !self.candidates.is_empty() {
            let listed = if self.none_declared() {
                "; the commented [protected] block at its end lists them"
            } else {
                ""
            };
            out.push(format!(
                "Consider locking these (add their ids to [protected] in {file}{listed}):"
            ));
            for c in &self.candidates {
                out.push(format!("  ! {} ({}): {}", c.address, c.id, c.why));
            }
        }
        out.iter().map(|l| terminal(l)).collect()
    }
}

/// An unprotected live object that looks like one to lock, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub address: Address,
    pub id: String,
    pub why: String,
}

impl Importer<'_> {
    /// Writes every id state's protection memory holds, and lines.toml does not declare,
    /// into `[protected]` with the reason state gives. An id no longer live is left out
    /// with a note: it would lock nothing.
    pub(super) fn carry_protection(&mut self, doc: &mut DocumentMut) {
        let mut block = Block::new(&["protected"]);
        for (id, (reason, _)) in self.input.state.protection_memory() {
            if self.base.protected_id(&id).is_some() {
                continue;
            }
            if !self.live().objects.values().any(|o| o.id == id) {
                self.notes.push(format!(
                    "state protects {id}, which is not live; it was not declared in [protected]"
                ));
                continue;
            }
            let note = "carried from state/: cwa never writes it";
            match doc.get_mut("protected").and_then(Item::as_table_mut) {
                Some(t) => {
                    let mut v = Value::from(reason.as_str());
                    v.decor_mut().set_suffix(format!("  # {note}"));
                    t.insert(&id, Item::Value(v));
                }
                None => block.set_noted(&id, reason.as_str(), note),
            }
            self.protection.carried.push(id);
        }
        if !block.table.is_empty() {
            self.blocks.push(block);
        }
        self.protection.declared = self.base.protected.len() + self.protection.carried.len();
    }

    /// The unprotected objects an operator should consider locking: trunks holding a number
    /// another provider than Telnyx owns, trunks several numbers share, and the rules that
    /// route their calls.
    pub(super) fn find_lock_candidates(&mut self) {
        let locked: BTreeSet<&str> = self
            .base
            .protected
            .iter()
            .map(|p| p.id.as_str())
            .chain(self.protection.carried.iter().map(String::as_str))
            .collect();
        let owners = number_providers(self.live().objects.values());
        let mut why: BTreeMap<(Kind, String), String> = BTreeMap::new();
        for o in self.live().objects.values() {
            if let Some(reason) = trunk_risk(&o.spec, &owners) {
                why.insert((o.kind(), o.id.clone()), reason);
            }
        }
        for o in self.live().of_kind(Kind::LivekitDispatchRule) {
            let Spec::LivekitDispatchRule(r) = &o.spec else {
                continue;
            };
            let risky: Vec<String> = r
                .trunks
                .iter()
                .filter_map(|t| t.id())
                .filter(|t| why.contains_key(&(Kind::LivekitInboundTrunk, t.to_string())))
                .map(|t| self.name_of(Kind::LivekitInboundTrunk, t))
                .collect();
            if !risky.is_empty() {
                let reason = format!("routes the calls of {}", risky.join(", "));
                why.insert((o.kind(), o.id.clone()), reason);
            }
        }
        let mut candidates: Vec<Candidate> = why
            .into_iter()
            .filter(|((_, id), _)| !locked.contains(id.as_str()))
            .filter_map(|((kind, id), why)| {
                let address = self.addr_of(kind, &id)?.clone();
                Some(Candidate { address, id, why })
            })
            .collect();
        candidates.sort_by(|a, b| a.address.cmp(&b.address));
        self.protection.candidates = candidates;
    }

    /// An object's address, or its id when it has none.
    fn name_of(&self, kind: Kind, id: &str) -> String {
        self.addr_of(kind, id)
            .map_or_else(|| id.to_string(), |a| format!("{a} ({id})"))
    }

    /// The commented `[protected]` block to append when nothing is locked, once.
    pub(super) fn lock_advice(&self, text: &str) -> Option<String> {
        let p = &self.protection;
        if !p.none_declared() || p.candidates.is_empty() || text.contains(ADVICE_MARK) {
            return None;
        }
        let mut out = format!(
            "\n{ADVICE_MARK}: apply may write to every object above.\n\
             # These look like objects to lock; uncomment the ones to protect and say why:\n\
             # [protected]\n"
        );
        for c in &p.candidates {
            let line = format!("{}: {}", c.address, c.why).replace('"', "'");
            out.push_str(&format!("# \"{}\" = \"{line}\"\n", c.id));
        }
        Some(out)
    }
}

/// The provider owning each live number.
fn number_providers<'a>(
    live: impl Iterator<Item = &'a LiveObject>,
) -> BTreeMap<&'a crate::model::E164, ProviderName> {
    let mut owners = BTreeMap::new();
    for o in live {
        if let Some(n) = o.spec.owned_number() {
            owners.entry(n).or_insert(o.kind().provider());
        }
    }
    owners
}

/// Why a trunk deserves a lock: it holds a number of another provider than Telnyx (a legacy
/// line another team runs), or several numbers share it.
fn trunk_risk(spec: &Spec, owners: &BTreeMap<&crate::model::E164, ProviderName>) -> Option<String> {
    let numbers = match spec {
        Spec::LivekitInboundTrunk(t) => &t.numbers,
        Spec::LivekitOutboundTrunk(t) => &t.numbers,
        _ => return None,
    };
    let mut why = Vec::new();
    let foreign: BTreeSet<ProviderName> = numbers
        .iter()
        .filter_map(|n| match n {
            NumberRef::Number(n) => owners.get(n).copied(),
            NumberRef::Of(_) => None,
        })
        .filter(|p| *p != ProviderName::Telnyx)
        .collect();
    for p in foreign {
        why.push(format!("holds numbers of {p}"));
    }
    if numbers.len() > 1 {
        why.push(format!("shared by {} numbers", numbers.len()));
    }
    (!why.is_empty()).then(|| why.join("; "))
}
