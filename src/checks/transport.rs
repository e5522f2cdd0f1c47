//! Transport: LiveKit's SIP endpoint needs TCP from Telnyx ("TCP — critical, UDP will not
//! work"). Transport names compare case-insensitively (`tcp` is `TCP`); lines.toml's value is
//! stored upper-case, as Telnyx reports it.

use super::declared::Declared;
use super::live::Results;
use super::{CheckResult, Rule};
use crate::config::{Problem, ProblemKind};
use crate::model::{Kind, Spec};

/// The connection does not use TCP.
pub const NOT_TCP: Rule = Rule {
    code: "cwa::transport::not-tcp",
    check: "connection-transport",
    hop: "connection",
};

/// Whether `transport` is TCP, in any case.
pub fn is_tcp(transport: &str) -> bool {
    transport.eq_ignore_ascii_case("TCP")
}

/// The live connection `subject` uses TCP.
pub(super) fn live(subject: &str, transport: &str, out: &mut Results) {
    out.push(CheckResult::new(
        &NOT_TCP,
        subject,
        is_tcp(transport),
        format!("transport is {transport} (LiveKit needs TCP; UDP does not work)"),
    ));
}

impl Declared<'_> {
    /// Every declared FQDN connection uses TCP.
    pub(super) fn transport(&mut self) {
        let found: Vec<Problem> = self
            .of_kind(Kind::TelnyxFqdnConnection)
            .filter_map(|r| {
                let Spec::TelnyxFqdnConnection(s) = &r.spec else { return None };
                (!is_tcp(&s.transport_protocol)).then(|| {
                    Problem::error(
                        ProblemKind::Transport,
                        self.at(r, "transport"),
                        format!("{} here", s.transport_protocol),
                        format!("{} uses transport {}; LiveKit needs TCP", r.addr, s.transport_protocol),
                    )
                    .with_help("transport = \"TCP\": LiveKit's SIP endpoint does not reliably accept UDP from Telnyx, so calls fail (\"TCP — critical, UDP will not work\")")
                })
            })
            .collect();
        self.extend(found);
    }
}
