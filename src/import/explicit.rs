//! Explicit blocks (`[telnyx.number.<name>]`, `[livekit.dispatch_rule.<name>]`, …) for every
//! live object no church claims, each field as live has it, broken ones marked.

use super::*;

impl<'a> Importer<'a> {
    /// The inbound trunk keys the convention does not produce.
    pub(super) fn trunk_extras(
        &mut self,
        block: &mut Block,
        t: &crate::model::InboundTrunkSpec,
        name: &str,
    ) {
        if !t.metadata.is_empty() {
            block.set("metadata", t.metadata.clone());
        }
        if !t.allowed_addresses.is_empty() {
            block.set("allowed_addresses", strings(&t.allowed_addresses));
        }
        if !t.allowed_numbers.is_empty() {
            block.set("allowed_numbers", strings(&t.allowed_numbers));
        }
        if !t.auth_username.is_empty() {
            block.set("auth_username", t.auth_username.clone());
        }
        if t.auth_password.is_some() {
            let addr = Address::new(Kind::LivekitInboundTrunk, name);
            let var = env_name("LIVEKIT", name, "AUTH_PASSWORD");
            self.secret_env(
                block,
                &addr,
                "auth_password_env",
                t.auth_password.as_ref(),
                var,
            );
        }
    }

    pub(super) fn declare_explicit(&mut self) {
        let in_churches: BTreeSet<(Kind, &String)> = self
            .churches
            .iter()
            .flat_map(|c| [&c.number, &c.trunk, &c.rule])
            .map(|(kind, id)| (*kind, id))
            .collect();
        let mut rest: Vec<(Address, &'a LiveObject)> = self
            .todo
            .iter()
            .filter_map(|(k, o)| {
                let addr = self.index.get(k)?;
                let in_church = in_churches.contains(&(k.0, &k.1));
                (!in_church && addr.kind != Kind::TwilioTrunkNumber).then(|| (addr.clone(), *o))
            })
            .collect();
        rest.sort_by_key(|(a, _)| (section_rank(a.kind), a.clone()));
        for (addr, obj) in rest {
            if let Some(block) = self.explicit(&addr, obj) {
                self.blocks.push(block);
                self.added.push(addr.clone());
                if let Some(tn) = self.trunk_number_of(&addr) {
                    self.added.push(tn);
                }
            }
        }
        for (k, o) in &self.todo {
            if k.0 == Kind::TwilioTrunkNumber && !self.index.contains_key(k) {
                self.notes.push(format!(
                    "twilio trunk number {} ({}) was left unmanaged: its number is declared without `trunk`",
                    o.id,
                    o.spec.label()
                ));
            }
        }
    }

    /// For an imported Twilio number on a trunk: the `twilio_trunk_number` its `trunk` key
    /// declares, indexed so state records it.
    pub(super) fn trunk_number_of(&mut self, addr: &Address) -> Option<Address> {
        if addr.kind != Kind::TwilioNumber {
            return None;
        }
        let (id, _) = self.twilio_attachment(addr)?;
        let tn = Address::new(Kind::TwilioTrunkNumber, &addr.name);
        self.index.insert((Kind::TwilioTrunkNumber, id), tn.clone());
        Some(tn)
    }

    /// The live trunk attachment of an imported Twilio number: its id and the trunk address.
    pub(super) fn twilio_attachment(&self, addr: &Address) -> Option<(String, Address)> {
        let number_id = self
            .index
            .iter()
            .find(|(k, a)| k.0 == Kind::TwilioNumber && *a == addr)
            .map(|(k, _)| k.1.clone())?;
        self.todo.values().find_map(|o| match &o.spec {
            Spec::TwilioTrunkNumber(s) if s.number.id() == Some(number_id.as_str()) => {
                let trunk = s
                    .trunk
                    .id()
                    .and_then(|t| self.addr_of(Kind::TwilioTrunk, t))?;
                Some((o.id.clone(), trunk.clone()))
            }
            _ => None,
        })
    }

    pub(super) fn explicit(&mut self, addr: &Address, obj: &LiveObject) -> Option<Block> {
        let section = section_of(addr.kind)?;
        let mut header: Vec<&str> = section.to_vec();
        header.push(&addr.name);
        let mut b = Block::new(&header);
        b.comment(format!(
            "Imported: {} {} ({}).",
            addr.kind,
            obj.id,
            obj.spec.label()
        ));
        match &obj.spec {
            Spec::TelnyxOutboundVoiceProfile(p) => {
                b.set("name", p.name.clone());
                b.set("enabled", p.enabled);
                b.set(
                    "whitelisted_destinations",
                    strings(&p.whitelisted_destinations),
                );
            }
            Spec::TelnyxTexmlApplication(t) => {
                b.set("name", t.friendly_name.clone());
                b.set("voice_url", t.voice_url.clone());
                b.set("voice_method", t.voice_method.clone());
            }
            Spec::TelnyxFqdnConnection(c) => self.fqdn_connection(&mut b, addr, c),
            Spec::TelnyxCredentialConnection(c) => self.credential_connection(&mut b, addr, c),
            Spec::TelnyxFqdn(f) => {
                let conn = f
                    .connection
                    .id()
                    .and_then(|id| self.addr_of(Kind::TelnyxFqdnConnection, id))?;
                b.set("connection", conn.to_string());
                b.set("fqdn", f.fqdn.clone());
                b.set("port", i64::from(f.port));
                b.set("dns_record_type", f.dns_record_type.clone());
                b.set("default_primary", f.default_primary);
            }
            Spec::TelnyxNumber(n) => self.telnyx_number(&mut b, addr, n),
            Spec::LivekitInboundTrunk(t) => {
                b.set("name", t.name.clone());
                b.set("numbers", number_list(&t.numbers));
                b.set("krisp", t.krisp_enabled);
                self.trunk_extras(&mut b, t, &addr.name);
            }
            Spec::LivekitOutboundTrunk(t) => self.outbound_trunk(&mut b, addr, t),
            Spec::LivekitDispatchRule(r) => self.dispatch_rule(&mut b, addr, r),
            Spec::TwilioTrunk(t) => {
                b.set("name", t.friendly_name.clone());
                if !t.domain_name.is_empty() {
                    b.set("domain_name", t.domain_name.clone());
                }
                let mut urls = Array::new();
                for u in &t.origination_urls {
                    let mut it = InlineTable::new();
                    it.insert("name", u.friendly_name.clone().into());
                    it.insert("sip_url", u.sip_url.clone().into());
                    it.insert("priority", i64::from(u.priority).into());
                    it.insert("weight", i64::from(u.weight).into());
                    it.insert("enabled", u.enabled.into());
                    urls.push(it);
                }
                b.set("origination_urls", urls);
            }
            Spec::TwilioNumber(n) => {
                b.set("number", n.number.to_string());
                b.set("name", n.friendly_name.clone());
                if let Some((_, trunk)) = self.twilio_attachment(addr) {
                    b.set("trunk", trunk.to_string());
                }
            }
            Spec::TwilioTrunkNumber(_) => return None,
            Spec::TelnyxEmergencyAddress(a) => {
                for (key, value) in [
                    ("business_name", &a.business_name),
                    ("first_name", &a.first_name),
                    ("last_name", &a.last_name),
                    ("street_address", &a.street_address),
                    ("extended_address", &a.extended_address),
                    ("locality", &a.locality),
                    ("administrative_area", &a.administrative_area),
                    ("postal_code", &a.postal_code),
                    ("country_code", &a.country_code),
                ] {
                    if !value.is_empty() || key != "extended_address" {
                        b.set(key, value.clone());
                    }
                }
            }
        }
        Some(b)
    }

    pub(super) fn fqdn_connection(
        &mut self,
        b: &mut Block,
        addr: &Address,
        c: &crate::model::FqdnConnectionSpec,
    ) {
        b.set("name", c.connection_name.clone());
        if !c.active {
            b.set("active", false);
        }
        b.set("transport", c.transport_protocol.clone());
        if let Some(user) = &c.user_name {
            b.set("user_name", user.clone());
        }
        if c.password.is_some() {
            self.password_env(b, addr, c.password.as_ref());
        }
        b.set("ani_number_format", c.ani_number_format.clone());
        b.set("dnis_number_format", c.dnis_number_format.clone());
        if let Some(ovp) = c
            .outbound_voice_profile
            .as_ref()
            .and_then(Ref::id)
            .and_then(|id| self.addr_of(Kind::TelnyxOutboundVoiceProfile, id))
        {
            b.set("outbound_voice_profile", ovp.to_string());
        }
    }

    pub(super) fn credential_connection(
        &mut self,
        b: &mut Block,
        addr: &Address,
        c: &crate::model::CredentialConnectionSpec,
    ) {
        b.set("name", c.connection_name.clone());
        b.set("user_name", c.user_name.clone());
        if !c.active {
            b.set("active", false);
        }
        self.password_env(b, addr, c.password.as_ref());
        let bound = c
            .outbound_voice_profile
            .as_ref()
            .and_then(Ref::id)
            .and_then(|id| self.addr_of(Kind::TelnyxOutboundVoiceProfile, id))
            .cloned();
        match bound {
            Some(ovp) => b.set("outbound_voice_profile", ovp.to_string()),
            None => {
                if let Some(ovp) = self.usable_profile() {
                    b.set_noted(
                        "outbound_voice_profile",
                        ovp.to_string(),
                        "live: NO outbound voice profile bound (Telnyx silently drops every call, 403/D35); declared so the first plan binds it",
                    );
                    self.notes.push(format!(
                        "{addr}: live has no outbound voice profile; declared with {ovp}, so the next plan binds it"
                    ));
                }
            }
        }
    }

    /// An enabled outbound voice profile whitelisting the US, for a connection that has none.
    pub(super) fn usable_profile(&self) -> Option<Address> {
        self.live()
            .of_kind(Kind::TelnyxOutboundVoiceProfile)
            .filter(|o| matches!(&o.spec, Spec::TelnyxOutboundVoiceProfile(p) if p.enabled))
            .max_by_key(|o| match &o.spec {
                Spec::TelnyxOutboundVoiceProfile(p) => {
                    p.whitelisted_destinations.iter().any(|c| c == "US")
                }
                _ => false,
            })
            .and_then(|o| self.addr_of(o.kind(), &o.id).cloned())
    }

    pub(super) fn telnyx_number(
        &mut self,
        b: &mut Block,
        addr: &Address,
        n: &crate::model::TelnyxNumberSpec,
    ) {
        b.set(
            "number",
            n.number.fixed().map(|n| n.to_string()).unwrap_or_default(),
        );
        match n.connection.as_ref().and_then(Ref::id) {
            Some(id) => match self.connection_addr(id).cloned() {
                Some(conn) => b.set("connection", conn.to_string()),
                None => {
                    b.comment(format!(
                        "live: bound to {id}, which is not a connection cwa can read"
                    ));
                    self.notes.push(format!("{addr}: bound to unknown connection {id}; declared on the default connection"));
                }
            },
            None => {
                b.comment("live: bound to NO connection (calls go nowhere); declared on the default connection");
                self.notes.push(format!("{addr}: live is bound to no connection; declared on the default connection, so the next plan binds it"));
            }
        }
        if !n.tags.is_empty() {
            b.set("tags", strings(&n.tags));
        }
        if let Some(address) = self.emergency_address_of(n) {
            b.set("emergency_address", address.to_string());
        }
    }

    /// The declared address of a live number's E911 address (issue 21), when it has one cwa
    /// imports too.
    pub(super) fn emergency_address_of(
        &self,
        n: &crate::model::TelnyxNumberSpec,
    ) -> Option<Address> {
        let id = n.settings.emergency_address.as_ref()?.id()?;
        self.addr_of(Kind::TelnyxEmergencyAddress, id).cloned()
    }

    pub(super) fn outbound_trunk(
        &mut self,
        b: &mut Block,
        addr: &Address,
        t: &crate::model::OutboundTrunkSpec,
    ) {
        b.set("name", t.name.clone());
        b.set("address", t.address.clone());
        b.set("transport", t.transport.clone());
        b.set("numbers", number_list(&t.numbers));
        if !t.auth_username.is_empty() {
            b.set("auth_username", t.auth_username.clone());
        }
        if t.auth_password.is_some() {
            let var = env_name("LIVEKIT", &addr.name, "AUTH_PASSWORD");
            self.secret_env(b, addr, "auth_password_env", t.auth_password.as_ref(), var);
        }
        if !t.headers.is_empty() {
            let mut h = InlineTable::new();
            for (k, v) in &t.headers {
                h.insert(k, v.clone().into());
            }
            b.set("headers", h);
        }
        if !t.destination_country.is_empty() {
            b.set("destination_country", t.destination_country.clone());
        }
        if !t.metadata.is_empty() {
            b.set("metadata", t.metadata.clone());
        }
    }

    pub(super) fn dispatch_rule(
        &mut self,
        b: &mut Block,
        addr: &Address,
        r: &crate::model::DispatchRuleSpec,
    ) {
        b.set("name", r.name.clone());
        let mut trunks = Array::new();
        for t in &r.trunks {
            match t
                .id()
                .and_then(|id| self.addr_of(Kind::LivekitInboundTrunk, id))
            {
                Some(a) => trunks.push(a.to_string()),
                None => {
                    b.comment(format!("live: also names trunk {t}, which is not live"));
                    self.notes.push(format!(
                        "{addr}: names trunk {t}, which is not live; left out"
                    ));
                }
            }
        }
        if !trunks.is_empty() {
            b.set("trunks", trunks);
        }
        match &r.rule {
            DispatchKind::Individual { room_prefix, pin } => {
                b.set("type", "individual");
                b.set("room_prefix", room_prefix.clone());
                if !pin.is_empty() {
                    b.set("pin", pin.clone());
                }
            }
            DispatchKind::Direct { room_name, pin } => {
                b.set("type", "direct");
                b.set("room_name", room_name.clone());
                if !pin.is_empty() {
                    b.set("pin", pin.clone());
                }
            }
            DispatchKind::Callee {
                room_prefix,
                pin,
                randomize,
            } => {
                b.set("type", "callee");
                b.set("room_prefix", room_prefix.clone());
                if !pin.is_empty() {
                    b.set("pin", pin.clone());
                }
                if *randomize {
                    b.set("randomize", true);
                }
            }
        }
        if r.agents.is_empty() {
            let agent = self.placeholder_agent();
            b.set_noted(
                "agents",
                agents_value(&[crate::model::AgentDispatch { agent_name: agent.clone(), metadata: String::new() }]),
                "live: this rule names NO agent (calls connect, the agent never joins); declared so the first plan fixes it",
            );
            self.notes.push(format!(
                "{addr}: live names no agent; declared with {agent}, so the next plan fixes it"
            ));
        } else {
            b.set("agents", agents_value(&r.agents));
        }
        if r.hide_phone_number {
            b.set("hide_phone_number", true);
        }
        if !r.metadata.is_empty() {
            b.set("metadata", r.metadata.clone());
        }
    }
}

/// The section path of a kind's explicit blocks.
fn section_of(kind: Kind) -> Option<&'static [&'static str]> {
    Some(match kind {
        Kind::TelnyxNumber => &["telnyx", "number"],
        Kind::TelnyxFqdnConnection => &["telnyx", "fqdn_connection"],
        Kind::TelnyxFqdn => &["telnyx", "fqdn"],
        Kind::TelnyxCredentialConnection => &["telnyx", "credential_connection"],
        Kind::TelnyxOutboundVoiceProfile => &["telnyx", "outbound_voice_profile"],
        Kind::TelnyxTexmlApplication => &["telnyx", "texml_application"],
        Kind::LivekitInboundTrunk => &["livekit", "inbound_trunk"],
        Kind::LivekitOutboundTrunk => &["livekit", "outbound_trunk"],
        Kind::LivekitDispatchRule => &["livekit", "dispatch_rule"],
        Kind::TwilioNumber => &["twilio", "number"],
        Kind::TwilioTrunk => &["twilio", "trunk"],
        Kind::TelnyxEmergencyAddress => &["telnyx", "emergency_address"],
        Kind::TwilioTrunkNumber => return None,
    })
}

/// The order blocks are written in: Telnyx, LiveKit, Twilio, dependencies first.
fn section_rank(kind: Kind) -> usize {
    Kind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(usize::MAX)
}
