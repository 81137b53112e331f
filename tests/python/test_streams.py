"""Stream lifecycle: CreateStream, DescribeStream(Summary), ListStreams, ListShards, DeleteStream,
DescribeLimits, stream-name validation and the account shard limit."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from conftest import create_stream, wait_active
from harness import ACCOUNT_ID, REGION, arn, expect_error, unique_name

MAX_HASH = 2**128 - 1


def check_key_space(shards: list[dict]) -> None:
    """The shards' hash key ranges split [0, 2^128-1] evenly, contiguously, in order."""
    n = len(shards)
    start = 0
    for i, s in enumerate(shards):
        lo = int(s["HashKeyRange"]["StartingHashKey"])
        hi = int(s["HashKeyRange"]["EndingHashKey"])
        assert lo == start, f"shard {i} starts at {lo}, expected {start}"
        assert hi >= lo
        size = hi - lo + 1
        assert abs(size - 2**128 // n) <= n, f"shard {i} of {n} has uneven size {size}"
        start = hi + 1
    assert start == 2**128, "hash key ranges do not end at 2^128-1"


def test_create_and_describe(kinesis, new_stream):
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    name = new_stream(shards=3)
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamName"] == name
    assert d["StreamARN"] == f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{name}"
    assert d["StreamStatus"] == "ACTIVE"
    assert d["HasMoreShards"] is False
    assert d["RetentionPeriodHours"] == 24
    assert before <= d["StreamCreationTimestamp"] <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    assert "EnhancedMonitoring" in d
    assert d["EncryptionType"] == "KMS" and d["KeyId"] == "alias/aws/kinesis"
    shards = d["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-{i:012d}" for i in range(3)]
    for s in shards:
        assert int(s["SequenceNumberRange"]["StartingSequenceNumber"]) >= 0
        assert "EndingSequenceNumber" not in s["SequenceNumberRange"]  # open shards
        assert "ParentShardId" not in s
    check_key_space(shards)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10])
def test_key_space_split_evenly(kinesis, new_stream, n):
    name = new_stream(shards=n)
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    assert len(shards) == n
    check_key_space(shards)


def test_describe_stream_summary(kinesis, new_stream):
    name = new_stream(shards=2)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamName"] == name
    assert s["StreamARN"] == arn(name)
    assert s["StreamStatus"] == "ACTIVE"
    assert s["RetentionPeriodHours"] == 24
    assert s["OpenShardCount"] == 2
    assert isinstance(s["StreamCreationTimestamp"], dt.datetime)
    assert "EnhancedMonitoring" in s
    # by ARN too
    s2 = kinesis.describe_stream_summary(StreamARN=arn(name))["StreamDescriptionSummary"]
    assert s2["StreamName"] == name and s2["OpenShardCount"] == 2


def test_describe_stream_by_arn(kinesis, new_stream):
    name = new_stream()
    d = kinesis.describe_stream(StreamARN=arn(name))["StreamDescription"]
    assert d["StreamName"] == name


def test_describe_stream_shard_paging(kinesis, new_stream):
    name = new_stream(shards=5)
    page = kinesis.describe_stream(StreamName=name, Limit=2)["StreamDescription"]
    assert [s["ShardId"] for s in page["Shards"]] == ["shardId-000000000000", "shardId-000000000001"]
    assert page["HasMoreShards"] is True
    page2 = kinesis.describe_stream(StreamName=name, Limit=10, ExclusiveStartShardId="shardId-000000000001")
    page2 = page2["StreamDescription"]
    assert [s["ShardId"] for s in page2["Shards"]] == [f"shardId-{i:012d}" for i in (2, 3, 4)]
    assert page2["HasMoreShards"] is False


def test_describe_stream_returns_at_most_100_shards(kinesis, new_stream):
    name = new_stream(shards=120)
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert len(d["Shards"]) == 100 and d["HasMoreShards"] is True
    d = kinesis.describe_stream(StreamName=name, Limit=10000)["StreamDescription"]
    assert len(d["Shards"]) == 100 and d["HasMoreShards"] is True
    pag = kinesis.get_paginator("describe_stream")
    shards = [s["ShardId"] for page in pag.paginate(StreamName=name) for s in page["StreamDescription"]["Shards"]]
    assert shards == [f"shardId-{i:012d}" for i in range(120)]
    assert len(kinesis.list_shards(StreamName=name)["Shards"]) == 120
    assert kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["OpenShardCount"] == 120


def test_create_stream_with_tags_and_mode(kinesis):
    name = unique_name("tagged")
    kinesis.create_stream(StreamName=name, ShardCount=2, StreamModeDetails={"StreamMode": "PROVISIONED"},
                          Tags={"team": "data"})
    wait_active(kinesis, name)
    assert kinesis.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "team", "Value": "data"}]
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s.get("StreamModeDetails", {"StreamMode": "PROVISIONED"}) == {"StreamMode": "PROVISIONED"}


def test_waiter_stream_exists(kinesis):
    name = unique_name("waiter")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamStatus"] == "ACTIVE"


def test_create_existing_stream(kinesis, new_stream):
    name = new_stream()
    with expect_error("ResourceInUseException"):
        kinesis.create_stream(StreamName=name, ShardCount=1)


def test_unknown_stream(kinesis):
    name = unique_name("missing")
    with expect_error("ResourceNotFoundException"):
        kinesis.describe_stream(StreamName=name)
    with expect_error("ResourceNotFoundException"):
        kinesis.describe_stream_summary(StreamName=name)
    with expect_error("ResourceNotFoundException"):
        kinesis.describe_stream_summary(StreamARN=arn(name))
    with expect_error("ResourceNotFoundException"):
        kinesis.list_shards(StreamName=name)
    with expect_error("ResourceNotFoundException"):
        kinesis.delete_stream(StreamName=name)
    with expect_error("ResourceNotFoundException"):
        kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    with expect_error("ResourceNotFoundException"):
        kinesis.put_records(StreamName=name, Records=[{"Data": b"x", "PartitionKey": "k"}])
    with expect_error("ResourceNotFoundException"):
        kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                   ShardIteratorType="TRIM_HORIZON")
    with expect_error("ResourceNotFoundException"):
        kinesis.list_tags_for_stream(StreamName=name)
    with expect_error("ResourceNotFoundException"):
        kinesis.add_tags_to_stream(StreamName=name, Tags={"a": "b"})
    with expect_error("ResourceNotFoundException"):
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)


# -- stream name validation -------------------------------------------------


def test_stream_name_length_bounds(kinesis, raw_kinesis):
    ok = ("n" + uuid.uuid4().hex).ljust(128, "x")
    assert len(ok) == 128
    create_stream(kinesis, name=ok)
    assert kinesis.describe_stream_summary(StreamName=ok)["StreamDescriptionSummary"]["StreamName"] == ok
    with expect_error("ValidationException"):
        raw_kinesis.create_stream(StreamName=ok + "y", ShardCount=1)
    with expect_error("ValidationException"):
        raw_kinesis.create_stream(StreamName="", ShardCount=1)
    # the lower bound: a one-character name (unique per server: each backend has its own)
    create_stream(kinesis, name="Z")


@pytest.mark.parametrize("bad", ["has space", "slash/name", "colon:name", "star*", "ünïcode", "tab\tname"])
def test_stream_name_pattern(raw_kinesis, bad):
    with expect_error("ValidationException"):
        raw_kinesis.create_stream(StreamName=bad, ShardCount=1)


def test_stream_name_allowed_characters(kinesis):
    name = "Aa0_.-" + uuid.uuid4().hex
    create_stream(kinesis, name=name)


def test_shard_count_bounds(kinesis, raw_kinesis):
    with expect_error("ValidationException"):
        raw_kinesis.create_stream(StreamName=unique_name("zero"), ShardCount=0)
    with expect_error("ValidationException"):
        raw_kinesis.create_stream(StreamName=unique_name("neg"), ShardCount=-1)
    create_stream(kinesis, shards=1)


# -- ListStreams --------------------------------------------------------------


def all_stream_names(client, limit=2) -> list[str]:
    names: list[str] = []
    r = client.list_streams(Limit=limit)
    names += r["StreamNames"]
    while r["HasMoreStreams"]:
        r = client.list_streams(Limit=limit, ExclusiveStartStreamName=names[-1])
        assert r["StreamNames"], "HasMoreStreams but an empty page"
        names += r["StreamNames"]
    return names


def test_list_streams_summaries(kinesis, new_stream):
    name = new_stream(shards=2)
    r = kinesis.list_streams()
    assert name in r["StreamNames"]
    summaries = {s["StreamName"]: s for s in r["StreamSummaries"]}
    assert set(summaries) == set(r["StreamNames"])
    s = summaries[name]
    assert s["StreamARN"] == arn(name)
    assert s["StreamStatus"] == "ACTIVE"
    assert isinstance(s["StreamCreationTimestamp"], dt.datetime)


def test_list_streams_paging_exclusive_start(kinesis):
    prefix = "ls-" + uuid.uuid4().hex[:8]
    mine = [f"{prefix}-{i}" for i in range(5)]
    for n in mine:
        create_stream(kinesis, name=n)
    names = all_stream_names(kinesis, limit=2)
    assert names == sorted(names), "ListStreams is not in lexicographic order"
    assert len(names) == len(set(names)), "a stream was listed twice"
    assert [n for n in names if n.startswith(prefix)] == mine
    r = kinesis.list_streams(Limit=2, ExclusiveStartStreamName=mine[1])
    assert r["StreamNames"][:2] == mine[2:4]
    assert r["HasMoreStreams"] is True
    # the start name need not exist: listing resumes after it in lexicographic order
    r = kinesis.list_streams(Limit=2, ExclusiveStartStreamName=mine[1] + "a")
    assert r["StreamNames"][:2] == mine[2:4]
    r = kinesis.list_streams(Limit=1)
    assert len(r["StreamNames"]) == 1 and len(r["StreamSummaries"]) == 1


def test_list_streams_paging_next_token(kinesis):
    prefix = "lt-" + uuid.uuid4().hex[:8]
    mine = [f"{prefix}-{i}" for i in range(5)]
    for n in mine:
        create_stream(kinesis, name=n)
    seen: list[str] = []
    r = kinesis.list_streams(Limit=2)
    seen += r["StreamNames"]
    pages = 1
    while r["HasMoreStreams"]:
        assert r.get("NextToken"), "HasMoreStreams without a NextToken"
        r = kinesis.list_streams(NextToken=r["NextToken"], Limit=2)
        assert len(r["StreamNames"]) <= 2
        seen += r["StreamNames"]
        pages += 1
        assert pages < 10_000
    assert len(seen) == len(set(seen))
    assert [n for n in seen if n.startswith(prefix)] == mine
    # the boto3 paginator (NextToken based) sees the same list
    pag = kinesis.get_paginator("list_streams")
    via_pag = [n for page in pag.paginate(PaginationConfig={"PageSize": 3}) for n in page["StreamNames"]]
    assert via_pag == seen


def test_list_streams_limit_validation(raw_kinesis):
    with expect_error("ValidationException"):
        raw_kinesis.list_streams(Limit=0)


# -- ListShards ---------------------------------------------------------------


def test_list_shards_paging(kinesis, new_stream):
    name = new_stream(shards=5)
    r = kinesis.list_shards(StreamName=name, MaxResults=2)
    got = [s["ShardId"] for s in r["Shards"]]
    assert len(got) == 2
    while r.get("NextToken"):
        r = kinesis.list_shards(NextToken=r["NextToken"], MaxResults=2)
        got += [s["ShardId"] for s in r["Shards"]]
    assert got == [f"shardId-{i:012d}" for i in range(5)]
    check_key_space(kinesis.list_shards(StreamName=name)["Shards"])


def test_list_shards_by_arn_and_exclusive_start(kinesis, new_stream):
    name = new_stream(shards=4)
    r = kinesis.list_shards(StreamARN=arn(name))
    assert len(r["Shards"]) == 4
    r = kinesis.list_shards(StreamName=name, ExclusiveStartShardId="shardId-000000000001")
    assert [s["ShardId"] for s in r["Shards"]] == ["shardId-000000000002", "shardId-000000000003"]


def test_list_shards_next_token_with_stream_name(kinesis, new_stream):
    name = new_stream(shards=3)
    r = kinesis.list_shards(StreamName=name, MaxResults=1)
    assert r.get("NextToken")
    with expect_error("InvalidArgumentException"):
        kinesis.list_shards(StreamName=name, NextToken=r["NextToken"])


def test_list_shards_needs_a_stream_or_token(raw_kinesis):
    with expect_error("InvalidArgumentException", "ValidationException"):
        raw_kinesis.list_shards()


def test_list_shards_bad_next_token(kinesis):
    with expect_error("InvalidArgumentException", "ExpiredNextTokenException"):
        kinesis.list_shards(NextToken="bm90IGEgcmVhbCB0b2tlbg==")


def test_list_shards_max_results_bounds(kinesis, raw_kinesis, new_stream):
    name = new_stream(shards=2)
    assert len(kinesis.list_shards(StreamName=name, MaxResults=10000)["Shards"]) == 2
    assert len(kinesis.list_shards(StreamName=name, MaxResults=1)["Shards"]) == 1
    with expect_error("ValidationException"):
        raw_kinesis.list_shards(StreamName=name, MaxResults=0)
    with expect_error("ValidationException"):
        raw_kinesis.list_shards(StreamName=name, MaxResults=10001)


@pytest.mark.parametrize("ftype", ["AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST"])
def test_list_shards_filter_all_open(kinesis, new_stream, ftype):
    name = new_stream(shards=3)
    r = kinesis.list_shards(StreamName=name, ShardFilter={"Type": ftype})
    assert [s["ShardId"] for s in r["Shards"]] == [f"shardId-{i:012d}" for i in range(3)]


def test_list_shards_filter_after_shard_id(kinesis, new_stream):
    name = new_stream(shards=3)
    r = kinesis.list_shards(StreamName=name,
                            ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000000"})
    assert [s["ShardId"] for s in r["Shards"]] == ["shardId-000000000001", "shardId-000000000002"]


def test_list_shards_filter_timestamp(kinesis, new_stream):
    name = new_stream(shards=2)
    now = dt.datetime.now(dt.timezone.utc)
    for ftype in ("AT_TIMESTAMP", "FROM_TIMESTAMP"):
        r = kinesis.list_shards(StreamName=name, ShardFilter={"Type": ftype, "Timestamp": now})
        assert len(r["Shards"]) == 2


# -- DeleteStream ---------------------------------------------------------------


def test_delete_stream(kinesis, new_stream):
    name = new_stream(shards=2)
    kinesis.put_record(StreamName=name, Data=b"gone", PartitionKey="k")
    kinesis.delete_stream(StreamName=name)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with expect_error("ResourceNotFoundException"):
        kinesis.describe_stream_summary(StreamName=name)
    assert name not in kinesis.list_streams(Limit=10000)["StreamNames"]
    # the name can be used again, and the new stream starts empty
    create_stream(kinesis, name=name, shards=1)
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=it)["Records"] == []


def test_delete_stream_by_arn(kinesis, new_stream):
    name = new_stream()
    kinesis.delete_stream(StreamARN=arn(name), EnforceConsumerDeletion=True)
    kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


# -- DescribeLimits and the account shard limit -------------------------------


def test_describe_limits_shared(kinesis, new_stream):
    new_stream(shards=2)
    r = kinesis.describe_limits()
    assert r["ShardLimit"] >= 1
    assert r["OpenShardCount"] >= 2
    assert "OnDemandStreamCount" in r and "OnDemandStreamCountLimit" in r


def test_account_shard_limit(make_server):
    srv = make_server("--account-shard-limit", "5")
    k = srv.client()
    r = k.describe_limits()
    assert r["ShardLimit"] == 5 and r["OpenShardCount"] == 0
    with expect_error("LimitExceededException"):
        k.create_stream(StreamName=unique_name("big"), ShardCount=6)
    a = create_stream(k, shards=3)
    with expect_error("LimitExceededException"):
        k.create_stream(StreamName=unique_name("over"), ShardCount=3)
    create_stream(k, shards=2)  # exactly at the limit
    assert k.describe_limits()["OpenShardCount"] == 5
    with expect_error("LimitExceededException"):
        k.create_stream(StreamName=unique_name("one-more"), ShardCount=1)
    # deleting a stream gives its shards back
    k.delete_stream(StreamName=a)
    k.get_waiter("stream_not_exists").wait(StreamName=a, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    create_stream(k, shards=3)
    assert k.describe_limits()["OpenShardCount"] == 5
