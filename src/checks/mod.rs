//! The runbooks' rules, each written once. Every incident in the runbooks is a rule here, in
//! the module of its family; each rule has a stable [`Rule::code`] and is applied both to
//! what lines.toml declares ([`validate`], run by `cwa validate` and every load) and to the
//! live world ([`certify`], run by `cwa check`, by `plan` as warnings and after `apply`).
//! A family module holds its rules, the predicates both sides share, and both applications,
//! so the declared and the live reading of one incident cannot drift apart.
//!
//! | family | module |
//! |---|---|
//! | numbers (owned, active, bound) | [`number`] |
//! | FQDN connections (active, number formats, default primary) | [`connection`] |
//! | transport (TCP) | [`transport`] |
//! | SIP host | [`sip_host`] |
//! | inbound trunks (routing, auth) | [`trunk`] |
//! | dispatch rules | [`dispatch`] |
//! | credential connections (identity, basics) | [`credential`] |
//! | outbound voice profiles (bound, countries) | [`profile`] |
//! | outbound trunks (shape, auth, DIDs) | [`outbound`] |
//! | SIP headers (`X-Telnyx-Username`) | [`headers`] |
//! | a number's E911 address and emergency status (issue 21) | [`emergency`] |

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{Address, Desired, Live, SourceSpan};
use crate::state::State;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// A finding of the certification checks, or a reason the plan cannot be applied. Defined
/// here, below the planner: `plan` uses checks (its warnings, credential identity), never the
/// other way round, and re-exports these as `plan::Finding`/`plan::Severity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable machine-readable name, e.g. `protected-write`, `trunk-auth`.
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Where in lines.toml the cause is declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<SourceSpan>,
}

pub mod connection;
pub mod credential;
mod declared;
pub mod dispatch;
pub mod emergency;
pub mod headers;
mod live;
pub mod number;
pub mod outbound;
pub mod profile;
pub mod sip_host;
pub mod transport;
pub mod trunk;

pub use declared::validate;

/// One runbook rule as `cwa check` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable code, `cwa::<family>::<rule>` (e.g. `cwa::trunk::auth-mismatch`): the JSON's
    /// `code`, what docs and CI greps name.
    pub code: &'static str,
    /// The short name the check report has always printed (`trunk-auth`).
    pub check: &'static str,
    /// The hop of the call path it concerns: number, connection, fqdn, trunk, dispatch,
    /// outbound.
    pub hop: &'static str,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The rule's stable code, e.g. `cwa::trunk::auth-mismatch`.
    pub code: String,
    /// The rule's short name, e.g. `trunk-auth`.
    pub check: String,
    /// The hop of the call path it concerns: number, connection, fqdn, trunk, dispatch, outbound.
    pub hop: String,
    /// What was checked (a number, a connection name).
    pub subject: String,
    pub passed: bool,
    pub message: String,
}

impl CheckResult {
    fn new(rule: &Rule, subject: &str, passed: bool, message: String) -> Self {
        Self {
            code: rule.code.into(),
            check: rule.check.into(),
            hop: rule.hop.into(),
            subject: subject.into(),
            passed,
            message,
        }
    }

    /// A failed check as a plan warning (the plan may be what fixes it).
    pub fn into_finding(self) -> Finding {
        Finding {
            severity: Severity::Warning,
            code: self.check,
            message: format!("live now: {} ({})", self.message, self.subject),
            address: None,
            help: None,
            span: None,
        }
    }
}

/// A declared line that is not applied yet: there is nothing live to certify until apply
/// creates it. Listed by `cwa check`, never a failure of it; after an apply that should have
/// created it, it is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// The address of the line's number, e.g. `telnyx_number.grace`.
    pub line: String,
    /// The number as declared: `+1…`, or `auto (US, area code 734)`.
    pub number: String,
    pub reason: String,
    /// Applied, and the provider is still activating it (a number's `purchase-pending`):
    /// nothing cwa can do; it rings once the provider is done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub activating: bool,
}

/// What certification found: every check that ran, and the lines it could not check yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Certification {
    pub checks: Vec<CheckResult>,
    pub pending: Vec<Pending>,
}

impl Certification {
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|r| !r.passed)
    }

    /// No check failed (pending lines are not failures of `cwa check`).
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }
}

/// Which lines to certify: all of them, or only those an apply touched.
#[derive(Debug, Clone, Default)]
pub enum Scope {
    #[default]
    All,
    /// Lines whose number or inbound trunk is one of these addresses; account-level checks
    /// (outbound trunks, credential connections) when one of them is named.
    Touched(BTreeSet<Address>),
}

impl Scope {
    fn covers(&self, addrs: &[&Address]) -> bool {
        match self {
            Scope::All => true,
            Scope::Touched(set) => addrs.iter().any(|a| set.contains(*a)),
        }
    }
}

/// What a caller of [`certify`] wants back.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The lines to certify.
    pub scope: Scope,
    /// Keep passing checks too (a plan keeps failures only: at 10,000 lines the passes would
    /// be some 100,000 results).
    pub passes: bool,
    /// Check the outbound trunk's declared SIP headers too (a plan already shows a missing
    /// header as the field change that adds it, so plans do not repeat it as a warning).
    pub headers: bool,
}

impl Request {
    /// `cwa check`: every line, every result, headers included.
    pub fn check() -> Self {
        Self {
            scope: Scope::All,
            passes: true,
            headers: true,
        }
    }

    /// The warnings of a refreshed `cwa plan`: every line, failures only.
    pub fn plan() -> Self {
        Self::default()
    }

    /// The certification that ends an apply: the lines it touched, every result.
    pub fn after_apply(scope: Scope) -> Self {
        Self {
            scope,
            passes: true,
            headers: false,
        }
    }
}

/// Runs every rule on the live world for what lines.toml routes: the one entry point of
/// `cwa check`, `plan` and `apply`'s certification. Lines not applied yet are listed as
/// pending: the plan shows what creates them.
pub fn certify(desired: &Desired, state: &State, live: &Live, request: &Request) -> Certification {
    live::run(desired, state, live, request)
}
