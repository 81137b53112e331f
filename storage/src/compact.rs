//! Compaction: rewrites a shard's settled chunks, which the group-commit writer left
//! in segments shared with other shards, into larger chunks in an object of that
//! shard only, so that a replay reads one object sequentially.
//!
//! A pass takes up to `SHARDS_PER_PASS` shards the catalog names as candidates
//! (`Catalog::compaction_candidates`). For each it takes one run of consecutive
//! settled chunk rows (newest record older than the settle time) that are still in
//! flush segments or small compacted chunks, up to `BATCH_ROWS_MAX` rows and
//! `BATCH_BYTES_MAX` stored bytes; opens each chunk as a reader would (checked against
//! its row, under the data key the row names, bound to its old place); groups whole
//! old chunks into new chunks of about `CHUNK_BYTES_TARGET`; seals each under the
//! stream's current data key (`Keyring::key_for_sealing`, one seal counted per chunk)
//! bound to its new place; writes them as one new object
//! (`ObjectStore::write_object_blocking`); then swaps the rows in one catalog transaction
//! (`Catalog::replace_chunks`), which abandons the batch if any old row changed
//! meanwhile (the janitor expired it, the stream was deleted, another process
//! compacted it). An abandoned batch's object is named by no row, and the janitor
//! deletes it after its grace.
//!
//! INVARIANT: compaction moves records and never drops one. A new row covers exactly
//! the sequence numbers of the whole old rows it replaces, with their first and last
//! arrival times; records keep their counters, arrival times, partition keys and data.
//! Only retention (the janitor) deletes records.
//!
//! Old objects are deleted by the janitor once no row names them. A reader that read
//! the old rows just before the swap may then find their object gone: the reader
//! (`reader::read_shard`) answers a missing object by reading the rows again from
//! where it was, which now name the new object. Merging chunks lengthens how long the
//! older records of a new chunk stay stored (a row expires with its newest record),
//! but reads skip expired records by their own arrival time, so TRIM_HORIZON moves
//! exactly as before. The on-demand scaler measures writes from the rows of its
//! window (a minute by default), which the default settle time (ten minutes) leaves
//! untouched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use catalog::compaction::{ChunkRow, CompactionCandidate, Placement};
use catalog::{Catalog, CatalogError};
use envelope::{DataKey, DataKeyId};

use crate::chunk::{self, ChunkPlace, ExpectedChunk, RecordIn, RecordOut};
use crate::keyring::{Keyring, KeyringError};
use crate::objects::ObjectStore;

/// How often compaction runs.
pub const COMPACTION_INTERVAL: Duration = Duration::from_secs(60);
/// The default settle time: chunks are rewritten once their newest record is this old.
pub const SETTLE_DEFAULT: Duration = Duration::from_secs(600);
/// Shards one pass looks at, at most.
const SHARDS_PER_PASS: i64 = 64;
/// Old chunk rows one batch (one shard, one new object) rewrites, at most.
const BATCH_ROWS_MAX: i64 = 1_024;
/// Stored bytes of old chunks one batch reads, at most (a single larger chunk is
/// still taken alone: a flush's chunk is at most 16 MiB).
const BATCH_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Stored bytes of old chunks one pass reads, at most.
const PASS_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// A new chunk is closed once it holds this many payload bytes (whole old chunks are
/// never split, so one may be larger): GetRecords loads a whole chunk to return any of
/// its records, which bounds what a small read costs.
const CHUNK_BYTES_TARGET: u64 = 1024 * 1024;
/// A new chunk smaller than this may be merged again with the chunks after it.
const SMALL_CHUNK_BYTES: u64 = 256 * 1024;
/// The longest a batch may take from writing its object to committing its rows:
/// until then the janitor spares the unnamed object only for its grace
/// (`janitor::SEGMENT_GRACE`, ten times this), so a late batch is abandoned instead.
const COMMIT_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("catalog access failed")]
    Catalog(#[from] CatalogError),
    #[error("data key for chunk {object_key}@{offset}")]
    DataKey {
        object_key: String,
        offset: u64,
        #[source]
        source: KeyringError,
    },
    #[error("the stream's data key to seal compacted chunks under")]
    SealingKey(#[source] KeyringError),
    #[error("chunk row {object_key}@{offset} names no usable data key ({raw:?})")]
    BadDataKeyId {
        object_key: String,
        offset: u64,
        raw: Option<i64>,
    },
    #[error("reading chunk {object_key}@{offset}")]
    Object {
        object_key: String,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("chunk {object_key}@{offset} failed its check")]
    Chunk {
        object_key: String,
        offset: u64,
        #[source]
        source: chunk::ChunkError,
    },
    #[error("writing the compacted object")]
    Write(#[source] std::io::Error),
    #[error("blocking compaction task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Batches committed (one new object each).
    pub batches: u64,
    /// Batches abandoned because their old rows changed meanwhile.
    pub abandoned: u64,
    /// Old chunks rewritten, and their stored bytes.
    pub chunks_in: u64,
    pub bytes_in: u64,
    /// New chunks written, and their stored bytes.
    pub chunks_out: u64,
    pub bytes_out: u64,
}

/// One pass at `now_ms`: rewrites chunks whose newest record is older than `settle`.
/// A shard that fails (an unreadable chunk, a disabled master key) is logged and
/// skipped; the pass goes on with the others.
pub async fn pass(
    catalog: &Catalog,
    store: &Arc<ObjectStore>,
    keyring: &Keyring,
    now_ms: i64,
    settle: Duration,
) -> Result<Compacted, CatalogError> {
    let settled_before_ms = now_ms.saturating_sub(settle.as_millis() as i64);
    let candidates = catalog
        .compaction_candidates(settled_before_ms, SHARDS_PER_PASS)
        .await?;
    let mut done = Compacted::default();
    for candidate in candidates {
        // Bytes of abandoned batches are not counted: a pass reads at most about
        // PASS_BYTES_MAX more than it rewrites, if every batch of it is abandoned.
        if done.bytes_in >= PASS_BYTES_MAX {
            break;
        }
        match compact_shard(catalog, store, keyring, &candidate, settled_before_ms).await {
            Ok(Some(batch)) => {
                metrics::counter!("sluice_compacted_chunks_total").increment(batch.chunks_in);
                metrics::counter!("sluice_compacted_bytes_total").increment(batch.bytes_in);
                done.batches += batch.batches;
                done.abandoned += batch.abandoned;
                done.chunks_in += batch.chunks_in;
                done.bytes_in += batch.bytes_in;
                done.chunks_out += batch.chunks_out;
                done.bytes_out += batch.bytes_out;
            }
            Ok(None) => {}
            Err(CompactError::Catalog(e)) => return Err(e),
            Err(e) => tracing::error!(
                error = %e,
                stream_id = candidate.stream_id,
                shard = candidate.shard_ordinal,
                "compacting a shard failed"
            ),
        }
    }
    if done != Compacted::default() {
        tracing::info!(
            batches = done.batches,
            abandoned = done.abandoned,
            chunks_in = done.chunks_in,
            chunks_out = done.chunks_out,
            bytes_in = done.bytes_in,
            "compaction"
        );
    }
    Ok(done)
}

/// The first run of consecutive rows worth rewriting, within the batch bounds: rows
/// that follow one another in sequence, holding a flushed chunk or at least two.
fn choose_run(rows: Vec<ChunkRow>) -> Vec<ChunkRow> {
    let mut runs: Vec<Vec<ChunkRow>> = Vec::new();
    for row in rows {
        match runs.last_mut() {
            Some(run)
                if run
                    .last()
                    .is_some_and(|r| r.last_sequence + 1 == row.first_sequence) =>
            {
                run.push(row)
            }
            _ => runs.push(vec![row]),
        }
    }
    for run in runs {
        let mut bytes = 0u64;
        let run: Vec<ChunkRow> = run
            .into_iter()
            .take_while(|r| {
                let take = bytes == 0 || bytes + r.byte_length <= BATCH_BYTES_MAX;
                bytes += r.byte_length;
                take
            })
            .collect();
        if run.len() >= 2 || run.iter().any(|r| r.placement == Placement::Flushed) {
            return run;
        }
    }
    Vec::new()
}

/// One old chunk of a batch: its row and its records, opened.
struct Loaded {
    row: ChunkRow,
    records: Vec<RecordOut>,
}

/// Rewrites one run of the shard's chunks; `None` when it has none worth it.
async fn compact_shard(
    catalog: &Catalog,
    store: &Arc<ObjectStore>,
    keyring: &Keyring,
    candidate: &CompactionCandidate,
    settled_before_ms: i64,
) -> Result<Option<Compacted>, CompactError> {
    let rows = catalog
        .compactable_chunks(
            candidate.stream_id,
            candidate.shard_ordinal,
            settled_before_ms,
            BATCH_ROWS_MAX,
        )
        .await?;
    let run = choose_run(rows);
    if run.is_empty() {
        return Ok(None);
    }
    // INVARIANT: as for GetRecords, no data key of a stream is used while its master
    // key is disabled, pending deletion or deleted (keys cached in this process
    // included): such a stream's chunks stay where they are.
    if let Err(e) = keyring
        .check_stream_key(&candidate.account_id, candidate.master_key_id.as_deref())
        .await
    {
        tracing::debug!(
            stream_id = candidate.stream_id,
            error = %e,
            "not compacting: the stream's master key is not usable"
        );
        return Ok(None);
    }
    // The keys the old rows name, unwrapped (or from the keyring's cache).
    let mut opening: Vec<Arc<DataKey>> = Vec::with_capacity(run.len());
    for row in &run {
        let id = row
            .data_key_id
            .and_then(|raw| u64::try_from(raw).ok())
            .and_then(|id| DataKeyId::new(id).ok())
            .ok_or_else(|| CompactError::BadDataKeyId {
                object_key: row.object_key.clone(),
                offset: row.byte_offset,
                raw: row.data_key_id,
            })?;
        let key = keyring
            .key_for_opening(id, candidate.stream_id)
            .await
            .map_err(|source| CompactError::DataKey {
                object_key: row.object_key.clone(),
                offset: row.byte_offset,
                source,
            })?;
        opening.push(key);
    }
    let loaded = load(store, &candidate.account_id, run, opening).await?;

    // Whole old chunks, grouped into new ones of about CHUNK_BYTES_TARGET.
    let mut groups: Vec<Vec<Loaded>> = Vec::new();
    let mut group_bytes = 0u64;
    for chunk in loaded {
        let bytes: u64 = chunk
            .records
            .iter()
            .map(|r| (r.partition_key.len() + r.data.len()) as u64)
            .sum();
        match groups.last_mut() {
            Some(group) if group_bytes + bytes <= CHUNK_BYTES_TARGET => {
                group_bytes += bytes;
                group.push(chunk);
            }
            _ => {
                group_bytes = bytes;
                groups.push(vec![chunk]);
            }
        }
    }
    // One seal counted per new chunk, under the stream's current key.
    let mut sealing = Vec::with_capacity(groups.len());
    for _ in &groups {
        match keyring.key_for_sealing(candidate.stream_id).await {
            Ok(Some(key)) => sealing.push(key),
            // The stream is gone: so are its rows, nothing to move.
            Ok(None) => return Ok(None),
            Err(source) => return Err(CompactError::SealingKey(source)),
        }
    }
    let account_id = candidate.account_id.clone();
    let stream_id = candidate.stream_id;
    let shard_ordinal = candidate.shard_ordinal;
    let writer = store.clone();
    let written = tokio::task::spawn_blocking(move || {
        write_groups(
            &writer,
            &account_id,
            stream_id,
            shard_ordinal,
            groups,
            sealing,
        )
    })
    .await??;
    let (old, new, written_at) = written;
    // INVARIANT: the new object is named before the janitor's grace for unnamed
    // objects runs out, or not at all.
    if written_at.elapsed() > COMMIT_DEADLINE || !catalog.replace_chunks(&old, &new).await? {
        return Ok(Some(Compacted {
            abandoned: 1,
            ..Compacted::default()
        }));
    }
    Ok(Some(Compacted {
        batches: 1,
        abandoned: 0,
        chunks_in: old.len() as u64,
        bytes_in: old.iter().map(|r| r.byte_length).sum(),
        chunks_out: new.len() as u64,
        bytes_out: new.iter().map(|r| r.byte_length).sum(),
    }))
}

/// Reads and opens the run's chunks, each checked against its row and bound to its
/// old place.
async fn load(
    store: &Arc<ObjectStore>,
    account_id: &str,
    run: Vec<ChunkRow>,
    keys: Vec<Arc<DataKey>>,
) -> Result<Vec<Loaded>, CompactError> {
    let store = store.clone();
    let account_id = account_id.to_string();
    tokio::task::spawn_blocking(move || {
        run.into_iter()
            .zip(keys)
            .map(|(row, key)| {
                let raw = store
                    .read_blocking(&row.object_key, row.byte_offset, row.byte_length as usize)
                    .map_err(|source| CompactError::Object {
                        object_key: row.object_key.clone(),
                        offset: row.byte_offset,
                        source,
                    })?;
                let expected = ExpectedChunk {
                    stream_id: row.stream_id,
                    shard_ordinal: row.shard_ordinal,
                    record_count: row
                        .last_sequence
                        .checked_sub(row.first_sequence)
                        .and_then(|n| u32::try_from(n + 1).ok())
                        .unwrap_or(u32::MAX),
                    data_key_id: Some(key.id()),
                    place: ChunkPlace {
                        account_id: &account_id,
                        object_key: &row.object_key,
                        byte_offset: row.byte_offset,
                    },
                };
                let records = chunk::decode(raw, &expected, Some(&key)).map_err(|source| {
                    CompactError::Chunk {
                        object_key: row.object_key.clone(),
                        offset: row.byte_offset,
                        source,
                    }
                })?;
                Ok(Loaded { row, records })
            })
            .collect()
    })
    .await?
}

type Written = (Vec<ChunkRow>, Vec<ChunkRow>, Instant);

/// Writes the groups as sealed chunks of one new object; returns the old rows, the
/// new rows naming the new chunks, and when the object was durable.
fn write_groups(
    store: &ObjectStore,
    account_id: &str,
    stream_id: i64,
    shard_ordinal: u64,
    groups: Vec<Vec<Loaded>>,
    sealing: Vec<Arc<DataKey>>,
) -> Result<Written, CompactError> {
    let records_in = |group: &[Loaded]| -> Vec<(i64, String, Bytes)> {
        group
            .iter()
            .flat_map(|c| &c.records)
            .map(|r| (r.arrival_ms, r.partition_key.clone(), r.data.clone()))
            .collect()
    };
    fn as_in(records: &[(i64, String, Bytes)]) -> Vec<RecordIn<'_>> {
        records
            .iter()
            .map(|(arrival_ms, key, data)| RecordIn {
                arrival_ms: *arrival_ms,
                partition_key: key,
                data,
            })
            .collect()
    }
    let owned: Vec<Vec<(i64, String, Bytes)>> = groups.iter().map(|g| records_in(g)).collect();
    let lengths: Vec<usize> = owned
        .iter()
        .map(|records| chunk::encoded_len(as_in(records).iter(), true))
        .collect();
    let total: usize = lengths.iter().sum();
    let object_key = store
        .write_object_blocking(total, |object_key, out| {
            for (records, key) in owned.iter().zip(&sealing) {
                let place = ChunkPlace {
                    account_id,
                    object_key,
                    byte_offset: out.len() as u64,
                };
                chunk::encode(
                    out,
                    stream_id,
                    shard_ordinal,
                    &as_in(records),
                    Some((key, &place)),
                );
            }
        })
        .map_err(CompactError::Write)?;
    let written_at = Instant::now();
    let mut new = Vec::with_capacity(groups.len());
    let mut offset = 0u64;
    let last_group = groups.len() - 1;
    for (i, ((group, length), key)) in groups.iter().zip(&lengths).zip(&sealing).enumerate() {
        let first = &group.first().expect("groups are not empty").row;
        let last = &group.last().expect("groups are not empty").row;
        let payload: usize = group
            .iter()
            .flat_map(|c| &c.records)
            .map(|r| r.partition_key.len() + r.data.len())
            .sum();
        new.push(ChunkRow {
            stream_id,
            shard_ordinal,
            first_sequence: first.first_sequence,
            last_sequence: last.last_sequence,
            first_arrival_ms: group
                .iter()
                .map(|c| c.row.first_arrival_ms)
                .min()
                .expect("not empty"),
            last_arrival_ms: group
                .iter()
                .map(|c| c.row.last_arrival_ms)
                .max()
                .expect("not empty"),
            object_key: object_key.clone(),
            byte_offset: offset,
            byte_length: *length as u64,
            data_key_id: Some(key.id().get() as i64),
            // INVARIANT: only a batch's last chunk may be left small, so a small
            // compacted chunk is always followed by the chunks still to compact, and
            // the next batch of its shard starts with it (`choose_run`).
            placement: if i == last_group && (payload as u64) < SMALL_CHUNK_BYTES {
                Placement::CompactedSmall
            } else {
                Placement::Compacted
            },
        });
        offset += *length as u64;
    }
    let old = groups.into_iter().flatten().map(|c| c.row).collect();
    Ok((old, new, written_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(first: u64, last: u64, bytes: u64, placement: Placement) -> ChunkRow {
        ChunkRow {
            stream_id: 1,
            shard_ordinal: 0,
            first_sequence: first,
            last_sequence: last,
            first_arrival_ms: 0,
            last_arrival_ms: 0,
            object_key: "segments/0-0.seg".into(),
            byte_offset: 0,
            byte_length: bytes,
            data_key_id: Some(1),
            placement,
        }
    }

    #[test]
    fn a_run_is_consecutive_and_worth_rewriting() {
        use Placement::*;
        // A lone small compacted chunk is left alone; the next run is taken whole.
        let rows = vec![
            row(0, 9, 100, CompactedSmall),
            row(20, 29, 100, CompactedSmall),
            row(30, 39, 100, Flushed),
            row(50, 59, 100, Flushed),
        ];
        let run = choose_run(rows);
        assert_eq!(
            run.iter().map(|r| r.first_sequence).collect::<Vec<_>>(),
            vec![20, 30]
        );
        // A lone flushed chunk is worth moving out of its shared segment.
        assert_eq!(choose_run(vec![row(5, 5, 10, Flushed)]).len(), 1);
        assert!(choose_run(vec![row(5, 5, 10, CompactedSmall)]).is_empty());
        // The batch's bytes are bounded, but a single chunk over the bound is taken.
        let big = BATCH_BYTES_MAX / 2 + 1;
        let rows = vec![row(0, 0, big, Flushed), row(1, 1, big, Flushed)];
        assert_eq!(choose_run(rows).len(), 1);
        let rows = vec![row(0, 0, BATCH_BYTES_MAX * 2, Flushed)];
        assert_eq!(choose_run(rows).len(), 1);
    }
}
