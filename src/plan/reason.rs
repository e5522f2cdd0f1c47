//! Why a change has its action: a closed set (as OpenTofu's `plans.ResourceInstanceChangeActionReason`).
//!
//! The planner decides a [`Reason`] once; every view consumes it. Drift, the renderers and the
//! executor match on the variant and never parse the sentence, which [`Reason`]'s `Display`
//! renders for people (the same words plans always printed).
//!
//! In JSON a change carries both: `reason` (the sentence) and `action_reason` (the variant and
//! its data, tagged by `code`), see [`json`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Address, ProviderName};

/// Why the planner chose a change's action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Reason {
    /// Live matches lines.toml (no-op).
    Unchanged,
    /// Declared in lines.toml, nothing live matches and state owns nothing for it (create).
    NotLive,
    /// State owns it by `id`, but the provider no longer has it (create it again).
    OwnedButGone { id: String, provider: ProviderName },
    /// Live and declared, state does not own it yet: record it (adopt), found as `found`.
    NotInState { found: Found },
    /// State owns this live object under another address; lines.toml now declares it as this
    /// one (two churches' numbers swapped, a church renamed): its state entry moves.
    OwnedAs { from: Address, to: Address },
    /// Live differs from lines.toml in fields that change in place (update).
    LiveDiffers,
    /// A field that cannot change in place differs (replace); `fields` are those fields.
    ReplaceBecause { fields: Vec<String> },
    /// A protected id: compared, never written (verify).
    Protected,
    /// A read-only provider by policy: compared, never written (verify).
    ReadOnly,
    /// A number the declaration `from` no longer stands for (it declares another one): kept
    /// under a retired address, never released.
    Retired { from: Address },
    /// An object other than a number the declaration `from` no longer stands for: removed
    /// once its replacement is in place.
    Superseded { from: Address },
    /// Owned, no longer declared: remove it (delete).
    NotDeclared,
    /// Owned, no longer declared, a number: kept because releasing is irreversible.
    KeptNumber,
    /// Owned, no longer declared, a number with Telnyx's deletion lock on: kept.
    KeptLocked,
    /// Owned, no longer declared, an E911 address a live number's emergency service still
    /// uses (issue 21): kept, so that number never calls 911 without an address.
    AddressInUse { numbers: Vec<String> },
    /// Owned, no longer declared, a Telnyx number: kept, and moved to the declared park target
    /// (`[defaults] park`) so its callers reach something declared.
    Parked { at: Address },
    /// Owned, no longer declared, already gone from live: drop it from state (forget).
    GoneFromLive,
    /// Owned under this address, but another declaration now stands for the same live object.
    MovedTo { to: Address },
    /// Owned, no longer declared, on a read-only provider: cwa stops managing it.
    ReadOnlyUndeclared,
}

/// How the planner found the live object of a declaration state does not own yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Found {
    /// By its natural key (the number; the trunk holding it; a connection's name; ...).
    NaturalKey,
    /// An order an earlier, interrupted run of this state placed (its `customer_reference`).
    EarlierRun,
    /// The live object another address of state pointed at.
    MovedFrom { from: Address },
}

impl Reason {
    /// True when state already owns the object under this address (it existed and is gone,
    /// or it is compared in place): drift calls such an object `owned`.
    pub fn owned(&self) -> bool {
        matches!(self, Self::OwnedButGone { .. } | Self::GoneFromLive)
    }

    /// True when the change moves an object state owns under another address to this one.
    pub fn moves_in_state(&self) -> bool {
        matches!(self, Self::OwnedAs { .. })
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NaturalKey => f.write_str("matched by natural key"),
            Self::EarlierRun => f.write_str(
                "bought by an earlier run of this state (found by its customer_reference)",
            ),
            Self::MovedFrom { from } => write!(f, "moved from {from}"),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unchanged => Ok(()),
            Self::NotLive => f.write_str("declared in lines.toml, not live"),
            Self::OwnedButGone { id, provider } => {
                write!(f, "owned as {id} but gone from {provider}")
            }
            Self::NotInState { found } => write!(f, "live, not yet in state ({found})"),
            Self::OwnedAs { from, to } => {
                write!(f, "in state as {from}; lines.toml now declares it as {to}")
            }
            Self::LiveDiffers => f.write_str("live differs from lines.toml"),
            Self::ReplaceBecause { .. } => {
                f.write_str("a field that cannot change in place differs")
            }
            Self::Protected => f.write_str("protected: compared, never written"),
            Self::ReadOnly => f.write_str("read-only by policy: compared, never written"),
            Self::Retired { from } => write!(
                f,
                "{from} now declares another number; this one is kept, not released"
            ),
            Self::Superseded { from } => write!(
                f,
                "{from} now stands for another live object; this one is removed after its replacement is in place"
            ),
            Self::NotDeclared => f.write_str("in state, not in lines.toml"),
            Self::KeptNumber => f.write_str(
                "not declared; kept because releasing a number is irreversible (pass --release-numbers to release it)",
            ),
            Self::KeptLocked => f.write_str(
                "not declared; kept because Telnyx's deletion lock is on (deletion_lock_enabled): cwa never releases a locked number",
            ),
            Self::AddressInUse { numbers } => write!(
                f,
                "not declared; kept because {} still use(s) it as the E911 address (give each another emergency_address, or release it, first)",
                numbers.join(", ")
            ),
            Self::Parked { at } => write!(
                f,
                "not declared; kept (releasing a number is irreversible) and parked on {at} ([defaults] park)"
            ),
            Self::GoneFromLive => f.write_str("owned, not declared, already gone from live"),
            Self::MovedTo { to } => write!(f, "moved to {to} (same live object)"),
            Self::ReadOnlyUndeclared => f.write_str(
                "not declared; Twilio is read-only by policy, so cwa stops managing it",
            ),
        }
    }
}

/// A [`Reason`] as two JSON keys of the object that carries it (use with `#[serde(flatten,
/// with = "...")]`): `reason`, the sentence people read, and `action_reason`, the variant
/// machines match on. Reading takes `action_reason` alone; the sentence is derived.
pub mod json {
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Reason;

    pub fn serialize<S: Serializer>(reason: &Reason, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("reason", &reason.to_string())?;
        map.serialize_entry("action_reason", reason)?;
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        #[derive(Deserialize)]
        struct Carried {
            action_reason: Reason,
        }
        Carried::deserialize(d).map(|c| c.action_reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Carrier {
        name: String,
        #[serde(flatten, with = "json")]
        reason: Reason,
    }

    #[test]
    fn json_carries_the_sentence_and_the_variant_and_reads_back() {
        let c = Carrier {
            name: "x".into(),
            reason: Reason::NotInState {
                found: Found::NaturalKey,
            },
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v["reason"],
            "live, not yet in state (matched by natural key)"
        );
        assert_eq!(v["action_reason"]["code"], "not-in-state");
        assert_eq!(v["action_reason"]["found"]["by"], "natural-key");
        let back: Carrier = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
