//! One function per fuzz target, each taking arbitrary bytes and feeding them to a
//! decoder that reads bytes from the network or the disk. A target must never panic;
//! where a decoder's answer can be checked cheaply (a round trip, a refusal), it is.
//!
//! `tests/replay.rs` runs every target over the checked-in corpus (`fuzz/corpus/NAME/`),
//! mutations of it and seeded random inputs on every `cargo test`; `fuzz/libfuzzer` is
//! the cargo-fuzz project that runs the same functions under libFuzzer on nightly.

use bytes::Bytes;
use md5::Digest;
use protocol::wire::Format;

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and cargo-fuzz binary have.
pub const TARGETS: &[(&str, Target)] = &[
    ("kinesis_request", kinesis_request),
    ("kms_request", kms_request),
    ("queue_request", queue_request),
    ("query_form", query_form),
    ("sigv4_authorization", sigv4_authorization),
    ("shard_iterator", shard_iterator),
    ("chunk", chunk),
    ("kms_blob", kms_blob),
    ("kpl_record", kpl_record),
];

fn decode_both<T: serde::de::DeserializeOwned>(data: &[u8]) {
    let _ = Format::Json.decode::<T>(data);
    let _ = Format::Cbor.decode::<T>(data);
}

fn checked<T: serde::de::DeserializeOwned + protocol::checks::Checked>(data: &[u8]) {
    for format in [Format::Json, Format::Cbor] {
        if let Ok(value) = format.decode::<T>(data) {
            let mut checks = protocol::checks::Checks::new();
            value.check(&mut checks);
            let _ = checks.finish();
        }
    }
}

/// Kinesis request bodies, JSON and CBOR, with every member constraint checked.
pub fn kinesis_request(data: &[u8]) {
    use protocol::model::*;
    checked::<PutRecordInput>(data);
    checked::<PutRecordsInput>(data);
    checked::<GetRecordsInput>(data);
    checked::<GetShardIteratorInput>(data);
    checked::<CreateStreamInput>(data);
    checked::<ListShardsInput>(data);
    checked::<SplitShardInput>(data);
    checked::<MergeShardsInput>(data);
    decode_both::<TagResourceInput>(data);
    decode_both::<UpdateAccountSettingsInput>(data);
    decode_both::<SubscribeToShardInput>(data);
}

/// KMS request bodies.
pub fn kms_request(data: &[u8]) {
    use protocol::kms::*;
    decode_both::<CreateKeyInput>(data);
    decode_both::<EncryptInput>(data);
    decode_both::<DecryptInput>(data);
    decode_both::<ReEncryptInput>(data);
    decode_both::<GenerateDataKeyInput>(data);
    decode_both::<CreateGrantInput>(data);
    decode_both::<SignInput>(data);
    decode_both::<KeyPolicyInput>(data);
}

/// Kinesis queue request bodies.
pub fn queue_request(data: &[u8]) {
    use protocol::queues::*;
    decode_both::<CreateQueueInput>(data);
    decode_both::<ReceiveQueueRecordsInput>(data);
    decode_both::<HandleEntriesInput>(data);
    decode_both::<ListQueuesInput>(data);
}

/// The query protocol's form bodies (`Action=...`).
pub fn query_form(data: &[u8]) {
    let _ = protocol::query::form_value(data, "Action");
    let _ = protocol::query::form_value(data, "Version");
}

/// A SigV4 `Authorization` header (and the canonical request of a credential that
/// parses).
pub fn sigv4_authorization(data: &[u8]) {
    let Ok(value) = http::HeaderValue::from_bytes(data) else {
        return;
    };
    let Ok(request) = http::Request::post("/?a=b&c")
        .header("host", "localhost:4567")
        .header("x-amz-date", "20261205T120000Z")
        .header("authorization", value)
        .body(())
    else {
        return;
    };
    let (parts, ()) = request.into_parts();
    if let Ok(credential) = protocol::sigv4::parse_credential(&parts) {
        let _ = protocol::sigv4::canonical_request(
            &parts,
            &credential,
            &protocol::sigv4::sha256_hex(b""),
        );
    }
}

/// Shard iterators and queue receipt handles: whatever a client sends is refused
/// unless this server's key made it.
pub fn shard_iterator(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = kinesis::iterator::IteratorKey::new(b"fuzzing key", 300_000);
    assert!(key.open("000000000000", text, 0).is_err());
    assert!(key.open_receipt("000000000000", "q", text).is_none());
}

/// Chunks as read back from a segment or object: any bytes are refused or decoded,
/// sealed or not, never a panic.
pub fn chunk(data: &[u8]) {
    let place = storage::chunk::ChunkPlace {
        account_id: "000000000000",
        object_key: "segments/fuzz",
        byte_offset: 0,
    };
    let key =
        envelope::DataKey::from_bytes(envelope::DataKeyId::new(1).expect("nonzero"), &[7u8; 32])
            .expect("a 32-byte key");
    for (data_key_id, key) in [(None, None), (Some(key.id()), Some(&key))] {
        let expected = storage::chunk::ExpectedChunk {
            stream_id: 1,
            shard_ordinal: 0,
            record_count: 1,
            data_key_id,
            place,
        };
        let _ = storage::chunk::decode(Bytes::copy_from_slice(data), &expected, key);
        // Again with the CRC-32C trailer made right, so the body's parsing is reached
        // (a mutation almost never keeps the checksum).
        if data.len() >= 4 {
            let mut fixed = data.to_vec();
            let body = fixed.len() - 4;
            let crc = crc32c::crc32c(&fixed[..body]);
            fixed[body..].copy_from_slice(&crc.to_le_bytes());
            let _ = storage::chunk::decode(Bytes::from(fixed), &expected, key);
        }
    }
}

/// KMS ciphertext blobs: parsed and opened under a fixed key.
pub fn kms_blob(data: &[u8]) {
    let _ = envelope::ciphertext::blob_key(data);
    let material =
        envelope::DataKey::from_bytes(envelope::DataKeyId::new(1).expect("nonzero"), &[9u8; 32])
            .expect("a 32-byte key");
    let context = envelope::ciphertext::EncryptionContext::new();
    // Only a blob sealed under this key opens: the fuzzer cannot forge one.
    assert!(envelope::ciphertext::open_blob(data, &material, &context).is_err());
}

/// Records a consumer reads: KPL aggregates or not.
pub fn kpl_record(data: &[u8]) {
    let _ = sluice_client::kpl::deaggregate(data);
    // With the magic and a right MD5 around the bytes, so the protobuf reading is
    // reached.
    let mut framed = sluice_client::kpl::MAGIC.to_vec();
    framed.extend_from_slice(data);
    framed.extend_from_slice(&md5::Md5::digest(data));
    let _ = sluice_client::kpl::deaggregate(&framed);
    // Anything that reads as an aggregate writes back to the same user records.
    if let Some(users) = sluice_client::kpl::deaggregate(data)
        && users.iter().all(|u| u.explicit_hash_key.is_none())
    {
        let mut again = sluice_client::kpl::Aggregator::new();
        for user in &users {
            again.add(&user.partition_key, &user.data);
        }
        let back = sluice_client::kpl::deaggregate(&again.finish()).expect("our own aggregate");
        assert_eq!(back, users);
    }
    let _ = serde_json::from_slice::<serde_json::Value>(data);
}
