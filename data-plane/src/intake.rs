//! What every request passes on its way in, whatever it is for, in this order:
//!
//! 1. it carries a credential at all (`auth::require_credentials`);
//! 2. the credential is checked as far as it can be without the body: a bearer token
//!    completely, a SigV4 credential's scope, signing time and access key;
//! 3. only then does the body take a share of the process-wide budget, and of its
//!    peer's share (so no one address can hold it all);
//! 4. the body is read within a deadline that allows a slow but honest client
//!    (`BODY_READ_BASE` plus the declared length at `BODY_READ_RATE_MIN`);
//! 5. the SigV4 signature is verified over the whole request.
//!
//! So a client with no valid credential holds no body budget, and one that stops
//! sending its body loses its share when the deadline passes. The gateway (`POST /`)
//! and the admin API (`/admin/v1`) both take requests through here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header, request::Parts};
use protocol::{ApiError, ErrorCode, limits};

use crate::auth::{Caller, Prepared};
use crate::state::AppState;

/// Bytes of request bodies held in memory at once, at most; a request waits up to
/// `BODY_BUDGET_WAIT` for its share, then gets `ServiceUnavailable`.
pub const BODY_BUDGET_BYTES: usize = 512 * 1024 * 1024;
/// Of that, what requests from one address may hold at once.
pub const PEER_BODY_BYTES_MAX: usize = BODY_BUDGET_BYTES / 2;
const BODY_BUDGET_WAIT: Duration = Duration::from_secs(5);
/// Every body may take this long, plus its length at the minimum rate.
pub const BODY_READ_BASE: Duration = Duration::from_secs(10);
/// The slowest upload a body is waited for: 64 KiB/s (an 8 MiB body gets 138 s).
pub const BODY_READ_RATE_MIN: usize = 64 * 1024;
/// Addresses whose shares are tracked at once (one entry per address with a body in
/// flight); past it, new addresses wait for the global budget only.
const PEERS_TRACKED_MAX: usize = 100_000;

// INVARIANT: one address can never hold the whole budget.
const _: () = assert!(PEER_BODY_BYTES_MAX < BODY_BUDGET_BYTES);
const _: () = assert!(limits::REQUEST_BODY_BYTES_MAX <= PEER_BODY_BYTES_MAX);

/// Body bytes held per address.
#[derive(Default)]
pub struct PeerBudgets {
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl PeerBudgets {
    /// Takes `bytes` of `peer`'s share, or refuses when the share is spent.
    fn take(&self, peer: IpAddr, bytes: usize) -> Result<(), ApiError> {
        let mut held = self.held.lock().expect("peer budgets lock");
        if held.len() >= PEERS_TRACKED_MAX && !held.contains_key(&peer) {
            return Ok(());
        }
        let entry = held.entry(peer).or_insert(0);
        if *entry + bytes > PEER_BODY_BYTES_MAX {
            return Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                "Too many request bodies are in flight from this address; retry the request.",
            ));
        }
        *entry += bytes;
        Ok(())
    }

    fn give_back(&self, peer: IpAddr, bytes: usize) {
        let mut held = self.held.lock().expect("peer budgets lock");
        if let Some(entry) = held.get_mut(&peer) {
            *entry = entry.saturating_sub(bytes);
            if *entry == 0 {
                held.remove(&peer);
            }
        }
    }
}

/// A request body's share of the budgets, given back when dropped.
pub struct BodyPermit<'a> {
    _global: tokio::sync::SemaphorePermit<'a>,
    peer: Option<(&'a PeerBudgets, IpAddr, usize)>,
}

impl Drop for BodyPermit<'_> {
    fn drop(&mut self) {
        if let Some((budgets, peer, bytes)) = self.peer.take() {
            budgets.give_back(peer, bytes);
        }
    }
}

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

/// Reserves the body's declared length from the process-wide budget and from its
/// peer's share, so many large requests at once wait or are refused instead of
/// exhausting memory, and one address cannot starve the rest.
pub async fn reserve_body_bytes<'a>(
    state: &'a AppState,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<BodyPermit<'a>, ApiError> {
    let declared = declared_length(headers)?;
    let busy = || {
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            "The server is busy; retry the request.",
        )
    };
    // Every request holds at least one permit, so the count of requests in flight is
    // bounded too.
    let bytes = declared.max(1);
    if let Some(peer) = peer {
        state.peer_budgets.take(peer, bytes)?;
    }
    let peer_share = peer.map(|p| (&state.peer_budgets, p, bytes));
    let permits = u32::try_from(bytes).expect("bounded by the body limit");
    let global = tokio::time::timeout(BODY_BUDGET_WAIT, state.body_budget.acquire_many(permits))
        .await
        .map_err(|_| busy())
        .and_then(|acquired| acquired.map_err(|_| busy()));
    match global {
        Ok(global) => Ok(BodyPermit {
            _global: global,
            peer: peer_share,
        }),
        Err(e) => {
            if let Some((budgets, peer, bytes)) = peer_share {
                budgets.give_back(peer, bytes);
            }
            Err(e)
        }
    }
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
    /// A bearer token, verified whole.
    Bearer(Caller),
    /// A SigV4 credential whose key exists; the signature waits for the body.
    Signed(Box<Prepared>),
}

/// Checks what can be checked of the caller without the body.
async fn prepare(state: &AppState, parts: &Parts, service: &str) -> Result<Pending, ApiError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
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
    let pending = prepare(state, parts, service).await?;
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let permit = reserve_body_bytes(state, peer, &parts.headers).await?;
    let declared = declared_length(&parts.headers)?;
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
            state
                .authenticator
                .verify(*prepared, parts, body.clone())
                .await?
        }
    };
    caller.source_ip = peer;
    caller.tls_version = parts
        .extensions
        .get::<crate::tls::TlsVersion>()
        .map(|v| v.0);
    Ok((caller, body, permit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_hold_the_whole_budget() {
        let budgets = PeerBudgets::default();
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let body = limits::REQUEST_BODY_BYTES_MAX;
        let fits = PEER_BODY_BYTES_MAX / body;
        for _ in 0..fits {
            budgets.take(a, body).unwrap();
        }
        let refused = budgets.take(a, body).unwrap_err();
        assert_eq!(refused.code, ErrorCode::ServiceUnavailable);
        // Another address still has its share, and a given-back share is free again.
        budgets.take(b, body).unwrap();
        budgets.give_back(a, body);
        budgets.take(a, body).unwrap();
    }

    #[test]
    fn a_body_deadline_allows_a_slow_honest_client() {
        assert_eq!(body_deadline(0), BODY_READ_BASE);
        assert_eq!(
            body_deadline(limits::REQUEST_BODY_BYTES_MAX),
            BODY_READ_BASE + Duration::from_secs(128)
        );
    }
}
