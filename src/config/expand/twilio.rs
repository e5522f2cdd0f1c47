//! Explicit Twilio blocks (`[twilio.*.<name>]`) and the trunk attachments their `trunk` keys
//! declare.

use super::*;

impl Expander<'_> {
    pub(super) fn twilio_trunk(
        &mut self,
        addr: &Address,
        b: &Block<RawTwilioTrunk>,
        _base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let name = self.required(&r.name, None, addr, b.span, "name");
        // Optional, as in twilio-oai trunking v1 `CreateTrunkRequest`: an origination-only
        // trunk has no termination domain.
        let domain = text(&r.domain_name);
        if let (Some(d), Some(field)) = (&domain, &r.domain_name) {
            if !d.ends_with("pstn.twilio.com") {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(field),
                        "not a Twilio trunk domain",
                        format!("`{d}` does not end in pstn.twilio.com"),
                    )
                    .with_help("Twilio trunk domains look like churchwiseai.pstn.twilio.com"),
                );
            }
        }
        let mut urls = Vec::new();
        if let Some(list) = &r.origination_urls {
            for (i, u) in list.get_ref().iter().enumerate() {
                if let Some(url) = self.origination_url(addr, i, u) {
                    urls.push(url);
                }
            }
        }
        urls.sort();
        let name = name?;
        Some(Spec::TwilioTrunk(TwilioTrunkSpec {
            friendly_name: name,
            domain_name: domain.unwrap_or_default(),
            origination_urls: urls,
        }))
    }

    pub(super) fn origination_url(
        &mut self,
        addr: &Address,
        i: usize,
        u: &Spanned<crate::config::raw::RawOriginationUrl>,
    ) -> Option<OriginationUrl> {
        let raw = u.get_ref();
        let span = span_of(u);
        let name = self.required(&raw.name, None, addr, span, "name");
        let sip_url = self.required(&raw.sip_url, None, addr, span, "sip_url");
        if let Some(s) = &raw.sip_url {
            self.spans
                .insert(addr, format!("origination_urls.{i}"), span_of(s));
            if !s.get_ref().starts_with("sip:") {
                self.push(
                    Problem::error(
                        ProblemKind::InvalidValue,
                        span_of(s),
                        "needs sip:",
                        "an origination URL must use the sip: scheme",
                    )
                    .with_help(
                        "e.g. sip_url = \"sip:5u9xu5ysoly.sip.livekit.cloud;transport=tcp\"",
                    ),
                );
            }
        }
        if let (Some(w), Some(url)) = (&raw.weight, &raw.sip_url) {
            self.spans.insert(
                addr,
                format!("origination_urls[{}].weight", url.get_ref()),
                span_of(w),
            );
        }
        Some(OriginationUrl {
            friendly_name: name?,
            sip_url: sip_url?,
            priority: raw.priority.as_ref().map_or(10, |p| *p.get_ref()),
            weight: raw.weight.as_ref().map_or(10, |w| *w.get_ref()),
            enabled: flag(&raw.enabled).unwrap_or(true),
        })
    }

    pub(super) fn twilio_number(
        &mut self,
        addr: &Address,
        b: &Block<RawTwilioNumber>,
        _base: Option<Spec>,
    ) -> Option<Spec> {
        let r = &b.raw;
        let number = match &r.number {
            Some(n) => {
                self.spans.insert(addr, "number", span_of(n));
                self.e164(n)
            }
            None => {
                self.missing(addr, b.span, "number");
                None
            }
        };
        let name = self.required(&r.name, None, addr, b.span, "name");
        let (number, name) = (number?, name?);
        Some(Spec::TwilioNumber(TwilioNumberSpec {
            number,
            friendly_name: name,
        }))
    }

    pub(super) fn twilio_trunk_numbers(&mut self) {
        let raw = self.raw;
        for b in &raw.twilio_numbers {
            let Some(trunk) = &b.raw.trunk else { continue };
            let number_addr = Address::new(Kind::TwilioNumber, &b.name);
            self.spans.insert(&number_addr, "trunk", span_of(trunk));
            let Some(trunk_addr) = self.resolve(trunk, &[Kind::TwilioTrunk], "trunk") else {
                continue;
            };
            if !self.resources.contains_key(&number_addr) {
                continue;
            }
            let addr = Address::new(Kind::TwilioTrunkNumber, &b.name);
            self.insert(
                addr,
                Spec::TwilioTrunkNumber(TwilioTrunkNumberSpec {
                    trunk: Ref::Addr(trunk_addr),
                    number: Ref::Addr(number_addr),
                }),
                None,
                span_of(trunk),
                Vec::new(),
            );
        }
    }
}
