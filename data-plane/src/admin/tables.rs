//! Tables under `/admin/v1/tenants/{account}/tables`: the columns a tenant describes
//! for Firehose's record format conversion, named by database and table as a delivery
//! stream's SchemaConfiguration names them (`firehose::tables` checks them).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::connections::own;
use super::{AdminResult, allow, ok, parse_body};
use crate::auth::Caller;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutTable {
    columns: Vec<firehose::tables::Column>,
}

pub(super) async fn put_table(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, database, table)): Path<(String, String, String)>,
    body: Bytes,
) -> AdminResult {
    let account_id = own(&caller, account_id);
    allow(&state, &caller, "sluice:PutTable", &account_id).await?;
    let body: PutTable = parse_body(&body)?;
    let version = firehose::tables::put(
        &state.catalog,
        &account_id,
        &database,
        &table,
        &body.columns,
        state.clock.now_ms(),
    )
    .await?;
    ok(&json!({
        "database": database,
        "table": table,
        "columns": body.columns,
        "version": version,
    }))
}

pub(super) async fn list_tables(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(account_id): Path<String>,
) -> AdminResult {
    let account_id = own(&caller, account_id);
    allow(&state, &caller, "sluice:ListTables", &account_id).await?;
    let shown = firehose::tables::list(&state.catalog, &account_id).await?;
    ok(&json!({"tables": shown}))
}

pub(super) async fn delete_table(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((account_id, database, table)): Path<(String, String, String)>,
) -> AdminResult {
    let account_id = own(&caller, account_id);
    allow(&state, &caller, "sluice:DeleteTable", &account_id).await?;
    state
        .catalog
        .delete_table_schema(&account_id, &database, &table)
        .await?;
    ok(&json!({}))
}
