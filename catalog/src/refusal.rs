//! Why the catalog refused a request, in its own terms. A refusal carries the words a
//! caller should read (they follow AWS's, since clients show them); which wire error
//! it becomes is decided by the service that asked (`edge::wire_error`), never here.

/// The kinds of refusal, closed: a service maps each one exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// What the request names does not exist (a stream, shard, consumer, tenant,
    /// principal, access key, policy document).
    Missing,
    /// It exists, but its state forbids the request (a stream being created or deleted,
    /// a name taken, a principal that still has keys).
    InUse,
    /// An account, stream, tenant or key limit is reached.
    OverLimit,
    /// A member's value cannot be used here.
    BadArgument,
    /// A member fails its documented constraint.
    Invalid,
    /// A KMS key or alias of that name exists already.
    KeyExists,
    /// A KMS key or alias does not exist.
    KeyMissing,
    /// A stream's master key is disabled.
    StreamKeyDisabled,
    /// A stream's master key is pending deletion.
    StreamKeyPendingDeletion,
    /// A stream's master key is deleted.
    StreamKeyGone,
    /// The request names a version of the resource that is no longer current.
    Conflict,
}

impl RefusalKind {
    /// Every kind, for tests that pin a service's mapping.
    pub const ALL: [RefusalKind; 11] = [
        RefusalKind::Missing,
        RefusalKind::InUse,
        RefusalKind::OverLimit,
        RefusalKind::BadArgument,
        RefusalKind::Invalid,
        RefusalKind::KeyExists,
        RefusalKind::KeyMissing,
        RefusalKind::StreamKeyDisabled,
        RefusalKind::StreamKeyPendingDeletion,
        RefusalKind::StreamKeyGone,
        RefusalKind::Conflict,
    ];
}

/// A refusal and the message the caller reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub kind: RefusalKind,
    pub message: String,
}

impl Refusal {
    pub fn new(kind: RefusalKind, message: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            message: message.into(),
        }
    }

    pub fn missing(message: impl Into<String>) -> Refusal {
        Refusal::new(RefusalKind::Missing, message)
    }

    pub fn bad_argument(message: impl Into<String>) -> Refusal {
        Refusal::new(RefusalKind::BadArgument, message)
    }

    /// A stream of the account that does not exist, in Kinesis's words.
    pub fn stream_not_found(stream: &str, account: &str) -> Refusal {
        Refusal::missing(format!(
            "Stream {stream} under account {account} not found."
        ))
    }

    /// One failed member constraint, worded as AWS's validation layer words it.
    pub fn validation(value: impl std::fmt::Display, member: &str, constraint: &str) -> Refusal {
        Refusal::new(
            RefusalKind::Invalid,
            format!(
                "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
            ),
        )
    }
}
