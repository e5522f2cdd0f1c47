//! FQDN connections, the inbound hop from Telnyx to LiveKit: active, numbers sent with the
//! `+`, and one FQDN record marked default primary.

use super::declared::Declared;
use super::live::{Index, Results};
use super::{CheckResult, Rule};
use crate::config::{Problem, ProblemKind};
use crate::model::{
    Address, Desired, DesiredResource, FqdnConnectionSpec, Kind, LiveObject, SourceSpan, Spec,
};

/// The caller-number format LiveKit's routing needs (with the `+`).
pub const ANI_FORMAT: &str = "+E.164";
/// The called-number format LiveKit's routing needs (with the `+`).
pub const DNIS_FORMAT: &str = "+e164";

/// An FQDN connection's number-format fields as `(lines.toml key, value, what LiveKit's
/// routing needs)`: the one list validate and check both compare.
pub fn formats(c: &FqdnConnectionSpec) -> [(&'static str, &str, &'static str); 2] {
    [
        ("ani_number_format", &c.ani_number_format, ANI_FORMAT),
        ("dnis_number_format", &c.dnis_number_format, DNIS_FORMAT),
    ]
}

/// The connection is inactive.
pub const CONNECTION_ACTIVE: Rule = Rule {
    code: "cwa::connection::inactive",
    check: "connection-active",
    hop: "connection",
};
/// Numbers arrive without the `+`: the agent cannot look the church up.
pub const NUMBER_FORMAT: Rule = Rule {
    code: "cwa::connection::number-format",
    check: "number-format",
    hop: "connection",
};
/// No default primary FQDN record: Telnyx routes calls nowhere ("not assigned").
pub const DEFAULT_PRIMARY: Rule = Rule {
    code: "cwa::connection::no-default-primary",
    check: "default-primary-fqdn",
    hop: "fqdn",
};

/// The FQDN connection a routed number is bound to: active, TCP, `+` number formats, a
/// default primary FQDN record on the project's SIP host.
pub(super) fn live(
    desired: &Desired,
    index: &Index,
    conn: &LiveObject,
    subject: &str,
    out: &mut Results,
) {
    let Spec::TelnyxFqdnConnection(c) = &conn.spec else {
        return;
    };
    let name = format!("{subject} via {} ({})", c.connection_name, conn.id);
    out.push(CheckResult::new(
        &CONNECTION_ACTIVE,
        &name,
        c.active,
        "the connection must be active".into(),
    ));
    super::transport::live(&name, &c.transport_protocol, out);
    let formats_ok = formats(c).iter().all(|(_, value, want)| value == want);
    out.push(CheckResult::new(
        &NUMBER_FORMAT,
        &name,
        formats_ok,
        format!(
            "number formats are {}/{} (want +E.164/+e164, or numbers arrive without +)",
            c.ani_number_format, c.dnis_number_format
        ),
    ));
    let fqdns = index
        .fqdns_by_connection
        .get(conn.id.as_str())
        .map_or(&[][..], Vec::as_slice);
    let primary = fqdns
        .iter()
        .find(|f| matches!(&f.spec, Spec::TelnyxFqdn(s) if s.default_primary));
    out.push(CheckResult::new(
        &DEFAULT_PRIMARY,
        &name,
        primary.is_some(),
        "default_primary_fqdn_id must be set, or callers hear \"not assigned\"".into(),
    ));
    if let Some(Spec::TelnyxFqdn(f)) = primary.map(|p| &p.spec) {
        super::sip_host::live(&desired.settings.livekit_sip_host, &name, &f.fqdn, out);
    }
}

impl Declared<'_> {
    /// FQDN connections send numbers with the `+`.
    pub(super) fn fqdn_connections(&mut self) {
        let found: Vec<Problem> = self
            .of_kind(Kind::TelnyxFqdnConnection)
            .flat_map(|r| {
                let Spec::TelnyxFqdnConnection(s) = &r.spec else {
                    return Vec::new();
                };
                formats(s)
                    .into_iter()
                    .filter(|(_, value, want)| value != want)
                    .map(|(key, _, want)| number_format(self.at(r, key), &r.addr, key, want))
                    .collect()
            })
            .collect();
        self.extend(found);
    }

    pub(super) fn default_primary(&mut self) {
        let mut bound: Vec<&Address> = self
            .fqdn_bound_numbers()
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        bound.sort();
        bound.dedup();
        let mut found = Vec::new();
        for conn in bound {
            let Some(conn_res) = self.x.desired.get(conn) else {
                continue;
            };
            let records: Vec<(&DesiredResource, bool)> = self
                .of_kind(Kind::TelnyxFqdn)
                .filter_map(|r| match &r.spec {
                    Spec::TelnyxFqdn(s) if s.connection.addr() == Some(conn) => {
                        Some((r, s.default_primary))
                    }
                    _ => None,
                })
                .collect();
            let primaries: Vec<_> = records.iter().filter(|(_, p)| *p).collect();
            if primaries.is_empty() {
                let mut p = Problem::error(
                    ProblemKind::DefaultPrimary,
                    conn_res.span,
                    "numbers bind here",
                    format!("{conn} has numbers but no FQDN record marked default_primary"),
                )
                .with_help("set default_primary = true on its [telnyx.fqdn.<name>] record: without inbound.default_primary_fqdn_id Telnyx routes calls nowhere and callers hear \"number not assigned\" (the root cause of the first setup failure)");
                for (r, _) in &records {
                    p = p.with_label(self.at(r, "default_primary"), "not the default primary");
                }
                found.push(p);
            } else if primaries.len() > 1 {
                found.push(
                    Problem::error(
                        ProblemKind::DefaultPrimary,
                        self.at(primaries[1].0, "default_primary"),
                        "second default primary",
                        format!("{conn} has more than one default_primary FQDN record"),
                    )
                    .with_label(self.at(primaries[0].0, "default_primary"), "first one")
                    .with_help("a connection has one inbound.default_primary_fqdn_id; keep default_primary = true on one record"),
                );
            }
        }
        self.extend(found);
    }
}

fn number_format(span: SourceSpan, addr: &Address, key: &str, want: &str) -> Problem {
    Problem::error(
        ProblemKind::NumberFormat,
        span,
        format!("expected {want}"),
        format!("{addr} sends numbers with {key} other than {want}"),
    )
    .with_help(format!("{key} = \"{want}\": otherwise Telnyx sends numbers without the +, and the agent cannot look the church up"))
}
