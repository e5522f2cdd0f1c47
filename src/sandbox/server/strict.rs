//! The strict-mode hook of the server: a request is checked against its provider's contract
//! ([`crate::sandbox::contract`]) before any emulator sees it, and refused in that provider's
//! own error shape when it does not match; an answer is checked before it leaves, and one
//! that does not match its response schema is replaced by a 500 naming the mismatch (a bug of
//! the sandbox, never of the client).

use super::*;
use std::collections::BTreeSet;

use crate::sandbox::contract::{self, RequestBody, Violation};

/// The refusal of a request its contract does not allow, or `None` to let it through.
/// `newer`: names of fields the emulated LiveKit server knows beyond the extract
/// ([`crate::sandbox::livekit::LivekitState::newer_fields`], a server newer than the protos the
/// extract came from); a JSON body may carry them.
pub(super) fn check_request(
    provider: Provider,
    incoming: &Incoming,
    newer: &BTreeSet<String>,
) -> Option<ApiResponse> {
    let set = contract::for_provider(provider.name())?;
    if provider == Provider::Livekit && !is_twirp_call(incoming) {
        // Twirp's own routing answers (a GET, an unknown content type) are the server's.
        return None;
    }
    let mut body = request_body(provider, incoming);
    if let RequestBody::Json(v) = &mut body {
        without_keys(v, newer);
    }
    let violation = set
        .check_request(&incoming.method, &incoming.path, &incoming.query, &body)
        .err()?;
    tracing::warn!(%violation, "sandbox (strict): request refused");
    let write = !matches!(incoming.method.as_str(), "GET" | "HEAD");
    Some(refusal(provider, &violation).with_write(write))
}

/// The answer itself, or a 500 when it breaks its response schema.
pub(super) fn check_response(
    provider: Provider,
    incoming: &Incoming,
    response: ApiResponse,
) -> ApiResponse {
    let Some(set) = contract::for_provider(provider.name()) else {
        return response;
    };
    if provider == Provider::Livekit
        && (!is_twirp_call(incoming) || response.content_type.starts_with("text/"))
    {
        // Plain-text 401s come from LiveKit's auth middleware in front of Twirp.
        return response;
    }
    let Err(violation) = set.check_response(
        &incoming.method,
        &incoming.path,
        response.status,
        &response.body,
        response.content_type == "application/protobuf",
    ) else {
        return response;
    };
    tracing::error!(%violation, "sandbox (strict): an answer breaks its contract");
    let broken = match provider {
        Provider::Telnyx => telnyx::contract_violation(500, &violation),
        Provider::Twilio => twilio::contract_violation(500, &violation),
        _ => twirp_error(500, "internal", &violation.to_string()),
    };
    ApiResponse {
        resource_id: response.resource_id,
        write: response.write,
        ..broken
    }
}

/// What the request carried, in the form its provider's contract reads.
fn request_body(provider: Provider, incoming: &Incoming) -> RequestBody {
    if incoming.body.iter().all(u8::is_ascii_whitespace) {
        return RequestBody::None;
    }
    match provider {
        Provider::Twilio => match serde_urlencoded::from_bytes(&incoming.body) {
            Ok(pairs) => RequestBody::Form(pairs),
            Err(e) => RequestBody::Unreadable(format!("not a form body: {e}")),
        },
        Provider::Livekit if is_protobuf(incoming) => RequestBody::Protobuf(incoming.body.clone()),
        _ => match serde_json::from_slice(&incoming.body) {
            Ok(v) => RequestBody::Json(v),
            Err(e) => RequestBody::Unreadable(format!("not JSON: {e}")),
        },
    }
}

/// The media type of a request (`Content-Type` without parameters, lower-case).
fn media_type(incoming: &Incoming) -> String {
    let raw = incoming.content_type.as_deref().unwrap_or("");
    raw.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a Twirp request is protobuf.
fn is_protobuf(incoming: &Incoming) -> bool {
    media_type(incoming) == "application/protobuf"
}

/// A `POST` in one of Twirp's two encodings: what the contract describes.
fn is_twirp_call(incoming: &Incoming) -> bool {
    incoming.method == "POST"
        && matches!(
            media_type(incoming).as_str(),
            "application/protobuf" | "application/json"
        )
}

/// `value` without any object key named in `keys`, at any depth.
fn without_keys(value: &mut Value, keys: &BTreeSet<String>) {
    match value {
        Value::Object(m) => {
            m.retain(|k, _| !keys.contains(k));
            m.values_mut().for_each(|v| without_keys(v, keys));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| without_keys(v, keys)),
        _ => {}
    }
}

/// The provider's answer to a request its contract refuses. LiveKit answers as its Twirp
/// server does: `bad_route` (404) for a method the protos lack, `malformed` (400) for a body
/// that does not read as the request message (wrong types; unknown fields, which the real
/// server drops silently, are refused too, so a write that would do nothing fails the suite).
fn refusal(provider: Provider, violation: &Violation) -> ApiResponse {
    let status = match (provider, violation.part) {
        (_, "route") => 404,
        (Provider::Telnyx, "body") => 422,
        _ => 400,
    };
    match provider {
        Provider::Telnyx => telnyx::contract_violation(status, violation),
        Provider::Twilio => twilio::contract_violation(status, violation),
        _ if violation.part == "route" => twirp_error(404, "bad_route", &violation.to_string()),
        _ => twirp_error(400, "malformed", &violation.to_string()),
    }
}
