//! A queue's policy (its `Policy` attribute), kept as the tenant's policy document
//! `sqs/<queue name>`, so the authorizer compiles it to Cedar and decides every request
//! on the queue with it: an Allow lets its principals do what the tenant's own policies
//! do not, a Deny refuses what they would allow. DeleteQueue deletes it with the queue.

use edge::{Caller, wire_error};
use protocol::sqs::SqsError;
use protocol::{ApiError, ErrorCode};

use crate::{SqsService, sqs_error};

/// The tenant's policy document that holds a queue's policy.
pub fn document(queue_name: &str) -> String {
    format!("sqs/{queue_name}")
}

/// A queue's policy as it was last written, if it has one.
pub async fn stored(
    state: &SqsService,
    caller: &Caller,
    queue_name: &str,
) -> Result<Option<String>, ApiError> {
    match state
        .catalog
        .policy_version(&caller.account_id, &document(queue_name), None)
        .await
    {
        Ok(version) => Ok(version.body),
        Err(e) if e.is(catalog::RefusalKind::Missing) => Ok(None),
        Err(e) => Err(wire_error(e)),
    }
}

/// Makes `policy` the queue's policy ("" removes it). A policy the authorizer cannot
/// read as one about this queue is InvalidAttributeValue, and nothing changes.
pub async fn store(
    state: &SqsService,
    caller: &Caller,
    queue_name: &str,
    policy: &str,
) -> Result<(), ApiError> {
    let body = if policy.is_empty() {
        if stored(state, caller, queue_name).await?.is_none() {
            return Ok(());
        }
        None
    } else {
        Some(policy)
    };
    state
        .authz
        .store_policy(caller, &caller.account_id, &document(queue_name), body)
        .await
        .map(|_| ())
        .map_err(|e| match e.code {
            ErrorCode::Validation => sqs_error(
                SqsError::InvalidAttributeValue,
                format!("Invalid value for the parameter Policy: {}", e.message),
            ),
            _ => e,
        })
}
