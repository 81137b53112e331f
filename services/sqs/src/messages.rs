//! The message operations: send (one or a batch of ten), receive (with long polling),
//! delete and change visibility (one or a batch). A message's body and attributes are
//! sealed under the root key with its account and id as associated data, so a row
//! copied under another message id or into another account does not open. A receipt
//! handle carries the queue, the message and its latest receive's random token.

use std::collections::{BTreeMap, HashSet};

use base64::Engine;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use catalog::sqs::{HandleOutcome, NewMessage, Redrive};
use edge::wire_error;
use protocol::sqs::SqsError;
use protocol::{ApiError, ErrorCode};

use crate::api::{Context, bill, resolve_cached, stored_attributes};
use crate::attributes;
use crate::keys::{self, Sealer};
use crate::sqs_error;

/// Entries in a batch.
const BATCH_MAX: usize = 10;
/// Message attributes a message may carry.
const MESSAGE_ATTRIBUTES_MAX: usize = 10;
/// Messages one receive returns at most.
const RECEIVE_MAX: i64 = 10;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A message attribute as the API carries it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MessageAttribute {
    pub data_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// Base64 in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
}

/// What is sealed: the body and the attributes.
#[derive(Serialize, Deserialize)]
struct Sealed {
    body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<String, MessageAttribute>,
}

/// A sealed message opens only as its own message of its own account (it may move to
/// a dead-letter queue of that account).
fn aad(account: &str, message_id: &str) -> Vec<u8> {
    format!("sluice sqs message\0{account}\0{message_id}").into_bytes()
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// MD5OfMessageAttributes as SQS defines it: per attribute, in name order, the name,
/// the data type, a transport byte (1 string, 2 binary) and the value, each length
/// prefixed (4 bytes, big-endian).
pub fn md5_of_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    let mut buf = Vec::new();
    let put = |bytes: &[u8], buf: &mut Vec<u8>| {
        buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        buf.extend_from_slice(bytes);
    };
    for (name, a) in attributes {
        put(name.as_bytes(), &mut buf);
        put(a.data_type.as_bytes(), &mut buf);
        match (&a.string_value, &a.binary_value) {
            (Some(s), _) => {
                buf.push(1);
                put(s.as_bytes(), &mut buf);
            }
            (None, Some(b)) => {
                buf.push(2);
                put(&B64.decode(b).unwrap_or_default(), &mut buf);
            }
            (None, None) => {}
        }
    }
    Some(md5_hex(&buf))
}

fn invalid_contents() -> ApiError {
    sqs_error(
        SqsError::InvalidMessageContents,
        "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
    )
}

fn allowed_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Checks a message's attributes; answers their size as SQS counts it.
fn check_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Result<usize, ApiError> {
    let bad = |m: String| sqs_error(SqsError::InvalidParameterValue, m);
    if attributes.len() > MESSAGE_ATTRIBUTES_MAX {
        return Err(bad(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MESSAGE_ATTRIBUTES_MAX}].",
            attributes.len()
        )));
    }
    let mut size = 0;
    for (name, a) in attributes {
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !name.to_ascii_lowercase().starts_with("aws.")
            && !name.to_ascii_lowercase().starts_with("amazon.");
        if !name_ok {
            return Err(bad(format!("Message attribute name '{name}' is invalid.")));
        }
        let base = a.data_type.split('.').next().unwrap_or("");
        if !matches!(base, "String" | "Number" | "Binary") || a.data_type.len() > 256 {
            return Err(bad(format!(
                "The type of message attribute '{name}' is invalid: {}.",
                a.data_type
            )));
        }
        let value_len = match (base, &a.string_value, &a.binary_value) {
            ("Binary", None, Some(b)) => B64
                .decode(b)
                .map_err(|_| bad(format!("Message attribute '{name}' is not base64.")))?
                .len(),
            ("String" | "Number", Some(s), None) => {
                if !s.chars().all(allowed_char) {
                    return Err(invalid_contents());
                }
                if base == "Number" && s.parse::<f64>().is_err() {
                    return Err(bad(format!(
                        "Message attribute '{name}' of type Number is not a number."
                    )));
                }
                s.len()
            }
            _ => {
                return Err(bad(format!(
                    "Message attribute '{name}' must contain a non-empty value of type '{base}'."
                )));
            }
        };
        if value_len == 0 {
            return Err(bad(format!(
                "Message attribute '{name}' must contain a non-empty value."
            )));
        }
        size += name.len() + a.data_type.len() + value_len;
    }
    Ok(size)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendInput {
    queue_url: String,
    message_body: String,
    delay_seconds: Option<i64>,
    #[serde(default)]
    message_attributes: BTreeMap<String, MessageAttribute>,
    message_deduplication_id: Option<String>,
    message_group_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchEntry {
    id: String,
    message_body: String,
    delay_seconds: Option<i64>,
    #[serde(default)]
    message_attributes: BTreeMap<String, MessageAttribute>,
    message_deduplication_id: Option<String>,
    message_group_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendBatchInput {
    queue_url: String,
    entries: Vec<BatchEntry>,
}

/// A FIFO message's group and deduplication id (given, or the body's SHA-256 with
/// ContentBasedDeduplication); per-message delays are not a FIFO queue's.
fn fifo_fields(
    queue_attributes: &attributes::Attributes,
    body: &str,
    delay: Option<i64>,
    group_id: Option<String>,
    dedup_id: Option<String>,
) -> Result<catalog::sqs::FifoFields, ApiError> {
    let bad = |m: &str| sqs_error(SqsError::InvalidParameterValue, m.to_string());
    if delay.is_some_and(|d| d != 0) {
        return Err(bad(
            "Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.",
        ));
    }
    let token_ok =
        |t: &str| !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_graphic());
    let group_id = group_id.ok_or_else(|| {
        sqs_error(
            SqsError::MissingParameter,
            "The request must contain the parameter MessageGroupId.",
        )
    })?;
    if !token_ok(&group_id) {
        return Err(bad(
            "MessageGroupId is 1 to 128 printable ASCII characters.",
        ));
    }
    let dedup_id = match dedup_id {
        Some(d) if token_ok(&d) => d,
        Some(_) => {
            return Err(bad(
                "MessageDeduplicationId is 1 to 128 printable ASCII characters.",
            ));
        }
        None if attributes::value(queue_attributes, "ContentBasedDeduplication").as_deref()
            == Some("true") =>
        {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes())
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        }
        None => {
            return Err(bad(
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
            ));
        }
    };
    let scope_key = if attributes::value(queue_attributes, "DeduplicationScope").as_deref()
        == Some("messageGroup")
    {
        group_id.clone()
    } else {
        String::new()
    };
    Ok(catalog::sqs::FifoFields {
        group_id,
        dedup_id,
        scope_key,
    })
}

/// A FIFO message's sequence number as SQS shows it (a decimal string).
fn sequence_number(seq: i64) -> String {
    format!("{seq:020}")
}

/// A message checked and sealed, ready to store, with what the answer says of it.
struct Prepared {
    row: NewMessage,
    md5_of_attributes: Option<String>,
    /// The body's and attributes' bytes, as SQS counts a message's size.
    size: usize,
}

/// The queue a message is prepared for: its attributes, and what seals its messages.
struct Destination<'a> {
    attributes: &'a attributes::Attributes,
    sealer: Sealer,
}

fn prepare(
    ctx: &Context<'_>,
    to: &Destination<'_>,
    body: String,
    delay: Option<i64>,
    message_attributes: BTreeMap<String, MessageAttribute>,
    group_id: Option<String>,
    dedup_id: Option<String>,
) -> Result<Prepared, ApiError> {
    let fifo = if attributes::is_fifo(to.attributes) {
        Some(fifo_fields(
            to.attributes,
            &body,
            delay,
            group_id,
            dedup_id,
        )?)
    } else {
        // A standard queue takes a MessageGroupId (fair queues) and keeps no order by
        // it; deduplication is FIFO's.
        if dedup_id.is_some() {
            return Err(sqs_error(
                SqsError::InvalidParameterValue,
                "The request include parameter MessageDeduplicationId that is not valid for this queue type.",
            ));
        }
        None
    };
    if body.is_empty() {
        return Err(sqs_error(
            SqsError::MissingParameter,
            "The request must contain the parameter MessageBody.",
        ));
    }
    if !body.chars().all(allowed_char) {
        return Err(invalid_contents());
    }
    let size = body.len() + check_attributes(&message_attributes)?;
    let max = attributes::number(to.attributes, "MaximumMessageSize") as usize;
    if size > max {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
            ),
        ));
    }
    let delay = match delay {
        Some(d) => {
            in_range("DelaySeconds", d, 0, attributes::DELAY_MAX_S)?;
            d
        }
        None => attributes::number(to.attributes, "DelaySeconds"),
    };
    let now = ctx.state.clock.now_ms();
    let message_id = uuid::Uuid::new_v4().to_string();
    let md5_of_body = md5_hex(body.as_bytes());
    let md5_of_attributes = md5_of_attributes(&message_attributes);
    let sealed = serde_json::to_vec(&Sealed {
        body,
        attributes: message_attributes,
    })
    .expect("serializable");
    let retention_ms = attributes::number(to.attributes, "MessageRetentionPeriod") * 1000;
    let (sealed, data_key_id) = to
        .sealer
        .seal(&sealed, &aad(&ctx.caller.account_id, &message_id));
    Ok(Prepared {
        row: NewMessage {
            fifo,
            sealed,
            data_key_id,
            message_id,
            sent_at_ms: now,
            visible_at_ms: now + delay * 1000,
            expires_at_ms: now + retention_ms,
            md5_of_body,
            md5_of_attributes: md5_of_attributes.clone(),
            sender_id: sender_id(ctx),
        },
        md5_of_attributes,
        size,
    })
}

/// A received message's body and attributes.
async fn open(
    ctx: &Context<'_>,
    queue: &catalog::sqs::Queue,
    stored: &attributes::Attributes,
    m: &catalog::sqs::Received,
) -> Result<Sealed, ApiError> {
    let aad = aad(&queue.account_id, &m.message_id);
    let opened = match m.data_key_id {
        None => ctx.state.root_key.open(&m.sealed, &aad).map_err(|_| ()),
        Some(id) => {
            let key = keys::opener(ctx, queue, stored, id).await?;
            envelope::open(&key, &aad, &m.sealed)
                .map(zeroize::Zeroizing::new)
                .map_err(|_| ())
        }
    };
    let internal = || {
        tracing::error!(queue = queue.id, message = %m.message_id, "a stored message does not open");
        ApiError::new(ErrorCode::InternalFailure, "Internal service error.")
    };
    let opened = opened.map_err(|()| internal())?;
    serde_json::from_slice(&opened).map_err(|_| internal())
}

/// SenderId: the caller's access key's principal, as SQS shows it (an IAM user's id,
/// or a role's `ROLEID:session`); here the principal's ARN's last part.
fn sender_id(ctx: &Context<'_>) -> String {
    ctx.caller
        .principal_arn
        .rsplit([':', '/'])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn metric_labels(ctx: &Context<'_>, queue: &str) -> [(&'static str, String); 1] {
    [("queue", format!("{}/{queue}", ctx.caller.account_id))]
}

pub async fn send_message(ctx: &Context<'_>, input: SendInput) -> Result<Value, ApiError> {
    let queue = resolve_cached(ctx, &input.queue_url, "sqs:SendMessage").await?;
    let stored = stored_attributes(&queue);
    let to = Destination {
        sealer: keys::sealer(ctx, &queue, &stored, 1).await?,
        attributes: &stored,
    };
    let p = prepare(
        ctx,
        &to,
        input.message_body,
        input.delay_seconds,
        input.message_attributes,
        input.message_group_id,
        input.message_deduplication_id,
    )?;
    let sent = ctx
        .state
        .catalog
        .send_sqs_messages(
            queue.id,
            std::slice::from_ref(&p.row),
            billed(ctx, &queue.name),
            catalog::sqs::billed_requests(p.size),
            ctx.state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)?;
    ctx.state.waiters.wake(queue.id);
    metrics::counter!(
        "sluice_sqs_messages_sent_total",
        &metric_labels(ctx, &queue.name)
    )
    .increment(1);
    let sent = &sent[0];
    let mut out = json!({"MessageId": sent.message_id, "MD5OfMessageBody": p.row.md5_of_body});
    if let Some(m) = p.md5_of_attributes {
        out["MD5OfMessageAttributes"] = m.into();
    }
    if let Some(seq) = sent.seq {
        out["SequenceNumber"] = sequence_number(seq).into();
    }
    Ok(out)
}

/// A batch's entries: 1 to 10, ids distinct and of letters, digits, `-` and `_`.
fn check_batch<'a>(ids: impl Iterator<Item = &'a str>) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for id in ids {
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(sqs_error(
                SqsError::InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(sqs_error(
                SqsError::BatchEntryIdsNotDistinct,
                format!("Id {id} repeated."),
            ));
        }
    }
    match seen.len() {
        0 => Err(sqs_error(
            SqsError::EmptyBatchRequest,
            "There should be at least one SendMessageBatchRequestEntry in the request.",
        )),
        n if n > BATCH_MAX => Err(sqs_error(
            SqsError::TooManyEntriesInBatchRequest,
            format!("Maximum number of entries per request are {BATCH_MAX}. You have sent {n}."),
        )),
        _ => Ok(()),
    }
}

fn failure(id: &str, e: &ApiError) -> Value {
    let code = match e.code {
        ErrorCode::Sqs(k) => k.query_code(),
        other => other.type_name(),
    };
    json!({"Id": id, "SenderFault": e.code.status() < 500, "Code": code, "Message": e.message})
}

pub async fn send_message_batch(
    ctx: &Context<'_>,
    input: SendBatchInput,
) -> Result<Value, ApiError> {
    let queue = resolve_cached(ctx, &input.queue_url, "sqs:SendMessage").await?;
    check_batch(input.entries.iter().map(|e| e.id.as_str()))?;
    let stored = stored_attributes(&queue);
    let max = attributes::number(&stored, "MaximumMessageSize") as usize;
    let total: usize = input.entries.iter().map(|e| e.message_body.len()).sum();
    if total > max {
        return Err(sqs_error(
            SqsError::BatchRequestTooLong,
            format!(
                "Batch requests cannot be longer than {max} bytes. You have sent {total} bytes."
            ),
        ));
    }
    let to = Destination {
        sealer: keys::sealer(ctx, &queue, &stored, input.entries.len() as u64).await?,
        attributes: &stored,
    };
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    let mut payload = 0;
    for e in input.entries {
        match prepare(
            ctx,
            &to,
            e.message_body,
            e.delay_seconds,
            e.message_attributes,
            e.message_group_id,
            e.message_deduplication_id,
        ) {
            Ok(p) => {
                let mut answer = json!({
                    "Id": e.id,
                    "MessageId": p.row.message_id,
                    "MD5OfMessageBody": p.row.md5_of_body,
                });
                if let Some(m) = &p.md5_of_attributes {
                    answer["MD5OfMessageAttributes"] = m.clone().into();
                }
                ok.push(answer);
                payload += p.size;
                rows.push(p.row);
            }
            Err(err) => failed.push(failure(&e.id, &err)),
        }
    }
    if !rows.is_empty() {
        let sent = ctx
            .state
            .catalog
            .send_sqs_messages(
                queue.id,
                &rows,
                billed(ctx, &queue.name),
                catalog::sqs::billed_requests(payload),
                ctx.state.clock.now_ms(),
            )
            .await
            .map_err(wire_error)?;
        // What the catalog stored answers each entry: a duplicate's first message, and
        // in a FIFO queue the sequence number.
        for (answer, sent) in ok.iter_mut().zip(&sent) {
            answer["MessageId"] = sent.message_id.clone().into();
            if let Some(seq) = sent.seq {
                answer["SequenceNumber"] = sequence_number(seq).into();
            }
        }
        ctx.state.waiters.wake(queue.id);
        metrics::counter!(
            "sluice_sqs_messages_sent_total",
            &metric_labels(ctx, &queue.name)
        )
        .increment(rows.len() as u64);
    }
    if rows.is_empty() {
        bill(ctx, &queue.name, 1).await;
    }
    Ok(json!({"Successful": ok, "Failed": failed}))
}

fn billed<'a>(ctx: &'a Context<'_>, queue_name: &'a str) -> catalog::sqs::Billed<'a> {
    catalog::sqs::Billed {
        account_id: &ctx.caller.account_id,
        queue_name,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveInput {
    queue_url: String,
    #[serde(default)]
    attribute_names: Vec<String>,
    #[serde(default)]
    message_system_attribute_names: Vec<String>,
    #[serde(default)]
    message_attribute_names: Vec<String>,
    max_number_of_messages: Option<i64>,
    visibility_timeout: Option<i64>,
    wait_time_seconds: Option<i64>,
    receive_request_attempt_id: Option<String>,
}

/// A receipt handle: the queue, the message and the receive's token.
fn receipt_handle(queue_id: i64, message_id: &str, token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{queue_id}:{message_id}:{token}").as_bytes())
}

/// A receipt handle's message and token, if it is one of this queue's.
fn parse_handle(queue_id: i64, handle: &str) -> Result<(String, String), ApiError> {
    let invalid = || {
        sqs_error(
            SqsError::ReceiptHandleIsInvalid,
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(handle)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let mut parts = raw.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(q), Some(m), Some(t))
            if q == queue_id.to_string() && !m.is_empty() && !t.is_empty() =>
        {
            Ok((m.to_string(), t.to_string()))
        }
        _ => Err(invalid()),
    }
}

/// Whether a message attribute name is asked for (`All`, `.*`, a name, or `prefix.*`).
fn wanted(names: &[String], name: &str) -> bool {
    names.iter().any(|n| {
        n == "All"
            || n == ".*"
            || n == name
            || n.strip_suffix(".*")
                .is_some_and(|p| name.starts_with(p) && name[p.len()..].starts_with('.'))
    })
}

/// A request parameter within its bounds, or SQS's InvalidParameterValue naming them.
fn in_range(name: &str, value: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(sqs_error(
        SqsError::InvalidParameterValue,
        format!(
            "Value {value} for parameter {name} is invalid. Reason: Must be >= {min} and <= {max}."
        ),
    ))
}

/// A ReceiveRequestAttemptId: 1 to 128 of letters, digits and ASCII punctuation.
fn check_attempt_id(id: &str) -> Result<&str, ApiError> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(sqs_error(
            SqsError::InvalidParameterValue,
            "Value for parameter ReceiveRequestAttemptId is invalid. Reason: it is 1 to 128 letters, digits and punctuation marks.",
        ));
    }
    Ok(id)
}

pub async fn receive_message(ctx: &Context<'_>, input: ReceiveInput) -> Result<Value, ApiError> {
    let queue = resolve_cached(ctx, &input.queue_url, "sqs:ReceiveMessage").await?;
    let stored = stored_attributes(&queue);
    let max = input.max_number_of_messages.unwrap_or(1);
    in_range("MaxNumberOfMessages", max, 1, RECEIVE_MAX)?;
    let wait_s = input
        .wait_time_seconds
        .unwrap_or_else(|| attributes::number(&stored, "ReceiveMessageWaitTimeSeconds"));
    in_range("WaitTimeSeconds", wait_s, 0, attributes::WAIT_MAX_S)?;
    let visibility_s = input
        .visibility_timeout
        .unwrap_or_else(|| attributes::number(&stored, "VisibilityTimeout"));
    in_range(
        "VisibilityTimeout",
        visibility_s,
        0,
        attributes::VISIBILITY_MAX_S,
    )?;
    let redrive = match attributes::redrive(&stored) {
        Some((arn, max_receives)) => crate::api::queue_by_arn_cached(ctx, &arn)
            .await?
            .map(|dlq| Redrive {
                dead_letter_queue_id: dlq.id,
                max_receives,
            }),
        None => None,
    };
    let fifo = attributes::is_fifo(&stored);
    // A standard queue ignores it, as SQS does.
    let attempt = match input.receive_request_attempt_id.as_deref() {
        Some(id) if fifo => Some(check_attempt_id(id)?),
        _ => None,
    };
    let svc = ctx.state;
    let payload_of: catalog::sqs::PayloadOf =
        |got: &[catalog::sqs::Received]| got.iter().map(keys::sealed_payload_len).sum();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait_s as u64);
    let notifier = (wait_s > 0).then(|| svc.waiters.notifier(queue.id));
    let received = loop {
        // Listen before looking, so a send between the look and the wait still wakes.
        let woken = notifier.as_ref().map(|n| n.notified());
        tokio::pin!(woken);
        if let Some(w) = woken.as_mut().as_pin_mut() {
            w.enable();
        }
        let mut token = || {
            let mut b = [0u8; 16];
            aws_lc_rs::rand::fill(&mut b).expect("system randomness");
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        };
        let got = svc
            .catalog
            .receive_sqs_messages(
                queue.id,
                catalog::sqs::ReceiveOptions {
                    now_ms: svc.clock.now_ms(),
                    max,
                    visibility_ms: visibility_s * 1000,
                    redrive,
                    fifo,
                    attempt,
                    billed: Some((billed(ctx, &queue.name), payload_of)),
                },
                &mut token,
            )
            .await
            .map_err(wire_error)?;
        let now = tokio::time::Instant::now();
        if !got.is_empty() || now >= deadline || woken.is_none() {
            break got;
        }
        let recheck = (now + crate::waiters::LONG_POLL_RECHECK).min(deadline);
        if let Some(w) = woken.as_mut().as_pin_mut() {
            let _ = tokio::time::timeout_at(recheck, w).await;
        }
    };
    drop(notifier);
    if wait_s > 0 {
        svc.waiters.release(queue.id);
    }
    let system: Vec<&String> = input
        .attribute_names
        .iter()
        .chain(input.message_system_attribute_names.iter())
        .collect();
    let all_system = system.iter().any(|n| *n == "All");
    let mut messages = Vec::with_capacity(received.len());
    let mut opened = Vec::with_capacity(received.len());
    for m in &received {
        match open(ctx, &queue, &stored, m).await {
            Ok(o) => opened.push(o),
            Err(e) => {
                // A message the caller may not open (its key disabled, kms:Decrypt
                // denied) fails the receive, and nothing was handed out: every
                // message taken is visible again at once.
                let now = svc.clock.now_ms();
                for m in &received {
                    let _ = svc
                        .catalog
                        .change_sqs_visibility(queue.id, &m.message_id, &m.receipt_token, now, now)
                        .await;
                }
                return Err(e);
            }
        }
    }
    for (m, sealed) in received.iter().zip(opened) {
        let mut msg = json!({
            "MessageId": m.message_id,
            "ReceiptHandle": receipt_handle(queue.id, &m.message_id, &m.receipt_token),
            "MD5OfBody": m.md5_of_body,
            "Body": sealed.body,
        });
        let mut sys = serde_json::Map::new();
        for (name, value) in [
            ("SenderId", m.sender_id.clone()),
            ("SentTimestamp", m.sent_at_ms.to_string()),
            ("ApproximateReceiveCount", m.receive_count.to_string()),
            (
                "ApproximateFirstReceiveTimestamp",
                m.first_received_at_ms.to_string(),
            ),
        ]
        .into_iter()
        .chain(m.group_id.clone().map(|g| ("MessageGroupId", g)))
        .chain(m.dedup_id.clone().map(|d| ("MessageDeduplicationId", d)))
        .chain(fifo.then(|| ("SequenceNumber", sequence_number(m.seq))))
        {
            if all_system || system.iter().any(|n| *n == name) {
                sys.insert(name.into(), value.into());
            }
        }
        if !sys.is_empty() {
            msg["Attributes"] = Value::Object(sys);
        }
        let chosen: BTreeMap<String, MessageAttribute> = sealed
            .attributes
            .into_iter()
            .filter(|(name, _)| wanted(&input.message_attribute_names, name))
            .collect();
        if let Some(md5) = md5_of_attributes(&chosen) {
            msg["MD5OfMessageAttributes"] = md5.into();
            msg["MessageAttributes"] = serde_json::to_value(&chosen).expect("serializable");
        }
        messages.push(msg);
    }
    metrics::counter!(
        "sluice_sqs_messages_received_total",
        &metric_labels(ctx, &queue.name)
    )
    .increment(messages.len() as u64);
    if received.is_empty() {
        // A receive that handed messages out was billed in its transaction.
        bill(ctx, &queue.name, 1).await;
    }
    Ok(if messages.is_empty() {
        json!({})
    } else {
        json!({"Messages": messages})
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteInput {
    queue_url: String,
    receipt_handle: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandleEntry {
    id: String,
    receipt_handle: String,
    visibility_timeout: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandleBatchInput {
    queue_url: String,
    entries: Vec<HandleEntry>,
}

/// Deletes by handle, billed in the same transaction: a stale handle (the message was
/// received again since) succeeds and deletes nothing, as SQS documents.
async fn delete_handles(
    ctx: &Context<'_>,
    queue_id: i64,
    queue_name: &str,
    handles: &[(String, String)],
) -> Result<(), ApiError> {
    ctx.state
        .catalog
        .delete_sqs_messages(
            queue_id,
            handles,
            billed(ctx, queue_name),
            ctx.state.clock.now_ms(),
        )
        .await
        .map_err(wire_error)
}

pub async fn delete_message(ctx: &Context<'_>, input: DeleteInput) -> Result<Value, ApiError> {
    let queue = resolve_cached(ctx, &input.queue_url, "sqs:DeleteMessage").await?;
    let handle = parse_handle(queue.id, &input.receipt_handle)?;
    delete_handles(ctx, queue.id, &queue.name, &[handle]).await?;
    Ok(json!({}))
}

pub async fn delete_message_batch(
    ctx: &Context<'_>,
    input: HandleBatchInput,
) -> Result<Value, ApiError> {
    let queue = resolve_cached(ctx, &input.queue_url, "sqs:DeleteMessage").await?;
    check_batch(input.entries.iter().map(|e| e.id.as_str()))?;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let mut handles = Vec::new();
    for e in &input.entries {
        match parse_handle(queue.id, &e.receipt_handle) {
            Ok(h) => {
                handles.push(h);
                ok.push(json!({"Id": e.id}));
            }
            Err(err) => failed.push(failure(&e.id, &err)),
        }
    }
    // One transaction for the batch (and its bill): ten deletes, one durable write.
    delete_handles(ctx, queue.id, &queue.name, &handles).await?;
    Ok(json!({"Successful": ok, "Failed": failed}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VisibilityInput {
    queue_url: String,
    receipt_handle: String,
    visibility_timeout: i64,
}

async fn change_one(
    ctx: &Context<'_>,
    queue_id: i64,
    handle: &str,
    timeout_s: Option<i64>,
) -> Result<(), ApiError> {
    let timeout_s = timeout_s.ok_or_else(|| {
        sqs_error(
            SqsError::MissingParameter,
            "The request must contain the parameter VisibilityTimeout.",
        )
    })?;
    in_range(
        "VisibilityTimeout",
        timeout_s,
        0,
        attributes::VISIBILITY_MAX_S,
    )?;
    let (message_id, token) = parse_handle(queue_id, handle)?;
    let now = ctx.state.clock.now_ms();
    match ctx
        .state
        .catalog
        .change_sqs_visibility(queue_id, &message_id, &token, now, now + timeout_s * 1000)
        .await
        .map_err(wire_error)?
    {
        HandleOutcome::Done => {
            if timeout_s == 0 {
                ctx.state.waiters.wake(queue_id);
            }
            Ok(())
        }
        HandleOutcome::NotInFlight | HandleOutcome::Gone => Err(sqs_error(
            SqsError::MessageNotInflight,
            "Message does not exist or is not available for visibility timeout change.",
        )),
        HandleOutcome::Stale => Err(sqs_error(
            SqsError::ReceiptHandleIsInvalid,
            format!("The receipt handle \"{handle}\" has expired: the message was received again."),
        )),
    }
}

pub async fn change_visibility(
    ctx: &Context<'_>,
    input: VisibilityInput,
) -> Result<Value, ApiError> {
    let queue = resolve_cached(ctx, &input.queue_url, "sqs:ChangeMessageVisibility").await?;
    change_one(
        ctx,
        queue.id,
        &input.receipt_handle,
        Some(input.visibility_timeout),
    )
    .await?;
    Ok(json!({}))
}

pub async fn change_visibility_batch(
    ctx: &Context<'_>,
    input: HandleBatchInput,
) -> Result<Value, ApiError> {
    let queue = resolve_cached(ctx, &input.queue_url, "sqs:ChangeMessageVisibility").await?;
    check_batch(input.entries.iter().map(|e| e.id.as_str()))?;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for e in &input.entries {
        match change_one(ctx, queue.id, &e.receipt_handle, e.visibility_timeout).await {
            Ok(()) => ok.push(json!({"Id": e.id})),
            Err(err) => failed.push(failure(&e.id, &err)),
        }
    }
    bill(ctx, &queue.name, 1).await;
    Ok(json!({"Successful": ok, "Failed": failed}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attribute_digest_is_sqss() {
        // One string attribute: the digest SQS documents for this encoding.
        let attrs = BTreeMap::from([(
            "k".to_string(),
            MessageAttribute {
                data_type: "String".into(),
                string_value: Some("v".into()),
                binary_value: None,
            },
        )]);
        let mut expected = Vec::new();
        for part in [&b"k"[..], b"String"] {
            expected.extend_from_slice(&(part.len() as u32).to_be_bytes());
            expected.extend_from_slice(part);
        }
        expected.push(1);
        expected.extend_from_slice(&1u32.to_be_bytes());
        expected.push(b'v');
        assert_eq!(md5_of_attributes(&attrs).unwrap(), md5_hex(&expected));
        assert_eq!(md5_of_attributes(&BTreeMap::new()), None);
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn handles_belong_to_their_queue() {
        let h = receipt_handle(7, "m-1", "abc");
        assert_eq!(
            parse_handle(7, &h).unwrap(),
            ("m-1".to_string(), "abc".to_string())
        );
        assert!(parse_handle(8, &h).is_err());
        assert!(parse_handle(7, "garbage!").is_err());
    }

    #[test]
    fn batches_and_names_are_checked() {
        assert!(check_batch(["a", "b"].into_iter()).is_ok());
        assert!(check_batch(["a", "a"].into_iter()).is_err());
        assert!(check_batch(std::iter::empty()).is_err());
        let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        assert!(check_batch(eleven.iter().map(String::as_str)).is_err());
        assert!(wanted(&["All".into()], "x"));
        assert!(wanted(&["bar.*".into()], "bar.baz"));
        assert!(!wanted(&["bar.*".into()], "barbaz"));
        assert!(!wanted(&[], "x"));
    }
}
