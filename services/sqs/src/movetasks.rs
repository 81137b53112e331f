//! Message move tasks: StartMessageMoveTask moves a dead-letter queue's messages back,
//! each to the queue it was dead-lettered from (or all to DestinationArn), at most
//! MaxNumberOfMessagesPerSecond; CancelMessageMoveTask stops it; ListMessageMoveTasks
//! shows a source's recent tasks. The mover runs in the process that started it and
//! reports to the catalog every round; a task whose mover stopped reporting shows as
//! FAILED.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use catalog::Catalog;
use catalog::sqs::MoveTask;
use edge::{Resource, wire_error};
use protocol::clock::SharedClock;
use protocol::sqs::SqsError;
use protocol::{ApiError, ErrorCode};

use crate::api::{Context, bill, queue_by_arn, stored_attributes};
use crate::{attributes, sqs_error};

/// Messages one round moves at most (without a rate).
const ROUND_MAX: i64 = 100;
/// MaxNumberOfMessagesPerSecond's bounds (SQS's).
const RATE_MAX: i64 = 500;

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("{what} does not exist."),
    )
}

async fn authorize(ctx: &Context<'_>, action: &str, arn: &str) -> Result<(), ApiError> {
    let account = arn.split(':').nth(4).unwrap_or_default();
    ctx.state
        .authz
        .authorize(ctx.caller, action, Resource::MessageQueue { account, arn })
        .await
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartInput {
    source_arn: String,
    destination_arn: Option<String>,
    max_number_of_messages_per_second: Option<i64>,
}

pub async fn start(ctx: &Context<'_>, input: StartInput) -> Result<Value, ApiError> {
    authorize(ctx, "sqs:StartMessageMoveTask", &input.source_arn).await?;
    let source = queue_by_arn(ctx, &input.source_arn)
        .await?
        .ok_or_else(|| not_found("The source queue"))?;
    // The source must be some queue's dead-letter queue.
    let sources = ctx
        .state
        .catalog
        .list_sqs_queues(
            &source.account_id,
            "",
            "",
            catalog::sqs::QUEUES_PER_ACCOUNT_MAX,
        )
        .await
        .map_err(wire_error)?;
    if !sources.iter().any(|q| {
        attributes::redrive(&stored_attributes(q)).is_some_and(|(t, _)| t == input.source_arn)
    }) {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            "The source queue is not a dead-letter queue: no queue's RedrivePolicy names it.",
        ));
    }
    let destination = match &input.destination_arn {
        Some(arn) => {
            authorize(ctx, "sqs:SendMessage", arn).await?;
            Some(
                queue_by_arn(ctx, arn)
                    .await?
                    .ok_or_else(|| not_found("The destination queue"))?,
            )
        }
        None => None,
    };
    if let Some(r) = input.max_number_of_messages_per_second
        && !(1..=RATE_MAX).contains(&r)
    {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            format!("MaxNumberOfMessagesPerSecond is from 1 to {RATE_MAX}."),
        ));
    }
    let now = ctx.state.clock.now_ms();
    let counts = ctx
        .state
        .catalog
        .sqs_queue_counts(source.id, now)
        .await
        .map_err(wire_error)?;
    let task = MoveTask {
        task_handle: uuid::Uuid::new_v4().to_string(),
        account_id: source.account_id.clone(),
        source_queue_id: source.id,
        source_arn: input.source_arn.clone(),
        destination_arn: input.destination_arn.clone(),
        destination_queue_id: destination.as_ref().map(|d| d.id),
        max_per_second: input.max_number_of_messages_per_second,
        status: "RUNNING".into(),
        moved: 0,
        to_move: counts.visible,
        failure_reason: None,
        started_at_ms: now,
    };
    if !ctx
        .state
        .catalog
        .start_sqs_move_task(&task)
        .await
        .map_err(wire_error)?
    {
        return Err(sqs_error(
            SqsError::UnsupportedOperation,
            "A message move task is already running on this queue.",
        ));
    }
    tokio::spawn(run(
        ctx.state.catalog.clone(),
        ctx.state.clock.clone(),
        ctx.state.waiters.clone(),
        task.clone(),
    ));
    bill(ctx, &source.name, 1).await;
    Ok(json!({"TaskHandle": task.task_handle}))
}

/// Moves until the source has nothing visible left to move, the count known at the
/// start is reached, or the task is cancelled.
async fn run(
    catalog: Catalog,
    clock: SharedClock,
    waiters: Arc<crate::waiters::Waiters>,
    task: MoveTask,
) {
    let per_round = task.max_per_second.unwrap_or(ROUND_MAX).min(ROUND_MAX);
    let mut total = 0i64;
    loop {
        let now = clock.now_ms();
        let moved = match catalog
            .move_sqs_messages(
                task.source_queue_id,
                task.destination_queue_id,
                per_round,
                now,
            )
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, task = %task.task_handle, "moving messages failed; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        total += moved as i64;
        // (Messages going back to their own sources are seen by those queues' long
        // polls within a second.)
        if moved > 0
            && let Some(d) = task.destination_queue_id
        {
            waiters.wake(d);
        }
        let done = moved == 0 || total >= task.to_move;
        let status = match catalog
            .update_sqs_move_task(&task.task_handle, moved, done.then_some("COMPLETED"), now)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, task = %task.task_handle, "recording a move task's progress failed");
                continue;
            }
        };
        if status == "CANCELLING" {
            let _ = catalog
                .update_sqs_move_task(&task.task_handle, 0, Some("CANCELLED"), clock.now_ms())
                .await;
            return;
        }
        if done || status != "RUNNING" {
            return;
        }
        // A rate is messages a second: one round a second moves at most that many.
        let pause = if task.max_per_second.is_some() {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(10)
        };
        tokio::time::sleep(pause).await;
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelInput {
    task_handle: String,
}

pub async fn cancel(ctx: &Context<'_>, input: CancelInput) -> Result<Value, ApiError> {
    let catalog = &ctx.state.catalog;
    let now = ctx.state.clock.now_ms();
    let task = catalog
        .sqs_move_task(&ctx.caller.account_id, &input.task_handle, now)
        .await
        .map_err(wire_error)?
        .ok_or_else(|| not_found("The task"))?;
    authorize(ctx, "sqs:CancelMessageMoveTask", &task.source_arn).await?;
    let cancelled = catalog
        .cancel_sqs_move_task(&ctx.caller.account_id, &input.task_handle, now)
        .await
        .map_err(wire_error)?
        .ok_or_else(|| not_found("A running task with this handle"))?;
    Ok(json!({"ApproximateNumberOfMessagesMoved": cancelled.moved}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListInput {
    source_arn: String,
    max_results: Option<i64>,
}

pub async fn list(ctx: &Context<'_>, input: ListInput) -> Result<Value, ApiError> {
    authorize(ctx, "sqs:ListMessageMoveTasks", &input.source_arn).await?;
    let source = queue_by_arn(ctx, &input.source_arn)
        .await?
        .ok_or_else(|| not_found("The source queue"))?;
    let limit = input.max_results.unwrap_or(1);
    if !(1..=10).contains(&limit) {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            "MaxResults is from 1 to 10.",
        ));
    }
    let tasks = ctx
        .state
        .catalog
        .list_sqs_move_tasks(source.id, limit, ctx.state.clock.now_ms())
        .await
        .map_err(wire_error)?;
    let results: Vec<Value> = tasks
        .into_iter()
        .map(|t| {
            let mut v = json!({
                "Status": t.status,
                "SourceArn": t.source_arn,
                "ApproximateNumberOfMessagesMoved": t.moved,
                "ApproximateNumberOfMessagesToMove": t.to_move,
                "StartedTimestamp": t.started_at_ms,
            });
            if t.status == "RUNNING" {
                v["TaskHandle"] = t.task_handle.into();
            }
            if let Some(d) = t.destination_arn {
                v["DestinationArn"] = d.into();
            }
            if let Some(r) = t.max_per_second {
                v["MaxNumberOfMessagesPerSecond"] = r.into();
            }
            if let Some(f) = t.failure_reason {
                v["FailureReason"] = f.into();
            }
            v
        })
        .collect();
    bill(ctx, &source.name, 1).await;
    Ok(json!({"Results": results}))
}
