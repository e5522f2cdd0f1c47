//! Field-level differences between two specs of the same kind.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Kind, Spec};

/// What a secret field shows in every view.
pub const SENSITIVE: &str = "(sensitive)";

/// One field that differs: its dotted path and its value before (live) and after (declared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Value,
    pub after: Value,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// The fields that differ. Secrets compare by fingerprint and show as `(sensitive)`; a secret
/// whose environment variable is unset (`env:NAME`) is unknown and never shows as changed.
pub fn diff(before: &Spec, after: &Spec) -> Vec<FieldChange> {
    let before = before.compared_with(after);
    let before = before.as_ref();
    if before == after {
        return Vec::new();
    }
    let secret_fields: Vec<&str> = after.secrets().into_iter().map(|(name, _)| name).collect();
    let mut out = Vec::new();
    let (b, a) = (to_fields(before), to_fields(after));
    walk("", &b, &a, &mut out);
    out.retain_mut(|c| {
        if !secret_fields.contains(&c.path.as_str()) {
            return true;
        }
        if is_unresolved_secret(&c.after) || is_hidden_secret(&c.before) {
            return false;
        }
        c.sensitive = true;
        c.before = mask(&c.before);
        c.after = mask(&c.after);
        true
    });
    out
}

/// Whether changing this field needs a new object (it has no in-place update).
pub fn requires_replace(kind: Kind, path: &str) -> bool {
    match kind {
        Kind::TelnyxNumber | Kind::TwilioNumber => path == "number" || path.starts_with("number."),
        Kind::TwilioTrunkNumber | Kind::TelnyxEmergencyAddress => true,
        _ => false,
    }
}

fn to_fields(spec: &Spec) -> Value {
    let mut v = serde_json::to_value(spec).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.remove("kind");
        // Kept as they are, never written: drift reports their changes, plan does not.
        map.remove("preserved");
    }
    v
}

fn walk(prefix: &str, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) if !prefix.is_empty() || !a.is_empty() => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                let null = Value::Null;
                walk(
                    &path,
                    b.get(key).unwrap_or(&null),
                    a.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if before != after => out.push(FieldChange {
            path: prefix.to_string(),
            before: before.clone(),
            after: after.clone(),
            sensitive: false,
        }),
        _ => {}
    }
}

/// A live secret the provider masks or omits ([`crate::model::canonical::HIDDEN_SECRET`]).
fn is_hidden_secret(v: &Value) -> bool {
    v.as_str() == Some(crate::model::canonical::HIDDEN_SECRET)
}

fn is_unresolved_secret(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.starts_with("env:"))
}

fn mask(v: &Value) -> Value {
    if v.is_null() {
        Value::Null
    } else {
        Value::String(SENSITIVE.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InboundTrunkSpec, NumberRef, SecretRef, E164};

    fn trunk(auth_user: &str, password: Option<SecretRef>) -> Spec {
        Spec::LivekitInboundTrunk(InboundTrunkSpec {
            name: "Church".into(),
            metadata: String::new(),
            numbers: vec![NumberRef::Number(E164::parse("+14144007103").unwrap())],
            allowed_addresses: vec![],
            allowed_numbers: vec![],
            auth_username: auth_user.into(),
            auth_password: password,
            krisp_enabled: true,
            preserved: Default::default(),
        })
    }

    #[test]
    fn reports_changed_fields_only() {
        let changes = diff(&trunk("churchwiseai", None), &trunk("", None));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "auth_username");
        assert_eq!(changes[0].after, Value::String(String::new()));
    }

    #[test]
    fn secrets_are_masked_and_unknown_secrets_never_differ() {
        let live = trunk("u", Some(SecretRef::Fingerprint("sha256:aaaa".into())));
        let changed = diff(
            &live,
            &trunk("u", Some(SecretRef::Fingerprint("sha256:bbbb".into()))),
        );
        assert_eq!(changed.len(), 1);
        assert!(changed[0].sensitive);
        assert_eq!(changed[0].after, Value::String(SENSITIVE.into()));
        assert!(diff(&live, &trunk("u", Some(SecretRef::Env("X".into())))).is_empty());
    }

    #[test]
    fn equal_specs_have_no_changes() {
        let live = trunk("u", Some(SecretRef::Fingerprint("sha256:aaaa".into())));
        assert!(diff(&live, &live.clone()).is_empty());
    }
}
