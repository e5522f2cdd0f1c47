//! What the three clients share beside the HTTP layer: the errors every client words the same
//! way, resolved references, the fingerprint of a secret a provider shows, and "already gone"
//! meaning done for a delete. One copy here, so the clients cannot drift apart on them.

use serde::de::DeserializeOwned;

use super::ProviderError;
use crate::model::{fingerprint, Kind, ProviderName, Ref, SecretRef};

/// A write or read was routed to the client of another provider (a bug in the caller).
pub fn not_mine(
    provider: ProviderName,
    kind: Kind,
    operation: &str,
    object: &str,
) -> ProviderError {
    ProviderError::Unsupported {
        provider,
        operation: operation.to_string(),
        object: object.to_string(),
        detail: format!("{kind} is not a {provider} kind"),
    }
}

/// An answer that arrived but could not be read into cwa's wire types.
pub fn undecodable(
    provider: ProviderName,
    operation: &str,
    object: &str,
    detail: impl ToString,
) -> ProviderError {
    ProviderError::Decode {
        provider,
        operation: operation.to_string(),
        object: object.to_string(),
        detail: detail.to_string(),
    }
}

/// A JSON answer read into a wire type; a mismatch is [`undecodable`].
pub fn from_json<T: DeserializeOwned>(
    provider: ProviderName,
    value: serde_json::Value,
    operation: &str,
    object: &str,
) -> Result<T, ProviderError> {
    serde_json::from_value(value).map_err(|e| undecodable(provider, operation, object, e))
}

/// A reference must be a live id by the time it reaches a provider.
pub fn live_id<'a>(
    provider: ProviderName,
    r: &'a Ref,
    object: &str,
) -> Result<&'a str, ProviderError> {
    match r {
        Ref::Id(id) => Ok(id),
        Ref::Addr(a) => Err(ProviderError::Config {
            provider,
            detail: format!("{object}: the reference to {a} was not resolved to a live id"),
        }),
    }
}

/// Every reference of a list as a live id ([`live_id`]).
pub fn live_ids(
    provider: ProviderName,
    refs: &[Ref],
    object: &str,
) -> Result<Vec<String>, ProviderError> {
    refs.iter()
        .map(|r| live_id(provider, r, object).map(str::to_string))
        .collect()
}

/// A secret as cwa compares it: the fingerprint of the value the provider shows; none when
/// it shows an empty one.
pub fn shown_secret(value: Option<&str>) -> Option<SecretRef> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| SecretRef::Fingerprint(fingerprint(v)))
}

/// A delete whose object is already gone has done its job (a retried delete after a lost
/// answer, or someone removed it by hand).
pub fn gone_is_done<T>(result: Result<T, ProviderError>) -> Result<(), ProviderError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unresolved_references_are_refused_and_named() {
        let p = ProviderName::Twilio;
        assert_eq!(live_id(p, &Ref::Id("TK1".into()), "x").unwrap(), "TK1");
        let err = live_ids(
            p,
            &[
                Ref::Id("TK1".into()),
                Ref::Addr("twilio_trunk.main".parse().unwrap()),
            ],
            "x",
        )
        .unwrap_err();
        assert!(err.to_string().contains("twilio_trunk.main"), "{err}");
    }

    #[test]
    fn a_gone_object_is_a_done_delete() {
        let gone = ProviderError::Api {
            provider: ProviderName::Telnyx,
            operation: "DELETE".into(),
            object: "x".into(),
            status: 404,
            code: "10005".into(),
            detail: "not found".into(),
        };
        assert!(gone_is_done::<()>(Err(gone)).is_ok());
        assert!(shown_secret(Some("")).is_none());
        assert!(shown_secret(Some("pw")).is_some());
    }
}
