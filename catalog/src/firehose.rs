//! Firehose delivery streams (migration 0021): their configuration, versioned by
//! UpdateDestination; the stream each reads (a DirectPut delivery stream's own buffer,
//! owned by Firehose and invisible to Kinesis's APIs, or a tenant's source stream);
//! per shard, the position up to which records were delivered; the lease that lets one
//! process at a time deliver; and the connections destinations name.
//!
//! A delivery is two transactions: `begin_delivery` records the buffer (its object
//! name and where it ends in each shard), `finish_delivery` moves the positions past
//! it. A process that dies between them leaves the buffer recorded, and the next one
//! delivers exactly those records under the same name: no acknowledged record is
//! skipped, and no buffer becomes two objects. Both are fenced by the lease.

use sqlx::Row;

use crate::refusal::{Refusal, RefusalKind};
use crate::streams::{to_i64, to_u64};
use crate::{Catalog, CatalogError};

/// Delivery streams an account may have (AWS's default quota per Region).
pub const DELIVERY_STREAMS_PER_ACCOUNT_MAX: i64 = 5_000;
/// Tags one delivery stream may carry.
pub const TAGS_PER_DELIVERY_STREAM_MAX: usize = 50;
/// Connections an account may register.
pub const CONNECTIONS_PER_ACCOUNT_MAX: i64 = 1_000;
/// The owner a delivery stream's buffer stream carries.
pub const BUFFER_OWNER: &str = "firehose";
/// How long a DirectPut buffer keeps records (Firehose keeps undelivered data 24 h).
pub const BUFFER_RETENTION_HOURS: i64 = 24;

/// The name of a delivery stream's buffer stream. `/` is outside Kinesis's stream-name
/// pattern, so no Kinesis request can name it.
pub fn buffer_stream_name(delivery_stream: &str) -> String {
    format!("firehose/{delivery_stream}")
}

/// Where a new delivery stream's records come from.
#[derive(Debug, Clone, Copy)]
pub enum NewSource {
    /// DirectPut: a buffer stream of this many shards is made with it.
    Buffer { shard_count: u32 },
    /// KinesisStreamAsSource: this stream, read from its shards' tips on.
    Stream { stream_id: i64 },
}

#[derive(Debug, Clone)]
pub struct NewDeliveryStream<'a> {
    pub account_id: &'a str,
    pub name: &'a str,
    /// `DirectPut` or `KinesisStreamAsSource`.
    pub stream_type: &'a str,
    pub source: NewSource,
    pub config: &'a str,
    pub tags: &'a [(String, String)],
    /// Server-side encryption at creation: (key type, key ARN).
    pub encryption: Option<(&'a str, Option<&'a str>)>,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStream {
    pub id: i64,
    pub account_id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub stream_type: String,
    pub stream_id: i64,
    pub version_id: i64,
    pub config: String,
    pub encryption_status: String,
    pub encryption_key_type: Option<String>,
    pub encryption_key_arn: Option<String>,
    pub pending_object: Option<String>,
}

/// Where delivery stands in one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPosition {
    pub shard_ordinal: u64,
    /// The counter of the shard's next record to deliver.
    pub next_counter: u64,
    /// Where the recorded buffer's records of this shard end (exclusive), while one is.
    pub pending_until: Option<u64>,
}

/// A buffer's records of one shard: counters `from..until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferRange {
    pub shard_ordinal: u64,
    pub from: u64,
    pub until: u64,
}

/// A registered connection: its settings (no secrets) and its sealed secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub name: String,
    pub settings: String,
    pub secrets_sealed: Vec<u8>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

const COLUMNS: &str = "delivery_stream_id, account_id, name, created_at_ms, updated_at_ms, \
    stream_type, stream_id, version_id, config, encryption_status, encryption_key_type, \
    encryption_key_arn, pending_object";

fn row_to_delivery_stream(row: &sqlx::any::AnyRow) -> Result<DeliveryStream, CatalogError> {
    Ok(DeliveryStream {
        id: row.try_get("delivery_stream_id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        stream_type: row.try_get("stream_type")?,
        stream_id: row.try_get("stream_id")?,
        version_id: row.try_get("version_id")?,
        config: row.try_get("config")?,
        encryption_status: row.try_get("encryption_status")?,
        encryption_key_type: row.try_get("encryption_key_type")?,
        encryption_key_arn: row.try_get("encryption_key_arn")?,
        pending_object: row.try_get("pending_object")?,
    })
}

fn not_found(name: &str, account_id: &str) -> CatalogError {
    Refusal::new(
        RefusalKind::Missing,
        format!("Firehose {name} under account {account_id} not found."),
    )
    .into()
}

impl Catalog {
    /// Makes a delivery stream (and, for DirectPut, its buffer stream) in one
    /// transaction.
    pub async fn create_delivery_stream(
        &self,
        new: &NewDeliveryStream<'_>,
    ) -> Result<DeliveryStream, CatalogError> {
        if new.tags.len() > TAGS_PER_DELIVERY_STREAM_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A delivery stream carries at most {TAGS_PER_DELIVERY_STREAM_MAX} tags."),
            )
            .into());
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO accounts (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING",
        )
        .bind(new.account_id)
        .execute(&mut *tx)
        .await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM delivery_streams WHERE account_id = $1")
                .bind(new.account_id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= DELIVERY_STREAMS_PER_ACCOUNT_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "You have already consumed your firehose quota of {DELIVERY_STREAMS_PER_ACCOUNT_MAX} hoses. Firehose names: {}",
                    new.name
                ),
            )
            .into());
        }
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT delivery_stream_id FROM delivery_streams WHERE account_id = $1 AND name = $2",
        )
        .bind(new.account_id)
        .bind(new.name)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(Refusal::new(
                RefusalKind::InUse,
                format!(
                    "Firehose {} under accountId {} already exists",
                    new.name, new.account_id
                ),
            )
            .into());
        }
        let stream_id = match new.source {
            NewSource::Buffer { shard_count } => {
                // A buffer left by a delivery stream deleted mid-way goes first.
                sqlx::query(
                    "DELETE FROM streams WHERE account_id = $1 AND stream_name = $2 AND owner = $3",
                )
                .bind(new.account_id)
                .bind(buffer_stream_name(new.name))
                .bind(BUFFER_OWNER)
                .execute(&mut *tx)
                .await?;
                let stream_id: i64 = sqlx::query_scalar(
                    "INSERT INTO streams (account_id, stream_name, status, stream_mode, \
                     retention_hours, created_at_ms, owner) \
                     VALUES ($1, $2, 'ACTIVE', 'PROVISIONED', $3, $4, $5) RETURNING stream_id",
                )
                .bind(new.account_id)
                .bind(buffer_stream_name(new.name))
                .bind(BUFFER_RETENTION_HOURS)
                .bind(new.now_ms)
                .bind(BUFFER_OWNER)
                .fetch_one(&mut *tx)
                .await?;
                for (ordinal, range) in protocol::hash::HashKeyRange::split_evenly(shard_count)
                    .into_iter()
                    .enumerate()
                {
                    sqlx::query(
                        "INSERT INTO shards (stream_id, shard_ordinal, hash_key_start, \
                         hash_key_end, created_at_ms, next_sequence) VALUES ($1, $2, $3, $4, $5, 1)",
                    )
                    .bind(stream_id)
                    .bind(ordinal as i64)
                    .bind(range.starting.0.to_string())
                    .bind(range.ending.0.to_string())
                    .bind(new.now_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                stream_id
            }
            NewSource::Stream { stream_id } => stream_id,
        };
        let id = crate::consumers::random_id()?;
        let (status, key_type, key_arn) = match new.encryption {
            Some((key_type, arn)) => ("ENABLED", Some(key_type), arn),
            None => ("DISABLED", None, None),
        };
        sqlx::query(
            "INSERT INTO delivery_streams (delivery_stream_id, account_id, name, created_at_ms, \
             updated_at_ms, stream_type, stream_id, version_id, config, encryption_status, \
             encryption_key_type, encryption_key_arn, lease_until_ms) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, 1, $7, $8, $9, $10, 0)",
        )
        .bind(id)
        .bind(new.account_id)
        .bind(new.name)
        .bind(new.now_ms)
        .bind(new.stream_type)
        .bind(stream_id)
        .bind(new.config)
        .bind(status)
        .bind(key_type)
        .bind(key_arn)
        .execute(&mut *tx)
        .await?;
        if let NewSource::Stream { stream_id } = new.source {
            // Firehose reads a source stream from LATEST: what is there now is not its.
            sqlx::query(
                "INSERT INTO delivery_positions (delivery_stream_id, shard_ordinal, next_counter) \
                 SELECT $1, shard_ordinal, next_sequence FROM shards WHERE stream_id = $2",
            )
            .bind(id)
            .bind(stream_id)
            .execute(&mut *tx)
            .await?;
        }
        for (key, value) in new.tags {
            sqlx::query(
                "INSERT INTO delivery_stream_tags (delivery_stream_id, tag_key, tag_value) \
                 VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.delivery_stream(new.account_id, new.name).await
    }

    pub async fn delivery_stream(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<DeliveryStream, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM delivery_streams WHERE account_id = $1 AND name = $2"
        )))
        .bind(account_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => row_to_delivery_stream(&row),
            None => Err(not_found(name, account_id)),
        }
    }

    pub async fn delivery_stream_by_id(
        &self,
        id: i64,
    ) -> Result<Option<DeliveryStream>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM delivery_streams WHERE delivery_stream_id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(row_to_delivery_stream).transpose()
    }

    /// Names of an account's delivery streams in order, after `after`, of one type if
    /// given; up to `limit` and whether more exist.
    pub async fn list_delivery_streams(
        &self,
        account_id: &str,
        stream_type: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<String>, bool), CatalogError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM delivery_streams WHERE account_id = $1 AND name > $2 \
             AND ($3 = '' OR stream_type = $3) AND name NOT LIKE 'channel/%' \
             ORDER BY name LIMIT $4",
        )
        .bind(account_id)
        .bind(after.unwrap_or(""))
        .bind(stream_type.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let more = names.len() as i64 > limit;
        Ok((names.into_iter().take(limit as usize).collect(), more))
    }

    /// An account's Kinesis channels (delivery streams named `channel/<name>`, which
    /// Firehose's API cannot name), after `after`, at most `limit`.
    pub async fn list_channels(
        &self,
        account_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryStream>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM delivery_streams WHERE account_id = $1 \
             AND name LIKE 'channel/%' AND name > $2 ORDER BY name LIMIT $3"
        )))
        .bind(account_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_delivery_stream).collect()
    }

    /// Deletes a delivery stream, its positions and tags, and its buffer stream.
    pub async fn delete_delivery_stream(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        let gone: Option<String> = sqlx::query_scalar(
            "DELETE FROM delivery_streams WHERE account_id = $1 AND name = $2 RETURNING stream_type",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if gone.is_none() {
            return Err(not_found(name, account_id));
        }
        sqlx::query(
            "DELETE FROM streams WHERE account_id = $1 AND stream_name = $2 AND owner = $3",
        )
        .bind(account_id)
        .bind(buffer_stream_name(name))
        .bind(BUFFER_OWNER)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the configuration if its version is still `expected_version`; the
    /// version moves on by one.
    pub async fn update_delivery_config(
        &self,
        account_id: &str,
        name: &str,
        expected_version: i64,
        config: &str,
        now_ms: i64,
    ) -> Result<i64, CatalogError> {
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE delivery_streams SET config = $4, version_id = version_id + 1, updated_at_ms = $5 \
             WHERE account_id = $1 AND name = $2 AND version_id = $3 RETURNING version_id",
        )
        .bind(account_id)
        .bind(name)
        .bind(expected_version)
        .bind(config)
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        match version {
            Some(v) => Ok(v),
            None => {
                let current = self.delivery_stream(account_id, name).await?;
                Err(Refusal::new(
                    RefusalKind::Conflict,
                    format!(
                        "Cannot update firehose: {name} since the current version id: {} and specified version id: {expected_version} do not match",
                        current.version_id
                    ),
                )
                .into())
            }
        }
    }

    /// Turns server-side encryption on (with its key) or off.
    pub async fn set_delivery_encryption(
        &self,
        account_id: &str,
        name: &str,
        key: Option<(&str, Option<&str>)>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let (status, key_type, key_arn) = match key {
            Some((key_type, arn)) => ("ENABLED", Some(key_type), arn),
            None => ("DISABLED", None, None),
        };
        let done = sqlx::query(
            "UPDATE delivery_streams SET encryption_status = $3, encryption_key_type = $4, \
             encryption_key_arn = $5, updated_at_ms = $6 WHERE account_id = $1 AND name = $2",
        )
        .bind(account_id)
        .bind(name)
        .bind(status)
        .bind(key_type)
        .bind(key_arn)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(not_found(name, account_id));
        }
        Ok(())
    }

    pub async fn delivery_stream_tags(
        &self,
        id: i64,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT tag_key, tag_value FROM delivery_stream_tags WHERE delivery_stream_id = $1 \
             ORDER BY tag_key",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tag_key")?, r.try_get("tag_value")?)))
            .collect()
    }

    /// Adds or overwrites tags, within the limit.
    pub async fn tag_delivery_stream(
        &self,
        id: i64,
        tags: &[(String, String)],
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        for (key, value) in tags {
            sqlx::query(
                "INSERT INTO delivery_stream_tags (delivery_stream_id, tag_key, tag_value) \
                 VALUES ($1, $2, $3) ON CONFLICT (delivery_stream_id, tag_key) \
                 DO UPDATE SET tag_value = excluded.tag_value",
            )
            .bind(id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM delivery_stream_tags WHERE delivery_stream_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if count as usize > TAGS_PER_DELIVERY_STREAM_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "The number of tags would exceed {TAGS_PER_DELIVERY_STREAM_MAX} for this delivery stream."
                ),
            )
            .into());
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn untag_delivery_stream(
        &self,
        id: i64,
        keys: &[String],
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        for key in keys {
            sqlx::query(
                "DELETE FROM delivery_stream_tags WHERE delivery_stream_id = $1 AND tag_key = $2",
            )
            .bind(id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every delivery stream's id (the deliverers' work list).
    pub async fn delivery_stream_ids(&self) -> Result<Vec<i64>, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT delivery_stream_id FROM delivery_streams ORDER BY 1")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Takes or renews the lease to deliver `id` until `now_ms + lease_ms`, if no other
    /// process holds it; whether this one does now.
    pub async fn claim_delivery(
        &self,
        id: i64,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, CatalogError> {
        let done = sqlx::query(
            "UPDATE delivery_streams SET lease_owner = $2, lease_until_ms = $3 \
             WHERE delivery_stream_id = $1 AND (lease_owner = $2 OR lease_owner IS NULL \
             OR lease_until_ms < $4)",
        )
        .bind(id)
        .bind(owner)
        .bind(now_ms + lease_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up (a process stopping), so another takes over at once.
    pub async fn release_delivery(&self, id: i64, owner: &str) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE delivery_streams SET lease_owner = NULL, lease_until_ms = 0 \
             WHERE delivery_stream_id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn delivery_positions(&self, id: i64) -> Result<Vec<DeliveryPosition>, CatalogError> {
        let rows = sqlx::query(
            "SELECT shard_ordinal, next_counter, pending_until FROM delivery_positions \
             WHERE delivery_stream_id = $1 ORDER BY shard_ordinal",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let pending: Option<i64> = r.try_get("pending_until")?;
                Ok(DeliveryPosition {
                    shard_ordinal: to_u64(r.try_get("shard_ordinal")?, "shard_ordinal")?,
                    next_counter: to_u64(r.try_get("next_counter")?, "next_counter")?,
                    pending_until: pending.map(|p| to_u64(p, "pending_until")).transpose()?,
                })
            })
            .collect()
    }

    /// Records a buffer about to be delivered as `object`, if this process still holds
    /// the lease and no other buffer is recorded; whether it did.
    pub async fn begin_delivery(
        &self,
        id: i64,
        owner: &str,
        object: &str,
        ranges: &[BufferRange],
    ) -> Result<bool, CatalogError> {
        let mut tx = self.begin_write().await?;
        let held = sqlx::query(
            "UPDATE delivery_streams SET pending_object = $3 WHERE delivery_stream_id = $1 \
             AND lease_owner = $2 AND pending_object IS NULL",
        )
        .bind(id)
        .bind(owner)
        .bind(object)
        .execute(&mut *tx)
        .await?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
        for range in ranges {
            // INVARIANT: a buffer starts where the last delivered one ended.
            let done = sqlx::query(
                "UPDATE delivery_positions SET pending_until = $4 WHERE delivery_stream_id = $1 \
                 AND shard_ordinal = $2 AND next_counter = $3",
            )
            .bind(id)
            .bind(to_i64(range.shard_ordinal))
            .bind(to_i64(range.from))
            .bind(to_i64(range.until))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                continue;
            }
            let inserted = sqlx::query(
                "INSERT INTO delivery_positions (delivery_stream_id, shard_ordinal, next_counter, \
                 pending_until) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (delivery_stream_id, shard_ordinal) DO NOTHING",
            )
            .bind(id)
            .bind(to_i64(range.shard_ordinal))
            .bind(to_i64(range.from))
            .bind(to_i64(range.until))
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() != 1 {
                return Err(CatalogError::Corrupt {
                    what: format!(
                        "delivery stream {id}: a buffer of shard {} starts at {}, not where delivery stands",
                        range.shard_ordinal, range.from
                    ),
                });
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Moves every position past the recorded buffer and forgets it, if this process
    /// still holds the lease; whether it did.
    pub async fn finish_delivery(&self, id: i64, owner: &str) -> Result<bool, CatalogError> {
        let mut tx = self.begin_write().await?;
        let held = sqlx::query(
            "UPDATE delivery_streams SET pending_object = NULL WHERE delivery_stream_id = $1 \
             AND lease_owner = $2 AND pending_object IS NOT NULL",
        )
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE delivery_positions SET next_counter = pending_until, pending_until = NULL \
             WHERE delivery_stream_id = $1 AND pending_until IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Registers or replaces a connection.
    pub async fn put_connection(
        &self,
        account_id: &str,
        name: &str,
        settings: &str,
        secrets_sealed: &[u8],
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM connections WHERE account_id = $1 AND name <> $2",
        )
        .bind(account_id)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if count >= CONNECTIONS_PER_ACCOUNT_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A tenant registers at most {CONNECTIONS_PER_ACCOUNT_MAX} connections."),
            )
            .into());
        }
        sqlx::query(
            "INSERT INTO connections (account_id, name, settings, secrets_sealed, created_at_ms, \
             updated_at_ms) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (account_id, name) \
             DO UPDATE SET settings = excluded.settings, secrets_sealed = excluded.secrets_sealed, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .bind(account_id)
        .bind(name)
        .bind(settings)
        .bind(secrets_sealed)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn connection(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Connection>, CatalogError> {
        let row = sqlx::query(
            "SELECT name, settings, secrets_sealed, created_at_ms, updated_at_ms FROM connections \
             WHERE account_id = $1 AND name = $2",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Connection {
                name: r.try_get("name")?,
                settings: r.try_get("settings")?,
                secrets_sealed: r.try_get("secrets_sealed")?,
                created_at_ms: r.try_get("created_at_ms")?,
                updated_at_ms: r.try_get("updated_at_ms")?,
            })
        })
        .transpose()
    }

    /// An account's connections in name order (sealed secrets included; callers show
    /// only the settings).
    pub async fn list_connections(
        &self,
        account_id: &str,
    ) -> Result<Vec<Connection>, CatalogError> {
        let rows = sqlx::query(
            "SELECT name, settings, secrets_sealed, created_at_ms, updated_at_ms FROM connections \
             WHERE account_id = $1 ORDER BY name",
        )
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Connection {
                    name: r.try_get("name")?,
                    settings: r.try_get("settings")?,
                    secrets_sealed: r.try_get("secrets_sealed")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                    updated_at_ms: r.try_get("updated_at_ms")?,
                })
            })
            .collect()
    }

    pub async fn delete_connection(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<(), CatalogError> {
        let done = sqlx::query("DELETE FROM connections WHERE account_id = $1 AND name = $2")
            .bind(account_id)
            .bind(name)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(Refusal::new(
                RefusalKind::Missing,
                format!("Connection {name} not found."),
            )
            .into());
        }
        Ok(())
    }
}
