//! Request and response shapes of the Kinesis operations Sluice serves, member for
//! member as the Kinesis API reference names them. Unknown members are ignored, as AWS
//! ignores them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::{Blob, Timestamp};

/// The operations, by the name after `Kinesis_20131202.` in `X-Amz-Target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    AddTagsToStream,
    CreateStream,
    DecreaseStreamRetentionPeriod,
    DeleteStream,
    DescribeLimits,
    DescribeStream,
    DescribeStreamSummary,
    GetRecords,
    GetShardIterator,
    IncreaseStreamRetentionPeriod,
    ListShards,
    ListStreams,
    ListTagsForStream,
    PutRecord,
    PutRecords,
    RemoveTagsFromStream,
    PutResourcePolicy,
    GetResourcePolicy,
    DeleteResourcePolicy,
    StartStreamEncryption,
    StopStreamEncryption,
    SplitShard,
    MergeShards,
    UpdateShardCount,
    UpdateStreamMode,
    RegisterStreamConsumer,
    DeregisterStreamConsumer,
    DescribeStreamConsumer,
    ListStreamConsumers,
    SubscribeToShard,
    EnableEnhancedMonitoring,
    DisableEnhancedMonitoring,
    TagResource,
    UntagResource,
    ListTagsForResource,
    DescribeAccountSettings,
    UpdateAccountSettings,
    UpdateStreamRecordDistributionStrategy,
    UpdateStreamWarmThroughput,
    UpdateMaxRecordSize,
    CreateQueue,
    DeleteQueue,
    DescribeQueue,
    ListQueues,
    UpdateQueue,
    ReceiveQueueRecords,
    AcknowledgeQueueRecords,
    UpdateQueueRecordsVisibility,
    ReceiveDeadLetterQueueRecords,
    AcknowledgeDeadLetterQueueRecords,
    RestoreDeadLetterQueueRecords,
    UpdateDeadLetterQueueRecordsVisibility,
}

impl Operation {
    pub const TARGET_PREFIX: &'static str = "Kinesis_20131202.";

    pub fn from_target(target: &str) -> Option<Operation> {
        let name = target.strip_prefix(Self::TARGET_PREFIX)?;
        Some(match name {
            "AddTagsToStream" => Operation::AddTagsToStream,
            "CreateStream" => Operation::CreateStream,
            "DecreaseStreamRetentionPeriod" => Operation::DecreaseStreamRetentionPeriod,
            "DeleteStream" => Operation::DeleteStream,
            "DescribeLimits" => Operation::DescribeLimits,
            "DescribeStream" => Operation::DescribeStream,
            "DescribeStreamSummary" => Operation::DescribeStreamSummary,
            "GetRecords" => Operation::GetRecords,
            "GetShardIterator" => Operation::GetShardIterator,
            "IncreaseStreamRetentionPeriod" => Operation::IncreaseStreamRetentionPeriod,
            "ListShards" => Operation::ListShards,
            "ListStreams" => Operation::ListStreams,
            "ListTagsForStream" => Operation::ListTagsForStream,
            "PutRecord" => Operation::PutRecord,
            "PutRecords" => Operation::PutRecords,
            "RemoveTagsFromStream" => Operation::RemoveTagsFromStream,
            "PutResourcePolicy" => Operation::PutResourcePolicy,
            "GetResourcePolicy" => Operation::GetResourcePolicy,
            "DeleteResourcePolicy" => Operation::DeleteResourcePolicy,
            "StartStreamEncryption" => Operation::StartStreamEncryption,
            "StopStreamEncryption" => Operation::StopStreamEncryption,
            "SplitShard" => Operation::SplitShard,
            "MergeShards" => Operation::MergeShards,
            "UpdateShardCount" => Operation::UpdateShardCount,
            "UpdateStreamMode" => Operation::UpdateStreamMode,
            "RegisterStreamConsumer" => Operation::RegisterStreamConsumer,
            "DeregisterStreamConsumer" => Operation::DeregisterStreamConsumer,
            "DescribeStreamConsumer" => Operation::DescribeStreamConsumer,
            "ListStreamConsumers" => Operation::ListStreamConsumers,
            "SubscribeToShard" => Operation::SubscribeToShard,
            "EnableEnhancedMonitoring" => Operation::EnableEnhancedMonitoring,
            "DisableEnhancedMonitoring" => Operation::DisableEnhancedMonitoring,
            "TagResource" => Operation::TagResource,
            "UntagResource" => Operation::UntagResource,
            "ListTagsForResource" => Operation::ListTagsForResource,
            "DescribeAccountSettings" => Operation::DescribeAccountSettings,
            "UpdateAccountSettings" => Operation::UpdateAccountSettings,
            "UpdateStreamRecordDistributionStrategy" => {
                Operation::UpdateStreamRecordDistributionStrategy
            }
            "UpdateStreamWarmThroughput" => Operation::UpdateStreamWarmThroughput,
            "UpdateMaxRecordSize" => Operation::UpdateMaxRecordSize,
            "CreateQueue" => Operation::CreateQueue,
            "DeleteQueue" => Operation::DeleteQueue,
            "DescribeQueue" => Operation::DescribeQueue,
            "ListQueues" => Operation::ListQueues,
            "UpdateQueue" => Operation::UpdateQueue,
            "ReceiveQueueRecords" => Operation::ReceiveQueueRecords,
            "AcknowledgeQueueRecords" => Operation::AcknowledgeQueueRecords,
            "UpdateQueueRecordsVisibility" => Operation::UpdateQueueRecordsVisibility,
            "ReceiveDeadLetterQueueRecords" => Operation::ReceiveDeadLetterQueueRecords,
            "AcknowledgeDeadLetterQueueRecords" => Operation::AcknowledgeDeadLetterQueueRecords,
            "RestoreDeadLetterQueueRecords" => Operation::RestoreDeadLetterQueueRecords,
            "UpdateDeadLetterQueueRecordsVisibility" => {
                Operation::UpdateDeadLetterQueueRecordsVisibility
            }
            _ => return None,
        })
    }
}

/// Either a StreamName or a StreamARN names a stream; AWS takes either.
///
/// The inputs carry the two members themselves rather than through `#[serde(flatten)]`,
/// which buffers values and would hide from the codecs whether they read JSON or CBOR.
#[derive(Debug, Clone, Copy)]
pub struct StreamRef<'a> {
    pub stream_name: Option<&'a str>,
    pub stream_arn: Option<&'a str>,
}

macro_rules! names_a_stream {
    ($($input:ty),* $(,)?) => {$(
        impl $input {
            pub fn stream(&self) -> StreamRef<'_> {
                StreamRef {
                    stream_name: self.stream_name.as_deref(),
                    stream_arn: self.stream_arn.as_deref(),
                }
            }
        }
    )*};
}

names_a_stream!(
    EnhancedMonitoringInput,
    WarmThroughputInput,
    DeleteStreamInput,
    DescribeStreamInput,
    StreamOnlyInput,
    ListShardsInput,
    PutRecordInput,
    PutRecordsInput,
    GetShardIteratorInput,
    AddTagsToStreamInput,
    RemoveTagsFromStreamInput,
    ListTagsForStreamInput,
    RetentionInput,
    StreamEncryptionInput,
    SplitShardInput,
    MergeShardsInput,
    UpdateShardCountInput
);

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SplitShardInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub shard_to_split: Option<String>,
    pub new_starting_hash_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MergeShardsInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub shard_to_merge: Option<String>,
    pub adjacent_shard_to_merge: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub target_shard_count: Option<i64>,
    pub scaling_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountOutput {
    pub stream_name: String,
    pub current_shard_count: i64,
    pub target_shard_count: i64,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
}

/// UpdateStreamMode names its stream by ARN only.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStreamModeInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub stream_mode_details: Option<StreamModeDetails>,
}

/// RegisterStreamConsumer, DeregisterStreamConsumer and DescribeStreamConsumer name a
/// consumer by StreamARN and ConsumerName, or by ConsumerARN.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerOut {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub consumer_status: String,
    pub consumer_creation_timestamp: Timestamp,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerOutput {
    pub consumer: ConsumerOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerDescription {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub consumer_status: String,
    pub consumer_creation_timestamp: Timestamp,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamConsumerOutput {
    pub consumer_description: ConsumerDescription,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub stream_creation_timestamp: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersOutput {
    pub consumers: Vec<ConsumerOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPosition {
    #[serde(rename = "Type")]
    pub position_type: Option<String>,
    pub sequence_number: Option<String>,
    pub timestamp: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardInput {
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<String>,
    pub shard_id: Option<String>,
    pub starting_position: Option<StartingPosition>,
}

/// One event of a subscription: the records since the last one, where to continue,
/// and, once a closed shard is read to its end, its children.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEvent {
    pub records: Vec<RecordOut>,
    /// Where a new subscription continues (AFTER_SEQUENCE_NUMBER); absent once a
    /// closed shard has been read to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_sequence_number: Option<String>,
    pub millis_behind_latest: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShard>>,
}

/// A shard a closed shard's records continue in, as the last GetRecords of the closed
/// shard names it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShard {
    pub shard_id: String,
    pub parent_shards: Vec<String>,
    pub hash_key_range: HashKeyRangeOut,
}

/// StartStreamEncryption and StopStreamEncryption take the same members.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamEncryptionInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub encryption_type: Option<String>,
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    pub stream_mode: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStreamInput {
    pub stream_name: Option<String>,
    pub shard_count: Option<i64>,
    pub stream_mode_details: Option<StreamModeDetails>,
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateMaxRecordSizeInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub stream_id: Option<String>,
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteStreamInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub enforce_consumer_deletion: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub limit: Option<i64>,
    pub exclusive_start_shard_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamOnlyInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRangeOut {
    pub starting_hash_key: String,
    pub ending_hash_key: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRangeOut {
    pub starting_sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending_sequence_number: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardOut {
    pub shard_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjacent_parent_shard_id: Option<String>,
    pub hash_key_range: HashKeyRangeOut,
    pub sequence_number_range: SequenceNumberRangeOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetrics {
    pub shard_level_metrics: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescription {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub stream_status: String,
    pub stream_mode_details: StreamModeDetails,
    pub shards: Vec<ShardOut>,
    pub has_more_shards: bool,
    pub retention_period_hours: i64,
    pub stream_creation_timestamp: Timestamp,
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    pub encryption_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamOutput {
    pub stream_description: StreamDescription,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionSummary {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub stream_status: String,
    pub stream_mode_details: StreamModeDetails,
    pub retention_period_hours: i64,
    pub stream_creation_timestamp: Timestamp,
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    pub encryption_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub open_shard_count: i64,
    pub consumer_count: i64,
    pub record_distribution_strategy: String,
    #[serde(rename = "MaxRecordSizeInKiB")]
    pub max_record_size_in_kib: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_throughput: Option<WarmThroughput>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryOutput {
    pub stream_description_summary: StreamDescriptionSummary,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    pub limit: Option<i64>,
    pub exclusive_start_stream_name: Option<String>,
    pub next_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub stream_status: String,
    pub stream_mode_details: StreamModeDetails,
    pub stream_creation_timestamp: Timestamp,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsOutput {
    pub stream_names: Vec<String>,
    pub has_more_streams: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub stream_summaries: Vec<StreamSummary>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardFilter {
    #[serde(rename = "Type")]
    pub filter_type: String,
    pub shard_id: Option<String>,
    pub timestamp: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub next_token: Option<String>,
    pub exclusive_start_shard_id: Option<String>,
    pub max_results: Option<i64>,
    pub stream_creation_timestamp: Option<Timestamp>,
    pub shard_filter: Option<ShardFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsOutput {
    pub shards: Vec<ShardOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub data: Option<Blob>,
    pub partition_key: Option<String>,
    pub explicit_hash_key: Option<String>,
    pub sequence_number_for_ordering: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    pub shard_id: String,
    pub sequence_number: String,
    pub encryption_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsEntry {
    pub data: Option<Blob>,
    pub partition_key: Option<String>,
    pub explicit_hash_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub records: Option<Vec<PutRecordsEntry>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput {
    pub failed_record_count: i64,
    pub records: Vec<PutRecordsResultEntry>,
    pub encryption_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub shard_id: Option<String>,
    pub shard_iterator_type: Option<String>,
    pub starting_sequence_number: Option<String>,
    pub timestamp: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorOutput {
    pub shard_iterator: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    pub shard_iterator: Option<String>,
    pub limit: Option<i64>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordOut {
    pub sequence_number: String,
    pub approximate_arrival_timestamp: Timestamp,
    pub data: Blob,
    pub partition_key: String,
    /// Always "KMS": every record is sealed at rest.
    pub encryption_type: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    pub records: Vec<RecordOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_shard_iterator: Option<String>,
    pub millis_behind_latest: i64,
    /// Present once a closed shard has been read to its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShard>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsToStreamInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTagsFromStreamInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub exclusive_start_tag_key: Option<String>,
    pub limit: Option<i64>,
}

/// PutResourcePolicy: the policy attached to a stream. Sluice's policies are Cedar.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutResourcePolicyInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
    pub policy: Option<String>,
}

/// GetResourcePolicy and DeleteResourcePolicy.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourcePolicyInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetResourcePolicyOutput {
    pub policy: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamOutput {
    pub tags: Vec<Tag>,
    pub has_more_tags: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeLimitsOutput {
    pub shard_limit: i64,
    pub open_shard_count: i64,
    pub on_demand_stream_count: i64,
    pub on_demand_stream_count_limit: i64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub retention_period_hours: Option<i64>,
}

/// The empty JSON object that operations without output answer with.
#[derive(Debug, Serialize)]
pub struct Empty {}

impl GetRecordsOutput {
    /// The JSON encoding, written directly rather than through serde: base64 needs no
    /// escaping, so each record's data is encoded straight into the output once, and
    /// the output is sized up front. A catch-up read is mostly this loop.
    pub fn to_json(&self) -> Vec<u8> {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        let estimate: usize = self
            .records
            .iter()
            .map(|r| r.data.0.len() * 4 / 3 + r.partition_key.len() + 160)
            .sum::<usize>()
            + 1024;
        let mut out = Vec::with_capacity(estimate);
        out.extend_from_slice(b"{\"Records\":[");
        for (i, record) in self.records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"SequenceNumber\":\"");
            out.extend_from_slice(record.sequence_number.as_bytes());
            out.extend_from_slice(b"\",\"ApproximateArrivalTimestamp\":");
            serde_json::to_writer(&mut out, &record.approximate_arrival_timestamp)
                .expect("writing to a Vec cannot fail");
            out.extend_from_slice(b",\"Data\":\"");
            let start = out.len();
            out.resize(
                start + base64::encoded_len(record.data.0.len(), true).expect("bounded record"),
                0,
            );
            let written = STANDARD
                .encode_slice(&record.data.0, &mut out[start..])
                .expect("sized by encoded_len");
            out.truncate(start + written);
            out.extend_from_slice(b"\",\"PartitionKey\":");
            serde_json::to_writer(&mut out, &record.partition_key)
                .expect("writing to a Vec cannot fail");
            out.extend_from_slice(b",\"EncryptionType\":");
            serde_json::to_writer(&mut out, record.encryption_type)
                .expect("writing to a Vec cannot fail");
            out.push(b'}');
        }
        out.extend_from_slice(b"]");
        if let Some(next) = &self.next_shard_iterator {
            out.extend_from_slice(b",\"NextShardIterator\":");
            serde_json::to_writer(&mut out, next).expect("writing to a Vec cannot fail");
        }
        out.extend_from_slice(b",\"MillisBehindLatest\":");
        out.extend_from_slice(self.millis_behind_latest.to_string().as_bytes());
        if let Some(children) = &self.child_shards {
            out.extend_from_slice(b",\"ChildShards\":");
            serde_json::to_writer(&mut out, children).expect("writing to a Vec cannot fail");
        }
        out.push(b'}');
        out
    }
}

/// EnableEnhancedMonitoring and DisableEnhancedMonitoring take the same members.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMonitoringInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub shard_level_metrics: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMonitoringOutput {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub current_shard_level_metrics: Vec<String>,
    pub desired_shard_level_metrics: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagResourceInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceInput {
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForResourceOutput {
    pub tags: Vec<Tag>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CommitmentInput {
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateAccountSettingsInput {
    pub minimum_throughput_billing_commitment: Option<CommitmentInput>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CommitmentOut {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earliest_allowed_end_at: Option<Timestamp>,
}

/// DescribeAccountSettings and UpdateAccountSettings answer the same shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountSettingsOutput {
    pub minimum_throughput_billing_commitment: CommitmentOut,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughputInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub warm_throughput_mi_bps: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughput {
    pub target_mi_bps: i64,
    pub current_mi_bps: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughputOutput {
    pub stream_name: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub warm_throughput: WarmThroughput,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateRecordDistributionInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub record_distribution_strategy: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_get_records_json_equals_serdes() {
        let records = (0..5)
            .map(|i| RecordOut {
                sequence_number: format!("{}", 1000 + i),
                approximate_arrival_timestamp: Timestamp {
                    epoch_ms: 1_764_000_000_123 + i,
                },
                data: Blob((0..(i as u8 * 7)).collect::<Vec<u8>>().into()),
                partition_key: format!("key \"{i}\" \u{e9}\n"),
                encryption_type: "KMS",
            })
            .collect();
        for next in [Some("AAAA-_".to_string()), None] {
            let out = GetRecordsOutput {
                records: Vec::new(),
                next_shard_iterator: next.clone(),
                millis_behind_latest: 42,
                child_shards: next.is_none().then(|| {
                    vec![ChildShard {
                        shard_id: "shardId-000000000001".into(),
                        parent_shards: vec!["shardId-000000000000".into()],
                        hash_key_range: HashKeyRangeOut {
                            starting_hash_key: "0".into(),
                            ending_hash_key: "9".into(),
                        },
                    }]
                }),
            };
            let direct: serde_json::Value = serde_json::from_slice(&out.to_json()).unwrap();
            let via_serde: serde_json::Value =
                serde_json::from_slice(&serde_json::to_vec(&out).unwrap()).unwrap();
            assert_eq!(direct, via_serde);
        }
        let out = GetRecordsOutput {
            records,
            next_shard_iterator: Some("x".into()),
            millis_behind_latest: 0,
            child_shards: None,
        };
        let direct: serde_json::Value = serde_json::from_slice(&out.to_json()).unwrap();
        let via_serde: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&out).unwrap()).unwrap();
        assert_eq!(direct, via_serde);
    }
}
