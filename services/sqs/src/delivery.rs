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
    let (account, name) = parse_queue_arn(queue_arn).ok_or_else(|| {
        sqs_error(
            SqsError::InvalidAddress,
            format!("{queue_arn} is not a queue ARN."),
        )
    })?;
    let input: SendInput = serde_json::from_value(json!({
        "QueueUrl": format!("https://sqs/{account}/{name}"),
        "MessageBody": body,
        "MessageAttributes": attributes,
        "MessageGroupId": group.0,
        "MessageDeduplicationId": group.1,
    }))
    .map_err(|e| ApiError::new(ErrorCode::InternalFailure, format!("a delivery: {e}")))?;
    let ctx = Context {
        state,
        caller,
        endpoint: "https://sqs",
    };
    let sent = send_message(&ctx, input).await?;
    Ok(sent["MessageId"].as_str().unwrap_or_default().to_string())
}

/// `arn:aws:sqs:<region>:<account>:<name>` as (account, name).
pub fn parse_queue_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("arn"), Some(_), Some("sqs"), Some(_), Some(account), Some(name), None)
            if account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !name.is_empty() =>
        {
            Some((account, name))
        }
        _ => None,
    }
}

/// Whether `caller` may send to the queue an ARN names, and it exists (SNS checks this
/// when a queue is subscribed).
pub async fn may_deliver(
    state: &SqsService,
    caller: &Caller,
    queue_arn: &str,
) -> Result<(), ApiError> {
    let (account, name) = parse_queue_arn(queue_arn).ok_or_else(|| {
        sqs_error(
            SqsError::InvalidAddress,
            format!("{queue_arn} is not a queue ARN."),
        )
    })?;
    let ctx = Context {
        state,
        caller,
        endpoint: "https://sqs",
    };
    resolve_cached(
        &ctx,
        &format!("https://sqs/{account}/{name}"),
        "sqs:SendMessage",
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_arns_are_read() {
        assert_eq!(
            parse_queue_arn("arn:aws:sqs:us-east-1:000000000000:jobs"),
            Some(("000000000000", "jobs"))
        );
        for bad in [
            "arn:aws:sns:us-east-1:000000000000:jobs",
            "arn:aws:sqs:us-east-1:0000:jobs",
            "arn:aws:sqs:us-east-1:000000000000:",
            "arn:aws:sqs:us-east-1:000000000000:a:b",
            "https://sqs/000000000000/jobs",
        ] {
            assert_eq!(parse_queue_arn(bad), None, "{bad}");
        }
    }
}
