//! The HTTP endpoint destination, with Firehose's documented request and response
//! contract: a POST of `{"requestId", "timestamp", "records": [{"data": base64}]}`
//! with the `X-Amz-Firehose-Protocol-Version`, `-Request-Id`, `-Source-Arn`,
//! `-Access-Key` and `-Common-Attributes` headers (the body gzip'd when asked), and a
//! 200 answer echoing the request id. Destination TLS trusts the system's roots and
//! the bundle in `SLUICE_DESTINATION_CA_BUNDLE`; plain `http://` only to loopback.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use protocol::{ApiError, ErrorCode};

use serde_json::Value;

use crate::shapes::{
    BufferingHints, ProcessingConfiguration, RetryOptions, S3_BUFFER_SIZE_MAX_MIB, S3Destination,
    check_url, enabled,
};

/// The environment variable naming extra CA certificates (PEM) destinations may use.
pub const CA_BUNDLE_ENV: &str = "SLUICE_DESTINATION_CA_BUNDLE";
/// One request to an endpoint must be answered within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// An endpoint's answer is read up to this size.
const RESPONSE_BYTES_MAX: usize = 64 * 1024;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

/// HTTP endpoints buffer 1-64 MiB.
pub const HTTP_BUFFER_SIZE_MAX_MIB: i64 = 64;
/// How long an HTTP endpoint delivery is retried by default, and at most (2 hours).
pub const HTTP_RETRY_DEFAULT_S: i64 = 300;
pub const HTTP_RETRY_MAX_S: i64 = 7_200;
/// Common attributes one HTTP endpoint request carries at most.
pub const COMMON_ATTRIBUTES_MAX: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EndpointConfiguration {
    #[serde(rename = "Url")]
    pub url: String,
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// As given; replaced by `access_key_sealed` before it is stored.
    #[serde(rename = "AccessKey", skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// The access key sealed under the server's root key (base64); never described.
    #[serde(
        rename = "SluiceAccessKeySealed",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_sealed: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommonAttribute {
    #[serde(rename = "AttributeName")]
    pub name: String,
    #[serde(rename = "AttributeValue")]
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestConfiguration {
    #[serde(rename = "ContentEncoding", skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(
        rename = "CommonAttributes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub common_attributes: Vec<CommonAttribute>,
}

/// An HTTP endpoint destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HttpDestination {
    #[serde(rename = "EndpointConfiguration")]
    pub endpoint: EndpointConfiguration,
    #[serde(rename = "BufferingHints", default)]
    pub buffering_hints: BufferingHints,
    #[serde(
        rename = "CloudWatchLoggingOptions",
        skip_serializing_if = "Option::is_none"
    )]
    pub cloud_watch_logging_options: Option<Value>,
    #[serde(rename = "RequestConfiguration", default)]
    pub request: RequestConfiguration,
    #[serde(
        rename = "ProcessingConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub processing_configuration: Option<ProcessingConfiguration>,
    #[serde(rename = "RoleARN", skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(rename = "RetryOptions", default)]
    pub retry_options: RetryOptions,
    #[serde(rename = "S3BackupMode", skip_serializing_if = "Option::is_none")]
    pub s3_backup_mode: Option<String>,
    #[serde(rename = "S3Configuration")]
    pub s3: S3Destination,
    #[serde(
        rename = "SecretsManagerConfiguration",
        skip_serializing_if = "Option::is_none"
    )]
    pub secrets_manager_configuration: Option<Value>,
}

impl HttpDestination {
    pub fn check(&self) -> Result<(), ApiError> {
        let url = &self.endpoint.url;
        if url.len() > 1000 {
            return Err(invalid(
                "EndpointConfiguration.Url is longer than 1000 characters.",
            ));
        }
        check_url(url)?;
        if let Some(key) = &self.endpoint.access_key
            && key.len() > 4096
        {
            return Err(invalid(
                "EndpointConfiguration.AccessKey is longer than 4096 characters.",
            ));
        }
        self.buffering_hints.check(HTTP_BUFFER_SIZE_MAX_MIB)?;
        match self.request.content_encoding.as_deref() {
            None | Some("NONE") | Some("GZIP") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "RequestConfiguration.ContentEncoding must be NONE or GZIP, got {other}."
                )));
            }
        }
        if self.request.common_attributes.len() > COMMON_ATTRIBUTES_MAX {
            return Err(invalid(format!(
                "RequestConfiguration.CommonAttributes holds at most {COMMON_ATTRIBUTES_MAX} attributes."
            )));
        }
        self.retry_options.check(HTTP_RETRY_MAX_S)?;
        match self.s3_backup_mode.as_deref() {
            None | Some("FailedDataOnly") | Some("AllData") => {}
            Some(other) => {
                return Err(invalid(format!(
                    "S3BackupMode must be FailedDataOnly or AllData, got {other}."
                )));
            }
        }
        if let Some(p) = &self.processing_configuration {
            p.check()?;
        }
        if enabled(&self.secrets_manager_configuration) {
            return Err(invalid(
                "Secrets Manager is not available here: give the AccessKey, or name a Sluice connection in RoleARN.",
            ));
        }
        self.s3.check(S3_BUFFER_SIZE_MAX_MIB)
    }

    pub fn retry_ms(&self) -> i64 {
        self.retry_options
            .duration_s
            .unwrap_or(HTTP_RETRY_DEFAULT_S)
            * 1000
    }

    pub fn described(&self) -> Value {
        let mut d = self.clone();
        d.buffering_hints = self.buffering_hints.described();
        d.retry_options.duration_s = Some(
            self.retry_options
                .duration_s
                .unwrap_or(HTTP_RETRY_DEFAULT_S),
        );
        d.s3_backup_mode = Some(
            self.s3_backup_mode
                .clone()
                .unwrap_or_else(|| "FailedDataOnly".into()),
        );
        if d.request.content_encoding.is_none() {
            d.request.content_encoding = Some("NONE".into());
        }
        let s3 = d.s3.described(false);
        let mut v = serde_json::to_value(&d).expect("serializable");
        if let Value::Object(map) = &mut v {
            map.remove("S3Configuration");
            map.insert("S3DestinationDescription".into(), s3);
            if let Some(Value::Object(endpoint)) = map.get_mut("EndpointConfiguration") {
                // INVARIANT: the access key never leaves the server.
                endpoint.remove("AccessKey");
                endpoint.remove("SluiceAccessKeySealed");
            }
        }
        v
    }
}

/// Extra roots from `SLUICE_DESTINATION_CA_BUNDLE`, read once per client.
fn extra_roots() -> Vec<reqwest::Certificate> {
    let Ok(path) = std::env::var(CA_BUNDLE_ENV) else {
        return Vec::new();
    };
    match std::fs::read(&path) {
        Ok(pem) => reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_else(|e| {
            tracing::error!(path, error = %e, "the destination CA bundle does not parse");
            Vec::new()
        }),
        Err(e) => {
            tracing::error!(path, error = %e, "the destination CA bundle cannot be read");
            Vec::new()
        }
    }
}

/// The client every HTTP endpoint delivery of this process uses.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_merge(extra_roots())
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a TLS client builds")
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "requestId")]
    request_id: Option<String>,
    #[serde(rename = "errorMessage")]
    error_message: Option<String>,
}

/// Why one attempt failed (kept for the error output).
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// One attempt to deliver `records` as request `request_id`.
#[allow(clippy::too_many_arguments)]
pub async fn post(
    client: &reqwest::Client,
    destination: &HttpDestination,
    access_key: Option<&str>,
    source_arn: &str,
    request_id: &str,
    timestamp_ms: i64,
    records: &[Bytes],
) -> Result<(), Failure> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut body =
        Vec::with_capacity(records.iter().map(|r| r.len() * 4 / 3 + 16).sum::<usize>() + 128);
    body.extend_from_slice(
        format!("{{\"requestId\":\"{request_id}\",\"timestamp\":{timestamp_ms},\"records\":[")
            .as_bytes(),
    );
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"data\":\"");
        body.extend_from_slice(b64.encode(record).as_bytes());
        body.extend_from_slice(b"\"}");
    }
    body.extend_from_slice(b"]}");
    let mut request = client
        .post(&destination.endpoint.url)
        .header("Content-Type", "application/json")
        .header("X-Amz-Firehose-Protocol-Version", "1.0")
        .header("X-Amz-Firehose-Request-Id", request_id)
        .header("X-Amz-Firehose-Source-Arn", source_arn);
    if let Some(key) = access_key {
        request = request.header("X-Amz-Firehose-Access-Key", key);
    }
    if !destination.request.common_attributes.is_empty() {
        let attributes: serde_json::Map<String, serde_json::Value> = destination
            .request
            .common_attributes
            .iter()
            .map(|a| (a.name.clone(), a.value.clone().into()))
            .collect();
        request = request.header(
            "X-Amz-Firehose-Common-Attributes",
            serde_json::json!({ "commonAttributes": attributes }).to_string(),
        );
    }
    let body = if destination.request.content_encoding.as_deref() == Some("GZIP") {
        request = request.header("Content-Encoding", "gzip");
        crate::encode::gzip(&body)
    } else {
        body
    };
    let response = request.body(body).send().await.map_err(|e| Failure {
        code: "HttpEndpoint.RequestFailed".into(),
        message: format!("The request to the endpoint failed: {e}"),
    })?;
    let status = response.status();
    let bytes = read_limited(response, RESPONSE_BYTES_MAX).await;
    let answer: Option<Answer> = serde_json::from_slice(&bytes).ok();
    if !status.is_success() {
        let detail = answer.and_then(|a| a.error_message).unwrap_or_else(|| {
            String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned()
        });
        return Err(Failure {
            code: format!("HttpEndpoint.ResponseErrorCode{}", status.as_u16()),
            message: format!("The endpoint answered {status}: {detail}"),
        });
    }
    match answer.and_then(|a| a.request_id) {
        Some(id) if id == request_id => Ok(()),
        Some(id) => Err(Failure {
            code: "HttpEndpoint.InvalidResponseFromDestination".into(),
            message: format!("The endpoint answered request id {id:?}, not {request_id:?}."),
        }),
        None => Err(Failure {
            code: "HttpEndpoint.InvalidResponseFromDestination".into(),
            message: "The endpoint's answer carries no requestId.".into(),
        }),
    }
}

/// An answer's body, read up to `limit` bytes (the rest is not read).
pub(crate) async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = limit - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_http_destinations_keep_their_access_key() {
        let h: HttpDestination = serde_json::from_value(serde_json::json!({
            "EndpointConfiguration": {"Url": "https://127.0.0.1:9/x", "AccessKey": "s3cret"},
            "S3Configuration": {"RoleARN": "arn:aws:iam::123456789012:role/c", "BucketARN": "arn:aws:s3:::bkt"}
        }))
        .unwrap();
        let text = h.described().to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("S3DestinationDescription"));
    }
}
