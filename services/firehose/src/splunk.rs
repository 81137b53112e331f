//! The Splunk destination, by the HTTP Event Collector protocol: a buffer is one POST
//! to `/services/collector/event` (each record an event, as JSON when it is JSON, else
//! as a string) or `/services/collector/raw` (the records as they are), with
//! `Authorization: Splunk <token>` and a request channel; HEC answers an `ackId`, and
//! the delivery counts only once `/services/collector/ack` says it was indexed (indexer
//! acknowledgment, as Firehose requires), within `HECAcknowledgmentTimeoutInSeconds`.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use protocol::{ApiError, ErrorCode};

use crate::http::Failure;
use crate::shapes::{
    BufferingHints, ProcessingConfiguration, RetryOptions, S3_BUFFER_SIZE_MAX_MIB, S3Destination,
};

pub const BUFFER_SIZE_MAX_MIB: i64 = 5;
pub const BUFFER_INTERVAL_MAX_S: i64 = 60;
pub const RETRY_DEFAULT_S: i64 = 3_600;
pub const RETRY_MAX_S: i64 = 7_200;
pub const ACK_TIMEOUT_DEFAULT_S: i64 = 180;
const ACK_TIMEOUT_RANGE_S: std::ops::RangeInclusive<i64> = 180..=600;
/// How often an acknowledgment is asked for.
const ACK_POLL: Duration = Duration::from_millis(250);
/// HEC answers are read up to this size.
const ANSWER_BYTES_MAX: usize = 64 * 1024;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SplunkDestination {
    #[serde(rename = "HECEndpoint")]
    pub endpoint: String,
    #[serde(rename = "HECEndpointType")]
    pub endpoint_type: String,
    /// As given; replaced by `token_sealed` before it is stored.
    #[serde(rename = "HECToken", skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(
        rename = "SluiceHECTokenSealed",
        skip_serializing_if = "Option::is_none"
    )]
    pub token_sealed: Option<String>,
    #[serde(
        rename = "HECAcknowledgmentTimeoutInSeconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub ack_timeout_s: Option<i64>,
    #[serde(rename = "RetryOptions", default)]
    pub retry_options: RetryOptions,
    #[serde(rename = "S3BackupMode", skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    #[serde(rename = "S3Configuration")]
    pub s3: S3Destination,
    #[serde(
        rename = "ProcessingConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub processing_configuration: Option<ProcessingConfiguration>,
    #[serde(
        rename = "CloudWatchLoggingOptions",
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_watch_logging_options: Option<Value>,
    #[serde(rename = "BufferingHints", default)]
    pub buffering_hints: BufferingHints,
}

impl SplunkDestination {
    pub fn check(&self) -> Result<(), ApiError> {
        crate::shapes::check_url_allowing_loopback_http(&self.endpoint)?;
        if !["Raw", "Event"].contains(&self.endpoint_type.as_str()) {
            return Err(invalid("HECEndpointType must be Raw or Event."));
        }
        if self.token.is_none() && self.token_sealed.is_none() {
            return Err(invalid(
                "HECToken is required: Sluice has no Secrets Manager.",
            ));
        }
        if let Some(t) = self.ack_timeout_s
            && !ACK_TIMEOUT_RANGE_S.contains(&t)
        {
            return Err(invalid(format!(
                "HECAcknowledgmentTimeoutInSeconds must be between 180 and 600, got {t}."
            )));
        }
        self.retry_options.check(RETRY_MAX_S)?;
        if let Some(size) = self.buffering_hints.size_mib
            && !(1..=BUFFER_SIZE_MAX_MIB).contains(&size)
        {
            return Err(invalid(format!(
                "BufferingHints.SizeInMBs must be between 1 and {BUFFER_SIZE_MAX_MIB}, got {size}."
            )));
        }
        if let Some(interval) = self.buffering_hints.interval_s
            && !(0..=BUFFER_INTERVAL_MAX_S).contains(&interval)
        {
            return Err(invalid(format!(
                "BufferingHints.IntervalInSeconds must be between 0 and {BUFFER_INTERVAL_MAX_S}, got {interval}."
            )));
        }
        match self.s3_backup_mode.as_deref() {
            None | Some("FailedEventsOnly" | "AllEvents") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "S3BackupMode must be FailedEventsOnly or AllEvents, got {other}."
                )));
            }
        }
        if let Some(p) = &self.processing_configuration {
            p.check()?;
        }
        self.s3.check(S3_BUFFER_SIZE_MAX_MIB)
    }

    /// Splunk's buffering defaults: 5 MiB, 60 s.
    pub fn buffering(&self) -> BufferingHints {
        BufferingHints {
            size_mib: Some(self.buffering_hints.size_mib.unwrap_or(5)),
            interval_s: Some(self.buffering_hints.interval_s.unwrap_or(60)),
        }
    }

    pub fn retry_ms(&self) -> i64 {
        self.retry_options.duration_s.unwrap_or(RETRY_DEFAULT_S) * 1000
    }

    pub fn described(&self) -> Value {
        let mut d = self.clone();
        d.buffering_hints = self.buffering();
        d.retry_options.duration_s = Some(self.retry_ms() / 1000);
        d.ack_timeout_s = Some(self.ack_timeout_s.unwrap_or(ACK_TIMEOUT_DEFAULT_S));
        d.s3_backup_mode = Some(
            self.s3_backup_mode
                .clone()
                .unwrap_or_else(|| "FailedEventsOnly".into()),
        );
        let s3 = d.s3.described(false);
        let mut v = serde_json::to_value(&d).expect("serializable");
        if let Value::Object(map) = &mut v {
            // INVARIANT: the HEC token never leaves the server.
            map.remove("HECToken");
            map.remove("SluiceHECTokenSealed");
            map.remove("S3Configuration");
            map.insert("S3DestinationDescription".into(), s3);
        }
        v
    }
}

/// The body of one HEC request.
pub fn body(endpoint_type: &str, records: &[Bytes], arrival_ms: i64) -> Vec<u8> {
    if endpoint_type == "Raw" {
        return crate::encode::lines(records);
    }
    let time = arrival_ms as f64 / 1000.0;
    let mut out = Vec::new();
    for r in records {
        let event = serde_json::from_slice::<Value>(r)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(r).into_owned()));
        out.extend_from_slice(
            serde_json::json!({"time": time, "event": event})
                .to_string()
                .as_bytes(),
        );
    }
    out
}

fn failure(code: &str, message: impl Into<String>) -> Failure {
    Failure {
        code: code.into(),
        message: message.into(),
    }
}

/// One delivery attempt: the POST, then the acknowledgment.
pub async fn send(
    client: &reqwest::Client,
    destination: &SplunkDestination,
    token: &str,
    channel: &str,
    records: &[Bytes],
    arrival_ms: i64,
) -> Result<(), Failure> {
    let base = destination.endpoint.trim_end_matches('/');
    let path = if destination.endpoint_type == "Raw" {
        "/services/collector/raw"
    } else {
        "/services/collector/event"
    };
    let response = client
        .post(format!("{base}{path}"))
        .header("Authorization", format!("Splunk {token}"))
        .header("X-Splunk-Request-Channel", channel)
        .body(body(&destination.endpoint_type, records, arrival_ms))
        .send()
        .await
        .map_err(|e| {
            failure(
                "Splunk.ConnectionTimeout",
                format!("The HEC request failed: {e}"),
            )
        })?;
    let status = response.status();
    let answer: Value =
        serde_json::from_slice(&crate::http::read_limited(response, ANSWER_BYTES_MAX).await)
            .unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(failure(
            "Splunk.InvalidResponse",
            format!("HEC answered {status}: {answer}"),
        ));
    }
    let Some(ack) = answer.get("ackId").and_then(Value::as_u64) else {
        return Err(failure(
            "Splunk.AckNotEnabled",
            "HEC answered no ackId: turn indexer acknowledgment on for the token.",
        ));
    };
    let timeout =
        Duration::from_secs(destination.ack_timeout_s.unwrap_or(ACK_TIMEOUT_DEFAULT_S) as u64);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let response = client
            .post(format!("{base}/services/collector/ack?channel={channel}"))
            .header("Authorization", format!("Splunk {token}"))
            .header("X-Splunk-Request-Channel", channel)
            .body(serde_json::json!({ "acks": [ack] }).to_string())
            .send()
            .await
            .map_err(|e| {
                failure(
                    "Splunk.ConnectionTimeout",
                    format!("The ack request failed: {e}"),
                )
            })?;
        let answer: Value =
            serde_json::from_slice(&crate::http::read_limited(response, ANSWER_BYTES_MAX).await)
                .unwrap_or(Value::Null);
        if answer["acks"][ack.to_string()] == Value::Bool(true) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(failure(
                "Splunk.AckTimeout",
                format!(
                    "HEC did not acknowledge ackId {ack} within {} s.",
                    timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(ACK_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_json_as_json_and_text_as_text() {
        let out = body(
            "Event",
            &[
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"plain"),
            ],
            1_500,
        );
        let events: Vec<Value> = serde_json::Deserializer::from_slice(&out)
            .into_iter::<Value>()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            events,
            vec![
                serde_json::json!({"event": {"a": 1}, "time": 1.5}),
                serde_json::json!({"event": "plain", "time": 1.5}),
            ]
        );
        assert_eq!(body("Raw", &[Bytes::from_static(b"x")], 0), b"x\n");
    }
}
