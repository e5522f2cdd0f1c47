//! Number reservations (`/v2/number_reservations`): a hold of searched numbers for this
//! account, for [`RESERVATION_MINUTES`], extendable, so a pastor can see the number before it
//! is bought (`cwa add --reserve`, issue 23).
//!
//! Shapes from spec3.yml of github:team-telnyx/openapi 12de4dd (CreateNumberReservationRequest,
//! NumberReservation, ReservedPhoneNumber; `filter[phone_numbers.phone_number]`,
//! `filter[status]`, `filter[customer_reference]`; AvailablePhoneNumber `reservable`, and the
//! search's `filter[reservable]` and `filter[exclude_held_numbers]`: "exclude phone numbers
//! that are currently on hold/reserved for your account", so a search shows them otherwise).
//! The 30-minute hold is the figure, an assumption the spec does not state.
//!
//! While a hold is unexpired, the number is sold to no other customer
//! ([`TelnyxState::sell_elsewhere`], the control route that stands for one) and this account
//! may still order it; once `expired_at` passes it is an ordinary number again.

use super::*;

/// How long a reservation (or an extension) holds its numbers.
pub const RESERVATION_MINUTES: i64 = 30;

impl TelnyxState {
    pub(super) fn create_reservation(&mut self, req: &ApiRequest) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let Some(Value::Array(items)) = body.get("phone_numbers") else {
            return missing("/phone_numbers");
        };
        if items.is_empty() {
            return missing("/phone_numbers");
        }
        let mut numbers = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let pointer = format!("/phone_numbers/{i}/phone_number");
            let Some(number) = str_field(item, "phone_number") else {
                return missing(&pointer);
            };
            if let Err(detail) = self.reservable(number, req.now) {
                return invalid(&pointer, &detail);
            }
            numbers.push(number.to_string());
        }
        let id = self.next_uuid();
        let expires = timestamp(req.now + chrono::Duration::minutes(RESERVATION_MINUTES));
        let mut lines = Vec::new();
        for number in numbers {
            lines.push(json!({
                "id": self.next_uuid(),
                "record_type": "reserved_phone_number",
                "phone_number": number,
                "status": "success",
                "created_at": timestamp(req.now),
                "updated_at": timestamp(req.now),
                "expired_at": expires,
            }));
        }
        let reservation = json!({
            "id": id,
            "record_type": "number_reservation",
            "status": "success",
            "customer_reference": body.get("customer_reference").cloned().unwrap_or(Value::Null),
            "phone_numbers": lines,
            "created_at": timestamp(req.now),
            "updated_at": timestamp(req.now),
        });
        self.number_reservations
            .insert(id.clone(), reservation.clone());
        self.touch();
        data(200, reservation).with_resource(Some(id))
    }

    /// Why `number` cannot be reserved now, if it cannot.
    fn reservable(&self, number: &str, now: DateTime<Utc>) -> Result<(), String> {
        if self.taken.contains(number) || self.number_by_e164(number).is_some() {
            return Err(format!("{number} is no longer available."));
        }
        if !self.offered.contains(number) {
            return Err(format!(
                "{number} was not returned by an available phone number search; only searched numbers can be reserved."
            ));
        }
        if self.held_until(number, now).is_some() {
            return Err(format!("{number}: Number is already on hold."));
        }
        Ok(())
    }

    /// When this account's unexpired hold on `number` ends, if it has one.
    pub(super) fn held_until(&self, number: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.number_reservations
            .values()
            .flat_map(|r| r["phone_numbers"].as_array().into_iter().flatten())
            .filter(|n| str_field(n, "phone_number") == Some(number))
            .filter_map(|n| str_field(n, "expired_at"))
            .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > now)
            .max()
    }

    pub(super) fn get_reservation(&self, id: &str) -> ApiResponse {
        match self.number_reservations.get(id) {
            Some(r) => data(200, r.clone()),
            None => not_found("number reservation"),
        }
    }

    pub(super) fn list_reservations(&self, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let mut items: Vec<&Value> = self
            .number_reservations
            .values()
            .filter(|r| req.query.iter().all(|(k, v)| reservation_matches(r, k, v)))
            .collect();
        sort_objects(&mut items, Some("-created_at"), "created_at", sort_key);
        paging.respond(items, Value::clone)
    }

    pub(super) fn extend_reservation(&mut self, id: &str, now: DateTime<Utc>) -> ApiResponse {
        let Some(reservation) = self.number_reservations.get_mut(id) else {
            return not_found("number reservation");
        };
        let expires = timestamp(now + chrono::Duration::minutes(RESERVATION_MINUTES));
        for n in reservation["phone_numbers"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            let lapsed = str_field(n, "expired_at")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_none_or(|t| t.with_timezone(&Utc) <= now);
            if lapsed {
                return invalid("/id", "The reservation has expired and cannot be extended.");
            }
            n["expired_at"] = json!(expires);
            n["updated_at"] = json!(timestamp(now));
        }
        reservation["updated_at"] = json!(timestamp(now));
        let answer = reservation.clone();
        self.touch();
        data(200, answer)
    }

    /// Control (`POST /sandbox/telnyx/lapse`): every hold of reservation `id` ends now, as
    /// after its 30 minutes. `false` when there is no such reservation.
    pub fn lapse_reservation(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        let Some(reservation) = self.number_reservations.get_mut(id) else {
            return false;
        };
        let past = timestamp(now - chrono::Duration::seconds(1));
        for n in reservation["phone_numbers"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            n["expired_at"] = json!(past);
        }
        self.touch();
        true
    }

    /// Control (`POST /sandbox/telnyx/sell_elsewhere`): another customer buys `number`.
    /// Refused (with the hold's end) while this account holds it; otherwise the number leaves
    /// the inventory for good.
    pub fn sell_elsewhere(&mut self, number: &str, now: DateTime<Utc>) -> Result<(), String> {
        if let Some(until) = self.held_until(number, now) {
            return Err(format!(
                "{number} is on hold for this account until {}",
                timestamp(until)
            ));
        }
        if self.number_by_e164(number).is_some() {
            return Err(format!("{number} belongs to this account"));
        }
        self.taken.insert(number.to_string());
        self.offered.remove(number);
        self.touch();
        Ok(())
    }
}

/// Whether a reservation fits one `filter[...]` query pair (others, such as paging, fit all).
fn reservation_matches(r: &Value, key: &str, value: &str) -> bool {
    match key {
        "filter[status]" => str_field(r, "status") == Some(value),
        "filter[customer_reference]" => str_field(r, "customer_reference") == Some(value),
        "filter[phone_numbers.phone_number]" => r["phone_numbers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| str_field(n, "phone_number") == Some(value)),
        _ => true,
    }
}
