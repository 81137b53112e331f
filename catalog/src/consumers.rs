//! Enhanced fan-out consumers: registered per stream, each metered as consumer-shard-
//! hours from registration to deregistration (or its stream's deletion).

use protocol::limits;

use crate::refusal::{Refusal, RefusalKind};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Catalog, CatalogError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: i64,
    pub stream_id: i64,
    pub name: String,
    pub created_at_ms: i64,
    /// CREATING before this time, ACTIVE from it.
    pub active_at_ms: i64,
}

impl Consumer {
    pub fn status(&self, now_ms: i64) -> &'static str {
        if now_ms < self.active_at_ms {
            "CREATING"
        } else {
            "ACTIVE"
        }
    }

    /// The creation time in whole seconds, as the consumer's ARN carries it.
    pub fn created_s(&self) -> i64 {
        self.created_at_ms.div_euclid(1000)
    }
}

fn consumer_from_row(row: &AnyRow) -> Result<Consumer, sqlx::Error> {
    Ok(Consumer {
        id: row.try_get("consumer_id")?,
        stream_id: row.try_get("stream_id")?,
        name: row.try_get("consumer_name")?,
        created_at_ms: row.try_get("created_at_ms")?,
        active_at_ms: row.try_get("active_at_ms")?,
    })
}

fn consumer_not_found(name: &str, stream: &str, account: &str) -> CatalogError {
    Refusal::new(
        RefusalKind::Missing,
        format!("Consumer {name} under stream {stream} under account {account} not found."),
    )
    .into()
}

/// A random positive 63-bit id: unique without a sequence shared by both dialects.
pub(crate) fn random_id() -> Result<i64, CatalogError> {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CatalogError::Corrupt {
        what: "no randomness for a consumer id".into(),
    })?;
    Ok((u64::from_le_bytes(bytes) >> 1) as i64)
}

const CONSUMER_COLUMNS: &str =
    "c.consumer_id, c.stream_id, c.consumer_name, c.created_at_ms, c.active_at_ms";

impl Catalog {
    /// Registers `consumer` on the stream, at most `CONSUMERS_PER_STREAM_MAX` a stream,
    /// and opens its meter interval in the same transaction.
    pub async fn register_consumer(
        &self,
        account_id: &str,
        stream_name: &str,
        consumer: &str,
        now_ms: i64,
        active_at_ms: i64,
    ) -> Result<Consumer, CatalogError> {
        let mut tx = self.begin_write().await?;
        // The write statement first: the stream's row (and SQLite's write lock) is
        // held, so two registrations cannot both pass the count below.
        let stream = sqlx::query(
            "UPDATE streams SET stream_name = stream_name \
             WHERE account_id = $1 AND stream_name = $2 AND status <> 'DELETING' \
             RETURNING stream_id, status",
        )
        .bind(account_id)
        .bind(stream_name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Refusal::stream_not_found(stream_name, account_id))?;
        let stream_id: i64 = stream.try_get("stream_id")?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM stream_consumers WHERE stream_id = $1")
                .bind(stream_id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= limits::CONSUMERS_PER_STREAM_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!(
                    "Consumer limit of {} for stream {stream_name} under account {account_id} has been reached.",
                    limits::CONSUMERS_PER_STREAM_MAX
                ),
            )
            .into());
        }
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT consumer_id FROM stream_consumers WHERE stream_id = $1 AND consumer_name = $2",
        )
        .bind(stream_id)
        .bind(consumer)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_some() {
            return Err(Refusal::new(
                RefusalKind::InUse,
                format!(
                    "Consumer {consumer} under stream {stream_name} under account {account_id} already exists."
                ),
            )
            .into());
        }
        let made = Consumer {
            id: random_id()?,
            stream_id,
            name: consumer.to_string(),
            created_at_ms: now_ms,
            active_at_ms,
        };
        sqlx::query(
            "INSERT INTO stream_consumers (consumer_id, stream_id, consumer_name, created_at_ms, active_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(made.id)
        .bind(stream_id)
        .bind(consumer)
        .bind(now_ms)
        .bind(active_at_ms)
        .execute(&mut *tx)
        .await?;
        let interval = crate::billing::Metered::of("consumer", made.id);
        Self::meter_opened(
            &mut tx,
            account_id,
            stream_name,
            stream_id,
            interval,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(made)
    }

    /// The consumer `name` of the caller's stream.
    pub async fn find_consumer(
        &self,
        account_id: &str,
        stream_name: &str,
        name: &str,
    ) -> Result<Consumer, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONSUMER_COLUMNS} FROM stream_consumers c JOIN streams s ON s.stream_id = c.stream_id \
             WHERE s.account_id = $1 AND s.stream_name = $2 AND c.consumer_name = $3"
        )))
        .bind(account_id)
        .bind(stream_name)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => Ok(consumer_from_row(&row)?),
            None => Err(consumer_not_found(name, stream_name, account_id)),
        }
    }

    /// Whether the consumer is still registered (a subscription ends when it is not).
    pub async fn consumer_exists(&self, consumer_id: i64) -> Result<bool, CatalogError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT consumer_id FROM stream_consumers WHERE consumer_id = $1")
                .bind(consumer_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(found.is_some())
    }

    /// How many consumers the stream has registered (DescribeStreamSummary's ConsumerCount).
    pub async fn count_consumers(&self, stream_id: i64) -> Result<i64, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM stream_consumers WHERE stream_id = $1")
                .bind(stream_id)
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// The stream's consumers by name, after `after` (exclusive), at most `limit`.
    pub async fn list_consumers(
        &self,
        account_id: &str,
        stream_name: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Consumer>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONSUMER_COLUMNS} FROM stream_consumers c JOIN streams s ON s.stream_id = c.stream_id \
             WHERE s.account_id = $1 AND s.stream_name = $2 AND c.consumer_name > $3 \
             ORDER BY c.consumer_name LIMIT $4"
        )))
        .bind(account_id)
        .bind(stream_name)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(consumer_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Deregisters a consumer and closes its meter interval at `now_ms`.
    pub async fn deregister_consumer(
        &self,
        account_id: &str,
        stream_name: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        let gone = sqlx::query(
            "DELETE FROM stream_consumers WHERE consumer_name = $3 AND stream_id = \
               (SELECT stream_id FROM streams WHERE account_id = $1 AND stream_name = $2) \
             RETURNING consumer_id, stream_id",
        )
        .bind(account_id)
        .bind(stream_name)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| consumer_not_found(name, stream_name, account_id))?;
        Self::meter_closed(
            &mut tx,
            gone.try_get("stream_id")?,
            "consumer",
            gone.try_get("consumer_id")?,
            now_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
