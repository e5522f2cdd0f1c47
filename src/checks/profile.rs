//! Outbound voice profiles: every credential connection is bound to one, enabled, and
//! whitelisting every country it must call. Those countries are the union of the
//! `destination_country` of the outbound trunks dialling through it and `[defaults]
//! outbound_countries` (by default US and CA, the runbook's requirement): one list, which
//! `cwa validate` and `cwa check` both ask for.

use super::declared::Declared;
use super::live::Results;
use super::{CheckResult, Rule};
use crate::config::{Problem, ProblemKind};
use crate::model::{
    Address, CredentialConnectionSpec, Desired, DesiredResource, Kind, Live, OutboundTrunkSpec,
    Ref, Spec,
};

/// No outbound voice profile is bound: Telnyx silently rejects every INVITE (403/D35).
pub const BOUND: Rule = Rule {
    code: "cwa::profile::unbound",
    check: "outbound-profile-bound",
    hop: "outbound",
};
/// The profile is disabled, or does not whitelist a country it must call.
pub const READY: Rule = Rule {
    code: "cwa::profile::countries",
    check: "outbound-profile-ready",
    hop: "outbound",
};

/// The outbound trunks that dial through the credential connection with user name `user`.
pub fn trunks_using<'a>(
    desired: &'a Desired,
    user: &'a str,
) -> impl Iterator<Item = (&'a DesiredResource, &'a OutboundTrunkSpec)> + 'a {
    desired
        .resources
        .values()
        .filter_map(move |r| match &r.spec {
            Spec::LivekitOutboundTrunk(s) if s.auth_username.eq_ignore_ascii_case(user) => {
                Some((r, s))
            }
            _ => None,
        })
}

/// The countries the declared profile at `profile` must whitelist (`None`: a profile not
/// declared, which owes the defaults only), each with the trunk that calls it (`None`: the
/// defaults ask for it). The trunks' countries first, then the defaults; a country once.
pub fn required_countries<'a>(
    desired: &'a Desired,
    profile: Option<&Address>,
) -> Vec<(String, Option<&'a DesiredResource>)> {
    let mut out: Vec<(String, Option<&DesiredResource>)> = Vec::new();
    let users = desired.resources.values().filter_map(|r| match &r.spec {
        Spec::TelnyxCredentialConnection(c)
            if profile.is_some()
                && c.outbound_voice_profile.as_ref().and_then(Ref::addr) == profile =>
        {
            Some(c.user_name.as_str())
        }
        _ => None,
    });
    for user in users {
        for (trunk, t) in trunks_using(desired, user) {
            out.push((t.destination_country.clone(), Some(trunk)));
        }
    }
    out.extend(
        desired
            .settings
            .outbound_countries()
            .into_iter()
            .map(|c| (c, None)),
    );
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|(c, _)| !c.is_empty() && seen.insert(c.clone()));
    out
}

/// `["US", "CA"]` as a reader says it: `US and CA`.
fn and_list(items: &[String]) -> String {
    match items.split_last() {
        None => "nothing".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The live credential connection `c` (the declared one at `cred`) is bound to an enabled
/// profile that whitelists every country it must call.
pub(super) fn live(
    desired: &Desired,
    live: &Live,
    cred: &Address,
    name: &str,
    c: &CredentialConnectionSpec,
    out: &mut Results,
) {
    let ovp = c
        .outbound_voice_profile
        .as_ref()
        .and_then(Ref::id)
        .and_then(|id| live.get(Kind::TelnyxOutboundVoiceProfile, id));
    out.push(CheckResult::new(
        &BOUND,
        name,
        ovp.is_some(),
        "no outbound voice profile is bound: Telnyx silently rejects every INVITE (403/D35)".into(),
    ));
    let Some(Spec::TelnyxOutboundVoiceProfile(p)) = ovp.map(|o| &o.spec) else {
        return;
    };
    let declared_profile = match desired.get(cred).map(|r| &r.spec) {
        Some(Spec::TelnyxCredentialConnection(d)) => {
            d.outbound_voice_profile.as_ref().and_then(Ref::addr)
        }
        _ => None,
    };
    let required: Vec<String> = required_countries(desired, declared_profile)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let countries = required
        .iter()
        .all(|c| p.whitelisted_destinations.iter().any(|d| d == c));
    out.push(CheckResult::new(
        &READY,
        name,
        p.enabled && countries,
        format!(
            "profile {} enabled={} whitelists {:?} (want enabled, {})",
            p.name,
            p.enabled,
            p.whitelisted_destinations,
            and_list(&required)
        ),
    ));
}

impl Declared<'_> {
    /// The credential connection `r` is bound to a declared profile that is enabled.
    pub(super) fn outbound_profile(
        &self,
        r: &DesiredResource,
        s: &CredentialConnectionSpec,
    ) -> Vec<Problem> {
        let Some(ovp_addr) = s.outbound_voice_profile.as_ref().and_then(Ref::addr) else {
            return vec![Problem::error(
                ProblemKind::OutboundProfile,
                r.span,
                "no outbound_voice_profile",
                format!("{} has no outbound voice profile", r.addr),
            )
            .with_help("Telnyx silently rejects every outbound INVITE (internal 403/D35, no CDR) while outbound_voice_profile_id is null; add outbound_voice_profile = \"telnyx_outbound_voice_profile.<name>\"")];
        };
        let Some(ovp) = self.x.desired.get(ovp_addr) else {
            return Vec::new();
        };
        match &ovp.spec {
            Spec::TelnyxOutboundVoiceProfile(p) if !p.enabled => vec![Problem::error(
                ProblemKind::OutboundProfile,
                self.at(ovp, "enabled"),
                "disabled",
                format!("{} is disabled, and {} dials through it", ovp.addr, r.addr),
            )
            .with_help("enabled = true: a disabled profile drops every outbound call")],
            _ => Vec::new(),
        }
    }

    /// Every declared profile that a credential connection dials through whitelists the
    /// countries it must call ([`required_countries`]).
    pub(super) fn outbound_profiles(&mut self) {
        let desired = &self.x.desired;
        let mut found = Vec::new();
        for ovp in self.of_kind(Kind::TelnyxOutboundVoiceProfile) {
            let Spec::TelnyxOutboundVoiceProfile(p) = &ovp.spec else {
                continue;
            };
            let used = desired.resources.values().any(|r| {
                matches!(&r.spec, Spec::TelnyxCredentialConnection(c)
                    if c.outbound_voice_profile.as_ref().and_then(Ref::addr) == Some(&ovp.addr))
            });
            if !used {
                continue;
            }
            for (country, via) in required_countries(desired, Some(&ovp.addr)) {
                if p.whitelisted_destinations.contains(&country) {
                    continue;
                }
                let at = self.at(ovp, "whitelisted_destinations");
                found.push(match via {
                    Some(trunk) => Problem::error(
                        ProblemKind::OutboundProfile,
                        at,
                        format!("{country} missing"),
                        format!("{} does not whitelist {country}, where {} calls", ovp.addr, trunk.addr),
                    )
                    .with_label(self.at(trunk, "destination_country"), "calls here")
                    .with_help(format!("add \"{country}\" to whitelisted_destinations, or Telnyx rejects the calls")),
                    None => Problem::error(
                        ProblemKind::OutboundProfile,
                        at,
                        format!("{country} missing"),
                        format!("{} does not whitelist {country}, which [defaults] outbound_countries asks every outbound line to reach", ovp.addr),
                    )
                    .with_help(format!("add \"{country}\" to whitelisted_destinations, or set [defaults] outbound_countries to the countries the churches call")),
                });
            }
        }
        self.extend(found);
    }
}
