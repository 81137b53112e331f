//! The memory request bodies may take: a process-wide budget of bytes, and each
//! address's share of it, so that many large requests at once wait or are refused
//! instead of exhausting memory, and no one address can starve the rest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use protocol::{ApiError, ErrorCode, limits};

/// Bytes of request bodies held in memory at once, at most; a request waits up to
/// `BODY_BUDGET_WAIT` for its share, then gets `ServiceUnavailable`.
pub const BODY_BUDGET_BYTES: usize = 512 * 1024 * 1024;
/// Of that, what requests from one address may hold at once.
pub const PEER_BODY_BYTES_MAX: usize = BODY_BUDGET_BYTES / 2;
const BODY_BUDGET_WAIT: Duration = Duration::from_secs(5);
/// Addresses whose shares are tracked at once (one entry per address with a body in
/// flight); past it, new addresses wait for the global budget only.
const PEERS_TRACKED_MAX: usize = 100_000;

// INVARIANT: one address can never hold the whole budget, and it can hold a body.
const _: () = assert!(PEER_BODY_BYTES_MAX < BODY_BUDGET_BYTES);
const _: () = assert!(limits::REQUEST_BODY_BYTES_MAX <= PEER_BODY_BYTES_MAX);

/// The budget and what each address holds of it.
pub struct BodyBudget {
    /// Permits are bytes.
    global: tokio::sync::Semaphore,
    peers: Mutex<HashMap<IpAddr, usize>>,
}

impl Default for BodyBudget {
    fn default() -> Self {
        BodyBudget {
            global: tokio::sync::Semaphore::new(BODY_BUDGET_BYTES),
            peers: Mutex::new(HashMap::new()),
        }
    }
}

/// A request body's share of the budget, given back when dropped.
pub struct BodyPermit<'a> {
    _global: tokio::sync::SemaphorePermit<'a>,
    peer: Option<(&'a BodyBudget, IpAddr, usize)>,
}

impl Drop for BodyPermit<'_> {
    fn drop(&mut self) {
        if let Some((budget, peer, bytes)) = self.peer.take() {
            budget.give_back(peer, bytes);
        }
    }
}

fn busy(why: &str) -> ApiError {
    ApiError::new(ErrorCode::ServiceUnavailable, why)
}

impl BodyBudget {
    /// Reserves `bytes` (at most the body limit) for a body from `peer`: refused at
    /// once when the address's share is spent, after `BODY_BUDGET_WAIT` when the
    /// process's is. Every request holds at least one byte, so the number of requests
    /// in flight is bounded too.
    pub async fn reserve(
        &self,
        peer: Option<IpAddr>,
        bytes: usize,
    ) -> Result<BodyPermit<'_>, ApiError> {
        let bytes = bytes.clamp(1, limits::REQUEST_BODY_BYTES_MAX);
        if let Some(peer) = peer {
            self.take(peer, bytes)?;
        }
        let permits = u32::try_from(bytes).expect("bounded by the body limit");
        let global = tokio::time::timeout(BODY_BUDGET_WAIT, self.global.acquire_many(permits))
            .await
            .ok()
            .and_then(Result::ok);
        match global {
            Some(global) => Ok(BodyPermit {
                _global: global,
                peer: peer.map(|p| (self, p, bytes)),
            }),
            None => {
                if let Some(peer) = peer {
                    self.give_back(peer, bytes);
                }
                Err(busy("The server is busy; retry the request."))
            }
        }
    }

    fn take(&self, peer: IpAddr, bytes: usize) -> Result<(), ApiError> {
        let mut held = self.peers.lock().expect("body budget lock");
        if held.len() >= PEERS_TRACKED_MAX && !held.contains_key(&peer) {
            return Ok(());
        }
        let entry = held.entry(peer).or_insert(0);
        if *entry + bytes > PEER_BODY_BYTES_MAX {
            return Err(busy(
                "Too many request bodies are in flight from this address; retry the request.",
            ));
        }
        *entry += bytes;
        Ok(())
    }

    fn give_back(&self, peer: IpAddr, bytes: usize) {
        let mut held = self.peers.lock().expect("body budget lock");
        if let Some(entry) = held.get_mut(&peer) {
            *entry = entry.saturating_sub(bytes);
            if *entry == 0 {
                held.remove(&peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_address_cannot_hold_the_whole_budget() {
        let budget = BodyBudget::default();
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        let body = limits::REQUEST_BODY_BYTES_MAX;
        let mut held = Vec::new();
        for _ in 0..PEER_BODY_BYTES_MAX / body {
            held.push(budget.reserve(a, body).await.unwrap());
        }
        let refused = budget.reserve(a, body).await.err().unwrap();
        assert_eq!(refused.code, ErrorCode::ServiceUnavailable);
        // Another address still has its share, and a given-back share is free again.
        held.push(budget.reserve(b, body).await.unwrap());
        held.remove(0);
        held.push(budget.reserve(a, body).await.unwrap());
    }

    #[tokio::test]
    async fn the_process_budget_refuses_after_its_wait() {
        let budget = BodyBudget::default();
        let body = limits::REQUEST_BODY_BYTES_MAX;
        // Addresses unknown (no share tracked): the process budget alone bounds them.
        let mut held = Vec::new();
        for _ in 0..BODY_BUDGET_BYTES / body {
            held.push(budget.reserve(None, body).await.unwrap());
        }
        let refused = budget.reserve(None, 1).await.err().unwrap();
        assert_eq!(refused.code, ErrorCode::ServiceUnavailable);
        held.pop();
        budget.reserve(None, body).await.unwrap();
    }
}
