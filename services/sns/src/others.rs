//! The rest of SNS's model: confirmations, data protection policies, topic
//! permissions, and mobile push and SMS, which this server cannot offer (they need
//! AWS's carrier and push-platform integrations). Listings of those answer empty (there
//! are none), lookups NotFound, and what would make or send one InvalidParameter saying
//! why; each is authorized by Cedar like every other operation.

use edge::Caller;
use protocol::ApiError;
use protocol::sns::SnsError;

use crate::form::Form;
use crate::topics::{
    DATA_PROTECTION_POLICY, check_data_protection_policy, save_attributes, stored_attributes,
    topic_named,
};
use crate::{SnsService, attributes_xml, element, invalid, sns_error};

pub(crate) async fn confirm_subscription(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("TopicArn")?;
    form.required("Token")?;
    topic_named(state, caller, "TopicArn", arn, "sns:ConfirmSubscription").await?;
    // Queue subscriptions are confirmed when made; no confirmation is ever pending.
    Err(invalid("Token"))
}

pub(crate) async fn get_data_protection_policy(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("ResourceArn")?;
    let topic = topic_named(
        state,
        caller,
        "ResourceArn",
        arn,
        "sns:GetDataProtectionPolicy",
    )
    .await?;
    let policy = stored_attributes(&topic)
        .remove(DATA_PROTECTION_POLICY)
        .unwrap_or_default();
    Ok(element("DataProtectionPolicy", &policy))
}

pub(crate) async fn put_data_protection_policy(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
) -> Result<String, ApiError> {
    let arn = form.required("ResourceArn")?;
    let policy = form.required("DataProtectionPolicy")?;
    check_data_protection_policy(policy)?;
    let topic = topic_named(
        state,
        caller,
        "ResourceArn",
        arn,
        "sns:PutDataProtectionPolicy",
    )
    .await?;
    let mut attributes = stored_attributes(&topic);
    attributes.insert(DATA_PROTECTION_POLICY.to_string(), policy.to_string());
    save_attributes(state, &topic, &attributes).await?;
    Ok(String::new())
}

/// AddPermission and RemovePermission edit a topic's IAM policy, which Sluice does not
/// keep: Cedar policies decide who may use a topic.
pub(crate) async fn permission(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
    action: &str,
) -> Result<String, ApiError> {
    let arn = form.required("TopicArn")?;
    form.required("Label")?;
    topic_named(state, caller, "TopicArn", arn, action).await?;
    Err(invalid(
        "Policy Reason: topic policies are not supported by this server; Cedar policies decide who may use a topic (sluice policy put)",
    ))
}

fn push_unavailable() -> ApiError {
    invalid("mobile push (platform applications and endpoints) is not available from this server")
}

fn sms_unavailable() -> ApiError {
    invalid("SMS is not available from this server")
}

/// Mobile push and SMS: Cedar first (on the tenant), then the answer a server without
/// them gives.
pub(crate) async fn unavailable(
    state: &SnsService,
    caller: &Caller,
    form: &Form,
    action: &str,
) -> Result<String, ApiError> {
    state
        .authorize_tenant(caller, &format!("sns:{action}"))
        .await?;
    let none = || {
        sns_error(
            SnsError::NotFound,
            "No such platform application or endpoint",
        )
    };
    match action {
        "ListPlatformApplications" => Ok("<PlatformApplications></PlatformApplications>".into()),
        "ListEndpointsByPlatformApplication" => {
            form.required("PlatformApplicationArn")?;
            Err(none())
        }
        "GetEndpointAttributes" | "SetEndpointAttributes" => {
            form.required("EndpointArn")?;
            Err(none())
        }
        "GetPlatformApplicationAttributes" | "SetPlatformApplicationAttributes" => {
            form.required("PlatformApplicationArn")?;
            Err(none())
        }
        // Deleting what does not exist succeeds, as on AWS.
        "DeleteEndpoint" | "DeletePlatformApplication" => Ok(String::new()),
        "CreatePlatformApplication" | "CreatePlatformEndpoint" => Err(push_unavailable()),
        "GetSMSAttributes" => Ok(attributes_xml(std::iter::empty())),
        "ListPhoneNumbersOptedOut" => Ok("<phoneNumbers></phoneNumbers>".into()),
        "ListSMSSandboxPhoneNumbers" => Ok("<PhoneNumbers></PhoneNumbers>".into()),
        "ListOriginationNumbers" => Ok("<PhoneNumbers></PhoneNumbers>".into()),
        "GetSMSSandboxAccountStatus" => Ok(element("IsInSandbox", "true")),
        _ => Err(sms_unavailable()),
    }
}

/// The operations `unavailable` answers.
pub(crate) const UNAVAILABLE: [&str; 21] = [
    "CreatePlatformApplication",
    "CreatePlatformEndpoint",
    "DeleteEndpoint",
    "DeletePlatformApplication",
    "GetEndpointAttributes",
    "GetPlatformApplicationAttributes",
    "ListEndpointsByPlatformApplication",
    "ListPlatformApplications",
    "SetEndpointAttributes",
    "SetPlatformApplicationAttributes",
    "CheckIfPhoneNumberIsOptedOut",
    "GetSMSAttributes",
    "SetSMSAttributes",
    "ListPhoneNumbersOptedOut",
    "OptInPhoneNumber",
    "GetSMSSandboxAccountStatus",
    "CreateSMSSandboxPhoneNumber",
    "DeleteSMSSandboxPhoneNumber",
    "VerifySMSSandboxPhoneNumber",
    "ListSMSSandboxPhoneNumbers",
    "ListOriginationNumbers",
];
