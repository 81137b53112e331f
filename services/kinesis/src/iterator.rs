//! Shard iterators: opaque, tamper-evident, short-lived positions in a shard.
//!
//! An iterator is base64 (standard and padded, as AWS's are) of `version | stream id |
//! shard ordinal | next counter | issued-at ms | name length | stream name |
//! HMAC-SHA256`. The MAC covers the account id too, so an iterator is good only for the
//! account it was issued to. The stream's name lets a read name the stream once it is
//! gone, as AWS's answer does. The key is a server secret in the catalog, shared by
//! every server process. Version 1 iterators (without the name) still open.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use protocol::{ApiError, ErrorCode, limits};

const VERSION: u8 = 2;
/// Iterators issued before they carried the stream's name.
const VERSION_UNNAMED: u8 = 1;
const BODY_BYTES: usize = 1 + 8 + 8 + 8 + 8;
/// Stream names are at most 128 characters (of `[a-zA-Z0-9_.-]`).
const NAME_BYTES_MAX: usize = 128;
const TAG_BYTES: usize = 32;

/// A position in a shard: the counter of the next record to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardPosition {
    pub stream_id: i64,
    pub shard_ordinal: u64,
    pub next_counter: u64,
}

pub struct IteratorKey {
    key: hmac::Key,
    ttl_ms: i64,
}

impl IteratorKey {
    pub fn new(secret: &[u8], ttl_ms: u64) -> IteratorKey {
        IteratorKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            ttl_ms: i64::try_from(ttl_ms).unwrap_or(i64::MAX),
        }
    }

    fn body(position: &ShardPosition, issued_ms: i64) -> [u8; BODY_BYTES] {
        let mut body = [0u8; BODY_BYTES];
        body[0] = VERSION;
        body[1..9].copy_from_slice(&position.stream_id.to_le_bytes());
        body[9..17].copy_from_slice(&position.shard_ordinal.to_le_bytes());
        body[17..25].copy_from_slice(&position.next_counter.to_le_bytes());
        body[25..33].copy_from_slice(&issued_ms.to_le_bytes());
        body
    }

    fn tag(&self, account_id: &str, body: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(account_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(body);
        ctx.sign()
    }

    pub fn issue(
        &self,
        account_id: &str,
        position: &ShardPosition,
        stream_name: &str,
        now_ms: i64,
    ) -> String {
        let name = &stream_name.as_bytes()[..stream_name.len().min(NAME_BYTES_MAX)];
        let mut token = Vec::with_capacity(BODY_BYTES + 1 + name.len() + TAG_BYTES);
        token.extend_from_slice(&Self::body(position, now_ms));
        token.push(name.len() as u8);
        token.extend_from_slice(name);
        let tag = self.tag(account_id, &token);
        token.extend_from_slice(tag.as_ref());
        // Standard base64 with padding, as AWS's iterators are.
        STANDARD.encode(token)
    }

    /// Checks an iterator's integrity, then its age; gives its position and the name of
    /// its stream (`None` for an iterator of the earlier version).
    pub fn open(
        &self,
        account_id: &str,
        iterator: &str,
        now_ms: i64,
    ) -> Result<(ShardPosition, Option<String>), ApiError> {
        if iterator.is_empty() || iterator.len() > limits::SHARD_ITERATOR_CHARS_MAX {
            return Err(ApiError::validation(
                iterator,
                "shardIterator",
                "Member must have length less than or equal to 512",
            ));
        }
        let invalid = || ApiError::invalid_argument("Invalid ShardIterator.");
        // Iterators issued before they were standard base64 (URL-safe, unpadded) still
        // open until they expire.
        let token = STANDARD
            .decode(iterator)
            .or_else(|_| URL_SAFE_NO_PAD.decode(iterator))
            .map_err(|_| invalid())?;
        if token.len() < BODY_BYTES + TAG_BYTES {
            return Err(invalid());
        }
        let (signed, tag) = token.split_at(token.len() - TAG_BYTES);
        let name = match signed[0] {
            VERSION_UNNAMED if signed.len() == BODY_BYTES => None,
            VERSION
                if signed.len() > BODY_BYTES
                    && usize::from(signed[BODY_BYTES]) == signed.len() - BODY_BYTES - 1 =>
            {
                Some(&signed[BODY_BYTES + 1..])
            }
            _ => return Err(invalid()),
        };
        let body = &signed[..BODY_BYTES];
        let mut ctx_input = Vec::with_capacity(account_id.len() + 1 + signed.len());
        ctx_input.extend_from_slice(account_id.as_bytes());
        ctx_input.push(0);
        ctx_input.extend_from_slice(signed);
        // Constant-time comparison.
        hmac::verify(&self.key, &ctx_input, tag).map_err(|_| invalid())?;
        let field = |r: std::ops::Range<usize>| <[u8; 8]>::try_from(&body[r]).expect("8 bytes");
        let position = ShardPosition {
            stream_id: i64::from_le_bytes(field(1..9)),
            shard_ordinal: u64::from_le_bytes(field(9..17)),
            next_counter: u64::from_le_bytes(field(17..25)),
        };
        let issued_ms = i64::from_le_bytes(field(25..33));
        if now_ms.saturating_sub(issued_ms) > self.ttl_ms {
            return Err(ApiError::new(
                ErrorCode::ExpiredIterator,
                format!(
                    "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {} milliseconds.",
                    protocol::clock::java_date(issued_ms),
                    protocol::clock::java_date(now_ms),
                    self.ttl_ms
                ),
            ));
        }
        let name = name.map(|n| String::from_utf8_lossy(n).into_owned());
        Ok((position, name))
    }
}

/// Receipt handles of Kinesis queues: `body | HMAC-SHA256(account, queue, body)[..16]`,
/// URL-safe base64, under the same server secret as iterators, so a handle is good
/// only for the queue and account it was issued for.
const RECEIPT_TAG_BYTES: usize = 16;

impl IteratorKey {
    fn receipt_tag(&self, account_id: &str, queue: &str, body: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"kinesis-queue-receipt\0");
        ctx.update(account_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(queue.as_bytes());
        ctx.update(&[0]);
        ctx.update(body);
        ctx.sign()
    }

    pub fn seal_receipt(&self, account_id: &str, queue: &str, body: &[u8]) -> String {
        let tag = self.receipt_tag(account_id, queue, body);
        let mut token = body.to_vec();
        token.extend_from_slice(&tag.as_ref()[..RECEIPT_TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The body of a receipt this key sealed for this queue, or `None`.
    pub fn open_receipt(&self, account_id: &str, queue: &str, receipt: &str) -> Option<Vec<u8>> {
        if receipt.len() > 1024 {
            return None;
        }
        let token = URL_SAFE_NO_PAD.decode(receipt).ok()?;
        if token.len() <= RECEIPT_TAG_BYTES {
            return None;
        }
        let (body, tag) = token.split_at(token.len() - RECEIPT_TAG_BYTES);
        let expected = self.receipt_tag(account_id, queue, body);
        // Constant-time comparison of the truncated tag.
        aws_lc_rs::constant_time::verify_slices_are_equal(
            &expected.as_ref()[..RECEIPT_TAG_BYTES],
            tag,
        )
        .ok()?;
        Some(body.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any string a client sends as a receipt handle is refused without a panic.
        #[test]
        fn arbitrary_receipts_are_refused(text in ".{0,200}") {
            let key = IteratorKey::new(b"secret", 1_000);
            proptest::prop_assert!(key.open_receipt("111111111111", "q", &text).is_none());
        }
    }

    #[test]
    fn receipts_open_only_for_their_queue_and_account() {
        let key = IteratorKey::new(b"secret", 1_000);
        let r = key.seal_receipt("111111111111", "q", b"body");
        assert_eq!(key.open_receipt("111111111111", "q", &r).unwrap(), b"body");
        assert!(key.open_receipt("111111111111", "other", &r).is_none());
        assert!(key.open_receipt("222222222222", "q", &r).is_none());
        let mut forged = r.clone().into_bytes();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        assert!(
            key.open_receipt("111111111111", "q", &String::from_utf8(forged).unwrap())
                .is_none()
        );
    }

    const POS: ShardPosition = ShardPosition {
        stream_id: 4,
        shard_ordinal: 2,
        next_counter: 99,
    };

    #[test]
    fn round_trips_within_its_lifetime() {
        let key = IteratorKey::new(b"secret", 1_000);
        let it = key.issue("000000000000", &POS, "orders", 10_000);
        assert_eq!(
            key.open("000000000000", &it, 10_500).unwrap(),
            (POS, Some("orders".to_string()))
        );
        // The longest stream name still fits AWS's bound on iterators.
        let long = key.issue("000000000000", &POS, &"a".repeat(128), 10_000);
        assert!(
            long.len() <= limits::SHARD_ITERATOR_CHARS_MAX,
            "{}",
            long.len()
        );
        assert_eq!(key.open("000000000000", &long, 10_000).unwrap().0, POS);
        let err = key.open("000000000000", &it, 11_001).unwrap_err();
        assert_eq!(err.code, ErrorCode::ExpiredIterator);
    }

    #[test]
    fn any_edit_is_invalid() {
        let key = IteratorKey::new(b"secret", 1_000);
        let it = key.issue("000000000000", &POS, "orders", 10_000);
        let bytes = STANDARD.decode(&it).unwrap();
        for i in 0..bytes.len() {
            let mut edited = bytes.clone();
            edited[i] ^= 1;
            let err = key
                .open("000000000000", &STANDARD.encode(&edited), 10_000)
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument, "byte {i}");
        }
        let other_account = key.open("111111111111", &it, 10_000).unwrap_err();
        assert_eq!(other_account.code, ErrorCode::InvalidArgument);
        let other_key = IteratorKey::new(b"other", 1_000);
        assert!(other_key.open("000000000000", &it, 10_000).is_err());
        assert!(key.open("000000000000", "not-base64!", 10_000).is_err());
    }

    #[test]
    fn iterators_of_the_earlier_version_still_open() {
        let key = IteratorKey::new(b"secret", 1_000);
        let mut body = IteratorKey::body(&POS, 10_000).to_vec();
        body[0] = VERSION_UNNAMED;
        let tag = key.tag("000000000000", &body);
        body.extend_from_slice(tag.as_ref());
        let old = STANDARD.encode(&body);
        assert_eq!(key.open("000000000000", &old, 10_000).unwrap(), (POS, None));
    }
}
