"""Resharding: SplitShard, MergeShards and UpdateShardCount (UNIFORM_SCALING), lineage
(ParentShardId, AdjacentParentShardId), closed shards that read to their end and then
name their ChildShards, ListShards filters over closed shards, and writers that keep
writing through it all: every acknowledged record is read exactly once by a reader that
reads parents before children, in the order it was acknowledged per partition key."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

from harness import expect_error

HALF = 2**127
MAX = 2**128 - 1


def hash_key(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")


def all_shards(client, name: str, **filter_args) -> list[dict]:
    shards, token = [], None
    while True:
        args = {"NextToken": token} if token else {"StreamName": name, **filter_args}
        page = client.list_shards(**args)
        shards += page["Shards"]
        token = page.get("NextToken")
        if not token:
            return shards


def open_shards(client, name: str) -> list[dict]:
    return [s for s in all_shards(client, name) if "EndingSequenceNumber" not in s["SequenceNumberRange"]]


def assert_covers_key_space(shards: list[dict]) -> None:
    ranges = sorted((int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in shards)
    assert ranges[0][0] == 0 and ranges[-1][1] == MAX, ranges
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        assert start == end + 1, ranges


def test_split_and_merge_make_lineage(kinesis, new_stream):
    name = new_stream(shards=1)
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(HALF))
    shards = {s["ShardId"]: s for s in all_shards(kinesis, name)}
    assert list(shards) == ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]
    parent = shards["shardId-000000000000"]
    assert "EndingSequenceNumber" in parent["SequenceNumberRange"]
    low, high = shards["shardId-000000000001"], shards["shardId-000000000002"]
    assert low["ParentShardId"] == high["ParentShardId"] == "shardId-000000000000"
    assert "AdjacentParentShardId" not in low
    assert low["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(HALF - 1)}
    assert high["HashKeyRange"] == {"StartingHashKey": str(HALF), "EndingHashKey": str(MAX)}
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 2

    # The pair in the other order is not adjacent, as Kinesis answers.
    with expect_error("InvalidArgumentException"):
        kinesis.merge_shards(StreamName=name, ShardToMerge="shardId-000000000002",
                             AdjacentShardToMerge="shardId-000000000001")
    kinesis.merge_shards(StreamName=name, ShardToMerge="shardId-000000000001",
                         AdjacentShardToMerge="shardId-000000000002")
    shards = {s["ShardId"]: s for s in all_shards(kinesis, name)}
    merged = shards["shardId-000000000003"]
    assert merged["ParentShardId"] == "shardId-000000000001"
    assert merged["AdjacentParentShardId"] == "shardId-000000000002"
    assert merged["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(MAX)}
    assert [s["ShardId"] for s in open_shards(kinesis, name)] == ["shardId-000000000003"]
    # DescribeStream shows every shard, closed ones with their ending sequence number.
    described = kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    assert len(described) == 4


def test_reshard_refusals_are_kinesis_errors(kinesis, raw_kinesis, new_stream):
    name = new_stream(shards=2)
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**64))
    with expect_error("InvalidArgumentException", "already been merged or split"):
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**63))
    with expect_error("InvalidArgumentException", "NewStartingHashKey"):
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000001", NewStartingHashKey="1")
    with expect_error("ResourceNotFoundException", "shardId-000000000099"):
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000099", NewStartingHashKey=str(HALF))
    with expect_error("ValidationException", "newStartingHashKey"):
        raw_kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000001", NewStartingHashKey="01")
    # Shard 2 holds [0, 2^64), shard 3 [2^64, half), shard 1 [half, max]: 2 and 1 do not touch.
    with expect_error("InvalidArgumentException", "not an adjacent pair"):
        kinesis.merge_shards(StreamName=name, ShardToMerge="shardId-000000000002",
                             AdjacentShardToMerge="shardId-000000000001")
    with expect_error("LimitExceededException", "double"):
        kinesis.update_shard_count(StreamName=name, TargetShardCount=7, ScalingType="UNIFORM_SCALING")
    with expect_error("LimitExceededException", "half"):
        kinesis.update_shard_count(StreamName=name, TargetShardCount=1, ScalingType="UNIFORM_SCALING")
    with expect_error("ValidationException", "scalingType"):
        raw_kinesis.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="SIDEWAYS")
    with expect_error("ResourceNotFoundException"):
        kinesis.split_shard(StreamName="no-such-stream", ShardToSplit="shardId-000000000000",
                            NewStartingHashKey=str(HALF))
    assert_covers_key_space(open_shards(kinesis, name))


def test_update_shard_count_scales_uniformly(kinesis, new_stream):
    name = new_stream(shards=4)
    out = kinesis.update_shard_count(StreamName=name, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    assert out["CurrentShardCount"] == 4 and out["TargetShardCount"] == 3
    assert out["StreamARN"].endswith(f":stream/{name}")
    now_open = open_shards(kinesis, name)
    assert len(now_open) == 3
    assert_covers_key_space(now_open)
    widths = [int(s["HashKeyRange"]["EndingHashKey"]) - int(s["HashKeyRange"]["StartingHashKey"]) for s in now_open]
    assert max(widths) - min(widths) <= 3, widths
    # Every shard has at most a parent and an adjacent parent, both shards of the stream.
    ids = {s["ShardId"] for s in all_shards(kinesis, name)}
    for shard in all_shards(kinesis, name):
        for key in ("ParentShardId", "AdjacentParentShardId"):
            assert shard.get(key, next(iter(ids))) in ids
    kinesis.update_shard_count(StreamName=name, TargetShardCount=6, ScalingType="UNIFORM_SCALING")
    assert len(open_shards(kinesis, name)) == 6
    assert_covers_key_space(open_shards(kinesis, name))
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 6


def test_a_closed_shard_reads_to_its_end_then_names_its_children(kinesis, new_stream):
    name = new_stream(shards=1)
    for i in range(5):
        kinesis.put_record(StreamName=name, Data=f"before-{i}".encode(), PartitionKey=f"k{i}")
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(HALF))
    after = kinesis.put_record(StreamName=name, Data=b"after", PartitionKey="k0")
    expected_child = "shardId-000000000001" if hash_key("k0") < HALF else "shardId-000000000002"
    assert after["ShardId"] == expected_child

    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seen, last = [], None
    for _ in range(20):
        last = kinesis.get_records(ShardIterator=it, Limit=2)
        seen += [r["Data"] for r in last["Records"]]
        if "NextShardIterator" not in last:
            break
        it = last["NextShardIterator"]
    assert seen == [f"before-{i}".encode() for i in range(5)]
    assert "NextShardIterator" not in last
    children = last["ChildShards"]
    assert [c["ShardId"] for c in children] == ["shardId-000000000001", "shardId-000000000002"]
    assert all(c["ParentShards"] == ["shardId-000000000000"] for c in children)
    assert children[0]["HashKeyRange"]["EndingHashKey"] == str(HALF - 1)
    # LATEST on the closed shard is at its end at once.
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="LATEST")["ShardIterator"]
    out = kinesis.get_records(ShardIterator=it)
    assert out["Records"] == [] and "NextShardIterator" not in out and len(out["ChildShards"]) == 2
    # An open shard has no ChildShards.
    it = kinesis.get_shard_iterator(StreamName=name, ShardId=expected_child,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = kinesis.get_records(ShardIterator=it)
    assert [r["Data"] for r in out["Records"]] == [b"after"]
    assert "ChildShards" not in out and "NextShardIterator" in out


def test_list_shards_filters_see_closed_shards(kinesis, new_stream):
    name = new_stream(shards=1)
    before = time.time()
    time.sleep(0.05)
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(HALF))
    time.sleep(0.05)
    later = time.time()

    def ids(**f):
        return [s["ShardId"] for s in all_shards(kinesis, name, ShardFilter=f)]

    assert ids(Type="AT_LATEST") == ["shardId-000000000001", "shardId-000000000002"]
    assert ids(Type="AT_TRIM_HORIZON") == ["shardId-000000000000"]
    assert ids(Type="FROM_TRIM_HORIZON") == ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]
    assert ids(Type="AFTER_SHARD_ID", ShardId="shardId-000000000000") == ["shardId-000000000001", "shardId-000000000002"]
    assert ids(Type="AT_TIMESTAMP", Timestamp=before) == ["shardId-000000000000"]
    assert ids(Type="AT_TIMESTAMP", Timestamp=later) == ["shardId-000000000001", "shardId-000000000002"]
    assert ids(Type="FROM_TIMESTAMP", Timestamp=before) == ["shardId-000000000000", "shardId-000000000001",
                                                             "shardId-000000000002"]
    assert ids(Type="FROM_TIMESTAMP", Timestamp=later) == ["shardId-000000000001", "shardId-000000000002"]


def read_following_lineage(client, name: str) -> dict[str, list[tuple[str, bytes, str]]]:
    """Reads every shard from TRIM_HORIZON, parents before children; returns per shard
    the (partition key, data, sequence number) of its records in order."""
    shards = {s["ShardId"]: s for s in all_shards(client, name)}
    done: dict[str, list] = {}
    while len(done) < len(shards):
        ready = [sid for sid, s in shards.items() if sid not in done
                 and all(p in done or p not in shards
                         for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)]
        assert ready, "lineage has a cycle"
        for sid in ready:
            it = client.get_shard_iterator(StreamName=name, ShardId=sid,
                                           ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            records = []
            while True:
                out = client.get_records(ShardIterator=it, Limit=10000)
                records += [(r["PartitionKey"], r["Data"], r["SequenceNumber"]) for r in out["Records"]]
                if "NextShardIterator" not in out:
                    break  # a closed shard, read to its end
                if not out["Records"] and out["MillisBehindLatest"] == 0:
                    break  # an open shard, read to its tip (the writers have stopped)
                it = out["NextShardIterator"]
            done[sid] = records
    return done


def test_writers_keep_writing_through_resharding(kinesis, new_stream):
    name = new_stream(shards=2)
    stop = threading.Event()
    acked: dict[str, list[bytes]] = {}  # partition key -> data, in acknowledgement order
    errors: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        keys = [f"w{w}-{uuid.uuid4().hex[:8]}" for _ in range(16)]
        n = 0
        while not stop.is_set():
            n += 1
            if n % 3:
                key = keys[n % len(keys)]
                data = f"{key}/{n}".encode()
                try:
                    kinesis.put_record(StreamName=name, Data=data, PartitionKey=key)
                except Exception as e:  # noqa: BLE001 - any refusal is recorded and fails the test
                    errors.append(repr(e))
                    continue
                with lock:
                    acked.setdefault(key, []).append(data)
            else:
                # One record per key per call, so a failed entry cannot reorder its key.
                batch = [{"Data": f"{k}/{n}".encode(), "PartitionKey": k} for k in keys]
                out = kinesis.put_records(StreamName=name, Records=batch)
                with lock:
                    for entry, result in zip(batch, out["Records"]):
                        if "SequenceNumber" in result:
                            acked.setdefault(entry["PartitionKey"], []).append(entry["Data"])
                        else:
                            errors.append(result["ErrorCode"])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**126))
        assert_covers_key_space(open_shards(kinesis, name))
        time.sleep(0.3)
        kinesis.merge_shards(StreamName=name, ShardToMerge="shardId-000000000003",
                             AdjacentShardToMerge="shardId-000000000001")
        assert_covers_key_space(open_shards(kinesis, name))
        time.sleep(0.3)
        for target in (4, 3, 5, 3):
            kinesis.update_shard_count(StreamName=name, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
            assert len(open_shards(kinesis, name)) == target
            assert_covers_key_space(open_shards(kinesis, name))
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    total = sum(len(v) for v in acked.values())
    assert total > 100, total

    per_shard = read_following_lineage(kinesis, name)
    ranges = {s["ShardId"]: (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
              for s in all_shards(kinesis, name)}
    read: dict[str, list[bytes]] = {}
    sequence_numbers = set()
    # Shards in the order the reader finished them: parents before children.
    for sid, records in per_shard.items():
        lo, hi = ranges[sid]
        for key, data, seq in records:
            assert lo <= hash_key(key) <= hi, f"{key} in {sid}"
            assert seq not in sequence_numbers
            sequence_numbers.add(seq)
            read.setdefault(key, []).append(data)
    # Exactly once, and in acknowledgement order per partition key.
    assert read == acked


def test_update_shard_count_is_limited_to_ten_calls_a_day(kinesis, new_stream):
    name = new_stream(shards=1)
    for i in range(10):
        kinesis.update_shard_count(StreamName=name, TargetShardCount=2 if i % 2 == 0 else 1,
                                   ScalingType="UNIFORM_SCALING")
    with expect_error("LimitExceededException", "24 hours"):
        kinesis.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    # Splits and merges are not counted.
    kinesis.split_shard(StreamName=name, ShardToSplit=open_shards(kinesis, name)[0]["ShardId"],
                        NewStartingHashKey=str(HALF))
    assert len(open_shards(kinesis, name)) == 2
    assert_covers_key_space(open_shards(kinesis, name))


def test_a_reshard_makes_the_stream_updating_and_counts_against_the_shard_limit(make_server):
    srv = make_server("--stream-transition-ms", "1500", "--account-shard-limit", "3")
    client = srv.client()
    client.create_stream(StreamName="busy", ShardCount=2)
    client.get_waiter("stream_exists").wait(StreamName="busy", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    client.split_shard(StreamName="busy", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**100))
    summary = client.describe_stream_summary(StreamName="busy")["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "UPDATING" and summary["OpenShardCount"] == 3
    # Records flow while UPDATING; another reshard waits for ACTIVE.
    client.put_record(StreamName="busy", Data=b"during", PartitionKey="k")
    with expect_error("ResourceInUseException", "not ACTIVE, instead in state UPDATING"):
        client.merge_shards(StreamName="busy", ShardToMerge="shardId-000000000002",
                            AdjacentShardToMerge="shardId-000000000003")
    client.get_waiter("stream_exists").wait(StreamName="busy", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    # A fourth open shard is past the account's limit of 3; nothing changes.
    with expect_error("LimitExceededException", "shard limit"):
        client.split_shard(StreamName="busy", ShardToSplit="shardId-000000000001", NewStartingHashKey=str(2**127 + 5))
    assert len(open_shards(client, "busy")) == 3
    assert client.describe_stream_summary(StreamName="busy")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    with expect_error("LimitExceededException"):
        client.update_shard_count(StreamName="busy", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    # Merging gives a shard back, within the limit.
    client.merge_shards(StreamName="busy", ShardToMerge="shardId-000000000002",
                        AdjacentShardToMerge="shardId-000000000003")
    assert client.describe_limits()["OpenShardCount"] == 2
