//! The chunk index: the rows that say where each shard's records are, written in the
//! commit transaction that acknowledges them and read by shard reads, iterators,
//! SubscribeToShard and the on-demand scaler. The bytes live in the object store; only
//! their order and place live here.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row;

use crate::billing::Metric;
use crate::streams::{shard_id, to_i64, to_u64};
use crate::{Catalog, CatalogError};

/// One chunk of a flush, as the writer asks the catalog to commit it.
#[derive(Debug, Clone)]
pub struct NewChunk<'a> {
    pub account_id: &'a str,
    pub stream_name: &'a str,
    pub stream_id: i64,
    pub shard_ordinal: u64,
    /// Records in the chunk; they take consecutive counters.
    pub record_count: u64,
    /// Where the chunk starts in its object.
    pub byte_offset: u64,
    pub byte_length: u64,
    pub data_key_id: u64,
    /// PUT payload units its records bill (provisioned streams).
    pub payload_units: u64,
    /// KiB its records bill (ON_DEMAND streams).
    pub ingress_kib: u64,
    /// KiB its records bill as Firehose ingestion (a delivery stream's buffer).
    pub firehose_kib: u64,
}

/// What the commit did with one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Its records hold counters from this one on.
    From(u64),
    /// Its shard closed (a reshard) before the commit: nothing of it is acknowledged.
    ShardClosed,
    /// Its stream is gone.
    Gone,
}

/// A chunk row as readers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub object_key: String,
    pub byte_offset: i64,
    pub byte_length: i64,
    /// `None`: a row that names no data key (never written by a released build).
    pub data_key_id: Option<i64>,
}

/// What GetRecords needs of a shard's stream before it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadTarget {
    pub stream_name: String,
    pub retention_hours: i64,
    pub master_key_id: Option<String>,
    pub shard_closed: bool,
    /// When the shard was made (its records' sequence numbers carry it).
    pub shard_created_ms: i64,
    /// The shard-level metrics enhanced monitoring has on for the stream.
    pub shard_level_metrics: String,
    /// Whether the stream is ON_DEMAND (its reads are billed per GiB).
    pub on_demand: bool,
}

/// A child of a shard: its id, both parents and its hash-key range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildShardRow {
    pub shard_id: String,
    pub parent_shard_ids: Vec<String>,
    pub hash_key_start: String,
    pub hash_key_end: String,
}

impl Catalog {
    /// Commits the chunks of one flush stored at `object_key` from byte `base`: each
    /// open shard's counters advance by its chunk's records and the chunk's row is
    /// inserted; PUT payload units are metered; all in one transaction.
    pub async fn commit_chunks(
        &self,
        object_key: &str,
        base: u64,
        chunks: &[NewChunk<'_>],
        arrival_ms: i64,
    ) -> Result<Vec<Committed>, CatalogError> {
        let mut tx = self.begin_write().await?;
        let mut committed = Vec::with_capacity(chunks.len());
        let mut units: BTreeMap<(&str, &str, i64), (u64, u64, u64)> = BTreeMap::new();
        for chunk in chunks {
            let count = to_i64(chunk.record_count);
            // INVARIANT: this UPDATE takes the shard's row lock (and SQLite's write
            // lock), so counters are handed out in commit order, each exactly once.
            let row = sqlx::query(
                "UPDATE shards SET next_sequence = next_sequence + $3 \
                 WHERE stream_id = $1 AND shard_ordinal = $2 AND closed_at_ms IS NULL \
                 RETURNING next_sequence",
            )
            .bind(chunk.stream_id)
            .bind(to_i64(chunk.shard_ordinal))
            .bind(count)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                // Closed by a reshard (its row stays), or gone with its stream.
                let closed: Option<i64> = sqlx::query_scalar(
                    "SELECT shard_ordinal FROM shards WHERE stream_id = $1 AND shard_ordinal = $2",
                )
                .bind(chunk.stream_id)
                .bind(to_i64(chunk.shard_ordinal))
                .fetch_optional(&mut *tx)
                .await?;
                committed.push(match closed {
                    Some(_) => Committed::ShardClosed,
                    None => Committed::Gone,
                });
                continue;
            };
            let next: i64 = row.try_get("next_sequence")?;
            let first = next - count;
            sqlx::query(
                "INSERT INTO chunks (stream_id, shard_ordinal, first_sequence, last_sequence, \
                 first_arrival_ms, last_arrival_ms, object_key, byte_offset, byte_length, \
                 data_key_id) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)",
            )
            .bind(chunk.stream_id)
            .bind(to_i64(chunk.shard_ordinal))
            .bind(first)
            .bind(next - 1)
            .bind(arrival_ms)
            .bind(object_key)
            .bind(to_i64(base + chunk.byte_offset))
            .bind(to_i64(chunk.byte_length))
            .bind(to_i64(chunk.data_key_id))
            .execute(&mut *tx)
            .await?;
            committed.push(Committed::From(to_u64(first, "first_sequence")?));
            let billed: &mut (u64, u64, u64) = units
                .entry((chunk.account_id, chunk.stream_name, chunk.stream_id))
                .or_default();
            billed.0 += chunk.payload_units;
            billed.1 += chunk.ingress_kib;
            billed.2 += chunk.firehose_kib;
        }
        // INVARIANT: what records bill is metered in the transaction that acknowledges
        // them: billed exactly when acknowledged, by the stream's mode at that moment.
        // A delivery stream's buffer (owner `firehose`) bills Firehose ingestion.
        for ((account_id, stream_name, stream_id), (payload_units, kib, firehose_kib)) in units {
            let row = sqlx::query("SELECT stream_mode, owner FROM streams WHERE stream_id = $1")
                .bind(stream_id)
                .fetch_optional(&mut *tx)
                .await?;
            let (mode, owner): (Option<String>, Option<String>) = match row {
                Some(row) => (row.try_get("stream_mode")?, row.try_get("owner")?),
                None => (None, None),
            };
            let (metric, quantity) = if owner.is_some() {
                (Metric::FirehoseIngestedGib, firehose_kib)
            } else if mode.as_deref() == Some("ON_DEMAND") {
                (Metric::OnDemandIngressGib, kib)
            } else {
                (Metric::PutPayloadUnits, payload_units)
            };
            Catalog::meter_count(
                &mut tx,
                account_id,
                stream_name,
                metric,
                quantity,
                arrival_ms,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(committed)
    }

    /// Up to `limit` chunk rows of a shard, in sequence order, holding counters from
    /// `from` on and records that arrived at or after `retained_since_ms`.
    pub async fn chunk_rows(
        &self,
        stream_id: i64,
        shard_ordinal: u64,
        from: u64,
        retained_since_ms: i64,
        limit: i64,
    ) -> Result<Vec<ChunkRow>, CatalogError> {
        let rows = sqlx::query(
            "SELECT first_sequence, last_sequence, object_key, byte_offset, byte_length, data_key_id \
             FROM chunks \
             WHERE stream_id = $1 AND shard_ordinal = $2 AND last_sequence >= $3 AND last_arrival_ms >= $4 \
             ORDER BY first_sequence LIMIT $5",
        )
        .bind(stream_id)
        .bind(to_i64(shard_ordinal))
        .bind(to_i64(from))
        .bind(retained_since_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChunkRow {
                    first_sequence: to_u64(r.try_get("first_sequence")?, "first_sequence")?,
                    last_sequence: to_u64(r.try_get("last_sequence")?, "last_sequence")?,
                    object_key: r.try_get("object_key")?,
                    byte_offset: r.try_get("byte_offset")?,
                    byte_length: r.try_get("byte_length")?,
                    data_key_id: r.try_get("data_key_id")?,
                })
            })
            .collect()
    }

    /// The counter of the first record of a shard that arrived at or after `at_ms`, or
    /// the shard's tip when none has. All records of a chunk share one arrival time.
    pub async fn first_counter_at(
        &self,
        stream_id: i64,
        shard_ordinal: u64,
        at_ms: i64,
    ) -> Result<u64, CatalogError> {
        let first: Option<i64> = sqlx::query_scalar(
            "SELECT first_sequence FROM chunks WHERE stream_id = $1 AND shard_ordinal = $2 \
             AND last_arrival_ms >= $3 ORDER BY first_sequence LIMIT 1",
        )
        .bind(stream_id)
        .bind(to_i64(shard_ordinal))
        .bind(at_ms)
        .fetch_optional(self.pool())
        .await?;
        match first {
            Some(first) => to_u64(first, "first_sequence"),
            None => self.next_sequence(stream_id, shard_ordinal).await,
        }
    }

    /// The stream of `account_id` that a shard iterator names and whether the shard is
    /// closed; `None` when the stream is gone. The shard's row is read before its
    /// records: once it says closed, every record the shard will hold is committed.
    pub async fn read_target(
        &self,
        account_id: &str,
        stream_id: i64,
        shard_ordinal: u64,
    ) -> Result<Option<ReadTarget>, CatalogError> {
        let row = sqlx::query(
            "SELECT s.retention_hours, s.stream_name, s.master_key_id, s.shard_level_metrics, \
             s.stream_mode, h.closed_at_ms, h.created_at_ms FROM streams s \
             JOIN shards h ON h.stream_id = s.stream_id AND h.shard_ordinal = $3 \
             WHERE s.stream_id = $1 AND s.account_id = $2",
        )
        .bind(stream_id)
        .bind(account_id)
        .bind(to_i64(shard_ordinal))
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(ReadTarget {
                retention_hours: row.try_get("retention_hours")?,
                stream_name: row.try_get("stream_name")?,
                master_key_id: row.try_get("master_key_id")?,
                shard_closed: row.try_get::<Option<i64>, _>("closed_at_ms")?.is_some(),
                shard_created_ms: row.try_get("created_at_ms")?,
                shard_level_metrics: row.try_get("shard_level_metrics")?,
                on_demand: row.try_get::<String, _>("stream_mode")? == "ON_DEMAND",
            })
        })
        .transpose()
    }

    /// Whether a shard is closed; `None` when it (with its stream) is gone.
    pub async fn shard_closed(
        &self,
        stream_id: i64,
        shard_ordinal: u64,
    ) -> Result<Option<bool>, CatalogError> {
        let closed: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT closed_at_ms FROM shards WHERE stream_id = $1 AND shard_ordinal = $2",
        )
        .bind(stream_id)
        .bind(to_i64(shard_ordinal))
        .fetch_optional(self.pool())
        .await?;
        Ok(closed.map(|at| at.is_some()))
    }

    /// The shards that name `ordinal` as parent or adjacent parent, with both parents.
    pub async fn child_shards(
        &self,
        stream_id: i64,
        ordinal: u64,
    ) -> Result<Vec<ChildShardRow>, CatalogError> {
        let rows = sqlx::query(
            "SELECT shard_ordinal, hash_key_start, hash_key_end, parent_ordinal, adjacent_parent_ordinal \
             FROM shards WHERE stream_id = $1 AND (parent_ordinal = $2 OR adjacent_parent_ordinal = $2) \
             ORDER BY shard_ordinal",
        )
        .bind(stream_id)
        .bind(to_i64(ordinal))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let parents = [
                    Some(row.try_get::<i64, _>("parent_ordinal")?),
                    row.try_get::<Option<i64>, _>("adjacent_parent_ordinal")?,
                ];
                Ok(ChildShardRow {
                    shard_id: shard_id(to_u64(row.try_get("shard_ordinal")?, "shard_ordinal")?),
                    parent_shard_ids: parents
                        .into_iter()
                        .flatten()
                        .map(|p| to_u64(p, "parent_ordinal").map(shard_id))
                        .collect::<Result<_, _>>()?,
                    hash_key_start: row.try_get("hash_key_start")?,
                    hash_key_end: row.try_get("hash_key_end")?,
                })
            })
            .collect()
    }

    /// ACTIVE on-demand streams, at most `limit`, as (stream id, account).
    pub async fn on_demand_streams(&self, limit: i64) -> Result<Vec<(i64, String)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT stream_id, account_id FROM streams \
             WHERE stream_mode = 'ON_DEMAND' AND status = 'ACTIVE' ORDER BY stream_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("stream_id")?, r.try_get("account_id")?)))
            .collect()
    }

    /// Records and bytes written to each shard of a stream by chunks whose newest
    /// record arrived at or after `since_ms`.
    pub async fn shard_writes_since(
        &self,
        stream_id: i64,
        since_ms: i64,
    ) -> Result<HashMap<u64, (u64, u64)>, CatalogError> {
        let rows = sqlx::query(
            // Postgres sums BIGINTs as NUMERIC: cast back.
            "SELECT shard_ordinal, CAST(SUM(last_sequence - first_sequence + 1) AS BIGINT) AS records, \
             CAST(SUM(byte_length) AS BIGINT) AS bytes FROM chunks \
             WHERE stream_id = $1 AND last_arrival_ms >= $2 GROUP BY shard_ordinal",
        )
        .bind(stream_id)
        .bind(since_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    to_u64(r.try_get("shard_ordinal")?, "shard_ordinal")?,
                    (
                        r.try_get::<i64, _>("records")?.max(0) as u64,
                        r.try_get::<i64, _>("bytes")?.max(0) as u64,
                    ),
                ))
            })
            .collect()
    }
}
