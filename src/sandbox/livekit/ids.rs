//! LiveKit object ids: a prefix plus 12 characters of the base-57 alphabet of `utils/guid`.

use rand::Rng;
use sha2::{Digest, Sha256};

/// The alphabet LiveKit's `guid.New` draws from (no 0, 1, I, O, l).
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const LEN: usize = 12;

/// Inbound and outbound trunks share one id space.
pub const TRUNK_PREFIX: &str = "ST_";
/// Dispatch rules.
pub const RULE_PREFIX: &str = "SDR_";

/// A fresh random id, as the server assigns on create.
pub fn random(prefix: &str) -> String {
    let mut rng = rand::rng();
    let tail: String = (0..LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// A stable id derived from a seed string, so seeded worlds get the same ids on every run.
pub fn derived(prefix: &str, seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let tail: String = digest
        .iter()
        .take(LEN)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// Whether `id` has the shape of an id with this prefix.
#[cfg(test)]
pub fn is_well_formed(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|tail| tail.len() == LEN && tail.bytes().all(|b| ALPHABET.contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_have_the_livekit_shape() {
        let id = random(TRUNK_PREFIX);
        assert!(is_well_formed(TRUNK_PREFIX, &id), "{id}");
        assert_ne!(random(RULE_PREFIX), random(RULE_PREFIX));
    }

    #[test]
    fn derived_ids_are_stable_and_well_formed() {
        let a = derived(RULE_PREFIX, "synthetic:line-1");
        assert_eq!(a, derived(RULE_PREFIX, "synthetic:line-1"));
        assert_ne!(a, derived(RULE_PREFIX, "synthetic:line-2"));
        assert!(is_well_formed(RULE_PREFIX, &a));
        assert!(!is_well_formed(RULE_PREFIX, "SDR_0000"));
    }
}
