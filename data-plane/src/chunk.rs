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
//! 36  4  payload length
//! 40  .. payload: per record arrival_ms i64, key_len u16, data_len u32, key, data
//! end 4  CRC-32C of everything before it
//! ```
//!
//! Sequence numbers are not stored: the catalog row gives the first, and the records
//! follow it one by one. The stream and shard ids in the header are checked on read,
//! so a catalog row pointing at the wrong bytes is an error, never wrong data.

use bytes::{Buf, Bytes};

pub const MAGIC: &[u8; 4] = b"SLCK";
pub const VERSION: u8 = 1;
pub const HEADER_BYTES: usize = 40;
pub const TRAILER_BYTES: usize = 4;
const RECORD_HEADER_BYTES: usize = 8 + 2 + 4;

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
    #[error("chunk is sealed and this build cannot open it")]
    Sealed,
    #[error("chunk record is malformed")]
    Malformed,
}

/// The encoded size of a chunk of these records.
pub fn encoded_len<'a>(records: impl Iterator<Item = &'a RecordIn<'a>>) -> usize {
    HEADER_BYTES
        + records
            .map(|r| RECORD_HEADER_BYTES + r.partition_key.len() + r.data.len())
            .sum::<usize>()
        + TRAILER_BYTES
}

/// Appends the chunk to `out`.
pub fn encode(out: &mut Vec<u8>, stream_id: i64, shard_ordinal: u64, records: &[RecordIn<'_>]) {
    let start = out.len();
    let payload_len: usize = records
        .iter()
        .map(|r| RECORD_HEADER_BYTES + r.partition_key.len() + r.data.len())
        .sum();
    out.reserve(HEADER_BYTES + payload_len + TRAILER_BYTES);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&stream_id.to_le_bytes());
    out.extend_from_slice(&shard_ordinal.to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(records.len())
            .expect("bounded batch")
            .to_le_bytes(),
    );
    out.extend_from_slice(
        &u32::try_from(payload_len)
            .expect("bounded batch")
            .to_le_bytes(),
    );
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
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Checks and decodes a chunk that the catalog says holds `expected_count` records of
/// this stream and shard.
pub fn decode(
    chunk: Bytes,
    stream_id: i64,
    shard_ordinal: u64,
    expected_count: u32,
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
    let _data_key_id = header.get_u64_le();
    let stream = header.get_i64_le();
    let shard = header.get_u64_le();
    let count = header.get_u32_le();
    let payload_len = header.get_u32_le() as usize;
    if flags & 1 != 0 {
        return Err(ChunkError::Sealed);
    }
    if stream != stream_id || shard != shard_ordinal {
        return Err(ChunkError::Misplaced { stream, shard });
    }
    if count != expected_count {
        return Err(ChunkError::CountMismatch {
            found: count,
            expected: expected_count,
        });
    }
    if HEADER_BYTES + payload_len != body_len {
        return Err(ChunkError::Truncated);
    }
    let mut payload = chunk.slice(HEADER_BYTES..body_len);
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

    fn sample() -> Vec<u8> {
        let records = [
            RecordIn {
                arrival_ms: 5,
                partition_key: "a",
                data: b"hello",
            },
            RecordIn {
                arrival_ms: 6,
                partition_key: "bé",
                data: b"",
            },
        ];
        let mut out = vec![0xEE]; // encode appends; earlier bytes are not part of it
        encode(&mut out, 7, 2, &records);
        assert_eq!(out.len() - 1, encoded_len(records.iter()));
        out.remove(0);
        out
    }

    #[test]
    fn round_trips() {
        let records = decode(Bytes::from(sample()), 7, 2, 2).unwrap();
        assert_eq!(records[0].partition_key, "a");
        assert_eq!(&records[0].data[..], b"hello");
        assert_eq!(records[1].arrival_ms, 6);
        assert_eq!(records[1].partition_key, "bé");
    }

    #[test]
    fn any_flipped_byte_is_an_error() {
        let good = sample();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(decode(Bytes::from(bad), 7, 2, 2).is_err(), "byte {i}");
        }
    }

    #[test]
    fn wrong_place_or_count_is_an_error() {
        let good = Bytes::from(sample());
        assert!(matches!(
            decode(good.clone(), 8, 2, 2),
            Err(ChunkError::Misplaced { .. })
        ));
        assert!(matches!(
            decode(good.clone(), 7, 3, 2),
            Err(ChunkError::Misplaced { .. })
        ));
        assert!(matches!(
            decode(good.clone(), 7, 2, 3),
            Err(ChunkError::CountMismatch { .. })
        ));
        assert_eq!(
            decode(good.slice(..20), 7, 2, 2),
            Err(ChunkError::Truncated)
        );
    }
}
