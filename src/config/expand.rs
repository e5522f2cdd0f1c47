//! Raw blocks -> [`Desired`]: resolves references, applies `[defaults]`, expands each church
//! line by convention (number -> inbound trunk -> dispatch rule) and lays explicit blocks over
//! what the convention produced. Every value is filled with what a provider reports for an
//! unchanged object, so an untouched resource never shows a diff.

use std::collections::BTreeMap;

use toml::Spanned;

use super::convention::{self, LineDefaults, LineKeys};
use super::error::{Problem, ProblemKind};
use super::raw::{
    Block, List, Opt, RawChurch, RawCredentialConnection, RawDispatchRule, RawFile, RawFqdn,
    RawFqdnConnection, RawInboundTrunk, RawLine, RawOutboundTrunk, RawOutboundVoiceProfile,
    RawTelnyxNumber, RawTexmlApplication, RawTwilioNumber, RawTwilioTrunk,
};
use crate::model::{
    Address, AgentDispatch, Church, CredentialConnectionSpec, Desired, DesiredResource,
    DispatchKind, DispatchRuleSpec, FqdnConnectionSpec, FqdnSpec, InboundTrunkSpec, Kind,
    NumberRef, NumberSpec, OriginationUrl, OutboundTrunkSpec, OutboundVoiceProfileSpec, Policy,
    ProtectedId, Ref, SecretRef, Settings, SourceSpan, Spec, TelnyxNumberSpec,
    TexmlApplicationSpec, TwilioNumberSpec, TwilioTrunkNumberSpec, TwilioTrunkSpec, E164,
};

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

/// The `[section.kind]` a kind is declared under, for help texts.
pub fn section_of(kind: Kind) -> String {
    let s = kind.as_str();
    let (provider, rest) = s.split_once('_').unwrap_or((s, ""));
    format!("{provider}.{rest}")
}

fn kinds_list(kinds: &[Kind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    names.join(" or ")
}

/// The diagnostic for a `*_env` value that may not be read: a value where a name belongs is
/// masked in the snippet (it may be a secret); a refused name is shown.
fn env_name_problem(
    span: SourceSpan,
    name: &str,
    refusal: super::secrets::EnvNameRefusal,
) -> Problem {
    use super::secrets::EnvNameRefusal;
    let p = Problem::error(
        ProblemKind::SecretEnvName,
        span,
        match refusal {
            EnvNameRefusal::NotUpperSnake => "not an environment variable name",
            _ => "this variable may not be read as a secret",
        },
        refusal.reason(name),
    );
    match refusal {
        EnvNameRefusal::NotUpperSnake => p
            .with_help("e.g. password_env = \"TELNYX_FQDN_PASSWORD\"; if a secret was written here, remove it and rotate it")
            .masking(span),
        _ => p.with_help("give the SIP password a variable of its own, e.g. password_env = \"TELNYX_FQDN_PASSWORD\" (docs/lines-toml.md lists the refused names)"),
    }
}

impl Expander<'_> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// `first_char` is the byte length of the file's first character, the anchor of a missing
    /// version.
    fn check_version(&mut self, first_char: usize) {
        match &self.raw.version {
            Some(v) if *v.get_ref() == 1 => {}
            Some(v) => self.push(
                Problem::error(
                    ProblemKind::Version,
                    span_of(v),
                    "unsupported version",
                    format!("lines.toml version {} is not supported", v.get_ref()),
                )
                .with_help("this cwa reads `version = 1`"),
            ),
            None => self.push(
                Problem::error(
                    ProblemKind::Version,
                    SourceSpan::new(0, first_char),
                    "no version",
                    "lines.toml has no `version`",
                )
                .with_help("add `version = 1` as the first line"),
            ),
        }
    }

    fn policy(&mut self) {
        let raw = &self.raw.policy;
        if let Some(t) = &raw.twilio {
            match t.get_ref().as_str() {
                "read-only" => self.policy.twilio_writes = false,
                "read-write" => self.policy.twilio_writes = true,
                _ => self.push(
                    Problem::error(
                        ProblemKind::Policy,
                        span_of(t),
                        "unknown policy",
                        format!("twilio policy `{}` is not known", t.get_ref()),
                    )
                    .with_help("use \"read-only\" (legacy numbers are verified, never written) or \"read-write\""),
                ),
            }
        }
        if let Some(share) = &raw.max_delete_share {
            let v = *share.get_ref();
            if (0.0..=1.0).contains(&v) {
                self.policy.max_delete_share = v;
            } else {
                self.push(
                    Problem::error(
                        ProblemKind::Policy,
                        span_of(share),
                        "out of range",
                        format!("max_delete_share {v} is not a share"),
                    )
                    .with_help("a share between 0.0 and 1.0, e.g. 0.25"),
                );
            }
        }
    }

    fn defaults(&mut self) {
        let raw = &self.raw.defaults;
        let d = &mut self.defaults;
        if let Some(a) = &raw.agent {
            d.line.agent = a.get_ref().clone();
            d.agent_span = Some(span_of(a));
        }
        if let Some(p) = text(&raw.room_prefix) {
            d.line.room_prefix = p;
        }
        if let Some(k) = flag(&raw.krisp) {
            d.line.krisp = k;
        }
        if let Some(c) = text(&raw.country) {
            d.country = c.to_ascii_uppercase();
        }
        if let Some(e) = strings(&raw.friendly_endings) {
            d.endings = e;
        }
        if let Some(list) = &raw.friendly_endings {
            for e in list.get_ref() {
                if e.get_ref().is_empty() || !e.get_ref().bytes().all(|b| b.is_ascii_digit()) {
                    self.problems.push(
                        Problem::error(
                            ProblemKind::InvalidValue,
                            span_of(e),
                            "not digits",
                            format!(
                                "friendly ending `{}` is not a string of digits",
                                e.get_ref()
                            ),
                        )
                        .with_help("endings are the last digits tried in order, e.g. \"0000\""),
                    );
                }
            }
        }
    }

    fn settings(&mut self) -> Settings {
        let raw = &self.raw.livekit;
        let project_id = text(&raw.project_id).unwrap_or_default();
        let expected_host = project_id
            .strip_prefix("p_")
            .map(|id| format!("{id}.sip.livekit.cloud"));
        if let Some(p) = &raw.project_id {
            if expected_host.is_none() {
                self.push(
                    Problem::error(
                        ProblemKind::SipHost,
                        span_of(p),
                        "not a project id",
                        format!("`{}` is not a LiveKit project id", p.get_ref()),
                    )
                    .with_help("the project id starts with `p_` (e.g. p_5u9xu5ysoly); the project name (cwa-voice-…) is not an id"),
                );
            }
        }
        let sip_host = match (&raw.sip_host, &expected_host) {
            (Some(h), Some(expected)) if h.get_ref() != expected => {
                self.push(
                    Problem::error(
                        ProblemKind::SipHost,
                        span_of(h),
                        format!("expected {expected}"),
                        format!("sip_host `{}` is not the project-id SIP host", h.get_ref()),
                    )
                    .with_help("LiveKit's SIP endpoint is <project id without p_>.sip.livekit.cloud; a project-NAME host answers \"404 No trunk found\""),
                );
                h.get_ref().clone()
            }
            (Some(h), _) => h.get_ref().clone(),
            (None, Some(expected)) => expected.clone(),
            (None, None) => String::new(),
        };
        Settings {
            livekit_project_id: project_id,
            livekit_sip_host: sip_host,
            agent_name: String::new(),
            outbound_countries: None,
        }
    }

    fn protected(&mut self) -> Vec<ProtectedId> {
        let mut out = Vec::new();
        for (id, reason) in &self.raw.protected {
            if reason.get_ref().trim().is_empty() {
                self.push(
                    Problem::error(
                        ProblemKind::MissingField,
                        span_of(reason),
                        "empty reason",
                        format!("protected id `{}` has no reason", id.get_ref()),
                    )
                    .with_help(
                        "say why it is locked, so the next person knows before asking to unlock it",
                    ),
                );
            }
            out.push(ProtectedId {
                id: id.get_ref().clone(),
                reason: reason.get_ref().clone(),
                span: Some(span_of(id)),
            });
        }
        out
    }

    fn declare(&mut self, kind: Kind, name: &str, span: SourceSpan) {
        self.declared
            .entry(Address::new(kind, name))
            .or_insert(span);
    }

    fn declare_blocks<R>(&mut self, kind: Kind, blocks: &[Block<R>]) {
        for b in blocks {
            self.declare(kind, &b.name, b.span);
        }
    }

    /// Every address the file declares, explicit or by convention, known before any reference
    /// is resolved so that order in the file never matters.
    fn declare_all(&mut self) {
        let raw = self.raw;
        self.declare_blocks(Kind::TelnyxFqdnConnection, &raw.fqdn_connections);
        self.declare_blocks(Kind::TelnyxFqdn, &raw.fqdns);
        self.declare_blocks(
            Kind::TelnyxCredentialConnection,
            &raw.credential_connections,
        );
        self.declare_blocks(
            Kind::TelnyxOutboundVoiceProfile,
            &raw.outbound_voice_profiles,
        );
        self.declare_blocks(Kind::TelnyxTexmlApplication, &raw.texml_applications);
        self.declare_blocks(Kind::TelnyxNumber, &raw.telnyx_numbers);
        self.declare_blocks(Kind::LivekitInboundTrunk, &raw.inbound_trunks);
        self.declare_blocks(Kind::LivekitOutboundTrunk, &raw.outbound_trunks);
        self.declare_blocks(Kind::LivekitDispatchRule, &raw.dispatch_rules);
        self.declare_blocks(Kind::TwilioNumber, &raw.twilio_numbers);
        self.declare_blocks(Kind::TwilioTrunk, &raw.twilio_trunks);
        for n in &raw.twilio_numbers {
            if n.raw.trunk.is_some() {
                self.declare(Kind::TwilioTrunkNumber, &n.name, n.span);
            }
        }
        for church in &raw.churches {
            for line in church_lines(church) {
                self.declare(Kind::TelnyxNumber, &line.name, line.span);
                if line.raw.trunk.is_none() {
                    self.declare(Kind::LivekitInboundTrunk, &line.name, line.span);
                    self.declare(Kind::LivekitDispatchRule, &line.name, line.span);
                }
            }
        }
    }

    fn default_connection(&mut self) -> Option<Address> {
        if let Some(c) = &self.raw.defaults.connection {
            return self.resolve(c, &CONNECTION_KINDS, "connection");
        }
        let mut fqdn = self
            .declared
            .keys()
            .filter(|a| a.kind == Kind::TelnyxFqdnConnection);
        match (fqdn.next(), fqdn.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        }
    }

    /// Resolves a reference written as `kind.name`, or as a bare name when exactly one of the
    /// allowed kinds has it.
    fn resolve(&mut self, value: &Spanned<String>, allowed: &[Kind], key: &str) -> Option<Address> {
        let written = value.get_ref().as_str();
        let span = span_of(value);
        if let Ok(addr) = written.parse::<Address>() {
            if !allowed.contains(&addr.kind) {
                self.push(
                    Problem::error(
                        ProblemKind::Reference,
                        span,
                        "wrong kind of resource",
                        format!(
                            "`{written}` is a {}; `{key}` takes a {}",
                            addr.kind,
                            kinds_list(allowed)
                        ),
                    )
                    .with_help(format!("point `{key}` at a {}", kinds_list(allowed))),
                );
                return None;
            }
            if self.declared.contains_key(&addr) {
                return Some(addr);
            }
            self.push(self.dangling(written, span, allowed, key));
            return None;
        }
        let candidates: Vec<Address> = allowed
            .iter()
            .map(|k| Address::new(*k, written))
            .filter(|a| self.declared.contains_key(a))
            .collect();
        match candidates.as_slice() {
            [one] => Some(one.clone()),
            [] => {
                self.push(self.dangling(written, span, allowed, key));
                None
            }
            many => {
                let names: Vec<String> = many.iter().map(|a| a.to_string()).collect();
                self.push(
                    Problem::error(
                        ProblemKind::Reference,
                        span,
                        "ambiguous",
                        format!("`{written}` could be {}", names.join(" or ")),
                    )
                    .with_help("write the full address, kind.name"),
                );
                None
            }
        }
    }

    fn dangling(&self, written: &str, span: SourceSpan, allowed: &[Kind], key: &str) -> Problem {
        let known: Vec<String> = self
            .declared
            .keys()
            .filter(|a| allowed.contains(&a.kind))
            .map(|a| a.to_string())
            .collect();
        let refs: Vec<&str> = known.iter().map(String::as_str).collect();
        let short = written.rsplit('.').next().unwrap_or(written);
        let best = super::raw::suggest(written, &refs).or_else(|| {
            known
                .iter()
                .find(|k| k.rsplit('.').next() == Some(short))
                .map(String::as_str)
        });
        let help = match best {
            Some(b) => format!("did you mean `{b}`?"),
            None => format!(
                "declare it as [{}.<name>], or point `{key}` at one that exists",
                section_of(allowed[0])
            ),
        };
        Problem::error(
            ProblemKind::Reference,
            span,
            "no such resource",
            format!(
                "`{written}` does not name a declared {}",
                kinds_list(allowed)
            ),
        )
        .with_help(help)
    }

    fn depends_on(&mut self, list: &Option<List>, addr: &Address) -> Vec<Address> {
        let mut out = Vec::new();
        if let Some(list) = list {
            self.spans.insert(addr, "depends_on", span_of(list));
            for entry in list.get_ref() {
                if let Some(a) = self.resolve(entry, &Kind::ALL, "depends_on") {
                    out.push(a);
                }
            }
        }
        out
    }

    fn mark<T>(&mut self, addr: &Address, key: &str, field: &Opt<T>) {
        if let Some(f) = field {
            self.spans.insert(addr, key, span_of(f));
        }
    }

    fn missing(&mut self, addr: &Address, span: SourceSpan, key: &str) {
        self.push(
            Problem::error(
                ProblemKind::MissingField,
                span,
                format!("needs `{key}`"),
                format!("`{addr}` has no `{key}`"),
            )
            .with_help(format!(
                "add `{key} = …` to [{}.{}]",
                section_of(addr.kind),
                addr.name
            )),
        );
    }

    /// The field's value, else the convention's, else a missing-field problem.
    fn required(
        &mut self,
        field: &Opt<String>,
        base: Option<String>,
        addr: &Address,
        span: SourceSpan,
        key: &str,
    ) -> Option<String> {
        let v = text(field).or(base);
        if v.is_none() {
            self.missing(addr, span, key);
        }
        v
    }

    fn secret_env(&mut self, field: &Opt<String>) -> Option<SecretRef> {
        let f = field.as_ref()?;
        if let Err(refusal) = super::secrets::check_env_name(f.get_ref()) {
            self.push(env_name_problem(span_of(f), f.get_ref(), refusal));
            return None;
        }
        Some(SecretRef::Env(f.get_ref().clone()))
    }

    /// A strict E.164 number that is not a 555 fiction number.
    fn e164(&mut self, value: &Spanned<String>) -> Option<E164> {
        let span = span_of(value);
        match E164::parse(value.get_ref()) {
            Err(e) => {
                self.push(
                    Problem::error(ProblemKind::E164, span, "not E.164", e.to_string()).with_help(
                        "write numbers in E.164 with the leading +, e.g. \"+14144007103\"",
                    ),
                );
                None
            }
            Ok(n) if n.is_fiction() => {
                self.push(
                    Problem::error(
                        ProblemKind::FictionNumber,
                        span,
                        "555 fiction number",
                        format!("{n} is a 555 number reserved for fiction; it can never ring"),
                    )
                    .with_help("numbers matching ^\\+1\\d{3}555\\d{4}$ are placeholders; use the real number of this line"),
                );
                None
            }
            Ok(n) => Some(n),
        }
    }

    fn number_spec(
        &mut self,
        line: &RawLine,
        endings: Option<Vec<String>>,
        addr: &Address,
        span: SourceSpan,
    ) -> Option<NumberSpec> {
        let Some(number) = &line.number else {
            self.push(
                Problem::error(
                    ProblemKind::MissingField,
                    span,
                    "needs `number`",
                    format!("`{}` has no `number`", addr.name),
                )
                .with_help("add number = \"+1…\" (or number = \"auto\" with area_code = \"…\")"),
            );
            return None;
        };
        self.spans.insert(addr, "number", span_of(number));
        if number.get_ref() != "auto" {
            if let Some(a) = &line.area_code {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(a),
                        "only for \"auto\"",
                        "area_code applies only to number = \"auto\"",
                    )
                    .with_help(
                        "remove area_code, or write number = \"auto\" to have cwa buy a number",
                    ),
                );
            }
            return self.e164(number).map(|number| NumberSpec::Fixed { number });
        }
        let Some(area) = &line.area_code else {
            self.push(
                Problem::error(
                    ProblemKind::MissingField,
                    span_of(number),
                    "auto needs an area code",
                    "number = \"auto\" has no area_code",
                )
                .with_help("add area_code = \"414\" (the area code to buy in)"),
            );
            return None;
        };
        if area.get_ref().len() != 3 || !area.get_ref().bytes().all(|b| b.is_ascii_digit()) {
            self.push(
                Problem::error(
                    ProblemKind::InvalidValue,
                    span_of(area),
                    "three digits",
                    format!("area code `{}` is not three digits", area.get_ref()),
                )
                .with_help("e.g. area_code = \"414\""),
            );
            return None;
        }
        Some(NumberSpec::Auto {
            country: text(&line.country)
                .map(|c| c.to_ascii_uppercase())
                .unwrap_or_else(|| self.defaults.country.clone()),
            area_code: area.get_ref().clone(),
            endings: endings.unwrap_or_else(|| self.defaults.endings.clone()),
        })
    }

    /// Every set field in its one canonical form ([`crate::model::canonical`]), so a
    /// declaration in any order compares equal to what the provider reports. LiveKit trunk
    /// numbers keep their declared order here: checks point at `numbers.N` by position.
    fn canonical_sets(&mut self) {
        for r in self.resources.values_mut() {
            if r.addr.kind.provider() == crate::model::ProviderName::Telnyx {
                r.spec.canonicalize();
            }
        }
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

    fn churches(&mut self) -> Vec<Church> {
        let raw = self.raw;
        let mut out: Vec<Church> = Vec::new();
        let mut ids: BTreeMap<uuid::Uuid, SourceSpan> = BTreeMap::new();
        for block in &raw.churches {
            let Some(church) = self.church(block) else {
                self.check_numbers_only(block);
                continue;
            };
            if let Some(first) = ids.get(&church.id) {
                let id_span = block.raw.id.as_ref().map_or(block.span, span_of);
                self.push(
                    Problem::error(
                        ProblemKind::DuplicateChurch,
                        id_span,
                        "same id again",
                        format!("church id {} is used by two churches", church.id),
                    )
                    .with_label(*first, "first used here")
                    .with_help("each church has its own UUID; the agent routes calls by it"),
                );
                continue;
            }
            ids.insert(church.id, block.raw.id.as_ref().map_or(block.span, span_of));
            for line in church_lines(block) {
                self.church_line(&church, &line);
            }
            out.push(church);
        }
        out
    }

    /// A church that could not be built still has its numbers checked, so one run reports
    /// a bad id and a bad number together.
    fn check_numbers_only(&mut self, block: &Block<RawChurch>) {
        for line in church_lines(block) {
            let addr = Address::new(Kind::TelnyxNumber, &line.name);
            self.number_spec(&line.raw, None, &addr, line.span);
        }
    }

    fn church(&mut self, block: &Block<RawChurch>) -> Option<Church> {
        let raw = &block.raw;
        if raw.lines.is_some() {
            if let Some(n) = &raw.number {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(n),
                        "number and lines",
                        format!("church `{}` has both `number` and `lines`", block.name),
                    )
                    .with_help("give each number its own [church.<key>.lines.<line>] block"),
                );
            }
        }
        let id = match &raw.id {
            None => {
                self.push(
                    Problem::error(
                        ProblemKind::MissingField,
                        block.span,
                        "needs `id`",
                        format!("church `{}` has no `id`", block.name),
                    )
                    .with_help("add id = \"<the church's UUID>\""),
                );
                None
            }
            Some(id) => match uuid::Uuid::parse_str(id.get_ref()) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.push(
                        Problem::error(
                            ProblemKind::InvalidValue,
                            span_of(id),
                            "not a UUID",
                            format!("church id `{}` is not a UUID: {e}", id.get_ref()),
                        )
                        .with_help("the id is the church's UUID, e.g. \"3f2c…-…\""),
                    );
                    None
                }
            },
        };
        let name = match &raw.name {
            Some(n) => Some(n.get_ref().clone()),
            None => {
                self.push(
                    Problem::error(
                        ProblemKind::MissingField,
                        block.span,
                        "needs `name`",
                        format!("church `{}` has no `name`", block.name),
                    )
                    .with_help("add name = \"…\": it names the trunk and the dispatch rule"),
                );
                None
            }
        };
        Some(Church {
            key: block.name.clone(),
            id: id?,
            name: name?,
        })
    }

    fn church_line(&mut self, church: &Church, line: &LineDecl) {
        let number_addr = Address::new(Kind::TelnyxNumber, &line.name);
        let Some(number) = self.number_spec(&line.raw, None, &number_addr, line.span) else {
            return;
        };
        let connection = match &self.defaults.connection {
            Some(c) => Some(Ref::Addr(c.clone())),
            None => {
                self.push(
                    Problem::error(
                        ProblemKind::Reference,
                        line.span,
                        "no connection for its number",
                        format!("church line `{}` has no connection to bind its number to", line.name),
                    )
                    .with_help("set [defaults] connection = \"telnyx_fqdn_connection.<name>\" (where new numbers bind)"),
                );
                None
            }
        };
        let depends_on = self.depends_on(&line.raw.depends_on, &number_addr);
        let key = Some(church.key.clone());
        self.insert(
            number_addr.clone(),
            Spec::TelnyxNumber(TelnyxNumberSpec {
                number,
                connection,
                tags: Vec::new(),
            }),
            key.clone(),
            line.span,
            depends_on,
        );
        if let Some(shared) = &line.raw.trunk {
            if let Some(trunk) = self.resolve(shared, &[Kind::LivekitInboundTrunk], "trunk") {
                self.shared.push((trunk, number_addr, span_of(shared)));
            }
            return;
        }
        let trunk_addr = Address::new(Kind::LivekitInboundTrunk, &line.name);
        if let Some(n) = &line.raw.number {
            self.spans.insert(&trunk_addr, "numbers.0", span_of(n));
        }
        let rule_addr = Address::new(Kind::LivekitDispatchRule, &line.name);
        let agent_span = line
            .raw
            .agent
            .as_ref()
            .map(span_of)
            .or(self.defaults.agent_span);
        if let Some(s) = agent_span {
            self.spans.insert(&rule_addr, "agents.0", s);
        }
        let specs = self.defaults.line.build(
            convention::Line {
                church_id: &church.id,
                trunk_name: convention::trunk_name(&church.name, line.label.as_deref()),
                number: NumberRef::Of(number_addr),
                trunk: Ref::Addr(trunk_addr.clone()),
            },
            &LineKeys {
                agent: text(&line.raw.agent),
                room_prefix: text(&line.raw.room_prefix),
                krisp: flag(&line.raw.krisp),
            },
        );
        let trunk = Spec::LivekitInboundTrunk(specs.trunk);
        self.insert(trunk_addr, trunk, key.clone(), line.span, Vec::new());
        let rule = Spec::LivekitDispatchRule(specs.rule);
        self.insert(rule_addr, rule, key, line.span, Vec::new());
    }

    /// The convention's resource at `addr`, taken out so an explicit block can lay over it.
    fn take_base(&mut self, addr: &Address) -> Option<DesiredResource> {
        self.resources.remove(addr)
    }

    fn explicit_blocks(&mut self) {
        let raw = self.raw;
        for b in &raw.outbound_voice_profiles {
            self.outbound_voice_profile(b);
        }
        for b in &raw.fqdn_connections {
            self.fqdn_connection(b);
        }
        for b in &raw.credential_connections {
            self.credential_connection(b);
        }
        for b in &raw.texml_applications {
            self.texml_application(b);
        }
        for b in &raw.fqdns {
            self.fqdn(b);
        }
        for b in &raw.telnyx_numbers {
            self.telnyx_number(b);
        }
        for b in &raw.twilio_trunks {
            self.twilio_trunk(b);
        }
        for b in &raw.twilio_numbers {
            self.twilio_number(b);
        }
        for b in &raw.inbound_trunks {
            self.inbound_trunk(b);
        }
        for b in &raw.outbound_trunks {
            self.outbound_trunk(b);
        }
        for b in &raw.dispatch_rules {
            self.dispatch_rule(b);
        }
    }

    fn outbound_voice_profile(&mut self, b: &Block<RawOutboundVoiceProfile>) {
        let addr = Address::new(Kind::TelnyxOutboundVoiceProfile, &b.name);
        let r = &b.raw;
        let name = self.required(&r.name, None, &addr, b.span, "name");
        self.mark(&addr, "enabled", &r.enabled);
        if let Some(list) = &r.whitelisted_destinations {
            self.spans
                .insert(&addr, "whitelisted_destinations", span_of(list));
        }
        let countries = crate::model::canonical::countries(
            strings(&r.whitelisted_destinations)
                .unwrap_or_else(crate::model::OutboundVoiceProfileSpec::default_destinations),
        );
        let deps = self.depends_on(&r.depends_on, &addr);
        let Some(name) = name else { return };
        self.insert(
            addr,
            Spec::TelnyxOutboundVoiceProfile(OutboundVoiceProfileSpec {
                name,
                enabled: flag(&r.enabled).unwrap_or(true),
                whitelisted_destinations: countries,
            }),
            None,
            b.span,
            deps,
        );
    }

    fn optional_ref(
        &mut self,
        field: &Opt<String>,
        allowed: &[Kind],
        key: &str,
        addr: &Address,
    ) -> Option<Ref> {
        let f = field.as_ref()?;
        self.spans.insert(addr, key, span_of(f));
        self.resolve(f, allowed, key).map(Ref::Addr)
    }

    fn fqdn_connection(&mut self, b: &Block<RawFqdnConnection>) {
        let addr = Address::new(Kind::TelnyxFqdnConnection, &b.name);
        let r = &b.raw;
        let name = self.required(&r.name, None, &addr, b.span, "name");
        for (key, field) in [
            ("transport", &r.transport),
            ("ani_number_format", &r.ani_number_format),
            ("dnis_number_format", &r.dnis_number_format),
            ("user_name", &r.user_name),
        ] {
            self.mark(&addr, key, field);
        }
        let ovp = self.optional_ref(
            &r.outbound_voice_profile,
            &[Kind::TelnyxOutboundVoiceProfile],
            "outbound_voice_profile",
            &addr,
        );
        let password = self.secret_env(&r.password_env);
        let deps = self.depends_on(&r.depends_on, &addr);
        let Some(name) = name else { return };
        self.insert(
            addr,
            Spec::TelnyxFqdnConnection(FqdnConnectionSpec {
                connection_name: name,
                active: flag(&r.active).unwrap_or(true),
                transport_protocol: text(&r.transport)
                    .map(|t| t.to_ascii_uppercase())
                    .unwrap_or_else(|| "TCP".into()),
                user_name: text(&r.user_name),
                password,
                ani_number_format: text(&r.ani_number_format).unwrap_or_else(|| "+E.164".into()),
                dnis_number_format: text(&r.dnis_number_format).unwrap_or_else(|| "+e164".into()),
                outbound_voice_profile: ovp,
            }),
            None,
            b.span,
            deps,
        );
    }

    fn credential_connection(&mut self, b: &Block<RawCredentialConnection>) {
        let addr = Address::new(Kind::TelnyxCredentialConnection, &b.name);
        let r = &b.raw;
        let name = self.required(&r.name, None, &addr, b.span, "name");
        let user = self.required(&r.user_name, None, &addr, b.span, "user_name");
        self.mark(&addr, "active", &r.active);
        self.mark(&addr, "user_name", &r.user_name);
        let ovp = self.optional_ref(
            &r.outbound_voice_profile,
            &[Kind::TelnyxOutboundVoiceProfile],
            "outbound_voice_profile",
            &addr,
        );
        let password = self.secret_env(&r.password_env);
        let deps = self.depends_on(&r.depends_on, &addr);
        let (Some(name), Some(user)) = (name, user) else {
            return;
        };
        self.insert(
            addr,
            Spec::TelnyxCredentialConnection(CredentialConnectionSpec {
                connection_name: name,
                active: flag(&r.active).unwrap_or(true),
                user_name: user,
                password,
                outbound_voice_profile: ovp,
            }),
            None,
            b.span,
            deps,
        );
    }

    fn texml_application(&mut self, b: &Block<RawTexmlApplication>) {
        let addr = Address::new(Kind::TelnyxTexmlApplication, &b.name);
        let r = &b.raw;
        let name = self.required(&r.name, None, &addr, b.span, "name");
        let url = self.required(&r.voice_url, None, &addr, b.span, "voice_url");
        let method = text(&r.voice_method)
            .map(|m| m.to_ascii_lowercase())
            .unwrap_or_else(|| "post".into());
        if let Some(m) = &r.voice_method {
            if method != "get" && method != "post" {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(m),
                        "get or post",
                        format!("voice_method `{}` is not get or post", m.get_ref()),
                    )
                    .with_help("voice_method = \"post\" (the default) or \"get\""),
                );
            }
        }
        let deps = self.depends_on(&r.depends_on, &addr);
        let (Some(name), Some(url)) = (name, url) else {
            return;
        };
        self.insert(
            addr,
            Spec::TelnyxTexmlApplication(TexmlApplicationSpec {
                friendly_name: name,
                voice_url: url,
                voice_method: method,
            }),
            None,
            b.span,
            deps,
        );
    }

    fn fqdn(&mut self, b: &Block<RawFqdn>) {
        let addr = Address::new(Kind::TelnyxFqdn, &b.name);
        let r = &b.raw;
        self.mark(&addr, "fqdn", &r.fqdn);
        self.mark(&addr, "default_primary", &r.default_primary);
        let connection = match &r.connection {
            Some(_) => self.optional_ref(
                &r.connection,
                &[Kind::TelnyxFqdnConnection],
                "connection",
                &addr,
            ),
            None => {
                self.missing(&addr, b.span, "connection");
                None
            }
        };
        let host = self.required(&r.fqdn, None, &addr, b.span, "fqdn");
        let record_type = text(&r.dns_record_type)
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_else(|| "a".into());
        if let Some(t) = &r.dns_record_type {
            if record_type != "a" && record_type != "srv" {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(t),
                        "a or srv",
                        format!("dns_record_type `{}` is not a or srv", t.get_ref()),
                    )
                    .with_help("dns_record_type = \"a\" (the default) or \"srv\""),
                );
            }
        }
        let deps = self.depends_on(&r.depends_on, &addr);
        let (Some(connection), Some(host)) = (connection, host) else {
            return;
        };
        self.insert(
            addr,
            Spec::TelnyxFqdn(FqdnSpec {
                connection,
                fqdn: host,
                port: r.port.as_ref().map_or_else(
                    || crate::model::FqdnSpec::default_port(&record_type),
                    |p| *p.get_ref(),
                ),
                dns_record_type: record_type,
                default_primary: flag(&r.default_primary).unwrap_or(false),
            }),
            None,
            b.span,
            deps,
        );
    }

    fn telnyx_number(&mut self, b: &Block<RawTelnyxNumber>) {
        let addr = Address::new(Kind::TelnyxNumber, &b.name);
        let r = &b.raw;
        let base = self.take_base(&addr);
        let church = base.as_ref().and_then(|x| x.church.clone());
        let base_spec = base.and_then(|x| match x.spec {
            Spec::TelnyxNumber(s) => Some(s),
            _ => None,
        });
        let number = match (&r.number, &base_spec) {
            (None, Some(base)) => Some(base.number.clone()),
            _ => {
                let line = RawLine {
                    number: r.number.clone(),
                    area_code: r.area_code.clone(),
                    country: r.country.clone(),
                    ..RawLine::default()
                };
                self.number_spec(&line, strings(&r.endings), &addr, b.span)
            }
        };
        let connection = match &r.connection {
            Some(_) => self.optional_ref(&r.connection, &CONNECTION_KINDS, "connection", &addr),
            None => base_spec.as_ref().map_or_else(
                || self.defaults.connection.clone().map(Ref::Addr),
                |s| s.connection.clone(),
            ),
        };
        let tags = strings(&r.tags)
            .or_else(|| base_spec.as_ref().map(|s| s.tags.clone()))
            .unwrap_or_default();
        let deps = self.depends_on(&r.depends_on, &addr);
        let Some(number) = number else { return };
        self.insert(
            addr,
            Spec::TelnyxNumber(TelnyxNumberSpec {
                number,
                connection,
                tags,
            }),
            church,
            b.span,
            deps,
        );
    }

    fn twilio_trunk(&mut self, b: &Block<RawTwilioTrunk>) {
        let addr = Address::new(Kind::TwilioTrunk, &b.name);
        let r = &b.raw;
        let name = self.required(&r.name, None, &addr, b.span, "name");
        // Optional, as in twilio-oai trunking v1 `CreateTrunkRequest`: an origination-only
        // trunk has no termination domain.
        let domain = text(&r.domain_name);
        if let (Some(d), Some(field)) = (&domain, &r.domain_name) {
            if !d.ends_with("pstn.twilio.com") {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(field),
                        "not a Twilio trunk domain",
                        format!("`{d}` does not end in pstn.twilio.com"),
                    )
                    .with_help("Twilio trunk domains look like churchwiseai.pstn.twilio.com"),
                );
            }
        }
        let mut urls = Vec::new();
        if let Some(list) = &r.origination_urls {
            for (i, u) in list.get_ref().iter().enumerate() {
                if let Some(url) = self.origination_url(&addr, i, u) {
                    urls.push(url);
                }
            }
        }
        urls.sort();
        let deps = self.depends_on(&r.depends_on, &addr);
        let Some(name) = name else {
            return;
        };
        self.insert(
            addr,
            Spec::TwilioTrunk(TwilioTrunkSpec {
                friendly_name: name,
                domain_name: domain.unwrap_or_default(),
                origination_urls: urls,
            }),
            None,
            b.span,
            deps,
        );
    }

    fn origination_url(
        &mut self,
        addr: &Address,
        i: usize,
        u: &Spanned<super::raw::RawOriginationUrl>,
    ) -> Option<OriginationUrl> {
        let raw = u.get_ref();
        let span = span_of(u);
        let name = self.required(&raw.name, None, addr, span, "name");
        let sip_url = self.required(&raw.sip_url, None, addr, span, "sip_url");
        if let Some(s) = &raw.sip_url {
            self.spans
                .insert(addr, format!("origination_urls.{i}"), span_of(s));
            if !s.get_ref().starts_with("sip:") {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(s),
                        "needs sip:",
                        "an origination URL must use the sip: scheme",
                    )
                    .with_help(
                        "e.g. sip_url = \"sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp\"",
                    ),
                );
            }
        }
        if let (Some(w), Some(url)) = (&raw.weight, &raw.sip_url) {
            self.spans.insert(
                addr,
                format!("origination_urls[{}].weight", url.get_ref()),
                span_of(w),
            );
        }
        Some(OriginationUrl {
            friendly_name: name?,
            sip_url: sip_url?,
            priority: raw.priority.as_ref().map_or(10, |p| *p.get_ref()),
            weight: raw.weight.as_ref().map_or(10, |w| *w.get_ref()),
            enabled: flag(&raw.enabled).unwrap_or(true),
        })
    }

    fn twilio_number(&mut self, b: &Block<RawTwilioNumber>) {
        let addr = Address::new(Kind::TwilioNumber, &b.name);
        let r = &b.raw;
        let number = match &r.number {
            Some(n) => {
                self.spans.insert(&addr, "number", span_of(n));
                self.e164(n)
            }
            None => {
                self.missing(&addr, b.span, "number");
                None
            }
        };
        let name = self.required(&r.name, None, &addr, b.span, "name");
        let deps = self.depends_on(&r.depends_on, &addr);
        let (Some(number), Some(name)) = (number, name) else {
            return;
        };
        self.insert(
            addr,
            Spec::TwilioNumber(TwilioNumberSpec {
                number,
                friendly_name: name,
            }),
            None,
            b.span,
            deps,
        );
    }

    /// The numbers of a trunk: E.164 literals, or addresses of declared numbers.
    fn trunk_numbers(&mut self, list: &List, addr: &Address) -> Vec<NumberRef> {
        self.spans.insert(addr, "numbers", span_of(list));
        let mut out = Vec::new();
        for (i, entry) in list.get_ref().iter().enumerate() {
            self.spans
                .insert(addr, format!("numbers.{i}"), span_of(entry));
            let looks_like_number = entry
                .get_ref()
                .starts_with(|c: char| c == '+' || c == '(' || c.is_ascii_digit());
            if looks_like_number {
                out.extend(self.e164(entry).map(NumberRef::Number));
            } else if let Some(a) =
                self.resolve(entry, &[Kind::TelnyxNumber, Kind::TwilioNumber], "numbers")
            {
                out.push(NumberRef::Of(a));
            }
        }
        out
    }

    fn allowed_numbers(&mut self, list: &Option<List>) -> Option<Vec<String>> {
        let list = list.as_ref()?;
        Some(
            list.get_ref()
                .iter()
                .filter_map(|n| self.e164(n).map(String::from))
                .collect(),
        )
    }

    fn inbound_trunk(&mut self, b: &Block<RawInboundTrunk>) {
        let addr = Address::new(Kind::LivekitInboundTrunk, &b.name);
        let r = &b.raw;
        let base = self.take_base(&addr);
        let church = base.as_ref().and_then(|x| x.church.clone());
        let base = base.and_then(|x| match x.spec {
            Spec::LivekitInboundTrunk(s) => Some(s),
            _ => None,
        });
        let name = self.required(
            &r.name,
            base.as_ref().map(|s| s.name.clone()),
            &addr,
            b.span,
            "name",
        );
        self.mark(&addr, "auth_username", &r.auth_username);
        self.mark(&addr, "auth_password_env", &r.auth_password_env);
        let numbers = match &r.numbers {
            Some(list) => self.trunk_numbers(list, &addr),
            None => base.as_ref().map(|s| s.numbers.clone()).unwrap_or_default(),
        };
        let allowed_numbers = self
            .allowed_numbers(&r.allowed_numbers)
            .or_else(|| base.as_ref().map(|s| s.allowed_numbers.clone()))
            .unwrap_or_default();
        let password = self.secret_env(&r.auth_password_env);
        let deps = self.depends_on(&r.depends_on, &addr);
        for a in r.allowed_addresses.iter().flat_map(|l| l.get_ref()) {
            self.spans.insert(
                &addr,
                format!("allowed_addresses[{}]", a.get_ref()),
                span_of(a),
            );
        }
        let Some(name) = name else { return };
        let spec = InboundTrunkSpec {
            name,
            metadata: text(&r.metadata)
                .or_else(|| base.as_ref().map(|s| s.metadata.clone()))
                .unwrap_or_default(),
            numbers,
            allowed_addresses: strings(&r.allowed_addresses)
                .or_else(|| base.as_ref().map(|s| s.allowed_addresses.clone()))
                .unwrap_or_default(),
            allowed_numbers,
            auth_username: text(&r.auth_username).unwrap_or_default(),
            auth_password: password,
            krisp_enabled: flag(&r.krisp)
                .or_else(|| base.as_ref().map(|s| s.krisp_enabled))
                .unwrap_or(self.defaults.line.krisp),
            preserved: Default::default(),
        };
        self.insert(addr, Spec::LivekitInboundTrunk(spec), church, b.span, deps);
    }

    fn outbound_trunk(&mut self, b: &Block<RawOutboundTrunk>) {
        let addr = Address::new(Kind::LivekitOutboundTrunk, &b.name);
        let r = &b.raw;
        let name = self.required(&r.name, None, &addr, b.span, "name");
        let address = self.required(&r.address, None, &addr, b.span, "address");
        for (key, field) in [
            ("address", &r.address),
            ("auth_username", &r.auth_username),
            ("destination_country", &r.destination_country),
            ("transport", &r.transport),
        ] {
            self.mark(&addr, key, field);
        }
        self.mark(&addr, "headers", &r.headers);
        let transport = text(&r.transport)
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_else(|| "tcp".into());
        if let Some(t) = &r.transport {
            if !["auto", "udp", "tcp", "tls"].contains(&transport.as_str()) {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(t),
                        "auto, udp, tcp or tls",
                        format!("transport `{}` is not known", t.get_ref()),
                    )
                    .with_help("transport = \"tcp\" (the default) for Telnyx"),
                );
            }
        }
        let numbers = match &r.numbers {
            Some(list) => self.trunk_numbers(list, &addr),
            None => {
                self.missing(&addr, b.span, "numbers");
                Vec::new()
            }
        };
        let headers = r
            .headers
            .as_ref()
            .map(|h| {
                h.get_ref()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                    .collect()
            })
            .unwrap_or_default();
        let password = self.secret_env(&r.auth_password_env);
        let deps = self.depends_on(&r.depends_on, &addr);
        let (Some(name), Some(address)) = (name, address) else {
            return;
        };
        self.insert(
            addr,
            Spec::LivekitOutboundTrunk(OutboundTrunkSpec {
                name,
                metadata: text(&r.metadata).unwrap_or_default(),
                address,
                transport,
                numbers,
                auth_username: text(&r.auth_username).unwrap_or_default(),
                auth_password: password,
                headers,
                destination_country: text(&r.destination_country)
                    .map(|c| c.to_ascii_uppercase())
                    .unwrap_or_default(),
                preserved: Default::default(),
            }),
            None,
            b.span,
            deps,
        );
    }

    fn dispatch_rule(&mut self, b: &Block<RawDispatchRule>) {
        let addr = Address::new(Kind::LivekitDispatchRule, &b.name);
        let r = &b.raw;
        let base = self.take_base(&addr);
        let church = base.as_ref().and_then(|x| x.church.clone());
        let base = base.and_then(|x| match x.spec {
            Spec::LivekitDispatchRule(s) => Some(s),
            _ => None,
        });
        let name = self.required(
            &r.name,
            base.as_ref().map(|s| s.name.clone()),
            &addr,
            b.span,
            "name",
        );
        let trunks = match &r.trunks {
            Some(list) => {
                self.spans.insert(&addr, "trunks", span_of(list));
                let mut out = Vec::new();
                for (i, t) in list.get_ref().iter().enumerate() {
                    self.spans.insert(&addr, format!("trunks.{i}"), span_of(t));
                    out.extend(
                        self.resolve(t, &[Kind::LivekitInboundTrunk], "trunks")
                            .map(Ref::Addr),
                    );
                }
                out
            }
            None => base.as_ref().map(|s| s.trunks.clone()).unwrap_or_default(),
        };
        let rule = self.rule_kind(r, base.as_ref().map(|s| &s.rule));
        let agents = match &r.agents {
            Some(list) => {
                self.spans.insert(&addr, "agents", span_of(list));
                let mut out = Vec::new();
                for (i, a) in list.get_ref().iter().enumerate() {
                    self.spans.insert(&addr, format!("agents.{i}"), span_of(a));
                    match &a.get_ref().name {
                        Some(n) => out.push(AgentDispatch {
                            agent_name: n.get_ref().clone(),
                            metadata: text(&a.get_ref().metadata).unwrap_or_default(),
                        }),
                        None => self.missing(&addr, span_of(a), "name"),
                    }
                }
                out
            }
            None => match &base {
                Some(s) => s.agents.clone(),
                None if self.defaults.line.agent.is_empty() => Vec::new(),
                None => {
                    if let Some(s) = self.defaults.agent_span {
                        self.spans.insert(&addr, "agents.0", s);
                    }
                    vec![AgentDispatch {
                        agent_name: self.defaults.line.agent.clone(),
                        metadata: String::new(),
                    }]
                }
            },
        };
        let deps = self.depends_on(&r.depends_on, &addr);
        let (Some(name), Some(rule)) = (name, rule) else {
            return;
        };
        let spec = DispatchRuleSpec {
            name,
            metadata: text(&r.metadata)
                .or_else(|| base.as_ref().map(|s| s.metadata.clone()))
                .unwrap_or_default(),
            trunks,
            rule,
            agents,
            hide_phone_number: flag(&r.hide_phone_number)
                .or_else(|| base.as_ref().map(|s| s.hide_phone_number))
                .unwrap_or(false),
            krisp_enabled: false,
            preserved: Default::default(),
        };
        self.insert(addr, Spec::LivekitDispatchRule(spec), church, b.span, deps);
    }

    fn rule_kind(
        &mut self,
        r: &RawDispatchRule,
        base: Option<&DispatchKind>,
    ) -> Option<DispatchKind> {
        let (base_kind, base_prefix, base_pin) = match base {
            Some(DispatchKind::Individual { room_prefix, pin }) => {
                ("individual", Some(room_prefix.clone()), pin.clone())
            }
            Some(DispatchKind::Callee {
                room_prefix, pin, ..
            }) => ("callee", Some(room_prefix.clone()), pin.clone()),
            Some(DispatchKind::Direct { pin, .. }) => ("direct", None, pin.clone()),
            None => ("individual", None, String::new()),
        };
        let kind = text(&r.rule_type).unwrap_or_else(|| base_kind.to_string());
        let pin = text(&r.pin).unwrap_or(base_pin);
        let prefix = text(&r.room_prefix)
            .or(base_prefix)
            .unwrap_or_else(|| self.defaults.line.room_prefix.clone());
        match kind.as_str() {
            "individual" => Some(DispatchKind::Individual {
                room_prefix: prefix,
                pin,
            }),
            "callee" => Some(DispatchKind::Callee {
                room_prefix: prefix,
                pin,
                randomize: flag(&r.randomize).unwrap_or(false),
            }),
            "direct" => match (text(&r.room_name), base) {
                (Some(room_name), _) => Some(DispatchKind::Direct { room_name, pin }),
                (None, Some(DispatchKind::Direct { room_name, .. })) => {
                    Some(DispatchKind::Direct {
                        room_name: room_name.clone(),
                        pin,
                    })
                }
                (None, _) => {
                    let span = r.rule_type.as_ref().map_or(SourceSpan::default(), span_of);
                    self.push(
                        Problem::error(ProblemKind::MissingField, span, "needs room_name", "a direct dispatch rule needs `room_name`")
                            .with_help("add room_name = \"…\", or use type = \"individual\" (one room per call)"),
                    );
                    None
                }
            },
            other => {
                let span = r.rule_type.as_ref().map_or(SourceSpan::default(), span_of);
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span,
                        "unknown rule type",
                        format!("dispatch rule type `{other}` is not known"),
                    )
                    .with_help("type = \"individual\" (default), \"direct\" or \"callee\""),
                );
                None
            }
        }
    }

    fn attach_shared_trunk_numbers(&mut self) {
        for (trunk, number, span) in std::mem::take(&mut self.shared) {
            let Some(res) = self.resources.get_mut(&trunk) else {
                continue;
            };
            if let Spec::LivekitInboundTrunk(spec) = &mut res.spec {
                let entry = NumberRef::Of(number);
                if !spec.numbers.contains(&entry) {
                    self.spans
                        .insert(&trunk, format!("numbers.{}", spec.numbers.len()), span);
                    spec.numbers.push(entry);
                }
            }
        }
    }

    fn twilio_trunk_numbers(&mut self) {
        let raw = self.raw;
        for b in &raw.twilio_numbers {
            let Some(trunk) = &b.raw.trunk else { continue };
            let number_addr = Address::new(Kind::TwilioNumber, &b.name);
            self.spans.insert(&number_addr, "trunk", span_of(trunk));
            let Some(trunk_addr) = self.resolve(trunk, &[Kind::TwilioTrunk], "trunk") else {
                continue;
            };
            if !self.resources.contains_key(&number_addr) {
                continue;
            }
            let addr = Address::new(Kind::TwilioTrunkNumber, &b.name);
            self.insert(
                addr,
                Spec::TwilioTrunkNumber(TwilioTrunkNumberSpec {
                    trunk: Ref::Addr(trunk_addr),
                    number: Ref::Addr(number_addr),
                }),
                None,
                span_of(trunk),
                Vec::new(),
            );
        }
    }

    /// A trunk naming a number resource whose number is fixed holds that literal number, as
    /// the provider reports it; only `"auto"` numbers stay `(number of …)`.
    fn normalize_number_refs(&mut self) {
        let fixed: BTreeMap<Address, E164> = self
            .resources
            .values()
            .filter_map(|r| match &r.spec {
                Spec::TelnyxNumber(s) => s.number.fixed().map(|n| (r.addr.clone(), n.clone())),
                Spec::TwilioNumber(s) => Some((r.addr.clone(), s.number.clone())),
                _ => None,
            })
            .collect();
        for res in self.resources.values_mut() {
            for n in res.spec.number_refs_mut() {
                if let NumberRef::Of(a) = n {
                    if let Some(number) = fixed.get(a) {
                        *n = NumberRef::Number(number.clone());
                    }
                }
            }
        }
    }

    fn duplicate_numbers(&mut self) {
        let mut seen: BTreeMap<E164, (Address, SourceSpan)> = BTreeMap::new();
        let mut found = Vec::new();
        for res in self.resources.values() {
            let number = match &res.spec {
                Spec::TelnyxNumber(s) => s.number.fixed(),
                Spec::TwilioNumber(s) => Some(&s.number),
                _ => None,
            };
            let Some(number) = number else { continue };
            let span = self.spans.get(&res.addr, "number").unwrap_or(res.span);
            match seen.get(number) {
                Some((first, first_span)) => found.push(
                    Problem::error(
                        ProblemKind::DuplicateNumber,
                        span,
                        format!("{number} again"),
                        format!("{number} is declared twice: by {first} and by {}", res.addr),
                    )
                    .with_label(*first_span, "first declared here")
                    .with_help("a number is owned once; share a trunk instead (trunk = \"…\" on the church) or remove one"),
                ),
                None => {
                    seen.insert(number.clone(), (res.addr.clone(), span));
                }
            }
        }
        self.problems.extend(found);
    }
}

/// The lines a church declares: itself, or each `[church.<key>.lines.<line>]`.
fn church_lines(block: &Block<RawChurch>) -> Vec<LineDecl> {
    let church = block.raw.as_line();
    match &block.raw.lines {
        None => vec![LineDecl {
            name: convention::line_name(&block.name, None),
            label: None,
            raw: church,
            span: block.span,
        }],
        Some(lines) => lines
            .iter()
            .map(|(key, line)| LineDecl {
                name: convention::line_name(&block.name, Some(key.get_ref())),
                label: Some(key.get_ref().clone()),
                raw: merge_line(&church, line.get_ref()),
                span: span_of(key),
            })
            .collect(),
    }
}

fn merge_line(church: &RawLine, line: &RawLine) -> RawLine {
    RawLine {
        number: line.number.clone(),
        area_code: line.area_code.clone().or_else(|| church.area_code.clone()),
        country: line.country.clone().or_else(|| church.country.clone()),
        agent: line.agent.clone().or_else(|| church.agent.clone()),
        room_prefix: line
            .room_prefix
            .clone()
            .or_else(|| church.room_prefix.clone()),
        trunk: line.trunk.clone().or_else(|| church.trunk.clone()),
        krisp: line.krisp.clone().or_else(|| church.krisp.clone()),
        depends_on: line
            .depends_on
            .clone()
            .or_else(|| church.depends_on.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{parse, ConfigError};

    const HEAD: &str = r#"
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

    fn desired(body: &str) -> Desired {
        match parse(Path::new("t.toml"), &format!("{HEAD}{body}")) {
            Ok(l) => l.desired,
            Err(e) => panic!("{:?}", miette::Report::new(e)),
        }
    }

    fn problems(body: &str) -> Vec<ProblemKind> {
        match parse(Path::new("t.toml"), &format!("{HEAD}{body}")) {
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
            })
        );
        assert_eq!(
            spec(&d, "livekit_inbound_trunk.grace").spec,
            Spec::LivekitInboundTrunk(InboundTrunkSpec {
                name: "Grace".into(),
                metadata: String::new(),
                numbers: vec![NumberRef::Number(number)],
                allowed_addresses: vec![],
                allowed_numbers: vec![],
                auth_username: String::new(),
                auth_password: None,
                krisp_enabled: true,
                preserved: Default::default(),
            })
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
        let text = format!("{HEAD}[protected]\n\"ST_Xa3Bp9aixRFP\" = \"locked\"\n");
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
