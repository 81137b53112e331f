//! SNS's error codes. SNS speaks the query protocol only, so a client sees the code in
//! `ErrorResponse/Error/Code` of an XML document (`NotFound`, `InvalidParameter`,
//! `AuthorizationError`, ...), with the HTTP status each has.

/// An SNS error: its code and its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsError {
    /// A topic, subscription or endpoint that does not exist.
    NotFound,
    /// A request parameter that does not meet its constraints.
    InvalidParameter,
    /// A parameter value (a message attribute, a filter policy) that is not valid.
    InvalidParameterValue,
    /// The caller may not do this.
    AuthorizationError,
    TopicLimitExceeded,
    SubscriptionLimitExceeded,
    TagLimitExceeded,
    /// A tag key or value that is not valid.
    TagPolicy,
    BatchEntryIdsNotDistinct,
    EmptyBatchRequest,
    InvalidBatchEntryId,
    TooManyEntriesInBatchRequest,
    BatchRequestTooLong,
    /// The server failed.
    InternalError,
}

impl SnsError {
    pub fn code(self) -> &'static str {
        match self {
            SnsError::NotFound => "NotFound",
            SnsError::InvalidParameter => "InvalidParameter",
            SnsError::InvalidParameterValue => "ParameterValueInvalid",
            SnsError::AuthorizationError => "AuthorizationError",
            SnsError::TopicLimitExceeded => "TopicLimitExceeded",
            SnsError::SubscriptionLimitExceeded => "SubscriptionLimitExceeded",
            SnsError::TagLimitExceeded => "TagLimitExceeded",
            SnsError::TagPolicy => "TagPolicy",
            SnsError::BatchEntryIdsNotDistinct => "BatchEntryIdsNotDistinct",
            SnsError::EmptyBatchRequest => "EmptyBatchRequest",
            SnsError::InvalidBatchEntryId => "InvalidBatchEntryId",
            SnsError::TooManyEntriesInBatchRequest => "TooManyEntriesInBatchRequest",
            SnsError::BatchRequestTooLong => "BatchRequestTooLong",
            SnsError::InternalError => "InternalError",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            SnsError::NotFound => 404,
            SnsError::AuthorizationError
            | SnsError::TopicLimitExceeded
            | SnsError::SubscriptionLimitExceeded => 403,
            SnsError::InternalError => 500,
            _ => 400,
        }
    }
}
