//! The retention janitor, with a driven clock: chunks whose records outlived their
//! stream's retention lose their rows, a segment no row names any more is deleted, and
//! everything within retention stays readable. On SQLite and (when
//! SLUICE_TEST_POSTGRES_URL is set) on Postgres.

use std::sync::Arc;
use std::time::Duration;

use catalog::rootkey::RootKey;
use storage::commit::{Committer, PendingRecord};
use storage::keyring::Keyring;
use storage::objects::ObjectStore;
use storage::reader::read_shard;
use storage::segment::SegmentStore;

const HOUR_MS: i64 = 3_600_000;

fn records(tag: &str, n: usize) -> Vec<PendingRecord> {
    (0..n)
        .map(|i| PendingRecord {
            shard_ordinal: 0,
            hash_key: protocol::hash::HashKey(0),
            partition_key: "k".into(),
            data: format!("{tag}-{i}").into_bytes().into(),
        })
        .collect()
}

fn segments(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_chunks_and_their_segments_go_the_rest_stays() {
    let dir = tempfile::tempdir().unwrap();
    for (n, catalog) in catalog::testing::catalogs(dir.path())
        .await
        .into_iter()
        .enumerate()
    {
        let objects = dir.path().join(format!("objects-{n}"));
        let root = Arc::new(RootKey::from_bytes(&[9u8; 32]).unwrap());
        let keys = Arc::new(Keyring::new(
            catalog.clone(),
            root,
            envelope::RotationPolicy::default(),
            protocol::clock::SystemClock::shared(),
        ));
        let stream = catalog
            .create_stream(&catalog::testing::provisioned_stream("aging", 1))
            .await
            .unwrap();
        // An earlier process wrote the old records into its segment...
        let old_store = Arc::new(ObjectStore::Local(
            SegmentStore::open(&objects, protocol::clock::SystemClock::shared()).unwrap(),
        ));
        let (committer, writer) = Committer::spawn(
            catalog.clone(),
            old_store,
            keys.clone(),
            protocol::clock::SystemClock::shared(),
        );
        for r in committer
            .append(stream.id, "aging", "000000000000", records("old", 5))
            .await
            .unwrap()
        {
            r.unwrap();
        }
        drop(committer);
        writer.await.unwrap();
        // ...and this one writes the new records into a segment of its own.
        let store = Arc::new(ObjectStore::Local(
            SegmentStore::open(&objects, protocol::clock::SystemClock::shared()).unwrap(),
        ));
        let (committer, writer) = Committer::spawn(
            catalog.clone(),
            store.clone(),
            keys.clone(),
            protocol::clock::SystemClock::shared(),
        );
        for r in committer
            .append(stream.id, "aging", "000000000000", records("new", 3))
            .await
            .unwrap()
        {
            r.unwrap();
        }
        drop(committer);
        writer.await.unwrap();
        assert_eq!(segments(&objects).len(), 2);

        // The clock moves: the old chunk is 25 hours old, past the 24-hour retention.
        let now = protocol::clock::Clock::now_ms(&protocol::clock::SystemClock);
        let filter = catalog::testing::ChunkFilter {
            stream_id: Some(stream.id),
            first_sequence: Some(1),
            ..Default::default()
        };
        let edit = catalog::testing::ChunkEdit::ArrivalMs(now - 25 * HOUR_MS);
        catalog::testing::edit_chunks(&catalog, filter, edit)
            .await
            .unwrap();
        let swept = storage::janitor::sweep(&catalog, &store, now, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(swept.expired_rows, 1, "backend {n}");
        assert_eq!(swept.deleted_segments, 1, "backend {n}");
        assert_eq!(segments(&objects).len(), 1);

        // TRIM_HORIZON now starts at the new records, which read back whole.
        let read = read_shard(
            &catalog,
            &store,
            &keys,
            "000000000000",
            stream.id,
            0,
            0,
            100,
            10 << 20,
            now - 24 * HOUR_MS,
        )
        .await
        .unwrap();
        let data: Vec<String> = read
            .records
            .iter()
            .map(|r| String::from_utf8(r.record.data.to_vec()).unwrap())
            .collect();
        assert_eq!(data, vec!["new-0", "new-1", "new-2"], "backend {n}");
        assert_eq!(read.records[0].counter, 6);

        // A second pass finds nothing more; a young segment would be spared by the grace.
        let again = storage::janitor::sweep(&catalog, &store, now, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(again, storage::janitor::Swept::default());
    }
}
