//! The data keys this process seals and opens chunks with.
//!
//! The writer seals each stream's chunks under a key this process made for that
//! stream, and makes a new one after `RotationPolicy::age_max` or `seals_max` seals.
//! Readers open chunks under the key their catalog row names, unwrapped once and then
//! kept in a bounded cache. Plaintext keys live only here, in memory, and are zeroized
//! when the last handle drops.
//!
//! INVARIANT: a data key is sealed under by one process only (the one that made it),
//! so the use count kept here, in memory, is the key's whole use count. A restart or
//! another data-plane process makes new keys rather than continuing an old one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use catalog::masterkeys::{DEFAULT_STREAM_ALIAS, kinesis_key_error};
use catalog::rootkey::RootKey;
use catalog::{Catalog, CatalogError};
use envelope::{ActiveDataKey, BoundedCache, DataKey, DataKeyId, RotationPolicy};
use protocol::ApiError;
use protocol::clock::SharedClock;

/// Unwrapped data keys kept for reads, at most.
pub const OPENED_KEYS_MAX: usize = 4_096;
/// Streams with a key this process is sealing under, at most; past it one is dropped
/// (its next write makes a new key).
pub const ACTIVE_KEYS_MAX: usize = 10_000;

/// How long a stream's master-key state is remembered: disabling a key stops that
/// stream's writes and reads within this long on every data-plane process.
pub const KEY_STATE_TTL: Duration = Duration::from_secs(1);
/// Master-key states remembered at most.
pub const KEY_STATES_MAX: usize = 10_000;

/// (account, the stream's master key id, `None` for the default key) to the error
/// using it would give (`None`: usable) and when that was looked up.
type KeyStates = HashMap<(String, Option<String>), (Option<ApiError>, i64)>;

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("data key catalog access failed")]
    Catalog(#[from] CatalogError),
    #[error("data key {id} of stream {stream_id} does not exist")]
    Unknown { id: DataKeyId, stream_id: i64 },
}

pub struct Keyring {
    catalog: Catalog,
    root: Arc<RootKey>,
    policy: RotationPolicy,
    /// Unwrapped keys by id, with the stream each belongs to.
    opened: BoundedCache<DataKeyId, (i64, Arc<DataKey>)>,
    /// The key each stream's new chunks are sealed under. An async lock: making a key
    /// is a catalog write, and two flushes should not make two keys for one stream.
    active: tokio::sync::Mutex<HashMap<i64, ActiveDataKey<Arc<DataKey>>>>,
    key_states: std::sync::Mutex<KeyStates>,
    clock: SharedClock,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("policy", &self.policy)
            .field("opened", &self.opened.len())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    pub fn new(
        catalog: Catalog,
        root: Arc<RootKey>,
        policy: RotationPolicy,
        clock: SharedClock,
    ) -> Keyring {
        Keyring {
            catalog,
            root,
            policy,
            opened: BoundedCache::new(OPENED_KEYS_MAX),
            active: tokio::sync::Mutex::new(HashMap::new()),
            key_states: std::sync::Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Refuses a write or read of a stream whose master key is disabled, pending
    /// deletion or deleted, with the error Kinesis gives; remembered `KEY_STATE_TTL`.
    /// INVARIANT: PutRecord(s) and GetRecords call this before they touch the log, so
    /// keys already unwrapped in this process do not outlive their master key's state
    /// by more than `KEY_STATE_TTL`.
    pub async fn check_stream_key(
        &self,
        account: &str,
        master_key_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let cache_key = (account.to_string(), master_key_id.map(str::to_string));
        let now_ms = self.clock.now_ms();
        let ttl_ms = KEY_STATE_TTL.as_millis() as i64;
        if let Some((error, at_ms)) = self.key_states.lock().expect("key states").get(&cache_key)
            && (0..ttl_ms).contains(&now_ms.saturating_sub(*at_ms))
        {
            return error.clone().map_or(Ok(()), Err);
        }
        let error = match master_key_id {
            Some(id) => {
                let key = self
                    .catalog
                    .master_key(account, id)
                    .await
                    .map_err(edge::wire_error)?;
                kinesis_key_error(key.as_ref(), id).map(|r| edge::refusal_error(&r))
            }
            // The default key is made on first use; until then there is nothing to refuse.
            None => match self
                .catalog
                .resolve_alias(account, DEFAULT_STREAM_ALIAS)
                .await
                .map_err(edge::wire_error)?
            {
                None => None,
                Some(id) => {
                    let key = self
                        .catalog
                        .master_key(account, &id)
                        .await
                        .map_err(edge::wire_error)?;
                    kinesis_key_error(key.as_ref(), &id).map(|r| edge::refusal_error(&r))
                }
            },
        };
        let mut states = self.key_states.lock().expect("key states");
        if states.len() >= KEY_STATES_MAX {
            states.clear();
        }
        states.insert(cache_key, (error.clone(), now_ms));
        error.map_or(Ok(()), Err)
    }

    /// Stops sealing under the stream's current data key: its next chunk gets a new
    /// one, wrapped under whatever master key the stream names now.
    pub async fn forget_stream(&self, stream_id: i64) {
        self.active.lock().await.remove(&stream_id);
    }

    /// Forgets every plaintext data key and remembered key state (after the sweep
    /// destroyed master keys: nothing unwrapped under them may be used again).
    pub async fn forget_all(&self) {
        self.active.lock().await.clear();
        self.opened.clear();
        self.key_states.lock().expect("key states").clear();
    }

    /// The key to seal one more chunk of the stream under, counted against it; a new
    /// key when the current one is too old or used up. `None`: the stream is gone.
    pub async fn key_for_sealing(
        &self,
        stream_id: i64,
    ) -> Result<Option<Arc<DataKey>>, KeyringError> {
        let mut active = self.active.lock().await;
        let now = self.clock.now_ms();
        if let Some(current) = active.get_mut(&stream_id) {
            if let Some(key) = current.reserve(1, &self.policy, now) {
                return Ok(Some(key));
            }
            // INVARIANT: a used-up key leaves `active`, and nothing else hands out
            // seals under it.
            let old = active.remove(&stream_id).expect("just seen");
            self.catalog
                .retire_data_key(old.key().id(), self.clock.now_ms())
                .await?;
        }
        if active.len() >= ACTIVE_KEYS_MAX
            && let Some(&victim) = active.keys().next()
        {
            active.remove(&victim);
        }
        let Some(key) = self
            .catalog
            .create_data_key(&self.root, stream_id, self.clock.now_ms())
            .await?
        else {
            active.remove(&stream_id);
            return Ok(None);
        };
        let key = Arc::new(key);
        self.opened.insert(key.id(), (stream_id, key.clone()));
        let mut fresh = ActiveDataKey::new(key, now);
        let key = fresh
            .reserve(1, &self.policy, now)
            .expect("a fresh key has a seal left (seals_max >= 1)");
        active.insert(stream_id, fresh);
        Ok(Some(key))
    }

    /// The key chunk rows of `stream_id` name as `id`, unwrapped through the cache.
    pub async fn key_for_opening(
        &self,
        id: DataKeyId,
        stream_id: i64,
    ) -> Result<Arc<DataKey>, KeyringError> {
        if let Some((owner, key)) = self.opened.get(&id) {
            // INVARIANT: a cached key opens only chunks of the stream it was made for.
            if owner == stream_id {
                return Ok(key);
            }
            return Err(KeyringError::Unknown { id, stream_id });
        }
        let key = self
            .catalog
            .load_data_key(&self.root, id, stream_id)
            .await?
            .ok_or(KeyringError::Unknown { id, stream_id })?;
        let key = Arc::new(key);
        self.opened.insert(id, (stream_id, key.clone()));
        Ok(key)
    }

    /// Forgets every unwrapped key kept for reads (tests drive cache misses with it).
    pub fn forget_opened(&self) {
        self.opened.clear();
    }
}
