//! The typed vocabulary every stage of cwa shares: resource kinds and addresses, phone numbers,
//! references between resources, secrets, and the per-kind specs that `lines.toml`, `state/`
//! and the providers all speak.
//!
//! A spec is the comparable part of a resource. The config produces specs whose references are
//! [`Ref::Addr`]; providers produce specs whose references are raw live ids ([`Ref::Id`]).
//! The planner maps ids back to addresses before it diffs, so a diff is always in address space.

pub mod canonical;
mod order;

pub use order::CycleError;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The three live services cwa manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    Telnyx,
    Livekit,
    Twilio,
}

impl ProviderName {
    pub const ALL: [ProviderName; 3] = [Self::Telnyx, Self::Livekit, Self::Twilio];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Telnyx => "telnyx",
            Self::Livekit => "livekit",
            Self::Twilio => "twilio",
        }
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every kind of live object cwa knows. The string form is the address prefix in lines.toml,
/// state and plans (`telnyx_number.medhanialem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    TelnyxNumber,
    TelnyxFqdnConnection,
    TelnyxFqdn,
    TelnyxCredentialConnection,
    TelnyxOutboundVoiceProfile,
    TelnyxTexmlApplication,
    LivekitInboundTrunk,
    LivekitOutboundTrunk,
    LivekitDispatchRule,
    TwilioNumber,
    TwilioTrunk,
    TwilioTrunkNumber,
    TelnyxEmergencyAddress,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Self::TelnyxNumber,
        Self::TelnyxFqdnConnection,
        Self::TelnyxFqdn,
        Self::TelnyxCredentialConnection,
        Self::TelnyxOutboundVoiceProfile,
        Self::TelnyxTexmlApplication,
        Self::LivekitInboundTrunk,
        Self::LivekitOutboundTrunk,
        Self::LivekitDispatchRule,
        Self::TwilioNumber,
        Self::TwilioTrunk,
        Self::TwilioTrunkNumber,
        Self::TelnyxEmergencyAddress,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TelnyxNumber => "telnyx_number",
            Self::TelnyxFqdnConnection => "telnyx_fqdn_connection",
            Self::TelnyxFqdn => "telnyx_fqdn",
            Self::TelnyxCredentialConnection => "telnyx_credential_connection",
            Self::TelnyxOutboundVoiceProfile => "telnyx_outbound_voice_profile",
            Self::TelnyxTexmlApplication => "telnyx_texml_application",
            Self::LivekitInboundTrunk => "livekit_inbound_trunk",
            Self::LivekitOutboundTrunk => "livekit_outbound_trunk",
            Self::LivekitDispatchRule => "livekit_dispatch_rule",
            Self::TwilioNumber => "twilio_number",
            Self::TwilioTrunk => "twilio_trunk",
            Self::TwilioTrunkNumber => "twilio_trunk_number",
            Self::TelnyxEmergencyAddress => "telnyx_emergency_address",
        }
    }

    pub fn provider(self) -> ProviderName {
        match self {
            Self::TelnyxNumber
            | Self::TelnyxFqdnConnection
            | Self::TelnyxFqdn
            | Self::TelnyxCredentialConnection
            | Self::TelnyxOutboundVoiceProfile
            | Self::TelnyxTexmlApplication
            | Self::TelnyxEmergencyAddress => ProviderName::Telnyx,
            Self::LivekitInboundTrunk | Self::LivekitOutboundTrunk | Self::LivekitDispatchRule => {
                ProviderName::Livekit
            }
            Self::TwilioNumber | Self::TwilioTrunk | Self::TwilioTrunkNumber => {
                ProviderName::Twilio
            }
        }
    }

    /// Rough monthly price in US cents, from the runbooks' cost reference, used for the plan's
    /// cost delta. Only numbers carry a fixed monthly price.
    pub fn monthly_cost_cents(self, number: Option<&E164>) -> i64 {
        match self {
            Self::TelnyxNumber => 100,
            Self::TwilioNumber if number.is_some_and(E164::is_toll_free) => 215,
            Self::TwilioNumber => 115,
            _ => 0,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown resource kind `{s}`"))
    }
}

/// `kind.name`: the stable identity of a declared or owned resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    pub kind: Kind,
    pub name: String,
}

impl Address {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.name)
    }
}

impl FromStr for Address {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, name) = s
            .split_once('.')
            .ok_or_else(|| format!("`{s}` is not an address of the form kind.name"))?;
        if name.is_empty() {
            return Err(format!("`{s}` has an empty name"));
        }
        Ok(Self::new(kind.parse()?, name))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A phone number in E.164 with its leading `+`, the only form cwa stores or compares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

/// Why a string is not an E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum E164Error {
    #[error("`{0}` does not start with `+`")]
    MissingPlus(String),
    #[error("`{0}` has characters other than digits after the `+`")]
    NotDigits(String),
    #[error("`{0}` has {1} digits; E.164 allows 8 to 15")]
    Length(String, usize),
    #[error("`{0}`: a North American number has exactly 10 digits after +1")]
    Nanp(String),
}

impl E164 {
    /// Strict parse, as lines.toml requires: `+` then 8 to 15 digits, NANP numbers exactly 11.
    pub fn parse(s: &str) -> Result<Self, E164Error> {
        let digits = s
            .strip_prefix('+')
            .ok_or_else(|| E164Error::MissingPlus(s.to_string()))?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E164Error::NotDigits(s.to_string()));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(E164Error::Length(s.to_string(), digits.len()));
        }
        if digits.starts_with('1') && digits.len() != 11 {
            return Err(E164Error::Nanp(s.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    /// Lenient parse for what providers return (`14144007103`, `+1 (414) 400-7103`):
    /// strips formatting and adds the `+`.
    pub fn normalize(s: &str) -> Result<Self, E164Error> {
        let digits: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '+'))
            .collect();
        Self::parse(&format!("+{digits}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits only, as Telnyx's `filter[phone_number]` wants them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// NANP numbers whose exchange is 555 are reserved for fiction and never ring
    /// (`^\+1\d{3}555\d{4}$`, from the runbooks).
    pub fn is_fiction(&self) -> bool {
        let d = self.digits();
        d.len() == 11 && d.starts_with('1') && &d[4..7] == "555"
    }

    /// NANP toll-free area codes.
    pub fn is_toll_free(&self) -> bool {
        let d = self.digits();
        d.len() == 11
            && d.starts_with('1')
            && matches!(
                &d[1..4],
                "800" | "833" | "844" | "855" | "866" | "877" | "888"
            )
    }

    /// The NANP area code, when there is one.
    pub fn area_code(&self) -> Option<&str> {
        let d = self.digits();
        (d.len() == 11 && d.starts_with('1')).then(|| &d[1..4])
    }
}

impl TryFrom<String> for E164 {
    type Error = E164Error;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<E164> for String {
    fn from(n: E164) -> String {
        n.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pointer from one resource to another. Config writes addresses; providers write live ids;
/// the planner translates ids to addresses before diffing and the executor the other way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ref {
    Addr(Address),
    Id(String),
}

impl Ref {
    pub fn addr(&self) -> Option<&Address> {
        match self {
            Self::Addr(a) => Some(a),
            Self::Id(_) => None,
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Id(id) => Some(id),
            Self::Addr(_) => None,
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(a) => write!(f, "{a}"),
            Self::Id(id) => f.write_str(id),
        }
    }
}

impl Serialize for Ref {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ref {
    /// A string that parses as an address of a known kind is an address; anything else is an id.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.parse::<Address>() {
            Ok(a) => Self::Addr(a),
            Err(_) => Self::Id(s),
        })
    }
}

/// A number held by a trunk: a literal number, or the number a `telnyx_number` resource will
/// have once it is bought (for `"auto"` numbers).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumberRef {
    Number(E164),
    Of(Address),
}

impl fmt::Display for NumberRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Of(a) => write!(f, "(number of {a})"),
        }
    }
}

/// A secret value held only in memory, resolved from the environment just before a write.
/// Its Debug and Display never show the value, and it serializes as a fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain value, for the one place that must send it: the provider's request body.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

/// A fingerprint of a secret, so plans can tell that a secret changed without holding it: a
/// keyed MAC under this process's fingerprint key (`state::fingerprint`), which no one without
/// the key can test a guess against. State stores it bound to the object's address.
pub fn fingerprint(value: &str) -> String {
    crate::state::fingerprint::key().of_value(value)
}

/// The unkeyed fingerprint states of format 1 hold (`sha256:` + 16 hex digits): guessable
/// offline, so apply replaces it; kept to recognize it and to prove it is gone.
pub fn fingerprint_v1(value: &str) -> String {
    let digest = Sha256::digest(format!("cwa-secret:{value}").as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..16])
}

/// A secret field: the environment variable named in lines.toml, the fingerprint stored in
/// state or read from a provider, or the resolved value (in memory only, never serialized as
/// itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    Fingerprint(String),
    Value(SecretValue),
}

impl SecretRef {
    /// The fingerprint, when it is known without reading the environment.
    pub fn known_fingerprint(&self) -> Option<String> {
        match self {
            Self::Env(_) => None,
            Self::Fingerprint(f) => Some(f.clone()),
            Self::Value(v) => Some(v.fingerprint()),
        }
    }

    /// Reads the environment variable of an `Env` secret into a `Value`. Returns the name of the
    /// missing variable when it is unset.
    pub fn resolve(&self) -> Result<SecretRef, String> {
        match self {
            Self::Env(name) => std::env::var(name)
                .map(|v| Self::Value(SecretValue::new(v)))
                .map_err(|_| name.clone()),
            other => Ok(other.clone()),
        }
    }

    pub fn value(&self) -> Option<&SecretValue> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// Where secret values come from: the process environment, plus values the embedded sandbox
/// supplies for its own fake secrets (so they never have to be exported).
#[derive(Clone, Default)]
pub struct SecretSource {
    overrides: BTreeMap<String, String>,
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.overrides.keys()).finish()
    }
}

impl SecretSource {
    pub fn with_overrides(overrides: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            overrides: overrides.into_iter().collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.overrides
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    }

    /// Resolves an `Env` secret to its value; the error is the missing variable's name.
    pub fn resolve(&self, secret: &SecretRef) -> Result<SecretRef, String> {
        match secret {
            SecretRef::Env(name) => self
                .get(name)
                .map(|v| SecretRef::Value(SecretValue::new(v)))
                .ok_or_else(|| name.clone()),
            other => Ok(other.clone()),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Env(name) => s.collect_str(&format_args!("env:{name}")),
            Self::Fingerprint(f) => s.serialize_str(f),
            Self::Value(v) => s.serialize_str(&v.fingerprint()),
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.strip_prefix("env:") {
            Some(name) => Self::Env(name.to_string()),
            None => Self::Fingerprint(s),
        })
    }
}

/// A number to own: a fixed one, or one to search for and buy (`"auto"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum NumberSpec {
    Fixed {
        number: E164,
    },
    Auto {
        country: String,
        area_code: String,
        /// Friendly endings tried in order before taking the first available number.
        endings: Vec<String>,
    },
}

impl NumberSpec {
    pub fn fixed(&self) -> Option<&E164> {
        match self {
            Self::Fixed { number } => Some(number),
            Self::Auto { .. } => None,
        }
    }
}

impl fmt::Display for NumberSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed { number } => write!(f, "{number}"),
            Self::Auto {
                country, area_code, ..
            } => write!(f, "auto ({country}, area code {area_code})"),
        }
    }
}

/// `telnyx_number`: a DID owned at Telnyx and the connection (or TeXML app) it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelnyxNumberSpec {
    pub number: NumberSpec,
    pub connection: Option<Ref>,
    pub tags: Vec<String>,
    /// The number's own settings beyond routing (issue 21), flattened so a plan names them
    /// `emergency_address` and so on; unset ones are not serialized, so states and plans
    /// written before them read and show exactly as they did.
    #[serde(flatten, default)]
    pub settings: NumberSettings,
}

/// Settings of a Telnyx number that lines.toml may declare per church line (issue 21). `None`
/// means "not declared": cwa leaves that setting as it is live, and the plan compares it only
/// when declared ([`Spec::compared_with`]). A live number reads every setting it has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberSettings {
    /// The E911 address (`telnyx_emergency_address.<name>`) emergency calls from this number
    /// report, with emergency service enabled on it. Live: the number's `emergency_address_id`
    /// while `emergency_enabled` is true and its `emergency_status` is `active` or
    /// `provisioning` (spec3.yml, PhoneNumberDetailed and EmergencySettings); a number whose
    /// provisioning failed or that is being deprovisioned reads as having none, so a rerun
    /// enables it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_address: Option<Ref>,
}

impl NumberSettings {
    /// These live settings as the declaration `declared` compares them: a setting it leaves
    /// undeclared reads as undeclared here too, so it never shows as a change; a declared one
    /// keeps its live value.
    pub fn as_declared_by(&self, declared: &NumberSettings) -> NumberSettings {
        NumberSettings {
            emergency_address: declared
                .emergency_address
                .as_ref()
                .and(self.emergency_address.clone()),
        }
    }
}

/// The `extra` key of a live Telnyx number's `emergency_status` (spec3.yml,
/// PhoneNumberDetailed), which plan warnings and `cwa check` show while it is not `active`.
pub const EMERGENCY_STATUS: &str = "emergency_status";

/// `telnyx_emergency_address`: an E911 address at Telnyx (the `addresses` resource of
/// spec3.yml: `POST /addresses`, `GET /addresses`, `GET` and `DELETE /addresses/{id}`; it has
/// no update, so every field is part of its identity and a changed address is a new object:
/// the new one is created, the numbers switched to it, then the old one deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyAddressSpec {
    /// `business_name`: who is at the address (the church).
    pub business_name: String,
    /// `first_name` and `last_name`: spec3.yml's AddressCreate requires both (and
    /// `business_name`), so lines.toml names the building's contact.
    pub first_name: String,
    pub last_name: String,
    pub street_address: String,
    /// Suite, floor, building: empty when there is none.
    pub extended_address: String,
    /// The city, for a US address.
    pub locality: String,
    /// The state, for a US address (`TX`).
    pub administrative_area: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper-case.
    pub country_code: String,
}

/// `telnyx_fqdn_connection`: the SIP trunk Telnyx uses to send calls to LiveKit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FqdnConnectionSpec {
    pub connection_name: String,
    pub active: bool,
    /// `UDP`, `TCP` or `TLS`.
    pub transport_protocol: String,
    pub user_name: Option<String>,
    pub password: Option<SecretRef>,
    /// `inbound.ani_number_format`, e.g. `+E.164`.
    pub ani_number_format: String,
    /// `inbound.dnis_number_format`, e.g. `+e164`.
    pub dnis_number_format: String,
    pub outbound_voice_profile: Option<Ref>,
}

/// `telnyx_fqdn`: a host record on an FQDN connection. `default_primary` stands for the
/// connection's `inbound.default_primary_fqdn_id` pointing here; keeping the flag on the
/// record avoids a connection <-> record cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FqdnSpec {
    pub connection: Ref,
    pub fqdn: String,
    pub port: u16,
    /// `a` or `srv`.
    pub dns_record_type: String,
    pub default_primary: bool,
}

/// `telnyx_credential_connection`: the connection LiveKit's outbound trunk registers against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialConnectionSpec {
    pub connection_name: String,
    pub active: bool,
    pub user_name: String,
    pub password: Option<SecretRef>,
    /// Written only through the nested `outbound` object: a flat PATCH is silently ignored.
    pub outbound_voice_profile: Option<Ref>,
}

/// `telnyx_outbound_voice_profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundVoiceProfileSpec {
    pub name: String,
    pub enabled: bool,
    /// ISO alpha-2 codes, kept sorted.
    pub whitelisted_destinations: Vec<String>,
}

/// `telnyx_texml_application`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TexmlApplicationSpec {
    pub friendly_name: String,
    pub voice_url: String,
    /// `get` or `post`.
    pub voice_method: String,
}

/// Settings of a LiveKit object that cwa keeps as they are but does not declare (dotted path
/// -> value, only the set ones), as last read: media encryption, the auth realm, an agent's
/// deployment, room timeouts. `None` when not read (a declaration, or state written before
/// cwa recorded them). Never part of a comparison: two specs that differ only here are equal,
/// plan and verify ignore it, and drift compares it with what state last saw
/// ([`crate::drift::with_preserved`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Preserved(pub Option<BTreeMap<String, String>>);

impl Preserved {
    /// Read from a live object.
    pub fn read(values: BTreeMap<String, String>) -> Self {
        Self(Some(values))
    }

    pub fn is_unread(&self) -> bool {
        self.0.is_none()
    }
}

impl PartialEq for Preserved {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Preserved {}

/// `livekit_inbound_trunk`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundTrunkSpec {
    pub name: String,
    pub metadata: String,
    pub numbers: Vec<NumberRef>,
    pub allowed_addresses: Vec<String>,
    pub allowed_numbers: Vec<String>,
    /// Empty means no authentication, which is what a Telnyx FQDN connection needs.
    pub auth_username: String,
    pub auth_password: Option<SecretRef>,
    pub krisp_enabled: bool,
    /// Settings cwa keeps as they are but does not declare ([`Preserved`]).
    #[serde(default, skip_serializing_if = "Preserved::is_unread")]
    pub preserved: Preserved,
}

impl InboundTrunkSpec {
    /// A trunk holding `numbers` and nothing else: no metadata, no caller or address filter,
    /// no authentication (what a Telnyx FQDN connection needs), Krisp on. A church line's
    /// trunk by convention, before its keys are laid over it.
    pub fn holding(name: impl Into<String>, numbers: Vec<NumberRef>) -> Self {
        Self {
            name: name.into(),
            metadata: String::new(),
            numbers,
            allowed_addresses: Vec::new(),
            allowed_numbers: Vec::new(),
            auth_username: String::new(),
            auth_password: None,
            krisp_enabled: true,
            preserved: Preserved::default(),
        }
    }
}

/// `livekit_outbound_trunk`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundTrunkSpec {
    pub name: String,
    pub metadata: String,
    /// Host only, no `sip:` prefix.
    pub address: String,
    /// `auto`, `udp`, `tcp` or `tls`.
    pub transport: String,
    pub numbers: Vec<NumberRef>,
    pub auth_username: String,
    pub auth_password: Option<SecretRef>,
    pub headers: BTreeMap<String, String>,
    pub destination_country: String,
    /// Settings cwa keeps as they are but does not declare ([`Preserved`]).
    #[serde(default, skip_serializing_if = "Preserved::is_unread")]
    pub preserved: Preserved,
}

/// How a dispatch rule names the room of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum DispatchKind {
    Individual {
        room_prefix: String,
        pin: String,
    },
    Direct {
        room_name: String,
        pin: String,
    },
    Callee {
        room_prefix: String,
        pin: String,
        randomize: bool,
    },
}

/// One agent a dispatch rule sends into the room.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgentDispatch {
    pub agent_name: String,
    pub metadata: String,
}

/// `livekit_dispatch_rule`. Always written through the `dispatch_rule` wrapper, so
/// `agents` (room_config.agents) is never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchRuleSpec {
    pub name: String,
    pub metadata: String,
    pub trunks: Vec<Ref>,
    pub rule: DispatchKind,
    pub agents: Vec<AgentDispatch>,
    pub hide_phone_number: bool,
    /// LiveKit turns noise cancellation on when the trunk *or* the rule asks for it
    /// (livekit/protocol `sip/sip.go`, `EvaluateDispatchRule`), so a line's `krisp = false`
    /// holds only with this off: cwa declares it off and the trunk's setting decides.
    #[serde(default)]
    pub krisp_enabled: bool,
    /// Settings cwa keeps as they are but does not declare ([`Preserved`]).
    #[serde(default, skip_serializing_if = "Preserved::is_unread")]
    pub preserved: Preserved,
}

/// `twilio_number`: a legacy IncomingPhoneNumber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioNumberSpec {
    pub number: E164,
    pub friendly_name: String,
}

/// One origination URL of a Twilio trunk (where Twilio sends inbound calls).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OriginationUrl {
    pub friendly_name: String,
    pub sip_url: String,
    pub priority: u16,
    pub weight: u16,
    pub enabled: bool,
}

/// `twilio_trunk`: an Elastic SIP trunk with its origination URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioTrunkSpec {
    pub friendly_name: String,
    pub domain_name: String,
    pub origination_urls: Vec<OriginationUrl>,
}

/// `twilio_trunk_number`: a Twilio number attached to a trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioTrunkNumberSpec {
    pub trunk: Ref,
    pub number: Ref,
}

/// The comparable attributes of any resource, one variant per [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Spec {
    TelnyxNumber(TelnyxNumberSpec),
    TelnyxFqdnConnection(FqdnConnectionSpec),
    TelnyxFqdn(FqdnSpec),
    TelnyxCredentialConnection(CredentialConnectionSpec),
    TelnyxOutboundVoiceProfile(OutboundVoiceProfileSpec),
    TelnyxTexmlApplication(TexmlApplicationSpec),
    LivekitInboundTrunk(InboundTrunkSpec),
    LivekitOutboundTrunk(OutboundTrunkSpec),
    LivekitDispatchRule(DispatchRuleSpec),
    TwilioNumber(TwilioNumberSpec),
    TwilioTrunk(TwilioTrunkSpec),
    TwilioTrunkNumber(TwilioTrunkNumberSpec),
    TelnyxEmergencyAddress(EmergencyAddressSpec),
}

/// Which fields of a spec are references, written once for [`Spec::refs`] and
/// [`Spec::refs_mut`] (`$iter` is `iter` or `iter_mut`, `$($borrow)*` is `&` or `&mut`).
macro_rules! spec_refs {
    ($spec:expr, $iter:ident, $($borrow:tt)*) => {
        match $spec {
            Spec::TelnyxNumber(s) => s
                .connection
                .$iter()
                .chain(s.settings.emergency_address.$iter())
                .collect(),
            Spec::TelnyxFqdnConnection(s) => s.outbound_voice_profile.$iter().collect(),
            Spec::TelnyxFqdn(s) => vec![$($borrow)* s.connection],
            Spec::TelnyxCredentialConnection(s) => s.outbound_voice_profile.$iter().collect(),
            Spec::LivekitDispatchRule(s) => s.trunks.$iter().collect(),
            Spec::TwilioTrunkNumber(s) => vec![$($borrow)* s.trunk, $($borrow)* s.number],
            Spec::TelnyxOutboundVoiceProfile(_)
            | Spec::TelnyxTexmlApplication(_)
            | Spec::LivekitInboundTrunk(_)
            | Spec::LivekitOutboundTrunk(_)
            | Spec::TwilioNumber(_)
            | Spec::TwilioTrunk(_)
            | Spec::TelnyxEmergencyAddress(_) => Vec::new(),
        }
    };
}

impl Spec {
    /// The undeclared settings cwa keeps, as read (LiveKit trunks and rules only).
    pub fn preserved(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Self::LivekitInboundTrunk(s) => s.preserved.0.as_ref(),
            Self::LivekitOutboundTrunk(s) => s.preserved.0.as_ref(),
            Self::LivekitDispatchRule(s) => s.preserved.0.as_ref(),
            _ => None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Self::TelnyxNumber(_) => Kind::TelnyxNumber,
            Self::TelnyxFqdnConnection(_) => Kind::TelnyxFqdnConnection,
            Self::TelnyxFqdn(_) => Kind::TelnyxFqdn,
            Self::TelnyxCredentialConnection(_) => Kind::TelnyxCredentialConnection,
            Self::TelnyxOutboundVoiceProfile(_) => Kind::TelnyxOutboundVoiceProfile,
            Self::TelnyxTexmlApplication(_) => Kind::TelnyxTexmlApplication,
            Self::LivekitInboundTrunk(_) => Kind::LivekitInboundTrunk,
            Self::LivekitOutboundTrunk(_) => Kind::LivekitOutboundTrunk,
            Self::LivekitDispatchRule(_) => Kind::LivekitDispatchRule,
            Self::TwilioNumber(_) => Kind::TwilioNumber,
            Self::TwilioTrunk(_) => Kind::TwilioTrunk,
            Self::TwilioTrunkNumber(_) => Kind::TwilioTrunkNumber,
            Self::TelnyxEmergencyAddress(_) => Kind::TelnyxEmergencyAddress,
        }
    }

    /// Every resource reference inside the spec, for dependency edges and id translation.
    pub fn refs(&self) -> Vec<&Ref> {
        spec_refs!(self, iter, &)
    }

    /// Mutable access to every reference, so the planner and executor can translate them.
    pub fn refs_mut(&mut self) -> Vec<&mut Ref> {
        spec_refs!(self, iter_mut, &mut)
    }

    /// The numbers a trunk holds, for dependency edges and `(number of …)` resolution.
    pub fn number_refs_mut(&mut self) -> Vec<&mut NumberRef> {
        match self {
            Self::LivekitInboundTrunk(s) => s.numbers.iter_mut().collect(),
            Self::LivekitOutboundTrunk(s) => s.numbers.iter_mut().collect(),
            _ => Vec::new(),
        }
    }

    pub fn number_refs(&self) -> Vec<&NumberRef> {
        match self {
            Self::LivekitInboundTrunk(s) => s.numbers.iter().collect(),
            Self::LivekitOutboundTrunk(s) => s.numbers.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Every secret field, by its field name.
    pub fn secrets(&self) -> Vec<(&'static str, &SecretRef)> {
        match self {
            Self::TelnyxFqdnConnection(s) => s.password.iter().map(|v| ("password", v)).collect(),
            Self::TelnyxCredentialConnection(s) => {
                s.password.iter().map(|v| ("password", v)).collect()
            }
            Self::LivekitInboundTrunk(s) => s
                .auth_password
                .iter()
                .map(|v| ("auth_password", v))
                .collect(),
            Self::LivekitOutboundTrunk(s) => s
                .auth_password
                .iter()
                .map(|v| ("auth_password", v))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn secrets_mut(&mut self) -> Vec<&mut SecretRef> {
        match self {
            Self::TelnyxFqdnConnection(s) => s.password.iter_mut().collect(),
            Self::TelnyxCredentialConnection(s) => s.password.iter_mut().collect(),
            Self::LivekitInboundTrunk(s) => s.auth_password.iter_mut().collect(),
            Self::LivekitOutboundTrunk(s) => s.auth_password.iter_mut().collect(),
            _ => Vec::new(),
        }
    }

    /// A short human label for the object (a number, a name), for plans and logs.
    pub fn label(&self) -> String {
        match self {
            Self::TelnyxNumber(s) => s.number.to_string(),
            Self::TelnyxFqdnConnection(s) => s.connection_name.clone(),
            Self::TelnyxFqdn(s) => format!("{}:{}", s.fqdn, s.port),
            Self::TelnyxCredentialConnection(s) => s.connection_name.clone(),
            Self::TelnyxOutboundVoiceProfile(s) => s.name.clone(),
            Self::TelnyxTexmlApplication(s) => s.friendly_name.clone(),
            Self::LivekitInboundTrunk(s) => s.name.clone(),
            Self::LivekitOutboundTrunk(s) => s.name.clone(),
            Self::LivekitDispatchRule(s) => s.name.clone(),
            Self::TwilioNumber(s) => s.number.to_string(),
            Self::TwilioTrunk(s) => s.friendly_name.clone(),
            Self::TwilioTrunkNumber(s) => format!("{} on {}", s.number, s.trunk),
            Self::TelnyxEmergencyAddress(s) => {
                format!("{}, {}, {}", s.business_name, s.street_address, s.locality)
            }
        }
    }
}

/// A church: the tenant whose lines a group of resources serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Church {
    /// The `[church.<key>]` name in lines.toml.
    pub key: String,
    pub id: uuid::Uuid,
    pub name: String,
}

/// Where a declaration came from in lines.toml, as a byte range, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceSpan {
    pub offset: usize,
    pub len: usize,
}

impl SourceSpan {
    pub fn new(offset: usize, len: usize) -> Self {
        Self { offset, len }
    }
}

impl From<std::ops::Range<usize>> for SourceSpan {
    fn from(r: std::ops::Range<usize>) -> Self {
        Self::new(r.start, r.end.saturating_sub(r.start))
    }
}

impl From<SourceSpan> for miette::SourceSpan {
    fn from(s: SourceSpan) -> Self {
        (s.offset, s.len).into()
    }
}

/// One resource as lines.toml wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredResource {
    pub addr: Address,
    pub spec: Spec,
    /// The church key this resource serves, for grouping plans.
    pub church: Option<String>,
    /// Declared read-only (legacy Twilio under a read-only policy): verified, never written.
    pub read_only: bool,
    /// Explicit `depends_on` entries; reference edges come from the spec itself.
    pub depends_on: Vec<Address>,
    /// The block in lines.toml that declared (or, for conventions, produced) this resource.
    pub span: SourceSpan,
}

impl DesiredResource {
    /// Every address this resource must wait for: its references, numbers it holds, and
    /// explicit `depends_on`.
    pub fn dependencies(&self) -> Vec<Address> {
        let mut deps: Vec<Address> = self
            .spec
            .refs()
            .into_iter()
            .filter_map(|r| r.addr().cloned())
            .collect();
        deps.extend(self.spec.number_refs().into_iter().filter_map(|n| match n {
            NumberRef::Of(a) => Some(a.clone()),
            NumberRef::Number(_) => None,
        }));
        deps.extend(self.depends_on.iter().cloned());
        deps.sort();
        deps.dedup();
        deps
    }
}

/// A live id cwa must never write to, and where lines.toml declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedId {
    pub id: String,
    pub reason: String,
    pub span: Option<SourceSpan>,
}

/// Rules that decide what cwa may do, from `[policy]` in lines.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Legacy Twilio objects are verified but never written unless this is true.
    pub twilio_writes: bool,
    /// Share of owned objects a plan may delete or replace without `--allow-mass-change`.
    pub max_delete_share: f64,
    /// `[ignore]`: live objects (by id or address) drift does not report, with why.
    pub ignore: Vec<Ignored>,
    /// `[kept]`: numbers cwa keeps after their line was removed (by number, id or address).
    pub kept: Vec<Ignored>,
    /// `[defaults] park`: the connection or TeXML application a kept Telnyx number is moved
    /// to, so its callers hear something declared (the fallback greeting) instead of whatever
    /// its removed line left; `None` leaves kept numbers where they are.
    pub park: Option<Address>,
    /// `[policy] auto_add`: what the provisioning workflow does after `cwa add church`.
    pub auto_add: AutoAdd,
    /// `[policy] require_emergency_address`: a church line without an E911 address is an
    /// error instead of a warning (issue 21).
    pub require_emergency_address: bool,
}

/// `[policy] auto_add` (issue 23): the provisioning workflow opens a pull request with the new
/// church's plan (`pr`, the default), or applies that church alone (`apply`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AutoAdd {
    #[default]
    Pr,
    Apply,
}

impl AutoAdd {
    /// The value as lines.toml writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pr => "pr",
            Self::Apply => "apply",
        }
    }
}

/// One entry of `[ignore]` or `[kept]` in lines.toml: a live id, address or number, and the
/// reason the operator gave (shown wherever the entry takes effect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub key: String,
    pub reason: String,
    pub span: Option<SourceSpan>,
}

impl Policy {
    /// The `[ignore]` entry naming any of `keys` (an id, an address, a number).
    pub fn ignored(&self, keys: &[&str]) -> Option<&Ignored> {
        find(&self.ignore, keys)
    }

    /// The `[kept]` entry naming any of `keys`.
    pub fn kept_entry(&self, keys: &[&str]) -> Option<&Ignored> {
        find(&self.kept, keys)
    }
}

fn find<'a>(entries: &'a [Ignored], keys: &[&str]) -> Option<&'a Ignored> {
    entries
        .iter()
        .find(|e| keys.iter().any(|k| !k.is_empty() && e.key == *k))
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            twilio_writes: false,
            max_delete_share: 0.25,
            ignore: Vec::new(),
            kept: Vec::new(),
            park: None,
            auto_add: AutoAdd::Pr,
            require_emergency_address: false,
        }
    }
}

/// Project-wide facts from `[livekit]` and `[defaults]` that checks need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// LiveKit project id, e.g. `p_5u9xu5ysoly`.
    pub livekit_project_id: String,
    /// The project-id SIP host, e.g. `5u9xu5ysoly.sip.livekit.cloud`.
    pub livekit_sip_host: String,
    /// The agent every line dispatches to unless a church overrides it.
    pub agent_name: String,
    /// `[defaults] outbound_countries`: countries every outbound voice profile must whitelist
    /// besides its trunks' destinations; `None` means the runbook's [`DEFAULT_OUTBOUND_COUNTRIES`].
    pub outbound_countries: Option<Vec<String>>,
}

/// The countries the runbook requires every outbound voice profile to whitelist.
pub const DEFAULT_OUTBOUND_COUNTRIES: [&str; 2] = ["US", "CA"];

impl Settings {
    /// The countries every outbound voice profile must whitelist besides its trunks' own
    /// destinations (`crate::checks::profile::required_countries` adds those).
    pub fn outbound_countries(&self) -> Vec<String> {
        match &self.outbound_countries {
            Some(list) => list.clone(),
            None => DEFAULT_OUTBOUND_COUNTRIES.map(String::from).to_vec(),
        }
    }
}

/// Everything lines.toml declares, expanded and validated: the desired side of every plan.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub resources: BTreeMap<Address, DesiredResource>,
    pub churches: Vec<Church>,
    pub protected: Vec<ProtectedId>,
    pub policy: Policy,
    pub settings: Settings,
}

impl Desired {
    pub fn get(&self, addr: &Address) -> Option<&DesiredResource> {
        self.resources.get(addr)
    }

    pub fn protected_id(&self, id: &str) -> Option<&ProtectedId> {
        self.protected.iter().find(|p| p.id == id)
    }
}

/// One object as a provider reports it, normalized at the boundary: references are live ids,
/// numbers are E.164 with `+`, secrets are fingerprints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveObject {
    pub id: String,
    pub spec: Spec,
    /// Informational fields that are not compared but that checks read
    /// (`status`, `customer_reference`, `record_type`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl LiveObject {
    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// A content fingerprint, so a saved plan can tell that the object changed since.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(json.as_bytes())))
    }
}

/// Everything the providers reported in one refresh.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub objects: BTreeMap<(Kind, String), LiveObject>,
    /// Providers that were actually read; a kind of an unread provider is unknown, not absent.
    pub refreshed: Vec<ProviderName>,
}

impl Live {
    /// Adds a provider's object; a Telnyx object's set fields in canonical form
    /// ([`canonical`]), as lines.toml expansion makes them.
    pub fn insert(&mut self, mut obj: LiveObject) {
        if obj.kind().provider() == ProviderName::Telnyx {
            obj.spec.canonicalize();
        }
        self.objects.insert((obj.kind(), obj.id.clone()), obj);
    }

    pub fn get(&self, kind: Kind, id: &str) -> Option<&LiveObject> {
        self.objects.get(&(kind, id.to_string()))
    }

    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &LiveObject> {
        self.objects
            .range((kind, String::new())..)
            .take_while(move |((k, _), _)| *k == kind)
            .map(|(_, o)| o)
    }

    pub fn was_refreshed(&self, provider: ProviderName) -> bool {
        self.refreshed.contains(&provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_parse_and_normalize() {
        assert!(E164::parse("+14144007103").is_ok());
        assert!(matches!(
            E164::parse("14144007103"),
            Err(E164Error::MissingPlus(_))
        ));
        assert!(matches!(
            E164::parse("+1414400710"),
            Err(E164Error::Nanp(_))
        ));
        assert_eq!(
            E164::normalize("14144007103").unwrap().as_str(),
            "+14144007103"
        );
        assert_eq!(
            E164::normalize("+1 (414) 400-7103").unwrap().as_str(),
            "+14144007103"
        );
    }

    #[test]
    fn fiction_and_toll_free() {
        assert!(E164::parse("+13125550123").unwrap().is_fiction());
        assert!(!E164::parse("+14144007103").unwrap().is_fiction());
        assert!(E164::parse("+18886030316").unwrap().is_toll_free());
    }

    #[test]
    fn address_round_trip() {
        let a: Address = "livekit_inbound_trunk.main".parse().unwrap();
        assert_eq!(a.kind, Kind::LivekitInboundTrunk);
        assert_eq!(a.to_string(), "livekit_inbound_trunk.main");
        assert!("nope.x".parse::<Address>().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = SecretRef::Value(SecretValue::new("hunter22"));
        assert!(!format!("{s:?}").contains("hunter22"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter22"));
    }

    #[test]
    fn live_of_kind_is_scoped() {
        let mut live = Live::default();
        for (id, name) in [("1", "a"), ("2", "b")] {
            live.insert(LiveObject {
                id: id.into(),
                spec: Spec::TelnyxOutboundVoiceProfile(OutboundVoiceProfileSpec {
                    name: name.into(),
                    enabled: true,
                    whitelisted_destinations: vec![],
                }),
                extra: BTreeMap::new(),
            });
        }
        assert_eq!(live.of_kind(Kind::TelnyxOutboundVoiceProfile).count(), 2);
        assert_eq!(live.of_kind(Kind::TelnyxNumber).count(), 0);
    }
}
