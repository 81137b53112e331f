//! The HTTP endpoint destination, with Firehose's documented request and response
//! contract: a POST of `{"requestId", "timestamp", "records": [{"data": base64}]}`
//! with the `X-Amz-Firehose-Protocol-Version`, `-Request-Id`, `-Source-Arn`,
//! `-Access-Key` and `-Common-Attributes` headers (the body gzip'd when asked), and a
//! 200 answer echoing the request id. Destination TLS trusts the system's roots and
//! the bundle in `SLUICE_DESTINATION_CA_BUNDLE`; plain `http://` only to loopback.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;

use protocol::{ApiError, ErrorCode};

use crate::config::HttpDestination;

/// The environment variable naming extra CA certificates (PEM) destinations may use.
pub const CA_BUNDLE_ENV: &str = "SLUICE_DESTINATION_CA_BUNDLE";
/// One request to an endpoint must be answered within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// An endpoint's answer is read up to this size.
const RESPONSE_BYTES_MAX: usize = 64 * 1024;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.starts_with('[') {
        return authority.split(']').next().map_or("", |h| &h[1..]);
    }
    authority.split(':').next().unwrap_or("")
}

/// An endpoint URL Firehose takes: `https://`, as the API's pattern says.
pub fn check_url(url: &str) -> Result<(), ApiError> {
    check_url_allowing_loopback_http(url)
}

/// `https://...`, or `http://` to a loopback address (a server on this machine).
pub fn check_url_allowing_loopback_http(url: &str) -> Result<(), ApiError> {
    if let Some(rest) = url.strip_prefix("https://") {
        if host_of(rest).is_empty() {
            return Err(invalid(format!("The URL {url:?} names no host.")));
        }
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        if is_loopback_host(host_of(rest)) {
            return Ok(());
        }
        return Err(invalid(format!(
            "The URL {url:?} is plain http to another machine: use https."
        )));
    }
    Err(invalid(format!(
        "The URL {url:?} must start with https://."
    )))
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
    fn urls_are_https_or_loopback() {
        assert!(check_url("https://example.com/in").is_ok());
        assert!(check_url("http://127.0.0.1:8080/in").is_ok());
        assert!(check_url("http://[::1]:8080/in").is_ok());
        assert!(check_url("http://localhost/in").is_ok());
        assert!(check_url("http://example.com/in").is_err());
        assert!(check_url("http://127.0.0.1.evil.com/in").is_err());
        assert!(check_url("ftp://127.0.0.1/").is_err());
        assert!(check_url("https://").is_err());
    }
}
