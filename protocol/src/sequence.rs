//! Sequence numbers: 56-digit decimal strings, strictly increasing within a shard.
//!
//! Sluice writes sequence numbers in the layout AWS's own have (as the public emulator
//! suites recorded it): read as hexadecimal, 47 digits,
//!
//! ```text
//! 2 | shard created, s (9) | shard index, low digit (1) | counter (16) | 00 |
//!   record time, s (9) | shard index (8) | 2 (the layout's version)
//! ```
//!
//! which is 56 decimal digits. Within a shard the creation time and index are fixed and
//! the counter (assigned in the catalog's commit order) is the most significant part
//! that varies, so numbers strictly increase per shard. The record time is the record's
//! arrival second; a shard's starting number has the shard's creation second and counter
//! 0, its ending number (once closed) the closing second and counter 2^63 - 1, as AWS's
//! do. A position that is not a record (a group's checkpoint, a subscription's
//! continuation) carries the largest time, so it sorts after the record it follows and
//! before the next one.
//!
//! Earlier versions wrote `shard_ordinal << 64 | counter` in decimal (below 2^128);
//! those are still read, so positions clients saved then keep working.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::ApiError;

/// The counter of a closed shard's ending sequence number, as AWS writes it.
pub const END_COUNTER: u64 = i64::MAX as u64;
/// The time of a position that is not a record (see the module's notes).
const POSITION_TIME_S: u64 = 0xffff_ffff;
/// AWS refuses creation times from this second on (the suites record it).
const CREATED_S_MAX: u64 = 16_025_175_000;

/// A position in a shard. Two sequence numbers are equal, and order, by shard and
/// counter alone; the times only shape the text.
#[derive(Debug, Clone, Copy)]
pub struct SequenceNumber {
    shard_ordinal: u64,
    counter: u64,
    shard_created_s: u64,
    time_s: u64,
}

impl SequenceNumber {
    /// A record's sequence number.
    pub fn record(
        shard_ordinal: u64,
        counter: u64,
        shard_created_ms: i64,
        arrival_ms: i64,
    ) -> Self {
        SequenceNumber {
            shard_ordinal,
            counter,
            shard_created_s: seconds(shard_created_ms),
            time_s: seconds(arrival_ms),
        }
    }

    /// Precedes every record of a shard.
    pub fn shard_start(shard_ordinal: u64, shard_created_ms: i64) -> Self {
        let created = seconds(shard_created_ms);
        SequenceNumber {
            shard_ordinal,
            counter: 0,
            shard_created_s: created,
            time_s: created,
        }
    }

    /// Follows every record of a closed shard.
    pub fn shard_end(shard_ordinal: u64, shard_created_ms: i64, closed_ms: i64) -> Self {
        SequenceNumber {
            shard_ordinal,
            counter: END_COUNTER,
            shard_created_s: seconds(shard_created_ms),
            time_s: seconds(closed_ms),
        }
    }

    /// The position just after record `counter` of a shard, where no record's own
    /// number is at hand (a checkpoint, a continuation).
    pub fn position(shard_ordinal: u64, counter: u64, shard_created_ms: i64) -> Self {
        SequenceNumber {
            shard_ordinal,
            counter,
            shard_created_s: seconds(shard_created_ms),
            time_s: POSITION_TIME_S,
        }
    }

    pub fn shard_ordinal(self) -> u64 {
        self.shard_ordinal
    }

    pub fn counter(self) -> u64 {
        self.counter
    }

    /// The second a record's number carries (its arrival); `None` for a number in the
    /// earlier layout or a position that is not a record.
    pub fn record_time_s(self) -> Option<i64> {
        if self.shard_created_s == 0 || self.time_s == POSITION_TIME_S {
            return None;
        }
        i64::try_from(self.time_s).ok()
    }

    /// Shard and counter in one number, for identifiers Sluice makes from a position.
    pub fn packed(self) -> u128 {
        u128::from(self.shard_ordinal) << 64 | u128::from(self.counter)
    }

    /// The shard id the number encodes, as AWS names it in its messages (a shard index
    /// with its top bit set reads as negative there).
    pub fn encoded_shard_id(self) -> String {
        match i32::try_from(self.shard_ordinal) {
            Ok(ix) => format!("shardId-{ix:012}"),
            Err(_) => match u32::try_from(self.shard_ordinal) {
                Ok(raw) => format!("shardId--{:011}", -i64::from(raw as i32)),
                Err(_) => format!("shardId-{}", self.shard_ordinal),
            },
        }
    }

    /// Checks a client's sequence number against AWS's pattern `0|([1-9]\d{0,128})`.
    pub fn check_pattern(text: &str, member: &str) -> Result<(), ApiError> {
        let pattern_ok = text == "0"
            || (!text.is_empty()
                && text.len() <= 129
                && !text.starts_with('0')
                && text.bytes().all(|b| b.is_ascii_digit()));
        if pattern_ok {
            Ok(())
        } else {
            Err(ApiError::validation(
                text,
                member,
                "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
            ))
        }
    }

    /// Reads a sequence number in either of Sluice's layouts; `None` when the text (which
    /// passed `check_pattern`) is neither.
    pub fn decode(text: &str) -> Option<Self> {
        let value = Wide::from_decimal(text)?;
        // Shard indexes are below 2^31, so an earlier number is below 2^95.
        if let Some(old) = value.to_u128().filter(|&v| v < 1 << 95) {
            return Some(SequenceNumber {
                shard_ordinal: (old >> 64) as u64,
                counter: old as u64,
                shard_created_s: 0,
                time_s: 0,
            });
        }
        let hex = value.to_hex();
        if hex.len() != 47 || !hex.starts_with('2') || !hex.ends_with('2') {
            return None;
        }
        let field = |from: usize, to: usize| u64::from_str_radix(&hex[from..to], 16).ok();
        let shard_created_s = field(1, 10)?;
        let counter = field(11, 27)?;
        if shard_created_s >= CREATED_S_MAX || counter > END_COUNTER {
            return None;
        }
        Some(SequenceNumber {
            shard_ordinal: field(38, 46)?,
            counter,
            shard_created_s,
            time_s: field(29, 38)?,
        })
    }

    /// Whether PutRecord takes `text` as its SequenceNumberForOrdering: a number of
    /// Sluice's, or one in the earlier layout AWS also accepts there (version 1).
    pub fn orders(text: &str) -> bool {
        Self::decode(text).is_some()
            || Wide::from_decimal(text).is_some_and(|v| {
                let hex = v.to_hex();
                hex.len() == 47 && hex.starts_with('2') && hex.ends_with('1')
            })
    }

    /// Parses a sequence number given by a client: a pattern mismatch is a validation
    /// error, a number that is not one of Sluice's an invalid argument.
    pub fn parse(text: &str, member: &str) -> Result<Self, ApiError> {
        Self::check_pattern(text, member)?;
        Self::decode(text)
            .ok_or_else(|| ApiError::invalid_argument(format!("Invalid SequenceNumber {text}.")))
    }
}

fn seconds(ms: i64) -> u64 {
    u64::try_from(ms.div_euclid(1000)).unwrap_or(0)
}

impl PartialEq for SequenceNumber {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SequenceNumber {}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.shard_ordinal, self.counter).cmp(&(other.shard_ordinal, other.counter))
    }
}

impl Hash for SequenceNumber {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.shard_ordinal, self.counter).hash(state);
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ix = self.shard_ordinal & 0xffff_ffff;
        let hex = format!(
            "2{:09x}{:x}{:016x}00{:09x}{:08x}2",
            self.shard_created_s & 0xf_ffff_ffff,
            ix & 0xf,
            self.counter & END_COUNTER,
            self.time_s & 0xf_ffff_ffff,
            ix,
        );
        let wide = Wide::from_hex(&hex).expect("47 hexadecimal digits fit");
        f.write_str(&wide.to_decimal())
    }
}

/// An unsigned integer of up to 256 bits, in little-endian 32-bit limbs: enough for
/// the 47 hexadecimal (56 decimal) digits of a sequence number, and for telling a
/// longer number apart.
#[derive(Default, Clone, Copy)]
struct Wide([u32; 8]);

impl Wide {
    /// `self * m + a`; `None` on overflow.
    fn mul_add(mut self, m: u32, a: u32) -> Option<Self> {
        let mut carry = u64::from(a);
        for limb in self.0.iter_mut() {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        (carry == 0).then_some(self)
    }

    /// Divides in place and returns the remainder.
    fn div_rem(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter_mut().rev() {
            let v = rem << 32 | u64::from(*limb);
            *limb = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        rem as u32
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|&l| l == 0)
    }

    fn from_digits(text: &str, radix: u32) -> Option<Self> {
        text.chars()
            .try_fold(Wide::default(), |w, c| w.mul_add(radix, c.to_digit(radix)?))
    }

    fn from_decimal(text: &str) -> Option<Self> {
        Self::from_digits(text, 10)
    }

    fn from_hex(text: &str) -> Option<Self> {
        Self::from_digits(text, 16)
    }

    fn to_digits(mut self, radix: u32) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let mut digits = Vec::new();
        while !self.is_zero() {
            let d = self.div_rem(radix);
            digits.push(char::from_digit(d, radix).expect("a digit below the radix"));
        }
        digits.iter().rev().collect()
    }

    /// Nine decimal digits a division: every record GetRecords returns is written
    /// through this, so it takes 7 divisions of the limbs, not 56.
    fn to_decimal(mut self) -> String {
        const CHUNK: u32 = 1_000_000_000;
        let mut chunks = Vec::with_capacity(8);
        loop {
            chunks.push(self.div_rem(CHUNK));
            if self.is_zero() {
                break;
            }
        }
        let mut out = chunks.pop().expect("one chunk at least").to_string();
        for c in chunks.iter().rev() {
            out.push_str(&format!("{c:09}"));
        }
        out
    }

    fn to_hex(self) -> String {
        self.to_digits(16)
    }

    fn to_u128(self) -> Option<u128> {
        if self.0[4..].iter().any(|&l| l != 0) {
            return None;
        }
        Some(
            self.0[..4]
                .iter()
                .rev()
                .fold(0u128, |v, &l| v << 32 | u128::from(l)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATED_MS: i64 = 1_764_000_000_123;

    #[test]
    fn a_record_number_has_aws_layout_and_round_trips() {
        let seq = SequenceNumber::record(3, 41, CREATED_MS, CREATED_MS + 5_000);
        let text = seq.to_string();
        assert_eq!(text.len(), 56, "{text}");
        let hex = Wide::from_decimal(&text).unwrap().to_hex();
        assert_eq!(hex.len(), 47);
        assert_eq!(&hex[..1], "2");
        assert_eq!(u64::from_str_radix(&hex[1..10], 16).unwrap(), 1_764_000_000);
        assert_eq!(&hex[10..11], "3");
        assert_eq!(u64::from_str_radix(&hex[11..27], 16).unwrap(), 41);
        assert_eq!(&hex[27..29], "00");
        assert_eq!(
            u64::from_str_radix(&hex[29..38], 16).unwrap(),
            1_764_000_005
        );
        assert_eq!(&hex[38..], "000000032");
        let back = SequenceNumber::parse(&text, "m").unwrap();
        assert_eq!((back.shard_ordinal(), back.counter()), (3, 41));
        assert_eq!(back.to_string(), text, "the times survive a round trip");
    }

    #[test]
    fn numbers_order_within_a_shard_by_counter_and_positions_sit_between_records() {
        let at = |c: u64| SequenceNumber::record(7, c, CREATED_MS, CREATED_MS + 60_000 - c as i64);
        let big = |s: SequenceNumber| Wide::from_decimal(&s.to_string()).unwrap().to_hex();
        // Texts of the same length compare as numbers do.
        assert!(
            big(at(1)) < big(at(2)),
            "a later record sorts after, whatever its second"
        );
        let start = SequenceNumber::shard_start(7, CREATED_MS);
        let after_1 = SequenceNumber::position(7, 1, CREATED_MS);
        let end = SequenceNumber::shard_end(7, CREATED_MS, CREATED_MS + 90_000);
        assert!(big(start) < big(at(1)));
        assert!(big(at(1)) < big(after_1) && big(after_1) < big(at(2)));
        assert!(big(at(2)) < big(end));
        assert_eq!(
            SequenceNumber::decode(&end.to_string()).unwrap().counter(),
            END_COUNTER
        );
        // Equality is by position alone.
        assert_eq!(after_1, at(1));
    }

    #[test]
    fn the_shard_index_differs_where_aws_puts_it() {
        // Two shards made together: their starting numbers differ by 2^144 + 16 per
        // shard index, as the public emulator suites record AWS's do.
        let a = Wide::from_decimal(&SequenceNumber::shard_start(0, CREATED_MS).to_string());
        let b = Wide::from_decimal(&SequenceNumber::shard_start(1, CREATED_MS).to_string());
        let (a, b) = (a.unwrap().to_u256(), b.unwrap().to_u256());
        assert_eq!(sub(b, a), "22300745198530623141535718272648361505980432");
    }

    #[test]
    fn decimal_text_agrees_with_digit_by_digit_division() {
        for hex in [
            "0",
            "1",
            "3b9aca00",
            "3b9ac9ff",
            "20000000000000000000000000000000000000000000002",
            "2ffffffffff7fffffffffffffff000000000007fffffff2",
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ] {
            let w = Wide::from_hex(hex).unwrap();
            assert_eq!(w.to_decimal(), w.to_digits(10), "{hex}");
        }
    }

    #[test]
    fn earlier_numbers_are_still_read() {
        let old = (u128::from(3u64) << 64 | 42).to_string();
        let seq = SequenceNumber::parse(&old, "m").unwrap();
        assert_eq!((seq.shard_ordinal(), seq.counter()), (3, 42));
        assert_eq!(SequenceNumber::parse("5", "m").unwrap().counter(), 5);
    }

    #[test]
    fn rejects_what_is_not_a_sequence_number() {
        for bad in ["", "012", "12a", "-5"] {
            assert_eq!(
                SequenceNumber::parse(bad, "m").unwrap_err().code,
                crate::ErrorCode::Validation,
                "{bad}"
            );
        }
        let hex_of = |h: &str| Wide::from_hex(h).unwrap().to_decimal();
        for bad in [
            "9".repeat(60),
            // The layout's version is not 2, or the first digit is not.
            hex_of("20000000000000000000000000000000000000000000000"),
            hex_of("20000000000000000000000000000000000000000000004"),
            hex_of("30000000000000000000000000000000000000000000001"),
            // A counter with its top bit set; a creation time too far on.
            hex_of("20000000000800000000000000000000000000000000002"),
            hex_of("2ffffffffff7fffffffffffffff000000000007fffffff2"),
            // Between the two layouts, or an earlier one with a shard index past 2^31.
            hex_of("13bb2cc3d8000000000000000000000000"),
            hex_of("13bb2cc3d80000000000000000000000"),
        ] {
            assert_eq!(
                SequenceNumber::parse(&bad, "m").unwrap_err().code,
                crate::ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
        assert!(SequenceNumber::orders(&hex_of(
            "20000000000000000000000000000000000000000000001"
        )));
        assert!(!SequenceNumber::orders(&hex_of(
            "20000000000000000000000000000000000000000000003"
        )));
        let negative = hex_of("20000000000000000000000000000000000000800000002");
        let seq = SequenceNumber::parse(&negative, "m").unwrap();
        assert_eq!(seq.encoded_shard_id(), "shardId--02147483648");
        assert_eq!(
            SequenceNumber::shard_start(5, 0).encoded_shard_id(),
            "shardId-000000000005"
        );
    }

    impl Wide {
        fn to_u256(self) -> [u32; 8] {
            self.0
        }
    }

    fn sub(a: [u32; 8], b: [u32; 8]) -> String {
        let mut out = Wide::default();
        let mut borrow = 0i64;
        for i in 0..8 {
            let v = i64::from(a[i]) - i64::from(b[i]) - borrow;
            borrow = i64::from(v < 0);
            out.0[i] = v.rem_euclid(1 << 32) as u32;
        }
        out.to_decimal()
    }
}
