//! SQS queues (migration 0023): their rows, attributes, tags, purges, counts and
//! expiry, message move tasks, and the shapes messages are stored and handed out in.
//! Sending, receiving, deleting and hiding messages are `sqsmessages`.

use sqlx::Row;

use crate::refusal::{Refusal, RefusalKind};
use crate::{Catalog, CatalogError};

/// Queues an account may have.
pub const QUEUES_PER_ACCOUNT_MAX: i64 = 10_000;
/// A request bills one more request for each 64 KiB of its payload (SQS's rule).
pub const BILLED_CHUNK: usize = 64 << 10;

/// The requests a call with `payload` bytes bills.
pub fn billed_requests(payload: usize) -> u64 {
    payload.div_ceil(BILLED_CHUNK).max(1) as u64
}

/// Who a request bills: the account and the queue.
#[derive(Debug, Clone, Copy)]
pub struct Billed<'a> {
    pub account_id: &'a str,
    pub queue_name: &'a str,
}

/// After a purge, another waits this long (AWS's rule).
pub const PURGE_INTERVAL_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub id: i64,
    pub account_id: String,
    pub name: String,
    /// JSON of the settable attributes as given.
    pub attributes: String,
    /// JSON map of tags.
    pub tags: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub purged_at_ms: i64,
}

const QUEUE_COLUMNS: &str =
    "queue_id, account_id, name, attributes, tags, created_at_ms, updated_at_ms, purged_at_ms";

fn row_to_queue(r: &sqlx::any::AnyRow) -> Result<Queue, CatalogError> {
    Ok(Queue {
        id: r.try_get("queue_id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        attributes: r.try_get("attributes")?,
        tags: r.try_get("tags")?,
        created_at_ms: r.try_get("created_at_ms")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
        purged_at_ms: r.try_get("purged_at_ms")?,
    })
}

/// A FIFO message's group and deduplication.
#[derive(Debug, Clone)]
pub struct FifoFields {
    pub group_id: String,
    pub dedup_id: String,
    /// The group (DeduplicationScope messageGroup) or "" (queue).
    pub scope_key: String,
}

/// How long a FIFO queue remembers a deduplication id (SQS's five minutes).
pub const DEDUP_WINDOW_MS: i64 = 5 * 60_000;

/// What a send stored: the message's id and, in a FIFO queue, its sequence number (a
/// duplicate within the window answers the first message's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message_id: String,
    pub seq: Option<i64>,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub fifo: Option<FifoFields>,
    pub message_id: String,
    pub sent_at_ms: i64,
    pub visible_at_ms: i64,
    pub expires_at_ms: i64,
    pub sealed: Vec<u8>,
    /// The data key (`sqskeys`) it is sealed under; `None`: the root key.
    pub data_key_id: Option<i64>,
    pub md5_of_body: String,
    pub md5_of_attributes: Option<String>,
    pub sender_id: String,
}

/// A message as a receive hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub seq: i64,
    pub sent_at_ms: i64,
    pub receive_count: i64,
    pub first_received_at_ms: i64,
    pub receipt_token: String,
    pub sealed: Vec<u8>,
    pub data_key_id: Option<i64>,
    pub md5_of_body: String,
    pub md5_of_attributes: Option<String>,
    pub sender_id: String,
}

/// Where a queue's messages go after `max_receives` receives.
#[derive(Debug, Clone, Copy)]
pub struct Redrive {
    pub dead_letter_queue_id: i64,
    pub max_receives: i64,
}

/// How a receive takes messages: at `now_ms`, at most `max`, hidden for
/// `visibility_ms`, moving over-received ones by `redrive`, FIFO order if `fifo`;
/// with `attempt` (a FIFO ReceiveRequestAttemptId), what an earlier receive with it
/// handed out in the last five minutes is handed out again.
#[derive(Clone, Copy)]
pub struct ReceiveOptions<'a> {
    pub now_ms: i64,
    pub max: i64,
    pub visibility_ms: i64,
    pub redrive: Option<Redrive>,
    pub fifo: bool,
    pub attempt: Option<&'a str>,
    /// Who a receive that hands messages out bills, and the payload bytes of what it
    /// hands out (billed in its transaction; a receive that finds nothing bills
    /// nothing here, so the polls of one long poll are not billed each).
    pub billed: Option<(Billed<'a>, PayloadOf)>,
}

/// The payload bytes of what a receive hands out (`ReceiveOptions::billed`).
pub type PayloadOf = fn(&[Received]) -> usize;

/// How long a receive attempt's id gives back what it handed out (SQS's five minutes).
pub const RECEIVE_ATTEMPT_WINDOW_MS: i64 = 5 * 60_000;

/// A RUNNING task whose mover has not reported for this long has failed (its process
/// stopped).
pub const MOVE_TASK_STALE_MS: i64 = 60_000;

/// A message move task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveTask {
    pub task_handle: String,
    pub account_id: String,
    pub source_queue_id: i64,
    pub source_arn: String,
    pub destination_arn: Option<String>,
    pub destination_queue_id: Option<i64>,
    pub max_per_second: Option<i64>,
    pub status: String,
    pub moved: i64,
    pub to_move: i64,
    pub failure_reason: Option<String>,
    pub started_at_ms: i64,
}

const MOVE_COLUMNS: &str = "task_handle, account_id, source_queue_id, source_arn, \
    destination_arn, destination_queue_id, max_per_second, status, moved, to_move, \
    failure_reason, started_at_ms, updated_at_ms";

fn row_to_task(r: &sqlx::any::AnyRow, now_ms: i64) -> Result<MoveTask, CatalogError> {
    let mut status: String = r.try_get("status")?;
    let mut failure_reason: Option<String> = r.try_get("failure_reason")?;
    let updated: i64 = r.try_get("updated_at_ms")?;
    if (status == "RUNNING" || status == "CANCELLING") && updated <= now_ms - MOVE_TASK_STALE_MS {
        status = "FAILED".into();
        failure_reason = Some("The process moving the messages stopped.".into());
    }
    Ok(MoveTask {
        task_handle: r.try_get("task_handle")?,
        account_id: r.try_get("account_id")?,
        source_queue_id: r.try_get("source_queue_id")?,
        source_arn: r.try_get("source_arn")?,
        destination_arn: r.try_get("destination_arn")?,
        destination_queue_id: r.try_get("destination_queue_id")?,
        max_per_second: r.try_get("max_per_second")?,
        status,
        moved: r.try_get("moved")?,
        to_move: r.try_get("to_move")?,
        failure_reason,
        started_at_ms: r.try_get("started_at_ms")?,
    })
}

/// What became of a receipt handle's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleOutcome {
    Done,
    /// The handle is not the message's latest (it was received again since): nothing
    /// changed.
    Stale,
    /// The message is not in flight (ChangeMessageVisibility).
    NotInFlight,
    /// No such message (deleted, expired, purged).
    Gone,
}

/// The counts GetQueueAttributes answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub visible: i64,
    pub in_flight: i64,
    pub delayed: i64,
}

impl Catalog {
    /// Makes a queue, or answers the one of that name (`false`: it existed).
    pub async fn create_sqs_queue(
        &self,
        account_id: &str,
        name: &str,
        attributes: &str,
        tags: &str,
        now_ms: i64,
    ) -> Result<(Queue, bool), CatalogError> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {QUEUE_COLUMNS} FROM sqs_queues WHERE account_id = $1 AND name = $2"
        )))
        .bind(account_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            return Ok((row_to_queue(&row)?, false));
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqs_queues WHERE account_id = $1")
                .bind(account_id)
                .fetch_one(&mut *tx)
                .await?;
        if count >= QUEUES_PER_ACCOUNT_MAX {
            return Err(Refusal::new(
                RefusalKind::OverLimit,
                format!("An account has at most {QUEUES_PER_ACCOUNT_MAX} queues."),
            )
            .into());
        }
        let id = crate::consumers::random_id()?;
        sqlx::query(
            "INSERT INTO sqs_queues (queue_id, account_id, name, attributes, tags, created_at_ms, \
             updated_at_ms, purged_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6, 0)",
        )
        .bind(id)
        .bind(account_id)
        .bind(name)
        .bind(attributes)
        .bind(tags)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((
            Queue {
                id,
                account_id: account_id.to_string(),
                name: name.to_string(),
                attributes: attributes.to_string(),
                tags: tags.to_string(),
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
                purged_at_ms: 0,
            },
            true,
        ))
    }

    pub async fn sqs_queue(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Queue>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {QUEUE_COLUMNS} FROM sqs_queues WHERE account_id = $1 AND name = $2"
        )))
        .bind(account_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(row_to_queue).transpose()
    }

    /// An account's queues whose names start with `prefix`, after `after`, in name
    /// order, at most `limit`.
    pub async fn list_sqs_queues(
        &self,
        account_id: &str,
        prefix: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Queue>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {QUEUE_COLUMNS} FROM sqs_queues WHERE account_id = $1 AND name > $2 \
             AND substr(name, 1, length($3)) = $3 ORDER BY name LIMIT $4"
        )))
        .bind(account_id)
        .bind(after)
        .bind(prefix)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row_to_queue).collect()
    }

    /// Deletes a queue and its messages.
    pub async fn delete_sqs_queue(&self, queue_id: i64) -> Result<(), CatalogError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sqs_messages WHERE queue_id = $1")
            .bind(queue_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sqs_dedup WHERE queue_id = $1")
            .bind(queue_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sqs_receive_attempts WHERE queue_id = $1")
            .bind(queue_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sqs_move_tasks WHERE source_queue_id = $1")
            .bind(queue_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sqs_queues WHERE queue_id = $1")
            .bind(queue_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_sqs_queue_attributes(
        &self,
        queue_id: i64,
        attributes: &str,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE sqs_queues SET attributes = $2, updated_at_ms = $3 WHERE queue_id = $1",
        )
        .bind(queue_id)
        .bind(attributes)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn set_sqs_queue_tags(&self, queue_id: i64, tags: &str) -> Result<(), CatalogError> {
        sqlx::query("UPDATE sqs_queues SET tags = $2 WHERE queue_id = $1")
            .bind(queue_id)
            .bind(tags)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes the messages sent before now; `false` (and nothing done) within
    /// `PURGE_INTERVAL_MS` of the last purge.
    pub async fn purge_sqs_queue(&self, queue_id: i64, now_ms: i64) -> Result<bool, CatalogError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE sqs_queues SET purged_at_ms = $2 WHERE queue_id = $1 \
             AND (purged_at_ms = 0 OR purged_at_ms <= $2 - $3)",
        )
        .bind(queue_id)
        .bind(now_ms)
        .bind(PURGE_INTERVAL_MS)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM sqs_messages WHERE queue_id = $1 AND sent_at_ms <= $2")
            .bind(queue_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves up to `limit` visible messages of a dead-letter queue to `destination`, or
    /// each to the queue it was dead-lettered from (those from a queue since deleted,
    /// or from none, stay). Answers how many moved.
    pub async fn move_sqs_messages(
        &self,
        source_queue_id: i64,
        destination: Option<i64>,
        limit: i64,
        now_ms: i64,
    ) -> Result<u64, CatalogError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT m.message_id, COALESCE($2, q.queue_id) AS target FROM sqs_messages m \
             LEFT JOIN sqs_queues q ON q.queue_id = m.dead_letter_source_id \
             WHERE m.queue_id = $1 AND m.visible_at_ms <= $3 \
             AND COALESCE($2, q.queue_id) IS NOT NULL \
             ORDER BY m.sent_at_ms LIMIT $4",
        )
        .bind(source_queue_id)
        .bind(destination)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let id: String = row.try_get("message_id")?;
            let target: i64 = row.try_get("target")?;
            sqlx::query(
                "UPDATE sqs_messages SET queue_id = $3, visible_at_ms = $4, receive_count = 0, \
                 receipt_token = NULL, dead_letter_source_id = NULL \
                 WHERE queue_id = $1 AND message_id = $2",
            )
            .bind(source_queue_id)
            .bind(&id)
            .bind(target)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Records a new move task, unless the source has one running (`false`).
    pub async fn start_sqs_move_task(&self, task: &MoveTask) -> Result<bool, CatalogError> {
        let mut tx = self.begin_write().await?;
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqs_move_tasks WHERE source_queue_id = $1 \
             AND status IN ('RUNNING', 'CANCELLING') AND updated_at_ms > $2",
        )
        .bind(task.source_queue_id)
        .bind(task.started_at_ms - MOVE_TASK_STALE_MS)
        .fetch_one(&mut *tx)
        .await?;
        if running > 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO sqs_move_tasks (task_handle, account_id, source_queue_id, source_arn, \
             destination_arn, destination_queue_id, max_per_second, status, moved, to_move, \
             failure_reason, started_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'RUNNING', 0, $8, NULL, $9, $9)",
        )
        .bind(&task.task_handle)
        .bind(&task.account_id)
        .bind(task.source_queue_id)
        .bind(&task.source_arn)
        .bind(&task.destination_arn)
        .bind(task.destination_queue_id)
        .bind(task.max_per_second)
        .bind(task.to_move)
        .bind(task.started_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a task's progress and answers its status (a cancel request shows as
    /// CANCELLING); `status` ends it.
    pub async fn update_sqs_move_task(
        &self,
        handle: &str,
        moved: u64,
        status: Option<&str>,
        now_ms: i64,
    ) -> Result<String, CatalogError> {
        let current: Option<String> = sqlx::query_scalar(
            "UPDATE sqs_move_tasks SET moved = moved + $2, updated_at_ms = $3, \
             status = COALESCE($4, status) WHERE task_handle = $1 RETURNING status",
        )
        .bind(handle)
        .bind(i64::try_from(moved).unwrap_or(i64::MAX))
        .bind(now_ms)
        .bind(status)
        .fetch_optional(self.pool())
        .await?;
        Ok(current.unwrap_or_else(|| "CANCELLED".into()))
    }

    /// Asks a running task to stop; answers it, or `None` when no running task has
    /// that handle.
    pub async fn cancel_sqs_move_task(
        &self,
        account_id: &str,
        handle: &str,
        now_ms: i64,
    ) -> Result<Option<MoveTask>, CatalogError> {
        sqlx::query(
            "UPDATE sqs_move_tasks SET status = 'CANCELLING' WHERE task_handle = $1 \
             AND account_id = $2 AND status = 'RUNNING' AND updated_at_ms > $3",
        )
        .bind(handle)
        .bind(account_id)
        .bind(now_ms - MOVE_TASK_STALE_MS)
        .execute(self.pool())
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MOVE_COLUMNS} FROM sqs_move_tasks WHERE task_handle = $1 AND account_id = $2"
        )))
        .bind(handle)
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => {
                let task = row_to_task(&r, now_ms)?;
                Ok((task.status == "CANCELLING").then_some(task))
            }
            None => Ok(None),
        }
    }

    /// A task of the account by its handle.
    pub async fn sqs_move_task(
        &self,
        account_id: &str,
        handle: &str,
        now_ms: i64,
    ) -> Result<Option<MoveTask>, CatalogError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MOVE_COLUMNS} FROM sqs_move_tasks WHERE task_handle = $1 AND account_id = $2"
        )))
        .bind(handle)
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(|r| row_to_task(r, now_ms)).transpose()
    }

    /// A source queue's most recent tasks, newest first.
    pub async fn list_sqs_move_tasks(
        &self,
        source_queue_id: i64,
        limit: i64,
        now_ms: i64,
    ) -> Result<Vec<MoveTask>, CatalogError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MOVE_COLUMNS} FROM sqs_move_tasks WHERE source_queue_id = $1 \
             ORDER BY started_at_ms DESC LIMIT $2"
        )))
        .bind(source_queue_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| row_to_task(r, now_ms)).collect()
    }

    /// Per queue (the first `limit` by id): its account and name, its visible,
    /// in-flight and delayed messages, and when its oldest message was sent.
    pub async fn sqs_queue_stats(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String, QueueCounts, Option<i64>)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT q.account_id, q.name, \
             COALESCE(SUM(CASE WHEN m.visible_at_ms <= $1 THEN 1 ELSE 0 END), 0) AS visible, \
             COALESCE(SUM(CASE WHEN m.visible_at_ms > $1 AND m.receive_count > 0 THEN 1 ELSE 0 END), 0) AS in_flight, \
             COALESCE(SUM(CASE WHEN m.visible_at_ms > $1 AND m.receive_count = 0 THEN 1 ELSE 0 END), 0) AS delayed, \
             MIN(m.sent_at_ms) AS oldest \
             FROM sqs_queues q LEFT JOIN sqs_messages m \
             ON m.queue_id = q.queue_id AND m.expires_at_ms > $1 \
             GROUP BY q.queue_id, q.account_id, q.name ORDER BY q.queue_id LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("account_id")?,
                    r.try_get("name")?,
                    QueueCounts {
                        visible: r.try_get("visible")?,
                        in_flight: r.try_get("in_flight")?,
                        delayed: r.try_get("delayed")?,
                    },
                    r.try_get("oldest")?,
                ))
            })
            .collect()
    }

    /// Deletes messages past their retention and deduplication ids past their window,
    /// in every queue.
    pub async fn expire_sqs_messages(&self, now_ms: i64) -> Result<u64, CatalogError> {
        let mut tx = self.begin_write().await?;
        let gone = sqlx::query("DELETE FROM sqs_messages WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM sqs_dedup WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sqs_receive_attempts WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone)
    }

    /// How many messages are visible, in flight and delayed (expired ones left out).
    pub async fn sqs_queue_counts(
        &self,
        queue_id: i64,
        now_ms: i64,
    ) -> Result<QueueCounts, CatalogError> {
        let row = sqlx::query(
            "SELECT \
             COALESCE(SUM(CASE WHEN visible_at_ms <= $2 THEN 1 ELSE 0 END), 0) AS visible, \
             COALESCE(SUM(CASE WHEN visible_at_ms > $2 AND receive_count > 0 THEN 1 ELSE 0 END), 0) AS in_flight, \
             COALESCE(SUM(CASE WHEN visible_at_ms > $2 AND receive_count = 0 THEN 1 ELSE 0 END), 0) AS delayed \
             FROM sqs_messages WHERE queue_id = $1 AND expires_at_ms > $2",
        )
        .bind(queue_id)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(QueueCounts {
            visible: row.try_get("visible")?,
            in_flight: row.try_get("in_flight")?,
            delayed: row.try_get("delayed")?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn message(id: &str, now: i64) -> NewMessage {
        NewMessage {
            fifo: None,
            message_id: id.into(),
            sent_at_ms: now,
            visible_at_ms: now,
            expires_at_ms: now + 60_000,
            sealed: vec![1, 2, 3],
            data_key_id: None,
            md5_of_body: "x".into(),
            md5_of_attributes: None,
            sender_id: "s".into(),
        }
    }

    #[tokio::test]
    async fn a_received_message_is_hidden_until_its_timeout_and_deleted_by_its_latest_handle() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let (q, made) = catalog
                .create_sqs_queue("111122223333", "jobs", "{}", "{}", 1_000)
                .await
                .unwrap();
            assert!(made);
            let (again, made) = catalog
                .create_sqs_queue("111122223333", "jobs", "{}", "{}", 2_000)
                .await
                .unwrap();
            assert!(!made && again.id == q.id);
            catalog
                .send_sqs_messages(
                    q.id,
                    &[message("a", 1_000), message("b", 1_000)],
                    Billed {
                        account_id: "111122223333",
                        queue_name: "jobs",
                    },
                    1,
                    1_000,
                )
                .await
                .unwrap();
            let mut n = 0;
            let mut token = || {
                n += 1;
                format!("t{n}")
            };
            let got = catalog
                .receive_sqs_messages(
                    q.id,
                    ReceiveOptions {
                        now_ms: 1_000,
                        max: 10,
                        visibility_ms: 30_000,
                        redrive: None,
                        fifo: false,
                        attempt: None,
                        billed: None,
                    },
                    &mut token,
                )
                .await
                .unwrap();
            assert_eq!(got.len(), 2);
            let none = catalog
                .receive_sqs_messages(
                    q.id,
                    ReceiveOptions {
                        now_ms: 2_000,
                        max: 10,
                        visibility_ms: 30_000,
                        redrive: None,
                        fifo: false,
                        attempt: None,
                        billed: None,
                    },
                    &mut token,
                )
                .await
                .unwrap();
            assert!(none.is_empty(), "in flight for 30 s");
            let counts = catalog.sqs_queue_counts(q.id, 2_000).await.unwrap();
            assert_eq!(counts.in_flight, 2);
            // After the timeout, received again under a new token: the old one is stale.
            let again = catalog
                .receive_sqs_messages(
                    q.id,
                    ReceiveOptions {
                        now_ms: 32_000,
                        max: 1,
                        visibility_ms: 30_000,
                        redrive: None,
                        fifo: false,
                        attempt: None,
                        billed: None,
                    },
                    &mut token,
                )
                .await
                .unwrap();
            assert_eq!(again.len(), 1);
            assert_eq!(again[0].receive_count, 2);
            let old = got
                .iter()
                .find(|m| m.message_id == again[0].message_id)
                .unwrap();
            assert_eq!(
                catalog
                    .delete_sqs_message(q.id, &old.message_id, &old.receipt_token)
                    .await
                    .unwrap(),
                HandleOutcome::Stale
            );
            assert_eq!(
                catalog
                    .delete_sqs_message(q.id, &again[0].message_id, &again[0].receipt_token)
                    .await
                    .unwrap(),
                HandleOutcome::Done
            );
            // Redrive: the other message, received once, moves on its next receive.
            let (dlq, _) = catalog
                .create_sqs_queue("111122223333", "dead", "{}", "{}", 1_000)
                .await
                .unwrap();
            let redrive = Redrive {
                dead_letter_queue_id: dlq.id,
                max_receives: 1,
            };
            let moved = catalog
                .receive_sqs_messages(
                    q.id,
                    ReceiveOptions {
                        now_ms: 40_000,
                        max: 10,
                        visibility_ms: 30_000,
                        redrive: Some(redrive),
                        fifo: false,
                        attempt: None,
                        billed: None,
                    },
                    &mut token,
                )
                .await
                .unwrap();
            assert!(moved.is_empty());
            assert_eq!(
                catalog
                    .sqs_queue_counts(dlq.id, 40_000)
                    .await
                    .unwrap()
                    .visible,
                1
            );
            assert!(catalog.purge_sqs_queue(dlq.id, 41_000).await.unwrap());
            assert!(!catalog.purge_sqs_queue(dlq.id, 42_000).await.unwrap());
            assert_eq!(
                catalog
                    .sqs_queue_counts(dlq.id, 42_000)
                    .await
                    .unwrap()
                    .visible,
                0
            );
            // Past retention a message is no longer received, and the janitor drops it.
            catalog
                .send_sqs_messages(
                    q.id,
                    &[message("old", 1_000)],
                    Billed {
                        account_id: "111122223333",
                        queue_name: "jobs",
                    },
                    1,
                    1_000,
                )
                .await
                .unwrap();
            let expired = catalog
                .receive_sqs_messages(
                    q.id,
                    ReceiveOptions {
                        now_ms: 61_000,
                        max: 10,
                        visibility_ms: 30_000,
                        redrive: None,
                        fifo: false,
                        attempt: None,
                        billed: None,
                    },
                    &mut token,
                )
                .await
                .unwrap();
            assert!(
                expired.is_empty(),
                "past its retention a message is not received"
            );
            let stats = catalog.sqs_queue_stats(2_000, 100).await.unwrap();
            let jobs = stats.iter().find(|s| s.1 == "jobs").unwrap();
            assert_eq!((jobs.2.visible, jobs.3), (1, Some(1_000)));
            assert_eq!(catalog.expire_sqs_messages(61_000).await.unwrap(), 1);
            catalog.delete_sqs_queue(q.id).await.unwrap();
            assert!(
                catalog
                    .sqs_queue("111122223333", "jobs")
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[tokio::test]
    async fn a_fifo_queue_keeps_group_order_locks_groups_in_flight_and_deduplicates() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let (q, _) = catalog
                .create_sqs_queue("111122223333", "jobs.fifo", "{}", "{}", 1_000)
                .await
                .unwrap();
            let fifo = |id: &str, group: &str, dedup: &str| NewMessage {
                fifo: Some(FifoFields {
                    group_id: group.into(),
                    dedup_id: dedup.into(),
                    scope_key: String::new(),
                }),
                ..message(id, 1_000)
            };
            let billed = Billed {
                account_id: "111122223333",
                queue_name: "jobs.fifo",
            };
            let sent = catalog
                .send_sqs_messages(
                    q.id,
                    &[
                        fifo("a1", "A", "d1"),
                        fifo("a2", "A", "d2"),
                        fifo("b1", "B", "d3"),
                        fifo("dup", "A", "d1"),
                    ],
                    billed,
                    1,
                    1_000,
                )
                .await
                .unwrap();
            assert_eq!(
                sent[3].message_id, "a1",
                "a duplicate answers the first message"
            );
            assert_eq!(sent[3].seq, sent[0].seq);
            assert!(sent[0].seq < sent[1].seq && sent[1].seq < sent[2].seq);
            let mut token = || "t".to_string();
            let first = catalog
                .receive_sqs_messages(
                    q.id,
                    ReceiveOptions {
                        now_ms: 1_000,
                        max: 1,
                        visibility_ms: 30_000,
                        redrive: None,
                        fifo: true,
                        attempt: None,
                        billed: None,
                    },
                    &mut token,
                )
                .await
                .unwrap();
            assert_eq!(first[0].message_id, "a1");
            // Group A is in flight: only B's message comes.
            let next = catalog
                .receive_sqs_messages(
                    q.id,
                    ReceiveOptions {
                        now_ms: 1_000,
                        max: 10,
                        visibility_ms: 30_000,
                        redrive: None,
                        fifo: true,
                        attempt: None,
                        billed: None,
                    },
                    &mut token,
                )
                .await
                .unwrap();
            let ids: Vec<&str> = next.iter().map(|m| m.message_id.as_str()).collect();
            assert_eq!(ids, ["b1"]);
            assert_eq!(
                catalog.delete_sqs_message(q.id, "a1", "t").await.unwrap(),
                HandleOutcome::Done
            );
            let last = catalog
                .receive_sqs_messages(
                    q.id,
                    ReceiveOptions {
                        now_ms: 1_000,
                        max: 10,
                        visibility_ms: 30_000,
                        redrive: None,
                        fifo: true,
                        attempt: None,
                        billed: None,
                    },
                    &mut token,
                )
                .await
                .unwrap();
            assert_eq!(last[0].message_id, "a2");
            assert_eq!(last.len(), 1);
        }
    }
}
