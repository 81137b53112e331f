//! Sequence numbers: decimal strings, strictly increasing within a shard.
//!
//! A sequence number is the 128-bit value `shard_ordinal << 64 | counter`, written in
//! decimal as AWS writes its own. The counter is the shard's, assigned in the catalog's
//! commit order, so numbers strictly increase per shard; the shard part lets a server
//! reject a sequence number that belongs to another shard.

use std::fmt;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber(pub u128);

impl SequenceNumber {
    pub fn new(shard_ordinal: u64, counter: u64) -> Self {
        SequenceNumber(u128::from(shard_ordinal) << 64 | u128::from(counter))
    }

    pub fn shard_ordinal(self) -> u64 {
        (self.0 >> 64) as u64
    }

    pub fn counter(self) -> u64 {
        self.0 as u64
    }

    /// Parses a sequence number given by a client. The pattern `0|([1-9]\d{0,128})` is
    /// AWS's; anything that matches it but is not one of ours is an invalid argument.
    pub fn parse(text: &str, member: &str) -> Result<Self, ApiError> {
        let pattern_ok = text == "0"
            || (!text.is_empty()
                && text.len() <= 129
                && !text.starts_with('0')
                && text.bytes().all(|b| b.is_ascii_digit()));
        if !pattern_ok {
            return Err(ApiError::validation(
                text,
                member,
                "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
            ));
        }
        text.parse::<u128>()
            .map(SequenceNumber)
            .map_err(|_| ApiError::invalid_argument(format!("Invalid SequenceNumber {text}.")))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders_within_a_shard() {
        let a = SequenceNumber::new(3, 41);
        let b = SequenceNumber::new(3, 42);
        assert!(a < b);
        let parsed = SequenceNumber::parse(&b.to_string(), "startingSequenceNumber").unwrap();
        assert_eq!(parsed, b);
        assert_eq!(parsed.shard_ordinal(), 3);
        assert_eq!(parsed.counter(), 42);
    }

    #[test]
    fn rejects_what_is_not_a_sequence_number() {
        for bad in ["", "012", "12a", "-5"] {
            assert!(SequenceNumber::parse(bad, "m").is_err(), "{bad}");
        }
        let huge = "9".repeat(60);
        assert_eq!(
            SequenceNumber::parse(&huge, "m").unwrap_err().code,
            crate::ErrorCode::InvalidArgument
        );
    }
}
