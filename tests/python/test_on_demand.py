"""The on-demand mode: UpdateStreamMode switches a stream between PROVISIONED and
ON_DEMAND; an ON_DEMAND stream splits a hot shard and merges cold ones by itself,
within the configured bounds, and every acknowledged record stays readable by a reader
that follows lineage."""

from __future__ import annotations

import threading
import time

from harness import expect_error
from test_resharding import (all_shards, assert_covers_key_space, hash_key, open_shards,
                             read_following_lineage)


def mode(client, name: str) -> str:
    return client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"]


def test_update_stream_mode_switches_and_on_demand_refuses_manual_resharding(kinesis, new_stream):
    name = new_stream(shards=2)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert mode(kinesis, name) == "ON_DEMAND"
    # AWS answers a reshard by hand of an on-demand stream ValidationException.
    with expect_error("ValidationException", "ON_DEMAND"):
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**100))
    with expect_error("ValidationException", "ON_DEMAND"):
        kinesis.merge_shards(StreamName=name, ShardToMerge="shardId-000000000000",
                             AdjacentShardToMerge="shardId-000000000001")
    with expect_error("ValidationException", "ON_DEMAND"):
        kinesis.update_shard_count(StreamName=name, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "PROVISIONED"})
    assert mode(kinesis, name) == "PROVISIONED"
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**100))
    with expect_error("ResourceNotFoundException"):
        kinesis.update_stream_mode(StreamARN=arn.replace(name, name + "-gone"),
                                   StreamModeDetails={"StreamMode": "ON_DEMAND"})


def test_an_on_demand_stream_splits_when_hot_and_merges_when_cold(make_server):
    srv = make_server("--shard-write-records-per-second", "100", "--on-demand-window-seconds", "2",
                      "--on-demand-shards-max", "6")
    client = srv.client()
    client.create_stream(StreamName="od", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    client.get_waiter("stream_exists").wait(StreamName="od", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    first = open_shards(client, "od")
    assert len(first) == 4
    low, high = int(first[0]["HashKeyRange"]["StartingHashKey"]), int(first[0]["HashKeyRange"]["EndingHashKey"])
    hot_keys = [k for k in (f"hot-{i}" for i in range(2000)) if low <= hash_key(k) <= high][:40]

    acked: dict[str, list[bytes]] = {}
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            batch = [{"Data": f"{k}/{n}".encode(), "PartitionKey": k} for k in hot_keys]
            n += 1
            out = client.put_records(StreamName="od", Records=batch)
            for entry, result in zip(batch, out["Records"]):
                if "SequenceNumber" in result:
                    acked.setdefault(entry["PartitionKey"], []).append(entry["Data"])
            time.sleep(0.2)  # about 200 records/s offered to the first shard's range

    def inside_hot_range(shards: list[dict]) -> int:
        return sum(1 for s in shards if low <= int(s["HashKeyRange"]["StartingHashKey"]) <= high)

    t = threading.Thread(target=writer)
    t.start()
    hot_shards = cold_shards = None
    try:
        # The hot range splits into more shards while the three idle shards merge (the
        # stream keeps at least 4 and at most 6 open).
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            now_open = open_shards(client, "od")
            assert_covers_key_space(now_open)
            assert 4 <= len(now_open) <= 6, len(now_open)
            hot_shards = inside_hot_range(now_open)
            cold_shards = len(now_open) - hot_shards
            if hot_shards >= 3 and cold_shards < 3:
                break
            time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    assert hot_shards >= 3 and cold_shards < 3, (hot_shards, cold_shards)
    shards = {s["ShardId"]: s for s in all_shards(client, "od")}
    assert "EndingSequenceNumber" in shards[first[0]["ShardId"]]["SequenceNumberRange"]

    # Cold now: it merges back to its minimum (4), never below.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        now_open = open_shards(client, "od")
        assert_covers_key_space(now_open)
        assert len(now_open) >= 4
        if len(now_open) == 4:
            break
        time.sleep(0.5)
    assert len(open_shards(client, "od")) == 4
    time.sleep(2.5)
    assert len(open_shards(client, "od")) == 4

    read: dict[str, list[bytes]] = {}
    for records in read_following_lineage(client, "od").values():
        for key, data, _ in records:
            read.setdefault(key, []).append(data)
    assert read == acked
    assert sum(len(v) for v in acked.values()) > 100


def test_update_stream_mode_keeps_the_on_demand_stream_limit(make_server):
    srv = make_server("--account-on-demand-stream-limit", "1")
    client = srv.client()
    client.create_stream(StreamName="od", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    client.create_stream(StreamName="prov", ShardCount=1)
    arn = client.describe_stream_summary(StreamName="prov")["StreamDescriptionSummary"]["StreamARN"]
    with expect_error("LimitExceededException", "on-demand stream count limit"):
        client.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert mode(client, "prov") == "PROVISIONED"


def test_bad_on_demand_bounds_are_refused(binary, tmp_path):
    import os
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    for args, named in ((["--on-demand-shards-min", "0"], b"on-demand shard bounds"),
                        (["--on-demand-shards-min", "9", "--on-demand-shards-max", "8"], b"on-demand shard bounds"),
                        (["--on-demand-window-seconds", "0"], b"SLUICE_ON_DEMAND_WINDOW_SECONDS")):
        r = subprocess.run([str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), *args],
                           env=env, capture_output=True, timeout=30)
        assert r.returncode != 0 and named in r.stderr, (args, r.stderr)
