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

/// Variables this project's runbooks keep SIP passwords in, tried (with the whole
/// environment) when naming the variable of an imported secret.
const WELL_KNOWN_SECRETS: [&str; 2] = ["TELNYX_FQDN_PASSWORD", "TELNYX_OUTBOUND_SIP_PASSWORD"];
use crate::plan::{self, PlanInput, PlanOptions};
use crate::state::{State, StateResource};

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

/// Imports the live account into `input.base` and state.
pub fn import(input: &ImportInput<'_>) -> Result<Imported, ImportError> {
    let base_text = if input.base.trim().is_empty() {
        skeleton()
    } else {
        input.base.to_string()
    };
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
    importer.declare_churches();
    importer.declare_explicit();
    let text = importer.compose(&doc);
    let loaded =
        config::parse(input.path, &text).map_err(|source| ImportError::Result { source })?;
    importer.record_imported();
    let pending = importer.pending(&loaded.desired);
    let Importer {
        state,
        recorded,
        added,
        notes,
        ..
    } = importer;
    Ok(Imported {
        text,
        state,
        recorded,
        added,
        notes,
        pending,
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

/// One block of the appended declaration: comment lines, a dotted header and its keys.
struct Block {
    comments: Vec<String>,
    header: Vec<String>,
    table: Table,
}

impl Block {
    fn new(header: &[&str]) -> Self {
        Self {
            comments: Vec::new(),
            header: header.iter().map(|s| s.to_string()).collect(),
            table: Table::new(),
        }
    }

    fn comment(&mut self, text: impl Into<String>) {
        self.comments.push(text.into());
    }

    fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.table.insert(key, Item::Value(value.into()));
    }

    /// Sets `key` with a trailing comment.
    fn set_noted(&mut self, key: &str, value: impl Into<Value>, note: &str) {
        let mut value = value.into();
        value.decor_mut().set_suffix(format!("  # {note}"));
        self.table.insert(key, Item::Value(value));
    }

    fn render(self) -> String {
        let mut doc = DocumentMut::new();
        let (last, parents) = self.header.split_last().expect("every block has a header");
        let mut table = doc.as_table_mut();
        for p in parents {
            let entry = table.entry(p).or_insert_with(|| {
                let mut t = Table::new();
                t.set_implicit(true);
                Item::Table(t)
            });
            table = entry.as_table_mut().expect("parents are tables");
        }
        table.insert(last, Item::Table(self.table));
        let mut out: String = self.comments.iter().map(|c| format!("# {c}\n")).collect();
        out.push_str(&doc.to_string());
        out
    }
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
        }
    }

    fn live(&self) -> &'a Live {
        self.input.live
    }

    /// Plans the existing declaration against live: what it matches is recorded in state as
    /// it is live; what state owns that is gone is forgotten; the rest is to import.
    fn record_declared(&mut self) {
        let plan = plan::compute(&PlanInput {
            desired: self.base,
            state: self.input.state,
            live: self.input.live,
            refreshed: true,
            config_fingerprint: String::new(),
            options: PlanOptions::default(),
            secrets: self.input.secrets,
        });
        let mut claimed = BTreeSet::new();
        for change in &plan.changes {
            let Some(obj) = change
                .id
                .as_ref()
                .and_then(|id| self.live().get(change.kind, id))
            else {
                if change.action == plan::Action::Forget {
                    self.state.remove(&change.address);
                }
                continue;
            };
            if self.base.get(&change.address).is_none() {
                self.preferred
                    .insert((obj.kind(), obj.id.clone()), change.address.name.clone());
                continue;
            }
            claimed.insert((obj.kind(), obj.id.clone()));
            self.index
                .insert((obj.kind(), obj.id.clone()), change.address.clone());
            self.remember(
                &change.address,
                obj,
                change.church.clone(),
                change.protected,
            );
            self.recorded.push(change.address.clone());
        }
        self.todo = self
            .live()
            .objects
            .iter()
            .filter(|(k, _)| !claimed.contains(*k))
            .map(|(k, o)| (k.clone(), o))
            .collect();
    }

    fn remember(
        &mut self,
        addr: &Address,
        obj: &LiveObject,
        church: Option<String>,
        protected: bool,
    ) {
        self.state.upsert(
            addr,
            StateResource {
                id: obj.id.clone(),
                spec: obj.spec.clone(),
                church,
                protected,
            },
        );
        if protected {
            let reason = self
                .base
                .protected_id(&obj.id)
                .map(|p| p.reason.clone())
                .unwrap_or_else(|| "declared protected in lines.toml".into());
            self.state.protected.entry(obj.id.clone()).or_insert(reason);
        }
    }

    /// Inbound trunks with one bound Telnyx number and one rule that the convention
    /// recognises ([`convention::recognise`]).
    fn find_churches(&mut self) {
        let numbers: HashMap<String, (Kind, String)> = self
            .todo
            .values()
            .filter_map(|o| match &o.spec {
                Spec::TelnyxNumber(n) => n
                    .number
                    .fixed()
                    .map(|n| (n.to_string(), (o.kind(), o.id.clone()))),
                _ => None,
            })
            .collect();
        let mut rules_by_trunk: HashMap<String, Vec<&'a LiveObject>> = HashMap::new();
        for o in self.todo.values() {
            if let Spec::LivekitDispatchRule(r) = &o.spec {
                for t in r.trunks.iter().filter_map(Ref::id) {
                    rules_by_trunk.entry(t.to_string()).or_default().push(o);
                }
            }
        }
        let trunks: Vec<&'a LiveObject> = self
            .todo
            .values()
            .filter(|o| o.kind() == Kind::LivekitInboundTrunk)
            .copied()
            .collect();
        for trunk in trunks {
            let Spec::LivekitInboundTrunk(t) = &trunk.spec else {
                continue;
            };
            let rules = rules_by_trunk
                .get(&trunk.id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let [rule] = rules else { continue };
            let Spec::LivekitDispatchRule(r) = &rule.spec else {
                continue;
            };
            let Some(evidence) = convention::recognise(t, r) else {
                continue;
            };
            let [NumberRef::Number(number)] = t.numbers.as_slice() else {
                continue;
            };
            let Some(number_key) = numbers.get(number.as_str()) else {
                continue;
            };
            let bound = match &self.todo[number_key].spec {
                Spec::TelnyxNumber(n) => n.connection.is_some(),
                _ => false,
            };
            if !bound {
                continue;
            }
            let (id, id_known) = match evidence {
                Evidence::ChurchId(id) => (id, true),
                Evidence::Names => (placeholder_id(&trunk.id), false),
            };
            if !self.church_ids.insert(id) {
                continue;
            }
            let key = self
                .owned_church_key(&trunk.id, &rule.id, &number_key.1)
                .unwrap_or_else(|| self.church_key(&t.name));
            let ids = [&number_key.1, &trunk.id, &rule.id];
            for (kind, id) in convention::LINE_KINDS.into_iter().zip(ids) {
                let addr = Address::new(kind, &key);
                self.used.insert(addr.clone());
                self.index.insert((kind, id.clone()), addr);
            }
            self.churches.push(FoundChurch {
                key,
                id,
                id_known,
                name: t.name.clone(),
                number: number_key.clone(),
                trunk: (trunk.kind(), trunk.id.clone()),
                rule: (rule.kind(), rule.id.clone()),
            });
        }
        self.churches.sort_by(|a, b| a.key.cmp(&b.key));
    }

    /// The name state already owns the church's three objects under, when it is one name.
    fn owned_church_key(&mut self, trunk: &str, rule: &str, number: &str) -> Option<String> {
        let name = |kind: Kind, id: &str| self.preferred.get(&(kind, id.to_string())).cloned();
        let key = name(Kind::LivekitInboundTrunk, trunk)?;
        let same = name(Kind::LivekitDispatchRule, rule).as_ref() == Some(&key)
            && name(Kind::TelnyxNumber, number).as_ref() == Some(&key);
        (same && self.church_keys.insert(key.clone())).then_some(key)
    }

    /// A church key free as a church and as the address of its three resources.
    fn church_key(&mut self, name: &str) -> String {
        let base = slug(name, "church");
        let free = |k: &str, s: &Self| {
            !s.church_keys.contains(k)
                && convention::LINE_KINDS
                    .iter()
                    .all(|kind| !s.used.contains(&Address::new(*kind, k)))
        };
        let key = (1..)
            .map(|n| {
                if n == 1 {
                    base.clone()
                } else {
                    format!("{base}_{n}")
                }
            })
            .find(|k| free(k, self))
            .expect("some suffix is free");
        self.church_keys.insert(key.clone());
        key
    }

    /// An address for every other object to import: the name state gives it, or one made from
    /// its label.
    fn name_the_rest(&mut self) {
        let keys: Vec<(Kind, String)> = self
            .todo
            .keys()
            .filter(|k| !self.index.contains_key(*k))
            .cloned()
            .collect();
        for key in keys {
            let obj = self.todo[&key];
            let name = match self.preferred.get(&key) {
                Some(n) => n.clone(),
                None => self.free_name(key.0, &label_name(obj)),
            };
            let addr = Address::new(key.0, name);
            self.used.insert(addr.clone());
            self.index.insert(key, addr);
        }
    }

    fn free_name(&self, kind: Kind, base: &str) -> String {
        (1..)
            .map(|n| {
                if n == 1 {
                    base.to_string()
                } else {
                    format!("{base}_{n}")
                }
            })
            .find(|n| !self.used.contains(&Address::new(kind, n)))
            .expect("some suffix is free")
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

    /// Fills in `[defaults] agent`, `[defaults] connection` and `[livekit] project_id` when the
    /// declaration needs them and lacks them.
    fn complete_defaults(&mut self, doc: &mut DocumentMut) {
        let needs_agent = self
            .todo
            .values()
            .any(|o| o.kind() == Kind::LivekitDispatchRule);
        if self.defaults.line.agent.is_empty() && needs_agent {
            if let Some(agent) = most_common_agent(self.live()) {
                self.defaults.line.agent = agent.clone();
                self.additions.push((
                    "defaults",
                    "agent",
                    agent,
                    "guessed: the agent most live dispatch rules name".into(),
                ));
            }
        }
        let has_connection_key = doc
            .get("defaults")
            .and_then(|d| d.get("connection"))
            .is_some();
        if !has_connection_key && !self.churches.is_empty() {
            let chosen = self
                .defaults
                .connection
                .clone()
                .or_else(|| self.most_common_church_connection());
            if let Some(c) = chosen {
                self.additions.push((
                    "defaults",
                    "connection",
                    c.to_string(),
                    "guessed: where most church numbers are bound".into(),
                ));
                self.defaults.connection = Some(c);
            }
        }
        let has_project = doc
            .get("livekit")
            .and_then(|d| d.get("project_id"))
            .is_some();
        let needs_project = self.todo.values().any(|o| {
            matches!(o.kind().provider(), crate::model::ProviderName::Livekit)
                || o.kind() == Kind::TelnyxFqdn
        });
        if !has_project && needs_project {
            if let Some((project, from)) = guess_project_id(self.live()) {
                self.additions.push((
                    "livekit",
                    "project_id",
                    project,
                    format!("guessed from {from}"),
                ));
            }
        }
        let mut new_tables: Vec<Block> = Vec::new();
        for (table, key, value, note) in &self.additions {
            match doc.get_mut(table).and_then(Item::as_table_mut) {
                Some(t) => {
                    let mut v = Value::from(value.as_str());
                    v.decor_mut().set_suffix(format!("  # {note}"));
                    t.insert(key, Item::Value(v));
                }
                None => {
                    let at = match new_tables.iter().position(|b| b.header == [*table]) {
                        Some(i) => i,
                        None => {
                            new_tables.push(Block::new(&[table]));
                            new_tables.len() - 1
                        }
                    };
                    new_tables[at].set_noted(key, value.as_str(), note);
                }
            }
        }
        self.blocks.splice(0..0, new_tables);
    }

    fn most_common_church_connection(&self) -> Option<Address> {
        let mut counts: BTreeMap<Address, usize> = BTreeMap::new();
        for c in &self.churches {
            if let Spec::TelnyxNumber(n) = &self.todo[&c.number].spec {
                if let Some(a) = n
                    .connection
                    .as_ref()
                    .and_then(Ref::id)
                    .and_then(|id| self.connection_addr(id))
                {
                    *counts.entry(a.clone()).or_default() += 1;
                }
            }
        }
        counts.into_iter().max_by_key(|(_, n)| *n).map(|(a, _)| a)
    }

    fn declare_churches(&mut self) {
        for church in self.churches.clone() {
            self.declare_church(&church);
        }
    }

    fn declare_church(&mut self, c: &FoundChurch) {
        let (
            Spec::TelnyxNumber(number),
            Spec::LivekitInboundTrunk(trunk),
            Spec::LivekitDispatchRule(rule),
        ) = (
            &self.todo[&c.number].spec,
            &self.todo[&c.trunk].spec,
            &self.todo[&c.rule].spec,
        )
        else {
            return;
        };
        let mut block = Block::new(&["church", &c.key]);
        block.comment(format!(
            "Imported: number {} ({}), inbound trunk {}, dispatch rule {}.",
            number.number, c.number.1, c.trunk.1, c.rule.1
        ));
        if c.id_known {
            block.set("id", c.id.to_string());
        } else {
            block.set_noted(
                "id",
                c.id.to_string(),
                "PLACEHOLDER: the live rule carries no church_id; put the church's real UUID here",
            );
            self.notes.push(format!(
                "church.{}: the church id is a placeholder (live dispatch metadata has no church_id); replace it with the real one",
                c.key
            ));
        }
        block.set("name", c.name.clone());
        block.set(
            "number",
            number
                .number
                .fixed()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        );
        let DispatchKind::Individual { room_prefix, pin } = &rule.rule else {
            return;
        };
        let (Some(number_ref), Some(trunk_ref)) = (trunk.numbers.first(), rule.trunks.first())
        else {
            return;
        };
        let conv = self.defaults.line.build(
            convention::Line {
                church_id: &c.id,
                trunk_name: convention::trunk_name(&c.name, None),
                number: number_ref.clone(),
                trunk: trunk_ref.clone(),
            },
            &LineKeys::default(),
        );
        let DispatchKind::Individual {
            room_prefix: conv_prefix,
            pin: conv_pin,
        } = &conv.rule.rule
        else {
            return;
        };
        if room_prefix != conv_prefix {
            block.set("room_prefix", room_prefix.clone());
        }
        if trunk.krisp_enabled != conv.trunk.krisp_enabled {
            block.set("krisp", trunk.krisp_enabled);
        }
        let mut rule_overrides = Block::new(&["livekit", "dispatch_rule", &c.key]);
        match rule.agents.as_slice() {
            [only] if c.id_known && rule.agents == convention::agents(&only.agent_name, &c.id) => {
                if only.agent_name != self.defaults.line.agent {
                    block.set("agent", only.agent_name.clone());
                }
            }
            [] => {
                let agent = self.placeholder_agent();
                rule_overrides.set_noted(
                    "agents",
                    agents_value(&[crate::model::AgentDispatch {
                        agent_name: agent.clone(),
                        metadata: String::new(),
                    }]),
                    "live: this rule names NO agent (calls connect, the agent never joins); declared so the first plan fixes it",
                );
                self.notes.push(format!(
                    "livekit_dispatch_rule.{} ({}): live names no agent; declared with {agent}, so the next plan fixes it",
                    c.key, c.rule.1
                ));
            }
            agents => rule_overrides.set("agents", agents_value(agents)),
        }
        if rule.name != conv.rule.name {
            rule_overrides.set("name", rule.name.clone());
        }
        if rule.metadata != conv.rule.metadata {
            rule_overrides.set("metadata", rule.metadata.clone());
        }
        if pin != conv_pin {
            rule_overrides.set("pin", pin.clone());
        }
        if rule.hide_phone_number != conv.rule.hide_phone_number {
            rule_overrides.set("hide_phone_number", rule.hide_phone_number);
        }
        let mut trunk_overrides = Block::new(&["livekit", "inbound_trunk", &c.key]);
        self.trunk_extras(&mut trunk_overrides, trunk, &c.key);
        let mut number_overrides = Block::new(&["telnyx", "number", &c.key]);
        let conn = number
            .connection
            .as_ref()
            .and_then(Ref::id)
            .and_then(|id| self.connection_addr(id))
            .cloned();
        if conn.is_some() && conn != self.defaults.connection {
            number_overrides.set(
                "connection",
                conn.map(|a| a.to_string()).unwrap_or_default(),
            );
        }
        if !number.tags.is_empty() {
            number_overrides.set("tags", strings(&number.tags));
        }
        self.blocks.push(block);
        for b in [number_overrides, trunk_overrides, rule_overrides] {
            if !b.table.is_empty() {
                self.blocks.push(b);
            }
        }
        for kind in convention::LINE_KINDS {
            self.added.push(Address::new(kind, &c.key));
        }
    }

    /// The inbound trunk keys the convention does not produce.
    fn trunk_extras(&mut self, block: &mut Block, t: &crate::model::InboundTrunkSpec, name: &str) {
        if !t.metadata.is_empty() {
            block.set("metadata", t.metadata.clone());
        }
        if !t.allowed_addresses.is_empty() {
            block.set("allowed_addresses", strings(&t.allowed_addresses));
        }
        if !t.allowed_numbers.is_empty() {
            block.set("allowed_numbers", strings(&t.allowed_numbers));
        }
        if !t.auth_username.is_empty() {
            block.set("auth_username", t.auth_username.clone());
        }
        if t.auth_password.is_some() {
            let addr = Address::new(Kind::LivekitInboundTrunk, name);
            let var = env_name("LIVEKIT", name, "AUTH_PASSWORD");
            self.secret_env(
                block,
                &addr,
                "auth_password_env",
                t.auth_password.as_ref(),
                var,
            );
        }
    }

    /// The agent to declare where live names none.
    fn placeholder_agent(&self) -> String {
        if self.defaults.line.agent.is_empty() {
            "CHANGE-ME".into()
        } else {
            self.defaults.line.agent.clone()
        }
    }

    fn declare_explicit(&mut self) {
        let in_churches: BTreeSet<(Kind, &String)> = self
            .churches
            .iter()
            .flat_map(|c| [&c.number, &c.trunk, &c.rule])
            .map(|(kind, id)| (*kind, id))
            .collect();
        let mut rest: Vec<(Address, &'a LiveObject)> = self
            .todo
            .iter()
            .filter_map(|(k, o)| {
                let addr = self.index.get(k)?;
                let in_church = in_churches.contains(&(k.0, &k.1));
                (!in_church && addr.kind != Kind::TwilioTrunkNumber).then(|| (addr.clone(), *o))
            })
            .collect();
        rest.sort_by_key(|(a, _)| (section_rank(a.kind), a.clone()));
        for (addr, obj) in rest {
            if let Some(block) = self.explicit(&addr, obj) {
                self.blocks.push(block);
                self.added.push(addr.clone());
                if let Some(tn) = self.trunk_number_of(&addr) {
                    self.added.push(tn);
                }
            }
        }
        for (k, o) in &self.todo {
            if k.0 == Kind::TwilioTrunkNumber && !self.index.contains_key(k) {
                self.notes.push(format!(
                    "twilio trunk number {} ({}) was left unmanaged: its number is declared without `trunk`",
                    o.id,
                    o.spec.label()
                ));
            }
        }
    }

    /// For an imported Twilio number on a trunk: the `twilio_trunk_number` its `trunk` key
    /// declares, indexed so state records it.
    fn trunk_number_of(&mut self, addr: &Address) -> Option<Address> {
        if addr.kind != Kind::TwilioNumber {
            return None;
        }
        let (id, _) = self.twilio_attachment(addr)?;
        let tn = Address::new(Kind::TwilioTrunkNumber, &addr.name);
        self.index.insert((Kind::TwilioTrunkNumber, id), tn.clone());
        Some(tn)
    }

    /// The live trunk attachment of an imported Twilio number: its id and the trunk address.
    fn twilio_attachment(&self, addr: &Address) -> Option<(String, Address)> {
        let number_id = self
            .index
            .iter()
            .find(|(k, a)| k.0 == Kind::TwilioNumber && *a == addr)
            .map(|(k, _)| k.1.clone())?;
        self.todo.values().find_map(|o| match &o.spec {
            Spec::TwilioTrunkNumber(s) if s.number.id() == Some(number_id.as_str()) => {
                let trunk = s
                    .trunk
                    .id()
                    .and_then(|t| self.addr_of(Kind::TwilioTrunk, t))?;
                Some((o.id.clone(), trunk.clone()))
            }
            _ => None,
        })
    }

    fn explicit(&mut self, addr: &Address, obj: &LiveObject) -> Option<Block> {
        let section = section_of(addr.kind)?;
        let mut header: Vec<&str> = section.to_vec();
        header.push(&addr.name);
        let mut b = Block::new(&header);
        b.comment(format!(
            "Imported: {} {} ({}).",
            addr.kind,
            obj.id,
            obj.spec.label()
        ));
        match &obj.spec {
            Spec::TelnyxOutboundVoiceProfile(p) => {
                b.set("name", p.name.clone());
                b.set("enabled", p.enabled);
                b.set(
                    "whitelisted_destinations",
                    strings(&p.whitelisted_destinations),
                );
            }
            Spec::TelnyxTexmlApplication(t) => {
                b.set("name", t.friendly_name.clone());
                b.set("voice_url", t.voice_url.clone());
                b.set("voice_method", t.voice_method.clone());
            }
            Spec::TelnyxFqdnConnection(c) => self.fqdn_connection(&mut b, addr, c),
            Spec::TelnyxCredentialConnection(c) => self.credential_connection(&mut b, addr, c),
            Spec::TelnyxFqdn(f) => {
                let conn = f
                    .connection
                    .id()
                    .and_then(|id| self.addr_of(Kind::TelnyxFqdnConnection, id))?;
                b.set("connection", conn.to_string());
                b.set("fqdn", f.fqdn.clone());
                b.set("port", i64::from(f.port));
                b.set("dns_record_type", f.dns_record_type.clone());
                b.set("default_primary", f.default_primary);
            }
            Spec::TelnyxNumber(n) => self.telnyx_number(&mut b, addr, n),
            Spec::LivekitInboundTrunk(t) => {
                b.set("name", t.name.clone());
                b.set("numbers", number_list(&t.numbers));
                b.set("krisp", t.krisp_enabled);
                self.trunk_extras(&mut b, t, &addr.name);
            }
            Spec::LivekitOutboundTrunk(t) => self.outbound_trunk(&mut b, addr, t),
            Spec::LivekitDispatchRule(r) => self.dispatch_rule(&mut b, addr, r),
            Spec::TwilioTrunk(t) => {
                b.set("name", t.friendly_name.clone());
                if !t.domain_name.is_empty() {
                    b.set("domain_name", t.domain_name.clone());
                }
                let mut urls = Array::new();
                for u in &t.origination_urls {
                    let mut it = InlineTable::new();
                    it.insert("name", u.friendly_name.clone().into());
                    it.insert("sip_url", u.sip_url.clone().into());
                    it.insert("priority", i64::from(u.priority).into());
                    it.insert("weight", i64::from(u.weight).into());
                    it.insert("enabled", u.enabled.into());
                    urls.push(it);
                }
                b.set("origination_urls", urls);
            }
            Spec::TwilioNumber(n) => {
                b.set("number", n.number.to_string());
                b.set("name", n.friendly_name.clone());
                if let Some((_, trunk)) = self.twilio_attachment(addr) {
                    b.set("trunk", trunk.to_string());
                }
            }
            Spec::TwilioTrunkNumber(_) => return None,
        }
        Some(b)
    }

    fn fqdn_connection(
        &mut self,
        b: &mut Block,
        addr: &Address,
        c: &crate::model::FqdnConnectionSpec,
    ) {
        b.set("name", c.connection_name.clone());
        if !c.active {
            b.set("active", false);
        }
        b.set("transport", c.transport_protocol.clone());
        if let Some(user) = &c.user_name {
            b.set("user_name", user.clone());
        }
        if c.password.is_some() {
            self.password_env(b, addr, c.password.as_ref());
        }
        b.set("ani_number_format", c.ani_number_format.clone());
        b.set("dnis_number_format", c.dnis_number_format.clone());
        if let Some(ovp) = c
            .outbound_voice_profile
            .as_ref()
            .and_then(Ref::id)
            .and_then(|id| self.addr_of(Kind::TelnyxOutboundVoiceProfile, id))
        {
            b.set("outbound_voice_profile", ovp.to_string());
        }
    }

    fn credential_connection(
        &mut self,
        b: &mut Block,
        addr: &Address,
        c: &crate::model::CredentialConnectionSpec,
    ) {
        b.set("name", c.connection_name.clone());
        b.set("user_name", c.user_name.clone());
        if !c.active {
            b.set("active", false);
        }
        self.password_env(b, addr, c.password.as_ref());
        let bound = c
            .outbound_voice_profile
            .as_ref()
            .and_then(Ref::id)
            .and_then(|id| self.addr_of(Kind::TelnyxOutboundVoiceProfile, id))
            .cloned();
        match bound {
            Some(ovp) => b.set("outbound_voice_profile", ovp.to_string()),
            None => {
                if let Some(ovp) = self.usable_profile() {
                    b.set_noted(
                        "outbound_voice_profile",
                        ovp.to_string(),
                        "live: NO outbound voice profile bound (Telnyx silently drops every call, 403/D35); declared so the first plan binds it",
                    );
                    self.notes.push(format!(
                        "{addr}: live has no outbound voice profile; declared with {ovp}, so the next plan binds it"
                    ));
                }
            }
        }
    }

    /// An enabled outbound voice profile whitelisting the US, for a connection that has none.
    fn usable_profile(&self) -> Option<Address> {
        self.live()
            .of_kind(Kind::TelnyxOutboundVoiceProfile)
            .filter(|o| matches!(&o.spec, Spec::TelnyxOutboundVoiceProfile(p) if p.enabled))
            .max_by_key(|o| match &o.spec {
                Spec::TelnyxOutboundVoiceProfile(p) => {
                    p.whitelisted_destinations.iter().any(|c| c == "US")
                }
                _ => false,
            })
            .and_then(|o| self.addr_of(o.kind(), &o.id).cloned())
    }

    fn password_env(&mut self, b: &mut Block, addr: &Address, live: Option<&SecretRef>) {
        let var = env_name("TELNYX", &addr.name, "PASSWORD");
        self.secret_env(b, addr, "password_env", live, var);
    }

    /// Names the variable that holds a secret: one whose value has the fingerprint live
    /// reports, when the environment has one; otherwise `guess`, marked and reported.
    fn secret_env(
        &mut self,
        b: &mut Block,
        addr: &Address,
        key: &str,
        live: Option<&SecretRef>,
        guess: String,
    ) {
        let found = live
            .and_then(SecretRef::known_fingerprint)
            .and_then(|fp| self.variable_holding(&fp));
        match found {
            Some(var) => b.set_noted(key, var, "found: this variable holds the password live has"),
            None => {
                b.set_noted(
                    key,
                    guess.clone(),
                    "guessed variable name: export the password in it",
                );
                self.notes.push(format!(
                    "{addr}: set {guess} to its password before applying"
                ));
            }
        }
    }

    /// An environment variable (or sandbox secret) whose value has this fingerprint.
    fn variable_holding(&self, fingerprint: &str) -> Option<String> {
        let mut names: BTreeSet<String> =
            WELL_KNOWN_SECRETS.iter().map(|s| s.to_string()).collect();
        names.extend(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
        names.into_iter().find(|name| {
            self.input
                .secrets
                .get(name)
                .is_some_and(|v| crate::model::fingerprint(&v) == fingerprint)
        })
    }

    fn telnyx_number(&mut self, b: &mut Block, addr: &Address, n: &crate::model::TelnyxNumberSpec) {
        b.set(
            "number",
            n.number.fixed().map(|n| n.to_string()).unwrap_or_default(),
        );
        match n.connection.as_ref().and_then(Ref::id) {
            Some(id) => match self.connection_addr(id).cloned() {
                Some(conn) => b.set("connection", conn.to_string()),
                None => {
                    b.comment(format!(
                        "live: bound to {id}, which is not a connection cwa can read"
                    ));
                    self.notes.push(format!("{addr}: bound to unknown connection {id}; declared on the default connection"));
                }
            },
            None => {
                b.comment("live: bound to NO connection (calls go nowhere); declared on the default connection");
                self.notes.push(format!("{addr}: live is bound to no connection; declared on the default connection, so the next plan binds it"));
            }
        }
        if !n.tags.is_empty() {
            b.set("tags", strings(&n.tags));
        }
    }

    fn outbound_trunk(
        &mut self,
        b: &mut Block,
        addr: &Address,
        t: &crate::model::OutboundTrunkSpec,
    ) {
        b.set("name", t.name.clone());
        b.set("address", t.address.clone());
        b.set("transport", t.transport.clone());
        b.set("numbers", number_list(&t.numbers));
        if !t.auth_username.is_empty() {
            b.set("auth_username", t.auth_username.clone());
        }
        if t.auth_password.is_some() {
            let var = env_name("LIVEKIT", &addr.name, "AUTH_PASSWORD");
            self.secret_env(b, addr, "auth_password_env", t.auth_password.as_ref(), var);
        }
        if !t.headers.is_empty() {
            let mut h = InlineTable::new();
            for (k, v) in &t.headers {
                h.insert(k, v.clone().into());
            }
            b.set("headers", h);
        }
        if !t.destination_country.is_empty() {
            b.set("destination_country", t.destination_country.clone());
        }
        if !t.metadata.is_empty() {
            b.set("metadata", t.metadata.clone());
        }
    }

    fn dispatch_rule(&mut self, b: &mut Block, addr: &Address, r: &crate::model::DispatchRuleSpec) {
        b.set("name", r.name.clone());
        let mut trunks = Array::new();
        for t in &r.trunks {
            match t
                .id()
                .and_then(|id| self.addr_of(Kind::LivekitInboundTrunk, id))
            {
                Some(a) => trunks.push(a.to_string()),
                None => {
                    b.comment(format!("live: also names trunk {t}, which is not live"));
                    self.notes.push(format!(
                        "{addr}: names trunk {t}, which is not live; left out"
                    ));
                }
            }
        }
        if !trunks.is_empty() {
            b.set("trunks", trunks);
        }
        match &r.rule {
            DispatchKind::Individual { room_prefix, pin } => {
                b.set("type", "individual");
                b.set("room_prefix", room_prefix.clone());
                if !pin.is_empty() {
                    b.set("pin", pin.clone());
                }
            }
            DispatchKind::Direct { room_name, pin } => {
                b.set("type", "direct");
                b.set("room_name", room_name.clone());
                if !pin.is_empty() {
                    b.set("pin", pin.clone());
                }
            }
            DispatchKind::Callee {
                room_prefix,
                pin,
                randomize,
            } => {
                b.set("type", "callee");
                b.set("room_prefix", room_prefix.clone());
                if !pin.is_empty() {
                    b.set("pin", pin.clone());
                }
                if *randomize {
                    b.set("randomize", true);
                }
            }
        }
        if r.agents.is_empty() {
            let agent = self.placeholder_agent();
            b.set_noted(
                "agents",
                agents_value(&[crate::model::AgentDispatch { agent_name: agent.clone(), metadata: String::new() }]),
                "live: this rule names NO agent (calls connect, the agent never joins); declared so the first plan fixes it",
            );
            self.notes.push(format!(
                "{addr}: live names no agent; declared with {agent}, so the next plan fixes it"
            ));
        } else {
            b.set("agents", agents_value(&r.agents));
        }
        if r.hide_phone_number {
            b.set("hide_phone_number", true);
        }
        if !r.metadata.is_empty() {
            b.set("metadata", r.metadata.clone());
        }
    }

    /// The base text (with `[defaults]`/`[livekit]` completed) and the appended blocks.
    fn compose(&mut self, doc: &DocumentMut) -> String {
        let mut text = doc.to_string();
        let blocks = std::mem::take(&mut self.blocks);
        if blocks.is_empty() {
            return text;
        }
        while text.ends_with("\n\n") {
            text.pop();
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let (settings, blocks): (Vec<Block>, Vec<Block>) =
            blocks.into_iter().partition(|b| b.header.len() == 1);
        for b in settings {
            text.push('\n');
            text.push_str(&b.render());
        }
        if blocks.is_empty() {
            return text;
        }
        text.push_str(&format!(
            "\n# ----------------------------------------------------------------------------------------\n\
             # Imported by `cwa import` on {}: live objects no declaration claimed.\n\
             # ----------------------------------------------------------------------------------------\n",
            chrono::Utc::now().format("%Y-%m-%d")
        ));
        for b in blocks {
            text.push('\n');
            text.push_str(&b.render());
        }
        text
    }

    /// Records every imported object in state under its new address.
    fn record_imported(&mut self) {
        let church_of: HashMap<String, String> = self
            .churches
            .iter()
            .map(|c| (c.key.clone(), c.key.clone()))
            .collect();
        let added: BTreeSet<Address> = self.added.iter().cloned().collect();
        let entries: Vec<(Address, &'a LiveObject)> = self
            .todo
            .iter()
            .filter_map(|(k, o)| {
                let a = self.index.get(k)?;
                added.contains(a).then(|| (a.clone(), *o))
            })
            .collect();
        for (addr, obj) in entries {
            let church = church_of
                .get(&addr.name)
                .filter(|_| convention::LINE_KINDS.contains(&addr.kind));
            self.remember(&addr, obj, church.cloned(), false);
        }
    }

    /// Newly declared addresses that a plan of the result would still change.
    fn pending(&self, desired: &Desired) -> Vec<String> {
        let added: BTreeSet<&Address> = self.added.iter().collect();
        let plan = plan::compute(&PlanInput {
            desired,
            state: &self.state,
            live: self.input.live,
            refreshed: true,
            config_fingerprint: String::new(),
            options: PlanOptions::default(),
            secrets: self.input.secrets,
        });
        plan.changes
            .iter()
            .filter(|c| added.contains(&c.address) && c.action.changes_anything())
            .map(|c| {
                let fields: Vec<&str> = c.fields.iter().map(|f| f.path.as_str()).collect();
                format!(
                    "{} {} ({})",
                    c.action.as_str(),
                    c.address,
                    fields.join(", ")
                )
            })
            .collect()
    }
}

/// Where a church number binds in the existing declaration: what its church numbers use.
fn base_connection(base: &Desired) -> Option<Address> {
    base.resources
        .values()
        .find_map(|r| match (&r.church, &r.spec) {
            (Some(_), Spec::TelnyxNumber(n)) => n.connection.as_ref().and_then(Ref::addr).cloned(),
            _ => None,
        })
}

/// A stable placeholder church id for a church found by name only.
fn placeholder_id(trunk_id: &str) -> uuid::Uuid {
    let digest = Sha256::digest(format!("cwa-import-placeholder:{trunk_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn most_common_agent(live: &Live) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in live.of_kind(Kind::LivekitDispatchRule) {
        if let Spec::LivekitDispatchRule(r) = &o.spec {
            for a in &r.agents {
                *counts.entry(a.agent_name.as_str()).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .filter(|(a, _)| !a.is_empty())
        .max_by_key(|(_, n)| *n)
        .map(|(a, _)| a.to_string())
}

/// `p_<id>` from the first project-id SIP host live objects point at.
fn guess_project_id(live: &Live) -> Option<(String, &'static str)> {
    let project = |host: &str| {
        host.strip_suffix(".sip.livekit.cloud")
            .filter(|id| !id.is_empty() && !id.contains('.'))
            .map(|id| format!("p_{id}"))
    };
    let from_fqdn = live.of_kind(Kind::TelnyxFqdn).find_map(|o| match &o.spec {
        Spec::TelnyxFqdn(f) => project(&f.fqdn),
        _ => None,
    });
    if let Some(p) = from_fqdn {
        return Some((p, "the Telnyx FQDN record"));
    }
    live.of_kind(Kind::TwilioTrunk).find_map(|o| match &o.spec {
        Spec::TwilioTrunk(t) => t.origination_urls.iter().find_map(|u| {
            let host = u
                .sip_url
                .trim_start_matches("sip:")
                .split([';', ':'])
                .next()?;
            project(host).map(|p| (p, "a Twilio origination URL"))
        }),
        _ => None,
    })
}

/// The section path of a kind's explicit blocks.
fn section_of(kind: Kind) -> Option<&'static [&'static str]> {
    Some(match kind {
        Kind::TelnyxNumber => &["telnyx", "number"],
        Kind::TelnyxFqdnConnection => &["telnyx", "fqdn_connection"],
        Kind::TelnyxFqdn => &["telnyx", "fqdn"],
        Kind::TelnyxCredentialConnection => &["telnyx", "credential_connection"],
        Kind::TelnyxOutboundVoiceProfile => &["telnyx", "outbound_voice_profile"],
        Kind::TelnyxTexmlApplication => &["telnyx", "texml_application"],
        Kind::LivekitInboundTrunk => &["livekit", "inbound_trunk"],
        Kind::LivekitOutboundTrunk => &["livekit", "outbound_trunk"],
        Kind::LivekitDispatchRule => &["livekit", "dispatch_rule"],
        Kind::TwilioNumber => &["twilio", "number"],
        Kind::TwilioTrunk => &["twilio", "trunk"],
        Kind::TwilioTrunkNumber => return None,
    })
}

/// The order blocks are written in: Telnyx, LiveKit, Twilio, dependencies first.
fn section_rank(kind: Kind) -> usize {
    Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(usize::MAX)
}

/// A name for an imported object, from what it is called live.
fn label_name(obj: &LiveObject) -> String {
    match &obj.spec {
        Spec::TelnyxNumber(n) => n
            .number
            .fixed()
            .map(|n| format!("number_{}", n.digits()))
            .unwrap_or_else(|| format!("number_{}", obj.id)),
        Spec::TelnyxFqdn(f) => slug(&f.fqdn, "fqdn"),
        Spec::TwilioNumber(n) => slug(&n.friendly_name, &format!("number_{}", n.number.digits())),
        spec => slug(&spec.label(), obj.kind().as_str()),
    }
}

/// A lines.toml name: lower-case letters, digits and `_`, starting with a letter.
fn slug(text: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let mut out = out.trim_end_matches('_').to_string();
    out.truncate(48);
    let out = out.trim_end_matches('_').to_string();
    match out.chars().next() {
        None => fallback.to_string(),
        Some(c) if c.is_ascii_digit() => format!("{fallback}_{out}"),
        Some(_) => out,
    }
}

/// `TELNYX_<NAME>_PASSWORD`-style environment variable name.
fn env_name(prefix: &str, name: &str, suffix: &str) -> String {
    format!("{prefix}_{}_{suffix}", name.to_ascii_uppercase())
}

fn strings(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

fn number_list(numbers: &[NumberRef]) -> Array {
    numbers
        .iter()
        .filter_map(|n| match n {
            NumberRef::Number(n) => Some(n.to_string()),
            NumberRef::Of(_) => None,
        })
        .collect()
}

fn agents_value(agents: &[crate::model::AgentDispatch]) -> Array {
    let mut out = Array::new();
    for a in agents {
        let mut t = InlineTable::new();
        t.insert("name", a.agent_name.clone().into());
        if !a.metadata.is_empty() {
            t.insert("metadata", a.metadata.clone().into());
        }
        out.push(t);
    }
    out
}

#[cfg(test)]
mod tests {
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
