//! Publish and PublishBatch, and the fan-out: each message goes to every subscription
//! of its topic whose filter policy it matches, as SNS's JSON envelope or raw, before
//! Publish answers. Subscriptions are read from the catalog a page at a time, so a
//! topic's fan-out never holds all its subscriptions at once.

use std::collections::{BTreeMap, HashSet};

use catalog::sns::{Subscription, Topic};
use edge::{Caller, wire_error};
use protocol::ApiError;
use protocol::sns::SnsError;
use serde_json::{Map, Value, json};

use crate::form::{Form, MessageAttribute};
use crate::topics::topic_named;
use crate::{SnsService, element, invalid, sns_error};

/// A message with its attributes is at most 256 KiB.
const MESSAGE_BYTES_MAX: usize = 262_144;
/// A message carries at most 10 attributes.
const ATTRIBUTES_MAX: usize = 10;
/// A subject is at most 100 characters.
const SUBJECT_CHARS_MAX: usize = 100;
/// A batch has at most 10 entries.
const BATCH_MAX: usize = 10;
/// Subscriptions read from the catalog at a time while fanning out.
const FANOUT_PAGE: i64 = 1_000;
/// Deliveries of one message in flight at a time.
const DELIVERIES_AT_ONCE: usize = 32;

/// A publish bills one request per 64 KiB of message and attributes.
const BILLED_CHUNK: usize = 64 * 1024;

/// One message to publish, checked.
struct Message {
    body: String,
    subject: Option<String>,
    /// For MessageStructure=json: the text per protocol (`default` at least).
    per_protocol: Option<Map<String, Value>>,
    attributes: BTreeMap<String, MessageAttribute>,
    group_id: Option<String>,
    dedup_id: Option<String>,
    /// The message's and its attributes' bytes.
    size: usize,
}

fn check_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Result<usize, ApiError> {
    if attributes.len() > ATTRIBUTES_MAX {
        return Err(invalid(format!(
            "MessageAttributes Reason: a message has at most {ATTRIBUTES_MAX} attributes"
        )));
    }
    let mut size = 0;
    for (name, a) in attributes {
        if name.is_empty()
            || name.len() > 256
            || name.starts_with("AWS.")
            || name.starts_with("Amazon.")
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(invalid(format!(
                "The message attribute name '{name}' is not valid."
            )));
        }
        let base = a.data_type.split('.').next().unwrap_or_default();
        let ok = match base {
            "String" | "Number" => a.string_value.is_some(),
            "Binary" => a.binary_value.is_some(),
            _ => false,
        };
        if !ok {
            return Err(invalid(format!(
                "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
            )));
        }
        if base == "Number"
            && a.string_value
                .as_deref()
                .is_some_and(|v| v.trim().parse::<f64>().is_err())
        {
            return Err(invalid(format!(
                "Could not cast message attribute '{name}' value to number."
            )));
        }
        size += name.len()
            + a.data_type.len()
            + a.string_value.as_ref().map_or(0, String::len)
            + a.binary_value.as_ref().map_or(0, Vec::len);
    }
    Ok(size)
}

/// Reads the message members under `prefix` ("" for Publish, a batch entry's otherwise).
fn read_message(form: &Form, prefix: &str, topic: &Topic) -> Result<Message, ApiError> {
    let get = |name: &str| form.get(&format!("{prefix}{name}"));
    let body = get("Message")
        .ok_or_else(|| invalid("Message Reason: cannot be empty"))?
        .to_string();
    if body.is_empty() {
        return Err(invalid("Message Reason: cannot be empty"));
    }
    let subject = get("Subject").map(str::to_string);
    if let Some(s) = &subject
        && (s.is_empty()
            || s.chars().count() > SUBJECT_CHARS_MAX
            || !s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()))
    {
        return Err(invalid(
            "Subject Reason: 1 to 100 printable ASCII characters, no line breaks",
        ));
    }
    let per_protocol = match get("MessageStructure") {
        None => None,
        Some("json") => {
            let parsed: Map<String, Value> = serde_json::from_str(&body)
                .map_err(|_| invalid("Message Structure - JSON message body failed to parse"))?;
            if !parsed.get("default").is_some_and(Value::is_string) {
                return Err(invalid(
                    "Message Structure - No default entry in JSON message body",
                ));
            }
            Some(parsed)
        }
        Some(_) => return Err(invalid("MessageStructure Reason: must be json")),
    };
    let attributes = form.message_attributes(&format!("{prefix}MessageAttributes"))?;
    let size = body.len() + check_attributes(&attributes)?;
    if size > MESSAGE_BYTES_MAX {
        return Err(invalid(format!(
            "Message too long: a message and its attributes are at most {MESSAGE_BYTES_MAX} bytes"
        )));
    }
    let fifo = topic.name.ends_with(".fifo");
    let group_id = get("MessageGroupId").map(str::to_string);
    let mut dedup_id = get("MessageDeduplicationId").map(str::to_string);
    if fifo {
        if group_id.is_none() {
            return Err(invalid(
                "The MessageGroupId parameter is required for FIFO topics",
            ));
        }
        let content_based = serde_json::from_str::<BTreeMap<String, String>>(&topic.attributes)
            .unwrap_or_default()
            .get("ContentBasedDeduplication")
            .is_some_and(|v| v == "true");
        if dedup_id.is_none() {
            if !content_based {
                return Err(invalid(
                    "The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ));
            }
            dedup_id = Some(sha256_hex(body.as_bytes()));
        }
    } else if dedup_id.is_some() {
        return Err(invalid(
            "MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type",
        ));
    }
    Ok(Message {
        body,
        subject,
        per_protocol,
        attributes,
        group_id,
        dedup_id,
        size,
    })
}

fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A subscription's filter policy (scope MessageAttributes or MessageBody): each key
/// lists the values it accepts; a message matches when every key matches.
#[derive(Debug, Clone)]
pub(crate) struct FilterPolicy(Map<String, Value>);

/// Keys and values a filter policy may hold at most (AWS: 150 combinations).
const FILTER_VALUES_MAX: usize = 150;

impl FilterPolicy {
    pub(crate) fn parse(text: &str) -> Result<FilterPolicy, ApiError> {
        let bad = |why: &str| invalid(format!("FilterPolicy: {why}"));
        let policy: Map<String, Value> =
            serde_json::from_str(text).map_err(|_| bad("failed to parse JSON"))?;
        let mut values = 0;
        fn count(v: &Value, values: &mut usize) -> Result<(), &'static str> {
            match v {
                Value::Array(items) => {
                    for item in items {
                        *values += 1;
                        match item {
                            Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {}
                            Value::Object(op) if op.len() == 1 => {
                                let (name, _) = op.iter().next().expect("one");
                                if ![
                                    "prefix",
                                    "suffix",
                                    "anything-but",
                                    "numeric",
                                    "exists",
                                    "equals-ignore-case",
                                ]
                                .contains(&name.as_str())
                                {
                                    return Err("Unrecognized match type");
                                }
                            }
                            _ => {
                                return Err(
                                    "Match value must be String, number, true, false, or null",
                                );
                            }
                        }
                    }
                    Ok(())
                }
                Value::Object(nested) => nested.values().try_for_each(|v| count(v, values)),
                _ => Err("Filter policy values must be arrays"),
            }
        }
        for v in policy.values() {
            count(v, &mut values).map_err(bad)?;
        }
        if values > FILTER_VALUES_MAX {
            return Err(bad("Filter policy is too complex"));
        }
        Ok(FilterPolicy(policy))
    }

    /// Whether a message's attributes (scope MessageAttributes) match.
    fn matches_attributes(&self, attributes: &BTreeMap<String, MessageAttribute>) -> bool {
        self.0.iter().all(|(key, accepted)| {
            let value = attributes.get(key).and_then(|a| {
                let v = a.string_value.as_deref()?;
                Some(if a.data_type.starts_with("Number") {
                    v.trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                        .unwrap_or(Value::Null)
                } else if a.data_type.starts_with("String.Array") {
                    serde_json::from_str(v).unwrap_or(Value::Null)
                } else {
                    Value::String(v.to_string())
                })
            });
            accepts(accepted, value.as_ref())
        })
    }

    /// Whether a JSON message body (scope MessageBody) matches.
    fn matches_body(&self, body: &Value) -> bool {
        fn walk(policy: &Map<String, Value>, body: Option<&Value>) -> bool {
            policy.iter().all(|(key, accepted)| {
                let value = body.and_then(|b| b.get(key));
                match accepted {
                    Value::Object(nested) => walk(nested, value),
                    _ => accepts(accepted, value),
                }
            })
        }
        walk(&self.0, Some(body))
    }
}

/// Whether one key's conditions accept `value` (an array value matches when any of
/// its items does).
fn accepts(conditions: &Value, value: Option<&Value>) -> bool {
    let Some(conditions) = conditions.as_array() else {
        return false;
    };
    if let Some(Value::Array(items)) = value {
        return items.iter().any(|item| accepts_one(conditions, Some(item)));
    }
    accepts_one(conditions, value)
}

fn accepts_one(conditions: &[Value], value: Option<&Value>) -> bool {
    conditions.iter().any(|c| match (c, value) {
        (Value::Object(op), _) => {
            let (name, arg) = op.iter().next().expect("checked: one operator");
            match name.as_str() {
                "exists" => arg.as_bool() == Some(value.is_some()),
                "prefix" => matches!((arg, value), (Value::String(p), Some(Value::String(v))) if v.starts_with(p.as_str())),
                "suffix" => matches!((arg, value), (Value::String(p), Some(Value::String(v))) if v.ends_with(p.as_str())),
                "equals-ignore-case" => matches!((arg, value), (Value::String(p), Some(Value::String(v))) if v.eq_ignore_ascii_case(p)),
                "anything-but" => value.is_some_and(|v| match arg {
                    Value::Array(not) => !not.iter().any(|n| same(n, v)),
                    Value::Object(inner) => match inner.get("prefix") {
                        Some(Value::String(p)) => !v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
                        _ => true,
                    },
                    other => !same(other, v),
                }),
                "numeric" => value.and_then(Value::as_f64).is_some_and(|n| numeric(arg, n)),
                _ => false,
            }
        }
        (expected, Some(v)) => same(expected, v),
        (_, None) => false,
    })
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// `["<", 10, ">=", 0]`: every comparison holds.
fn numeric(arg: &Value, n: f64) -> bool {
    let Some(items) = arg.as_array() else {
        return false;
    };
    items.chunks(2).all(|pair| match pair {
        [Value::String(op), bound] => bound.as_f64().is_some_and(|b| match op.as_str() {
            "=" => n == b,
            "<" => n < b,
            "<=" => n <= b,
            ">" => n > b,
            ">=" => n >= b,
            _ => false,
        }),
        _ => false,
    })
}

/// Whether a subscription takes a message, by its filter policy.
fn wants(subscription: &BTreeMap<String, String>, message: &Message) -> bool {
    let Some(Ok(policy)) = subscription
        .get("FilterPolicy")
        .filter(|p| !p.is_empty())
        .map(|p| FilterPolicy::parse(p))
    else {
        return true;
    };
    match subscription.get("FilterPolicyScope").map(String::as_str) {
        Some("MessageBody") => serde_json::from_str::<Value>(&message.body)
            .is_ok_and(|body| policy.matches_body(&body)),
        _ => policy.matches_attributes(&message.attributes),
    }
}

/// The envelope's MessageAttributes: `{"name": {"Type": ..., "Value": ...}}`.
fn envelope_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Value {
    use base64::Engine;
    Value::Object(
        attributes
            .iter()
            .map(|(k, a)| {
                let value = match &a.binary_value {
                    Some(b) => base64::engine::general_purpose::STANDARD.encode(b),
                    None => a.string_value.clone().unwrap_or_default(),
                };
                (k.clone(), json!({"Type": a.data_type, "Value": value}))
            })
            .collect(),
    )
}

/// The message attributes as SQS's JSON takes them (raw delivery carries them over).
fn sqs_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Value {
    use base64::Engine;
    Value::Object(
        attributes
            .iter()
            .map(|(k, a)| {
                let mut v = json!({"DataType": a.data_type});
                if let Some(s) = &a.string_value {
                    v["StringValue"] = s.clone().into();
                }
                if let Some(b) = &a.binary_value {
                    v["BinaryValue"] = base64::engine::general_purpose::STANDARD.encode(b).into();
                }
                (k.clone(), v)
            })
            .collect(),
    )
}

/// What an envelope names besides its message.
struct Signed<'a> {
    message_id: &'a str,
    timestamp: &'a str,
    topic_arn: &'a str,
    cert_url: String,
}

impl Signed<'_> {
    /// SNS's JSON envelope of `text`, signed.
    fn envelope(
        &self,
        signing: &crate::signing::Signing,
        message: &Message,
        text: &str,
    ) -> Result<String, ApiError> {
        let signature = signing.sign(&crate::signing::notification_string(
            text,
            self.message_id,
            message.subject.as_deref(),
            self.timestamp,
            self.topic_arn,
        ))?;
        let mut envelope = json!({
            "Type": "Notification",
            "MessageId": self.message_id,
            "TopicArn": self.topic_arn,
            "Message": text,
            "Timestamp": self.timestamp,
            "SignatureVersion": crate::signing::SIGNATURE_VERSION,
            "Signature": signature,
            "SigningCertURL": self.cert_url,
        });
        if let Some(s) = &message.subject {
            envelope["Subject"] = s.clone().into();
        }
        if !message.attributes.is_empty() {
            envelope["MessageAttributes"] = envelope_attributes(&message.attributes);
        }
        Ok(envelope.to_string())
    }
}

/// The dead-letter queue a RedrivePolicy names (`deadLetterTargetArn`).
pub(crate) fn dead_letter_queue(policy: &str) -> Option<String> {
    serde_json::from_str::<Value>(policy).ok()?["deadLetterTargetArn"]
        .as_str()
        .map(str::to_string)
}

/// What a delivery to one queue carries.
#[derive(Clone)]
pub struct Delivery<'a> {
    pub body: &'a str,
    pub attributes: Value,
    pub group_id: Option<&'a str>,
    pub dedup_id: Option<&'a str>,
}

/// Delivers one message, under a new message id, to every subscription of its topic
/// that wants it; answers the id and how many took it. A subscription whose queue
/// refuses is counted and logged.
async fn fan_out(
    state: &SnsService,
    topic: &Topic,
    topic_arn: &str,
    message: &Message,
    request_id: &str,
    endpoint: &str,
) -> Result<(String, u64), ApiError> {
    let message_id = uuid::Uuid::new_v4().to_string();
    let text_for = |protocol: &str| -> String {
        match &message.per_protocol {
            Some(m) => m
                .get(protocol)
                .or_else(|| m.get("default"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            None => message.body.clone(),
        }
    };
    let now = state.clock.now_ms();
    let timestamp = protocol::clock::utc(now)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let raw = text_for("sqs");
    // Made (and signed, which is most of a publish's CPU) only when a subscription
    // takes the envelope.
    let mut envelope: Option<String> = None;
    let mut delivered = 0u64;
    let mut after = String::new();
    loop {
        let page = state
            .catalog
            .list_sns_subscriptions(&topic.account_id, Some(topic.id), &after, FANOUT_PAGE)
            .await
            .map_err(wire_error)?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id.clone();
        let wanted: Vec<(&Subscription, bool, Option<String>)> = page
            .iter()
            .filter(|s| s.protocol == "sqs")
            .filter_map(|s| {
                let attrs: BTreeMap<String, String> =
                    serde_json::from_str(&s.attributes).unwrap_or_default();
                wants(&attrs, message).then(|| {
                    (
                        s,
                        attrs.get("RawMessageDelivery").is_some_and(|v| v == "true"),
                        attrs
                            .get("RedrivePolicy")
                            .and_then(|p| dead_letter_queue(p)),
                    )
                })
            })
            .collect();
        if envelope.is_none() && wanted.iter().any(|(_, raw_delivery, _)| !raw_delivery) {
            let signing = state.signing().await?;
            let signed = Signed {
                message_id: &message_id,
                timestamp: &timestamp,
                topic_arn,
                cert_url: format!("{endpoint}{}", signing.cert_path()),
            };
            envelope = Some(signed.envelope(signing, message, &raw)?);
        }
        let envelope = envelope.as_deref().unwrap_or_default();
        for chunk in wanted.chunks(DELIVERIES_AT_ONCE) {
            let sends = chunk.iter().map(|(s, raw_delivery, dlq)| {
                let as_subscriber = Caller {
                    account_id: s.account_id.clone(),
                    principal_arn: s.owner_arn.clone(),
                    access_key_id: String::new(),
                    source_ip: None,
                    tls_version: None,
                    request_id: request_id.to_string(),
                };
                let delivery = Delivery {
                    body: if *raw_delivery { &raw } else { envelope },
                    attributes: if *raw_delivery {
                        sqs_attributes(&message.attributes)
                    } else {
                        json!({})
                    },
                    group_id: message.group_id.as_deref(),
                    dedup_id: message.dedup_id.as_deref(),
                };
                async move {
                    let again = dlq.as_ref().map(|_| delivery.clone());
                    let out = state
                        .queues
                        .send(&as_subscriber, &s.endpoint, delivery)
                        .await;
                    // A delivery the queue refused goes to the subscription's dead-letter
                    // queue, when it has one.
                    let dead_lettered = match (&out, dlq, again) {
                        (Err(_), Some(dlq), Some(again)) => {
                            Some(state.queues.send(&as_subscriber, dlq, again).await)
                        }
                        _ => None,
                    };
                    (s, out, dead_lettered)
                }
            });
            for (s, out, dead_lettered) in futures_util::future::join_all(sends).await {
                let labels = [("topic", format!("{}/{}", topic.account_id, topic.name))];
                match out {
                    Ok(_) => {
                        delivered += 1;
                        metrics::counter!("sluice_sns_deliveries_total", &labels).increment(1);
                    }
                    Err(e) => {
                        metrics::counter!("sluice_sns_deliveries_failed_total", &labels)
                            .increment(1);
                        tracing::warn!(
                            subscription = %s.id, endpoint = %s.endpoint, error = %e,
                            "an SNS delivery was refused"
                        );
                        match dead_lettered {
                            Some(Ok(_)) => {
                                metrics::counter!("sluice_sns_dead_lettered_total", &labels)
                                    .increment(1);
                            }
                            Some(Err(e)) => tracing::error!(
                                subscription = %s.id, error = %e,
                                "an SNS delivery's dead-letter queue refused it too"
                            ),
                            None => {}
                        }
                    }
                }
            }
        }
        if (page.len() as i64) < FANOUT_PAGE {
            break;
        }
    }
    Ok((message_id, delivered))
}

pub(crate) async fn publish(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
    endpoint: &str,
) -> Result<String, ApiError> {
    if form.get("PhoneNumber").is_some() {
        return Err(invalid(
            "PhoneNumber Reason: SMS is not available from this server",
        ));
    }
    let topic_arn = match (form.get("TopicArn"), form.get("TargetArn")) {
        (Some(arn), _) => arn,
        (None, Some(_)) => {
            return Err(invalid(
                "TargetArn Reason: platform application endpoints are not available from this server",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "TopicArn or TargetArn Reason: no value for required parameter",
            ));
        }
    };
    let topic = topic_named(state, caller, "TopicArn", topic_arn, "sns:Publish").await?;
    let message = read_message(form, "", &topic)?;
    let (message_id, delivered) = fan_out(
        state,
        &topic,
        topic_arn,
        &message,
        &caller.request_id,
        endpoint,
    )
    .await?;
    published(state, &topic, &[(message.size, delivered)]).await;
    Ok(element("MessageId", &message_id))
}

/// Counts and bills what was published: per message (size, deliveries made), one
/// request per 64 KiB begun, and each delivery into a queue. A failed meter write is
/// logged; the messages were delivered all the same.
async fn published(state: &SnsService, topic: &Topic, messages: &[(usize, u64)]) {
    metrics::counter!(
        "sluice_sns_messages_published_total",
        &[("topic", format!("{}/{}", topic.account_id, topic.name))]
    )
    .increment(messages.len() as u64);
    let requests: u64 = messages
        .iter()
        .map(|(size, _)| size.div_ceil(BILLED_CHUNK).max(1) as u64)
        .sum();
    let deliveries: u64 = messages.iter().map(|(_, d)| d).sum();
    if let Err(e) = state
        .catalog
        .meter_sns(
            &topic.account_id,
            &topic.name,
            vec![
                (catalog::billing::Metric::SnsRequests, requests),
                (catalog::billing::Metric::SnsSqsDeliveries, deliveries),
            ],
            state.clock.now_ms(),
        )
        .await
    {
        tracing::error!(error = %e, "metering an SNS publish failed");
    }
}

pub(crate) async fn publish_batch(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
    endpoint: &str,
) -> Result<String, ApiError> {
    let topic_arn = form.required("TopicArn")?;
    let topic = topic_named(state, caller, "TopicArn", topic_arn, "sns:Publish").await?;
    let entries = form.entries("PublishBatchRequestEntries");
    if entries.is_empty() {
        return Err(sns_error(
            SnsError::EmptyBatchRequest,
            "The batch request doesn't contain any entries",
        ));
    }
    if entries.len() > BATCH_MAX {
        return Err(sns_error(
            SnsError::TooManyEntriesInBatchRequest,
            format!("The batch request contains more entries than permissible ({BATCH_MAX})"),
        ));
    }
    let mut ids = HashSet::new();
    let mut total = 0usize;
    for prefix in &entries {
        let id = form.get(&format!("{prefix}.Id")).unwrap_or_default();
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(sns_error(
                SnsError::InvalidBatchEntryId,
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !ids.insert(id) {
            return Err(sns_error(
                SnsError::BatchEntryIdsNotDistinct,
                "Two or more batch entries in the request have the same Id.",
            ));
        }
        total += form.get(&format!("{prefix}.Message")).map_or(0, str::len);
    }
    if total > MESSAGE_BYTES_MAX {
        return Err(sns_error(
            SnsError::BatchRequestTooLong,
            format!(
                "The length of all the messages put together is more than the limit ({MESSAGE_BYTES_MAX} bytes)."
            ),
        ));
    }
    let mut successful = String::new();
    let mut failed = String::new();
    let mut sent = Vec::new();
    for prefix in &entries {
        let id = form.get(&format!("{prefix}.Id")).unwrap_or_default();
        match read_message(form, &format!("{prefix}."), &topic) {
            Ok(message) => {
                let (message_id, delivered) = fan_out(
                    state,
                    &topic,
                    topic_arn,
                    &message,
                    &caller.request_id,
                    endpoint,
                )
                .await?;
                sent.push((message.size, delivered));
                successful.push_str(&format!(
                    "<member>{}{}</member>",
                    element("Id", id),
                    element("MessageId", &message_id)
                ));
            }
            Err(e) => failed.push_str(&format!(
                "<member>{}{}{}{}</member>",
                element("Id", id),
                element("Code", e.code.type_name()),
                element("Message", &e.message),
                element("SenderFault", "true"),
            )),
        }
    }
    published(state, &topic, &sent).await;
    Ok(format!(
        "<Successful>{successful}</Successful><Failed>{failed}</Failed>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str, &str)]) -> BTreeMap<String, MessageAttribute> {
        pairs
            .iter()
            .map(|(k, t, v)| {
                (
                    k.to_string(),
                    MessageAttribute {
                        data_type: t.to_string(),
                        string_value: Some(v.to_string()),
                        binary_value: None,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn filter_policies_match_as_sns_documents() {
        let p = FilterPolicy::parse(
            r#"{"color": ["red", {"prefix": "bl"}], "size": [{"numeric": [">", 10, "<=", 20]}],
                "region": [{"anything-but": ["eu"]}], "vip": [{"exists": false}]}"#,
        )
        .unwrap();
        let ok = attrs(&[
            ("color", "String", "blue"),
            ("size", "Number", "15"),
            ("region", "String", "us"),
        ]);
        assert!(p.matches_attributes(&ok));
        let mut big = ok.clone();
        big.insert(
            "size".into(),
            attrs(&[("size", "Number", "21")])["size"].clone(),
        );
        assert!(!p.matches_attributes(&big));
        let mut eu = ok.clone();
        eu.insert(
            "region".into(),
            attrs(&[("region", "String", "eu")])["region"].clone(),
        );
        assert!(!p.matches_attributes(&eu));
        let mut vip = ok.clone();
        vip.insert(
            "vip".into(),
            attrs(&[("vip", "String", "yes")])["vip"].clone(),
        );
        assert!(!p.matches_attributes(&vip));
        assert!(!p.matches_attributes(&attrs(&[("color", "String", "green")])));
        // String arrays match when any item does.
        let arr = FilterPolicy::parse(r#"{"tags": ["b"]}"#).unwrap();
        assert!(arr.matches_attributes(&attrs(&[("tags", "String.Array", r#"["a","b"]"#)])));
        // Scope MessageBody reads nested keys.
        let body = FilterPolicy::parse(r#"{"order": {"status": ["paid"]}}"#).unwrap();
        assert!(body.matches_body(&json!({"order": {"status": "paid"}})));
        assert!(!body.matches_body(&json!({"order": {"status": "open"}})));
        for bad in [r#"{"a": "x"}"#, r#"{"a": [{"regex": "x"}]}"#, "[]", "nope"] {
            assert!(FilterPolicy::parse(bad).is_err(), "{bad}");
        }
    }
}
