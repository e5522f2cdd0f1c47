//! The `/sandbox/*` control routes: the world as JSON, the call path, faults, Telnyx INVITEs.
//! Never faulted.

use super::*;

pub(super) fn control(shared: &Shared, incoming: &Incoming) -> ApiResponse {
    let segments: Vec<&str> = incoming.path.split('/').filter(|s| !s.is_empty()).collect();
    match (incoming.method.as_str(), &segments[1..]) {
        ("GET", ["world"]) => {
            let world = lock(&shared.world);
            match serde_json::to_value(&*world) {
                Ok(value) => ApiResponse::json(200, &value),
                Err(e) => ApiResponse::json(500, &json!({"error": e.to_string()})),
            }
        }
        ("GET", ["faults"]) => faults_answer(&lock(&shared.faults)),
        ("POST", ["faults"]) => match serde_json::from_slice::<FaultConfig>(&incoming.body) {
            Ok(config) => {
                let mut faults = lock(&shared.faults);
                faults.set(config);
                faults_answer(&faults)
            }
            Err(e) => ApiResponse::json(
                400,
                &json!({"error": format!("invalid fault configuration: {e}")}),
            ),
        },
        ("POST", ["calls"]) => match call_endpoints(&incoming.body) {
            Ok((from, to)) => {
                let world = lock(&shared.world);
                let result = calls::simulate(&world, &from, &to);
                ApiResponse::json(200, &serde_json::to_value(result).unwrap_or(Value::Null))
            }
            Err(response) => response,
        },
        ("POST", ["telnyx", "invite"]) => match call_endpoints(&incoming.body) {
            Ok((from, to)) => {
                let world = lock(&shared.world);
                let answer = match world.telnyx.inbound_invite(&to, &from) {
                    Ok(invite) => json!({"delivered": true, "invite": invite}),
                    Err(failure) => json!({"delivered": false, "reason": failure.to_string()}),
                };
                ApiResponse::json(200, &answer)
            }
            Err(response) => response,
        },
        ("POST", ["telnyx", "lapse" | "sell_elsewhere"]) => telnyx_hold(shared, incoming),
        _ => ApiResponse::json(
            404,
            &json!({"error": format!("no control route {} {}", incoming.method, incoming.path)}),
        ),
    }
}

pub(super) fn faults_answer(faults: &Faults) -> ApiResponse {
    ApiResponse::json(
        200,
        &serde_json::to_value(faults.config()).unwrap_or(Value::Null),
    )
}

pub(super) fn call_endpoints(body: &[u8]) -> Result<(String, String), ApiResponse> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiResponse::json(400, &json!({"error": format!("invalid JSON: {e}")})))?;
    let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
    match (field("from"), field("to")) {
        (Some(from), Some(to)) => Ok((from, to)),
        _ => Err(ApiResponse::json(
            400,
            &json!({"error": "expected {\"from\": \"+1…\", \"to\": \"+1…\"}"}),
        )),
    }
}

/// `POST /sandbox/telnyx/lapse {"id"}`: a reservation's 30 minutes pass now.
/// `POST /sandbox/telnyx/sell_elsewhere {"phone_number"}`: another customer buys the number
/// (refused with 409 while this account holds it).
fn telnyx_hold(shared: &Shared, incoming: &Incoming) -> ApiResponse {
    let value: Value = serde_json::from_slice(&incoming.body).unwrap_or(Value::Null);
    let field = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default();
    let now = chrono::Utc::now();
    let mut world = lock(&shared.world);
    if incoming.path.ends_with("/lapse") {
        return match world.telnyx.lapse_reservation(field("id"), now) {
            true => ApiResponse::json(200, &json!({"lapsed": field("id")})),
            false => ApiResponse::json(404, &json!({"error": "no such reservation"})),
        };
    }
    match world.telnyx.sell_elsewhere(field("phone_number"), now) {
        Ok(()) => ApiResponse::json(200, &json!({"sold": true})),
        Err(reason) => ApiResponse::json(409, &json!({"sold": false, "reason": reason})),
    }
}
