//! Tags by resource ARN: TagResource, UntagResource and ListTagsForResource, on a
//! stream (the same tags AddTagsToStream keeps) or an enhanced fan-out consumer. Each is
//! authorized on the stream the ARN names (`kinesis:<Action>` on the `Stream` entity;
//! the schema has no Consumer type).

use catalog::tags::Tagged;
use edge::Caller;
use protocol::model::*;
use protocol::{ApiError, ErrorCode, limits, validate};

use crate::state::*;

/// A TagResource call's and an UntagResource call's most members, as the model bounds them.
const TAGS_PER_RESOURCE_CALL_MAX: usize = 200;

async fn target(
    state: &Kinesis,
    caller: &Caller,
    action: &str,
    arn: Option<&str>,
) -> Result<Tagged, ApiError> {
    let arn = validate::required(arn, "resourceARN")?;
    validate::string_length(arn, "resourceARN", 1, 2048)?;
    if arn.contains("/consumer/") {
        // The consumer as every consumer operation finds it: authorized on its stream,
        // its ARN's creation time checked.
        let named = ConsumerInput {
            stream_arn: None,
            consumer_name: None,
            consumer_arn: Some(arn.to_string()),
        };
        let (stream, name, created_s) =
            crate::consumers::named_consumer(state, caller, action, &named, false).await?;
        let consumer = crate::consumers::find(state, caller, &stream, &name, created_s).await?;
        return Ok(Tagged::Consumer(consumer.id));
    }
    if arn.contains(":queue/") || arn.contains(":channel/") {
        // Queues and channels are Kinesis resources this server does not hold yet.
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("Resource {arn} not found."),
        ));
    }
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
    Ok(Tagged::Stream(stream.id))
}

fn count_bounds(count: usize, member: &str) -> Result<(), ApiError> {
    if count == 0 || count > TAGS_PER_RESOURCE_CALL_MAX {
        return Err(ApiError::validation(
            format!("{count} items"),
            member,
            if count == 0 {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 200"
            },
        ));
    }
    Ok(())
}

pub(crate) async fn tag_resource(
    state: &Kinesis,
    caller: &Caller,
    input: TagResourceInput,
) -> Result<Empty, ApiError> {
    let tags: Vec<(String, String)> = validate::required(input.tags.clone(), "tags")?
        .into_iter()
        .collect();
    count_bounds(tags.len(), "tags")?;
    let named = input
        .resource_arn
        .as_deref()
        .and_then(|a| a.split_once(":stream/"))
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
        .unwrap_or_default();
    validate_tags(&tags, &named, &caller.account_id)?;
    let owner = target(
        state,
        caller,
        "kinesis:TagResource",
        input.resource_arn.as_deref(),
    )
    .await?;
    state.catalog.add_tags(owner, &tags).await.map_err(api)?;
    Ok(Empty {})
}

pub(crate) async fn untag_resource(
    state: &Kinesis,
    caller: &Caller,
    input: UntagResourceInput,
) -> Result<Empty, ApiError> {
    let keys = validate::required(input.tag_keys.clone(), "tagKeys")?;
    count_bounds(keys.len(), "tagKeys")?;
    for key in &keys {
        validate::string_length(key, "tagKeys.member", 1, limits::TAG_KEY_CHARS_MAX)?;
    }
    let owner = target(
        state,
        caller,
        "kinesis:UntagResource",
        input.resource_arn.as_deref(),
    )
    .await?;
    state.catalog.remove_tags(owner, &keys).await.map_err(api)?;
    Ok(Empty {})
}

pub(crate) async fn list_tags_for_resource(
    state: &Kinesis,
    caller: &Caller,
    input: ListTagsForResourceInput,
) -> Result<ListTagsForResourceOutput, ApiError> {
    let owner = target(
        state,
        caller,
        "kinesis:ListTagsForResource",
        input.resource_arn.as_deref(),
    )
    .await?;
    // A resource has at most 50 tags: one page holds them all.
    let (tags, _) = state
        .catalog
        .list_tags(owner, None, limits::TAGS_PER_STREAM_MAX as i64)
        .await
        .map_err(api)?;
    Ok(ListTagsForResourceOutput {
        tags: tags
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect(),
    })
}
