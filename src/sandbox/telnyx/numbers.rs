//! Available numbers, number orders and phone numbers: search, order, completion, list, update,
//! release.

use super::*;

impl TelnyxState {
    pub(super) fn search_numbers(&mut self, req: &ApiRequest) -> ApiResponse {
        let query = |k: &str| req.query_value(k).filter(|v| !v.is_empty());
        let country = query("filter[country_code]");
        if country.is_some_and(|c| !matches!(c, "US" | "CA")) {
            return search_result(Vec::new());
        }
        let limit = match query("filter[limit]").map(str::parse::<usize>) {
            None => DEFAULT_SEARCH_LIMIT,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => {
                return bad_parameter("filter[limit]", "filter[limit] must be a positive integer.")
            }
        };
        let ndc = query("filter[national_destination_code]");
        if let Some(code) = ndc.filter(|c| self.realism.best_effort_area_codes.contains(*c)) {
            // Best-effort offers are not reservable (they answer `reservable: false`).
            if query("filter[reservable]") == Some("true") {
                return search_result(Vec::new());
            }
            return self.best_effort_offers(code, limit);
        }
        let area_codes: Vec<&str> = match (ndc, country) {
            (Some(code), _) => vec![code],
            (None, Some("CA")) => inventory::DEFAULT_CANADIAN_AREA_CODES.to_vec(),
            (None, _) => inventory::DEFAULT_AREA_CODES.to_vec(),
        };
        let starts = query("filter[phone_number][starts_with]");
        let ends = query("filter[phone_number][ends_with]");
        let contains = query("filter[phone_number][contains]");
        let features: Vec<&str> = query("filter[features]")
            .map(|f| f.split(',').map(str::trim).collect())
            .unwrap_or_default();
        let wanted_type = query("filter[phone_number_type]");
        let exclude_held = query("filter[exclude_held_numbers]") == Some("true");
        let owned: BTreeSet<&str> = self
            .phone_numbers
            .values()
            .filter_map(|n| str_field(n, "phone_number"))
            .collect();
        let mut found = Vec::new();
        for npa in area_codes {
            if country.is_some_and(|c| c != inventory::country_of(npa)) {
                continue;
            }
            let kind = if inventory::is_toll_free(npa) {
                "toll_free"
            } else {
                "local"
            };
            if wanted_type.is_some_and(|t| t != kind) {
                continue;
            }
            for number in inventory::numbers_in(npa) {
                let national = &number[2..];
                let pattern_part = if ndc.is_some() {
                    &national[3..]
                } else {
                    national
                };
                let fits = starts.is_none_or(|s| pattern_part.starts_with(s))
                    && ends.is_none_or(|e| national.ends_with(e))
                    && contains.is_none_or(|c| pattern_part.contains(c))
                    && features
                        .iter()
                        .all(|f| number_features(&number).contains(f))
                    && !self.taken.contains(&number)
                    && !owned.contains(number.as_str())
                    && !(exclude_held && self.held_until(&number, req.now).is_some());
                if fits {
                    found.push(number);
                }
                if found.len() >= limit {
                    break;
                }
            }
        }
        found.truncate(limit);
        self.remember_offered(&found);
        search_result(found)
    }

    /// Numbers a search returned are remembered: only these may be ordered or reserved. The
    /// world is marked changed only when one is new.
    fn remember_offered(&mut self, found: &[String]) {
        let fresh: Vec<String> = found
            .iter()
            .filter(|n| !self.offered.contains(*n))
            .cloned()
            .collect();
        if !fresh.is_empty() {
            self.offered.extend(fresh);
            self.touch();
        }
    }

    /// A search in an area code with no exact number ([`Realism::best_effort_area_codes`]):
    /// offers from the neighbouring area code Telnyx would suggest, flagged best-effort.
    fn best_effort_offers(&mut self, code: &str, limit: usize) -> ApiResponse {
        let neighbour = inventory::DEFAULT_AREA_CODES
            .iter()
            .copied()
            .find(|npa| *npa != code && inventory::country_of(npa) == inventory::country_of(code))
            .unwrap_or("312");
        let owned: BTreeSet<String> = self
            .phone_numbers
            .values()
            .filter_map(|n| str_field(n, "phone_number").map(str::to_string))
            .collect();
        let found: Vec<String> = inventory::numbers_in(neighbour)
            .into_iter()
            .filter(|n| !self.taken.contains(n) && !owned.contains(n))
            .take(limit)
            .collect();
        self.remember_offered(&found);
        let items: Vec<Value> = found
            .iter()
            .map(|n| {
                let mut offer = available_number(n);
                offer["best_effort"] = json!(true);
                offer["reservable"] = json!(false);
                offer
            })
            .collect();
        let meta = json!({"total_results": items.len(), "best_effort_results": items.len()});
        ApiResponse::json(200, &json!({"data": items, "meta": meta, "metadata": meta}))
    }

    pub(super) fn create_order(&mut self, req: &ApiRequest) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let numbers = match self.orderable_numbers(&body) {
            Ok(numbers) => numbers,
            Err(response) => return response,
        };
        let connection_id = match body.get("connection_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if self.connection(id).is_some() => Some(id.clone()),
            Some(_) => {
                return invalid(
                    "/connection_id",
                    "connection_id must be the id of an existing connection.",
                )
            }
        };
        let customer_reference =
            str_field(&Value::Object(body.clone()), "customer_reference").map(str::to_string);
        let order_id = self.next_uuid();
        let pending_documents = self.realism.requirement_info_pending;
        let mut lines = Vec::new();
        for number in &numbers {
            let line_id = self.next_uuid();
            lines.push(json!({
                "id": line_id,
                "record_type": "number_order_phone_number",
                "phone_number": number,
                "status": "pending",
                "requirements_met": !pending_documents,
                "requirements_status": if pending_documents { "requirement-info-pending" } else { "approved" },
                "regulatory_requirements": [],
                "bundle_id": null,
                "country_code": inventory::country_of(&number[2..5]),
                "country_iso_alpha2": inventory::country_of(&number[2..5]),
                "phone_number_type": number_type(number),
            }));
            let number_id = self.next_id();
            let mut object = phone_number_object(
                &number_id,
                number,
                if pending_documents {
                    "requirement-info-pending"
                } else {
                    "purchase-pending"
                },
                connection_id.as_deref(),
                req.now,
            );
            object["customer_reference"] = json!(customer_reference);
            object["activated_at"] = Value::Null;
            self.phone_numbers.insert(number_id, object);
            self.taken.insert(number.clone());
            self.offered.remove(number);
        }
        let order = json!({
            "id": order_id,
            "record_type": "number_order",
            "status": "pending",
            "phone_numbers": lines,
            "phone_numbers_count": numbers.len(),
            "connection_id": connection_id,
            "messaging_profile_id": body.get("messaging_profile_id").cloned().unwrap_or(Value::Null),
            "billing_group_id": body.get("billing_group_id").cloned().unwrap_or(Value::Null),
            "customer_reference": customer_reference,
            "requirements_met": !pending_documents,
            "sub_number_orders_ids": [],
            "created_at": timestamp(req.now),
            "updated_at": timestamp(req.now),
        });
        if !pending_documents {
            let due = req.now + chrono::Duration::milliseconds(self.order_completion_ms as i64);
            self.order_due.insert(order_id.clone(), due);
        }
        self.number_orders.insert(order_id.clone(), order.clone());
        self.touch();
        data(200, order).with_resource(Some(order_id))
    }

    pub(super) fn orderable_numbers(
        &self,
        body: &Map<String, Value>,
    ) -> Result<Vec<String>, ApiResponse> {
        let Some(Value::Array(items)) = body.get("phone_numbers") else {
            return Err(missing("/phone_numbers"));
        };
        if items.is_empty() {
            return Err(missing("/phone_numbers"));
        }
        let mut numbers: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let pointer = format!("/phone_numbers/{i}/phone_number");
            let Some(number) = str_field(item, "phone_number") else {
                return Err(missing(&pointer));
            };
            if crate::model::E164::parse(number).is_err() {
                return Err(error(
                    422,
                    "10016",
                    "Phone number must be in +E.164 format",
                    &format!("{number} is not in +E.164 format."),
                    Some(json!({"pointer": pointer})),
                ));
            }
            if numbers.iter().any(|n| n == number) {
                return Err(invalid(
                    &pointer,
                    &format!("{number} appears twice in the order."),
                ));
            }
            if self.taken.contains(number) || self.number_by_e164(number).is_some() {
                return Err(invalid(
                    &pointer,
                    &format!("{number} is no longer available."),
                ));
            }
            if !self.offered.contains(number) {
                return Err(invalid(
                    &pointer,
                    &format!(
                        "{number} was not returned by an available phone number search; only searched numbers can be ordered."
                    ),
                ));
            }
            numbers.push(number.to_string());
        }
        Ok(numbers)
    }

    pub(super) fn get_order(&mut self, id: &str, now: DateTime<Utc>) -> ApiResponse {
        if !self.number_orders.contains_key(id) {
            return not_found("number order");
        }
        self.complete_due_orders(now, Some(id));
        data(200, self.number_orders[id].clone())
    }

    pub(super) fn list_orders(&mut self, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let matching: Vec<String> = self
            .number_orders
            .iter()
            .filter(|(_, o)| req.query.iter().all(|(k, v)| order_matches(o, k, v)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &matching {
            self.complete_due_orders(req.now, Some(id));
        }
        let mut items: Vec<&Value> = matching.iter().map(|id| &self.number_orders[id]).collect();
        sort_objects(&mut items, Some("-created_at"), "created_at", sort_key);
        paging.respond(items, Value::clone)
    }

    pub(super) fn patch_order(&mut self, id: &str, req: &ApiRequest) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let Some(order) = self.number_orders.get_mut(id) else {
            return not_found("number order");
        };
        if let Some(reference) = body.get("customer_reference") {
            order["customer_reference"] = reference.clone();
            order["updated_at"] = json!(timestamp(req.now));
            let order = order.clone();
            self.touch();
            return data(200, order);
        }
        data(200, order.clone())
    }

    /// Completes pending orders that are due, or the one named `force` whatever its due time:
    /// the order and its lines turn `success`, its numbers `active`.
    pub(super) fn complete_due_orders(&mut self, now: DateTime<Utc>, force: Option<&str>) {
        let ready: Vec<String> = self
            .order_due
            .iter()
            .filter(|(id, due)| **due <= now || force == Some(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ready {
            self.order_due.remove(&id);
            self.complete_order(&id, now);
        }
    }

    pub(super) fn complete_order(&mut self, id: &str, now: DateTime<Utc>) {
        let stamp = json!(timestamp(now));
        let failed = self.realism.fail_orders;
        let (order_status, number_status) = if failed {
            ("failure", "purchase-failed")
        } else {
            ("success", "active")
        };
        let Some(order) = self.number_orders.get_mut(id) else {
            return;
        };
        order["status"] = json!(order_status);
        order["updated_at"] = stamp.clone();
        let mut numbers = Vec::new();
        if let Some(Value::Array(lines)) = order.get_mut("phone_numbers") {
            for line in lines {
                line["status"] = json!(order_status);
                if let Some(n) = str_field(line, "phone_number") {
                    numbers.push(n.to_string());
                }
            }
        }
        for number in self.phone_numbers.values_mut() {
            let ordered =
                str_field(number, "phone_number").is_some_and(|n| numbers.iter().any(|o| o == n));
            if ordered && str_field(number, "status") == Some("purchase-pending") {
                number["status"] = json!(number_status);
                number["activated_at"] = if failed { Value::Null } else { stamp.clone() };
                number["updated_at"] = stamp.clone();
            }
        }
        self.touch();
    }

    // ---- phone numbers ---------------------------------------------------------------------

    pub(super) fn render_number(&self, number: &Value) -> Value {
        let mut out = number.clone();
        out["connection_name"] =
            json!(str_field(number, "connection_id").and_then(|c| self.connection_name(c)));
        out
    }

    pub(super) fn list_numbers(&self, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let names = self.connection_names();
        let name_of = |n: &Value| {
            str_field(n, "connection_id")
                .and_then(|id| names.get(id))
                .map_or("", String::as_str)
        };
        let mut items: Vec<&Value> = self
            .phone_numbers
            .values()
            .filter(|n| {
                req.query
                    .iter()
                    .all(|(k, v)| number_matches(n, name_of(n), k, v))
            })
            .collect();
        sort_objects(
            &mut items,
            req.query_value("sort"),
            "-created_at",
            |n, field| match field {
                "connection_name" => name_of(n).to_string(),
                _ => sort_key(n, field),
            },
        );
        paging.respond(items, |n| self.render_number(n))
    }

    /// Every connection's display name by id, for rendering and filtering numbers.
    pub(super) fn connection_names(&self) -> BTreeMap<&str, String> {
        self.fqdn_connections
            .keys()
            .chain(self.credential_connections.keys())
            .chain(self.texml_applications.keys())
            .filter_map(|id| Some((id.as_str(), self.connection_name(id)?)))
            .collect()
    }

    pub(super) fn get_number(&self, id: &str) -> ApiResponse {
        match self.phone_numbers.get(id) {
            Some(n) => data(200, self.render_number(n)),
            None => not_found("phone number"),
        }
    }

    /// The body of a write to a number, once the number is known and active: 404 for an
    /// unknown id, 422 (10015, `refusal` of its status) while its order has not completed.
    pub(super) fn active_number_write(
        &self,
        id: &str,
        req: &ApiRequest,
        refusal: impl Fn(&str) -> String,
    ) -> Result<(Map<String, Value>, &Value), ApiResponse> {
        let body = object_body(req)?;
        let Some(current) = self.phone_numbers.get(id) else {
            return Err(not_found("phone number"));
        };
        match str_field(current, "status") {
            Some("active") => Ok((body, current)),
            status => Err(error(
                422,
                "10015",
                "Bad Request",
                &refusal(status.unwrap_or("not active")),
                None,
            )),
        }
    }

    pub(super) fn patch_number(&mut self, id: &str, req: &ApiRequest) -> ApiResponse {
        let (body, current) = match self.active_number_write(id, req, |status| {
            format!("The phone number is {status} and cannot be updated until its order completes.")
        }) {
            Ok(found) => found,
            Err(response) => return response,
        };
        if let Err(response) = self.validate_number_patch(&body) {
            return response;
        }
        let mut number = current.clone();
        for key in NUMBER_PATCH_KEYS {
            if let Some(value) = body.get(*key) {
                number[*key] = match (*key, value) {
                    ("connection_id", Value::String(s)) if s.is_empty() => Value::Null,
                    _ => value.clone(),
                };
            }
        }
        if number != *current {
            number["updated_at"] = json!(timestamp(req.now));
            self.phone_numbers.insert(id.to_string(), number.clone());
            self.touch();
        }
        data(200, self.render_number(&number))
    }

    pub(super) fn validate_number_patch(
        &self,
        body: &Map<String, Value>,
    ) -> Result<(), ApiResponse> {
        match body.get("connection_id") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() || self.connection(s).is_some() => {}
            Some(_) => {
                return Err(invalid(
                    "/connection_id",
                    "connection_id must be the id of an existing connection or application.",
                ))
            }
        }
        if let Some(tags) = body.get("tags") {
            let ok = tags
                .as_array()
                .is_some_and(|t| t.iter().all(Value::is_string));
            if !ok {
                return Err(invalid("/tags", "tags must be an array of strings."));
            }
        }
        Ok(())
    }

    pub(super) fn release_number(&mut self, id: &str, now: DateTime<Utc>) -> ApiResponse {
        let Some(number) = self.phone_numbers.get(id) else {
            return not_found("phone number");
        };
        if number.get("deletion_lock_enabled") == Some(&Value::Bool(true)) {
            return error(
                422,
                "10015",
                "Bad Request",
                "The phone number has deletion lock enabled.",
                None,
            );
        }
        let mut released = self.render_number(number);
        self.phone_numbers.remove(id);
        released["status"] = json!("deleted");
        released["updated_at"] = json!(timestamp(now));
        self.touch();
        data(200, released)
    }
}

pub(super) fn search_result(numbers: Vec<String>) -> ApiResponse {
    let items: Vec<Value> = numbers.iter().map(|n| available_number(n)).collect();
    let meta = json!({"total_results": items.len(), "best_effort_results": 0});
    ApiResponse::json(200, &json!({"data": items, "meta": meta, "metadata": meta}))
}

pub(super) fn available_number(number: &str) -> Value {
    let npa = &number[2..5];
    let mut regions =
        vec![json!({"region_type": "country_code", "region_name": inventory::country_of(npa)})];
    if let Some((rate_center, state)) = inventory::region_of(npa) {
        regions.push(json!({"region_type": "rate_center", "region_name": rate_center}));
        regions.push(json!({"region_type": "state", "region_name": state}));
        regions.push(
            json!({"region_type": "location", "region_name": format!("{rate_center}, {state}")}),
        );
    }
    let features: Vec<Value> = number_features(number)
        .iter()
        .map(|f| json!({"name": f}))
        .collect();
    json!({
        "record_type": "available_phone_number",
        "phone_number": number,
        "best_effort": false,
        "quickship": true,
        "reservable": true,
        "vanity_format": "",
        "features": features,
        "region_information": regions,
        "cost_information": {"currency": "USD", "monthly_cost": "1.00", "upfront_cost": "1.00"},
    })
}

pub(super) fn order_matches(order: &Value, key: &str, value: &str) -> bool {
    match key {
        "filter[customer_reference]" => str_field(order, "customer_reference") == Some(value),
        "filter[status]" => str_field(order, "status") == Some(value),
        "filter[phone_numbers.phone_number]" | "filter[phone_numbers][phone_number]" => order
            .get("phone_numbers")
            .and_then(Value::as_array)
            .is_some_and(|lines| {
                lines
                    .iter()
                    .any(|l| str_field(l, "phone_number") == Some(value))
            }),
        _ => true,
    }
}

pub(super) fn number_matches(
    number: &Value,
    connection_name: &str,
    key: &str,
    value: &str,
) -> bool {
    match key {
        "filter[phone_number]" => {
            let digits = str_field(number, "phone_number")
                .unwrap_or_default()
                .trim_start_matches('+');
            value.len() >= 3 && value.bytes().all(|b| b.is_ascii_digit()) && digits.contains(value)
        }
        "filter[tag]" => number
            .get("tags")
            .and_then(Value::as_array)
            .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(value))),
        "filter[status]" => str_field(number, "status") == Some(&value.replace('_', "-")),
        "filter[connection_id]" => str_field(number, "connection_id") == Some(value),
        "filter[voice.connection_name][contains]" => connection_name.contains(value),
        "filter[voice.connection_name][starts_with]" => connection_name.starts_with(value),
        "filter[voice.connection_name][ends_with]" => connection_name.ends_with(value),
        "filter[voice.connection_name][eq]" => connection_name == value,
        "filter[country_iso_alpha2]" => str_field(number, "country_iso_alpha2") == Some(value),
        "filter[customer_reference]" => str_field(number, "customer_reference") == Some(value),
        "filter[billing_group_id]" => str_field(number, "billing_group_id") == Some(value),
        "filter[number_type][eq]" => str_field(number, "phone_number_type") == Some(value),
        "filter[source]" => match value {
            "purchased" => str_field(number, "source_type") == Some("number_order"),
            "ported" => str_field(number, "source_type") == Some("port_request"),
            _ => false,
        },
        _ => true,
    }
}
