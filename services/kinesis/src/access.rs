//! Who may use a stream and under which key: the resource policies (Cedar documents
//! attached to a stream) and Start/StopStreamEncryption.

use catalog::Stream;
use edge::Caller;
use protocol::model::*;
use protocol::{ApiError, ErrorCode, validate};

use crate::state::*;

/// The stream a resource-policy request names by its ResourceARN, once Cedar allowed
/// `action` on it, with the name of the policy document attached to it.
pub(crate) async fn policy_stream(
    state: &Kinesis,
    caller: &Caller,
    action: &str,
    resource_arn: Option<&str>,
) -> Result<(Stream, String), ApiError> {
    let arn = validate::required(resource_arn, "resourceARN")?;
    let stream = state
        .load(
            caller,
            action,
            StreamRef {
                stream_name: None,
                stream_arn: Some(arn),
            },
        )
        .await?;
    let document = format!("stream/{}", stream.name);
    Ok((stream, document))
}

/// Attaches a Cedar policy document to a stream (Kinesis's PutResourcePolicy, with
/// Cedar where AWS takes IAM JSON): every policy in it must name the stream as its
/// resource, and it is validated like any tenant policy before it is stored.
pub(crate) async fn put_resource_policy(
    state: &Kinesis,
    caller: &Caller,
    input: PutResourcePolicyInput,
) -> Result<Empty, ApiError> {
    let (_stream, document) = policy_stream(
        state,
        caller,
        "kinesis:PutResourcePolicy",
        input.resource_arn.as_deref(),
    )
    .await?;
    let policy = validate::required(input.policy, "policy")?;
    state
        .authz
        .store_policy(caller, &caller.account_id, &document, Some(&policy))
        .await
        .map_err(|e| match e.code {
            ErrorCode::Validation => ApiError::invalid_argument(format!(
                "The resource policy does not validate: {}",
                e.message
            )),
            _ => e,
        })?;
    Ok(Empty {})
}

pub(crate) async fn get_resource_policy(
    state: &Kinesis,
    caller: &Caller,
    input: ResourcePolicyInput,
) -> Result<GetResourcePolicyOutput, ApiError> {
    let (_stream, document) = policy_stream(
        state,
        caller,
        "kinesis:GetResourcePolicy",
        input.resource_arn.as_deref(),
    )
    .await?;
    // Kinesis answers an empty policy for a stream that has none.
    let policy = match state
        .catalog
        .policy_version(&caller.account_id, &document, None)
        .await
    {
        Ok(version) => version.body.unwrap_or_default(),
        Err(e) if e.is(catalog::RefusalKind::Missing) => String::new(),
        Err(e) => return Err(api(e)),
    };
    Ok(GetResourcePolicyOutput { policy })
}

pub(crate) async fn delete_resource_policy(
    state: &Kinesis,
    caller: &Caller,
    input: ResourcePolicyInput,
) -> Result<Empty, ApiError> {
    let (stream, document) = policy_stream(
        state,
        caller,
        "kinesis:DeleteResourcePolicy",
        input.resource_arn.as_deref(),
    )
    .await?;
    state
        .authz
        .store_policy(caller, &caller.account_id, &document, None)
        .await
        .map_err(|e| match e.code {
            ErrorCode::ResourceNotFound => ApiError::new(
                ErrorCode::ResourceNotFound,
                format!(
                    "No resource policy found for resource ARN {}.",
                    state.arn(caller, &stream.name)
                ),
            ),
            _ => e,
        })?;
    Ok(Empty {})
}

/// StartStreamEncryption (`start`) and StopStreamEncryption. Sluice seals every stream
/// at rest whatever they say: Start puts the stream's new data keys under the tenant
/// key it names, Stop puts them back under the account's default key
/// (`alias/aws/kinesis`). Either way the stream reports EncryptionType KMS and the key.
pub(crate) async fn stream_encryption(
    state: &Kinesis,
    caller: &Caller,
    input: StreamEncryptionInput,
    start: bool,
) -> Result<Empty, ApiError> {
    let action = if start {
        "kinesis:StartStreamEncryption"
    } else {
        "kinesis:StopStreamEncryption"
    };
    let encryption_type = validate::required(input.encryption_type.clone(), "encryptionType")?;
    if encryption_type != "KMS" && encryption_type != "NONE" {
        return Err(ApiError::validation(
            &encryption_type,
            "encryptionType",
            "Member must satisfy enum value set: [KMS, NONE]",
        ));
    }
    if encryption_type != "KMS" {
        return Err(ApiError::invalid_argument("EncryptionType must be KMS."));
    }
    let key_ref = validate::required(input.key_id.clone(), "keyId")?;
    validate::string_length(&key_ref, "keyId", 1, 2048)?;
    let stream = state.load(caller, action, input.stream()).await?;
    if start {
        let key = state.keys.key_for_stream(caller, &key_ref).await?;
        state
            .catalog
            .set_stream_encryption(stream.id, Some((&key_ref, &key.key_id)))
            .await
            .map_err(api)?;
    } else {
        state
            .catalog
            .set_stream_encryption(stream.id, None)
            .await
            .map_err(api)?;
    }
    state.streams.forget(&caller.account_id, &stream.name);
    state.keyring.forget_stream(stream.id).await;
    // UPDATING for the configured while, as Kinesis reports a stream whose encryption
    // changes; records still flow.
    state
        .begin_transition(caller, &stream.name, catalog::StreamStatus::Updating)
        .await?;
    Ok(Empty {})
}
