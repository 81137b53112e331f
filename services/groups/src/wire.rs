//! The consumer-group API's shapes (JSON 1.1, PascalCase members as AWS's own APIs
//! have them). Timestamps are epoch seconds; sequence numbers decimal strings.

use protocol::wire::Timestamp;
use serde::{Deserialize, Serialize};

/// Names a stream by name or ARN, as Kinesis operations do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamNamed {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPosition {
    /// TRIM_HORIZON, LATEST or AT_TIMESTAMP.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateInput {
    #[serde(flatten)]
    pub stream: StreamNamed,
    pub group_name: Option<String>,
    pub starting_position: Option<StartingPosition>,
    pub lease_timeout_seconds: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupInput {
    #[serde(flatten)]
    pub stream: StreamNamed,
    pub group_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinInput {
    #[serde(flatten)]
    pub stream: StreamNamed,
    pub group_name: Option<String>,
    pub member_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemberInput {
    #[serde(flatten)]
    pub stream: StreamNamed,
    pub group_name: Option<String>,
    pub member_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckpointInput {
    #[serde(flatten)]
    pub stream: StreamNamed,
    pub group_name: Option<String>,
    pub member_id: Option<String>,
    pub shard_id: Option<String>,
    pub lease_counter: Option<i64>,
    /// The last record processed.
    pub sequence_number: Option<String>,
    /// Inside an aggregated record: the last user record processed.
    pub sub_sequence_number: Option<i64>,
    /// The closed shard was read to its end (no sequence number needed).
    #[serde(default)]
    pub shard_end: bool,
    /// Give the lease up after this checkpoint.
    #[serde(default)]
    pub release: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupSummary {
    pub group_name: String,
    #[serde(rename = "GroupARN")]
    pub group_arn: String,
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub starting_position: StartingPosition,
    pub lease_timeout_seconds: i64,
    pub creation_timestamp: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateOutput {
    pub consumer_group: GroupSummary,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListOutput {
    pub consumer_groups: Vec<GroupSummary>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemberDescription {
    pub member_id: String,
    pub member_name: String,
    pub joined_timestamp: Timestamp,
    pub expires_timestamp: Timestamp,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Checkpoint {
    pub sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_sequence_number: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardDescription {
    pub shard_id: String,
    pub parent_shard_ids: Vec<String>,
    pub open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub lease_counter: i64,
    pub releasing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    pub finished: bool,
    /// Records written to the shard after the checkpoint.
    pub records_behind: u64,
    /// How long ago the first record after the checkpoint arrived (0: none).
    pub millis_behind: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupDescription {
    #[serde(flatten)]
    pub summary: GroupSummary,
    pub members: Vec<MemberDescription>,
    pub shards: Vec<ShardDescription>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeOutput {
    pub consumer_group: GroupDescription,
}

/// Where a member starts reading a shard it was given.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct LeaseStart {
    /// AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER (then skip the user records up to
    /// SubSequenceNumber of the aggregate), TRIM_HORIZON or AT_TIMESTAMP: a
    /// GetShardIterator ShardIteratorType.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_sequence_number: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MemberLease {
    pub shard_id: String,
    pub lease_counter: i64,
    /// The group asks for this lease back: checkpoint, then release it.
    pub release_requested: bool,
    pub starting_position: LeaseStart,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Assignment {
    pub member_id: String,
    /// Heartbeat at least this often to keep the leases.
    pub heartbeat_interval_millis: i64,
    pub lease_timeout_millis: i64,
    pub leases: Vec<MemberLease>,
}
