//! lines.toml as serde sees it. Each block is checked and deserialized on its own, so one run
//! reports every unknown key (with a "did you mean") and every ill-typed value, not just the
//! first one serde trips over. Field types carry spans so later stages can point at the value.

use std::collections::BTreeMap;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::{Problem, ProblemKind};
use crate::model::SourceSpan;

pub type Opt<T> = Option<Spanned<T>>;
pub type List = Spanned<Vec<Spanned<String>>>;

/// One `[section.kind.<name>]` block.
#[derive(Debug, Clone)]
pub struct Block<R> {
    pub name: String,
    /// Where the block's name is written in its header, the anchor for block-level diagnostics.
    pub span: SourceSpan,
    pub raw: R,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub twilio: Opt<String>,
    pub max_delete_share: Opt<f64>,
    /// `"pr"` or `"apply"`: what the provisioning workflow does (issue 23).
    pub auto_add: Opt<String>,
    /// A church line without an `emergency_address` is an error, not a warning (issue 21).
    pub require_emergency_address: Opt<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub agent: Opt<String>,
    pub room_prefix: Opt<String>,
    pub krisp: Opt<bool>,
    pub country: Opt<String>,
    pub friendly_endings: Option<List>,
    pub connection: Opt<String>,
    /// Where a kept number (its line removed, never released) is parked: a connection or TeXML
    /// application, so its callers reach something declared (issue 13).
    pub park: Opt<String>,
    /// Countries every outbound voice profile must whitelist (default `["US", "CA"]`).
    pub outbound_countries: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLivekit {
    pub project_id: Opt<String>,
    pub sip_host: Opt<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFqdnConnection {
    pub name: Opt<String>,
    pub active: Opt<bool>,
    pub transport: Opt<String>,
    pub user_name: Opt<String>,
    pub password_env: Opt<String>,
    pub ani_number_format: Opt<String>,
    pub dnis_number_format: Opt<String>,
    pub outbound_voice_profile: Opt<String>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFqdn {
    pub connection: Opt<String>,
    pub fqdn: Opt<String>,
    pub port: Opt<u16>,
    pub dns_record_type: Opt<String>,
    pub default_primary: Opt<bool>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentialConnection {
    pub name: Opt<String>,
    pub active: Opt<bool>,
    pub user_name: Opt<String>,
    pub password_env: Opt<String>,
    pub outbound_voice_profile: Opt<String>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutboundVoiceProfile {
    pub name: Opt<String>,
    pub enabled: Opt<bool>,
    pub whitelisted_destinations: Option<List>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTexmlApplication {
    pub name: Opt<String>,
    pub voice_url: Opt<String>,
    pub voice_method: Opt<String>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelnyxNumber {
    pub number: Opt<String>,
    pub area_code: Opt<String>,
    pub country: Opt<String>,
    pub endings: Option<List>,
    pub connection: Opt<String>,
    pub tags: Option<List>,
    pub emergency_address: Opt<String>,
    pub depends_on: Option<List>,
}

/// `[telnyx.emergency_address.<name>]`: an E911 address (Telnyx's `addresses` resource).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmergencyAddress {
    pub business_name: Opt<String>,
    pub first_name: Opt<String>,
    pub last_name: Opt<String>,
    pub street_address: Opt<String>,
    pub extended_address: Opt<String>,
    pub locality: Opt<String>,
    pub administrative_area: Opt<String>,
    pub postal_code: Opt<String>,
    pub country_code: Opt<String>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInboundTrunk {
    pub name: Opt<String>,
    pub metadata: Opt<String>,
    pub numbers: Option<List>,
    pub allowed_addresses: Option<List>,
    pub allowed_numbers: Option<List>,
    pub auth_username: Opt<String>,
    pub auth_password_env: Opt<String>,
    pub krisp: Opt<bool>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutboundTrunk {
    pub name: Opt<String>,
    pub metadata: Opt<String>,
    pub address: Opt<String>,
    pub transport: Opt<String>,
    pub numbers: Option<List>,
    pub auth_username: Opt<String>,
    pub auth_password_env: Opt<String>,
    pub headers: Opt<BTreeMap<String, Spanned<String>>>,
    pub destination_country: Opt<String>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub name: Opt<String>,
    pub metadata: Opt<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDispatchRule {
    pub name: Opt<String>,
    pub metadata: Opt<String>,
    pub trunks: Option<List>,
    #[serde(rename = "type")]
    pub rule_type: Opt<String>,
    pub room_prefix: Opt<String>,
    pub room_name: Opt<String>,
    pub pin: Opt<String>,
    pub randomize: Opt<bool>,
    pub agents: Opt<Vec<Spanned<RawAgent>>>,
    pub hide_phone_number: Opt<bool>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwilioNumber {
    pub number: Opt<String>,
    pub name: Opt<String>,
    pub trunk: Opt<String>,
    pub depends_on: Option<List>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOriginationUrl {
    pub name: Opt<String>,
    pub sip_url: Opt<String>,
    pub priority: Opt<u16>,
    pub weight: Opt<u16>,
    pub enabled: Opt<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwilioTrunk {
    pub name: Opt<String>,
    pub domain_name: Opt<String>,
    pub origination_urls: Opt<Vec<Spanned<RawOriginationUrl>>>,
    pub depends_on: Option<List>,
}

/// Declares a struct holding the per-line keys, written once for a church and for each of its
/// lines: `{ before } { after }` are its other fields, kept in that order around the line keys
/// (the order of "expected one of" lists).
macro_rules! with_line_keys {
    ($(#[$m:meta])* pub struct $name:ident { $($before:tt)* } { $($after:tt)* }) => {
        $(#[$m])*
        pub struct $name {
            $($before)*
            pub number: Opt<String>,
            pub area_code: Opt<String>,
            pub country: Opt<String>,
            pub agent: Opt<String>,
            pub room_prefix: Opt<String>,
            pub trunk: Opt<String>,
            pub krisp: Opt<bool>,
            /// The `[telnyx.emergency_address.<name>]` 911 sends help to (issue 21).
            pub emergency_address: Opt<String>,
            pub depends_on: Option<List>,
            $($after)*
        }
    };
}

with_line_keys! {
    /// The per-line settings a church (or one of its lines) may give.
    #[derive(Debug, Default, Clone, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawLine {} {}
}

with_line_keys! {
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RawChurch {
        pub id: Opt<String>,
        pub name: Opt<String>,
    } {
        pub lines: Option<BTreeMap<Spanned<String>, Spanned<RawLine>>>,
    }
}

impl RawChurch {
    /// The church-level settings, as the line every `[church.<key>.lines.<line>]` starts from.
    pub fn as_line(&self) -> RawLine {
        RawLine {
            number: self.number.clone(),
            area_code: self.area_code.clone(),
            country: self.country.clone(),
            agent: self.agent.clone(),
            room_prefix: self.room_prefix.clone(),
            trunk: self.trunk.clone(),
            krisp: self.krisp.clone(),
            emergency_address: self.emergency_address.clone(),
            depends_on: self.depends_on.clone(),
        }
    }
}

/// A block that may name what it waits for (`depends_on = [...]`).
pub trait DependsOn {
    fn depends_on(&self) -> &Option<List>;
}

macro_rules! depends_on {
    ($($raw:ty),*) => {
        $(impl DependsOn for $raw {
            fn depends_on(&self) -> &Option<List> {
                &self.depends_on
            }
        })*
    };
}

depends_on! {
    RawFqdnConnection, RawFqdn, RawCredentialConnection, RawOutboundVoiceProfile,
    RawTexmlApplication, RawTelnyxNumber, RawInboundTrunk, RawOutboundTrunk, RawDispatchRule,
    RawTwilioNumber, RawTwilioTrunk, RawEmergencyAddress
}

/// Every block of lines.toml, grouped by section.
#[derive(Debug, Default)]
pub struct RawFile {
    pub version: Opt<i64>,
    pub policy: RawPolicy,
    pub defaults: RawDefaults,
    pub livekit: RawLivekit,
    pub protected: Vec<(Spanned<String>, Spanned<String>)>,
    /// `[ignore]` and `[kept]`: key -> reason (see `config::ignore`).
    pub ignore: Vec<(Spanned<String>, Spanned<String>)>,
    pub kept: Vec<(Spanned<String>, Spanned<String>)>,
    pub fqdn_connections: Vec<Block<RawFqdnConnection>>,
    pub fqdns: Vec<Block<RawFqdn>>,
    pub credential_connections: Vec<Block<RawCredentialConnection>>,
    pub outbound_voice_profiles: Vec<Block<RawOutboundVoiceProfile>>,
    pub texml_applications: Vec<Block<RawTexmlApplication>>,
    pub telnyx_numbers: Vec<Block<RawTelnyxNumber>>,
    pub emergency_addresses: Vec<Block<RawEmergencyAddress>>,
    pub inbound_trunks: Vec<Block<RawInboundTrunk>>,
    pub outbound_trunks: Vec<Block<RawOutboundTrunk>>,
    pub dispatch_rules: Vec<Block<RawDispatchRule>>,
    pub twilio_numbers: Vec<Block<RawTwilioNumber>>,
    pub twilio_trunks: Vec<Block<RawTwilioTrunk>>,
    pub churches: Vec<Block<RawChurch>>,
}

const TOP_KEYS: &[&str] = &[
    "version",
    "policy",
    "defaults",
    "livekit",
    "protected",
    "ignore",
    "kept",
    "telnyx",
    "twilio",
    "church",
];
const TELNYX_KEYS: &[&str] = &[
    "fqdn_connection",
    "fqdn",
    "credential_connection",
    "outbound_voice_profile",
    "texml_application",
    "number",
    "emergency_address",
];
const LIVEKIT_BLOCK_KEYS: &[&str] = &["inbound_trunk", "outbound_trunk", "dispatch_rule"];
const TWILIO_KEYS: &[&str] = &["number", "trunk"];

/// Reads lines.toml into blocks, recording every syntax, key and type problem. Returns `None`
/// only when the text is not TOML at all.
pub fn parse(text: &str, problems: &mut Vec<Problem>) -> Option<RawFile> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        problems.extend(errors.iter().map(|e| syntax_problem(text, e)));
        return None;
    }
    let mut walker = Walker { problems };
    let mut root = root.into_inner();
    walker.check_keys(&root, TOP_KEYS, &[]);
    let mut file = RawFile::default();
    let mut take = |key: &str| root.remove(key);
    if let Some(v) = take("version") {
        file.version = walker.value(v);
    }
    if let Some(v) = take("policy") {
        file.policy = walker.block(v).unwrap_or_default();
    }
    if let Some(v) = take("defaults") {
        file.defaults = walker.block(v).unwrap_or_default();
    }
    if let Some(v) = take("protected") {
        file.protected = walker
            .value::<BTreeMap<Spanned<String>, Spanned<String>>>(v)
            .map(|m| m.into_iter().collect())
            .unwrap_or_default();
    }
    for (key, list) in [("ignore", &mut file.ignore), ("kept", &mut file.kept)] {
        if let Some(v) = take(key) {
            *list = walker
                .value::<BTreeMap<Spanned<String>, Spanned<String>>>(v)
                .map(|m| m.into_iter().collect())
                .unwrap_or_default();
        }
    }
    if let Some(v) = take("livekit") {
        walker.livekit(v, &mut file);
    }
    if let Some(v) = take("telnyx") {
        walker.telnyx(v, &mut file);
    }
    if let Some(v) = take("twilio") {
        walker.twilio(v, &mut file);
    }
    if let Some(v) = take("church") {
        file.churches = walker.blocks(v);
    }
    Some(file)
}

fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let span = e.span().unwrap_or(0..0);
    let span = widen_empty(text, span);
    Problem::error(
        ProblemKind::Syntax,
        span.into(),
        "here",
        format!("TOML syntax error: {}", e.message().trim()),
    )
    .with_help("lines.toml must be valid TOML (https://toml.io); fix this first, then run cwa validate again")
}

/// An empty span still deserves a visible caret: widen it to the next character.
fn widen_empty(text: &str, span: std::ops::Range<usize>) -> std::ops::Range<usize> {
    match text.get(span.start..).and_then(|rest| rest.chars().next()) {
        Some(c) if span.is_empty() => span.start..span.start + c.len_utf8(),
        _ => span,
    }
}

/// A struct whose nested tables (lines of a church, agents of a rule) are checked too.
pub trait Schema: DeserializeOwned {
    fn clean_nested(_table: &mut DeTable<'_>, _walker: &mut Walker<'_>) {}
}

macro_rules! flat_schema {
    ($($t:ty),*) => { $(impl Schema for $t {})* };
}
flat_schema!(
    RawPolicy,
    RawDefaults,
    RawLivekit,
    RawFqdnConnection,
    RawFqdn,
    RawCredentialConnection,
    RawOutboundVoiceProfile,
    RawTexmlApplication,
    RawTelnyxNumber,
    RawEmergencyAddress,
    RawInboundTrunk,
    RawOutboundTrunk,
    RawAgent,
    RawTwilioNumber,
    RawOriginationUrl,
    RawLine
);

impl Schema for RawChurch {
    fn clean_nested(table: &mut DeTable<'_>, walker: &mut Walker<'_>) {
        if let Some(lines) = table.get_mut("lines") {
            if let DeValue::Table(lines) = lines.get_mut() {
                for (_, line) in lines.iter_mut() {
                    walker.clean::<RawLine>(line);
                }
            }
        }
    }
}

impl Schema for RawDispatchRule {
    fn clean_nested(table: &mut DeTable<'_>, walker: &mut Walker<'_>) {
        walker.clean_array_of::<RawAgent>(table, "agents");
    }
}

impl Schema for RawTwilioTrunk {
    fn clean_nested(table: &mut DeTable<'_>, walker: &mut Walker<'_>) {
        walker.clean_array_of::<RawOriginationUrl>(table, "origination_urls");
    }
}

/// Walks the parsed document, reporting unknown keys and type errors as it goes.
pub struct Walker<'p> {
    problems: &'p mut Vec<Problem>,
}

impl Walker<'_> {
    fn livekit(&mut self, value: Spanned<DeValue<'_>>, file: &mut RawFile) {
        let span = value.span();
        let Some(mut table) = self.expect_table(value, "livekit") else {
            return;
        };
        let settings_fields = fields_of::<RawLivekit>();
        self.check_keys(&table, settings_fields, LIVEKIT_BLOCK_KEYS);
        if let Some(v) = table.remove("inbound_trunk") {
            file.inbound_trunks = self.blocks(v);
        }
        if let Some(v) = table.remove("outbound_trunk") {
            file.outbound_trunks = self.blocks(v);
        }
        if let Some(v) = table.remove("dispatch_rule") {
            file.dispatch_rules = self.blocks(v);
        }
        drop_keys_except(&mut table, settings_fields);
        file.livekit = self
            .value(Spanned::new(span, DeValue::Table(table)))
            .unwrap_or_default();
    }

    fn telnyx(&mut self, value: Spanned<DeValue<'_>>, file: &mut RawFile) {
        let Some(mut table) = self.expect_table(value, "telnyx") else {
            return;
        };
        self.check_keys(&table, TELNYX_KEYS, &[]);
        if let Some(v) = table.remove("fqdn_connection") {
            file.fqdn_connections = self.blocks(v);
        }
        if let Some(v) = table.remove("fqdn") {
            file.fqdns = self.blocks(v);
        }
        if let Some(v) = table.remove("credential_connection") {
            file.credential_connections = self.blocks(v);
        }
        if let Some(v) = table.remove("outbound_voice_profile") {
            file.outbound_voice_profiles = self.blocks(v);
        }
        if let Some(v) = table.remove("texml_application") {
            file.texml_applications = self.blocks(v);
        }
        if let Some(v) = table.remove("number") {
            file.telnyx_numbers = self.blocks(v);
        }
        if let Some(v) = table.remove("emergency_address") {
            file.emergency_addresses = self.blocks(v);
        }
    }

    fn twilio(&mut self, value: Spanned<DeValue<'_>>, file: &mut RawFile) {
        let Some(mut table) = self.expect_table(value, "twilio") else {
            return;
        };
        self.check_keys(&table, TWILIO_KEYS, &[]);
        if let Some(v) = table.remove("number") {
            file.twilio_numbers = self.blocks(v);
        }
        if let Some(v) = table.remove("trunk") {
            file.twilio_trunks = self.blocks(v);
        }
    }

    /// Every entry of a `[section.kind]` table is one named block.
    fn blocks<R: Schema>(&mut self, value: Spanned<DeValue<'_>>) -> Vec<Block<R>> {
        let Some(table) = self.expect_table(value, "a section of blocks") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, value) in table {
            let span: SourceSpan = name.span().into();
            if let Some(raw) = self.block::<R>(value) {
                out.push(Block {
                    name: name.into_inner().into_owned(),
                    span,
                    raw,
                });
            }
        }
        out
    }

    fn block<R: Schema>(&mut self, mut value: Spanned<DeValue<'_>>) -> Option<R> {
        if !matches!(value.get_ref(), DeValue::Table(_)) {
            self.problems.push(not_a_table(value.span().into()));
            return None;
        }
        self.clean::<R>(&mut value);
        self.value(value)
    }

    /// Reports the table's unknown keys and drops them, so the typed pass sees only known ones.
    fn clean<R: Schema>(&mut self, value: &mut Spanned<DeValue<'_>>) {
        if let DeValue::Table(table) = value.get_mut() {
            let fields = fields_of::<R>();
            self.check_keys(table, fields, &[]);
            drop_keys_except(table, fields);
            R::clean_nested(table, self);
        }
    }

    fn clean_array_of<R: Schema>(&mut self, table: &mut DeTable<'_>, key: &str) {
        if let Some(items) = table.get_mut(key) {
            if let DeValue::Array(items) = items.get_mut() {
                for item in items.iter_mut() {
                    self.clean::<R>(item);
                }
            }
        }
    }

    fn value<T: DeserializeOwned>(&mut self, value: Spanned<DeValue<'_>>) -> Option<T> {
        let whole = value.span();
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(v) => Some(v),
            Err(e) => {
                let span = e.span().unwrap_or(whole);
                let kind = if e.message().starts_with("missing field") {
                    ProblemKind::MissingField
                } else {
                    ProblemKind::InvalidValue
                };
                self.problems.push(
                    Problem::error(kind, span.into(), "here", e.message().trim().to_string())
                        .with_help("see docs/lines-toml.md for the type of every key"),
                );
                None
            }
        }
    }

    fn expect_table<'i>(&mut self, value: Spanned<DeValue<'i>>, what: &str) -> Option<DeTable<'i>> {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.problems
                    .push(not_a_table(span.into()).with_help(format!("`{what}` must be a table")));
                None
            }
        }
    }

    /// One problem per key that is not in `fields` or `sections`.
    fn check_keys(&mut self, table: &DeTable<'_>, fields: &[&str], sections: &[&str]) {
        for (key, value) in table.iter() {
            let name: &str = key.get_ref();
            if fields.contains(&name) || sections.contains(&name) {
                continue;
            }
            let known: Vec<&str> = fields.iter().chain(sections).copied().collect();
            let mut problem = unknown_key(name, key.span().into(), &known);
            if problem.kind == ProblemKind::InlineSecret {
                problem = problem.masking(value.span().into());
            }
            self.problems.push(problem);
        }
    }
}

fn drop_keys_except(table: &mut DeTable<'_>, known: &[&str]) {
    let unknown: Vec<String> = table
        .iter()
        .map(|(k, _)| k.get_ref().to_string())
        .filter(|k| !known.contains(&k.as_str()))
        .collect();
    for k in unknown {
        table.remove(k.as_str());
    }
}

fn not_a_table(span: SourceSpan) -> Problem {
    Problem::error(
        ProblemKind::InvalidValue,
        span,
        "expected a table",
        "this must be a table of keys",
    )
}

/// An unknown key, with the closest known key as a suggestion. A secret written inline
/// (`password = "…"` where `password_env` is known) gets its own diagnostic.
fn unknown_key(name: &str, span: SourceSpan, known: &[&str]) -> Problem {
    let env_form = format!("{name}_env");
    if known.contains(&env_form.as_str()) {
        return Problem::error(
            ProblemKind::InlineSecret,
            span,
            "secret value written in lines.toml",
            format!("`{name}` holds a secret inline; lines.toml only names environment variables"),
        )
        .with_help(format!(
            "write `{env_form} = \"NAME_OF_VARIABLE\"` and set that variable where cwa runs; remove the value from the file and from git history, and rotate it"
        ));
    }
    if let Ok(kind) = name.parse::<crate::model::Kind>() {
        let (provider, rest) = kind.as_str().split_once('_').unwrap_or(("", kind.as_str()));
        return Problem::error(
            ProblemKind::UnknownKey,
            span,
            "unknown key",
            format!("unknown key `{name}`"),
        )
        .with_help(format!(
            "resources are declared under their provider: [{provider}.{rest}.<name>]"
        ));
    }
    let help = match suggest(name, known) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("expected one of: {}", known.join(", ")),
    };
    Problem::error(
        ProblemKind::UnknownKey,
        span,
        "unknown key",
        format!("unknown key `{name}`"),
    )
    .with_help(help)
}

/// The known word closest to `name`, if it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// The field names serde's derive declares for `T`, read by asking `T` to deserialize from a
/// probe that only records them. Keeps the known-key lists in one place: the struct itself.
pub fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields.unwrap_or(&[])
}

struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("field probe"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("field probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_from_the_derive() {
        assert!(fields_of::<RawFqdn>().contains(&"default_primary"));
        assert!(fields_of::<RawDispatchRule>().contains(&"type"));
    }

    #[test]
    fn every_unknown_key_is_reported() {
        let mut problems = Vec::new();
        let text = "[church.a]\nid = \"x\"\npasword = 1\nnumbr = \"+1\"\n";
        parse(text, &mut problems).unwrap();
        let keys: Vec<_> = problems.iter().map(|p| p.message.clone()).collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(problems
            .iter()
            .any(|p| p.help.as_deref() == Some("did you mean `number`?")));
    }

    #[test]
    fn inline_secret_is_its_own_problem() {
        let mut problems = Vec::new();
        let text = "[telnyx.fqdn_connection.x]\npassword = \"hunter22\"\n";
        parse(text, &mut problems).unwrap();
        assert_eq!(problems[0].kind, ProblemKind::InlineSecret);
        assert!(!problems[0].message.contains("hunter22"));
    }
}
