//! Enhanced fan-out consumers: RegisterStreamConsumer, DeregisterStreamConsumer,
//! DescribeStreamConsumer and ListStreamConsumers. Each is authorized on the consumer's
//! stream (`kinesis:<Action>` on the `Stream` entity; the schema has no Consumer type).

use catalog::consumers::Consumer;
use protocol::arn::{ConsumerArn, StreamArn};
use protocol::model::*;
use protocol::wire::Timestamp;
use protocol::{ApiError, ErrorCode, limits, validate};

use crate::state::{Kinesis, api, open_page_token, page_token};
use edge::Caller;

/// The caller's stream and consumer an input names, once Cedar allowed `action` on the
/// stream: by StreamARN and ConsumerName, or by ConsumerARN (whose creation time must
/// be the consumer's: an ARN of a consumer deregistered and registered again under the
/// same name names nothing).
pub(crate) async fn named_consumer(
    state: &Kinesis,
    caller: &Caller,
    action: &str,
    input: &ConsumerInput,
    register: bool,
) -> Result<(String, String, Option<i64>), ApiError> {
    let (stream_arn, consumer, created_s) =
        match (&input.stream_arn, &input.consumer_name, &input.consumer_arn) {
            (Some(stream), Some(name), None) => (stream.clone(), name.clone(), None),
            (None, None, Some(arn)) if !register => {
                let parsed = ConsumerArn::parse(arn)?;
                let stream = StreamArn::format(
                    &parsed.stream.region,
                    &parsed.stream.account_id,
                    &parsed.stream.stream_name,
                );
                (stream, parsed.consumer_name, Some(parsed.created_s))
            }
            _ if register => {
                let stream = validate::required(input.stream_arn.clone(), "streamARN")?;
                let name = validate::required(input.consumer_name.clone(), "consumerName")?;
                (stream, name, None)
            }
            _ => {
                return Err(ApiError::invalid_argument(
                    "Either ConsumerARN, or StreamARN and ConsumerName, must be given.",
                ));
            }
        };
    validate::consumer_name(&consumer)?;
    StreamArn::parse(&stream_arn)?;
    let stream = state
        .stream_name(
            caller,
            action,
            StreamRef {
                stream_name: None,
                stream_arn: Some(&stream_arn),
            },
        )
        .await?;
    Ok((stream, consumer, created_s))
}

/// The consumer, checked against the creation time its ARN carried.
pub(crate) async fn find(
    state: &Kinesis,
    caller: &Caller,
    stream: &str,
    consumer: &str,
    created_s: Option<i64>,
) -> Result<Consumer, ApiError> {
    let found = state
        .catalog
        .find_consumer(caller.account_id.as_str(), stream, consumer)
        .await
        .map_err(api)?;
    if created_s.is_some_and(|s| s != found.created_s()) {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Consumer {consumer} under stream {stream} under account {} not found.",
                caller.account_id.as_str()
            ),
        ));
    }
    Ok(found)
}

fn out(state: &Kinesis, caller: &Caller, stream: &str, c: &Consumer, now: i64) -> ConsumerOut {
    let stream_arn = StreamArn::format(&state.config.region, &caller.account_id, stream);
    ConsumerOut {
        consumer_name: c.name.clone(),
        consumer_arn: ConsumerArn::format(&stream_arn, &c.name, c.created_s()),
        consumer_status: c.status(now).to_string(),
        consumer_creation_timestamp: Timestamp {
            epoch_ms: c.created_at_ms,
        },
    }
}

pub async fn register(
    state: &Kinesis,
    caller: &Caller,
    input: ConsumerInput,
) -> Result<RegisterStreamConsumerOutput, ApiError> {
    let (stream, consumer, _) = named_consumer(
        state,
        caller,
        "kinesis:RegisterStreamConsumer",
        &input,
        true,
    )
    .await?;
    let now = state.clock.now_ms();
    let made = state
        .catalog
        .register_consumer(
            caller.account_id.as_str(),
            &stream,
            &consumer,
            now,
            now + state.config.stream_transition_ms as i64,
        )
        .await
        .map_err(api)?;
    Ok(RegisterStreamConsumerOutput {
        consumer: out(state, caller, &stream, &made, now),
    })
}

pub async fn deregister(
    state: &Kinesis,
    caller: &Caller,
    input: ConsumerInput,
) -> Result<Empty, ApiError> {
    let (stream, consumer, created_s) = named_consumer(
        state,
        caller,
        "kinesis:DeregisterStreamConsumer",
        &input,
        false,
    )
    .await?;
    find(state, caller, &stream, &consumer, created_s).await?;
    state
        .catalog
        .deregister_consumer(
            caller.account_id.as_str(),
            &stream,
            &consumer,
            state.clock.now_ms(),
        )
        .await
        .map_err(api)?;
    Ok(Empty {})
}

pub async fn describe(
    state: &Kinesis,
    caller: &Caller,
    input: ConsumerInput,
) -> Result<DescribeStreamConsumerOutput, ApiError> {
    let (stream, consumer, created_s) = named_consumer(
        state,
        caller,
        "kinesis:DescribeStreamConsumer",
        &input,
        false,
    )
    .await?;
    let found = find(state, caller, &stream, &consumer, created_s).await?;
    let o = out(state, caller, &stream, &found, state.clock.now_ms());
    Ok(DescribeStreamConsumerOutput {
        consumer_description: ConsumerDescription {
            consumer_name: o.consumer_name,
            consumer_arn: o.consumer_arn,
            consumer_status: o.consumer_status,
            consumer_creation_timestamp: o.consumer_creation_timestamp,
            stream_arn: StreamArn::format(&state.config.region, &caller.account_id, &stream),
        },
    })
}

pub async fn list(
    state: &Kinesis,
    caller: &Caller,
    input: ListStreamConsumersInput,
) -> Result<ListStreamConsumersOutput, ApiError> {
    let stream_arn = validate::required(input.stream_arn.clone(), "streamARN")?;
    let max = input
        .max_results
        .unwrap_or(limits::LIST_CONSUMERS_MAX_RESULTS_DEFAULT);
    validate::int_range(max, "maxResults", 1, limits::LIST_CONSUMERS_MAX_RESULTS_MAX)?;
    let stream = state
        .stream_name(
            caller,
            "kinesis:ListStreamConsumers",
            StreamRef {
                stream_name: None,
                stream_arn: Some(&stream_arn),
            },
        )
        .await?;
    let after = input
        .next_token
        .as_deref()
        .map(|t| open_page_token("consumers", t))
        .transpose()?;
    let mut found = state
        .catalog
        .list_consumers(
            caller.account_id.as_str(),
            &stream,
            after.as_deref(),
            max + 1,
        )
        .await
        .map_err(api)?;
    // A stream with no consumers must still exist.
    if found.is_empty() && after.is_none() {
        state
            .catalog
            .load_stream(caller.account_id.as_str(), &stream)
            .await
            .map_err(api)?;
    }
    let has_more = found.len() as i64 > max;
    found.truncate(max as usize);
    let now = state.clock.now_ms();
    Ok(ListStreamConsumersOutput {
        next_token: has_more
            .then(|| found.last().map(|c| page_token("consumers", &c.name)))
            .flatten(),
        consumers: found
            .iter()
            .map(|c| out(state, caller, &stream, c, now))
            .collect(),
    })
}
