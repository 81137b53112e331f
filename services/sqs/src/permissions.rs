//! AddPermission and RemovePermission: labelled Allow statements added to and removed
//! from the queue's policy (`queue_policy`).

use serde::Deserialize;
use serde_json::{Value, json};

use protocol::ApiError;
use protocol::sqs::SqsError;

use crate::api::{Context, bill, queue_arn, resolve};
use crate::queue_policy::{store, stored};
use crate::sqs_error;

/// The actions a permission may grant (SQS's list; the rest are the owner's alone).
const GRANTABLE: [&str; 9] = [
    "*",
    "SendMessage",
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
];
/// Accounts and actions one permission names at most (SQS's limit).
const PERMISSION_NAMES_MAX: usize = 7;
/// Statements a queue's policy keeps at most.
const STATEMENTS_MAX: usize = 100;

fn bad_parameter(message: impl Into<String>) -> ApiError {
    sqs_error(SqsError::InvalidParameterValue, message)
}

/// A permission's label: 1 to 80 of letters, digits, `-` and `_`.
fn check_label(label: &str) -> Result<(), ApiError> {
    if label.is_empty()
        || label.len() > 80
        || !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(bad_parameter(
            "Label: can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    Ok(())
}

/// The policy's statements, and the policy as an object to put them back into.
fn statements(policy: Option<&str>, arn: &str) -> Result<(Value, Vec<Value>), ApiError> {
    let Some(text) = policy else {
        return Ok((
            json!({"Version": "2012-10-17", "Id": format!("{arn}/SQSDefaultPolicy")}),
            Vec::new(),
        ));
    };
    let doc: Value = serde_json::from_str(text)
        .map_err(|_| bad_parameter("The queue's policy is not a JSON document."))?;
    let list = match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    Ok((doc, list))
}

fn sid(statement: &Value) -> Option<&str> {
    statement.get("Sid").and_then(Value::as_str)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddPermissionInput {
    queue_url: String,
    label: String,
    #[serde(rename = "AWSAccountIds")]
    aws_account_ids: Vec<String>,
    actions: Vec<String>,
}

/// Adds an Allow statement labelled `Label` that lets the accounts' principals do the
/// actions on the queue.
pub async fn add_permission(
    ctx: &Context<'_>,
    input: AddPermissionInput,
) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:AddPermission").await?;
    check_label(&input.label)?;
    let names = |what: &str, list: &[String]| -> Result<(), ApiError> {
        if list.is_empty() || list.len() > PERMISSION_NAMES_MAX {
            return Err(bad_parameter(format!(
                "{what}: a permission names 1 to {PERMISSION_NAMES_MAX}."
            )));
        }
        Ok(())
    };
    names("AWSAccountIds", &input.aws_account_ids)?;
    names("Actions", &input.actions)?;
    for account in &input.aws_account_ids {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_parameter(format!(
                "Value {account} for parameter AWSAccountIds is invalid: an account ID is 12 digits."
            )));
        }
    }
    for action in &input.actions {
        if !GRANTABLE.contains(&action.as_str()) {
            return Err(bad_parameter(format!(
                "Value SQS:{action} for parameter ActionName is invalid. Reason: Only the queue owner is allowed to invoke this action."
            )));
        }
    }
    let arn = queue_arn(&ctx.state.region, &queue.account_id, &queue.name);
    let current = stored(ctx.state, ctx.caller, &queue.name).await?;
    let (mut doc, mut list) = statements(current.as_deref(), &arn)?;
    if list.iter().any(|s| sid(s) == Some(input.label.as_str())) {
        return Err(bad_parameter(format!(
            "Value {} for parameter Label is invalid. Reason: Already exists.",
            input.label
        )));
    }
    if list.len() >= STATEMENTS_MAX {
        return Err(sqs_error(
            SqsError::OverLimit,
            format!("A queue's policy has at most {STATEMENTS_MAX} statements."),
        ));
    }
    let principals: Vec<String> = input
        .aws_account_ids
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:root"))
        .collect();
    let actions: Vec<String> = input.actions.iter().map(|a| format!("SQS:{a}")).collect();
    list.push(json!({
        "Sid": input.label,
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        "Action": actions,
        "Resource": arn,
    }));
    doc["Statement"] = Value::Array(list);
    store(ctx.state, ctx.caller, &queue.name, &doc.to_string()).await?;
    bill(ctx, &queue.name, 1).await;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemovePermissionInput {
    queue_url: String,
    label: String,
}

/// Removes the statement labelled `Label`; a policy left with none is removed.
pub async fn remove_permission(
    ctx: &Context<'_>,
    input: RemovePermissionInput,
) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:RemovePermission").await?;
    let arn = queue_arn(&ctx.state.region, &queue.account_id, &queue.name);
    let current = stored(ctx.state, ctx.caller, &queue.name).await?;
    let (mut doc, mut list) = statements(current.as_deref(), &arn)?;
    let before = list.len();
    list.retain(|s| sid(s) != Some(input.label.as_str()));
    if list.len() == before {
        return Err(bad_parameter(format!(
            "Value {} for parameter Label is invalid. Reason: can't find label on existing policy.",
            input.label
        )));
    }
    let policy = if list.is_empty() {
        String::new()
    } else {
        doc["Statement"] = Value::Array(list);
        doc.to_string()
    };
    store(ctx.state, ctx.caller, &queue.name, &policy).await?;
    bill(ctx, &queue.name, 1).await;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_statements() {
        assert!(check_label("workers-1_a").is_ok());
        assert!(check_label("").is_err());
        assert!(check_label("a b").is_err());
        assert!(check_label(&"x".repeat(81)).is_err());
        let arn = "arn:aws:sqs:us-east-1:111122223333:jobs";
        let (doc, list) = statements(None, arn).unwrap();
        assert!(list.is_empty());
        assert_eq!(doc["Id"], format!("{arn}/SQSDefaultPolicy"));
        let one = r#"{"Statement": {"Sid": "a", "Effect": "Allow"}}"#;
        let (_, list) = statements(Some(one), arn).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(sid(&list[0]), Some("a"));
        assert!(statements(Some("nope"), arn).is_err());
    }
}
