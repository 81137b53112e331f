//! Firehose (JSON 1.1, target prefix `Firehose_20150804.`, signing name `firehose`):
//! delivery streams that take records (PutRecord, PutRecordBatch) or read a Kinesis
//! stream, buffer them by size and time, and deliver them to an S3-compatible store or
//! an HTTP endpoint, at least once.
//!
//! A DirectPut delivery stream's records are appended to a buffer stream of its own in
//! Sluice's log (sealed like any stream's records, acknowledged once durable), so a
//! crash loses nothing acknowledged. The deliverers (`deliver`) read the buffer, or
//! the source stream, from the positions the catalog keeps, and move the positions on
//! only after a destination took a buffer. Every operation is authorized by Cedar
//! first (`firehose:<Operation>` on the delivery stream's ARN).

pub mod api;
pub mod channel;
pub mod channel_api;
pub mod config;
pub mod connections;
pub mod convert;
pub mod deliver;
pub mod encode;
pub mod http;
pub mod partition;
pub mod prefix;
pub mod s3;
pub mod search;
pub mod shapes;
pub mod splunk;
pub mod tables;
pub mod warehouse;
pub mod zip;

use std::sync::Arc;

use catalog::Catalog;
use catalog::masterkeys::MasterKey;
use catalog::rootkey::RootKey;
use edge::{Authorizer, BoxFuture, Caller};
use protocol::clock::SharedClock;
use protocol::wire::Format;
use protocol::{ApiError, ErrorCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use storage::commit::Committer;
use storage::keyring::Keyring;
use storage::objects::ObjectStore;

pub const TARGET_PREFIX: &str = "Firehose_20150804.";

/// Firehose's door to KMS: the customer managed key StartDeliveryStreamEncryption
/// names, resolved and authorized by the KMS service.
pub trait DeliveryKeys: Send + Sync {
    fn key_for_delivery_stream<'a>(
        &'a self,
        caller: &'a Caller,
        key_arn: &'a str,
    ) -> BoxFuture<'a, Result<MasterKey, ApiError>>;
}

/// What the service may touch.
pub struct FirehoseService {
    pub catalog: Catalog,
    pub authz: Arc<dyn Authorizer>,
    pub keys: Arc<dyn DeliveryKeys>,
    pub region: String,
    pub clock: SharedClock,
    /// Appends DirectPut records to a delivery stream's buffer stream.
    pub committer: Committer,
    /// Reads buffers and source streams back, for delivery.
    pub store: Arc<ObjectStore>,
    pub keyring: Arc<Keyring>,
    /// Seals connection secrets and HTTP endpoint access keys.
    pub root_key: Arc<RootKey>,
    /// Shards a DirectPut delivery stream's buffer stream has.
    pub buffer_shards: u32,
    /// The least DataFreshnessInSeconds a Kinesis channel may ask for (AWS's: 300).
    pub channel_freshness_min_s: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirehoseOperation {
    CreateDeliveryStream,
    DeleteDeliveryStream,
    DescribeDeliveryStream,
    ListDeliveryStreams,
    ListTagsForDeliveryStream,
    PutRecord,
    PutRecordBatch,
    StartDeliveryStreamEncryption,
    StopDeliveryStreamEncryption,
    TagDeliveryStream,
    UntagDeliveryStream,
    UpdateDestination,
}

impl FirehoseOperation {
    pub const ALL: [FirehoseOperation; 12] = [
        FirehoseOperation::CreateDeliveryStream,
        FirehoseOperation::DeleteDeliveryStream,
        FirehoseOperation::DescribeDeliveryStream,
        FirehoseOperation::ListDeliveryStreams,
        FirehoseOperation::ListTagsForDeliveryStream,
        FirehoseOperation::PutRecord,
        FirehoseOperation::PutRecordBatch,
        FirehoseOperation::StartDeliveryStreamEncryption,
        FirehoseOperation::StopDeliveryStreamEncryption,
        FirehoseOperation::TagDeliveryStream,
        FirehoseOperation::UntagDeliveryStream,
        FirehoseOperation::UpdateDestination,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FirehoseOperation::CreateDeliveryStream => "CreateDeliveryStream",
            FirehoseOperation::DeleteDeliveryStream => "DeleteDeliveryStream",
            FirehoseOperation::DescribeDeliveryStream => "DescribeDeliveryStream",
            FirehoseOperation::ListDeliveryStreams => "ListDeliveryStreams",
            FirehoseOperation::ListTagsForDeliveryStream => "ListTagsForDeliveryStream",
            FirehoseOperation::PutRecord => "PutRecord",
            FirehoseOperation::PutRecordBatch => "PutRecordBatch",
            FirehoseOperation::StartDeliveryStreamEncryption => "StartDeliveryStreamEncryption",
            FirehoseOperation::StopDeliveryStreamEncryption => "StopDeliveryStreamEncryption",
            FirehoseOperation::TagDeliveryStream => "TagDeliveryStream",
            FirehoseOperation::UntagDeliveryStream => "UntagDeliveryStream",
            FirehoseOperation::UpdateDestination => "UpdateDestination",
        }
    }

    pub fn from_target(target: &str) -> Option<FirehoseOperation> {
        let name = target.strip_prefix(TARGET_PREFIX)?;
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The Cedar action, as `firehose:<Operation>`.
    pub fn action(self) -> String {
        format!("firehose:{}", self.name())
    }
}

/// The request body as the operation's input: a body that is not the shape is a
/// SerializationException, as the JSON protocol answers it.
fn input<T: DeserializeOwned>(format: Format, body: &[u8]) -> Result<T, ApiError> {
    if format != Format::Json {
        return Err(ApiError::new(
            ErrorCode::SerializationException,
            "Firehose speaks JSON (application/x-amz-json-1.1).",
        ));
    }
    format.decode(body)
}

fn out<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    Ok(serde_json::to_vec(value).expect("serializable"))
}

pub async fn dispatch(
    state: &FirehoseService,
    caller: &Caller,
    op: FirehoseOperation,
    format: Format,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    use FirehoseOperation as Op;
    match op {
        Op::CreateDeliveryStream => out(&api::create(state, caller, input(format, body)?).await?),
        Op::DeleteDeliveryStream => out(&api::delete(state, caller, input(format, body)?).await?),
        Op::DescribeDeliveryStream => {
            out(&api::describe(state, caller, input(format, body)?).await?)
        }
        Op::ListDeliveryStreams => out(&api::list(state, caller, input(format, body)?).await?),
        Op::ListTagsForDeliveryStream => {
            out(&api::list_tags(state, caller, input(format, body)?).await?)
        }
        Op::PutRecord => out(&api::put_record(state, caller, input(format, body)?).await?),
        Op::PutRecordBatch => {
            out(&api::put_record_batch(state, caller, input(format, body)?).await?)
        }
        Op::StartDeliveryStreamEncryption => {
            out(&api::start_encryption(state, caller, input(format, body)?).await?)
        }
        Op::StopDeliveryStreamEncryption => {
            out(&api::stop_encryption(state, caller, input(format, body)?).await?)
        }
        Op::TagDeliveryStream => out(&api::tag(state, caller, input(format, body)?).await?),
        Op::UntagDeliveryStream => out(&api::untag(state, caller, input(format, body)?).await?),
        Op::UpdateDestination => {
            out(&api::update_destination(state, caller, input(format, body)?).await?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_operations() {
        for op in FirehoseOperation::ALL {
            assert_eq!(
                FirehoseOperation::from_target(&format!("{TARGET_PREFIX}{}", op.name())),
                Some(op)
            );
        }
        assert_eq!(
            FirehoseOperation::from_target("Firehose_20150804.Nope"),
            None
        );
        assert_eq!(
            FirehoseOperation::PutRecordBatch.action(),
            "firehose:PutRecordBatch"
        );
    }
}
