//! Core API v2010: IncomingPhoneNumbers (list with relative paging, fetch, update, release).

use super::*;

impl TwilioState {
    pub(super) fn core(&mut self, req: &ApiRequest, route: &[&str]) -> ApiResponse {
        let [accounts, account, rest @ ..] = route else {
            return not_found(req.path);
        };
        if *accounts != "Accounts" {
            return not_found(req.path);
        }
        if *account != TWILIO_ACCOUNT_SID {
            return unauthorized();
        }
        match (req.method, rest) {
            ("GET", ["IncomingPhoneNumbers.json"]) => self.list_incoming(req),
            (method, ["IncomingPhoneNumbers", file]) => match file.strip_suffix(".json") {
                Some(sid) => self.incoming(method, sid, req).with_resource(Some(sid)),
                None => not_found(req.path),
            },
            _ => not_found(req.path),
        }
    }

    pub(super) fn incoming(&mut self, method: &str, sid: &str, req: &ApiRequest) -> ApiResponse {
        if !self.numbers.contains_key(sid) {
            return not_found(req.path);
        }
        match method {
            "GET" => ApiResponse::json(200, &self.render_incoming(&self.numbers[sid])),
            "POST" => self.update_incoming(sid, req),
            "DELETE" => {
                self.numbers.remove(sid);
                self.touch();
                ApiResponse::empty(204)
            }
            _ => not_found(req.path),
        }
    }

    pub(super) fn list_incoming(&self, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let number_filter = req.query_value("PhoneNumber");
        let name_filter = req.query_value("FriendlyName");
        let mut matching: Vec<&IncomingNumber> = self
            .numbers
            .values()
            .filter(|n| number_filter.is_none_or(|f| phone_matches(&n.phone_number, f)))
            .filter(|n| name_filter.is_none_or(|f| n.friendly_name == f))
            .collect();
        matching.sort_by(|a, b| (a.created, &a.sid).cmp(&(b.created, &b.sid)));
        let filters: Vec<(String, String)> = [
            ("PhoneNumber", number_filter),
            ("FriendlyName", name_filter),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
        .collect();
        let page = page_of(matching, paging.page * paging.size, paging.size);
        let base =
            format!("/{API_VERSION}/Accounts/{TWILIO_ACCOUNT_SID}/IncomingPhoneNumbers.json");
        let link = |page: usize, token: Option<String>| {
            format!("{base}?{}", paging.query(&filters, page, token))
        };
        let start = paging.page * paging.size;
        let has_next = start + page.items.len() < page.total;
        let next = has_next.then(|| {
            link(
                paging.page + 1,
                page.items.last().map(|n| format!("PA{}", n.sid)),
            )
        });
        let previous = (paging.page > 0).then(|| {
            link(
                paging.page - 1,
                page.items.first().map(|n| format!("PB{}", n.sid)),
            )
        });
        let items: Vec<Value> = page.items.iter().map(|n| self.render_incoming(n)).collect();
        let end = (start + items.len()).saturating_sub(1).max(start);
        ApiResponse::json(
            200,
            &json!({
                "incoming_phone_numbers": items,
                "first_page_uri": link(0, None),
                "next_page_uri": next,
                "previous_page_uri": previous,
                "uri": link(paging.page, None),
                "page": paging.page,
                "page_size": paging.size,
                "start": start,
                "end": end,
            }),
        )
    }

    pub(super) fn update_incoming(&mut self, sid: &str, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        let mut number = self.numbers[sid].clone();
        if let Err(response) = self.apply_number_form(&mut number, &form) {
            return response;
        }
        if number != self.numbers[sid] {
            number.updated = req.now;
            self.numbers.insert(sid.to_string(), number.clone());
            self.touch();
        }
        ApiResponse::json(200, &self.render_incoming(&number))
    }

    pub(super) fn apply_number_form(
        &self,
        number: &mut IncomingNumber,
        form: &Form,
    ) -> Result<(), ApiResponse> {
        let methods = ["GET", "POST"];
        if let Some(trunk) = form.get("TrunkSid") {
            if trunk.is_empty() {
                number.trunk_sid = None;
            } else if self.trunks.contains_key(trunk) {
                number.trunk_sid = Some(trunk.to_string());
                number.voice_application_sid = None;
            } else {
                return Err(error(
                    400,
                    21210,
                    &format!("TrunkSid {trunk} is not a trunk of this account"),
                ));
            }
        }
        if let Some(app) = form.get("VoiceApplicationSid") {
            if app.is_empty() {
                number.voice_application_sid = None;
            } else if app.starts_with("AP") && app.len() == 34 {
                number.voice_application_sid = Some(app.to_string());
                number.trunk_sid = None;
            } else {
                return Err(error(
                    400,
                    21218,
                    &format!("VoiceApplicationSid {app} is not valid"),
                ));
            }
        }
        for (key, field) in [
            ("FriendlyName", &mut number.friendly_name),
            ("VoiceUrl", &mut number.voice_url),
            ("VoiceFallbackUrl", &mut number.voice_fallback_url),
            ("SmsUrl", &mut number.sms_url),
            ("StatusCallback", &mut number.status_callback),
        ] {
            if let Some(value) = form.get(key) {
                *field = value.to_string();
            }
        }
        for (key, field) in [
            ("VoiceMethod", &mut number.voice_method),
            ("VoiceFallbackMethod", &mut number.voice_fallback_method),
            ("SmsMethod", &mut number.sms_method),
            ("StatusCallbackMethod", &mut number.status_callback_method),
        ] {
            if let Some(value) = form.one_of(key, &methods)? {
                *field = value.to_ascii_uppercase();
            }
        }
        if let Some(mode) = form.one_of("VoiceReceiveMode", &["voice", "fax"])? {
            number.voice_receive_mode = mode;
        }
        if let Some(lookup) = form.bool("VoiceCallerIdLookup")? {
            number.voice_caller_id_lookup = lookup;
        }
        Ok(())
    }

    pub(super) fn render_incoming(&self, n: &IncomingNumber) -> Value {
        json!({
            "sid": n.sid,
            "account_sid": TWILIO_ACCOUNT_SID,
            "phone_number": n.phone_number,
            "friendly_name": n.friendly_name,
            "capabilities": {"voice": true, "sms": !is_toll_free(&n.phone_number), "mms": !is_toll_free(&n.phone_number), "fax": false},
            "status": "in-use",
            "type": if is_toll_free(&n.phone_number) { "toll-free" } else { "local" },
            "origin": "twilio",
            "trunk_sid": n.trunk_sid,
            "voice_url": n.voice_url,
            "voice_method": n.voice_method,
            "voice_fallback_url": n.voice_fallback_url,
            "voice_fallback_method": n.voice_fallback_method,
            "voice_caller_id_lookup": n.voice_caller_id_lookup,
            "voice_application_sid": n.voice_application_sid.clone().unwrap_or_default(),
            "voice_receive_mode": n.voice_receive_mode,
            "sms_url": n.sms_url,
            "sms_method": n.sms_method,
            "sms_fallback_url": "",
            "sms_fallback_method": "POST",
            "sms_application_sid": "",
            "status_callback": n.status_callback,
            "status_callback_method": n.status_callback_method,
            "address_sid": null,
            "address_requirements": "none",
            "emergency_status": "Inactive",
            "emergency_address_sid": null,
            "emergency_address_status": "unregistered",
            "identity_sid": null,
            "bundle_sid": null,
            "beta": false,
            "api_version": API_VERSION,
            "date_created": rfc2822(n.created),
            "date_updated": rfc2822(n.updated),
            "uri": format!("/{API_VERSION}/Accounts/{TWILIO_ACCOUNT_SID}/IncomingPhoneNumbers/{}.json", n.sid),
        })
    }
}

/// Twilio's `PhoneNumber` filter: a partial number where `*` stands for any digit.
pub(super) fn phone_matches(number: &str, filter: &str) -> bool {
    let digits = number.trim_start_matches('+');
    let pattern: Vec<char> = filter
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '*')
        .collect();
    if pattern.is_empty() {
        return true;
    }
    let digits: Vec<char> = digits.chars().collect();
    digits
        .windows(pattern.len())
        .any(|w| w.iter().zip(&pattern).all(|(d, p)| *p == '*' || d == p))
}

pub(super) fn is_toll_free(number: &str) -> bool {
    number.len() == 12
        && matches!(
            &number[2..5],
            "800" | "833" | "844" | "855" | "866" | "877" | "888"
        )
}
