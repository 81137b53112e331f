//! The door between the gateway and the services. The gateway authenticates a request
//! once and hands the service its `Caller`; the service names what the request acts on
//! (`Resource`) and asks the `Authorizer`, which decides with Cedar and writes the
//! decision to the audit trail before the service touches anything. A service sees
//! nothing else of the gateway: not its keys, its policies or its other services.

use std::future::Future;
use std::pin::Pin;

use catalog::policies::PolicyVersion;
use catalog::{CatalogError, Refusal, RefusalKind};
use protocol::{ApiError, ErrorCode};

/// A future a trait object can return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who made a request, once its signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub principal_arn: String,
    pub access_key_id: String,
    /// Where the request came from; the gateway sets it once it knows the caller.
    pub source_ip: Option<std::net::IpAddr>,
    /// The TLS version of the request's connection, set by the gateway.
    pub tls_version: Option<&'static str>,
    /// The request's id (`x-amzn-RequestId`), set by the gateway.
    pub request_id: String,
}

/// What a request acts on.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// A stream, by its ARN's parts.
    Stream {
        account: &'a str,
        arn: &'a str,
        name: &'a str,
    },
    /// A tenant as a whole (ListStreams, DescribeLimits, CreateKey, ListKeys,
    /// administration).
    Tenant { account: &'a str },
    /// A KMS key, by its key ARN (or the alias ARN a request named it by).
    Key { account: &'a str, arn: &'a str },
    /// A Kinesis queue, by its ARN (`arn:aws:kinesis:<region>:<account>:queue/<name>`).
    Queue { account: &'a str, arn: &'a str },
    /// A Kinesis channel (delivery from a stream to S3), by its ARN
    /// (`arn:aws:kinesis:<region>:<account>:channel/<name>`).
    Channel { account: &'a str, arn: &'a str },
    /// An SQS queue, by its ARN (`arn:aws:sqs:<region>:<account>:<name>`).
    MessageQueue { account: &'a str, arn: &'a str },
    /// An SNS topic, by its ARN (`arn:aws:sns:<region>:<account>:<name>`).
    Topic { account: &'a str, arn: &'a str },
    /// A Firehose delivery stream, by its ARN
    /// (`arn:aws:firehose:<region>:<account>:deliverystream/<name>`).
    DeliveryStream {
        account: &'a str,
        arn: &'a str,
        name: &'a str,
    },
    /// A consumer group of a stream, by its ARN (`<stream ARN>/group/<name>`).
    Group {
        account: &'a str,
        arn: &'a str,
        name: &'a str,
        stream_arn: &'a str,
        stream_name: &'a str,
    },
}

impl Resource<'_> {
    /// The account that owns the resource.
    pub fn account(&self) -> &str {
        match self {
            Resource::Stream { account, .. }
            | Resource::Key { account, .. }
            | Resource::Group { account, .. }
            | Resource::Queue { account, .. }
            | Resource::Channel { account, .. }
            | Resource::MessageQueue { account, .. }
            | Resource::Topic { account, .. }
            | Resource::DeliveryStream { account, .. }
            | Resource::Tenant { account } => account,
        }
    }

    /// The resource as an ARN, as denials and the audit trail name it.
    pub fn arn(&self, action: &str) -> String {
        match self {
            Resource::Stream { arn, .. }
            | Resource::Key { arn, .. }
            | Resource::Group { arn, .. }
            | Resource::Queue { arn, .. }
            | Resource::Channel { arn, .. }
            | Resource::MessageQueue { arn, .. }
            | Resource::Topic { arn, .. }
            | Resource::DeliveryStream { arn, .. } => arn.to_string(),
            Resource::Tenant { account } if action.starts_with("kms:") => {
                format!("arn:aws:kms:*:{account}:*")
            }
            Resource::Tenant { account } if action.starts_with("sqs:") => {
                format!("arn:aws:sqs:*:{account}:*")
            }
            Resource::Tenant { account } if action.starts_with("sns:") => {
                format!("arn:aws:sns:*:{account}:*")
            }
            Resource::Tenant { account } if action.starts_with("firehose:") => {
                format!("arn:aws:firehose:*:{account}:*")
            }
            Resource::Tenant { account } if action.starts_with("sluice:") => {
                format!("arn:aws:iam::{account}:root")
            }
            Resource::Tenant { account } => format!("arn:aws:kinesis:*:{account}:*"),
        }
    }
}

/// What a KMS request carries that a key policy or a grant may condition on; Cedar
/// sees it as `context.encryptionContext` and `context.grantId`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyUse<'a> {
    /// The request's encryption context.
    pub encryption_context: Option<&'a std::collections::BTreeMap<String, String>>,
    /// The grant a RetireGrant names.
    pub grant_id: Option<&'a str>,
}

/// Decides requests and keeps policy documents; the gateway's Cedar authorizer is one.
pub trait Authorizer: Send + Sync {
    /// Allows the caller's request or answers `AccessDeniedException` naming the
    /// action and resource; either way the decision joins the audit trail first.
    fn authorize<'a>(
        &'a self,
        caller: &'a Caller,
        action: &'a str,
        resource: Resource<'a>,
    ) -> BoxFuture<'a, Result<(), ApiError>>;

    /// `authorize` for a use of a KMS key, with what the request says about that use.
    fn authorize_key_use<'a>(
        &'a self,
        caller: &'a Caller,
        action: &'a str,
        resource: Resource<'a>,
        used: KeyUse<'a>,
    ) -> BoxFuture<'a, Result<(), ApiError>>;

    /// Drops what this process remembers of `account`'s permits after the caller
    /// changed them outside `store_policy` (a KMS grant), so the next request sees it.
    fn permits_changed(&self, account: &str);

    /// Stores `body` as the next version of `account`'s policy document `name` once it
    /// validates (`None` deletes the document, which must exist); decisions use it from
    /// the next request on.
    fn store_policy<'a>(
        &'a self,
        caller: &'a Caller,
        account: &'a str,
        name: &'a str,
        body: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PolicyVersion, ApiError>>;
}

/// The wire error of each kind of catalog refusal. Exhaustive, so a new kind cannot
/// reach a caller unmapped; `tests::every_refusal_has_its_wire_error` pins it.
pub fn refusal_code(kind: RefusalKind) -> ErrorCode {
    match kind {
        RefusalKind::Missing => ErrorCode::ResourceNotFound,
        RefusalKind::InUse => ErrorCode::ResourceInUse,
        RefusalKind::OverLimit => ErrorCode::LimitExceeded,
        RefusalKind::BadArgument => ErrorCode::InvalidArgument,
        RefusalKind::Invalid => ErrorCode::Validation,
        RefusalKind::KeyExists => ErrorCode::AlreadyExists,
        RefusalKind::KeyMissing => ErrorCode::NotFound,
        RefusalKind::StreamKeyDisabled => ErrorCode::KmsDisabled,
        RefusalKind::StreamKeyPendingDeletion => ErrorCode::KinesisKmsInvalidState,
        RefusalKind::StreamKeyGone => ErrorCode::KmsNotFound,
        RefusalKind::Conflict => ErrorCode::ConcurrentModification,
    }
}

/// The answer while the server's storage is full: retryable, and saying why.
pub fn storage_full() -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        "The server's storage is full; nothing of this request was written. Retry later.",
    )
}

/// A refusal as the caller reads it.
pub fn refusal_error(refusal: &Refusal) -> ApiError {
    ApiError::new(refusal_code(refusal.kind), refusal.message.clone())
}

/// A catalog error as the caller sees it: a refusal becomes its wire error; a failure
/// is logged here with its cause and answered `InternalFailure`, never described.
pub fn wire_error(error: CatalogError) -> ApiError {
    match &error {
        CatalogError::Refused(refusal) => refusal_error(refusal),
        failure if failure.is_storage_full() => {
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "catalog storage full");
            storage_full()
        }
        CatalogError::Database(_)
        | CatalogError::Migrate(_)
        | CatalogError::UnsupportedUrl { .. }
        | CatalogError::Corrupt { .. } => {
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "catalog failure");
            ApiError::internal()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_wire_error() {
        let expected = [
            (RefusalKind::Missing, "ResourceNotFoundException"),
            (RefusalKind::InUse, "ResourceInUseException"),
            (RefusalKind::OverLimit, "LimitExceededException"),
            (RefusalKind::BadArgument, "InvalidArgumentException"),
            (RefusalKind::Invalid, "ValidationException"),
            (RefusalKind::KeyExists, "AlreadyExistsException"),
            (RefusalKind::KeyMissing, "NotFoundException"),
            (RefusalKind::StreamKeyDisabled, "KMSDisabledException"),
            (
                RefusalKind::StreamKeyPendingDeletion,
                "KMSInvalidStateException",
            ),
            (RefusalKind::StreamKeyGone, "KMSNotFoundException"),
            (RefusalKind::Conflict, "ConcurrentModificationException"),
        ];
        assert_eq!(expected.len(), RefusalKind::ALL.len());
        for (kind, type_name) in expected {
            assert_eq!(refusal_code(kind).type_name(), type_name, "{kind:?}");
        }
        let refusal = Refusal::stream_not_found("orders", "111111111111");
        let wire = wire_error(CatalogError::Refused(refusal));
        assert_eq!(wire.code, ErrorCode::ResourceNotFound);
        assert_eq!(
            wire.message,
            "Stream orders under account 111111111111 not found."
        );
        let failure = wire_error(CatalogError::Corrupt {
            what: "a row".into(),
        });
        assert_eq!(failure.code, ErrorCode::InternalFailure);
        assert!(!failure.message.contains("row"), "causes are never sent");
    }
}
