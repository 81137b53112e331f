//! The queue operations: make, find, list, delete, attributes, purge and tags. A queue
//! URL is `https://HOST/ACCOUNT/NAME`; only its path names the queue.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use catalog::sqs::Queue;
use edge::{Caller, Resource, wire_error};
use protocol::sqs::SqsError;
use protocol::{ApiError, ErrorCode};

use crate::attributes::{self, Attributes};
use crate::{SqsService, queue_policy, sqs_error};

/// What every operation is given.
pub struct Context<'a> {
    pub state: &'a SqsService,
    pub caller: &'a Caller,
    /// `https://HOST` as the request reached the server.
    pub endpoint: &'a str,
}

/// Tags a queue may carry (SQS's limit).
const TAGS_MAX: usize = 50;
/// ListQueues answers at most this many.
const LIST_MAX: i64 = 1_000;

/// Bills requests of a queue ("" for ListQueues) in a transaction of their own. A
/// failure to bill is logged, not answered: the request's effect has happened.
pub async fn bill(ctx: &Context<'_>, queue_name: &str, requests: u64) {
    let billed = catalog::sqs::Billed {
        account_id: &ctx.caller.account_id,
        queue_name,
    };
    if let Err(e) = ctx
        .state
        .catalog
        .bill_sqs_requests(billed, requests, ctx.state.clock.now_ms())
        .await
    {
        tracing::warn!(error = %e, queue = queue_name, "billing an SQS request failed");
    }
}

pub fn queue_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:sqs:{region}:{account}:{name}")
}

pub fn queue_url(endpoint: &str, account: &str, name: &str) -> String {
    format!("{endpoint}/{account}/{name}")
}

fn no_queue() -> ApiError {
    sqs_error(
        SqsError::QueueDoesNotExist,
        "The specified queue does not exist.",
    )
}

/// A queue name: 1 to 80 of letters, digits, `-` and `_` (a FIFO queue's ends in
/// `.fifo`, counted).
fn check_name(name: &str) -> Result<(), ApiError> {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    if stem.is_empty()
        || name.len() > 80
        || !stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    Ok(())
}

/// The account and name a queue URL's path names.
pub fn parse_url(url: &str) -> Result<(String, String), ApiError> {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => url.trim_start_matches('/'),
    };
    let mut parts = path.trim_end_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(account), Some(name), None)
            if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok((account.to_string(), name.to_string()))
        }
        _ => Err(sqs_error(
            SqsError::InvalidAddress,
            format!("The address {url} is not valid for this endpoint."),
        )),
    }
}

/// The queue a URL names, after the caller is allowed `action` on it. A queue of
/// another account, or none, is QueueDoesNotExist (after authorization, so a denied
/// caller learns nothing).
pub async fn resolve(ctx: &Context<'_>, url: &str, action: &str) -> Result<Queue, ApiError> {
    let (account, name) = authorize_url(ctx, url, action).await?;
    ctx.state
        .catalog
        .sqs_queue(&account, &name)
        .await
        .map_err(wire_error)?
        .ok_or_else(no_queue)
}

/// The same for the message operations, from `QueueCache`: a queue changed by another
/// process is seen within `QUEUE_CACHE_TTL` (SQS itself takes up to 60 seconds to
/// apply a changed attribute everywhere).
pub async fn resolve_cached(
    ctx: &Context<'_>,
    url: &str,
    action: &str,
) -> Result<Arc<Queue>, ApiError> {
    let (account, name) = authorize_url(ctx, url, action).await?;
    let key = (account, name);
    if let Some(queue) = ctx.state.queues.get(&key) {
        return Ok(queue);
    }
    let queue = ctx
        .state
        .catalog
        .sqs_queue(&key.0, &key.1)
        .await
        .map_err(wire_error)?
        .ok_or_else(no_queue)?;
    Ok(ctx.state.queues.put(key, queue))
}

/// The queue a URL names, if the caller may do `action` on it and it is in the
/// caller's account.
async fn authorize_url(
    ctx: &Context<'_>,
    url: &str,
    action: &str,
) -> Result<(String, String), ApiError> {
    let (account, name) = parse_url(url)?;
    let arn = queue_arn(&ctx.state.region, &account, &name);
    ctx.state
        .authz
        .authorize(
            ctx.caller,
            action,
            Resource::MessageQueue {
                account: &account,
                arn: &arn,
            },
        )
        .await?;
    if account != ctx.caller.account_id {
        return Err(no_queue());
    }
    Ok((account, name))
}

/// How long a queue read for a message operation is used before it is read again.
pub const QUEUE_CACHE_TTL: Duration = Duration::from_secs(1);
/// Queues the cache holds at most; full, it starts again empty.
const QUEUE_CACHE_ENTRIES_MAX: usize = 10_000;

/// Queues by (account, name), for the message operations, so that a send or receive
/// does not read its queue's row each time. This process forgets a queue itself when
/// it changes or deletes it.
#[derive(Default)]
pub struct QueueCache {
    entries: Mutex<QueueEntries>,
}

/// (account, name) to the queue and when it was read.
type QueueEntries = HashMap<(String, String), (Arc<Queue>, Instant)>;

impl QueueCache {
    fn get(&self, key: &(String, String)) -> Option<Arc<Queue>> {
        let entries = self.entries.lock().expect("queue cache lock");
        let (queue, at) = entries.get(key)?;
        (at.elapsed() < QUEUE_CACHE_TTL).then(|| queue.clone())
    }

    fn put(&self, key: (String, String), queue: Queue) -> Arc<Queue> {
        let queue = Arc::new(queue);
        let mut entries = self.entries.lock().expect("queue cache lock");
        if entries.len() >= QUEUE_CACHE_ENTRIES_MAX {
            entries.clear();
        }
        entries.insert(key, (queue.clone(), Instant::now()));
        queue
    }

    /// Drops what is held of the queue (after this process changed it).
    pub fn forget(&self, queue: &Queue) {
        self.entries
            .lock()
            .expect("queue cache lock")
            .remove(&(queue.account_id.clone(), queue.name.clone()));
    }
}

/// A dead-letter queue is of the same type as its source, and lets the source name it
/// (its RedriveAllowPolicy).
async fn check_redrive_target(
    ctx: &Context<'_>,
    source_name: &str,
    attrs: &Attributes,
    fifo: bool,
) -> Result<(), ApiError> {
    let Some((arn, _)) = attributes::redrive(attrs) else {
        return Ok(());
    };
    if arn.ends_with(".fifo") != fifo {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            "The dead-letter queue of a FIFO queue is a FIFO queue, and of a standard queue a standard queue.",
        ));
    }
    let source = queue_arn(&ctx.state.region, &ctx.caller.account_id, source_name);
    if let Some(dlq) = queue_by_arn(ctx, &arn).await?
        && !attributes::allows_redrive_from(&stored_attributes(&dlq), &source)
    {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            format!(
                "Value for parameter RedrivePolicy is invalid. Reason: the RedriveAllowPolicy of {arn} does not allow {source} to use it as its dead-letter queue."
            ),
        ));
    }
    Ok(())
}

pub(crate) fn stored_attributes(queue: &Queue) -> Attributes {
    serde_json::from_str(&queue.attributes).unwrap_or_default()
}

fn stored_tags(queue: &Queue) -> BTreeMap<String, String> {
    serde_json::from_str(&queue.tags).unwrap_or_default()
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > TAGS_MAX {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            format!("A queue has at most {TAGS_MAX} tags."),
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(sqs_error(
                SqsError::InvalidParameterValue,
                format!("Tag {k:?}: keys are 1 to 128 characters, values at most 256."),
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueueInput {
    queue_name: String,
    #[serde(default)]
    attributes: Attributes,
    #[serde(default, rename = "tags")]
    tags: BTreeMap<String, String>,
}

pub async fn create_queue(ctx: &Context<'_>, input: CreateQueueInput) -> Result<Value, ApiError> {
    let account = &ctx.caller.account_id;
    let arn = queue_arn(&ctx.state.region, account, &input.queue_name);
    ctx.state
        .authz
        .authorize(
            ctx.caller,
            "sqs:CreateQueue",
            Resource::MessageQueue { account, arn: &arn },
        )
        .await?;
    if !input.tags.is_empty() {
        // Tagging on creation needs both rights, as SQS documents.
        ctx.state
            .authz
            .authorize(
                ctx.caller,
                "sqs:TagQueue",
                Resource::MessageQueue { account, arn: &arn },
            )
            .await?;
    }
    check_name(&input.queue_name)?;
    let fifo = attributes::is_fifo(&input.attributes);
    if fifo != input.queue_name.ends_with(".fifo") {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            "The name of a FIFO queue ends in .fifo, and a queue named so is made with FifoQueue true.",
        ));
    }
    attributes::check(&input.attributes, fifo)?;
    check_redrive_target(ctx, &input.queue_name, &input.attributes, fifo).await?;
    check_tags(&input.tags)?;
    // The policy is kept as a policy document of its own, not among the attributes.
    let mut kept = input.attributes.clone();
    let policy = kept.remove("Policy").unwrap_or_default();
    let (queue, made) = ctx
        .state
        .catalog
        .create_sqs_queue(
            account,
            &input.queue_name,
            &serde_json::to_string(&kept).expect("serializable"),
            &serde_json::to_string(&input.tags).expect("serializable"),
            ctx.state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?;
    if made {
        // A policy that does not validate leaves no queue behind.
        if let Err(e) = queue_policy::store(ctx.state, ctx.caller, &queue.name, &policy).await {
            if let Err(undo) = ctx.state.catalog.delete_sqs_queue(queue.id).await {
                tracing::warn!(error = %undo, queue = %queue.name, "removing a queue whose policy was refused failed");
            }
            return Err(e);
        }
    } else {
        let mut existing = stored_attributes(&queue);
        existing.remove("Policy");
        if let Some(p) = queue_policy::stored(ctx.state, ctx.caller, &queue.name).await? {
            existing.insert("Policy".into(), p);
        }
        for name in attributes::SETTABLE {
            if input.attributes.contains_key(name)
                && attributes::value(&existing, name) != attributes::value(&input.attributes, name)
            {
                return Err(sqs_error(
                    SqsError::QueueNameExists,
                    format!(
                        "A queue already exists with the same name and a different value for attribute {name}"
                    ),
                ));
            }
        }
    }
    bill(ctx, &queue.name, 1).await;
    Ok(json!({"QueueUrl": queue_url(ctx.endpoint, account, &queue.name)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueUrlInput {
    queue_name: String,
    queue_owner_a_w_s_account_id: Option<String>,
}

pub async fn get_queue_url(ctx: &Context<'_>, input: GetQueueUrlInput) -> Result<Value, ApiError> {
    let account = input
        .queue_owner_a_w_s_account_id
        .clone()
        .unwrap_or_else(|| ctx.caller.account_id.clone());
    let url = queue_url(ctx.endpoint, &account, &input.queue_name);
    let queue = resolve(ctx, &url, "sqs:GetQueueUrl").await?;
    bill(ctx, &queue.name, 1).await;
    Ok(json!({"QueueUrl": queue_url(ctx.endpoint, &queue.account_id, &queue.name)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueuesInput {
    queue_name_prefix: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub async fn list_queues(ctx: &Context<'_>, input: ListQueuesInput) -> Result<Value, ApiError> {
    let account = &ctx.caller.account_id;
    ctx.state
        .authz
        .authorize(ctx.caller, "sqs:ListQueues", Resource::Tenant { account })
        .await?;
    if let Some(m) = input.max_results
        && !(1..=LIST_MAX).contains(&m)
    {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            "MaxResults is from 1 to 1000.",
        ));
    }
    let after = page_after(input.next_token.as_deref())?;
    let limit = input.max_results.unwrap_or(LIST_MAX);
    let queues = ctx
        .state
        .catalog
        .list_sqs_queues(
            account,
            input.queue_name_prefix.as_deref().unwrap_or(""),
            &after,
            limit + 1,
        )
        .await
        .map_err(wire_error)?;
    let more = queues.len() as i64 > limit;
    let urls: Vec<String> = queues
        .iter()
        .take(limit as usize)
        .map(|q| queue_url(ctx.endpoint, account, &q.name))
        .collect();
    let mut out = json!({});
    if !urls.is_empty() {
        out["QueueUrls"] = json!(urls);
    }
    // Only a caller that asked for pages gets a token (as SQS answers).
    if more && input.max_results.is_some() {
        out["NextToken"] = page_token(&queues[limit as usize - 1].name).into();
    }
    bill(ctx, "", 1).await;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueUrlInput {
    queue_url: String,
}

pub async fn delete_queue(ctx: &Context<'_>, input: QueueUrlInput) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:DeleteQueue").await?;
    ctx.state
        .catalog
        .delete_sqs_queue(queue.id)
        .await
        .map_err(wire_error)?;
    ctx.state.queues.forget(&queue);
    // The queue is gone; its policy goes too, so a queue made later under the name
    // starts without it (CreateQueue clears it again should this fail).
    if let Err(e) = queue_policy::store(ctx.state, ctx.caller, &queue.name, "").await {
        tracing::warn!(error = %e.message, queue = %queue.name, "removing a deleted queue's policy failed");
    }
    ctx.state.waiters.wake(queue.id);
    bill(ctx, &queue.name, 1).await;
    Ok(json!({}))
}

pub async fn purge_queue(ctx: &Context<'_>, input: QueueUrlInput) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:PurgeQueue").await?;
    let done = ctx
        .state
        .catalog
        .purge_sqs_queue(queue.id, ctx.state.clock.now_ms())
        .await
        .map_err(wire_error)?;
    ctx.state.queues.forget(&queue);
    if !done {
        return Err(sqs_error(
            SqsError::PurgeQueueInProgress,
            format!(
                "Only one PurgeQueue operation on {} is allowed every 60 seconds.",
                queue.name
            ),
        ));
    }
    bill(ctx, &queue.name, 1).await;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetAttributesInput {
    queue_url: String,
    #[serde(default)]
    attribute_names: Vec<String>,
}

pub async fn get_queue_attributes(
    ctx: &Context<'_>,
    input: GetAttributesInput,
) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:GetQueueAttributes").await?;
    let stored = stored_attributes(&queue);
    let all = input.attribute_names.iter().any(|n| n == "All");
    let fifo = attributes::is_fifo(&stored);
    let fifo_names: &[&str] = if fifo { &attributes::FIFO_ONLY } else { &[] };
    let wanted: Vec<&str> = if all {
        attributes::SETTABLE
            .iter()
            .chain(attributes::READ_ONLY.iter())
            .chain(fifo_names.iter())
            .copied()
            .collect()
    } else {
        for n in &input.attribute_names {
            if !attributes::SETTABLE.contains(&n.as_str())
                && !attributes::READ_ONLY.contains(&n.as_str())
                && !fifo_names.contains(&n.as_str())
            {
                return Err(sqs_error(
                    SqsError::InvalidAttributeName,
                    format!("Unknown Attribute {n}."),
                ));
            }
        }
        input.attribute_names.iter().map(String::as_str).collect()
    };
    let needs_counts = wanted
        .iter()
        .any(|n| n.starts_with("ApproximateNumberOfMessages"));
    let counts = if needs_counts {
        ctx.state
            .catalog
            .sqs_queue_counts(queue.id, ctx.state.clock.now_ms())
            .await
            .map_err(wire_error)?
    } else {
        Default::default()
    };
    let mut out = serde_json::Map::new();
    for name in wanted {
        let v = match name {
            "QueueArn" => Some(queue_arn(&ctx.state.region, &queue.account_id, &queue.name)),
            "ApproximateNumberOfMessages" => Some(counts.visible.to_string()),
            "ApproximateNumberOfMessagesNotVisible" => Some(counts.in_flight.to_string()),
            "ApproximateNumberOfMessagesDelayed" => Some(counts.delayed.to_string()),
            "CreatedTimestamp" => Some((queue.created_at_ms / 1000).to_string()),
            "LastModifiedTimestamp" => Some((queue.updated_at_ms / 1000).to_string()),
            "Policy" => queue_policy::stored(ctx.state, ctx.caller, &queue.name).await?,
            n => attributes::value(&stored, n),
        };
        if let Some(v) = v {
            out.insert(name.to_string(), v.into());
        }
    }
    bill(ctx, &queue.name, 1).await;
    Ok(if out.is_empty() {
        json!({})
    } else {
        json!({"Attributes": out})
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetAttributesInput {
    queue_url: String,
    attributes: Attributes,
}

pub async fn set_queue_attributes(
    ctx: &Context<'_>,
    input: SetAttributesInput,
) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:SetQueueAttributes").await?;
    let mut stored = stored_attributes(&queue);
    let fifo = attributes::is_fifo(&stored);
    if input.attributes.contains_key("FifoQueue") {
        return Err(sqs_error(
            SqsError::InvalidAttributeName,
            "FifoQueue is fixed when a queue is made.",
        ));
    }
    attributes::check(&input.attributes, fifo)?;
    check_redrive_target(ctx, &queue.name, &input.attributes, fifo).await?;
    let mut input = input;
    if let Some(policy) = input.attributes.remove("Policy") {
        // First, so a policy that does not validate changes nothing.
        queue_policy::store(ctx.state, ctx.caller, &queue.name, &policy).await?;
    }
    stored.remove("Policy");
    for (k, v) in input.attributes {
        // One kind of encryption at a time: the one set last.
        match (k.as_str(), v.as_str()) {
            ("KmsMasterKeyId", key) if !key.is_empty() => {
                stored.remove("SqsManagedSseEnabled");
            }
            ("SqsManagedSseEnabled", "true") => {
                stored.remove("KmsMasterKeyId");
            }
            _ => {}
        }
        // An empty policy or key clears it.
        if v.is_empty()
            && matches!(
                k.as_str(),
                "RedrivePolicy" | "RedriveAllowPolicy" | "KmsMasterKeyId"
            )
        {
            stored.remove(&k);
        } else {
            stored.insert(k, v);
        }
    }
    ctx.state
        .catalog
        .set_sqs_queue_attributes(
            queue.id,
            &serde_json::to_string(&stored).expect("serializable"),
            ctx.state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?;
    ctx.state.queues.forget(&queue);
    bill(ctx, &queue.name, 1).await;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagInput {
    queue_url: String,
    tags: BTreeMap<String, String>,
}

pub async fn tag_queue(ctx: &Context<'_>, input: TagInput) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:TagQueue").await?;
    let mut tags = stored_tags(&queue);
    tags.extend(input.tags);
    check_tags(&tags)?;
    ctx.state
        .catalog
        .set_sqs_queue_tags(
            queue.id,
            &serde_json::to_string(&tags).expect("serializable"),
        )
        .await
        .map_err(wire_error)?;
    bill(ctx, &queue.name, 1).await;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagInput {
    queue_url: String,
    tag_keys: Vec<String>,
}

pub async fn untag_queue(ctx: &Context<'_>, input: UntagInput) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:UntagQueue").await?;
    let mut tags = stored_tags(&queue);
    for k in &input.tag_keys {
        tags.remove(k);
    }
    ctx.state
        .catalog
        .set_sqs_queue_tags(
            queue.id,
            &serde_json::to_string(&tags).expect("serializable"),
        )
        .await
        .map_err(wire_error)?;
    bill(ctx, &queue.name, 1).await;
    Ok(json!({}))
}

pub async fn list_queue_tags(ctx: &Context<'_>, input: QueueUrlInput) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:ListQueueTags").await?;
    let tags = stored_tags(&queue);
    bill(ctx, &queue.name, 1).await;
    Ok(if tags.is_empty() {
        json!({})
    } else {
        json!({"Tags": tags})
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterSourcesInput {
    queue_url: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// The queues whose RedrivePolicy names this queue as their dead-letter queue.
pub async fn list_dead_letter_sources(
    ctx: &Context<'_>,
    input: DeadLetterSourcesInput,
) -> Result<Value, ApiError> {
    let queue = resolve(ctx, &input.queue_url, "sqs:ListDeadLetterSourceQueues").await?;
    let arn = queue_arn(&ctx.state.region, &queue.account_id, &queue.name);
    if let Some(m) = input.max_results
        && !(1..=LIST_MAX).contains(&m)
    {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            "MaxResults is from 1 to 1000.",
        ));
    }
    let limit = input.max_results.unwrap_or(LIST_MAX) as usize;
    let mut after = page_after(input.next_token.as_deref())?;
    let mut urls = Vec::new();
    let mut next = None;
    'pages: loop {
        let page = ctx
            .state
            .catalog
            .list_sqs_queues(&queue.account_id, "", &after, LIST_MAX)
            .await
            .map_err(wire_error)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.name.clone();
        for q in &page {
            if attributes::redrive(&stored_attributes(q)).is_some_and(|(target, _)| target == arn) {
                if urls.len() == limit {
                    next = Some(page_token(&urls_last_name(&urls)));
                    break 'pages;
                }
                urls.push(queue_url(ctx.endpoint, &q.account_id, &q.name));
            }
        }
    }
    bill(ctx, &queue.name, 1).await;
    let mut out = json!({"queueUrls": urls});
    if let Some(n) = next {
        out["NextToken"] = n.into();
    }
    Ok(out)
}

/// The queue name a page of queue URLs ends with.
fn urls_last_name(urls: &[String]) -> String {
    urls.last()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

/// A list's NextToken: the queue name the next page starts after.
fn page_token(last_name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last_name.as_bytes())
}

/// The queue name a NextToken says to start after ("" for none).
fn page_after(token: Option<&str>) -> Result<String, ApiError> {
    use base64::Engine;
    let Some(t) = token else {
        return Ok(String::new());
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| sqs_error(SqsError::InvalidParameterValue, "Invalid NextToken value."))
}

/// A queue ARN's queue, in the caller's account (a redrive policy's dead-letter queue).
pub async fn queue_by_arn(ctx: &Context<'_>, arn: &str) -> Result<Option<Queue>, ApiError> {
    let Some((account, name)) = own_queue_named(ctx, arn) else {
        return Ok(None);
    };
    ctx.state
        .catalog
        .sqs_queue(&account, &name)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "a dead-letter queue lookup failed");
            ApiError::new(ErrorCode::InternalFailure, "Internal service error.")
        })
}

/// The same from the queue cache (`resolve_cached`), for a receive's dead-letter queue.
pub async fn queue_by_arn_cached(
    ctx: &Context<'_>,
    arn: &str,
) -> Result<Option<Arc<Queue>>, ApiError> {
    let Some(key) = own_queue_named(ctx, arn) else {
        return Ok(None);
    };
    if let Some(queue) = ctx.state.queues.get(&key) {
        return Ok(Some(queue));
    }
    Ok(queue_by_arn(ctx, arn)
        .await?
        .map(|queue| ctx.state.queues.put(key, queue)))
}

/// The (account, name) a queue ARN names, if it is one in the caller's account.
fn own_queue_named(ctx: &Context<'_>, arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, "sqs", _, account, name] = parts.as_slice() else {
        return None;
    };
    (*account == ctx.caller.account_id).then(|| (account.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(account: &str, name: &str, id: i64) -> Queue {
        Queue {
            id,
            account_id: account.into(),
            name: name.into(),
            attributes: "{}".into(),
            tags: "{}".into(),
            created_at_ms: 0,
            updated_at_ms: 0,
            purged_at_ms: 0,
        }
    }

    #[test]
    fn the_queue_cache_forgets_a_changed_queue_and_stays_bounded() {
        let cache = QueueCache::default();
        let key = |n: &str| ("111122223333".to_string(), n.to_string());
        cache.put(key("jobs"), queue("111122223333", "jobs", 1));
        assert_eq!(cache.get(&key("jobs")).map(|q| q.id), Some(1));
        cache.forget(&queue("111122223333", "jobs", 1));
        assert!(
            cache.get(&key("jobs")).is_none(),
            "forgotten after a change"
        );
        for i in 0..QUEUE_CACHE_ENTRIES_MAX as i64 + 1 {
            cache.put(key(&format!("q{i}")), queue("111122223333", "q", i));
        }
        assert!(cache.entries.lock().unwrap().len() <= QUEUE_CACHE_ENTRIES_MAX);
    }

    #[test]
    fn urls_name_their_queue_by_path() {
        assert_eq!(
            parse_url("https://127.0.0.1:4567/111122223333/jobs").unwrap(),
            ("111122223333".to_string(), "jobs".to_string())
        );
        assert_eq!(
            parse_url("https://sqs.us-east-1.amazonaws.com/111122223333/jobs/").unwrap(),
            ("111122223333".to_string(), "jobs".to_string())
        );
        assert!(parse_url("https://h/jobs").is_err());
        assert!(parse_url("https://h/1/jobs").is_err());
        assert!(check_name("a-b_c").is_ok());
        assert!(check_name("a.fifo").is_ok());
        assert!(check_name(".fifo").is_err());
        assert!(check_name(&"x".repeat(81)).is_err());
    }
}
