//! Connections under `/admin/v1/tenants/{account}/connections`: where a tenant's
//! Firehose destinations are and how to sign in to them. A PUT takes settings and
//! secrets; a GET answers the settings only (`firehose::connections` seals the rest).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use axum::body::Bytes;

use super::{AdminResult, allow, ok, parse_body};
use crate::auth::Caller;
use crate::state::AppState;

/// `self` names the caller's own tenant.
pub(super) fn own(caller: &Caller, account_id: String) -> String {
    if account_id == "self" {
        caller.account_id.clone()
    } else {
        account_id
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutConnection {
    #[serde(default)]
    settings: firehose::connections::Settings,
    #[serde(default)]
    s3_secret_access_key: Option<String>,
    #[serde(default)]
    http_password: Option<String>,
}

pub(super) async fn put_connection(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, name)): Path<(String, String)>,
    body: Bytes,
) -> AdminResult {
    let account_id = own(&caller, account_id);
    allow(&state, &caller, "sluice:PutConnection", &account_id).await?;
    let body: PutConnection = parse_body(&body)?;
    let secrets = firehose::connections::Secrets {
        s3_secret_access_key: body.s3_secret_access_key.clone(),
        http_password: body.http_password.clone(),
    };
    firehose::connections::put(
        &state.catalog,
        &state.root_key,
        &account_id,
        &name,
        &body.settings,
        &secrets,
        state.clock.now_ms(),
    )
    .await?;
    ok(&json!({"name": name, "settings": body.settings}))
}

pub(super) async fn list_connections(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    let account_id = own(&caller, account_id);
    allow(&state, &caller, "sluice:ListConnections", &account_id).await?;
    let shown = firehose::connections::list(&state.catalog, &account_id).await?;
    ok(&json!({"connections": shown}))
}

pub(super) async fn delete_connection(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, name)): Path<(String, String)>,
) -> AdminResult {
    let account_id = own(&caller, account_id);
    allow(&state, &caller, "sluice:DeleteConnection", &account_id).await?;
    state.catalog.delete_connection(&account_id, &name).await?;
    ok(&json!({}))
}
