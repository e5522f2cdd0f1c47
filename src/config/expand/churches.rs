//! `[church.<key>]` blocks: each line expanded by the convention
//! ([`crate::config::convention`]) into its number, inbound trunk and dispatch rule.

use super::*;

impl Expander<'_> {
    pub(super) fn churches(&mut self) -> Vec<Church> {
        let raw = self.raw;
        let mut out: Vec<Church> = Vec::new();
        let mut ids: BTreeMap<uuid::Uuid, SourceSpan> = BTreeMap::new();
        let mut names: BTreeMap<String, SourceSpan> = BTreeMap::new();
        for block in &raw.churches {
            let Some(church) = self.church(block) else {
                self.check_numbers_only(block);
                continue;
            };
            if let Some(first) = ids.get(&church.id) {
                let id_span = block.raw.id.as_ref().map_or(block.span, span_of);
                self.push(
                    Problem::error(
                        ProblemKind::DuplicateChurch,
                        id_span,
                        "same id again",
                        format!("church id {} is used by two churches", church.id),
                    )
                    .with_label(*first, "first used here")
                    .with_help("each church has its own UUID; the agent routes calls by it"),
                );
                continue;
            }
            ids.insert(church.id, block.raw.id.as_ref().map_or(block.span, span_of));
            for line in church_lines(block) {
                if self.line_name_taken(&mut names, &line) {
                    continue;
                }
                self.church_line(&church, &line);
            }
            out.push(church);
        }
        out
    }

    /// Whether another church line already expands to `line`'s name (`[church.a_b]` and
    /// `[church.a.lines.b]` both make `telnyx_number.a_b`): reported at both places, since
    /// one would silently replace the other's number, trunk and rule.
    fn line_name_taken(
        &mut self,
        names: &mut BTreeMap<String, SourceSpan>,
        line: &LineDecl,
    ) -> bool {
        let Some(first) = names.get(&line.name).copied() else {
            names.insert(line.name.clone(), line.span);
            return false;
        };
        let addr = Address::new(Kind::TelnyxNumber, &line.name);
        self.push(
            Problem::error(
                ProblemKind::DuplicateChurch,
                line.span,
                "same resource name again",
                format!("two church lines are both {addr} (and its trunk and rule)"),
            )
            .with_label(first, "first here")
            .with_help("a line's resources are named <church key>_<line key>: rename one church key or line key"),
        );
        true
    }

    /// A church that could not be built still has its numbers checked, so one run reports
    /// a bad id and a bad number together.
    pub(super) fn check_numbers_only(&mut self, block: &Block<RawChurch>) {
        for line in church_lines(block) {
            let addr = Address::new(Kind::TelnyxNumber, &line.name);
            self.number_spec(&line.raw, None, &addr, line.span);
        }
    }

    pub(super) fn church(&mut self, block: &Block<RawChurch>) -> Option<Church> {
        let raw = &block.raw;
        if raw.lines.is_some() {
            if let Some(n) = &raw.number {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(n),
                        "number and lines",
                        format!("church `{}` has both `number` and `lines`", block.name),
                    )
                    .with_help("give each number its own [church.<key>.lines.<line>] block"),
                );
            }
        }
        let id = match &raw.id {
            None => {
                self.push(
                    Problem::error(
                        ProblemKind::MissingField,
                        block.span,
                        "needs `id`",
                        format!("church `{}` has no `id`", block.name),
                    )
                    .with_help("add id = \"<the church's UUID>\""),
                );
                None
            }
            Some(id) => match uuid::Uuid::parse_str(id.get_ref()) {
                Ok(u) => Some(u),
                Err(e) => {
                    self.push(
                        Problem::error(
                            ProblemKind::InvalidValue,
                            span_of(id),
                            "not a UUID",
                            format!("church id `{}` is not a UUID: {e}", id.get_ref()),
                        )
                        .with_help("the id is the church's UUID, e.g. \"3f2c…-…\""),
                    );
                    None
                }
            },
        };
        let name = match &raw.name {
            Some(n) => Some(n.get_ref().clone()),
            None => {
                self.push(
                    Problem::error(
                        ProblemKind::MissingField,
                        block.span,
                        "needs `name`",
                        format!("church `{}` has no `name`", block.name),
                    )
                    .with_help("add name = \"…\": it names the trunk and the dispatch rule"),
                );
                None
            }
        };
        Some(Church {
            key: block.name.clone(),
            id: id?,
            name: name?,
        })
    }

    pub(super) fn church_line(&mut self, church: &Church, line: &LineDecl) {
        let number_addr = Address::new(Kind::TelnyxNumber, &line.name);
        let Some(number) = self.number_spec(&line.raw, None, &number_addr, line.span) else {
            return;
        };
        let connection = match &self.defaults.connection {
            Some(c) => Some(Ref::Addr(c.clone())),
            None => {
                self.push(
                    Problem::error(
                        ProblemKind::Reference,
                        line.span,
                        "no connection for its number",
                        format!("church line `{}` has no connection to bind its number to", line.name),
                    )
                    .with_help("set [defaults] connection = \"telnyx_fqdn_connection.<name>\" (where new numbers bind)"),
                );
                None
            }
        };
        let depends_on = self.depends_on(&line.raw.depends_on, &number_addr);
        let key = Some(church.key.clone());
        let settings = self.number_settings(&line.raw.emergency_address, &number_addr);
        self.insert(
            number_addr.clone(),
            Spec::TelnyxNumber(TelnyxNumberSpec {
                number,
                connection,
                tags: Vec::new(),
                settings,
            }),
            key.clone(),
            line.span,
            depends_on,
        );
        if let Some(shared) = &line.raw.trunk {
            if let Some(trunk) = self.resolve(shared, &[Kind::LivekitInboundTrunk], "trunk") {
                self.shared.push((trunk, number_addr, span_of(shared)));
            }
            return;
        }
        let trunk_addr = Address::new(Kind::LivekitInboundTrunk, &line.name);
        if let Some(n) = &line.raw.number {
            self.spans.insert(&trunk_addr, "numbers.0", span_of(n));
        }
        let rule_addr = Address::new(Kind::LivekitDispatchRule, &line.name);
        let agent_span = line
            .raw
            .agent
            .as_ref()
            .map(span_of)
            .or(self.defaults.agent_span);
        if let Some(s) = agent_span {
            self.spans.insert(&rule_addr, "agents.0", s);
        }
        let specs = self.defaults.line.build(
            convention::Line {
                church_id: &church.id,
                trunk_name: convention::trunk_name(&church.name, line.label.as_deref()),
                number: NumberRef::Of(number_addr),
                trunk: Ref::Addr(trunk_addr.clone()),
            },
            &LineKeys {
                agent: text(&line.raw.agent),
                room_prefix: text(&line.raw.room_prefix),
                krisp: flag(&line.raw.krisp),
            },
        );
        let trunk = Spec::LivekitInboundTrunk(specs.trunk);
        self.insert(trunk_addr, trunk, key.clone(), line.span, Vec::new());
        let rule = Spec::LivekitDispatchRule(specs.rule);
        self.insert(rule_addr, rule, key, line.span, Vec::new());
    }
}

/// The lines a church declares: itself, or each `[church.<key>.lines.<line>]`.
pub(super) fn church_lines(block: &Block<RawChurch>) -> Vec<LineDecl> {
    let church = block.raw.as_line();
    match &block.raw.lines {
        None => vec![LineDecl {
            name: convention::line_name(&block.name, None),
            label: None,
            raw: church,
            span: block.span,
        }],
        Some(lines) => lines
            .iter()
            .map(|(key, line)| LineDecl {
                name: convention::line_name(&block.name, Some(key.get_ref())),
                label: Some(key.get_ref().clone()),
                raw: merge_line(&church, line.get_ref()),
                span: span_of(key),
            })
            .collect(),
    }
}

fn merge_line(church: &RawLine, line: &RawLine) -> RawLine {
    RawLine {
        number: line.number.clone(),
        area_code: line.area_code.clone().or_else(|| church.area_code.clone()),
        country: line.country.clone().or_else(|| church.country.clone()),
        agent: line.agent.clone().or_else(|| church.agent.clone()),
        room_prefix: line
            .room_prefix
            .clone()
            .or_else(|| church.room_prefix.clone()),
        trunk: line.trunk.clone().or_else(|| church.trunk.clone()),
        krisp: line.krisp.clone().or_else(|| church.krisp.clone()),
        emergency_address: line
            .emergency_address
            .clone()
            .or_else(|| church.emergency_address.clone()),
        depends_on: line
            .depends_on
            .clone()
            .or_else(|| church.depends_on.clone()),
    }
}
