//! The Twilio half of the runbook world.

use super::*;

impl TwilioState {
    /// `docs/runbook-world.md`, Twilio table: SIDs are the prefix plus the first 32 hex digits
    /// of sha256(`runbook:<natural key>`).
    pub fn seed_runbook(&mut self) {
        let time = |minute: u32| {
            Utc.with_ymd_and_hms(2025, 11, 3, 15, minute, 0)
                .single()
                .expect("a valid seed time")
        };
        for (minute, domain, name) in [
            (0, "churchwiseai.pstn.twilio.com", "LiveKit Main"),
            (1, "churchwiseai-test.pstn.twilio.com", "LiveKit Test"),
        ] {
            let sid = runbook_sid("TK", domain);
            self.trunks.insert(
                sid.clone(),
                Trunk {
                    sid: sid.clone(),
                    friendly_name: Some(name.into()),
                    domain_name: Some(domain.into()),
                    disaster_recovery_url: None,
                    disaster_recovery_method: None,
                    transfer_mode: "disable-all".into(),
                    transfer_caller_id: "from-transferee".into(),
                    secure: false,
                    cnam_lookup_enabled: false,
                    created: time(minute),
                    updated: time(minute),
                },
            );
            let ou = runbook_sid("OU", &format!("{domain}:LiveKit"));
            self.origination_urls.insert(
                ou.clone(),
                OriginationUrl {
                    sid: ou,
                    trunk_sid: sid,
                    friendly_name: "LiveKit".into(),
                    sip_url: LIVEKIT_ORIGINATION.into(),
                    priority: 10,
                    weight: 10,
                    enabled: true,
                    created: time(minute),
                    updated: time(minute),
                },
            );
        }
        for (minute, number, name, domain) in [
            (
                10,
                "+18886030316",
                "Sales (toll-free)",
                "churchwiseai.pstn.twilio.com",
            ),
            (
                11,
                "+14696152221",
                "Demo (US)",
                "churchwiseai.pstn.twilio.com",
            ),
            (
                12,
                "+13658254095",
                "Demo (CA)",
                "churchwiseai.pstn.twilio.com",
            ),
            (
                13,
                "+13658253552",
                "Spare (unassigned)",
                "churchwiseai-test.pstn.twilio.com",
            ),
        ] {
            let sid = runbook_sid("PN", number);
            self.numbers.insert(
                sid.clone(),
                IncomingNumber {
                    sid,
                    phone_number: number.into(),
                    friendly_name: name.into(),
                    trunk_sid: Some(runbook_sid("TK", domain)),
                    voice_url: String::new(),
                    voice_method: "POST".into(),
                    voice_fallback_url: String::new(),
                    voice_fallback_method: "POST".into(),
                    voice_application_sid: None,
                    voice_caller_id_lookup: false,
                    voice_receive_mode: "voice".into(),
                    sms_url: String::new(),
                    sms_method: "POST".into(),
                    status_callback: String::new(),
                    status_callback_method: "POST".into(),
                    created: time(minute),
                    updated: time(minute),
                },
            );
        }
        self.touch();
    }
}
