//! SQS (JSON 1.0, target prefix `AmazonSQS.`, signing name `sqs`, query-compatible
//! errors): standard queues whose messages live where the catalog lives, sealed, and
//! durable before SendMessage answers. Receives hide a message for its visibility
//! timeout under a fresh receipt handle; long polls wait on the queue's notifier (a
//! send in this process wakes them at once; a send in another process is seen within a
//! second, `LONG_POLL_RECHECK`). Every operation is authorized by Cedar first
//! (`sqs:<Operation>` on the queue's ARN; ListQueues on the tenant), with the queue's
//! own policy taking part (`queue_policy`). FIFO queues keep their groups' order and
//! deduplicate; the legacy query protocol is read as JSON (`query`). Messages are sealed
//! under the queue's KMS key's data keys, or under the root key (`keys`).

pub mod api;
pub mod attributes;
pub mod delivery;
pub mod keys;
pub mod messages;
pub mod movetasks;
pub mod permissions;
pub mod query;
pub mod queue_policy;
pub mod waiters;

use std::sync::Arc;

use catalog::Catalog;
use catalog::rootkey::RootKey;
use edge::{Authorizer, Caller};
use protocol::clock::SharedClock;
use protocol::wire::Format;
use protocol::{ApiError, ErrorCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const TARGET_PREFIX: &str = "AmazonSQS.";

/// What the service may touch.
pub struct SqsService {
    pub catalog: Catalog,
    pub authz: Arc<dyn Authorizer>,
    pub region: String,
    pub clock: SharedClock,
    /// Seals message bodies and attributes of queues with SQS-managed encryption, and
    /// wraps data keys under KMS keys' material.
    pub root_key: Arc<RootKey>,
    /// The door to KMS for queues with a KmsMasterKeyId.
    pub keys: Arc<dyn keys::QueueKeys>,
    /// Data keys held for their reuse period.
    pub held_keys: keys::KeyCache,
    /// Queues read for the message operations, held a second.
    pub queues: api::QueueCache,
    pub waiters: Arc<waiters::Waiters>,
}

macro_rules! operations {
    ($($op:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum SqsOperation { $($op),* }

        impl SqsOperation {
            pub const ALL: &'static [SqsOperation] = &[$(SqsOperation::$op),*];

            pub fn name(self) -> &'static str {
                match self { $(SqsOperation::$op => stringify!($op)),* }
            }
        }
    };
}

operations!(
    AddPermission,
    CancelMessageMoveTask,
    ChangeMessageVisibility,
    ChangeMessageVisibilityBatch,
    CreateQueue,
    DeleteMessage,
    DeleteMessageBatch,
    DeleteQueue,
    GetQueueAttributes,
    GetQueueUrl,
    ListDeadLetterSourceQueues,
    ListMessageMoveTasks,
    ListQueueTags,
    ListQueues,
    PurgeQueue,
    ReceiveMessage,
    RemovePermission,
    SendMessage,
    SendMessageBatch,
    SetQueueAttributes,
    StartMessageMoveTask,
    TagQueue,
    UntagQueue,
);

impl SqsOperation {
    pub fn from_target(target: &str) -> Option<SqsOperation> {
        let name = target.strip_prefix(TARGET_PREFIX)?;
        Self::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// The Cedar action, as `sqs:<Operation>`.
    pub fn action(self) -> String {
        format!("sqs:{}", self.name())
    }
}

/// How often the control plane publishes every queue's gauges.
pub const QUEUE_METRICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);
/// Queues the gauges cover at most.
const QUEUE_METRICS_MAX: i64 = 10_000;

/// Publishes, per queue, the messages visible, in flight and delayed, and the age of
/// the oldest, as Prometheus gauges.
pub async fn publish_queue_metrics(
    catalog: &Catalog,
    now_ms: i64,
) -> Result<(), catalog::CatalogError> {
    for (account, name, counts, oldest) in
        catalog.sqs_queue_stats(now_ms, QUEUE_METRICS_MAX).await?
    {
        let labels = [("queue", format!("{account}/{name}"))];
        metrics::gauge!("sluice_sqs_messages_visible", &labels).set(counts.visible as f64);
        metrics::gauge!("sluice_sqs_messages_in_flight", &labels).set(counts.in_flight as f64);
        metrics::gauge!("sluice_sqs_messages_delayed", &labels).set(counts.delayed as f64);
        let age = oldest.map_or(0, |sent| now_ms.saturating_sub(sent).max(0));
        metrics::gauge!("sluice_sqs_oldest_message_age_seconds", &labels).set(age as f64 / 1000.0);
    }
    Ok(())
}

/// An SQS error.
pub(crate) fn sqs_error(kind: protocol::sqs::SqsError, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Sqs(kind), message)
}

/// The request body as the operation's input. SQS's JSON decodes as Kinesis's does;
/// a body that is not the shape is a SerializationException.
fn input<T: DeserializeOwned>(format: Format, body: &[u8]) -> Result<T, ApiError> {
    if format != Format::Json {
        return Err(ApiError::new(
            ErrorCode::SerializationException,
            "SQS speaks JSON (application/x-amz-json-1.0).",
        ));
    }
    format.decode(body)
}

fn out<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    Ok(serde_json::to_vec(value).expect("serializable"))
}

/// Runs one operation. `endpoint` is `https://HOST` as the request reached this
/// server: queue URLs are made from it.
pub async fn dispatch(
    state: &SqsService,
    caller: &Caller,
    op: SqsOperation,
    format: Format,
    body: &[u8],
    endpoint: &str,
) -> Result<Vec<u8>, ApiError> {
    use SqsOperation as Op;
    let ctx = api::Context {
        state,
        caller,
        endpoint,
    };
    match op {
        Op::CreateQueue => out(&api::create_queue(&ctx, input(format, body)?).await?),
        Op::GetQueueUrl => out(&api::get_queue_url(&ctx, input(format, body)?).await?),
        Op::ListQueues => out(&api::list_queues(&ctx, input(format, body)?).await?),
        Op::DeleteQueue => out(&api::delete_queue(&ctx, input(format, body)?).await?),
        Op::GetQueueAttributes => {
            out(&api::get_queue_attributes(&ctx, input(format, body)?).await?)
        }
        Op::SetQueueAttributes => {
            out(&api::set_queue_attributes(&ctx, input(format, body)?).await?)
        }
        Op::PurgeQueue => out(&api::purge_queue(&ctx, input(format, body)?).await?),
        Op::TagQueue => out(&api::tag_queue(&ctx, input(format, body)?).await?),
        Op::UntagQueue => out(&api::untag_queue(&ctx, input(format, body)?).await?),
        Op::ListQueueTags => out(&api::list_queue_tags(&ctx, input(format, body)?).await?),
        Op::SendMessage => out(&messages::send_message(&ctx, input(format, body)?).await?),
        Op::SendMessageBatch => {
            out(&messages::send_message_batch(&ctx, input(format, body)?).await?)
        }
        Op::ReceiveMessage => out(&messages::receive_message(&ctx, input(format, body)?).await?),
        Op::DeleteMessage => out(&messages::delete_message(&ctx, input(format, body)?).await?),
        Op::DeleteMessageBatch => {
            out(&messages::delete_message_batch(&ctx, input(format, body)?).await?)
        }
        Op::ChangeMessageVisibility => {
            out(&messages::change_visibility(&ctx, input(format, body)?).await?)
        }
        Op::ChangeMessageVisibilityBatch => {
            out(&messages::change_visibility_batch(&ctx, input(format, body)?).await?)
        }
        Op::ListDeadLetterSourceQueues => {
            out(&api::list_dead_letter_sources(&ctx, input(format, body)?).await?)
        }
        Op::StartMessageMoveTask => out(&movetasks::start(&ctx, input(format, body)?).await?),
        Op::CancelMessageMoveTask => out(&movetasks::cancel(&ctx, input(format, body)?).await?),
        Op::ListMessageMoveTasks => out(&movetasks::list(&ctx, input(format, body)?).await?),
        Op::AddPermission => out(&permissions::add_permission(&ctx, input(format, body)?).await?),
        Op::RemovePermission => {
            out(&permissions::remove_permission(&ctx, input(format, body)?).await?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_operations() {
        assert_eq!(
            SqsOperation::from_target("AmazonSQS.SendMessage"),
            Some(SqsOperation::SendMessage)
        );
        assert_eq!(SqsOperation::from_target("AmazonSQS.Nope"), None);
        assert_eq!(SqsOperation::ALL.len(), 23);
        assert_eq!(SqsOperation::ReceiveMessage.action(), "sqs:ReceiveMessage");
    }
}
