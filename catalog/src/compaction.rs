//! The catalog side of compaction: which shards have chunks worth rewriting, their
//! chunk rows, and the one transaction that swaps old rows for the rows of the chunks
//! they were rewritten into. The data plane (`sluice_data_plane::compact`) moves the
//! bytes; nothing here deletes a record: the rows a swap deletes name exactly the
//! sequence numbers the rows it inserts name.

use sqlx::Row;

use crate::{Catalog, CatalogError};

/// Where a chunk's bytes sit (the `placement` column of `chunks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In a flush's segment, beside chunks of other shards, as the writer left it.
    Flushed,
    /// Rewritten into an object of its shard only, large enough to be left alone.
    Compacted,
    /// Rewritten into an object of its shard only, but small: a later pass may merge it
    /// with the chunks that follow it.
    CompactedSmall,
}

impl Placement {
    fn to_db(self) -> i64 {
        match self {
            Placement::Flushed => 0,
            Placement::Compacted => 1,
            Placement::CompactedSmall => 2,
        }
    }

    fn from_db(raw: i64) -> Result<Placement, CatalogError> {
        match raw {
            0 => Ok(Placement::Flushed),
            1 => Ok(Placement::Compacted),
            2 => Ok(Placement::CompactedSmall),
            other => Err(CatalogError::Corrupt {
                what: format!("chunk placement {other}"),
            }),
        }
    }
}

/// A shard with chunks that compaction may rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionCandidate {
    pub account_id: String,
    pub stream_id: i64,
    pub shard_ordinal: u64,
    /// The stream's master key (`None`: the account's default stream key).
    pub master_key_id: Option<String>,
}

/// A chunk row as compaction reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    pub stream_id: i64,
    pub shard_ordinal: u64,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub first_arrival_ms: i64,
    pub last_arrival_ms: i64,
    pub object_key: String,
    pub byte_offset: u64,
    pub byte_length: u64,
    pub data_key_id: Option<i64>,
    pub placement: Placement,
}

/// A full row of `chunks` (every column this module selects).
pub(crate) fn chunk_row(r: &sqlx::any::AnyRow) -> Result<ChunkRow, CatalogError> {
    Ok(ChunkRow {
        stream_id: r.try_get("stream_id")?,
        shard_ordinal: r.try_get::<i64, _>("shard_ordinal")? as u64,
        first_sequence: r.try_get::<i64, _>("first_sequence")? as u64,
        last_sequence: r.try_get::<i64, _>("last_sequence")? as u64,
        first_arrival_ms: r.try_get("first_arrival_ms")?,
        last_arrival_ms: r.try_get("last_arrival_ms")?,
        object_key: r.try_get("object_key")?,
        byte_offset: r.try_get::<i64, _>("byte_offset")? as u64,
        byte_length: r.try_get::<i64, _>("byte_length")? as u64,
        data_key_id: r.try_get("data_key_id")?,
        placement: Placement::from_db(r.try_get("placement")?)?,
    })
}

impl Catalog {
    /// Up to `limit` shards that have, among their chunks whose newest record arrived
    /// before `settled_before_ms`, one still in a flush's segment or two small
    /// compacted ones, in random order (so shards that keep failing, say under a
    /// disabled master key, do not starve the rest). Shards of streams being deleted
    /// are left to the deletion.
    pub async fn compaction_candidates(
        &self,
        settled_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<CompactionCandidate>, CatalogError> {
        let rows = sqlx::query(
            "SELECT s.account_id, c.stream_id, c.shard_ordinal, s.master_key_id FROM chunks c \
             JOIN streams s ON s.stream_id = c.stream_id \
             WHERE c.placement <> 1 AND c.last_arrival_ms < $1 AND s.status <> 'DELETING' \
             GROUP BY s.account_id, c.stream_id, c.shard_ordinal, s.master_key_id \
             HAVING MIN(c.placement) = 0 OR COUNT(*) >= 2 \
             ORDER BY random() LIMIT $2",
        )
        .bind(settled_before_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CompactionCandidate {
                    account_id: r.try_get("account_id")?,
                    stream_id: r.try_get("stream_id")?,
                    shard_ordinal: r.try_get::<i64, _>("shard_ordinal")? as u64,
                    master_key_id: r.try_get("master_key_id")?,
                })
            })
            .collect()
    }

    /// The shard's first `limit` settled chunk rows (newest record before
    /// `settled_before_ms`) that compaction may rewrite, in sequence order.
    pub async fn compactable_chunks(
        &self,
        stream_id: i64,
        shard_ordinal: u64,
        settled_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<ChunkRow>, CatalogError> {
        let rows = sqlx::query(
            "SELECT stream_id, shard_ordinal, first_sequence, last_sequence, \
             first_arrival_ms, last_arrival_ms, object_key, byte_offset, byte_length, \
             data_key_id, placement FROM chunks \
             WHERE stream_id = $1 AND shard_ordinal = $2 AND placement <> 1 \
             AND last_arrival_ms < $3 ORDER BY first_sequence LIMIT $4",
        )
        .bind(stream_id)
        .bind(shard_ordinal as i64)
        .bind(settled_before_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(chunk_row).collect()
    }

    /// In one transaction, deletes the `old` rows and inserts the `new` ones; returns
    /// false, changing nothing, when any old row is no longer there as it was read (the
    /// janitor expired it, its stream was deleted, or another process compacted it).
    ///
    /// INVARIANT: the caller's `new` rows name exactly the sequence numbers of the `old`
    /// rows, with their arrival times, so readers see either the old rows or the new
    /// ones and never a gap or a record twice; this checks the ranges match.
    pub async fn replace_chunks(
        &self,
        old: &[ChunkRow],
        new: &[ChunkRow],
    ) -> Result<bool, CatalogError> {
        let span = |rows: &[ChunkRow]| {
            rows.iter()
                .map(|r| r.last_sequence + 1 - r.first_sequence)
                .sum::<u64>()
        };
        let ends = |rows: &[ChunkRow]| {
            (
                rows.first()
                    .map(|r| (r.stream_id, r.shard_ordinal, r.first_sequence)),
                rows.last().map(|r| r.last_sequence),
            )
        };
        if old.is_empty() || span(old) != span(new) || ends(old) != ends(new) {
            return Err(CatalogError::Corrupt {
                what: "compacted chunk rows do not cover the rows they replace".into(),
            });
        }
        // INVARIANT: the first statement writes, so SQLite takes its write lock first.
        let mut tx = self.begin_write().await?;
        for row in old {
            let deleted = sqlx::query(
                "DELETE FROM chunks WHERE stream_id = $1 AND shard_ordinal = $2 \
                 AND first_sequence = $3 AND last_sequence = $4 AND object_key = $5 \
                 AND byte_offset = $6",
            )
            .bind(row.stream_id)
            .bind(row.shard_ordinal as i64)
            .bind(row.first_sequence as i64)
            .bind(row.last_sequence as i64)
            .bind(&row.object_key)
            .bind(row.byte_offset as i64)
            .execute(&mut *tx)
            .await?;
            if deleted.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        for row in new {
            sqlx::query(
                "INSERT INTO chunks (stream_id, shard_ordinal, first_sequence, last_sequence, \
                 first_arrival_ms, last_arrival_ms, object_key, byte_offset, byte_length, \
                 data_key_id, placement) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(row.stream_id)
            .bind(row.shard_ordinal as i64)
            .bind(row.first_sequence as i64)
            .bind(row.last_sequence as i64)
            .bind(row.first_arrival_ms)
            .bind(row.last_arrival_ms)
            .bind(&row.object_key)
            .bind(row.byte_offset as i64)
            .bind(row.byte_length as i64)
            .bind(row.data_key_id)
            .bind(row.placement.to_db())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
