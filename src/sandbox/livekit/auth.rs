//! Access-token checks, as LiveKit's `APIKeyAuthMiddleware` and the SIP handlers do them.
//!
//! Two layers with two error shapes: the middleware rejects a malformed header or a token that
//! does not verify with **401 and a plain-text body**; a request with no token passes it, and the
//! handler's grant check then answers Twirp `unauthenticated` JSON (`permissions denied`).

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

const BEARER: &str = "Bearer ";
/// LiveKit verifies `nbf`/`exp` with this much clock skew allowed.
const LEEWAY_SECONDS: u64 = 60;

/// The grants a SIP RPC may need; every other claim is ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SipGrants {
    pub admin: bool,
    pub call: bool,
}

/// Why the middleware refused the request; the string is the plain-text 401 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sip: Option<SipClaim>,
}

#[derive(Deserialize, Default)]
struct SipClaim {
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    call: bool,
}

#[derive(Deserialize)]
struct UnverifiedIssuer {
    #[serde(default)]
    iss: String,
}

/// Checks the `Authorization` header against the one key/secret pair the sandbox knows.
/// `Ok(None)` means no token at all (the handler will refuse it for lack of grants).
pub fn verify(
    authorization: Option<&str>,
    api_key: &str,
    api_secret: &str,
) -> Result<Option<SipGrants>, Rejected> {
    let header = match authorization {
        None | Some("") => return Ok(None),
        Some(h) => h,
    };
    let token = header.strip_prefix(BEARER).ok_or_else(|| {
        Rejected(format!(
            "invalid authorization header. Must start with {BEARER}"
        ))
    })?;
    let issuer = unverified_issuer(token)?;
    if issuer.is_empty() || issuer != api_key {
        return Err(Rejected("invalid API key".into()));
    }
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(api_secret.as_bytes()),
        &validation(),
    )
    .map_err(|e| {
        Rejected(format!(
            "invalid authorization token: {}",
            describe(e.kind())
        ))
    })?;
    let sip = claims.claims.sip.unwrap_or_default();
    Ok(Some(SipGrants {
        admin: sip.admin,
        call: sip.call,
    }))
}

/// The API key a token claims to be signed by, read before verification to pick the secret.
fn unverified_issuer(token: &str) -> Result<String, Rejected> {
    let malformed = || Rejected("invalid authorization token".into());
    let header = jsonwebtoken::decode_header(token).map_err(|_| malformed())?;
    if header.alg != Algorithm::HS256 {
        return Err(malformed());
    }
    let payload = token.split('.').nth(1).ok_or_else(malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| malformed())?;
    let claims: UnverifiedIssuer = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    Ok(claims.iss)
}

fn validation() -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = LEEWAY_SECONDS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp"]);
    v
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token is expired (exp)".into(),
        ErrorKind::ImmatureSignature => "token not valid yet (nbf)".into(),
        ErrorKind::InvalidSignature => "signature is invalid".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing required claim `{claim}`"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const KEY: &str = "APIsandbox";
    const SECRET: &str = "sandbox-livekit-secret-0123456789abcdef";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn bearer(claims: serde_json::Value) -> String {
        format!("Bearer {}", token(claims, SECRET))
    }

    #[test]
    fn admin_grant_is_read_from_a_valid_token() {
        let h =
            bearer(json!({"iss": KEY, "exp": now() + 600, "nbf": now(), "sip": {"admin": true}}));
        let grants = verify(Some(&h), KEY, SECRET).unwrap().unwrap();
        assert!(grants.admin && !grants.call);
    }

    #[test]
    fn no_header_passes_without_grants() {
        assert_eq!(verify(None, KEY, SECRET), Ok(None));
    }

    #[test]
    fn header_without_bearer_is_rejected_in_plain_text() {
        let err = verify(Some("Basic abc"), KEY, SECRET).unwrap_err();
        assert_eq!(
            err.0,
            "invalid authorization header. Must start with Bearer "
        );
    }

    #[test]
    fn unknown_key_wrong_secret_expired_and_missing_exp_are_rejected() {
        let unknown = bearer(json!({"iss": "APIother", "exp": now() + 600}));
        assert_eq!(
            verify(Some(&unknown), KEY, SECRET).unwrap_err().0,
            "invalid API key"
        );

        let forged = format!(
            "Bearer {}",
            token(json!({"iss": KEY, "exp": now() + 600}), "nope")
        );
        let err = verify(Some(&forged), KEY, SECRET).unwrap_err().0;
        assert!(err.starts_with("invalid authorization token: "), "{err}");

        let expired = bearer(json!({"iss": KEY, "exp": now() - 120}));
        assert!(verify(Some(&expired), KEY, SECRET).is_err());

        let no_exp = bearer(json!({"iss": KEY, "sip": {"admin": true}}));
        assert!(verify(Some(&no_exp), KEY, SECRET).is_err());

        let garbage = verify(Some("Bearer not-a-jwt"), KEY, SECRET).unwrap_err();
        assert_eq!(garbage.0, "invalid authorization token");
    }

    #[test]
    fn leeway_of_sixty_seconds_applies_to_exp_and_nbf() {
        let just_expired = bearer(json!({"iss": KEY, "exp": now() - 30, "sip": {"admin": true}}));
        assert!(verify(Some(&just_expired), KEY, SECRET).is_ok());
        let early = bearer(json!({"iss": KEY, "exp": now() + 600, "nbf": now() + 30}));
        assert!(verify(Some(&early), KEY, SECRET).is_ok());
        let too_early = bearer(json!({"iss": KEY, "exp": now() + 600, "nbf": now() + 300}));
        assert!(verify(Some(&too_early), KEY, SECRET).is_err());
    }
}
