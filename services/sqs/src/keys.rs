//! Queue keys: a queue with a KmsMasterKeyId seals its messages under data keys made
//! under that KMS key (`alias/aws/sqs` is the account's AWS managed key, made on first
//! use); a queue without one (SQS-managed encryption) seals them under Sluice's root
//! key. As SQS does, a sender reuses its data key for the queue's
//! KmsDataKeyReusePeriodSeconds (60 s to a day, 300 s by default) and a reader keeps a
//! data key it opened as long, so KMS is asked (and Cedar decides `kms:GenerateDataKey`
//! or `kms:Decrypt` on the key) once per principal, queue or data key and period, not
//! per message. A key disabled or a permission taken away therefore takes effect
//! within one reuse period, as on AWS. A held key lasts at most a day, and a KMS key is
//! destroyed at least seven days after it stopped making or opening data keys, so no
//! held key outlives its KMS key's material (imported material that expires is the
//! one exception: what was unwrapped under it lasts to the end of its reuse period).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog::masterkeys::MasterKey;
use catalog::rootkey::RootKey;
use catalog::sqs::Queue;
use edge::{BoxFuture, Caller, wire_error};
use envelope::{ActiveDataKey, BoundedCache, DataKey, RotationPolicy, SEALS_PER_KEY_MAX};
use protocol::sqs::SqsError;
use protocol::{ApiError, ErrorCode};

use crate::api::Context;
use crate::attributes::{self, Attributes};
use crate::sqs_error;

/// SQS's door to KMS: the key a queue's KmsMasterKeyId names, once the caller is
/// allowed `action` on it (`kms:GenerateDataKey` to send, `kms:Decrypt` to receive).
pub trait QueueKeys: Send + Sync {
    fn key_for_queue<'a>(
        &'a self,
        caller: &'a Caller,
        key_ref: &'a str,
        action: &'static str,
    ) -> BoxFuture<'a, Result<MasterKey, ApiError>>;
}

/// Data keys held in this process, at most this many of each kind.
const HELD_MAX: usize = 10_000;

#[derive(Clone)]
struct Held {
    key: Arc<DataKey>,
    until_ms: i64,
}

/// A sender's key with the seals it has done: a key seals at most
/// `envelope::SEALS_PER_KEY_MAX` messages (random nonces stay far from a repeat),
/// then a new one is made even inside the reuse period.
type SenderKey = Arc<Mutex<ActiveDataKey<Arc<DataKey>>>>;

/// The data keys this process holds: senders' by (queue, principal, key named) and
/// readers' by (data key, principal), each until its reuse period ends.
pub struct KeyCache {
    senders: BoundedCache<(i64, String, String), SenderKey>,
    readers: BoundedCache<(i64, String), Held>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            senders: BoundedCache::new(HELD_MAX),
            readers: BoundedCache::new(HELD_MAX),
        }
    }
}

/// What a message of a queue is sealed under.
pub enum Sealer {
    Root(Arc<RootKey>),
    Data(Arc<DataKey>),
}

impl Sealer {
    /// The sealed bytes and the data key they name (`None`: the root key).
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> (Vec<u8>, Option<i64>) {
        match self {
            Sealer::Root(root) => (root.seal(plain, aad), None),
            Sealer::Data(key) => (
                envelope::seal(key, aad, plain),
                i64::try_from(key.id().get()).ok(),
            ),
        }
    }
}

/// The length of what a stored message seals (its payload as billed), without
/// opening it.
pub fn sealed_payload_len(m: &catalog::sqs::Received) -> usize {
    let overhead = match m.data_key_id {
        None => catalog::rootkey::SEAL_OVERHEAD_BYTES,
        Some(_) => envelope::SEAL_OVERHEAD_BYTES,
    };
    m.sealed.len().saturating_sub(overhead)
}

/// The KMS key a queue's attributes name, if any.
pub fn key_ref(attrs: &Attributes) -> Option<&str> {
    attrs
        .get("KmsMasterKeyId")
        .map(String::as_str)
        .filter(|k| !k.is_empty())
}

fn reuse_ms(attrs: &Attributes) -> i64 {
    attributes::number(attrs, "KmsDataKeyReusePeriodSeconds") * 1000
}

/// KMS's and the catalog's key errors as SQS names them.
fn kms_error(e: ApiError) -> ApiError {
    let kind = match e.code {
        ErrorCode::AccessDenied => SqsError::KmsAccessDenied,
        ErrorCode::KmsNotFound | ErrorCode::NotFound => SqsError::KmsNotFound,
        ErrorCode::KmsDisabled | ErrorCode::Disabled => SqsError::KmsDisabled,
        ErrorCode::KmsInvalidState | ErrorCode::KinesisKmsInvalidState => SqsError::KmsInvalidState,
        ErrorCode::InvalidKeyUsage => SqsError::KmsInvalidKeyUsage,
        _ => return e,
    };
    sqs_error(kind, e.message)
}

/// How the caller's next `seals` messages to `queue` are sealed.
pub async fn sealer(
    ctx: &Context<'_>,
    queue: &Queue,
    attrs: &Attributes,
    seals: u64,
) -> Result<Sealer, ApiError> {
    let Some(key_ref) = key_ref(attrs) else {
        return Ok(Sealer::Root(ctx.state.root_key.clone()));
    };
    let svc = ctx.state;
    let now = svc.clock.now_ms();
    let slot = (
        queue.id,
        ctx.caller.principal_arn.clone(),
        key_ref.to_string(),
    );
    let policy = RotationPolicy::new(
        Duration::from_millis(reuse_ms(attrs).unsigned_abs()),
        SEALS_PER_KEY_MAX,
    );
    if let Some(held) = svc.held_keys.senders.get(&slot)
        && let Some(key) = held
            .lock()
            .expect("sender key lock")
            .reserve(seals, &policy, now)
    {
        return Ok(Sealer::Data(key));
    }
    let master = svc
        .keys
        .key_for_queue(ctx.caller, key_ref, "kms:GenerateDataKey")
        .await
        .map_err(kms_error)?;
    let key = svc
        .catalog
        .create_sqs_data_key(
            &svc.root_key,
            &queue.account_id,
            queue.id,
            &master.key_id,
            now,
        )
        .await
        .map_err(|e| kms_error(wire_error(e)))?;
    let mut active = ActiveDataKey::new(Arc::new(key), now);
    let key = active
        .reserve(seals, &policy, now)
        .expect("a fresh key has room for one request's seals");
    svc.held_keys
        .senders
        .insert(slot, Arc::new(Mutex::new(active)));
    Ok(Sealer::Data(key))
}

/// The data key `id` of the queue's account, once the caller may decrypt under its
/// KMS key; held for the reuse period of the queue it is read from.
pub async fn opener(
    ctx: &Context<'_>,
    queue: &Queue,
    attrs: &Attributes,
    id: i64,
) -> Result<Arc<DataKey>, ApiError> {
    let svc = ctx.state;
    let now = svc.clock.now_ms();
    let slot = (id, ctx.caller.principal_arn.clone());
    if let Some(held) = svc.held_keys.readers.get(&slot)
        && now < held.until_ms
    {
        return Ok(held.key);
    }
    let loaded = svc
        .catalog
        .load_sqs_data_key(&svc.root_key, &queue.account_id, id)
        .await
        .map_err(|e| kms_error(wire_error(e)))?
        .ok_or_else(|| {
            tracing::error!(
                queue = queue.id,
                data_key = id,
                "a message names a data key that is gone"
            );
            ApiError::new(ErrorCode::InternalFailure, "Internal service error.")
        })?;
    svc.keys
        .key_for_queue(ctx.caller, &loaded.master_key_id, "kms:Decrypt")
        .await
        .map_err(kms_error)?;
    let key = Arc::new(loaded.key);
    let reuse = match key_ref(attrs) {
        Some(_) => reuse_ms(attrs),
        None => attributes::KMS_REUSE_DEFAULT_S * 1000,
    };
    svc.held_keys.readers.insert(
        slot,
        Held {
            key: key.clone(),
            until_ms: now + reuse,
        },
    );
    Ok(key)
}
