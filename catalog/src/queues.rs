//! Kinesis queues (migration 0020): a queue on one or more ON_DEMAND streams hands
//! each record out to one receiver at a time, with a visibility timeout, and keeps it
//! until it is acknowledged; a record received `max_receive_count` times without an
//! acknowledgement becomes a dead-letter record (when dead-letter handling is on).
//! Per shard a cursor says what was handed out; each record handed out and not yet
//! acknowledged has a row. A receive runs in one transaction that first takes the
//! queue's row, so two receivers never get the same delivery.

use sqlx::Row;

use crate::refusal::{Refusal, RefusalKind};
use crate::streams::{to_i64, to_u64};
use crate::{Catalog, CatalogError};

/// Queues an account may have.
pub const QUEUES_PER_ACCOUNT_MAX: i64 = 100;
/// Streams one queue may read.
pub const STREAMS_PER_QUEUE_MAX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStart {
    TrimHorizon,
    Latest,
    AtTimestamp(i64),
}

impl QueueStart {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueStart::TrimHorizon => "TRIM_HORIZON",
            QueueStart::Latest => "LATEST",
            QueueStart::AtTimestamp(_) => "AT_TIMESTAMP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub visibility_timeout_s: i64,
    pub dead_letter: bool,
    pub max_receive_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStream {
    pub stream_id: i64,
    pub stream_name: String,
    pub stream_created_at_ms: i64,
    pub start: QueueStart,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub id: i64,
    pub account_id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub settings: QueueSettings,
    pub streams: Vec<QueueStream>,
}

/// One record handed out by a receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub stream_id: i64,
    pub shard_ordinal: u64,
    pub counter: u64,
    /// How many times it has been received (this time included).
    pub receive_count: i64,
    pub first_receive_ms: i64,
    /// Records that arrived before this are past the stream's retention.
    pub retained_since_ms: i64,
}

/// Names one delivery: a receipt handle's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    pub stream_id: i64,
    pub shard_ordinal: u64,
    pub counter: u64,
    pub receive_count: i64,
}

fn queue_not_found(name: &str, account: &str) -> CatalogError {
    Refusal::new(
        RefusalKind::Missing,
        format!("Queue {name} under account {account} not found."),
    )
    .into()
}

/// What a change does to the deliveries its handles name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleChange {
    /// Acknowledge: the queue forgets the record.
    Acknowledge,
    /// Visible again after this many milliseconds.
    Visibility(i64),
    /// A dead-letter record goes back to the queue, its receive count reset.
    Restore,
}

impl Catalog {
    /// Makes a queue on the caller's ON_DEMAND streams.
    pub async fn create_queue(
        &self,
        account_id: &str,
        name: &str,
        streams: &[(String, QueueStart)],
        settings: QueueSettings,
        tags: &[(String, String)],
        now_ms: i64,
    ) -> Result<Queue, CatalogError> {
        if streams.len() > STREAMS_PER_QUEUE_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("A queue reads at most {STREAMS_PER_QUEUE_MAX} streams."),
            )
            .into());
        }
        let mut tx = self.begin_write().await?;
        let id = crate::consumers::random_id()?;
        let inserted = sqlx::query(
            "INSERT INTO kinesis_queues (queue_id, account_id, queue_name, created_at_ms, \
             visibility_timeout_s, dead_letter, max_receive_count) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (account_id, queue_name) DO NOTHING",
        )
        .bind(id)
        .bind(account_id)
        .bind(name)
        .bind(now_ms)
        .bind(settings.visibility_timeout_s)
        .bind(i64::from(settings.dead_letter))
        .bind(settings.max_receive_count)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(Refusal::new(
                RefusalKind::InUse,
                format!("Queue {name} under account {account_id} already exists."),
            )
            .into());
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM kinesis_queues WHERE account_id = $1")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        if count > QUEUES_PER_ACCOUNT_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "Queue limit of {QUEUES_PER_ACCOUNT_MAX} for account {account_id} has been reached."
                ),
            )
            .into());
        }
        let mut queue_streams = Vec::new();
        for (stream_name, start) in streams {
            let row = sqlx::query(
                "SELECT stream_id, stream_mode, created_at_ms FROM streams \
                 WHERE account_id = $1 AND stream_name = $2 AND status <> 'DELETING'",
            )
            .bind(account_id)
            .bind(stream_name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Refusal::stream_not_found(stream_name, account_id))?;
            let stream_id: i64 = row.try_get("stream_id")?;
            if row.try_get::<String, _>("stream_mode")? != "ON_DEMAND" {
                return Err(Refusal::new(
                    RefusalKind::BadArgument,
                    format!(
                        "Stream {stream_name} under account {account_id} is in PROVISIONED mode: queues are supported only on data streams in on-demand capacity mode."
                    ),
                )
                .into());
            }
            if queue_streams
                .iter()
                .any(|s: &QueueStream| s.stream_id == stream_id)
            {
                return Err(Refusal::new(
                    RefusalKind::BadArgument,
                    format!("Stream {stream_name} is named twice."),
                )
                .into());
            }
            let consumers: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM stream_consumers WHERE stream_id = $1) + \
                 (SELECT COUNT(*) FROM kinesis_queue_streams WHERE stream_id = $1)",
            )
            .bind(stream_id)
            .fetch_one(&mut *tx)
            .await?;
            if consumers >= protocol::limits::CONSUMERS_PER_STREAM_MAX {
                return Err(Refusal::new(
                    RefusalKind::OverLimit,
                    format!(
                        "Consumer limit of {} for stream {stream_name} under account {account_id} has been reached (queues count as consumers).",
                        protocol::limits::CONSUMERS_PER_STREAM_MAX
                    ),
                )
                .into());
            }
            let at = match start {
                QueueStart::AtTimestamp(at) => Some(*at),
                _ => None,
            };
            sqlx::query(
                "INSERT INTO kinesis_queue_streams (queue_id, stream_id, start_type, start_timestamp_ms) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(stream_id)
            .bind(start.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?;
            // Where each shard's delivery begins; shards made later start at their
            // first record.
            sqlx::query(
                "INSERT INTO kinesis_queue_cursors (queue_id, stream_id, shard_ordinal, next_counter) \
                 SELECT $1, h.stream_id, h.shard_ordinal, CASE $2 \
                   WHEN 'LATEST' THEN h.next_sequence \
                   WHEN 'AT_TIMESTAMP' THEN COALESCE((SELECT MIN(c.first_sequence) FROM chunks c \
                     WHERE c.stream_id = h.stream_id AND c.shard_ordinal = h.shard_ordinal \
                     AND c.last_arrival_ms >= $3), h.next_sequence) \
                   ELSE 1 END \
                 FROM shards h WHERE h.stream_id = $4",
            )
            .bind(id)
            .bind(start.as_str())
            .bind(at.unwrap_or(0))
            .bind(stream_id)
            .execute(&mut *tx)
            .await?;
            queue_streams.push(QueueStream {
                stream_id,
                stream_name: stream_name.clone(),
                stream_created_at_ms: row.try_get("created_at_ms")?,
                start: *start,
            });
        }
        for (key, value) in tags {
            sqlx::query(
                "INSERT INTO kinesis_queue_tags (queue_id, tag_key, tag_value) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Queue {
            id,
            account_id: account_id.to_string(),
            name: name.to_string(),
            created_at_ms: now_ms,
            settings,
            streams: queue_streams,
        })
    }

    /// The caller's queue `name`.
    pub async fn find_queue(&self, account_id: &str, name: &str) -> Result<Queue, CatalogError> {
        let row = sqlx::query(
            "SELECT queue_id, created_at_ms, visibility_timeout_s, dead_letter, max_receive_count \
             FROM kinesis_queues WHERE account_id = $1 AND queue_name = $2",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| queue_not_found(name, account_id))?;
        let id: i64 = row.try_get("queue_id")?;
        let streams = self.queue_streams(id).await?;
        Ok(Queue {
            id,
            account_id: account_id.to_string(),
            name: name.to_string(),
            created_at_ms: row.try_get("created_at_ms")?,
            settings: QueueSettings {
                visibility_timeout_s: row.try_get("visibility_timeout_s")?,
                dead_letter: row.try_get::<i64, _>("dead_letter")? != 0,
                max_receive_count: row.try_get("max_receive_count")?,
            },
            streams,
        })
    }

    async fn queue_streams(&self, queue_id: i64) -> Result<Vec<QueueStream>, CatalogError> {
        let rows = sqlx::query(
            "SELECT q.stream_id, s.stream_name, s.created_at_ms, q.start_type, q.start_timestamp_ms \
             FROM kinesis_queue_streams q JOIN streams s ON s.stream_id = q.stream_id \
             WHERE q.queue_id = $1 ORDER BY s.stream_name",
        )
        .bind(queue_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let at: Option<i64> = r.try_get("start_timestamp_ms")?;
                let start = match (r.try_get::<String, _>("start_type")?.as_str(), at) {
                    ("LATEST", _) => QueueStart::Latest,
                    ("AT_TIMESTAMP", Some(at)) => QueueStart::AtTimestamp(at),
                    _ => QueueStart::TrimHorizon,
                };
                Ok(QueueStream {
                    stream_id: r.try_get("stream_id")?,
                    stream_name: r.try_get("stream_name")?,
                    stream_created_at_ms: r.try_get("created_at_ms")?,
                    start,
                })
            })
            .collect()
    }

    /// The caller's queues by name, from `after` (exclusive), at most `limit`.
    pub async fn list_queues(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Queue>, CatalogError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT queue_name FROM kinesis_queues WHERE account_id = $1 AND queue_name > $2 \
             ORDER BY queue_name LIMIT $3",
        )
        .bind(account_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.find_queue(account_id, &name).await {
                Ok(queue) => out.push(queue),
                Err(CatalogError::Refused(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Changes a queue's visibility timeout and dead-letter handling.
    pub async fn update_queue(
        &self,
        account_id: &str,
        name: &str,
        settings: QueueSettings,
    ) -> Result<(), CatalogError> {
        let changed = sqlx::query(
            "UPDATE kinesis_queues SET visibility_timeout_s = $1, dead_letter = $2, max_receive_count = $3 \
             WHERE account_id = $4 AND queue_name = $5",
        )
        .bind(settings.visibility_timeout_s)
        .bind(i64::from(settings.dead_letter))
        .bind(settings.max_receive_count)
        .bind(account_id)
        .bind(name)
        .execute(self.pool())
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(queue_not_found(name, account_id));
        }
        Ok(())
    }

    /// Deletes a queue with its cursors and deliveries.
    pub async fn delete_queue(&self, account_id: &str, name: &str) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "DELETE FROM kinesis_queues WHERE account_id = $1 AND queue_name = $2 RETURNING queue_id",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| queue_not_found(name, account_id))?;
        for table in [
            "kinesis_queue_records",
            "kinesis_queue_cursors",
            "kinesis_queue_streams",
            "kinesis_queue_tags",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE queue_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Hands out up to `limit` records, invisible to other receivers for `visibility_ms`:
    /// records visible again first (turning those received `max_receive_count` times
    /// into dead letters), then records not handed out before. With `dead`, the
    /// queue's dead-letter records instead.
    pub async fn receive_queue(
        &self,
        account_id: &str,
        name: &str,
        limit: i64,
        visibility_ms: Option<i64>,
        dead: bool,
        now_ms: i64,
    ) -> Result<Vec<Delivery>, CatalogError> {
        let mut tx = self.begin_write().await?;
        // The queue's row first: receives of one queue take turns.
        let row = sqlx::query(
            "UPDATE kinesis_queues SET queue_name = queue_name WHERE account_id = $1 AND queue_name = $2 \
             RETURNING queue_id, visibility_timeout_s, dead_letter, max_receive_count",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| queue_not_found(name, account_id))?;
        let id: i64 = row.try_get("queue_id")?;
        let visibility_ms =
            visibility_ms.unwrap_or(row.try_get::<i64, _>("visibility_timeout_s")? * 1000);
        let dead_letter = row.try_get::<i64, _>("dead_letter")? != 0;
        let max_receive_count: i64 = row.try_get("max_receive_count")?;
        let retention: Vec<(i64, i64)> = sqlx::query(
            "SELECT s.stream_id, s.retention_hours FROM kinesis_queue_streams q \
             JOIN streams s ON s.stream_id = q.stream_id WHERE q.queue_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("stream_id")?, r.try_get("retention_hours")?)))
        .collect::<Result<_, CatalogError>>()?;
        let retained_since = |stream_id: i64| {
            retention
                .iter()
                .find(|(s, _)| *s == stream_id)
                .map(|(_, hours)| now_ms - hours * 3_600_000)
                .unwrap_or(now_ms)
        };
        if !dead && dead_letter {
            sqlx::query(
                "UPDATE kinesis_queue_records SET dead = 1, visible_at_ms = $2 \
                 WHERE queue_id = $1 AND dead = 0 AND visible_at_ms <= $2 AND receive_count >= $3",
            )
            .bind(id)
            .bind(now_ms)
            .bind(max_receive_count)
            .execute(&mut *tx)
            .await?;
        }
        let mut out = Vec::new();
        for r in sqlx::query(
            "SELECT stream_id, shard_ordinal, counter, receive_count, first_receive_ms \
             FROM kinesis_queue_records WHERE queue_id = $1 AND dead = $2 AND visible_at_ms <= $3 \
             ORDER BY visible_at_ms, counter LIMIT $4",
        )
        .bind(id)
        .bind(i64::from(dead))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?
        {
            let stream_id: i64 = r.try_get("stream_id")?;
            out.push(Delivery {
                stream_id,
                shard_ordinal: to_u64(r.try_get("shard_ordinal")?, "shard_ordinal")?,
                counter: to_u64(r.try_get("counter")?, "counter")?,
                receive_count: r.try_get::<i64, _>("receive_count")? + i64::from(!dead),
                first_receive_ms: r.try_get("first_receive_ms")?,
                retained_since_ms: retained_since(stream_id),
            });
        }
        for d in &out {
            sqlx::query(
                "UPDATE kinesis_queue_records SET receive_count = $1, visible_at_ms = $2 \
                 WHERE queue_id = $3 AND stream_id = $4 AND shard_ordinal = $5 AND counter = $6",
            )
            .bind(d.receive_count)
            .bind(now_ms.saturating_add(visibility_ms))
            .bind(id)
            .bind(d.stream_id)
            .bind(to_i64(d.shard_ordinal))
            .bind(to_i64(d.counter))
            .execute(&mut *tx)
            .await?;
        }
        if !dead && (out.len() as i64) < limit {
            let shards = sqlx::query(
                "SELECT h.stream_id, h.shard_ordinal, h.next_sequence, c.next_counter \
                 FROM kinesis_queue_streams q JOIN shards h ON h.stream_id = q.stream_id \
                 LEFT JOIN kinesis_queue_cursors c ON c.queue_id = q.queue_id \
                 AND c.stream_id = h.stream_id AND c.shard_ordinal = h.shard_ordinal \
                 WHERE q.queue_id = $1 ORDER BY h.stream_id, h.shard_ordinal",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            let with_records: Vec<(i64, u64, u64, u64)> = shards
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get::<i64, _>("stream_id")?,
                        to_u64(r.try_get("shard_ordinal")?, "shard_ordinal")?,
                        to_u64(r.try_get("next_sequence")?, "next_sequence")?,
                        to_u64(
                            r.try_get::<Option<i64>, _>("next_counter")?.unwrap_or(1),
                            "next_counter",
                        )?,
                    ))
                })
                .collect::<Result<Vec<_>, CatalogError>>()?
                .into_iter()
                .filter(|(_, _, next, cursor)| cursor < next)
                .collect();
            // Start at a shard that changes with time, so no shard starves the others.
            let n = with_records.len();
            for i in 0..n {
                let (stream_id, ordinal, next, cursor) =
                    with_records[(i + now_ms.unsigned_abs() as usize) % n];
                let need = limit - out.len() as i64;
                if need <= 0 {
                    break;
                }
                let take = (next - cursor).min(need as u64);
                for counter in cursor..cursor + take {
                    sqlx::query(
                        "INSERT INTO kinesis_queue_records (queue_id, stream_id, shard_ordinal, counter, \
                         receive_count, first_receive_ms, visible_at_ms, dead) \
                         VALUES ($1, $2, $3, $4, 1, $5, $6, 0)",
                    )
                    .bind(id)
                    .bind(stream_id)
                    .bind(to_i64(ordinal))
                    .bind(to_i64(counter))
                    .bind(now_ms)
                    .bind(now_ms.saturating_add(visibility_ms))
                    .execute(&mut *tx)
                    .await?;
                    out.push(Delivery {
                        stream_id,
                        shard_ordinal: ordinal,
                        counter,
                        receive_count: 1,
                        first_receive_ms: now_ms,
                        retained_since_ms: retained_since(stream_id),
                    });
                }
                sqlx::query(
                    "INSERT INTO kinesis_queue_cursors (queue_id, stream_id, shard_ordinal, next_counter) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (queue_id, stream_id, shard_ordinal) \
                     DO UPDATE SET next_counter = excluded.next_counter",
                )
                .bind(id)
                .bind(stream_id)
                .bind(to_i64(ordinal))
                .bind(to_i64(cursor + take))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Applies `change` to each delivery a handle names, if it is still that delivery
    /// (same receive count, dead or not as `dead` says): per handle, whether it was.
    pub async fn change_queue_records(
        &self,
        account_id: &str,
        name: &str,
        handles: &[Handle],
        change: HandleChange,
        dead: bool,
        now_ms: i64,
    ) -> Result<Vec<bool>, CatalogError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "UPDATE kinesis_queues SET queue_name = queue_name WHERE account_id = $1 AND queue_name = $2 \
             RETURNING queue_id",
        )
        .bind(account_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| queue_not_found(name, account_id))?;
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            let matching = "WHERE queue_id = $1 AND stream_id = $2 AND shard_ordinal = $3 \
                            AND counter = $4 AND receive_count = $5 AND dead = $6";
            let sql = match change {
                HandleChange::Acknowledge => {
                    format!("DELETE FROM kinesis_queue_records {matching}")
                }
                HandleChange::Visibility(_) => {
                    format!("UPDATE kinesis_queue_records SET visible_at_ms = $7 {matching}")
                }
                HandleChange::Restore => format!(
                    "UPDATE kinesis_queue_records SET dead = 0, receive_count = 0, visible_at_ms = $7 {matching}"
                ),
            };
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(h.stream_id)
                .bind(to_i64(h.shard_ordinal))
                .bind(to_i64(h.counter))
                .bind(h.receive_count)
                .bind(i64::from(dead));
            match change {
                HandleChange::Visibility(ms) => query = query.bind(now_ms.saturating_add(ms)),
                HandleChange::Restore => query = query.bind(now_ms),
                HandleChange::Acknowledge => {}
            }
            out.push(query.execute(&mut *tx).await?.rows_affected() == 1);
        }
        tx.commit().await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::catalogs;

    const A: &str = "000000000000";

    async fn on_demand_stream(catalog: &Catalog, records: i64) {
        let mut new = crate::testing::provisioned_stream("s", 2);
        new.mode = crate::StreamMode::OnDemand;
        catalog.create_stream(&new).await.unwrap();
        sqlx::query("UPDATE shards SET next_sequence = $1")
            .bind(records + 1)
            .execute(catalog.pool())
            .await
            .unwrap();
    }

    fn settings(max: i64) -> QueueSettings {
        QueueSettings {
            visibility_timeout_s: 30,
            dead_letter: true,
            max_receive_count: max,
        }
    }

    fn handle(d: &Delivery) -> Handle {
        Handle {
            stream_id: d.stream_id,
            shard_ordinal: d.shard_ordinal,
            counter: d.counter,
            receive_count: d.receive_count,
        }
    }

    #[tokio::test]
    async fn records_are_handed_out_once_redelivered_after_their_timeout_and_dead_after_max() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in catalogs(dir.path()).await {
            on_demand_stream(&catalog, 3).await;
            let start = [("s".to_string(), QueueStart::TrimHorizon)];
            catalog
                .create_queue(A, "q", &start, settings(2), &[], 0)
                .await
                .unwrap();
            let first = catalog
                .receive_queue(A, "q", 10, None, false, 0)
                .await
                .unwrap();
            assert_eq!(first.len(), 6, "3 records on each of 2 shards");
            assert!(
                catalog
                    .receive_queue(A, "q", 10, None, false, 1)
                    .await
                    .unwrap()
                    .is_empty()
            );
            // One is acknowledged; a stale handle (an older receive count) is not.
            let done = catalog
                .change_queue_records(
                    A,
                    "q",
                    &[handle(&first[0])],
                    HandleChange::Acknowledge,
                    false,
                    2,
                )
                .await
                .unwrap();
            assert_eq!(done, vec![true]);
            let again = catalog
                .receive_queue(A, "q", 10, None, false, 30_001)
                .await
                .unwrap();
            assert_eq!(again.len(), 5);
            assert!(
                again
                    .iter()
                    .all(|d| d.receive_count == 2 && d.first_receive_ms == 0)
            );
            let stale = catalog
                .change_queue_records(
                    A,
                    "q",
                    &[handle(&first[1])],
                    HandleChange::Acknowledge,
                    false,
                    30_002,
                )
                .await
                .unwrap();
            assert_eq!(stale, vec![false]);
            // Received twice without an acknowledgement: dead letters now.
            assert!(
                catalog
                    .receive_queue(A, "q", 10, None, false, 60_002)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let dead = catalog
                .receive_queue(A, "q", 10, Some(0), true, 60_003)
                .await
                .unwrap();
            assert_eq!(dead.len(), 5);
            let restored = catalog
                .change_queue_records(
                    A,
                    "q",
                    &[handle(&dead[0])],
                    HandleChange::Restore,
                    true,
                    60_004,
                )
                .await
                .unwrap();
            assert_eq!(restored, vec![true]);
            let back = catalog
                .receive_queue(A, "q", 10, None, false, 60_005)
                .await
                .unwrap();
            assert_eq!(back.len(), 1);
            assert_eq!(back[0].counter, dead[0].counter);
            assert_eq!(back[0].receive_count, 1);
            catalog.delete_queue(A, "q").await.unwrap();
            assert!(catalog.find_queue(A, "q").await.is_err());
        }
    }

    #[tokio::test]
    async fn only_on_demand_streams_and_latest_starts_at_the_tip() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in catalogs(dir.path()).await {
            catalog
                .create_stream(&crate::testing::provisioned_stream("p", 1))
                .await
                .unwrap();
            let refused = catalog
                .create_queue(
                    A,
                    "q",
                    &[("p".into(), QueueStart::Latest)],
                    settings(6),
                    &[],
                    0,
                )
                .await;
            assert!(refused.is_err());
            on_demand_stream(&catalog, 4).await;
            catalog
                .create_queue(
                    A,
                    "q",
                    &[("s".into(), QueueStart::Latest)],
                    settings(6),
                    &[],
                    0,
                )
                .await
                .unwrap();
            assert!(
                catalog
                    .receive_queue(A, "q", 10, None, false, 0)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let again = catalog
                .create_queue(
                    A,
                    "q",
                    &[("s".into(), QueueStart::Latest)],
                    settings(6),
                    &[],
                    0,
                )
                .await;
            assert!(again.is_err(), "the name is taken");
        }
    }
}
