//! Explicit LiveKit blocks (`[livekit.*.<name>]`), laid over what the convention produced.

use super::*;

impl Expander<'_> {
    /// The numbers of a trunk: E.164 literals, or addresses of declared numbers.
    pub(super) fn trunk_numbers(&mut self, list: &List, addr: &Address) -> Vec<NumberRef> {
        self.spans.insert(addr, "numbers", span_of(list));
        let mut out = Vec::new();
        for (i, entry) in list.get_ref().iter().enumerate() {
            self.spans
                .insert(addr, format!("numbers.{i}"), span_of(entry));
            let looks_like_number = entry
                .get_ref()
                .starts_with(|c: char| c == '+' || c == '(' || c.is_ascii_digit());
            if looks_like_number {
                out.extend(self.e164(entry).map(NumberRef::Number));
            } else if let Some(a) =
                self.resolve(entry, &[Kind::TelnyxNumber, Kind::TwilioNumber], "numbers")
            {
                out.push(NumberRef::Of(a));
            }
        }
        out
    }

    pub(super) fn allowed_numbers(&mut self, list: &Option<List>) -> Option<Vec<String>> {
        let list = list.as_ref()?;
        Some(
            list.get_ref()
                .iter()
                .filter_map(|n| self.e164(n).map(String::from))
                .collect(),
        )
    }

    pub(super) fn inbound_trunk(
        &mut self,
        addr: &Address,
        b: &Block<RawInboundTrunk>,
        base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let base = base.and_then(|s| match s {
            Spec::LivekitInboundTrunk(s) => Some(s),
            _ => None,
        });
        let base_name = base.as_ref().map(|s| s.name.clone());
        let name = self.required(&r.name, base_name, addr, b.span, "name");
        self.mark(addr, "auth_username", &r.auth_username);
        self.mark(addr, "auth_password_env", &r.auth_password_env);
        let numbers = match &r.numbers {
            Some(list) => self.trunk_numbers(list, addr),
            None => base.as_ref().map(|s| s.numbers.clone()).unwrap_or_default(),
        };
        let allowed_numbers = self
            .allowed_numbers(&r.allowed_numbers)
            .or_else(|| base.as_ref().map(|s| s.allowed_numbers.clone()))
            .unwrap_or_default();
        let password = self.secret_env(&r.auth_password_env);
        for a in r.allowed_addresses.iter().flat_map(|l| l.get_ref()) {
            self.spans.insert(
                addr,
                format!("allowed_addresses[{}]", a.get_ref()),
                span_of(a),
            );
        }
        let name = name?;
        let spec = InboundTrunkSpec {
            name,
            metadata: text(&r.metadata)
                .or_else(|| base.as_ref().map(|s| s.metadata.clone()))
                .unwrap_or_default(),
            numbers,
            allowed_addresses: strings(&r.allowed_addresses)
                .or_else(|| base.as_ref().map(|s| s.allowed_addresses.clone()))
                .unwrap_or_default(),
            allowed_numbers,
            auth_username: text(&r.auth_username).unwrap_or_default(),
            auth_password: password,
            krisp_enabled: flag(&r.krisp)
                .or_else(|| base.as_ref().map(|s| s.krisp_enabled))
                .unwrap_or(self.defaults.line.krisp),
            preserved: Default::default(),
        };
        Some(Spec::LivekitInboundTrunk(spec))
    }

    pub(super) fn outbound_trunk(
        &mut self,
        addr: &Address,
        b: &Block<RawOutboundTrunk>,
        _base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let name = self.required(&r.name, None, addr, b.span, "name");
        let address = self.required(&r.address, None, addr, b.span, "address");
        for (key, field) in [
            ("address", &r.address),
            ("auth_username", &r.auth_username),
            ("destination_country", &r.destination_country),
            ("transport", &r.transport),
        ] {
            self.mark(addr, key, field);
        }
        self.mark(addr, "headers", &r.headers);
        let transport = self.word(&r.transport, &values::TRANSPORT);
        let numbers = match &r.numbers {
            Some(list) => self.trunk_numbers(list, addr),
            None => {
                self.missing(addr, b.span, "numbers");
                Vec::new()
            }
        };
        let headers = r
            .headers
            .as_ref()
            .map(|h| {
                h.get_ref()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                    .collect()
            })
            .unwrap_or_default();
        let password = self.secret_env(&r.auth_password_env);
        let (name, address) = (name?, address?);
        Some(Spec::LivekitOutboundTrunk(OutboundTrunkSpec {
            name,
            metadata: text(&r.metadata).unwrap_or_default(),
            address,
            transport,
            numbers,
            auth_username: text(&r.auth_username).unwrap_or_default(),
            auth_password: password,
            headers,
            destination_country: text(&r.destination_country)
                .map(|c| c.to_ascii_uppercase())
                .unwrap_or_default(),
            preserved: Default::default(),
        }))
    }

    pub(super) fn dispatch_rule(
        &mut self,
        addr: &Address,
        b: &Block<RawDispatchRule>,
        base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let base = base.and_then(|s| match s {
            Spec::LivekitDispatchRule(s) => Some(s),
            _ => None,
        });
        let base_name = base.as_ref().map(|s| s.name.clone());
        let name = self.required(&r.name, base_name, addr, b.span, "name");
        let trunks = match &r.trunks {
            Some(list) => {
                self.spans.insert(addr, "trunks", span_of(list));
                let mut out = Vec::new();
                for (i, t) in list.get_ref().iter().enumerate() {
                    self.spans.insert(addr, format!("trunks.{i}"), span_of(t));
                    out.extend(
                        self.resolve(t, &[Kind::LivekitInboundTrunk], "trunks")
                            .map(Ref::Addr),
                    );
                }
                out
            }
            None => base.as_ref().map(|s| s.trunks.clone()).unwrap_or_default(),
        };
        let rule = self.rule_kind(r, base.as_ref().map(|s| &s.rule));
        let agents = match &r.agents {
            Some(list) => {
                self.spans.insert(addr, "agents", span_of(list));
                let mut out = Vec::new();
                for (i, a) in list.get_ref().iter().enumerate() {
                    self.spans.insert(addr, format!("agents.{i}"), span_of(a));
                    match &a.get_ref().name {
                        Some(n) => out.push(AgentDispatch {
                            agent_name: n.get_ref().clone(),
                            metadata: text(&a.get_ref().metadata).unwrap_or_default(),
                        }),
                        None => self.missing(addr, span_of(a), "name"),
                    }
                }
                out
            }
            None => match &base {
                Some(s) => s.agents.clone(),
                None if self.defaults.line.agent.is_empty() => Vec::new(),
                None => {
                    if let Some(s) = self.defaults.agent_span {
                        self.spans.insert(addr, "agents.0", s);
                    }
                    vec![AgentDispatch {
                        agent_name: self.defaults.line.agent.clone(),
                        metadata: String::new(),
                    }]
                }
            },
        };
        let (name, rule) = (name?, rule?);
        let spec = DispatchRuleSpec {
            name,
            metadata: text(&r.metadata)
                .or_else(|| base.as_ref().map(|s| s.metadata.clone()))
                .unwrap_or_default(),
            trunks,
            rule,
            agents,
            hide_phone_number: flag(&r.hide_phone_number)
                .or_else(|| base.as_ref().map(|s| s.hide_phone_number))
                .unwrap_or(false),
            krisp_enabled: false,
            preserved: Default::default(),
        };
        Some(Spec::LivekitDispatchRule(spec))
    }

    pub(super) fn rule_kind(
        &mut self,
        r: &RawDispatchRule,
        base: Option<&DispatchKind>,
    ) -> Option<DispatchKind> {
        let (base_kind, base_prefix, base_pin) = match base {
            Some(DispatchKind::Individual { room_prefix, pin }) => {
                ("individual", Some(room_prefix.clone()), pin.clone())
            }
            Some(DispatchKind::Callee {
                room_prefix, pin, ..
            }) => ("callee", Some(room_prefix.clone()), pin.clone()),
            Some(DispatchKind::Direct { pin, .. }) => ("direct", None, pin.clone()),
            None => ("individual", None, String::new()),
        };
        let kind = text(&r.rule_type).unwrap_or_else(|| base_kind.to_string());
        let pin = text(&r.pin).unwrap_or(base_pin);
        let prefix = text(&r.room_prefix)
            .or(base_prefix)
            .unwrap_or_else(|| self.defaults.line.room_prefix.clone());
        match kind.as_str() {
            "individual" => Some(DispatchKind::Individual {
                room_prefix: prefix,
                pin,
            }),
            "callee" => Some(DispatchKind::Callee {
                room_prefix: prefix,
                pin,
                randomize: flag(&r.randomize).unwrap_or(false),
            }),
            "direct" => match (text(&r.room_name), base) {
                (Some(room_name), _) => Some(DispatchKind::Direct { room_name, pin }),
                (None, Some(DispatchKind::Direct { room_name, .. })) => {
                    Some(DispatchKind::Direct {
                        room_name: room_name.clone(),
                        pin,
                    })
                }
                (None, _) => {
                    let span = r.rule_type.as_ref().map_or(SourceSpan::default(), span_of);
                    self.push(
                        Problem::error(ProblemKind::MissingField, span, "needs room_name", "a direct dispatch rule needs `room_name`")
                            .with_help("add room_name = \"…\", or use type = \"individual\" (one room per call)"),
                    );
                    None
                }
            },
            other => {
                let span = r.rule_type.as_ref().map_or(SourceSpan::default(), span_of);
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span,
                        "unknown rule type",
                        format!("dispatch rule type `{other}` is not known"),
                    )
                    .with_help("type = \"individual\" (default), \"direct\" or \"callee\""),
                );
                None
            }
        }
    }
}
