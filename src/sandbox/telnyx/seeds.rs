//! The Telnyx half of the seeded worlds.

use super::*;

impl TelnyxState {
    /// `docs/runbook-world.md`, Telnyx table, known-broken states included.
    pub fn seed_runbook(&mut self) {
        self.seed_account_objects();
        let t = |minute: u32| seed_time(minute);
        let mut v2 = defaults(Collection::FqdnConnections, "2925216093662349036", t(5));
        v2["connection_name"] = json!("LiveKit Inbound v2");
        v2["transport_protocol"] = json!("TCP");
        v2["inbound"]["ani_number_format"] = json!("+E.164");
        v2["inbound"]["dnis_number_format"] = json!("+e164");
        self.fqdn_connections
            .insert("2925216093662349036".into(), v2);

        let mut cred = defaults(
            Collection::CredentialConnections,
            "2948197312620398250",
            t(6),
        );
        cred["connection_name"] = json!("CWA Verticals Platform Outbound");
        cred["user_name"] = json!("cwaoutbound");
        cred["password"] = json!(TELNYX_OUTBOUND_SIP_PASSWORD);
        cred["outbound"]["outbound_voice_profile_id"] = Value::Null;
        self.credential_connections
            .insert("2948197312620398250".into(), cred);

        let mut app = defaults(Collection::TexmlApplications, "2927180743153026408", t(7));
        app["friendly_name"] = json!("ChurchWiseAI Fallback Greeting");
        app["voice_url"] = json!("https://churchwiseai.com/api/voice/fallback");
        app["voice_method"] = json!("post");
        self.texml_applications
            .insert("2927180743153026408".into(), app);

        for (minute, id, number, connection) in [
            (
                10,
                "2926113000000000001",
                "+14144007103",
                RUNBOOK_FQDN_CONNECTION_ID,
            ),
            (
                11,
                "2926113000000000002",
                "+17473897673",
                RUNBOOK_FQDN_CONNECTION_ID,
            ),
            (
                12,
                "2927180561589994835",
                "+14697288326",
                "2927180743153026408",
            ),
            (
                13,
                "2948197312620400001",
                "+12268830000",
                "2948197312620398250",
            ),
        ] {
            let object = phone_number_object(id, number, "active", Some(connection), t(minute));
            self.phone_numbers.insert(id.into(), object);
            self.taken.insert(number.into());
        }
        self.touch();
    }

    /// The account-level objects every world but `empty` shares: the inbound FQDN connection,
    /// its FQDN record and the outbound voice profile.
    pub fn seed_account_objects(&mut self) {
        let mut ovp = defaults(
            Collection::OutboundVoiceProfiles,
            RUNBOOK_OVP_ID,
            seed_time(0),
        );
        ovp["name"] = json!("ChurchWiseAI");
        ovp["whitelisted_destinations"] = json!(["CA", "US"]);
        self.outbound_voice_profiles
            .insert(RUNBOOK_OVP_ID.into(), ovp);

        let mut connection = defaults(
            Collection::FqdnConnections,
            RUNBOOK_FQDN_CONNECTION_ID,
            seed_time(1),
        );
        connection["connection_name"] = json!("LiveKit ChurchWiseAI");
        connection["transport_protocol"] = json!("TCP");
        connection["user_name"] = json!("churchwiseai");
        connection["password"] = json!(TELNYX_FQDN_PASSWORD);
        connection["inbound"]["ani_number_format"] = json!("+E.164");
        connection["inbound"]["dnis_number_format"] = json!("+e164");
        connection["inbound"]["default_primary_fqdn_id"] = json!(RUNBOOK_FQDN_ID);
        connection["outbound"]["outbound_voice_profile_id"] = json!(RUNBOOK_OVP_ID);
        self.fqdn_connections
            .insert(RUNBOOK_FQDN_CONNECTION_ID.into(), connection);

        let mut fqdn = defaults(Collection::Fqdns, RUNBOOK_FQDN_ID, seed_time(2));
        fqdn["connection_id"] = json!(RUNBOOK_FQDN_CONNECTION_ID);
        fqdn["fqdn"] = json!(LIVEKIT_SIP_HOST);
        fqdn["port"] = json!(5060);
        fqdn["dns_record_type"] = json!("a");
        self.fqdns.insert(RUNBOOK_FQDN_ID.into(), fqdn);
        self.touch();
    }

    /// One active number per synthetic line, bound to the inbound FQDN connection.
    pub fn seed_synthetic(&mut self, lines: &[SyntheticLine]) {
        for line in lines {
            let id = self.next_id();
            let object = phone_number_object(
                &id,
                line.number.as_str(),
                "active",
                Some(RUNBOOK_FQDN_CONNECTION_ID),
                seed_time(20),
            );
            self.phone_numbers.insert(id, object);
            self.taken.insert(line.number.to_string());
        }
        self.touch();
    }
}

/// Fixed creation times for seeded objects: 2026-03-01 12:MM UTC.
fn seed_time(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, minute.min(59), 0)
        .single()
        .expect("a valid seed time")
}
