//! The HTTP face of the server: `POST /` with `X-Amz-Target` (Kinesis's
//! `Kinesis_20131202.*` and KMS's `TrentService.*`), the authentication
//! header check, request ids, body limits, and AWS-shaped responses and errors.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use protocol::kms::KmsOperation;
use protocol::model::Operation;
use protocol::wire::{ErrorBody, Format};
use protocol::{ApiError, ErrorCode, limits};
use tracing::Instrument;

use crate::handlers::{self, AppState};

pub fn router(state: Arc<AppState>) -> Router {
    let role = state.config.role;
    let data = if role.serves_data_api() {
        post(kinesis)
    } else {
        post(not_a_data_plane)
    };
    Router::new()
        .route("/", data)
        .route("/health", get(health))
        .merge(crate::admin::router(state.clone(), role))
        .fallback(not_found)
        .with_state(state)
}

/// The control plane's answer to a Kinesis or KMS request: they are served by the
/// data planes (the endpoint clients are given).
async fn not_a_data_plane() -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    error_response(
        Format::Json,
        &id,
        &ApiError::new(
            ErrorCode::UnknownOperation,
            "This is a Sluice control plane: send Kinesis and KMS requests to a data plane.",
        ),
    )
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
    request: axum::extract::Request,
) -> Response {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
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
        // INVARIANT: nothing reaches a handler, and no storage is touched, before the
        // signature is verified. Unsigned requests are refused before their body is read.
        crate::auth::require_credentials(&parts)?;
        let _budget = reserve_body_bytes(&state, headers).await?;
        let body = axum::body::to_bytes(body, limits::REQUEST_BODY_BYTES_MAX)
            .await
            .map_err(|_| body_too_large())?;
        // A target no service here speaks is still authenticated first, against the
        // service its signer named, and then answered UnknownOperationException.
        let service = match signing_service(target) {
            Some(service) => service.to_string(),
            None => protocol::sigv4::parse_credential(&parts)
                .map(|c| c.service)
                .unwrap_or_default(),
        };
        let mut caller = identify(&state, &parts, body.clone(), &service).await?;
        caller.source_ip = Some(peer.ip());
        caller.tls_version = parts
            .extensions
            .get::<crate::tls::TlsVersion>()
            .map(|v| v.0);
        caller.request_id = request_id.clone();
        tracing::debug!(principal = %caller.principal_arn, "authenticated");
        if let Some(op) = KmsOperation::from_target(target) {
            return crate::kms_api::dispatch(&state, &caller, op, format, &body)
                .await
                .map(Reply::Whole);
        }
        let op = Operation::from_target(target)
            .ok_or_else(|| ApiError::new(ErrorCode::UnknownOperation, ""))?;
        if op == Operation::SubscribeToShard {
            return crate::subscribe::start(state.clone(), &caller, format, &body)
                .await
                .map(Reply::EventStream);
        }
        handlers::dispatch(&state, &caller, op, format, &body)
            .await
            .map(Reply::Whole)
    }
    .instrument(span.clone())
    .await;
    let (api, operation) = crate::metrics::operation_of(target);
    crate::metrics::request(
        api,
        operation,
        match &outcome {
            Ok(_) => "ok",
            Err(e) => e.code.type_name(),
        },
        started.elapsed(),
    );
    match outcome {
        Ok(Reply::Whole(bytes)) => {
            let mut response = Response::new(Body::from(bytes));
            set_common_headers(&mut response, format, &request_id);
            response
        }
        Ok(Reply::EventStream(body)) => {
            let mut response = Response::new(body);
            set_common_headers(&mut response, format, &request_id);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.amazon.eventstream"),
            );
            response
        }
        Err(error) => {
            span.in_scope(|| tracing::debug!(error = %error, "request refused"));
            error_response(format, &request_id, &error)
        }
    }
}

/// A successful answer: a whole body, or SubscribeToShard's stream of events.
enum Reply {
    Whole(Vec<u8>),
    EventStream(Body),
}

/// Bytes of request bodies held in memory at once, at most; a request waits up to
/// `BODY_BUDGET_WAIT` for its share, then gets `ServiceUnavailable`.
pub const BODY_BUDGET_BYTES: usize = 512 * 1024 * 1024;
const BODY_BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reserves the body's declared length (the largest allowed when none is declared)
/// from the process-wide budget, so many large requests at once wait or are refused
/// instead of exhausting memory.
pub(crate) async fn reserve_body_bytes<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
) -> Result<tokio::sync::SemaphorePermit<'a>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(limits::REQUEST_BODY_BYTES_MAX);
    if declared > limits::REQUEST_BODY_BYTES_MAX {
        return Err(body_too_large());
    }
    let busy = || {
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            "The server is busy; retry the request.",
        )
    };
    // Every request holds at least one permit, so the count of requests in flight is
    // bounded too.
    let permits = u32::try_from(declared.max(1)).expect("bounded by the body limit");
    tokio::time::timeout(BODY_BUDGET_WAIT, state.body_budget.acquire_many(permits))
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())
}

fn body_too_large() -> ApiError {
    ApiError::new(
        ErrorCode::SerializationException,
        format!(
            "Request body exceeds {} bytes.",
            limits::REQUEST_BODY_BYTES_MAX
        ),
    )
}

/// Who sent the request: a bearer token's principal, or the SigV4 signer's.
pub(crate) async fn identify(
    state: &AppState,
    parts: &axum::http::request::Parts,
    body: axum::body::Bytes,
    service: &str,
) -> Result<crate::auth::Caller, ApiError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        Some(token) => state.tokens.verify(token.trim()).await,
        None => state.authenticator.authenticate(parts, body, service).await,
    }
}

/// The service name a request must be signed for, from its target; `None` for a
/// target no service here speaks.
fn signing_service(target: &str) -> Option<&'static str> {
    if KmsOperation::from_target(target).is_some() {
        Some("kms")
    } else if Operation::from_target(target).is_some() {
        Some("kinesis")
    } else {
        None
    }
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
    fn requests_are_signed_for_their_service() {
        assert_eq!(
            signing_service("Kinesis_20131202.PutRecord"),
            Some("kinesis")
        );
        assert_eq!(signing_service("TrentService.Encrypt"), Some("kms"));
        assert_eq!(signing_service("Firehose_20150804.PutRecord"), None);
        assert_eq!(signing_service(""), None);
    }
}
