//! The KPL's aggregated-record format: the 4 magic bytes `F3 89 9A C2`, an
//! `AggregatedRecord` protobuf message, and the MD5 of that message. One Kinesis
//! record carries many user records (each with its own partition key), which saves
//! PUT payload units and per-record limits. A record that lacks the magic or whose
//! MD5 does not match is an ordinary record, as the KCL treats it. Producers (the
//! client libraries) aggregate; consumers and Firehose's Kinesis source split.

use md5::{Digest, Md5};
use prost::Message;

pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_BYTES: usize = 16;

#[derive(Clone, PartialEq, prost::Message)]
pub struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(uint64, required, tag = "1")]
    pub partition_key_index: u64,
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "vec", required, tag = "3")]
    pub data: Vec<u8>,
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Tag {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// One user record out of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Vec<u8>,
}

/// The user records of `data` when it is a well-formed aggregate (magic, message,
/// matching MD5, indexes within their tables); `None` for an ordinary record.
pub fn deaggregate(data: &[u8]) -> Option<Vec<UserRecord>> {
    if data.len() < MAGIC.len() + DIGEST_BYTES || data[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (message, digest) = data[MAGIC.len()..].split_at(data.len() - MAGIC.len() - DIGEST_BYTES);
    if Md5::digest(message).as_slice() != digest {
        return None;
    }
    let aggregate = AggregatedRecord::decode(message).ok()?;
    aggregate
        .records
        .into_iter()
        .map(|r| {
            let key = aggregate
                .partition_key_table
                .get(usize::try_from(r.partition_key_index).ok()?)?;
            let hash_key = match r.explicit_hash_key_index {
                None => None,
                Some(i) => Some(
                    aggregate
                        .explicit_hash_key_table
                        .get(usize::try_from(i).ok()?)?
                        .clone(),
                ),
            };
            Some(UserRecord {
                partition_key: key.clone(),
                explicit_hash_key: hash_key,
                data: r.data,
            })
        })
        .collect()
}

/// Collects user records into one aggregate.
#[derive(Debug, Default, Clone)]
pub struct Aggregator {
    message: AggregatedRecord,
}

impl Aggregator {
    pub fn new() -> Aggregator {
        Aggregator::default()
    }

    pub fn len(&self) -> usize {
        self.message.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.message.records.is_empty()
    }

    /// The partition key the aggregate is put with: its first record's.
    pub fn partition_key(&self) -> Option<&str> {
        self.message.partition_key_table.first().map(String::as_str)
    }

    /// The size the aggregate would have, in bytes, with one more record of
    /// `partition_key` and `data` (an upper bound: keys already in the table are
    /// counted again).
    pub fn size_with(&self, partition_key: &str, data: &[u8]) -> usize {
        let extra = partition_key.len() + data.len() + 24;
        MAGIC.len() + self.message.encoded_len() + extra + DIGEST_BYTES
    }

    pub fn add(&mut self, partition_key: &str, data: &[u8]) {
        let table = &mut self.message.partition_key_table;
        let index = match table.iter().position(|k| k == partition_key) {
            Some(i) => i,
            None => {
                table.push(partition_key.to_string());
                table.len() - 1
            }
        };
        self.message.records.push(Record {
            partition_key_index: index as u64,
            explicit_hash_key_index: None,
            data: data.to_vec(),
            tags: Vec::new(),
        });
    }

    /// The aggregate's bytes; the aggregator is empty again.
    pub fn finish(&mut self) -> Vec<u8> {
        let message = std::mem::take(&mut self.message).encode_to_vec();
        let mut out = Vec::with_capacity(MAGIC.len() + message.len() + DIGEST_BYTES);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&message);
        out.extend_from_slice(&Md5::digest(&message));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever bytes a record holds, reading it as an aggregate never panics, and
        /// bytes with the magic but no valid digest are an ordinary record.
        #[test]
        fn any_bytes_are_read_safely(mut bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = deaggregate(&bytes);
            bytes.splice(0..0, MAGIC);
            prop_assert!(deaggregate(&bytes).is_none() || bytes.len() >= 20);
        }

        /// Aggregates round-trip their user records, keys and order included.
        #[test]
        fn aggregates_round_trip(records in proptest::collection::vec(("[a-z]{1,8}", proptest::collection::vec(any::<u8>(), 0..64)), 1..40)) {
            let mut aggregator = Aggregator::new();
            for (key, data) in &records {
                aggregator.add(key, data);
            }
            let back = deaggregate(&aggregator.finish()).unwrap();
            let got: Vec<(String, Vec<u8>)> = back.into_iter().map(|u| (u.partition_key, u.data)).collect();
            prop_assert_eq!(got, records);
        }
    }

    #[test]
    fn aggregates_come_apart_into_their_records() {
        let mut aggregator = Aggregator::new();
        aggregator.add("a", b"one");
        aggregator.add("b", b"two");
        aggregator.add("a", b"");
        let bytes = aggregator.finish();
        assert!(aggregator.is_empty());
        let records = deaggregate(&bytes).unwrap();
        let keys: Vec<&str> = records.iter().map(|r| r.partition_key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "a"]);
        assert_eq!(records[1].data, b"two");
        assert_eq!(records[2].data, b"");
    }

    #[test]
    fn anything_else_is_an_ordinary_record() {
        assert!(deaggregate(b"plain").is_none());
        let mut aggregator = Aggregator::new();
        aggregator.add("k", b"v");
        let mut bytes = aggregator.finish();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(deaggregate(&bytes).is_none(), "a wrong MD5");
        // A record index outside the key table.
        let message = AggregatedRecord {
            partition_key_table: vec![],
            explicit_hash_key_table: vec![],
            records: vec![Record {
                partition_key_index: 3,
                explicit_hash_key_index: None,
                data: b"x".to_vec(),
                tags: vec![],
            }],
        }
        .encode_to_vec();
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(&message);
        forged.extend_from_slice(&Md5::digest(&message));
        assert!(deaggregate(&forged).is_none());
    }
}
