//! SNS (query protocol, API version 2010-03-31, signing name `sns`): topics, their
//! subscriptions, and Publish fanning each message out to them. Every request is a
//! form-encoded `Action=...` body answered in XML in the
//! `http://sns.amazonaws.com/doc/2010-03-31/` namespace, and is authorized by Cedar
//! first (`sns:<Action>` on the topic's ARN; ListTopics and ListSubscriptions on the
//! tenant).
//!
//! Deliveries go to Sluice's SQS queues through the door the assembly hands this
//! service (`QueueSink`), with the rights of the principal that subscribed: a
//! subscription to a queue needs `sqs:SendMessage` on it, then and at each delivery.
//! Publish answers once every queue subscribed has the message durably (or refused
//! it, which is counted and logged), so an acknowledged message is in every queue that
//! could take it.

pub mod form;
pub mod others;
pub mod publish;
pub mod signing;
pub mod subscriptions;
pub mod topics;

use std::sync::Arc;

use catalog::Catalog;
use catalog::rootkey::RootKey;
use edge::{Authorizer, BoxFuture, Caller, Resource};
use protocol::clock::SharedClock;
use protocol::query::escape;
use protocol::sns::SnsError;
use protocol::{ApiError, ErrorCode};

use crate::form::Form;

/// The XML namespace of SNS's answers.
pub const NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// SNS's door to SQS.
pub trait QueueSink: Send + Sync {
    /// Whether `caller` may send to the queue `queue_arn` names, and it exists.
    fn check<'a>(
        &'a self,
        caller: &'a Caller,
        queue_arn: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>>;

    /// Sends one message to the queue with `caller`'s rights; answers its id.
    fn send<'a>(
        &'a self,
        caller: &'a Caller,
        queue_arn: &'a str,
        delivery: publish::Delivery<'a>,
    ) -> BoxFuture<'a, Result<String, ApiError>>;
}

/// What the service may touch.
pub struct SnsService {
    pub catalog: Catalog,
    pub authz: Arc<dyn Authorizer>,
    pub region: String,
    pub clock: SharedClock,
    pub queues: Arc<dyn QueueSink>,
    /// Seals the deployment's signing key in the catalog.
    pub root_key: Arc<RootKey>,
    /// The signing key, loaded on first use.
    pub signing: tokio::sync::OnceCell<signing::Signing>,
}

pub(crate) fn sns_error(kind: SnsError, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Sns(kind), message)
}

/// `Invalid parameter: <what>`, as SNS words a parameter it refuses.
pub(crate) fn invalid(what: impl std::fmt::Display) -> ApiError {
    sns_error(
        SnsError::InvalidParameter,
        format!("Invalid parameter: {what}"),
    )
}

/// The errors other layers raise, as SNS's clients know them: a denial is
/// `AuthorizationError`, a limit `...LimitExceeded`, a failure `InternalError`.
fn as_sns(error: ApiError) -> ApiError {
    let kind = match error.code {
        ErrorCode::Sns(_) => return error,
        ErrorCode::AccessDenied => SnsError::AuthorizationError,
        ErrorCode::InternalFailure | ErrorCode::ServiceUnavailable => SnsError::InternalError,
        ErrorCode::Validation | ErrorCode::InvalidArgument => SnsError::InvalidParameter,
        _ => return error,
    };
    ApiError::new(ErrorCode::Sns(kind), error.message)
}

impl SnsService {
    /// The deployment's signing key (made on first use by any process).
    pub async fn signing(&self) -> Result<&signing::Signing, ApiError> {
        self.signing
            .get_or_try_init(|| signing::Signing::load(&self.catalog, &self.root_key))
            .await
    }

    pub(crate) fn topic_arn(&self, account: &str, name: &str) -> String {
        format!("arn:aws:sns:{}:{account}:{name}", self.region)
    }

    /// Authorizes `action` on a topic ARN of the caller's own account.
    pub(crate) async fn authorize_topic(
        &self,
        caller: &Caller,
        action: &str,
        arn: &str,
    ) -> Result<(), ApiError> {
        self.authz
            .authorize(
                caller,
                action,
                Resource::Topic {
                    account: caller.account_id.as_str(),
                    arn,
                },
            )
            .await
    }

    pub(crate) async fn authorize_tenant(
        &self,
        caller: &Caller,
        action: &str,
    ) -> Result<(), ApiError> {
        self.authz
            .authorize(
                caller,
                action,
                Resource::Tenant {
                    account: caller.account_id.as_str(),
                },
            )
            .await
    }
}

/// A topic ARN as (account, name), checked: `arn:aws:sns:<region>:<account>:<name>`.
pub(crate) fn parse_topic_arn<'a>(
    arn: &'a str,
    member: &str,
) -> Result<(&'a str, &'a str), ApiError> {
    match protocol::arn::account_resource(arn, "sns") {
        Some((_, account, name)) if topics::valid_name(name) => Ok((account, name)),
        _ => Err(invalid(format!(
            "{member} Reason: An ARN must have the form arn:aws:sns:<region>:<account>:<topic name>"
        ))),
    }
}

/// The operations whose model has no output: their answer has no `...Result`.
const WITHOUT_OUTPUT: [&str; 11] = [
    "AddPermission",
    "DeleteEndpoint",
    "DeletePlatformApplication",
    "DeleteTopic",
    "PutDataProtectionPolicy",
    "RemovePermission",
    "SetEndpointAttributes",
    "SetPlatformApplicationAttributes",
    "SetSubscriptionAttributes",
    "SetTopicAttributes",
    "Unsubscribe",
];

/// An answer: `<{action}Response><{action}Result>{result}</...><ResponseMetadata>`.
pub(crate) fn respond(action: &str, result: &str, request_id: &str) -> String {
    let result = if WITHOUT_OUTPUT.contains(&action) {
        String::new()
    } else {
        format!("<{action}Result>{result}</{action}Result>")
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NAMESPACE}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        escape(request_id)
    )
}

/// `<name>text</name>`, escaped.
pub(crate) fn element(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", escape(text))
}

/// ListTopics and ListSubscriptions answer this many a page (AWS's page).
pub(crate) const LIST_PAGE: usize = 100;

/// A listing's page: `<{wrapper}><member>...</member>...</{wrapper}>` of the first
/// `LIST_PAGE` of `found` (read one past the page), and a NextToken naming the last
/// when there are more.
pub(crate) fn page_xml<T>(
    wrapper: &str,
    found: &[T],
    member: impl Fn(&T) -> String,
    token: impl Fn(&T) -> &str,
) -> String {
    let page = &found[..found.len().min(LIST_PAGE)];
    let members: String = page
        .iter()
        .map(|t| format!("<member>{}</member>", member(t)))
        .collect();
    let mut out = format!("<{wrapper}>{members}</{wrapper}>");
    if found.len() > LIST_PAGE
        && let Some(last) = page.last()
    {
        out.push_str(&element("NextToken", token(last)));
    }
    out
}

/// `<Attributes><entry><key/><value/></entry>...</Attributes>`.
pub(crate) fn attributes_xml<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let entries: String = pairs
        .into_iter()
        .map(|(k, v)| {
            format!(
                "<entry>{}{}</entry>",
                element("key", k),
                element("value", &v)
            )
        })
        .collect();
    format!("<Attributes>{entries}</Attributes>")
}

/// Runs one query-protocol request; answers its XML.
/// `endpoint` is `https://HOST` as the request reached the server (the certificate
/// URL of the envelopes it delivers is made of it).
pub async fn dispatch(
    state: &SnsService,
    caller: &Caller,
    body: &[u8],
    request_id: &str,
    endpoint: &str,
) -> Result<String, ApiError> {
    let form = Form::parse(body)?;
    let action = form.get("Action").unwrap_or_default().to_string();
    let result = match action.as_str() {
        "CreateTopic" => topics::create(state, caller, &form).await,
        "DeleteTopic" => topics::delete(state, caller, &form).await,
        "ListTopics" => topics::list(state, caller, &form).await,
        "GetTopicAttributes" => topics::get_attributes(state, caller, &form).await,
        "SetTopicAttributes" => topics::set_attribute(state, caller, &form).await,
        "TagResource" => topics::tag(state, caller, &form).await,
        "UntagResource" => topics::untag(state, caller, &form).await,
        "ListTagsForResource" => topics::list_tags(state, caller, &form).await,
        "Subscribe" => subscriptions::subscribe(state, caller, &form).await,
        "Unsubscribe" => subscriptions::unsubscribe(state, caller, &form).await,
        "ListSubscriptions" => subscriptions::list(state, caller, &form, false).await,
        "ListSubscriptionsByTopic" => subscriptions::list(state, caller, &form, true).await,
        "GetSubscriptionAttributes" => subscriptions::get_attributes(state, caller, &form).await,
        "SetSubscriptionAttributes" => subscriptions::set_attribute(state, caller, &form).await,
        "Publish" => publish::publish(state, caller, &form, endpoint).await,
        "PublishBatch" => publish::publish_batch(state, caller, &form, endpoint).await,
        "ConfirmSubscription" => others::confirm_subscription(state, caller, &form).await,
        "GetDataProtectionPolicy" => others::get_data_protection_policy(state, caller, &form).await,
        "PutDataProtectionPolicy" => others::put_data_protection_policy(state, caller, &form).await,
        "AddPermission" => others::permission(state, caller, &form, "sns:AddPermission").await,
        "RemovePermission" => {
            others::permission(state, caller, &form, "sns:RemovePermission").await
        }
        unavailable if others::UNAVAILABLE.contains(&unavailable) => {
            others::unavailable(state, caller, &form, unavailable).await
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidAction,
                format!(
                    "The action {} is not valid for this endpoint.",
                    other.chars().take(128).collect::<String>()
                ),
            ));
        }
    };
    result
        .map(|inner| respond(&action, &inner, request_id))
        .map_err(as_sns)
}

/// The signing certificate at `path`, when it is this deployment's (served without
/// authentication: receivers fetch it to check signatures).
pub async fn signing_certificate(state: &SnsService, path: &str) -> Option<String> {
    let signing = state.signing().await.ok()?;
    (signing.cert_path() == path).then(|| signing.cert_pem.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_namespaced_and_escaped() {
        let xml = respond("CreateTopic", &element("TopicArn", "a<b"), "r-1");
        assert!(xml.contains(
            "<CreateTopicResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><CreateTopicResult><TopicArn>a&lt;b</TopicArn></CreateTopicResult>"
        ));
        assert!(xml.contains("<RequestId>r-1</RequestId>"));
        assert!(!respond("DeleteTopic", "", "r").contains("DeleteTopicResult"));
    }

    #[test]
    fn topic_arns_are_checked() {
        assert_eq!(
            parse_topic_arn("arn:aws:sns:us-east-1:000000000000:orders", "TopicArn").unwrap(),
            ("000000000000", "orders")
        );
        for bad in [
            "arn:aws:sqs:us-east-1:000000000000:orders",
            "arn:aws:sns:us-east-1:0000:orders",
            "arn:aws:sns:us-east-1:000000000000:bad name",
            "orders",
        ] {
            assert_eq!(
                parse_topic_arn(bad, "TopicArn").unwrap_err().code,
                ErrorCode::Sns(SnsError::InvalidParameter),
                "{bad}"
            );
        }
    }
}
