//! Chunks sealed at rest, end to end without HTTP: rotation under concurrent writers,
//! tampering with the object bytes or the catalog row, and many tasks sealing, opening
//! and rotating data keys at once. On SQLite, and on Postgres when
//! SLUICE_TEST_POSTGRES_URL is set.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalog::RefusalKind;
use catalog::rootkey::RootKey;
use catalog::streams::NewStream;
use catalog::testing::{self, ChunkEdit, ChunkFilter};
use catalog::{Catalog, StreamMode};
use envelope::RotationPolicy;
use storage::commit::{Committer, PendingRecord};
use storage::keyring::Keyring;
use storage::objects::ObjectStore;
use storage::reader::{ReadError, read_shard};
use storage::segment::SegmentStore;

const ACCOUNT: &str = "000000000000";

fn root() -> Arc<RootKey> {
    Arc::new(RootKey::from_bytes(&[5u8; 32]).unwrap())
}

async fn make_stream(catalog: &Catalog, name: &str, shards: u32) -> i64 {
    catalog
        .create_stream(&NewStream {
            account_id: ACCOUNT,
            name,
            shard_count: shards,
            mode: StreamMode::Provisioned,
            tags: &[],
            now_ms: 0,
            account_shards_max: 100,
            account_on_demand_streams_max: 50,
            region: "us-east-1",
        })
        .await
        .unwrap()
        .id
}

/// Every record of the shard, read in pages through a fresh keyring (no cached keys).
async fn read_all(
    catalog: &Catalog,
    store: &Arc<ObjectStore>,
    keyring: &Keyring,
    account: &str,
    stream_id: i64,
    shard: u64,
) -> Result<Vec<(u64, bytes::Bytes)>, ReadError> {
    let mut from = 0;
    let mut seen = Vec::new();
    loop {
        let read = read_shard(
            catalog,
            store,
            keyring,
            account,
            stream_id,
            shard,
            from,
            50,
            10 << 20,
            0,
        )
        .await?;
        if read.records.is_empty() {
            return Ok(seen);
        }
        seen.extend(read.records.into_iter().map(|r| (r.counter, r.record.data)));
        from = read.next_counter;
    }
}

async fn put(committer: &Committer, stream_id: i64, name: &str, shard: u64, data: &str) -> u64 {
    let results = committer
        .append(
            stream_id,
            name,
            ACCOUNT,
            vec![PendingRecord {
                shard_ordinal: shard,
                hash_key: protocol::hash::HashKey(0),
                partition_key: "k".into(),
                data: bytes::Bytes::from(data.to_string()),
            }],
        )
        .await
        .unwrap();
    results[0].as_ref().unwrap().counter()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_concurrent_writers_keeps_old_data_readable() {
    let dir = tempfile::tempdir().unwrap();
    for (n, catalog) in catalog::testing::catalogs(dir.path())
        .await
        .into_iter()
        .enumerate()
    {
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(
                &dir.path().join(format!("objects-{n}")),
                protocol::clock::SystemClock::shared(),
            )
            .unwrap(),
        ));
        let stream_id = make_stream(&catalog, "rot", 3).await;
        // Three seals a key: many rotations in a short run.
        let keyring = Arc::new(Keyring::new(
            catalog.clone(),
            root(),
            RotationPolicy::new(Duration::from_secs(60), 3),
            protocol::clock::SystemClock::shared(),
        ));
        let (committer, writer) = Committer::spawn(
            catalog.clone(),
            store.clone(),
            keyring,
            protocol::clock::SystemClock::shared(),
        );
        let mut tasks = Vec::new();
        for w in 0..8u64 {
            let committer = committer.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..15u64 {
                    let shard = (w + i) % 3;
                    let data = format!("writer {w} record {i}");
                    let counter = put(&committer, stream_id, "rot", shard, &data).await;
                    acked.push(((shard, counter), data));
                }
                acked
            }));
        }
        let mut acked: HashMap<(u64, u64), String> = HashMap::new();
        for task in tasks {
            acked.extend(task.await.unwrap());
        }
        drop(committer);
        writer.await.unwrap();
        assert_eq!(acked.len(), 8 * 15);

        let all = testing::chunk_rows(&catalog).await.unwrap();
        let key_ids: HashSet<i64> = all.iter().map(|r| r.data_key_id.unwrap()).collect();
        let chunks = all.len() as i64;
        // At most three chunks per key, so at least a third as many keys as chunks.
        assert!(
            key_ids.len() as i64 * 3 >= chunks && key_ids.len() > 3,
            "{} keys for {chunks} chunks",
            key_ids.len()
        );
        let retired = testing::retired_data_keys(&catalog).await.unwrap();
        assert!(retired > 0);

        // A new process (fresh keyring, nothing cached) reads every record back.
        let reader = Keyring::new(
            catalog.clone(),
            root(),
            RotationPolicy::default(),
            protocol::clock::SystemClock::shared(),
        );
        let mut read = 0;
        for shard in 0..3 {
            for (counter, data) in read_all(&catalog, &store, &reader, ACCOUNT, stream_id, shard)
                .await
                .unwrap()
            {
                assert_eq!(
                    acked.get(&(shard, counter)).map(String::as_bytes),
                    Some(&data[..])
                );
                read += 1;
            }
        }
        assert_eq!(read, acked.len());
        // Under another root key nothing unwraps: the read fails, it does not return data.
        let stranger = Keyring::new(
            catalog.clone(),
            Arc::new(RootKey::from_bytes(&[6u8; 32]).unwrap()),
            RotationPolicy::default(),
            protocol::clock::SystemClock::shared(),
        );
        assert!(matches!(
            read_all(&catalog, &store, &stranger, ACCOUNT, stream_id, 0).await,
            Err(ReadError::DataKey { .. })
        ));
    }
}

/// The catalog's refusal behind a failed read, if that is what failed it.
fn refusal_of(error: storage::reader::ReadError) -> Option<RefusalKind> {
    match error {
        storage::reader::ReadError::DataKey {
            source: storage::keyring::KeyringError::Catalog(e),
            ..
        } => e.refusal().map(|r| r.kind),
        _ => None,
    }
}

#[derive(Clone)]
struct ChunkRowAt {
    shard: i64,
    first: i64,
    object_key: String,
    offset: i64,
    length: i64,
    data_key_id: i64,
}

async fn rows(catalog: &Catalog, stream_id: i64) -> Vec<ChunkRowAt> {
    testing::chunk_rows(catalog)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.stream_id == stream_id)
        .map(|r| ChunkRowAt {
            shard: r.shard_ordinal as i64,
            first: r.first_sequence as i64,
            object_key: r.object_key,
            offset: r.byte_offset as i64,
            length: r.byte_length as i64,
            data_key_id: r.data_key_id.unwrap(),
        })
        .collect()
}

async fn set_row(catalog: &Catalog, stream_id: i64, row: &ChunkRowAt, set: &str, value: i64) {
    let edit = match set {
        "byte_offset" => ChunkEdit::ByteOffset(value),
        "data_key_id" => ChunkEdit::DataKeyId(Some(value)),
        "shard_ordinal" => ChunkEdit::ShardOrdinal(value),
        "stream_id" => ChunkEdit::StreamId(value),
        other => panic!("no edit of {other}"),
    };
    let filter = ChunkFilter {
        stream_id: Some(stream_id),
        shard_ordinal: Some(row.shard as u64),
        first_sequence: Some(row.first as u64),
    };
    testing::edit_chunks(catalog, filter, edit).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_bytes_or_rows_fails_the_read() {
    let dir = tempfile::tempdir().unwrap();
    for (n, catalog) in catalog::testing::catalogs(dir.path())
        .await
        .into_iter()
        .enumerate()
    {
        let objects = dir.path().join(format!("objects-{n}"));
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(&objects, protocol::clock::SystemClock::shared()).unwrap(),
        ));
        let stream_id = make_stream(&catalog, "tamper", 2).await;
        let other_stream = make_stream(&catalog, "other", 2).await;
        // One seal a key: every chunk under its own key.
        let keyring = Arc::new(Keyring::new(
            catalog.clone(),
            root(),
            RotationPolicy::new(Duration::from_secs(60), 1),
            protocol::clock::SystemClock::shared(),
        ));
        let (committer, writer) = Committer::spawn(
            catalog.clone(),
            store.clone(),
            keyring,
            protocol::clock::SystemClock::shared(),
        );
        // Two chunks of shard 0 with one record each, of equal length, so a row moved
        // from one to the other passes every check but the seal.
        put(&committer, stream_id, "tamper", 0, "secret A").await;
        put(&committer, stream_id, "tamper", 0, "secret B").await;
        put(&committer, stream_id, "tamper", 1, "secret C").await;
        put(&committer, other_stream, "other", 0, "secret D").await;
        drop(committer);
        writer.await.unwrap();
        let fresh = || {
            Keyring::new(
                catalog.clone(),
                root(),
                RotationPolicy::default(),
                protocol::clock::SystemClock::shared(),
            )
        };
        let good = read_all(&catalog, &store, &fresh(), ACCOUNT, stream_id, 0)
            .await
            .unwrap();
        assert_eq!(good.len(), 2);
        let rows = rows(&catalog, stream_id).await;
        let (a, b) = (&rows[0], &rows[1]);
        assert_eq!(a.length, b.length);
        assert_ne!(a.data_key_id, b.data_key_id);

        // Every bit position of chunk A's stored bytes, flipped one at a time.
        let path = objects.join(&a.object_key);
        let original = std::fs::read(&path).unwrap();
        for i in a.offset..a.offset + a.length {
            let mut bad = original.clone();
            bad[i as usize] ^= 1 << (i % 8);
            std::fs::write(&path, &bad).unwrap();
            let read = read_all(&catalog, &store, &fresh(), ACCOUNT, stream_id, 0).await;
            assert!(read.is_err(), "flipped byte {i} read as {read:?}");
        }
        std::fs::write(&path, &original).unwrap();
        assert_eq!(
            read_all(&catalog, &store, &fresh(), ACCOUNT, stream_id, 0)
                .await
                .unwrap(),
            good
        );

        // One field of a row changed at a time: each read fails, then the row is put
        // back and the read works again. Rows moved to another shard or stream are B's
        // (first sequence 2), which collides with no row there.
        let changes: [(&ChunkRowAt, &str, i64); 6] = [
            (a, "byte_offset", b.offset),
            (a, "byte_offset", a.offset + 1),
            (a, "data_key_id", b.data_key_id),
            (a, "data_key_id", a.data_key_id + 1_000),
            (b, "shard_ordinal", 1),
            (b, "stream_id", other_stream),
        ];
        for (row, column, value) in changes {
            set_row(&catalog, stream_id, row, column, value).await;
            let (stream, shard) = match column {
                "shard_ordinal" => (stream_id, 1),
                "stream_id" => (other_stream, 0),
                _ => (stream_id, 0),
            };
            let read = read_all(&catalog, &store, &fresh(), ACCOUNT, stream, shard).await;
            assert!(read.is_err(), "{column} = {value} read as {read:?}");
            let (moved, back) = match column {
                "byte_offset" => (row.shard, row.offset),
                "data_key_id" => (row.shard, row.data_key_id),
                "shard_ordinal" => (1, row.shard),
                _ => (row.shard, stream_id),
            };
            let moved = ChunkRowAt {
                shard: moved,
                ..row.clone()
            };
            set_row(&catalog, stream, &moved, column, back).await;
            assert_eq!(
                read_all(&catalog, &store, &fresh(), ACCOUNT, stream_id, 0)
                    .await
                    .unwrap(),
                good,
                "after restoring {column}"
            );
        }
        // A row with no data key over a sealed chunk, and another object key.
        let filter = ChunkFilter {
            stream_id: Some(stream_id),
            shard_ordinal: Some(0),
            first_sequence: Some(a.first as u64),
        };
        testing::edit_chunks(&catalog, filter, ChunkEdit::DataKeyId(None))
            .await
            .unwrap();
        assert!(
            read_all(&catalog, &store, &fresh(), ACCOUNT, stream_id, 0)
                .await
                .is_err()
        );
        set_row(&catalog, stream_id, a, "data_key_id", a.data_key_id).await;
        // Another account reading the same rows (a bug upstream, say) cannot open them.
        assert!(
            read_all(&catalog, &store, &fresh(), "111111111111", stream_id, 0)
                .await
                .is_err()
        );
        // The stored segment holds none of the records in the clear.
        let segment = std::fs::read(&path).unwrap();
        assert!(!segment.windows(6).any(|w| w == b"secret"));
    }
}

/// Many tasks seal and open through one keyring while keys rotate under them, for about
/// two seconds; every open gives exactly what was sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sealing_opening_and_rotation_see_no_wrong_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog::testing::catalogs(dir.path()).await.remove(0);
    let streams = [
        make_stream(&catalog, "c1", 1).await,
        make_stream(&catalog, "c2", 1).await,
    ];
    let keyring = Arc::new(Keyring::new(
        catalog.clone(),
        root(),
        RotationPolicy::new(Duration::from_millis(100), 5),
        protocol::clock::SystemClock::shared(),
    ));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for t in 0..6u64 {
        let keyring = keyring.clone();
        tasks.push(tokio::spawn(async move {
            let stream_id = streams[(t % 2) as usize];
            // (key id, associated data, sealed, plaintext)
            type Kept = (envelope::DataKeyId, Vec<u8>, Vec<u8>, Vec<u8>);
            let mut kept: Vec<Kept> = Vec::new();
            let mut opened = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let key = keyring.key_for_sealing(stream_id).await.unwrap().unwrap();
                let plain = format!("task {t} message {n}").into_bytes();
                let aad = format!("{stream_id}/{t}/{n}").into_bytes();
                let sealed = envelope::seal(&key, &aad, &plain);
                kept.push((key.id(), aad, sealed, plain));
                if n.is_multiple_of(17) {
                    keyring.forget_opened();
                }
                let (id, aad, sealed, plain) = &kept[(n as usize * 7919) % kept.len()];
                let key = keyring.key_for_opening(*id, stream_id).await.unwrap();
                assert_eq!(&envelope::open(&key, aad, sealed).unwrap(), plain);
                opened += 1;
                // The other stream's keys never open this stream's data.
                let other = streams[((t + 1) % 2) as usize];
                assert!(keyring.key_for_opening(*id, other).await.is_err());
                tokio::task::yield_now().await;
            }
            (opened, kept.iter().map(|k| k.0).collect::<HashSet<_>>())
        }));
    }
    let mut opened = 0;
    let mut keys = HashSet::new();
    for task in tasks {
        let (n, k) = task.await.unwrap();
        opened += n;
        keys.extend(k);
    }
    assert!(opened > 100, "opened {opened}");
    assert!(
        keys.len() > 10,
        "only {} keys: rotation did not happen",
        keys.len()
    );
}

/// A stream whose master key is disabled: its writes fail with KMSDisabledException,
/// alone (another stream's writes in the same flushes go on), and its reads fail the
/// same way; enabled again, both work; deleted, its data never reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_master_key_state_governs_its_data_alone() {
    use catalog::masterkeys::{KeyManager, KeyState, StateChange};
    use protocol::ErrorCode;

    let dir = tempfile::tempdir().unwrap();
    for (n, catalog) in catalog::testing::catalogs(dir.path())
        .await
        .into_iter()
        .enumerate()
    {
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(
                &dir.path().join(format!("keys-{n}")),
                protocol::clock::SystemClock::shared(),
            )
            .unwrap(),
        ));
        let root = root();
        let a = make_stream(&catalog, "under-tenant-key", 1).await;
        let b = make_stream(&catalog, "under-default-key", 1).await;
        let key = catalog
            .create_master_key(&root, ACCOUNT, "", KeyManager::Customer, 0)
            .await
            .unwrap();
        catalog
            .set_stream_encryption(a, Some(("alias/x", &key.key_id)))
            .await
            .unwrap();
        // One seal a data key: every chunk asks the catalog for a new one.
        let keyring = Arc::new(Keyring::new(
            catalog.clone(),
            root.clone(),
            RotationPolicy::new(Duration::from_secs(60), 1),
            protocol::clock::SystemClock::shared(),
        ));
        let (committer, writer) = Committer::spawn(
            catalog.clone(),
            store.clone(),
            keyring,
            protocol::clock::SystemClock::shared(),
        );
        put(&committer, a, "under-tenant-key", 0, "a1").await;
        put(&committer, b, "under-default-key", 0, "b1").await;
        assert!(
            catalog
                .change_master_key_state(
                    ACCOUNT,
                    &key.key_id,
                    KeyState::Enabled,
                    StateChange::Disable
                )
                .await
                .unwrap()
        );
        let record = |data: &str| PendingRecord {
            shard_ordinal: 0,
            hash_key: protocol::hash::HashKey(0),
            partition_key: "k".into(),
            data: bytes::Bytes::from(data.to_string()),
        };
        for round in 0..5 {
            let (ra, rb) = tokio::join!(
                committer.append(a, "under-tenant-key", ACCOUNT, vec![record("a")]),
                committer.append(b, "under-default-key", ACCOUNT, vec![record("b")]),
            );
            let refused = ra.unwrap().pop().unwrap().unwrap_err();
            assert!(
                matches!(&refused, storage::commit::AppendError::Refused(e) if e.code == ErrorCode::KmsDisabled),
                "round {round}: {refused:?}"
            );
            assert!(rb.unwrap()[0].is_ok(), "round {round}");
        }
        let fresh = || {
            Keyring::new(
                catalog.clone(),
                root.clone(),
                RotationPolicy::default(),
                protocol::clock::SystemClock::shared(),
            )
        };
        let read = read_all(&catalog, &store, &fresh(), ACCOUNT, a, 0).await;
        assert_eq!(
            refusal_of(read.unwrap_err()),
            Some(RefusalKind::StreamKeyDisabled)
        );
        assert_eq!(
            read_all(&catalog, &store, &fresh(), ACCOUNT, b, 0)
                .await
                .unwrap()
                .len(),
            6
        );

        catalog
            .change_master_key_state(
                ACCOUNT,
                &key.key_id,
                KeyState::Disabled,
                StateChange::Enable,
            )
            .await
            .unwrap();
        put(&committer, a, "under-tenant-key", 0, "a2").await;
        let back = read_all(&catalog, &store, &fresh(), ACCOUNT, a, 0)
            .await
            .unwrap();
        assert_eq!(
            back.iter().map(|(_, d)| &d[..]).collect::<Vec<_>>(),
            vec![&b"a1"[..], b"a2"]
        );

        // Deleted: the material is gone, and with it every data key of the stream.
        let schedule = StateChange::ScheduleDeletion {
            deletion_date_ms: 1,
            days: 7,
        };
        catalog
            .change_master_key_state(ACCOUNT, &key.key_id, KeyState::Enabled, schedule)
            .await
            .unwrap();
        assert_eq!(catalog.destroy_due_master_keys(2).await.unwrap().len(), 1);
        let read = read_all(&catalog, &store, &fresh(), ACCOUNT, a, 0).await;
        assert_eq!(
            refusal_of(read.unwrap_err()),
            Some(RefusalKind::StreamKeyGone)
        );
        let rows = testing::chunk_rows(&catalog)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.stream_id == a)
            .count();
        assert_eq!(rows, 2, "the record history stays");
        drop(committer);
        writer.await.unwrap();
    }
}
