//! SIP headers on the outbound trunk, above all `X-Telnyx-Username`, which makes Telnyx
//! authenticate LiveKit's INVITE by credential rather than by IP allowlist. Header names
//! compare case-insensitively (RFC 3261 section 7.3.1) and are written as declared.

use std::collections::BTreeMap;

use super::declared::Declared;
use super::live::{same_name, Results};
use super::{CheckResult, Rule};
use crate::config::Problem;
use crate::config::ProblemKind;
use crate::model::{DesiredResource, Kind, Live, OutboundTrunkSpec, Spec};

/// The header that makes Telnyx authenticate an outbound INVITE by credential, not by IP.
pub const TELNYX_USERNAME_HEADER: &str = "X-Telnyx-Username";

/// The outbound trunk does not send `X-Telnyx-Username` with the credential user.
pub const TELNYX_USERNAME: Rule = Rule {
    code: "cwa::headers::telnyx-username",
    check: "outbound-header",
    hop: "outbound",
};

/// The header called `name` in any case, as written: `(name as written, value)`.
pub fn find<'a>(
    headers: &'a BTreeMap<String, String>,
    name: &str,
) -> Option<(&'a String, &'a String)> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
}

/// The `X-Telnyx-Username` header lines.toml asks for is live on the outbound trunk.
pub(super) fn live(live: &Live, declared: &Spec, out: &mut Results) {
    let Spec::LivekitOutboundTrunk(want) = declared else {
        return;
    };
    let Some(Spec::LivekitOutboundTrunk(t)) = live
        .of_kind(Kind::LivekitOutboundTrunk)
        .find(|o| same_name(&o.spec, declared))
        .map(|o| &o.spec)
    else {
        return;
    };
    let Some((_, header)) = find(&want.headers, TELNYX_USERNAME_HEADER) else {
        return;
    };
    let live_header = find(&t.headers, TELNYX_USERNAME_HEADER).map(|(_, v)| v);
    out.push(CheckResult::new(
        &TELNYX_USERNAME,
        &t.name,
        live_header == Some(header),
        format!(
            "{TELNYX_USERNAME_HEADER} is {} (want {header}; without it Telnyx authenticates by IP allowlist only)",
            live_header.map_or("not set", String::as_str)
        ),
    ));
}

impl Declared<'_> {
    pub(super) fn outbound_header(
        &self,
        r: &DesiredResource,
        s: &OutboundTrunkSpec,
        user: &str,
    ) -> Vec<Problem> {
        let header = find(&s.headers, TELNYX_USERNAME_HEADER);
        match header {
            None => vec![Problem::error(
                ProblemKind::OutboundTrunk,
                self.at(r, "headers"),
                "no X-Telnyx-Username",
                format!("{} sends no {TELNYX_USERNAME_HEADER} header", r.addr),
            )
            .as_warning()
            .with_help(format!("add headers = {{ \"{TELNYX_USERNAME_HEADER}\" = \"{user}\" }}: without it Telnyx authenticates by IP allowlist only, which breaks when LiveKit's egress IPs shift"))],
            Some((_, v)) if v != user => vec![Problem::error(
                ProblemKind::OutboundTrunk,
                self.at(r, "headers"),
                format!("expected {user}"),
                format!("{} sends {TELNYX_USERNAME_HEADER} = `{v}`, not the credential connection's user `{user}`", r.addr),
            )
            .with_help(format!("set \"{TELNYX_USERNAME_HEADER}\" = \"{user}\""))],
            Some(_) => Vec::new(),
        }
    }
}
