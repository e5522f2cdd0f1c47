//! The strict-mode hook of the server: a request is checked against its provider's contract
//! ([`crate::sandbox::contract`]) before any emulator sees it, and refused in that provider's
//! own error shape when it does not match; an answer is checked before it leaves, and one
//! that does not match its response schema is replaced by a 500 naming the mismatch (a bug of
//! the sandbox, never of the client).

use super::*;
use crate::sandbox::contract::{self, RequestBody, Violation};

/// The refusal of a request its contract does not allow, or `None` to let it through.
pub(super) fn check_request(provider: Provider, incoming: &Incoming) -> Option<ApiResponse> {
    let set = contract::for_provider(provider.name())?;
    let body = request_body(provider, incoming);
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
    let Err(violation) = set.check_response(
        &incoming.method,
        &incoming.path,
        response.status,
        &response.body,
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
        _ => match serde_json::from_slice(&incoming.body) {
            Ok(v) => RequestBody::Json(v),
            Err(e) => RequestBody::Unreadable(format!("not JSON: {e}")),
        },
    }
}

/// The provider's answer to a request its contract refuses.
fn refusal(provider: Provider, violation: &Violation) -> ApiResponse {
    let status = match (provider, violation.part) {
        (_, "route") => 404,
        (Provider::Telnyx, "body") => 422,
        _ => 400,
    };
    match provider {
        Provider::Telnyx => telnyx::contract_violation(status, violation),
        Provider::Twilio => twilio::contract_violation(status, violation),
        _ => twirp_error(400, "invalid_argument", &violation.to_string()),
    }
}
