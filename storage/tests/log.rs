//! The storage engine end to end, without HTTP: concurrent appends through group
//! commit, then reads back through the catalog, on SQLite and (when
//! SLUICE_TEST_POSTGRES_URL is set) on Postgres.

use std::collections::HashMap;
use std::sync::Arc;

use catalog::Catalog;
use catalog::rootkey::RootKey;
use storage::commit::{Committer, PendingRecord};
use storage::keyring::Keyring;
use storage::objects::ObjectStore;
use storage::reader::read_shard;
use storage::segment::SegmentStore;

fn keyring(catalog: &Catalog) -> Arc<Keyring> {
    let root = Arc::new(RootKey::from_bytes(&[3u8; 32]).unwrap());
    Arc::new(Keyring::new(
        catalog.clone(),
        root,
        envelope::RotationPolicy::default(),
        protocol::clock::SystemClock::shared(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_read_back_in_order_exactly_once() {
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
        let stream = catalog
            .create_stream(&catalog::testing::provisioned_stream("log", 3))
            .await
            .unwrap();
        let keys = keyring(&catalog);
        let (committer, writer) = Committer::spawn(
            catalog.clone(),
            store.clone(),
            keys.clone(),
            protocol::clock::SystemClock::shared(),
        );
        let mut tasks = Vec::new();
        for writer_id in 0..16u64 {
            let committer = committer.clone();
            let stream_id = stream.id;
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for batch in 0..20u64 {
                    let records: Vec<PendingRecord> = (0..5u64)
                        .map(|i| PendingRecord {
                            shard_ordinal: (writer_id + i) % 3,
                            hash_key: protocol::hash::HashKey(0),
                            partition_key: format!("w{writer_id}"),
                            data: format!("{writer_id}-{batch}-{i}").into_bytes().into(),
                        })
                        .collect();
                    let expect: Vec<(u64, bytes::Bytes)> = records
                        .iter()
                        .map(|r| (r.shard_ordinal, r.data.clone()))
                        .collect();
                    let results = committer
                        .append(stream_id, "log", "000000000000", records)
                        .await
                        .unwrap();
                    for ((shard, data), result) in expect.into_iter().zip(results) {
                        let seq = result.unwrap();
                        assert_eq!(seq.shard_ordinal(), shard);
                        acked.push((shard, seq.counter(), data));
                    }
                }
                acked
            }));
        }
        let mut acked: HashMap<(u64, u64), bytes::Bytes> = HashMap::new();
        for task in tasks {
            for (shard, counter, data) in task.await.unwrap() {
                assert!(
                    acked.insert((shard, counter), data).is_none(),
                    "a sequence number was given twice"
                );
            }
        }
        assert_eq!(acked.len(), 16 * 20 * 5);
        drop(committer);
        writer.await.unwrap();

        for shard in 0..3u64 {
            let mut from = 0;
            let mut seen: Vec<(u64, bytes::Bytes)> = Vec::new();
            loop {
                let read = read_shard(
                    &catalog,
                    &store,
                    &keys,
                    "000000000000",
                    stream.id,
                    shard,
                    from,
                    37,
                    10 << 20,
                    0,
                )
                .await
                .unwrap();
                if read.records.is_empty() {
                    assert!(read.at_tip);
                    break;
                }
                seen.extend(read.records.into_iter().map(|r| (r.counter, r.record.data)));
                from = read.next_counter;
            }
            // Strictly increasing, gap-free counters from 1, each with the data acknowledged.
            for (i, (counter, data)) in seen.iter().enumerate() {
                assert_eq!(*counter, i as u64 + 1);
                assert_eq!(acked.get(&(shard, *counter)), Some(data));
            }
            let expected = acked.keys().filter(|(s, _)| *s == shard).count();
            assert_eq!(seen.len(), expected, "shard {shard}");
        }
    }
}

#[tokio::test]
async fn a_deleted_stream_takes_no_writes() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(&format!("sqlite://{}", dir.path().join("c.db").display()))
        .await
        .unwrap();
    let store = Arc::new(ObjectStore::Local(
        SegmentStore::open(
            &dir.path().join("objects"),
            protocol::clock::SystemClock::shared(),
        )
        .unwrap(),
    ));
    let stream = catalog
        .create_stream(&catalog::testing::provisioned_stream("gone", 1))
        .await
        .unwrap();
    catalog
        .delete_stream("000000000000", "gone", 0)
        .await
        .unwrap();
    let (committer, _writer) = Committer::spawn(
        catalog.clone(),
        store,
        keyring(&catalog),
        protocol::clock::SystemClock::shared(),
    );
    let results = committer
        .append(
            stream.id,
            "gone",
            "000000000000",
            vec![PendingRecord {
                shard_ordinal: 0,
                hash_key: protocol::hash::HashKey(0),
                partition_key: "k".into(),
                data: bytes::Bytes::from_static(b"d"),
            }],
        )
        .await
        .unwrap();
    assert!(
        matches!(
            &results[0],
            Err(storage::commit::AppendError::Refused(e))
                if e.code == protocol::ErrorCode::ResourceNotFound
        ),
        "{results:?}"
    );
}

#[tokio::test]
async fn a_shard_closed_by_a_split_takes_no_writes_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for catalog in catalog::testing::catalogs(dir.path()).await {
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(
                &dir.path().join("objects"),
                protocol::clock::SystemClock::shared(),
            )
            .unwrap(),
        ));
        let stream = catalog
            .create_stream(&catalog::testing::provisioned_stream("split", 1))
            .await
            .unwrap();
        let (committer, _writer) = Committer::spawn(
            catalog.clone(),
            store.clone(),
            keyring(&catalog),
            protocol::clock::SystemClock::shared(),
        );
        let record = || PendingRecord {
            shard_ordinal: 0,
            hash_key: protocol::hash::HashKey(5),
            partition_key: "k".into(),
            data: bytes::Bytes::from_static(b"d"),
        };
        let before = committer
            .append(stream.id, "split", "000000000000", vec![record()])
            .await
            .unwrap();
        assert!(before[0].is_ok());
        catalog
            .reshard(
                &catalog::streams::ReshardContext {
                    account_id: "000000000000",
                    name: "split",
                    region: "us-east-1",
                    now_ms: 1,
                    account_shards_max: 10,
                    updating_until_ms: None,
                    by_hand: false,
                },
                catalog::Reshard::Split {
                    shard: 0,
                    new_starting_key: protocol::hash::HashKey(1 << 100),
                },
            )
            .await
            .unwrap();
        let after = committer
            .append(stream.id, "split", "000000000000", vec![record()])
            .await
            .unwrap();
        // Not acknowledged, and handed back whole for routing again.
        assert!(
            matches!(
                &after[0],
                Err(storage::commit::AppendError::ShardClosed(r))
                    if r.shard_ordinal == 0 && r.data == "d" && r.hash_key.0 == 5
            ),
            "{after:?}"
        );
        // The closed shard holds exactly the record acknowledged before the split, and
        // ends with it: its next counter follows that record's, and its ending number
        // (AWS's form: the largest counter) follows every record of it.
        let reloaded = catalog.load_stream("000000000000", "split").await.unwrap();
        let parent = reloaded.shard(0).unwrap();
        let acked = before[0].as_ref().unwrap();
        assert_eq!(parent.next_sequence, acked.counter() + 1);
        let acked_number = parent.record_sequence_number(acked.counter(), acked.arrival_ms());
        assert!(parent.ending_sequence_number().unwrap() > acked_number);
        let read = read_shard(
            &catalog,
            &store,
            &keyring(&catalog),
            "000000000000",
            stream.id,
            0,
            0,
            100,
            1 << 20,
            0,
        )
        .await
        .unwrap();
        assert_eq!(read.records.len(), 1);
        assert!(read.at_tip);
    }
}
