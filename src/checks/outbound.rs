//! Outbound trunks, LiveKit's hop into Telnyx: a bare host, caller numbers bound to the
//! credential connection, and authentication as that connection's user.

use std::collections::BTreeMap;

use super::credential::find_live;
use super::declared::Declared;
use super::live::{same_name, Results};
use super::number::live_number;
use super::{CheckResult, Rule};
use crate::config::{Problem, ProblemKind};
use crate::model::{
    Address, CredentialConnectionSpec, Desired, DesiredResource, Kind, Live, NumberRef,
    OutboundTrunkSpec, Ref, Spec,
};

/// The outbound trunk does not exist: no call can be placed.
pub const MISSING: Rule = Rule {
    code: "cwa::outbound::missing",
    check: "outbound-trunk",
    hop: "outbound",
};
/// The trunk does not authenticate as the credential connection's user.
pub const AUTH: Rule = Rule {
    code: "cwa::outbound::auth-mismatch",
    check: "outbound-trunk-auth",
    hop: "outbound",
};
/// A caller number is not bound to the credential connection: Telnyx D35-rejects the INVITE.
pub const DID_BOUND: Rule = Rule {
    code: "cwa::outbound::did-unbound",
    check: "outbound-did-bound",
    hop: "outbound",
};

/// The declared outbound trunk `t` exists live, authenticates as the credential user, and
/// calls from numbers bound to the credential connection.
pub(super) fn live(
    desired: &Desired,
    live: &Live,
    declared: &Spec,
    t: &OutboundTrunkSpec,
    out: &mut Results,
) {
    trunk_auth(desired, live, declared, out);
    dids(desired, live, t, out);
}

/// The outbound trunk authenticates to Telnyx as the credential connection's user, and
/// carries the `X-Telnyx-Username` header when lines.toml asks for it.
fn trunk_auth(desired: &Desired, live: &Live, declared: &Spec, out: &mut Results) {
    let Spec::LivekitOutboundTrunk(want) = declared else {
        return;
    };
    let Some(trunk) = live
        .of_kind(Kind::LivekitOutboundTrunk)
        .find(|o| same_name(&o.spec, declared))
    else {
        out.push(CheckResult::new(
            &MISSING,
            &want.name,
            false,
            "the outbound trunk does not exist: no call can be placed".into(),
        ));
        return;
    };
    let Spec::LivekitOutboundTrunk(t) = &trunk.spec else {
        return;
    };
    let subject = format!("{} ({})", t.name, trunk.id);
    let users: Vec<String> = desired
        .resources
        .values()
        .filter_map(|r| match &r.spec {
            Spec::TelnyxCredentialConnection(d) => find_live(live, d).and_then(|o| match &o.spec {
                Spec::TelnyxCredentialConnection(c) => Some(c.user_name.clone()),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    if !users.is_empty() {
        out.push(CheckResult::new(&AUTH,
            &subject,
            users.contains(&t.auth_username) && t.auth_password.is_some(),
            format!(
                "the trunk authenticates as {:?} (want the credential connection's user {:?} and a password, or Telnyx rejects the INVITE)",
                t.auth_username, users
            ),
        ));
    }
}

fn dids(desired: &Desired, live: &Live, trunk: &OutboundTrunkSpec, out: &mut Results) {
    let cred_ids: Vec<&str> = desired
        .resources
        .values()
        .filter_map(|r| match &r.spec {
            Spec::TelnyxCredentialConnection(c) => find_live(live, c).map(|o| o.id.as_str()),
            _ => None,
        })
        .collect();
    for n in trunk.numbers.iter().filter_map(|n| match n {
        NumberRef::Number(n) => Some(n),
        NumberRef::Of(_) => None,
    }) {
        let bound = live
            .of_kind(Kind::TelnyxNumber)
            .find(|o| live_number(o) == Some(n))
            .and_then(|o| match &o.spec {
                Spec::TelnyxNumber(s) => {
                    s.connection.as_ref().and_then(Ref::id).map(str::to_string)
                }
                _ => None,
            });
        out.push(CheckResult::new(&DID_BOUND,
            n.as_str(),
            bound.as_deref().is_some_and(|b| cred_ids.contains(&b)),
            format!("the outbound DID is bound to {} (want the credential connection, or Telnyx D35-rejects the INVITE)", bound.as_deref().unwrap_or("nothing")),
        ));
    }
}

impl Declared<'_> {
    pub(super) fn outbound_trunks(&mut self) {
        let mut found = Vec::new();
        let creds: Vec<(&DesiredResource, &CredentialConnectionSpec)> = self
            .of_kind(Kind::TelnyxCredentialConnection)
            .filter_map(|r| match &r.spec {
                Spec::TelnyxCredentialConnection(s) => Some((r, s)),
                _ => None,
            })
            .collect();
        for r in self.of_kind(Kind::LivekitOutboundTrunk) {
            let Spec::LivekitOutboundTrunk(s) = &r.spec else {
                continue;
            };
            found.extend(self.outbound_shape(r, s));
            let to_telnyx = s.address.ends_with("telnyx.com");
            let cred = creds.iter().find(|(_, c)| {
                !s.auth_username.is_empty() && c.user_name.eq_ignore_ascii_case(&s.auth_username)
            });
            match cred {
                Some((cred_res, c)) => {
                    found.extend(self.outbound_numbers(r, s, &cred_res.addr));
                    found.extend(self.outbound_header(r, s, &c.user_name));
                }
                None if to_telnyx => found.push(
                    Problem::error(
                        ProblemKind::OutboundTrunk,
                        self.at(r, "auth_username"),
                        "no matching credential connection",
                        format!("{} dials Telnyx as `{}`, but no declared credential connection has that user_name", r.addr, s.auth_username),
                    )
                    .with_help("set auth_username to the user_name of a [telnyx.credential_connection.<name>]"),
                ),
                None => {}
            }
        }
        self.extend(found);
    }

    pub(super) fn outbound_shape(
        &self,
        r: &DesiredResource,
        s: &OutboundTrunkSpec,
    ) -> Vec<Problem> {
        let mut out = Vec::new();
        let a = &s.address;
        if a.starts_with("sip:")
            || a.starts_with("sips:")
            || a.contains(['@', ';'])
            || a.contains("transport=")
        {
            out.push(
                Problem::error(ProblemKind::OutboundTrunk, self.at(r, "address"), "host only", format!("address `{a}` is not a bare host"))
                    .with_help("LiveKit wants the host alone, e.g. address = \"sip.telnyx.com\", with transport set separately"),
            );
        }
        if s.numbers.is_empty() {
            out.push(
                Problem::error(
                    ProblemKind::OutboundTrunk,
                    self.at(r, "numbers"),
                    "no numbers",
                    format!("{} has no caller numbers", r.addr),
                )
                .with_help(
                    "list the DIDs it calls from, e.g. numbers = [\"telnyx_number.outbound\"]",
                ),
            );
        }
        if !s.auth_username.is_empty() && s.auth_password.is_none() {
            out.push(
                Problem::error(ProblemKind::OutboundTrunk, self.at(r, "auth_username"), "no password", format!("{} has a user name but no auth_password_env", r.addr))
                    .with_help("add auth_password_env = \"NAME_OF_VARIABLE\" holding the credential connection's password"),
            );
        }
        out
    }

    pub(super) fn outbound_numbers(
        &self,
        r: &DesiredResource,
        s: &OutboundTrunkSpec,
        cred: &Address,
    ) -> Vec<Problem> {
        let mut out = Vec::new();
        let numbers: BTreeMap<NumberRef, &DesiredResource> = self
            .of_kind(Kind::TelnyxNumber)
            .filter_map(|n| Some((Self::number_key(n)?, n)))
            .collect();
        for (i, n) in s.numbers.iter().enumerate() {
            let span = self.at(r, &format!("numbers.{i}"));
            let Some(owner) = numbers.get(n) else {
                out.push(
                    Problem::error(
                        ProblemKind::OutboundNumber,
                        span,
                        "not a declared Telnyx number",
                        format!("{n} is not a Telnyx number declared in lines.toml"),
                    )
                    .with_help(format!(
                        "declare it as [telnyx.number.<name>] with connection = \"{cred}\""
                    )),
                );
                continue;
            };
            let Spec::TelnyxNumber(ns) = &owner.spec else {
                continue;
            };
            let bound = ns.connection.as_ref().and_then(Ref::addr);
            if bound != Some(cred) {
                let on = bound.map_or("no connection".to_string(), |b| b.to_string());
                out.push(
                    Problem::error(
                        ProblemKind::OutboundNumber,
                        span,
                        format!("bound to {on}"),
                        format!("{n} is bound to {on}, not to {cred} that {} dials through", r.addr),
                    )
                    .with_label(self.at(owner, "connection"), "bound here")
                    .with_help(format!("Telnyx D35-rejects the INVITE; bind the DID to the credential connection: connection = \"{cred}\"")),
                );
            }
        }
        out
    }
}
