//! SQS messages: send, receive, delete and visibility changes, each a write of the
//! catalog's group committer (`groupcommit`): on SQLite the writes that arrive together
//! share a transaction and its commit, and each is answered only after it. A standard
//! receive picks its messages once (a materialized CTE, `FOR UPDATE SKIP LOCKED` on
//! Postgres) and hides them in one statement; a FIFO receive walks sequence order from
//! groups with nothing in flight, holding the queue's row on Postgres.

use std::sync::Arc;

use sqlx::Row;

use crate::Backend;
use crate::billing::Metric;
use crate::groupcommit::Meters;
use crate::sqs::{
    Billed, DEDUP_WINDOW_MS, HandleOutcome, NewMessage, PayloadOf, RECEIVE_ATTEMPT_WINDOW_MS,
    ReceiveOptions, Received, Redrive, Sent, billed_requests,
};
use crate::{Catalog, CatalogError};

/// The columns a receive answers with (`received_from_row`).
const RECEIVED_COLUMNS: &str = "message_id, sent_at_ms, receive_count, first_received_at_ms, \
     receipt_token, sealed, md5_of_body, md5_of_attributes, sender_id, group_id, dedup_id, seq, \
     data_key_id";

fn received_from_row(row: &sqlx::any::AnyRow) -> Result<Received, CatalogError> {
    Ok(Received {
        message_id: row.try_get("message_id")?,
        group_id: row.try_get("group_id")?,
        dedup_id: row.try_get("dedup_id")?,
        seq: row.try_get("seq")?,
        sent_at_ms: row.try_get("sent_at_ms")?,
        receive_count: row.try_get("receive_count")?,
        first_received_at_ms: row.try_get("first_received_at_ms")?,
        receipt_token: row.try_get("receipt_token")?,
        sealed: row.try_get("sealed")?,
        data_key_id: row.try_get("data_key_id")?,
        md5_of_body: row.try_get("md5_of_body")?,
        md5_of_attributes: row.try_get("md5_of_attributes")?,
        sender_id: row.try_get("sender_id")?,
    })
}

impl Catalog {
    /// Stores messages, all or none, durable when this answers, and bills the
    /// request in the same transaction (grouped with other SQS writes, `groupcommit`).
    pub async fn send_sqs_messages(
        &self,
        queue_id: i64,
        messages: &[NewMessage],
        billed: Billed<'_>,
        requests: u64,
        now_ms: i64,
    ) -> Result<Vec<Sent>, CatalogError> {
        let input = Arc::new((messages.to_vec(), BilledTo::from(billed)));
        self.write_grouped(move |conn, meters| {
            let input = input.clone();
            let (_, billed) = &*input;
            meters.add(
                &billed.account_id,
                &billed.queue_name,
                Metric::SqsRequests,
                requests,
                now_ms,
            );
            Box::pin(async move { send_on(conn, queue_id, &input.0, now_ms).await })
        })
        .await
    }

    /// Takes up to `max` visible messages, invisible until `now_ms + visibility_ms`,
    /// all under one token `token()` gives. Expired messages are skipped; those
    /// received `redrive.max_receives` times already move to the dead-letter queue.
    pub async fn receive_sqs_messages(
        &self,
        queue_id: i64,
        how: ReceiveOptions<'_>,
        token: &mut (dyn FnMut() -> String + Send),
    ) -> Result<Vec<Received>, CatalogError> {
        // One token for the messages one receive hands out: a handle names its
        // message too, and the next receive of a message gives it a new token.
        let token = token();
        let input = Arc::new(ReceiveInput {
            now_ms: how.now_ms,
            max: how.max,
            visibility_ms: how.visibility_ms,
            redrive: how.redrive,
            fifo: how.fifo,
            attempt: how.attempt.map(str::to_string),
            billed: how.billed.map(|(b, payload)| (BilledTo::from(b), payload)),
            token,
            postgres: self.backend() == Backend::Postgres,
        });
        self.write_grouped(move |conn, meters| {
            let input = input.clone();
            Box::pin(async move { receive_on(conn, meters, queue_id, &input).await })
        })
        .await
    }

    /// Bills requests (a receive's, once it knows what it returned; the others').
    pub async fn bill_sqs_requests(
        &self,
        billed: Billed<'_>,
        requests: u64,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let billed = BilledTo::from(billed);
        self.write_grouped(move |_, meters| {
            meters.add(
                &billed.account_id,
                &billed.queue_name,
                Metric::SqsRequests,
                requests,
                now_ms,
            );
            Box::pin(async { Ok(()) })
        })
        .await
    }

    /// Deletes messages whose tokens are their latest receives' (a stale or unknown
    /// handle deletes nothing, as SQS answers it), and bills the request, in one
    /// transaction.
    pub async fn delete_sqs_messages(
        &self,
        queue_id: i64,
        handles: &[(String, String)],
        billed: Billed<'_>,
        now_ms: i64,
    ) -> Result<(), CatalogError> {
        let input = Arc::new((handles.to_vec(), BilledTo::from(billed)));
        self.write_grouped(move |conn, meters| {
            let input = input.clone();
            Box::pin(async move {
                let (handles, billed) = &*input;
                let b = billed.as_billed();
                meters.add(b.account_id, b.queue_name, Metric::SqsRequests, 1, now_ms);
                delete_on(conn, queue_id, handles).await
            })
        })
        .await
    }

    /// Deletes a message if `token` is its latest receive's.
    pub async fn delete_sqs_message(
        &self,
        queue_id: i64,
        message_id: &str,
        token: &str,
    ) -> Result<HandleOutcome, CatalogError> {
        let done = sqlx::query(
            "DELETE FROM sqs_messages WHERE queue_id = $1 AND message_id = $2 AND receipt_token = $3",
        )
        .bind(queue_id)
        .bind(message_id)
        .bind(token)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(HandleOutcome::Done);
        }
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT receive_count FROM sqs_messages WHERE queue_id = $1 AND message_id = $2",
        )
        .bind(queue_id)
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(if exists.is_some() {
            HandleOutcome::Stale
        } else {
            HandleOutcome::Gone
        })
    }

    /// Makes an in-flight message visible at `visible_at_ms` (now: at once).
    pub async fn change_sqs_visibility(
        &self,
        queue_id: i64,
        message_id: &str,
        token: &str,
        now_ms: i64,
        visible_at_ms: i64,
    ) -> Result<HandleOutcome, CatalogError> {
        let handle = Arc::new((message_id.to_string(), token.to_string()));
        self.write_grouped(move |conn, _| {
            let handle = handle.clone();
            Box::pin(async move {
                let (message_id, token) = &*handle;
                change_visibility_on(conn, queue_id, message_id, token, now_ms, visible_at_ms).await
            })
        })
        .await
    }
}

/// Who a grouped write bills, owned (`Billed` outlives the request in the writer).
#[derive(Debug, Clone)]
struct BilledTo {
    account_id: String,
    queue_name: String,
}

impl From<Billed<'_>> for BilledTo {
    fn from(b: Billed<'_>) -> BilledTo {
        BilledTo {
            account_id: b.account_id.to_string(),
            queue_name: b.queue_name.to_string(),
        }
    }
}

impl BilledTo {
    fn as_billed(&self) -> Billed<'_> {
        Billed {
            account_id: &self.account_id,
            queue_name: &self.queue_name,
        }
    }
}

/// Over-received messages one receive moves to the dead-letter queue at most.
const REDRIVE_PER_RECEIVE_MAX: i64 = 100;

/// A receive, owned, as the group writer runs it.
struct ReceiveInput {
    now_ms: i64,
    max: i64,
    visibility_ms: i64,
    redrive: Option<Redrive>,
    fifo: bool,
    attempt: Option<String>,
    billed: Option<(BilledTo, PayloadOf)>,
    /// The receive's token: the messages it hands out carry it until received again.
    token: String,
    /// On Postgres a receive skips rows other receivers hold, and FIFO receives of a
    /// queue run one at a time (its row locked).
    postgres: bool,
}

/// Stores `messages` and bills `requests` (`Catalog::send_sqs_messages`).
async fn send_on(
    conn: &mut sqlx::AnyConnection,
    queue_id: i64,
    messages: &[NewMessage],
    now_ms: i64,
) -> Result<Vec<Sent>, CatalogError> {
    if messages.iter().any(|m| m.fifo.is_some()) {
        sqlx::query("DELETE FROM sqs_dedup WHERE queue_id = $1 AND expires_at_ms <= $2")
            .bind(queue_id)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
    }
    let mut sent = Vec::with_capacity(messages.len());
    let mut rows = Vec::with_capacity(messages.len());
    for m in messages {
        let mut seq = None;
        if let Some(f) = &m.fifo {
            let seen = sqlx::query(
                "SELECT message_id, seq FROM sqs_dedup \
                 WHERE queue_id = $1 AND scope_key = $2 AND dedup_id = $3",
            )
            .bind(queue_id)
            .bind(&f.scope_key)
            .bind(&f.dedup_id)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(row) = seen {
                sent.push(Sent {
                    message_id: row.try_get("message_id")?,
                    seq: Some(row.try_get("seq")?),
                });
                continue;
            }
            let next: i64 = sqlx::query_scalar(
                "UPDATE sqs_queues SET next_seq = next_seq + 1 WHERE queue_id = $1 \
                 RETURNING next_seq - 1",
            )
            .bind(queue_id)
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO sqs_dedup (queue_id, scope_key, dedup_id, message_id, seq, \
                 expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(queue_id)
            .bind(&f.scope_key)
            .bind(&f.dedup_id)
            .bind(&m.message_id)
            .bind(next)
            .bind(now_ms + DEDUP_WINDOW_MS)
            .execute(&mut *conn)
            .await?;
            seq = Some(next);
        }
        rows.push((m, seq));
        sent.push(Sent {
            message_id: m.message_id.clone(),
            seq,
        });
    }
    insert_messages(conn, queue_id, &rows).await?;
    Ok(sent)
}

/// Messages, each with its FIFO sequence number, in one statement.
async fn insert_messages(
    conn: &mut sqlx::AnyConnection,
    queue_id: i64,
    rows: &[(&NewMessage, Option<i64>)],
) -> Result<(), CatalogError> {
    if rows.is_empty() {
        return Ok(());
    }
    const COLUMNS: usize = 13;
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let p: Vec<String> = (1..=COLUMNS)
                .map(|c| format!("${}", i * COLUMNS + c))
                .collect();
            format!(
                "({}, {}, {}, {}, {}, 0, NULL, NULL, {})",
                p[0],
                p[1],
                p[2],
                p[3],
                p[4],
                p[5..].join(", ")
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO sqs_messages (queue_id, message_id, sent_at_ms, visible_at_ms, \
         expires_at_ms, receive_count, first_received_at_ms, receipt_token, sealed, \
         md5_of_body, md5_of_attributes, sender_id, group_id, dedup_id, seq, data_key_id) \
         VALUES {}",
        values.join(", ")
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (m, seq) in rows {
        insert = insert
            .bind(queue_id)
            .bind(&m.message_id)
            .bind(m.sent_at_ms)
            .bind(m.visible_at_ms)
            .bind(m.expires_at_ms)
            .bind(&m.sealed)
            .bind(&m.md5_of_body)
            .bind(&m.md5_of_attributes)
            .bind(&m.sender_id)
            .bind(m.fifo.as_ref().map(|f| f.group_id.clone()))
            .bind(m.fifo.as_ref().map(|f| f.dedup_id.clone()))
            .bind(seq.unwrap_or(0))
            .bind(m.data_key_id);
    }
    insert.execute(&mut *conn).await?;
    Ok(())
}

/// Takes messages (`Catalog::receive_sqs_messages`).
async fn receive_on(
    conn: &mut sqlx::AnyConnection,
    meters: &mut Meters,
    queue_id: i64,
    how: &ReceiveInput,
) -> Result<Vec<Received>, CatalogError> {
    let now_ms = how.now_ms;
    let billed = how
        .billed
        .as_ref()
        .map(|(b, payload)| (b.as_billed(), *payload));
    if how.fifo && how.postgres {
        // One FIFO receive at a time per queue: a group in flight stays locked
        // across processes (row locks alone would let two receivers split a group).
        sqlx::query("SELECT queue_id FROM sqs_queues WHERE queue_id = $1 FOR UPDATE")
            .bind(queue_id)
            .fetch_optional(&mut *conn)
            .await?;
    }
    if let Some(attempt) = &how.attempt
        && let Some(again) =
            repeat_receive_attempt(conn, queue_id, attempt, now_ms + how.visibility_ms, now_ms)
                .await?
    {
        bill_receive(meters, billed, &again, now_ms);
        return Ok(again);
    }
    // Expired messages are skipped here and deleted by the janitor
    // (`expire_sqs_messages`), not by every receive.
    let out = if how.fifo {
        take_in_order(conn, queue_id, how).await?
    } else {
        take_any(conn, queue_id, how).await?
    };
    if let Some(attempt) = &how.attempt
        && !out.is_empty()
    {
        let handed: Vec<(&str, &str)> = out
            .iter()
            .map(|m| (m.message_id.as_str(), m.receipt_token.as_str()))
            .collect();
        sqlx::query(
            "INSERT INTO sqs_receive_attempts (queue_id, attempt_id, messages, expires_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (queue_id, attempt_id) \
             DO UPDATE SET messages = excluded.messages, expires_at_ms = excluded.expires_at_ms",
        )
        .bind(queue_id)
        .bind(attempt)
        .bind(serde_json::to_string(&handed).expect("serializable"))
        .bind(now_ms + RECEIVE_ATTEMPT_WINDOW_MS)
        .execute(&mut *conn)
        .await?;
    }
    bill_receive(meters, billed, &out, now_ms);
    Ok(out)
}

/// A standard queue's receive: over-received messages to the dead-letter queue, then
/// up to `max` visible ones hidden under the receive's token, in two statements. The
/// messages are picked once, in a materialized CTE: as a subquery of the UPDATE,
/// Postgres may run `LIMIT ... SKIP LOCKED` again per row and take more than `max`.
async fn take_any(
    conn: &mut sqlx::AnyConnection,
    queue_id: i64,
    how: &ReceiveInput,
) -> Result<Vec<Received>, CatalogError> {
    let lock = if how.postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let visible = "queue_id = $1 AND visible_at_ms <= $2 AND expires_at_ms > $2";
    if let Some(r) = how.redrive {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH picked AS MATERIALIZED (SELECT message_id FROM sqs_messages \
             WHERE {visible} AND receive_count >= $3 \
             ORDER BY visible_at_ms, sent_at_ms LIMIT {REDRIVE_PER_RECEIVE_MAX}{lock}) \
             UPDATE sqs_messages SET queue_id = $4, visible_at_ms = $2, receipt_token = NULL, \
             dead_letter_source_id = $1 \
             WHERE queue_id = $1 AND message_id IN (SELECT message_id FROM picked)"
        )))
        .bind(queue_id)
        .bind(how.now_ms)
        .bind(r.max_receives)
        .bind(r.dead_letter_queue_id)
        .execute(&mut *conn)
        .await?;
    }
    let under = how.redrive.map_or(i64::MAX, |r| r.max_receives);
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH picked AS MATERIALIZED (SELECT message_id FROM sqs_messages \
         WHERE {visible} AND receive_count < $5 \
         ORDER BY visible_at_ms, sent_at_ms LIMIT $6{lock}) \
         UPDATE sqs_messages SET visible_at_ms = $3, receive_count = receive_count + 1, \
         first_received_at_ms = COALESCE(first_received_at_ms, $2), receipt_token = $4 \
         WHERE queue_id = $1 AND message_id IN (SELECT message_id FROM picked) \
         RETURNING {RECEIVED_COLUMNS}"
    )))
    .bind(queue_id)
    .bind(how.now_ms)
    .bind(how.now_ms + how.visibility_ms)
    .bind(&how.token)
    .bind(under)
    .bind(how.max)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(received_from_row).collect()
}

/// A FIFO queue's receive: in sequence order, from groups with nothing in flight;
/// over-received messages go to the dead-letter queue as they come.
async fn take_in_order(
    conn: &mut sqlx::AnyConnection,
    queue_id: i64,
    how: &ReceiveInput,
) -> Result<Vec<Received>, CatalogError> {
    let now_ms = how.now_ms;
    let mut out = Vec::new();
    // Moved messages make room; a bounded number of rounds finds the rest.
    for _ in 0..4 {
        let want = how.max - out.len() as i64;
        if want <= 0 {
            break;
        }
        let rows = sqlx::query(
            "SELECT message_id, receive_count FROM sqs_messages m \
             WHERE queue_id = $1 AND visible_at_ms <= $2 AND expires_at_ms > $2 \
             AND NOT EXISTS (SELECT 1 FROM sqs_messages f WHERE f.queue_id = m.queue_id \
             AND f.group_id = m.group_id AND f.visible_at_ms > $2 AND f.receive_count > 0 \
             AND f.expires_at_ms > $2) \
             ORDER BY seq LIMIT $3",
        )
        .bind(queue_id)
        .bind(now_ms)
        .bind(want)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            break;
        }
        let mut moved = 0;
        for row in &rows {
            let message_id: String = row.try_get("message_id")?;
            let count: i64 = row.try_get("receive_count")?;
            if let Some(r) = how.redrive
                && count >= r.max_receives
            {
                sqlx::query(
                    "UPDATE sqs_messages SET queue_id = $3, visible_at_ms = $4, \
                     receipt_token = NULL, dead_letter_source_id = $1 \
                     WHERE queue_id = $1 AND message_id = $2",
                )
                .bind(queue_id)
                .bind(&message_id)
                .bind(r.dead_letter_queue_id)
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
                moved += 1;
                continue;
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE sqs_messages SET visible_at_ms = $3, receive_count = receive_count + 1, \
                 first_received_at_ms = COALESCE(first_received_at_ms, $4), receipt_token = $5 \
                 WHERE queue_id = $1 AND message_id = $2 RETURNING {RECEIVED_COLUMNS}"
            )))
            .bind(queue_id)
            .bind(&message_id)
            .bind(now_ms + how.visibility_ms)
            .bind(now_ms)
            .bind(&how.token)
            .fetch_one(&mut *conn)
            .await?;
            out.push(received_from_row(&row)?);
        }
        if moved == 0 {
            break;
        }
    }
    Ok(out)
}

/// Bills a receive that handed messages out, in its transaction.
fn bill_receive(
    meters: &mut Meters,
    billed: Option<(Billed<'_>, PayloadOf)>,
    out: &[Received],
    now_ms: i64,
) {
    if let Some((billed, payload)) = billed
        && !out.is_empty()
    {
        meters.add(
            billed.account_id,
            billed.queue_name,
            Metric::SqsRequests,
            billed_requests(payload(out)),
            now_ms,
        );
    }
}

/// What the receive attempt `attempt` handed out, hidden again until `visible_at_ms`
/// under the same receipt tokens; `None` when the attempt is unknown or past its
/// window, or when any of its messages was deleted or received again since (then
/// the retry is a receive of its own).
async fn repeat_receive_attempt(
    conn: &mut sqlx::AnyConnection,
    queue_id: i64,
    attempt: &str,
    visible_at_ms: i64,
    now_ms: i64,
) -> Result<Option<Vec<Received>>, CatalogError> {
    let row = sqlx::query(
        "SELECT messages FROM sqs_receive_attempts \
         WHERE queue_id = $1 AND attempt_id = $2 AND expires_at_ms > $3",
    )
    .bind(queue_id)
    .bind(attempt)
    .bind(now_ms)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let handed: Vec<(String, String)> =
        serde_json::from_str(&row.try_get::<String, _>("messages")?).map_err(|_| {
            CatalogError::Corrupt {
                what: format!("receive attempt {attempt} of queue {queue_id}"),
            }
        })?;
    let mut unchanged = 0;
    for (message_id, token) in &handed {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM sqs_messages WHERE queue_id = $1 AND message_id = $2 \
             AND receipt_token = $3 AND expires_at_ms > $4",
        )
        .bind(queue_id)
        .bind(message_id)
        .bind(token)
        .bind(now_ms)
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?;
        unchanged += n;
    }
    if unchanged != handed.len() as i64 {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(handed.len());
    for (message_id, _) in &handed {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE sqs_messages SET visible_at_ms = $3 WHERE queue_id = $1 AND message_id = $2 \
             RETURNING {RECEIVED_COLUMNS}"
        )))
        .bind(queue_id)
        .bind(message_id)
        .bind(visible_at_ms)
        .fetch_one(&mut *conn)
        .await?;
        out.push(received_from_row(&row)?);
    }
    Ok(Some(out))
}

/// Deletes by handle and bills the request (`Catalog::delete_sqs_messages`).
async fn delete_on(
    conn: &mut sqlx::AnyConnection,
    queue_id: i64,
    handles: &[(String, String)],
) -> Result<(), CatalogError> {
    if !handles.is_empty() {
        let each: Vec<String> = (0..handles.len())
            .map(|i| {
                format!(
                    "(message_id = ${} AND receipt_token = ${})",
                    2 * i + 2,
                    2 * i + 3
                )
            })
            .collect();
        let sql = format!(
            "DELETE FROM sqs_messages WHERE queue_id = $1 AND ({})",
            each.join(" OR ")
        );
        let mut delete = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(queue_id);
        for (message_id, token) in handles {
            delete = delete.bind(message_id).bind(token);
        }
        delete.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `Catalog::change_sqs_visibility` on a connection in a transaction.
async fn change_visibility_on(
    conn: &mut sqlx::AnyConnection,
    queue_id: i64,
    message_id: &str,
    token: &str,
    now_ms: i64,
    visible_at_ms: i64,
) -> Result<HandleOutcome, CatalogError> {
    let row = sqlx::query(
        "SELECT receipt_token, visible_at_ms, receive_count FROM sqs_messages \
         WHERE queue_id = $1 AND message_id = $2",
    )
    .bind(queue_id)
    .bind(message_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(HandleOutcome::Gone);
    };
    let current: Option<String> = row.try_get("receipt_token")?;
    let visible_at: i64 = row.try_get("visible_at_ms")?;
    if current.as_deref() != Some(token) {
        return Ok(HandleOutcome::Stale);
    }
    if visible_at <= now_ms {
        return Ok(HandleOutcome::NotInFlight);
    }
    sqlx::query(
        "UPDATE sqs_messages SET visible_at_ms = $3 WHERE queue_id = $1 AND message_id = $2",
    )
    .bind(queue_id)
    .bind(message_id)
    .bind(visible_at_ms)
    .execute(&mut *conn)
    .await?;
    Ok(HandleOutcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqs::QueueCounts;
    use crate::sqs::tests::message;

    #[tokio::test]
    async fn concurrent_receives_hand_each_message_out_once_and_concurrent_deletes_all_land() {
        let dir = tempfile::tempdir().unwrap();
        for catalog in crate::testing::catalogs(dir.path()).await {
            let (q, _) = catalog
                .create_sqs_queue("111122223333", "work", "{}", "{}", 1_000)
                .await
                .unwrap();
            let mut sends = tokio::task::JoinSet::new();
            for n in 0..30 {
                let catalog = catalog.clone();
                sends.spawn(async move {
                    let batch: Vec<NewMessage> = (0..5)
                        .map(|i| message(&format!("m{n}-{i}"), 1_000))
                        .collect();
                    catalog
                        .send_sqs_messages(q.id, &batch, billed_static(), 1, 1_000)
                        .await
                });
            }
            while let Some(sent) = sends.join_next().await {
                assert_eq!(sent.unwrap().unwrap().len(), 5);
            }
            let mut receives = tokio::task::JoinSet::new();
            for _ in 0..20 {
                let catalog = catalog.clone();
                receives.spawn(async move {
                    let mut token = || {
                        let mut b = [0u8; 8];
                        aws_lc_rs::rand::fill(&mut b).unwrap();
                        format!("{b:02x?}")
                    };
                    let how = ReceiveOptions {
                        now_ms: 2_000,
                        max: 10,
                        visibility_ms: 30_000,
                        redrive: None,
                        fifo: false,
                        attempt: None,
                        billed: None,
                    };
                    catalog.receive_sqs_messages(q.id, how, &mut token).await
                });
            }
            let mut handed = Vec::new();
            while let Some(got) = receives.join_next().await {
                handed.extend(got.unwrap().unwrap());
            }
            let mut ids: Vec<&str> = handed.iter().map(|m| m.message_id.as_str()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!((handed.len(), ids.len()), (150, 150), "each message once");
            let mut deletes = tokio::task::JoinSet::new();
            for chunk in handed.chunks(10) {
                let catalog = catalog.clone();
                let handles: Vec<(String, String)> = chunk
                    .iter()
                    .map(|m| (m.message_id.clone(), m.receipt_token.clone()))
                    .collect();
                deletes.spawn(async move {
                    catalog
                        .delete_sqs_messages(q.id, &handles, billed_static(), 3_000)
                        .await
                });
            }
            while let Some(done) = deletes.join_next().await {
                done.unwrap().unwrap();
            }
            let counts = catalog.sqs_queue_counts(q.id, 3_000).await.unwrap();
            assert_eq!(counts, QueueCounts::default());
            // Billed once per send and per delete, the writes' meters summed per group.
            let usage = catalog
                .usage_report(
                    "111122223333",
                    0,
                    3_600_000,
                    3_000,
                    &crate::billing::PriceList::default(),
                )
                .await
                .unwrap();
            let requests: rust_decimal::Decimal = usage
                .iter()
                .filter(|l| l.metric == Metric::SqsRequests && l.stream == "work")
                .map(|l| l.quantity)
                .sum();
            assert_eq!(requests, rust_decimal::Decimal::from(30 + 15));
        }
    }

    fn billed_static() -> Billed<'static> {
        Billed {
            account_id: "111122223333",
            queue_name: "work",
        }
    }
}
