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
        let number = number?;
        Some(Spec::TelnyxNumber(TelnyxNumberSpec {
            number,
            connection,
            tags,
        }))
    }
}
