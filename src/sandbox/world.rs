//! Worlds: the state of all three emulated providers, and the seeds it starts from.
//!
//! * `runbook`: exactly `docs/runbook-world.md`, known-broken states included.
//! * `empty`: no objects at all.
//! * `synthetic:N`: the runbook's account-level Telnyx objects (FQDN connection, FQDN record,
//!   outbound voice profile) plus N church lines provisioned the way cwa's convention makes
//!   them, with no broken states.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::livekit::LivekitState;
use super::telnyx::TelnyxState;
use super::twilio::TwilioState;
use super::SandboxError;
use crate::model::E164;

/// The voice agent every runbook dispatch rule names.
pub const AGENT_NAME: &str = "churchwiseai-voice";

/// Everything the sandbox emulates, in one value that is persisted and replayed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct World {
    /// The seed this world grew from (`runbook`, `empty`, `synthetic:N`).
    pub seed: String,
    pub telnyx: TelnyxState,
    pub livekit: LivekitState,
    pub twilio: TwilioState,
}

/// Which seed to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldSpec {
    Runbook,
    Empty,
    Synthetic(usize),
}

impl WorldSpec {
    /// Parses `runbook`, `empty` or `synthetic:N`.
    pub fn parse(s: &str) -> Result<Self, SandboxError> {
        match s {
            "runbook" => Ok(Self::Runbook),
            "empty" => Ok(Self::Empty),
            other => other
                .strip_prefix("synthetic:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(Self::Synthetic)
                .ok_or_else(|| SandboxError::UnknownWorld(s.to_string())),
        }
    }
}

impl World {
    /// A fresh world grown from `spec` (`runbook`, `empty` or `synthetic:N`).
    pub fn seeded(spec: &str) -> Result<World, SandboxError> {
        let parsed = WorldSpec::parse(spec)?;
        let mut world = World {
            seed: spec.to_string(),
            ..World::default()
        };
        world.telnyx = TelnyxState::new();
        world.twilio = TwilioState::new();
        match parsed {
            WorldSpec::Empty => {}
            WorldSpec::Runbook => {
                world.telnyx.seed_runbook();
                world.livekit.seed_runbook();
                world.twilio.seed_runbook();
            }
            WorldSpec::Synthetic(n) => {
                let lines = synthetic_lines(n);
                world.telnyx.seed_account_objects();
                world.telnyx.seed_synthetic(&lines);
                world.livekit.seed_synthetic(&lines, AGENT_NAME);
            }
        }
        Ok(world)
    }
}

/// One church line of a synthetic world: what lines.toml would declare for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticLine {
    /// `church_00001`, …
    pub key: String,
    /// `Church 00001`, …
    pub church_name: String,
    pub church_id: uuid::Uuid,
    pub number: E164,
}

/// Area codes synthetic lines are spread over (none toll-free).
const SYNTHETIC_AREA_CODES: [&str; 20] = [
    "212", "213", "305", "312", "404", "415", "469", "503", "512", "602", "617", "704", "713",
    "720", "747", "773", "813", "858", "916", "972",
];

/// The first `n` synthetic lines. Deterministic: the same `n` always gives the same lines, and
/// line `i` is the same whatever `n`. Numbers are unique, never in exchange 555, and never in
/// the available-number inventory (synthetic exchanges are 201–599, inventory ones 600–999).
pub fn synthetic_lines(n: usize) -> Vec<SyntheticLine> {
    (1..=n).map(synthetic_line).collect()
}

fn synthetic_line(index: usize) -> SyntheticLine {
    SyntheticLine {
        key: format!("church_{index:05}"),
        church_name: format!("Church {index:05}"),
        church_id: uuid_from(&format!("sandbox-church:{index}")),
        number: synthetic_number(index - 1),
    }
}

fn synthetic_number(k: usize) -> E164 {
    let area = SYNTHETIC_AREA_CODES[k % SYNTHETIC_AREA_CODES.len()];
    let j = k / SYNTHETIC_AREA_CODES.len();
    let exchange = 201 + (j / 10_000) % 354;
    let exchange = if exchange >= 555 {
        exchange + 1
    } else {
        exchange
    };
    let line = j % 10_000;
    E164::parse(&format!("+1{area}{exchange:03}{line:04}")).expect("synthetic numbers are E.164")
}

/// A version-4-shaped UUID derived from a label, so seeds and ids are reproducible.
pub fn uuid_from(label: &str) -> uuid::Uuid {
    let digest = Sha256::digest(label.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The first `len` hex digits of sha256(`label`).
pub fn hex_digest(label: &str, len: usize) -> String {
    let mut hex = hex::encode(Sha256::digest(label.as_bytes()));
    hex.truncate(len);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn synthetic_lines_are_deterministic_and_unique() {
        let a = synthetic_lines(10_000);
        let b = synthetic_lines(10_000);
        assert_eq!(a, b);
        assert_eq!(a[0].key, "church_00001");
        assert_eq!(a[0].church_name, "Church 00001");
        assert_eq!(a[9_999].key, "church_10000");
        let numbers: BTreeSet<_> = a.iter().map(|l| l.number.clone()).collect();
        assert_eq!(numbers.len(), 10_000);
        let ids: BTreeSet<_> = a.iter().map(|l| l.church_id).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(a.iter().all(|l| !l.number.is_fiction()));
        assert_eq!(synthetic_lines(3)[..], a[..3]);
    }

    #[test]
    fn world_specs_parse() {
        assert_eq!(WorldSpec::parse("runbook").unwrap(), WorldSpec::Runbook);
        assert_eq!(
            WorldSpec::parse("synthetic:12").unwrap(),
            WorldSpec::Synthetic(12)
        );
        assert!(WorldSpec::parse("synthetic:x").is_err());
        assert!(WorldSpec::parse("prod").is_err());
    }
}
