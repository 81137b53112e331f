//! The Kinesis service's state and the helpers every operation shares: resolving and
//! authorizing the stream a request names, the stream cache, paging tokens, and the
//! mapping of catalog errors to Kinesis's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use catalog::masterkeys::MasterKey;
use catalog::streams::parse_shard_id;
use catalog::{Catalog, CatalogError, Shard, Stream};
use edge::{Authorizer, BoxFuture, Caller, Resource};
use protocol::arn::StreamArn;
use protocol::clock::SharedClock;
use protocol::model::*;
use protocol::{ApiError, ErrorCode, limits, validate};
use storage::commit::Committer;
use storage::objects::ObjectStore;

use crate::iterator::IteratorKey;
use crate::settings::KinesisConfig;

/// What the Kinesis service may touch, and nothing more.
pub struct Kinesis {
    pub config: KinesisConfig,
    pub catalog: Catalog,
    pub store: Arc<ObjectStore>,
    /// The data keys chunks are sealed and opened with.
    pub keyring: Arc<storage::keyring::Keyring>,
    pub committer: Committer,
    pub iterators: IteratorKey,
    /// Cedar, through the gateway's door: every operation asks it first.
    pub authz: Arc<dyn Authorizer>,
    /// KMS, through the assembly's door: the master key StartStreamEncryption names.
    pub keys: Arc<dyn StreamKeys>,
    pub streams: StreamCache,
    /// Per-shard throughput limits.
    pub throttle: crate::throttle::Throttle,
    /// SubscribeToShard subscriptions open in this process.
    pub subscriptions: Subscriptions,
    /// Every time decision of an operation.
    pub clock: SharedClock,
}

/// SubscribeToShard subscriptions open in this process at once, at most.
pub(crate) const SUBSCRIPTIONS_MAX: usize = 10_000;

/// The (consumer, stream, shard) subscriptions open in this process.
#[derive(Default)]
pub struct Subscriptions {
    open: Mutex<HashSet<(i64, i64, u64)>>,
}

impl Subscriptions {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(i64, i64, u64)>> {
        self.open.lock().expect("subscriptions lock")
    }

    pub(crate) fn release(&self, key: &(i64, i64, u64)) {
        self.lock().remove(key);
    }
}

/// What Kinesis asks of KMS, wired by the assembly: the master key a stream's data keys
/// go under once StartStreamEncryption names it (Cedar allowed the caller
/// `kms:GenerateDataKey` on it, and it is enabled), with KMS's errors as Kinesis's.
pub trait StreamKeys: Send + Sync {
    fn key_for_stream<'a>(
        &'a self,
        caller: &'a Caller,
        key_ref: &'a str,
    ) -> BoxFuture<'a, Result<MasterKey, ApiError>>;
}

/// Streams by name, for routing writes without a catalog round trip per request.
/// Entries live a second; this process drops them itself when it changes a stream.
/// (account, stream name) to the stream and when it was loaded.
pub(crate) type StreamEntries = HashMap<(String, String), (Arc<Stream>, Instant)>;

#[derive(Default)]
pub struct StreamCache {
    entries: Mutex<StreamEntries>,
}

pub(crate) const STREAM_CACHE_TTL: Duration = Duration::from_secs(1);

pub(crate) const STREAM_CACHE_ENTRIES_MAX: usize = 10_000;

impl StreamCache {
    pub(crate) async fn get(
        &self,
        catalog: &Catalog,
        account: &str,
        name: &str,
    ) -> Result<Arc<Stream>, ApiError> {
        let key = (account.to_string(), name.to_string());
        if let Some((stream, at)) = self.entries.lock().expect("cache lock").get(&key)
            && at.elapsed() < STREAM_CACHE_TTL
        {
            return Ok(stream.clone());
        }
        let stream = Arc::new(catalog.load_stream(account, name).await.map_err(api)?);
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() >= STREAM_CACHE_ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(key, (stream.clone(), Instant::now()));
        Ok(stream)
    }

    pub fn forget(&self, account: &str, name: &str) {
        self.entries
            .lock()
            .expect("cache lock")
            .remove(&(account.to_string(), name.to_string()));
    }
}

/// A catalog error as the caller sees it (internal causes are logged, never sent).
pub(crate) use edge::wire_error as api;

/// A failed shard read as the caller sees it: the KMS error Kinesis gives when the
/// stream's master key is disabled, pending deletion or deleted; otherwise an internal
/// failure (the caller of this logged the cause).
pub fn read_error(error: &storage::reader::ReadError) -> ApiError {
    use storage::keyring::KeyringError;
    use storage::reader::ReadError;
    match error {
        ReadError::DataKey {
            source: KeyringError::Catalog(CatalogError::Refused(refusal)),
            ..
        } => edge::refusal_error(refusal),
        ReadError::Catalog(_)
        | ReadError::Object { .. }
        | ReadError::Chunk { .. }
        | ReadError::DataKey { .. }
        | ReadError::BadDataKeyId { .. }
        | ReadError::Unsealed { .. }
        | ReadError::Join(_) => ApiError::internal(),
    }
}

impl Kinesis {
    /// The stream name a request means, from its StreamName or StreamARN.
    /// The stream a request means, from its StreamName or StreamARN, once Cedar has
    /// allowed `action` on it.
    pub(crate) async fn stream_name(
        &self,
        caller: &Caller,
        action: &str,
        r: StreamRef<'_>,
    ) -> Result<String, ApiError> {
        let (account, name) = match (r.stream_name, r.stream_arn) {
            (None, None) => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "Either StreamName or StreamARN should be provided.",
                ));
            }
            (Some(name), None) => (caller.account_id.clone(), name.to_string()),
            (name, Some(arn_text)) => {
                let arn = StreamArn::parse(arn_text)?;
                if let Some(name) = name
                    && name != arn.stream_name
                {
                    return Err(ApiError::invalid_argument(format!(
                        "StreamARN {arn_text} and StreamName {name} name different streams."
                    )));
                }
                if arn.region != self.config.region {
                    return Err(ApiError::stream_not_found(
                        &arn.stream_name,
                        &arn.account_id,
                    ));
                }
                (arn.account_id, arn.stream_name)
            }
        };
        validate::stream_name(&name)?;
        let arn = StreamArn::format(&self.config.region, &account, &name);
        // INVARIANT: the operation runs only once Cedar has allowed it; the platform
        // policies forbid every cross-tenant access, so `account` is the caller's below.
        self.authz
            .authorize(
                caller,
                action,
                Resource::Stream {
                    account: &account,
                    arn: &arn,
                    name: &name,
                },
            )
            .await?;
        if account != caller.account_id {
            return Err(ApiError::stream_not_found(&name, &account));
        }
        Ok(name)
    }

    pub(crate) async fn load(
        &self,
        caller: &Caller,
        action: &str,
        r: StreamRef<'_>,
    ) -> Result<Stream, ApiError> {
        let name = self.stream_name(caller, action, r).await?;
        self.catalog
            .load_stream(&caller.account_id, &name)
            .await
            .map_err(api)
    }

    /// Puts the caller's stream in a passing state for the configured while; `false`
    /// when the while is 0 (the change is immediate, and the caller makes it).
    pub(crate) async fn begin_transition(
        &self,
        caller: &Caller,
        name: &str,
        status: catalog::StreamStatus,
    ) -> Result<bool, ApiError> {
        if self.config.stream_transition_ms == 0 {
            return Ok(false);
        }
        self.catalog
            .set_stream_transition(
                caller.account_id.as_str(),
                name,
                status,
                self.clock.now_ms() + self.config.stream_transition_ms as i64,
            )
            .await
            .map_err(api)?;
        self.streams.forget(caller.account_id.as_str(), name);
        Ok(true)
    }

    pub(crate) fn arn(&self, caller: &Caller, name: &str) -> String {
        StreamArn::format(&self.config.region, &caller.account_id, name)
    }
}

/// What Kinesis reports as a stream's and its records' EncryptionType: every record is
/// sealed at rest under a data key wrapped by a KMS key, so always KMS.
pub(crate) const ENCRYPTION_TYPE: &str = "KMS";

/// The KMS key a stream's new records are sealed under, as the stream names it: the key
/// StartStreamEncryption named, else the account's AWS managed key.
pub(crate) fn reported_key(stream: &Stream) -> &str {
    stream
        .key_id
        .as_deref()
        .unwrap_or(catalog::masterkeys::DEFAULT_STREAM_ALIAS)
}

/// The record distribution that ignores partition keys (on-demand streams only).
pub(crate) const AUTO_DISTRIBUTION: &str = "AUTO";

/// AWS's tag character set: letters, numbers, space separators and `_ . : / = + - @`
/// (`%` passes the first check and is refused by the stream's own).
fn tag_text_ok(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_alphanumeric()
            || (c.is_whitespace() && !c.is_control())
            || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@' | '%')
    })
}

/// Checks the keys of a RemoveTagsFromStream as Kinesis does, in its words.
pub(crate) fn validate_tag_keys(
    keys: &[String],
    stream: &str,
    account: &str,
) -> Result<(), ApiError> {
    if keys.iter().any(|k| !tag_text_ok(k)) {
        return Err(ApiError::invalid_argument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.",
        ));
    }
    if keys.iter().any(|k| k.contains('%')) {
        return Err(ApiError::invalid_argument(format!(
            "Failed to remove tags from stream {stream} under account {account} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'."
        )));
    }
    Ok(())
}

/// Checks tags for `stream` as Kinesis does, in its words.
pub(crate) fn validate_tags(
    tags: &[(String, String)],
    stream: &str,
    account: &str,
) -> Result<(), ApiError> {
    for (key, value) in tags {
        validate::string_length(key, "tags.key", 1, limits::TAG_KEY_CHARS_MAX)?;
        validate::string_length(value, "tags.value", 0, limits::TAG_VALUE_CHARS_MAX)?;
        if !tag_text_ok(key) || !tag_text_ok(value) {
            return Err(ApiError::invalid_argument(
                "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.",
            ));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::invalid_argument(format!(
                "Tag key {key} uses the reserved prefix aws:."
            )));
        }
    }
    if tags.iter().any(|(k, v)| k.contains('%') || v.contains('%')) {
        return Err(ApiError::invalid_argument(format!(
            "Failed to add tags to stream {stream} under account {account} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'."
        )));
    }
    Ok(())
}

/// Paging tokens are base64url of what the next page starts after; they carry nothing
/// a caller could use to reach what it could not name anyway.
pub(crate) fn page_token(kind: &str, after: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}\n{after}"))
}

pub(crate) fn open_page_token(kind: &str, token: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid_argument(format!("Invalid NextToken: {token}"));
    if token.is_empty() || token.len() > 1_048_576 {
        return Err(invalid());
    }
    let text = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(text).map_err(|_| invalid())?;
    let (k, after) = text.split_once('\n').ok_or_else(invalid)?;
    if k != kind {
        return Err(invalid());
    }
    Ok(after.to_string())
}

/// A stream records can be written to and read from: not CREATING or DELETING.
pub(crate) fn writable(stream: &Stream) -> Result<(), ApiError> {
    use catalog::StreamStatus::*;
    match stream.status {
        Active | Updating => Ok(()),
        Creating | Deleting => Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Stream {} under account {} not found.",
                stream.name, stream.account_id
            ),
        )),
    }
}

/// The shard a shard id names in `stream`.
pub(crate) fn shard_of<'a>(stream: &'a Stream, shard_id_text: &str) -> Result<&'a Shard, ApiError> {
    parse_shard_id(shard_id_text)
        .and_then(|o| stream.shard(o))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!(
                    "Shard {shard_id_text} in stream {} under account {} does not exist",
                    stream.name, stream.account_id
                ),
            )
        })
}
