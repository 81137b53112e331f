//! Compaction end to end, without HTTP: records of several shards written through
//! group commit (so segments interleave shards) are rewritten into per-shard objects,
//! read back identically from any position, still sealed to their new place, and the
//! janitor then deletes the old segments. On SQLite and (when SLUICE_TEST_POSTGRES_URL
//! is set) on Postgres.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use catalog::Catalog;
use catalog::compaction::{ChunkRow, Placement};
use catalog::rootkey::RootKey;
use catalog::testing::{self, ChunkEdit, ChunkFilter};
use storage::chunk::ChunkError;
use storage::commit::{Committer, PendingRecord};
use storage::keyring::Keyring;
use storage::objects::ObjectStore;
use storage::reader::{ReadError, read_shard};
use storage::segment::SegmentStore;

const ACCOUNT: &str = "000000000000";
const SHARDS: u64 = 3;

/// A keyring over `catalog` under a root key of `seed` bytes.
fn keyring(catalog: &Catalog, seed: u8) -> Arc<Keyring> {
    let root = Arc::new(RootKey::from_bytes(&[seed; 32]).unwrap());
    Arc::new(Keyring::new(
        catalog.clone(),
        root,
        envelope::RotationPolicy::default(),
        protocol::clock::SystemClock::shared(),
    ))
}

fn now_ms() -> i64 {
    protocol::clock::Clock::now_ms(&protocol::clock::SystemClock)
}

fn segments(dir: &std::path::Path) -> HashSet<String> {
    std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| format!("segments/{}", e.unwrap().file_name().into_string().unwrap()))
        .collect()
}

/// (counter, partition key, data, arrival) of every record of a shard from `from`.
type Read = Vec<(u64, String, bytes::Bytes, i64)>;

async fn read_from(
    catalog: &Catalog,
    store: &Arc<ObjectStore>,
    keys: &Keyring,
    stream_id: i64,
    shard: u64,
    from: u64,
) -> Result<Read, ReadError> {
    let mut out = Vec::new();
    let mut next = from;
    loop {
        // Small reads, so a read crosses many chunk boundaries.
        let read = read_shard(
            catalog,
            store,
            keys,
            ACCOUNT,
            stream_id,
            shard,
            next,
            7,
            10 << 20,
            0,
        )
        .await?;
        out.extend(read.records.into_iter().map(|r| {
            (
                r.counter,
                r.record.partition_key,
                r.record.data,
                r.record.arrival_ms,
            )
        }));
        next = read.next_counter;
        if read.at_tip {
            return Ok(out);
        }
    }
}

/// The one chunk row of a stream's shard.
async fn shard_row(catalog: &Catalog, stream_id: i64, shard: u64) -> ChunkRow {
    let mut rows: Vec<ChunkRow> = testing::chunk_rows(catalog)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.stream_id == stream_id && r.shard_ordinal == shard)
        .collect();
    assert_eq!(rows.len(), 1, "one row of shard {shard}");
    rows.remove(0)
}

/// Object key to the (stream, shard)s its rows belong to, and the row count.
async fn objects(catalog: &Catalog) -> (BTreeMap<String, HashSet<(i64, i64)>>, usize) {
    let rows = testing::chunk_rows(catalog).await.unwrap();
    let mut by_object: BTreeMap<String, HashSet<(i64, i64)>> = BTreeMap::new();
    for r in &rows {
        by_object
            .entry(r.object_key.clone())
            .or_default()
            .insert((r.stream_id, r.shard_ordinal as i64));
    }
    (by_object, rows.len())
}

async fn write_batches(
    catalog: &Catalog,
    store: Arc<ObjectStore>,
    keys: Arc<Keyring>,
    stream_id: i64,
    tag: &str,
    batches: usize,
) {
    let (committer, writer) = Committer::spawn(
        catalog.clone(),
        store,
        keys,
        protocol::clock::SystemClock::shared(),
    );
    for b in 0..batches {
        // One append per batch: one flush, one chunk per shard, all in one segment.
        let records: Vec<PendingRecord> = (0..SHARDS * 4)
            .map(|i| PendingRecord {
                shard_ordinal: i % SHARDS,
                hash_key: protocol::hash::HashKey(0),
                partition_key: format!("{tag}-key-{i}"),
                data: format!("{tag}-{b}-{i}-{}", "x".repeat((b * 37 + i as usize) % 300))
                    .into_bytes()
                    .into(),
            })
            .collect();
        for r in committer
            .append(stream_id, "compacting", ACCOUNT, records)
            .await
            .unwrap()
        {
            r.unwrap();
        }
    }
    drop(committer);
    writer.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_moves_every_record_into_per_shard_objects_and_drops_none() {
    let dir = tempfile::tempdir().unwrap();
    for (n, catalog) in catalog::testing::catalogs(dir.path())
        .await
        .into_iter()
        .enumerate()
    {
        let objects_dir = dir.path().join(format!("objects-{n}"));
        let keys = keyring(&catalog, 5);
        let stream = catalog
            .create_stream(&catalog::testing::provisioned_stream(
                "compacting",
                SHARDS as u32,
            ))
            .await
            .unwrap();
        // Two processes, one after the other: two segments, each interleaving shards.
        for tag in ["first", "second"] {
            let store = Arc::new(ObjectStore::Local(
                SegmentStore::open(&objects_dir, protocol::clock::SystemClock::shared()).unwrap(),
            ));
            write_batches(&catalog, store, keys.clone(), stream.id, tag, 12).await;
        }
        let old_segments = segments(&objects_dir);
        assert_eq!(old_segments.len(), 2, "backend {n}");
        let (before_objects, rows_before) = objects(&catalog).await;
        assert_eq!(rows_before, 2 * 12 * SHARDS as usize, "backend {n}");
        assert!(
            before_objects
                .values()
                .all(|shards| shards.len() == SHARDS as usize)
        );

        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(&objects_dir, protocol::clock::SystemClock::shared()).unwrap(),
        ));
        let mut before: HashMap<u64, Read> = HashMap::new();
        for shard in 0..SHARDS {
            let read = read_from(&catalog, &store, &keys, stream.id, shard, 0)
                .await
                .unwrap();
            assert_eq!(read.len(), 2 * 12 * 4, "backend {n}");
            before.insert(shard, read);
        }

        // Nothing has settled under the default settle time.
        let none = storage::compact::pass(
            &catalog,
            &store,
            &keys,
            now_ms(),
            storage::compact::SETTLE_DEFAULT,
        )
        .await
        .unwrap();
        assert_eq!(none, storage::compact::Compacted::default());

        // With no settle time, every shard is compacted in one batch.
        let done = storage::compact::pass(&catalog, &store, &keys, now_ms() + 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(done.batches, SHARDS, "backend {n}: {done:?}");
        assert_eq!(done.abandoned, 0);
        assert_eq!(done.chunks_in, rows_before as u64);
        assert_eq!(done.chunks_out, SHARDS, "small shards make one chunk each");

        // Every compacted shard's chunks live in objects of that shard alone, and
        // fewer rows name them.
        let (after_objects, rows_after) = objects(&catalog).await;
        assert_eq!(rows_after, SHARDS as usize, "backend {n}");
        assert!(after_objects.values().all(|shards| shards.len() == 1));
        assert!(after_objects.keys().all(|k| !old_segments.contains(k)));

        // Every record reads back identically, from several start positions.
        for shard in 0..SHARDS {
            let all = &before[&shard];
            let last = all.last().unwrap().0;
            for from in [0u64, 1, 5, 47, last, last + 1] {
                let read = read_from(&catalog, &store, &keys, stream.id, shard, from)
                    .await
                    .unwrap();
                let expected: Vec<_> = all.iter().filter(|r| r.0 >= from).cloned().collect();
                assert!(read == expected, "backend {n} shard {shard} from {from}");
            }
        }

        // A second pass finds nothing left to do.
        let again = storage::compact::pass(&catalog, &store, &keys, now_ms() + 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(again, storage::compact::Compacted::default());

        // The seal binds the new place: the same bytes elsewhere do not open.
        let row = shard_row(&catalog, stream.id, 1).await;
        let (object_key, offset, length) = (
            row.object_key.clone(),
            row.byte_offset as i64,
            row.byte_length as i64,
        );
        let ObjectStore::Local(local) = &*store else {
            unreachable!("the test's store is local")
        };
        let bytes = local
            .read(&object_key, offset as u64, length as usize)
            .unwrap();
        let elsewhere = local
            .write_object(bytes.len() + 8, |_, out| {
                out.extend_from_slice(&[0u8; 8]);
                out.extend_from_slice(&bytes);
            })
            .unwrap();
        let point = |key: String, offset: i64| {
            let catalog = catalog.clone();
            let filter = ChunkFilter {
                stream_id: Some(stream.id),
                shard_ordinal: Some(1),
                ..Default::default()
            };
            async move {
                testing::edit_chunks(&catalog, filter, ChunkEdit::ObjectKey(key)).await?;
                testing::edit_chunks(&catalog, filter, ChunkEdit::ByteOffset(offset)).await
            }
        };
        point(elsewhere.clone(), 8).await.unwrap();
        let moved = read_from(&catalog, &store, &keys, stream.id, 1, 0).await;
        assert!(
            matches!(
                moved,
                Err(ReadError::Chunk {
                    source: ChunkError::Open,
                    ..
                })
            ),
            "backend {n}: {moved:?}"
        );
        point(object_key.clone(), offset).await.unwrap();
        // A changed byte of the compacted chunk fails its check.
        let path = objects_dir.join(&object_key);
        let mut raw = std::fs::read(&path).unwrap();
        let at = offset as usize + storage::chunk::HEADER_BYTES + 20;
        raw[at] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(&objects_dir, protocol::clock::SystemClock::shared()).unwrap(),
        ));
        assert!(
            read_from(&catalog, &store, &keys, stream.id, 1, 0)
                .await
                .is_err()
        );
        raw[at] ^= 1;
        std::fs::write(&path, &raw).unwrap();

        // A swap whose old rows are no longer there as read changes nothing.
        let current = shard_row(&catalog, stream.id, 0).await;
        let gone = ChunkRow {
            object_key: old_segments.iter().next().unwrap().clone(),
            byte_offset: 0,
            placement: Placement::Flushed,
            ..current
        };
        assert!(
            !catalog
                .replace_chunks(std::slice::from_ref(&gone), std::slice::from_ref(&gone))
                .await
                .unwrap()
        );
        assert_eq!(objects(&catalog).await.1, SHARDS as usize);

        // The janitor (no grace, a fresh process) deletes the old segments and the
        // unnamed copy; every record still reads back.
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(&objects_dir, protocol::clock::SystemClock::shared()).unwrap(),
        ));
        let swept = storage::janitor::sweep(&catalog, &store, now_ms(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(swept.expired_rows, 0);
        assert_eq!(
            swept.deleted_segments,
            old_segments.len() + 1,
            "backend {n}"
        );
        let left = segments(&objects_dir);
        assert_eq!(
            left,
            after_objects.keys().cloned().collect::<HashSet<_>>(),
            "backend {n}"
        );
        for shard in 0..SHARDS {
            let read = read_from(&catalog, &store, &keys, stream.id, shard, 0)
                .await
                .unwrap();
            assert!(read == before[&shard], "backend {n} shard {shard}");
        }
    }
}

/// A row naming an object that is gone is an error after a bounded number of fresh
/// looks at the catalog (which is how a read that raced a swap and the janitor finds
/// the moved chunks), never a loop and never records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_naming_a_missing_object_fails_after_bounded_retries() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog::testing::catalogs(dir.path()).await.remove(0);
    let objects_dir = dir.path().join("objects");
    let keys = keyring(&catalog, 6);
    let stream = catalog
        .create_stream(&catalog::testing::provisioned_stream(
            "compacting",
            SHARDS as u32,
        ))
        .await
        .unwrap();
    let store = Arc::new(ObjectStore::Local(
        SegmentStore::open(&objects_dir, protocol::clock::SystemClock::shared()).unwrap(),
    ));
    write_batches(&catalog, store, keys.clone(), stream.id, "w", 2).await;
    let filter = ChunkFilter {
        shard_ordinal: Some(2),
        ..Default::default()
    };
    testing::edit_chunks(
        &catalog,
        filter,
        ChunkEdit::ObjectKey("segments/00-00.seg".into()),
    )
    .await
    .unwrap();
    let store = Arc::new(ObjectStore::Local(
        SegmentStore::open(&objects_dir, protocol::clock::SystemClock::shared()).unwrap(),
    ));
    let read = read_from(&catalog, &store, &keys, stream.id, 2, 0).await;
    assert!(
        matches!(&read, Err(ReadError::Object { source, .. }) if source.kind() == std::io::ErrorKind::NotFound),
        "{read:?}"
    );
}

/// Larger records: whole old chunks are grouped into new chunks of about 1 MiB, all in
/// one new object, each sealed for its own offset in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_chunks_group_into_several_chunks_of_one_object() {
    let dir = tempfile::tempdir().unwrap();
    for (n, catalog) in catalog::testing::catalogs(dir.path())
        .await
        .into_iter()
        .enumerate()
    {
        let objects_dir = dir.path().join(format!("objects-{n}"));
        let keys = keyring(&catalog, 7);
        let stream = catalog
            .create_stream(&catalog::testing::provisioned_stream("compacting", 1))
            .await
            .unwrap();
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(&objects_dir, protocol::clock::SystemClock::shared()).unwrap(),
        ));
        let (committer, writer) = Committer::spawn(
            catalog.clone(),
            store.clone(),
            keys.clone(),
            protocol::clock::SystemClock::shared(),
        );
        for b in 0..12u8 {
            let records = vec![
                PendingRecord {
                    shard_ordinal: 0,
                    hash_key: protocol::hash::HashKey(0),
                    partition_key: format!("big-{b}"),
                    data: vec![b; 200_000].into(),
                },
                PendingRecord {
                    shard_ordinal: 0,
                    hash_key: protocol::hash::HashKey(0),
                    partition_key: format!("small-{b}"),
                    data: vec![b, b].into(),
                },
            ];
            for r in committer
                .append(stream.id, "compacting", ACCOUNT, records)
                .await
                .unwrap()
            {
                r.unwrap();
            }
        }
        drop(committer);
        writer.await.unwrap();
        let before = read_from(&catalog, &store, &keys, stream.id, 0, 0)
            .await
            .unwrap();
        assert_eq!(before.len(), 24);

        let done = storage::compact::pass(&catalog, &store, &keys, now_ms() + 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!((done.batches, done.chunks_in), (1, 12), "backend {n}");
        assert_eq!(
            done.chunks_out, 3,
            "backend {n}: five, five and two old chunks"
        );
        let (by_object, rows) = objects(&catalog).await;
        assert_eq!((by_object.len(), rows), (1, 3), "backend {n}");
        for from in [0u64, 1, 9, 10, 11, 12, 22, 24, 25] {
            let read = read_from(&catalog, &store, &keys, stream.id, 0, from)
                .await
                .unwrap();
            let expected: Vec<_> = before.iter().filter(|r| r.0 >= from).cloned().collect();
            assert!(read == expected, "backend {n} from {from}");
        }
        // Nothing small is left to merge: a second pass does nothing.
        let again = storage::compact::pass(&catalog, &store, &keys, now_ms() + 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(again, storage::compact::Compacted::default());
    }
}

/// A stream whose master key is disabled is not compacted, even by a process that
/// still holds its data keys; enabled again, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_master_key_stops_compaction_of_its_stream() {
    use catalog::masterkeys::{KeyManager, KeyState, StateChange};

    let dir = tempfile::tempdir().unwrap();
    for (n, catalog) in catalog::testing::catalogs(dir.path())
        .await
        .into_iter()
        .enumerate()
    {
        let objects_dir = dir.path().join(format!("objects-{n}"));
        let root = Arc::new(RootKey::from_bytes(&[8u8; 32]).unwrap());
        // The keyring's clock is driven: its memory of key states ends when told.
        let clock = protocol::clock::ManualClock::at(now_ms());
        let keys = Arc::new(Keyring::new(
            catalog.clone(),
            root.clone(),
            envelope::RotationPolicy::default(),
            clock.clone(),
        ));
        let stream = catalog
            .create_stream(&catalog::testing::provisioned_stream(
                "compacting",
                SHARDS as u32,
            ))
            .await
            .unwrap();
        let key = catalog
            .create_master_key(&root, ACCOUNT, "", KeyManager::Customer, 0)
            .await
            .unwrap();
        catalog
            .set_stream_encryption(stream.id, Some(("alias/x", &key.key_id)))
            .await
            .unwrap();
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(&objects_dir, protocol::clock::SystemClock::shared()).unwrap(),
        ));
        write_batches(&catalog, store.clone(), keys.clone(), stream.id, "k", 3).await;
        let rows_before = objects(&catalog).await.1;
        let disable =
            |from, change| catalog.change_master_key_state(ACCOUNT, &key.key_id, from, change);
        assert!(
            disable(KeyState::Enabled, StateChange::Disable)
                .await
                .unwrap()
        );
        let done = storage::compact::pass(&catalog, &store, &keys, now_ms() + 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(done, storage::compact::Compacted::default(), "backend {n}");
        assert_eq!(objects(&catalog).await.1, rows_before);

        disable(KeyState::Disabled, StateChange::Enable)
            .await
            .unwrap();
        // The key state is remembered for a second: just short of it, still refused.
        clock.advance(storage::keyring::KEY_STATE_TTL - Duration::from_millis(1));
        let done = storage::compact::pass(&catalog, &store, &keys, now_ms() + 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(done, storage::compact::Compacted::default(), "backend {n}");
        clock.advance(Duration::from_millis(1));
        let done = storage::compact::pass(&catalog, &store, &keys, now_ms() + 1, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(done.batches, SHARDS, "backend {n}: {done:?}");
        assert_eq!(objects(&catalog).await.1, SHARDS as usize);
    }
}
