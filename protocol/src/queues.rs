//! Kinesis queues' wire shapes (CreateQueue, ReceiveQueueRecords, ...), as botocore's
//! Kinesis model has them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::wire::{Blob, Timestamp};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct QueueStartingPosition {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct QueueStreamConfiguration {
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_position: Option<QueueStartingPosition>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfiguration {
    pub target_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_receive_count: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct QueueAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_configuration: Option<DeadLetterConfiguration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueueInput {
    pub queue_name: Option<String>,
    pub stream_configuration_list: Option<Vec<QueueStreamConfiguration>>,
    pub queue_attributes: Option<QueueAttributes>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueArnInput {
    #[serde(rename = "QueueARN")]
    pub queue_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateQueueInput {
    #[serde(rename = "QueueARN")]
    pub queue_arn: Option<String>,
    pub queue_attributes: Option<QueueAttributes>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueStreamFilter {
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesInput {
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
    pub stream_filter: Option<Vec<QueueStreamFilter>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueDescription {
    pub queue_name: String,
    #[serde(rename = "QueueARN")]
    pub queue_arn: String,
    pub queue_status: &'static str,
    pub queue_creation_timestamp: Timestamp,
    pub stream_configuration_list: Vec<QueueStreamConfiguration>,
    pub queue_attributes: QueueAttributes,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueDescriptionOutput {
    pub queue_description: QueueDescription,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueStreamIdentifier {
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    pub stream_creation_timestamp: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueSummary {
    pub queue_name: String,
    #[serde(rename = "QueueARN")]
    pub queue_arn: String,
    pub queue_status: &'static str,
    pub queue_creation_timestamp: Timestamp,
    pub streams: Vec<QueueStreamIdentifier>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesOutput {
    pub queue_summaries: Vec<QueueSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveQueueRecordsInput {
    #[serde(rename = "QueueARN")]
    pub queue_arn: Option<String>,
    pub limit: Option<i64>,
    pub wait_time_seconds: Option<i64>,
    pub visibility_timeout_seconds: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueRecord {
    pub receipt_handle: String,
    pub record_id: String,
    pub partition_key: String,
    pub data: Blob,
    pub approximate_arrival_timestamp: Timestamp,
    pub first_receive_timestamp: Timestamp,
    pub receive_count: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveQueueRecordsOutput {
    pub queue_records: Vec<QueueRecord>,
}

/// An entry of AcknowledgeQueueRecords, RestoreDeadLetterQueueRecords, ... (the
/// visibility operations add VisibilityTimeoutSeconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandleEntry {
    pub receipt_handle: Option<String>,
    pub visibility_timeout_seconds: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandleEntriesInput {
    #[serde(rename = "QueueARN")]
    pub queue_arn: Option<String>,
    pub entries: Option<Vec<HandleEntry>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandleSuccess {
    pub receipt_handle: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandleFailure {
    pub receipt_handle: String,
    pub error_code: &'static str,
    pub error_message: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandleEntriesOutput {
    pub successful: Vec<HandleSuccess>,
    pub failed: Vec<HandleFailure>,
}
