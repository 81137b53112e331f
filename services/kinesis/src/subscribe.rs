//! SubscribeToShard: enhanced fan-out over an `application/vnd.amazon.eventstream`
//! response. The first frame is `initial-response`; then a `SubscribeToShardEvent`
//! carries each batch of records (or, at least every second, none) with the sequence
//! number to continue after, until five minutes have passed, the client goes away, or
//! a closed shard has been read to its end (that last event names its ChildShards).
//!
//! Each subscription reads its shard on its own, paced to 2 MiB/s (enhanced fan-out's
//! per-consumer, per-shard throughput), and meters the bytes it delivers. A consumer
//! holds one subscription per shard at a time in this process (`ResourceInUse` for a
//! second one); several data-plane processes do not coordinate that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use protocol::eventstream;
use protocol::model::*;
use protocol::wire::Format;
use protocol::{ApiError, ErrorCode, SequenceNumber, validate};
use tokio::sync::mpsc;

use crate::state::{Kinesis, SUBSCRIPTIONS_MAX, api};
use edge::Caller;

/// Bytes one subscription delivers per second, at most.
const BYTES_PER_SECOND: u64 = 2 * 1024 * 1024;
/// Bytes and records one event carries at most.
const EVENT_BYTES_MAX: usize = 1024 * 1024;
const EVENT_RECORDS_MAX: usize = 10_000;
// An event's records, base64-encoded (4/3) with their framing, fit in one event-stream
// message.
const _: () = assert!(EVENT_BYTES_MAX * 2 < eventstream::MESSAGE_BYTES_MAX);
/// How long an idle subscription waits before it looks again, and at most between
/// events.
const IDLE_POLL: Duration = Duration::from_millis(200);
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How often a subscription looks whether its consumer is still registered.
const CONSUMER_CHECK: Duration = Duration::from_secs(1);

/// Removes its subscription from the open set when the subscription ends.
struct Held {
    state: Arc<Kinesis>,
    key: (i64, i64, u64),
}

impl Drop for Held {
    fn drop(&mut self) {
        self.state.subscriptions.release(&self.key);
    }
}

/// Checks a SubscribeToShard request and starts its subscription; errors before the
/// first frame are ordinary error responses.
pub async fn start(
    state: Arc<Kinesis>,
    caller: &Caller,
    format: Format,
    body: &[u8],
) -> Result<Body, ApiError> {
    let input: SubscribeToShardInput = format.decode(body)?;
    let arn_text = validate::required(input.consumer_arn.clone(), "consumerARN")?;
    let shard_text = validate::required(input.shard_id.clone(), "shardId")?;
    validate::shard_id(&shard_text, "shardId")?;
    let position = validate::required(input.starting_position, "startingPosition")?;
    let kind = validate::required(position.position_type.clone(), "startingPosition.type")?;
    let starting = crate::records::start_kind_and_sequence(
        &kind,
        position.sequence_number.as_deref(),
        "startingPosition.type",
        "startingPosition.sequenceNumber",
    )?;
    let consumer_input = ConsumerInput {
        stream_arn: None,
        consumer_name: None,
        consumer_arn: Some(arn_text.clone()),
    };
    let (stream_name, consumer_name, created_s) = crate::consumers::named_consumer(
        &state,
        caller,
        "kinesis:SubscribeToShard",
        &consumer_input,
        false,
    )
    .await?;
    let consumer =
        crate::consumers::find(&state, caller, &stream_name, &consumer_name, created_s).await?;
    if consumer.status(state.clock.now_ms()) != "ACTIVE" {
        return Err(ApiError::new(
            ErrorCode::ResourceInUse,
            format!("Consumer {arn_text} is not ACTIVE."),
        ));
    }
    let stream = state
        .catalog
        .load_stream(caller.account_id.as_str(), &stream_name)
        .await
        .map_err(api)?;
    crate::state::writable(&stream)?;
    let shard = crate::state::shard_of(&stream, &shard_text)?;
    let from =
        crate::records::start_counter(&state, &stream, shard, &kind, starting, position.timestamp)
            .await?;
    state
        .keyring
        .check_stream_key(&stream.account_id, stream.master_key_id.as_deref())
        .await?;
    let key = (consumer.id, stream.id, shard.ordinal);
    {
        let mut open = state.subscriptions.lock();
        if open.len() >= SUBSCRIPTIONS_MAX {
            return Err(ApiError::new(
                ErrorCode::LimitExceeded,
                "Too many subscriptions are open on this server; retry later.",
            ));
        }
        if !open.insert(key) {
            return Err(ApiError::new(
                ErrorCode::ResourceInUse,
                format!(
                    "Another active subscription exists for consumer {arn_text} on shard {shard_text}."
                ),
            ));
        }
    }
    let held = Held {
        state: state.clone(),
        key,
    };
    let (tx, rx) = mpsc::channel::<Result<bytes::Bytes, std::convert::Infallible>>(2);
    let subscription = Subscription {
        state: state.clone(),
        consumer_id: consumer.id,
        consumer_arn: arn_text.clone(),
        consumer_checked: Instant::now(),
        account: caller.account_id.to_string(),
        stream_id: stream.id,
        stream_name: stream.name.clone(),
        shard_level_metrics: stream.shard_level_metrics.clone(),
        retention_hours: stream.retention_hours,
        ordinal: shard.ordinal,
        shard_created_ms: shard.created_at_ms,
        next: from,
        format,
        tx,
    };
    tokio::spawn(async move {
        let _held = held;
        subscription.run().await;
    });
    Ok(Body::from_stream(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))
}

struct Subscription {
    state: Arc<Kinesis>,
    /// The consumer the subscription is for: a subscription ends once it is
    /// deregistered (looked up at most every `CONSUMER_CHECK`).
    consumer_id: i64,
    consumer_arn: String,
    consumer_checked: Instant,
    account: String,
    stream_id: i64,
    stream_name: String,
    /// The stream's shard-level metrics as the subscription began.
    shard_level_metrics: String,
    retention_hours: i64,
    ordinal: u64,
    /// When the shard was made (its sequence numbers carry it).
    shard_created_ms: i64,
    next: u64,
    format: Format,
    tx: mpsc::Sender<Result<bytes::Bytes, std::convert::Infallible>>,
}

impl Subscription {
    fn content_type(&self) -> &'static str {
        self.format.content_type()
    }

    /// Sends a frame; `false` once the client has gone.
    async fn send(&self, frame: Vec<u8>) -> bool {
        self.tx.send(Ok(frame.into())).await.is_ok()
    }

    async fn run(mut self) {
        let ends = Instant::now() + Duration::from_millis(protocol::limits::SUBSCRIPTION_MS);
        if !self
            .send(eventstream::event(
                "initial-response",
                self.content_type(),
                b"{}",
            ))
            .await
        {
            return;
        }
        let mut last_event = Instant::now();
        while Instant::now() < ends {
            match self.step(&mut last_event).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    // The stream or consumer gone, its key disabled: the error as Kinesis
                    // names it; anything else is an internal failure, logged here.
                    let (kind, message) = if e.code == ErrorCode::InternalFailure {
                        tracing::error!(error = %e, stream = %self.stream_name, "subscription failed");
                        (
                            "InternalFailureException",
                            "Internal service failure.".to_string(),
                        )
                    } else {
                        (e.code.type_name(), e.message)
                    };
                    let body = self
                        .format
                        .encode(&serde_json::json!({ "message": message }));
                    let _ = self
                        .send(eventstream::exception(kind, self.content_type(), &body))
                        .await;
                    return;
                }
            }
        }
    }

    /// One read and, when due, one event; `false` when the subscription is over.
    async fn step(&mut self, last_event: &mut Instant) -> Result<bool, ApiError> {
        let state = &self.state;
        if self.consumer_checked.elapsed() >= CONSUMER_CHECK {
            self.consumer_checked = Instant::now();
            if !state
                .catalog
                .consumer_exists(self.consumer_id)
                .await
                .map_err(api)?
            {
                return Err(ApiError::new(
                    ErrorCode::ResourceNotFound,
                    format!("Consumer {} not found.", self.consumer_arn),
                ));
            }
        }
        let closed = state
            .catalog
            .shard_closed(self.stream_id, self.ordinal)
            .await
            .map_err(api)?
            .ok_or_else(|| ApiError::stream_not_found(&self.stream_name, &self.account))?;
        let now = state.clock.now_ms();
        let read = match storage::reader::read_shard(
            &state.catalog,
            &state.store,
            &state.keyring,
            &self.account,
            self.stream_id,
            self.ordinal,
            self.next,
            EVENT_RECORDS_MAX,
            EVENT_BYTES_MAX,
            now - self.retention_hours * 3_600_000,
        )
        .await
        {
            Ok(read) => read,
            // A stream deleted between the look at its shard and the read: not found,
            // as Kinesis ends such a subscription.
            Err(e) => {
                let gone = matches!(
                    state
                        .catalog
                        .shard_closed(self.stream_id, self.ordinal)
                        .await,
                    Ok(None)
                );
                return Err(if gone {
                    ApiError::stream_not_found(&self.stream_name, &self.account)
                } else {
                    crate::state::read_error(&e)
                });
            }
        };
        let at_end = closed && read.at_tip;
        if read.records.is_empty() && !at_end && last_event.elapsed() < HEARTBEAT {
            // A client that went away ends the subscription now, not at the next event.
            tokio::select! {
                _ = tokio::time::sleep(IDLE_POLL) => return Ok(true),
                _ = self.tx.closed() => return Ok(false),
            }
        }
        let bytes: u64 = read
            .records
            .iter()
            .map(|r| r.record.data.len() as u64)
            .sum();
        let count = read.records.len() as u64;
        let millis_behind_latest = match (read.at_tip, read.records.last()) {
            (true, _) | (false, None) => 0,
            (false, Some(last)) => (now - last.record.arrival_ms).max(0),
        };
        self.next = read.next_counter;
        let event = SubscribeToShardEvent {
            continuation_sequence_number: (!at_end).then(|| {
                // The last record's own number when the event has records; else the
                // position after the last record read.
                match read.records.last() {
                    Some(last) => SequenceNumber::record(
                        self.ordinal,
                        last.counter,
                        self.shard_created_ms,
                        last.record.arrival_ms,
                    ),
                    None => SequenceNumber::position(
                        self.ordinal,
                        self.next.saturating_sub(1),
                        self.shard_created_ms,
                    ),
                }
                .to_string()
            }),
            records: crate::records::records_out(self.ordinal, self.shard_created_ms, read.records),
            millis_behind_latest,
            child_shards: if at_end {
                Some(crate::records::child_shards(state, self.stream_id, self.ordinal).await?)
            } else {
                None
            },
        };
        let payload = self.format.encode(&event);
        if !self
            .send(eventstream::event(
                "SubscribeToShardEvent",
                self.content_type(),
                &payload,
            ))
            .await
        {
            return Ok(false);
        }
        *last_event = Instant::now();
        if bytes > 0 {
            storage::traffic::stream_traffic(
                storage::traffic::Direction::Out,
                &self.account,
                &self.stream_name,
                count,
                bytes,
            );
            let shard_metrics = crate::monitoring::ShardMetrics::new(
                &self.account,
                &self.stream_name,
                &self.shard_level_metrics,
                self.ordinal,
            );
            shard_metrics.traffic(false, count, bytes);
            shard_metrics.iterator_age(millis_behind_latest);
            // What was delivered is billed; a failed meter write is logged, and the
            // records were delivered all the same.
            if let Err(e) = state
                .catalog
                .meter_count_now(
                    &self.account,
                    &self.stream_name,
                    catalog::billing::Metric::EnhancedFanOutGib,
                    bytes,
                    now,
                )
                .await
            {
                tracing::error!(error = %e, "metering enhanced fan-out bytes failed");
            }
            // Paced to the per-subscription throughput.
            tokio::time::sleep(Duration::from_secs_f64(
                bytes as f64 / BYTES_PER_SECOND as f64,
            ))
            .await;
        }
        Ok(!at_end)
    }
}
