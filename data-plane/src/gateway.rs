//! The HTTP face of the server: `POST /` with `X-Amz-Target`, the authentication
//! header check, request ids, body limits, and AWS-shaped responses and errors.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use protocol::model::Operation;
use protocol::wire::{ErrorBody, Format};
use protocol::{ApiError, ErrorCode, limits};
use tracing::Instrument;

use crate::handlers::{self, AppState};

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(kinesis))
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(state)
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

async fn not_found() -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    error_response(
        Format::Json,
        &id,
        &ApiError::new(
            ErrorCode::UnknownOperation,
            "No operation is served at this path.",
        ),
    )
}

async fn kinesis(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let format = Format::from_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let span = tracing::info_span!("request", id = %request_id, target = %target, peer = %peer);
    let outcome = async {
        let op = Operation::from_target(target)
            .ok_or_else(|| ApiError::new(ErrorCode::UnknownOperation, ""))?;
        authenticate(&headers)?;
        let body = axum::body::to_bytes(body, limits::REQUEST_BODY_BYTES_MAX)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::SerializationException,
                    format!(
                        "Request body exceeds {} bytes.",
                        limits::REQUEST_BODY_BYTES_MAX
                    ),
                )
            })?;
        handlers::dispatch(&state, op, format, &body).await
    }
    .instrument(span.clone())
    .await;
    match outcome {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            set_common_headers(&mut response, format, &request_id);
            response
        }
        Err(error) => {
            span.in_scope(|| tracing::debug!(error = %error, "request refused"));
            error_response(format, &request_id, &error)
        }
    }
}

/// Requires an AWS-shaped credential: a SigV4 `Authorization` header or presigned
/// query. Verifying the signature is the identity layer's work.
fn authenticate(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            ErrorCode::MissingAuthenticationToken,
            "Missing Authentication Token",
        ));
    };
    let value = value.to_str().unwrap_or("");
    let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(ApiError::new(
            ErrorCode::IncompleteSignature,
            format!(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={value}"
            ),
        ));
    };
    for part in ["Credential=", "SignedHeaders=", "Signature="] {
        if !rest.contains(part) {
            let name = part.trim_end_matches('=');
            return Err(ApiError::new(
                ErrorCode::IncompleteSignature,
                format!("Authorization header requires '{name}' parameter. Authorization={value}"),
            ));
        }
    }
    Ok(())
}

fn set_common_headers(response: &mut Response, format: Format, request_id: &str) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
}

fn error_response(format: Format, request_id: &str, error: &ApiError) -> Response {
    let body = format.encode(&ErrorBody {
        type_name: error.code.type_name(),
        message: &error.message,
    });
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    set_common_headers(&mut response, format, request_id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authentication_header_shapes() {
        let mut h = HeaderMap::new();
        assert_eq!(
            authenticate(&h).unwrap_err().code,
            ErrorCode::MissingAuthenticationToken
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert_eq!(
            authenticate(&h).unwrap_err().code,
            ErrorCode::IncompleteSignature
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=A/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host"),
        );
        assert_eq!(
            authenticate(&h).unwrap_err().code,
            ErrorCode::IncompleteSignature
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=A/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
            ),
        );
        assert!(authenticate(&h).is_ok());
    }
}
