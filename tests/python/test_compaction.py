"""Compaction, black-box: records written to several shards (so the server's segments
interleave them) read back identically through boto3 after compaction moved them into
per-shard objects."""

from __future__ import annotations

import time

from conftest import create_stream
from harness import read_shard
from test_metrics import sample

SHARDS = 3


def compacted_chunks(server) -> float:
    try:
        return sample(server.admin("GET", "/metrics").body.decode(), "sluice_compacted_chunks_total")
    except AssertionError:
        return 0.0


def segment_files(server) -> set[str]:
    return {p.name for p in (server.data_dir / "objects" / "segments").iterdir()}


def test_records_read_back_identically_after_compaction(make_server):
    # No settle time: compaction runs at start and then every minute.
    server = make_server("--compaction-settle-seconds", "0")
    client = server.client()
    name = create_stream(client, shards=SHARDS, prefix="compaction")
    shard_ids = [s["ShardId"] for s in client.describe_stream(StreamName=name)["StreamDescription"]["Shards"]]
    assert len(shard_ids) == SHARDS
    for batch in range(10):
        records = [{"Data": f"{batch}-{i}-".encode() + bytes([i % 256]) * (i * 7 % 500),
                    "PartitionKey": f"key-{batch}-{i}"} for i in range(30)]
        r = client.put_records(StreamName=name, Records=records)
        assert r["FailedRecordCount"] == 0
    before = {shard: read_shard(client, name, shard) for shard in shard_ids}
    assert sum(len(v) for v in before.values()) == 300
    assert all(before.values()), "every shard got records"
    written = segment_files(server)

    # A restart: the first compaction pass runs as the server starts.
    server.restart()
    client = server.client()
    deadline = time.monotonic() + 60
    # One chunk per shard per PutRecords call that reached it.
    chunks = sum(len({r["Data"].split(b"-")[0] for r in recs}) for recs in before.values())
    while compacted_chunks(server) < chunks:
        assert time.monotonic() < deadline, f"compaction did not run\n{server.diagnostics()}"
        time.sleep(0.2)
    # One new object per shard, none of them a segment the writer wrote.
    assert len(segment_files(server) - written) == SHARDS

    for shard in shard_ids:
        after = read_shard(client, name, shard)
        assert [(r["SequenceNumber"], r["PartitionKey"], r["Data"], r["ApproximateArrivalTimestamp"])
                for r in after] == \
               [(r["SequenceNumber"], r["PartitionKey"], r["Data"], r["ApproximateArrivalTimestamp"])
                for r in before[shard]]
        # From the middle too (AT_SEQUENCE_NUMBER), through the moved chunks.
        middle = before[shard][len(before[shard]) // 2]
        tail = read_shard(client, name, shard, iterator_type="AT_SEQUENCE_NUMBER",
                          StartingSequenceNumber=middle["SequenceNumber"])
        assert [r["Data"] for r in tail] == [r["Data"] for r in before[shard][len(before[shard]) // 2:]]
