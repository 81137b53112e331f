//! The HTTP face of the server: `POST /` routed by `X-Amz-Target` to a service
//! (Kinesis's `Kinesis_20131202.*`, KMS's `TrentService.*`, consumer groups'
//! `SluiceConsumerGroups_20261205.*`, Firehose's `Firehose_20150804.*`; any other target is
//! authenticated and then answered `UnknownOperationException`), `/health`, the admin
//! routes, request ids, and AWS-shaped responses and errors.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use protocol::kms::KmsOperation;
use protocol::model::Operation;
use protocol::wire::{ErrorBody, Format, SerializationErrorBody};
use protocol::{ApiError, ErrorCode};
use tracing::Instrument;

use crate::intake::admit;
use crate::state::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    let role = state.config.role;
    let data = if role.serves_data_api() {
        post(handle)
    } else {
        post(not_a_data_plane)
    };
    Router::new()
        .route("/", data.clone())
        // An SQS queue URL is a request target too (the query protocol's clients post
        // to it).
        .route("/{account}/{queue}", data)
        // SNS's signing certificate, which receivers fetch to check signatures.
        .route("/sns/{file}", get(sns_certificate))
        .route("/health", get(health))
        .route("/ready", get(ready))
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

/// Readiness: 200 while the catalog and the object store both answer (each within
/// `READY_CHECK_TIMEOUT`), 503 naming the one that does not. `/health` stays liveness:
/// a process whose database is away should be taken out of service, not restarted.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let catalog = tokio::time::timeout(READY_CHECK_TIMEOUT, state.catalog.ping()).await;
    let store = tokio::time::timeout(READY_CHECK_TIMEOUT, state.store.check()).await;
    let catalog_ok = matches!(catalog, Ok(Ok(())));
    let store_ok = matches!(store, Ok(Ok(())));
    let body = serde_json::json!({
        "status": if catalog_ok && store_ok { "ready" } else { "not ready" },
        "catalog": if catalog_ok { "ok" } else { "unreachable" },
        "object_store": if store_ok { "ok" } else { "unreachable" },
    });
    let status = if catalog_ok && store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The deployment's SNS signing certificate (PEM), served without authentication as
/// AWS serves its own; any other name is not found.
async fn sns_certificate(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    match sns::signing_certificate(&state.sns, &format!("/sns/{file}")).await {
        Some(pem) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            pem,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "No such certificate.").into_response(),
    }
}

/// How long each readiness check may take.
const READY_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

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

async fn handle(
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
    // A form-encoded body with no target is the query protocol (SNS, legacy SQS), whose
    // clients read errors as XML.
    let query = target.is_empty()
        && protocol::query::is_query_request(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
    let span = tracing::info_span!("request", id = %request_id, target = %target, peer = %peer);
    let outcome = async {
        // A target no service here speaks is still authenticated first, against the
        // service its signer named, and then answered UnknownOperationException.
        let service = match signing_service(target) {
            Some(service) => service.to_string(),
            None => protocol::sigv4::parse_credential(&parts)
                .map(|c| c.service)
                .unwrap_or_default(),
        };
        // INVARIANT: nothing reaches a service before the signature is verified, and
        // no body budget is held before the credential checked out (`intake`).
        let (mut caller, body, _budget) = admit(&state, &parts, body, &service).await?;
        caller.request_id = request_id.clone();
        tracing::debug!(principal = %caller.principal_arn, "authenticated");
        if query && service == "sqs" {
            let endpoint = sqs_endpoint(&parts);
            return sqs::query::dispatch(
                &state.sqs,
                &caller,
                &body,
                parts.uri.path(),
                &endpoint,
                &request_id,
            )
            .await
            .map(|xml| Reply::Xml(xml.into_bytes()));
        }
        if query && service == "sns" {
            let endpoint = sqs_endpoint(&parts);
            return sns::dispatch(&state.sns, &caller, &body, &request_id, &endpoint)
                .await
                .map(|xml| Reply::Xml(xml.into_bytes()));
        }
        if query {
            let action = protocol::query::form_value(&body, "Action").unwrap_or_default();
            return Err(ApiError::new(
                ErrorCode::InvalidAction,
                format!("The action {action} is not valid for this endpoint."),
            ));
        }
        if let Some(op) = KmsOperation::from_target(target) {
            return kms::dispatch(&state.kms, &caller, op, format, &body)
                .await
                .map(Reply::Whole);
        }
        if let Some(op) = groups::GroupOperation::from_target(target) {
            return groups::dispatch(&state.groups, &caller, op, format, &body)
                .await
                .map(Reply::Whole);
        }
        if let Some(op) = firehose::FirehoseOperation::from_target(target) {
            return firehose::dispatch(&state.firehose, &caller, op, format, &body)
                .await
                .map(Reply::Whole);
        }
        if let Some(op) = sqs::SqsOperation::from_target(target) {
            let endpoint = sqs_endpoint(&parts);
            return sqs::dispatch(&state.sqs, &caller, op, format, &body, &endpoint)
                .await
                .map(Reply::Whole);
        }
        // Kinesis channels deliver with Firehose's machinery, so Firehose serves them.
        if let Some(op) = firehose::channel_api::ChannelOperation::from_target(target) {
            return firehose::channel_api::dispatch(&state.firehose, &caller, op, format, &body)
                .await
                .map(Reply::Whole);
        }
        let op = Operation::from_target(target).ok_or_else(|| unknown_operation(target))?;
        // A put with an idempotency key runs once within the key's window.
        if matches!(op, Operation::PutRecord | Operation::PutRecords)
            && let Some(key) = crate::idempotency::key_of(headers)?
        {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match crate::idempotency::begin(&state, &caller, &key, target, content_type, &body)
                .await?
            {
                crate::idempotency::Next::Replay(answer) => return Ok(Reply::Whole(answer)),
                crate::idempotency::Next::Run => {
                    let out = kinesis::dispatch(&state.kinesis, &caller, op, format, &body).await;
                    let answer = out.as_deref().map_err(|_| ());
                    crate::idempotency::finish(&state, &caller, &key, answer).await;
                    return out.map(Reply::Whole);
                }
            }
        }
        if op == Operation::SubscribeToShard {
            return kinesis::subscribe::start(state.kinesis.clone(), &caller, format, &body)
                .await
                .map(Reply::EventStream);
        }
        kinesis::dispatch(&state.kinesis, &caller, op, format, &body)
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
    let sqs_request = sqs::SqsOperation::from_target(target).is_some();
    match outcome {
        Ok(Reply::Whole(bytes)) => {
            let mut response = Response::new(Body::from(bytes));
            set_common_headers(&mut response, format, &request_id);
            if sqs_request {
                sqs_headers(&mut response, None);
            }
            response
        }
        Ok(Reply::Xml(bytes)) => {
            let mut response = Response::new(Body::from(bytes));
            set_headers(&mut response, "text/xml", &request_id);
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
        Err(error) if query => {
            span.in_scope(|| tracing::debug!(error = %error, "request refused"));
            query_error_response(&request_id, &error)
        }
        Err(error) => {
            span.in_scope(|| tracing::debug!(error = %error, "request refused"));
            let mut response = error_response(format, &request_id, &error);
            if sqs_request {
                sqs_headers(&mut response, Some(&error));
            }
            response
        }
    }
}

/// SQS answers JSON 1.0, and, being query-compatible, names an error's query-protocol
/// code in `x-amzn-query-error` (the code the SDKs then show).
fn sqs_headers(response: &mut Response, error: Option<&ApiError>) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Some(e) = error {
        let code = match e.code {
            ErrorCode::Sqs(kind) => kind.query_code(),
            other => other.type_name(),
        };
        let fault = if e.code.status() >= 500 {
            "Receiver"
        } else {
            "Sender"
        };
        if let Ok(v) = HeaderValue::from_str(&format!("{code};{fault}")) {
            headers.insert("x-amzn-query-error", v);
        }
    }
}

/// The answer to a target no service here speaks. Kinesis answers it with no message
/// (as the public emulator suites recorded from AWS); KMS and the rest say which.
fn unknown_operation(target: &str) -> ApiError {
    if target.starts_with(Operation::TARGET_PREFIX) {
        return ApiError::new(ErrorCode::UnknownOperation, "");
    }
    let name = target.rsplit('.').next().unwrap_or(target);
    let name: String = name.chars().take(128).collect();
    ApiError::new(
        ErrorCode::UnknownOperation,
        format!("The operation {name} is not supported by this endpoint."),
    )
}

/// `https://HOST` as the request reached this server: SQS makes queue URLs of it.
fn sqs_endpoint(parts: &axum::http::request::Parts) -> String {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    format!("https://{host}")
}

/// A successful answer: a whole body, a query-protocol XML document, or
/// SubscribeToShard's stream of events.
enum Reply {
    Whole(Vec<u8>),
    Xml(Vec<u8>),
    EventStream(Body),
}

/// The service name a request must be signed for, from its target; `None` for a
/// target no service here speaks.
fn signing_service(target: &str) -> Option<&'static str> {
    if KmsOperation::from_target(target).is_some() {
        Some("kms")
    } else if firehose::FirehoseOperation::from_target(target).is_some() {
        Some("firehose")
    } else if sqs::SqsOperation::from_target(target).is_some() {
        Some("sqs")
    } else if Operation::from_target(target).is_some()
        || groups::GroupOperation::from_target(target).is_some()
        || firehose::channel_api::ChannelOperation::from_target(target).is_some()
    {
        Some("kinesis")
    } else {
        None
    }
}

fn set_common_headers(response: &mut Response, format: Format, request_id: &str) {
    set_headers(response, format.content_type(), request_id);
}

fn set_headers(response: &mut Response, content_type: &'static str, request_id: &str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
}

/// An error answer: its body in the shape the client reads, AWS's status and headers.
fn error_with_body(
    body: Vec<u8>,
    content_type: &'static str,
    request_id: &str,
    error: &ApiError,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(error.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    set_headers(&mut response, content_type, request_id);
    response
}

/// An error as a query-protocol client reads it: XML.
fn query_error_response(request_id: &str, error: &ApiError) -> Response {
    let body = protocol::query::error_xml(error, request_id).into_bytes();
    error_with_body(body, "text/xml", request_id, error)
}

fn error_response(format: Format, request_id: &str, error: &ApiError) -> Response {
    let body = if error.code == ErrorCode::SerializationException {
        format.encode(&SerializationErrorBody {
            type_name: error.code.type_name(),
            message: &error.message,
        })
    } else {
        format.encode(&ErrorBody {
            type_name: error.code.type_name(),
            message: &error.message,
        })
    };
    error_with_body(body, format.content_type(), request_id, error)
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
        assert_eq!(
            signing_service("Firehose_20150804.PutRecord"),
            Some("firehose")
        );
        assert_eq!(signing_service("Firehose_20150804.Nope"), None);
        assert_eq!(signing_service(""), None);
    }
}
