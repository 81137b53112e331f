//! Subscriptions: Subscribe, Unsubscribe, ListSubscriptions(ByTopic) and
//! Get/SetSubscriptionAttributes. Sluice delivers to its own SQS queues; a queue
//! subscription is confirmed at once (as AWS confirms a queue of the topic owner's
//! account) once the subscriber is allowed to send to the queue.

use std::collections::BTreeMap;

use catalog::sns::{NewSubscription, Subscription};
use edge::{Caller, wire_error};
use protocol::sns::SnsError;
use protocol::{ApiError, ErrorCode};
use serde_json::{Value, json};

use crate::form::Form;
use crate::publish::FilterPolicy;
use crate::topics::topic_named;
use crate::{
    LIST_PAGE, SnsService, attributes_xml, element, invalid, page_xml, parse_topic_arn, sns_error,
};

/// The protocols SNS has; Sluice delivers to `sqs` so far.
const PROTOCOLS: [&str; 9] = [
    "http",
    "https",
    "email",
    "email-json",
    "sms",
    "sqs",
    "application",
    "lambda",
    "firehose",
];

/// The attributes Subscribe and SetSubscriptionAttributes take.
const SETTABLE: [&str; 6] = [
    "RawMessageDelivery",
    "FilterPolicy",
    "FilterPolicyScope",
    "RedrivePolicy",
    "DeliveryPolicy",
    "SubscriptionRoleArn",
];

fn check_attribute(name: &str, value: &str) -> Result<(), ApiError> {
    if !SETTABLE.contains(&name) {
        return Err(invalid("AttributeName"));
    }
    match name {
        "RawMessageDelivery" if !matches!(value, "true" | "false") => {
            Err(invalid("RawMessageDelivery Reason: must be true or false"))
        }
        "FilterPolicyScope" if !matches!(value, "MessageAttributes" | "MessageBody") => {
            Err(invalid(
                "FilterPolicyScope: Invalid filter policy scope, it must be MessageAttributes or MessageBody",
            ))
        }
        "FilterPolicy" if !value.is_empty() => FilterPolicy::parse(value).map(|_| ()),
        "RedrivePolicy" if crate::publish::dead_letter_queue(value).is_none() => Err(invalid(
            "RedrivePolicy: deadLetterTargetArn is missing or is not a queue ARN",
        )),
        "DeliveryPolicy" if serde_json::from_str::<Value>(value).is_err() => {
            Err(invalid(format!("{name}: is not JSON")))
        }
        _ => Ok(()),
    }
}

/// `<topic ARN>:<id>` as (topic ARN, id).
fn parse_subscription_arn(arn: &str) -> Result<(&str, &str), ApiError> {
    let bad = || invalid("SubscriptionArn Reason: An ARN must have the form <topic ARN>:<id>");
    let (topic, id) = arn.rsplit_once(':').ok_or_else(bad)?;
    parse_topic_arn(topic, "SubscriptionArn")?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(bad());
    }
    Ok((topic, id))
}

pub(crate) fn subscription_arn(state: &SnsService, s: &Subscription) -> String {
    format!("{}:{}", state.topic_arn(&s.account_id, &s.topic_name), s.id)
}

/// The caller's subscription an ARN names, after `action` on its topic is allowed.
async fn subscription_named(
    state: &SnsService,
    caller: &Caller,
    arn: &str,
    action: &str,
) -> Result<Subscription, ApiError> {
    let (topic_arn, id) = parse_subscription_arn(arn)?;
    state.authorize_topic(caller, action, topic_arn).await?;
    state
        .catalog
        .sns_subscription(&caller.account_id, id)
        .await
        .map_err(wire_error)?
        .filter(|s| state.topic_arn(&s.account_id, &s.topic_name) == topic_arn)
        .ok_or_else(|| sns_error(SnsError::NotFound, "Subscription does not exist"))
}

pub(crate) async fn subscribe(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let topic_arn = form.required("TopicArn")?;
    let protocol = form.required("Protocol")?.to_ascii_lowercase();
    let endpoint = form.get("Endpoint").unwrap_or_default();
    if !PROTOCOLS.contains(&protocol.as_str()) {
        return Err(invalid(format!(
            "Amazon SNS does not support this protocol string: {protocol}"
        )));
    }
    let attributes = form.map("Attributes");
    for (k, v) in &attributes {
        check_attribute(k, v)?;
    }
    let topic = topic_named(state, caller, "TopicArn", topic_arn, "sns:Subscribe").await?;
    if protocol != "sqs" {
        return Err(invalid(format!(
            "Protocol Reason: {protocol} endpoints are not supported by this server yet; subscribe an SQS queue"
        )));
    }
    check_queue(state, caller, "Endpoint", endpoint).await?;
    if let Some(dlq) = attributes
        .get("RedrivePolicy")
        .and_then(|p| crate::publish::dead_letter_queue(p))
    {
        check_queue(state, caller, "RedrivePolicy", &dlq).await?;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let (subscription, created) = state
        .catalog
        .subscribe_sns(
            &topic,
            &NewSubscription {
                id: &id,
                owner_arn: &caller.principal_arn,
                protocol: &protocol,
                endpoint,
                attributes: &json!(attributes).to_string(),
            },
            state.clock.now_ms(),
        )
        .await
        .map_err(|e| match wire_error(e) {
            e if e.code == ErrorCode::LimitExceeded => {
                sns_error(SnsError::SubscriptionLimitExceeded, e.message)
            }
            e => e,
        })?;
    if !created {
        let have: BTreeMap<String, String> =
            serde_json::from_str(&subscription.attributes).unwrap_or_default();
        if have != attributes {
            return Err(invalid(
                "Attributes Reason: Subscription already exists with different attributes",
            ));
        }
    }
    Ok(element(
        "SubscriptionArn",
        &subscription_arn(state, &subscription),
    ))
}

/// A queue a subscription delivers to (its endpoint, or its dead-letter queue): one
/// of the caller's own account, to which the caller may send (deliveries use its
/// rights).
async fn check_queue(
    state: &SnsService,
    caller: &Caller,
    member: &str,
    arn: &str,
) -> Result<(), ApiError> {
    match sqs_account(arn) {
        Some(account) if account == caller.account_id => {}
        Some(_) => {
            return Err(invalid(format!(
                "{member} Reason: a queue of another account cannot be delivered to here"
            )));
        }
        None => return Err(invalid(format!("{member} Reason: not an SQS queue ARN"))),
    }
    state
        .queues
        .check(caller, arn)
        .await
        .map_err(|e| match e.code {
            ErrorCode::AccessDenied => e,
            _ => invalid(format!("{member} Reason: {}", e.message)),
        })
}

/// The account of an SQS queue ARN.
fn sqs_account(arn: &str) -> Option<&str> {
    protocol::arn::account_resource(arn, "sqs").map(|(_, account, _)| account)
}

pub(crate) async fn unsubscribe(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("SubscriptionArn")?;
    let subscription = subscription_named(state, caller, arn, "sns:Unsubscribe").await?;
    state
        .catalog
        .delete_sns_subscription(&caller.account_id, &subscription.id)
        .await
        .map_err(wire_error)?;
    Ok(String::new())
}

pub(crate) async fn list(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
    by_topic: bool,
) -> Result<String, ApiError> {
    let topic_id = if by_topic {
        let arn = form.required("TopicArn")?;
        Some(
            topic_named(
                state,
                caller,
                "TopicArn",
                arn,
                "sns:ListSubscriptionsByTopic",
            )
            .await?
            .id,
        )
    } else {
        state
            .authorize_tenant(caller, "sns:ListSubscriptions")
            .await?;
        None
    };
    let after = form.get("NextToken").unwrap_or_default();
    let found = state
        .catalog
        .list_sns_subscriptions(&caller.account_id, topic_id, after, LIST_PAGE as i64 + 1)
        .await
        .map_err(wire_error)?;
    Ok(page_xml(
        "Subscriptions",
        &found,
        |s| {
            format!(
                "{}{}{}{}{}",
                element("SubscriptionArn", &subscription_arn(state, s)),
                element("Owner", &s.account_id),
                element("Protocol", &s.protocol),
                element("Endpoint", &s.endpoint),
                element("TopicArn", &state.topic_arn(&s.account_id, &s.topic_name)),
            )
        },
        |s| &s.id,
    ))
}

pub(crate) async fn get_attributes(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("SubscriptionArn")?;
    let s = subscription_named(state, caller, arn, "sns:GetSubscriptionAttributes").await?;
    let mut out: BTreeMap<String, String> = serde_json::from_str(&s.attributes).unwrap_or_default();
    out.entry("RawMessageDelivery".into())
        .or_insert_with(|| "false".into());
    out.insert("SubscriptionArn".into(), arn.to_string());
    out.insert(
        "TopicArn".into(),
        state.topic_arn(&s.account_id, &s.topic_name),
    );
    out.insert("Owner".into(), s.account_id.clone());
    out.insert("Protocol".into(), s.protocol.clone());
    out.insert("Endpoint".into(), s.endpoint.clone());
    out.insert("SubscriptionPrincipal".into(), s.owner_arn.clone());
    out.insert("ConfirmationWasAuthenticated".into(), "true".into());
    out.insert("PendingConfirmation".into(), "false".into());
    Ok(attributes_xml(
        out.iter().map(|(k, v)| (k.as_str(), v.clone())),
    ))
}

pub(crate) async fn set_attribute(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("SubscriptionArn")?;
    let name = form.required("AttributeName")?;
    let value = form.get("AttributeValue").unwrap_or_default();
    check_attribute(name, value)?;
    let s = subscription_named(state, caller, arn, "sns:SetSubscriptionAttributes").await?;
    if name == "RedrivePolicy"
        && let Some(dlq) = crate::publish::dead_letter_queue(value)
    {
        check_queue(state, caller, "RedrivePolicy", &dlq).await?;
    }
    let mut attributes: BTreeMap<String, String> =
        serde_json::from_str(&s.attributes).unwrap_or_default();
    if value.is_empty() && name == "FilterPolicy" {
        attributes.remove(name);
    } else {
        attributes.insert(name.to_string(), value.to_string());
    }
    state
        .catalog
        .set_sns_subscription_attributes(&s.id, &json!(attributes).to_string())
        .await
        .map_err(wire_error)?;
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_arns_and_attributes_are_checked() {
        let arn = "arn:aws:sns:us-east-1:000000000000:orders:8f1c3a52-5ae7-4bb1-9d3e-0a1b2c3d4e5f";
        assert_eq!(
            parse_subscription_arn(arn).unwrap(),
            (
                "arn:aws:sns:us-east-1:000000000000:orders",
                "8f1c3a52-5ae7-4bb1-9d3e-0a1b2c3d4e5f"
            )
        );
        assert!(parse_subscription_arn("arn:aws:sns:us-east-1:000000000000:orders").is_err());
        assert!(check_attribute("RawMessageDelivery", "yes").is_err());
        assert!(check_attribute("FilterPolicy", r#"{"color": ["red"]}"#).is_ok());
        assert!(check_attribute("FilterPolicy", "not json").is_err());
        assert!(check_attribute("Nope", "x").is_err());
        assert!(
            check_attribute(
                "RedrivePolicy",
                r#"{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"}"#
            )
            .is_ok()
        );
        assert!(check_attribute("RedrivePolicy", r#"{"other": 1}"#).is_err());
        assert_eq!(
            sqs_account("arn:aws:sqs:us-east-1:000000000000:q"),
            Some("000000000000")
        );
        assert_eq!(sqs_account("https://sqs/000000000000/q"), None);
    }
}
