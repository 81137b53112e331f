"""GetShardIterator (every iterator type) and GetRecords (Limit, NextShardIterator,
MillisBehindLatest), iterator tampering and expiry."""

from __future__ import annotations

import base64
import datetime as dt
import re
import time

import pytest
from harness import arn, expect_error, read_shard, unique_name
from conftest import create_stream

SHARD0 = "shardId-000000000000"


def put_many(client, name, datas, key="k"):
    r = client.put_records(StreamName=name, Records=[{"Data": d, "PartitionKey": key} for d in datas])
    assert r["FailedRecordCount"] == 0
    return [x["SequenceNumber"] for x in r["Records"]]


def iterator(client, name, itype, shard=SHARD0, **kw):
    return client.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType=itype, **kw)["ShardIterator"]


def test_trim_horizon(kinesis, new_stream):
    name = new_stream()
    datas = [f"d{i}".encode() for i in range(10)]
    seqs = put_many(kinesis, name, datas)
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "TRIM_HORIZON"))
    assert [x["Data"] for x in r["Records"]] == datas
    assert [x["SequenceNumber"] for x in r["Records"]] == seqs
    assert r["MillisBehindLatest"] == 0
    assert r["NextShardIterator"]


def test_latest(kinesis, new_stream):
    name = new_stream()
    put_many(kinesis, name, [b"old1", b"old2"])
    it = iterator(kinesis, name, "LATEST")
    r = kinesis.get_records(ShardIterator=it)
    assert r["Records"] == []
    put_many(kinesis, name, [b"new1", b"new2"])
    r2 = kinesis.get_records(ShardIterator=r["NextShardIterator"])
    assert [x["Data"] for x in r2["Records"]] == [b"new1", b"new2"]
    # the original LATEST iterator also sees only what came after it was issued
    r3 = kinesis.get_records(ShardIterator=it)
    assert [x["Data"] for x in r3["Records"]] == [b"new1", b"new2"]


def test_at_and_after_sequence_number(kinesis, new_stream):
    name = new_stream()
    datas = [f"r{i}".encode() for i in range(8)]
    seqs = put_many(kinesis, name, datas)
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[3]))
    assert [x["Data"] for x in r["Records"]] == datas[3:]
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[3]))
    assert [x["Data"] for x in r["Records"]] == datas[4:]
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[-1]))
    assert r["Records"] == []
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[0]))
    assert [x["Data"] for x in r["Records"]] == datas


def test_at_timestamp(kinesis, new_stream):
    name = new_stream()
    put_many(kinesis, name, [b"before1", b"before2"])
    time.sleep(1.2)
    t = dt.datetime.now(dt.timezone.utc)
    time.sleep(1.2)
    put_many(kinesis, name, [b"after1", b"after2"])
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "AT_TIMESTAMP", Timestamp=t))
    assert [x["Data"] for x in r["Records"]] == [b"after1", b"after2"]
    # a timestamp before everything reads all; one in the future is refused, as AWS does
    old = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "AT_TIMESTAMP", Timestamp=old))
    assert [x["Data"] for x in r["Records"]] == [b"before1", b"before2", b"after1", b"after2"]
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    with expect_error("InvalidArgumentException", message="cannot be greater than the currentTimestampInMillis"):
        iterator(kinesis, name, "AT_TIMESTAMP", Timestamp=future)


def test_at_timestamp_matches_arrival_time(kinesis, new_stream):
    name = new_stream()
    put_many(kinesis, name, [b"a"])
    time.sleep(1.1)
    put_many(kinesis, name, [b"b", b"c"])
    recs = read_shard(kinesis, name, SHARD0)
    arrival_b = recs[1]["ApproximateArrivalTimestamp"]
    assert recs[0]["ApproximateArrivalTimestamp"] < arrival_b
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "AT_TIMESTAMP", Timestamp=arrival_b))
    assert [x["Data"] for x in r["Records"]] == [b"b", b"c"]


def test_iterator_by_arn(kinesis, new_stream):
    name = new_stream()
    put_many(kinesis, name, [b"x"])
    it = kinesis.get_shard_iterator(StreamARN=arn(name), ShardId=SHARD0,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [x["Data"] for x in kinesis.get_records(ShardIterator=it)["Records"]] == [b"x"]


def test_iterator_argument_errors(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    put_many(kinesis, name, [b"x"])
    for itype in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        with expect_error("InvalidArgumentException"):
            iterator(kinesis, name, itype)  # no StartingSequenceNumber
    with expect_error("InvalidArgumentException"):
        iterator(kinesis, name, "AT_TIMESTAMP")  # no Timestamp
    with expect_error("ValidationException"):
        iterator(raw_kinesis, name, "SIDEWAYS")
    with expect_error("ValidationException"):
        iterator(raw_kinesis, name, "AT_SEQUENCE_NUMBER", StartingSequenceNumber="12ab")
    with expect_error("ResourceNotFoundException"):
        iterator(kinesis, name, "TRIM_HORIZON", shard="shardId-000000000007")


@pytest.mark.parametrize("itype", ["TRIM_HORIZON", "LATEST"])
def test_iterator_type_without_sequence_number_refuses_one(kinesis, new_stream, itype):
    """AWS: 'Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and
    StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber.'"""
    name = new_stream()
    seq = put_many(kinesis, name, [b"x"])[0]
    with expect_error("InvalidArgumentException"):
        iterator(kinesis, name, itype, StartingSequenceNumber=seq)


def test_get_records_limit(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    datas = [f"l{i}".encode() for i in range(25)]
    put_many(kinesis, name, datas)
    it = iterator(kinesis, name, "TRIM_HORIZON")
    got = []
    r = kinesis.get_records(ShardIterator=it, Limit=1)
    assert len(r["Records"]) == 1
    got += r["Records"]
    assert r["MillisBehindLatest"] >= 0
    r = kinesis.get_records(ShardIterator=r["NextShardIterator"], Limit=10)
    assert len(r["Records"]) == 10
    got += r["Records"]
    r = kinesis.get_records(ShardIterator=r["NextShardIterator"], Limit=10000)
    got += r["Records"]
    assert [x["Data"] for x in got] == datas
    assert r["MillisBehindLatest"] == 0
    with expect_error("ValidationException"):
        raw_kinesis.get_records(ShardIterator=it, Limit=0)
    with expect_error("ValidationException"):
        raw_kinesis.get_records(ShardIterator=it, Limit=10001)


def test_next_shard_iterator_follows_new_records(kinesis, new_stream):
    name = new_stream()
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "TRIM_HORIZON"))
    assert r["Records"] == [] and r["MillisBehindLatest"] == 0
    it = r["NextShardIterator"]
    for round_ in range(3):
        put_many(kinesis, name, [f"n{round_}".encode()])
        r = kinesis.get_records(ShardIterator=it)
        assert [x["Data"] for x in r["Records"]] == [f"n{round_}".encode()]
        it = r["NextShardIterator"]
    assert kinesis.get_records(ShardIterator=it)["Records"] == []
    # an iterator can be used again: it is a position, not a cursor
    assert len(read_shard(kinesis, name, SHARD0)) == 3


def test_millis_behind_latest(kinesis, new_stream):
    name = new_stream()
    put_many(kinesis, name, [b"first"])
    time.sleep(1.5)
    put_many(kinesis, name, [b"second"])
    r = kinesis.get_records(ShardIterator=iterator(kinesis, name, "TRIM_HORIZON"), Limit=1)
    assert [x["Data"] for x in r["Records"]] == [b"first"]
    assert r["MillisBehindLatest"] >= 1000, r["MillisBehindLatest"]
    r = kinesis.get_records(ShardIterator=r["NextShardIterator"])
    assert r["MillisBehindLatest"] == 0


def test_records_are_per_shard(kinesis, new_stream):
    name = new_stream(shards=2)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    ehk = [s["HashKeyRange"]["StartingHashKey"] for s in shards]
    kinesis.put_records(StreamName=name, Records=[
        {"Data": f"s{i % 2}-{i}".encode(), "PartitionKey": "k", "ExplicitHashKey": ehk[i % 2]} for i in range(10)])
    for sid in (0, 1):
        recs = read_shard(kinesis, name, f"shardId-{sid:012d}")
        assert [x["Data"] for x in recs] == [f"s{sid}-{i}".encode() for i in range(sid, 10, 2)]


# -- tampering ------------------------------------------------------------------


def _flip(s: str, i: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    c = s[i]
    repl = alphabet[(alphabet.find(c) + 1) % len(alphabet)] if c in alphabet else "A"
    return s[:i] + repl + s[i + 1:]


def test_tampered_iterator(kinesis, raw_kinesis, new_stream):
    name = new_stream()
    put_many(kinesis, name, [b"secret"])
    it = iterator(kinesis, name, "TRIM_HORIZON")
    assert kinesis.get_records(ShardIterator=it)["Records"]
    for pos in (0, len(it) // 3, len(it) // 2, len(it) - 2):
        bad = _flip(it, pos)
        if bad == it:
            continue
        with expect_error("InvalidArgumentException"):
            kinesis.get_records(ShardIterator=bad)
    with expect_error("InvalidArgumentException"):
        kinesis.get_records(ShardIterator="AAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    with expect_error("InvalidArgumentException"):
        kinesis.get_records(ShardIterator=base64.b64encode(b"forged iterator for " + name.encode()).decode())
    with expect_error("InvalidArgumentException"):
        kinesis.get_records(ShardIterator=it[: len(it) // 2])
    with expect_error("ValidationException"):
        raw_kinesis.get_records(ShardIterator="A" * 513)
    with expect_error("ValidationException"):
        raw_kinesis.get_records(ShardIterator="")


def test_iterator_of_other_stream_stays_its_own(kinesis, new_stream):
    """An iterator names its stream and shard; deleting the stream invalidates it."""
    name = new_stream()
    put_many(kinesis, name, [b"x"])
    it = iterator(kinesis, name, "TRIM_HORIZON")
    kinesis.delete_stream(StreamName=name)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with expect_error("ResourceNotFoundException", "InvalidArgumentException", "ExpiredIteratorException"):
        kinesis.get_records(ShardIterator=it)


# -- expiry ---------------------------------------------------------------------


def test_iterator_expiry(make_server):
    srv = make_server("--iterator-ttl-seconds", "2")
    k = srv.client()
    name = create_stream(k, name=unique_name("ttl"))
    k.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    it = iterator(k, name, "TRIM_HORIZON")
    r = k.get_records(ShardIterator=it)
    assert [x["Data"] for x in r["Records"]] == [b"x"]
    nxt = r["NextShardIterator"]
    time.sleep(3.5)
    with expect_error("ExpiredIteratorException") as expired:
        k.get_records(ShardIterator=it)
    # AWS's words, its dates as Java prints them.
    assert re.match(r"^Iterator expired\. The iterator was created at time \w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} UTC "
                    r"\d{4} while right now it is \w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} UTC \d{4} which is further "
                    r"in the future than the tolerated delay of 2000 milliseconds\.$",
                    expired.exc.response["Error"]["Message"]), expired.exc
    with expect_error("ExpiredIteratorException"):
        k.get_records(ShardIterator=nxt)
    # a fresh iterator works, and its NextShardIterator is fresh too
    r = k.get_records(ShardIterator=iterator(k, name, "AFTER_SEQUENCE_NUMBER",
                                             StartingSequenceNumber=r["Records"][0]["SequenceNumber"]))
    assert r["Records"] == []
    k.put_record(StreamName=name, Data=b"y", PartitionKey="k")
    assert [x["Data"] for x in k.get_records(ShardIterator=r["NextShardIterator"])["Records"]] == [b"y"]
