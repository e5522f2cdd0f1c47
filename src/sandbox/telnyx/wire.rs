//! Telnyx's wire conventions: the `{"data": …}` envelope, error bodies, timestamps, bodies.

use super::*;

/// A Telnyx error answer: `{"errors":[{code,title,detail,source?,meta:{url}}]}`.
pub(super) fn error(
    status: u16,
    code: &str,
    title: &str,
    detail: &str,
    source: Option<Value>,
) -> ApiResponse {
    let mut item = json!({"code": code, "title": title, "detail": detail});
    if let Some(source) = source {
        item["source"] = source;
    }
    item["meta"] = json!({"url": format!("{ERROR_DOCS}/{code}")});
    ApiResponse::json(status, &json!({"errors": [item]}))
}

pub(super) fn not_found(what: &str) -> ApiResponse {
    error(
        404,
        "10005",
        "Resource not found",
        &format!("The requested {what} could not be found."),
        None,
    )
}

pub(super) fn invalid(pointer: &str, detail: &str) -> ApiResponse {
    error(
        422,
        "10015",
        "Bad Request",
        detail,
        Some(json!({"pointer": pointer})),
    )
}

pub(super) fn missing(pointer: &str) -> ApiResponse {
    error(
        422,
        "10004",
        "Missing required parameter",
        &format!(
            "The '{}' parameter is required.",
            pointer.trim_start_matches('/')
        ),
        Some(json!({"pointer": pointer})),
    )
}

pub(super) fn bad_parameter(parameter: &str, detail: &str) -> ApiResponse {
    error(
        400,
        "10015",
        "Bad Request",
        detail,
        Some(json!({"parameter": parameter})),
    )
}

pub(super) fn in_use(detail: &str) -> ApiResponse {
    error(422, "10021", "Resource in use", detail, None)
}

/// The 401 every request without the right Bearer key gets.
pub fn unauthorized() -> ApiResponse {
    error(
        401,
        "10009",
        "Authentication failed",
        "The API key provided was missing or invalid.",
        None,
    )
}

/// The 429 body of Telnyx's rate limiter (code 10011).
pub fn too_many_requests() -> ApiResponse {
    error(
        429,
        "10011",
        "Too many requests",
        "You have exceeded the rate limit for this resource.",
        None,
    )
}

/// A Telnyx-shaped 5xx for injected faults.
pub fn server_error(status: u16) -> ApiResponse {
    let title = if status == 503 {
        "Service unavailable"
    } else {
        "Unexpected error"
    };
    error(
        status,
        "10007",
        title,
        "An unexpected error occurred.",
        None,
    )
}

/// Telnyx timestamps: ISO-8601 with milliseconds, UTC.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn data(status: u16, object: Value) -> ApiResponse {
    ApiResponse::json(status, &json!({ "data": object }))
}

pub(super) fn str_field<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

pub(super) fn nested_str<'a>(object: &'a Value, outer: &str, key: &str) -> Option<&'a str> {
    object
        .get(outer)
        .and_then(|o| o.get(key))
        .and_then(Value::as_str)
}

pub(super) fn object_body(req: &ApiRequest) -> Result<Map<String, Value>, ApiResponse> {
    match req.json_body() {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(error(
            400,
            "10015",
            "Bad Request",
            "The request body must be a JSON object.",
            None,
        )),
        Err(e) => Err(error(
            400,
            "10015",
            "Bad Request",
            &format!("The request body is not valid JSON: {e}"),
            None,
        )),
    }
}

/// Telnyx's answer to a request strict mode refuses (422 / 10015 with the offending pointer,
/// 10004 for a missing required key, 400 for a query parameter, 404 / 10005 for a route no
/// contract declares), or a 500 for an answer that broke its own
/// schema.
pub fn contract_violation(
    status: u16,
    violation: &crate::sandbox::contract::Violation,
) -> ApiResponse {
    let (code, title) = match status {
        404 => ("10005", "Resource not found"),
        500 => ("10007", "Unexpected error"),
        _ if violation.missing => ("10004", "Missing required parameter"),
        _ => ("10015", "Bad Request"),
    };
    let source = match violation.part {
        "query" => Some(json!({"parameter": violation.pointer.trim_start_matches('/')})),
        "body" => Some(json!({"pointer": violation.pointer})),
        _ => None,
    };
    error(status, code, title, &violation.to_string(), source)
}
