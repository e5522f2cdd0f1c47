//! Elastic SIP Trunking v1: trunks, their phone numbers and origination URLs.

use super::*;

impl TwilioState {
    pub(super) fn trunking(&mut self, req: &ApiRequest, route: &[&str]) -> ApiResponse {
        match (req.method, route) {
            ("GET", ["Trunks"]) => self.list_trunks(req),
            ("POST", ["Trunks"]) => self.create_trunk(req),
            (_, ["Trunks", sid, rest @ ..]) if !self.trunks.contains_key(*sid) => {
                let _ = rest;
                not_found(req.path).with_resource(Some(*sid))
            }
            ("GET", ["Trunks", sid]) => {
                ApiResponse::json(200, &self.render_trunk(&self.trunks[*sid], req.base_url))
                    .with_resource(Some(*sid))
            }
            ("POST", ["Trunks", sid]) => self.update_trunk(sid, req).with_resource(Some(*sid)),
            ("DELETE", ["Trunks", sid]) => {
                self.delete_trunk(sid, req.now).with_resource(Some(*sid))
            }
            ("GET", ["Trunks", sid, "PhoneNumbers"]) => {
                self.list_trunk_numbers(sid, req).with_resource(Some(*sid))
            }
            ("POST", ["Trunks", sid, "PhoneNumbers"]) => {
                self.attach_number(sid, req).with_resource(Some(*sid))
            }
            ("GET", ["Trunks", sid, "PhoneNumbers", pn]) => self
                .get_trunk_number(sid, pn, req)
                .with_resource(Some(*sid)),
            ("DELETE", ["Trunks", sid, "PhoneNumbers", pn]) => {
                self.detach_number(sid, pn, req).with_resource(Some(*sid))
            }
            ("GET", ["Trunks", sid, "OriginationUrls"]) => {
                self.list_origination(sid, req).with_resource(Some(*sid))
            }
            ("POST", ["Trunks", sid, "OriginationUrls"]) => {
                self.create_origination(sid, req).with_resource(Some(*sid))
            }
            (method, ["Trunks", sid, "OriginationUrls", ou]) => self
                .origination(method, sid, ou, req)
                .with_resource(Some(*sid)),
            _ => not_found(req.path),
        }
    }

    pub(super) fn list_trunks(&self, req: &ApiRequest) -> ApiResponse {
        let mut trunks: Vec<&Trunk> = self.trunks.values().collect();
        trunks.sort_by(|a, b| (a.created, &a.sid).cmp(&(b.created, &b.sid)));
        let items: Vec<Value> = trunks
            .iter()
            .map(|t| self.render_trunk(t, req.base_url))
            .collect();
        v1_list(req, "/v1/Trunks", "trunks", items)
    }

    pub(super) fn create_trunk(&mut self, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        let sid = self.peek_sid("TK");
        let mut trunk = Trunk {
            sid: sid.clone(),
            friendly_name: None,
            domain_name: None,
            disaster_recovery_url: None,
            disaster_recovery_method: None,
            transfer_mode: "disable-all".into(),
            transfer_caller_id: "from-transferee".into(),
            secure: false,
            cnam_lookup_enabled: false,
            created: req.now,
            updated: req.now,
        };
        if let Err(response) = self.apply_trunk_form(&mut trunk, &form, req.now) {
            return response;
        }
        let sid = self.next_sid("TK");
        trunk.sid = sid.clone();
        self.trunks.insert(sid.clone(), trunk);
        self.touch();
        ApiResponse::json(201, &self.render_trunk(&self.trunks[&sid], req.base_url))
            .with_resource(Some(sid))
    }

    pub(super) fn peek_sid(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}",
            hex_digest(&format!("sandbox:{prefix}:{}", self.next_seq + 1), 32)
        )
    }

    pub(super) fn update_trunk(&mut self, sid: &str, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        let mut trunk = self.trunks[sid].clone();
        if let Err(response) = self.apply_trunk_form(&mut trunk, &form, req.now) {
            return response;
        }
        if trunk != self.trunks[sid] {
            trunk.updated = req.now;
            self.trunks.insert(sid.to_string(), trunk);
            self.touch();
        }
        ApiResponse::json(200, &self.render_trunk(&self.trunks[sid], req.base_url))
    }

    pub(super) fn apply_trunk_form(
        &self,
        trunk: &mut Trunk,
        form: &Form,
        now: DateTime<Utc>,
    ) -> Result<(), ApiResponse> {
        if let Some(name) = form.get("FriendlyName") {
            trunk.friendly_name = Some(name.to_string());
        }
        if let Some(domain) = form.get("DomainName") {
            if !is_trunk_domain(domain) {
                return Err(error(
                    400,
                    21245,
                    &format!("DomainName {domain} must use letters, digits and '-' and end in pstn.twilio.com"),
                ));
            }
            let taken = self.trunks.values().any(|t| {
                t.sid != trunk.sid
                    && t.domain_name
                        .as_deref()
                        .is_some_and(|d| d.eq_ignore_ascii_case(domain))
            });
            if taken {
                return Err(error(
                    400,
                    21248,
                    &format!("DomainName {domain} is already in use"),
                ));
            }
            let reserved = self
                .reserved_domains
                .get(&domain.to_ascii_lowercase())
                .is_some_and(|until| *until > now);
            if reserved && trunk.domain_name.as_deref() != Some(domain) {
                return Err(error(
                    400,
                    21248,
                    &format!("DomainName {domain} is already in use: the domain of a deleted trunk stays reserved for up to 30 days"),
                ));
            }
            trunk.domain_name = Some(domain.to_string());
        }
        if let Some(url) = form.get("DisasterRecoveryUrl") {
            trunk.disaster_recovery_url = (!url.is_empty()).then(|| url.to_string());
        }
        if let Some(method) = form.one_of("DisasterRecoveryMethod", &["GET", "POST"])? {
            trunk.disaster_recovery_method = Some(method.to_ascii_uppercase());
        }
        if let Some(mode) =
            form.one_of("TransferMode", &["disable-all", "enable-all", "sip-only"])?
        {
            trunk.transfer_mode = mode;
        }
        if let Some(caller) =
            form.one_of("TransferCallerId", &["from-transferee", "from-transferor"])?
        {
            trunk.transfer_caller_id = caller;
        }
        if let Some(secure) = form.bool("Secure")? {
            trunk.secure = secure;
        }
        if let Some(cnam) = form.bool("CnamLookupEnabled")? {
            trunk.cnam_lookup_enabled = cnam;
        }
        Ok(())
    }

    pub(super) fn delete_trunk(&mut self, sid: &str, now: DateTime<Utc>) -> ApiResponse {
        let removed = self.trunks.remove(sid);
        let days = i64::from(self.domain_reservation_days);
        if let Some(domain) = removed.and_then(|t| t.domain_name).filter(|_| days > 0) {
            self.reserved_domains.insert(
                domain.to_ascii_lowercase(),
                now + chrono::Duration::days(days),
            );
        }
        self.origination_urls.retain(|_, o| o.trunk_sid != sid);
        for number in self.numbers.values_mut() {
            if number.trunk_sid.as_deref() == Some(sid) {
                number.trunk_sid = None;
            }
        }
        self.touch();
        ApiResponse::empty(204)
    }

    pub(super) fn render_trunk(&self, t: &Trunk, base: &str) -> Value {
        let url = format!("{base}/v1/Trunks/{}", t.sid);
        json!({
            "sid": t.sid,
            "account_sid": TWILIO_ACCOUNT_SID,
            "friendly_name": t.friendly_name,
            "domain_name": t.domain_name,
            "disaster_recovery_url": t.disaster_recovery_url,
            "disaster_recovery_method": t.disaster_recovery_method,
            "secure": t.secure,
            "recording": {"mode": "do-not-record", "trim": "do-not-trim"},
            "transfer_mode": t.transfer_mode,
            "transfer_caller_id": t.transfer_caller_id,
            "cnam_lookup_enabled": t.cnam_lookup_enabled,
            "auth_type": "",
            "auth_type_set": [],
            "symmetric_rtp_enabled": false,
            "date_created": iso(t.created),
            "date_updated": iso(t.updated),
            "url": url,
            "links": {
                "origination_urls": format!("{url}/OriginationUrls"),
                "credential_lists": format!("{url}/CredentialLists"),
                "ip_access_control_lists": format!("{url}/IpAccessControlLists"),
                "phone_numbers": format!("{url}/PhoneNumbers"),
                "recording": format!("{url}/Recording"),
            },
        })
    }

    pub(super) fn trunk_numbers(&self, trunk: &str) -> Vec<&IncomingNumber> {
        let mut numbers: Vec<&IncomingNumber> = self
            .numbers
            .values()
            .filter(|n| n.trunk_sid.as_deref() == Some(trunk))
            .collect();
        numbers.sort_by(|a, b| (a.created, &a.sid).cmp(&(b.created, &b.sid)));
        numbers
    }

    pub(super) fn list_trunk_numbers(&self, trunk: &str, req: &ApiRequest) -> ApiResponse {
        let items = self
            .trunk_numbers(trunk)
            .into_iter()
            .map(|n| render_trunk_number(n, trunk, req.base_url))
            .collect();
        v1_list(
            req,
            &format!("/v1/Trunks/{trunk}/PhoneNumbers"),
            "phone_numbers",
            items,
        )
    }

    pub(super) fn attach_number(&mut self, trunk: &str, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        let pn = match form.required("PhoneNumberSid") {
            Ok(pn) => pn.to_string(),
            Err(response) => return response,
        };
        let Some(number) = self.numbers.get_mut(&pn) else {
            return error(
                400,
                21421,
                &format!("PhoneNumberSid {pn} is not a phone number of this account"),
            );
        };
        match number.trunk_sid.as_deref() {
            Some(current) if current == trunk => {
                return error(
                    400,
                    21222,
                    &format!("Phone number {pn} is already associated with this trunk"),
                )
            }
            Some(other) => {
                return error(
                    400,
                    21223,
                    &format!("Phone number {pn} is already associated with trunk {other}"),
                )
            }
            None => {}
        }
        number.trunk_sid = Some(trunk.to_string());
        number.voice_application_sid = None;
        number.updated = req.now;
        let rendered = render_trunk_number(number, trunk, req.base_url);
        self.touch();
        ApiResponse::json(201, &rendered)
    }

    pub(super) fn get_trunk_number(&self, trunk: &str, pn: &str, req: &ApiRequest) -> ApiResponse {
        match self
            .numbers
            .get(pn)
            .filter(|n| n.trunk_sid.as_deref() == Some(trunk))
        {
            Some(n) => ApiResponse::json(200, &render_trunk_number(n, trunk, req.base_url)),
            None => not_found(req.path),
        }
    }

    pub(super) fn detach_number(&mut self, trunk: &str, pn: &str, req: &ApiRequest) -> ApiResponse {
        match self
            .numbers
            .get_mut(pn)
            .filter(|n| n.trunk_sid.as_deref() == Some(trunk))
        {
            Some(n) => {
                n.trunk_sid = None;
                n.updated = req.now;
                self.touch();
                ApiResponse::empty(204)
            }
            None => not_found(req.path),
        }
    }

    pub(super) fn list_origination(&self, trunk: &str, req: &ApiRequest) -> ApiResponse {
        let mut urls: Vec<&OriginationUrl> = self
            .origination_urls
            .values()
            .filter(|o| o.trunk_sid == trunk)
            .collect();
        urls.sort_by(|a, b| (a.created, &a.sid).cmp(&(b.created, &b.sid)));
        let items = urls
            .iter()
            .map(|o| render_origination(o, req.base_url))
            .collect();
        v1_list(
            req,
            &format!("/v1/Trunks/{trunk}/OriginationUrls"),
            "origination_urls",
            items,
        )
    }

    pub(super) fn create_origination(&mut self, trunk: &str, req: &ApiRequest) -> ApiResponse {
        let form = match form_of(req) {
            Ok(form) => form,
            Err(response) => return response,
        };
        for key in ["FriendlyName", "SipUrl", "Priority", "Weight", "Enabled"] {
            if form.get(key).is_none() {
                return missing(key);
            }
        }
        let mut url = OriginationUrl {
            sid: String::new(),
            trunk_sid: trunk.to_string(),
            friendly_name: String::new(),
            sip_url: String::new(),
            priority: 10,
            weight: 10,
            enabled: true,
            created: req.now,
            updated: req.now,
        };
        if let Err(response) = apply_origination_form(&mut url, &form) {
            return response;
        }
        url.sid = self.next_sid("OU");
        let rendered = render_origination(&url, req.base_url);
        self.origination_urls.insert(url.sid.clone(), url);
        self.touch();
        ApiResponse::json(201, &rendered)
    }

    pub(super) fn origination(
        &mut self,
        method: &str,
        trunk: &str,
        sid: &str,
        req: &ApiRequest,
    ) -> ApiResponse {
        let Some(current) = self
            .origination_urls
            .get(sid)
            .filter(|o| o.trunk_sid == trunk)
            .cloned()
        else {
            return not_found(req.path);
        };
        match method {
            "GET" => ApiResponse::json(200, &render_origination(&current, req.base_url)),
            "POST" => {
                let form = match form_of(req) {
                    Ok(form) => form,
                    Err(response) => return response,
                };
                let mut url = current.clone();
                if let Err(response) = apply_origination_form(&mut url, &form) {
                    return response;
                }
                if url != current {
                    url.updated = req.now;
                    self.origination_urls.insert(sid.to_string(), url.clone());
                    self.touch();
                }
                ApiResponse::json(200, &render_origination(&url, req.base_url))
            }
            "DELETE" => {
                self.origination_urls.remove(sid);
                self.touch();
                ApiResponse::empty(204)
            }
            _ => not_found(req.path),
        }
    }
}

pub(super) fn apply_origination_form(
    url: &mut OriginationUrl,
    form: &Form,
) -> Result<(), ApiResponse> {
    if let Some(name) = form.get("FriendlyName") {
        url.friendly_name = name.to_string();
    }
    if let Some(sip) = form.get("SipUrl") {
        if !sip.starts_with("sip:") || sip.len() <= 4 {
            return Err(error(
                400,
                21204,
                &format!("SipUrl {sip} must use the sip: scheme"),
            ));
        }
        url.sip_url = sip.to_string();
    }
    if let Some(priority) = form.number("Priority", 0..=65535)? {
        url.priority = priority;
    }
    if let Some(weight) = form.number("Weight", 1..=65535)? {
        url.weight = weight;
    }
    if let Some(enabled) = form.bool("Enabled")? {
        url.enabled = enabled;
    }
    Ok(())
}

pub(super) fn render_trunk_number(n: &IncomingNumber, trunk: &str, base: &str) -> Value {
    json!({
        "sid": n.sid,
        "trunk_sid": trunk,
        "account_sid": TWILIO_ACCOUNT_SID,
        "phone_number": n.phone_number,
        "friendly_name": n.friendly_name,
        "capabilities": {"voice": true, "sms": !is_toll_free(&n.phone_number), "mms": !is_toll_free(&n.phone_number), "fax": false},
        "address_requirements": "none",
        "api_version": API_VERSION,
        "beta": false,
        "voice_url": n.voice_url,
        "voice_method": n.voice_method,
        "voice_fallback_url": n.voice_fallback_url,
        "voice_fallback_method": n.voice_fallback_method,
        "voice_caller_id_lookup": n.voice_caller_id_lookup,
        "voice_application_sid": n.voice_application_sid,
        "sms_url": n.sms_url,
        "sms_method": n.sms_method,
        "sms_fallback_url": "",
        "sms_fallback_method": "POST",
        "sms_application_sid": "",
        "status_callback": n.status_callback,
        "status_callback_method": n.status_callback_method,
        "date_created": iso(n.created),
        "date_updated": iso(n.updated),
        "url": format!("{base}/v1/Trunks/{trunk}/PhoneNumbers/{}", n.sid),
        "links": {},
    })
}

pub(super) fn render_origination(o: &OriginationUrl, base: &str) -> Value {
    json!({
        "sid": o.sid,
        "account_sid": TWILIO_ACCOUNT_SID,
        "trunk_sid": o.trunk_sid,
        "friendly_name": o.friendly_name,
        "sip_url": o.sip_url,
        "priority": o.priority,
        "weight": o.weight,
        "enabled": o.enabled,
        "date_created": iso(o.created),
        "date_updated": iso(o.updated),
        "url": format!("{base}/v1/Trunks/{}/OriginationUrls/{}", o.trunk_sid, o.sid),
    })
}

pub(super) fn is_trunk_domain(domain: &str) -> bool {
    domain.ends_with(".pstn.twilio.com")
        && domain.len() > ".pstn.twilio.com".len()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
