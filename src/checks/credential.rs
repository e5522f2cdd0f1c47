//! Credential connections, the outbound hop from LiveKit into Telnyx. A credential
//! connection's identity is its `user_name` (Telnyx keeps it unique across the account,
//! case-insensitively); its name identifies it only when lines.toml declares no user name.
//! `cwa check` and plan matching ([`crate::plan::matching`]) both use [`same_identity`], so
//! check looks at the object plan adopts.

use super::declared::Declared;
use super::live::Results;
use super::{CheckResult, Rule};
use crate::config::{Problem, ProblemKind};
use crate::model::{
    Address, CredentialConnectionSpec, Desired, DesiredResource, Kind, Live, LiveObject, Spec,
};

/// The credential connection does not exist.
pub const MISSING: Rule = Rule {
    code: "cwa::credential::missing",
    check: "credential-connection",
    hop: "outbound",
};
/// The credential connection is inactive, or has no user name.
pub const INACTIVE: Rule = Rule {
    code: "cwa::credential::inactive",
    check: "credential-active",
    hop: "outbound",
};

/// Whether the live credential connection is the declared one: the same `user_name`
/// (case-insensitively), or, when lines.toml declares no user name, the same name.
pub fn same_identity(declared: &CredentialConnectionSpec, live: &CredentialConnectionSpec) -> bool {
    if declared.user_name.is_empty() {
        declared.connection_name == live.connection_name
    } else {
        declared.user_name.eq_ignore_ascii_case(&live.user_name)
    }
}

/// The live credential connection that is the declared one ([`same_identity`]).
pub fn find_live<'a>(
    live: &'a Live,
    declared: &CredentialConnectionSpec,
) -> Option<&'a LiveObject> {
    live.of_kind(Kind::TelnyxCredentialConnection).find(
        |o| matches!(&o.spec, Spec::TelnyxCredentialConnection(l) if same_identity(declared, l)),
    )
}

/// The declared credential connection at `addr` exists, is active with a user name, and is
/// bound to an outbound voice profile ready for the countries it must call.
pub(super) fn live(
    desired: &Desired,
    live: &Live,
    addr: &Address,
    declared: &CredentialConnectionSpec,
    out: &mut Results,
) {
    let name = declared.connection_name.as_str();
    let Some(Spec::TelnyxCredentialConnection(c)) = find_live(live, declared).map(|o| &o.spec)
    else {
        out.push(CheckResult::new(
            &MISSING,
            name,
            false,
            "the credential connection does not exist".into(),
        ));
        return;
    };
    out.push(CheckResult::new(
        &INACTIVE,
        name,
        c.active && !c.user_name.is_empty(),
        "the connection must be active with a user name".into(),
    ));
    super::profile::live(desired, live, addr, name, c, out);
}

impl Declared<'_> {
    /// Every declared credential connection: active, with a password, bound to a ready
    /// outbound voice profile.
    pub(super) fn credential_connections(&mut self) {
        let mut found = Vec::new();
        for r in self.of_kind(Kind::TelnyxCredentialConnection) {
            let Spec::TelnyxCredentialConnection(s) = &r.spec else {
                continue;
            };
            found.extend(self.credential_basics(r, s));
            found.extend(self.outbound_profile(r, s));
        }
        self.extend(found);
    }

    pub(super) fn credential_basics(
        &self,
        r: &DesiredResource,
        s: &CredentialConnectionSpec,
    ) -> Vec<Problem> {
        let mut out = Vec::new();
        if !s.active {
            out.push(
                Problem::error(
                    ProblemKind::OutboundProfile,
                    self.at(r, "active"),
                    "inactive",
                    format!("{} is not active", r.addr),
                )
                .with_help("active = true: an inactive credential connection carries no calls"),
            );
        }
        if s.password.is_none() {
            out.push(
                Problem::error(ProblemKind::OutboundProfile, r.span, "no password_env", format!("{} has no credentials", r.addr))
                    .with_help("add password_env = \"NAME_OF_VARIABLE\": a credential connection authenticates LiveKit by user name and password"),
            );
        }
        out
    }
}
