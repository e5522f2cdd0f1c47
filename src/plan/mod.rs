//! A plan is data: the list of changes that would make live match lines.toml, the order they
//! run in, what is unmanaged, what the checks found, and fingerprints of everything read.
//! [`compute`] builds it and never prints; renderers and the executor consume it.

mod diff;
mod fields;
mod graph;
mod lineage;
mod matching;
mod numbers;
pub mod reason;
mod safety;
pub mod saved;
pub mod targets;
mod twilio_domains;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Address, Kind, Spec};

pub use diff::{compute, PlanInput, PlanOptions};
pub use fields::{diff as diff_fields, FieldChange, SENSITIVE};
pub use graph::{order, ChangeGraph, CycleError};
pub use reason::{Found, Reason};

/// The version of the JSON plan schema (`cwa plan --json`, plan files). Bumped on any
/// incompatible change; readers refuse a newer major version.
pub const FORMAT_VERSION: &str = "1.1";

/// What a change does. A closed set: every change is exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Live matches lines.toml.
    NoOp,
    /// Not live yet: create it (for a number: search, buy, bind).
    Create,
    /// Live differs in fields that can change in place.
    Update,
    /// Live differs in a field that cannot change in place: create the new object, repoint
    /// what uses it, then remove the old one (a number is kept, never released).
    Replace,
    /// Owned by cwa, no longer declared: remove it (for a number: release, irreversible).
    Delete,
    /// Declared and live but not yet owned: record it in state, then update any differing
    /// fields. Never a duplicate create.
    Adopt,
    /// Protected or read-only: compared, never written.
    Verify,
    /// A number no longer declared, kept (not released) because releasing is irreversible.
    Retain,
    /// Owned, not declared, and already gone from live: drop it from state.
    Forget,
}

impl Action {
    /// Whether applying this action calls a provider or changes state.
    pub fn changes_anything(self) -> bool {
        !matches!(self, Self::NoOp | Self::Verify | Self::Retain)
    }

    /// The marker the human and Markdown views put before the address.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::NoOp => " ",
            Self::Create => "+",
            Self::Update => "~",
            Self::Replace => "-/+",
            Self::Delete => "-",
            Self::Adopt => "<=",
            Self::Verify => "?",
            Self::Retain => "=",
            Self::Forget => "x",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoOp => "no-op",
            Self::Create => "create",
            Self::Update => "update",
            Self::Replace => "replace",
            Self::Delete => "delete",
            Self::Adopt => "adopt",
            Self::Verify => "verify",
            Self::Retain => "retain",
            Self::Forget => "forget",
        }
    }
}

/// What the summary counts: every write a plan makes, by class (the summary line, the
/// Markdown table and `summary` in JSON). A change may count twice: an object adopted or
/// moved whose fields differ is also an update, because apply writes those fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tally {
    NoOp,
    Create,
    /// Recorded in state for the first time.
    Adopt,
    /// Owned under another address; its state entry moves to this one.
    Move,
    /// Fields written in place (an update, or an adopt or move with field changes).
    Update,
    Replace,
    Delete,
    Forget,
    Retain,
    Verify,
}

impl Tally {
    /// In the order the views list them.
    pub const ALL: [Tally; 10] = [
        Self::Create,
        Self::Adopt,
        Self::Move,
        Self::Update,
        Self::Replace,
        Self::Delete,
        Self::Forget,
        Self::Retain,
        Self::Verify,
        Self::NoOp,
    ];

    /// The classes `change` counts in.
    pub fn of(change: &Change) -> Vec<Tally> {
        let first = match change.action {
            Action::NoOp => Self::NoOp,
            Action::Create => Self::Create,
            Action::Adopt if change.reason.moves_in_state() => Self::Move,
            Action::Adopt => Self::Adopt,
            Action::Update => Self::Update,
            Action::Replace => Self::Replace,
            Action::Delete => Self::Delete,
            Action::Forget => Self::Forget,
            Action::Retain => Self::Retain,
            Action::Verify => Self::Verify,
        };
        let writes_fields = change.action == Action::Adopt && !change.fields.is_empty();
        std::iter::once(first)
            .chain(writes_fields.then_some(Self::Update))
            .collect()
    }

    /// The marker the Markdown table puts before the name.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Move => "->",
            other => other.action().map_or("", Action::symbol),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Move => "move",
            other => other.action().map_or("", Action::as_str),
        }
    }

    /// The action of the same name, for every class but [`Tally::Move`].
    fn action(self) -> Option<Action> {
        Some(match self {
            Self::NoOp => Action::NoOp,
            Self::Create => Action::Create,
            Self::Adopt => Action::Adopt,
            Self::Move => return None,
            Self::Update => Action::Update,
            Self::Replace => Action::Replace,
            Self::Delete => Action::Delete,
            Self::Forget => Action::Forget,
            Self::Retain => Action::Retain,
            Self::Verify => Action::Verify,
        })
    }
}

/// One planned change to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub kind: Kind,
    pub action: Action,
    /// The live id, when the object exists.
    pub id: Option<String>,
    pub church: Option<String>,
    pub protected: bool,
    /// Releasing a number: it cannot be undone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub irreversible: bool,
    /// Why this action. In JSON: `reason` (the sentence, e.g. "in state, not in lines.toml")
    /// and `action_reason` (the variant); see [`reason::json`].
    #[serde(flatten, with = "reason::json")]
    pub reason: Reason,
    pub fields: Vec<FieldChange>,
    /// Live as read (references as addresses where known). Absent for creates.
    pub before: Option<Spec>,
    /// As declared (references as addresses). Absent for deletes.
    pub after: Option<Spec>,
    /// Addresses this change must wait for.
    pub depends_on: Vec<Address>,
    /// Monthly cost this change adds (negative: saves), in US cents.
    #[serde(default)]
    pub monthly_cost_delta_cents: i64,
    /// For an object its declaration no longer stands for: the address that owned it, whose
    /// state entry apply moves to this change's address before anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub displaced_from: Option<Address>,
}

/// A live object neither declared nor owned: reported, never touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub kind: Kind,
    pub id: String,
    pub label: String,
    /// The reason of the `[ignore]` entry that names it, when one does: listed as ignored by
    /// every view, left out of drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

impl Unmanaged {
    /// The object, marked with the `[ignore]` entry of `policy` that names it, if any.
    pub fn new(kind: Kind, id: String, label: String, policy: &crate::model::Policy) -> Self {
        let mut u = Self {
            kind,
            id,
            label,
            ignored: None,
        };
        let keys = u.keys();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        u.ignored = policy.ignored(&keys).map(|e| e.reason.clone());
        u
    }

    /// What an `[ignore]` entry may name it by: its id, its label, or `kind.id`.
    pub fn keys(&self) -> [String; 3] {
        [
            self.id.clone(),
            self.label.clone(),
            format!("{}.{}", self.kind, self.id),
        ]
    }
}

pub use crate::checks::{Finding, Severity};

/// A protected id lines.toml no longer declares but protection memory (state's map, a
/// resource's flag, the audit log) still holds: it stays locked until an apply with
/// `--unprotect ID` carries this entry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unprotect {
    pub id: String,
    /// Why it was protected, as remembered.
    pub reason: String,
    /// Where the protection is remembered (`state protected map`, `flag on ADDR`, `audit log`).
    pub remembered_in: Vec<String>,
}

/// Fingerprints of everything a plan was computed from, so a saved plan can be refused when
/// any of it has changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprints {
    pub config: String,
    pub state: String,
    /// `kind/id` -> fingerprint of every live object read.
    pub live: BTreeMap<String, String>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    /// Whether live services were read (false: planned against state alone).
    pub refreshed: bool,
    /// Every change, in the order apply runs them (dependencies first, deletes last and in
    /// reverse).
    pub changes: Vec<Change>,
    /// Edges of the change graph as (from, to) indices into `changes`: `to` waits for `from`.
    pub edges: Vec<(usize, usize)>,
    pub unmanaged: Vec<Unmanaged>,
    pub checks: Vec<Finding>,
    pub errors: Vec<Finding>,
    /// Protected ids that leave the lock only with `apply --unprotect ID`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unprotect: Vec<Unprotect>,
    /// Every write, counted by [`Tally`].
    pub summary: BTreeMap<Tally, usize>,
    pub monthly_cost_delta_cents: i64,
    pub fingerprints: Fingerprints,
}

impl Plan {
    /// True when applying would call a provider or change state.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.changes_anything())
    }

    pub fn is_error(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The changes that do something, in apply order.
    pub fn actionable(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action.changes_anything())
    }

    pub fn change(&self, addr: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == addr)
    }

    /// Reads a plan file, refusing one from a newer schema.
    pub fn from_json(text: &str) -> Result<Plan, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let version = value
            .get("format_version")
            .and_then(|v| v.as_str())
            .ok_or("missing format_version")?;
        let major = |v: &str| v.split('.').next().unwrap_or("").to_string();
        if major(version) != major(FORMAT_VERSION) {
            return Err(format!(
                "format_version {version} is not readable by this cwa (it reads {FORMAT_VERSION})"
            ));
        }
        let plan: Plan = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let count = plan.changes.len();
        if let Some((from, to)) = plan.edges.iter().find(|(f, t)| *f >= count || *t >= count) {
            return Err(format!(
                "the change graph has an edge {from} -> {to}, but the plan has {count} changes"
            ));
        }
        Ok(plan)
    }
}
