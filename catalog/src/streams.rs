//! Streams and shards in the catalog: create, describe, list, tag, retain, delete.

use protocol::hash::{HashKey, HashKeyRange};
use protocol::{SequenceNumber, limits};

use crate::refusal::{Refusal, RefusalKind};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Catalog, CatalogError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Creating => "CREATING",
            StreamStatus::Active => "ACTIVE",
            StreamStatus::Updating => "UPDATING",
            StreamStatus::Deleting => "DELETING",
        }
    }

    fn parse(text: &str) -> Result<Self, CatalogError> {
        Ok(match text {
            "CREATING" => StreamStatus::Creating,
            "ACTIVE" => StreamStatus::Active,
            "UPDATING" => StreamStatus::Updating,
            "DELETING" => StreamStatus::Deleting,
            other => {
                return Err(CatalogError::Corrupt {
                    what: format!("stream status {other:?}"),
                });
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PROVISIONED" => Some(StreamMode::Provisioned),
            "ON_DEMAND" => Some(StreamMode::OnDemand),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub ordinal: u64,
    pub hash_key_range: HashKeyRange,
    pub parent_ordinal: Option<u64>,
    pub adjacent_parent_ordinal: Option<u64>,
    pub created_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    /// The counter the next record written to this shard will get.
    pub next_sequence: u64,
}

impl Shard {
    pub fn shard_id(&self) -> String {
        shard_id(self.ordinal)
    }

    pub fn is_open(&self) -> bool {
        self.closed_at_ms.is_none()
    }

    /// Precedes every record of the shard.
    pub fn starting_sequence_number(&self) -> SequenceNumber {
        SequenceNumber::shard_start(self.ordinal, self.created_at_ms)
    }

    /// Follows every record of a closed shard (AWS's: the largest counter, the closing
    /// second).
    pub fn ending_sequence_number(&self) -> Option<SequenceNumber> {
        self.closed_at_ms
            .map(|closed| SequenceNumber::shard_end(self.ordinal, self.created_at_ms, closed))
    }

    /// A record of this shard's sequence number.
    pub fn record_sequence_number(&self, counter: u64, arrival_ms: i64) -> SequenceNumber {
        SequenceNumber::record(self.ordinal, counter, self.created_at_ms, arrival_ms)
    }
}

/// `shardId-000000000007`, as Kinesis names shards.
pub fn shard_id(ordinal: u64) -> String {
    format!("shardId-{ordinal:012}")
}

/// The ordinal in a shard id, if it is one of ours.
pub fn parse_shard_id(id: &str) -> Option<u64> {
    let digits = id.strip_prefix("shardId-")?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Debug, Clone)]
pub struct Stream {
    pub id: i64,
    pub account_id: String,
    pub name: String,
    pub status: StreamStatus,
    pub mode: StreamMode,
    pub retention_hours: i64,
    pub created_at_ms: i64,
    /// `KMS` once StartStreamEncryption named a key, else `NONE` (the data is sealed at
    /// rest under the account's default key either way).
    pub encryption_type: String,
    /// The KeyId as StartStreamEncryption was given it.
    pub key_id: Option<String>,
    /// The master key that names, resolved; `None`: the account's default key.
    pub master_key_id: Option<String>,
    /// The shard-level metrics enhanced monitoring turned on, comma-separated ("" none).
    pub shard_level_metrics: String,
    /// USER_PARTITION_KEY or AUTO (UpdateStreamRecordDistributionStrategy).
    pub record_distribution: String,
    /// The write throughput, in MiB/s, an on-demand stream keeps shards for (0: none).
    pub warm_throughput_mibps: i64,
    /// The largest record (data and partition key) the stream takes, in KiB.
    pub max_record_size_kib: i64,
    /// Every shard, open and closed, by ordinal.
    pub shards: Vec<Shard>,
}

impl Stream {
    pub fn open_shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter().filter(|s| s.is_open())
    }

    /// The open shard whose hash key range holds `key`.
    pub fn route(&self, key: HashKey) -> Option<&Shard> {
        self.open_shards().find(|s| s.hash_key_range.contains(key))
    }

    pub fn shard(&self, ordinal: u64) -> Option<&Shard> {
        self.shards.iter().find(|s| s.ordinal == ordinal)
    }
}

/// A stream as ListStreams shows it.
#[derive(Debug, Clone)]
pub struct StreamListing {
    pub name: String,
    pub status: StreamStatus,
    pub mode: StreamMode,
    pub created_at_ms: i64,
}

/// What CreateStream asks for, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewStream<'a> {
    pub account_id: &'a str,
    pub name: &'a str,
    pub shard_count: u32,
    pub mode: StreamMode,
    pub tags: &'a [(String, String)],
    pub now_ms: i64,
    pub account_shards_max: i64,
    pub account_on_demand_streams_max: i64,
    pub region: &'a str,
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, CatalogError> {
    u64::try_from(value).map_err(|_| CatalogError::Corrupt {
        what: format!("{what} = {value}"),
    })
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).expect("counters stay below 2^63")
}

fn hash_key(text: &str) -> Result<HashKey, CatalogError> {
    text.parse::<u128>()
        .map(HashKey)
        .map_err(|_| CatalogError::Corrupt {
            what: format!("hash key {text:?}"),
        })
}

fn shard_from_row(row: &AnyRow) -> Result<Shard, CatalogError> {
    let start: String = row.try_get("hash_key_start")?;
    let end: String = row.try_get("hash_key_end")?;
    let parent: Option<i64> = row.try_get("parent_ordinal")?;
    let adjacent: Option<i64> = row.try_get("adjacent_parent_ordinal")?;
    Ok(Shard {
        ordinal: to_u64(row.try_get("shard_ordinal")?, "shard_ordinal")?,
        hash_key_range: HashKeyRange {
            starting: hash_key(&start)?,
            ending: hash_key(&end)?,
        },
        parent_ordinal: parent.map(|p| to_u64(p, "parent_ordinal")).transpose()?,
        adjacent_parent_ordinal: adjacent
            .map(|p| to_u64(p, "adjacent_parent_ordinal"))
            .transpose()?,
        created_at_ms: row.try_get("created_at_ms")?,
        closed_at_ms: row.try_get("closed_at_ms")?,
        next_sequence: to_u64(row.try_get("next_sequence")?, "next_sequence")?,
    })
}

const STREAM_COLUMNS: &str = "stream_id, account_id, stream_name, status, stream_mode, retention_hours, created_at_ms, encryption_type, key_id, master_key_id, shard_level_metrics, record_distribution, warm_throughput_mibps, max_record_size_kib";

fn stream_from_row(row: &AnyRow, shards: Vec<Shard>) -> Result<Stream, CatalogError> {
    let mode: String = row.try_get("stream_mode")?;
    Ok(Stream {
        id: row.try_get("stream_id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("stream_name")?,
        status: StreamStatus::parse(&row.try_get::<String, _>("status")?)?,
        mode: StreamMode::parse(&mode).ok_or_else(|| CatalogError::Corrupt {
            what: format!("stream mode {mode:?}"),
        })?,
        retention_hours: row.try_get("retention_hours")?,
        created_at_ms: row.try_get("created_at_ms")?,
        encryption_type: row.try_get("encryption_type")?,
        key_id: row.try_get("key_id")?,
        master_key_id: row.try_get("master_key_id")?,
        shard_level_metrics: row.try_get("shard_level_metrics")?,
        record_distribution: row.try_get("record_distribution")?,
        warm_throughput_mibps: row.try_get("warm_throughput_mibps")?,
        max_record_size_kib: row.try_get("max_record_size_kib")?,
        shards,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Catalog {
    /// Creates a stream with its shards splitting the key space evenly, and counts its
    /// shards against the account's limit in the same transaction.
    pub async fn create_stream(&self, new: &NewStream<'_>) -> Result<Stream, CatalogError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO accounts (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(new.account_id)
        .execute(&mut *tx)
        .await?;
        let shard_count = i64::from(new.shard_count);
        // INVARIANT: the limit check and the increment are one statement, so two
        // concurrent creates cannot both pass it.
        let counted = sqlx::query(
            "UPDATE accounts SET open_shard_count = open_shard_count + $2 \
             WHERE account_id = $1 AND open_shard_count + $2 <= $3 RETURNING open_shard_count",
        )
        .bind(new.account_id)
        .bind(shard_count)
        .bind(new.account_shards_max)
        .fetch_optional(&mut *tx)
        .await?;
        if counted.is_none() {
            let open: i64 =
                sqlx::query_scalar("SELECT open_shard_count FROM accounts WHERE account_id = $1")
                    .bind(new.account_id)
                    .fetch_one(&mut *tx)
                    .await?;
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                protocol::ApiError::shard_limit_text(
                    new.account_id,
                    new.region,
                    open,
                    new.account_shards_max,
                    shard_count,
                ),
            )
            .into());
        }
        // The on-demand stream limit. The UPDATE above holds the account's row (and
        // SQLite's write lock), so two creates cannot both pass this count.
        if new.mode == StreamMode::OnDemand {
            let on_demand: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM streams WHERE account_id = $1 AND stream_mode = 'ON_DEMAND'",
            )
            .bind(new.account_id)
            .fetch_one(&mut *tx)
            .await?;
            if on_demand >= new.account_on_demand_streams_max {
                return Err(Refusal::new(
                    RefusalKind::OverLimit,
                    format!(
                        "This request would exceed the on-demand stream count limit for the account {} in {}. Current limit of on-demand streams is {}.",
                        new.account_id,
                        new.region,
                        new.account_on_demand_streams_max
                    ),
                )
                .into());
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO streams (account_id, stream_name, status, stream_mode, retention_hours, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING stream_id",
        )
        .bind(new.account_id)
        .bind(new.name)
        .bind(StreamStatus::Active.as_str())
        .bind(new.mode.as_str())
        .bind(limits::RETENTION_HOURS_DEFAULT)
        .bind(new.now_ms)
        .fetch_one(&mut *tx)
        .await;
        let stream_id: i64 = match inserted {
            Ok(row) => row.try_get("stream_id")?,
            Err(e) if is_unique_violation(&e) => {
                return Err(Refusal::new(
                    RefusalKind::InUse,
                    format!(
                        "Stream {} under account {} already exists.",
                        new.name, new.account_id
                    ),
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        for (ordinal, range) in HashKeyRange::split_evenly(new.shard_count)
            .into_iter()
            .enumerate()
        {
            sqlx::query(
                "INSERT INTO shards (stream_id, shard_ordinal, hash_key_start, hash_key_end, created_at_ms, next_sequence) \
                 VALUES ($1, $2, $3, $4, $5, 1)",
            )
            .bind(stream_id)
            .bind(ordinal as i64)
            .bind(range.starting.0.to_string())
            .bind(range.ending.0.to_string())
            .bind(new.now_ms)
            .execute(&mut *tx)
            .await?;
        }
        Self::meter_shards_opened(
            &mut tx,
            new.account_id,
            new.name,
            stream_id,
            0..shard_count,
            new.now_ms,
        )
        .await?;
        Self::meter_retention(
            &mut tx,
            new.account_id,
            new.name,
            stream_id,
            limits::RETENTION_HOURS_DEFAULT,
            new.now_ms,
        )
        .await?;
        if new.mode == StreamMode::OnDemand {
            Self::meter_on_demand(
                &mut tx,
                new.account_id,
                new.name,
                stream_id,
                true,
                new.now_ms,
            )
            .await?;
        }
        for (key, value) in new.tags {
            sqlx::query(
                "INSERT INTO stream_tags (stream_id, tag_key, tag_value) VALUES ($1, $2, $3)",
            )
            .bind(stream_id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.load_stream(new.account_id, new.name).await
    }

    /// A stream with all its shards, as of now.
    pub async fn load_stream(&self, account_id: &str, name: &str) -> Result<Stream, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE account_id = $1 AND stream_name = $2"
        )))
        .bind(account_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| Refusal::stream_not_found(name, account_id))?;
        let stream_id: i64 = row.try_get("stream_id")?;
        let shards = sqlx::query(
            "SELECT shard_ordinal, hash_key_start, hash_key_end, parent_ordinal, adjacent_parent_ordinal, \
             created_at_ms, closed_at_ms, next_sequence FROM shards WHERE stream_id = $1 ORDER BY shard_ordinal",
        )
        .bind(stream_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(shard_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        stream_from_row(&row, shards)
    }

    /// The stream with this id, if it still exists (a stream deleted and created again
    /// under the same name gets a new id).
    pub async fn load_stream_by_id(
        &self,
        account_id: &str,
        stream_id: i64,
    ) -> Result<Option<Stream>, CatalogError> {
        let name: Option<String> = sqlx::query_scalar(
            "SELECT stream_name FROM streams WHERE account_id = $1 AND stream_id = $2",
        )
        .bind(account_id)
        .bind(stream_id)
        .fetch_optional(self.pool())
        .await?;
        match name {
            Some(name) => match self.load_stream(account_id, &name).await {
                Ok(stream) if stream.id == stream_id => Ok(Some(stream)),
                Ok(_) => Ok(None),
                Err(CatalogError::Refused(e)) if e.kind == RefusalKind::Missing => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    /// Deletes a stream, its shards, tags and chunk index, and gives its shards back to
    /// the account. The chunk bytes stay in the object store until compaction.
    /// Its shards stop being metered at `now_ms`.
    pub async fn delete_stream(
        &self,
        account_id: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE accounts SET open_shard_count = open_shard_count - \
               (SELECT COUNT(*) FROM shards s JOIN streams t ON s.stream_id = t.stream_id \
                WHERE t.account_id = $1 AND t.stream_name = $2 AND s.closed_at_ms IS NULL) \
             WHERE account_id = $1",
        )
        .bind(account_id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(
            "DELETE FROM streams WHERE account_id = $1 AND stream_name = $2 RETURNING stream_id",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = deleted else {
            return Err(Refusal::stream_not_found(name, account_id).into());
        };
        let stream_id: i64 = row.try_get("stream_id")?;
        Self::meter_stream_gone(&mut tx, stream_id, now_ms).await?;
        // ON DELETE CASCADE does this too; saying it keeps the catalog clean even where
        // foreign keys are off.
        for table in ["chunks", "stream_tags", "shards"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE stream_id = $1"
            )))
            .bind(stream_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Puts a stream in a passing state (CREATING, UPDATING or DELETING) until
    /// `until_ms`, when `advance_stream_states` moves it on. A stream already DELETING
    /// is not found.
    pub async fn set_stream_transition(
        &self,
        account_id: &str,
        name: &str,
        status: StreamStatus,
        until_ms: i64,
    ) -> Result<(), CatalogError> {
        let moved = sqlx::query(
            "UPDATE streams SET status = $3, status_until_ms = $4 \
             WHERE account_id = $1 AND stream_name = $2 AND status <> 'DELETING' \
             RETURNING stream_id",
        )
        .bind(account_id)
        .bind(name)
        .bind(status.as_str())
        .bind(until_ms)
        .fetch_optional(self.pool())
        .await?;
        match moved {
            Some(_) => Ok(()),
            None => Err(Refusal::stream_not_found(name, account_id).into()),
        }
    }

    /// Moves streams whose passing state has run out: CREATING and UPDATING become
    /// ACTIVE, DELETING streams are deleted (their shards stop being metered now).
    /// Returns the (account, name) of every stream it changed; at most `limit` deletions
    /// a pass.
    pub async fn advance_stream_states(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let activated = sqlx::query(
            "UPDATE streams SET status = 'ACTIVE', status_until_ms = NULL \
             WHERE status IN ('CREATING', 'UPDATING') AND status_until_ms <= $1 \
             RETURNING account_id, stream_name",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        let mut changed = activated
            .iter()
            .map(|r| Ok((r.try_get("account_id")?, r.try_get("stream_name")?)))
            .collect::<Result<Vec<(String, String)>, sqlx::Error>>()?;
        let doomed = sqlx::query(
            "SELECT account_id, stream_name FROM streams \
             WHERE status = 'DELETING' AND status_until_ms <= $1 LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        for row in &doomed {
            let account: String = row.try_get("account_id")?;
            let name: String = row.try_get("stream_name")?;
            match self.delete_stream(&account, &name, now_ms).await {
                // Another process deleted it first.
                Ok(()) | Err(CatalogError::Refused(_)) => changed.push((account, name)),
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }

    /// Deletes the rows of up to `limit` chunks whose newest record is older than its
    /// stream's retention period at `now_ms`; returns how many. Nothing else deletes a
    /// record (but deleting its stream).
    pub async fn expire_chunks(&self, now_ms: i64, limit: i64) -> Result<u64, CatalogError> {
        let done = sqlx::query(
            "DELETE FROM chunks WHERE (stream_id, shard_ordinal, first_sequence) IN ( \
               SELECT c.stream_id, c.shard_ordinal, c.first_sequence FROM chunks c \
               JOIN streams s ON s.stream_id = c.stream_id \
               WHERE c.last_arrival_ms < $1 - s.retention_hours * 3600000 LIMIT $2)",
        )
        .bind(now_ms)
        .bind(limit)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Every object key a chunk row names.
    pub async fn referenced_objects(
        &self,
    ) -> Result<std::collections::HashSet<String>, CatalogError> {
        let keys: Vec<String> = sqlx::query_scalar("SELECT DISTINCT object_key FROM chunks")
            .fetch_all(self.pool())
            .await?;
        Ok(keys.into_iter().collect())
    }

    /// Streams of an account in name order, after `after` if given; returns up to
    /// `limit` and whether more exist.
    pub async fn list_streams(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<StreamListing>, bool), CatalogError> {
        let rows = sqlx::query(
            "SELECT stream_name, status, stream_mode, created_at_ms FROM streams \
             WHERE account_id = $1 AND stream_name > $2 AND owner IS NULL \
             ORDER BY stream_name LIMIT $3",
        )
        .bind(account_id)
        .bind(after.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let has_more = rows.len() as i64 > limit;
        let mut listings = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            let mode: String = row.try_get("stream_mode")?;
            listings.push(StreamListing {
                name: row.try_get("stream_name")?,
                status: StreamStatus::parse(&row.try_get::<String, _>("status")?)?,
                mode: StreamMode::parse(&mode).ok_or_else(|| CatalogError::Corrupt {
                    what: format!("stream mode {mode:?}"),
                })?,
                created_at_ms: row.try_get("created_at_ms")?,
            });
        }
        Ok((listings, has_more))
    }

    /// Sets a stream's retention period, metered from `now_ms`.
    pub async fn set_retention_hours(
        &self,
        stream_id: i64,
        hours: i64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE streams SET retention_hours = $2 WHERE stream_id = $1 \
             RETURNING account_id, stream_name",
        )
        .bind(stream_id)
        .bind(hours)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            let account_id: String = row.try_get("account_id")?;
            let stream_name: String = row.try_get("stream_name")?;
            Self::meter_retention(&mut tx, &account_id, &stream_name, stream_id, hours, now_ms)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Puts the stream's new data keys under master key `master_key_id` (named by the
    /// caller as `key_ref`), or with `None` back under the account's default key.
    pub async fn set_stream_encryption(
        &self,
        stream_id: i64,
        key: Option<(&str, &str)>,
    ) -> Result<(), CatalogError> {
        let (encryption_type, key_ref, master) = match key {
            Some((key_ref, master)) => ("KMS", Some(key_ref), Some(master)),
            None => ("NONE", None, None),
        };
        sqlx::query(
            "UPDATE streams SET encryption_type = $2, key_id = $3, master_key_id = $4 \
             WHERE stream_id = $1",
        )
        .bind(stream_id)
        .bind(encryption_type)
        .bind(key_ref)
        .bind(master)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Open shards and on-demand streams the account has.
    pub async fn account_usage(&self, account_id: &str) -> Result<(i64, i64), CatalogError> {
        let open: Option<i64> =
            sqlx::query_scalar("SELECT open_shard_count FROM accounts WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(self.pool())
                .await?;
        let on_demand: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM streams WHERE account_id = $1 AND stream_mode = 'ON_DEMAND'",
        )
        .bind(account_id)
        .fetch_one(self.pool())
        .await?;
        Ok((open.unwrap_or(0), on_demand))
    }

    /// The shard's next counter, read fresh (LATEST iterators start there).
    pub async fn next_sequence(&self, stream_id: i64, ordinal: u64) -> Result<u64, CatalogError> {
        let next: i64 = sqlx::query_scalar(
            "SELECT next_sequence FROM shards WHERE stream_id = $1 AND shard_ordinal = $2",
        )
        .bind(stream_id)
        .bind(to_i64(ordinal))
        .fetch_one(self.pool())
        .await?;
        to_u64(next, "next_sequence")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_stream<'a>(name: &'a str, shards: u32, limit: i64) -> NewStream<'a> {
        NewStream {
            account_id: "000000000000",
            name,
            shard_count: shards,
            mode: StreamMode::Provisioned,
            tags: &[],
            now_ms: 1_000,
            account_shards_max: limit,
            account_on_demand_streams_max: 50,
            region: "us-east-1",
        }
    }

    #[tokio::test]
    async fn lifecycle_on_every_backend() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let stream = catalog
                .create_stream(&new_stream("orders", 3, 10))
                .await
                .unwrap();
            assert_eq!(stream.shards.len(), 3);
            assert_eq!(stream.shards[1].shard_id(), "shardId-000000000001");
            assert_eq!(stream.shards[2].hash_key_range.ending.0, u128::MAX);
            let again = catalog.create_stream(&new_stream("orders", 1, 10)).await;
            assert!(matches!(again, Err(CatalogError::Refused(e)) if e.kind == RefusalKind::InUse));
            let over = catalog.create_stream(&new_stream("big", 8, 10)).await;
            assert!(
                matches!(over, Err(CatalogError::Refused(e)) if e.kind == RefusalKind::OverLimit)
            );
            assert_eq!(catalog.account_usage("000000000000").await.unwrap().0, 3);
            catalog
                .create_stream(&new_stream("alpha", 7, 10))
                .await
                .unwrap();
            let (page, more) = catalog.list_streams("000000000000", None, 1).await.unwrap();
            assert_eq!((page[0].name.as_str(), more), ("alpha", true));
            let (page, more) = catalog
                .list_streams("000000000000", Some("alpha"), 5)
                .await
                .unwrap();
            assert_eq!((page[0].name.as_str(), more), ("orders", false));
            catalog
                .delete_stream("000000000000", "alpha", 0)
                .await
                .unwrap();
            assert_eq!(catalog.account_usage("000000000000").await.unwrap().0, 3);
            let gone = catalog.load_stream("000000000000", "alpha").await;
            assert!(
                matches!(gone, Err(CatalogError::Refused(e)) if e.kind == RefusalKind::Missing)
            );
            let root = crate::rootkey::RootKey::from_bytes(&[3u8; 32]).unwrap();
            let secret = catalog
                .server_secret(&root, "k", || vec![1, 2, 3])
                .await
                .unwrap();
            let same = catalog.server_secret(&root, "k", || vec![9]).await.unwrap();
            assert_eq!(secret, same);
            assert_eq!(secret.as_slice(), &[1, 2, 3]);
            // Stored sealed, not as written.
            let stored: Vec<u8> =
                sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = 'k'")
                    .fetch_one(catalog.pool())
                    .await
                    .unwrap();
            assert!(stored.len() > 3 && !stored.windows(3).any(|w| w == [1, 2, 3]));
            // A secret from before sealing (32 bytes in the clear) is sealed on first read.
            let legacy = vec![7u8; 32];
            sqlx::query("INSERT INTO server_secrets (name, secret) VALUES ('old', $1)")
                .bind(&legacy)
                .execute(catalog.pool())
                .await
                .unwrap();
            let read = catalog.server_secret(&root, "old", Vec::new).await.unwrap();
            assert_eq!(read.as_slice(), legacy.as_slice());
            let stored: Vec<u8> =
                sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = 'old'")
                    .fetch_one(catalog.pool())
                    .await
                    .unwrap();
            assert_ne!(stored, legacy);
            let again = catalog.server_secret(&root, "old", Vec::new).await.unwrap();
            assert_eq!(again.as_slice(), legacy.as_slice());
        }
    }

    #[test]
    fn shard_ids_round_trip() {
        assert_eq!(parse_shard_id(&shard_id(42)), Some(42));
        assert_eq!(parse_shard_id("shardId-"), None);
        assert_eq!(parse_shard_id("shard-1"), None);
    }
}

/// A change to a stream's shards, as SplitShard, MergeShards and UpdateShardCount ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reshard {
    Split {
        shard: u64,
        new_starting_key: HashKey,
    },
    Merge {
        shard: u64,
        adjacent: u64,
    },
    Uniform {
        target: u32,
    },
}

/// What a reshard did: the open shard count before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resharded {
    pub open_before: i64,
    pub open_after: i64,
}

/// Where a reshard happens and under which limits.
#[derive(Debug, Clone, Copy)]
pub struct ReshardContext<'a> {
    pub account_id: &'a str,
    pub name: &'a str,
    pub region: &'a str,
    pub now_ms: i64,
    pub account_shards_max: i64,
    /// The stream is UPDATING until then; `None`: it stays ACTIVE.
    pub updating_until_ms: Option<i64>,
    /// Asked by SplitShard, MergeShards or UpdateShardCount, which an ON_DEMAND
    /// stream refuses (its shards are the on-demand scaler's); `false` for the scaler.
    pub by_hand: bool,
}

fn reshard_refusal(error: crate::reshard::ReshardError, ctx: &ReshardContext<'_>) -> Refusal {
    use crate::reshard::ReshardError;
    let (name, account) = (ctx.name, ctx.account_id);
    match error {
        ReshardError::NotOpen(ordinal) => Refusal::new(
            RefusalKind::Missing,
            format!(
                "Could not find open shard {} in stream {name} under account {account}.",
                shard_id(ordinal)
            ),
        ),
        ReshardError::BadSplitKey {
            ordinal,
            range,
            key,
        } => Refusal::bad_argument(format!(
            "NewStartingHashKey {} used in SplitShard() on shard {} in stream {name} under account {account} is not both greater than one plus the shard's StartingHashKey {} and less than the shard's EndingHashKey {}.",
            key.0,
            shard_id(ordinal),
            range.starting.0,
            range.ending.0
        )),
        ReshardError::NotAdjacent(a, b) => Refusal::bad_argument(format!(
            "Shards {} and {} in stream {name} under account {account} are not an adjacent pair of shards eligible for merging",
            shard_id(a),
            shard_id(b)
        )),
    }
}

impl Catalog {
    /// Splits, merges or uniformly rescales a stream's shards in one transaction: the
    /// shards it closes stop taking records at once (the commit path's counter UPDATE
    /// requires an open shard, and takes the same row lock), the shards it opens take
    /// every record after, and the meter and the account's open shard count move with
    /// them. Only an ACTIVE stream reshards; it is UPDATING after, when asked.
    pub async fn reshard(
        &self,
        ctx: &ReshardContext<'_>,
        change: Reshard,
    ) -> Result<Resharded, CatalogError> {
        use crate::reshard::{self, OpenShard};
        let mut tx = self.begin_write().await?;
        // The write statement first: it takes SQLite's write lock, and on Postgres the
        // stream's row, so two reshards of one stream run one after the other.
        let status = if ctx.updating_until_ms.is_some() {
            StreamStatus::Updating
        } else {
            StreamStatus::Active
        };
        let claimed = sqlx::query(
            "UPDATE streams SET status = $3, status_until_ms = $4 \
             WHERE account_id = $1 AND stream_name = $2 AND status = 'ACTIVE' \
             RETURNING stream_id, stream_mode",
        )
        .bind(ctx.account_id)
        .bind(ctx.name)
        .bind(status.as_str())
        .bind(ctx.updating_until_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(claimed) = claimed else {
            return Err(not_active(&mut tx, ctx.account_id, ctx.name).await);
        };
        let stream_id: i64 = claimed.try_get("stream_id")?;
        if ctx.by_hand
            && claimed.try_get::<String, _>("stream_mode")? == StreamMode::OnDemand.as_str()
        {
            // AWS refuses a reshard by hand of an on-demand stream as invalid input, in
            // these words (recorded by the public emulator suites).
            return Err(Refusal::new(
                RefusalKind::Invalid,
                format!(
                    "Request is invalid. Stream {} under account {} is in On-Demand mode.",
                    ctx.name, ctx.account_id
                ),
            )
            .into());
        }
        let rows = sqlx::query(
            "SELECT shard_ordinal, hash_key_start, hash_key_end, parent_ordinal, adjacent_parent_ordinal, \
             created_at_ms, closed_at_ms, next_sequence FROM shards WHERE stream_id = $1 ORDER BY shard_ordinal",
        )
        .bind(stream_id)
        .fetch_all(&mut *tx)
        .await?;
        let shards = rows
            .iter()
            .map(shard_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_ordinal = shards.iter().map(|s| s.ordinal + 1).max().unwrap_or(0);
        let open: Vec<OpenShard> = shards
            .iter()
            .filter(|s| s.is_open())
            .map(|s| OpenShard {
                ordinal: s.ordinal,
                range: s.hash_key_range,
            })
            .collect();
        let open_before = open.len() as i64;
        let plan = match change {
            Reshard::Split {
                shard,
                new_starting_key,
            } => {
                closed_shard_check(&shards, shard, ctx)?;
                reshard::split(&open, next_ordinal, shard, new_starting_key)
            }
            Reshard::Merge { shard, adjacent } => {
                closed_shard_check(&shards, shard, ctx)?;
                closed_shard_check(&shards, adjacent, ctx)?;
                reshard::merge(&open, next_ordinal, shard, adjacent)
            }
            Reshard::Uniform { target } => {
                let target = i64::from(target);
                let refuse = |why: String| -> CatalogError {
                    Refusal::new(RefusalKind::OverLimit, why).into()
                };
                if target > 2 * open_before {
                    return Err(refuse(format!(
                        "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: {open_before} Target shard count: {target}"
                    )));
                }
                if 2 * target < open_before {
                    return Err(refuse(format!(
                        "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: {open_before} Target shard count: {target}"
                    )));
                }
                if target > limits::STREAM_SHARDS_MAX {
                    return Err(refuse(format!(
                        "UpdateShardCount cannot scale up to more than {} shards in a stream. Target shard count: {target}",
                        limits::STREAM_SHARDS_MAX
                    )));
                }
                // Kinesis's rolling limit on UpdateShardCount calls; the stream's row
                // is held, so two calls cannot both pass it.
                let day_ago = ctx.now_ms - 24 * 3_600_000;
                sqlx::query("DELETE FROM shard_count_updates WHERE stream_id = $1 AND at_ms <= $2")
                    .bind(stream_id)
                    .bind(day_ago)
                    .execute(&mut *tx)
                    .await?;
                let recent: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM shard_count_updates WHERE stream_id = $1",
                )
                .bind(stream_id)
                .fetch_one(&mut *tx)
                .await?;
                if recent >= limits::UPDATE_SHARD_COUNT_PER_DAY {
                    return Err(refuse(format!(
                        "Exceeded the limit of {} UpdateShardCount calls in a rolling 24 hours for stream {} under account {}.",
                        limits::UPDATE_SHARD_COUNT_PER_DAY,
                        ctx.name,
                        ctx.account_id
                    )));
                }
                sqlx::query("INSERT INTO shard_count_updates (stream_id, at_ms) VALUES ($1, $2)")
                    .bind(stream_id)
                    .bind(ctx.now_ms)
                    .execute(&mut *tx)
                    .await?;
                Ok(reshard::uniform(&open, next_ordinal, target as u32))
            }
        }
        .map_err(|e| reshard_refusal(e, ctx))?;
        let change_in_open = plan.open_shard_change();
        // INVARIANT: as in create_stream, the limit check and the count are one statement.
        let counted = sqlx::query(
            "UPDATE accounts SET open_shard_count = open_shard_count + $2 \
             WHERE account_id = $1 AND ($2 <= 0 OR open_shard_count + $2 <= $3) RETURNING open_shard_count",
        )
        .bind(ctx.account_id)
        .bind(change_in_open)
        .bind(ctx.account_shards_max)
        .fetch_optional(&mut *tx)
        .await?;
        if counted.is_none() {
            let open: i64 =
                sqlx::query_scalar("SELECT open_shard_count FROM accounts WHERE account_id = $1")
                    .bind(ctx.account_id)
                    .fetch_one(&mut *tx)
                    .await?;
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                protocol::ApiError::shard_limit_text(
                    ctx.account_id,
                    ctx.region,
                    open,
                    ctx.account_shards_max,
                    change_in_open,
                ),
            )
            .into());
        }
        // INVARIANT: shards are closed in ordinal order, the order in which the commit
        // path takes their row locks, so the two cannot deadlock on Postgres.
        let mut closing = plan.close.clone();
        closing.sort_unstable();
        for &ordinal in &closing {
            let closed = sqlx::query(
                "UPDATE shards SET closed_at_ms = $3 \
                 WHERE stream_id = $1 AND shard_ordinal = $2 AND closed_at_ms IS NULL",
            )
            .bind(stream_id)
            .bind(ordinal as i64)
            .bind(ctx.now_ms)
            .execute(&mut *tx)
            .await?;
            if closed.rows_affected() != 1 {
                return Err(CatalogError::Corrupt {
                    what: format!("shard {ordinal} of stream {stream_id} closed twice"),
                });
            }
        }
        for made in &plan.open {
            sqlx::query(
                "INSERT INTO shards (stream_id, shard_ordinal, hash_key_start, hash_key_end, \
                 parent_ordinal, adjacent_parent_ordinal, created_at_ms, closed_at_ms, next_sequence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)",
            )
            .bind(stream_id)
            .bind(made.ordinal as i64)
            .bind(made.range.starting.0.to_string())
            .bind(made.range.ending.0.to_string())
            .bind(made.parent as i64)
            .bind(made.adjacent_parent.map(|a| a as i64))
            .bind(ctx.now_ms)
            .bind(made.passing.then_some(ctx.now_ms))
            .execute(&mut *tx)
            .await?;
        }
        // Collected first: an iterator borrowing the plan across the awaits below would
        // make this future not Send.
        let closed: Vec<i64> = plan.close.iter().map(|&o| o as i64).collect();
        let opened: Vec<i64> = plan
            .open
            .iter()
            .filter(|s| !s.passing)
            .map(|s| s.ordinal as i64)
            .collect();
        Self::meter_shards_closed(&mut tx, stream_id, closed, ctx.now_ms).await?;
        Self::meter_shards_opened(
            &mut tx,
            ctx.account_id,
            ctx.name,
            stream_id,
            opened,
            ctx.now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(Resharded {
            open_before,
            open_after: open_before + change_in_open,
        })
    }
}

/// Why a stream that is not ACTIVE cannot change: ResourceInUse in its state, or not
/// found (also while DELETING).
async fn not_active(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account_id: &str,
    name: &str,
) -> CatalogError {
    let current: Result<Option<String>, sqlx::Error> =
        sqlx::query_scalar("SELECT status FROM streams WHERE account_id = $1 AND stream_name = $2")
            .bind(account_id)
            .bind(name)
            .fetch_optional(&mut **tx)
            .await;
    match current {
        Ok(Some(state)) if state != "DELETING" => Refusal::new(
            RefusalKind::InUse,
            format!(
                "Stream {name} under account {account_id} not ACTIVE, instead in state {state}"
            ),
        )
        .into(),
        Ok(_) => Refusal::stream_not_found(name, account_id).into(),
        Err(e) => e.into(),
    }
}

/// A shard named by SplitShard or MergeShards that exists but is closed.
fn closed_shard_check(
    shards: &[Shard],
    ordinal: u64,
    ctx: &ReshardContext<'_>,
) -> Result<(), CatalogError> {
    match shards.iter().find(|s| s.ordinal == ordinal) {
        Some(shard) if !shard.is_open() => Err(Refusal::bad_argument(format!(
            "Shard {} in stream {} under account {} has already been merged or split, and thus is not eligible for merging or splitting.",
            shard.shard_id(),
            ctx.name,
            ctx.account_id
        ))
        .into()),
        Some(_) => Ok(()),
        None => Err(Refusal::new(
            RefusalKind::Missing,
            format!(
                "Could not find shard {} in stream {} under account {}.",
                shard_id(ordinal),
                ctx.name,
                ctx.account_id
            ),
        )
        .into()),
    }
}

impl Catalog {
    /// UpdateStreamMode: an ACTIVE stream takes `mode` (within the account's on-demand
    /// stream limit) and is UPDATING until `updating_until_ms`, when given; the meter
    /// follows the mode from `now_ms`.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_stream_mode(
        &self,
        account_id: &str,
        name: &str,
        mode: StreamMode,
        region: &str,
        on_demand_streams_max: i64,
        updating_until_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        let status = if updating_until_ms.is_some() {
            StreamStatus::Updating
        } else {
            StreamStatus::Active
        };
        // The write statement first (SQLite's write lock; the account's row on Postgres
        // is not needed: the count below runs under the stream's new mode already).
        let changed = sqlx::query(
            "UPDATE streams SET stream_mode = $3, status = $4, status_until_ms = $5 \
             WHERE account_id = $1 AND stream_name = $2 AND status = 'ACTIVE' RETURNING stream_id",
        )
        .bind(account_id)
        .bind(name)
        .bind(mode.as_str())
        .bind(status.as_str())
        .bind(updating_until_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(changed) = changed else {
            return Err(not_active(&mut tx, account_id, name).await);
        };
        let stream_id: i64 = changed.try_get("stream_id")?;
        // The bill follows the mode: stream-hours while ON_DEMAND, shard-hours else.
        Self::meter_on_demand(
            &mut tx,
            account_id,
            name,
            stream_id,
            mode == StreamMode::OnDemand,
            now_ms,
        )
        .await?;
        if mode == StreamMode::OnDemand {
            // Serialises with create_stream's count on Postgres too.
            sqlx::query("UPDATE accounts SET on_demand_stream_count = on_demand_stream_count WHERE account_id = $1")
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
            let on_demand: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM streams WHERE account_id = $1 AND stream_mode = 'ON_DEMAND'",
            )
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
            if on_demand > on_demand_streams_max {
                return Err(Refusal::new(
                    RefusalKind::OverLimit,
                    format!(
                        "This request would exceed the on-demand stream count limit for the account {account_id} in {region}. Current limit of on-demand streams is {on_demand_streams_max}."
                    ),
                )
                .into());
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
