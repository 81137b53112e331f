//! What every request passes on its way in, whatever it is for, in this order:
//!
//! 1. it carries a credential at all (`auth::require_credentials`);
//! 2. the credential is checked as far as it can be without the body: a bearer token
//!    completely, a SigV4 credential's scope, signing time and access key;
//! 3. only then does the body take a share of the process-wide budget, and of its
//!    peer's share (`budget`: no one address can hold it all);
//! 4. the body is read within a deadline that allows a slow but honest client
//!    (`BODY_READ_BASE` plus the declared length at `BODY_READ_RATE_MIN`);
//! 5. the SigV4 signature is verified over the whole request.
//!
//! So a client with no valid credential holds no body budget, and one that stops
//! sending its body loses its share when the deadline passes. The gateway (`POST /`)
//! and the admin API (`/admin/v1`) both take requests through here.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header, request::Parts};
use protocol::{ApiError, ErrorCode, limits};

use crate::auth::{Caller, Prepared};
use crate::budget::BodyPermit;
use crate::state::AppState;

/// Every body may take this long, plus its length at the minimum rate.
pub const BODY_READ_BASE: Duration = Duration::from_secs(10);
/// The slowest upload a body is waited for: 64 KiB/s (a 16 MiB body gets 266 s: 10 s and 256 s).
pub const BODY_READ_RATE_MIN: usize = 64 * 1024;

/// The length a request declares, checked against the body limit; the limit itself
/// when it declares none (a chunked body is read up to it).
fn declared_length(headers: &HeaderMap) -> Result<usize, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(limits::REQUEST_BODY_BYTES_MAX);
    if declared > limits::REQUEST_BODY_BYTES_MAX {
        return Err(body_too_large());
    }
    Ok(declared)
}

pub fn body_too_large() -> ApiError {
    ApiError::new(
        ErrorCode::SerializationException,
        format!(
            "Request body exceeds {} bytes.",
            limits::REQUEST_BODY_BYTES_MAX
        ),
    )
}

/// How long a body of `declared` bytes is waited for.
pub fn body_deadline(declared: usize) -> Duration {
    BODY_READ_BASE + Duration::from_secs((declared / BODY_READ_RATE_MIN) as u64)
}

/// The caller as far as it is known before the body is read.
enum Pending {
    /// A bearer token or a scraper's Basic credential, verified whole.
    Bearer(Caller),
    /// A SigV4 credential whose key exists; the signature waits for the body.
    Signed(Box<Prepared>),
}

/// The token of a `Bearer` authorization (the scheme is case-insensitive, RFC 9110).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// The user and password of a `Basic` authorization.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Checks what can be checked of the caller without the body.
async fn prepare(state: &AppState, parts: &Parts, service: &str) -> Result<Pending, ApiError> {
    let authorization = auth_header(parts);
    if let Some((user, password)) = basic_credentials(authorization) {
        // Only a scraper's GET /metrics: everywhere else an access key signs (SigV4).
        if parts.uri.path() != "/metrics" || parts.method != http::Method::GET {
            return Err(ApiError::new(
                ErrorCode::IncompleteSignature,
                "Basic authentication is accepted for GET /metrics only; sign other requests with SigV4.",
            ));
        }
        return Ok(Pending::Bearer(
            state.authenticator.basic(&user, &password).await?,
        ));
    }
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    match bearer {
        Some(token) => Ok(Pending::Bearer(state.tokens.verify(token.trim()).await?)),
        None => Ok(Pending::Signed(Box::new(
            state.authenticator.prepare(parts, service).await?,
        ))),
    }
}

/// Admits one request: its caller and its body, read whole, with the body's share of
/// the budgets (hold it until the body is no longer needed).
pub async fn admit<'a>(
    state: &'a AppState,
    parts: &Parts,
    body: Body,
    service: &str,
) -> Result<(Caller, Bytes, BodyPermit<'a>), ApiError> {
    // INVARIANT: nothing reaches a service, and no storage is touched, before the
    // signature is verified; no body budget is held before the credential checked out.
    crate::auth::require_credentials(parts)?;
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let pending = match prepare(state, parts, service).await {
        Ok(pending) => pending,
        Err(error) => return Err(refused(state, parts, peer, None, error)),
    };
    let declared = declared_length(&parts.headers)?;
    let permit = state.bodies.reserve(peer, declared).await?;
    let body = tokio::time::timeout(
        body_deadline(declared),
        axum::body::to_bytes(body, limits::REQUEST_BODY_BYTES_MAX),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            ErrorCode::RequestTimeout,
            "The request body was not received in time.",
        )
    })?
    .map_err(|_| body_too_large())?;
    let mut caller = match pending {
        Pending::Bearer(caller) => caller,
        Pending::Signed(prepared) => {
            let claimed = prepared.claimed().clone();
            match state
                .authenticator
                .verify(*prepared, parts, body.clone())
                .await
            {
                Ok(caller) => caller,
                Err(error) => return Err(refused(state, parts, peer, Some(&claimed), error)),
            }
        }
    };
    caller.source_ip = peer;
    caller.tls_version = parts
        .extensions
        .get::<crate::tls::TlsVersion>()
        .map(|v| v.0);
    Ok((caller, body, permit))
}

/// A failed authentication: counted, logged at info and put in the audit trail (both
/// within the client address's share, `trail`); the refusal itself is returned.
/// `claimed` is the access key's owner when the key exists but the signature is wrong.
fn refused(
    state: &AppState,
    parts: &Parts,
    peer: Option<std::net::IpAddr>,
    claimed: Option<&Caller>,
    error: ApiError,
) -> ApiError {
    if error.code == ErrorCode::InternalFailure {
        return error;
    }
    let reason = error.code.type_name();
    metrics::counter!("sluice_authentication_failures_total", "reason" => reason).increment(1);
    let Some(peer) = peer else {
        return error;
    };
    // Never the token or the signature: the access key id (public) or the scheme.
    let presented = match protocol::sigv4::parse_credential(parts) {
        Ok(credential) => format!("accessKeyId/{}", credential.access_key_id),
        Err(_) if bearer_token(auth_header(parts)).is_some() => "bearer-token".to_string(),
        Err(_) if let Some((user, _)) = basic_credentials(auth_header(parts)) => {
            format!("accessKeyId/{}", user.chars().take(128).collect::<String>())
        }
        Err(_) => "malformed-authorization".to_string(),
    };
    let operator = state.authz.operator_account();
    let (account, principal) = match claimed {
        Some(caller) => (caller.account_id.as_str(), caller.principal_arn.as_str()),
        None => (operator, ""),
    };
    let entry = catalog::audit::AuditEntry {
        id: 0,
        at_ms: state.clock.now_ms(),
        request_id: String::new(),
        principal_account: account.to_string(),
        principal: if principal.is_empty() {
            presented.clone()
        } else {
            principal.to_string()
        },
        action: "sluice:Authenticate".to_string(),
        resource_account: account.to_string(),
        resource: presented.clone(),
        decision: "Deny".to_string(),
        policies: vec![format!("{reason}: {}", error.message)],
        source_ip: peer.to_string(),
        tls_version: parts
            .extensions
            .get::<crate::tls::TlsVersion>()
            .map(|v| v.0)
            .unwrap_or("unknown")
            .to_string(),
    };
    if state.authz.record_refused_authentication(peer, entry) {
        tracing::info!(%peer, presented = %presented, reason, "authentication failed");
    }
    error
}

fn auth_header(parts: &Parts) -> &str {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_and_nothing_else() {
        // "AKIAEXAMPLE:se:cret" (a password may hold a colon).
        assert_eq!(
            basic_credentials("Basic QUtJQUVYQU1QTEU6c2U6Y3JldA=="),
            Some(("AKIAEXAMPLE".into(), "se:cret".into()))
        );
        assert_eq!(
            basic_credentials("basic QUtJQUVYQU1QTEU6c2U6Y3JldA=="),
            Some(("AKIAEXAMPLE".into(), "se:cret".into()))
        );
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Bearer abc"), None);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("AWS4-HMAC-SHA256 Credential=x"), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }

    #[test]
    fn a_body_deadline_allows_a_slow_honest_client() {
        assert_eq!(body_deadline(0), BODY_READ_BASE);
        assert_eq!(
            body_deadline(limits::REQUEST_BODY_BYTES_MAX),
            BODY_READ_BASE + Duration::from_secs(256)
        );
    }
}
