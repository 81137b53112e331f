//! Stream ARNs: `arn:aws:kinesis:<region>:<account>:stream/<name>`.

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamArn {
    pub region: String,
    pub account_id: String,
    pub stream_name: String,
}

impl StreamArn {
    pub fn parse(text: &str) -> Result<StreamArn, ApiError> {
        let bad = || {
            ApiError::validation(
                text,
                "streamARN",
                "Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            )
        };
        if text.len() > 2048 {
            return Err(bad());
        }
        let mut parts = text.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some("kinesis"),
            Some(region),
            Some(account),
            Some(rest),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(bad());
        };
        if !partition.starts_with("aws")
            || account.len() != 12
            || !account.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let Some(name) = rest.strip_prefix("stream/") else {
            return Err(bad());
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
