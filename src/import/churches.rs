//! Churches found in live by the convention ([`crate::config::convention`]) and declared as
//! `[church.<key>]` blocks, with override blocks only for what differs from it.

use super::*;

impl<'a> Importer<'a> {
    /// Inbound trunks with one bound Telnyx number and one rule that the convention
    /// recognises ([`convention::recognise`]).
    pub(super) fn find_churches(&mut self) {
        let numbers: HashMap<String, (Kind, String)> = self
            .todo
            .values()
            .filter_map(|o| match &o.spec {
                Spec::TelnyxNumber(n) => n
                    .number
                    .fixed()
                    .map(|n| (n.to_string(), (o.kind(), o.id.clone()))),
                _ => None,
            })
            .collect();
        let mut rules_by_trunk: HashMap<String, Vec<&'a LiveObject>> = HashMap::new();
        for o in self.todo.values() {
            if let Spec::LivekitDispatchRule(r) = &o.spec {
                for t in r.trunks.iter().filter_map(Ref::id) {
                    rules_by_trunk.entry(t.to_string()).or_default().push(o);
                }
            }
        }
        let trunks: Vec<&'a LiveObject> = self
            .todo
            .values()
            .filter(|o| o.kind() == Kind::LivekitInboundTrunk)
            .copied()
            .collect();
        for trunk in trunks {
            let Spec::LivekitInboundTrunk(t) = &trunk.spec else {
                continue;
            };
            let rules = rules_by_trunk
                .get(&trunk.id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let [rule] = rules else { continue };
            let Spec::LivekitDispatchRule(r) = &rule.spec else {
                continue;
            };
            let Some(evidence) = convention::recognise(t, r) else {
                continue;
            };
            let [NumberRef::Number(number)] = t.numbers.as_slice() else {
                continue;
            };
            let Some(number_key) = numbers.get(number.as_str()) else {
                continue;
            };
            let bound = match &self.todo[number_key].spec {
                Spec::TelnyxNumber(n) => n.connection.is_some(),
                _ => false,
            };
            if !bound {
                continue;
            }
            let (id, id_known) = match evidence {
                Evidence::ChurchId(id) => (id, true),
                Evidence::Names => (placeholder_id(&trunk.id), false),
            };
            if !self.church_ids.insert(id) {
                continue;
            }
            let key = self
                .owned_church_key(&trunk.id, &rule.id, &number_key.1)
                .unwrap_or_else(|| self.church_key(&t.name));
            let ids = [&number_key.1, &trunk.id, &rule.id];
            for (kind, id) in convention::LINE_KINDS.into_iter().zip(ids) {
                let addr = Address::new(kind, &key);
                self.used.insert(addr.clone());
                self.index.insert((kind, id.clone()), addr);
            }
            self.churches.push(FoundChurch {
                key,
                id,
                id_known,
                name: t.name.clone(),
                number: number_key.clone(),
                trunk: (trunk.kind(), trunk.id.clone()),
                rule: (rule.kind(), rule.id.clone()),
            });
        }
        self.churches.sort_by(|a, b| a.key.cmp(&b.key));
    }

    /// The name state already owns the church's three objects under, when it is one name.
    pub(super) fn owned_church_key(
        &mut self,
        trunk: &str,
        rule: &str,
        number: &str,
    ) -> Option<String> {
        let name = |kind: Kind, id: &str| self.preferred.get(&(kind, id.to_string())).cloned();
        let key = name(Kind::LivekitInboundTrunk, trunk)?;
        let same = name(Kind::LivekitDispatchRule, rule).as_ref() == Some(&key)
            && name(Kind::TelnyxNumber, number).as_ref() == Some(&key);
        (same && self.church_keys.insert(key.clone())).then_some(key)
    }

    /// A church key free as a church and as the address of its three resources.
    pub(super) fn church_key(&mut self, name: &str) -> String {
        let base = slug(name, "church");
        let free = |k: &str, s: &Self| {
            !s.church_keys.contains(k)
                && convention::LINE_KINDS
                    .iter()
                    .all(|kind| !s.used.contains(&Address::new(*kind, k)))
        };
        let key = (1..)
            .map(|n| {
                if n == 1 {
                    base.clone()
                } else {
                    format!("{base}_{n}")
                }
            })
            .find(|k| free(k, self))
            .expect("some suffix is free");
        self.church_keys.insert(key.clone());
        key
    }

    pub(super) fn declare_churches(&mut self) {
        for church in self.churches.clone() {
            self.declare_church(&church);
        }
    }

    pub(super) fn declare_church(&mut self, c: &FoundChurch) {
        let (
            Spec::TelnyxNumber(number),
            Spec::LivekitInboundTrunk(trunk),
            Spec::LivekitDispatchRule(rule),
        ) = (
            &self.todo[&c.number].spec,
            &self.todo[&c.trunk].spec,
            &self.todo[&c.rule].spec,
        )
        else {
            return;
        };
        let mut block = Block::new(&["church", &c.key]);
        block.comment(format!(
            "Imported: number {} ({}), inbound trunk {}, dispatch rule {}.",
            number.number, c.number.1, c.trunk.1, c.rule.1
        ));
        if c.id_known {
            block.set("id", c.id.to_string());
        } else {
            block.set_noted(
                "id",
                c.id.to_string(),
                "PLACEHOLDER: the live rule carries no church_id; put the church's real UUID here",
            );
            self.notes.push(format!(
                "church.{}: the church id is a placeholder (live dispatch metadata has no church_id); replace it with the real one",
                c.key
            ));
        }
        block.set("name", c.name.clone());
        block.set(
            "number",
            number
                .number
                .fixed()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        );
        let DispatchKind::Individual { room_prefix, pin } = &rule.rule else {
            return;
        };
        let (Some(number_ref), Some(trunk_ref)) = (trunk.numbers.first(), rule.trunks.first())
        else {
            return;
        };
        let conv = self.defaults.line.build(
            convention::Line {
                church_id: &c.id,
                trunk_name: convention::trunk_name(&c.name, None),
                number: number_ref.clone(),
                trunk: trunk_ref.clone(),
            },
            &LineKeys::default(),
        );
        let DispatchKind::Individual {
            room_prefix: conv_prefix,
            pin: conv_pin,
        } = &conv.rule.rule
        else {
            return;
        };
        if room_prefix != conv_prefix {
            block.set("room_prefix", room_prefix.clone());
        }
        if trunk.krisp_enabled != conv.trunk.krisp_enabled {
            block.set("krisp", trunk.krisp_enabled);
        }
        if let Some(address) = self.emergency_address_of(number) {
            block.set("emergency_address", address.to_string());
        }
        let mut rule_overrides = Block::new(&["livekit", "dispatch_rule", &c.key]);
        match rule.agents.as_slice() {
            [only] if c.id_known && rule.agents == convention::agents(&only.agent_name, &c.id) => {
                if only.agent_name != self.defaults.line.agent {
                    block.set("agent", only.agent_name.clone());
                }
            }
            [] => {
                let agent = self.placeholder_agent();
                rule_overrides.set_noted(
                    "agents",
                    agents_value(&[crate::model::AgentDispatch {
                        agent_name: agent.clone(),
                        metadata: String::new(),
                    }]),
                    "live: this rule names NO agent (calls connect, the agent never joins); declared so the first plan fixes it",
                );
                self.notes.push(format!(
                    "livekit_dispatch_rule.{} ({}): live names no agent; declared with {agent}, so the next plan fixes it",
                    c.key, c.rule.1
                ));
            }
            agents => rule_overrides.set("agents", agents_value(agents)),
        }
        if rule.name != conv.rule.name {
            rule_overrides.set("name", rule.name.clone());
        }
        if rule.metadata != conv.rule.metadata {
            rule_overrides.set("metadata", rule.metadata.clone());
        }
        if pin != conv_pin {
            rule_overrides.set("pin", pin.clone());
        }
        if rule.hide_phone_number != conv.rule.hide_phone_number {
            rule_overrides.set("hide_phone_number", rule.hide_phone_number);
        }
        let mut trunk_overrides = Block::new(&["livekit", "inbound_trunk", &c.key]);
        self.trunk_extras(&mut trunk_overrides, trunk, &c.key);
        let mut number_overrides = Block::new(&["telnyx", "number", &c.key]);
        let conn = number
            .connection
            .as_ref()
            .and_then(Ref::id)
            .and_then(|id| self.connection_addr(id))
            .cloned();
        if conn.is_some() && conn != self.defaults.connection {
            number_overrides.set(
                "connection",
                conn.map(|a| a.to_string()).unwrap_or_default(),
            );
        }
        if !number.tags.is_empty() {
            number_overrides.set("tags", strings(&number.tags));
        }
        self.blocks.push(block);
        for b in [number_overrides, trunk_overrides, rule_overrides] {
            if !b.table.is_empty() {
                self.blocks.push(b);
            }
        }
        for kind in convention::LINE_KINDS {
            self.added.push(Address::new(kind, &c.key));
        }
    }

    /// The agent to declare where live names none.
    pub(super) fn placeholder_agent(&self) -> String {
        if self.defaults.line.agent.is_empty() {
            "CHANGE-ME".into()
        } else {
            self.defaults.line.agent.clone()
        }
    }
}

/// A stable placeholder church id for a church found by name only.
pub(super) fn placeholder_id(trunk_id: &str) -> uuid::Uuid {
    let digest = Sha256::digest(format!("cwa-import-placeholder:{trunk_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
