//! Partition-key hashing and hash key ranges.
//!
//! Kinesis maps a partition key to a 128-bit integer, the MD5 digest read big-endian,
//! and a record goes to the open shard whose `HashKeyRange` holds that integer.

use md5::{Digest, Md5};

use crate::error::ApiError;

/// A point in the 128-bit hash key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashKey(pub u128);

impl HashKey {
    /// The hash key Kinesis derives from a partition key.
    pub fn of_partition_key(partition_key: &str) -> HashKey {
        let digest = Md5::digest(partition_key.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest);
        HashKey(u128::from_be_bytes(bytes))
    }

    /// Parses an `ExplicitHashKey`: the pattern `0|([1-9]\d{0,38})` is a
    /// `ValidationException`, a value past 2^128 - 1 an `InvalidArgumentException`.
    pub fn parse_explicit(text: &str) -> Result<HashKey, ApiError> {
        Self::parse_member(text, "explicitHashKey", |text| {
            format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {text}"
            )
        })
    }

    /// Parses a hash key member (`ExplicitHashKey`, `NewStartingHashKey`): the pattern
    /// is a `ValidationException` naming `member`, a value past 2^128 - 1 an
    /// `InvalidArgumentException` worded by `out_of_range`.
    pub fn parse_member(
        text: &str,
        member: &str,
        out_of_range: impl FnOnce(&str) -> String,
    ) -> Result<HashKey, ApiError> {
        let pattern_ok = text == "0"
            || (!text.is_empty()
                && text.len() <= 39
                && !text.starts_with('0')
                && text.bytes().all(|b| b.is_ascii_digit()));
        if !pattern_ok {
            return Err(ApiError::validation(
                text,
                member,
                "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
            ));
        }
        text.parse::<u128>()
            .map(HashKey)
            .map_err(|_| ApiError::invalid_argument(out_of_range(text)))
    }
}

/// An inclusive range of hash keys, as a shard owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKeyRange {
    pub starting: HashKey,
    pub ending: HashKey,
}

impl HashKeyRange {
    pub fn contains(&self, key: HashKey) -> bool {
        self.starting <= key && key <= self.ending
    }

    /// Splits the whole key space into `count` contiguous ranges of near-equal size, as
    /// CreateStream does. The last range absorbs the remainder.
    pub fn split_evenly(count: u32) -> Vec<HashKeyRange> {
        assert!(count >= 1, "a stream has at least one shard");
        // AWS's layout: shard i starts at i * floor(2^128 / count). 2^128 does not fit a
        // u128; floor((2^128 - 1) / count) is the same number unless count divides 2^128,
        // that is, unless count is a power of two, where it is one less.
        let width = if count.is_power_of_two() {
            if count == 1 {
                0 // one shard: the whole key space, whatever the width
            } else {
                1u128 << (128 - count.trailing_zeros())
            }
        } else {
            u128::MAX / u128::from(count)
        };
        (0..u128::from(count))
            .map(|i| {
                let starting = i * width;
                let ending = if i + 1 == u128::from(count) {
                    u128::MAX
                } else {
                    (i + 1) * width - 1
                };
                HashKeyRange {
                    starting: HashKey(starting),
                    ending: HashKey(ending),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_space_splits_as_aws_splits_it() {
        // Shard i starts at i * floor(2^128 / n).
        let two = HashKeyRange::split_evenly(2);
        assert_eq!(two[1].starting.0, 1 << 127);
        assert_eq!(two[0].ending.0, (1 << 127) - 1);
        let four = HashKeyRange::split_evenly(4);
        assert_eq!(
            four.iter().map(|r| r.starting.0).collect::<Vec<_>>(),
            vec![0, 1 << 126, 2 << 126, 3 << 126]
        );
        let three = HashKeyRange::split_evenly(3);
        assert_eq!(
            three[1].starting.0,
            113_427_455_640_312_821_154_458_202_477_256_070_485
        );
        assert_eq!(three[2].ending.0, u128::MAX);
        let one = HashKeyRange::split_evenly(1);
        assert_eq!((one[0].starting.0, one[0].ending.0), (0, u128::MAX));
    }

    #[test]
    fn md5_is_read_big_endian() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(
            HashKey::of_partition_key("a").0,
            0x0cc175b9c0f1b6a831c399e269772661
        );
    }

    #[test]
    fn even_split_covers_the_key_space_without_gaps() {
        for count in [1u32, 2, 3, 7, 64, 500] {
            let ranges = HashKeyRange::split_evenly(count);
            assert_eq!(ranges.len(), count as usize);
            assert_eq!(ranges[0].starting.0, 0);
            assert_eq!(ranges.last().unwrap().ending.0, u128::MAX);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].ending.0 + 1, pair[1].starting.0);
                assert!(pair[0].starting <= pair[0].ending);
            }
        }
    }

    #[test]
    fn explicit_hash_key_bounds() {
        assert_eq!(HashKey::parse_explicit("0").unwrap().0, 0);
        let max = u128::MAX.to_string();
        assert_eq!(HashKey::parse_explicit(&max).unwrap().0, u128::MAX);
        let past = "340282366920938463463374607431768211456"; // 2^128
        assert_eq!(
            HashKey::parse_explicit(past).unwrap_err().code,
            crate::ErrorCode::InvalidArgument
        );
        for bad in [
            "",
            "01",
            "-1",
            "1a",
            "1234567890123456789012345678901234567890",
        ] {
            assert_eq!(
                HashKey::parse_explicit(bad).unwrap_err().code,
                crate::ErrorCode::Validation,
                "{bad}"
            );
        }
    }
}
