//! The call path on the Telnyx side: what INVITE reaches the SIP endpoint for a dialed number,
//! with numbers formatted the way the connection says (without `+` for `E.164`/`e164`).

use super::*;

impl TelnyxState {
    /// The SIP INVITE Telnyx sends for a call from `from` to `to`, or why it sends none.
    /// Numbers are formatted the way the connection's number formats say, so a connection
    /// left at `E.164`/`e164` delivers them without `+` (the runbooks' lookup failures).
    pub fn inbound_invite(&self, to: &str, from: &str) -> Result<InboundInvite, InboundFailure> {
        let number = self
            .number_by_e164(to)
            .ok_or_else(|| InboundFailure::NotAssigned(to.to_string()))?;
        if str_field(number, "status") != Some("active") {
            return Err(InboundFailure::NotAssigned(to.to_string()));
        }
        let connection_id = str_field(number, "connection_id")
            .ok_or_else(|| InboundFailure::NoConnection(to.to_string()))?
            .to_string();
        if let Some(app) = self.texml_applications.get(&connection_id) {
            return Ok(InboundInvite::texml(&connection_id, app, to, from));
        }
        let connection = self
            .connection(&connection_id)
            .ok_or_else(|| InboundFailure::NoConnection(to.to_string()))?;
        if connection.get("active") == Some(&Value::Bool(false)) {
            return Err(InboundFailure::ConnectionInactive(connection_id));
        }
        let inbound = connection.get("inbound").cloned().unwrap_or(json!({}));
        let user_name = str_field(connection, "user_name").map(str::to_string);
        let to_user = format_dnis(
            str_field(&inbound, "dnis_number_format").unwrap_or("e164"),
            to,
            user_name.as_deref(),
        );
        let from_user = format_ani(
            str_field(&inbound, "ani_number_format").unwrap_or("E.164"),
            from,
            to,
        );
        let target = str_field(&inbound, "default_primary_fqdn_id")
            .and_then(|id| self.fqdns.get(id))
            .map(|f| {
                let port = f.get("port").and_then(Value::as_u64);
                match port {
                    Some(port) => format!("{}:{port}", str_field(f, "fqdn").unwrap_or_default()),
                    None => str_field(f, "fqdn").unwrap_or_default().to_string(),
                }
            });
        Ok(InboundInvite {
            number_id: str_field(number, "id").unwrap_or_default().to_string(),
            connection_id,
            connection_kind: if self
                .fqdn_connections
                .contains_key(str_field(connection, "id").unwrap_or_default())
            {
                "fqdn_connection".into()
            } else {
                "credential_connection".into()
            },
            connection_name: str_field(connection, "connection_name")
                .unwrap_or_default()
                .into(),
            transport: str_field(connection, "transport_protocol")
                .unwrap_or("UDP")
                .into(),
            target,
            to_user,
            from_user,
            auth_user_name: user_name,
            has_password: str_field(connection, "password").is_some_and(|p| !p.is_empty()),
            texml_voice_url: None,
        })
    }
}

/// What Telnyx sends towards the SIP side for one inbound call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundInvite {
    pub number_id: String,
    pub connection_id: String,
    /// `fqdn_connection`, `credential_connection` or `texml_application`.
    pub connection_kind: String,
    pub connection_name: String,
    pub transport: String,
    /// `host:port` of the connection's primary FQDN; `None` means Telnyx has nowhere to send.
    pub target: Option<String>,
    /// The dialed number as the Request-URI / To user carries it (per `dnis_number_format`).
    pub to_user: String,
    /// The caller as the From user carries it (per `ani_number_format`).
    pub from_user: String,
    /// The user name Telnyx answers a digest challenge with.
    pub auth_user_name: Option<String>,
    pub has_password: bool,
    /// For numbers routed to a TeXML application: the URL Telnyx fetches instead.
    pub texml_voice_url: Option<String>,
}

impl InboundInvite {
    fn texml(id: &str, app: &Value, to: &str, from: &str) -> Self {
        Self {
            number_id: String::new(),
            connection_id: id.to_string(),
            connection_kind: "texml_application".into(),
            connection_name: str_field(app, "friendly_name").unwrap_or_default().into(),
            transport: "HTTPS".into(),
            target: None,
            to_user: to.to_string(),
            from_user: from.to_string(),
            auth_user_name: None,
            has_password: false,
            texml_voice_url: str_field(app, "voice_url").map(str::to_string),
        }
    }
}

/// Why Telnyx would not deliver a call to any SIP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum InboundFailure {
    #[error("number not assigned: {0} is not an active number of this account")]
    NotAssigned(String),
    #[error("{0} has no connection: Telnyx answers \"not in service\"")]
    NoConnection(String),
    #[error("connection {0} is inactive")]
    ConnectionInactive(String),
}

/// The dialed number in a connection's `dnis_number_format`.
pub fn format_dnis(format: &str, e164: &str, user_name: Option<&str>) -> String {
    let digits = e164.trim_start_matches('+');
    match format {
        "+e164" => format!("+{digits}"),
        "national" => national(digits).to_string(),
        "sip_username" => user_name.unwrap_or(digits).to_string(),
        _ => digits.to_string(),
    }
}

/// The caller's number in a connection's `ani_number_format`; the `-national` forms drop the
/// country code when caller and callee share it.
pub fn format_ani(format: &str, from: &str, to: &str) -> String {
    let digits = from.trim_start_matches('+');
    let domestic = digits.starts_with('1') && to.trim_start_matches('+').starts_with('1');
    match format {
        "+E.164" => format!("+{digits}"),
        "+E.164-national" if domestic => national(digits).to_string(),
        "+E.164-national" => format!("+{digits}"),
        "E.164-national" if domestic => national(digits).to_string(),
        _ => digits.to_string(),
    }
}

fn national(digits: &str) -> &str {
    if digits.len() == 11 && digits.starts_with('1') {
        &digits[1..]
    } else {
        digits
    }
}
