//! Replaying the journal over a snapshot at start.

use super::*;

/// Runs journaled requests again, in order, at their recorded times. LiveKit assigns random
/// ids, so a replayed create gets a new id: later bodies are rewritten to the new id, and
/// at the end every new id is renamed back to the one the client was told.
pub(super) fn replay(world: &mut World, entries: &[JournalEntry]) {
    let mut renamed: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries {
        let mut body = entry.body_bytes();
        for (original, replayed) in &renamed {
            replace_same_length(&mut body, original.as_bytes(), replayed.as_bytes());
        }
        let provider = Provider::parse(&entry.provider);
        let token = (provider == Provider::Livekit).then(replay_token).flatten();
        let authorization = token.map(|t| format!("Bearer {t}"));
        let req = ApiRequest {
            method: &entry.method,
            path: &entry.path,
            query: &entry.query,
            content_type: entry.content_type.as_deref(),
            authorization: authorization.as_deref(),
            body: &body,
            now: entry.time,
            base_url: "",
        };
        let response = dispatch(world, provider, &req, Auth::Replay);
        if provider == Provider::Livekit {
            if let (Some(original), Some(replayed)) = (&entry.resource_id, &response.resource_id) {
                let known =
                    renamed.contains_key(original) || renamed.values().any(|v| v == original);
                if original != replayed && original.len() == replayed.len() && !known {
                    renamed.insert(original.clone(), replayed.clone());
                }
            }
        }
    }
    if !renamed.is_empty() {
        rename_livekit_ids(world, &renamed);
    }
}

/// A short-lived admin token for replaying LiveKit calls.
pub(super) fn replay_token() -> Option<String> {
    let now = Utc::now().timestamp();
    let claims = json!({
        "iss": LIVEKIT_API_KEY,
        "nbf": now - 10,
        "exp": now + 600,
        "sip": {"admin": true, "call": true},
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(LIVEKIT_API_SECRET.as_bytes()),
    )
    .ok()
}

pub(super) fn replace_same_length(haystack: &mut [u8], from: &[u8], to: &[u8]) {
    if from.len() != to.len() || from.is_empty() || haystack.len() < from.len() {
        return;
    }
    let mut i = 0;
    while i + from.len() <= haystack.len() {
        if &haystack[i..i + from.len()] == from {
            haystack[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}

pub(super) fn rename_livekit_ids(world: &mut World, original_of: &BTreeMap<String, String>) {
    let back: BTreeMap<&str, &str> = original_of
        .iter()
        .map(|(original, replayed)| (replayed.as_str(), original.as_str()))
        .collect();
    let Ok(mut value) = serde_json::to_value(&world.livekit) else {
        return;
    };
    rename_strings(&mut value, &back);
    match serde_json::from_value(value) {
        Ok(livekit) => world.livekit = livekit,
        Err(e) => tracing::error!("sandbox: cannot restore LiveKit ids after replay: {e}"),
    }
}

pub(super) fn rename_strings(value: &mut Value, back: &BTreeMap<&str, &str>) {
    match value {
        Value::String(s) => {
            if let Some(original) = back.get(s.as_str()) {
                *s = original.to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_strings(v, back)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut v) in entries {
                rename_strings(&mut v, back);
                let key = back.get(key.as_str()).map_or(key, |k| k.to_string());
                map.insert(key, v);
            }
        }
        _ => {}
    }
}
