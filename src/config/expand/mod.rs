//! Raw blocks -> [`Desired`]: resolves references, applies `[defaults]`, expands each church
//! line by convention (number -> inbound trunk -> dispatch rule) and lays explicit blocks over
//! what the convention produced. Every value is filled with what a provider reports for an
//! unchanged object, so an untouched resource never shows a diff.

use std::collections::BTreeMap;

use toml::Spanned;

use super::convention::{self, LineDefaults, LineKeys};
use super::error::{Problem, ProblemKind};
use super::raw::{
    Block, DependsOn, List, Opt, RawChurch, RawCredentialConnection, RawDispatchRule,
    RawEmergencyAddress, RawFile, RawFqdn, RawFqdnConnection, RawInboundTrunk, RawLine,
    RawOutboundTrunk, RawOutboundVoiceProfile, RawTelnyxNumber, RawTexmlApplication,
    RawTwilioNumber, RawTwilioTrunk,
};
use crate::model::{
    Address, AgentDispatch, Church, CredentialConnectionSpec, Desired, DesiredResource,
    DispatchKind, DispatchRuleSpec, EmergencyAddressSpec, FqdnConnectionSpec, FqdnSpec,
    InboundTrunkSpec, Kind, NumberRef, NumberSettings, NumberSpec, OriginationUrl,
    OutboundTrunkSpec, OutboundVoiceProfileSpec, Policy, ProtectedId, Ref, SecretRef, Settings,
    SourceSpan, Spec, TelnyxNumberSpec, TexmlApplicationSpec, TwilioNumberSpec,
    TwilioTrunkNumberSpec, TwilioTrunkSpec, E164,
};

mod churches;
mod finish;
mod livekit;
mod resolve;
mod settings;
mod telnyx;
mod twilio;
mod values;

use churches::church_lines;

/// The endings `"auto"` numbers try, in order, before taking the first available number.
pub const FRIENDLY_ENDINGS: [&str; 8] = ["0000", "5000", "4000", "000", "500", "400", "200", "100"];

/// Kinds a number may be bound to (`connection = …`).
const CONNECTION_KINDS: [Kind; 3] = [
    Kind::TelnyxFqdnConnection,
    Kind::TelnyxCredentialConnection,
    Kind::TelnyxTexmlApplication,
];

/// Spans of individual values (`transport`, `numbers.2`), so checks can point at the value
/// rather than at the whole block.
#[derive(Debug, Default, Clone)]
pub struct FieldSpans(BTreeMap<(Address, String), SourceSpan>);

impl FieldSpans {
    pub fn insert(&mut self, addr: &Address, field: impl Into<String>, span: SourceSpan) {
        self.0.insert((addr.clone(), field.into()), span);
    }

    pub fn get(&self, addr: &Address, field: &str) -> Option<SourceSpan> {
        self.0.get(&(addr.clone(), field.to_string())).copied()
    }
}

/// The model plus the value-level spans the checks need.
#[derive(Debug, Default)]
pub struct Expanded {
    pub desired: Desired,
    pub spans: FieldSpans,
    /// The span of `[defaults] agent`, or of nothing.
    pub agent_span: Option<SourceSpan>,
}

/// Expands the raw file. Problems are recorded; what could be built is returned regardless,
/// so later checks still run and one pass reports as much as possible.
pub fn expand(raw: &RawFile, text: &str, problems: &mut Vec<Problem>) -> Expanded {
    let mut x = Expander {
        raw,
        problems,
        defaults: Defaults::default(),
        declared: BTreeMap::new(),
        resources: BTreeMap::new(),
        spans: FieldSpans::default(),
        policy: Policy::default(),
        shared: Vec::new(),
    };
    x.check_version(text.chars().next().map_or(0, char::len_utf8));
    x.policy();
    x.defaults();
    let settings = x.settings();
    let protected = x.protected();
    x.declare_all();
    x.defaults.connection = x.default_connection();
    x.policy.park = x.park_target();
    let churches = x.churches();
    x.explicit_blocks();
    x.attach_shared_trunk_numbers();
    x.twilio_trunk_numbers();
    x.normalize_number_refs();
    x.duplicate_numbers();
    x.canonical_sets();
    let agent_span = x.defaults.agent_span;
    Expanded {
        desired: Desired {
            resources: x.resources,
            churches,
            protected,
            policy: x.policy,
            settings: Settings {
                agent_name: x.defaults.line.agent.clone(),
                ..settings
            },
        },
        spans: x.spans,
        agent_span,
    }
}

#[derive(Debug)]
struct Defaults {
    /// What a church line expands with (`agent`, `room_prefix`, `krisp`).
    line: LineDefaults,
    agent_span: Option<SourceSpan>,
    country: String,
    endings: Vec<String>,
    connection: Option<Address>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            line: LineDefaults::default(),
            agent_span: None,
            country: "US".into(),
            endings: FRIENDLY_ENDINGS.iter().map(|s| s.to_string()).collect(),
            connection: None,
        }
    }
}

/// One line of a church, with the church's settings merged under the line's own.
struct LineDecl {
    /// `<key>` for a single-number church, `<key>_<line>` for each of several lines.
    name: String,
    label: Option<String>,
    raw: RawLine,
    span: SourceSpan,
}

struct Expander<'a> {
    raw: &'a RawFile,
    problems: &'a mut Vec<Problem>,
    defaults: Defaults,
    declared: BTreeMap<Address, SourceSpan>,
    resources: BTreeMap<Address, DesiredResource>,
    spans: FieldSpans,
    policy: Policy,
    /// Church numbers to add to a shared trunk: (trunk, number resource, where it was asked).
    shared: Vec<(Address, Address, SourceSpan)>,
}

fn span_of<T>(s: &Spanned<T>) -> SourceSpan {
    s.span().into()
}

fn text(field: &Opt<String>) -> Option<String> {
    field.as_ref().map(|s| s.get_ref().clone())
}

fn flag(field: &Opt<bool>) -> Option<bool> {
    field.as_ref().map(|s| *s.get_ref())
}

fn strings(list: &Option<List>) -> Option<Vec<String>> {
    list.as_ref()
        .map(|l| l.get_ref().iter().map(|s| s.get_ref().clone()).collect())
}

/// The smallest valid head of a lines.toml (a LiveKit project and the FQDN connection church
/// numbers route through), for unit tests that add blocks below it.
#[cfg(test)]
pub(crate) const TEST_HEAD: &str = r#"
version = 1
[defaults]
agent = "churchwiseai-voice"
[livekit]
project_id = "p_5u9xu5ysoly"
[telnyx.fqdn_connection.livekit]
name = "LiveKit"
[telnyx.fqdn.livekit]
connection = "livekit"
fqdn = "5u9xu5ysoly.sip.livekit.cloud"
default_primary = true
"#;

/// The `[section.kind]` a kind is declared under, for help texts.
pub fn section_of(kind: Kind) -> String {
    let s = kind.as_str();
    let (provider, rest) = s.split_once('_').unwrap_or((s, ""));
    format!("{provider}.{rest}")
}

impl Expander<'_> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn insert(
        &mut self,
        addr: Address,
        spec: Spec,
        church: Option<String>,
        span: SourceSpan,
        depends_on: Vec<Address>,
    ) {
        let read_only = addr.kind.provider() == crate::model::ProviderName::Twilio
            && !self.policy.twilio_writes;
        self.resources.insert(
            addr.clone(),
            DesiredResource {
                addr,
                spec,
                church,
                read_only,
                depends_on,
                span,
            },
        );
    }

    fn explicit_blocks(&mut self) {
        let raw = self.raw;
        self.explicit(
            Kind::TelnyxOutboundVoiceProfile,
            &raw.outbound_voice_profiles,
            Self::outbound_voice_profile,
        );
        self.explicit(
            Kind::TelnyxFqdnConnection,
            &raw.fqdn_connections,
            Self::fqdn_connection,
        );
        self.explicit(
            Kind::TelnyxCredentialConnection,
            &raw.credential_connections,
            Self::credential_connection,
        );
        self.explicit(
            Kind::TelnyxTexmlApplication,
            &raw.texml_applications,
            Self::texml_application,
        );
        self.explicit(Kind::TelnyxFqdn, &raw.fqdns, Self::fqdn);
        self.explicit(
            Kind::TelnyxEmergencyAddress,
            &raw.emergency_addresses,
            Self::emergency_address,
        );
        self.explicit(Kind::TelnyxNumber, &raw.telnyx_numbers, Self::telnyx_number);
        self.explicit(Kind::TwilioTrunk, &raw.twilio_trunks, Self::twilio_trunk);
        self.explicit(Kind::TwilioNumber, &raw.twilio_numbers, Self::twilio_number);
        self.explicit(
            Kind::LivekitInboundTrunk,
            &raw.inbound_trunks,
            Self::inbound_trunk,
        );
        self.explicit(
            Kind::LivekitOutboundTrunk,
            &raw.outbound_trunks,
            Self::outbound_trunk,
        );
        self.explicit(
            Kind::LivekitDispatchRule,
            &raw.dispatch_rules,
            Self::dispatch_rule,
        );
    }

    /// Lays each block over what the convention produced at its address: `build` makes the
    /// spec from the block and the convention's spec there (if any), or `None` when a
    /// required value is missing (its problem recorded); the block's `depends_on` and span
    /// and the convention's church come with it.
    fn explicit<R: DependsOn>(
        &mut self,
        kind: Kind,
        blocks: &[Block<R>],
        build: fn(&mut Self, &Address, &Block<R>, Option<Spec>) -> Option<Spec>,
    ) {
        for b in blocks {
            let addr = Address::new(kind, &b.name);
            let base = self.resources.remove(&addr);
            let church = base.as_ref().and_then(|r| r.church.clone());
            let spec = build(self, &addr, b, base.map(|r| r.spec));
            let deps = self.depends_on(b.raw.depends_on(), &addr);
            if let Some(spec) = spec {
                self.insert(addr, spec, church, b.span, deps);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{parse, ConfigError};

    fn desired(body: &str) -> Desired {
        match parse(Path::new("t.toml"), &format!("{TEST_HEAD}{body}")) {
            Ok(l) => l.desired,
            Err(e) => panic!("{:?}", miette::Report::new(e)),
        }
    }

    fn problems(body: &str) -> Vec<ProblemKind> {
        match parse(Path::new("t.toml"), &format!("{TEST_HEAD}{body}")) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, .. }) => problems.iter().map(|p| p.kind).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    fn spec<'a>(d: &'a Desired, addr: &str) -> &'a DesiredResource {
        d.get(&addr.parse().unwrap())
            .unwrap_or_else(|| panic!("{addr} not expanded"))
    }

    const UUID: &str = "00000000-0000-4000-8000-000000000001";

    #[test]
    fn a_church_line_expands_to_number_trunk_and_rule() {
        let d = desired(&format!(
            "[church.grace]\nid = \"{UUID}\"\nname = \"Grace\"\nnumber = \"+14144007103\"\n"
        ));
        let number = E164::parse("+14144007103").unwrap();
        let conn = Ref::Addr("telnyx_fqdn_connection.livekit".parse().unwrap());
        assert_eq!(
            spec(&d, "telnyx_number.grace").spec,
            Spec::TelnyxNumber(TelnyxNumberSpec {
                number: NumberSpec::Fixed {
                    number: number.clone()
                },
                connection: Some(conn),
                tags: vec![],
                settings: NumberSettings::default(),
            })
        );
        assert_eq!(
            spec(&d, "livekit_inbound_trunk.grace").spec,
            Spec::LivekitInboundTrunk(InboundTrunkSpec::holding(
                "Grace",
                vec![NumberRef::Number(number)]
            ))
        );
        assert_eq!(
            spec(&d, "livekit_dispatch_rule.grace").spec,
            Spec::LivekitDispatchRule(DispatchRuleSpec {
                name: "Grace Dispatch".into(),
                metadata: String::new(),
                trunks: vec![Ref::Addr("livekit_inbound_trunk.grace".parse().unwrap())],
                rule: DispatchKind::Individual {
                    room_prefix: "call-".into(),
                    pin: String::new(),
                },
                agents: vec![AgentDispatch {
                    agent_name: "churchwiseai-voice".into(),
                    metadata: format!(r#"{{"church_id":"{UUID}","source":"phone"}}"#),
                }],
                hide_phone_number: false,
                krisp_enabled: false,
                preserved: Default::default(),
            })
        );
        for addr in [
            "telnyx_number.grace",
            "livekit_inbound_trunk.grace",
            "livekit_dispatch_rule.grace",
        ] {
            assert_eq!(spec(&d, addr).church.as_deref(), Some("grace"));
        }
        assert_eq!(d.churches[0].id.to_string(), UUID);
    }

    #[test]
    fn auto_number_stays_a_reference_until_bought() {
        let d = desired(&format!(
            "[church.grace]\nid = \"{UUID}\"\nname = \"Grace\"\nnumber = \"auto\"\narea_code = \"734\"\n"
        ));
        let Spec::TelnyxNumber(n) = &spec(&d, "telnyx_number.grace").spec else {
            panic!()
        };
        assert_eq!(
            n.number,
            NumberSpec::Auto {
                country: "US".into(),
                area_code: "734".into(),
                endings: FRIENDLY_ENDINGS.iter().map(|s| s.to_string()).collect(),
            }
        );
        let Spec::LivekitInboundTrunk(t) = &spec(&d, "livekit_inbound_trunk.grace").spec else {
            panic!()
        };
        assert_eq!(
            t.numbers,
            vec![NumberRef::Of("telnyx_number.grace".parse().unwrap())]
        );
    }

    #[test]
    fn explicit_block_overrides_the_convention_field_by_field() {
        let d = desired(&format!(
            "[church.grace]\nid = \"{UUID}\"\nname = \"Grace\"\nnumber = \"+14144007103\"\n\
             [livekit.inbound_trunk.grace]\nkrisp = false\n"
        ));
        let r = spec(&d, "livekit_inbound_trunk.grace");
        let Spec::LivekitInboundTrunk(t) = &r.spec else {
            panic!()
        };
        assert!(!t.krisp_enabled);
        assert_eq!(t.name, "Grace");
        assert_eq!(t.numbers.len(), 1);
        assert_eq!(r.church.as_deref(), Some("grace"));
    }

    #[test]
    fn several_lines_get_their_own_addresses() {
        let d = desired(&format!(
            "[church.grace]\nid = \"{UUID}\"\nname = \"Grace\"\nroom_prefix = \"grace-\"\n\
             [church.grace.lines.main]\nnumber = \"+14144007103\"\n\
             [church.grace.lines.youth]\nnumber = \"+14144007104\"\nkrisp = false\n"
        ));
        let Spec::LivekitInboundTrunk(t) = &spec(&d, "livekit_inbound_trunk.grace_youth").spec
        else {
            panic!()
        };
        assert_eq!(t.name, "Grace (youth)");
        assert!(!t.krisp_enabled);
        let Spec::LivekitDispatchRule(r) = &spec(&d, "livekit_dispatch_rule.grace_main").spec
        else {
            panic!()
        };
        assert_eq!(r.name, "Grace (main) Dispatch");
        assert_eq!(
            r.rule,
            DispatchKind::Individual {
                room_prefix: "grace-".into(),
                pin: String::new()
            }
        );
    }

    #[test]
    fn a_church_on_a_shared_trunk_adds_its_number_there() {
        let d = desired(&format!(
            "[livekit.inbound_trunk.shared]\nname = \"Shared\"\nnumbers = [\"+14144007103\"]\n\
             [livekit.dispatch_rule.shared]\nname = \"Shared Dispatch\"\ntrunks = [\"shared\"]\n\
             [church.grace]\nid = \"{UUID}\"\nname = \"Grace\"\nnumber = \"+14144007104\"\ntrunk = \"shared\"\n"
        ));
        assert!(d
            .get(&"livekit_inbound_trunk.grace".parse().unwrap())
            .is_none());
        assert!(d
            .get(&"livekit_dispatch_rule.grace".parse().unwrap())
            .is_none());
        let Spec::LivekitInboundTrunk(t) = &spec(&d, "livekit_inbound_trunk.shared").spec else {
            panic!()
        };
        let numbers: Vec<String> = t.numbers.iter().map(|n| n.to_string()).collect();
        assert_eq!(numbers, ["+14144007103", "+14144007104"]);
    }

    #[test]
    fn twilio_is_read_only_unless_the_policy_allows_writes() {
        let twilio = "[twilio.trunk.main]\nname = \"Main\"\ndomain_name = \"x.pstn.twilio.com\"\n\
                      [twilio.number.sales]\nnumber = \"+18886030316\"\nname = \"Sales\"\ntrunk = \"main\"\n\
                      [livekit.inbound_trunk.t]\nname = \"T\"\nnumbers = [\"twilio_number.sales\"]\n\
                      [livekit.dispatch_rule.t]\nname = \"T\"\ntrunks = [\"t\"]\n";
        let d = desired(twilio);
        let tn = spec(&d, "twilio_trunk_number.sales");
        assert!(tn.read_only);
        assert_eq!(
            tn.spec,
            Spec::TwilioTrunkNumber(TwilioTrunkNumberSpec {
                trunk: Ref::Addr("twilio_trunk.main".parse().unwrap()),
                number: Ref::Addr("twilio_number.sales".parse().unwrap()),
            })
        );
        let d = desired(&format!("[policy]\ntwilio = \"read-write\"\n{twilio}"));
        assert!(!spec(&d, "twilio_number.sales").read_only);
        assert!(!spec(&d, "livekit_inbound_trunk.t").read_only);
    }

    #[test]
    fn unchanged_objects_get_the_providers_defaults() {
        let d = desired("");
        let Spec::TelnyxFqdnConnection(c) = &spec(&d, "telnyx_fqdn_connection.livekit").spec else {
            panic!()
        };
        assert_eq!(
            (
                c.active,
                c.transport_protocol.as_str(),
                c.ani_number_format.as_str(),
                c.dnis_number_format.as_str()
            ),
            (true, "TCP", "+E.164", "+e164")
        );
        let Spec::TelnyxFqdn(f) = &spec(&d, "telnyx_fqdn.livekit").spec else {
            panic!()
        };
        assert_eq!((f.port, f.dns_record_type.as_str()), (5060, "a"));
        assert_eq!(d.settings.livekit_sip_host, "5u9xu5ysoly.sip.livekit.cloud");
    }

    #[test]
    fn protected_ids_keep_their_span() {
        let text = format!("{TEST_HEAD}[protected]\n\"ST_Xa3Bp9aixRFP\" = \"locked\"\n");
        let loaded = parse(Path::new("t.toml"), &text).unwrap();
        let p = &loaded.desired.protected[0];
        let span = p.span.unwrap();
        assert_eq!(
            &text[span.offset..span.offset + span.len],
            "\"ST_Xa3Bp9aixRFP\""
        );
    }

    #[test]
    fn short_names_resolve_only_when_unambiguous() {
        assert!(problems(
            "[telnyx.number.x]\nnumber = \"+14144007103\"\nconnection = \"livekit\"\n"
        )
        .contains(&ProblemKind::Routing));
        let kinds = problems(
            "[telnyx.credential_connection.livekit]\nname = \"C\"\nuser_name = \"u\"\n\
             [telnyx.number.x]\nnumber = \"+14144007103\"\nconnection = \"livekit\"\n",
        );
        assert!(kinds.contains(&ProblemKind::Reference), "{kinds:?}");
    }

    #[test]
    fn secret_env_must_be_a_variable_name() {
        let kinds = problems(
            "[telnyx.fqdn_connection.other]\nname = \"O\"\npassword_env = \"hunter2 !\"\n",
        );
        assert_eq!(kinds, vec![ProblemKind::SecretEnvName]);
    }
}
