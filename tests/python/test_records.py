"""PutRecord, PutRecords, routing, ordering, and their validation limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import pytest
from harness import arn, expect_error, read_shard

MiB = 1024 * 1024
MAX_HASH = 2**128 - 1


def md5_hash_key(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def shard_for(shards: list[dict], hash_key: int) -> str:
    for s in shards:
        if int(s["HashKeyRange"]["StartingHashKey"]) <= hash_key <= int(s["HashKeyRange"]["EndingHashKey"]):
            return s["ShardId"]
    raise AssertionError(f"no shard holds {hash_key}")


def test_put_record_and_read_back(kinesis, new_stream):
    name = new_stream()
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    r = kinesis.put_record(StreamName=name, Data=b"hello \x00\xff world", PartitionKey="pk-1")
    assert r["ShardId"] == "shardId-000000000000"
    seq = r["SequenceNumber"]
    assert seq.isdigit() and int(seq) >= 0
    # Every record is sealed at rest under a KMS-wrapped data key, and says so.
    assert r["EncryptionType"] == "KMS"
    recs = read_shard(kinesis, name, "shardId-000000000000")
    assert len(recs) == 1
    assert recs[0]["EncryptionType"] == "KMS"
    rec = recs[0]
    assert rec["Data"] == b"hello \x00\xff world"
    assert rec["PartitionKey"] == "pk-1"
    assert rec["SequenceNumber"] == seq
    arrival = rec["ApproximateArrivalTimestamp"]
    assert before <= arrival <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)


def test_put_record_by_arn(kinesis, new_stream):
    name = new_stream()
    r = kinesis.put_record(StreamARN=arn(name), Data=b"via arn", PartitionKey="k")
    recs = read_shard(kinesis, name, r["ShardId"])
    assert [x["Data"] for x in recs] == [b"via arn"]
    r = kinesis.put_records(StreamARN=arn(name), Records=[{"Data": b"batch via arn", "PartitionKey": "k"}])
    assert r["FailedRecordCount"] == 0
    it = kinesis.get_shard_iterator(StreamARN=arn(name), ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = kinesis.get_records(ShardIterator=it, StreamARN=arn(name))["Records"]
    assert [x["Data"] for x in got] == [b"via arn", b"batch via arn"]


def test_empty_data_is_accepted(kinesis, new_stream):
    name = new_stream()
    kinesis.put_record(StreamName=name, Data=b"", PartitionKey="k")
    recs = read_shard(kinesis, name, "shardId-000000000000")
    assert [x["Data"] for x in recs] == [b""]


def test_sequence_numbers_increase_across_calls(kinesis, new_stream):
    """Ordering across several PutRecords and PutRecord calls on one shard."""
    name = new_stream()
    expected: list[tuple[str, bytes]] = []
    for call in range(6):
        if call % 2:
            data = f"single-{call}".encode()
            r = kinesis.put_record(StreamName=name, Data=data, PartitionKey=f"pk{call}")
            expected.append((r["SequenceNumber"], data))
        else:
            batch = [{"Data": f"batch-{call}-{i}".encode(), "PartitionKey": f"pk{i}"} for i in range(100)]
            r = kinesis.put_records(StreamName=name, Records=batch)
            assert r["FailedRecordCount"] == 0
            assert len(r["Records"]) == 100
            for entry, res in zip(batch, r["Records"]):
                assert res["ShardId"] == "shardId-000000000000"
                expected.append((res["SequenceNumber"], entry["Data"]))
    seqs = [int(s) for s, _ in expected]
    assert all(a < b for a, b in zip(seqs, seqs[1:])), "sequence numbers are not strictly increasing"
    recs = read_shard(kinesis, name, "shardId-000000000000", limit=37)
    assert [(x["SequenceNumber"], x["Data"]) for x in recs] == expected
    arrivals = [x["ApproximateArrivalTimestamp"] for x in recs]
    assert arrivals == sorted(arrivals), "arrival timestamps go backwards within a shard"


def test_routing_by_md5(kinesis, new_stream):
    name = new_stream(shards=4)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    keys = [f"key-{i}" for i in range(40)] + ["ü-unicode-ключ", "x" * 256]
    per_shard: dict[str, list[bytes]] = {}
    for k in keys:
        want = shard_for(shards, md5_hash_key(k))
        r = kinesis.put_record(StreamName=name, Data=k.encode(), PartitionKey=k)
        assert r["ShardId"] == want, f"partition key {k!r} went to {r['ShardId']}, MD5 says {want}"
        per_shard.setdefault(want, []).append(k.encode())
    assert len(per_shard) == 4, "40 keys should reach all 4 shards"
    # PutRecords routes the same way
    r = kinesis.put_records(StreamName=name, Records=[{"Data": k.encode(), "PartitionKey": k} for k in keys])
    for k, res in zip(keys, r["Records"]):
        assert res["ShardId"] == shard_for(shards, md5_hash_key(k))
        per_shard[res["ShardId"]].append(k.encode())
    for sid, datas in per_shard.items():
        assert [x["Data"] for x in read_shard(kinesis, name, sid)] == datas


def test_explicit_hash_key_overrides(kinesis, new_stream):
    name = new_stream(shards=4)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    cases = {
        "0": "shardId-000000000000",
        str(MAX_HASH): "shardId-000000000003",
        shards[2]["HashKeyRange"]["StartingHashKey"]: "shardId-000000000002",
        shards[1]["HashKeyRange"]["EndingHashKey"]: "shardId-000000000001",
    }
    pk = "same-partition-key"
    for ehk, want in cases.items():
        r = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey=pk, ExplicitHashKey=ehk)
        assert r["ShardId"] == want, f"ExplicitHashKey {ehk} went to {r['ShardId']}"
    r = kinesis.put_records(StreamName=name, Records=[
        {"Data": b"x", "PartitionKey": pk, "ExplicitHashKey": ehk} for ehk in cases])
    assert [x["ShardId"] for x in r["Records"]] == list(cases.values())


@pytest.mark.parametrize("ehk", ["abc", "01", "-1", "1.5", " 1", "1" + "0" * 39])
def test_explicit_hash_key_pattern(raw_kinesis, new_stream, ehk):
    name = new_stream()
    with expect_error("ValidationException"):
        raw_kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=ehk)
    with expect_error("ValidationException"):
        raw_kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": ehk}])


@pytest.mark.parametrize("ehk", [str(2**128), "9" * 39])
def test_explicit_hash_key_range(kinesis, new_stream, ehk):
    name = new_stream()
    with expect_error("InvalidArgumentException"):
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=ehk)
    with expect_error("InvalidArgumentException"):
        kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": ehk}])


def test_partition_key_length_bounds(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    kinesis.put_record(StreamName=name, Data=b"a", PartitionKey="k")  # 1 char
    kinesis.put_record(StreamName=name, Data=b"b", PartitionKey="p" * 256)
    kinesis.put_records(StreamName=name, Records=[{"Data": b"c", "PartitionKey": "p" * 256}])
    with expect_error("ValidationException"):
        raw_kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="p" * 257)
    with expect_error("ValidationException"):
        raw_kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="")
    with expect_error("ValidationException"):
        raw_kinesis.put_records(StreamName=name, Records=[{"Data": b"ok", "PartitionKey": "k"},
                                                          {"Data": b"x", "PartitionKey": "p" * 257}])
    with expect_error("ValidationException"):
        raw_kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": ""}])
    # none of the refused requests wrote anything
    assert [x["Data"] for x in read_shard(kinesis, name, "shardId-000000000000")] == [b"a", b"b", b"c"]


def test_partition_key_length_counts_characters(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    r = kinesis.put_record(StreamName=name, Data=b"u", PartitionKey="é" * 256)  # 512 bytes of UTF-8
    recs = read_shard(kinesis, name, r["ShardId"])
    assert recs[0]["PartitionKey"] == "é" * 256
    with expect_error("ValidationException"):
        raw_kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="é" * 257)


def test_record_size_bounds(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    # data + partition key of exactly 1 MiB is accepted, and reads back intact
    big = os.urandom(MiB - 1)
    r = kinesis.put_record(StreamName=name, Data=big, PartitionKey="k")
    # data of exactly 1 MiB alone is within the data bound; with the key it is 1 byte over the record bound
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.put_record(StreamName=name, Data=os.urandom(MiB), PartitionKey="k")
    # data alone over 1 MiB
    with expect_error("ValidationException"):
        raw_kinesis.put_record(StreamName=name, Data=os.urandom(MiB + 1), PartitionKey="k")
    with expect_error("ValidationException", "InvalidArgumentException"):
        raw_kinesis.put_records(StreamName=name, Records=[{"Data": os.urandom(MiB), "PartitionKey": "k"}])
    with expect_error("ValidationException"):
        raw_kinesis.put_records(StreamName=name, Records=[{"Data": os.urandom(MiB + 1), "PartitionKey": "k"}])
    recs = read_shard(kinesis, name, r["ShardId"])
    assert len(recs) == 1 and recs[0]["Data"] == big and recs[0]["SequenceNumber"] == r["SequenceNumber"]


def test_put_records_count_bounds(kinesis, raw_kinesis, new_stream):
    name = new_stream(shards=2)
    batch = [{"Data": f"r{i}".encode(), "PartitionKey": f"k{i}"} for i in range(500)]
    r = kinesis.put_records(StreamName=name, Records=batch)
    assert r["FailedRecordCount"] == 0 and len(r["Records"]) == 500
    assert all("SequenceNumber" in x and "ShardId" in x and "ErrorCode" not in x for x in r["Records"])
    kinesis.put_records(StreamName=name, Records=batch[:1])
    with expect_error("ValidationException"):
        raw_kinesis.put_records(StreamName=name, Records=batch + [{"Data": b"x", "PartitionKey": "k"}])
    with expect_error("ValidationException"):
        raw_kinesis.put_records(StreamName=name, Records=[])
    # per shard, results in request order carry increasing sequence numbers
    last: dict[str, int] = {}
    for res in r["Records"]:
        s = int(res["SequenceNumber"])
        assert s > last.get(res["ShardId"], -1)
        last[res["ShardId"]] = s


def test_put_records_total_size_bounds(kinesis, new_stream):
    # one ~1 MiB record per shard, so that no shard's write allowance (1 MiB/s) is the limit hit
    name = new_stream(shards=11)
    starts = [s["HashKeyRange"]["StartingHashKey"] for s in kinesis.list_shards(StreamName=name)["Shards"]]

    def rec(i, size):
        return {"Data": os.urandom(size), "PartitionKey": str(i % 10), "ExplicitHashKey": starts[i]}

    # 10 records of (1 MiB - 1) data + a 1-character key: exactly 10 MiB in all, accepted
    r = kinesis.put_records(StreamName=name, Records=[rec(i, MiB - 1) for i in range(10)])
    assert r["FailedRecordCount"] == 0
    # one byte more in total is refused as a whole
    with expect_error("InvalidArgumentException"):
        kinesis.put_records(StreamName=name, Records=[rec(i, MiB - 1) for i in range(10)] + [rec(10, 0)])
    with expect_error("InvalidArgumentException"):
        kinesis.put_records(StreamName=name, Records=[rec(i, 1_000_000) for i in range(11)])
    counts = [len(read_shard(kinesis, name, f"shardId-{i:012d}")) for i in range(11)]
    assert counts == [1] * 10 + [0]


def test_sequence_number_for_ordering(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    a = kinesis.put_record(StreamName=name, Data=b"a", PartitionKey="k")["SequenceNumber"]
    b = kinesis.put_record(StreamName=name, Data=b"b", PartitionKey="k", SequenceNumberForOrdering=a)
    assert int(b["SequenceNumber"]) > int(a)
    with expect_error("ValidationException"):
        raw_kinesis.put_record(StreamName=name, Data=b"c", PartitionKey="k", SequenceNumberForOrdering="x1")


def test_stream_name_validation_on_data_calls(raw_kinesis):
    with expect_error("ValidationException"):
        raw_kinesis.put_record(StreamName="bad name", Data=b"x", PartitionKey="k")
    with expect_error("ValidationException"):
        raw_kinesis.put_records(StreamName="n" * 129, Records=[{"Data": b"x", "PartitionKey": "k"}])
