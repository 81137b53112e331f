//! Queue attributes: the ones a queue is made or set with (checked against SQS's
//! documented bounds, kept as given) and the defaults they have when not given.

use std::collections::BTreeMap;

use protocol::ApiError;
use protocol::sqs::SqsError;
use serde::Deserialize;

use crate::sqs_error;

pub const DELAY_MAX_S: i64 = 900;
pub const MESSAGE_SIZE_MIN: i64 = 1_024;
pub const MESSAGE_SIZE_MAX: i64 = 1_048_576;
pub const RETENTION_MIN_S: i64 = 60;
pub const RETENTION_MAX_S: i64 = 1_209_600;
pub const RETENTION_DEFAULT_S: i64 = 345_600;
pub const WAIT_MAX_S: i64 = 20;
pub const VISIBILITY_MAX_S: i64 = 43_200;
pub const VISIBILITY_DEFAULT_S: i64 = 30;
pub const MAX_RECEIVE_COUNT_MAX: i64 = 1_000;
/// The largest policy document a queue keeps (SQS's limit).
const POLICY_MAX: usize = 20_480;

/// The settable attributes of a standard queue.
pub const SETTABLE: [&str; 11] = [
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
];

/// What GetQueueAttributes can also answer.
pub const READ_ONLY: [&str; 6] = [
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
];

/// The attributes of FIFO queues only.
pub const FIFO_ONLY: [&str; 4] = [
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// A queue's settable attributes as given.
pub type Attributes = BTreeMap<String, String>;

fn bad_value(name: &str, why: &str) -> ApiError {
    sqs_error(
        SqsError::InvalidAttributeValue,
        format!("Invalid value for the parameter {name}: {why}"),
    )
}

fn integer(name: &str, value: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| bad_value(name, &format!("it is a whole number from {min} to {max}.")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedrivePolicy {
    dead_letter_target_arn: String,
    max_receive_count: serde_json::Value,
}

/// The dead-letter queue's ARN and the receives before a message moves there.
pub fn redrive(attributes: &Attributes) -> Option<(String, i64)> {
    let policy: RedrivePolicy = serde_json::from_str(attributes.get("RedrivePolicy")?).ok()?;
    let count = match &policy.max_receive_count {
        serde_json::Value::Number(n) => n.as_i64()?,
        serde_json::Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    Some((policy.dead_letter_target_arn, count))
}

/// Checks attributes given to CreateQueue or SetQueueAttributes of a queue that is
/// (`fifo`) or is not a FIFO queue.
pub fn check(attributes: &Attributes, fifo: bool) -> Result<(), ApiError> {
    for (name, value) in attributes {
        match name.as_str() {
            "DelaySeconds" => {
                integer(name, value, 0, DELAY_MAX_S)?;
            }
            "MaximumMessageSize" => {
                integer(name, value, MESSAGE_SIZE_MIN, MESSAGE_SIZE_MAX)?;
            }
            "MessageRetentionPeriod" => {
                integer(name, value, RETENTION_MIN_S, RETENTION_MAX_S)?;
            }
            "ReceiveMessageWaitTimeSeconds" => {
                integer(name, value, 0, WAIT_MAX_S)?;
            }
            "VisibilityTimeout" => {
                integer(name, value, 0, VISIBILITY_MAX_S)?;
            }
            "KmsDataKeyReusePeriodSeconds" => {
                integer(name, value, 60, 86_400)?;
            }
            "SqsManagedSseEnabled" => {
                if value != "true" && value != "false" {
                    return Err(bad_value(name, "it is true or false."));
                }
            }
            "KmsMasterKeyId" => {
                if value.is_empty() || value.len() > 2048 {
                    return Err(bad_value(name, "it names a KMS key."));
                }
            }
            "Policy" | "RedriveAllowPolicy" => {
                if !value.is_empty() {
                    if value.len() > POLICY_MAX {
                        return Err(bad_value(name, "it is at most 20 KiB."));
                    }
                    // What a Policy means is the authorizer's to read when it is
                    // stored (crate::permissions::store).
                    serde_json::from_str::<serde_json::Value>(value)
                        .map_err(|_| bad_value(name, "it is a JSON document."))?;
                }
            }
            "RedrivePolicy" => {
                if !value.is_empty() {
                    let one = Attributes::from([(name.clone(), value.clone())]);
                    let (arn, count) = redrive(&one).ok_or_else(|| {
                        bad_value(
                            name,
                            "it is JSON with deadLetterTargetArn and maxReceiveCount.",
                        )
                    })?;
                    if !(1..=MAX_RECEIVE_COUNT_MAX).contains(&count) {
                        return Err(bad_value(name, "maxReceiveCount is from 1 to 1000."));
                    }
                    if !arn.starts_with("arn:aws:sqs:") {
                        return Err(bad_value(name, "deadLetterTargetArn is a queue ARN."));
                    }
                }
            }
            n if FIFO_ONLY.contains(&n) && !fifo => {
                return Err(sqs_error(
                    SqsError::InvalidAttributeName,
                    format!("Unknown Attribute {n}: it is an attribute of FIFO queues."),
                ));
            }
            "FifoQueue" => {
                if value != "true" {
                    return Err(bad_value(name, "a FIFO queue's FifoQueue is true."));
                }
            }
            "ContentBasedDeduplication" => {
                if value != "true" && value != "false" {
                    return Err(bad_value(name, "it is true or false."));
                }
            }
            "DeduplicationScope" => {
                if value != "messageGroup" && value != "queue" {
                    return Err(bad_value(name, "it is messageGroup or queue."));
                }
            }
            "FifoThroughputLimit" => {
                if value != "perQueue" && value != "perMessageGroupId" {
                    return Err(bad_value(name, "it is perQueue or perMessageGroupId."));
                }
            }
            n => {
                return Err(sqs_error(
                    SqsError::InvalidAttributeName,
                    format!("Unknown Attribute {n}."),
                ));
            }
        }
    }
    Ok(())
}

/// An attribute's value, with its default when not set.
pub fn value(attributes: &Attributes, name: &str) -> Option<String> {
    if let Some(v) = attributes.get(name) {
        return Some(v.clone());
    }
    Some(
        match name {
            "DelaySeconds" => "0",
            "MaximumMessageSize" => "1048576",
            "MessageRetentionPeriod" => "345600",
            "ReceiveMessageWaitTimeSeconds" => "0",
            "VisibilityTimeout" => "30",
            "SqsManagedSseEnabled" => "true",
            "ContentBasedDeduplication" => "false",
            "DeduplicationScope" => "queue",
            "FifoThroughputLimit" => "perQueue",
            _ => return None,
        }
        .to_string(),
    )
}

/// Whether a queue is a FIFO queue.
pub fn is_fifo(attributes: &Attributes) -> bool {
    attributes.get("FifoQueue").is_some_and(|v| v == "true")
}

/// A numeric attribute with its default.
pub fn number(attributes: &Attributes, name: &str) -> i64 {
    value(attributes, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bounds_and_names_are_sqss() {
        check(
            &attrs(&[("DelaySeconds", "900"), ("VisibilityTimeout", "0")]),
            false,
        )
        .unwrap();
        check(
            &attrs(&[
                ("FifoQueue", "true"),
                ("DeduplicationScope", "messageGroup"),
            ]),
            true,
        )
        .unwrap();
        assert!(check(&attrs(&[("DeduplicationScope", "group")]), true).is_err());
        for bad in [
            ("DelaySeconds", "901"),
            ("MaximumMessageSize", "1023"),
            ("MessageRetentionPeriod", "59"),
            ("ReceiveMessageWaitTimeSeconds", "21"),
            ("VisibilityTimeout", "x"),
            (
                "RedrivePolicy",
                "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:1:d\",\"maxReceiveCount\":0}",
            ),
            ("Nope", "1"),
            ("FifoQueue", "true"),
        ] {
            assert!(check(&attrs(&[bad]), false).is_err(), "{bad:?}");
        }
        let r = attrs(&[(
            "RedrivePolicy",
            "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:1:d\",\"maxReceiveCount\":\"3\"}",
        )]);
        check(&r, false).unwrap();
        assert_eq!(redrive(&r), Some(("arn:aws:sqs:us-east-1:1:d".into(), 3)));
        assert_eq!(number(&Attributes::new(), "VisibilityTimeout"), 30);
        let allow = r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"}]}"#;
        check(&attrs(&[("Policy", allow)]), false).unwrap();
        assert!(check(&attrs(&[("Policy", "{not json")]), false).is_err());
        assert_eq!(value(&Attributes::new(), "Policy"), None);
    }
}
