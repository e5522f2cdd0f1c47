//! Names and references: every declared address is known first (explicit or by
//! convention), then each reference is resolved against it, with a did-you-mean when it
//! names nothing.

use super::*;

impl Expander<'_> {
    pub(super) fn declare(&mut self, kind: Kind, name: &str, span: SourceSpan) {
        self.declared
            .entry(Address::new(kind, name))
            .or_insert(span);
    }

    pub(super) fn declare_blocks<R>(&mut self, kind: Kind, blocks: &[Block<R>]) {
        for b in blocks {
            self.declare(kind, &b.name, b.span);
        }
    }

    /// Every address the file declares, explicit or by convention, known before any reference
    /// is resolved so that order in the file never matters.
    pub(super) fn declare_all(&mut self) {
        let raw = self.raw;
        self.declare_blocks(Kind::TelnyxFqdnConnection, &raw.fqdn_connections);
        self.declare_blocks(Kind::TelnyxFqdn, &raw.fqdns);
        self.declare_blocks(
            Kind::TelnyxCredentialConnection,
            &raw.credential_connections,
        );
        self.declare_blocks(
            Kind::TelnyxOutboundVoiceProfile,
            &raw.outbound_voice_profiles,
        );
        self.declare_blocks(Kind::TelnyxTexmlApplication, &raw.texml_applications);
        self.declare_blocks(Kind::TelnyxNumber, &raw.telnyx_numbers);
        self.declare_blocks(Kind::TelnyxEmergencyAddress, &raw.emergency_addresses);
        self.declare_blocks(Kind::LivekitInboundTrunk, &raw.inbound_trunks);
        self.declare_blocks(Kind::LivekitOutboundTrunk, &raw.outbound_trunks);
        self.declare_blocks(Kind::LivekitDispatchRule, &raw.dispatch_rules);
        self.declare_blocks(Kind::TwilioNumber, &raw.twilio_numbers);
        self.declare_blocks(Kind::TwilioTrunk, &raw.twilio_trunks);
        for n in &raw.twilio_numbers {
            if n.raw.trunk.is_some() {
                self.declare(Kind::TwilioTrunkNumber, &n.name, n.span);
            }
        }
        for church in &raw.churches {
            for line in church_lines(church) {
                self.declare(Kind::TelnyxNumber, &line.name, line.span);
                if line.raw.trunk.is_none() {
                    self.declare(Kind::LivekitInboundTrunk, &line.name, line.span);
                    self.declare(Kind::LivekitDispatchRule, &line.name, line.span);
                }
            }
        }
    }

    /// `[defaults] park`, resolved like a connection.
    pub(super) fn park_target(&mut self) -> Option<Address> {
        let raw = self.raw;
        self.resolve(raw.defaults.park.as_ref()?, &CONNECTION_KINDS, "park")
    }

    pub(super) fn default_connection(&mut self) -> Option<Address> {
        if let Some(c) = &self.raw.defaults.connection {
            return self.resolve(c, &CONNECTION_KINDS, "connection");
        }
        let mut fqdn = self
            .declared
            .keys()
            .filter(|a| a.kind == Kind::TelnyxFqdnConnection);
        match (fqdn.next(), fqdn.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        }
    }

    /// Resolves a reference written as `kind.name`, or as a bare name when exactly one of the
    /// allowed kinds has it.
    pub(super) fn resolve(
        &mut self,
        value: &Spanned<String>,
        allowed: &[Kind],
        key: &str,
    ) -> Option<Address> {
        let written = value.get_ref().as_str();
        let span = span_of(value);
        if let Ok(addr) = written.parse::<Address>() {
            if !allowed.contains(&addr.kind) {
                self.push(
                    Problem::error(
                        ProblemKind::Reference,
                        span,
                        "wrong kind of resource",
                        format!(
                            "`{written}` is a {}; `{key}` takes a {}",
                            addr.kind,
                            kinds_list(allowed)
                        ),
                    )
                    .with_help(format!("point `{key}` at a {}", kinds_list(allowed))),
                );
                return None;
            }
            if self.declared.contains_key(&addr) {
                return Some(addr);
            }
            self.push(self.dangling(written, span, allowed, key));
            return None;
        }
        let candidates: Vec<Address> = allowed
            .iter()
            .map(|k| Address::new(*k, written))
            .filter(|a| self.declared.contains_key(a))
            .collect();
        match candidates.as_slice() {
            [one] => Some(one.clone()),
            [] => {
                self.push(self.dangling(written, span, allowed, key));
                None
            }
            many => {
                let names: Vec<String> = many.iter().map(|a| a.to_string()).collect();
                self.push(
                    Problem::error(
                        ProblemKind::Reference,
                        span,
                        "ambiguous",
                        format!("`{written}` could be {}", names.join(" or ")),
                    )
                    .with_help("write the full address, kind.name"),
                );
                None
            }
        }
    }

    pub(super) fn dangling(
        &self,
        written: &str,
        span: SourceSpan,
        allowed: &[Kind],
        key: &str,
    ) -> Problem {
        let known: Vec<String> = self
            .declared
            .keys()
            .filter(|a| allowed.contains(&a.kind))
            .map(|a| a.to_string())
            .collect();
        let refs: Vec<&str> = known.iter().map(String::as_str).collect();
        let short = written.rsplit('.').next().unwrap_or(written);
        let best = crate::config::raw::suggest(written, &refs).or_else(|| {
            known
                .iter()
                .find(|k| k.rsplit('.').next() == Some(short))
                .map(String::as_str)
        });
        let help = match best {
            Some(b) => format!("did you mean `{b}`?"),
            None => format!(
                "declare it as [{}.<name>], or point `{key}` at one that exists",
                section_of(allowed[0])
            ),
        };
        Problem::error(
            ProblemKind::Reference,
            span,
            "no such resource",
            format!(
                "`{written}` does not name a declared {}",
                kinds_list(allowed)
            ),
        )
        .with_help(help)
    }

    pub(super) fn depends_on(&mut self, list: &Option<List>, addr: &Address) -> Vec<Address> {
        let mut out = Vec::new();
        if let Some(list) = list {
            self.spans.insert(addr, "depends_on", span_of(list));
            for entry in list.get_ref() {
                if let Some(a) = self.resolve(entry, &Kind::ALL, "depends_on") {
                    out.push(a);
                }
            }
        }
        out
    }

    pub(super) fn optional_ref(
        &mut self,
        field: &Opt<String>,
        allowed: &[Kind],
        key: &str,
        addr: &Address,
    ) -> Option<Ref> {
        let f = field.as_ref()?;
        self.spans.insert(addr, key, span_of(f));
        self.resolve(f, allowed, key).map(Ref::Addr)
    }
}

fn kinds_list(kinds: &[Kind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    names.join(" or ")
}
