//! SQS's error types. SQS speaks JSON 1.0 but is `awsQueryCompatible`: beside the
//! `__type` it sends `x-amzn-query-error: <code>;<Sender|Receiver>`, and the SDKs show
//! that code (the query protocol's, such as `AWS.SimpleQueueService.NonExistentQueue`),
//! so code written against the query API keeps catching what it caught.

/// An SQS error: its JSON `__type`, its query-protocol code and its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqsError {
    QueueDoesNotExist,
    QueueNameExists,
    QueueDeletedRecently,
    InvalidAttributeName,
    InvalidAttributeValue,
    InvalidMessageContents,
    InvalidIdFormat,
    ReceiptHandleIsInvalid,
    MessageNotInflight,
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    TooManyEntriesInBatchRequest,
    PurgeQueueInProgress,
    OverLimit,
    UnsupportedOperation,
    InvalidAddress,
    /// A parameter's value is not one SQS takes (the query protocol's
    /// `InvalidParameterValue`; JSON clients see `InvalidParameterValueException`).
    InvalidParameterValue,
    /// A required parameter is missing.
    MissingParameter,
    /// The caller may not use the queue's KMS key.
    KmsAccessDenied,
    /// The queue's KMS key is disabled.
    KmsDisabled,
    /// The queue's KMS key is not a symmetric encryption key.
    KmsInvalidKeyUsage,
    /// The queue's KMS key is pending deletion or has no material.
    KmsInvalidState,
    /// The queue's KMS key does not exist.
    KmsNotFound,
}

impl SqsError {
    pub fn type_name(self) -> &'static str {
        match self {
            SqsError::QueueDoesNotExist => "QueueDoesNotExist",
            SqsError::QueueNameExists => "QueueNameExists",
            SqsError::QueueDeletedRecently => "QueueDeletedRecently",
            SqsError::InvalidAttributeName => "InvalidAttributeName",
            SqsError::InvalidAttributeValue => "InvalidAttributeValue",
            SqsError::InvalidMessageContents => "InvalidMessageContents",
            SqsError::InvalidIdFormat => "InvalidIdFormat",
            SqsError::ReceiptHandleIsInvalid => "ReceiptHandleIsInvalid",
            SqsError::MessageNotInflight => "MessageNotInflight",
            SqsError::BatchEntryIdsNotDistinct => "BatchEntryIdsNotDistinct",
            SqsError::BatchRequestTooLong => "BatchRequestTooLong",
            SqsError::EmptyBatchRequest => "EmptyBatchRequest",
            SqsError::InvalidBatchEntryId => "InvalidBatchEntryId",
            SqsError::TooManyEntriesInBatchRequest => "TooManyEntriesInBatchRequest",
            SqsError::PurgeQueueInProgress => "PurgeQueueInProgress",
            SqsError::OverLimit => "OverLimit",
            SqsError::UnsupportedOperation => "UnsupportedOperation",
            SqsError::InvalidAddress => "InvalidAddress",
            SqsError::InvalidParameterValue => "InvalidParameterValueException",
            SqsError::MissingParameter => "MissingRequiredParameterException",
            SqsError::KmsAccessDenied => "KmsAccessDenied",
            SqsError::KmsDisabled => "KmsDisabled",
            SqsError::KmsInvalidKeyUsage => "KmsInvalidKeyUsage",
            SqsError::KmsInvalidState => "KmsInvalidState",
            SqsError::KmsNotFound => "KmsNotFound",
        }
    }

    /// The query protocol's code, sent in `x-amzn-query-error`.
    pub fn query_code(self) -> &'static str {
        match self {
            SqsError::QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            SqsError::QueueNameExists => "QueueAlreadyExists",
            SqsError::QueueDeletedRecently => "AWS.SimpleQueueService.QueueDeletedRecently",
            SqsError::MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            SqsError::BatchEntryIdsNotDistinct => "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            SqsError::BatchRequestTooLong => "AWS.SimpleQueueService.BatchRequestTooLong",
            SqsError::EmptyBatchRequest => "AWS.SimpleQueueService.EmptyBatchRequest",
            SqsError::InvalidBatchEntryId => "AWS.SimpleQueueService.InvalidBatchEntryId",
            SqsError::TooManyEntriesInBatchRequest => {
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
            }
            SqsError::PurgeQueueInProgress => "AWS.SimpleQueueService.PurgeQueueInProgress",
            SqsError::UnsupportedOperation => "AWS.SimpleQueueService.UnsupportedOperation",
            SqsError::InvalidParameterValue => "InvalidParameterValue",
            SqsError::MissingParameter => "MissingParameter",
            other => other.type_name(),
        }
    }

    pub fn status(self) -> u16 {
        match self {
            SqsError::OverLimit => 403,
            _ => 400,
        }
    }
}
