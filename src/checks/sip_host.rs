//! The SIP host: calls must reach the project-id host of the LiveKit project (a
//! project-NAME host answers "404 No trunk found").

use super::declared::Declared;
use super::live::Results;
use super::{CheckResult, Rule};
use crate::config::{Problem, ProblemKind};
use crate::model::{Address, Kind, SourceSpan, Spec};

/// The FQDN record points elsewhere than the project's SIP host.
pub const WRONG_HOST: Rule = Rule {
    code: "cwa::sip-host::wrong-host",
    check: "sip-host",
    hop: "fqdn",
};

/// Whether `fqdn` is the project's SIP host (an unknown host, empty, accepts any).
pub fn is_project_host(sip_host: &str, fqdn: &str) -> bool {
    sip_host.is_empty() || fqdn == sip_host
}

/// The default primary FQDN record of `subject`'s connection is on the project's SIP host.
pub(super) fn live(sip_host: &str, subject: &str, fqdn: &str, out: &mut Results) {
    out.push(CheckResult::new(
        &WRONG_HOST,
        subject,
        is_project_host(sip_host, fqdn),
        format!("the FQDN is {fqdn} (want the project-id host {sip_host}; a project-name host gives 404 No trunk found)"),
    ));
}

impl Declared<'_> {
    pub(super) fn livekit_project(&mut self) {
        if !self.x.desired.settings.livekit_project_id.is_empty() {
            return;
        }
        let needs = self.x.desired.resources.values().find(|r| {
            matches!(r.addr.kind, Kind::TelnyxFqdn)
                || r.addr.kind.provider() == crate::model::ProviderName::Livekit
        });
        if let Some(r) = needs {
            let span = r.span;
            self.push(
                Problem::error(ProblemKind::SipHost, span, "needs the LiveKit project", "[livekit] has no project_id")
                    .with_help("add [livekit] project_id = \"p_…\" (the id, not the project name); sip_host follows from it"),
            );
        }
    }

    pub(super) fn fqdn_hosts(&mut self) {
        if self.sip_host().is_empty() {
            return;
        }
        let host = self.sip_host().to_string();
        let found: Vec<Problem> = self
            .of_kind(Kind::TelnyxFqdn)
            .filter_map(|r| {
                let Spec::TelnyxFqdn(s) = &r.spec else {
                    return None;
                };
                (!is_project_host(&host, &s.fqdn))
                    .then(|| wrong_host(self.at(r, "fqdn"), &r.addr, &s.fqdn, &host))
            })
            .collect();
        self.extend(found);
    }

    pub(super) fn twilio_origination_hosts(&mut self) {
        if self.sip_host().is_empty() {
            return;
        }
        let host = self.sip_host().to_string();
        let mut found = Vec::new();
        for r in self.of_kind(Kind::TwilioTrunk) {
            let Spec::TwilioTrunk(s) = &r.spec else {
                continue;
            };
            for (i, u) in s.origination_urls.iter().enumerate() {
                let target = sip_url_host(&u.sip_url);
                if target.ends_with(".livekit.cloud") && target != host {
                    let span = self
                        .x
                        .spans
                        .get(&r.addr, &format!("origination_urls.{i}"))
                        .unwrap_or(r.span);
                    found.push(wrong_host(span, &r.addr, target, &host));
                }
            }
        }
        self.extend(found);
    }
}

fn wrong_host(span: SourceSpan, addr: &Address, got: &str, want: &str) -> Problem {
    let help = if got.ends_with(".livekit.cloud") {
        format!("`{got}` is not the project-id SIP host: LiveKit answers \"404 No trunk found\" on a project-NAME host; use \"{want}\"")
    } else {
        format!("calls must reach LiveKit's SIP endpoint: use \"{want}\"")
    };
    Problem::error(
        ProblemKind::SipHost,
        span,
        format!("expected {want}"),
        format!("{addr} sends calls to {got}, not to the project's SIP host"),
    )
    .with_help(help)
}

/// The host part of `sip:host[:port][;params]`.
fn sip_url_host(url: &str) -> &str {
    let rest = url.strip_prefix("sip:").unwrap_or(url);
    let end = rest.find([';', ':']).unwrap_or(rest.len());
    &rest[..end]
}
