//! Shard reads: from a position, through the catalog's chunk rows, to checked records.

use std::sync::Arc;

use bytes::Bytes;
use control_plane::Catalog;
use protocol::ApiError;
use sqlx::Row;

use crate::chunk::{self, RecordOut};
use crate::segment::SegmentStore;

/// Chunk rows fetched per catalog round trip.
const CHUNKS_PER_QUERY: i64 = 64;

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
    Database(#[from] sqlx::Error),
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
    #[error("blocking read task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl ReadError {
    /// The caller sees an internal failure; the cause is logged.
    pub fn to_api(&self) -> ApiError {
        match self {
            ReadError::Database(_)
            | ReadError::Object { .. }
            | ReadError::Chunk { .. }
            | ReadError::Join(_) => ApiError::internal(),
        }
    }
}

struct ChunkRow {
    first: u64,
    last: u64,
    object_key: String,
    offset: i64,
    length: i64,
}

/// Reads up to `limit` records and about `bytes_max` bytes of one shard, starting at
/// counter `from`, skipping records that arrived before `retained_since_ms`.
#[allow(clippy::too_many_arguments)]
pub async fn read_shard(
    catalog: &Catalog,
    store: &Arc<SegmentStore>,
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
    loop {
        let rows = sqlx::query(
            "SELECT first_sequence, last_sequence, object_key, byte_offset, byte_length FROM chunks \
             WHERE stream_id = $1 AND shard_ordinal = $2 AND last_sequence >= $3 AND last_arrival_ms >= $4 \
             ORDER BY first_sequence LIMIT $5",
        )
        .bind(stream_id)
        .bind(shard_ordinal as i64)
        .bind(next_counter as i64)
        .bind(retained_since_ms)
        .bind(CHUNKS_PER_QUERY)
        .fetch_all(catalog.pool())
        .await?;
        let exhausted = (rows.len() as i64) < CHUNKS_PER_QUERY;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(ChunkRow {
                    first: r.try_get::<i64, _>("first_sequence")? as u64,
                    last: r.try_get::<i64, _>("last_sequence")? as u64,
                    object_key: r.try_get("object_key")?,
                    offset: r.try_get("byte_offset")?,
                    length: r.try_get("byte_length")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        if rows.is_empty() {
            return Ok(ShardRead {
                records,
                next_counter,
                at_tip: true,
            });
        }
        let chunks = load_chunks(
            store,
            &rows,
            stream_id,
            shard_ordinal,
            limit - records.len(),
            bytes_max.saturating_sub(bytes),
        )
        .await?;
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

/// Reads and checks the chunks a read needs, in one blocking task; stops early once
/// the records loaded cover `limit` and `bytes_max`.
async fn load_chunks(
    store: &Arc<SegmentStore>,
    rows: &[ChunkRow],
    stream_id: i64,
    shard_ordinal: u64,
    limit: usize,
    bytes_max: usize,
) -> Result<Vec<Vec<RecordOut>>, ReadError> {
    let wanted: Vec<(String, i64, i64, u64, u64)> = rows
        .iter()
        .map(|r| (r.object_key.clone(), r.offset, r.length, r.first, r.last))
        .collect();
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(wanted.len());
        let mut records = 0usize;
        let mut bytes = 0usize;
        for (object_key, offset, length, first, last) in wanted {
            if records >= limit || bytes >= bytes_max {
                break;
            }
            let raw = store
                .read(&object_key, offset as u64, length as usize)
                .map_err(|source| ReadError::Object {
                    object_key: object_key.clone(),
                    offset,
                    source,
                })?;
            bytes += raw.len();
            let count = u32::try_from(last - first + 1).unwrap_or(u32::MAX);
            let decoded = chunk::decode(Bytes::from(raw), stream_id, shard_ordinal, count)
                .map_err(|source| ReadError::Chunk {
                    object_key,
                    offset,
                    source,
                })?;
            records += decoded.len();
            out.push(decoded);
        }
        Ok(out)
    })
    .await?
}
