//! The Kinesis Data Streams service: its operations over the log engine (`storage`),
//! its state (`state::Kinesis`), its errors as Kinesis words them, and the pieces only
//! it has (shard iterators, per-shard throughput limits, enhanced fan-out consumers,
//! SubscribeToShard, the on-demand scaler). It reaches the gateway only through
//! `edge` and KMS only through the `StreamKeys` door the assembly hands it.

pub mod access;
pub mod account;
pub mod autoscale;
pub mod consumers;
pub mod iterator;
pub mod monitoring;
pub mod queues;
pub mod records;
pub mod reshard;
pub mod settings;
pub mod state;
pub mod streams;
pub mod subscribe;
pub mod tagging;
pub mod throttle;

use edge::Caller;
use protocol::ApiError;
use protocol::checks::{Checked, Checks};
use protocol::model::*;
use protocol::wire::Format;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::access::*;
use crate::records::*;
use crate::reshard::*;
use crate::streams::*;

pub use crate::settings::{KinesisConfig, OnDemandScaling};
pub use crate::state::{Kinesis, StreamCache, StreamKeys};

fn encode<T: Serialize>(format: Format, value: &T) -> Result<Vec<u8>, ApiError> {
    let bytes = format.encode(value);
    // Kinesis answers an operation without output members (CreateStream,
    // AddTagsToStream, DeleteStream, ...) with an empty JSON body, not `{}`.
    if format == Format::Json && bytes == b"{}" {
        return Ok(Vec::new());
    }
    Ok(bytes)
}

pub async fn dispatch(
    state: &Kinesis,
    caller: &Caller,
    op: Operation,
    format: Format,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    fn input<T: DeserializeOwned>(format: Format, body: &[u8]) -> Result<T, ApiError> {
        format.decode(body)
    }
    // Every member constraint of the model, reported together before the operation runs.
    fn checked<T: DeserializeOwned + Checked>(format: Format, body: &[u8]) -> Result<T, ApiError> {
        let value: T = format.decode(body)?;
        let mut checks = Checks::new();
        value.check(&mut checks);
        checks.finish()?;
        Ok(value)
    }
    match op {
        Operation::CreateStream => create_stream(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DeleteStream => delete_stream(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DescribeStream => describe_stream(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DescribeStreamSummary => {
            describe_stream_summary(state, caller, checked(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::ListStreams => list_streams(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::ListShards => list_shards(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::PutRecord => put_record(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::PutRecords => put_records(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::GetShardIterator => get_shard_iterator(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::GetRecords => get_records(state, caller, checked(format, body)?)
            .await
            .map(|o| match format {
                Format::Json => o.to_json(),
                Format::Cbor => format.encode(&o),
            }),
        Operation::AddTagsToStream => add_tags(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::RemoveTagsFromStream => remove_tags(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::ListTagsForStream => list_tags(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DescribeLimits => describe_limits(state, caller)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::IncreaseStreamRetentionPeriod => {
            change_retention(state, caller, checked(format, body)?, true)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::DecreaseStreamRetentionPeriod => {
            change_retention(state, caller, checked(format, body)?, false)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::PutResourcePolicy => put_resource_policy(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::GetResourcePolicy => get_resource_policy(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DeleteResourcePolicy => {
            delete_resource_policy(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::StartStreamEncryption => {
            stream_encryption(state, caller, input(format, body)?, true)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::StopStreamEncryption => {
            stream_encryption(state, caller, input(format, body)?, false)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::SplitShard => split_shard(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::MergeShards => merge_shards(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::UpdateShardCount => update_shard_count(state, caller, checked(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::UpdateStreamMode => update_stream_mode(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::RegisterStreamConsumer => {
            crate::consumers::register(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::DeregisterStreamConsumer => {
            crate::consumers::deregister(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::DescribeStreamConsumer => {
            crate::consumers::describe(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::ListStreamConsumers => {
            crate::consumers::list(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::EnableEnhancedMonitoring => {
            crate::monitoring::set(state, caller, input(format, body)?, true)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::DisableEnhancedMonitoring => {
            crate::monitoring::set(state, caller, input(format, body)?, false)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::TagResource => crate::tagging::tag_resource(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::UntagResource => {
            crate::tagging::untag_resource(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::ListTagsForResource => {
            crate::tagging::list_tags_for_resource(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::DescribeAccountSettings => crate::account::describe(state, caller)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::UpdateAccountSettings => {
            crate::account::update(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::UpdateStreamRecordDistributionStrategy => {
            update_record_distribution(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::UpdateMaxRecordSize => {
            update_max_record_size(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::UpdateStreamWarmThroughput => {
            update_warm_throughput(state, caller, input(format, body)?)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::CreateQueue => crate::queues::create(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DescribeQueue => crate::queues::describe(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::UpdateQueue => crate::queues::update(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::DeleteQueue => crate::queues::delete(state, caller, input(format, body)?)
            .await
            .map(|()| Vec::new()),
        Operation::ListQueues => crate::queues::list(state, caller, input(format, body)?)
            .await
            .and_then(|o| encode(format, &o)),
        Operation::ReceiveQueueRecords | Operation::ReceiveDeadLetterQueueRecords => {
            let dead = op == Operation::ReceiveDeadLetterQueueRecords;
            crate::queues::receive(state, caller, input(format, body)?, dead)
                .await
                .and_then(|o| encode(format, &o))
        }
        Operation::AcknowledgeQueueRecords
        | Operation::AcknowledgeDeadLetterQueueRecords
        | Operation::UpdateQueueRecordsVisibility
        | Operation::UpdateDeadLetterQueueRecordsVisibility
        | Operation::RestoreDeadLetterQueueRecords => {
            use catalog::queues::HandleChange;
            let (action, kind, dead) = match op {
                Operation::AcknowledgeQueueRecords => (
                    "kinesis:AcknowledgeQueueRecords",
                    HandleChange::Acknowledge,
                    false,
                ),
                Operation::AcknowledgeDeadLetterQueueRecords => (
                    "kinesis:AcknowledgeDeadLetterQueueRecords",
                    HandleChange::Acknowledge,
                    true,
                ),
                Operation::UpdateQueueRecordsVisibility => (
                    "kinesis:UpdateQueueRecordsVisibility",
                    HandleChange::Visibility(0),
                    false,
                ),
                Operation::UpdateDeadLetterQueueRecordsVisibility => (
                    "kinesis:UpdateDeadLetterQueueRecordsVisibility",
                    HandleChange::Visibility(0),
                    true,
                ),
                _ => (
                    "kinesis:RestoreDeadLetterQueueRecords",
                    HandleChange::Restore,
                    true,
                ),
            };
            crate::queues::change(state, caller, input(format, body)?, action, kind, dead)
                .await
                .and_then(|o| encode(format, &o))
        }
        // Answered as an event stream by the gateway, never here.
        Operation::SubscribeToShard => Err(ApiError::internal()),
    }
}
