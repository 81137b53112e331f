//! Deliveries into queues for another service (SNS): a message sent with the rights of
//! the principal that subscribed the queue, through the same path as SendMessage.

use serde_json::{Value, json};

use edge::Caller;
use protocol::sqs::SqsError;
use protocol::{ApiError, ErrorCode};

use crate::api::{Context, resolve_cached};
use crate::messages::{SendInput, send_message};
use crate::{SqsService, sqs_error};

/// Sends one message for another service (SNS delivering to a subscribed queue):
/// `caller` is the principal whose rights the delivery uses (it must be allowed
/// `sqs:SendMessage` on the queue), `attributes` the message attributes as SQS's JSON
/// takes them, `group` a FIFO message's group and deduplication ids. Answers the
/// message's id.
pub async fn deliver(
    state: &SqsService,
    caller: &Caller,
    queue_arn: &str,
    body: &str,
    attributes: Value,
    group: (Option<&str>, Option<&str>),
) -> Result<String, ApiError> {
    let url = url_of(queue_arn)?;
    let input: SendInput = serde_json::from_value(json!({
        "QueueUrl": url,
        "MessageBody": body,
        "MessageAttributes": attributes,
        "MessageGroupId": group.0,
        "MessageDeduplicationId": group.1,
    }))
    .map_err(|e| ApiError::new(ErrorCode::InternalFailure, format!("a delivery: {e}")))?;
    let ctx = Context {
        state,
        caller,
        endpoint: ENDPOINT,
    };
    let sent = send_message(&ctx, input).await?;
    Ok(sent["MessageId"].as_str().unwrap_or_default().to_string())
}

/// The endpoint of the queue URLs deliveries name their queue by (their path is what
/// is read).
const ENDPOINT: &str = "https://sqs";

/// The URL of the queue an ARN names.
fn url_of(queue_arn: &str) -> Result<String, ApiError> {
    let (account, name) = parse_queue_arn(queue_arn).ok_or_else(|| {
        sqs_error(
            SqsError::InvalidAddress,
            format!("{queue_arn} is not a queue ARN."),
        )
    })?;
    Ok(format!("{ENDPOINT}/{account}/{name}"))
}

/// `arn:aws:sqs:<region>:<account>:<name>` as (account, name).
pub fn parse_queue_arn(arn: &str) -> Option<(&str, &str)> {
    protocol::arn::account_resource(arn, "sqs").map(|(_, account, name)| (account, name))
}

/// Whether `caller` may send to the queue an ARN names, and it exists (SNS checks this
/// when a queue is subscribed).
pub async fn may_deliver(
    state: &SqsService,
    caller: &Caller,
    queue_arn: &str,
) -> Result<(), ApiError> {
    let url = url_of(queue_arn)?;
    let ctx = Context {
        state,
        caller,
        endpoint: ENDPOINT,
    };
    resolve_cached(&ctx, &url, "sqs:SendMessage")
        .await
        .map(|_| ())
}
