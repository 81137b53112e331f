//! Every fuzz target over its checked-in corpus (`fuzz/corpus/NAME/`), over mutations
//! of each corpus file (bit flips, truncations, splices), and over seeded random
//! inputs: what libFuzzer runs on nightly, replayed on every `cargo test` on stable.

use std::path::PathBuf;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read(path).expect("a corpus file"))
        .collect()
}

/// A small deterministic generator (xorshift64*), so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => out.truncate(rng.below(out.len())),
            2 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next() as u8);
            }
            3 if !other.is_empty() => {
                let at = rng.below(out.len() + 1);
                let from = rng.below(other.len());
                out.splice(at..at, other[from..].iter().copied().take(64));
            }
            _ if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = [0u8, 0xff, b'"', b'{', b'}', b'=', b'&', b'%'][rng.below(8)];
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    for (name, target) in sluice_fuzz::TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "{name} has no corpus");
        let mut rng = Rng(0x5eed ^ name.len() as u64);
        for seed in &seeds {
            target(seed);
        }
        for _ in 0..2_000 {
            let seed = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            target(&mutate(seed, other, &mut rng));
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    #[test]
    fn every_target_survives_random_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        for (_, target) in sluice_fuzz::TARGETS {
            target(&data);
        }
    }
}

/// Writes the chunk corpus: a sealed and an unsealed chunk the `chunk` target decodes
/// (`cargo test -p sluice-fuzz -- --ignored` after a format change).
#[test]
#[ignore]
fn write_chunk_seeds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/chunk");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let records = [storage::chunk::RecordIn {
        arrival_ms: 1_765_000_000_000,
        partition_key: "a",
        data: b"hello",
    }];
    let place = storage::chunk::ChunkPlace {
        account_id: "000000000000",
        object_key: "segments/fuzz",
        byte_offset: 0,
    };
    let key =
        envelope::DataKey::from_bytes(envelope::DataKeyId::new(1).unwrap(), &[7u8; 32]).unwrap();
    let mut plain = Vec::new();
    storage::chunk::encode(&mut plain, 1, 0, &records, None);
    std::fs::write(dir.join("plain.bin"), &plain).unwrap();
    let mut sealed = Vec::new();
    storage::chunk::encode(&mut sealed, 1, 0, &records, Some((&key, &place)));
    std::fs::write(dir.join("sealed.bin"), &sealed).unwrap();
}

/// The corpus holds inputs the decoders accept, so mutations start from deep inside
/// them rather than at the first byte check.
#[test]
fn the_seeds_are_accepted_inputs() {
    let read = |target: &str, file: &str| {
        std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../corpus")
                .join(target)
                .join(file),
        )
        .expect("a corpus file")
    };
    let key =
        envelope::DataKey::from_bytes(envelope::DataKeyId::new(1).unwrap(), &[7u8; 32]).unwrap();
    let place = storage::chunk::ChunkPlace {
        account_id: "000000000000",
        object_key: "segments/fuzz",
        byte_offset: 0,
    };
    for (file, data_key_id, key) in [
        ("plain.bin", None, None),
        ("sealed.bin", Some(key.id()), Some(&key)),
    ] {
        let expected = storage::chunk::ExpectedChunk {
            stream_id: 1,
            shard_ordinal: 0,
            record_count: 1,
            data_key_id,
            place,
        };
        let records =
            storage::chunk::decode(bytes::Bytes::from(read("chunk", file)), &expected, key)
                .expect(file);
        assert_eq!(&records[0].data[..], b"hello");
    }
    let users = sluice_client::kpl::deaggregate(&read("kpl_record", "aggregate.bin")).unwrap();
    assert_eq!(users.len(), 2);
    let put: protocol::model::PutRecordInput = protocol::wire::Format::Cbor
        .decode(&read("kinesis_request", "put_record.cbor"))
        .unwrap();
    assert_eq!(put.partition_key.as_deref(), Some("a"));
}
