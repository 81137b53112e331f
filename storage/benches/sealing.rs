//! What encryption at rest costs on the chunk path, printed (never asserted):
//! `cargo bench -p sluice-data-plane --bench sealing`.
//!
//! The same chunk of 500 records of 1 KiB is encoded and decoded sealed (AES-256-GCM
//! under a data key, bound to its place) and unsealed (the layout older builds wrote),
//! in one process, rounds alternating so that the machine's drift hits both alike. The
//! unsealed path exists only for reading old chunks; nothing served writes it, and no
//! feature of any crate turns sealing off.

use std::time::Instant;

use bytes::Bytes;
use envelope::{DataKey, DataKeyId};
use storage::chunk::{self, ChunkPlace, ExpectedChunk, RecordIn};

const RECORDS: usize = 500;
const RECORD_BYTES: usize = 1024;
const ROUNDS: usize = 400;

fn main() {
    let key = DataKey::from_bytes(DataKeyId::new(1).expect("id"), &[7u8; 32]).expect("key");
    let place = ChunkPlace {
        account_id: "000000000000",
        object_key: "segments/bench.seg",
        byte_offset: 0,
    };
    let data = vec![0x5au8; RECORD_BYTES];
    let keys: Vec<String> = (0..RECORDS).map(|i| format!("key-{i}")).collect();
    let records: Vec<RecordIn<'_>> = keys
        .iter()
        .map(|k| RecordIn {
            arrival_ms: 1,
            partition_key: k,
            data: &data,
        })
        .collect();
    let mut timings = [(0u128, 0u128), (0u128, 0u128)];
    for round in 0..ROUNDS {
        for sealed in [round % 2 == 0, round % 2 != 0] {
            let mut out = Vec::new();
            let t = Instant::now();
            chunk::encode(&mut out, 1, 0, &records, sealed.then_some((&key, &place)));
            let encoded = t.elapsed().as_nanos();
            let expected = ExpectedChunk {
                stream_id: 1,
                shard_ordinal: 0,
                record_count: RECORDS as u32,
                data_key_id: sealed.then_some(key.id()),
                place,
            };
            let bytes = Bytes::from(out);
            let t = Instant::now();
            let back = chunk::decode(bytes, &expected, sealed.then_some(&key)).expect("decodes");
            let decoded = t.elapsed().as_nanos();
            assert_eq!(back.len(), RECORDS);
            let slot = &mut timings[usize::from(sealed)];
            slot.0 += encoded;
            slot.1 += decoded;
        }
    }
    let bytes = (RECORDS * RECORD_BYTES * ROUNDS) as f64;
    for (label, (enc, dec)) in [
        ("unsealed", timings[0]),
        ("sealed (AES-256-GCM)", timings[1]),
    ] {
        println!(
            "{label:<22} encode {:>8.0} MB/s   decode {:>8.0} MB/s",
            bytes / enc as f64 * 1e3,
            bytes / dec as f64 * 1e3
        );
    }
}
