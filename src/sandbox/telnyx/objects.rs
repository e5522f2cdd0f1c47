//! Create, read, update, delete and list of the configuration objects (connections, FQDNs,
//! outbound voice profiles, TeXML applications).

use super::*;

impl TelnyxState {
    pub(super) fn create_object(
        &mut self,
        collection: Collection,
        req: &ApiRequest,
    ) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        if let Some(key) = collection
            .required_on_create()
            .iter()
            .find(|k| !is_given(body.get(**k)))
        {
            return missing(&format!("/{key}"));
        }
        if collection == Collection::Fqdns {
            if let Err(response) = Self::validate_fqdn_request(&body) {
                return response;
            }
        }
        let id = self.peek_id();
        let mut object = defaults(collection, &id, req.now);
        merge_accepted(&mut object, &body, collection);
        if collection == Collection::Fqdns && !body.contains_key("port") {
            object["port"] = default_port(str_field(&object, "dns_record_type"));
        }
        if let Err(response) = self.validate(collection, &id, &object) {
            return response;
        }
        let id = self.next_id();
        self.table_mut(collection)
            .insert(id.clone(), object.clone());
        self.touch();
        // spec3.yml: every create answers 201 except CreateVoiceProfile, which answers 200.
        let status = if collection == Collection::OutboundVoiceProfiles {
            200
        } else {
            201
        };
        data(status, object).with_resource(Some(id))
    }

    /// `GET` / `PATCH /v2/fqdn_connections/{id}/fqdn_authentication`: the connection's
    /// credentials (telnyx-python, `fqdn_connections.fqdn_authentication`), stored on the
    /// connection so its own GET shows them.
    pub(super) fn fqdn_authentication(&mut self, id: &str, req: &ApiRequest) -> ApiResponse {
        let Some(current) = self.fqdn_connections.get(id) else {
            return not_found("fqdn_connection");
        };
        let mut object = current.clone();
        if req.method == "PATCH" {
            let body = match object_body(req) {
                Ok(body) => body,
                Err(response) => return response,
            };
            for key in FQDN_AUTH_KEYS {
                if let Some(value) = body.get(*key) {
                    object[*key] = value.clone();
                }
            }
            if let Err(response) = self.validate_unique_user(id, &object) {
                return response;
            }
            if object != *current {
                object["updated_at"] = json!(timestamp(req.now));
                self.fqdn_connections.insert(id.to_string(), object.clone());
                self.touch();
            }
        }
        let mut auth = json!({"id": id, "connection_id": id, "record_type": "fqdn_authentication"});
        for key in FQDN_AUTH_KEYS {
            auth[*key] = object.get(*key).cloned().unwrap_or(Value::Null);
        }
        auth["microsoft_teams_sbc"] = object
            .get("microsoft_teams_sbc")
            .cloned()
            .unwrap_or(json!(false));
        data(200, auth)
    }

    /// The id the next create will get, so validation can see it before it is taken.
    pub(super) fn peek_id(&self) -> String {
        (2_960_000_000_000_000_000u64 + (self.next_seq + 1) * 7).to_string()
    }

    pub(super) fn patch_object(
        &mut self,
        collection: Collection,
        id: &str,
        req: &ApiRequest,
    ) -> ApiResponse {
        let body = match object_body(req) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let Some(current) = self.table(collection).get(id) else {
            return not_found(collection.record_type());
        };
        if let Some(key) = collection
            .required_on_patch()
            .iter()
            .find(|k| !is_given(body.get(**k)))
        {
            return missing(&format!("/{key}"));
        }
        if collection == Collection::Fqdns {
            if let Err(response) = Self::validate_fqdn_request(&body) {
                return response;
            }
        }
        let mut object = current.clone();
        merge_accepted(&mut object, &body, collection);
        if let Err(response) = self.validate(collection, id, &object) {
            return response;
        }
        if object != *current {
            object["updated_at"] = json!(timestamp(req.now));
            self.table_mut(collection)
                .insert(id.to_string(), object.clone());
            self.touch();
        }
        data(200, object)
    }

    pub(super) fn delete_object(&mut self, collection: Collection, id: &str) -> ApiResponse {
        if !self.table(collection).contains_key(id) {
            return not_found(collection.record_type());
        }
        if collection.is_connection() && self.numbers_on(id) > 0 {
            return in_use(&format!(
                "The connection {id} still has {} phone number(s) assigned.",
                self.numbers_on(id)
            ));
        }
        if collection == Collection::OutboundVoiceProfiles {
            let users = self.connections_using_profile(id);
            if users > 0 {
                return in_use(&format!(
                    "The outbound voice profile {id} is used by {users} connection(s)."
                ));
            }
        }
        let object = self
            .table_mut(collection)
            .remove(id)
            .expect("checked above");
        match collection {
            Collection::FqdnConnections => self
                .fqdns
                .retain(|_, f| str_field(f, "connection_id") != Some(id)),
            Collection::Fqdns => self.forget_fqdn(id),
            _ => {}
        }
        self.touch();
        data(200, object)
    }

    pub(super) fn forget_fqdn(&mut self, fqdn_id: &str) {
        for connection in self.fqdn_connections.values_mut() {
            for slot in [
                "default_primary_fqdn_id",
                "default_secondary_fqdn_id",
                "default_tertiary_fqdn_id",
            ] {
                if nested_str(connection, "inbound", slot) == Some(fqdn_id) {
                    connection["inbound"][slot] = Value::Null;
                }
            }
        }
    }

    pub(super) fn numbers_on(&self, connection_id: &str) -> usize {
        self.phone_numbers
            .values()
            .filter(|n| str_field(n, "connection_id") == Some(connection_id))
            .count()
    }

    pub(super) fn connections_using_profile(&self, ovp_id: &str) -> usize {
        self.fqdn_connections
            .values()
            .chain(self.credential_connections.values())
            .chain(self.texml_applications.values())
            .filter(|c| nested_str(c, "outbound", "outbound_voice_profile_id") == Some(ovp_id))
            .count()
    }

    pub(super) fn validate(
        &self,
        collection: Collection,
        id: &str,
        object: &Value,
    ) -> Result<(), ApiResponse> {
        match collection {
            Collection::FqdnConnections => {
                self.validate_connection_common(object)?;
                self.validate_fqdn_defaults(id, object)?;
                self.validate_unique_user(id, object)
            }
            Collection::CredentialConnections => {
                self.validate_connection_common(object)?;
                validate_credentials(object)?;
                self.validate_unique_user(id, object)
            }
            Collection::Fqdns => self.validate_fqdn(object),
            Collection::OutboundVoiceProfiles => validate_profile(object),
            Collection::TexmlApplications => {
                validate_texml(object)?;
                self.validate_profile_link(object)
            }
        }
    }

    pub(super) fn validate_connection_common(&self, object: &Value) -> Result<(), ApiResponse> {
        if !object.get("connection_name").is_some_and(Value::is_string) {
            return Err(invalid(
                "/connection_name",
                "connection_name must be a string.",
            ));
        }
        if let Some(t) = object.get("transport_protocol") {
            if !matches!(t.as_str(), Some("UDP" | "TCP" | "TLS")) {
                return Err(invalid(
                    "/transport_protocol",
                    "transport_protocol must be one of UDP, TCP, TLS.",
                ));
            }
        }
        if let Some(f) = object
            .get("inbound")
            .and_then(|i| i.get("ani_number_format"))
        {
            if !f.as_str().is_some_and(|f| ANI_FORMATS.contains(&f)) {
                return Err(invalid(
                    "/inbound/ani_number_format",
                    "ani_number_format must be one of +E.164, E.164, +E.164-national, E.164-national.",
                ));
            }
        }
        if let Some(f) = object
            .get("inbound")
            .and_then(|i| i.get("dnis_number_format"))
        {
            if !f.as_str().is_some_and(|f| DNIS_FORMATS.contains(&f)) {
                return Err(invalid(
                    "/inbound/dnis_number_format",
                    "dnis_number_format must be one of +e164, e164, national, sip_username.",
                ));
            }
        }
        if let Some(active) = object.get("active") {
            if !active.is_boolean() {
                return Err(invalid("/active", "active must be a boolean."));
            }
        }
        self.validate_profile_link(object)
    }

    pub(super) fn validate_profile_link(&self, object: &Value) -> Result<(), ApiResponse> {
        match object
            .get("outbound")
            .and_then(|o| o.get("outbound_voice_profile_id"))
        {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(id)) if id.is_empty() => Ok(()),
            Some(Value::String(id)) if self.outbound_voice_profiles.contains_key(id) => Ok(()),
            Some(_) => Err(invalid(
                "/outbound/outbound_voice_profile_id",
                "outbound_voice_profile_id must be the id of an existing outbound voice profile.",
            )),
        }
    }

    pub(super) fn validate_fqdn_defaults(
        &self,
        connection_id: &str,
        object: &Value,
    ) -> Result<(), ApiResponse> {
        for slot in [
            "default_primary_fqdn_id",
            "default_secondary_fqdn_id",
            "default_tertiary_fqdn_id",
        ] {
            match object.get("inbound").and_then(|i| i.get(slot)) {
                None | Some(Value::Null) => {}
                Some(Value::String(fqdn_id))
                    if self
                        .fqdns
                        .get(fqdn_id)
                        .is_some_and(|f| str_field(f, "connection_id") == Some(connection_id)) => {}
                Some(_) => {
                    return Err(invalid(
                        &format!("/inbound/{slot}"),
                        &format!("{slot} must be the id of an FQDN of this connection."),
                    ))
                }
            }
        }
        Ok(())
    }

    pub(super) fn validate_unique_user(&self, id: &str, object: &Value) -> Result<(), ApiResponse> {
        let Some(user) = str_field(object, "user_name").filter(|u| !u.is_empty()) else {
            return Ok(());
        };
        let clash = self
            .fqdn_connections
            .iter()
            .chain(self.credential_connections.iter())
            .any(|(other, c)| {
                other != id
                    && str_field(c, "user_name").is_some_and(|u| u.eq_ignore_ascii_case(user))
            });
        if clash {
            return Err(error(
                422,
                "10012",
                "Duplicate resource",
                "user_name is already taken by another connection.",
                Some(json!({"pointer": "/user_name"})),
            ));
        }
        Ok(())
    }

    pub(super) fn validate_fqdn(&self, object: &Value) -> Result<(), ApiResponse> {
        let connection_ok = str_field(object, "connection_id")
            .is_some_and(|c| self.fqdn_connections.contains_key(c));
        if !connection_ok {
            return Err(invalid(
                "/connection_id",
                "connection_id must be the id of an existing FQDN connection.",
            ));
        }
        let fqdn_ok = str_field(object, "fqdn").is_some_and(is_hostname);
        if !fqdn_ok {
            return Err(invalid("/fqdn", "fqdn must be a valid host name."));
        }
        if !matches!(str_field(object, "dns_record_type"), Some("a" | "srv")) {
            return Err(invalid(
                "/dns_record_type",
                "dns_record_type must be a or srv.",
            ));
        }
        match object.get("port") {
            None | Some(Value::Null) => Ok(()),
            Some(p) if p.as_u64().is_some_and(|p| (1..=65535).contains(&p)) => Ok(()),
            Some(_) => Err(invalid("/port", "port must be between 1 and 65535.")),
        }
    }

    /// spec3.yml (CreateFqdnRequest, dns_record_type): "For cases where a port is set, the DNS
    /// record type must be 'a'". A request that sets a port on an `srv` record is refused; one
    /// that turns a record into `srv` without `port: null` keeps the old port, as a merge does.
    pub(super) fn validate_fqdn_request(body: &Map<String, Value>) -> Result<(), ApiResponse> {
        let srv = body.get("dns_record_type").and_then(Value::as_str) == Some("srv");
        if srv && body.get("port").is_some_and(|p| !p.is_null()) {
            return Err(invalid(
                "/port",
                "A port can only be set with dns_record_type 'a'; an srv record takes its port from DNS.",
            ));
        }
        Ok(())
    }

    pub(super) fn list_collection(&self, collection: Collection, req: &ApiRequest) -> ApiResponse {
        let paging = match Paging::from_request(req) {
            Ok(p) => p,
            Err(response) => return response,
        };
        let mut items: Vec<&Value> = self
            .table(collection)
            .values()
            .filter(|o| {
                req.query
                    .iter()
                    .all(|(k, v)| self.object_matches(collection, o, k, v))
            })
            .collect();
        sort_objects(&mut items, req.query_value("sort"), "created_at", sort_key);
        paging.respond(items, Value::clone)
    }

    pub(super) fn object_matches(
        &self,
        collection: Collection,
        object: &Value,
        key: &str,
        value: &str,
    ) -> bool {
        match key {
            "filter[connection_name][contains]" => str_field(object, "connection_name")
                .is_some_and(|n| n.to_lowercase().contains(&value.to_lowercase())),
            "filter[connection_name]" => str_field(object, "connection_name") == Some(value),
            "filter[outbound_voice_profile_id]" => {
                nested_str(object, "outbound", "outbound_voice_profile_id") == Some(value)
            }
            "filter[name][contains]" => str_field(object, "name")
                .is_some_and(|n| n.to_lowercase().contains(&value.to_lowercase())),
            "filter[friendly_name]" => str_field(object, "friendly_name")
                .is_some_and(|n| n.to_lowercase().contains(&value.to_lowercase())),
            "filter[connection_id]" => str_field(object, "connection_id") == Some(value),
            "filter[dns_record_type]" => str_field(object, "dns_record_type") == Some(value),
            "filter[port]" => object.get("port").map(Value::to_string).as_deref() == Some(value),
            "filter[fqdn]" if collection == Collection::Fqdns => {
                str_field(object, "fqdn") == Some(value)
            }
            "filter[fqdn]" => {
                let id = str_field(object, "id").unwrap_or_default();
                self.fqdns.values().any(|f| {
                    str_field(f, "connection_id") == Some(id) && str_field(f, "fqdn") == Some(value)
                })
            }
            _ => true,
        }
    }
}
