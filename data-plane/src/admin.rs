//! The administration API: tenants, principals and access keys, as JSON over the same
//! TLS listener under `/admin/v1`, signed with SigV4 for the service `sluice` and
//! described by the OpenAPI document at `/admin/v1/openapi.json`.
//!
//! Who may do what, until Cedar policies take this over: principals of the
//! administering (bootstrap) tenant manage every tenant; a tenant's `user/admin` manages
//! its own tenant's principals and keys; nobody else administers anything.

mod connections;
mod tables;

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use catalog::CatalogError;
use catalog::identity::{self, Principal, PrincipalKind, Tenant};
use protocol::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Caller;
use crate::authz::Resource;
use crate::intake::admit;
use crate::state::AppState;

/// The service name admin requests are signed for.
pub const ADMIN_SIGNING_SERVICE: &str = "sluice";

const OPENAPI: &str = include_str!("../openapi/admin-v1.json");

pub fn router(state: Arc<AppState>, role: crate::Role) -> Router<Arc<AppState>> {
    // Every role serves its own metrics; only the control plane (and `serve`) the
    // administration API.
    let metrics = Router::new().route("/metrics", get(metrics_text));
    if !role.serves_admin_api() {
        return metrics.layer(middleware::from_fn_with_state(state, authenticate));
    }
    let authenticated = metrics
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
            "/admin/v1/tenants/{account_id}/principals/{kind}/{name}",
            axum::routing::delete(delete_principal),
        )
        .route(
            "/admin/v1/tenants/{account_id}/principals/{kind}/{name}/disable",
            post(disable_principal),
        )
        .route(
            "/admin/v1/tenants/{account_id}/principals/{kind}/{name}/enable",
            post(enable_principal),
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
        .route(
            "/admin/v1/tenants/{account_id}/policies",
            get(list_policies),
        )
        .route(
            "/admin/v1/tenants/{account_id}/policies/get",
            get(get_policy),
        )
        .route(
            "/admin/v1/tenants/{account_id}/policies/history",
            get(policy_history),
        )
        .route(
            "/admin/v1/tenants/{account_id}/policies/diff",
            get(policy_diff),
        )
        .route(
            "/admin/v1/tenants/{account_id}/policies/validate",
            post(validate_policy),
        )
        .route(
            "/admin/v1/tenants/{account_id}/policies/test",
            post(test_policy),
        )
        .route(
            "/admin/v1/tenants/{account_id}/policies/simulate",
            post(simulate_policy),
        )
        .route(
            "/admin/v1/tenants/{account_id}/policies/apply",
            post(apply_policy),
        )
        .route(
            "/admin/v1/tenants/{account_id}/policies/delete",
            post(delete_policy),
        )
        .route(
            "/admin/v1/tenants/{account_id}/policies/rollback",
            post(rollback_policy),
        )
        .route("/admin/v1/tenants/{account_id}/audit", get(export_audit))
        .route(
            "/admin/v1/tenants/{account_id}/audit/settings",
            get(audit_settings).put(set_audit_settings),
        )
        .route("/admin/v1/audit/verify", get(verify_audit))
        .route("/admin/v1/tenants/{account_id}/usage", get(usage_report))
        .route(
            "/admin/v1/tenants/{account_id}/connections",
            get(connections::list_connections),
        )
        .route(
            "/admin/v1/tenants/{account_id}/connections/{name}",
            axum::routing::put(connections::put_connection).delete(connections::delete_connection),
        )
        .route(
            "/admin/v1/tenants/{account_id}/tables",
            get(tables::list_tables),
        )
        .route(
            "/admin/v1/tenants/{account_id}/tables/{database}/{table}",
            axum::routing::put(tables::put_table).delete(tables::delete_table),
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
        AdminError(edge::wire_error(e))
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
            | ErrorCode::KinesisKmsInvalidState
            | ErrorCode::ConcurrentModification
            | ErrorCode::LeaseLost => StatusCode::CONFLICT,
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
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::ExpiredIterator
            | ErrorCode::ExpiredNextToken
            | ErrorCode::InvalidArgument
            | ErrorCode::ProvisionedThroughputExceeded
            | ErrorCode::SerializationException
            | ErrorCode::Validation
            | ErrorCode::IncorrectKey
            | ErrorCode::InvalidCiphertext
            | ErrorCode::InvalidKeyUsage
            | ErrorCode::InvalidKmsResource
            | ErrorCode::InvalidGrantToken
            | ErrorCode::InvalidImportToken
            | ErrorCode::NotAuthorized
            | ErrorCode::ExpiredImportToken
            | ErrorCode::IncorrectKeyMaterial
            | ErrorCode::KmsInvalidSignature
            | ErrorCode::KmsInvalidMac
            | ErrorCode::MalformedPolicyDocument
            | ErrorCode::InvalidMarker
            | ErrorCode::InvalidAction
            | ErrorCode::Tag
            | ErrorCode::UnsupportedOperation => StatusCode::BAD_REQUEST,
            ErrorCode::Sqs(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ErrorCode::Sns(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
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

/// Verifies the signature before any admin handler runs, and hands it the caller.
async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let outcome = async {
        let (mut caller, body, budget) = admit(&state, &parts, body, ADMIN_SIGNING_SERVICE).await?;
        caller.request_id = request_id.clone();
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

/// Asks Cedar whether the caller may perform the admin `action` on the tenant
/// `account_id`; a deny is `AccessDeniedException` naming both, as for any operation.
async fn allow(
    state: &AppState,
    caller: &Caller,
    action: &str,
    account_id: &str,
) -> Result<(), AdminError> {
    state
        .authz
        .authorize(
            caller,
            action,
            Resource::Tenant {
                account: account_id,
            },
        )
        .await
        .map_err(AdminError)
}

/// `allow`, with the audit trail naming the object acted on (`arn:aws:iam::ACCOUNT:` and
/// then `user/NAME`, `token/ID`, `policy/NAME`).
async fn allow_on(
    state: &AppState,
    caller: &Caller,
    action: &str,
    account_id: &str,
    object: &str,
) -> Result<(), AdminError> {
    let object: String = object.chars().take(256).collect();
    state
        .authz
        .authorize_acting_on(
            caller,
            action,
            Resource::Tenant {
                account: account_id,
            },
            &format!("arn:aws:iam::{account_id}:{object}"),
        )
        .await
        .map_err(AdminError)
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
    allow(&state, &caller, "sluice:CreateTenant", &caller.account_id).await?;
    let input: CreateTenant = parse_body(&body)?;
    let now = state.clock.now_ms();
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
    // The administering tenant's principals may list every tenant; anyone else sees
    // at most its own.
    let tenants = if caller.account_id == state.config.account_id {
        allow(&state, &caller, "sluice:ListTenants", &caller.account_id).await?;
        state.catalog.list_tenants().await?
    } else {
        allow(&state, &caller, "sluice:GetTenant", &caller.account_id).await?;
        vec![state.catalog.tenant(&caller.account_id).await?]
    };
    ok(&json!({"tenants": tenants.iter().map(tenant_json).collect::<Vec<_>>()}))
}

async fn get_tenant(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    allow(&state, &caller, "sluice:GetTenant", &account_id).await?;
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
    allow(state, caller, action, account_id).await?;
    if account_id == state.config.account_id {
        return Err(AdminError(ApiError::invalid_argument(
            "The administering tenant cannot be disabled.",
        )));
    }
    state
        .catalog
        .set_tenant_disabled(account_id, disabled.then(|| state.clock.now_ms()))
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
    allow(&state, &caller, "sluice:CreatePrincipal", &account_id).await?;
    let input: CreatePrincipal = parse_body(&body)?;
    let principal = state
        .catalog
        .create_principal(
            &account_id,
            kind_of(&input.kind)?,
            &input.name,
            state.clock.now_ms(),
        )
        .await?;
    created(&principal_json(&principal))
}

async fn list_principals(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    allow(&state, &caller, "sluice:ListPrincipals", &account_id).await?;
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
    let kind = kind_of(kind)?;
    allow_on(
        state,
        caller,
        action,
        account_id,
        &format!("{}/{name}", kind.as_str()),
    )
    .await?;
    Ok(state.catalog.principal(account_id, kind, name).await?)
}

async fn set_principal_disabled(
    state: &AppState,
    caller: &Caller,
    (account_id, kind, name): (String, String, String),
    disabled: bool,
) -> AdminResult {
    let action = if disabled {
        "sluice:DisablePrincipal"
    } else {
        "sluice:EnablePrincipal"
    };
    let principal = principal_at(state, caller, action, &account_id, &kind, &name).await?;
    if disabled && principal.arn() == caller.principal_arn {
        return Err(AdminError(ApiError::invalid_argument(
            "A principal cannot disable itself.",
        )));
    }
    state
        .catalog
        .set_principal_disabled(&principal, disabled.then(|| state.clock.now_ms()))
        .await?;
    // INVARIANT: a principal disabled here stops authenticating on this process at once.
    state.authenticator.forget_all();
    ok(&principal_json(
        &state
            .catalog
            .principal(&account_id, principal.kind, &principal.name)
            .await?,
    ))
}

async fn disable_principal(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String, String)>,
) -> AdminResult {
    set_principal_disabled(&state, &caller, path, true).await
}

async fn enable_principal(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<(String, String, String)>,
) -> AdminResult {
    set_principal_disabled(&state, &caller, path, false).await
}

async fn delete_principal(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, kind, name)): Path<(String, String, String)>,
) -> AdminResult {
    let principal = principal_at(
        &state,
        &caller,
        "sluice:DeletePrincipal",
        &account_id,
        &kind,
        &name,
    )
    .await?;
    state.catalog.delete_principal(&principal).await?;
    state.authenticator.forget_all();
    Ok(StatusCode::NO_CONTENT.into_response())
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
        .create_access_key(&state.root_key, &principal, state.clock.now_ms())
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
    allow_on(
        &state,
        &caller,
        "sluice:RevokeToken",
        &account_id,
        &format!("token/{token_id}"),
    )
    .await?;
    state.tokens.revoke(&account_id, &token_id).await?;
    ok(&json!({"token_id": token_id, "revoked": true}))
}

/// Prometheus metrics as text, for callers Cedar allows `sluice:ReadMetrics` (by the
/// platform policies, the administering tenant's principals only: the metrics name
/// every tenant's streams). A scraper signs with SigV4 or sends a bearer token.
async fn metrics_text(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> AdminResult {
    allow(&state, &caller, "sluice:ReadMetrics", &caller.account_id).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    /// Milliseconds since the epoch; the span is [from, to), at most 31 days.
    from: i64,
    to: i64,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// The tenant's metered usage per stream, UTC hour and metric, priced by the server's
/// price list; a tenant's admin reads its own, the operator any tenant's.
async fn usage_report(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    Query(query): Query<UsageQuery>,
) -> AdminResult {
    allow(&state, &caller, "sluice:ReadUsage", &account_id).await?;
    state.catalog.tenant(&account_id).await?;
    let prices = &state.config.prices;
    let lines = state
        .catalog
        .usage_report(
            &account_id,
            query.from,
            query.to,
            state.clock.now_ms(),
            prices,
        )
        .await?;
    match query.format.as_deref().unwrap_or("json") {
        "json" => {
            // Exact decimals, as strings: a float would round a bill.
            let total: catalog::billing::Decimal = lines.iter().map(|l| l.cost).sum();
            ok(&json!({
                "account_id": account_id,
                "from_ms": query.from,
                "to_ms": query.to,
                "currency": prices.currency,
                "price_list": prices.version,
                "total": total.normalize(),
                "lines": lines,
            }))
        }
        "csv" => {
            let mut out = String::from(
                "account_id,stream,hour_start,metric,quantity,unit_price,cost,currency,price_list\n",
            );
            for l in &lines {
                let hour = chrono::DateTime::from_timestamp_millis(l.hour_start_ms)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{},{},{hour},{},{},{},{},{},{}\n",
                    l.account_id,
                    l.stream,
                    l.metric.as_str(),
                    l.quantity,
                    l.unit_price,
                    l.cost,
                    prices.currency,
                    prices.version
                ));
            }
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/csv")], out).into_response())
        }
        other => Err(AdminError(ApiError::validation(
            other,
            "format",
            "Member must satisfy enum value set: [json, csv]",
        ))),
    }
}

// ---- The policy workflow: validate, test, simulate, apply, diff, history, rollback ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDocument {
    /// The document's name; an attached document is `stream/<name>` or
    /// `principal/<kind>/<name>`.
    name: String,
    policy: String,
}

fn version_json(v: &catalog::policies::PolicyVersion) -> serde_json::Value {
    json!({
        "name": v.name,
        "version": v.version,
        "deleted": v.body.is_none(),
        "created_at_ms": v.created_at_ms,
        "created_by": v.created_by,
    })
}

/// Checks a document without storing it: `{"valid": bool, "errors": [...]}`.
async fn validate_policy(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> AdminResult {
    allow(&state, &caller, "sluice:SimulatePolicy", &account_id).await?;
    let input: PolicyDocument = parse_body(&body)?;
    catalog::policies::validate_policy_name(&input.name).map_err(|r| edge::refusal_error(&r))?;
    match state.authz.compile(&account_id, &input.name, &input.policy) {
        Ok(policies) => ok(&json!({"valid": true, "errors": [], "policies": policies.len()})),
        Err(errors) => ok(&json!({"valid": false, "errors": errors})),
    }
}

/// Stores a document as its next version, once it validates.
async fn apply_policy(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> AdminResult {
    let input: PolicyDocument = parse_body(&body)?;
    let object = format!("policy/{}", input.name);
    allow_on(&state, &caller, "sluice:PutPolicy", &account_id, &object).await?;
    catalog::policies::validate_policy_name(&input.name).map_err(|r| edge::refusal_error(&r))?;
    state.catalog.tenant(&account_id).await?;
    let stored = state
        .authz
        .store_policy(&caller, &account_id, &input.name, Some(&input.policy))
        .await?;
    created(&version_json(&stored))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyName {
    name: String,
}

/// Deletes a document: a new version without a body; history keeps the old ones.
async fn delete_policy(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> AdminResult {
    let input: PolicyName = parse_body(&body)?;
    let object = format!("policy/{}", input.name);
    allow_on(&state, &caller, "sluice:PutPolicy", &account_id, &object).await?;
    let stored = state
        .authz
        .store_policy(&caller, &account_id, &input.name, None)
        .await?;
    ok(&version_json(&stored))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rollback {
    name: String,
    version: i64,
}

/// Stores an earlier version's body again, as the newest version.
async fn rollback_policy(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> AdminResult {
    let input: Rollback = parse_body(&body)?;
    let object = format!("policy/{}", input.name);
    allow_on(&state, &caller, "sluice:PutPolicy", &account_id, &object).await?;
    let target = state
        .catalog
        .policy_version(&account_id, &input.name, Some(input.version))
        .await?;
    // Rolling back to a deletion deletes; any body must still validate today.
    let stored = state
        .authz
        .store_policy(&caller, &account_id, &input.name, target.body.as_deref())
        .await?;
    ok(&json!({"rolled_back_to": input.version, "version": version_json(&stored)}))
}

/// The tenant's documents in force (newest version of each, deleted ones left out).
async fn list_policies(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    allow(&state, &caller, "sluice:GetPolicy", &account_id).await?;
    let active = state.catalog.active_policies(&account_id).await?;
    ok(&json!({"policies": active.iter().map(version_json).collect::<Vec<_>>()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionQuery {
    name: String,
    version: Option<i64>,
}

async fn get_policy(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    Query(query): Query<VersionQuery>,
) -> AdminResult {
    allow(&state, &caller, "sluice:GetPolicy", &account_id).await?;
    let v = state
        .catalog
        .policy_version(&account_id, &query.name, query.version)
        .await?;
    let mut out = version_json(&v);
    out["policy"] = json!(v.body);
    ok(&out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameQuery {
    name: String,
}

async fn policy_history(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    Query(query): Query<NameQuery>,
) -> AdminResult {
    allow(&state, &caller, "sluice:GetPolicy", &account_id).await?;
    let history = state
        .catalog
        .policy_history(&account_id, &query.name)
        .await?;
    ok(
        &json!({"name": query.name, "versions": history.iter().map(version_json).collect::<Vec<_>>()}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    name: String,
    from: Option<i64>,
    to: Option<i64>,
}

/// A unified diff between two versions (default: the newest and the one before it).
async fn policy_diff(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> AdminResult {
    allow(&state, &caller, "sluice:GetPolicy", &account_id).await?;
    let to = state
        .catalog
        .policy_version(&account_id, &query.name, query.to)
        .await?;
    let from_version = query.from.unwrap_or(to.version - 1);
    let from_text = if from_version < 1 {
        String::new()
    } else {
        state
            .catalog
            .policy_version(&account_id, &query.name, Some(from_version))
            .await?
            .body
            .unwrap_or_default()
    };
    let to_text = to.body.clone().unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&from_text, &to_text)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{} v{from_version}", query.name),
            &format!("{} v{}", query.name, to.version),
        )
        .to_string();
    ok(&json!({"name": query.name, "from": from_version, "to": to.version, "diff": diff}))
}

/// A request a simulation or a decision case asks about.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Question {
    /// A principal ARN, `arn:aws:iam::<account>:user/<name>` or `...:role/<name>`.
    principal: String,
    action: String,
    /// `{"stream": "<stream ARN>"}` or `{"tenant": "<account id>"}`.
    resource: QuestionResource,
    #[serde(default = "default_source_ip")]
    source_ip: std::net::IpAddr,
    #[serde(default = "default_tls_version")]
    tls_version: String,
    /// Seconds since the epoch; now when absent.
    time: Option<i64>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum QuestionResource {
    Stream(String),
    Tenant(String),
    /// A KMS key ARN.
    Key(String),
    /// A consumer group's ARN, `<stream ARN>/group/<name>`.
    Group(String),
}

fn default_source_ip() -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 0, 1])
}

fn default_tls_version() -> String {
    "TLSv1.3".into()
}

/// Decides `question` under the tenant's policies with `proposed` in place.
async fn answer(
    state: &AppState,
    account_id: &str,
    proposed: Option<(&str, Option<&str>)>,
    question: &Question,
) -> Result<(cedar_policy::Decision, Vec<String>), AdminError> {
    let principal = crate::authz::PrincipalRef::from_arn(&question.principal).ok_or_else(|| {
        AdminError(ApiError::invalid_argument(format!(
            "{} is not a principal ARN (arn:aws:iam::<account>:user|role/<name>).",
            question.principal
        )))
    })?;
    let parsed;
    let resource = match &question.resource {
        QuestionResource::Stream(arn) => {
            parsed = protocol::arn::StreamArn::parse(arn)?;
            Resource::Stream {
                account: &parsed.account_id,
                arn,
                name: &parsed.stream_name,
            }
        }
        QuestionResource::Group(arn) => {
            let (stream_arn, name) = arn
                .rsplit_once("/group/")
                .filter(|(_, name)| !name.is_empty())
                .ok_or_else(|| {
                    AdminError(ApiError::invalid_argument(format!(
                        "{arn} is not a consumer group ARN (<stream ARN>/group/<name>)."
                    )))
                })?;
            parsed = protocol::arn::StreamArn::parse(stream_arn)?;
            Resource::Group {
                account: &parsed.account_id,
                arn,
                name,
                stream_arn,
                stream_name: &parsed.stream_name,
            }
        }
        QuestionResource::Tenant(account) => Resource::Tenant { account },
        QuestionResource::Key(arn) => {
            let account = arn
                .strip_prefix("arn:aws:kms:")
                .and_then(|rest| rest.split(':').nth(1))
                .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    AdminError(ApiError::invalid_argument(format!(
                        "{arn} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
                    )))
                })?;
            Resource::Key { account, arn }
        }
    };
    let facts = crate::authz::RequestFacts {
        source_ip: question.source_ip,
        tls_version: &question.tls_version,
        time_s: question.time.unwrap_or_else(|| state.clock.now_ms() / 1000),
        encryption_context: &[],
        grant_id: "",
    };
    state
        .authz
        .simulate(
            account_id,
            proposed,
            principal,
            &question.action,
            resource,
            facts,
        )
        .await
        .map_err(|e| match e {
            crate::authz::SimulationError::Invalid(errors) => {
                AdminError(crate::authz::invalid_policy(&errors))
            }
            crate::authz::SimulationError::Internal(cause) => {
                tracing::error!(cause, "simulation failed");
                AdminError(ApiError::internal())
            }
        })
}

fn decision_name(d: cedar_policy::Decision) -> &'static str {
    match d {
        cedar_policy::Decision::Allow => "Allow",
        cedar_policy::Decision::Deny => "Deny",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Simulation {
    #[serde(flatten)]
    question: Question,
    /// A proposed document to decide with, in place of the stored one of that name.
    name: Option<String>,
    policy: Option<String>,
}

/// Would this request be allowed, and which policies decided it.
async fn simulate_policy(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> AdminResult {
    allow(&state, &caller, "sluice:SimulatePolicy", &account_id).await?;
    let input: Simulation = parse_body(&body)?;
    let proposed = proposal(&input.name, &input.policy)?;
    let (decision, policies) = answer(&state, &account_id, proposed, &input.question).await?;
    ok(&json!({"decision": decision_name(decision), "policies": policies}))
}

fn proposal<'a>(
    name: &'a Option<String>,
    policy: &'a Option<String>,
) -> Result<Option<(&'a str, Option<&'a str>)>, AdminError> {
    match (name, policy) {
        (Some(name), policy) => {
            catalog::policies::validate_policy_name(name).map_err(|r| edge::refusal_error(&r))?;
            Ok(Some((name.as_str(), policy.as_deref())))
        }
        (None, None) => Ok(None),
        (None, Some(_)) => Err(AdminError(ApiError::invalid_argument(
            "A proposed policy needs the name of the document it would replace.",
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionCase {
    name: String,
    #[serde(flatten)]
    question: Question,
    /// `Allow` or `Deny`.
    decision: String,
    /// Policy ids that must be among the deciding ones.
    #[serde(default)]
    policies: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRun {
    name: Option<String>,
    policy: Option<String>,
    cases: Vec<DecisionCase>,
}

/// Decision cases one test run holds at most.
const TEST_CASES_MAX: usize = 1_000;

/// Runs decision cases against the tenant's policies (with a proposed document in
/// place, when given); each case passes when the decision and its deciding policies
/// are as expected.
async fn test_policy(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> AdminResult {
    allow(&state, &caller, "sluice:SimulatePolicy", &account_id).await?;
    let input: TestRun = parse_body(&body)?;
    if input.cases.len() > TEST_CASES_MAX {
        return Err(AdminError(ApiError::new(
            ErrorCode::LimitExceeded,
            format!("A test run holds at most {TEST_CASES_MAX} cases."),
        )));
    }
    let proposed = proposal(&input.name, &input.policy)?;
    let mut results = Vec::with_capacity(input.cases.len());
    let mut failed = 0;
    for case in &input.cases {
        if !matches!(case.decision.as_str(), "Allow" | "Deny") {
            return Err(AdminError(ApiError::validation(
                &case.decision,
                "decision",
                "Member must satisfy enum value set: [Allow, Deny]",
            )));
        }
        let (decision, policies) = answer(&state, &account_id, proposed, &case.question).await?;
        let passed = decision_name(decision) == case.decision
            && case.policies.iter().all(|p| policies.contains(p));
        if !passed {
            failed += 1;
        }
        results.push(json!({
            "name": case.name,
            "expected": case.decision,
            "expected_policies": case.policies,
            "decision": decision_name(decision),
            "policies": policies,
            "passed": passed,
        }));
    }
    ok(&json!({"passed": results.len() - failed, "failed": failed, "results": results}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Entries after this id (0: from the start).
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
}

/// Entries one export returns by default.
const AUDIT_EXPORT_DEFAULT: i64 = 1_000;

/// The tenant's audit trail as JSON lines, oldest first: its principals' decisions and
/// every decision about its resources. `x-sluice-next-after` names where the next page
/// starts when this one is full.
/// A tenant's audit settings: whether its allowed data events (PutRecord, PutRecords,
/// GetRecords, GetShardIterator, SubscribeToShard) are audited. Read with
/// `sluice:ReadAuditLog`, changed with `sluice:PutPolicy` (its admin's).
async fn audit_settings(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    allow(&state, &caller, "sluice:ReadAuditLog", &account_id).await?;
    state.catalog.tenant(&account_id).await?;
    let on = state.catalog.audit_data_events(&account_id).await?;
    ok(&json!({"data_events": on}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditSettings {
    data_events: bool,
}

async fn set_audit_settings(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    body: Bytes,
) -> AdminResult {
    let input: AuditSettings = parse_body(&body)?;
    allow_on(
        &state,
        &caller,
        "sluice:PutPolicy",
        &account_id,
        "audit-settings",
    )
    .await?;
    state.catalog.tenant(&account_id).await?;
    state
        .catalog
        .set_audit_data_events(&account_id, input.data_events)
        .await?;
    // This process at once; the others within the setting's cache time (5 s).
    state.authz.forget_data_events(&account_id);
    ok(&json!({"data_events": input.data_events}))
}

/// Walks the whole audit chain and says whether it verifies: the operator's (the
/// administering tenant's `sluice:ReadAuditLog`); the answer holds no tenant's data.
async fn verify_audit(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> AdminResult {
    let operator = state.authz.operator_account().to_string();
    allow(&state, &caller, "sluice:ReadAuditLog", &operator).await?;
    let found = state.catalog.verify_audit(&state.audit_chain_key).await?;
    ok(&json!({
        "intact": found.problems.is_empty(),
        "batches": found.batches,
        "rows": found.rows,
        "rows_before_chain": found.rows_before_chain,
        "problems": found.problems,
    }))
}

async fn export_audit(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
    Query(query): Query<AuditQuery>,
) -> AdminResult {
    allow(&state, &caller, "sluice:ReadAuditLog", &account_id).await?;
    let limit = query
        .limit
        .unwrap_or(AUDIT_EXPORT_DEFAULT)
        .clamp(1, catalog::audit::AUDIT_PAGE_MAX);
    let entries = state
        .catalog
        .audit_entries(&account_id, query.after, limit)
        .await?;
    let mut body = Vec::new();
    for entry in &entries {
        serde_json::to_writer(&mut body, entry).map_err(|_| AdminError(ApiError::internal()))?;
        body.push(b'\n');
    }
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response();
    if entries.len() as i64 == limit
        && let Some(last) = entries.last()
        && let Ok(value) = HeaderValue::from_str(&last.id.to_string())
    {
        response.headers_mut().insert("x-sluice-next-after", value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    /// Every path the router serves is described in the OpenAPI document, and the
    /// document describes no path the router does not serve.
    #[test]
    fn the_openapi_document_describes_every_route() {
        let source = include_str!("admin.rs");
        let start = source.find("pub fn router").unwrap();
        let end = source[start..].find("\nasync fn openapi").unwrap() + start;
        let routed: std::collections::BTreeSet<&str> = source[start..end]
            .split('"')
            .filter(|s| s.starts_with("/admin/v1/"))
            .collect();
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let described: std::collections::BTreeSet<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert!(routed.len() >= 20, "{routed:?}");
        assert_eq!(routed, described);
    }
}
