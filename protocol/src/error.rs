//! The closed set of error types Sluice answers with, named as AWS names them.

use std::fmt;

/// Every error a client can see. Clients branch on the `__type` name, so the names are
/// AWS's, letter for letter. Kinesis's and KMS's (`TrentService`) share this one set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    AccessDenied,
    AlreadyExists,
    /// Firehose: UpdateDestination named a version that is no longer current.
    ConcurrentModification,
    Disabled,
    ExpiredIterator,
    ExpiredNextToken,
    ExpiredToken,
    IncompleteSignature,
    IncorrectKey,
    InternalFailure,
    /// The query protocol's answer to an `Action` the endpoint does not serve.
    InvalidAction,
    InvalidArgument,
    InvalidCiphertext,
    /// KMS: a grant token that names no grant.
    InvalidGrantToken,
    /// KMS ImportKeyMaterial: a token that is not one of the key's.
    InvalidImportToken,
    /// KMS ImportKeyMaterial: a token past its ParametersValidTo.
    ExpiredImportToken,
    /// KMS ImportKeyMaterial: material that is not what the key had, or not a key.
    IncorrectKeyMaterial,
    InvalidKeyUsage,
    /// Firehose: the KMS key a delivery stream names cannot be used.
    InvalidKmsResource,
    InvalidMarker,
    InvalidSignature,
    /// Kinesis's answer when the stream's KMS key is disabled.
    KmsDisabled,
    /// KMS's answer for a key in the wrong state (409).
    KmsInvalidState,
    /// KMS Verify: the signature is not the key's over the message.
    KmsInvalidSignature,
    /// KMS VerifyMac: the MAC is not the key's over the message.
    KmsInvalidMac,
    /// Kinesis's answer for a stream whose KMS key is in the wrong state (400); the
    /// same `__type` as KMS's, another status.
    KinesisKmsInvalidState,
    /// Kinesis's answer when the stream's KMS key does not exist (any more).
    KmsNotFound,
    LimitExceeded,
    /// Consumer groups: the member is out of the group, or the lease it names was
    /// handed to another member (its checkpoint is refused).
    LeaseLost,
    /// KMS: a key policy that does not parse or validate.
    MalformedPolicyDocument,
    MissingAuthenticationToken,
    /// KMS: an alias in the reserved `alias/aws/` space.
    NotAuthorized,
    NotFound,
    ProvisionedThroughputExceeded,
    /// A request body that did not arrive in time (408).
    RequestTimeout,
    ResourceInUse,
    ResourceNotFound,
    SerializationException,
    ServiceUnavailable,
    /// KMS's answer for a tag it cannot take (a bad key or value, a reserved prefix).
    Tag,
    UnknownOperation,
    UnrecognizedClient,
    UnsupportedOperation,
    Validation,
    /// SQS's own errors (`crate::sqs`).
    Sqs(crate::sqs::SqsError),
    /// SNS's own errors (`crate::sns`).
    Sns(crate::sns::SnsError),
}

impl ErrorCode {
    /// The `__type` AWS sends for this error.
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::AlreadyExists => "AlreadyExistsException",
            ErrorCode::ConcurrentModification => "ConcurrentModificationException",
            ErrorCode::InvalidKmsResource => "InvalidKMSResourceException",
            ErrorCode::Disabled => "DisabledException",
            ErrorCode::ExpiredIterator => "ExpiredIteratorException",
            ErrorCode::ExpiredNextToken => "ExpiredNextTokenException",
            ErrorCode::ExpiredToken => "ExpiredTokenException",
            ErrorCode::IncompleteSignature => "IncompleteSignatureException",
            ErrorCode::IncorrectKey => "IncorrectKeyException",
            ErrorCode::InternalFailure => "InternalFailure",
            ErrorCode::InvalidArgument => "InvalidArgumentException",
            ErrorCode::InvalidCiphertext => "InvalidCiphertextException",
            ErrorCode::InvalidGrantToken => "InvalidGrantTokenException",
            ErrorCode::InvalidImportToken => "InvalidImportTokenException",
            ErrorCode::ExpiredImportToken => "ExpiredImportTokenException",
            ErrorCode::IncorrectKeyMaterial => "IncorrectKeyMaterialException",
            ErrorCode::InvalidKeyUsage => "InvalidKeyUsageException",
            ErrorCode::InvalidMarker => "InvalidMarkerException",
            ErrorCode::InvalidSignature => "InvalidSignatureException",
            ErrorCode::KmsDisabled => "KMSDisabledException",
            ErrorCode::KmsInvalidState | ErrorCode::KinesisKmsInvalidState => {
                "KMSInvalidStateException"
            }
            ErrorCode::KmsNotFound => "KMSNotFoundException",
            ErrorCode::KmsInvalidSignature => "KMSInvalidSignatureException",
            ErrorCode::KmsInvalidMac => "KMSInvalidMacException",
            ErrorCode::LimitExceeded => "LimitExceededException",
            ErrorCode::LeaseLost => "LeaseLostException",
            ErrorCode::MalformedPolicyDocument => "MalformedPolicyDocumentException",
            ErrorCode::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorCode::NotAuthorized => "NotAuthorizedException",
            ErrorCode::NotFound => "NotFoundException",
            ErrorCode::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorCode::ResourceInUse => "ResourceInUseException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::SerializationException => "SerializationException",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::Tag => "TagException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::RequestTimeout => "RequestTimeoutException",
            ErrorCode::InvalidAction => "InvalidAction",
            ErrorCode::UnrecognizedClient => "UnrecognizedClientException",
            ErrorCode::UnsupportedOperation => "UnsupportedOperationException",
            ErrorCode::Validation => "ValidationException",
            ErrorCode::Sqs(e) => e.type_name(),
            ErrorCode::Sns(e) => e.code(),
        }
    }

    /// The HTTP status AWS sends with this error.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Sqs(e) => e.status(),
            ErrorCode::Sns(e) => e.status(),
            ErrorCode::InternalFailure => 500,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::RequestTimeout => 408,
            // KMS answers a key in the wrong state with 409 Conflict.
            ErrorCode::Disabled | ErrorCode::KmsInvalidState => 409,
            // Kinesis answers its authentication failures with 400, not 403.
            ErrorCode::MissingAuthenticationToken
            | ErrorCode::IncompleteSignature
            | ErrorCode::InvalidSignature
            | ErrorCode::UnrecognizedClient
            | ErrorCode::ExpiredToken
            | ErrorCode::AccessDenied
            | ErrorCode::ExpiredIterator
            | ErrorCode::ExpiredNextToken
            | ErrorCode::InvalidArgument
            | ErrorCode::LimitExceeded
            | ErrorCode::LeaseLost
            | ErrorCode::ProvisionedThroughputExceeded
            | ErrorCode::ResourceInUse
            | ErrorCode::ResourceNotFound
            | ErrorCode::SerializationException
            | ErrorCode::UnknownOperation
            | ErrorCode::Tag
            | ErrorCode::InvalidAction
            | ErrorCode::Validation
            | ErrorCode::AlreadyExists
            | ErrorCode::ConcurrentModification
            | ErrorCode::InvalidKmsResource
            | ErrorCode::IncorrectKey
            | ErrorCode::InvalidCiphertext
            | ErrorCode::InvalidKeyUsage
            | ErrorCode::InvalidGrantToken
            | ErrorCode::InvalidImportToken
            | ErrorCode::ExpiredImportToken
            | ErrorCode::IncorrectKeyMaterial
            | ErrorCode::MalformedPolicyDocument
            | ErrorCode::InvalidMarker
            | ErrorCode::NotFound
            | ErrorCode::NotAuthorized
            | ErrorCode::UnsupportedOperation
            | ErrorCode::KmsDisabled
            | ErrorCode::KinesisKmsInvalidState
            | ErrorCode::KmsInvalidSignature
            | ErrorCode::KmsInvalidMac
            | ErrorCode::KmsNotFound => 400,
        }
    }
}

/// An error as the caller sees it: a type and a message. Internal causes are logged by
/// the server and never put into `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.type_name(), self.message)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::InternalFailure, "An internal error occurred.")
    }

    /// One failed member constraint, worded as AWS's validation layer words it.
    pub fn validation(value: impl fmt::Display, member: &str, constraint: &str) -> Self {
        Self::new(
            ErrorCode::Validation,
            format!(
                "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
            ),
        )
    }

    /// Kinesis's text for a request that would take the account past its shard limit.
    pub fn shard_limit_text(
        account: &str,
        region: &str,
        current: i64,
        limit: i64,
        additional: i64,
    ) -> String {
        format!(
            "This request would exceed the shard limit for the account {account} in {region}. Current shard count for the account: {current}. Limit: {limit}. Number of additional shards that would have resulted from this request: {additional}. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits."
        )
    }

    pub fn stream_not_found(stream: &str, account: &str) -> Self {
        Self::new(
            ErrorCode::ResourceNotFound,
            format!("Stream {stream} under account {account} not found."),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_and_statuses_are_awss() {
        let cases = [
            (
                ErrorCode::ResourceNotFound,
                "ResourceNotFoundException",
                400,
            ),
            (ErrorCode::Validation, "ValidationException", 400),
            (ErrorCode::InternalFailure, "InternalFailure", 500),
            (ErrorCode::ServiceUnavailable, "ServiceUnavailable", 503),
            (
                ErrorCode::MissingAuthenticationToken,
                "MissingAuthenticationTokenException",
                400,
            ),
            (ErrorCode::Disabled, "DisabledException", 409),
            (ErrorCode::KmsInvalidState, "KMSInvalidStateException", 409),
            (ErrorCode::NotFound, "NotFoundException", 400),
            (ErrorCode::KmsDisabled, "KMSDisabledException", 400),
            (
                ErrorCode::KinesisKmsInvalidState,
                "KMSInvalidStateException",
                400,
            ),
            (ErrorCode::KmsNotFound, "KMSNotFoundException", 400),
            (
                ErrorCode::InvalidCiphertext,
                "InvalidCiphertextException",
                400,
            ),
            (ErrorCode::AlreadyExists, "AlreadyExistsException", 400),
            (
                ErrorCode::ConcurrentModification,
                "ConcurrentModificationException",
                400,
            ),
            (
                ErrorCode::InvalidKmsResource,
                "InvalidKMSResourceException",
                400,
            ),
            (ErrorCode::InvalidAction, "InvalidAction", 400),
            (ErrorCode::LeaseLost, "LeaseLostException", 400),
            (ErrorCode::RequestTimeout, "RequestTimeoutException", 408),
            (
                ErrorCode::ProvisionedThroughputExceeded,
                "ProvisionedThroughputExceededException",
                400,
            ),
        ];
        for (code, name, status) in cases {
            assert_eq!(code.type_name(), name);
            assert_eq!(code.status(), status);
        }
    }
}
