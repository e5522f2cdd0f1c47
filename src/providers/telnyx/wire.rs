//! Telnyx v2 wire types for exactly the endpoints cwa uses, and their conversion to model
//! specs. Every field is optional on the way in: Telnyx returns `null` or omits fields freely.
//!
//! Canonical forms (what lines.toml expansion produces, so an unchanged object shows no diff):
//! numbers E.164 with `+`; `transport_protocol` upper-case (`TCP`); `dns_record_type` and
//! `voice_method` lower-case; FQDNs lower-case without a trailing dot; an `a` record with no
//! port has port 5060 (Telnyx's default), an `srv` record with no port has port 0;
//! `whitelisted_destinations` upper-case, sorted, deduplicated; tags sorted, deduplicated;
//! `ani_number_format` / `dnis_number_format` exactly as Telnyx spells them (`+E.164`,
//! `+e164`: their case is part of the value); an empty user name or password is `None`;
//! secrets are [`SecretRef::Fingerprint`]s of the value Telnyx returns.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::model::canonical;
use crate::model::{
    CredentialConnectionSpec, EmergencyAddressSpec, FqdnConnectionSpec, FqdnSpec, LiveObject,
    NumberSettings, NumberSpec, OutboundVoiceProfileSpec, Ref, SecretRef, Spec, TelnyxNumberSpec,
    TexmlApplicationSpec, E164, EMERGENCY_STATUS,
};
use crate::providers::common::shown_secret;

/// Telnyx ids are numeric strings; accept a bare number too.
pub fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    })
}

/// An optional id: `null`, absent and `""` are all `None`.
pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[derive(Debug, Deserialize)]
pub struct One<T> {
    pub data: T,
}

#[derive(Debug, Deserialize)]
pub struct Page<T> {
    /// Required: a 200 whose body has no `data` (an error body, a proxy's page) is not an
    /// empty list. Read as one, every owned number looked gone and was ordered again.
    pub data: Vec<T>,
    #[serde(default)]
    pub meta: Option<PageMeta>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageMeta {
    #[serde(default)]
    pub total_pages: Option<u64>,
    #[serde(default)]
    pub total_results: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhoneNumber {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub phone_number: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub connection_id: Option<String>,
    #[serde(default)]
    pub connection_name: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub customer_reference: Option<String>,
    #[serde(default)]
    pub record_type: Option<String>,
    /// Telnyx's own deletion lock: a number with it on cannot be released.
    #[serde(default)]
    pub deletion_lock_enabled: Option<bool>,
    /// spec3.yml, PhoneNumberDetailed: `emergency_enabled` (boolean, read-only there: it is
    /// set through `POST /phone_numbers/{id}/actions/enable_emergency`).
    #[serde(default)]
    pub emergency_enabled: Option<bool>,
    /// PhoneNumberDetailed `emergency_address_id`: `string` or `null`.
    #[serde(default, deserialize_with = "opt_id")]
    pub emergency_address_id: Option<String>,
    /// PhoneNumberDetailed `emergency_status`: `active`, `deprovisioning`, `disabled`,
    /// `provisioning` or `provisioning-failed`.
    #[serde(default)]
    pub emergency_status: Option<String>,
}

/// An address (spec3.yml components/schemas/Address): the fields cwa declares. Every one is
/// a string, absent or `null` when unset.
#[derive(Debug, Clone, Deserialize)]
pub struct EmergencyAddress {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub business_name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub street_address: Option<String>,
    #[serde(default)]
    pub extended_address: Option<String>,
    #[serde(default)]
    pub locality: Option<String>,
    #[serde(default)]
    pub administrative_area: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country_code: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Inbound {
    #[serde(default)]
    pub ani_number_format: Option<String>,
    #[serde(default)]
    pub dnis_number_format: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub default_primary_fqdn_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Outbound {
    #[serde(default, deserialize_with = "opt_id")]
    pub outbound_voice_profile_id: Option<String>,
}

/// An FQDN or credential connection (they share these fields).
#[derive(Debug, Clone, Deserialize)]
pub struct Connection {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub record_type: Option<String>,
    #[serde(default)]
    pub connection_name: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub transport_protocol: Option<String>,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub inbound: Option<Inbound>,
    #[serde(default)]
    pub outbound: Option<Outbound>,
}

impl Connection {
    pub fn default_primary_fqdn_id(&self) -> Option<&str> {
        self.inbound
            .as_ref()
            .and_then(|i| i.default_primary_fqdn_id.as_deref())
    }

    fn ovp(&self) -> Option<Ref> {
        self.outbound
            .as_ref()
            .and_then(|o| o.outbound_voice_profile_id.clone())
            .map(Ref::Id)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Fqdn {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default, deserialize_with = "opt_id")]
    pub connection_id: Option<String>,
    #[serde(default)]
    pub fqdn: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub dns_record_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VoiceProfile {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub whitelisted_destinations: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TexmlApp {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub friendly_name: String,
    #[serde(default)]
    pub voice_url: Option<String>,
    #[serde(default)]
    pub voice_method: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NumberOrder {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub phone_numbers: Vec<OrderLine>,
    #[serde(default)]
    pub customer_reference: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderLine {
    #[serde(default)]
    pub phone_number: String,
    #[serde(default)]
    pub status: Option<String>,
    /// `requirement-info-pending` while Telnyx waits for regulatory documents.
    #[serde(default)]
    pub requirements_status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AvailableNumber {
    #[serde(default)]
    pub phone_number: String,
    #[serde(default)]
    pub best_effort: bool,
    /// Whether the number can be reserved before purchase (AvailablePhoneNumber `reservable`).
    #[serde(default)]
    pub reservable: bool,
}

/// `{"errors":[{"code","title","detail"}]}` → (code, detail or title).
pub fn decode_error(body: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        #[serde(default, deserialize_with = "id_string")]
        code: String,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        detail: Option<String>,
    }
    let e: Errors = serde_json::from_slice(body).ok()?;
    let first = e.errors.into_iter().next()?;
    let detail = first
        .detail
        .filter(|d| !d.is_empty())
        .or(first.title)
        .unwrap_or_default();
    Some((first.code, detail))
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// Whether Telnyx masked a password in its answer (`"********"`).
pub fn is_masked(password: &str) -> bool {
    !password.is_empty() && password.chars().all(|c| c == '*')
}

/// A connection's password as cwa compares it: the fingerprint of what Telnyx shows; hidden
/// when Telnyx masks it, or omits it while the connection has a user name (a password is then
/// set, just not shown); none when there are no credentials at all.
fn connection_secret(user_name: Option<&str>, password: Option<&str>) -> Option<SecretRef> {
    let has_user = user_name.is_some_and(|u| !u.is_empty());
    match password.filter(|p| !p.is_empty()) {
        Some(p) if is_masked(p) => Some(SecretRef::hidden()),
        Some(p) => shown_secret(Some(p)),
        None if has_user => Some(SecretRef::hidden()),
        None => None,
    }
}

fn extra(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter_map(|(k, v)| {
            v.filter(|v| !v.is_empty())
                .map(|v| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// A number as Telnyx reports it. A number Telnyx returns in a form cwa cannot read is a
/// decode error rather than a silently dropped object.
pub fn number_object(n: &PhoneNumber) -> Result<LiveObject, String> {
    let number =
        E164::normalize(&n.phone_number).map_err(|e| format!("phone number {}: {e}", n.id))?;
    Ok(LiveObject {
        id: n.id.clone(),
        spec: Spec::TelnyxNumber(TelnyxNumberSpec {
            number: NumberSpec::Fixed { number },
            connection: n.connection_id.clone().map(Ref::Id),
            tags: canonical::set(n.tags.clone().unwrap_or_default()),
            settings: NumberSettings {
                emergency_address: emergency_address_of(n).map(Ref::Id),
            },
        }),
        extra: extra(&[
            ("status", n.status.as_deref()),
            ("customer_reference", n.customer_reference.as_deref()),
            ("connection_name", n.connection_name.as_deref()),
            ("record_type", n.record_type.as_deref()),
            (
                DELETION_LOCK,
                n.deletion_lock_enabled.filter(|l| *l).map(|_| "true"),
            ),
            (EMERGENCY_STATUS, n.emergency_status.as_deref()),
        ]),
    })
}

/// The address emergency calls from this number carry, as cwa compares it: the number's
/// `emergency_address_id` while emergency service is on and `active` or `provisioning` (a
/// request Telnyx is still carrying out); none when it is off, its provisioning failed or it
/// is being deprovisioned, so the plan asks for it again.
pub fn emergency_address_of(n: &PhoneNumber) -> Option<String> {
    let on = n.emergency_enabled == Some(true);
    let status = n.emergency_status.as_deref().unwrap_or("active");
    (on && matches!(status, "active" | "provisioning"))
        .then(|| n.emergency_address_id.clone())
        .flatten()
}

fn field(v: &Option<String>) -> String {
    v.as_deref().unwrap_or_default().trim().to_string()
}

/// An address as Telnyx reports it; the country code upper-case, absent fields empty.
pub fn emergency_address_object(a: &EmergencyAddress) -> LiveObject {
    LiveObject {
        id: a.id.clone(),
        spec: Spec::TelnyxEmergencyAddress(EmergencyAddressSpec {
            business_name: field(&a.business_name),
            first_name: field(&a.first_name),
            last_name: field(&a.last_name),
            street_address: field(&a.street_address),
            extended_address: field(&a.extended_address),
            locality: field(&a.locality),
            administrative_area: field(&a.administrative_area),
            postal_code: field(&a.postal_code),
            country_code: field(&a.country_code).to_ascii_uppercase(),
        }),
        extra: extra(&[("record_type", Some("address"))]),
    }
}

/// The `extra` key of a number whose Telnyx deletion lock is on (`"true"`).
pub const DELETION_LOCK: &str = "deletion_lock_enabled";

fn connection_extra(c: &Connection) -> BTreeMap<String, String> {
    extra(&[
        ("record_type", c.record_type.as_deref()),
        ("default_primary_fqdn_id", c.default_primary_fqdn_id()),
    ])
}

pub fn fqdn_connection_object(c: &Connection) -> LiveObject {
    let inbound = c.inbound.clone().unwrap_or_default();
    LiveObject {
        id: c.id.clone(),
        spec: Spec::TelnyxFqdnConnection(FqdnConnectionSpec {
            connection_name: c.connection_name.clone().unwrap_or_default(),
            active: c.active.unwrap_or(true),
            transport_protocol: c
                .transport_protocol
                .as_deref()
                .unwrap_or("UDP")
                .to_ascii_uppercase(),
            user_name: non_empty(c.user_name.as_deref()),
            password: connection_secret(c.user_name.as_deref(), c.password.as_deref()),
            ani_number_format: inbound.ani_number_format.unwrap_or_default(),
            dnis_number_format: inbound.dnis_number_format.unwrap_or_default(),
            outbound_voice_profile: c.ovp(),
        }),
        extra: connection_extra(c),
    }
}

pub fn credential_connection_object(c: &Connection) -> LiveObject {
    LiveObject {
        id: c.id.clone(),
        spec: Spec::TelnyxCredentialConnection(CredentialConnectionSpec {
            connection_name: c.connection_name.clone().unwrap_or_default(),
            active: c.active.unwrap_or(true),
            user_name: c.user_name.clone().unwrap_or_default(),
            password: connection_secret(c.user_name.as_deref(), c.password.as_deref()),
            outbound_voice_profile: c.ovp(),
        }),
        extra: connection_extra(c),
    }
}

/// The canonical port of an FQDN record: Telnyx's default 5060 for an `a` record.
pub fn canonical_port(port: Option<u16>, dns_record_type: &str) -> u16 {
    match (port, dns_record_type) {
        (Some(p), _) => p,
        (None, "a") => 5060,
        (None, _) => 0,
    }
}

/// An FQDN record; `default_primary` comes from its connection's
/// `inbound.default_primary_fqdn_id`.
pub fn fqdn_object(f: &Fqdn, connection_default_primary: Option<&str>) -> LiveObject {
    let dns_record_type = f
        .dns_record_type
        .as_deref()
        .unwrap_or("a")
        .to_ascii_lowercase();
    LiveObject {
        id: f.id.clone(),
        spec: Spec::TelnyxFqdn(FqdnSpec {
            connection: Ref::Id(f.connection_id.clone().unwrap_or_default()),
            fqdn: f.fqdn.trim_end_matches('.').to_ascii_lowercase(),
            port: canonical_port(f.port, &dns_record_type),
            default_primary: connection_default_primary == Some(f.id.as_str()),
            dns_record_type,
        }),
        extra: extra(&[("record_type", Some("fqdn"))]),
    }
}

pub fn voice_profile_object(p: &VoiceProfile) -> LiveObject {
    let destinations = p
        .whitelisted_destinations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.to_ascii_uppercase())
        .collect();
    LiveObject {
        id: p.id.clone(),
        spec: Spec::TelnyxOutboundVoiceProfile(OutboundVoiceProfileSpec {
            name: p.name.clone(),
            enabled: p.enabled.unwrap_or(true),
            whitelisted_destinations: canonical::set(destinations),
        }),
        extra: extra(&[("record_type", Some("outbound_voice_profile"))]),
    }
}

pub fn texml_object(a: &TexmlApp) -> LiveObject {
    LiveObject {
        id: a.id.clone(),
        spec: Spec::TelnyxTexmlApplication(TexmlApplicationSpec {
            friendly_name: a.friendly_name.clone(),
            voice_url: a.voice_url.clone().unwrap_or_default(),
            voice_method: a
                .voice_method
                .as_deref()
                .unwrap_or("post")
                .to_ascii_lowercase(),
        }),
        extra: extra(&[
            ("record_type", Some("texml_application")),
            ("active", a.active.map(|b| if b { "true" } else { "false" })),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fingerprint;
    use serde_json::json;

    #[test]
    fn number_normalizes_and_sorts() {
        let n: PhoneNumber = serde_json::from_value(json!({
            "id": 2926113000000000001u64, "record_type": "phone_number",
            "phone_number": "14144007103", "status": "active",
            "connection_id": "2925081061861885519", "tags": ["b", "a", "a"],
            "customer_reference": null
        }))
        .unwrap();
        let o = number_object(&n).unwrap();
        assert_eq!(o.id, "2926113000000000001");
        let Spec::TelnyxNumber(s) = &o.spec else {
            panic!()
        };
        assert_eq!(s.number.fixed().unwrap().as_str(), "+14144007103");
        assert_eq!(s.connection, Some(Ref::Id("2925081061861885519".into())));
        assert_eq!(s.tags, vec!["a", "b"]);
        assert_eq!(o.extra.get("status").map(String::as_str), Some("active"));
        assert!(!o.extra.contains_key("customer_reference"));
    }

    #[test]
    fn fqdn_connection_reads_nested_fields() {
        let c: Connection = serde_json::from_value(json!({
            "id": "2925081061861885519", "record_type": "fqdn_connection",
            "connection_name": "LiveKit ChurchWiseAI", "active": true,
            "transport_protocol": "tcp", "user_name": "churchwiseai", "password": "pw",
            "inbound": {"ani_number_format": "+E.164", "dnis_number_format": "+e164",
                        "default_primary_fqdn_id": "2925083349418510207"},
            "outbound": {"outbound_voice_profile_id": "2925086295615079772"}
        }))
        .unwrap();
        let o = fqdn_connection_object(&c);
        let Spec::TelnyxFqdnConnection(s) = &o.spec else {
            panic!()
        };
        assert_eq!(s.transport_protocol, "TCP");
        assert_eq!(s.password, Some(SecretRef::Fingerprint(fingerprint("pw"))));
        assert_eq!(s.ani_number_format, "+E.164");
        assert_eq!(s.dnis_number_format, "+e164");
        assert_eq!(
            s.outbound_voice_profile,
            Some(Ref::Id("2925086295615079772".into()))
        );
        assert_eq!(
            o.extra.get("default_primary_fqdn_id").map(String::as_str),
            Some("2925083349418510207")
        );
    }

    #[test]
    fn credential_connection_with_null_profile() {
        let c: Connection = serde_json::from_value(json!({
            "id": "2948197312620398250", "connection_name": "CWA Verticals Platform Outbound",
            "active": true, "user_name": "cwaoutbound", "password": "",
            "outbound": {"outbound_voice_profile_id": null}
        }))
        .unwrap();
        let Spec::TelnyxCredentialConnection(s) = credential_connection_object(&c).spec else {
            panic!()
        };
        assert_eq!(s.outbound_voice_profile, None);
        assert_eq!(s.password, Some(SecretRef::hidden()));
    }

    #[test]
    fn fqdn_default_primary_and_port() {
        let f: Fqdn = serde_json::from_value(json!({
            "id": "2925083349418510207", "connection_id": "2925081061861885519",
            "fqdn": "5U9XU5YSOLY.sip.livekit.cloud.", "port": null, "dns_record_type": "A"
        }))
        .unwrap();
        let Spec::TelnyxFqdn(s) = fqdn_object(&f, Some("2925083349418510207")).spec else {
            panic!()
        };
        assert!(s.default_primary);
        assert_eq!(s.port, 5060);
        assert_eq!(s.fqdn, "5u9xu5ysoly.sip.livekit.cloud");
        assert_eq!(s.dns_record_type, "a");
        let Spec::TelnyxFqdn(s) = fqdn_object(&f, Some("other")).spec else {
            panic!()
        };
        assert!(!s.default_primary);
    }

    #[test]
    fn profile_destinations_sorted_upper() {
        let p: VoiceProfile = serde_json::from_value(json!({
            "id": "1", "name": "ChurchWiseAI", "enabled": true,
            "whitelisted_destinations": ["us", "CA", "US"]
        }))
        .unwrap();
        let Spec::TelnyxOutboundVoiceProfile(s) = voice_profile_object(&p).spec else {
            panic!()
        };
        assert_eq!(s.whitelisted_destinations, vec!["CA", "US"]);
    }

    #[test]
    fn texml_method_lower() {
        let a: TexmlApp = serde_json::from_value(json!({
            "id": "2927180743153026408", "friendly_name": "ChurchWiseAI Fallback Greeting",
            "voice_url": "https://churchwiseai.com/api/voice/fallback", "voice_method": "POST"
        }))
        .unwrap();
        let Spec::TelnyxTexmlApplication(s) = texml_object(&a).spec else {
            panic!()
        };
        assert_eq!(s.voice_method, "post");
    }

    #[test]
    fn error_body_code_and_detail() {
        let body = br#"{"errors":[{"code":"10005","title":"Resource not found","detail":"no such number"}]}"#;
        assert_eq!(
            decode_error(body),
            Some(("10005".into(), "no such number".into()))
        );
        assert_eq!(decode_error(b"<html>"), None);
    }
}
