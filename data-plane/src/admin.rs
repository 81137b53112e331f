//! The administration API: tenants, principals and access keys, as JSON over the same
//! TLS listener under `/admin/v1`, signed with SigV4 for the service `sluice` and
//! described by the OpenAPI document at `/admin/v1/openapi.json`.
//!
//! Who may do what, until Cedar policies take this over: principals of the
//! administering (bootstrap) tenant manage every tenant; a tenant's `user/admin` manages
//! its own tenant's principals and keys; nobody else administers anything.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use control_plane::CatalogError;
use control_plane::identity::{self, Principal, PrincipalKind, Tenant};
use protocol::{ApiError, ErrorCode, limits};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Caller;
use crate::gateway::reserve_body_bytes;
use crate::handlers::AppState;

/// The service name admin requests are signed for.
pub const ADMIN_SIGNING_SERVICE: &str = "sluice";

const OPENAPI: &str = include_str!("../openapi/admin-v1.json");

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let authenticated = Router::new()
        .route("/admin/v1/tenants", post(create_tenant).get(list_tenants))
        .route("/admin/v1/tenants/{account_id}", get(get_tenant))
        .route(
            "/admin/v1/tenants/{account_id}/disable",
            post(disable_tenant),
        )
        .route("/admin/v1/tenants/{account_id}/enable", post(enable_tenant))
        .route(
            "/admin/v1/tenants/{account_id}/principals",
            post(create_principal).get(list_principals),
        )
        .route(
            "/admin/v1/tenants/{account_id}/principals/{kind}/{name}/access-keys",
            post(create_access_key).get(list_access_keys),
        )
        .route(
            "/admin/v1/tenants/{account_id}/principals/{kind}/{name}/tokens",
            post(issue_token),
        )
        .route(
            "/admin/v1/tenants/{account_id}/tokens/{token_id}/revoke",
            post(revoke_token),
        )
        .route(
            "/admin/v1/tenants/{account_id}/principals/{kind}/{name}/access-keys/{key_id}",
            axum::routing::delete(delete_access_key),
        )
        .route(
            "/admin/v1/tenants/{account_id}/principals/{kind}/{name}/access-keys/{key_id}/{action}",
            post(set_access_key_status),
        )
        .layer(middleware::from_fn_with_state(state, authenticate));
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/admin/v1/jwks.json", get(jwks))
        .merge(authenticated)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The public keys bearer tokens are verified with; public, like any JWKS.
async fn jwks(State(state): State<Arc<AppState>>) -> AdminResult {
    ok(&state.tokens.jwks().await?)
}

/// An admin failure: the AWS-shaped body, with the HTTP status a REST client expects.
struct AdminError(ApiError);

impl From<ApiError> for AdminError {
    fn from(e: ApiError) -> Self {
        AdminError(e)
    }
}

impl From<CatalogError> for AdminError {
    fn from(e: CatalogError) -> Self {
        if !matches!(e, CatalogError::Api(_)) {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "catalog failure");
        }
        AdminError(e.to_api())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match self.0.code {
            ErrorCode::ResourceNotFound | ErrorCode::UnknownOperation | ErrorCode::NotFound => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::ResourceInUse
            | ErrorCode::AlreadyExists
            | ErrorCode::Disabled
            | ErrorCode::KmsInvalidState
            | ErrorCode::KmsDisabled
            | ErrorCode::KinesisKmsInvalidState => StatusCode::CONFLICT,
            ErrorCode::KmsNotFound => StatusCode::NOT_FOUND,
            ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::MissingAuthenticationToken
            | ErrorCode::IncompleteSignature
            | ErrorCode::InvalidSignature
            | ErrorCode::ExpiredToken
            | ErrorCode::UnrecognizedClient => StatusCode::UNAUTHORIZED,
            ErrorCode::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ExpiredIterator
            | ErrorCode::ExpiredNextToken
            | ErrorCode::InvalidArgument
            | ErrorCode::ProvisionedThroughputExceeded
            | ErrorCode::SerializationException
            | ErrorCode::Validation
            | ErrorCode::IncorrectKey
            | ErrorCode::InvalidAliasName
            | ErrorCode::InvalidCiphertext
            | ErrorCode::InvalidKeyUsage
            | ErrorCode::InvalidMarker
            | ErrorCode::UnsupportedOperation => StatusCode::BAD_REQUEST,
        };
        let body = json!({"__type": self.0.code.type_name(), "message": self.0.message});
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

type AdminResult = Result<Response, AdminError>;

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> AdminResult {
    let body = serde_json::to_vec(value).map_err(|_| AdminError(ApiError::internal()))?;
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn created<T: Serialize>(value: &T) -> AdminResult {
    json_response(StatusCode::CREATED, value)
}

fn ok<T: Serialize>(value: &T) -> AdminResult {
    json_response(StatusCode::OK, value)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Verifies the signature before any admin handler runs, and hands it the caller.
async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let outcome = async {
        crate::auth::require_credentials(&parts)?;
        let budget = reserve_body_bytes(&state, &parts.headers).await?;
        let body = axum::body::to_bytes(body, limits::REQUEST_BODY_BYTES_MAX)
            .await
            .map_err(|_| {
                ApiError::new(ErrorCode::SerializationException, "Request body too large.")
            })?;
        let caller =
            crate::gateway::identify(&state, &parts, body.clone(), ADMIN_SIGNING_SERVICE).await?;
        drop(budget);
        Ok((caller, body))
    }
    .await;
    let mut response = match outcome {
        Ok((caller, body)) => {
            tracing::info!(principal = %caller.principal_arn, method = %parts.method, path = %parts.uri.path(), "admin request");
            let mut request = Request::from_parts(parts, Body::from(body));
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => AdminError(e).into_response(),
    };
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

fn is_platform_admin(state: &AppState, caller: &Caller) -> bool {
    caller.account_id == state.config.account_id
}

fn is_tenant_admin(caller: &Caller, account_id: &str) -> bool {
    caller.account_id == account_id
        && caller.principal_arn
            == format!(
                "arn:aws:iam::{account_id}:user/{}",
                identity::BOOTSTRAP_PRINCIPAL
            )
}

fn denied(caller: &Caller, action: &str, resource: &str) -> AdminError {
    AdminError(ApiError::new(
        ErrorCode::AccessDenied,
        format!(
            "User: {} is not authorized to perform: {action} on resource: {resource}",
            caller.principal_arn
        ),
    ))
}

/// The caller may administer `account_id`'s principals and keys.
fn may_manage(
    state: &AppState,
    caller: &Caller,
    action: &str,
    account_id: &str,
) -> Result<(), AdminError> {
    if is_platform_admin(state, caller) || is_tenant_admin(caller, account_id) {
        Ok(())
    } else {
        Err(denied(
            caller,
            action,
            &format!("arn:aws:iam::{account_id}:root"),
        ))
    }
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| {
        AdminError(ApiError::new(
            ErrorCode::SerializationException,
            e.to_string(),
        ))
    })
}

fn tenant_json(t: &Tenant) -> serde_json::Value {
    json!({"account_id": t.account_id, "name": t.name, "created_at_ms": t.created_at_ms, "disabled": t.disabled})
}

fn principal_json(p: &Principal) -> serde_json::Value {
    json!({"kind": p.kind.as_str(), "name": p.name, "arn": p.arn(), "created_at_ms": p.created_at_ms, "disabled": p.disabled})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    name: String,
}

async fn create_tenant(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> AdminResult {
    if !is_platform_admin(&state, &caller) {
        return Err(denied(
            &caller,
            "sluice:CreateTenant",
            "arn:aws:iam::*:root",
        ));
    }
    let input: CreateTenant = parse_body(&body)?;
    let now = now_ms();
    let tenant = state.catalog.create_tenant(&input.name, None, now).await?;
    let admin = state
        .catalog
        .create_principal(
            &tenant.account_id,
            PrincipalKind::User,
            identity::BOOTSTRAP_PRINCIPAL,
            now,
        )
        .await?;
    let key = state
        .catalog
        .create_access_key(&state.root_key, &admin, now)
        .await?;
    let mut out = tenant_json(&tenant);
    out["admin"] = json!({
        "arn": admin.arn(),
        "access_key_id": key.access_key_id,
        "secret_access_key": key.secret_access_key.as_str(),
    });
    created(&out)
}

async fn list_tenants(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> AdminResult {
    let tenants = if is_platform_admin(&state, &caller) {
        state.catalog.list_tenants().await?
    } else if is_tenant_admin(&caller, &caller.account_id) {
        vec![state.catalog.tenant(&caller.account_id).await?]
    } else {
        return Err(denied(&caller, "sluice:ListTenants", "arn:aws:iam::*:root"));
    };
    ok(&json!({"tenants": tenants.iter().map(tenant_json).collect::<Vec<_>>()}))
}

async fn get_tenant(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    may_manage(&state, &caller, "sluice:GetTenant", &account_id)?;
    ok(&tenant_json(&state.catalog.tenant(&account_id).await?))
}

async fn set_tenant_disabled(
    state: &AppState,
    caller: &Caller,
    account_id: &str,
    disabled: bool,
) -> AdminResult {
    let action = if disabled {
        "sluice:DisableTenant"
    } else {
        "sluice:EnableTenant"
    };
    if !is_platform_admin(state, caller) {
        return Err(denied(
            caller,
            action,
            &format!("arn:aws:iam::{account_id}:root"),
        ));
    }
    if account_id == state.config.account_id {
        return Err(AdminError(ApiError::invalid_argument(
            "The administering tenant cannot be disabled.",
        )));
    }
    state
        .catalog
        .set_tenant_disabled(account_id, disabled.then(now_ms))
        .await?;
    state.authenticator.forget_all();
    ok(&tenant_json(&state.catalog.tenant(account_id).await?))
}

async fn disable_tenant(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    set_tenant_disabled(&state, &caller, &account_id, true).await
}

async fn enable_tenant(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    set_tenant_disabled(&state, &caller, &account_id, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePrincipal {
    kind: String,
    name: String,
}

fn kind_of(text: &str) -> Result<PrincipalKind, AdminError> {
    PrincipalKind::parse(text).ok_or_else(|| {
        AdminError(ApiError::validation(
            text,
            "kind",
            "Member must satisfy enum value set: [user, role]",
        ))
    })
}

async fn create_principal(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> AdminResult {
    may_manage(&state, &caller, "sluice:CreatePrincipal", &account_id)?;
    let input: CreatePrincipal = parse_body(&body)?;
    let principal = state
        .catalog
        .create_principal(&account_id, kind_of(&input.kind)?, &input.name, now_ms())
        .await?;
    created(&principal_json(&principal))
}

async fn list_principals(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    may_manage(&state, &caller, "sluice:ListPrincipals", &account_id)?;
    state.catalog.tenant(&account_id).await?;
    let principals = state.catalog.list_principals(&account_id).await?;
    ok(&json!({"principals": principals.iter().map(principal_json).collect::<Vec<_>>()}))
}

async fn principal_at(
    state: &AppState,
    caller: &Caller,
    action: &str,
    account_id: &str,
    kind: &str,
    name: &str,
) -> Result<Principal, AdminError> {
    may_manage(state, caller, action, account_id)?;
    Ok(state
        .catalog
        .principal(account_id, kind_of(kind)?, name)
        .await?)
}

async fn create_access_key(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, kind, name)): Path<(String, String, String)>,
) -> AdminResult {
    let principal = principal_at(
        &state,
        &caller,
        "sluice:CreateAccessKey",
        &account_id,
        &kind,
        &name,
    )
    .await?;
    let key = state
        .catalog
        .create_access_key(&state.root_key, &principal, now_ms())
        .await?;
    created(&json!({
        "access_key_id": key.access_key_id,
        "secret_access_key": key.secret_access_key.as_str(),
        "principal_arn": principal.arn(),
        "status": "Active",
    }))
}

async fn list_access_keys(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, kind, name)): Path<(String, String, String)>,
) -> AdminResult {
    let principal = principal_at(
        &state,
        &caller,
        "sluice:ListAccessKeys",
        &account_id,
        &kind,
        &name,
    )
    .await?;
    let keys = state.catalog.list_access_keys(principal.id).await?;
    ok(&json!({"access_keys": keys.iter().map(|k| json!({
        "access_key_id": k.access_key_id,
        "status": if k.active { "Active" } else { "Inactive" },
        "created_at_ms": k.created_at_ms,
    })).collect::<Vec<_>>()}))
}

async fn set_access_key_status(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, kind, name, key_id, action)): Path<(String, String, String, String, String)>,
) -> AdminResult {
    let active = match action.as_str() {
        "activate" => true,
        "deactivate" => false,
        _ => {
            return Err(AdminError(ApiError::new(
                ErrorCode::UnknownOperation,
                format!("No action {action:?} on an access key; use activate or deactivate."),
            )));
        }
    };
    let principal = principal_at(
        &state,
        &caller,
        "sluice:UpdateAccessKey",
        &account_id,
        &kind,
        &name,
    )
    .await?;
    state
        .catalog
        .set_access_key_active(principal.id, &key_id, active)
        .await?;
    // INVARIANT: a key made inactive here stops authenticating on this process at once.
    state.authenticator.forget_all();
    ok(&json!({"access_key_id": key_id, "status": if active { "Active" } else { "Inactive" }}))
}

async fn delete_access_key(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, kind, name, key_id)): Path<(String, String, String, String)>,
) -> AdminResult {
    let principal = principal_at(
        &state,
        &caller,
        "sluice:DeleteAccessKey",
        &account_id,
        &kind,
        &name,
    )
    .await?;
    if caller.access_key_id == key_id {
        return Err(AdminError(ApiError::invalid_argument(
            "A key cannot delete itself; sign the request with another key.",
        )));
    }
    state
        .catalog
        .delete_access_key(principal.id, &key_id)
        .await?;
    state.authenticator.forget_all();
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueToken {
    ttl_seconds: Option<i64>,
}

/// Default lifetime of an issued token.
const TOKEN_TTL_SECONDS_DEFAULT: i64 = 3_600;

async fn issue_token(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, kind, name)): Path<(String, String, String)>,
    body: Bytes,
) -> AdminResult {
    let principal = principal_at(
        &state,
        &caller,
        "sluice:IssueToken",
        &account_id,
        &kind,
        &name,
    )
    .await?;
    let input: IssueToken = if body.is_empty() {
        IssueToken { ttl_seconds: None }
    } else {
        parse_body(&body)?
    };
    let ttl = input.ttl_seconds.unwrap_or(TOKEN_TTL_SECONDS_DEFAULT);
    let issued = state
        .tokens
        .issue(&principal, ttl.saturating_mul(1000))
        .await?;
    created(&json!({
        "token": issued.token,
        "token_id": issued.token_id,
        "expires_at_ms": issued.expires_at_ms,
        "principal_arn": principal.arn(),
    }))
}

async fn revoke_token(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, token_id)): Path<(String, String)>,
) -> AdminResult {
    may_manage(&state, &caller, "sluice:RevokeToken", &account_id)?;
    state.tokens.revoke(&account_id, &token_id).await?;
    ok(&json!({"token_id": token_id, "revoked": true}))
}
