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
/// KmsDataKeyReusePeriodSeconds: from a minute to a day, five minutes by default.
pub const KMS_REUSE_MIN_S: i64 = 60;
pub const KMS_REUSE_MAX_S: i64 = 86_400;
pub const KMS_REUSE_DEFAULT_S: i64 = 300;
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

/// Source queues a byQueue RedriveAllowPolicy names at most (SQS's limit).
const REDRIVE_SOURCES_MAX: usize = 10;

/// Which queues may name a queue as their dead-letter queue.
#[derive(Debug, PartialEq, Eq)]
pub enum RedriveAllow {
    All,
    None,
    ByQueue(Vec<String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RedriveAllowPolicy {
    redrive_permission: String,
    source_queue_arns: Option<Vec<String>>,
}

/// A RedriveAllowPolicy's meaning, or why it has none.
pub fn redrive_allow(value: &str) -> Result<RedriveAllow, &'static str> {
    let policy: RedriveAllowPolicy = serde_json::from_str(value)
        .map_err(|_| "it is JSON with redrivePermission and, for byQueue, sourceQueueArns.")?;
    match (policy.redrive_permission.as_str(), policy.source_queue_arns) {
        ("allowAll", None) => Ok(RedriveAllow::All),
        ("denyAll", None) => Ok(RedriveAllow::None),
        ("byQueue", Some(arns)) if (1..=REDRIVE_SOURCES_MAX).contains(&arns.len()) => {
            Ok(RedriveAllow::ByQueue(arns))
        }
        ("byQueue", _) => Err("byQueue names 1 to 10 sourceQueueArns."),
        ("allowAll" | "denyAll", Some(_)) => Err("sourceQueueArns go with byQueue only."),
        _ => Err("redrivePermission is allowAll, denyAll or byQueue."),
    }
}

/// Whether a queue with these attributes may be the dead-letter queue of `source`
/// (any queue may when it has no RedriveAllowPolicy).
pub fn allows_redrive_from(attributes: &Attributes, source: &str) -> bool {
    match attributes
        .get("RedriveAllowPolicy")
        .map(|v| redrive_allow(v))
    {
        None | Some(Err(_)) | Some(Ok(RedriveAllow::All)) => true,
        Some(Ok(RedriveAllow::None)) => false,
        Some(Ok(RedriveAllow::ByQueue(arns))) => arns.iter().any(|a| a == source),
    }
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
                integer(name, value, KMS_REUSE_MIN_S, KMS_REUSE_MAX_S)?;
            }
            "SqsManagedSseEnabled" => {
                if value != "true" && value != "false" {
                    return Err(bad_value(name, "it is true or false."));
                }
                if value == "true"
                    && attributes
                        .get("KmsMasterKeyId")
                        .is_some_and(|k| !k.is_empty())
                {
                    return Err(bad_value(
                        name,
                        "a queue uses one kind of server-side encryption at a time: SQS-managed or a KmsMasterKeyId.",
                    ));
                }
            }
            "KmsMasterKeyId" => {
                // Empty turns KMS encryption off; a key is checked when a message is
                // sealed under it, as SQS does.
                if value.len() > 2048 || value.chars().any(char::is_whitespace) {
                    return Err(bad_value(name, "it names a KMS key."));
                }
            }
            "RedriveAllowPolicy" if !value.is_empty() => {
                redrive_allow(value).map_err(|why| bad_value(name, why))?;
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
    let kms = attributes
        .get("KmsMasterKeyId")
        .is_some_and(|k| !k.is_empty());
    match name {
        "KmsMasterKeyId" if !kms => return None,
        "KmsDataKeyReusePeriodSeconds" if !kms => return None,
        "SqsManagedSseEnabled" if kms => return Some("false".into()),
        _ => {}
    }
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
            "KmsDataKeyReusePeriodSeconds" => "300",
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

    #[test]
    fn redrive_allow_policies_say_which_sources() {
        let src = "arn:aws:sqs:us-east-1:111122223333:src";
        let by = |list: &str| {
            attrs(&[(
                "RedriveAllowPolicy",
                &format!(r#"{{"redrivePermission":"byQueue","sourceQueueArns":{list}}}"#),
            )])
        };
        assert!(allows_redrive_from(&Attributes::new(), src));
        assert!(allows_redrive_from(&by(&format!(r#"["{src}"]"#)), src));
        assert!(!allows_redrive_from(
            &by(r#"["arn:aws:sqs:us-east-1:1:x"]"#),
            src
        ));
        let deny = attrs(&[("RedriveAllowPolicy", r#"{"redrivePermission":"denyAll"}"#)]);
        assert!(!allows_redrive_from(&deny, src));
        check(&deny, false).unwrap();
        check(&by(r#"["a"]"#), false).unwrap();
        for bad in [
            r#"{"redrivePermission":"byQueue"}"#,
            r#"{"redrivePermission":"byQueue","sourceQueueArns":[]}"#,
            r#"{"redrivePermission":"allowAll","sourceQueueArns":["a"]}"#,
            r#"{"redrivePermission":"some"}"#,
            r#"{"redrivePermission":"allowAll","other":1}"#,
        ] {
            assert!(
                check(&attrs(&[("RedriveAllowPolicy", bad)]), false).is_err(),
                "{bad}"
            );
        }
        let eleven: Vec<String> = (0..11).map(|i| format!("\"a{i}\"")).collect();
        assert!(check(&by(&format!("[{}]", eleven.join(","))), false).is_err());
    }
}
