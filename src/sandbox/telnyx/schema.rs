//! What each Telnyx object accepts, defaults to and must satisfy: writable keys (top level and
//! nested `inbound`/`outbound`), required keys, templates of new objects, value checks.

use super::*;

/// The configuration objects that share one create/read/update/delete shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Collection {
    FqdnConnections,
    Fqdns,
    CredentialConnections,
    OutboundVoiceProfiles,
    TexmlApplications,
}

pub(super) const CONNECTION_KEYS: &[&str] = &[
    "connection_name",
    "active",
    "anchorsite_override",
    "dtmf_type",
    "encrypted_media",
    "webhook_event_url",
    "webhook_event_failover_url",
    "webhook_api_version",
    "webhook_timeout_secs",
    "tags",
    "default_on_hold_comfort_noise_enabled",
    "encode_contact_header_enabled",
    "onnet_t38_passthrough_enabled",
    "ios_push_credential_id",
    "android_push_credential_id",
    "call_cost_in_webhooks",
    "noise_suppression",
    "jitter_buffer",
    "rtcp_settings",
    "transport_protocol",
    "microsoft_teams_sbc",
    "sip_uri_calling_preference",
];

/// Credentials only a credential connection takes at top level; an FQDN connection's go
/// through its `fqdn_authentication` sub-resource and are dropped from its own create/PATCH.
pub(super) const CREDENTIAL_KEYS: &[&str] = &["user_name", "password"];

/// What `PATCH /fqdn_connections/{id}/fqdn_authentication` writes (telnyx-python,
/// `FqdnAuthenticationPatchAllParams`).
pub(super) const FQDN_AUTH_KEYS: &[&str] = &[
    "user_name",
    "password",
    "fqdn_outbound_authentication",
    "ip_authentication_method",
    "webhook_url",
    "failover_url",
    "txt_name",
    "txt_ttl",
    "txt_value",
];

pub(super) const FQDN_INBOUND_KEYS: &[&str] = &[
    "ani_number_format",
    "dnis_number_format",
    "default_primary_fqdn_id",
    "default_secondary_fqdn_id",
    "default_tertiary_fqdn_id",
    "default_routing_method",
    "channel_limit",
    "codecs",
    "generate_ringback_tone",
    "isup_headers_enabled",
    "prack_enabled",
    "shaken_stir_enabled",
    "sip_compact_headers_enabled",
    "sip_region",
    "sip_subdomain",
    "sip_subdomain_receive_settings",
    "timeout_1xx_secs",
    "timeout_2xx_secs",
];

pub(super) const FQDN_OUTBOUND_KEYS: &[&str] = &[
    "outbound_voice_profile_id",
    "ani_override",
    "ani_override_type",
    "call_parking_enabled",
    "channel_limit",
    "encrypted_media",
    "generate_ringback_tone",
    "instant_ringback_enabled",
    "ip_authentication_method",
    "ip_authentication_token",
    "localization",
    "t38_reinvite_source",
    "tech_prefix",
    "timeout_1xx_secs",
    "timeout_2xx_secs",
];

pub(super) const CREDENTIAL_INBOUND_KEYS: &[&str] = &[
    "ani_number_format",
    "dnis_number_format",
    "channel_limit",
    "codecs",
    "default_routing_method",
    "generate_ringback_tone",
    "isup_headers_enabled",
    "prack_enabled",
    "shaken_stir_enabled",
    "simultaneous_ringing",
    "sip_compact_headers_enabled",
    "timeout_1xx_secs",
    "timeout_2xx_secs",
];

pub(super) const CREDENTIAL_OUTBOUND_KEYS: &[&str] = &[
    "outbound_voice_profile_id",
    "ani_override",
    "ani_override_type",
    "call_parking_enabled",
    "channel_limit",
    "generate_ringback_tone",
    "instant_ringback_enabled",
    "localization",
    "t38_reinvite_source",
];

pub(super) const FQDN_KEYS: &[&str] = &["connection_id", "fqdn", "port", "dns_record_type"];

pub(super) const OVP_KEYS: &[&str] = &[
    "name",
    "enabled",
    "whitelisted_destinations",
    "traffic_type",
    "service_plan",
    "usage_payment_method",
    "concurrent_call_limit",
    "daily_spend_limit",
    "daily_spend_limit_enabled",
    "max_destination_rate",
    "call_recording",
    "calling_window",
    "billing_group_id",
    "tags",
];

pub(super) const TEXML_KEYS: &[&str] = &[
    "friendly_name",
    "voice_url",
    "voice_method",
    "voice_fallback_url",
    "status_callback",
    "status_callback_method",
    "active",
    "anchorsite_override",
    "dtmf_type",
    "first_command_timeout",
    "first_command_timeout_secs",
    "call_cost_in_webhooks",
    "tags",
];
pub(super) const TEXML_INBOUND_KEYS: &[&str] = &[
    "channel_limit",
    "shaken_stir_enabled",
    "sip_subdomain",
    "sip_subdomain_receive_settings",
];
pub(super) const TEXML_OUTBOUND_KEYS: &[&str] = &["channel_limit", "outbound_voice_profile_id"];

pub(super) const NUMBER_PATCH_KEYS: &[&str] = &[
    "connection_id",
    "tags",
    "customer_reference",
    "billing_group_id",
    "external_pin",
    "hd_voice_enabled",
    "address_id",
];

pub(super) const ANI_FORMATS: &[&str] = &["+E.164", "E.164", "+E.164-national", "E.164-national"];
pub(super) const DNIS_FORMATS: &[&str] = &["+e164", "e164", "national", "sip_username"];

impl Collection {
    pub(super) fn from_path(segment: &str) -> Option<Self> {
        Some(match segment {
            "fqdn_connections" => Self::FqdnConnections,
            "fqdns" => Self::Fqdns,
            "credential_connections" => Self::CredentialConnections,
            "outbound_voice_profiles" => Self::OutboundVoiceProfiles,
            "texml_applications" => Self::TexmlApplications,
            _ => return None,
        })
    }

    pub(super) fn record_type(self) -> &'static str {
        match self {
            Self::FqdnConnections => "fqdn_connection",
            Self::Fqdns => "fqdn",
            Self::CredentialConnections => "credential_connection",
            Self::OutboundVoiceProfiles => "outbound_voice_profile",
            Self::TexmlApplications => "texml_application",
        }
    }

    pub(super) fn top_level_keys(self) -> &'static [&'static str] {
        match self {
            Self::FqdnConnections | Self::CredentialConnections => CONNECTION_KEYS,
            Self::Fqdns => FQDN_KEYS,
            Self::OutboundVoiceProfiles => OVP_KEYS,
            Self::TexmlApplications => TEXML_KEYS,
        }
    }

    /// The nested objects and the keys each accepts; anything else is dropped silently.
    pub(super) fn nested_keys(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Self::FqdnConnections => &[
                ("inbound", FQDN_INBOUND_KEYS),
                ("outbound", FQDN_OUTBOUND_KEYS),
            ],
            Self::CredentialConnections => &[
                ("inbound", CREDENTIAL_INBOUND_KEYS),
                ("outbound", CREDENTIAL_OUTBOUND_KEYS),
            ],
            Self::TexmlApplications => &[
                ("inbound", TEXML_INBOUND_KEYS),
                ("outbound", TEXML_OUTBOUND_KEYS),
            ],
            Self::Fqdns | Self::OutboundVoiceProfiles => &[],
        }
    }

    pub(super) fn required_on_create(self) -> &'static [&'static str] {
        match self {
            Self::FqdnConnections => &["connection_name"],
            Self::Fqdns => &["connection_id", "fqdn", "dns_record_type"],
            Self::CredentialConnections => &["connection_name", "user_name", "password"],
            Self::OutboundVoiceProfiles => &["name"],
            Self::TexmlApplications => &["friendly_name", "voice_url"],
        }
    }

    pub(super) fn required_on_patch(self) -> &'static [&'static str] {
        match self {
            Self::OutboundVoiceProfiles => &["name"],
            Self::TexmlApplications => &["friendly_name", "voice_url"],
            _ => &[],
        }
    }

    /// Whether its objects carry SIP credentials (`user_name` / `password`).
    pub(super) fn has_credentials(self) -> bool {
        matches!(self, Self::FqdnConnections | Self::CredentialConnections)
    }

    /// Whether its objects can be a phone number's `connection_id`.
    pub(super) fn is_connection(self) -> bool {
        matches!(
            self,
            Self::FqdnConnections | Self::CredentialConnections | Self::TexmlApplications
        )
    }
}

/// Whether a JSON value counts as given (present, not null, not an empty string).
pub(super) fn is_given(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

/// Deep-merges the accepted keys of `patch` into `target`: top-level keys replace, nested
/// `inbound`/`outbound` objects merge key by key; unknown keys are dropped without error.
pub(super) fn merge_accepted(
    target: &mut Value,
    patch: &Map<String, Value>,
    collection: Collection,
) {
    let credentials = match collection {
        Collection::CredentialConnections => CREDENTIAL_KEYS,
        _ => &[],
    };
    for key in collection.top_level_keys().iter().chain(credentials) {
        if let Some(value) = patch.get(*key) {
            target[*key] = value.clone();
        }
    }
    for (outer, keys) in collection.nested_keys() {
        let Some(Value::Object(nested)) = patch.get(*outer) else {
            continue;
        };
        if !target.get(*outer).is_some_and(Value::is_object) {
            target[*outer] = json!({});
        }
        for key in *keys {
            if let Some(value) = nested.get(*key) {
                target[*outer][*key] = value.clone();
            }
        }
    }
    // `outbound_voice_profile_id: ""` unbinds the profile (the request schemas type it as a
    // string, so an empty one is how a client clears it); it reads back as null.
    if target["outbound"]["outbound_voice_profile_id"].as_str() == Some("") {
        target["outbound"]["outbound_voice_profile_id"] = Value::Null;
    }
}

pub(super) fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub(super) fn default_port(record_type: Option<&str>) -> Value {
    match record_type {
        Some("srv") => Value::Null,
        _ => json!(5060),
    }
}

pub(super) fn validate_credentials(object: &Value) -> Result<(), ApiResponse> {
    let user_ok = str_field(object, "user_name").is_some_and(|u| {
        (4..=32).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !user_ok {
        return Err(invalid(
            "/user_name",
            "user_name must be 4 to 32 alphanumeric characters.",
        ));
    }
    let password_ok =
        str_field(object, "password").is_some_and(|p| (8..=128).contains(&p.chars().count()));
    if !password_ok {
        return Err(invalid(
            "/password",
            "password must be 8 to 128 characters.",
        ));
    }
    Ok(())
}

pub(super) fn validate_profile(object: &Value) -> Result<(), ApiResponse> {
    if str_field(object, "name").is_none_or(|n| n.trim().chars().count() < 3) {
        return Err(invalid("/name", "name must have at least 3 characters."));
    }
    let destinations_ok = object
        .get("whitelisted_destinations")
        .and_then(Value::as_array)
        .is_some_and(|d| {
            d.iter().all(|c| {
                c.as_str()
                    .is_some_and(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
            })
        });
    if !destinations_ok {
        return Err(invalid(
            "/whitelisted_destinations",
            "whitelisted_destinations must be an array of ISO 3166-1 alpha-2 codes.",
        ));
    }
    if !object.get("enabled").is_some_and(Value::is_boolean) {
        return Err(invalid("/enabled", "enabled must be a boolean."));
    }
    Ok(())
}

pub(super) fn validate_texml(object: &Value) -> Result<(), ApiResponse> {
    if str_field(object, "friendly_name").is_none_or(|n| n.trim().is_empty()) {
        return Err(invalid(
            "/friendly_name",
            "friendly_name must be a non-empty string.",
        ));
    }
    let url_ok = str_field(object, "voice_url")
        .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
    if !url_ok {
        return Err(invalid("/voice_url", "voice_url must be an http(s) URL."));
    }
    if !matches!(str_field(object, "voice_method"), Some("get" | "post")) {
        return Err(invalid(
            "/voice_method",
            "voice_method must be get or post.",
        ));
    }
    Ok(())
}

pub(super) fn defaults(collection: Collection, id: &str, now: DateTime<Utc>) -> Value {
    let stamp = timestamp(now);
    let mut object = match collection {
        Collection::FqdnConnections | Collection::CredentialConnections => {
            connection_defaults(collection)
        }
        Collection::Fqdns => json!({
            "connection_id": null, "fqdn": null, "port": 5060, "dns_record_type": "a",
        }),
        Collection::OutboundVoiceProfiles => json!({
            "name": null, "enabled": true, "whitelisted_destinations": ["US", "CA"],
            "traffic_type": "conversational", "service_plan": "global",
            "usage_payment_method": "rate-deck", "concurrent_call_limit": null,
            "daily_spend_limit": "100.00", "daily_spend_limit_enabled": false,
            "max_destination_rate": null,
            "call_recording": {
                "call_recording_type": "none", "call_recording_caller_phone_numbers": [],
                "call_recording_channels": "single", "call_recording_format": "wav",
            },
            "calling_window": {"start_time": null, "end_time": null, "calls_per_cld": null},
            "billing_group_id": null, "connections_count": 0, "tags": [],
        }),
        Collection::TexmlApplications => json!({
            "friendly_name": null, "voice_url": null, "voice_method": "post",
            "voice_fallback_url": null, "status_callback": null, "status_callback_method": "post",
            "active": true, "anchorsite_override": "Latency", "dtmf_type": "RFC 2833",
            "first_command_timeout": false, "first_command_timeout_secs": 30,
            "call_cost_in_webhooks": false, "tags": [],
            "inbound": {"channel_limit": null, "shaken_stir_enabled": false,
                        "sip_subdomain": null, "sip_subdomain_receive_settings": "only_my_connections"},
            "outbound": {"channel_limit": null, "outbound_voice_profile_id": null},
        }),
    };
    object["id"] = json!(id);
    object["record_type"] = json!(collection.record_type());
    object["created_at"] = json!(stamp);
    object["updated_at"] = json!(stamp);
    object
}

pub(super) fn connection_defaults(collection: Collection) -> Value {
    let mut object = json!({
        "connection_name": null, "active": true, "anchorsite_override": "Latency",
        "dtmf_type": "RFC 2833", "encrypted_media": null, "webhook_event_url": null,
        "webhook_event_failover_url": null, "webhook_api_version": "1",
        "webhook_timeout_secs": null, "tags": [], "user_name": null, "password": null,
        "default_on_hold_comfort_noise_enabled": false, "encode_contact_header_enabled": false,
        "onnet_t38_passthrough_enabled": false, "ios_push_credential_id": null,
        "android_push_credential_id": null, "call_cost_in_webhooks": false,
        "noise_suppression": "disabled",
        "rtcp_settings": {"capture_enabled": false, "port": "rtp+1", "report_frequency_secs": 5},
        "inbound": {
            "ani_number_format": "E.164", "dnis_number_format": "e164",
            "channel_limit": null, "codecs": ["G722", "G711U", "G711A", "G729", "OPUS"],
            "default_routing_method": "sequential", "generate_ringback_tone": false,
            "isup_headers_enabled": false, "prack_enabled": false, "shaken_stir_enabled": false,
            "sip_compact_headers_enabled": true, "timeout_1xx_secs": 3, "timeout_2xx_secs": 90,
        },
        "outbound": {
            "outbound_voice_profile_id": null, "ani_override": "", "ani_override_type": "always",
            "call_parking_enabled": false, "channel_limit": null, "generate_ringback_tone": false,
            "instant_ringback_enabled": true, "localization": "US", "t38_reinvite_source": "customer",
        },
    });
    if collection == Collection::FqdnConnections {
        object["transport_protocol"] = json!("UDP");
        object["microsoft_teams_sbc"] = json!(false);
        let inbound = &mut object["inbound"];
        inbound["default_primary_fqdn_id"] = Value::Null;
        inbound["default_secondary_fqdn_id"] = Value::Null;
        inbound["default_tertiary_fqdn_id"] = Value::Null;
        inbound["sip_region"] = json!("US");
        inbound["sip_subdomain"] = Value::Null;
        inbound["sip_subdomain_receive_settings"] = json!("only_my_connections");
        let outbound = &mut object["outbound"];
        outbound["encrypted_media"] = Value::Null;
        outbound["ip_authentication_method"] = json!("credential-authentication");
        outbound["ip_authentication_token"] = Value::Null;
        outbound["tech_prefix"] = Value::Null;
        outbound["timeout_1xx_secs"] = json!(3);
        outbound["timeout_2xx_secs"] = json!(90);
    } else {
        object["sip_uri_calling_preference"] = json!("disabled");
        object["inbound"]["simultaneous_ringing"] = json!("disabled");
    }
    object
}

pub(super) fn number_type(number: &str) -> &'static str {
    if inventory::is_toll_free(&number[2..5]) {
        "toll_free"
    } else {
        "local"
    }
}

pub(super) fn number_features(number: &str) -> &'static [&'static str] {
    if inventory::is_toll_free(&number[2..5]) {
        &["sms", "voice", "fax", "hd_voice"]
    } else {
        &[
            "sms",
            "mms",
            "voice",
            "fax",
            "emergency",
            "hd_voice",
            "local_calling",
        ]
    }
}

pub(super) fn phone_number_object(
    id: &str,
    number: &str,
    status: &str,
    connection_id: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let stamp = timestamp(now);
    json!({
        "id": id,
        "record_type": "phone_number",
        "phone_number": number,
        "status": status,
        "connection_id": connection_id,
        "connection_name": null,
        "tags": [],
        "external_pin": null,
        "customer_reference": null,
        "billing_group_id": null,
        "messaging_profile_id": null,
        "messaging_profile_name": null,
        "emergency_enabled": false,
        "emergency_address_id": null,
        "emergency_status": "disabled",
        "call_forwarding_enabled": true,
        "call_recording_enabled": false,
        "caller_id_name_enabled": false,
        "cnam_listing_enabled": false,
        "t38_fax_gateway_enabled": false,
        "hd_voice_enabled": false,
        "deletion_lock_enabled": false,
        "phone_number_type": number_type(number),
        "country_iso_alpha2": inventory::country_of(&number[2..5]),
        "source_type": "number_order",
        "inbound_call_screening": "disabled",
        "purchased_at": stamp,
        "activated_at": stamp,
        "created_at": stamp,
        "updated_at": stamp,
    })
}
