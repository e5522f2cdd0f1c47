//! Explicit Telnyx blocks (`[telnyx.*.<name>]`), laid over what the convention produced.

use super::*;

impl Expander<'_> {
    /// A connection's `outbound_voice_profile`: a reference to a declared profile.
    fn profile_of(&mut self, field: &Opt<String>, addr: &Address) -> Option<Ref> {
        let kinds = [Kind::TelnyxOutboundVoiceProfile];
        self.optional_ref(field, &kinds, "outbound_voice_profile", addr)
    }

    pub(super) fn outbound_voice_profile(
        &mut self,
        addr: &Address,
        b: &Block<RawOutboundVoiceProfile>,
        _base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let name = self.required(&r.name, None, addr, b.span, "name");
        self.mark(addr, "enabled", &r.enabled);
        if let Some(list) = &r.whitelisted_destinations {
            self.spans
                .insert(addr, "whitelisted_destinations", span_of(list));
        }
        let countries = crate::model::canonical::countries(
            strings(&r.whitelisted_destinations)
                .unwrap_or_else(crate::model::OutboundVoiceProfileSpec::default_destinations),
        );
        let name = name?;
        Some(Spec::TelnyxOutboundVoiceProfile(OutboundVoiceProfileSpec {
            name,
            enabled: flag(&r.enabled).unwrap_or(true),
            whitelisted_destinations: countries,
        }))
    }

    pub(super) fn fqdn_connection(
        &mut self,
        addr: &Address,
        b: &Block<RawFqdnConnection>,
        _base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let name = self.required(&r.name, None, addr, b.span, "name");
        for (key, field) in [
            ("transport", &r.transport),
            ("ani_number_format", &r.ani_number_format),
            ("dnis_number_format", &r.dnis_number_format),
            ("user_name", &r.user_name),
        ] {
            self.mark(addr, key, field);
        }
        let ovp = self.profile_of(&r.outbound_voice_profile, addr);
        let password = self.secret_env(&r.password_env);
        let name = name?;
        Some(Spec::TelnyxFqdnConnection(FqdnConnectionSpec {
            connection_name: name,
            active: flag(&r.active).unwrap_or(true),
            transport_protocol: text(&r.transport)
                .map(|t| t.to_ascii_uppercase())
                .unwrap_or_else(|| "TCP".into()),
            user_name: text(&r.user_name),
            password,
            ani_number_format: text(&r.ani_number_format).unwrap_or_else(|| "+E.164".into()),
            dnis_number_format: text(&r.dnis_number_format).unwrap_or_else(|| "+e164".into()),
            outbound_voice_profile: ovp,
        }))
    }

    pub(super) fn credential_connection(
        &mut self,
        addr: &Address,
        b: &Block<RawCredentialConnection>,
        _base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let name = self.required(&r.name, None, addr, b.span, "name");
        let user = self.required(&r.user_name, None, addr, b.span, "user_name");
        self.mark(addr, "active", &r.active);
        self.mark(addr, "user_name", &r.user_name);
        let ovp = self.profile_of(&r.outbound_voice_profile, addr);
        let password = self.secret_env(&r.password_env);
        let (name, user) = (name?, user?);
        Some(Spec::TelnyxCredentialConnection(CredentialConnectionSpec {
            connection_name: name,
            active: flag(&r.active).unwrap_or(true),
            user_name: user,
            password,
            outbound_voice_profile: ovp,
        }))
    }

    pub(super) fn texml_application(
        &mut self,
        addr: &Address,
        b: &Block<RawTexmlApplication>,
        _base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let name = self.required(&r.name, None, addr, b.span, "name");
        let url = self.required(&r.voice_url, None, addr, b.span, "voice_url");
        let method = self.word(&r.voice_method, &values::VOICE_METHOD);
        let (name, url) = (name?, url?);
        Some(Spec::TelnyxTexmlApplication(TexmlApplicationSpec {
            friendly_name: name,
            voice_url: url,
            voice_method: method,
        }))
    }

    pub(super) fn fqdn(
        &mut self,
        addr: &Address,
        b: &Block<RawFqdn>,
        _base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        self.mark(addr, "fqdn", &r.fqdn);
        self.mark(addr, "default_primary", &r.default_primary);
        let connection = match &r.connection {
            Some(_) => self.optional_ref(
                &r.connection,
                &[Kind::TelnyxFqdnConnection],
                "connection",
                addr,
            ),
            None => {
                self.missing(addr, b.span, "connection");
                None
            }
        };
        let host = self.required(&r.fqdn, None, addr, b.span, "fqdn");
        let record_type = self.word(&r.dns_record_type, &values::DNS_RECORD_TYPE);
        let (connection, host) = (connection?, host?);
        Some(Spec::TelnyxFqdn(FqdnSpec {
            connection,
            fqdn: host,
            port: r.port.as_ref().map_or_else(
                || crate::model::FqdnSpec::default_port(&record_type),
                |p| *p.get_ref(),
            ),
            dns_record_type: record_type,
            default_primary: flag(&r.default_primary).unwrap_or(false),
        }))
    }

    pub(super) fn telnyx_number(
        &mut self,
        addr: &Address,
        b: &Block<RawTelnyxNumber>,
        base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let base_spec = base.and_then(|s| match s {
            Spec::TelnyxNumber(s) => Some(s),
            _ => None,
        });
        let number = match (&r.number, &base_spec) {
            (None, Some(base)) => Some(base.number.clone()),
            _ => {
                let line = RawLine {
                    number: r.number.clone(),
                    area_code: r.area_code.clone(),
                    country: r.country.clone(),
                    ..RawLine::default()
                };
                self.number_spec(&line, strings(&r.endings), addr, b.span)
            }
        };
        let connection = match &r.connection {
            Some(_) => self.optional_ref(&r.connection, &CONNECTION_KINDS, "connection", addr),
            None => base_spec.as_ref().map_or_else(
                || self.defaults.connection.clone().map(Ref::Addr),
                |s| s.connection.clone(),
            ),
        };
        let tags = strings(&r.tags)
            .or_else(|| base_spec.as_ref().map(|s| s.tags.clone()))
            .unwrap_or_default();
        let mut settings = base_spec.map(|s| s.settings).unwrap_or_default();
        if r.emergency_address.is_some() {
            settings.emergency_address = self
                .number_settings(&r.emergency_address, addr)
                .emergency_address;
        }
        let number = number?;
        Some(Spec::TelnyxNumber(TelnyxNumberSpec {
            number,
            connection,
            tags,
            settings,
        }))
    }

    /// A number's own settings (issue 21) from a church line or a number block.
    pub(super) fn number_settings(
        &mut self,
        emergency_address: &Opt<String>,
        addr: &Address,
    ) -> NumberSettings {
        NumberSettings {
            emergency_address: self.optional_ref(
                emergency_address,
                &[Kind::TelnyxEmergencyAddress],
                "emergency_address",
                addr,
            ),
        }
    }

    /// `[telnyx.emergency_address.<name>]`. spec3.yml's AddressCreate requires
    /// `business_name`, `first_name`, `last_name`, `street_address`, `locality` and
    /// `country_code`; the rest are optional (empty when absent, as Telnyx answers them).
    /// `administrative_area` and `postal_code` are required here too: a US E911 address
    /// without its state and ZIP code does not validate (`/addresses/actions/validate`
    /// takes both).
    pub(super) fn emergency_address(
        &mut self,
        addr: &Address,
        b: &Block<RawEmergencyAddress>,
        _base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let need = |x: &mut Self, field: &Opt<String>, key: &str| {
            x.mark(addr, key, field);
            let v = x.required(field, None, addr, b.span, key);
            if let (Some(f), Some(v)) = (field, &v) {
                if v.trim().is_empty() {
                    x.push(
                        Problem::error(
                            ProblemKind::InvalidValue,
                            span_of(f),
                            "empty",
                            format!("`{addr}` has an empty `{key}`"),
                        )
                        .with_help(format!(
                            "give `{key}` its value: 911 sends help to this address"
                        )),
                    );
                    return None;
                }
            }
            v
        };
        let business_name = need(self, &r.business_name, "business_name");
        let first_name = need(self, &r.first_name, "first_name");
        let last_name = need(self, &r.last_name, "last_name");
        let street_address = need(self, &r.street_address, "street_address");
        let locality = need(self, &r.locality, "locality");
        let administrative_area = need(self, &r.administrative_area, "administrative_area");
        let postal_code = need(self, &r.postal_code, "postal_code");
        let country_code = need(self, &r.country_code, "country_code");
        self.mark(addr, "extended_address", &r.extended_address);
        if let Some(c) = &r.country_code {
            let code = c.get_ref();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(c),
                        "not a country code",
                        format!(
                            "`{addr}`: country_code `{code}` is not an ISO 3166-1 alpha-2 code"
                        ),
                    )
                    .with_help("use the two-letter code, e.g. \"US\""),
                );
                return None;
            }
        }
        Some(Spec::TelnyxEmergencyAddress(EmergencyAddressSpec {
            business_name: business_name?,
            first_name: first_name?,
            last_name: last_name?,
            street_address: street_address?,
            extended_address: text(&r.extended_address).unwrap_or_default(),
            locality: locality?,
            administrative_area: administrative_area?,
            postal_code: postal_code?,
            country_code: country_code?.to_ascii_uppercase(),
        }))
    }
}
