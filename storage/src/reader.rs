//! Shard reads: from a position, through the catalog's chunk rows, to checked records.
//! Sealed chunks are opened under the data key their row names (through the keyring's
//! bounded cache), bound to the row's account, stream, shard, object key and offset.

use std::sync::Arc;

use std::collections::HashMap;

use catalog::Catalog;
use envelope::{DataKey, DataKeyId};

use crate::chunk::{self, ChunkPlace, ExpectedChunk, RecordOut};
use crate::keyring::{Keyring, KeyringError};
use crate::objects::ObjectStore;

/// Chunk rows fetched per catalog round trip.
const CHUNKS_PER_QUERY: i64 = 64;
/// Times one read fetches its rows again after a row named an object that is gone.
const MOVED_RETRIES_MAX: u32 = 3;

/// A record read back, with its counter in the shard.
#[derive(Debug)]
pub struct ShardRecord {
    pub counter: u64,
    pub record: RecordOut,
}

#[derive(Debug)]
pub struct ShardRead {
    pub records: Vec<ShardRecord>,
    /// Where the next read starts.
    pub next_counter: u64,
    /// Whether the read reached the newest committed record.
    pub at_tip: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("catalog query failed")]
    Catalog(#[from] catalog::CatalogError),
    #[error("reading chunk {object_key}@{offset}")]
    Object {
        object_key: String,
        offset: i64,
        #[source]
        source: std::io::Error,
    },
    #[error("chunk {object_key}@{offset} failed its check")]
    Chunk {
        object_key: String,
        offset: i64,
        #[source]
        source: chunk::ChunkError,
    },
    #[error("data key for chunk {object_key}@{offset}")]
    DataKey {
        object_key: String,
        offset: i64,
        #[source]
        source: KeyringError,
    },
    #[error("chunk row {object_key}@{offset} names data key id {raw}, which no key has")]
    BadDataKeyId {
        object_key: String,
        offset: i64,
        raw: i64,
    },
    #[error("chunk {object_key}@{offset} is not sealed; only sealed chunks are read")]
    Unsealed { object_key: String, offset: i64 },
    #[error("blocking read task failed")]
    Join(#[from] tokio::task::JoinError),
}

struct ChunkRow {
    first: u64,
    last: u64,
    object_key: String,
    offset: i64,
    length: i64,
    data_key_id: Option<DataKeyId>,
}

/// Reads up to `limit` records and about `bytes_max` bytes of one shard of a stream
/// of `account_id`, starting at counter `from`, skipping records that arrived before
/// `retained_since_ms`.
#[allow(clippy::too_many_arguments)]
pub async fn read_shard(
    catalog: &Catalog,
    store: &Arc<ObjectStore>,
    keyring: &Keyring,
    account_id: &str,
    stream_id: i64,
    shard_ordinal: u64,
    from: u64,
    limit: usize,
    bytes_max: usize,
    retained_since_ms: i64,
) -> Result<ShardRead, ReadError> {
    let mut records = Vec::new();
    let mut bytes = 0usize;
    let mut next_counter = from;
    let mut moved_retries = 0;
    loop {
        let rows = catalog
            .chunk_rows(
                stream_id,
                shard_ordinal,
                next_counter,
                retained_since_ms,
                CHUNKS_PER_QUERY,
            )
            .await?;
        let exhausted = (rows.len() as i64) < CHUNKS_PER_QUERY;
        let rows = rows
            .iter()
            .map(|r| {
                let object_key = r.object_key.clone();
                let offset = r.byte_offset;
                let data_key_id = match r.data_key_id {
                    // INVARIANT: every chunk any released build wrote is sealed (the
                    // writer has no unsealed path), so a row naming no key is a
                    // downgrade of a sealed chunk to a forged clear one: refuse it.
                    None => {
                        return Err(ReadError::Unsealed {
                            object_key: object_key.clone(),
                            offset,
                        });
                    }
                    Some(raw) => Some(
                        u64::try_from(raw)
                            .ok()
                            .and_then(|id| DataKeyId::new(id).ok())
                            .ok_or_else(|| ReadError::BadDataKeyId {
                                object_key: object_key.clone(),
                                offset,
                                raw,
                            })?,
                    ),
                };
                Ok(ChunkRow {
                    first: r.first_sequence,
                    last: r.last_sequence,
                    object_key,
                    offset,
                    length: r.byte_length,
                    data_key_id,
                })
            })
            .collect::<Result<Vec<_>, ReadError>>()?;
        if rows.is_empty() {
            return Ok(ShardRead {
                records,
                next_counter,
                at_tip: true,
            });
        }
        let keys = data_keys(keyring, &rows, stream_id).await?;
        let chunks = match load_chunks(
            store,
            &rows,
            keys,
            account_id,
            stream_id,
            shard_ordinal,
            limit - records.len(),
            bytes_max.saturating_sub(bytes),
        )
        .await
        {
            // Compaction moved these chunks and the janitor deleted their old object
            // after this read fetched the rows: the catalog now names the new place.
            Err(ReadError::Object { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound
                    && moved_retries < MOVED_RETRIES_MAX =>
            {
                moved_retries += 1;
                continue;
            }
            loaded => loaded?,
        };
        let all_loaded = chunks.len() == rows.len();
        for (row, decoded) in rows.iter().zip(chunks) {
            for (i, record) in decoded.into_iter().enumerate() {
                let counter = row.first + i as u64;
                if counter < next_counter || record.arrival_ms < retained_since_ms {
                    continue;
                }
                let size = record.data.len() + record.partition_key.len();
                if records.len() >= limit || (!records.is_empty() && bytes + size > bytes_max) {
                    return Ok(ShardRead {
                        records,
                        next_counter,
                        at_tip: false,
                    });
                }
                bytes += size;
                next_counter = counter + 1;
                records.push(ShardRecord { counter, record });
            }
            // Records trimmed by retention are skipped over, not returned.
            next_counter = next_counter.max(row.last + 1);
        }
        if exhausted && all_loaded {
            return Ok(ShardRead {
                records,
                next_counter,
                at_tip: true,
            });
        }
        if !all_loaded || records.len() >= limit || bytes >= bytes_max {
            return Ok(ShardRead {
                records,
                next_counter,
                at_tip: false,
            });
        }
    }
}

/// The data keys the rows name, unwrapped (or found in the keyring's cache).
async fn data_keys(
    keyring: &Keyring,
    rows: &[ChunkRow],
    stream_id: i64,
) -> Result<HashMap<DataKeyId, Arc<DataKey>>, ReadError> {
    let mut keys = HashMap::new();
    for row in rows {
        let Some(id) = row.data_key_id else { continue };
        if keys.contains_key(&id) {
            continue;
        }
        let key = keyring
            .key_for_opening(id, stream_id)
            .await
            .map_err(|source| ReadError::DataKey {
                object_key: row.object_key.clone(),
                offset: row.offset,
                source,
            })?;
        keys.insert(id, key);
    }
    Ok(keys)
}

/// Reads and checks the chunks a read needs, in one blocking task; stops early once
/// the records loaded cover `limit` and `bytes_max`.
#[allow(clippy::too_many_arguments)]
async fn load_chunks(
    store: &Arc<ObjectStore>,
    rows: &[ChunkRow],
    keys: HashMap<DataKeyId, Arc<DataKey>>,
    account_id: &str,
    stream_id: i64,
    shard_ordinal: u64,
    limit: usize,
    bytes_max: usize,
) -> Result<Vec<Vec<RecordOut>>, ReadError> {
    type Wanted = (String, i64, i64, u64, u64, Option<DataKeyId>);
    let wanted: Vec<Wanted> = rows
        .iter()
        .map(|r| {
            (
                r.object_key.clone(),
                r.offset,
                r.length,
                r.first,
                r.last,
                r.data_key_id,
            )
        })
        .collect();
    // Chunks are fetched one after another (each read may stop the loop); opening a
    // chunk is AES-GCM at gigabytes a second over at most a few MiB, so it runs here.
    let mut out = Vec::with_capacity(wanted.len());
    let mut records = 0usize;
    let mut bytes = 0usize;
    for (object_key, offset, length, first, last, data_key_id) in wanted {
        if records >= limit || bytes >= bytes_max {
            break;
        }
        let read_started = std::time::Instant::now();
        let raw = store
            .read(&object_key, offset as u64, length as usize)
            .await;
        metrics::histogram!("sluice_object_store_duration_seconds", "op" => "read")
            .record(read_started.elapsed().as_secs_f64());
        let raw = raw.map_err(|source| ReadError::Object {
            object_key: object_key.clone(),
            offset,
            source,
        })?;
        bytes += raw.len();
        let expected = ExpectedChunk {
            stream_id,
            shard_ordinal,
            // A row with last < first is corrupt; u32::MAX never matches a chunk.
            record_count: last
                .checked_sub(first)
                .and_then(|n| u32::try_from(n + 1).ok())
                .unwrap_or(u32::MAX),
            data_key_id,
            place: ChunkPlace {
                account_id,
                object_key: &object_key,
                byte_offset: offset as u64,
            },
        };
        let key = data_key_id.and_then(|id| keys.get(&id)).map(|k| &**k);
        let decoded = chunk::decode(raw, &expected, key).map_err(|source| ReadError::Chunk {
            object_key: object_key.clone(),
            offset,
            source,
        })?;
        records += decoded.len();
        out.push(decoded);
    }
    Ok(out)
}
