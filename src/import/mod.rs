//! Import: take over infrastructure that already exists.
//!
//! Every live object is either already declared in lines.toml (matched the way a plan matches:
//! by state id, then by natural key) or not. Declared ones are recorded in state exactly as
//! they are live, with no write to any provider. Undeclared ones get a declaration appended to
//! lines.toml: one `[church.<key>]` block per church where the dispatch metadata (`church_id`)
//! or the trunk and rule names reveal it (plus override blocks for whatever differs from the
//! convention), explicit blocks otherwise. Existing text and comments are left untouched; the
//! file is edited with `toml_edit`, and every guess is marked with a comment.
//!
//! The result must parse with [`config::parse`]; a live object that validation would reject
//! (a dispatch rule naming no agent, a credential connection with no outbound voice profile)
//! is declared the way that makes the file valid, marked, and reported in
//! [`Imported::notes`]. [`import`] is pure: it reads its inputs and returns the new text and
//! state; the `cwa import` command writes them.
//!
//! Protection is never lost on the way (`protection.rs`): ids state keeps locked are written to
//! `[protected]`, and the objects that look like they need a lock are listed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use sha2::{Digest, Sha256};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

use crate::config::convention::{self, Evidence, LineDefaults, LineKeys};
use crate::config::{self, ConfigError};
use crate::model::{
    Address, Desired, DispatchKind, Kind, Live, LiveObject, NumberRef, Ref, SecretRef,
    SecretSource, Spec,
};

use crate::plan::{self, PlanInput, PlanOptions};
use crate::state::{State, StateResource};

mod block;
mod churches;
mod defaults;
mod explicit;
mod naming;
mod protection;
mod record;
mod secrets;

use block::{agents_value, number_list, strings, Block};
use defaults::base_connection;
use naming::{env_name, slug};
pub use protection::{Candidate, Protection};

/// Everything an import reads.
pub struct ImportInput<'a> {
    /// Where the declaration lives, for diagnostics.
    pub path: &'a Path,
    /// The existing declaration (empty: start a new file).
    pub base: &'a str,
    pub state: &'a State,
    pub live: &'a Live,
    pub secrets: &'a SecretSource,
}

/// What an import produced.
#[derive(Debug)]
pub struct Imported {
    /// The new lines.toml.
    pub text: String,
    /// The new state: every declared address mapped to its live object.
    pub state: State,
    /// Addresses lines.toml already declared, now recorded in state as they are live.
    pub recorded: Vec<Address>,
    /// Addresses newly declared.
    pub added: Vec<Address>,
    /// What was guessed or declared differently from live, to tell the user.
    pub notes: Vec<String>,
    /// Newly declared addresses that a plan would still change (live broken in a way the
    /// declaration fixes), with the fields.
    pub pending: Vec<String>,
    /// The locks carried from state and the objects to consider locking.
    pub protection: Protection,
}

/// Why nothing was imported.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImportError {
    #[error("the existing declaration does not validate; fix it before importing into it")]
    #[diagnostic(code(cwa::import::base_invalid))]
    Base {
        #[diagnostic_source]
        source: ConfigError,
    },
    #[error("the imported declaration would not validate, so nothing was written")]
    #[diagnostic(
        code(cwa::import::invalid),
        help("the live account is broken in a way cwa cannot declare; fix it by hand (or declare it yourself), then import again")
    )]
    Result {
        #[diagnostic_source]
        source: ConfigError,
    },
    #[error("{path} is not TOML that cwa can edit: {detail}")]
    #[diagnostic(code(cwa::import::toml))]
    Toml { path: String, detail: String },
}

/// The declaration an import starts from: `base`, or a skeleton when there is none.
fn base_text(base: &str) -> String {
    if base.trim().is_empty() {
        skeleton()
    } else {
        base.to_string()
    }
}

/// Refuses an existing declaration that does not validate, before anything is read or
/// written (state/ and its lock included): nothing is created on disk for an invalid file.
pub fn check_base(path: &Path, base: &str) -> Result<(), ImportError> {
    config::parse(path, &base_text(base)).map_err(|source| ImportError::Base { source })?;
    Ok(())
}

/// Imports the live account into `input.base` and state.
pub fn import(input: &ImportInput<'_>) -> Result<Imported, ImportError> {
    let base_text = base_text(input.base);
    let base =
        config::parse(input.path, &base_text).map_err(|source| ImportError::Base { source })?;
    let mut doc: DocumentMut =
        base_text
            .parse()
            .map_err(|e: toml_edit::TomlError| ImportError::Toml {
                path: input.path.display().to_string(),
                detail: e.to_string(),
            })?;
    let mut importer = Importer::new(input, &base.desired, &doc);
    importer.record_declared();
    importer.find_churches();
    importer.name_the_rest();
    importer.complete_defaults(&mut doc);
    importer.carry_protection(&mut doc);
    importer.declare_churches();
    importer.declare_explicit();
    importer.find_lock_candidates();
    let mut text = importer.compose(&doc);
    if let Some(advice) = importer.lock_advice(&text) {
        text.push_str(&advice);
    }
    let loaded =
        config::parse(input.path, &text).map_err(|source| ImportError::Result { source })?;
    importer.record_imported();
    let pending = importer.pending(&loaded.desired);
    let Importer {
        state,
        recorded,
        added,
        notes,
        protection,
        ..
    } = importer;
    Ok(Imported {
        text,
        state,
        recorded,
        added,
        notes,
        pending,
        protection,
    })
}

/// The start of a new lines.toml.
fn skeleton() -> String {
    format!(
        "# Voice lines as code: written by `cwa import` from the live account on {}.\n\
         # Review every comment that says \"guessed\" or \"PLACEHOLDER\". Reference: docs/lines-toml.md.\n\
         \n\
         version = 1\n\
         \n\
         [policy]\n\
         twilio = \"read-only\"\n",
        chrono::Utc::now().format("%Y-%m-%d")
    )
}

/// The `[defaults]` a church declaration expands with.
#[derive(Debug, Clone)]
struct Defaults {
    /// What a church line expands with, as the existing declaration sets it.
    line: LineDefaults,
    connection: Option<Address>,
}

/// A church found in live: its inbound trunk, its number and its rule.
#[derive(Debug, Clone)]
struct FoundChurch {
    key: String,
    id: uuid::Uuid,
    /// The id came from a `church_id` in the dispatch metadata (false: a placeholder).
    id_known: bool,
    name: String,
    number: (Kind, String),
    trunk: (Kind, String),
    rule: (Kind, String),
}

struct Importer<'a> {
    input: &'a ImportInput<'a>,
    base: &'a Desired,
    state: State,
    /// Live (kind, id) -> the address that stands for it (declared or imported).
    index: HashMap<(Kind, String), Address>,
    /// Live objects no declaration claims, to import.
    todo: BTreeMap<(Kind, String), &'a LiveObject>,
    /// Names state already gives undeclared objects it owns.
    preferred: HashMap<(Kind, String), String>,
    used: BTreeSet<Address>,
    church_keys: BTreeSet<String>,
    church_ids: BTreeSet<uuid::Uuid>,
    churches: Vec<FoundChurch>,
    defaults: Defaults,
    /// Keys `[defaults]` / `[livekit]` lack, to add: (table, key, value, comment).
    additions: Vec<(&'static str, &'static str, String, String)>,
    blocks: Vec<Block>,
    recorded: Vec<Address>,
    added: Vec<Address>,
    notes: Vec<String>,
    protection: Protection,
}

impl<'a> Importer<'a> {
    fn new(input: &'a ImportInput<'a>, base: &'a Desired, doc: &DocumentMut) -> Self {
        let raw = |key: &str| doc.get("defaults").and_then(|d| d.get(key));
        let defaults = Defaults {
            line: LineDefaults {
                agent: raw("agent")
                    .and_then(Item::as_str)
                    .unwrap_or_default()
                    .to_string(),
                room_prefix: raw("room_prefix")
                    .and_then(Item::as_str)
                    .unwrap_or(convention::ROOM_PREFIX)
                    .to_string(),
                krisp: raw("krisp")
                    .and_then(Item::as_bool)
                    .unwrap_or(convention::KRISP),
            },
            connection: base_connection(base),
        };
        let mut used: BTreeSet<Address> = base.resources.keys().cloned().collect();
        used.extend(input.state.owned().map(|(a, _)| a));
        Self {
            input,
            base,
            state: input.state.clone(),
            index: HashMap::new(),
            todo: BTreeMap::new(),
            preferred: HashMap::new(),
            used,
            church_keys: base.churches.iter().map(|c| c.key.clone()).collect(),
            church_ids: base.churches.iter().map(|c| c.id).collect(),
            churches: Vec::new(),
            defaults,
            additions: Vec::new(),
            blocks: Vec::new(),
            recorded: Vec::new(),
            added: Vec::new(),
            notes: Vec::new(),
            protection: Protection::default(),
        }
    }

    fn live(&self) -> &'a Live {
        self.input.live
    }

    /// The address a live id stands for.
    fn addr_of(&self, kind: Kind, id: &str) -> Option<&Address> {
        self.index.get(&(kind, id.to_string()))
    }

    /// The address of a connection-like object (FQDN or credential connection, TeXML app).
    fn connection_addr(&self, id: &str) -> Option<&Address> {
        [
            Kind::TelnyxFqdnConnection,
            Kind::TelnyxCredentialConnection,
            Kind::TelnyxTexmlApplication,
        ]
        .iter()
        .find_map(|k| self.addr_of(*k, id))
    }
}

#[cfg(test)]
mod tests {
    use super::churches::placeholder_id;
    use super::*;

    #[test]
    fn slugs_are_bare_keys() {
        assert_eq!(slug("Church 00001", "church"), "church_00001");
        assert_eq!(
            slug("Melvindale Church of God", "c"),
            "melvindale_church_of_god"
        );
        assert_eq!(slug("  ", "fallback"), "fallback");
        assert_eq!(
            slug("5u9xu5ysoly.sip.livekit.cloud", "fqdn"),
            "fqdn_5u9xu5ysoly_sip_livekit_cloud"
        );
    }

    #[test]
    fn placeholder_ids_are_stable() {
        assert_eq!(placeholder_id("ST_1"), placeholder_id("ST_1"));
    }

    #[test]
    fn blocks_render_dotted_headers_with_comments() {
        let mut b = Block::new(&["livekit", "dispatch_rule", "x"]);
        b.comment("Imported: something.");
        b.set("name", "X \"quoted\" Dispatch");
        b.set_noted("agents", agents_value(&[]), "guessed");
        let text = b.render();
        assert!(
            text.starts_with("# Imported: something.\n[livekit.dispatch_rule.x]\n"),
            "{text}"
        );
        let parsed: toml::Table = toml::from_str(&text).expect("the block is valid TOML");
        assert_eq!(
            parsed["livekit"]["dispatch_rule"]["x"]["name"].as_str(),
            Some("X \"quoted\" Dispatch"),
            "{text}"
        );
        assert!(text.contains("agents = []  # guessed"), "{text}");
    }
}
