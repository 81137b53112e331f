//! The Kinesis Data Streams wire protocol, with no I/O: request and response shapes,
//! the AWS error types clients branch on, the documented limits, partition-key hashing,
//! sequence numbers, ARNs, the JSON / CBOR codecs, Signature Version 4 and the clock.
//!
//! INVARIANT: only this crate knows the AWS JSON and CBOR shapes; the servers speak to
//! it in typed values.

pub mod arn;
pub mod checks;
pub mod clock;
pub mod constraints;
pub mod error;
pub mod eventstream;
pub mod hash;
pub mod kms;
pub mod kpl;
pub mod limits;
pub mod model;
pub mod query;
pub mod queues;
pub mod sequence;
pub mod sigv4;
pub mod sns;
pub mod sqs;
pub mod validate;
pub mod wire;

pub use error::{ApiError, ErrorCode};
pub use hash::HashKey;
pub use sequence::SequenceNumber;
