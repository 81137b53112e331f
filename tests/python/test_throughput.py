"""Per-shard throughput limits, on by default as Kinesis's: PutRecord refused with
ProvisionedThroughputExceededException, PutRecords failing just the records over the
limit with Kinesis's per-record error, GetRecords limited in calls and bytes."""

from __future__ import annotations

import time

from harness import expect_error, unique_name
from test_metrics import sample

SHARD0 = "shardId-000000000000"
# Kinesis's limits, which `sluice serve` applies by default (the harness turns them off
# for the other tests).
KINESIS_LIMITS = ("--shard-write-bytes-per-second", "1048576", "--shard-write-records-per-second", "1000",
                  "--shard-read-bytes-per-second", "2097152", "--shard-read-calls-per-second", "5")


def test_put_record_over_a_shards_record_rate_is_refused(make_server):
    # Kinesis's defaults, except 20 records/s so that the test is quick and exact.
    srv = make_server("--shard-write-records-per-second", "20")
    client = srv.client()
    client.create_stream(StreamName="hot", ShardCount=1)
    client.enable_enhanced_monitoring(StreamName="hot",
                                      ShardLevelMetrics=["WriteProvisionedThroughputExceeded"])
    ok = 0
    refused = None
    for i in range(40):
        try:
            client.put_record(StreamName="hot", Data=b"x", PartitionKey="k")
            ok += 1
        except client.exceptions.ProvisionedThroughputExceededException as e:
            refused = e
            break
    assert 20 <= ok < 40, ok
    msg = str(refused)
    assert f"Rate exceeded for shard {SHARD0} in stream hot under account 000000000000." in msg
    # A second later the shard takes records again.
    time.sleep(1.1)
    client.put_record(StreamName="hot", Data=b"x", PartitionKey="k")
    # The refusal is counted.
    metrics = srv.admin("GET", "/metrics").body.decode()
    assert 'sluice_throttled_total{account="000000000000",stream="hot"} 1' in metrics, metrics
    # With enhanced monitoring on, per shard too (and only the metric turned on).
    labels = {"account": "000000000000", "stream": "hot", "shard": SHARD0}
    assert sample(metrics, "sluice_shard_write_provisioned_throughput_exceeded_total", **labels) == 1
    assert "sluice_shard_incoming_records_total" not in metrics


def test_put_records_fails_only_the_records_over_the_limit(make_server):
    srv = make_server(*KINESIS_LIMITS)  # 1,000 records/s and 1 MiB/s per shard
    client = srv.client()
    client.create_stream(StreamName="two", ShardCount=2)
    desc = client.list_shards(StreamName="two")["Shards"]
    # Keys routed to shard 0 and to shard 1.
    key0 = next(f"k{i}" for i in range(1000) if _shard_of(desc, f"k{i}") == desc[0]["ShardId"])
    key1 = next(f"k{i}" for i in range(1000) if _shard_of(desc, f"k{i}") == desc[1]["ShardId"])
    # 600 x 1 KiB to shard 0 and 100 x 1 KiB to shard 1, twice in a row: shard 0 goes
    # over 1,000 records (and 1 MiB) in the second call, shard 1 never does.
    batch = [{"Data": b"a" * 1024, "PartitionKey": key0}] * 400 + [{"Data": b"b" * 1024, "PartitionKey": key1}] * 100
    first = client.put_records(StreamName="two", Records=batch)
    assert first["FailedRecordCount"] == 0, first["FailedRecordCount"]
    second = client.put_records(StreamName="two", Records=batch)
    third = client.put_records(StreamName="two", Records=batch)
    failed = [r for out in (second, third) for r in out["Records"] if "ErrorCode" in r]
    assert failed, "nothing was throttled"
    assert all(r["ErrorCode"] == "ProvisionedThroughputExceededException" for r in failed)
    assert all(r["ErrorMessage"].startswith(f"Rate exceeded for shard {desc[0]['ShardId']} in stream two")
               for r in failed)
    # Shard 1's records all went in; the failures are shard 0's alone, and each call's
    # count says so.
    for out in (second, third):
        assert out["FailedRecordCount"] == sum(1 for r in out["Records"] if "ErrorCode" in r)
        assert all("SequenceNumber" in r for r, sent in zip(out["Records"], batch) if sent["PartitionKey"] == key1)
    # What was acknowledged is exactly what is stored.
    acked = sum(1 for out in (first, second, third) for r in out["Records"] if "SequenceNumber" in r)
    stored = 0
    for shard in desc:
        it = client.get_shard_iterator(StreamName="two", ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        stored += len(client.get_records(ShardIterator=it, Limit=10000)["Records"])
        time.sleep(0.3)
    # (GetRecords returns at most 2 MiB per shard per second; 1,200 KiB fit in one call.)
    assert stored == acked, (stored, acked)


def test_get_records_is_limited_in_calls_per_second(make_server):
    srv = make_server(*KINESIS_LIMITS)  # 5 calls/s per shard
    client = srv.client()
    client.create_stream(StreamName="reads", ShardCount=1)
    client.enable_enhanced_monitoring(StreamName="reads", ShardLevelMetrics=["ALL"])
    it = client.get_shard_iterator(StreamName="reads", ShardId=SHARD0, ShardIteratorType="LATEST")["ShardIterator"]
    served = 0
    with expect_error("ProvisionedThroughputExceededException"):
        for _ in range(10):
            it = client.get_records(ShardIterator=it)["NextShardIterator"]
            served += 1
    assert served == 5, served
    time.sleep(1.1)
    client.get_records(ShardIterator=it)
    metrics = srv.admin("GET", "/metrics").body.decode()
    labels = {"account": "000000000000", "stream": "reads", "shard": SHARD0}
    assert sample(metrics, "sluice_shard_read_provisioned_throughput_exceeded_total", **labels) == 1


def test_a_large_read_makes_the_next_reads_wait(make_server):
    srv = make_server("--shard-read-bytes-per-second", "100000", "--shard-write-bytes-per-second", "0",
                      "--shard-write-records-per-second", "0")
    client = srv.client()
    client.create_stream(StreamName="big", ShardCount=1)
    client.put_records(StreamName="big", Records=[{"Data": b"z" * 50_000, "PartitionKey": "k"}] * 8)
    it = client.get_shard_iterator(StreamName="big", ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = client.get_records(ShardIterator=it)
    assert len(out["Records"]) == 8  # 400 KB: four seconds of this shard's read budget
    with expect_error("ProvisionedThroughputExceededException"):
        client.get_records(ShardIterator=out["NextShardIterator"])


def _shard_of(shards, key: str) -> str:
    import hashlib
    h = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
    for s in shards:
        r = s["HashKeyRange"]
        if int(r["StartingHashKey"]) <= h <= int(r["EndingHashKey"]):
            return s["ShardId"]
    raise AssertionError(key)


def test_the_on_demand_stream_limit_holds_and_describe_limits_reports_it(make_server):
    srv = make_server("--account-shard-limit", "1000")
    client = srv.client()
    for i in range(50):
        client.create_stream(StreamName=f"od-{i}", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    limits = client.describe_limits()
    assert (limits["OnDemandStreamCount"], limits["OnDemandStreamCountLimit"]) == (50, 50)
    with expect_error("LimitExceededException") as refused:
        client.create_stream(StreamName="od-50", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert "on-demand stream count limit" in str(refused.exc)
    # Provisioned streams are counted against shards only; deleting frees a place.
    client.create_stream(StreamName="provisioned", ShardCount=1)
    client.delete_stream(StreamName="od-0")
    client.create_stream(StreamName="od-50", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert client.describe_limits()["OnDemandStreamCount"] == 50


def test_the_on_demand_stream_limit_is_configurable(make_server):
    srv = make_server("--account-on-demand-stream-limit", "3")
    client = srv.client()
    for i in range(3):
        client.create_stream(StreamName=f"od-{i}", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    limits = client.describe_limits()
    assert (limits["OnDemandStreamCount"], limits["OnDemandStreamCountLimit"]) == (3, 3)
    with expect_error("LimitExceededException") as refused:
        client.create_stream(StreamName="od-3", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert str(refused.exc).endswith(
        "This request would exceed the on-demand stream count limit for the account 000000000000 in "
        "us-east-1. Current limit of on-demand streams is 3."), str(refused.exc)
