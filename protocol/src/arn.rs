//! Stream ARNs: `arn:aws:kinesis:<region>:<account>:stream/<name>`.

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamArn {
    pub region: String,
    pub account_id: String,
    pub stream_name: String,
}

/// `arn:aws*:SERVICE:REGION:ACCOUNT:RESOURCE` (a 12-digit account, a resource of no
/// `:`, as SQS queues and SNS topics are named) as (region, account, resource).
pub fn account_resource<'t>(text: &'t str, service: &str) -> Option<(&'t str, &'t str, &'t str)> {
    let mut parts = text.split(':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (
            Some("arn"),
            Some(partition),
            Some(s),
            Some(region),
            Some(account),
            Some(resource),
            None,
        ) if partition.starts_with("aws")
            && s == service
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !resource.is_empty() =>
        {
            Some((region, account, resource))
        }
        _ => None,
    }
}

/// `arn:aws*:kinesis:REGION:ACCOUNT:KIND/NAME` as (region, account, name), checked as
/// the model's pattern for `member` says.
fn kinesis_arn<'t>(
    text: &'t str,
    member: &str,
    kind: &str,
) -> Result<(&'t str, &'t str, &'t str), ApiError> {
    let bad = || {
        ApiError::validation(
            text,
            member,
            &format!(
                "Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{{12}}:{kind}/\\S+"
            ),
        )
    };
    if text.len() > 2048 {
        return Err(bad());
    }
    let mut parts = text.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("kinesis"), Some(region), Some(account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    if !partition.starts_with("aws")
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let name = rest
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(bad)?;
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    Ok((region, account, name))
}

/// A Kinesis queue's ARN, `arn:aws:kinesis:REGION:ACCOUNT:queue/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueArn {
    pub region: String,
    pub account_id: String,
    pub queue_name: String,
}

impl QueueArn {
    pub fn parse(text: &str) -> Result<QueueArn, ApiError> {
        let (region, account, name) = kinesis_arn(text, "queueARN", "queue")?;
        Ok(QueueArn {
            region: region.to_string(),
            account_id: account.to_string(),
            queue_name: name.to_string(),
        })
    }

    pub fn format(region: &str, account_id: &str, queue_name: &str) -> String {
        format!("arn:aws:kinesis:{region}:{account_id}:queue/{queue_name}")
    }
}

impl StreamArn {
    pub fn parse(text: &str) -> Result<StreamArn, ApiError> {
        let (region, account, name) = kinesis_arn(text, "streamARN", "stream")?;
        Ok(StreamArn {
            region: region.to_string(),
            account_id: account.to_string(),
            stream_name: name.to_string(),
        })
    }

    pub fn format(region: &str, account_id: &str, stream_name: &str) -> String {
        format!("arn:aws:kinesis:{region}:{account_id}:stream/{stream_name}")
    }
}

/// A stream consumer's ARN:
/// `arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<created, s>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerArn {
    pub stream: StreamArn,
    pub consumer_name: String,
    /// The consumer's creation time, in seconds since the epoch.
    pub created_s: i64,
}

impl ConsumerArn {
    pub fn parse(text: &str) -> Result<ConsumerArn, ApiError> {
        let bad = || {
            ApiError::validation(
                text,
                "consumerARN",
                "Member must satisfy regular expression pattern: ^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+",
            )
        };
        if text.len() > 2048 {
            return Err(bad());
        }
        let (stream, consumer) = text.split_once("/consumer/").ok_or_else(bad)?;
        let stream = StreamArn::parse(stream).map_err(|_| bad())?;
        let (name, created) = consumer.rsplit_once(':').ok_or_else(bad)?;
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        let created_s = created
            .parse::<i64>()
            .ok()
            .filter(|_| !created.is_empty() && created.bytes().all(|b| b.is_ascii_digit()));
        match (name_ok, created_s) {
            (true, Some(created_s)) => Ok(ConsumerArn {
                stream,
                consumer_name: name.to_string(),
                created_s,
            }),
            _ => Err(bad()),
        }
    }

    pub fn format(stream_arn: &str, consumer_name: &str, created_s: i64) -> String {
        format!("{stream_arn}/consumer/{consumer_name}:{created_s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_resource_arns_are_read() {
        assert_eq!(
            account_resource("arn:aws:sqs:us-east-1:000000000000:jobs", "sqs"),
            Some(("us-east-1", "000000000000", "jobs"))
        );
        for bad in [
            "arn:aws:sns:us-east-1:000000000000:jobs",
            "arn:aws:sqs:us-east-1:0000:jobs",
            "arn:aws:sqs:us-east-1:000000000000:",
            "arn:aws:sqs:us-east-1:000000000000:a:b",
            "arn:gcp:sqs:us-east-1:000000000000:jobs",
            "https://sqs/000000000000/jobs",
        ] {
            assert_eq!(account_resource(bad, "sqs"), None, "{bad}");
        }
    }

    #[test]
    fn queue_arns_parse_as_stream_arns_do() {
        let arn = QueueArn::parse("arn:aws:kinesis:us-east-1:123456789012:queue/q-1").unwrap();
        assert_eq!(
            (
                arn.region.as_str(),
                arn.account_id.as_str(),
                arn.queue_name.as_str()
            ),
            ("us-east-1", "123456789012", "q-1")
        );
        assert_eq!(
            QueueArn::format("us-east-1", "123456789012", "q-1"),
            "arn:aws:kinesis:us-east-1:123456789012:queue/q-1"
        );
        for bad in [
            "arn:aws:kinesis:us-east-1:123456789012:stream/q",
            "arn:aws:kinesis:us-east-1:123456789012:queueq",
            "arn:aws:kinesis:us-east-1:12345:queue/q",
            "arn:aws:kinesis:us-east-1:123456789012:queue/",
        ] {
            let e = QueueArn::parse(bad).unwrap_err();
            assert!(
                e.message.contains("queueARN") && e.message.contains(":queue/"),
                "{bad}: {e}"
            );
        }
        let e = StreamArn::parse("arn:aws:kinesis:us-east-1:123456789012:queue/q").unwrap_err();
        assert!(
            e.message
                .contains("pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+")
        );
    }

    #[test]
    fn parses_and_formats() {
        let text = StreamArn::format("us-east-1", "000000000000", "orders");
        let arn = StreamArn::parse(&text).unwrap();
        assert_eq!(arn.stream_name, "orders");
        assert_eq!(arn.account_id, "000000000000");
        for bad in [
            "arn:aws:kinesis:us-east-1:123:stream/x",
            "arn:aws:sqs:us-east-1:000000000000:stream/x",
            "arn:aws:kinesis:us-east-1:000000000000:table/x",
            "arn:aws:kinesis:us-east-1:000000000000:stream/",
        ] {
            assert!(StreamArn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn consumer_arns_parse_and_format() {
        let stream = StreamArn::format("us-east-1", "000000000000", "orders");
        let text = ConsumerArn::format(&stream, "app-1", 1_764_000_000);
        let arn = ConsumerArn::parse(&text).unwrap();
        assert_eq!(arn.stream.stream_name, "orders");
        assert_eq!(arn.consumer_name, "app-1");
        assert_eq!(arn.created_s, 1_764_000_000);
        for bad in [
            stream.clone(),
            format!("{stream}/consumer/app"),
            format!("{stream}/consumer/:1"),
            format!("{stream}/consumer/a b:1"),
            format!("{stream}/consumer/app:x1"),
        ] {
            assert!(ConsumerArn::parse(&bad).is_err(), "{bad}");
        }
    }
}
