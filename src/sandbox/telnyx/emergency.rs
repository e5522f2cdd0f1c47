//! E911 (issue 21): the `addresses` resource and a number's emergency service.
//!
//! Sources: spec3.yml of github:team-telnyx/openapi `12de4dd` (the commit
//! `tests/contracts/telnyx.json` is extracted from): `GET`/`POST /addresses` (FindAddresses,
//! CreateAddress: 200 with the Address), `GET`/`DELETE /addresses/{id}` (GetAddress,
//! DeleteAddress: 200 with the Address); there is no update. AddressCreate requires
//! `first_name`, `last_name`, `business_name`, `street_address`, `locality` and
//! `country_code`. `POST /phone_numbers/{id}/actions/enable_emergency`
//! (EnablePhoneNumberEmergency) takes `emergency_enabled` and `emergency_address_id` (both
//! required) and answers 200 "Phone number emergency enabled" or 202 "Phone number emergency
//! requested" with PhoneNumberWithVoiceSettings; EmergencySettings.emergency_status is
//! `disabled`, `active`, `provisioning`, `deprovisioning` or `provisioning-failed`.
//!
//! Assumptions (the spec says nothing): an address a number's emergency service uses cannot
//! be deleted (422 `10021`, as a connection with numbers); enabling answers 202 with
//! `provisioning`, which turns `active` after [`TelnyxState::emergency_provisioning_ms`]
//! (or never, with [`Realism::emergency_stuck`]; or `provisioning-failed`, with
//! [`Realism::emergency_fails`]).

use super::*;

/// The address keys a create accepts (spec3.yml, AddressCreate).
const ADDRESS_KEYS: &[&str] = &[
    "address_book",
    "administrative_area",
    "borough",
    "business_name",
    "country_code",
    "customer_reference",
    "extended_address",
    "first_name",
    "last_name",
    "locality",
    "neighborhood",
    "phone_number",
    "postal_code",
    "street_address",
    "validate_address",
];

/// AddressCreate `required`.
const ADDRESS_REQUIRED: &[&str] = &[
    "first_name",
    "last_name",
    "business_name",
    "street_address",
    "locality",
    "country_code",
];

impl TelnyxState {
    /// `POST /v2/addresses`.
    pub(super) fn create_address(&mut self, req: &ApiRequest) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let blank = |k: &&&str| {
            body.get(**k)
                .and_then(Value::as_str)
                .is_none_or(|v| v.trim().is_empty())
        };
        if let Some(key) = ADDRESS_REQUIRED.iter().find(blank) {
            return missing(&format!("/{key}"));
        }
        let country = body
            .get("country_code")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            return invalid(
                "/country_code",
                "country_code must be a two-character ISO 3166-1 alpha-2 code.",
            );
        }
        let id = self.next_id();
        let stamp = json!(timestamp(req.now));
        let mut object = json!({
            "id": id,
            "record_type": "address",
            "address_book": true,
            "validate_address": true,
            "created_at": stamp,
            "updated_at": stamp,
        });
        for key in ADDRESS_KEYS {
            let value = body.get(*key).cloned().unwrap_or(Value::Null);
            if object.get(*key).is_none() || !value.is_null() {
                object[*key] = value;
            }
        }
        self.addresses.insert(id.clone(), object.clone());
        self.touch();
        data(200, object).with_resource(Some(id))
    }

    /// `GET /v2/addresses`: every address, paged.
    pub(super) fn list_addresses(&self, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let items: Vec<&Value> = self.addresses.values().collect();
        paging.respond(items, Value::clone)
    }

    pub(super) fn get_address(&self, id: &str) -> ApiResponse {
        match self.addresses.get(id) {
            Some(a) => data(200, a.clone()),
            None => not_found("address"),
        }
    }

    /// `DELETE /v2/addresses/{id}`: refused while a number's emergency service uses it.
    pub(super) fn delete_address(&mut self, id: &str) -> ApiResponse {
        if !self.addresses.contains_key(id) {
            return not_found("address");
        }
        let users = self
            .phone_numbers
            .values()
            .filter(|n| str_field(n, "emergency_address_id") == Some(id))
            .count();
        if users > 0 {
            return in_use(&format!(
                "The address {id} is the emergency address of {users} phone number(s)."
            ));
        }
        let object = self.addresses.remove(id).expect("checked above");
        self.touch();
        data(200, object)
    }

    /// `POST /v2/phone_numbers/{id}/actions/enable_emergency`.
    pub(super) fn enable_emergency(&mut self, id: &str, req: &ApiRequest) -> ApiResponse {
        let (body, current) = match self.active_number_write(id, req, |_| {
            "Emergency service can be enabled on active phone numbers only.".into()
        }) {
            Ok(found) => found,
            Err(response) => return response,
        };
        let Some(enabled) = body.get("emergency_enabled").and_then(Value::as_bool) else {
            return missing("/emergency_enabled");
        };
        let Some(address) = body.get("emergency_address_id").and_then(Value::as_str) else {
            return missing("/emergency_address_id");
        };
        if enabled && !self.addresses.contains_key(address) {
            return invalid(
                "/emergency_address_id",
                "The emergency address could not be found.",
            );
        }
        let mut number = current.clone();
        let status = if enabled {
            "provisioning"
        } else {
            "deprovisioning"
        };
        number["emergency_enabled"] = json!(enabled);
        number["emergency_address_id"] = if enabled { json!(address) } else { Value::Null };
        number["emergency_status"] = json!(status);
        number["updated_at"] = json!(timestamp(req.now));
        self.phone_numbers.insert(id.to_string(), number.clone());
        self.emergency_due.insert(
            id.to_string(),
            req.now + chrono::Duration::milliseconds(self.emergency_provisioning_ms as i64),
        );
        self.touch();
        data(202, voice_settings(&number))
    }

    /// Emergency requests whose time has come: `provisioning` turns `active` (or
    /// `provisioning-failed`), `deprovisioning` turns `disabled`. A stuck account
    /// ([`Realism::emergency_stuck`]) never gets there.
    pub(super) fn complete_due_emergency(&mut self, now: DateTime<Utc>) {
        if self.realism.emergency_stuck || self.emergency_due.is_empty() {
            return;
        }
        let due: Vec<String> = self
            .emergency_due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.emergency_due.remove(&id);
            let fails = self.realism.emergency_fails;
            let Some(n) = self.phone_numbers.get_mut(&id) else {
                continue;
            };
            let next = match str_field(n, "emergency_status") {
                Some("provisioning") if fails => "provisioning-failed",
                Some("provisioning") => "active",
                Some("deprovisioning") => "disabled",
                _ => continue,
            };
            n["emergency_status"] = json!(next);
            n["updated_at"] = json!(timestamp(now));
            self.touch();
        }
    }
}

/// A number as PhoneNumberWithVoiceSettings renders it: the emergency settings nested.
fn voice_settings(number: &Value) -> Value {
    json!({
        "id": number.get("id").cloned().unwrap_or(Value::Null),
        "record_type": "voice_settings",
        "phone_number": number.get("phone_number").cloned().unwrap_or(Value::Null),
        "connection_id": number.get("connection_id").cloned().unwrap_or(Value::Null),
        "customer_reference": number.get("customer_reference").cloned().unwrap_or(Value::Null),
        "emergency": {
            "emergency_enabled": number.get("emergency_enabled").cloned().unwrap_or(json!(false)),
            "emergency_address_id": number.get("emergency_address_id").cloned().unwrap_or(Value::Null),
            "emergency_status": number.get("emergency_status").cloned().unwrap_or(json!("disabled")),
        },
        "cnam_listing": {
            "cnam_listing_enabled": number.get("cnam_listing_enabled").cloned().unwrap_or(json!(false)),
        },
        "tech_prefix_enabled": false,
        "translated_number": "",
        "usage_payment_method": "pay-per-minute",
        "inbound_call_screening": number.get("inbound_call_screening").cloned().unwrap_or(json!("disabled")),
    })
}
