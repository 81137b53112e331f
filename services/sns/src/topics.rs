//! Topics: CreateTopic (idempotent), DeleteTopic, ListTopics, Get/SetTopicAttributes,
//! and the tags of TagResource, UntagResource and ListTagsForResource.

use std::collections::BTreeMap;

use catalog::sns::Topic;
use edge::{Caller, wire_error};
use protocol::ApiError;
use protocol::sns::SnsError;
use serde_json::{Value, json};

use crate::form::Form;
use crate::{
    LIST_PAGE, SnsService, attributes_xml, element, invalid, page_xml, parse_topic_arn, sns_error,
};

/// Tags a topic may carry.
const TAGS_MAX: usize = 50;
/// Attribute values are at most this long (a delivery policy, a display name).
const ATTRIBUTE_VALUE_MAX: usize = 30_720;

/// The attributes SetTopicAttributes and CreateTopic take.
const SETTABLE: [&str; 6] = [
    "DisplayName",
    "DeliveryPolicy",
    "KmsMasterKeyId",
    "SignatureVersion",
    "TracingConfig",
    "ContentBasedDeduplication",
];

/// AWS's default delivery policy for HTTP/S endpoints, as GetTopicAttributes shows it.
const EFFECTIVE_DELIVERY_POLICY: &str = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}"#;

/// 1 to 256 letters, digits, hyphens and underscores; a FIFO topic's ends in `.fifo`.
pub(crate) fn valid_name(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    !base.is_empty()
        && name.len() <= 256
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_attribute(name: &str, value: &str) -> Result<(), ApiError> {
    if name == "Policy" {
        return Err(invalid(
            "Policy Reason: topic policies are not supported by this server; Cedar policies decide who may use a topic",
        ));
    }
    if !SETTABLE.contains(&name) {
        return Err(invalid("AttributeName"));
    }
    if value.len() > ATTRIBUTE_VALUE_MAX {
        return Err(invalid(format!("{name} Reason: the value is too long")));
    }
    match name {
        "SignatureVersion" if value != crate::signing::SIGNATURE_VERSION => Err(invalid(
            "SignatureVersion Reason: this server signs with version 2 (SHA256withRSA) only",
        )),
        "TracingConfig" if !matches!(value, "PassThrough" | "Active") => Err(invalid(
            "TracingConfig Reason: must be PassThrough or Active",
        )),
        "ContentBasedDeduplication" if !matches!(value, "true" | "false") => Err(invalid(
            "ContentBasedDeduplication Reason: must be true or false",
        )),
        "DeliveryPolicy" if serde_json::from_str::<Value>(value).is_err() => {
            Err(invalid("DeliveryPolicy Reason: is not JSON"))
        }
        _ => Ok(()),
    }
}

fn check_tags(tags: &[(String, String)]) -> Result<(), ApiError> {
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
            return Err(sns_error(
                SnsError::TagPolicy,
                format!("Invalid tag: key {k:?} (1-128 characters, not aws:) or its value (0-256)"),
            ));
        }
    }
    Ok(())
}

fn stored(text: &str) -> BTreeMap<String, String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// A topic's attributes as stored (its data protection policy among them).
pub(crate) fn stored_attributes(topic: &Topic) -> BTreeMap<String, String> {
    stored(&topic.attributes)
}

/// Replaces a topic's stored attributes.
pub(crate) async fn save_attributes(
    state: &SnsService,
    topic: &Topic,
    attributes: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    state
        .catalog
        .set_sns_topic_attributes(topic.id, &json!(attributes).to_string())
        .await
        .map_err(wire_error)
}

/// Replaces a topic's tags.
async fn save_tags(
    state: &SnsService,
    topic: &Topic,
    tags: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    state
        .catalog
        .set_sns_topic_tags(topic.id, &json!(tags).to_string())
        .await
        .map_err(wire_error)
}

/// The attribute key a topic's data protection policy is kept under (not shown by
/// GetTopicAttributes, as on AWS).
pub(crate) const DATA_PROTECTION_POLICY: &str = "DataProtectionPolicy";
/// A data protection policy is at most 30 KiB.
const DATA_PROTECTION_POLICY_MAX: usize = 30_720;

pub(crate) fn check_data_protection_policy(text: &str) -> Result<(), ApiError> {
    if text.len() > DATA_PROTECTION_POLICY_MAX {
        return Err(invalid("DataProtectionPolicy Reason: is longer than 30720"));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(p)) if p.contains_key("Statement") => Ok(()),
        _ => Err(invalid(
            "DataProtectionPolicy Reason: is not a JSON policy with a Statement",
        )),
    }
}

/// The caller's topic a `TopicArn` (or `ResourceArn`) names, after `action` on it is
/// allowed. Another account's topic, or none, is NotFound (after authorization).
pub(crate) async fn topic_named(
    state: &SnsService,
    caller: &Caller,
    member: &str,
    arn: &str,
    action: &str,
) -> Result<Topic, ApiError> {
    let (account, name) = parse_topic_arn(arn, member)?;
    state.authorize_topic(caller, action, arn).await?;
    let found = if account == caller.account_id {
        state
            .catalog
            .sns_topic(account, name)
            .await
            .map_err(wire_error)?
    } else {
        None
    };
    found.ok_or_else(|| sns_error(SnsError::NotFound, "Topic does not exist"))
}

pub(crate) async fn create(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let name = form.required("Name")?;
    if !valid_name(name) {
        return Err(invalid(
            "Topic Name Reason: 1 to 256 letters, digits, hyphens and underscores, a FIFO topic's ending in .fifo",
        ));
    }
    let mut attributes = form.map("Attributes");
    let fifo = match attributes.remove("FifoTopic").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(invalid("FifoTopic Reason: must be true or false")),
    };
    if fifo != name.ends_with(".fifo") {
        return Err(invalid(
            "Topic Name Reason: a FIFO topic's name ends in .fifo, and only a FIFO topic's does",
        ));
    }
    for (k, v) in &attributes {
        check_attribute(k, v)?;
    }
    if !fifo && attributes.contains_key("ContentBasedDeduplication") {
        return Err(invalid(
            "Attributes Reason: ContentBasedDeduplication is for FIFO topics",
        ));
    }
    if fifo {
        attributes.insert("FifoTopic".into(), "true".into());
    }
    let mut kept = attributes.clone();
    if let Some(policy) = form.get("DataProtectionPolicy") {
        check_data_protection_policy(policy)?;
        kept.insert(DATA_PROTECTION_POLICY.to_string(), policy.to_string());
    }
    let tags = form.tags("Tags");
    check_tags(&tags)?;
    if tags.len() > TAGS_MAX {
        return Err(sns_error(
            SnsError::TagLimitExceeded,
            format!("A topic has at most {TAGS_MAX} tags."),
        ));
    }
    let arn = state.topic_arn(&caller.account_id, name);
    state
        .authorize_topic(caller, "sns:CreateTopic", &arn)
        .await?;
    let tags_json: BTreeMap<_, _> = tags.into_iter().collect();
    let (topic, created) = state
        .catalog
        .create_sns_topic(
            &caller.account_id,
            name,
            &json!(kept).to_string(),
            &json!(tags_json).to_string(),
            state.clock.now_ms(),
        )
        .await
        .map_err(|e| match wire_error(e) {
            e if e.code == protocol::ErrorCode::LimitExceeded => {
                sns_error(SnsError::TopicLimitExceeded, e.message)
            }
            e => e,
        })?;
    let mut existing = stored(&topic.attributes);
    existing.remove(DATA_PROTECTION_POLICY);
    if !created && existing != attributes {
        return Err(invalid(
            "Attributes Reason: Topic already exists with different attributes",
        ));
    }
    Ok(element("TopicArn", &arn))
}

pub(crate) async fn delete(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("TopicArn")?;
    let (account, name) = parse_topic_arn(arn, "TopicArn")?;
    state
        .authorize_topic(caller, "sns:DeleteTopic", arn)
        .await?;
    // Deleting a topic that does not exist succeeds, as on AWS.
    if account == caller.account_id {
        state
            .catalog
            .delete_sns_topic(account, name)
            .await
            .map_err(wire_error)?;
    }
    Ok(String::new())
}

pub(crate) async fn list(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    state.authorize_tenant(caller, "sns:ListTopics").await?;
    let after = form.get("NextToken").unwrap_or_default();
    let topics = state
        .catalog
        .list_sns_topics(&caller.account_id, after, LIST_PAGE as i64 + 1)
        .await
        .map_err(wire_error)?;
    Ok(page_xml(
        "Topics",
        &topics,
        |t| element("TopicArn", &state.topic_arn(&t.account_id, &t.name)),
        |t| &t.name,
    ))
}

pub(crate) async fn get_attributes(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("TopicArn")?;
    let topic = topic_named(state, caller, "TopicArn", arn, "sns:GetTopicAttributes").await?;
    let confirmed = state
        .catalog
        .count_sns_subscriptions(topic.id)
        .await
        .map_err(wire_error)?;
    let mut out: BTreeMap<String, String> = stored(&topic.attributes);
    out.remove(DATA_PROTECTION_POLICY);
    out.entry("DisplayName".into()).or_default();
    out.entry("SignatureVersion".into())
        .or_insert_with(|| crate::signing::SIGNATURE_VERSION.into());
    out.insert("TopicArn".into(), arn.to_string());
    out.insert("Owner".into(), topic.account_id.clone());
    out.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
    out.insert("SubscriptionsPending".into(), "0".into());
    out.insert("SubscriptionsDeleted".into(), "0".into());
    out.insert(
        "EffectiveDeliveryPolicy".into(),
        EFFECTIVE_DELIVERY_POLICY.into(),
    );
    Ok(attributes_xml(
        out.iter().map(|(k, v)| (k.as_str(), v.clone())),
    ))
}

pub(crate) async fn set_attribute(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("TopicArn")?;
    let name = form.required("AttributeName")?;
    let value = form.get("AttributeValue").unwrap_or_default();
    let topic = topic_named(state, caller, "TopicArn", arn, "sns:SetTopicAttributes").await?;
    check_attribute(name, value)?;
    let mut attributes = stored(&topic.attributes);
    if name == "ContentBasedDeduplication" && !attributes.contains_key("FifoTopic") {
        return Err(invalid(
            "Attributes Reason: ContentBasedDeduplication is for FIFO topics",
        ));
    }
    attributes.insert(name.to_string(), value.to_string());
    save_attributes(state, &topic, &attributes).await?;
    Ok(String::new())
}

pub(crate) async fn tag(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("ResourceArn")?;
    let topic = topic_named(state, caller, "ResourceArn", arn, "sns:TagResource").await?;
    let new = form.tags("Tags");
    check_tags(&new)?;
    let mut tags = stored(&topic.tags);
    tags.extend(new);
    if tags.len() > TAGS_MAX {
        return Err(sns_error(
            SnsError::TagLimitExceeded,
            format!("Could not complete request: tag quota of per resource exceeded ({TAGS_MAX})"),
        ));
    }
    save_tags(state, &topic, &tags).await?;
    Ok(String::new())
}

pub(crate) async fn untag(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("ResourceArn")?;
    let topic = topic_named(state, caller, "ResourceArn", arn, "sns:UntagResource").await?;
    let mut tags = stored(&topic.tags);
    for key in form.list("TagKeys") {
        tags.remove(&key);
    }
    save_tags(state, &topic, &tags).await?;
    Ok(String::new())
}

pub(crate) async fn list_tags(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("ResourceArn")?;
    let topic = topic_named(state, caller, "ResourceArn", arn, "sns:ListTagsForResource").await?;
    let members: String = stored(&topic.tags)
        .iter()
        .map(|(k, v)| {
            format!(
                "<member>{}{}</member>",
                element("Key", k),
                element("Value", v)
            )
        })
        .collect();
    Ok(format!("<Tags>{members}</Tags>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_attributes_are_checked() {
        assert!(valid_name("orders-1_a"));
        assert!(valid_name("orders.fifo"));
        assert!(!valid_name(".fifo"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"a".repeat(257)));
        assert!(check_attribute("DisplayName", "Orders").is_ok());
        assert!(check_attribute("SignatureVersion", "1").is_err());
        assert!(check_attribute("SignatureVersion", "2").is_ok());
        assert!(check_attribute("Policy", "{}").is_err());
        assert!(check_attribute("Nope", "x").is_err());
        assert!(check_tags(&[("aws:x".into(), "v".into())]).is_err());
    }

    #[test]
    fn data_protection_policies_are_json_policies() {
        assert!(
            check_data_protection_policy(r#"{"Name":"p","Version":"2021-06-01","Statement":[]}"#)
                .is_ok()
        );
        assert!(check_data_protection_policy("{}").is_err());
        assert!(check_data_protection_policy("nope").is_err());
        let long = format!("{{\"Statement\":\"{}\"}}", "x".repeat(31_000));
        assert!(check_data_protection_policy(&long).is_err());
    }
}
