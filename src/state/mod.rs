//! What cwa owns: state maps each address to the live object behind it.
//!
//! State is committed to git, so it is written for small diffs: `state/state.json` is a
//! manifest naming shard files (`state/shards/`), each pretty JSON, keys sorted, one resource
//! per address. Writes are atomic across files (new shards first, the manifest renamed last)
//! with a backup of the previous version, and carry a `lineage` (which state this is) and a `serial` (how many
//! times it was written), as Terraform's state does.

pub mod fingerprint;
mod journal;
pub mod location;
mod lock;
mod migrate;
mod pg;
mod shards;
mod store;
mod test_hooks;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Address, Kind, Live, LiveObject, ProviderName, Spec};

pub use journal::{AuditEntry, Journal, JournalEntry, JournalPhase};
pub use lock::{holder_name as operator, on_notice, LockInfo, LockNotice, StateLock};
pub use migrate::{migrate, Migrated};
pub use pg::lease_ttl;
pub use pg::registry;
pub use store::{parse_state, write_atomic, StateStore};

/// The newest state format this build reads and writes. One policy for every version: a
/// state of a newer format is refused by every command (an older cwa must not rewrite what it
/// does not understand); an older one is read as is, and only apply, which writes state
/// anyway, writes it back in this format (read-only commands never rewrite state to migrate
/// it); the lineage is carried over unchanged by every migration (purchase references derive
/// from it).
///
/// 1: secrets as unkeyed `sha256:` fingerprints. 2: secrets as keyed MACs bound to their
/// address (`mac:<key id>:…`) and `fingerprint_key_id`. 3: in a directory, state.json is a
/// manifest of content-addressed shard files (`shards/`, see `shards.rs`), so no file grows
/// past a few MB and a one-line change rewrites one shard; the version moved so that an
/// older cwa refuses the manifest instead of reading it as a state that owns nothing.
pub const FORMAT_VERSION: u32 = 3;

/// Everything that can go wrong reading or writing state/.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("cannot {action} {path}: {source}")]
    #[diagnostic(code(cwa::state::io))]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a symbolic link: cwa writes state only inside state/, where git sees it")]
    #[diagnostic(
        code(cwa::state::symlink),
        help("replace the link with a real directory holding the files it points to (`cp -rL {path} {path}.real && rm {path} && mv {path}.real {path}`)")
    )]
    LinkedDirectory { path: String },
    #[error("{path} is not a valid cwa state file: {detail}")]
    #[diagnostic(
        code(cwa::state::corrupt),
        help("restore it from git (`git checkout -- {path}`) or from the backup next to it (state.json.backup)")
    )]
    Corrupt { path: String, detail: String },
    #[error("{path} has format version {found}, newer than this cwa understands ({supported})")]
    #[diagnostic(
        code(cwa::state::newer),
        help("upgrade cwa; an older build must not rewrite a newer state")
    )]
    NewerFormat {
        path: String,
        found: u32,
        supported: u32,
    },
    #[error("state/ is locked by {holder} (pid {pid}) since {time}")]
    #[diagnostic(
        code(cwa::state::locked),
        help("another cwa apply is running; wait for it, pass --lock-timeout SECONDS to wait, or if that process is gone run `cwa state unlock`")
    )]
    Locked {
        holder: String,
        pid: u32,
        time: String,
    },
    #[error("state/ is locked by {holder} (pid {pid}, since {time}), but that process is no longer running")]
    #[diagnostic(
        code(cwa::state::stale_lock),
        help("check nothing else is applying, then run `cwa state unlock`")
    )]
    StaleLock {
        holder: String,
        pid: u32,
        time: String,
    },
    #[error("{path} changed since this apply read it ({what}); stopped without overwriting it")]
    #[diagnostic(
        code(cwa::state::changed_under_lock),
        help("someone edited state/ (by hand, or by copying in another checkout's state) while this apply held the lock; the journal is kept: check the change, then run `cwa apply` again, which reconciles the journal with live before planning")
    )]
    ChangedSinceRead { path: String, what: String },
    #[error("cannot {action} PostgreSQL state at {target}: {detail}")]
    #[diagnostic(
        code(cwa::state::postgres),
        help("check that the server is up and the URL (--state or CWA_STATE_URL) and its grants are right (README: State in PostgreSQL); nothing after this was written, and the journal keeps what was sent: run the command again once the database answers")
    )]
    Postgres {
        target: String,
        action: &'static str,
        detail: String,
    },
    #[error("{target} was migrated to schema version {found}, newer than this cwa understands ({supported})")]
    #[diagnostic(
        code(cwa::state::newer_schema),
        help("upgrade cwa; an older build must not write to a newer schema")
    )]
    NewerSchema {
        target: String,
        found: i32,
        supported: i32,
    },
    #[error("the lease on {} is held by {} (pid {}, {} since {}) until {}", .0.target, .0.holder, .0.pid, .0.operation, .0.time, .0.expires)]
    #[diagnostic(
        code(cwa::state::leased),
        help("another cwa is applying to this workspace: wait for it (--lock-timeout SECONDS waits), or, if it is gone, its lease expires at the time above and the next apply takes over and reconciles; `cwa state unlock --force` ends it now (bumping the generation, so it can write nothing more)")
    )]
    LeaseHeld(Box<LeaseHolder>),
    #[error("this run's lease on {target} was taken over (it held generation {generation}, the current one is {current}); refused to write")]
    #[diagnostic(
        code(cwa::state::fenced),
        help("this process was paused or cut off for longer than its lease (CWA_LEASE_TTL) and another cwa took over; nothing more of this run is written, and the new holder reconciles what it had sent: run `cwa plan` to see where things stand")
    )]
    Fenced {
        target: String,
        generation: i64,
        current: i64,
    },
    #[error("{given} is not a state location: {detail}")]
    #[diagnostic(
        code(cwa::state::location),
        help("--state (or CWA_STATE_URL) takes a directory, or postgres://USER@HOST/DB?workspace=NAME")
    )]
    BadLocation { given: String, detail: String },
    #[error("{store} has {entries} journal entries of an apply that did not finish")]
    #[diagnostic(
        code(cwa::state::journal_pending),
        help(
            "run `cwa apply` against it first (it reconciles the journal with live), then migrate"
        )
    )]
    JournalPending { store: String, entries: usize },
    #[error("{store} already holds another state (lineage {lineage}, serial {serial})")]
    #[diagnostic(
        code(cwa::state::destination_taken),
        help("migrate into an empty directory or workspace (`--to-workspace NAME`); cwa never overwrites another state")
    )]
    DestinationHoldsState {
        store: String,
        lineage: String,
        serial: u64,
    },
    #[error("state/ is not locked")]
    #[diagnostic(code(cwa::state::not_locked))]
    NotLocked,
    #[error("{address} ({id}) is protected ({why}); `cwa state rm` does not stop managing a protected object")]
    #[diagnostic(
        code(cwa::state::protected),
        help("unprotecting is its own reviewed change: remove the id from [protected] in lines.toml, review the plan's Unprotect entry, run `cwa apply --unprotect {id}`, then `cwa state rm` again")
    )]
    ProtectedAddress {
        address: String,
        id: String,
        why: String,
    },
    #[error("no resource at {0} in state")]
    #[diagnostic(
        code(cwa::state::unknown),
        help("`cwa state list` shows every owned address")
    )]
    Unknown(String),
}

/// Who holds a PostgreSQL state's lease, and until when (server time, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub target: String,
    pub holder: String,
    pub pid: u32,
    pub operation: String,
    pub time: String,
    pub expires: String,
}

/// One owned object: the address it is known by and the live object behind it, as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateResource {
    pub id: String,
    /// The object's attributes as last read or written, references as live ids and secrets as
    /// fingerprints, so that a plan without refresh can run from state alone.
    pub spec: Spec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub church: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protected: bool,
}

impl StateResource {
    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    pub fn as_live(&self) -> LiveObject {
        LiveObject {
            id: self.id.clone(),
            spec: self.spec.clone(),
            extra: BTreeMap::new(),
        }
    }
}

/// The contents of state.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub format_version: u32,
    pub lineage: String,
    pub serial: u64,
    /// Owned resources by address, sorted.
    #[serde(default)]
    pub resources: BTreeMap<String, StateResource>,
    /// Protected live ids and why. Once here, an id stays protected even if lines.toml stops
    /// declaring it: only an explicit edit of this file unlocks it.
    #[serde(default)]
    pub protected: BTreeMap<String, String>,
    /// Protections the audit log records and no later `unprotect` undid, loaded beside state
    /// ([`State::remember_audit`]), never saved: a hand edit of state.json cannot erase them.
    #[serde(skip)]
    pub remembered: BTreeMap<String, String>,
    /// The id of the key the secrets' fingerprints are MACs under (see [`fingerprint`]); none
    /// in a state of format 1, whose fingerprints are unkeyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_key_id: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// Two states are equal when state.json would hold the same: the audit memory
/// (`remembered`) is loaded beside state, not part of it.
impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            format_version,
            lineage,
            serial,
            resources,
            protected,
            remembered: _,
            fingerprint_key_id,
        } = self;
        *format_version == other.format_version
            && *lineage == other.lineage
            && *serial == other.serial
            && *resources == other.resources
            && *protected == other.protected
            && *fingerprint_key_id == other.fingerprint_key_id
    }
}

impl State {
    /// An empty state with a fresh lineage.
    pub fn new() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            resources: BTreeMap::new(),
            protected: BTreeMap::new(),
            remembered: BTreeMap::new(),
            fingerprint_key_id: None,
        }
    }

    /// Binds every secret fingerprint held in a run's form to its address and this lineage
    /// (the form state.json keeps), and records the key's id.
    pub fn bind_fingerprints(&mut self, key: &fingerprint::FingerprintKey) {
        let lineage = self.lineage.clone();
        for (addr, r) in self.resources.iter_mut() {
            fingerprint::bind_spec(key, &lineage, addr, &mut r.spec);
        }
        self.fingerprint_key_id = Some(key.id().to_string());
    }

    pub fn get(&self, addr: &Address) -> Option<&StateResource> {
        self.resources.get(&addr.to_string())
    }

    /// Every owned resource with its parsed address; entries whose key no longer parses are
    /// skipped (they cannot be planned, and `cwa state list` shows them raw).
    pub fn owned(&self) -> impl Iterator<Item = (Address, &StateResource)> {
        self.resources
            .iter()
            .filter_map(|(k, r)| k.parse::<Address>().ok().map(|a| (a, r)))
    }

    /// The address that owns a live id of a kind, if any.
    pub fn address_of(&self, kind: Kind, id: &str) -> Option<Address> {
        self.owned()
            .find(|(a, r)| a.kind == kind && r.id == id)
            .map(|(a, _)| a)
    }

    pub fn upsert(&mut self, addr: &Address, resource: StateResource) {
        self.resources.insert(addr.to_string(), resource);
    }

    pub fn remove(&mut self, addr: &Address) -> Option<StateResource> {
        self.resources.remove(&addr.to_string())
    }

    pub fn is_protected(&self, id: &str) -> bool {
        self.protected.contains_key(id)
    }

    /// Every id protection memory holds, trimmed, with why and where it is remembered:
    /// state's map, a resource's `protected` flag, the audit log. Any one of them keeps the
    /// id locked; only an apply with `--unprotect ID` clears them all.
    pub fn protection_memory(&self) -> BTreeMap<String, (String, Vec<String>)> {
        let mut memory: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        let mut note = |id: &str, reason: &str, place: String| {
            let entry = memory
                .entry(id.trim().to_string())
                .or_insert_with(|| (reason.to_string(), Vec::new()));
            entry.1.push(place);
        };
        for (id, reason) in &self.protected {
            note(id, reason, "state protected map".into());
        }
        for (addr, r) in self.resources.iter().filter(|(_, r)| r.protected) {
            note(
                &r.id,
                "flagged protected in state",
                format!("flag on {addr}"),
            );
        }
        for (id, reason) in &self.remembered {
            note(id, reason, "audit log".into());
        }
        memory.retain(|id, _| !id.is_empty());
        memory
    }

    /// Loads the protections the audit log records: an id whose last `protect`/`unprotect`
    /// entry is `protect` stays remembered.
    pub fn remember_audit(&mut self, entries: &[AuditEntry]) {
        for e in entries.iter().filter(|e| e.outcome == "ok") {
            let Some(id) = e.id.as_deref().map(str::trim) else {
                continue;
            };
            match e.action.as_str() {
                "protect" => {
                    self.remembered
                        .insert(id.to_string(), format!("protected ({})", e.address));
                }
                "unprotect" => {
                    self.remembered.remove(id);
                }
                _ => {}
            }
        }
    }

    /// Stops managing an address without touching live (`cwa state rm`): refused for an
    /// object lines.toml declares protected (`declared`, trimmed ids) or that protection
    /// memory holds, by id or by number.
    pub fn forget_address(
        &mut self,
        addr: &Address,
        declared: &[String],
    ) -> Result<StateResource, StateError> {
        let r = self
            .get(addr)
            .ok_or_else(|| StateError::Unknown(addr.to_string()))?;
        let memory = self.protection_memory();
        let number = r.spec.label();
        let why = [r.id.as_str(), number.as_str()]
            .into_iter()
            .find_map(|key| {
                if r.protected {
                    return Some("flagged protected in state".to_string());
                }
                if declared.iter().any(|d| d.trim() == key) {
                    return Some("declared in [protected] of lines.toml".to_string());
                }
                memory
                    .get(key)
                    .map(|(_, places)| format!("remembered in {}", places.join(", ")))
            });
        if let Some(why) = why {
            return Err(StateError::ProtectedAddress {
                address: addr.to_string(),
                id: r.id.clone(),
                why,
            });
        }
        Ok(self.remove(addr).expect("the address was just found"))
    }

    /// Carries out an unprotect: the id leaves state's map, every resource flag and the
    /// audit memory (the caller audits the `unprotect`). False when nothing remembered it.
    pub fn unprotect(&mut self, id: &str) -> bool {
        let id = id.trim();
        let before = self.protected.len() + self.remembered.len();
        self.protected.retain(|k, _| k.trim() != id);
        self.remembered.retain(|k, _| k.trim() != id);
        let mut found = before != self.protected.len() + self.remembered.len();
        for r in self.resources.values_mut().filter(|r| r.id.trim() == id) {
            found |= std::mem::take(&mut r.protected);
        }
        found
    }

    /// A live snapshot built from state alone, for `plan --refresh=false`.
    pub fn as_live(&self) -> Live {
        let mut live = Live::default();
        for (_, r) in self.owned() {
            live.insert(r.as_live());
        }
        live.refreshed = ProviderName::ALL.to_vec();
        live
    }

    /// A fingerprint of the content, so a saved plan can tell the state moved since.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let lineage = if self.serial == 0 {
            ""
        } else {
            self.lineage.as_str()
        };
        let mut hasher = Sha256::new();
        let _ = serde_json::to_writer(&mut hasher, &(lineage, &self.resources, &self.protected));
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NumberSpec, OutboundVoiceProfileSpec, Ref, TelnyxNumberSpec, E164};

    fn number(id: &str, n: &str) -> StateResource {
        StateResource {
            id: id.into(),
            spec: Spec::TelnyxNumber(TelnyxNumberSpec {
                number: NumberSpec::Fixed {
                    number: E164::parse(n).unwrap(),
                },
                connection: Some(Ref::Id("2925081061861885519".into())),
                tags: vec![],
                settings: Default::default(),
            }),
            church: Some("medhanialem".into()),
            protected: false,
        }
    }

    #[test]
    fn round_trips_through_json_with_ids_not_addresses() {
        let mut state = State::new();
        let addr = Address::new(Kind::TelnyxNumber, "medhanialem");
        state.upsert(&addr, number("2926113000000000001", "+14144007103"));
        state.upsert(
            &Address::new(Kind::TelnyxOutboundVoiceProfile, "main"),
            StateResource {
                id: "2925086295615079772".into(),
                spec: Spec::TelnyxOutboundVoiceProfile(OutboundVoiceProfileSpec {
                    name: "ChurchWiseAI".into(),
                    enabled: true,
                    whitelisted_destinations: vec!["CA".into(), "US".into()],
                }),
                church: None,
                protected: false,
            },
        );
        let json = serde_json::to_string_pretty(&state).unwrap();
        let back: State = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
        assert_eq!(
            back.address_of(Kind::TelnyxNumber, "2926113000000000001"),
            Some(addr)
        );
        let Spec::TelnyxNumber(spec) = &back.resources["telnyx_number.medhanialem"].spec else {
            panic!("wrong kind");
        };
        assert_eq!(spec.connection, Some(Ref::Id("2925081061861885519".into())));
    }

    #[test]
    fn fingerprint_changes_with_content() {
        let mut state = State::new();
        let before = state.fingerprint();
        state.upsert(
            &Address::new(Kind::TelnyxNumber, "x"),
            number("1", "+14144007103"),
        );
        assert_ne!(before, state.fingerprint());
    }
}
