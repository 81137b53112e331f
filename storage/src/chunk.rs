//! The chunk: the records of one shard from one flush, as stored in an object.
//!
//! Layout (little-endian), version 1:
//!
//! ```text
//! 0   4  magic "SLCK"
//! 4   1  version (1)
//! 5   1  flags (bit 0: payload sealed under the data key below)
//! 6   2  reserved, zero
//! 8   8  data-key id (0: none)
//! 16  8  stream id
//! 24  8  shard ordinal
//! 32  4  record count
//! 36  4  payload length (as stored: sealed, it includes nonce and tag)
//! 40  .. payload: per record arrival_ms i64, key_len u16, data_len u32, key, data;
//!        sealed: nonce (12) | that, encrypted | tag (16), AES-256-GCM
//! end 4  CRC-32C of everything before it (the stored bytes)
//! ```
//!
//! Sequence numbers are not stored: the catalog row gives the first, and the records
//! follow it one by one. The stream and shard ids in the header are checked on read,
//! so a catalog row pointing at the wrong bytes is an error, never wrong data.
//!
//! A sealed payload's associated data is the whole header plus the chunk's place: the
//! stream's account, the object key and the byte offset. The reader rebuilds it from
//! the catalog row, so a changed byte, or a row that names other bytes, another stream,
//! shard, account or data key, fails to open. The CRC still covers the stored bytes, so
//! a torn or rotted chunk is told apart from a forged one.

use bytes::{Buf, Bytes};
use envelope::{DataKey, DataKeyId, SEAL_OVERHEAD_BYTES};

pub const MAGIC: &[u8; 4] = b"SLCK";
pub const VERSION: u8 = 1;
pub const HEADER_BYTES: usize = 40;
pub const TRAILER_BYTES: usize = 4;
const RECORD_HEADER_BYTES: usize = 8 + 2 + 4;
const FLAG_SEALED: u8 = 1;
/// Tells a chunk's associated data from any other use of a data key.
const AAD_CONTEXT: &[u8] = b"sluice chunk v1\0";

/// Where a chunk is stored and whose it is: what a sealed chunk is bound to.
#[derive(Debug, Clone, Copy)]
pub struct ChunkPlace<'a> {
    pub account_id: &'a str,
    pub object_key: &'a str,
    pub byte_offset: u64,
}

/// What the catalog row says a chunk is; decoding checks the chunk against all of it.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedChunk<'a> {
    pub stream_id: i64,
    pub shard_ordinal: u64,
    pub record_count: u32,
    /// `None`: a chunk written before sealing (flag 0).
    pub data_key_id: Option<DataKeyId>,
    pub place: ChunkPlace<'a>,
}

fn associated_data(header: &[u8], place: &ChunkPlace<'_>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(
        AAD_CONTEXT.len() + HEADER_BYTES + 16 + place.account_id.len() + place.object_key.len(),
    );
    aad.extend_from_slice(AAD_CONTEXT);
    aad.extend_from_slice(header);
    // Lengths first, so no two (account, object key) pairs give the same bytes.
    aad.extend_from_slice(&(place.account_id.len() as u32).to_le_bytes());
    aad.extend_from_slice(place.account_id.as_bytes());
    aad.extend_from_slice(&(place.object_key.len() as u32).to_le_bytes());
    aad.extend_from_slice(place.object_key.as_bytes());
    aad.extend_from_slice(&place.byte_offset.to_le_bytes());
    aad
}

/// One record as the writer hands it over.
#[derive(Debug, Clone)]
pub struct RecordIn<'a> {
    pub arrival_ms: i64,
    pub partition_key: &'a str,
    pub data: &'a [u8],
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOut {
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk is truncated")]
    Truncated,
    #[error("chunk has a bad magic number")]
    BadMagic,
    #[error("chunk version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("chunk checksum mismatch")]
    Checksum,
    #[error("chunk belongs to stream {stream} shard {shard}, not the one the catalog names")]
    Misplaced { stream: i64, shard: u64 },
    #[error("chunk holds {found} records, the catalog says {expected}")]
    CountMismatch { found: u32, expected: u32 },
    #[error("chunk has unknown flags {0:#04x}")]
    UnknownFlags(u8),
    #[error("chunk names data key {found}, the catalog says {expected:?}")]
    KeyMismatch { found: u64, expected: Option<u64> },
    #[error("chunk is sealed but no data key was given to open it")]
    KeyMissing,
    #[error("sealed chunk does not open: altered, or not where and whose it claims to be")]
    Open,
    #[error("chunk record is malformed")]
    Malformed,
}

fn payload_len<'a>(records: impl Iterator<Item = &'a RecordIn<'a>>) -> usize {
    records
        .map(|r| RECORD_HEADER_BYTES + r.partition_key.len() + r.data.len())
        .sum()
}

/// The encoded size of a chunk of these records, sealed or not.
pub fn encoded_len<'a>(records: impl Iterator<Item = &'a RecordIn<'a>>, sealed: bool) -> usize {
    let overhead = if sealed { SEAL_OVERHEAD_BYTES } else { 0 };
    HEADER_BYTES + payload_len(records) + overhead + TRAILER_BYTES
}

/// Appends the chunk to `out`, sealed under `sealing`'s key and bound to its place
/// when given. Exactly `encoded_len(records, sealing.is_some())` bytes.
pub fn encode(
    out: &mut Vec<u8>,
    stream_id: i64,
    shard_ordinal: u64,
    records: &[RecordIn<'_>],
    sealing: Option<(&DataKey, &ChunkPlace<'_>)>,
) {
    let start = out.len();
    let plain_len = payload_len(records.iter());
    let (flags, key_id, stored_len) = match sealing {
        Some((key, _)) => (FLAG_SEALED, key.id().get(), plain_len + SEAL_OVERHEAD_BYTES),
        None => (0, 0, plain_len),
    };
    out.reserve(HEADER_BYTES + stored_len + TRAILER_BYTES);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&key_id.to_le_bytes());
    out.extend_from_slice(&stream_id.to_le_bytes());
    out.extend_from_slice(&shard_ordinal.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(records.len())
            .expect("bounded batch")
            .to_le_bytes(),
    );
    out.extend_from_slice(
        &u32::try_from(stored_len)
            .expect("bounded batch")
            .to_le_bytes(),
    );
    let write_records = |out: &mut Vec<u8>| {
        for r in records {
            out.extend_from_slice(&r.arrival_ms.to_le_bytes());
            out.extend_from_slice(
                &u16::try_from(r.partition_key.len())
                    .expect("keys are at most 1 KiB")
                    .to_le_bytes(),
            );
            out.extend_from_slice(
                &u32::try_from(r.data.len())
                    .expect("records are at most 1 MiB")
                    .to_le_bytes(),
            );
            out.extend_from_slice(r.partition_key.as_bytes());
            out.extend_from_slice(r.data);
        }
    };
    match sealing {
        Some((key, place)) => {
            let aad = associated_data(&out[start..start + HEADER_BYTES], place);
            envelope::seal_appending(key, &aad, out, plain_len, write_records);
        }
        None => write_records(out),
    }
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Checks and decodes a chunk against what its catalog row says; opens it with `key`
/// when it is sealed (the key the row names, found by the caller).
pub fn decode(
    chunk: Bytes,
    expected: &ExpectedChunk<'_>,
    key: Option<&DataKey>,
) -> Result<Vec<RecordOut>, ChunkError> {
    if chunk.len() < HEADER_BYTES + TRAILER_BYTES {
        return Err(ChunkError::Truncated);
    }
    let body_len = chunk.len() - TRAILER_BYTES;
    let stored_crc = u32::from_le_bytes(chunk[body_len..].try_into().expect("4 bytes"));
    if &chunk[0..4] != MAGIC {
        return Err(ChunkError::BadMagic);
    }
    if chunk[4] != VERSION {
        return Err(ChunkError::UnsupportedVersion(chunk[4]));
    }
    if crc32c::crc32c(&chunk[..body_len]) != stored_crc {
        return Err(ChunkError::Checksum);
    }
    let mut header = &chunk[5..HEADER_BYTES];
    let flags = header.get_u8();
    let _reserved = header.get_u16_le();
    let data_key_id = header.get_u64_le();
    let stream = header.get_i64_le();
    let shard = header.get_u64_le();
    let count = header.get_u32_le();
    let payload_len = header.get_u32_le() as usize;
    if flags & !FLAG_SEALED != 0 {
        return Err(ChunkError::UnknownFlags(flags));
    }
    if stream != expected.stream_id || shard != expected.shard_ordinal {
        return Err(ChunkError::Misplaced { stream, shard });
    }
    if count != expected.record_count {
        return Err(ChunkError::CountMismatch {
            found: count,
            expected: expected.record_count,
        });
    }
    if HEADER_BYTES + payload_len != body_len {
        return Err(ChunkError::Truncated);
    }
    let sealed = flags & FLAG_SEALED != 0;
    // INVARIANT: a chunk is opened only under the data key its catalog row names, and
    // a row that names a key is never satisfied by an unsealed chunk (nor the reverse).
    let expected_key = expected.data_key_id.map(DataKeyId::get);
    let header_key = if sealed { Some(data_key_id) } else { None };
    if header_key != expected_key || (!sealed && data_key_id != 0) {
        return Err(ChunkError::KeyMismatch {
            found: data_key_id,
            expected: expected_key,
        });
    }
    let mut payload = if sealed {
        let key = key.ok_or(ChunkError::KeyMissing)?;
        if Some(key.id()) != expected.data_key_id {
            return Err(ChunkError::KeyMismatch {
                found: key.id().get(),
                expected: expected_key,
            });
        }
        let aad = associated_data(&chunk[..HEADER_BYTES], &expected.place);
        let plain = envelope::open(key, &aad, &chunk[HEADER_BYTES..body_len])
            .map_err(|_| ChunkError::Open)?;
        Bytes::from(plain)
    } else {
        chunk.slice(HEADER_BYTES..body_len)
    };
    let mut records = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if payload.remaining() < RECORD_HEADER_BYTES {
            return Err(ChunkError::Malformed);
        }
        let arrival_ms = payload.get_i64_le();
        let key_len = payload.get_u16_le() as usize;
        let data_len = payload.get_u32_le() as usize;
        if payload.remaining() < key_len + data_len {
            return Err(ChunkError::Malformed);
        }
        let key = payload.split_to(key_len);
        let data = payload.split_to(data_len);
        let partition_key = String::from_utf8(key.to_vec()).map_err(|_| ChunkError::Malformed)?;
        records.push(RecordOut {
            arrival_ms,
            partition_key,
            data,
        });
    }
    if payload.has_remaining() {
        return Err(ChunkError::Malformed);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLACE: ChunkPlace<'static> = ChunkPlace {
        account_id: "000000000000",
        object_key: "segments/00ab-01.seg",
        byte_offset: 4096,
    };

    fn key(id: u64) -> DataKey {
        DataKey::from_bytes(DataKeyId::new(id).unwrap(), &[id as u8; 32]).unwrap()
    }

    fn expected(data_key: Option<u64>) -> ExpectedChunk<'static> {
        ExpectedChunk {
            stream_id: 7,
            shard_ordinal: 2,
            record_count: 2,
            data_key_id: data_key.map(|id| DataKeyId::new(id).unwrap()),
            place: PLACE,
        }
    }

    fn sample(sealing: Option<&DataKey>) -> Vec<u8> {
        let records = [
            RecordIn {
                arrival_ms: 5,
                partition_key: "a",
                data: b"hello marker",
            },
            RecordIn {
                arrival_ms: 6,
                partition_key: "bé",
                data: b"",
            },
        ];
        let mut out = vec![0xEE]; // encode appends; earlier bytes are not part of it
        encode(&mut out, 7, 2, &records, sealing.map(|k| (k, &PLACE)));
        assert_eq!(
            out.len() - 1,
            encoded_len(records.iter(), sealing.is_some())
        );
        out.remove(0);
        out
    }

    fn check_records(records: &[RecordOut]) {
        assert_eq!(records[0].partition_key, "a");
        assert_eq!(&records[0].data[..], b"hello marker");
        assert_eq!(records[1].arrival_ms, 6);
        assert_eq!(records[1].partition_key, "bé");
    }

    #[test]
    fn unsealed_chunks_of_older_builds_round_trip() {
        let records = decode(Bytes::from(sample(None)), &expected(None), None).unwrap();
        check_records(&records);
    }

    #[test]
    fn sealed_chunks_round_trip_and_hide_their_records() {
        let k = key(3);
        let chunk = sample(Some(&k));
        assert_eq!(chunk[5], FLAG_SEALED);
        assert_eq!(u64::from_le_bytes(chunk[8..16].try_into().unwrap()), 3);
        for needle in [&b"hello"[..], b"marker", "bé".as_bytes()] {
            assert!(!chunk.windows(needle.len()).any(|w| w == needle));
        }
        let records = decode(Bytes::from(chunk), &expected(Some(3)), Some(&k)).unwrap();
        check_records(&records);
    }

    #[test]
    fn any_flipped_byte_is_an_error() {
        let k = key(3);
        for (chunk, data_key) in [(sample(None), None), (sample(Some(&k)), Some(3))] {
            for i in 0..chunk.len() {
                for bit in [0x01, 0x40, 0x80] {
                    let mut bad = chunk.clone();
                    bad[i] ^= bit;
                    assert!(
                        decode(Bytes::from(bad), &expected(data_key), Some(&k)).is_err(),
                        "byte {i}"
                    );
                }
            }
        }
    }

    /// A forger who rewrites bytes and fixes the CRC still cannot get past the tag.
    #[test]
    fn a_forged_sealed_chunk_with_a_fixed_crc_fails_to_open() {
        let k = key(3);
        let chunk = sample(Some(&k));
        let body = chunk.len() - TRAILER_BYTES;
        for i in HEADER_BYTES..body {
            let mut bad = chunk.clone();
            bad[i] ^= 1;
            let crc = crc32c::crc32c(&bad[..body]);
            bad[body..].copy_from_slice(&crc.to_le_bytes());
            assert_eq!(
                decode(Bytes::from(bad), &expected(Some(3)), Some(&k)),
                Err(ChunkError::Open),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_row_naming_another_place_key_or_owner_is_an_error() {
        let k = key(3);
        let chunk = Bytes::from(sample(Some(&k)));
        let decode_with =
            |e: ExpectedChunk<'_>, key: Option<&DataKey>| decode(chunk.clone(), &e, key);
        let places = [
            ChunkPlace {
                account_id: "111111111111",
                ..PLACE
            },
            ChunkPlace {
                object_key: "segments/00ab-02.seg",
                ..PLACE
            },
            ChunkPlace {
                byte_offset: 0,
                ..PLACE
            },
        ];
        for place in places {
            let e = ExpectedChunk {
                place,
                ..expected(Some(3))
            };
            assert_eq!(decode_with(e, Some(&k)), Err(ChunkError::Open));
        }
        // Another key, by id or by bytes; no key; a row that says "not sealed".
        let other = key(4);
        assert!(matches!(
            decode_with(expected(Some(4)), Some(&other)),
            Err(ChunkError::KeyMismatch { .. })
        ));
        let same_id_other_bytes =
            DataKey::from_bytes(DataKeyId::new(3).unwrap(), &[9u8; 32]).unwrap();
        assert_eq!(
            decode_with(expected(Some(3)), Some(&same_id_other_bytes)),
            Err(ChunkError::Open)
        );
        assert_eq!(
            decode_with(expected(Some(3)), None),
            Err(ChunkError::KeyMissing)
        );
        assert!(matches!(
            decode_with(expected(None), Some(&k)),
            Err(ChunkError::KeyMismatch { .. })
        ));
        // An unsealed chunk where the row names a key is refused too.
        assert!(matches!(
            decode(Bytes::from(sample(None)), &expected(Some(3)), Some(&k)),
            Err(ChunkError::KeyMismatch { .. })
        ));
    }

    #[test]
    fn wrong_place_or_count_is_an_error() {
        let good = Bytes::from(sample(None));
        let with = |stream_id, shard_ordinal, record_count| ExpectedChunk {
            stream_id,
            shard_ordinal,
            record_count,
            ..expected(None)
        };
        assert!(matches!(
            decode(good.clone(), &with(8, 2, 2), None),
            Err(ChunkError::Misplaced { .. })
        ));
        assert!(matches!(
            decode(good.clone(), &with(7, 3, 2), None),
            Err(ChunkError::Misplaced { .. })
        ));
        assert!(matches!(
            decode(good.clone(), &with(7, 2, 3), None),
            Err(ChunkError::CountMismatch { .. })
        ));
        assert_eq!(
            decode(good.slice(..20), &with(7, 2, 2), None),
            Err(ChunkError::Truncated)
        );
    }
}
