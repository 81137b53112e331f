//! Kinesis queues: CreateQueue, DescribeQueue, ListQueues, UpdateQueue, DeleteQueue,
//! ReceiveQueueRecords (long polling up to 20 s), AcknowledgeQueueRecords,
//! UpdateQueueRecordsVisibility and the dead-letter operations. A queue hands each
//! record of its ON_DEMAND streams to one receiver at a time and keeps it until it is
//! acknowledged (`catalog::queues`); records are read from the log like GetRecords
//! reads them, and a record past its stream's retention is no longer delivered.
//! Receipt handles are MACed under the server's iterator secret and name one delivery
//! (a later receive of the record makes the earlier handle stale).

use std::collections::BTreeMap;
use std::time::Duration;

use catalog::queues::{Delivery, Handle, HandleChange, QueueSettings, QueueStart};
use edge::{Caller, Resource};
use protocol::arn::{QueueArn, StreamArn};
use protocol::queues::*;
use protocol::wire::{Blob, Timestamp};
use protocol::{ApiError, ErrorCode, SequenceNumber, validate};
use storage::reader;

use crate::state::{Kinesis, api, open_page_token, page_token};

const VISIBILITY_DEFAULT_S: i64 = 30;
const VISIBILITY_MAX_S: i64 = 43_200;
const MAX_RECEIVE_COUNT_DEFAULT: i64 = 6;
const ENTRIES_MAX: usize = 10;
/// How often a long poll looks again.
const POLL_EVERY: Duration = Duration::from_millis(200);
/// Long polls one process keeps waiting at once; past this a receive answers at once.
const LONG_POLLS_MAX: usize = 1_000;
static LONG_POLLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A place among the waiting long polls, given back when dropped.
struct LongPoll;

impl LongPoll {
    fn take() -> Option<LongPoll> {
        use std::sync::atomic::Ordering;
        let before = LONG_POLLS.fetch_add(1, Ordering::AcqRel);
        if before >= LONG_POLLS_MAX {
            LONG_POLLS.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(LongPoll)
    }
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        LONG_POLLS.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn queue_arn(region: &str, account: &str, name: &str) -> String {
    QueueArn::format(region, account, name)
}

/// A queue ARN's (account, name); a queue of another region is not found here.
fn parse_queue_arn(state: &Kinesis, text: Option<&str>) -> Result<(String, String), ApiError> {
    let arn = QueueArn::parse(validate::required(text, "queueARN")?)?;
    validate::string_length(&arn.queue_name, "queueName", 1, 128)?;
    if arn.region != state.config.region {
        return Err(not_found(&arn.queue_name, &arn.account_id));
    }
    Ok((arn.account_id, arn.queue_name))
}

fn not_found(name: &str, account: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("Queue {name} under account {account} not found."),
    )
}

async fn authorize_queue(
    state: &Kinesis,
    caller: &Caller,
    action: &str,
    account: &str,
    name: &str,
) -> Result<(), ApiError> {
    let arn = queue_arn(&state.config.region, account, name);
    // INVARIANT: Cedar decides before the queue is read; the platform forbids every
    // cross-tenant access, so `account` is the caller's below.
    state
        .authz
        .authorize(caller, action, Resource::Queue { account, arn: &arn })
        .await
}

fn settings(
    attributes: Option<&QueueAttributes>,
    current: Option<QueueSettings>,
) -> Result<QueueSettings, ApiError> {
    let mut out = current.unwrap_or(QueueSettings {
        visibility_timeout_s: VISIBILITY_DEFAULT_S,
        dead_letter: true,
        max_receive_count: MAX_RECEIVE_COUNT_DEFAULT,
    });
    let Some(attributes) = attributes else {
        return Ok(out);
    };
    if let Some(v) = attributes.visibility_timeout_seconds {
        validate::int_range(
            v,
            "queueAttributes.visibilityTimeoutSeconds",
            0,
            VISIBILITY_MAX_S,
        )?;
        out.visibility_timeout_s = v;
    }
    if let Some(dlq) = &attributes.dead_letter_configuration {
        match (dlq.target_type.as_str(), dlq.max_receive_count) {
            ("BUILT_IN", Some(max)) => {
                validate::int_range(
                    max,
                    "queueAttributes.deadLetterConfiguration.maxReceiveCount",
                    1,
                    1000,
                )?;
                out.dead_letter = true;
                out.max_receive_count = max;
            }
            ("BUILT_IN", None) => {
                return Err(ApiError::invalid_argument(
                    "A DeadLetterConfiguration of TargetType BUILT_IN needs a MaxReceiveCount.",
                ));
            }
            ("NONE", _) => out.dead_letter = false,
            (other, _) => {
                return Err(ApiError::validation(
                    other,
                    "queueAttributes.deadLetterConfiguration.targetType",
                    "Member must satisfy enum value set: [BUILT_IN, NONE]",
                ));
            }
        }
    }
    Ok(out)
}

fn attributes_of(settings: QueueSettings) -> QueueAttributes {
    QueueAttributes {
        visibility_timeout_seconds: Some(settings.visibility_timeout_s),
        dead_letter_configuration: Some(if settings.dead_letter {
            DeadLetterConfiguration {
                target_type: "BUILT_IN".into(),
                max_receive_count: Some(settings.max_receive_count),
            }
        } else {
            DeadLetterConfiguration {
                target_type: "NONE".into(),
                max_receive_count: None,
            }
        }),
    }
}

fn describe_of(state: &Kinesis, queue: &catalog::queues::Queue) -> QueueDescription {
    QueueDescription {
        queue_name: queue.name.clone(),
        queue_arn: queue_arn(&state.config.region, &queue.account_id, &queue.name),
        queue_status: "ACTIVE",
        queue_creation_timestamp: Timestamp {
            epoch_ms: queue.created_at_ms,
        },
        stream_configuration_list: queue
            .streams
            .iter()
            .map(|s| QueueStreamConfiguration {
                stream_arn: StreamArn::format(
                    &state.config.region,
                    &queue.account_id,
                    &s.stream_name,
                ),
                starting_position: Some(QueueStartingPosition {
                    kind: s.start.as_str().to_string(),
                    timestamp: match s.start {
                        QueueStart::AtTimestamp(at) => Some(Timestamp { epoch_ms: at }),
                        _ => None,
                    },
                }),
            })
            .collect(),
        queue_attributes: attributes_of(queue.settings),
    }
}

pub(crate) async fn create(
    state: &Kinesis,
    caller: &Caller,
    input: CreateQueueInput,
) -> Result<QueueDescriptionOutput, ApiError> {
    let name = validate::required(input.queue_name.as_deref(), "queueName")?;
    validate::consumer_name(name).map_err(|_| {
        ApiError::validation(
            name,
            "queueName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length 1 to 128",
        )
    })?;
    let configs = validate::required(
        input.stream_configuration_list.as_ref(),
        "streamConfigurationList",
    )?;
    if configs.is_empty() {
        return Err(ApiError::validation(
            "[]",
            "streamConfigurationList",
            "Member must have length greater than or equal to 1",
        ));
    }
    let account = caller.account_id.clone();
    authorize_queue(state, caller, "kinesis:CreateQueue", &account, name).await?;
    let mut streams = Vec::with_capacity(configs.len());
    for config in configs {
        let arn = StreamArn::parse(&config.stream_arn)?;
        if arn.region != state.config.region || arn.account_id != account {
            // Another tenant's stream: Cedar answers (the platform forbids it).
            let stream_arn = config.stream_arn.as_str();
            state
                .authz
                .authorize(
                    caller,
                    "kinesis:CreateQueue",
                    Resource::Stream {
                        account: &arn.account_id,
                        arn: stream_arn,
                        name: &arn.stream_name,
                    },
                )
                .await?;
            return Err(ApiError::stream_not_found(
                &arn.stream_name,
                &arn.account_id,
            ));
        }
        state
            .authz
            .authorize(
                caller,
                "kinesis:CreateQueue",
                Resource::Stream {
                    account: &account,
                    arn: &config.stream_arn,
                    name: &arn.stream_name,
                },
            )
            .await?;
        let start = match &config.starting_position {
            None => QueueStart::Latest,
            Some(p) => match (p.kind.as_str(), p.timestamp) {
                ("LATEST", _) => QueueStart::Latest,
                ("TRIM_HORIZON", _) => QueueStart::TrimHorizon,
                ("AT_TIMESTAMP", Some(at)) => QueueStart::AtTimestamp(at.epoch_ms),
                ("AT_TIMESTAMP", None) => {
                    return Err(ApiError::invalid_argument(
                        "A StartingPosition of type AT_TIMESTAMP needs a Timestamp.",
                    ));
                }
                (other, _) => {
                    return Err(ApiError::validation(
                        other,
                        "streamConfigurationList.member.startingPosition.type",
                        "Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
                    ));
                }
            },
        };
        streams.push((arn.stream_name, start));
    }
    let settings = settings(input.queue_attributes.as_ref(), None)?;
    let tags: Vec<(String, String)> = input.tags.unwrap_or_default().into_iter().collect();
    if tags.len() > 50 {
        return Err(ApiError::invalid_argument("A queue takes at most 50 tags."));
    }
    for (key, value) in &tags {
        validate::string_length(key, "tags.key", 1, 128)?;
        validate::string_length(value, "tags.value", 0, 256)?;
    }
    let queue = state
        .catalog
        .create_queue(
            &account,
            name,
            &streams,
            settings,
            &tags,
            state.clock.now_ms(),
        )
        .await
        .map_err(api)?;
    Ok(QueueDescriptionOutput {
        queue_description: describe_of(state, &queue),
    })
}

pub(crate) async fn describe(
    state: &Kinesis,
    caller: &Caller,
    input: QueueArnInput,
) -> Result<QueueDescriptionOutput, ApiError> {
    let (account, name) = parse_queue_arn(state, input.queue_arn.as_deref())?;
    authorize_queue(state, caller, "kinesis:DescribeQueue", &account, &name).await?;
    let queue = state
        .catalog
        .find_queue(&account, &name)
        .await
        .map_err(api)?;
    Ok(QueueDescriptionOutput {
        queue_description: describe_of(state, &queue),
    })
}

pub(crate) async fn update(
    state: &Kinesis,
    caller: &Caller,
    input: UpdateQueueInput,
) -> Result<QueueDescriptionOutput, ApiError> {
    let (account, name) = parse_queue_arn(state, input.queue_arn.as_deref())?;
    let attributes = validate::required(input.queue_attributes.as_ref(), "queueAttributes")?;
    authorize_queue(state, caller, "kinesis:UpdateQueue", &account, &name).await?;
    let queue = state
        .catalog
        .find_queue(&account, &name)
        .await
        .map_err(api)?;
    let settings = settings(Some(attributes), Some(queue.settings))?;
    state
        .catalog
        .update_queue(&account, &name, settings)
        .await
        .map_err(api)?;
    let queue = state
        .catalog
        .find_queue(&account, &name)
        .await
        .map_err(api)?;
    Ok(QueueDescriptionOutput {
        queue_description: describe_of(state, &queue),
    })
}

pub(crate) async fn delete(
    state: &Kinesis,
    caller: &Caller,
    input: QueueArnInput,
) -> Result<(), ApiError> {
    let (account, name) = parse_queue_arn(state, input.queue_arn.as_deref())?;
    authorize_queue(state, caller, "kinesis:DeleteQueue", &account, &name).await?;
    state
        .catalog
        .delete_queue(&account, &name)
        .await
        .map_err(api)
}

pub(crate) async fn list(
    state: &Kinesis,
    caller: &Caller,
    input: ListQueuesInput,
) -> Result<ListQueuesOutput, ApiError> {
    let account = caller.account_id.clone();
    state
        .authz
        .authorize(
            caller,
            "kinesis:ListQueues",
            Resource::Tenant { account: &account },
        )
        .await?;
    let limit = input.max_results.unwrap_or(100);
    validate::int_range(limit, "maxResults", 1, 10_000)?;
    let after = match input.next_token.as_deref() {
        Some(token) => Some(open_page_token("queues", token)?),
        None => None,
    };
    let filter: Vec<String> = input
        .stream_filter
        .unwrap_or_default()
        .into_iter()
        .map(|f| f.stream_arn)
        .collect();
    let mut summaries = Vec::new();
    let mut last = after.clone();
    let mut more = false;
    // Pages of the account's queues until `limit` pass the filter.
    loop {
        let page = state
            .catalog
            .list_queues(&account, last.as_deref(), limit + 1)
            .await
            .map_err(api)?;
        let exhausted = page.len() as i64 <= limit;
        for queue in page {
            if summaries.len() as i64 == limit {
                more = true;
                break;
            }
            last = Some(queue.name.clone());
            let streams: Vec<QueueStreamIdentifier> = queue
                .streams
                .iter()
                .map(|s| QueueStreamIdentifier {
                    stream_arn: StreamArn::format(&state.config.region, &account, &s.stream_name),
                    stream_creation_timestamp: Timestamp {
                        epoch_ms: s.stream_created_at_ms,
                    },
                })
                .collect();
            if !filter.is_empty() && !streams.iter().any(|s| filter.contains(&s.stream_arn)) {
                continue;
            }
            summaries.push(QueueSummary {
                queue_name: queue.name.clone(),
                queue_arn: queue_arn(&state.config.region, &account, &queue.name),
                queue_status: "ACTIVE",
                queue_creation_timestamp: Timestamp {
                    epoch_ms: queue.created_at_ms,
                },
                streams,
            });
        }
        if more || exhausted {
            break;
        }
    }
    Ok(ListQueuesOutput {
        next_token: if more {
            last.map(|name| page_token("queues", &name))
        } else {
            None
        },
        queue_summaries: summaries,
    })
}

fn receipt_body(d: &Handle, dead: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(33);
    body.push(u8::from(dead));
    body.extend_from_slice(&d.stream_id.to_le_bytes());
    body.extend_from_slice(&d.shard_ordinal.to_le_bytes());
    body.extend_from_slice(&d.counter.to_le_bytes());
    body.extend_from_slice(&d.receive_count.to_le_bytes());
    body
}

fn open_handle(body: &[u8]) -> Option<(Handle, bool)> {
    if body.len() != 33 {
        return None;
    }
    let field = |r: std::ops::Range<usize>| <[u8; 8]>::try_from(&body[r]).expect("8 bytes");
    Some((
        Handle {
            stream_id: i64::from_le_bytes(field(1..9)),
            shard_ordinal: u64::from_le_bytes(field(9..17)),
            counter: u64::from_le_bytes(field(17..25)),
            receive_count: i64::from_le_bytes(field(25..33)),
        },
        body[0] == 1,
    ))
}

/// ReceiveQueueRecords, or ReceiveDeadLetterQueueRecords with `dead`.
pub(crate) async fn receive(
    state: &Kinesis,
    caller: &Caller,
    input: ReceiveQueueRecordsInput,
    dead: bool,
) -> Result<ReceiveQueueRecordsOutput, ApiError> {
    let (account, name) = parse_queue_arn(state, input.queue_arn.as_deref())?;
    let limit = input.limit.unwrap_or(10);
    validate::int_range(limit, "limit", 1, 10)?;
    if let Some(wait) = input.wait_time_seconds {
        validate::int_range(wait, "waitTimeSeconds", 1, 20)?;
    }
    if let Some(v) = input.visibility_timeout_seconds {
        validate::int_range(v, "visibilityTimeoutSeconds", 0, VISIBILITY_MAX_S)?;
    }
    let action = if dead {
        "kinesis:ReceiveDeadLetterQueueRecords"
    } else {
        "kinesis:ReceiveQueueRecords"
    };
    authorize_queue(state, caller, action, &account, &name).await?;
    // A long poll holds one of a bounded number of places; without one it answers at
    // once, as a receive without WaitTimeSeconds does.
    let place = match input.wait_time_seconds {
        Some(_) => LongPoll::take(),
        None => None,
    };
    let wait = match &place {
        Some(_) => input.wait_time_seconds.unwrap_or(0).unsigned_abs(),
        None => 0,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let deliveries = state
            .catalog
            .receive_queue(
                &account,
                &name,
                limit,
                input.visibility_timeout_seconds.map(|s| s * 1000),
                dead,
                state.clock.now_ms(),
            )
            .await
            .map_err(api)?;
        let records = read_deliveries(state, &account, &name, deliveries, dead).await?;
        if !records.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(ReceiveQueueRecordsOutput {
                queue_records: records,
            });
        }
        tokio::time::sleep(POLL_EVERY.min(deadline - tokio::time::Instant::now())).await;
    }
}

/// The records the deliveries name, read from the log; a delivery whose record is
/// gone with retention is forgotten.
async fn read_deliveries(
    state: &Kinesis,
    account: &str,
    queue: &str,
    deliveries: Vec<Delivery>,
    dead: bool,
) -> Result<Vec<QueueRecord>, ApiError> {
    let mut by_shard: BTreeMap<(i64, u64), Vec<&Delivery>> = BTreeMap::new();
    for d in &deliveries {
        by_shard
            .entry((d.stream_id, d.shard_ordinal))
            .or_default()
            .push(d);
    }
    let mut out = Vec::with_capacity(deliveries.len());
    let mut gone = Vec::new();
    for ((stream_id, ordinal), mut wanted) in by_shard {
        wanted.sort_by_key(|d| d.counter);
        let Some(target) = state
            .catalog
            .read_target(account, stream_id, ordinal)
            .await
            .map_err(api)?
        else {
            continue;
        };
        state
            .keyring
            .check_stream_key(account, target.master_key_id.as_deref())
            .await?;
        let first = wanted[0].counter;
        let span = (wanted[wanted.len() - 1].counter - first + 1) as usize;
        let read = reader::read_shard(
            &state.catalog,
            &state.store,
            &state.keyring,
            account,
            stream_id,
            ordinal,
            first,
            span,
            usize::MAX,
            wanted[0].retained_since_ms,
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "queue read failed");
            crate::state::read_error(&e)
        })?;
        let found: BTreeMap<u64, &storage::chunk::RecordOut> = read
            .records
            .iter()
            .map(|r| (r.counter, &r.record))
            .collect();
        for d in wanted {
            let handle = Handle {
                stream_id,
                shard_ordinal: ordinal,
                counter: d.counter,
                receive_count: d.receive_count,
            };
            match found.get(&d.counter) {
                Some(record) => out.push(QueueRecord {
                    receipt_handle: state.iterators.seal_receipt(
                        account,
                        queue,
                        &receipt_body(&handle, dead),
                    ),
                    record_id: format!(
                        "{stream_id:x}x{}",
                        SequenceNumber::position(ordinal, d.counter, 0).packed()
                    ),
                    partition_key: record.partition_key.clone(),
                    data: Blob(record.data.clone()),
                    approximate_arrival_timestamp: Timestamp {
                        epoch_ms: record.arrival_ms,
                    },
                    first_receive_timestamp: Timestamp {
                        epoch_ms: d.first_receive_ms,
                    },
                    receive_count: d.receive_count,
                }),
                None => gone.push(handle),
            }
        }
    }
    if !gone.is_empty() {
        state
            .catalog
            .change_queue_records(
                account,
                queue,
                &gone,
                HandleChange::Acknowledge,
                dead,
                state.clock.now_ms(),
            )
            .await
            .map_err(api)?;
    }
    Ok(out)
}

/// The per-entry operations: acknowledge, change visibility, restore.
pub(crate) async fn change(
    state: &Kinesis,
    caller: &Caller,
    input: HandleEntriesInput,
    action: &str,
    kind: HandleChange,
    dead: bool,
) -> Result<HandleEntriesOutput, ApiError> {
    let (account, name) = parse_queue_arn(state, input.queue_arn.as_deref())?;
    let entries = validate::required(input.entries.as_ref(), "entries")?;
    if entries.is_empty() || entries.len() > ENTRIES_MAX {
        return Err(ApiError::validation(
            entries.len(),
            "entries",
            "Member must have length between 1 and 10",
        ));
    }
    authorize_queue(state, caller, action, &account, &name).await?;
    let mut successful = Vec::new();
    let mut failed = Vec::new();
    // Each entry in the order given, its answer in the same order.
    for entry in entries {
        let receipt = validate::required(entry.receipt_handle.as_deref(), "receiptHandle")?;
        validate::string_length(receipt, "receiptHandle", 1, 1024)?;
        let change = match kind {
            HandleChange::Visibility(_) => {
                let v = validate::required(
                    entry.visibility_timeout_seconds,
                    "entries.member.visibilityTimeoutSeconds",
                )?;
                validate::int_range(
                    v,
                    "entries.member.visibilityTimeoutSeconds",
                    0,
                    VISIBILITY_MAX_S,
                )?;
                HandleChange::Visibility(v * 1000)
            }
            other => other,
        };
        let handle = match state
            .iterators
            .open_receipt(&account, &name, receipt)
            .as_deref()
            .and_then(open_handle)
        {
            Some((handle, was_dead)) if was_dead == dead => handle,
            _ => {
                failed.push(HandleFailure {
                    receipt_handle: receipt.to_string(),
                    error_code: "InvalidArgumentException",
                    error_message: "The receipt handle is not one this queue issued.".into(),
                });
                continue;
            }
        };
        let done = state
            .catalog
            .change_queue_records(
                &account,
                &name,
                &[handle],
                change,
                dead,
                state.clock.now_ms(),
            )
            .await
            .map_err(api)?;
        if done == [true] {
            successful.push(HandleSuccess {
                receipt_handle: receipt.to_string(),
            });
        } else {
            failed.push(HandleFailure {
                receipt_handle: receipt.to_string(),
                error_code: "ResourceNotFoundException",
                error_message: "The record was acknowledged, received again since, or is past its retention: this receipt handle is no longer valid.".into(),
            });
        }
    }
    Ok(HandleEntriesOutput { successful, failed })
}
