//! What the three clients share beside the HTTP layer: the errors every client words the same
//! way, resolved references, the fingerprint of a secret a provider shows, and "already gone"
//! meaning done for a delete. One copy here, so the clients cannot drift apart on them.

use std::collections::HashSet;

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

/// The most pages cwa reads of one list, at any provider: millions of objects, far past any
/// account cwa manages. A server that would have more is broken or hostile, and reading on
/// would never end (nor would the memory the items take).
pub const MAX_PAGES: u64 = 10_000;

/// The pages of one list as they are read, so that a list always ends: past [`MAX_PAGES`], or
/// at a page whose cursor (a next link, an `after_id`, a page number) was already read, the
/// list is [`undecodable`] instead of read again. Every client's paging loop asks it first.
pub struct Pages {
    provider: ProviderName,
    operation: String,
    seen: HashSet<String>,
}

impl Pages {
    pub fn new(provider: ProviderName, operation: impl Into<String>) -> Self {
        Self {
            provider,
            operation: operation.into(),
            seen: HashSet::new(),
        }
    }

    /// Accounts for reading the page at `cursor`, or refuses it.
    pub fn read(&mut self, cursor: &str) -> Result<(), ProviderError> {
        if !self.seen.insert(cursor.to_string()) {
            return Err(self.refused(cursor, "the server sent this page's cursor again"));
        }
        if self.seen.len() as u64 > MAX_PAGES {
            return Err(self.refused(
                cursor,
                format!("more than {MAX_PAGES} pages; cwa reads no further"),
            ));
        }
        Ok(())
    }

    fn refused(&self, cursor: &str, why: impl ToString) -> ProviderError {
        undecodable(
            self.provider,
            &self.operation,
            &format!("page {}", self.seen.len().max(1)),
            format!("{} (cursor {cursor:?})", why.to_string()),
        )
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

    #[test]
    fn a_list_ends_at_a_repeated_cursor_or_past_the_page_limit() {
        let mut pages = Pages::new(ProviderName::Twilio, "list trunks");
        pages.read("/a").unwrap();
        pages.read("/b").unwrap();
        let again = pages.read("/a").unwrap_err().to_string();
        assert!(again.contains("cursor"), "{again}");

        let mut endless = Pages::new(ProviderName::Livekit, "list inbound trunks");
        let refused = (0..=MAX_PAGES)
            .map(|n| endless.read(&format!("ST_{n:08}")))
            .position(|r| r.is_err());
        assert_eq!(refused, Some(MAX_PAGES as usize));
    }
}
