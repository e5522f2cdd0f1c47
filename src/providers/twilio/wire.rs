//! Twilio wire types (v2010 incoming numbers, trunking v1 trunks, their numbers and
//! origination URLs), the error form, paging links and the form bodies of writes, and their
//! normalization into model specs.
//!
//! Canonical forms: numbers E.164 with `+`; origination URLs sorted; domain names lower-case;
//! a number on a trunk is `<TK sid>/<PN sid>`.

use std::collections::BTreeMap;

use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use crate::model::{
    LiveObject, OriginationUrl, Ref, Spec, TwilioNumberSpec, TwilioTrunkNumberSpec,
    TwilioTrunkSpec, E164,
};

#[derive(Debug, Clone, Deserialize)]
pub struct IncomingNumber {
    pub sid: String,
    #[serde(default)]
    pub phone_number: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub trunk_sid: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub voice_url: Option<String>,
    #[serde(default)]
    pub voice_application_sid: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Trunk {
    pub sid: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub domain_name: Option<String>,
    #[serde(default)]
    pub secure: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TrunkNumber {
    pub sid: String,
    #[serde(default)]
    pub trunk_sid: Option<String>,
    #[serde(default)]
    pub phone_number: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OriginationUrlWire {
    pub sid: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub sip_url: String,
    #[serde(default)]
    pub priority: Option<u16>,
    #[serde(default)]
    pub weight: Option<u16>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `{"code":20404,"message":"…"}` → (code, message).
pub(super) fn decode_error(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = match v.get("code")? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    let message = v
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((code, message))
}

pub(super) fn str_or_empty(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

pub fn number_object(n: &IncomingNumber) -> Result<LiveObject, String> {
    let number = E164::normalize(&n.phone_number).map_err(|e| format!("number {}: {e}", n.sid))?;
    let extra = [
        ("trunk_sid", &n.trunk_sid),
        ("status", &n.status),
        ("voice_url", &n.voice_url),
        ("voice_application_sid", &n.voice_application_sid),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.as_ref()
            .filter(|v| !v.is_empty())
            .map(|v| (k.to_string(), v.clone()))
    })
    .collect();
    Ok(LiveObject {
        id: n.sid.clone(),
        spec: Spec::TwilioNumber(TwilioNumberSpec {
            number,
            friendly_name: str_or_empty(&n.friendly_name),
        }),
        extra,
    })
}

pub fn origination_url(u: &OriginationUrlWire) -> OriginationUrl {
    OriginationUrl {
        friendly_name: str_or_empty(&u.friendly_name),
        sip_url: u.sip_url.clone(),
        priority: u.priority.unwrap_or(10),
        weight: u.weight.unwrap_or(10),
        enabled: u.enabled.unwrap_or(true),
    }
}

pub fn trunk_object(t: &Trunk, urls: &[OriginationUrlWire]) -> LiveObject {
    let mut origination_urls: Vec<OriginationUrl> = urls.iter().map(origination_url).collect();
    origination_urls.sort();
    let mut extra = BTreeMap::new();
    if let Some(secure) = t.secure {
        extra.insert("secure".to_string(), secure.to_string());
    }
    LiveObject {
        id: t.sid.clone(),
        spec: Spec::TwilioTrunk(TwilioTrunkSpec {
            friendly_name: str_or_empty(&t.friendly_name),
            domain_name: str_or_empty(&t.domain_name).to_ascii_lowercase(),
            origination_urls,
        }),
        extra,
    }
}

/// An incoming number as the trunk's PhoneNumbers sub-resource shows it.
pub(super) fn attached(n: &IncomingNumber, trunk: &str) -> TrunkNumber {
    TrunkNumber {
        sid: n.sid.clone(),
        trunk_sid: Some(trunk.to_string()),
        phone_number: n.phone_number.clone(),
    }
}

pub fn trunk_number_id(trunk: &str, number: &str) -> String {
    format!("{trunk}/{number}")
}

pub fn trunk_number_object(trunk: &str, n: &TrunkNumber) -> LiveObject {
    let trunk = n
        .trunk_sid
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| trunk.to_string());
    let mut extra = BTreeMap::new();
    if let Ok(e) = E164::normalize(&n.phone_number) {
        extra.insert("phone_number".to_string(), e.to_string());
    }
    LiveObject {
        id: trunk_number_id(&trunk, &n.sid),
        spec: Spec::TwilioTrunkNumber(TwilioTrunkNumberSpec {
            trunk: Ref::Id(trunk),
            number: Ref::Id(n.sid.clone()),
        }),
        extra,
    }
}

pub fn origination_form(u: &OriginationUrl) -> Vec<(String, String)> {
    vec![
        ("FriendlyName".into(), u.friendly_name.clone()),
        ("SipUrl".into(), u.sip_url.clone()),
        ("Priority".into(), u.priority.to_string()),
        ("Weight".into(), u.weight.to_string()),
        ("Enabled".into(), u.enabled.to_string()),
    ]
}

/// The trunk's form. `DomainName` is optional (twilio-oai trunking v1): an origination-only
/// trunk sends none.
pub fn trunk_form(s: &TwilioTrunkSpec) -> Vec<(String, String)> {
    let mut form = vec![("FriendlyName".into(), s.friendly_name.clone())];
    if !s.domain_name.is_empty() {
        form.push(("DomainName".into(), s.domain_name.clone()));
    }
    form
}

/// Only the path and query of a server-supplied next-page link, so paging stays on the
/// configured host.
pub(super) fn path_and_query(link: &str) -> String {
    match Url::parse(link) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        Err(_) => link.to_string(),
    }
}

/// A number-on-trunk id split into its trunk and number sids.
pub(super) fn split_trunk_number(id: &str) -> Option<(&str, &str)> {
    id.split_once('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn number_normalizes() {
        let n: IncomingNumber = serde_json::from_value(json!({
            "sid": "PN1", "phone_number": "+18886030316", "friendly_name": "Sales (toll-free)",
            "trunk_sid": "TK1", "voice_url": ""
        }))
        .unwrap();
        let o = number_object(&n).unwrap();
        assert_eq!(o.extra.get("trunk_sid").map(String::as_str), Some("TK1"));
        assert!(!o.extra.contains_key("voice_url"));
    }

    #[test]
    fn trunk_urls_sorted() {
        let t: Trunk = serde_json::from_value(json!({
            "sid": "TK1", "friendly_name": "LiveKit Main", "domain_name": "ChurchWiseAI.pstn.twilio.com"
        }))
        .unwrap();
        let urls: Vec<OriginationUrlWire> = serde_json::from_value(json!([
            {"sid": "OU2", "friendly_name": "b", "sip_url": "sip:b", "priority": 20, "weight": 10, "enabled": true},
            {"sid": "OU1", "friendly_name": "a", "sip_url": "sip:a", "priority": 10, "weight": 10, "enabled": true}
        ]))
        .unwrap();
        let Spec::TwilioTrunk(s) = trunk_object(&t, &urls).spec else {
            panic!()
        };
        assert_eq!(s.domain_name, "churchwiseai.pstn.twilio.com");
        assert_eq!(s.origination_urls[0].sip_url, "sip:a");
    }

    #[test]
    fn trunk_number_id_is_trunk_slash_number() {
        let n: TrunkNumber = serde_json::from_value(
            json!({"sid": "PN9", "trunk_sid": "TK1", "phone_number": "+13658253552"}),
        )
        .unwrap();
        let o = trunk_number_object("TK1", &n);
        assert_eq!(o.id, "TK1/PN9");
    }

    #[test]
    fn next_links_stay_on_the_configured_host() {
        assert_eq!(
            path_and_query(
                "https://trunking.twilio.com/v1/Trunks?PageSize=50&Page=1&PageToken=PT1"
            ),
            "/v1/Trunks?PageSize=50&Page=1&PageToken=PT1"
        );
        assert_eq!(
            path_and_query("/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?Page=1"),
            "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?Page=1"
        );
    }

    #[test]
    fn error_body() {
        assert_eq!(
            decode_error(br#"{"code":20404,"message":"not found","status":404}"#),
            Some(("20404".into(), "not found".into()))
        );
    }
}
