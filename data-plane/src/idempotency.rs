//! Idempotent puts: a PutRecord or PutRecords carrying `X-Sluice-Idempotency-Key` is
//! stored once within the window (`--idempotency-window-seconds`, 5 minutes by
//! default). The first request claims the key in the catalog, runs, and stores its
//! answer; a retry of the same request (same operation, principal, content type and
//! body) gets that answer, the same sequence numbers, and writes nothing. A retry that
//! arrives while the first still runs waits for its answer.
//!
//! The limits, as README.md states them: a key names one request, so records that a
//! PutRecords answer reports as failed are retried under a new key; a request that
//! fails gives its key up, and one whose server died after storing its records but
//! before storing its answer leaves the outcome unknown, which a retry is told rather
//! than risk storing the records twice.

use std::time::Duration;

use axum::http::HeaderMap;
use catalog::idempotency::Claim;
use protocol::{ApiError, ErrorCode};

use crate::auth::Caller;
use crate::state::AppState;

/// The header a client sets (any AWS SDK can add a header to a call).
pub const HEADER: &str = "x-sluice-idempotency-key";
/// A key is 1 to 255 printable ASCII characters.
pub const KEY_CHARS_MAX: usize = 255;
/// How long a retry waits for the answer of a first request still running.
const PENDING_WAIT: Duration = Duration::from_secs(10);
/// A claim without an answer this old belongs to a request whose server stopped.
const PENDING_ABANDONED_MS: i64 = 120_000;

/// The key a request carries, checked; `None` without the header.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("");
    if key.is_empty() || key.len() > KEY_CHARS_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "X-Sluice-Idempotency-Key must be 1 to {KEY_CHARS_MAX} printable ASCII characters."
            ),
        ));
    }
    Ok(Some(key.to_string()))
}

/// What the request does next.
pub enum Next {
    /// Run it; then `finish` with its outcome.
    Run,
    /// Answer with what the first request answered.
    Replay(Vec<u8>),
}

fn request_hash(caller: &Caller, target: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [
        target.as_bytes(),
        caller.principal_arn.as_bytes(),
        content_type.as_bytes(),
        body,
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.finish().as_ref().to_vec()
}

fn catalog_error(e: catalog::CatalogError) -> ApiError {
    edge::wire_error(e)
}

/// Claims `key` for this request, or finds the answer of the request that has it.
pub async fn begin(
    state: &AppState,
    caller: &Caller,
    key: &str,
    target: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Next, ApiError> {
    let hash = request_hash(caller, target, content_type, body);
    let window = state.config.idempotency_window.as_millis() as i64;
    let waited_until = tokio::time::Instant::now() + PENDING_WAIT;
    loop {
        let now = state.clock.now_ms();
        let claim = state
            .catalog
            .claim_idempotency_key(&caller.account_id, key, &hash, now, now + window)
            .await
            .map_err(catalog_error)?;
        match claim {
            Claim::New => return Ok(Next::Run),
            Claim::Done(answer) => return Ok(Next::Replay(answer)),
            Claim::Mismatch => {
                return Err(ApiError::new(
                    ErrorCode::InvalidArgument,
                    "This X-Sluice-Idempotency-Key was used for a different request within its window; use a new key.",
                ));
            }
            Claim::Pending { claimed_at_ms } if now - claimed_at_ms > PENDING_ABANDONED_MS => {
                return Err(ApiError::new(
                    ErrorCode::InvalidArgument,
                    "The earlier request with this X-Sluice-Idempotency-Key stopped before it answered: whether its records were stored is unknown. Read the stream to see, and use a new key.",
                ));
            }
            Claim::Pending { .. } if tokio::time::Instant::now() >= waited_until => {
                return Err(ApiError::new(
                    ErrorCode::ServiceUnavailable,
                    "A request with this X-Sluice-Idempotency-Key is still running; retry later.",
                ));
            }
            Claim::Pending { .. } => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Stores the answer of a request that ran (a retry gets it), or gives the key up
/// after a failure (a retry runs again).
pub async fn finish(state: &AppState, caller: &Caller, key: &str, answer: Result<&[u8], ()>) {
    let stored = match answer {
        Ok(bytes) => {
            state
                .catalog
                .complete_idempotency_key(&caller.account_id, key, bytes)
                .await
        }
        Err(()) => {
            state
                .catalog
                .release_idempotency_key(&caller.account_id, key)
                .await
        }
    };
    if let Err(e) = stored {
        // The records stand; a retry is told the outcome is unknown rather than
        // storing them twice.
        tracing::error!(error = %e, "storing an idempotency key's outcome failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_and_printable() {
        let mut headers = HeaderMap::new();
        assert!(key_of(&headers).unwrap().is_none());
        headers.insert(HEADER, "order-42".parse().unwrap());
        assert_eq!(key_of(&headers).unwrap().as_deref(), Some("order-42"));
        for bad in ["", "has space", &"x".repeat(256)] {
            headers.insert(HEADER, bad.parse().unwrap());
            assert!(key_of(&headers).is_err(), "{bad:?}");
        }
    }
}
