//! Fingerprints of secrets: keyed MACs, so that a committed state or a plan file never lets
//! anyone test a guessed password offline, and state never shows that two objects share one.
//!
//! Two forms, one key:
//! - **In a run** (plans, plan files, live objects, the journal) a secret is
//!   `hmac-sha256:<key id>:<mac>`, an HMAC-SHA256 of the value under the fingerprint key.
//!   Declared and live secrets are compared in this form.
//! - **In state.json** each of those is bound to the object holding it:
//!   `mac:<key id>:<mac>`, an HMAC-SHA256 under the same key of the state's lineage, the
//!   address and the run form. Equal passwords on two addresses (or in two states) differ.
//!   State's form is never compared with anything: with refresh, declared secrets are compared
//!   with live; without (`plan --refresh=false`, a fork without secrets) secrets are not
//!   compared at all, so those plans never need the key.
//!
//! The key (decided here, documented in RELIABILITY.md): `CWA_FINGERPRINT_KEY` when set;
//! otherwise derived (HMAC-SHA256) from the first provider credential present, in the order
//! `TELNYX_API_KEY`, `LIVEKIT_API_SECRET`, `TWILIO_AUTH_TOKEN`. Only a run that can write
//! (apply, and plans that refresh, which read live secrets anyway) has those; readers of the
//! repository, its plan artifacts and forks do not. Deriving it needs no new secret to manage,
//! and rotating the credential rotates the key; `CWA_FINGERPRINT_KEY` decouples the two. The key
//! id (a MAC of a constant under the key, so it reveals nothing of it) is stored in state. A
//! process with none of these uses a random key of its own, so nothing it computes can be
//! compared across runs.
//!
//! Rotation and migration are the same step: apply rebinds every owned object's secrets from
//! what it just read live ([`rebind_from_live`]), so a new key (or a state written by an older
//! cwa with unkeyed `sha256:` fingerprints) is re-fingerprinted on the next apply without any
//! change to show.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{SecretRef, Spec};

type HmacSha256 = Hmac<Sha256>;

/// Prefix of the run form.
pub const RUN_PREFIX: &str = "hmac-sha256:";
/// Prefix of the form stored in state.
pub const STATE_PREFIX: &str = "mac:";

/// The fingerprint key of this process and its public id.
#[derive(Clone)]
pub struct FingerprintKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FingerprintKey({})", self.id)
    }
}

/// Where the key comes from, first match wins.
pub const KEY_SOURCES: [&str; 4] = [
    "CWA_FINGERPRINT_KEY",
    "TELNYX_API_KEY",
    "LIVEKIT_API_SECRET",
    "TWILIO_AUTH_TOKEN",
];

impl FingerprintKey {
    /// The key from the first source `get` knows; `None` when it knows none.
    pub fn from_sources(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        KEY_SOURCES.iter().find_map(|name| {
            let value = get(name).filter(|v| !v.is_empty())?;
            Some(Self::derive(name, &value))
        })
    }

    fn derive(source: &str, material: &str) -> Self {
        let key: [u8; 32] = mac(
            material.as_bytes(),
            &[b"cwa-fingerprint-key-v1", source.as_bytes()],
        );
        Self::from_bytes(key)
    }

    fn from_bytes(key: [u8; 32]) -> Self {
        let id = hex::encode(&mac(&key, &[b"cwa-fingerprint-key-id"])[..6]);
        Self { key, id }
    }

    /// A random key, for a process that has no key source.
    fn ephemeral() -> Self {
        Self::from_bytes(rand::random())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The run form of a secret value.
    pub fn of_value(&self, value: &str) -> String {
        let m = mac(&self.key, &[b"cwa-secret", value.as_bytes()]);
        format!("{RUN_PREFIX}{}:{}", self.id, hex::encode(&m[..16]))
    }

    /// The state form of a run-form fingerprint held at `address` in the state `lineage`.
    pub fn bind(&self, lineage: &str, address: &str, run_form: &str) -> String {
        let m = mac(
            &self.key,
            &[
                b"cwa-state",
                lineage.as_bytes(),
                address.as_bytes(),
                run_form.as_bytes(),
            ],
        );
        format!("{STATE_PREFIX}{}:{}", self.id, hex::encode(&m[..16]))
    }
}

/// HMAC-SHA256 of the parts, each followed by a NUL so that no two part lists collide.
fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        m.update(part);
        m.update(b"\0");
    }
    m.finalize().into_bytes().into()
}

static KEY: OnceLock<FingerprintKey> = OnceLock::new();

/// Sets this process's key from its environment, once (later calls keep the first key: every
/// fingerprint a process computes must be comparable with the others).
pub fn install(get: impl Fn(&str) -> Option<String>) {
    if let Some(key) = FingerprintKey::from_sources(get) {
        let _ = KEY.set(key);
    }
}

/// This process's key: the installed one, else a random one.
pub fn key() -> &'static FingerprintKey {
    KEY.get_or_init(FingerprintKey::ephemeral)
}

/// Binds every run-form secret of `spec` (held at `address`) to its address and lineage, in
/// place; secrets already in state form, unknown ones and names are left alone.
pub fn bind_spec(key: &FingerprintKey, lineage: &str, address: &str, spec: &mut Spec) {
    for secret in spec.secrets_mut() {
        let bound = match &*secret {
            SecretRef::Fingerprint(f) if f.starts_with(RUN_PREFIX) => key.bind(lineage, address, f),
            SecretRef::Value(v) => key.bind(lineage, address, &key.of_value(v.expose())),
            _ => continue,
        };
        *secret = SecretRef::Fingerprint(bound);
    }
}

/// Makes the stored secrets of `stored` (held at `address`) the state form of `live`'s.
/// Returns whether anything changed (a new key, a state from an older cwa, a secret that
/// changed live). Only secret fields are touched.
pub fn rebind_from_live(
    key: &FingerprintKey,
    lineage: &str,
    address: &str,
    stored: &mut Spec,
    live: &Spec,
) -> bool {
    if stored.kind() != live.kind() {
        return false;
    }
    let mut fresh = live.clone();
    bind_spec(key, lineage, address, &mut fresh);
    let fresh: Vec<SecretRef> = fresh.secrets_mut().into_iter().map(|s| s.clone()).collect();
    let mut changed = false;
    for (mine, new) in stored.secrets_mut().into_iter().zip(fresh) {
        if matches!(new, SecretRef::Fingerprint(ref f) if f.starts_with(STATE_PREFIX))
            && *mine != new
        {
            *mine = new;
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(material: &str) -> FingerprintKey {
        FingerprintKey::from_sources(|n| (n == "CWA_FINGERPRINT_KEY").then(|| material.into()))
            .unwrap()
    }

    #[test]
    fn the_run_form_depends_on_the_key_and_reveals_nothing_unkeyed() {
        let (a, b) = (key("k1"), key("k2"));
        assert_eq!(a.of_value("pw"), a.of_value("pw"));
        assert_ne!(a.of_value("pw"), b.of_value("pw"));
        assert_ne!(a.id(), b.id());
        assert!(a
            .of_value("pw")
            .starts_with(&format!("hmac-sha256:{}:", a.id())));
        assert!(!a
            .of_value("pw")
            .contains(&crate::model::fingerprint_v1("pw")[7..]));
    }

    #[test]
    fn the_state_form_differs_per_address_and_lineage() {
        let k = key("k1");
        let f = k.of_value("shared-password");
        let one = k.bind("L1", "telnyx_credential_connection.a", &f);
        assert_ne!(one, k.bind("L1", "livekit_outbound_trunk.b", &f));
        assert_ne!(one, k.bind("L2", "telnyx_credential_connection.a", &f));
        assert!(one.starts_with(&format!("mac:{}:", k.id())));
    }

    #[test]
    fn the_key_comes_from_the_first_source_present() {
        let from_telnyx = FingerprintKey::from_sources(|n| {
            (n == "TELNYX_API_KEY" || n == "TWILIO_AUTH_TOKEN").then(|| "x".to_string())
        })
        .unwrap();
        let telnyx_only =
            FingerprintKey::from_sources(|n| (n == "TELNYX_API_KEY").then(|| "x".to_string()))
                .unwrap();
        assert_eq!(from_telnyx.id(), telnyx_only.id());
        let explicit = key("x");
        assert_ne!(
            explicit.id(),
            telnyx_only.id(),
            "the source is part of the key"
        );
        assert!(FingerprintKey::from_sources(|_| None).is_none());
    }
}
